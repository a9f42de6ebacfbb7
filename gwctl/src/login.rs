//! `gwctl login`, `logout`, `token` and `connect`: a responder's way in.
//!
//! `login` runs the device flow by default (works over SSH, no browser on
//! this machine needed) or, with `--browser`, the code flow through a
//! loopback redirect: `gwctl` listens on 127.0.0.1, the gateway hands the
//! login off to that address with a one-time id, and only this process can
//! redeem it (it holds the secret whose SHA-256 started the login).

use crate::Failure;
use crate::client::{Cached, Conn, block_on, now};
use anyhow::{Context as _, anyhow};
use std::io::{BufRead as _, BufReader, Write as _};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub(crate) struct LoginArgs {
    #[command(flatten)]
    conn: Conn,
    /// Log in through a browser (code flow) instead of a device code.
    #[arg(long)]
    browser: bool,
    /// With --browser: print the URL instead of opening a browser.
    #[arg(long)]
    no_open: bool,
    /// Log in as this service account, with its secret from $GWCTL_SECRET
    /// (or the first line of stdin).
    #[arg(long, conflicts_with_all = ["browser", "break_glass"])]
    service_account: Option<String>,
    /// Log in as this break-glass principal (loudly audited), with its
    /// secret from $GWCTL_SECRET (or the first line of stdin).
    #[arg(long, conflicts_with = "browser")]
    break_glass: Option<String>,
}

#[derive(clap::Args)]
pub(crate) struct SecretArgs {
    /// The account's name in the policy.
    #[arg(long, default_value = "NAME")]
    name: String,
    /// Make a break-glass principal instead of a service account.
    #[arg(long)]
    break_glass: bool,
}

#[derive(clap::Args)]
pub(crate) struct ConnArgs {
    #[command(flatten)]
    conn: Conn,
}

#[derive(clap::Args)]
pub(crate) struct ConnectArgs {
    #[command(flatten)]
    conn: Conn,
    /// The resource to connect to.
    resource: String,
    /// Print the command instead of running it.
    #[arg(long)]
    print: bool,
    /// Extra arguments for the client (after `--`).
    #[arg(last = true)]
    extra: Vec<String>,
}

pub(crate) fn login(args: LoginArgs) -> Result<(), Failure> {
    block_on(async move {
        let issued = match (&args.service_account, &args.break_glass) {
            (Some(name), _) | (None, Some(name)) => secret_login(&args.conn, name).await?,
            _ if args.browser => browser_login(&args.conn, args.no_open).await?,
            _ => device_login(&args.conn).await?,
        };
        args.conn.store(&issued)?;
        eprintln!(
            "logged in to {} as {} (groups: {}); the token is valid for {}",
            args.conn.base(),
            issued.subject,
            issued.groups.join(", "),
            human(issued.expires_at.saturating_sub(now()))
        );
        // An SSH certificate for the same login, when the gateway speaks SSH.
        match ssh_certificate(&args.conn, &issued.token).await {
            Ok(Some(key)) => eprintln!(
                "ssh certificate: {}-cert.pub (ssh -i {} -p PORT -l RESOURCE HOST, or `gwctl connect RESOURCE`)",
                key.display(),
                key.display()
            ),
            Ok(None) => {}
            Err(e) => eprintln!("warning: no SSH certificate: {e:#}"),
        }
        Ok(())
    })
}

async fn secret_login(conn: &Conn, account: &str) -> Result<Cached, Failure> {
    let secret = match std::env::var("GWCTL_SECRET") {
        Ok(s) => s,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the secret from stdin")?;
            line
        }
    };
    let body =
        serde_json::to_vec(&serde_json::json!({"account": account, "secret": secret.trim()}))
            .unwrap_or_default();
    let v = conn
        .send("POST", "/v1/login/secret", Some(body), None)
        .await?;
    Ok(cached_from(&v)?)
}

