//! [`SharedSessions`]: the Redis side of client sessions, so every hub instance can serve
//! every session and a client whose instance died resumes on another.
//!
//! Keys (all under the configured prefix, all expiring after the session idle TTL, renewed
//! while the session is used):
//! - `session:{id}` (hash): user, scope, protocol version, client capabilities, created,
//!   last seen, the node that created it. Written before `initialize` is answered, so the
//!   session id the client receives is already valid on every instance.
//! - `session:{id}:log` (stream, capped with `MAXLEN ~`): every event of the session's
//!   request streams, fields `s` (stream), `q` (seq), `j` (JSON), `f` (0 message,
//!   1 response, 2 error response). Stream numbers start at a random per-actor base, so two
//!   instances serving one session never share a stream number.
//! - `session:{id}:pending` (hash stream → call): the request each unfinished stream
//!   answers and the node running it; removed when the response is logged. An instance
//!   resuming a stream whose node is gone claims the call (compare-and-set on the node) and
//!   runs it again: a call is finished at least once, never lost.
//!
//! Who talks to it: SessionActors (writes, through one writer task that keeps per-session
//! order and batches into pipelines), the session directory (adopting a session it does
//! not hold), and the resume path of a SessionActor (reads, tailing, claims).
//! Failure behaviour: writes are fire-and-forget (a Redis outage costs no call; the local
//! log still serves local resumes) and failures are logged once per outage.

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

use crate::protocol::Id;

/// Writes queued for Redis at most; past this, events are not mirrored (logged).
const QUEUE: usize = 65_536;
/// Writes per pipeline at most.
const BATCH: usize = 512;

/// A session as every instance sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionRecord {
    /// The user who created it; only that user may use it.
    pub user: String,
    /// The server id of a `/mcp/{server}` session; empty for `/mcp`.
    pub scope: String,
    /// Negotiated protocol version.
    pub version: String,
    /// The client's capabilities (JSON).
    pub caps: Value,
    /// Node that created it.
    pub node: String,
    /// Creation time, ms since the epoch.
    pub created_ms: u64,
}

/// A request whose stream has no response yet, and the node running it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingCall {
    /// Node running the call.
    pub node: String,
    /// The client's request id.
    pub id: Id,
    /// Method.
    pub method: String,
    /// Raw params.
    pub params: Option<Box<RawValue>>,
}

/// One event of a request stream, as logged in Redis.
#[derive(Debug, Clone)]
pub struct SharedEvent {
    /// Position on its stream.
    pub seq: u64,
    /// The JSON-RPC message.
    pub json: String,
    /// The response that ends the stream.
    pub is_response: bool,
    /// That response is an error.
    pub is_error: bool,
}

/// What Redis holds of one stream.
#[derive(Debug, Default)]
pub struct SharedStream {
    /// Its events, in order.
    pub events: Vec<SharedEvent>,
    /// The call still running, if the stream has no response yet.
    pub pending: Option<PendingCall>,
    /// The Redis entry id to tail from.
    pub cursor: String,
}

impl SharedStream {
    /// Whether the stream's response is among its events.
    pub fn completed(&self) -> bool {
        self.events.iter().any(|e| e.is_response)
    }
}

/// Where a relayed message goes on the instance that holds the session's stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayTarget {
    /// The legacy HTTP+SSE stream (`GET /sse`).
    Legacy,
    /// The standalone `GET /mcp` stream.
    Standalone,
    /// The client's answer to a server-to-client request, for the instance that sent it:
    /// `json` is the raw result (or error object when `error`).
    Response {
        /// The id the hub gave the request.
        id: Id,
        /// Whether `json` is an error object.
        error: bool,
    },
}

/// A message for a session, published for whichever instance holds its stream. Sent by a
/// SessionActor; delivered by the relay subscriber to the local actor of that session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Relayed {
    /// Session id.
    pub session: String,
    /// Node that published it (it ignores its own).
    pub from: String,
    /// Where it goes.
    pub to: RelayTarget,
    /// The JSON-RPC message (or raw result/error for a response).
    pub json: String,
}

