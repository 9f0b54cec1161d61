//! Sessions outlive their connections: a dropped stream is resumed with Last-Event-ID and
//! the client gets exactly what it missed, from that stream only.

use futures_util::future::join_all;
use serde_json::{json, Value};
use std::time::Duration;

use crate::helpers::*;

fn response_text(ev: &Ev) -> String {
    text_of(&ev.json()["result"])
}

#[actix_web::test]
async fn a_dropped_call_stream_resumes_with_its_progress_and_result() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let mut s = c.post_sse(json!(1), "tools/call", json!({ "name": "demo__sleep", "arguments": { "ms": 600 }, "_meta": { "progressToken": "p" } })).await;
    let priming = s.next().await.unwrap();
    assert!(
        priming.data.is_empty() && !priming.id.is_empty(),
        "priming event first: {priming:?}"
    );
    drop(s); // the client's connection breaks mid-call

    actix_rt::time::sleep(Duration::from_millis(200)).await;
    let mut resumed = c.get_sse(Some(&priming.id)).await;
    assert_eq!(resumed.status, 200);
    let (before, response) = resumed.until_response().await;
    assert_eq!(response.json()["id"], 1);
    assert_eq!(response_text(&response), "slept 600 ms");
    assert!(
        before
            .iter()
            .any(|e| e.json()["method"] == "notifications/progress"),
        "progress is replayed too"
    );
    let stream_of = |id: &str| id.rsplit('.').nth(1).unwrap().to_string();
    assert!(before
        .iter()
        .chain([&response])
        .all(|e| stream_of(&e.id) == stream_of(&priming.id)));
    assert!(
        resumed.next().await.is_none(),
        "the stream ends after its response"
    );

    // Resuming from the response's own id replays nothing more.
    let mut again = c.get_sse(Some(&response.id)).await;
    assert_eq!(again.status, 200);
    assert!(
        again.next_within(Duration::from_secs(5)).await.is_none(),
        "nothing after the response"
    );
}

#[actix_web::test]
async fn resume_never_replays_another_streams_events() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let mut primings = Vec::new();
    for (i, ms) in [(10, 300), (20, 400), (30, 500)] {
        let mut s = c.post_sse(json!(i), "tools/call", json!({ "name": "demo__sleep", "arguments": { "ms": ms }, "_meta": { "progressToken": i } })).await;
        primings.push((i, ms, s.next().await.unwrap().id));
        drop(s);
    }
    actix_rt::time::sleep(Duration::from_millis(700)).await;
    for (i, ms, priming) in primings {
        let mut r = c.get_sse(Some(&priming)).await;
        let (before, response) = r.until_response().await;
        assert_eq!(response.json()["id"], i);
        assert_eq!(response_text(&response), format!("slept {ms} ms"));
        for e in &before {
            assert_eq!(
                e.json()["params"]["progressToken"],
                i,
                "only this stream's events: {e:?}"
            );
        }
        assert!(r.next().await.is_none());
    }
}

#[actix_web::test]
async fn a_client_that_reconnects_after_every_message_loses_nothing() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    for i in 0..1000 {
        let text = format!("message {i}");
        let mut s = c
            .post_sse(
                json!(i),
                "tools/call",
                json!({ "name": "demo__echo", "arguments": { "text": text } }),
            )
            .await;
        let priming = s.next().await.unwrap();
        drop(s);
        let mut r = c.get_sse(Some(&priming.id)).await;
        let (before, response) = r.until_response().await;
        assert!(before.is_empty(), "{before:?}");
        assert_eq!(response.json()["id"], i);
        assert_eq!(response_text(&response), text);
        assert!(r.next().await.is_none(), "no duplicate after the response");
    }
    let info = app.inspect_session(c.session.as_deref().unwrap()).await;
    assert!(info.log_events <= 2048, "log stays bounded: {info:?}");
}

