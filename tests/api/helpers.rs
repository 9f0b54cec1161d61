//! Test harness: `spawn_app` runs the product's own startup on port 0; `McpClient` speaks
//! Streamable HTTP to it; `DemoHttp` runs the demo server over HTTP as a real upstream.

use actix_web::web;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use mcp_hub::config::Settings;
use mcp_hub::startup::Application;
use mcp_hub::state::AppState;
use mcp_hub_actors::registry::ServerDef;
use mcp_hub_actors::server::Status;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The mcp-hub binary built for these tests.
pub fn hub_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mcp-hub"))
}

/// The demo server as a stdio upstream.
pub fn demo_stdio(id: &str) -> ServerDef {
    serde_json::from_value(
        json!({ "id": id, "transport": "stdio", "command": "@self", "args": ["demo-server"] }),
    )
    .unwrap()
}

/// An HTTP upstream definition.
pub fn http_def(id: &str, url: &str) -> ServerDef {
    serde_json::from_value(json!({ "id": id, "transport": "streamable_http", "url": url })).unwrap()
}

/// A running hub.
pub struct TestApp {
    pub port: u16,
    pub base: String,
    pub state: web::Data<AppState>,
    pub handle: actix_web::dev::ServerHandle,
    _dir: Option<tempfile::TempDir>,
}

/// A hub with the stdio demo server registered as `demo`.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A hub with the stdio demo server and settings changed by `f`.
pub async fn spawn_app_with(f: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let mut app = spawn_app_in(&path, f).await;
    app._dir = Some(dir);
    app
}

/// A hub whose state lives in `state_dir` (survives the hub, for restart tests).
pub async fn spawn_app_in(state_dir: &Path, f: impl FnOnce(&mut Settings)) -> TestApp {
    let mut s = Settings {
        listen: "127.0.0.1:0".into(),
        state_dir: state_dir.to_path_buf(),
        servers: vec![demo_stdio("demo")],
        ..Settings::default()
    };
    s.http.workers = 2;
    f(&mut s);
    s.validate().unwrap();
    let app = Application::build(s, hub_bin()).await.unwrap();
    let port = app.port();
    let state = app.state();
    let handle = app.handle();
    actix_rt::spawn(app.run_until_stopped());
    TestApp {
        port,
        base: format!("http://127.0.0.1:{port}"),
        state,
        handle,
        _dir: None,
    }
}

