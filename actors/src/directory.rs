//! [`ServerDirectory`]: the running servers, readable from any thread without an actor hop.
//!
//! Written only by the Supervisor (insert on start, remove on stop). Each entry carries the
//! server's address and `watch` receivers for its catalog and runtime status, which only
//! the ServerActor writes. Catalog changes are also announced as [`HubEvent`]s so sessions
//! can tell their clients that lists changed.

use actix::Addr;
use dashmap::DashMap;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

use crate::server::{Catalog, RuntimeStatus, ServerActor};

/// A hub-wide event.
#[derive(Debug, Clone)]
pub enum HubEvent {
    /// A server's catalog changed (it became ready, or announced list_changed, or stopped).
    CatalogChanged {
        /// Server id.
        server: Arc<str>,
    },
}

/// One running server as seen by readers.
#[derive(Clone)]
pub struct ServerHandle {
    /// Server id.
    pub id: Arc<str>,
    /// Its actor.
    pub addr: Addr<ServerActor>,
    /// What it offers.
    pub catalog: watch::Receiver<Arc<Catalog>>,
    /// How it is doing.
    pub runtime: watch::Receiver<RuntimeStatus>,
    /// The definition it runs.
    pub def: Arc<crate::registry::ServerDef>,
}

impl ServerHandle {
    /// The current catalog.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }
}

/// Running servers by id. Cheap to clone.
#[derive(Clone)]
pub struct ServerDirectory {
    /// Shared handles: a lookup per call costs one reference count, not a clone of every
    /// field (an actor address clone allocates).
    servers: Arc<DashMap<String, Arc<ServerHandle>>>,
    events: broadcast::Sender<HubEvent>,
}

impl Default for ServerDirectory {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self {
            servers: Arc::new(DashMap::new()),
            events: broadcast::channel(1024).0,
        }
    }

    /// The sender ServerActors announce catalog changes on.
    pub fn events(&self) -> broadcast::Sender<HubEvent> {
        self.events.clone()
    }

    /// Subscribes to hub events.
    pub fn subscribe(&self) -> broadcast::Receiver<HubEvent> {
        self.events.subscribe()
    }

    /// One server.
    pub fn get(&self, id: &str) -> Option<Arc<ServerHandle>> {
        self.servers.get(id).map(|e| e.value().clone())
    }

    /// Every server, ordered by id (so merged lists are deterministic).
    pub fn snapshot(&self) -> Vec<Arc<ServerHandle>> {
        let mut all: Vec<Arc<ServerHandle>> =
            self.servers.iter().map(|e| e.value().clone()).collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Number of running servers.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Whether no server runs.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    pub(crate) fn insert(&self, handle: ServerHandle) {
        self.servers.insert(handle.id.to_string(), Arc::new(handle));
    }

    pub(crate) fn remove(&self, id: &str) -> Option<Arc<ServerHandle>> {
        let removed = self.servers.remove(id).map(|(_, h)| h);
        if removed.is_some() {
            let _ = self.events.send(HubEvent::CatalogChanged {
                server: Arc::from(id),
            });
        }
        removed
    }
}
