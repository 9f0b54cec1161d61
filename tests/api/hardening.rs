//! Hardening (issue 10, item 3): each test here fails if its protection is removed. The SSRF
//! policy is tested in `admin.rs`, secrets in logs in `binary.rs`, constant-time comparison
//! in `src/security.rs`. The upstream here is a real Streamable HTTP server on loopback that
//! records every header it is sent.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::*;

const CLIENT_KEY: &str = "client-secret-key-0123456789";
const UPSTREAM_CREDENTIAL: &str = "Bearer upstream-credential-from-the-definition";
/// One event bigger than the hub's per-event limit (16 MiB).
const HUGE_EVENT_BYTES: usize = 17 * 1024 * 1024;

/// Every header value of every request the upstream got.
#[derive(Default)]
struct Seen(Mutex<Vec<Vec<(String, String)>>>);

/// A minimal Streamable HTTP MCP server: tools `echo` and `huge` (one SSE event past the
/// hub's limit).
struct Upstream {
    url: String,
    seen: Arc<Seen>,
}

async fn mcp(req: HttpRequest, body: web::Bytes, seen: web::Data<Seen>) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).to_string(),
            )
        })
        .collect();
    seen.0.lock().unwrap().push(headers);
    if req.method() != actix_web::http::Method::POST {
        return HttpResponse::MethodNotAllowed().finish();
    }
    let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(id) = msg.get("id").cloned() else {
        return HttpResponse::Accepted().finish();
    };
    let result = match msg["method"].as_str().unwrap_or("") {
        "initialize" => json!({
            "protocolVersion": "2025-06-18",
            "capabilities": { "tools": {} },
            "serverInfo": { "name": "recorder", "version": "1" }
        }),
        "tools/list" => json!({ "tools": [
            { "name": "echo", "inputSchema": { "type": "object" } },
            { "name": "huge", "inputSchema": { "type": "object" } }
        ] }),
        "tools/call" if msg["params"]["name"] == "huge" => {
            let mut body = String::with_capacity(HUGE_EVENT_BYTES + 16);
            body.push_str("data: ");
            body.push_str(&"x".repeat(HUGE_EVENT_BYTES));
            body.push_str("\n\n");
            return HttpResponse::Ok()
                .content_type("text/event-stream")
                .insert_header(("Mcp-Session-Id", "s1"))
                .body(body);
        }
        "tools/call" => json!({ "content": [{ "type": "text", "text": "echoed" }] }),
        _ => json!({}),
    };
    HttpResponse::Ok()
        .insert_header(("Mcp-Session-Id", "s1"))
        .json(json!({ "jsonrpc": "2.0", "id": id, "result": result }))
}

impl Upstream {
    fn start() -> Upstream {
        let seen = Arc::new(Seen::default());
        let data = web::Data::from(seen.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(mcp))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        actix_rt::spawn(server.run());
        Upstream {
            url: format!("http://127.0.0.1:{port}/mcp"),
            seen,
        }
    }

    fn def(&self) -> mcp_hub_actors::registry::ServerDef {
        serde_json::from_value(json!({
            "id": "rec", "transport": "streamable_http", "url": self.url,
            "headers": { "Authorization": UPSTREAM_CREDENTIAL }
        }))
        .unwrap()
    }
}

async fn hub_with(upstream: &Upstream) -> TestApp {
    let def = upstream.def();
    let app = spawn_app_with(move |s| {
        s.auth.api_keys = vec![mcp_hub::config::ApiKey {
            user: "alice".into(),
            key_sha256: mcp_hub::auth::hash_key(CLIENT_KEY),
        }];
        s.servers.push(def);
    })
    .await;
    app.wait_ready("rec", Duration::from_secs(10)).await;
    app
}

