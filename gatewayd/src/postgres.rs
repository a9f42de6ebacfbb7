//! The PostgreSQL data path: the tokio side of `gw-proto-postgres`.
//!
//! One task per client connection:
//! 1. **accept**: SSLRequest → TLS (required; plaintext startups are refused),
//!    StartupMessage (the database name selects the resource), a cleartext
//!    password request inside TLS whose answer is the client's gateway token.
//! 2. **authorize**: verify the token, `decide_session` with the policy in
//!    force. Nothing is sent upstream before the policy says allow.
//! 3. **connect**: log in upstream with the resource's credential (SCRAM),
//!    hand the client the server's parameters and the gateway's own cancel
//!    key.
//! 4. **relay**: every Query, Parse and FunctionCall is classified and
//!    decided; denials become server-side errors rewritten to SQLSTATE 42501
//!    (see `gw_proto_postgres::relay`); every DataRow and COPY OUT chunk is
//!    masked before the client or the recording sees it.
//!
//! Cancel requests arrive on new connections and are forwarded with the
//! upstream key. A session ends cleanly (FATAL 57P01) when its grant's
//! maximum length is reached.

use crate::audit::AuditEvent;
use crate::recorder::{RecEvent, Recorder};
use crate::state::{CancelTarget, Gateway};
use anyhow::{Context as _, anyhow};
use bytes::{Bytes, BytesMut};
use gw_proto_postgres::codec::{self, BackendMessage, Column, FrontendMessage};
use gw_proto_postgres::login::{LoginStep, UpstreamLogin};
use gw_proto_postgres::{
    BackendStep, CommandText, FrontendStep, Relay, RelayConfig, Startup, Verdict,
};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// How long a client has to finish TLS, startup and its password.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_STARTUP: usize = 10 << 10;
/// Rows of each result kept for the recording's rendering, at most.
const RENDER_ROWS_CAP: usize = 1000;

pub(crate) async fn serve(listener: TcpListener, gw: Arc<Gateway>, tls: tokio_rustls::TlsAcceptor) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let gw = Arc::clone(&gw);
        let tls = tls.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, peer, &gw, tls).await {
                // Violations inside a session were audited with its id;
                // these happened before one existed.
                if let Some(v) = e.downcast_ref::<gw_proto_postgres::ProtocolViolation>() {
                    let side = format!("{:?}", v.side).to_lowercase();
                    crate::metrics::Metrics::inc(&gw.metrics.protocol_violations);
                    gw.audit.record(&AuditEvent::ProtocolViolation {
                        session: "-",
                        side: &side,
                        reason: v.reason,
                    });
                }
                tracing::info!(client = %peer, error = %format!("{e:#}"), "postgres connection ended");
            }
        });
    }
}

/// Either side of a session: plain TCP or TLS.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    gw: &Gateway,
    tls: tokio_rustls::TlsAcceptor,
) -> anyhow::Result<()> {
    let client = peer.to_string();
    let mut buf = BytesMut::with_capacity(1024);
    // Plaintext phase: only SSLRequest, GSSENCRequest and CancelRequest.
    let startup = tokio::time::timeout(LOGIN_TIMEOUT, read_startup(&mut stream, &mut buf))
        .await
        .context("startup timed out")??;
    let mut tls_stream = match startup {
        Startup::SslRequest => {
            // Bytes after SSLRequest and before the handshake would be
            // plaintext smuggled into the TLS session (CVE-2021-23222).
            if !buf.is_empty() {
                return Err(anyhow!("client sent data after SSLRequest"));
            }
            stream.write_all(b"S").await?;
            tls.accept(Replay::new(BytesMut::new(), stream))
                .await
                .context("TLS handshake")?
        }
        // Direct TLS (PostgreSQL 17 clients): the ClientHello bytes already
        // read while sniffing the startup packet go to the handshake first.
        Startup::DirectTls => tls
            .accept(Replay::new(std::mem::take(&mut buf), stream))
            .await
            .context("TLS handshake (direct)")?,
        Startup::Cancel {
            process_id,
            secret_key,
        } => return forward_cancel(gw, process_id, &secret_key).await,
        Startup::GssEncRequest => {
            stream.write_all(b"N").await?;
            return Err(anyhow!(
                "GSS encryption refused; the client should retry with TLS"
            ));
        }
        Startup::Startup { .. } => {
            let msg = codec::error_response(
                "FATAL",
                "28000",
                "the gateway requires TLS: connect with sslmode=require or stronger",
                None,
                None,
            );
            stream.write_all(&msg).await?;
            crate::metrics::Metrics::inc(&gw.metrics.auth_failures);
            gw.audit.record(&AuditEvent::AuthenticationFailed {
                protocol: "postgres",
                client: &client,
                reason: "plaintext startup refused",
            });
            return Ok(());
        }
    };
    let mut buf = BytesMut::with_capacity(8 << 10);
    let login = tokio::time::timeout(
        LOGIN_TIMEOUT,
        client_login(&mut tls_stream, &mut buf, gw, &client),
    )
    .await;
    let Ok(Ok(Some(login))) = login else {
        return login.map_or_else(|_| Err(anyhow!("login timed out")), |r| r.map(|_| ()));
    };
    session(tls_stream, buf, login, gw, &client).await
}

async fn read_startup(stream: &mut TcpStream, buf: &mut BytesMut) -> anyhow::Result<Startup> {
    loop {
        if let Some(s) = codec::decode_startup(buf, MAX_STARTUP)? {
            return Ok(s);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(anyhow!("client closed before startup"));
        }
    }
}

/// Who logged in, to what, with what the policy said.
struct Login {
    principal: gw_policy::Principal,
    resource: gw_policy::Resource,
    terms: gw_policy::SessionTerms,
    rule: String,
    loaded: Arc<crate::state::Loaded>,
    /// When the session came through an approved access window: its end
    /// (seconds since the epoch), which also ends the session.
    window_ends: Option<u64>,
}

pub(crate) enum Window {
    Open {
        review: gw_review::ReviewId,
        ends_at: u64,
    },
    /// No window yet: the refusal text, naming the pending review.
    Pending(String),
}

