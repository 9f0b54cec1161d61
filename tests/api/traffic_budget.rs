//! Budgets: a call refused by one bucket costs nothing in the others, and with Redis the
//! global budget is one budget for every instance (and survives a Redis outage locally).

use futures_util::future::join_all;
use serde_json::json;
use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::redis::RedisServer;

async fn call(c: &mut McpClient, tool: &str) -> Reply {
    c.request(
        "tools/call",
        json!({ "name": tool, "arguments": { "text": "hi" } }),
    )
    .await
}

fn scope(r: &Reply) -> &str {
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.response["error"]["code"], -32000);
    assert_eq!(r.response["error"]["message"], "Rate limit exceeded");
    assert!(
        r.response["error"]["data"]["retry_after_seconds"]
            .as_u64()
            .unwrap()
            >= 1
    );
    r.response["error"]["data"]["scope"].as_str().unwrap()
}

#[actix_web::test]
async fn a_call_refused_by_the_server_bucket_costs_no_global_budget() {
    // Global: 3 tokens, refilling one per 100 s (none during the test). Server `demo`:
    // 1 token, one per 100 s. `other` has no server limit.
    let app = spawn_app_with(|s| {
        s.limits.global_per_second = 0.01;
        s.limits.global_burst = 3.0;
        s.servers[0].rate_limit_per_second = Some(0.01);
        s.servers[0].rate_limit_burst = Some(1.0);
        s.servers.push(demo_stdio("other"));
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    app.wait_ready("other", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    assert_eq!(call(&mut c, "demo__echo").await.status, 200);
    for _ in 0..5 {
        let r = call(&mut c, "demo__echo").await;
        assert_eq!(
            scope(&r),
            "server",
            "refused calls never drain the global bucket"
        );
    }
    // Two global tokens are left, whatever the refused calls did.
    assert_eq!(call(&mut c, "other__echo").await.status, 200);
    assert_eq!(call(&mut c, "other__echo").await.status, 200);
    let r = call(&mut c, "other__echo").await;
    assert_eq!(scope(&r), "global");
}

async fn budget_hub(redis: &RedisServer, prefix: &str, rate: f64, burst: f64) -> TestApp {
    let (url, prefix) = (redis.url(), prefix.to_string());
    let app = spawn_app_with(move |s| {
        s.redis_url = Some(url);
        s.redis_prefix = prefix;
        s.limits.global_per_second = rate;
        s.limits.global_burst = burst;
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(20)).await;
    app
}

/// Calls `demo__echo` through `clients` concurrently (each client in its own loop) until
/// `until`; returns (admitted, refused by the global bucket).
async fn hammer(clients: Vec<McpClient>, until: Instant) -> (usize, usize) {
    let loops = clients.into_iter().map(|mut c| async move {
        let (mut ok, mut limited) = (0, 0);
        while Instant::now() < until {
            let r = call(&mut c, "demo__echo").await;
            if r.status == 200 {
                ok += 1;
            } else {
                assert_eq!(scope(&r), "global");
                limited += 1;
                // A short pause, so the loop is a steady stream rather than a spin.
                actix_rt::time::sleep(Duration::from_millis(20)).await;
            }
        }
        (ok, limited)
    });
    join_all(loops)
        .await
        .into_iter()
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

#[actix_web::test]
async fn two_instances_sharing_redis_admit_the_global_budget_once_not_twice() {
    let mut redis = RedisServer::start();
    let p = format!("t{}:", uuid::Uuid::new_v4().simple());
    let (rate, burst) = (2.0, 10.0);
    let (a, b) = (
        budget_hub(&redis, &p, rate, burst).await,
        budget_hub(&redis, &p, rate, burst).await,
    );
    let mut clients = Vec::new();
    for app in [&a, &b] {
        for _ in 0..3 {
            clients.push(McpClient::connect(app.url("/mcp")).await);
        }
    }
    let start = Instant::now();
    let (ok, limited) = hammer(clients, start + Duration::from_secs(3)).await;
    let elapsed = start.elapsed().as_secs_f64();
    // One budget: the burst plus what refilled while the calls ran. Each instance alone
    // would admit that much, so two unshared instances would admit about twice it.
    let budget = burst + rate * elapsed;
    eprintln!(
        "shared budget: admitted {ok}, refused {limited} in {elapsed:.2}s (budget {budget:.1})"
    );
    assert!(limited > 0, "the budget was exhausted: {ok} admitted");
    assert!(
        (ok as f64) <= budget + 2.0,
        "admitted {ok} in {elapsed:.2}s, budget {budget:.1}"
    );
    assert!(
        (ok as f64) >= burst + rate * (elapsed - 1.0).max(0.0) - 2.0,
        "admitted {ok} in {elapsed:.2}s, budget {budget:.1}"
    );
    let key = redis.cli(&["--raw", "EXISTS", &format!("{p}rl:global")]);
    assert_eq!(key, "1", "the bucket lives in Redis under the prefix");

    // Redis goes away: calls are still served, and still limited (by the local bucket).
    redis.kill();
    let mut c = McpClient::connect(a.url("/mcp")).await;
    let (mut ok, mut limited) = (0, 0);
    let start = Instant::now();
    while ok + limited < 40 && start.elapsed() < Duration::from_secs(30) {
        let r = call(&mut c, "demo__echo").await;
        if r.status == 200 {
            ok += 1;
        } else {
            assert_eq!(scope(&r), "global");
            limited += 1;
        }
    }
    assert!(ok >= 1, "still served without Redis ({limited} refused)");
    assert!(
        limited >= 1,
        "still rate limited without Redis ({ok} served)"
    );
    assert!(
        (ok as f64) <= burst + rate * start.elapsed().as_secs_f64() + 2.0,
        "the local fallback is the configured limit: {ok} in {:?}",
        start.elapsed()
    );
}
