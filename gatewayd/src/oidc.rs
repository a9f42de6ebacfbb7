//! The gateway as an OpenID Connect relying party.
//!
//! Two flows end in the same place, a gateway token for the person's
//! principal and groups:
//! - **device authorization** (RFC 8628) for `gwctl login`: the CLI starts a
//!   login here, shows the person the provider's URL and code, and polls
//!   until the gateway (which polls the provider) has a token for it;
//! - **authorization code with PKCE** for browsers, and for `gwctl login
//!   --browser`, which receives a one-time handoff on a loopback redirect and
//!   redeems it with a secret only it knows.
//!
//! The provider is discovered (and its keys fetched) on first use and every
//! hour after, so an unreachable provider affects only new logins: tokens
//! already issued keep working. ID tokens are verified by `openidconnect`
//! (signature with the provider's keys and advertised algorithms, issuer,
//! audience, expiry, nonce); groups come from the configured claim of the
//! verified ID token, or from userinfo when the ID token lacks it.
//!
//! The login layer's output is an [`Identity`] (subject and groups): a SAML
//! provider, later, produces the same and shares everything after it.

use crate::config::OidcConfig;
use crate::state::Gateway;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreDeviceAuthorizationResponse, CoreGrantType, CoreIdToken,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    DeviceAuthorizationUrl, IssuerUrl, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge,
    PkceCodeVerifier, ProviderMetadata, RedirectUrl, Scope, TokenResponse as _,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Who logged in, as the provider says (after group mapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) subject: String,
    pub(crate) groups: Vec<String>,
    /// The provider's `sub`, stable across renewals.
    pub(crate) provider_sub: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
struct DeviceEndpoint {
    #[serde(default)]
    device_authorization_endpoint: Option<DeviceAuthorizationUrl>,
}
impl AdditionalProviderMetadata for DeviceEndpoint {}

type Metadata = ProviderMetadata<
    DeviceEndpoint,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// How long discovered metadata and keys are used before re-discovery.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Logins in progress, at most; more are refused rather than buffered.
const MAX_PENDING: usize = 1000;
/// How long a browser login or a handoff may take.
const PENDING_TTL: Duration = Duration::from_secs(600);

pub(crate) struct Oidc {
    cfg: OidcConfig,
    secret: String,
    group_map: Vec<(String, String)>,
    http: Http,
    metadata: tokio::sync::Mutex<Option<(Instant, Metadata)>>,
    /// Browser logins by their `state`.
    code_logins: Mutex<HashMap<String, CodeLogin>>,
    /// Device logins by the handle given to the CLI.
    device_logins: Mutex<HashMap<String, DeviceLogin>>,
    /// Finished browser logins waiting for the CLI that started them.
    handoffs: Mutex<HashMap<String, Handoff>>,
    /// The provider's refresh token for each gateway token issued with one,
    /// so `gwctl` can renew a token before it expires (the provider decides
    /// whether the person may still log in, and their groups now). Kept in
    /// memory only: after a restart, people log in again.
    refresh: Mutex<HashMap<String, Refreshable>>,
}

struct Refreshable {
    refresh_token: String,
    /// The provider's subject, which a refreshed identity must keep.
    sub: String,
}

struct CodeLogin {
    verifier: String,
    nonce: String,
    /// For `gwctl login --browser`: where to hand off, and the SHA-256 of
    /// the secret the CLI will present.
    cli: Option<(String, String)>,
    started: Instant,
}

enum DeviceState {
    Waiting,
    Done(Issued),
    Failed(String),
}

struct DeviceLogin {
    state: DeviceState,
    started: Instant,
}

struct Handoff {
    challenge: String,
    issued: Issued,
    started: Instant,
}

/// A token issued after a login, as the API returns it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Issued {
    pub(crate) token: String,
    pub(crate) token_id: String,
    pub(crate) subject: String,
    pub(crate) groups: Vec<String>,
    pub(crate) expires_at: u64,
}

/// The CLI-facing half of a device login.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct DeviceStart {
    pub(crate) handle: String,
    pub(crate) user_code: String,
    pub(crate) verification_uri: String,
    pub(crate) verification_uri_complete: Option<String>,
    pub(crate) expires_in: u64,
    pub(crate) interval: u64,
}

/// What polling a device login finds.
pub(crate) enum DevicePoll {
    Pending,
    Done(Issued),
    Failed(String),
    Unknown,
}

/// A transport error for `openidconnect`'s HTTP client interface.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct HttpError(String);

