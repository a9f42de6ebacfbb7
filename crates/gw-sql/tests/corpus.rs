//! Snapshot test over the statement corpus in `tests/corpus/`.
//!
//! Each corpus file holds entries separated by lines containing only
//! `-- ---`; every entry is classified and rendered under its input, and the
//! whole file is one snapshot so a review reads like a table.

use gw_sql::{Dialect, classify};

fn entries(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line == "-- ---" {
            out.push(std::mem::take(&mut current));
        } else {
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(line);
        }
    }
    out.push(current);
    out
}

#[test]
fn corpus_covers_every_kind() {
    let mut seen = std::collections::BTreeSet::new();
    for (dialect, text) in [
        (Dialect::Postgres, include_str!("corpus/postgres.sql")),
        (Dialect::MySql, include_str!("corpus/mysql.sql")),
    ] {
        for entry in entries(text) {
            for s in classify(dialect, &entry).statements {
                seen.insert(s.kind);
            }
        }
    }
    let missing: Vec<&str> = gw_sql::Kind::ALL
        .into_iter()
        .filter(|k| !seen.contains(k))
        .map(|k| k.name())
        .collect();
    assert!(
        missing.is_empty(),
        "kinds missing from the corpus: {missing:?}"
    );
}

fn render(dialect: Dialect, text: &str) -> (usize, String) {
    let list = entries(text);
    let mut out = String::new();
    for entry in &list {
        out.push_str("=== ");
        out.push_str(&entry.replace('\n', "\n    "));
        out.push('\n');
        out.push_str(&classify(dialect, entry).to_string());
        out.push('\n');
    }
    (list.len(), out)
}

#[test]
fn postgres_corpus() {
    let (n, out) = render(Dialect::Postgres, include_str!("corpus/postgres.sql"));
    assert!(n >= 100, "postgres corpus has {n} entries");
    insta::assert_snapshot!("postgres", out);
}

#[test]
fn mysql_corpus() {
    let (n, out) = render(Dialect::MySql, include_str!("corpus/mysql.sql"));
    assert!(n >= 50, "mysql corpus has {n} entries");
    insta::assert_snapshot!("mysql", out);
}
