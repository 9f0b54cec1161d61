//! Running load: closed loop (N sessions calling back to back) or open loop (R calls/s at
//! fixed intervals, spread over the sessions).
//!
//! Open loop is measured from each call's *scheduled* send time, so when the target falls
//! behind, the wait for a free session counts as latency (no coordinated omission). Calls
//! still unsent when the run's grace period ends count as `backlog` failures.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::mcp::{AcceptMode, CallError, ClientConfig, Endpoint, Protocol, Session, ToolCall};
use crate::procstat::{ProcUsage, Sampler};
use crate::stats::{Latency, Recorder};

/// What each call does.
#[derive(Debug, Clone)]
pub enum Op {
    /// `tools/call`, cycling through these tool names, with these raw JSON arguments.
    CallTool {
        /// Tool names (call i uses `tools[i % len]`).
        tools: Vec<String>,
        /// Raw JSON `arguments`.
        arguments: String,
    },
    /// `tools/list`, following `nextCursor` to the last page; one call = the whole list.
    ListTools,
}

/// A run's parameters.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Name in reports (`direct`, `hub`, ...).
    pub label: String,
    /// MCP endpoint URL.
    pub url: String,
    /// What each call does.
    pub op: Op,
    /// Sessions (each one connection).
    pub sessions: usize,
    /// Open loop at this many calls/s; `None` = closed loop.
    pub rate: Option<f64>,
    /// Load before measuring starts (not recorded).
    pub warmup: Duration,
    /// Measured time.
    pub duration: Duration,
    /// `Accept` of POSTs.
    pub accept: AcceptMode,
    /// Protocol era of the clients.
    pub protocol: Protocol,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Processes to measure: (role, pid).
    pub processes: Vec<(String, u32)>,
}

/// Figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Name.
    pub label: String,
    /// `closed` or `open`.
    pub mode: String,
    /// Endpoint.
    pub url: String,
    /// Sessions.
    pub sessions: usize,
    /// Offered rate (open loop).
    pub rate: Option<f64>,
    /// `Accept` mode.
    pub accept: AcceptMode,
    /// Protocol era of the clients.
    pub protocol: Protocol,
    /// Measured seconds (from start to the last answer of the window).
    pub elapsed_s: f64,
    /// Calls in the window.
    pub requests: u64,
    /// Successful calls.
    pub successes: u64,
    /// Failed calls.
    pub failures: u64,
    /// Failures by kind (`http 503`, `jsonrpc -32000`, `timeout`, `connect`, `backlog`).
    pub failures_by_kind: BTreeMap<String, u64>,
    /// A few error messages.
    pub error_samples: Vec<String>,
    /// Sessions that failed to initialize.
    pub init_failures: u64,
    /// Successful calls per second.
    pub rps: f64,
    /// Latency of successful calls.
    pub latency: Latency,
    /// Per-request latency (list pages), when a call is several requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_latency: Option<Latency>,
    /// Items seen per call (tools in a full list), when listing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_per_call: Option<u64>,
    /// CPU and memory of the measured processes (and of loadgen itself).
    pub processes: Vec<ProcUsage>,
    /// Busy cores of the whole machine over the window (from `/proc/stat`).
    pub machine_busy_cores: f64,
    /// Of which interrupt time (irq + softirq: much of loopback TCP), in no process's count.
    pub irq_cores: f64,
    /// Busy cores used neither by the measured processes, loadgen nor interrupts: other
    /// work on a shared machine (a build, say) competing for the same cores.
    pub other_cores: f64,
}

impl RunReport {
    /// The usage of the process with `role`.
    pub fn process(&self, role: &str) -> Option<&ProcUsage> {
        self.processes.iter().find(|p| p.role == role)
    }
}

struct WorkerOut {
    rec: Recorder,
    pages: Recorder,
    items: u64,
    last: Instant,
}

