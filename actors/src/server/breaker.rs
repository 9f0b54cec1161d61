//! [`Breaker`]: a circuit breaker per server. After `threshold` failures in a row (timeouts,
//! unreachable upstream, protocol errors, restarts) it opens for `open_for`: calls fail at
//! once. Then one probe call goes through; its success closes the breaker, its failure opens
//! it again. Pure; owned by the ServerActor.

use std::time::{Duration, Instant};

/// Breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow; counting failures in a row.
    Closed {
        /// Failures in a row so far.
        failures: u32,
    },
    /// Calls fail fast until `until`.
    Open {
        /// When a probe may go.
        until: Instant,
    },
    /// One probe is (or may be) in flight.
    HalfOpen {
        /// Whether the probe is out.
        probing: bool,
    },
}

/// A circuit breaker; see the module docs.
#[derive(Debug, Clone)]
pub struct Breaker {
    state: BreakerState,
    threshold: u32,
    open_for: Duration,
}

/// What `admit` decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// A normal call.
    Call,
    /// The one probe of a half-open breaker.
    Probe,
}

impl Breaker {
    /// A closed breaker (threshold 0 disables it).
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            state: BreakerState::Closed { failures: 0 },
            threshold,
            open_for,
        }
    }

    /// Closes the breaker: a fresh worker (respawned child, new upstream session after a
    /// successful handshake) starts with a clean record.
    pub fn reset(&mut self) {
        self.state = BreakerState::Closed { failures: 0 };
    }

    /// The state now.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Short name for status pages.
    pub fn label(&self) -> &'static str {
        match self.state {
            BreakerState::Closed { .. } => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen { .. } => "half_open",
        }
    }

    /// Whether a call may go; `Err` says how long until a probe may.
    pub fn admit(&mut self, now: Instant) -> Result<Admission, Duration> {
        match self.state {
            BreakerState::Closed { .. } => Ok(Admission::Call),
            BreakerState::Open { until } if now < until => Err(until - now),
            BreakerState::Open { .. } | BreakerState::HalfOpen { probing: false } => {
                self.state = BreakerState::HalfOpen { probing: true };
                Ok(Admission::Probe)
            }
            BreakerState::HalfOpen { probing: true } => Err(Duration::from_secs(1)),
        }
    }

    /// Records a call's outcome: `Some(true)` success, `Some(false)` failure, `None` neither
    /// (cancelled by the client).
    pub fn record(&mut self, outcome: Option<bool>, probe: bool, now: Instant) {
        if self.threshold == 0 {
            return;
        }
        match (outcome, self.state) {
            (Some(true), _) => self.state = BreakerState::Closed { failures: 0 },
            (Some(false), BreakerState::Closed { failures }) if failures + 1 >= self.threshold => {
                self.state = BreakerState::Open {
                    until: now + self.open_for,
                };
            }
            (Some(false), BreakerState::Closed { failures }) => {
                self.state = BreakerState::Closed {
                    failures: failures + 1,
                }
            }
            (Some(false), BreakerState::HalfOpen { .. }) if probe => {
                self.state = BreakerState::Open {
                    until: now + self.open_for,
                }
            }
            (None, BreakerState::HalfOpen { .. }) if probe => {
                self.state = BreakerState::HalfOpen { probing: false }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_fails_fast_and_closes_after_a_good_probe() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(10));
        for _ in 0..3 {
            assert_eq!(b.admit(t0), Ok(Admission::Call));
            b.record(Some(false), false, t0);
        }
        assert_eq!(b.label(), "open");
        assert!(b.admit(t0 + Duration::from_secs(1)).is_err());
        let later = t0 + Duration::from_secs(11);
        assert_eq!(b.admit(later), Ok(Admission::Probe));
        assert!(b.admit(later).is_err(), "one probe at a time");
        b.record(Some(false), true, later);
        assert_eq!(b.label(), "open", "a failed probe opens it again");
        let again = later + Duration::from_secs(11);
        assert_eq!(b.admit(again), Ok(Admission::Probe));
        b.record(Some(true), true, again);
        assert_eq!(b.label(), "closed");
    }
}
