//! `GET /api/stats`: hub totals for the dashboard's summary line and for scripts.
//!
//! Call counts come from the Prometheus recorder (the same numbers `/metrics` shows), so
//! they count since the process started; server and session counts are this hub's own.

use actix_web::{web, HttpResponse};
use mcp_hub_actors::registry;
use serde_json::{json, Value};
use std::collections::BTreeMap;

use crate::error::ApiError;
use crate::metrics::status_name;
use crate::state::AppState;

/// `GET /api/stats`.
pub async fn stats(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let defs = state.registry.send(registry::List).await?;
    Ok(HttpResponse::Ok().json(snapshot(&state, defs.len())))
}

/// The stats body; also sent as the `stats` event of `/api/events`.
pub fn snapshot(state: &AppState, registered: usize) -> Value {
    let mut by_status: BTreeMap<&str, usize> =
        ["starting", "ready", "restarting", "stopped", "failed"]
            .into_iter()
            .map(|s| (s, 0))
            .collect();
    let (mut in_flight, mut queue_depth) = (0usize, 0usize);
    let running = state.servers.snapshot();
    for h in &running {
        let rt = h.runtime.borrow();
        *by_status.entry(status_name(rt.status)).or_default() += 1;
        in_flight += rt.in_flight;
        queue_depth += rt.queue_depth;
    }
    // Registered but without a worker: disabled (or being replaced right now).
    *by_status.entry("stopped").or_default() += registered.saturating_sub(running.len());
    let by_server = state.metrics.call_totals();
    let calls: u64 = by_server.values().map(|t| t.calls).sum();
    let errors: u64 = by_server.values().map(|t| t.errors).sum();
    json!({
        "servers": { "total": registered, "running": running.len(), "by_status": by_status },
        "sessions": { "total": state.sessions.len() },
        "calls": {
            "total": calls,
            "errors": errors,
            "in_flight": in_flight,
            "queue_depth": queue_depth,
            "by_server": by_server,
        },
    })
}
