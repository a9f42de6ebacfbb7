//! SQL classification for policy guards.
//!
//! [`classify`] turns the text of one client message (which may hold many
//! statements) into a [`Classification`]: one [`Statement`] per statement the
//! server would run, each with its [`Kind`], the tables it touches, whether a
//! `DELETE`/`UPDATE` has a `WHERE` clause, the [`Effect`]s of nested
//! data-modifying statements, and the [`Risk`]s that make it unsafe to judge
//! by its kind alone.
//!
//! **Invariant:** classification never fails and never panics. Text that
//! cannot be parsed yields `Classification { unparsed: Some(..), .. }`; the
//! policy decides what that means (by default, the strictest guard that could
//! apply). Comments and quoting never hide or invent a statement.
//!
//! # How it works
//!
//! 1. The text is tokenized once with sqlparser's tokenizer and split on its
//!    `;` tokens outside parentheses, so splitting and parsing agree on what
//!    is quoted or commented (`parse`).
//! 2. Each statement is parsed on its own and its AST walked by hand for the
//!    kind, tables, `WHERE` presence and nested data-modifying effects
//!    (CTEs, `EXPLAIN ANALYZE`, `PREPARE`, rule actions, `CREATE TABLE AS`).
//! 3. Statements sqlparser 0.64 rejects but that have a clear token shape
//!    (`DO`, `CHECKPOINT`, `REINDEX`, MySQL `LOAD DATA`, `PREPARE ... FROM`,
//!    `SELECT ... INTO OUTFILE`...) go to narrow recognizers (`recognize`).
//! 4. Calls of side-effect functions are found on the tokens (`functions`),
//!    so no expression position can hide one.
//! 5. An independent lexer (`lexical`) splits the text again; if it and the
//!    parser disagree on the number of statements, or if the split changes
//!    with the server's backslash-escaping settings, the text is unparsed.
//!    The same lexer supplies `Unparsed::guessed`.
//!
//! # Limits
//!
//! * Over a mebibyte of text ([`MAX_PARSED_LEN`]) or more than 8192 infix
//!   operators in one statement is unparsed, bounding time and stack.
//! * MySQL `CREATE PROCEDURE ... BEGIN ...; END` bodies contain `;` and are
//!   unparsed (the `DELIMITER` client command is not SQL).
//! * Function names are matched without schema resolution: a user function
//!   named like a listed one is reported too.
#![forbid(unsafe_code)]

mod functions;
mod lexical;
mod parse;
mod recognize;
mod render;

/// Which server grammar to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    Postgres,
    MySql,
}

/// What a statement does, as policy authors name it (`statements "drop" "delete"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Select,
    Insert,
    Update,
    Delete,
    Merge,
    Truncate,
    Drop,
    Create,
    Alter,
    Grant,
    Revoke,
    Copy,
    Set,
    Show,
    Transaction,
    Explain,
    Call,
    Do,
    Prepare,
    Execute,
    Deallocate,
    Lock,
    Maintenance,
    Use,
    Other,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 25] = [
        Kind::Select,
        Kind::Insert,
        Kind::Update,
        Kind::Delete,
        Kind::Merge,
        Kind::Truncate,
        Kind::Drop,
        Kind::Create,
        Kind::Alter,
        Kind::Grant,
        Kind::Revoke,
        Kind::Copy,
        Kind::Set,
        Kind::Show,
        Kind::Transaction,
        Kind::Explain,
        Kind::Call,
        Kind::Do,
        Kind::Prepare,
        Kind::Execute,
        Kind::Deallocate,
        Kind::Lock,
        Kind::Maintenance,
        Kind::Use,
        Kind::Other,
    ];

    /// The lowercase name used in policy files and output.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Select => "select",
            Kind::Insert => "insert",
            Kind::Update => "update",
            Kind::Delete => "delete",
            Kind::Merge => "merge",
            Kind::Truncate => "truncate",
            Kind::Drop => "drop",
            Kind::Create => "create",
            Kind::Alter => "alter",
            Kind::Grant => "grant",
            Kind::Revoke => "revoke",
            Kind::Copy => "copy",
            Kind::Set => "set",
            Kind::Show => "show",
            Kind::Transaction => "transaction",
            Kind::Explain => "explain",
            Kind::Call => "call",
            Kind::Do => "do",
            Kind::Prepare => "prepare",
            Kind::Execute => "execute",
            Kind::Deallocate => "deallocate",
            Kind::Lock => "lock",
            Kind::Maintenance => "maintenance",
            Kind::Use => "use",
            Kind::Other => "other",
        }
    }

    /// Parses a policy name back into a kind.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Something a statement does to a table, directly or nested (a data-modifying