enum Write {
    Publish(String),
    Event {
        session: Arc<str>,
        stream: u64,
        ev: SharedEvent,
    },
    Pending {
        session: Arc<str>,
        stream: u64,
        call: String,
        done: tokio::sync::oneshot::Sender<()>,
    },
    Touch(Arc<str>),
    Delete(Arc<str>),
}

/// The Redis mirror of sessions; see the module docs. Cheap to clone.
#[derive(Clone)]
pub struct SharedSessions {
    conn: ConnectionManager,
    prefix: Arc<str>,
    node: Arc<str>,
    ttl_secs: u64,
    tx: mpsc::Sender<Write>,
    full_logged: Arc<AtomicBool>,
    /// The writer's last pipeline reached Redis. While it does not, nothing waits on Redis.
    healthy: Arc<AtomicBool>,
}

impl std::fmt::Debug for SharedSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSessions")
            .field("prefix", &self.prefix)
            .field("node", &self.node)
            .finish()
    }
}

const CLAIM: &str = r#"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local call = cjson.decode(cur)
if call['node'] ~= ARGV[2] then return 0 end
call['node'] = ARGV[3]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(call))
return 1
"#;

impl SharedSessions {
    /// Mirrors sessions under `prefix` through `conn`, as node `node`; records live
    /// `ttl` after their last use and each log keeps about `max_events` entries. Spawns
    /// the writer task on the current runtime.
    pub fn new(
        conn: ConnectionManager,
        prefix: &str,
        node: &str,
        ttl: Duration,
        max_events: usize,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let prefix: Arc<str> = Arc::from(prefix);
        let ttl_secs = ttl.as_secs().max(1);
        let healthy = Arc::new(AtomicBool::new(true));
        tokio::spawn(writer(
            conn.clone(),
            prefix.clone(),
            ttl_secs,
            max_events.max(16),
            rx,
            healthy.clone(),
        ));
        Self {
            conn,
            prefix,
            node: Arc::from(node),
            ttl_secs,
            tx,
            full_logged: Arc::new(AtomicBool::new(false)),
            healthy,
        }
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn key(&self, session: &str, suffix: &str) -> String {
        format!("{}session:{session}{suffix}", self.prefix)
    }

    /// Writes a session's record (awaited: the client may use the id anywhere next).
    pub async fn put_record(
        &self,
        session: &str,
        record: &SessionRecord,
    ) -> Result<(), redis::RedisError> {
        let key = self.key(session, "");
        let json = serde_json::to_string(record).unwrap_or_default();
        let mut pipe = redis::pipe();
        pipe.hset(&key, "record", json)
            .ignore()
            .expire(&key, self.ttl_secs as i64)
            .ignore();
        let mut conn = self.conn.clone();
        let write = pipe.query_async::<()>(&mut conn);
        // Redis being slow or gone must not hold initialize up for long.
        let within = if self.healthy.load(Ordering::Relaxed) {
            Duration::from_millis(500)
        } else {
            Duration::from_millis(50)
        };
        match tokio::time::timeout(within, write).await {
            Ok(r) => r,
            Err(_) => Err(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "session record write timed out",
            ))),
        }
    }

    /// A session's record, if any instance holds the session.
    pub async fn get_record(
        &self,
        session: &str,
    ) -> Result<Option<SessionRecord>, redis::RedisError> {
        let raw: Option<String> = redis::cmd("HGET")
            .arg(self.key(session, ""))
            .arg("record")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    fn queue(&self, w: Write) {
        if self.tx.try_send(w).is_err() && !self.full_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                event = "session.shared.queue_full",
                "the Redis session mirror is behind; events are kept locally only until it catches up"
            );
        }
    }

    /// Mirrors one event of a request stream.
    pub fn event(&self, session: &Arc<str>, stream: u64, ev: SharedEvent) {
        self.queue(Write::Event {
            session: session.clone(),
            stream,
            ev,
        });
    }

    /// Records the call a request stream answers, run by this node. The receiver resolves
    /// when the write was attempted (whatever the outcome); none is returned while Redis
    /// is failing, so an outage does not hold calls up.
    pub fn pending(
        &self,
        session: &Arc<str>,
        stream: u64,
        call: &PendingCall,
    ) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let call = serde_json::to_string(call).ok()?;
        let (done, rx) = tokio::sync::oneshot::channel();
        self.queue(Write::Pending {
            session: session.clone(),
            stream,
            call,
            done,
        });
        self.healthy.load(Ordering::Relaxed).then_some(rx)
    }

    /// Keeps a session's keys alive (it was used).
    pub fn touch(&self, session: &Arc<str>) {
        self.queue(Write::Touch(session.clone()));
    }

    /// Publishes a message for a stream held by another instance (in order with this
    /// node's other writes).
    pub fn relay(&self, session: &str, to: RelayTarget, json: String) {
        let msg = Relayed {
            session: session.to_string(),
            from: self.node.to_string(),
            to,
            json,
        };
        if let Ok(payload) = serde_json::to_string(&msg) {
            self.queue(Write::Publish(payload));
        }
    }

    /// Subscribes to relayed messages and hands each to the local actor of its session;
    /// resubscribes with backoff when the connection drops. Run once at startup.
    pub fn spawn_relay(
        &self,
        redis_url: &str,
        sessions: super::SessionDirectory,
    ) -> Result<(), redis::RedisError> {
        let client = redis::Client::open(redis_url)?;
        let channel = format!("{}session_relay", self.prefix);
        let me = self.node.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(200);
            loop {
                if let Ok(mut pubsub) = client.get_async_pubsub().await {
                    if pubsub.subscribe(&channel).await.is_ok() {
                        delay = Duration::from_millis(200);
                        let mut messages = pubsub.into_on_message();
                        while let Some(msg) = futures_util::StreamExt::next(&mut messages).await {
                            let payload: String = msg.get_payload().unwrap_or_default();
                            let Ok(relayed) = serde_json::from_str::<Relayed>(&payload) else {
                                continue;
                            };
                            if relayed.from == *me {
                                continue;
                            }
                            if let Some(entry) = sessions.get(&relayed.session) {
                                entry.addr.do_send(super::messages::RelayIn(relayed));
                            }
                        }
                    }
                }
                tracing::warn!(
                    event = "session.shared.relay_lost",
                    retry_ms = delay.as_millis() as u64,
                    "lost the session relay subscription; resubscribing"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        });
        Ok(())
    }

    /// Forgets a session (the client deleted it).
    pub fn delete(&self, session: &Arc<str>) {
        self.queue(Write::Delete(session.clone()));
    }

    /// What Redis holds of `stream`: events after `after`, from the start of the log, and
    /// the pending call, if any.
    pub async fn read_stream(
        &self,
        session: &str,
        stream: u64,
        after: u64,
    ) -> Result<SharedStream, redis::RedisError> {
        let mut out = SharedStream {
            cursor: "0-0".into(),
            ..Default::default()
        };
        self.read_more(session, stream, after, &mut out).await?;
        out.pending = self.pending_call(session, stream).await?;
        Ok(out)
    }

    /// The unfinished call `stream` answers, if any.
    pub async fn pending_call(
        &self,
        session: &str,
        stream: u64,
    ) -> Result<Option<PendingCall>, redis::RedisError> {
        let raw: Option<String> = redis::cmd("HGET")
            .arg(self.key(session, ":pending"))
            .arg(stream)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// Appends to `out` the events of `stream` logged after `out.cursor` (and after seq
    /// `after`), moving the cursor.
    pub async fn read_more(
        &self,
        session: &str,
        stream: u64,
        after: u64,
        out: &mut SharedStream,
    ) -> Result<usize, redis::RedisError> {
        type Entry = (String, Vec<(String, String)>);
        let entries: Vec<Entry> = redis::cmd("XRANGE")
            .arg(self.key(session, ":log"))
            .arg(format!("({}", out.cursor))
            .arg("+")
            .query_async(&mut self.conn.clone())
            .await?;
        let mut added = 0;
        for (entry_id, fields) in entries {
            out.cursor = entry_id;
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            };
            let (Some(s), Some(q), Some(j), Some(f)) = (
                field("s").and_then(|v| v.parse::<u64>().ok()),
                field("q").and_then(|v| v.parse::<u64>().ok()),
                field("j"),
                field("f"),
            ) else {
                continue;
            };
            if s != stream || q <= after {
                continue;
            }
            out.events.push(SharedEvent {
                seq: q,
                json: j.to_string(),
                is_response: f != "0",
                is_error: f == "2",
            });
            added += 1;
        }
        Ok(added)
    }

    /// Whether `node` is still there: its heartbeat record exists and, when it advertises
    /// a URL, its port does not refuse connections (a killed process is known dead at once,
    /// not only when its record expires). A port that is slow to answer counts as alive.
    pub async fn node_alive(&self, node: &str) -> Result<bool, redis::RedisError> {
        let record: Option<String> = redis::cmd("GET")
            .arg(format!("{}node:{node}", self.prefix))
            .query_async(&mut self.conn.clone())
            .await?;
        let Some(record) = record else {
            return Ok(false);
        };
        let authority = serde_json::from_str::<Value>(&record)
            .ok()
            .and_then(|r| r.get("url").and_then(Value::as_str).map(str::to_string))
            .and_then(|url| url.parse::<awc::http::Uri>().ok())
            .and_then(|uri| {
                let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                    Some("https") => 443,
                    _ => 80,
                });
                let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
                Some((host.to_string(), port))
            });
        let Some((host, port)) = authority else {
            return Ok(true);
        };
        let probe = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await;
        Ok(!matches!(probe, Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused))
    }

    /// Takes over the pending call of `stream` from `dead_node`; true when this node won.
    pub async fn claim(
        &self,
        session: &str,
        stream: u64,
        dead_node: &str,
    ) -> Result<bool, redis::RedisError> {
        let won: i64 = redis::Script::new(CLAIM)
            .key(self.key(session, ":pending"))
            .arg(stream)
            .arg(dead_node)
            .arg(&*self.node)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(won == 1)
    }
}

