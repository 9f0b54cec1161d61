//! [`ChildLedger`]: the stdio children this node spawned, recorded in
//! `{state_dir}/children.json` so that a later run of the node can terminate children a
//! crashed run left behind (no ghost processes).
//!
//! Each entry carries the child's start time from `/proc/<pid>/stat` (clock ticks since
//! boot), read right after spawn. A recorded pid is only ever signalled when the process
//! now holding it has the same start time: a pid recycled by an unrelated process is left
//! alone. Written by stdio transports (spawn and reap), read once at start-up.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// File name inside the state dir.
pub const FILE_NAME: &str = "children.json";

/// One recorded child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildEntry {
    /// Server the child serves.
    pub server: String,
    /// Start time of the process (field 22 of `/proc/<pid>/stat`).
    pub start_time: u64,
}

/// The live children of this node, mirrored to a file on every change.
#[derive(Debug)]
pub struct ChildLedger {
    path: Option<PathBuf>,
    children: Mutex<BTreeMap<u32, ChildEntry>>,
}

impl ChildLedger {
    /// A ledger that keeps its file in `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: Some(state_dir.join(FILE_NAME)),
            children: Mutex::new(BTreeMap::new()),
        }
    }

    /// A ledger that records nothing on disk (embedded uses without a state dir).
    pub fn disabled() -> Self {
        Self {
            path: None,
            children: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records a child right after spawn. A child whose start time cannot be read is not
    /// recorded: without it, it could never be identified safely later.
    pub fn record(&self, pid: u32, server: &str) {
        let Some(start_time) = start_time(pid) else {
            return;
        };
        self.change(|m| {
            m.insert(
                pid,
                ChildEntry {
                    server: server.to_string(),
                    start_time,
                },
            );
        });
    }

    /// Forgets a child once it has been reaped.
    pub fn forget(&self, pid: u32) {
        self.change(|m| {
            m.remove(&pid);
        });
    }

    fn change(&self, f: impl FnOnce(&mut BTreeMap<u32, ChildEntry>)) {
        let Some(path) = &self.path else { return };
        let Ok(mut m) = self.children.lock() else {
            return;
        };
        f(&mut m);
        // Written under the lock so two changes never interleave their files.
        if let Err(e) = write_atomically(path, &m) {
            tracing::warn!(event = "worker.ledger_write_failed", path = %path.display(), error = %e, "worker.ledger_write_failed");
        }
    }

    /// Terminates the children a previous run of this node left alive (SIGTERM, then
    /// SIGKILL after `grace`) and empties the file. Returns the pids terminated.
    pub async fn reap_ghosts(&self, grace: Duration) -> Vec<u32> {
        let Some(path) = &self.path else {
            return Vec::new();
        };
        let recorded: BTreeMap<u32, ChildEntry> = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(event = "worker.ledger_unreadable", path = %path.display(), error = %e, "worker.ledger_unreadable");
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        let ghosts: Vec<(u32, ChildEntry)> = recorded
            .into_iter()
            .filter(|(pid, e)| start_time(*pid) == Some(e.start_time))
            .collect();
        for (pid, e) in &ghosts {
            tracing::warn!(event = "worker.ghost_terminated", pid, server = %e.server, "worker.ghost_terminated: a child left alive by a previous run");
            signal(*pid, nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + grace;
        for (pid, e) in &ghosts {
            while start_time(*pid) == Some(e.start_time) {
                if tokio::time::Instant::now() >= deadline {
                    signal(*pid, nix::sys::signal::Signal::SIGKILL);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.change(BTreeMap::clear);
        ghosts.into_iter().map(|(pid, _)| pid).collect()
    }
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
}

/// Start time of `pid` (field 22 of `/proc/<pid>/stat`); `None` when there is no such
/// process, it is a zombie being reaped, or this is not Linux.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state); a zombie is as good as gone.
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

fn write_atomically(path: &Path, m: &BTreeMap<u32, ChildEntry>) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(m).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn start_time_is_read_for_this_process_and_not_for_a_missing_one() {
        let me = std::process::id();
        assert!(start_time(me).is_some_and(|t| t > 0));
        assert_eq!(start_time(u32::MAX - 1), None);
    }

    #[actix_rt::test]
    async fn a_recycled_pid_is_not_killed_but_a_recorded_child_is() {
        let dir = tempfile::tempdir().unwrap();
        let mut ghost = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let mut stranger = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let ledger = ChildLedger::new(dir.path());
        ledger.record(ghost.id(), "a");
        // The stranger holds a pid the ledger knows, with another start time: a recycled pid.
        let wrong = start_time(stranger.id()).unwrap() + 1;
        ledger.change(|m| {
            m.insert(
                stranger.id(),
                ChildEntry {
                    server: "b".into(),
                    start_time: wrong,
                },
            );
        });
        let next_run = ChildLedger::new(dir.path());
        let killed = next_run.reap_ghosts(Duration::from_secs(5)).await;
        assert_eq!(killed, vec![ghost.id()]);
        assert!(ghost.wait().unwrap().code().is_none(), "killed by a signal");
        assert!(stranger.try_wait().unwrap().is_none(), "the stranger lives");
        stranger.kill().unwrap();
        let _ = stranger.wait();
        let left: BTreeMap<u32, ChildEntry> =
            serde_json::from_slice(&std::fs::read(dir.path().join(FILE_NAME)).unwrap()).unwrap();
        assert!(left.is_empty());
    }
}
