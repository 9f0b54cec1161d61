//! NodeActor: this instance's presence in Redis, so operators (and other instances) see
//! which hubs are alive.
//!
//! State: the node id, a Redis connection, the last heartbeat's outcome.
//! Messages: [`ListNodes`], [`SetNodeStatus`], [`Deregister`].
//! Timers: a heartbeat every 5 s writes `{prefix}node:{id}` (TTL 15 s, so a node that dies
//! disappears by itself), adds the id to `{prefix}nodes`, and writes this node's view of
//! each server it runs into `{prefix}server_runtime:{serverId}` (hash node id → status,
//! pid, last_heartbeat, restarts, last_error). Readers skip entries whose heartbeat is older
//! than the node TTL, since a hash field cannot expire on its own.
//! Failure behaviour: a failed heartbeat is logged and retried on the next tick; the last
//! outcome is what `/readyz` reports as Redis connectivity.

use actix::prelude::*;
use redis::AsyncCommands;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::NodeInfo;
use crate::directory::ServerDirectory;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Seconds between heartbeats.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// Seconds a node record lives without a new heartbeat.
pub const NODE_TTL_SECS: u64 = 15;

/// Publishes this node's heartbeat; see the module docs.
pub struct NodeActor {
    id: String,
    /// Where peers reach this node, and its labels (for placement).
    url: Option<String>,
    labels: Vec<String>,
    /// The live nodes, read back after each heartbeat, for forwarding ServerActors.
    peers: tokio::sync::watch::Sender<Arc<Vec<NodeInfo>>>,
    prefix: String,
    conn: redis::aio::ConnectionManager,
    servers: ServerDirectory,
    status: &'static str,
    started_at: String,
    redis_up: Arc<AtomicBool>,
    max_load: usize,
}

impl NodeActor {
    /// A node record for `me`, written through `conn`; the live nodes go to `peers`.
    pub fn new(
        me: NodeInfo,
        prefix: String,
        conn: redis::aio::ConnectionManager,
        servers: ServerDirectory,
        max_load: usize,
        redis_up: Arc<AtomicBool>,
        peers: tokio::sync::watch::Sender<Arc<Vec<NodeInfo>>>,
    ) -> Self {
        Self {
            id: me.id,
            url: me.url,
            labels: me.labels,
            peers,
            prefix,
            conn,
            servers,
            status: "ready",
            started_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            redis_up,
            max_load,
        }
    }

    fn record(&self) -> Value {
        let load: usize = self
            .servers
            .snapshot()
            .iter()
            .map(|h| h.runtime.borrow().in_flight)
            .sum();
        json!({
            "id": self.id,
            "url": self.url,
            "labels": self.labels,
            "status": self.status,
            "load": load,
            "max_load": self.max_load,
            "servers": self.servers.len(),
            "version": env!("CARGO_PKG_VERSION"),
            "started_at": self.started_at,
            "last_heartbeat": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        })
    }

    /// `(key, record)` of this node's entry in each running server's runtime hash.
    fn server_runtimes(&self) -> Vec<(String, String)> {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        self.servers
            .snapshot()
            .iter()
            .map(|h| {
                let rt = h.runtime.borrow();
                let record = json!({
                    "status": rt.status,
                    "pid": rt.pid,
                    "last_heartbeat": now,
                    "heartbeat_ms": now_ms(),
                    "restarts": rt.restarts,
                    "last_error": rt.last_error,
                });
                (
                    format!("{}server_runtime:{}", self.prefix, h.id),
                    record.to_string(),
                )
            })
            .collect()
    }

    fn beat(&mut self, ctx: &mut Context<Self>) {
        let mut conn = self.conn.clone();
        let (key, set) = (
            format!("{}node:{}", self.prefix, self.id),
            format!("{}nodes", self.prefix),
        );
        let (id, record) = (self.id.clone(), self.record().to_string());
        let runtimes = self.server_runtimes();
        let up = self.redis_up.clone();
        let (peers, prefix) = (self.peers.clone(), self.prefix.clone());
        ctx.spawn(
            async move {
                let res: redis::RedisResult<()> = async {
                    let mut pipe = redis::pipe();
                    pipe.set_ex(&key, record, NODE_TTL_SECS)
                        .ignore()
                        .sadd(&set, &id)
                        .ignore();
                    for (key, record) in &runtimes {
                        pipe.hset(key, &id, record).ignore();
                    }
                    let _: () = pipe.query_async(&mut conn).await?;
                    let live = live_nodes(&mut conn, &prefix).await?;
                    let live: Vec<NodeInfo> = live
                        .into_iter()
                        .filter_map(|v| serde_json::from_value(v).ok())
                        .collect();
                    peers.send_if_modified(|current| {
                        let changed = **current != live;
                        if changed {
                            *current = Arc::new(live);
                        }
                        changed
                    });
                    Ok(())
                }
                .await;
                let was = up.swap(res.is_ok(), Ordering::AcqRel);
                match (&res, was) {
                    (Err(e), true) => tracing::warn!(event = "node.heartbeat.failed", error = %e, "node.heartbeat.failed"),
                    (Ok(()), false) => tracing::info!(event = "node.heartbeat.restored", "node.heartbeat.restored"),
                    _ => {}
                }
            }
            .into_actor(self),
        );
    }
}

