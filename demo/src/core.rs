//! Transport-independent MCP server core.
//!
//! [`Server`] holds the state of one MCP session (negotiated version, client
//! capabilities, log level, subscriptions, running requests, pending
//! server→client requests). [`Server::handle`] takes one JSON-RPC message (or
//! a batch) and emits everything it produces (notifications, server→client
//! requests, the response) as [`Outbound`] items on the channel the caller
//! passes in. Stdio passes one channel for the whole process (the stdout
//! writer); HTTP passes a fresh channel per POST, so whatever a request emits
//! lands on that POST's response stream.
//!
//! Messages that are not related to any client request (list_changed,
//! resources/updated) go to the `unsolicited` channel given to
//! [`Server::new`] (stdout for stdio, the session's GET stream for HTTP).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use crate::modern::{self, Era, Mrtr};

mod modern_request;
use crate::{prompts, resources, tools};

/// Protocol revisions this server speaks, newest first.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// The revision answered when the client asks for one we do not support.
pub const LATEST_VERSION: &str = "2025-11-25";
/// `serverInfo.name`.
pub const SERVER_NAME: &str = "mcp-hub-demo";
/// `serverInfo.version`.
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");
/// `logger` field of the `notifications/message` this server emits.
pub const LOGGER: &str = "mcp-hub-demo";
/// How long a server→client request waits for the client's answer.
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Log levels in increasing severity (RFC 5424 names, as MCP uses them).
pub const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// JSON-RPC / MCP error codes used by the demo server.
pub mod codes {
    /// Invalid JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a valid JSON-RPC request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// Unknown method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid params (also: unknown tool / prompt, bad cursor).
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal error.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Resource not found (2025-11-25 and earlier).
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
}

/// One item the core emits towards the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// A JSON-RPC message (response, notification or server→client request).
    Message(Value),
    /// Ask the transport to close the current response stream without ending
    /// it (SEP-1699 polling); the client resumes with GET + `Last-Event-ID`.
    /// Stdio ignores it.
    CloseStream {
        /// Reconnect delay announced to the client (`retry:` field).
        retry_ms: u64,
    },
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// Error code.
    pub code: i64,
    /// Human-readable message.
    pub message: String,
    /// Optional `data`.
    pub data: Option<Value>,
}

impl RpcError {
    /// Builds an error without data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// -32602 with the given message.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_PARAMS, message)
    }

    /// The `error` member of a response.
    pub fn to_value(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.data {
            e["data"] = d.clone();
        }
        e
    }
}

