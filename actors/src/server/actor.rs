//! ServerActor: owns one upstream server.
//!
//! State: the live connection (`Conn`) and its generation, the call queue and in-flight
//! count, the catalog and runtime status (published through `watch` channels).
//! Messages: `Forward`, `Cancel`, `Shutdown` (see `messages.rs`), `ConnEvent` from its
//! transport, `ReplyToUpstream` from sessions.
//! Timers: reconnect after a failure, with exponential backoff (200 ms, doubling, 30 s cap).
//! Failure behaviour: when the upstream goes away, calls in flight fail at once with
//! "server restarted"; queued calls keep waiting (up to their own timeout) for the new
//! connection. The actor itself never blocks: calls run as futures beside its mailbox.

use actix::prelude::*;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

use super::breaker::{Admission, Breaker};
use super::catalog::Catalog;
use super::children::ChildLedger;
use super::deadline::{run_until, Expired, Extension};
use super::exclusive::ExclusiveGate;
use super::latency::LatencyWindow;
use super::messages::{Cancel, ClientSessionClosed, Forward, Restart, Shutdown};
use super::queue::{FairQueue, Waiter};
use super::runtime::{now_secs, LastError, RuntimeStatus, Status};
use super::sink::ReplyToUpstream;
use super::supervision::SupervisionConfig;
use super::transport::{
    http::HttpConn, rest::RestConn, sse::SseConn, stdio::StdioConn, Conn, ConnEvent, OpenArgs,
    OutCall,
};
use crate::cluster::Cluster;
use crate::directory::HubEvent;
use crate::error::HubError;
use crate::registry::{ServerDef, TransportKind};

/// Calls that may wait for a slot or for readiness before callers get "Server busy".
const QUEUE_CAP: usize = 1024;
/// How long a peer whose connection failed is avoided by a forwarding ServerActor.
const PEER_FAILURE_MEMORY: Duration = Duration::from_secs(crate::nodes::NODE_TTL_SECS);
/// Longest pause between a forwarder's attempts to reach a peer.
const PEER_RETRY_MAX: Duration = Duration::from_secs(2);
/// How often a modern Streamable HTTP upstream's lists are re-read (it has no
/// `list_changed` stream the hub listens on).
const MODERN_RELIST: Duration = Duration::from_secs(30);

/// Time allowed for a handshake plus the initial list loads.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// What every ServerActor shares: how to run `@self`, where catalog changes are announced.
pub struct ServerEnv {
    /// This binary, for `command = "@self"`.
    pub self_exe: PathBuf,
    /// Catalog changes are announced here.
    pub events: tokio::sync::broadcast::Sender<HubEvent>,
    /// Server-layer timeout for servers that set none (`timeouts.server_ms`).
    pub default_timeout_ms: u64,
    /// External-API timeout of REST servers that set none (`timeouts.external_ms`).
    pub external_timeout_ms: u64,
    /// Restart, crash-loop and health-check policy.
    pub supervision: SupervisionConfig,
    /// Worker starts (spawn + handshake) allowed at once, hub-wide.
    pub start_permits: Arc<tokio::sync::Semaphore>,
    /// With `timeouts.progress_extends`: `timeouts.hard_max_ms`, the longest progress may
    /// stretch a call. `None`: the server timeout is fixed.
    pub progress_hard_max: Option<Duration>,
    /// Running stdio workers allowed on this node (`supervision.worker_max`; `None`: no cap).
    pub worker_slots: Option<Arc<tokio::sync::Semaphore>>,
    /// The children this node spawned (`{state_dir}/children.json`).
    pub children: Arc<ChildLedger>,
    /// With Redis: this node and its live peers, so a server placed elsewhere is forwarded.
    pub cluster: Option<Cluster>,
    /// Which addresses upstream connections may reach (`[security.upstreams]`).
    pub upstream_policy: Arc<super::ssrf::UpstreamPolicy>,
    /// Bounds on per-user / per-client upstream sessions (`session_mode`).
    pub upstream_sessions: super::upstream_session::UpstreamSessionLimits,
}

