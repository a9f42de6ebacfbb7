//! Resolves the policy's secret references (`env:NAME`, `file:/path`) at
//! the moment a credential is needed. Errors name the reference, never the
//! value.

use anyhow::{Context as _, anyhow};
use gw_policy::model::SecretRef;

pub(crate) fn resolve(r: &SecretRef) -> anyhow::Result<String> {
    match r {
        SecretRef::Env(name) => std::env::var(name)
            .map_err(|_| anyhow!("credential {r} is not set in the gateway's environment")),
        SecretRef::File(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading credential {r}"))?;
            Ok(text.trim_end_matches(['\n', '\r']).to_owned())
        }
    }
}

/// A resource's credential and its user, both needed to log in upstream.
pub(crate) fn credential(
    r: &gw_policy::Resource,
) -> anyhow::Result<(&gw_policy::model::Credential, String)> {
    let cred = r
        .credential
        .as_ref()
        .ok_or_else(|| anyhow!("resource \"{}\" has no credential", r.name))?;
    let user = cred
        .user
        .clone()
        .ok_or_else(|| anyhow!("resource \"{}\" has no credential user", r.name))?;
    Ok((cred, user))
}
