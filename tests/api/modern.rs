//! MCP 2026-07-28 ("modern", stateless) clients on the same endpoints as session clients,
//! spoken in raw HTTP: per-request `_meta`, the required headers and their error codes,
//! `server/discover`, cache hints, `input_required` bridging of a legacy upstream's
//! elicitation (with a signed, single-use, expiring `requestState`), `subscriptions/listen`,
//! the tasks extension, and cancellation by closing the response stream.

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::helpers::*;

const V: &str = "2026-07-28";

pub(crate) fn meta(caps: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": caps,
        "io.modelcontextprotocol/clientInfo": { "name": "modern-test", "version": "1" },
    })
}

/// The header Mcp-Name needs for a body, per the spec.
fn name_header(method: &str, params: &Value) -> Option<String> {
    let key = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        "tasks/get" | "tasks/update" | "tasks/cancel" => "taskId",
        _ => return None,
    };
    params[key].as_str().map(str::to_string)
}

pub(crate) struct Answer {
    status: u16,
    headers: awc::http::header::HeaderMap,
    pub(crate) body: Value,
    /// Notifications seen before the answer on an SSE response.
    before: Vec<Value>,
}

/// POSTs one modern request. `headers` override or add to the correct ones; a value of
/// "" removes that header.
pub(crate) async fn post(
    url: &str,
    method: &str,
    params: Value,
    headers: &[(&str, &str)],
) -> Answer {
    let mut all: Vec<(String, String)> = vec![
        ("MCP-Protocol-Version".into(), V.into()),
        ("Mcp-Method".into(), method.into()),
    ];
    if let Some(n) = name_header(method, &params) {
        all.push(("Mcp-Name".into(), n));
    }
    for (k, v) in headers {
        all.retain(|(h, _)| !h.eq_ignore_ascii_case(k));
        if !v.is_empty() {
            all.push((k.to_string(), v.to_string()));
        }
    }
    let mut req = http_client()
        .post(url)
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("Accept", "application/json, text/event-stream"));
    for (k, v) in &all {
        req = req.insert_header((k.as_str(), v.as_str()));
    }
    let body = json!({ "jsonrpc": "2.0", "id": 7, "method": method, "params": params });
    let mut resp = req.send_json(&body).await.expect("POST failed");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let sse = headers
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"));
    if !sse {
        let bytes = resp.body().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        return Answer {
            status,
            headers,
            body,
            before: vec![],
        };
    }
    let mut events = resp.eventsource();
    let mut before = vec![];
    while let Some(ev) = events.next().await {
        let ev = ev.unwrap();
        if ev.data.is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&ev.data).unwrap();
        if v.get("method").is_some() {
            before.push(v);
        } else {
            return Answer {
                status,
                headers,
                body: v,
                before,
            };
        }
    }
    Answer {
        status,
        headers,
        body: Value::Null,
        before,
    }
}

#[actix_web::test]
async fn discover_names_versions_capabilities_and_cache_hints() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    for path in ["/mcp", "/mcp/demo"] {
        let a = post(
            &app.url(path),
            "server/discover",
            json!({ "_meta": meta(json!({})) }),
            &[],
        )
        .await;
        assert_eq!(a.status, 200, "{path}: {:?}", a.body);
        let r = &a.body["result"];
        assert_eq!(r["supportedVersions"], json!([V]), "{r}");
        assert!(r["capabilities"]["tools"].is_object(), "{r}");
        assert!(r["capabilities"]["extensions"]["io.modelcontextprotocol/tasks"].is_object());
        assert_eq!(r["resultType"], "complete");
        assert_eq!(
            r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
            "mcp-hub"
        );
        assert!(r["ttlMs"].is_u64() && r["cacheScope"] == "public", "{r}");
        assert!(
            a.headers.get("mcp-session-id").is_none(),
            "modern answers carry no session"
        );
    }
}

