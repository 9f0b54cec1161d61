//! End-to-end tests of the Streamable HTTP transport against the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::thread;
use std::time::Duration;

use serde_json::{json, Value};
use support::{http, http_initialize, post, HttpChild};

fn call(id: Value, name: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": args}})
}

fn stats(port: u16) -> Value {
    let mut r = http(port, "GET", "/admin/stats", &[], None);
    assert_eq!(r.status, 200);
    r.json()
}

#[test]
fn json_and_sse_responses() {
    let srv = HttpChild::spawn();
    let port = srv.port;
    let sid = http_initialize(port, json!({}));

    // echo: nothing is emitted before the response → plain JSON.
    let mut r = post(
        port,
        Some(&sid),
        &call(json!(2), "echo", json!({"text": "hi"})),
    );
    assert_eq!(r.status, 200);
    assert!(r.content_type().starts_with("application/json"));
    assert_eq!(r.header("mcp-session-id"), Some(sid.as_str()));
    let body = r.json();
    assert_eq!(body["id"], 2);
    assert_eq!(body["result"]["content"][0]["text"], "hi");

    // sleep with progress → SSE: priming event, progress…, then the response.
    let msg = json!({"jsonrpc": "2.0", "id": "s1", "method": "tools/call", "params": {
        "name": "sleep", "arguments": {"ms": 350}, "_meta": {"progressToken": "p-1"}}});
    let mut r = post(port, Some(&sid), &msg);
    assert_eq!(r.status, 200);
    assert!(r.content_type().starts_with("text/event-stream"));
    let (prime_id, prime_data) = r.next_event().unwrap();
    assert!(
        prime_id.is_some() && prime_data.is_empty(),
        "first event should prime"
    );
    let mut progress = Vec::new();
    let last = loop {
        let (id, m) = r.next_message().expect("stream ended before the response");
        assert!(id.is_some());
        if m["method"] == "notifications/progress" {
            assert_eq!(m["params"]["progressToken"], "p-1");
            progress.push(m["params"]["progress"].as_f64().unwrap());
        } else {
            break m;
        }
    };
    assert_eq!(last["id"], "s1");
    assert_eq!(last["result"]["content"][0]["text"], "slept 350 ms");
    assert!(progress.len() >= 3);
    assert!(progress.windows(2).all(|w| w[0] < w[1]));
    assert!(
        r.next_event().is_none(),
        "stream must end after the response"
    );

    // Errors keep JSON-RPC shape.
    let mut r = post(
        port,
        Some(&sid),
        &json!({"jsonrpc": "2.0", "id": 3, "method": "nope"}),
    );
    assert_eq!(r.json()["error"]["code"], -32601);
}

#[test]
fn session_errors_and_forget() {
    let srv = HttpChild::spawn();
    let port = srv.port;

    let mut r = post(
        port,
        None,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].is_object());
    let mut r = post(
        port,
        Some("no-such-session"),
        &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    );
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_object());

    let sid = http_initialize(port, json!({}));
    let r = post(
        port,
        Some(&sid),
        &json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}),
    );
    assert_eq!(r.status, 200);

    let mut r = http(port, "POST", "/admin/forget-sessions", &[], Some(""));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["forgotten"], 1);
    let r = post(
        port,
        Some(&sid),
        &json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}),
    );
    assert_eq!(r.status, 404);

    // A new session works; DELETE ends it.
    let sid2 = http_initialize(port, json!({}));
    assert_ne!(sid, sid2);
    let r = http(port, "DELETE", "/mcp", &[("Mcp-Session-Id", &sid2)], None);
    assert_eq!(r.status, 200);
    let r = post(
        port,
        Some(&sid2),
        &json!({"jsonrpc": "2.0", "id": 4, "method": "ping"}),
    );
    assert_eq!(r.status, 404);

    let s = stats(port);
    assert_eq!(s["initializes"], 2);
    // initialize ×2 + one ping reached a session; rejected POSTs are not counted.
    assert_eq!(s["requests"], 3);
}

