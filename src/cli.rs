//! Command line: `mcp-hub [serve] [--config FILE]`, `mcp-hub check-config FILE`,
//! `mcp-hub demo-server [--http ADDR]`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// mcp-hub: one MCP endpoint in front of many MCP servers.
#[derive(Debug, Parser)]
#[command(name = "mcp-hub", version, about, long_about = None)]
pub struct Cli {
    /// Config file (default: ./config/hub.toml if present, else the embedded default).
    #[arg(long, short, global = true, env = "MCP_HUB_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub (the default). Stops gracefully on SIGINT/SIGTERM.
    Serve,
    /// Validate a config file (with environment overrides applied) and print the result.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Move the registry between stores: `export` prints every definition as JSON,
    /// `import FILE` writes them (to Redis when REDIS_URL is set, else to the state dir).
    Registry {
        /// export or import.
        #[command(subcommand)]
        action: RegistryAction,
    },
    /// Print the SHA-256 of an API key, for `[[auth.api_keys]] key_sha256` in the config.
    HashKey {
        /// The key (generate one with e.g. `openssl rand -hex 32`).
        key: String,
    },
    /// Run the built-in demo MCP server (stdio by default), used as the demo upstream.
    DemoServer {
        /// Serve Streamable HTTP on this address instead of stdio (e.g. 127.0.0.1:0).
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
        /// Protocol era(s) to serve: legacy (2024-11-05 … 2025-11-25, the default), modern
        /// (2026-07-28, stateless) or dual (both).
        #[arg(long, default_value = "legacy")]
        era: mcp_hub_demo::Era,
    },
}

/// `mcp-hub registry …`.
#[derive(Debug, Subcommand)]
pub enum RegistryAction {
    /// Print every server definition as JSON (`{"format":1,"servers":[…]}`).
    Export,
    /// Create or replace every definition of a file written by `export`.
    Import {
        /// The file.
        file: PathBuf,
    },
}