/// Builds a success response.
pub fn response(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// Builds an error response (`id` is `null` when it could not be read).
pub fn error_response(id: &Value, err: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": err.to_value()})
}

/// Builds a notification.
pub fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

/// Locks a mutex, ignoring poisoning (no state here is left inconsistent by a panic).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `true` if revision `v` is `min` or newer (ISO dates compare lexically).
pub(crate) fn at_least(v: &str, min: &str) -> bool {
    v >= min
}

/// What kind of JSON-RPC message a value is.
#[derive(Debug)]
pub enum Kind {
    /// A request (`id` + `method`).
    Request {
        /// Request id (string or number).
        id: Value,
        /// Method name.
        method: String,
        /// Params (`null` when absent).
        params: Value,
    },
    /// A notification (`method`, no `id`).
    Notification {
        /// Method name.
        method: String,
        /// Params (`null` when absent).
        params: Value,
    },
    /// A response to one of our server→client requests.
    Response {
        /// The id we chose.
        id: Value,
    },
    /// A batch (JSON array).
    Batch,
    /// Not a valid JSON-RPC message; answer with this error (id may be null).
    Invalid {
        /// Id to answer with (`null` if unreadable).
        id: Value,
        /// The error.
        error: RpcError,
    },
}

/// Classifies one JSON value as a JSON-RPC message.
pub fn classify(msg: &Value) -> Kind {
    let obj = match msg {
        Value::Array(_) => return Kind::Batch,
        Value::Object(o) => o,
        _ => {
            return Kind::Invalid {
                id: Value::Null,
                error: RpcError::new(codes::INVALID_REQUEST, "Invalid Request: not a JSON object"),
            }
        }
    };
    let id = obj.get("id").cloned();
    let id_ok = matches!(&id, Some(Value::String(_)) | Some(Value::Number(_)));
    let reply_id = if id_ok {
        id.clone().unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Kind::Invalid {
            id: reply_id,
            error: RpcError::new(
                codes::INVALID_REQUEST,
                "Invalid Request: jsonrpc must be \"2.0\"",
            ),
        };
    }
    match obj.get("method") {
        Some(Value::String(method)) => {
            let params = obj.get("params").cloned().unwrap_or(Value::Null);
            if !matches!(params, Value::Null | Value::Object(_)) {
                return Kind::Invalid {
                    id: reply_id,
                    error: RpcError::new(
                        codes::INVALID_REQUEST,
                        "Invalid Request: params must be an object",
                    ),
                };
            }
            match id {
                None => Kind::Notification {
                    method: method.clone(),
                    params,
                },
                Some(_) if id_ok => Kind::Request {
                    id: reply_id,
                    method: method.clone(),
                    params,
                },
                Some(_) => Kind::Invalid {
                    id: Value::Null,
                    error: RpcError::new(
                        codes::INVALID_REQUEST,
                        "Invalid Request: id must be a string or a number",
                    ),
                },
            }
        }
        Some(_) => Kind::Invalid {
            id: reply_id,
            error: RpcError::new(
                codes::INVALID_REQUEST,
                "Invalid Request: method must be a string",
            ),
        },
        None if id_ok && (obj.contains_key("result") || obj.contains_key("error")) => {
            Kind::Response { id: reply_id }
        }
        None => Kind::Invalid {
            id: reply_id,
            error: RpcError::new(
                codes::INVALID_REQUEST,
                "Invalid Request: no method, result or error",
            ),
        },
    }
}

/// Process-wide state shared by every session: counters for `/admin/stats`
/// and the list of ids seen in `notifications/cancelled`.
#[derive(Debug, Default)]
pub struct Shared {
    initializes: AtomicU64,
    requests: AtomicU64,
    cancelled: Mutex<Vec<Value>>,
    page_size: Option<usize>,
    era: Era,
    states: modern::StateBook,
}

impl Shared {
    /// New shared state. List page size comes from `MCP_DEMO_PAGE_SIZE`
    /// (unset or 0: every list fits in one page).
    pub fn new() -> Arc<Self> {
        Self::with_era(Era::Legacy)
    }

    /// New shared state serving the given protocol era(s).
    pub fn with_era(era: Era) -> Arc<Self> {
        let page_size = std::env::var("MCP_DEMO_PAGE_SIZE")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|n| *n > 0);
        Arc::new(Self {
            page_size,
            era,
            ..Self::default()
        })
    }

    /// Request ids this process received `notifications/cancelled` for, in order.
    pub fn cancelled(&self) -> Vec<Value> {
        lock(&self.cancelled).clone()
    }

    /// `{initializes, requests, cancelled}` counters.
    pub fn stats(&self) -> Value {
        json!({
            "initializes": self.initializes.load(Ordering::Relaxed),
            "requests": self.requests.load(Ordering::Relaxed),
            "cancelled": self.cancelled(),
        })
    }

    pub(crate) fn page_size(&self) -> Option<usize> {
        self.page_size
    }

    /// The protocol era(s) this process serves.
    pub fn era(&self) -> Era {
        self.era
    }
}

#[derive(Debug)]
struct SessionState {
    protocol_version: String,
    client_capabilities: Value,
    client_info: Value,
    /// Index into [`LOG_LEVELS`]; messages below it are not sent.
    log_level: usize,
    subscriptions: HashSet<String>,
}

