//! One upstream MCP server: the [`ServerActor`] that owns its connection, queue and
//! lifecycle, the [`Catalog`] of what it offers, and the transports it speaks.

mod actor;
pub mod breaker;
pub mod catalog;
pub mod children;
pub mod deadline;
pub mod exclusive;
pub mod input_collector;
pub mod latency;
mod messages;
pub mod openapi;
pub mod queue;
mod runtime;
pub mod sink;
pub mod ssrf;
mod supervision;
pub mod transport;
pub mod upstream_session;

pub use actor::{ServerActor, ServerEnv};
pub use catalog::Catalog;
pub use messages::{Cancel, ClientSessionClosed, Forward, Restart, Shutdown, TestFault};
pub use runtime::{RuntimeStatus, Status};
pub use sink::{CallSink, ProgressClock, ReplyToUpstream, UpstreamEvent, UpstreamEventKind};
pub use supervision::SupervisionConfig;
