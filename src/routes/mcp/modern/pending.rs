//! [`Pending`]: upstream server-to-client requests held for a modern client's retry.
//!
//! A legacy upstream asked for input (elicitation, sampling, roots) during a modern call;
//! the client got an `input_required` result whose signed `requestState` names an entry
//! here (the call and the round of requests it asked). The retry takes the entry (once: a second use finds nothing, which is how replays
//! are refused); an entry nobody takes expires after `modern.state_ttl_secs`, which refuses
//! the upstream request and cancels the call upstream.

use dashmap::DashMap;
use mcp_hub_actors::server::Cancel;
use std::sync::Arc;
use std::time::Duration;

use super::call::Running;
use super::input::Round;

/// One held call.
pub(crate) struct Held {
    /// The call, still running upstream.
    pub run: Running,
    /// Its upstream requests the client has not answered yet, by key.
    pub round: Round,
    /// The signed state the client got.
    pub token: String,
}

impl Held {
    /// Refuses the upstream requests and cancels the call (nobody will answer).
    fn abandon(self, why: &str) {
        self.round.refuse_all(why);
        self.run.cancel(why);
    }
}

/// Held calls by the nonce their `requestState` carries. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Pending(Arc<DashMap<String, Held>>);

impl Pending {
    /// Holds a call for at most `ttl`.
    pub fn insert(&self, nonce: String, held: Held, ttl: Duration) {
        self.0.insert(nonce.clone(), held);
        metrics::gauge!("mcp_hub_modern_held_calls").set(self.0.len() as f64);
        let map = self.0.clone();
        actix::spawn(async move {
            tokio::time::sleep(ttl).await;
            if let Some((_, held)) = map.remove(&nonce) {
                tracing::info!(event = "modern.input.expired", nonce = %nonce, "modern.input.expired");
                held.abandon("the client did not answer the input request in time");
            }
        });
    }

    /// Takes the call a nonce names, once.
    pub fn take(&self, nonce: &str) -> Option<Held> {
        let held = self.0.remove(nonce).map(|(_, h)| h);
        metrics::gauge!("mcp_hub_modern_held_calls").set(self.0.len() as f64);
        held
    }

    /// Puts a taken call back (the retry did not carry the answer).
    pub fn restore(&self, nonce: String, held: Held) {
        self.0.insert(nonce, held);
    }
}

/// Cancels a call upstream (shared by expiry and by a closed response stream).
pub(crate) fn cancel_upstream(
    server: &actix::Addr<mcp_hub_actors::server::ServerActor>,
    upstream_id: u64,
    why: &str,
) {
    server.do_send(Cancel {
        upstream_id,
        reason: why.to_string(),
    });
}
