//! `scenario list_many`: one fast upstream serving `--tools` tools, registered `--servers`
//! times; `tools/list` on `/mcp` (every page) back to back; latency p50/p99.

use std::path::Path;

use super::procs::{start_upstream, Hub, ServerEntry};
use super::{client_url, Outcome};
use crate::cli::ScenarioArgs;
use crate::load::{self, LoadSpec, Op};
use crate::report::{print_runs, Target};

/// Runs the scenario.
pub async fn run(
    args: &ScenarioArgs,
    hub_bin: &Path,
    servers: usize,
    tools: usize,
    concurrency: usize,
) -> Result<Outcome, String> {
    let up = start_upstream(tools, false).await?;
    let entries: Vec<ServerEntry> = (1..=servers.max(1))
        .map(|i| ServerEntry::Http {
            id: format!("m{i:03}"),
            url: up.url.clone(),
        })
        .collect();
    let hub = match Hub::start(hub_bin, &entries, &[]).await {
        Ok(h) => h,
        Err(e) => {
            up.proc.stop().await;
            return Err(e);
        }
    };
    let spec = LoadSpec {
        label: "tools/list".into(),
        url: client_url(&hub.mcp_url(), args.load.protocol),
        op: Op::ListTools,
        sessions: concurrency,
        rate: None,
        warmup: args.load.warmup,
        duration: args.load.duration,
        accept: args.load.accept,
        protocol: args.load.protocol,
        timeout: args.load.timeout,
        processes: vec![
            ("hub".into(), hub.proc.pid),
            ("upstream".into(), up.proc.pid),
        ],
    };
    let result = load::run(&spec).await;
    let hub_log_lines = hub.log_lines();
    hub.stop().await;
    up.proc.stop().await;
    let run = result?;
    print_runs(&[&run]);
    let expected = (servers * tools) as u64;
    let items = run.items_per_call.unwrap_or(0);
    let pages = run.request_latency.unwrap_or_default();
    let fails = run.failures + run.init_failures;
    let targets = vec![
        Target::new(
            "tools/list p50 (all pages)",
            "< 5 ms",
            format!("{:.3} ms", run.latency.p50_ms),
            run.latency.p50_ms < 5.0 && fails == 0,
        ),
        Target::new(
            "tools/list p50 (one page request)",
            "< 5 ms",
            format!("{:.3} ms", pages.p50_ms),
            pages.p50_ms < 5.0 && fails == 0,
        ),
        Target::new(
            "tools in the merged list",
            &expected.to_string(),
            items.to_string(),
            items == expected,
        ),
    ];
    Ok(Outcome {
        details: serde_json::json!({
            "servers": servers,
            "tools_per_server": tools,
            "run": run,
            "hub_log_lines_at_warn": hub_log_lines,
        }),
        targets,
    })
}
