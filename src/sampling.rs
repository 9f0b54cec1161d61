//! Log sampling: a tracing layer that keeps one in N of the high-volume events
//! (`log.sample_rate`), so a busy hub's log stays readable and cheap. Warnings and errors
//! are never sampled out, and neither is any event not on the list. Installed once by
//! `telemetry::init`.

use std::sync::atomic::{AtomicU64, Ordering};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// The events sampled (all at info level, one or more per call).
pub const SAMPLED: [&str; 4] = [
    "tool.call.accepted",
    "tool.call.proxy.start",
    "tool.call.proxy.done",
    "upstream.session.reused",
];

/// Keeps one in `every` of each sampled event (counted per event name, so each kind keeps
/// the same share); `every == 0` drops them all.
pub struct Sampler {
    every: u64,
    seen: [AtomicU64; SAMPLED.len()],
}

impl Sampler {
    /// A sampler for `rate` in 0.0..=1.0 (0.1: one in ten).
    pub fn new(rate: f64) -> Self {
        let every = if rate <= 0.0 {
            0
        } else {
            (1.0 / rate.min(1.0)).round().max(1.0) as u64
        };
        Self {
            every,
            seen: Default::default(),
        }
    }

    /// Whether the sampler drops anything at all.
    pub fn is_active(&self) -> bool {
        self.every != 1
    }

    fn keep(&self, event: &Event<'_>) -> bool {
        // WARN and ERROR compare lower than INFO: they always pass.
        if *event.metadata().level() <= Level::WARN
            || event.metadata().fields().field("event").is_none()
        {
            return true;
        }
        let mut name = EventName(None);
        event.record(&mut name);
        let Some(i) = name.0.and_then(|n| SAMPLED.iter().position(|s| *s == n)) else {
            return true;
        };
        self.every != 0 && self.seen[i].fetch_add(1, Ordering::Relaxed) % self.every == 0
    }
}

struct EventName(Option<&'static str>);

impl Visit for EventName {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "event" {
            self.0 = SAMPLED.iter().copied().find(|s| *s == value);
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S: Subscriber> Layer<S> for Sampler {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        self.keep(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_map_to_one_in_n() {
        assert_eq!(Sampler::new(1.0).every, 1);
        assert_eq!(Sampler::new(0.1).every, 10);
        assert_eq!(Sampler::new(0.0).every, 0);
        assert!(!Sampler::new(1.0).is_active());
    }
}
