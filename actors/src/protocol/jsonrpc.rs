//! JSON-RPC 2.0 envelope, parsed shallowly.
//!
//! Only `jsonrpc`, `id`, `method` and the presence of `result`/`error` are read; `params`,
//! `result` and `error` stay [`RawValue`]s so large payloads pass through the hub without
//! being re-serialized. Outgoing messages are assembled from raw parts by the `*_bytes`
//! functions below.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;

use super::codes;

/// A JSON-RPC request id. MCP forbids `null`; the JSON type is kept so an id is echoed
/// exactly as it came (`"1"` is not `1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// An integer id.
    Num(i64),
    /// A string id.
    Str(String),
}

impl Id {
    /// The id as JSON text.
    pub fn to_json(&self) -> String {
        match self {
            Id::Num(n) => n.to_string(),
            Id::Str(s) => serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()),
        }
    }

    /// Parses an id from raw JSON; `None` for `null`, floats, objects and arrays.
    pub fn from_raw(raw: &RawValue) -> Option<Id> {
        serde_json::from_str::<Id>(raw.get()).ok()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Num(n) => write!(f, "{n}"),
            Id::Str(s) => write!(f, "{s}"),
        }
    }
}

/// A JSON-RPC error object. `data` tells the caller what to do next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// Stable error code (see [`codes`]).
    pub code: i64,
    /// Short human-readable message.
    pub message: String,
    /// Machine-readable detail and hints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
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

    /// Attaches `data`.
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// One classified JSON-RPC message.
#[derive(Debug)]
pub enum Message {
    /// A request: has an id and a method; expects exactly one response.
    Request {
        /// Request id.
        id: Id,
        /// Method name.
        method: String,
        /// Raw params, if any.
        params: Option<Box<RawValue>>,
    },
    /// A notification: a method without an id; never answered.
    Notification {
        /// Method name.
        method: String,
        /// Raw params, if any.
        params: Option<Box<RawValue>>,
    },
    /// A successful response.
    Response {
        /// Id of the request this answers.
        id: Id,
        /// Raw result.
        result: Box<RawValue>,
    },
    /// An error response. `id` is `None` when the request's id could not be read.
    Error {
        /// Id of the request this answers.
        id: Option<Id>,
        /// The error, raw.
        error: Box<RawValue>,
    },
}

#[derive(Deserialize)]
struct Envelope {
    jsonrpc: Option<String>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Box<RawValue>>,
    method: Option<String>,
    params: Option<Box<RawValue>>,
    result: Option<Box<RawValue>>,
    error: Option<Box<RawValue>>,
}

// Keeps `"id": null` distinguishable from a missing id (serde maps both to `None` otherwise).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

impl Message {
    /// Parses one JSON-RPC message from bytes.
    ///
    /// Errors: not JSON → -32700; JSON that is not a JSON-RPC 2.0 message → -32600 (with the
    /// request id when it could be read, so the caller can still answer it).
    pub fn parse(bytes: &[u8]) -> Result<Message, (Option<Id>, RpcError)> {
        let env: Envelope = match serde_json::from_slice(bytes) {
            Ok(env) => env,
            Err(e) if e.is_data() => {
                return Err((
                    None,
                    RpcError::new(codes::INVALID_REQUEST, "Invalid Request")
                        .with_data(serde_json::json!({"hint": "send one JSON-RPC 2.0 object: {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"...\"}", "detail": e.to_string()})),
                ))
            }
            Err(e) => {
                return Err((
                    None,
                    RpcError::new(codes::PARSE_ERROR, "Parse error")
                        .with_data(serde_json::json!({"detail": e.to_string()})),
                ))
            }
        };
        Self::from_envelope(env)
    }