/// `openidconnect`'s HTTP client: `gw-http`, which follows no redirects
/// (SSRF) and bounds every exchange.
#[derive(Clone)]
struct Http(gw_http::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, HttpError>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, req: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let url = req.uri().to_string();
            let headers: Vec<(String, String)> = req
                .headers()
                .iter()
                .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            let request = gw_http::Request {
                method: req.method().as_str(),
                url: &url,
                headers: headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.clone()))
                    .collect(),
                body: req.body().clone(),
            };
            let resp = self
                .0
                .send(request, Duration::from_secs(15))
                .await
                .map_err(|e| HttpError(e.to_string()))?;
            let mut builder = openidconnect::http::Response::builder().status(resp.status);
            for (n, v) in &resp.headers {
                builder = builder.header(n.as_str(), v.as_str());
            }
            builder
                .body(resp.body)
                .map_err(|e| HttpError(e.to_string()))
        })
    }
}

impl Oidc {
    pub(crate) fn new(cfg: &OidcConfig, group_map: &[(String, String)]) -> anyhow::Result<Oidc> {
        let secret = crate::secrets::resolve(&cfg.client_secret)?;
        Ok(Oidc {
            cfg: cfg.clone(),
            secret,
            group_map: group_map.to_vec(),
            http: Http(gw_http::Client::new(&[])?),
            metadata: tokio::sync::Mutex::new(None),
            code_logins: Mutex::new(HashMap::new()),
            device_logins: Mutex::new(HashMap::new()),
            handoffs: Mutex::new(HashMap::new()),
            refresh: Mutex::new(HashMap::new()),
        })
    }