/// Drains the write queue into pipelines, in order.
async fn writer(
    mut conn: ConnectionManager,
    prefix: Arc<str>,
    ttl: u64,
    max_events: usize,
    mut rx: mpsc::Receiver<Write>,
    healthy: Arc<AtomicBool>,
) {
    let mut failing = false;
    let mut batch = Vec::with_capacity(BATCH);
    let mut waiting = Vec::new();
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for w in batch.drain(..) {
            let key = |s: &str, suffix: &str| format!("{prefix}session:{s}{suffix}");
            match w {
                Write::Publish(payload) => {
                    pipe.publish(format!("{prefix}session_relay"), payload)
                        .ignore();
                }
                Write::Event {
                    session,
                    stream,
                    ev,
                } => {
                    let log = key(&session, ":log");
                    let f = match (ev.is_response, ev.is_error) {
                        (false, _) => "0",
                        (true, false) => "1",
                        (true, true) => "2",
                    };
                    pipe.cmd("XADD")
                        .arg(&log)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(max_events)
                        .arg("*")
                        .arg("s")
                        .arg(stream)
                        .arg("q")
                        .arg(ev.seq)
                        .arg("j")
                        .arg(ev.json)
                        .arg("f")
                        .arg(f)
                        .ignore()
                        .expire(&log, ttl as i64)
                        .ignore();
                    if ev.is_response {
                        pipe.hdel(key(&session, ":pending"), stream).ignore();
                    }
                }
                Write::Pending {
                    session,
                    stream,
                    call,
                    done,
                } => {
                    waiting.push(done);
                    let pending = key(&session, ":pending");
                    pipe.hset(&pending, stream, call)
                        .ignore()
                        .expire(&pending, ttl as i64)
                        .ignore();
                }
                Write::Touch(session) => {
                    for suffix in ["", ":log", ":pending"] {
                        pipe.expire(key(&session, suffix), ttl as i64).ignore();
                    }
                }
                Write::Delete(session) => {
                    pipe.del(&[
                        key(&session, ""),
                        key(&session, ":log"),
                        key(&session, ":pending"),
                    ])
                    .ignore();
                }
            }
        }
        let outcome = pipe.query_async::<()>(&mut conn).await;
        healthy.store(outcome.is_ok(), Ordering::Relaxed);
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
        match outcome {
            Ok(()) if failing => {
                failing = false;
                tracing::info!(
                    event = "session.shared.recovered",
                    "the Redis session mirror is writing again"
                );
            }
            Ok(()) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(event = "session.shared.write_failed", error = %e, "session events are kept locally only until Redis answers");
            }
            Err(_) => {}
        }
    }
}
