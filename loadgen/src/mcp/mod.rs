//! A real MCP client over Streamable HTTP, in either protocol era: 2025-11-25 sessions
//! (`initialize`, keeping the `Mcp-Session-Id`, `notifications/initialized`, then requests)
//! or 2026-07-28 stateless requests (no session: every request carries the per-request
//! `_meta` and the `Mcp-Method` / `Mcp-Name` headers). Answers may be JSON or SSE; SSE
//! streams are parsed and the JSON-RPC response with our id is taken. A third mode speaks
//! the legacy HTTP+SSE transport of 2024-11-05 (`legacy`): responses come on a long-lived
//! `GET /sse` stream, POSTs only get 202.
//!
//! One session owns one keep-alive HTTP/1.1 connection (hyper's connection API, no pool):
//! that is what an MCP client does, and it keeps the tool's own cost per call small. A
//! legacy session owns two: its event stream and the one it POSTs on.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::sse::{SseEvent, SseParser};

mod legacy;
mod stream;
pub use legacy::LEGACY_VERSION;
pub use stream::{http_request, HeldStream};

/// Protocol revision the client asks for.
pub const PROTOCOL_VERSION: &str = "2025-11-25";
/// The stateless revision.
pub const MODERN_VERSION: &str = "2026-07-28";

/// Which protocol era the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// 2025-11-25 with a session per client.
    Session,
    /// 2026-07-28, stateless: no session, `_meta` and headers on every request.
    Modern,
    /// 2024-11-05 HTTP+SSE: `GET /sse` stream, POSTs to the URL of its `endpoint` event,
    /// responses as `message` events on the stream.
    #[serde(rename = "legacy-sse")]
    LegacySse,
}

/// A prepared `tools/call`: its params and the tool name (for `Mcp-Name`).
#[derive(Debug, Clone)]
pub struct ToolCall {
    /// Tool name.
    pub name: HeaderValue,
    /// Raw JSON params (with `_meta` when the protocol is modern).
    pub params: String,
}

impl ToolCall {
    /// The call of `tool` with raw JSON `arguments`.
    pub fn new(protocol: Protocol, tool: &str, arguments: &str) -> Result<ToolCall, String> {
        let name = HeaderValue::from_str(tool).map_err(|e| format!("tool name {tool:?}: {e}"))?;
        let params = format!(
            r#"{{"name":{},"arguments":{arguments}}}"#,
            serde_json::Value::from(tool)
        );
        Ok(ToolCall {
            name,
            params: with_meta(protocol, &params).into_owned(),
        })
    }
}

/// `params` (a JSON object) with the modern per-request `_meta` added first, for
/// [`Protocol::Modern`]; unchanged otherwise.
fn with_meta(protocol: Protocol, params: &str) -> Cow<'_, str> {
    if protocol != Protocol::Modern {
        return Cow::Borrowed(params);
    }
    let meta = format!(
        r#"{{"_meta":{{"io.modelcontextprotocol/protocolVersion":"{MODERN_VERSION}","io.modelcontextprotocol/clientCapabilities":{{}},"io.modelcontextprotocol/clientInfo":{{"name":"loadgen","version":"{}"}}}}"#,
        env!("CARGO_PKG_VERSION")
    );
    Cow::Owned(match params.trim_start().strip_prefix('{') {
        Some(rest) if rest.trim_start().starts_with('}') => format!("{meta}}}"),
        Some(rest) => format!("{meta},{rest}"),
        None => format!("{meta}}}"),
    })
}

/// Largest response body read.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Why a request did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// Non-2xx HTTP status.
    Http(u16),
    /// A JSON-RPC error response (code, message).
    Rpc(i64, String),
    /// A tool result with `isError: true`.
    ToolError,
    /// No complete answer within the timeout.
    Timeout,
    /// The TCP connection could not be made or broke.
    Connect(String),
    /// An answer we could not understand.
    Protocol(String),
    /// The legacy SSE stream that carries responses ended (or never sent its endpoint).
    StreamClosed(String),
}