struct Inner {
    shared: Arc<Shared>,
    unsolicited: mpsc::UnboundedSender<Outbound>,
    state: Mutex<SessionState>,
    running: Mutex<HashMap<String, AbortHandle>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    next_out_id: AtomicU64,
}

/// One MCP session's server state. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

fn id_key(id: &Value) -> String {
    id.to_string()
}

impl Server {
    /// A new session. `unsolicited` receives messages not tied to any request.
    pub fn new(shared: Arc<Shared>, unsolicited: mpsc::UnboundedSender<Outbound>) -> Self {
        Self {
            inner: Arc::new(Inner {
                shared,
                unsolicited,
                state: Mutex::new(SessionState {
                    protocol_version: LATEST_VERSION.to_string(),
                    client_capabilities: json!({}),
                    client_info: Value::Null,
                    log_level: 0,
                    subscriptions: HashSet::new(),
                }),
                running: Mutex::new(HashMap::new()),
                pending: Mutex::new(HashMap::new()),
                next_out_id: AtomicU64::new(1),
            }),
        }
    }

    /// Process-wide shared state.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// The negotiated protocol revision (latest until `initialize`).
    pub fn protocol_version(&self) -> String {
        lock(&self.inner.state).protocol_version.clone()
    }

    /// Handles one incoming JSON-RPC message (request, notification, response
    /// to a server→client request, or a batch). Everything the message
    /// produces is sent on `outbound`; `tools/call` runs in its own task, the
    /// other methods answer at once. Must be called inside a tokio runtime.
    pub fn handle(&self, msg: Value, outbound: mpsc::UnboundedSender<Outbound>) {
        match classify(&msg) {
            Kind::Batch => self.handle_batch(msg, outbound),
            Kind::Request { id, method, params } => self.on_request(id, method, params, outbound),
            Kind::Notification { method, params } => self.on_notification(&method, &params),
            Kind::Response { id } => self.on_response(&id, msg),
            Kind::Invalid { id, error } => {
                let _ = outbound.send(Outbound::Message(error_response(&id, &error)));
            }
        }
    }

    /// Number of `tools/call` handlers still running.
    pub fn in_flight(&self) -> usize {
        lock(&self.inner.running).len()
    }

    /// Aborts every running request and drops pending server→client requests
    /// (used when an HTTP session is deleted or forgotten).
    pub fn shutdown(&self) {
        for (_, h) in lock(&self.inner.running).drain() {
            h.abort();
        }
        lock(&self.inner.pending).clear();
    }

    fn handle_batch(&self, msg: Value, outbound: mpsc::UnboundedSender<Outbound>) {
        let items = match msg {
            Value::Array(items) => items,
            _ => return,
        };
        let version = self.protocol_version();
        let err = if items.is_empty() {
            Some("Invalid Request: empty batch")
        } else if at_least(&version, "2025-06-18") {
            Some("Invalid Request: JSON-RPC batches are not supported in this protocol revision")
        } else if items
            .iter()
            .any(|m| m.get("method").and_then(Value::as_str) == Some("initialize"))
        {
            Some("Invalid Request: initialize must not be part of a batch")
        } else {
            None
        };
        if let Some(e) = err {
            let e = RpcError::new(codes::INVALID_REQUEST, e);
            let _ = outbound.send(Outbound::Message(error_response(&Value::Null, &e)));
            return;
        }
        // Answers are collected into one array; everything else streams through.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut expected = 0usize;
        for item in items {
            if matches!(classify(&item), Kind::Request { .. } | Kind::Invalid { .. }) {
                expected += 1;
            }
            self.handle(item, tx.clone());
        }
        drop(tx);
        if expected == 0 {
            return;
        }
        tokio::spawn(async move {
            let mut answers = Vec::with_capacity(expected);
            while let Some(item) = rx.recv().await {
                match item {
                    Outbound::Message(v) if v.get("method").is_none() => answers.push(v),
                    other => {
                        let _ = outbound.send(other);
                    }
                }
            }
            if !answers.is_empty() {
                let _ = outbound.send(Outbound::Message(Value::Array(answers)));
            }
        });
    }

