//! The RegistryActor's public API. Writes come from the admin API and from startup
//! (config servers); reads from the admin API; [`Subscribe`] from the supervisor.

use actix::prelude::*;

use super::{RegistryError, ServerDef};

/// Create or replace a definition. Sent by the admin API. Returns `true` when it was new.
#[derive(Message)]
#[rtype(result = "Result<bool, RegistryError>")]
pub struct Upsert(pub ServerDef);

/// Remove a definition. Sent by the admin API. Returns `true` when it existed.
#[derive(Message)]
#[rtype(result = "Result<bool, RegistryError>")]
pub struct Delete(pub String);

/// One definition by id.
#[derive(Message)]
#[rtype(result = "Option<ServerDef>")]
pub struct Get(pub String);

/// Every definition, ordered by id.
#[derive(Message)]
#[rtype(result = "Vec<ServerDef>")]
pub struct List;

/// Subscribe to changes. Returns the current definitions so the subscriber starts in sync;
/// every later change arrives as [`RegistryChanged`].
#[derive(Message)]
#[rtype(result = "Vec<ServerDef>")]
pub struct Subscribe(pub Recipient<RegistryChanged>);

/// A definition changed. Sent by the RegistryActor to subscribers after the store accepted it.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum RegistryChanged {
    /// Created or replaced.
    Upserted(Box<ServerDef>),
    /// Removed.
    Deleted(String),
}

/// The tools a running server offers, after its handshake or a `list_changed`. Sent by the
/// Supervisor's catalog watchers; the RegistryActor records them in the store (Redis:
/// `{prefix}tools:{server}`, with `tool.upsert` / `tool.delete` events).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ToolsLoaded {
    /// Server id.
    pub server: String,
    /// Tool name → the tool's JSON as the upstream listed it.
    pub tools: Vec<(String, String)>,
}
