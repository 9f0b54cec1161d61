//! Async execution (MCP tasks, 2025-11-25): a `tools/call` with `params.task` returns at once
//! with a task; the hub runs the call and keeps its outcome for the task's TTL. Works for
//! every upstream, task-aware or not, because the hub itself is the task receiver.
//!
//! - [`TaskStore`]: the actor owning every task record (one per hub process).
//! - [`record`]: the pure status machine and its JSON rendering.

mod messages;
pub mod record;
mod store;

pub use messages::{
    AttachInput, AttachUpstream, AwaitResult, CancelTask, CompleteTask, CreateTask, GetTask,
    ListTasks, SetTaskInput, TaskAnswers, TaskStatusChanged, UpdateTask,
};
pub use store::{with_related_task, TaskConfig, TaskStore};
