//! TaskStore: every task record of this hub process.
//!
//! State: records by id, per-owner counts, waiters of `tasks/result`, cancel hooks.
//! Messages: see `messages.rs`.
//! Timers: a sweep deletes records whose TTL ran out after they ended.
//! Failure behaviour: a caller waiting on `tasks/result` is answered when the task ends or
//! expires, never left hanging; if the store stops, its waiters' channels close and they
//! get an internal error.

use actix::prelude::*;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

use super::messages::*;
use super::record::{is_error_result, Outcome, TaskRecord, TaskStatus};
use crate::error::HubError;
use crate::protocol::jsonrpc::raw_from_string;
use crate::server::Cancel;

/// Task limits.
#[derive(Debug, Clone)]
pub struct TaskConfig {
    /// TTL when the client asks for none.
    pub default_ttl: Duration,
    /// Longest TTL granted.
    pub max_ttl: Duration,
    /// Working tasks one owner may have at once.
    pub max_working_per_owner: usize,
    /// Suggested polling interval.
    pub poll_interval_ms: u64,
    /// Tasks per `tasks/list` page.
    pub page_size: usize,
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(300),
            max_ttl: Duration::from_secs(3600),
            max_working_per_owner: 100,
            poll_interval_ms: 1000,
            page_size: 100,
        }
    }
}

struct Entry {
    record: TaskRecord,
    waiters: Vec<oneshot::Sender<()>>,
    cancel: Option<(Recipient<Cancel>, u64)>,
    watcher: Option<Recipient<TaskStatusChanged>>,
    /// Where `tasks/update` answers go (2026-07-28 tasks).
    answers: Option<Recipient<TaskAnswers>>,
    /// The `inputRequests` while the task is `input_required`.
    input_requests: Option<Value>,
}

impl Entry {
    /// The `Task` object, with `inputRequests` while the task waits on input.
    fn to_json(&self) -> Value {
        let mut v = self.record.to_json();
        if let (TaskStatus::InputRequired, Some(r)) = (self.record.status, &self.input_requests) {
            v["inputRequests"] = r.clone();
        }
        v
    }
}

/// Owns every task; see the module docs.
pub struct TaskStore {
    config: TaskConfig,
    tasks: HashMap<String, Entry>,
    next_seq: u64,
}

impl TaskStore {
    /// An empty store.
    pub fn new(config: TaskConfig) -> Self {
        Self {
            config,
            tasks: HashMap::new(),
            next_seq: 1,
        }
    }

    fn find(&self, owner: &str, id: &str) -> Result<&Entry, HubError> {
        self.tasks
            .get(id)
            .filter(|e| &*e.record.owner == owner)
            .ok_or_else(|| not_found(id))
    }

    fn finish(
        &mut self,
        id: &str,
        status: TaskStatus,
        outcome: Option<Outcome>,
        message: Option<String>,
    ) {
        let Some(e) = self.tasks.get_mut(id) else {
            return;
        };
        if !e.record.finish(status, outcome, message) {
            return;
        }
        for w in e.waiters.drain(..) {
            let _ = w.send(());
        }
        if let Some(watcher) = &e.watcher {
            watcher.do_send(TaskStatusChanged {
                task: e.record.to_json(),
            });
        }
        tracing::info!(event = "task.finished", task = %id, status = status.as_str(), "task.finished");
    }
}

fn not_found(id: &str) -> HubError {
    HubError::invalid_params(
        format!("Unknown task: {id}"),
        "the task id is wrong, belongs to another user, or its TTL ran out",
    )
}

impl Actor for TaskStore {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
        ctx.run_interval(Duration::from_secs(1), |act, _| {
            let now = Instant::now();
            act.tasks
                .retain(|_, e| e.record.expires_at.is_none_or(|t| t > now));
        });
    }
}

impl Handler<CreateTask> for TaskStore {
    type Result = Result<Value, HubError>;