#[actix_web::test]
async fn header_and_meta_errors_carry_their_codes_and_statuses() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let url = app.url("/mcp/demo");
    let call = json!({ "name": "echo", "arguments": { "text": "hi" }, "_meta": meta(json!({})) });

    // Missing _meta: -32602, 400, id echoed.
    let a = post(&url, "server/discover", json!({}), &[]).await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_i64()),
        (400, Some(-32602)),
        "{:?}",
        a.body
    );
    assert_eq!(a.body["id"], 7);
    // _meta without clientCapabilities: -32602, 400.
    let a = post(
        &url,
        "server/discover",
        json!({ "_meta": { "io.modelcontextprotocol/protocolVersion": V } }),
        &[],
    )
    .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_i64()),
        (400, Some(-32602))
    );
    // Version header differs from _meta: -32020, 400.
    let a = post(
        &url,
        "tools/list",
        json!({ "_meta": meta(json!({})) }),
        &[("MCP-Protocol-Version", "2025-11-25")],
    )
    .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_i64()),
        (400, Some(-32020)),
        "{:?}",
        a.body
    );
    // Missing version header: -32020.
    let a = post(
        &url,
        "tools/list",
        json!({ "_meta": meta(json!({})) }),
        &[("MCP-Protocol-Version", "")],
    )
    .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_i64()),
        (400, Some(-32020))
    );
    // Unsupported version in both: -32022 with supported and requested.
    let mut m = meta(json!({}));
    m["io.modelcontextprotocol/protocolVersion"] = json!("v999");
    let a = post(
        &url,
        "server/discover",
        json!({ "_meta": m }),
        &[("MCP-Protocol-Version", "v999")],
    )
    .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_i64()),
        (400, Some(-32022)),
        "{:?}",
        a.body
    );
    assert_eq!(a.body["error"]["data"]["supported"], json!([V]));
    assert_eq!(a.body["error"]["data"]["requested"], "v999");
    // Mcp-Method missing or different: -32020.
    let a = post(
        &url,
        "tools/list",
        json!({ "_meta": meta(json!({})) }),
        &[("Mcp-Method", "")],
    )
    .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_i64()),
        (400, Some(-32020))
    );
    let a = post(
        &url,
        "tools/list",
        json!({ "_meta": meta(json!({})) }),
        &[("Mcp-Method", "prompts/list")],
    )
    .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_i64()),
        (400, Some(-32020))
    );
    // Mcp-Name missing, different, or with a control character: -32020.
    for bad in ["", "other"] {
        let a = post(&url, "tools/call", call.clone(), &[("Mcp-Name", bad)]).await;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_i64()),
            (400, Some(-32020)),
            "{bad:?}: {:?}",
            a.body
        );
    }
    // The base64 form decodes before comparing ("echo").
    let a = post(
        &url,
        "tools/call",
        call.clone(),
        &[("Mcp-Name", "=?base64?ZWNobw==?=")],
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(text_of(&a.body["result"]), "hi");
    // Unknown and removed methods: 404 with -32601.
    for method in [
        "no/such",
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
    ] {
        let a = post(&url, method, json!({ "_meta": meta(json!({})) }), &[]).await;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_i64()),
            (404, Some(-32601)),
            "{method}"
        );
        assert_eq!(a.body["id"], 7);
    }
}