/// Owns one upstream; see the module docs.
pub struct ServerActor {
    id: Arc<str>,
    def: Arc<ServerDef>,
    /// The definition's placement excludes this node: calls go to a peer that runs it.
    forwarded: bool,
    /// The peer the current connection forwards to.
    peer: Option<String>,
    /// Peers whose connection failed recently (avoided when picking the next one).
    peer_failures: Vec<(String, Instant)>,
    /// No live node may run this forwarded server right now: calls fail fast.
    no_peer: Option<String>,
    env: Arc<ServerEnv>,
    conn: Option<Conn>,
    generation: u64,
    /// The last generation whose failure was handled (its later exit is not a new one).
    failed_generation: Option<u64>,
    status: Status,
    restarts: u32,
    failures_in_row: u32,
    ready_at: Option<Instant>,
    ready_since: Option<std::time::SystemTime>,
    last_error: Option<LastError>,
    in_flight: usize,
    waiters: FairQueue<oneshot::Sender<Result<Conn, HubError>>>,
    exclusive: ExclusiveGate<oneshot::Sender<Result<Conn, HubError>>>,
    breaker: Breaker,
    catalog_tx: watch::Sender<Arc<Catalog>>,
    runtime_tx: watch::Sender<RuntimeStatus>,
    restart_waiters: Vec<oneshot::Sender<Result<RuntimeStatus, HubError>>>,
    health_failures: u32,
    health_check_running: bool,
    /// This server's share of the node's worker cap, held while its stdio worker runs.
    worker_slot: Option<tokio::sync::OwnedSemaphorePermit>,
    /// When the last call started or finished (idle TTL).
    last_call: Instant,
    latency: LatencyWindow,
    /// The upstream's era as last detected (kept across reconnects, forgotten when a
    /// handshake fails so the next one probes again).
    era: Option<super::transport::modern::UpstreamEra>,
    /// A Streamable HTTP definition whose URL turned out to be a legacy HTTP+SSE endpoint
    /// (spec fallback): later connections open SSE directly.
    sse_fallback: bool,
    /// Call metrics handles by (upstream tool, outcome), so a call does not build and look
    /// up its label set in the recorder every time.
    call_counters: HashMap<Box<str>, Vec<(&'static str, metrics::Counter)>>,
    call_duration: Option<metrics::Histogram>,
}

/// Tools whose counters are cached at most (the recorder still counts the rest).
const CACHED_COUNTERS: usize = 1024;

mod handshake;
mod workers;

enum Permit {
    Ready(Conn),
    Wait(oneshot::Receiver<Result<Conn, HubError>>),
    Refused(HubError),
}

impl ServerActor {
    /// A new actor for `def` and the receivers through which others read its catalog and
    /// runtime status.
    pub fn new(
        def: ServerDef,
        env: Arc<ServerEnv>,
    ) -> (
        Self,
        watch::Receiver<Arc<Catalog>>,
        watch::Receiver<RuntimeStatus>,
    ) {
        let (catalog_tx, catalog_rx) = watch::channel(Arc::new(Catalog::default()));
        let (runtime_tx, runtime_rx) = watch::channel(RuntimeStatus::starting());
        let forwarded = env.cluster.as_ref().is_some_and(|c| !c.runs_locally(&def));
        let actor = Self {
            id: Arc::from(def.id.as_str()),
            def: Arc::new(def),
            forwarded,
            peer: None,
            peer_failures: Vec::new(),
            no_peer: None,
            conn: None,
            generation: 0,
            failed_generation: None,
            status: Status::Starting,
            restarts: 0,
            failures_in_row: 0,
            ready_at: None,
            ready_since: None,
            last_error: None,
            in_flight: 0,
            waiters: FairQueue::default(),
            exclusive: ExclusiveGate::default(),
            breaker: Breaker::new(
                env.supervision.breaker_failures,
                env.supervision.breaker_open,
            ),
            catalog_tx,
            runtime_tx,
            restart_waiters: Vec::new(),
            health_failures: 0,
            health_check_running: false,
            era: None,
            sse_fallback: false,
            worker_slot: None,
            last_call: Instant::now(),
            latency: LatencyWindow::default(),
            call_counters: HashMap::new(),
            call_duration: None,
            env,
        };
        (actor, catalog_rx, runtime_rx)
    }

    fn publish_runtime(&self) {
        let catalog = self.catalog_tx.borrow().clone();
        // Read the latency figures before `send_replace`: a `borrow()` temporary inside the
        // struct literal would live until the end of the statement and deadlock the write.
        let (latency_p50_ms, latency_p99_ms) = {
            let current = self.runtime_tx.borrow();
            (current.latency_p50_ms, current.latency_p99_ms)
        };
        self.runtime_tx.send_replace(RuntimeStatus {
            status: self.status,
            pid: self.conn.as_ref().and_then(Conn::pid),
            started_at: self
                .ready_since
                .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
            restarts: self.restarts,
            last_error: self.last_error.clone(),
            in_flight: self.in_flight,
            queue_depth: self.waiters.len() + self.exclusive.len(),
            protocol_version: (!catalog.protocol_version.is_empty())
                .then(|| catalog.protocol_version.clone()),
            era: (!catalog.protocol_version.is_empty())
                .then(|| self.conn.as_ref().map(|c| c.era().as_str()))
                .flatten(),
            upstream_session: self
                .conn
                .as_ref()
                .and_then(Conn::upstream_session)
                .is_some(),
            forwarded_to: self.peer.clone(),
            tool_count: catalog.tools.len(),
            breaker: self.breaker.label(),
            latency_p50_ms,
            latency_p99_ms,
        });
    }