    /// The provider's metadata and keys, discovered at most an hour ago.
    async fn metadata(&self) -> Result<Metadata, String> {
        let mut cached = self.metadata.lock().await;
        if let Some((at, m)) = cached.as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(m.clone());
        }
        let issuer = IssuerUrl::new(self.cfg.issuer.clone()).map_err(|e| e.to_string())?;
        let m = Metadata::discover_async(issuer, &self.http).await.map_err(|e| {
            tracing::warn!(issuer = %self.cfg.issuer, error = %error_chain(&e), "OpenID discovery failed");
            format!(
                "the identity provider at {} is unreachable or misconfigured; sessions of tokens already issued are not affected",
                self.cfg.issuer
            )
        })?;
        *cached = Some((Instant::now(), m.clone()));
        Ok(m)
    }

    fn client(
        &self,
        m: Metadata,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        String,
    > {
        let redirect =
            RedirectUrl::new(self.cfg.redirect_url.clone()).map_err(|e| e.to_string())?;
        Ok(CoreClient::from_provider_metadata(
            m,
            ClientId::new(self.cfg.client_id.clone()),
            Some(ClientSecret::new(self.secret.clone())),
        )
        .set_redirect_uri(redirect))
    }

    fn scopes(&self) -> impl Iterator<Item = Scope> + '_ {
        self.cfg
            .scopes
            .iter()
            .filter(|s| *s != "openid")
            .map(|s| Scope::new(s.clone()))
    }

    /// A provider request that failed: unreachable (transport) or refused.
    fn failure<RE: openidconnect::ErrorResponse + 'static>(
        &self,
        refused: &str,
        e: &openidconnect::RequestTokenError<HttpError, RE>,
    ) -> String {
        match e {
            openidconnect::RequestTokenError::Request(t) => {
                tracing::warn!(issuer = %self.cfg.issuer, error = %t, "identity provider unreachable");
                format!(
                    "the identity provider at {} is unreachable ({t}); sessions of tokens already issued are not affected",
                    self.cfg.issuer
                )
            }
            other => format!("{refused}: {}", error_chain(other)),
        }
    }

    /// Starts a browser login: the URL to send the browser to.
    pub(crate) async fn start_code(&self, cli: Option<(String, String)>) -> Result<String, String> {
        let client = self.client(self.metadata().await?)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in self.scopes() {
            req = req.add_scope(s);
        }
        let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
        let mut logins = self.code_logins.lock().unwrap_or_else(|e| e.into_inner());
        logins.retain(|_, l| l.started.elapsed() < PENDING_TTL);
        if logins.len() >= MAX_PENDING {
            return Err("too many logins in progress; try again in a minute".into());
        }
        logins.insert(
            state.secret().clone(),
            CodeLogin {
                verifier: verifier.secret().clone(),
                nonce: nonce.secret().clone(),
                cli,
                started: Instant::now(),
            },
        );
        Ok(url.to_string())
    }

    /// Finishes a browser login. `Ok((issued, Some(url)))`: redirect the
    /// browser to the CLI's loopback `url` carrying a handoff id.
    pub(crate) async fn finish_code(
        &self,
        gw: &Gateway,
        code: &str,
        state: &str,
    ) -> Result<(Issued, Option<String>), String> {
        let login = self
            .code_logins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(state)
            .filter(|l| l.started.elapsed() < PENDING_TTL)
            .ok_or("this login is unknown or took too long; start again")?;
        let m = self.metadata().await?;
        let client = self.client(m.clone())?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| e.to_string())?
            .set_pkce_verifier(PkceCodeVerifier::new(login.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| self.failure("the identity provider refused the code", &e))?;
        let id_token = response
            .id_token()
            .ok_or("the identity provider returned no ID token")?;
        let nonce = Nonce::new(login.nonce);
        let identity = self
            .identity(&client, &m, id_token, response.access_token(), &nonce)
            .await?;
        let issued = issue(gw, &identity, "oidc-code")?;
        self.keep_refresh(&issued, response.refresh_token(), &identity);
        let Some((redirect, challenge)) = login.cli else {
            return Ok((issued, None));
        };
        let id = random_id();
        let mut handoffs = self.handoffs.lock().unwrap_or_else(|e| e.into_inner());
        handoffs.retain(|_, h| h.started.elapsed() < PENDING_TTL);
        handoffs.insert(
            id.clone(),
            Handoff {
                challenge,
                issued: issued.clone(),
                started: Instant::now(),
            },
        );
        let sep = if redirect.contains('?') { '&' } else { '?' };
        Ok((issued, Some(format!("{redirect}{sep}handoff={id}"))))
    }

    /// Redeems a handoff with the secret whose SHA-256 started the login.
    pub(crate) fn redeem(&self, id: &str, secret: &str) -> Option<Issued> {
        let mut handoffs = self.handoffs.lock().unwrap_or_else(|e| e.into_inner());
        let h = handoffs.remove(id)?;
        let ok = h.started.elapsed() < PENDING_TTL && sha256_hex(secret.as_bytes()) == h.challenge;
        ok.then_some(h.issued)
    }

    /// Starts a device login; the gateway polls the provider in the
    /// background until the person approves, refuses, or time runs out.
    pub(crate) async fn start_device(&self, gw: Arc<Gateway>) -> Result<DeviceStart, String> {
        let m = self.metadata().await?;
        let url = m
            .additional_metadata()
            .device_authorization_endpoint
            .clone()
            .ok_or(
                "the identity provider does not offer the device flow; use `gwctl login --browser`",
            )?;
        let client = self.client(m.clone())?.set_device_authorization_url(url);
        let mut req = client.exchange_device_code();
        for s in self.scopes() {
            req = req.add_scope(s);
        }
        let details: CoreDeviceAuthorizationResponse = req
            .request_async(&self.http)
            .await
            .map_err(|e| self.failure("the identity provider refused the device login", &e))?;
        let handle = random_id();
        {
            let mut logins = self.device_logins.lock().unwrap_or_else(|e| e.into_inner());
            logins.retain(|_, l| l.started.elapsed() < PENDING_TTL * 2);
            if logins.len() >= MAX_PENDING {
                return Err("too many logins in progress; try again in a minute".into());
            }
            logins.insert(
                handle.clone(),
                DeviceLogin {
                    state: DeviceState::Waiting,
                    started: Instant::now(),
                },
            );
        }
        let start = DeviceStart {
            handle: handle.clone(),
            user_code: details.user_code().secret().clone(),
            verification_uri: details.verification_uri().to_string(),
            verification_uri_complete: details
                .verification_uri_complete()
                .map(|u| u.secret().clone()),
            expires_in: details.expires_in().as_secs(),
            interval: details.interval().as_secs().max(1),
        };
        tokio::spawn(async move {
            let Some(oidc) = gw.oidc.as_ref() else { return };
            let state = match oidc.finish_device(&gw, m, &details).await {
                Ok(issued) => DeviceState::Done(issued),
                Err(why) => {
                    gw.audit.record(&crate::audit::AuditEvent::LoginFailed {
                        method: "oidc-device",
                        reason: &why,
                    });
                    DeviceState::Failed(why)
                }
            };
            if let Some(l) = oidc
                .device_logins
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&handle)
            {
                l.state = state;
            }
        });
        Ok(start)
    }

    async fn finish_device(
        &self,
        gw: &Gateway,
        m: Metadata,
        details: &CoreDeviceAuthorizationResponse,
    ) -> Result<Issued, String> {
        let client = self.client(m.clone())?;
        let response = client
            .exchange_device_access_token(details)
            .map_err(|e| e.to_string())?
            .request_async(&self.http, tokio::time::sleep, Some(details.expires_in()))
            .await
            .map_err(|e| self.failure("the device login did not complete", &e))?;
        let id_token = response
            .id_token()
            .ok_or("the identity provider returned no ID token")?;
        // The device flow carries no nonce.
        let no_nonce = |_: Option<&Nonce>| Ok(());
        let identity = self
            .identity(&client, &m, id_token, response.access_token(), no_nonce)
            .await?;
        let issued = issue(gw, &identity, "oidc-device")?;
        self.keep_refresh(&issued, response.refresh_token(), &identity);
        Ok(issued)
    }

    fn keep_refresh(
        &self,
        issued: &Issued,
        token: Option<&openidconnect::RefreshToken>,
        who: &Identity,
    ) {
        let Some(t) = token else { return };
        let mut map = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= 100_000 {
            map.clear();
        }
        map.insert(
            issued.token_id.clone(),
            Refreshable {
                refresh_token: t.secret().clone(),
                sub: who.provider_sub.clone(),
            },
        );
    }

    /// Renews a gateway token through the provider's refresh grant: the
    /// provider says again who the person is and what groups they have.
    pub(crate) async fn refresh(
        &self,
        gw: &Gateway,
        current: &gw_identity::Token,
    ) -> Result<Issued, String> {
        let kept = self
            .refresh
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&current.id)
            .ok_or("this token cannot be renewed (it was not issued with a refresh token, or the gateway restarted since); log in again")?;
        let m = self.metadata().await?;
        let client = self.client(m.clone())?;
        let refresh_token = openidconnect::RefreshToken::new(kept.refresh_token);
        let response = client
            .exchange_refresh_token(&refresh_token)
            .map_err(|e| e.to_string())?
            .request_async(&self.http)
            .await
            .map_err(|e| self.failure("the identity provider refused to renew the login", &e))?;
        let identity = match response.id_token() {
            Some(id_token) => {
                let no_nonce = |_: Option<&Nonce>| Ok(());
                self.identity(&client, &m, id_token, response.access_token(), no_nonce)
                    .await?
            }
            None => {
                let groups = self
                    .userinfo_groups(&m, response.access_token(), &kept.sub)
                    .await?;
                Identity {
                    subject: current.principal.subject.clone(),
                    groups: crate::identity::map_groups(&self.group_map, &groups),
                    provider_sub: kept.sub.clone(),
                }
            }
        };
        if identity.provider_sub != kept.sub {
            return Err("the renewed login is for someone else".into());
        }
        let issued = issue(gw, &identity, "oidc-refresh")?;
        let next = response.refresh_token().cloned().unwrap_or(refresh_token);
        self.keep_refresh(&issued, Some(&next), &identity);
        Ok(issued)
    }

    /// What a CLI polling its device login finds; a finished login is
    /// handed out once.
    pub(crate) fn poll_device(&self, handle: &str) -> DevicePoll {
        let mut logins = self.device_logins.lock().unwrap_or_else(|e| e.into_inner());
        match logins.get(handle).map(|l| &l.state) {
            None => DevicePoll::Unknown,
            Some(DeviceState::Waiting) => DevicePoll::Pending,
            Some(_) => match logins.remove(handle).map(|l| l.state) {
                Some(DeviceState::Done(i)) => DevicePoll::Done(i),
                Some(DeviceState::Failed(f)) => DevicePoll::Failed(f),
                _ => DevicePoll::Unknown,
            },
        }
    }

    /// Verifies the ID token and reads the principal and groups.
    async fn identity<N: openidconnect::NonceVerifier>(
        &self,
        client: &impl IdTokenVerifierSource,
        m: &Metadata,
        id_token: &CoreIdToken,
        access: &openidconnect::AccessToken,
        nonce: N,
    ) -> Result<Identity, String> {
        let verifier = client.verifier();
        let claims = id_token
            .claims(&verifier, nonce)
            .map_err(|e| format!("the identity provider's ID token was refused: {e}"))?;
        let sub = claims.subject().as_str().to_owned();
        // The token verified above; its payload is read again as JSON only
        // to find claims the typed API does not model (groups).
        let payload = jwt_payload(&id_token.to_string()).unwrap_or_default();
        let subject = match self.cfg.subject_claim.as_str() {
            "sub" => sub.clone(),
            name => payload
                .get(name)
                .and_then(|v| v.as_str())
                .map_or_else(|| sub.clone(), str::to_owned),
        };
        let groups = match groups_of(&payload, &self.cfg.groups_claim) {
            Some(g) => g,
            None => self.userinfo_groups(m, access, &sub).await?,
        };
        Ok(Identity {
            subject,
            groups: crate::identity::map_groups(&self.group_map, &groups),
            provider_sub: sub,
        })
    }

    /// Groups from the userinfo endpoint, for providers that keep them out
    /// of the ID token.
    async fn userinfo_groups(
        &self,
        m: &Metadata,
        access: &openidconnect::AccessToken,
        sub: &str,
    ) -> Result<Vec<String>, String> {
        let Some(url) = m.userinfo_endpoint() else {
            return Ok(Vec::new());
        };
        let url = url.url().to_string();
        let req = gw_http::Request::get(&url)
            .header("authorization", format!("Bearer {}", access.secret()));
        let resp = self
            .http
            .0
            .send(req, Duration::from_secs(15))
            .await
            .map_err(|e| format!("reading userinfo failed: {e}"))?;
        if !resp.is_success() {
            return Err(format!(
                "the userinfo endpoint answered HTTP {}",
                resp.status
            ));
        }
        let info: serde_json::Value =
            serde_json::from_slice(&resp.body).map_err(|_| "userinfo is not JSON".to_owned())?;
        // Userinfo about someone else must not lend them its groups.
        if info.get("sub").and_then(|s| s.as_str()) != Some(sub) {
            return Err("userinfo is about another subject than the ID token".into());
        }
        Ok(groups_of(&info, &self.cfg.groups_claim).unwrap_or_default())
    }
}

