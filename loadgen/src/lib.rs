//! loadgen: the load tool of mcp-hub.
//!
//! ```text
//! sessions (mcp::Session, one keep-alive HTTP/1.1 connection each)
//!    --POST tools/call--> hub /mcp --> upstream (upstream.rs, or any MCP server)
//!          JSON or SSE answers (sse.rs) -> stats::Recorder per worker -> load::RunReport
//! procstat: CPU (utime+stime) and RSS of the hub and upstream pids while load runs
//! scenario/: start an upstream + hub, run load::run phases, compare, print targets
//! ```

pub mod cli;
pub mod load;
pub mod mcp;
pub mod procstat;
pub mod report;
pub mod scenario;
pub mod sse;
pub mod stats;
pub mod upstream;
