//! The login half of the API: OpenID logins that end in a gateway token,
//! logout and revocation, and what a principal may connect to.
//!
//! - `GET  /v1/login[?cli_redirect=http://127.0.0.1:PORT/..&cli_challenge=SHA256HEX]`
//!   → redirect to the provider (code flow with PKCE)
//! - `GET  /v1/login/callback?code=..&state=..` → the token page, or a
//!   redirect to the CLI's loopback address with a one-time handoff
//! - `POST /v1/login/handoff {"handoff", "secret"}` → the token
//! - `POST /v1/login/device` → user code and URL; `POST /v1/login/device/HANDLE`
//!   → 202 while pending, then the token once
//! - `POST /v1/logout`, `POST /v1/tokens/revoke`, `GET /v1/resources` (with a token)

use crate::api::{MAX_BODY, Response, error, json};
use crate::audit::AuditEvent;
use crate::state::Gateway;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Method, StatusCode};
use std::sync::Arc;

pub(crate) async fn handle(
    gw: &Arc<Gateway>,
    client: &str,
    req: hyper::Request<hyper::body::Incoming>,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let param = |k: &str| query_param(&query, k);
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "too-large", "body too large"),
    };
    let field = |k: &str| {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get(k).and_then(|x| x.as_str()).map(str::to_owned))
    };
    // Service accounts and break-glass principals need no identity provider.
    if method == Method::POST && path == "/v1/login/secret" {
        return secret_login(gw, client, field("account"), field("secret")).await;
    }
    let Some(oidc) = gw.oidc.as_ref() else {
        return error(
            StatusCode::NOT_FOUND,
            "no-identity-provider",
            "this gateway has no identity provider configured; ask for a token minted with `gatewayd token`",
        );
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["v1", "login"]) => {
            let cli = match (param("cli_redirect"), param("cli_challenge")) {
                (None, None) => None,
                (Some(r), Some(c)) if loopback(&r) && is_hex64(&c) => Some((r, c)),
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "bad-request",
                        "cli_redirect must be an http://127.0.0.1 or http://localhost address, with a 64-digit hex cli_challenge",
                    );
                }
            };
            match oidc.start_code(cli).await {
                Ok(url) => redirect(&url),
                Err(why) => error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "provider-unavailable",
                    &why,
                ),
            }
        }
        (&Method::GET, ["v1", "login", "callback"]) => {
            if let Some(e) = param("error") {
                let why = format!(
                    "the identity provider said {e}: {}",
                    param("error_description").unwrap_or_default()
                );
                return failed(gw, "oidc-code", client, &why);
            }
            let (Some(code), Some(state)) = (param("code"), param("state")) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    "missing code or state",
                );
            };
            match oidc.finish_code(gw, &code, &state).await {
                Ok((_, Some(handoff))) => redirect(&handoff),
                Ok((issued, None)) => token_page(&issued),
                Err(why) => failed(gw, "oidc-code", client, &why),
            }
        }
        (&Method::POST, ["v1", "login", "handoff"]) => match (field("handoff"), field("secret")) {
            (Some(h), Some(s)) => match oidc.redeem(&h, &s) {
                Some(issued) => json(StatusCode::OK, &serde_json::json!(issued)),
                None => error(
                    StatusCode::NOT_FOUND,
                    "unknown-handoff",
                    "no such login, or the secret does not match; log in again",
                ),
            },
            _ => error(
                StatusCode::BAD_REQUEST,
                "bad-request",
                "need handoff and secret",
            ),
        },
        (&Method::POST, ["v1", "login", "device"]) => {
            match oidc.start_device(Arc::clone(gw)).await {
                Ok(start) => json(StatusCode::OK, &serde_json::json!(start)),
                Err(why) => error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "provider-unavailable",
                    &why,
                ),
            }
        }
        (&Method::POST, ["v1", "login", "device", handle]) => match oidc.poll_device(handle) {
            crate::oidc::DevicePoll::Pending => json(
                StatusCode::ACCEPTED,
                &serde_json::json!({"status": "pending"}),
            ),
            crate::oidc::DevicePoll::Done(issued) => {
                json(StatusCode::OK, &serde_json::json!(issued))
            }
            crate::oidc::DevicePoll::Failed(why) => {
                error(StatusCode::FORBIDDEN, "login-failed", &why)
            }
            crate::oidc::DevicePoll::Unknown => error(
                StatusCode::NOT_FOUND,
                "unknown-login",
                "no such login in progress; start again with `gwctl login`",
            ),
        },
        _ => error(StatusCode::NOT_FOUND, "not-found", "no such login endpoint"),
    }
}

