//! The SSH data path: an SSH server facing clients (russh), an SSH client
//! to targets with the resource's key, and per-channel bridges between them.
//!
//! - **Login**: the login name is the resource (`ssh -l web-1 gw.example.com`);
//!   the password (or keyboard-interactive answer) is the gateway token. A
//!   valid token always logs in; what the policy says is told on the first
//!   channel (a denial on stderr with exit status 1), the way the PostgreSQL
//!   path answers with a FATAL, so people learn why instead of guessing.
//!   Failed logins are audited and slowed (one second per rejection).
//! - **Target**: connected on the first channel with the resource's
//!   `credential user= key=`; its host key must match a pinned `host-key`
//!   (or is learnt once with `trust-on-first-use`, then pinned in
//!   `STATE/ssh/known_hosts`). Nothing reaches the target before policy
//!   allows the session.
//! - **Session channels**: pty, shell, exec, env, window changes, signals,
//!   exit status and exit signal pass through. Exec commands are judged by
//!   guards before they start. Output is masked (across chunk boundaries and
//!   escape sequences) and recorded as asciicast with resizes, input when
//!   the policy asks, and markers for decisions.
//! - **Forwards**: `direct-tcpip` (`ssh -L`) only when a grant allows
//!   `port-forward`, remote forwards (`ssh -R`) with `remote-forward`, the
//!   agent (`ssh -A`) with `agent-forward`; X11 never. Forwarded bytes are
//!   not recorded (documented); each forward is audited.

use crate::audit::AuditEvent;
use crate::recorder::{RecEvent, Recorder};
use crate::state::Gateway;
use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use russh::keys::PublicKey;
use russh::server::{Auth, Msg, Server as _, Session};
use russh::{Channel, ChannelId, ChannelMsg};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex as AsyncMutex;

/// Flush masked output this long after the last chunk, so an interactive
/// prompt appears at once while matches across quick chunks still work.
const MASK_FLUSH: Duration = Duration::from_millis(30);

pub(crate) async fn serve(listener: tokio::net::TcpListener, gw: Arc<Gateway>) {
    let key = match host_key(&gw) {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the SSH listener cannot start");
            return;
        }
    };
    let config = russh::server::Config {
        keys: vec![key],
        auth_rejection_time: Duration::from_secs(1),
        auth_rejection_time_initial: Some(Duration::from_millis(100)),
        max_auth_attempts: 3,
        inactivity_timeout: Some(Duration::from_secs(3600)),
        keepalive_interval: Some(Duration::from_secs(30)),
        // Measured: russh's default 32 KiB packets halve bulk throughput
        // (BENCHMARKS.md). The window is how far a client may send ahead:
        // 16 MiB keeps uploads moving from clients far away.
        window_size: 16 << 20,
        maximum_packet_size: 65535,
        nodelay: true,
        preferred: client_facing(gw.config.ssh_ciphers.as_deref()),
        methods: russh::MethodSet::from(
            &[
                russh::MethodKind::PublicKey,
                russh::MethodKind::Password,
                russh::MethodKind::KeyboardInteractive,
            ][..],
        ),
        ..Default::default()
    };
    let mut server = Server { gw };
    if let Err(e) = server.run_on_socket(Arc::new(config), &listener).await {
        tracing::error!(error = %e, "the SSH listener stopped");
    }
}

/// What clients are offered. In SSH the client's order decides among what
/// both sides offer, and OpenSSH lists chacha20-poly1305 first, so offering
/// it at all means it is used. The gateway decrypts and re-encrypts every
/// byte, and with AES instructions AES-GCM costs it a fraction of
/// chacha20-poly1305 (BENCHMARKS.md), so on such CPUs only AES-GCM is
/// offered (every OpenSSH since 6.2, PuTTY since 0.76); `ssh-ciphers` in
/// the bootstrap configuration widens or narrows that.
fn client_facing(configured: Option<&[String]>) -> russh::Preferred {
    use russh::cipher::{AES_128_GCM, AES_256_GCM, Name};
    let cipher: Vec<Name> = match configured {
        Some(names) => names
            .iter()
            .filter_map(|n| Name::try_from(n.as_str()).ok())
            .collect(),
        None if aes_instructions() => vec![AES_256_GCM, AES_128_GCM],
        None => return preferred(),
    };
    russh::Preferred {
        cipher: cipher.into(),
        ..preferred()
    }
}

/// Whether this CPU has AES and carry-less multiply instructions (what
/// makes AES-GCM fast).
fn aes_instructions() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// Towards targets (where the gateway is the client, so its order
/// decides), and the base of what clients are offered: AES-GCM first,
/// about a quarter faster than chacha20-poly1305 on these CPUs (PERF.md).
fn preferred() -> russh::Preferred {
    let first = [russh::cipher::AES_256_GCM, russh::cipher::AES_128_GCM];
    let default = russh::Preferred::default();
    let mut cipher = first.to_vec();
    cipher.extend(
        default
            .cipher
            .iter()
            .filter(|c| !first.contains(c))
            .copied(),
    );
    russh::Preferred {
        cipher: cipher.into(),
        ..default
    }
}

/// The gateway's SSH host key, generated on first start.
fn host_key(gw: &Gateway) -> anyhow::Result<russh::keys::PrivateKey> {
    ed25519_key(
        &gw.config.state.join("keys/ssh_host_ed25519_key"),
        "SSH host key",
    )
}

/// The CA that signs users' SSH certificates, generated on first use and
/// then kept in memory (every certificate login checks against it).
fn user_ca(gw: &Gateway) -> anyhow::Result<&russh::keys::PrivateKey> {
    if let Some(k) = gw.ssh_user_ca.get() {
        return Ok(k);
    }
    let key = ed25519_key(&gw.config.state.join("keys/ssh_user_ca"), "SSH user CA")?;
    Ok(gw.ssh_user_ca.get_or_init(|| key))
}

/// An Ed25519 key in OpenSSH format at `path` (0600), created on first use
/// with its public half beside it (`.pub`).
fn ed25519_key(path: &std::path::Path, what: &str) -> anyhow::Result<russh::keys::PrivateKey> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return russh::keys::decode_secret_key(&text, None)
            .with_context(|| format!("reading the {what} {}", path.display()));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|_| anyhow!("no randomness for the {what}"))?;
    let key = russh::keys::PrivateKey::from(
        russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed),
    );
    let pem = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .map_err(|e| anyhow!("encoding the {what}: {e}"))?;
    crate::files::write_private(path, pem.as_bytes())?;
    let public = key.public_key().to_openssh().unwrap_or_default();
    let _ = std::fs::write(path.with_extension("pub"), format!("{public}\n"));
    tracing::info!(key = %public, "generated the gateway's {what}");
    Ok(key)
}

const EXT_GROUPS: &str = "groups@gatewayd";
const EXT_TOKEN: &str = "token@gatewayd";

