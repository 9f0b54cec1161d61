//! Streamable HTTP transport (upstream side): one MCP session at a remote endpoint, shared
//! by every call through keep-alive pooled connections.
//!
//! Each call is one POST; the answer is JSON or an SSE stream that may carry progress,
//! logging and server-to-client requests before the response. A 404 for our session id
//! means the upstream forgot it: the first caller to notice re-initializes (the others wait
//! on the same lock and reuse the new session) and the call is retried once. An SSE answer
//! that ends before its response (the server closed it to make the client poll, or the
//! connection broke) is resumed with GET + `Last-Event-ID` after the server's `retry:`.

use awc::http::{header, StatusCode};
use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::value::RawValue;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

use super::{forward_notification, upstream_error, CallResult, ConnEvent, OpenArgs, OutCall};
use crate::error::HubError;
use crate::protocol::jsonrpc::{error_bytes, notification_bytes, request_bytes, response_bytes};
use crate::protocol::{codes, version, Id, Message, RpcError};
use crate::registry::ServerDef;
use crate::server::sink::{CallSink, UpstreamEventKind};

/// Detail of the error for an answer stream that ended before its response.
const STREAM_ENDED: &str = "SSE stream ended before the response";

/// Detail of the error for an answer stream whose session the upstream forgot mid-call.
const SESSION_GONE: &str = "the upstream forgot the session while answering";

/// Resumptions of one call's SSE stream before giving up.
const MAX_RESUMES: u32 = 5;

type EventStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<eventsource_stream::Event, SseFailure>>>,
>;

/// Why an upstream answer stream stopped early.
enum SseFailure {
    /// One event was over the limit: the call fails (a resume would only repeat it).
    TooLarge(String),
    /// The connection broke: the call may resume.
    Broken(String),
}

/// An answer body as SSE events, each bounded by [`super::sse_limit::MAX_EVENT_BYTES`].
fn events_of<S>(body: S) -> EventStream
where
    S: futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin + 'static,
{
    use super::sse_limit::{bounded, SseReadError, MAX_EVENT_BYTES};
    Box::pin(
        super::utf8_lossy(bounded(body, MAX_EVENT_BYTES))
            .eventsource()
            .map(|r| {
                r.map_err(|e| match e {
                    eventsource_stream::EventStreamError::Transport(
                        e @ SseReadError::TooLarge(_),
                    ) => SseFailure::TooLarge(e.to_string()),
                    other => SseFailure::Broken(other.to_string()),
                })
            }),
    )
}

/// Largest JSON response body accepted from an upstream.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// One upstream MCP session over Streamable HTTP.
pub struct HttpConn {
    server: Arc<str>,
    client: awc::Client,
    url: String,
    headers: Vec<(header::HeaderName, header::HeaderValue)>,
    session: RefCell<Option<String>>,
    session_gen: Cell<u64>,
    protocol_version: RefCell<String>,
    reinit: tokio::sync::Mutex<()>,
    session_gone: Cell<bool>,
    inflight: RefCell<HashMap<u64, oneshot::Sender<()>>>,
    args: OpenArgs,
    /// The protocol era the handshake detected (modern: no session, per-request headers).
    pub era: Cell<super::modern::UpstreamEra>,
}

struct InflightGuard<'a> {
    conn: &'a HttpConn,
    id: u64,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.conn.inflight.borrow_mut().remove(&self.id);
    }
}

