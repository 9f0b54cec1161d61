//! [`Round`]: the server-to-client requests a legacy upstream sent during one modern call
//! and the hub holds for the client, each under its `inputRequests` key.
//!
//! Naming: a request whose params carry the input-key hint
//! (`_meta["dev.mcp-hub/inputKey"]`, see `mcp_hub_actors::protocol::input_key`) is
//! asked under that key when it is free in the round; any other gets `{capability}-{n}`,
//! `n` counting the call's generated names. The hint is removed from the params the client
//! sees. Answers come back by key: each held request is answered once, with the client's
//! `inputResponses[key]`.

use actix::Recipient;
use mcp_hub_actors::protocol::input_key;
use mcp_hub_actors::protocol::jsonrpc::to_raw;
use mcp_hub_actors::protocol::modern::RequestMeta;
use mcp_hub_actors::protocol::{codes, Id, RpcError};
use mcp_hub_actors::server::{ReplyToUpstream, UpstreamEvent, UpstreamEventKind};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::relay::CallEvent;

/// Most requests one round holds; later ones wait in the call's channel for the next
/// round (a runaway upstream must not grow one `input_required` result without bound).
pub(crate) const MAX_ROUND_REQUESTS: usize = 16;

/// The client capability an upstream request needs, for the methods the bridge relays.
pub(crate) fn capability_of(method: &str) -> Option<&'static str> {
    match method {
        "sampling/createMessage" => Some("sampling"),
        "elicitation/create" => Some("elicitation"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

/// Whether `answer` has the shape of a result of `method` (an elicitation answer names its
/// `action`, a sampling answer has `role` and `content`, a roots answer a `roots` array).
/// A malformed answer is not delivered: its request is asked (again) instead, so the
/// upstream never sees what the client could not have meant.
pub(crate) fn fits(method: &str, answer: &Value) -> bool {
    let Some(o) = answer.as_object() else {
        return false;
    };
    match method {
        "elicitation/create" => {
            let action = o.get("action").and_then(Value::as_str);
            matches!(action, Some("accept" | "decline" | "cancel"))
                && o.get("content").is_none_or(Value::is_object)
        }
        "sampling/createMessage" => {
            o.get("role").is_some_and(Value::is_string)
                && o.get("content")
                    .is_some_and(|c| c.is_object() || c.is_array())
        }
        "roots/list" => o.get("roots").is_some_and(Value::is_array),
        _ => true,
    }
}

/// An upstream request the client is to be asked.
pub(crate) struct Asked {
    /// The capability it needs (`sampling`, `elicitation`, `roots`).
    pub cap: &'static str,
    /// Its method.
    pub method: String,
    /// Its params (an object; `{}` when it had none).
    pub params: Value,
    /// The id the upstream gave it.
    pub upstream_id: Id,
    /// Who delivers the answer upstream.
    pub reply_to: Recipient<ReplyToUpstream>,
}

impl Asked {
    /// Sends the client's answer (`Ok`) or a refusal (`Err`) upstream.
    pub fn reply(self, body: Result<Value, RpcError>) {
        self.reply_to.do_send(match body {
            Ok(v) => ReplyToUpstream {
                upstream_id: self.upstream_id,
                body: Ok(to_raw(&v)),
            },
            Err(e) => ReplyToUpstream::refusal(self.upstream_id, &e),
        });
    }
}

/// An upstream's server-to-client request during a call: method, params, the upstream's
/// id for it, and where the answer goes.
pub(crate) type Ask = (
    String,
    Option<Box<RawValue>>,
    Id,
    Recipient<ReplyToUpstream>,
);

/// Splits a server-to-client request off the call's other events.
pub(crate) fn as_ask(ev: Option<CallEvent>) -> Result<Ask, Option<CallEvent>> {
    match ev {
        Some(CallEvent::Upstream(UpstreamEvent {
            kind:
                UpstreamEventKind::Request {
                    method,
                    params,
                    upstream_id,
                    reply_to,
                },
            ..
        })) => Ok((method, params, upstream_id, reply_to)),
        other => Err(other),
    }
}

/// The request to ask the client, or `None` when the client did not declare the capability
/// it needs (or the bridge does not relay its method): then it is refused upstream at once.
pub(crate) fn to_ask(meta: &RequestMeta, ask: Ask) -> Option<Asked> {
    let (method, params, upstream_id, reply_to) = ask;
    let cap = capability_of(&method).filter(|c| meta.has_capability(c));
    let Some(cap) = cap else {
        let err = RpcError::new(
            codes::METHOD_NOT_FOUND,
            format!("{method}: the client did not declare this capability"),
        );
        reply_to.do_send(ReplyToUpstream::refusal(upstream_id, &err));
        return None;
    };
    let params: Value = params
        .as_deref()
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    Some(Asked {
        cap,
        method,
        params,
        upstream_id,
        reply_to,
    })
}

/// One held upstream request and the key the client answers it under.
struct HeldRequest {
    key: String,
    asked: Asked,
}

/// The upstream requests of one `input_required` round; see the module docs.
#[derive(Default)]
pub(crate) struct Round {
    held: Vec<HeldRequest>,
    requests: Map<String, Value>,
}

impl Round {
    /// Holds a request under its hint or a generated name (`counter` is the call's count of
    /// generated names); returns the key.
    pub fn add(&mut self, mut asked: Asked, counter: &mut u32) -> String {
        let key = match input_key::hint(Some(&asked.params)) {
            Some(h) if !self.requests.contains_key(h) => h.to_string(),
            _ => loop {
                *counter += 1;
                let k = format!("{}-{counter}", asked.cap);
                if !self.requests.contains_key(&k) {
                    break k;
                }
            },
        };
        input_key::strip(&mut asked.params);
        self.requests.insert(
            key.clone(),
            json!({ "method": asked.method, "params": asked.params }),
        );
        self.held.push(HeldRequest {
            key: key.clone(),
            asked,
        });
        key
    }

    /// How many requests are still held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether every request was answered.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The `inputRequests` of the requests still held.
    pub fn input_requests(&self) -> Value {
        Value::Object(self.requests.clone())
    }

    /// The keys still held, in arrival order (for logs).
    pub fn keys(&self) -> Vec<&str> {
        self.held.iter().map(|h| h.key.as_str()).collect()
    }

    /// Answers every held request `responses` has a well-formed answer for (see [`fits`]),
    /// taking the entries of held keys out of `responses`; the others stay held.
    pub fn answer_from(&mut self, responses: &mut Map<String, Value>) {
        for h in std::mem::take(&mut self.held) {
            match responses.remove(&h.key) {
                Some(answer) if fits(&h.asked.method, &answer) => {
                    self.requests.remove(&h.key);
                    h.asked.reply(Ok(answer));
                }
                Some(_) => {
                    tracing::info!(event = "modern.input.malformed", key = %h.key, method = %h.asked.method, "modern.input.malformed");
                    self.held.push(h);
                }
                None => self.held.push(h),
            }
        }
    }

    /// Refuses every held request upstream (nobody will answer them).
    pub fn refuse_all(self, why: &str) {
        for h in self.held {
            h.asked
                .reply(Err(RpcError::new(codes::INTERNAL_ERROR, why.to_string())));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use actix::prelude::*;

    /// Records what reaches it.
    struct Sink(std::sync::mpsc::Sender<(Id, bool)>);
    impl Actor for Sink {
        type Context = Context<Self>;
    }
    impl Handler<ReplyToUpstream> for Sink {
        type Result = ();
        fn handle(&mut self, m: ReplyToUpstream, _: &mut Self::Context) {
            let _ = self.0.send((m.upstream_id, m.body.is_ok()));
        }
    }

    fn asked(to: &Addr<Sink>, method: &str, id: &str, params: Value) -> Asked {
        Asked {
            cap: capability_of(method).unwrap(),
            method: method.into(),
            params,
            upstream_id: Id::Str(id.into()),
            reply_to: to.clone().recipient(),
        }
    }

    #[test]
    fn answers_are_checked_against_their_method() {
        assert!(fits(
            "elicitation/create",
            &json!({"action": "accept", "content": {"a": 1}})
        ));
        assert!(fits("elicitation/create", &json!({"action": "decline"})));
        assert!(!fits("elicitation/create", &json!(12345)));
        assert!(!fits("elicitation/create", &json!({"action": "maybe"})));
        assert!(fits(
            "sampling/createMessage",
            &json!({"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "m"})
        ));
        assert!(!fits("sampling/createMessage", &json!({"content": "hi"})));
        assert!(fits("roots/list", &json!({"roots": []})));
        assert!(!fits("roots/list", &Value::Null));
    }

    #[actix::test]
    async fn hints_name_requests_and_answers_go_by_key() {
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Sink(tx).start();
        let hinted = json!({"message": "name?", "_meta": {input_key::META_INPUT_KEY: "user_name"}});
        let mut round = Round::default();
        let mut n = 0;
        assert_eq!(
            round.add(
                asked(&sink, "elicitation/create", "u1", hinted.clone()),
                &mut n
            ),
            "user_name"
        );
        // The same hint again is taken: a generated name instead.
        assert_eq!(
            round.add(asked(&sink, "elicitation/create", "u2", hinted), &mut n),
            "elicitation-1"
        );
        assert_eq!(
            round.add(asked(&sink, "roots/list", "u3", json!({})), &mut n),
            "roots-2"
        );
        let reqs = round.input_requests();
        assert_eq!(
            reqs["user_name"]["params"],
            json!({"message": "name?"}),
            "hint stripped"
        );
        assert_eq!(reqs["roots-2"]["method"], "roots/list");

        let mut responses = Map::new();
        responses.insert("user_name".into(), json!({"action": "accept"}));
        responses.insert("roots-2".into(), json!(12345));
        responses.insert("extra".into(), json!(1));
        round.answer_from(&mut responses);
        assert_eq!(
            round.len(),
            2,
            "the malformed roots answer is not delivered"
        );
        assert_eq!(responses.keys().collect::<Vec<_>>(), ["extra"]);
        assert_eq!(round.keys(), ["elicitation-1", "roots-2"]);
        round.refuse_all("gone");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let got: Vec<_> = rx.try_iter().collect();
        assert_eq!(
            got,
            [
                (Id::Str("u1".into()), true),
                (Id::Str("u2".into()), false),
                (Id::Str("u3".into()), false)
            ]
        );
    }
}
