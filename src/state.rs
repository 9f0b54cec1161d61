//! [`AppState`]: what every HTTP handler can reach. Handles only: the state itself is owned
//! by the actors behind them.

use actix::Addr;
use mcp_hub_actors::directory::ServerDirectory;
use mcp_hub_actors::registry::RegistryActor;
use mcp_hub_actors::session::SessionDirectory;
use std::sync::Arc;

use crate::config::Settings;

/// Shared by all HTTP workers.
pub struct AppState {
    /// Effective settings.
    pub settings: Arc<Settings>,
    /// The registry (admin writes and reads).
    pub registry: Addr<RegistryActor>,
    /// Running servers.
    pub servers: ServerDirectory,
    /// Live client sessions.
    pub sessions: SessionDirectory,
    /// The SSRF policy for upstream URLs registered through the admin API.
    pub upstream_policy: Arc<mcp_hub_actors::server::ssrf::UpstreamPolicy>,
    /// Caller identity.
    pub auth: crate::auth::Auth,
    /// Rate-limit buckets.
    pub limiter: mcp_hub_actors::ratelimit::RateLimiter,
    /// The Prometheus recorder's handle (shared by every hub in the process).
    pub metrics: crate::metrics::Metrics,
    /// This node's heartbeat in Redis (none without Redis).
    pub nodes: Option<actix::Addr<mcp_hub_actors::nodes::NodeActor>>,
    /// Whether the last Redis heartbeat succeeded (none without Redis).
    pub redis_up: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// MCP 2026-07-28 clients: the requestState signer and the held upstream requests.
    pub modern: crate::routes::mcp::modern::ModernState,
}