impl CallError {
    /// The failure kind used in reports: `http 503`, `jsonrpc -32000`, `timeout`, ...
    pub fn kind(&self) -> String {
        match self {
            CallError::Http(s) => format!("http {s}"),
            CallError::Rpc(c, _) => format!("jsonrpc {c}"),
            CallError::ToolError => "tool isError".into(),
            CallError::Timeout => "timeout".into(),
            CallError::Connect(_) => "connect".into(),
            CallError::Protocol(_) => "protocol".into(),
            CallError::StreamClosed(_) => "stream closed".into(),
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Http(s) => write!(f, "HTTP status {s}"),
            CallError::Rpc(c, m) => write!(f, "JSON-RPC error {c}: {m}"),
            CallError::ToolError => write!(f, "tool returned isError: true"),
            CallError::Timeout => write!(f, "timed out"),
            CallError::Connect(e) => write!(f, "connection: {e}"),
            CallError::Protocol(e) => write!(f, "protocol: {e}"),
            CallError::StreamClosed(e) => write!(f, "SSE stream closed: {e}"),
        }
    }
}

/// Which `Accept` header POSTs carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AcceptMode {
    /// `application/json, text/event-stream` (the spec's MUST).
    Both,
    /// `application/json` only: the hub then answers JSON.
    Json,
}

/// Where an MCP endpoint is: `http://host:port/path`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Resolved socket address.
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: HeaderValue,
    /// Request path (e.g. `/mcp`).
    pub path: String,
}

impl Endpoint {
    /// Parses a plain `http://` URL (no TLS: load targets are loopback).
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr = authority
            .to_socket_addrs()
            .map_err(|e| format!("{url}: {e}"))?
            .next()
            .ok_or_else(|| format!("{url}: host does not resolve"))?;
        let host = HeaderValue::from_str(authority).map_err(|e| format!("{url}: {e}"))?;
        Ok(Endpoint {
            addr,
            host,
            path: path.to_string(),
        })
    }

    /// The same server, another path.
    pub fn with_path(&self, path: &str) -> Endpoint {
        Endpoint {
            path: path.to_string(),
            ..self.clone()
        }
    }

    /// Opens one HTTP/1.1 connection (Nagle off); its driver runs as a task.
    pub async fn connect(&self) -> Result<http1::SendRequest<Full<Bytes>>, CallError> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| CallError::Connect(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| CallError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

/// The parts of a JSON-RPC message we look at.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    method: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<ErrorObject>,
}

#[derive(Deserialize)]
struct ErrorObject {
    code: i64,
    #[serde(default)]
    message: String,
}

/// The response to request `id` in `json`, if `json` is one; `Ok(None)` for other messages.
pub fn response_for(json: &[u8], id: u64) -> Result<Option<String>, CallError> {
    let env: Envelope<'_> = serde_json::from_slice(json)
        .map_err(|e| CallError::Protocol(format!("not JSON-RPC: {e}")))?;
    if env.method.is_some() {
        return Ok(None); // a request or notification sent before the response
    }
    let matches = env.id.as_ref().is_some_and(|v| v.as_u64() == Some(id));
    match (env.result, env.error) {
        (Some(r), _) if matches => Ok(Some(r.get().to_string())),
        (_, Some(e)) if matches || env.id.as_ref().is_none_or(|v| v.is_null()) => {
            Err(CallError::Rpc(e.code, e.message))
        }
        _ => Ok(None),
    }
}

