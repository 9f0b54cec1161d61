//! [`Mux`]: JSON-RPC multiplexing over one ordered message channel, shared by the stdio and
//! legacy-SSE transports. Outgoing messages go into a bounded queue that the transport's
//! writer drains (to a child's stdin, or as POSTs); incoming ones are fed to [`Mux::on_message`].
//!
//! Neither channel associates a server-to-client message with the request that caused it
//! (other than progress tokens). Such messages go to the oldest call in flight whose client
//! can receive them and that is not waiting on its client's answer to a server-to-client
//! request (a call parked on an unanswered question, e.g. a modern client's
//! `input_required` it never retries, must not swallow the logs and questions of later
//! calls); only if every call is waiting do they go to the oldest. With one call in
//! flight, the common case, that is exact. Except in a burst: a request that
//! arrives within [`ASK_BURST`] of the previous one goes to the same call, because a server
//! that asks several things at once (a tool awaiting an elicitation and a sampling
//! together) writes them back to back, and the first already made its call "waiting".

use actix::prelude::*;
use serde_json::value::RawValue;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

use super::{forward_notification, progress_token, upstream_error, CallResult, OutCall};
use crate::error::HubError;
use crate::protocol::jsonrpc::{empty_object, error_bytes, request_bytes, response_bytes};
use crate::protocol::{codes, Id, Message, RpcError};
use crate::server::sink::{CallSink, ReplyToUpstream, UpstreamEventKind};

/// Messages queued for the transport's writer before callers wait.
pub const WRITE_QUEUE: usize = 1024;

/// Server-to-client requests this close together count as one burst from one call.
pub const ASK_BURST: Duration = Duration::from_millis(25);

struct Pending {
    tx: oneshot::Sender<CallResult>,
    sink: Option<CallSink>,
    progress: Option<Id>,
    /// Server-to-client requests routed to this call and not answered yet.
    asking: u32,
}

/// Calls waiting on one ordered channel; see the module docs.
pub struct Mux {
    server: Arc<str>,
    writer: mpsc::Sender<String>,
    pending: RefCell<HashMap<u64, Pending>>,
    /// Unanswered server-to-client requests (upstream id, as JSON text) -> the call they
    /// were routed to.
    asked: RefCell<HashMap<String, u64>>,
    /// The call the last server-to-client request went to, and when.
    last_ask: Cell<Option<(u64, Instant)>>,
    reply_to: Recipient<ReplyToUpstream>,
}

/// Removes a call's pending entry when its future is dropped (timeout, cancel).
struct PendingGuard<'a> {
    mux: &'a Mux,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.mux.pending.borrow_mut().remove(&self.id);
        self.mux
            .asked
            .borrow_mut()
            .retain(|_, call| *call != self.id);
    }
}

impl Mux {
    /// A multiplexer whose outgoing messages go to `writer`.
    pub fn new(
        server: Arc<str>,
        writer: mpsc::Sender<String>,
        reply_to: Recipient<ReplyToUpstream>,
    ) -> Self {
        Self {
            server,
            writer,
            pending: RefCell::new(HashMap::new()),
            asked: RefCell::new(HashMap::new()),
            last_ask: Cell::new(None),
            reply_to,
        }
    }

    /// The server id this multiplexer belongs to.
    pub fn server(&self) -> &Arc<str> {
        &self.server
    }

    /// Sends a request and waits for its response.
    pub async fn call(&self, call: OutCall) -> CallResult {
        let (tx, rx) = oneshot::channel();
        self.pending.borrow_mut().insert(
            call.id,
            Pending {
                tx,
                sink: call.sink,
                progress: call.progress,
                asking: 0,
            },
        );
        let _guard = PendingGuard {
            mux: self,
            id: call.id,
        };
        let msg = request_bytes(&call.id.to_string(), &call.method, call.params.as_deref());
        if self.writer.send(msg).await.is_err() {
            return Err(self.restarted("connection closed"));
        }
        rx.await
            .unwrap_or_else(|_| Err(self.restarted("connection closed")))
    }

    /// Forgets call `id` and sends the cancellation upstream.
    pub fn cancel(&self, id: u64, notification: String, force: bool) {
        if self.pending.borrow_mut().remove(&id).is_some() || force {
            self.send(notification);
        }
    }

    /// Notes that the server-to-client request `upstream_id` got its answer (the caller
    /// then sends it): its call no longer counts as waiting on its client.
    pub fn answered(&self, upstream_id: &Id) {
        let Some(call) = self.asked.borrow_mut().remove(&id_key(upstream_id)) else {
            return;
        };
        if let Some(p) = self.pending.borrow_mut().get_mut(&call) {
            p.asking = p.asking.saturating_sub(1);
        }
    }

    /// Queues one message without waiting.
    pub fn send(&self, msg: String) {
        if self.writer.try_send(msg).is_err() {
            tracing::warn!(event = "worker.write_dropped", server = %self.server, "write queue full or closed");
        }
    }

