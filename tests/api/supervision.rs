//! stdio children under supervision: a killed child is respawned fast, and the call that
//! was in flight gets a clear error instead of a hang.

use serde_json::json;
use std::time::{Duration, Instant};

use crate::helpers::*;

#[actix_web::test]
async fn a_killed_child_is_respawned_within_a_second_and_its_call_fails_clearly() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let pid = app.pid("demo").expect("stdio server has a pid");
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let mut caller = McpClient::new(c.url.clone());
    caller.session = c.session.clone();
    let in_flight = actix_rt::spawn(async move {
        caller
            .request(
                "tools/call",
                json!({ "name": "demo__sleep", "arguments": { "ms": 10000 } }),
            )
            .await
    });
    actix_rt::time::sleep(Duration::from_millis(300)).await;

    let killed_at = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    let r = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .expect("the in-flight call must not hang")
        .unwrap();
    assert_eq!(r.response["error"]["message"], "Server restarted", "{r:?}");
    assert_eq!(r.response["error"]["code"], -32000);
    assert!(
        r.response["error"]["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("signal 9"),
        "{r:?}"
    );

    loop {
        let r = c
            .request(
                "tools/call",
                json!({ "name": "demo__echo", "arguments": { "text": "back" } }),
            )
            .await;
        if r.response.get("result").is_some() {
            assert_eq!(text_of(&r.response["result"]), "back");
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(1),
            "not serving again within 1 s: {r:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    let recovered = killed_at.elapsed();
    assert!(recovered < Duration::from_secs(1), "{recovered:?}");
    let new_pid = app.pid("demo").unwrap();
    assert_ne!(new_pid, pid);
    let rt = app
        .state
        .servers
        .get("demo")
        .unwrap()
        .runtime
        .borrow()
        .clone();
    assert_eq!(rt.restarts, 1);
    assert!(rt.last_error.unwrap().reason.contains("signal 9"));
}

fn kill(signal: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn wait_new_pid(app: &TestApp, server: &str, old: u32, within: Duration) -> u32 {
    let start = Instant::now();
    loop {
        if let Some(h) = app.state.servers.get(server) {
            let rt = h.runtime.borrow().clone();
            if rt.status == mcp_hub_actors::server::Status::Ready
                && rt.pid.is_some_and(|p| p != old)
            {
                return rt.pid.unwrap();
            }
        }
        assert!(
            start.elapsed() < within,
            "{server} not back within {within:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_web::test]
async fn a_crash_loop_marks_the_server_failed_until_an_operator_restarts_it() {
    let app = spawn_app_with(|s| {
        s.supervision.backoff_base_ms = 50;
        s.supervision.crash_loop_limit = 5;
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let policy = app.state.settings.supervision.policy();
    let mut pid = app.pid("demo").unwrap();
    for round in 1..5u32 {
        let killed = Instant::now();
        kill("-9", pid);
        pid = wait_new_pid(&app, "demo", pid, Duration::from_secs(10)).await;
        let took = killed.elapsed();
        assert!(
            took >= policy.backoff(round),
            "round {round}: back after {took:?}, backoff is {:?}",
            policy.backoff(round)
        );
    }
    kill("-9", pid);
    let start = Instant::now();
    let rt = loop {
        let rt = app
            .state
            .servers
            .get("demo")
            .unwrap()
            .runtime
            .borrow()
            .clone();
        if rt.status == mcp_hub_actors::server::Status::Failed {
            break rt;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "not failed: {rt:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(rt.last_error.unwrap().reason.contains("signal 9"));
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let r = c
        .request(
            "tools/call",
            json!({ "name": "demo__echo", "arguments": { "text": "x" } }),
        )
        .await;
    assert_eq!(
        r.response["error"]["message"], "Server unavailable",
        "{r:?}"
    );

    let handle = app.state.servers.get("demo").unwrap();
    let back = handle
        .addr
        .send(mcp_hub_actors::server::Restart)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.status, mcp_hub_actors::server::Status::Ready);
    assert_eq!(
        text_of(
            &c.call_tool("demo__echo", json!({ "text": "revived" }))
                .await
        ),
        "revived"
    );
}

#[actix_web::test]
async fn a_hung_child_is_restarted_by_health_checks() {
    let app = spawn_app_with(|s| {
        s.supervision.health_interval_secs = 1;
        s.supervision.health_timeout_ms = 300;
        s.supervision.health_failures = 2;
        s.supervision.stop_grace_ms = 400;
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let pid = app.pid("demo").unwrap();
    kill("-STOP", pid); // alive, but answers nothing
    let new_pid = wait_new_pid(&app, "demo", pid, Duration::from_secs(8)).await;
    assert_ne!(new_pid, pid);
    let rt = app
        .state
        .servers
        .get("demo")
        .unwrap()
        .runtime
        .borrow()
        .clone();
    assert!(
        rt.last_error
            .unwrap()
            .reason
            .contains("health checks failed"),
        "restarted by the health check"
    );
    actix_rt::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z"),
        "the hung child was killed"
    );
    let mut c = McpClient::connect(app.url("/mcp")).await;
    assert_eq!(
        text_of(&c.call_tool("demo__echo", json!({ "text": "alive" })).await),
        "alive"
    );
}
