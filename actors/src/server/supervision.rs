//! How a ServerActor supervises its upstream: restart backoff, the crash-loop limit, health
//! checks and the grace period of a stop. Shared by every ServerActor through `ServerEnv`.

use std::time::Duration;

/// Supervision policy (config section `[supervision]`).
#[derive(Debug, Clone)]
pub struct SupervisionConfig {
    /// First restart delay; doubles per failure in a row.
    pub backoff_base: Duration,
    /// Longest restart delay.
    pub backoff_max: Duration,
    /// A worker ready this long resets the failure count.
    pub stable_after: Duration,
    /// Failures in a row after which the server is marked `failed` until an operator acts.
    pub crash_loop_limit: u32,
    /// Health check interval (zero disables them).
    pub health_interval: Duration,
    /// Time a health check (`ping`) may take.
    pub health_timeout: Duration,
    /// Failed health checks in a row that restart the worker.
    pub health_failures: u32,
    /// Time a stopping stdio child gets (stdin closed, then SIGTERM, then SIGKILL).
    pub stop_grace: Duration,
    /// Failed calls in a row (timeouts, unreachable, protocol errors) that open the circuit
    /// breaker (0 disables it).
    pub breaker_failures: u32,
    /// How long an open breaker fails calls fast before letting one probe through.
    pub breaker_open: Duration,
    /// Running stdio workers allowed on this node (0: no cap).
    pub worker_max: usize,
    /// A stdio worker without calls this long is stopped until the next call (zero: never).
    pub worker_idle_ttl: Duration,
    /// Accept the test-only messages (`TestFault`) that make a ServerActor panic or stop.
    pub test_hooks: bool,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        Self {
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            stable_after: Duration::from_secs(30),
            crash_loop_limit: 5,
            health_interval: Duration::from_secs(30),
            health_timeout: Duration::from_secs(5),
            health_failures: 3,
            stop_grace: Duration::from_secs(2),
            breaker_failures: 5,
            breaker_open: Duration::from_secs(10),
            worker_max: 0,
            worker_idle_ttl: Duration::ZERO,
            test_hooks: false,
        }
    }
}

impl SupervisionConfig {
    /// Delay before restart number `failures_in_row` (1-based): base, 2×base, 4×base, … capped.
    pub fn backoff(&self, failures_in_row: u32) -> Duration {
        let factor = 1u32 << failures_in_row.saturating_sub(1).min(16);
        self.backoff_base
            .saturating_mul(factor)
            .min(self.backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let c = SupervisionConfig::default();
        assert_eq!(c.backoff(1), Duration::from_millis(200));
        assert_eq!(c.backoff(2), Duration::from_millis(400));
        assert_eq!(c.backoff(4), Duration::from_millis(1600));
        assert_eq!(c.backoff(40), Duration::from_secs(30));
    }
}
