//! Many client sessions over one upstream session: ids never cross, progress tokens map
//! back, an upstream that forgets its session is re-initialized transparently.

use futures_util::future::join_all;
use serde_json::{json, Value};
use std::time::Duration;

use crate::helpers::*;

#[actix_web::test]
async fn seventy_sessions_share_one_upstream_session_and_get_their_own_answers() {
    let upstream = DemoHttp::start();
    let url = upstream.url.clone();
    let app = spawn_app_with(move |s| s.servers = vec![http_def("up", &url)]).await;
    app.wait_ready("up", Duration::from_secs(10)).await;
    let calls = (0..70).map(|i| {
        let url = app.url("/mcp");
        async move {
            let mut c = McpClient::connect(url).await;
            let mut answers = Vec::new();
            for j in 0..5 {
                // Half the callers use string ids, half numbers, all colliding across sessions.
                let id = if i % 2 == 0 {
                    json!(format!("{j}"))
                } else {
                    json!(j)
                };
                let text = format!("caller {i} call {j}");
                let r = c
                    .request_with_id(
                        id.clone(),
                        "tools/call",
                        json!({ "name": "up__echo", "arguments": { "text": text } }),
                    )
                    .await;
                assert_eq!(
                    r.response["id"], id,
                    "the client's id comes back with its JSON type"
                );
                answers.push((text, text_of(&r.response["result"])));
            }
            answers
        }
    });
    let results = join_all(calls).await;
    let mut total = 0;
    for answers in results {
        for (sent, got) in answers {
            assert_eq!(sent, got);
            total += 1;
        }
    }
    assert_eq!(total, 350);
    let stats = upstream.stats().await;
    assert_eq!(
        stats["initializes"], 1,
        "one upstream session for every client: {stats}"
    );
}

#[actix_web::test]
async fn an_upstream_that_forgets_its_session_is_reinitialized_and_the_call_retried() {
    let upstream = DemoHttp::start();
    let url = upstream.url.clone();
    let app = spawn_app_with(move |s| s.servers = vec![http_def("up", &url)]).await;
    app.wait_ready("up", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    assert_eq!(
        text_of(&c.call_tool("up__echo", json!({ "text": "before" })).await),
        "before"
    );
    forget_demo_sessions(&upstream.base()).await;
    let calls = (0..10).map(|i| {
        let url = app.url("/mcp");
        async move {
            let mut c = McpClient::connect(url).await;
            text_of(
                &c.call_tool("up__echo", json!({ "text": format!("after {i}") }))
                    .await,
            )
        }
    });
    let got = join_all(calls).await;
    for (i, text) in got.iter().enumerate() {
        assert_eq!(text, &format!("after {i}"));
    }
    let stats = upstream.stats().await;
    assert_eq!(
        stats["initializes"], 2,
        "concurrent callers share one re-initialize: {stats}"
    );
}

#[actix_web::test]
async fn progress_tokens_from_different_sessions_do_not_collide() {
    let upstream = DemoHttp::start();
    let url = upstream.url.clone();
    let app = spawn_app_with(move |s| s.servers = vec![http_def("up", &url)]).await;
    app.wait_ready("up", Duration::from_secs(10)).await;
    let calls = (0..4).map(|_| {
        let url = app.url("/mcp");
        async move {
            let mut c = McpClient::connect(url).await;
            // Every session uses the same token.
            c.request("tools/call", json!({ "name": "up__sleep", "arguments": { "ms": 300 }, "_meta": { "progressToken": 1 } })).await
        }
    });
    for r in join_all(calls).await {
        let progress: Vec<&Value> = r
            .messages
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .collect();
        assert!(progress.len() >= 2, "{r:?}");
        assert!(progress
            .iter()
            .all(|p| p["params"]["progressToken"] == 1 && p["params"]["total"] == 300));
    }
}
