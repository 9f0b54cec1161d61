//! `mcp-hub-demo`: the mcp-hub's built-in demo MCP server.
//!
//! It is the hub's demo upstream, its integration-test fixture and the target
//! of the official MCP conformance suite. It speaks protocol revisions
//! 2024-11-05 through 2025-11-25 over stdio (newline-delimited JSON-RPC) or
//! Streamable HTTP and, with [`Era::Modern`] or [`Era::Dual`], the stateless
//! 2026-07-28 revision ([`modern`]); it implements the conformance fixtures (`test_*` tools,
//! `test://` resources, `test_*` prompts) plus hub test tools (`echo`, `add`,
//! `sleep`, `fail`, `cancelled_requests`, …).
//!
//! The hub calls [`run`]; the transport-independent core is [`core::Server`].

#![forbid(unsafe_code)]

pub mod core;
pub mod http;
pub mod modern;
mod prompts;
mod resources;
pub mod stdio;
mod tools;

pub use crate::core::{Outbound, RpcError, Server, Shared};
pub use crate::modern::Era;

/// Which transport the demo server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoTransport {
    /// Newline-delimited JSON-RPC on stdin/stdout.
    Stdio,
    /// Streamable HTTP on `http://ADDR/mcp`.
    Http(std::net::SocketAddr),
}

/// Runs the demo server until stdin closes (stdio) or forever (http).
///
/// Builds its own runtime: a current-thread tokio runtime for stdio, an
/// actix system for HTTP. In HTTP mode it prints one line
/// `listening on http://ADDR/mcp` to stderr once bound (ADDR is the real
/// bound address, so port 0 works).
pub fn run(transport: DemoTransport) -> std::io::Result<()> {
    run_with_era(transport, Era::Legacy)
}

/// Like [`run`], serving the given protocol era(s) (see [`Era`]).
pub fn run_with_era(transport: DemoTransport, era: Era) -> std::io::Result<()> {
    match transport {
        DemoTransport::Stdio => stdio::run(era),
        DemoTransport::Http(addr) => http::run(addr, era),
    }
}
