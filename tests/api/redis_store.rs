//! The Redis registry store on its own, against a real redis-server: what survives Redis
//! losing its data, and what must not come back.

use mcp_hub_actors::registry::{RedisStore, Store, StoreError};
use std::time::Duration;

use crate::helpers::*;
use crate::redis::RedisServer;

async fn store(redis: &RedisServer, prefix: &str, node: &str) -> RedisStore {
    RedisStore::connect(&redis.url(), prefix, node, Duration::from_secs(3600))
        .await
        .unwrap()
}

fn ids(defs: &[mcp_hub_actors::registry::ServerDef]) -> Vec<String> {
    let mut ids: Vec<String> = defs.iter().map(|d| d.id.clone()).collect();
    ids.sort();
    ids
}

#[actix_web::test]
async fn a_server_deleted_while_redis_was_empty_is_not_written_back_by_another_instance() {
    let redis = RedisServer::start();
    let prefix = format!("t{}:", uuid::Uuid::new_v4().simple());
    let (a, b) = (
        store(&redis, &prefix, "a").await,
        store(&redis, &prefix, "b").await,
    );
    a.sync(vec![]).await.unwrap();
    a.upsert(http_def("x", "http://127.0.0.1:9/mcp"))
        .await
        .unwrap();
    a.upsert(http_def("y", "http://127.0.0.1:9/mcp"))
        .await
        .unwrap();
    let mirror_b = b.sync(vec![]).await.unwrap();
    assert_eq!(ids(&mirror_b), ["x", "y"]);
    let mirror_a = a.sync(vec![]).await.unwrap();

    // Redis restarts empty. A deletes x before B noticed anything.
    redis.cli(&["FLUSHALL"]);
    assert!(
        matches!(a.delete("x".into()).await, Err(StoreError::Stale)),
        "a delete into a registry Redis lost must ask for a write-back first"
    );
    a.sync(mirror_a).await.unwrap();
    a.delete("x".into()).await.unwrap();

    // B now writes its mirror back: y returns, x (deleted after B's copy was written) not.
    let after = b.sync(mirror_b).await.unwrap();
    assert_eq!(ids(&after), ["y"], "the deleted server came back");
    assert_eq!(ids(&a.sync(after).await.unwrap()), ["y"]);
    assert_eq!(
        redis.cli(&["HEXISTS", &format!("{prefix}servers"), "x"]),
        "0"
    );

    // A newer registration of the same id wins over the tombstone.
    a.upsert(http_def("x", "http://127.0.0.1:9/mcp"))
        .await
        .unwrap();
    assert_eq!(ids(&b.sync(vec![]).await.unwrap()), ["x", "y"]);
}
