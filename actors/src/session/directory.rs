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
        }
    }

    /// Starts a new session actor on the current arbiter. Fails past `max_sessions` in all
    /// or `max_sessions_per_user` for this user.
    pub fn create(
        &self,
        user: Arc<str>,
        scope: Scope,
    ) -> Result<(Arc<str>, Addr<SessionActor>), HubError> {
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
        // 128 random bits from the OS CSPRNG, visible ASCII.
        let id: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
        let actor = SessionActor::new(
            id.clone(),
            user.clone(),
            scope.clone(),
            self.servers.clone(),
            self.clone(),
            self.config.clone(),
        );
        let addr = actor.start();
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
