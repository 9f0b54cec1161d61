//! Rate limits: token buckets keyed `global`, `user:{id}`, `server:{id}`, each bucket an
//! actor ([`BucketActor`]) created on first use. [`RateLimiter`] is the cheap handle callers
//! use; with no limit configured it answers without any actor hop. With Redis the global and
//! per-user budgets are shared by all instances ([`SharedBudgets`], one GCRA script per check).

mod bucket;
mod bucket_actor;
mod limiter;
mod shared;

pub use bucket::TokenBucket;
pub use bucket_actor::{BucketActor, Refund, Take};
pub use limiter::{Limit, RateLimiter, RateLimits};
pub use shared::SharedBudgets;
