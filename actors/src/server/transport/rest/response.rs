//! An HTTP answer → a CallToolResult, and URLs as they may be logged.

use awc::http::StatusCode;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::request::Prepared;
use crate::protocol::jsonrpc::to_raw;
use crate::validation;

/// Characters of a failed response's body quoted in the tool result.
const ERROR_EXCERPT_CHARS: usize = 500;
/// Query keys whose values are redacted in logs.
const SECRET_WORDS: &[&str] = &[
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "auth",
    "signature",
    "credential",
];

/// A tool result with `isError: true` and this text.
pub(super) fn error_result(text: &str) -> Box<RawValue> {
    to_raw(&json!({ "content": [{ "type": "text", "text": text }], "isError": true }))
}

/// An HTTP answer as a CallToolResult.
pub(super) fn render(p: &Prepared, status: StatusCode, body: &[u8]) -> Value {
    let text = String::from_utf8_lossy(body);
    if !status.is_success() {
        let excerpt: String = text.chars().take(ERROR_EXCERPT_CHARS).collect();
        return json!({
            "content": [{ "type": "text", "text": format!("HTTP {}: {excerpt}", status.as_u16()) }],
            "isError": true,
        });
    }
    if body.is_empty() {
        return json!({ "content": [{ "type": "text", "text": format!("HTTP {} (no content)", status.as_u16()) }] });
    }
    let pointer = p.tool.response.as_ref().and_then(|r| r.pointer.as_deref());
    if pointer.is_none() && p.tool.output_schema.is_none() {
        // Passed through as the API sent it: no parse, no re-serialization.
        return json!({ "content": [{ "type": "text", "text": text }] });
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return json!({ "content": [{ "type": "text", "text": text }], "isError": pointer.is_some() });
    };
    if let Some(ptr) = pointer {
        match value.pointer(ptr) {
            Some(v) => value = v.clone(),
            None => {
                return json!({
                    "content": [{ "type": "text", "text": format!("The response has nothing at {ptr} (response.pointer). Response: {text}") }],
                    "isError": true,
                })
            }
        }
    }
    let text = value.to_string();
    if let (Some(validator), true) = (&p.output, value.is_object()) {
        // Clients check structuredContent against outputSchema; an API that strays from
        // its own spec gets a clear tool error instead of a client-side failure.
        if let Err(violations) = validation::check(validator, &value) {
            let why = validation::violations_text(&p.tool.name, &violations);
            return json!({
                "content": [{ "type": "text", "text": format!("The REST API's response does not match the tool's outputSchema. {why}\nResponse: {text}") }],
                "isError": true,
            });
        }
        return json!({ "content": [{ "type": "text", "text": text }], "structuredContent": value });
    }
    json!({ "content": [{ "type": "text", "text": text }] })
}

/// The URL as logged: user info and the values of secret-looking query keys (token, key,
/// secret, password, ...) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{path}"),
                None => base.to_string(),
            }
        }
        None => base.to_string(),
    };
    if let Some(q) = query {
        out.push('?');
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret_key(k) => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| k.contains(w))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::request::tests::prepared;
    use super::*;
    use std::sync::Arc;

    #[test]
    fn secrets_in_query_strings_are_redacted_in_logs() {
        assert_eq!(
            redact_url("https://u:p@api.x/v1/a?q=1&api_key=abc&accessToken=z&Password=p"),
            "https://***@api.x/v1/a?q=1&api_key=***&accessToken=***&Password=***"
        );
        assert_eq!(redact_url("http://h/a"), "http://h/a");
    }

    #[test]
    fn responses_become_tool_results() {
        let p = prepared(json!({ "name": "g", "path": "/x", "response": { "pointer": "/data" } }));
        let r = render(&p, StatusCode::OK, br#"{"data":{"a":1}}"#);
        assert_eq!(r["content"][0]["text"], r#"{"a":1}"#);
        let r = render(
            &p,
            StatusCode::NOT_FOUND,
            "no such fruit".repeat(100).as_bytes(),
        );
        assert_eq!(r["isError"], true);
        let text = r["content"][0]["text"].as_str().unwrap();
        assert!(text.starts_with("HTTP 404: no such fruit"));
        assert_eq!(
            text.chars().count(),
            "HTTP 404: ".len() + ERROR_EXCERPT_CHARS
        );
        let mut p = prepared(
            json!({ "name": "g", "path": "/x", "output_schema": { "type": "object", "required": ["a"] } }),
        );
        p.output = Some(Arc::new(
            jsonschema::options()
                .build(&json!({ "type": "object", "required": ["a"] }))
                .unwrap(),
        ));
        let r = render(&p, StatusCode::OK, br#"{"a":1}"#);
        assert_eq!(r["structuredContent"], json!({ "a": 1 }));
        let r = render(&p, StatusCode::OK, br#"{"b":1}"#);
        assert_eq!(r["isError"], true);
    }
}
