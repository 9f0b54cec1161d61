//! [`HubError`]: every failure an actor can report for a client call. It renders itself as a
//! JSON-RPC error (code, message, `data` with a hint); the HTTP layer maps it once to a status.

use serde_json::json;

use crate::protocol::{codes, RpcError};

/// A failure of a client request, classified by where it came from.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HubError {
    /// The request named a method the hub (or the scoped server) does not serve.
    #[error("Method not found: {0}")]
    MethodNotFound(String),
    /// Bad parameters; `data` explains.
    #[error("{message}")]
    InvalidParams {
        /// Short description.
        message: String,
        /// Hint for the caller.
        data: serde_json::Value,
    },
    /// A tool, prompt or resource name no running server provides.
    #[error("Unknown {kind}: {name}")]
    UnknownName {
        /// "tool", "prompt" or "resource".
        kind: &'static str,
        /// The name as the client sent it.
        name: String,
    },
    /// The server is not running or not ready.
    #[error("Server unavailable")]
    ServerUnavailable {
        /// Server id.
        server: String,
        /// Why.
        reason: String,
        /// When to try again.
        retry_after_seconds: u64,
    },
    /// The upstream went away while the call was in flight (child exited, connection lost).
    #[error("Server restarted")]
    ServerRestarted {
        /// Server id.
        server: String,
        /// Why.
        reason: String,
    },
    /// The server's queue is full.
    #[error("Server busy")]
    Busy {
        /// Server id.
        server: String,
        /// When to try again.
        retry_after_seconds: u64,
    },
    /// A hub-wide limit (sessions in total or per user) is reached.
    #[error("{what} limit reached")]
    LimitReached {
        /// "Session", "Session per user" or "Upstream session".
        what: &'static str,
        /// The configured limit.
        limit: usize,
        /// When to try again.
        retry_after_seconds: u64,
    },
    /// A rate limit is exhausted.
    #[error("Rate limit exceeded")]
    RateLimited {
        /// "global", "user" or "server".
        scope: &'static str,
        /// When a call will be admitted again.
        retry_after_seconds: u64,
    },
    /// The hub is shutting down and takes no new sessions.
    #[error("Hub is shutting down")]
    Draining,
    /// A timeout fired; `layer` says which one.
    #[error("Request timed out")]
    Timeout {
        /// "hub", "server" or "external" (a REST tool's API call).
        layer: &'static str,
        /// The timeout that fired.
        timeout_ms: u64,
    },
    /// Progress kept extending a call until the hard maximum (`timeouts.hard_max_ms`).
    #[error("Request timed out")]
    TimeoutHardMax {
        /// "hub" or "server".
        layer: &'static str,
        /// `timeouts.hard_max_ms`.
        hard_max_ms: u64,
    },
    /// The client cancelled the request.
    #[error("Request cancelled")]
    Cancelled,
    /// The upstream answered with a JSON-RPC error; passed through unchanged.
    #[error("Upstream error {}: {}", .0.code, .0.message)]
    Upstream(RpcError),
    /// The upstream broke the protocol (bad JSON, unexpected HTTP status).
    #[error("Upstream protocol error")]
    UpstreamProtocol {
        /// Server id.
        server: String,
        /// What was wrong.
        detail: String,
    },
    /// The hub's own bug or resource exhaustion.
    #[error("Internal error: {0}")]
    Internal(String),
}

impl HubError {
    /// Shorthand for an invalid-params error with a hint.
    pub fn invalid_params(message: impl Into<String>, hint: impl Into<String>) -> Self {
        HubError::InvalidParams {
            message: message.into(),
            data: json!({ "hint": hint.into() }),
        }
    }

