//! The operator API under `/api`. Every route requires `Authorization: Bearer <admin_token>`;
//! without a configured token only loopback callers are served.

mod events;
mod nodes;
mod openapi;
mod restart;
mod servers;
mod sessions;
mod stats;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, Error, ResponseError};

use crate::error::ApiError;
use crate::security;
use crate::state::AppState;

/// Registers `/api`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api")
            .wrap(from_fn(authorize))
            .route("/nodes", web::get().to(nodes::list))
            .route("/servers", web::get().to(servers::list))
            .route("/servers/{id}", web::get().to(servers::get))
            .route("/servers/{id}", web::post().to(servers::upsert))
            .route("/servers/{id}", web::delete().to(servers::delete))
            .route("/servers/{id}/tools", web::get().to(servers::tools))
            .route("/servers/{id}/restart", web::post().to(restart::restart))
            .route("/stats", web::get().to(stats::stats))
            .route("/sessions", web::get().to(sessions::list))
            .route("/events", web::get().to(events::events))
            .route("/openapi.json", web::get().to(openapi::document)),
    );
}

async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req.error_response(ApiError::Internal("state missing".into())));
    };
    let http_req = req.request();
    let denied = if !security::host_allowed(http_req, &state.settings.http)
        || !security::origin_allowed(http_req, &state.settings.http)
    {
        Some(ApiError::Forbidden("Host or Origin not allowed: use a loopback host name, or add it to http.allowed_hosts / allowed_origins".into()))
    } else {
        match state.settings.admin_token.as_deref() {
            Some(token) => match security::bearer(http_req) {
                Some(given) if security::constant_time_eq(given.as_bytes(), token.as_bytes()) => None,
                Some(_) => Some(ApiError::Unauthorized("invalid admin token".into())),
                None => Some(ApiError::Unauthorized("send Authorization: Bearer <admin_token>".into())),
            },
            None if security::peer_is_loopback(http_req) => None,
            None => Some(ApiError::Unauthorized(
                "no admin_token is configured, so the admin API only serves loopback callers; set MCP_HUB_ADMIN_TOKEN to allow remote access".into(),
            )),
        }
    };
    match denied {
        Some(e) => {
            let resp = e.error_response();
            Ok(req.into_response(resp))
        }
        None => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body),
    }
}
