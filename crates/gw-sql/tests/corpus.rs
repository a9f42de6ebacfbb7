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
