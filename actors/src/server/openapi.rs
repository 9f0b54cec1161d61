//! OpenAPI 3.x → REST tool definitions. Called by the REST transport at connect time
//! (`transport/rest.rs`), which loads the document named by a server's `openapi` field.
//!
//! One tool per operation: named after its `operationId`; its `inputSchema` gathers the
//! path, query and header parameters and the JSON request body. An object body contributes
//! its properties as top-level arguments (the body is rebuilt from them); any other body
//! becomes one `body` argument. Component schemas move to `$defs` (only those a tool
//! reaches), OpenAPI 3.0 quirks (`nullable`, boolean `exclusiveMinimum`) become JSON Schema
//! 2020-12, and a 2xx JSON object response becomes the tool's `outputSchema`.

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::registry::{RestBody, RestMethod, RestTool};

/// Largest OpenAPI document accepted (real-world specs such as Jira's are a few MiB).
const MAX_DOC_BYTES: usize = 32 * 1024 * 1024;
/// Time allowed to fetch a document by URL.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// `$ref` hops followed before giving up (cycles between parameter refs).
const MAX_REF_HOPS: usize = 16;

/// Why a document could not be turned into tools.
#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    /// The file or URL could not be read.
    #[error("cannot load OpenAPI document {source_name}: {reason}")]
    Load {
        /// The `openapi` value.
        source_name: String,
        /// What failed.
        reason: String,
    },
    /// Not an OpenAPI 3 JSON document.
    #[error("{0}")]
    Invalid(String),
    /// `operations` names operationIds the document does not have.
    #[error("operations not in the OpenAPI document: {}", .0.join(", "))]
    UnknownOperations(Vec<String>),
}

/// Tools generated from a document.
#[derive(Debug)]
pub struct Imported {
    /// One per operation kept.
    pub tools: Vec<RestTool>,
    /// `servers[0].url` when it is absolute (used when the definition sets no `base_url`).
    pub base_url: Option<String>,
    /// Operations left out, with why (logged by the caller).
    pub skipped: Vec<(String, String)>,
}

/// Reads a document from a file path or an http(s) URL (allowed by `policy`). The file read
/// runs on the blocking pool so the calling actor's thread never waits on the disk.
pub async fn load(
    source: &str,
    policy: std::sync::Arc<crate::server::ssrf::UpstreamPolicy>,
) -> Result<Value, OpenApiError> {
    let fail = |reason: String| OpenApiError::Load {
        source_name: source.to_string(),
        reason,
    };
    let bytes: Vec<u8> = if source.starts_with("http://") || source.starts_with("https://") {
        policy.check_url(source).map_err(|e| fail(e.to_string()))?;
        let connector = awc::Connector::new()
            .connector(crate::server::ssrf::tcp_connector(policy))
            .rustls_0_23(crate::server::transport::tls::client_config());
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(FETCH_TIMEOUT)
            .finish();
        let mut resp = client
            .get(source)
            .insert_header(("Accept", "application/json"))
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status().as_u16())));
        }
        resp.body()
            .limit(MAX_DOC_BYTES)
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_vec()
    } else {
        let path = source.to_string();
        actix_rt::task::spawn_blocking(move || std::fs::read(path))
            .await
            .map_err(|e| fail(e.to_string()))?
            .map_err(|e| fail(e.to_string()))?
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        fail(format!(
            "not JSON ({e}); only JSON OpenAPI documents are supported (convert YAML first)"
        ))
    })
}

