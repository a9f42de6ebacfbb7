//! Narrow token-level recognizers for statements sqlparser 0.64 rejects but
//! that are common in real sessions: PostgreSQL `DO`, `TABLE t`, `CHECKPOINT`,
//! `REINDEX`, `CLUSTER`, `CREATE PROCEDURE ... AS $$...$$` and `COPY t
//! FROM STDIN / TO STDOUT` with options sqlparser does not know (`FREEZE`,
//! as pgbench sends); MySQL
//! `LOAD DATA`, `PREPARE ... FROM`, `DO`, `OPTIMIZE`/`CHECK`/`REPAIR`/
//! `CHECKSUM TABLE`, `HANDLER` and `XA`.
//!
//! They run only after the parser has failed on one statement, and each
//! accepts only a token shape whose meaning is clear; anything else keeps the
//! parser's error, so the message stays unparsed (fail closed). A recognizer
//! never sees more than one statement, because splitting on `;` already
//! happened on the tokenizer's output.

use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Word};

use crate::parse::{self, push_risk};
use crate::{Dialect, Effect, Kind, Risk, Statement};

/// The first keyword of the statement, if it is an unquoted word.
fn first_keyword(tokens: &[&Token]) -> Option<Keyword> {
    match tokens.first() {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.keyword),
        _ => None,
    }
}

/// Whether the statement might be one a recognizer handles, checked before
/// parsing so that the common path does not copy its tokens.
pub(crate) fn is_candidate(dialect: Dialect, tokens: &[&Token]) -> bool {
    let first = tokens.first();
    match dialect {
        Dialect::Postgres => {
            [
                "do",
                "checkpoint",
                "reindex",
                "cluster",
                "table",
                "vacuum",
                "analyze",
                "analyse",
            ]
            .iter()
            .any(|w| is_word(first, w))
                || (is_word(first, "copy")
                    && tokens
                        .iter()
                        .any(|t| is_word(Some(t), "stdin") || is_word(Some(t), "stdout")))
                || (is_word(first, "create")
                    && tokens
                        .iter()
                        .take(4)
                        .any(|t| is_word(Some(t), "procedure") || is_word(Some(t), "function")))
        }
        Dialect::MySql => {
            [
                "load", "prepare", "do", "optimize", "check", "repair", "checksum", "handler", "xa",
            ]
            .iter()
            .any(|w| is_word(first, w))
                || (is_word(first, "select")
                    && tokens
                        .iter()
                        .any(|t| is_word(Some(t), "outfile") || is_word(Some(t), "dumpfile")))
        }
    }
}

/// Recognizes a statement the parser rejected, or returns `None`.
pub(crate) fn recognize(dialect: Dialect, tokens: &[&Token]) -> Option<Statement> {
    match dialect {
        Dialect::Postgres => postgres(tokens),
        Dialect::MySql => mysql(tokens),
    }
}

fn is_word(token: Option<&&Token>, word: &str) -> bool {
    matches!(token, Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

fn word_at<'a>(tokens: &[&'a Token], i: usize) -> Option<&'a Word> {
    match tokens.get(i) {
        Some(Token::Word(w)) => Some(w),
        _ => None,
    }
}

fn simple(kind: Kind, tables: Vec<String>, risks: Vec<Risk>) -> Statement {
    Statement {
        kind,
        effects: vec![Effect {
            kind,
            tables,
            has_where: None,
        }],
        risks,
    }
}

fn is_string(token: Option<&&Token>) -> bool {
    matches!(
        token,
        Some(
            Token::SingleQuotedString(_)
                | Token::DollarQuotedString(_)
                | Token::EscapedStringLiteral(_)
                | Token::DoubleQuotedString(_)
        )
    )
}

/// Only names, punctuation of names and parentheses: the shape of
/// maintenance commands, which cannot hide expressions or other statements.
fn only_names(tokens: &[&Token]) -> bool {
    tokens.iter().all(|t| {
        matches!(
            t,
            Token::Word(_) | Token::Period | Token::Comma | Token::LParen | Token::RParen
        )
    })
}

/// Reads a dotted name starting at `i`; returns it and the index after it.
fn dotted_name(tokens: &[&Token], mut i: usize) -> Option<(String, usize)> {
    let mut name = word_at(tokens, i)?.value.to_lowercase();
    i += 1;
    while matches!(tokens.get(i), Some(Token::Period)) {
        let part = word_at(tokens, i + 1)?;
        name.push('.');
        name.push_str(&part.value.to_lowercase());
        i += 2;
    }
    Some((name, i))
}

