//! Hostile clients: one that opens 1,000 sessions and never closes them, one that reads its
//! SSE stream very slowly. Neither may cost another client a call.

use serde_json::json;
use std::time::{Duration, Instant};

use super::*;

#[actix_web::test]
async fn a_thousand_abandoned_sessions_are_bounded_and_reaped() {
    let app = spawn_app_with(|s| {
        s.sessions.idle_ttl_secs = 6;
        s.sessions.max_sessions = 800;
        s.sessions.max_sessions_per_user = 5000;
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let load = Load::start(&app.url("/mcp"), 4, "demo__echo", json!({ "text": "{i}" })).await;
    let (mut opened, mut refused, mut unclear) = (0, 0, Vec::new());
    let mut replies = Vec::new();
    for _ in 0..40 {
        // 25 at a time, so the flood outpaces the idle TTL.
        let batch = (0..25).map(|_| {
            let url = app.url("/mcp");
            async move {
                McpClient::new(url)
                    .request(
                        "initialize",
                        json!({ "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "leaky", "version": "1" } }),
                    )
                    .await
            }
        });
        replies.extend(futures_util::future::join_all(batch).await);
    }
    for r in replies {
        if r.response.get("result").is_some() {
            opened += 1;
        } else if r.response["error"]["code"] == -32000
            && r.response["error"]["data"]["retry_after_seconds"].is_number()
        {
            refused += 1;
        } else {
            unclear.push(r.response);
        }
    }
    let peak = app.state.sessions.len();
    let flood_done = Instant::now();
    eventually("abandoned sessions reaped", Duration::from_secs(20), || {
        app.state.sessions.len() <= 4
    })
    .await;
    let reaped_in = flood_done.elapsed();
    // A new client is served as usual afterwards.
    let mut late = McpClient::connect(app.url("/mcp")).await;
    late.call_tool("demo__echo", json!({ "text": "still here" }))
        .await;
    let tally = load.finish().await;
    report(
        "abandoned_sessions",
        Row {
            fault: "a client opens 1,000 sessions and never closes them (cap 800, idle TTL 6 s)",
            load: "4 other sessions calling echo throughout".into(),
            tally: &tally,
            recovery: Some(reaped_in),
            notes: format!(
                "{opened} opened, {refused} refused with a retry hint, peak {peak} live; recovery = all reaped"
            ),
        },
    );
    assert!(
        unclear.is_empty(),
        "unclear answers: {:?}",
        &unclear[..unclear.len().min(3)]
    );
    assert_eq!(opened + refused, 1000);
    assert!(refused > 0 && peak <= 800, "the cap holds: peak {peak}");
    tally.assert_exactly_once();
    assert_eq!(tally.ok(), tally.accepted(), "{:?}", tally.errors());
}

#[actix_web::test]
async fn a_slow_sse_reader_costs_nobody_else_and_still_gets_its_result() {
    let app = spawn_app_with(|s| {
        s.sessions.stream_buffer = 4;
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let load = Load::start(&app.url("/mcp"), 4, "demo__echo", json!({ "text": "{i}" })).await;
    let mut slow = McpClient::connect(app.url("/mcp")).await;
    let mut stream = slow
        .post_sse(
            json!("slow-1"),
            "tools/call",
            json!({ "name": "demo__sleep", "arguments": { "ms": 3000 }, "_meta": { "progressToken": "p" } }),
        )
        .await;
    let started = Instant::now();
    let (mut progress, mut responses) = (0, 0);
    while let Some(ev) = stream.next_within(Duration::from_secs(30)).await {
        let v = ev.json();
        if v["method"] == "notifications/progress" {
            progress += 1;
        } else if v["id"] == "slow-1" {
            responses += 1;
        }
        actix_rt::time::sleep(Duration::from_millis(250)).await; // a very slow reader
    }
    let tally = load.finish().await;
    report(
        "slow_sse_reader",
        Row {
            fault: "a client reads its SSE stream one event per 250 ms while its call streams progress every 100 ms (buffer 4)",
            load: "4 other sessions calling echo throughout".into(),
            tally: &tally,
            recovery: None,
            notes: format!(
                "slow reader: {progress} progress events live, {responses} response, stream done after {:?}",
                started.elapsed()
            ),
        },
    );
    assert_eq!(responses, 1, "the slow reader gets its result exactly once");
    tally.assert_exactly_once();
    assert_eq!(tally.ok(), tally.accepted(), "{:?}", tally.errors());
}
