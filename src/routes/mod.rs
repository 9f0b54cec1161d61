//! The HTTP surface. Handlers parse and frame; every decision is made by the actors.
//!
//! - `mcp/`: Streamable HTTP at `/mcp` (all servers) and `/mcp/{server}` (one server).
//! - `call`: `POST /mcp/{server}/{tool}`, a plain call answered as SSE.
//! - `sse`: the legacy HTTP+SSE transport at `/sse` and `/messages`.
//! - `admin/`: the operator API under `/api`.
//! - `health`: `/healthz`, `/readyz`; `/metrics` is served by [`crate::metrics`].
//! - `ui`: the dashboard at `/ui`.

pub mod admin;
pub mod call;
pub mod health;
pub mod mcp;
pub mod sse;
pub mod ui;

use actix_web::{web, HttpResponse};

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(crate::metrics::scrape))
        .configure(admin::configure)
        .configure(mcp::configure)
        .configure(call::configure)
        .configure(sse::configure)
        .configure(ui::configure)
        .default_service(web::to(not_found));
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({
        "error": { "code": "not_found", "message": "no such endpoint; MCP clients use /mcp or /mcp/{server}, operators /api" }
    }))
}
