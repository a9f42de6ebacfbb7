//! Recognizes values that look like credentials, so `gwctl lint` can refuse
//! a policy that carries one. False positives cost a rename; a false
//! negative costs a rotated key, so the patterns lean towards reporting.

use regex::Regex;
use std::sync::LazyLock;

static PATTERNS: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    [
        ("AWS access key", r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
        ("private key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
        (
            "JSON Web Token",
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        ),
        ("GitHub token", r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
        ("Slack token", r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
        ("Stripe key", r"\b[sr]k_live_[A-Za-z0-9]{16,}\b"),
        (
            "password in a URL",
            r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@",
        ),
    ]
    .into_iter()
    .filter_map(|(name, re)| Regex::new(re).ok().map(|r| (name, r)))
    .collect()
});

/// What kind of secret `s` looks like, if any.
pub fn looks_like_secret(s: &str) -> Option<&'static str> {
    PATTERNS
        .iter()
        .find(|(_, re)| re.is_match(s))
        .map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::looks_like_secret;

    #[test]
    fn finds_secrets() {
        assert_eq!(
            looks_like_secret("AKIAIOSFODNN7EXAMPLE"),
            Some("AWS access key")
        );
        assert_eq!(
            looks_like_secret("-----BEGIN OPENSSH PRIVATE KEY-----"),
            Some("private key")
        );
        assert_eq!(
            looks_like_secret("postgres://app:hunter2@db:5432/x"),
            Some("password in a URL")
        );
    }

    #[test]
    fn ignores_references_and_patterns() {
        assert_eq!(looks_like_secret("env:ORDERS_DB_PASSWORD"), None);
        assert_eq!(looks_like_secret("AKIA[0-9A-Z]{16}"), None);
        assert_eq!(looks_like_secret("postgres://db:5432/x"), None);
    }
}
