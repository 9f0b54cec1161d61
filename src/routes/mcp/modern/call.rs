//! Modern `tools/call`, `prompts/get`, `resources/read`, `completion/complete`: forwarded
//! to the upstream over the hub's own upstream session, and bridged.
//!
//! A legacy upstream's server-to-client request during the call becomes an
//! `input_required` answer: the upstream request is held in [`Pending`](super::Pending)
//! under a random nonce, and the client gets a `requestState` signed over (nonce, user,
//! method, name, expiry). The retry with `inputResponses` answers the held request and
//! the same call continues; its answer (or the next input request) goes to the retry.
//! Closing the response stream (or the JSON response's connection) cancels the call
//! upstream (`notifications/cancelled`).

use actix::prelude::*;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, Responder};
use actix_web_lab::sse;
use futures_util::StreamExt;
use mcp_hub_actors::protocol::jsonrpc::{error_bytes, raw_from_string, response_bytes, to_raw};
use mcp_hub_actors::protocol::modern::{self, CacheHint, RequestMeta, StateClaims, StateError};
use mcp_hub_actors::protocol::{codes, Id, RpcError};
use mcp_hub_actors::router::{self, NameKind, Scope};
use mcp_hub_actors::server::catalog::TaskSupport;
use mcp_hub_actors::server::transport::next_upstream_id;
use mcp_hub_actors::server::{CallSink, Forward, ReplyToUpstream, ServerActor, UpstreamEventKind};
use mcp_hub_actors::HubError;
use serde_json::{json, Map, Value};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::pending::{cancel_upstream, Held};
use super::relay::{CallEvent, Relay};
use super::{as_object, error, ModernState};
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
    pub sse: bool,
}

/// A call running upstream whose events a driver reads.
pub(crate) struct Running {
    rx: mpsc::Receiver<CallEvent>,
    server: Addr<ServerActor>,
    upstream_id: u64,
    meta: RequestMeta,
    method: String,
    target: String,
    user: Arc<str>,
    rounds: u32,
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
    // inputResponses without requestState answer nothing held: ignored (SHOULD ignore
    // unrecognised information), the call starts afresh.
    let id = c.id.clone();
    match start(&c, target) {
        Ok(Started::Call(run)) => respond(c.req, c.state, id, run, c.sse).await,
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
        handle: mcp_hub_actors::directory::ServerHandle,
        params: Map<String, Value>,
        rename: Option<String>,
        tool: String,
    },
}

