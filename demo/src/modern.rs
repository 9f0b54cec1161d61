//! The 2026-07-28 ("modern", stateless) side of the demo server.
//!
//! [`Era`] says which protocol eras the process serves. A request whose
//! `params._meta` names a protocol version is modern when the era allows it:
//! it runs on a throwaway [`Server`](crate::Server) built from that `_meta` (version, client
//! capabilities, log level), so nothing carries over between requests.
//!
//! Server-to-client requests (elicitation, sampling, roots) become MRTR: a
//! tool that would ask the client is answered with an `input_required`
//! result holding `inputRequests` and a `requestState`; the client retries
//! with `inputResponses` and the state echoed. The state is a one-time token
//! the process remembers together with the call it was issued for (tool name
//! and arguments) and the answers given so far, so a forged, replayed,
//! expired or re-targeted state is rejected with -32602.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::core::{lock, RpcError, LOG_LEVELS, SERVER_NAME, SERVER_VERSION};

/// The modern protocol revision.
pub const MODERN_VERSION: &str = "2026-07-28";
/// `_meta` key of the request's protocol version.
pub const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key of the client's capabilities.
pub const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key of the requested log level.
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// `_meta` key of the server info on results.
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// -32022: unsupported protocol version.
pub const UNSUPPORTED_VERSION: i64 = -32022;
/// -32020: HTTP headers do not match the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// `_meta` key of a server-to-client request naming its `inputRequests` key (the hub's
/// input-key hint): the hub's bridge asks a modern client under that name, and this
/// process's own modern side uses it the same way; without it the key is generated.
pub const META_INPUT_KEY: &str = "dev.mcp-hub/inputKey";
/// How long an issued `requestState` stays valid.
const STATE_TTL: Duration = Duration::from_secs(600);
/// At most this many issued states are remembered (oldest dropped first).
const MAX_STATES: usize = 4096;
/// Methods the modern revision removed.
const REMOVED: [&str; 6] = [
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
    "notifications/initialized",
];

/// Which protocol eras the demo server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Era {
    /// 2024-11-05 … 2025-11-25 only (`initialize`, sessions); today's behaviour.
    #[default]
    Legacy,
    /// 2026-07-28 only: `server/discover`, per-request `_meta`, MRTR.
    Modern,
    /// Both: a request with modern `_meta` is modern, `initialize` starts a legacy session.
    Dual,
}

impl Era {
    /// Does this era serve modern requests?
    pub fn modern(self) -> bool {
        matches!(self, Self::Modern | Self::Dual)
    }

    /// Does this era serve legacy sessions?
    pub fn legacy(self) -> bool {
        matches!(self, Self::Legacy | Self::Dual)
    }
}

impl FromStr for Era {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "legacy" => Ok(Self::Legacy),
            "modern" => Ok(Self::Modern),
            "dual" => Ok(Self::Dual),
            other => Err(format!(
                "unknown era {other:?} (expected legacy, modern or dual)"
            )),
        }
    }
}

/// The modern `_meta` of a request, if it has one.
pub(crate) fn request_meta(params: &Value) -> Option<&Map<String, Value>> {
    let meta = params.get("_meta")?.as_object()?;
    meta.contains_key(META_VERSION).then_some(meta)
}

/// The per-request state read from `_meta`: version, capabilities, log level index.
pub(crate) struct ModernMeta {
    /// Client capabilities for this request.
    pub(crate) capabilities: Value,
    /// Index into [`LOG_LEVELS`]; `LOG_LEVELS.len()` means "no log messages".
    pub(crate) log_level: usize,
}

/// Checks the `_meta` of a modern request (-32022 on an unknown version).
pub(crate) fn read_meta(meta: &Map<String, Value>) -> Result<ModernMeta, RpcError> {
    let version = meta.get(META_VERSION).and_then(Value::as_str).unwrap_or("");
    if version != MODERN_VERSION {
        return Err(unsupported_version(version));
    }
    let capabilities = match meta.get(META_CAPABILITIES) {
        Some(c @ Value::Object(_)) => c.clone(),
        _ => {
            return Err(RpcError::invalid_params(format!(
                "_meta[{META_CAPABILITIES}] (object) is required"
            )))
        }
    };
    let log_level = meta
        .get(META_LOG_LEVEL)
        .and_then(Value::as_str)
        .and_then(|l| LOG_LEVELS.iter().position(|x| *x == l))
        .unwrap_or(LOG_LEVELS.len());
    Ok(ModernMeta {
        capabilities,
        log_level,
    })
}

