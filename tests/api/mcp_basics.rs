//! The Streamable HTTP front door: handshake, lists, calls, progress, and every kind of bad
//! input getting its stable error.

use serde_json::{json, Value};
use std::time::Duration;

use crate::helpers::*;

#[actix_web::test]
async fn initialize_list_call_and_delete_on_the_aggregate_endpoint() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let r = c.request("tools/list", json!({})).await;
    let names: Vec<&str> = r.response["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for want in [
        "demo__echo",
        "demo__add",
        "demo__sleep",
        "demo__fail",
        "demo__test_simple_text",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let result = c
        .call_tool("demo__echo", json!({ "text": "hello hub" }))
        .await;
    assert_eq!(text_of(&result), "hello hub");
    let result = c
        .call_tool("demo__fail", json!({ "message": "boom" }))
        .await;
    assert_eq!(result["isError"], true);
    assert_eq!(c.delete().await, 200);
    let r = c.request("ping", json!({})).await;
    assert_eq!(r.status, 404, "a deleted session is gone: {r:?}");
}

#[actix_web::test]
async fn single_server_endpoint_keeps_names_and_upstream_capabilities() {
    let app = spawn_app().await;
    let mut c = McpClient::new(app.url("/mcp/demo"));
    let r = c.request("initialize", json!({ "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } })).await;
    assert_eq!(r.response["result"]["protocolVersion"], "2025-06-18");
    assert!(
        r.response["result"]["capabilities"]["completions"].is_object(),
        "{r:?}"
    );
    let r = c.request("tools/list", json!({})).await;
    assert!(r.response["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "echo"));
    let r = c
        .request("resources/read", json!({ "uri": "test://static-text" }))
        .await;
    assert!(
        r.response["result"]["contents"][0]["text"].is_string(),
        "{r:?}"
    );
    let r = c
        .request("prompts/get", json!({ "name": "test_simple_prompt" }))
        .await;
    assert!(r.response["result"]["messages"].is_array(), "{r:?}");
}

#[actix_web::test]
async fn progress_arrives_on_the_call_stream_with_the_clients_own_token() {
    let app = spawn_app().await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let r = c
        .request("tools/call", json!({ "name": "demo__sleep", "arguments": { "ms": 350 }, "_meta": { "progressToken": "tok-1" } }))
        .await;
    assert!(r.content_type.starts_with("text/event-stream"));
    assert_eq!(text_of(&r.response["result"]), "slept 350 ms");
    let progress: Vec<&Value> = r
        .messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert!(progress.len() >= 2, "{:?}", r.messages);
    assert!(progress
        .iter()
        .all(|p| p["params"]["progressToken"] == "tok-1"));
}

#[actix_web::test]
async fn sampling_requests_reach_the_client_that_made_the_call() {
    let app = spawn_app().await;
    let mut c = McpClient::connect(app.url("/mcp/demo")).await;
    let r = c.call_test_sampling(77).await;
    assert_eq!(r.response["id"], 77);
    assert!(
        r.response["result"]["content"]
            .to_string()
            .contains("sampled!"),
        "{r:?}"
    );
}

#[actix_web::test]
async fn bad_input_gets_stable_errors() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;

    let r = c.send_raw(b"{not json".to_vec(), |_| None).await;
    assert_eq!(
        (r.status, r.response["error"]["code"].as_i64()),
        (400, Some(-32700)),
        "{r:?}"
    );

    let r = c.send_raw(br#"{"hello":"world"}"#.to_vec(), |_| None).await;
    assert_eq!(
        (r.status, r.response["error"]["code"].as_i64()),
        (400, Some(-32600)),
        "{r:?}"
    );

    let r = c.request("no/such/method", json!({})).await;
    assert_eq!(r.response["error"]["code"], -32601, "{r:?}");

    let r = c
        .request(
            "tools/call",
            json!({ "name": "demo__nope", "arguments": {} }),
        )
        .await;
    assert_eq!(r.response["error"]["code"], -32602, "{r:?}");
    assert!(r.response["error"]["message"]
        .as_str()
        .unwrap()
        .contains("demo__nope"));

    let big = format!(
        r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"demo__echo","arguments":{{"text":"{}"}}}}}}"#,
        "x".repeat(1024 * 1024 + 10)
    );
    let r = c.send_raw(big.into_bytes(), |_| None).await;
    assert_eq!(r.status, 413, "{r:?}");

    let mut stranger = McpClient::new(app.url("/mcp"));
    stranger.session = Some("0123456789abcdef0123456789abcdef".into());
    let r = stranger.request("ping", json!({})).await;
    assert_eq!(r.status, 404, "{r:?}");

    let mut no_session = McpClient::new(app.url("/mcp"));
    let r = no_session.request("tools/list", json!({})).await;
    assert_eq!(r.status, 400, "{r:?}");

    let r = c
        .send_raw(
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.to_vec(),
            |_| None,
        )
        .await;
    assert_eq!(
        (r.status, r.response["error"]["code"].as_i64()),
        (400, Some(-32600)),
        "{r:?}"
    );

    let r = c
        .request("tools/list", json!({ "cursor": "garbage" }))
        .await;
    assert_eq!(r.response["error"]["code"], -32602, "{r:?}");
}

#[actix_web::test]
async fn host_origin_and_version_headers_are_checked() {
    let app = spawn_app().await;
    let client = http_client();
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } });
    let post = |headers: &[(&str, &str)]| {
        let mut req = client
            .post(app.url("/mcp"))
            .insert_header(("Accept", "application/json, text/event-stream"));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        req.send_json(&init)
    };
    assert_eq!(
        post(&[("Host", "evil.example.com")])
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        post(&[("Origin", "http://evil.example.com")])
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        post(&[("MCP-Protocol-Version", "1999-01-01")])
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        post(&[("Accept", "text/html")]).await.unwrap().status(),
        406
    );
    let ok = post(&[("Origin", &format!("http://127.0.0.1:{}", app.port))])
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.headers().get("mcp-session-id").is_some());
}

