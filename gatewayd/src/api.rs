//! The gateway's HTTPS API: reviews, for `gwctl review` and chat bots.
//!
//! Every request carries a gateway token (`Authorization: Bearer ...`), the
//! same token the data paths accept. What a caller sees is limited to the
//! reviews they asked for or may decide (member of the approver group); any
//! other review is "not found", so ids cannot be probed. Requests are bounded:
//! 64 KiB bodies, 10 s to send the headers, TLS only.
//!
//! Routes (JSON in, JSON out):
//! - `GET  /v1/reviews?state=pending|approved|denied|expired|cancelled|all&resource=R`
//! - `GET  /v1/reviews/{id}`
//! - `POST /v1/reviews/{id}/approve` and `/deny`, body `{"reason": "..."}`
//! - `POST /v1/reviews/{id}/cancel` (the requester)
//! - `GET  /v1/whoami`

use crate::audit::AuditEvent;
use crate::state::Gateway;
use bytes::Bytes;
use gw_review::{Filter, Review, ReviewError, ReviewId, State, Verdict};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Method, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub(crate) const MAX_BODY: usize = 64 << 10;

pub(crate) type Response = hyper::Response<Full<Bytes>>;

pub(crate) async fn serve(listener: TcpListener, gw: Arc<Gateway>, tls: tokio_rustls::TlsAcceptor) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "api accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (gw, tls) = (Arc::clone(&gw), tls.clone());
        tokio::spawn(async move {
            let Ok(Ok(stream)) =
                tokio::time::timeout(Duration::from_secs(10), tls.accept(tcp)).await
            else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let gw = Arc::clone(&gw);
                async move { Ok::<_, std::convert::Infallible>(handle(&gw, peer, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    gw: &Arc<Gateway>,
    peer: SocketAddr,
    req: hyper::Request<hyper::body::Incoming>,
) -> Response {
    let client = peer.to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let method = req.method().clone();
    // The Git host's push webhook: authenticated by its HMAC, not a token.
    if method == Method::POST && path == "/v1/policy/refresh" {
        return refresh(gw, &client, req).await;
    }
    if path.starts_with("/v1/login") {
        return crate::login_api::handle(gw, &client, req).await;
    }
    let token = match authenticate(gw, &req) {
        Ok(t) => t,
        Err(why) => {
            gw.audit.record(&AuditEvent::ApiRefused {
                client: &client,
                principal: None,
                path: &path,
                reason: &why,
            });
            return error(StatusCode::UNAUTHORIZED, "unauthenticated", &why);
        }
    };
    let principal = gw_review::Principal {
        subject: token.principal.subject.clone(),
        groups: token.principal.groups.clone(),
    };
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "the request body is larger than 64 KiB",
            );
        }
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let response = match (&method, segments.as_slice()) {
        (&Method::GET, ["v1", "whoami"]) => json(
            StatusCode::OK,
            &serde_json::json!({"subject": principal.subject, "groups": principal.groups}),
        ),
        (&Method::GET, ["v1", "status"]) => {
            let mut v = crate::admin::status(gw, &gw.policy());
            v["you"] =
                serde_json::json!({"subject": principal.subject, "groups": principal.groups});
            json(StatusCode::OK, &v)
        }
        (&Method::GET, ["v1", "reviews"]) => list(gw, &principal, &query).await,
        (&Method::POST, ["v1", "logout"]) => crate::login_api::logout(gw, &token),
        (&Method::POST, ["v1", "token", "refresh"]) => crate::login_api::refresh(gw, &token).await,
        (&Method::POST, ["v1", "tokens", "revoke"]) => crate::login_api::revoke(gw, &token, &body),
        (&Method::GET, ["v1", "resources"]) => crate::login_api::resources(gw, &token),
        (&Method::POST, ["v1", "ssh", "certificate"]) => {
            crate::login_api::ssh_certificate(gw, &token, &body)
        }
        (&Method::GET, ["v1", "reviews", id]) => show(gw, &principal, id).await,
        (&Method::POST, ["v1", "reviews", id, action]) => {
            act(gw, &principal, id, action, &body).await
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such endpoint; see `gwctl review --help`",
        ),
    };
    if response.status() == StatusCode::FORBIDDEN {
        gw.audit.record(&AuditEvent::ApiRefused {
            client: &client,
            principal: Some(&principal.subject),
            path: &path,
            reason: "forbidden",
        });
    }
    response
}

/// `POST /v1/policy/refresh`: fetch the policy now. The body is ignored;
/// `X-Hub-Signature-256: sha256=HMAC(secret, body)` must verify (GitHub's
/// scheme, which Gitea and Forgejo also send).
async fn refresh(
    gw: &Gateway,
    client: &str,
    req: hyper::Request<hyper::body::Incoming>,
) -> Response {
    let secret = match &gw.config.policy {
        crate::config::PolicySource::Git(g) => g.webhook_secret.clone(),
        crate::config::PolicySource::Directory { .. } => None,
    };
    let Some(secret) = secret else {
        return error(
            StatusCode::NOT_FOUND,
            "not-found",
            "the refresh webhook is off: configure `policy git=.. webhook-secret=..`",
        );
    };
    let signature = req
        .headers()
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = match Limited::new(req.into_body(), MAX_BODY * 16).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "too-large", "body too large"),
    };
    let key = match crate::secrets::resolve(&secret) {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the policy webhook secret cannot be read");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the webhook secret is not available",
            );
        }
    };
    if !crate::policy::webhook_signature_ok(key.as_bytes(), &body, &signature) {
        gw.audit.record(&AuditEvent::ApiRefused {
            client,
            principal: None,
            path: "/v1/policy/refresh",
            reason: "bad or missing X-Hub-Signature-256",
        });
        return error(
            StatusCode::UNAUTHORIZED,
            "bad-signature",
            "X-Hub-Signature-256 does not match the body",
        );
    }
    gw.policy_refresh.notify_one();
    json(
        StatusCode::ACCEPTED,
        &serde_json::json!({"refresh": "scheduled"}),
    )
}

