//! Streamable HTTP (MCP 2025-03-26 … 2025-11-25): `POST`, `GET` and `DELETE` on `/mcp`
//! (every server, names namespaced) and `/mcp/{server}` (one server, names unchanged).
//!
//! Checks common to the three methods live here: Origin/Host (403), `MCP-Protocol-Version`
//! (400 when unsupported), and finding the session (`Mcp-Session-Id`: 400 when missing,
//! 404 when unknown or owned by another user).

// Rejections are cold paths whose natural error type is the finished HttpResponse.
#![allow(clippy::result_large_err)]

mod delete;
mod get;
pub mod modern;
mod post;
pub(crate) use post::read_body;
pub(crate) mod sse;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use mcp_hub_actors::protocol::version;
use mcp_hub_actors::router::Scope;
use mcp_hub_actors::session::SessionEntry;
use mcp_hub_actors::CallCtx;
use std::sync::Arc;

use crate::error::transport_error;
use crate::security;
use crate::state::AppState;
use crate::telemetry::RequestId;

/// Registers `/mcp` and `/mcp/{server}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/mcp")
            .route(web::post().to(post::post_all))
            .route(web::get().to(get::get_all))
            .route(web::delete().to(delete::delete_all)),
    )
    .service(
        web::resource("/mcp/{server}")
            .route(web::post().to(post::post_one))
            .route(web::get().to(get::get_one))
            .route(web::delete().to(delete::delete_one)),
    );
}

pub(crate) const SESSION_HEADER: &str = "mcp-session-id";

/// [`SESSION_HEADER`] as a header name for responses (a static name is not parsed and
/// copied on every response, as a string one is).
pub(crate) fn session_header_name() -> actix_web::http::header::HeaderName {
    actix_web::http::header::HeaderName::from_static(SESSION_HEADER)
}

/// The user a request acts for, as `check_request` identified it.
pub(crate) fn user_of(req: &HttpRequest) -> Arc<str> {
    req.extensions()
        .get::<Caller>()
        .map_or_else(|| Arc::from(crate::auth::ANONYMOUS), |c| c.0.clone())
}

/// The identified caller, stored in request extensions by `check_request`.
struct Caller(Arc<str>);

/// Origin, Host and protocol-version checks.
pub(crate) fn check_request(req: &HttpRequest, state: &AppState) -> Result<(), HttpResponse> {
    check_access(req, state)?;
    check_version_header(req)
}

/// Origin, Host and caller checks (every era).
pub(crate) fn check_access(req: &HttpRequest, state: &AppState) -> Result<(), HttpResponse> {
    let http = &state.settings.http;
    if !security::host_allowed(req, http) {
        return Err(transport_error(
            StatusCode::FORBIDDEN,
            "Forbidden: Host not allowed",
            "use a loopback host name, or add the host to http.allowed_hosts",
        ));
    }
    if !security::origin_allowed(req, http) {
        return Err(transport_error(
            StatusCode::FORBIDDEN,
            "Forbidden: Origin not allowed",
            "add the origin to http.allowed_origins",
        ));
    }
    match state.auth.identify(req) {
        Ok(user) => {
            req.extensions_mut().insert(Caller(user));
        }
        Err(e) => {
            let mut resp =
                transport_error(StatusCode::UNAUTHORIZED, "Unauthorized", &e.to_string());
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return Err(resp);
        }
    }
    Ok(())
}

/// A session-era `MCP-Protocol-Version` header must name a supported revision.
pub(crate) fn check_version_header(req: &HttpRequest) -> Result<(), HttpResponse> {
    if let Some(v) = req.headers().get("mcp-protocol-version") {
        let v = v.to_str().unwrap_or("");
        if !version::is_supported(v) {
            return Err(transport_error(
                StatusCode::BAD_REQUEST,
                &format!("Bad Request: Unsupported protocol version: {v}"),
                &format!("supported versions: {}", version::SUPPORTED.join(", ")),
            ));
        }
    }
    Ok(())
}

/// The scope of a path, or 404 for an unknown server.
pub(crate) fn scope_of(server: Option<&str>, state: &AppState) -> Result<Scope, HttpResponse> {
    match server {
        None => Ok(Scope::All),
        Some(id) if state.servers.get(id).is_some() => Ok(Scope::Server(Arc::from(id))),
        Some(id) => Err(HttpResponse::NotFound().json(serde_json::json!({
            "jsonrpc": "2.0", "id": null,
            "error": { "code": -32000, "message": format!("Unknown server: {id}"), "data": { "hint": "GET /api/servers lists the registered servers" } }
        }))),
    }
}