/// A grant that needs approval: an approved, open access window lets the
/// session in; otherwise a review is requested (or the pending one reused)
/// and the client is told its id. `Err` (the store failed) refuses.
pub(crate) async fn access_window(
    gw: &Gateway,
    principal: &gw_policy::Principal,
    resource: &gw_policy::Resource,
    rule: &str,
    approval: Option<gw_policy::model::Approval>,
    loaded: &crate::state::Loaded,
) -> Result<Window, String> {
    let unavailable = |e: gw_review::ReviewError| {
        tracing::error!(error = %e, "review store unavailable");
        format!(
            "access to \"{}\" needs an approved access window, and the review store is unavailable, so it is refused",
            resource.name
        )
    };
    let now = crate::reviews::sweep(gw).await.map_err(unavailable)?;
    if let Some(r) = gw
        .reviews
        .active_window(&principal.subject, &resource.name, now)
        .await
        .map_err(unavailable)?
    {
        let ends_at = r.approved_at.unwrap_or(now) + r.window.unwrap_or(0);
        return Ok(Window::Open {
            review: r.id,
            ends_at,
        });
    }
    let Some(approval) = approval else {
        return Err(format!("{rule} needs approval but names no approvers"));
    };
    let pending = gw
        .reviews
        .list(
            gw_review::Filter {
                state: Some(gw_review::State::Pending),
                resource: Some(resource.name.clone()),
                requester: Some(principal.subject.clone()),
            },
            now,
        )
        .await
        .map_err(unavailable)?
        .into_iter()
        .find(|r| r.kind == gw_review::Kind::Session);
    let review = match pending {
        Some(r) => r,
        None => {
            let window = approval
                .window
                .unwrap_or(std::time::Duration::from_secs(3600));
            let new = gw_review::NewReview {
                window: Some(window.as_secs().max(1)),
                ..crate::reviews::ask(
                    gw_review::Kind::Session,
                    principal,
                    resource,
                    rule,
                    &approval,
                    &loaded.revision,
                    now,
                )
            };
            crate::reviews::request(gw, new)
                .await
                .map_err(unavailable)?
        }
    };
    Ok(Window::Pending(format!(
        "access to \"{}\" needs an access window approved by {} member(s) of \"{}\": review {} is pending (expires in {}); once approved, connect again. An approver runs: {}",
        resource.name,
        review.quorum,
        review.approvers,
        review.id,
        gw_policy::human_duration(std::time::Duration::from_secs(
            review.expires_at.saturating_sub(now)
        )),
        crate::reviews::approve_hint(&review.id),
    )))
}

/// Reads the StartupMessage inside TLS, asks for the token, authorizes.
/// `Ok(None)`: the client was refused with a protocol-native error.
async fn client_login<S: Io>(
    s: &mut S,
    buf: &mut BytesMut,
    gw: &Gateway,
    client: &str,
) -> anyhow::Result<Option<Login>> {
    let params = loop {
        match codec::decode_startup(buf, MAX_STARTUP)? {
            Some(Startup::Startup { params, .. }) => break params,
            Some(_) => return Err(anyhow!("unexpected startup packet inside TLS")),
            None => {
                if s.read_buf(buf).await? == 0 {
                    return Err(anyhow!("client closed during startup"));
                }
            }
        }
    };
    let param = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.as_bytes() == k.as_bytes())
            .map(|(_, v)| v.to_string_lossy())
    };
    let database = param("database")
        .or_else(|| param("user"))
        .unwrap_or_default();
    s.write_all(&codec::authentication_cleartext_password())
        .await?;
    let password = loop {
        match codec::decode_frontend(buf, MAX_STARTUP)? {
            Some(m) => match m.msg {
                FrontendMessage::Password(p) => break p,
                _ => return Err(anyhow!("expected a password message")),
            },
            None => {
                if s.read_buf(buf).await? == 0 {
                    return Err(anyhow!("client closed before sending its token"));
                }
            }
        }
    };
    let password = String::from_utf8_lossy(&password)
        .trim_end_matches('\0')
        .to_owned();
    let now = crate::audit::unix_now();
    let token = match crate::identity::verify(gw, &password) {
        Ok(t) => t,
        Err(reason) => {
            crate::metrics::Metrics::inc(&gw.metrics.auth_failures);
            gw.audit.record(&AuditEvent::AuthenticationFailed {
                protocol: "postgres",
                client,
                reason: &reason,
            });
            let msg = format!("gateway authentication failed: {reason}");
            fatal(
                s,
                "28P01",
                &msg,
                None,
                Some("log in with `gwctl login` and use `gwctl token` as the password (or `gwctl connect RESOURCE`)"),
            )
            .await?;
            return Ok(None);
        }
    };
    let loaded = gw.policy();
    let decision = loaded
        .policy
        .decide_session(&token.principal, &database, now);
    let rule = decision.decision.rule.to_string();
    let revision = loaded.revision.clone();
    let refuse = |reason: String| Refusal {
        principal: token.principal.subject.clone(),
        resource: database.clone(),
        rule: rule.clone(),
        reason,
        revision: revision.clone(),
    };
    let resource = loaded.policy.resource(&database).cloned();
    match (decision.decision.verdict, decision.terms.clone(), resource) {
        (gw_policy::Verdict::Allow | gw_policy::Verdict::Log, Some(terms), Some(resource))
            if resource.kind == gw_policy::Kind::Postgres =>
        {
            Ok(Some(Login {
                principal: token.principal.clone(),
                resource,
                terms,
                rule: decision.decision.rule.to_string(),
                loaded,
                window_ends: None,
            }))
        }
        (gw_policy::Verdict::Allow | gw_policy::Verdict::Log, _, Some(resource)) => {
            refuse(format!(
                "\"{}\" is a {} resource, not postgres",
                resource.name,
                resource.kind.name()
            ))
            .send(s, gw, client)
            .await?;
            Ok(None)
        }
        (gw_policy::Verdict::Review, Some(terms), Some(resource))
            if resource.kind == gw_policy::Kind::Postgres =>
        {
            let approval = decision.decision.approval.clone();
            match access_window(gw, &token.principal, &resource, &rule, approval, &loaded).await {
                Ok(Window::Open { review, ends_at }) => Ok(Some(Login {
                    principal: token.principal.clone(),
                    resource,
                    terms,
                    rule: format!("{rule} (access window {review})"),
                    loaded,
                    window_ends: Some(ends_at),
                })),
                Ok(Window::Pending(text)) | Err(text) => {
                    refuse(text).send(s, gw, client).await?;
                    Ok(None)
                }
            }
        }
        _ => {
            refuse(decision.decision.reason.clone())
                .send(s, gw, client)
                .await?;
            Ok(None)
        }
    }
}

/// A refused session: audited, then told to the client as a FATAL error.
struct Refusal {
    principal: String,
    resource: String,
    rule: String,
    reason: String,
    revision: String,
}

impl Refusal {
    async fn send<S: Io>(self, s: &mut S, gw: &Gateway, client: &str) -> std::io::Result<()> {
        crate::metrics::Metrics::inc(&gw.metrics.sessions_denied);
        gw.audit.record(&AuditEvent::SessionDenied {
            principal: &self.principal,
            resource: &self.resource,
            protocol: "postgres",
            client,
            rule: &self.rule,
            reason: &self.reason,
            revision: &self.revision,
        });
        let msg = format!("access denied by gateway policy: {}", self.reason);
        fatal(s, "42501", &msg, None, None).await
    }
}

