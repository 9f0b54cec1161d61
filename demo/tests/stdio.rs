//! End-to-end tests of the stdio transport against the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::StdioChild;

fn text_of(resp: &Value) -> &str {
    resp["result"]["content"][0]["text"].as_str().unwrap_or("")
}

#[test]
fn initialize_and_list_tools() {
    let mut c = StdioChild::spawn();
    let r = c.initialize("2025-11-25", json!({}));
    let res = &r["result"];
    assert_eq!(res["protocolVersion"], "2025-11-25");
    assert_eq!(res["serverInfo"]["name"], "mcp-hub-demo");
    assert_eq!(res["capabilities"]["tools"]["listChanged"], true);
    assert_eq!(res["capabilities"]["resources"]["subscribe"], true);
    assert!(res["capabilities"]["logging"].is_object());
    assert!(res["capabilities"]["completions"].is_object());
    assert!(res["instructions"].as_str().is_some());

    let r = c.request(json!(2), "tools/list", json!({}));
    let tools = r["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    for want in [
        "echo",
        "add",
        "sleep",
        "fail",
        "cancelled_requests",
        "test_simple_text",
        "test_image_content",
        "test_audio_content",
        "test_embedded_resource",
        "test_multiple_content_types",
        "test_tool_with_logging",
        "test_error_handling",
        "test_tool_with_progress",
        "test_sampling",
        "test_elicitation",
        "test_elicitation_sep1034_defaults",
        "test_elicitation_sep1330_enums",
        "json_schema_2020_12_tool",
        "test_reconnection",
    ] {
        assert!(names.contains(&want), "missing tool {want}");
    }
    for t in tools {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert!(t["description"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let add = tools.iter().find(|t| t["name"] == "add").unwrap();
    assert_eq!(add["outputSchema"]["properties"]["sum"]["type"], "number");
    let js = tools
        .iter()
        .find(|t| t["name"] == "json_schema_2020_12_tool")
        .unwrap();
    assert_eq!(
        js["inputSchema"]["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(js["inputSchema"]["additionalProperties"], false);
    // Deterministic order.
    let again = c.request(json!(3), "tools/list", json!({}));
    assert_eq!(again["result"], r["result"]);
    assert!(c.close().success());
}

#[test]
fn version_negotiation_and_errors() {
    let mut c = StdioChild::spawn();
    let r = c.initialize("2024-11-05", json!({}));
    assert_eq!(r["result"]["protocolVersion"], "2024-11-05");
    // Older revision: no outputSchema / structuredContent.
    let r = c.request(json!(1), "tools/list", json!({}));
    assert!(r["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t.get("outputSchema").is_none()));
    let r = c.request(
        json!(2),
        "tools/call",
        json!({"name": "add", "arguments": {"a": 1, "b": 2}}),
    );
    assert!(r["result"].get("structuredContent").is_none());
    let r = c.request(
        json!(3),
        "initialize",
        json!({"protocolVersion": "1999-01-01", "capabilities": {}}),
    );
    assert_eq!(r["result"]["protocolVersion"], "2025-11-25");
    let r = c.request(json!(4), "no/such/method", json!({}));
    assert_eq!(r["error"]["code"], -32601);
    let r = c.request(json!(5), "tools/call", json!({"name": "no_such_tool"}));
    assert_eq!(r["error"]["code"], -32602);
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no_such_tool"));
    let r = c.request(json!(6), "tools/call", json!({"arguments": {}}));
    assert_eq!(r["error"]["code"], -32602);
    let r = c.request(
        json!(7),
        "prompts/get",
        json!({"name": "test_prompt_with_arguments"}),
    );
    assert_eq!(r["error"]["code"], -32602);
    let r = c.request(json!(8), "resources/read", json!({"uri": "test://missing"}));
    assert_eq!(r["error"]["code"], -32002);
    let r = c.request(json!(9), "ping", json!({}));
    assert_eq!(r["result"], json!({}));
    // String ids keep their type.
    let r = c.request(json!("10"), "ping", json!({}));
    assert_eq!(r["id"], json!("10"));
}

#[test]
fn hub_tools() {
    let mut c = StdioChild::spawn();
    c.initialize("2025-11-25", json!({}));
    let r = c.request(
        json!(1),
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hello\nworld"}}),
    );
    assert_eq!(text_of(&r), "hello\nworld");
    assert!(r["result"].get("isError").is_none());

    let r = c.request(
        json!(2),
        "tools/call",
        json!({"name": "add", "arguments": {"a": 2, "b": 40}}),
    );
    assert_eq!(text_of(&r), "42");
    assert_eq!(r["result"]["structuredContent"], json!({"sum": 42}));

    let r = c.request(
        json!(3),
        "tools/call",
        json!({"name": "fail", "arguments": {"message": "boom"}}),
    );
    assert_eq!(r["result"]["isError"], true);
    assert_eq!(text_of(&r), "boom");

    // 2025-11-25: bad tool arguments are a tool error, not a protocol error.
    let r = c.request(
        json!(4),
        "tools/call",
        json!({"name": "echo", "arguments": {}}),
    );
    assert_eq!(r["result"]["isError"], true);

    let r = c.request(
        json!(5),
        "tools/call",
        json!({"name": "cancelled_requests", "arguments": {}}),
    );
    assert_eq!(text_of(&r), "[]");
}

#[test]
fn sleep_progress_keeps_token_type() {
    let mut c = StdioChild::spawn();
    c.initialize("2025-11-25", json!({}));
    for (id, token) in [(json!(1), json!("tok-1")), (json!(2), json!(77))] {
        c.send(
            &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "sleep", "arguments": {"ms": 350}, "_meta": {"progressToken": token}}}),
        );
        let (resp, before) = c.until_response(&id);
        assert_eq!(text_of(&resp), "slept 350 ms");
        let progress: Vec<&Value> = before
            .iter()
            .filter(|m| {
                m["method"] == "notifications/progress" && m["params"]["progressToken"] == token
            })
            .collect();
        assert!(
            progress.len() >= 3,
            "expected ≥3 progress notifications, got {progress:?}"
        );
        let values: Vec<f64> = progress
            .iter()
            .map(|m| m["params"]["progress"].as_f64().unwrap())
            .collect();
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "not strictly increasing: {values:?}"
        );
        assert!(progress.iter().all(|m| m["params"]["total"] == 350));
        assert_eq!(*values.last().unwrap(), 350.0);
    }
    // progress: false suppresses notifications.
    c.send(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "sleep", "arguments": {"ms": 250, "progress": false}, "_meta": {"progressToken": "x"}}}));
    let (_, before) = c.until_response(&json!(3));
    assert!(before.is_empty());
}

