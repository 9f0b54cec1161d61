//! Upstream session contexts: which upstream MCP session a call uses, by the server's
//! [`SessionMode`](crate::registry::SessionMode), and the bounds on how many a server keeps.
//!
//! The Streamable HTTP transport (`transport::http`) owns the sessions themselves; this
//! module names their contexts (`shared`, `user:{id}`, `client:{session}`) and carries the
//! limits every ServerActor gets from [`ServerEnv`](super::ServerEnv).
//!
//! With Redis, [`UpstreamSessionStore`] shares the session ids between instances
//! (`{prefix}upstream_session:{server}:{context}`): an instance opening a context reads the
//! stored id (and negotiated version and initialize result) and reuses it instead of
//! initializing; one that finds it expired re-initializes and compare-and-sets the new id,
//! so the others pick it up on their next 404 instead of initializing too.

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

use crate::context::CallCtx;
use crate::registry::SessionMode;

/// The context of the server's first session: the handshake, list loads, health checks,
/// anonymous callers, and every call of a `shared` server.
pub const SHARED_CONTEXT: &str = "shared";

/// Users whose calls use the shared session under `per_user`: all anonymous callers are one
/// user, and the hub's own calls (handshake, lists, pings) belong to no user.
const SHARED_USERS: [&str; 2] = ["anonymous", "hub"];

/// Bounds on the upstream sessions of one server, from the hub's config, and the Redis
/// store that shares them between instances.
#[derive(Clone)]
pub struct UpstreamSessionLimits {
    /// Contexts (besides the shared one) a server may hold at once
    /// (`limits.upstream_sessions_per_server`).
    pub max_contexts: usize,
    /// A context with no call for this long is closed (`sessions.upstream_idle_ttl_secs`).
    pub idle_ttl: Duration,
    /// With Redis: the ids shared by every instance.
    pub store: Option<UpstreamSessionStore>,
}

impl Default for UpstreamSessionLimits {
    fn default() -> Self {
        Self {
            max_contexts: 1000,
            idle_ttl: Duration::from_secs(600),
            store: None,
        }
    }
}

/// How long a Redis round trip of the store may take before the instance goes on alone.
const STORE_TIMEOUT: Duration = Duration::from_millis(500);

/// Stored ids outlive their last write by this long (upstreams forget sooner anyway).
const STORE_TTL_SECS: u64 = 24 * 3600;

/// Why the store could not answer. Logged by the transport, which then behaves as
/// without Redis (initializes on its own); never shown to a caller.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis refused or failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer in time.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The stored value is not ours.
    #[error("unreadable stored session: {0}")]
    Unreadable(#[from] serde_json::Error),
}

/// One upstream session as stored: its id, the protocol version negotiated on it, and the
/// `initialize` result (an instance that reuses the session needs its capabilities).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSession {
    /// The upstream's `Mcp-Session-Id`.
    pub id: String,
    /// `MCP-Protocol-Version` to send on it.
    pub protocol_version: String,
    /// The raw `initialize` result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
}

/// Compare-and-set: writes ARGV[2] unless a session other than ARGV[1] is stored (then
/// returns the stored one, the winner of a race).
const SWAP: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, v = pcall(cjson.decode, cur)
  if ok and type(v) == 'table' and v['id'] ~= ARGV[1] then
    return cur
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return false
"#;

/// Deletes the key only while it still holds session ARGV[1].
const REMOVE: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, v = pcall(cjson.decode, cur)
  if ok and type(v) == 'table' and v['id'] == ARGV[1] then
    redis.call('DEL', KEYS[1])
  end
end
return 1
"#;

/// Upstream session ids shared through Redis; see the module docs. Cheap to clone; used by
/// the Streamable HTTP transport of every ServerActor on this instance.
#[derive(Clone)]
pub struct UpstreamSessionStore {
    conn: ConnectionManager,
    prefix: Arc<str>,
}