/// Connects and logs in upstream; returns the stream and what the server said.
async fn connect_upstream(
    gw: &Gateway,
    login: &Login,
) -> anyhow::Result<(Box<dyn Io>, gw_proto_postgres::login::Ready, String)> {
    let r = &login.resource;
    let over = gw
        .overrides
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&r.name)
        .cloned();
    let (address, user, password) = match over {
        Some(o) => (o.address, o.user, o.password),
        None => {
            let (cred, user) = crate::secrets::credential(r)?;
            let password = match &cred.password {
                Some(s) => crate::secrets::resolve(s)?,
                None => String::new(),
            };
            (r.address.clone(), user, password)
        }
    };
    let tcp = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&address))
        .await
        .map_err(|_| anyhow!("connecting to {address} timed out"))?
        .with_context(|| format!("connecting to {address}"))?;
    let _ = tcp.set_nodelay(true);
    let (mut up, encrypted) = crate::upstream_tls::wrap(tcp, r).await?;
    let database = r.database.clone().unwrap_or_else(|| r.name.clone());
    let app = format!("gatewayd ({})", login.principal.subject);
    let (lg, startup) =
        UpstreamLogin::new(&user, &database, &password, &[("application_name", &app)]);
    // MD5 and cleartext logins are accepted only inside TLS, where neither the
    // challenge-response nor the password crosses the network in the clear.
    let mut lg = lg.allow_weak_methods(encrypted);
    up.write_all(&startup).await?;
    let mut buf = BytesMut::with_capacity(4096);
    let ready = loop {
        let msg = loop {
            if let Some(m) = codec::decode_backend(&mut buf, 1 << 20)? {
                break m;
            }
            if up.read_buf(&mut buf).await? == 0 {
                return Err(anyhow!("the server closed the connection during login"));
            }
        };
        match lg
            .on_message(msg)
            .map_err(|e| anyhow!("upstream login failed: {e}"))?
        {
            LoginStep::Send(b) => up.write_all(&b).await?,
            LoginStep::Wait => {}
            LoginStep::Done(ready) => break ready,
        }
    };
    if !buf.is_empty() {
        return Err(anyhow!(
            "the server sent data after ReadyForQuery during login"
        ));
    }
    Ok((up, ready, address))
}

async fn session<S: Io>(
    mut client_io: S,
    client_buf: BytesMut,
    login: Login,
    gw: &Gateway,
    client: &str,
) -> anyhow::Result<()> {
    let session_id = crate::recorder::session_id();
    let (upstream_io, ready, address) = match connect_upstream(gw, &login).await {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(session = %session_id, resource = %login.resource.name, error = %format!("{e:#}"), "upstream unavailable");
            let msg = format!(
                "the gateway cannot reach \"{}\" right now",
                login.resource.name
            );
            fatal(&mut client_io, "08006", &msg, None, None).await?;
            return Ok(());
        }
    };
    let recorder = match start_recorder(gw, &login, &session_id, client) {
        Ok(r) => Some(r),
        Err(e) if login.terms.recording.on_failure == gw_policy::OnFailure::BestEffort => {
            tracing::error!(session = %session_id, error = %format!("{e:#}"), "recording unavailable; continuing unrecorded (best-effort)");
            crate::metrics::Metrics::inc(&gw.metrics.recording_failures);
            None
        }
        Err(e) => {
            tracing::error!(session = %session_id, error = %format!("{e:#}"), "recording unavailable; refusing the session");
            crate::metrics::Metrics::inc(&gw.metrics.recording_failures);
            fatal(
                &mut client_io,
                "58030",
                "the gateway cannot record this session, so it cannot open it",
                None,
                None,
            )
            .await?;
            return Ok(());
        }
    };
    crate::metrics::Metrics::inc(&gw.metrics.sessions_opened);
    let _active = Active::new(&gw.metrics);
    gw.audit.record(&AuditEvent::SessionOpened {
        session: &session_id,
        principal: &login.principal.subject,
        resource: &login.resource.name,
        protocol: "postgres",
        client,
        rule: &login.rule,
        revision: &login.loaded.revision,
    });
    if login.principal.subject.starts_with("break-glass:") {
        tracing::error!(session = %session_id, principal = %login.principal.subject, resource = %login.resource.name, "BREAK-GLASS session opened");
        gw.audit.record(&AuditEvent::BreakGlassSession {
            session: &session_id,
            principal: &login.principal.subject,
            resource: &login.resource.name,
        });
        if let Some(rec) = &recorder {
            rec.send(RecEvent::Marker {
                t: rec.elapsed(),
                label: format!("break-glass:session principal={}", login.principal.subject),
            })
            .await;
        }
    }
    // The client gets the server's parameters and the gateway's own key.
    let mut hello = BytesMut::new();
    hello.extend_from_slice(&codec::authentication_ok());
    for (name, value) in &ready.parameters {
        hello.extend_from_slice(&codec::parameter_status(
            &name.to_string_lossy(),
            value.as_bytes(),
        ));
    }
    let (pid, secret) = new_cancel_key();
    let held = Arc::new(crate::state::Held::default());
    if let Some((upid, ukey)) = &ready.backend_key {
        let target = CancelTarget {
            address: address.clone(),
            process_id: *upid,
            secret_key: ukey.to_vec(),
            held: Arc::clone(&held),
        };
        gw.cancel_keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((pid, secret.to_vec()), target);
    }
    hello.extend_from_slice(&codec::backend_key_data(pid, &secret));
    hello.extend_from_slice(&codec::ready_for_query(ready.status));
    client_io.write_all(&hello).await?;

    let mut s = Session::new(gw, &login, session_id.clone(), recorder, held);
    let end = s.relay(client_io, client_buf, upstream_io).await;
    gw.cancel_keys
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&(pid, secret.to_vec()));
    let reason = match &end {
        Ok(r) => r.clone(),
        Err(e) => format!("{e:#}"),
    };
    gw.audit.record(&AuditEvent::SessionClosed {
        session: &session_id,
        principal: &login.principal.subject,
        resource: &login.resource.name,
        reason: &reason,
    });
    if let Some(rec) = s.recorder.take() {
        rec.send(RecEvent::Marker {
            t: rec.elapsed(),
            label: format!("session:end reason={}", quote(&reason)),
        })
        .await;
        rec.finish().await;
    }
    // The session's end is audited above; nothing more to report upward.
    Ok(())
}

fn start_recorder(
    gw: &Gateway,
    login: &Login,
    session_id: &str,
    client: &str,
) -> anyhow::Result<Recorder> {
    let meta = gw_recording::SessionMeta {
        session_id: session_id.to_owned(),
        principal: login.principal.subject.clone(),
        resource: login.resource.name.clone(),
        protocol: "postgres".into(),
        policy_revision: login.loaded.revision.clone(),
        client_addr: client.to_owned(),
        gateway_id: gw.config.gateway_id.clone(),
        key_id: String::new(),
        start_us: crate::audit::now_us(),
    };
    let mut header = gw_recording::Header::new(120, 40, meta);
    header.command = Some(format!("psql {}", login.resource.name));
    gw.recorders
        .open(&gw.config.recordings, &header, &gw.recording_key)
}

/// The statement being recorded: from its decision to its completion.
struct Open {
    text: String,
    decision: gw_recording::Decision,
    rule: Option<String>,
    started: Duration,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    row_count: u64,
    outcome: Option<String>,
}

struct Session<'a> {
    gw: &'a Gateway,
    login: &'a Login,
    id: String,
    recorder: Option<Recorder>,
    masker: gw_mask::Masker,
    /// Values masked since the last statement was recorded.
    masked: std::sync::atomic::AtomicU64,
    open: Vec<Open>,
    render_rows: usize,
    held: Arc<crate::state::Held>,
}

/// What `decide` concluded: a verdict now, or a review to wait for.
enum Decided {
    Now(Verdict),
    Hold(Box<HoldRequest>),
}

/// A statement that needs a review before it may run.
struct HoldRequest {
    text: String,
    rule: String,
    reason: String,
    approval: gw_policy::model::Approval,
    hash: gw_review::CommandHash,
}