/// Signs an OpenSSH user certificate for `public_key` (OpenSSH format),
/// valid exactly as long as `token`, carrying its principal, groups and id.
pub(crate) fn sign_user_certificate(
    gw: &Gateway,
    token: &gw_identity::Token,
    public_key: &str,
) -> anyhow::Result<String> {
    let key = PublicKey::from_openssh(public_key.trim())
        .map_err(|_| anyhow!("not an OpenSSH public key"))?;
    let ca = user_ca(gw)?;
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).map_err(|_| anyhow!("no randomness"))?;
    let mut serial = [0u8; 8];
    getrandom::fill(&mut serial).map_err(|_| anyhow!("no randomness"))?;
    let now = crate::audit::unix_now();
    let mut b = russh::keys::ssh_key::certificate::Builder::new(
        nonce.to_vec(),
        key.key_data().clone(),
        now.saturating_sub(60),
        token.expires_at,
    )
    .map_err(|e| anyhow!("{e}"))?;
    b.serial(u64::from_be_bytes(serial))
        .and_then(|b| b.cert_type(russh::keys::ssh_key::certificate::CertType::User))
        .and_then(|b| b.key_id(token.principal.subject.clone()))
        .and_then(|b| b.valid_principal(token.principal.subject.clone()))
        .and_then(|b| b.extension("permit-pty", ""))
        .and_then(|b| b.extension("permit-port-forwarding", ""))
        .and_then(|b| b.extension(EXT_GROUPS, token.principal.groups.join(",")))
        .and_then(|b| b.extension(EXT_TOKEN, token.id.clone()))
        .map_err(|e| anyhow!("{e}"))?;
    let cert = b.sign(ca).map_err(|e| anyhow!("signing: {e}"))?;
    cert.to_openssh().map_err(|e| anyhow!("encoding: {e}"))
}

/// Checks a user certificate: signed by the gateway's CA, in its validity
/// window, for a token not revoked. The token it stands for.
fn verify_certificate(
    gw: &Gateway,
    cert: &russh::keys::Certificate,
) -> Result<gw_identity::Token, String> {
    let ca = user_ca(gw).map_err(|e| format!("{e:#}"))?;
    let fingerprint = ca.public_key().fingerprint(russh::keys::HashAlg::Sha256);
    let now = crate::audit::unix_now();
    cert.validate_at(now, [&fingerprint])
        .map_err(|e| format!("certificate refused: {e}"))?;
    if cert.cert_type() != russh::keys::ssh_key::certificate::CertType::User {
        return Err("not a user certificate".into());
    }
    let ext = |k: &str| cert.extensions().get(k).cloned();
    let token = gw_identity::Token {
        principal: gw_policy::Principal {
            subject: cert.key_id().to_owned(),
            groups: ext(EXT_GROUPS)
                .unwrap_or_default()
                .split(',')
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect(),
        },
        id: ext(EXT_TOKEN).ok_or("the certificate names no token")?,
        issued_at: cert.valid_after(),
        expires_at: cert.valid_before(),
        key_id: String::new(),
    };
    if gw.revocations.is_revoked(&token) {
        return Err(format!("token {} has been revoked", token.id));
    }
    Ok(token)
}

#[derive(Clone)]
struct Server {
    gw: Arc<Gateway>,
}

impl russh::server::Server for Server {
    type Handler = Conn;
    fn new_client(&mut self, peer: Option<std::net::SocketAddr>) -> Conn {
        Conn {
            gw: Arc::clone(&self.gw),
            peer: peer.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            login: None,
            upstream: Arc::new(AsyncMutex::new(None)),
        }
    }
    fn handle_session_error(&mut self, e: russh::Error) {
        tracing::info!(error = %e, "ssh connection ended");
    }
}

/// Who logged in and what the policy said about their resource.
struct Login {
    principal: gw_policy::Principal,
    resource_name: String,
    /// The resource and its terms when the session is allowed.
    allowed: Result<(gw_policy::Resource, gw_policy::SessionTerms, String), String>,
    loaded: Arc<crate::state::Loaded>,
    session_id: String,
}

type UpstreamHandle = Arc<russh::client::Handle<Upstream>>;

/// One client connection.
struct Conn {
    gw: Arc<Gateway>,
    peer: String,
    login: Option<Arc<Login>>,
    upstream: Arc<AsyncMutex<Option<UpstreamHandle>>>,
}

impl Conn {
    fn refuse_login(&self, reason: &str) -> Auth {
        crate::metrics::Metrics::inc(&self.gw.metrics.auth_failures);
        self.gw.audit.record(&AuditEvent::AuthenticationFailed {
            protocol: "ssh",
            client: &self.peer,
            reason,
        });
        Auth::Reject {
            proceed_with_methods: None,
            partial_success: false,
        }
    }

    async fn authenticate(&mut self, user: &str, secret: &str) -> Auth {
        match crate::identity::verify(&self.gw, secret) {
            Ok(token) => self.authorize(user, token).await,
            Err(reason) => self.refuse_login(&reason),
        }
    }

    /// A user certificate signed by the gateway at login stands for the
    /// token it was issued with (and is revoked with it).
    async fn authenticate_certificate(
        &mut self,
        user: &str,
        cert: &russh::keys::Certificate,
    ) -> Auth {
        match verify_certificate(&self.gw, cert) {
            Ok(token) => self.authorize(user, token).await,
            Err(reason) => self.refuse_login(&reason),
        }
    }

    async fn authorize(&mut self, user: &str, token: gw_identity::Token) -> Auth {
        let loaded = self.gw.policy();
        let now = crate::audit::unix_now();
        let d = loaded.policy.decide_session(&token.principal, user, now);
        let rule = d.decision.rule.to_string();
        let resource = loaded.policy.resource(user).cloned();
        let allowed = match (d.decision.verdict, d.terms, resource) {
            (gw_policy::Verdict::Allow | gw_policy::Verdict::Log, Some(terms), Some(r))
                if r.kind == gw_policy::Kind::Ssh =>
            {
                Ok((r, terms, rule.clone()))
            }
            (gw_policy::Verdict::Allow | gw_policy::Verdict::Log, _, Some(r)) => Err(format!(
                "\"{}\" is a {} resource, not ssh",
                r.name,
                r.kind.name()
            )),
            (gw_policy::Verdict::Review, Some(terms), Some(r))
                if r.kind == gw_policy::Kind::Ssh =>
            {
                let approval = d.decision.approval.clone();
                match crate::postgres::access_window(
                    &self.gw,
                    &token.principal,
                    &r,
                    &rule,
                    approval,
                    &loaded,
                )
                .await
                {
                    Ok(crate::postgres::Window::Open { review, .. }) => {
                        Ok((r, terms, format!("{rule} (access window {review})")))
                    }
                    Ok(crate::postgres::Window::Pending(text)) | Err(text) => Err(text),
                }
            }
            _ => Err(d.decision.reason.clone()),
        };
        if let Err(reason) = &allowed {
            crate::metrics::Metrics::inc(&self.gw.metrics.sessions_denied);
            self.gw.audit.record(&AuditEvent::SessionDenied {
                principal: &token.principal.subject,
                resource: user,
                protocol: "ssh",
                client: &self.peer,
                rule: &rule,
                reason,
                revision: &loaded.revision,
            });
        }
        self.login = Some(Arc::new(Login {
            principal: token.principal,
            resource_name: user.to_owned(),
            allowed,
            loaded,
            session_id: crate::recorder::session_id(),
        }));
        Auth::Accept
    }

    /// The connection to the target, made on first use.
    async fn upstream(
        &self,
        login: &Arc<Login>,
        client: russh::server::Handle,
    ) -> anyhow::Result<UpstreamHandle> {
        shared_upstream(&self.gw, &self.upstream, login, client).await
    }
}

