//! Targeted tests for the cases a guard must never get wrong: comment and
//! quoting tricks, nested data-modifying statements, text that cannot be
//! parsed, and inputs built to exhaust the parser.

use gw_sql::{Classification, Dialect, Kind, Risk, classify};

const PG: Dialect = Dialect::Postgres;
const MY: Dialect = Dialect::MySql;

/// Checks the kinds of the statements and, flattened, the `kind:tables`
/// of every effect (`delete:t`), or that the text is unparsed when `kinds`
/// is `None`.
#[track_caller]
fn check(dialect: Dialect, sql: &str, kinds: Option<&[Kind]>, effects: &[&str]) {
    let c = classify(dialect, sql);
    match kinds {
        None => {
            assert!(
                c.unparsed.is_some(),
                "{sql:?} should be unparsed, got:\n{c}"
            );
            assert!(
                c.statements.is_empty(),
                "{sql:?}: unparsed must hold no statements"
            );
        }
        Some(kinds) => {
            assert!(c.unparsed.is_none(), "{sql:?} should parse, got:\n{c}");
            let got: Vec<Kind> = c.statements.iter().map(|s| s.kind).collect();
            assert_eq!(got, kinds, "{sql:?} kinds:\n{c}");
            let got: Vec<String> = c
                .effects()
                .map(|e| format!("{}:{}", e.kind.name(), e.tables.join(",")))
                .collect();
            assert_eq!(got, effects, "{sql:?} effects:\n{c}");
        }
    }
}

#[track_caller]
fn has_risk(dialect: Dialect, sql: &str, risk: Risk) {
    let c = classify(dialect, sql);
    assert!(
        c.risks().any(|r| *r == risk),
        "{sql:?} should carry {risk:?}:\n{c}"
    );
}

#[track_caller]
fn lacks_risk(dialect: Dialect, sql: &str, risk: Risk) {
    let c = classify(dialect, sql);
    assert!(
        !c.risks().any(|r| *r == risk),
        "{sql:?} should not carry {risk:?}:\n{c}"
    );
}

use Kind::*;

#[test]
fn quoting_and_comments_never_hide_or_invent_statements() {
    let cases: &[(Dialect, &str, &[Kind])] = &[
        (PG, "SELECT '; DROP TABLE t'", &[Select]),
        (PG, "SELECT 'a'';DROP TABLE t'", &[Select]),
        (PG, "SELECT E'\\'; DROP TABLE t'", &[Select]),
        (PG, "/* ; drop */", &[]),
        (PG, "/* /* ; */ DROP TABLE t; */ SELECT 1", &[Select]),
        (PG, "SELECT \"DROP\" FROM \"DELETE\"", &[Select]),
        (PG, "SELECT $$ ; DROP TABLE t $$", &[Select]),
        (PG, "SELECT $x$ $$; DROP $$ $x$", &[Select]),
        (PG, "SELECT 1 -- ; DROP TABLE t", &[Select]),
        (PG, "SELECT 1 --\n; DROP TABLE t", &[Select, Drop]),
        (PG, "SELECT 1 # 2; DROP TABLE t", &[Select, Drop]),
        (PG, "SELECT 1; DROP TABLE t", &[Select, Drop]),
        (PG, "  ;; ;", &[]),
        (PG, "", &[]),
        (
            MY,
            "INSERT INTO t VALUES ('it\\'s; DROP TABLE t')",
            &[Insert],
        ),
        (MY, "SELECT `a;DROP` FROM t", &[Select]),
        (MY, "SELECT 1 # ; DROP TABLE t", &[Select]),
        (MY, "SELECT 1 --1; DROP TABLE t", &[Select, Drop]),
        (MY, "SELECT 1 -- ; DROP TABLE t", &[Select]),
        (MY, "SELECT /*!50000 1; DROP TABLE t */", &[Select, Drop]),
    ];
    for (dialect, sql, kinds) in cases {
        let c = classify(*dialect, sql);
        assert!(c.unparsed.is_none(), "{sql:?}: {c}");
        let got: Vec<Kind> = c.statements.iter().map(|s| s.kind).collect();
        assert_eq!(&got, kinds, "{sql:?}:\n{c}");
    }
}

