//! The operator surface: `/metrics` (strict text format, counters that move by exactly the
//! calls made, Host check), `/api/stats`, `/api/sessions`, `/api/events`, restart,
//! `/api/openapi.json`, and the dashboard's assets.

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::helpers::*;

// ---- A strict Prometheus text-format (0.0.4) parser ---------------------------------------

type Labels = BTreeMap<String, String>;

struct Exposition {
    types: HashMap<String, String>,
    samples: Vec<(String, Labels, f64)>,
}

impl Exposition {
    /// The value of one series, if present.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|(n, l, _)| n == name && *l == want)
            .map(|(_, _, v)| *v)
    }

    fn series(&self, name: &str) -> Vec<&(String, Labels, f64)> {
        self.samples.iter().filter(|(n, _, _)| n == name).collect()
    }
}

fn valid_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        v => v.parse().ok(),
    }
}

/// Parses a whole exposition, panicking with the line on anything the format does not allow:
/// bad names, label syntax or escapes, values, a sample before its family's TYPE, a TYPE
/// declared twice, duplicate series, histograms whose +Inf bucket is not their count.
fn parse_exposition(text: &str) -> Exposition {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    let mut seen = HashSet::new();
    for (no, line) in text.lines().enumerate() {
        let ctx = format!("line {}: {line:?}", no + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name) = (parts.next().unwrap(), parts.next().expect(&ctx));
            match kw {
                "HELP" => assert!(valid_name(name, true), "{ctx}"),
                "TYPE" => {
                    let kind = parts.next().expect(&ctx);
                    assert!(valid_name(name, true), "{ctx}");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "{ctx}"
                    );
                    assert!(
                        types.insert(name.to_string(), kind.to_string()).is_none(),
                        "TYPE twice, {ctx}"
                    );
                }
                _ => {}
            }
            continue;
        }
        assert!(!line.starts_with('#'), "{ctx}");
        let name_end = line.find(['{', ' ']).expect(&ctx);
        let name = &line[..name_end];
        assert!(valid_name(name, true), "bad name, {ctx}");
        let mut rest = &line[name_end..];
        let mut labels = Labels::new();
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let close;
            loop {
                let (i, c) = chars.next().expect(&ctx);
                if c == '}' {
                    close = i;
                    break;
                }
                let eq = body[i..].find('=').expect(&ctx) + i;
                let key = &body[i..eq];
                assert!(valid_name(key, false), "bad label name {key:?}, {ctx}");
                while chars.peek().is_some_and(|(j, _)| *j < eq + 1) {
                    chars.next();
                }
                assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{ctx}");
                let mut value = String::new();
                loop {
                    match chars.next().expect(&ctx).1 {
                        '"' => break,
                        '\\' => match chars.next().expect(&ctx).1 {
                            'n' => value.push('\n'),
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            other => panic!("bad escape \\{other}, {ctx}"),
                        },
                        '\n' => panic!("raw newline, {ctx}"),
                        other => value.push(other),
                    }
                }
                assert!(
                    labels.insert(key.to_string(), value).is_none(),
                    "label twice, {ctx}"
                );
                match chars.peek().map(|(_, c)| *c) {
                    Some(',') => {
                        chars.next();
                    }
                    Some('}') => {}
                    other => panic!("expected , or }} after a label, got {other:?}, {ctx}"),
                }
            }
            rest = &body[close + 1..];
        }
        let mut fields = rest.split(' ').filter(|f| !f.is_empty());
        let value = parse_value(fields.next().expect(&ctx)).expect(&ctx);
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().expect(&ctx);
        }
        assert!(fields.next().is_none(), "trailing fields, {ctx}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                matches!(
                    types.get(base).map(String::as_str),
                    Some("histogram" | "summary")
                )
                .then_some(base)
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample before its # TYPE, {ctx}"
        );
        assert!(
            seen.insert((name.to_string(), labels.clone())),
            "duplicate series, {ctx}"
        );
        samples.push((name.to_string(), labels, value));
    }
    let exp = Exposition { types, samples };
    for (family, kind) in &exp.types {
        if kind != "histogram" {
            continue;
        }
        for (_, labels, count) in exp.series(&format!("{family}_count")) {
            let mut inf = labels.clone();
            inf.insert("le".into(), "+Inf".into());
            let bucket = exp
                .series(&format!("{family}_bucket"))
                .into_iter()
                .find(|(_, l, _)| *l == inf)
                .unwrap_or_else(|| panic!("{family} {labels:?} has no +Inf bucket"));
            assert_eq!(
                bucket.2, *count,
                "{family} {labels:?}: +Inf bucket != count"
            );
        }
    }
    exp
}

