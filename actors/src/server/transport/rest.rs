//! REST transport: a plain HTTP API presented as an MCP server. The ServerActor owns one
//! [`RestConn`] per connection generation, created in `connect` on the actor's arbiter.
//!
//! - The handshake is synthesized (protocol version = the hub's, capabilities: tools only,
//!   `serverInfo.name` = the server id); it also resolves `${ENV}` references in headers and
//!   loads the OpenAPI document, so a missing secret or an unreadable spec shows up as a
//!   failed handshake (retried with backoff), never as a half-working server.
//! - `tools/list` is answered from the tools built at the handshake, `ping` with `{}`, and
//!   `tools/call` by one HTTP request through a pooled `awc::Client` (one per connection,
//!   so one pool per server); every other method is `-32601`.
//! - Each request is bounded by the external-API timeout (the innermost of the hub's nested
//!   timeouts). Non-2xx answers are tool results with `isError: true`; an unreachable API or
//!   a timeout is a JSON-RPC error, like any other transport's.
//! - Log events `tool.http.request` / `tool.http.response` carry the request id, method,
//!   the URL with secret-looking query values redacted, status and latency. Header values
//!   are never logged.

mod request;
mod response;

use awc::http::header;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

use super::{CallResult, OpenArgs, OutCall};
use crate::error::HubError;
use crate::protocol::jsonrpc::{empty_object, to_raw};
use crate::protocol::version;
use crate::registry::{RestMethod, RestTool, ServerDef};
use crate::server::catalog::Catalog;
use crate::server::openapi;
use crate::validation::ValidatorCache;
use request::{header_name, parse_template, plan, resolve_env, Prepared};
pub use response::redact_url;
use response::{error_result, render};

/// Largest response body read from a REST API.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// One REST API as an MCP server; see the module docs.
pub struct RestConn {
    server: Arc<str>,
    def: Arc<ServerDef>,
    client: awc::Client,
    timeout: Duration,
    /// Checks the OpenAPI document's URL and the base URL it names.
    policy: Arc<crate::server::ssrf::UpstreamPolicy>,
    loaded: RefCell<Option<Rc<Loaded>>>,
    inflight: RefCell<HashMap<u64, oneshot::Sender<()>>>,
}

/// What the handshake built: resolved headers, the tools by name, the tools/list answer.
struct Loaded {
    base_url: String,
    headers: Vec<(header::HeaderName, header::HeaderValue)>,
    tools: HashMap<String, Prepared>,
    list: Box<RawValue>,
}

struct InflightGuard<'a> {
    conn: &'a RestConn,
    id: u64,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.conn.inflight.borrow_mut().remove(&self.id);
    }
}

impl RestConn {
    /// Prepares the connection pool (no I/O: the handshake loads what it needs).
    /// `default_timeout_ms` is the hub's `timeouts.external_ms`, used unless the definition
    /// sets `external_timeout_ms`.
    pub fn new(
        def: Arc<ServerDef>,
        default_timeout_ms: u64,
        args: OpenArgs,
    ) -> Result<Rc<RestConn>, HubError> {
        let timeout_ms = def.external_timeout_ms.unwrap_or(default_timeout_ms);
        let connector = awc::Connector::new()
            .connector(crate::server::ssrf::tcp_connector(args.policy.clone()))
            .rustls_0_23(super::tls::client_config())
            .limit(def.max_concurrency())
            .timeout(Duration::from_secs(5));
        // Timeouts are ours (around send + body); redirects are not followed so credentials
        // in headers never travel to a host the operator did not name.
        let client = awc::Client::builder()
            .connector(connector)
            .disable_timeout()
            .disable_redirects()
            .finish();
        Ok(Rc::new(RestConn {
            server: args.server.clone(),
            def,
            client,
            timeout: Duration::from_millis(timeout_ms),
            policy: args.policy.clone(),
            loaded: RefCell::new(None),
            inflight: RefCell::new(HashMap::new()),
        }))
    }

    fn fail(&self, detail: impl Into<String>) -> HubError {
        HubError::UpstreamProtocol {
            server: self.server.to_string(),
            detail: detail.into(),
        }
    }

