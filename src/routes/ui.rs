//! `/ui`: the operator dashboard. Plain HTML, CSS and JavaScript compiled into the binary
//! (no build step, nothing to deploy beside the hub). The page talks only to the admin API,
//! so it sees exactly what the token allows.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::error::ApiError;
use crate::security;
use crate::state::AppState;

const INDEX: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const APP_CSS: &str = include_str!("ui/app.css");

/// Only the page's own files: no inline script or style, no third-party origin, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Registers `/ui` and its assets.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ui", web::get().to(index))
        .route("/ui/", web::get().to(index))
        .route("/ui/app.js", web::get().to(script))
        .route("/ui/app.css", web::get().to(style));
}

async fn index(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    asset(&req, &state, "text/html; charset=utf-8", INDEX)
}

async fn script(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    asset(&req, &state, "text/javascript; charset=utf-8", APP_JS)
}

async fn style(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    asset(&req, &state, "text/css; charset=utf-8", APP_CSS)
}

fn asset(
    req: &HttpRequest,
    state: &AppState,
    content_type: &str,
    body: &'static str,
) -> HttpResponse {
    // Same DNS-rebinding guard as the API the page calls.
    if !security::host_allowed(req, &state.settings.http) {
        return ApiError::Forbidden(
            "Host not allowed: use a loopback host name, or add it to http.allowed_hosts".into(),
        )
        .error_response();
    }
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        // Assets change with the binary; revalidating is cheap and avoids a stale page.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}
