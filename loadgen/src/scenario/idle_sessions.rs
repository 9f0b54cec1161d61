//! `scenario idle_sessions`: N sessions, each holding its standalone GET SSE stream open
//! (`GET /mcp`, `Mcp-Session-Id`, `Accept: text/event-stream`); the hub's RSS before and
//! after, per session.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::procs::Hub;
use super::{raise_nofile_limit, Outcome};
use crate::cli::ScenarioArgs;
use crate::mcp::{CallError, ClientConfig, Endpoint, HeldStream, Session};
use crate::procstat::{rss_kib, Sampler};
use crate::report::Target;

async fn open_one(cfg: ClientConfig) -> Result<HeldStream, CallError> {
    let session = Session::open(cfg).await?;
    session.open_get_stream().await
    // The session's POST connection closes here; the stream keeps its own.
}

/// Average of a few RSS samples, KiB.
async fn settled_rss(pid: u32) -> u64 {
    let mut sum = 0;
    for _ in 0..5 {
        sum += rss_kib(pid).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sum / 5
}

/// Runs the scenario.
pub async fn run(
    args: &ScenarioArgs,
    hub_bin: &Path,
    sessions: usize,
    setup_concurrency: usize,
) -> Result<Outcome, String> {
    let nofile = raise_nofile_limit().unwrap_or(0);
    if (nofile as usize) < sessions + 256 {
        return Err(format!(
            "open-files limit {nofile} is too low for {sessions} streams (raise `ulimit -Hn`)"
        ));
    }
    let max = (sessions + 100).max(10_000).to_string();
    let env = [
        ("MCP_HUB_SESSIONS__MAX_SESSIONS", max.clone()),
        ("MCP_HUB_SESSIONS__MAX_SESSIONS_PER_USER", max.clone()),
    ];
    // Hubs before `sessions.max_sessions_per_user` reject the key as unknown: retry without.
    let hub = match Hub::start(hub_bin, &[], &env).await {
        Ok(h) => h,
        Err(e) if e.contains("max_sessions_per_user") => {
            Hub::start(hub_bin, &[], &env[..1]).await?
        }
        Err(e) => return Err(e),
    };
    let result = measure(args, &hub, sessions, setup_concurrency).await;
    let hub_log_lines = hub.log_lines();
    hub.stop().await;
    let (mut details, targets) = result?;
    details["hub_log_lines_at_warn"] = hub_log_lines.into();
    details["nofile_limit"] = nofile.into();
    Ok(Outcome { details, targets })
}

async fn measure(
    args: &ScenarioArgs,
    hub: &Hub,
    sessions: usize,
    setup_concurrency: usize,
) -> Result<(serde_json::Value, Vec<Target>), String> {
    let pid = hub.proc.pid;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = settled_rss(pid).await;
    let cfg = ClientConfig {
        endpoint: Arc::new(Endpoint::parse(&hub.mcp_url())?),
        accept: args.load.accept,
        protocol: args.load.protocol,
        timeout: args.load.timeout,
    };
    let started = Instant::now();
    let mut streams: Vec<HeldStream> = Vec::with_capacity(sessions);
    let mut failures: std::collections::BTreeMap<String, u64> = Default::default();
    let mut first_error = None;
    let mut set = JoinSet::new();
    let mut launched = 0;
    while launched < sessions || !set.is_empty() {
        while launched < sessions && set.len() < setup_concurrency.max(1) {
            set.spawn(open_one(cfg.clone()));
            launched += 1;
        }
        match set.join_next().await {
            Some(Ok(Ok(s))) => streams.push(s),
            Some(Ok(Err(e))) => {
                *failures.entry(e.kind()).or_default() += 1;
                first_error.get_or_insert(e.to_string());
            }
            Some(Err(e)) => {
                *failures.entry("task".into()).or_default() += 1;
                first_error.get_or_insert(e.to_string());
            }
            None => break,
        }
    }
    let setup_s = started.elapsed().as_secs_f64();
    let opened = streams.len();
    println!("opened {opened} of {sessions} sessions with their GET streams in {setup_s:.1} s");
    let sampler = Sampler::start("hub", pid);
    tokio::time::sleep(args.load.duration).await;
    let usage = sampler.finish().await;
    let after = settled_rss(pid).await;
    let alive = streams.iter().filter(|s| s.is_open()).count();
    let per_session_kib = if opened > 0 {
        after.saturating_sub(before) as f64 / opened as f64
    } else {
        0.0
    };
    println!(
        "hub RSS: before {before} KiB, after {after} KiB (peak {} KiB) -> {per_session_kib:.1} KiB per session; streams still open after {:.0} s: {alive}/{opened}; hub CPU while idle: {:.3} cores",
        usage.rss_peak_kib,
        args.load.duration.as_secs_f64(),
        usage.cores
    );
    if !failures.is_empty() {
        println!(
            "setup failures: {failures:?}; e.g. {}",
            first_error.clone().unwrap_or_default()
        );
    }
    drop(streams);
    let failed: u64 = failures.values().sum();
    let targets = vec![
        Target::new(
            "hub RSS per idle session (stream open)",
            "<= 20 KiB",
            format!("{per_session_kib:.1} KiB"),
            per_session_kib <= 20.0 && opened > 0,
        ),
        Target::new(
            "sessions opened, streams held",
            &format!("{sessions}, all open"),
            format!("{opened} opened, {alive} open"),
            failed == 0 && alive == sessions,
        ),
    ];
    let details = serde_json::json!({
        "sessions": sessions,
        "opened": opened,
        "setup_failures": failures,
        "first_error": first_error,
        "setup_s": setup_s,
        "held_s": args.load.duration.as_secs_f64(),
        "streams_open_at_end": alive,
        "hub_rss_before_kib": before,
        "hub_rss_after_kib": after,
        "hub_rss_peak_kib": usage.rss_peak_kib,
        "hub_rss_per_session_kib": per_session_kib,
        "hub_idle_cpu_cores": usage.cores,
    });
    Ok((details, targets))
}
