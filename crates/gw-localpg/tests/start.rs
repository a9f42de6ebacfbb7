//! Starts a real cluster and talks to it. Without server binaries this
//! fails under CI=true and skips loudly otherwise.
#![allow(clippy::print_stderr)]

#[test]
fn starts_queries_and_stops() {
    if gw_localpg::find_binaries().is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PostgreSQL server binaries are required in CI"
        );
        eprintln!("SKIPPED: PostgreSQL server binaries not found (set PG_BIN)");
        return;
    }
    let dir;
    {
        let c = gw_localpg::Cluster::start(None).expect("cluster starts");
        dir = c.dir.clone();
        assert_eq!(c.psql("postgres", "select 40 + 2").unwrap().trim(), "42");
        assert!(std::net::TcpStream::connect(c.addr()).is_ok());
    }
    assert!(!dir.exists(), "the cluster directory is removed on drop");
}