#[test]
fn requests_run_concurrently() {
    let mut c = StdioChild::spawn();
    c.initialize("2025-11-25", json!({}));
    c.send(
        &json!({"jsonrpc": "2.0", "id": "slow", "method": "tools/call",
                   "params": {"name": "sleep", "arguments": {"ms": 1500}}}),
    );
    c.send(
        &json!({"jsonrpc": "2.0", "id": "fast", "method": "tools/call",
                   "params": {"name": "echo", "arguments": {"text": "hi"}}}),
    );
    let first = c.recv();
    assert_eq!(first["id"], "fast");
    let second = c.recv();
    assert_eq!(second["id"], "slow");
}

#[test]
fn sampling_round_trip() {
    let mut c = StdioChild::spawn();
    c.initialize("2025-11-25", json!({"sampling": {}, "elicitation": {}}));
    c.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": "test_sampling", "arguments": {"prompt": "Say hi"}}}));
    let req = c.recv();
    assert_eq!(req["method"], "sampling/createMessage");
    assert_eq!(req["params"]["messages"][0]["content"]["text"], "Say hi");
    assert_eq!(req["params"]["maxTokens"], 100);
    let sid = req["id"].clone();
    assert!(sid.as_str().unwrap().starts_with("demo-"));
    c.send(&json!({"jsonrpc": "2.0", "id": sid, "result": {
        "role": "assistant", "content": {"type": "text", "text": "hi there"},
        "model": "test-model", "stopReason": "endTurn"}}));
    let (resp, _) = c.until_response(&json!(1));
    assert_eq!(text_of(&resp), "LLM response: hi there");

    // Elicitation, answered with decline.
    c.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                   "params": {"name": "test_elicitation", "arguments": {"message": "who?"}}}));
    let req = c.recv();
    assert_eq!(req["method"], "elicitation/create");
    assert_eq!(req["params"]["message"], "who?");
    assert_eq!(
        req["params"]["requestedSchema"]["required"],
        json!(["username", "email"])
    );
    c.send(&json!({"jsonrpc": "2.0", "id": req["id"], "result": {"action": "decline"}}));
    let (resp, _) = c.until_response(&json!(2));
    assert!(text_of(&resp).contains("action=decline"));
}

