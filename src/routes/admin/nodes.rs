//! `GET /api/nodes`: the hub instances alive in the shared Redis (their heartbeats), or this
//! one alone on the embedded store.

use actix_web::{web, HttpResponse};
use mcp_hub_actors::nodes::ListNodes;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /api/nodes`.
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let Some(nodes) = &state.nodes else {
        let status = if state.sessions.is_draining() {
            "stopping"
        } else {
            "ready"
        };
        return Ok(HttpResponse::Ok().json(json!({
            "redis": false,
            "shared": false,
            "nodes": [{
                "id": state.settings.node_id.clone().unwrap_or_else(crate::startup::default_node_id),
                "local": true,
                "status": status,
                "sessions": state.sessions.len(),
                "servers": state.servers.len(),
            }]
        })));
    };
    let list = nodes
        .send(ListNodes)
        .await?
        .map_err(|e| ApiError::Unavailable(format!("redis: {e}")))?;
    Ok(HttpResponse::Ok().json(json!({ "redis": true, "shared": true, "nodes": list })))
}
