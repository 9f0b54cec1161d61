//! The hub as a client of 2026-07-28 ("modern", stateless) upstreams.
//!
//! - Detection ([`probe`]): `server/discover` with modern `_meta` first; a result naming
//!   2026-07-28 in `supportedVersions` makes the connection modern, anything else (an
//!   error, a 4xx, a timeout) falls back to the legacy `initialize` handshake. The answer
//!   is kept on the connection, so a reconnect (new connection) probes again.
//! - Calls ([`call`]): every request gets the per-request `_meta` (protocol version, the
//!   client capabilities the hub offers, client info); the HTTP transport adds
//!   `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` and no session.
//! - Bridging: an `input_required` answer to `tools/call`, `prompts/get` or
//!   `resources/read` becomes real server-to-client requests on the calling session (the
//!   same path a legacy upstream's `elicitation/create` takes); the answers are collected by
//!   an [`InputCollector`] and the call is retried with `inputResponses` and the upstream's
//!   `requestState` byte-for-byte, at most [`MAX_INPUT_ROUNDS`] times.

use actix::Actor;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::time::Duration;

use super::{next_upstream_id, CallResult, Conn, OutCall};
use crate::error::HubError;
use crate::protocol::jsonrpc::{raw_from_string, to_raw};
use crate::protocol::modern as wire;
use crate::protocol::Id;
use crate::server::catalog::Catalog;
use crate::server::input_collector::InputCollector;
use crate::server::sink::UpstreamEventKind;

/// `input_required` rounds one call may take before the hub gives up.
pub const MAX_INPUT_ROUNDS: usize = 8;
/// How long the hub waits for the client to answer one round of input requests.
const INPUT_DEADLINE: Duration = Duration::from_secs(300);
/// How long a stdio upstream gets to answer the `server/discover` probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Which protocol era an upstream connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamEra {
    /// 2024-11-05 … 2025-11-25: `initialize`, sessions, server-to-client requests.
    #[default]
    Legacy,
    /// 2026-07-28: `server/discover`, per-request `_meta`, `input_required`.
    Modern,
}

impl UpstreamEra {
    /// `"legacy"` or `"modern"`, as shown in the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::Modern => "modern",
        }
    }
}

/// The `_meta` the hub sends on every modern request.
pub fn request_meta() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(wire::META_PROTOCOL_VERSION.into(), json!(wire::VERSION));
    m.insert(
        wire::META_CLIENT_CAPABILITIES.into(),
        json!({"sampling": {}, "elicitation": {"form": {}, "url": {}}, "roots": {}}),
    );
    m.insert(
        wire::META_CLIENT_INFO.into(),
        json!({"name": "mcp-hub", "version": env!("CARGO_PKG_VERSION")}),
    );
    m
}

/// `params` with the modern `_meta` merged in (keys already there, e.g. `progressToken`,
/// are kept) and, when given, `extra` members set.
pub fn with_meta(params: Option<&RawValue>, extra: Option<Map<String, Value>>) -> Box<RawValue> {
    let mut obj: Map<String, Value> = params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or_default();
    let meta = obj
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(m) = meta {
        for (k, v) in request_meta() {
            m.insert(k, v);
        }
    }
    for (k, v) in extra.unwrap_or_default() {
        obj.insert(k, v);
    }
    raw_from_string(serde_json::to_string(&obj).unwrap_or_else(|_| "{}".into()))
}

/// The `Mcp-Name` of a request: `params.name` or `params.uri` for the methods that need it.
pub fn name_header(method: &str, params: Option<&RawValue>) -> Option<String> {
    let key = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return None,
    };
    let v: Value = serde_json::from_str(params?.get()).ok()?;
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Encodes a header value the modern way: plain visible ASCII as is, anything else as
/// `=?base64?…?=`.
pub fn header_value(v: &str) -> String {
    use base64::Engine;
    let plain = !v.is_empty()
        && v.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !v.starts_with("=?base64?")
        && v.trim() == v;
    if plain {
        v.to_string()
    } else {
        let b = base64::engine::general_purpose::STANDARD.encode(v.as_bytes());
        format!("=?base64?{b}?=")
    }
}

/// `params` of the `server/discover` probe.
pub fn discover_params() -> Box<RawValue> {
    with_meta(None, None)
}