    /// The upstream's own name of `tool`, whether the call came through /mcp
    /// (`{id}__{tool}`) or /mcp/{id} (`{tool}`).
    fn upstream_tool<'a>(&self, tool: &'a str) -> &'a str {
        tool.strip_prefix(&*self.id)
            .and_then(|t| t.strip_prefix("__"))
            .unwrap_or(tool)
    }

    /// `mcp_hub_calls_total` and `mcp_hub_call_duration_seconds` for one finished call.
    fn count_call(&mut self, tool: &str, outcome: &'static str, took: Duration) {
        let tool = self.upstream_tool(tool);
        let cached = self
            .call_counters
            .get(tool)
            .and_then(|by_outcome| by_outcome.iter().find(|(o, _)| *o == outcome));
        if let Some((_, counter)) = cached {
            counter.increment(1);
        } else {
            let counter = metrics::counter!("mcp_hub_calls_total", "server" => self.id.clone(), "tool" => tool.to_string(), "outcome" => outcome);
            counter.increment(1);
            if self.call_counters.len() < CACHED_COUNTERS || self.call_counters.contains_key(tool) {
                self.call_counters
                    .entry(Box::from(tool))
                    .or_default()
                    .push((outcome, counter));
            }
        }
        let server = &self.id;
        self.call_duration
            .get_or_insert_with(
                || metrics::histogram!("mcp_hub_call_duration_seconds", "server" => server.clone()),
            )
            .record(took.as_secs_f64());
    }

    fn publish_load(&self) {
        let (in_flight, queue_depth) = (self.in_flight, self.waiters.len() + self.exclusive.len());
        self.runtime_tx.send_modify(|r| {
            r.in_flight = in_flight;
            r.queue_depth = queue_depth;
        });
    }

    /// Starts a new worker generation. Starts are paced hub-wide (a bounded number of
    /// spawns and handshakes at once), so a restart with a hundred stdio servers is not a
    /// stampede.
    fn connect(&mut self, ctx: &mut Context<Self>) {
        self.generation += 1;
        let generation = self.generation;
        if !self.take_worker_slot(ctx, generation) {
            return;
        }
        let permits = self.env.start_permits.clone();
        ctx.spawn(
            async move { permits.acquire_owned().await.ok() }
                .into_actor(self)
                .map(move |permit, act, ctx| {
                    if act.generation == generation && !matches!(act.status, Status::Stopped) {
                        act.open(ctx, generation, permit);
                    }
                }),
        );
    }

    /// What a transport of this server's `generation` is opened with.
    pub(super) fn open_args(&self, ctx: &mut Context<Self>, generation: u64) -> OpenArgs {
        OpenArgs {
            server: self.id.clone(),
            generation,
            events: ctx.address().recipient(),
            reply_to: ctx.address().recipient(),
            policy: self.env.upstream_policy.clone(),
            sessions: self.env.upstream_sessions.clone(),
        }
    }

    fn open(
        &mut self,
        ctx: &mut Context<Self>,
        generation: u64,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let args = self.open_args(ctx, generation);
        let opened = if let Some(cluster) = self.env.cluster.as_ref().filter(|_| self.forwarded) {
            let avoid: Vec<String> = self.peer_failures.iter().map(|(n, _)| n.clone()).collect();
            let Some(peer) = cluster.pick(&self.def, &avoid) else {
                let reason = format!(
                    "placed on other nodes ({}) and none of them is alive and reachable",
                    self.def.placement.describe()
                );
                // Waiting callers would only wait for a node that may never come.
                let err = HubError::ServerUnavailable {
                    server: self.id.to_string(),
                    reason: reason.clone(),
                    retry_after_seconds: 5,
                };
                for w in self
                    .waiters
                    .drain()
                    .into_iter()
                    .chain(self.exclusive.drain())
                {
                    let _ = w.slot.send(Err(err.clone()));
                }
                self.no_peer = Some(reason.clone());
                return self.on_failure(ctx, generation, reason);
            };
            self.no_peer = None;
            tracing::info!(event = "server.forward", server = %self.id, node = %peer.id, "server.forward");
            self.peer = Some(peer.id.clone());
            // Peers' addresses come from the cluster config, not from the registry; the
            // session with a peer is this instance's own (not shared through Redis).
            let args = OpenArgs {
                policy: Arc::new(super::ssrf::UpstreamPolicy::allow_all()),
                sessions: super::upstream_session::UpstreamSessionLimits {
                    store: None,
                    ..args.sessions.clone()
                },
                ..args
            };
            HttpConn::new(&cluster.forward_def(&self.def, &peer), args).map(Conn::Http)
        } else {
            self.open_local(args)
        };
        let conn = match opened {
            Ok(c) => c,
            Err(e) => return self.on_failure(ctx, generation, describe(&e)),
        };
        self.handshake(ctx, generation, conn, permit);
    }

    fn open_local(&self, args: OpenArgs) -> Result<Conn, HubError> {
        // Again at connect time: the definition may come from a store another instance (with
        // another policy) wrote, and IP literals never reach the policy's resolver.
        self.env
            .upstream_policy
            .check_def(&self.def)
            .map_err(|e| HubError::ServerUnavailable {
                server: self.id.to_string(),
                reason: format!("{}: {}", e.field, e.message),
                retry_after_seconds: 60,
            })?;
        match self.def.transport {
            TransportKind::Stdio => StdioConn::spawn(
                &self.def,
                &self.env.self_exe,
                self.env.supervision.stop_grace,
                self.env.children.clone(),
                args,
            )
            .map(Conn::Stdio),
            TransportKind::StreamableHttp if self.sse_fallback => {
                SseConn::open(&self.def, args).map(Conn::Sse)
            }
            TransportKind::StreamableHttp => HttpConn::new(&self.def, args).map(Conn::Http),
            TransportKind::Sse => SseConn::open(&self.def, args).map(Conn::Sse),
            TransportKind::Rest => {
                RestConn::new(self.def.clone(), self.env.external_timeout_ms, args).map(Conn::Rest)
            }
        }
    }

    fn on_ready(&mut self, conn: Conn, catalog: Catalog) {
        tracing::info!(
            event = "worker.spawned", server = %self.id, pid = conn.pid(), tools = catalog.tools.len(),
            protocol_version = %catalog.protocol_version, "worker.spawned"
        );
        metrics::counter!("mcp_hub_worker_spawns_total", "server" => self.id.clone()).increment(1);
        self.conn = Some(conn);
        self.status = Status::Ready;
        self.ready_at = Some(Instant::now());
        self.ready_since = Some(std::time::SystemTime::now());
        self.catalog_tx.send_replace(Arc::new(catalog));
        let _ = self.env.events.send(HubEvent::CatalogChanged {
            server: self.id.clone(),
        });
        self.health_failures = 0;
        if self.breaker.label() != "closed" {
            self.breaker.reset();
            tracing::info!(event = "server.breaker", server = %self.id, state = "closed", reason = "worker restarted", "server.breaker");
        }
        self.grant_waiters();
        self.publish_runtime();
        let status = self.runtime_tx.borrow().clone();
        for w in self.restart_waiters.drain(..) {
            let _ = w.send(Ok(status.clone()));
        }
    }

    fn on_failure(&mut self, ctx: &mut Context<Self>, generation: u64, reason: String) {
        if generation != self.generation || matches!(self.status, Status::Stopped | Status::Failed)
        {
            return;
        }
        self.failed_generation = Some(generation);
        if let Some(conn) = self.conn.take() {
            conn.close();
        }
        if let Some(peer) = self.peer.take() {
            // Try another eligible node next; this one is avoided while its record may
            // still look alive (the node TTL).
            self.peer_failures
                .retain(|(n, at)| *n != peer && at.elapsed() < PEER_FAILURE_MEMORY);
            self.peer_failures.push((peer, Instant::now()));
        }
        let policy = &self.env.supervision;
        if self
            .ready_at
            .is_some_and(|t| t.elapsed() >= policy.stable_after)
        {
            self.failures_in_row = 0;
        }
        self.ready_at = None;
        self.ready_since = None;
        self.failures_in_row += 1;
        self.last_error = Some(LastError {
            at: now_secs(),
            reason: reason.clone(),
        });
        for w in self.restart_waiters.drain(..) {
            let _ = w.send(Err(HubError::ServerUnavailable {
                server: self.id.to_string(),
                reason: reason.clone(),
                retry_after_seconds: 1,
            }));
        }
        // A forwarder has no worker of its own to crash-loop: it keeps looking for a peer.
        if self.failures_in_row >= policy.crash_loop_limit && !self.forwarded {
            // A crash loop: stop trying until an operator acts (Restart).
            self.status = Status::Failed;
            self.worker_slot = None;
            tracing::error!(
                event = "worker.failed", server = %self.id, reason = %reason, failures_in_row = self.failures_in_row,
                "worker.failed: crash loop; restart it with POST /api/servers/{}/restart", self.id
            );
            let err = HubError::ServerUnavailable {
                server: self.id.to_string(),
                reason: format!("crash loop ({} failures in a row, last: {reason}); an operator must restart it", self.failures_in_row),
                retry_after_seconds: 30,
            };
            for w in self
                .waiters
                .drain()
                .into_iter()
                .chain(self.exclusive.drain())
            {
                let _ = w.slot.send(Err(err.clone()));
            }
            self.publish_runtime();
            return;
        }
        self.restarts += 1;
        self.status = Status::Restarting;
        let delay = if self.forwarded {
            policy.backoff(self.failures_in_row).min(PEER_RETRY_MAX)
        } else {
            policy.backoff(self.failures_in_row)
        };
        tracing::warn!(event = "worker.restart", server = %self.id, reason = %reason, delay_ms = delay.as_millis() as u64, restarts = self.restarts, "worker.restart");
        metrics::counter!("mcp_hub_worker_restarts_total", "server" => self.id.clone(), "reason" => "failure").increment(1);
        ctx.run_later(delay, |act, ctx| act.connect(ctx));
        self.publish_runtime();
    }

    fn health_check(&mut self, ctx: &mut Context<Self>) {
        if self.status != Status::Ready || self.health_check_running {
            return;
        }
        let Some(conn) = self.conn.clone() else {
            return;
        };
        self.health_check_running = true;
        let generation = self.generation;
        let timeout = self.env.supervision.health_timeout;
        let ping = async move { tokio::time::timeout(timeout, conn.ping()).await };
        ctx.spawn(ping.into_actor(self).map(move |res, act, ctx| {
            act.health_check_running = false;
            if act.generation != generation {
                return;
            }
            let error = match res {
                Ok(Ok(_)) => {
                    act.health_failures = 0;
                    return;
                }
                Ok(Err(e)) => describe(&e),
                Err(_) => format!("no answer to ping within {} ms", timeout.as_millis()),
            };
            act.health_failures += 1;
            tracing::warn!(event = "worker.health.fail", server = %act.id, error = %error, failures = act.health_failures, "worker.health.fail");
            if act.health_failures >= act.env.supervision.health_failures {
                let reason = format!("{} health checks failed in a row (last: {error})", act.health_failures);
                if let Some(conn) = &act.conn {
                    conn.abort(); // hung: no graceful stop
                }
                act.on_failure(ctx, generation, reason);
            }
        }));
    }

    fn acquire(&mut self, id: u64, user: Arc<str>) -> Permit {
        match self.status {
            Status::OverCapacity => return Permit::Refused(self.over_capacity_error()),
            Status::Stopped | Status::Failed => {
                return Permit::Refused(HubError::ServerUnavailable {
                    server: self.id.to_string(),
                    reason: format!("server is {:?}", self.status).to_lowercase(),
                    retry_after_seconds: 5,
                })
            }
            _ => {}
        }
        if let (None, Some(reason)) = (&self.conn, &self.no_peer) {
            return Permit::Refused(HubError::ServerUnavailable {
                server: self.id.to_string(),
                reason: reason.clone(),
                retry_after_seconds: 5,
            });
        }
        if let Some(conn) = &self.conn {
            if self.in_flight < self.def.max_concurrency() && self.waiters.is_empty() {
                self.in_flight += 1;
                return Permit::Ready(conn.clone());
            }
        }
        if self.waiters.len() >= QUEUE_CAP {
            return Permit::Refused(HubError::Busy {
                server: self.id.to_string(),
                retry_after_seconds: 1,
            });
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.push(Waiter { id, user, slot: tx });
        Permit::Wait(rx)
    }

    /// An exclusive call is over: the next one waiting at the gate joins the queue.
    fn leave_exclusive(&mut self, id: u64) {
        let Some(next) = self.exclusive.leave(id, |slot| !slot.is_closed()) else {
            return;
        };
        match &self.conn {
            Some(conn)
                if self.in_flight < self.def.max_concurrency() && self.waiters.is_empty() =>
            {
                if next.slot.send(Ok(conn.clone())).is_ok() {
                    self.in_flight += 1;
                }
            }
            // Behind the others (no QUEUE_CAP check: it was admitted when it arrived).
            _ => self.waiters.push(next),
        }
    }

    fn release(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.grant_waiters();
    }

    fn grant_waiters(&mut self) {
        let Some(conn) = &self.conn else { return };
        while self.in_flight < self.def.max_concurrency() {
            let Some(waiter) = self.waiters.pop() else {
                break;
            };
            if waiter.slot.send(Ok(conn.clone())).is_ok() {
                self.in_flight += 1;
            }
        }
    }

    /// A modern Streamable HTTP upstream has no stream to announce `list_changed` on (the
    /// hub does not hold a `subscriptions/listen` open): its lists are re-read every
    /// [`MODERN_RELIST`] and clients hear `list_changed` only when they differ.
    fn relist_modern(&mut self, ctx: &mut Context<Self>) {
        let modern_http = matches!(&self.conn, Some(c @ Conn::Http(_)) if c.era() == super::transport::modern::UpstreamEra::Modern);
        if self.status == Status::Ready && modern_http {
            self.reload_lists_if(ctx, true);
        }
    }

    fn reload_lists(&mut self, ctx: &mut Context<Self>) {
        self.reload_lists_if(ctx, false);
    }

    /// Re-reads the lists; with `only_if_changed`, an identical result changes nothing.
    fn reload_lists_if(&mut self, ctx: &mut Context<Self>, only_if_changed: bool) {
        let Some(conn) = self.conn.clone() else {
            return;
        };
        let generation = self.generation;
        let server = self.id.clone();
        let mut catalog = self.catalog_tx.borrow().handshake_copy();
        let work = async move {
            conn.load_lists(&server, &mut catalog)
                .await
                .map(|_| catalog)
        };
        ctx.spawn(work.into_actor(self).map(move |res, act, _| {
            if act.generation != generation {
                return;
            }
            match res {
                Ok(catalog) => {
                    if only_if_changed && act.catalog_tx.borrow().same_lists(&catalog) {
                        return;
                    }
                    act.catalog_tx.send_replace(Arc::new(catalog));
                    let _ = act.env.events.send(HubEvent::CatalogChanged { server: act.id.clone() });
                    act.publish_runtime();
                }
                Err(e) => tracing::warn!(event = "worker.list_reload_failed", server = %act.id, error = %describe(&e)),
            }
        }));
    }
}

