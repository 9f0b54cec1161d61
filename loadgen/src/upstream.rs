//! A fast Streamable HTTP MCP server, so that the upstream is never the bottleneck of a
//! benchmark: `initialize` (mints a session id), notifications and responses → 202,
//! `ping`, `tools/list` (prebuilt once), `tools/call` of `echo` (and `echo_1`… with
//! `--tools N`) answered as JSON (or SSE with `--sse`), GET → 405, DELETE → 200. Requests
//! need the session id, except a 2026-07-28 (stateless) request, which carries `Mcp-Method`
//! instead; the server still calls itself session-era (no `server/discover`).
//!
//! It also serves the legacy HTTP+SSE transport (2024-11-05): `GET /sse` opens a stream
//! whose first event, `endpoint`, is `/messages?sessionId=ID`; `POST /messages?sessionId=ID`
//! answers 202 and pushes the JSON-RPC response onto that stream as a `message` event
//! (unknown session → 404). Each stream is fed by a channel; its session is removed when the
//! stream's body is dropped (the client went away).
//!
//! Per request it parses only the envelope (borrowed `RawValue`s), splices the raw `text`
//! argument into a response buffer without re-escaping it, and writes that buffer.

use bytes::Bytes;
use http_body_util::Either;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Largest request body accepted.
const MAX_REQUEST: usize = 4 * 1024 * 1024;
/// Messages queued on one legacy stream before a POST waits for the client to read.
const LEGACY_QUEUE: usize = 64;
/// Versions the upstream answers with (echoes the client's when listed here).
const VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// Options of the fast upstream.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// Tools served: `echo`, then `echo_1` … `echo_{n-1}`.
    pub tools: usize,
    /// Answer requests as SSE (`text/event-stream`) instead of JSON.
    pub sse: bool,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        Self {
            tools: 1,
            sse: false,
        }
    }
}

struct Shared {
    opts: UpstreamOptions,
    tools_list: String,
    seed: u64,
    sessions: AtomicU64,
    /// Open legacy streams by session id.
    legacy: Mutex<HashMap<String, mpsc::Sender<Bytes>>>,
}

impl Shared {
    fn new(opts: UpstreamOptions, seed: u64) -> Shared {
        Shared {
            tools_list: tools_list(opts.tools.max(1)),
            opts,
            seed,
            sessions: AtomicU64::new(0),
            legacy: Mutex::new(HashMap::new()),
        }
    }

    /// A new session id.
    fn session_id(&self) -> String {
        let n = self.sessions.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}{:08x}", self.seed, n)
    }

    fn legacy(&self) -> MutexGuard<'_, HashMap<String, mpsc::Sender<Bytes>>> {
        self.legacy.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The body of a legacy stream: the session's queued events; dropping it (the connection
/// closed) ends the session.
struct LegacyStream {
    rx: mpsc::Receiver<Bytes>,
    shared: Arc<Shared>,
    id: String,
}

impl Body for LegacyStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .rx
            .poll_recv(cx)
            .map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

impl Drop for LegacyStream {
    fn drop(&mut self) {
        self.shared.legacy().remove(&self.id);
    }
}

/// A response body: whole, or a legacy event stream.
type UpBody = Either<Full<Bytes>, LegacyStream>;

/// Binds `addr` and serves on the current tokio runtime. Returns the bound address.
pub async fn spawn(
    addr: SocketAddr,
    opts: UpstreamOptions,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    spawn_shared(addr, Arc::new(Shared::new(opts, seed()))).await
}

async fn spawn_shared(
    addr: SocketAddr,
    shared: Arc<Shared>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let shared = shared.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(shared.clone(), req));
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok((local, task))
}

/// A per-process random seed for session ids (not security: this is a test server).
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Whether `name` is one of the served tools.
fn is_tool(name: &str, tools: usize) -> bool {
    name == "echo"
        || name
            .strip_prefix("echo_")
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n >= 1 && n < tools)
}