/// Reads a `server/discover` result: `Some(catalog)` (handshake fields filled) when it names
/// 2026-07-28, `None` when this is no modern server the hub can speak to.
pub fn catalog_from_discover(result: &RawValue) -> Option<Catalog> {
    let v: Value = serde_json::from_str(result.get()).ok()?;
    let versions = v.get("supportedVersions")?.as_array()?;
    if !versions.iter().any(|x| x.as_str() == Some(wire::VERSION)) {
        return None;
    }
    let mut catalog = Catalog::default();
    catalog.protocol_version = wire::VERSION.to_string();
    catalog.capabilities = v.get("capabilities").cloned().unwrap_or_else(|| json!({}));
    catalog.server_info = v
        .get("_meta")
        .and_then(|m| m.get(wire::META_SERVER_INFO))
        .or_else(|| v.get("serverInfo"))
        .cloned()
        .unwrap_or(Value::Null);
    catalog.instructions = v
        .get("instructions")
        .and_then(Value::as_str)
        .map(str::to_string);
    Some(catalog)
}

/// Asks a fresh connection `server/discover`; `Some(catalog)` if it is a modern server.
/// Every failure (error, 4xx, unreadable answer, timeout) means "not modern".
pub async fn probe(conn: &Conn, server: &str) -> Option<Catalog> {
    let call = OutCall {
        ctx: crate::context::CallCtx::internal("probe"),
        id: next_upstream_id(),
        method: "server/discover".into(),
        params: Some(discover_params()),
        progress: None,
        sink: None,
    };
    let answer = tokio::time::timeout(PROBE_TIMEOUT, conn.call_raw(call)).await;
    match answer {
        Ok(Ok(result)) => {
            let catalog = catalog_from_discover(&result);
            if catalog.is_none() {
                tracing::info!(
                    event = "upstream.era.probe",
                    server,
                    outcome = "discover without 2026-07-28",
                    "upstream.era.probe"
                );
            }
            catalog
        }
        Ok(Err(e)) => {
            tracing::info!(event = "upstream.era.probe", server, outcome = "legacy", error = %e, "upstream.era.probe");
            None
        }
        Err(_) => {
            tracing::info!(
                event = "upstream.era.probe",
                server,
                outcome = "timeout",
                "upstream.era.probe"
            );
            None
        }
    }
}

/// Methods whose answer may be `input_required`.
fn may_need_input(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get" | "resources/read")
}

/// A modern call: `_meta` added, `input_required` bridged into server-to-client requests on
/// the calling session and retried with the answers.
pub async fn call(conn: &Conn, server: &str, call: OutCall) -> CallResult {
    let OutCall {
        ctx,
        id,
        method,
        params,
        progress,
        sink,
    } = call;
    match method.as_str() {
        // Removed in 2026-07-28. Without `_meta` logLevel the upstream sends no log
        // messages at all, so a level change has nothing to change: answered here.
        "logging/setLevel" => return Ok(to_raw(&json!({}))),
        "resources/subscribe" | "resources/unsubscribe" => {
            return Err(HubError::MethodNotFound(format!(
                "{method}: the upstream speaks {} (no resource subscriptions)",
                wire::VERSION
            )))
        }
        _ => {}
    }
    let mut extra: Option<Map<String, Value>> = None;
    let first_id = id;
    let mut id = id;
    for round in 0..=MAX_INPUT_ROUNDS {
        let mut sent = with_meta(params.as_deref(), extra.take());
        if id != first_id {
            sent = retarget_progress(&sent, first_id, id);
        }
        let out = OutCall {
            ctx: ctx.clone(),
            id,
            method: method.clone(),
            params: Some(sent),
            progress: progress.clone(),
            sink: sink.clone(),
        };
        let result = conn.call_raw(out).await?;
        if !may_need_input(&method) {
            return Ok(result);
        }
        let Some((requests, state)) = input_required(&result) else {
            return Ok(result);
        };
        if round == MAX_INPUT_ROUNDS {
            break;
        }
        let Some(sink) = sink.as_ref() else {
            return Err(HubError::UpstreamProtocol {
                server: server.to_string(),
                detail: "the upstream needs client input (input_required) but this call has no client session to ask".into(),
            });
        };
        let responses = ask_client(server, sink, &requests).await?;
        let mut next = Map::new();
        next.insert("inputResponses".into(), Value::Object(responses));
        if let Some(s) = state {
            next.insert("requestState".into(), s);
        }
        extra = Some(next);
        // A retry is a new request: a new id.
        id = next_upstream_id();
    }
    Err(HubError::UpstreamProtocol {
        server: server.to_string(),
        detail: format!(
            "the upstream still asked for input after {MAX_INPUT_ROUNDS} rounds; giving up"
        ),
    })
}