/// CTE, the statement inside `EXPLAIN ANALYZE`, a rule of `CREATE RULE`...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    pub kind: Kind,
    /// Lowercased, unquoted names as written: `orders`, `public.orders`.
    pub tables: Vec<String>,
    /// For `DELETE`/`UPDATE`: whether a `WHERE` clause is present. `None` for
    /// other kinds.
    pub has_where: Option<bool>,
}

/// Why a statement cannot safely be judged by its kind alone.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Risk {
    /// `DO` blocks, `EXECUTE` of dynamic text, `PREPARE ... FROM` strings,
    /// `CREATE FUNCTION`/`PROCEDURE` bodies: code the parser cannot see into.
    DynamicSql,
    /// A call of a function known to have side effects
    /// (`pg_terminate_backend`, `lo_unlink`, `dblink_exec`, `set_config`...).
    SideEffectFunction(String),
    /// `COPY ... TO/FROM PROGRAM` runs a shell command on the server.
    ShellCommand,
    /// `COPY ... TO/FROM 'file'` reads or writes server files.
    ServerFile,
    /// `EXPLAIN ANALYZE` executes the statement it explains.
    ExplainAnalyze,
    /// MySQL `/*! ... */` versioned comments: code on some server versions.
    VersionedComment,
    /// Changes the session's identity or privileges (`SET ROLE`,
    /// `SET SESSION AUTHORIZATION`).
    RoleChange,
}

impl Risk {
    /// A short lowercase name for output (`dynamic-sql`, `side-effect-function:pg_sleep`).
    pub fn name(&self) -> String {
        match self {
            Risk::DynamicSql => "dynamic-sql".into(),
            Risk::SideEffectFunction(f) => format!("side-effect-function:{f}"),
            Risk::ShellCommand => "shell-command".into(),
            Risk::ServerFile => "server-file".into(),
            Risk::ExplainAnalyze => "explain-analyze".into(),
            Risk::VersionedComment => "versioned-comment".into(),
            Risk::RoleChange => "role-change".into(),
        }
    }
}

/// One statement of the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// The top-level kind (`WITH d AS (DELETE ...) SELECT` is a `Select`).
    pub kind: Kind,
    /// Every effect, the top-level one first, then nested ones.
    pub effects: Vec<Effect>,
    pub risks: Vec<Risk>,
}

/// Why text could not be classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unparsed {
    /// The parser's message, for logs and `gwctl explain`.
    pub reason: String,
    /// Kinds read lexically from the first keyword of each `;`-separated part
    /// (outside strings, dollar quotes and comments). Informational: the
    /// policy treats unparsed text by its `unparsed` setting.
    pub guessed: Vec<Kind>,
}

/// The classification of one message's SQL text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classification {
    pub statements: Vec<Statement>,
    /// Set when any part of the text could not be parsed. `statements` then
    /// holds nothing, so a guard can never be skipped by a half-parsed string.
    pub unparsed: Option<Unparsed>,
}

impl Classification {
    /// Every effect of every statement.
    pub fn effects(&self) -> impl Iterator<Item = &Effect> {
        self.statements.iter().flat_map(|s| s.effects.iter())
    }

    /// Every risk of every statement.
    pub fn risks(&self) -> impl Iterator<Item = &Risk> {
        self.statements.iter().flat_map(|s| s.risks.iter())
    }
}

