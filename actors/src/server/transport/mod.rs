//! Upstream transports. A [`Conn`] is one live, multiplexed connection to an upstream
//! (a child process or an HTTP endpoint with its MCP session). The ServerActor owns it and
//! hands clones to the futures that run calls; transports report lifecycle changes back to
//! the actor as [`ConnEvent`]s.

pub mod http;
pub mod modern;
pub mod mux;
pub mod rest;
pub mod sse;
pub mod sse_limit;
pub mod stdio;
pub mod tls;

use actix::prelude::*;
use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::rc::Rc;
use std::sync::Arc;

use super::catalog::{Catalog, Page};
use super::sink::{CallSink, ReplyToUpstream, UpstreamEventKind};
use crate::context::CallCtx;
use crate::error::HubError;
use crate::protocol::jsonrpc::{notification_bytes, raw_from_string, to_raw};
use crate::protocol::{version, Id, RpcError};

/// Result of one upstream call: the raw `result`, or why there is none.
pub type CallResult = Result<Box<RawValue>, HubError>;

/// One event of an upstream's `text/event-stream` body (`event`, `data`, `id`, `retry`).
pub use eventsource_stream::Event as SseEvent;

/// An upstream's SSE body, parsed into events; an `Err` is the body failing (its text).
pub type SseEvents = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<SseEvent, String>>>>;

/// The upstream-side SSE parser: the one place the hub turns an upstream's
/// `text/event-stream` body (chunks as they arrive) into events. Lines, multi-line `data:`,
/// `id:`, `retry:` and chunk boundaries anywhere (mid-line, mid-character) are its job.
/// Called by the Streamable HTTP transport ([`http`]: SSE answers to POSTs and their
/// `Last-Event-ID` resumes) and the legacy SSE transport ([`sse`]); the fuzz target
/// `fuzz/fuzz_targets/sse.rs` drives it with arbitrary bytes split at arbitrary points.
pub fn sse_events<S, E>(body: S) -> SseEvents
where
    S: futures_util::Stream<Item = Result<Bytes, E>> + 'static,
    E: std::fmt::Display + 'static,
{
    Box::pin(
        utf8_lossy(body)
            .eventsource()
            .map(|r| r.map_err(|e| e.to_string())),
    )
}

/// Decodes an SSE body as the spec says, before the event parser sees it: UTF-8 with
/// invalid sequences replaced by U+FFFD, whatever the chunk boundaries (a character split
/// across chunks waits for its last byte), and one leading byte order mark skipped.
///
/// The parser (eventsource-stream 0.2) did both itself and got both wrong, as the fuzz
/// target `sse` found: it kept every byte after an invalid sequence in its buffer until the
/// body ended (one stray byte stalled the stream and grew the buffer), and it panicked on
/// a body starting with a BOM (it sliced the 3-byte character at byte 1). So the text
/// handed on starts with an empty comment line, `:`, which the spec ignores: the parser's
/// own BOM check never sees a BOM.
pub(crate) fn utf8_lossy<S, E>(body: S) -> impl futures_util::Stream<Item = Result<String, E>>
where
    S: futures_util::Stream<Item = Result<Bytes, E>> + 'static,
{
    /// Where the decoder is: before the first character, inside the body, past its end.
    #[derive(Clone, Copy, PartialEq)]
    enum At {
        Start,
        Body,
        End,
    }
    let state = (Box::pin(body), Vec::new(), At::Start);
    futures_util::stream::unfold(state, |(mut body, mut carry, at)| async move {
        if at == At::End {
            return None;
        }
        loop {
            let (mut text, next) = match body.next().await {
                Some(Ok(bytes)) => (decode_utf8_chunk(&mut carry, &bytes), at),
                Some(Err(e)) => return Some((Err(e), (body, carry, at))),
                None if carry.is_empty() => return None,
                None => (String::from_utf8_lossy(&carry).into_owned(), At::End),
            };
            if text.is_empty() {
                continue;
            }
            if at == At::Start {
                let body_text = text.strip_prefix('\u{feff}').unwrap_or(&text);
                text = format!(":\n{body_text}");
            }
            let next = if next == At::End { At::End } else { At::Body };
            return Some((Ok(text), (body, std::mem::take(&mut carry), next)));
        }
    })
}