/// `gwctl secret new`: a fresh random secret and the policy block holding
/// only its hash.
pub(crate) fn secret(args: SecretArgs) -> Result<(), Failure> {
    let secret = format!("gws_{}", random_hex()?);
    let hash = sha256_hex(&secret);
    let kind = if args.break_glass {
        "break-glass"
    } else {
        "service-account"
    };
    eprintln!("The secret, shown once: store it where the account's owner keeps secrets.");
    println!("{secret}");
    eprintln!(
        "\nThe policy block (only the hash; commit it by pull request):\n\n{kind} \"{}\" {{\n    groups \"GROUP\"\n    secret-hash \"sha256:{hash}\"\n}}\n\nLog in with: GWCTL_SECRET=... gwctl login --{kind} {}",
        args.name, args.name
    );
    Ok(())
}

/// The key `gwctl` keeps for SSH through the gateway.
fn ssh_key_path() -> anyhow::Result<std::path::PathBuf> {
    Ok(crate::client::cache_dir()?.join("id_ed25519"))
}

/// Gets an SSH user certificate for this login (`None`: the gateway has no
/// SSH listener). The key is made with `ssh-keygen` on first use.
async fn ssh_certificate(conn: &Conn, token: &str) -> anyhow::Result<Option<std::path::PathBuf>> {
    let (status, v) = conn
        .exchange("GET", "/v1/resources", None, Some(token))
        .await?;
    if status != 200 || v["listeners"]["ssh"].is_null() {
        return Ok(None);
    }
    let key = ssh_key_path()?;
    if !key.exists() {
        if let Some(dir) = key.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "gwctl", "-f"])
            .arg(&key)
            .output()
            .context("running ssh-keygen")?;
        if !out.status.success() {
            return Err(anyhow!(
                "ssh-keygen failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let public =
        std::fs::read_to_string(key.with_extension("pub")).context("reading the SSH public key")?;
    let body =
        serde_json::to_vec(&serde_json::json!({"public_key": public.trim()})).unwrap_or_default();
    let (status, v) = conn
        .exchange("POST", "/v1/ssh/certificate", Some(body), Some(token))
        .await?;
    let cert = v["certificate"]
        .as_str()
        .filter(|_| status == 200)
        .ok_or_else(|| {
            anyhow!(
                "{}",
                v["error"]["message"]
                    .as_str()
                    .unwrap_or("the gateway did not sign a certificate")
            )
        })?;
    let path = std::path::PathBuf::from(format!("{}-cert.pub", key.display()));
    std::fs::write(&path, format!("{cert}\n"))?;
    Ok(Some(key))
}

/// `gwctl ssh-cert`: a fresh SSH certificate for the current token.
pub(crate) fn ssh_cert(args: ConnArgs) -> Result<(), Failure> {
    block_on(async move {
        let token = args.conn.fresh_token().await?;
        match ssh_certificate(&args.conn, &token).await? {
            Some(key) => {
                println!("{}-cert.pub", key.display());
                Ok(())
            }
            None => Err(anyhow!("{} has no SSH listener", args.conn.base()).into()),
        }
    })
}

fn cached_from(v: &serde_json::Value) -> anyhow::Result<Cached> {
    serde_json::from_value(v.clone())
        .context("the gateway's login answer is not in the expected shape")
}

async fn device_login(conn: &Conn) -> Result<Cached, Failure> {
    let start = conn
        .send("POST", "/v1/login/device", Some(b"{}".to_vec()), None)
        .await?;
    let s = |k: &str| start[k].as_str().unwrap_or("").to_owned();
    let url = start["verification_uri_complete"]
        .as_str()
        .map_or_else(|| s("verification_uri"), str::to_owned);
    eprintln!(
        "To log in, open {url}\n  (or open {} and enter the code {})",
        s("verification_uri"),
        s("user_code")
    );
    let interval = Duration::from_secs(start["interval"].as_u64().unwrap_or(5).clamp(1, 30));
    let deadline =
        Instant::now() + Duration::from_secs(start["expires_in"].as_u64().unwrap_or(600));
    let path = format!("/v1/login/device/{}", crate::review::encode(&s("handle")));
    loop {
        tokio::time::sleep(interval.min(Duration::from_secs(2))).await;
        let (status, v) = conn
            .exchange("POST", &path, Some(b"{}".to_vec()), None)
            .await?;
        match status {
            202 if Instant::now() < deadline => {}
            202 => return Err(anyhow!("the login was not completed in time").into()),
            200 => return Ok(cached_from(&v)?),
            _ => {
                eprintln!(
                    "error: {}",
                    v["error"]["message"].as_str().unwrap_or("login failed")
                );
                return Err(Failure::Policy);
            }
        }
    }
}

async fn browser_login(conn: &Conn, no_open: bool) -> Result<Cached, Failure> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("listening on 127.0.0.1")?;
    let port = listener
        .local_addr()
        .context("listening on 127.0.0.1")?
        .port();
    let secret = random_hex()?;
    let challenge = sha256_hex(&secret);
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let url = format!(
        "{}/v1/login?cli_redirect={}&cli_challenge={challenge}",
        conn.base(),
        crate::review::encode(&redirect)
    );
    eprintln!("To log in, open {url}");
    if !no_open {
        let _ = std::process::Command::new("xdg-open")
            .arg(&url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
    let handoff = tokio::task::spawn_blocking(move || wait_for_handoff(&listener))
        .await
        .map_err(|e| anyhow!("{e}"))??;
    let body = serde_json::to_vec(&serde_json::json!({"handoff": handoff, "secret": secret}))
        .unwrap_or_default();
    let v = conn
        .send("POST", "/v1/login/handoff", Some(body), None)
        .await?;
    Ok(cached_from(&v)?)
}

/// Accepts the browser's redirect on the loopback listener (10 minutes at
/// most) and returns the handoff id it carries.
fn wait_for_handoff(listener: &std::net::TcpListener) -> anyhow::Result<String> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err(anyhow!("no browser came back within 10 minutes"));
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut line = String::new();
        BufReader::new(std::io::Read::take(&stream, 8192)).read_line(&mut line)?;
        let target = line.split_whitespace().nth(1).unwrap_or("");
        let handoff = target.split_once('?').and_then(|(_, q)| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("handoff=").map(str::to_owned))
        });
        let (status, text) = match &handoff {
            Some(_) => (
                "200 OK",
                "Logged in. You can close this window and return to the terminal.",
            ),
            None => ("400 Bad Request", "This is not a login redirect."),
        };
        let mut stream = stream;
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
            text.len()
        );
        if let Some(h) = handoff {
            return Ok(h);
        }
    }
}

