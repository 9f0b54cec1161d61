//! MCP 2026-07-28 ("modern", stateless) wire vocabulary: the per-request `_meta` keys, the
//! HTTP headers a modern POST must carry and how they are checked against the body, the
//! modern error codes, `input_required` results, cache hints, and the signed `requestState`
//! the hub hands out when it bridges a legacy upstream's server-to-client request.
//!
//! Pure functions and plain data: the HTTP layer (`src/routes/mcp/modern/`) calls them.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use sha2::Sha256;

use super::{codes, RpcError};

/// The modern revision.
pub const VERSION: &str = "2026-07-28";
/// Modern revisions the hub serves, newest first.
pub const SUPPORTED: &[&str] = &[VERSION];

/// `_meta` key: the revision of this request (required).
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key: the client capabilities relevant to this request (required).
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key: who the client is (should).
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key: log level; without it no `notifications/message` for the request.
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// Result `_meta` key: who answered.
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// The input-schema annotation that mirrors a tool argument into an `Mcp-Param-*` header.
pub const PARAM_HEADER_KEY: &str = "x-mcp-header";
/// Notification `_meta` key on a `subscriptions/listen` stream: the listen request's id.
pub const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
/// The tasks extension's name (in `capabilities.extensions`).
pub const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// Header: protocol revision; must equal `_meta`'s.
pub const HEADER_VERSION: &str = "mcp-protocol-version";
/// Header: the JSON-RPC method.
pub const HEADER_METHOD: &str = "mcp-method";
/// Header: `params.name` / `params.uri` / `params.taskId`.
pub const HEADER_NAME: &str = "mcp-name";
/// Header prefix for tool arguments marked `x-mcp-header`.
pub const HEADER_PARAM_PREFIX: &str = "mcp-param-";

/// -32020: a header disagrees with the body, is missing or malformed (HTTP 400).
pub const HEADER_MISMATCH: i64 = -32020;
/// -32021: the request needs a client capability it did not declare (HTTP 400).
pub const MISSING_CLIENT_CAPABILITY: i64 = -32021;
/// -32022: the requested revision is not served (HTTP 400).
pub const UNSUPPORTED_VERSION: i64 = -32022;

/// Methods the 2026-07-28 revision removed; a modern request for them is "not found".
pub const REMOVED_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
    "tasks/result",
    "tasks/list",
];

/// What the hub reads from a modern request's `params._meta`.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// `io.modelcontextprotocol/protocolVersion`.
    pub version: String,
    /// `io.modelcontextprotocol/clientCapabilities` (an object).
    pub client_capabilities: Value,
    /// `io.modelcontextprotocol/logLevel`, if the client wants log notifications.
    pub log_level: Option<String>,
}

impl RequestMeta {
    /// Whether the client declared a capability (`sampling`, `elicitation`, `roots`).
    pub fn has_capability(&self, name: &str) -> bool {
        self.client_capabilities
            .get(name)
            .is_some_and(|v| !v.is_null())
    }

    /// Whether the client declared the tasks extension on this request.
    pub fn has_tasks_extension(&self) -> bool {
        self.client_capabilities
            .get("extensions")
            .and_then(|e| e.get(TASKS_EXTENSION))
            .is_some_and(|v| !v.is_null())
    }
}