#[actix_web::test]
async fn stateless_lists_and_calls_work_on_both_endpoints_without_sessions() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    for (path, echo) in [("/mcp", "demo__echo"), ("/mcp/demo", "echo")] {
        let url = app.url(path);
        for method in [
            "tools/list",
            "prompts/list",
            "resources/list",
            "resources/templates/list",
        ] {
            let a = post(&url, method, json!({ "_meta": meta(json!({})) }), &[]).await;
            let r = &a.body["result"];
            assert_eq!(a.status, 200, "{path} {method}: {:?}", a.body);
            assert!(r["ttlMs"].is_u64(), "{path} {method}: {r}");
            assert!(r["cacheScope"] == "public" || r["cacheScope"] == "private");
            assert_eq!(r["resultType"], "complete");
        }
        let tools = post(&url, "tools/list", json!({ "_meta": meta(json!({})) }), &[]).await;
        assert!(tools.body["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == echo));
        let a = post(
            &url,
            "tools/call",
            json!({ "name": echo, "arguments": { "text": "modern" }, "_meta": meta(json!({})) }),
            &[],
        )
        .await;
        assert_eq!(a.status, 200);
        assert_eq!(text_of(&a.body["result"]), "modern", "{:?}", a.body);
        assert_eq!(a.body["result"]["resultType"], "complete");
        assert!(a.headers.get("mcp-session-id").is_none());
        let read = post(
            &url,
            "resources/read",
            json!({ "uri": "test://static-text", "_meta": meta(json!({})) }),
            &[],
        )
        .await;
        assert!(read.body["result"]["ttlMs"].is_u64(), "{:?}", read.body);
    }
    // Progress travels on the call's SSE stream, before the answer.
    let mut m = meta(json!({}));
    m["progressToken"] = json!("p-1");
    let params = json!({ "name": "test_tool_with_progress", "arguments": {}, "_meta": m });
    let a = post(&app.url("/mcp/demo"), "tools/call", params, &[]).await;
    assert_eq!(a.body["result"]["resultType"], "complete", "{:?}", a.body);
    assert!(
        a.before
            .iter()
            .any(|n| n["method"] == "notifications/progress"
                && n["params"]["progressToken"] == "p-1"),
        "{:?}",
        a.before
    );
    assert_eq!(
        app.state.sessions.len(),
        0,
        "modern requests keep no session"
    );
    // A session client on the same endpoint is unaffected.
    let mut c = McpClient::connect(app.url("/mcp")).await;
    assert!(c.session.is_some());
    assert_eq!(
        text_of(&c.call_tool("demo__echo", json!({ "text": "legacy" })).await),
        "legacy"
    );
}

#[actix_web::test]
async fn get_and_delete_from_a_modern_client_are_405() {
    let app = spawn_app().await;
    let client = http_client();
    // A modern client's notification is accepted without a session.
    let r = client
        .post(app.url("/mcp"))
        .insert_header(("Accept", "application/json, text/event-stream"))
        .insert_header(("MCP-Protocol-Version", V))
        .insert_header(("Mcp-Method", "notifications/whatever"))
        .send_json(&json!({ "jsonrpc": "2.0", "method": "notifications/whatever", "params": {} }))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    for path in ["/mcp", "/mcp/demo"] {
        let r = client
            .get(app.url(path))
            .insert_header(("Accept", "text/event-stream"))
            .insert_header(("MCP-Protocol-Version", V))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 405);
        let r = client
            .delete(app.url(path))
            .insert_header(("MCP-Protocol-Version", V))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 405);
    }
}

fn elicit_call(caps: Value) -> Value {
    json!({ "name": "test_elicitation", "arguments": { "message": "Who are you?" }, "_meta": meta(caps) })
}

