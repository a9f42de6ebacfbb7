//! `gwctl diff OLD NEW`: what a policy change grants or revokes. OLD and NEW
//! are directories or files, or Git revisions (`main`, `HEAD~1`,
//! `origin/main:policy`) of the repository around the current directory.

use crate::Failure;
use crate::sources;
use anyhow::Context as _;
use gw_policy::diagnostic::json_str;
use gw_policy::{Change, Direction, Source};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The policy before: a directory, a file, or a Git revision (`REV` or `REV:SUBDIR`).
    old: String,
    /// The policy after.
    new: String,
    /// The Git repository for revisions (default: the one around the current directory).
    #[arg(long)]
    repo: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = DiffFormat::Human)]
    format: DiffFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DiffFormat {
    Human,
    Markdown,
    Json,
}

pub(crate) fn diff(args: Args) -> Result<(), Failure> {
    let old_sources = resolve(&args.old, args.repo.as_deref())?;
    let new_sources = resolve(&args.new, args.repo.as_deref())?;
    let old = sources::load(&old_sources)?;
    let new = sources::load(&new_sources)?;
    let changes = gw_policy::diff(&old, &new);
    let out = match args.format {
        DiffFormat::Human => human(&changes),
        DiffFormat::Markdown => markdown(&changes, &args.old, &args.new),
        DiffFormat::Json => json(&changes),
    };
    print!("{out}");
    Ok(())
}

fn resolve(spec: &str, repo: Option<&Path>) -> anyhow::Result<Vec<Source>> {
    let path = Path::new(spec);
    if path.exists() {
        return sources::read(&[path.to_owned()]);
    }
    let repo = match repo {
        Some(r) => git2::Repository::open(r).with_context(|| format!("opening the Git repository {}", r.display()))?,
        None => git2::Repository::open_from_env()
            .with_context(|| format!("`{spec}` is not a path, and there is no Git repository here to read it as a revision"))?,
    };
    let (rev, subdir) = spec.split_once(':').unwrap_or((spec, ""));
    let commit = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .with_context(|| format!("`{rev}` is neither a path nor a Git revision"))?;
    gw_policy_git::read_tree(&repo, &commit, subdir, &format!("{rev}:"))
        .with_context(|| format!("reading the policy at `{spec}`"))
}

fn marker(d: Direction) -> &'static str {
    match d {
        Direction::Loosened => "+ loosened ",
        Direction::Tightened => "- tightened",
        Direction::Neutral => "~ changed  ",
    }
}

fn human(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "no change in what the policy grants or guards\n".into();
    }
    let mut out = String::new();
    let mut area = None;
    for c in changes {
        if area != Some(c.area) {
            if area.is_some() {
                out.push('\n');
            }
            out.push_str(&format!("{}:\n", c.area.name()));
            area = Some(c.area);
        }
        out.push_str(&format!("  {} {}\n", marker(c.direction), c.text));
    }
    let loosened = changes
        .iter()
        .filter(|c| c.direction == Direction::Loosened)
        .count();
    out.push_str(&format!(
        "\n{} change(s), {loosened} loosening\n",
        changes.len()
    ));
    out
}

fn markdown(changes: &[Change], old: &str, new: &str) -> String {
    let mut out = format!("### Policy changes: `{old}` → `{new}`\n\n");
    if changes.is_empty() {
        out.push_str("No change in what the policy grants or guards.\n");
        return out;
    }
    let loosened = changes
        .iter()
        .filter(|c| c.direction == Direction::Loosened)
        .count();
    if loosened > 0 {
        out.push_str(&format!(
            "**{loosened} change(s) loosen access or protection — review them carefully.**\n\n"
        ));
    }
    out.push_str("| area | effect | change |\n|---|---|---|\n");
    for c in changes {
        let text = c.text.replace('|', "\\|");
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            c.area.name(),
            c.direction.name(),
            text
        ));
    }
    out
}

fn json(changes: &[Change]) -> String {
    let items: Vec<_> = changes
        .iter()
        .map(|c| {
            format!(
                "{{\"area\":{},\"effect\":{},\"text\":{}}}",
                json_str(c.area.name()),
                json_str(c.direction.name()),
                json_str(&c.text)
            )
        })
        .collect();
    format!("[{}]\n", items.join(",\n "))
}