/// `{"tools":[...]}`, built once.
fn tools_list(n: usize) -> String {
    let tools: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let name = if i == 0 { "echo".to_string() } else { format!("echo_{i}") };
            serde_json::json!({
                "name": name,
                "description": "Returns the given text unchanged as text content.",
                "inputSchema": {
                    "type": "object",
                    "properties": { "text": { "type": "string", "description": "Text to echo back" } },
                    "required": ["text"]
                }
            })
        })
        .collect();
    serde_json::json!({ "tools": tools }).to_string()
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EchoArgs<'a> {
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct InitParams<'a> {
    #[serde(borrow, default, rename = "protocolVersion")]
    protocol_version: Option<Cow<'a, str>>,
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<UpBody>, Infallible> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/sse") => return Ok(open_legacy(shared)),
        (&Method::POST, "/messages") => {
            return Ok(legacy_message(&shared, req).await.map(Either::Left))
        }
        _ => {}
    }
    Ok(streamable(shared, req).await.map(Either::Left))
}

/// `GET /sse`: a new legacy session whose stream starts with its `endpoint` event.
fn open_legacy(shared: Arc<Shared>) -> Response<UpBody> {
    let id = shared.session_id();
    let (tx, rx) = mpsc::channel(LEGACY_QUEUE);
    let _ = tx.try_send(Bytes::from(format!(
        "event: endpoint\ndata: /messages?sessionId={id}\n\n"
    )));
    shared.legacy().insert(id.clone(), tx);
    let mut r = Response::new(Either::Right(LegacyStream { rx, shared, id }));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `POST /messages?sessionId=ID`: 202, the response (if any) goes onto the session's stream.
async fn legacy_message(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let tx = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("sessionId=")))
        .and_then(|id| shared.legacy().get(id).cloned());
    let Some(tx) = tx else {
        return empty(StatusCode::NOT_FOUND);
    };
    let body = match Limited::new(req.into_body(), MAX_REQUEST).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return empty(StatusCode::PAYLOAD_TOO_LARGE),
    };
    match reply(shared, &body, true) {
        Reply::Accepted => empty(StatusCode::ACCEPTED),
        Reply::Json { status, json, .. } if status != StatusCode::OK => {
            json_response(status, json, false)
        }
        Reply::Json { json, .. } => {
            let mut event = String::with_capacity(json.len() + 24);
            event.push_str("event: message\ndata: ");
            event.push_str(&json);
            event.push_str("\n\n");
            match tx.send(Bytes::from(event)).await {
                Ok(()) => empty(StatusCode::ACCEPTED),
                Err(_) => empty(StatusCode::NOT_FOUND), // the stream closed meanwhile
            }
        }
    }
}

/// A Streamable HTTP request (any path).
async fn streamable(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match *req.method() {
        Method::POST => {}
        Method::DELETE => return empty(StatusCode::OK),
        Method::GET => {
            let mut r = empty(StatusCode::METHOD_NOT_ALLOWED);
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST, DELETE"));
            return r;
        }
        _ => return empty(StatusCode::METHOD_NOT_ALLOWED),
    }
    // A 2026-07-28 request is stateless: it names its method in `Mcp-Method` instead of
    // carrying a session (so the load tool's modern clients can be measured directly too).
    let has_session =
        req.headers().contains_key("mcp-session-id") || req.headers().contains_key("mcp-method");
    let body = match Limited::new(req.into_body(), MAX_REQUEST).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return empty(StatusCode::PAYLOAD_TOO_LARGE),
    };
    answer(&shared, &body, has_session)
}

/// What a JSON-RPC message gets, whatever the transport.
enum Reply {
    /// A notification or a response: nothing to answer (202).
    Accepted,
    /// A JSON-RPC message to send back.
    Json {
        /// HTTP status of a direct answer (200, or 400 for a bad request).
        status: StatusCode,
        /// The message.
        json: String,
        /// The session an `initialize` minted.
        session: Option<String>,
        /// May go as SSE (`--sse`): only tool answers do.
        sse: bool,
    },
}

/// The Streamable HTTP answer to a POSTed message.
fn answer(shared: &Shared, body: &[u8], has_session: bool) -> Response<Full<Bytes>> {
    match reply(shared, body, has_session) {
        Reply::Accepted => empty(StatusCode::ACCEPTED),
        Reply::Json {
            status,
            json,
            session,
            sse,
        } => {
            let mut r = json_response(status, json, sse && shared.opts.sse);
            if let Some(v) = session.and_then(|s| HeaderValue::from_str(&s).ok()) {
                r.headers_mut().insert("mcp-session-id", v);
            }
            r
        }
    }
}