#[actix_web::test]
async fn a_legacy_upstream_elicitation_becomes_input_required_and_the_retry_completes_it() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let url = app.url("/mcp/demo");
    let first = post(
        &url,
        "tools/call",
        elicit_call(json!({ "elicitation": {} })),
        &[],
    )
    .await;
    let r = &first.body["result"];
    assert_eq!(r["resultType"], "input_required", "{:?}", first.body);
    let (key, req) = r["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    assert_eq!(req["method"], "elicitation/create");
    assert_eq!(req["params"]["message"], "Who are you?");
    let state = r["requestState"].as_str().unwrap().to_string();

    // Tampered: refused, and the held call is still there for the genuine state.
    let mut retry = elicit_call(json!({ "elicitation": {} }));
    retry["inputResponses"] = json!({ key.as_str(): { "action": "accept", "content": { "username": "ada", "email": "ada@example.com" } } });
    retry["requestState"] = json!(format!("{state}-TAMPERED"));
    let a = post(&url, "tools/call", retry.clone(), &[]).await;
    assert_eq!(a.body["error"]["code"], -32602, "{:?}", a.body);
    assert_eq!(a.body["error"]["data"]["reason"], "tampered");
    // Bound to the request: the same state for another tool is refused.
    let mut other = retry.clone();
    other["name"] = json!("echo");
    other["requestState"] = json!(state);
    let a = post(&url, "tools/call", other, &[]).await;
    assert_eq!(
        a.body["error"]["data"]["reason"], "wrong_request",
        "{:?}",
        a.body
    );

    retry["requestState"] = json!(state);
    let done = post(&url, "tools/call", retry.clone(), &[]).await;
    assert_eq!(
        done.body["result"]["resultType"], "complete",
        "{:?}",
        done.body
    );
    let text = text_of(&done.body["result"]);
    assert!(text.contains("ada") && text.contains("accept"), "{text}");

    // Replayed: the state was used.
    let a = post(&url, "tools/call", retry, &[]).await;
    assert_eq!(a.body["error"]["code"], -32602);
    assert_eq!(
        a.body["error"]["data"]["reason"], "replayed",
        "{:?}",
        a.body
    );

    // Without the elicitation capability the upstream's request is refused: no input asked.
    let a = post(&url, "tools/call", elicit_call(json!({})), &[]).await;
    assert_ne!(
        a.body["result"]["resultType"], "input_required",
        "{:?}",
        a.body
    );
}

#[actix_web::test]
async fn an_expired_request_state_is_refused() {
    let app = spawn_app_with(|s| s.modern.state_ttl_secs = 1).await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let url = app.url("/mcp/demo");
    let first = post(
        &url,
        "tools/call",
        elicit_call(json!({ "elicitation": {} })),
        &[],
    )
    .await;
    let r = &first.body["result"];
    assert_eq!(r["resultType"], "input_required", "{:?}", first.body);
    let key = r["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    actix_rt::time::sleep(Duration::from_millis(1500)).await;
    let mut retry = elicit_call(json!({ "elicitation": {} }));
    retry["inputResponses"] = json!({ key: { "action": "decline" } });
    retry["requestState"] = r["requestState"].clone();
    let a = post(&url, "tools/call", retry, &[]).await;
    assert_eq!(a.body["error"]["code"], -32602);
    assert_eq!(a.body["error"]["data"]["reason"], "expired", "{:?}", a.body);
}

#[actix_web::test]
async fn listen_receives_list_changed_when_a_server_is_registered() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let body = json!({ "jsonrpc": "2.0", "id": "sub-1", "method": "subscriptions/listen",
        "params": { "notifications": { "toolsListChanged": true }, "_meta": meta(json!({})) } });
    let resp = http_client()
        .post(app.url("/mcp"))
        .insert_header(("Accept", "application/json, text/event-stream"))
        .insert_header(("MCP-Protocol-Version", V))
        .insert_header(("Mcp-Method", "subscriptions/listen"))
        .send_json(&body)
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut events = resp.eventsource();
    let first = events.next().await.unwrap().unwrap();
    let ack: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(
        ack["method"], "notifications/subscriptions/acknowledged",
        "{ack}"
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub-1"
    );
    assert_eq!(ack["params"]["notifications"]["toolsListChanged"], true);

    let r = http_client()
        .post(app.url("/api/servers/second"))
        .send_json(&json!({ "transport": "stdio", "command": "@self", "args": ["demo-server"] }))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = actix_rt::time::timeout(left, events.next())
            .await
            .expect("no list_changed within 20 s");
        let ev = ev.unwrap().unwrap();
        if ev.data.is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&ev.data).unwrap();
        assert_ne!(
            v["method"], "notifications/prompts/list_changed",
            "not subscribed: {v}"
        );
        if v["method"] == "notifications/tools/list_changed" {
            assert_eq!(
                v["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
                "sub-1"
            );
            break;
        }
    }
}