/// The connection's one target connection, made by whichever channel (or
/// forward) needs it first.
async fn shared_upstream(
    gw: &Arc<Gateway>,
    slot: &AsyncMutex<Option<UpstreamHandle>>,
    login: &Arc<Login>,
    client: russh::server::Handle,
) -> anyhow::Result<UpstreamHandle> {
    let mut slot = slot.lock().await;
    if let Some(h) = slot.as_ref() {
        return Ok(Arc::clone(h));
    }
    let (resource, _, _) = login.allowed.as_ref().map_err(|why| anyhow!("{why}"))?;
    let forwards = Forwards {
        gw: Arc::clone(gw),
        login: Arc::clone(login),
        client,
    };
    let h = Arc::new(connect_upstream(gw, resource, forwards).await?);
    *slot = Some(Arc::clone(&h));
    Ok(h)
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        Ok(self.authenticate(user, password).await)
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        _key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        // Only certificates signed by the gateway (see `gwctl login`).
        Ok(Auth::reject())
    }

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &russh::keys::Certificate,
    ) -> Result<Auth, Self::Error> {
        Ok(self.authenticate_certificate(user, certificate).await)
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<russh::server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        match response.and_then(|mut r| r.next().map(|b| String::from_utf8_lossy(&b).into_owned()))
        {
            Some(answer) => Ok(self.authenticate(user, &answer).await),
            None => Ok(Auth::Partial {
                name: "gateway".into(),
                instructions: "Log in with your gateway token (`gwctl token`).".into(),
                prompts: vec![("Gateway token: ".into(), false)].into(),
            }),
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(login) = self.login.clone() else {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        reply.accept().await;
        let ctx = ChannelCtx {
            gw: Arc::clone(&self.gw),
            login,
            conn_upstream: Arc::clone(&self.upstream),
            peer: self.peer.clone(),
            handle: session.handle(),
        };
        tokio::spawn(async move {
            let id = channel.id();
            let handle = ctx.handle.clone();
            if let Err(e) = session_channel(ctx, channel).await {
                tracing::info!(error = %format!("{e:#}"), "ssh channel ended");
                let _ = handle.close(id).await;
            }
        });
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        originator: &str,
        originator_port: u32,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(login) = self.login.clone() else {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        let allowed = match &login.allowed {
            Ok((_, terms, _)) if terms.extras.contains(&gw_policy::model::Extra::PortForward) => {
                Ok(())
            }
            Ok(_) => Err("no grant allows port forwarding to this resource".to_owned()),
            Err(why) => Err(why.clone()),
        };
        let target = format!("{host}:{port}");
        self.gw.audit.record(&AuditEvent::PortForward {
            session: &login.session_id,
            principal: &login.principal.subject,
            resource: &login.resource_name,
            target: &target,
            allowed: allowed.is_ok(),
            reason: allowed.as_ref().err().map_or("", String::as_str),
        });
        if let Err(why) = allowed {
            reply
                .reject(russh::ChannelOpenFailure::Other {
                    code: 1,
                    reason: format!("refused by gateway policy: {why}"),
                })
                .await;
            return Ok(());
        }
        let upstream = match self.upstream(&login, _session.handle()).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "ssh upstream unavailable");
                reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
                return Ok(());
            }
        };
        let up = match upstream
            .channel_open_direct_tcpip(host, port, originator, originator_port)
            .await
        {
            Ok(c) => c,
            Err(_) => {
                reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
                return Ok(());
            }
        };
        reply.accept().await;
        tokio::spawn(async move {
            let mut a = channel.into_stream();
            let mut b = up.into_stream();
            let _ = tokio::io::copy_bidirectional_with_sizes(&mut a, &mut b, 256 << 10, 256 << 10)
                .await;
        });
        Ok(())
    }

    // Requests are answered here; the channel's task receives the same
    // requests from its queue and carries them out.
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _cols: u32,
        _rows: u32,
        _pw: u32,
        _ph: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name == "sftp" {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single: bool,
        _proto: &str,
        _cookie: &str,
        _screen: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        // The channel's task asks the target to forward the agent; the
        // target's agent channels reach the client only under this grant.
        Ok(self.login.as_ref().is_some_and(|l| {
            matches!(&l.allowed, Ok((_, terms, _)) if terms.extras.contains(&gw_policy::model::Extra::AgentForward))
        }))
    }

    /// `ssh -R`: the target listens for the client, only when a grant
    /// allows remote forwarding. Forwarded bytes are not recorded.
    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let Some(login) = self.login.clone() else {
            return Ok(false);
        };
        let allowed = matches!(&login.allowed, Ok((_, terms, _)) if terms.extras.contains(&gw_policy::model::Extra::RemoteForward));
        let target = format!("remote {address}:{port}");
        self.gw.audit.record(&AuditEvent::PortForward {
            session: &login.session_id,
            principal: &login.principal.subject,
            resource: &login.resource_name,
            target: &target,
            allowed,
            reason: if allowed {
                ""
            } else {
                "no grant allows remote forwarding to this resource"
            },
        });
        if !allowed {
            return Ok(false);
        }
        let Ok(upstream) = self.upstream(&login, session.handle()).await else {
            return Ok(false);
        };
        match upstream.tcpip_forward(address, *port).await {
            Ok(bound) => {
                if *port == 0 {
                    *port = bound;
                }
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }
}

/// What a channel's task needs.
struct ChannelCtx {
    gw: Arc<Gateway>,
    login: Arc<Login>,
    conn_upstream: Arc<AsyncMutex<Option<UpstreamHandle>>>,
    peer: String,
    handle: russh::server::Handle,
}

impl ChannelCtx {
    async fn upstream(&self) -> anyhow::Result<UpstreamHandle> {
        shared_upstream(
            &self.gw,
            &self.conn_upstream,
            &self.login,
            self.handle.clone(),
        )
        .await
    }

    async fn stderr(&self, id: ChannelId, text: &str) {
        let _ = self
            .handle
            .extended_data(id, 1, Bytes::copy_from_slice(text.as_bytes()))
            .await;
    }

    /// Ends a bridged channel: `text` on stderr, then the exit status and
    /// close.
    async fn end(&self, id: ChannelId, text: &str, status: u32) {
        self.stderr(id, text).await;
        let _ = self.handle.exit_status_request(id, status).await;
        let _ = self.handle.close(id).await;
    }

    /// Ends a channel that will not run anything: a message on stderr,
    /// exit status 1.
    async fn refuse(&self, id: ChannelId, text: &str) {
        self.stderr(id, &format!("gateway: {text}\r\n")).await;
        let _ = self.handle.exit_status_request(id, 1).await;
        let _ = self.handle.eof(id).await;
        let _ = self.handle.close(id).await;
    }
}