pub(crate) fn logout(args: ConnArgs) -> Result<(), Failure> {
    block_on(async move {
        let cached = args.conn.cached()?;
        if let Some(c) = &cached {
            // Revoke it at the gateway; a token that already expired or
            // was revoked needs nothing more.
            let _ = args
                .conn
                .exchange("POST", "/v1/logout", Some(b"{}".to_vec()), Some(&c.token))
                .await;
        }
        let had = args.conn.forget()?;
        eprintln!(
            "{}",
            if had {
                format!("logged out of {}; the token is revoked", args.conn.base())
            } else {
                format!("not logged in to {}", args.conn.base())
            }
        );
        Ok(())
    })
}

/// `gwctl token`: the current token on stdout (for `PGPASSWORD=$(gwctl token)`),
/// renewed first when it is about to expire.
pub(crate) fn token(args: ConnArgs) -> Result<(), Failure> {
    block_on(async move {
        let t = args.conn.fresh_token().await?;
        println!("{t}");
        Ok(())
    })
}

/// `gwctl connect RESOURCE`: the native client, pointed at the gateway,
/// with a fresh token.
pub(crate) fn connect(args: ConnectArgs) -> Result<(), Failure> {
    block_on(async move {
        let v = args.conn.call("GET", "/v1/resources", None).await?;
        let resources = v["resources"].as_array().cloned().unwrap_or_default();
        let Some(r) = resources
            .iter()
            .find(|r| r["name"] == args.resource.as_str())
        else {
            let names: Vec<&str> = resources
                .iter()
                .filter_map(|r| r["name"].as_str())
                .collect();
            eprintln!(
                "error: you have no access to \"{}\"; you may connect to: {}",
                args.resource,
                if names.is_empty() {
                    "nothing".to_owned()
                } else {
                    names.join(", ")
                }
            );
            return Err(Failure::Policy);
        };
        let host = host_of(args.conn.base());
        let subject = v["subject"].as_str().unwrap_or("gateway");
        match r["kind"].as_str() {
            Some("postgres") => {
                let port = v["listeners"]["postgres"]
                    .as_u64()
                    .ok_or_else(|| anyhow!("the gateway has no PostgreSQL listener"))?;
                let tls = match &args.conn.ca {
                    Some(ca) => format!("sslmode=verify-full sslrootcert={}", ca.display()),
                    None => "sslmode=verify-full sslrootcert=system".to_owned(),
                };
                let conninfo = format!(
                    "host={host} port={port} dbname={} user={} {tls}",
                    args.resource, subject
                );
                if r["access"] == "needs-approval" {
                    eprintln!(
                        "note: \"{}\" needs an approved access window; the first attempt requests one",
                        args.resource
                    );
                }
                if args.print {
                    println!("PGPASSWORD=\"$(gwctl token)\" psql \"{conninfo}\"");
                    return Ok(());
                }
                let token = args.conn.fresh_token().await?;
                let status = std::process::Command::new("psql")
                    .arg(&conninfo)
                    .args(&args.extra)
                    .env("PGPASSWORD", token)
                    .status()
                    .context("running psql (is it installed?)")?;
                if status.success() {
                    Ok(())
                } else {
                    Err(Failure::Usage(anyhow!("psql exited with {status}")))
                }
            }
            Some("ssh") => {
                let port = v["listeners"]["ssh"]
                    .as_u64()
                    .ok_or_else(|| anyhow!("the gateway has no SSH listener"))?;
                let token = args.conn.fresh_token().await?;
                let key = ssh_certificate(&args.conn, &token)
                    .await?
                    .ok_or_else(|| anyhow!("the gateway has no SSH listener"))?;
                let ssh_args = [
                    "-i".to_owned(),
                    key.display().to_string(),
                    "-o".to_owned(),
                    "IdentitiesOnly=yes".to_owned(),
                    "-p".to_owned(),
                    port.to_string(),
                    "-l".to_owned(),
                    args.resource.clone(),
                    host,
                ];
                if args.print {
                    println!("ssh {}", ssh_args.join(" "));
                    return Ok(());
                }
                let status = std::process::Command::new("ssh")
                    .args(&ssh_args)
                    .args(&args.extra)
                    .status()
                    .context("running ssh (is it installed?)")?;
                if status.success() {
                    Ok(())
                } else {
                    Err(Failure::Usage(anyhow!("ssh exited with {status}")))
                }
            }
            Some(kind) => Err(anyhow!(
                "\"{}\" is a {kind} resource; `gwctl connect` handles postgres and ssh",
                args.resource
            )
            .into()),
            None => Err(anyhow!("the gateway did not say what kind of resource this is").into()),
        }
    })
}

/// 256 random bits, in hex.
fn random_hex() -> anyhow::Result<String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|_| anyhow!("the system has no randomness"))?;
    Ok(hex(&raw))
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    hex(&sha2::Sha256::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The host of a URL like `https://gw.example.com:8443`.
fn host_of(base: &str) -> String {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h.to_owned(),
        _ => authority.to_owned(),
    }
}

fn human(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        _ => format!("{}h{}m", secs / 3600, (secs % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_from_the_gateway_url() {
        assert_eq!(host_of("https://gw.example.com:8443"), "gw.example.com");
        assert_eq!(host_of("https://127.0.0.1:8443/"), "127.0.0.1");
        assert_eq!(host_of("https://gw.example.com"), "gw.example.com");
    }
}