impl UpstreamSessionStore {
    /// A store on `conn` under `prefix` (`redis_prefix`).
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            prefix: Arc::from(prefix),
        }
    }

    /// `{prefix}upstream_session:{server}:{context}`.
    pub fn key(&self, server: &str, context: &str) -> String {
        format!("{}upstream_session:{server}:{context}", self.prefix)
    }

    async fn bounded<T>(
        fut: impl std::future::Future<Output = Result<T, redis::RedisError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(STORE_TIMEOUT, fut).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(StoreError::Timeout(STORE_TIMEOUT)),
        }
    }

    /// The session stored for `context`, if any.
    pub async fn get(
        &self,
        server: &str,
        context: &str,
    ) -> Result<Option<StoredSession>, StoreError> {
        let mut conn = self.conn.clone();
        let key = self.key(server, context);
        let raw: Option<String> =
            Self::bounded(redis::cmd("GET").arg(&key).query_async(&mut conn)).await?;
        Ok(match raw {
            Some(raw) => Some(serde_json::from_str(&raw)?),
            None => None,
        })
    }

    /// Stores `new` for `context` unless another instance already replaced `expected` (the
    /// id this one found expired; `None`: none was known). `Ok(None)`: stored; `Ok(Some(s))`:
    /// another instance won the race and `s` is its session.
    pub async fn swap(
        &self,
        server: &str,
        context: &str,
        expected: Option<&str>,
        new: &StoredSession,
    ) -> Result<Option<StoredSession>, StoreError> {
        let mut conn = self.conn.clone();
        let value = serde_json::to_string(new)?;
        let script = redis::Script::new(SWAP);
        let mut invocation = script.key(self.key(server, context));
        invocation
            .arg(expected.unwrap_or(""))
            .arg(value)
            .arg(STORE_TTL_SECS);
        let current: Option<String> = Self::bounded(invocation.invoke_async(&mut conn)).await?;
        Ok(match current {
            Some(raw) => Some(serde_json::from_str(&raw)?),
            None => None,
        })
    }

    /// Forgets `context`'s session if it is still `id` (its client session ended).
    pub async fn remove(&self, server: &str, context: &str, id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let script = redis::Script::new(REMOVE);
        let mut invocation = script.key(self.key(server, context));
        invocation.arg(id);
        let _: i64 = Self::bounded(invocation.invoke_async(&mut conn)).await?;
        Ok(())
    }
}

/// The context a call's upstream session belongs to under `mode`; `None` is the shared
/// session ([`SHARED_CONTEXT`]).
pub fn context_of(mode: SessionMode, ctx: &CallCtx) -> Option<String> {
    match mode {
        SessionMode::Shared => None,
        SessionMode::PerUser if SHARED_USERS.contains(&&*ctx.user) => None,
        SessionMode::PerUser => Some(format!("user:{}", ctx.user)),
        SessionMode::PerClient => ctx.session.as_ref().map(|s| client_context(s)),
    }
}

/// The context of client session `session` under `per_client`.
pub fn client_context(session: &str) -> String {
    format!("client:{session}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ctx(user: &str, session: Option<&str>) -> CallCtx {
        CallCtx {
            request_id: Arc::from("r"),
            session: session.map(Arc::from),
            user: Arc::from(user),
        }
    }

    #[test]
    fn contexts_follow_the_mode() {
        let alice = ctx("alice", Some("s1"));
        assert_eq!(context_of(SessionMode::Shared, &alice), None);
        assert_eq!(
            context_of(SessionMode::PerUser, &alice).as_deref(),
            Some("user:alice")
        );
        assert_eq!(
            context_of(SessionMode::PerClient, &alice).as_deref(),
            Some("client:s1")
        );
        assert_eq!(
            context_of(SessionMode::PerUser, &ctx("anonymous", Some("s"))),
            None
        );
        assert_eq!(
            context_of(SessionMode::PerUser, &CallCtx::internal("handshake")),
            None
        );
        assert_eq!(context_of(SessionMode::PerClient, &ctx("bob", None)), None);
    }
}
