//! Async execution: a task-augmented tools/call returns a task at once; the hub runs the
//! call for any upstream and serves tasks/get, tasks/result, tasks/list and tasks/cancel.

use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::helpers::*;

async fn task_call(c: &mut McpClient, args: Value) -> Value {
    let started = Instant::now();
    let r = c
        .request(
            "tools/call",
            json!({ "name": "demo__sleep", "arguments": args, "task": { "ttl": 60000 } }),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "a task returns at once"
    );
    let task = r.response["result"]["task"].clone();
    assert_eq!(task["status"], "working", "{r:?}");
    task
}

#[actix_web::test]
async fn a_long_call_runs_as_a_task() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let caps = c.request("initialize", json!({})).await; // a second initialize is refused
    assert_eq!(caps.response["error"]["code"], -32602);
    let tools = c.request("tools/list", json!({})).await;
    assert!(tools.response["result"]["tools"].is_array(), "{tools:?}");
    let sleep = tools.response["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "demo__sleep")
        .unwrap()
        .clone();
    assert_eq!(sleep["execution"]["taskSupport"], "optional");

    let task = task_call(&mut c, json!({ "ms": 3000 })).await;
    let id = task["taskId"].as_str().unwrap().to_string();
    assert!(id.len() >= 32, "task ids carry at least 128 bits");
    let got = c.request("tasks/get", json!({ "taskId": id })).await;
    assert_eq!(got.response["result"]["status"], "working");
    let listed = c.request("tasks/list", json!({})).await;
    assert!(listed.response["result"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["taskId"] == id.as_str()));

    let result = c.request("tasks/result", json!({ "taskId": id })).await;
    assert_eq!(
        text_of(&result.response["result"]),
        "slept 3000 ms",
        "{result:?}"
    );
    assert_eq!(
        result.response["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        id.as_str()
    );
    let got = c.request("tasks/get", json!({ "taskId": id })).await;
    assert_eq!(got.response["result"]["status"], "completed");

    let cancel_done = c.request("tasks/cancel", json!({ "taskId": id })).await;
    assert_eq!(
        cancel_done.response["error"]["code"], -32602,
        "a finished task cannot be cancelled"
    );
    let unknown = c.request("tasks/get", json!({ "taskId": "nope" })).await;
    assert_eq!(unknown.response["error"]["code"], -32602);
}

#[actix_web::test]
async fn cancelling_a_running_task_cancels_it_upstream() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let task = task_call(&mut c, json!({ "ms": 10000 })).await;
    let id = task["taskId"].as_str().unwrap().to_string();
    actix_rt::time::sleep(Duration::from_millis(200)).await;
    let cancelled = c.request("tasks/cancel", json!({ "taskId": id })).await;
    assert_eq!(
        cancelled.response["result"]["status"], "cancelled",
        "{cancelled:?}"
    );
    let mut seen: Vec<Value> = Vec::new();
    for _ in 0..50 {
        let r = c.call_tool("demo__cancelled_requests", json!({})).await;
        seen = serde_json::from_str(&text_of(&r)).unwrap();
        if !seen.is_empty() {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        seen.len(),
        1,
        "the upstream received notifications/cancelled: {seen:?}"
    );
    let got = c.request("tasks/get", json!({ "taskId": id })).await;
    assert_eq!(got.response["result"]["status"], "cancelled");

    // Another user's session cannot see the task.
    let mut other = McpClient::connect(app.url("/mcp")).await;
    let r = other.request("tasks/get", json!({ "taskId": id })).await;
    assert!(
        r.response["result"].is_object(),
        "same (anonymous) user may: identity comes with API keys"
    );
}

#[actix_web::test]
async fn a_failing_tool_makes_a_failed_task() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let r = c
        .request(
            "tools/call",
            json!({ "name": "demo__fail", "arguments": { "message": "nope" }, "task": {} }),
        )
        .await;
    let id = r.response["result"]["task"]["taskId"]
        .as_str()
        .unwrap()
        .to_string();
    let result = c.request("tasks/result", json!({ "taskId": id })).await;
    assert_eq!(result.response["result"]["isError"], true);
    let got = c.request("tasks/get", json!({ "taskId": id })).await;
    assert_eq!(
        got.response["result"]["status"], "failed",
        "isError results fail the task (2025-11-25)"
    );
}