/// -32022 naming the supported versions.
pub(crate) fn unsupported_version(requested: &str) -> RpcError {
    RpcError {
        code: UNSUPPORTED_VERSION,
        message: format!("Unsupported protocol version: {requested:?}"),
        data: Some(json!({"supported": [MODERN_VERSION], "requested": requested})),
    }
}

/// `true` for methods the modern revision no longer has.
pub(crate) fn is_removed(method: &str) -> bool {
    REMOVED.contains(&method)
}

/// `server/discover` result.
pub(crate) fn discover(era: Era) -> Value {
    let mut versions = vec![json!(MODERN_VERSION)];
    if era.legacy() {
        versions.extend(crate::core::SUPPORTED_VERSIONS.iter().map(|v| json!(v)));
    }
    json!({
        "supportedVersions": versions,
        "capabilities": {
            "tools": {"listChanged": true},
            "resources": {"listChanged": true},
            "prompts": {"listChanged": true},
            "logging": {},
            "completions": {},
        },
        "instructions": "mcp-hub demo server (2026-07-28): MCP conformance fixtures (test_*) plus echo, add, sleep, fail and cancelled_requests.",
        "ttlMs": 0,
        "cacheScope": "public",
    })
}

/// Adds `resultType`, `_meta[serverInfo]` and, for list-like results, cache hints.
pub(crate) fn finish(method: &str, mut result: Value) -> Value {
    if let Value::Object(o) = &mut result {
        o.entry("resultType").or_insert_with(|| json!("complete"));
        if matches!(
            method,
            "tools/list"
                | "prompts/list"
                | "resources/list"
                | "resources/templates/list"
                | "resources/read"
        ) {
            o.entry("ttlMs").or_insert_with(|| json!(0));
            o.entry("cacheScope").or_insert_with(|| json!("public"));
        }
        let meta = o
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = meta {
            m.insert(
                META_SERVER_INFO.into(),
                json!({"name": SERVER_NAME, "version": SERVER_VERSION}),
            );
        }
    }
    result
}

/// One call's MRTR bookkeeping: answers known so far and inputs asked for.
#[derive(Debug, Default)]
pub(crate) struct Mrtr {
    answers: Map<String, Value>,
    asked: Mutex<Map<String, Value>>,
    next: AtomicUsize,
}

/// The error a tool sees when its server-to-client request became an input request.
pub(crate) const INPUT_PENDING: i64 = -32099;

impl Mrtr {
    /// Answers the tool's `n`-th server-to-client request from the known
    /// answers, or records it as an input request (`Err(INPUT_PENDING)`).
    /// The key is the request's input-key hint, else `r{n}`.
    pub(crate) fn request(&self, method: &str, mut params: Value) -> Result<Value, RpcError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let key = take_input_key(&mut params).unwrap_or_else(|| format!("r{n}"));
        if let Some(answer) = self.answers.get(&key) {
            return Ok(answer.clone());
        }
        lock(&self.asked).insert(key, json!({"method": method, "params": params}));
        Err(RpcError::new(INPUT_PENDING, "input required"))
    }

    /// The input requests recorded so far (empty if none).
    pub(crate) fn asked(&self) -> Map<String, Value> {
        lock(&self.asked).clone()
    }
}

#[derive(Debug)]
struct Issued {
    tool: String,
    arguments: Value,
    answers: Map<String, Value>,
    at: Instant,
}

/// The `requestState`s this process issued and has not seen back yet.
#[derive(Debug, Default)]
pub(crate) struct StateBook {
    issued: Mutex<HashMap<String, Issued>>,
}