#[actix_web::test]
async fn a_modern_task_is_created_polled_and_its_result_inlined() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let url = app.url("/mcp");
    let caps = json!({ "extensions": { "io.modelcontextprotocol/tasks": {} } });
    let a = post(
        &url,
        "tools/call",
        json!({ "name": "demo__sleep", "arguments": { "ms": 300 }, "_meta": meta(caps.clone()) }),
        &[],
    )
    .await;
    let task = &a.body["result"];
    assert_eq!(task["resultType"], "task", "{:?}", a.body);
    assert_eq!(task["status"], "working");
    assert!(
        task["ttlMs"].is_u64() && task["pollIntervalMs"].is_u64(),
        "{task}"
    );
    let id = task["taskId"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let done = loop {
        let g = post(
            &url,
            "tasks/get",
            json!({ "taskId": id, "_meta": meta(caps.clone()) }),
            &[],
        )
        .await;
        let r = g.body["result"].clone();
        assert_eq!(r["taskId"], id.as_str(), "{:?}", g.body);
        if r["status"] != "working" {
            break r;
        }
        assert!(Instant::now() < deadline, "task still working after 20 s");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(text_of(&done["result"]), "slept 300 ms");
    // The related-task _meta of 2025-11-25's tasks/result stays off an inlined result.
    assert!(
        done["result"]["_meta"]["io.modelcontextprotocol/related-task"].is_null(),
        "{done}"
    );
    // Another caller's view: a task id names nothing for a missing Mcp-Name header.
    let g = post(
        &url,
        "tasks/get",
        json!({ "taskId": id, "_meta": meta(caps.clone()) }),
        &[("Mcp-Name", "")],
    )
    .await;
    assert_eq!(g.body["error"]["code"], -32020);
    // The task methods need the extension declared: -32021 (HTTP 400) without it, for
    // reads and for a cancel alike.
    for method in ["tasks/get", "tasks/cancel"] {
        let g = post(
            &url,
            method,
            json!({ "taskId": id, "_meta": meta(json!({})) }),
            &[],
        )
        .await;
        assert_eq!(g.status, 400, "{method}: {:?}", g.body);
        assert_eq!(g.body["error"]["code"], -32021, "{method}: {:?}", g.body);
        assert!(
            g.body["error"]["data"]["requiredCapabilities"]["extensions"]
                ["io.modelcontextprotocol/tasks"]
                .is_object(),
            "{:?}",
            g.body
        );
    }
    // Without the extension the same tool answers inline.
    let a = post(
        &url,
        "tools/call",
        json!({ "name": "demo__sleep", "arguments": { "ms": 10 }, "_meta": meta(json!({})) }),
        &[],
    )
    .await;
    assert_eq!(a.body["result"]["resultType"], "complete", "{:?}", a.body);
}

/// Polls `tasks/get` until `done` holds for its result (20 s at most).
async fn poll_task(url: &str, id: &str, caps: &Value, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let g = post(
            url,
            "tasks/get",
            json!({ "taskId": id, "_meta": meta(caps.clone()) }),
            &[],
        )
        .await;
        let r = g.body["result"].clone();
        assert_eq!(r["taskId"], id, "{:?}", g.body);
        if done(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "task never got there: {r}");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn input_keys(task: &Value) -> Vec<String> {
    let mut keys: Vec<String> = task["inputRequests"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

#[actix_web::test]
async fn a_task_waits_for_input_and_resumes_on_tasks_update() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let url = app.url("/mcp");
    let caps = json!({ "elicitation": {}, "extensions": { "io.modelcontextprotocol/tasks": {} } });
    let update = |id: &str, responses: Value| {
        post(
            &url,
            "tasks/update",
            json!({ "taskId": id, "inputResponses": responses, "_meta": meta(caps.clone()) }),
            &[],
        )
    };
    let a = post(
        &url,
        "tools/call",
        json!({ "name": "demo__multi_input", "arguments": {}, "_meta": meta(caps.clone()) }),
        &[],
    )
    .await;
    assert_eq!(a.body["result"]["resultType"], "task", "{:?}", a.body);
    let id = a.body["result"]["taskId"].as_str().unwrap().to_string();
    // The upstream's two elicitations wait under the keys its hints name.
    let waiting = poll_task(&url, &id, &caps, |r| input_keys(r).len() == 2).await;
    assert_eq!(waiting["status"], "input_required", "{waiting}");
    assert_eq!(input_keys(&waiting), ["confirm", "name"]);
    let name = &waiting["inputRequests"]["name"];
    assert_eq!(name["method"], "elicitation/create", "{waiting}");
    assert_eq!(name["params"]["message"], "What is your name?");
    assert!(
        name["params"]["_meta"]["dev.mcp-hub/inputKey"].is_null(),
        "the hint stays between hub and upstream: {waiting}"
    );

    // One answer: acked with a bare result; only the other request waits.
    let u = update(
        &id,
        json!({ "name": { "action": "accept", "content": { "name": "Ada" } } }),
    )
    .await;
    assert_eq!(u.body["result"]["resultType"], "complete", "{:?}", u.body);
    for field in ["taskId", "status", "inputRequests", "result"] {
        assert!(u.body["result"].get(field).is_none(), "{:?}", u.body);
    }
    let g = poll_task(&url, &id, &caps, |_| true).await;
    assert_eq!(g["status"], "input_required", "{g}");
    assert_eq!(input_keys(&g), ["confirm"]);
    // A malformed answer and an answer to nothing are not delivered: the request still waits.
    let u = update(
        &id,
        json!({ "confirm": { "action": "maybe" }, "nothing": { "action": "accept" } }),
    )
    .await;
    assert_eq!(u.body["result"]["resultType"], "complete", "{:?}", u.body);
    let g = poll_task(&url, &id, &caps, |_| true).await;
    assert_eq!(input_keys(&g), ["confirm"], "{g}");
    // A body without inputResponses is refused.
    let bad = post(
        &url,
        "tasks/update",
        json!({ "taskId": id, "inputResponses": [1], "_meta": meta(caps.clone()) }),
        &[],
    )
    .await;
    assert_eq!(bad.body["error"]["code"], -32602, "{:?}", bad.body);

    let u = update(
        &id,
        json!({ "confirm": { "action": "accept", "content": { "confirm": true } } }),
    )
    .await;
    assert_eq!(u.body["result"]["resultType"], "complete", "{:?}", u.body);
    let done = poll_task(&url, &id, &caps, |r| {
        r["status"] != "input_required" && r["status"] != "working"
    })
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(text_of(&done["result"]), "name=Ada, confirm=true");
    assert!(done.get("inputRequests").is_none(), "{done}");
    // Answers after the end go nowhere and are still acked.
    let u = update(&id, json!({ "confirm": { "action": "decline" } })).await;
    assert_eq!(u.body["result"]["resultType"], "complete", "{:?}", u.body);

    // A waiting task can be cancelled; its upstream request is refused, nothing hangs.
    let a = post(
        &url,
        "tools/call",
        json!({ "name": "demo__confirm_delete", "arguments": { "filename": "a.txt" }, "_meta": meta(caps.clone()) }),
        &[],
    )
    .await;
    let id = a.body["result"]["taskId"].as_str().unwrap().to_string();
    let waiting = poll_task(&url, &id, &caps, |r| r["status"] == "input_required").await;
    assert_eq!(input_keys(&waiting), ["confirm"]);
    let c = post(
        &url,
        "tasks/cancel",
        json!({ "taskId": id, "_meta": meta(caps.clone()) }),
        &[],
    )
    .await;
    assert_eq!(c.body["result"]["resultType"], "complete", "{:?}", c.body);
    let g = poll_task(&url, &id, &caps, |_| true).await;
    assert_eq!(g["status"], "cancelled", "{g}");

    // A client without the elicitation capability: the request is refused upstream at once
    // and the task never waits on it.
    let ext = json!({ "extensions": { "io.modelcontextprotocol/tasks": {} } });
    let a = post(
        &url,
        "tools/call",
        json!({ "name": "demo__confirm_delete", "arguments": { "filename": "b.txt" }, "_meta": meta(ext.clone()) }),
        &[],
    )
    .await;
    let id = a.body["result"]["taskId"].as_str().unwrap().to_string();
    let done = poll_task(&url, &id, &ext, |r| r["status"] == "completed").await;
    assert_eq!(done["result"]["isError"], true, "{done}");
    assert!(
        text_of(&done["result"]).contains("elicitation/create failed"),
        "{done}"
    );
}

#[actix_web::test]
async fn closing_the_response_stream_cancels_the_call_upstream() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let url = app.url("/mcp");
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "demo__sleep", "arguments": { "ms": 30000 }, "_meta": meta(json!({})) } });
    let resp = http_client()
        .post(&url)
        .insert_header(("Accept", "application/json, text/event-stream"))
        .insert_header(("MCP-Protocol-Version", V))
        .insert_header(("Mcp-Method", "tools/call"))
        .insert_header(("Mcp-Name", "demo__sleep"))
        .send_json(&body)
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    drop(resp);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = post(&url, "tools/call", json!({ "name": "demo__cancelled_requests", "arguments": {}, "_meta": meta(json!({})) }), &[]).await;
        let ids: Vec<Value> = serde_json::from_str(&text_of(&a.body["result"])).unwrap();
        if !ids.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no notifications/cancelled reached the upstream"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The official Python SDK 2.x (dual-era) negotiates 2026-07-28 with the hub and calls demo