impl TestApp {
    /// What the session actor of client session `id` reports about itself (calls in flight,
    /// event log size, ...).
    pub async fn inspect_session(&self, id: &str) -> mcp_hub_actors::session::SessionInfo {
        self.state
            .sessions
            .get(id)
            .expect("no such session")
            .addr
            .send(mcp_hub_actors::session::Inspect)
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits until `server` is ready (panics after `within`).
    pub async fn wait_ready(&self, server: &str, within: Duration) {
        let start = Instant::now();
        loop {
            if let Some(h) = self.state.servers.get(server) {
                if h.runtime.borrow().status == Status::Ready {
                    return;
                }
            }
            assert!(
                start.elapsed() < within,
                "{server} not ready after {within:?}"
            );
            actix_rt::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn pid(&self, server: &str) -> Option<u32> {
        self.state
            .servers
            .get(server)
            .and_then(|h| h.runtime.borrow().pid)
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

pub fn http_client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish()
}

/// What a request got back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    /// Messages before the response (notifications, server requests).
    pub messages: Vec<Value>,
    /// The JSON-RPC response (or the error body for non-2xx).
    pub response: Value,
}

/// A minimal Streamable HTTP MCP client.
pub struct McpClient {
    pub client: awc::Client,
    pub url: String,
    pub session: Option<String>,
    next_id: i64,
    pub accept: &'static str,
    pub bearer: Option<String>,
}

impl McpClient {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            client: http_client(),
            url: url.into(),
            session: None,
            next_id: 1,
            accept: "application/json, text/event-stream",
            bearer: None,
        }
    }

    /// initialize + notifications/initialized.
    pub async fn connect(url: impl Into<String>) -> Self {
        Self::connect_as(url, None).await
    }

    /// initialize + notifications/initialized with an API key.
    pub async fn connect_as(url: impl Into<String>, key: Option<&str>) -> Self {
        let mut c = Self::new(url);
        c.bearer = key.map(str::to_string);
        let r = c
            .request("initialize", json!({ "protocolVersion": "2025-11-25", "capabilities": { "sampling": {}, "elicitation": {} }, "clientInfo": { "name": "test", "version": "1" } }))
            .await;
        assert_eq!(r.status, 200, "initialize: {r:?}");
        assert!(r.response.get("result").is_some(), "initialize: {r:?}");
        c.notify("notifications/initialized", json!({})).await;
        c
    }

    fn post(&self) -> awc::ClientRequest {
        let mut req = self
            .client
            .post(&self.url)
            .insert_header(("Accept", self.accept))
            .insert_header(("Content-Type", "application/json"));
        if let Some(s) = &self.session {
            req = req
                .insert_header(("Mcp-Session-Id", s.as_str()))
                .insert_header(("MCP-Protocol-Version", "2025-11-25"));
        }
        if let Some(key) = &self.bearer {
            req = req.bearer_auth(key);
        }
        req
    }

    pub fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Reply {
        let id = self.next_id();
        self.request_with_id(json!(id), method, params).await
    }

    pub async fn request_with_id(&mut self, id: Value, method: &str, params: Value) -> Reply {
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        self.send_raw(serde_json::to_vec(&body).unwrap(), |_| None)
            .await
    }

    /// Sends raw bytes; `on_request` answers server-to-client requests seen on the stream.
    pub async fn send_raw(
        &mut self,
        body: Vec<u8>,
        on_request: impl Fn(&Value) -> Option<Value>,
    ) -> Reply {
        let resp = self.post().send_body(body).await.expect("POST failed");
        self.read(resp, on_request).await
    }

    /// Calls the demo's `test_sampling` tool with request id `id`, answering its
    /// `sampling/createMessage` with "sampled!", and checks the request reached this client.
    pub async fn call_test_sampling(&mut self, id: u64) -> Reply {
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": "test_sampling", "arguments": { "prompt": "hi" } } });
        let r = self
            .send_raw(serde_json::to_vec(&body).unwrap(), |req| {
                (req["method"] == "sampling/createMessage").then(|| json!({ "role": "assistant", "content": { "type": "text", "text": "sampled!" }, "model": "m", "stopReason": "endTurn" }))
            })
            .await;
        assert!(
            r.messages
                .iter()
                .any(|m| m["method"] == "sampling/createMessage"),
            "{r:?}"
        );
        r
    }

    async fn read<S>(
        &mut self,
        mut resp: awc::ClientResponse<S>,
        on_request: impl Fn(&Value) -> Option<Value>,
    ) -> Reply
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
    {
        let status = resp.status().as_u16();
        if let Some(s) = resp.headers().get("mcp-session-id") {
            self.session = Some(s.to_str().unwrap().to_string());
        }
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let mut messages = Vec::new();
        if content_type.starts_with("text/event-stream") {
            let mut events = resp.eventsource();
            while let Some(ev) = events.next().await {
                let ev = ev.expect("bad SSE");
                if ev.data.is_empty() {
                    continue;
                }
                let v: Value = serde_json::from_str(&ev.data).expect("SSE data is JSON");
                if v.get("method").is_none()
                    && (v.get("result").is_some() || v.get("error").is_some())
                {
                    return Reply {
                        status,
                        content_type,
                        messages,
                        response: v,
                    };
                }
                if v.get("id").is_some() {
                    if let Some(answer) = on_request(&v) {
                        let msg = json!({ "jsonrpc": "2.0", "id": v["id"], "result": answer });
                        let r = self
                            .post()
                            .send_body(serde_json::to_vec(&msg).unwrap())
                            .await
                            .unwrap();
                        assert_eq!(r.status().as_u16(), 202);
                    }
                }
                messages.push(v);
            }
            return Reply {
                status,
                content_type,
                messages,
                response: Value::Null,
            };
        }
        let body = resp.body().limit(64 * 1024 * 1024).await.unwrap();
        let response = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()))
        };
        Reply {
            status,
            content_type,
            messages,
            response,
        }
    }

    pub async fn notify(&mut self, method: &str, params: Value) -> u16 {
        let body = json!({ "jsonrpc": "2.0", "method": method, "params": params });
        self.post()
            .send_body(serde_json::to_vec(&body).unwrap())
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub async fn delete(&mut self) -> u16 {
        let mut req = self.client.delete(&self.url);
        if let Some(s) = &self.session {
            req = req.insert_header(("Mcp-Session-Id", s.as_str()));
        }
        req.send().await.unwrap().status().as_u16()
    }

    /// tools/call returning the result (panics on a JSON-RPC error).
    pub async fn call_tool(&mut self, name: &str, args: Value) -> Value {
        let r = self
            .request("tools/call", json!({ "name": name, "arguments": args }))
            .await;
        assert!(r.response.get("result").is_some(), "{name}: {r:?}");
        r.response["result"].clone()
    }
}

/// The text of the first content item of a tool result.
pub fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Serves `handler` at `POST /mcp` on a free loopback port (one worker): a fake upstream a
/// test shapes by hand. Returns its URL.
pub fn serve_fake_mcp<F, Args>(handler: F) -> String
where
    F: actix_web::Handler<Args> + Send,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().route("/mcp", web::post().to(handler.clone()))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    actix_rt::spawn(server.run());
    format!("http://{addr}/mcp")
}

/// The demo server over Streamable HTTP, as a real child process.
pub struct DemoHttp {
    pub child: Child,
    pub url: String,
}

