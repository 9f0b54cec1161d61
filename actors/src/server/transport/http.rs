//! Streamable HTTP transport (upstream side): MCP sessions at a remote endpoint, over
//! keep-alive pooled connections. The first session (context `shared`) serves the
//! handshake, list loads, health checks and every call of a `shared` server; with
//! `session_mode = "per_user"` or `"per_client"` each user or client session gets its own
//! upstream session, opened on its first call, closed (DELETE) when idle past the TTL or,
//! for `per_client`, when the client session ends. At most `max_contexts` per server.
//!
//! Each call is one POST; the answer is JSON or an SSE stream that may carry progress,
//! logging and server-to-client requests before the response. A 404 for our session id
//! means the upstream forgot it: the first caller to notice re-initializes (the others wait
//! on that session's lock and reuse the new session) and the call is retried once. An SSE answer
//! that ends before its response (the server closed it to make the client poll, or the
//! connection broke) is resumed with GET + `Last-Event-ID` after the server's `retry:`.

use awc::http::{header, StatusCode};
use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::value::RawValue;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

use super::{forward_notification, upstream_error, CallResult, ConnEvent, OpenArgs, OutCall};
use crate::context::CallCtx;
use crate::error::HubError;
use crate::protocol::jsonrpc::{error_bytes, notification_bytes, request_bytes, response_bytes};
use crate::protocol::{codes, version, Id, Message, RpcError};
use crate::registry::{ServerDef, SessionMode};
use crate::server::sink::{CallSink, ReplyToUpstream, UpstreamEventKind};
use crate::server::upstream_session::{context_of, StoredSession, SHARED_CONTEXT};

/// Detail of the error for an answer stream that ended before its response.
const STREAM_ENDED: &str = "SSE stream ended before the response";

/// Detail of the error for an answer stream whose session the upstream forgot mid-call.
const SESSION_GONE: &str = "the upstream forgot the session while answering";

/// Resumptions of one call's SSE stream before giving up.
const MAX_RESUMES: u32 = 5;

/// How many times one call re-initializes an expired session (404) before it gives up: more
/// than once, since an upstream can restart again while the call waits on the first one.
const MAX_SESSION_EXPIRIES: u32 = 3;

type EventStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<eventsource_stream::Event, SseFailure>>>,
>;

/// Why an upstream answer stream stopped early.
enum SseFailure {
    /// One event was over the limit: the call fails (a resume would only repeat it).
    TooLarge(String),
    /// The connection broke: the call may resume.
    Broken(String),
}

/// An answer body as SSE events, each bounded by [`super::sse_limit::MAX_EVENT_BYTES`].
fn events_of<S>(body: S) -> EventStream
where
    S: futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin + 'static,
{
    use super::sse_limit::{bounded, SseReadError, MAX_EVENT_BYTES};
    Box::pin(
        super::utf8_lossy(bounded(body, MAX_EVENT_BYTES))
            .eventsource()
            .map(|r| {
                r.map_err(|e| match e {
                    eventsource_stream::EventStreamError::Transport(
                        e @ SseReadError::TooLarge(_),
                    ) => SseFailure::TooLarge(e.to_string()),
                    other => SseFailure::Broken(other.to_string()),
                })
            }),
    )
}

/// Largest JSON response body accepted from an upstream.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Server-to-client requests awaiting the client's answer, per connection; past this the
/// oldest is forgotten (its answer, if it ever comes, goes nowhere).
const MAX_SERVER_REQUESTS: usize = 4096;

/// One upstream MCP session of an [`HttpConn`]: the id the upstream minted, its generation
/// (bumped at every initialize), and the lock that lets one caller re-initialize while the
/// others wait for the new id.
struct UpSession {
    /// `shared`, `user:{id}` or `client:{session}`.
    context: String,
    id: RefCell<Option<String>>,
    /// 0 until the first initialize.
    gen: Cell<u64>,
    reinit: tokio::sync::Mutex<()>,
    /// A resume found the session gone (404) mid-call.
    gone: Cell<bool>,
    /// Calls running on it (an idle sweep never closes a busy session).
    active: Cell<usize>,
    last_used: Cell<Instant>,
}

