//! stdio transport: a child process speaking newline-delimited JSON-RPC.
//!
//! Tasks per child: a writer (owns stdin, fed by a bounded channel), a reader (stdout lines,
//! dispatched to waiting calls), a stderr logger, and a waiter (owns the `Child`, reaps it).
//! When stdout closes the reader fails every waiting call with "server restarted" and tells
//! the ServerActor, which respawns with backoff. Calls are multiplexed by [`Mux`].

use std::cell::RefCell;
use std::path::Path;
use std::process::Stdio;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use super::mux::{Mux, WRITE_QUEUE};
use super::{ConnEvent, OpenArgs};
use crate::error::HubError;
use crate::registry::ServerDef;
use crate::server::children::ChildLedger;

/// Longest stdout line accepted from a child (a larger one is a protocol violation).
const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// One running child process; calls are multiplexed over its stdin/stdout by a [`Mux`].
pub struct StdioConn {
    /// The calls waiting on this child.
    pub mux: Mux,
    pid: Option<u32>,
    /// Stop request: `true` graceful, `false` SIGKILL at once.
    kill: RefCell<Option<oneshot::Sender<bool>>>,
    /// The protocol era the handshake detected.
    pub era: std::cell::Cell<super::modern::UpstreamEra>,
}

impl StdioConn {
    /// Spawns the child described by `def` and starts its I/O tasks.
    pub fn spawn(
        def: &ServerDef,
        self_exe: &Path,
        grace: Duration,
        ledger: Arc<ChildLedger>,
        args: OpenArgs,
    ) -> Result<Rc<StdioConn>, HubError> {
        let command = match def.command.as_deref() {
            Some("@self") | None => self_exe.to_path_buf(),
            Some(c) => c.into(),
        };
        let mut cmd = tokio::process::Command::new(&command);
        cmd.args(&def.args)
            .envs(&def.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(cwd) = &def.cwd {
            cmd.current_dir(cwd);
        }
        // The hub's own settings (admin token, Redis URL) are not the child's business.
        for (key, _) in std::env::vars_os() {
            let Some(k) = key.to_str() else { continue };
            if (k.starts_with("MCP_HUB_") || k == "REDIS_URL") && !def.env.contains_key(k) {
                cmd.env_remove(&key);
            }
        }
        let mut child = cmd.spawn().map_err(|e| HubError::ServerUnavailable {
            server: def.id.clone(),
            reason: format!("cannot start {}: {e}", command.display()),
            retry_after_seconds: 1,
        })?;
        let pid = child.id();
        if let Some(pid) = pid {
            ledger.record(pid, &def.id);
        }
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(HubError::Internal("child process without pipes".into()));
        };
        let (writer, write_rx) = mpsc::channel(WRITE_QUEUE);
        let (kill_tx, kill_rx) = oneshot::channel();
        let (close_tx, close_rx) = oneshot::channel();
        let (exit_tx, exit_rx) = oneshot::channel();
        let conn = Rc::new(StdioConn {
            mux: Mux::new(args.server.clone(), writer, args.reply_to.clone()),
            pid,
            kill: RefCell::new(Some(kill_tx)),
            era: std::cell::Cell::new(super::modern::UpstreamEra::Legacy),
        });
        actix::spawn(write_loop(stdin, write_rx, close_rx));
        actix::spawn(stderr_loop(args.server.clone(), stderr));
        actix::spawn(async move {
            wait_loop(child, kill_rx, close_tx, grace, exit_tx).await;
            if let Some(pid) = pid {
                ledger.forget(pid);
            }
        });
        actix::spawn(read_loop(conn.clone(), stdout, exit_rx, args));
        Ok(conn)
    }

    /// Child pid.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Stops the child gracefully (stdin closed, then SIGTERM, then SIGKILL).
    pub fn close(&self) {
        if let Some(kill) = self.kill.borrow_mut().take() {
            let _ = kill.send(true);
        }
    }

    /// Kills the child at once: a hung (or stopped) process cannot shut down gracefully,
    /// and a SIGTERM would wait until it is continued.
    pub fn abort(&self) {
        if let Some(kill) = self.kill.borrow_mut().take() {
            let _ = kill.send(false);
        }
    }
}

async fn write_loop(
    mut stdin: tokio::process::ChildStdin,
    mut rx: mpsc::Receiver<String>,
    mut close: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            line = rx.recv() => {
                let Some(mut line) = line else { break };
                line.push('\n');
                if stdin.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
            _ = &mut close => break,
        }
    }
    // Dropping stdin closes it: the child sees EOF and should exit.
}

async fn stderr_loop(server: Arc<str>, stderr: tokio::process::ChildStderr) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line: String = line.chars().take(2000).collect();
        tracing::info!(event = "worker.stderr", server = %server, line = %line, "worker.stderr");
    }
}

/// Reaps the child. On a stop request it stops it gracefully: close stdin, wait half the
/// grace period, SIGTERM, wait the other half, SIGKILL.
async fn wait_loop(
    mut child: tokio::process::Child,
    stop: oneshot::Receiver<bool>,
    close_stdin: oneshot::Sender<()>,
    grace: Duration,
    exit: oneshot::Sender<String>,
) {
    let status = tokio::select! {
        status = child.wait() => status,
        request = stop => if request == Ok(false) {
            let _ = child.start_kill();
            child.wait().await
        } else {
            let _ = close_stdin.send(());
            match tokio::time::timeout(grace / 2, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
                    }
                    match tokio::time::timeout(grace / 2, child.wait()).await {
                        Ok(status) => status,
                        Err(_) => {
                            let _ = child.start_kill();
                            child.wait().await
                        }
                    }
                }
            }
        }
    };
    let reason = match status {
        Ok(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => "exited".to_string(),
        },
        Err(e) => format!("wait failed: {e}"),
    };
    let _ = exit.send(reason);
}

async fn read_loop(
    conn: Rc<StdioConn>,
    stdout: tokio::process::ChildStdout,
    exit: oneshot::Receiver<String>,
    args: OpenArgs,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut buf = Vec::with_capacity(8 * 1024);
    let mut problem = None;
    loop {
        buf.clear();
        match (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(0) => break,
            Ok(_) if buf.len() > MAX_LINE_BYTES => {
                problem = Some(format!("wrote a line over {MAX_LINE_BYTES} bytes"));
                break;
            }
            Ok(_) => {
                let line = buf.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                if conn.mux.on_message(line) {
                    args.events.do_send(ConnEvent::ListChanged {
                        generation: args.generation,
                    });
                }
            }
            Err(e) => {
                problem = Some(format!("stdout read failed: {e}"));
                break;
            }
        }
    }
    conn.close();
    let exit_reason = tokio::time::timeout(std::time::Duration::from_secs(5), exit)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| "stdout closed".to_string());
    let reason = problem.map_or(exit_reason.clone(), |p| format!("{p}; {exit_reason}"));
    conn.mux.fail_all(&reason);
    args.events.do_send(ConnEvent::Closed {
        generation: args.generation,
        reason,
    });
}
