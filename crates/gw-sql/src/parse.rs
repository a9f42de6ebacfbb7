//! The grammar-based classifier: tokenizes with sqlparser, splits the token
//! stream into statements, parses each one and walks its AST.
//!
//! Splitting happens on the tokenizer's `;` tokens rather than on the text,
//! so the splitter and the parser can never disagree about what is quoted or
//! commented. Each statement is parsed on its own so that a statement the
//! parser does not know (PostgreSQL `DO`, MySQL `LOAD DATA`...) can be handed
//! to the narrow recognizers in [`crate::recognize`] instead of failing the
//! whole message.

use sqlparser::ast::{
    self, Assignment, Cte, Expr, FromTable, Function, FunctionArg, FunctionArgExpr,
    FunctionArguments, GroupByExpr, InTarget, MergeAction, ObjectName, ObjectNamePart,
    OnConflictAction, OnInsert, OrderByKind, Query, Select, SelectItem, SetExpr, TableFactor,
    TableObject, TableWithJoins, UpdateTableFromKind,
};
use sqlparser::dialect::{self, MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::{Dialect, Effect, Kind, Risk, Statement, functions, recognize};

/// The sqlparser dialect objects are zero-sized, so sharing statics costs
/// nothing and avoids building them per call.
static POSTGRES: PostgreSqlDialect = PostgreSqlDialect {};
static MYSQL: MySqlDialect = MySqlDialect {};

/// How deep the AST walk may recurse before giving up. sqlparser limits its
/// own recursion, but left-deep operator chains (`1+1+1+...`) are built by a
/// loop and can be far deeper than that limit; refusing them keeps the walk
/// from exhausting the stack.
const MAX_WALK_DEPTH: usize = 500;

/// The most infix operators one statement may hold. sqlparser builds operator
/// chains (`a OR b OR c ...`, `x::t::t`, `UNION` chains) with a loop, so their
/// depth escapes its recursion limit, and dropping such a tree recurses once
/// per operator. Refusing larger statements (they become unparsed) keeps that
/// drop well inside a 2 MiB thread stack.
const MAX_INFIX_OPERATORS: usize = 8192;

pub(crate) fn sql_dialect(dialect: Dialect) -> &'static dyn dialect::Dialect {
    match dialect {
        Dialect::Postgres => &POSTGRES,
        Dialect::MySql => &MYSQL,
    }
}

/// Classifies every statement of `sql`, or explains why it cannot.
pub(crate) fn classify_statements(dialect: Dialect, sql: &str) -> Result<Vec<Statement>, String> {
    let d = sql_dialect(dialect);
    let tokens = Tokenizer::new(d, sql)
        .tokenize_with_location()
        .map_err(|e| format!("tokenizer error: {e}"))?;
    let chunks = split_statements(tokens)?;
    let mut statements = Vec::with_capacity(chunks.len());
    for (index, chunk) in chunks.into_iter().enumerate() {
        let significant = significant_tokens(&chunk);
        if significant.is_empty() {
            continue;
        }
        if infix_operators(&significant) > MAX_INFIX_OPERATORS {
            return Err(format!(
                "statement {}: more than {MAX_INFIX_OPERATORS} operators",
                index + 1
            ));
        }
        let calls = functions::side_effect_calls(&significant);
        let fallback = recognize::is_candidate(dialect, &significant);
        drop(significant);
        let mut statement = if fallback {
            match parse_one(d, chunk.clone()) {
                Ok(ast) => walk_statement(&ast)?,
                Err(parse_error) => {
                    match recognize::recognize(dialect, &significant_tokens(&chunk)) {
                        Some(statement) => statement,
                        None => return Err(format!("statement {}: {parse_error}", index + 1)),
                    }
                }
            }
        } else {
            match parse_one(d, chunk) {
                Ok(ast) => walk_statement(&ast)?,
                Err(parse_error) => return Err(format!("statement {}: {parse_error}", index + 1)),
            }
        };
        for name in calls {
            push_risk(&mut statement.risks, Risk::SideEffectFunction(name));
        }
        statements.push(statement);
    }
    Ok(statements)
}

/// Counts operator tokens in infix position (right after an operand). Prefix
/// operators are not counted: sqlparser parses them recursively, under its
/// recursion limit.
fn infix_operators(tokens: &[&Token]) -> usize {
    use sqlparser::keywords::Keyword as K;
    let mut count = 0;
    let mut after_operand = false;
    for token in tokens {
        let (is_operand, is_operator) = match token {
            Token::Word(w) if w.quote_style.is_none() => {
                let op = matches!(
                    w.keyword,
                    K::AND
                        | K::OR
                        | K::XOR
                        | K::NOT
                        | K::IS
                        | K::LIKE
                        | K::ILIKE
                        | K::SIMILAR
                        | K::BETWEEN
                        | K::IN
                        | K::COLLATE
                        | K::AT
                        | K::DIV
                        | K::MOD
                        | K::REGEXP
                        | K::RLIKE
                        | K::OPERATOR
                        | K::UNION
                        | K::EXCEPT
                        | K::INTERSECT
                        | K::MINUS
                        | K::OVERLAPS
                );
                (!op, op)
            }
            Token::Word(_)
            | Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::EscapedStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::Placeholder(_)
            | Token::RParen
            | Token::RBracket => (true, false),
            Token::Comma | Token::LParen | Token::LBracket | Token::Period => (false, false),
            _ => (false, true),
        };
        if is_operator && after_operand {
            count += 1;
        }
        after_operand = is_operand;
    }
    count
}

