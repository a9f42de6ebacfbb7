//! `gatewayd`, the access gateway daemon.
//!
//! Today it loads the policy (fail closed: an invalid policy means deny
//! everything), runs the policy's own tests, and serves the admin endpoints
//! `/healthz`, `/readyz` and `/status`. The protocol listeners (PostgreSQL
//! first) are not built yet: see ARCHITECTURE.md, "Status".
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod admin;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use gw_policy::diagnostic::render_human;
use gw_policy::{Policy, Source};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "gatewayd", version, about = "The access gateway daemon")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Policy files or directories (default: the bundled quick-start policy).
    #[arg(long, default_value = "policy-examples/quickstart")]
    policy: Vec<PathBuf>,
    /// Where the admin endpoints listen.
    #[arg(long, default_value = "127.0.0.1:9090")]
    admin_listen: String,
}

#[derive(Subcommand)]
enum Command {
    /// Validates the policy and runs its tests, then exits (0 valid, 1 invalid).
    Check {
        #[arg(long, default_value = "policy-examples/quickstart")]
        policy: Vec<PathBuf>,
    },
}

/// The policy in force, and why it is what it is.
pub(crate) struct Loaded {
    pub(crate) policy: Policy,
    pub(crate) files: usize,
    /// Set when the policy on disk was rejected and everything is denied.
    pub(crate) rejected: Option<String>,
    pub(crate) tests_passed: usize,
    pub(crate) tests_failed: usize,
}

fn load(paths: &[PathBuf]) -> Loaded {
    let sources: Vec<Source> = match gw_policy::source::read_paths(paths) {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => return rejected(0, "no .kdl files found".into()),
        Err(e) => return rejected(0, e.to_string()),
    };
    match gw_policy::load(&sources) {
        Err(diags) => {
            eprint!("{}", render_human(&sources, &diags));
            rejected(
                sources.len(),
                format!("{} error(s) in the policy", diags.len()),
            )
        }
        Ok(policy) => {
            let outcomes = gw_policy::run_tests(&policy);
            let failed = outcomes.iter().filter(|o| !o.passed).count();
            if failed > 0 {
                for o in outcomes.iter().filter(|o| !o.passed) {
                    eprintln!(
                        "policy test failed: {} (got {} by {})",
                        o.case.name,
                        o.decision.verdict.name(),
                        o.decision.rule
                    );
                }
                return rejected(sources.len(), format!("{failed} policy test(s) failed"));
            }
            let passed = outcomes.len();
            Loaded {
                policy,
                files: sources.len(),
                rejected: None,
                tests_passed: passed,
                tests_failed: 0,
            }
        }
    }
}

/// Fail closed: a policy that does not validate is never applied.
fn rejected(files: usize, why: String) -> Loaded {
    Loaded {
        policy: Policy::deny_all(why.clone()),
        files,
        rejected: Some(why),
        tests_passed: 0,
        tests_failed: 0,
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check { policy }) => {
            let loaded = load(&policy);
            match &loaded.rejected {
                None => {
                    println!(
                        "policy ok: {} file(s), {} test(s) passed",
                        loaded.files, loaded.tests_passed
                    );
                    std::process::ExitCode::SUCCESS
                }
                Some(why) => {
                    eprintln!("policy rejected: {why}");
                    std::process::ExitCode::from(1)
                }
            }
        }
        None => match run(cli.run) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::from(2)
            }
        },
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let loaded = Arc::new(load(&args.policy));
    match &loaded.rejected {
        None => eprintln!(
            "gatewayd: policy loaded: {} file(s), {} resource(s), {} grant(s), {} guard(s); {} policy test(s) passed",
            loaded.files,
            loaded.policy.resources.len(),
            loaded.policy.grants.len(),
            loaded.policy.guards.len(),
            loaded.tests_passed
        ),
        Some(why) => eprintln!(
            "gatewayd: policy REJECTED ({why}); denying every session until a valid policy is loaded"
        ),
    }
    let listener = std::net::TcpListener::bind(&args.admin_listen)
        .with_context(|| format!("binding {}", args.admin_listen))?;
    eprintln!(
        "gatewayd: admin endpoints on http://{}/healthz, /readyz, /status",
        listener.local_addr()?
    );
    eprintln!(
        "gatewayd: no protocol listeners yet: the PostgreSQL data path is not built (see README, \"Status\")"
    );
    admin::serve(listener, loaded)
}
