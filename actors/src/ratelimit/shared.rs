//! [`SharedBudgets`]: buckets kept in Redis so every hub instance draws from one budget.
//!
//! Each shared bucket is one Redis key holding its GCRA "theoretical arrival time" (ms, by
//! the Redis clock so instance clocks may disagree). A check is one atomic Lua script
//! (`EVALSHA`, falling back to `EVAL` on `NOSCRIPT`, which [`redis::Script`] does for us),
//! so concurrent instances can never both spend the last token.
//!
//! When Redis does not answer, the caller falls back to its own local bucket (the full
//! configured limit on each instance: during an outage the hub cannot tell how many peers
//! are alive, and it prefers serving up to N× the budget for a while over refusing callers
//! that are within it). The outage is logged once (`ratelimit.redis.fallback`) and its end
//! once (`ratelimit.redis.recovered`); while it lasts Redis is probed at most once per
//! [`PROBE_EVERY`], so calls do not each wait for a dead server.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::limiter::Limit;

/// GCRA over one key. ARGV: emission interval (ms), burst, "take" | "refund".
/// Returns 0 when admitted (or refunded), else the milliseconds until a token is free.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
if ARGV[3] == 'refund' then
  local back = tat - interval
  if back <= now then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], string.format('%.3f', back), 'PX', math.ceil(back - now) + 1)
  end
  return 0
end
local new_tat = tat + interval
local wait = new_tat - now - interval * burst
if wait > 0 then return math.ceil(wait) end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1)
return 0
";

/// How long one check may wait for Redis before the local bucket decides.
const REDIS_WAIT: Duration = Duration::from_secs(1);
/// While Redis is down, how often one check tries it again.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Redis-backed budgets for the `global` and `user:{id}` buckets. Owned (behind an `Arc`)
/// by the [`super::RateLimiter`] and handed to each shared [`super::BucketActor`].
pub struct SharedBudgets {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    script: redis::Script,
    outage: Mutex<Outage>,
}

#[derive(Default)]
struct Outage {
    down: bool,
    next_probe: Option<Instant>,
}

impl SharedBudgets {
    /// Budgets under `{prefix}rl:` on `conn`.
    pub fn new(conn: redis::aio::ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            prefix: format!("{prefix}rl:"),
            script: redis::Script::new(GCRA),
            outage: Mutex::new(Outage::default()),
        }
    }

    /// Whether this check should ask Redis (always while it is up; once per probe interval
    /// while it is down).
    fn should_try(&self) -> bool {
        let Ok(mut o) = self.outage.lock() else {
            return true;
        };
        if !o.down {
            return true;
        }
        let now = Instant::now();
        if o.next_probe.is_none_or(|t| now >= t) {
            o.next_probe = Some(now + PROBE_EVERY);
            return true;
        }
        false
    }

    fn record(&self, outcome: Result<(), String>) {
        let Ok(mut o) = self.outage.lock() else {
            return;
        };
        match outcome {
            Ok(()) if o.down => {
                o.down = false;
                tracing::info!(
                    event = "ratelimit.redis.recovered",
                    "ratelimit.redis.recovered"
                );
            }
            Ok(()) => {}
            Err(error) => {
                if !o.down {
                    tracing::warn!(event = "ratelimit.redis.fallback", %error,
                        "ratelimit.redis.fallback: shared budgets unavailable, each instance applies the full limit locally");
                }
                o.down = true;
                o.next_probe = Some(Instant::now() + PROBE_EVERY);
            }
        }
    }

    async fn run(&self, key: &str, limit: Limit, op: &str) -> Option<u64> {
        if !self.should_try() {
            return None;
        }
        let interval_ms = if limit.rate > 0.0 {
            1000.0 / limit.rate
        } else {
            3_600_000.0
        };
        let mut conn = self.conn.clone();
        let mut invocation = self.script.key(format!("{}{key}", self.prefix));
        invocation
            .arg(interval_ms)
            .arg(limit.burst.max(1.0))
            .arg(op);
        let res = tokio::time::timeout(REDIS_WAIT, invocation.invoke_async::<u64>(&mut conn)).await;
        match res {
            Ok(Ok(wait_ms)) => {
                self.record(Ok(()));
                Some(wait_ms)
            }
            Ok(Err(e)) => {
                self.record(Err(e.to_string()));
                None
            }
            Err(_) => {
                self.record(Err(format!("no answer within {REDIS_WAIT:?}")));
                None
            }
        }
    }

    /// Takes one token from the shared bucket `key`: `None` when Redis could not decide
    /// (use the local bucket), else admitted or the wait until the next token.
    pub async fn take(&self, key: &str, limit: Limit) -> Option<Result<(), Duration>> {
        self.run(key, limit, "take")
            .await
            .map(|wait_ms| match wait_ms {
                0 => Ok(()),
                ms => Err(Duration::from_millis(ms)),
            })
    }

    /// Gives back a token taken by a call that a later bucket refused. `false` when Redis
    /// could not be reached (the caller refunds its local bucket instead).
    pub async fn refund(&self, key: &str, limit: Limit) -> bool {
        self.run(key, limit, "refund").await.is_some()
    }
}