/// A retry has a new id; the hub's progress token is the call's id, so it follows (the
/// transports route progress by it).
fn retarget_progress(params: &RawValue, old: u64, new: u64) -> Box<RawValue> {
    let mut v: Value = match serde_json::from_str(params.get()) {
        Ok(v) => v,
        Err(_) => return params.to_owned(),
    };
    if let Some(t) = v.pointer_mut("/_meta/progressToken") {
        if t.as_u64() == Some(old) {
            *t = json!(new);
        }
    }
    to_raw(&v)
}

/// `(inputRequests, requestState)` of an `input_required` result.
fn input_required(result: &RawValue) -> Option<(Map<String, Value>, Option<Value>)> {
    // Cheap pre-check: most results are not input_required.
    if !result.get().contains("input_required") {
        return None;
    }
    let v: Value = serde_json::from_str(result.get()).ok()?;
    if v.get("resultType").and_then(Value::as_str) != Some("input_required") {
        return None;
    }
    let requests = v
        .get("inputRequests")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    Some((requests, v.get("requestState").cloned()))
}

/// Sends each input request to the client as a real server-to-client request and waits
/// for every answer; returns `inputResponses`.
async fn ask_client(
    server: &str,
    sink: &crate::server::sink::CallSink,
    requests: &Map<String, Value>,
) -> Result<Map<String, Value>, HubError> {
    let keys: Vec<String> = requests.keys().cloned().collect();
    let (collector, receivers) = InputCollector::new(&keys, INPUT_DEADLINE);
    let addr = collector.start();
    let server_arc: std::sync::Arc<str> = server.into();
    for (key, req) in requests {
        let method = req
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if method.is_empty() {
            return Err(HubError::UpstreamProtocol {
                server: server.to_string(),
                detail: format!("inputRequests[{key}] has no method"),
            });
        }
        // The upstream's own key goes along as the input-key hint, so a modern client
        // behind the hub's bridge answers under the same name.
        let mut params = req.get("params").cloned().unwrap_or(Value::Null);
        crate::protocol::input_key::set(&mut params, key);
        let params = Some(to_raw(&params));
        sink.send(
            &server_arc,
            UpstreamEventKind::Request {
                method,
                params,
                upstream_id: Id::Str(key.clone()),
                reply_to: addr.clone().recipient(),
            },
        );
    }
    let mut responses = Map::new();
    for (key, rx) in receivers {
        match rx.await {
            Ok(Ok(result)) => {
                let v: Value = serde_json::from_str(result.get()).unwrap_or(Value::Null);
                responses.insert(key, v);
            }
            Ok(Err(error)) => return Err(super::upstream_error(server, &error)),
            Err(_) => {
                return Err(HubError::UpstreamProtocol {
                    server: server.to_string(),
                    detail: format!(
                        "the client did not answer the upstream's input request {key} within {}s",
                        INPUT_DEADLINE.as_secs()
                    ),
                })
            }
        }
    }
    Ok(responses)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn meta_is_merged_and_names_are_read() {
        let p = raw_from_string(r#"{"name":"echo","_meta":{"progressToken":7}}"#.into());
        let out: Value = serde_json::from_str(with_meta(Some(&p), None).get()).unwrap();
        assert_eq!(out["_meta"]["progressToken"], 7);
        assert_eq!(out["_meta"][wire::META_PROTOCOL_VERSION], wire::VERSION);
        assert_eq!(name_header("tools/call", Some(&p)).as_deref(), Some("echo"));
        assert_eq!(header_value("héllo"), "=?base64?aMOpbGxv?=");
        assert_eq!(header_value("plain"), "plain");
    }

    #[test]
    fn discover_results_are_classified() {
        let modern = raw_from_string(
            r#"{"supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"x"}}}"#.into(),
        );
        let c = catalog_from_discover(&modern).unwrap();
        assert!(c.has_capability("tools"));
        assert_eq!(c.server_info["name"], "x");
        let other = raw_from_string(r#"{"supportedVersions":["2027-01-01"]}"#.into());
        assert!(catalog_from_discover(&other).is_none());
    }
}
