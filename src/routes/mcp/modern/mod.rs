//! MCP 2026-07-28 ("modern", stateless) on the same endpoints as the session-based
//! revisions: a POST whose request carries the modern `_meta` (or names `server/discover`,
//! or sends a modern `MCP-Protocol-Version` header) is served here, without a session.
//!
//! Steps per request (mini-redis shape: parse, apply, reply): read `_meta` (-32602), check
//! the headers against it and the body (-32020, -32022), then answer locally
//! (`server/discover`, lists with cache hints, `tasks/*`), open a `subscriptions/listen`
//! stream, or forward to the upstream (`call.rs`), bridging its server-to-client requests
//! into `input_required` results. Nothing is kept between calls except what a signed
//! `requestState` or a task id names.

#![allow(clippy::result_large_err)]

mod call;
mod drive;
mod input;
mod listen;
mod pending;
mod relay;
mod tasks;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use mcp_hub_actors::protocol::jsonrpc::{error_bytes, response_bytes, to_raw};
use mcp_hub_actors::protocol::modern::{self, CacheHint, RequestMeta, StateSigner};
use mcp_hub_actors::protocol::{codes, Id, RpcError};
use mcp_hub_actors::router::{self, ListKind, Scope};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::time::Duration;

use crate::config_modern::ModernSettings;
use crate::state::AppState;

pub(crate) use pending::Pending;

/// How a modern request may be answered, from its `Accept` header and method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// One JSON body (the client accepts only JSON, or the method never streams).
    Json,
    /// An SSE stream (the client accepts only SSE).
    Sse,
    /// SSE, unless the answer is ready first and alone: then one JSON body (the client
    /// accepts both).
    SseOrJson,
}

/// Shared state of the modern path: the `requestState` signer and the upstream requests
/// held for a client's retry. Owned by `AppState`; cheap to clone.
#[derive(Clone)]
pub struct ModernState {
    signer: StateSigner,
    pending: Pending,
    state_ttl: Duration,
    list_ttl_ms: u64,
    gather_window: Duration,
}

impl ModernState {
    /// From settings; without `modern.state_secret` a random 256-bit secret.
    pub fn new(settings: &ModernSettings) -> Self {
        let secret = match &settings.state_secret {
            Some(s) if !s.is_empty() => s.as_bytes().to_vec(),
            _ => {
                use rand::RngCore;
                let mut b = vec![0u8; 32];
                rand::rng().fill_bytes(&mut b);
                b
            }
        };
        Self {
            signer: StateSigner::new(&secret),
            pending: Pending::default(),
            state_ttl: Duration::from_secs(settings.state_ttl_secs.max(1)),
            list_ttl_ms: settings.list_ttl_ms,
            gather_window: Duration::from_millis(settings.input_gather_ms),
        }
    }
}

/// Whether a GET/DELETE comes from a modern client (they get 405).
pub(crate) fn is_modern_header(req: &HttpRequest) -> bool {
    req.headers()
        .get(modern::HEADER_VERSION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| modern::SUPPORTED.contains(&v))
}

/// Whether a POSTed request is modern: no session, and it names `server/discover`, carries
/// the modern `_meta`, or a modern version header. A plain `initialize` stays legacy.
pub(crate) fn is_modern(req: &HttpRequest, method: &str, params: Option<&RawValue>) -> bool {
    if req.headers().contains_key(super::SESSION_HEADER) {
        return false;
    }
    // The header is checked first: it is cheap, and every modern client sends it.
    method == "server/discover" || is_modern_header(req) || modern::has_modern_meta(params)
}

/// 405 for GET/DELETE from a modern client: the revision has no GET stream and no sessions.
pub(crate) fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .content_type("application/json")
        .body(error_bytes(
            None,
            &RpcError::new(codes::SERVER_ERROR, "Method Not Allowed").with_data(json!({
                "hint": format!("MCP {} is POST only: no GET stream, no sessions", modern::VERSION)
            })),
        ))
}

