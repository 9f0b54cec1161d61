//! [`RedisStore`]: server definitions shared by every hub instance through Redis.
//!
//! Keys (prefix configurable, default `mcp:`): `{prefix}servers` (hash id → `{"version",
//! "def"}`), `{prefix}tombstones` (hash id → version of its deletion), `{prefix}epoch` (a
//! random id written once; if it vanishes, Redis lost its data), and the pub/sub channel
//! `{prefix}events` (`server.upsert` / `server.delete` with id, version and node), and
//! `{prefix}tools:{serverId}` (hash tool name → the tool's JSON as listed by a node that
//! runs the server; changes announced as `tool.upsert` / `tool.delete` with the server id,
//! the tool and a version). Every
//! instance mirrors the hash in its RegistryActor: it subscribes to the channel and also
//! reconciles periodically, so a missed event heals.
//!
//! When Redis comes back empty (restarted without persistence), the instances notice the
//! missing epoch and write their mirrors back, newest version winning. A tombstone newer than
//! a mirrored copy keeps that copy from coming back: without it, an instance that had not
//! yet heard of a deletion would resurrect the server while writing its mirror back.
//!
//! Versions are milliseconds since the epoch, bumped past the last known version of the id
//! (`max(now, last + 1)`), so one instance's writes to an id always grow and instances with
//! roughly synchronised clocks agree on which write is newer.

use futures_util::future::LocalBoxFuture;
use futures_util::{FutureExt, StreamExt};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::mpsc;

use super::{ServerDef, Store, StoreError};

#[derive(Serialize, Deserialize)]
struct Stored {
    version: u64,
    def: ServerDef,
}

/// The Redis-backed store; see the module docs.
pub struct RedisStore {
    client: redis::Client,
    conn: redis::aio::ConnectionManager,
    prefix: String,
    node: String,
    epoch: Rc<RefCell<Option<String>>>,
    versions: Rc<RefCell<HashMap<String, u64>>>,
    reconcile: Duration,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

fn is_tool_event(payload: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v["type"].as_str().map(|t| t.starts_with("tool.")))
        .unwrap_or(false)
}

/// How long a deletion is remembered (and so protects against resurrection by a write-back).
const TOMBSTONE_TTL_MS: u64 = 24 * 3600 * 1000;

/// `put_tools`: KEYS = tools hash, events channel; ARGV = version, node, server, then name,
/// JSON pairs. Sets what changed, deletes what is gone, publishes one event per change.
/// Returns the number of changes.
const PUT_TOOLS: &str = r#"
local version, node, server = ARGV[1], ARGV[2], ARGV[3]
local fresh = {}
local changes = 0
for i = 4, #ARGV, 2 do
  local name, body = ARGV[i], ARGV[i + 1]
  fresh[name] = true
  if redis.call('HGET', KEYS[1], name) ~= body then
    redis.call('HSET', KEYS[1], name, body)
    redis.call('PUBLISH', KEYS[2], cjson.encode({type = 'tool.upsert', id = server, tool = name, version = tonumber(version), node = node}))
    changes = changes + 1
  end
end
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if not fresh[name] then
    redis.call('HDEL', KEYS[1], name)
    redis.call('PUBLISH', KEYS[2], cjson.encode({type = 'tool.delete', id = server, tool = name, version = tonumber(version), node = node}))
    changes = changes + 1
  end
end
return changes
"#;

