//! `scenario concurrency70`: N sessions calling back to back, first against the fast
//! upstream directly, then through the hub (`fast__echo` on `/mcp`, or on `/sse` with
//! `--protocol legacy-sse`); compares the two. With `--floor BIN`, a third phase loads a
//! bare actix-web + awc proxy in front of the same upstream: what any gateway on the hub's
//! HTTP crates costs at least.

use std::path::Path;

use serde::Serialize;

use super::procs::{start_floor, start_upstream, Hub, ServerEntry};
use super::{call_spec, client_url, Outcome};
use crate::cli::ScenarioArgs;
use crate::load::{self, RunReport};
use crate::mcp::Protocol;
use crate::report::{
    compare, cpu_per_call, print_comparison, print_runs, ratio, throughput_share, Comparison,
    Target,
};

/// Runs the scenario.
pub async fn run(
    args: &ScenarioArgs,
    hub_bin: &Path,
    concurrency: usize,
    upstream_sse: bool,
    floor_bin: Option<&Path>,
) -> Result<Outcome, String> {
    if floor_bin.is_some() && args.load.protocol != Protocol::Session {
        return Err("--floor runs session clients only (the floor proxy copies no modern or legacy-SSE headers)".into());
    }
    let up = start_upstream(1, upstream_sse).await?;
    let servers = [ServerEntry::Http {
        id: "fast".into(),
        url: up.url.clone(),
    }];
    let hub = match Hub::start(hub_bin, &servers, &[]).await {
        Ok(h) => h,
        Err(e) => {
            up.proc.stop().await;
            return Err(e);
        }
    };
    let pids = vec![
        ("hub".to_string(), hub.proc.pid),
        ("upstream".to_string(), up.proc.pid),
    ];
    let load = &args.load;
    let direct = call_spec(
        "direct",
        &client_url(&up.url, load.protocol),
        vec!["echo".into()],
        concurrency,
        None,
        load,
        pids.clone(),
    );
    let via = call_spec(
        "hub",
        &client_url(&hub.mcp_url(), load.protocol),
        vec!["fast__echo".into()],
        concurrency,
        None,
        load,
        pids,
    );
    let result = async {
        let d = load::run(&direct).await?;
        let h = load::run(&via).await?;
        Ok::<_, String>(compare(d, h))
    }
    .await;
    let hub_log_lines = hub.log_lines();
    hub.stop().await;
    let floor = match (floor_bin, &result) {
        (Some(bin), Ok(cmp)) => {
            Some(floor_phase(bin, &up.url, up.proc.pid, concurrency, load, cmp).await)
        }
        _ => None,
    };
    up.proc.stop().await;
    let cmp = result?;
    let floor = floor.transpose()?;
    print_comparison(&cmp);
    if let Some(f) = &floor {
        print_floor(f);
    }
    let targets = targets(&cmp);
    Ok(Outcome {
        details: serde_json::json!({
            "concurrency": concurrency,
            "upstream_sse": upstream_sse,
            "comparison": cmp,
            "floor": floor,
            "hub_log_lines_at_warn": hub_log_lines,
        }),
        targets,
    })
}

/// The floor proxy's phase and how it compares with the direct and hub phases.
#[derive(Debug, Serialize)]
struct Floor {
    run: RunReport,
    throughput_floor_over_direct: f64,
    throughput_hub_over_floor: f64,
    p50_diff_ms: f64,
    cpu_per_call_floor_over_upstream: Option<f64>,
}

async fn floor_phase(
    bin: &Path,
    upstream_url: &str,
    upstream_pid: u32,
    concurrency: usize,
    load: &crate::cli::LoadArgs,
    cmp: &Comparison,
) -> Result<Floor, String> {
    let (proc, url) = start_floor(bin, upstream_url).await?;
    let spec = call_spec(
        "floor",
        &url,
        vec!["echo".into()],
        concurrency,
        None,
        load,
        vec![
            ("floor".to_string(), proc.pid),
            ("upstream".to_string(), upstream_pid),
        ],
    );
    let run = load::run(&spec).await;
    proc.stop().await;
    let run = run?;
    Ok(Floor {
        throughput_floor_over_direct: throughput_share(&run, &cmp.direct),
        throughput_hub_over_floor: throughput_share(&cmp.hub, &run),
        p50_diff_ms: run.latency.p50_ms - cmp.direct.latency.p50_ms,
        cpu_per_call_floor_over_upstream: ratio(
            cpu_per_call(&run, "floor"),
            cpu_per_call(&run, "upstream"),
        ),
        run,
    })
}

fn print_floor(f: &Floor) {
    println!();
    print_runs(&[&f.run]);
    println!();
    println!(
        "floor/direct throughput {:.1}%   p50 {:+.3} ms   floor/upstream CPU per call {}   hub/floor throughput {:.1}%",
        f.throughput_floor_over_direct * 100.0,
        f.p50_diff_ms,
        f.cpu_per_call_floor_over_upstream
            .map(|x| format!("{x:.2}x"))
            .unwrap_or_else(|| "n/a".into()),
        f.throughput_hub_over_floor * 100.0,
    );
}

fn targets(c: &Comparison) -> Vec<Target> {
    let fails = c.direct.failures + c.hub.failures + c.direct.init_failures + c.hub.init_failures;
    let r = &c.ratios;
    let mut t = vec![
        Target::new(
            "failures (direct + hub)",
            "0",
            fails.to_string(),
            fails == 0,
        ),
        Target::new(
            "hub throughput / direct",
            ">= 45%",
            format!("{:.1}%", r.throughput_hub_over_direct * 100.0),
            r.throughput_hub_over_direct >= 0.45,
        ),
        Target::new(
            "hub throughput",
            ">= 15000 calls/s",
            format!("{:.0} calls/s", c.hub.rps),
            c.hub.rps >= 15_000.0,
        ),
        Target::new(
            "hub p50 - direct p50",
            "<= 1 ms",
            format!("{:+.3} ms", r.p50_diff_ms),
            r.p50_diff_ms <= 1.0,
        ),
    ];
    let cpu = r.cpu_per_call_hub_over_upstream;
    t.push(Target::new(
        "hub CPU/call / upstream CPU/call",
        "<= 1.5x",
        cpu.map(|x| format!("{x:.2}x"))
            .unwrap_or_else(|| "n/a".into()),
        cpu.is_some_and(|x| x <= 1.5),
    ));
    t
}
