//! The admin endpoints: liveness, readiness, and the policy status. A tiny
//! HTTP/1.1 responder on std: three read-only routes need no framework, and
//! every request is bounded (one line, 8 KiB of headers, 5 s).

use crate::state::{Gateway, Loaded};
use gw_policy::diagnostic::json_str;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn serve(listener: TcpListener, gw: Arc<Gateway>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let gw = Arc::clone(&gw);
        std::thread::spawn(move || {
            let _ = handle(stream, &gw);
        });
    }
}

fn handle(stream: TcpStream, gw: &Gateway) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?.take(8192));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let (status, ctype, body) = route(path, gw);
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

const JSON: &str = "application/json";

fn route(path: &str, gw: &Gateway) -> (&'static str, &'static str, String) {
    let loaded = gw.policy();
    match path {
        "/healthz" => ("200 OK", JSON, "{\"status\":\"ok\"}\n".into()),
        // Ready means a valid policy is in force; with none, the gateway is
        // alive (and denies everything) but should not receive traffic.
        "/readyz" => match &loaded.rejected {
            None => ("200 OK", JSON, "{\"ready\":true}\n".into()),
            Some(why) => (
                "503 Service Unavailable",
                JSON,
                format!("{{\"ready\":false,\"reason\":{}}}\n", json_str(why)),
            ),
        },
        "/status" => ("200 OK", JSON, format!("{}\n", status(gw, &loaded))),
        "/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4",
            gw.metrics
                .render(loaded.rejected.is_none(), gw.reviews.hooks.dropped()),
        ),
        _ => ("404 Not Found", JSON, "{\"error\":\"not found\"}\n".into()),
    }
}

/// The gateway's state as JSON: the policy in force, the latest rejected
/// candidate and the latest fetch. Shared with the API's `/v1/status`.
pub(crate) fn status(gw: &Gateway, l: &Loaded) -> serde_json::Value {
    let p = &l.policy;
    let st = gw.policy_status.lock().unwrap_or_else(|e| e.into_inner());
    let time = |t: u64| gw_recording::rfc3339(t.saturating_mul(1_000_000));
    serde_json::json!({
        "gateway": gw.config.gateway_id,
        "policy": {
            "state": if l.rejected.is_some() { "deny-all" } else { "active" },
            "rejected_because": l.rejected,
            "source": gw.config.policy.describe(),
            "revision": l.revision,
            "applied_at": st.applied_at.map(time),
            "files": l.files,
            "resources": p.resources.len(),
            "grants": p.grants.len(),
            "guards": p.guards.len(),
            "masks": p.masks.len(),
            "tests_passed": l.tests_passed,
            "rejected_revision": st.rejected.as_ref().map(|r| serde_json::json!({
                "revision": r.revision, "reason": r.reason, "at": time(r.at),
            })),
            "last_fetch": st.fetch.as_ref().map(|f| serde_json::json!({
                "at": time(f.at), "commit": f.commit, "error": f.error,
            })),
        },
    })
}