#[actix_web::test]
async fn a_clients_authorization_never_reaches_the_upstream() {
    let upstream = Upstream::start();
    let app = hub_with(&upstream).await;
    for url in [app.url("/mcp"), app.url("/mcp/rec")] {
        let mut c = McpClient::connect_as(url.clone(), Some(CLIENT_KEY)).await;
        let name = if url.ends_with("/rec") {
            "echo"
        } else {
            "rec__echo"
        };
        let r = c
            .request("tools/call", json!({ "name": name, "arguments": {} }))
            .await;
        assert_eq!(
            r.response["result"]["content"][0]["text"], "echoed",
            "{r:?}"
        );
    }
    let plain = http_client()
        .post(app.url("/mcp/rec/echo"))
        .bearer_auth(CLIENT_KEY)
        .send_json(&json!({}))
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    let seen = upstream.seen.0.lock().unwrap().clone();
    let calls = seen.len();
    assert!(
        calls >= 4,
        "handshake and calls reached the upstream: {calls}"
    );
    for headers in &seen {
        let auth: Vec<&str> = headers
            .iter()
            .filter(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            auth,
            [UPSTREAM_CREDENTIAL],
            "the upstream sees the definition's credential, once"
        );
        assert!(
            headers.iter().all(|(_, v)| !v.contains(CLIENT_KEY)),
            "the client's key reached the upstream: {headers:?}"
        );
    }
}

#[actix_web::test]
async fn an_upstream_sse_event_past_the_limit_fails_the_call_clearly() {
    let upstream = Upstream::start();
    let app = hub_with(&upstream).await;
    let mut c = McpClient::connect_as(app.url("/mcp/rec"), Some(CLIENT_KEY)).await;
    let r = c
        .request("tools/call", json!({ "name": "huge", "arguments": {} }))
        .await;
    let err = &r.response["error"];
    assert_eq!(err["code"], -32603, "{err}");
    let detail = err["data"]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("an SSE event over 16777216 bytes"),
        "names the limit: {err}"
    );
    let r = c
        .request("tools/call", json!({ "name": "echo", "arguments": {} }))
        .await;
    assert_eq!(
        r.response["result"]["content"][0]["text"], "echoed",
        "the server keeps serving: {r:?}"
    );
}

#[actix_web::test]
async fn every_transport_checks_host_and_origin() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let client = http_client();
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } });
    let endpoints: [(&str, &str); 12] = [
        ("POST", "/mcp"),
        ("GET", "/mcp"),
        ("DELETE", "/mcp"),
        ("POST", "/mcp/demo"),
        ("GET", "/mcp/demo"),
        ("POST", "/mcp/demo/echo"),
        ("GET", "/sse"),
        ("GET", "/sse/demo"),
        ("POST", "/messages?sessionId=x"),
        ("POST", "/messages/demo?sessionId=x"),
        ("GET", "/api/servers"),
        ("GET", "/metrics"),
    ];
    for (method, path) in endpoints {
        for bad in [
            ("Host", "evil.example.com"),
            ("Origin", "http://evil.example.com"),
        ] {
            let req = match method {
                "GET" => client.get(app.url(path)),
                "DELETE" => client.delete(app.url(path)),
                _ => client.post(app.url(path)),
            }
            .insert_header(("Accept", "application/json, text/event-stream"))
            .insert_header(("Mcp-Session-Id", "x"))
            .insert_header(bad);
            let status = if method == "POST" {
                req.send_json(&init).await
            } else {
                req.send().await
            }
            .unwrap()
            .status();
            assert_eq!(status, 403, "{method} {path} with {bad:?}");
        }
    }
}

