//! Streamable HTTP transport (2025-11-25 semantics, also serves 2025-03-26
//! and 2025-06-18 clients).
//!
//! * `POST /mcp`: `initialize` without a session header creates a session
//!   (`Mcp-Session-Id`); everything else needs a known session (missing →
//!   400, unknown → 404). Notifications and responses → 202. A request is
//!   answered with `application/json` when the handler's first output is its
//!   response, otherwise (progress, logs, server→client requests) with an SSE
//!   stream that ends with the response.
//! * `GET /mcp`: the session's stream for unsolicited messages (list_changed,
//!   resources/updated), with `: ping` keep-alives every 15 s. With
//!   `Last-Event-ID` it resumes a POST stream (SEP-1699) or the GET stream.
//! * `DELETE /mcp`: ends the session.
//! * `POST /admin/forget-sessions`, `GET /admin/stats`: test knobs.
//!
//! When bound to a loopback address, requests whose `Host` or `Origin` is not
//! a loopback name get 403 (DNS-rebinding protection).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::{header, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::core::{
    at_least, classify, codes, error_response, lock, Kind, Outbound, RpcError, Server, Shared,
    SUPPORTED_VERSIONS,
};

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const LAST_EVENT_ID: &str = "last-event-id";
/// Keep-alive comment interval on GET streams.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// `retry:` announced in priming events.
const RETRY_MS: u64 = 500;
/// Largest accepted POST body.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Events kept per POST stream for resumption.
const MAX_POST_EVENTS: usize = 1024;
/// Events kept on the GET stream for resumption / late attach.
const MAX_GET_EVENTS: usize = 256;
/// How long a finished but undelivered POST stream waits for a resume.
const ORPHAN_TTL: Duration = Duration::from_secs(300);
/// Stream name used in GET-stream event ids.
const GET_STREAM: &str = "get";

/// Runs the HTTP server on an actix system until it is stopped.
pub(crate) fn run(addr: SocketAddr, era: crate::Era) -> io::Result<()> {
    actix_web::rt::System::new().block_on(serve_with_era(addr, era))
}

/// Binds `addr`, prints `listening on http://ADDR/mcp` to stderr, and serves.
/// Must run inside an actix system (see [`crate::run`]).
pub async fn serve(addr: SocketAddr) -> io::Result<()> {
    serve_with_era(addr, crate::Era::Legacy).await
}

