//! [`LatencyWindow`]: call latency of one server over the last minute, for p50/p99 in its
//! runtime status. Owned by the ServerActor (no lock: only it records and reads).
//!
//! Sixty one-second slots, each a fixed log-scale histogram (4 buckets per doubling, so a
//! percentile is off by at most ~19 %, from 1 µs to ~18 min). Recording is an index
//! computation and an increment; a percentile walks 60 × 120 counters, done once a second.

use std::time::{Duration, Instant};

const SLOTS: usize = 60;
/// Buckets per doubling.
const SUB: u32 = 4;
/// Enough doublings for 2^30 µs (about 18 minutes); longer calls land in the last bucket.
const BUCKETS: usize = (30 * SUB) as usize;

/// Latency histogram of the last minute, in one-second slots.
pub struct LatencyWindow {
    origin: Instant,
    /// `(second the slot holds, counts)`; a slot whose second is stale counts as empty.
    slots: Vec<(u64, [u32; BUCKETS])>,
}

impl Default for LatencyWindow {
    fn default() -> Self {
        Self::new(Instant::now())
    }
}

fn bucket_of(us: u64) -> usize {
    let us = us.max(1) as f64;
    ((us.log2() * SUB as f64) as usize).min(BUCKETS - 1)
}

/// A representative value of bucket `i` (its geometric middle), in milliseconds.
fn value_of(i: usize) -> f64 {
    2f64.powf((i as f64 + 0.5) / SUB as f64) / 1000.0
}

impl LatencyWindow {
    /// An empty window whose seconds count from `origin`.
    pub fn new(origin: Instant) -> Self {
        Self {
            origin,
            slots: vec![(u64::MAX, [0; BUCKETS]); SLOTS],
        }
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs()
    }

    /// Records one call that took `took`, finished at `now`.
    pub fn record(&mut self, took: Duration, now: Instant) {
        let sec = self.second(now);
        let slot = &mut self.slots[(sec % SLOTS as u64) as usize];
        if slot.0 != sec {
            *slot = (sec, [0; BUCKETS]);
        }
        let b = bucket_of(took.as_micros().min(u64::MAX as u128) as u64);
        slot.1[b] = slot.1[b].saturating_add(1);
    }

    /// `(p50, p99)` in milliseconds over the minute before `now`; `None` without calls.
    pub fn percentiles(&self, now: Instant) -> Option<(f64, f64)> {
        let sec = self.second(now);
        let mut total = [0u64; BUCKETS];
        for (s, counts) in &self.slots {
            if *s != u64::MAX && *s + (SLOTS as u64) > sec && *s <= sec {
                for (t, c) in total.iter_mut().zip(counts) {
                    *t += u64::from(*c);
                }
            }
        }
        let n: u64 = total.iter().sum();
        if n == 0 {
            return None;
        }
        let at = |q: f64| {
            let rank = ((n as f64 * q).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, c) in total.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return value_of(i);
                }
            }
            value_of(BUCKETS - 1)
        };
        Some((at(0.50), at(0.99)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn percentiles_are_close_and_old_calls_fall_out() {
        let t0 = Instant::now();
        let mut w = LatencyWindow::new(t0);
        assert_eq!(w.percentiles(t0), None);
        for _ in 0..98 {
            w.record(Duration::from_millis(10), t0);
        }
        w.record(Duration::from_millis(500), t0);
        w.record(Duration::from_millis(500), t0);
        let (p50, p99) = w.percentiles(t0).unwrap();
        assert!((8.0..12.5).contains(&p50), "{p50}");
        assert!((400.0..620.0).contains(&p99), "{p99}");
        let later = t0 + Duration::from_secs(61);
        assert_eq!(
            w.percentiles(later),
            None,
            "a minute later the window is empty"
        );
        w.record(Duration::from_millis(1), later);
        let (p50, _) = w.percentiles(later).unwrap();
        assert!(p50 < 1.5, "{p50}");
    }
}