/// Reads the modern `_meta` of `params`; a missing required field is -32602 (HTTP 400).
pub fn read_meta(params: Option<&Value>) -> Result<RequestMeta, RpcError> {
    let meta = params
        .and_then(|p| p.get("_meta"))
        .and_then(Value::as_object);
    let missing = |field: &str| {
        RpcError::new(
            codes::INVALID_PARAMS,
            format!("Invalid params: _meta[\"{field}\"] is required"),
        )
        .with_data(json!({
            "reason": "missing_meta",
            "field": field,
            "hint": format!("MCP {VERSION} requests carry params._meta with {META_PROTOCOL_VERSION} and {META_CLIENT_CAPABILITIES}"),
        }))
    };
    let Some(meta) = meta else {
        return Err(missing(META_PROTOCOL_VERSION));
    };
    let version = meta
        .get(META_PROTOCOL_VERSION)
        .and_then(Value::as_str)
        .ok_or_else(|| missing(META_PROTOCOL_VERSION))?
        .to_string();
    let client_capabilities = meta
        .get(META_CLIENT_CAPABILITIES)
        .filter(|v| v.is_object())
        .cloned()
        .ok_or_else(|| missing(META_CLIENT_CAPABILITIES))?;
    let log_level = meta
        .get(META_LOG_LEVEL)
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(RequestMeta {
        version,
        client_capabilities,
        log_level,
    })
}

/// Whether raw params carry a modern `_meta` protocol version (cheap pre-check, then parse).
pub fn has_modern_meta(params: Option<&RawValue>) -> bool {
    let Some(raw) = params else { return false };
    if !raw.get().contains(META_PROTOCOL_VERSION) {
        return false;
    }
    serde_json::from_str::<Value>(raw.get())
        .ok()
        .and_then(|v| v.get("_meta")?.get(META_PROTOCOL_VERSION).cloned())
        .is_some()
}

/// -32020 HeaderMismatch with what was wrong.
pub fn header_mismatch(header: &str, detail: impl Into<String>) -> RpcError {
    let detail = detail.into();
    RpcError::new(HEADER_MISMATCH, format!("Header mismatch: {detail}")).with_data(json!({
        "header": header,
        "hint": "send MCP-Protocol-Version, Mcp-Method and (for tools/call, resources/read, prompts/get, tasks/*) Mcp-Name equal to the body; non-ASCII values as =?base64?…?=",
    }))
}

/// -32022 UnsupportedProtocolVersion; the client picks one of `supported` and retries.
pub fn unsupported_version(requested: &str) -> RpcError {
    RpcError::new(
        UNSUPPORTED_VERSION,
        format!("Unsupported protocol version: {requested}"),
    )
    .with_data(json!({ "supported": SUPPORTED, "requested": requested }))
}

/// -32021 MissingRequiredClientCapability; `required` is a ClientCapabilities object.
pub fn missing_capability(required: Value) -> RpcError {
    RpcError::new(
        MISSING_CLIENT_CAPABILITY,
        "Missing required client capability",
    )
    .with_data(json!({ "requiredCapabilities": required }))
}

/// -32021 naming the tasks extension: a task-only tool, or a task method, from a client
/// that did not declare it.
pub fn missing_tasks_extension() -> RpcError {
    missing_capability(json!({ "extensions": { TASKS_EXTENSION: {} } }))
}

/// Decodes a header value: `=?base64?<b64>?=` is UTF-8 in base64; anything else must be
/// plain visible ASCII (space and tab allowed inside). `None` for a malformed value.
/// Surrounding spaces and tabs (HTTP's optional whitespace) are trimmed first, so a padded
/// base64 value is still decoded and a plain result never looks like an encoded one.
pub fn decode_header_value(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?.trim_matches([' ', '\t']);
    if let Some(b64) = text
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        let bytes = STANDARD.decode(b64).ok()?;
        return String::from_utf8(bytes).ok();
    }
    if text
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        Some(text.to_string())
    } else {
        None
    }
}

/// The value `Mcp-Name` must carry for a method, if the method needs one.
pub fn name_of(method: &str, params: Option<&Value>) -> Option<Option<String>> {
    let key = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        "tasks/get" | "tasks/update" | "tasks/cancel" => "taskId",
        _ => return None,
    };
    Some(
        params
            .and_then(|p| p.get(key))
            .and_then(Value::as_str)
            .map(str::to_string),
    )
}

