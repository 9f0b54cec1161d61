//! Latency histograms and failure counts. Each worker owns a [`Recorder`] (no locks on the
//! hot path); the run merges them at the end.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::mcp::CallError;

/// Longest latency the histogram can hold (longer ones are clamped to it).
const MAX_MICROS: u64 = 600_000_000;
/// How many example error messages a recorder keeps.
const MAX_SAMPLES: usize = 5;

/// Latencies (microseconds) and outcomes of one worker or of a whole run.
#[derive(Debug, Clone)]
pub struct Recorder {
    hist: Histogram<u64>,
    ok: u64,
    failures: BTreeMap<String, u64>,
    samples: Vec<String>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder: 1 µs to 10 min, 3 significant digits.
    pub fn new() -> Self {
        Self {
            hist: new_histogram(),
            ok: 0,
            failures: BTreeMap::new(),
            samples: Vec::new(),
        }
    }

    /// Records a success that took `latency`.
    pub fn success(&mut self, latency: Duration) {
        self.ok += 1;
        self.record_latency(latency);
    }

    /// Records a latency without counting an outcome (for secondary histograms).
    pub fn record_latency(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(MAX_MICROS)
            .clamp(1, MAX_MICROS);
        self.hist.saturating_record(us);
    }

    /// Records a failed request.
    pub fn failure(&mut self, err: &CallError) {
        *self.failures.entry(err.kind()).or_default() += 1;
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(err.to_string());
        }
    }

    /// Records `n` failures of `kind` that were never sent (e.g. open-loop backlog).
    pub fn unsent(&mut self, kind: &str, n: u64) {
        if n > 0 {
            *self.failures.entry(kind.to_string()).or_default() += n;
        }
    }

    /// Adds another recorder's figures.
    pub fn merge(&mut self, other: &Recorder) {
        let _ = self.hist.add(&other.hist);
        self.ok += other.ok;
        for (k, v) in &other.failures {
            *self.failures.entry(k.clone()).or_default() += v;
        }
        for s in &other.samples {
            if self.samples.len() < MAX_SAMPLES {
                self.samples.push(s.clone());
            }
        }
    }

    /// Successful requests.
    pub fn successes(&self) -> u64 {
        self.ok
    }

    /// Failed requests (all kinds).
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Failures by kind.
    pub fn failures(&self) -> &BTreeMap<String, u64> {
        &self.failures
    }

    /// A few example error messages.
    pub fn samples(&self) -> &[String] {
        &self.samples
    }

    /// Latency summary in milliseconds (of recorded latencies: successes only).
    pub fn latency(&self) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        if self.hist.is_empty() {
            return Latency::default();
        }
        Latency {
            p50_ms: ms(self.hist.value_at_quantile(0.50)),
            p90_ms: ms(self.hist.value_at_quantile(0.90)),
            p99_ms: ms(self.hist.value_at_quantile(0.99)),
            max_ms: ms(self.hist.max()),
            mean_ms: self.hist.mean() / 1000.0,
            count: self.hist.len(),
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, MAX_MICROS, 3) {
        Ok(h) => h,
        // Unreachable: constant bounds, 3 significant digits (the crate allows up to 5).
        Err(e) => panic!("histogram bounds rejected: {e}"),
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
    /// Samples.
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1..=1000 ms: the percentiles are known exactly (to the histogram's 3 digits).
    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        for ms in 1..=1000u64 {
            let r = if ms % 2 == 0 { &mut a } else { &mut b };
            r.success(Duration::from_millis(ms));
        }
        a.merge(&b);
        let l = a.latency();
        assert_eq!(l.count, 1000);
        assert_eq!(a.successes(), 1000);
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.002;
        assert!(close(l.p50_ms, 500.0), "{l:?}");
        assert!(close(l.p90_ms, 900.0), "{l:?}");
        assert!(close(l.p99_ms, 990.0), "{l:?}");
        assert!(close(l.max_ms, 1000.0), "{l:?}");
        assert!(close(l.mean_ms, 500.5), "{l:?}");
    }

    #[test]
    fn a_slow_tail_moves_p99_not_p50() {
        let mut r = Recorder::new();
        for _ in 0..980 {
            r.success(Duration::from_micros(200));
        }
        for _ in 0..20 {
            r.success(Duration::from_millis(80));
        }
        let l = r.latency();
        assert!((l.p50_ms - 0.2).abs() < 0.001, "{l:?}");
        assert!((l.p99_ms - 80.0).abs() < 0.1, "{l:?}");
    }

    #[test]
    fn failures_are_counted_by_kind() {
        let mut r = Recorder::new();
        r.failure(&CallError::Http(503));
        r.failure(&CallError::Http(503));
        r.failure(&CallError::Rpc(-32000, "busy".into()));
        r.failure(&CallError::Timeout);
        r.unsent("backlog", 3);
        assert_eq!(r.failed(), 7);
        assert_eq!(r.failures().get("http 503"), Some(&2));
        assert_eq!(r.failures().get("jsonrpc -32000"), Some(&1));
        assert_eq!(r.failures().get("timeout"), Some(&1));
        assert_eq!(r.failures().get("backlog"), Some(&3));
        assert_eq!(r.latency(), Latency::default());
    }
}
