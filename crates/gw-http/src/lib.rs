//! A small HTTP/1.1 client: one request per connection, over TLS (rustls)
//! or plain TCP, with a deadline on the whole exchange and a cap on the
//! response body. `gwctl` uses it to talk to the gateway's API and the
//! gateway uses it to deliver webhooks.
//!
//! Built on hyper's connection-level client rather than a full client
//! library: no pooling, no redirects (a webhook that redirects is not
//! followed: that is how SSRF starts), no proxies, no cookies. The TLS trust
//! store is the Mozilla roots (`webpki-roots`) plus any CA files the caller
//! adds, such as the gateway's development certificate.
//!
//! **Invariants:** a response body larger than [`MAX_BODY`] is an error, not
//! a truncation; the deadline covers connect, TLS, request and body; errors
//! never contain request headers or bodies (they may carry secrets).
#![forbid(unsafe_code)]

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::Uri;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// Largest response body read: API answers and webhook replies are small.
pub const MAX_BODY: usize = 4 << 20;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid URL {url:?}: {why}")]
    Url { url: String, why: &'static str },
    #[error("reading CA file {path}: {why}")]
    Ca { path: String, why: String },
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with {host} failed: {source}")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP exchange with {host} failed: {source}")]
    Http {
        host: String,
        #[source]
        source: hyper::Error,
    },
    #[error("{host} took longer than {secs} s to answer")]
    Timeout { host: String, secs: u64 },
    #[error("the response from {host} is larger than {MAX_BODY} bytes")]
    TooLarge { host: String },
}

/// A status and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names in lowercase; values that are not visible ASCII are left out.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: Vec<(&'a str, String)>,
    pub body: Vec<u8>,
}