/// Checks `Mcp-Method`, `Mcp-Name` and the tool's `Mcp-Param-*` headers against the body.
/// `header` looks a header up by lower-case name; `param_headers` are a tool's
/// `(header suffix, argument name)` pairs from [`param_headers`].
pub fn check_headers<'a>(
    header: impl Fn(&str) -> Option<&'a [u8]>,
    method: &str,
    params: Option<&Value>,
    param_headers: &[(String, String)],
) -> Result<(), RpcError> {
    let decoded = |name: &str| -> Result<Option<String>, RpcError> {
        match header(name) {
            None => Ok(None),
            Some(raw) => decode_header_value(raw)
                .map(Some)
                .ok_or_else(|| header_mismatch(name, format!("{name} has invalid characters"))),
        }
    };
    match decoded(HEADER_METHOD)? {
        None => return Err(header_mismatch(HEADER_METHOD, "Mcp-Method is required")),
        Some(m) if m != method => {
            return Err(header_mismatch(
                HEADER_METHOD,
                format!("Mcp-Method {m:?} but the body's method is {method:?}"),
            ))
        }
        Some(_) => {}
    }
    if let Some(expected) = name_of(method, params) {
        match (decoded(HEADER_NAME)?, expected) {
            (None, _) => {
                return Err(header_mismatch(
                    HEADER_NAME,
                    format!("Mcp-Name is required for {method}"),
                ))
            }
            (Some(got), Some(want)) if got == want => {}
            (Some(got), want) => {
                return Err(header_mismatch(
                    HEADER_NAME,
                    format!("Mcp-Name {got:?} but the body names {want:?}"),
                ))
            }
        }
    }
    let args = params.and_then(|p| p.get("arguments"));
    for (suffix, arg) in param_headers {
        let name = format!("{HEADER_PARAM_PREFIX}{}", suffix.to_ascii_lowercase());
        let value = args.and_then(|a| a.get(arg)).filter(|v| !v.is_null());
        match (decoded(&name)?, value) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(header_mismatch(
                    &name,
                    format!("Mcp-Param-{suffix} is required (argument {arg:?})"),
                ))
            }
            (Some(_), None) => {
                return Err(header_mismatch(
                    &name,
                    format!("Mcp-Param-{suffix} is set but argument {arg:?} is absent"),
                ))
            }
            (Some(got), Some(v)) if header_equals(&got, v) => {}
            (Some(got), Some(v)) => {
                return Err(header_mismatch(
                    &name,
                    format!("Mcp-Param-{suffix} {got:?} but argument {arg:?} is {v}"),
                ))
            }
        }
    }
    Ok(())
}

/// Header text against a primitive argument; numbers compare numerically.
fn header_equals(header: &str, value: &Value) -> bool {
    match value {
        Value::String(s) => s == header,
        Value::Bool(b) => header == if *b { "true" } else { "false" },
        Value::Number(n) => match (n.as_f64(), header.trim().parse::<f64>()) {
            (Some(a), Ok(b)) => a == b,
            _ => false,
        },
        _ => false,
    }
}

