//! `scenario concurrency70`: N sessions calling back to back, first against the fast
//! upstream directly, then through the hub (`fast__echo` on `/mcp`, or on `/sse` with
//! `--protocol legacy-sse`); compares the two.

use std::path::Path;

use super::procs::{start_upstream, Hub, ServerEntry};
use super::{call_spec, client_url, Outcome};
use crate::cli::ScenarioArgs;
use crate::load;
use crate::report::{compare, print_comparison, Comparison, Target};

/// Runs the scenario.
pub async fn run(
    args: &ScenarioArgs,
    hub_bin: &Path,
    concurrency: usize,
    upstream_sse: bool,
) -> Result<Outcome, String> {
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
    up.proc.stop().await;
    let cmp = result?;
    print_comparison(&cmp);
    let targets = targets(&cmp);
    Ok(Outcome {
        details: serde_json::json!({
            "concurrency": concurrency,
            "upstream_sse": upstream_sse,
            "comparison": cmp,
            "hub_log_lines_at_warn": hub_log_lines,
        }),
        targets,
    })
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