/// One session channel: waits for its pty/env/shell/exec/subsystem
/// requests, judges exec commands, then bridges both ways until either
/// side closes.
async fn session_channel(ctx: ChannelCtx, mut client: Channel<Msg>) -> anyhow::Result<()> {
    let id = client.id();
    let (resource, terms, rule) = match &ctx.login.allowed {
        Ok(x) => x.clone(),
        Err(why) => {
            ctx.refuse(id, &format!("access denied by gateway policy: {why}"))
                .await;
            return Ok(());
        }
    };
    // Requests before the program starts.
    let mut pty: Option<PtyRequest> = None;
    let mut env: Vec<(String, String)> = Vec::new();
    let mut agent = false;
    let program = loop {
        match client.wait().await {
            Some(ChannelMsg::RequestPty {
                term,
                col_width,
                row_height,
                terminal_modes,
                ..
            }) => pty = Some((term, col_width, row_height, terminal_modes)),
            Some(ChannelMsg::SetEnv {
                variable_name,
                variable_value,
                ..
            }) => env.push((variable_name, variable_value)),
            Some(ChannelMsg::AgentForward { .. }) => agent = true,
            Some(ChannelMsg::RequestShell { .. }) => break Program::Shell,
            Some(ChannelMsg::Exec { command, .. }) => {
                break Program::Exec(String::from_utf8_lossy(&command).into_owned());
            }
            Some(ChannelMsg::RequestSubsystem { name, .. }) if name == "sftp" => {
                break Program::Sftp;
            }
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return Ok(()),
            Some(_) => {}
        }
    };
    let (cols, rows) = pty.as_ref().map_or((80, 24), |(_, c, r, _)| (*c, *r));
    let text = match &program {
        Program::Shell => "(interactive shell)".to_owned(),
        Program::Exec(c) => c.clone(),
        Program::Sftp => "(sftp)".to_owned(),
    };
    // Exec commands are judged before they start.
    let loaded = ctx.gw.policy();
    let decision = match &program {
        Program::Exec(c) => {
            let cmd = gw_policy::Command::Shell { command: c.clone() };
            let d = loaded
                .policy
                .decide_command(&ctx.login.principal, &resource.name, &cmd);
            Some(d)
        }
        _ => None,
    };
    let verdict = decision
        .as_ref()
        .map_or(gw_policy::Verdict::Allow, |d| d.verdict);
    ctx.gw.metrics.command(verdict);
    ctx.gw.audit.record(&AuditEvent::Command {
        session: &ctx.login.session_id,
        principal: &ctx.login.principal.subject,
        resource: &resource.name,
        verdict: verdict.name(),
        rule: &decision
            .as_ref()
            .map_or_else(|| rule.clone(), |d| d.rule.to_string()),
        reason: decision.as_ref().map_or("", |d| d.reason.as_str()),
        command: &text,
        revision: &loaded.revision,
    });
    // Client input that arrives while a command is held for review.
    let mut early: Vec<Bytes> = Vec::new();
    let mut review_marks: Vec<String> = Vec::new();
    if let Some(d) = &decision {
        match d.verdict {
            gw_policy::Verdict::Allow | gw_policy::Verdict::Log => {}
            gw_policy::Verdict::Review if d.approval.is_some() => {
                match hold(&ctx, &mut client, &resource, &text, d, &mut early).await {
                    Held::Run(marks) => review_marks = marks,
                    Held::Refused(why) => {
                        ctx.refuse(id, &format!("permission denied by gateway policy: {why}"))
                            .await;
                        return Ok(());
                    }
                    Held::Gone => return Ok(()),
                }
            }
            _ => {
                let why = format!("{}: {}", d.rule, d.reason);
                ctx.refuse(id, &format!("permission denied by gateway policy: {why}"))
                    .await;
                return Ok(());
            }
        }
    }
    let recorder = start_recorder(&ctx, &resource, &text, cols, rows);
    let recorder = match recorder {
        Ok(r) => Some(r),
        Err(e) if terms.recording.on_failure == gw_policy::OnFailure::BestEffort => {
            tracing::error!(error = %format!("{e:#}"), "recording unavailable; continuing unrecorded (best-effort)");
            None
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "recording unavailable; refusing the channel");
            ctx.refuse(
                id,
                "the gateway cannot record this session, so it cannot open it",
            )
            .await;
            return Ok(());
        }
    };
    let upstream = match ctx.upstream().await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(resource = %resource.name, error = %format!("{e:#}"), "ssh upstream unavailable");
            ctx.refuse(
                id,
                &format!("the gateway cannot reach \"{}\" right now", resource.name),
            )
            .await;
            return Ok(());
        }
    };
    crate::metrics::Metrics::inc(&ctx.gw.metrics.sessions_opened);
    ctx.gw.audit.record(&AuditEvent::SessionOpened {
        session: &ctx.login.session_id,
        principal: &ctx.login.principal.subject,
        resource: &resource.name,
        protocol: "ssh",
        client: &ctx.peer,
        rule: &rule,
        revision: &ctx.login.loaded.revision,
    });
    let up = upstream.channel_open_session().await?;
    if let Some((term, c, r, modes)) = &pty {
        up.request_pty(false, term, *c, *r, 0, 0, modes).await?;
    }
    for (k, v) in &env {
        up.set_env(false, k.as_str(), v.as_str()).await?;
    }
    if agent
        && terms
            .extras
            .contains(&gw_policy::model::Extra::AgentForward)
    {
        up.agent_forward(false).await?;
    }
    match &program {
        Program::Shell => up.request_shell(true).await?,
        Program::Exec(c) => up.exec(true, c.as_bytes()).await?,
        Program::Sftp => up.request_subsystem(true, "sftp").await?,
    }
    for data in early {
        up.data_bytes(data).await?;
    }
    let masker = ctx
        .gw
        .masker(&ctx.login.loaded, &resource, &ctx.login.principal);
    // File transfers are bytes of files and protocol framing: masking them
    // would corrupt the copy, so they are recorded as file operations
    // instead (see `transfer`).
    let transfer = match &program {
        Program::Sftp => Some(gw_proto_ssh::Transfer::sftp()),
        Program::Exec(c) => gw_proto_ssh::Transfer::scp(c),
        Program::Shell => None,
    };
    let mask = !masker.is_noop() && transfer.is_none();
    if let Some(rec) = &recorder {
        for label in review_marks {
            rec.send(RecEvent::Marker {
                t: rec.elapsed(),
                label,
            })
            .await;
        }
    }
    let (mut up_rx, up_tx) = up.split();
    // Sends to the client go through the session handle; its write half is
    // kept only so that the channel stays as it was.
    let (mut client_rx, _client_tx) = client.split();
    let mut bridge = Bridge {
        ctx: &ctx,
        id,
        recorder,
        out: mask.then(|| masker.stream()),
        err: mask.then(|| masker.stream()),
        sftp: matches!(program, Program::Sftp),
        transfer,
        record_input: terms.recording.input,
        line: Vec::new(),
        resource: resource.name.clone(),
        interactive: matches!(program, Program::Shell),
        client_backlog: Backlog::new(),
        up_backlog: Backlog::new(),
    };
    let result = bridge.run(&mut client_rx, &mut up_rx, &up_tx).await;
    if let Some(rec) = bridge.recorder.take() {
        rec.finish().await;
    }
    let reason = match &result {
        Ok(r) => r.clone(),
        Err(e) => format!("{e:#}"),
    };
    ctx.gw.audit.record(&AuditEvent::SessionClosed {
        session: &ctx.login.session_id,
        principal: &ctx.login.principal.subject,
        resource: &resource.name,
        reason: &reason,
    });
    result.map(|_| ())
}

enum Held {
    /// Approved: run it; the review's markers for the recording.
    Run(Vec<String>),
    Refused(String),
    /// The client went away while it was held (the review is withdrawn).
    Gone,
}