#[test]
fn sampling_without_capability_is_tool_error() {
    let mut c = StdioChild::spawn();
    c.initialize("2025-11-25", json!({}));
    let r = c.request(
        json!(1),
        "tools/call",
        json!({"name": "test_sampling", "arguments": {"prompt": "x"}}),
    );
    assert_eq!(r["result"]["isError"], true);
}

#[test]
fn cancel_aborts_and_is_recorded() {
    let mut c = StdioChild::spawn();
    c.initialize("2025-11-25", json!({}));
    c.send(&json!({"jsonrpc": "2.0", "id": 42, "method": "tools/call",
                   "params": {"name": "sleep", "arguments": {"ms": 3000}}}));
    c.send(&json!({"jsonrpc": "2.0", "id": "k", "method": "tools/call",
                   "params": {"name": "sleep", "arguments": {"ms": 3000}}}));
    std::thread::sleep(Duration::from_millis(100));
    c.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                   "params": {"requestId": 42, "reason": "test"}}),
    );
    c.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                   "params": {"requestId": "k"}}),
    );
    let r = c.request(
        json!(7),
        "tools/call",
        json!({"name": "cancelled_requests", "arguments": {}}),
    );
    let ids: Value = serde_json::from_str(text_of(&r)).unwrap();
    assert_eq!(ids, json!([42, "k"]));
    // No response for the cancelled requests.
    while let Some(m) = c.recv_timeout(Duration::from_millis(500)) {
        assert!(
            m["id"] != 42 && m["id"] != "k",
            "cancelled request answered: {m}"
        );
    }
    assert!(c.close().success());
}

#[test]
fn malformed_line_gets_parse_error() {
    let mut c = StdioChild::spawn();
    c.send_raw("{not json");
    let m = c.recv();
    assert_eq!(m["error"]["code"], -32700);
    assert_eq!(m["id"], Value::Null);
    c.send_raw(r#"{"jsonrpc":"2.0","id":1}"#);
    let m = c.recv();
    assert_eq!(m["error"]["code"], -32600);
    // Still alive.
    c.initialize("2025-11-25", json!({}));
    let r = c.request(json!(2), "ping", json!({}));
    assert_eq!(r["result"], json!({}));
    assert!(c.close().success());
}

#[test]
fn exits_zero_when_stdin_closes() {
    let c = StdioChild::spawn();
    assert!(c.close().success());
}

#[test]
fn log_level_filters_messages() {
    let mut c = StdioChild::spawn();
    c.initialize("2025-11-25", json!({}));
    let r = c.request(json!(1), "logging/setLevel", json!({"level": "error"}));
    assert_eq!(r["result"], json!({}));
    let r = c.request(json!(2), "logging/setLevel", json!({"level": "loud"}));
    assert_eq!(r["error"]["code"], -32602);
    c.send(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                   "params": {"name": "test_tool_with_logging", "arguments": {}}}));
    let (_, before) = c.until_response(&json!(3));
    assert!(
        before.is_empty(),
        "info logs sent at level error: {before:?}"
    );
    c.request(json!(4), "logging/setLevel", json!({"level": "debug"}));
    c.send(&json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                   "params": {"name": "test_tool_with_logging", "arguments": {}}}));
    let (_, before) = c.until_response(&json!(5));
    let logs: Vec<&Value> = before
        .iter()
        .filter(|m| m["method"] == "notifications/message")
        .collect();
    assert_eq!(logs.len(), 3);
    assert_eq!(logs[0]["params"]["level"], "info");
    assert_eq!(logs[0]["params"]["data"], "Tool execution started");
}

