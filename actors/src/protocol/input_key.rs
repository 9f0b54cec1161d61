//! The input-key hint: how a session-era server names the `inputRequests` key its
//! server-to-client request gets when the hub turns it into a 2026-07-28 `input_required`
//! result.
//!
//! A session-era server asks with real requests (`elicitation/create`, ...) whose ids mean
//! nothing to a stateless client, so the hub's bridge has to name each one. A server that
//! wants stable names (a fixture that expects `user_name`, a tool whose modern twin uses
//! the same key) puts the name in the request's `params._meta[`[`META_INPUT_KEY`]`]`; the
//! bridge uses it when it is well formed and unique within the round, and otherwise falls
//! back to a generated `{capability}-{n}`. The hub sets the same hint itself when it turns
//! a modern upstream's `inputRequests` into real requests, so the upstream's own keys
//! survive a round trip through a legacy hop. Not part of MCP: a hub convention in the
//! `_meta` namespace any server may set and any client may ignore.

use serde_json::{Map, Value};

/// `_meta` key of a server-to-client request naming its `inputRequests` key.
pub const META_INPUT_KEY: &str = "dev.mcp-hub/inputKey";

/// Longest hint accepted (bytes).
pub const MAX_INPUT_KEY_LEN: usize = 64;

/// The well-formed hint of a request's params: 1 to [`MAX_INPUT_KEY_LEN`] characters of
/// `A-Z a-z 0-9 _ - . :`. Anything else is no hint (the bridge generates a name), so a
/// careless upstream cannot put odd text in the client's `inputResponses` keys.
pub fn hint(params: Option<&Value>) -> Option<&str> {
    let key = params?.get("_meta")?.get(META_INPUT_KEY)?.as_str()?;
    let ok = !key.is_empty()
        && key.len() <= MAX_INPUT_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    ok.then_some(key)
}

/// Removes the hint from params (the key already carries it), and `_meta` if that leaves
/// it empty.
pub fn strip(params: &mut Value) {
    let Some(obj) = params.as_object_mut() else {
        return;
    };
    let Some(Value::Object(meta)) = obj.get_mut("_meta") else {
        return;
    };
    meta.remove(META_INPUT_KEY);
    if meta.is_empty() {
        obj.remove("_meta");
    }
}

/// Adds the hint `key` to params (made an object if it was absent).
pub fn set(params: &mut Value, key: &str) {
    if !params.is_object() {
        *params = Value::Object(Map::new());
    }
    if let Some(obj) = params.as_object_mut() {
        let meta = obj
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = meta {
            m.insert(META_INPUT_KEY.into(), Value::String(key.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn well_formed_hints_are_read_and_others_ignored() {
        let p = json!({"message": "hi", "_meta": {META_INPUT_KEY: "user_name"}});
        assert_eq!(hint(Some(&p)), Some("user_name"));
        for bad in [
            json!(""),
            json!("has space"),
            json!(7),
            json!("x".repeat(65)),
        ] {
            let p = json!({"_meta": {META_INPUT_KEY: bad}});
            assert_eq!(hint(Some(&p)), None, "{p}");
        }
        assert_eq!(hint(Some(&json!({"message": "hi"}))), None);
        assert_eq!(hint(None), None);
    }

    #[test]
    fn set_then_strip_round_trips() {
        let mut p = json!({"message": "hi"});
        set(&mut p, "k1");
        assert_eq!(hint(Some(&p)), Some("k1"));
        strip(&mut p);
        assert_eq!(p, json!({"message": "hi"}));
        let mut other = json!({"_meta": {"progressToken": 3, META_INPUT_KEY: "k"}});
        strip(&mut other);
        assert_eq!(other, json!({"_meta": {"progressToken": 3}}));
        let mut none = Value::Null;
        set(&mut none, "k");
        assert_eq!(hint(Some(&none)), Some("k"));
    }
}
