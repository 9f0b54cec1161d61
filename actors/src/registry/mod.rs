//! The registry: server definitions, where they are stored, and the actor that is their
//! only writer.
//!
//! - [`ServerDef`]: what an operator registers (validated by [`ServerDef::validate`]).
//! - [`Store`]: where definitions persist; [`FileStore`] is the embedded default.
//! - [`RegistryActor`]: applies writes to the store, then announces them as
//!   [`RegistryChanged`] events to subscribers (the supervisor).

mod actor;
mod def;
mod file_store;
mod messages;
mod redis_store;

pub use actor::RegistryActor;
pub use def::{
    DefError, Placement, RestBody, RestMethod, RestResponse, RestTool, ServerDef, SessionMode,
    TransportKind,
};
pub use file_store::FileStore;
pub use messages::{Delete, Get, List, RegistryChanged, Subscribe, ToolsLoaded, Upsert};
pub use redis_store::RedisStore;

use futures_util::future::LocalBoxFuture;

/// Persistent storage of server definitions. Implementations do their own I/O off the
/// actor thread; the registry actor calls them one write at a time.
pub trait Store: 'static {
    /// Every stored definition.
    fn load_all(&self) -> LocalBoxFuture<'static, Result<Vec<ServerDef>, StoreError>>;
    /// Creates or replaces one definition.
    fn upsert(&self, def: ServerDef) -> LocalBoxFuture<'static, Result<(), StoreError>>;
    /// Removes one definition (absent is not an error).
    fn delete(&self, id: String) -> LocalBoxFuture<'static, Result<(), StoreError>>;
    /// Reconciles with the store given this instance's mirror; returns the authoritative
    /// definitions. A store that can lose data (Redis without persistence) writes the mirror
    /// back when it notices. Stores nobody else writes just load.
    fn sync(
        &self,
        mirror: Vec<ServerDef>,
    ) -> LocalBoxFuture<'static, Result<Vec<ServerDef>, StoreError>> {
        let _ = mirror;
        self.load_all()
    }
    /// Records the tools a server offers (name → the tool's JSON as listed), replacing what
    /// was recorded for it. Shared stores publish each change; the embedded store keeps
    /// tools in memory only (they are re-read from the upstream at every start).
    fn put_tools(
        &self,
        server: String,
        tools: Vec<(String, String)>,
    ) -> LocalBoxFuture<'static, Result<(), StoreError>> {
        let _ = (server, tools);
        Box::pin(async { Ok(()) })
    }
    /// A signal each time someone else may have changed the store (pub/sub), for stores
    /// shared between instances.
    fn changes(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<()>> {
        None
    }
    /// How often to reconcile, for shared stores (a missed change heals within this).
    fn reconcile_every(&self) -> Option<std::time::Duration> {
        None
    }
}

/// A storage failure. The admin API answers 503 with this message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store could not be read or written (names the cause).
    #[error("registry store unavailable: {0}")]
    Unavailable(String),
    /// The shared store lost its data since this instance last synced (Redis restarted
    /// empty): the registry actor writes its mirror back, then retries the write once.
    #[error("registry store unavailable: redis lost the shared registry (restarted empty?) and this instance has not written its copy back yet; retry in a few seconds")]
    Stale,
}

/// Why a registry write was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// The definition is invalid; names the field.
    #[error(transparent)]
    Invalid(#[from] DefError),
    /// The store could not persist the change; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
