//! Talking to a gateway: where it is, which CA to trust, which token to
//! send, and the token cache `gwctl login` fills.
//!
//! The token comes from, in order: `--token`/`GWCTL_TOKEN`,
//! `--token-file`/`GWCTL_TOKEN_FILE`, then the cache entry for this
//! gateway. The cache is `$GWCTL_CONFIG_DIR/tokens.json` (default
//! `$XDG_CONFIG_HOME/gwctl` or `~/.config/gwctl`), a directory only its
//! owner may enter (0700) holding a file only its owner may read (0600),
//! replaced atomically.

use crate::Failure;
use anyhow::{Context as _, anyhow};
use clap::Args as ClapArgs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How to reach a gateway's API.
#[derive(ClapArgs, Clone)]
pub(crate) struct Conn {
    /// The gateway's API address.
    #[arg(
        long,
        env = "GWCTL_GATEWAY",
        default_value = "https://127.0.0.1:8443",
        global = true
    )]
    pub(crate) gateway: String,
    /// A gateway token (default: $GWCTL_TOKEN, then the `gwctl login` cache).
    #[arg(long, env = "GWCTL_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// A file holding the gateway token.
    #[arg(long, env = "GWCTL_TOKEN_FILE", global = true)]
    token_file: Option<PathBuf>,
    /// A CA certificate (PEM) to trust besides the public roots, e.g. the
    /// gateway's development certificate `.gatewayd/tls/dev-cert.pem`.
    #[arg(long, env = "GWCTL_CA", global = true)]
    pub(crate) ca: Option<PathBuf>,
}

/// Cached tokens are renewed when they have less than this many seconds left.
const RENEW_BEFORE: u64 = 600;

/// A token as `gwctl login` stores it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Cached {
    pub(crate) token: String,
    pub(crate) token_id: String,
    pub(crate) subject: String,
    pub(crate) groups: Vec<String>,
    pub(crate) expires_at: u64,
}

impl Conn {
    pub(crate) fn base(&self) -> &str {
        self.gateway.trim_end_matches('/')
    }

    pub(crate) fn http(&self) -> anyhow::Result<gw_http::Client> {
        let cas: Vec<&std::path::Path> = self.ca.iter().map(PathBuf::as_path).collect();
        Ok(gw_http::Client::new(&cas)?)
    }

    /// The token to send, and where it came from.
    pub(crate) fn token(&self) -> anyhow::Result<String> {
        if let Some(t) = &self.token {
            return Ok(t.trim().to_owned());
        }
        if let Some(path) = &self.token_file {
            let t = std::fs::read_to_string(path)
                .with_context(|| format!("reading the token file {}", path.display()))?;
            return Ok(t.trim().to_owned());
        }
        match self.cached()? {
            Some(c) if c.expires_at > now() => Ok(c.token),
            Some(_) => Err(anyhow!(
                "your gateway token for {} has expired: run `gwctl login`",
                self.base()
            )),
            None => Err(anyhow!(
                "not logged in to {}: run `gwctl login` (or pass --token / set GWCTL_TOKEN)",
                self.base()
            )),
        }
    }

    /// The token, renewed first when it is a cached login that expires
    /// within ten minutes (the gateway renews it through the identity
    /// provider; if that fails, the current token is used while it lasts).
    pub(crate) async fn fresh_token(&self) -> anyhow::Result<String> {
        if self.token.is_some() || self.token_file.is_some() {
            return self.token();
        }
        let Some(c) = self.cached()? else {
            return self.token();
        };
        let left = c.expires_at.saturating_sub(now());
        if left == 0 || left >= RENEW_BEFORE {
            return self.token();
        }
        match self
            .exchange(
                "POST",
                "/v1/token/refresh",
                Some(b"{}".to_vec()),
                Some(&c.token),
            )
            .await
        {
            Ok((200, v)) => {
                let renewed: Cached = serde_json::from_value(v)
                    .context("the gateway's renewal is not in the expected shape")?;
                self.store(&renewed)?;
                Ok(renewed.token)
            }
            Ok((_, v)) => {
                eprintln!(
                    "warning: could not renew the token ({}); it expires in {left} s",
                    v["error"]["message"].as_str().unwrap_or("no reason given")
                );
                Ok(c.token)
            }
            Err(e) => {
                eprintln!("warning: could not renew the token ({e:#}); it expires in {left} s");
                Ok(c.token)
            }
        }
    }

    pub(crate) fn cached(&self) -> anyhow::Result<Option<Cached>> {
        Ok(read_cache()?.remove(self.base()))
    }

    pub(crate) fn store(&self, c: &Cached) -> anyhow::Result<()> {
        let mut all = read_cache()?;
        all.insert(self.base().to_owned(), c.clone());
        write_cache(&all)
    }

    pub(crate) fn forget(&self) -> anyhow::Result<bool> {
        let mut all = read_cache()?;
        let had = all.remove(self.base()).is_some();
        write_cache(&all)?;
        Ok(had)
    }

    /// One API call with the token: the JSON answer of a 2xx, or a failure
    /// that already told the user what the gateway said (exit 1 for
    /// refusals).
    pub(crate) async fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<serde_json::Value, Failure> {
        let token = self.fresh_token().await?;
        self.send(method, path, body, Some(&token)).await
    }

    /// One API call, with or without a token.
    pub(crate) async fn send(
        &self,
        method: &'static str,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<&str>,
    ) -> Result<serde_json::Value, Failure> {
        let (status, value) = self.exchange(method, path, body, token).await?;
        if !(200..300).contains(&status) {
            let message = value["error"]["message"]
                .as_str()
                .unwrap_or("no reason given");
            eprintln!("error: {message}");
            return Err(match status {
                401 => Failure::Usage(anyhow!(
                    "the gateway did not accept the token; run `gwctl login`"
                )),
                403 | 404 | 409 => Failure::Policy,
                s => Failure::Usage(anyhow!("the gateway answered HTTP {s}")),
            });
        }
        Ok(value)
    }

    /// The raw status and JSON body of one call.
    pub(crate) async fn exchange(
        &self,
        method: &'static str,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<&str>,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let client = self.http()?;
        let url = format!("{}{path}", self.base());
        let mut req = match body {
            Some(b) => gw_http::Request::post_json(&url, b),
            None => gw_http::Request::get(&url),
        };
        req.method = method;
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = client
            .send(req, Duration::from_secs(30))
            .await
            .with_context(|| format!("talking to the gateway at {}", self.base()))?;
        let value = serde_json::from_slice(&resp.body).map_err(|_| {
            anyhow!(
                "the gateway answered HTTP {} with something that is not JSON",
                resp.status
            )
        })?;
        Ok((resp.status, value))
    }
}

/// Runs an API conversation on a single-threaded runtime.
pub(crate) fn block_on<F: std::future::Future<Output = Result<(), Failure>>>(
    f: F,
) -> Result<(), Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(f)
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("GWCTL_CONFIG_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(d).join("gwctl"));
    }
    let home = std::env::var_os("HOME")
        .ok_or_else(|| anyhow!("neither GWCTL_CONFIG_DIR, XDG_CONFIG_HOME nor HOME is set"))?;
    Ok(PathBuf::from(home).join(".config/gwctl"))
}

fn read_cache() -> anyhow::Result<BTreeMap<String, Cached>> {
    let path = cache_dir()?.join("tokens.json");
    match std::fs::read(&path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_cache(all: &BTreeMap<String, Cached>) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
    let dir = cache_dir()?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    // An existing directory keeps its mode; tighten it.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let path = dir.join("tokens.json");
    let tmp = dir.join(".tokens.json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec_pretty(all)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}