impl Actor for NodeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.beat(ctx);
        ctx.run_interval(HEARTBEAT, |act, ctx| act.beat(ctx));
    }
}

/// Every live node's record, by id; ids whose record expired are removed from the set.
async fn live_nodes(
    conn: &mut redis::aio::ConnectionManager,
    prefix: &str,
) -> redis::RedisResult<Vec<Value>> {
    let set = format!("{prefix}nodes");
    let ids: Vec<String> = conn.smembers(&set).await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // One round trip; a pipeline of GETs (MGET of one key turns into a GET in the client).
    let mut pipe = redis::pipe();
    for id in &ids {
        pipe.get(format!("{prefix}node:{id}"));
    }
    let raws: Vec<Option<String>> = pipe.query_async(conn).await?;
    let mut nodes = Vec::new();
    for (id, raw) in ids.iter().zip(raws) {
        match raw.and_then(|r| serde_json::from_str::<Value>(&r).ok()) {
            Some(v) => nodes.push(v),
            // Expired: the node stopped heartbeating. Tidy the set.
            None => {
                let _: redis::RedisResult<()> = conn.srem(&set, id).await;
            }
        }
    }
    nodes.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Ok(nodes)
}

/// Every live node's record. Sent by the admin API (`GET /api/nodes`).
#[derive(Message)]
#[rtype(result = "Result<Vec<Value>, String>")]
pub struct ListNodes;

impl Handler<ListNodes> for NodeActor {
    type Result = ResponseFuture<Result<Vec<Value>, String>>;

    fn handle(&mut self, _: ListNodes, _: &mut Self::Context) -> Self::Result {
        let mut conn = self.conn.clone();
        let prefix = self.prefix.clone();
        Box::pin(async move {
            live_nodes(&mut conn, &prefix)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Every live node's view of one server (`{prefix}server_runtime:{id}`), node id → record;
/// entries older than the node TTL are left out. Sent by the admin API.
#[derive(Message)]
#[rtype(result = "Result<serde_json::Map<String, Value>, String>")]
pub struct ServerRuntimes(pub String);

impl Handler<ServerRuntimes> for NodeActor {
    type Result = ResponseFuture<Result<serde_json::Map<String, Value>, String>>;

    fn handle(&mut self, msg: ServerRuntimes, _: &mut Self::Context) -> Self::Result {
        let mut conn = self.conn.clone();
        let key = format!("{}server_runtime:{}", self.prefix, msg.0);
        Box::pin(async move {
            let all: std::collections::HashMap<String, String> =
                conn.hgetall(&key).await.map_err(|e| e.to_string())?;
            let fresh_after = now_ms().saturating_sub(NODE_TTL_SECS * 1000);
            Ok(all
                .into_iter()
                .filter_map(|(node, raw)| {
                    let v: Value = serde_json::from_str(&raw).ok()?;
                    (v["heartbeat_ms"].as_u64()? >= fresh_after).then_some((node, v))
                })
                .collect())
        })
    }
}

/// Changes the status published in the heartbeat ("stopping" while draining). Sent by
/// the HTTP crate's shutdown code.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetNodeStatus(pub &'static str);

impl Handler<SetNodeStatus> for NodeActor {
    type Result = ();

    fn handle(&mut self, msg: SetNodeStatus, ctx: &mut Self::Context) {
        self.status = msg.0;
        self.beat(ctx);
    }
}

/// Removes this node's record (graceful shutdown). Answers once Redis acknowledged.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deregister;

impl Handler<Deregister> for NodeActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Deregister, ctx: &mut Self::Context) -> Self::Result {
        ctx.stop();
        let mut conn = self.conn.clone();
        let (key, set, id) = (
            format!("{}node:{}", self.prefix, self.id),
            format!("{}nodes", self.prefix),
            self.id.clone(),
        );
        let runtimes: Vec<String> = self.server_runtimes().into_iter().map(|(k, _)| k).collect();
        Box::pin(async move {
            let mut pipe = redis::pipe();
            pipe.del(&key).ignore().srem(&set, &id).ignore();
            for key in &runtimes {
                pipe.hdel(key, &id).ignore();
            }
            let _: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
        })
    }
}