/// `POST /v1/login/secret {"account", "secret"}`: a service account or a
/// break-glass principal declared in the policy logs in with its secret.
/// Break-glass use is loud: an error in the log, an audit event, a metric.
async fn secret_login(
    gw: &Gateway,
    client: &str,
    account: Option<String>,
    secret: Option<String>,
) -> Response {
    let (Some(name), Some(secret)) = (account, secret) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "need account and secret",
        );
    };
    let loaded = gw.policy();
    let digest: [u8; 32] = {
        use sha2::Digest as _;
        sha2::Sha256::digest(secret.as_bytes()).into()
    };
    let found = loaded
        .policy
        .accounts
        .iter()
        .find(|a| a.name == name && constant_time_eq(&a.secret_sha256, &digest));
    let Some(account) = found else {
        // Slow every wrong guess down; secrets are 256 bits anyway.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        gw.audit.record(&AuditEvent::LoginFailed {
            method: "secret",
            reason: &format!(
                "unknown account or wrong secret for \"{}\" from {client}",
                name.chars().take(64).collect::<String>()
            ),
        });
        return error(
            StatusCode::FORBIDDEN,
            "login-failed",
            "unknown account or wrong secret",
        );
    };
    let principal = gw_policy::Principal {
        subject: account.subject(),
        groups: account.groups.clone(),
    };
    let method = account.kind.name();
    let (token, t) = match crate::identity::issue(gw, &principal, method) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "minting a token failed");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "could not issue a token",
            );
        }
    };
    if account.kind == gw_policy::model::AccountKind::BreakGlass {
        crate::metrics::Metrics::inc(&gw.metrics.break_glass);
        tracing::error!(account = %account.name, client, token = %t.id, "BREAK-GLASS login: every use of this token is audited and marked in its recordings");
        gw.audit.record(&AuditEvent::BreakGlassUsed {
            account: &account.name,
            client,
            token_id: &t.id,
        });
    }
    json(
        StatusCode::OK,
        &serde_json::json!(crate::oidc::Issued {
            token,
            token_id: t.id,
            subject: principal.subject,
            groups: principal.groups,
            expires_at: t.expires_at,
        }),
    )
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn failed(gw: &Gateway, method: &str, client: &str, why: &str) -> Response {
    tracing::warn!(method, client, reason = %why, "login failed");
    gw.audit.record(&AuditEvent::LoginFailed {
        method,
        reason: why,
    });
    error(StatusCode::FORBIDDEN, "login-failed", why)
}

/// `POST /v1/token/refresh`: a new token for the same login, through the
/// provider's refresh grant.
pub(crate) async fn refresh(gw: &Gateway, t: &gw_identity::Token) -> Response {
    let Some(oidc) = gw.oidc.as_ref() else {
        return error(
            StatusCode::CONFLICT,
            "not-renewable",
            "no identity provider is configured; tokens cannot be renewed",
        );
    };
    match oidc.refresh(gw, t).await {
        Ok(issued) => json(StatusCode::OK, &serde_json::json!(issued)),
        Err(why) => error(StatusCode::CONFLICT, "not-renewable", &why),
    }
}

/// `POST /v1/logout`: revokes the presented token.
pub(crate) fn logout(gw: &Gateway, t: &gw_identity::Token) -> Response {
    match gw.revocations.revoke_token(
        &t.id,
        &t.principal.subject,
        t.expires_at,
        &t.principal.subject,
    ) {
        Ok(()) => {
            gw.audit.record(&AuditEvent::TokensRevoked {
                by: &t.principal.subject,
                token_id: Some(&t.id),
                principal: None,
            });
            json(StatusCode::OK, &serde_json::json!({"revoked": t.id}))
        }
        Err(e) => store_failed(&e),
    }
}

/// `POST /v1/tokens/revoke {"token_id": ..}` or `{"principal": ..}`: for
/// members of an `identity { admins .. }` group (anyone may revoke their
/// own tokens by id or all of their own).
pub(crate) fn revoke(gw: &Gateway, t: &gw_identity::Token, body: &Bytes) -> Response {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let admin = t
        .principal
        .groups
        .iter()
        .any(|g| gw.config.identity.admins.contains(g));
    let by = t.principal.subject.as_str();
    if let Some(subject) = v.get("principal").and_then(|p| p.as_str()) {
        if !admin && subject != by {
            return error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "only members of an identity admins group may revoke other people's tokens",
            );
        }
        return match gw.revocations.revoke_principal(subject, by) {
            Ok(()) => {
                gw.audit.record(&AuditEvent::TokensRevoked {
                    by,
                    token_id: None,
                    principal: Some(subject),
                });
                json(
                    StatusCode::OK,
                    &serde_json::json!({"revoked_principal": subject}),
                )
            }
            Err(e) => store_failed(&e),
        };
    }
    let Some(id) = v.get("token_id").and_then(|p| p.as_str()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "send {\"token_id\": ..} or {\"principal\": ..}",
        );
    };
    if !admin && id != t.id {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only members of an identity admins group may revoke other tokens by id",
        );
    }
    // Kept until the longest possible lifetime has passed.
    let until = crate::audit::unix_now() + gw_identity::MAX_LIFETIME_SECS + 3600;
    match gw.revocations.revoke_token(id, "", until, by) {
        Ok(()) => {
            gw.audit.record(&AuditEvent::TokensRevoked {
                by,
                token_id: Some(id),
                principal: None,
            });
            json(StatusCode::OK, &serde_json::json!({"revoked": id}))
        }
        Err(e) => store_failed(&e),
    }
}

