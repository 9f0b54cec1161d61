//! Command line: `loadgen run`, `loadgen upstream`, `loadgen scenario NAME`.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::mcp::{AcceptMode, Protocol};

/// Load tool for mcp-hub: real MCP clients over Streamable HTTP, a fast upstream, and the
/// benchmark scenarios. Load goes to loopback addresses only.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about, long_about = None)]
pub struct Cli {
    /// Worker threads of this process (default: one per core).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run load against an MCP endpoint (or `--compare` direct vs hub).
    Run(RunArgs),
    /// Serve the fast in-repo upstream MCP server; prints `listening on http://ADDR/mcp`
    /// (the legacy HTTP+SSE transport is at `/sse`).
    Upstream(UpstreamArgs),
    /// A benchmark scenario: starts its own upstream and hub, runs, reports.
    Scenario {
        /// Which one.
        #[command(subcommand)]
        which: Scenario,
    },
}

/// Parses `10s`, `500ms`, `2m` or a bare number of seconds (`1.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: expected e.g. 10s, 500ms, 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: unit must be ms, s or m")),
    };
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("{s:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Load settings shared by `run` and the scenarios.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Measured time of each load phase.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unmeasured load before each phase (connections warm up).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Per-request timeout.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// `both`: Accept: application/json, text/event-stream; `json`: application/json only.
    #[arg(long, value_enum, default_value = "both")]
    pub accept: AcceptMode,
    /// `session`: MCP 2025-11-25 clients, one session each; `modern`: MCP 2026-07-28
    /// stateless clients (no session; `_meta` and `Mcp-Method`/`Mcp-Name` on every request);
    /// `legacy-sse`: MCP 2024-11-05 HTTP+SSE clients (`--url` is the `GET` stream, e.g.
    /// http://127.0.0.1:PORT/sse; POSTs go to the URL of its `endpoint` event).
    #[arg(long, value_enum, default_value = "session")]
    pub protocol: Protocol,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `loadgen run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// MCP endpoint, e.g. http://127.0.0.1:8080/mcp (not with --compare); with
    /// `--protocol legacy-sse`, the SSE stream, e.g. http://127.0.0.1:8080/sse.
    #[arg(long, required_unless_present = "compare")]
    pub url: Option<String>,
    /// Tool to call (repeat to cycle through several).
    #[arg(long, default_value = "echo")]
    pub tool: Vec<String>,
    /// Raw JSON arguments of each call.
    #[arg(long, default_value = r#"{"text":"hello from loadgen"}"#)]
    pub args: String,
    /// Call tools/list (all pages) instead of tools/call.
    #[arg(long)]
    pub list: bool,
    /// Sessions (closed loop: each calls back to back).
    #[arg(long, default_value_t = 70)]
    pub concurrency: usize,
    /// Open loop: calls per second at fixed intervals, spread over the sessions.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Measure this hub process (CPU, RSS).
    #[arg(long)]
    pub pid_hub: Option<u32>,
    /// Measure this upstream process (CPU, RSS).
    #[arg(long)]
    pub pid_upstream: Option<u32>,
    /// Run against --direct-url, then --hub-url, and print the ratios.
    #[arg(long, requires_all = ["direct_url", "hub_url"])]
    pub compare: bool,
    /// The upstream's own endpoint (with --compare).
    #[arg(long)]
    pub direct_url: Option<String>,
    /// The hub's endpoint for the same upstream (with --compare).
    #[arg(long)]
    pub hub_url: Option<String>,
    /// Tool name through the hub (with --compare; e.g. fast__echo on /mcp).
    #[arg(long, default_value = "fast__echo")]
    pub hub_tool: Vec<String>,
    /// Load settings.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// `loadgen upstream`.
#[derive(Debug, Clone, Args)]
pub struct UpstreamArgs {
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Number of echo tools: `echo`, `echo_1`, ... `echo_{N-1}`.
    #[arg(long, default_value_t = 1)]
    pub tools: usize,
    /// Answer requests as SSE instead of JSON.
    #[arg(long)]
    pub sse: bool,
}

/// Settings of every scenario.
#[derive(Debug, Clone, Args)]
pub struct ScenarioArgs {
    /// The hub binary [default: $MCP_HUB_BIN, else ../target/release/mcp-hub from the crate].
    #[arg(long)]
    pub hub_bin: Option<PathBuf>,
    /// Load settings.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// N concurrent sessions (closed loop), direct vs through the hub.
    #[command(name = "concurrency70")]
    Concurrency70 {
        /// Sessions.
        #[arg(long, default_value_t = 70)]
        concurrency: usize,
        /// The upstream answers as SSE (exercises the hub's SSE reader).
        #[arg(long)]
        upstream_sse: bool,
        /// Also load a bare actix-web + awc proxy in front of the same upstream, the floor
        /// of any gateway built on the hub's HTTP crates: loadgen's `floor_proxy`
        /// binary (`target/release/floor_proxy`, built with loadgen). Session clients only.
        #[arg(long, value_name = "FLOOR_PROXY_BIN")]
        floor: Option<PathBuf>,
        /// Common settings.
        #[command(flatten)]
        common: ScenarioArgs,
    },
    /// 20 upstreams; open loop at --rate, then a bounded step search for the top rate.
    #[command(name = "servers20")]
    Servers20 {
        /// Upstreams registered (one fast upstream process, registered N times).
        #[arg(long, default_value_t = 20)]
        servers: usize,
        /// Open-loop rate of the first phase (calls/s).
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// Sessions carrying the open-loop calls.
        #[arg(long, default_value_t = 128)]
        concurrency: usize,
        /// First rate of the step search.
        #[arg(long, default_value_t = 2000.0)]
        start_rate: f64,
        /// Measured time of each step.
        #[arg(long, default_value = "3s", value_parser = parse_duration)]
        step_duration: Duration,
        /// Most steps.
        #[arg(long, default_value_t = 10)]
        max_steps: usize,
        /// A step passes with p99 below this (ms) ...
        #[arg(long, default_value_t = 50.0)]
        p99_limit_ms: f64,
        /// ... and failures below this percentage.
        #[arg(long, default_value_t = 1.0)]
        max_failure_pct: f64,
        /// Common settings.
        #[command(flatten)]
        common: ScenarioArgs,
    },
    /// N sessions each holding its GET SSE stream open; hub RSS per session.
    #[command(name = "idle_sessions")]
    IdleSessions {
        /// Sessions.
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// Sessions opened at once during setup.
        #[arg(long, default_value_t = 32)]
        setup_concurrency: usize,
        /// Common settings (--duration: how long the streams are held).
        #[command(flatten)]
        common: ScenarioArgs,
    },
    /// 100 upstreams x 50 tools; tools/list on /mcp latency.
    #[command(name = "list_many")]
    ListMany {
        /// Upstreams registered (one process serving --tools tools, registered N times).
        #[arg(long, default_value_t = 100)]
        servers: usize,
        /// Tools per upstream.
        #[arg(long, default_value_t = 50)]
        tools: usize,
        /// Sessions listing back to back.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Common settings.
        #[command(flatten)]
        common: ScenarioArgs,
    },
    /// Time from the admin POST /api/servers/{id} to the first successful tools/call.
    #[command(name = "register_to_call")]
    RegisterToCall {
        /// Repetitions per transport (the median is reported).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Common settings.
        #[command(flatten)]
        common: ScenarioArgs,
    },
    /// N slow calls whose streams all drop at once and resume at once with Last-Event-ID.
    #[command(name = "reconnect_storm")]
    ReconnectStorm {
        /// Sessions, one call each.
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// How long each call runs (the demo server's sleep tool), ms.
        #[arg(long, default_value_t = 1000)]
        sleep_ms: u64,
        /// Common settings.
        #[command(flatten)]
        common: ScenarioArgs,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