    fn handle(&mut self, msg: CreateTask, _: &mut Self::Context) -> Self::Result {
        let working = self
            .tasks
            .values()
            .filter(|e| e.record.owner == msg.owner && !e.record.status.is_terminal())
            .count();
        if working >= self.config.max_working_per_owner {
            return Err(HubError::LimitReached {
                what: "Working task",
                limit: self.config.max_working_per_owner,
                retry_after_seconds: 5,
            });
        }
        let ttl = msg
            .ttl_ms
            .map(Duration::from_millis)
            .unwrap_or(self.config.default_ttl)
            .min(self.config.max_ttl);
        let record = TaskRecord::new(msg.owner, ttl, self.config.poll_interval_ms, self.next_seq);
        self.next_seq += 1;
        let view = record.to_json();
        tracing::info!(event = "task.created", task = %record.id, "task.created");
        self.tasks.insert(
            record.id.clone(),
            Entry {
                record,
                waiters: Vec::new(),
                cancel: None,
                watcher: msg.watcher,
                answers: None,
                input_requests: None,
            },
        );
        Ok(view)
    }
}

impl Handler<AttachUpstream> for TaskStore {
    type Result = ();

    fn handle(&mut self, msg: AttachUpstream, _: &mut Self::Context) {
        if let Some(e) = self.tasks.get_mut(&msg.task_id) {
            e.cancel = Some((msg.cancel, msg.upstream_id));
        }
    }
}

impl Handler<AttachInput> for TaskStore {
    type Result = ();

    fn handle(&mut self, msg: AttachInput, _: &mut Self::Context) {
        if let Some(e) = self.tasks.get_mut(&msg.task_id) {
            e.answers = Some(msg.answers);
        }
    }
}

impl Handler<SetTaskInput> for TaskStore {
    type Result = ();

    fn handle(&mut self, msg: SetTaskInput, _: &mut Self::Context) {
        let Some(e) = self.tasks.get_mut(&msg.task_id) else {
            return;
        };
        if e.record.status.is_terminal() {
            return;
        }
        let status = if msg.requests.is_some() {
            TaskStatus::InputRequired
        } else {
            TaskStatus::Working
        };
        e.input_requests = msg.requests;
        if e.record.set_running(status) {
            tracing::info!(event = "task.status", task = %msg.task_id, status = status.as_str(), "task.status");
            if let Some(watcher) = &e.watcher {
                watcher.do_send(TaskStatusChanged { task: e.to_json() });
            }
        }
    }
}

impl Handler<UpdateTask> for TaskStore {
    type Result = Result<Option<Recipient<TaskAnswers>>, HubError>;

    fn handle(&mut self, msg: UpdateTask, _: &mut Self::Context) -> Self::Result {
        let e = self.find(&msg.owner, &msg.task_id)?;
        Ok((e.record.status == TaskStatus::InputRequired)
            .then(|| e.answers.clone())
            .flatten())
    }
}

impl Handler<CompleteTask> for TaskStore {
    type Result = ();

    fn handle(&mut self, msg: CompleteTask, _: &mut Self::Context) {
        let (status, outcome) = match msg.outcome {
            Ok(result) if is_error_result(&result) => (TaskStatus::Failed, Outcome::Result(result)),
            Ok(result) => (TaskStatus::Completed, Outcome::Result(result)),
            Err(e) => (TaskStatus::Failed, Outcome::Error(e)),
        };
        self.finish(&msg.task_id, status, Some(outcome), None);
    }
}

impl Handler<GetTask> for TaskStore {
    type Result = Result<Value, HubError>;

    fn handle(&mut self, msg: GetTask, _: &mut Self::Context) -> Self::Result {
        self.find(&msg.owner, &msg.task_id).map(Entry::to_json)
    }
}

impl Handler<AwaitResult> for TaskStore {
    type Result = ResponseActFuture<Self, Result<Box<RawValue>, HubError>>;

