//! REST APIs as MCP servers, argument validation at the hub, and the plain call endpoint.
//!
//! The REST API is real: an actix-web app on 127.0.0.1:0 started by each test, which
//! records every request it gets (so "the upstream never saw it" is a count, not a guess).

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::*;

/// Environment variable the fruit API's Authorization header is resolved from.
const TOKEN_VAR: &str = "MCP_HUB_TEST_FRUIT_TOKEN";
const TOKEN: &str = "s3cret-fruit-token";

/// One request as the API saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Raw (still percent-encoded) path.
    path: String,
    query: String,
    headers: BTreeMap<String, String>,
    body: Value,
}

#[derive(Default)]
struct Log(Mutex<Vec<Seen>>);

/// The loopback REST API.
struct Api {
    base: String,
    log: Arc<Log>,
    handle: actix_web::dev::ServerHandle,
}

impl Api {
    async fn start() -> Api {
        let log = Arc::new(Log::default());
        let data = web::Data::from(log.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(api))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Api {
            base: format!("http://127.0.0.1:{port}"),
            log,
            handle,
        }
    }

    /// Requests whose raw path starts with `prefix`.
    fn seen(&self, prefix: &str) -> Vec<Seen> {
        let log = self.log.0.lock().unwrap();
        log.iter()
            .filter(|s| s.path.starts_with(prefix))
            .cloned()
            .collect()
    }

    fn count(&self, prefix: &str) -> usize {
        self.seen(prefix).len()
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let h = self.handle.clone();
        actix_rt::spawn(async move { h.stop(false).await });
    }
}

fn pet(id: i64, name: &str, status: &str) -> Value {
    json!({ "id": id, "name": name, "photoUrls": [], "tags": [], "status": status })
}

/// The fruit API (`/api/...`) and a petstore (`/api/v3/...`), in one handler.
async fn api(req: HttpRequest, body: web::Bytes, log: web::Data<Log>) -> HttpResponse {
    let path = req.uri().path().to_string();
    let method = req.method().as_str().to_string();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    log.0.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.clone(),
        query: req.query_string().to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: body.clone(),
    });
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["api", "fruits", name]) => {
            let name = percent_decode(name);
            HttpResponse::Ok()
                .json(json!({ "name": name, "color": "orange", "query": req.query_string() }))
        }
        ("POST", ["api", "fruits"]) => HttpResponse::Created().json(json!({ "created": body })),
        ("GET", ["api", "broken"]) => HttpResponse::InternalServerError()
            .content_type("text/plain")
            .body(format!("database exploded {}", "x".repeat(2000))),
        ("GET", ["api", "slow"]) => {
            actix_rt::time::sleep(Duration::from_secs(3)).await;
            HttpResponse::Ok().json(json!({ "late": true }))
        }
        ("GET", ["api", "v3", "pet", "findByStatus"]) => {
            let status = req.query_string().trim_start_matches("status=").to_string();
            HttpResponse::Ok().json(json!([pet(1, "rex", &status), pet(2, "tom", &status)]))
        }
        ("GET", ["api", "v3", "pet", id]) => match id.parse::<i64>() {
            Ok(id) => HttpResponse::Ok().json(pet(id, "doggie", "available")),
            Err(_) => HttpResponse::BadRequest().body("Invalid ID supplied"),
        },
        ("POST", ["api", "v3", "pet"]) => {
            let mut created = body.clone();
            created["id"] = json!(99);
            HttpResponse::Ok().json(created)
        }
        ("DELETE", ["api", "v3", "pet", _]) => HttpResponse::Ok().finish(),
        _ => HttpResponse::NotFound().body(format!("no route {method} {path}")),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The fruit API as a REST server definition.