/// Holds an exec command for review, as the PostgreSQL path holds a
/// statement: the client is told the review id on stderr at once; input
/// it sends meanwhile is kept for the command; closing the channel
/// withdraws the review.
async fn hold(
    ctx: &ChannelCtx,
    client: &mut Channel<Msg>,
    resource: &gw_policy::Resource,
    command: &str,
    d: &gw_policy::Decision,
    early: &mut Vec<Bytes>,
) -> Held {
    let Some(approval) = d.approval.clone() else {
        return Held::Refused(format!("{}: {}", d.rule, d.reason));
    };
    let gw = &ctx.gw;
    let session = &ctx.login.session_id;
    let hash = gw_review::command_hash("ssh", &resource.name, session, command);
    let now = crate::audit::unix_now();
    let unavailable = || {
        Held::Refused(format!(
            "{}: {}; the review store is unavailable, so it is refused",
            d.rule, d.reason
        ))
    };
    match gw.reviews.take_approved(session, hash, now).await {
        Ok(Some(r)) => {
            return Held::Run(vec![gw_recording::review_approved(r.id.as_str(), "window")]);
        }
        Ok(None) => {}
        Err(_) => return unavailable(),
    }
    let new = gw_review::NewReview {
        session_id: Some(session.clone()),
        command: Some(command.to_owned()),
        ..crate::reviews::ask(
            gw_review::Kind::Command,
            &ctx.login.principal,
            resource,
            &d.rule.to_string(),
            &approval,
            &ctx.login.loaded.revision,
            now,
        )
    };
    let Ok(review) = crate::reviews::request(gw, new).await else {
        return unavailable();
    };
    let mut marks = vec![gw_recording::review_requested(
        review.id.as_str(),
        &d.reason,
    )];
    ctx.stderr(
        client.id(),
        &format!(
            "gateway: command held for review {}: it runs once {} member(s) of \"{}\" approve it (expires in {}).\r\ngateway: an approver runs: {}\r\n",
            review.id,
            review.quorum,
            review.approvers,
            gw_policy::human_duration(Duration::from_secs(review.expires_at - now)),
            crate::reviews::approve_hint(&review.id)
        ),
    )
    .await;
    let waiter = gw.reviews.waiter(&review.id);
    let withdraw = |why: &'static str| {
        let by = crate::reviews::Cancel::Session(session.clone());
        let id = review.id.clone();
        async move {
            let _ = crate::reviews::cancel(gw, &id, by, why).await;
            gw.reviews.forget(&id);
        }
    };
    let mut buffered = 0usize;
    let done = loop {
        tokio::select! {
            () = waiter.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            msg = client.wait() => match msg {
                Some(ChannelMsg::Data { data }) if buffered + data.len() <= 16 << 20 => {
                    buffered += data.len();
                    early.push(data);
                    continue;
                }
                Some(ChannelMsg::Data { .. }) => {
                    withdraw("the client sent too much while waiting").await;
                    return Held::Refused("too much input while the command was held".into());
                }
                Some(ChannelMsg::Close) | None => {
                    withdraw("the client closed the channel").await;
                    return Held::Gone;
                }
                _ => continue,
            },
        }
        let now = crate::reviews::sweep(gw)
            .await
            .unwrap_or_else(|_| crate::audit::unix_now());
        match gw.reviews.get(&review.id, now).await {
            Ok(r) if r.state == gw_review::State::Pending => {}
            Ok(r) => break r,
            Err(_) if now > review.expires_at + 5 => {
                gw.reviews.forget(&review.id);
                return unavailable();
            }
            Err(_) => {}
        }
    };
    gw.reviews.forget(&review.id);
    let now = crate::audit::unix_now();
    match done.state {
        gw_review::State::Approved => match gw.reviews.take_approved(session, hash, now).await {
            Ok(Some(_)) => {
                let by: Vec<&str> = gw_review::rules::approving_subjects(&done)
                    .into_iter()
                    .collect();
                marks.push(gw_recording::review_approved(
                    done.id.as_str(),
                    &by.join(","),
                ));
                Held::Run(marks)
            }
            _ => Held::Refused(format!(
                "{} but it could not be used",
                crate::reviews::outcome_text(&done)
            )),
        },
        _ => Held::Refused(format!(
            "{}: {}",
            d.rule,
            crate::reviews::outcome_text(&done)
        )),
    }
}

/// A pty request: terminal type, columns, rows, modes.
type PtyRequest = (String, u32, u32, Vec<(russh::Pty, u32)>);

enum Program {
    Shell,
    Exec(String),
    Sftp,
}

fn start_recorder(
    ctx: &ChannelCtx,
    resource: &gw_policy::Resource,
    command: &str,
    cols: u32,
    rows: u32,
) -> anyhow::Result<Recorder> {
    let meta = gw_recording::SessionMeta {
        session_id: format!("{}-{}", ctx.login.session_id, random_suffix()),
        principal: ctx.login.principal.subject.clone(),
        resource: resource.name.clone(),
        protocol: "ssh".into(),
        policy_revision: ctx.login.loaded.revision.clone(),
        client_addr: ctx.peer.clone(),
        gateway_id: ctx.gw.config.gateway_id.clone(),
        key_id: String::new(),
        start_us: crate::audit::now_us(),
    };
    let mut header = gw_recording::Header::new(
        u16::try_from(cols.clamp(1, 1000)).unwrap_or(80),
        u16::try_from(rows.clamp(1, 1000)).unwrap_or(24),
        meta,
    );
    header.command = Some(command.to_owned());
    ctx.gw
        .recorders
        .open(&ctx.gw.config.recordings, &header, &ctx.gw.recording_key)
}

fn random_suffix() -> String {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    format!("{:02x}{:02x}", b[0], b[1])
}

/// The two halves of one session channel, and what is recorded between.
struct Bridge<'a> {
    ctx: &'a ChannelCtx,
    id: ChannelId,
    recorder: Option<Recorder>,
    /// Maskers for stdout and stderr (`None`: nothing to mask).
    out: Option<gw_mask::StreamMasker>,
    err: Option<gw_mask::StreamMasker>,
    /// For scp and sftp: the file operations read from the stream.
    transfer: Option<gw_proto_ssh::Transfer>,
    /// An sftp channel: requests are judged one by one.
    sftp: bool,
    record_input: bool,
    /// The interactive line being typed (best-effort command extraction).
    line: Vec<u8>,
    resource: String,
    interactive: bool,
    /// Messages read from one side while a send to that side's peer was
    /// waiting (see [`draining`]); handled, in order, before that side is
    /// read again.
    client_backlog: Backlog,
    up_backlog: Backlog,
}

/// What is read from one side of a channel (`None`: it closed).
type Rx = russh::ChannelReadHalf;
type Backlog = std::collections::VecDeque<Option<ChannelMsg>>;
/// The target side's write half.
type UpTx = russh::ChannelWriteHalf<russh::client::Msg>;

/// What the bridge does next.
enum Event {
    Shutdown,
    Policy,
    Revoke,
    Flush,
    Client(Option<ChannelMsg>),
    Up(Option<ChannelMsg>),
}

/// What handling one message from the target led to.
enum Step {
    /// Output was passed on (the masking flush timer restarts).
    Output,
    Other,
    End(String),
}

/// Past this many, a backlog stops growing (and the side it is read from
/// waits, as russh makes it wait when a channel's queue is full).
const BACKLOG: usize = 1024;

/// Awaits `send` to one side's peer while reading `from` into `backlog`.
/// russh's session task delivers each incoming message into a bounded
/// queue and stops serving its connection while that queue is full, so a
/// bridge that only waited on the send could wait forever on a session that
/// waits for the bridge to read (seen with pipelined sftp downloads).
async fn draining<T>(
    send: impl std::future::Future<Output = T>,
    from: &mut Rx,
    backlog: &mut Backlog,
) -> T {
    let mut send = std::pin::pin!(send);
    // Nearly always the send is taken at once: no select, no reading.
    let now = std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match send.as_mut().poll(cx) {
            std::task::Poll::Ready(out) => Some(out),
            std::task::Poll::Pending => None,
        })
    });
    if let Some(out) = now.await {
        return out;
    }
    loop {
        let open = backlog.len() < BACKLOG && !matches!(backlog.back(), Some(None));
        tokio::select! {
            biased;
            out = &mut send => return out,
            msg = from.wait(), if open => backlog.push_back(msg),
        }
    }
}

