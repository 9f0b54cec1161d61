//! CPU time and memory of other processes, from `/proc`: utime+stime from `/proc/PID/stat`
//! (clock ticks, converted with `sysconf(_SC_CLK_TCK)`), VmRSS from `/proc/PID/status`
//! sampled every 100 ms for the peak.

use serde::Serialize;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often RSS is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// utime + stime in clock ticks, from the text of `/proc/PID/stat`.
///
/// The command name (field 2) is in parentheses and may itself contain spaces and `)`, so
/// fields are counted from the *last* `)`: after it come state (3), ppid (4), … utime (14),
/// stime (15).
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `Vm*:` line of `/proc/PID/status` in KiB (e.g. `VmRSS`, `VmHWM`).
pub fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let mut parts = rest.split_ascii_whitespace();
        let n: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") | None => Some(n),
            Some(_) => None,
        }
    })
}

/// Busy clock ticks of the whole machine (all cores) from the text of `/proc/stat`:
/// (user + nice + system + steal, irq + softirq). Idle and iowait are excluded. Interrupt
/// time is apart because with IRQ time accounting it is in no process's utime/stime, and
/// loopback TCP does much of its work in softirq.
pub fn parse_machine_busy_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    (v.len() >= 4).then(|| (at(0) + at(1) + at(2) + at(7), at(5) + at(6)))
}

/// Busy CPU seconds of the whole machine so far (every process, all cores): (tasks,
/// interrupts).
pub fn machine_busy_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let (tasks, irq) = parse_machine_busy_ticks(&stat)?;
    let hz = clock_ticks() as f64;
    Some((tasks as f64 / hz, irq as f64 / hz))
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux almost everywhere).
pub fn clock_ticks() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

/// CPU seconds (user + system, all threads) the process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(parse_stat_ticks(&stat)? as f64 / clock_ticks() as f64)
}

/// Current resident set size in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, "VmRSS")
}

/// What a process used during a measured window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProcUsage {
    /// `hub`, `upstream`, `loadgen`, ...
    pub role: String,
    /// The process id.
    pub pid: u32,
    /// CPU seconds (user + system) used in the window.
    pub cpu_s: f64,
    /// CPU share of one core over the window (1.0 = one core busy).
    pub cores: f64,
    /// CPU microseconds per successful call (filled in by the run).
    pub cpu_us_per_call: Option<f64>,
    /// RSS at the start of the window, KiB.
    pub rss_start_kib: u64,
    /// RSS at the end of the window, KiB.
    pub rss_end_kib: u64,
    /// Largest sampled RSS, KiB.
    pub rss_peak_kib: u64,
}

/// A running sampler for one process.
pub struct Sampler {
    role: String,
    pid: u32,
    started: std::time::Instant,
    cpu_start: f64,
    rss_start: u64,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<u64>,
}

impl Sampler {
    /// Starts sampling `pid` now.
    pub fn start(role: &str, pid: u32) -> Sampler {
        let rss_start = rss_kib(pid).unwrap_or(0);
        let cpu_start = cpu_seconds(pid).unwrap_or(0.0);
        let (tx, mut rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut peak = rss_start;
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => peak = peak.max(rss_kib(pid).unwrap_or(0)),
                    _ = &mut rx => return peak,
                }
            }
        });
        Sampler {
            role: role.to_string(),
            pid,
            started: std::time::Instant::now(),
            cpu_start,
            rss_start,
            stop: Some(tx),
            task,
        }
    }

    /// Stops sampling and returns the usage over the window.
    pub async fn finish(mut self) -> ProcUsage {
        let cpu_end = cpu_seconds(self.pid).unwrap_or(self.cpu_start);
        let rss_end = rss_kib(self.pid).unwrap_or(0);
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let peak = (&mut self.task).await.unwrap_or(0).max(rss_end);
        let cpu_s = (cpu_end - self.cpu_start).max(0.0);
        ProcUsage {
            role: self.role.clone(),
            pid: self.pid,
            cpu_s,
            cores: cpu_s / wall,
            cpu_us_per_call: None,
            rss_start_kib: self.rss_start,
            rss_end_kib: rss_end,
            rss_peak_kib: peak,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_counted_after_the_last_paren() {
        // A command name with spaces and a ')' inside, as a process may choose.
        let stat = "4242 (my ) prog x) S 1 4242 4242 0 -1 4194560 1523 0 0 0 731 269 0 0 20 0 9 0 123456 987654321 2345 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(731 + 269));
        assert_eq!(parse_stat_ticks("garbage"), None);
        assert_eq!(parse_stat_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn machine_busy_excludes_idle_and_iowait() {
        let stat = "cpu  100 5 50 9000 40 3 2 1 0 0\ncpu0 50 2 25 4500 20 1 1 0 0 0\nintr 1\n";
        assert_eq!(
            parse_machine_busy_ticks(stat),
            Some((100 + 5 + 50 + 1, 3 + 2))
        );
        assert_eq!(parse_machine_busy_ticks("intr 1\n"), None);
    }

    #[test]
    fn status_lines_in_kib() {
        let status = "Name:\tmcp-hub\nVmPeak:\t  900000 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   35840 kB\nThreads:\t5\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(35840));
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(40960));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        assert_eq!(parse_status_kib(status, "Threads"), Some(5));
    }

    /// Our own process: a busy loop must show up as CPU time, and RSS is never zero.
    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        let before = cpu_seconds(pid).unwrap_or(-1.0);
        assert!(before >= 0.0);
        // Burn CPU until /proc shows it (however busy the machine is), within a bound.
        let t = std::time::Instant::now();
        let mut x = 0u64;
        let mut after = before;
        while after - before < 0.1 && t.elapsed() < Duration::from_secs(20) {
            for _ in 0..1_000_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            std::hint::black_box(x);
            after = cpu_seconds(pid).unwrap_or(-1.0);
        }
        assert!(after - before >= 0.1, "before {before} after {after}");
        assert!(rss_kib(pid).unwrap_or(0) > 100);
        assert!((10..=10_000).contains(&clock_ticks()));
    }
}
