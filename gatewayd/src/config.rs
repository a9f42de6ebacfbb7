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
    /// The HTTPS API (reviews), on the client-facing TLS certificate.
    pub(crate) listen_api: Option<String>,
    /// The SSH listener (off unless configured).
    pub(crate) listen_ssh: Option<String>,
    /// Ciphers offered to SSH clients (`ssh-ciphers`); `None`: AES-GCM only
    /// where the CPU has AES instructions, else russh's list (see `ssh.rs`).
    pub(crate) ssh_ciphers: Option<Vec<String>>,
    /// PEM certificate chain and key for client-facing TLS; `None` means a
    /// self-signed development certificate generated under `state`.
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    pub(crate) policy: PolicySource,
    /// How long a live session whose grant a new policy revoked may go on.
    pub(crate) revoke_grace: Duration,
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
    /// Where review notifications go.
    pub(crate) webhooks: Vec<Webhook>,
    /// How people log in.
    pub(crate) identity: Identity,
}

/// The `identity` block: the OpenID provider, group mapping, token admins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) oidc: Option<OidcConfig>,
    /// Provider group name → the name the policy uses; unmapped names pass.
    pub(crate) group_map: Vec<(String, String)>,
    /// Groups whose members may revoke anyone's tokens.
    pub(crate) admins: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OidcConfig {
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: gw_policy::model::SecretRef,
    /// Where the provider sends browsers back: this gateway's
    /// `/v1/login/callback`, as registered with the provider.
    pub(crate) redirect_url: String,
    pub(crate) groups_claim: String,
    /// The claim naming the principal (`email` by default; `sub` always works).
    pub(crate) subject_claim: String,
    pub(crate) scopes: Vec<String>,
}

/// Where the policy comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PolicySource {
    /// Files under a directory, read at start; with `watch`, re-read on
    /// every change (development).
    Directory { path: PathBuf, watch: bool },
    /// A branch of a Git remote, fetched every `poll` (and on a webhook).
    Git(GitSource),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GitSource {
    /// A URL (`https://`, `ssh://`, `git@host:path`) or a local path.
    pub(crate) remote: String,
    pub(crate) branch: String,
    /// The directory inside the repository holding the policy ("" = root).
    pub(crate) path: String,
    pub(crate) poll: Duration,
    /// HMAC key for `POST /v1/policy/refresh` (GitHub's
    /// `X-Hub-Signature-256`); without it the endpoint is off.
    pub(crate) webhook_secret: Option<gw_policy::model::SecretRef>,
    /// Accept only commits SSH-signed by a key in this allowed-signers file.
    pub(crate) allowed_signers: Option<PathBuf>,
}

impl PolicySource {
    /// How the source reads in logs and status.
    pub(crate) fn describe(&self) -> String {
        match self {
            PolicySource::Directory { path, watch } => format!(
                "directory {}{}",
                path.display(),
                if *watch { " (watched)" } else { "" }
            ),
            PolicySource::Git(g) => format!(
                "git {} branch {}{}",
                g.remote,
                g.branch,
                if g.path.is_empty() {
                    String::new()
                } else {
                    format!(" path {}", g.path)
                }
            ),
        }
    }
}

