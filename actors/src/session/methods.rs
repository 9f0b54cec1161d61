//! The MCP method table of a session: each client request is answered locally (initialize,
//! ping, lists from catalog snapshots) or forwarded to the server the router picks.

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::time::Instant;

use super::actor::{CallState, SessionActor};
use super::messages::HandleRequest;
use super::shared::SessionRecord;
use crate::directory::ServerHandle;
use crate::error::HubError;
use crate::protocol::jsonrpc::{empty_object, raw_from_string, to_raw};
use crate::protocol::version;
use crate::router::{self, ListKind, NameKind, Scope};
use crate::server::catalog::TaskSupport;
use crate::server::deadline::{run_until, Expired, Extension};
use crate::server::transport::next_upstream_id;
use crate::server::{CallSink, Forward};

type Answer = Result<Box<RawValue>, HubError>;

enum Dispatch {
    Now(Answer),
    Later(LocalBoxFuture<'static, Answer>),
}

#[derive(Deserialize)]
struct NameParam {
    name: String,
}

#[derive(Deserialize)]
struct UriParam {
    uri: String,
}

fn parse<T: for<'de> Deserialize<'de>>(
    params: Option<&RawValue>,
    hint: &str,
) -> Result<T, HubError> {
    params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .ok_or_else(|| HubError::invalid_params("Invalid params", hint))
}

impl SessionActor {
    pub(super) fn start_request(
        &mut self,
        ctx: &mut Context<Self>,
        msg: HandleRequest,
        stream: u64,
    ) {
        let HandleRequest {
            ctx: call_ctx,
            id,
            method,
            params,
            mode,
        } = msg;
        let tool = if method == "tools/call" {
            parse::<NameParam>(params.as_deref(), "")
                .ok()
                .map(|p| p.name)
        } else {
            None
        };
        if let Some(tool) = &tool {
            tracing::info!(
                event = "tool.call.accepted", request_id = %call_ctx.request_id, session = %self.id, tool = %tool,
                args_size = params.as_ref().map_or(0, |p| p.get().len()), "tool.call.accepted"
            );
        }
        self.calls.insert(
            id.clone(),
            CallState {
                stream,
                mode,
                upstream: None,
                handle: None,
                tool,
                request_id: call_ctx.request_id.clone(),
                started: Instant::now(),
            },
        );
        let related = self.related_stream(stream, mode);
        let sink = related.map(|s| CallSink {
            session: ctx.address().recipient(),
            stream: s,
            clock: Default::default(),
        });
        let me = ctx.address();
        match self.dispatch(&me, &call_ctx, &id, &method, params, sink) {
            Dispatch::Now(answer) => self.finish(id, answer),
            Dispatch::Later(fut) => {
                let key = id.clone();
                let handle = ctx.spawn(
                    fut.into_actor(self)
                        .map(move |answer, act, _| act.finish(key, answer)),
                );
                if let Some(call) = self.calls.get_mut(&id) {
                    call.handle = Some(handle);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        ctx_addr: &Addr<SessionActor>,
        call_ctx: &crate::context::CallCtx,
        id: &crate::protocol::Id,
        method: &str,
        params: Option<Box<RawValue>>,
        sink: Option<CallSink>,
    ) -> Dispatch {
        if method == "initialize" {
            return self.initialize(params.as_deref());
        }
        if method == "ping" {
            return Dispatch::Now(Ok(empty_object()));
        }
        if let Some(kind) = ListKind::from_method(method) {
            #[derive(Deserialize, Default)]
            struct CursorParam {
                cursor: Option<String>,
            }
            let cursor = params
                .as_deref()
                .and_then(|p| serde_json::from_str::<CursorParam>(p.get()).ok())
                .unwrap_or_default()
                .cursor;
            return Dispatch::Now(router::list(
                &self.servers,
                &self.scope,
                kind,
                cursor.as_deref(),
                self.config.page_size,
            ));
        }
        if method == "tools/call" {
            if let Err(e) = crate::validation::check_arguments_size(
                params.as_deref(),
                self.config.max_arguments_bytes,
            ) {
                tracing::warn!(event = "tool.call.failed", request_id = %call_ctx.request_id, session = %self.id, kind = "arguments_too_large", "tool.call.failed");
                return Dispatch::Now(Err(e));
            }
            // Invalid arguments are answered here, so the upstream never sees them.
            if let Some((tool, violations)) =
                crate::validation::check_call(&self.servers, &self.scope, params.as_deref())
            {
                let as_task =
                    self.version == version::LATEST && task_param(params.as_deref()).is_some();
                // A task-augmented request cannot be answered with a plain tool result.
                let answer = if as_task {
                    Err(crate::validation::invalid_params(&tool, &violations))
                } else {
                    crate::validation::rejection(self.version, &tool, &violations)
                };
                if answer.is_ok() {
                    tracing::warn!(event = "tool.call.failed", request_id = %call_ctx.request_id, session = %self.id, tool = %tool, kind = "invalid", violations = violations.len(), "tool.call.failed");
                }
                return Dispatch::Now(answer);
            }
        }
        if method == "tools/call" && self.version == version::LATEST {
            if let Some(task) = task_param(params.as_deref()) {
                return self.start_task(ctx_addr, call_ctx, params, task);
            }
        }
        if let Some(d) = self.task_method(method, params.as_deref()) {
            return d;
        }
        let all = self.scope == Scope::All;
        let target = match method {
            "tools/call" | "prompts/get" => {
                let kind = if method == "tools/call" {
                    NameKind::Tool
                } else {
                    NameKind::Prompt
                };
                parse::<NameParam>(params.as_deref(), "params.name is required")
                    .and_then(|p| router::resolve_name(&self.servers, &self.scope, kind, &p.name))
                    .map(|(h, name)| (h, all.then_some(name)))
            }
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                parse::<UriParam>(params.as_deref(), "params.uri is required")
                    .and_then(|p| router::resolve_uri(&self.servers, &self.scope, &p.uri))
                    .map(|h| (h, None))
            }
            "completion/complete" => return self.complete(call_ctx, id, params, sink),
            "logging/setLevel" if all => return self.set_level_everywhere(call_ctx, params),
            _ if all => return Dispatch::Now(Err(HubError::MethodNotFound(method.to_string()))),
            _ => match &self.scope {
                Scope::Server(sid) => self.servers.get(sid).map(|h| (h, None)).ok_or_else(|| {
                    HubError::ServerUnavailable {
                        server: sid.to_string(),
                        reason: "server is not registered or not enabled".into(),
                        retry_after_seconds: 5,
                    }
                }),
                Scope::All => Err(HubError::MethodNotFound(method.to_string())),
            },
        };
        match target {
            Ok((handle, rename)) => self.forward(
                call_ctx,
                id,
                handle,
                method,
                params,
                rename.as_deref(),
                sink,
            ),
            Err(e) => Dispatch::Now(Err(e)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn forward(
        &mut self,
        call_ctx: &crate::context::CallCtx,
        id: &crate::protocol::Id,
        handle: std::sync::Arc<ServerHandle>,
        method: &str,
        params: Option<Box<RawValue>>,
        rename: Option<&str>,
        sink: Option<CallSink>,
    ) -> Dispatch {
        // Before anything is sent: Addr::send enqueues at once.
        let Some(slot) = self.sessions.enter_call() else {
            return Dispatch::Now(Err(HubError::Busy {
                server: "hub".into(),
                retry_after_seconds: 1,
            }));
        };
        let upstream_id = next_upstream_id();
        let (params, progress) = match router::rewrite_params(params, rename, upstream_id) {
            Ok(p) => p,
            Err(e) => return Dispatch::Now(Err(e)),
        };
        let tool = self.calls.get(id).and_then(|c| c.tool.clone());
        if let Some(call) = self.calls.get_mut(id) {
            call.upstream = Some((handle.addr.clone(), upstream_id));
        }
        let extension = self
            .config
            .progress_hard_max
            .zip(sink.as_ref())
            .map(|(hard_max, sink)| Extension {
                clock: sink.clock.clone(),
                hard_max,
            });
        let start = tokio::time::Instant::now();
        let request = handle.addr.send(Forward {
            ctx: call_ctx.clone(),
            upstream_id,
            method: method.to_string(),
            params,
            progress,
            sink,
            tool,
        });
        let hub_timeout = self.config.hub_timeout;
        Dispatch::Later(
            async move {
                let _slot = slot;
                match run_until(request, start, hub_timeout, extension.as_ref()).await {
                    Ok(Ok(answer)) => answer,
                    Ok(Err(mailbox)) => Err(mailbox.into()),
                    Err(Expired::Timeout) => Err(HubError::Timeout {
                        layer: "hub",
                        timeout_ms: hub_timeout.as_millis() as u64,
                    }),
                    Err(Expired::HardMax) => Err(HubError::TimeoutHardMax {
                        layer: "hub",
                        hard_max_ms: extension
                            .as_ref()
                            .map_or(0, |e| e.hard_max.as_millis() as u64),
                    }),
                }
            }
            .boxed_local(),
        )
    }

    fn initialize(&mut self, params: Option<&RawValue>) -> Dispatch {
        if self.initialized {
            return Dispatch::Now(Err(HubError::invalid_params(
                "Session already initialized",
                "send initialize without Mcp-Session-Id to start a new session",
            )));
        }
        #[derive(Deserialize)]
        struct InitParams {
            #[serde(rename = "protocolVersion")]
            protocol_version: Option<String>,
            #[serde(default)]
            capabilities: Value,
        }
        let p: InitParams = match parse(
            params,
            "initialize needs params {protocolVersion, capabilities, clientInfo}",
        ) {
            Ok(p) => p,
            Err(e) => return Dispatch::Now(Err(e)),
        };
        self.version = version::negotiate(p.protocol_version.as_deref());
        self.client_caps = p.capabilities;
        let negotiated = self.version;
        tracing::info!(event = "session.opened", session = %self.id, user = %self.user, protocol_version = negotiated, "session.opened");
        let answer = match &self.scope {
            Scope::All => Dispatch::Now(Ok(to_raw(&json!({
                "protocolVersion": negotiated,
                "capabilities": {
                    "tools": { "listChanged": true },
                    "prompts": { "listChanged": true },
                    "resources": { "subscribe": true, "listChanged": true },
                    "logging": {},
                    "completions": {}
                },
                "serverInfo": { "name": "mcp-hub", "version": env!("CARGO_PKG_VERSION") },
                "instructions": "mcp-hub fronts several MCP servers; tools and prompts are named {server}__{name}."
            }))).map(|r| with_tasks_capability(r, negotiated))),
            Scope::Server(sid) => {
                let handle = self.servers.get(sid);
                let sid = sid.clone();
                Dispatch::Later(
                    async move {
                        let Some(handle) = handle else {
                            return Err(HubError::ServerUnavailable {
                                server: sid.to_string(),
                                reason: "server is not registered or not enabled".into(),
                                retry_after_seconds: 5,
                            });
                        };
                        // A server that is still starting gets a few seconds to finish its
                        // handshake, so the client sees its real capabilities.
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), handle.catalog.clone().wait_for(|c| c.ready)).await;
                        let catalog = handle.catalog();
                        let mut caps = Map::new();
                        for key in ["tools", "prompts", "resources", "logging", "completions"] {
                            if let Some(v) = catalog.capabilities.get(key).filter(|v| !v.is_null()) {
                                let mut v = v.clone();
                                if matches!(key, "tools" | "prompts" | "resources") {
                                    if let Value::Object(m) = &mut v {
                                        m.insert("listChanged".into(), Value::Bool(true));
                                    }
                                }
                                caps.insert(key.into(), v);
                            }
                        }
                        if !catalog.ready {
                            caps.insert("tools".into(), json!({ "listChanged": true }));
                        }
                        let server_info = if catalog.server_info.is_object() {
                            catalog.server_info.clone()
                        } else {
                            json!({ "name": format!("mcp-hub/{sid}"), "version": env!("CARGO_PKG_VERSION") })
                        };
                        let mut result = json!({
                            "protocolVersion": negotiated,
                            "capabilities": caps,
                            "serverInfo": server_info,
                        });
                        if let Some(i) = &catalog.instructions {
                            result["instructions"] = Value::String(i.clone());
                        }
                        Ok(with_tasks_capability(to_raw(&result), negotiated))
                    }
                    .boxed_local(),
                )
            }
        };
        let Some(shared) = self.shared.clone() else {
            return answer;
        };
        // Shared sessions: the record is in Redis before the client learns the id, so its
        // next request may land on any instance.
        let record = SessionRecord {
            user: self.user.to_string(),
            scope: match &self.scope {
                Scope::All => String::new(),
                Scope::Server(s) => s.to_string(),
            },
            version: negotiated.to_string(),
            caps: self.client_caps.clone(),
            node: shared.node().to_string(),
            created_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        };
        let id = self.id.clone();
        Dispatch::Later(
            async move {
                let answer = match answer {
                    Dispatch::Now(a) => a,
                    Dispatch::Later(f) => f.await,
                };
                if answer.is_ok() {
                    if let Err(e) = shared.put_record(&id, &record).await {
                        tracing::warn!(event = "session.shared.write_failed", session = %id, error = %e, "this session is served by this instance only");
                    }
                }
                answer
            }
            .boxed_local(),
        )
    }

    fn complete(
        &mut self,
        call_ctx: &crate::context::CallCtx,
        id: &crate::protocol::Id,
        params: Option<Box<RawValue>>,
        sink: Option<CallSink>,
    ) -> Dispatch {
        let mut map: Map<String, Value> = match parse(
            params.as_deref(),
            "completion/complete needs params {ref, argument}",
        ) {
            Ok(m) => m,
            Err(e) => return Dispatch::Now(Err(e)),
        };
        let target = {
            let reference = map.get_mut("ref").and_then(Value::as_object_mut);
            match reference {
                Some(r) if r.get("type").and_then(Value::as_str) == Some("ref/prompt") => {
                    let name = r
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    router::resolve_name(&self.servers, &self.scope, NameKind::Prompt, &name).map(
                        |(h, upstream)| {
                            r.insert("name".into(), Value::String(upstream));
                            h
                        },
                    )
                }
                Some(r) if r.get("type").and_then(Value::as_str) == Some("ref/resource") => {
                    let uri = r
                        .get("uri")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    router::resolve_uri(&self.servers, &self.scope, &uri)
                }
                _ => Err(HubError::invalid_params(
                    "Invalid params",
                    "params.ref must be {type:\"ref/prompt\",name} or {type:\"ref/resource\",uri}",
                )),
            }
        };
        match target {
            Ok(handle) => {
                let params = serde_json::to_string(&map).ok().map(raw_from_string);
                self.forward(
                    call_ctx,
                    id,
                    handle,
                    "completion/complete",
                    params,
                    None,
                    sink,
                )
            }
            Err(e) => Dispatch::Now(Err(e)),
        }
    }

    fn set_level_everywhere(
        &mut self,
        call_ctx: &crate::context::CallCtx,
        params: Option<Box<RawValue>>,
    ) -> Dispatch {
        let sends: Vec<_> = self
            .servers
            .snapshot()
            .into_iter()
            .filter(|h| h.catalog().has_capability("logging"))
            .map(|h| {
                h.addr.send(Forward {
                    ctx: call_ctx.clone(),
                    upstream_id: next_upstream_id(),
                    method: "logging/setLevel".into(),
                    params: params.clone(),
                    progress: None,
                    sink: None,
                    tool: None,
                })
            })
            .collect();
        Dispatch::Later(
            async move {
                futures_util::future::join_all(sends).await;
                Ok(empty_object())
            }
            .boxed_local(),
        )
    }
}

#[derive(Deserialize)]
struct TaskParam {
    ttl: Option<u64>,
}

/// `params.task` of a task-augmented request, if present.
fn task_param(params: Option<&RawValue>) -> Option<TaskParam> {
    #[derive(Deserialize)]
    struct P {
        task: Option<TaskParam>,
    }
    params
        .and_then(|p| serde_json::from_str::<P>(p.get()).ok())
        .and_then(|p| p.task)
}

/// The hub is a task receiver for tools/call (2025-11-25 sessions only).
fn with_tasks_capability(result: Box<RawValue>, negotiated: &str) -> Box<RawValue> {
    if negotiated != version::LATEST {
        return result;
    }
    let mut v: Value = serde_json::from_str(result.get()).unwrap_or(Value::Null);
    v["capabilities"]["tasks"] =
        json!({ "list": {}, "cancel": {}, "requests": { "tools": { "call": {} } } });
    to_raw(&v)
}

#[derive(Deserialize)]
struct TaskIdParam {
    #[serde(rename = "taskId")]
    task_id: String,
}

impl SessionActor {
    /// `tasks/get`, `tasks/result`, `tasks/list`, `tasks/cancel`, answered from the task store.
    fn task_method(&self, method: &str, params: Option<&RawValue>) -> Option<Dispatch> {
        let store = self.sessions.tasks();
        let owner = self.user.clone();
        let id = || parse::<TaskIdParam>(params, "params.taskId is required").map(|p| p.task_id);
        let fut: LocalBoxFuture<'static, Answer> = match method {
            "tasks/get" => match id() {
                Ok(task_id) => async move {
                    store
                        .send(crate::tasks::GetTask { owner, task_id })
                        .await?
                        .map(|v| to_raw(&v))
                }
                .boxed_local(),
                Err(e) => return Some(Dispatch::Now(Err(e))),
            },
            "tasks/result" => match id() {
                Ok(task_id) => async move {
                    let raw = store
                        .send(crate::tasks::AwaitResult {
                            owner,
                            task_id: task_id.clone(),
                        })
                        .await??;
                    Ok(crate::tasks::with_related_task(&raw, &task_id))
                }
                .boxed_local(),
                Err(e) => return Some(Dispatch::Now(Err(e))),
            },
            "tasks/cancel" => match id() {
                Ok(task_id) => async move {
                    store
                        .send(crate::tasks::CancelTask { owner, task_id })
                        .await?
                        .map(|v| to_raw(&v))
                }
                .boxed_local(),
                Err(e) => return Some(Dispatch::Now(Err(e))),
            },
            "tasks/list" => {
                #[derive(Deserialize, Default)]
                struct C {
                    cursor: Option<String>,
                }
                let cursor = params
                    .and_then(|p| serde_json::from_str::<C>(p.get()).ok())
                    .unwrap_or_default()
                    .cursor;
                async move {
                    store
                        .send(crate::tasks::ListTasks { owner, cursor })
                        .await?
                        .map(|v| to_raw(&v))
                }
                .boxed_local()
            }
            _ => return None,
        };
        Some(Dispatch::Later(fut))
    }

    /// A task-augmented tools/call: create the task, answer with it at once, and run the call
    /// in a detached future that records the outcome (it outlives this session).
    fn start_task(
        &mut self,
        me: &Addr<SessionActor>,
        call_ctx: &crate::context::CallCtx,
        params: Option<Box<RawValue>>,
        task: TaskParam,
    ) -> Dispatch {
        let name = match parse::<NameParam>(params.as_deref(), "params.name is required") {
            Ok(p) => p.name,
            Err(e) => return Dispatch::Now(Err(e)),
        };
        let (handle, upstream_name) =
            match router::resolve_name(&self.servers, &self.scope, NameKind::Tool, &name) {
                Ok(r) => r,
                Err(e) => return Dispatch::Now(Err(e)),
            };
        let support = handle
            .catalog()
            .tool(&upstream_name)
            .map(|t| t.task_support)
            .unwrap_or_default();
        if support == TaskSupport::Forbidden {
            return Dispatch::Now(Err(HubError::MethodNotFound(format!(
                "tools/call as a task: tool {name} does not support task execution"
            ))));
        }
        // The hub is the receiver: the upstream gets a plain call.
        let mut map: Map<String, Value> =
            match params.as_deref().map(|p| serde_json::from_str(p.get())) {
                Some(Ok(m)) => m,
                _ => {
                    return Dispatch::Now(Err(HubError::invalid_params(
                        "Invalid params",
                        "params must be an object",
                    )))
                }
            };
        map.remove("task");
        let plain = serde_json::to_string(&map).ok().map(raw_from_string);
        let upstream_id = next_upstream_id();
        let rename = (self.scope == Scope::All).then_some(upstream_name.as_str());
        let (params, progress) = match router::rewrite_params(plain, rename, upstream_id) {
            Ok(p) => p,
            Err(e) => return Dispatch::Now(Err(e)),
        };
        let store = self.sessions.tasks();
        let create = store.send(crate::tasks::CreateTask {
            owner: self.user.clone(),
            ttl_ms: task.ttl,
            watcher: Some(me.clone().recipient()),
        });
        let forward = Forward {
            ctx: call_ctx.clone(),
            upstream_id,
            method: "tools/call".into(),
            params,
            progress,
            // Stream 0 never exists: related messages fall back to the standalone stream.
            sink: Some(CallSink {
                session: me.clone().recipient(),
                stream: 0,
                clock: Default::default(),
            }),
            tool: Some(name),
        };
        Dispatch::Later(
            async move {
                let task = create.await??;
                let task_id = task["taskId"].as_str().unwrap_or_default().to_string();
                store.do_send(crate::tasks::AttachUpstream {
                    task_id: task_id.clone(),
                    cancel: handle.addr.clone().recipient(),
                    upstream_id,
                });
                let call = handle.addr.send(forward);
                actix::spawn(async move {
                    let outcome = match call.await {
                        Ok(Ok(result)) => Ok(result),
                        Ok(Err(e)) => Err(e.to_rpc()),
                        Err(e) => Err(HubError::from(e).to_rpc()),
                    };
                    store.do_send(crate::tasks::CompleteTask { task_id, outcome });
                });
                Ok(to_raw(&json!({ "task": task })))
            }
            .boxed_local(),
        )
    }
}
