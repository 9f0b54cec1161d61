//! `GET /metrics`: Prometheus text format.
//!
//! Two sources, disjoint by name:
//! - Events the actors record through the `metrics` facade (one macro call beside the log
//!   event of the same meaning), kept by the process-wide Prometheus recorder installed
//!   once by [`install`]: `mcp_hub_calls_total{server,tool,outcome}`,
//!   `mcp_hub_call_duration_seconds{server}` (histogram), `mcp_hub_rejected_total{reason}`,
//!   `mcp_hub_worker_restarts_total{server}`, `mcp_hub_worker_spawns_total{server}`,
//!   `mcp_hub_sessions{transport}`.
//! - State read at scrape time from this hub's directories (no actor hop per server, and
//!   nothing on the call path): `mcp_hub_server_status{server,status}` (1 for the current
//!   status, 0 for the others), `mcp_hub_server_in_flight`, `mcp_hub_server_queue_depth`,
//!   `mcp_hub_server_restarts` (since the server's worker actor started),
//!   `mcp_hub_server_tools`, `mcp_hub_servers{status}`, `mcp_hub_redis_connected`,
//!   `mcp_hub_build_info`.
//!
//! Session event-log sizes are not exported: summing them needs an `Inspect` round trip to
//! every session, too slow for every scrape; `GET /api/sessions` reports them on demand.
//!
//! The recorder is global (the `metrics` facade allows one per process), so hubs that share
//! a process (the integration tests) share the recorded families; the scrape-time families
//! are always this hub's own.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use mcp_hub_actors::registry;
use mcp_hub_actors::server::Status;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

use crate::error::ApiError;
use crate::security;
use crate::state::AppState;

/// Upper bounds (seconds) of the call latency buckets: 1 ms to 25 s, the hub timeout's range.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0,
];

/// How often histogram samples are folded into buckets when nobody scrapes, so memory
/// stays bounded on a hub Prometheus does not watch.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The statuses a server can be in, in the order they are exported.
const STATUSES: [Status; 7] = [
    Status::Starting,
    Status::Ready,
    Status::Restarting,
    Status::Stopped,
    Status::Failed,
    Status::OverCapacity,
    Status::Idle,
];

/// The recorder as a hub sees it: a handle to render from, or none when another recorder
/// owned the process first (then only the scrape-time families are exported).
#[derive(Clone)]
pub struct Metrics {
    handle: Option<PrometheusHandle>,
}

/// Installs the process-wide Prometheus recorder the first time it is called; later calls
/// (more hubs in one process) share it, since a second global recorder cannot be set.
pub fn install() -> Metrics {
    let handle = RECORDER.get_or_init(|| {
        let builder = match PrometheusBuilder::new().set_buckets_for_metric(
            Matcher::Full("mcp_hub_call_duration_seconds".into()),
            LATENCY_BUCKETS,
        ) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(event = "metrics.disabled", error = %e, "metrics.disabled");
                return None;
            }
        };
        match builder.install_recorder() {
            Ok(handle) => {
                describe();
                spawn_upkeep(handle.clone());
                Some(handle)
            }
            Err(e) => {
                tracing::warn!(event = "metrics.disabled", error = %e, "metrics.disabled");
                None
            }
        }
    });
    Metrics {
        handle: handle.clone(),
    }
}

fn spawn_upkeep(handle: PrometheusHandle) {
    // A plain thread: the recorder outlives any one actix system (tests start many).
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!(event = "metrics.upkeep_failed", error = %e, "metrics.upkeep_failed");
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "mcp_hub_calls_total",
        "Tool calls forwarded upstream, by server, tool and outcome (ok or the error kind)."
    );
    describe_histogram!(
        "mcp_hub_call_duration_seconds",
        Unit::Seconds,
        "Tool call latency at the server layer (queue wait included), by server."
    );
    describe_counter!(
        "mcp_hub_rejected_total",
        "Requests refused before reaching an upstream, by reason (busy, rate_limited, unavailable)."
    );
    describe_counter!(
        "mcp_hub_worker_restarts_total",
        "Upstream worker restarts after a failure, by server."
    );
    describe_counter!(
        "mcp_hub_worker_spawns_total",
        "Upstream workers that completed their handshake, by server."
    );
    describe_gauge!("mcp_hub_sessions", "Live client sessions, by transport.");
}

impl Metrics {
    /// The recorded families in Prometheus text format (empty without a recorder).
    pub fn render_recorded(&self) -> String {
        self.handle
            .as_ref()
            .map(PrometheusHandle::render)
            .unwrap_or_default()
    }
}

