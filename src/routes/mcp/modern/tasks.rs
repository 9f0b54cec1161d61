//! The tasks extension `io.modelcontextprotocol/tasks` for modern clients, backed by the
//! same TaskStore as 2025-11-25 tasks: one internal model rendered per era.
//!
//! A `tools/call` from a client that declared the extension, for a tool that does not
//! forbid tasks, is answered at once with `resultType: "task"` and runs in the background.
//! `tasks/get` inlines the `result` (completed; an `isError` tool result is `completed`
//! here, unlike 2025-11-25) or the JSON-RPC `error` (failed). `tasks/cancel` acks with an
//! empty result. `tasks/update` is refused: hub-run tasks never wait for input.

use actix_web::{HttpRequest, HttpResponse};
use mcp_hub_actors::directory::ServerHandle;
use mcp_hub_actors::protocol::jsonrpc::raw_from_string;
use mcp_hub_actors::protocol::{codes, Id, RpcError};
use mcp_hub_actors::router;
use mcp_hub_actors::server::transport::next_upstream_id;
use mcp_hub_actors::server::Forward;
use mcp_hub_actors::tasks::{
    AttachUpstream, AwaitResult, CancelTask, CompleteTask, CreateTask, GetTask,
};
use mcp_hub_actors::HubError;
use serde_json::{json, Map, Value};
use std::sync::Arc;

use super::{as_object, error, ok};
use crate::state::AppState;

/// The extension's Task shape from the store's 2025-11-25 `Task` object.
fn render(task: &Value) -> Map<String, Value> {
    let mut m = Map::new();
    for (from, to) in [
        ("taskId", "taskId"),
        ("status", "status"),
        ("statusMessage", "statusMessage"),
        ("createdAt", "createdAt"),
        ("lastUpdatedAt", "lastUpdatedAt"),
        ("ttl", "ttlMs"),
        ("pollInterval", "pollIntervalMs"),
    ] {
        if let Some(v) = task.get(from) {
            m.insert(to.into(), v.clone());
        }
    }
    m
}

/// Starts a task-run `tools/call`; answers with the task.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start(
    req: &HttpRequest,
    state: &AppState,
    user: Arc<str>,
    id: &Id,
    handle: std::sync::Arc<ServerHandle>,
    params: Map<String, Value>,
    rename: Option<String>,
    tool: String,
) -> HttpResponse {
    let store = state.sessions.tasks();
    let upstream_id = next_upstream_id();
    let raw = match serde_json::to_string(&params) {
        Ok(s) => raw_from_string(s),
        Err(e) => return error(Some(id), &HubError::Internal(e.to_string()).to_rpc()),
    };
    let (params, progress) = match router::rewrite_params(Some(raw), rename.as_deref(), upstream_id)
    {
        Ok(p) => p,
        Err(e) => return error(Some(id), &e.to_rpc()),
    };
    let forward = Forward {
        ctx: super::super::call_ctx(req, None),
        upstream_id,
        method: "tools/call".into(),
        params,
        progress,
        // No client stream: the upstream's server-to-client requests are refused.
        sink: None,
        tool: Some(tool),
    };
    // The task must exist before the answer goes out (the extension says "durably").
    let task = match store
        .send(CreateTask {
            owner: user,
            ttl_ms: None,
            watcher: None,
        })
        .await
    {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return error(Some(id), &e.to_rpc()),
        Err(e) => return error(Some(id), &HubError::from(e).to_rpc()),
    };
    let task_id = task["taskId"].as_str().unwrap_or_default().to_string();
    store.do_send(AttachUpstream {
        task_id: task_id.clone(),
        cancel: handle.addr.clone().recipient(),
        upstream_id,
    });
    let call = handle.addr.send(forward);
    actix::spawn(async move {
        let outcome = match call.await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(e)) => Err(e.to_rpc()),
            Err(e) => Err(HubError::from(e).to_rpc()),
        };
        store.do_send(CompleteTask { task_id, outcome });
    });
    let mut result = render(&task);
    result.insert("resultType".into(), json!("task"));
    ok(id, result)
}

/// `tasks/get`, `tasks/update`, `tasks/cancel`.
pub(crate) async fn serve(
    state: &AppState,
    owner: Arc<str>,
    id: &Id,
    method: &str,
    params: Option<&Value>,
) -> HttpResponse {
    let Some(task_id) = params
        .and_then(|p| p.get("taskId"))
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        let e = HubError::invalid_params("Invalid params", "params.taskId is required");
        return error(Some(id), &e.to_rpc());
    };
    let store = state.sessions.tasks();
    let fail = |e: HubError| error(Some(id), &e.to_rpc());
    match method {
        "tasks/get" => {
            let task = match store
                .send(GetTask {
                    owner: owner.clone(),
                    task_id: task_id.clone(),
                })
                .await
            {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => return fail(e),
                Err(e) => return fail(e.into()),
            };
            let mut out = render(&task);
            let status = task["status"].as_str().unwrap_or_default();
            if matches!(status, "completed" | "failed") {
                // Terminal: tasks/result answers at once with the stored outcome.
                match store.send(AwaitResult { owner, task_id }).await {
                    Ok(Ok(raw)) => {
                        // The extension counts an isError tool result as completed.
                        out.insert("status".into(), json!("completed"));
                        out.insert("result".into(), Value::Object(as_object(&raw)));
                    }
                    Ok(Err(e)) => {
                        out.insert("status".into(), json!("failed"));
                        out.insert(
                            "error".into(),
                            serde_json::to_value(e.to_rpc()).unwrap_or(Value::Null),
                        );
                    }
                    Err(e) => return fail(e.into()),
                }
            }
            ok(id, out)
        }
        "tasks/cancel" => match store.send(CancelTask { owner, task_id }).await {
            // Cancelling a task that already ended is not an error here: the ack is
            // cooperative and the task may end non-cancelled.
            Ok(Ok(_)) | Ok(Err(HubError::InvalidParams { .. })) => ok(id, Map::new()),
            Ok(Err(e)) => fail(e),
            Err(e) => fail(e.into()),
        },
        _ => {
            let e = RpcError::new(codes::INVALID_PARAMS, "Invalid params: the task is not waiting for input")
                .with_data(json!({ "reason": "not_input_required", "hint": "tasks run by the hub never ask for input; poll tasks/get" }));
            error(Some(id), &e)
        }
    }
}
