//! Tool argument validation at the hub, for every transport.
//!
//! Each tool's `inputSchema` is compiled once per schema version (see [`cache`]) when its
//! server's catalog is built; the catalog entry carries the compiled validator. A session
//! (and the plain call endpoint) checks `arguments` against it before anything goes
//! upstream, so an invalid call never reaches the server, and the caller hears about every
//! violation at once in the shape its protocol revision prescribes (see [`rejection`]).

pub mod cache;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

pub use cache::{SchemaError, ValidatorCache};

use crate::directory::ServerDirectory;
use crate::error::HubError;
use crate::protocol::jsonrpc::to_raw;
use crate::router::{self, NameKind, Scope};

/// Violations reported per call; past this the list says how many more there were. Bounds
/// the work and the answer for hostile inputs (a huge array of wrong items).
pub const MAX_VIOLATIONS: usize = 50;

/// One reason the arguments do not match the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON pointer into `arguments` (`""` is the arguments object itself).
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

/// Checks `arguments` against a compiled tool schema. `Err` holds every violation (at most
/// [`MAX_VIOLATIONS`], then one summarising the rest).
pub fn check(validator: &jsonschema::Validator, arguments: &Value) -> Result<(), Vec<Violation>> {
    // The fast path for valid input allocates nothing.
    if validator.is_valid(arguments) {
        return Ok(());
    }
    let mut out = Vec::new();
    let mut extra = 0usize;
    for e in validator.iter_errors(arguments) {
        if out.len() < MAX_VIOLATIONS {
            out.push(Violation {
                path: e.instance_path().as_str().to_string(),
                message: e.to_string(),
            });
        } else {
            extra += 1;
        }
    }
    if extra > 0 {
        out.push(Violation {
            path: String::new(),
            message: format!("… and {extra} more violations"),
        });
    }
    Err(out)
}

/// Checks a `tools/call` against the catalog of the server it resolves to. `Some((tool,
/// violations))` when the arguments are invalid; `None` when they are valid, or when the
/// name does not resolve or the tool has no compiled schema (the normal path reports those).
/// Called by the session's method table before it forwards the call.
pub fn check_call(
    servers: &ServerDirectory,
    scope: &Scope,
    params: Option<&RawValue>,
) -> Option<(String, Vec<Violation>)> {
    // One parse for the name and the arguments (kept raw until a schema asks for them).
    #[derive(serde::Deserialize)]
    struct Call<'a> {
        name: String,
        #[serde(default, borrow)]
        arguments: Option<&'a RawValue>,
    }
    let call = serde_json::from_str::<Call<'_>>(params?.get()).ok()?;
    let (handle, upstream) =
        router::resolve_name(servers, scope, NameKind::Tool, &call.name).ok()?;
    let validator = handle.catalog().tool(&upstream)?.validator.clone()?;
    let violations = check(&validator, &arguments_value(call.arguments)).err()?;
    Some((call.name, violations))
}

/// `params.arguments` of a `tools/call` (an absent or null one is `{}`, as servers treat it).
pub fn arguments_of(params: Option<&RawValue>) -> Value {
    #[derive(serde::Deserialize)]
    struct P<'a> {
        #[serde(default, borrow)]
        arguments: Option<&'a RawValue>,
    }
    let raw = params
        .and_then(|p| serde_json::from_str::<P<'_>>(p.get()).ok())
        .and_then(|p| p.arguments);
    arguments_value(raw)
}

/// Raw `arguments` as a value for the schema check (absent or null: `{}`).
fn arguments_value(raw: Option<&RawValue>) -> Value {
    raw.and_then(|a| serde_json::from_str::<Value>(a.get()).ok())
        .filter(|a| !a.is_null())
        .unwrap_or_else(|| Value::Object(Default::default()))
}

/// Default of `limits.max_arguments_bytes`: 256 KiB of JSON.
pub const DEFAULT_MAX_ARGUMENTS_BYTES: usize = 256 * 1024;

/// Refuses a `tools/call` whose `arguments` (as JSON text, as the client sent it) are larger
/// than `limit` bytes: -32602 with data `{limit_bytes, size_bytes, hint}`. Called by the
/// session's method table and the modern call path before anything else looks at the call.
pub fn check_arguments_size(params: Option<&RawValue>, limit: usize) -> Result<(), HubError> {
    #[derive(serde::Deserialize)]
    struct P<'a> {
        #[serde(default, borrow)]
        arguments: Option<&'a RawValue>,
    }
    let size = params
        .and_then(|p| serde_json::from_str::<P<'_>>(p.get()).ok())
        .and_then(|p| p.arguments)
        .map_or(0, |a| a.get().len());
    arguments_size_error(size, limit)
}