/// The text of `carry` + `bytes`, invalid sequences replaced by U+FFFD; an incomplete
/// character at the end is left in `carry` for the next chunk.
fn decode_utf8_chunk(carry: &mut Vec<u8>, bytes: &[u8]) -> String {
    carry.extend_from_slice(bytes);
    let buf = std::mem::take(carry);
    let mut text = String::with_capacity(buf.len());
    let mut chunks = buf.utf8_chunks().peekable();
    while let Some(chunk) = chunks.next() {
        text.push_str(chunk.valid());
        let bad = chunk.invalid();
        if bad.is_empty() {
            continue;
        }
        let incomplete = std::str::from_utf8(bad).is_err_and(|e| e.error_len().is_none());
        if chunks.peek().is_none() && incomplete {
            carry.extend_from_slice(bad);
        } else {
            text.push(char::REPLACEMENT_CHARACTER);
        }
    }
    text
}

/// One call to send upstream. `id` is hub-unique; when the client asked for progress the
/// params already carry `id` as the progress token and `progress` holds the client's own.
pub struct OutCall {
    /// Request context (request id travels upstream as `X-Request-Id`).
    pub ctx: CallCtx,
    /// Hub-unique upstream request id.
    pub id: u64,
    /// Method.
    pub method: String,
    /// Params, already rewritten (original tool name, hub progress token).
    pub params: Option<Box<RawValue>>,
    /// The client's progress token, restored on progress notifications.
    pub progress: Option<Id>,
    /// Where related messages go.
    pub sink: Option<CallSink>,
}

/// A lifecycle event from a transport to its ServerActor.
#[derive(Message)]
#[rtype(result = "()")]
pub enum ConnEvent {
    /// The connection is gone (child exited, stream broke). `generation` names which one.
    Closed {
        /// The connection generation that closed.
        generation: u64,
        /// Why.
        reason: String,
    },
    /// The upstream announced `notifications/{what}/list_changed`.
    ListChanged {
        /// The connection generation.
        generation: u64,
    },
}

/// A live upstream connection; cheap to clone.
#[derive(Clone)]
pub enum Conn {
    /// A child process.
    Stdio(Rc<stdio::StdioConn>),
    /// A Streamable HTTP endpoint.
    Http(Rc<http::HttpConn>),
    /// A legacy HTTP+SSE endpoint.
    Sse(Rc<sse::SseConn>),
    /// A REST API presented as an MCP server.
    Rest(Rc<rest::RestConn>),
}

/// What the ServerActor needs to know to open a connection.
pub struct OpenArgs {
    /// Server id.
    pub server: Arc<str>,
    /// Connection generation (events carry it back).
    pub generation: u64,
    /// Lifecycle events go here.
    pub events: Recipient<ConnEvent>,
    /// Where answers to server-to-client requests go (the ServerActor).
    pub reply_to: Recipient<ReplyToUpstream>,
    /// Which addresses the connection may reach (checked on every name resolution).
    pub policy: Arc<super::ssrf::UpstreamPolicy>,
    /// Bounds on the per-user / per-client upstream sessions (Streamable HTTP).
    pub sessions: super::upstream_session::UpstreamSessionLimits,
}

impl Conn {
    /// Sends a request and waits for its response. On a modern upstream the request gets
    /// the per-request `_meta` and an `input_required` answer is bridged to the client
    /// (see [`modern`]).
    pub async fn call(&self, call: OutCall) -> CallResult {
        if self.era() == modern::UpstreamEra::Modern {
            let server = self.server_id();
            return modern::call(self, &server, call).await;
        }
        self.call_raw(call).await
    }

    /// The protocol era detected at the handshake.
    pub fn era(&self) -> modern::UpstreamEra {
        match self {
            Conn::Stdio(c) => c.era.get(),
            Conn::Http(c) => c.era.get(),
            Conn::Sse(_) | Conn::Rest(_) => modern::UpstreamEra::Legacy,
        }
    }

    fn set_era(&self, era: modern::UpstreamEra) {
        match self {
            Conn::Stdio(c) => c.era.set(era),
            Conn::Http(c) => c.era.set(era),
            Conn::Sse(_) | Conn::Rest(_) => {}
        }
    }

    fn server_id(&self) -> Arc<str> {
        match self {
            Conn::Stdio(c) => c.mux.server().clone(),
            Conn::Sse(c) => c.mux.server().clone(),
            Conn::Http(c) => c.server().clone(),
            Conn::Rest(_) => Arc::from("rest"),
        }
    }

