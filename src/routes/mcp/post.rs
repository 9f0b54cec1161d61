//! `POST /mcp[/{server}]`: every client-to-server message.
//!
//! Requests are answered as JSON or SSE: SSE when the client accepts it and the method may
//! stream (tools/call, prompts/get, resources/read) or when the client accepts nothing else;
//! but a streamable request whose answer is ready within [`PRIMING_HOLD`], with no progress,
//! log or server-to-client request before it, is answered as JSON when the client accepts
//! JSON. Notifications and responses get 202 with no body.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use mcp_hub_actors::protocol::{codes, Message, RpcError};
use mcp_hub_actors::session::{
    Close, HandleNotification, HandleRequest, HandleResponse, ReplyMode, StreamDrained,
};
use serde_json::json;

use super::{
    accepts, call_ctx, find_session, scope_of, session_not_found, session_required, user_of,
    SESSION_HEADER,
};
use crate::error::{rpc_error, status_of, transport_error};
use crate::state::AppState;

/// A logged message as a response body, without copying it.
struct SharedJson(std::sync::Arc<str>);

impl AsRef<[u8]> for SharedJson {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// `POST /mcp`.
pub async fn post_all(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    post(req, payload, state, None).await
}

/// `POST /mcp/{server}`.
pub async fn post_one(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    post(req, payload, state, Some(path.into_inner())).await
}

/// How long a POST's SSE response waits for its first message before the headers and the
/// priming event go out alone.
const PRIMING_HOLD: std::time::Duration = std::time::Duration::from_millis(50);

/// Methods whose answer may be preceded by progress, logs or server-to-client requests.
fn may_stream(method: &str) -> bool {
    matches!(
        method,
        "tools/call" | "prompts/get" | "resources/read" | "tasks/result"
    )
}

pub(crate) async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, HttpResponse> {
    let too_large = || {
        transport_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload Too Large",
            &format!("request bodies are limited to {limit} bytes (http.max_body_bytes)"),
        )
    };
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            transport_error(
                StatusCode::BAD_REQUEST,
                "Bad Request: unreadable body",
                &e.to_string(),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let max = mcp_hub_actors::protocol::jsonrpc::MAX_JSON_DEPTH;
    if mcp_hub_actors::protocol::jsonrpc::nesting_depth(&body, max) > max {
        return Err(rpc_error(
            StatusCode::BAD_REQUEST,
            None,
            &RpcError::new(codes::PARSE_ERROR, "Parse error").with_data(json!({
                "detail": format!("JSON nested deeper than {max} levels"),
                "hint": "flatten the arguments"
            })),
        ));
    }
    Ok(body.freeze())
}

async fn post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    server: Option<String>,
) -> HttpResponse {
    if let Err(resp) = super::check_access(&req, &state) {
        return resp;
    }
    let (json_ok, sse_ok) = accepts(&req);
    if !json_ok && !sse_ok {
        return transport_error(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: Client must accept application/json and text/event-stream",
            "send Accept: application/json, text/event-stream",
        );
    }
    let body = match read_body(&req, payload, state.settings.http.max_body_bytes).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        let err = RpcError::new(codes::INVALID_REQUEST, "Invalid Request: batches are not supported")
            .with_data(json!({ "hint": "send one JSON-RPC message per POST (MCP 2025-06-18 and later forbid batches)" }));
        return rpc_error(StatusCode::BAD_REQUEST, None, &err);
    }
    let msg = match Message::parse(&body) {
        Ok(m) => m,
        Err((id, e)) => return rpc_error(StatusCode::BAD_REQUEST, id.as_ref(), &e),
    };
    let scope = match scope_of(server.as_deref(), &state) {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    // MCP 2026-07-28 requests are served statelessly beside the sessions.
    if let Message::Request { id, method, params } = msg {
        if super::modern::is_modern(&req, &method, params.as_deref()) {
            use super::modern::Reply;
            let streams = may_stream(&method) || method == "subscriptions/listen";
            let reply = match (sse_ok, json_ok) {
                (true, false) => Reply::Sse,
                (true, true) if streams => Reply::SseOrJson,
                _ => Reply::Json,
            };
            return super::modern::handle(req, &state, scope, id, method, params, reply).await;
        }
        return legacy(
            req,
            state,
            scope,
            json_ok,
            sse_ok,
            Message::Request { id, method, params },
        )
        .await;
    }
    // A modern client's notification (no session): accepted, nothing to do (2026-07-28
    // defines no client-to-server notifications over HTTP).
    if matches!(msg, Message::Notification { .. })
        && super::modern::is_modern_header(&req)
        && !req.headers().contains_key(SESSION_HEADER)
    {
        return HttpResponse::Accepted().finish();
    }
    legacy(req, state, scope, json_ok, sse_ok, msg).await
}