/// What a call's outcome says about the upstream's health (`None`: nothing).
fn breaker_outcome(res: &Result<Box<RawValue>, HubError>) -> Option<bool> {
    match res {
        Ok(_) | Err(HubError::Upstream(_)) => Some(true),
        Err(
            HubError::Timeout { .. }
            | HubError::ServerUnavailable { .. }
            | HubError::UpstreamProtocol { .. },
        ) => Some(false),
        // A crash fails every call in flight at once; supervision (restart, crash-loop
        // limit) answers it, and counting each call would open the breaker on one crash.
        Err(_) => None,
    }
}

fn describe(e: &HubError) -> String {
    match e {
        HubError::Upstream(rpc) => format!("{} ({})", rpc.message, rpc.code),
        HubError::UpstreamProtocol { detail, .. } => detail.clone(),
        HubError::ServerUnavailable { reason, .. } | HubError::ServerRestarted { reason, .. } => {
            reason.clone()
        }
        other => other.to_string(),
    }
}

impl Actor for ServerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
        self.connect(ctx);
        let every = self.env.supervision.health_interval;
        if !every.is_zero() {
            ctx.run_interval(every, |act, ctx| act.health_check(ctx));
        }
        ctx.run_interval(MODERN_RELIST, |act, ctx| act.relist_modern(ctx));
        self.start_worker_timers(ctx);
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.status = Status::Stopped;
        if let Some(conn) = self.conn.take() {
            conn.close();
        }
        for w in self
            .waiters
            .drain()
            .into_iter()
            .chain(self.exclusive.drain())
        {
            let _ = w.slot.send(Err(HubError::ServerUnavailable {
                server: self.id.to_string(),
                reason: "server stopped".into(),
                retry_after_seconds: 5,
            }));
        }
        tracing::info!(event = "worker.terminated", server = %self.id, reason = "stopped", "worker.terminated");
        self.publish_runtime();
        Running::Stop
    }
}

