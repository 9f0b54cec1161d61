//! Client sessions: the [`SessionActor`] that owns one MCP session (negotiated version,
//! client capabilities, the streams attached to it, its calls in flight) and the
//! [`SessionDirectory`] that finds a session by id.

mod actor;
mod directory;
pub mod event_log;
mod messages;
mod methods;
pub mod shared;

pub use actor::{SessionActor, SessionConfig};
pub use directory::{SessionDirectory, SessionEntry};
pub use event_log::LogLimits;
pub use messages::{
    AttachGet, Close, HandleNotification, HandleRequest, HandleResponse, Inspect, OpenLegacy,
    Opened, Outbound, ReplyMode, SessionInfo, StreamDrained,
};
pub use shared::{SessionRecord, SharedSessions};