/// An error answer with the status the modern HTTP binding gives its code: 404 for
/// -32601, 400 for the modern header/capability/version codes, else 200 (a JSON-RPC error
/// about the call itself, which clients handle like any result).
pub(crate) fn error(id: Option<&Id>, err: &RpcError) -> HttpResponse {
    let status = match err.code {
        codes::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        modern::HEADER_MISMATCH
        | modern::MISSING_CLIENT_CAPABILITY
        | modern::UNSUPPORTED_VERSION => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    if err.code == codes::RESOURCE_NOT_FOUND {
        // 2026-07-28 forbids -32002: "resource not found" is -32602.
        let mut e = err.clone();
        e.code = codes::INVALID_PARAMS;
        return crate::error::rpc_error(status, id, &e);
    }
    crate::error::rpc_error(status, id, err)
}

/// A malformed modern request (missing `_meta`, params not JSON): -32602 with HTTP 400.
fn bad_request(id: &Id, err: &RpcError) -> HttpResponse {
    crate::error::rpc_error(StatusCode::BAD_REQUEST, Some(id), err)
}

/// A successful modern answer: `resultType` and `_meta[serverInfo]` added.
pub(crate) fn ok(id: &Id, mut result: Map<String, Value>) -> HttpResponse {
    modern::finish_result(&mut result, &hub_info());
    HttpResponse::Ok()
        .content_type("application/json")
        .body(response_bytes(id, &to_raw(&Value::Object(result))))
}

fn hub_info() -> Value {
    json!({ "name": "mcp-hub", "version": env!("CARGO_PKG_VERSION") })
}

/// [`hub_info`] as JSON text, built once.
fn hub_info_text() -> &'static str {
    static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| hub_info().to_string());
    &TEXT
}

/// Parses raw result text into an object (non-objects are wrapped, which never happens
/// with a conforming upstream).
pub(crate) fn as_object(raw: &RawValue) -> Map<String, Value> {
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::Object(m)) => m,
        Ok(other) => Map::from_iter([("value".to_string(), other)]),
        Err(_) => Map::new(),
    }
}

/// Serves one modern request.
pub(crate) async fn handle(
    req: HttpRequest,
    state: &AppState,
    scope: Scope,
    id: Id,
    method: String,
    params: Option<Box<RawValue>>,
    reply: Reply,
) -> HttpResponse {
    let params: Option<Value> = match params.as_deref().map(|p| serde_json::from_str(p.get())) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            let e = RpcError::new(codes::INVALID_PARAMS, "Invalid params: not JSON");
            return bad_request(&id, &e);
        }
    };
    let meta = match modern::read_meta(params.as_ref()) {
        Ok(m) => m,
        Err(e) => return bad_request(&id, &e),
    };
    if let Err(e) = check_version(&req, &meta) {
        return error(Some(&id), &e);
    }
    let param_headers = if method == "tools/call" {
        tool_param_headers(state, &scope, params.as_ref())
    } else {
        Vec::new()
    };
    let get = |name: &str| req.headers().get(name).map(|v| v.as_bytes());
    if let Err(e) = modern::check_headers(get, &method, params.as_ref(), &param_headers) {
        return error(Some(&id), &e);
    }
    if modern::REMOVED_METHODS.contains(&method.as_str()) {
        return not_found(&id, &method);
    }
    let user = super::user_of(&req);
    match method.as_str() {
        "server/discover" => discover(state, &scope, &id).await,
        m if ListKind::from_method(m).is_some() => list(state, &scope, &id, m, params.as_ref()),
        "tools/call" | "prompts/get" | "resources/read" | "completion/complete" => {
            call::serve(call::CallRequest {
                req: &req,
                state,
                scope,
                id,
                method,
                params: params.unwrap_or(Value::Null),
                meta,
                user,
                reply,
            })
            .await
        }
        "subscriptions/listen" => {
            listen::open(&req, state, scope, id, params.unwrap_or(Value::Null))
        }
        "tasks/get" | "tasks/update" | "tasks/cancel" => {
            if meta.has_tasks_extension() {
                tasks::serve(state, user, &id, &method, params.as_ref()).await
            } else {
                // SEP-2663: the task methods belong to the extension; a client that did not
                // declare it gets -32021 (HTTP 400), not an answer.
                error(Some(&id), &modern::missing_tasks_extension())
            }
        }
        _ => not_found(&id, &method),
    }
}

