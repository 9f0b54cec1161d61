//! RegistryActor: the single writer of server definitions.
//!
//! State: the current definitions (mirror of the store), subscribers.
//! Messages: Upsert, Delete, Get, List, Subscribe (see `messages.rs`).
//! Timers: for shared stores (Redis), a periodic reconcile; pub/sub change signals trigger
//! one at once. A reconcile applies what changed elsewhere and announces it like a local
//! write.
//! Failure behaviour: a write the store refuses changes nothing and returns the error; writes
//! are applied one at a time (`AtomicResponse`) so the store and the mirror never disagree.

use actix::prelude::*;
use std::collections::BTreeMap;

use super::messages::*;
use super::{RegistryError, ServerDef, Store, StoreError};

/// Owns the definitions; see the module docs.
pub struct RegistryActor {
    servers: BTreeMap<String, ServerDef>,
    store: std::rc::Rc<dyn Store>,
    subscribers: Vec<Recipient<RegistryChanged>>,
    reconciling: bool,
    dirty: bool,
    /// Counts local writes, so a reconcile that read the store before a write finished
    /// does not undo it with its older picture (it is discarded and run again).
    writes: u64,
}

impl RegistryActor {
    /// Loads the store, then applies `seed` (the config file's servers, which win over stored
    /// copies with the same id). Fails when the store cannot be read or a seed is invalid.
    pub async fn load(store: impl Store, seed: Vec<ServerDef>) -> Result<Self, RegistryError> {
        let store: std::rc::Rc<dyn Store> = std::rc::Rc::new(store);
        let mut servers: BTreeMap<String, ServerDef> = store
            .sync(Vec::new())
            .await?
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect();
        for def in seed {
            def.validate()?;
            if servers.get(&def.id) != Some(&def) {
                store.upsert(def.clone()).await?;
                servers.insert(def.id.clone(), def);
            }
        }
        Ok(Self {
            servers,
            store,
            subscribers: Vec::new(),
            reconciling: false,
            dirty: false,
            writes: 0,
        })
    }

    /// Brings the mirror in line with the store (one reconcile at a time; a signal that
    /// arrives meanwhile runs another right after).
    fn reconcile(&mut self, ctx: &mut Context<Self>) {
        if self.reconciling {
            self.dirty = true;
            return;
        }
        self.reconciling = true;
        let mirror: Vec<ServerDef> = self.servers.values().cloned().collect();
        let writes = self.writes;
        ctx.spawn(self.store.sync(mirror).into_actor(self).map(move |res, act, ctx| {
            act.reconciling = false;
            match res {
                Ok(_) if act.writes != writes => act.dirty = true,
                Ok(defs) => act.apply_remote(defs),
                Err(e) => tracing::warn!(event = "registry.reconcile_failed", error = %e, "registry.reconcile_failed"),
            }
            if std::mem::take(&mut act.dirty) {
                act.reconcile(ctx);
            }
        }));
    }

    fn apply_remote(&mut self, defs: Vec<ServerDef>) {
        let incoming: BTreeMap<String, ServerDef> =
            defs.into_iter().map(|d| (d.id.clone(), d)).collect();
        let gone: Vec<String> = self
            .servers
            .keys()
            .filter(|id| !incoming.contains_key(*id))
            .cloned()
            .collect();
        for id in gone {
            self.servers.remove(&id);
            tracing::info!(event = "registry.delete", server = %id, source = "store", "registry.delete");
            self.publish(RegistryChanged::Deleted(id));
        }
        for (id, def) in incoming {
            if self.servers.get(&id) != Some(&def) {
                if let Err(e) = def.validate() {
                    tracing::warn!(event = "registry.invalid_remote", server = %id, error = %e, "ignoring an invalid definition from the store");
                    continue;
                }
                self.servers.insert(id.clone(), def.clone());
                tracing::info!(event = "registry.upsert", server = %id, source = "store", "registry.upsert");
                self.publish(RegistryChanged::Upserted(Box::new(def)));
            }
        }
    }

    fn publish(&mut self, change: RegistryChanged) {
        self.subscribers.retain(|s| s.connected());
        for s in &self.subscribers {
            s.do_send(change.clone());
        }
    }
}

impl Actor for RegistryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(256);
        if let Some(rx) = self.store.changes() {
            ctx.add_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(rx));
        }
        if let Some(every) = self.store.reconcile_every() {
            ctx.run_interval(every, |act, ctx| act.reconcile(ctx));
        }
    }
}