#[test]
fn batches_only_on_2025_03_26() {
    let mut c = StdioChild::spawn();
    c.initialize("2025-03-26", json!({}));
    c.send(&json!([
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "b"}}}
    ]));
    let m = c.recv();
    let arr = m.as_array().expect("batch answer is an array");
    assert_eq!(arr.len(), 2);
    assert!(arr.iter().any(|r| r["id"] == 1));
    assert!(arr
        .iter()
        .any(|r| r["id"] == 2 && r["result"]["content"][0]["text"] == "b"));

    let mut c = StdioChild::spawn();
    c.initialize("2025-11-25", json!({}));
    c.send(&json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]));
    let m = c.recv();
    assert_eq!(m["error"]["code"], -32600);
}

#[test]
fn resources_prompts_completion() {
    let mut c = StdioChild::spawn();
    c.initialize("2025-11-25", json!({}));
    let r = c.request(json!(1), "resources/list", json!({}));
    let uris: Vec<&str> = r["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert!(uris.contains(&"test://static-text") && uris.contains(&"test://static-binary"));
    let r = c.request(json!(2), "resources/templates/list", json!({}));
    assert_eq!(
        r["result"]["resourceTemplates"][0]["uriTemplate"],
        "test://template/{id}/data"
    );
    let r = c.request(
        json!(3),
        "resources/read",
        json!({"uri": "test://static-text"}),
    );
    assert_eq!(
        r["result"]["contents"][0]["text"],
        "This is the content of the static text resource."
    );
    let r = c.request(
        json!(4),
        "resources/read",
        json!({"uri": "test://static-binary"}),
    );
    assert_eq!(r["result"]["contents"][0]["mimeType"], "image/png");
    assert!(r["result"]["contents"][0]["blob"].as_str().is_some());
    let r = c.request(
        json!(5),
        "resources/read",
        json!({"uri": "test://template/42/data"}),
    );
    assert!(r["result"]["contents"][0]["text"]
        .as_str()
        .unwrap()
        .contains("Data for ID: 42"));
    let r = c.request(
        json!(6),
        "resources/subscribe",
        json!({"uri": "test://watched-resource"}),
    );
    assert_eq!(r["result"], json!({}));
    // touch_resource announces the update on the unsolicited channel (stdout).
    c.send(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                   "params": {"name": "touch_resource", "arguments": {"uri": "test://watched-resource"}}}));
    let (_, before) = c.until_response(&json!(7));
    assert!(before
        .iter()
        .any(|m| m["method"] == "notifications/resources/updated"
            && m["params"]["uri"] == "test://watched-resource"));
    let r = c.request(
        json!(8),
        "resources/unsubscribe",
        json!({"uri": "test://watched-resource"}),
    );
    assert_eq!(r["result"], json!({}));

    let r = c.request(json!(9), "prompts/list", json!({}));
    assert_eq!(r["result"]["prompts"].as_array().unwrap().len(), 5);
    let r = c.request(
        json!(10),
        "prompts/get",
        json!({"name": "test_prompt_with_arguments",
        "arguments": {"arg1": "hello", "arg2": "world"}}),
    );
    assert_eq!(
        r["result"]["messages"][0]["content"]["text"],
        "Prompt with arguments: arg1='hello', arg2='world'"
    );
    let r = c.request(
        json!(11),
        "prompts/get",
        json!({"name": "test_prompt_with_image"}),
    );
    assert_eq!(r["result"]["messages"][0]["content"]["type"], "image");
    let r = c.request(
        json!(12),
        "completion/complete",
        json!({
        "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
        "argument": {"name": "arg1", "value": "par"}}),
    );
    assert_eq!(
        r["result"]["completion"]["values"],
        json!(["paris", "park", "party"])
    );
    c.send(&json!({"jsonrpc": "2.0", "id": 13, "method": "tools/call",
                   "params": {"name": "emit_list_changed", "arguments": {"kind": "prompts"}}}));
    let (_, before) = c.until_response(&json!(13));
    assert!(before
        .iter()
        .any(|m| m["method"] == "notifications/prompts/list_changed"));
}