/// A tool's `x-mcp-header` annotations: `(header suffix, argument name)` for every top-level
/// property of its `inputSchema` that carries one.
pub fn param_headers(tool: &Value) -> Vec<(String, String)> {
    tool.get("inputSchema")
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .filter_map(|(arg, schema)| {
                    let h = schema.get(PARAM_HEADER_KEY)?.as_str()?;
                    Some((h.to_string(), arg.clone()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Cache hints of a list result (`ttlMs`, `cacheScope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheHint {
    /// How long the result may be reused, in ms.
    pub ttl_ms: u64,
    /// Whether the result is for this caller only.
    pub private: bool,
}

impl CacheHint {
    /// Merges the hints of several upstream pages: the smallest ttl, private if any is.
    /// `None` for no input.
    pub fn merge(hints: impl IntoIterator<Item = CacheHint>) -> Option<CacheHint> {
        hints.into_iter().reduce(|a, b| CacheHint {
            ttl_ms: a.ttl_ms.min(b.ttl_ms),
            private: a.private || b.private,
        })
    }

    /// Writes `ttlMs` and `cacheScope` into a result object.
    pub fn apply(self, result: &mut Map<String, Value>) {
        result.insert("ttlMs".into(), json!(self.ttl_ms));
        result.insert(
            "cacheScope".into(),
            json!(if self.private { "private" } else { "public" }),
        );
    }
}

/// Marks a result object as modern: `resultType: "complete"` unless it says otherwise, and
/// `_meta[serverInfo]`.
pub fn finish_result(result: &mut Map<String, Value>, server_info: &Value) {
    result
        .entry("resultType")
        .or_insert_with(|| json!("complete"));
    let meta = result
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(m) = meta {
        m.entry(META_SERVER_INFO)
            .or_insert_with(|| server_info.clone());
    }
}

/// [`finish_result`] on result text, without parsing it, when the result is an object with
/// neither `resultType` nor `_meta` anywhere in it (a call's usual answer); `None` otherwise
/// (the caller takes the [`finish_result`] path). `server_info` is JSON text.
pub fn finish_result_text(result: &str, server_info: &str) -> Option<String> {
    let body = result.trim_start().strip_prefix('{')?;
    // An escaped quote inside a string is `\"`, so these only match keys (at any depth:
    // a nested one is a false alarm that takes the slow path, never a wrong answer).
    if result.contains("\"resultType\"") || result.contains("\"_meta\"") {
        return None;
    }
    let sep = if body.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    Some(format!(
        "{{\"resultType\":\"complete\",\"_meta\":{{\"{META_SERVER_INFO}\":{server_info}}}{sep}{body}"
    ))
}

/// An `input_required` result.
pub fn input_required(input_requests: Value, request_state: &str) -> Value {
    json!({
        "resultType": "input_required",
        "inputRequests": input_requests,
        "requestState": request_state,
    })
}

/// What a signed `requestState` binds: the held call, its caller, what it was for, and when
/// it stops being valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateClaims {
    /// Key of the held call in the hub's pending table (random, 128 bits).
    #[serde(rename = "n")]
    pub nonce: String,
    /// The caller (user) it belongs to.
    #[serde(rename = "u")]
    pub user: String,
    /// The method of the original request.
    #[serde(rename = "m")]
    pub method: String,
    /// Its `Mcp-Name` target (tool, prompt or URI).
    #[serde(rename = "t")]
    pub target: String,
    /// Expiry, Unix ms.
    #[serde(rename = "e")]
    pub expires_ms: u64,
}

/// Why a `requestState` was refused; `reason()` goes into the error's `data.reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Not the hub's format, or the signature does not match (tampered).
    #[error("requestState failed integrity verification")]
    Tampered,
    /// Past its expiry.
    #[error("requestState expired")]
    Expired,
    /// Issued to another caller.
    #[error("requestState belongs to another caller")]
    WrongCaller,
    /// Issued for another request (method or name differs).
    #[error("requestState was issued for another request")]
    WrongRequest,
    /// Already used, or the held call is gone.
    #[error("requestState was already used or its call is gone")]
    Replayed,
}

impl StateError {
    /// Stable machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            StateError::Tampered => "tampered",
            StateError::Expired => "expired",
            StateError::WrongCaller => "wrong_caller",
            StateError::WrongRequest => "wrong_request",
            StateError::Replayed => "replayed",
        }
    }

    /// The JSON-RPC error: -32602 with `data.reason` (the spec names no dedicated code).
    pub fn to_rpc(&self) -> RpcError {
        RpcError::new(codes::INVALID_PARAMS, format!("Invalid params: {self}")).with_data(json!({
            "reason": self.reason(),
            "hint": "retry the original request without requestState/inputResponses to start over",
        }))
    }
}

/// Signs and verifies `requestState` with HMAC-SHA256 under the hub's secret. Every hub
/// instance behind one load balancer needs the same secret (config `modern.state_secret`).
#[derive(Clone)]
pub struct StateSigner {
    proto: HmacSha256,
}

impl std::fmt::Debug for StateSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateSigner(..)")
    }
}

