//! SessionActor: one client session.
//!
//! State: negotiated protocol version and client capabilities, the event log of its streams
//! (one per POST answered with SSE, the standalone GET stream, or the one legacy stream),
//! calls in flight (for cancellation), server-to-client requests awaiting the client's answer.
//! Messages: see `messages.rs`; also `UpstreamEvent` from transports.
//! Timers: idle check and log sweep; the session ends after `idle_ttl` with no connection
//! and no call.
//! Failure behaviour: the session outlives its connections. A dropped connection is not a
//! cancellation (MCP): the call runs on, its messages wait in the log, and a GET with
//! `Last-Event-ID` replays them. A slow reader never blocks the actor. Stopping cancels
//! every call upstream.

use actix::prelude::*;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::directory::SessionDirectory;
use super::event_log::{EventLog, LogLimits, ResumeError, StreamKind};
use super::messages::*;
use super::shared::{
    PendingCall, RelayTarget, SessionRecord, SharedEvent, SharedSessions, SharedStream,
};
use crate::directory::ServerDirectory;
use crate::error::HubError;
use crate::protocol::jsonrpc::{error_bytes, notification_bytes, request_bytes, response_bytes};
use crate::protocol::{codes, Id, RpcError};
use crate::router::Scope;
use crate::server::{Cancel, ReplyToUpstream, ServerActor, UpstreamEvent, UpstreamEventKind};
use crate::tasks::TaskStatusChanged;

/// Stream number of a legacy stream held by another instance (shared sessions): messages
/// "sent" on it are relayed through Redis.
const RELAY_LEGACY: u64 = u64::MAX;
/// Stream number of a standalone GET stream held by another instance.
const RELAY_STANDALONE: u64 = u64::MAX - 1;

/// Tunables shared by all sessions.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// A session with no stream and no call ends after this long.
    pub idle_ttl: Duration,
    /// Live sessions at most.
    pub max_sessions: usize,
    /// Live sessions one user may hold.
    pub max_sessions_per_user: usize,
    /// Items per page of a merged list.
    pub page_size: usize,
    /// Hub-layer timeout around each upstream call.
    pub hub_timeout: Duration,
    /// Messages buffered per stream connection before a slow reader stops getting live
    /// notifications (they stay in the log).
    pub stream_buffer: usize,
    /// Bounds of each session's event log.
    pub log: LogLimits,
    /// Calls in flight across every session of this hub.
    pub max_in_flight: usize,
    /// With `timeouts.progress_extends`: how far progress may stretch the hub deadline from
    /// a call's start (the hard maximum plus the hub-over-server margin, so the server layer
    /// fires first and cancels upstream). `None`: the hub timeout is fixed.
    pub progress_hard_max: Option<Duration>,
    /// Largest `arguments` of a `tools/call` (`limits.max_arguments_bytes`).
    pub max_arguments_bytes: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_ttl: Duration::from_secs(30 * 60),
            max_sessions: 10_000,
            max_sessions_per_user: 1000,
            page_size: 1000,
            hub_timeout: Duration::from_secs(25),
            stream_buffer: 256,
            log: LogLimits::default(),
            max_in_flight: 16_384,
            progress_hard_max: None,
            max_arguments_bytes: crate::validation::DEFAULT_MAX_ARGUMENTS_BYTES,
        }
    }
}

pub(super) struct CallState {
    pub stream: u64,
    pub mode: ReplyMode,
    pub upstream: Option<(Addr<ServerActor>, u64)>,
    pub handle: Option<SpawnHandle>,
    pub tool: Option<String>,
    pub request_id: Arc<str>,
    pub started: Instant,
}

struct ServerRequest {
    reply_to: Recipient<ReplyToUpstream>,
    upstream_id: Id,
}

/// Owns one client session; see the module docs.
pub struct SessionActor {
    pub(super) id: Arc<str>,
    pub(super) user: Arc<str>,
    pub(super) scope: Scope,
    pub(super) servers: ServerDirectory,
    pub(super) sessions: SessionDirectory,
    pub(super) config: Arc<SessionConfig>,
    pub(super) version: &'static str,
    pub(super) client_caps: Value,
    pub(super) initialized: bool,
    log: EventLog,
    standalone: Option<u64>,
    legacy: Option<u64>,
    pub(super) calls: HashMap<Id, CallState>,
    server_requests: HashMap<String, ServerRequest>,
    next_server_request: u64,
    last_activity: Instant,
    close_reason: &'static str,
    /// The Redis mirror, when sessions are shared by several instances.
    pub(super) shared: Option<SharedSessions>,
    last_touch: Instant,
}

