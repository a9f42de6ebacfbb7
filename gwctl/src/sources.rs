//! Turning command-line paths into a loaded policy, with diagnostics
//! printed the way the user asked.

use crate::{Failure, Format};
use anyhow::Context as _;
use gw_policy::diagnostic::{render_github, render_human, render_json};
use gw_policy::{Diagnostic, Policy, Severity, Source};
use std::path::PathBuf;

pub(crate) fn read(paths: &[PathBuf]) -> anyhow::Result<Vec<Source>> {
    let sources = gw_policy::source::read_paths(paths).context("reading the policy")?;
    if sources.is_empty() {
        anyhow::bail!(
            "no .kdl files under {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(sources)
}

pub(crate) fn render(sources: &[Source], diags: &[Diagnostic], format: Format) -> String {
    match format {
        Format::Human => render_human(sources, diags),
        Format::Json => render_json(sources, diags),
        Format::Github => render_github(sources, diags),
    }
}

/// Loads a policy, or prints its diagnostics (to stderr) and fails.
pub(crate) fn load(sources: &[Source]) -> Result<Policy, Failure> {
    gw_policy::load(sources).map_err(|diags| {
        eprint!("{}", render_human(sources, &diags));
        eprintln!("{}", summary(&diags));
        Failure::Policy
    })
}

pub(crate) fn summary(diags: &[Diagnostic]) -> String {
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    format!(
        "{errors} error{}, {warnings} warning{}",
        plural(errors),
        plural(warnings)
    )
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
