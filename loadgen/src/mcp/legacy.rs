//! The legacy HTTP+SSE transport (MCP 2024-11-05) of a client: `GET {base}/sse` opens one
//! long-lived event stream whose first event, `endpoint`, names where to POST
//! (`/messages?sessionId=…`). POSTs are answered 202 with no result; the JSON-RPC responses
//! arrive as `message` events on the stream. A reader task owns the stream and hands each
//! response to the caller waiting for its id; when the stream ends, every waiting call
//! fails with [`CallError::StreamClosed`].

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{CallError, Endpoint, Envelope};
use crate::sse::{SseEvent, SseParser};

/// Protocol revision of the legacy transport.
pub const LEGACY_VERSION: &str = "2024-11-05";

/// What a call waits for: the raw `result`, or why there is none.
type Answer = Result<String, CallError>;

/// Calls waiting for their response, by JSON-RPC id, and whether the stream has ended.
#[derive(Default)]
struct Waiting {
    calls: HashMap<u64, oneshot::Sender<Answer>>,
    closed: Option<String>,
}

/// The state the reader task and the callers share.
#[derive(Default)]
pub(super) struct Inbox {
    waiting: Mutex<Waiting>,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a call before its POST goes out (the response may come first).
    pub(super) fn expect(&self, id: u64) -> Result<oneshot::Receiver<Answer>, CallError> {
        let mut w = self.lock();
        if let Some(reason) = &w.closed {
            return Err(CallError::StreamClosed(reason.clone()));
        }
        let (tx, rx) = oneshot::channel();
        w.calls.insert(id, tx);
        Ok(rx)
    }

    /// Gives up waiting for `id` (its POST failed or it timed out).
    pub(super) fn forget(&self, id: u64) {
        self.lock().calls.remove(&id);
    }

    /// Whether the stream has ended.
    pub(super) fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    /// Hands a `message` event's response to its caller; other events are ignored.
    fn deliver(&self, ev: &SseEvent) {
        if ev.data.is_empty() || ev.event.as_deref().is_some_and(|e| e != "message") {
            return;
        }
        if let Some((id, answer)) = routed(ev.data.as_bytes()) {
            if let Some(tx) = self.lock().calls.remove(&id) {
                let _ = tx.send(answer);
            }
        }
    }

    /// Marks the stream ended and fails every waiting call.
    fn close(&self, reason: String) {
        let calls = {
            let mut w = self.lock();
            w.closed.get_or_insert(reason.clone());
            std::mem::take(&mut w.calls)
        };
        for (_, tx) in calls {
            let _ = tx.send(Err(CallError::StreamClosed(reason.clone())));
        }
    }
}

/// The caller id and answer of a JSON-RPC response; `None` for requests, notifications
/// and messages without a numeric id (nobody here waits for those).
fn routed(json: &[u8]) -> Option<(u64, Answer)> {
    let env: Envelope<'_> = serde_json::from_slice(json).ok()?;
    if env.method.is_some() {
        return None;
    }
    let id = env.id.as_ref()?.as_u64()?;
    let answer = match (env.result, env.error) {
        (Some(r), _) => Ok(r.get().to_string()),
        (None, Some(e)) => Err(CallError::Rpc(e.code, e.message)),
        (None, None) => Err(CallError::Protocol(
            "response with neither result nor error".into(),
        )),
    };
    Some((id, answer))
}

/// Where the `endpoint` event points: an absolute `http://` URL, a path (`/messages?…`),
/// or a path relative to the stream's own.
pub(super) fn resolve_endpoint(stream: &Endpoint, data: &str) -> Result<Endpoint, CallError> {
    let data = data.trim();
    if data.starts_with("http://") {
        return Endpoint::parse(data).map_err(CallError::Protocol);
    }
    if let Some(rest) = data.strip_prefix("//") {
        return Endpoint::parse(&format!("http://{rest}")).map_err(CallError::Protocol);
    }
    if data.is_empty() || data.contains("://") {
        return Err(CallError::Protocol(format!(
            "endpoint event {data:?}: expected an http:// URL or a path"
        )));
    }
    if data.starts_with('/') {
        return Ok(stream.with_path(data));
    }
    let path = stream.path.split(['?', '#']).next().unwrap_or("/");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    Ok(stream.with_path(&format!("{dir}{data}")))
}

/// An open legacy stream: where to POST, the waiting calls, and the reader task.
pub(super) struct Legacy {
    /// The URL of the `endpoint` event.
    pub(super) post: Arc<Endpoint>,
    /// Shared with the reader.
    pub(super) inbox: Arc<Inbox>,
    reader: JoinHandle<()>,
}

impl Drop for Legacy {
    fn drop(&mut self) {
        // Ends the GET connection: the server sees the session's stream close.
        self.reader.abort();
        self.inbox.close("the client closed the stream".into());
    }
}

