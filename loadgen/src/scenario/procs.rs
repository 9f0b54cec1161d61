//! Child processes a scenario starts: the fast upstream (this binary, `upstream`) and the
//! hub (`mcp-hub serve --config FILE` on a free loopback port, own state dir, warn logs).

use hyper::Method;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::mcp::{http_request, Endpoint};

/// A child process stopped with SIGTERM (then SIGKILL) when the scenario ends.
pub struct Proc {
    child: Child,
    /// Its pid.
    pub pid: u32,
}

impl Proc {
    fn new(child: Child) -> Result<Proc, String> {
        let pid = child.id().ok_or("child exited at once")?;
        Ok(Proc { child, pid })
    }

    /// SIGTERM, up to 5 s for a graceful exit, then SIGKILL.
    pub async fn stop(mut self) {
        if let Some(pid) = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

/// The fast upstream as a separate process (so its CPU is measured apart).
pub struct Upstream {
    /// The process.
    pub proc: Proc,
    /// Its MCP endpoint, `http://127.0.0.1:PORT/mcp`.
    pub url: String,
}

/// Starts `loadgen upstream --listen 127.0.0.1:0 --tools N` and reads its address.
pub async fn start_upstream(tools: usize, sse: bool) -> Result<Upstream, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args([
        "upstream",
        "--listen",
        "127.0.0.1:0",
        "--tools",
        &tools.to_string(),
    ]);
    if sse {
        cmd.arg("--sse");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting the upstream: {e}"))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let url = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("listening on ") {
                return Some(url.trim().to_string());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or("the upstream did not print its address")?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Upstream {
        proc: Proc::new(child)?,
        url,
    })
}

/// An upstream entry of the hub's config.
pub enum ServerEntry {
    /// `transport = "streamable_http"`.
    Http {
        /// Server id.
        id: String,
        /// Endpoint URL.
        url: String,
    },
}

/// A running hub.
pub struct Hub {
    /// The process.
    pub proc: Proc,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    dir: tempfile::TempDir,
}

/// The default hub binary: `$MCP_HUB_BIN`, else `../target/release/mcp-hub` from the crate.
pub fn default_hub_bin() -> PathBuf {
    std::env::var_os("MCP_HUB_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/mcp-hub"))
}

/// Starts the `floor_proxy` binary (`PORT UPSTREAM_URL`: actix-web in, awc out, nothing
/// else) in front of `upstream_url` and waits until it accepts connections; returns it and
/// its `/mcp` URL.
pub async fn start_floor(bin: &Path, upstream_url: &str) -> Result<(Proc, String), String> {
    if !bin.exists() {
        return Err(format!(
            "floor proxy {} not found: build it with cargo build --release -p loadgen",
            bin.display()
        ));
    }
    let port = free_port()?;
    let child = Command::new(bin)
        .args([port.to_string().as_str(), upstream_url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting the floor proxy: {e}"))?;
    let mut proc = Proc::new(child)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if proc.exited() || Instant::now() > deadline {
            proc.stop().await;
            return Err(format!("the floor proxy did not listen on port {port}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((proc, format!("http://127.0.0.1:{port}/mcp")))
}

/// A free loopback port (bound then released: the hub binds it right after).
fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn toml_string(s: &str) -> String {
    serde_json::Value::from(s).to_string() // a JSON string is a valid TOML basic string
}

impl Hub {
    /// Writes a config registering `servers`, starts the hub and waits for `/readyz` 200.
    pub async fn start(
        bin: &Path,
        servers: &[ServerEntry],
        env: &[(&str, String)],
    ) -> Result<Hub, String> {
        if !bin.exists() {
            return Err(format!(
                "hub binary {} not found: build it (cargo build --release --bin mcp-hub) or pass --hub-bin / MCP_HUB_BIN",
                bin.display()
            ));
        }
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let state = dir.path().join("state");
        let mut config = format!(
            "listen = {}\nstate_dir = {}\n",
            toml_string(&listen),
            toml_string(&state.to_string_lossy())
        );
        for s in servers {
            match s {
                ServerEntry::Http { id, url } => config.push_str(&format!(
                    "\n[[servers]]\nid = {}\ntransport = \"streamable_http\"\nurl = {}\n",
                    toml_string(id),
                    toml_string(url)
                )),
            }
        }
        let config_path = dir.path().join("hub.toml");
        std::fs::write(&config_path, config).map_err(|e| format!("writing config: {e}"))?;
        let log_path = dir.path().join("hub.log");
        let log = std::fs::File::create(&log_path).map_err(|e| format!("hub log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("hub log: {e}"))?;
        let mut cmd = Command::new(bin);
        // Our own variables (MCP_HUB_BIN) would be read as unknown config keys.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("MCP_HUB_") || k == "REDIS_URL" || k == "RUST_LOG" {
                cmd.env_remove(k.as_ref());
            }
        }
        cmd.arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env("MCP_HUB_LISTEN", &listen)
            .env("MCP_HUB_STATE_DIR", &state)
            .env("MCP_HUB_LOG__LEVEL", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut hub = Hub {
            proc: Proc::new(child)?,
            base: format!("http://{listen}"),
            dir,
        };
        hub.wait_ready(Duration::from_secs(60)).await?;
        Ok(hub)
    }

    /// Polls `GET /readyz` until 200.
    pub async fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let ep = Endpoint::parse(&self.base)?;
        let deadline = Instant::now() + within;
        loop {
            if self.proc.exited() {
                return Err(format!("the hub exited:\n{}", self.log_tail()));
            }
            let r = http_request(&ep, Method::GET, "/readyz", None, Duration::from_secs(2)).await;
            if let Ok((200, _)) = r {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the hub was not ready within {within:?} (last: {:?})\n{}",
                    r.map(|(s, b)| (s, String::from_utf8_lossy(&b).into_owned())),
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `/mcp` URL.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// The last lines of the hub's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("hub.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Warnings and errors the hub logged (the log level is `warn`), counted.
    pub fn log_lines(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("hub.log"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// Stops the hub.
    pub async fn stop(self) {
        self.proc.stop().await;
    }
}
