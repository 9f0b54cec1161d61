//! JSON-RPC envelope parser (`Message::parse`), as a POST body or an upstream's message.
//!
//! Beyond "no panic": every classified message, rebuilt from its raw parts by the hub's own
//! `*_bytes` builders, parses back to the same kind with the same id, method and raw
//! payload; every refusal keeps its stable code (-32700 or -32600) and its error answer
//! (`error_bytes`) parses as an error response for the same id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_hub_actors::protocol::jsonrpc::{
    error_bytes, notification_bytes, raw_error_bytes, request_bytes, response_bytes,
};
use mcp_hub_actors::protocol::{Id, Message};

fn reparse(text: &str) -> Message {
    match Message::parse(text.as_bytes()) {
        Ok(m) => m,
        Err((_, e)) => panic!("the hub's own message {text:?} does not parse: {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    match Message::parse(data) {
        Ok(Message::Request { id, method, params }) => {
            let text = request_bytes(&id.to_json(), &method, params.as_deref());
            match reparse(&text) {
                Message::Request {
                    id: id2,
                    method: m2,
                    params: p2,
                } => {
                    assert_eq!(id, id2);
                    assert_eq!(method, m2);
                    assert_eq!(
                        params.map(|p| p.get().to_owned()),
                        p2.map(|p| p.get().to_owned())
                    );
                }
                other => panic!("request rebuilt as {other:?}"),
            }
        }
        Ok(Message::Notification { method, params }) => {
            let text = notification_bytes(&method, params.as_deref());
            match reparse(&text) {
                Message::Notification {
                    method: m2,
                    params: p2,
                } => {
                    assert_eq!(method, m2);
                    assert_eq!(
                        params.map(|p| p.get().to_owned()),
                        p2.map(|p| p.get().to_owned())
                    );
                }
                other => panic!("notification rebuilt as {other:?}"),
            }
        }
        Ok(Message::Response { id, result }) => match reparse(&response_bytes(&id, &result)) {
            Message::Response {
                id: id2,
                result: r2,
            } => {
                assert_eq!(id, id2);
                assert_eq!(result.get(), r2.get());
            }
            other => panic!("response rebuilt as {other:?}"),
        },
        Ok(Message::Error { id, error }) => {
            if let Some(id) = id {
                match reparse(&raw_error_bytes(&id, &error)) {
                    Message::Error { id: id2, error: e2 } => {
                        assert_eq!(Some(id), id2);
                        assert_eq!(error.get(), e2.get());
                    }
                    other => panic!("error response rebuilt as {other:?}"),
                }
            }
        }
        Err((id, e)) => {
            assert!(
                e.code == -32700 || e.code == -32600,
                "unexpected refusal code {}",
                e.code
            );
            let answer = error_bytes(id.as_ref(), &e);
            let value: serde_json::Value = match serde_json::from_str(&answer) {
                Ok(v) => v,
                Err(err) => panic!("error answer {answer:?} is not JSON: {err}"),
            };
            assert_eq!(value["error"]["code"], e.code);
            let echoed = serde_json::from_value::<Option<Id>>(value["id"].clone()).ok();
            assert_eq!(echoed, Some(id), "the error answer echoes the request id");
        }
    }
});
