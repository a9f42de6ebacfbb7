//! A stable, readable text rendering of a [`Classification`], used for
//! snapshot tests, logs and `gwctl explain`.
//!
//! One line per statement, effect and risk, so that a snapshot diff points at
//! exactly what changed.

use std::fmt;

use crate::{Classification, Effect};

impl fmt::Display for Effect {
    /// `delete public.orders (where: no)`; tables are comma-separated, and
    /// `-` stands for none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.name())?;
        if self.tables.is_empty() {
            f.write_str(" -")?;
        } else {
            write!(f, " {}", self.tables.join(", "))?;
        }
        match self.has_where {
            Some(true) => f.write_str(" (where: yes)"),
            Some(false) => f.write_str(" (where: no)"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.unparsed {
            writeln!(f, "unparsed: {}", u.reason)?;
            let guessed: Vec<&str> = u.guessed.iter().map(|k| k.name()).collect();
            return writeln!(f, "  guessed: [{}]", guessed.join(", "));
        }
        if self.statements.is_empty() {
            return writeln!(f, "no statements");
        }
        for (i, s) in self.statements.iter().enumerate() {
            writeln!(f, "{}: {}", i + 1, s.kind.name())?;
            for e in &s.effects {
                writeln!(f, "  effect {e}")?;
            }
            for r in &s.risks {
                writeln!(f, "  risk {}", r.name())?;
            }
        }
        Ok(())
    }
}
