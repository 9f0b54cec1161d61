//! A fast Streamable HTTP MCP server, so that the upstream is never the bottleneck of a
//! benchmark: `initialize` (mints a session id), notifications and responses → 202,
//! `ping`, `tools/list` (prebuilt once), `tools/call` of `echo` (and `echo_1`… with
//! `--tools N`) answered as JSON (or SSE with `--sse`), GET → 405, DELETE → 200. Requests
//! need the session id, except a 2026-07-28 (stateless) request, which carries `Mcp-Method`
//! instead; the server still calls itself session-era (no `server/discover`).
//!
//! Per request it parses only the envelope (borrowed `RawValue`s), splices the raw `text`
//! argument into a response buffer without re-escaping it, and writes that buffer.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Largest request body accepted.
const MAX_REQUEST: usize = 4 * 1024 * 1024;
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
}

/// Binds `addr` and serves on the current tokio runtime. Returns the bound address.
pub async fn spawn(
    addr: SocketAddr,
    opts: UpstreamOptions,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let shared = Arc::new(Shared {
        tools_list: tools_list(opts.tools.max(1)),
        opts,
        seed: seed(),
        sessions: AtomicU64::new(0),
    });
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
) -> Result<Response<Full<Bytes>>, Infallible> {
    match *req.method() {
        Method::POST => {}
        Method::DELETE => return Ok(empty(StatusCode::OK)),
        Method::GET => {
            let mut r = empty(StatusCode::METHOD_NOT_ALLOWED);
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST, DELETE"));
            return Ok(r);
        }
        _ => return Ok(empty(StatusCode::METHOD_NOT_ALLOWED)),
    }
    // A 2026-07-28 request is stateless: it names its method in `Mcp-Method` instead of
    // carrying a session (so the load tool's modern clients can be measured directly too).
    let has_session =
        req.headers().contains_key("mcp-session-id") || req.headers().contains_key("mcp-method");
    let body = match Limited::new(req.into_body(), MAX_REQUEST).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(empty(StatusCode::PAYLOAD_TOO_LARGE)),
    };
    Ok(answer(&shared, &body, has_session))
}

fn answer(shared: &Shared, body: &[u8], has_session: bool) -> Response<Full<Bytes>> {
    let Ok(env) = serde_json::from_slice::<Envelope<'_>>(body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#.into(),
            false,
        );
    };
    let (Some(id), Some(method)) = (env.id, env.method.as_deref()) else {
        return empty(StatusCode::ACCEPTED); // notification or response
    };
    let id = id.get();
    if method == "initialize" {
        let asked = env
            .params
            .and_then(|p| serde_json::from_str::<InitParams<'_>>(p.get()).ok())
            .and_then(|p| p.protocol_version)
            .and_then(|v| VERSIONS.iter().find(|s| **s == v).copied())
            .unwrap_or(VERSIONS[0]);
        let n = shared.sessions.fetch_add(1, Ordering::Relaxed);
        let sid = format!("{:016x}{:08x}", shared.seed, n);
        let result = format!(
            r#"{{"protocolVersion":"{asked}","capabilities":{{"tools":{{"listChanged":false}}}},"serverInfo":{{"name":"loadgen-fast-upstream","version":"{}"}}}}"#,
            env!("CARGO_PKG_VERSION")
        );
        let mut r = json_response(StatusCode::OK, envelope(id, Ok(&result)), false);
        if let Ok(v) = HeaderValue::from_str(&sid) {
            r.headers_mut().insert("mcp-session-id", v);
        }
        return r;
    }
    if !has_session {
        return json_response(
            StatusCode::BAD_REQUEST,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Bad Request: Mcp-Session-Id header is required"}}"#.into(),
            false,
        );
    }
    let sse = shared.opts.sse;
    let reply = match method {
        "tools/call" => call(shared, env.params),
        "tools/list" => Ok(Cow::Borrowed(shared.tools_list.as_str())),
        "ping" => Ok(Cow::Borrowed("{}")),
        _ => Err((-32601, "Method not found")),
    };
    match reply {
        Ok(result) => json_response(StatusCode::OK, envelope(id, Ok(&result)), sse),
        Err(e) => json_response(StatusCode::OK, envelope(id, Err(e)), sse),
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
        Shared {
            tools_list: tools_list(tools),
            opts: UpstreamOptions { tools, sse: false },
            seed: 1,
            sessions: AtomicU64::new(0),
        }
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
}
