//! Traffic control: identity, rate limits at every level, layered timeouts with upstream
//! cancellation, fair queues, the circuit breaker. Every error asserts code, message, data.

use futures_util::future::join_all;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::helpers::*;

const ALICE: &str = "alice-key-0123456789";
const BOB: &str = "bob-key-0123456789";

fn with_keys(s: &mut mcp_hub::config::Settings) {
    use mcp_hub::config::ApiKey;
    s.auth.api_keys = vec![
        ApiKey {
            user: "alice".into(),
            key_sha256: mcp_hub::auth::hash_key(ALICE),
        },
        ApiKey {
            user: "bob".into(),
            key_sha256: mcp_hub::auth::hash_key(BOB),
        },
    ];
}

async fn echo(c: &mut McpClient) -> Reply {
    c.request(
        "tools/call",
        json!({ "name": "demo__echo", "arguments": { "text": "hi" } }),
    )
    .await
}

fn assert_rate_limited(r: &Reply, scope: &str) -> u64 {
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.response["error"]["code"], -32000);
    assert_eq!(r.response["error"]["message"], "Rate limit exceeded");
    assert_eq!(r.response["error"]["data"]["scope"], scope, "{r:?}");
    let secs = r.response["error"]["data"]["retry_after_seconds"]
        .as_u64()
        .unwrap();
    assert!(secs >= 1);
    secs
}

