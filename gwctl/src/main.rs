//! `gwctl`: what a team runs against its policy repository in CI (lint,
//! test, fmt, explain, diff), what a responder runs to log in and connect
//! (`login`, `token`, `connect`, `logout`, `status`), and what an approver
//! runs to answer reviews (`review`).
//!
//! Exit codes: 0 clean, 1 policy errors or failed tests, 2 usage or I/O
//! errors. Data goes to stdout, everything else to stderr.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod client;
mod diff;
mod explain;
mod lint;
mod login;
mod review;
mod sources;
mod status;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gwctl",
    version,
    about = "Policy tools and client for the access gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reports every error in the policy at PATHs (files or directories).
    Lint {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Formats policy files canonically; with --check, only reports.
    Fmt {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long)]
        check: bool,
    },
    /// Runs the policy's `test` blocks.
    Test {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Explains the verdict for one request.
    Explain(Box<explain::Args>),
    /// Explains what changes between two policies (directories or Git revisions).
    Diff(diff::Args),
    /// Lists, shows, approves and denies reviews on a running gateway.
    Review(review::Args),
    /// Shows who you are to a gateway and the policy it enforces.
    Status(status::Args),
    /// Logs in with the identity provider (device code, or --browser).
    Login(login::LoginArgs),
    /// Revokes your token at the gateway and forgets it.
    Logout(login::ConnArgs),
    /// Prints your current token (for PGPASSWORD and scripts).
    Token(login::ConnArgs),
    /// Runs (or prints) the native client for a resource, through the gateway.
    Connect(login::ConnectArgs),
    /// Gets an SSH certificate for your current token (login does this too).
    SshCert(login::ConnArgs),
    /// Creates a secret for a service account or break-glass principal.
    #[command(subcommand)]
    Secret(SecretCommand),
}

#[derive(Subcommand)]
enum SecretCommand {
    /// Prints a new random secret (stdout) and its policy block (stderr).
    New(login::SecretArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Human,
    Json,
    Github,
}

/// Why gwctl stopped: policy problems (exit 1) or anything else (exit 2).
pub(crate) enum Failure {
    Policy,
    Usage(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Usage(e)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Lint { paths, format } => lint::lint(&paths, format),
        Command::Fmt { paths, check } => lint::fmt(&paths, check),
        Command::Test { paths } => lint::test(&paths),
        Command::Explain(args) => explain::explain(*args),
        Command::Diff(args) => diff::diff(args),
        Command::Review(args) => review::review(args),
        Command::Status(args) => status::status(args),
        Command::Login(args) => login::login(args),
        Command::Logout(args) => login::logout(args),
        Command::Token(args) => login::token(args),
        Command::Connect(args) => login::connect(args),
        Command::SshCert(args) => login::ssh_cert(args),
        Command::Secret(SecretCommand::New(args)) => login::secret(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Policy) => ExitCode::from(1),
        Err(Failure::Usage(e)) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