impl Handler<Forward> for ServerActor {
    type Result = ResponseActFuture<Self, Result<Box<RawValue>, HubError>>;

    fn handle(&mut self, msg: Forward, ctx: &mut Self::Context) -> Self::Result {
        self.last_call = Instant::now();
        if self.status == Status::Idle {
            self.wake(ctx);
        }
        let upstream_tool = msg.tool.as_deref().map(|t| self.upstream_tool(t));
        let timeout_ms = self
            .def
            .timeout_for(upstream_tool)
            .unwrap_or(self.env.default_timeout_ms);
        let exclusive = self.def.is_exclusive(upstream_tool);
        let start = tokio::time::Instant::now();
        let deadline = start + Duration::from_millis(timeout_ms);
        let extension =
            self.env
                .progress_hard_max
                .zip(msg.sink.as_ref())
                .map(|(hard_max, sink)| Extension {
                    clock: sink.clock.clone(),
                    hard_max,
                });
        let admission = self.breaker.admit(Instant::now());
        let probe = matches!(admission, Ok(Admission::Probe));
        let id = msg.upstream_id;
        let permit = match admission {
            Ok(_) if exclusive && !self.exclusive.try_enter(id) => {
                let (tx, rx) = oneshot::channel();
                self.exclusive.wait(Waiter {
                    id,
                    user: msg.ctx.user.clone(),
                    slot: tx,
                });
                Permit::Wait(rx)
            }
            Ok(_) => self.acquire(msg.upstream_id, msg.ctx.user.clone()),
            Err(wait) => Permit::Refused(HubError::ServerUnavailable {
                server: self.id.to_string(),
                reason: format!(
                    "circuit breaker open after {} failures in a row (last: {})",
                    self.env.supervision.breaker_failures,
                    self.last_error
                        .as_ref()
                        .map_or("unknown", |e| e.reason.as_str())
                ),
                retry_after_seconds: wait.as_secs_f64().ceil().max(1.0) as u64,
            }),
        };
        if exclusive && matches!(permit, Permit::Refused(_)) {
            self.leave_exclusive(id);
        }
        self.publish_load();
        let server = self.id.clone();
        let tool = msg.tool.clone();
        let request_id = msg.ctx.request_id.clone();
        if let Some(tool) = &tool {
            tracing::info!(event = "tool.call.proxy.start", request_id = %request_id, server = %server, tool = %tool, upstream = %self.def.url.as_deref().or(self.def.base_url.as_deref()).map_or_else(|| "stdio".to_string(), crate::server::transport::rest::redact_url), "tool.call.proxy.start");
        }
        let started = Instant::now();
        let call = OutCall {
            ctx: msg.ctx,
            id: msg.upstream_id,
            method: msg.method,
            params: msg.params,
            progress: msg.progress,
            sink: msg.sink,
        };
        let work = async move {
            let conn = match permit {
                Permit::Ready(conn) => conn,
                Permit::Refused(e) => return (Err(e), false),
                Permit::Wait(rx) => match tokio::time::timeout_at(deadline, rx).await {
                    Ok(Ok(Ok(conn))) => conn,
                    Ok(Ok(Err(e))) => return (Err(e), false),
                    Ok(Err(_)) => {
                        return (
                            Err(HubError::ServerUnavailable {
                                server: server.to_string(),
                                reason: "server stopped".into(),
                                retry_after_seconds: 5,
                            }),
                            false,
                        )
                    }
                    Err(_) => {
                        return (
                            Err(HubError::Timeout {
                                layer: "server",
                                timeout_ms,
                            }),
                            false,
                        )
                    }
                },
            };
            let id = call.id;
            let call_ctx = call.ctx.clone();
            let timeout = Duration::from_millis(timeout_ms);
            let res = match run_until(conn.call(call), start, timeout, extension.as_ref()).await {
                Ok(res) => res,
                Err(expired) => {
                    conn.cancel_abandoned(id, "timeout", &call_ctx);
                    Err(match expired {
                        Expired::Timeout => HubError::Timeout {
                            layer: "server",
                            timeout_ms,
                        },
                        Expired::HardMax => HubError::TimeoutHardMax {
                            layer: "server",
                            hard_max_ms: extension
                                .as_ref()
                                .map_or(timeout_ms, |e| e.hard_max.as_millis() as u64),
                        },
                    })
                }
            };
            (res, true)
        };
        Box::pin(work.into_actor(self).map(move |(res, granted), act, ctx| {
            if granted {
                act.release();
                act.record_latency(started.elapsed());
            }
            // A forwarder whose peer stopped answering moves to another eligible node now,
            // instead of waiting for the peer's node record to expire.
            if let (true, Some(_), Err(HubError::ServerUnavailable { reason, .. })) =
                (act.forwarded, &act.conn, &res)
            {
                if reason.starts_with("upstream unreachable") {
                    let generation = act.generation;
                    act.on_failure(ctx, generation, format!("peer node: {reason}"));
                }
            }
            if exclusive {
                act.leave_exclusive(id);
            }
            if granted || probe {
                let before = act.breaker.label();
                let outcome = if granted { breaker_outcome(&res) } else { None };
                if let (Some(false), Err(e)) = (outcome, &res) {
                    act.last_error = Some(LastError { at: now_secs(), reason: describe(e) });
                }
                act.breaker.record(outcome, probe, Instant::now());
                if act.breaker.label() != before {
                    tracing::warn!(event = "server.breaker", server = %act.id, state = act.breaker.label(), "server.breaker");
                    act.runtime_tx.send_modify(|r| r.breaker = act.breaker.label());
                }
            }
            act.publish_load();
            if let Some(tool) = &tool {
                let latency_ms = started.elapsed().as_millis() as u64;
                match &res {
                    Ok(_) => tracing::info!(event = "tool.call.proxy.done", request_id = %request_id, server = %act.id, tool = %tool, status = "ok", latency_ms, "tool.call.proxy.done"),
                    Err(e) => tracing::warn!(event = "tool.call.proxy.done", request_id = %request_id, server = %act.id, tool = %tool, status = e.kind(), latency_ms, error = %e, "tool.call.proxy.done"),
                }
                act.count_call(tool, res.as_ref().err().map_or("ok", HubError::kind), started.elapsed());
            }
            res
        }))
    }
}