/// `GET /v1/resources`: what the caller may connect to now, and where.
pub(crate) fn resources(gw: &Gateway, t: &gw_identity::Token) -> Response {
    let loaded = gw.policy();
    let now = crate::audit::unix_now();
    let list: Vec<serde_json::Value> = loaded
        .policy
        .resources
        .iter()
        .filter_map(|r| {
            let d = loaded.policy.decide_session(&t.principal, &r.name, now);
            let access = match d.decision.verdict {
                gw_policy::Verdict::Allow | gw_policy::Verdict::Log => "allowed",
                gw_policy::Verdict::Review => "needs-approval",
                gw_policy::Verdict::Deny => return None,
            };
            Some(serde_json::json!({
                "name": r.name, "kind": r.kind.name(), "access": access,
            }))
        })
        .collect();
    let port = |a: &Option<String>| {
        a.as_deref()
            .and_then(|a| a.rsplit_once(':'))
            .and_then(|(_, p)| p.parse::<u16>().ok())
    };
    json(
        StatusCode::OK,
        &serde_json::json!({
            "resources": list,
            "listeners": {
                "postgres": port(&gw.config.listen_postgres),
                "ssh": port(&gw.config.listen_ssh),
            },
            "subject": t.principal.subject,
        }),
    )
}

/// `POST /v1/ssh/certificate {"public_key": "ssh-ed25519 ..."}`: an
/// OpenSSH user certificate for the caller's key, valid as long as the
/// token, so `ssh` through the gateway needs no prompt.
pub(crate) fn ssh_certificate(gw: &Gateway, t: &gw_identity::Token, body: &Bytes) -> Response {
    if gw.config.listen_ssh.is_none() {
        return error(
            StatusCode::NOT_FOUND,
            "no-ssh",
            "this gateway has no SSH listener",
        );
    }
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let Some(key) = v.get("public_key").and_then(|k| k.as_str()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "send {\"public_key\": \"ssh-ed25519 ...\"}",
        );
    };
    match crate::ssh::sign_user_certificate(gw, t, key) {
        Ok(cert) => {
            gw.audit.record(&AuditEvent::SshCertificateIssued {
                principal: &t.principal.subject,
                token_id: &t.id,
                expires_at: t.expires_at,
            });
            json(
                StatusCode::OK,
                &serde_json::json!({"certificate": cert, "expires_at": t.expires_at}),
            )
        }
        Err(e) => error(StatusCode::BAD_REQUEST, "bad-request", &format!("{e:#}")),
    }
}

fn store_failed(e: &anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "the identity store failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "store-unavailable",
        "the identity store is unavailable; nothing was revoked",
    )
}

fn redirect(url: &str) -> Response {
    let mut r = hyper::Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = hyper::header::HeaderValue::from_str(url) {
        r.headers_mut().insert(hyper::header::LOCATION, v);
    }
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}

/// The page a browser-only login ends on: who you are and your token.
fn token_page(i: &crate::oidc::Issued) -> Response {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let html = format!(
        "<!doctype html><meta charset=utf-8><title>Logged in</title>\
         <h1>Logged in as {}</h1><p>Groups: {}</p>\
         <p>Your gateway token (use it as the database password, valid until {}):</p>\
         <pre style=\"white-space:pre-wrap;word-break:break-all\">{}</pre>\
         <p>Command-line users: <code>gwctl login</code> stores it for you.</p>",
        esc(&i.subject),
        esc(&i.groups.join(", ")),
        gw_recording::rfc3339(i.expires_at.saturating_mul(1_000_000)),
        esc(&i.token)
    );
    let mut r = hyper::Response::new(Full::new(Bytes::from(html)));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}

/// Only loopback HTTP addresses may receive a CLI handoff.
fn loopback(url: &str) -> bool {
    ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
        .iter()
        .any(|p| url.starts_with(p))
        && !url.contains('@')
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A percent-decoded query parameter.
pub(crate) fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_redirects_are_accepted() {
        assert!(loopback("http://127.0.0.1:4711/callback"));
        assert!(loopback("http://localhost:80/"));
        for bad in [
            "https://evil.example.com/",
            "http://127.0.0.1.evil.com/",
            "http://127.0.0.1:1@evil.com/",
            "http://10.0.0.1:80/",
        ] {
            assert!(!loopback(bad), "{bad}");
        }
    }

    #[test]
    fn query_parameters_are_decoded() {
        let q = "a=1&cli_redirect=http%3A%2F%2F127.0.0.1%3A5%2Fcb&e=%zz&f=x+y&g=%4";
        assert_eq!(
            query_param(q, "cli_redirect").unwrap(),
            "http://127.0.0.1:5/cb"
        );
        assert_eq!(query_param(q, "e").unwrap(), "%zz");
        assert_eq!(query_param(q, "f").unwrap(), "x y");
        assert_eq!(query_param(q, "g").unwrap(), "%4");
        assert_eq!(query_param(q, "missing"), None);
    }
}