impl Legacy {
    /// `GET` the stream (its own connection), waits for the `endpoint` event, then leaves
    /// the rest of the stream to a reader task.
    pub(super) async fn open(stream: &Endpoint, timeout: Duration) -> Result<Legacy, CallError> {
        let opening = async {
            let mut conn = stream.connect().await?;
            let req = Request::builder()
                .method(Method::GET)
                .uri(stream.path.as_str())
                .header(HOST, stream.host.clone())
                .header(ACCEPT, HeaderValue::from_static("text/event-stream"))
                .body(Full::new(Bytes::new()))
                .map_err(|e| CallError::Protocol(e.to_string()))?;
            let resp = conn
                .send_request(req)
                .await
                .map_err(|e| CallError::Connect(e.to_string()))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(CallError::Http(status.as_u16()));
            }
            let is_sse = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("text/event-stream"));
            if !is_sse {
                return Err(CallError::Protocol(format!(
                    "GET {} did not answer text/event-stream",
                    stream.path
                )));
            }
            let mut body = resp.into_body();
            let mut parser = SseParser::new();
            let mut events = Vec::new();
            loop {
                let frame = match body.frame().await {
                    Some(Ok(f)) => f,
                    Some(Err(e)) => return Err(CallError::Connect(format!("reading SSE: {e}"))),
                    None => {
                        return Err(CallError::StreamClosed(
                            "the stream ended before the endpoint event".into(),
                        ))
                    }
                };
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                parser.feed(&data, &mut events);
                if let Some(i) = events
                    .iter()
                    .position(|e| e.event.as_deref() == Some("endpoint"))
                {
                    let post = resolve_endpoint(stream, &events[i].data)?;
                    // Events after the endpoint in the same chunk answer nothing yet.
                    return Ok((conn, body, parser, post));
                }
                events.clear();
            }
        };
        let (conn, body, parser, post) = tokio::time::timeout(timeout, opening)
            .await
            .map_err(|_| CallError::Timeout)??;
        let inbox = Arc::new(Inbox::default());
        let reader = tokio::spawn(read_stream(body, parser, inbox.clone(), conn));
        Ok(Legacy {
            post: Arc::new(post),
            inbox,
            reader,
        })
    }
}

/// Reads the stream to its end, delivering responses; then fails whatever still waits.
async fn read_stream(
    mut body: Incoming,
    mut parser: SseParser,
    inbox: Arc<Inbox>,
    _conn: http1::SendRequest<Full<Bytes>>, // the GET connection lives as long as this task
) {
    let mut events = Vec::new();
    let reason = loop {
        match body.frame().await {
            None => break "the server ended the SSE stream".to_string(),
            Some(Err(e)) => break format!("reading the SSE stream: {e}"),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    parser.feed(&data, &mut events);
                    for ev in events.drain(..) {
                        inbox.deliver(&ev);
                    }
                }
            }
        }
    };
    inbox.close(reason);
}

/// `initialize` params of a legacy client.
pub(super) fn initialize_params() -> String {
    format!(
        r#"{{"protocolVersion":"{LEGACY_VERSION}","capabilities":{{}},"clientInfo":{{"name":"loadgen","version":"{}"}}}}"#,
        env!("CARGO_PKG_VERSION")
    )
}

/// The `protocolVersion` of an `initialize` result.
pub(super) fn negotiated_version(result: &str) -> Result<String, CallError> {
    #[derive(Deserialize)]
    struct Init {
        #[serde(rename = "protocolVersion")]
        protocol_version: String,
    }
    serde_json::from_str::<Init>(result)
        .map(|i| i.protocol_version)
        .map_err(|e| CallError::Protocol(format!("initialize result: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(url: &str) -> Endpoint {
        Endpoint::parse(url).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn endpoint_event_urls() {
        let s = ep("http://127.0.0.1:9000/sse");
        let r = |d: &str| resolve_endpoint(&s, d).map(|e| (e.addr.port(), e.path));
        assert_eq!(
            r("/messages?sessionId=ab"),
            Ok((9000, "/messages?sessionId=ab".into()))
        );
        assert_eq!(
            r("http://127.0.0.1:9001/m/fast?sessionId=1"),
            Ok((9001, "/m/fast?sessionId=1".into()))
        );
        assert_eq!(
            r("messages?sessionId=x"),
            Ok((9000, "/messages?sessionId=x".into()))
        );
        let nested = ep("http://127.0.0.1:9000/sse/fast");
        assert_eq!(
            resolve_endpoint(&nested, "m?sessionId=1").map(|e| e.path),
            Ok("/sse/m?sessionId=1".into())
        );
        assert!(r("https://example.org/messages").is_err());
        assert!(r("").is_err());
    }

    #[tokio::test]
    async fn responses_reach_their_callers_and_a_closed_stream_fails_the_rest() {
        let inbox = Inbox::default();
        let one = inbox.expect(1).unwrap_or_else(|e| panic!("{e}"));
        let two = inbox.expect(2).unwrap_or_else(|e| panic!("{e}"));
        let three = inbox.expect(3).unwrap_or_else(|e| panic!("{e}"));
        let event = |name: Option<&str>, data: &str| SseEvent {
            event: name.map(str::to_string),
            data: data.into(),
            ..SseEvent::default()
        };
        // Not responses, or not ours: ignored.
        inbox.deliver(&event(
            Some("endpoint"),
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
        ));
        inbox.deliver(&event(None, r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#));
        inbox.deliver(&event(None, r#"{"jsonrpc":"2.0","id":9,"result":{}}"#));
        inbox.deliver(&event(None, "not json"));
        inbox.deliver(&event(
            Some("message"),
            r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32602,"message":"Unknown tool"}}"#,
        ));
        inbox.deliver(&event(None, r#"{"jsonrpc":"2.0","id":1,"result":{"a":1}}"#));
        assert_eq!(one.await, Ok(Ok(r#"{"a":1}"#.to_string())));
        assert_eq!(
            two.await,
            Ok(Err(CallError::Rpc(-32602, "Unknown tool".into())))
        );
        inbox.close("gone".into());
        assert_eq!(three.await, Ok(Err(CallError::StreamClosed("gone".into()))));
        assert!(inbox.is_closed());
        assert!(matches!(inbox.expect(4), Err(CallError::StreamClosed(_))));
    }
}
