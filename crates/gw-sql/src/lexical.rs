//! The lexical fallback: splits text into statements and guesses their kinds
//! without a grammar.
//!
//! It is used only when the parser rejects the text, to tell a human (and
//! `gwctl explain`) what the text probably was. It also detects MySQL
//! versioned comments (`/*! ... */`, MariaDB's `/*M! ... */`), which the
//! server runs as code. The rules mirror the servers' lexers closely enough
//! that a `;` inside a string, quoted identifier, dollar quote or comment
//! never splits a statement: single quotes (`''` doubling, backslash escapes
//! in MySQL and in PostgreSQL `E''` strings), double quotes, MySQL backticks,
//! PostgreSQL dollar quotes, `--` and MySQL `#` line comments, and block
//! comments (nested in PostgreSQL).

use crate::{Dialect, Kind};

/// One non-empty `;`-separated part of the text.
///
/// Words are kept as byte ranges rather than strings so that lexing, which
/// runs on every classification, does not allocate per word.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part {
    /// Byte ranges of the first words (at most [`MAX_WORDS`]); a leading `(`
    /// counts as a word.
    words: [(usize, usize); MAX_WORDS],
    word_count: usize,
    /// Whether word collection stopped at a non-word token.
    closed: bool,
    /// Byte offset of the `;` that ends the part, or the text length.
    end: usize,
}

impl Part {
    fn push_word(&mut self, start: usize, end: usize) {
        if self.closed {
            return;
        }
        if let Some(slot) = self.words.get_mut(self.word_count) {
            *slot = (start, end);
            self.word_count += 1;
        }
    }

    fn word<'a>(&self, sql: &'a str, index: usize) -> &'a str {
        if index >= self.word_count {
            return "";
        }
        self.words
            .get(index)
            .and_then(|&(s, e)| sql.get(s..e))
            .unwrap_or_default()
    }
}

/// What the lexer found in a text.
#[derive(Debug, Default)]
pub(crate) struct Lexed {
    /// Each non-empty `;`-separated part, in order.
    pub parts: Vec<Part>,
    /// A MySQL `/*!` or `/*M!` comment outside strings.
    pub versioned_comment: bool,
    /// A MariaDB `/*M!` comment, which sqlparser treats as a plain comment.
    pub mariadb_comment: bool,
}

/// How many leading words of a part are kept for guessing.
const MAX_WORDS: usize = 2;

/// Lexes `sql` in `dialect` with the servers' default string rules.
pub(crate) fn lex(dialect: Dialect, sql: &str) -> Lexed {
    lex_with(dialect, sql, false)
}

/// Lexes `sql` with backslash handling in plain strings flipped: MySQL as
/// under `NO_BACKSLASH_ESCAPES` (and `ANSI_QUOTES` for double quotes),
/// PostgreSQL as under `standard_conforming_strings = off`. Those settings
/// belong to the server session, which the classifier cannot see, so text
/// whose statements differ between the two readings is ambiguous.
pub(crate) fn lex_flipped(dialect: Dialect, sql: &str) -> Lexed {
    lex_with(dialect, sql, true)
}

