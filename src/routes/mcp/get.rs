//! `GET /mcp[/{server}]`: the session's standalone SSE stream for server-initiated messages
//! (list changes, and server-to-client requests of calls answered as JSON).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use mcp_hub_actors::session::AttachGet;

use super::{accepts, find_session, scope_of, session_not_found, session_required};
use crate::error::{rpc_error, transport_error};
use crate::state::AppState;

/// `GET /mcp`.
pub async fn get_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    get(req, state, None).await
}

/// `GET /mcp/{server}`.
pub async fn get_one(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    get(req, state, Some(path.into_inner())).await
}

async fn get(req: HttpRequest, state: web::Data<AppState>, server: Option<String>) -> HttpResponse {
    if let Err(resp) = super::check_access(&req, &state) {
        return resp;
    }
    // MCP 2026-07-28 has no GET stream and no sessions to delete.
    if super::modern::is_modern_header(&req) && !req.headers().contains_key(super::SESSION_HEADER) {
        return super::modern::method_not_allowed();
    }
    if let Err(resp) = super::check_version_header(&req) {
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
    let (sid, entry) = match find_session(&req, &state, &scope).await {
        Ok(Some(found)) => found,
        Ok(None) => return session_required(),
        Err(resp) => return resp,
    };
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match entry.addr.send(AttachGet { last_event_id }).await {
        Ok(Ok(opened)) => {
            let lead = super::sse::priming(&opened);
            super::sse::respond(
                &req,
                opened,
                lead,
                entry.addr,
                Some(&sid),
                &state.settings.sessions,
            )
        }
        Ok(Err(e)) => rpc_error(StatusCode::BAD_REQUEST, None, &e.to_rpc()),
        Err(_) => session_not_found(),
    }
}