/// The tokens of a statement without whitespace and comments.
fn significant_tokens(chunk: &[TokenWithSpan]) -> Vec<&Token> {
    let mut out = Vec::with_capacity(chunk.len());
    out.extend(
        chunk
            .iter()
            .map(|t| &t.token)
            .filter(|t| !matches!(t, Token::Whitespace(_))),
    );
    out
}

/// Splits tokens at `;` outside parentheses. A `;` inside parentheses only
/// occurs in PostgreSQL rule action lists; any other use is a syntax error
/// the parser reports for the chunk that holds it.
fn split_statements(mut tokens: Vec<TokenWithSpan>) -> Result<Vec<Vec<TokenWithSpan>>, String> {
    // Find the separators first so that the common single-statement case
    // hands the tokenizer's vector to the parser without copying it.
    let mut separators = Vec::new();
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate() {
        match &token.token {
            Token::SemiColon if depth == 0 => separators.push(i),
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            // sqlparser reads the lines after `COPY ... FROM STDIN;` as the
            // COPY payload, as psql would. A server receiving the same text
            // in one query runs those lines as SQL, so they cannot be
            // classified as data: fail closed.
            Token::CopyData { .. } => {
                return Err("text after COPY ... FROM STDIN would be read as inline data".into());
            }
            _ => {}
        }
    }
    let mut chunks = Vec::with_capacity(separators.len() + 1);
    for &i in separators.iter().rev() {
        let chunk = tokens.split_off(i + 1);
        tokens.truncate(i);
        chunks.push(chunk);
    }
    chunks.push(tokens);
    chunks.reverse();
    Ok(chunks)
}

/// Parses exactly one statement from `tokens`.
pub(crate) fn parse_one(
    d: &dyn dialect::Dialect,
    tokens: Vec<TokenWithSpan>,
) -> Result<ast::Statement, String> {
    let mut parser = Parser::new(d).with_tokens_with_locations(tokens);
    let statement = parser.parse_statement().map_err(|e| e.to_string())?;
    let next = parser.peek_token_ref();
    if next.token != Token::EOF {
        return Err(format!(
            "sql parser error: Expected: end of statement, found: {}{}",
            next.token, next.span.start
        ));
    }
    Ok(statement)
}

/// Adds `risk` unless already present.
pub(crate) fn push_risk(risks: &mut Vec<Risk>, risk: Risk) {
    if !risks.contains(&risk) {
        risks.push(risk);
    }
}

/// Lowercased, unquoted dotted name.
pub(crate) fn object_name(name: &ObjectName) -> String {
    let mut out = String::new();
    for (i, part) in name.0.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match part {
            ObjectNamePart::Identifier(ident) => out.push_str(&ident.value.to_lowercase()),
            ObjectNamePart::Function(f) => out.push_str(&f.name.value.to_lowercase()),
        }
    }
    out
}

fn push_table(tables: &mut Vec<String>, name: String) {
    if !tables.contains(&name) {
        tables.push(name);
    }
}

fn names(list: &[ObjectName]) -> Vec<String> {
    let mut out = Vec::new();
    for n in list {
        push_table(&mut out, object_name(n));
    }
    out
}

fn effect(kind: Kind, tables: Vec<String>) -> Effect {
    Effect {
        kind,
        tables,
        has_where: None,
    }
}

/// Classifies a parsed statement.
pub(crate) fn walk_statement(statement: &ast::Statement) -> Result<Statement, String> {
    let mut walker = Walker::default();
    let (kind, main) = walker.statement(statement);
    if walker.too_deep {
        return Err("statement nests too deeply to classify".into());
    }
    let mut effects = Vec::with_capacity(2 + walker.nested.len());
    effects.push(main);
    if !walker.reads.is_empty() && kind != Kind::Select {
        effects.push(effect(Kind::Select, walker.reads));
    }
    effects.append(&mut walker.nested);
    Ok(Statement {
        kind,
        effects,
        risks: walker.risks,
    })
}

/// Collects what a statement does while walking its AST.
#[derive(Default)]
struct Walker {
    /// Tables read anywhere in the statement (FROM, JOIN, subqueries, CTEs).
    reads: Vec<String>,
    /// Data-modifying effects found below the top level, in source order.
    nested: Vec<Effect>,
    risks: Vec<Risk>,
    depth: usize,
    too_deep: bool,
}

