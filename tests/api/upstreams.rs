//! Upstream transports beyond stdio and plain Streamable HTTP: a legacy HTTP+SSE upstream
//! (here: another hub's `/sse/demo`), and a Streamable HTTP upstream that closes its SSE
//! answer mid-call so the hub must resume it with Last-Event-ID.

use serde_json::{json, Value};
use std::time::Duration;

use crate::helpers::*;

#[actix_web::test]
async fn a_legacy_sse_upstream_is_callable_through_streamable_http() {
    let legacy = spawn_app().await;
    legacy.wait_ready("demo", Duration::from_secs(10)).await;
    let url = legacy.url("/sse/demo");
    let app = spawn_app_with(move |s| {
        s.servers =
            vec![
                serde_json::from_value(json!({ "id": "old", "transport": "sse", "url": url }))
                    .unwrap(),
            ];
    })
    .await;
    app.wait_ready("old", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    assert_eq!(
        text_of(
            &c.call_tool("old__echo", json!({ "text": "via legacy" }))
                .await
        ),
        "via legacy"
    );
    let r = c.request("tools/call", json!({ "name": "old__sleep", "arguments": { "ms": 300 }, "_meta": { "progressToken": "lp" } })).await;
    assert_eq!(text_of(&r.response["result"]), "slept 300 ms");
    let progress: Vec<&Value> = r
        .messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert!(
        !progress.is_empty()
            && progress
                .iter()
                .all(|p| p["params"]["progressToken"] == "lp"),
        "{:?}",
        r.messages
    );
}

#[actix_web::test]
async fn an_upstream_sse_answer_closed_mid_call_is_resumed() {
    let upstream = DemoHttp::start();
    let url = upstream.url.clone();
    let app = spawn_app_with(move |s| s.servers = vec![http_def("up", &url)]).await;
    app.wait_ready("up", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let result = c.call_tool("up__test_reconnection", json!({})).await;
    assert!(
        text_of(&result).contains("properly reconnected"),
        "{result}"
    );
}
