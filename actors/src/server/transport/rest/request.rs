//! Arguments → one HTTP request, for the REST transport: path and header templates
//! (`{arg}`, and `${ENV}` secrets in headers), the query string and the JSON body.

use awc::http::{header, Method};
use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};
use std::sync::Arc;

use crate::registry::{RestBody, RestTool};

/// RFC 3986 unreserved characters stay as they are; everything else is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A tool with its templates parsed and secrets resolved (at connect time).
pub(super) struct Prepared {
    pub(super) tool: RestTool,
    pub(super) path: Vec<Seg>,
    pub(super) headers: Vec<(header::HeaderName, Vec<Seg>)>,
    pub(super) output: Option<Arc<jsonschema::Validator>>,
}

/// A piece of a path or header template.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Seg {
    /// Text as it is (with any `${ENV}` already resolved).
    Lit(String),
    /// The value of this argument.
    Arg(String),
}

/// A configured header name, or why it is not one.
pub(super) fn header_name(k: &str) -> Result<header::HeaderName, String> {
    header::HeaderName::from_bytes(k.as_bytes())
        .map_err(|_| format!("headers.{k}: not a valid header name"))
}

/// Replaces `${NAME}` with the hub's environment variable NAME. The error names the
/// variable, never a value.
pub(super) fn resolve_env(key: &str, value: &str) -> Result<String, String> {
    let segs = parse_template(value, true).map_err(|e| format!("headers.{key}: {e}"))?;
    segs.into_iter()
        .map(|s| match s {
            Seg::Lit(l) => Ok(l),
            Seg::Arg(a) => Err(format!("headers.{key}: {{{a}}} is not allowed in default headers (only ${{ENV}} references)")),
        })
        .collect()
}

/// Parses `text {arg} more` into segments; with `env`, `${NAME}` is replaced by the
/// environment variable at once (so a secret's own braces are never read as a template).
pub(super) fn parse_template(s: &str, env: bool) -> Result<Vec<Seg>, String> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        let is_env = env && rest[..i].ends_with('$');
        let end = rest[i..]
            .find('}')
            .ok_or_else(|| format!("unclosed '{{' in {s:?}"))?;
        let name = &rest[i + 1..i + end];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(format!("bad placeholder {{{name}}} in {s:?}"));
        }
        if is_env {
            lit.push_str(&rest[..i - 1]);
            let value = std::env::var(name)
                .map_err(|_| format!("environment variable {name} is not set"))?;
            lit.push_str(&value);
        } else {
            lit.push_str(&rest[..i]);
            if !lit.is_empty() {
                out.push(Seg::Lit(std::mem::take(&mut lit)));
            }
            out.push(Seg::Arg(name.to_string()));
        }
        rest = &rest[i + end + 1..];
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        out.push(Seg::Lit(lit));
    }
    Ok(out)
}