async fn scrape(app: &TestApp) -> Exposition {
    let mut resp = http_client().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let body = resp.body().limit(16 << 20).await.unwrap();
    parse_exposition(std::str::from_utf8(&body).unwrap())
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    let mut resp = http_client().get(app.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

#[test]
fn the_parser_is_strict() {
    let ok = "# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\\\"\\n\\\\\"} 3\n";
    assert_eq!(
        parse_exposition(ok).get("a_total", &[("k", "v\"\n\\")]),
        Some(3.0)
    );
    for bad in [
        "a 1\n",                                                    // no TYPE
        "# TYPE a gauge\na{k=v} 1\n",                               // unquoted label
        "# TYPE a gauge\na{k=\"v\"} x\n",                           // bad value
        "# TYPE a gauge\na 1\na 2\n",                               // duplicate series
        "# TYPE a gauge\n# TYPE a gauge\n",                         // TYPE twice
        "# TYPE a gauge\na{k=\"\\t\"} 1\n",                         // bad escape
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\n", // +Inf != count
    ] {
        assert!(
            std::panic::catch_unwind(|| parse_exposition(bad)).is_err(),
            "accepted {bad:?}"
        );
    }
}

// ---- /metrics ---------------------------------------------------------------------------

#[actix_web::test]
async fn metrics_parse_and_move_by_exactly_the_calls_made() {
    // Its own server id: the recorder is process-wide, and other tests call demo__echo at
    // the same time.
    let app = spawn_app_with(|s| s.servers.push(demo_stdio("opsmetrics"))).await;
    app.wait_ready("opsmetrics", Duration::from_secs(20)).await;
    let before = scrape(&app).await;
    let calls_ok = [
        ("server", "opsmetrics"),
        ("tool", "echo"),
        ("outcome", "ok"),
    ];
    let c0 = before.get("mcp_hub_calls_total", &calls_ok).unwrap_or(0.0);
    let h0 = before
        .get(
            "mcp_hub_call_duration_seconds_count",
            &[("server", "opsmetrics")],
        )
        .unwrap_or(0.0);

    let mut c = McpClient::connect(app.url("/mcp")).await;
    for i in 0..7 {
        let r = c
            .call_tool("opsmetrics__echo", json!({ "text": format!("m{i}") }))
            .await;
        assert_eq!(text_of(&r), format!("m{i}"));
    }
    let after = scrape(&app).await;
    assert_eq!(
        after.get("mcp_hub_calls_total", &calls_ok).unwrap() - c0,
        7.0
    );
    assert_eq!(
        after
            .get(
                "mcp_hub_call_duration_seconds_count",
                &[("server", "opsmetrics")]
            )
            .unwrap()
            - h0,
        7.0,
        "every forwarded call is timed"
    );
    assert_eq!(
        after
            .types
            .get("mcp_hub_call_duration_seconds")
            .map(String::as_str),
        Some("histogram")
    );
    assert_eq!(
        after.types.get("mcp_hub_calls_total").map(String::as_str),
        Some("counter")
    );

    // Scrape-time families: this hub's servers, read from their runtime status.
    for id in ["demo", "opsmetrics"] {
        assert_eq!(
            after.get(
                "mcp_hub_server_status",
                &[("server", id), ("status", "ready")]
            ),
            Some(1.0)
        );
        assert_eq!(
            after.get(
                "mcp_hub_server_status",
                &[("server", id), ("status", "failed")]
            ),
            Some(0.0)
        );
        assert_eq!(
            after.get("mcp_hub_server_in_flight", &[("server", id)]),
            Some(0.0)
        );
        assert_eq!(
            after.get("mcp_hub_server_queue_depth", &[("server", id)]),
            Some(0.0)
        );
        assert!(
            after
                .get("mcp_hub_server_tools", &[("server", id)])
                .unwrap()
                > 0.0
        );
        assert!(after
            .get("mcp_hub_server_restarts", &[("server", id)])
            .is_some());
    }
    assert_eq!(
        after.get("mcp_hub_servers", &[("status", "ready")]),
        Some(2.0)
    );
    assert_eq!(
        after.get("mcp_hub_redis_connected", &[("configured", "false")]),
        Some(0.0)
    );
    assert!(
        after
            .get("mcp_hub_sessions", &[("transport", "streamable_http")])
            .unwrap()
            >= 1.0
    );
    assert!(
        after
            .get("mcp_hub_worker_spawns_total", &[("server", "opsmetrics")])
            .unwrap()
            >= 1.0
    );
}

#[actix_web::test]
async fn metrics_refuse_a_forged_host_and_need_no_token() {
    let app = spawn_app_with(|s| s.admin_token = Some("ops-secret-token-123".into())).await;
    let client = http_client();
    let forged = client
        .get(app.url("/metrics"))
        .insert_header(("Host", "evil.example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let rebinding = client
        .get(app.url("/metrics"))
        .insert_header(("Origin", "http://evil.example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(rebinding.status(), 403);
    // Prometheus sends no token; the admin API still wants one.
    scrape(&app).await;
    for path in [
        "/api/stats",
        "/api/sessions",
        "/api/events",
        "/api/openapi.json",
    ] {
        let resp = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{path}");
    }
    let resp = client
        .get(app.url("/api/stats"))
        .insert_header(("Authorization", "Bearer ops-secret-token-123"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

// ---- /api/stats, /api/sessions ----------------------------------------------------------

#[actix_web::test]
async fn stats_count_servers_sessions_and_calls() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(20)).await;
    let disabled = json!({ "transport": "stdio", "command": "@self", "args": ["demo-server"], "enabled": false });
    let resp = http_client()
        .post(app.url("/api/servers/off"))
        .send_json(&disabled)
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let mut c = McpClient::connect(app.url("/mcp")).await;
    c.call_tool("demo__echo", json!({ "text": "s" })).await;

    let s = get_json(&app, "/api/stats").await;
    assert_eq!(s["servers"]["total"], 2, "{s}");
    assert_eq!(s["servers"]["running"], 1, "{s}");
    assert_eq!(s["servers"]["by_status"]["ready"], 1, "{s}");
    assert_eq!(s["servers"]["by_status"]["stopped"], 1, "{s}");
    assert_eq!(s["sessions"]["total"], 1, "{s}");
    let calls = &s["calls"];
    assert!(calls["total"].as_u64().unwrap() >= 1, "{s}");
    assert!(calls["errors"].as_u64().is_some(), "{s}");
    assert_eq!(calls["in_flight"], 0, "{s}");
    let demo = &calls["by_server"]["demo"];
    assert!(demo["calls"].as_u64().unwrap() >= 1, "{s}");
    assert!(demo["mean_latency_ms"].as_f64().unwrap() > 0.0, "{s}");

    let nodes = get_json(&app, "/api/nodes").await;
    assert_eq!(nodes["shared"], false);
    assert_eq!(nodes["nodes"][0]["local"], true);
    assert_eq!(nodes["nodes"][0]["sessions"], 1);
}

#[actix_web::test]
async fn sessions_are_counted_by_user_and_transport_without_ids() {
    let app = spawn_app().await;
    let a = McpClient::connect(app.url("/mcp")).await;
    let b = McpClient::connect(app.url("/mcp")).await;
    let mut legacy = open_sse(&app.url("/sse"), None).await;
    let endpoint = legacy.next().await.unwrap();
    assert_eq!(endpoint.event, "endpoint");

    let s = get_json(&app, "/api/sessions").await;
    assert_eq!(s["sessions"], 3, "{s}");
    assert_eq!(s["by_transport"]["streamable_http"], 2, "{s}");
    assert_eq!(s["by_transport"]["sse"], 1, "{s}");
    assert_eq!(s["connected"], 1, "only the legacy stream is attached: {s}");
    assert_eq!(s["unanswered"], 0, "{s}");
    assert!(s["log_events"].as_u64().is_some() && s["log_bytes"].as_u64().is_some());
    assert!(
        s["by_protocol_version"]["2025-11-25"].as_u64().unwrap() >= 2,
        "{s}"
    );
    let users = s["by_user"].as_array().unwrap();
    assert_eq!(users.len(), 1, "{s}");
    assert_eq!(users[0]["user"], "anonymous");
    assert_eq!(users[0]["sessions"], 3);
    assert_eq!(users[0]["by_transport"]["sse"], 1);
    let text = s.to_string();
    for id in [a.session.as_deref(), b.session.as_deref()] {
        assert!(!text.contains(id.unwrap()), "session id leaked: {text}");
    }
    assert!(!endpoint.data.is_empty() && !text.contains("sessionId"));
    drop(legacy);
}

// ---- restart and /api/events ------------------------------------------------------------

#[actix_web::test]
async fn restart_answers_when_the_new_worker_is_ready() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(20)).await;
    let pid = app.pid("demo").unwrap();
    let mut resp = http_client()
        .post(app.url("/api/servers/demo/restart"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], "demo");
    assert_eq!(body["runtime"]["status"], "ready", "{body}");
    assert_eq!(body["runtime"]["restarts"], 1, "{body}");
    assert_ne!(body["runtime"]["pid"], json!(pid), "{body}");
    // Callable at once.
    let mut c = McpClient::connect(app.url("/mcp")).await;
    assert_eq!(
        text_of(&c.call_tool("demo__echo", json!({ "text": "after" })).await),
        "after"
    );
    let mut missing = http_client()
        .post(app.url("/api/servers/nope/restart"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let err: Value = missing.json().await.unwrap();
    assert_eq!(err["error"]["code"], "not_found");
}

#[actix_web::test]
async fn events_deliver_status_and_registry_changes() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(20)).await;
    let mut events = open_sse(&app.url("/api/events"), None).await;
    assert_eq!(events.status, 200);
    let first = events.next().await.unwrap();
    assert_eq!(first.event, "snapshot");
    let snap = first.json();
    assert_eq!(snap["servers"][0]["id"], "demo", "{snap}");
    assert_eq!(snap["servers"][0]["runtime"]["status"], "ready", "{snap}");

    // A status change: restart demo; the stream shows it with one more restart, ready again.
    let restart = http_client()
        .post(app.url("/api/servers/demo/restart"))
        .send()
        .await
        .unwrap();
    assert_eq!(restart.status(), 200);
    let ev = wait_event(&mut events, |ev| {
        let d = ev.json();
        ev.event == "server"
            && d["id"] == "demo"
            && d["runtime"]["restarts"] == 1
            && d["runtime"]["status"] == "ready"
    })
    .await;
    assert!(ev.json()["runtime"]["pid"].as_u64().is_some());

    // Registry changes: a new server appears (and becomes ready), a deleted one goes.
    let client = http_client();
    let resp = client
        .post(app.url("/api/servers/evt"))
        .send_json(&json!({ "transport": "stdio", "command": "@self", "args": ["demo-server"] }))
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    wait_event(&mut events, |ev| {
        ev.event == "server"
            && ev.json()["id"] == "evt"
            && ev.json()["runtime"]["status"] == "ready"
    })
    .await;
    let resp = client
        .delete(app.url("/api/servers/evt"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    wait_event(&mut events, |ev| {
        ev.event == "server_removed" && ev.json()["id"] == "evt"
    })
    .await;
}

async fn wait_event(events: &mut SseReader, want: impl Fn(&Ev) -> bool) -> Ev {
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < Duration::from_secs(20) {
        let ev = events
            .next_within(Duration::from_secs(20))
            .await
            .expect("event stream ended");
        if want(&ev) {
            return ev;
        }
        seen.push(format!("{} {}", ev.event, ev.data));
    }
    panic!("no matching event; saw {seen:#?}");
}

// ---- /api/openapi.json and /ui ----------------------------------------------------------

#[actix_web::test]
async fn openapi_describes_every_admin_route() {
    let app = spawn_app().await;
    let doc = get_json(&app, "/api/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/servers", &["get"][..]),
        ("/api/servers/{id}", &["get", "post", "delete"][..]),
        ("/api/servers/{id}/tools", &["get"][..]),
        ("/api/servers/{id}/restart", &["post"][..]),
        ("/api/stats", &["get"][..]),
        ("/api/sessions", &["get"][..]),
        ("/api/events", &["get"][..]),
        ("/api/nodes", &["get"][..]),
        ("/api/openapi.json", &["get"][..]),
        ("/metrics", &["get"][..]),
    ] {
        for m in methods {
            assert!(paths[path].get(*m).is_some(), "{m} {path} missing");
        }
    }
    // Every $ref resolves.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r.strip_prefix('#').expect("local refs only");
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }
    // The documented server shape covers what the API returns.
    let props = doc["components"]["schemas"]["ServerDef"]["properties"]
        .as_object()
        .unwrap();
    let listed = get_json(&app, "/api/servers").await;
    for key in listed["servers"][0].as_object().unwrap().keys() {
        assert!(
            key == "runtime" || props.contains_key(key),
            "{key} undocumented"
        );
    }
    let runtime = doc["components"]["schemas"]["RuntimeStatus"]["properties"]
        .as_object()
        .unwrap();
    app.wait_ready("demo", Duration::from_secs(20)).await;
    let demo = get_json(&app, "/api/servers/demo").await;
    for key in demo["runtime"].as_object().unwrap().keys() {
        assert!(runtime.contains_key(key), "runtime.{key} undocumented");
    }
    let nodes_schema = &doc["paths"]["/api/nodes"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    let node_props = nodes_schema["properties"]["nodes"]["items"]["properties"]
        .as_object()
        .unwrap();
    let nodes = get_json(&app, "/api/nodes").await;
    for key in nodes.as_object().unwrap().keys() {
        assert!(
            nodes_schema["properties"].get(key).is_some(),
            "nodes.{key} undocumented"
        );
    }
    for key in nodes["nodes"][0].as_object().unwrap().keys() {
        assert!(node_props.contains_key(key), "node.{key} undocumented");
    }
}

#[actix_web::test]
async fn the_dashboard_is_served_from_the_binary() {
    let app = spawn_app().await;
    let client = http_client();
    let mut page = client.get(app.url("/ui")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers();
    assert!(h
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = String::from_utf8(page.body().await.unwrap().to_vec()).unwrap();
    assert!(html.contains("<title>mcp-hub dashboard</title>"), "{html}");
    for (path, ct) in [
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        let resp = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let got = resp
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(got.starts_with(ct), "{path}: {got}");
        assert!(html.contains(path), "page does not load {path}");
    }
    let forged = client
        .get(app.url("/ui"))
        .insert_header(("Host", "evil.example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
}