fn postgres(tokens: &[&Token]) -> Option<Statement> {
    let first = tokens.first();
    if is_word(first, "do") {
        return postgres_do(tokens);
    }
    if is_word(first, "table") {
        // `TABLE name` is shorthand for `SELECT * FROM name`.
        let (name, after) = dotted_name(tokens, 1)?;
        return (after == tokens.len()).then(|| simple(Kind::Select, vec![name], Vec::new()));
    }
    if is_word(first, "checkpoint") {
        return (tokens.len() == 1).then(|| simple(Kind::Maintenance, Vec::new(), Vec::new()));
    }
    if is_word(first, "reindex") || is_word(first, "cluster") {
        if !only_names(tokens) {
            return None;
        }
        // The table, when the command names one: `REINDEX TABLE t`,
        // `CLUSTER [VERBOSE] t [USING idx]`.
        let mut tables = Vec::new();
        let mut i = 1;
        if matches!(tokens.get(i), Some(Token::LParen)) {
            while tokens.get(i).is_some_and(|t| **t != Token::RParen) {
                i += 1;
            }
            i += 1;
        }
        if is_word(first, "reindex") {
            if is_word(tokens.get(i), "table") {
                i += 1;
                if is_word(tokens.get(i), "concurrently") {
                    i += 1;
                }
                tables.extend(dotted_name(tokens, i).map(|(n, _)| n));
            }
        } else {
            if is_word(tokens.get(i), "verbose") {
                i += 1;
            }
            tables.extend(dotted_name(tokens, i).map(|(n, _)| n));
        }
        return Some(simple(Kind::Maintenance, tables, Vec::new()));
    }
    if first_keyword(tokens) == Some(Keyword::CREATE) {
        return create_routine(tokens);
    }
    if is_word(first, "copy") {
        return copy_stdio(tokens);
    }
    if ["vacuum", "analyze", "analyse"]
        .iter()
        .any(|w| is_word(first, w))
    {
        return vacuum(tokens);
    }
    None
}

