//! The ServerActor's worker economy on this node: the per-node cap on running stdio workers
//! (`supervision.worker_max`), stopping idle stdio workers (`supervision.worker_idle_ttl_secs`)
//! and starting them again on the next call, the latency window published once a second,
//! and the test-only faults (`TestFault`). A child module of `actor` so it can reach the
//! actor's state; kept apart to keep that file small.

use actix::prelude::*;
use std::time::{Duration, Instant};

use super::{ServerActor, Status};
use crate::error::HubError;
use crate::registry::TransportKind;
use crate::server::messages::TestFault;

impl ServerActor {
    /// Whether this server's worker counts against the node's worker cap.
    fn capped(&self) -> bool {
        self.runs_child() && self.env.worker_slots.is_some()
    }

    /// Whether this node runs the server as a child process of its own (a stdio server that
    /// is not forwarded to a peer).
    pub(super) fn runs_child(&self) -> bool {
        self.def.transport == TransportKind::Stdio && !self.forwarded
    }

    /// The error calls get while the server waits for a worker slot.
    pub(super) fn over_capacity_error(&self) -> HubError {
        HubError::ServerUnavailable {
            server: self.id.to_string(),
            reason: format!(
                "over capacity: this node already runs its maximum of {} stdio workers \
                 (supervision.worker_max, MCP_WORKER_MAX); the server starts when a worker stops",
                self.env.supervision.worker_max
            ),
            retry_after_seconds: 5,
        }
    }

    /// Takes a worker slot for generation `generation` if this server needs one. Returns
    /// false when none is free: the server is then `over_capacity` and starts (with a new
    /// generation) as soon as a slot frees.
    pub(super) fn take_worker_slot(&mut self, ctx: &mut Context<Self>, generation: u64) -> bool {
        if !self.capped() || self.worker_slot.is_some() {
            return true;
        }
        let Some(slots) = self.env.worker_slots.clone() else {
            return true;
        };
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            self.worker_slot = Some(permit);
            return true;
        }
        self.status = Status::OverCapacity;
        tracing::warn!(event = "worker.over_capacity", server = %self.id, worker_max = self.env.supervision.worker_max, "worker.over_capacity");
        let err = self.over_capacity_error();
        for w in self.waiters.drain() {
            let _ = w.slot.send(Err(err.clone()));
        }
        for w in self.restart_waiters.drain(..) {
            let _ = w.send(Err(err.clone()));
        }
        self.publish_runtime();
        ctx.spawn(
            async move { slots.acquire_owned().await.ok() }
                .into_actor(self)
                .map(move |permit, act, ctx| {
                    if act.generation != generation || act.status != Status::OverCapacity {
                        return;
                    }
                    act.worker_slot = permit;
                    act.status = Status::Starting;
                    act.connect(ctx);
                    act.publish_runtime();
                }),
        );
        false
    }

    /// A call arrived for an idle server: start its worker; the call waits in the queue.
    pub(super) fn wake(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(event = "worker.wake", server = %self.id, "worker.wake");
        self.status = Status::Starting;
        self.connect(ctx);
        self.publish_runtime();
    }

    /// Stops the stdio worker if it had no call for the idle TTL.
    fn stop_if_idle(&mut self) {
        let ttl = self.env.supervision.worker_idle_ttl;
        if !self.runs_child()
            || self.status != Status::Ready
            || self.in_flight > 0
            || !self.waiters.is_empty()
            || self.last_call.elapsed() < ttl
        {
            return;
        }
        // A new generation: the closing child's exit is not a failure to restart from.
        self.generation += 1;
        let pid = self.conn.as_ref().and_then(|c| c.pid());
        if let Some(conn) = self.conn.take() {
            conn.close();
        }
        self.worker_slot = None;
        self.status = Status::Idle;
        self.ready_at = None;
        self.ready_since = None;
        tracing::info!(event = "worker.idle_stop", server = %self.id, pid, idle_secs = ttl.as_secs(), "worker.idle_stop");
        self.publish_runtime();
    }

    /// Timers of this module, set when the actor starts.
    pub(super) fn start_worker_timers(&mut self, ctx: &mut Context<Self>) {
        let ttl = self.env.supervision.worker_idle_ttl;
        if !ttl.is_zero() && self.runs_child() {
            let every = (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
            ctx.run_interval(every, |act, _| act.stop_if_idle());
        }
        ctx.run_interval(Duration::from_secs(1), |act, _| act.publish_latency());
    }

    /// Records a finished call's latency.
    pub(super) fn record_latency(&mut self, took: Duration) {
        let now = Instant::now();
        self.last_call = now;
        self.latency.record(took, now);
    }

    fn publish_latency(&mut self) {
        let p = self.latency.percentiles(Instant::now());
        let (p50, p99) = (p.map(|p| p.0), p.map(|p| p.1));
        let current = self.runtime_tx.borrow().latency_p50_ms;
        if current.is_none() && p50.is_none() {
            return;
        }
        self.runtime_tx.send_modify(|r| {
            r.latency_p50_ms = p50;
            r.latency_p99_ms = p99;
        });
    }
}

impl Handler<TestFault> for ServerActor {
    type Result = ();

    fn handle(&mut self, msg: TestFault, ctx: &mut Self::Context) {
        if !self.env.supervision.test_hooks {
            tracing::warn!(event = "server.test_hook_refused", server = %self.id, "test hooks are off (supervision.test_hooks)");
            return;
        }
        match msg {
            TestFault::Stop => ctx.stop(),
            TestFault::Panic => panic!("test hook: ServerActor {} panics", self.id),
        }
    }
}