/// Like [`serve`], serving the given protocol era(s).
pub async fn serve_with_era(addr: SocketAddr, era: crate::Era) -> io::Result<()> {
    let state = web::Data::new(AppState {
        shared: Shared::with_era(era),
        sessions: RwLock::new(HashMap::new()),
        check_host: addr.ip().is_loopback(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .service(
                web::resource("/mcp")
                    .route(web::post().to(post_mcp))
                    .route(web::get().to(get_mcp))
                    .route(web::delete().to(delete_mcp))
                    .default_service(web::to(method_not_allowed)),
            )
            .route("/admin/forget-sessions", web::post().to(forget_sessions))
            .route("/admin/stats", web::get().to(stats))
    })
    .workers(2)
    .shutdown_timeout(1)
    .bind(addr)?;
    let bound = server.addrs().first().copied().unwrap_or(addr);
    eprintln!("listening on http://{bound}/mcp");
    server.run().await
}

struct AppState {
    shared: Arc<Shared>,
    sessions: RwLock<HashMap<String, Arc<Session>>>,
    check_host: bool,
}

struct Session {
    id: String,
    server: Server,
    streams: Arc<Streams>,
}

impl Session {
    /// Ends the session: aborts handlers, closes every stream.
    fn close(&self) {
        self.server.shutdown();
        let mut st = lock(&self.streams.inner);
        st.closed = true;
        st.posts.clear();
        st.get.sink = None;
        st.get.events.clear();
    }
}

/// SSE streams of one session.
#[derive(Default)]
struct Streams {
    inner: Mutex<StreamsInner>,
}

#[derive(Default)]
struct StreamsInner {
    next_stream: u64,
    /// POST response streams, by stream number.
    posts: HashMap<u64, Slot>,
    /// The GET stream.
    get: Slot,
    /// Bumped each time a GET connection attaches; older keep-alive tasks stop.
    get_generation: u64,
    closed: bool,
}

/// One logical SSE stream: its events (for replay) and the connection, if any.
#[derive(Default)]
struct Slot {
    events: VecDeque<(u64, Bytes)>,
    next_seq: u64,
    /// Highest seq written to a live connection.
    delivered: u64,
    sink: Option<mpsc::UnboundedSender<Bytes>>,
    /// The response has been produced (POST streams).
    done: bool,
}

impl Slot {
    fn push(&mut self, stream: &str, msg: &Value, cap: usize) {
        self.next_seq += 1;
        let seq = self.next_seq;
        let frame = message_frame(Some(&format!("{stream}:{seq}")), msg);
        self.events.push_back((seq, frame.clone()));
        while self.events.len() > cap {
            self.events.pop_front();
        }
        self.deliver(seq, frame);
    }

    fn deliver(&mut self, seq: u64, frame: Bytes) {
        if let Some(sink) = &self.sink {
            if sink.send(frame).is_ok() {
                self.delivered = seq;
            } else {
                self.sink = None;
            }
        }
    }

    /// Replays events after `after` to `sink` and makes it the live connection.
    fn attach(&mut self, sink: mpsc::UnboundedSender<Bytes>, after: u64) {
        let replay: Vec<(u64, Bytes)> = self
            .events
            .iter()
            .filter(|(seq, _)| *seq > after)
            .cloned()
            .collect();
        self.sink = Some(sink);
        for (seq, frame) in replay {
            self.deliver(seq, frame);
        }
    }
}

/// `event: message` frame with an optional id. Compact JSON has no newlines.
fn message_frame(id: Option<&str>, msg: &Value) -> Bytes {
    let json = serde_json::to_string(msg).unwrap_or_default();
    let mut s = String::with_capacity(json.len() + 48);
    s.push_str("event: message\n");
    if let Some(id) = id {
        s.push_str("id: ");
        s.push_str(id);
        s.push('\n');
    }
    s.push_str("data: ");
    s.push_str(&json);
    s.push_str("\n\n");
    Bytes::from(s)
}

/// SEP-1699 priming event: an id with empty data, plus the reconnect delay.
fn priming_frame(id: &str) -> Bytes {
    Bytes::from(format!("id: {id}\nretry: {RETRY_MS}\ndata: \n\n"))
}

/// Streaming response body fed by a channel; ends when every sender is gone.
struct SseBody {
    rx: mpsc::UnboundedReceiver<Bytes>,
}

impl MessageBody for SseBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.get_mut().rx.poll_recv(cx).map(|o| o.map(Ok))
    }
}

// ---------------------------------------------------------------- helpers --

fn json_response(status: StatusCode, body: &Value, session: Option<&str>) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    b.content_type("application/json");
    if let Some(s) = session {
        b.insert_header((SESSION_HEADER, s));
    }
    b.body(serde_json::to_vec(body).unwrap_or_default())
}

fn rpc_error(status: StatusCode, code: i64, message: impl Into<String>) -> HttpResponse {
    json_response(
        status,
        &error_response(&Value::Null, &RpcError::new(code, message)),
        None,
    )
}