/// `VACUUM [(options)] [FULL] [FREEZE] [VERBOSE] [ANALYZE] [table [(cols)], ...]`
/// and `ANALYZE [(options)] [VERBOSE] [table [(cols)], ...]`: names only.
fn vacuum(tokens: &[&Token]) -> Option<Statement> {
    if !only_names(tokens) {
        return None;
    }
    const FLAGS: [&str; 6] = [
        "full",
        "freeze",
        "verbose",
        "analyze",
        "analyse",
        "skip_locked",
    ];
    let mut tables = Vec::new();
    let mut i = 1;
    let mut depth = 0usize;
    while i < tokens.len() {
        match tokens[i] {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::Word(_) if depth == 0 && !FLAGS.iter().any(|f| is_word(tokens.get(i), f)) => {
                let (name, after) = dotted_name(tokens, i)?;
                tables.push(name);
                i = after;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Some(simple(Kind::Maintenance, tables, Vec::new()))
}

/// `COPY name [(columns)] FROM STDIN | TO STDOUT [[WITH] (options)]`, where
/// the options are only words, numbers, strings, commas and parentheses, so
/// they cannot hide a query, a program or a file. A parenthesized query
/// (`COPY (SELECT ...) TO STDOUT`) is not accepted here.
fn copy_stdio(tokens: &[&Token]) -> Option<Statement> {
    let (table, mut i) = dotted_name(tokens, 1)?;
    if matches!(tokens.get(i), Some(Token::LParen)) {
        i += 1;
        while !matches!(tokens.get(i), Some(Token::RParen)) {
            if !matches!(tokens.get(i), Some(Token::Word(_) | Token::Comma)) {
                return None;
            }
            i += 1;
        }
        i += 1;
    }
    let from = if is_word(tokens.get(i), "from") && is_word(tokens.get(i + 1), "stdin") {
        true
    } else if is_word(tokens.get(i), "to") && is_word(tokens.get(i + 1), "stdout") {
        false
    } else {
        return None;
    };
    let options = &tokens[i + 2..];
    let plain = options.iter().all(|t| {
        matches!(
            t,
            Token::Word(_)
                | Token::Number(..)
                | Token::SingleQuotedString(_)
                | Token::Comma
                | Token::LParen
                | Token::RParen
        )
    });
    if !plain || options.iter().any(|t| is_word(Some(t), "program")) {
        return None;
    }
    // The same effects the parser path reports: COPY FROM also inserts.
    let mut st = simple(Kind::Copy, vec![table.clone()], Vec::new());
    if from {
        st.effects.push(Effect {
            kind: Kind::Insert,
            tables: vec![table],
            has_where: None,
        });
    }
    Some(st)
}

/// `DO [LANGUAGE l] 'code' [LANGUAGE l]`.
fn postgres_do(tokens: &[&Token]) -> Option<Statement> {
    let mut i = 1;
    let mut strings = 0;
    while i < tokens.len() {
        if is_string(tokens.get(i)) {
            strings += 1;
            i += 1;
        } else if is_word(tokens.get(i), "language") && word_at(tokens, i + 1).is_some() {
            i += 2;
        } else {
            return None;
        }
    }
    (strings == 1).then(|| simple(Kind::Do, Vec::new(), vec![Risk::DynamicSql]))
}

/// `CREATE [OR REPLACE] PROCEDURE|FUNCTION name (...) ...` whose body the
/// parser could not read: the body is opaque code either way.
fn create_routine(tokens: &[&Token]) -> Option<Statement> {
    let mut i = 1;
    if is_word(tokens.get(i), "or") && is_word(tokens.get(i + 1), "replace") {
        i += 2;
    }
    if !(is_word(tokens.get(i), "procedure") || is_word(tokens.get(i), "function")) {
        return None;
    }
    let (name, after) = dotted_name(tokens, i + 1)?;
    if !matches!(tokens.get(after), Some(Token::LParen)) {
        return None;
    }
    Some(simple(Kind::Create, vec![name], vec![Risk::DynamicSql]))
}

fn mysql(tokens: &[&Token]) -> Option<Statement> {
    let first = tokens.first();
    match first_keyword(tokens) {
        Some(Keyword::LOAD) => return load_data(tokens),
        Some(Keyword::PREPARE) => return mysql_prepare(tokens),
        Some(Keyword::DO) => return mysql_do(tokens),
        Some(Keyword::SELECT) => return select_into_outfile(tokens),
        Some(Keyword::OPTIMIZE | Keyword::CHECK | Keyword::REPAIR) => {
            return table_maintenance(tokens);
        }
        _ => {}
    }
    if is_word(first, "checksum") {
        return table_maintenance(tokens);
    }
    if is_word(first, "handler") {
        // `HANDLER t OPEN|READ|CLOSE`: READ returns rows like SELECT.
        let (name, after) = dotted_name(tokens, 1)?;
        let kind = if is_word(tokens.get(after), "read") {
            Kind::Select
        } else if is_word(tokens.get(after), "open") || is_word(tokens.get(after), "close") {
            Kind::Other
        } else {
            return None;
        };
        return Some(simple(kind, vec![name], Vec::new()));
    }
    if is_word(first, "xa") {
        return only_xa(tokens).then(|| simple(Kind::Transaction, Vec::new(), Vec::new()));
    }
    None
}

fn only_xa(tokens: &[&Token]) -> bool {
    tokens.iter().all(|t| {
        matches!(
            t,
            Token::Word(_) | Token::SingleQuotedString(_) | Token::Comma | Token::Number(..)
        )
    })
}

/// `OPTIMIZE|CHECK|REPAIR|CHECKSUM [NO_WRITE_TO_BINLOG|LOCAL] TABLE t, ... [options]`.
fn table_maintenance(tokens: &[&Token]) -> Option<Statement> {
    if !only_names(tokens) {
        return None;
    }
    let mut i = 1;
    if is_word(tokens.get(i), "no_write_to_binlog") || is_word(tokens.get(i), "local") {
        i += 1;
    }
    if !is_word(tokens.get(i), "table") {
        return None;
    }
    i += 1;
    let mut tables = Vec::new();
    loop {
        let (name, after) = dotted_name(tokens, i)?;
        tables.push(name);
        if matches!(tokens.get(after), Some(Token::Comma)) {
            i = after + 1;
        } else {
            break;
        }
    }
    Some(simple(Kind::Maintenance, tables, Vec::new()))
}

/// `LOAD DATA|XML [LOW_PRIORITY|CONCURRENT] [LOCAL] INFILE 'f' [REPLACE|IGNORE]
/// INTO TABLE t ...`. Reads a file (on the server unless LOCAL) into a table.
fn load_data(tokens: &[&Token]) -> Option<Statement> {
    if !(is_word(tokens.get(1), "data") || is_word(tokens.get(1), "xml")) {
        return None;
    }
    let mut i = 2;
    if is_word(tokens.get(i), "low_priority") || is_word(tokens.get(i), "concurrent") {
        i += 1;
    }
    let local = is_word(tokens.get(i), "local");
    if local {
        i += 1;
    }
    if !is_word(tokens.get(i), "infile") || !is_string(tokens.get(i + 1)) {
        return None;
    }
    i += 2;
    if is_word(tokens.get(i), "replace") || is_word(tokens.get(i), "ignore") {
        i += 1;
    }
    if !(is_word(tokens.get(i), "into") && is_word(tokens.get(i + 1), "table")) {
        return None;
    }
    let (name, _) = dotted_name(tokens, i + 2)?;
    let mut risks = Vec::new();
    if !local {
        risks.push(Risk::ServerFile);
    }
    Some(Statement {
        kind: Kind::Copy,
        effects: vec![
            Effect {
                kind: Kind::Copy,
                tables: vec![name.clone()],
                has_where: None,
            },
            Effect {
                kind: Kind::Insert,
                tables: vec![name],
                has_where: None,
            },
        ],
        risks,
    })
}

/// `PREPARE s FROM 'text' | @var`. The text is classified when it is a
/// literal, so its effects are visible now; it is dynamic SQL either way.
fn mysql_prepare(tokens: &[&Token]) -> Option<Statement> {
    word_at(tokens, 1)?;
    if !is_word(tokens.get(2), "from") || tokens.len() != 4 {
        return None;
    }
    let mut statement = simple(Kind::Prepare, Vec::new(), vec![Risk::DynamicSql]);
    match tokens.get(3) {
        Some(Token::SingleQuotedString(text) | Token::DoubleQuotedString(text)) => {
            let inner = crate::classify(Dialect::MySql, text);
            for s in inner.statements {
                statement.effects.extend(s.effects);
                for r in s.risks {
                    push_risk(&mut statement.risks, r);
                }
            }
            if inner.unparsed.is_some() {
                // What the prepared text does is unknown; the DynamicSql
                // risk already says so.
            }
        }
        Some(Token::Word(w)) if w.value.starts_with('@') => {}
        _ => return None,
    }
    Some(statement)
}

/// MySQL `DO expr, ...`: evaluates expressions for their side effects.
fn mysql_do(tokens: &[&Token]) -> Option<Statement> {
    let rest: Vec<_> = tokens
        .iter()
        .skip(1)
        .map(|t| sqlparser::tokenizer::TokenWithSpan::wrap((*t).clone()))
        .collect();
    let d = parse::sql_dialect(Dialect::MySql);
    let mut parser = Parser::new(d).with_tokens_with_locations(rest);
    let exprs = parser.parse_comma_separated(Parser::parse_expr).ok()?;
    if parser.peek_token_ref().token != Token::EOF {
        return None;
    }
    let select = parse::walk_exprs(&exprs).ok()?;
    let mut statement = simple(Kind::Do, Vec::new(), Vec::new());
    if !select.is_empty() {
        statement.effects.push(Effect {
            kind: Kind::Select,
            tables: select,
            has_where: None,
        });
    }
    Some(statement)
}

/// MySQL `SELECT ... INTO OUTFILE|DUMPFILE 'f' [export options]`, which
/// sqlparser does not parse: the INTO clause is cut out, the rest is parsed
/// as a query, and the file write is reported as a risk.
fn select_into_outfile(tokens: &[&Token]) -> Option<Statement> {
    let start = tokens.iter().enumerate().position(|(i, t)| {
        matches!(t, Token::Word(w) if w.keyword == Keyword::INTO && w.quote_style.is_none())
            && (is_word(tokens.get(i + 1), "outfile") || is_word(tokens.get(i + 1), "dumpfile"))
    })?;
    if !is_string(tokens.get(start + 2)) {
        return None;
    }
    // Export options are keywords and strings; the clause ends at the first
    // token that cannot belong to them (`FROM`, `FOR`, end of statement).
    let mut end = start + 3;
    while let Some(t) = tokens.get(end) {
        let option = match t {
            Token::Word(w) if w.quote_style.is_none() => {
                matches!(
                    w.value.to_ascii_lowercase().as_str(),
                    "character"
                        | "set"
                        | "charset"
                        | "fields"
                        | "columns"
                        | "terminated"
                        | "optionally"
                        | "enclosed"
                        | "escaped"
                        | "lines"
                        | "starting"
                        | "by"
                ) || matches!(tokens.get(end.wrapping_sub(1)), Some(Token::Word(p)) if p.keyword == Keyword::SET)
            }
            Token::SingleQuotedString(_) | Token::DoubleQuotedString(_) => true,
            _ => false,
        };
        if !option {
            break;
        }
        end += 1;
    }
    let rest: Vec<_> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < start || *i >= end)
        .map(|(_, t)| sqlparser::tokenizer::TokenWithSpan::wrap((*t).clone()))
        .collect();
    let ast = parse::parse_one(parse::sql_dialect(Dialect::MySql), rest).ok()?;
    let mut statement = parse::walk_statement(&ast).ok()?;
    if statement.kind != Kind::Select {
        return None;
    }
    push_risk(&mut statement.risks, Risk::ServerFile);
    Some(statement)
}