    fn on_request(
        &self,
        id: Value,
        method: String,
        params: Value,
        out: mpsc::UnboundedSender<Outbound>,
    ) {
        self.inner.shared.requests.fetch_add(1, Ordering::Relaxed);
        let era = self.inner.shared.era;
        if era.modern() && modern::request_meta(&params).is_some() {
            return self.on_modern_request(id, method, params, out);
        }
        if !era.legacy() {
            let err = if method == "initialize" {
                let asked = params.get("protocolVersion").and_then(Value::as_str);
                modern::unsupported_version(asked.unwrap_or(""))
            } else {
                RpcError::invalid_params(format!(
                    "_meta[{}] is required (this server speaks {} only)",
                    modern::META_VERSION,
                    modern::MODERN_VERSION
                ))
            };
            let _ = out.send(Outbound::Message(error_response(&id, &err)));
            return;
        }
        let interactive_prompt = method == "prompts/get"
            && params.get("name").and_then(Value::as_str) == Some(prompts::INTERACTIVE_PROMPT);
        if method == "tools/call" || interactive_prompt {
            let ctx = Ctx {
                server: self.clone(),
                id: id.clone(),
                out: out.clone(),
                progress_token: progress_token(&params),
                mrtr: None,
            };
            let key = id_key(&id);
            let server = self.clone();
            let task_key = key.clone();
            // Hold the map lock across spawn+insert so the task cannot remove
            // its entry before it was inserted.
            let mut running = lock(&self.inner.running);
            let handle = tokio::spawn(async move {
                let result = if interactive_prompt {
                    prompts::get_interactive(&ctx).await
                } else {
                    tools::call(&ctx, &params).await
                };
                lock(&server.inner.running).remove(&task_key);
                let msg = match result {
                    Ok(r) => response(&ctx.id, r),
                    Err(e) => error_response(&ctx.id, &e),
                };
                let _ = ctx.out.send(Outbound::Message(msg));
            });
            running.insert(key, handle.abort_handle());
            return;
        }
        let msg = match self.dispatch(&method, &params) {
            Ok(r) => response(&id, r),
            Err(e) => error_response(&id, &e),
        };
        let _ = out.send(Outbound::Message(msg));
    }

    /// Every method except `tools/call` answers immediately.
    fn dispatch(&self, method: &str, params: &Value) -> Result<Value, RpcError> {
        let page = self.inner.shared.page_size();
        match method {
            "initialize" => self.initialize(params),
            "ping" => Ok(json!({})),
            "logging/setLevel" => {
                let level = params.get("level").and_then(Value::as_str).unwrap_or("");
                let idx = LOG_LEVELS.iter().position(|l| *l == level).ok_or_else(|| {
                    RpcError::invalid_params(format!("Invalid log level: {level:?}"))
                })?;
                lock(&self.inner.state).log_level = idx;
                Ok(json!({}))
            }
            "tools/list" => {
                let version = self.protocol_version();
                let (items, next) = paginate(tools::definitions(&version), params, page)?;
                Ok(list_result("tools", items, next))
            }
            "resources/list" => {
                let (items, next) = paginate(resources::list(), params, page)?;
                Ok(list_result("resources", items, next))
            }
            "resources/templates/list" => {
                let (items, next) = paginate(resources::templates(), params, page)?;
                Ok(list_result("resourceTemplates", items, next))
            }
            "resources/read" => resources::read(required_str(params, "uri")?),
            "resources/subscribe" => {
                let uri = required_str(params, "uri")?;
                lock(&self.inner.state)
                    .subscriptions
                    .insert(uri.to_string());
                Ok(json!({}))
            }
            "resources/unsubscribe" => {
                let uri = required_str(params, "uri")?;
                lock(&self.inner.state).subscriptions.remove(uri);
                Ok(json!({}))
            }
            "prompts/list" => {
                let (items, next) = paginate(prompts::list(), params, page)?;
                Ok(list_result("prompts", items, next))
            }
            "prompts/get" => prompts::get(required_str(params, "name")?, params.get("arguments")),
            "completion/complete" => prompts::complete(params),
            _ => Err(RpcError::new(
                codes::METHOD_NOT_FOUND,
                format!("Method not found: {method}"),
            )),
        }
    }