/// The size check of [`check_arguments_size`] for arguments already measured.
pub fn arguments_size_error(size: usize, limit: usize) -> Result<(), HubError> {
    if size <= limit {
        return Ok(());
    }
    Err(HubError::InvalidParams {
        message: format!("Arguments too large: {size} bytes, the limit is {limit}"),
        data: json!({
            "limit_bytes": limit,
            "size_bytes": size,
            "hint": "send smaller arguments (pass large content by reference, e.g. a URL or a resource), or raise limits.max_arguments_bytes",
        }),
    })
}

/// The violations as lines of text: `- /path: message` (`(root)` for the object itself).
pub fn violations_text(tool: &str, violations: &[Violation]) -> String {
    let mut s = format!("Invalid arguments for tool {tool}:");
    for v in violations {
        let path = if v.path.is_empty() { "(root)" } else { &v.path };
        s.push_str(&format!("\n- {path}: {}", v.message));
    }
    s
}

/// Whether a protocol revision reports invalid tool arguments as a tool result with
/// `isError: true` (2025-11-25 and later) rather than as a JSON-RPC error.
pub fn reports_as_tool_result(protocol_version: &str) -> bool {
    // Revision names are ISO dates, so they order as strings.
    protocol_version >= "2025-11-25"
}

/// The JSON-RPC `-32602 Invalid params` error with `data.violations`.
pub fn invalid_params(tool: &str, violations: &[Violation]) -> HubError {
    HubError::InvalidParams {
        message: "Invalid params".into(),
        data: json!({
            "tool": tool,
            "violations": violations,
            "hint": "fix the listed arguments to match the tool's inputSchema (tools/list)",
        }),
    }
}

/// The answer a session gives for invalid arguments, per the client's era: from 2025-11-25
/// a tool result with `isError: true` listing each violation (the model can read it and
/// retry); before that a JSON-RPC `-32602` error with `data.violations`.
pub fn rejection(
    protocol_version: &str,
    tool: &str,
    violations: &[Violation],
) -> Result<Box<RawValue>, HubError> {
    if reports_as_tool_result(protocol_version) {
        Ok(to_raw(&json!({
            "content": [{ "type": "text", "text": violations_text(tool, violations) }],
            "isError": true,
        })))
    } else {
        Err(invalid_params(tool, violations))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn validator(schema: Value) -> jsonschema::Validator {
        jsonschema::options().build(&schema).unwrap()
    }

    #[test]
    fn lists_every_violation_with_its_path() {
        let v = validator(json!({
            "type": "object",
            "properties": { "a": { "type": "number" }, "b": { "type": "number" } },
            "required": ["a", "b"]
        }));
        assert!(check(&v, &json!({ "a": 1, "b": 2 })).is_ok());
        let errs = check(&v, &json!({ "a": "x" })).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs
            .iter()
            .any(|e| e.path == "/a" && e.message.contains("number")));
        assert!(errs
            .iter()
            .any(|e| e.path.is_empty() && e.message.contains("\"b\"")));
    }

    #[test]
    fn defaults_to_draft_2020_12() {
        // prefixItems exists only in 2020-12; older drafts would ignore it.
        let v = validator(json!({ "type": "array", "prefixItems": [{ "type": "string" }] }));
        assert!(check(&v, &json!([1])).is_err());
    }

    #[test]
    fn caps_the_number_of_violations() {
        let v = validator(json!({ "type": "array", "items": { "type": "string" } }));
        let errs = check(&v, &json!(vec![1; 500])).unwrap_err();
        assert_eq!(errs.len(), MAX_VIOLATIONS + 1);
        assert!(errs.last().unwrap().message.contains("450 more"));
    }

    #[test]
    fn the_era_decides_the_shape() {
        let vs = vec![Violation {
            path: "/a".into(),
            message: "bad".into(),
        }];
        let r = rejection("2025-11-25", "add", &vs).unwrap();
        let r: Value = serde_json::from_str(r.get()).unwrap();
        assert_eq!(r["isError"], true);
        assert!(r["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("/a: bad"));
        let e = rejection("2025-06-18", "add", &vs).unwrap_err().to_rpc();
        assert_eq!(e.code, -32602);
        assert_eq!(e.data.unwrap()["violations"][0]["path"], "/a");
    }
}
