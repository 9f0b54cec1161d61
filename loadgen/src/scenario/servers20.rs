//! `scenario servers20`: one fast upstream registered as 20 servers; open loop at 200
//! calls/s spread over them, then a bounded step search for the highest rate with < 1%
//! failures and p99 < 50 ms.

use serde::Serialize;
use std::path::Path;
use std::time::Duration;

use super::procs::{start_upstream, Hub, ServerEntry};
use super::{call_spec, client_url, Outcome};
use crate::cli::ScenarioArgs;
use crate::load::{self, RunReport};
use crate::report::{print_runs, Target};

/// Scenario parameters.
pub struct Params {
    /// Upstreams registered.
    pub servers: usize,
    /// First phase rate.
    pub rate: f64,
    /// Sessions.
    pub concurrency: usize,
    /// First step rate.
    pub start_rate: f64,
    /// Measured time per step.
    pub step_duration: Duration,
    /// Most steps.
    pub max_steps: usize,
    /// Pass: p99 below (ms).
    pub p99_limit_ms: f64,
    /// Pass: failures below (%).
    pub max_failure_pct: f64,
}

#[derive(Serialize)]
struct Step {
    rate: f64,
    passed: bool,
    run: RunReport,
}

fn failure_pct(r: &RunReport) -> f64 {
    let all = r.requests + r.init_failures;
    if all == 0 {
        return 100.0;
    }
    (r.failures + r.init_failures) as f64 * 100.0 / all as f64
}

/// Runs the scenario.
pub async fn run(args: &ScenarioArgs, hub_bin: &Path, p: &Params) -> Result<Outcome, String> {
    let up = start_upstream(1, false).await?;
    let ids: Vec<String> = (1..=p.servers.max(1)).map(|i| format!("f{i:02}")).collect();
    let servers: Vec<ServerEntry> = ids
        .iter()
        .map(|id| ServerEntry::Http {
            id: id.clone(),
            url: up.url.clone(),
        })
        .collect();
    let hub = match Hub::start(hub_bin, &servers, &[]).await {
        Ok(h) => h,
        Err(e) => {
            up.proc.stop().await;
            return Err(e);
        }
    };
    let tools: Vec<String> = ids.iter().map(|id| format!("{id}__echo")).collect();
    let pids = vec![
        ("hub".to_string(), hub.proc.pid),
        ("upstream".to_string(), up.proc.pid),
    ];
    let url = client_url(&hub.mcp_url(), args.load.protocol);
    let result = async {
        let fixed = call_spec("open", &url, tools.clone(), p.concurrency, Some(p.rate), &args.load, pids.clone());
        let fixed = load::run(&fixed).await?;
        print_runs(&[&fixed]);
        println!("\nstep search:");
        let mut steps: Vec<Step> = Vec::new();
        let (mut lo, mut hi): (Option<f64>, Option<f64>) = (None, None);
        let mut rate = p.start_rate;
        for _ in 0..p.max_steps {
            let mut load = args.load.clone();
            load.duration = p.step_duration;
            load.warmup = Duration::from_millis(500);
            let label = format!("step {rate:.0}");
            let spec = call_spec(&label, &url, tools.clone(), p.concurrency, Some(rate), &load, pids.clone());
            let run = load::run(&spec).await?;
            let passed = failure_pct(&run) < p.max_failure_pct && run.latency.p99_ms < p.p99_limit_ms && run.successes > 0;
            println!(
                "  {:>7.0}/s offered: {:>7.0}/s ok, failures {:.2}%, p50 {:.2} ms, p99 {:.2} ms, hub {:.2} cores, other processes {:.2} cores -> {}",
                rate,
                run.rps,
                failure_pct(&run),
                run.latency.p50_ms,
                run.latency.p99_ms,
                run.process("hub").map_or(0.0, |h| h.cores),
                run.other_cores,
                if passed { "pass" } else { "fail" }
            );
            steps.push(Step { rate, passed, run });
            if passed {
                lo = Some(rate);
            } else {
                hi = Some(rate);
            }
            rate = match (lo, hi) {
                (Some(l), None) => l * 1.5,
                (None, Some(h)) => h / 2.0,
                (Some(l), Some(h)) if (h - l) / l > 0.05 => (l + h) / 2.0,
                _ => break,
            };
            if rate < 10.0 {
                break;
            }
        }
        Ok::<_, String>((fixed, steps, lo))
    }
    .await;
    let hub_log_lines = hub.log_lines();
    hub.stop().await;
    up.proc.stop().await;
    let (fixed, steps, best) = result?;
    let best = best.unwrap_or(0.0);
    println!("\nhighest passing rate: {best:.0} calls/s");
    let fixed_fail = fixed.failures + fixed.init_failures;
    let targets = vec![
        Target::new(
            &format!("failures at {:.0}/s", p.rate),
            "0",
            fixed_fail.to_string(),
            fixed_fail == 0,
        ),
        Target::new(
            &format!("p99 at {:.0}/s", p.rate),
            "< 10 ms",
            format!("{:.3} ms", fixed.latency.p99_ms),
            fixed.latency.p99_ms < 10.0,
        ),
        Target::new(
            "highest rate (<1% fail, p99<50ms)",
            ">= 10000 calls/s",
            format!("{best:.0} calls/s"),
            best >= 10_000.0,
        ),
    ];
    Ok(Outcome {
        details: serde_json::json!({
            "servers": p.servers,
            "sessions": p.concurrency,
            "fixed_rate": fixed,
            "steps": steps,
            "highest_passing_rate": best,
            "step_rule": { "p99_below_ms": p.p99_limit_ms, "failures_below_pct": p.max_failure_pct, "step_s": p.step_duration.as_secs_f64() },
            "hub_log_lines_at_warn": hub_log_lines,
        }),
        targets,
    })
}
