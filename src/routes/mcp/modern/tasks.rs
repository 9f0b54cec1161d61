//! The tasks extension `io.modelcontextprotocol/tasks` for modern clients, backed by the
//! same TaskStore as 2025-11-25 tasks: one internal model rendered per era.
//!
//! A `tools/call` from a client that declared the extension, for a tool that does not
//! forbid tasks, is answered at once with `resultType: "task"` and runs in the background.
//! `tasks/get` inlines the `result` (completed; an `isError` tool result is `completed`
//! here, unlike 2025-11-25) or the JSON-RPC `error` (failed). `tasks/cancel` acks with an
//! empty result.
//!
//! Input: a legacy upstream that asks the client something while a task runs (an
//! elicitation, a sampling, a roots listing) puts the task in `input_required`, with each
//! waiting request under its key in `inputRequests` (named as in the `input_required`
//! bridge, see [`super::input`]). `tasks/update` delivers the `inputResponses` that fit to
//! the upstream and acks; the task is `working` again once nothing waits. Answers for keys
//! that wait on nothing are dropped. A request the client did not declare the capability
//! for is refused upstream at once, as for a call answered inline.

use actix::prelude::*;
use actix_web::{HttpRequest, HttpResponse};
use mcp_hub_actors::directory::ServerHandle;
use mcp_hub_actors::protocol::jsonrpc::raw_from_string;
use mcp_hub_actors::protocol::modern::RequestMeta;
use mcp_hub_actors::protocol::{codes, Id, RpcError};
use mcp_hub_actors::router;
use mcp_hub_actors::server::transport::next_upstream_id;
use mcp_hub_actors::server::{CallSink, Forward};
use mcp_hub_actors::tasks::{
    AttachInput, AttachUpstream, AwaitResult, CancelTask, CompleteTask, CreateTask, GetTask,
    SetTaskInput, TaskAnswers, TaskStore, UpdateTask,
};
use mcp_hub_actors::HubError;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

use super::input::{as_ask, to_ask, Round, MAX_ROUND_REQUESTS};
use super::relay::{CallEvent, Relay};
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
        ("inputRequests", "inputRequests"),
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
    meta: RequestMeta,
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
    let (tx, events) = mpsc::channel(64);
    let (answers_tx, answers) = mpsc::channel(8);
    let relay = Relay {
        tx: tx.clone(),
        answers: Some(answers_tx),
    }
    .start();
    let forward = Forward {
        ctx: super::super::call_ctx(req, None),
        upstream_id,
        method: "tools/call".into(),
        params,
        progress,
        // The upstream's requests become the task's inputRequests (see `drive`).
        sink: Some(CallSink {
            session: relay.clone().recipient(),
            stream: 1,
            clock: Default::default(),
        }),
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
    store.do_send(AttachInput {
        task_id: task_id.clone(),
        answers: relay.clone().recipient(),
    });
    let call = handle.addr.send(forward);
    actix::spawn(async move {
        let answer = call.await.unwrap_or_else(|e| Err(e.into()));
        let _ = tx.send(CallEvent::Done(answer)).await;
    });
    actix::spawn(drive(
        TaskCall {
            store,
            task_id,
            meta,
            _relay: relay,
        },
        events,
        answers,
    ));
    let mut result = render(&task);
    result.insert("resultType".into(), json!("task"));
    ok(id, result)
}

/// One task-run call, for [`drive`].
struct TaskCall {
    store: Addr<TaskStore>,
    task_id: String,
    /// The creating request's `_meta`: which client capabilities its requests may use.
    meta: RequestMeta,
    // Keeps the relay (the call's event and answer mailbox) alive while the call runs.
    _relay: Addr<Relay>,
}

impl TaskCall {
    /// Tells the store what waits on the requestor now.
    fn publish(&self, round: &Round) {
        self.store.do_send(SetTaskInput {
            task_id: self.task_id.clone(),
            requests: (!round.is_empty()).then(|| round.input_requests()),
        });
    }
}

/// Runs a task's call to its end: holds the upstream's requests as the task's
/// `inputRequests`, delivers `tasks/update` answers, and completes the task.
async fn drive(
    call: TaskCall,
    mut events: mpsc::Receiver<CallEvent>,
    mut answers: mpsc::Receiver<TaskAnswers>,
) {
    let mut round = Round::default();
    let mut named = 0;
    loop {
        tokio::select! {
            ev = events.recv() => match as_ask(ev) {
                Ok(ask) => {
                    let Some(asked) = to_ask(&call.meta, ask) else {
                        continue;
                    };
                    if round.len() >= MAX_ROUND_REQUESTS {
                        let why = "too many requests wait on the task's requestor";
                        asked.reply(Err(RpcError::new(codes::INTERNAL_ERROR, why)));
                        continue;
                    }
                    let key = round.add(asked, &mut named);
                    tracing::info!(event = "task.input.asked", task = %call.task_id, key = %key, "task.input.asked");
                    call.publish(&round);
                }
                // Progress and logs: a task has no stream to put them on.
                Err(Some(CallEvent::Upstream(_))) => {}
                Err(done) => {
                    round.refuse_all("the task's call ended");
                    let outcome = match done {
                        Some(CallEvent::Done(Ok(result))) => Ok(result),
                        Some(CallEvent::Done(Err(e))) => Err(e.to_rpc()),
                        _ => Err(HubError::Internal("the task's call ended without an answer".into()).to_rpc()),
                    };
                    call.store.do_send(CompleteTask { task_id: call.task_id, outcome });
                    return;
                }
            },
            Some(TaskAnswers { mut responses, taken }) = answers.recv() => {
                let before = round.len();
                round.answer_from(&mut responses);
                tracing::info!(event = "task.input.answered", task = %call.task_id, answered = before - round.len(), waiting = round.len(), "task.input.answered");
                call.publish(&round);
                let _ = taken.send(());
            }
        }
    }
}

/// How long `tasks/update` waits for the task's driver to take the answers before it acks.
const UPDATE_WAIT: Duration = Duration::from_secs(5);

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
            // tasks/update
            let Some(responses) = params
                .and_then(|p| p.get("inputResponses"))
                .and_then(Value::as_object)
                .cloned()
            else {
                let e = HubError::invalid_params(
                    "Invalid params",
                    "params.inputResponses must be an object of answers by inputRequests key",
                );
                return error(Some(id), &e.to_rpc());
            };
            match store.send(UpdateTask { owner, task_id }).await {
                Ok(Ok(Some(driver))) => {
                    let (taken, wait) = oneshot::channel();
                    if driver.send(TaskAnswers { responses, taken }).await.is_ok() {
                        let _ = tokio::time::timeout(UPDATE_WAIT, wait).await;
                    }
                    ok(id, Map::new())
                }
                // Not waiting on input: there is nothing to answer.
                Ok(Ok(None)) => ok(id, Map::new()),
                Ok(Err(e)) => fail(e),
                Err(e) => fail(e.into()),
            }
        }
    }
}