/// Where an ID-token verifier comes from (the client, whatever its
/// endpoint type states).
trait IdTokenVerifierSource {
    fn verifier(&self) -> openidconnect::core::CoreIdTokenVerifier<'_>;
}

impl<HasDeviceAuthUrl, HasIntrospectionUrl, HasRevocationUrl, HasTokenUrl, HasUserInfoUrl>
    IdTokenVerifierSource
    for CoreClient<
        openidconnect::EndpointSet,
        HasDeviceAuthUrl,
        HasIntrospectionUrl,
        HasRevocationUrl,
        HasTokenUrl,
        HasUserInfoUrl,
    >
where
    HasDeviceAuthUrl: openidconnect::EndpointState,
    HasIntrospectionUrl: openidconnect::EndpointState,
    HasRevocationUrl: openidconnect::EndpointState,
    HasTokenUrl: openidconnect::EndpointState,
    HasUserInfoUrl: openidconnect::EndpointState,
{
    fn verifier(&self) -> openidconnect::core::CoreIdTokenVerifier<'_> {
        self.id_token_verifier()
    }
}

fn issue(gw: &Gateway, who: &Identity, method: &str) -> Result<Issued, String> {
    let principal = gw_policy::Principal {
        subject: who.subject.clone(),
        groups: who.groups.clone(),
    };
    let (token, t) = crate::identity::issue(gw, &principal, method).map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "minting a token failed");
        "the gateway could not issue a token".to_owned()
    })?;
    Ok(Issued {
        token,
        token_id: t.id,
        subject: who.subject.clone(),
        groups: who.groups.clone(),
        expires_at: t.expires_at,
    })
}

