//! Modern `tools/call`, `prompts/get`, `resources/read`, `completion/complete`: forwarded
//! to the upstream over the hub's own upstream session, and bridged.
//!
//! A legacy upstream's server-to-client requests during the call become an
//! `input_required` answer (`drive.rs` gathers them, `input.rs` names them): they are held
//! in [`Pending`](super::Pending) under a random nonce, and the client gets a
//! `requestState` signed over (nonce, user, method, name, expiry). The retry's
//! `inputResponses` answer the held requests by key and the same call continues; its
//! answer (or the next input request) goes to the retry. Closing the response stream (or
//! the JSON response's connection) cancels the call upstream (`notifications/cancelled`).

use actix::prelude::*;
use actix_web::{HttpRequest, HttpResponse};
use mcp_hub_actors::protocol::modern::{self, RequestMeta, StateError};
use mcp_hub_actors::protocol::Id;
use mcp_hub_actors::router::{self, NameKind, Scope};
use mcp_hub_actors::server::catalog::TaskSupport;
use mcp_hub_actors::server::transport::next_upstream_id;
use mcp_hub_actors::server::{CallSink, Forward, ServerActor};
use mcp_hub_actors::HubError;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

use super::drive::respond;
use super::error;
use super::pending::cancel_upstream;
use super::relay::{CallEvent, Relay};
use crate::state::AppState;

/// One modern request that goes upstream.
pub(crate) struct CallRequest<'a> {
    pub req: &'a HttpRequest,
    pub state: &'a AppState,
    pub scope: Scope,
    pub id: Id,
    pub method: String,
    pub params: Value,
    pub meta: RequestMeta,
    pub user: Arc<str>,
    pub reply: super::Reply,
}

/// A call running upstream whose events a driver reads.
pub(crate) struct Running {
    pub(super) rx: mpsc::Receiver<CallEvent>,
    server: Addr<ServerActor>,
    pub(super) upstream_id: u64,
    /// The `_meta` of the request being answered (the first call's, then each retry's).
    pub(super) meta: RequestMeta,
    pub(super) method: String,
    pub(super) target: String,
    pub(super) user: Arc<str>,
    /// How many input requests got a generated name so far (`{capability}-{n}`).
    pub(super) asked: u32,
    /// The request's `inputResponses` not used for a held request: they answer upstream
    /// requests whose input-key hint names them, without asking the client.
    pub(super) prefill: Map<String, Value>,
    // Keeps the relay's address alive for as long as the call is read.
    _relay: Addr<Relay>,
}

impl Running {
    /// Cancels the call upstream.
    pub fn cancel(&self, why: &str) {
        cancel_upstream(&self.server, self.upstream_id, why);
    }
}