    fn initialize(&self, params: &Value) -> Result<Value, RpcError> {
        let requested = params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                RpcError::invalid_params("initialize: protocolVersion (string) is required")
            })?;
        let version = if SUPPORTED_VERSIONS.contains(&requested) {
            requested
        } else {
            LATEST_VERSION
        };
        {
            let mut st = lock(&self.inner.state);
            st.protocol_version = version.to_string();
            st.client_capabilities = params
                .get("capabilities")
                .cloned()
                .unwrap_or_else(|| json!({}));
            st.client_info = params.get("clientInfo").cloned().unwrap_or(Value::Null);
        }
        self.inner
            .shared
            .initializes
            .fetch_add(1, Ordering::Relaxed);
        Ok(json!({
            "protocolVersion": version,
            "capabilities": {
                "tools": {"listChanged": true},
                "resources": {"subscribe": true, "listChanged": true},
                "prompts": {"listChanged": true},
                "logging": {},
                "completions": {},
            },
            "serverInfo": {"name": SERVER_NAME, "version": SERVER_VERSION},
            "instructions": "mcp-hub demo server: MCP conformance fixtures (test_*) plus echo, add, sleep, fail and cancelled_requests for exercising the hub.",
        }))
    }

    fn on_notification(&self, method: &str, params: &Value) {
        if method == "notifications/cancelled" {
            if let Some(id) = params.get("requestId") {
                lock(&self.inner.shared.cancelled).push(id.clone());
                if let Some(h) = lock(&self.inner.running).remove(&id_key(id)) {
                    h.abort();
                }
            }
        }
        // notifications/initialized, roots/list_changed, progress, … need no action.
    }

    fn on_response(&self, id: &Value, msg: Value) {
        if let Some(tx) = lock(&self.inner.pending).remove(&id_key(id)) {
            let _ = tx.send(msg);
        }
    }

    /// `clientInfo` sent at initialize (`null` before).
    pub fn client_info(&self) -> Value {
        lock(&self.inner.state).client_info.clone()
    }
}

fn progress_token(params: &Value) -> Option<Value> {
    match params.get("_meta").and_then(|m| m.get("progressToken")) {
        Some(t @ (Value::String(_) | Value::Number(_))) => Some(t.clone()),
        _ => None,
    }
}

fn required_str<'a>(params: &'a Value, key: &str) -> Result<&'a str, RpcError> {
    params.get(key).and_then(Value::as_str).ok_or_else(|| {
        RpcError::invalid_params(format!("Missing required parameter: {key} (string)"))
    })
}

fn list_result(key: &str, items: Vec<Value>, next: Option<String>) -> Value {
    let mut r = Map::new();
    r.insert(key.to_string(), Value::Array(items));
    if let Some(c) = next {
        r.insert("nextCursor".to_string(), Value::String(c));
    }
    Value::Object(r)
}