/// One HTTP request, ready to send.
#[derive(Debug)]
pub(super) struct Plan {
    pub(super) method: Method,
    pub(super) url: String,
    pub(super) headers: Vec<(header::HeaderName, header::HeaderValue)>,
    pub(super) body: Option<Bytes>,
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Maps arguments onto the request: path placeholders, header placeholders, `query`, and
/// `body`; the rest go to the query string (GET, DELETE) or the JSON body (others, unless a
/// body mapping is given). `Err` is a message for an `isError` result.
pub(super) fn plan(
    base_url: &str,
    p: &Prepared,
    args: &Map<String, Value>,
) -> Result<Plan, String> {
    let tool = &p.tool;
    let mut used: Vec<&str> = Vec::new();
    let mut url = String::from(base_url);
    for seg in &p.path {
        match seg {
            Seg::Lit(l) => url.push_str(l),
            Seg::Arg(a) => {
                let v = args
                    .get(a)
                    .filter(|v| !v.is_null())
                    .ok_or_else(|| format!("missing argument {a:?} (used in the path)"))?;
                url.extend(utf8_percent_encode(&scalar_text(v), COMPONENT));
                used.push(a);
            }
        }
    }
    let mut headers = Vec::new();
    'headers: for (name, segs) in &p.headers {
        let mut value = String::new();
        for seg in segs {
            match seg {
                Seg::Lit(l) => value.push_str(l),
                Seg::Arg(a) => {
                    used.push(a);
                    // An optional header whose argument is absent is simply not sent.
                    match args.get(a).filter(|v| !v.is_null()) {
                        Some(v) => value.push_str(&scalar_text(v)),
                        None => continue 'headers,
                    }
                }
            }
        }
        let value = header::HeaderValue::from_str(&value)
            .map_err(|_| format!("argument for header {name} is not a valid header value"))?;
        headers.push((name.clone(), value));
    }
    let mut query: Vec<(&str, &Value)> = Vec::new();
    for q in &tool.query {
        if let Some(v) = args.get(q) {
            query.push((q, v));
        }
        used.push(q);
    }
    let mut body = match &tool.body {
        Some(RestBody::Whole(name)) => {
            used.push(name);
            Some(args.get(name).cloned().unwrap_or(Value::Null))
        }
        Some(RestBody::Fields(fields)) => {
            let mut m = Map::new();
            for f in fields {
                if let Some(v) = args.get(f) {
                    m.insert(f.clone(), v.clone());
                }
                used.push(f);
            }
            Some(Value::Object(m))
        }
        None if tool.method.has_body() => Some(Value::Object(Map::new())),
        None => None,
    };
    for (k, v) in args {
        if used.contains(&k.as_str()) {
            continue;
        }
        match (&tool.body, &mut body) {
            (None, Some(Value::Object(m))) => {
                m.insert(k.clone(), v.clone());
            }
            _ => query.push((k, v)),
        }
    }
    let mut sep = if url.contains('?') { '&' } else { '?' };
    for (k, v) in query {
        let values: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            other => vec![other],
        };
        for v in values {
            url.push(sep);
            sep = '&';
            url.extend(utf8_percent_encode(k, COMPONENT));
            url.push('=');
            url.extend(utf8_percent_encode(&scalar_text(v), COMPONENT));
        }
    }
    let body = match body {
        Some(b) => Some(Bytes::from(
            serde_json::to_vec(&b).map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    Ok(Plan {
        method: tool.method.to_http(),
        url,
        headers,
        body,
    })
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    /// A prepared tool from JSON (shared with the response tests).
    pub(crate) fn prepared(tool: Value) -> Prepared {
        let tool: RestTool = serde_json::from_value(tool).unwrap();
        Prepared {
            path: parse_template(&tool.path, false).unwrap(),
            headers: tool
                .headers
                .iter()
                .map(|(k, v)| (header_name(k).unwrap(), parse_template(v, true).unwrap()))
                .collect(),
            output: None,
            tool,
        }
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn plan_err(p: &Prepared, a: Value) -> String {
        plan("http://h", p, &args(a)).unwrap_err()
    }

    #[test]
    fn get_puts_path_args_in_the_path_and_the_rest_in_the_query() {
        let p = prepared(
            json!({ "name": "f", "method": "GET", "path": "/fruits/{name}", "headers": { "X-Trace": "t-{trace}" } }),
        );
        let plan = plan("http://h/api", &p, &args(json!({ "name": "blood orange/x", "limit": 5, "tags": ["a b", "c&d"], "trace": "1" }))).unwrap();
        assert_eq!(plan.method, Method::GET);
        assert_eq!(
            plan.url,
            "http://h/api/fruits/blood%20orange%2Fx?limit=5&tags=a%20b&tags=c%26d"
        );
        assert_eq!(plan.headers[0].1, "t-1");
        assert!(plan.body.is_none());
        let e = plan_err(&p, json!({}));
        assert!(e.contains("name"), "{e}");
    }

    #[test]
    fn post_sends_the_remaining_arguments_as_a_json_body() {
        let p = prepared(
            json!({ "name": "c", "method": "POST", "path": "/pets", "query": ["dry_run"] }),
        );
        let plan = plan(
            "http://h",
            &p,
            &args(json!({ "name": "rex", "age": 3, "dry_run": true })),
        )
        .unwrap();
        assert_eq!(plan.url, "http://h/pets?dry_run=true");
        let body: Value = serde_json::from_slice(&plan.body.unwrap()).unwrap();
        assert_eq!(body, json!({ "name": "rex", "age": 3 }));
        let whole = prepared(json!({ "name": "w", "method": "PUT", "path": "/x", "body": "doc" }));
        let plan =
            super::plan("http://h", &whole, &args(json!({ "doc": [1, 2], "v": 1 }))).unwrap();
        assert_eq!(plan.url, "http://h/x?v=1");
        assert_eq!(&plan.body.unwrap()[..], b"[1,2]");
    }

    #[test]
    fn env_references_are_resolved_and_missing_ones_named() {
        std::env::set_var("MCP_HUB_TEST_REST_TOKEN", "s3cr{e}t");
        assert_eq!(
            resolve_env("Authorization", "Bearer ${MCP_HUB_TEST_REST_TOKEN}").unwrap(),
            "Bearer s3cr{e}t"
        );
        let e = resolve_env("A", "${MCP_HUB_TEST_REST_MISSING}").unwrap_err();
        assert!(e.contains("MCP_HUB_TEST_REST_MISSING") && e.contains("not set"));
        assert!(resolve_env("A", "{arg}").is_err());
    }
}