fn sse_response(rx: mpsc::UnboundedReceiver<Bytes>, session: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .insert_header((SESSION_HEADER, session))
        .body(SseBody { rx })
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// (accepts JSON, accepts SSE). A missing Accept header accepts both.
fn accepts(req: &HttpRequest) -> (bool, bool) {
    let Some(accept) = header_str(req, "accept") else {
        return (true, true);
    };
    let a = accept.to_ascii_lowercase();
    let any = a.contains("*/*");
    (
        any || a.contains("application/json") || a.contains("application/*"),
        any || a.contains("text/event-stream") || a.contains("text/*"),
    )
}

/// `true` for `localhost`, `127.x.y.z` or `[::1]`, with an optional port.
fn loopback_host(host: &str) -> bool {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((inner, tail)) => {
                inner == "::1" && (tail.is_empty() || port_suffix(tail.trim_start_matches(':')))
            }
            None => false,
        };
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port_suffix(port) => name,
        Some(_) => return false,
        None => host,
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

fn port_suffix(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

fn loopback_origin(origin: &str) -> bool {
    let Some((_, rest)) = origin.split_once("://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or("");
    loopback_host(host)
}

impl AppState {
    /// DNS-rebinding protection (only when bound to loopback).
    fn check_origin(&self, req: &HttpRequest) -> Option<HttpResponse> {
        if !self.check_host {
            return None;
        }
        if let Some(h) = header_str(req, "host") {
            if !loopback_host(h) {
                return Some(rpc_error(
                    StatusCode::FORBIDDEN,
                    -32000,
                    format!("Forbidden: invalid Host header {h:?}"),
                ));
            }
        }
        if let Some(o) = req.headers().get("origin") {
            let ok = o.to_str().is_ok_and(loopback_origin);
            if !ok {
                return Some(rpc_error(
                    StatusCode::FORBIDDEN,
                    -32000,
                    "Forbidden: invalid Origin header",
                ));
            }
        }
        None
    }

    /// The session named by `Mcp-Session-Id`; missing → 400, unknown → 404.
    fn session(&self, req: &HttpRequest) -> Result<Arc<Session>, SessionError> {
        let id = header_str(req, SESSION_HEADER).ok_or(SessionError::Missing)?;
        let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        sessions.get(id).cloned().ok_or(SessionError::Unknown)
    }
}

/// Why a request could not be tied to a session.
enum SessionError {
    Missing,
    Unknown,
}

impl SessionError {
    fn response(&self) -> HttpResponse {
        match self {
            Self::Missing => rpc_error(
                StatusCode::BAD_REQUEST,
                -32000,
                "Bad Request: Mcp-Session-Id header is required",
            ),
            Self::Unknown => rpc_error(StatusCode::NOT_FOUND, -32001, "Session not found"),
        }
    }
}

/// A present but unsupported `MCP-Protocol-Version` → 400.
fn check_version(req: &HttpRequest) -> Option<HttpResponse> {
    let v = req.headers().get(VERSION_HEADER)?;
    let v = v.to_str().unwrap_or("");
    if SUPPORTED_VERSIONS.contains(&v) {
        return None;
    }
    Some(rpc_error(
        StatusCode::BAD_REQUEST,
        -32000,
        format!(
            "Bad Request: Unsupported protocol version: {v} (supported versions: {})",
            SUPPORTED_VERSIONS.join(", ")
        ),
    ))
}

/// Is `msg` the final answer to the POST whose request id is `req_id`?
fn is_final(msg: &Value, req_id: &Value) -> bool {
    msg.is_array()
        || (msg.get("method").is_none()
            && msg.get("id").is_some_and(|id| id == req_id || id.is_null()))
}

// --------------------------------------------------------------- handlers --

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "GET, POST, DELETE"))
        .finish()
}

async fn post_mcp(req: HttpRequest, body: Bytes, state: web::Data<AppState>) -> HttpResponse {
    if let Some(r) = state.check_origin(&req) {
        return r;
    }
    if state.shared.era().modern() {
        if let Some(r) = post_modern(&req, &body, &state).await {
            return r;
        }
    }
    if let Some(r) = check_version(&req) {
        return r;
    }
    if let Some(ct) = header_str(&req, "content-type") {
        if !ct.to_ascii_lowercase().contains("application/json") {
            return rpc_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                -32000,
                "Unsupported Media Type: Content-Type must be application/json",
            );
        }
    }
    let (json_ok, sse_ok) = accepts(&req);
    if !json_ok && !sse_ok {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            -32000,
            "Not Acceptable: Client must accept application/json or text/event-stream",
        );
    }
    let msg: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                codes::PARSE_ERROR,
                format!("Parse error: {e}"),
            )
        }
    };
    let (is_request, req_id) = match classify(&msg) {
        Kind::Invalid { id, error } => {
            return json_response(StatusCode::BAD_REQUEST, &error_response(&id, &error), None)
        }
        Kind::Request { id, method, .. } if method == "initialize" => {
            return initialize(&state, msg, id, json_ok).await;
        }
        Kind::Request { id, .. } => (true, id),
        Kind::Batch => {
            let any_request = msg.as_array().is_some_and(|items| {
                items
                    .iter()
                    .any(|m| matches!(classify(m), Kind::Request { .. } | Kind::Invalid { .. }))
            });
            (any_request, Value::Null)
        }
        Kind::Notification { .. } | Kind::Response { .. } => (false, Value::Null),
    };
    let session = match state.session(&req) {
        Ok(s) => s,
        Err(e) => return e.response(),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    session.server.handle(msg, tx);
    if !is_request {
        return HttpResponse::Accepted().finish();
    }
    respond(session, rx, req_id, json_ok, sse_ok).await
}