fn lex_with(dialect: Dialect, sql: &str, flipped: bool) -> Lexed {
    let mysql = dialect == Dialect::MySql;
    // Whether a backslash escapes the next character in '...' and "..."
    // strings (PostgreSQL's E'' strings always use backslash escapes).
    let plain_backslash = mysql != flipped;
    let double_backslash = mysql && !flipped;
    let bytes = sql.as_bytes();
    let mut out = Lexed::default();
    let mut part = Part::default();
    // Whether the current part holds anything but whitespace and comments.
    let mut part_has_code = false;
    // Inside a MySQL versioned comment, whose closing `*/` is skipped.
    let mut in_versioned = false;
    // Parenthesis depth: like the grammar-based splitter, a `;` inside
    // parentheses does not end a statement.
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        let next = bytes.get(i + 1).copied();
        match c {
            b';' if depth > 0 => {
                part_has_code = true;
                i += 1;
            }
            b';' => {
                if part_has_code {
                    part.end = i;
                    out.parts.push(part);
                }
                part = Part::default();
                part_has_code = false;
                i += 1;
            }
            b'\'' => {
                part_has_code = true;
                let backslash = plain_backslash || is_escape_string_prefix(bytes, i);
                i = skip_quoted(bytes, i + 1, b'\'', backslash);
            }
            b'"' => {
                part_has_code = true;
                // MySQL treats double quotes as string quotes (with backslash
                // escapes) unless ANSI_QUOTES is set.
                i = skip_quoted(bytes, i + 1, b'"', double_backslash);
            }
            b'`' if mysql => {
                part_has_code = true;
                i = skip_quoted(bytes, i + 1, b'`', false);
            }
            b'$' if !mysql && !prev_is_ident(bytes, i) => {
                if let Some(after) = skip_dollar_quote(bytes, i) {
                    part_has_code = true;
                    i = after;
                } else {
                    part_has_code = true;
                    i += 1;
                }
            }
            b'-' if next == Some(b'-')
                && (!mysql
                    || bytes
                        .get(i + 2)
                        .is_none_or(|b| b.is_ascii_whitespace() || b.is_ascii_control())) =>
            {
                i = skip_line(bytes, i);
            }
            b'#' if mysql => {
                i = skip_line(bytes, i);
            }
            b'*' if in_versioned && next == Some(b'/') => {
                in_versioned = false;
                i += 2;
            }
            b'/' if next == Some(b'*') => {
                let rest = bytes.get(i + 2..).unwrap_or_default();
                if mysql && (rest.starts_with(b"!") || rest.starts_with(b"M!")) {
                    out.versioned_comment = true;
                    if rest.starts_with(b"M!") {
                        out.mariadb_comment = true;
                    }
                    in_versioned = true;
                    i += if rest.starts_with(b"!") { 3 } else { 4 };
                    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                        i += 1;
                    }
                } else {
                    i = skip_block_comment(bytes, i, !mysql);
                }
            }
            _ if is_ident_start(c) => {
                part_has_code = true;
                let start = i;
                while bytes.get(i).copied().is_some_and(is_ident_part) {
                    i += 1;
                }
                // An E'' / B'' / X'' prefix is part of the literal that
                // follows, not a word.
                if bytes.get(i) == Some(&b'\'') && i - start == 1 {
                    continue;
                }
                part.push_word(start, i);
            }
            _ if c.is_ascii_whitespace() => i += 1,
            _ => {
                part_has_code = true;
                if c == b'(' {
                    depth += 1;
                } else if c == b')' {
                    depth = depth.saturating_sub(1);
                }
                if part.word_count == 0 && c == b'(' {
                    // A parenthesised query: `(SELECT 1)`.
                    part.push_word(i, i + 1);
                }
                // Stop collecting words after the first non-word token so
                // that `SELECT a, DROP` does not read as more keywords.
                part.closed = true;
                i += 1;
            }
        }
    }
    if part_has_code {
        part.end = bytes.len();
        out.parts.push(part);
    }
    out
}

/// Guesses the kind of each part of `sql` from its first words.
pub(crate) fn guess(lexed: &Lexed, sql: &str) -> Vec<Kind> {
    lexed
        .parts
        .iter()
        .map(|p| {
            guess_kind(
                &p.word(sql, 0).to_ascii_uppercase(),
                &p.word(sql, 1).to_ascii_uppercase(),
            )
        })
        .collect()
}