impl UpSession {
    fn new(context: String) -> Rc<UpSession> {
        Rc::new(UpSession {
            context,
            id: RefCell::new(None),
            gen: Cell::new(0),
            reinit: tokio::sync::Mutex::new(()),
            gone: Cell::new(false),
            active: Cell::new(0),
            last_used: Cell::new(Instant::now()),
        })
    }

    fn id(&self) -> Option<String> {
        self.id.borrow().clone()
    }
}

/// Upstream MCP sessions over Streamable HTTP: the shared one and, by the server's
/// `session_mode`, one per user or client session. Owned by the ServerActor (inside
/// [`super::Conn`]); call futures hold clones.
pub struct HttpConn {
    server: Arc<str>,
    client: awc::Client,
    url: String,
    headers: Vec<(header::HeaderName, header::HeaderValue)>,
    mode: SessionMode,
    shared: Rc<UpSession>,
    contexts: RefCell<HashMap<String, Rc<UpSession>>>,
    /// The negotiated version as the `MCP-Protocol-Version` value (built once per
    /// negotiation, not per request).
    protocol_header: RefCell<header::HeaderValue>,
    /// Calls in flight: how to stop waiting for each, and the session it runs on.
    inflight: RefCell<HashMap<u64, Inflight>>,
    /// Hub-local id of a server-to-client request → the session it came on and its own id.
    server_requests: RefCell<HashMap<i64, (Rc<UpSession>, Id)>>,
    next_server_request: Cell<i64>,
    sweeping: Cell<bool>,
    closed: Cell<bool>,
    args: OpenArgs,
    /// The protocol era the handshake detected (modern: no session, per-request headers).
    pub era: Cell<super::modern::UpstreamEra>,
}

/// A call in flight: its cancel switch and its session.
type Inflight = (oneshot::Sender<()>, Rc<UpSession>);

struct InflightGuard<'a> {
    conn: &'a HttpConn,
    id: u64,
    session: Rc<UpSession>,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.conn.inflight.borrow_mut().remove(&self.id);
        self.session
            .active
            .set(self.session.active.get().saturating_sub(1));
        self.session.last_used.set(Instant::now());
    }
}