    /// Resolves secrets, loads the OpenAPI document if any, builds the tools, and returns
    /// the synthesized handshake.
    pub async fn handshake(&self) -> Result<Catalog, HubError> {
        let def = &self.def;
        let mut headers = Vec::with_capacity(def.headers.len());
        for (k, v) in &def.headers {
            let name = header_name(k).map_err(|e| self.fail(e))?;
            let value = resolve_env(k, v).map_err(|e| self.fail(e))?;
            let value = header::HeaderValue::from_str(&value).map_err(|_| {
                self.fail(format!(
                    "headers.{k}: the resolved value is not a valid header value"
                ))
            })?;
            headers.push((name, value));
        }
        let mut tools = def.tools.clone();
        let mut base_url = def.base_url.clone();
        if let Some(source) = &def.openapi {
            let doc = openapi::load(source, self.policy.clone())
                .await
                .map_err(|e| self.fail(e.to_string()))?;
            let ops = def.operations.clone();
            // Large specs take a while to walk: off the actor's thread.
            let imported = actix_rt::task::spawn_blocking(move || openapi::import(&doc, &ops))
                .await
                .map_err(|e| self.fail(e.to_string()))?
                .map_err(|e| self.fail(e.to_string()))?;
            for (op, why) in &imported.skipped {
                tracing::warn!(event = "rest.openapi.skipped", server = %self.server, operation = %op, reason = %why, "rest.openapi.skipped");
            }
            base_url = base_url.or(imported.base_url);
            for t in imported.tools {
                // Tools written in the definition win over generated ones of the same name.
                if !tools.iter().any(|d| d.name == t.name) {
                    tools.push(t);
                }
            }
        }
        let base_url = base_url.ok_or_else(|| {
            self.fail(
                "no base_url: set base_url (the OpenAPI document names no absolute server URL)",
            )
        })?;
        // The document may name any server: its URL faces the same policy as a registered one.
        self.policy
            .check_url(&base_url)
            .map_err(|e| self.fail(format!("base_url: {e}")))?;
        let mut prepared = HashMap::with_capacity(tools.len());
        let mut listed = Vec::with_capacity(tools.len());
        for tool in tools {
            let p = self.prepare(tool).map_err(|e| self.fail(e))?;
            listed.push(tool_json(&p.tool));
            prepared.insert(p.tool.name.clone(), p);
        }
        *self.loaded.borrow_mut() = Some(Rc::new(Loaded {
            base_url: base_url.trim_end_matches('/').to_string(),
            headers,
            tools: prepared,
            list: to_raw(&json!({ "tools": listed })),
        }));
        let mut catalog = Catalog::default();
        catalog.protocol_version = version::LATEST.to_string();
        catalog.capabilities = json!({ "tools": {} });
        catalog.server_info =
            json!({ "name": &*self.server, "version": env!("CARGO_PKG_VERSION") });
        Ok(catalog)
    }

    fn prepare(&self, tool: RestTool) -> Result<Prepared, String> {
        let path = parse_template(&tool.path, false)
            .map_err(|e| format!("tool {}: path: {e}", tool.name))?;
        let mut headers = Vec::with_capacity(tool.headers.len());
        for (k, v) in &tool.headers {
            let name = header_name(k).map_err(|e| format!("tool {}: {e}", tool.name))?;
            let segs = parse_template(v, true)
                .map_err(|e| format!("tool {}: headers.{k}: {e}", tool.name))?;
            headers.push((name, segs));
        }
        let output = tool.output_schema.as_ref().and_then(|s| {
            let text = serde_json::to_string(s).ok()?;
            ValidatorCache::global()
                .get_or_compile(&self.server, &format!("{}#output", tool.name), &text)
                .ok()
        });
        Ok(Prepared {
            tool,
            path,
            headers,
            output,
        })
    }

    /// Answers `ping`, `tools/list` and `tools/call`; anything else is `-32601`.
    pub async fn call(&self, call: OutCall) -> CallResult {
        let loaded = self
            .loaded
            .borrow()
            .clone()
            .ok_or_else(|| self.fail("not connected"))?;
        match call.method.as_str() {
            "ping" => Ok(empty_object()),
            "tools/list" => Ok(loaded.list.clone()),
            "tools/call" => {
                let (cancel_tx, cancel_rx) = oneshot::channel();
                self.inflight.borrow_mut().insert(call.id, cancel_tx);
                let _guard = InflightGuard {
                    conn: self,
                    id: call.id,
                };
                tokio::select! {
                    res = self.call_tool(&loaded, &call) => res,
                    _ = cancel_rx => Err(HubError::Cancelled),
                }
            }
            other => Err(HubError::MethodNotFound(other.to_string())),
        }
    }

