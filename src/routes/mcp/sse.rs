//! Framing a session stream as Server-Sent Events: a `retry:` hint with jitter, a lead
//! event (the priming event of a new stream, or a legacy session's `endpoint` event),
//! `event: message` frames with ids, keep-alive comments, and headers that stop proxies
//! from buffering. When the stream ends normally the session is told it drained, so it can
//! drop the stream's log.

use actix::Addr;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, Responder};
use actix_web_lab::sse;
use futures_util::StreamExt;
use mcp_hub_actors::session::{Opened, Outbound, SessionActor, StreamDrained};
use rand::Rng;
use std::convert::Infallible;
use std::time::Duration;
use tokio_stream::wrappers::ReceiverStream;

use crate::config::SessionSettings;

/// The priming event of a new stream (an id with empty data), if it has one.
pub fn priming(opened: &Opened) -> Option<sse::Event> {
    opened
        .priming_id
        .clone()
        .map(|id| sse::Event::Data(sse::Data::new("").id(id)))
}

/// An `event: message` frame for one logged message.
pub fn message(m: Outbound) -> sse::Event {
    sse::Event::Data(sse::Data::new(&*m.json).id(m.event_id).event("message"))
}

/// The SSE response for an opened stream: the `lead` events first (the priming event, a
/// legacy `endpoint` event, messages already taken from the stream), then the stream's
/// messages. `session_header` adds `Mcp-Session-Id`.
pub fn respond<L>(
    req: &HttpRequest,
    opened: Opened,
    lead: L,
    addr: Addr<SessionActor>,
    session_header: Option<&str>,
    settings: &SessionSettings,
) -> HttpResponse
where
    L: IntoIterator<Item = sse::Event>,
    L::IntoIter: 'static,
{
    let stream = opened.stream;
    let messages = ReceiverStream::new(opened.rx).map(message);
    let drained = futures_util::stream::once(async move {
        addr.do_send(StreamDrained {
            stream,
            resumable: true,
        });
    })
    .filter_map(|()| async { None });
    let events = futures_util::stream::iter(lead)
        .chain(messages)
        .chain(drained)
        .map(Ok::<_, Infallible>);
    let jitter = rand::rng().random_range(0..=settings.retry_ms);
    let mut resp = sse::Sse::from_stream(events)
        .with_retry_duration(Duration::from_millis(settings.retry_ms + jitter))
        .with_keep_alive(Duration::from_secs(settings.keep_alive_secs.max(1)))
        .customize()
        .insert_header(("X-Accel-Buffering", "no"))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if let Some(sid) = session_header {
        resp = resp.insert_header((super::session_header_name(), sid));
    }
    resp.respond_to(req).map_into_boxed_body()
}
