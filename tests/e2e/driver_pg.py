"""A real driver through the gateway: psycopg 3 (libpq 18) using the extended
protocol, server-side prepared statements, binary results and pipeline mode.
Prints one line per check; the Rust test asserts on them. PGPASSWORD holds
the gateway token."""
import sys

import psycopg

conninfo = sys.argv[1]
with psycopg.connect(conninfo, autocommit=True) as conn:
    # Prepared statement, executed several times (Parse once, Bind/Execute each time).
    for i in (1, 2, 1):
        row = conn.execute("select id, name from customers where id = %s", (i,), prepare=True).fetchone()
        print("prepared", row[0], row[1])
    # Binary results: a text column that a mask applies to cannot be scanned
    # in binary, so the gateway withholds it (NULL); an int passes.
    cur = conn.cursor(binary=True)
    row = cur.execute("select id, email from customers where id = 1").fetchone()
    print("binary", row[0], row[1])
    # Text results are masked.
    print("text", conn.execute("select email from customers where id = 1").fetchone()[0])
    # A pipeline whose second statement is denied: the first runs, the
    # second fails with 42501, the third is skipped, the connection goes on.
    results = []
    try:
        with conn.pipeline():
            c1 = conn.execute("select 'first'")
            c2 = conn.execute("delete from customers")
            c3 = conn.execute("select 'third'")
    except psycopg.Error as e:
        results.append(("error", e.sqlstate, type(e).__name__))
    print("pipeline-first", c1.fetchone()[0])
    print("pipeline-error", results)
    print("after-pipeline", conn.execute("select count(*) from customers").fetchone()[0])
    # Inside an explicit transaction: the denial aborts it on the server too.
    conn.autocommit = False
    try:
        conn.execute("select 1")
        conn.execute("delete from customers")
    except psycopg.errors.InsufficientPrivilege as e:
        print("tx-denied", e.sqlstate)
    print("tx-status", conn.info.transaction_status.name)
    try:
        conn.execute("select 1")
    except psycopg.errors.InFailedSqlTransaction as e:
        print("tx-aborted", e.sqlstate)
    conn.rollback()
    print("tx-after-rollback", conn.execute("select count(*) from customers").fetchone()[0])

# PostgreSQL 17-style direct TLS (no SSLRequest; ALPN "postgresql").
with psycopg.connect(conninfo + " sslnegotiation=direct") as direct:
    print("direct-tls", direct.execute("select 1").fetchone()[0], direct.info.pgconn.ssl_in_use)