/// Opaque cursor: base64 of `offset:N`.
fn encode_cursor(offset: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    std::str::from_utf8(&raw)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

/// Applies `params.cursor` and the page size to a full list.
fn paginate(
    items: Vec<Value>,
    params: &Value,
    page_size: Option<usize>,
) -> Result<(Vec<Value>, Option<String>), RpcError> {
    let start = match params.get("cursor") {
        None | Some(Value::Null) => 0,
        Some(Value::String(c)) => match decode_cursor(c) {
            Some(n) if n <= items.len() => n,
            _ => return Err(RpcError::invalid_params("Invalid cursor")),
        },
        Some(_) => return Err(RpcError::invalid_params("Invalid cursor")),
    };
    let size = page_size.unwrap_or(usize::MAX);
    let end = start.saturating_add(size).min(items.len());
    let next = (end < items.len()).then(|| encode_cursor(end));
    Ok((
        items.into_iter().skip(start).take(end - start).collect(),
        next,
    ))
}

/// Per-request context handed to tool implementations.
pub(crate) struct Ctx {
    pub(crate) server: Server,
    pub(crate) id: Value,
    pub(crate) out: mpsc::UnboundedSender<Outbound>,
    pub(crate) progress_token: Option<Value>,
    /// MRTR bookkeeping of a modern call (`None`: legacy, real server→client requests).
    pub(crate) mrtr: Option<Arc<Mrtr>>,
}

/// Removes a pending server→client request when its waiter goes away.
struct PendingGuard<'a> {
    server: &'a Server,
    key: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.server.inner.pending).remove(&self.key);
    }
}

impl Ctx {
    /// Negotiated protocol revision.
    pub(crate) fn version(&self) -> String {
        self.server.protocol_version()
    }

    /// Sends a message related to this request.
    pub(crate) fn send(&self, msg: Value) {
        let _ = self.out.send(Outbound::Message(msg));
    }

    /// Sends a message not related to this request (GET stream / stdout).
    pub(crate) fn send_unsolicited(&self, msg: Value) {
        let _ = self.server.inner.unsolicited.send(Outbound::Message(msg));
    }

    /// Asks the transport to close this request's stream (SEP-1699).
    pub(crate) fn close_stream(&self, retry_ms: u64) {
        let _ = self.out.send(Outbound::CloseStream { retry_ms });
    }

    /// Sends `notifications/progress` if the request carried a progress token.
    pub(crate) fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = &self.progress_token else {
            return;
        };
        let mut p = json!({"progressToken": token, "progress": num(progress)});
        if let Some(t) = total {
            p["total"] = num(t);
        }
        if let Some(m) = message {
            if at_least(&self.version(), "2025-03-26") {
                p["message"] = json!(m);
            }
        }
        self.send(notification("notifications/progress", p));
    }

    /// Sends `notifications/message` if `level` is at or above the session's level.
    pub(crate) fn log(&self, level: &str, data: Value) {
        let idx = LOG_LEVELS.iter().position(|l| *l == level).unwrap_or(0);
        if idx < lock(&self.server.inner.state).log_level {
            return;
        }
        self.send(notification(
            "notifications/message",
            json!({"level": level, "logger": LOGGER, "data": data}),
        ));
    }

    /// `true` if the client declared capability `name` at initialize.
    pub(crate) fn client_supports(&self, name: &str) -> bool {
        let st = lock(&self.server.inner.state);
        st.client_capabilities
            .get(name)
            .is_some_and(|v| !v.is_null())
    }

    /// `true` if the session subscribed to `uri`.
    pub(crate) fn is_subscribed(&self, uri: &str) -> bool {
        lock(&self.server.inner.state).subscriptions.contains(uri)
    }

    /// Sends a server→client request on this request's stream and waits for
    /// the client's response; returns its `result`, or its `error`.
    pub(crate) async fn request(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.request_within(method, params, CLIENT_REQUEST_TIMEOUT)
            .await
    }

    /// [`Ctx::request`], giving up after `timeout`.
    pub(crate) async fn request_within(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, RpcError> {
        if let Some(m) = &self.mrtr {
            return m.request(method, params);
        }
        let n = self
            .server
            .inner
            .next_out_id
            .fetch_add(1, Ordering::Relaxed);
        let id = Value::String(format!("demo-{n}"));
        let key = id_key(&id);
        let (tx, rx) = oneshot::channel();
        lock(&self.server.inner.pending).insert(key.clone(), tx);
        let _guard = PendingGuard {
            server: &self.server,
            key,
        };
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let msg = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(msg)) => msg,
            Ok(Err(_)) => return Err(RpcError::new(codes::INTERNAL_ERROR, "session closed")),
            Err(_) => {
                return Err(RpcError::new(
                    codes::INTERNAL_ERROR,
                    format!("timed out waiting for the client's answer to {method}"),
                ))
            }
        };
        if let Some(err) = msg.get("error") {
            return Err(RpcError {
                code: err
                    .get("code")
                    .and_then(Value::as_i64)
                    .unwrap_or(codes::INTERNAL_ERROR),
                message: err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("error")
                    .to_string(),
                data: err.get("data").cloned(),
            });
        }
        Ok(msg.get("result").cloned().unwrap_or_else(|| json!({})))
    }
}