/// Turns a parsed document into tools; `operations` (operationIds) filters when not empty.
pub fn import(doc: &Value, operations: &[String]) -> Result<Imported, OpenApiError> {
    let version = doc.get("openapi").and_then(Value::as_str).unwrap_or("");
    if !version.starts_with("3.") {
        return Err(OpenApiError::Invalid(format!(
            "not an OpenAPI 3.x document (openapi = {version:?}); Swagger 2.0 is not supported"
        )));
    }
    let defs: Map<String, Value> = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), convert(v))).collect())
        .unwrap_or_default();
    let mut out = Imported {
        tools: Vec::new(),
        base_url: doc
            .pointer("/servers/0/url")
            .and_then(Value::as_str)
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            .map(str::to_string),
        skipped: Vec::new(),
    };
    let mut seen_ops = BTreeSet::new();
    let mut names = BTreeSet::new();
    let paths = doc.get("paths").and_then(Value::as_object);
    for (path, item) in paths.into_iter().flatten() {
        let item = resolve(doc, item);
        for (key, method) in [
            ("get", RestMethod::Get),
            ("put", RestMethod::Put),
            ("post", RestMethod::Post),
            ("delete", RestMethod::Delete),
            ("patch", RestMethod::Patch),
        ] {
            let Some(op) = item.get(key) else { continue };
            let op_id = op.get("operationId").and_then(Value::as_str);
            let label = op_id.map_or_else(|| format!("{key} {path}"), str::to_string);
            if let Some(id) = op_id {
                seen_ops.insert(id.to_string());
            }
            if !operations.is_empty() && !op_id.is_some_and(|id| operations.iter().any(|o| o == id))
            {
                continue;
            }
            let mut name = sanitize(op_id.unwrap_or(&format!("{key}_{path}")));
            while !names.insert(name.clone()) {
                name.push_str("_2");
            }
            match operation(doc, &defs, path, item, op, method, name) {
                Ok(tool) => out.tools.push(tool),
                Err(why) => out.skipped.push((label, why)),
            }
        }
    }
    let unknown: Vec<String> = operations
        .iter()
        .filter(|o| !seen_ops.contains(*o))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(OpenApiError::UnknownOperations(unknown));
    }
    Ok(out)
}

fn operation(
    doc: &Value,
    defs: &Map<String, Value>,
    path: &str,
    item: &Value,
    op: &Value,
    method: RestMethod,
    name: String,
) -> Result<RestTool, String> {
    let mut props = Map::new();
    let mut required: Vec<String> = Vec::new();
    let mut query = Vec::new();
    let mut headers = BTreeMap::new();
    // Operation parameters override path-level ones with the same (name, in).
    let mut params: Vec<&Value> = Vec::new();
    for list in [item.get("parameters"), op.get("parameters")] {
        for p in list.and_then(Value::as_array).into_iter().flatten() {
            let p = resolve(doc, p);
            let key = |v: &Value| (v.get("name").cloned(), v.get("in").cloned());
            params.retain(|q| key(q) != key(p));
            params.push(p);
        }
    }
    for p in params {
        let (Some(pname), Some(location)) = (
            p.get("name").and_then(Value::as_str),
            p.get("in").and_then(Value::as_str),
        ) else {
            continue;
        };
        let is_required = p.get("required").and_then(Value::as_bool) == Some(true);
        match location {
            "path" => required.push(pname.to_string()),
            "query" => query.push(pname.to_string()),
            "header" => {
                headers.insert(pname.to_string(), format!("{{{pname}}}"));
            }
            _ if is_required => {
                return Err(format!(
                    "required {location} parameter {pname} is not supported"
                ))
            }
            _ => continue,
        }
        if is_required && location != "path" {
            required.push(pname.to_string());
        }
        let mut schema = p.get("schema").map(convert).unwrap_or_else(|| json!({}));
        if let (Some(d), Value::Object(m)) = (p.get("description"), &mut schema) {
            m.entry("description").or_insert_with(|| d.clone());
        }
        props.insert(pname.to_string(), schema);
    }
    let mut body = None;
    if let Some(rb) = op.get("requestBody").map(|rb| resolve(doc, rb)) {
        let content = rb.get("content").and_then(Value::as_object);
        let json_media = content.and_then(|c| {
            c.get("application/json").or_else(|| {
                c.iter()
                    .find(|(k, _)| k.ends_with("+json") || k.ends_with("/json"))
                    .map(|(_, v)| v)
            })
        });
        let Some(media) = json_media else {
            let kinds: Vec<&String> = content.map(|c| c.keys().collect()).unwrap_or_default();
            return Err(format!(
                "request body is {kinds:?}; only JSON bodies are supported"
            ));
        };
        let body_required = rb.get("required").and_then(Value::as_bool) == Some(true);
        let schema = media.get("schema").cloned().unwrap_or_else(|| json!({}));
        let resolved = resolve(doc, &schema);
        let fields = resolved.get("properties").and_then(Value::as_object);
        match fields {
            Some(fields) if !fields.is_empty() && fields.keys().all(|k| !props.contains_key(k)) => {
                for (k, s) in fields {
                    props.insert(k.clone(), convert(s));
                }
                if body_required {
                    let body_req = resolved.get("required").and_then(Value::as_array);
                    required.extend(
                        body_req
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .map(str::to_string),
                    );
                }
                body = Some(RestBody::Fields(fields.keys().cloned().collect()));
            }
            _ => {
                let mut s = convert(&schema);
                if let (Some(d), Value::Object(m)) = (rb.get("description"), &mut s) {
                    m.entry("description").or_insert_with(|| d.clone());
                }
                props.insert("body".into(), s);
                if body_required {
                    required.push("body".into());
                }
                body = Some(RestBody::Whole("body".into()));
            }
        }
    }
    let mut input = json!({ "type": "object", "properties": props });
    let mut seen = BTreeSet::new();
    required.retain(|r| seen.insert(r.clone()));
    if !required.is_empty() {
        input["required"] = json!(required);
    }
    attach_defs(&mut input, defs);
    Ok(RestTool {
        name,
        description: Some(describe(op, method, path)),
        input_schema: input,
        output_schema: output_schema(doc, defs, op),
        method,
        path: path.to_string(),
        query,
        headers,
        body,
        response: None,
    })
}