/// tools through /mcp and /mcp/demo, answering the bridged elicitation. `scripts/test.sh`
/// installs it into .venv-modern and sets MCP_HUB_E2E_PYTHON_MODERN.
#[actix_web::test]
async fn python_sdk_2_modern_client_calls_tools_and_answers_elicitation() {
    let python = std::env::var("MCP_HUB_E2E_PYTHON_MODERN").unwrap_or_else(|_| {
        panic!("MCP_HUB_E2E_PYTHON_MODERN is not set: run the tests with scripts/test.sh")
    });
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let root = env!("CARGO_MANIFEST_DIR");
    for (path, prefix) in [("/mcp", "demo__"), ("/mcp/demo", "")] {
        let out = tokio::time::timeout(
            Duration::from_secs(90),
            tokio::process::Command::new(&python)
                .arg(format!("{root}/tests/e2e/modern/py_modern_client.py"))
                .arg(app.url(path))
                .args(["--prefix", prefix])
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("client timed out")
        .expect("client did not start");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("\"ok\": true"),
            "{path}\nstdout: {stdout}\nstderr: {stderr}"
        );
        assert!(stdout.contains("2026-07-28"), "{stdout}");
    }
    assert_eq!(
        app.state.sessions.len(),
        0,
        "the SDK 2.x client never opened a session"
    );
}