/// Opens every session, then runs the load and measures.
pub async fn run(spec: &LoadSpec) -> Result<RunReport, String> {
    let endpoint = Arc::new(Endpoint::parse(&spec.url)?);
    let cfg = ClientConfig {
        endpoint,
        accept: spec.accept,
        protocol: spec.protocol,
        timeout: spec.timeout,
    };
    let (sessions, init_failures, first_err) = open_sessions(&cfg, spec.sessions.max(1)).await;
    if sessions.is_empty() {
        return Err(format!(
            "{}: no session could initialize at {}: {}",
            spec.label,
            spec.url,
            first_err.unwrap_or_default()
        ));
    }
    let n = sessions.len();
    let start = Instant::now() + Duration::from_millis(20);
    let t0 = start + spec.warmup;
    let end = t0 + spec.duration;
    let hard_end = end + spec.timeout;
    let ticket = Arc::new(AtomicU64::new(0));
    let total = spec
        .rate
        .map(|r| (r * (spec.warmup + spec.duration).as_secs_f64()).floor() as u64);
    let interval = spec
        .rate
        .map(|r| Duration::from_secs_f64(1.0 / r.max(1e-6)));
    let mut workers = JoinSet::new();
    for (k, session) in sessions.into_iter().enumerate() {
        let w = Worker {
            session,
            op: spec.op.clone(),
            k,
            start,
            t0,
            end,
            hard_end,
            ticket: ticket.clone(),
            total,
            interval,
        };
        workers.spawn(w.run());
    }
    tokio::time::sleep_until(t0).await;
    let mut samplers: Vec<Sampler> = spec
        .processes
        .iter()
        .map(|(role, pid)| Sampler::start(role, *pid))
        .collect();
    samplers.push(Sampler::start("loadgen", std::process::id()));
    let machine_start = crate::procstat::machine_busy_seconds();
    let window = std::time::Instant::now();
    let mut rec = Recorder::new();
    let mut pages = Recorder::new();
    let mut items = 0;
    let mut last = end;
    let mut finished = Vec::with_capacity(n);
    while let Some(out) = workers.join_next().await {
        let (out, session) = out.map_err(|e| format!("worker failed: {e}"))?;
        finished.push(session);
        rec.merge(&out.rec);
        pages.merge(&out.pages);
        items = items.max(out.items);
        last = last.max(out.last);
    }
    let wall = window.elapsed().as_secs_f64().max(1e-9);
    let (machine_busy_cores, irq_cores) =
        match (machine_start, crate::procstat::machine_busy_seconds()) {
            (Some(a), Some(b)) => (
                ((b.0 + b.1) - (a.0 + a.1)).max(0.0) / wall,
                (b.1 - a.1).max(0.0) / wall,
            ),
            _ => (0.0, 0.0),
        };
    let mut processes = Vec::new();
    for s in samplers {
        processes.push(s.finish().await);
    }
    close_sessions(finished).await;
    let elapsed = (last.min(hard_end) - t0).as_secs_f64().max(1e-9);
    let successes = rec.successes();
    for p in &mut processes {
        if successes > 0 {
            p.cpu_us_per_call = Some(p.cpu_s * 1e6 / successes as f64);
        }
    }
    let listing = matches!(spec.op, Op::ListTools);
    let ours: f64 = processes.iter().map(|p| p.cores).sum();
    Ok(RunReport {
        label: spec.label.clone(),
        mode: if spec.rate.is_some() {
            "open"
        } else {
            "closed"
        }
        .into(),
        url: spec.url.clone(),
        sessions: n,
        rate: spec.rate,
        accept: spec.accept,
        protocol: spec.protocol,
        elapsed_s: elapsed,
        requests: successes + rec.failed(),
        successes,
        failures: rec.failed(),
        failures_by_kind: rec.failures().clone(),
        error_samples: rec.samples().to_vec(),
        init_failures,
        rps: successes as f64 / elapsed,
        latency: rec.latency(),
        request_latency: listing.then(|| pages.latency()),
        items_per_call: listing.then_some(items),
        processes,
        machine_busy_cores,
        irq_cores,
        other_cores: (machine_busy_cores - irq_cores - ours).max(0.0),
    })
}

/// Ends sessions with DELETE (outside the measured window), so runs do not pile up
/// sessions on the server (the hub limits sessions per user).
pub async fn close_sessions(sessions: Vec<Session>) {
    let mut set = JoinSet::new();
    for s in sessions {
        set.spawn(s.close());
    }
    while set.join_next().await.is_some() {}
}

/// Opens `n` sessions, 64 handshakes at a time.
pub async fn open_sessions(cfg: &ClientConfig, n: usize) -> (Vec<Session>, u64, Option<String>) {
    let mut out = Vec::with_capacity(n);
    let mut failed = 0;
    let mut first_err = None;
    let mut set = JoinSet::new();
    let mut started = 0;
    while started < n || !set.is_empty() {
        while started < n && set.len() < 64 {
            set.spawn(Session::open(cfg.clone()));
            started += 1;
        }
        match set.join_next().await {
            Some(Ok(Ok(s))) => out.push(s),
            Some(Ok(Err(e))) => {
                failed += 1;
                first_err.get_or_insert(e.to_string());
            }
            Some(Err(e)) => {
                failed += 1;
                first_err.get_or_insert(e.to_string());
            }
            None => break,
        }
    }
    (out, failed, first_err)
}

