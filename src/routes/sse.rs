//! Legacy HTTP+SSE transport (MCP 2024-11-05): `GET /sse` opens a session whose one event
//! stream carries every server message; its first event, `endpoint`, names where to POST
//! (`/messages?sessionId=…`). Per server: `/sse/{server}` and `/messages/{server}?sessionId=…`.
//!
//! Event ids name the session, so a client that reconnects to `/sse` with `Last-Event-ID`
//! (EventSource does this by itself) lands in the same session and receives what it missed.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_lab::sse;
use mcp_hub_actors::protocol::Message;
use mcp_hub_actors::session::event_log::parse_event_id;
use mcp_hub_actors::session::{
    AttachGet, HandleNotification, HandleRequest, HandleResponse, OpenLegacy, ReplyMode,
};
use serde::Deserialize;

use super::mcp::{
    accepts, call_ctx, check_request, read_body, scope_of, session_not_found, user_of,
};
use crate::error::{rpc_error, status_of, transport_error};
use crate::state::AppState;

/// Registers `/sse[/{server}]` and `/messages[/{server}]`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/sse", web::get().to(open_all))
        .route("/sse/{server}", web::get().to(open_one))
        .route("/messages", web::post().to(message_all))
        .route("/messages/{server}", web::post().to(message_one));
}

async fn open_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    open(req, state, None).await
}

async fn open_one(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    open(req, state, Some(path.into_inner())).await
}

async fn open(
    req: HttpRequest,
    state: web::Data<AppState>,
    server: Option<String>,
) -> HttpResponse {
    if let Err(resp) = check_request(&req, &state) {
        return resp;
    }
    if !accepts(&req).1 {
        return transport_error(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: Client must accept text/event-stream",
            "send Accept: text/event-stream",
        );
    }
    let scope = match scope_of(server.as_deref(), &state) {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let endpoint_path = match &server {
        Some(id) => format!("/messages/{id}"),
        None => "/messages".to_string(),
    };
    // A reconnect: the event id names the session to resume.
    let last = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(last) = last {
        let resumed = parse_event_id(&last)
            .and_then(|(sid, _, _)| state.sessions.get(sid).map(|e| (sid.to_string(), e)))
            .filter(|(_, e)| e.user == user_of(&req) && e.scope == scope);
        if let Some((sid, entry)) = resumed {
            if let Ok(Ok(opened)) = entry
                .addr
                .send(AttachGet {
                    last_event_id: Some(last),
                })
                .await
            {
                let lead = sse::Event::Data(
                    sse::Data::new(format!("{endpoint_path}?sessionId={sid}")).event("endpoint"),
                );
                return super::mcp::sse::respond(
                    &req,
                    opened,
                    Some(lead),
                    entry.addr,
                    None,
                    &state.settings.sessions,
                );
            }
        }
        // Unknown or expired: fall through to a new session, as a fresh connect would.
    }
    let (sid, addr) = match state.sessions.create(user_of(&req), scope) {
        Ok(created) => created,
        Err(e) => return rpc_error(status_of(&e), None, &e.to_rpc()),
    };
    match addr.send(OpenLegacy).await {
        Ok(Ok(opened)) => {
            let endpoint = sse::Data::new(format!("{endpoint_path}?sessionId={sid}"))
                .event("endpoint")
                .id(format!("{sid}.{}.0", opened.stream));
            super::mcp::sse::respond(
                &req,
                opened,
                Some(sse::Event::Data(endpoint)),
                addr,
                None,
                &state.settings.sessions,
            )
        }
        _ => session_not_found(),
    }
}

#[derive(Deserialize)]
struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

async fn message_all(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    q: web::Query<SessionQuery>,
) -> HttpResponse {
    message(req, payload, state, q.into_inner(), None).await
}

async fn message_one(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    q: web::Query<SessionQuery>,
    path: web::Path<String>,
) -> HttpResponse {
    message(req, payload, state, q.into_inner(), Some(path.into_inner())).await
}

async fn message(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    q: SessionQuery,
    server: Option<String>,
) -> HttpResponse {
    if let Err(resp) = check_request(&req, &state) {
        return resp;
    }
    let Some(sid) = q.session_id else {
        return transport_error(
            StatusCode::BAD_REQUEST,
            "Bad Request: sessionId query parameter is required",
            "POST to the URL of the endpoint event GET /sse sent",
        );
    };
    let scope = match scope_of(server.as_deref(), &state) {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let entry = match state.sessions.get(&sid) {
        Some(e) => Some(e),
        // Shared sessions: GET /sse may have gone to another instance.
        None => match super::mcp::adopt(&state, &sid).await {
            Ok(e) => e,
            Err(resp) => return resp,
        },
    };
    let entry = match entry {
        Some(e) if e.user == user_of(&req) && e.scope == scope => e,
        _ => return session_not_found(),
    };
    let body = match read_body(&req, payload, state.settings.http.max_body_bytes).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let msg = match Message::parse(&body) {
        Ok(m) => m,
        Err((id, e)) => return rpc_error(StatusCode::BAD_REQUEST, id.as_ref(), &e),
    };
    let ctx = call_ctx(&req, Some(sid.into()));
    let delivered = match msg {
        Message::Request { id, method, params } => {
            if let Err(resp) =
                super::mcp::limit_call(&req, &state, &entry.scope, &id, &method, params.as_deref())
                    .await
            {
                return resp;
            }
            match entry
                .addr
                .send(HandleRequest {
                    ctx,
                    id: id.clone(),
                    method,
                    params,
                    mode: ReplyMode::Legacy,
                })
                .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => return rpc_error(StatusCode::BAD_REQUEST, Some(&id), &e.to_rpc()),
                Err(e) => Err(e),
            }
        }
        Message::Notification { method, params } => {
            entry
                .addr
                .send(HandleNotification {
                    ctx,
                    method,
                    params,
                })
                .await
        }
        Message::Response { id, result } => entry
            .addr
            .send(HandleResponse {
                id,
                body: Ok(result),
            })
            .await
            .map(|_| ()),
        Message::Error {
            id: Some(id),
            error,
        } => entry
            .addr
            .send(HandleResponse {
                id,
                body: Err(error),
            })
            .await
            .map(|_| ()),
        Message::Error { id: None, .. } => Ok(()),
    };
    match delivered {
        Ok(()) => HttpResponse::Accepted().body("Accepted"),
        Err(_) => session_not_found(),
    }
}
