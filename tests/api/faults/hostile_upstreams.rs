//! Faults of HTTP upstreams: killed and restarted, a black hole that accepts connections and
//! never answers, and one that answers garbage or cuts its SSE answers short.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The demo server over HTTP on a port of the test's choosing (so it can come back there).
fn demo_http_on(port: u16) -> DemoHttp {
    DemoHttp::spawn(&["--http", &format!("127.0.0.1:{port}")])
}

fn short_timeouts(s: &mut mcp_hub::config::Settings) {
    s.timeouts.external_ms = 500;
    s.timeouts.server_ms = 1000;
    s.timeouts.hub_ms = 1500;
    s.timeouts.client_ms = 2000;
    s.supervision.breaker_open_secs = 1;
    s.supervision.backoff_base_ms = 50;
    s.supervision.backoff_max_ms = 500;
}

#[actix_web::test]
async fn http_upstream_killed_and_restarted_under_load() {
    let port = free_port();
    let mut upstream = demo_http_on(port);
    let url = upstream.url.clone();
    let app = spawn_app_with(move |s| {
        short_timeouts(s);
        s.servers = vec![http_def("web", &url)];
    })
    .await;
    app.wait_ready("web", Duration::from_secs(10)).await;
    let load = Load::start(&app.url("/mcp"), 8, "web__echo", json!({ "text": "{i}" })).await;
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    let _ = upstream.child.kill();
    let _ = upstream.child.wait();
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    let restarted = Instant::now();
    let _upstream = demo_http_on(port);
    actix_rt::time::sleep(Duration::from_secs(3)).await;
    let tally = load.finish().await;
    let recovery = tally.recovery_after(restarted);
    report(
        "http_upstream_restart",
        Row {
            fault: "streamable HTTP upstream killed, down 2 s, restarted on the same port",
            load: "8 sessions calling echo back to back on /mcp".into(),
            tally: &tally,
            recovery,
            notes: "recovery counted from the upstream's restart".into(),
        },
    );
    tally.assert_exactly_once();
    assert!(recovery.expect("served again") < Duration::from_secs(3));
}

#[actix_web::test]
async fn http_upstream_that_never_answers() {
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", hole.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in hole.incoming().flatten() {
            held.push(s); // accepted, never read, never answered
        }
    });
    let app = spawn_app_with(move |s| {
        short_timeouts(s);
        s.servers = vec![http_def("hole", &url)];
    })
    .await;
    let load = Load::start(&app.url("/mcp/hole"), 4, "echo", json!({ "text": "{i}" })).await;
    actix_rt::time::sleep(Duration::from_secs(4)).await;
    let tally = load.finish().await;
    let slowest = tally.calls.iter().map(|c| c.ended - c.started).max();
    report(
        "http_upstream_black_hole",
        Row {
            fault: "HTTP upstream accepts connections and never answers",
            load: "4 sessions calling for 4 s; server timeout 1 s".into(),
            tally: &tally,
            recovery: None,
            notes: format!("slowest answer {slowest:?} (every call answered with an error)"),
        },
    );
    tally.assert_exactly_once();
    assert_eq!(tally.ok(), 0);
    assert!(slowest.unwrap() < Duration::from_secs(3), "{slowest:?}");
}

/// A tiny MCP server over HTTP/1.1 that answers initialize and tools/list correctly, then
/// answers tools/call in rotation: garbage SSE data, a truncated SSE event, a garbage JSON
/// body, a body shorter than its Content-Length, and a valid answer.
fn garbage_upstream() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for (turn, s) in l.incoming().flatten().enumerate() {
            std::thread::spawn(move || serve_garbage(s, turn + 1));
        }
    });
    url
}

fn serve_garbage(mut s: TcpStream, turn: usize) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut len = 0usize;
    let mut method = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if method.is_empty() {
            method = line.split_whitespace().next().unwrap_or("").to_string();
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    if method != "POST" {
        let _ = s.write_all(
            b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = msg["id"].clone();
    let json = |v: Value| {
        let b = v.to_string();
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: g1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}", b.len())
    };
    let reply = match msg["method"].as_str() {
        Some("initialize") => json(json!({ "jsonrpc": "2.0", "id": id, "result": {
            "protocolVersion": "2025-06-18", "capabilities": { "tools": {} },
            "serverInfo": { "name": "garbage", "version": "1" } } })),
        Some("tools/list") => json(json!({ "jsonrpc": "2.0", "id": id, "result": { "tools": [
            { "name": "echo", "inputSchema": { "type": "object" } } ] } })),
        Some("ping") => json(json!({ "jsonrpc": "2.0", "id": id, "result": {} })),
        Some("tools/call") => {
            let sse =
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
            match turn % 5 {
                0 => format!("{sse}data: {{not json at all\n\n"),
                1 => format!("{sse}data: {{\"jsonrpc\":\"2.0\",\"id\":{id},\"res"),
                2 => "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\nConnection: close\r\n\r\n<<<>>>!".into(),
                3 => "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\nConnection: close\r\n\r\n{\"jsonrpc\":".into(),
                _ => json(json!({ "jsonrpc": "2.0", "id": id, "result": {
                    "content": [ { "type": "text", "text": "ok" } ] } })),
            }
        }
        _ => "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    };
    let _ = s.write_all(reply.as_bytes());
    let _ = s.shutdown(std::net::Shutdown::Both);
}

#[actix_web::test]
async fn http_upstream_answering_garbage_and_truncated_sse() {
    let url = garbage_upstream();
    let app = spawn_app_with(move |s| {
        short_timeouts(s);
        s.supervision.breaker_failures = 1000;
        s.servers = vec![http_def("junk", &url)];
    })
    .await;
    app.wait_ready("junk", Duration::from_secs(10)).await;
    let load = Load::start(&app.url("/mcp/junk"), 4, "echo", json!({ "text": "{i}" })).await;
    actix_rt::time::sleep(Duration::from_secs(3)).await;
    let tally = load.finish().await;
    let slowest = tally.calls.iter().map(|c| c.ended - c.started).max();
    report(
        "http_upstream_garbage",
        Row {
            fault: "HTTP upstream answering garbage JSON, garbage SSE data, truncated SSE events and short bodies (4 of 5 calls)",
            load: "4 sessions calling for 3 s".into(),
            tally: &tally,
            recovery: None,
            notes: format!("slowest answer {slowest:?}; the valid fifth answers still succeed"),
        },
    );
    tally.assert_exactly_once();
    assert!(
        tally.ok() > 0,
        "valid answers must get through: {:?}",
        tally.errors()
    );
    assert!(tally.errors().values().sum::<usize>() > 0);
    assert!(slowest.unwrap() < Duration::from_secs(3), "{slowest:?}");
}