/// Why the client-reading loop stopped.
enum Stop {
    End(String),
    Hold(gw_proto_postgres::relay::Pending, Box<HoldRequest>),
}

/// How a hold ended: with a verdict for the statement, or with the session.
enum HoldEnd {
    Verdict(Verdict),
    Session(String),
}

/// Client bytes buffered while a statement is held, at most; a client that
/// sends more is ended rather than buffered without bound.
const HELD_BUFFER_CAP: usize = 16 << 20;

impl<'a> Session<'a> {
    fn new(
        gw: &'a Gateway,
        login: &'a Login,
        id: String,
        recorder: Option<Recorder>,
        held: Arc<crate::state::Held>,
    ) -> Session<'a> {
        let masker = gw.masker(&login.loaded, &login.resource, &login.principal);
        let render_rows = (login.terms.recording.result_rows as usize).min(RENDER_ROWS_CAP);
        Session {
            gw,
            login,
            id,
            recorder,
            masker,
            masked: std::sync::atomic::AtomicU64::new(0),
            open: Vec::new(),
            render_rows,
            held,
        }
    }

    /// Relays until either side ends the session. `Ok(reason)` is a clean end.
    async fn relay<C: Io>(
        &mut self,
        mut client: C,
        cbuf: BytesMut,
        upstream: Box<dyn Io>,
    ) -> anyhow::Result<String> {
        let result = self.pump(&mut client, cbuf, upstream).await;
        // A malformed message ends this session, with a protocol-native
        // error to the client, whichever side sent it.
        if let Err(e) = &result
            && let Some(v) = e.downcast_ref::<gw_proto_postgres::ProtocolViolation>()
        {
            let msg = match v.side {
                gw_proto_postgres::Side::Upstream => {
                    "the database sent a malformed message; the gateway ended the session"
                        .to_owned()
                }
                _ => format!("protocol violation: {v}"),
            };
            let _ = fatal(&mut client, "08P01", &msg, None, None).await;
        }
        // Whatever ended the session, what was written must reach the client
        // before the TLS session closes.
        let _ = client.flush().await;
        let _ = client.shutdown().await;
        result
    }

    async fn pump<C: Io>(
        &mut self,
        client: &mut C,
        mut cbuf: BytesMut,
        mut upstream: Box<dyn Io>,
    ) -> anyhow::Result<String> {
        let mut relay = Relay::new(RelayConfig {
            session_tag: self.id.clone(),
            ..RelayConfig::default()
        });
        // Small to start: most sessions sit idle; the buffers grow with traffic.
        let mut ubuf = BytesMut::with_capacity(8 << 10);
        let mut to_up = BytesMut::with_capacity(1 << 10);
        let mut to_client = BytesMut::with_capacity(8 << 10);
        let mut limit = self.login.terms.max_session;
        if let Some(ends) = self.login.window_ends {
            let left = ends.saturating_sub(crate::audit::unix_now());
            limit = limit.min(Duration::from_secs(left));
        }
        let deadline = tokio::time::Instant::now() + limit;
        let sleep = tokio::time::sleep_until(deadline);
        tokio::pin!(sleep);
        let mut shutdown = self.gw.shutdown.subscribe();
        if *shutdown.borrow() {
            return Ok("gateway shutting down".into());
        }
        // A new policy revision may revoke this session's grant: it then
        // ends after the configured grace period (unless a later revision
        // restores the grant first).
        let mut policy = self.gw.policy.subscribe();
        policy.mark_unchanged();
        let revoke = tokio::time::sleep(Duration::from_secs(0));
        tokio::pin!(revoke);
        let mut revoked: Option<String> = None;
        loop {
            // Process whatever is buffered before waiting for more.
            match self.drain_client(&mut relay, &mut cbuf, &mut to_up).await? {
                None => {}
                Some(Stop::End(end)) => {
                    upstream.write_all(&to_up).await?;
                    return Ok(end);
                }
                Some(Stop::Hold(pending, request)) => {
                    // What came before the held statement goes now: its
                    // answers reach the client while the review waits.
                    if !to_up.is_empty() {
                        upstream.write_all(&to_up).await?;
                        to_up.clear();
                    }
                    let end = self
                        .hold(
                            *request,
                            client,
                            &mut cbuf,
                            &mut upstream,
                            &mut relay,
                            &mut ubuf,
                            &mut shutdown,
                            sleep.as_mut(),
                        )
                        .await?;
                    match end {
                        HoldEnd::Verdict(v) => {
                            let bytes = relay.resolve(pending, v).map_err(|v| self.violation(v))?;
                            to_up.extend_from_slice(&bytes);
                            continue;
                        }
                        HoldEnd::Session(reason) => return Ok(reason),
                    }
                }
            }
            if !to_up.is_empty() {
                upstream.write_all(&to_up).await?;
                to_up.clear();
            }
            self.drain_upstream(&mut relay, &mut ubuf, &mut to_client)
                .await?;
            if !to_client.is_empty() {
                client.write_all(&to_client).await?;
                to_client.clear();
            }
            tokio::select! {
                n = client.read_buf(&mut cbuf) => {
                    if n? == 0 {
                        let _ = upstream.write_all(&codec::terminate()).await;
                        return Ok("client disconnected".into());
                    }
                }
                n = upstream.read_buf(&mut ubuf) => {
                    if n? == 0 {
                        let msg = codec::error_response("FATAL", "57P01", "the database closed the connection", None, None);
                        let _ = client.write_all(&msg).await;
                        return Ok("server closed the connection".into());
                    }
                }
                _ = shutdown.changed() => {
                    let msg = "the gateway is shutting down; reconnect in a moment";
                    let _ = client.write_all(&gw_proto_postgres::relay::session_end_error(msg)).await;
                    let _ = upstream.write_all(&codec::terminate()).await;
                    return Ok("gateway shutting down".into());
                }
                () = &mut sleep => {
                    return Ok(self.time_is_up(client, &mut upstream).await);
                }
                _ = policy.changed() => {
                    let loaded = Arc::clone(&policy.borrow_and_update());
                    let before = revoked.is_some();
                    revoked = self.still_allowed(&loaded).await.err();
                    match (&revoked, before) {
                        (Some(why), false) => {
                            let grace = self.gw.config.revoke_grace;
                            revoke.as_mut().reset(tokio::time::Instant::now() + grace);
                            self.gw.audit.record(&AuditEvent::AccessRevoked {
                                session: &self.id,
                                principal: &self.login.principal.subject,
                                resource: &self.login.resource.name,
                                revision: &loaded.revision,
                                grace_secs: grace.as_secs(),
                            });
                            let msg = format!(
                                "your access to \"{}\" was revoked by policy revision {}: {why}; this session ends in {}",
                                self.login.resource.name,
                                short(&loaded.revision),
                                gw_policy::human_duration(grace)
                            );
                            client.write_all(&codec::notice_response("WARNING", "01000", &msg, None, None)).await?;
                            self.marker(format!("policy:revoked revision={} grace_s={}", loaded.revision, grace.as_secs())).await;
                        }
                        (None, true) => {
                            self.marker(format!("policy:restored revision={}", loaded.revision)).await;
                        }
                        _ => {}
                    }
                }
                () = &mut revoke, if revoked.is_some() => {
                    let why = revoked.take().unwrap_or_default();
                    crate::metrics::Metrics::inc(&self.gw.metrics.sessions_revoked);
                    let msg = format!("session ended by the gateway: access to \"{}\" was revoked by a policy change ({why})", self.login.resource.name);
                    let _ = client.write_all(&gw_proto_postgres::relay::session_end_error(&msg)).await;
                    let _ = upstream.write_all(&codec::terminate()).await;
                    return Ok(format!("access revoked by a policy change: {why}"));
                }
            }
        }
    }

    /// Whether this session's principal may still use its resource under a
    /// new revision; also records the revision in the recording. `Err` says
    /// why not.
    async fn still_allowed(&self, loaded: &crate::state::Loaded) -> Result<(), String> {
        self.marker(format!("policy:revision revision={}", loaded.revision))
            .await;
        crate::state::still_allowed(
            loaded,
            &self.login.principal,
            &self.login.resource.name,
            self.login.window_ends.is_some(),
        )
    }

    /// The session reached its time limit (the grant's maximum length, or
    /// the end of its access window): tell the client and end it.
    async fn time_is_up<C: Io>(&self, client: &mut C, upstream: &mut Box<dyn Io>) -> String {
        let (msg, reason) = match self.login.window_ends {
            Some(_) => (
                "session ended by the gateway: its approved access window has closed; request a new one to continue".to_owned(),
                "access window closed".to_owned(),
            ),
            None => {
                let limit = gw_policy::human_duration(self.login.terms.max_session);
                (
                    format!("session ended by the gateway: the grant allows sessions of at most {limit}; reconnect to continue"),
                    format!("maximum session length ({limit}) reached"),
                )
            }
        };
        let _ = client
            .write_all(&gw_proto_postgres::relay::session_end_error(&msg))
            .await;
        let _ = upstream.write_all(&codec::terminate()).await;
        reason
    }

    /// Handles every complete client message in `buf`. Stops when the client
    /// said goodbye, or at a statement that must wait for a review (the
    /// messages after it stay in `buf`).
    async fn drain_client(
        &mut self,
        relay: &mut Relay,
        buf: &mut BytesMut,
        out: &mut BytesMut,
    ) -> anyhow::Result<Option<Stop>> {
        while let Some(msg) = relay.decode_frontend(buf).map_err(|v| self.violation(v))? {
            let terminate = matches!(msg.msg, FrontendMessage::Terminate);
            match relay.on_frontend(msg).map_err(|v| self.violation(v))? {
                FrontendStep::Forward(b) => out.extend_from_slice(&b),
                FrontendStep::Decide(pending) => match self.decide(pending.command()).await {
                    Decided::Now(verdict) => out.extend_from_slice(
                        &relay
                            .resolve(pending, verdict)
                            .map_err(|v| self.violation(v))?,
                    ),
                    Decided::Hold(request) => return Ok(Some(Stop::Hold(pending, request))),
                },
            }
            if terminate {
                return Ok(Some(Stop::End("client terminated the session".into())));
            }
        }
        Ok(None)
    }

    /// Classifies and decides one command, records the decision.
    async fn decide(&mut self, command: &CommandText) -> Decided {
        let loaded = self.gw.policy();
        let (text, cmd) = match command {
            CommandText::Query(q) => (
                q.clone(),
                gw_policy::Command::sql(gw_policy::Kind::Postgres, q),
            ),
            CommandText::Parse { query, .. } => (
                query.clone(),
                gw_policy::Command::sql(gw_policy::Kind::Postgres, query),
            ),
            CommandText::FunctionCall { oid } => {
                // Fast-path calls (large objects, mostly) name a function by
                // OID only: judged as SQL the gateway cannot classify.
                let text = format!("-- fast-path function call, oid {oid}");
                let c = gw_sql::Classification {
                    statements: Vec::new(),
                    unparsed: Some(gw_sql::Unparsed {
                        reason: format!("fast-path function call (oid {oid})"),
                        guessed: vec![gw_sql::Kind::Call],
                    }),
                };
                (text, gw_policy::Command::Sql(c))
            }
        };
        let mut d =
            loaded
                .policy
                .decide_command(&self.login.principal, &self.login.resource.name, &cmd);
        if self.recorder.as_ref().is_some_and(|r| r.failed())
            && self.login.terms.recording.on_failure != gw_policy::OnFailure::BestEffort
        {
            d.verdict = gw_policy::Verdict::Deny;
            d.reason =
                "the session's recording has failed, so the gateway refuses further commands"
                    .into();
        }
        let mut hold = None;
        if d.verdict == gw_policy::Verdict::Review {
            let hash =
                gw_review::command_hash("postgres", &self.login.resource.name, &self.id, &text);
            let now = crate::audit::unix_now();
            match (
                d.approval.clone(),
                self.gw.reviews.take_approved(&self.id, hash, now).await,
            ) {
                // An approval with a window covers the same command again.
                (_, Ok(Some(r))) => {
                    d.verdict = gw_policy::Verdict::Allow;
                    d.reason = format!(
                        "{} (approved in review {}, whose window is still open)",
                        d.reason, r.id
                    );
                }
                (Some(approval), Ok(None)) => {
                    hold = Some(HoldRequest {
                        text: text.clone(),
                        rule: d.rule.to_string(),
                        reason: d.reason.clone(),
                        approval,
                        hash,
                    });
                }
                (None, _) => {
                    d.verdict = gw_policy::Verdict::Deny;
                    d.reason = format!("{} (the rule names no approvers)", d.reason);
                }
                (_, Err(e)) => {
                    tracing::error!(session = %self.id, error = %e, "review store unavailable");
                    d.verdict = gw_policy::Verdict::Deny;
                    d.reason = format!(
                        "{}; the review store is unavailable, so it is refused",
                        d.reason
                    );
                }
            }
        }
        self.gw.metrics.command(d.verdict);
        self.gw.audit.record(&AuditEvent::Command {
            session: &self.id,
            principal: &self.login.principal.subject,
            resource: &self.login.resource.name,
            verdict: d.verdict.name(),
            rule: &d.rule.to_string(),
            reason: &d.reason,
            command: &text,
            revision: &loaded.revision,
        });
        if let Some(h) = hold {
            return Decided::Hold(Box::new(h));
        }
        let allowed = matches!(
            d.verdict,
            gw_policy::Verdict::Allow | gw_policy::Verdict::Log
        );
        let rule = match &d.rule {
            gw_policy::Rule::Default(_) => None,
            r => Some(r.name().to_owned()),
        };
        Decided::Now(self.push_open(text, allowed, rule, &format!("{}: {}", d.rule, d.reason)))
    }

    /// Starts recording a statement whose verdict is known; returns the
    /// verdict for the relay. `reason` is what a denied client is told.
    fn push_open(
        &mut self,
        text: String,
        allowed: bool,
        rule: Option<String>,
        reason: &str,
    ) -> Verdict {
        let started = self
            .recorder
            .as_ref()
            .map_or(Duration::ZERO, Recorder::elapsed);
        self.open.push(Open {
            text,
            decision: if allowed {
                gw_recording::Decision::Allow
            } else {
                gw_recording::Decision::Deny
            },
            rule,
            started,
            columns: Vec::new(),
            rows: Vec::new(),
            row_count: 0,
            outcome: (!allowed)
                .then(|| format!("ERROR:  permission denied by gateway policy: {reason}")),
        });
        if allowed {
            Verdict::Allow
        } else {
            Verdict::Deny {
                reason: reason.to_owned(),
            }
        }
    }

    async fn marker(&self, label: String) {
        if let Some(rec) = &self.recorder {
            rec.send(RecEvent::Marker {
                t: rec.elapsed(),
                label,
            })
            .await;
        }
    }

    /// Holds a statement for review: asks for one, tells the client, then
    /// waits for the decision while still relaying the server's answers to
    /// earlier statements and buffering the client's later messages. The
    /// client cancelling (Ctrl-C) or leaving withdraws the review.
    #[allow(clippy::too_many_arguments)]
    async fn hold<C: Io>(
        &mut self,
        h: HoldRequest,
        client: &mut C,
        cbuf: &mut BytesMut,
        upstream: &mut Box<dyn Io>,
        relay: &mut Relay,
        ubuf: &mut BytesMut,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
        sleep: std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> anyhow::Result<HoldEnd> {
        let now = crate::audit::unix_now();
        let new = gw_review::NewReview {
            session_id: Some(self.id.clone()),
            command: Some(h.text.clone()),
            ..crate::reviews::ask(
                gw_review::Kind::Command,
                &self.login.principal,
                &self.login.resource,
                &h.rule,
                &h.approval,
                &self.login.loaded.revision,
                now,
            )
        };
        let review = match crate::reviews::request(self.gw, new).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(session = %self.id, error = %e, "review store unavailable");
                let reason = format!(
                    "{}: {}; the review store is unavailable, so it cannot be held for approval and is refused",
                    h.rule, h.reason
                );
                return Ok(HoldEnd::Verdict(self.push_open(
                    h.text,
                    false,
                    Some(h.rule),
                    &reason,
                )));
            }
        };
        self.marker(gw_recording::review_requested(
            review.id.as_str(),
            &h.reason,
        ))
        .await;
        let wait = gw_policy::human_duration(Duration::from_secs(review.expires_at - now));
        let notice = codec::notice_response(
            "NOTICE",
            "01000",
            &format!(
                "statement held for review {}: it runs once {} member(s) of \"{}\" approve it; the request expires in {wait}",
                review.id, review.quorum, review.approvers
            ),
            Some(&format!("{}: {}", h.rule, h.reason)),
            Some(&format!(
                "an approver runs: {}. Press Ctrl-C to withdraw the request.",
                crate::reviews::approve_hint(&review.id)
            )),
        );
        client.write_all(&notice).await?;
        client.flush().await?;
        let held = Arc::clone(&self.held);
        held.cancel_requested
            .store(false, std::sync::atomic::Ordering::SeqCst);
        held.holding
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let waited = self
            .wait_for(
                &review, client, cbuf, upstream, relay, ubuf, shutdown, sleep,
            )
            .await;
        held.holding
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.gw.reviews.forget(&review.id);
        let done = match waited {
            Ok(Ok(done)) => done,
            Ok(Err(end)) => return Ok(HoldEnd::Session(end)),
            Err(e) => {
                // Whatever broke the session, its review must not outlive it.
                let by = crate::reviews::Cancel::Session(self.id.clone());
                let _ = crate::reviews::cancel(self.gw, &review.id, by, "the session failed").await;
                return Err(e);
            }
        };
        let now = crate::audit::unix_now();
        let (allowed, reason) = match done.state {
            gw_review::State::Approved => {
                match self.gw.reviews.take_approved(&self.id, h.hash, now).await {
                    Ok(Some(_)) => (true, String::new()),
                    Ok(None) => (
                        false,
                        format!(
                            "{} but it no longer covers this statement",
                            crate::reviews::outcome_text(&done)
                        ),
                    ),
                    Err(e) => {
                        tracing::error!(session = %self.id, error = %e, "review store unavailable");
                        (
                            false,
                            format!(
                                "{}, but the review store became unavailable before the statement could run",
                                crate::reviews::outcome_text(&done)
                            ),
                        )
                    }
                }
            }
            gw_review::State::Cancelled if held_by_client(&done) => (
                false,
                format!(
                    "canceling statement due to user request: review {} was withdrawn",
                    done.id
                ),
            ),
            _ => (false, crate::reviews::outcome_text(&done)),
        };
        let by = done
            .decisions
            .last()
            .map_or_else(|| "gateway".to_owned(), |d| d.by.clone());
        let label = match done.state {
            gw_review::State::Approved => {
                let by: Vec<&str> = gw_review::rules::approving_subjects(&done)
                    .into_iter()
                    .collect();
                gw_recording::review_approved(done.id.as_str(), &by.join(","))
            }
            gw_review::State::Denied => gw_recording::review_denied(done.id.as_str(), &by),
            other => gw_recording::review_ended(done.id.as_str(), other.as_str()),
        };
        self.marker(label).await;
        let reason = if allowed {
            String::new()
        } else {
            format!("{}: {reason}", h.rule)
        };
        Ok(HoldEnd::Verdict(self.push_open(
            h.text,
            allowed,
            Some(h.rule),
            &reason,
        )))
    }

    /// Waits until `review` is decided, expires or is withdrawn. `Ok(Err)`:
    /// the session ended meanwhile (the review is withdrawn), with why.
    #[allow(clippy::too_many_arguments)]
    async fn wait_for<C: Io>(
        &mut self,
        review: &gw_review::Review,
        client: &mut C,
        cbuf: &mut BytesMut,
        upstream: &mut Box<dyn Io>,
        relay: &mut Relay,
        ubuf: &mut BytesMut,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
        mut sleep: std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> anyhow::Result<Result<gw_review::Review, String>> {
        let gw = self.gw;
        let id = &review.id;
        let waiter = gw.reviews.waiter(id);
        let held = Arc::clone(&self.held);
        let left = review.expires_at.saturating_sub(crate::audit::unix_now());
        let expiry = tokio::time::sleep(Duration::from_secs(left) + Duration::from_millis(200));
        tokio::pin!(expiry);
        let mut poll = tokio::time::interval(Duration::from_secs(1));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut to_client = BytesMut::new();
        let session = self.id.clone();
        let withdraw = |why: &'static str| {
            let by = crate::reviews::Cancel::Session(session.clone());
            async move { crate::reviews::cancel(gw, id, by, why).await }
        };
        loop {
            tokio::select! {
                () = waiter.notified() => {}
                _ = poll.tick() => {}
                () = &mut expiry => {}
                () = held.cancel.notified() => {
                    if held.cancel_requested.swap(false, std::sync::atomic::Ordering::SeqCst)
                        && let Ok(r) = withdraw("the client cancelled the statement").await
                    {
                        return Ok(Ok(r));
                    }
                }
                n = client.read_buf(cbuf) => {
                    // A vanished client (EOF, or a reset without TLS
                    // close_notify) withdraws its review either way.
                    if !matches!(n, Ok(n) if n > 0) {
                        let _ = withdraw("the client disconnected").await;
                        let _ = upstream.write_all(&codec::terminate()).await;
                        n?;
                        return Ok(Err(format!("client disconnected while review {id} was pending")));
                    }
                    if cbuf.len() > HELD_BUFFER_CAP {
                        let _ = withdraw("the client sent too much while waiting").await;
                        return Err(anyhow!("the client sent more than {HELD_BUFFER_CAP} bytes while a statement was held for review"));
                    }
                    continue;
                }
                n = upstream.read_buf(ubuf) => {
                    if !matches!(n, Ok(n) if n > 0) {
                        let _ = withdraw("the database closed the connection").await;
                        n?;
                        let msg = codec::error_response("FATAL", "57P01", "the database closed the connection", None, None);
                        let _ = client.write_all(&msg).await;
                        return Ok(Err("server closed the connection".into()));
                    }
                    self.drain_upstream(relay, ubuf, &mut to_client).await?;
                    if !to_client.is_empty() {
                        client.write_all(&to_client).await?;
                        to_client.clear();
                    }
                    continue;
                }
                _ = shutdown.changed() => {
                    let _ = withdraw("the gateway is shutting down").await;
                    let msg = "the gateway is shutting down; reconnect in a moment (the review was withdrawn)";
                    let _ = client.write_all(&gw_proto_postgres::relay::session_end_error(msg)).await;
                    let _ = upstream.write_all(&codec::terminate()).await;
                    return Ok(Err("gateway shutting down".into()));
                }
                () = &mut sleep => {
                    let _ = withdraw("the session reached its time limit").await;
                    return Ok(Err(self.time_is_up(client, upstream).await));
                }
            }
            // Something may have changed: read the review as it stands.
            let now = match crate::reviews::sweep(gw).await {
                Ok(now) => now,
                Err(_) => crate::audit::unix_now(),
            };
            match gw.reviews.get(id, now).await {
                Ok(r) if r.state == gw_review::State::Pending => {}
                Ok(r) => return Ok(Ok(r)),
                // Fail closed: past its expiry with the store unreachable,
                // the review counts as expired; until then, keep waiting.
                Err(e) if now > review.expires_at + 5 => {
                    tracing::error!(session = %self.id, review = %id, error = %e, "review store unavailable; the held statement is refused");
                    let mut r = review.clone();
                    r.state = gw_review::State::Expired;
                    return Ok(Ok(r));
                }
                Err(e) => {
                    tracing::warn!(session = %self.id, review = %id, error = %e, "cannot read the review; still waiting")
                }
            }
        }
    }

    async fn drain_upstream(
        &mut self,
        relay: &mut Relay,
        buf: &mut BytesMut,
        out: &mut BytesMut,
    ) -> anyhow::Result<()> {
        while let Some(msg) = relay.decode_backend(buf).map_err(|v| self.violation(v))? {
            self.observe(&msg.msg).await;
            let msg = self.mask_notice(msg)?;
            match relay.on_backend(msg).map_err(|v| self.violation(v))? {
                BackendStep::Forward(b) | BackendStep::Rewritten(b) => out.extend_from_slice(&b),
                BackendStep::Row(step) => {
                    let masked = self.mask_row(&step)?;
                    self.keep_row(masked.as_deref(), &step);
                    match masked {
                        Some(values) => out.extend_from_slice(&codec::data_row(
                            values.iter().map(|v| v.as_deref()),
                        )),
                        None => out.extend_from_slice(&step.unchanged()),
                    }
                }
                BackendStep::CopyOut(step) => {
                    let masked = self.mask_copy(&step.data)?;
                    if let Some(open) = self.open.first_mut() {
                        open.row_count += 1;
                        if open.rows.len() < self.render_rows {
                            let line =
                                String::from_utf8_lossy(masked.as_deref().unwrap_or(&step.data))
                                    .trim_end()
                                    .to_owned();
                            open.rows.push(vec![line]);
                        }
                    }
                    match masked {
                        Some(data) => out.extend_from_slice(&step.replace(&data)),
                        None => out.extend_from_slice(&step.unchanged()),
                    }
                }
                BackendStep::UpstreamKey { .. } => {}
            }
        }
        Ok(())
    }

    /// Masks a DataRow. `None`: nothing to change. Values of binary-format
    /// text-like columns cannot be scanned; when a mask blocks binary they
    /// are withheld (sent as NULL). Unchanged values are borrowed, not copied.
    fn mask_row<'r>(
        &self,
        step: &'r gw_proto_postgres::relay::RowStep,
    ) -> anyhow::Result<Option<MaskedRow<'r>>> {
        if self.masker.is_noop() {
            return Ok(None);
        }
        let columns = step.columns.as_deref();
        let mut changed = 0u64;
        let mut values = Vec::with_capacity(step.row.values.len());
        for (i, v) in step.row.iter().enumerate() {
            let col = columns.and_then(|c| c.get(i));
            let Some(v) = v else {
                values.push(None);
                continue;
            };
            if col.is_some_and(|c| c.format == codec::Format::Binary) {
                if self.masker.blocks_binary() && col.is_some_and(is_textual) {
                    changed += 1;
                    values.push(None);
                } else {
                    values.push(Some(Cow::Borrowed(v)));
                }
                continue;
            }
            let name = col.and_then(|c| c.name.to_str()).unwrap_or("");
            let column = (!name.is_empty()).then(|| gw_mask::ColumnRef::new(None, name));
            let masked = self
                .masker
                .mask_value(column, v)
                .map_err(|e| anyhow!("masking failed, ending the session: {e}"))?;
            if matches!(masked, Cow::Owned(_)) {
                changed += 1;
            }
            values.push(Some(masked));
        }
        if changed == 0 {
            return Ok(None);
        }
        self.masked
            .fetch_add(changed, std::sync::atomic::Ordering::Relaxed);
        Ok(Some(values))
    }

    /// Errors and notices can echo values (`Key (email)=(ada@...) already
    /// exists`): their text fields are masked like any value.
    fn mask_notice(&self, msg: codec::Backend) -> anyhow::Result<codec::Backend> {
        let fields = match &msg.msg {
            BackendMessage::ErrorResponse(f) | BackendMessage::NoticeResponse(f)
                if !self.masker.is_noop() =>
            {
                f
            }
            _ => return Ok(msg),
        };
        let mut changed = false;
        let mut masked = Vec::with_capacity(fields.0.len());
        for (code, value) in &fields.0 {
            // Severity, SQLSTATE, positions and source locations are ours to
            // keep, and never scanned: only text fields can echo values.
            let text = matches!(code, b'M' | b'D' | b'H' | b'W' | b'q');
            let scanned = if text {
                self.masker
                    .mask_value(None, value.as_bytes())
                    .map_err(|e| anyhow!("masking failed, ending the session: {e}"))?
            } else {
                Cow::Borrowed(value.as_bytes())
            };
            match scanned {
                Cow::Owned(m) => {
                    changed = true;
                    masked.push((*code, codec::PgStr(Bytes::from(m))));
                }
                Cow::Borrowed(_) => masked.push((*code, value.clone())),
            }
        }
        if !changed {
            return Ok(msg);
        }
        self.masked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fields = codec::ErrorFields(masked);
        let typed = match msg.msg {
            BackendMessage::ErrorResponse(_) => BackendMessage::ErrorResponse(fields),
            _ => BackendMessage::NoticeResponse(fields),
        };
        Ok(codec::Backend {
            raw: codec::encode_backend(&typed),
            msg: typed,
        })
    }

    fn mask_copy(&self, data: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        if self.masker.is_noop() {
            return Ok(None);
        }
        // COPY text format sends one row per CopyData: each is masked whole.
        match self
            .masker
            .mask_value(None, data)
            .map_err(|e| anyhow!("masking failed, ending the session: {e}"))?
        {
            Cow::Owned(m) => {
                self.masked
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(Some(m))
            }
            Cow::Borrowed(_) => Ok(None),
        }
    }

    fn keep_row(
        &mut self,
        masked: Option<&[Option<Cow<'_, [u8]>>]>,
        step: &gw_proto_postgres::relay::RowStep,
    ) {
        let Some(open) = self.open.first_mut() else {
            return;
        };
        open.row_count += 1;
        if open.rows.len() >= self.render_rows {
            return;
        }
        let cell = |v: Option<&[u8]>| {
            v.map_or_else(String::new, |b| String::from_utf8_lossy(b).into_owned())
        };
        let row = match masked {
            Some(values) => values.iter().map(|v| cell(v.as_deref())).collect(),
            None => step.row.iter().map(cell).collect(),
        };
        open.rows.push(row);
    }

    /// Watches server messages to complete statement recordings.
    async fn observe(&mut self, msg: &BackendMessage) {
        match msg {
            BackendMessage::RowDescription(cols) => {
                if let Some(open) = self.open.first_mut() {
                    open.columns = cols
                        .iter()
                        .map(|c: &Column| c.name.to_string_lossy())
                        .collect();
                }
            }
            BackendMessage::CommandComplete(tag) => {
                if let Some(open) = self.open.first_mut() {
                    open.outcome = Some(tag.to_string_lossy());
                }
            }
            BackendMessage::ErrorResponse(fields) => {
                if let Some(open) = self.open.first_mut()
                    && open.outcome.is_none()
                {
                    let m = fields
                        .get(b'M')
                        .map(|v| v.to_string_lossy())
                        .unwrap_or_default();
                    open.outcome = Some(format!("ERROR:  {m}"));
                }
            }
            BackendMessage::ReadyForQuery(_) => {
                let opens = std::mem::take(&mut self.open);
                for open in opens {
                    self.record(open).await;
                }
            }
            _ => {}
        }
    }

    async fn record(&self, open: Open) {
        let masked = self.masked.swap(0, std::sync::atomic::Ordering::Relaxed);
        self.gw
            .metrics
            .masked_values
            .fetch_add(masked, std::sync::atomic::Ordering::Relaxed);
        let Some(rec) = &self.recorder else { return };
        let now = rec.elapsed();
        if masked > 0 {
            rec.send(RecEvent::Marker {
                t: now,
                label: format!("mask:applied values={masked}"),
            })
            .await;
        }
        // The table is rendered on the recorder's thread, off the data path.
        rec.send(RecEvent::Statement {
            t: open.started,
            text: open.text,
            decision: open.decision,
            rule: open.rule,
            result: crate::recorder::QueryResult {
                shown: open.decision == gw_recording::Decision::Allow,
                columns: open.columns,
                rows: open.rows,
                row_count: open.row_count,
                max_rows: self.render_rows,
                outcome: open.outcome,
            },
            duration: now.saturating_sub(open.started),
        })
        .await;
    }

    fn violation(&self, v: gw_proto_postgres::ProtocolViolation) -> anyhow::Error {
        let side = format!("{:?}", v.side).to_lowercase();
        crate::metrics::Metrics::inc(&self.gw.metrics.protocol_violations);
        self.gw.audit.record(&AuditEvent::ProtocolViolation {
            session: &self.id,
            side: &side,
            reason: &v.to_string(),
        });
        anyhow::Error::new(v)
    }
}