impl SessionActor {
    /// A session for `user` seeing `scope`.
    pub fn new(
        id: Arc<str>,
        user: Arc<str>,
        scope: Scope,
        servers: ServerDirectory,
        sessions: SessionDirectory,
        config: Arc<SessionConfig>,
    ) -> Self {
        let shared = sessions.shared().cloned();
        let mut log = EventLog::new(id.clone(), config.log.clone());
        if shared.is_some() {
            // Another instance may serve this session too: draw a stream range of our own.
            log.set_stream_base(((uuid::Uuid::new_v4().as_u128() as u64) & 0xffff_ffff) << 16);
        }
        Self {
            log,
            id,
            user,
            scope,
            servers,
            sessions,
            config,
            version: crate::protocol::version::LATEST,
            client_caps: Value::Null,
            initialized: false,
            standalone: None,
            legacy: None,
            calls: HashMap::new(),
            server_requests: HashMap::new(),
            next_server_request: 1,
            last_activity: Instant::now(),
            close_reason: "shutdown",
            shared,
            last_touch: Instant::now(),
        }
    }

    /// Takes the state of a session another instance created (adoption).
    pub(super) fn restore(&mut self, record: &SessionRecord) {
        self.version = crate::protocol::version::negotiate(Some(&record.version));
        self.client_caps = record.caps.clone();
        self.initialized = true;
    }

    /// Appends to a stream's log, mirroring request streams to Redis when shared. The relay
    /// streams publish instead: the stream is attached on another instance.
    fn append(&mut self, stream: u64, json: String, is_response: bool, is_error: bool) -> bool {
        if stream >= RELAY_STANDALONE {
            let Some(shared) = &self.shared else {
                return false;
            };
            let to = if stream == RELAY_LEGACY {
                RelayTarget::Legacy
            } else {
                RelayTarget::Standalone
            };
            shared.relay(&self.id, to, json);
            return true;
        }
        let mirror = self
            .shared
            .as_ref()
            .filter(|_| self.log.kind_of(stream) == Some(StreamKind::Request))
            .map(|_| json.clone());
        let Some(seq) = self.log.append_seq(stream, json, is_response, is_error) else {
            return false;
        };
        if let (Some(shared), Some(json)) = (&self.shared, mirror) {
            shared.event(
                &self.id,
                stream,
                SharedEvent {
                    seq,
                    json,
                    is_response,
                    is_error,
                },
            );
        }
        true
    }

    /// Renews the session's Redis keys now and then while it is used.
    fn touch(&mut self) {
        self.last_activity = Instant::now();
        if let Some(shared) = &self.shared {
            if self.last_touch.elapsed() >= (self.config.idle_ttl / 4).max(Duration::from_secs(1)) {
                self.last_touch = Instant::now();
                shared.touch(&self.id);
            }
        }
    }

    fn open_stream(&mut self, kind: StreamKind, capacity: usize) -> Opened {
        let attached = self.log.open(kind, capacity);
        Opened {
            stream: attached.stream,
            priming_id: (kind != StreamKind::Json).then(|| self.log.event_id(attached.stream, 0)),
            rx: attached.rx,
            durable: None,
        }
    }

    /// Sends one message on a stream (logged for resumption unless the stream is plain JSON).
    pub(super) fn send(&mut self, stream: u64, json: String, is_response: bool) -> bool {
        self.append(stream, json, is_response, false)
    }

    /// The stream for messages related to a call: its own when SSE, else the GET stream.
    pub(super) fn related_stream(&self, stream: u64, mode: ReplyMode) -> Option<u64> {
        match mode {
            ReplyMode::Sse | ReplyMode::Legacy => Some(stream),
            ReplyMode::Json => self
                .standalone
                .or(self.shared.as_ref().map(|_| RELAY_STANDALONE)),
        }
    }

