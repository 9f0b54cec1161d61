//! The parts of the client besides POST exchanges: a session's standalone GET stream,
//! held open (idle-session benchmarks), and plain one-off HTTP requests (admin API,
//! `/readyz`).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use std::time::Duration;

use super::{read_body, CallError, Endpoint, Session};

/// An open standalone GET stream of a session, drained in the background.
pub struct HeldStream {
    task: tokio::task::JoinHandle<u64>,
}

impl HeldStream {
    /// Whether the server still holds the stream open.
    pub fn is_open(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for HeldStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Session {
    /// Opens the session's GET SSE stream on a connection of its own and keeps it open,
    /// reading keep-alives in the background. Returns once the response headers are in.
    pub async fn open_get_stream(&self) -> Result<HeldStream, CallError> {
        let mut sender = self.cfg.endpoint.connect().await?;
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(self.cfg.endpoint.path.as_str())
            .header(HOST, self.cfg.endpoint.host.clone())
            .header(ACCEPT, HeaderValue::from_static("text/event-stream"))
            .header("mcp-protocol-version", self.protocol.clone());
        if let Some(sid) = &self.session_id {
            req = req.header("mcp-session-id", sid.clone());
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|e| CallError::Protocol(e.to_string()))?;
        let resp = tokio::time::timeout(self.cfg.timeout, sender.send_request(req))
            .await
            .map_err(|_| CallError::Timeout)?
            .map_err(|e| CallError::Connect(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(CallError::Http(resp.status().as_u16()));
        }
        let mut body = resp.into_body();
        let task = tokio::spawn(async move {
            let _sender = sender; // keeps the connection alive with the stream
            let mut bytes = 0u64;
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(d) = frame.into_data() {
                    bytes += d.len() as u64;
                }
            }
            bytes
        });
        Ok(HeldStream { task })
    }
}

/// One plain HTTP request on a fresh connection (admin API, `/readyz`): status and body.
pub async fn http_request(
    ep: &Endpoint,
    method: Method,
    path: &str,
    json_body: Option<String>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), CallError> {
    let exchange = async {
        let mut sender = ep.connect().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, ep.host.clone());
        if json_body.is_some() {
            req = req.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let req = req
            .body(Full::new(Bytes::from(json_body.unwrap_or_default())))
            .map_err(|e| CallError::Protocol(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| CallError::Connect(e.to_string()))?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        Ok((status, read_body(&mut body).await?))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| CallError::Timeout)?
}
