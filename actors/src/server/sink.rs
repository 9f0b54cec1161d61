//! What flows from an upstream back toward client sessions while a call runs: progress,
//! logging and server-to-client requests ([`UpstreamEvent`]), addressed by a [`CallSink`].

use actix::prelude::*;
use serde_json::value::RawValue;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::protocol::jsonrpc::to_raw;
use crate::protocol::{Id, RpcError};

/// Where messages related to one call go: the session that made it and the stream that
/// carries its answer. Handed to the ServerActor inside `Forward`.
#[derive(Clone)]
pub struct CallSink {
    /// The session actor.
    pub session: Recipient<UpstreamEvent>,
    /// The session's stream for this call.
    pub stream: u64,
    /// When the upstream last reported progress for this call: read by the server and hub
    /// timeouts, which progress pushes back (see `timeouts.progress_extends`).
    pub clock: ProgressClock,
}

/// When a call last reported progress. Touched by transports (through
/// `forward_notification`), read by the call's deadlines. Cheap to clone (shared).
#[derive(Clone, Default, Debug)]
pub struct ProgressClock(Arc<Mutex<Option<Instant>>>);

impl ProgressClock {
    /// Progress arrived now.
    pub fn touch(&self) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some(Instant::now());
        }
    }

    /// The last progress, if any.
    pub fn last(&self) -> Option<Instant> {
        self.0.lock().ok().and_then(|l| *l)
    }
}

impl CallSink {
    /// Delivers an event; a closed session simply drops it.
    pub fn send(&self, server: &Arc<str>, kind: UpstreamEventKind) {
        self.session.do_send(UpstreamEvent {
            stream: self.stream,
            server: server.clone(),
            kind,
        });
    }
}

/// A message from an upstream for a client session. Sent by transports to SessionActors.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UpstreamEvent {
    /// The session stream the related call answers on.
    pub stream: u64,
    /// Which server it came from.
    pub server: Arc<str>,
    /// What it is.
    pub kind: UpstreamEventKind,
}

/// The two kinds of upstream-originated messages.
pub enum UpstreamEventKind {
    /// A notification, already rewritten for the client (progress token mapped back); the
    /// complete JSON-RPC message text.
    Notification(String),
    /// A server-to-client request (sampling, elicitation, roots). The session gives it a
    /// client-side id and sends the client's answer to `reply_to` under `upstream_id`.
    Request {
        /// Method, e.g. `sampling/createMessage`.
        method: String,
        /// Raw params.
        params: Option<Box<RawValue>>,
        /// The id the upstream used.
        upstream_id: Id,
        /// Who delivers the answer upstream.
        reply_to: Recipient<ReplyToUpstream>,
    },
}

/// The client's answer to a server-to-client request. Sent by a SessionActor to the
/// ServerActor that raised the request.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReplyToUpstream {
    /// The id the upstream used for its request.
    pub upstream_id: Id,
    /// `Ok(result)` or `Err(error object)`, raw.
    pub body: Result<Box<RawValue>, Box<RawValue>>,
}

impl ReplyToUpstream {
    /// Refuses the upstream's request `upstream_id` with `error`.
    pub fn refusal(upstream_id: Id, error: &RpcError) -> Self {
        Self {
            upstream_id,
            body: Err(to_raw(error)),
        }
    }
}