#[actix_web::test]
async fn deeply_nested_json_and_oversized_headers_are_refused_cleanly() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    // 100,000 levels: past serde_json's recursion limit (128) long before the stack.
    let depth = 100_000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"demo__echo","arguments":{{"text":{nested}}}}}}}"#
    );
    let r = c.send_raw(body.clone().into_bytes(), |_| None).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.response["error"]["code"], -32700, "{r:?}");
    // The same on the plain call endpoint and the legacy transport.
    let plain = http_client()
        .post(app.url("/mcp/demo/echo"))
        .content_type("application/json")
        .send_body(format!(r#"{{"text":{nested}}}"#))
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    // A header block past the server's limit: refused before any handler runs.
    let resp = http_client()
        .post(app.url("/mcp"))
        .insert_header(("X-Padding", "p".repeat(64 * 1024)))
        .send_json(&json!({}))
        .await;
    if let Ok(resp) = resp {
        assert!(
            resp.status() == 431 || resp.status() == 400,
            "{}",
            resp.status()
        );
    }
    // Still serving.
    let r = c
        .request(
            "tools/call",
            json!({ "name": "demo__echo", "arguments": { "text": "ok" } }),
        )
        .await;
    assert_eq!(text_of(&r.response["result"]), "ok", "{r:?}");
}

#[actix_web::test]
async fn client_input_never_changes_what_a_stdio_server_runs() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let pid = app.pid("demo");
    let before = app
        .state
        .registry
        .send(mcp_hub_actors::registry::Get("demo".into()))
        .await
        .unwrap();
    let mut c = McpClient::connect(app.url("/mcp")).await;
    // Fields named like a definition's, everywhere a client can put them.
    let hostile = json!({ "command": "/bin/sh", "args": ["-c", "touch /tmp/pwned"], "env": { "LD_PRELOAD": "/tmp/x.so" }, "cwd": "/" });
    let r = c
        .request(
            "tools/call",
            json!({ "name": "demo__echo", "arguments": { "text": "hi", "command": "/bin/sh" }, "_meta": hostile }),
        )
        .await;
    assert!(r.response.get("result").is_some() || r.response.get("error").is_some());
    let _ = c.request("demo/configure", hostile.clone()).await;
    let _ = c
        .request(
            "tools/call",
            json!({ "name": "evil__run", "arguments": hostile }),
        )
        .await;
    // A client cannot create a server by naming one.
    let mut stranger = McpClient::new(app.url("/mcp/evil"));
    assert_eq!(
        stranger
            .request("initialize", json!({ "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": hostile }))
            .await
            .status,
        404
    );
    let plain = http_client()
        .post(app.url("/mcp/evil/run"))
        .send_json(&hostile)
        .await
        .unwrap();
    assert_eq!(plain.status(), 404);
    let after = app
        .state
        .registry
        .send(mcp_hub_actors::registry::Get("demo".into()))
        .await
        .unwrap();
    assert_eq!(before, after, "the definition is unchanged");
    assert_eq!(app.pid("demo"), pid, "the same child runs");
    let ids: Vec<String> = app
        .state
        .registry
        .send(mcp_hub_actors::registry::List)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(ids, ["demo"]);
}

// ---- arguments size limit (limits.max_arguments_bytes) ---------------------------------

#[actix_web::test]
async fn tools_call_arguments_past_the_limit_get_32602_and_never_reach_the_upstream() {
    let app = spawn_app_with(|s| {
        s.servers = vec![demo_stdio("demo")];
        s.limits.max_arguments_bytes = 1024;
    })
    .await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let small = "x".repeat(900);
    assert_eq!(
        text_of(&c.call_tool("demo__echo", json!({ "text": small })).await),
        small
    );
    let big = "x".repeat(2000);
    let r = c
        .request(
            "tools/call",
            json!({ "name": "demo__echo", "arguments": { "text": big } }),
        )
        .await;
    let err = &r.response["error"];
    assert_eq!(err["code"], -32602, "{r:?}");
    assert_eq!(err["data"]["limit_bytes"], 1024, "{r:?}");
    let size = err["data"]["size_bytes"].as_u64().unwrap();
    assert_eq!(
        size as usize,
        json!({ "text": big }).to_string().len(),
        "{r:?}"
    );
    assert!(
        err["data"]["hint"]
            .as_str()
            .unwrap()
            .contains("max_arguments_bytes"),
        "{r:?}"
    );
    // The plain call endpoint (POST /mcp/{server}/{tool}) has the same limit: its body is
    // the arguments.
    let resp = http_client()
        .post(app.url("/mcp/demo/echo"))
        .send_json(&json!({ "text": big }))
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
}
