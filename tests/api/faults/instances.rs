//! Faults of the shared infrastructure: redis-server killed and restarted empty while two
//! hub instances serve load.

use serde_json::json;
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
