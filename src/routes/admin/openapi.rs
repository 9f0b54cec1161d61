//! `GET /api/openapi.json`: the admin API described as OpenAPI 3.1. Hand-written
//! (`openapi.json` beside this file) and compiled into the binary; the operator tests check
//! that every admin route is in it.

use actix_web::http::header;
use actix_web::HttpResponse;

/// The document.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /api/openapi.json`.
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(DOCUMENT)
}