impl Bridge<'_> {
    async fn run(&mut self, client: &mut Rx, up_rx: &mut Rx, up: &UpTx) -> anyhow::Result<String> {
        let flush = tokio::time::sleep(Duration::from_secs(86_400));
        tokio::pin!(flush);
        let mut flush_armed = false;
        // A new policy revision that revokes this session's grant ends it
        // after the grace period, as for PostgreSQL sessions.
        let mut policy = self.ctx.gw.policy.subscribe();
        policy.mark_unchanged();
        let revoke = tokio::time::sleep(Duration::from_secs(0));
        tokio::pin!(revoke);
        let mut revoked: Option<String> = None;
        let mut shutdown = self.ctx.gw.shutdown.subscribe();
        loop {
            let event = if let Some(msg) = self.client_backlog.pop_front() {
                Event::Client(msg)
            } else if let Some(msg) = self.up_backlog.pop_front() {
                Event::Up(msg)
            } else {
                tokio::select! {
                    _ = shutdown.changed() => Event::Shutdown,
                    _ = policy.changed() => Event::Policy,
                    () = &mut revoke, if revoked.is_some() => Event::Revoke,
                    msg = client.wait() => Event::Client(msg),
                    msg = up_rx.wait() => Event::Up(msg),
                    () = &mut flush, if flush_armed => Event::Flush,
                }
            };
            match event {
                Event::Shutdown => {
                    let bye =
                        "\r\ngateway: the gateway is shutting down; reconnect in a moment\r\n";
                    self.ctx.end(self.id, bye, 255).await;
                    let _ = up.close().await;
                    return Ok("gateway shutting down".into());
                }
                Event::Policy => {
                    let loaded = Arc::clone(&policy.borrow_and_update());
                    let before = revoked.is_some();
                    // A session that came in through an access window keeps it.
                    let windowed = matches!(&self.ctx.login.allowed, Ok((_, _, rule)) if rule.contains("(access window"));
                    revoked = crate::state::still_allowed(
                        &loaded,
                        &self.ctx.login.principal,
                        &self.resource,
                        windowed,
                    )
                    .err();
                    if let (Some(why), false) = (&revoked, before) {
                        let grace = self.ctx.gw.config.revoke_grace;
                        revoke.as_mut().reset(tokio::time::Instant::now() + grace);
                        self.ctx.gw.audit.record(&AuditEvent::AccessRevoked {
                            session: &self.ctx.login.session_id,
                            principal: &self.ctx.login.principal.subject,
                            resource: &self.resource,
                            revision: &loaded.revision,
                            grace_secs: grace.as_secs(),
                        });
                        self.ctx.stderr(self.id, &format!(
                            "\r\ngateway: your access to \"{}\" was revoked by a policy change ({why}); this session ends in {}\r\n",
                            self.resource,
                            gw_policy::human_duration(grace)
                        )).await;
                    }
                }
                Event::Revoke => {
                    let why = revoked.take().unwrap_or_default();
                    crate::metrics::Metrics::inc(&self.ctx.gw.metrics.sessions_revoked);
                    let bye = format!(
                        "\r\ngateway: session ended: access revoked by a policy change ({why})\r\n"
                    );
                    self.ctx.end(self.id, &bye, 255).await;
                    let _ = up.close().await;
                    return Ok(format!("access revoked by a policy change: {why}"));
                }
                Event::Client(msg) => {
                    if let Some(end) = self.on_client(msg, client, up_rx, up).await? {
                        return Ok(end);
                    }
                }
                Event::Up(msg) => match self.on_target(msg, client).await? {
                    Step::Output => {
                        flush_armed |= self.pending();
                        flush
                            .as_mut()
                            .reset(tokio::time::Instant::now() + MASK_FLUSH);
                    }
                    Step::Other => {}
                    Step::End(why) => return Ok(why),
                },
                Event::Flush => {
                    flush_armed = false;
                    flush
                        .as_mut()
                        .reset(tokio::time::Instant::now() + Duration::from_secs(86_400));
                    self.release(false, client).await?;
                }
            }
        }
    }

    /// Handles one message from the client; `Some`: the channel ended.
    async fn on_client(
        &mut self,
        msg: Option<ChannelMsg>,
        client: &mut Rx,
        up_rx: &mut Rx,
        up: &UpTx,
    ) -> anyhow::Result<Option<String>> {
        match msg {
            Some(ChannelMsg::Data { data }) if self.sftp => {
                // sftp requests are judged one by one.
                let data = self.police_sftp(&data, client).await?;
                if !data.is_empty() {
                    draining(up.data_bytes(data), up_rx, &mut self.up_backlog).await?;
                }
            }
            Some(ChannelMsg::Data { data }) => {
                self.input(&data).await;
                self.observe(gw_proto_ssh::Direction::Upload, &data).await;
                draining(up.data_bytes(data), up_rx, &mut self.up_backlog).await?;
            }
            Some(ChannelMsg::Eof) => draining(up.eof(), up_rx, &mut self.up_backlog).await?,
            Some(ChannelMsg::WindowChange {
                col_width,
                row_height,
                pix_width,
                pix_height,
            }) => {
                if let Some(rec) = &self.recorder {
                    rec.send(RecEvent::Resize {
                        t: rec.elapsed(),
                        cols: u16::try_from(col_width.clamp(1, 1000)).unwrap_or(80),
                        rows: u16::try_from(row_height.clamp(1, 1000)).unwrap_or(24),
                    })
                    .await;
                }
                let change = up.window_change(col_width, row_height, pix_width, pix_height);
                draining(change, up_rx, &mut self.up_backlog).await?;
            }
            Some(ChannelMsg::Signal { signal }) => {
                draining(up.signal(signal), up_rx, &mut self.up_backlog).await?
            }
            Some(ChannelMsg::Close) | None => {
                let _ = up.close().await;
                return Ok(Some("client closed the channel".into()));
            }
            Some(_) => {}
        }
        Ok(None)
    }

    /// Handles one message from the target.
    async fn on_target(
        &mut self,
        msg: Option<ChannelMsg>,
        client: &mut Rx,
    ) -> anyhow::Result<Step> {
        match msg {
            Some(ChannelMsg::Data { data }) => {
                self.observe(gw_proto_ssh::Direction::Download, &data).await;
                let shown = self.output(&data, false)?;
                self.send(shown, None, client).await?;
                return Ok(Step::Output);
            }
            Some(ChannelMsg::ExtendedData { data, ext }) => {
                let shown = self.output(&data, true)?;
                self.send(shown, Some(ext), client).await?;
                return Ok(Step::Output);
            }
            Some(ChannelMsg::Eof) => {
                self.release(true, client).await?;
                let _ = self.ctx.handle.eof(self.id).await;
            }
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                if let Some(rec) = &self.recorder {
                    rec.send(RecEvent::Exit {
                        t: rec.elapsed(),
                        status: i32::try_from(exit_status).unwrap_or(i32::MAX),
                    })
                    .await;
                }
                let _ = self
                    .ctx
                    .handle
                    .exit_status_request(self.id, exit_status)
                    .await;
            }
            Some(ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                error_message,
                lang_tag,
            }) => {
                if let Some(rec) = &self.recorder {
                    rec.send(RecEvent::Marker {
                        t: rec.elapsed(),
                        label: format!("exit:signal name={signal_name:?}"),
                    })
                    .await;
                }
                let _ = self
                    .ctx
                    .handle
                    .exit_signal_request(self.id, signal_name, core_dumped, error_message, lang_tag)
                    .await;
            }
            Some(ChannelMsg::Close) | None => {
                self.release(true, client).await?;
                let _ = self.ctx.handle.close(self.id).await;
                return Ok(Step::End("the target closed the channel".into()));
            }
            Some(ChannelMsg::Failure) => {
                let bye = "gateway: the target refused to start the program\r\n";
                self.ctx.end(self.id, bye, 255).await;
                return Ok(Step::End("the target refused the request".into()));
            }
            Some(_) => {}
        }
        Ok(Step::Other)
    }

    /// Judges each sftp request against the guards (as `sftp write PATH`,
    /// `sftp remove PATH`, ...): refused ones are answered with "permission
    /// denied" here; the rest is returned to forward. A stream that cannot
    /// be followed ends the channel.
    async fn police_sftp(&mut self, data: &[u8], client: &mut Rx) -> anyhow::Result<Bytes> {
        let loaded = self.ctx.gw.policy();
        let principal = &self.ctx.login.principal;
        let resource = self.resource.clone();
        let judge = |text: &str| {
            let cmd = gw_policy::Command::Shell {
                command: text.to_owned(),
            };
            let d = loaded.policy.decide_command(principal, &resource, &cmd);
            match d.verdict {
                gw_policy::Verdict::Allow | gw_policy::Verdict::Log => None,
                _ => Some(format!("{}: {}", d.rule, d.reason)),
            }
        };
        let Some(t) = &mut self.transfer else {
            return Ok(Bytes::copy_from_slice(data));
        };
        let filtered = t
            .filter_upload(data, judge)
            .map_err(|why| anyhow!("the sftp stream cannot be followed ({why}), so it is ended"))?;
        if !filtered.reply.is_empty() {
            let ctx = self.ctx;
            let reply = ctx.handle.data(self.id, Bytes::from(filtered.reply));
            draining(reply, client, &mut self.client_backlog)
                .await
                .map_err(|_| anyhow!("the client went away"))?;
        }
        self.record_ops(filtered.ops).await;
        Ok(Bytes::from(filtered.forward))
    }

    /// Reads file operations out of an scp or sftp stream, for the audit
    /// log and the recording (the bytes themselves pass unchanged).
    async fn observe(&mut self, dir: gw_proto_ssh::Direction, data: &[u8]) {
        let Some(t) = &mut self.transfer else { return };
        let ops = t.feed(dir, data);
        self.record_ops(ops).await;
    }

    async fn record_ops(&mut self, ops: Vec<gw_proto_ssh::Op>) {
        for op in ops {
            let text = op.to_string();
            self.ctx.gw.audit.record(&AuditEvent::FileTransfer {
                session: &self.ctx.login.session_id,
                principal: &self.ctx.login.principal.subject,
                resource: &self.resource,
                operation: &text,
            });
            if let Some(rec) = &self.recorder {
                rec.send(RecEvent::Marker {
                    t: rec.elapsed(),
                    label: format!("file:{text}"),
                })
                .await;
                rec.send(RecEvent::Output {
                    t: rec.elapsed(),
                    data: Bytes::from(format!("[file] {text}\r\n")),
                })
                .await;
            }
        }
    }

    fn pending(&self) -> bool {
        self.out.as_ref().is_some_and(|m| m.pending() > 0)
            || self.err.as_ref().is_some_and(|m| m.pending() > 0)
    }

    /// Masks a chunk; what may be shown now. Unmasked data is passed on
    /// without a copy.
    fn output(&mut self, data: &Bytes, stderr: bool) -> anyhow::Result<Bytes> {
        let masker = if stderr { &mut self.err } else { &mut self.out };
        match masker {
            None => Ok(data.clone()),
            Some(m) => {
                let mut shown = Vec::with_capacity(data.len());
                m.push(data, &mut shown)
                    .map_err(|e| anyhow!("masking failed, ending the session: {e}"))?;
                Ok(Bytes::from(shown))
            }
        }
    }

    /// Sends output to the client (reading what the client sends meanwhile
    /// into the backlog; see [`draining`]).
    async fn send(
        &mut self,
        shown: Bytes,
        ext: Option<u32>,
        client: &mut Rx,
    ) -> anyhow::Result<()> {
        if shown.is_empty() {
            return Ok(());
        }
        // A transfer's bytes are file contents: its recording holds the
        // file operations instead (stderr, messages from scp, is kept).
        let record = self.transfer.is_none() || ext.is_some();
        if let Some(rec) = self.recorder.as_ref().filter(|_| record) {
            rec.send(RecEvent::Output {
                t: rec.elapsed(),
                data: shown.clone(),
            })
            .await;
        }
        let (ctx, id) = (self.ctx, self.id);
        let send = async move {
            match ext {
                Some(e) => ctx.handle.extended_data(id, e, shown).await,
                None => ctx.handle.data(id, shown).await,
            }
        };
        draining(send, client, &mut self.client_backlog)
            .await
            .map_err(|_| anyhow!("the client went away"))
    }

    /// Emits what the maskers still hold: when the output paused
    /// (`end` false: the maskers go on), or at the end of the stream.
    async fn release(&mut self, end: bool, client: &mut Rx) -> anyhow::Result<()> {
        for (stderr, ext) in [(false, None), (true, Some(1))] {
            let masker = if stderr { &mut self.err } else { &mut self.out };
            if let Some(m) = masker {
                let mut shown = Vec::new();
                let done = if end {
                    m.finish(&mut shown)
                } else {
                    m.flush(&mut shown)
                };
                done.map_err(|e| anyhow!("masking failed, ending the session: {e}"))?;
                self.send(Bytes::from(shown), ext, client).await?;
            }
        }
        Ok(())
    }

    /// Records input (when asked) and extracts typed commands, best effort:
    /// an audit aid, not a boundary (editing keys, completion and pasted
    /// escape sequences all defeat it).
    async fn input(&mut self, data: &Bytes) {
        if self.record_input
            && let Some(rec) = &self.recorder
        {
            rec.send(RecEvent::Input {
                t: rec.elapsed(),
                data: data.to_vec(),
            })
            .await;
        }
        if !self.interactive {
            return;
        }
        for &b in data.iter() {
            match b {
                b'\r' | b'\n' => {
                    let line = String::from_utf8_lossy(&self.line).trim().to_owned();
                    self.line.clear();
                    if !line.is_empty() {
                        self.ctx.gw.audit.record(&AuditEvent::ShellInput {
                            session: &self.ctx.login.session_id,
                            principal: &self.ctx.login.principal.subject,
                            resource: &self.resource,
                            line: &line,
                        });
                        if let Some(rec) = &self.recorder {
                            rec.send(RecEvent::Marker {
                                t: rec.elapsed(),
                                label: format!(
                                    "shell:input line={}",
                                    serde_json::to_string(&line).unwrap_or_default()
                                ),
                            })
                            .await;
                        }
                    }
                }
                0x7f | 0x08 => {
                    self.line.pop();
                }
                0x03 | 0x15 => self.line.clear(),
                b if b >= 0x20 && self.line.len() < 4096 => self.line.push(b),
                _ => {}
            }
        }
    }
}