    /// Delivers the final answer of a call and closes its stream.
    pub(super) fn finish(&mut self, id: Id, result: Result<Box<RawValue>, HubError>) {
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        if let Err(e) = &result {
            if let (
                HubError::Timeout { layer: "hub", .. }
                | HubError::TimeoutHardMax { layer: "hub", .. },
                Some((addr, upstream_id)),
            ) = (e, &call.upstream)
            {
                addr.do_send(Cancel {
                    upstream_id: *upstream_id,
                    reason: "hub timeout".into(),
                });
            }
        }
        self.respond(
            call.stream,
            call.mode,
            &id,
            call.tool.as_deref(),
            &call.request_id,
            call.started,
            result,
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn respond(
        &mut self,
        stream: u64,
        mode: ReplyMode,
        id: &Id,
        tool: Option<&str>,
        request_id: &str,
        started: Instant,
        result: Result<Box<RawValue>, HubError>,
    ) {
        let is_error = result.is_err();
        let json = match result {
            Ok(r) => response_bytes(id, &r),
            Err(HubError::Cancelled) if mode != ReplyMode::Json => {
                // MCP: a cancelled request gets no response; its stream simply ends.
                if mode == ReplyMode::Sse {
                    self.log.end_silently(stream);
                }
                return;
            }
            Err(e) => {
                if matches!(e.kind(), "busy" | "rate_limited" | "unavailable") {
                    metrics::counter!("mcp_hub_rejected_total", "reason" => e.kind()).increment(1);
                }
                if let Some(tool) = tool {
                    tracing::warn!(
                        event = "tool.call.failed", request_id = %request_id, session = %self.id, tool = %tool,
                        error = %e, kind = e.kind(), latency_ms = started.elapsed().as_millis() as u64, "tool.call.failed"
                    );
                }
                error_bytes(Some(id), &e.to_rpc())
            }
        };
        self.append(stream, json, true, is_error);
    }

    fn cancel_call(&mut self, ctx: &mut Context<Self>, id: &Id, reason: &str) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if let Some(handle) = call.handle.take() {
            ctx.cancel_future(handle);
        }
        if let Some((addr, upstream_id)) = &call.upstream {
            addr.do_send(Cancel {
                upstream_id: *upstream_id,
                reason: reason.to_string(),
            });
        }
        self.finish(id.clone(), Err(HubError::Cancelled));
    }

    fn list_changed(&mut self) {
        let Some(get) = self.standalone.or(self.legacy) else {
            return;
        };
        for method in [
            "notifications/tools/list_changed",
            "notifications/prompts/list_changed",
            "notifications/resources/list_changed",
        ] {
            self.send(get, notification_bytes(method, None), false);
        }
    }

    fn has_client_capability(&self, method: &str) -> bool {
        let cap = match method {
            "sampling/createMessage" => "sampling",
            "elicitation/create" => "elicitation",
            "roots/list" => "roots",
            _ => return true,
        };
        self.client_caps.get(cap).is_some_and(|v| !v.is_null())
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        // Counted as Streamable HTTP until a legacy stream opens (OpenLegacy moves it).
        metrics::gauge!("mcp_hub_sessions", "transport" => "streamable_http").increment(1.0);
        let every = (self.config.idle_ttl / 4)
            .min(self.config.log.max_age / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(30));
        ctx.run_interval(every, |act, ctx| {
            act.log.sweep();
            let busy = !act.calls.is_empty() || act.log.has_connections();
            if !busy && act.last_activity.elapsed() >= act.config.idle_ttl {
                act.close_reason = "idle";
                ctx.stop();
            }
        });
    }

    fn stopping(&mut self, ctx: &mut Self::Context) -> Running {
        let ids: Vec<Id> = self.calls.keys().cloned().collect();
        for id in ids {
            self.cancel_call(ctx, &id, "session closed");
        }
        Running::Stop
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.sessions.remove(&self.id);
        // Servers that keep an upstream session per client session end this one's.
        for server in self.servers.snapshot() {
            if server.def.session_mode() == crate::registry::SessionMode::PerClient {
                server.addr.do_send(crate::server::ClientSessionClosed {
                    session: self.id.clone(),
                });
            }
        }
        if let (Some(shared), "delete") = (&self.shared, self.close_reason) {
            shared.delete(&self.id);
        }
        tracing::info!(
            event = "session.closed", session = %self.id, reason = self.close_reason,
            lost_results = self.log.lost_results(), "session.closed"
        );
        metrics::gauge!("mcp_hub_sessions", "transport" => if self.legacy.is_some() { "sse" } else { "streamable_http" }).decrement(1.0);
    }
}

impl Handler<HandleRequest> for SessionActor {
    type Result = Result<Option<Opened>, HubError>;

