//! `DELETE /mcp[/{server}]`: the client ends its session; calls still running are cancelled
//! upstream.

use actix_web::{web, HttpRequest, HttpResponse};
use mcp_hub_actors::session::Close;

use super::{find_session, scope_of, session_not_found, session_required};
use crate::state::AppState;

/// `DELETE /mcp`.
pub async fn delete_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    delete(req, state, None).await
}

/// `DELETE /mcp/{server}`.
pub async fn delete_one(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    delete(req, state, Some(path.into_inner())).await
}

async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    server: Option<String>,
) -> HttpResponse {
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
    let scope = match scope_of(server.as_deref(), &state) {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    match find_session(&req, &state, &scope).await {
        Ok(Some((_, entry))) => match entry.addr.send(Close { reason: "delete" }).await {
            Ok(()) => HttpResponse::Ok().finish(),
            Err(_) => session_not_found(),
        },
        Ok(None) => session_required(),
        Err(resp) => resp,
    }
}