impl DemoHttp {
    pub fn start() -> Self {
        Self::spawn(&["--http", "127.0.0.1:0"])
    }

    /// `mcp-hub demo-server ARGS` (which must include `--http`), once it says where it listens.
    pub fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(hub_bin())
            .arg("demo-server")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let url = loop {
            let line = lines.next().expect("demo exited").unwrap();
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Self { child, url }
    }

    pub fn base(&self) -> String {
        self.url.trim_end_matches("/mcp").to_string()
    }

    /// The demo's own counters (`initializes`, live `sessions`, ...) from `/admin/stats`.
    pub async fn stats(&self) -> Value {
        http_client()
            .get(format!("{}/admin/stats", self.base()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Makes the HTTP demo at `base` forget every session (its next request on an old session
/// id gets 404), as an upstream that restarted would.
pub async fn forget_demo_sessions(base: &str) {
    let forgot = http_client()
        .post(format!("{base}/admin/forget-sessions"))
        .send()
        .await
        .unwrap();
    assert!(forgot.status().is_success());
}

impl Drop for DemoHttp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo server as a stdio upstream speaking `era`.
pub fn demo_stdio_era(id: &str, era: &str) -> ServerDef {
    serde_json::from_value(json!({
        "id": id, "transport": "stdio", "command": "@self",
        "args": ["demo-server", "--era", era]
    }))
    .unwrap()
}

/// The demo server over Streamable HTTP speaking `era`.
pub fn demo_http_era(era: &str) -> DemoHttp {
    DemoHttp::spawn(&["--era", era, "--http", "127.0.0.1:0"])
}

/// One SSE event as a test sees it.
#[derive(Debug, Clone)]
pub struct Ev {
    pub id: String,
    pub event: String,
    pub data: String,
}

impl Ev {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

type EvStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<eventsource_stream::Event, String>>>>;

/// An open SSE response, read event by event; dropping it drops the connection.
pub struct SseReader {
    pub status: u16,
    events: EvStream,
}

impl SseReader {
    /// The next event (None when the stream ended), at most `within` from now.
    pub async fn next_within(&mut self, within: Duration) -> Option<Ev> {
        match tokio::time::timeout(within, self.events.next()).await {
            Ok(Some(Ok(e))) => Some(Ev {
                id: e.id,
                event: e.event,
                data: e.data,
            }),
            Ok(Some(Err(e))) => panic!("SSE error: {e}"),
            Ok(None) => None,
            Err(_) => panic!("no SSE event within {within:?}"),
        }
    }

    pub async fn next(&mut self) -> Option<Ev> {
        self.next_within(Duration::from_secs(30)).await
    }

    /// Reads until a JSON-RPC response arrives; returns the events before it and it.
    pub async fn until_response(&mut self) -> (Vec<Ev>, Ev) {
        let mut before = Vec::new();
        while let Some(ev) = self.next().await {
            let v = ev.json();
            if v.get("method").is_none() && (v.get("result").is_some() || v.get("error").is_some())
            {
                return (before, ev);
            }
            before.push(ev);
        }
        panic!("stream ended without a response; saw {before:?}");
    }
}

async fn into_reader<S>(resp: awc::ClientResponse<S>) -> SseReader
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>>
        + Unpin
        + 'static,
{
    let status = resp.status().as_u16();
    let events = resp.eventsource().map(|r| r.map_err(|e| e.to_string()));
    SseReader {
        status,
        events: Box::pin(events),
    }
}

impl McpClient {
    /// POSTs a request accepting only SSE (so even a quick answer comes as a stream, with
    /// its priming event) and returns the stream unread.
    pub async fn post_sse(&mut self, id: Value, method: &str, params: Value) -> SseReader {
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let resp = self
            .post()
            .insert_header(("Accept", "text/event-stream"))
            .send_body(serde_json::to_vec(&body).unwrap())
            .await
            .unwrap();
        assert!(resp
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        into_reader(resp).await
    }

    /// Opens the session's GET stream, resuming after `last_event_id` if given.
    pub async fn get_sse(&self, last_event_id: Option<&str>) -> SseReader {
        let mut req = self
            .client
            .get(&self.url)
            .insert_header(("Accept", "text/event-stream"));
        if let Some(s) = &self.session {
            req = req.insert_header(("Mcp-Session-Id", s.as_str()));
        }
        if let Some(id) = last_event_id {
            req = req.insert_header(("Last-Event-ID", id));
        }
        into_reader(req.send().await.unwrap()).await
    }
}

/// Opens a raw SSE GET (legacy transport).
pub async fn open_sse(url: &str, last_event_id: Option<&str>) -> SseReader {
    let mut req = http_client()
        .get(url)
        .insert_header(("Accept", "text/event-stream"));
    if let Some(id) = last_event_id {
        req = req.insert_header(("Last-Event-ID", id));
    }
    into_reader(req.send().await.unwrap()).await
}
