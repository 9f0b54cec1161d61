//! Stand-alone launcher for the demo server (the hub embeds it as
//! `mcp-hub demo-server`). Usage: `demo [--era legacy|modern|dual]` (stdio) or
//! `demo [--era …] --http ADDR`.

use std::process::ExitCode;

use mcp_hub_demo::{run_with_era, DemoTransport, Era};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut era = Era::Legacy;
    if let Some(i) = args.iter().position(|a| a == "--era") {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        era = match value.parse() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
        args.drain(i..(i + 2).min(args.len()));
    }
    let transport = match args.as_slice() {
        [] => DemoTransport::Stdio,
        [flag, addr] if flag == "--http" => match addr.parse() {
            Ok(a) => DemoTransport::Http(a),
            Err(e) => {
                eprintln!("invalid address {addr:?}: {e}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: demo [--era legacy|modern|dual] [--http ADDR]");
            return ExitCode::from(2);
        }
    };
    match run_with_era(transport, era) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo server: {e}");
            ExitCode::FAILURE
        }
    }
}
