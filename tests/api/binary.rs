//! The real binary on its embedded default: what the README's run command starts.

use serde_json::json;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::helpers::*;

fn demo_children_of(pid: u32) -> Vec<u32> {
    let out = std::process::Command::new("pgrep")
        .args(["-P", &pid.to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The mcp-hub binary as a child process, its JSON log lines collected.
struct BinaryHub {
    child: tokio::process::Child,
    base: String,
    seen: Vec<String>,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl BinaryHub {
    /// Starts `mcp-hub args…` with `env`, listening on port 0 unless the config says
    /// otherwise; returns once `hub.listening` names the real address.
    async fn start(cwd: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = tokio::process::Command::new(hub_bin());
        cmd.current_dir(cwd)
            .args(args)
            .env_remove("REDIS_URL")
            .env_remove("MCP_HUB_CONFIG")
            .env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut out = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
            child.stdout.take().unwrap(),
        ));
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        actix_rt::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                let _ = tx.send(line);
            }
        });
        let mut hub = BinaryHub {
            child,
            base: String::new(),
            seen: Vec::new(),
            lines,
        };
        let listening = hub.wait_for("hub.listening", 1).await;
        let v: serde_json::Value = serde_json::from_str(&listening).unwrap();
        hub.base = format!("http://{}", v["addr"].as_str().unwrap());
        hub
    }

    /// Waits until `count` log lines of `event` were seen; returns the last.
    async fn wait_for(&mut self, event: &str, count: usize) -> String {
        let needle = format!("\"{event}\"");
        loop {
            let matching: Vec<&String> = self.seen.iter().filter(|l| l.contains(&needle)).collect();
            if matching.len() >= count {
                return matching[count - 1].clone();
            }
            let line = tokio::time::timeout(Duration::from_secs(30), self.lines.recv())
                .await
                .expect("log line in time")
                .expect("hub exited");
            self.seen.push(line);
        }
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    fn sigterm(&self) {
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap()
            .success());
    }
}

#[actix_web::test]
async fn the_embedded_default_serves_demo_tools_and_shuts_down_cleanly() {
    let cwd = tempfile::tempdir().unwrap();
    // Port 0, read back from the `hub.listening` log line: no race for a "free" port.
    let mut hub = BinaryHub::start(cwd.path(), &[], &[("MCP_HUB_LISTEN", "127.0.0.1:0")]).await;
    hub.wait_for("worker.spawned", 1).await;
    let mut c = McpClient::connect(format!("{}/mcp", hub.base)).await;
    let tools = c.request("tools/list", json!({})).await;
    assert!(tools.response["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "demo__echo"));
    assert_eq!(
        text_of(
            &c.call_tool("demo__echo", json!({ "text": "from the README" }))
                .await
        ),
        "from the README"
    );
    assert!(
        cwd.path().join("state").join("registry.json").exists(),
        "state_dir defaults to ./state"
    );

    let children = demo_children_of(hub.pid());
    assert_eq!(children.len(), 1, "one demo child: {children:?}");
    hub.sigterm();
    let exit = tokio::time::timeout(Duration::from_secs(15), hub.child.wait())
        .await
        .expect("graceful stop")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let alive = std::path::Path::new(&format!("/proc/{}", children[0])).exists();
    assert!(!alive, "the demo child is gone after shutdown");
}

#[actix_web::test]
async fn check_config_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[timeouts]\nhub_ms = 99999\n").unwrap();
    let out = std::process::Command::new(hub_bin())
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("timeouts.hub_ms"), "{err}");
    let out = std::process::Command::new(hub_bin())
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "serve refuses a bad config");
    let ok = dir.path().join("ok.toml");
    std::fs::write(&ok, mcp_hub::config::EMBEDDED_DEFAULT).unwrap();
    let out = std::process::Command::new(hub_bin())
        .arg("check-config")
        .arg(&ok)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[actix_web::test]
async fn sigterm_with_twenty_stdio_servers_leaves_no_child_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = format!(
        "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n",
        dir.path().join("state").display()
    );
    for i in 0..20 {
        config.push_str(&format!("[[servers]]\nid = \"demo{i}\"\ntransport = \"stdio\"\ncommand = \"{}\"\nargs = [\"demo-server\"]\n", hub_bin().display()));
    }
    let file = dir.path().join("hub.toml");
    std::fs::write(&file, config).unwrap();
    // Paced: at most 3 workers start at once; all 20 still come up.
    let mut hub = BinaryHub::start(
        dir.path(),
        &["serve", "--config", file.to_str().unwrap()],
        &[("MCP_HUB_SUPERVISION__MAX_CONCURRENT_STARTS", "3")],
    )
    .await;
    hub.wait_for("worker.spawned", 20).await;
    let children = demo_children_of(hub.pid());
    assert_eq!(children.len(), 20, "{children:?}");
    let started = Instant::now();
    hub.sigterm();
    let exit = tokio::time::timeout(Duration::from_secs(15), hub.child.wait())
        .await
        .expect("hub stops within 15 s")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let alive: Vec<u32> = children
        .iter()
        .copied()
        .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        .collect();
    assert!(
        alive.is_empty(),
        "children still alive after {:?}: {alive:?}",
        started.elapsed()
    );
}

