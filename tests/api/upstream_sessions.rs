//! Upstream session reuse by `session_mode` (issue 5, item 6): `per_user` gives each API-key
//! user one upstream session (shared by that user's client sessions), `per_client` one per
//! client session, closed with it. Counted on a real Streamable HTTP upstream (the demo
//! server over HTTP: `initializes` and live `sessions` in its `/admin/stats`), and how many
//! times one call re-initializes an upstream that keeps forgetting its sessions.

use futures_util::future::join_all;
use mcp_hub_actors::registry::SessionMode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::helpers::*;

const ALICE: &str = "alice-key-0123456789";
const BOB: &str = "bob-key-0123456789";

fn with_keys(s: &mut mcp_hub::config::Settings) {
    use mcp_hub::config::ApiKey;
    s.auth.api_keys = [("alice", ALICE), ("bob", BOB)]
        .into_iter()
        .map(|(user, key)| ApiKey {
            user: user.into(),
            key_sha256: mcp_hub::auth::hash_key(key),
        })
        .collect();
}

async fn echo(c: &mut McpClient, text: &str) {
    assert_eq!(
        text_of(&c.call_tool("up__echo", json!({ "text": text })).await),
        text
    );
}

/// Waits until the upstream's stats satisfy `ok`; returns the last stats.
async fn stats_until(upstream: &DemoHttp, ok: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = upstream.stats().await;
        if ok(&stats) || Instant::now() > until {
            return stats;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn per_user_gives_each_user_one_upstream_session_shared_by_their_client_sessions() {
    let upstream = DemoHttp::start();
    let url = upstream.url.clone();
    let app = spawn_app_with(move |s| {
        with_keys(s);
        s.servers = vec![http_def("up", &url)];
        assert_eq!(
            s.servers[0].session_mode(),
            SessionMode::PerUser,
            "the default"
        );
    })
    .await;
    app.wait_ready("up", Duration::from_secs(10)).await;
    // Three client sessions each for alice and bob, calling at once.
    let calls = [ALICE, BOB].into_iter().flat_map(|key| {
        let url = app.url("/mcp");
        (0..3).map(move |i| {
            let url = url.clone();
            async move {
                let mut c = McpClient::connect_as(url, Some(key)).await;
                for j in 0..3 {
                    echo(&mut c, &format!("{key} {i} {j}")).await;
                }
            }
        })
    });
    join_all(calls).await;
    let stats = upstream.stats().await;
    assert_eq!(
        stats["initializes"], 3,
        "the handshake's session, then one per user (not per client session): {stats}"
    );
    assert_eq!(stats["sessions"], 3, "{stats}");
    // Anonymous callers are one user: they share the handshake's session.
    let mut anon = McpClient::connect(app.url("/mcp")).await;
    echo(&mut anon, "anonymous").await;
    assert_eq!(upstream.stats().await["initializes"], 3);
}

#[actix_web::test]
async fn per_client_gives_each_client_session_its_own_upstream_session_closed_with_it() {
    let upstream = DemoHttp::start();
    let url = upstream.url.clone();
    let app = spawn_app_with(move |s| {
        with_keys(s);
        let mut def = http_def("up", &url);
        def.session_mode = Some(SessionMode::PerClient);
        s.servers = vec![def];
    })
    .await;
    app.wait_ready("up", Duration::from_secs(10)).await;
    let mut a = McpClient::connect_as(app.url("/mcp"), Some(ALICE)).await;
    let mut b = McpClient::connect_as(app.url("/mcp"), Some(ALICE)).await;
    echo(&mut a, "a1").await;
    echo(&mut b, "b1").await;
    echo(&mut a, "a2").await;
    echo(&mut b, "b2").await;
    let stats = upstream.stats().await;
    assert_eq!(
        stats["initializes"], 3,
        "the handshake's session and one per client session: {stats}"
    );
    assert_eq!(stats["sessions"], 3, "{stats}");
    // Closing a client session ends (DELETE) its upstream session, and only that one.
    let deleted = http_client()
        .delete(app.url("/mcp"))
        .insert_header(("Mcp-Session-Id", a.session.clone().unwrap()))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let stats = stats_until(&upstream, |s| s["sessions"] == 2).await;
    assert_eq!(
        stats["sessions"], 2,
        "a's upstream session is gone: {stats}"
    );
    echo(&mut b, "b3").await;
    assert_eq!(upstream.stats().await["initializes"], 3);
}

#[actix_web::test]
async fn per_user_sessions_past_the_cap_are_refused_and_idle_ones_closed() {
    let upstream = DemoHttp::start();
    let url = upstream.url.clone();
    let app = spawn_app_with(move |s| {
        with_keys(s);
        s.servers = vec![http_def("up", &url)];
        s.limits.upstream_sessions_per_server = 1;
        s.sessions.upstream_idle_ttl_secs = 1;
    })
    .await;
    app.wait_ready("up", Duration::from_secs(10)).await;
    let mut alice = McpClient::connect_as(app.url("/mcp"), Some(ALICE)).await;
    let mut bob = McpClient::connect_as(app.url("/mcp"), Some(BOB)).await;
    echo(&mut alice, "alice").await;
    let r = bob
        .request(
            "tools/call",
            json!({ "name": "up__echo", "arguments": { "text": "bob" } }),
        )
        .await;
    let err = &r.response["error"];
    assert_eq!(err["code"], -32000, "{r:?}");
    assert_eq!(err["message"], "Upstream session limit reached", "{r:?}");
    assert_eq!(err["data"]["limit"], 1, "{r:?}");
    // Alice's session goes idle and is closed (DELETE): bob's call then gets one.
    let stats = stats_until(&upstream, |s| s["sessions"] == 1).await;
    assert_eq!(stats["sessions"], 1, "alice's idle session closed: {stats}");
    echo(&mut bob, "bob").await;
}

/// A legacy Streamable HTTP upstream that "restarts" (forgets every session) each time a
/// `tools/call` reaches it while `restarts` is above zero, answering that call 404 as a
/// restarted server would. Counts `initialize`s.
async fn restarting_upstream(
    restarts: usize,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use actix_web::{web, HttpRequest, HttpResponse};
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    struct State {
        live: HashSet<String>,
        restarts: usize,
    }
    let state = Arc::new(Mutex::new(State {
        live: HashSet::new(),
        restarts,
    }));
    let inits = Arc::new(AtomicUsize::new(0));
    let counted = inits.clone();
    let url = serve_fake_mcp(move |req: HttpRequest, body: web::Json<Value>| {
        let state = state.clone();
        let inits = counted.clone();
        async move {
            let id = body["id"].clone();
            let method = body["method"].as_str().unwrap_or("").to_string();
            let mut st = state.lock().unwrap();
            if method == "initialize" {
                let n = inits.fetch_add(1, Ordering::SeqCst);
                let sid = format!("session-{n}");
                st.live.insert(sid.clone());
                return HttpResponse::Ok()
                    .insert_header(("mcp-session-id", sid))
                    .json(json!({ "jsonrpc": "2.0", "id": id, "result": {
                                "protocolVersion": "2025-06-18", "capabilities": { "tools": {} },
                                "serverInfo": { "name": "restarting", "version": "1" } } }));
            }
            let sid = req
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if sid.is_empty() {
                return HttpResponse::BadRequest().json(json!({ "jsonrpc": "2.0", "id": null,
                            "error": { "code": -32000, "message": "Mcp-Session-Id header is required" } }));
            }
            let gone = !st.live.contains(sid)
                || (method == "tools/call" && st.restarts > 0 && {
                    st.restarts -= 1;
                    st.live.clear();
                    true
                });
            if gone {
                return HttpResponse::NotFound().json(json!({ "jsonrpc": "2.0", "id": null,
                            "error": { "code": -32001, "message": "Session not found" } }));
            }
            let result = match method.as_str() {
                "tools/list" => json!({ "tools": [{ "name": "echo",
                            "inputSchema": { "type": "object" } }] }),
                "tools/call" => json!({ "content": [{ "type": "text",
                            "text": body["params"]["arguments"]["text"] }] }),
                _ if id.is_null() => return HttpResponse::Accepted().finish(),
                _ => json!({}),
            };
            HttpResponse::Ok().json(json!({ "jsonrpc": "2.0", "id": id, "result": result }))
        }
    });
    (url, inits)
}

#[actix_web::test]
async fn a_call_survives_an_upstream_that_restarts_again_while_it_retries() {
    let (url, inits) = restarting_upstream(2).await;
    let app = spawn_app_with(move |s| s.servers = vec![http_def("up", &url)]).await;
    app.wait_ready("up", Duration::from_secs(10)).await;
    let before = inits.load(std::sync::atomic::Ordering::SeqCst);
    let mut c = McpClient::connect(app.url("/mcp")).await;
    // The call meets a 404 on its first session and again on the fresh one.
    echo(&mut c, "twice restarted").await;
    let after = inits.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(after - before, 2, "one re-initialize per restart");
}

#[actix_web::test]
async fn an_upstream_that_forgets_every_session_fails_the_call_after_three_tries() {
    let (url, inits) = restarting_upstream(usize::MAX).await;
    let app = spawn_app_with(move |s| s.servers = vec![http_def("up", &url)]).await;
    app.wait_ready("up", Duration::from_secs(10)).await;
    let before = inits.load(std::sync::atomic::Ordering::SeqCst);
    let mut c = McpClient::connect(app.url("/mcp")).await;
    let r = c
        .request(
            "tools/call",
            json!({ "name": "up__echo", "arguments": { "text": "never" } }),
        )
        .await;
    assert!(
        r.response["error"]["data"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("HTTP 404")),
        "{r:?}"
    );
    let after = inits.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(after - before, 3, "bounded re-initializes");
}