/// A POST carrying modern `_meta` (or any POST to a modern-only server) is
/// served statelessly: headers checked against the body, no session, the
/// answer as JSON (or one SSE body for SSE-only clients). `None`: not modern,
/// continue with the legacy path.
async fn post_modern(req: &HttpRequest, body: &[u8], state: &AppState) -> Option<HttpResponse> {
    let msg: Value = serde_json::from_slice(body).ok()?;
    let (id, method, params) = match classify(&msg) {
        Kind::Request { id, method, params } => (id, method, params),
        Kind::Notification { .. } | Kind::Response { .. } if !state.shared.era().legacy() => {
            return Some(HttpResponse::Accepted().finish())
        }
        _ => return None,
    };
    let meta = crate::modern::request_meta(&params);
    if meta.is_none() && state.shared.era().legacy() {
        return None;
    }
    let bad = |code: i64, m: String| {
        json_response(
            StatusCode::BAD_REQUEST,
            &error_response(&id, &RpcError::new(code, m)),
            None,
        )
    };
    if let Some(meta) = meta {
        let v = meta
            .get(crate::modern::META_VERSION)
            .and_then(Value::as_str);
        if header_str(req, VERSION_HEADER) != v {
            return Some(bad(
                crate::modern::HEADER_MISMATCH,
                "MCP-Protocol-Version header does not match _meta".into(),
            ));
        }
        if header_str(req, "mcp-method") != Some(method.as_str()) {
            return Some(bad(
                crate::modern::HEADER_MISMATCH,
                "Mcp-Method header does not match the body".into(),
            ));
        }
    }
    let (json_ok, sse_ok) = accepts(req);
    let (utx, _urx) = mpsc::unbounded_channel();
    let server = Server::new(state.shared.clone(), utx);
    let (tx, mut rx) = mpsc::unbounded_channel();
    server.handle(msg, tx);
    let answer = loop {
        match rx.recv().await {
            Some(Outbound::Message(v)) if is_final(&v, &id) => break v,
            // Something comes before the answer (progress, a log message): stream it all.
            Some(Outbound::Message(v)) if sse_ok => return Some(modern_sse(v, rx, id)),
            Some(_) => {}
            None => {
                let err = RpcError::new(codes::INTERNAL_ERROR, "Request cancelled");
                break error_response(&id, &err);
            }
        }
    };
    let status = match answer["error"]["code"].as_i64() {
        Some(codes::METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        Some(codes::INVALID_PARAMS | crate::modern::UNSUPPORTED_VERSION) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    if json_ok || status != StatusCode::OK {
        return Some(json_response(status, &answer, None));
    }
    Some(
        HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(message_frame(None, &answer)),
    )
}

/// A modern SSE answer: `first`, then everything the handler emits up to its answer. No
/// event ids (2026-07-28 has no resumption); closing the stream drops the handler's output.
fn modern_sse(first: Value, mut rx: mpsc::UnboundedReceiver<Outbound>, id: Value) -> HttpResponse {
    let (btx, brx) = mpsc::unbounded_channel();
    let _ = btx.send(message_frame(None, &first));
    tokio::spawn(async move {
        while let Some(item) = rx.recv().await {
            let Outbound::Message(v) = item else { continue };
            let last = is_final(&v, &id);
            if btx.send(message_frame(None, &v)).is_err() || last {
                break;
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .body(SseBody { rx: brx })
}

async fn initialize(state: &AppState, msg: Value, id: Value, json_ok: bool) -> HttpResponse {
    let (utx, urx) = mpsc::unbounded_channel();
    let streams = Arc::new(Streams::default());
    tokio::spawn(pump(streams.clone(), urx));
    let session = Arc::new(Session {
        id: uuid::Uuid::new_v4().to_string(),
        server: Server::new(state.shared.clone(), utx),
        streams,
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    session.server.handle(msg, tx);
    let answer = match rx.recv().await {
        Some(Outbound::Message(v)) => v,
        _ => error_response(
            &id,
            &RpcError::new(codes::INTERNAL_ERROR, "initialize produced no answer"),
        ),
    };
    let ok = answer.get("result").is_some();
    if ok {
        state
            .sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session.id.clone(), session.clone());
    }
    let sid = ok.then_some(session.id.as_str());
    if json_ok {
        return json_response(StatusCode::OK, &answer, sid);
    }
    let mut b = HttpResponse::Ok();
    b.content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if let Some(s) = sid {
        b.insert_header((SESSION_HEADER, s));
    }
    b.body(message_frame(None, &answer))
}

/// Waits for the handler's first output and picks JSON or SSE accordingly.
async fn respond(
    session: Arc<Session>,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    req_id: Value,
    json_ok: bool,
    sse_ok: bool,
) -> HttpResponse {
    loop {
        match rx.recv().await {
            Some(Outbound::Message(v)) if is_final(&v, &req_id) => {
                if json_ok {
                    return json_response(StatusCode::OK, &v, Some(&session.id));
                }
                return start_sse(&session, rx, req_id, Some(Outbound::Message(v)));
            }
            Some(item) if sse_ok => return start_sse(&session, rx, req_id, Some(item)),
            Some(Outbound::Message(v)) => {
                // JSON-only client: a server→client request still has to reach
                // it, so it goes to the GET stream; notifications are dropped.
                if v.get("id").is_some() {
                    let mut st = lock(&session.streams.inner);
                    if !st.closed {
                        st.get.push(GET_STREAM, &v, MAX_GET_EVENTS);
                    }
                }
            }
            Some(Outbound::CloseStream { .. }) => {}
            None => {
                // The handler ended without answering: it was cancelled.
                if sse_ok {
                    return start_sse(&session, rx, req_id, None);
                }
                let err = RpcError::new(codes::INTERNAL_ERROR, "Request cancelled");
                return json_response(
                    StatusCode::OK,
                    &error_response(&req_id, &err),
                    Some(&session.id),
                );
            }
        }
    }
}

/// Opens a POST SSE stream and spawns the task that feeds it.
fn start_sse(
    session: &Session,
    rx: mpsc::UnboundedReceiver<Outbound>,
    req_id: Value,
    first: Option<Outbound>,
) -> HttpResponse {
    let priming = at_least(&session.server.protocol_version(), "2025-11-25");
    let (btx, brx) = mpsc::unbounded_channel();
    let n = {
        let mut st = lock(&session.streams.inner);
        st.next_stream += 1;
        let n = st.next_stream;
        if priming {
            let _ = btx.send(priming_frame(&format!("{n}:0")));
        }
        if first.is_some() {
            st.posts.insert(
                n,
                Slot {
                    sink: Some(btx),
                    ..Slot::default()
                },
            );
        }
        n
    };
    if let Some(first) = first {
        tokio::spawn(forward(
            session.streams.clone(),
            n,
            rx,
            req_id,
            priming,
            first,
        ));
    }
    sse_response(brx, &session.id)
}

/// Moves a handler's output onto POST stream `n` (buffering it while the
/// client is disconnected) until the response has been sent.
async fn forward(
    streams: Arc<Streams>,
    n: u64,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    req_id: Value,
    resumable: bool,
    first: Outbound,
) {
    let name = n.to_string();
    let mut next = Some(first);
    loop {
        let item = match next.take() {
            Some(item) => Some(item),
            None => rx.recv().await,
        };
        let mut st = lock(&streams.inner);
        if st.closed {
            return;
        }
        let Some(item) = item else {
            // Cancelled: no response will come; end the stream.
            st.posts.remove(&n);
            return;
        };
        let Some(slot) = st.posts.get_mut(&n) else {
            return;
        };
        match item {
            Outbound::Message(v) => {
                let fin = is_final(&v, &req_id);
                slot.push(&name, &v, MAX_POST_EVENTS);
                if fin {
                    slot.done = true;
                    if slot.sink.is_some() {
                        // Delivered: dropping the slot drops the sink, ending the body.
                        st.posts.remove(&n);
                    } else {
                        drop(st);
                        let streams = streams.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(ORPHAN_TTL).await;
                            lock(&streams.inner).posts.remove(&n);
                        });
                    }
                    return;
                }
            }
            Outbound::CloseStream { .. } => {
                // Only when the client got a priming id it can resume from.
                if resumable {
                    slot.sink = None;
                }
            }
        }
    }
}

/// Moves the session's unsolicited messages onto its GET stream.
async fn pump(streams: Arc<Streams>, mut rx: mpsc::UnboundedReceiver<Outbound>) {
    while let Some(item) = rx.recv().await {
        if let Outbound::Message(v) = item {
            let mut st = lock(&streams.inner);
            if st.closed {
                return;
            }
            st.get.push(GET_STREAM, &v, MAX_GET_EVENTS);
        }
    }
}

/// Sends `: ping` on the GET connection of generation `generation` until it is replaced or gone.
async fn keepalive(streams: Weak<Streams>, generation: u64) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
    loop {
        tick.tick().await;
        let Some(streams) = streams.upgrade() else {
            return;
        };
        let mut st = lock(&streams.inner);
        if st.closed || st.get_generation != generation {
            return;
        }
        let alive = st
            .get
            .sink
            .as_ref()
            .is_some_and(|s| s.send(Bytes::from_static(b": ping\n\n")).is_ok());
        if !alive {
            st.get.sink = None;
            return;
        }
    }
}

/// Parsed `Last-Event-ID`: POST stream number or the GET stream, and a seq.
enum EventId {
    Post(u64, u64),
    Get(u64),
}

fn parse_event_id(s: &str) -> Option<EventId> {
    let (stream, seq) = s.trim().split_once(':')?;
    let seq = seq.parse().ok()?;
    if stream == GET_STREAM {
        return Some(EventId::Get(seq));
    }
    Some(EventId::Post(stream.parse().ok()?, seq))
}

async fn get_mcp(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(r) = state.check_origin(&req).or_else(|| check_version(&req)) {
        return r;
    }
    let session = match state.session(&req) {
        Ok(s) => s,
        Err(e) => return e.response(),
    };
    if !accepts(&req).1 {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            -32000,
            "Not Acceptable: Client must accept text/event-stream",
        );
    }
    let last = header_str(&req, LAST_EVENT_ID);
    let (btx, brx) = mpsc::unbounded_channel();
    let mut st = lock(&session.streams.inner);
    let after_get = match last.map(parse_event_id) {
        Some(Some(EventId::Post(n, seq))) => {
            let Some(slot) = st.posts.get_mut(&n) else {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    -32000,
                    "Bad Request: unknown or expired Last-Event-ID",
                );
            };
            slot.attach(btx, seq);
            if slot.done {
                // Everything, response included, has been replayed.
                st.posts.remove(&n);
            }
            drop(st);
            return sse_response(brx, &session.id);
        }
        Some(Some(EventId::Get(seq))) => seq,
        Some(None) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                -32000,
                "Bad Request: malformed Last-Event-ID",
            );
        }
        None => st.get.delivered,
    };
    // A new GET connection replaces the previous one (whose body then ends).
    st.get_generation += 1;
    let generation = st.get_generation;
    st.get.attach(btx, after_get);
    drop(st);
    tokio::spawn(keepalive(Arc::downgrade(&session.streams), generation));
    sse_response(brx, &session.id)
}

