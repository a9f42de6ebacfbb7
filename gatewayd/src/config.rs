//! The bootstrap configuration: what is specific to one gateway instance and
//! never lives in the policy repository (listeners, TLS files, where policy
//! comes from, state and recording directories). One KDL file; every key is
//! optional, and no file at all means the embedded development defaults.

use gw_policy::diagnostic::{Diagnostic, Span};
use gw_policy::{Source, parse_duration};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) gateway_id: String,
    pub(crate) listen_postgres: Option<String>,
    pub(crate) listen_admin: String,
    /// PEM certificate chain and key for client-facing TLS; `None` means a
    /// self-signed development certificate generated under `state`.
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    pub(crate) policy: Vec<PathBuf>,
    pub(crate) state: PathBuf,
    pub(crate) recordings: PathBuf,
    /// Start a throwaway PostgreSQL for resources named `demo` when no
    /// upstream answers (development only).
    pub(crate) demo: bool,
    pub(crate) token_ttl: Duration,
    /// Key files; default under `state/keys/` (created on first start).
    pub(crate) recording_key: Option<PathBuf>,
    pub(crate) token_key: Option<PathBuf>,
    /// Runtime threads for sessions (default: one per core; 1: a single thread).
    pub(crate) worker_threads: Option<usize>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            gateway_id: "gatewayd-dev".into(),
            listen_postgres: Some("127.0.0.1:6432".into()),
            listen_admin: "127.0.0.1:9090".into(),
            tls_cert: None,
            tls_key: None,
            policy: vec!["policy-examples/quickstart".into()],
            state: ".gatewayd".into(),
            recordings: ".gatewayd/recordings".into(),
            demo: true,
            token_ttl: Duration::from_secs(8 * 3600),
            recording_key: None,
            token_key: None,
            worker_threads: None,
        }
    }
}

const KNOWN: [&str; 11] = [
    "gateway-id",
    "listen",
    "tls",
    "policy",
    "state",
    "recordings",
    "demo",
    "token-ttl",
    "keys",
    "worker-threads",
    "description",
];

/// Parses a bootstrap file. `Err` carries every problem, with spans.
pub(crate) fn parse(src: &Source) -> Result<Config, Vec<Diagnostic>> {
    let doc = kdl::KdlDocument::parse_v2(&src.text).map_err(|e| {
        e.diagnostics
            .iter()
            .map(|d| {
                Diagnostic::error(
                    "syntax",
                    0,
                    d.span.into(),
                    d.message.clone().unwrap_or_else(|| "invalid KDL".into()),
                )
            })
            .collect::<Vec<_>>()
    })?;
    let mut c = Config::default();
    let mut errors = Vec::new();
    let mut recordings_set = false;
    for node in doc.nodes() {
        let span: Span = node.name().span().into();
        let name = node.name().value();
        let arg = || {
            node.entries()
                .iter()
                .find(|e| e.name().is_none())
                .and_then(|e| e.value().as_string())
        };
        let prop = |k: &str| {
            node.entries()
                .iter()
                .find(|e| e.name().is_some_and(|n| n.value() == k))
                .and_then(|e| e.value().as_string())
        };
        let mut bad = |msg: String| errors.push(Diagnostic::error("invalid-config", 0, span, msg));
        match name {
            "gateway-id" => match arg() {
                Some(v) => c.gateway_id = v.into(),
                None => bad("`gateway-id` needs a string".into()),
            },
            "listen" => {
                c.listen_postgres = prop("postgres").map(Into::into).or(c.listen_postgres);
                if let Some(a) = prop("admin") {
                    c.listen_admin = a.into();
                }
            }
            "tls" => {
                c.tls_cert = prop("cert").map(PathBuf::from);
                c.tls_key = prop("key").map(PathBuf::from);
                if c.tls_cert.is_some() != c.tls_key.is_some() {
                    bad("`tls` needs both `cert` and `key`, or neither (for a generated development certificate)".into());
                }
            }
            "policy" => match prop("directory") {
                Some(d) => c.policy = vec![d.into()],
                None => bad(
                    "`policy` needs `directory=\"PATH\"` (Git sources come with issue #7)".into(),
                ),
            },
            "state" => match arg() {
                Some(v) => {
                    c.state = v.into();
                    if !recordings_set {
                        c.recordings = c.state.join("recordings");
                    }
                }
                None => bad("`state` needs a directory".into()),
            },
            "recordings" => match arg() {
                Some(v) => {
                    c.recordings = v.into();
                    recordings_set = true;
                }
                None => bad("`recordings` needs a directory".into()),
            },
            "demo" => match node.entries().first().and_then(|e| e.value().as_bool()) {
                Some(b) => c.demo = b,
                None => bad("`demo` needs #true or #false".into()),
            },
            "token-ttl" => match arg().and_then(parse_duration) {
                Some(d) => c.token_ttl = d,
                None => bad("`token-ttl` needs a duration such as \"8h\"".into()),
            },
            "keys" => {
                c.recording_key = prop("recording").map(PathBuf::from);
                c.token_key = prop("token").map(PathBuf::from);
            }
            "worker-threads" => match node
                .entries()
                .first()
                .and_then(|e| e.value().as_integer())
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0)
            {
                Some(n) => c.worker_threads = Some(n),
                None => bad("`worker-threads` needs a positive number".into()),
            },
            "description" => {}
            other => bad(format!(
                "unknown setting `{other}`; known: {}",
                KNOWN.join(", ")
            )),
        }
    }
    if errors.is_empty() {
        Ok(c)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let src = Source::new(
            "b.kdl",
            "gateway-id \"gw-1\"\nlisten postgres=\"0.0.0.0:5433\"\nstate \"/var/lib/gw\"\ndemo #false\ntoken-ttl \"1h\"\n",
        );
        let c = parse(&src).unwrap();
        assert_eq!(c.gateway_id, "gw-1");
        assert_eq!(c.listen_postgres.as_deref(), Some("0.0.0.0:5433"));
        assert_eq!(c.listen_admin, "127.0.0.1:9090");
        assert_eq!(c.recordings, PathBuf::from("/var/lib/gw/recordings"));
        assert!(!c.demo);
        assert_eq!(c.token_ttl, Duration::from_secs(3600));
    }

    #[test]
    fn every_error_is_reported() {
        let src = Source::new(
            "b.kdl",
            "tls cert=\"/a\"\nlisten-on \"x\"\ntoken-ttl \"soon\"\n",
        );
        assert_eq!(parse(&src).unwrap_err().len(), 3);
    }
}