/// The schema of the first 2xx JSON response, when it is an object (MCP output schemas are
/// objects; arrays and scalars are returned as text only).
fn output_schema(doc: &Value, defs: &Map<String, Value>, op: &Value) -> Option<Value> {
    let responses = op.get("responses").and_then(Value::as_object)?;
    let mut codes: Vec<&String> = responses.keys().filter(|k| k.starts_with('2')).collect();
    codes.sort();
    let resp = resolve(doc, responses.get(codes.first().copied()?)?);
    let schema = resp.pointer("/content/application~1json/schema")?;
    let resolved = resolve(doc, schema);
    let is_object = resolved.get("type").and_then(Value::as_str) == Some("object")
        || resolved.get("properties").is_some();
    if !is_object {
        return None;
    }
    let mut out = convert(schema);
    if let Value::Object(m) = &mut out {
        m.insert("type".into(), json!("object"));
    }
    attach_defs(&mut out, defs);
    Some(out)
}

fn describe(op: &Value, method: RestMethod, path: &str) -> String {
    let summary = op
        .get("summary")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim();
    let detail = op
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim();
    let mut parts: Vec<&str> = Vec::new();
    if !summary.is_empty() {
        parts.push(summary);
    }
    // Specs often repeat the summary as the description, give or take a full stop.
    if !detail.is_empty() && detail.trim_end_matches('.') != summary.trim_end_matches('.') {
        parts.push(detail);
    }
    let head = format!("{} {path}", method.as_str());
    if parts.is_empty() {
        head
    } else {
        format!("{}\n\n({head})", parts.join("\n\n"))
    }
}

/// Follows a `$ref` to a local JSON pointer (`#/components/...`), hop by hop.
fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..MAX_REF_HOPS {
        let Some(target) = v
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|p| doc.pointer(p))
        else {
            return v;
        };
        v = target;
    }
    v
}

/// An OpenAPI schema object as JSON Schema 2020-12.
fn convert(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                let v = match (k.as_str(), v) {
                    // Maps from arbitrary names (which may be "example" or "enum") to schemas.
                    (
                        "properties" | "patternProperties" | "$defs" | "definitions"
                        | "dependentSchemas",
                        Value::Object(named),
                    ) => {
                        Value::Object(named.iter().map(|(n, s)| (n.clone(), convert(s))).collect())
                    }
                    ("$ref", Value::String(r)) => Value::String(
                        r.strip_prefix("#/components/schemas/")
                            .map_or_else(|| r.clone(), |n| format!("#/$defs/{n}")),
                    ),
                    // Examples, defaults and enums are data, not schemas: kept as they are.
                    ("example" | "examples" | "default" | "enum" | "const", v) => v.clone(),
                    (_, v) => convert(v),
                };
                out.insert(k.clone(), v);
            }
            if out.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(t)) = out.get("type").cloned() {
                    out.insert("type".into(), json!([t, "null"]));
                }
            }
            for (flag, bound) in [
                ("exclusiveMinimum", "minimum"),
                ("exclusiveMaximum", "maximum"),
            ] {
                match out.get(flag) {
                    Some(Value::Bool(true)) => {
                        if let Some(b) = out.remove(bound) {
                            out.insert(flag.into(), b);
                        } else {
                            out.remove(flag);
                        }
                    }
                    Some(Value::Bool(false)) => {
                        out.remove(flag);
                    }
                    _ => {}
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(convert).collect()),
        other => other.clone(),
    }
}