    /// Sends a request as is and waits for its response.
    pub async fn call_raw(&self, call: OutCall) -> CallResult {
        match self {
            Conn::Stdio(c) => c.mux.call(call).await,
            Conn::Sse(c) => c.mux.call(call).await,
            Conn::Rest(c) => c.call(call).await,
            Conn::Http(c) => c.call(call).await,
        }
    }

    /// Tells the upstream to stop working on request `id` (and stops waiting for it).
    pub fn cancel(&self, id: u64, reason: &str) {
        self.cancel_inner(id, reason, None);
    }

    /// Tells the upstream to stop request `id` whose caller (`ctx`, which names its upstream
    /// session) gave up waiting (a timeout): the call's own bookkeeping is already gone, so
    /// the notification goes out regardless.
    pub fn cancel_abandoned(&self, id: u64, reason: &str, ctx: &CallCtx) {
        self.cancel_inner(id, reason, Some(ctx));
    }

    fn cancel_inner(&self, id: u64, reason: &str, abandoned: Option<&CallCtx>) {
        let force = abandoned.is_some();
        let params = to_raw(&serde_json::json!({ "requestId": id, "reason": reason }));
        let msg = notification_bytes("notifications/cancelled", Some(&params));
        match self {
            Conn::Stdio(c) => c.mux.cancel(id, msg, force),
            Conn::Sse(c) => c.mux.cancel(id, msg, force),
            Conn::Rest(c) => c.cancel(id),
            Conn::Http(c) => c.cancel(id, msg, force, abandoned),
        }
    }

    /// Answers a server-to-client request.
    pub fn reply(&self, reply: ReplyToUpstream) {
        if let Conn::Http(c) = self {
            // The session that asked, under its own id.
            return c.reply(reply);
        }
        let msg = match &reply.body {
            Ok(result) => crate::protocol::jsonrpc::response_bytes(&reply.upstream_id, result),
            Err(error) => crate::protocol::jsonrpc::raw_error_bytes(&reply.upstream_id, error),
        };
        match self {
            Conn::Stdio(c) => {
                c.mux.answered(&reply.upstream_id);
                c.mux.send(msg)
            }
            Conn::Sse(c) => {
                c.mux.answered(&reply.upstream_id);
                c.mux.send(msg)
            }
            // A REST API never asks the client anything.
            Conn::Rest(_) | Conn::Http(_) => {}
        }
    }

    /// Ends the connection (kills the child, ends the HTTP session).
    pub fn close(&self) {
        match self {
            Conn::Stdio(c) => c.close(),
            Conn::Sse(c) => c.close(),
            Conn::Rest(c) => c.close(),
            Conn::Http(c) => c.close(),
        }
    }

    /// Ends the connection without grace: a stdio child is SIGKILLed at once (it is hung);
    /// other transports just close.
    pub fn abort(&self) {
        match self {
            Conn::Stdio(c) => c.abort(),
            _ => self.close(),
        }
    }