#[test]
fn nested_data_modifying_statements_are_effects() {
    check(
        PG,
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        Some(&[Select]),
        &["select:d", "delete:t"],
    );
    check(
        PG,
        "WITH a AS (UPDATE x SET v = 1 RETURNING id), b AS (INSERT INTO y SELECT * FROM a RETURNING id) SELECT 1",
        Some(&[Select]),
        &["select:a", "update:x", "insert:y"],
    );
    check(
        PG,
        "WITH d AS (DELETE FROM q RETURNING *) INSERT INTO done SELECT * FROM d",
        Some(&[Insert]),
        &["insert:done", "select:d", "delete:q"],
    );
    check(
        PG,
        "EXPLAIN ANALYZE DELETE FROM t",
        Some(&[Explain]),
        &["explain:t", "delete:t"],
    );
    check(
        PG,
        "EXPLAIN DELETE FROM t",
        Some(&[Explain]),
        &["explain:t"],
    );
    check(
        PG,
        "CREATE TABLE c AS SELECT * FROM src",
        Some(&[Create]),
        &["create:c", "select:src"],
    );
    check(
        PG,
        "PREPARE p AS UPDATE t SET a = 1",
        Some(&[Prepare]),
        &["prepare:", "update:t"],
    );
    check(
        MY,
        "PREPARE s FROM 'DROP TABLE t'",
        Some(&[Prepare]),
        &["prepare:", "drop:t"],
    );
    check(
        PG,
        "CREATE RULE r AS ON INSERT TO t DO ALSO (DELETE FROM a; UPDATE b SET x = 1)",
        Some(&[Create]),
        &["create:t", "delete:a", "update:b"],
    );
    check(
        PG,
        "COPY (DELETE FROM t RETURNING *) TO STDOUT",
        Some(&[Copy]),
        &["copy:", "delete:t"],
    );
}

#[test]
fn where_clauses() {
    let c = classify(
        PG,
        "DELETE FROM t; DELETE FROM t WHERE id = 1; UPDATE t SET a = 1",
    );
    let wheres: Vec<Option<bool>> = c.effects().map(|e| e.has_where).collect();
    assert_eq!(wheres, [Some(false), Some(true), Some(false)]);
    let c = classify(
        MY,
        "DELETE FROM t LIMIT 1; UPDATE t SET a = 1 WHERE b = 2; SELECT 1",
    );
    let wheres: Vec<Option<bool>> = c.effects().map(|e| e.has_where).collect();
    assert_eq!(wheres, [Some(false), Some(true), None]);
}

#[test]
fn risks() {
    has_risk(PG, "DO $$ BEGIN DROP TABLE t; END $$", Risk::DynamicSql);
    has_risk(PG, "EXECUTE p(1)", Risk::DynamicSql);
    has_risk(PG, "CALL proc()", Risk::DynamicSql);
    has_risk(
        PG,
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        Risk::DynamicSql,
    );
    has_risk(MY, "PREPARE s FROM @q", Risk::DynamicSql);
    has_risk(
        PG,
        "SELECT * FROM t WHERE pg_sleep(5) IS NULL",
        Risk::SideEffectFunction("pg_sleep".into()),
    );
    has_risk(
        PG,
        "SELECT x FROM t, LATERAL pg_catalog.lo_unlink(t.oid) u",
        Risk::SideEffectFunction("lo_unlink".into()),
    );
    has_risk(
        PG,
        "INSERT INTO t VALUES (set_config('role', 'admin', false))",
        Risk::SideEffectFunction("set_config".into()),
    );
    has_risk(
        MY,
        "SELECT * FROM t WHERE SLEEP(1)",
        Risk::SideEffectFunction("sleep".into()),
    );
    lacks_risk(
        PG,
        "SELECT 'pg_sleep(1)'",
        Risk::SideEffectFunction("pg_sleep".into()),
    );
    lacks_risk(
        PG,
        "SELECT nextval('s')",
        Risk::SideEffectFunction("nextval".into()),
    );
    has_risk(PG, "COPY t TO PROGRAM 'sh'", Risk::ShellCommand);
    has_risk(PG, "COPY t FROM '/etc/passwd'", Risk::ServerFile);
    lacks_risk(PG, "COPY t FROM STDIN", Risk::ServerFile);
    has_risk(MY, "LOAD DATA INFILE '/x' INTO TABLE t", Risk::ServerFile);
    lacks_risk(
        MY,
        "LOAD DATA LOCAL INFILE '/x' INTO TABLE t",
        Risk::ServerFile,
    );
    has_risk(
        MY,
        "SELECT * FROM t INTO OUTFILE '/tmp/x'",
        Risk::ServerFile,
    );
    has_risk(PG, "EXPLAIN ANALYZE SELECT 1", Risk::ExplainAnalyze);
    has_risk(PG, "EXPLAIN (ANALYZE) SELECT 1", Risk::ExplainAnalyze);
    lacks_risk(PG, "EXPLAIN SELECT 1", Risk::ExplainAnalyze);
    has_risk(MY, "SELECT 1 /*!50000 + 1 */", Risk::VersionedComment);
    lacks_risk(MY, "SELECT '/*!50000'", Risk::VersionedComment);
    has_risk(PG, "SET ROLE admin", Risk::RoleChange);
    has_risk(PG, "SET SESSION AUTHORIZATION bob", Risk::RoleChange);
    has_risk(PG, "RESET ROLE", Risk::RoleChange);
    has_risk(PG, "SET role = 'admin'", Risk::RoleChange);
    has_risk(MY, "SET ROLE ALL", Risk::RoleChange);
}

