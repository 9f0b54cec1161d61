//! Many instances, one Redis: the registry is shared, changes propagate through pub/sub,
//! a reconcile heals what pub/sub missed, and a Redis outage (even one that loses all data)
//! costs no call and no registered server. Each test runs its own redis-server.

use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

/// A redis-server of the test's own, on a free loopback port, keeping nothing on disk.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = RedisServer {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts on the same port, empty.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it)");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn hub(redis: &RedisServer, prefix: &str) -> TestApp {
    let (url, prefix) = (redis.url(), prefix.to_string());
    spawn_app_with(move |s| {
        s.redis_url = Some(url);
        s.redis_prefix = prefix;
        s.reconcile_secs = 1;
        s.servers = vec![];
        // In-process instances share a pid: give each its own node id.
        s.node_id = Some(format!(
            "node-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
    })
    .await
}

/// Registers the stdio demo as server `shared` through `via`'s admin API and waits until
/// each of `ready_on` runs it.
async fn register_shared_demo(via: &TestApp, ready_on: &[&TestApp]) {
    let resp = http_client()
        .post(via.url("/api/servers/shared"))
        .send_json(&json!({ "transport": "stdio", "command": "@self", "args": ["demo-server"] }))
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    for app in ready_on {
        app.wait_ready("shared", Duration::from_secs(10)).await;
    }
}

fn prefix() -> String {
    format!("t{}:", uuid::Uuid::new_v4().simple())
}

async fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < within, "{what} not within {within:?}");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_web::test]
async fn a_server_registered_on_one_instance_is_callable_through_the_others() {
    let redis = RedisServer::start();
    let p = prefix();
    let (a, b, c) = (
        hub(&redis, &p).await,
        hub(&redis, &p).await,
        hub(&redis, &p).await,
    );
    let started = Instant::now();
    let resp = http_client()
        .post(a.url("/api/servers/shared"))
        .send_json(&json!({ "transport": "stdio", "command": "@self", "args": ["demo-server"] }))
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    for app in [&b, &c] {
        let mut client = McpClient::connect(app.url("/mcp")).await;
        loop {
            let r = client
                .request(
                    "tools/call",
                    json!({ "name": "shared__echo", "arguments": { "text": "everywhere" } }),
                )
                .await;
            if r.response.get("result").is_some() {
                assert_eq!(text_of(&r.response["result"]), "everywhere");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "not callable within 1 s: {r:?}"
            );
            actix_rt::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // A delete propagates too.
    assert_eq!(
        http_client()
            .delete(c.url("/api/servers/shared"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    wait_until("delete on A", Duration::from_secs(2), || {
        a.state.servers.get("shared").is_none()
    })
    .await;
}

#[actix_web::test]
async fn a_reconcile_heals_a_missed_event_and_a_restart_loses_nothing() {
    let redis = RedisServer::start();
    let p = prefix();
    let a = hub(&redis, &p).await;
    let b = hub(&redis, &p).await;
    // Written straight into Redis, no pub/sub event: only the reconcile can find it.
    let def = json!({ "version": 1, "def": { "id": "sneaky", "transport": "stdio", "command": "@self", "args": ["demo-server"] } });
    assert_eq!(
        redis.cli(&["HSET", &format!("{p}servers"), "sneaky", &def.to_string()]),
        "1"
    );
    for app in [&a, &b] {
        wait_until("reconcile", Duration::from_secs(3), || {
            app.state.servers.get("sneaky").is_some()
        })
        .await;
    }
    a.stop().await;
    let a2 = hub(&redis, &p).await;
    wait_until(
        "a restarted instance loads the shared registry",
        Duration::from_secs(2),
        || a2.state.servers.get("sneaky").is_some(),
    )
    .await;
}

#[actix_web::test]
async fn a_redis_outage_costs_no_call_and_no_registered_server() {
    let mut redis = RedisServer::start();
    let p = prefix();
    let a = hub(&redis, &p).await;
    let b = hub(&redis, &p).await;
    let client = http_client();
    let r = client
        .post(a.url("/api/servers/kept"))
        .send_json(&json!({ "transport": "stdio", "command": "@self", "args": ["demo-server"] }))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    b.wait_ready("kept", Duration::from_secs(10)).await;

    // Fifty client sessions, opened while Redis is up, spread over both instances.
    let mut clients = Vec::new();
    for i in 0..50 {
        let app = if i % 2 == 0 { &a } else { &b };
        clients.push(McpClient::connect(app.url("/mcp")).await);
    }
    redis.kill();
    // Known servers keep serving on every instance, to sessions opened before the outage
    // and to new ones.
    for app in [&a, &b] {
        clients.push(McpClient::connect(app.url("/mcp")).await);
    }
    let calls = clients
        .into_iter()
        .enumerate()
        .map(|(n, mut c)| async move {
            let mut failed = 0;
            for i in 0..4 {
                let r = c
                .request(
                    "tools/call",
                    json!({ "name": "kept__echo", "arguments": { "text": format!("{n}-{i}") } }),
                )
                .await;
                if text_of(&r.response["result"]) != format!("{n}-{i}") {
                    failed += 1;
                }
            }
            failed
        });
    let failures: usize = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .sum();
    assert_eq!(failures, 0, "calls keep succeeding while Redis is down");
    // Registry writes are refused, not dropped.
    let mut r = client
        .post(a.url("/api/servers/new"))
        .send_json(&json!({ "transport": "stdio", "command": "@self", "args": ["demo-server"] }))
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("redis"),
        "{body}"
    );

    // Redis comes back empty: the instances write their mirrors back.
    redis.restart();
    // A write racing the resync is refused rather than allowed to plant a stale epoch (which
    // once made every instance drop every other server).
    let early = client
        .post(a.url("/api/servers/early"))
        .send_json(&json!({ "transport": "stdio", "command": "@self", "args": ["demo-server"] }))
        .await
        .unwrap();
    assert!(
        matches!(early.status().as_u16(), 201 | 503),
        "{}",
        early.status()
    );
    wait_until("mirror written back", Duration::from_secs(8), || {
        redis.cli(&["HEXISTS", &format!("{p}servers"), "kept"]) == "1"
    })
    .await;
    let r = client
        .post(a.url("/api/servers/after"))
        .send_json(&json!({ "transport": "stdio", "command": "@self", "args": ["demo-server"] }))
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "writes work again");
    wait_until("B converges", Duration::from_secs(5), || {
        b.state.servers.get("after").is_some() && b.state.servers.get("kept").is_some()
    })
    .await;
    actix_rt::time::sleep(Duration::from_millis(1500)).await; // a couple more reconciles
    assert!(
        a.state.servers.get("kept").is_some() && b.state.servers.get("kept").is_some(),
        "nothing registered was lost"
    );
}

#[actix_web::test]
async fn export_then_import_round_trips_between_redis_and_the_file_store() {
    let redis = RedisServer::start();
    let p = prefix();
    let a = hub(&redis, &p).await;
    for (id, body) in [
        (
            "one",
            json!({ "transport": "stdio", "command": "@self", "args": ["demo-server"], "env": { "K": "v" } }),
        ),
        (
            "two",
            json!({ "transport": "streamable_http", "url": "http://127.0.0.1:9/mcp", "headers": { "Authorization": "Bearer s" }, "timeout_ms": 1000 }),
        ),
    ] {
        assert_eq!(
            http_client()
                .post(a.url(&format!("/api/servers/{id}")))
                .send_json(&body)
                .await
                .unwrap()
                .status(),
            201
        );
    }
    let run = |args: &[&str], env: &[(&str, String)]| {
        let mut cmd = Command::new(hub_bin());
        cmd.args(args).env_remove("REDIS_URL");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let from_redis = run(
        &["registry", "export"],
        &[
            ("REDIS_URL", redis.url()),
            ("MCP_HUB_REDIS_PREFIX", p.clone()),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.json");
    std::fs::write(&dump, &from_redis).unwrap();
    let state = dir.path().join("state").display().to_string();
    run(
        &["registry", "import", dump.to_str().unwrap()],
        &[("MCP_HUB_STATE_DIR", state.clone())],
    );
    let from_file = run(&["registry", "export"], &[("MCP_HUB_STATE_DIR", state)]);
    let (x, y): (Value, Value) = (
        serde_json::from_str(&from_redis).unwrap(),
        serde_json::from_str(&from_file).unwrap(),
    );
    let ids: Vec<&str> = x["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"one") && ids.contains(&"two"), "{ids:?}");
    assert_eq!(x, y, "the round trip is exact");
    assert_eq!(
        x["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "two")
            .unwrap()["headers"]["Authorization"],
        "Bearer s",
        "exports keep real values"
    );
}

async fn node_ids(app: &TestApp) -> Vec<String> {
    let mut resp = http_client()
        .get(app.url("/api/nodes"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect()
}

fn binary_hub(redis: &RedisServer, prefix: &str, node: &str) -> Child {
    Command::new(hub_bin())
        .env("MCP_HUB_LISTEN", "127.0.0.1:0")
        .env("MCP_HUB_STATE_DIR", tempfile::tempdir().unwrap().keep())
        .env("REDIS_URL", redis.url())
        .env("MCP_HUB_REDIS_PREFIX", prefix)
        .env("MCP_HUB_NODE_ID", node)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[actix_web::test]
async fn nodes_heartbeat_and_disappear_when_killed_or_stopped() {
    let redis = RedisServer::start();
    let p = prefix();
    let observer = hub(&redis, &p).await;
    let mut killed = binary_hub(&redis, &p, "node-killed");
    let mut stopped = binary_hub(&redis, &p, "node-stopped");
    let start = Instant::now();
    loop {
        let ids = node_ids(&observer).await;
        if ids.iter().any(|i| i == "node-killed") && ids.iter().any(|i| i == "node-stopped") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nodes never appeared: {ids:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    let ready: Value = http_client()
        .get(observer.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["redis"], "up");

    // SIGTERM: drains and deregisters at once.
    Command::new("kill")
        .args(["-TERM", &stopped.id().to_string()])
        .status()
        .unwrap();
    wait_until_async(
        "the stopped node deregisters",
        Duration::from_secs(5),
        || async {
            !node_ids(&observer)
                .await
                .contains(&"node-stopped".to_string())
        },
    )
    .await;
    let exit = stopped.wait().unwrap();
    assert!(exit.success(), "SIGTERM is a clean exit: {exit:?}");

    // SIGKILL: no goodbye; the record expires (TTL 15 s).
    let _ = killed.kill();
    let _ = killed.wait();
    let killed_at = Instant::now();
    wait_until_async(
        "the killed node expires",
        Duration::from_secs(17),
        || async {
            !node_ids(&observer)
                .await
                .contains(&"node-killed".to_string())
        },
    )
    .await;
    assert!(killed_at.elapsed() <= Duration::from_secs(16));
}

async fn wait_until_async<F, Fut>(what: &str, within: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < within, "{what} not within {within:?}");
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Lines a `redis-cli SUBSCRIBE` of the registry's events channel printed so far.
struct Subscription {
    child: Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Subscription {
    fn start(redis: &RedisServer, channel: &str) -> Self {
        let mut child = Command::new("redis-cli")
            .args(["-p", &redis.port.to_string(), "SUBSCRIBE", channel])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        // Wait for the subscription's confirmation.
        let start = Instant::now();
        while lines.lock().unwrap().len() < 3 {
            assert!(start.elapsed() < Duration::from_secs(5), "SUBSCRIBE failed");
            std::thread::sleep(Duration::from_millis(10));
        }
        Self { child, lines }
    }

    fn events(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.is_object())
            .collect()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_web::test]
async fn tools_and_runtime_state_are_shared_through_redis() {
    let redis = RedisServer::start();
    let p = prefix();
    let (a, b) = (hub(&redis, &p).await, hub(&redis, &p).await);
    let events = Subscription::start(&redis, &format!("{p}events"));
    register_shared_demo(&a, &[&a, &b]).await;

    // `{prefix}tools:shared` holds every tool, written once although two nodes run it.
    let tools_key = format!("{p}tools:shared");
    wait_until("tools in redis", Duration::from_secs(5), || {
        redis.cli(&["HEXISTS", &tools_key, "echo"]) == "1"
    })
    .await;
    let echo: Value = serde_json::from_str(&redis.cli(&["HGET", &tools_key, "echo"])).unwrap();
    assert_eq!(echo["name"], "echo");
    assert!(echo["inputSchema"].is_object(), "{echo}");
    let listed = a.state.servers.get("shared").unwrap().catalog().tools.len();
    assert_eq!(redis.cli(&["HLEN", &tools_key]), listed.to_string());
    wait_until("tool events", Duration::from_secs(5), || {
        events
            .events()
            .iter()
            .any(|e| e["type"] == "tool.upsert" && e["id"] == "shared" && e["tool"] == "echo")
    })
    .await;
    let upserts = |events: &[Value]| {
        events
            .iter()
            .filter(|e| e["type"] == "tool.upsert" && e["tool"] == "echo")
            .count()
    };
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(upserts(&events.events()), 1, "{:?}", events.events());
    for e in events
        .events()
        .iter()
        .filter(|e| e["type"] == "tool.upsert")
    {
        assert!(e["version"].as_u64().unwrap() > 0, "{e}");
    }

    // Each node's view of the server, after a heartbeat (every 5 s).
    let start = Instant::now();
    let view = loop {
        let v: Value = http_client()
            .get(a.url("/api/servers/shared"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["nodes"].as_object().map_or(0, |m| m.len()) == 2 {
            break v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(12),
            "both nodes not in server_runtime: {v}"
        );
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    };
    for (node, rt) in view["nodes"].as_object().unwrap() {
        assert_eq!(rt["status"], "ready", "{node}: {rt}");
        assert!(rt["pid"].as_u64().unwrap() > 0, "{node}: {rt}");
        assert!(
            rt["last_heartbeat"].as_str().unwrap().ends_with('Z'),
            "{rt}"
        );
        assert_eq!(rt["restarts"], 0);
    }
    let pids: Vec<u64> = view["nodes"]
        .as_object()
        .unwrap()
        .values()
        .map(|rt| rt["pid"].as_u64().unwrap())
        .collect();
    assert_ne!(pids[0], pids[1], "each node runs its own child");

    // Deleting the server removes its tools and runtime keys and announces the tools' end.
    assert_eq!(
        http_client()
            .delete(b.url("/api/servers/shared"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(redis.cli(&["EXISTS", &tools_key]), "0");
    assert_eq!(
        redis.cli(&["EXISTS", &format!("{p}server_runtime:shared")]),
        "0"
    );
    wait_until("tool.delete", Duration::from_secs(5), || {
        events
            .events()
            .iter()
            .any(|e| e["type"] == "tool.delete" && e["id"] == "shared" && e["tool"] == "echo")
    })
    .await;
}

async fn node_hub(redis: &RedisServer, prefix: &str, node: &str) -> TestApp {
    let (url, prefix, node) = (redis.url(), prefix.to_string(), node.to_string());
    spawn_app_with(move |s| {
        s.redis_url = Some(url);
        s.redis_prefix = prefix;
        s.reconcile_secs = 1;
        s.servers = vec![];
        s.node_id = Some(node);
        s.cluster.token = Some("cluster-secret-0123456789".into());
        s.supervision.backoff_base_ms = 50;
    })
    .await
}

async fn echo_through(app: &TestApp, text: &str) -> Result<String, Value> {
    let mut client = McpClient::connect(app.url("/mcp")).await;
    let r = client
        .request(
            "tools/call",
            json!({ "name": "placed__echo", "arguments": { "text": text } }),
        )
        .await;
    match r.response.get("result") {
        Some(result) => Ok(text_of(result)),
        None => Err(r.response),
    }
}

#[actix_web::test]
async fn a_placed_server_runs_only_on_its_nodes_and_calls_fail_over() {
    let redis = RedisServer::start();
    let p = prefix();
    let a = node_hub(&redis, &p, "A").await;
    let b = node_hub(&redis, &p, "B").await;
    let c = node_hub(&redis, &p, "C").await;
    // Placed on A, with C as the second choice.
    let resp = http_client()
        .post(b.url("/api/servers/placed"))
        .send_json(&json!({
            "transport": "stdio", "command": "@self", "args": ["demo-server"],
            "placement": { "nodes": ["A", "C"] }
        }))
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    a.wait_ready("placed", Duration::from_secs(10)).await;
    c.wait_ready("placed", Duration::from_secs(10)).await;
    assert!(a.pid("placed").is_some() && c.pid("placed").is_some());

    // B runs no child: it forwards to A, and its /mcp lists the tool like any other.
    b.wait_ready("placed", Duration::from_secs(10)).await;
    assert_eq!(b.pid("placed"), None, "B must not run the child");
    let forwarded_to = |app: &TestApp| {
        app.state
            .servers
            .get("placed")
            .and_then(|h| h.runtime.borrow().forwarded_to.clone())
    };
    assert_eq!(forwarded_to(&b), Some("A".into()));
    assert_eq!(forwarded_to(&a), None);
    let mut client = McpClient::connect(b.url("/mcp")).await;
    let list = client.request("tools/list", json!({})).await;
    let names: Vec<&str> = list.response["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"placed__echo"), "{names:?}");
    assert_eq!(echo_through(&b, "via A").await.unwrap(), "via A");
    // A dies (its HTTP server and workers stop; its node record lingers up to 15 s).
    a.stop().await;
    let started = Instant::now();
    loop {
        match echo_through(&b, "after A").await {
            Ok(text) => {
                assert_eq!(text, "after A");
                break;
            }
            Err(e) => {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "calls did not move to C: {e}"
                );
                actix_rt::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(forwarded_to(&b), Some("C".into()));

    // A server placed on a node that does not exist fails fast, naming its placement.
    let resp = http_client()
        .post(b.url("/api/servers/nowhere"))
        .send_json(&json!({
            "transport": "stdio", "command": "@self", "args": ["demo-server"],
            "placement": { "nodes": ["Z"], "labels": ["gpu"] }
        }))
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(c.pid("nowhere"), None);
    let start = Instant::now();
    let view = loop {
        let v: Value = http_client()
            .get(b.url("/api/servers/nowhere"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["runtime"]["last_error"]["reason"].is_string() {
            break v;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{v}");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    let reason = view["runtime"]["last_error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("placed on other nodes (nodes Z; labels gpu)"),
        "{view}"
    );
    assert_ne!(
        view["runtime"]["status"], "failed",
        "a forwarder keeps looking: {view}"
    );
}

/// A free loopback port (bound, then released for a child process to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[actix_web::test]
async fn sessions_are_served_by_every_instance_and_a_call_outlives_its_instance() {
    let redis = RedisServer::start();
    let p = prefix();
    let b = hub(&redis, &p).await;
    let c = hub(&redis, &p).await;
    // A is a real process, so it can be SIGKILLed.
    let a_port = free_port();
    let mut a = Command::new(hub_bin())
        .env("MCP_HUB_LISTEN", format!("127.0.0.1:{a_port}"))
        .env("MCP_HUB_STATE_DIR", tempfile::tempdir().unwrap().keep())
        .env("REDIS_URL", redis.url())
        .env("MCP_HUB_REDIS_PREFIX", &p)
        .env("MCP_HUB_NODE_ID", "node-a")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let a_url = |path: &str| format!("http://127.0.0.1:{a_port}{path}");
    register_shared_demo(&b, &[]).await;

    // A session initialized on A...
    let mut client = loop {
        if let Ok(r) = http_client().get(a_url("/readyz")).send().await {
            if r.status().is_success() {
                break McpClient::connect(a_url("/mcp")).await;
            }
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    };
    let sid = client.session.clone().expect("a session id");
    let echo = |text: &str| json!({ "name": "shared__echo", "arguments": { "text": text } });
    wait_until_async("A runs the shared server", Duration::from_secs(15), || {
        let mut probe = McpClient::new(a_url("/mcp"));
        probe.session = Some(sid.clone());
        async move {
            probe.request("tools/call", echo("probe")).await.response["result"].is_object()
        }
    })
    .await;
    // ...serves POSTs sent to B and C (each adopts it from its Redis record).
    for app in [&b, &c] {
        client.url = app.url("/mcp");
        wait_until_async(
            "the instance runs the shared server",
            Duration::from_secs(15),
            || {
                let mut probe = McpClient::new(app.url("/mcp"));
                probe.session = Some(sid.clone());
                async move {
                    probe.request("tools/call", echo("probe")).await.response["result"].is_object()
                }
            },
        )
        .await;
        let r = client.request("tools/call", echo("anywhere")).await;
        assert_eq!(
            text_of(&r.response["result"]),
            "anywhere",
            "{:?}",
            r.response
        );
    }
    // Another user presenting the id is refused there too.
    let stranger = http_client()
        .post(c.url("/mcp"))
        .insert_header(("Mcp-Session-Id", sid.as_str()))
        .insert_header(("Authorization", "Bearer nobody"))
        .insert_header(("Accept", "application/json, text/event-stream"))
        .send_json(&json!({ "jsonrpc": "2.0", "id": 9, "method": "ping" }))
        .await
        .unwrap();
    assert!(stranger.status().is_client_error(), "{}", stranger.status());

    // A call running on B whose stream broke resumes on C, which follows B's log.
    client.url = b.url("/mcp");
    let mut stream = client
        .post_sse(
            json!("on-b"),
            "tools/call",
            json!({ "name": "shared__sleep", "arguments": { "ms": 1500 } }),
        )
        .await;
    let primed = stream.next().await.expect("priming event").id;
    drop(stream);
    client.url = c.url("/mcp");
    let mut resumed = client.get_sse(Some(&primed)).await;
    assert_eq!(resumed.status, 200);
    let (_, answer) = resumed.until_response().await;
    assert_eq!(answer.json()["id"], "on-b");
    assert!(answer.json()["result"].is_object(), "{:?}", answer.json());
    assert!(
        resumed
            .next_within(Duration::from_millis(500))
            .await
            .is_none(),
        "exactly one answer"
    );

    // A call running on A when A is SIGKILLed: resumed on B, which finds A's port refusing
    // connections, claims the call and reruns it, and the client gets its result.
    client.url = a_url("/mcp");
    let mut stream = client
        .post_sse(
            json!("on-a"),
            "tools/call",
            json!({ "name": "shared__sleep", "arguments": { "ms": 2000 } }),
        )
        .await;
    let primed = stream.next().await.expect("priming event").id;
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    let _ = a.kill();
    let _ = a.wait();
    drop(stream);
    let killed_at = Instant::now();
    client.url = b.url("/mcp");
    let mut resumed = client.get_sse(Some(&primed)).await;
    assert_eq!(resumed.status, 200);
    let mut answers = Vec::new();
    while let Some(ev) = resumed.next_within(Duration::from_secs(25)).await {
        let v = ev.json();
        if v.get("id").is_some() && (v.get("result").is_some() || v.get("error").is_some()) {
            answers.push(v);
        }
    }
    assert_eq!(answers.len(), 1, "exactly one answer: {answers:?}");
    assert_eq!(answers[0]["id"], "on-a");
    assert!(answers[0]["result"].is_object(), "{:?}", answers[0]);
    let recovered = killed_at.elapsed();
    assert!(
        recovered < Duration::from_secs(6),
        "recovered in {recovered:?}"
    );
    eprintln!("a call whose instance was SIGKILLed was answered {recovered:?} later");
}

#[actix_web::test]
async fn a_legacy_sse_session_is_served_when_its_posts_reach_another_instance() {
    let redis = RedisServer::start();
    let p = prefix();
    let a = hub(&redis, &p).await;
    let b = hub(&redis, &p).await;
    register_shared_demo(&a, &[&a, &b]).await;
    // The stream is on A...
    let mut stream = open_sse(&a.url("/sse"), None).await;
    let endpoint = stream.next().await.unwrap();
    assert_eq!(endpoint.event, "endpoint");
    let client = http_client();
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": { "name": "legacy", "version": "1" } } });
    let r = client
        .post(a.url(&endpoint.data))
        .send_json(&init)
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let (_, init_resp) = stream.until_response().await;
    assert_eq!(init_resp.json()["result"]["protocolVersion"], "2024-11-05");
    // ...and the POSTs go to B (a load balancer without stickiness): B runs the call and its
    // progress and result reach the client on A's stream.
    let call = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "shared__sleep", "arguments": { "ms": 300, "progress": true },
        "_meta": { "progressToken": "p-1" } } });
    let r = client
        .post(b.url(&endpoint.data))
        .send_json(&call)
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let (before, answer) = stream.until_response().await;
    assert_eq!(answer.json()["id"], 2);
    assert_eq!(
        text_of(&answer.json()["result"]),
        "slept 300 ms",
        "{:?}",
        answer.json()
    );
    assert!(
        before
            .iter()
            .any(|e| e.json()["method"] == "notifications/progress"
                && e.json()["params"]["progressToken"] == "p-1"),
        "progress relayed too: {before:?}"
    );
    // The same session through B's own per-request path stays one session: a second call.
    let call = json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "shared__echo", "arguments": { "text": "again" } } });
    client
        .post(b.url(&endpoint.data))
        .send_json(&call)
        .await
        .unwrap();
    let (_, answer) = stream.until_response().await;
    assert_eq!(answer.json()["id"], 3);
    assert_eq!(text_of(&answer.json()["result"]), "again");
}

#[actix_web::test]
async fn server_requests_of_a_json_call_cross_instances_both_ways() {
    let redis = RedisServer::start();
    let p = prefix();
    let a = hub(&redis, &p).await;
    let b = hub(&redis, &p).await;
    register_shared_demo(&a, &[&a, &b]).await;
    // The session and its standalone GET stream are on A.
    let c = McpClient::connect(a.url("/mcp")).await;
    let sid = c.session.clone().unwrap();
    let mut standalone = c.get_sse(None).await;
    assert_eq!(standalone.status, 200);
    // A call answered as JSON runs on B; its sampling request must reach the client on A.
    let call = json!({ "jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": { "name": "shared__test_sampling", "arguments": { "prompt": "hi" } } });
    let b_url = b.url("/mcp");
    let sid_b = sid.clone();
    let answer = actix_rt::spawn(async move {
        let mut r = http_client()
            .post(b_url)
            .insert_header(("Accept", "application/json"))
            .insert_header(("Mcp-Session-Id", sid_b.as_str()))
            .insert_header(("MCP-Protocol-Version", "2025-11-25"))
            .send_json(&call)
            .await
            .unwrap();
        r.json::<Value>().limit(1 << 20).await.unwrap()
    });
    let request = loop {
        let ev = standalone
            .next()
            .await
            .expect("the sampling request on A's stream");
        let v = ev.json();
        if v["method"] == "sampling/createMessage" {
            break v;
        }
    };
    // The client answers on A; the answer reaches the call on B.
    let reply = json!({ "jsonrpc": "2.0", "id": request["id"], "result": {
        "role": "assistant", "content": { "type": "text", "text": "sampled across" },
        "model": "m", "stopReason": "endTurn" } });
    let r = http_client()
        .post(a.url("/mcp"))
        .insert_header(("Mcp-Session-Id", sid.as_str()))
        .insert_header(("MCP-Protocol-Version", "2025-11-25"))
        .insert_header(("Accept", "application/json, text/event-stream"))
        .send_json(&reply)
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let answer = tokio::time::timeout(Duration::from_secs(10), answer)
        .await
        .expect("the call on B completes")
        .unwrap();
    assert_eq!(answer["id"], 5);
    assert!(
        answer["result"]["content"]
            .to_string()
            .contains("sampled across"),
        "{answer}"
    );
}

// ---- upstream sessions shared through Redis (issue 4, item 4) --------------------------

async fn demo_initializes(upstream: &DemoHttp) -> u64 {
    upstream.stats().await["initializes"].as_u64().unwrap()
}

async fn hub_with_upstream(redis: &RedisServer, prefix: &str, url: &str) -> TestApp {
    let (redis_url, prefix, url) = (redis.url(), prefix.to_string(), url.to_string());
    spawn_app_with(move |s| {
        s.redis_url = Some(redis_url);
        s.redis_prefix = prefix;
        s.servers = vec![http_def("up", &url)];
        s.node_id = Some(format!(
            "node-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
    })
    .await
}

#[actix_web::test]
async fn instances_share_one_upstream_session_and_one_re_initialize_per_expiry() {
    let redis = RedisServer::start();
    let p = prefix();
    let upstream = DemoHttp::start();
    let a = hub_with_upstream(&redis, &p, &upstream.url).await;
    a.wait_ready("up", Duration::from_secs(10)).await;
    let b = hub_with_upstream(&redis, &p, &upstream.url).await;
    b.wait_ready("up", Duration::from_secs(10)).await;
    let stored = redis.cli(&["GET", &format!("{p}upstream_session:up:shared")]);
    assert!(
        stored.contains("\"id\""),
        "the session id is in Redis: {stored}"
    );
    let mut ca = McpClient::connect(a.url("/mcp")).await;
    let mut cb = McpClient::connect(b.url("/mcp")).await;
    for (c, text) in [(&mut ca, "a"), (&mut cb, "b")] {
        assert_eq!(
            text_of(&c.call_tool("up__echo", json!({ "text": text })).await),
            text
        );
    }
    assert_eq!(
        demo_initializes(&upstream).await,
        1,
        "the second instance reused the first one's session"
    );
    // The upstream forgets: the first instance to notice re-initializes, the other picks
    // up the new id from Redis.
    forget_demo_sessions(&upstream.base()).await;
    for (c, text) in [(&mut ca, "a again"), (&mut cb, "b again")] {
        assert_eq!(
            text_of(&c.call_tool("up__echo", json!({ "text": text })).await),
            text
        );
    }
    assert_eq!(
        demo_initializes(&upstream).await,
        2,
        "one re-initialize in all"
    );
    let after = redis.cli(&["GET", &format!("{p}upstream_session:up:shared")]);
    assert_ne!(after, stored, "the new id replaced the old one in Redis");
}