    fn handle(&mut self, msg: HandleRequest, ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        if self.calls.contains_key(&msg.id) {
            return Err(HubError::InvalidParams {
                message: format!("Request id {} is already in use", msg.id),
                data: serde_json::json!({"hint": "use a new id for every request in a session"}),
            });
        }
        let (stream, opened) = match msg.mode {
            ReplyMode::Json => {
                let o = self.open_stream(StreamKind::Json, 1);
                (o.stream, Some(o))
            }
            ReplyMode::Sse => {
                let o = self.open_stream(StreamKind::Request, self.config.stream_buffer);
                (o.stream, Some(o))
            }
            ReplyMode::Legacy => match self.legacy {
                Some(s) => (s, None),
                // Shared sessions: the stream is on the instance that served GET /sse.
                None if self.shared.is_some() => (RELAY_LEGACY, None),
                None => {
                    return Err(HubError::invalid_params(
                        "No event stream",
                        "open GET /sse first; its endpoint event names where to POST",
                    ))
                }
            },
        };
        let mut opened = opened;
        if let (Some(shared), ReplyMode::Sse, Some(o)) = (&self.shared, msg.mode, opened.as_mut()) {
            // Another instance can finish this call if this one dies before answering.
            o.durable = shared.pending(
                &self.id,
                stream,
                &PendingCall {
                    node: shared.node().to_string(),
                    id: msg.id.clone(),
                    method: msg.method.clone(),
                    params: msg.params.clone(),
                },
            );
        }
        self.start_request(ctx, msg, stream);
        Ok(opened)
    }
}

impl Handler<HandleNotification> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: HandleNotification, ctx: &mut Self::Context) {
        self.last_activity = Instant::now();
        match msg.method.as_str() {
            "notifications/initialized" => self.initialized = true,
            "notifications/cancelled" => {
                #[derive(serde::Deserialize)]
                struct P {
                    #[serde(rename = "requestId")]
                    request_id: Id,
                    reason: Option<String>,
                }
                if let Some(p) = msg
                    .params
                    .and_then(|p| serde_json::from_str::<P>(p.get()).ok())
                {
                    let reason = p.reason.unwrap_or_else(|| "cancelled by client".into());
                    self.cancel_call(ctx, &p.request_id, &reason);
                }
            }
            other => {
                tracing::debug!(event = "session.notification.ignored", session = %self.id, method = other)
            }
        }
    }
}

impl Handler<HandleResponse> for SessionActor {
    type Result = bool;

    fn handle(&mut self, msg: HandleResponse, _: &mut Self::Context) -> bool {
        self.last_activity = Instant::now();
        let key = msg.id.to_string();
        match self.server_requests.remove(&key) {
            Some(req) => {
                req.reply_to.do_send(ReplyToUpstream {
                    upstream_id: req.upstream_id,
                    body: msg.body,
                });
                true
            }
            None => match &self.shared {
                // Maybe another instance sent that request: its actor for this session
                // takes the answer from the relay.
                Some(shared) => {
                    let (json, error) = match msg.body {
                        Ok(r) => (r.get().to_string(), false),
                        Err(e) => (e.get().to_string(), true),
                    };
                    shared.relay(&self.id, RelayTarget::Response { id: msg.id, error }, json);
                    true
                }
                None => false,
            },
        }
    }
}

