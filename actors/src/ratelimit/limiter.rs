//! [`RateLimiter`]: finds (or starts) the bucket actors for a call and asks them in order
//! global → server → user. Cheap to clone; shared by every HTTP worker.
//!
//! A call refused by a later bucket gives its tokens back to the earlier ones, so refused
//! calls cost no budget. With Redis ([`RateLimiter::with_redis`]) the `global` and `user:`
//! buckets are shared by every instance; `server:` buckets stay local on purpose: each
//! instance has its own connection (or, for stdio, its own process) per upstream with its
//! own `max_concurrency`, and the per-server limit protects that, like the queue does.

use actix::prelude::*;
use dashmap::DashMap;
use std::sync::Arc;

use super::bucket_actor::{BucketActor, Refund, Take};
use super::shared::SharedBudgets;
use crate::error::HubError;

/// One limit: `rate` tokens per second with a `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// Tokens per second.
    pub rate: f64,
    /// Bucket size.
    pub burst: f64,
}

/// The configured limits (`None`: unlimited).
#[derive(Debug, Clone, Default)]
pub struct RateLimits {
    /// All calls through this hub.
    pub global: Option<Limit>,
    /// Each user's calls.
    pub user: Option<Limit>,
    /// Each server's calls (a server's own definition may set one too).
    pub server: Option<Limit>,
}

/// Finds bucket actors by key; see the module docs.
#[derive(Clone)]
pub struct RateLimiter {
    limits: Arc<RateLimits>,
    buckets: Arc<DashMap<String, Addr<BucketActor>>>,
    shared: Option<Arc<SharedBudgets>>,
}

impl RateLimiter {
    /// A limiter for `limits`.
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits: Arc::new(limits),
            buckets: Arc::new(DashMap::new()),
            shared: None,
        }
    }

    /// Shares the `global` and `user:` budgets with every instance using the same Redis
    /// and `prefix` (keys `{prefix}rl:global`, `{prefix}rl:user:{id}`).
    pub fn with_redis(mut self, conn: redis::aio::ConnectionManager, prefix: &str) -> Self {
        self.shared = Some(Arc::new(SharedBudgets::new(conn, prefix)));
        self
    }

    /// Whether any limit could apply to a call to a server with `server_limit`.
    pub fn is_active(&self, server_limit: Option<Limit>) -> bool {
        self.limits.global.is_some()
            || self.limits.user.is_some()
            || self.limits.server.is_some()
            || server_limit.is_some()
    }

    fn bucket(&self, key: String, limit: Limit) -> Addr<BucketActor> {
        if let Some(addr) = self.buckets.get(&key).filter(|a| a.connected()) {
            return addr.clone();
        }
        let actor = match &self.shared {
            Some(budgets) if !key.starts_with("server:") => {
                BucketActor::shared(limit, budgets.clone(), &key)
            }
            _ => BucketActor::new(limit.rate, limit.burst),
        };
        let addr = actor.start();
        self.buckets.insert(key, addr.clone());
        addr
    }

    /// Takes a token from every bucket that applies. Fails with the first scope that is
    /// exhausted and how long to wait (at least 1 s, as `Retry-After` counts whole seconds);
    /// the buckets that had already given a token get it back.
    pub async fn check(
        &self,
        user: &str,
        server: &str,
        server_limit: Option<Limit>,
    ) -> Result<(), HubError> {
        let server_limit = server_limit.or(self.limits.server);
        let checks = [
            (
                "global",
                self.limits.global.map(|l| ("global".to_string(), l)),
            ),
            (
                "server",
                server_limit.map(|l| (format!("server:{server}"), l)),
            ),
            (
                "user",
                self.limits.user.map(|l| (format!("user:{user}"), l)),
            ),
        ];
        let mut taken: Vec<Addr<BucketActor>> = Vec::with_capacity(3);
        for (scope, check) in checks {
            let Some((key, limit)) = check else { continue };
            let bucket = self.bucket(key, limit);
            if let Ok(Err(wait)) = bucket.send(Take).await {
                for earlier in taken {
                    earlier.do_send(Refund);
                }
                return Err(HubError::RateLimited {
                    scope,
                    retry_after_seconds: wait.as_secs_f64().ceil().max(1.0) as u64,
                });
            }
            taken.push(bucket);
        }
        Ok(())
    }
}
