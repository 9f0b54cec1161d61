//! Supervisor: turns registry state into running ServerActors.
//!
//! State: the definition each running actor was started from.
//! Messages: `RegistryChanged` from the RegistryActor.
//! Timers: none (each ServerActor restarts its own upstream with backoff).
//! Failure behaviour: a ServerActor that dies without being told to (it panicked in a
//! handler, or stopped on its own) is noticed through its runtime channel closing, logged as
//! `server.actor.died` and started again from the same definition; its waiting callers got
//! an error when its queue was dropped. Replacing a definition stops the old actor before
//! the new one starts.

use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

use crate::directory::{ServerDirectory, ServerHandle};
use crate::registry::{RegistryActor, RegistryChanged, ServerDef, Subscribe, ToolsLoaded};
use crate::server::{ServerActor, ServerEnv, Shutdown};

/// Starts, replaces and stops ServerActors as definitions change.
pub struct Supervisor {
    registry: Addr<RegistryActor>,
    directory: ServerDirectory,
    env: Arc<ServerEnv>,
    running: HashMap<String, ServerDef>,
    /// Which actor instance currently serves each id (so the death of a replaced one is
    /// not mistaken for a crash).
    instances: HashMap<String, u64>,
    next_instance: u64,
}

/// A ServerActor's runtime channel closed: the actor is gone. Sent by the Supervisor's own
/// watcher futures.
#[derive(Message)]
#[rtype(result = "()")]
struct ActorGone {
    id: String,
    instance: u64,
}

impl Supervisor {
    /// A supervisor that will subscribe to `registry` when started.
    pub fn new(
        registry: Addr<RegistryActor>,
        directory: ServerDirectory,
        env: Arc<ServerEnv>,
    ) -> Self {
        Self {
            registry,
            directory,
            env,
            running: HashMap::new(),
            instances: HashMap::new(),
            next_instance: 0,
        }
    }

    fn apply(&mut self, ctx: &mut Context<Self>, def: ServerDef) {
        if self.running.get(&def.id) == Some(&def) {
            return;
        }
        self.stop(&def.id);
        if !def.enabled {
            return;
        }
        let (actor, catalog, runtime) = ServerActor::new(def.clone(), self.env.clone());
        let addr = actor.start();
        self.next_instance += 1;
        let instance = self.next_instance;
        self.instances.insert(def.id.clone(), instance);
        let mut watch = runtime.clone();
        let id = def.id.clone();
        let me = ctx.address();
        actix::spawn(async move {
            while watch.changed().await.is_ok() {}
            me.do_send(ActorGone { id, instance });
        });
        // The registry records each loaded tool list (Redis: `{prefix}tools:{id}`).
        let (mut tools, registry, id) = (catalog.clone(), self.registry.clone(), def.id.clone());
        actix::spawn(async move {
            while tools.changed().await.is_ok() {
                let listed: Vec<(String, String)> = {
                    let catalog = tools.borrow_and_update();
                    if !catalog.ready {
                        continue;
                    }
                    catalog
                        .tools
                        .iter()
                        .map(|t| (t.name.clone(), t.raw.get().to_string()))
                        .collect()
                };
                registry.do_send(ToolsLoaded {
                    server: id.clone(),
                    tools: listed,
                });
            }
        });
        self.directory.insert(ServerHandle {
            id: Arc::from(def.id.as_str()),
            addr,
            catalog,
            runtime,
            def: Arc::new(def.clone()),
        });
        self.running.insert(def.id.clone(), def);
    }

    fn stop(&mut self, id: &str) {
        self.instances.remove(id);
        if self.running.remove(id).is_some() {
            if let Some(handle) = self.directory.remove(id) {
                handle.addr.do_send(Shutdown);
            }
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        let me = ctx.address().recipient();
        self.registry
            .send(Subscribe(me))
            .into_actor(self)
            .map(|res, act, ctx| match res {
                Ok(defs) => defs.into_iter().for_each(|d| act.apply(ctx, d)),
                Err(e) => tracing::error!(event = "supervisor.subscribe_failed", error = %e),
            })
            .wait(ctx);
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        let ids: Vec<String> = self.running.keys().cloned().collect();
        ids.iter().for_each(|id| self.stop(id));
        Running::Stop
    }
}

impl Handler<RegistryChanged> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: RegistryChanged, ctx: &mut Self::Context) {
        match msg {
            RegistryChanged::Upserted(def) => self.apply(ctx, *def),
            RegistryChanged::Deleted(id) => self.stop(&id),
        }
    }
}

/// Stop every ServerActor (hub shutdown). Sent by the HTTP crate's startup code after the
/// HTTP server stopped accepting requests.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopAll;

impl Handler<StopAll> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: StopAll, _: &mut Self::Context) {
        let ids: Vec<String> = self.running.keys().cloned().collect();
        ids.iter().for_each(|id| self.stop(id));
    }
}

impl Handler<ActorGone> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ActorGone, ctx: &mut Self::Context) {
        if self.instances.get(&msg.id) != Some(&msg.instance) {
            return; // Stopped or replaced on purpose.
        }
        let Some(def) = self.running.get(&msg.id).cloned() else {
            return;
        };
        tracing::error!(event = "server.actor.died", server = %msg.id, "server.actor.died: the ServerActor stopped unexpectedly; starting a new one");
        metrics::counter!("mcp_hub_worker_restarts_total", "server" => msg.id.clone(), "reason" => "actor_died").increment(1);
        self.stop(&msg.id);
        self.apply(ctx, def);
    }
}
