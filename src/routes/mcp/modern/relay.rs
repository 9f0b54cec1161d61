//! [`Relay`]: the upstream-event mailbox of one modern call. The ServerActor addresses a
//! call's progress, logs and server-to-client requests to a `Recipient<UpstreamEvent>`;
//! a modern call has no SessionActor, so this tiny actor puts them on the call's channel.
//!
//! State: the channel's sender (and a task's answer channel). Messages: `UpstreamEvent`
//! (from transports), `TaskAnswers` (from `tasks/update`, for a task-run call).
//! Failure behaviour: a full or closed channel drops notifications and refuses requests
//! upstream at once, so an upstream never waits on a call nobody reads.

use actix::prelude::*;
use mcp_hub_actors::protocol::{codes, RpcError};
use mcp_hub_actors::server::{ReplyToUpstream, UpstreamEvent, UpstreamEventKind};
use mcp_hub_actors::tasks::TaskAnswers;
use mcp_hub_actors::HubError;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

/// What reaches a modern call's driver.
pub(crate) enum CallEvent {
    /// Progress, a log line or a server-to-client request from the upstream.
    Upstream(UpstreamEvent),
    /// The upstream answered (or the hub gave up).
    Done(Result<Box<RawValue>, HubError>),
}

/// Puts one call's upstream events on its channel; see the module docs.
pub(crate) struct Relay {
    pub tx: mpsc::Sender<CallEvent>,
    /// A task-run call's `tasks/update` answers (none for a call answered inline).
    pub answers: Option<mpsc::Sender<TaskAnswers>>,
}

impl Actor for Relay {
    type Context = Context<Self>;
}

impl Handler<UpstreamEvent> for Relay {
    type Result = ();

    fn handle(&mut self, ev: UpstreamEvent, _: &mut Self::Context) {
        if let Err(e) = self.tx.try_send(CallEvent::Upstream(ev)) {
            let ev = match e {
                mpsc::error::TrySendError::Full(ev) | mpsc::error::TrySendError::Closed(ev) => ev,
            };
            if let CallEvent::Upstream(UpstreamEvent {
                kind:
                    UpstreamEventKind::Request {
                        method,
                        upstream_id,
                        reply_to,
                        ..
                    },
                ..
            }) = ev
            {
                let err = RpcError::new(
                    codes::INTERNAL_ERROR,
                    format!("{method}: the client's call is no longer waiting"),
                );
                reply_to.do_send(ReplyToUpstream::refusal(upstream_id, &err));
            }
        }
    }
}

impl Handler<TaskAnswers> for Relay {
    type Result = ();

    /// A full or closed channel drops the answers; `taken` then fires as dropped, so the
    /// `tasks/update` waiting on it acks at once.
    fn handle(&mut self, answers: TaskAnswers, _: &mut Self::Context) {
        if let Some(tx) = &self.answers {
            let _ = tx.try_send(answers);
        }
    }
}