    fn restarted(&self, reason: &str) -> HubError {
        HubError::ServerRestarted {
            server: self.server.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Fails every waiting call with "server restarted".
    pub fn fail_all(&self, reason: &str) {
        let drained: Vec<Pending> = self.pending.borrow_mut().drain().map(|(_, p)| p).collect();
        for p in drained {
            let _ = p.tx.send(Err(self.restarted(reason)));
        }
    }

    /// Handles one incoming message; returns true when it announced a list change.
    pub fn on_message(&self, bytes: &[u8]) -> bool {
        let msg = match Message::parse(bytes) {
            Ok(m) => m,
            Err((_, e)) => {
                tracing::warn!(event = "worker.bad_output", server = %self.server, error = %e.message, line = %String::from_utf8_lossy(&bytes[..bytes.len().min(200)]));
                return false;
            }
        };
        match msg {
            Message::Response { id, result } => {
                if let Some(p) = self.take(&id) {
                    let _ = p.tx.send(Ok(result));
                }
            }
            Message::Error {
                id: Some(id),
                error,
            } => {
                if let Some(p) = self.take(&id) {
                    let _ = p.tx.send(Err(upstream_error(&self.server, &error)));
                }
            }
            Message::Error { id: None, error } => {
                tracing::warn!(event = "worker.error", server = %self.server, error = %error.get());
            }
            Message::Notification { method, params } => {
                if method.ends_with("/list_changed") {
                    return true;
                }
                self.on_notification(&method, params.as_deref());
            }
            Message::Request { id, method, params } => self.on_request(id, method, params),
        }
        false
    }

    fn take(&self, id: &Id) -> Option<Pending> {
        let key = match id {
            Id::Num(n) => u64::try_from(*n).ok()?,
            Id::Str(s) => s.parse().ok()?,
        };
        self.pending.borrow_mut().remove(&key)
    }

    fn on_notification(&self, method: &str, params: Option<&RawValue>) {
        let pending = self.pending.borrow();
        if method == "notifications/progress" {
            if let Some(p) = progress_token(params).and_then(|t| pending.get(&t)) {
                if let Some(sink) = &p.sink {
                    forward_notification(&self.server, method, params, sink, p.progress.as_ref());
                }
            }
            return;
        }
        if let Some(sink) = oldest_sink(&pending) {
            forward_notification(&self.server, method, params, sink, None);
        }
    }

    fn on_request(&self, id: Id, method: String, params: Option<Box<RawValue>>) {
        if method == "ping" {
            self.send(response_bytes(&id, &empty_object()));
            return;
        }
        let mut pending = self.pending.borrow_mut();
        let now = Instant::now();
        let burst = self
            .last_ask
            .get()
            .filter(|(call, at)| {
                now.duration_since(*at) < ASK_BURST
                    && pending.get(call).is_some_and(|p| p.sink.is_some())
            })
            .map(|(call, _)| call);
        let target = burst.or_else(|| {
            pending
                .iter()
                .filter(|(_, p)| p.sink.is_some())
                .min_by_key(|(call, p)| (p.asking > 0, **call))
                .map(|(call, _)| *call)
        });
        self.last_ask.set(target.map(|call| (call, now)));
        match target.and_then(|call| pending.get_mut(&call).map(|p| (call, p))) {
            Some((call, p)) => {
                p.asking += 1;
                self.asked.borrow_mut().insert(id_key(&id), call);
                if let Some(sink) = &p.sink {
                    sink.send(
                        &self.server,
                        UpstreamEventKind::Request {
                            method,
                            params,
                            upstream_id: id,
                            reply_to: self.reply_to.clone(),
                        },
                    );
                }
            }
            None => {
                drop(pending);
                let err = RpcError::new(codes::METHOD_NOT_FOUND, format!("{method}: no client is waiting on this server")).with_data(
                    serde_json::json!({"hint": "mcp-hub relays server-to-client requests only while a client call to this server is in flight"}),
                );
                self.send(error_bytes(Some(&id), &err));
            }
        }
    }
}

/// A map key for a JSON-RPC id (numbers and strings never collide: strings keep quotes).
fn id_key(id: &Id) -> String {
    match id {
        Id::Num(n) => n.to_string(),
        Id::Str(s) => format!("{s:?}"),
    }
}

/// The sink of the oldest call in flight that is not waiting on its client's answer (a
/// call parked on a question is rarely the one logging), else of the oldest call.
fn oldest_sink(pending: &HashMap<u64, Pending>) -> Option<&CallSink> {
    pending
        .iter()
        .filter_map(|(id, p)| p.sink.as_ref().map(|s| ((p.asking > 0, *id), s)))
        .min_by_key(|(order, _)| *order)
        .map(|(_, s)| s)
}