/// A review-notification receiver. The URL and the secret are references
/// (`env:`/`file:`) or, for the URL, a literal: Slack's webhook URLs are
/// themselves secrets, so they may come from the environment too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Webhook {
    pub(crate) url: UrlSource,
    pub(crate) format: HookFormat,
    /// HMAC-SHA256 key; required for the generic format.
    pub(crate) secret: Option<gw_policy::model::SecretRef>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum UrlSource {
    Literal(String),
    Secret(gw_policy::model::SecretRef),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HookFormat {
    /// `{"event": .., "review": {..}}`, signed with HMAC-SHA256.
    Generic,
    /// `{"text": ..}`, what Slack (and Mattermost, and others) accept.
    Slack,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            gateway_id: "gatewayd-dev".into(),
            listen_postgres: Some("127.0.0.1:6432".into()),
            listen_admin: "127.0.0.1:9090".into(),
            listen_api: Some("127.0.0.1:8443".into()),
            listen_ssh: None,
            ssh_ciphers: None,
            tls_cert: None,
            tls_key: None,
            policy: PolicySource::Directory {
                path: "policy-examples/quickstart".into(),
                watch: false,
            },
            revoke_grace: Duration::from_secs(60),
            state: ".gatewayd".into(),
            recordings: ".gatewayd/recordings".into(),
            demo: true,
            token_ttl: Duration::from_secs(8 * 3600),
            recording_key: None,
            token_key: None,
            worker_threads: None,
            webhooks: Vec::new(),
            identity: Identity::default(),
        }
    }
}

const KNOWN: [&str; 14] = [
    "gateway-id",
    "listen",
    "ssh-ciphers",
    "tls",
    "policy",
    "state",
    "recordings",
    "demo",
    "token-ttl",
    "keys",
    "worker-threads",
    "reviews",
    "identity",
    "description",
];