/// The JSON payload of a compact JWS (not verified here: callers verify).
fn jwt_payload(jwt: &str) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A groups claim: an array of strings, or one string. `None`: absent.
fn groups_of(claims: &serde_json::Value, name: &str) -> Option<Vec<String>> {
    match claims.get(name)? {
        serde_json::Value::Array(a) => Some(
            a.iter()
                .filter_map(|g| g.as_str())
                .filter(|g| !g.is_empty() && !g.contains('\n'))
                .map(str::to_owned)
                .collect(),
        ),
        serde_json::Value::String(s) => Some(vec![s.clone()]),
        _ => None,
    }
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn random_id() -> String {
    let mut b = [0u8; 24];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_claims_take_arrays_or_a_single_string() {
        let v = serde_json::json!({"groups": ["dba", "", "sre"], "role": "ops", "n": 3});
        assert_eq!(
            groups_of(&v, "groups"),
            Some(vec!["dba".into(), "sre".into()])
        );
        assert_eq!(groups_of(&v, "role"), Some(vec!["ops".into()]));
        assert_eq!(groups_of(&v, "n"), None);
        assert_eq!(groups_of(&v, "missing"), None);
    }

    #[test]
    fn jwt_payloads_decode_and_garbage_does_not() {
        // {"sub":"a","groups":["x"]}
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIiwiZ3JvdXBzIjpbIngiXX0.sig";
        assert_eq!(jwt_payload(jwt).unwrap()["groups"][0], "x");
        assert!(jwt_payload("nonsense").is_none());
        assert!(jwt_payload("a.!!!.b").is_none());
    }
}
