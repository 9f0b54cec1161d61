//! `POST /mcp/{server}/{tool}`: a plain call for callers that are not MCP clients. The body
//! is the JSON object of arguments; no MCP session is created.
//!
//! The handler checks Host/Origin, the caller's identity, the body limit and the rate limits
//! like `/mcp`, finds the server in the directory (404 unknown server or tool, 503 not
//! ready), validates the arguments against the tool's compiled schema (400 with the
//! violations), and sends one `Forward` straight to the ServerActor with a progress token. The answer is `text/event-stream`: `progress`
//! events, then one `result` (or `error`) event; every event's data is JSON carrying the
//! `request_id`. A [`ProgressRelay`] actor is the call's sink: it turns upstream progress
//! into events and, since the final event goes through its mailbox too, the result can
//! never overtake a progress event sent before it.

use actix::prelude::*;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, Responder};
use actix_web_lab::sse;
use futures_util::StreamExt;
use mcp_hub_actors::protocol::jsonrpc::to_raw;
use mcp_hub_actors::protocol::{codes, Id, RpcError};
use mcp_hub_actors::router::Scope;
use mcp_hub_actors::server::deadline::{run_until, Expired, Extension};
use mcp_hub_actors::server::transport::next_upstream_id;
use mcp_hub_actors::server::{
    CallSink, Cancel, Forward, ProgressClock, ReplyToUpstream, Status, UpstreamEvent,
    UpstreamEventKind,
};
use mcp_hub_actors::{validation, HubError};
use serde_json::{json, Map, Value};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::routes::mcp::{call_ctx, check_request, limit_call, read_body};
use crate::state::AppState;

/// Events buffered for a slow reader; past it progress events are dropped (never the
/// final event, which waits for room).
const EVENT_BUFFER: usize = 64;

/// Registers `POST /mcp/{server}/{tool}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/mcp/{server}/{tool}", web::post().to(call));
}

fn reject(status: StatusCode, code: &str, message: String, extra: Value) -> HttpResponse {
    let mut body = json!({ "error": { "code": code, "message": message } });
    if let (Value::Object(e), Value::Object(more)) = (&mut body["error"], extra) {
        e.extend(more);
    }
    let mut resp = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.insert_header((header::RETRY_AFTER, "5"));
    }
    resp.json(body)
}