impl<'a> Request<'a> {
    pub fn get(url: &'a str) -> Request<'a> {
        Request {
            method: "GET",
            url,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A POST with a JSON body.
    pub fn post_json(url: &'a str, body: Vec<u8>) -> Request<'a> {
        Request {
            method: "POST",
            url,
            headers: vec![("content-type", "application/json".to_owned())],
            body,
        }
    }

    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Request<'a> {
        self.headers.push((name, value.into()));
        self
    }
}

/// A client with its trust store. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    tls: tokio_rustls::TlsConnector,
}

impl Client {
    /// Trusts the Mozilla root CAs and every certificate in `ca_files`.
    pub fn new(ca_files: &[&Path]) -> Result<Client, Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for path in ca_files {
            let fail = |why: String| Error::Ca {
                path: path.display().to_string(),
                why,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| fail(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| fail(e.to_string()))?;
            if certs.is_empty() {
                return Err(fail("no PEM certificate in it".into()));
            }
            for c in certs {
                roots.add(c).map_err(|e| fail(e.to_string()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Ca {
                path: String::new(),
                why: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Client {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    /// Sends one request and reads the whole response, within `timeout`.
    pub async fn send(&self, req: Request<'_>, timeout: Duration) -> Result<Response, Error> {
        let target = Target::parse(req.url)?;
        let host = target.host.clone();
        match tokio::time::timeout(timeout, self.exchange(&target, req)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                host,
                secs: timeout.as_secs(),
            }),
        }
    }

    async fn exchange(&self, t: &Target, req: Request<'_>) -> Result<Response, Error> {
        let addr = format!("{}:{}", t.host, t.port);
        let tcp = TcpStream::connect(&addr)
            .await
            .map_err(|source| Error::Connect {
                addr: addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let mut builder = hyper::Request::builder()
            .method(req.method)
            .uri(t.path.as_str())
            .header("host", t.authority.as_str())
            .header("user-agent", concat!("gw-http/", env!("CARGO_PKG_VERSION")))
            .header("content-length", req.body.len());
        for (name, value) in &req.headers {
            builder = builder.header(*name, value.as_str());
        }
        let request = builder
            .body(Full::new(Bytes::from(req.body)))
            .map_err(|_| Error::Url {
                url: t.authority.clone(),
                why: "a header name or value is not valid HTTP",
            })?;
        if t.tls {
            let name =
                ServerName::try_from(t.host.trim_matches(['[', ']']).to_owned()).map_err(|_| {
                    Error::Url {
                        url: t.authority.clone(),
                        why: "the host is not a valid TLS server name",
                    }
                })?;
            let stream = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|source| Error::Tls {
                    host: t.host.clone(),
                    source,
                })?;
            round_trip(stream, request, &t.host).await
        } else {
            round_trip(tcp, request, &t.host).await
        }
    }
}

async fn round_trip<S>(
    stream: S,
    request: hyper::Request<Full<Bytes>>,
    host: &str,
) -> Result<Response, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let http = |source| Error::Http {
        host: host.to_owned(),
        source,
    };
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(http)?;
    let driver = tokio::spawn(conn);
    let response = sender.send_request(request).await.map_err(http);
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            driver.abort();
            return Err(e);
        }
    };
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| match e.downcast::<hyper::Error>() {
            Ok(e) => http(*e),
            Err(_) => Error::TooLarge {
                host: host.to_owned(),
            },
        })?
        .to_bytes()
        .to_vec();
    driver.abort();
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Where a URL points.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
    /// `host[:port]` as the Host header carries it.
    authority: String,
    /// Path and query.
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, Error> {
        let bad = |why| Error::Url {
            url: redact(url),
            why,
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("credentials in URLs are not supported"));
        }
        let host = authority.host().to_owned();
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Ok(Target {
            tls,
            host,
            port,
            authority: authority.as_str().to_owned(),
            path,
        })
    }
}

/// A URL for an error message: scheme and authority only, since paths and
/// queries of webhook URLs (Slack's, for one) are secrets.
fn redact(url: &str) -> String {
    let cut = url
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| url[start..].find('/').map(|j| start + j))
        .unwrap_or(url.len());
    let shown = &url[..cut];
    if shown.len() < url.len() {
        format!("{shown}/…")
    } else {
        shown.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_with_default_ports() {
        let t = Target::parse("https://gw.example.com/v1/reviews?state=pending").unwrap();
        assert_eq!(
            t,
            Target {
                tls: true,
                host: "gw.example.com".into(),
                port: 443,
                authority: "gw.example.com".into(),
                path: "/v1/reviews?state=pending".into(),
            }
        );
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((t.tls, t.port, t.path.as_str()), (false, 8080, "/"));
    }

    #[test]
    fn refuses_other_schemes_and_userinfo() {
        for url in [
            "ftp://x/",
            "file:///etc/passwd",
            "https://user:pw@host/",
            "nonsense",
        ] {
            assert!(Target::parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn errors_never_show_the_path_of_a_url() {
        let e = Target::parse("gopher://hooks.example.com/services/T000/B000/SECRET").unwrap_err();
        let text = e.to_string();
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("gopher://hooks.example.com/…"), "{text}");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let url = format!("http://127.0.0.1:{port}/");
        let e = Client::new(&[])
            .unwrap()
            .send(Request::get(&url), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Connect { .. }), "{e}");
    }

    #[tokio::test]
    async fn reads_a_response_from_a_plain_server() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") || !got.ends_with(b"{\"a\":1}") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
            String::from_utf8(got).unwrap()
        });
        let url = format!("http://127.0.0.1:{port}/hook");
        let r = Client::new(&[])
            .unwrap()
            .send(
                Request::post_json(&url, b"{\"a\":1}".to_vec()).header("x-test", "yes"),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, b"ok".as_slice()));
        assert_eq!(r.header("content-length"), Some("2"));
        let request = server.await.unwrap().to_lowercase();
        assert!(request.starts_with("post /hook http/1.1\r\n"), "{request}");
        assert!(request.contains("x-test: yes"), "{request}");
        assert!(
            request.contains("content-type: application/json"),
            "{request}"
        );
    }
}