fn reply(shared: &Shared, body: &[u8], has_session: bool) -> Reply {
    let bad = |json: &str| Reply::Json {
        status: StatusCode::BAD_REQUEST,
        json: json.into(),
        session: None,
        sse: false,
    };
    let Ok(env) = serde_json::from_slice::<Envelope<'_>>(body) else {
        return bad(
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#,
        );
    };
    let (Some(id), Some(method)) = (env.id, env.method.as_deref()) else {
        return Reply::Accepted; // notification or response
    };
    let id = id.get();
    if method == "initialize" {
        let asked = env
            .params
            .and_then(|p| serde_json::from_str::<InitParams<'_>>(p.get()).ok())
            .and_then(|p| p.protocol_version)
            .and_then(|v| VERSIONS.iter().find(|s| **s == v).copied())
            .unwrap_or(VERSIONS[0]);
        let result = format!(
            r#"{{"protocolVersion":"{asked}","capabilities":{{"tools":{{"listChanged":false}}}},"serverInfo":{{"name":"loadgen-fast-upstream","version":"{}"}}}}"#,
            env!("CARGO_PKG_VERSION")
        );
        return Reply::Json {
            status: StatusCode::OK,
            json: envelope(id, Ok(&result)),
            session: Some(shared.session_id()),
            sse: false,
        };
    }
    if !has_session {
        return bad(
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Bad Request: Mcp-Session-Id header is required"}}"#,
        );
    }
    let result = match method {
        "tools/call" => call(shared, env.params),
        "tools/list" => Ok(Cow::Borrowed(shared.tools_list.as_str())),
        "ping" => Ok(Cow::Borrowed("{}")),
        _ => Err((-32601, "Method not found")),
    };
    Reply::Json {
        status: StatusCode::OK,
        json: match result {
            Ok(result) => envelope(id, Ok(&result)),
            Err(e) => envelope(id, Err(e)),
        },
        session: None,
        sse: true,
    }
}

