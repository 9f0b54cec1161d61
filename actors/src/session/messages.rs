//! The SessionActor's public API. Everything here is sent by the HTTP layer, except
//! `UpstreamEvent` (from transports, see `server::sink`) and `CatalogChanged` (from the
//! session directory's notifier).

use actix::prelude::*;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::context::CallCtx;
use crate::error::HubError;
use crate::protocol::Id;

/// How the client wants this request answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// One JSON body with the response (related messages go to the GET stream).
    Json,
    /// An SSE stream: related messages, then the response.
    Sse,
    /// Legacy HTTP+SSE: everything goes on the session's one stream; the POST gets 202.
    Legacy,
}

/// One message for a client stream, ready to frame as SSE (or as a JSON body).
#[derive(Debug)]
pub struct Outbound {
    /// SSE event id: names the session, the stream and the position.
    pub event_id: String,
    /// The JSON-RPC message.
    pub json: std::sync::Arc<str>,
    /// True for the response that ends a request's stream.
    pub is_response: bool,
    /// True when that response is a JSON-RPC error.
    pub is_error: bool,
}

/// A stream the HTTP layer should relay to the client.
#[derive(Debug)]
pub struct Opened {
    /// Stream number within the session.
    pub stream: u64,
    /// Event id of the priming event (2025-11-25: an id with empty data first); none for a
    /// resumed stream, whose client already holds an id.
    pub priming_id: Option<String>,
    /// The messages.
    pub rx: mpsc::Receiver<Outbound>,
    /// Shared sessions: resolves once Redis holds the call this stream answers, so another
    /// instance can finish it. The HTTP layer sends the priming event (the client's handle
    /// for resuming) only then.
    pub durable: Option<tokio::sync::oneshot::Receiver<()>>,
}

/// A client request. Returns the stream its answer will arrive on (none in legacy mode,
/// where the answer goes on the session's one stream).
#[derive(Message)]
#[rtype(result = "Result<Option<Opened>, HubError>")]
pub struct HandleRequest {
    /// Request context.
    pub ctx: CallCtx,
    /// The client's request id.
    pub id: Id,
    /// Method.
    pub method: String,
    /// Raw params.
    pub params: Option<Box<RawValue>>,
    /// JSON or SSE.
    pub mode: ReplyMode,
}

/// A client notification (`initialized`, `cancelled`, ...).
#[derive(Message)]
#[rtype(result = "()")]
pub struct HandleNotification {
    /// Request context.
    pub ctx: CallCtx,
    /// Method.
    pub method: String,
    /// Raw params.
    pub params: Option<Box<RawValue>>,
}

/// A client's response to a server-to-client request. Returns false when no such request
/// is pending.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct HandleResponse {
    /// The id the hub gave the request.
    pub id: Id,
    /// `Ok(result)` or `Err(error object)`, raw.
    pub body: Result<Box<RawValue>, Box<RawValue>>,
}

/// Attach the standalone GET stream (server-initiated messages), or, with `Last-Event-ID`,
/// resume the stream that id belongs to: what it carried after the id is replayed first.
#[derive(Message)]
#[rtype(result = "Result<Opened, HubError>")]
pub struct AttachGet {
    /// `Last-Event-ID` the client sent, if any.
    pub last_event_id: Option<String>,
}

/// Open the single stream of a legacy HTTP+SSE session (`GET /sse`).
#[derive(Message)]
#[rtype(result = "Result<Opened, HubError>")]
pub struct OpenLegacy;

/// The HTTP layer read a stream to its end: everything on it reached the connection, so a
/// completed stream's log can go. Sent by the SSE framing code, and by the POST handler when
/// it answered a request stream as plain JSON.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StreamDrained {
    /// Stream number.
    pub stream: u64,
    /// Whether the client saw the stream's event ids (it was sent as SSE) and may still
    /// resume it for a while; false drops the log at once.
    pub resumable: bool,
}

/// End the session (client DELETE, idle expiry, hub shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Close {
    /// "delete", "idle" or "shutdown".
    pub reason: &'static str,
}

/// A server's lists changed. Sent by the session directory's notifier.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CatalogChanged {
    /// Server id.
    pub server: std::sync::Arc<str>,
}

/// A snapshot of a session for operators and tests. Sent by the admin API.
#[derive(Message)]
#[rtype(result = "SessionInfo")]
pub struct Inspect;

/// What [`Inspect`] returns.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionInfo {
    /// Session id.
    pub id: String,
    /// Owner.
    pub user: String,
    /// Negotiated protocol version.
    pub protocol_version: String,
    /// "streamable_http" or "sse".
    pub transport: &'static str,
    /// Calls in flight.
    pub calls_in_flight: usize,
    /// Events held for resumption.
    pub log_events: usize,
    /// Bytes held for resumption.
    pub log_bytes: usize,
    /// Whether a client connection is attached now.
    pub connected: bool,
}

/// A message another instance relayed for this session's stream, or the client's answer to
/// a server-to-client request this instance sent. Sent by the relay subscriber
/// ([`super::shared::SharedSessions::spawn_relay`]).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RelayIn(pub super::shared::Relayed);