    fn handle(&mut self, msg: AwaitResult, _: &mut Self::Context) -> Self::Result {
        let rx = match self
            .tasks
            .get_mut(&msg.task_id)
            .filter(|e| e.record.owner == msg.owner)
        {
            None => return Box::pin(fut::ready(Err(not_found(&msg.task_id)))),
            Some(e) if e.record.status.is_terminal() => None,
            Some(e) => {
                let (tx, rx) = oneshot::channel();
                e.waiters.push(tx);
                Some(rx)
            }
        };
        let id = msg.task_id;
        Box::pin(
            async move {
                if let Some(rx) = rx {
                    let _ = rx.await;
                }
            }
            .into_actor(self)
            .map(move |(), act, _| {
                let e = act.tasks.get(&id).ok_or_else(|| not_found(&id))?;
                match &e.record.outcome {
                    Some(Outcome::Result(raw)) => Ok(raw.clone()),
                    Some(Outcome::Error(err)) => Err(HubError::Upstream(err.clone())),
                    None => Err(HubError::invalid_params(
                        format!("Task {id} was cancelled"),
                        "a cancelled task has no result",
                    )),
                }
            }),
        )
    }
}

/// Adds `_meta["io.modelcontextprotocol/related-task"] = {taskId}` to a result object, as
/// 2025-11-25's `tasks/result` answers (the 2026-07-28 extension forbids it on the result
/// `tasks/get` inlines, so the store keeps results without it).
pub fn with_related_task(raw: &RawValue, task_id: &str) -> Box<RawValue> {
    let mut map: Map<String, Value> = serde_json::from_str(raw.get()).unwrap_or_default();
    let meta = map.entry("_meta").or_insert_with(|| json!({}));
    if let Value::Object(m) = meta {
        m.insert(
            "io.modelcontextprotocol/related-task".into(),
            json!({ "taskId": task_id }),
        );
    }
    raw_from_string(serde_json::to_string(&map).unwrap_or_else(|_| "{}".into()))
}

impl Handler<ListTasks> for TaskStore {
    type Result = Result<Value, HubError>;

    fn handle(&mut self, msg: ListTasks, _: &mut Self::Context) -> Self::Result {
        let after = match msg.cursor.as_deref() {
            None => 0,
            Some(c) => c
                .strip_prefix("t-")
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| {
                    HubError::invalid_params("Invalid cursor", "pass back nextCursor unchanged")
                })?,
        };
        let mut mine: Vec<&TaskRecord> = self
            .tasks
            .values()
            .map(|e| &e.record)
            .filter(|r| r.owner == msg.owner && r.seq > after)
            .collect();
        mine.sort_by_key(|r| r.seq);
        let page: Vec<Value> = mine
            .iter()
            .take(self.config.page_size)
            .map(|r| r.to_json())
            .collect();
        let mut out = json!({ "tasks": page });
        if mine.len() > self.config.page_size {
            if let Some(last) = mine.get(self.config.page_size - 1) {
                out["nextCursor"] = Value::String(format!("t-{}", last.seq));
            }
        }
        Ok(out)
    }
}

impl Handler<CancelTask> for TaskStore {
    type Result = Result<Value, HubError>;

    fn handle(&mut self, msg: CancelTask, _: &mut Self::Context) -> Self::Result {
        let e = self.find(&msg.owner, &msg.task_id)?;
        if e.record.status.is_terminal() {
            return Err(HubError::invalid_params(
                format!(
                    "Task {} is already {}",
                    msg.task_id,
                    e.record.status.as_str()
                ),
                "only running tasks (working or input_required) can be cancelled",
            ));
        }
        if let Some((cancel, upstream_id)) = &e.cancel {
            cancel.do_send(Cancel {
                upstream_id: *upstream_id,
                reason: "task cancelled".into(),
            });
        }
        self.finish(
            &msg.task_id,
            TaskStatus::Cancelled,
            None,
            Some("cancelled by the requestor".into()),
        );
        self.find(&msg.owner, &msg.task_id).map(Entry::to_json)
    }
}