impl Handler<Cancel> for ServerActor {
    type Result = ();

    fn handle(&mut self, msg: Cancel, _: &mut Self::Context) {
        // Still queued: drop it, it was never sent.
        if self.waiters.remove(msg.upstream_id) || self.exclusive.remove(msg.upstream_id) {
            self.publish_load();
            return;
        }
        if let Some(conn) = &self.conn {
            conn.cancel(msg.upstream_id, &msg.reason);
        }
    }
}

impl Handler<ClientSessionClosed> for ServerActor {
    type Result = ();

    fn handle(&mut self, msg: ClientSessionClosed, _: &mut Self::Context) {
        if let Some(Conn::Http(conn)) = &self.conn {
            conn.close_context(&super::upstream_session::client_context(&msg.session));
        }
    }
}

impl Handler<Restart> for ServerActor {
    type Result = ResponseFuture<Result<RuntimeStatus, HubError>>;

    fn handle(&mut self, _: Restart, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.restart_waiters.push(tx);
        tracing::info!(event = "worker.restart", server = %self.id, reason = "operator", restarts = self.restarts + 1, "worker.restart");
        metrics::counter!("mcp_hub_worker_restarts_total", "server" => self.id.clone(), "reason" => "operator").increment(1);
        if let Some(conn) = self.conn.take() {
            conn.close();
        }
        self.restarts += 1;
        self.failures_in_row = 0;
        self.ready_at = None;
        self.ready_since = None;
        self.status = Status::Restarting;
        self.connect(ctx);
        self.publish_runtime();
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err(HubError::Internal("server actor stopped".into())))
        })
    }
}