/// A stream that first yields bytes already read from it, then reads on.
struct Replay<S> {
    buffered: BytesMut,
    inner: S,
}

impl<S> Replay<S> {
    fn new(buffered: BytesMut, inner: S) -> Replay<S> {
        Replay { buffered, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        out: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if !self.buffered.is_empty() {
            let n = self.buffered.len().min(out.remaining());
            out.put_slice(&self.buffered.split_to(n));
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, out)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A DataRow's values after masking; unchanged ones are borrowed.
type MaskedRow<'r> = Vec<Option<Cow<'r, [u8]>>>;

/// Counts a session as active for as long as it lives.
struct Active<'a>(&'a crate::metrics::Metrics);

impl<'a> Active<'a> {
    fn new(m: &'a crate::metrics::Metrics) -> Active<'a> {
        m.sessions_active
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Active(m)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0
            .sessions_active
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Types whose text could hold personal data: text, varchar, bpchar, name,
/// json, jsonb, xml, unknown, and anything we do not recognise.
fn is_textual(c: &Column) -> bool {
    !matches!(
        c.type_oid,
        16 | 20 | 21 | 23 | 26 | 700 | 701 | 1082 | 1083 | 1114 | 1184 | 1186 | 1700 | 2950
    )
}

async fn forward_cancel(gw: &Gateway, pid: i32, key: &Bytes) -> anyhow::Result<()> {
    let target = gw
        .cancel_keys
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(pid, key.to_vec()))
        .cloned();
    // An unknown key is ignored silently, as PostgreSQL does.
    let Some(t) = target else { return Ok(()) };
    // A held statement is not running on the server: the cancel withdraws
    // its review instead.
    if t.held.holding.load(std::sync::atomic::Ordering::SeqCst) {
        t.held
            .cancel_requested
            .store(true, std::sync::atomic::Ordering::SeqCst);
        t.held.cancel.notify_one();
        return Ok(());
    }
    let mut up = TcpStream::connect(&t.address).await?;
    up.write_all(&codec::cancel_request(t.process_id, &t.secret_key))
        .await?;
    let mut sink = [0u8; 1];
    let _ = tokio::time::timeout(Duration::from_secs(5), up.read(&mut sink)).await;
    Ok(())
}

fn new_cancel_key() -> (i32, [u8; 4]) {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    let pid = i32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]);
    (pid, [b[4], b[5], b[6], b[7]])
}

/// Ends a connection with a FATAL error: written, flushed, and (for TLS)
/// closed with close_notify, so the client reads the reason before the
/// socket goes away.
async fn fatal<S: AsyncWrite + Unpin>(
    s: &mut S,
    sqlstate: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
) -> std::io::Result<()> {
    s.write_all(&codec::error_response(
        "FATAL", sqlstate, message, detail, hint,
    ))
    .await?;
    s.flush().await?;
    let _ = s.shutdown().await;
    Ok(())
}

/// Whether a cancelled review was withdrawn by its session (the client's
/// cancel), rather than by the requester through the API.
fn held_by_client(r: &gw_review::Review) -> bool {
    r.state == gw_review::State::Cancelled && r.session_id.is_some()
}

/// A revision for people: Git commits to 12 digits, content hashes whole.
fn short(revision: &str) -> &str {
    if revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        &revision[..12]
    } else {
        revision
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}