/// The client side towards targets: checks host keys.
struct Upstream {
    resource: String,
    pins: Vec<PublicKey>,
    tofu: Option<std::path::PathBuf>,
    /// Why a host key was refused, for the message to the person.
    refused: Arc<std::sync::Mutex<Option<String>>>,
    forwards: Forwards,
}

/// What the target's channels towards the client (remote forwards, agent)
/// need: the client connection and what the grant allows.
struct Forwards {
    gw: Arc<Gateway>,
    login: Arc<Login>,
    client: russh::server::Handle,
}

impl Forwards {
    fn allows(&self, extra: gw_policy::model::Extra) -> bool {
        matches!(&self.login.allowed, Ok((_, terms, _)) if terms.extras.contains(&extra))
    }
}

/// Copies both ways between two channels until either ends.
fn splice<A, B>(a: A, b: B)
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let (mut a, mut b) = (a, b);
        let _ =
            tokio::io::copy_bidirectional_with_sizes(&mut a, &mut b, 256 << 10, 256 << 10).await;
    });
}

impl russh::client::Handler for Upstream {
    type Error = russh::Error;

    /// A connection to a port the client asked the target to forward
    /// (`ssh -R`): passed to the client only when a grant allows it.
    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: Channel<russh::client::Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: russh::client::ChannelOpenHandle,
        _session: &mut russh::client::Session,
    ) -> Result<(), Self::Error> {
        if !self.forwards.allows(gw_policy::model::Extra::RemoteForward) {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        match self
            .forwards
            .client
            .channel_open_forwarded_tcpip(
                connected_address,
                connected_port,
                originator_address,
                originator_port,
            )
            .await
        {
            Ok(to_client) => {
                reply.accept().await;
                splice(channel.into_stream(), to_client.into_stream());
            }
            Err(_) => {
                reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
            }
        }
        Ok(())
    }

    /// The target using the client's forwarded agent (`ssh -A`), only when
    /// a grant allows agent forwarding.
    async fn server_channel_open_agent_forward(
        &mut self,
        channel: Channel<russh::client::Msg>,
        reply: russh::client::ChannelOpenHandle,
        _session: &mut russh::client::Session,
    ) -> Result<(), Self::Error> {
        if !self.forwards.allows(gw_policy::model::Extra::AgentForward) {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        match self.forwards.client.channel_open_agent().await {
            Ok(to_client) => {
                reply.accept().await;
                self.forwards
                    .gw
                    .audit
                    .record(&AuditEvent::AgentForwardUsed {
                        session: &self.forwards.login.session_id,
                        principal: &self.forwards.login.principal.subject,
                        resource: &self.resource,
                    });
                splice(channel.into_stream(), to_client.into_stream());
            }
            Err(_) => reply.reject(russh::ChannelOpenFailure::ConnectFailed).await,
        }
        Ok(())
    }

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            *self.refused.lock().unwrap_or_else(|e| e.into_inner()) =
                Some("the target presented a host certificate; pin its key instead".into());
            return Ok(false);
        };
        if self.pins.iter().any(|p| p.key_data() == key.key_data()) {
            return Ok(true);
        }
        let presented = key.to_openssh().unwrap_or_default();
        if let Some(path) = &self.tofu {
            // Learn the first key, then hold the target to it.
            let known = std::fs::read_to_string(path).unwrap_or_default();
            let entry_prefix = format!("{} ", self.resource);
            match known.lines().find(|l| l.starts_with(&entry_prefix)) {
                None => {
                    use std::io::Write as _;
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(russh::Error::IO)?;
                    writeln!(f, "{}{presented}", entry_prefix).map_err(russh::Error::IO)?;
                    tracing::warn!(resource = %self.resource, key = %presented, "trusting the target's host key on first use");
                    return Ok(true);
                }
                Some(line) => {
                    let learnt = line[entry_prefix.len()..].trim();
                    if PublicKey::from_openssh(learnt).is_ok_and(|k| k.key_data() == key.key_data())
                    {
                        return Ok(true);
                    }
                }
            }
        }
        *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!(
            "the host key of \"{}\" ({presented}) matches no pinned key",
            self.resource
        ));
        tracing::error!(resource = %self.resource, key = %presented, "refusing an unknown target host key");
        Ok(false)
    }
}