#[actix_web::test]
async fn cancellation_is_forwarded_upstream_with_the_rewritten_id() {
    let app = spawn_app().await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let mut caller = McpClient::new(c.url.clone());
    caller.session = c.session.clone();
    let call = actix_rt::spawn(async move {
        caller
            .request_with_id(
                json!("slow-1"),
                "tools/call",
                json!({ "name": "demo__sleep", "arguments": { "ms": 5000 } }),
            )
            .await
    });
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        c.notify(
            "notifications/cancelled",
            json!({ "requestId": "slow-1", "reason": "test" })
        )
        .await,
        202
    );
    let r = call.await.unwrap();
    assert!(
        r.response.is_null(),
        "a cancelled call gets no response: {r:?}"
    );
    // The upstream saw a cancel for its own (hub-chosen, numeric) id.
    let cancelled = c.call_tool("demo__cancelled_requests", json!({})).await;
    let ids: Vec<Value> = serde_json::from_str(&text_of(&cancelled)).unwrap();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(ids[0].is_number(), "the hub rewrote the id: {ids:?}");
}

#[actix_web::test]
async fn idle_sessions_expire() {
    let app = spawn_app_with(|s| s.sessions.idle_ttl_secs = 1).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    assert_eq!(c.request("ping", json!({})).await.status, 200);
    actix_rt::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(
        c.request("ping", json!({})).await.status,
        404,
        "the idle session ended"
    );
    assert!(app.state.sessions.is_empty());
}

#[actix_web::test]
async fn session_limits_answer_503_with_a_retry_hint() {
    let app = spawn_app_with(|s| {
        s.sessions.max_sessions = 3;
        s.sessions.max_sessions_per_user = 2;
    })
    .await;
    let _a = McpClient::connect(app.url("/mcp")).await;
    let _b = McpClient::connect(app.url("/mcp")).await;
    let mut c = McpClient::new(app.url("/mcp"));
    let r = c.request("initialize", json!({ "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } })).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.response["error"]["code"], -32000);
    assert_eq!(
        r.response["error"]["message"],
        "Session per user limit reached"
    );
    assert_eq!(r.response["error"]["data"]["limit"], 2);
    assert!(
        r.response["error"]["data"]["retry_after_seconds"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[actix_web::test]
async fn a_quick_answer_comes_as_json_and_one_with_progress_as_sse() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let echo = json!({ "name": "demo__echo", "arguments": { "text": "quick" } });
    let r = c.request("tools/call", echo.clone()).await;
    assert_eq!(r.content_type, "application/json", "{r:?}");
    assert_eq!(text_of(&r.response["result"]), "quick");
    for _ in 0..20 {
        c.request("tools/call", echo.clone()).await;
    }
    // Nothing to resume: the answers answered as JSON leave nothing in the event log.
    let info = app.inspect_session(c.session.as_deref().unwrap()).await;
    assert_eq!(info.log_events, 0, "{info:?}");
    // Progress before the answer: the client gets it, so the answer is a stream.
    let r = c
        .request(
            "tools/call",
            json!({ "name": "demo__sleep", "arguments": { "ms": 250 }, "_meta": { "progressToken": "p1" } }),
        )
        .await;
    assert_eq!(r.content_type, "text/event-stream", "{r:?}");
    assert!(
        r.messages
            .iter()
            .any(|m| m["method"] == "notifications/progress"),
        "{r:?}"
    );
    assert!(r.response.get("result").is_some(), "{r:?}");
    // A client that accepts only SSE gets a stream even for a quick answer.
    c.accept = "text/event-stream";
    let r = c.request("tools/call", echo).await;
    assert_eq!(r.content_type, "text/event-stream", "{r:?}");
    assert_eq!(text_of(&r.response["result"]), "quick");
}