impl Handler<RelayIn> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: RelayIn, _: &mut Self::Context) {
        let relayed = msg.0;
        match relayed.to {
            RelayTarget::Legacy => {
                if let Some(s) = self.legacy {
                    self.log.append(s, relayed.json, false, false);
                }
            }
            RelayTarget::Standalone => {
                if let Some(s) = self.standalone {
                    self.log.append(s, relayed.json, false, false);
                }
            }
            RelayTarget::Response { id, error } => {
                let Some(req) = self.server_requests.remove(&id.to_string()) else {
                    return;
                };
                let Ok(raw) = RawValue::from_string(relayed.json) else {
                    return;
                };
                req.reply_to.do_send(ReplyToUpstream {
                    upstream_id: req.upstream_id,
                    body: if error { Err(raw) } else { Ok(raw) },
                });
            }
        }
    }
}

impl Handler<AttachGet> for SessionActor {
    type Result = ResponseActFuture<Self, Result<Opened, HubError>>;

    fn handle(&mut self, msg: AttachGet, _: &mut Self::Context) -> Self::Result {
        self.touch();
        if let Some(last) = msg.last_event_id.as_deref() {
            match self.log.resume(last, self.config.stream_buffer) {
                Ok(attached) => {
                    tracing::info!(
                        event = "session.resumed", session = %self.id, last_event_id = last,
                        replayed = attached.replayed, "session.resumed"
                    );
                    if Some(attached.stream) != self.legacy
                        && !self.calls.values().any(|c| c.stream == attached.stream)
                    {
                        // Not a request stream still in flight and not the legacy stream: it
                        // is (or was) the standalone stream; it is current again.
                        if let Some(old) = self
                            .standalone
                            .replace(attached.stream)
                            .filter(|o| *o != attached.stream)
                        {
                            self.log.retire(old);
                        }
                    }
                    return Box::pin(fut::ready(Ok(Opened {
                        stream: attached.stream,
                        priming_id: None,
                        rx: attached.rx,
                        durable: None,
                    })));
                }
                Err(ResumeError::Malformed) => {
                    return Box::pin(fut::ready(Err(HubError::invalid_params(
                        "Invalid Last-Event-ID",
                        "send the id of the last event received on this session, unchanged",
                    ))))
                }
                Err(ResumeError::UnknownStream) => {
                    if let Some(shared) = self.shared.clone() {
                        return self.resume_shared(shared, last.to_string());
                    }
                    tracing::warn!(event = "session.resume.unknown_stream", session = %self.id, last_event_id = last, "stream ended or was evicted; opening a fresh standalone stream");
                }
            }
        }
        Box::pin(fut::ready(Ok(self.fresh_standalone())))
    }
}

impl SessionActor {
    fn fresh_standalone(&mut self) -> Opened {
        if let Some(old) = self.standalone.take() {
            self.log.retire(old);
        }
        let opened = self.open_stream(StreamKind::Standalone, self.config.stream_buffer);
        self.standalone = Some(opened.stream);
        opened
    }

    /// A resume of a stream this instance never held: another instance started it. What
    /// Redis logged of it is replayed; an unfinished stream is then tailed until its
    /// response, and its call is run here if the instance running it died.
    fn resume_shared(
        &mut self,
        shared: SharedSessions,
        last: String,
    ) -> ResponseActFuture<Self, Result<Opened, HubError>> {
        let Some((_, stream, after)) = super::event_log::parse_event_id(&last) else {
            return Box::pin(fut::ready(Ok(self.fresh_standalone())));
        };
        let session = self.id.clone();
        let reader = shared.clone();
        Box::pin(
            async move { reader.read_stream(&session, stream, after).await }
                .into_actor(self)
                .map(move |read, act, ctx| {
                    let found = match read {
                        Ok(found) if !found.events.is_empty() || found.pending.is_some() => found,
                        Ok(_) => {
                            tracing::warn!(event = "session.resume.unknown_stream", session = %act.id, last_event_id = %last, "stream ended or was evicted; opening a fresh standalone stream");
                            return Ok(act.fresh_standalone());
                        }
                        Err(e) => {
                            tracing::warn!(event = "session.resume.unknown_stream", session = %act.id, last_event_id = %last, error = %e, "Redis did not answer; opening a fresh standalone stream");
                            return Ok(act.fresh_standalone());
                        }
                    };
                    let SharedStream {
                        events,
                        pending,
                        cursor,
                    } = found;
                    let completed = events.iter().any(|e| e.is_response);
                    let attached = act.log.adopt(stream, events, after, act.config.stream_buffer);
                    tracing::info!(
                        event = "session.resumed", session = %act.id, last_event_id = %last,
                        replayed = attached.replayed, from = "redis", "session.resumed"
                    );
                    if !completed {
                        let tail = Tail {
                            shared,
                            session: act.id.clone(),
                            stream,
                            cursor,
                            owner: pending.map(|p| p.node),
                            addr: ctx.address(),
                            max: act.config.log.max_age,
                        };
                        actix::spawn(tail.run());
                    }
                    Ok(Opened {
                        stream: attached.stream,
                        priming_id: None,
                        rx: attached.rx,
                        durable: None,
                    })
                }),
        )
    }
}