/// Adds the `$defs` a schema reaches (directly or through other defs), and no others, so
/// one tool of a large spec does not carry every component.
fn attach_defs(schema: &mut Value, defs: &Map<String, Value>) {
    let mut wanted = BTreeSet::new();
    collect_refs(schema, &mut wanted);
    let mut todo: Vec<String> = wanted.iter().cloned().collect();
    while let Some(n) = todo.pop() {
        if let Some(d) = defs.get(&n) {
            let mut more = BTreeSet::new();
            collect_refs(d, &mut more);
            for m in more {
                if wanted.insert(m.clone()) {
                    todo.push(m);
                }
            }
        }
    }
    if wanted.is_empty() {
        return;
    }
    let picked: Map<String, Value> = wanted
        .into_iter()
        .filter_map(|n| defs.get(&n).map(|d| (n, d.clone())))
        .collect();
    if let Value::Object(m) = schema {
        m.insert("$defs".into(), Value::Object(picked));
    }
}

fn collect_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        if let Some(n) = r.strip_prefix("#/$defs/") {
                            out.insert(n.to_string());
                        }
                    }
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// An MCP-safe tool name: `[A-Za-z0-9_.-]`, at most 64 characters (what LLM APIs accept).
fn sanitize(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    let trimmed = out.trim_matches('_');
    let mut name: String = trimmed.chars().take(64).collect();
    if name.is_empty() {
        name = "operation".into();
    }
    name
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn doc() -> Value {
        json!({
            "openapi": "3.0.3",
            "servers": [{ "url": "https://api.example.com/v1" }],
            "paths": {
                "/things/{id}": {
                    "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } }],
                    "get": {
                        "operationId": "getThing",
                        "summary": "Get a thing",
                        "parameters": [{ "name": "verbose", "in": "query", "schema": { "type": "boolean" } }],
                        "responses": { "200": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Thing" } } } } }
                    },
                    "put": {
                        "operationId": "putThing",
                        "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Thing" } } } },
                        "responses": { "204": { "description": "done" } }
                    }
                },
                "/upload": { "post": { "operationId": "upload", "requestBody": { "content": { "application/octet-stream": {} } }, "responses": {} } }
            },
            "components": { "schemas": {
                "Thing": { "type": "object", "required": ["label"], "properties": {
                    "label": { "type": "string", "nullable": true },
                    "size": { "type": "number", "minimum": 0, "exclusiveMinimum": true },
                    "owner": { "$ref": "#/components/schemas/Owner" }
                } },
                "Owner": { "type": "object", "properties": { "name": { "type": "string" } } },
                "Unused": { "type": "string" }
            } }
        })
    }

    #[test]
    fn operations_become_tools() {
        let out = import(&doc(), &[]).unwrap();
        assert_eq!(out.base_url.as_deref(), Some("https://api.example.com/v1"));
        let names: Vec<&str> = out.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["getThing", "putThing"]);
        assert_eq!(out.skipped.len(), 1);
        let get = &out.tools[0];
        assert_eq!(get.query, ["verbose"]);
        assert_eq!(get.input_schema["required"], json!(["id"]));
        let output = get.output_schema.as_ref().unwrap();
        assert_eq!(output["$ref"], "#/$defs/Thing");
        assert!(output["$defs"].get("Owner").is_some() && output["$defs"].get("Unused").is_none());
        let put = &out.tools[1];
        assert_eq!(
            put.body,
            Some(RestBody::Fields(vec![
                "label".into(),
                "owner".into(),
                "size".into()
            ]))
        );
        assert_eq!(put.input_schema["required"], json!(["id", "label"]));
        assert_eq!(
            put.input_schema["properties"]["label"]["type"],
            json!(["string", "null"])
        );
        assert_eq!(
            put.input_schema["properties"]["size"]["exclusiveMinimum"],
            0
        );
        assert!(put.output_schema.is_none());
        jsonschema::options().build(&put.input_schema).unwrap();
    }

    #[test]
    fn the_operation_filter_keeps_only_named_ones_and_rejects_typos() {
        let out = import(&doc(), &["putThing".into()]).unwrap();
        assert_eq!(out.tools.len(), 1);
        let e = import(&doc(), &["nope".into()]).unwrap_err();
        assert!(e.to_string().contains("nope"));
        assert!(import(&json!({ "swagger": "2.0" }), &[]).is_err());
    }

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize("get /a/{b}"), "get_a_b");
        assert_eq!(sanitize("list.items-v2"), "list.items-v2");
    }
}