#[test]
fn pagination_with_page_size() {
    let mut c = StdioChild::spawn_with_env(&[("MCP_DEMO_PAGE_SIZE", "5")]);
    c.initialize("2025-11-25", json!({}));
    let all = c.request(json!(1), "tools/list", json!({"cursor": null}));
    assert!(all["result"]["nextCursor"].is_string());
    let mut names = Vec::new();
    let mut cursor = Value::Null;
    for i in 0..20 {
        let params = if cursor.is_null() {
            json!({})
        } else {
            json!({"cursor": cursor})
        };
        let r = c.request(json!(100 + i), "tools/list", params);
        let page = r["result"]["tools"].as_array().unwrap();
        assert!(page.len() <= 5);
        names.extend(page.iter().map(|t| t["name"].as_str().unwrap().to_string()));
        cursor = r["result"]["nextCursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert!(cursor.is_null());
    assert!(names.len() > 10);
    assert!(
        names.contains(&"echo".to_string()) && names.contains(&"test_reconnection".to_string())
    );
    let r = c.request(json!(2), "tools/list", json!({"cursor": "bogus"}));
    assert_eq!(r["error"]["code"], -32602);
}

fn modern_meta(caps: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": caps,
    })
}

#[test]
fn modern_era_discovers_answers_statelessly_and_runs_mrtr() {
    let mut c = StdioChild::spawn_with(&["--era", "modern"], &[]);
    let r = c.request(
        json!(1),
        "server/discover",
        json!({ "_meta": modern_meta(json!({})) }),
    );
    assert_eq!(
        r["result"]["supportedVersions"],
        json!(["2026-07-28"]),
        "{r}"
    );
    assert_eq!(
        r["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "mcp-hub-demo"
    );
    // Legacy clients are told which versions exist.
    let r = c.initialize("2025-11-25", json!({}));
    assert_eq!(r["error"]["code"], -32022, "{r}");
    assert_eq!(r["error"]["data"]["supported"], json!(["2026-07-28"]));
    // No _meta: refused.
    let r = c.request(json!(2), "tools/list", json!({}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = c.request(
        json!(3),
        "tools/list",
        json!({ "_meta": modern_meta(json!({})) }),
    );
    assert_eq!(r["result"]["resultType"], "complete");
    assert!(r["result"]["ttlMs"].is_number(), "{r}");
    // Elicitation: input_required, then the retry with the answer completes.
    let call = json!({ "name": "test_elicitation", "arguments": { "message": "Who?" },
        "_meta": modern_meta(json!({ "elicitation": {} })) });
    let r = c.request(json!(4), "tools/call", call.clone());
    assert_eq!(r["result"]["resultType"], "input_required", "{r}");
    let state = r["result"]["requestState"].clone();
    let mut retry = call.clone();
    retry["requestState"] = state;
    retry["inputResponses"] =
        json!({ "r0": { "action": "accept", "content": { "username": "u", "email": "e@x" } } });
    let r = c.request(json!(5), "tools/call", retry.clone());
    assert!(text_of(&r).contains("e@x"), "{r}");
    // The state was used once.
    let r = c.request(json!(6), "tools/call", retry);
    assert_eq!(r["error"]["code"], -32602, "{r}");
}

#[test]
fn dual_era_serves_both_and_legacy_is_unchanged() {
    let mut c = StdioChild::spawn_with(&["--era", "dual"], &[]);
    let r = c.request(
        json!(1),
        "server/discover",
        json!({ "_meta": modern_meta(json!({})) }),
    );
    let versions = r["result"]["supportedVersions"].as_array().unwrap();
    assert!(versions.contains(&json!("2026-07-28")) && versions.contains(&json!("2025-11-25")));
    let r = c.initialize("2025-11-25", json!({}));
    assert_eq!(r["result"]["protocolVersion"], "2025-11-25");
    let r = c.request(
        json!(2),
        "tools/call",
        json!({ "name": "echo", "arguments": { "text": "x" } }),
    );
    assert_eq!(
        r["result"],
        json!({ "content": [{ "type": "text", "text": "x" }] }),
        "{r}"
    );
    // The default era does not know server/discover.
    let mut l = StdioChild::spawn();
    let r = l.request(
        json!(1),
        "server/discover",
        json!({ "_meta": modern_meta(json!({})) }),
    );
    assert_eq!(r["error"]["code"], -32601, "{r}");
}