impl HttpConn {
    /// Prepares a connection (no I/O yet; `handshake` does the first request).
    pub fn new(def: &ServerDef, args: OpenArgs) -> Result<Rc<HttpConn>, HubError> {
        let url = def.url.clone().unwrap_or_default();
        let mut headers = Vec::with_capacity(def.headers.len());
        for (k, v) in &def.headers {
            let name = header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| HubError::Internal(format!("header {k}: {e}")))?;
            let value = header::HeaderValue::from_str(v)
                .map_err(|e| HubError::Internal(format!("header {k}: {e}")))?;
            headers.push((name, value));
        }
        let connector = awc::Connector::new()
            .connector(crate::server::ssrf::tcp_connector(args.policy.clone()))
            .rustls_0_23(super::tls::client_config())
            .limit(def.max_concurrency().max(4))
            .timeout(Duration::from_secs(5));
        let client = awc::Client::builder()
            .connector(connector)
            .disable_timeout()
            .disable_redirects()
            .finish();
        Ok(Rc::new(HttpConn {
            server: args.server.clone(),
            client,
            url,
            headers,
            session: RefCell::new(None),
            session_gen: Cell::new(0),
            protocol_version: RefCell::new(version::LATEST.to_string()),
            reinit: tokio::sync::Mutex::new(()),
            session_gone: Cell::new(false),
            inflight: RefCell::new(HashMap::new()),
            args,
            era: Cell::new(super::modern::UpstreamEra::Legacy),
        }))
    }

    /// The upstream's session id.
    pub fn session_id(&self) -> Option<String> {
        self.session.borrow().clone()
    }

    /// Records the negotiated version, sent as `MCP-Protocol-Version` from now on.
    pub fn set_protocol_version(&self, v: &str) {
        *self.protocol_version.borrow_mut() = v.to_string();
    }

    /// The server id.
    pub fn server(&self) -> &Arc<str> {
        &self.server
    }

    fn request(&self, request_id: Option<&str>, session: Option<&str>) -> awc::ClientRequest {
        let mut req = self
            .client
            .post(&self.url)
            .insert_header((header::ACCEPT, "application/json, text/event-stream"))
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .insert_header((
                "MCP-Protocol-Version",
                self.protocol_version.borrow().as_str(),
            ));
        for (k, v) in &self.headers {
            req = req.insert_header((k.clone(), v.clone()));
        }
        if let Some(s) = session {
            req = req.insert_header(("Mcp-Session-Id", s));
        }
        if let Some(r) = request_id {
            req = req.insert_header(("X-Request-Id", r));
        }
        req
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> HubError {
        HubError::ServerUnavailable {
            server: self.server.to_string(),
            reason: format!("upstream unreachable: {e}"),
            retry_after_seconds: 1,
        }
    }

    /// `initialize` without a session; keeps the session id the upstream mints.
    pub async fn initialize(&self, params: Box<RawValue>) -> CallResult {
        let id = super::next_upstream_id();
        let body = Bytes::from(request_bytes(&id.to_string(), "initialize", Some(&params)));
        let resp = self
            .request(None, None)
            .send_body(body)
            .await
            .map_err(|e| self.unreachable(e))?;
        let session = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let result = self.read_response(id, None, None, resp).await?;
        tracing::info!(event = "upstream.session.established", server = %self.server, has_session = session.is_some(), "upstream.session.established");
        *self.session.borrow_mut() = session;
        self.session_gen.set(self.session_gen.get() + 1);
        Ok(result)
    }

    async fn reinitialize(&self, seen_gen: u64) -> Result<(), HubError> {
        let _lock = self.reinit.lock().await;
        if self.session_gen.get() != seen_gen {
            return Ok(()); // another call already re-initialized
        }
        tracing::info!(event = "upstream.session.invalidated", server = %self.server, "upstream.session.invalidated");
        let params = crate::protocol::jsonrpc::to_raw(&serde_json::json!({
            "protocolVersion": self.protocol_version.borrow().clone(),
            "capabilities": { "sampling": {}, "elicitation": { "form": {}, "url": {} }, "roots": { "listChanged": true } },
            "clientInfo": { "name": "mcp-hub", "version": env!("CARGO_PKG_VERSION") }
        }));
        self.initialize(params).await?;
        self.post_message(notification_bytes("notifications/initialized", None));
        Ok(())
    }

    /// Sends a request and waits for its response (JSON or SSE).
    pub async fn call(&self, call: OutCall) -> CallResult {
        let (cancel_tx, cancel_rx) = oneshot::channel();
        self.inflight.borrow_mut().insert(call.id, cancel_tx);
        let _guard = InflightGuard {
            conn: self,
            id: call.id,
        };
        let body = Bytes::from(request_bytes(
            &call.id.to_string(),
            &call.method,
            call.params.as_deref(),
        ));
        tokio::select! {
            res = self.exchange(&call, body) => res,
            _ = cancel_rx => Err(HubError::Cancelled),
        }
    }

    async fn exchange(&self, call: &OutCall, body: Bytes) -> CallResult {
        let mut attempt = 0;
        loop {
            let gen = self.session_gen.get();
            let session = self.session.borrow().clone();
            let mut req = self.request(Some(&call.ctx.request_id), session.as_deref());
            if self.era.get() == super::modern::UpstreamEra::Modern
                || call.method == "server/discover"
            {
                req = req
                    .insert_header(("MCP-Protocol-Version", crate::protocol::modern::VERSION))
                    .insert_header(("Mcp-Method", call.method.as_str()));
                if let Some(name) = super::modern::name_header(&call.method, call.params.as_deref())
                {
                    req = req.insert_header(("Mcp-Name", super::modern::header_value(&name)));
                }
            }
            let mut resp = req
                .send_body(body.clone())
                .await
                .map_err(|e| self.unreachable(e))?;
            let status = resp.status();
            if session.is_some() && attempt == 0 && call.method != "initialize" {
                // 404 means the upstream forgot our session; some servers say so with a 400
                // or 401 that names the session instead.
                let expired = match status {
                    StatusCode::NOT_FOUND => true,
                    StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED => {
                        let body = resp.body().limit(64 * 1024).await.unwrap_or_default();
                        let names_session = String::from_utf8_lossy(&body)
                            .to_ascii_lowercase()
                            .contains("session");
                        if !names_session {
                            return Err(HubError::UpstreamProtocol {
                                server: self.server.to_string(),
                                detail: format!(
                                    "HTTP {status}: {}",
                                    String::from_utf8_lossy(&body[..body.len().min(300)])
                                ),
                            });
                        }
                        true
                    }
                    _ => false,
                };
                if expired {
                    attempt += 1;
                    self.reinitialize(gen).await?;
                    continue;
                }
            }
            let result = self
                .read_response(call.id, call.sink.as_ref(), call.progress.as_ref(), resp)
                .await;
            match result {
                // The upstream forgot the session while answering: the stream it was on is gone
                // for good. Re-initialize and send the call again, once.
                Err(HubError::UpstreamProtocol { ref detail, .. })
                    if attempt == 0 && (detail == SESSION_GONE || detail == STREAM_ENDED) =>
                {
                    // The answer stream broke and could not be resumed. If the session it
                    // belonged to is gone (replaced meanwhile, or the upstream says 404), the
                    // call died with it: send it again, once, on a fresh session.
                    let gone = detail == SESSION_GONE
                        || self.session_gen.get() != gen
                        || match session.as_deref() {
                            Some(s) => self.session_forgotten(s).await,
                            None => false,
                        };
                    if !gone {
                        return result;
                    }
                    attempt += 1;
                    self.session_gone.set(false);
                    self.reinitialize(gen).await?;
                    continue;
                }
                other => return other,
            }
        }
    }

    async fn read_response<S>(
        &self,
        id: u64,
        sink: Option<&CallSink>,
        progress: Option<&Id>,
        mut resp: awc::ClientResponse<S>,
    ) -> CallResult
    where
        S: futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin + 'static,
    {
        let status = resp.status();
        let is_sse = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        if status.is_success() && is_sse {
            return self.read_sse(id, sink, progress, resp).await;
        }
        let body =
            resp.body()
                .limit(MAX_BODY_BYTES)
                .await
                .map_err(|e| HubError::UpstreamProtocol {
                    server: self.server.to_string(),
                    detail: format!("reading response body: {e}"),
                })?;
        match Message::parse(&body) {
            Ok(Message::Response { id: rid, result }) if matches_id(&rid, id) => Ok(result),
            Ok(Message::Error { error, .. }) => Err(upstream_error(&self.server, &error)),
            _ => Err(HubError::UpstreamProtocol {
                server: self.server.to_string(),
                detail: format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                ),
            }),
        }
    }

    async fn read_sse<S>(
        &self,
        id: u64,
        sink: Option<&CallSink>,
        progress: Option<&Id>,
        resp: awc::ClientResponse<S>,
    ) -> CallResult
    where
        S: futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin + 'static,
    {
        let mut events = events_of(resp);
        let mut last_event_id: Option<String> = None;
        let mut retry = Duration::from_millis(1000);
        let mut resumes = 0;
        loop {
            while let Some(ev) = events.next().await {
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(SseFailure::TooLarge(detail)) => {
                        tracing::warn!(event = "upstream.sse.too_large", server = %self.server, error = %detail);
                        return Err(HubError::UpstreamProtocol {
                            server: self.server.to_string(),
                            detail: format!("the upstream sent {detail}"),
                        });
                    }
                    Err(SseFailure::Broken(e)) => {
                        tracing::info!(event = "upstream.sse.broken", server = %self.server, error = %e);
                        break;
                    }
                };
                if !ev.id.is_empty() {
                    last_event_id = Some(ev.id.clone());
                }
                if let Some(r) = ev.retry {
                    retry = r;
                }
                if ev.data.is_empty() {
                    continue; // priming event
                }
                match Message::parse(ev.data.as_bytes()) {
                    Ok(Message::Response { id: rid, result }) if matches_id(&rid, id) => {
                        drain(events);
                        return Ok(result);
                    }
                    Ok(Message::Error { id: rid, error })
                        if rid.as_ref().is_none_or(|r| matches_id(r, id)) =>
                    {
                        drain(events);
                        return Err(upstream_error(&self.server, &error));
                    }
                    Ok(Message::Notification { method, params }) => {
                        if method.ends_with("/list_changed") {
                            self.args.events.do_send(ConnEvent::ListChanged {
                                generation: self.args.generation,
                            });
                        } else if let Some(sink) = sink {
                            forward_notification(
                                &self.server,
                                &method,
                                params.as_deref(),
                                sink,
                                progress,
                            );
                        }
                    }
                    Ok(Message::Request {
                        id: rid,
                        method,
                        params,
                    }) => self.on_request(rid, method, params, sink),
                    _ => {
                        tracing::debug!(event = "upstream.sse.ignored", server = %self.server, data = %ev.data)
                    }
                }
            }
            // The stream ended before the response: resume it (SEP-1699 polling, or a broken
            // connection) with GET + Last-Event-ID after the server's retry delay.
            let Some(last) = last_event_id.clone() else {
                break;
            };
            if resumes >= MAX_RESUMES {
                break;
            }
            resumes += 1;
            actix_rt::time::sleep(retry.min(Duration::from_secs(30))).await;
            match self.resume(&last).await {
                None if self.session_gone.get() => {
                    return Err(HubError::UpstreamProtocol {
                        server: self.server.to_string(),
                        detail: SESSION_GONE.into(),
                    });
                }
                Some(next) => {
                    tracing::info!(event = "upstream.sse.resumed", server = %self.server, last_event_id = %last, attempt = resumes);
                    events = next;
                }
                None => continue,
            }
        }
        Err(HubError::UpstreamProtocol {
            server: self.server.to_string(),
            detail: STREAM_ENDED.into(),
        })
    }

    /// Whether the upstream answers 404 for `session` (a `ping` on it).
    async fn session_forgotten(&self, session: &str) -> bool {
        let body = request_bytes(&super::next_upstream_id().to_string(), "ping", None);
        match self.request(None, Some(session)).send_body(body).await {
            Ok(resp) => resp.status() == StatusCode::NOT_FOUND,
            Err(_) => false,
        }
    }

    async fn resume(&self, last_event_id: &str) -> Option<EventStream> {
        let session = self.session.borrow().clone();
        let mut req = self
            .client
            .get(&self.url)
            .insert_header((header::ACCEPT, "text/event-stream"))
            .insert_header((
                "MCP-Protocol-Version",
                self.protocol_version.borrow().as_str(),
            ))
            .insert_header(("Last-Event-ID", last_event_id));
        for (k, v) in &self.headers {
            req = req.insert_header((k.clone(), v.clone()));
        }
        if let Some(s) = session {
            req = req.insert_header(("Mcp-Session-Id", s));
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => Some(events_of(resp)),
            Ok(resp) => {
                tracing::warn!(event = "upstream.sse.resume_failed", server = %self.server, status = resp.status().as_u16());
                if resp.status() == StatusCode::NOT_FOUND {
                    self.session_gone.set(true);
                }
                None
            }
            Err(e) => {
                tracing::warn!(event = "upstream.sse.resume_failed", server = %self.server, error = %e);
                None
            }
        }
    }

    fn on_request(
        &self,
        id: Id,
        method: String,
        params: Option<Box<RawValue>>,
        sink: Option<&CallSink>,
    ) {
        if method == "ping" {
            self.post_message(response_bytes(
                &id,
                &crate::protocol::jsonrpc::empty_object(),
            ));
            return;
        }
        match sink {
            Some(sink) => sink.send(
                &self.server,
                UpstreamEventKind::Request {
                    method,
                    params,
                    upstream_id: id,
                    reply_to: self.args.reply_to.clone(),
                },
            ),
            None => {
                let err = RpcError::new(
                    codes::METHOD_NOT_FOUND,
                    format!("{method}: no client is waiting on this server"),
                );
                self.post_message(error_bytes(Some(&id), &err));
            }
        }
    }

    /// Stops waiting for call `id` and tells the upstream.
    pub fn cancel(&self, id: u64, notification: String, force: bool) {
        let waiting = self.inflight.borrow_mut().remove(&id);
        let was_waiting = waiting.is_some();
        if let Some(tx) = waiting {
            let _ = tx.send(());
        }
        // Modern upstreams: closing the answer stream (dropping the exchange above) is the
        // cancellation; there is no notification to POST.
        if self.era.get() == super::modern::UpstreamEra::Modern {
            return;
        }
        if was_waiting || force {
            self.post_message(notification);
        }
    }

    /// POSTs a notification or a response in the background (the upstream answers 202).
    pub fn post_message(&self, msg: String) {
        let session = self.session.borrow().clone();
        let fut = self.request(None, session.as_deref()).send_body(msg);
        let server = self.server.clone();
        actix::spawn(async move {
            match fut.await {
                Ok(resp) if resp.status().is_success() => {}
                Ok(resp) => {
                    tracing::warn!(event = "upstream.post.rejected", server = %server, status = resp.status().as_u16())
                }
                Err(e) => {
                    tracing::warn!(event = "upstream.post.failed", server = %server, error = %e)
                }
            }
        });
    }

    /// Ends the upstream session (DELETE, best effort).
    pub fn close(&self) {
        let Some(session) = self.session.borrow_mut().take() else {
            return;
        };
        let mut req = self
            .client
            .delete(&self.url)
            .insert_header(("Mcp-Session-Id", session));
        for (k, v) in &self.headers {
            req = req.insert_header((k.clone(), v.clone()));
        }
        let fut = req.send();
        actix::spawn(async move {
            let _ = fut.await;
        });
    }
}

fn matches_id(id: &Id, expected: u64) -> bool {
    match id {
        Id::Num(n) => u64::try_from(*n).is_ok_and(|n| n == expected),
        Id::Str(s) => s.parse::<u64>().is_ok_and(|n| n == expected),
    }
}

/// Reads the rest of an answered SSE body in the background (bounded in time), so the
/// connection goes back to the keep-alive pool instead of being closed mid-body.
fn drain(mut events: EventStream) {
    actix::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while events.next().await.is_some() {}
        })
        .await;
    });
}
