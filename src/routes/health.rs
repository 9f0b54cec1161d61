//! Liveness and readiness.

use actix_web::{web, HttpResponse};
use mcp_hub_actors::server::Status;
use serde_json::json;

use crate::state::AppState;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when every enabled server is ready, else 503 naming the others.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let not_ready: Vec<_> = state
        .servers
        .snapshot()
        .into_iter()
        .filter_map(|h| {
            let st = h.runtime.borrow().status;
            (st != Status::Ready).then(|| json!({ "server": &*h.id, "status": st }))
        })
        .collect();
    let draining = state.sessions.is_draining();
    let redis = state.redis_up.as_ref().map(|up| {
        if up.load(std::sync::atomic::Ordering::Acquire) {
            "up"
        } else {
            "down"
        }
    });
    let body = json!({ "ready": not_ready.is_empty() && !draining, "draining": draining, "redis": redis.unwrap_or("not configured"), "servers": state.servers.len(), "not_ready": not_ready, "sessions": state.sessions.len() });
    if not_ready.is_empty() && !draining {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
