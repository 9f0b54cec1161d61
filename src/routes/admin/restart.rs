//! `POST /api/servers/{id}/restart`: a graceful restart an operator asks for. Answers when
//! the new worker is ready (200 with its runtime status) or could not start (503 with the
//! reason), so a script or the dashboard's button needs no polling.

use actix::MailboxError;
use actix_web::{web, HttpResponse};
use mcp_hub_actors::server::Restart;
use mcp_hub_actors::HubError;
use serde_json::json;
use std::time::Duration;

use crate::error::ApiError;
use crate::state::AppState;

/// Longer than the ServerActor's own handshake timeout (30 s), so the actor's answer (ready
/// or the handshake failure) arrives before this fires.
const RESTART_WAIT: Duration = Duration::from_secs(35);

/// `POST /api/servers/{id}/restart`.
pub async fn restart(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let handle = state.servers.get(&id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no running server {id:?}; a disabled server starts when it is enabled"
        ))
    })?;
    match handle.addr.send(Restart).timeout(RESTART_WAIT).await {
        Ok(Ok(runtime)) => Ok(HttpResponse::Ok().json(json!({ "id": id, "runtime": runtime }))),
        Ok(Err(e)) => Err(ApiError::Unavailable(format!(
            "{id}: the new worker did not become ready: {}",
            reason(&e)
        ))),
        Err(MailboxError::Timeout) => Err(ApiError::Unavailable(format!(
            "{id}: still restarting after {} s; follow it on /api/events",
            RESTART_WAIT.as_secs()
        ))),
        Err(MailboxError::Closed) => Err(ApiError::NotFound(format!(
            "server {id:?} stopped while restarting (deleted or disabled)"
        ))),
    }
}

fn reason(e: &HubError) -> String {
    match e {
        HubError::ServerUnavailable { reason, .. } | HubError::ServerRestarted { reason, .. } => {
            reason.clone()
        }
        other => other.to_string(),
    }
}
