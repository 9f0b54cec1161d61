//! The TaskStore's public API. Sent by SessionActors (and by the detached futures that run
//! task calls); `TaskStatusChanged` goes the other way, to the session that created a task.

use actix::prelude::*;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::sync::Arc;
use tokio::sync::oneshot;

use crate::error::HubError;
use crate::protocol::RpcError;
use crate::server::Cancel;

/// Create a working task for `owner`. Returns the `Task` object.
#[derive(Message)]
#[rtype(result = "Result<Value, HubError>")]
pub struct CreateTask {
    /// The requestor; only it may see the task.
    pub owner: Arc<str>,
    /// Requested TTL in ms (capped by config).
    pub ttl_ms: Option<u64>,
    /// Told about status changes (the creating session).
    pub watcher: Option<Recipient<TaskStatusChanged>>,
}

/// The call behind a task went upstream as `upstream_id`; `cancel` stops it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachUpstream {
    /// Task id.
    pub task_id: String,
    /// The server actor running the call.
    pub cancel: Recipient<Cancel>,
    /// The upstream request id.
    pub upstream_id: u64,
}

/// The call behind a task ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CompleteTask {
    /// Task id.
    pub task_id: String,
    /// Raw result, or the JSON-RPC error.
    pub outcome: Result<Box<RawValue>, RpcError>,
}

/// `tasks/get`: the `Task` object.
#[derive(Message)]
#[rtype(result = "Result<Value, HubError>")]
pub struct GetTask {
    /// The requestor.
    pub owner: Arc<str>,
    /// Task id.
    pub task_id: String,
}

/// `tasks/result`: waits until the task is terminal, then returns what the call returned
/// (as stored; 2025-11-25's `tasks/result` adds [`super::store::with_related_task`]), or its
/// JSON-RPC error.
#[derive(Message)]
#[rtype(result = "Result<Box<RawValue>, HubError>")]
pub struct AwaitResult {
    /// The requestor.
    pub owner: Arc<str>,
    /// Task id.
    pub task_id: String,
}

/// `tasks/list`: the requestor's tasks, newest last, paginated.
#[derive(Message)]
#[rtype(result = "Result<Value, HubError>")]
pub struct ListTasks {
    /// The requestor.
    pub owner: Arc<str>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// `tasks/cancel`: cancels a running task (and its upstream call). Terminal → -32602.
#[derive(Message)]
#[rtype(result = "Result<Value, HubError>")]
pub struct CancelTask {
    /// The requestor.
    pub owner: Arc<str>,
    /// Task id.
    pub task_id: String,
}

/// The task's call waits on its requestor (`Some`: the `inputRequests` map, status
/// `input_required`) or no longer does (`None`: back to `working`). Sent by the future that
/// drives a 2026-07-28 task's call.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetTaskInput {
    /// Task id.
    pub task_id: String,
    /// The requests still waiting for an answer, by key.
    pub requests: Option<Value>,
}

/// Where `tasks/update` delivers a task's answers: its call's driver.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachInput {
    /// Task id.
    pub task_id: String,
    /// The driver's mailbox.
    pub answers: Recipient<TaskAnswers>,
}

/// `tasks/update`: the mailbox to deliver the requestor's answers to, when the task waits
/// on input (`None` when it does not: answers to nothing are dropped). Unknown task → -32602.
#[derive(Message)]
#[rtype(result = "Result<Option<Recipient<TaskAnswers>>, HubError>")]
pub struct UpdateTask {
    /// The requestor.
    pub owner: Arc<str>,
    /// Task id.
    pub task_id: String,
}

/// The requestor's `inputResponses` for a task's driver. `taken` fires once the driver has
/// delivered what fits and told the store the requests still waiting, so a `tasks/get`
/// after the `tasks/update` ack sees the new state.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TaskAnswers {
    /// Answers by `inputRequests` key.
    pub responses: Map<String, Value>,
    /// Fired when the answers are taken.
    pub taken: oneshot::Sender<()>,
}

/// A task changed status. Sent by the TaskStore to the task's watcher.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TaskStatusChanged {
    /// The `Task` object.
    pub task: Value,
}
