//! The `mcp-hub` binary: parse the command line, load settings, run.

use clap::Parser;
use mcp_hub::cli::{Cli, Command};
use mcp_hub::config::Settings;
use mcp_hub::startup::Application;
use std::path::PathBuf;
use std::process::ExitCode;

/// jemalloc: under load the hub spends less CPU per call in it than in glibc's malloc, and
/// holds less memory per idle session (BENCHMARKS.md, "Sixth session").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = cli
        .config
        .or_else(|| Some(PathBuf::from("config/hub.toml")).filter(|p| p.exists()));
    match cli.command.unwrap_or(Command::Serve) {
        Command::DemoServer { http, era } => demo(http, era),
        Command::Registry { action } => {
            let settings = match Settings::load(config.as_deref()) {
                Ok(s) => s,
                Err(e) => return fail(&e.to_string()),
            };
            match actix_web::rt::System::new().block_on(mcp_hub::migrate::run(settings, action)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::HashKey { key } => {
            println!("{}", mcp_hub::auth::hash_key(&key));
            ExitCode::SUCCESS
        }
        Command::CheckConfig { file } => match Settings::load(Some(&file)) {
            Ok(s) => {
                println!(
                    "{}: ok ({} servers, listen {})",
                    file.display(),
                    s.servers.len(),
                    s.listen
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string()),
        },
        Command::Serve => {
            let settings = match Settings::load(config.as_deref()) {
                Ok(s) => s,
                Err(e) => return fail(&e.to_string()),
            };
            let _log = mcp_hub::telemetry::init(&settings.log);
            for w in &settings.warnings {
                tracing::warn!(event = "config.warning", "{w}");
            }
            let self_exe = match std::env::current_exe() {
                Ok(p) => p,
                Err(e) => return fail(&format!("cannot locate the mcp-hub binary: {e}")),
            };
            let run = actix_web::rt::System::new().block_on(async move {
                let app = Application::build(settings, self_exe)
                    .await
                    .map_err(|e| e.to_string())?;
                app.run_until_stopped().await.map_err(|e| e.to_string())
            });
            match run {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
    }
}

fn demo(http: Option<std::net::SocketAddr>, era: mcp_hub_demo::Era) -> ExitCode {
    let transport = match http {
        Some(addr) => mcp_hub_demo::DemoTransport::Http(addr),
        None => mcp_hub_demo::DemoTransport::Stdio,
    };
    match mcp_hub_demo::run_with_era(transport, era) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("demo-server: {e}")),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("mcp-hub: {msg}");
    ExitCode::from(2)
}