async fn delete_mcp(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(r) = state.check_origin(&req).or_else(|| check_version(&req)) {
        return r;
    }
    let Some(id) = header_str(&req, SESSION_HEADER) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            -32000,
            "Bad Request: Mcp-Session-Id header is required",
        );
    };
    let removed = state
        .sessions
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .remove(id);
    match removed {
        Some(s) => {
            s.close();
            HttpResponse::Ok().finish()
        }
        None => rpc_error(StatusCode::NOT_FOUND, -32001, "Session not found"),
    }
}

async fn forget_sessions(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(r) = state.check_origin(&req) {
        return r;
    }
    let all: Vec<Arc<Session>> = state
        .sessions
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .map(|(_, s)| s)
        .collect();
    for s in &all {
        s.close();
    }
    json_response(StatusCode::OK, &json!({"forgotten": all.len()}), None)
}

async fn stats(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(r) = state.check_origin(&req) {
        return r;
    }
    let mut s = state.shared.stats();
    s["sessions"] = json!(state
        .sessions
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .len());
    json_response(StatusCode::OK, &s, None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn host_validation() {
        for ok in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "127.0.0.1",
            "[::1]",
            "[::1]:9000",
            "LOCALHOST:1",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example.com",
            "evil.example.com:80",
            "10.0.0.1:80",
            "[::2]:1",
            "localhost:abc",
            "localhost.evil.com",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
        assert!(loopback_origin("http://127.0.0.1:3000"));
        assert!(loopback_origin("http://localhost"));
        assert!(!loopback_origin("http://evil.example.com"));
        assert!(!loopback_origin("null"));
    }

    #[test]
    fn event_ids() {
        assert!(matches!(parse_event_id("3:7"), Some(EventId::Post(3, 7))));
        assert!(matches!(parse_event_id("get:2"), Some(EventId::Get(2))));
        assert!(parse_event_id("x").is_none());
        assert!(parse_event_id("a:b").is_none());
    }

    #[test]
    fn frames() {
        let f = message_frame(Some("1:2"), &json!({"a": "x\ny"}));
        assert_eq!(
            &f[..],
            b"event: message\nid: 1:2\ndata: {\"a\":\"x\\ny\"}\n\n"
        );
        assert_eq!(
            &priming_frame("1:0")[..],
            b"id: 1:0\nretry: 500\ndata: \n\n"
        );
    }
}