fn not_found(id: &Id, method: &str) -> HttpResponse {
    let e = RpcError::new(codes::METHOD_NOT_FOUND, format!("Method not found: {method}"))
        .with_data(json!({ "hint": format!("MCP {} has no {method}; server/discover lists what is served", modern::VERSION) }));
    error(Some(id), &e)
}

/// `MCP-Protocol-Version` must equal `_meta`'s (-32020); the version must be served (-32022).
fn check_version(req: &HttpRequest, meta: &RequestMeta) -> Result<(), RpcError> {
    let header = req
        .headers()
        .get(modern::HEADER_VERSION)
        .map(|v| modern::decode_header_value(v.as_bytes()));
    match header {
        None => Err(modern::header_mismatch(
            modern::HEADER_VERSION,
            "MCP-Protocol-Version is required",
        )),
        Some(None) => Err(modern::header_mismatch(
            modern::HEADER_VERSION,
            "MCP-Protocol-Version has invalid characters",
        )),
        Some(Some(v)) if v != meta.version => Err(modern::header_mismatch(
            modern::HEADER_VERSION,
            format!(
                "MCP-Protocol-Version {v:?} but _meta says {:?}",
                meta.version
            ),
        )),
        Some(Some(_)) if !modern::SUPPORTED.contains(&meta.version.as_str()) => {
            Err(modern::unsupported_version(&meta.version))
        }
        Some(Some(_)) => Ok(()),
    }
}

/// The `x-mcp-header` annotations of the tool a `tools/call` names.
fn tool_param_headers(
    state: &AppState,
    scope: &Scope,
    params: Option<&Value>,
) -> Vec<(String, String)> {
    let Some(name) = params.and_then(|p| p.get("name")).and_then(Value::as_str) else {
        return Vec::new();
    };
    let Ok((handle, upstream)) =
        router::resolve_name(&state.servers, scope, router::NameKind::Tool, name)
    else {
        return Vec::new();
    };
    let catalog = handle.catalog();
    catalog
        .tool(&upstream)
        // Most tools have no annotation: skip parsing their definition on every call.
        .filter(|e| e.raw.get().contains(modern::PARAM_HEADER_KEY))
        .and_then(|e| serde_json::from_str::<Value>(e.raw.get()).ok())
        .map(|t| modern::param_headers(&t))
        .unwrap_or_default()
}

/// Capabilities the hub serves to modern clients for a scope.
fn capabilities(state: &AppState, scope: &Scope) -> Value {
    let ext = json!({ modern::TASKS_EXTENSION: {} });
    match scope {
        Scope::All => json!({
            "tools": { "listChanged": true },
            "prompts": { "listChanged": true },
            "resources": { "listChanged": true },
            "completions": {},
            "logging": {},
            "extensions": ext,
        }),
        Scope::Server(sid) => {
            let mut caps = Map::new();
            if let Some(h) = state.servers.get(sid) {
                let catalog = h.catalog();
                for key in ["tools", "prompts", "resources", "logging", "completions"] {
                    if let Some(v) = catalog.capabilities.get(key).filter(|v| !v.is_null()) {
                        let mut v = v.clone();
                        if let Value::Object(m) = &mut v {
                            if matches!(key, "tools" | "prompts" | "resources") {
                                m.insert("listChanged".into(), Value::Bool(true));
                            }
                            // Resource updates reach modern clients only through
                            // subscriptions/listen, which the hub does not relay yet.
                            m.remove("subscribe");
                        }
                        caps.insert(key.into(), v);
                    }
                }
                if !catalog.ready {
                    caps.insert("tools".into(), json!({ "listChanged": true }));
                }
            }
            caps.insert("extensions".into(), ext);
            Value::Object(caps)
        }
    }
}