/// Renders a float as an integer JSON number when it is integral.
pub(crate) fn num(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn classify_kinds() {
        assert!(matches!(
            classify(&json!({"jsonrpc":"2.0","id":1,"method":"ping"})),
            Kind::Request { .. }
        ));
        assert!(matches!(
            classify(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})),
            Kind::Notification { .. }
        ));
        assert!(matches!(
            classify(&json!({"jsonrpc":"2.0","id":"demo-1","result":{}})),
            Kind::Response { .. }
        ));
        assert!(matches!(classify(&json!([])), Kind::Batch));
        assert!(matches!(
            classify(&json!({"jsonrpc":"2.0","id":null,"method":"ping"})),
            Kind::Invalid { .. }
        ));
        assert!(matches!(
            classify(&json!({"id":1,"method":"ping"})),
            Kind::Invalid { .. }
        ));
        assert!(matches!(classify(&json!(3)), Kind::Invalid { .. }));
    }

    #[test]
    fn cursor_roundtrip_and_paging() {
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let (page, next) = paginate(items.clone(), &json!({}), Some(2)).unwrap();
        assert_eq!(page, vec![json!(0), json!(1)]);
        let next = next.unwrap();
        assert_eq!(decode_cursor(&next), Some(2));
        let (page, next) = paginate(items.clone(), &json!({"cursor": next}), Some(2)).unwrap();
        assert_eq!(page, vec![json!(2), json!(3)]);
        let (page, next) =
            paginate(items.clone(), &json!({"cursor": next.unwrap()}), Some(2)).unwrap();
        assert_eq!(page, vec![json!(4)]);
        assert!(next.is_none());
        let (page, next) = paginate(items.clone(), &json!({}), None).unwrap();
        assert_eq!(page.len(), 5);
        assert!(next.is_none());
        assert!(paginate(items, &json!({"cursor": "garbage"}), None).is_err());
    }

    #[tokio::test]
    async fn initialize_negotiates() {
        let (utx, _urx) = mpsc::unbounded_channel();
        let s = Server::new(Shared::new(), utx);
        let (tx, mut rx) = mpsc::unbounded_channel();
        s.handle(
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}),
            tx.clone(),
        );
        let Some(Outbound::Message(m)) = rx.recv().await else {
            panic!()
        };
        assert_eq!(m["result"]["protocolVersion"], "2024-11-05");
        s.handle(
            json!({"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"1999-01-01","capabilities":{}}}),
            tx.clone(),
        );
        let Some(Outbound::Message(m)) = rx.recv().await else {
            panic!()
        };
        assert_eq!(m["result"]["protocolVersion"], LATEST_VERSION);
        assert_eq!(m["result"]["serverInfo"]["name"], SERVER_NAME);
        s.handle(json!({"jsonrpc":"2.0","id":3,"method":"nope"}), tx);
        let Some(Outbound::Message(m)) = rx.recv().await else {
            panic!()
        };
        assert_eq!(m["error"]["code"], -32601);
    }
}