impl Handler<Shutdown> for ServerActor {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<ConnEvent> for ServerActor {
    type Result = ();

    fn handle(&mut self, msg: ConnEvent, ctx: &mut Self::Context) {
        match msg {
            ConnEvent::Closed { generation, reason } => {
                if generation == self.generation && self.conn.is_some() {
                    tracing::warn!(event = "worker.terminated", server = %self.id, pid = self.conn.as_ref().and_then(Conn::pid), reason = %reason, "worker.terminated");
                }
                // This generation's failure (e.g. failed health checks, which killed the
                // child) may already be counted; its exit is then the consequence.
                if self.failed_generation != Some(generation) {
                    self.on_failure(ctx, generation, reason);
                }
            }
            ConnEvent::ListChanged { generation } if generation == self.generation => {
                self.reload_lists(ctx)
            }
            ConnEvent::ListChanged { .. } => {}
        }
    }
}

impl Handler<ReplyToUpstream> for ServerActor {
    type Result = ();

    fn handle(&mut self, msg: ReplyToUpstream, _: &mut Self::Context) {
        if let Some(conn) = &self.conn {
            conn.reply(msg);
        }
    }
}

impl Drop for ServerActor {
    /// An actor that dies without `stopping` (a panic in a handler) must not leave its
    /// worker running: the Supervisor starts a new actor with a new worker.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.close();
        }
    }
}