/// Follows a stream another instance is answering: relays its events from Redis to the
/// session actor that adopted it, and, if that instance stops heartbeating, claims the
/// call so the adopting actor runs it.
struct Tail {
    shared: SharedSessions,
    session: Arc<str>,
    stream: u64,
    cursor: String,
    owner: Option<String>,
    addr: Addr<SessionActor>,
    max: Duration,
}

impl Tail {
    async fn run(mut self) {
        let started = Instant::now();
        let mut seen = SharedStream {
            cursor: self.cursor.clone(),
            ..Default::default()
        };
        let mut last_check = Instant::now();
        while started.elapsed() < self.max && self.addr.connected() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if self
                .shared
                .read_more(&self.session, self.stream, 0, &mut seen)
                .await
                .is_err()
            {
                continue;
            }
            for ev in seen.events.drain(..) {
                let done = ev.is_response;
                self.addr.do_send(RemoteEvent {
                    stream: self.stream,
                    event: ev,
                });
                if done {
                    return;
                }
            }
            if last_check.elapsed() < Duration::from_secs(1) {
                continue;
            }
            last_check = Instant::now();
            let Some(owner) = self.owner.as_deref() else {
                continue;
            };
            if owner == self.shared.node()
                || !matches!(self.shared.node_alive(owner).await, Ok(false))
            {
                continue;
            }
            match self.shared.claim(&self.session, self.stream, owner).await {
                Ok(true) => {
                    // Everything the dead node logged is in; the rest comes from the rerun.
                    let _ = self
                        .shared
                        .read_more(&self.session, self.stream, 0, &mut seen)
                        .await;
                    for ev in seen.events.drain(..) {
                        self.addr.do_send(RemoteEvent {
                            stream: self.stream,
                            event: ev,
                        });
                    }
                    match self.shared.pending_call(&self.session, self.stream).await {
                        Ok(Some(call)) => self.addr.do_send(Rerun {
                            stream: self.stream,
                            call,
                        }),
                        _ => return,
                    }
                    return;
                }
                // Another instance claimed it, or the call finished meanwhile: keep following.
                Ok(false) => {
                    if let Ok(now) = self.shared.pending_call(&self.session, self.stream).await {
                        self.owner = now.map(|p| p.node);
                    }
                }
                Err(_) => {}
            }
        }
    }
}

/// An event another instance logged on a stream this session adopted. Sent by [`Tail`].
#[derive(Message)]
#[rtype(result = "()")]
struct RemoteEvent {
    stream: u64,
    event: SharedEvent,
}

impl Handler<RemoteEvent> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: RemoteEvent, _: &mut Self::Context) {
        let e = msg.event;
        self.log
            .append_at(msg.stream, e.seq, e.json, e.is_response, e.is_error);
    }
}

/// Run here the call of an adopted stream whose instance died. Sent by [`Tail`] after it
/// won the claim.
#[derive(Message)]
#[rtype(result = "()")]
struct Rerun {
    stream: u64,
    call: PendingCall,
}

impl Handler<Rerun> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Rerun, ctx: &mut Self::Context) {
        if !self.log.contains(msg.stream) || self.calls.contains_key(&msg.call.id) {
            return;
        }
        tracing::warn!(
            event = "session.call.rerun", session = %self.id, stream = msg.stream,
            method = %msg.call.method, "the instance running this call died; running it again here"
        );
        let request = HandleRequest {
            ctx: crate::context::CallCtx {
                request_id: Arc::from(uuid::Uuid::new_v4().to_string()),
                session: Some(self.id.clone()),
                user: self.user.clone(),
            },
            id: msg.call.id,
            method: msg.call.method,
            params: msg.call.params,
            mode: ReplyMode::Sse,
        };
        self.start_request(ctx, request, msg.stream);
    }
}