fn guess_kind(first: &str, second: &str) -> Kind {
    match first {
        "SELECT" | "VALUES" | "TABLE" | "WITH" | "(" | "HANDLER" => Kind::Select,
        "INSERT" | "REPLACE" => Kind::Insert,
        "UPDATE" => Kind::Update,
        "DELETE" => Kind::Delete,
        "MERGE" => Kind::Merge,
        "TRUNCATE" => Kind::Truncate,
        "DROP" => Kind::Drop,
        "CREATE" => Kind::Create,
        "ALTER" | "RENAME" => Kind::Alter,
        "GRANT" => Kind::Grant,
        "REVOKE" => Kind::Revoke,
        "COPY" | "LOAD" => Kind::Copy,
        "SET" if second == "TRANSACTION" => Kind::Transaction,
        "SET" | "RESET" => Kind::Set,
        "SHOW" | "DESCRIBE" | "DESC" => Kind::Show,
        "BEGIN" | "START" | "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "SAVEPOINT" | "RELEASE"
        | "XA" => Kind::Transaction,
        "EXPLAIN" => Kind::Explain,
        "CALL" => Kind::Call,
        "DO" => Kind::Do,
        "PREPARE" => Kind::Prepare,
        "EXECUTE" | "EXEC" => Kind::Execute,
        "DEALLOCATE" => Kind::Deallocate,
        "LOCK" | "UNLOCK" => Kind::Lock,
        "VACUUM" | "ANALYZE" | "ANALYSE" | "REINDEX" | "CLUSTER" | "CHECKPOINT" | "OPTIMIZE"
        | "REPAIR" | "CHECK" | "CHECKSUM" | "FLUSH" | "REFRESH" => Kind::Maintenance,
        "USE" => Kind::Use,
        _ => Kind::Other,
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_part(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

fn prev_is_ident(bytes: &[u8], i: usize) -> bool {
    i > 0 && bytes.get(i - 1).copied().is_some_and(is_ident_part)
}

/// Whether the quote at `i` opens a PostgreSQL escape string (`E'...'`),
/// where backslash escapes the next character.
fn is_escape_string_prefix(bytes: &[u8], i: usize) -> bool {
    i >= 1
        && matches!(bytes.get(i - 1), Some(b'e' | b'E'))
        && !(i >= 2 && bytes.get(i - 2).copied().is_some_and(is_ident_part))
}

/// Skips a quoted run starting after its opening `quote`; returns the index
/// after the closing quote (or the end of input when unterminated).
fn skip_quoted(bytes: &[u8], mut i: usize, quote: u8, backslash: bool) -> usize {
    while let Some(&c) = bytes.get(i) {
        if backslash && c == b'\\' {
            i += 2;
        } else if c == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// If a dollar quote (`$$` or `$tag$`) opens at `i`, returns the index after
/// its closing delimiter (or the end of input when unterminated).
fn skip_dollar_quote(bytes: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while let Some(&c) = bytes.get(j) {
        if c == b'$' {
            break;
        }
        let ok = if j == i + 1 {
            c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
        } else {
            c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
        };
        if !ok {
            return None;
        }
        j += 1;
    }
    bytes.get(j)?;
    let delimiter = bytes.get(i..=j)?;
    let body_start = j + 1;
    let rest = bytes.get(body_start..)?;
    match rest.windows(delimiter.len()).position(|w| w == delimiter) {
        Some(pos) => Some(body_start + pos + delimiter.len()),
        None => Some(bytes.len()),
    }
}

fn skip_line(bytes: &[u8], mut i: usize) -> usize {
    while let Some(&c) = bytes.get(i) {
        if c == b'\n' {
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// Skips a block comment opening at `i`; nested comments count when `nested`.
fn skip_block_comment(bytes: &[u8], mut i: usize, nested: bool) -> usize {
    let mut depth = 0usize;
    while let Some(&c) = bytes.get(i) {
        let next = bytes.get(i + 1).copied();
        if c == b'/' && next == Some(b'*') && (depth == 0 || nested) {
            depth += 1;
            i += 2;
        } else if c == b'*' && next == Some(b'/') {
            depth = depth.saturating_sub(1);
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}