fn version_arg() -> String {
    now_ms().to_string()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl RedisStore {
    /// Connects (fails when Redis cannot be reached now; later outages are survived).
    pub async fn connect(
        url: &str,
        prefix: &str,
        node: &str,
        reconcile: Duration,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(err)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(2)
            .set_max_delay(2000);
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| StoreError::Unavailable(format!("redis: no answer from {url} within 5 s")))?
        .map_err(err)?;
        Ok(Self {
            client,
            conn,
            prefix: prefix.to_string(),
            node: node.to_string(),
            epoch: Rc::new(RefCell::new(None)),
            versions: Rc::new(RefCell::new(HashMap::new())),
            reconcile,
        })
    }

    /// A handle on the shared connection (for the node heartbeat).
    pub fn connection(&self) -> redis::aio::ConnectionManager {
        self.conn.clone()
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Fails with [`StoreError::Stale`] when Redis lost the registry since this instance
    /// last synced (its epoch changed or vanished); the caller syncs, then writes again.
    async fn check_epoch(
        conn: &mut redis::aio::ConnectionManager,
        epoch_key: &str,
        epoch: &RefCell<Option<String>>,
    ) -> Result<(), StoreError> {
        let current: Option<String> = conn.get(epoch_key).await.map_err(err)?;
        let known = epoch.borrow().clone();
        match (known, current) {
            (Some(k), Some(c)) if k == c => {}
            (None, Some(c)) => *epoch.borrow_mut() = Some(c),
            (None, None) => {
                let mine = uuid::Uuid::new_v4().simple().to_string();
                let _: bool = conn.set_nx(epoch_key, &mine).await.map_err(err)?;
                let c: Option<String> = conn.get(epoch_key).await.map_err(err)?;
                *epoch.borrow_mut() = c;
            }
            _ => return Err(StoreError::Stale),
        }
        Ok(())
    }

    async fn read_tombstones(
        conn: &mut redis::aio::ConnectionManager,
        key: &str,
    ) -> Result<HashMap<String, u64>, StoreError> {
        let raw: HashMap<String, u64> = conn.hgetall(key).await.map_err(err)?;
        Ok(raw)
    }

    async fn read_all(
        mut conn: redis::aio::ConnectionManager,
        key: String,
    ) -> Result<HashMap<String, Stored>, StoreError> {
        let raw: HashMap<String, String> = conn.hgetall(&key).await.map_err(err)?;
        Ok(raw
            .into_iter()
            .filter_map(|(id, v)| match serde_json::from_str::<Stored>(&v) {
                Ok(s) => Some((id, s)),
                Err(e) => {
                    tracing::warn!(event = "registry.redis.bad_entry", server = %id, error = %e, "skipping an unreadable definition");
                    None
                }
            })
            .collect())
    }
}

impl Store for RedisStore {
    fn load_all(&self) -> LocalBoxFuture<'static, Result<Vec<ServerDef>, StoreError>> {
        let conn = self.conn.clone();
        let key = self.key("servers");
        let versions = self.versions.clone();
        async move {
            let all = Self::read_all(conn, key).await?;
            let mut v = versions.borrow_mut();
            Ok(all
                .into_iter()
                .map(|(id, s)| {
                    v.insert(id, s.version);
                    s.def
                })
                .collect())
        }
        .boxed_local()
    }

    fn upsert(&self, def: ServerDef) -> LocalBoxFuture<'static, Result<(), StoreError>> {
        let mut conn = self.conn.clone();
        let (hash, events, epoch_key, tombstones) = (
            self.key("servers"),
            self.key("events"),
            self.key("epoch"),
            self.key("tombstones"),
        );
        let node = self.node.clone();
        let epoch = self.epoch.clone();
        let versions = self.versions.clone();
        async move {
            let version = now_ms().max(versions.borrow().get(&def.id).map_or(0, |v| v + 1));
            let id = def.id.clone();
            let value = serde_json::to_string(&Stored { version, def }).map_err(err)?;
            // Never write over a registry Redis lost: the caller writes its mirror back
            // (`sync`) first when told the epoch is stale.
            Self::check_epoch(&mut conn, &epoch_key, &epoch).await?;
            let _: () = redis::pipe()
                .atomic()
                .hset(&hash, &id, value)
                .ignore()
                .hdel(&tombstones, &id)
                .ignore()
                .query_async(&mut conn)
                .await
                .map_err(err)?;
            let event =
                json!({ "type": "server.upsert", "id": id, "version": version, "node": node })
                    .to_string();
            let _: () = conn.publish(&events, event).await.map_err(err)?;
            versions.borrow_mut().insert(id, version);
            Ok(())
        }
        .boxed_local()
    }

    fn delete(&self, id: String) -> LocalBoxFuture<'static, Result<(), StoreError>> {
        let mut conn = self.conn.clone();
        let (hash, events, epoch_key, tombstones) = (
            self.key("servers"),
            self.key("events"),
            self.key("epoch"),
            self.key("tombstones"),
        );
        let tools_key = self.key(&format!("tools:{id}"));
        let runtime_key = self.key(&format!("server_runtime:{id}"));
        let node = self.node.clone();
        let epoch = self.epoch.clone();
        let versions = self.versions.clone();
        async move {
            // Same rule as upserts: a delete into a registry Redis lost would be undone by
            // the next write-back, so the caller syncs first.
            Self::check_epoch(&mut conn, &epoch_key, &epoch).await?;
            let version = now_ms().max(versions.borrow().get(&id).map_or(0, |v| v + 1));
            let tools: Vec<String> = conn.hkeys(&tools_key).await.map_err(err)?;
            let _: () = redis::pipe()
                .atomic()
                .hdel(&hash, &id)
                .ignore()
                .hset(&tombstones, &id, version)
                .ignore()
                .del(&tools_key)
                .ignore()
                .del(&runtime_key)
                .ignore()
                .query_async(&mut conn)
                .await
                .map_err(err)?;
            let mut publish = redis::pipe();
            for tool in tools {
                publish.publish(&events, json!({ "type": "tool.delete", "id": id, "tool": tool, "version": version, "node": node }).to_string()).ignore();
            }
            let event = json!({ "type": "server.delete", "id": id, "version": version, "node": node }).to_string();
            publish.publish(&events, event).ignore();
            let _: () = publish.query_async(&mut conn).await.map_err(err)?;
            versions.borrow_mut().remove(&id);
            Ok(())
        }
        .boxed_local()
    }

    fn put_tools(
        &self,
        server: String,
        tools: Vec<(String, String)>,
    ) -> LocalBoxFuture<'static, Result<(), StoreError>> {
        let mut conn = self.conn.clone();
        let (key, events) = (self.key(&format!("tools:{server}")), self.key("events"));
        let node = self.node.clone();
        async move {
            // Every node that runs the server reports the same list: one script writes only
            // the difference and announces it, atomically, so two nodes loading the same
            // list at once announce each change once.
            let mut args = vec![version_arg(), node, server];
            for (name, body) in tools {
                args.push(name);
                args.push(body);
            }
            let _: i64 = redis::Script::new(PUT_TOOLS)
                .key(&key)
                .key(&events)
                .arg(args)
                .invoke_async(&mut conn)
                .await
                .map_err(err)?;
            Ok(())
        }
        .boxed_local()
    }

    fn sync(
        &self,
        mirror: Vec<ServerDef>,
    ) -> LocalBoxFuture<'static, Result<Vec<ServerDef>, StoreError>> {
        let mut conn = self.conn.clone();
        let (hash, epoch_key, tombstones_key) = (
            self.key("servers"),
            self.key("epoch"),
            self.key("tombstones"),
        );
        let epoch = self.epoch.clone();
        let versions = self.versions.clone();
        async move {
            let current: Option<String> = conn.get(&epoch_key).await.map_err(err)?;
            let known = epoch.borrow().clone();
            let lost = match (&known, &current) {
                (Some(k), Some(c)) => k != c,
                (Some(_), None) => true,
                (None, _) => false,
            };
            let fresh = match current {
                Some(c) if !lost => c,
                _ => {
                    // First contact, or Redis lost its data: claim an epoch (or join the one
                    // another instance just wrote).
                    let mine = uuid::Uuid::new_v4().simple().to_string();
                    let _: bool = conn.set_nx(&epoch_key, &mine).await.map_err(err)?;
                    conn.get::<_, Option<String>>(&epoch_key)
                        .await
                        .map_err(err)?
                        .unwrap_or(mine)
                }
            };
            *epoch.borrow_mut() = Some(fresh);
            let mut stored = Self::read_all(conn.clone(), hash.clone()).await?;
            let tombstones = Self::read_tombstones(&mut conn, &tombstones_key).await?;
            // Forget deletions old enough that no instance can still hold the server.
            let expired: Vec<&String> = tombstones
                .iter()
                .filter(|(_, v)| v.saturating_add(TOMBSTONE_TTL_MS) < now_ms())
                .map(|(id, _)| id)
                .collect();
            if !expired.is_empty() {
                let _: () = conn.hdel(&tombstones_key, expired).await.map_err(err)?;
            }
            if lost {
                tracing::warn!(
                    event = "registry.redis.lost_data",
                    mirrored = mirror.len(),
                    "Redis lost the registry; writing this instance's mirror back"
                );
                for def in mirror {
                    let version = versions.borrow().get(&def.id).copied().unwrap_or(0);
                    let newer = stored.get(&def.id).is_none_or(|s| s.version < version)
                        && tombstones.get(&def.id).is_none_or(|&t| t < version);
                    if newer {
                        let value = serde_json::to_string(&Stored {
                            version,
                            def: def.clone(),
                        })
                        .map_err(err)?;
                        let _: () = conn.hset(&hash, &def.id, value).await.map_err(err)?;
                        stored.insert(def.id.clone(), Stored { version, def });
                    }
                }
            }
            let mut v = versions.borrow_mut();
            v.clear();
            Ok(stored
                .into_iter()
                .map(|(id, s)| {
                    v.insert(id, s.version);
                    s.def
                })
                .collect())
        }
        .boxed_local()
    }

    fn changes(&self) -> Option<mpsc::UnboundedReceiver<()>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let client = self.client.clone();
        let channel = self.key("events");
        actix::spawn(async move {
            let mut delay = Duration::from_millis(200);
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut pubsub) => {
                        if pubsub.subscribe(&channel).await.is_ok() {
                            delay = Duration::from_millis(200);
                            // (Re)subscribed: events may have been missed meanwhile.
                            if tx.send(()).is_err() {
                                return;
                            }
                            let mut messages = pubsub.into_on_message();
                            while let Some(msg) = messages.next().await {
                                // Tool events describe catalogs, not definitions: no reconcile.
                                let payload: String = msg.get_payload().unwrap_or_default();
                                if is_tool_event(&payload) {
                                    continue;
                                }
                                if tx.send(()).is_err() {
                                    return;
                                }
                            }
                        }
                        tracing::warn!(
                            event = "registry.redis.pubsub_lost",
                            "lost the Redis subscription; reconnecting"
                        );
                    }
                    Err(e) => {
                        tracing::warn!(event = "registry.redis.unreachable", error = %e, retry_ms = delay.as_millis() as u64, "registry.redis.unreachable")
                    }
                }
                // Exponential backoff with jitter, so a fleet does not reconnect in one burst.
                let jitter = rand::random::<u64>() % (delay.as_millis() as u64 + 1);
                actix_rt::time::sleep(delay + Duration::from_millis(jitter)).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        });
        Some(rx)
    }

    fn reconcile_every(&self) -> Option<Duration> {
        Some(self.reconcile)
    }
}