fn fruits_def(api: &Api) -> Value {
    // Set once, before any hub that reads it starts: the environment is process-wide.
    static SET: std::sync::Once = std::sync::Once::new();
    SET.call_once(|| std::env::set_var(TOKEN_VAR, TOKEN));
    json!({
        "id": "fruits",
        "transport": "rest",
        "base_url": format!("{}/api", api.base),
        "headers": { "Authorization": format!("Bearer ${{{TOKEN_VAR}}}") },
        "external_timeout_ms": 500,
        "tools": [
            {
                "name": "get_fruit",
                "description": "One fruit by name",
                "method": "GET",
                "path": "/fruits/{name}",
                "query": ["fields"],
                "input_schema": {
                    "type": "object",
                    "properties": {
                        "name": { "type": "string" },
                        "limit": { "type": "integer", "minimum": 1 },
                        "fields": { "type": "array", "items": { "type": "string" } }
                    },
                    "required": ["name"]
                }
            },
            {
                "name": "add_fruit",
                "method": "POST",
                "path": "/fruits",
                "headers": { "X-Trace": "trace-{trace}" },
                "input_schema": {
                    "type": "object",
                    "properties": {
                        "name": { "type": "string" },
                        "color": { "type": "string" },
                        "trace": { "type": "string" }
                    },
                    "required": ["name", "color"]
                }
            },
            { "name": "broken", "path": "/broken" },
            { "name": "slow", "path": "/slow" },
            { "name": "fruit_color", "path": "/fruits/{name}", "response": { "pointer": "/color" } }
        ]
    })
}

fn petstore_def(id: &str, api: &Api, operations: &[&str]) -> Value {
    json!({
        "id": id,
        "transport": "rest",
        "base_url": format!("{}/api/v3", api.base),
        "openapi": concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/petstore.json"),
        "operations": operations,
    })
}

async fn hub_with(defs: Vec<Value>) -> TestApp {
    let servers = defs
        .iter()
        .map(|d| serde_json::from_value(d.clone()).unwrap())
        .collect();
    let app = spawn_app_with(move |s| s.servers = servers).await;
    for d in &defs {
        app.wait_ready(d["id"].as_str().unwrap(), Duration::from_secs(15))
            .await;
    }
    app
}

