//! `Mcp-Method`/`Mcp-Name`/`Mcp-Param-*` header values: `decode_header_value` (plain visible
//! ASCII or `=?base64?…?=` UTF-8) and `check_headers` against a body and a tool's
//! `x-mcp-header` annotations (`param_headers`).
//!
//! Input: line 1 is one raw header value; then the method, the params JSON, the tool JSON,
//! and `name: value` header lines (names lower-case, as the HTTP layer looks them up).
//!
//! Beyond "no panic": a decoded value re-encoded as `=?base64?…?=` (as a client encodes
//! non-ASCII) decodes to the same text; a plain value decodes to itself trimmed and has no
//! control characters; a request `check_headers` accepts carries an `Mcp-Method` equal to
//! the body's method.
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use mcp_hub_actors::protocol::modern::{check_headers, decode_header_value, param_headers};
use serde_json::Value;

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fuzz_target!(|data: &[u8]| {
    let (raw, rest) = split_line(data);
    if let Some(text) = decode_header_value(raw) {
        let encoded = format!("=?base64?{}?=", STANDARD.encode(text.as_bytes()));
        assert_eq!(
            decode_header_value(encoded.as_bytes()).as_deref(),
            Some(text.as_str())
        );
        let trimmed = raw.trim_ascii();
        let encoded_form = trimmed
            .strip_prefix(b"=?base64?")
            .is_some_and(|r| r.ends_with(b"?="));
        if !encoded_form {
            assert!(text
                .bytes()
                .all(|b| b == b'\t' || (0x20..0x7f).contains(&b)));
            assert_eq!(text, text.trim());
            assert_eq!(
                decode_header_value(text.as_bytes()).as_deref(),
                Some(text.as_str())
            );
        }
    }

    let (method, rest) = split_line(rest);
    let (params, rest) = split_line(rest);
    let (tool, rest) = split_line(rest);
    let Ok(method) = std::str::from_utf8(method) else {
        return;
    };
    let params: Option<Value> = serde_json::from_slice(params).ok();
    let tool: Value = serde_json::from_slice(tool).unwrap_or(Value::Null);
    let pairs = param_headers(&tool);
    let headers: Vec<(&[u8], &[u8])> = rest
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let i = line.iter().position(|&b| b == b':')?;
            let value = &line[i + 1..];
            Some((&line[..i], value.strip_prefix(b" ").unwrap_or(value)))
        })
        .collect();
    let lookup = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| *v)
    };
    if check_headers(lookup, method, params.as_ref(), &pairs).is_ok() {
        let sent = lookup("mcp-method").and_then(decode_header_value);
        assert_eq!(sent.as_deref(), Some(method));
    }
});