fn now_ms() -> u64 {
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
    let Some(answer) = c
        .params
        .get("inputResponses")
        .and_then(|r| r.get(&held.key))
        .cloned()
    else {
        // Ask again with the same state; the held request keeps waiting until it expires.
        let again = modern::input_required(held.input_requests.clone(), &held.token);
        modern.pending.restore(claims.nonce, held);
        let Value::Object(result) = again else {
            return super::not_found(&c.id, &c.method);
        };
        return super::ok(&c.id, result);
    };
    held.reply_to.do_send(ReplyToUpstream {
        upstream_id: held.upstream_request_id,
        body: Ok(to_raw(&answer)),
    });
    held.run.meta = c.meta;
    respond(c.req, c.state, c.id, held.run, c.sse).await
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
            let e = modern::missing_capability(
                json!({ "extensions": { modern::TASKS_EXTENSION: {} } }),
            );
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
    let raw = serde_json::to_string(&params)
        .map(raw_from_string)
        .map_err(|e| HubError::Internal(e.to_string()))?;
    let upstream_id = next_upstream_id();
    let (fwd_params, progress) = router::rewrite_params(Some(raw), rename.as_deref(), upstream_id)?;
    let slot = state.sessions.enter_call().ok_or(HubError::Busy {
        server: "hub".into(),
        retry_after_seconds: 1,
    })?;
    let (tx, rx) = mpsc::channel(64);
    let relay = Relay { tx: tx.clone() }.start();
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
        rounds: 0,
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

/// One message for the client; `last` ends the response.
struct Frame {
    json: String,
    last: bool,
}

/// How long an SSE answer waits for its first frame before committing to a 200 stream: an
/// error the binding gives a 4xx status (e.g. -32021 for a missing client capability)
/// that arrives first is answered with that status instead.
const FIRST_FRAME_WAIT: Duration = Duration::from_millis(200);

/// The status of an answer that is a JSON-RPC error with a code the modern binding maps to
/// an HTTP error status; `None` for anything else.
fn error_status(json: &str) -> Option<actix_web::http::StatusCode> {
    let v: Value = serde_json::from_str(json).ok()?;
    match v.get("error")?.get("code")?.as_i64()? {
        modern::HEADER_MISMATCH
        | modern::MISSING_CLIENT_CAPABILITY
        | modern::UNSUPPORTED_VERSION => Some(actix_web::http::StatusCode::BAD_REQUEST),
        _ => None,
    }
}

/// Drives the call in the background and answers as SSE (related notifications, then the
/// answer) or as one JSON body.
async fn respond(
    req: &HttpRequest,
    state: &AppState,
    id: Id,
    run: Running,
    sse_ok: bool,
) -> HttpResponse {
    let (out, mut frames) = mpsc::channel::<Frame>(64);
    actix::spawn(drive(run, out, state.modern.clone(), id.clone()));
    if sse_ok {
        let first = match tokio::time::timeout(FIRST_FRAME_WAIT, frames.recv()).await {
            Ok(Some(f)) if f.last => match error_status(&f.json) {
                Some(status) => {
                    return HttpResponse::build(status)
                        .content_type("application/json")
                        .body(f.json)
                }
                None => Some(f),
            },
            Ok(f) => f,
            Err(_) => None,
        };
        let events = futures_util::stream::iter(first)
            .chain(ReceiverStream::new(frames))
            .map(|f| {
                Ok::<_, Infallible>(sse::Event::Data(sse::Data::new(f.json).event("message")))
            });
        return sse::Sse::from_stream(events)
            .with_keep_alive(Duration::from_secs(
                state.settings.sessions.keep_alive_secs.max(1),
            ))
            .customize()
            .insert_header(("X-Accel-Buffering", "no"))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .respond_to(req)
            .map_into_boxed_body();
    }
    let body = async move {
        while let Some(f) = frames.recv().await {
            if f.last {
                return Some(f.json);
            }
        }
        None
    };
    // Awaited by the handler: if the client goes away, actix drops this future, the channel
    // closes, and the driver cancels the call.
    HttpResponse::Ok()
        .content_type("application/json")
        .streaming(futures_util::stream::once(async move {
            match body.await {
                Some(json) => Ok::<_, Infallible>(actix_web::web::Bytes::from(json)),
                None => Ok(actix_web::web::Bytes::from(error_bytes(
                    None,
                    &RpcError::new(
                        codes::INTERNAL_ERROR,
                        "Internal error: the call ended without an answer",
                    ),
                ))),
            }
        }))
}

async fn drive(mut run: Running, out: mpsc::Sender<Frame>, modern: ModernState, id: Id) {
    loop {
        let ev = tokio::select! {
            ev = run.rx.recv() => ev,
            _ = out.closed() => {
                tracing::info!(event = "modern.call.cancelled", upstream_id = run.upstream_id, "client closed the response stream");
                run.cancel("the client closed the response stream");
                return;
            }
        };
        let (json, last) = match ev {
            None => (
                error_bytes(
                    Some(&id),
                    &RpcError::new(
                        codes::INTERNAL_ERROR,
                        "Internal error: the call ended without an answer",
                    ),
                ),
                true,
            ),
            Some(CallEvent::Done(Ok(raw))) => {
                let mut result = as_object(&raw);
                if run.method == "resources/read" && !result.contains_key("ttlMs") {
                    // A legacy upstream's read may be per caller: never shared, not reused.
                    CacheHint {
                        ttl_ms: 0,
                        private: true,
                    }
                    .apply(&mut result);
                }
                modern::finish_result(&mut result, &super::hub_info());
                (response_bytes(&id, &to_raw(&Value::Object(result))), true)
            }
            Some(CallEvent::Done(Err(e))) => {
                let mut rpc = e.to_rpc();
                if rpc.code == codes::RESOURCE_NOT_FOUND {
                    // 2026-07-28 forbids -32002; a legacy upstream's "not found" is -32602.
                    rpc.code = codes::INVALID_PARAMS;
                }
                (error_bytes(Some(&id), &rpc), true)
            }
            Some(CallEvent::Upstream(ev)) => match ev.kind {
                UpstreamEventKind::Notification(json) => {
                    let is_log = json.contains("\"notifications/message\"");
                    if is_log && run.meta.log_level.is_none() {
                        continue;
                    }
                    (json, false)
                }
                UpstreamEventKind::Request {
                    method,
                    params,
                    upstream_id,
                    reply_to,
                } => {
                    let cap = match method.as_str() {
                        "sampling/createMessage" => "sampling",
                        "elicitation/create" => "elicitation",
                        "roots/list" => "roots",
                        _ => "",
                    };
                    if cap.is_empty() || !run.meta.has_capability(cap) {
                        let err = RpcError::new(
                            codes::METHOD_NOT_FOUND,
                            format!("{method}: the client did not declare this capability"),
                        );
                        reply_to.do_send(ReplyToUpstream {
                            upstream_id,
                            body: Err(to_raw(&err)),
                        });
                        continue;
                    }
                    run.rounds += 1;
                    let key = format!("{cap}-{}", run.rounds);
                    let params: Value = params
                        .as_deref()
                        .and_then(|p| serde_json::from_str(p.get()).ok())
                        .unwrap_or_else(|| json!({}));
                    let input_requests =
                        json!({ key.clone(): { "method": method, "params": params } });
                    let nonce = uuid::Uuid::new_v4().simple().to_string();
                    let claims = StateClaims {
                        nonce: nonce.clone(),
                        user: run.user.to_string(),
                        method: run.method.clone(),
                        target: run.target.clone(),
                        expires_ms: now_ms() + modern.state_ttl.as_millis() as u64,
                    };
                    let token = modern.signer.sign(&claims);
                    let mut result = match modern::input_required(input_requests.clone(), &token) {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    modern::finish_result(&mut result, &super::hub_info());
                    let json = response_bytes(&id, &to_raw(&Value::Object(result)));
                    tracing::info!(event = "modern.input.held", method = %method, key = %key, "modern.input.held");
                    modern.pending.insert(
                        nonce,
                        Held {
                            run,
                            key,
                            input_requests,
                            token,
                            reply_to,
                            upstream_request_id: upstream_id,
                        },
                        modern.state_ttl,
                    );
                    let _ = out.send(Frame { json, last: true }).await;
                    return;
                }
            },
        };
        if out.send(Frame { json, last }).await.is_err() {
            if !last {
                run.cancel("the client closed the response stream");
            }
            return;
        }
        if last {
            return;
        }
    }
}
