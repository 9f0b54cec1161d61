//! The hub as a client of 2026-07-28 ("modern") upstreams: era detection (shown in the
//! admin runtime status), legacy session clients calling modern and dual upstreams over
//! stdio and HTTP, the legacy-client → modern-upstream elicitation bridge (`input_required`
//! turned into a real `elicitation/create` on the client's stream, then retried), and a
//! modern client calling a modern upstream through the hub.

use serde_json::{json, Value};
use std::time::Duration;

use crate::helpers::*;

const V: &str = "2026-07-28";

fn era_of(app: &TestApp, server: &str) -> Option<&'static str> {
    app.state
        .servers
        .get(server)
        .and_then(|h| h.runtime.borrow().era)
}

async fn admin_runtime(app: &TestApp, server: &str) -> Value {
    let mut resp = http_client()
        .get(app.url(&format!("/api/servers/{server}")))
        .send()
        .await
        .unwrap();
    resp.json::<Value>()
        .limit(1 << 20)
        .await
        .unwrap_or(Value::Null)
}

#[actix_web::test]
async fn each_upstream_era_is_detected_and_shown_in_the_runtime_status() {
    let http_modern = demo_http_era("modern");
    let http_legacy = demo_http_era("legacy");
    let app = spawn_app_with(|s| {
        s.servers = vec![
            demo_stdio_era("smodern", "modern"),
            demo_stdio_era("sdual", "dual"),
            demo_stdio("slegacy"),
            http_def("hmodern", &http_modern.url),
            http_def("hlegacy", &http_legacy.url),
        ];
    })
    .await;
    for (id, era) in [
        ("smodern", "modern"),
        ("sdual", "modern"),
        ("slegacy", "legacy"),
        ("hmodern", "modern"),
        ("hlegacy", "legacy"),
    ] {
        app.wait_ready(id, Duration::from_secs(15)).await;
        assert_eq!(era_of(&app, id), Some(era), "{id}");
    }
    let status = admin_runtime(&app, "smodern").await;
    assert!(status.to_string().contains(r#""era":"modern""#), "{status}");
}

#[actix_web::test]
async fn a_legacy_client_calls_tools_on_modern_dual_and_http_modern_upstreams() {
    let http_modern = demo_http_era("modern");
    let app = spawn_app_with(|s| {
        s.servers = vec![
            demo_stdio_era("smodern", "modern"),
            demo_stdio_era("sdual", "dual"),
            http_def("hmodern", &http_modern.url),
        ];
    })
    .await;
    for id in ["smodern", "sdual", "hmodern"] {
        app.wait_ready(id, Duration::from_secs(15)).await;
        let mut c = McpClient::connect(app.url(&format!("/mcp/{id}"))).await;
        let list = c.request("tools/list", json!({})).await;
        let tools = list.response["result"]["tools"].as_array().cloned();
        assert!(
            tools.is_some_and(|t| t.iter().any(|t| t["name"] == "echo")),
            "{id}: {list:?}"
        );
        let r = c.call_tool("add", json!({ "a": 2, "b": 40 })).await;
        assert!(text_of(&r).contains("42"), "{id}: {r}");
        let prompts = c.request("prompts/list", json!({})).await;
        assert!(
            prompts.response["result"]["prompts"].is_array(),
            "{id}: {prompts:?}"
        );
        let res = c
            .request("resources/read", json!({ "uri": "test://static-text" }))
            .await;
        assert!(
            res.response["result"]["contents"].is_array(),
            "{id}: {res:?}"
        );
        // Methods 2026-07-28 removed: a level change is answered by the hub, a
        // subscription is refused.
        let lvl = c
            .request("logging/setLevel", json!({ "level": "info" }))
            .await;
        assert!(lvl.response["result"].is_object(), "{id}: {lvl:?}");
        let sub = c
            .request(
                "resources/subscribe",
                json!({ "uri": "test://static-text" }),
            )
            .await;
        assert_eq!(sub.response["error"]["code"], -32601, "{id}: {sub:?}");
    }
    // Through the aggregate endpoint, namespaced.
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let r = c.call_tool("smodern__echo", json!({ "text": "hi" })).await;
    assert!(text_of(&r).contains("hi"), "{r}");
}

async fn legacy_elicitation_round_trip(app: &TestApp, server: &str) {
    let mut c = McpClient::connect(app.url(&format!("/mcp/{server}"))).await;
    let body = json!({ "jsonrpc": "2.0", "id": 91, "method": "tools/call",
        "params": { "name": "test_elicitation", "arguments": { "message": "Who are you?" } } });
    let r = c
        .send_raw(serde_json::to_vec(&body).unwrap(), |req| {
            (req["method"] == "elicitation/create").then(|| {
                assert_eq!(req["params"]["message"], "Who are you?");
                json!({ "action": "accept", "content": { "username": "ada", "email": "ada@example.com" } })
            })
        })
        .await;
    assert!(
        r.messages
            .iter()
            .any(|m| m["method"] == "elicitation/create"),
        "{server}: {r:?}"
    );
    assert_eq!(r.response["id"], 91);
    let text = text_of(&r.response["result"]);
    assert!(
        text.contains("accept") && text.contains("ada@example.com"),
        "{server}: {r:?}"
    );
}

#[actix_web::test]
async fn a_legacy_clients_elicitation_round_trip_reaches_a_modern_upstream() {
    let http_modern = demo_http_era("modern");
    let app = spawn_app_with(|s| {
        s.servers = vec![
            demo_stdio_era("smodern", "modern"),
            http_def("hmodern", &http_modern.url),
        ];
    })
    .await;
    for id in ["smodern", "hmodern"] {
        app.wait_ready(id, Duration::from_secs(15)).await;
        legacy_elicitation_round_trip(&app, id).await;
    }
}

/// POSTs one modern request to the hub and returns the JSON-RPC answer.
async fn modern_post(url: &str, method: &str, params: Value) -> Value {
    let mut req = http_client()
        .post(url)
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("Accept", "application/json"))
        .insert_header(("MCP-Protocol-Version", V))
        .insert_header(("Mcp-Method", method));
    if let Some(n) = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
    {
        req = req.insert_header(("Mcp-Name", n.to_string()));
    }
    let body = json!({ "jsonrpc": "2.0", "id": 5, "method": method, "params": params });
    let mut resp = req.send_json(&body).await.unwrap();
    resp.json::<Value>().limit(1 << 20).await.unwrap()
}

fn modern_meta(caps: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": caps,
        "io.modelcontextprotocol/clientInfo": { "name": "eras-test", "version": "1" },
    })
}