#[actix_web::test]
async fn request_state_and_tasks_are_bound_to_the_caller() {
    use mcp_hub::config::ApiKey;
    const ALICE: &str = "Bearer alice-key-0123456789";
    const BOB: &str = "Bearer bob-key-0123456789";
    let app = spawn_app_with(|s| {
        s.auth.api_keys = ["alice", "bob"]
            .into_iter()
            .map(|u| ApiKey {
                user: u.into(),
                key_sha256: mcp_hub::auth::hash_key(&format!("{u}-key-0123456789")),
            })
            .collect();
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let url = app.url("/mcp/demo");
    let caps = json!({ "elicitation": {} });
    let first = post(
        &url,
        "tools/call",
        elicit_call(caps.clone()),
        &[("Authorization", ALICE)],
    )
    .await;
    let r = &first.body["result"];
    assert_eq!(r["resultType"], "input_required", "{:?}", first.body);
    let key = r["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let mut retry = elicit_call(caps.clone());
    retry["inputResponses"] = json!({ key: { "action": "decline" } });
    retry["requestState"] = r["requestState"].clone();
    let a = post(&url, "tools/call", retry.clone(), &[("Authorization", BOB)]).await;
    assert_eq!(a.body["error"]["code"], -32602);
    assert_eq!(
        a.body["error"]["data"]["reason"], "wrong_caller",
        "{:?}",
        a.body
    );
    // Bob's attempt did not consume it: Alice's retry completes the call.
    let a = post(&url, "tools/call", retry, &[("Authorization", ALICE)]).await;
    assert_eq!(a.body["result"]["resultType"], "complete", "{:?}", a.body);
    assert!(text_of(&a.body["result"]).contains("decline"));

    let ext = json!({ "extensions": { "io.modelcontextprotocol/tasks": {} } });
    let call = json!({ "name": "sleep", "arguments": { "ms": 10 }, "_meta": meta(ext.clone()) });
    let t = post(&url, "tools/call", call, &[("Authorization", ALICE)]).await;
    let id = t.body["result"]["taskId"].as_str().unwrap().to_string();
    let g = post(
        &url,
        "tasks/get",
        json!({ "taskId": id, "_meta": meta(ext.clone()) }),
        &[("Authorization", BOB)],
    )
    .await;
    assert_eq!(g.body["error"]["code"], -32602, "{:?}", g.body);
    let g = post(
        &url,
        "tasks/get",
        json!({ "taskId": id, "_meta": meta(ext) }),
        &[("Authorization", ALICE)],
    )
    .await;
    assert_eq!(g.body["result"]["taskId"], id.as_str(), "{:?}", g.body);
}

#[actix_web::test]
async fn a_tampered_or_replayed_request_state_is_refused() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let url = app.url("/mcp/demo");
    let caps = json!({ "elicitation": {} });
    let first = post(&url, "tools/call", elicit_call(caps.clone()), &[]).await;
    let r = &first.body["result"];
    assert_eq!(r["resultType"], "input_required", "{:?}", first.body);
    let key = r["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let state = r["requestState"].as_str().unwrap().to_string();
    let mut retry = elicit_call(caps.clone());
    retry["inputResponses"] = json!({ key: { "action": "decline" } });

    // One character changed anywhere in the token breaks its signature.
    for at in [0, state.len() / 2, state.len() - 1] {
        let mut bytes = state.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let mut tampered = retry.clone();
        tampered["requestState"] = json!(String::from_utf8(bytes).unwrap());
        let a = post(&url, "tools/call", tampered, &[]).await;
        assert_eq!(a.body["error"]["code"], -32602, "{:?}", a.body);
        assert_eq!(
            a.body["error"]["data"]["reason"], "tampered",
            "{:?}",
            a.body
        );
        assert!(a.body["error"]["data"]["hint"].is_string());
    }
    // Refusals consumed nothing: the genuine token completes the call once...
    retry["requestState"] = json!(state);
    let a = post(&url, "tools/call", retry.clone(), &[]).await;
    assert_eq!(a.body["result"]["resultType"], "complete", "{:?}", a.body);
    // ...and replaying it is refused.
    let again = post(&url, "tools/call", retry, &[]).await;
    assert_eq!(again.body["error"]["code"], -32602, "{:?}", again.body);
    assert_eq!(
        again.body["error"]["data"]["reason"], "replayed",
        "{:?}",
        again.body
    );
}

#[actix_web::test]
async fn a_quick_modern_answer_comes_as_json_unless_the_client_accepts_only_sse() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let url = app.url("/mcp");
    let call =
        json!({ "name": "demo__echo", "arguments": { "text": "quick" }, "_meta": meta(json!({})) });
    // Accepting both: the quick answer is one JSON body; accepting only SSE: a stream.
    for (headers, want) in [
        (vec![], "application/json"),
        (vec![("Accept", "text/event-stream")], "text/event-stream"),
    ] {
        let a = post(&url, "tools/call", call.clone(), &headers).await;
        let content_type = a.headers.get("content-type").map(|v| v.to_str().unwrap());
        assert!(
            content_type.is_some_and(|t| t.starts_with(want)),
            "{want}: {content_type:?} {:?}",
            a.body
        );
        assert_eq!(
            a.body["result"]["content"][0]["text"], "quick",
            "{:?}",
            a.body
        );
    }
}