/// The SSH ciphers `ssh-ciphers` may name: the AEADs and CTR modes (with
/// encrypt-then-MAC), never CBC, 3DES or `none`.
pub(crate) const SSH_CIPHERS: [&str; 6] = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
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
                c.listen_api = prop("api").map(Into::into).or(c.listen_api);
                c.listen_ssh = prop("ssh").map(Into::into).or(c.listen_ssh);
            }
            "ssh-ciphers" => {
                let names: Vec<&str> = node
                    .entries()
                    .iter()
                    .filter(|e| e.name().is_none())
                    .filter_map(|e| e.value().as_string())
                    .collect();
                match names.iter().find(|n| !SSH_CIPHERS.contains(n)) {
                    _ if names.is_empty() => bad(format!(
                        "`ssh-ciphers` needs one or more of: {}",
                        SSH_CIPHERS.join(", ")
                    )),
                    Some(n) => bad(format!(
                        "unknown or weak SSH cipher `{n}`; known: {}",
                        SSH_CIPHERS.join(", ")
                    )),
                    None => c.ssh_ciphers = Some(names.iter().map(|n| (*n).to_owned()).collect()),
                }
            }
            "tls" => {
                c.tls_cert = prop("cert").map(PathBuf::from);
                c.tls_key = prop("key").map(PathBuf::from);
                if c.tls_cert.is_some() != c.tls_key.is_some() {
                    bad("`tls` needs both `cert` and `key`, or neither (for a generated development certificate)".into());
                }
            }
            "policy" => match policy_source(node) {
                Ok((source, grace)) => {
                    c.policy = source;
                    if let Some(g) = grace {
                        c.revoke_grace = g;
                    }
                }
                Err(msg) => bad(msg),
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
            "reviews" => {
                for child in node.iter_children() {
                    match webhook(child) {
                        Ok(h) => c.webhooks.push(h),
                        Err(msg) => errors.push(Diagnostic::error(
                            "invalid-config",
                            0,
                            child.name().span().into(),
                            msg,
                        )),
                    }
                }
            }
            "identity" => match identity(node) {
                Ok(i) => c.identity = i,
                Err(msg) => bad(msg),
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

/// `policy directory="PATH" [watch=#true]` or `policy git="REMOTE"
/// [branch="main"] [path="DIR"] [poll="30s"] [webhook-secret="env:NAME"]
/// [allowed-signers="/path"]`, either with `[revoke-grace="60s"]`.
fn policy_source(node: &kdl::KdlNode) -> Result<(PolicySource, Option<Duration>), String> {
    use gw_policy::model::SecretRef;
    const KNOWN: [&str; 8] = [
        "directory",
        "watch",
        "git",
        "branch",
        "path",
        "poll",
        "webhook-secret",
        "allowed-signers",
    ];
    let mut props = std::collections::HashMap::new();
    for e in node.entries() {
        let Some(name) = e.name().map(|n| n.value()) else {
            return Err("`policy` takes properties only, e.g. `policy git=\"URL\"`".into());
        };
        if !KNOWN.contains(&name) && name != "revoke-grace" {
            return Err(format!(
                "unknown `policy` property `{name}`; known: {}, revoke-grace",
                KNOWN.join(", ")
            ));
        }
        props.insert(name, e.value());
    }
    let string = |k: &str| props.get(k).and_then(|v| v.as_string());
    let duration = |k: &str| -> Result<Option<Duration>, String> {
        match props.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_string()
                .and_then(parse_duration)
                .map(Some)
                .ok_or(format!("`{k}` needs a duration such as \"30s\"")),
        }
    };
    let grace = duration("revoke-grace")?;
    let source = match (string("directory"), string("git")) {
        (Some(dir), None) => {
            if [
                "branch",
                "path",
                "poll",
                "webhook-secret",
                "allowed-signers",
            ]
            .iter()
            .any(|k| props.contains_key(k))
            {
                return Err("`branch`, `path`, `poll`, `webhook-secret` and `allowed-signers` apply to `git=` sources".into());
            }
            let watch = match props.get("watch") {
                None => false,
                Some(v) => v.as_bool().ok_or("`watch` needs #true or #false")?,
            };
            PolicySource::Directory {
                path: dir.into(),
                watch,
            }
        }
        (None, Some(remote)) => {
            if props.contains_key("watch") {
                return Err("`watch` applies to `directory=` sources; Git sources poll".into());
            }
            let webhook_secret = match string("webhook-secret") {
                None => None,
                Some(s) => Some(SecretRef::parse(s).ok_or(
                    "`webhook-secret` must be a reference (env:NAME or file:/path), never the secret itself",
                )?),
            };
            let branch = string("branch").unwrap_or("main");
            if branch.is_empty() || branch.starts_with('-') || branch.contains("..") {
                return Err(format!("`{branch}` is not a usable branch name"));
            }
            PolicySource::Git(GitSource {
                remote: remote.to_owned(),
                branch: branch.to_owned(),
                path: string("path").unwrap_or("").trim_matches('/').to_owned(),
                poll: duration("poll")?.unwrap_or(Duration::from_secs(30)),
                webhook_secret,
                allowed_signers: string("allowed-signers").map(PathBuf::from),
            })
        }
        _ => {
            return Err(
                "`policy` needs exactly one of `directory=\"PATH\"` or `git=\"REMOTE\"`".into(),
            );
        }
    };
    Ok((source, grace))
}

/// `identity { oidc issuer=.. client-id=.. client-secret="env:.." redirect-url=..
/// [groups-claim="groups"] [subject-claim="email"] [scopes="openid ..."];
/// map-group "IDP-NAME" to="POLICY-NAME"; admins "GROUP"... }`
fn identity(node: &kdl::KdlNode) -> Result<Identity, String> {
    use gw_policy::model::SecretRef;
    let mut out = Identity::default();
    for child in node.iter_children() {
        let prop = |k: &str| {
            child
                .entries()
                .iter()
                .find(|e| e.name().is_some_and(|n| n.value() == k))
                .and_then(|e| e.value().as_string())
        };
        let args: Vec<&str> = child
            .entries()
            .iter()
            .filter(|e| e.name().is_none())
            .filter_map(|e| e.value().as_string())
            .collect();
        match child.name().value() {
            "oidc" => {
                let need = |k: &str| prop(k).ok_or(format!("`oidc` needs `{k}=`"));
                let secret = need("client-secret")?;
                let client_secret = SecretRef::parse(secret).ok_or(
                    "`client-secret` must be a reference (env:NAME or file:/path), never the secret itself",
                )?;
                let issuer = need("issuer")?.trim_end_matches('/').to_owned();
                let redirect_url = need("redirect-url")?.to_owned();
                for (k, v) in [("issuer", &issuer), ("redirect-url", &redirect_url)] {
                    if !(v.starts_with("https://") || v.starts_with("http://")) {
                        return Err(format!("`{k}` must be an http(s) URL"));
                    }
                }
                out.oidc = Some(OidcConfig {
                    issuer,
                    client_id: need("client-id")?.to_owned(),
                    client_secret,
                    redirect_url,
                    groups_claim: prop("groups-claim").unwrap_or("groups").to_owned(),
                    subject_claim: prop("subject-claim").unwrap_or("email").to_owned(),
                    scopes: prop("scopes")
                        .unwrap_or("openid profile email groups")
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect(),
                });
            }
            "map-group" => match (args.as_slice(), prop("to")) {
                ([from], Some(to)) => out.group_map.push(((*from).to_owned(), to.to_owned())),
                _ => return Err("`map-group \"IDP-GROUP\" to=\"GROUP\"`".into()),
            },
            "admins" if !args.is_empty() => {
                out.admins.extend(args.iter().map(|a| (*a).to_owned()));
            }
            other => {
                return Err(format!(
                    "unknown setting `{other}` in `identity`; known: oidc, map-group, admins"
                ));
            }
        }
    }
    Ok(out)
}

/// `webhook "URL" format="generic|slack" secret="env:NAME"`
fn webhook(node: &kdl::KdlNode) -> Result<Webhook, String> {
    use gw_policy::model::SecretRef;
    if node.name().value() != "webhook" {
        return Err(format!(
            "unknown setting `{}` in `reviews`; known: webhook",
            node.name().value()
        ));
    }
    let string = |k: Option<&str>| {
        node.entries()
            .iter()
            .find(|e| e.name().map(|n| n.value()) == k)
            .and_then(|e| e.value().as_string())
    };
    let url = string(None).ok_or("`webhook` needs a URL (or env:NAME / file:/path)")?;
    let url = match SecretRef::parse(url) {
        Some(r) => UrlSource::Secret(r),
        None if url.starts_with("https://") || url.starts_with("http://") => {
            UrlSource::Literal(url.to_owned())
        }
        None => return Err("the webhook URL must be http(s)://, env:NAME or file:/path".into()),
    };
    let format = match string(Some("format")).unwrap_or("generic") {
        "generic" => HookFormat::Generic,
        "slack" => HookFormat::Slack,
        other => {
            return Err(format!(
                "unknown webhook format `{other}`; known: generic, slack"
            ));
        }
    };
    let secret = match string(Some("secret")) {
        Some(s) => Some(SecretRef::parse(s).ok_or(
            "a webhook secret must be a reference (env:NAME or file:/path), never the secret itself",
        )?),
        None => None,
    };
    if format == HookFormat::Generic && secret.is_none() {
        return Err("a generic webhook needs `secret=\"env:NAME\"`: receivers must be able to check that a notification came from the gateway".into());
    }
    Ok(Webhook {
        url,
        format,
        secret,
    })
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
    fn ssh_ciphers_are_checked() {
        let src = Source::new(
            "b.kdl",
            "ssh-ciphers \"aes128-gcm@openssh.com\" \"chacha20-poly1305@openssh.com\"\n",
        );
        let c = parse(&src).unwrap();
        assert_eq!(
            c.ssh_ciphers.as_deref(),
            Some(
                &[
                    "aes128-gcm@openssh.com".to_owned(),
                    "chacha20-poly1305@openssh.com".to_owned()
                ][..]
            )
        );
        assert_eq!(parse(&Source::new("b.kdl", "")).unwrap().ssh_ciphers, None);
        for bad in [
            "ssh-ciphers \"3des-cbc\"\n",
            "ssh-ciphers \"none\"\n",
            "ssh-ciphers\n",
        ] {
            let errors = parse(&Source::new("b.kdl", bad)).unwrap_err();
            assert_eq!(errors.len(), 1, "{bad}");
            assert!(
                errors[0].message.contains("aes128-gcm@openssh.com"),
                "{}",
                errors[0].message
            );
        }
    }

    #[test]
    fn webhooks_take_references_not_secrets() {
        let src = Source::new(
            "b.kdl",
            "listen api=\"127.0.0.1:0\"\nreviews {\n webhook \"https://hooks.example.com/x\" secret=\"env:HOOK\"\n webhook \"env:SLACK_URL\" format=\"slack\"\n}\n",
        );
        let c = parse(&src).unwrap();
        assert_eq!(c.listen_api.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(c.webhooks.len(), 2);
        assert_eq!(c.webhooks[1].format, HookFormat::Slack);
        let bad = Source::new(
            "b.kdl",
            "reviews {\n webhook \"https://h/x\" secret=\"hunter2\"\n webhook \"https://h/y\"\n webhook \"ftp://h\" format=\"slack\"\n hook \"x\"\n}\n",
        );
        let errors = parse(&bad).unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors.iter().all(|e| !e.message.contains("hunter2")));
    }

    #[test]
    fn policy_from_git_or_a_watched_directory() {
        let src = Source::new(
            "b.kdl",
            "policy git=\"https://git.example.com/policy.git\" branch=\"prod\" path=\"/policy/\" poll=\"10s\" webhook-secret=\"env:HOOK\" allowed-signers=\"/etc/gw/signers\" revoke-grace=\"5s\"\n",
        );
        let c = parse(&src).unwrap();
        assert_eq!(c.revoke_grace, Duration::from_secs(5));
        let PolicySource::Git(g) = &c.policy else {
            panic!("{:?}", c.policy)
        };
        assert_eq!((g.branch.as_str(), g.path.as_str()), ("prod", "policy"));
        assert_eq!(g.poll, Duration::from_secs(10));
        let c = parse(&Source::new(
            "b.kdl",
            "policy directory=\"/p\" watch=#true\n",
        ))
        .unwrap();
        assert_eq!(
            c.policy,
            PolicySource::Directory {
                path: "/p".into(),
                watch: true
            }
        );
        for bad in [
            "policy\n",
            "policy directory=\"/p\" git=\"/q\"\n",
            "policy directory=\"/p\" branch=\"x\"\n",
            "policy git=\"/q\" webhook-secret=\"hunter2\"\n",
            "policy git=\"/q\" branch=\"--upload-pack=x\"\n",
            "policy git=\"/q\" pol=\"1s\"\n",
        ] {
            assert!(parse(&Source::new("b.kdl", bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn identity_takes_a_secret_reference_and_maps_groups() {
        let src = Source::new(
            "b.kdl",
            "identity {\n oidc issuer=\"https://idp.example.com/\" client-id=\"gw\" client-secret=\"env:OIDC\" redirect-url=\"https://gw:8443/v1/login/callback\"\n map-group \"idp-dba\" to=\"dba\"\n admins \"security\"\n}\n",
        );
        let c = parse(&src).unwrap();
        let o = c.identity.oidc.unwrap();
        assert_eq!(o.issuer, "https://idp.example.com");
        assert_eq!(
            (o.groups_claim.as_str(), o.subject_claim.as_str()),
            ("groups", "email")
        );
        assert_eq!(c.identity.group_map, [("idp-dba".into(), "dba".into())]);
        assert_eq!(c.identity.admins, ["security"]);
        let bad = Source::new(
            "b.kdl",
            "identity {\n oidc issuer=\"https://i\" client-id=\"gw\" client-secret=\"s3cr3t\" redirect-url=\"https://g/cb\"\n}\n",
        );
        let e = parse(&bad).unwrap_err();
        assert!(!e[0].message.contains("s3cr3t"));
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
