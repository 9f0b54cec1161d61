//! The admin API: registration that takes effect at once, validation that names the field,
//! authentication, persistence across restarts.

use actix_web::test::{call_service, init_service, TestRequest};
use actix_web::App;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::helpers::*;

#[actix_web::test]
async fn a_registered_http_upstream_is_callable_within_a_second() {
    let app = spawn_app().await;
    let upstream = DemoHttp::start();
    let client = http_client();
    let started = Instant::now();
    let resp = client
        .post(app.url("/api/servers/remote"))
        .send_json(&json!({ "transport": "streamable_http", "url": upstream.url }))
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let mut c = McpClient::connect(app.url("/mcp")).await;
    loop {
        let r = c
            .request(
                "tools/call",
                json!({ "name": "remote__echo", "arguments": { "text": "hi" } }),
            )
            .await;
        if r.response.get("result").is_some() {
            assert_eq!(text_of(&r.response["result"]), "hi");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not callable after 1 s: {r:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");

    // Visible with runtime status, then removable.
    let mut got = client
        .get(app.url("/api/servers/remote"))
        .send()
        .await
        .unwrap();
    let body: Value = got.json().await.unwrap();
    assert_eq!(body["runtime"]["status"], "ready", "{body}");
    let mut tools = client
        .get(app.url("/api/servers/remote/tools"))
        .send()
        .await
        .unwrap();
    let tools: Value = tools.json().await.unwrap();
    assert!(tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "echo"));
    assert_eq!(
        client
            .delete(app.url("/api/servers/remote"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        client
            .get(app.url("/api/servers/remote"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let r = c
        .request(
            "tools/call",
            json!({ "name": "remote__echo", "arguments": { "text": "hi" } }),
        )
        .await;
    assert_eq!(r.response["error"]["code"], -32602, "{r:?}");
}

#[actix_web::test]
async fn bad_definitions_get_400_naming_the_field() {
    let app = spawn_app().await;
    let client = http_client();
    for (body, field) in [
        (json!({ "transport": "stdio", "comand": "x" }), "comand"),
        (json!({ "transport": "streamable_http" }), "url"),
        (
            json!({ "transport": "stdio", "command": "x", "timeout_ms": "soon" }),
            "timeout_ms",
        ),
        (json!({ "transport": "carrier-pigeon" }), "transport"),
        (
            json!({ "id": "other", "transport": "stdio", "command": "x" }),
            "id",
        ),
        // One child process is one upstream session: it cannot be split per user or client.
        (
            json!({ "transport": "stdio", "command": "x", "session_mode": "per_user" }),
            "session_mode",
        ),
        (
            json!({ "transport": "sse", "url": "http://127.0.0.1:1/sse", "session_mode": "per_client" }),
            "session_mode",
        ),
        (
            json!({ "transport": "streamable_http", "url": "http://127.0.0.1:1/mcp", "session_mode": "per_call" }),
            "session_mode",
        ),
    ] {
        let mut resp = client
            .post(app.url("/api/servers/bad"))
            .send_json(&body)
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["field"], field, "{body} -> {err}");
    }
    let mut resp = client
        .post(app.url("/api/servers/bad"))
        .insert_header(("content-type", "application/json"))
        .send_body("{oops")
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{err}"
    );
    assert!(
        err["error"].get("field").is_none(),
        "a syntax error names no field: {err}"
    );
    let mut resp = client
        .post(app.url("/api/servers/slow"))
        .send_json(&json!({ "transport": "stdio", "command": "x", "timeout_ms": 60000 }))
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        400,
        "server timeout must be inside the hub timeout"
    );
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["field"], "timeout_ms");
    let forged = client
        .get(app.url("/api/servers"))
        .insert_header(("Host", "evil.example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let resp = client
        .post(app.url("/api/servers/has_underscore"))
        .send_json(&json!({ "transport": "stdio", "command": "x" }))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[actix_web::test]
async fn admin_needs_a_token_or_a_loopback_caller() {
    // Without a token: loopback is served, a remote peer is refused.
    let app = spawn_app().await;
    let service = init_service(
        App::new()
            .app_data(app.state.clone())
            .configure(mcp_hub::routes::configure),
    )
    .await;
    let remote = TestRequest::get()
        .uri("/api/servers")
        .peer_addr("10.1.2.3:4000".parse().unwrap())
        .to_request();
    assert_eq!(call_service(&service, remote).await.status(), 401);
    let local = TestRequest::get()
        .uri("/api/servers")
        .peer_addr("127.0.0.1:4000".parse().unwrap())
        .to_request();
    assert_eq!(call_service(&service, local).await.status(), 200);

    // With a token: it is required, even from loopback.
    let app = spawn_app_with(|s| s.admin_token = Some("0123456789abcdef-secret".into())).await;
    let client = http_client();
    assert_eq!(
        client
            .get(app.url("/api/servers"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .get(app.url("/api/servers"))
            .bearer_auth("wrong-token-wrong-token")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .get(app.url("/api/servers"))
            .bearer_auth("0123456789abcdef-secret")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[actix_web::test]
async fn the_registry_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir.path(), |_| {}).await;
    let client = http_client();
    let def = json!({ "transport": "streamable_http", "url": "http://127.0.0.1:9/mcp", "headers": { "Authorization": "Bearer upstream-secret" }, "timeout_ms": 5000 });
    assert_eq!(
        client
            .post(app.url("/api/servers/kept"))
            .send_json(&def)
            .await
            .unwrap()
            .status(),
        201
    );
    app.stop().await;

    let app = spawn_app_in(dir.path(), |_| {}).await;
    let mut resp = client
        .get(app.url("/api/servers/kept"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["url"], "http://127.0.0.1:9/mcp");
    assert_eq!(body["timeout_ms"], 5000);
    assert_eq!(
        body["headers"]["Authorization"], "***",
        "secrets are redacted: {body}"
    );
    let stored = std::fs::read_to_string(dir.path().join("registry.json")).unwrap();
    assert!(
        stored.contains("upstream-secret"),
        "the store keeps the real value"
    );
}

/// POSTs a definition; returns the status and the JSON body.
async fn register(app: &TestApp, id: &str, def: Value) -> (u16, Value) {
    let mut resp = http_client()
        .post(app.url(&format!("/api/servers/{id}")))
        .send_json(&def)
        .await
        .unwrap();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (resp.status().as_u16(), body)
}

#[actix_web::test]
async fn upstream_urls_are_checked_against_the_ssrf_policy() {
    let app = spawn_app().await;
    let http = |url: &str| json!({ "transport": "streamable_http", "url": url });
    // Cloud metadata, however it is written: 400 naming the field and the rule.
    let (status, body) = register(&app, "meta", http("http://169.254.169.254/latest")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "url", "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("169.254.169.254 is link-local (cloud metadata)")
            && msg.contains("security.upstreams.allow_link_local or allow_hosts"),
        "{msg}"
    );
    for url in [
        "http://2852039166/mcp",
        "http://[::ffff:169.254.169.254]/mcp",
        "http://metadata.google.internal./computeMetadata/v1/",
        "http://0.0.0.0:9/mcp",
    ] {
        let (status, body) = register(&app, "meta", http(url)).await;
        assert_eq!(
            (status, &body["error"]["field"]),
            (400, &json!("url")),
            "{url}: {body}"
        );
    }
    let spec = json!({ "transport": "rest", "openapi": "http://169.254.169.254/openapi.json" });
    let (status, body) = register(&app, "spec", spec).await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("openapi")),
        "{body}"
    );
    // Private ranges: refused by default...
    let private = http("http://10.0.0.5:9/mcp");
    let (status, body) = register(&app, "private", private.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("security.upstreams.allow_private"),
        "{body}"
    );
    // ...and nothing was stored.
    let resp = http_client()
        .get(app.url("/api/servers/private"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // ...accepted when the config allows them.
    let open = spawn_app_with(|s| s.security.upstreams.allow_private = true).await;
    let (status, body) = register(&open, "private", private).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = register(&open, "meta", http("http://169.254.169.254/")).await;
    assert_eq!(status, 400, "allow_private does not open link-local");
    let listed =
        spawn_app_with(|s| s.security.upstreams.allow_hosts = vec!["10.0.0.0/24".into()]).await;
    let (status, body) = register(&listed, "private", http("http://10.0.0.5:9/mcp")).await;
    assert_eq!(status, 201, "allow_hosts takes CIDRs: {body}");
}

#[actix_web::test]
async fn a_host_name_is_checked_again_at_connect_time_on_what_it_resolves_to() {
    // Only loopback is controllable offline: refuse it, and register a *name* for it. The
    // registration check cannot know where the name points; the connector's resolver does.
    let upstream = DemoHttp::start();
    let app = spawn_app_with(|s| s.security.upstreams.allow_loopback = false).await;
    let literal = upstream.url.clone();
    let (status, body) = register(
        &app,
        "literal",
        json!({ "transport": "streamable_http", "url": literal }),
    )
    .await;
    assert_eq!(
        status, 400,
        "an IP literal is refused at registration: {body}"
    );
    let named = upstream.url.replace("127.0.0.1", "localhost");
    let (status, body) = register(
        &app,
        "named",
        json!({ "transport": "streamable_http", "url": named }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let start = Instant::now();
    let reason = loop {
        let h = app.state.servers.get("named");
        let err = h.and_then(|h| {
            h.runtime
                .borrow()
                .last_error
                .as_ref()
                .map(|e| e.reason.clone())
        });
        if let Some(e) = err {
            break e;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no connect failure"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        reason.contains("localhost (") && reason.contains("is loopback"),
        "refused by the resolver, naming the address: {reason}"
    );
    let status = app
        .state
        .servers
        .get("named")
        .unwrap()
        .runtime
        .borrow()
        .status;
    assert_ne!(status, mcp_hub_actors::server::Status::Ready);
}
