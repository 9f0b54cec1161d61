//! Time and weight: progress stretches a call's timeout up to the hard maximum, per-tool
//! timeouts override the server's, and exclusive (heavy) tools run one at a time.

use futures_util::future::join_all;
use serde_json::json;
use std::time::{Duration, Instant};

use crate::helpers::*;

async fn sleep(c: &mut McpClient, tool: &str, ms: u64, progress: bool) -> Reply {
    c.request(
        "tools/call",
        json!({
            "name": tool,
            "arguments": { "ms": ms, "progress": progress },
            "_meta": { "progressToken": "p1" }
        }),
    )
    .await
}

fn progress_count(r: &Reply) -> usize {
    r.messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .count()
}

#[actix_web::test]
async fn progress_extends_the_server_timeout_and_per_tool_timeouts_override_it() {
    let app = spawn_app_with(|s| {
        s.servers[0].timeout_ms = Some(500);
        let mut slow = demo_stdio("slow");
        slow.timeout_ms = Some(500);
        slow.tool_timeouts_ms.insert("sleep".into(), 3000);
        s.servers.push(slow);
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    app.wait_ready("slow", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;

    // Progress about every 100 ms keeps a 500 ms server timeout alive for 1.5 s.
    let r = sleep(&mut c, "demo__sleep", 1500, true).await;
    assert!(r.response["error"].is_null(), "{r:?}");
    assert!(progress_count(&r) >= 5, "{r:?}");

    // The same call, silent, times out at the server layer.
    let r = sleep(&mut c, "demo__sleep", 1500, false).await;
    assert_eq!(r.response["error"]["code"], -32001, "{r:?}");
    assert_eq!(r.response["error"]["message"], "Request timed out");
    assert_eq!(
        r.response["error"]["data"],
        json!({ "layer": "server", "timeout_ms": 500 })
    );

    // A per-tool override: `sleep` on `slow` may take 3 s, silently.
    let r = sleep(&mut c, "slow__sleep", 1000, false).await;
    assert!(r.response["error"].is_null(), "{r:?}");
    let r = sleep(&mut c, "slow__sleep", 3500, false).await;
    assert_eq!(
        r.response["error"]["data"],
        json!({ "layer": "server", "timeout_ms": 3000 }),
        "{r:?}"
    );
}

#[actix_web::test]
async fn progress_never_stretches_a_call_past_the_hard_max() {
    let app = spawn_app_with(|s| {
        s.timeouts.hub_ms = 900;
        s.timeouts.server_ms = 800;
        s.timeouts.external_ms = 700;
        s.timeouts.hard_max_ms = 1000;
        s.servers[0].timeout_ms = Some(500);
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let r = sleep(&mut c, "demo__sleep", 4000, true).await;
    assert_eq!(r.response["error"]["code"], -32001, "{r:?}");
    assert_eq!(r.response["error"]["message"], "Request timed out");
    let data = &r.response["error"]["data"];
    assert_eq!(data["layer"], "server", "{r:?}");
    assert_eq!(data["hard_max"], true, "{r:?}");
    assert_eq!(data["timeout_ms"], 1000, "{r:?}");
    assert!(progress_count(&r) >= 3, "progress did flow: {r:?}");

    // Without progress_extends, the same progress changes nothing.
    let app = spawn_app_with(|s| {
        s.timeouts.progress_extends = false;
        s.servers[0].timeout_ms = Some(500);
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let r = sleep(&mut c, "demo__sleep", 1500, true).await;
    assert_eq!(
        r.response["error"]["data"],
        json!({ "layer": "server", "timeout_ms": 500 }),
        "{r:?}"
    );
}

#[test]
fn a_hard_max_below_the_hub_timeout_is_refused() {
    let mut s = mcp_hub::config::Settings::default();
    s.timeouts.hard_max_ms = 1000;
    let e = s.validate().unwrap_err().to_string();
    assert!(
        e.contains("timeouts.hard_max_ms") && e.contains("timeouts.hub_ms"),
        "{e}"
    );
}

#[actix_web::test]
async fn exclusive_tools_run_one_at_a_time_and_other_tools_flow_around_them() {
    let app = spawn_app_with(|s| {
        s.servers[0].exclusive_tools = vec!["sleep".into()];
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(McpClient::connect(app.url("/mcp")).await);
    }
    let mut echoer = McpClient::connect(app.url("/mcp")).await;
    let t0 = Instant::now();
    let sleeps = clients.iter_mut().map(|c| async move {
        let r = sleep(c, "demo__sleep", 400, false).await;
        assert!(r.response["error"].is_null(), "{r:?}");
        t0.elapsed()
    });
    let echo = async {
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        let r = echoer.call_tool("demo__echo", json!({ "text": "x" })).await;
        (r, t0.elapsed())
    };
    let (mut done, (echo_reply, echo_done)) = futures_util::join!(join_all(sleeps), echo);
    done.sort();
    // One at a time: each 400 ms sleep ends at least 400 ms after the one before it (the
    // upstream cannot sleep less than asked). Concurrent sleeps would end together.
    for pair in done.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(390),
            "sleeps overlapped: {done:?}"
        );
    }
    assert_eq!(text_of(&echo_reply), "x");
    assert!(
        echo_done < done[2],
        "echo did not wait behind the exclusive sleeps: echo {echo_done:?}, sleeps {done:?}"
    );
}

#[actix_web::test]
async fn progress_extends_the_hub_layer_too_on_mcp_and_on_plain_calls() {
    // hub 900 ms around server 500 ms: a 1.5 s job lives only if both layers move.
    let app = spawn_app_with(|s| {
        s.timeouts.hub_ms = 900;
        s.timeouts.server_ms = 800;
        s.timeouts.external_ms = 700;
        s.servers[0].timeout_ms = Some(500);
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let r = sleep(&mut c, "demo__sleep", 1500, true).await;
    assert!(r.response["error"].is_null(), "{r:?}");

    let (status, events, _) =
        crate::rest::plain_call(&app, "/mcp/demo/sleep", r#"{"ms":1500}"#).await;
    assert_eq!(status, 200);
    let last = events.last().unwrap();
    assert_eq!(last.0, "result", "{events:?}");
    assert_eq!(last.1["result"]["content"][0]["text"], "slept 1500 ms");
}
