//! One task: its status machine (`working` ⇄ `input_required` → `completed` | `failed` |
//! `cancelled`; terminal states never change) and its wire form.

use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::protocol::RpcError;

/// Task status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Running.
    Working,
    /// Running, and waiting on the requestor's answers to the upstream's requests
    /// (2026-07-28 tasks: `inputRequests` on `tasks/get`, answers by `tasks/update`).
    InputRequired,
    /// Finished with a result (not an error result).
    Completed,
    /// Finished with a JSON-RPC error or a tool result with `isError: true`.
    Failed,
    /// Cancelled by the requestor.
    Cancelled,
}

impl TaskStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Working => "working",
            TaskStatus::InputRequired => "input_required",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the status can no longer change.
    pub fn is_terminal(self) -> bool {
        !matches!(self, TaskStatus::Working | TaskStatus::InputRequired)
    }
}

/// How a task's call ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The raw result of the call.
    Result(Box<RawValue>),
    /// The JSON-RPC error of the call.
    Error(RpcError),
}

/// One task record.
#[derive(Debug)]
pub struct TaskRecord {
    /// Task id (128 random bits, hex).
    pub id: String,
    /// Who may see it.
    pub owner: Arc<str>,
    /// Status.
    pub status: TaskStatus,
    /// Human-readable status detail.
    pub status_message: Option<String>,
    /// Creation time.
    pub created_at: SystemTime,
    /// Last status change.
    pub updated_at: SystemTime,
    /// How long the outcome is kept after the task ends.
    pub ttl: Duration,
    /// Suggested polling interval.
    pub poll_interval_ms: u64,
    /// The outcome, once terminal (none when cancelled).
    pub outcome: Option<Outcome>,
    /// When the record may be deleted.
    pub expires_at: Option<Instant>,
    /// Creation order, for listing.
    pub seq: u64,
}

impl TaskRecord {
    /// A new working task.
    pub fn new(owner: Arc<str>, ttl: Duration, poll_interval_ms: u64, seq: u64) -> Self {
        let now = SystemTime::now();
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            owner,
            status: TaskStatus::Working,
            status_message: None,
            created_at: now,
            updated_at: now,
            ttl,
            poll_interval_ms,
            outcome: None,
            expires_at: None,
            seq,
        }
    }

    /// Moves between `working` and `input_required` (no-op when terminal). Returns whether
    /// it changed.
    pub fn set_running(&mut self, status: TaskStatus) -> bool {
        if self.status.is_terminal() || status.is_terminal() || self.status == status {
            return false;
        }
        self.status = status;
        self.updated_at = SystemTime::now();
        true
    }

    /// Moves to a terminal state (no-op when already terminal). Returns whether it changed.
    pub fn finish(
        &mut self,
        status: TaskStatus,
        outcome: Option<Outcome>,
        message: Option<String>,
    ) -> bool {
        if self.status.is_terminal() || !status.is_terminal() {
            return false;
        }
        self.status = status;
        self.outcome = outcome;
        self.status_message = message;
        self.updated_at = SystemTime::now();
        self.expires_at = Some(Instant::now() + self.ttl);
        true
    }

    /// The `Task` object of the 2025-11-25 schema.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "taskId": self.id,
            "status": self.status.as_str(),
            "createdAt": humantime::format_rfc3339_millis(self.created_at).to_string(),
            "lastUpdatedAt": humantime::format_rfc3339_millis(self.updated_at).to_string(),
            "ttl": self.ttl.as_millis() as u64,
            "pollInterval": self.poll_interval_ms,
        });
        if let Some(m) = &self.status_message {
            v["statusMessage"] = Value::String(m.clone());
        }
        v
    }
}

/// Whether a tool result reports a tool error (`isError: true`).
pub fn is_error_result(result: &RawValue) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "isError", default)]
        is_error: bool,
    }
    serde_json::from_str::<Probe>(result.get()).is_ok_and(|p| p.is_error)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn terminal_states_never_change() {
        let mut t = TaskRecord::new(Arc::from("u"), Duration::from_secs(60), 500, 1);
        assert_eq!(t.to_json()["status"], "working");
        assert!(t.finish(TaskStatus::Cancelled, None, Some("by client".into())));
        assert!(!t.finish(TaskStatus::Completed, None, None));
        assert_eq!(t.to_json()["status"], "cancelled");
        assert_eq!(t.to_json()["statusMessage"], "by client");
        assert_eq!(t.id.len(), 32);
    }

    #[test]
    fn error_results_are_detected() {
        let yes = RawValue::from_string(r#"{"content":[],"isError":true}"#.into()).unwrap();
        let no = RawValue::from_string(r#"{"content":[]}"#.into()).unwrap();
        assert!(is_error_result(&yes) && !is_error_result(&no));
    }
}
