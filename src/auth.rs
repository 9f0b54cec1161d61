//! Who is calling: API keys (`Authorization: Bearer <key>`, stored only as SHA-256 hashes),
//! optionally a user header set by a trusted fronting proxy, else the anonymous user where
//! `auth.anonymous` allows it. Sessions and tasks are bound to the user found here.

use actix_web::http::header;
use actix_web::HttpRequest;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

use crate::config::AuthSettings;
use crate::security;

/// The user id of anonymous callers.
pub const ANONYMOUS: &str = "anonymous";
/// The user id of another hub instance forwarding a placed server's calls.
pub const CLUSTER: &str = "cluster";

/// Resolves callers to user ids. Built once from the config.
pub struct Auth {
    keys: HashMap<String, Arc<str>>,
    /// SHA-256 of `cluster.token`, compared like the API keys.
    cluster: Option<String>,
    trusted_header: Option<header::HeaderName>,
    anonymous: AnonymousPolicy,
}

/// Where anonymous callers are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnonymousPolicy {
    /// Only from this machine.
    Loopback,
    /// From anywhere.
    Any,
    /// Never: every caller needs an API key.
    None,
}

/// Why a caller was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A key was sent but matches no configured key.
    #[error("unknown API key")]
    UnknownKey,
    /// No credentials, and anonymous access is not allowed from here.
    #[error("an API key is required: send Authorization: Bearer <key>")]
    KeyRequired,
}

/// Hex SHA-256 of an API key, as stored in the config (`mcp-hub hash-key`).
pub fn hash_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Auth {
    /// From the `[auth]` settings and `cluster.token` (already validated).
    pub fn new(settings: &AuthSettings, cluster_token: Option<&str>) -> Self {
        Self {
            cluster: cluster_token.map(hash_key),
            keys: settings
                .api_keys
                .iter()
                .map(|k| {
                    (
                        k.key_sha256.to_ascii_lowercase(),
                        Arc::from(k.user.as_str()),
                    )
                })
                .collect(),
            trusted_header: settings
                .trusted_user_header
                .as_deref()
                .and_then(|h| header::HeaderName::from_bytes(h.as_bytes()).ok()),
            anonymous: match settings.anonymous.as_str() {
                "any" => AnonymousPolicy::Any,
                "none" => AnonymousPolicy::None,
                _ => AnonymousPolicy::Loopback,
            },
        }
    }

    /// The user a request acts for.
    pub fn identify(&self, req: &HttpRequest) -> Result<Arc<str>, AuthError> {
        if let Some(key) = security::bearer(req) {
            let hashed = hash_key(key);
            // Compare against every stored hash in constant time, so timing says nothing.
            let mut found = None;
            for (stored, user) in &self.keys {
                if security::constant_time_eq(stored.as_bytes(), hashed.as_bytes()) {
                    found = Some(user.clone());
                }
            }
            if let Some(cluster) = &self.cluster {
                if security::constant_time_eq(cluster.as_bytes(), hashed.as_bytes()) {
                    found = Some(Arc::from(CLUSTER));
                }
            }
            return found.ok_or(AuthError::UnknownKey);
        }
        if let Some(name) = &self.trusted_header {
            if let Some(user) = req
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
            {
                return Ok(Arc::from(user));
            }
        }
        match self.anonymous {
            AnonymousPolicy::Any => Ok(Arc::from(ANONYMOUS)),
            AnonymousPolicy::Loopback if security::peer_is_loopback(req) => {
                Ok(Arc::from(ANONYMOUS))
            }
            _ => Err(AuthError::KeyRequired),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