#[actix_web::test]
async fn sigterm_drains_calls_in_flight_and_does_not_wait_for_idle_streams() {
    let cwd = tempfile::tempdir().unwrap();
    let mut hub = BinaryHub::start(cwd.path(), &[], &[("MCP_HUB_LISTEN", "127.0.0.1:0")]).await;
    hub.wait_for("worker.spawned", 1).await;
    let base = hub.base.clone();
    let c = McpClient::connect(format!("{base}/mcp")).await;
    let _idle_stream = c.get_sse(None).await;
    let mut caller = McpClient::new(c.url.clone());
    caller.session = c.session.clone();
    let call = actix_rt::spawn(async move {
        caller
            .request(
                "tools/call",
                json!({ "name": "demo__sleep", "arguments": { "ms": 1500 } }),
            )
            .await
    });
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    let stopped_at = Instant::now();
    hub.sigterm();
    actix_rt::time::sleep(Duration::from_millis(200)).await;
    let ready = http_client()
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "draining instances are not ready");
    let mut late = McpClient::new(format!("{base}/mcp"));
    let r = late.request("initialize", json!({ "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } })).await;
    assert_eq!(
        (r.status, r.response["error"]["message"].as_str()),
        (503, Some("Hub is shutting down"))
    );
    let r = call.await.unwrap();
    assert_eq!(
        text_of(&r.response["result"]),
        "slept 1500 ms",
        "the call in flight finished: {r:?}"
    );
    let exit = tokio::time::timeout(Duration::from_secs(8), hub.child.wait())
        .await
        .expect("stops without waiting for the idle stream")
        .unwrap();
    assert!(exit.success());
    assert!(
        stopped_at.elapsed() < Duration::from_secs(6),
        "{:?}",
        stopped_at.elapsed()
    );
}

#[actix_web::test]
async fn secrets_never_reach_logs_admin_responses_or_metrics() {
    const ENV_SECRET: &str = "env-secret-value-4711";
    const HEADER_SECRET: &str = "header-secret-value-4712";
    const API_SECRET: &str = "api-secret-value-4713";
    let upstream = DemoHttp::start();
    let cwd = tempfile::tempdir().unwrap();
    let config = cwd.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:0"
state_dir = "state"
[log]
level = "debug"
[[servers]]
id = "demo"
transport = "stdio"
command = "@self"
args = ["demo-server"]
env = {{ DEMO_TOKEN = "{ENV_SECRET}" }}
[[servers]]
id = "web"
transport = "streamable_http"
url = "{}"
headers = {{ Authorization = "Bearer {HEADER_SECRET}" }}
"#,
            upstream.url
        ),
    )
    .unwrap();
    let mut hub = BinaryHub::start(cwd.path(), &["--config", config.to_str().unwrap()], &[]).await;
    hub.wait_for("worker.spawned", 1).await;
    let client = http_client();
    let rest = json!({ "transport": "rest", "base_url": upstream.base(), "headers": { "X-Api-Key": API_SECRET }, "tools": [{ "name": "stats", "path": "/admin/stats", "headers": { "X-Tool-Key": API_SECRET } }] });
    let resp = client
        .post(format!("{}/api/servers/api", hub.base))
        .send_json(&rest)
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let mut c = McpClient::connect(format!("{}/mcp", hub.base)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    for tool in ["demo__echo", "web__echo", "api__stats"] {
        loop {
            let r = c
                .request(
                    "tools/call",
                    json!({ "name": tool, "arguments": { "text": "x" } }),
                )
                .await;
            if r.response.get("result").is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "{tool} never answered: {r:?}");
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let secrets = [ENV_SECRET, HEADER_SECRET, API_SECRET];
    let leaks = |what: &str, text: &str| {
        for s in secrets {
            assert!(!text.contains(s), "{what} shows {s}:\n{text}");
        }
    };
    for path in [
        "/api/servers",
        "/api/servers/demo",
        "/api/servers/web",
        "/api/servers/api",
        "/api/servers/api/tools",
        "/api/stats",
        "/api/sessions",
        "/metrics",
    ] {
        let mut resp = client
            .get(format!("{}{path}", hub.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let body = resp.body().limit(16 << 20).await.unwrap();
        leaks(path, &String::from_utf8_lossy(&body));
    }
    hub.sigterm();
    let exit = tokio::time::timeout(Duration::from_secs(15), hub.child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(5), hub.lines.recv()).await
    {
        hub.seen.push(line);
    }
    assert!(
        hub.seen.iter().any(|l| l.contains("tool.http.request")),
        "debug logging covered the calls"
    );
    leaks("the log", &hub.seen.join("\n"));
    let stored = std::fs::read_to_string(cwd.path().join("state/registry.json")).unwrap();
    assert!(stored.contains(API_SECRET), "the secret was in play");
}
