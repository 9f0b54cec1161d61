//! Test helpers: a stdio child driver and a minimal HTTP/1.1 + SSE client
//! (std only, so the tests need no extra dependencies).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_demo");
pub const TIMEOUT: Duration = Duration::from_secs(20);

// ------------------------------------------------------------------ stdio --

/// A demo server child speaking stdio.
pub struct StdioChild {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl StdioChild {
    pub fn spawn() -> Self {
        Self::spawn_with_env(&[])
    }

    pub fn spawn_with_env(env: &[(&str, &str)]) -> Self {
        Self::spawn_with(&[], env)
    }

    /// The demo with extra command-line arguments (e.g. `--era modern`).
    pub fn spawn_with(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn demo");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            lines: rx,
        }
    }

    pub fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    pub fn send(&mut self, msg: &Value) {
        self.send_raw(&serde_json::to_string(msg).unwrap());
    }

    /// Next message from stdout (every line must be one JSON object).
    pub fn recv(&mut self) -> Value {
        self.recv_timeout(TIMEOUT)
            .expect("timed out waiting for a message")
    }

    pub fn recv_timeout(&mut self, t: Duration) -> Option<Value> {
        let line = self.lines.recv_timeout(t).ok()?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}")))
    }

    /// Reads until the response with `id`, returning it and everything seen before.
    pub fn until_response(&mut self, id: &Value) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let m = self.recv();
            if m.get("method").is_none() && m.get("id") == Some(id) {
                return (m, before);
            }
            before.push(m);
        }
    }

    pub fn request(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.until_response(&id).0
    }

    pub fn initialize(&mut self, version: &str, capabilities: Value) -> Value {
        let r = self.request(
            json!(0),
            "initialize",
            json!({"protocolVersion": version, "capabilities": capabilities,
                   "clientInfo": {"name": "demo-test", "version": "1"}}),
        );
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        r
    }

    /// Closes stdin and waits for the exit status.
    pub fn close(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "demo did not exit after stdin closed"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for StdioChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------- http --

/// A demo server child speaking Streamable HTTP on 127.0.0.1:<random port>.
pub struct HttpChild {
    pub child: Child,
    pub port: u16,
}

impl HttpChild {
    pub fn spawn() -> Self {
        let mut child = Command::new(BIN)
            .args(["--http", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn demo --http");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(rest) = line.strip_prefix("listening on http://") {
                        let addr = rest.strip_suffix("/mcp").unwrap().to_string();
                        let _ = tx.send(addr);
                        sent = true;
                        continue;
                    }
                }
                eprintln!("[demo] {line}");
            }
        });
        let addr = rx.recv_timeout(TIMEOUT).expect("no 'listening on' line");
        let port = addr.rsplit_once(':').unwrap().1.parse().unwrap();
        Self { child, port }
    }
}

impl Drop for HttpChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response whose body is read incrementally.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    chunked: bool,
    chunk_left: usize,
    content_length: Option<usize>,
    finished: bool,
    pending: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    /// Next slice of body bytes; None at the end of the body.
    fn next_bytes(&mut self) -> Option<Vec<u8>> {
        if self.finished {
            return None;
        }
        if self.chunked {
            if self.chunk_left == 0 {
                let mut line = String::new();
                if self.reader.read_line(&mut line).ok()? == 0 {
                    self.finished = true;
                    return None;
                }
                let size =
                    usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16).ok()?;
                if size == 0 {
                    self.finished = true;
                    return None;
                }
                self.chunk_left = size;
            }
            let mut buf = vec![0u8; self.chunk_left];
            self.reader.read_exact(&mut buf).ok()?;
            self.chunk_left = 0;
            let mut crlf = [0u8; 2];
            self.reader.read_exact(&mut crlf).ok()?;
            return Some(buf);
        }
        let mut buf = Vec::new();
        match self.content_length {
            Some(n) => {
                buf.resize(n, 0);
                self.reader.read_exact(&mut buf).ok()?;
            }
            None => {
                self.reader.read_to_end(&mut buf).ok()?;
            }
        }
        self.finished = true;
        Some(buf)
    }

    /// The whole (remaining) body as text.
    pub fn text(&mut self) -> String {
        let mut all = std::mem::take(&mut self.pending);
        while let Some(b) = self.next_bytes() {
            all.extend(b);
        }
        String::from_utf8(all).unwrap()
    }

    pub fn json(&mut self) -> Value {
        let t = self.text();
        serde_json::from_str(&t).unwrap_or_else(|e| panic!("bad JSON body {t:?}: {e}"))
    }

    /// Next SSE event as (id, data), skipping comments; None at end of stream.
    pub fn next_event(&mut self) -> Option<(Option<String>, String)> {
        loop {
            if let Some(pos) = find(&self.pending, b"\n\n") {
                let raw: Vec<u8> = self.pending.drain(..pos + 2).collect();
                let raw = String::from_utf8(raw).unwrap();
                let mut id = None;
                let mut data: Vec<&str> = Vec::new();
                let mut any_field = false;
                for line in raw.lines() {
                    if line.starts_with(':') || line.is_empty() {
                        continue;
                    }
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    any_field = true;
                    match field {
                        "id" => id = Some(value.to_string()),
                        "data" => data.push(value),
                        _ => {}
                    }
                }
                if any_field {
                    return Some((id, data.join("\n")));
                }
                continue;
            }
            let more = self.next_bytes()?;
            self.pending.extend(more);
        }
    }

    /// Next SSE event carrying a JSON message (skips priming events).
    pub fn next_message(&mut self) -> Option<(Option<String>, Value)> {
        loop {
            let (id, data) = self.next_event()?;
            if data.trim().is_empty() {
                continue;
            }
            return Some((id, serde_json::from_str(&data).unwrap()));
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Sends one HTTP/1.1 request (Connection: close) and reads the head.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Response {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    if method != "GET" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut reader = BufReader::new(s);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let chunked = get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let content_length = get("content-length").and_then(|v| v.parse().ok());
    Response {
        status,
        headers,
        reader,
        chunked,
        chunk_left: 0,
        content_length,
        finished: false,
        pending: Vec::new(),
    }
}

/// POST a JSON-RPC message to /mcp.
pub fn post(port: u16, session: Option<&str>, msg: &Value) -> Response {
    let body = serde_json::to_string(msg).unwrap();
    let mut h = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    if let Some(s) = session {
        h.push(("Mcp-Session-Id", s));
        h.push(("MCP-Protocol-Version", "2025-11-25"));
    }
    http(port, "POST", "/mcp", &h, Some(&body))
}

/// initialize + notifications/initialized; returns the session id.
pub fn http_initialize(port: u16, capabilities: Value) -> String {
    let mut r = post(
        port,
        None,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": capabilities,
            "clientInfo": {"name": "demo-test", "version": "1"}}}),
    );
    assert_eq!(r.status, 200);
    assert!(r.content_type().starts_with("application/json"));
    let sid = r
        .header("mcp-session-id")
        .expect("session header")
        .to_string();
    let body = r.json();
    assert_eq!(body["result"]["protocolVersion"], "2025-11-25");
    let r = post(
        port,
        Some(&sid),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    assert_eq!(r.status, 202);
    sid
}