impl Walker {
    /// Returns the statement's kind and its top-level effect; nested effects,
    /// reads and risks accumulate in `self`.
    fn statement(&mut self, statement: &ast::Statement) -> (Kind, Effect) {
        use ast::Statement as S;
        match statement {
            S::Query(query) => self.top_query(query),
            S::Insert(insert) => (Kind::Insert, self.insert(insert)),
            S::Update(update) => (Kind::Update, self.update(update)),
            S::Delete(delete) => (Kind::Delete, self.delete(delete)),
            S::Merge(merge) => (Kind::Merge, self.merge(merge)),
            S::Truncate(t) => {
                let mut tables = Vec::new();
                for target in &t.table_names {
                    push_table(&mut tables, object_name(&target.name));
                }
                (Kind::Truncate, effect(Kind::Truncate, tables))
            }
            S::Copy {
                source, to, target, ..
            } => {
                let mut tables = Vec::new();
                match source {
                    ast::CopySource::Table { table_name, .. } => {
                        let name = object_name(table_name);
                        if !*to {
                            // COPY ... FROM writes rows into the table.
                            self.nested.push(effect(Kind::Insert, vec![name.clone()]));
                        }
                        tables.push(name);
                    }
                    ast::CopySource::Query(query) => {
                        self.query(query);
                        tables = std::mem::take(&mut self.reads);
                    }
                }
                match target {
                    ast::CopyTarget::Stdin | ast::CopyTarget::Stdout => {}
                    ast::CopyTarget::File { .. } => push_risk(&mut self.risks, Risk::ServerFile),
                    ast::CopyTarget::Program { .. } => {
                        push_risk(&mut self.risks, Risk::ShellCommand)
                    }
                }
                (Kind::Copy, effect(Kind::Copy, tables))
            }
            S::LoadData {
                local, table_name, ..
            } => {
                if !*local {
                    push_risk(&mut self.risks, Risk::ServerFile);
                }
                let name = object_name(table_name);
                self.nested.push(effect(Kind::Insert, vec![name.clone()]));
                (Kind::Copy, effect(Kind::Copy, vec![name]))
            }
            S::Directory { source, .. } => {
                push_risk(&mut self.risks, Risk::ServerFile);
                self.query(source);
                (Kind::Copy, effect(Kind::Copy, Vec::new()))
            }
            S::Explain {
                analyze,
                statement,
                options,
                ..
            } => {
                let analyze = *analyze || options.as_deref().is_some_and(analyze_option);
                let mut inner = Walker {
                    depth: self.depth,
                    ..Walker::default()
                };
                let (_, inner_main) = inner.statement(statement);
                self.too_deep |= inner.too_deep;
                let tables = inner_main.tables.clone();
                if analyze {
                    // EXPLAIN ANALYZE runs the statement, so everything it
                    // does is an effect of this one.
                    push_risk(&mut self.risks, Risk::ExplainAnalyze);
                    self.nested.push(inner_main);
                    if !inner.reads.is_empty() {
                        self.nested.push(effect(Kind::Select, inner.reads));
                    }
                    self.nested.append(&mut inner.nested);
                    for risk in inner.risks {
                        push_risk(&mut self.risks, risk);
                    }
                }
                (Kind::Explain, effect(Kind::Explain, tables))
            }
            S::ExplainTable { table_name, .. } => (
                Kind::Show,
                effect(Kind::Show, vec![object_name(table_name)]),
            ),
            S::Prepare { statement, .. } => {
                // The prepared statement runs later through EXECUTE, which we
                // cannot tie back to it; report its effects now so a guard can
                // refuse to prepare what it would refuse to run.
                let mut inner = Walker {
                    depth: self.depth,
                    ..Walker::default()
                };
                let (_, inner_main) = inner.statement(statement);
                self.too_deep |= inner.too_deep;
                self.nested.push(inner_main);
                if !inner.reads.is_empty() {
                    self.nested.push(effect(Kind::Select, inner.reads));
                }
                self.nested.append(&mut inner.nested);
                for risk in inner.risks {
                    push_risk(&mut self.risks, risk);
                }
                (Kind::Prepare, effect(Kind::Prepare, Vec::new()))
            }
            S::Execute { parameters, .. } => {
                push_risk(&mut self.risks, Risk::DynamicSql);
                for p in parameters {
                    self.expr(p);
                }
                (Kind::Execute, effect(Kind::Execute, Vec::new()))
            }
            S::Deallocate { .. } => (Kind::Deallocate, effect(Kind::Deallocate, Vec::new())),
            S::Call(function) => {
                push_risk(&mut self.risks, Risk::DynamicSql);
                self.function(function);
                (Kind::Call, effect(Kind::Call, Vec::new()))
            }
            S::Set(set) => self.set(set),
            S::Reset(reset) => {
                let role = match &reset.reset {
                    ast::Reset::SessionAuthorization => true,
                    ast::Reset::ConfigurationParameter(name) => {
                        matches!(object_name(name).as_str(), "role" | "session_authorization")
                    }
                    _ => false,
                };
                if role {
                    push_risk(&mut self.risks, Risk::RoleChange);
                }
                (Kind::Set, effect(Kind::Set, Vec::new()))
            }
            S::ShowFunctions { .. }
            | S::ShowVariable { .. }
            | S::ShowStatus { .. }
            | S::ShowVariables { .. }
            | S::ShowCreate { .. }
            | S::ShowColumns { .. }
            | S::ShowCatalogs { .. }
            | S::ShowDatabases { .. }
            | S::ShowProcessList { .. }
            | S::ShowSchemas { .. }
            | S::ShowCharset(_)
            | S::ShowObjects(_)
            | S::ShowTables { .. }
            | S::ShowViews { .. }
            | S::ShowCollation { .. } => (Kind::Show, effect(Kind::Show, Vec::new())),
            S::Use(_) => (Kind::Use, effect(Kind::Use, Vec::new())),
            S::StartTransaction { statements, .. } => {
                // A `BEGIN ... END` block in dialects that have one: its
                // statements run, so their effects are this statement's.
                for inner in statements {
                    self.nested_statement(inner);
                }
                (Kind::Transaction, effect(Kind::Transaction, Vec::new()))
            }
            S::Commit { .. }
            | S::Rollback { .. }
            | S::Savepoint { .. }
            | S::ReleaseSavepoint { .. } => {
                (Kind::Transaction, effect(Kind::Transaction, Vec::new()))
            }
            S::Analyze(a) => {
                let tables = a.table_name.iter().map(object_name).collect();
                (Kind::Maintenance, effect(Kind::Maintenance, tables))
            }
            S::Vacuum(v) => {
                let tables = v.table_name.iter().map(object_name).collect();
                (Kind::Maintenance, effect(Kind::Maintenance, tables))
            }
            S::OptimizeTable { name, .. } => (
                Kind::Maintenance,
                effect(Kind::Maintenance, vec![object_name(name)]),
            ),
            S::RefreshMaterializedView(r) => (
                Kind::Maintenance,
                effect(Kind::Maintenance, vec![object_name(&r.name)]),
            ),
            S::Flush { tables, .. } => {
                (Kind::Maintenance, effect(Kind::Maintenance, names(tables)))
            }
            S::Lock(lock) => {
                let mut tables = Vec::new();
                for t in &lock.tables {
                    push_table(&mut tables, object_name(&t.name));
                }
                (Kind::Lock, effect(Kind::Lock, tables))
            }
            S::LockTables { tables } => {
                let mut names = Vec::new();
                for t in tables {
                    push_table(&mut names, t.table.value.to_lowercase());
                }
                (Kind::Lock, effect(Kind::Lock, names))
            }
            S::UnlockTables => (Kind::Lock, effect(Kind::Lock, Vec::new())),
            S::Grant(g) => (Kind::Grant, effect(Kind::Grant, grant_tables(&g.objects))),
            S::Revoke(r) => (Kind::Revoke, effect(Kind::Revoke, grant_tables(&r.objects))),
            S::GrantRole(_) | S::Deny(_) | S::AlterDefaultPrivileges(_) => {
                (Kind::Grant, effect(Kind::Grant, Vec::new()))
            }
            S::RevokeRole(_) => (Kind::Revoke, effect(Kind::Revoke, Vec::new())),
            S::Drop { names: n, .. } => (Kind::Drop, effect(Kind::Drop, names(n))),
            S::DropFunction(f) => {
                let list: Vec<ObjectName> = f.func_desc.iter().map(|d| d.name.clone()).collect();
                (Kind::Drop, effect(Kind::Drop, names(&list)))
            }
            S::DropProcedure { proc_desc, .. } => {
                let list: Vec<ObjectName> = proc_desc.iter().map(|d| d.name.clone()).collect();
                (Kind::Drop, effect(Kind::Drop, names(&list)))
            }
            S::DropTrigger(t) => {
                let tables = t.table_name.iter().map(object_name).collect();
                (Kind::Drop, effect(Kind::Drop, tables))
            }
            S::DropDomain(_)
            | S::DropSecret { .. }
            | S::DropPolicy(_)
            | S::DropRule(_)
            | S::DropConnector { .. }
            | S::DropExtension(_)
            | S::DropOperator(_)
            | S::DropOperatorFamily(_)
            | S::DropOperatorClass(_)
            | S::DetachDuckDBDatabase { .. } => (Kind::Drop, effect(Kind::Drop, Vec::new())),
            S::CreateTable(ct) => {
                if let Some(query) = &ct.query {
                    // CREATE TABLE ... AS runs its query.
                    self.query(query);
                }
                (
                    Kind::Create,
                    effect(Kind::Create, vec![object_name(&ct.name)]),
                )
            }
            S::CreateView(cv) => {
                // The view's query does not run now; only nested effects
                // (none are legal today) would matter, so reads are dropped.
                self.query(&cv.query);
                self.reads.clear();
                (
                    Kind::Create,
                    effect(Kind::Create, vec![object_name(&cv.name)]),
                )
            }
            S::CreateIndex(ci) => (
                Kind::Create,
                effect(Kind::Create, vec![object_name(&ci.table_name)]),
            ),
            S::CreateFunction(cf) => {
                push_risk(&mut self.risks, Risk::DynamicSql);
                (
                    Kind::Create,
                    effect(Kind::Create, vec![object_name(&cf.name)]),
                )
            }
            S::CreateProcedure { name, .. } | S::CreateMacro { name, .. } => {
                push_risk(&mut self.risks, Risk::DynamicSql);
                (Kind::Create, effect(Kind::Create, vec![object_name(name)]))
            }
            S::CreateRule(rule) => {
                // A rule's actions run whenever the event fires on the table,
                // so they are reported as nested effects.
                match &rule.action {
                    ast::CreateRuleAction::Nothing => {}
                    ast::CreateRuleAction::Statement(s) => self.nested_statement(s),
                    ast::CreateRuleAction::Statements(list) => {
                        for s in list {
                            self.nested_statement(s);
                        }
                    }
                }
                if let Some(condition) = &rule.condition {
                    self.expr(condition);
                }
                self.reads.clear();
                (
                    Kind::Create,
                    effect(Kind::Create, vec![object_name(&rule.table_name)]),
                )
            }
            S::CreateTrigger(_) => {
                push_risk(&mut self.risks, Risk::DynamicSql);
                (Kind::Create, effect(Kind::Create, Vec::new()))
            }
            S::CreateSchema { schema_name, .. } => {
                let tables = match schema_name {
                    ast::SchemaName::Simple(n) | ast::SchemaName::NamedAuthorization(n, _) => {
                        vec![object_name(n)]
                    }
                    ast::SchemaName::UnnamedAuthorization(_) => Vec::new(),
                };
                (Kind::Create, effect(Kind::Create, tables))
            }
            S::CreateDatabase { db_name, .. } => (
                Kind::Create,
                effect(Kind::Create, vec![object_name(db_name)]),
            ),
            S::CreateSequence { name, .. } | S::CreateType { name, .. } => {
                (Kind::Create, effect(Kind::Create, vec![object_name(name)]))
            }
            S::CreateVirtualTable { .. }
            | S::CreateRole(_)
            | S::CreateSecret { .. }
            | S::CreateServer(_)
            | S::CreateForeignTable(_)
            | S::CreateForeignDataWrapper(_)
            | S::CreateUserMapping(_)
            | S::CreatePolicy(_)
            | S::CreateConnector(_)
            | S::CreateOperator(_)
            | S::CreateOperatorFamily(_)
            | S::CreateOperatorClass(_)
            | S::CreateTextSearch(_)
            | S::CreateAggregate(_)
            | S::CreateExtension(_)
            | S::CreateCollation(_)
            | S::CreateStage { .. }
            | S::CreateFileFormat { .. }
            | S::CreateWarehouse(_)
            | S::CreateDomain(_)
            | S::CreateUser(_)
            | S::AttachDatabase { .. }
            | S::AttachDuckDBDatabase { .. } => (Kind::Create, effect(Kind::Create, Vec::new())),
            S::AlterTable(at) => (
                Kind::Alter,
                effect(Kind::Alter, vec![object_name(&at.name)]),
            ),
            S::AlterIndex { name, .. } => {
                (Kind::Alter, effect(Kind::Alter, vec![object_name(name)]))
            }
            S::AlterView(av) => (
                Kind::Alter,
                effect(Kind::Alter, vec![object_name(&av.name)]),
            ),
            S::RenameTable(list) => {
                let mut tables = Vec::new();
                for r in list {
                    push_table(&mut tables, object_name(&r.old_name));
                    push_table(&mut tables, object_name(&r.new_name));
                }
                (Kind::Alter, effect(Kind::Alter, tables))
            }
            S::AlterSchema(_)
            | S::AlterFunction(_)
            | S::AlterType(_)
            | S::AlterCollation(_)
            | S::AlterOperator(_)
            | S::AlterOperatorFamily(_)
            | S::AlterOperatorClass(_)
            | S::AlterTextSearch(_)
            | S::AlterRole { .. }
            | S::AlterPolicy(_)
            | S::AlterTrigger(_)
            | S::AlterConnector { .. }
            | S::AlterSession { .. }
            | S::AlterUser(_) => (Kind::Alter, effect(Kind::Alter, Vec::new())),
            S::Declare { stmts, .. } => {
                for d in stmts {
                    if let Some(q) = &d.for_query {
                        self.query(q);
                    }
                }
                (Kind::Other, effect(Kind::Other, Vec::new()))
            }
            S::Load { .. } => {
                // PostgreSQL `LOAD 'library'` loads a shared library from
                // the server's file system into the backend.
                push_risk(&mut self.risks, Risk::ServerFile);
                (Kind::Other, effect(Kind::Other, Vec::new()))
            }
            S::Discard { object_type } => {
                // DISCARD ALL includes SET SESSION AUTHORIZATION DEFAULT.
                if matches!(object_type, ast::DiscardObject::ALL) {
                    push_risk(&mut self.risks, Risk::RoleChange);
                }
                (Kind::Other, effect(Kind::Other, Vec::new()))
            }
            S::Case(_) | S::If(_) | S::While(_) => {
                // Procedural blocks: treated as opaque code.
                push_risk(&mut self.risks, Risk::DynamicSql);
                (Kind::Other, effect(Kind::Other, Vec::new()))
            }
            _ => (Kind::Other, effect(Kind::Other, Vec::new())),
        }
    }

