//! Legacy HTTP+SSE transport (MCP 2024-11-05), upstream side: `GET url` opens an event
//! stream whose first event, `endpoint`, names where to POST; every response and server
//! message then arrives on that stream. Calls are multiplexed by a [`Mux`].
//!
//! Tasks per connection: a reader (the event stream) and a writer (POSTs queued messages in
//! order once the endpoint is known). When the stream ends, waiting calls fail with "server
//! restarted" and the ServerActor reconnects with backoff.

use bytes::Bytes;
use futures_util::StreamExt;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

use super::mux::{Mux, WRITE_QUEUE};
use super::{sse_events, ConnEvent, OpenArgs};
use crate::error::HubError;
use crate::registry::ServerDef;

/// One legacy SSE session at an upstream.
pub struct SseConn {
    /// The calls waiting on this stream.
    pub mux: Mux,
    stop: RefCell<Option<oneshot::Sender<()>>>,
}

impl SseConn {
    /// Starts connecting to `def.url`; calls queue until the endpoint is known.
    pub fn open(def: &ServerDef, args: OpenArgs) -> Result<Rc<SseConn>, HubError> {
        let url = def.url.clone().unwrap_or_default();
        let connector = awc::Connector::new()
            .connector(crate::server::ssrf::tcp_connector(args.policy.clone()))
            .rustls_0_23(super::tls::client_config());
        let client = awc::Client::builder()
            .connector(connector)
            .disable_timeout()
            .finish();
        let mut headers = Vec::new();
        for (k, v) in &def.headers {
            headers.push((k.clone(), v.clone()));
        }
        let (writer, write_rx) = mpsc::channel(WRITE_QUEUE);
        let (stop_tx, stop_rx) = oneshot::channel();
        let (endpoint_tx, endpoint_rx) = oneshot::channel();
        let conn = Rc::new(SseConn {
            mux: Mux::new(args.server.clone(), writer, args.reply_to.clone()),
            stop: RefCell::new(Some(stop_tx)),
        });
        actix::spawn(write_loop(
            client.clone(),
            headers.clone(),
            args.server.clone(),
            endpoint_rx,
            write_rx,
        ));
        actix::spawn(read_loop(
            conn.clone(),
            client,
            url,
            headers,
            endpoint_tx,
            stop_rx,
            args,
        ));
        Ok(conn)
    }

    /// Ends the stream.
    pub fn close(&self) {
        if let Some(stop) = self.stop.borrow_mut().take() {
            let _ = stop.send(());
        }
    }
}

/// Resolves the `endpoint` event's URI against the SSE URL.
pub fn resolve_endpoint(base: &str, endpoint: &str) -> String {
    let endpoint = endpoint.trim();
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        return endpoint.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let origin_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let origin = &base[..origin_end];
    if endpoint.starts_with('/') {
        return format!("{origin}{endpoint}");
    }
    let path = &base[origin_end..];
    let path = path.split('?').next().unwrap_or("");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    format!("{origin}{dir}{endpoint}")
}

async fn write_loop(
    client: awc::Client,
    headers: Vec<(String, String)>,
    server: Arc<str>,
    endpoint: oneshot::Receiver<String>,
    mut rx: mpsc::Receiver<String>,
) {
    let Ok(endpoint) = endpoint.await else { return };
    while let Some(msg) = rx.recv().await {
        let mut req = client
            .post(&endpoint)
            .insert_header(("Content-Type", "application/json"));
        for (k, v) in &headers {
            req = req.insert_header((k.as_str(), v.as_str()));
        }
        match tokio::time::timeout(Duration::from_secs(30), req.send_body(Bytes::from(msg))).await {
            Ok(Ok(resp)) if resp.status().is_success() => {}
            Ok(Ok(resp)) => {
                tracing::warn!(event = "upstream.post.rejected", server = %server, status = resp.status().as_u16())
            }
            Ok(Err(e)) => {
                tracing::warn!(event = "upstream.post.failed", server = %server, error = %e)
            }
            Err(_) => {
                tracing::warn!(event = "upstream.post.failed", server = %server, error = "timed out")
            }
        }
    }
}

async fn read_loop(
    conn: Rc<SseConn>,
    client: awc::Client,
    url: String,
    headers: Vec<(String, String)>,
    endpoint_tx: oneshot::Sender<String>,
    stop: oneshot::Receiver<()>,
    args: OpenArgs,
) {
    let reason = tokio::select! {
        reason = read_events(&conn, &client, &url, &headers, endpoint_tx, &args) => reason,
        _ = stop => "closed by the hub".to_string(),
    };
    conn.mux.fail_all(&reason);
    args.events.do_send(ConnEvent::Closed {
        generation: args.generation,
        reason,
    });
}

async fn read_events(
    conn: &SseConn,
    client: &awc::Client,
    url: &str,
    headers: &[(String, String)],
    endpoint_tx: oneshot::Sender<String>,
    args: &OpenArgs,
) -> String {
    let mut req = client
        .get(url)
        .insert_header(("Accept", "text/event-stream"));
    for (k, v) in headers {
        req = req.insert_header((k.as_str(), v.as_str()));
    }
    let resp = match tokio::time::timeout(Duration::from_secs(10), req.send()).await {
        Ok(Ok(r)) if r.status().is_success() => r,
        Ok(Ok(r)) => return format!("GET {url}: HTTP {}", r.status()),
        Ok(Err(e)) => return format!("GET {url}: {e}"),
        Err(_) => return format!("GET {url}: no answer in 10 s"),
    };
    let mut events = sse_events(super::sse_limit::bounded(
        resp,
        super::sse_limit::MAX_EVENT_BYTES,
    ));
    let mut endpoint_tx = Some(endpoint_tx);
    while let Some(ev) = events.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => return format!("event stream broke: {e}"),
        };
        match ev.event.as_str() {
            "endpoint" => {
                if let Some(tx) = endpoint_tx.take() {
                    let _ = tx.send(resolve_endpoint(url, &ev.data));
                }
            }
            "message" | "" if !ev.data.is_empty() && conn.mux.on_message(ev.data.as_bytes()) => {
                args.events.do_send(ConnEvent::ListChanged {
                    generation: args.generation,
                });
            }
            _ => {}
        }
    }
    "event stream ended".to_string()
}

#[cfg(test)]
mod tests {
    use super::resolve_endpoint;

    #[test]
    fn endpoints_resolve_against_the_sse_url() {
        let base = "http://127.0.0.1:8080/sse/demo";
        assert_eq!(
            resolve_endpoint(base, "/messages?sessionId=1"),
            "http://127.0.0.1:8080/messages?sessionId=1"
        );
        assert_eq!(
            resolve_endpoint(base, "messages?sessionId=1"),
            "http://127.0.0.1:8080/sse/messages?sessionId=1"
        );
        assert_eq!(
            resolve_endpoint(base, "https://x.example/m"),
            "https://x.example/m"
        );
    }
}