#[test]
fn unparsable_text_is_unparsed_with_guesses() {
    check(PG, "SELEC 1", None, &[]);
    check(PG, "SELECT 1; DROP TABLE t; NONSENSE", None, &[]);
    check(PG, "SELECT 'open", None, &[]);
    check(PG, "COPY t FROM STDIN;\nDROP TABLE t", None, &[]);
    check(MY, "SELECT 1 /*M! ; DROP TABLE t */", None, &[]);
    // Where statements end depends on session settings we cannot see:
    // standard_conforming_strings (PostgreSQL), NO_BACKSLASH_ESCAPES and
    // ANSI_QUOTES (MySQL).
    check(PG, "SELECT 'a\\'; DROP TABLE t; -- '", None, &[]);
    check(MY, "SELECT 'a\\'; DROP TABLE t; -- '", None, &[]);
    check(MY, "SELECT \"a\\\"; DROP TABLE t; -- \"", None, &[]);
    // MySQL ends a `--` comment only at ASCII whitespace or control
    // characters; sqlparser accepts any Unicode whitespace. The lexers
    // disagree, so the text is not trusted.
    check(MY, "SELECT 1 --\u{2003}; DROP TABLE t", None, &[]);
    check(
        MY,
        "CREATE PROCEDURE p() BEGIN DELETE FROM t; END",
        None,
        &[],
    );
    let c = classify(PG, "SELECT 1; DROP TABLE t; garbage");
    let u = c.unparsed.expect("unparsed");
    assert_eq!(u.guessed, [Select, Drop, Other]);
    let c = classify(PG, "DELETE FROM t WHERE x = 'a;b' AND; TRUNCATE t");
    assert_eq!(c.unparsed.expect("unparsed").guessed, [Delete, Truncate]);
    // Only comments or nothing: no statements, not unparsed.
    for sql in ["", "  ", "-- x", "/* x */", ";"] {
        assert_eq!(
            classify(PG, sql),
            Classification {
                statements: vec![],
                unparsed: None
            },
            "{sql:?}"
        );
    }
}

#[test]
fn deep_nesting_is_unparsed_not_a_crash() {
    let parens = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    check(PG, &parens, None, &[]);
    check(MY, &parens, None, &[]);
    let chain = format!("SELECT 1{}", "+1".repeat(100_000));
    check(PG, &chain, None, &[]);
    // Just under the operator limit the statement is classified, and its
    // deep tree is walked and dropped within the test thread's stack.
    let chain = format!("SELECT 1{}", "+1".repeat(8000));
    check(PG, &chain, Some(&[Select]), &["select:"]);
    let ors = format!("SELECT * FROM t WHERE {}", vec!["a = 1"; 4000].join(" OR "));
    check(MY, &ors, Some(&[Select]), &["select:t"]);
    let unions = vec!["SELECT * FROM u"; 3000].join(" UNION ALL ");
    check(PG, &unions, Some(&[Select]), &["select:u"]);
    let subqueries = format!(
        "SELECT * FROM {}t{}",
        "(SELECT * FROM ".repeat(2000),
        ") s".repeat(2000)
    );
    check(PG, &subqueries, None, &[]);
    let big = "SELECT 1;".repeat(200_000);
    let c = classify(PG, &big);
    assert!(
        c.unparsed
            .expect("unparsed")
            .reason
            .starts_with("too large")
    );
}

#[test]
fn tables_are_lowercase_unquoted() {
    check(
        PG,
        "SELECT * FROM \"Public\".\"Orders\" JOIN Customers ON true",
        Some(&[Select]),
        &["select:public.orders,customers"],
    );
    check(
        MY,
        "DELETE FROM `Db`.`T`",
        Some(&[Delete]),
        &["delete:db.t"],
    );
}
