//! Faults of the shared infrastructure: redis-server killed and restarted empty while two
//! hub instances serve load.

use serde_json::{json, Value};
use std::time::{Duration, Instant};

use super::*;
use crate::redis::RedisServer;

async fn instance(redis: &RedisServer, prefix: &str) -> TestApp {
    let (url, prefix) = (redis.url(), prefix.to_string());
    spawn_app_with(move |s| {
        s.redis_url = Some(url);
        s.redis_prefix = prefix;
        s.reconcile_secs = 1;
    })
    .await
}

#[actix_web::test]
async fn redis_killed_and_restarted_empty_under_load_on_two_instances() {
    let mut redis = RedisServer::start();
    let prefix = format!("f{}:", uuid::Uuid::new_v4().simple());
    let a = instance(&redis, &prefix).await;
    let b = instance(&redis, &prefix).await;
    a.wait_ready("demo", Duration::from_secs(10)).await;
    b.wait_ready("demo", Duration::from_secs(10)).await;
    let load = Load::start_on(
        &[a.url("/mcp"), b.url("/mcp")],
        8,
        "demo__echo",
        json!({ "text": "{i}" }),
    )
    .await;
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    let killed = Instant::now();
    redis.kill();
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    redis.restart();
    eventually("mirrors written back", Duration::from_secs(10), || {
        redis.cli(&["HEXISTS", &format!("{prefix}servers"), "demo"]) == "1"
    })
    .await;
    let healed = killed.elapsed();
    actix_rt::time::sleep(Duration::from_secs(1)).await;
    let tally = load.finish().await;
    report(
        "redis_restart_two_instances",
        Row {
            fault: "redis-server killed for 2 s, restarted empty, two hub instances",
            load: "8 sessions over 2 instances calling echo back to back".into(),
            tally: &tally,
            recovery: Some(healed),
            notes: "recovery = registry written back to the empty Redis; calls never stopped"
                .into(),
        },
    );
    tally.assert_exactly_once();
    assert_eq!(tally.ok(), tally.accepted(), "{:?}", tally.errors());
    assert!(a.state.servers.get("demo").is_some() && b.state.servers.get("demo").is_some());
}