#[actix_web::test]
async fn reconnect_storm_delivers_every_result_exactly_once() {
    let app = spawn_app_with(|s| {
        s.servers[0].max_concurrency = Some(1000);
        s.sessions.stream_buffer = 16;
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let sessions = (0..500).map(|i| {
        let url = app.url("/mcp");
        async move {
            let mut c = McpClient::connect(url).await;
            let text = format!("storm {i}");
            // Each session's call has its own id and its own duration, so a result delivered
            // to the wrong session shows.
            let mut s = c
                .post_sse(
                    json!(format!("call-{i}")),
                    "tools/call",
                    json!({ "name": "demo__sleep", "arguments": { "ms": 2000 + i } }),
                )
                .await;
            let priming = s.next().await.unwrap();
            drop(s);
            actix_rt::time::sleep(Duration::from_millis(500 + (i % 10) * 50)).await;
            let mut r = c.get_sse(Some(&priming.id)).await;
            let (_, response) = r.until_response().await;
            assert!(r.next().await.is_none(), "exactly once");
            let echo = c.call_tool("demo__echo", json!({ "text": text })).await;
            (
                i,
                c.session.clone().unwrap(),
                response.json(),
                text_of(&echo) == text,
            )
        }
    });
    let results = join_all(sessions).await;
    let mut seen = std::collections::HashSet::new();
    for (i, session, response, echo_ok) in results {
        assert!(seen.insert(session), "one result per session");
        assert_eq!(response["id"], format!("call-{i}"));
        assert_eq!(
            text_of(&response["result"]),
            format!("slept {} ms", 2000 + i),
            "{response}"
        );
        assert!(echo_ok);
    }
    assert_eq!(seen.len(), 500);
}

#[actix_web::test]
async fn legacy_sse_clients_keep_their_session_across_reconnects() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut stream = open_sse(&app.url("/sse"), None).await;
    let endpoint = stream.next().await.unwrap();
    assert_eq!(endpoint.event, "endpoint");
    assert!(
        endpoint.data.starts_with("/messages?sessionId="),
        "{endpoint:?}"
    );
    let post_url = app.url(&endpoint.data);
    let client = http_client();
    let post = |body: Value| client.post(&post_url).send_json(&body);
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": { "name": "legacy", "version": "1" } } });
    assert_eq!(post(init).await.unwrap().status(), 202);
    let (_, init_resp) = stream.until_response().await;
    assert_eq!(init_resp.json()["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(
        post(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        post(json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }))
            .await
            .unwrap()
            .status(),
        202
    );
    let (_, list) = stream.until_response().await;
    assert!(list.json()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "demo__echo"));

    // The connection drops while a call runs; its result waits for the reconnect.
    let last_seen = list.id.clone();
    drop(stream);
    assert_eq!(post(json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": { "name": "demo__sleep", "arguments": { "ms": 300 } } })).await.unwrap().status(), 202);
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    let mut back = open_sse(&app.url("/sse"), Some(&last_seen)).await;
    let endpoint_again = back.next().await.unwrap();
    assert_eq!(endpoint_again.data, endpoint.data, "same session");
    let (_, result) = back.until_response().await;
    assert_eq!(result.json()["id"], 3);
    assert_eq!(text_of(&result.json()["result"]), "slept 300 ms");
    assert_eq!(app.state.sessions.len(), 1, "no new session was made");

    // Bad input on the legacy endpoints.
    let missing = client
        .post(app.url("/messages"))
        .send_json(&json!({}))
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let unknown = client
        .post(app.url("/messages?sessionId=nope"))
        .send_json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[actix_web::test]
async fn the_event_log_stays_bounded_under_a_soak() {
    let app = spawn_app_with(|s| {
        s.sessions.log_max_events = 100;
        s.sessions.log_max_bytes = 32 * 1024;
        s.sessions.log_max_age_secs = 2;
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let session = app
        .state
        .sessions
        .get(c.session.as_deref().unwrap())
        .unwrap()
        .addr;
    let _never_read = c.get_sse(None).await; // a standalone stream nobody reads
    let mut peak = (0, 0);
    // An IDE that drops every stream and never comes back for the results: the worst case.
    for i in 0..600 {
        let big = "x".repeat(2000);
        let mut s = c
            .post_sse(
                json!(i),
                "tools/call",
                json!({ "name": "demo__echo", "arguments": { "text": big } }),
            )
            .await;
        let _ = s.next().await;
        drop(s);
        if i % 50 == 0 {
            let info = session
                .send(mcp_hub_actors::session::Inspect)
                .await
                .unwrap();
            peak = (peak.0.max(info.log_events), peak.1.max(info.log_bytes));
        }
    }
    let info = session
        .send(mcp_hub_actors::session::Inspect)
        .await
        .unwrap();
    peak = (peak.0.max(info.log_events), peak.1.max(info.log_bytes));
    assert!(
        peak.0 <= 100 && peak.1 <= 32 * 1024 + 4096,
        "bounded: peak {peak:?}"
    );
    actix_rt::time::sleep(Duration::from_millis(3000)).await;
    let info = session
        .send(mcp_hub_actors::session::Inspect)
        .await
        .unwrap();
    assert_eq!(info.log_events, 0, "aged out: {info:?}");
}