/// The session named by `Mcp-Session-Id`. `Ok(None)` when the header is absent. With
/// shared sessions, one this instance does not hold is looked up in Redis and adopted.
pub(crate) async fn find_session(
    req: &HttpRequest,
    state: &AppState,
    scope: &Scope,
) -> Result<Option<(Arc<str>, SessionEntry)>, HttpResponse> {
    let Some(raw) = req.headers().get(SESSION_HEADER) else {
        return Ok(None);
    };
    let id = raw.to_str().unwrap_or("");
    let entry = match state.sessions.get(id) {
        Some(entry) => Some(entry),
        None => adopt(state, id).await?,
    };
    match entry {
        Some(entry) if entry.user == user_of(req) && &entry.scope == scope => {
            Ok(Some((Arc::from(id), entry)))
        }
        _ => Err(session_not_found()),
    }
}

/// A session another instance created, from its Redis record.
pub(crate) async fn adopt(
    state: &AppState,
    id: &str,
) -> Result<Option<SessionEntry>, HttpResponse> {
    let Some(shared) = state.sessions.shared() else {
        return Ok(None);
    };
    // Session ids are 32 hex digits; anything else is no session of ours.
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let record = match shared.get_record(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::warn!(event = "session.shared.read_failed", session = %id, error = %e, "session.shared.read_failed");
            return Err(transport_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Session store unavailable",
                "this session was created on another instance and Redis does not answer: retry shortly",
            ));
        }
    };
    state
        .sessions
        .adopt(id, record)
        .map(Some)
        .map_err(|e| crate::error::rpc_error(crate::error::status_of(&e), None, &e.to_rpc()))
}

pub(crate) fn session_not_found() -> HttpResponse {
    transport_error(StatusCode::NOT_FOUND, "Session not found", "the session ended or never existed: send initialize without Mcp-Session-Id to start a new one")
}

pub(crate) fn session_required() -> HttpResponse {
    transport_error(
        StatusCode::BAD_REQUEST,
        "Bad Request: Mcp-Session-Id header is required",
        "send initialize first; then echo the Mcp-Session-Id it returned on every request",
    )
}

/// The request context for calls made by this request.
pub(crate) fn call_ctx(req: &HttpRequest, session: Option<Arc<str>>) -> CallCtx {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| Arc::from(uuid::Uuid::new_v4().to_string()));
    CallCtx {
        request_id,
        session,
        user: user_of(req),
    }
}

/// What the client's `Accept` header allows: (json, sse). Missing or `*/*` allows both.
pub(crate) fn accepts(req: &HttpRequest) -> (bool, bool) {
    let Some(accept) = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return (true, true);
    };
    let mut json = false;
    let mut sse = false;
    for part in accept.split(',') {
        let mime = part
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/json" | "application/*" => json = true,
            "text/event-stream" | "text/*" => sse = true,
            "*/*" => {
                json = true;
                sse = true;
            }
            _ => {}
        }
    }
    (json, sse)
}

/// Applies the rate limits to a `tools/call`: 429 with `Retry-After` and a JSON-RPC error
/// naming the exhausted scope. Other methods pass.
pub(crate) async fn limit_call(
    req: &HttpRequest,
    state: &AppState,
    scope: &Scope,
    id: &mcp_hub_actors::protocol::Id,
    method: &str,
    params: Option<&serde_json::value::RawValue>,
) -> Result<(), HttpResponse> {
    use mcp_hub_actors::ratelimit::Limit;
    if method != "tools/call" {
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    struct Name {
        name: String,
    }
    let Some(name) = params
        .and_then(|p| serde_json::from_str::<Name>(p.get()).ok())
        .map(|n| n.name)
    else {
        return Ok(());
    };
    let server = match scope {
        Scope::Server(s) => s.to_string(),
        Scope::All => name.split_once("__").map_or("", |(s, _)| s).to_string(),
    };
    let server_limit = state.servers.get(&server).and_then(|h| {
        h.def.rate_limit_per_second.map(|rate| Limit {
            rate,
            burst: h.def.rate_limit_burst.unwrap_or(rate.max(1.0)),
        })
    });
    if !state.limiter.is_active(server_limit) {
        return Ok(());
    }
    let user = user_of(req);
    state.limiter.check(&user, &server, server_limit).await.map_err(|e| {
        metrics::counter!("mcp_hub_rejected_total", "reason" => e.kind()).increment(1);
        tracing::warn!(
            event = "tool.call.failed", request_id = %call_ctx(req, None).request_id, user = %user, server = %server,
            tool = %name, kind = e.kind(), error = %e, "tool.call.failed"
        );
        crate::error::rpc_error(crate::error::status_of(&e), Some(id), &e.to_rpc())
    })
}