impl Handler<OpenLegacy> for SessionActor {
    type Result = Result<Opened, HubError>;

    fn handle(&mut self, _: OpenLegacy, _: &mut Self::Context) -> Self::Result {
        self.last_activity = Instant::now();
        if self.legacy.is_none() {
            metrics::gauge!("mcp_hub_sessions", "transport" => "streamable_http").decrement(1.0);
            metrics::gauge!("mcp_hub_sessions", "transport" => "sse").increment(1.0);
        }
        if let Some(old) = self.legacy.take() {
            self.log.retire(old);
        }
        let mut opened = self.open_stream(StreamKind::Legacy, self.config.stream_buffer);
        opened.priming_id = None;
        self.legacy = Some(opened.stream);
        Ok(opened)
    }
}

impl Handler<StreamDrained> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: StreamDrained, _: &mut Self::Context) {
        if msg.resumable {
            self.log.drained(msg.stream);
        } else {
            self.log.end_silently(msg.stream);
        }
    }
}

impl Handler<Close> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Close, ctx: &mut Self::Context) {
        self.close_reason = msg.reason;
        ctx.stop();
    }
}

impl Handler<CatalogChanged> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: CatalogChanged, _: &mut Self::Context) {
        if self.initialized {
            self.list_changed();
        }
    }
}

impl Handler<UpstreamEvent> for SessionActor {
    type Result = ();

    fn handle(&mut self, ev: UpstreamEvent, _: &mut Self::Context) {
        let stream = if self.log.contains(ev.stream) || ev.stream >= RELAY_STANDALONE {
            Some(ev.stream)
        } else {
            self.standalone.or(self.legacy)
        };
        match ev.kind {
            UpstreamEventKind::Notification(json) => {
                if let Some(s) = stream {
                    self.send(s, json, false);
                }
            }
            UpstreamEventKind::Request {
                method,
                params,
                upstream_id,
                reply_to,
            } => {
                let refuse = |message: String| {
                    let err = RpcError::new(codes::METHOD_NOT_FOUND, message);
                    reply_to.do_send(ReplyToUpstream::refusal(upstream_id.clone(), &err));
                };
                if !self.has_client_capability(&method) {
                    refuse(format!(
                        "{method}: the client did not declare this capability"
                    ));
                    return;
                }
                let Some(s) = stream else {
                    refuse(format!(
                        "{method}: the client has no open stream to receive it"
                    ));
                    return;
                };
                let n = self.next_server_request;
                self.next_server_request += 1;
                let id = Id::Str(format!("hub-{n}"));
                let json = request_bytes(&id.to_json(), &method, params.as_deref());
                if self.send(s, json, false) {
                    self.server_requests.insert(
                        id.to_string(),
                        ServerRequest {
                            reply_to,
                            upstream_id,
                        },
                    );
                } else {
                    refuse(format!("{method}: the client's stream closed"));
                }
            }
        }
    }
}

impl Handler<Inspect> for SessionActor {
    type Result = MessageResult<Inspect>;

    fn handle(&mut self, _: Inspect, _: &mut Self::Context) -> Self::Result {
        let (log_events, log_bytes) = self.log.size();
        MessageResult(SessionInfo {
            id: self.id.to_string(),
            user: self.user.to_string(),
            protocol_version: self.version.to_string(),
            transport: if self.legacy.is_some() {
                "sse"
            } else {
                "streamable_http"
            },
            calls_in_flight: self.calls.len(),
            log_events,
            log_bytes,
            connected: self.log.has_connections(),
        })
    }
}

impl Handler<TaskStatusChanged> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: TaskStatusChanged, _: &mut Self::Context) {
        let Some(stream) = self.standalone.or(self.legacy) else {
            return;
        };
        let params = crate::protocol::jsonrpc::to_raw(&msg.task);
        self.send(
            stream,
            notification_bytes("notifications/tasks/status", Some(&params)),
            false,
        );
    }
}