    fn from_envelope(env: Envelope) -> Result<Message, (Option<Id>, RpcError)> {
        let id = match env.id.as_deref() {
            None => None,
            Some(raw) => match Id::from_raw(raw) {
                Some(id) => Some(id),
                None => {
                    return Err((
                        None,
                        invalid("id must be a string or an integer (MCP forbids null)"),
                    ))
                }
            },
        };
        if env.jsonrpc.as_deref() != Some("2.0") {
            return Err((id, invalid("\"jsonrpc\" must be \"2.0\"")));
        }
        match (env.method, id, env.result, env.error) {
            (Some(method), Some(id), None, None) => Ok(Message::Request {
                id,
                method,
                params: env.params,
            }),
            (Some(method), None, None, None) => Ok(Message::Notification {
                method,
                params: env.params,
            }),
            (None, Some(id), Some(result), None) => Ok(Message::Response { id, result }),
            (None, id, None, Some(error)) => Ok(Message::Error { id, error }),
            (_, id, _, _) => Err((
                id,
                invalid("a message has either a method (request or notification) or exactly one of result/error (response)"),
            )),
        }
    }

    /// Whether this is a request (expects a response).
    pub fn is_request(&self) -> bool {
        matches!(self, Message::Request { .. })
    }
}

fn invalid(hint: &str) -> RpcError {
    RpcError::new(codes::INVALID_REQUEST, "Invalid Request")
        .with_data(serde_json::json!({ "hint": hint }))
}

/// `{"jsonrpc":"2.0","id":…,"result":…}` from raw parts.
pub fn response_bytes(id: &Id, result: &RawValue) -> String {
    response_text(id, result.get())
}

/// [`response_bytes`] for result text known to be valid JSON (built by the hub from valid
/// parts), so it is not parsed again to become a `RawValue`.
pub fn response_text(id: &Id, result: &str) -> String {
    let id = id.to_json();
    let mut s = String::with_capacity(id.len() + result.len() + 36);
    s.push_str("{\"jsonrpc\":\"2.0\",\"id\":");
    s.push_str(&id);
    s.push_str(",\"result\":");
    s.push_str(result);
    s.push('}');
    s
}

/// `{"jsonrpc":"2.0","id":…,"error":{…}}`; `id` is `null` when unknown.
pub fn error_bytes(id: Option<&Id>, error: &RpcError) -> String {
    let id = id.map_or_else(|| "null".to_string(), Id::to_json);
    let err = serde_json::to_string(error)
        .unwrap_or_else(|_| "{\"code\":-32603,\"message\":\"Internal error\"}".into());
    format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{err}}}")
}

/// A response that carries an error object received raw from an upstream.
pub fn raw_error_bytes(id: &Id, error: &RawValue) -> String {
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{},\"error\":{}}}",
        id.to_json(),
        error.get()
    )
}

/// A request with a raw id (as JSON text), method and optional raw params.
pub fn request_bytes(id_json: &str, method: &str, params: Option<&RawValue>) -> String {
    let params = params.map(RawValue::get);
    let mut out =
        String::with_capacity(48 + id_json.len() + method.len() + params.map_or(0, str::len));
    out.push_str("{\"jsonrpc\":\"2.0\",\"id\":");
    out.push_str(id_json);
    out.push_str(",\"method\":");
    push_json_string(&mut out, method);
    if let Some(p) = params {
        out.push_str(",\"params\":");
        out.push_str(p);
    }
    out.push('}');
    out
}

/// Appends `s` as a JSON string literal.
fn push_json_string(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}

/// A notification with optional raw params.
pub fn notification_bytes(method: &str, params: Option<&RawValue>) -> String {
    let method = serde_json::to_string(method).unwrap_or_default();
    match params {
        Some(p) => format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":{method},\"params\":{}}}",
            p.get()
        ),
        None => format!("{{\"jsonrpc\":\"2.0\",\"method\":{method}}}"),
    }
}

/// Turns serializable data into a raw JSON value.
pub fn to_raw<T: Serialize>(value: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| empty_object())
}

/// `{}` as a raw value.
pub fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_string()).unwrap_or_else(|_| unreachable_raw())
}

/// Wraps already-serialized JSON text (produced by this crate) as a raw value.
pub fn raw_from_string(json: String) -> Box<RawValue> {
    RawValue::from_string(json).unwrap_or_else(|_| unreachable_raw())
}