/// One tools/call by a client that follows the spec when its stream breaks: it resumes with
/// `Last-Event-ID` (on the next instance, as a load balancer would send it once the first
/// is gone) and keeps using that instance. Returns the outcome and whether it resumed.
async fn call_resuming(
    client: &mut McpClient,
    fallback: &str,
    n: usize,
    seq: u64,
) -> (Outcome, bool) {
    let id = json!(format!("c{n}-{seq}"));
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": "demo__sleep", "arguments": { "ms": 300 } } });
    let session = client.session.clone().unwrap_or_default();
    let sent = client
        .client
        .post(&client.url)
        .timeout(Duration::from_secs(20))
        .insert_header(("Accept", "application/json, text/event-stream"))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("Mcp-Session-Id", session.as_str()))
        .insert_header(("MCP-Protocol-Version", "2025-11-25"))
        .send_body(body.to_string())
        .await;
    let resp = match sent {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => return (Outcome::Refused(r.status().as_u16()), false),
        Err(_) => {
            // Never reached an instance: not accepted; the balancer moves on.
            client.url = fallback.to_string();
            return (Outcome::Refused(0), false);
        }
    };
    let mut answers = Vec::new();
    let mut last_id = None;
    let mut events = eventsource_stream::Eventsource::eventsource(resp);
    let mut broke = true;
    while let Some(Ok(ev)) = events.next().await {
        last_id = Some(ev.id.clone()).filter(|i| !i.is_empty()).or(last_id);
        if let Ok(v) = serde_json::from_str::<Value>(&ev.data) {
            if v.get("method").is_none() && v.get("id") == Some(&id) {
                answers.push(v);
                broke = false;
            }
        }
    }
    let mut resumed = false;
    if broke {
        let Some(last) = last_id else {
            return (
                Outcome::Lost("stream broke before its priming event".into()),
                false,
            );
        };
        client.url = fallback.to_string();
        resumed = true;
        let resp = client
            .client
            .get(&client.url)
            .timeout(Duration::from_secs(20))
            .insert_header(("Accept", "text/event-stream"))
            .insert_header(("Mcp-Session-Id", session.as_str()))
            .insert_header(("MCP-Protocol-Version", "2025-11-25"))
            .insert_header(("Last-Event-ID", last.as_str()))
            .send()
            .await;
        let Ok(resp) = resp else {
            return (Outcome::Lost("resume refused".into()), true);
        };
        let mut events = eventsource_stream::Eventsource::eventsource(resp);
        let read = async {
            while let Some(Ok(ev)) = events.next().await {
                if let Ok(v) = serde_json::from_str::<Value>(&ev.data) {
                    if v.get("method").is_none() && v.get("id") == Some(&id) {
                        answers.push(v);
                    }
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(20), read).await;
    }
    let outcome = match answers.as_slice() {
        [] => Outcome::Lost("no response after resuming".into()),
        [one] if one.get("result").is_some() => Outcome::Ok,
        [one] => Outcome::Error(format!(
            "{} {}",
            one["error"]["code"], one["error"]["message"]
        )),
        _ => Outcome::Duplicated,
    };
    (outcome, resumed)
}

#[actix_web::test]
async fn a_hub_instance_killed_under_load_its_clients_resume_on_another() {
    let redis = RedisServer::start();
    let prefix = format!("f{}:", uuid::Uuid::new_v4().simple());
    let b = instance(&redis, &prefix).await;
    b.wait_ready("demo", Duration::from_secs(10)).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut a = std::process::Command::new(hub_bin())
        .env("MCP_HUB_LISTEN", format!("127.0.0.1:{port}"))
        .env("MCP_HUB_STATE_DIR", tempfile::tempdir().unwrap().keep())
        .env("REDIS_URL", redis.url())
        .env("MCP_HUB_REDIS_PREFIX", &prefix)
        .env("MCP_HUB_NODE_ID", "doomed")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let a_mcp = format!("http://127.0.0.1:{port}/mcp");
    let start = Instant::now();
    loop {
        if http_client()
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok()
        {
            let mut probe = McpClient::connect(a_mcp.clone()).await;
            let r = probe
                .request(
                    "tools/call",
                    json!({ "name": "demo__echo", "arguments": { "text": "up" } }),
                )
                .await;
            if r.response["result"].is_object() {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "instance A never served demo"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    // Ten sessions created on A call a 300 ms tool back to back.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for n in 0..10 {
        let mut client = McpClient::connect(a_mcp.clone()).await;
        let (stop, fallback) = (stop.clone(), b.url("/mcp"));
        tasks.push(actix_rt::spawn(async move {
            let mut calls = Vec::new();
            let mut resumed = 0;
            let mut seq = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seq += 1;
                let started = Instant::now();
                let (outcome, r) = call_resuming(&mut client, &fallback, n, seq).await;
                resumed += r as usize;
                calls.push(Call {
                    started,
                    ended: Instant::now(),
                    outcome,
                });
            }
            (calls, resumed)
        }));
    }
    actix_rt::time::sleep(Duration::from_millis(1500)).await;
    let killed = Instant::now();
    let _ = a.kill();
    let _ = a.wait();
    actix_rt::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut tally = Tally::default();
    let mut resumed = 0;
    for t in tasks {
        let (calls, r) = t.await.expect("load task");
        tally.calls.extend(calls);
        resumed += r;
    }
    // Recovery: until the last call that was running on A when it died got its answer.
    let recovery = tally
        .calls
        .iter()
        .filter(|c| c.started < killed && c.ended > killed)
        .map(|c| c.ended - killed)
        .max();
    report(
        "hub_instance_sigkill",
        Row {
            fault: "one hub instance SIGKILLed; its clients resume on another (shared sessions)",
            load: "10 sessions created on instance A calling a 300 ms tool back to back".into(),
            tally: &tally,
            recovery,
            notes: format!(
                "{resumed} calls in flight on A resumed on B with Last-Event-ID and were rerun there; recovery = until the last of them was answered"
            ),
        },
    );
    tally.assert_exactly_once();
    assert!(resumed > 0, "the kill hit no call in flight");
    assert_eq!(tally.ok(), tally.accepted(), "{:?}", tally.errors());
}