fn call<'a>(
    shared: &Shared,
    params: Option<&'a RawValue>,
) -> Result<Cow<'a, str>, (i64, &'static str)> {
    let p: CallParams<'_> = params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .ok_or((-32602, "Invalid params: tools/call needs a name"))?;
    if !is_tool(&p.name, shared.opts.tools.max(1)) {
        return Err((-32602, "Unknown tool"));
    }
    let text = p
        .arguments
        .and_then(|a| serde_json::from_str::<EchoArgs<'_>>(a.get()).ok())
        .and_then(|a| a.text)
        .map(RawValue::get)
        .filter(|t| t.starts_with('"'));
    Ok(Cow::Owned(match text {
        Some(t) => {
            let mut s = String::with_capacity(40 + t.len());
            s.push_str(r#"{"content":[{"type":"text","text":"#);
            s.push_str(t);
            s.push_str("}]}");
            s
        }
        None => r#"{"content":[{"type":"text","text":"echo needs a string argument `text`"}],"isError":true}"#.to_string(),
    }))
}

/// `{"jsonrpc":"2.0","id":ID,"result":R}` or the error form.
fn envelope(id: &str, body: Result<&str, (i64, &str)>) -> String {
    let mut s = String::with_capacity(64 + id.len() + body.map(str::len).unwrap_or(64));
    s.push_str(r#"{"jsonrpc":"2.0","id":"#);
    s.push_str(id);
    match body {
        Ok(result) => {
            s.push_str(r#","result":"#);
            s.push_str(result);
        }
        Err((code, message)) => {
            s.push_str(r#","error":{"code":"#);
            s.push_str(&code.to_string());
            s.push_str(r#","message":""#);
            s.push_str(message);
            s.push_str("\"}");
        }
    }
    s.push('}');
    s
}

fn json_response(status: StatusCode, json: String, sse: bool) -> Response<Full<Bytes>> {
    let (body, ct) = if sse {
        let mut framed = String::with_capacity(json.len() + 24);
        framed.push_str("event: message\ndata: ");
        framed.push_str(&json);
        framed.push_str("\n\n");
        (framed, "text/event-stream")
    } else {
        (json, "application/json")
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

/// `loadgen upstream`: serves until SIGINT/SIGTERM; prints `listening on http://ADDR/mcp`
/// to stderr once bound.
pub async fn serve_forever(addr: SocketAddr, opts: UpstreamOptions) -> std::io::Result<()> {
    let (local, task) = spawn(addr, opts).await?;
    eprintln!("listening on http://{local}/mcp");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    task.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(tools: usize) -> Shared {
        Shared::new(UpstreamOptions { tools, sse: false }, 1)
    }

    async fn body_of(r: Response<Full<Bytes>>) -> String {
        let b = r.into_body().collect().await.map(|c| c.to_bytes());
        String::from_utf8_lossy(&b.unwrap_or_default()).into_owned()
    }

    #[tokio::test]
    async fn echo_passes_the_raw_text_through() {
        let s = shared(3);
        let r = answer(
            &s,
            br#"{"jsonrpc":"2.0","id":"a1","method":"tools/call","params":{"name":"echo_2","arguments":{"text":"h\u00e9 \"q\""}}}"#,
            true,
        );
        assert_eq!(r.status(), StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body_of(r).await).unwrap_or_default();
        assert_eq!(v["id"], "a1");
        assert_eq!(v["result"]["content"][0]["text"], "hé \"q\"");
        let unknown = answer(
            &s,
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo_3","arguments":{}}}"#,
            true,
        );
        let v: serde_json::Value =
            serde_json::from_str(&body_of(unknown).await).unwrap_or_default();
        assert_eq!(v["error"]["code"], -32602);
    }

    #[tokio::test]
    async fn lifecycle_answers() {
        let s = shared(50);
        let init = answer(
            &s,
            br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}"#,
            false,
        );
        assert!(init.headers().contains_key("mcp-session-id"));
        let v: serde_json::Value = serde_json::from_str(&body_of(init).await).unwrap_or_default();
        assert_eq!(v["result"]["protocolVersion"], "2025-06-18");
        let note = answer(
            &s,
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            true,
        );
        assert_eq!(note.status(), StatusCode::ACCEPTED);
        let no_session = answer(&s, br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, false);
        assert_eq!(no_session.status(), StatusCode::BAD_REQUEST);
        let list = answer(
            &s,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            true,
        );
        let v: serde_json::Value = serde_json::from_str(&body_of(list).await).unwrap_or_default();
        assert_eq!(v["result"]["tools"].as_array().map(Vec::len), Some(50));
        assert_eq!(v["result"]["tools"][49]["name"], "echo_49");
    }

    /// The legacy transport: a session per stream, 202 for POSTs, responses on the stream,
    /// 404 for an unknown session, and the session gone once its stream is.
    #[tokio::test]
    async fn legacy_sessions_live_as_long_as_their_stream() {
        use crate::mcp::{
            http_request, AcceptMode, ClientConfig, Endpoint, Protocol, Session, ToolCall,
        };
        use std::time::Duration;
        let s = Arc::new(shared(1));
        let (addr, server) = spawn_shared(
            "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
            s.clone(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let ep = Endpoint::parse(&format!("http://{addr}/sse")).unwrap_or_else(|e| panic!("{e}"));
        let t = Duration::from_secs(5);
        let unknown = http_request(
            &ep,
            Method::POST,
            "/messages?sessionId=nope",
            Some("{}".into()),
            t,
        )
        .await;
        assert_eq!(unknown.map(|(status, _)| status), Ok(404));
        let cfg = ClientConfig {
            endpoint: Arc::new(ep),
            accept: AcceptMode::Both,
            timeout: t,
            protocol: Protocol::LegacySse,
        };
        let mut c = Session::open(cfg).await.unwrap_or_else(|e| panic!("{e}"));
        let post = c
            .legacy_endpoint()
            .map(|e| e.path.clone())
            .unwrap_or_default();
        assert!(post.starts_with("/messages?sessionId="), "{post}");
        assert_eq!(s.legacy().len(), 1);
        let call = ToolCall::new(Protocol::LegacySse, "echo", r#"{"text":"x"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.call_tool(&call).await, Ok(()));
        assert_eq!(c.close().await, Ok(200));
        for _ in 0..100 {
            if s.legacy().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            s.legacy().is_empty(),
            "the closed stream's session is still there"
        );
        let gone = http_request(
            &Endpoint::parse(&format!("http://{addr}/")).unwrap_or_else(|e| panic!("{e}")),
            Method::POST,
            &post,
            Some("{}".into()),
            t,
        )
        .await;
        assert_eq!(gone.map(|(status, _)| status), Ok(404));
        server.abort();
    }
}