#[allow(clippy::expect_used)]
fn unreachable_raw() -> Box<RawValue> {
    // "null" is valid JSON; this cannot fail.
    serde_json::value::to_raw_value(&serde_json::Value::Null).expect("null is valid JSON")
}

/// Deepest nesting of arrays and objects accepted in a message: well under serde_json's own
/// recursion limit (128), so whatever passes here also parses into a `Value`, and recursive
/// work on arguments (schema validation) stays shallow.
pub const MAX_JSON_DEPTH: usize = 64;

/// How deeply arrays and objects nest in `bytes` (strings skipped), stopping early once past
/// `limit`. Linear and without recursion, so it is safe on any input: envelopes keep
/// `params` raw, which serde_json does not depth-check, so bodies are checked with this
/// before anything else reads them.
pub fn nesting_depth(bytes: &[u8], limit: usize) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    max = depth;
                    if max > limit {
                        return max;
                    }
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn nesting_depth_skips_strings_and_stops_past_the_limit() {
        assert_eq!(nesting_depth(br#"{"a":[1,{"b":[]}]}"#, 128), 4);
        assert_eq!(nesting_depth(br#"{"a":"[[[[\"[[["}"#, 128), 1);
        assert_eq!(nesting_depth(b"42", 128), 0);
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(nesting_depth(deep.as_bytes(), 128), 129);
        let ok = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        );
        assert!(serde_json::from_str::<serde_json::Value>(&ok).is_ok());
        assert_eq!(nesting_depth(ok.as_bytes(), MAX_JSON_DEPTH), MAX_JSON_DEPTH);
    }

    #[test]
    fn classifies_messages() {
        let m = Message::parse(br#"{"jsonrpc":"2.0","id":"7","method":"ping"}"#).unwrap();
        assert!(matches!(m, Message::Request { id: Id::Str(ref s), .. } if s == "7"));
        let m =
            Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(m, Message::Notification { .. }));
        let m = Message::parse(br#"{"jsonrpc":"2.0","id":3,"result":{"x":[1,2]}}"#).unwrap();
        match m {
            Message::Response { id, result } => {
                assert_eq!(id, Id::Num(3));
                assert_eq!(result.get(), r#"{"x":[1,2]}"#);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_bad_input_with_stable_codes() {
        assert_eq!(Message::parse(b"{not json").unwrap_err().1.code, -32700);
        assert_eq!(Message::parse(b"[1,2]").unwrap_err().1.code, -32600);
        assert_eq!(
            Message::parse(br#"{"id":1,"method":"x"}"#)
                .unwrap_err()
                .1
                .code,
            -32600
        );
        let (id, e) = Message::parse(br#"{"jsonrpc":"2.0","id":null,"method":"x"}"#).unwrap_err();
        assert_eq!((id, e.code), (None, -32600));
        let (id, e) = Message::parse(br#"{"jsonrpc":"1.0","id":5,"method":"x"}"#).unwrap_err();
        assert_eq!((id, e.code), (Some(Id::Num(5)), -32600));
    }

    #[test]
    fn builds_messages_from_raw_parts() {
        let raw = RawValue::from_string(r#"{"a":1}"#.into()).unwrap();
        assert_eq!(
            response_bytes(&Id::Str("x".into()), &raw),
            r#"{"jsonrpc":"2.0","id":"x","result":{"a":1}}"#
        );
        let e = RpcError::new(-32601, "Method not found");
        assert_eq!(
            error_bytes(Some(&Id::Num(1)), &e),
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}"#
        );
        assert_eq!(
            request_bytes("3", "tools/call", Some(&raw)),
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"a":1}}"#
        );
        // A method needing escapes is still valid JSON with the same method.
        let odd = "a\"b\\c\n\u{1}é";
        let v: serde_json::Value =
            serde_json::from_str(&request_bytes("\"i\"", odd, None)).unwrap();
        assert_eq!(v["method"], odd);
        assert_eq!(v["id"], "i");
    }
}
