//! The upstream-side SSE parser (`transport::sse_events`), fed an upstream's
//! `text/event-stream` body split into chunks at arbitrary points (mid-line, mid-CRLF,
//! mid-character), then each event handled as the transports do (`endpoint` resolved
//! against the stream's URL, message data parsed as JSON-RPC).
//!
//! Input: byte 0 seeds the chunk sizes (1 to 16 bytes); the rest is the body.
//!
//! Beyond "no panic": the events do not depend on where the body was split (the same as the
//! body in one piece, decoded as UTF-8 with replacement as the SSE spec says), the parser
//! never waits on a body that is all there, and no event type or id holds a line break.
#![no_main]

use bytes::Bytes;
use futures_util::{stream, FutureExt, StreamExt};
use libfuzzer_sys::fuzz_target;
use mcp_hub_actors::protocol::Message;
use mcp_hub_actors::server::transport::sse::resolve_endpoint;
use mcp_hub_actors::server::transport::{sse_events, SseEvent};
use std::convert::Infallible;

type Parsed = Vec<Result<(String, String, String, Option<std::time::Duration>), String>>;

fn parse(chunks: Vec<Bytes>) -> Parsed {
    let events = sse_events(stream::iter(chunks.into_iter().map(Ok::<_, Infallible>)));
    let Some(all) = events.collect::<Vec<_>>().now_or_never() else {
        panic!("the parser waited on a body that was all there");
    };
    all.into_iter()
        .map(|r| r.map(|e: SseEvent| (e.event, e.data, e.id, e.retry)))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let mut state = u32::from(seed) | 0x100;
    let mut chunks = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = ((state >> 16) as usize % 16 + 1).min(rest.len());
        chunks.push(Bytes::copy_from_slice(&rest[..n]));
        rest = &rest[n..];
    }
    let split = parse(chunks);
    let whole = parse(vec![Bytes::from(
        String::from_utf8_lossy(body).into_owned().into_bytes(),
    )]);
    assert_eq!(split, whole, "events depend on where the body was split");

    for (event, data, id, _) in split.into_iter().flatten() {
        assert!(!event.contains(['\r', '\n']), "event type {event:?}");
        assert!(!id.contains(['\r', '\n', '\0']), "event id {id:?}");
        assert!(!data.contains('\r'), "data {data:?}");
        match event.as_str() {
            "endpoint" => {
                let _ = resolve_endpoint("http://127.0.0.1:8080/sse/demo", &data);
            }
            _ => {
                let _ = Message::parse(data.as_bytes());
            }
        }
    }
});
