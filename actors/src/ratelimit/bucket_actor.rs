//! BucketActor: one rate-limit bucket.
//!
//! State: a local [`TokenBucket`] and, for buckets shared across instances, the Redis
//! budget ([`SharedBudgets`]) and key that decide while Redis answers.
//! Messages: [`Take`], [`Refund`].
//! Timers: none; an idle bucket stops itself after a while (its limiter makes a new one).
//! Failure behaviour: a stopped bucket's callers see a mailbox error, which the limiter
//! treats as "allowed" (fail open: rate limits protect, they must not take the hub down).
//! A shared bucket whose Redis does not answer decides with its local bucket.

use actix::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bucket::TokenBucket;
use super::limiter::Limit;
use super::shared::SharedBudgets;

/// Take one token. Sent by [`super::RateLimiter`]. `Err` carries the wait until the next token.
#[derive(Message)]
#[rtype(result = "Result<(), Duration>")]
pub struct Take;

/// Give back the token of a call that a later bucket refused, so a refused call costs no
/// budget. Sent by [`super::RateLimiter`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct Refund;

/// One bucket; see the module docs.
pub struct BucketActor {
    bucket: TokenBucket,
    limit: Limit,
    shared: Option<(Arc<SharedBudgets>, Arc<str>)>,
    last_used: Instant,
}

impl BucketActor {
    /// A full local bucket.
    pub fn new(rate: f64, burst: f64) -> Self {
        let now = Instant::now();
        Self {
            bucket: TokenBucket::new(rate, burst, now),
            limit: Limit { rate, burst },
            shared: None,
            last_used: now,
        }
    }

    /// A bucket whose budget lives in Redis under `key` (the local bucket is the fallback).
    pub fn shared(limit: Limit, budgets: Arc<SharedBudgets>, key: &str) -> Self {
        let mut b = Self::new(limit.rate, limit.burst);
        b.shared = Some((budgets, Arc::from(key)));
        b
    }
}

/// Buckets unused this long stop (a full bucket is what a new one would be anyway... once
/// it refilled: the limiter only evicts buckets idle long enough to have refilled).
pub const IDLE_STOP: Duration = Duration::from_secs(600);

impl Actor for BucketActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
        ctx.run_interval(Duration::from_secs(60), |act, ctx| {
            if act.last_used.elapsed() > IDLE_STOP {
                ctx.stop();
            }
        });
    }
}

impl Handler<Take> for BucketActor {
    type Result = ResponseActFuture<Self, Result<(), Duration>>;

    fn handle(&mut self, _: Take, _: &mut Self::Context) -> Self::Result {
        self.last_used = Instant::now();
        let Some((budgets, key)) = self.shared.clone() else {
            let res = self.bucket.try_take(self.last_used);
            return Box::pin(actix::fut::ready(res));
        };
        // Not `ctx.wait`: checks run concurrently, the script is what makes them atomic.
        let limit = self.limit;
        Box::pin(
            async move { budgets.take(&key, limit).await }
                .into_actor(self)
                .map(|decided, act, _| {
                    decided.unwrap_or_else(|| act.bucket.try_take(Instant::now()))
                }),
        )
    }
}

impl Handler<Refund> for BucketActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Refund, _: &mut Self::Context) -> Self::Result {
        let Some((budgets, key)) = self.shared.clone() else {
            self.bucket.refund();
            return Box::pin(actix::fut::ready(()));
        };
        let limit = self.limit;
        Box::pin(
            async move { budgets.refund(&key, limit).await }
                .into_actor(self)
                .map(|refunded, act, _| {
                    if !refunded {
                        act.bucket.refund();
                    }
                }),
        )
    }
}