fn authenticate(
    gw: &Gateway,
    req: &hyper::Request<hyper::body::Incoming>,
) -> Result<gw_identity::Token, String> {
    let header = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or("no gateway token: send `Authorization: Bearer TOKEN`")?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or("the Authorization header must be `Bearer TOKEN`")?;
    crate::identity::verify(gw, token).map_err(|e| format!("gateway token refused: {e}"))
}

/// Whether `p` may see `r`: they asked for it, or may decide it.
fn visible(p: &gw_review::Principal, r: &Review) -> bool {
    r.requester.subject == p.subject || p.groups.contains(&r.approvers)
}

async fn list(gw: &Gateway, p: &gw_review::Principal, query: &str) -> Response {
    let mut filter = Filter {
        state: Some(State::Pending),
        ..Filter::default()
    };
    for (k, v) in query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
    {
        match k {
            "state" if v == "all" => filter.state = None,
            "state" => match State::parse(v) {
                Some(s) => filter.state = Some(s),
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "bad-request",
                        "state must be pending, approved, denied, expired, cancelled or all",
                    );
                }
            },
            "resource" => filter.resource = Some(v.to_owned()),
            _ => {}
        }
    }
    let now = match crate::reviews::sweep(gw).await {
        Ok(now) => now,
        Err(e) => return store_error(&e),
    };
    match gw.reviews.list(filter, now).await {
        Ok(all) => {
            let mine: Vec<&Review> = all.iter().filter(|r| visible(p, r)).collect();
            json(
                StatusCode::OK,
                &serde_json::json!({"reviews": mine, "now": now}),
            )
        }
        Err(e) => store_error(&e),
    }
}

async fn show(gw: &Gateway, p: &gw_review::Principal, id: &str) -> Response {
    let id = match ReviewId::parse(id) {
        Ok(id) => id,
        Err(e) => return store_error(&e),
    };
    let now = match crate::reviews::sweep(gw).await {
        Ok(now) => now,
        Err(e) => return store_error(&e),
    };
    match gw.reviews.get(&id, now).await {
        Ok(r) if visible(p, &r) => json(
            StatusCode::OK,
            &serde_json::json!({"review": r, "now": now}),
        ),
        Ok(_) => store_error(&ReviewError::UnknownReview { id }),
        Err(e) => store_error(&e),
    }
}

async fn act(
    gw: &Gateway,
    p: &gw_review::Principal,
    id: &str,
    action: &str,
    body: &[u8],
) -> Response {
    let id = match ReviewId::parse(id) {
        Ok(id) => id,
        Err(e) => return store_error(&e),
    };
    let reason = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > 2000 {
        return error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "a reason is required (at most 2000 bytes): the audit log keeps it with the decision",
        );
    }
    // No visibility check here: the rules refuse outsiders with a message
    // that says why (not an approver, not yours), and ids are unguessable.
    let result = match action {
        "approve" => crate::reviews::decide(gw, &id, p, Verdict::Approve, reason).await,
        "deny" => crate::reviews::decide(gw, &id, p, Verdict::Deny, reason).await,
        "cancel" => {
            crate::reviews::cancel(
                gw,
                &id,
                crate::reviews::Cancel::Requester(p.subject.clone()),
                reason,
            )
            .await
        }
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "not-found",
                "the actions are approve, deny and cancel",
            );
        }
    };
    match result {
        Ok(r) => json(
            StatusCode::OK,
            &serde_json::json!({"review": r, "now": crate::audit::unix_now()}),
        ),
        Err(e) => store_error(&e),
    }
}

fn store_error(e: &ReviewError) -> Response {
    let (status, code) = match e {
        ReviewError::NotAnApprover { .. } => (StatusCode::FORBIDDEN, "not-an-approver"),
        ReviewError::SelfApproval { .. } => (StatusCode::FORBIDDEN, "self-approval"),
        ReviewError::NotYours { .. } => (StatusCode::FORBIDDEN, "not-yours"),
        ReviewError::AlreadyDecided { .. } => (StatusCode::CONFLICT, "already-decided"),
        ReviewError::Expired { .. } => (StatusCode::CONFLICT, "expired"),
        ReviewError::AlreadyApproved { .. } => (StatusCode::CONFLICT, "already-approved"),
        ReviewError::UnknownReview { .. } => (StatusCode::NOT_FOUND, "unknown-review"),
        ReviewError::InvalidId { .. } => (StatusCode::BAD_REQUEST, "invalid-id"),
        _ => {
            tracing::error!(error = %e, "review store failure");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "the review store is unavailable; nothing was changed",
            );
        }
    };
    error(status, code, &e.to_string())
}

pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json(
        status,
        &serde_json::json!({"error": {"code": code, "message": message}}),
    )
}

pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}