    /// Child pid, for stdio.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Conn::Stdio(c) => c.pid(),
            Conn::Http(_) | Conn::Sse(_) | Conn::Rest(_) => None,
        }
    }

    /// The upstream's MCP session id, for HTTP.
    pub fn upstream_session(&self) -> Option<String> {
        match self {
            Conn::Stdio(_) | Conn::Sse(_) | Conn::Rest(_) => None,
            Conn::Http(c) => c.session_id(),
        }
    }

    /// Era detection, then the handshake of that era: a stdio or Streamable HTTP upstream is
    /// first asked `server/discover` (modern); anything but a modern answer falls back to
    /// the legacy `initialize`. `known` is the era the server had last time: a known legacy
    /// server skips the probe (a failed handshake forgets it, so the next one probes).
    /// Returns a catalog with the handshake fields filled in.
    pub async fn handshake(
        &self,
        server: &str,
        known: Option<modern::UpstreamEra>,
    ) -> Result<Catalog, HubError> {
        let probe = known != Some(modern::UpstreamEra::Legacy);
        if probe && matches!(self, Conn::Stdio(_) | Conn::Http(_)) {
            if let Some(catalog) = modern::probe(self, server).await {
                self.set_era(modern::UpstreamEra::Modern);
                tracing::info!(
                    event = "upstream.era",
                    server,
                    era = "modern",
                    "upstream.era"
                );
                return Ok(catalog);
            }
        }
        self.set_era(modern::UpstreamEra::Legacy);
        self.legacy_handshake(server).await
    }

    /// The legacy handshake: `initialize`, then `notifications/initialized`.
    async fn legacy_handshake(&self, server: &str) -> Result<Catalog, HubError> {
        let params = to_raw(&serde_json::json!({
            "protocolVersion": version::LATEST,
            "capabilities": {
                "sampling": {},
                "elicitation": { "form": {}, "url": {} },
                "roots": { "listChanged": true }
            },
            "clientInfo": { "name": "mcp-hub", "version": env!("CARGO_PKG_VERSION") }
        }));
        let result = match self {
            Conn::Stdio(c) => {
                c.mux
                    .call(internal_call("initialize", Some(params)))
                    .await?
            }
            Conn::Sse(c) => {
                c.mux
                    .call(internal_call("initialize", Some(params)))
                    .await?
            }
            Conn::Http(c) => c.initialize(params).await?,
            // Nothing to negotiate: the REST transport synthesizes its handshake.
            Conn::Rest(c) => return c.handshake().await,
        };
        #[derive(serde::Deserialize)]
        struct InitResult {
            #[serde(rename = "protocolVersion")]
            protocol_version: String,
            #[serde(default)]
            capabilities: Value,
            #[serde(rename = "serverInfo", default)]
            server_info: Value,
            instructions: Option<String>,
        }
        let init: InitResult =
            serde_json::from_str(result.get()).map_err(|e| HubError::UpstreamProtocol {
                server: server.to_string(),
                detail: format!("bad initialize result: {e}"),
            })?;
        if !version::is_supported(&init.protocol_version) {
            return Err(HubError::UpstreamProtocol {
                server: server.to_string(),
                detail: format!(
                    "upstream chose protocol version {:?}, which the hub does not speak",
                    init.protocol_version
                ),
            });
        }
        if let Conn::Http(c) = self {
            c.set_protocol_version(&init.protocol_version);
        }
        let initialized = notification_bytes("notifications/initialized", None);
        match self {
            Conn::Stdio(c) => c.mux.send(initialized),
            Conn::Sse(c) => c.mux.send(initialized),
            Conn::Rest(_) => {}
            Conn::Http(c) => c.post_message(initialized),
        }
        let mut catalog = Catalog::default();
        catalog.protocol_version = init.protocol_version;
        catalog.capabilities = init.capabilities;
        catalog.server_info = init.server_info;
        catalog.instructions = init.instructions;
        Ok(catalog)
    }

    /// A liveness check (`ping`).
    pub async fn ping(&self) -> CallResult {
        // 2026-07-28 removed `ping`; `server/discover` is the cheapest modern request.
        if self.era() == modern::UpstreamEra::Modern {
            return self.call(internal_call("server/discover", None)).await;
        }
        self.call(internal_call("ping", None)).await
    }

    /// Loads every page of tools, prompts, resources and templates the upstream declared.
    pub async fn load_lists(&self, server: &str, catalog: &mut Catalog) -> Result<(), HubError> {
        if catalog.has_capability("tools") {
            let items = self.list_all(server, "tools/list").await?;
            catalog.set_tools(server, items);
        }
        if catalog.has_capability("prompts") {
            let items = self.list_all(server, "prompts/list").await?;
            catalog.set_prompts(server, items);
        }
        if catalog.has_capability("resources") {
            let items = self.list_all(server, "resources/list").await?;
            catalog.set_resources(items);
            // Templates are optional even for servers with resources.
            let templates = self
                .list_all(server, "resources/templates/list")
                .await
                .unwrap_or_default();
            catalog.set_templates(templates);
        }
        catalog.ready = true;
        Ok(())
    }

    async fn list_all(&self, server: &str, method: &str) -> Result<Vec<Box<RawValue>>, HubError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        // Bounded: a misbehaving upstream cannot loop the hub forever.
        for _ in 0..1000 {
            let params = cursor
                .as_ref()
                .map(|c| to_raw(&serde_json::json!({ "cursor": c })));
            let result = self.call(internal_call(method, params)).await?;
            let page: Page =
                serde_json::from_str(result.get()).map_err(|e| HubError::UpstreamProtocol {
                    server: server.to_string(),
                    detail: format!("bad {method} result: {e}"),
                })?;
            items.extend(page.items);
            match page.next_cursor {
                Some(c) if !c.is_empty() => cursor = Some(c),
                _ => return Ok(items),
            }
        }
        Ok(items)
    }
}

