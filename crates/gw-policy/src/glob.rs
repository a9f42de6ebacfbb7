//! Shell-style globs (`*` any run, `?` one character), the only pattern
//! language in rule matchers: easy to read in review, impossible to write a
//! catastrophic one. Regular expressions are reserved for mask patterns.

/// A compiled glob. Matching is case-sensitive; callers lowercase where the
/// domain is case-insensitive (SQL names, HTTP methods).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    text: String,
    literal: bool,
}

impl Glob {
    pub fn new(text: &str) -> Glob {
        Glob {
            text: text.to_owned(),
            literal: !text.contains(['*', '?']),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, s: &str) -> bool {
        if self.literal {
            return self.text == s;
        }
        matches(self.text.as_bytes(), s.as_bytes())
    }
}

impl std::fmt::Display for Glob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

// Iterative matcher with single-star backtracking: linear in practice and
// never recursive, so no input can blow the stack. `?` matches one byte,
// which is one character for ASCII names and paths.
fn matches(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, i));
                p += 1;
            }
            Some(&c) if c == b'?' || c == s[i] => {
                p += 1;
                i += 1;
            }
            _ => match star {
                Some((sp, si)) => {
                    p = sp + 1;
                    i = si + 1;
                    star = Some((sp, si + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[track_caller]
    fn check(pat: &str, s: &str, expect: bool) {
        assert_eq!(Glob::new(pat).matches(s), expect, "{pat} ~ {s}");
    }

    #[test]
    fn literals() {
        check("orders", "orders", true);
        check("orders", "orders2", false);
    }

    #[test]
    fn stars_and_marks() {
        check("prod-*", "prod-eu", true);
        check("prod-*", "staging", false);
        check("*.users", "public.users", true);
        check("/admin/*", "/admin/users/1", true);
        check("a*b*c", "aXXbYYc", true);
        check("a*b*c", "aXXbYY", false);
        check("?ed", "red", true);
        check("*", "", true);
        check("rm -rf *", "rm -rf /", true);
    }
}
