//! `gatewayd`, the access gateway daemon.
//!
//! `gatewayd [run]` starts it (embedded defaults when no `--config` is
//! given: the bundled quick-start policy, a generated development TLS
//! certificate, state under `.gatewayd/`, and a demo database when the
//! policy asks for one and none is reachable); `gatewayd check` validates a
//! configuration and its policy; `gatewayd token` mints a gateway token for
//! development and service accounts (OIDC login comes with issue #8).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod admin;
mod api;
mod audit;
mod config;
mod demo;
mod files;
mod identity;
mod login_api;
mod metrics;
mod oidc;
mod policy;
mod postgres;
mod recorder;
mod reviews;
mod secrets;
mod ssh;
mod state;
mod tls;
mod upstream_tls;
mod webhooks;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use state::Gateway;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(Parser)]
#[command(name = "gatewayd", version, about = "The access gateway daemon")]
struct Cli {
    /// The bootstrap configuration (KDL). Without one, embedded defaults apply.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log format on stderr (default: text on a terminal, JSON otherwise).
    #[arg(long, global = true, value_parser = ["text", "json"])]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the gateway (the default).
    Run,
    /// Validates the configuration and the policy, runs the policy's tests, and exits.
    Check,
    /// Mints a gateway token (for development and service accounts).
    Token {
        #[arg(long)]
        principal: String,
        /// Groups, comma-separated or repeated.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Lifetime, e.g. "1h" (default: the configuration's token-ttl).
        #[arg(long)]
        ttl: Option<String>,
        /// Tests of the refusal paths only: mint a token the gateway must
        /// refuse (issued at this Unix time, for another audience, or
        /// claiming another algorithm).
        #[arg(long, hide = true)]
        issued_at: Option<u64>,
        #[arg(long, hide = true)]
        audience: Option<String>,
        #[arg(long, hide = true)]
        algorithm: Option<String>,
    },
    /// Replaces the token signing key; tokens signed by the old key stay
    /// valid until they expire (its public key moves to
    /// `keys/token-trusted/`). Restart the gateway to use the new key.
    RotateTokenKey,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format.as_deref());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let result = (|| {
        let config = load_config(cli.config.as_deref())?;
        match cli.command.unwrap_or(Command::Run) {
            Command::Run => run(config),
            Command::Check => check(&config),
            Command::Token {
                principal,
                groups,
                ttl,
                issued_at,
                audience,
                algorithm,
            } => token(
                &config,
                principal,
                groups,
                ttl.as_deref(),
                Unusual {
                    issued_at,
                    audience,
                    algorithm,
                },
            ),
            Command::RotateTokenKey => rotate_token_key(&config),
        }
    })();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn init_logging(format: Option<&str>) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let json = format.map_or(!std::io::stderr().is_terminal(), |f| f == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<config::Config> {
    let Some(path) = path else {
        return Ok(config::Config::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let src = gw_policy::Source::new(path.display().to_string(), text);
    config::parse(&src).map_err(|d| {
        anyhow::anyhow!(
            "invalid configuration:\n{}",
            gw_policy::diagnostic::render_human(&[src], &d)
        )
    })
}

fn check(config: &config::Config) -> anyhow::Result<std::process::ExitCode> {
    // Webhook URLs and secrets must resolve, or the gateway would not start.
    webhooks::prepare(&config.webhooks)?;
    let loaded = policy::initial(config);
    match &loaded.rejected {
        None => {
            println!(
                "configuration ok; policy ok: {} file(s), {} test(s) passed, revision {}",
                loaded.files, loaded.tests_passed, loaded.revision
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Some(why) => {
            eprintln!("policy rejected: {why}");
            Ok(std::process::ExitCode::from(1))
        }
    }
}

/// Claims `gatewayd token` sets only to test refusals.
struct Unusual {
    issued_at: Option<u64>,
    audience: Option<String>,
    algorithm: Option<String>,
}

fn rotate_token_key(config: &config::Config) -> anyhow::Result<std::process::ExitCode> {
    let path = config
        .token_key
        .clone()
        .unwrap_or_else(|| config.state.join("keys/token.key"));
    let old = gw_keys::SigningKey::load_or_generate(&path)?;
    let old_id = gw_keys::key_id_hex(&old.key_id());
    let trusted = config.state.join("keys/token-trusted");
    std::fs::create_dir_all(&trusted).with_context(|| format!("creating {}", trusted.display()))?;
    let kept = trusted.join(format!("{old_id}.pub.pem"));
    std::fs::write(&kept, old.public_key().to_pem())
        .with_context(|| format!("writing {}", kept.display()))?;
    let new = gw_keys::SigningKey::generate()?;
    files::write_private(&path, new.to_pem().as_bytes())?;
    let audit = audit::AuditLog::open(&config.state.join("audit.jsonl"), &config.gateway_id)?;
    let new_id = gw_keys::key_id_hex(&new.key_id());
    audit.record(&audit::AuditEvent::TokenKeyRotated {
        old_key: &old_id,
        new_key: &new_id,
    });
    println!(
        "token key rotated: new key {new_id}; tokens of key {old_id} stay valid until they expire ({}); restart the gateway to sign with the new key",
        kept.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

fn token(
    config: &config::Config,
    principal: String,
    groups: Vec<String>,
    ttl: Option<&str>,
    unusual: Unusual,
) -> anyhow::Result<std::process::ExitCode> {
    let (token_key, _, _) = state::keys(config)?;
    let lifetime = match ttl {
        Some(t) => gw_policy::parse_duration(t)
            .ok_or_else(|| anyhow::anyhow!("`{t}` is not a duration"))?,
        None => config.token_ttl,
    };
    let principal = gw_policy::Principal {
        subject: principal,
        groups,
    };
    let now = audit::unix_now();
    let t =
        if unusual.issued_at.is_some() || unusual.audience.is_some() || unusual.algorithm.is_some()
        {
            let iat = unusual.issued_at.unwrap_or(now);
            gw_identity::mint_raw(
                &token_key,
                &principal,
                iat,
                iat + lifetime.as_secs(),
                unusual.audience.as_deref().unwrap_or(gw_identity::AUDIENCE),
                unusual
                    .algorithm
                    .as_deref()
                    .unwrap_or(gw_identity::ALGORITHM),
            )?
        } else {
            gw_identity::mint(
                &token_key,
                &gw_identity::Mint {
                    principal: &principal,
                    now,
                    lifetime_secs: lifetime.as_secs(),
                },
            )?
        };
    let audit = audit::AuditLog::open(&config.state.join("audit.jsonl"), &config.gateway_id)?;
    let id = gw_identity::verify(&t, &single(&token_key), now, |_| false)
        .map(|v| v.id)
        .unwrap_or_default();
    audit.record(&audit::AuditEvent::TokenMinted {
        principal: &principal.subject,
        token_id: &id,
        expires_at: now + lifetime.as_secs(),
    });
    println!("{t}");
    Ok(std::process::ExitCode::SUCCESS)
}

fn single(key: &gw_keys::SigningKey) -> gw_keys::TrustedKeys {
    let mut k = gw_keys::TrustedKeys::new();
    k.insert(key.public_key());
    k
}

fn run(config: config::Config) -> anyhow::Result<std::process::ExitCode> {
    // `worker-threads 1` (or GATEWAYD_WORKER_THREADS=1) runs every session on
    // one thread: no cross-thread wake-ups, which on small VMs costs less
    // CPU per query than a multi-threaded scheduler (see BENCHMARKS.md).
    let workers = config.worker_threads.or_else(|| {
        std::env::var("GATEWAYD_WORKER_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    let runtime = match workers {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.max(1))
            .enable_all()
            .build()?,
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
    };
    runtime.block_on(serve(config))?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn serve(config: config::Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.state)
        .with_context(|| format!("creating {}", config.state.display()))?;
    let (token_key, token_keys, recording_key) = state::keys(&config)?;
    let revocations = identity::Revocations::open(&config.state.join("identity.sqlite"))?;
    let oidc = match &config.identity.oidc {
        Some(o) => Some(oidc::Oidc::new(o, &config.identity.group_map)?),
        None => None,
    };
    let audit = audit::AuditLog::open(&config.state.join("audit.jsonl"), &config.gateway_id)?;
    let loaded = policy::initial(&config);
    let source = config.policy.describe();
    match &loaded.rejected {
        None => audit.record(&audit::AuditEvent::PolicyLoaded {
            revision: &loaded.revision,
            source: &source,
            files: loaded.files,
            tests_passed: loaded.tests_passed,
        }),
        Some(why) => audit.record(&audit::AuditEvent::PolicyRejected {
            revision: &loaded.revision,
            source: &source,
            reason: why,
        }),
    }
    let applied_at = loaded.rejected.is_none().then(audit::unix_now);
    // PostgreSQL 17 clients using direct TLS (sslnegotiation=direct) require
    // the `postgresql` ALPN protocol; clients that offer none still connect.
    let tls = tokio_rustls::TlsAcceptor::from(tls::server_config(&config, &[b"postgresql"])?);
    let api_tls = tokio_rustls::TlsAcceptor::from(tls::server_config(&config, &[b"http/1.1"])?);
    let (hooks, deliveries) = webhooks::prepare(&config.webhooks)?;
    let reviews = reviews::Reviews::open(&config.state.join("reviews.sqlite"), hooks)?;
    let gw = Arc::new(Gateway {
        policy: tokio::sync::watch::channel(Arc::new(loaded)).0,
        policy_status: Mutex::new(policy::Status {
            applied_at,
            ..policy::Status::default()
        }),
        policy_refresh: tokio::sync::Notify::new(),
        audit,
        token_keys,
        token_key,
        revocations,
        oidc,
        ssh_user_ca: std::sync::OnceLock::new(),
        recording_key,
        overrides: Mutex::new(Default::default()),
        cancel_keys: Mutex::new(Default::default()),
        metrics: Default::default(),
        recorders: recorder::Recorders::start()?,
        maskers: Mutex::new(Default::default()),
        shutdown: tokio::sync::watch::channel(false).0,
        reviews,
        config,
    });
    if let Some(d) = deliveries {
        tokio::spawn(webhooks::deliver(Arc::clone(&gw), d));
    }
    tokio::spawn(reviews::sweeper(Arc::clone(&gw)));
    tokio::spawn(policy::follow(Arc::clone(&gw)));
    let _demo = if gw.config.demo {
        demo::maybe_start(&gw).unwrap_or_else(|e| {
            tracing::error!(error = %format!("{e:#}"), "the demo database could not start");
            None
        })
    } else {
        None
    };
    let admin = std::net::TcpListener::bind(&gw.config.listen_admin)
        .with_context(|| format!("binding {}", gw.config.listen_admin))?;
    let admin_addr = admin.local_addr()?;
    {
        let gw = Arc::clone(&gw);
        std::thread::spawn(move || admin::serve(admin, gw));
    }
    let mut pg_addr = None;
    if let Some(addr) = &gw.config.listen_postgres {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        pg_addr = Some(listener.local_addr()?);
        tokio::spawn(postgres::serve(listener, Arc::clone(&gw), tls));
    }
    if let Some(addr) = &gw.config.listen_ssh {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        tracing::info!(address = %listener.local_addr()?, "ssh listener (login name = resource, password = gateway token)");
        tokio::spawn(ssh::serve(listener, Arc::clone(&gw)));
    }
    let mut api_addr = None;
    if let Some(addr) = &gw.config.listen_api {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        api_addr = Some(listener.local_addr()?);
        tokio::spawn(api::serve(listener, Arc::clone(&gw), api_tls));
    }
    announce(&gw, admin_addr, pg_addr, api_addr);
    shutdown_signal().await;
    // Stop: tell every session, then wait (bounded) for them to end and
    // sign their recordings.
    let active = gw
        .metrics
        .sessions_active
        .load(std::sync::atomic::Ordering::SeqCst);
    tracing::info!(
        sessions = active,
        "shutting down: ending sessions and finishing their recordings"
    );
    gw.shutdown.send_replace(true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while gw
        .metrics
        .sessions_active
        .load(std::sync::atomic::Ordering::SeqCst)
        > 0
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    gw.audit.close();
    tracing::info!("stopped");
    Ok(())
}

/// Tells a person at a terminal what is running and how to use it.
fn announce(
    gw: &Gateway,
    admin: std::net::SocketAddr,
    pg: Option<std::net::SocketAddr>,
    api: Option<std::net::SocketAddr>,
) {
    let loaded = gw.policy();
    match &loaded.rejected {
        None => {
            tracing::info!(files = loaded.files, resources = loaded.policy.resources.len(), tests_passed = loaded.tests_passed, revision = %loaded.revision, "policy loaded")
        }
        Some(why) => {
            tracing::error!(reason = %why, "policy REJECTED: every session is denied until a valid policy is loaded")
        }
    }
    tracing::info!(address = %admin, "admin endpoints: /healthz /readyz /status /metrics");
    if let Some(api) = api {
        tracing::info!(address = %api, "review API (HTTPS): /v1/reviews");
    }
    let Some(pg) = pg else { return };
    tracing::info!(address = %pg, "postgres listener");
    let demo = gw
        .overrides
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains_key("demo");
    if demo && std::io::stderr().is_terminal() {
        eprintln!("\nThe demo database is ready. Mint a token and connect through the gateway:\n");
        eprintln!(
            "  export PGPASSWORD=$(cargo run -q --release -p gatewayd -- token --principal sam@example.com --groups sre)"
        );
        eprintln!(
            "  psql \"host={} port={} dbname=demo user=sam sslmode=require\"\n",
            pg.ip(),
            pg.port()
        );
        eprintln!(
            "Then try: SELECT * FROM customers;   DELETE FROM customers;   DROP TABLE orders;"
        );
        eprintln!(
            "The DROP is held for a DBA's review; approve it from another terminal (see README, \"Reviews\"):\n  GWCTL_CA={}/tls/dev-cert.pem GWCTL_TOKEN=$(cargo run -q --release -p gatewayd -- token --principal dana@example.com --groups dba) cargo run -q --release -p gwctl -- review list",
            gw.config.state.display()
        );
        eprintln!(
            "Recordings land in {}; play one with `replay play FILE`.\n",
            gw.config.recordings.display()
        );
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
}