/// Serves the request: a retry (with `requestState`) continues a held call, anything else
/// starts one.
pub(crate) async fn serve(c: CallRequest<'_>) -> HttpResponse {
    let target = modern::name_of(&c.method, Some(&c.params))
        .flatten()
        .or_else(|| {
            c.params
                .get("ref")
                .and_then(|r| r.get("name").or_else(|| r.get("uri")))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    if let Some(token) = c
        .params
        .get("requestState")
        .and_then(Value::as_str)
        .map(str::to_string)
    {
        return resume(c, token, target).await;
    }
    // Without requestState nothing is held: the call starts afresh, and its inputResponses
    // answer only upstream requests whose input-key hint names them (a stateless client
    // may answer up front); the rest is ignored (SHOULD ignore unrecognised information).
    let id = c.id.clone();
    match start(&c, target) {
        Ok(Started::Call(mut run)) => {
            run.prefill = input_responses(&c.params);
            respond(c.req, c.state, id, run, c.reply).await
        }
        Ok(Started::Answered(resp)) => resp,
        Ok(Started::Task {
            handle,
            params,
            rename,
            tool,
        }) => {
            super::tasks::start(
                c.req,
                c.state,
                c.user.clone(),
                &id,
                handle,
                params,
                rename,
                tool,
                c.meta.clone(),
            )
            .await
        }
        Err(e) => error(Some(&id), &e.to_rpc()),
    }
}

enum Started {
    Call(Running),
    Answered(HttpResponse),
    Task {
        handle: std::sync::Arc<mcp_hub_actors::directory::ServerHandle>,
        params: Map<String, Value>,
        rename: Option<String>,
        tool: String,
    },
}

/// The request's `inputResponses` (empty when absent or not an object).
fn input_responses(params: &Value) -> Map<String, Value> {
    params
        .get("inputResponses")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Milliseconds since the epoch (`requestState` expiry).
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn resume(c: CallRequest<'_>, token: String, target: String) -> HttpResponse {
    let modern = &c.state.modern;
    let refuse = |e: StateError| {
        tracing::warn!(event = "modern.input.refused", user = %c.user, reason = e.reason(), "modern.input.refused");
        error(Some(&c.id), &e.to_rpc())
    };
    let claims = match modern.signer.verify(&token, &c.user, now_ms()) {
        Ok(cl) => cl,
        Err(e) => return refuse(e),
    };
    if claims.method != c.method || claims.target != target {
        return refuse(StateError::WrongRequest);
    }
    let Some(mut held) = modern.pending.take(&claims.nonce) else {
        return refuse(StateError::Replayed);
    };
    let mut responses = input_responses(&c.params);
    held.round.answer_from(&mut responses);
    if !held.round.is_empty() {
        // Ask again, with the same state, for what is still missing (what was answered went
        // upstream); the held requests keep waiting until the state expires.
        let again = modern::input_required(held.round.input_requests(), &held.token);
        modern.pending.restore(claims.nonce, held);
        let Value::Object(result) = again else {
            return super::not_found(&c.id, &c.method);
        };
        return super::ok(&c.id, result);
    }
    held.run.meta = c.meta;
    held.run.prefill = responses;
    respond(c.req, c.state, c.id, held.run, c.reply).await
}

/// Resolves the target and sends the call upstream (or starts a task).
fn start(c: &CallRequest<'_>, target: String) -> Result<Started, HubError> {
    let state = c.state;
    let all = c.scope == Scope::All;
    let mut params = match &c.params {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    if c.method == "tools/call" {
        let size = params
            .get("arguments")
            .and_then(|a| serde_json::to_string(a).ok())
            .map_or(0, |a| a.len());
        mcp_hub_actors::validation::arguments_size_error(
            size,
            state.settings.limits.max_arguments_bytes,
        )?;
    }
    let (handle, rename) = match c.method.as_str() {
        "tools/call" | "prompts/get" => {
            let kind = if c.method == "tools/call" {
                NameKind::Tool
            } else {
                NameKind::Prompt
            };
            let (h, upstream) = router::resolve_name(&state.servers, &c.scope, kind, &target)?;
            (h, all.then_some(upstream))
        }
        "resources/read" => (
            router::resolve_uri(&state.servers, &c.scope, &target)?,
            None,
        ),
        _ => {
            // completion/complete: the ref names a prompt or a resource.
            let r = params.get_mut("ref").and_then(Value::as_object_mut);
            match r {
                Some(r) if r.get("type").and_then(Value::as_str) == Some("ref/prompt") => {
                    let (h, upstream) =
                        router::resolve_name(&state.servers, &c.scope, NameKind::Prompt, &target)?;
                    r.insert("name".into(), Value::String(upstream));
                    (h, None)
                }
                _ => (
                    router::resolve_uri(&state.servers, &c.scope, &target)?,
                    None,
                ),
            }
        }
    };
    if c.method == "tools/call" {
        let upstream_name = rename.clone().unwrap_or_else(|| target.clone());
        let support = handle
            .catalog()
            .tool(&upstream_name)
            .map(|t| t.task_support)
            .unwrap_or_default();
        if support == TaskSupport::Required && !c.meta.has_tasks_extension() {
            let e = modern::missing_tasks_extension();
            return Ok(Started::Answered(error(Some(&c.id), &e)));
        }
        if support != TaskSupport::Forbidden && c.meta.has_tasks_extension() {
            strip_modern(&mut params);
            return Ok(Started::Task {
                handle,
                params,
                rename,
                tool: target,
            });
        }
    }
    strip_modern(&mut params);
    // The rename is done on the map already parsed, so rewrite_params below only has a
    // progress token to look for; to_raw_value prints without parsing the text again.
    if let Some(name) = &rename {
        params.insert("name".into(), Value::String(name.clone()));
    }
    let raw =
        serde_json::value::to_raw_value(&params).map_err(|e| HubError::Internal(e.to_string()))?;
    let upstream_id = next_upstream_id();
    let (fwd_params, progress) = router::rewrite_params(Some(raw), None, upstream_id)?;
    let slot = state.sessions.enter_call().ok_or(HubError::Busy {
        server: "hub".into(),
        retry_after_seconds: 1,
    })?;
    let (tx, rx) = mpsc::channel(64);
    let relay = Relay {
        tx: tx.clone(),
        answers: None,
    }
    .start();
    let forward = Forward {
        ctx: super::super::call_ctx(c.req, None),
        upstream_id,
        method: c.method.clone(),
        params: fwd_params,
        progress,
        sink: Some(CallSink {
            session: relay.clone().recipient(),
            stream: 1,
            clock: Default::default(),
        }),
        tool: (c.method == "tools/call").then(|| target.clone()),
    };
    // The upstream call may wait on the client's input for up to the state TTL.
    let limit = Duration::from_millis(state.settings.timeouts.hub_ms) + state.modern.state_ttl;
    let send = handle.addr.send(forward);
    actix::spawn(async move {
        let _slot = slot;
        let answer = match tokio::time::timeout(limit, send).await {
            Ok(Ok(a)) => a,
            Ok(Err(mailbox)) => Err(mailbox.into()),
            Err(_) => Err(HubError::Timeout {
                layer: "hub",
                timeout_ms: limit.as_millis() as u64,
            }),
        };
        let _ = tx.send(CallEvent::Done(answer)).await;
    });
    Ok(Started::Call(Running {
        rx,
        server: handle.addr.clone(),
        upstream_id,
        meta: c.meta.clone(),
        method: c.method.clone(),
        target,
        user: c.user.clone(),
        asked: 0,
        prefill: Map::new(),
        _relay: relay,
    }))
}

/// Removes what belongs to the modern envelope, not to the upstream request.
pub(crate) fn strip_modern(params: &mut Map<String, Value>) {
    params.remove("inputResponses");
    params.remove("requestState");
    if let Some(Value::Object(meta)) = params.get_mut("_meta") {
        for k in [
            modern::META_PROTOCOL_VERSION,
            modern::META_CLIENT_CAPABILITIES,
            modern::META_CLIENT_INFO,
            modern::META_LOG_LEVEL,
        ] {
            meta.remove(k);
        }
        if meta.is_empty() {
            params.remove("_meta");
        }
    }
}
