//! The modern bridge's input rounds, against the real stdio demo: the server-to-client
//! requests a legacy upstream sends together reach the client in one `input_required`
//! result, named by the upstream's input-key hint (`_meta["dev.mcp-hub/inputKey"]`) or
//! `{capability}-{n}` without one; answers go back by key (partial answers re-ask the
//! rest); a first call's own `inputResponses` answer hinted requests, and malformed
//! answers are asked for again.

use serde_json::{json, Map, Value};
use std::time::Duration;

use crate::helpers::*;
use crate::modern::{meta, post};

fn all_caps() -> Value {
    json!({ "elicitation": {}, "sampling": {}, "roots": {} })
}

fn call(tool: &str, extra: Value) -> Value {
    let mut p = json!({ "name": tool, "arguments": {}, "_meta": meta(all_caps()) });
    if let (Some(p), Value::Object(extra)) = (p.as_object_mut(), extra) {
        p.extend(extra);
    }
    p
}

fn input_requests(result: &Value) -> &Map<String, Value> {
    result["inputRequests"]
        .as_object()
        .unwrap_or_else(|| panic!("no inputRequests: {result}"))
}

fn sorted_keys(m: &Map<String, Value>) -> Vec<&str> {
    let mut k: Vec<&str> = m.keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[actix_web::test]
async fn concurrent_input_requests_arrive_in_one_input_required_under_the_upstreams_keys() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let url = app.url("/mcp/demo");
    // A call parked on a question nobody answers must not draw the next call's questions.
    let parked = post(
        &url,
        "tools/call",
        call("test_input_required_result_elicitation", json!({})),
        &[],
    )
    .await;
    assert_eq!(parked.body["result"]["resultType"], "input_required");

    let tool = "test_input_required_result_multiple_inputs";
    let first = post(&url, "tools/call", call(tool, json!({})), &[]).await;
    let r = &first.body["result"];
    assert_eq!(r["resultType"], "input_required", "{:?}", first.body);
    let reqs = input_requests(r);
    assert_eq!(
        sorted_keys(reqs),
        ["client_roots", "greeting", "user_name"],
        "{r}"
    );
    assert_eq!(reqs["user_name"]["method"], "elicitation/create");
    assert_eq!(reqs["greeting"]["method"], "sampling/createMessage");
    assert_eq!(reqs["client_roots"]["method"], "roots/list");
    assert!(
        !r.to_string().contains("dev.mcp-hub/inputKey"),
        "the hint is the hub's, not the client's: {r}"
    );
    let state = r["requestState"].as_str().unwrap().to_string();

    // Part of the answers: they go upstream, and only the rest is asked again.
    let partial = json!({ "user_name": { "action": "accept", "content": { "name": "Alice" } } });
    let again = post(
        &url,
        "tools/call",
        call(
            tool,
            json!({ "inputResponses": partial, "requestState": state }),
        ),
        &[],
    )
    .await;
    let r = &again.body["result"];
    assert_eq!(r["resultType"], "input_required", "{:?}", again.body);
    assert_eq!(sorted_keys(input_requests(r)), ["client_roots", "greeting"]);
    assert_eq!(r["requestState"], state.as_str());

    let rest = json!({
        "greeting": { "role": "assistant", "content": { "type": "text", "text": "Hello there!" }, "model": "m", "stopReason": "endTurn" },
        "client_roots": { "roots": [{ "uri": "file:///test/root", "name": "Test Root" }] },
    });
    let done = post(
        &url,
        "tools/call",
        call(
            tool,
            json!({ "inputResponses": rest, "requestState": state }),
        ),
        &[],
    )
    .await;
    assert_eq!(
        done.body["result"]["resultType"], "complete",
        "{:?}",
        done.body
    );
    assert_eq!(
        text_of(&done.body["result"]),
        "name=Alice, greeting=Hello there!, roots=file:///test/root"
    );
}

#[actix_web::test]
async fn unhinted_requests_get_generated_keys_and_answers_up_front_are_used() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let url = app.url("/mcp/demo");

    // test_elicitation sends no hint: the bridge names it.
    let a = post(
        &url,
        "tools/call",
        call(
            "test_elicitation",
            json!({ "arguments": { "message": "Who?" } }),
        ),
        &[],
    )
    .await;
    assert_eq!(
        sorted_keys(input_requests(&a.body["result"])),
        ["elicitation-1"],
        "{:?}",
        a.body
    );

    // A first call that already carries the hinted answer completes without asking;
    // keys nobody asked for are ignored.
    let tool = "test_input_required_result_elicitation";
    let up_front = json!({
        "user_name": { "action": "accept", "content": { "name": "Alice" } },
        "unknown_extra_key": { "action": "accept", "content": { "foo": "bar" } },
    });
    let a = post(
        &url,
        "tools/call",
        call(tool, json!({ "inputResponses": up_front })),
        &[],
    )
    .await;
    assert_eq!(a.body["result"]["resultType"], "complete", "{:?}", a.body);
    assert_eq!(text_of(&a.body["result"]), "Hello, Alice!");

    // A malformed answer is not delivered: the question is asked.
    let a = post(
        &url,
        "tools/call",
        call(tool, json!({ "inputResponses": { "user_name": 12345 } })),
        &[],
    )
    .await;
    let r = &a.body["result"];
    assert_eq!(r["resultType"], "input_required", "{:?}", a.body);
    assert_eq!(sorted_keys(input_requests(r)), ["user_name"]);
}
