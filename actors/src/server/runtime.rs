//! [`RuntimeStatus`]: what an operator sees about a running server. Written only by its
//! ServerActor, read by the admin API through a `watch` channel (no actor hop).

use serde::Serialize;

/// Lifecycle state of a server's worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Connecting or handshaking for the first time.
    Starting,
    /// Serving calls.
    Ready,
    /// Lost its upstream; reconnecting with backoff.
    Restarting,
    /// Stopped (disabled or deleted).
    Stopped,
    /// Gave up; needs an operator.
    Failed,
    /// A stdio server waiting for a worker slot: this node already runs
    /// `supervision.worker_max` stdio workers. Starts when one frees.
    OverCapacity,
    /// A stdio worker stopped after `supervision.worker_idle_ttl_secs` without calls;
    /// the next call starts it again.
    Idle,
}

/// Runtime view of one server.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeStatus {
    /// Lifecycle state.
    pub status: Status,
    /// Child pid (stdio).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// When the current worker became ready (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Restarts since the actor started.
    pub restarts: u32,
    /// Last failure and when it happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    /// Calls in flight upstream.
    pub in_flight: usize,
    /// Calls waiting for a slot or for readiness.
    pub queue_depth: usize,
    /// Protocol revision agreed with the upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// Protocol era detected at the handshake: `"legacy"` or `"modern"` (2026-07-28).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub era: Option<&'static str>,
    /// Whether an upstream MCP session id is held (the id itself is a credential).
    pub upstream_session: bool,
    /// A server placed on other nodes: the node this one forwards its calls to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded_to: Option<String>,
    /// Tools offered.
    pub tool_count: usize,
    /// Circuit breaker: "closed", "open" or "half_open".
    pub breaker: &'static str,
    /// Median call latency over the last minute (ms); absent without calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile call latency over the last minute (ms); absent without calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p99_ms: Option<f64>,
}

/// A failure with its time.
#[derive(Debug, Clone, Serialize)]
pub struct LastError {
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// What happened.
    pub reason: String,
}

impl RuntimeStatus {
    /// The state of a server that has not started yet.
    pub fn starting() -> Self {
        Self {
            status: Status::Starting,
            pid: None,
            started_at: None,
            restarts: 0,
            last_error: None,
            in_flight: 0,
            queue_depth: 0,
            protocol_version: None,
            era: None,
            upstream_session: false,
            forwarded_to: None,
            tool_count: 0,
            breaker: "closed",
            latency_p50_ms: None,
            latency_p99_ms: None,
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