type HmacSha256 = Hmac<Sha256>;

impl StateSigner {
    /// A signer with this secret.
    pub fn new(secret: &[u8]) -> Self {
        // RFC 2104 key preparation done here (hash if longer than a block, zero-pad), so
        // construction is infallible: same MAC as HMAC with `secret` itself.
        let mut block = [0u8; 64];
        if secret.len() > block.len() {
            use sha2::Digest;
            block[..32].copy_from_slice(&Sha256::digest(secret));
        } else {
            block[..secret.len()].copy_from_slice(secret);
        }
        Self {
            proto: <HmacSha256 as hmac::digest::KeyInit>::new(&block.into()),
        }
    }

    fn mac(&self) -> HmacSha256 {
        self.proto.clone()
    }

    /// `base64url(claims JSON) "." base64url(HMAC)`.
    pub fn sign(&self, claims: &StateClaims) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{body}.{sig}")
    }

    /// Verifies integrity, expiry (against `now_ms`) and the caller; returns the claims.
    pub fn verify(&self, state: &str, user: &str, now_ms: u64) -> Result<StateClaims, StateError> {
        let (body, sig) = state.split_once('.').ok_or(StateError::Tampered)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| StateError::Tampered)?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&sig).map_err(|_| StateError::Tampered)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| StateError::Tampered)?;
        let claims: StateClaims =
            serde_json::from_slice(&bytes).map_err(|_| StateError::Tampered)?;
        if claims.expires_ms <= now_ms {
            return Err(StateError::Expired);
        }
        if claims.user != user {
            return Err(StateError::WrongCaller);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claims(exp: u64) -> StateClaims {
        StateClaims {
            nonce: "n1".into(),
            user: "alice".into(),
            method: "tools/call".into(),
            target: "demo__x".into(),
            expires_ms: exp,
        }
    }

    #[test]
    fn request_state_round_trips_and_refuses_tampering_expiry_and_other_users() {
        let s = StateSigner::new(b"secret");
        let token = s.sign(&claims(2_000));
        assert_eq!(s.verify(&token, "alice", 1_000).unwrap(), claims(2_000));
        let tampered = format!("{token}-TAMPERED");
        assert_eq!(
            s.verify(&tampered, "alice", 1_000),
            Err(StateError::Tampered)
        );
        let (body, sig) = token.split_once('.').unwrap();
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(9_999)).unwrap());
        assert_ne!(forged_body, body);
        assert_eq!(
            s.verify(&format!("{forged_body}.{sig}"), "alice", 1_000),
            Err(StateError::Tampered)
        );
        assert_eq!(s.verify(&token, "alice", 2_000), Err(StateError::Expired));
        assert_eq!(s.verify(&token, "bob", 1_000), Err(StateError::WrongCaller));
        let other = StateSigner::new(b"other");
        assert_eq!(
            other.verify(&token, "alice", 1_000),
            Err(StateError::Tampered)
        );
    }

    #[test]
    fn header_values_decode_base64_and_refuse_control_characters() {
        assert_eq!(decode_header_value(b"plain").unwrap(), "plain");
        assert_eq!(
            decode_header_value(b"=?base64?w6l0w6k=?=").unwrap(),
            "\u{e9}t\u{e9}"
        );
        assert!(decode_header_value(b"a\x01b").is_none());
        assert!(decode_header_value(b"=?base64?!!!?=").is_none());
        // fuzz/corpus/mcp_param/padded_base64: a padded value was taken as plain text, so
        // " =?base64?/=?=" decoded to "=?base64?/=?=", which itself does not decode.
        assert_eq!(
            decode_header_value(b" =?base64?w6l0w6k=?=\t").unwrap(),
            "\u{e9}t\u{e9}"
        );
        assert!(decode_header_value(b" =?base64?/=?=").is_none());
        assert_eq!(decode_header_value(b"\t a b ").unwrap(), "a b");
    }

    #[test]
    fn headers_are_checked_against_the_body() {
        let params = json!({"name": "t", "arguments": {"region": "eu", "n": 3}});
        let ph = vec![
            ("Region".to_string(), "region".to_string()),
            ("N".into(), "n".into()),
        ];
        let ok = |h: &str| -> Option<&'static [u8]> {
            match h {
                "mcp-method" => Some(b"tools/call"),
                "mcp-name" => Some(b"t"),
                "mcp-param-region" => Some(b"eu"),
                "mcp-param-n" => Some(b"3.0"),
                _ => None,
            }
        };
        check_headers(ok, "tools/call", Some(&params), &ph).unwrap();
        let wrong_name = |h: &str| -> Option<&'static [u8]> {
            match h {
                "mcp-name" => Some(b"other"),
                _ => ok(h),
            }
        };
        let e = check_headers(wrong_name, "tools/call", Some(&params), &ph).unwrap_err();
        assert_eq!(e.code, HEADER_MISMATCH);
        let no_param = |h: &str| if h == "mcp-param-region" { None } else { ok(h) };
        let e = check_headers(no_param, "tools/call", Some(&params), &ph).unwrap_err();
        assert_eq!(e.code, HEADER_MISMATCH);
        let e = check_headers(|_| None, "tools/list", None, &[]).unwrap_err();
        assert_eq!(e.code, HEADER_MISMATCH);
    }

    #[test]
    fn cache_hints_merge_to_the_smallest_ttl_and_private_wins() {
        let m = CacheHint::merge([
            CacheHint {
                ttl_ms: 500,
                private: false,
            },
            CacheHint {
                ttl_ms: 100,
                private: true,
            },
            CacheHint {
                ttl_ms: 900,
                private: false,
            },
        ])
        .unwrap();
        assert_eq!(
            m,
            CacheHint {
                ttl_ms: 100,
                private: true
            }
        );
        assert!(CacheHint::merge([]).is_none());
    }

    #[test]
    fn meta_requires_version_and_capabilities() {
        let e = read_meta(Some(&json!({}))).unwrap_err();
        assert_eq!(e.code, -32602);
        let e = read_meta(Some(&json!({"_meta": {META_PROTOCOL_VERSION: VERSION}}))).unwrap_err();
        assert_eq!(e.code, -32602);
        let m = read_meta(Some(&json!({"_meta": {META_PROTOCOL_VERSION: VERSION, META_CLIENT_CAPABILITIES: {"elicitation": {}}}}))).unwrap();
        assert!(m.has_capability("elicitation"));
        assert!(!m.has_capability("sampling"));
    }

    #[test]
    fn a_plain_result_is_finished_as_text_like_the_map_path() {
        let info = r#"{"name":"mcp-hub","version":"1"}"#;
        let by_map = |text: &str| {
            let mut m = match serde_json::from_str::<Value>(text).unwrap() {
                Value::Object(m) => m,
                _ => unreachable!(),
            };
            finish_result(&mut m, &serde_json::from_str(info).unwrap());
            Value::Object(m)
        };
        for text in [
            "{}",
            " { } ",
            r#"{"content":[{"type":"text","text":"say \"resultType\" and \"_meta\""}]}"#,
            "{\n  \"isError\": false\n}",
        ] {
            let fast = finish_result_text(text, info).unwrap_or_else(|| panic!("{text}"));
            let fast: Value = serde_json::from_str(&fast).unwrap_or_else(|e| panic!("{fast}: {e}"));
            assert_eq!(fast, by_map(text), "{text}");
        }
        // Members finish_result must merge with, at any depth, and non-objects: the slow path.
        for text in [
            r#"{"resultType":"input_required"}"#,
            r#"{"_meta":{"a":1}}"#,
            r#"{"structuredContent":{"resultType":1}}"#,
            "[1]",
            "3",
        ] {
            assert_eq!(finish_result_text(text, info), None, "{text}");
        }
    }
}