impl HttpConn {
    /// Prepares a connection (no I/O yet; `handshake` does the first request).
    pub fn new(def: &ServerDef, args: OpenArgs) -> Result<Rc<HttpConn>, HubError> {
        let url = def.url.clone().unwrap_or_default();
        let mut headers = Vec::with_capacity(def.headers.len());
        for (k, v) in &def.headers {
            let name = header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| HubError::Internal(format!("header {k}: {e}")))?;
            let value = header::HeaderValue::from_str(v)
                .map_err(|e| HubError::Internal(format!("header {k}: {e}")))?;
            headers.push((name, value));
        }
        let connector = awc::Connector::new()
            .connector(crate::server::ssrf::tcp_connector(args.policy.clone()))
            .rustls_0_23(super::tls::client_config())
            .limit(def.max_concurrency().max(4))
            .timeout(Duration::from_secs(5));
        let client = awc::Client::builder()
            .connector(connector)
            .disable_timeout()
            .disable_redirects()
            .finish();
        Ok(Rc::new(HttpConn {
            server: args.server.clone(),
            client,
            url,
            headers,
            mode: def.session_mode(),
            shared: UpSession::new(SHARED_CONTEXT.to_string()),
            contexts: RefCell::new(HashMap::new()),
            protocol_header: RefCell::new(header::HeaderValue::from_static(version::LATEST)),
            inflight: RefCell::new(HashMap::new()),
            server_requests: RefCell::new(HashMap::new()),
            next_server_request: Cell::new(1),
            sweeping: Cell::new(false),
            closed: Cell::new(false),
            args,
            era: Cell::new(super::modern::UpstreamEra::Legacy),
        }))
    }

    /// The upstream's id of the shared session.
    pub fn session_id(&self) -> Option<String> {
        self.shared.id()
    }

    /// Upstream sessions open besides the shared one.
    pub fn context_count(&self) -> usize {
        self.contexts.borrow().len()
    }

    /// The session of `ctx`'s context, opened (not yet initialized) when new. Refuses a new
    /// context past the server's cap.
    fn session_for(self: &Rc<Self>, ctx: &CallCtx) -> Result<Rc<UpSession>, HubError> {
        let Some(context) = context_of(self.mode, ctx) else {
            return Ok(self.shared.clone());
        };
        if let Some(s) = self.contexts.borrow().get(&context) {
            return Ok(s.clone());
        }
        let limits = &self.args.sessions;
        if self.contexts.borrow().len() >= limits.max_contexts {
            tracing::warn!(event = "upstream.session.limit", server = %self.server, context = %context, limit = limits.max_contexts, "upstream.session.limit");
            return Err(HubError::LimitReached {
                what: "Upstream session",
                limit: limits.max_contexts,
                retry_after_seconds: limits.idle_ttl.as_secs().clamp(1, 60),
            });
        }
        let session = UpSession::new(context.clone());
        self.contexts.borrow_mut().insert(context, session.clone());
        self.start_sweeper();
        Ok(session)
    }

    /// The existing session of `ctx`'s context (the shared one when it has none).
    fn existing_session(&self, ctx: &CallCtx) -> Rc<UpSession> {
        context_of(self.mode, ctx)
            .and_then(|c| self.contexts.borrow().get(&c).cloned())
            .unwrap_or_else(|| self.shared.clone())
    }

    /// Closes idle contexts every quarter TTL while the connection lives.
    fn start_sweeper(self: &Rc<Self>) {
        if self.sweeping.replace(true) {
            return;
        }
        let weak: Weak<HttpConn> = Rc::downgrade(self);
        let every = (self.args.sessions.idle_ttl / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(30));
        actix::spawn(async move {
            loop {
                actix_rt::time::sleep(every).await;
                let Some(conn) = weak.upgrade() else { break };
                if conn.closed.get() {
                    break;
                }
                conn.sweep_idle();
            }
        });
    }

    fn sweep_idle(&self) {
        let ttl = self.args.sessions.idle_ttl;
        let idle: Vec<Rc<UpSession>> = {
            let mut contexts = self.contexts.borrow_mut();
            let keys: Vec<String> = contexts
                .iter()
                .filter(|(_, s)| s.active.get() == 0 && s.last_used.get().elapsed() >= ttl)
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter().filter_map(|k| contexts.remove(k)).collect()
        };
        for s in idle {
            tracing::info!(event = "upstream.session.closed", server = %self.server, context = %s.context, reason = "idle", "upstream.session.closed");
            self.delete_session(&s);
        }
    }

    /// Ends the upstream session of `context` (a client session closed), if there is one.
    pub fn close_context(&self, context: &str) {
        let Some(s) = self.contexts.borrow_mut().remove(context) else {
            return;
        };
        tracing::info!(event = "upstream.session.closed", server = %self.server, context = %s.context, reason = "client session closed", "upstream.session.closed");
        // The client session is gone for every instance: its upstream session goes too.
        let Some(id) = s.id.borrow_mut().take() else {
            return;
        };
        if let Some(store) = self.args.sessions.store.clone() {
            let (server, context, id) = (self.server.clone(), s.context.clone(), id.clone());
            actix::spawn(async move {
                if let Err(e) = store.remove(&server, &context, &id).await {
                    tracing::warn!(event = "upstream.session.store_failed", server = %server, context = %context, error = %e, "upstream.session.store_failed");
                }
            });
        }
        self.end_upstream_session(id);
    }

    /// Records the negotiated version, sent as `MCP-Protocol-Version` from now on.
    /// A version that cannot be a header value (no upstream should send one) is not taken.
    pub fn set_protocol_version(&self, v: &str) {
        if let Ok(value) = header::HeaderValue::from_str(v) {
            *self.protocol_header.borrow_mut() = value;
        }
    }

    /// The negotiated version.
    fn protocol_version(&self) -> String {
        let value = self.protocol_header.borrow();
        value.to_str().unwrap_or(version::LATEST).to_string()
    }

    /// The server id.
    pub fn server(&self) -> &Arc<str> {
        &self.server
    }

    fn request(&self, request_id: Option<&str>, session: Option<&str>) -> awc::ClientRequest {
        let mut req = self
            .client
            .post(&self.url)
            .insert_header((
                header::ACCEPT,
                header::HeaderValue::from_static("application/json, text/event-stream"),
            ))
            .insert_header((
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            ))
            .insert_header((
                header::HeaderName::from_static("mcp-protocol-version"),
                self.protocol_header.borrow().clone(),
            ));
        for (k, v) in &self.headers {
            req = req.insert_header((k.clone(), v.clone()));
        }
        // Names as constants: parsing a header name from text costs on every request.
        let value = |v: &str| header::HeaderValue::from_str(v).ok();
        if let Some(s) = session.and_then(value) {
            req = req.insert_header((header::HeaderName::from_static("mcp-session-id"), s));
        }
        if let Some(r) = request_id.and_then(value) {
            req = req.insert_header((header::HeaderName::from_static("x-request-id"), r));
        }
        req
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> HubError {
        HubError::ServerUnavailable {
            server: self.server.to_string(),
            reason: format!("upstream unreachable: {e}"),
            retry_after_seconds: 1,
        }
    }

    /// `initialize` of the shared session; keeps the session id the upstream mints.
    /// With Redis, a session another instance stored is reused instead (its stored
    /// `initialize` result is returned; no request goes upstream).
    pub async fn initialize(&self, params: Box<RawValue>) -> CallResult {
        let shared = self.shared.clone();
        if let Some(stored) = self.stored(&shared).await {
            if let Some(init) = stored.init.clone() {
                self.adopt(&shared, &stored);
                return Ok(crate::protocol::jsonrpc::raw_from_string(init));
            }
        }
        self.initialize_on(&shared, params, None).await
    }

    /// The session Redis holds for `on`'s context (none without Redis, or when Redis fails).
    async fn stored(&self, on: &UpSession) -> Option<StoredSession> {
        let store = self.args.sessions.store.as_ref()?;
        match store.get(&self.server, &on.context).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(event = "upstream.session.store_failed", server = %self.server, context = %on.context, error = %e, "upstream.session.store_failed");
                None
            }
        }
    }

    /// Uses a session another instance opened.
    fn adopt(&self, on: &UpSession, stored: &StoredSession) {
        tracing::info!(event = "upstream.session.adopted", server = %self.server, context = %on.context, "upstream.session.adopted");
        *on.id.borrow_mut() = Some(stored.id.clone());
        self.set_protocol_version(&stored.protocol_version);
        on.gen.set(on.gen.get() + 1);
        on.last_used.set(Instant::now());
    }

    /// Publishes `on`'s fresh session in Redis, replacing `expected` (the id found expired).
    /// When another instance replaced it first, its session is used and this one ended.
    async fn publish(&self, on: &UpSession, expected: Option<&str>, init: &RawValue) {
        let (Some(store), Some(id)) = (self.args.sessions.store.as_ref(), on.id()) else {
            return;
        };
        #[derive(serde::Deserialize)]
        struct Negotiated {
            #[serde(rename = "protocolVersion")]
            protocol_version: String,
        }
        let protocol_version = serde_json::from_str::<Negotiated>(init.get())
            .map(|n| n.protocol_version)
            .unwrap_or_else(|_| self.protocol_version());
        let mine = StoredSession {
            id: id.clone(),
            protocol_version,
            init: Some(init.get().to_string()),
        };
        match store.swap(&self.server, &on.context, expected, &mine).await {
            Ok(None) => {}
            Ok(Some(winner)) => {
                // Another instance re-initialized first: use its session, end ours.
                self.end_upstream_session(id);
                self.adopt(on, &winner);
            }
            Err(e) => {
                tracing::warn!(event = "upstream.session.store_failed", server = %self.server, context = %on.context, error = %e, "upstream.session.store_failed");
            }
        }
    }

    /// `initialize` without a session id; `on` keeps the id the upstream mints, published
    /// in Redis over `expected` (the id found expired).
    async fn initialize_on(
        &self,
        on: &UpSession,
        params: Box<RawValue>,
        expected: Option<String>,
    ) -> CallResult {
        let id = super::next_upstream_id();
        let body = Bytes::from(request_bytes(&id.to_string(), "initialize", Some(&params)));
        let resp = self
            .request(None, None)
            .send_body(body)
            .await
            .map_err(|e| self.unreachable(e))?;
        let session = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let result = self.read_response(id, Some(on), None, None, resp).await?;
        tracing::info!(event = "upstream.session.established", server = %self.server, context = %on.context, has_session = session.is_some(), "upstream.session.established");
        *on.id.borrow_mut() = session;
        on.gen.set(on.gen.get() + 1);
        on.last_used.set(Instant::now());
        self.publish(on, expected.as_deref(), &result).await;
        Ok(result)
    }

    /// (Re-)initializes `on` unless another call did since it saw generation `seen_gen`
    /// (the others wait on the lock and use the new session).
    async fn reinitialize(&self, on: &UpSession, seen_gen: u64) -> Result<(), HubError> {
        let _lock = on.reinit.lock().await;
        if on.gen.get() != seen_gen {
            return Ok(()); // another call already re-initialized
        }
        if seen_gen > 0 {
            tracing::info!(event = "upstream.session.invalidated", server = %self.server, context = %on.context, "upstream.session.invalidated");
        }
        // Another instance may have replaced (or opened) this context's session already.
        let failed = on.id();
        if let Some(stored) = self.stored(on).await {
            if failed.as_deref() != Some(stored.id.as_str()) {
                self.adopt(on, &stored);
                return Ok(());
            }
        }
        let params = crate::protocol::jsonrpc::to_raw(&serde_json::json!({
            "protocolVersion": self.protocol_version(),
            "capabilities": { "sampling": {}, "elicitation": { "form": {}, "url": {} }, "roots": { "listChanged": true } },
            "clientInfo": { "name": "mcp-hub", "version": env!("CARGO_PKG_VERSION") }
        }));
        self.initialize_on(on, params, failed).await?;
        self.post_message_on(on, notification_bytes("notifications/initialized", None));
        Ok(())
    }

    /// Sends a request on its caller's session and waits for its response (JSON or SSE).
    pub async fn call(self: &Rc<Self>, call: OutCall) -> CallResult {
        let session = self.session_for(&call.ctx)?;
        let (cancel_tx, cancel_rx) = oneshot::channel();
        self.inflight
            .borrow_mut()
            .insert(call.id, (cancel_tx, session.clone()));
        session.active.set(session.active.get() + 1);
        let _guard = InflightGuard {
            conn: self,
            id: call.id,
            session: session.clone(),
        };
        let body = Bytes::from(request_bytes(
            &call.id.to_string(),
            &call.method,
            call.params.as_deref(),
        ));
        tokio::select! {
            res = self.exchange(&session, &call, body) => res,
            _ = cancel_rx => Err(HubError::Cancelled),
        }
    }

    async fn exchange(&self, on: &UpSession, call: &OutCall, body: Bytes) -> CallResult {
        let modern = self.era.get() == super::modern::UpstreamEra::Modern
            || call.method == "server/discover";
        if modern {
            // Stateless: no session to open or reuse.
        } else if on.gen.get() == 0 {
            // A new context: its first call opens its session.
            self.reinitialize(on, 0).await?;
        } else {
            tracing::info!(event = "upstream.session.reused", server = %self.server, context = %on.context, "upstream.session.reused");
        }
        // Session expiries met by this call (each answered by one shared re-initialize) and
        // whether it was already sent again after its answer stream broke.
        let mut expiries = 0;
        let mut resent = false;
        loop {
            let gen = on.gen.get();
            // A modern upstream (and the era probe) has no session.
            let session = if modern { None } else { on.id() };
            let mut req = self.request(Some(&call.ctx.request_id), session.as_deref());
            if modern {
                req = req
                    .insert_header(("MCP-Protocol-Version", crate::protocol::modern::VERSION))
                    .insert_header(("Mcp-Method", call.method.as_str()));
                if let Some(name) = super::modern::name_header(&call.method, call.params.as_deref())
                {
                    req = req.insert_header(("Mcp-Name", super::modern::header_value(&name)));
                }
            }
            let mut resp = req
                .send_body(body.clone())
                .await
                .map_err(|e| self.unreachable(e))?;
            let status = resp.status();
            if session.is_some() && expiries < MAX_SESSION_EXPIRIES && call.method != "initialize" {
                // 404 means the upstream forgot our session; some servers say so with a 400
                // or 401 that names the session instead.
                let expired = match status {
                    StatusCode::NOT_FOUND => true,
                    StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED => {
                        let body = resp.body().limit(64 * 1024).await.unwrap_or_default();
                        let names_session = String::from_utf8_lossy(&body)
                            .to_ascii_lowercase()
                            .contains("session");
                        if !names_session {
                            return Err(HubError::UpstreamProtocol {
                                server: self.server.to_string(),
                                detail: format!(
                                    "HTTP {status}: {}",
                                    String::from_utf8_lossy(&body[..body.len().min(300)])
                                ),
                            });
                        }
                        true
                    }
                    _ => false,
                };
                if expired {
                    // The upstream did not see the call: sending it again on the fresh session
                    // is safe, also when that session expires too before the call gets there
                    // (an upstream restarting twice in a row).
                    expiries += 1;
                    self.reinitialize(on, gen).await?;
                    continue;
                }
            }
            let result = self
                .read_response(
                    call.id,
                    Some(on),
                    call.sink.as_ref(),
                    call.progress.as_ref(),
                    resp,
                )
                .await;
            match result {
                // The upstream forgot the session while answering: the stream it was on is gone
                // for good. Re-initialize and send the call again, once.
                Err(HubError::UpstreamProtocol { ref detail, .. })
                    if !resent && (detail == SESSION_GONE || detail == STREAM_ENDED) =>
                {
                    // The answer stream broke and could not be resumed. If the session it
                    // belonged to is gone (replaced meanwhile, or the upstream says 404), the
                    // call died with it: send it again, once, on a fresh session.
                    let gone = detail == SESSION_GONE
                        || on.gen.get() != gen
                        || match session.as_deref() {
                            Some(s) => self.session_forgotten(s).await,
                            None => false,
                        };
                    if !gone {
                        return result;
                    }
                    resent = true;
                    on.gone.set(false);
                    self.reinitialize(on, gen).await?;
                    continue;
                }
                other => return other,
            }
        }
    }

    async fn read_response<S>(
        &self,
        id: u64,
        on: Option<&UpSession>,
        sink: Option<&CallSink>,
        progress: Option<&Id>,
        mut resp: awc::ClientResponse<S>,
    ) -> CallResult
    where
        S: futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin + 'static,
    {
        let status = resp.status();
        let is_sse = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        if status.is_success() && is_sse {
            let on = on.unwrap_or(&self.shared);
            return self.read_sse(id, on, sink, progress, resp).await;
        }
        let body =
            resp.body()
                .limit(MAX_BODY_BYTES)
                .await
                .map_err(|e| HubError::UpstreamProtocol {
                    server: self.server.to_string(),
                    detail: format!("reading response body: {e}"),
                })?;
        match Message::parse(&body) {
            Ok(Message::Response { id: rid, result }) if matches_id(&rid, id) => Ok(result),
            Ok(Message::Error { error, .. }) => Err(upstream_error(&self.server, &error)),
            _ => Err(HubError::UpstreamProtocol {
                server: self.server.to_string(),
                detail: format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                ),
            }),
        }
    }

    async fn read_sse<S>(
        &self,
        id: u64,
        on: &UpSession,
        sink: Option<&CallSink>,
        progress: Option<&Id>,
        resp: awc::ClientResponse<S>,
    ) -> CallResult
    where
        S: futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin + 'static,
    {
        let mut events = events_of(resp);
        let mut last_event_id: Option<String> = None;
        let mut retry = Duration::from_millis(1000);
        let mut resumes = 0;
        loop {
            while let Some(ev) = events.next().await {
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(SseFailure::TooLarge(detail)) => {
                        tracing::warn!(event = "upstream.sse.too_large", server = %self.server, error = %detail);
                        return Err(HubError::UpstreamProtocol {
                            server: self.server.to_string(),
                            detail: format!("the upstream sent {detail}"),
                        });
                    }
                    Err(SseFailure::Broken(e)) => {
                        tracing::info!(event = "upstream.sse.broken", server = %self.server, error = %e);
                        break;
                    }
                };
                if !ev.id.is_empty() {
                    last_event_id = Some(ev.id.clone());
                }
                if let Some(r) = ev.retry {
                    retry = r;
                }
                if ev.data.is_empty() {
                    continue; // priming event
                }
                match Message::parse(ev.data.as_bytes()) {
                    Ok(Message::Response { id: rid, result }) if matches_id(&rid, id) => {
                        drain(events);
                        return Ok(result);
                    }
                    Ok(Message::Error { id: rid, error })
                        if rid.as_ref().is_none_or(|r| matches_id(r, id)) =>
                    {
                        drain(events);
                        return Err(upstream_error(&self.server, &error));
                    }
                    Ok(Message::Notification { method, params }) => {
                        if method.ends_with("/list_changed") {
                            self.args.events.do_send(ConnEvent::ListChanged {
                                generation: self.args.generation,
                            });
                        } else if let Some(sink) = sink {
                            forward_notification(
                                &self.server,
                                &method,
                                params.as_deref(),
                                sink,
                                progress,
                            );
                        }
                    }
                    Ok(Message::Request {
                        id: rid,
                        method,
                        params,
                    }) => self.on_request(on, rid, method, params, sink),
                    _ => {
                        tracing::debug!(event = "upstream.sse.ignored", server = %self.server, data = %ev.data)
                    }
                }
            }
            // The stream ended before the response: resume it (SEP-1699 polling, or a broken
            // connection) with GET + Last-Event-ID after the server's retry delay.
            let Some(last) = last_event_id.clone() else {
                break;
            };
            if resumes >= MAX_RESUMES {
                break;
            }
            resumes += 1;
            actix_rt::time::sleep(retry.min(Duration::from_secs(30))).await;
            match self.resume(on, &last).await {
                None if on.gone.get() => {
                    return Err(HubError::UpstreamProtocol {
                        server: self.server.to_string(),
                        detail: SESSION_GONE.into(),
                    });
                }
                Some(next) => {
                    tracing::info!(event = "upstream.sse.resumed", server = %self.server, last_event_id = %last, attempt = resumes);
                    events = next;
                }
                None => continue,
            }
        }
        Err(HubError::UpstreamProtocol {
            server: self.server.to_string(),
            detail: STREAM_ENDED.into(),
        })
    }

    /// Whether the upstream answers 404 for `session` (a `ping` on it).
    async fn session_forgotten(&self, session: &str) -> bool {
        let body = request_bytes(&super::next_upstream_id().to_string(), "ping", None);
        match self.request(None, Some(session)).send_body(body).await {
            Ok(resp) => resp.status() == StatusCode::NOT_FOUND,
            Err(_) => false,
        }
    }

    async fn resume(&self, on: &UpSession, last_event_id: &str) -> Option<EventStream> {
        let session = on.id();
        let mut req = self
            .client
            .get(&self.url)
            .insert_header((header::ACCEPT, "text/event-stream"))
            .insert_header((
                header::HeaderName::from_static("mcp-protocol-version"),
                self.protocol_header.borrow().clone(),
            ))
            .insert_header(("Last-Event-ID", last_event_id));
        for (k, v) in &self.headers {
            req = req.insert_header((k.clone(), v.clone()));
        }
        if let Some(s) = session {
            req = req.insert_header(("Mcp-Session-Id", s));
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => Some(events_of(resp)),
            Ok(resp) => {
                tracing::warn!(event = "upstream.sse.resume_failed", server = %self.server, status = resp.status().as_u16());
                if resp.status() == StatusCode::NOT_FOUND {
                    on.gone.set(true);
                }
                None
            }
            Err(e) => {
                tracing::warn!(event = "upstream.sse.resume_failed", server = %self.server, error = %e);
                None
            }
        }
    }

    fn on_request(
        &self,
        on: &UpSession,
        id: Id,
        method: String,
        params: Option<Box<RawValue>>,
        sink: Option<&CallSink>,
    ) {
        if method == "ping" {
            self.post_message_on(
                on,
                response_bytes(&id, &crate::protocol::jsonrpc::empty_object()),
            );
            return;
        }
        let Some(sink) = sink else {
            let err = RpcError::new(
                codes::METHOD_NOT_FOUND,
                format!("{method}: no client is waiting on this server"),
            );
            self.post_message_on(on, error_bytes(Some(&id), &err));
            return;
        };
        // Sessions number their requests independently: the client sees a hub-local id,
        // and the answer goes back to the session that asked, under its own id.
        let local = self.next_server_request.get();
        self.next_server_request.set(local + 1);
        let session = match on.context.as_str() {
            SHARED_CONTEXT => self.shared.clone(),
            context => self
                .contexts
                .borrow()
                .get(context)
                .cloned()
                .unwrap_or_else(|| self.shared.clone()),
        };
        {
            let mut pending = self.server_requests.borrow_mut();
            if pending.len() >= MAX_SERVER_REQUESTS {
                if let Some(oldest) = pending.keys().min().copied() {
                    pending.remove(&oldest);
                }
            }
            pending.insert(local, (session, id));
        }
        sink.send(
            &self.server,
            UpstreamEventKind::Request {
                method,
                params,
                upstream_id: Id::Num(local),
                reply_to: self.args.reply_to.clone(),
            },
        );
    }

    /// Answers a server-to-client request on the session that asked, under its own id.
    pub fn reply(&self, reply: ReplyToUpstream) {
        let pending = match &reply.upstream_id {
            Id::Num(n) => self.server_requests.borrow_mut().remove(n),
            Id::Str(_) => None,
        };
        let (on, id) = match pending {
            Some((on, id)) => (on, id),
            None => (self.shared.clone(), reply.upstream_id.clone()),
        };
        let msg = match &reply.body {
            Ok(result) => response_bytes(&id, result),
            Err(error) => crate::protocol::jsonrpc::raw_error_bytes(&id, error),
        };
        self.post_message_on(&on, msg);
    }

    /// Stops waiting for call `id` and tells the upstream (on the call's session; `ctx`
    /// names it once the call is no longer waited for).
    pub fn cancel(&self, id: u64, notification: String, force: bool, ctx: Option<&CallCtx>) {
        let waiting = self.inflight.borrow_mut().remove(&id);
        // Modern upstreams: closing the answer stream (dropping the exchange) is the
        // cancellation; there is no notification to POST.
        if self.era.get() == super::modern::UpstreamEra::Modern {
            if let Some((tx, _)) = waiting {
                let _ = tx.send(());
            }
            return;
        }
        let on = match waiting {
            Some((tx, on)) => {
                let _ = tx.send(());
                on
            }
            None if force => match ctx {
                Some(ctx) => self.existing_session(ctx),
                None => self.shared.clone(),
            },
            None => return,
        };
        self.post_message_on(&on, notification);
    }

    /// POSTs a notification or a response on the shared session, in the background.
    pub fn post_message(&self, msg: String) {
        let shared = self.shared.clone();
        self.post_message_on(&shared, msg);
    }

    /// POSTs a notification or a response on `on`, in the background (the upstream
    /// answers 202).
    fn post_message_on(&self, on: &UpSession, msg: String) {
        let session = on.id();
        let fut = self.request(None, session.as_deref()).send_body(msg);
        let server = self.server.clone();
        actix::spawn(async move {
            match fut.await {
                Ok(resp) if resp.status().is_success() => {}
                Ok(resp) => {
                    tracing::warn!(event = "upstream.post.rejected", server = %server, status = resp.status().as_u16())
                }
                Err(e) => {
                    tracing::warn!(event = "upstream.post.failed", server = %server, error = %e)
                }
            }
        });
    }

    /// Ends every upstream session (DELETE, best effort).
    pub fn close(&self) {
        self.closed.set(true);
        let contexts: Vec<Rc<UpSession>> =
            self.contexts.borrow_mut().drain().map(|(_, s)| s).collect();
        for s in contexts {
            self.delete_session(&s);
        }
        let shared = self.shared.clone();
        self.delete_session(&shared);
    }

    /// Ends one upstream session (DELETE, best effort, in the background).
    /// With Redis, other instances may be using it: it is only forgotten here.
    fn delete_session(&self, on: &UpSession) {
        let Some(session) = on.id.borrow_mut().take() else {
            return;
        };
        if self.args.sessions.store.is_none() {
            self.end_upstream_session(session);
        }
    }

    /// DELETEs upstream session `session` (best effort, in the background).
    fn end_upstream_session(&self, session: String) {
        let mut req = self
            .client
            .delete(&self.url)
            .insert_header(("Mcp-Session-Id", session));
        for (k, v) in &self.headers {
            req = req.insert_header((k.clone(), v.clone()));
        }
        let fut = req.send();
        actix::spawn(async move {
            let _ = fut.await;
        });
    }
}

fn matches_id(id: &Id, expected: u64) -> bool {
    match id {
        Id::Num(n) => u64::try_from(*n).is_ok_and(|n| n == expected),
        Id::Str(s) => s.parse::<u64>().is_ok_and(|n| n == expected),
    }
}

/// Reads the rest of an answered SSE body in the background (bounded in time), so the
/// connection goes back to the keep-alive pool instead of being closed mid-body.
fn drain(mut events: EventStream) {
    actix::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while events.next().await.is_some() {}
        })
        .await;
    });
}