/// Whether a failed Streamable HTTP `initialize` says "no Streamable HTTP here" (HTTP 400,
/// 404 or 405 without a JSON-RPC body), so the legacy HTTP+SSE transport is worth a try.
pub fn refused_streamable_http(e: &HubError) -> bool {
    matches!(e, HubError::UpstreamProtocol { detail, .. }
        if ["HTTP 400", "HTTP 404", "HTTP 405"].iter().any(|p| detail.starts_with(p)))
}

/// Hub-unique upstream request ids (also used as progress tokens).
pub fn next_upstream_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn internal_call(method: &str, params: Option<Box<RawValue>>) -> OutCall {
    OutCall {
        ctx: CallCtx::internal("handshake"),
        id: next_upstream_id(),
        method: method.to_string(),
        params,
        progress: None,
        sink: None,
    }
}

/// The upstream's JSON-RPC error object, parsed (or wrapped when unreadable).
pub fn upstream_error(server: &str, raw: &RawValue) -> HubError {
    match serde_json::from_str::<RpcError>(raw.get()) {
        Ok(e) => HubError::Upstream(e),
        Err(e) => HubError::UpstreamProtocol {
            server: server.to_string(),
            detail: format!("unreadable error object: {e}"),
        },
    }
}

/// Routes an upstream notification that belongs to a call to the call's sink, restoring the
/// client's progress token. Returns false when the notification was not for a call.
pub fn forward_notification(
    server: &Arc<str>,
    method: &str,
    params: Option<&RawValue>,
    sink: &CallSink,
    progress: Option<&Id>,
) {
    let text = if method == "notifications/progress" {
        let Some(orig) = progress else { return };
        sink.clock.touch();
        match params.and_then(|p| serde_json::from_str::<Map<String, Value>>(p.get()).ok()) {
            Some(mut map) => {
                map.insert(
                    "progressToken".into(),
                    serde_json::to_value(orig).unwrap_or(Value::Null),
                );
                let params =
                    raw_from_string(serde_json::to_string(&map).unwrap_or_else(|_| "{}".into()));
                notification_bytes(method, Some(&params))
            }
            None => return,
        }
    } else {
        notification_bytes(method, params)
    };
    sink.send(server, UpstreamEventKind::Notification(text));
}

/// Reads the numeric progress token of an upstream progress notification.
pub fn progress_token(params: Option<&RawValue>) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct P {
        #[serde(rename = "progressToken")]
        progress_token: Value,
    }
    let p: P = serde_json::from_str(params?.get()).ok()?;
    match p.progress_token {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use futures_util::FutureExt;
    use std::convert::Infallible;

    /// The events of a body arriving in `chunks`, as (type, data, id).
    fn events(chunks: &[&[u8]]) -> Vec<Result<(String, String, String), String>> {
        let body = futures_util::stream::iter(
            chunks
                .iter()
                .map(|c| Ok::<_, Infallible>(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        );
        sse_events(body)
            .map(|r| r.map(|e| (e.event, e.data, e.id)))
            .collect::<Vec<_>>()
            .now_or_never()
            .unwrap()
    }

    fn ok(event: &str, data: &str, id: &str) -> Result<(String, String, String), String> {
        Ok((event.into(), data.into(), id.into()))
    }

    #[test]
    fn a_body_starting_with_a_bom_parses() {
        // fuzz/corpus/sse/bom_utf8: the parser sliced the BOM at byte 1 and panicked.
        let got = events(&[b"\xef\xbb\xbfid: s.1.7\ndata: {}\n\n"]);
        assert_eq!(got, vec![ok("message", "{}", "s.1.7")]);
        // Only one BOM is skipped; a second one is part of the first field's name.
        let got = events(&[b"\xef\xbb", b"\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n"]);
        assert_eq!(got, vec![ok("message", "y", "")]);
    }

    #[test]
    fn an_invalid_utf8_byte_does_not_stall_the_stream() {
        // fuzz/corpus/sse/latin1_byte: everything after the byte waited for the body's end.
        let got = events(&[b"data: caf\xe9\n\n", b"data: next\n\n"]);
        let want = vec![ok("message", "caf\u{fffd}", ""), ok("message", "next", "")];
        assert_eq!(got, want);
        let got = events(&[b"data: \xc3", b"\xa9t\xc3", b"\xa9\n\ndata: \xe2\x82\n\n"]);
        let want = vec![
            ok("message", "\u{e9}t\u{e9}", ""),
            ok("message", "\u{fffd}", ""),
        ];
        assert_eq!(got, want);
    }
}