impl StateBook {
    /// Builds the MRTR context of a `tools/call`: checks and consumes its
    /// `requestState` (if any) and merges its `inputResponses`.
    pub(crate) fn begin(&self, params: &Value) -> Result<Mrtr, RpcError> {
        let mut answers = Map::new();
        if let Some(state) = params.get("requestState") {
            let state = state
                .as_str()
                .ok_or_else(|| RpcError::invalid_params("requestState must be a string"))?;
            let issued = lock(&self.issued).remove(state);
            let issued = issued.ok_or_else(|| {
                RpcError::invalid_params("invalid requestState: unknown or already used")
            })?;
            let tool = params.get("name").and_then(Value::as_str).unwrap_or("");
            let args = params.get("arguments").cloned().unwrap_or(Value::Null);
            if issued.tool != tool || issued.arguments != args {
                return Err(RpcError::invalid_params(
                    "invalid requestState: issued for a different call",
                ));
            }
            if issued.at.elapsed() > STATE_TTL {
                return Err(RpcError::invalid_params("invalid requestState: expired"));
            }
            answers = issued.answers;
        }
        if let Some(Value::Object(responses)) = params.get("inputResponses") {
            for (k, v) in responses {
                answers.insert(k.clone(), v.clone());
            }
        }
        Ok(Mrtr {
            answers,
            ..Mrtr::default()
        })
    }

    /// Issues a state for a call that still needs `mrtr.asked()` answered.
    pub(crate) fn issue(&self, params: &Value, mrtr: &Mrtr) -> String {
        let token = format!("demo-state-{}", uuid::Uuid::new_v4());
        let mut issued = lock(&self.issued);
        if issued.len() >= MAX_STATES {
            issued.retain(|_, i| i.at.elapsed() <= STATE_TTL);
            if issued.len() >= MAX_STATES {
                issued.clear();
            }
        }
        issued.insert(
            token.clone(),
            Issued {
                tool: params
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                arguments: params.get("arguments").cloned().unwrap_or(Value::Null),
                answers: mrtr.answers.clone(),
                at: Instant::now(),
            },
        );
        token
    }
}

/// `params` with the input-key hint `key` in its `_meta`.
pub(crate) fn with_input_key(mut params: Value, key: &str) -> Value {
    if let Some(o) = params.as_object_mut() {
        let meta = o
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = meta {
            m.insert(META_INPUT_KEY.into(), Value::String(key.to_string()));
        }
    }
    params
}

/// Removes the input-key hint from `params` (and `_meta` if that empties it); returns it.
fn take_input_key(params: &mut Value) -> Option<String> {
    let o = params.as_object_mut()?;
    let Value::Object(meta) = o.get_mut("_meta")? else {
        return None;
    };
    let key = match meta.remove(META_INPUT_KEY)? {
        Value::String(k) => k,
        _ => return None,
    };
    if meta.is_empty() {
        o.remove("_meta");
    }
    Some(key)
}

/// The `input_required` result.
pub(crate) fn input_required(asked: Map<String, Value>, state: &str) -> Value {
    finish(
        "tools/call",
        json!({
            "resultType": "input_required",
            "inputRequests": asked,
            "requestState": state,
        }),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn states_are_one_time_and_bound_to_the_call() {
        let book = StateBook::default();
        let params = json!({"name": "t", "arguments": {"a": 1}});
        let m = book.begin(&params).unwrap();
        assert!(m.request("elicitation/create", json!({})).is_err());
        let state = book.issue(&params, &m);
        let other = json!({"name": "t", "arguments": {"a": 2}, "requestState": state});
        assert!(book.begin(&other).is_err());
        let state = book.issue(&params, &m);
        let retry = json!({"name": "t", "arguments": {"a": 1}, "requestState": state,
            "inputResponses": {"r0": {"action": "accept"}}});
        let m = book.begin(&retry).unwrap();
        assert_eq!(
            m.request("elicitation/create", json!({})).unwrap()["action"],
            "accept"
        );
        assert!(book.begin(&retry).is_err(), "a state is used once");
    }

    #[test]
    fn input_key_hints_name_modern_input_requests() {
        let book = StateBook::default();
        let params = json!({"name": "t", "arguments": {}});
        let m = book.begin(&params).unwrap();
        let asked = with_input_key(json!({"message": "name?"}), "user_name");
        assert!(m.request("elicitation/create", asked).is_err());
        let inputs = m.asked();
        assert_eq!(
            inputs["user_name"]["params"],
            json!({"message": "name?"}),
            "{inputs:?}"
        );
    }

    #[test]
    fn era_parses() {
        assert_eq!("dual".parse::<Era>().unwrap(), Era::Dual);
        assert!("x".parse::<Era>().is_err());
    }
}