async fn discover(state: &AppState, scope: &Scope, id: &Id) -> HttpResponse {
    if let Scope::Server(sid) = scope {
        // A server still starting gets a moment, so the client sees its real capabilities.
        if let Some(h) = state.servers.get(sid) {
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                h.catalog.clone().wait_for(|c| c.ready),
            )
            .await;
        }
    }
    let instructions = match scope {
        Scope::All => Some(
            "mcp-hub fronts several MCP servers; tools and prompts are named {server}__{name}."
                .to_string(),
        ),
        Scope::Server(sid) => state
            .servers
            .get(sid)
            .and_then(|h| h.catalog().instructions.clone()),
    };
    let mut result = Map::new();
    result.insert("supportedVersions".into(), json!(modern::SUPPORTED));
    result.insert("capabilities".into(), capabilities(state, scope));
    if let Some(i) = instructions {
        result.insert("instructions".into(), Value::String(i));
    }
    CacheHint {
        ttl_ms: state.modern.list_ttl_ms,
        private: false,
    }
    .apply(&mut result);
    ok(id, result)
}

/// The merged cache hint of the upstreams a list covers. Legacy upstreams give none: they
/// get `modern.list_ttl_ms`, public (the hub lists the same entries to every caller).
fn list_hint(state: &AppState, scope: &Scope) -> CacheHint {
    let n = match scope {
        Scope::All => state.servers.len(),
        Scope::Server(_) => 1,
    };
    CacheHint::merge((0..n.max(1)).map(|_| CacheHint {
        ttl_ms: state.modern.list_ttl_ms,
        private: false,
    }))
    .unwrap_or(CacheHint {
        ttl_ms: 0,
        private: true,
    })
}

fn list(
    state: &AppState,
    scope: &Scope,
    id: &Id,
    method: &str,
    params: Option<&Value>,
) -> HttpResponse {
    let Some(kind) = ListKind::from_method(method) else {
        return not_found(id, method);
    };
    let cursor = params.and_then(|p| p.get("cursor")).and_then(Value::as_str);
    match router::list(
        &state.servers,
        scope,
        kind,
        cursor,
        state.settings.sessions.page_size,
    ) {
        Ok(raw) => {
            let mut result = as_object(&raw);
            list_hint(state, scope).apply(&mut result);
            ok(id, result)
        }
        Err(e) => error(Some(id), &e.to_rpc()),
    }
}

/// The SSE response of a modern request: each JSON-RPC message as an `event: message`
/// frame without an id (2026-07-28 streams are not resumed), keep-alive comments, and
/// headers that stop proxies from buffering. Used by calls and `subscriptions/listen`.
pub(super) fn sse_response(
    req: &HttpRequest,
    state: &AppState,
    messages: impl futures_util::Stream<Item = String> + 'static,
) -> HttpResponse {
    use actix_web::Responder;
    use futures_util::StreamExt;
    let events = messages.map(|json| {
        Ok::<_, std::convert::Infallible>(actix_web_lab::sse::Event::Data(
            actix_web_lab::sse::Data::new(json).event("message"),
        ))
    });
    actix_web_lab::sse::Sse::from_stream(events)
        .with_keep_alive(std::time::Duration::from_secs(
            state.settings.sessions.keep_alive_secs.max(1),
        ))
        .customize()
        .insert_header(("X-Accel-Buffering", "no"))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-cache"))
        .respond_to(req)
        .map_into_boxed_body()
}