/// initialize with a given protocol version.
async fn connect_as(url: String, version: &str) -> McpClient {
    let mut c = McpClient::new(url);
    let r = c
        .request("initialize", json!({ "protocolVersion": version, "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }))
        .await;
    assert_eq!(r.response["result"]["protocolVersion"], version, "{r:?}");
    c.notify("notifications/initialized", json!({})).await;
    c
}

#[actix_web::test]
async fn rest_get_puts_arguments_in_the_path_and_query_and_sends_resolved_secrets() {
    let api = Api::start().await;
    let app = hub_with(vec![fruits_def(&api)]).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let result = c
        .call_tool(
            "fruits__get_fruit",
            json!({ "name": "blood orange/1", "limit": 2, "fields": ["a b", "c&d"] }),
        )
        .await;
    assert!(result.get("isError").is_none_or(|e| e == false), "{result}");
    let body: Value = serde_json::from_str(&text_of(&result)).unwrap();
    assert_eq!(body["name"], "blood orange/1");
    let seen = api.seen("/api/fruits/");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/api/fruits/blood%20orange%2F1");
    assert_eq!(seen[0].query, "fields=a%20b&fields=c%26d&limit=2");
    assert_eq!(seen[0].headers["authorization"], format!("Bearer {TOKEN}"));
    assert!(!seen[0].headers["x-request-id"].is_empty());
    let color = c
        .call_tool("fruits__fruit_color", json!({ "name": "kiwi" }))
        .await;
    assert_eq!(text_of(&color), "\"orange\"");
}

#[actix_web::test]
async fn rest_post_sends_a_json_body() {
    let api = Api::start().await;
    let app = hub_with(vec![fruits_def(&api)]).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let result = c
        .call_tool(
            "fruits__add_fruit",
            json!({ "name": "kiwi", "color": "green", "trace": "t1" }),
        )
        .await;
    assert!(result.get("isError").is_none_or(|e| e == false), "{result}");
    let seen = api.seen("/api/fruits");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].body, json!({ "name": "kiwi", "color": "green" }));
    assert_eq!(seen[0].headers["content-type"], "application/json");
    assert_eq!(seen[0].headers["x-trace"], "trace-t1");
    let body: Value = serde_json::from_str(&text_of(&result)).unwrap();
    assert_eq!(body["created"]["name"], "kiwi");
}

#[actix_web::test]
async fn rest_http_errors_are_error_results_with_status_and_excerpt() {
    let api = Api::start().await;
    let app = hub_with(vec![fruits_def(&api)]).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let result = c.call_tool("fruits__broken", json!({})).await;
    assert_eq!(result["isError"], true, "{result}");
    let text = text_of(&result);
    assert!(text.starts_with("HTTP 500: database exploded"), "{text}");
    assert_eq!(text.chars().count(), "HTTP 500: ".len() + 500);
}

#[actix_web::test]
async fn rest_slow_api_hits_the_external_timeout() {
    let api = Api::start().await;
    let app = hub_with(vec![fruits_def(&api)]).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let started = std::time::Instant::now();
    let r = c
        .request(
            "tools/call",
            json!({ "name": "fruits__slow", "arguments": {} }),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.response["error"]["code"], -32001, "{r:?}");
    assert_eq!(r.response["error"]["data"]["layer"], "external");
    assert_eq!(r.response["error"]["data"]["timeout_ms"], 500);
    // The server is still healthy for the next call.
    let ok = c
        .call_tool("fruits__get_fruit", json!({ "name": "fig" }))
        .await;
    assert!(text_of(&ok).contains("fig"));
}

#[actix_web::test]
async fn rest_server_registered_through_the_admin_api_never_shows_its_secret() {
    let api = Api::start().await;
    let app = spawn_app_with(|s| s.servers = vec![]).await;
    let mut def = fruits_def(&api);
    def["id"] = json!("fruity");
    let resp = http_client()
        .post(app.url("/api/servers/fruity"))
        .send_json(&def)
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    app.wait_ready("fruity", Duration::from_secs(10)).await;
    let shown: Value = http_client()
        .get(app.url("/api/servers/fruity"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["headers"]["Authorization"], "***", "{shown}");
    assert_eq!(shown["tools"][1]["headers"]["X-Trace"], "***");
    assert!(!shown.to_string().contains(TOKEN));
    let mut c = McpClient::connect(app.url("/mcp/fruity")).await;
    let listed = c.request("tools/list", json!({})).await;
    let names: Vec<&str> = listed.response["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["get_fruit", "add_fruit", "broken", "slow", "fruit_color"]
    );
    c.call_tool("get_fruit", json!({ "name": "lime" })).await;
    assert_eq!(
        api.seen("/api/fruits/lime")[0].headers["authorization"],
        format!("Bearer {TOKEN}")
    );
    // A definition naming a variable that is not set never becomes ready, and says why.
    let bad = json!({ "transport": "rest", "base_url": api.base, "headers": { "Authorization": "${MCP_HUB_TEST_UNSET_VAR}" }, "tools": [{ "name": "x", "path": "/x" }] });
    let resp = http_client()
        .post(app.url("/api/servers/nosecret"))
        .send_json(&bad)
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let mut reason = String::new();
    for _ in 0..100 {
        let shown: Value = http_client()
            .get(app.url("/api/servers/nosecret"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        reason = shown["runtime"]["last_error"]["reason"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if !reason.is_empty() {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        reason.contains("MCP_HUB_TEST_UNSET_VAR is not set"),
        "{reason}"
    );
}

#[actix_web::test]
async fn openapi_petstore_import_produces_the_tools_and_calls_work() {
    let api = Api::start().await;
    let app = hub_with(vec![
        petstore_def("pets", &api, &[]),
        petstore_def("somepets", &api, &["getPetById", "addPet"]),
    ])
    .await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let listed = c.request("tools/list", json!({})).await;
    let tools = listed.response["result"]["tools"]
        .as_array()
        .unwrap()
        .clone();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    let mut expected = vec![
        "pets__addPet",
        "pets__createUser",
        "pets__createUsersWithListInput",
        "pets__deleteOrder",
        "pets__deletePet",
        "pets__deleteUser",
        "pets__findPetsByStatus",
        "pets__findPetsByTags",
        "pets__getInventory",
        "pets__getOrderById",
        "pets__getPetById",
        "pets__getUserByName",
        "pets__loginUser",
        "pets__logoutUser",
        "pets__placeOrder",
        "pets__updatePet",
        "pets__updatePetWithForm",
        "pets__updateUser",
        "somepets__addPet",
        "somepets__getPetById",
    ];
    expected.sort();
    // uploadFile takes an octet-stream body, which a JSON tool call cannot carry.
    assert_eq!(names, expected);
    let get = tools
        .iter()
        .find(|t| t["name"] == "pets__getPetById")
        .unwrap();
    assert_eq!(get["inputSchema"]["required"], json!(["petId"]));
    assert_eq!(get["inputSchema"]["properties"]["petId"]["type"], "integer");
    assert_eq!(get["outputSchema"]["type"], "object");
    assert!(get["outputSchema"]["$defs"]["Pet"].is_object());
    let add = tools.iter().find(|t| t["name"] == "pets__addPet").unwrap();
    assert_eq!(add["inputSchema"]["required"], json!(["name", "photoUrls"]));
    assert!(add["inputSchema"]["$defs"]["Category"].is_object());

    let got = c.call_tool("pets__getPetById", json!({ "petId": 7 })).await;
    assert_eq!(got["structuredContent"]["id"], 7, "{got}");
    assert_eq!(got["structuredContent"]["name"], "doggie");
    let found = c
        .call_tool("pets__findPetsByStatus", json!({ "status": "sold" }))
        .await;
    let pets: Value = serde_json::from_str(&text_of(&found)).unwrap();
    assert_eq!(pets[1]["status"], "sold");
    assert_eq!(api.seen("/api/v3/pet/findByStatus")[0].query, "status=sold");
    let added = c
        .call_tool(
            "somepets__addPet",
            json!({ "name": "rex", "photoUrls": ["http://x/rex.png"], "status": "pending" }),
        )
        .await;
    assert_eq!(added["structuredContent"]["id"], 99, "{added}");
    let posted = api
        .seen("/api/v3/pet")
        .into_iter()
        .find(|s| s.method == "POST")
        .unwrap();
    assert_eq!(
        posted.body,
        json!({ "name": "rex", "photoUrls": ["http://x/rex.png"], "status": "pending" })
    );
    let deleted = c
        .call_tool("pets__deletePet", json!({ "petId": 3, "api_key": "k-1" }))
        .await;
    assert!(
        deleted.get("isError").is_none_or(|e| e == false),
        "{deleted}"
    );
    let del = api
        .seen("/api/v3/pet/3")
        .into_iter()
        .find(|s| s.method == "DELETE")
        .unwrap();
    assert_eq!(del.headers["api_key"], "k-1");
}

#[actix_web::test]
async fn invalid_arguments_never_reach_the_upstream_and_list_violations_2025_11_25() {
    let api = Api::start().await;
    let app = hub_with(vec![fruits_def(&api), petstore_def("pets", &api, &[])]).await;
    let mut c = connect_as(app.url("/mcp"), "2025-11-25").await;
    let r = c
        .request(
            "tools/call",
            json!({ "name": "fruits__get_fruit", "arguments": { "name": 5, "limit": 0 } }),
        )
        .await;
    let result = &r.response["result"];
    assert_eq!(result["isError"], true, "{r:?}");
    let text = text_of(result);
    assert!(
        text.contains("/name:") && text.contains("/limit:"),
        "{text}"
    );
    let r = c
        .request(
            "tools/call",
            json!({ "name": "pets__getPetById", "arguments": { "petId": "seven" } }),
        )
        .await;
    assert_eq!(r.response["result"]["isError"], true, "{r:?}");
    // A task-augmented call is refused before any task exists.
    let r = c
        .request(
            "tools/call",
            json!({ "name": "fruits__add_fruit", "arguments": {}, "task": {} }),
        )
        .await;
    assert_eq!(r.response["error"]["code"], -32602, "{r:?}");
    assert_eq!(api.count("/"), 0, "{:?}", api.seen("/"));
}

#[actix_web::test]
async fn invalid_arguments_are_invalid_params_errors_for_2025_06_18() {
    let api = Api::start().await;
    let app = hub_with(vec![fruits_def(&api)]).await;
    let mut c = connect_as(app.url("/mcp/fruits"), "2025-06-18").await;
    let r = c
        .request(
            "tools/call",
            json!({ "name": "get_fruit", "arguments": { "name": 5, "limit": 0 } }),
        )
        .await;
    let err = &r.response["error"];
    assert_eq!(err["code"], -32602, "{r:?}");
    assert_eq!(err["message"], "Invalid params");
    let mut paths: Vec<&str> = err["data"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["path"].as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(paths, ["/limit", "/name"]);
    assert!(err["data"]["violations"][0]["message"].is_string());
    assert_eq!(api.count("/"), 0);
}

#[actix_web::test]
async fn validation_covers_stdio_upstreams_too() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = connect_as(app.url("/mcp"), "2025-11-25").await;
    let r = c
        .request(
            "tools/call",
            json!({ "name": "demo__add", "arguments": { "a": "x" } }),
        )
        .await;
    let result = &r.response["result"];
    assert_eq!(result["isError"], true, "{r:?}");
    // The demo server stops at its first bad argument and words it differently; both
    // violations in the hub's words mean the call never reached the child.
    let text = text_of(result);
    assert!(
        text.starts_with("Invalid arguments for tool demo__add:"),
        "{text}"
    );
    assert!(
        text.contains("- /a:") && text.contains("\"b\" is a required property"),
        "{text}"
    );
    let mut old = connect_as(app.url("/mcp"), "2025-03-26").await;
    let r = old
        .request(
            "tools/call",
            json!({ "name": "demo__add", "arguments": { "a": 1, "b": "2" } }),
        )
        .await;
    assert_eq!(
        r.response["error"]["data"]["violations"][0]["path"], "/b",
        "{r:?}"
    );
    let ok = c.call_tool("demo__add", json!({ "a": 2, "b": 3 })).await;
    assert_eq!(text_of(&ok), "5");
}

/// POSTs to the plain call endpoint; returns the status and the SSE events (name, data).
pub async fn plain_call(
    app: &TestApp,
    path: &str,
    body: &str,
) -> (u16, Vec<(String, Value)>, Value) {
    let mut resp = http_client()
        .post(app.url(path))
        .insert_header(("Content-Type", "application/json"))
        .send_body(body.to_string())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let is_sse = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"));
    if !is_sse {
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        return (status, vec![], v);
    }
    let mut events = Vec::new();
    let mut stream = resp.eventsource();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("event in time")
    {
        let ev = ev.unwrap();
        if ev.data.is_empty() {
            continue;
        }
        let done = ev.event == "result" || ev.event == "error";
        events.push((ev.event, serde_json::from_str(&ev.data).unwrap()));
        if done {
            break;
        }
    }
    (status, events, Value::Null)
}

#[actix_web::test]
async fn plain_call_streams_progress_then_the_result() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let (status, events, _) = plain_call(&app, "/mcp/demo/sleep", r#"{"ms":300}"#).await;
    assert_eq!(status, 200);
    let (last, rest) = events.split_last().unwrap();
    assert_eq!(last.0, "result", "{events:?}");
    assert_eq!(last.1["result"]["content"][0]["text"], "slept 300 ms");
    let request_id = last.1["request_id"].as_str().unwrap();
    assert!(!request_id.is_empty());
    assert!(!rest.is_empty(), "no progress: {events:?}");
    for (name, data) in rest {
        assert_eq!(name, "progress");
        assert_eq!(data["request_id"], request_id);
        assert!(data["progress"].as_f64().is_some() && data.get("progressToken").is_none());
    }
}

#[actix_web::test]
async fn plain_call_rejections_404_400_503() {
    let api = Api::start().await;
    let broken = json!({ "id": "broken", "transport": "rest", "base_url": api.base, "openapi": "/nonexistent/petstore.json" });
    let fruits = fruits_def(&api);
    let app = spawn_app_with(move |s| {
        s.servers.push(serde_json::from_value(broken).unwrap());
        s.servers.push(serde_json::from_value(fruits).unwrap());
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    app.wait_ready("fruits", Duration::from_secs(10)).await;
    let (s, _, body) = plain_call(&app, "/mcp/nope/echo", "{}").await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (s, _, body) = plain_call(&app, "/mcp/demo/nope", "{}").await;
    assert_eq!(s, 404, "{body}");
    let (s, _, body) = plain_call(&app, "/mcp/demo/add", r#"{"a":"x","b":1}"#).await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_arguments");
    assert_eq!(body["error"]["violations"][0]["path"], "/a");
    let (s, _, _) = plain_call(&app, "/mcp/demo/add", "[1]").await;
    assert_eq!(s, 400);
    let (s, _, body) = plain_call(&app, "/mcp/broken/anything", "{}").await;
    assert_eq!(s, 503, "{body}");
    // A REST tool through the plain endpoint.
    let (s, events, _) = plain_call(&app, "/mcp/fruits/get_fruit", r#"{"name":"plum"}"#).await;
    assert_eq!(s, 200);
    let text = events.last().unwrap().1["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("plum"), "{text}");
    // A failed call ends with an `error` event.
    let (_, events, _) = plain_call(&app, "/mcp/fruits/slow", "{}").await;
    let (name, data) = events.last().unwrap();
    assert_eq!(name, "error", "{events:?}");
    assert_eq!(data["error"]["code"], -32001);
    assert!(data["request_id"].is_string());
    // Host checks apply as on /mcp.
    let resp = http_client()
        .post(app.url("/mcp/demo/add"))
        .insert_header(("Host", "evil.example.com"))
        .send_body(r#"{"a":1,"b":2}"#)
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
}