/// `GET /metrics`. Not behind the admin token (Prometheus scrapes it), but the Host and
/// Origin checks apply, so a DNS-rebinding page cannot read it.
pub async fn scrape(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let http = &state.settings.http;
    if !security::host_allowed(&req, http) || !security::origin_allowed(&req, http) {
        return ApiError::Forbidden(
            "Host or Origin not allowed: use a loopback host name, or add it to http.allowed_hosts / allowed_origins".into(),
        )
        .error_response();
    }
    // Disabled servers are registered but have no worker: they count as stopped.
    let registered = state
        .registry
        .send(registry::List)
        .await
        .unwrap_or_default();
    let mut out = state.metrics.render_recorded();
    render_live(&mut out, &state, registered.len());
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(out)
}

/// Appends the families read from this hub's state at scrape time.
fn render_live(out: &mut String, state: &AppState, registered: usize) {
    let servers = state.servers.snapshot();
    let runtimes: Vec<(String, mcp_hub_actors::server::RuntimeStatus)> = servers
        .iter()
        .map(|h| (h.id.to_string(), h.runtime.borrow().clone()))
        .collect();

    family(
        out,
        "mcp_hub_server_status",
        "gauge",
        "1 for the status each running server is in, 0 for the others.",
    );
    for (id, rt) in &runtimes {
        for st in STATUSES {
            let v = u8::from(rt.status == st);
            sample(
                out,
                "mcp_hub_server_status",
                &[("server", id), ("status", status_name(st))],
                v,
            );
        }
    }
    let per_server: [PerServerGauge; 4] = [
        (
            "mcp_hub_server_in_flight",
            "Calls in flight upstream, by server.",
            |r| r.in_flight as u64,
        ),
        (
            "mcp_hub_server_queue_depth",
            "Calls waiting for a slot or for readiness, by server.",
            |r| r.queue_depth as u64,
        ),
        (
            "mcp_hub_server_restarts",
            "Restarts since the server's worker actor started, by server.",
            |r| u64::from(r.restarts),
        ),
        (
            "mcp_hub_server_tools",
            "Tools each running server offers.",
            |r| r.tool_count as u64,
        ),
    ];
    for (name, help, get) in per_server {
        family(out, name, "gauge", help);
        for (id, rt) in &runtimes {
            sample(out, name, &[("server", id)], get(rt));
        }
    }

    let mut by_status: BTreeMap<&str, usize> =
        STATUSES.iter().map(|s| (status_name(*s), 0)).collect();
    for (_, rt) in &runtimes {
        *by_status.entry(status_name(rt.status)).or_default() += 1;
    }
    *by_status.entry("stopped").or_default() += registered.saturating_sub(runtimes.len());
    family(
        out,
        "mcp_hub_servers",
        "gauge",
        "Registered servers, by status (disabled ones are stopped).",
    );
    for (status, n) in by_status {
        sample(out, "mcp_hub_servers", &[("status", status)], n);
    }

    // Reported by the node heartbeat (every 5 s); configured="false" on the embedded store.
    family(out, "mcp_hub_redis_connected", "gauge", "1 when the shared Redis is reachable; configured=\"false\" while the hub runs on its embedded store.");
    let (configured, up) = match &state.redis_up {
        Some(up) => (
            "true",
            u64::from(up.load(std::sync::atomic::Ordering::Acquire)),
        ),
        None => ("false", 0),
    };
    sample(
        out,
        "mcp_hub_redis_connected",
        &[("configured", configured)],
        up,
    );

    family(
        out,
        "mcp_hub_build_info",
        "gauge",
        "Always 1; the version is in the label.",
    );
    sample(
        out,
        "mcp_hub_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
}

/// The snake_case name a status serializes to.
pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Starting => "starting",
        Status::Ready => "ready",
        Status::Restarting => "restarting",
        Status::Stopped => "stopped",
        Status::Failed => "failed",
        Status::OverCapacity => "over_capacity",
        Status::Idle => "idle",
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(
        out,
        "# HELP {name} {}",
        help.replace('\\', "\\\\").replace('\n', "\\n")
    );
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Call counts of one server, read back from the recorded families.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct CallTotals {
    /// Calls forwarded upstream.
    pub calls: u64,
    /// Those whose outcome was not `ok`.
    pub errors: u64,
    /// Mean latency in milliseconds, when any call was timed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_latency_ms: Option<f64>,
}

impl Metrics {
    /// Per-server call totals, read from the same families `/metrics` shows so the admin
    /// API and Prometheus never disagree. Costs one render: meant for the admin API, not
    /// the call path.
    pub fn call_totals(&self) -> BTreeMap<String, CallTotals> {
        let rendered = self.render_recorded();
        let mut totals: BTreeMap<String, CallTotals> = BTreeMap::new();
        let mut sums: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for line in rendered.lines() {
            let Some(s) = parse_sample(line) else {
                continue;
            };
            let Some(server) = s.label("server") else {
                continue;
            };
            match s.name {
                "mcp_hub_calls_total" => {
                    let t = totals.entry(server.to_string()).or_default();
                    t.calls += s.value as u64;
                    if s.label("outcome") != Some("ok") {
                        t.errors += s.value as u64;
                    }
                }
                "mcp_hub_call_duration_seconds_sum" => {
                    sums.entry(server.to_string()).or_default().0 += s.value
                }
                "mcp_hub_call_duration_seconds_count" => {
                    sums.entry(server.to_string()).or_default().1 += s.value
                }
                _ => {}
            }
        }
        for (server, (sum, count)) in sums {
            if count > 0.0 {
                totals.entry(server).or_default().mean_latency_ms = Some(sum / count * 1000.0);
            }
        }
        totals
    }
}

/// One sample line of the text format.
#[derive(Debug, PartialEq)]
pub struct Sample<'a> {
    /// Metric name (with `_sum`, `_count`, `_bucket` suffixes as written).
    pub name: &'a str,
    /// Labels, unescaped, in order.
    pub labels: Vec<(&'a str, String)>,
    /// The value.
    pub value: f64,
}

impl Sample<'_> {
    /// A label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses one sample line (`name{k="v",...} value [timestamp]`); `None` for comments,
/// blank lines and anything malformed.
pub fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(mut body) = rest.strip_prefix('{') {
        loop {
            body = body.trim_start_matches([',', ' ']);
            if let Some(after) = body.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, quoted) = body.split_once("=\"")?;
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return None;
            }
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    (_, other) => value.push(other),
                }
            };
            labels.push((key, value));
            body = &quoted[end + 1..];
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// A per-server gauge: metric name, help text, and how to read it from the runtime status.
type PerServerGauge = (
    &'static str,
    &'static str,
    fn(&mcp_hub_actors::server::RuntimeStatus) -> u64,
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_labels_with_escapes() {
        let s = parse_sample(r#"mcp_hub_calls_total{server="a\"b",tool="x,y",outcome="ok"} 3"#)
            .unwrap();
        assert_eq!(s.name, "mcp_hub_calls_total");
        assert_eq!(s.label("server"), Some("a\"b"));
        assert_eq!(s.label("tool"), Some("x,y"));
        assert_eq!(s.value, 3.0);
        assert_eq!(parse_sample("up 1").unwrap().value, 1.0);
        assert!(parse_sample("# TYPE up gauge").is_none());
        assert!(parse_sample("bad{x=1} 2").is_none());
    }

    #[test]
    fn written_samples_parse_back() {
        let mut out = String::new();
        sample(&mut out, "m", &[("server", "we\"ird\\id\n")], 7);
        let s = parse_sample(out.trim_end()).unwrap();
        assert_eq!(s.label("server"), Some("we\"ird\\id\n"));
        assert_eq!(s.value, 7.0);
    }

    /// What one recorded call costs on the hot path: the same macro calls the ServerActor
    /// makes, against a Prometheus recorder. Run with
    /// `cargo test --release --lib metrics::tests::record_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn record_cost() {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("mcp_hub_call_duration_seconds".into()),
                LATENCY_BUCKETS,
            )
            .unwrap()
            .build_recorder();
        let server: std::sync::Arc<str> = std::sync::Arc::from("demo");
        let tool = String::from("echo");
        let n = 1_000_000u32;
        metrics::with_local_recorder(&recorder, || {
            let time = |what: &str, f: &dyn Fn(u32)| {
                let start = std::time::Instant::now();
                for i in 0..n {
                    f(i);
                }
                let per = start.elapsed().as_nanos() / u128::from(n);
                println!("metrics: {per} ns per {what}");
            };
            time("counter", &|_| {
                metrics::counter!("mcp_hub_calls_total", "server" => server.clone(), "tool" => tool.clone(), "outcome" => "ok").increment(1)
            });
            time("histogram sample", &|i| {
                metrics::histogram!("mcp_hub_call_duration_seconds", "server" => server.clone())
                    .record(f64::from(i % 100) / 1000.0)
            });
            // Samples wait in a lock-free bucket until upkeep or a scrape folds them.
            recorder.handle().run_upkeep();
        });
    }
}
