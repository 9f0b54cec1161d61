//! `subscriptions/listen`: a POST whose SSE response stays open and carries the list
//! changes the client asked for (it replaces the legacy GET stream for modern clients).
//!
//! The first message is `notifications/subscriptions/acknowledged` naming what the hub
//! honours; every message carries `_meta[subscriptionId]` = the listen request's id. Fed by
//! the hub-wide catalog events (an upstream's list_changed, a server registered, started
//! or removed). Resource update subscriptions are not relayed yet (acknowledged as none).

use actix_web::{HttpRequest, HttpResponse};
use mcp_hub_actors::directory::HubEvent;
use mcp_hub_actors::protocol::jsonrpc::{notification_bytes, to_raw};
use mcp_hub_actors::protocol::modern;
use mcp_hub_actors::protocol::Id;
use mcp_hub_actors::router::Scope;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::state::AppState;

/// Opens the listen stream.
pub(crate) fn open(
    req: &HttpRequest,
    state: &AppState,
    scope: Scope,
    id: Id,
    params: Value,
) -> HttpResponse {
    let wanted = params.get("notifications").cloned().unwrap_or(Value::Null);
    let flag = |k: &str| wanted.get(k).and_then(Value::as_bool).unwrap_or(false);
    let kinds: Vec<&'static str> = [
        ("toolsListChanged", "notifications/tools/list_changed"),
        ("promptsListChanged", "notifications/prompts/list_changed"),
        (
            "resourcesListChanged",
            "notifications/resources/list_changed",
        ),
    ]
    .into_iter()
    .filter(|(k, _)| flag(k))
    .map(|(_, m)| m)
    .collect();
    let sub_meta = json!({ modern::META_SUBSCRIPTION_ID: id });
    let ack = json!({
        "notifications": {
            "toolsListChanged": flag("toolsListChanged"),
            "promptsListChanged": flag("promptsListChanged"),
            "resourcesListChanged": flag("resourcesListChanged"),
            "resourceSubscriptions": [],
        },
        "_meta": sub_meta,
    });
    let (tx, rx) = mpsc::channel::<String>(64);
    let _ = tx.try_send(notification_bytes(
        "notifications/subscriptions/acknowledged",
        Some(&to_raw(&ack)),
    ));
    let mut events = state.servers.subscribe();
    let params = to_raw(&json!({ "_meta": sub_meta }));
    actix::spawn(async move {
        loop {
            let ev = tokio::select! {
                ev = events.recv() => ev,
                _ = tx.closed() => break,
            };
            match ev {
                Ok(HubEvent::CatalogChanged { server }) => {
                    let sees = match &scope {
                        Scope::All => true,
                        Scope::Server(s) => *s == server,
                    };
                    if !sees {
                        continue;
                    }
                    for m in &kinds {
                        // A slow reader loses change notices rather than holding the hub.
                        if let Err(mpsc::error::TrySendError::Closed(_)) =
                            tx.try_send(notification_bytes(m, Some(&params)))
                        {
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    super::sse_response(req, state, ReceiverStream::new(rx))
}