    /// Stops waiting for request `id`; dropping the request closes its connection.
    pub fn cancel(&self, id: u64) {
        if let Some(tx) = self.inflight.borrow_mut().remove(&id) {
            let _ = tx.send(());
        }
    }

    /// Fails calls in flight; the pool goes with the connection.
    pub fn close(&self) {
        for (_, tx) in self.inflight.borrow_mut().drain() {
            let _ = tx.send(());
        }
    }

    async fn call_tool(&self, loaded: &Loaded, call: &OutCall) -> CallResult {
        #[derive(Deserialize)]
        struct Params {
            name: String,
            #[serde(default)]
            arguments: Option<Map<String, Value>>,
        }
        let p: Params = call
            .params
            .as_deref()
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .ok_or_else(|| {
                HubError::invalid_params("Invalid params", "tools/call needs {name, arguments}")
            })?;
        let prepared = loaded
            .tools
            .get(&p.name)
            .ok_or_else(|| HubError::UnknownName {
                kind: "tool",
                name: p.name.clone(),
            })?;
        let args = p.arguments.unwrap_or_default();
        let plan = match plan(&loaded.base_url, prepared, &args) {
            Ok(plan) => plan,
            Err(message) => return Ok(error_result(&message)),
        };
        let request_id = &*call.ctx.request_id;
        let log_url = redact_url(&plan.url);
        let method = plan.method.clone();
        tracing::info!(event = "tool.http.request", request_id = %request_id, server = %self.server, tool = %p.name, method = %method, url = %log_url, "tool.http.request");
        let started = Instant::now();
        let mut req = self
            .client
            .request(plan.method, &plan.url)
            .insert_header((header::ACCEPT, "application/json"))
            .insert_header(("X-Request-Id", request_id));
        for (k, v) in &loaded.headers {
            req = req.insert_header((k.clone(), v.clone()));
        }
        for (k, v) in plan.headers {
            req = req.insert_header((k, v));
        }
        let exchange = async move {
            let sent = match plan.body {
                Some(body) => {
                    req.insert_header((header::CONTENT_TYPE, "application/json"))
                        .send_body(body)
                        .await
                }
                None => req.send().await,
            };
            let mut resp = sent.map_err(|e| e.to_string())?;
            let status = resp.status();
            let body = resp
                .body()
                .limit(MAX_BODY_BYTES)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((status, body))
        };
        let outcome = tokio::time::timeout(self.timeout, exchange).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok(Ok((status, body))) => {
                tracing::info!(event = "tool.http.response", request_id = %request_id, server = %self.server, tool = %p.name, method = %method, url = %log_url, status = status.as_u16(), latency_ms, "tool.http.response");
                Ok(to_raw(&render(prepared, status, &body)))
            }
            Ok(Err(e)) => {
                tracing::warn!(event = "tool.http.response", request_id = %request_id, server = %self.server, tool = %p.name, method = %method, url = %log_url, latency_ms, error = %e, "tool.http.response");
                Err(HubError::ServerUnavailable {
                    server: self.server.to_string(),
                    reason: format!("REST API unreachable: {e}"),
                    retry_after_seconds: 1,
                })
            }
            Err(_) => {
                let timeout_ms = self.timeout.as_millis() as u64;
                tracing::warn!(event = "tool.http.response", request_id = %request_id, server = %self.server, tool = %p.name, method = %method, url = %log_url, latency_ms, error = "timeout", timeout_ms, "tool.http.response");
                Err(HubError::Timeout {
                    layer: "external",
                    timeout_ms,
                })
            }
        }
    }
}

/// The tools/list entry of a tool.
fn tool_json(t: &RestTool) -> Value {
    let mut v = json!({
        "name": t.name,
        "description": t.description.clone().unwrap_or_else(|| format!("{} {}", t.method.as_str(), t.path)),
        "inputSchema": t.input_schema,
    });
    if let Some(o) = &t.output_schema {
        v["outputSchema"] = o.clone();
    }
    if t.method == RestMethod::Get {
        v["annotations"] = json!({ "readOnlyHint": true, "openWorldHint": true });
    }
    v
}