async fn call(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    if let Err(resp) = check_request(&req, &state) {
        return resp;
    }
    let (server, tool) = path.into_inner();
    let body = match read_body(&req, payload, state.settings.http.max_body_bytes).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    // The body is the arguments: the same limit as `arguments` of a tools/call on /mcp.
    if let Err(HubError::InvalidParams { message, data }) =
        mcp_hub_actors::validation::arguments_size_error(
            body.len(),
            state.settings.limits.max_arguments_bytes,
        )
    {
        return reject(
            StatusCode::PAYLOAD_TOO_LARGE,
            "arguments_too_large",
            message,
            data,
        );
    }
    let args: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice(&body) {
            Ok(m) => m,
            Err(e) => {
                return reject(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("the body must be a JSON object of tool arguments: {e}"),
                    json!({}),
                )
            }
        }
    };
    let Some(handle) = state.servers.get(&server) else {
        return reject(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Unknown server: {server}"),
            json!({ "hint": "GET /api/servers lists the registered servers" }),
        );
    };
    let ctx = call_ctx(&req, None);
    let status = handle.runtime.borrow().status;
    if status != Status::Ready {
        tracing::warn!(event = "call.server_unavailable", request_id = %ctx.request_id, server = %server, tool = %tool, status = ?status, "call.server_unavailable");
        return reject(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("Server {server} is not ready"),
            json!({ "status": status, "retry_after_seconds": 5 }),
        );
    }
    let catalog = handle.catalog();
    let Some(entry) = catalog.tool(&tool) else {
        return reject(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Unknown tool: {tool}"),
            json!({ "hint": format!("GET /api/servers/{server}/tools lists this server's tools") }),
        );
    };
    let args = Value::Object(args);
    // The same budgets as a tools/call on /mcp/{server}: this endpoint is no way around them.
    let probe = to_raw(&json!({ "name": &tool }));
    let scope = Scope::Server(Arc::from(server.as_str()));
    let rpc_id = Id::Str(ctx.request_id.to_string());
    if let Err(resp) = limit_call(&req, &state, &scope, &rpc_id, "tools/call", Some(&probe)).await {
        return resp;
    }
    if let Some(validator) = &entry.validator {
        if let Err(violations) = validation::check(validator, &args) {
            tracing::warn!(event = "tool.call.failed", request_id = %ctx.request_id, server = %server, tool = %tool, kind = "invalid", violations = violations.len(), "tool.call.failed");
            return reject(
                StatusCode::BAD_REQUEST,
                "invalid_arguments",
                format!("Invalid arguments for tool {tool}"),
                json!({ "violations": violations, "request_id": &*ctx.request_id }),
            );
        }
    }
    let upstream_id = next_upstream_id();
    let params = to_raw(&json!({
        "name": tool,
        "arguments": args,
        "_meta": { "progressToken": upstream_id },
    }));
    tracing::info!(event = "tool.call.accepted", request_id = %ctx.request_id, server = %server, tool = %tool, args_size = body.len(), "tool.call.accepted");
    let (tx, rx) = mpsc::channel(EVENT_BUFFER);
    let request_id = ctx.request_id.clone();
    let relay = ProgressRelay {
        tx: tx.clone(),
        request_id: request_id.clone(),
    }
    .start();
    let clock = ProgressClock::default();
    let forward = Forward {
        ctx,
        upstream_id,
        method: "tools/call".into(),
        params: Some(params),
        progress: Some(Id::Num(upstream_id as i64)),
        sink: Some(CallSink {
            session: relay.clone().recipient(),
            stream: 0,
            clock: clock.clone(),
        }),
        tool: Some(tool),
    };
    let t = &state.settings.timeouts;
    let hub_timeout = Duration::from_millis(t.hub_ms);
    // As on /mcp: progress pushes the hub deadline back, to the hard max plus the
    // hub-over-server margin (so the server layer fires first).
    let hard_max_ms = t.hard_max_ms;
    let extension = t.progress_extends.then(|| Extension {
        clock,
        hard_max: Duration::from_millis(t.hard_max_ms + t.hub_ms.saturating_sub(t.server_ms)),
    });
    let start = tokio::time::Instant::now();
    let addr = handle.addr.clone();
    actix_rt::spawn(async move {
        let answer = tokio::select! {
            res = run_until(addr.send(forward), start, hub_timeout, extension.as_ref()) => match res {
                Ok(Ok(answer)) => answer,
                Ok(Err(mailbox)) => Err(HubError::from(mailbox)),
                Err(expired) => {
                    addr.do_send(Cancel { upstream_id, reason: "timeout".into() });
                    Err(match expired {
                        Expired::Timeout => HubError::Timeout { layer: "hub", timeout_ms: hub_timeout.as_millis() as u64 },
                        Expired::HardMax => HubError::TimeoutHardMax { layer: "hub", hard_max_ms },
                    })
                }
            },
            // The caller went away: stop the work upstream too.
            () = tx.closed() => {
                addr.do_send(Cancel { upstream_id, reason: "client disconnected".into() });
                return;
            }
        };
        relay.do_send(Finish(answer));
    });
    let events = ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    sse::Sse::from_stream(events)
        .with_keep_alive(Duration::from_secs(
            state.settings.sessions.keep_alive_secs.max(1),
        ))
        .customize()
        .insert_header(("X-Accel-Buffering", "no"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .respond_to(&req)
        .map_into_boxed_body()
}

/// The sink of one plain call: turns upstream progress into `progress` events and the
/// outcome into the final event. Started per call by [`call`]; stops after the final event.
struct ProgressRelay {
    tx: mpsc::Sender<sse::Event>,
    request_id: Arc<str>,
}

impl Actor for ProgressRelay {
    type Context = Context<Self>;
}

/// The call's outcome. Sent by the task driving the call, after every progress event.
#[derive(Message)]
#[rtype(result = "()")]
struct Finish(Result<Box<serde_json::value::RawValue>, HubError>);

impl Handler<UpstreamEvent> for ProgressRelay {
    type Result = ();

    fn handle(&mut self, msg: UpstreamEvent, _: &mut Self::Context) {
        match msg.kind {
            UpstreamEventKind::Notification(text) => {
                let Ok(mut note) = serde_json::from_str::<Value>(&text) else {
                    return;
                };
                if note["method"] != "notifications/progress" {
                    return;
                }
                let mut data = note["params"].take();
                if let Value::Object(m) = &mut data {
                    m.remove("progressToken");
                    m.remove("_meta");
                    m.insert(
                        "request_id".into(),
                        Value::String(self.request_id.to_string()),
                    );
                }
                // A slow reader loses progress, never the result.
                let _ = self.tx.try_send(sse::Event::Data(
                    sse::Data::new(data.to_string()).event("progress"),
                ));
            }
            UpstreamEventKind::Request {
                method,
                upstream_id,
                reply_to,
                ..
            } => {
                // No client behind this endpoint can sample, elicit or list roots.
                let error = RpcError::new(
                    codes::METHOD_NOT_FOUND,
                    format!(
                        "{method} is not available to plain calls (POST /mcp/{{server}}/{{tool}})"
                    ),
                );
                reply_to.do_send(ReplyToUpstream::refusal(upstream_id, &error));
            }
        }
    }
}

impl Handler<Finish> for ProgressRelay {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Finish, _: &mut Self::Context) -> Self::Result {
        let rid = serde_json::to_string(&*self.request_id).unwrap_or_else(|_| "null".into());
        let event = match msg.0 {
            // The result is spliced in raw: never re-serialized on its way out.
            Ok(result) => sse::Data::new(format!(
                r#"{{"request_id":{rid},"result":{}}}"#,
                result.get()
            ))
            .event("result"),
            Err(e) => {
                let error = serde_json::to_string(&e.to_rpc()).unwrap_or_else(|_| "{}".into());
                sse::Data::new(format!(r#"{{"request_id":{rid},"error":{error}}}"#)).event("error")
            }
        };
        let tx = self.tx.clone();
        Box::pin(
            async move {
                let _ = tx.send(sse::Event::Data(event)).await;
            }
            .into_actor(self)
            .map(|(), _, ctx| ctx.stop()),
        )
    }
}
