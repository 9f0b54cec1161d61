//! The benchmark scenarios. Each starts its own fast upstream and hub, runs bounded load,
//! prints tables and the issue's targets (met or not), and can write every figure as JSON.

mod concurrency70;
mod idle_sessions;
mod list_many;
pub mod procs;
mod reconnect_storm;
mod register_to_call;
mod servers20;

use serde::Serialize;
use std::path::PathBuf;

use crate::cli::{LoadArgs, Scenario, ScenarioArgs};
use crate::load::{LoadSpec, Op};
use crate::mcp::Protocol;
use crate::report::{print_targets, write_json, Target};

/// What a scenario hands back.
pub struct Outcome {
    /// Every figure.
    pub details: serde_json::Value,
    /// The issue's targets.
    pub targets: Vec<Target>,
}

/// The machine, as the report needs it.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Cores available.
    pub nproc: usize,
    /// `/proc/cpuinfo` model name.
    pub cpu_model: String,
    /// `/proc/meminfo` MemTotal, KiB.
    pub mem_total_kib: u64,
    /// `/proc/loadavg` when the scenario started (another build running shows here).
    pub loadavg_at_start: String,
    /// RLIMIT_NOFILE soft limit in force.
    pub nofile_limit: Option<u64>,
}

/// Reads the machine facts.
pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    Machine {
        nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model,
        mem_total_kib: crate::procstat::parse_status_kib(&meminfo, "MemTotal").unwrap_or(0),
        loadavg_at_start: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_string(),
        nofile_limit: rustix::process::getrlimit(rustix::process::Resource::Nofile).current,
    }
}

/// Raises the soft open-files limit to the hard one (children inherit it: the hub too).
pub fn raise_nofile_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: lim.maximum,
                maximum: lim.maximum,
            },
        );
    }
    getrlimit(Resource::Nofile).current
}

/// A `tools/call` load spec with the common settings.
pub(crate) fn call_spec(
    label: &str,
    url: &str,
    tools: Vec<String>,
    sessions: usize,
    rate: Option<f64>,
    load: &LoadArgs,
    processes: Vec<(String, u32)>,
) -> LoadSpec {
    LoadSpec {
        label: label.into(),
        url: url.into(),
        op: Op::CallTool {
            tools,
            arguments: r#"{"text":"hello from loadgen"}"#.into(),
        },
        sessions,
        rate,
        warmup: load.warmup,
        duration: load.duration,
        accept: load.accept,
        protocol: load.protocol,
        timeout: load.timeout,
        processes,
    }
}

/// The URL clients of `protocol` use, from a server's `/mcp` URL: legacy HTTP+SSE clients
/// (`--protocol legacy-sse`) open `/sse` instead (the hub's all-servers stream, or the fast
/// upstream's).
pub fn client_url(mcp_url: &str, protocol: Protocol) -> String {
    match (protocol, mcp_url.strip_suffix("/mcp")) {
        (Protocol::LegacySse, Some(base)) => format!("{base}/sse"),
        _ => mcp_url.to_string(),
    }
}

/// Scenarios that need Streamable HTTP sessions (their GET stream, resumption, one open
/// session across registrations) refuse the legacy transport.
fn streamable_only(name: &str, args: &ScenarioArgs) -> Result<(), String> {
    if args.load.protocol == Protocol::LegacySse {
        return Err(format!(
            "scenario {name} does not support --protocol legacy-sse (it needs Streamable HTTP \
             sessions); legacy-sse runs with `loadgen run`, concurrency70, servers20 and list_many"
        ));
    }
    Ok(())
}

fn hub_bin(args: &ScenarioArgs) -> PathBuf {
    args.hub_bin.clone().unwrap_or_else(procs::default_hub_bin)
}

/// Runs one scenario; prints and writes its report.
pub async fn run(which: Scenario) -> Result<(), String> {
    raise_nofile_limit();
    let machine = machine();
    println!(
        "machine: {} cores, {} MiB, {}; load average at start: {}",
        machine.nproc,
        machine.mem_total_kib / 1024,
        machine.cpu_model,
        machine.loadavg_at_start
    );
    let (name, args, outcome) = match which {
        Scenario::Concurrency70 {
            concurrency,
            upstream_sse,
            floor,
            common,
        } => {
            let o = concurrency70::run(
                &common,
                &hub_bin(&common),
                concurrency,
                upstream_sse,
                floor.as_deref(),
            )
            .await?;
            ("concurrency70", common, o)
        }
        Scenario::Servers20 {
            servers,
            rate,
            concurrency,
            start_rate,
            step_duration,
            max_steps,
            p99_limit_ms,
            max_failure_pct,
            common,
        } => {
            let p = servers20::Params {
                servers,
                rate,
                concurrency,
                start_rate,
                step_duration,
                max_steps,
                p99_limit_ms,
                max_failure_pct,
            };
            let o = servers20::run(&common, &hub_bin(&common), &p).await?;
            ("servers20", common, o)
        }
        Scenario::IdleSessions {
            sessions,
            setup_concurrency,
            common,
        } => {
            streamable_only("idle_sessions", &common)?;
            let o =
                idle_sessions::run(&common, &hub_bin(&common), sessions, setup_concurrency).await?;
            ("idle_sessions", common, o)
        }
        Scenario::ListMany {
            servers,
            tools,
            concurrency,
            common,
        } => {
            let o = list_many::run(&common, &hub_bin(&common), servers, tools, concurrency).await?;
            ("list_many", common, o)
        }
        Scenario::RegisterToCall { reps, common } => {
            streamable_only("register_to_call", &common)?;
            let o = register_to_call::run(&common, &hub_bin(&common), reps).await?;
            ("register_to_call", common, o)
        }
        Scenario::ReconnectStorm {
            sessions,
            sleep_ms,
            common,
        } => {
            streamable_only("reconnect_storm", &common)?;
            let o = reconnect_storm::run(&common, &hub_bin(&common), sessions, sleep_ms).await?;
            ("reconnect_storm", common, o)
        }
    };
    print_targets(&outcome.targets);
    if let Some(path) = &args.load.json {
        let doc = serde_json::json!({
            "scenario": name,
            "machine": machine,
            "settings": {
                "duration_s": args.load.duration.as_secs_f64(),
                "warmup_s": args.load.warmup.as_secs_f64(),
                "timeout_s": args.load.timeout.as_secs_f64(),
                "accept": args.load.accept,
                "protocol": args.load.protocol,
            },
            "details": outcome.details,
            "targets": outcome.targets,
        });
        write_json(path, &doc)?;
        println!("\nfigures written to {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_clients_open_sse() {
        let mcp = "http://127.0.0.1:9/mcp";
        assert_eq!(
            client_url(mcp, Protocol::LegacySse),
            "http://127.0.0.1:9/sse"
        );
        assert_eq!(client_url(mcp, Protocol::Session), mcp);
        assert_eq!(client_url(mcp, Protocol::Modern), mcp);
    }
}
