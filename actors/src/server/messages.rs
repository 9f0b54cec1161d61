//! The ServerActor's public API. `Forward` and `Cancel` come from SessionActors; `Shutdown`
//! from the Supervisor; `ConnEvent` and `ReplyToUpstream` from transports and sessions.

use actix::prelude::*;
use serde_json::value::RawValue;

use super::sink::CallSink;
use crate::context::CallCtx;
use crate::error::HubError;
use crate::protocol::Id;

/// Run one request upstream and return its raw result. Sent by a SessionActor.
///
/// The params must already be rewritten for the upstream (original tool name; when the
/// client asked for progress, `_meta.progressToken` = `upstream_id`).
#[derive(Message)]
#[rtype(result = "Result<Box<RawValue>, HubError>")]
pub struct Forward {
    /// Request context.
    pub ctx: CallCtx,
    /// Hub-unique id for the upstream request (see `transport::next_upstream_id`).
    pub upstream_id: u64,
    /// Method.
    pub method: String,
    /// Rewritten params.
    pub params: Option<Box<RawValue>>,
    /// The client's own progress token, restored on progress notifications.
    pub progress: Option<Id>,
    /// Where related messages (progress, logging, server requests) go.
    pub sink: Option<CallSink>,
    /// Tool name for logs.
    pub tool: Option<String>,
}

/// The client cancelled the call that went upstream as `upstream_id`. Sent by a SessionActor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Cancel {
    /// The id the call went upstream with.
    pub upstream_id: u64,
    /// Why (forwarded upstream).
    pub reason: String,
}

/// Restart the worker now (operator action): in-flight calls fail with "server restarted",
/// queued ones wait for the new worker. Also revives a server marked `failed`. Returns the
/// runtime status once the new worker is ready, or the reason it could not start.
#[derive(Message)]
#[rtype(result = "Result<super::RuntimeStatus, HubError>")]
pub struct Restart;

/// Stop the worker and the actor. Sent by the Supervisor when a server is deleted,
/// disabled or replaced.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// A fault injected by tests (only honoured with `supervision.test_hooks = true`): makes the
/// ServerActor panic inside a handler, or stop on its own, to prove the Supervisor restarts
/// it and its waiting callers get an error instead of a hang.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub enum TestFault {
    /// Panic in the handler.
    Panic,
    /// Stop the actor (as if it had stopped on its own).
    Stop,
}

/// A client session ended (DELETE or idle): a `per_client` server closes the upstream
/// session of that context. Sent by the SessionActor as it stops.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClientSessionClosed {
    /// The client session id.
    pub session: std::sync::Arc<str>,
}