#[actix_web::test]
async fn a_modern_client_calls_a_modern_upstream_and_answers_its_elicitation() {
    let app = spawn_app_with(|s| s.servers = vec![demo_stdio_era("smodern", "modern")]).await;
    app.wait_ready("smodern", Duration::from_secs(15)).await;
    let url = app.url("/mcp/smodern");
    let r = modern_post(
        &url,
        "tools/call",
        json!({ "name": "add", "arguments": { "a": 1, "b": 2 }, "_meta": modern_meta(json!({})) }),
    )
    .await;
    assert!(text_of(&r["result"]).contains('3'), "{r}");

    let call = |extra: Value| {
        let mut p = json!({ "name": "test_elicitation", "arguments": { "message": "Name?" },
            "_meta": modern_meta(json!({ "elicitation": {} })) });
        if let (Some(p), Some(e)) = (p.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        p
    };
    let first = modern_post(&url, "tools/call", call(json!({}))).await;
    let res = &first["result"];
    assert_eq!(res["resultType"], "input_required", "{first}");
    let (key, req) = res["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    assert_eq!(req["method"], "elicitation/create", "{first}");
    let state = res["requestState"].clone();
    let done = modern_post(
        &url,
        "tools/call",
        call(json!({
            "inputResponses": { key.as_str(): { "action": "accept", "content": { "username": "bob", "email": "bob@example.com" } } },
            "requestState": state,
        })),
    )
    .await;
    let text = text_of(&done["result"]);
    assert!(text.contains("bob@example.com"), "{done}");
}

#[actix_web::test]
async fn a_streamable_http_url_that_is_a_legacy_sse_endpoint_falls_back_to_sse() {
    let legacy = spawn_app().await;
    legacy.wait_ready("demo", Duration::from_secs(10)).await;
    let url = legacy.url("/sse/demo");
    let app = spawn_app_with(move |s| s.servers = vec![http_def("old", &url)]).await;
    app.wait_ready("old", Duration::from_secs(15)).await;
    assert_eq!(era_of(&app, "old"), Some("legacy"));
    let mut c = McpClient::connect(app.url("/mcp/old")).await;
    let r = c.call_tool("echo", json!({ "text": "via sse" })).await;
    assert_eq!(text_of(&r), "via sse");
}

#[actix_web::test]
async fn a_modern_upstreams_sampling_request_reaches_the_legacy_client() {
    let app = spawn_app_with(|s| s.servers = vec![demo_stdio_era("smodern", "modern")]).await;
    app.wait_ready("smodern", Duration::from_secs(15)).await;
    let mut c = McpClient::connect(app.url("/mcp/smodern")).await;
    let r = c.call_test_sampling(92).await;
    assert!(text_of(&r.response["result"]).contains("sampled!"), "{r:?}");
}

/// A modern upstream whose one tool asks for input forever; it checks that every retry
/// echoes the `requestState` it issued last, and counts the calls.
async fn endless_input_upstream() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use actix_web::{web, HttpResponse};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let url = serve_fake_mcp(move |body: web::Json<Value>| {
        let calls = seen.clone();
        async move {
            let id = body["id"].clone();
            let p = &body["params"];
            let result = match body["method"].as_str().unwrap_or("") {
                "server/discover" => json!({ "supportedVersions": [V],
                            "capabilities": { "tools": {} }, "ttlMs": 0, "cacheScope": "public" }),
                "tools/list" => json!({ "tools": [{ "name": "ask",
                            "inputSchema": { "type": "object" } }], "ttlMs": 0, "cacheScope": "public" }),
                "tools/call" => {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    let want = if n == 0 {
                        Value::Null
                    } else {
                        json!(format!("state-{}", n - 1))
                    };
                    if p["requestState"] != want
                        || (n > 0 && p["inputResponses"]["q"]["action"] != "accept")
                    {
                        return HttpResponse::Ok().json(json!({ "jsonrpc": "2.0", "id": id,
                                    "error": { "code": -32602, "message": "bad retry" } }));
                    }
                    json!({ "resultType": "input_required",
                                "inputRequests": { "q": { "method": "elicitation/create",
                                    "params": { "message": "again?", "requestedSchema": { "type": "object", "properties": {} } } } },
                                "requestState": format!("state-{n}") })
                }
                _ => {
                    return HttpResponse::NotFound().json(json!({ "jsonrpc": "2.0", "id": id,
                                "error": { "code": -32601, "message": "no" } }))
                }
            };
            HttpResponse::Ok().json(json!({ "jsonrpc": "2.0", "id": id, "result": result }))
        }
    });
    (url, calls)
}

#[actix_web::test]
async fn input_rounds_are_bounded_and_request_state_is_echoed() {
    let (url, calls) = endless_input_upstream().await;
    let app = spawn_app_with(move |s| s.servers = vec![http_def("asker", &url)]).await;
    app.wait_ready("asker", Duration::from_secs(15)).await;
    assert_eq!(era_of(&app, "asker"), Some("modern"));
    let mut c = McpClient::connect(app.url("/mcp/asker")).await;
    let body = json!({ "jsonrpc": "2.0", "id": 93, "method": "tools/call",
        "params": { "name": "ask", "arguments": {} } });
    let r = c
        .send_raw(serde_json::to_vec(&body).unwrap(), |req| {
            (req["method"] == "elicitation/create")
                .then(|| json!({ "action": "accept", "content": {} }))
        })
        .await;
    let asked = r
        .messages
        .iter()
        .filter(|m| m["method"] == "elicitation/create")
        .count();
    assert_eq!(asked, 8, "{r:?}");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 9);
    assert!(
        r.response["error"].to_string().contains("8 rounds"),
        "{r:?}"
    );
}