/// Reads a whole body (bounded).
pub async fn read_body(body: &mut Incoming) -> Result<Vec<u8>, CallError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| CallError::Connect(format!("reading body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > MAX_BODY {
                return Err(CallError::Protocol("response body too large".into()));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// Reads an SSE body until the response to `id`, then to the end of the stream (the
/// server closes a POST stream after its response, which keeps the connection reusable).
async fn read_sse(body: &mut Incoming, id: u64) -> Result<String, CallError> {
    let mut parser = SseParser::new();
    let mut events: Vec<SseEvent> = Vec::new();
    let mut answer: Option<Result<String, CallError>> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| CallError::Connect(format!("reading SSE: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        parser.feed(&data, &mut events);
        for ev in events.drain(..) {
            if ev.data.is_empty() || answer.is_some() {
                continue; // priming event, or extra events after the answer
            }
            match response_for(ev.data.as_bytes(), id) {
                Ok(Some(r)) => answer = Some(Ok(r)),
                Ok(None) => {}
                Err(e) => answer = Some(Err(e)),
            }
        }
    }
    answer.unwrap_or_else(|| {
        Err(CallError::Protocol(
            "SSE stream ended without the response".into(),
        ))
    })
}

/// Per-endpoint settings shared by every session of a run.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Where.
    pub endpoint: Arc<Endpoint>,
    /// `Accept` of POSTs.
    pub accept: AcceptMode,
    /// Per-request timeout (whole exchange, body included).
    pub timeout: Duration,
    /// Protocol era.
    pub protocol: Protocol,
}

/// One MCP client session.
pub struct Session {
    cfg: ClientConfig,
    accept: HeaderValue,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
    session_id: Option<HeaderValue>,
    protocol: HeaderValue,
    next_id: u64,
    /// The event stream of a legacy (2024-11-05) session.
    legacy: Option<legacy::Legacy>,
}

impl Session {
    /// A session that has not initialized yet (no I/O).
    pub fn new(cfg: ClientConfig) -> Session {
        let accept = HeaderValue::from_static(match cfg.accept {
            AcceptMode::Both => "application/json, text/event-stream",
            AcceptMode::Json => "application/json",
        });
        Session {
            cfg,
            accept,
            sender: None,
            session_id: None,
            protocol: HeaderValue::from_static(PROTOCOL_VERSION),
            next_id: 1,
            legacy: None,
        }
    }

    /// Opens a session: `initialize`, then `notifications/initialized`. A modern client has
    /// no session to open: it only connects. A legacy client first opens its event stream.
    pub async fn open(cfg: ClientConfig) -> Result<Session, CallError> {
        let mut s = Session::new(cfg);
        if s.cfg.protocol == Protocol::Modern {
            s.protocol = HeaderValue::from_static(MODERN_VERSION);
            s.ready_sender().await?;
        } else {
            s.initialize().await?;
        }
        Ok(s)
    }

    /// The POST URL of a legacy session (from its `endpoint` event).
    pub fn legacy_endpoint(&self) -> Option<&Arc<Endpoint>> {
        self.legacy.as_ref().map(|l| &l.post)
    }

    /// The `Mcp-Session-Id` the server minted.
    pub fn session_id(&self) -> Option<&HeaderValue> {
        self.session_id.as_ref()
    }

    /// The protocol era this client speaks.
    pub fn protocol(&self) -> Protocol {
        self.cfg.protocol
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.cfg.endpoint
    }

    /// `initialize` + `notifications/initialized` (a legacy client: on a new event stream).
    pub async fn initialize(&mut self) -> Result<(), CallError> {
        if self.cfg.protocol == Protocol::LegacySse {
            return self.open_legacy().await;
        }
        let params = format!(
            r#"{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"loadgen","version":"{}"}}}}"#,
            env!("CARGO_PKG_VERSION")
        );
        self.session_id = None;
        let id = self.take_id();
        let (resp, result) = self
            .exchange(request_body(id, "initialize", &params), id, None)
            .await?;
        if let Some(sid) = resp {
            self.session_id = Some(sid);
        }
        #[derive(Deserialize)]
        struct Init {
            #[serde(rename = "protocolVersion")]
            protocol_version: String,
        }
        let init: Init = serde_json::from_str(&result)
            .map_err(|e| CallError::Protocol(format!("initialize result: {e}")))?;
        self.protocol = HeaderValue::from_str(&init.protocol_version)
            .map_err(|e| CallError::Protocol(format!("protocolVersion: {e}")))?;
        self.notify("notifications/initialized").await
    }

    /// Sends a notification; the server must answer 202.
    pub async fn notify(&mut self, method: &str) -> Result<(), CallError> {
        let body = format!(r#"{{"jsonrpc":"2.0","method":"{method}"}}"#);
        let deadline = Instant::now() + self.cfg.timeout;
        if self.legacy.is_some() {
            return self.legacy_post(Bytes::from(body), deadline).await;
        }
        let resp = self.send(Bytes::from(body), deadline, None).await?;
        let status = resp.status();
        let mut body = resp.into_body();
        let drained = tokio::time::timeout_at(deadline, read_body(&mut body)).await;
        if drained.is_err() {
            self.sender = None;
        }
        if status.as_u16() == 202 || status.is_success() {
            Ok(())
        } else {
            Err(CallError::Http(status.as_u16()))
        }
    }

    /// Sends request `method` with raw JSON `params` (a modern client adds its `_meta`);
    /// returns the raw `result`.
    pub async fn request(&mut self, method: &str, params: &str) -> Result<String, CallError> {
        let id = self.take_id();
        let params = with_meta(self.cfg.protocol, params);
        let headers = self.modern_headers(method, None);
        self.exchange(request_body(id, method, &params), id, headers)
            .await
            .map(|(_, r)| r)
    }

    /// A prepared `tools/call`; `isError` fails it.
    pub async fn call_tool(&mut self, call: &ToolCall) -> Result<(), CallError> {
        let id = self.take_id();
        let headers = self.modern_headers("tools/call", Some(&call.name));
        let (_, result) = self
            .exchange(request_body(id, "tools/call", &call.params), id, headers)
            .await?;
        #[derive(Deserialize)]
        struct R {
            #[serde(rename = "isError", default)]
            is_error: bool,
        }
        match serde_json::from_str::<R>(&result) {
            Ok(R { is_error: false }) => Ok(()),
            Ok(R { is_error: true }) => Err(CallError::ToolError),
            Err(e) => Err(CallError::Protocol(format!("tools/call result: {e}"))),
        }
    }

    /// Ends the session with `DELETE` (best effort; a server may answer 405). Returns the
    /// status. A legacy session ends by closing its event stream (200).
    pub async fn close(mut self) -> Result<u16, CallError> {
        if self.legacy.take().is_some() {
            return Ok(200);
        }
        let Some(sid) = self.session_id.clone() else {
            return Ok(200);
        };
        let req = Request::builder()
            .method(Method::DELETE)
            .uri(self.cfg.endpoint.path.as_str())
            .header(HOST, self.cfg.endpoint.host.clone())
            .header("mcp-protocol-version", self.protocol.clone())
            .header("mcp-session-id", sid)
            .body(Full::new(Bytes::new()))
            .map_err(|e| CallError::Protocol(e.to_string()))?;
        let timeout = self.cfg.timeout;
        tokio::time::timeout(timeout, self.send_for_status(req))
            .await
            .map_err(|_| CallError::Timeout)?
            .map(|status| status.as_u16())
    }

    /// Sends `req` on the kept connection and reads its answer to the end (so the
    /// connection stays usable): the answer's status.
    async fn send_for_status(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<hyper::StatusCode, CallError> {
        let sender = self.ready_sender().await?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| CallError::Connect(e.to_string()))?;
        let status = resp.status();
        read_body(&mut resp.into_body()).await?;
        Ok(status)
    }

    /// The `Mcp-Method` and `Mcp-Name` values of a modern request (`None` for a session).
    fn modern_headers(
        &self,
        method: &str,
        name: Option<&HeaderValue>,
    ) -> Option<(HeaderValue, Option<HeaderValue>)> {
        if self.cfg.protocol != Protocol::Modern {
            return None;
        }
        Some((HeaderValue::from_str(method).ok()?, name.cloned()))
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// POSTs a request and reads its answer; returns the session header (if any) and
    /// the raw result.
    async fn exchange(
        &mut self,
        body: String,
        id: u64,
        modern: Option<(HeaderValue, Option<HeaderValue>)>,
    ) -> Result<(Option<HeaderValue>, String), CallError> {
        if self.cfg.protocol == Protocol::LegacySse {
            // A stream that ended failed its calls; the next call opens a new session.
            if self.legacy.as_ref().is_none_or(|l| l.inbox.is_closed()) {
                self.open_legacy().await?;
            }
            return self.legacy_exchange(body, id).await.map(|r| (None, r));
        }
        let deadline = Instant::now() + self.cfg.timeout;
        let resp = self.send(Bytes::from(body), deadline, modern).await?;
        let read = tokio::time::timeout_at(deadline, read_answer(resp, id)).await;
        match read {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                if matches!(e, CallError::Connect(_) | CallError::Protocol(_)) {
                    self.sender = None;
                }
                Err(e)
            }
            Err(_) => {
                self.sender = None; // the connection is mid-response: start a new one
                Err(CallError::Timeout)
            }
        }
    }

    /// POSTs `body`; `modern` carries the `Mcp-Method` (and `Mcp-Name`) of a modern request.
    async fn send(
        &mut self,
        body: Bytes,
        deadline: Instant,
        modern: Option<(HeaderValue, Option<HeaderValue>)>,
    ) -> Result<Response<Incoming>, CallError> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.cfg.endpoint.path.as_str())
            .header(HOST, self.cfg.endpoint.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(ACCEPT, self.accept.clone())
            .header("mcp-protocol-version", self.protocol.clone());
        if let Some(sid) = &self.session_id {
            req = req.header("mcp-session-id", sid.clone());
        }
        if let Some((method, name)) = modern {
            req = req.header("mcp-method", method);
            if let Some(name) = name {
                req = req.header("mcp-name", name);
            }
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| CallError::Protocol(e.to_string()))?;
        let fut = async {
            let sender = self.ready_sender().await?;
            sender
                .send_request(req)
                .await
                .map_err(|e| CallError::Connect(e.to_string()))
        };
        let sent = tokio::time::timeout_at(deadline, fut).await;
        self.settle(sent)
    }

    /// The outcome of an exchange bounded by a deadline; a failed or timed-out one leaves
    /// its connection in an unknown state, so the next request opens a new one.
    fn settle<T>(
        &mut self,
        outcome: Result<Result<T, CallError>, tokio::time::error::Elapsed>,
    ) -> Result<T, CallError> {
        let result = outcome.unwrap_or(Err(CallError::Timeout));
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    /// Opens a legacy session: the event stream, then `initialize` and
    /// `notifications/initialized` POSTed to its endpoint.
    async fn open_legacy(&mut self) -> Result<(), CallError> {
        self.legacy = None;
        let opened = legacy::Legacy::open(&self.cfg.endpoint, self.cfg.timeout).await?;
        // The endpoint event may name another server: POST on a connection to it.
        self.sender = None;
        self.legacy = Some(opened);
        let id = self.take_id();
        let params = legacy::initialize_params();
        let result = self
            .legacy_exchange(request_body(id, "initialize", &params), id)
            .await?;
        let version = legacy::negotiated_version(&result)?;
        self.protocol = HeaderValue::from_str(&version)
            .map_err(|e| CallError::Protocol(format!("protocolVersion: {e}")))?;
        self.notify("notifications/initialized").await
    }

    /// POSTs request `id` to the legacy endpoint and waits for its response on the stream.
    async fn legacy_exchange(&mut self, body: String, id: u64) -> Result<String, CallError> {
        let deadline = Instant::now() + self.cfg.timeout;
        let inbox = self
            .legacy
            .as_ref()
            .map(|l| l.inbox.clone())
            .ok_or_else(|| CallError::StreamClosed("no open stream".into()))?;
        let answer = inbox.expect(id)?;
        if let Err(e) = self.legacy_post(Bytes::from(body), deadline).await {
            inbox.forget(id);
            return Err(e);
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(CallError::StreamClosed("the reader stopped".into())),
            Err(_) => {
                inbox.forget(id);
                Err(CallError::Timeout)
            }
        }
    }

    /// POSTs one message to the legacy endpoint; the server must accept it (202, or any
    /// 2xx). The answer body is drained so the connection stays usable.
    async fn legacy_post(&mut self, body: Bytes, deadline: Instant) -> Result<(), CallError> {
        let post = self
            .legacy
            .as_ref()
            .map(|l| l.post.clone())
            .ok_or_else(|| CallError::StreamClosed("no open stream".into()))?;
        let req = Request::builder()
            .method(Method::POST)
            .uri(post.path.as_str())
            .header(HOST, post.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(body))
            .map_err(|e| CallError::Protocol(e.to_string()))?;
        let done = tokio::time::timeout_at(deadline, self.send_for_status(req)).await;
        let status = self.settle(done)?;
        if status.is_success() {
            Ok(())
        } else {
            Err(CallError::Http(status.as_u16()))
        }
    }

    /// A connection ready for a request; reconnects once when the old one was closed. A
    /// legacy session connects to its POST endpoint.
    async fn ready_sender(&mut self) -> Result<&mut http1::SendRequest<Full<Bytes>>, CallError> {
        if let Some(s) = self.sender.as_mut() {
            if s.ready().await.is_err() {
                self.sender = None;
            }
        }
        if self.sender.is_none() {
            let target = match &self.legacy {
                Some(l) => l.post.clone(),
                None => self.cfg.endpoint.clone(),
            };
            let mut s = target.connect().await?;
            s.ready()
                .await
                .map_err(|e| CallError::Connect(e.to_string()))?;
            self.sender = Some(s);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| CallError::Connect("no connection".into()))
    }
}

fn request_body(id: u64, method: &str, params: &str) -> String {
    let mut s = String::with_capacity(48 + method.len() + params.len());
    s.push_str(r#"{"jsonrpc":"2.0","id":"#);
    s.push_str(&id.to_string());
    s.push_str(r#","method":""#);
    s.push_str(method);
    s.push_str(r#"","params":"#);
    s.push_str(params);
    s.push('}');
    s
}

async fn read_answer(
    resp: Response<Incoming>,
    id: u64,
) -> Result<(Option<HeaderValue>, String), CallError> {
    let status = resp.status();
    let sid = resp.headers().get("mcp-session-id").cloned();
    let is_sse = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let mut body = resp.into_body();
    if !status.is_success() {
        // Drain so the connection stays usable, then report the status.
        let _ = read_body(&mut body).await;
        return Err(CallError::Http(status.as_u16()));
    }
    let result = if is_sse {
        read_sse(&mut body, id).await?
    } else {
        let bytes = read_body(&mut body).await?;
        response_for(&bytes, id)?.ok_or_else(|| {
            CallError::Protocol(format!(
                "JSON body is not the response: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ))
        })?
    };
    Ok((sid, result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_response_with_our_id() {
        let ok = br#"{"jsonrpc":"2.0","id":3,"result":{"content":[]}}"#;
        assert_eq!(response_for(ok, 3), Ok(Some(r#"{"content":[]}"#.into())));
        assert_eq!(response_for(ok, 4), Ok(None));
        let note = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#;
        assert_eq!(response_for(note, 3), Ok(None));
        let req = br#"{"jsonrpc":"2.0","id":3,"method":"sampling/createMessage"}"#;
        assert_eq!(
            response_for(req, 3),
            Ok(None),
            "a server request with our id"
        );
        let err = br#"{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"Unknown tool"}}"#;
        assert_eq!(
            response_for(err, 3),
            Err(CallError::Rpc(-32602, "Unknown tool".into()))
        );
        let idless = br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"x"}}"#;
        assert!(matches!(
            response_for(idless, 9),
            Err(CallError::Rpc(-32000, _))
        ));
        assert!(matches!(
            response_for(b"nope", 1),
            Err(CallError::Protocol(_))
        ));
    }

    #[test]
    fn modern_params_carry_the_meta_first() {
        let call = ToolCall::new(Protocol::Modern, "echo", r#"{"text":"hi"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        let v: serde_json::Value =
            serde_json::from_str(&call.params).unwrap_or_else(|e| panic!("{e}: {}", call.params));
        assert_eq!(
            v["_meta"]["io.modelcontextprotocol/protocolVersion"],
            MODERN_VERSION
        );
        assert_eq!(v["name"], "echo");
        assert_eq!(v["arguments"]["text"], "hi");
        assert_eq!(call.name, "echo");
        let empty: serde_json::Value = serde_json::from_str(&with_meta(Protocol::Modern, "{}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(empty["_meta"].is_object());
        assert_eq!(with_meta(Protocol::Session, "{}"), "{}");
        let session =
            ToolCall::new(Protocol::Session, "echo", "{}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(session.params, r#"{"name":"echo","arguments":{}}"#);
        let legacy =
            ToolCall::new(Protocol::LegacySse, "echo", "{}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(legacy.params, session.params, "no _meta in 2024-11-05");
        assert!(ToolCall::new(Protocol::Modern, "bad\nname", "{}").is_err());
    }

    #[test]
    fn endpoint_urls() {
        let e = Endpoint::parse("http://127.0.0.1:8080/mcp/fast").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.addr.port(), 8080);
        assert_eq!(e.path, "/mcp/fast");
        assert_eq!(e.host, "127.0.0.1:8080");
        assert!(Endpoint::parse("https://127.0.0.1/mcp").is_err());
        let root = Endpoint::parse("http://127.0.0.1:1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(root.path, "/");
    }
}
