//! Stand-alone launcher for the demo server (the hub embeds it as
//! `mcp-hub demo-server`). Usage: `demo` (stdio) or `demo --http ADDR`.

use std::process::ExitCode;

use mcp_hub_demo::{run, DemoTransport};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
            eprintln!("usage: demo [--http ADDR]");
            return ExitCode::from(2);
        }
    };
    match run(transport) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo server: {e}");
            ExitCode::FAILURE
        }
    }
}