struct Worker {
    session: Session,
    op: Op,
    k: usize,
    start: Instant,
    t0: Instant,
    end: Instant,
    hard_end: Instant,
    ticket: Arc<AtomicU64>,
    total: Option<u64>,
    interval: Option<Duration>,
}

impl Worker {
    async fn run(mut self) -> (WorkerOut, Session) {
        let mut out = WorkerOut {
            rec: Recorder::new(),
            pages: Recorder::new(),
            items: 0,
            last: self.t0,
        };
        let params = self.prepared_params();
        match (self.total, self.interval) {
            (Some(total), Some(interval)) => {
                self.open_loop(&params, total, interval, &mut out).await
            }
            _ => self.closed_loop(&params, &mut out).await,
        }
        (out, self.session)
    }

    /// Prepared `tools/call`s, one per tool name (a name that cannot be a header value is
    /// left out; `run` checks the names first).
    fn prepared_params(&self) -> Vec<ToolCall> {
        match &self.op {
            Op::CallTool { tools, arguments } => tools
                .iter()
                .filter_map(|t| ToolCall::new(self.session.protocol(), t, arguments).ok())
                .collect(),
            Op::ListTools => Vec::new(),
        }
    }

    async fn closed_loop(&mut self, params: &[ToolCall], out: &mut WorkerOut) {
        tokio::time::sleep_until(self.start).await;
        let mut i = self.k;
        loop {
            let sent = Instant::now();
            if sent >= self.end {
                break;
            }
            let measured = sent >= self.t0;
            let res = self.once(params, i, measured, out).await;
            let done = Instant::now();
            if measured {
                record(out, res, done - sent);
                out.last = done;
            }
            i += 1;
        }
    }

    async fn open_loop(
        &mut self,
        params: &[ToolCall],
        total: u64,
        interval: Duration,
        out: &mut WorkerOut,
    ) {
        loop {
            let i = self.ticket.fetch_add(1, Ordering::Relaxed);
            if i >= total {
                break;
            }
            let scheduled = self.start + interval.mul_f64(i as f64);
            let measured = scheduled >= self.t0;
            if Instant::now() >= self.hard_end {
                // Too far behind to send in time: the rest of the schedule is backlog.
                if measured {
                    out.rec.unsent("backlog", 1);
                }
                continue;
            }
            tokio::time::sleep_until(scheduled).await;
            let res = self.once(params, i as usize, measured, out).await;
            let done = Instant::now();
            if measured {
                record(out, res, done - scheduled);
                out.last = done;
            }
        }
    }

    async fn once(
        &mut self,
        params: &[ToolCall],
        i: usize,
        measured: bool,
        out: &mut WorkerOut,
    ) -> Result<(), CallError> {
        match &self.op {
            Op::CallTool { .. } => {
                let p = &params[i % params.len().max(1)];
                self.session.call_tool(p).await
            }
            Op::ListTools => {
                let mut cursor: Option<String> = None;
                let mut items = 0u64;
                // Bounded: a server that never stops paging cannot hold the worker.
                for _ in 0..1000 {
                    let params = match &cursor {
                        Some(c) => {
                            format!(r#"{{"cursor":{}}}"#, serde_json::Value::from(c.as_str()))
                        }
                        None => "{}".to_string(),
                    };
                    let t = Instant::now();
                    let page = self.session.request("tools/list", &params).await?;
                    if measured {
                        out.pages.record_latency(t.elapsed());
                    }
                    #[derive(serde::Deserialize)]
                    struct Page {
                        #[serde(default)]
                        tools: Vec<serde::de::IgnoredAny>,
                        #[serde(rename = "nextCursor", default)]
                        next_cursor: Option<String>,
                    }
                    let page: Page = serde_json::from_str(&page)
                        .map_err(|e| CallError::Protocol(format!("tools/list result: {e}")))?;
                    items += page.tools.len() as u64;
                    match page.next_cursor {
                        Some(c) if !c.is_empty() => cursor = Some(c),
                        _ => break,
                    }
                }
                out.items = out.items.max(items);
                Ok(())
            }
        }
    }
}

fn record(out: &mut WorkerOut, res: Result<(), CallError>, latency: Duration) {
    match res {
        Ok(()) => out.rec.success(latency),
        Err(e) => out.rec.failure(&e),
    }
}