#[actix_web::test]
async fn api_keys_identify_users_and_bind_sessions() {
    let app = spawn_app_with(|s| {
        with_keys(s);
        s.auth.anonymous = "none".into();
    })
    .await;
    let mut anon = McpClient::new(app.url("/mcp"));
    let r = anon.request("initialize", json!({ "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } })).await;
    assert_eq!(
        (r.status, r.response["error"]["message"].as_str()),
        (401, Some("Unauthorized"))
    );
    let mut wrong = McpClient::new(app.url("/mcp"));
    wrong.bearer = Some("nope".into());
    assert_eq!(wrong.request("ping", json!({})).await.status, 401);

    let mut alice = McpClient::connect_as(app.url("/mcp"), Some(ALICE)).await;
    assert_eq!(echo(&mut alice).await.status, 200);
    let mut bob_with_alices_session = McpClient::new(app.url("/mcp"));
    bob_with_alices_session.bearer = Some(BOB.into());
    bob_with_alices_session.session = alice.session.clone();
    assert_eq!(
        bob_with_alices_session
            .request("ping", json!({}))
            .await
            .status,
        404,
        "another user's session does not exist for them"
    );
}

#[actix_web::test]
async fn each_rate_limit_level_trips_at_its_rate_and_retry_after_is_honoured() {
    // Global: 5 per second, burst 5.
    let app = spawn_app_with(|s| {
        s.limits.global_per_second = 5.0;
        s.limits.global_burst = 5.0;
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    for _ in 0..5 {
        assert_eq!(echo(&mut c).await.status, 200);
    }
    let r = echo(&mut c).await;
    let wait = assert_rate_limited(&r, "global");
    actix_rt::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(
        echo(&mut c).await.status,
        200,
        "honouring retry_after lets the next call through"
    );

    // Per server, from the server's own definition: 2 per second, burst 2.
    let app = spawn_app_with(|s| {
        s.servers[0].rate_limit_per_second = Some(2.0);
        s.servers[0].rate_limit_burst = Some(2.0);
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp/demo")).await;
    for _ in 0..2 {
        let r = c
            .request(
                "tools/call",
                json!({ "name": "echo", "arguments": { "text": "x" } }),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let r = c
        .request(
            "tools/call",
            json!({ "name": "echo", "arguments": { "text": "x" } }),
        )
        .await;
    assert_rate_limited(&r, "server");

    // Per user: 3 per minute each; bob is not slowed by alice.
    let app = spawn_app_with(|s| {
        with_keys(s);
        s.limits.user_per_minute = 3.0;
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut alice = McpClient::connect_as(app.url("/mcp"), Some(ALICE)).await;
    let mut bob = McpClient::connect_as(app.url("/mcp"), Some(BOB)).await;
    for _ in 0..3 {
        assert_eq!(echo(&mut alice).await.status, 200);
    }
    let r = echo(&mut alice).await;
    let wait = assert_rate_limited(&r, "user");
    assert!((15..=21).contains(&wait), "one token per 20 s: {wait}");
    assert_eq!(echo(&mut bob).await.status, 200);
}

#[actix_web::test]
async fn a_call_past_the_server_timeout_gets_32001_and_is_cancelled_upstream() {
    let app = spawn_app_with(|s| s.servers[0].timeout_ms = Some(500)).await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let started = Instant::now();
    let r = c
        .request(
            "tools/call",
            json!({ "name": "demo__sleep", "arguments": { "ms": 5000 } }),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(r.response["error"]["code"], -32001, "{r:?}");
    assert_eq!(r.response["error"]["message"], "Request timed out");
    assert_eq!(
        r.response["error"]["data"],
        json!({ "layer": "server", "timeout_ms": 500 })
    );
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    let seen: Vec<Value> = serde_json::from_str(&text_of(
        &c.call_tool("demo__cancelled_requests", json!({})).await,
    ))
    .unwrap();
    assert_eq!(
        seen.len(),
        1,
        "the upstream got notifications/cancelled for the timed-out id: {seen:?}"
    );
}

#[actix_web::test]
async fn one_user_flooding_a_server_does_not_starve_another() {
    let app = spawn_app_with(|s| {
        with_keys(s);
        s.servers[0].max_concurrency = Some(4);
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let url = app.url("/mcp");
    // Unloaded latency first.
    let mut bob = McpClient::connect_as(&url, Some(BOB)).await;
    let t = Instant::now();
    assert_eq!(echo(&mut bob).await.status, 200);
    let unloaded = t.elapsed();
    // Alice queues 500 calls of 20 ms on 4 slots: about 2.5 s of work.
    let flood = (0..20).map(|_| {
        let url = url.clone();
        async move {
            let mut a = McpClient::connect_as(&url, Some(ALICE)).await;
            for _ in 0..25 {
                let r = a
                    .request(
                        "tools/call",
                        json!({ "name": "demo__sleep", "arguments": { "ms": 20 } }),
                    )
                    .await;
                assert!(r.response.get("result").is_some(), "{r:?}");
            }
        }
    });
    let flood = actix_rt::spawn(join_all(flood));
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(echo(&mut bob).await.status, 200);
        worst = worst.max(t.elapsed());
    }
    assert!(
        worst < unloaded + Duration::from_millis(400),
        "bob waited {worst:?} (unloaded {unloaded:?})"
    );
    flood.await.unwrap();
}

#[actix_web::test]
async fn the_breaker_opens_fails_fast_and_closes_after_a_good_probe() {
    let upstream = DemoHttp::start();
    let port = upstream
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let url = upstream.url.clone();
    let app = spawn_app_with(move |s| {
        s.servers = vec![http_def("up", &url)];
        s.supervision.breaker_failures = 3;
        s.supervision.breaker_open_secs = 1;
    })
    .await;
    app.wait_ready("up", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    drop(upstream); // the upstream dies
    for _ in 0..3 {
        let r = call(&mut c).await;
        assert_eq!(
            r.response["error"]["message"], "Server unavailable",
            "{r:?}"
        );
    }
    let started = Instant::now();
    let r = call(&mut c).await;
    assert!(started.elapsed() < Duration::from_millis(100), "fails fast");
    assert!(
        r.response["error"]["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("circuit breaker open"),
        "{r:?}"
    );
    assert!(
        r.response["error"]["data"]["retry_after_seconds"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert_eq!(
        app.state
            .servers
            .get("up")
            .unwrap()
            .runtime
            .borrow()
            .breaker,
        "open"
    );

    // The upstream comes back on the same port; after the open period one probe closes it.
    let mut back = std::process::Command::new(hub_bin())
        .args(["demo-server", "--http", &format!("127.0.0.1:{port}")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    actix_rt::time::sleep(Duration::from_millis(1300)).await;
    let r = call(&mut c).await;
    assert_eq!(text_of(&r.response["result"]), "x", "{r:?}");
    assert_eq!(
        app.state
            .servers
            .get("up")
            .unwrap()
            .runtime
            .borrow()
            .breaker,
        "closed"
    );
    let _ = back.kill();
    let _ = back.wait();
}

async fn call(c: &mut McpClient) -> Reply {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "up__echo", "arguments": { "text": "x" } } });
    c.send_raw(serde_json::to_vec(&body).unwrap(), |_| None)
        .await
}

#[actix_web::test]
async fn seventy_callers_survive_an_upstream_that_forgets_sessions_every_two_seconds() {
    let upstream = DemoHttp::start();
    let url = upstream.url.clone();
    let app = spawn_app_with(move |s| {
        s.servers = vec![http_def("up", &url)];
        s.servers[0].max_concurrency = Some(70);
    })
    .await;
    app.wait_ready("up", Duration::from_secs(10)).await;
    let base = upstream.base();
    let forgetter = actix_rt::spawn(async move {
        let mut forgets = 0;
        for _ in 0..2 {
            actix_rt::time::sleep(Duration::from_secs(2)).await;
            forget_demo_sessions(&base).await;
            forgets += 1;
        }
        forgets
    });
    let started = Instant::now();
    let callers = (0..70).map(|i| {
        let url = app.url("/mcp");
        async move {
            let mut c = McpClient::connect(url).await;
            let mut ok = 0;
            while started.elapsed() < Duration::from_millis(5000) {
                let text = format!("{i}");
                let r = c
                    .request(
                        "tools/call",
                        json!({ "name": "up__echo", "arguments": { "text": text } }),
                    )
                    .await;
                assert_eq!(text_of(&r.response["result"]), text, "{r:?}");
                ok += 1;
            }
            ok
        }
    });
    let total: usize = join_all(callers).await.into_iter().sum();
    let forgets = forgetter.await.unwrap();
    let stats = upstream.stats().await;
    let inits = stats["initializes"].as_u64().unwrap();
    assert!(total > 70, "{total} calls");
    assert_eq!(
        inits,
        1 + forgets,
        "one re-initialize per expiry, not one per caller: {stats}"
    );
}
