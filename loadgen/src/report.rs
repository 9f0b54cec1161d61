//! Human-readable tables (stdout) and the JSON figures (`--json FILE`).

use serde::Serialize;
use std::path::Path;

use crate::load::RunReport;

/// Direct vs hub, measured in one run of the tool.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Against the upstream directly.
    pub direct: RunReport,
    /// Through the hub.
    pub hub: RunReport,
    /// Hub relative to direct.
    pub ratios: Ratios,
}

/// The comparison's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    /// Hub calls/s ÷ direct calls/s.
    pub throughput_hub_over_direct: f64,
    /// Hub p50 − direct p50 (ms).
    pub p50_diff_ms: f64,
    /// Hub p99 − direct p99 (ms).
    pub p99_diff_ms: f64,
    /// Hub CPU per call ÷ upstream CPU per call, both from the hub run (same calls).
    pub cpu_per_call_hub_over_upstream: Option<f64>,
    /// Hub CPU per call ÷ upstream CPU per call of the direct run.
    pub cpu_per_call_hub_over_upstream_direct: Option<f64>,
}

/// CPU µs per call of the process measured as `role` in `run`.
pub fn cpu_per_call(run: &RunReport, role: &str) -> Option<f64> {
    run.process(role).and_then(|p| p.cpu_us_per_call)
}

/// `a / b` when both are known and `b` is positive.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Calls/s of `run` over calls/s of `base` (0 when `base` served none).
pub fn throughput_share(run: &RunReport, base: &RunReport) -> f64 {
    ratio(Some(run.rps), Some(base.rps)).unwrap_or(0.0)
}

/// Builds the comparison of two runs.
pub fn compare(direct: RunReport, hub: RunReport) -> Comparison {
    let hub_cpu = cpu_per_call(&hub, "hub");
    let ratios = Ratios {
        throughput_hub_over_direct: throughput_share(&hub, &direct),
        p50_diff_ms: hub.latency.p50_ms - direct.latency.p50_ms,
        p99_diff_ms: hub.latency.p99_ms - direct.latency.p99_ms,
        cpu_per_call_hub_over_upstream: ratio(hub_cpu, cpu_per_call(&hub, "upstream")),
        cpu_per_call_hub_over_upstream_direct: ratio(hub_cpu, cpu_per_call(&direct, "upstream")),
    };
    Comparison {
        direct,
        hub,
        ratios,
    }
}

/// A target from the issue and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is measured.
    pub name: String,
    /// The target, as the issue states it.
    pub target: String,
    /// What this run measured.
    pub measured: String,
    /// Met or not.
    pub met: bool,
}

impl Target {
    /// A target line.
    pub fn new(name: &str, target: &str, measured: String, met: bool) -> Target {
        Target {
            name: name.into(),
            target: target.into(),
            measured,
            met,
        }
    }
}

/// Prints runs as one table, then failures and processes of each.
pub fn print_runs(runs: &[&RunReport]) {
    println!(
        "{:<14} {:<6} {:>5} {:>8} {:>9} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "run",
        "mode",
        "sess",
        "rate",
        "requests",
        "ok",
        "failed",
        "calls/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms"
    );
    for r in runs {
        let rate = r
            .rate
            .map(|x| format!("{x:.0}"))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<14} {:<6} {:>5} {:>8} {:>9} {:>9} {:>7} {:>9.0} {:>8.3} {:>8.3} {:>8.3} {:>8.2}",
            r.label,
            r.mode,
            r.sessions,
            rate,
            r.requests,
            r.successes,
            r.failures,
            r.rps,
            r.latency.p50_ms,
            r.latency.p90_ms,
            r.latency.p99_ms,
            r.latency.max_ms
        );
    }
    for r in runs {
        if !r.failures_by_kind.is_empty() || r.init_failures > 0 {
            let kinds: Vec<String> = r
                .failures_by_kind
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            println!(
                "  {} failures: {} (sessions that failed to initialize: {}); e.g. {}",
                r.label,
                kinds.join(", "),
                r.init_failures,
                r.error_samples.first().map(String::as_str).unwrap_or("-")
            );
        }
        if let (Some(pages), Some(items)) = (&r.request_latency, r.items_per_call) {
            println!(
                "  {}: {} items per full list; per page request p50 {:.3} ms, p99 {:.3} ms ({} requests)",
                r.label, items, pages.p50_ms, pages.p99_ms, pages.count
            );
        }
    }
    println!();
    for r in runs {
        println!(
            "{}: machine busy {:.2} cores: interrupts (loopback TCP) {:.2}, other processes (not hub/upstream/loadgen) {:.2}",
            r.label, r.machine_busy_cores, r.irq_cores, r.other_cores
        );
    }
    println!(
        "{:<14} {:<9} {:>8} {:>8} {:>7} {:>12} {:>11} {:>11}",
        "run", "process", "pid", "cpu s", "cores", "cpu µs/call", "rss end KiB", "rss peak KiB"
    );
    for r in runs {
        for p in &r.processes {
            println!(
                "{:<14} {:<9} {:>8} {:>8.2} {:>7.2} {:>12} {:>11} {:>11}",
                r.label,
                p.role,
                p.pid,
                p.cpu_s,
                p.cores,
                p.cpu_us_per_call
                    .map(|c| format!("{c:.1}"))
                    .unwrap_or_else(|| "-".into()),
                p.rss_end_kib,
                p.rss_peak_kib
            );
        }
    }
}

/// Prints a comparison: both runs, then the ratios.
pub fn print_comparison(c: &Comparison) {
    print_runs(&[&c.direct, &c.hub]);
    let r = &c.ratios;
    let opt = |v: Option<f64>| {
        v.map(|x| format!("{x:.2}x"))
            .unwrap_or_else(|| "n/a".into())
    };
    println!();
    println!(
        "hub/direct throughput {:.1}%   p50 +{:.3} ms   p99 +{:.3} ms   hub/upstream CPU per call {} (vs direct run's upstream: {})",
        r.throughput_hub_over_direct * 100.0,
        r.p50_diff_ms,
        r.p99_diff_ms,
        opt(r.cpu_per_call_hub_over_upstream),
        opt(r.cpu_per_call_hub_over_upstream_direct)
    );
}

/// Prints targets with met / NOT MET.
pub fn print_targets(targets: &[Target]) {
    if targets.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<40} {:<28} {:<28} result",
        "target", "wanted", "measured"
    );
    for t in targets {
        println!(
            "{:<40} {:<28} {:<28} {}",
            t.name,
            t.target,
            t.measured,
            if t.met { "met" } else { "NOT MET" }
        );
    }
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
}