#[test]
fn bad_requests() {
    let srv = HttpChild::spawn();
    let port = srv.port;
    let mut r = http(
        port,
        "POST",
        "/mcp",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ],
        Some("{oops"),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32700);

    // DNS rebinding protection.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}})
    .to_string();
    let r = http(
        port,
        "POST",
        "/mcp",
        &[
            ("Host", "evil.example.com"),
            ("Origin", "http://evil.example.com"),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ],
        Some(&body),
    );
    assert_eq!(r.status, 403);
    let r = http(
        port,
        "POST",
        "/mcp",
        &[
            ("Origin", "http://evil.example.com"),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ],
        Some(&body),
    );
    assert_eq!(r.status, 403);

    // Unsupported protocol version header.
    let sid = http_initialize(port, json!({}));
    let r = http(
        port,
        "POST",
        "/mcp",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Mcp-Session-Id", &sid),
            ("MCP-Protocol-Version", "1999-01-01"),
        ],
        Some(r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#),
    );
    assert_eq!(r.status, 400);
    // 2025-06-18+ session: no batches.
    let mut r = post(
        port,
        Some(&sid),
        &json!([{"jsonrpc": "2.0", "id": 6, "method": "ping"}]),
    );
    assert_eq!(r.json()["error"]["code"], -32600);
    let r = http(port, "PUT", "/mcp", &[], Some(""));
    assert_eq!(r.status, 405);
}

#[test]
fn sampling_over_sse_and_cancel() {
    let srv = HttpChild::spawn();
    let port = srv.port;
    let sid = http_initialize(port, json!({"sampling": {}}));

    // The server→client request arrives on the POST's SSE stream; the answer
    // is a separate POST (202).
    let mut r = post(
        port,
        Some(&sid),
        &call(json!(7), "test_sampling", json!({"prompt": "hey"})),
    );
    assert!(r.content_type().starts_with("text/event-stream"));
    let (_, req) = r.next_message().unwrap();
    assert_eq!(req["method"], "sampling/createMessage");
    let answer = json!({"jsonrpc": "2.0", "id": req["id"], "result": {
        "role": "assistant", "content": {"type": "text", "text": "hello back"}, "model": "m"}});
    let a = post(port, Some(&sid), &answer);
    assert_eq!(a.status, 202);
    let (_, resp) = r.next_message().unwrap();
    assert_eq!(resp["id"], 7);
    assert_eq!(
        resp["result"]["content"][0]["text"],
        "LLM response: hello back"
    );

    // Cancel a long sleep from another connection.
    let sid2 = sid.clone();
    let sleeper = thread::spawn(move || {
        let mut r = post(
            port,
            Some(&sid2),
            &call(json!("long"), "sleep", json!({"ms": 5000})),
        );
        (r.status, r.text())
    });
    thread::sleep(Duration::from_millis(300));
    let r = post(
        port,
        Some(&sid),
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "long"}}),
    );
    assert_eq!(r.status, 202);
    let (status, body) = sleeper.join().unwrap();
    assert_eq!(status, 200);
    assert!(
        !body.contains("slept"),
        "cancelled sleep still answered: {body}"
    );
    assert_eq!(stats(port)["cancelled"], json!(["long"]));
    let mut r = post(
        port,
        Some(&sid),
        &call(json!(9), "cancelled_requests", json!({})),
    );
    assert_eq!(r.json()["result"]["content"][0]["text"], r#"["long"]"#);
}

#[test]
fn get_stream_and_resumption() {
    let srv = HttpChild::spawn();
    let port = srv.port;
    let sid = http_initialize(port, json!({}));

    // list_changed goes to the GET stream.
    let mut get = http(
        port,
        "GET",
        "/mcp",
        &[("Accept", "text/event-stream"), ("Mcp-Session-Id", &sid)],
        None,
    );
    assert_eq!(get.status, 200);
    assert!(get.content_type().starts_with("text/event-stream"));
    let mut r = post(
        port,
        Some(&sid),
        &call(json!(1), "emit_list_changed", json!({"kind": "tools"})),
    );
    assert!(r.content_type().starts_with("application/json"));
    assert!(r.json()["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("list_changed"));
    let (id, m) = get.next_message().unwrap();
    assert_eq!(m["method"], "notifications/tools/list_changed");
    assert!(id.unwrap().starts_with("get:"));

    // test_reconnection: the POST stream closes after the priming event; the
    // result is delivered on GET with Last-Event-ID.
    let mut r = post(
        port,
        Some(&sid),
        &call(json!(2), "test_reconnection", json!({})),
    );
    assert!(r.content_type().starts_with("text/event-stream"));
    let (prime, data) = r.next_event().unwrap();
    assert!(data.is_empty());
    assert!(
        r.next_event().is_none(),
        "stream should close before the result"
    );
    let prime = prime.unwrap();
    let mut resumed = http(
        port,
        "GET",
        "/mcp",
        &[
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", &sid),
            ("Last-Event-ID", &prime),
        ],
        None,
    );
    assert_eq!(resumed.status, 200);
    let (_, m) = resumed.next_message().unwrap();
    assert_eq!(m["id"], 2);
    assert!(m["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("Reconnection test completed"));
    assert!(resumed.next_event().is_none());
}
