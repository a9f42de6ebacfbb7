//! Review notifications to webhooks, off the data path.
//!
//! `Hooks::send` only puts the event on a bounded queue (a full queue drops
//! it, counted and logged, rather than slowing a session). One task takes
//! events off the queue and starts a delivery per receiver, each retried with
//! backoff on its own, so a receiver that is down delays nobody, not even the
//! other receivers.
//!
//! Two bodies: `generic` JSON signed with HMAC-SHA256 over
//! `"{timestamp}.{body}"` (headers `x-gateway-timestamp` and
//! `x-gateway-signature: sha256=HEX`; receivers should reject timestamps more
//! than a few minutes old), and `slack`: `{"text": ...}`, which Slack and
//! most chat tools accept. Neither contains secrets; both contain the
//! command under review, since approvers must see what they approve.

use crate::config::{HookFormat, UrlSource, Webhook};
use crate::state::Gateway;
use hmac::{Hmac, Mac as _};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Events waiting for delivery, at most; more are dropped (and counted).
const QUEUE: usize = 1024;
/// Attempts per event and receiver, with 1, 2, 4, 8, 16 s between them.
const ATTEMPTS: u32 = 6;
const TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Notification {
    pub(crate) event: &'static str,
    pub(crate) by: String,
    pub(crate) reason: String,
    pub(crate) review: gw_review::Review,
}

/// The sending side, held by the review module.
pub(crate) struct Hooks {
    tx: Option<mpsc::Sender<Notification>>,
    /// Notifications dropped because the queue was full (a metric).
    dropped: std::sync::atomic::AtomicU64,
}

/// A receiver with its URL and key resolved.
struct Receiver {
    url: String,
    /// Scheme and host only, for logs: webhook paths are often secrets.
    shown: String,
    format: HookFormat,
    key: Option<Vec<u8>>,
}

impl Hooks {
    /// No receivers: events go nowhere.
    pub(crate) fn none() -> Hooks {
        Hooks {
            tx: None,
            dropped: Default::default(),
        }
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn send(&self, n: Notification) {
        let Some(tx) = &self.tx else { return };
        if tx.try_send(n).is_err() {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::error!("the webhook queue is full; a review notification was dropped");
        }
    }
}

/// Resolves every receiver's URL and secret (failing startup if one cannot
/// be resolved) and returns the sender and what `deliver` needs.
pub(crate) fn prepare(hooks: &[Webhook]) -> anyhow::Result<(Hooks, Option<Pending>)> {
    if hooks.is_empty() {
        return Ok((Hooks::none(), None));
    }
    let mut receivers = Vec::new();
    for h in hooks {
        let url = match &h.url {
            UrlSource::Literal(u) => u.clone(),
            UrlSource::Secret(r) => crate::secrets::resolve(r)?,
        };
        let key = match &h.secret {
            Some(r) => Some(crate::secrets::resolve(r)?.into_bytes()),
            None => None,
        };
        receivers.push(Receiver {
            shown: shown(&url),
            url,
            format: h.format,
            key,
        });
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    let hooks = Hooks {
        tx: Some(tx),
        dropped: Default::default(),
    };
    Ok((hooks, Some(Pending { rx, receivers })))
}

/// The receiving side, until the gateway exists to run it.
pub(crate) struct Pending {
    rx: mpsc::Receiver<Notification>,
    receivers: Vec<Receiver>,
}

/// Delivers queued events until the gateway stops.
pub(crate) async fn deliver(gw: Arc<Gateway>, pending: Pending) -> anyhow::Result<()> {
    let Pending { mut rx, receivers } = pending;
    let client = gw_http::Client::new(&[])?;
    let receivers: Vec<Arc<Receiver>> = receivers.into_iter().map(Arc::new).collect();
    while let Some(n) = rx.recv().await {
        for r in &receivers {
            let body = body(r.format, &gw.config.gateway_id, &n);
            let (gw, client, r) = (Arc::clone(&gw), client.clone(), Arc::clone(r));
            let event = n.event;
            let id = n.review.id.to_string();
            tokio::spawn(async move { deliver_one(&gw, &client, &r, event, &id, body).await });
        }
    }
    Ok(())
}

async fn deliver_one(
    gw: &Gateway,
    client: &gw_http::Client,
    r: &Receiver,
    event: &str,
    review: &str,
    body: Vec<u8>,
) {
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=ATTEMPTS {
        let ts = crate::audit::unix_now().to_string();
        let mut req = gw_http::Request::post_json(&r.url, body.clone())
            .header("x-gateway-event", format!("review.{event}"))
            .header("x-gateway-timestamp", ts.clone());
        if let Some(key) = &r.key {
            req = req.header("x-gateway-signature", signature(key, &ts, &body));
        }
        let outcome = match client.send(req, TIMEOUT).await {
            Ok(resp) if resp.is_success() => Ok(()),
            Ok(resp) => Err(format!("HTTP status {}", resp.status)),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                crate::metrics::Metrics::inc(&gw.metrics.webhook_deliveries);
                tracing::debug!(receiver = %r.shown, review, event, attempt, "webhook delivered");
                return;
            }
            Err(why) if attempt < ATTEMPTS => {
                tracing::warn!(receiver = %r.shown, review, event, attempt, error = %why, retry_in_s = delay.as_secs(), "webhook delivery failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(why) => {
                crate::metrics::Metrics::inc(&gw.metrics.webhook_failures);
                tracing::error!(receiver = %r.shown, review, event, attempts = ATTEMPTS, error = %why, "webhook delivery failed; giving up");
            }
        }
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub(crate) fn signature(key: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        <Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256=");
    for b in tag {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

fn body(format: HookFormat, gateway: &str, n: &Notification) -> Vec<u8> {
    let r = &n.review;
    let value = match format {
        HookFormat::Generic => serde_json::json!({
            "event": format!("review.{}", n.event),
            "gateway": gateway,
            "at": gw_recording::rfc3339(crate::audit::now_us()),
            "by": n.by,
            "reason": n.reason,
            "review": r,
            "approve_with": crate::reviews::approve_hint(&r.id),
        }),
        HookFormat::Slack => serde_json::json!({ "text": slack_text(n) }),
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

fn slack_text(n: &Notification) -> String {
    let r = &n.review;
    let what = match &r.command {
        Some(c) => format!("\n```{}```", c.replace("```", "'''")),
        None => " (an access window)".to_owned(),
    };
    match n.event {
        "requested" => format!(
            "*{}* asks to run on `{}`{what}\nNeeds {} approval(s) from `{}` before <!date^{}^{{time}}|expiry>. Review `{}`:\n`{}`",
            r.requester.subject,
            r.resource,
            r.quorum,
            r.approvers,
            r.expires_at,
            r.id,
            crate::reviews::approve_hint(&r.id)
        ),
        _ => {
            let reason = if n.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", n.reason)
            };
            format!(
                "Review `{}` ({} on `{}`): *{}* by {}{reason}",
                r.id, r.requester.subject, r.resource, n.event, n.by
            )
        }
    }
}

fn shown(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or("");
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    format!("{scheme}://{host}/…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently with Python:
        // hmac.new(b"key", b"1700000000.{}", "sha256").hexdigest()
        assert_eq!(
            signature(b"key", "1700000000", b"{}"),
            "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }

    #[test]
    fn logs_show_only_scheme_and_host() {
        assert_eq!(
            shown("https://hooks.slack.com/services/T0/B0/SECRET"),
            "https://hooks.slack.com/…"
        );
    }
}
