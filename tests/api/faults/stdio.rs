//! Faults of a stdio child: killed again and again, and stopped (alive but silent).

use serde_json::json;
use std::time::{Duration, Instant};

use super::*;

#[actix_web::test]
async fn stdio_child_killed_repeatedly_under_load() {
    let app = spawn_app_with(|s| {
        s.supervision.backoff_base_ms = 50;
        s.supervision.crash_loop_limit = 10;
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let load = Load::start(&app.url("/mcp"), 8, "demo__echo", json!({ "text": "{i}" })).await;
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    let mut recoveries = Vec::new();
    let mut kills = Vec::new();
    for _ in 0..3 {
        let pid = app.pid("demo").expect("pid");
        let at = Instant::now();
        signal("-9", pid);
        kills.push(at);
        eventually("respawned", Duration::from_secs(10), || {
            app.pid("demo").is_some_and(|p| p != pid)
        })
        .await;
        actix_rt::time::sleep(Duration::from_millis(1500)).await;
    }
    let tally = load.finish().await;
    for at in &kills {
        let r = tally.recovery_after(*at);
        recoveries.push(r.unwrap_or_else(|| panic!("not served again: {:?}", tally.errors())));
    }
    let worst = recoveries.iter().max().copied();
    report(
        "stdio_sigkill_loop",
        Row {
            fault: "stdio child SIGKILLed 3 times, 1.5 s apart",
            load: "8 sessions calling echo back to back on /mcp".into(),
            tally: &tally,
            recovery: worst,
            notes: format!("recovery per kill: {recoveries:?}"),
        },
    );
    tally.assert_exactly_once();
    for (e, _) in tally.errors() {
        assert!(
            e.contains("Server restarted") || e.contains("Server unavailable"),
            "unexpected error kind: {e}"
        );
    }
    assert!(worst.unwrap() < Duration::from_secs(5), "{recoveries:?}");
}

#[actix_web::test]
async fn stdio_child_stopped_is_caught_by_health_checks_and_timeouts() {
    let app = spawn_app_with(|s| {
        s.supervision.health_interval_secs = 1;
        s.supervision.health_timeout_ms = 300;
        s.supervision.health_failures = 2;
        s.supervision.backoff_base_ms = 50;
        s.timeouts.external_ms = 1000;
        s.timeouts.server_ms = 1500;
        s.timeouts.hub_ms = 2000;
        s.timeouts.client_ms = 3000;
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let load = Load::start(&app.url("/mcp"), 4, "demo__echo", json!({ "text": "{i}" })).await;
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    let pid = app.pid("demo").expect("pid");
    let at = Instant::now();
    signal("-STOP", pid);
    eventually("a hung child is replaced", Duration::from_secs(15), || {
        app.pid("demo").is_some_and(|p| p != pid)
    })
    .await;
    actix_rt::time::sleep(Duration::from_millis(1500)).await;
    let tally = load.finish().await;
    // The stopped process must be gone (SIGKILL reaches a stopped process).
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ");
    let recovery = tally.recovery_after(at);
    report(
        "stdio_sigstop",
        Row {
            fault: "stdio child SIGSTOPped (alive, silent)",
            load: "4 sessions calling echo; server timeout 1.5 s, health every 1 s, 2 failures"
                .into(),
            tally: &tally,
            recovery,
            notes: format!("old child reaped: {}", !alive),
        },
    );
    tally.assert_exactly_once();
    assert!(!alive, "the stopped child {pid} was left behind");
    assert!(
        tally.errors().keys().all(|e| e.contains("-32001")
            || e.contains("Server restarted")
            || e.contains("Server unavailable")),
        "{:?}",
        tally.errors()
    );
    assert!(recovery.expect("served again") < Duration::from_secs(10));
}
