//! InputCollector: gathers a client's answers to the server-to-client requests the hub
//! raised on behalf of a modern upstream's `input_required` result.
//!
//! - State: the keys of the `inputRequests` still unanswered, each with the oneshot its
//!   waiter listens on.
//! - Messages: [`ReplyToUpstream`] from the SessionActor (the client's answer, keyed by the
//!   `upstream_id` the bridge chose, i.e. the `inputRequests` key).
//! - Timers: one deadline; past it the actor stops and every waiter sees its sender dropped.
//! - Failure: stops when every key was answered or at the deadline; nothing to restart.

use actix::prelude::*;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::oneshot;

use super::sink::ReplyToUpstream;
use crate::protocol::Id;

/// The client's answer: `Ok(result)` or `Err(error object)`, raw.
pub type Answer = Result<Box<serde_json::value::RawValue>, Box<serde_json::value::RawValue>>;

/// Collects the answers of one `input_required` round.
pub struct InputCollector {
    waiting: HashMap<String, oneshot::Sender<Answer>>,
    deadline: Duration,
}

impl InputCollector {
    /// A collector for `keys`; returns it and one receiver per key, in the same order.
    pub fn new(
        keys: &[String],
        deadline: Duration,
    ) -> (Self, Vec<(String, oneshot::Receiver<Answer>)>) {
        let mut waiting = HashMap::with_capacity(keys.len());
        let mut receivers = Vec::with_capacity(keys.len());
        for k in keys {
            let (tx, rx) = oneshot::channel();
            waiting.insert(k.clone(), tx);
            receivers.push((k.clone(), rx));
        }
        (Self { waiting, deadline }, receivers)
    }
}

impl Actor for InputCollector {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(64);
        ctx.run_later(self.deadline, |_, ctx| ctx.stop());
    }
}

impl Handler<ReplyToUpstream> for InputCollector {
    type Result = ();

    fn handle(&mut self, msg: ReplyToUpstream, ctx: &mut Self::Context) {
        let key = match msg.upstream_id {
            Id::Str(s) => s,
            Id::Num(n) => n.to_string(),
        };
        if let Some(tx) = self.waiting.remove(&key) {
            let _ = tx.send(msg.body);
        }
        if self.waiting.is_empty() {
            ctx.stop();
        }
    }
}
