//! The first-run experience: when the policy has a PostgreSQL resource named
//! `demo` and nothing answers at its address, start a throwaway PostgreSQL
//! with sample customer data (card numbers, emails, SSNs) and wire it in,
//! so a newcomer can see masking, a denied DELETE and a recording within
//! minutes. Development only; `demo #false` in the bootstrap file turns it off.

use crate::state::{Gateway, Override};
use anyhow::Context as _;

const SEED: &str = "
CREATE TABLE customers (
    id serial PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    card_number text NOT NULL,
    ssn text NOT NULL,
    phone text NOT NULL,
    plan text NOT NULL
);
INSERT INTO customers (name, email, card_number, ssn, phone, plan) VALUES
    ('Ada Lovelace',   'ada@example.com',    '4111 1111 1111 1111', '123-45-6789', '+1 415 555 0100', 'enterprise'),
    ('Grace Hopper',   'grace@example.com',  '5500 0000 0000 0004', '234-56-7890', '+1 212 555 0199', 'team'),
    ('Alan Turing',    'alan@example.org',   '3400 0000 0000 009',  '345-67-8901', '+44 20 7946 0958', 'free'),
    ('Katherine Johnson', 'kj@example.net',  '6011 0000 0000 0004', '456-78-9012', '+1 757 555 0143', 'team');
CREATE TABLE orders (
    id serial PRIMARY KEY,
    customer_id int REFERENCES customers(id),
    total numeric(10,2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO orders (customer_id, total) SELECT 1 + (g % 4), (g * 7.31)::numeric(10,2) FROM generate_series(1, 40) g;
";

/// Starts the demo database if the policy wants one and none is reachable.
/// Returns the cluster, which must be kept alive as long as the gateway runs.
pub(crate) fn maybe_start(gw: &Gateway) -> anyhow::Result<Option<gw_localpg::Cluster>> {
    let loaded = gw.policy();
    let Some(r) = loaded
        .policy
        .resource("demo")
        .filter(|r| r.kind == gw_policy::Kind::Postgres)
    else {
        return Ok(None);
    };
    if std::net::TcpStream::connect_timeout(
        &r.address.parse()?,
        std::time::Duration::from_millis(300),
    )
    .is_ok()
    {
        tracing::info!(address = %r.address, "a server answers at the demo resource's address; not starting a demo database");
        return Ok(None);
    }
    if gw_localpg::find_binaries().is_none() {
        tracing::warn!(
            "no PostgreSQL server binaries found; the demo database is not available (set PG_BIN)"
        );
        return Ok(None);
    }
    let cluster = gw_localpg::Cluster::start(None).context("starting the demo database")?;
    let mut password = [0u8; 16];
    getrandom::fill(&mut password).map_err(|_| anyhow::anyhow!("no randomness available"))?;
    let password: String = password.iter().map(|b| format!("{b:02x}")).collect();
    cluster.psql(
        "postgres",
        &format!("CREATE ROLE gateway LOGIN PASSWORD '{password}'"),
    )?;
    cluster.psql("postgres", "CREATE DATABASE demo OWNER gateway")?;
    cluster.psql("demo", &format!("SET ROLE gateway; {SEED}"))?;
    gw.overrides
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            "demo".into(),
            Override {
                address: cluster.addr(),
                user: "gateway".into(),
                password,
            },
        );
    tracing::info!(address = %cluster.addr(), "started the demo database");
    Ok(Some(cluster))
}