async fn legacy(
    req: HttpRequest,
    state: web::Data<AppState>,
    scope: mcp_hub_actors::router::Scope,
    json_ok: bool,
    sse_ok: bool,
    msg: Message,
) -> HttpResponse {
    if let Err(resp) = super::check_version_header(&req) {
        return resp;
    }
    let scope_for_limits = scope.clone();
    let found = match find_session(&req, &state, &scope).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    match msg {
        Message::Request { id, method, params } => {
            let is_init = method == "initialize";
            let created = is_init && found.is_none();
            let (sid, addr) = match found {
                Some((sid, entry)) => (sid, entry.addr),
                None if is_init => match state.sessions.create(user_of(&req), scope) {
                    Ok(created) => created,
                    Err(e) => return rpc_error(status_of(&e), Some(&id), &e.to_rpc()),
                },
                None => return session_required(),
            };
            let mode = if sse_ok && (!json_ok || may_stream(&method)) {
                ReplyMode::Sse
            } else {
                ReplyMode::Json
            };
            if let Err(resp) = super::limit_call(
                &req,
                &state,
                &scope_for_limits,
                &id,
                &method,
                params.as_deref(),
            )
            .await
            {
                return resp;
            }
            let ctx = call_ctx(&req, Some(sid.clone()));
            let mut opened = match addr
                .send(HandleRequest {
                    ctx,
                    id: id.clone(),
                    method,
                    params,
                    mode,
                })
                .await
            {
                Ok(Ok(Some(o))) => o,
                Ok(Ok(None)) => return HttpResponse::Accepted().finish(),
                Ok(Err(e)) => return rpc_error(status_of(&e), Some(&id), &e.to_rpc()),
                Err(_) => return session_not_found(),
            };
            if mode == ReplyMode::Sse {
                // A quick answer leaves in one write with the headers and the priming event
                // (each write costs a syscall and a wake-up on both ends); a slower call gets
                // its priming event after PRIMING_HOLD, well before any client gives up.
                let first = tokio::time::timeout(PRIMING_HOLD, opened.rx.recv())
                    .await
                    .ok()
                    .flatten();
                if let Some(answer) = first.as_ref().filter(|m| m.is_response && json_ok) {
                    // The answer came first and alone, and the client accepts JSON: a JSON
                    // body says the same with no event framing (there is nothing to resume).
                    addr.do_send(StreamDrained {
                        stream: opened.stream,
                        resumable: false,
                    });
                    return json_answer(&sid, answer.json.clone());
                }
                if let Some(durable) = opened.durable.take() {
                    // Shared sessions: the priming event lets the client resume anywhere,
                    // so it goes out once Redis holds the call (bounded: a Redis outage
                    // must not hold calls up).
                    let _ =
                        tokio::time::timeout(std::time::Duration::from_millis(500), durable).await;
                }
                let mut lead: Vec<_> = super::sse::priming(&opened).into_iter().collect();
                lead.extend(first.map(super::sse::message));
                return super::sse::respond(
                    &req,
                    opened,
                    lead,
                    addr,
                    Some(&sid),
                    &state.settings.sessions,
                );
            }
            let mut rx = opened.rx;
            while let Some(m) = rx.recv().await {
                if m.is_response {
                    if created && m.is_error {
                        addr.do_send(Close {
                            reason: "failed initialize",
                        });
                    }
                    return json_answer(&sid, m.json);
                }
            }
            transport_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error: the session ended before answering",
                "retry the request",
            )
        }
        Message::Notification { method, params } => {
            let Some((sid, entry)) = found else {
                return session_required();
            };
            let ctx = call_ctx(&req, Some(sid));
            match entry
                .addr
                .send(HandleNotification {
                    ctx,
                    method,
                    params,
                })
                .await
            {
                Ok(()) => HttpResponse::Accepted().finish(),
                Err(_) => session_not_found(),
            }
        }
        Message::Response { id, result } => respond_to_server(found, id, Ok(result)).await,
        Message::Error {
            id: Some(id),
            error,
        } => respond_to_server(found, id, Err(error)).await,
        Message::Error { id: None, .. } => HttpResponse::Accepted().finish(),
    }
}

/// A request's answer as a JSON body.
fn json_answer(session: &str, json: std::sync::Arc<str>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((super::session_header_name(), session))
        .body(web::Bytes::from_owner(SharedJson(json)))
}

async fn respond_to_server(
    found: Option<(std::sync::Arc<str>, mcp_hub_actors::session::SessionEntry)>,
    id: mcp_hub_actors::protocol::Id,
    body: Result<Box<serde_json::value::RawValue>, Box<serde_json::value::RawValue>>,
) -> HttpResponse {
    let Some((_, entry)) = found else {
        return session_required();
    };
    match entry.addr.send(HandleResponse { id, body }).await {
        Ok(_) => HttpResponse::Accepted().finish(),
        Err(_) => session_not_found(),
    }
}
