//! [`SessionDirectory`]: live sessions by id, readable from every HTTP worker.
//!
//! A SessionActor inserts itself on creation and removes itself when it stops, so the
//! directory never holds a dead session for long; a lookup that races a stop gets a closed
//! mailbox, which the HTTP layer also answers with 404.

use actix::prelude::*;
use dashmap::DashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::actor::{SessionActor, SessionConfig};
use super::messages::CatalogChanged;
use super::shared::{SessionRecord, SharedSessions};
use crate::directory::{HubEvent, ServerDirectory};
use crate::error::HubError;
use crate::router::Scope;
use crate::tasks::TaskStore;

/// One live session.
#[derive(Clone)]
pub struct SessionEntry {
    /// Its actor.
    pub addr: Addr<SessionActor>,
    /// The user who created it; only that user may use it.
    pub user: Arc<str>,
    /// `/mcp` or `/mcp/{server}`.
    pub scope: Scope,
}

/// Live sessions. Cheap to clone.
#[derive(Clone)]
pub struct SessionDirectory {
    sessions: Arc<DashMap<Arc<str>, SessionEntry>>,
    count: Arc<AtomicUsize>,
    draining: Arc<std::sync::atomic::AtomicBool>,
    in_flight: Arc<AtomicUsize>,
    per_user: Arc<DashMap<Arc<str>, usize>>,
    config: Arc<SessionConfig>,
    servers: ServerDirectory,
    tasks: Addr<TaskStore>,
    shared: Option<SharedSessions>,
}

impl SessionDirectory {
    /// An empty directory whose sessions route through `servers` and keep tasks in `tasks`.
    pub fn new(config: SessionConfig, servers: ServerDirectory, tasks: Addr<TaskStore>) -> Self {
        Self {
            sessions: Arc::new(DashMap::new()),
            count: Arc::new(AtomicUsize::new(0)),
            draining: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            per_user: Arc::new(DashMap::new()),
            config: Arc::new(config),
            servers,
            tasks,
            shared: None,
        }
    }

    /// Mirrors every session in Redis, so other instances can serve and resume them.
    pub fn with_shared(mut self, shared: SharedSessions) -> Self {
        self.shared = Some(shared);
        self
    }

    /// The Redis mirror, when sessions are shared.
    pub fn shared(&self) -> Option<&SharedSessions> {
        self.shared.as_ref()
    }

    /// Starts a new session actor on the current arbiter. Fails past `max_sessions` in all
    /// or `max_sessions_per_user` for this user.
    pub fn create(
        &self,
        user: Arc<str>,
        scope: Scope,
    ) -> Result<(Arc<str>, Addr<SessionActor>), HubError> {
        // 128 random bits from the OS CSPRNG, visible ASCII.
        let id: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
        let addr = self.start(id.clone(), user.clone(), scope.clone(), None)?;
        self.sessions.insert(
            id.clone(),
            SessionEntry {
                addr: addr.clone(),
                user,
                scope,
            },
        );
        Ok((id, addr))
    }

    /// Takes in a session another instance created (its record came from Redis): a local
    /// actor serves it from now on, already initialized.
    pub fn adopt(&self, id: &str, record: SessionRecord) -> Result<SessionEntry, HubError> {
        let scope = if record.scope.is_empty() {
            Scope::All
        } else {
            Scope::Server(Arc::from(record.scope.as_str()))
        };
        let user: Arc<str> = Arc::from(record.user.as_str());
        match self.sessions.entry(Arc::from(id)) {
            // Another request adopted it first.
            dashmap::Entry::Occupied(e) => Ok(e.get().clone()),
            dashmap::Entry::Vacant(v) => {
                let addr = self.start(Arc::from(id), user.clone(), scope.clone(), Some(record))?;
                tracing::info!(event = "session.adopted", session = %id, "session.adopted");
                let entry = SessionEntry { addr, user, scope };
                v.insert(entry.clone());
                Ok(entry)
            }
        }
    }

    /// Counts a session against the limits and starts its actor (the caller lists it).
    fn start(
        &self,
        id: Arc<str>,
        user: Arc<str>,
        scope: Scope,
        adopted: Option<SessionRecord>,
    ) -> Result<Addr<SessionActor>, HubError> {
        if self.is_draining() {
            return Err(HubError::Draining);
        }
        if self.count.fetch_add(1, Ordering::AcqRel) >= self.config.max_sessions {
            self.count.fetch_sub(1, Ordering::AcqRel);
            return Err(HubError::LimitReached {
                what: "Session",
                limit: self.config.max_sessions,
                retry_after_seconds: 5,
            });
        }
        {
            let mut mine = self.per_user.entry(user.clone()).or_insert(0);
            if *mine >= self.config.max_sessions_per_user {
                drop(mine);
                self.count.fetch_sub(1, Ordering::AcqRel);
                return Err(HubError::LimitReached {
                    what: "Session per user",
                    limit: self.config.max_sessions_per_user,
                    retry_after_seconds: 5,
                });
            }
            *mine += 1;
        }
        let mut actor = SessionActor::new(
            id.clone(),
            user.clone(),
            scope.clone(),
            self.servers.clone(),
            self.clone(),
            self.config.clone(),
        );
        if let Some(record) = adopted {
            actor.restore(&record);
        }
        Ok(actor.start())
    }

    /// Admits one more call in flight, or refuses past `max_in_flight` (the guard releases
    /// the slot when dropped).
    pub fn enter_call(&self) -> Option<InFlightGuard> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.config.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(InFlightGuard(self.in_flight.clone()))
    }

    /// Stop taking new sessions (graceful shutdown).
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether the hub is shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// The task store.
    pub fn tasks(&self) -> Addr<TaskStore> {
        self.tasks.clone()
    }

    /// Looks a session up.
    pub fn get(&self, id: &str) -> Option<SessionEntry> {
        self.sessions.get(id).map(|e| e.value().clone())
    }

    /// Live sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Every session's address (for shutdown).
    pub fn all(&self) -> Vec<Addr<SessionActor>> {
        self.sessions
            .iter()
            .map(|e| e.value().addr.clone())
            .collect()
    }

    pub(crate) fn remove(&self, id: &str) {
        if let Some((_, entry)) = self.sessions.remove(id) {
            self.count.fetch_sub(1, Ordering::AcqRel);
            let emptied = self.per_user.get_mut(&entry.user).map(|mut n| {
                *n = n.saturating_sub(1);
                *n == 0
            });
            if emptied == Some(true) {
                self.per_user.remove_if(&entry.user, |_, n| *n == 0);
            }
        }
    }

    /// Relays catalog changes to the sessions that see the server. Run once at startup.
    pub fn spawn_notifier(&self) {
        let mut rx = self.servers.subscribe();
        let sessions = self.sessions.clone();
        actix::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(HubEvent::CatalogChanged { server }) => {
                        for e in sessions.iter() {
                            let sees = match &e.value().scope {
                                Scope::All => true,
                                Scope::Server(id) => *id == server,
                            };
                            if sees {
                                e.value().addr.do_send(CatalogChanged {
                                    server: server.clone(),
                                });
                            }
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }
}

/// One call in flight across the hub; releases its slot when dropped.
pub struct InFlightGuard(Arc<AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