    /// The JSON-RPC error object sent to the client.
    pub fn to_rpc(&self) -> RpcError {
        match self {
            HubError::MethodNotFound(m) => {
                RpcError::new(codes::METHOD_NOT_FOUND, format!("Method not found: {m}"))
                    .with_data(json!({ "method": m }))
            }
            HubError::InvalidParams { message, data } => {
                RpcError::new(codes::INVALID_PARAMS, message.clone()).with_data(data.clone())
            }
            HubError::UnknownName { kind, name } => RpcError::new(
                if *kind == "resource" { codes::RESOURCE_NOT_FOUND } else { codes::INVALID_PARAMS },
                format!("Unknown {kind}: {name}"),
            )
            .with_data(json!({ kind.to_string(): name, "hint": format!("call {kind}s/list for the names this endpoint serves") })),
            HubError::ServerUnavailable { server, reason, retry_after_seconds } => {
                RpcError::new(codes::SERVER_ERROR, "Server unavailable").with_data(json!({
                    "server": server, "reason": reason, "retry_after_seconds": retry_after_seconds
                }))
            }
            HubError::ServerRestarted { server, reason } => {
                RpcError::new(codes::SERVER_ERROR, "Server restarted").with_data(json!({
                    "server": server, "reason": reason, "retry_after_seconds": 1,
                    "hint": "the upstream server restarted while this call was in flight; it may or may not have run: retry if the tool is safe to repeat"
                }))
            }
            HubError::Busy { server, retry_after_seconds } => {
                RpcError::new(codes::SERVER_ERROR, "Server busy").with_data(json!({
                    "server": server, "retry_after_seconds": retry_after_seconds
                }))
            }
            HubError::LimitReached { what, limit, retry_after_seconds } => {
                let hint = if what.starts_with("Upstream") {
                    "this server holds its maximum of upstream sessions (one per user or client session, by its session_mode); idle ones close after sessions.upstream_idle_ttl_secs, or raise limits.upstream_sessions_per_server"
                } else {
                    "end unused sessions with DELETE, or raise the limit in [sessions]"
                };
                RpcError::new(codes::SERVER_ERROR, format!("{what} limit reached")).with_data(json!({
                    "limit": limit, "retry_after_seconds": retry_after_seconds, "hint": hint
                }))
            }
            HubError::RateLimited { scope, retry_after_seconds } => RpcError::new(codes::SERVER_ERROR, "Rate limit exceeded")
                .with_data(json!({ "retry_after_seconds": retry_after_seconds, "scope": scope })),
            HubError::Draining => RpcError::new(codes::SERVER_ERROR, "Hub is shutting down").with_data(json!({
                "retry_after_seconds": 1,
                "hint": "this instance is draining; connect again (a load balancer sends you to another instance)"
            })),
            HubError::Timeout { layer, timeout_ms } => {
                RpcError::new(codes::REQUEST_TIMEOUT, "Request timed out")
                    .with_data(json!({ "layer": layer, "timeout_ms": timeout_ms }))
            }
            HubError::TimeoutHardMax { layer, hard_max_ms } => {
                RpcError::new(codes::REQUEST_TIMEOUT, "Request timed out").with_data(json!({
                    "layer": layer,
                    "timeout_ms": hard_max_ms,
                    "hard_max": true,
                    "hint": "the call kept reporting progress until timeouts.hard_max_ms; raise it or split the work"
                }))
            }
            HubError::Cancelled => RpcError::new(codes::SERVER_ERROR, "Request cancelled")
                .with_data(json!({ "reason": "cancelled by the client" })),
            HubError::Upstream(e) => e.clone(),
            HubError::UpstreamProtocol { server, detail } => {
                RpcError::new(codes::INTERNAL_ERROR, "Upstream protocol error")
                    .with_data(json!({ "server": server, "detail": detail }))
            }
            HubError::Internal(detail) => RpcError::new(codes::INTERNAL_ERROR, "Internal error")
                .with_data(json!({ "detail": detail })),
        }
    }

    /// The `kind` field of the `tool.call.failed` log event.
    pub fn kind(&self) -> &'static str {
        match self {
            HubError::MethodNotFound(_)
            | HubError::InvalidParams { .. }
            | HubError::UnknownName { .. } => "invalid",
            HubError::ServerUnavailable { .. } => "unavailable",
            HubError::ServerRestarted { .. } => "restarted",
            HubError::Busy { .. } | HubError::LimitReached { .. } | HubError::Draining => "busy",
            HubError::RateLimited { .. } => "rate_limited",
            HubError::Timeout { .. } | HubError::TimeoutHardMax { .. } => "timeout",
            HubError::Cancelled => "cancelled",
            HubError::Upstream(_) | HubError::UpstreamProtocol { .. } => "upstream",
            HubError::Internal(_) => "internal",
        }
    }
}

impl From<actix::MailboxError> for HubError {
    fn from(e: actix::MailboxError) -> Self {
        HubError::Internal(format!("actor unavailable: {e}"))
    }
}
