//! A call's deadline at one timeout layer (server or hub): fixed, or pushed back by each
//! progress notification up to a hard maximum from the start (`timeouts.progress_extends`,
//! `timeouts.hard_max_ms`). A long job that keeps reporting progress is alive; one that
//! goes quiet for a whole timeout is not, and nothing runs past the hard maximum.

use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

use super::sink::ProgressClock;

/// How progress moves a deadline: the call's clock and the hard maximum.
#[derive(Clone, Debug)]
pub struct Extension {
    /// Touched on each progress notification of the call.
    pub clock: ProgressClock,
    /// Never past `start + hard_max`.
    pub hard_max: Duration,
}

/// Why a deadline fired.
#[derive(Debug, PartialEq, Eq)]
pub enum Expired {
    /// The timeout passed with no (more) progress.
    Timeout,
    /// Progress kept coming, but the hard maximum was reached.
    HardMax,
}

/// Runs `fut` until it finishes or its deadline fires: `timeout` after `start`, or after
/// the last progress when `extension` is set, but never past its hard maximum.
pub async fn run_until<F: Future>(
    fut: F,
    start: Instant,
    timeout: Duration,
    extension: Option<&Extension>,
) -> Result<F::Output, Expired> {
    tokio::pin!(fut);
    let mut deadline = start + timeout;
    loop {
        tokio::select! {
            out = &mut fut => return Ok(out),
            () = tokio::time::sleep_until(deadline) => {}
        }
        let Some(ext) = extension else {
            return Err(Expired::Timeout);
        };
        let hard = start + ext.hard_max.max(timeout);
        let wanted = ext
            .clock
            .last()
            .map(|t| Instant::from_std(t) + timeout)
            .filter(|w| *w > Instant::now());
        match wanted {
            None => return Err(Expired::Timeout),
            Some(_) if deadline >= hard => return Err(Expired::HardMax),
            Some(w) => deadline = w.min(hard),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn ticking(clock: ProgressClock, every: Duration, total: Duration) -> &'static str {
        let end = Instant::now() + total;
        while Instant::now() < end {
            tokio::time::sleep(every).await;
            clock.touch();
        }
        "done"
    }

    #[tokio::test]
    async fn progress_extends_up_to_the_hard_max() {
        let ms = Duration::from_millis;
        let clock = ProgressClock::default();
        let ext = Extension {
            clock: clock.clone(),
            hard_max: ms(5000),
        };
        let work = ticking(clock.clone(), ms(20), ms(300));
        let out = run_until(work, Instant::now(), ms(100), Some(&ext)).await;
        assert_eq!(
            out,
            Ok("done"),
            "progress every 20 ms keeps a 100 ms timeout alive"
        );

        let silent = tokio::time::sleep(ms(300));
        let out = run_until(silent, Instant::now(), ms(100), Some(&ext)).await;
        assert_eq!(out, Err(Expired::Timeout), "no progress, no extension");

        let clock = ProgressClock::default();
        let ext = Extension {
            clock: clock.clone(),
            hard_max: ms(200),
        };
        let work = ticking(clock, ms(20), ms(2000));
        let out = run_until(work, Instant::now(), ms(100), Some(&ext)).await;
        assert_eq!(out, Err(Expired::HardMax));
    }
}