impl Handler<Upsert> for RegistryActor {
    type Result = AtomicResponse<Self, Result<bool, RegistryError>>;

    fn handle(&mut self, msg: Upsert, _: &mut Self::Context) -> Self::Result {
        let def = msg.0;
        if let Err(e) = def.validate() {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e.into()))));
        }
        // Redis may have restarted empty since the last reconcile: write the mirror back,
        // then the change, instead of refusing an operator until the next reconcile.
        let store = self.store.clone();
        let mirror: Vec<ServerDef> = self.servers.values().cloned().collect();
        let pending = def.clone();
        let write = async move {
            match store.upsert(pending.clone()).await {
                Err(StoreError::Stale) => {
                    let synced = store.sync(mirror).await?;
                    store.upsert(pending).await?;
                    Ok(Some(synced))
                }
                other => other.map(|()| None),
            }
        };
        AtomicResponse::new(Box::pin(write.into_actor(self).map(
            move |res: Result<Option<Vec<ServerDef>>, StoreError>, act, _| {
                act.writes += 1;
                if let Some(synced) = res? {
                    act.apply_remote(synced);
                }
                let created = act.servers.insert(def.id.clone(), def.clone()).is_none();
                tracing::info!(event = "registry.upsert", server = %def.id, created, "registry.upsert");
                act.publish(RegistryChanged::Upserted(Box::new(def)));
                Ok(created)
            },
        )))
    }
}

impl Handler<Delete> for RegistryActor {
    type Result = AtomicResponse<Self, Result<bool, RegistryError>>;

    fn handle(&mut self, msg: Delete, _: &mut Self::Context) -> Self::Result {
        let id = msg.0;
        if !self.servers.contains_key(&id) {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(false))));
        }
        let store = self.store.clone();
        let mirror: Vec<ServerDef> = self.servers.values().cloned().collect();
        let target = id.clone();
        // As for upserts: if Redis restarted empty, write the mirror back before deleting.
        let write = async move {
            match store.delete(target.clone()).await {
                Err(StoreError::Stale) => {
                    let synced = store.sync(mirror).await?;
                    store.delete(target).await?;
                    Ok(Some(synced))
                }
                other => other.map(|()| None),
            }
        };
        AtomicResponse::new(Box::pin(write.into_actor(self).map(
            move |res: Result<Option<Vec<ServerDef>>, StoreError>, act, _| {
                act.writes += 1;
                if let Some(synced) = res? {
                    act.apply_remote(synced);
                }
                act.servers.remove(&id);
                tracing::info!(event = "registry.delete", server = %id, "registry.delete");
                act.publish(RegistryChanged::Deleted(id));
                Ok(true)
            },
        )))
    }
}

impl Handler<ToolsLoaded> for RegistryActor {
    type Result = ();

    fn handle(&mut self, msg: ToolsLoaded, ctx: &mut Self::Context) {
        if !self.servers.contains_key(&msg.server) {
            return; // Deleted meanwhile: its tools went with it.
        }
        let server = msg.server.clone();
        ctx.spawn(
            self.store
                .put_tools(msg.server, msg.tools)
                .into_actor(self)
                .map(move |res, _, _| {
                    if let Err(e) = res {
                        tracing::warn!(event = "registry.tools_write_failed", server = %server, error = %e, "registry.tools_write_failed");
                    }
                }),
        );
    }
}

impl Handler<Get> for RegistryActor {
    type Result = Option<ServerDef>;

    fn handle(&mut self, msg: Get, _: &mut Self::Context) -> Self::Result {
        self.servers.get(&msg.0).cloned()
    }
}

impl Handler<List> for RegistryActor {
    type Result = Vec<ServerDef>;

    fn handle(&mut self, _: List, _: &mut Self::Context) -> Self::Result {
        self.servers.values().cloned().collect()
    }
}

impl Handler<Subscribe> for RegistryActor {
    type Result = Vec<ServerDef>;

    fn handle(&mut self, msg: Subscribe, _: &mut Self::Context) -> Self::Result {
        self.subscribers.push(msg.0);
        self.servers.values().cloned().collect()
    }
}

impl StreamHandler<()> for RegistryActor {
    fn handle(&mut self, _: (), ctx: &mut Self::Context) {
        self.reconcile(ctx);
    }

    fn finished(&mut self, _: &mut Self::Context) {
        // The change feed ended (the store shut it): periodic reconciles continue.
    }
}
