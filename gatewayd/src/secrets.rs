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
