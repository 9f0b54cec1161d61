//! `loadgen`: see `loadgen --help` and README.md.

use clap::Parser;
use loadgen::cli::{Cli, Command, RunArgs};
use loadgen::load::{self, LoadSpec, Op};
use loadgen::report::{compare, print_comparison, print_runs, write_json};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = cli.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = match rt.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Run(args) => run(args).await,
            Command::Upstream(a) => loadgen::upstream::serve_forever(
                a.listen,
                loadgen::upstream::UpstreamOptions {
                    tools: a.tools,
                    sse: a.sse,
                },
            )
            .await
            .map_err(|e| format!("upstream: {e}")),
            Command::Scenario { which } => loadgen::scenario::run(which).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn spec(args: &RunArgs, label: &str, url: &str, tools: Vec<String>) -> LoadSpec {
    let mut processes = Vec::new();
    if let Some(p) = args.pid_hub {
        processes.push(("hub".to_string(), p));
    }
    if let Some(p) = args.pid_upstream {
        processes.push(("upstream".to_string(), p));
    }
    LoadSpec {
        label: label.into(),
        url: url.into(),
        op: if args.list {
            Op::ListTools
        } else {
            Op::CallTool {
                tools,
                arguments: args.args.clone(),
            }
        },
        sessions: args.concurrency,
        rate: args.rate,
        warmup: args.load.warmup,
        duration: args.load.duration,
        accept: args.load.accept,
        protocol: args.load.protocol,
        timeout: args.load.timeout,
        processes,
    }
}

async fn run(args: RunArgs) -> Result<(), String> {
    loadgen::scenario::raise_nofile_limit();
    if serde_json::from_str::<serde_json::Value>(&args.args).is_err() {
        return Err(format!("--args is not JSON: {}", args.args));
    }
    for tool in args.tool.iter().chain(&args.hub_tool) {
        loadgen::mcp::ToolCall::new(args.load.protocol, tool, &args.args)
            .map_err(|e| format!("--tool: {e}"))?;
    }
    if args.compare {
        let direct_url = args.direct_url.clone().unwrap_or_default();
        let hub_url = args.hub_url.clone().unwrap_or_default();
        let d = load::run(&spec(&args, "direct", &direct_url, args.tool.clone())).await?;
        let h = load::run(&spec(&args, "hub", &hub_url, args.hub_tool.clone())).await?;
        let cmp = compare(d, h);
        print_comparison(&cmp);
        if let Some(path) = &args.load.json {
            write_json(path, &cmp)?;
        }
    } else {
        let url = args.url.clone().unwrap_or_default();
        let r = load::run(&spec(&args, "run", &url, args.tool.clone())).await?;
        print_runs(&[&r]);
        if let Some(path) = &args.load.json {
            write_json(path, &r)?;
        }
    }
    Ok(())
}
