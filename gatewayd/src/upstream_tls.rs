//! TLS from the gateway to a PostgreSQL resource, as its policy says:
//! `disable` (plain), `prefer` (TLS if the server offers it), `require`
//! (TLS, server not authenticated — libpq's meaning of the word), and
//! `verify-full` (TLS, certificate checked against the resource's `ca`, or
//! the system roots, and the host name). No `tls` node means `verify-full`.

use anyhow::{Context as _, anyhow};
use gw_policy::model::TlsMode;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The upstream stream, and whether it is encrypted.
pub(crate) async fn wrap(
    mut tcp: TcpStream,
    r: &gw_policy::Resource,
) -> anyhow::Result<(Box<dyn crate::postgres::Io>, bool)> {
    let mode = r.tls.as_ref().map_or(TlsMode::VerifyFull, |t| t.mode);
    if mode == TlsMode::Disable {
        return Ok((Box::new(tcp), false));
    }
    tcp.write_all(&gw_proto_postgres::codec::ssl_request())
        .await?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer)
        .await
        .context("reading the server's answer to SSLRequest")?;
    match (answer[0], mode) {
        (b'S', _) => {}
        (b'N', TlsMode::Prefer) => return Ok((Box::new(tcp), false)),
        (b'N', _) => {
            return Err(anyhow!(
                "the server does not offer TLS, and resource \"{}\" requires it",
                r.name
            ));
        }
        _ => return Err(anyhow!("unexpected answer to SSLRequest")),
    }
    let config = client_config(r, mode)?;
    let host = r
        .tls
        .as_ref()
        .and_then(|t| t.server_name.clone())
        .unwrap_or_else(|| host_of(&r.address));
    let name = ServerName::try_from(host.clone())
        .map_err(|_| anyhow!("invalid TLS server name {host}"))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .context("TLS handshake with the server")?;
    Ok((Box::new(stream), true))
}

fn host_of(address: &str) -> String {
    match address.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']').to_owned(),
        None => address.to_owned(),
    }
}

fn client_config(
    r: &gw_policy::Resource,
    mode: TlsMode,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let builder = rustls::ClientConfig::builder();
    let config = match mode {
        TlsMode::VerifyFull => {
            let mut roots = rustls::RootCertStore::empty();
            let ca = r.tls.as_ref().and_then(|t| t.ca.as_ref()).ok_or_else(|| {
                anyhow!("resource \"{}\" uses verify-full TLS but names no `ca`; add `tls ca=\"file:/path\"`", r.name)
            })?;
            let pem = crate::secrets::resolve(ca)?;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots
                    .add(cert.context("parsing the resource's CA")?)
                    .context("adding the resource's CA")?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify::new()))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// `require` encrypts without authenticating the server, like libpq's
/// `sslmode=require`; policy authors choose it explicitly, and lint accepts
/// it, but `verify-full` is the default.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl NoVerify {
    fn new() -> NoVerify {
        NoVerify(Arc::new(rustls::crypto::ring::default_provider()))
    }
}

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