async fn connect_upstream(
    gw: &Gateway,
    r: &gw_policy::Resource,
    forwards: Forwards,
) -> anyhow::Result<russh::client::Handle<Upstream>> {
    let (cred, user) = crate::secrets::credential(r)?;
    let key_ref = cred
        .key
        .as_ref()
        .ok_or_else(|| anyhow!("resource \"{}\" has no credential key", r.name))?;
    let key_text = crate::secrets::resolve(key_ref)?;
    let key = russh::keys::decode_secret_key(&key_text, None)
        .map_err(|_| anyhow!("credential {key_ref} is not an OpenSSH private key"))?;
    let mut pins = Vec::new();
    for p in &r.host_keys {
        pins.push(PublicKey::from_openssh(p).map_err(|_| {
            anyhow!(
                "resource \"{}\": host-key `{p}` is not an OpenSSH public key",
                r.name
            )
        })?);
    }
    let tofu = r.trust_on_first_use.then(|| {
        let dir = gw.config.state.join("ssh");
        let _ = std::fs::create_dir_all(&dir);
        dir.join("known_hosts")
    });
    if pins.is_empty() && tofu.is_none() {
        return Err(anyhow!(
            "resource \"{}\" pins no host-key and does not allow trust-on-first-use",
            r.name
        ));
    }
    let refused = Arc::new(std::sync::Mutex::new(None));
    let handler = Upstream {
        resource: r.name.clone(),
        pins,
        tofu,
        refused: Arc::clone(&refused),
        forwards,
    };
    let config = Arc::new(russh::client::Config {
        // Measured (BENCHMARKS.md): with a 16 MiB window OpenSSH's sshd
        // buffers that much and spends half again as much CPU per byte; 2-4
        // MiB is the cheapest for it, and 4 MiB still fills 8 GiB/s at the
        // half-millisecond round trips between a gateway and its targets.
        window_size: 4 << 20,
        // 32 KiB packets cost sshd twice the CPU of 64 KiB ones.
        maximum_packet_size: 65535,
        preferred: preferred(),
        nodelay: true,
        inactivity_timeout: Some(Duration::from_secs(3600)),
        ..Default::default()
    });
    let connect = russh::client::connect(config, r.address.as_str(), handler);
    let mut handle = match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Err(_) => return Err(anyhow!("connecting to {} timed out", r.address)),
        Ok(Err(e)) => {
            let why = refused.lock().unwrap_or_else(|e| e.into_inner()).take();
            return Err(match why {
                Some(w) => anyhow!("{w}"),
                None => anyhow!("connecting to {}: {e}", r.address),
            });
        }
        Ok(Ok(h)) => h,
    };
    let hash = handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten();
    let auth = handle
        .authenticate_publickey(
            user.clone(),
            russh::keys::PrivateKeyWithHashAlg::new(Arc::new(key), hash),
        )
        .await?;
    if !matches!(auth, russh::client::AuthResult::Success) {
        return Err(anyhow!(
            "the target refused the gateway's key for {user}@{}",
            r.name
        ));
    }
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &russh::Preferred) -> Vec<&str> {
        p.cipher.iter().map(AsRef::as_ref).collect()
    }

    #[test]
    fn clients_are_offered_aes_gcm_alone_where_it_is_fast() {
        let offered = client_facing(None);
        if aes_instructions() {
            assert_eq!(
                names(&offered),
                ["aes256-gcm@openssh.com", "aes128-gcm@openssh.com"]
            );
        } else {
            assert!(names(&offered).contains(&"chacha20-poly1305@openssh.com"));
        }
        let configured = [
            "chacha20-poly1305@openssh.com".to_owned(),
            "aes128-ctr".to_owned(),
        ];
        assert_eq!(
            names(&client_facing(Some(&configured))),
            ["chacha20-poly1305@openssh.com", "aes128-ctr"]
        );
        // Towards targets the gateway's own order decides: AES-GCM first.
        assert_eq!(
            names(&preferred())[..2],
            ["aes256-gcm@openssh.com", "aes128-gcm@openssh.com"]
        );
    }
}