/// Inputs longer than this are not parsed: one client message of SQL larger
/// than a mebibyte is almost certainly data or an attack on the parser, and
/// bounding it bounds the classifier's time and memory.
pub const MAX_PARSED_LEN: usize = 1 << 20;

/// How deeply `PREPARE ... FROM '...'` texts are classified inside each
/// other before the inner text is left opaque (it is `DynamicSql` anyway).
const MAX_NESTED_CLASSIFY: u32 = 4;

thread_local! {
    static NESTING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Classifies `sql` in `dialect`. Never fails, never panics.
pub fn classify(dialect: Dialect, sql: &str) -> Classification {
    if sql.len() > MAX_PARSED_LEN {
        return unparsed(
            dialect,
            sql,
            format!("too large: {} bytes (limit {MAX_PARSED_LEN})", sql.len()),
        );
    }
    let depth = NESTING.with(|n| n.get());
    if depth >= MAX_NESTED_CLASSIFY {
        return unparsed(dialect, sql, "nested dynamic SQL too deep".into());
    }
    NESTING.with(|n| n.set(depth + 1));
    let result = classify_inner(dialect, sql);
    NESTING.with(|n| n.set(depth));
    result
}

fn classify_inner(dialect: Dialect, sql: &str) -> Classification {
    let lexed = lexical::lex(dialect, sql);
    if lexed.mariadb_comment {
        // sqlparser reads MariaDB's `/*M! ... */` as a comment, but MariaDB
        // runs it; what the parser saw is not what the server runs.
        return unparsed(dialect, sql, "MariaDB executable comment (/*M!)".into());
    }
    if sql.contains('\\') {
        let flipped = lexical::lex_flipped(dialect, sql);
        if flipped.parts != lexed.parts {
            // Guess from the reading that shows more statements: it is the
            // one that reveals what the other would hide.
            let guesses = if flipped.parts.len() > lexed.parts.len() {
                &flipped
            } else {
                &lexed
            };
            return unparsed_lexed(
                guesses,
                sql,
                "statement boundaries depend on the server's backslash escaping \
                 (NO_BACKSLASH_ESCAPES, ANSI_QUOTES or standard_conforming_strings)"
                    .into(),
            );
        }
    }
    match parse::classify_statements(dialect, sql) {
        Ok(mut statements) => {
            if statements.len() != lexed.parts.len() {
                // Two independent lexers disagree about where statements
                // start and end (for example over Unicode whitespace after
                // `--` in MySQL). One of them is wrong about what the server
                // runs, and we cannot tell which: fail closed.
                return unparsed(
                    dialect,
                    sql,
                    format!(
                        "statement boundaries are ambiguous: parser found {}, lexer found {}",
                        statements.len(),
                        lexed.parts.len()
                    ),
                );
            }
            if lexed.versioned_comment {
                // A versioned comment can span statements (`/*!50000 1; DROP
                // TABLE t */`), so it is not attributed to one: every
                // statement of the message carries the risk.
                for s in &mut statements {
                    parse::push_risk(&mut s.risks, Risk::VersionedComment);
                }
            }
            Classification {
                statements,
                unparsed: None,
            }
        }
        Err(reason) => unparsed_lexed(&lexed, sql, reason),
    }
}

fn unparsed(dialect: Dialect, sql: &str, reason: String) -> Classification {
    unparsed_lexed(&lexical::lex(dialect, sql), sql, reason)
}

fn unparsed_lexed(lexed: &lexical::Lexed, sql: &str, reason: String) -> Classification {
    Classification {
        statements: Vec::new(),
        unparsed: Some(Unparsed {
            reason,
            guessed: lexical::guess(lexed, sql),
        }),
    }
}

/// Classifies arbitrary bytes (lossily decoded as UTF-8) in both dialects and
/// renders the results. Used by the robustness test and the cargo-fuzz
/// target; it exists to exercise every path, and panics only if classification
/// itself panics.
pub fn fuzz_classify(data: &[u8]) {
    let sql = String::from_utf8_lossy(data);
    for dialect in [Dialect::Postgres, Dialect::MySql] {
        let c = classify(dialect, &sql);
        let _ = c.to_string();
    }
}