    /// A statement that runs as part of another (rule action, block body):
    /// its top-level effect and risks join the outer statement's.
    fn nested_statement(&mut self, statement: &ast::Statement) {
        if !self.enter() {
            return;
        }
        let (_, main) = self.statement(statement);
        self.nested.push(main);
        self.leave();
    }

    fn top_query(&mut self, query: &Query) -> (Kind, Effect) {
        // `WITH ... DELETE` is a delete: the kind comes from the body.
        let dml = match query.body.as_ref() {
            SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) | SetExpr::Merge(s) => {
                Some(s)
            }
            _ => None,
        };
        if let Some(body) = dml {
            let (kind, main) = self.statement(body);
            if let Some(with) = &query.with {
                for cte in &with.cte_tables {
                    self.cte(cte);
                }
            }
            self.query_tail(query);
            return (kind, main);
        }
        self.query(query);
        let tables = std::mem::take(&mut self.reads);
        (Kind::Select, effect(Kind::Select, tables))
    }

    fn enter(&mut self) -> bool {
        self.depth += 1;
        if self.depth > MAX_WALK_DEPTH {
            self.too_deep = true;
        }
        !self.too_deep
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn cte(&mut self, cte: &Cte) {
        self.query(&cte.query);
    }

    fn query(&mut self, query: &Query) {
        if !self.enter() {
            return;
        }
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.cte(cte);
            }
        }
        self.set_expr(&query.body);
        self.query_tail(query);
        self.leave();
    }

    fn query_tail(&mut self, query: &Query) {
        if let Some(order_by) = &query.order_by
            && let OrderByKind::Expressions(list) = &order_by.kind
        {
            for o in list {
                self.expr(&o.expr);
            }
        }
    }

    fn set_expr(&mut self, body: &SetExpr) {
        if !self.enter() {
            return;
        }
        match body {
            SetExpr::Select(select) => self.select(select),
            SetExpr::Query(q) => self.query(q),
            SetExpr::SetOperation { .. } => {
                // `UNION` chains are left-deep: walk the spine in a loop.
                let mut current = body;
                let mut rights = Vec::new();
                while let SetExpr::SetOperation { left, right, .. } = current {
                    rights.push(right.as_ref());
                    current = left;
                }
                self.set_expr(current);
                for right in rights.into_iter().rev() {
                    self.set_expr(right);
                }
            }
            SetExpr::Values(values) => {
                for row in &values.rows {
                    for e in row.iter() {
                        self.expr(e);
                    }
                }
            }
            SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) | SetExpr::Merge(s) => {
                let (_, main) = self.statement(s);
                self.nested.push(main);
            }
            SetExpr::Table(t) => {
                if let Some(name) = &t.table_name {
                    let full = match &t.schema_name {
                        Some(schema) => format!(
                            "{}.{}",
                            schema.value.to_lowercase(),
                            name.value.to_lowercase()
                        ),
                        None => name.value.to_lowercase(),
                    };
                    push_table(&mut self.reads, full);
                }
            }
        }
        self.leave();
    }

    fn select(&mut self, select: &Select) {
        for item in &select.projection {
            self.select_item(item);
        }
        if let Some(into) = &select.into {
            // PostgreSQL `SELECT ... INTO t` creates and fills a table.
            let mut tables = Vec::new();
            for target in &into.targets {
                match target {
                    Expr::Identifier(i) => push_table(&mut tables, i.value.to_lowercase()),
                    Expr::CompoundIdentifier(parts) => push_table(
                        &mut tables,
                        parts
                            .iter()
                            .map(|p| p.value.to_lowercase())
                            .collect::<Vec<_>>()
                            .join("."),
                    ),
                    _ => {}
                }
            }
            // MySQL `SELECT ... INTO @var` assigns user variables and
            // creates nothing.
            tables.retain(|t| !t.starts_with('@'));
            if !tables.is_empty() {
                self.nested.push(effect(Kind::Create, tables));
            }
        }
        for twj in &select.from {
            self.table_with_joins(twj);
        }
        for e in [
            &select.prewhere,
            &select.selection,
            &select.having,
            &select.qualify,
        ]
        .into_iter()
        .flatten()
        {
            self.expr(e);
        }
        if let GroupByExpr::Expressions(list, _) = &select.group_by {
            for e in list {
                self.expr(e);
            }
        }
    }

    fn select_item(&mut self, item: &SelectItem) {
        match item {
            SelectItem::UnnamedExpr(e)
            | SelectItem::ExprWithAlias { expr: e, .. }
            | SelectItem::ExprWithAliases { expr: e, .. } => self.expr(e),
            _ => {}
        }
    }

    fn returning(&mut self, returning: &Option<Vec<SelectItem>>) {
        if let Some(items) = returning {
            for item in items {
                self.select_item(item);
            }
        }
    }

    fn table_with_joins(&mut self, twj: &TableWithJoins) {
        self.table_factor(&twj.relation);
        for join in &twj.joins {
            self.table_factor(&join.relation);
            if let Some(constraint) = join_constraint(&join.join_operator)
                && let ast::JoinConstraint::On(e) = constraint
            {
                self.expr(e);
            }
        }
    }

    fn table_factor(&mut self, factor: &TableFactor) {
        if !self.enter() {
            return;
        }
        match factor {
            TableFactor::Table { name, args, .. } => match args {
                // `FROM f(...)` in MySQL/others: a table function, not a table.
                Some(args) => {
                    for a in &args.args {
                        self.function_arg(a);
                    }
                }
                None => push_table(&mut self.reads, object_name(name)),
            },
            TableFactor::Derived { subquery, .. } => self.query(subquery),
            TableFactor::TableFunction { expr, .. } => self.expr(expr),
            TableFactor::Function { args, .. } => {
                for a in args {
                    self.function_arg(a);
                }
            }
            TableFactor::UNNEST { array_exprs, .. } => {
                for e in array_exprs {
                    self.expr(e);
                }
            }
            TableFactor::JsonTable { json_expr, .. } => self.expr(json_expr),
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => self.table_with_joins(table_with_joins),
            TableFactor::Pivot { table, .. } | TableFactor::Unpivot { table, .. } => {
                self.table_factor(table)
            }
            _ => {}
        }
        self.leave();
    }

    fn assignments(&mut self, assignments: &[Assignment]) {
        for a in assignments {
            self.expr(&a.value);
        }
    }

    fn insert(&mut self, insert: &ast::Insert) -> Effect {
        let mut tables = Vec::new();
        match &insert.table {
            TableObject::TableName(name) => tables.push(object_name(name)),
            TableObject::TableFunction(f) => {
                tables.push(object_name(&f.name));
                self.function(f);
            }
            TableObject::TableQuery(q) => self.query(q),
        }
        if let Some(source) = &insert.source {
            self.query(source);
        }
        self.assignments(&insert.assignments);
        match &insert.on {
            Some(OnInsert::DuplicateKeyUpdate(a)) => self.assignments(a),
            Some(OnInsert::OnConflict(c)) => {
                if let OnConflictAction::DoUpdate(u) = &c.action {
                    self.assignments(&u.assignments);
                    if let Some(s) = &u.selection {
                        self.expr(s);
                    }
                }
            }
            _ => {}
        }
        self.returning(&insert.returning);
        effect(Kind::Insert, tables)
    }

    fn update(&mut self, update: &ast::Update) -> Effect {
        // Every table of the target list may be written (MySQL multi-table
        // UPDATE names several); tables in FROM are only read.
        let mut targets = Vec::new();
        let before = self.reads.len();
        self.table_with_joins(&update.table);
        for t in self.reads.drain(before..) {
            push_table(&mut targets, t);
        }
        match &update.from {
            Some(UpdateTableFromKind::BeforeSet(list) | UpdateTableFromKind::AfterSet(list)) => {
                for twj in list {
                    self.table_with_joins(twj);
                }
            }
            None => {}
        }
        self.assignments(&update.assignments);
        if let Some(s) = &update.selection {
            self.expr(s);
        }
        self.returning(&update.returning);
        Effect {
            kind: Kind::Update,
            tables: targets,
            has_where: Some(update.selection.is_some()),
        }
    }

    fn delete(&mut self, delete: &ast::Delete) -> Effect {
        let from = match &delete.from {
            FromTable::WithFromKeyword(list) | FromTable::WithoutKeyword(list) => list,
        };
        let mut targets = Vec::new();
        if delete.tables.is_empty() {
            // `DELETE FROM t [USING ...]`: the FROM tables are the targets.
            let before = self.reads.len();
            for twj in from {
                self.table_with_joins(twj);
            }
            for t in self.reads.drain(before..) {
                push_table(&mut targets, t);
            }
        } else {
            // MySQL `DELETE t1, t2 FROM t1 JOIN t2 ...`: the listed tables
            // are the targets, the FROM clause is read.
            targets = names(&delete.tables);
            for twj in from {
                self.table_with_joins(twj);
            }
        }
        if let Some(using) = &delete.using {
            for twj in using {
                self.table_with_joins(twj);
            }
        }
        if let Some(s) = &delete.selection {
            self.expr(s);
        }
        self.returning(&delete.returning);
        Effect {
            kind: Kind::Delete,
            tables: targets,
            has_where: Some(delete.selection.is_some()),
        }
    }

    fn merge(&mut self, merge: &ast::Merge) -> Effect {
        let before = self.reads.len();
        self.table_factor(&merge.table);
        let targets: Vec<String> = self.reads.drain(before..).collect();
        self.table_factor(&merge.source);
        self.expr(&merge.on);
        for clause in &merge.clauses {
            if let Some(p) = &clause.predicate {
                self.expr(p);
            }
            match &clause.action {
                MergeAction::Update(u) => {
                    if let ast::MergeUpdateKind::Set(a) = &u.kind {
                        self.assignments(a);
                    }
                    for p in [&u.update_predicate, &u.delete_predicate]
                        .into_iter()
                        .flatten()
                    {
                        self.expr(p);
                    }
                }
                MergeAction::Insert(i) => {
                    if let ast::MergeInsertKind::Values(values) = &i.kind {
                        for row in &values.rows {
                            for e in row.iter() {
                                self.expr(e);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        effect(Kind::Merge, targets)
    }

    fn set(&mut self, set: &ast::Set) -> (Kind, Effect) {
        use ast::Set as V;
        match set {
            V::SetRole { .. } | V::SetSessionAuthorization(_) => {
                push_risk(&mut self.risks, Risk::RoleChange);
            }
            V::SingleAssignment {
                variable, values, ..
            } => {
                if matches!(
                    object_name(variable).as_str(),
                    "role" | "session_authorization"
                ) {
                    push_risk(&mut self.risks, Risk::RoleChange);
                }
                for v in values {
                    self.expr(v);
                }
            }
            V::ParenthesizedAssignments { values, .. } => {
                for v in values {
                    self.expr(v);
                }
            }
            V::MultipleAssignments { assignments } => {
                for a in assignments {
                    self.expr(&a.value);
                }
            }
            V::SetTransaction { .. } => {
                return (Kind::Transaction, effect(Kind::Transaction, Vec::new()));
            }
            _ => {}
        }
        (Kind::Set, effect(Kind::Set, Vec::new()))
    }

    fn function(&mut self, f: &Function) {
        self.function_arguments(&f.parameters);
        self.function_arguments(&f.args);
        if let Some(filter) = &f.filter {
            self.expr(filter);
        }
    }

    fn function_arguments(&mut self, args: &FunctionArguments) {
        match args {
            FunctionArguments::None => {}
            FunctionArguments::Subquery(q) => self.query(q),
            FunctionArguments::List(list) => {
                for a in &list.args {
                    self.function_arg(a);
                }
            }
        }
    }

    fn function_arg(&mut self, arg: &FunctionArg) {
        let value = match arg {
            FunctionArg::Named { arg, .. }
            | FunctionArg::ExprNamed { arg, .. }
            | FunctionArg::Unnamed(arg) => arg,
        };
        if let FunctionArgExpr::Expr(e) = value {
            self.expr(e);
        }
    }

    fn exprs(&mut self, list: &[Expr]) {
        for e in list {
            self.expr(e);
        }
    }

    /// Walks an expression for subqueries (their tables are reads).
    /// Side-effect functions are found on tokens, not here.
    fn expr(&mut self, e: &Expr) {
        if !self.enter() {
            return;
        }
        match e {
            Expr::IsFalse(x)
            | Expr::IsNotFalse(x)
            | Expr::IsTrue(x)
            | Expr::IsNotTrue(x)
            | Expr::IsNull(x)
            | Expr::IsNotNull(x)
            | Expr::IsUnknown(x)
            | Expr::IsNotUnknown(x)
            | Expr::Nested(x)
            | Expr::OuterJoin(x)
            | Expr::Prior(x)
            | Expr::UnaryOp { expr: x, .. }
            | Expr::Cast { expr: x, .. }
            | Expr::Extract { expr: x, .. }
            | Expr::Ceil { expr: x, .. }
            | Expr::Floor { expr: x, .. }
            | Expr::Collate { expr: x, .. }
            | Expr::Prefixed { value: x, .. }
            | Expr::Named { expr: x, .. }
            | Expr::IsJson { expr: x, .. }
            | Expr::IsNormalized { expr: x, .. } => self.expr(x),
            Expr::BinaryOp { .. } => {
                // Operator chains are left-deep and as long as the input
                // makes them; walk down the left spine in a loop so that
                // only real nesting counts against the depth limit.
                // Right operands are walked afterwards, in source order.
                let mut current = e;
                let mut rights = Vec::new();
                while let Expr::BinaryOp { left, right, .. } = current {
                    rights.push(right.as_ref());
                    current = left;
                }
                self.expr(current);
                for right in rights.into_iter().rev() {
                    self.expr(right);
                }
            }
            Expr::IsDistinctFrom(a, b)
            | Expr::IsNotDistinctFrom(a, b)
            | Expr::AnyOp {
                left: a, right: b, ..
            }
            | Expr::AllOp {
                left: a, right: b, ..
            }
            | Expr::AtTimeZone {
                timestamp: a,
                time_zone: b,
            }
            | Expr::Position { expr: a, r#in: b }
            | Expr::RLike {
                expr: a,
                pattern: b,
                ..
            } => {
                self.expr(a);
                self.expr(b);
            }
            Expr::Like {
                expr,
                pattern,
                escape_char,
                ..
            }
            | Expr::ILike {
                expr,
                pattern,
                escape_char,
                ..
            }
            | Expr::SimilarTo {
                expr,
                pattern,
                escape_char,
                ..
            } => {
                self.expr(expr);
                self.expr(pattern);
                if let Some(x) = escape_char {
                    self.expr(x);
                }
            }
            Expr::In { expr, target, .. } => {
                self.expr(expr);
                match target {
                    InTarget::List(list) => self.exprs(list),
                    InTarget::Subquery(q) => self.query(q),
                    InTarget::Unnest(x) => self.expr(x),
                    InTarget::Table { name, .. } => {
                        push_table(&mut self.reads, object_name(name));
                    }
                }
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                self.expr(expr);
                self.expr(low);
                self.expr(high);
            }
            Expr::Convert { expr, styles, .. } => {
                self.expr(expr);
                self.exprs(styles);
            }
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                self.expr(expr);
                for x in [substring_from, substring_for].into_iter().flatten() {
                    self.expr(x);
                }
            }
            Expr::Trim {
                expr,
                trim_what,
                trim_characters,
                ..
            } => {
                self.expr(expr);
                if let Some(x) = trim_what {
                    self.expr(x);
                }
                if let Some(list) = trim_characters {
                    self.exprs(list);
                }
            }
            Expr::Overlay {
                expr,
                overlay_what,
                overlay_from,
                overlay_for,
            } => {
                self.expr(expr);
                self.expr(overlay_what);
                self.expr(overlay_from);
                if let Some(x) = overlay_for {
                    self.expr(x);
                }
            }
            Expr::Function(f) => self.function(f),
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                if let Some(x) = operand {
                    self.expr(x);
                }
                for c in conditions {
                    self.expr(&c.condition);
                    self.expr(&c.result);
                }
                if let Some(x) = else_result {
                    self.expr(x);
                }
            }
            Expr::Exists { subquery, .. } | Expr::Subquery(subquery) => self.query(subquery),
            Expr::GroupingSets(sets) | Expr::Cube(sets) | Expr::Rollup(sets) => {
                for set in sets {
                    self.exprs(set);
                }
            }
            Expr::Tuple(list) => self.exprs(list),
            Expr::Struct { values, .. } => self.exprs(values),
            Expr::Array(a) => self.exprs(&a.elem),
            Expr::Interval(i) => self.expr(&i.value),
            Expr::CompoundFieldAccess { root, .. } => self.expr(root),
            Expr::JsonAccess { value, .. } => self.expr(value),
            Expr::Lambda(l) => self.expr(&l.body),
            _ => {}
        }
        self.leave();
    }
}

/// Whether `EXPLAIN (...)` options turn ANALYZE on. `(ANALYZE)`,
/// `(ANALYZE true)` and `(ANALYZE on)` do; only an explicit false/off/0
/// turns it off, so an argument we do not understand counts as on.
fn analyze_option(options: &[ast::UtilityOption]) -> bool {
    options.iter().any(|o| {
        let name = o.name.value.to_ascii_lowercase();
        if name != "analyze" && name != "analyse" {
            return false;
        }
        match &o.arg {
            None => true,
            Some(arg) => {
                let text = arg.to_string().to_ascii_lowercase();
                !matches!(text.trim_matches('\''), "false" | "off" | "0" | "no")
            }
        }
    })
}

fn grant_tables(objects: &Option<ast::GrantObjects>) -> Vec<String> {
    match objects {
        Some(ast::GrantObjects::Tables(list)) => names(list),
        _ => Vec::new(),
    }
}

fn join_constraint(op: &ast::JoinOperator) -> Option<&ast::JoinConstraint> {
    use ast::JoinOperator as J;
    match op {
        J::Join(c)
        | J::Inner(c)
        | J::Left(c)
        | J::LeftOuter(c)
        | J::Right(c)
        | J::RightOuter(c)
        | J::FullOuter(c)
        | J::CrossJoin(c)
        | J::Semi(c)
        | J::LeftSemi(c)
        | J::RightSemi(c)
        | J::Anti(c)
        | J::LeftAnti(c)
        | J::RightAnti(c)
        | J::StraightJoin(c)
        | J::AsOf { constraint: c, .. } => Some(c),
        _ => None,
    }
}

/// Walks free-standing expressions (MySQL `DO`) and returns the tables their
/// subqueries read.
pub(crate) fn walk_exprs(exprs: &[Expr]) -> Result<Vec<String>, String> {
    let mut walker = Walker::default();
    walker.exprs(exprs);
    if walker.too_deep {
        return Err("expression nests too deeply to classify".into());
    }
    Ok(walker.reads)
}
