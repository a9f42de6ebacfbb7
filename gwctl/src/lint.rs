//! `gwctl lint`, `gwctl fmt` and `gwctl test`.

use crate::sources::{self, plural, summary};
use crate::{Failure, Format};
use anyhow::Context as _;
use gw_policy::Severity;
use std::path::PathBuf;

pub(crate) fn lint(paths: &[PathBuf], format: Format) -> Result<(), Failure> {
    let sources = sources::read(paths)?;
    let (_, diags) = gw_policy::check(&sources);
    let out = sources::render(&sources, &diags, format);
    print!("{out}");
    if format == Format::Human {
        let files = sources.len();
        if diags.is_empty() {
            eprintln!("{files} file{} checked, no problems", plural(files));
        } else {
            eprintln!("{files} file{} checked: {}", plural(files), summary(&diags));
        }
    }
    if diags.iter().any(|d| d.severity == Severity::Error) {
        Err(Failure::Policy)
    } else {
        Ok(())
    }
}

pub(crate) fn fmt(paths: &[PathBuf], check: bool) -> Result<(), Failure> {
    let sources = sources::read(paths)?;
    let mut unformatted = 0;
    let mut broken = 0;
    for src in &sources {
        let formatted = match gw_policy::format(&src.text) {
            Ok(f) => f,
            Err(gw_policy::FormatError::Syntax(_)) => {
                eprintln!("{}: not valid KDL; run `gwctl lint` for details", src.path);
                broken += 1;
                continue;
            }
            Err(gw_policy::FormatError::WouldDropComment(c)) => {
                eprintln!(
                    "{}: left as is: formatting would drop the comment `{c}`; move it to its own line",
                    src.path
                );
                broken += 1;
                continue;
            }
        };
        if formatted == src.text {
            continue;
        }
        unformatted += 1;
        if check {
            println!("{}", src.path);
        } else {
            std::fs::write(&src.path, formatted)
                .with_context(|| format!("writing {}", src.path))?;
            eprintln!("formatted {}", src.path);
        }
    }
    if check && unformatted > 0 {
        eprintln!(
            "{unformatted} file{} would be reformatted; run `gwctl fmt`",
            plural(unformatted)
        );
    }
    if broken > 0 || (check && unformatted > 0) {
        Err(Failure::Policy)
    } else {
        Ok(())
    }
}

pub(crate) fn test(paths: &[PathBuf]) -> Result<(), Failure> {
    let sources = sources::read(paths)?;
    let policy = sources::load(&sources)?;
    let outcomes = gw_policy::run_tests(&policy);
    println!("running {} test{}", outcomes.len(), plural(outcomes.len()));
    let mut failed = Vec::new();
    for o in &outcomes {
        println!(
            "test {} ... {}",
            o.case.name,
            if o.passed { "ok" } else { "FAILED" }
        );
        if !o.passed {
            failed.push(o);
        }
    }
    for o in &failed {
        let src = sources.get(o.case.origin.file);
        let (line, col) = src.map_or((1, 1), |s| s.line_col(o.case.origin.span.offset));
        println!("\n---- {} ----", o.case.name);
        println!(
            "  at:       {}:{line}:{col}",
            src.map_or("", |s| s.path.as_str())
        );
        let want_rule = o
            .case
            .expect_rule
            .as_deref()
            .map(|r| format!(" (rule \"{r}\")"))
            .unwrap_or_default();
        println!("  expected: {}{want_rule}", o.case.expect.name());
        println!(
            "  got:      {} by {}",
            o.decision.verdict.name(),
            o.decision.rule
        );
        println!("  reason:   {}", o.decision.reason);
    }
    let passed = outcomes.len() - failed.len();
    println!("\n{passed} passed, {} failed", failed.len());
    if outcomes.is_empty() {
        eprintln!("warning: the policy has no test blocks");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Policy)
    }
}
