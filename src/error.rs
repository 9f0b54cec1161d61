//! The one place where errors become HTTP: JSON-RPC error bodies for the MCP endpoints
//! ([`rpc_error`]) and [`ApiError`] for the admin API.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use mcp_hub_actors::protocol::jsonrpc::error_bytes;
use mcp_hub_actors::protocol::{codes, Id, RpcError};
use mcp_hub_actors::HubError;
use serde_json::json;

/// An HTTP response carrying one JSON-RPC error.
pub fn rpc_error(status: StatusCode, id: Option<&Id>, err: &RpcError) -> HttpResponse {
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::CONTENT_TYPE, "application/json"));
    if let Some(secs) = err
        .data
        .as_ref()
        .and_then(|d| d.get("retry_after_seconds"))
        .and_then(|v| v.as_u64())
    {
        resp.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    resp.body(error_bytes(id, err))
}

/// A transport-level failure: `-32000` with a message and a hint, as the MCP SDKs do.
pub fn transport_error(status: StatusCode, message: &str, hint: &str) -> HttpResponse {
    rpc_error(
        status,
        None,
        &RpcError::new(codes::SERVER_ERROR, message).with_data(json!({ "hint": hint })),
    )
}

/// The HTTP status for a [`HubError`] raised before any response stream exists.
pub fn status_of(e: &HubError) -> StatusCode {
    match e {
        HubError::Busy { .. } | HubError::LimitReached { .. } | HubError::Draining => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        HubError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::OK,
    }
}

/// An admin API failure; renders as `{"error":{"code","message","field"?}}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Nothing with that id.
    #[error("{0}")]
    NotFound(String),
    /// The request body is wrong; `field` names the key.
    #[error("{message}")]
    BadRequest {
        /// The offending field, when known.
        field: Option<String>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Missing or wrong credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Refused whatever the credentials (a foreign Host or Origin).
    #[error("{0}")]
    Forbidden(String),
    /// A dependency (the store) is down; nothing was changed.
    #[error("{0}")]
    Unavailable(String),
    /// A bug.
    #[error("{0}")]
    Internal(String),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        };
        let mut body = json!({ "error": { "code": code, "message": self.to_string() } });
        if let ApiError::BadRequest { field: Some(f), .. } = self {
            body["error"]["field"] = json!(f);
        }
        let mut resp = HttpResponse::build(self.status_code());
        if let ApiError::Unauthorized(_) = self {
            resp.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        resp.json(body)
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        ApiError::Internal(format!("actor unavailable: {e}"))
    }
}
