//! [`ServerDef`]: one upstream server as an operator registers it, and its validation.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// How the hub talks to an upstream server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio,
    /// A remote server speaking MCP Streamable HTTP.
    StreamableHttp,
    /// A remote server speaking the legacy HTTP+SSE transport (2024-11-05): `url` is its
    /// SSE endpoint.
    Sse,
    /// A plain REST API presented as an MCP server: `base_url` plus `tools` and/or an
    /// `openapi` document (see `server::transport::rest`).
    Rest,
}

/// How calls share upstream MCP sessions (`session_mode` of a server definition).
///
/// Read by the Streamable HTTP transport (`server::transport::http`), which keeps one
/// upstream session per context the mode names; other transports only support `shared`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionMode {
    /// One upstream session for every caller.
    Shared,
    /// One upstream session per user identity (anonymous callers and the hub's own calls
    /// share the server's first session). The default for `streamable_http`.
    PerUser,
    /// One upstream session per client session, closed (DELETE) when the client session
    /// ends: for stateful servers. Calls without a client session use the first session.
    PerClient,
}

impl SessionMode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionMode::Shared => "shared",
            SessionMode::PerUser => "per_user",
            SessionMode::PerClient => "per_client",
        }
    }
}

/// One registered upstream server. Flat on purpose: the same shape in TOML, in the admin
/// API and in the store; [`ServerDef::validate`] checks the fields each transport needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerDef {
    /// Unique id: letters, digits and `-`, 1 to 64 characters. Tools are exposed on `/mcp`
    /// as `{id}__{tool}`, so ids never contain `_`.
    #[serde(default)]
    pub id: String,
    /// The transport.
    pub transport: TransportKind,
    /// stdio: the program to run. `@self` means this mcp-hub binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// stdio: arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// stdio: extra environment variables for the child.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// stdio: working directory of the child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// streamable_http: the MCP endpoint URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// streamable_http, sse, rest: headers sent with every upstream request (credentials go
    /// here). For rest, values may reference the hub's environment as `${NAME}`, resolved at
    /// connect time, so the secret itself never sits in the registry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// rest: the API's base URL; tool paths are appended to it. Optional with `openapi` when
    /// the document's `servers[0].url` is absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// rest: the tools, one HTTP operation each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<RestTool>,
    /// rest: an OpenAPI 3 JSON document (file path or http(s) URL) to generate tools from,
    /// read at every (re)connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openapi: Option<String>,
    /// rest with `openapi`: the operationIds to expose (default: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<String>,
    /// rest: timeout of each HTTP request to the API (default: `timeouts.external_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_timeout_ms: Option<u64>,
    /// Disabled servers stay registered but no worker runs.
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    /// Per-call timeout at the server layer (default: `timeouts.server_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Calls in flight at once to this upstream (default 64); more wait in the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Calls per second admitted to this server (overrides `limits.server_per_second`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<f64>,
    /// Burst for `rate_limit_per_second` (default: one second's worth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_burst: Option<f64>,
    /// Per-tool server-layer timeouts (upstream tool name → ms), overriding `timeout_ms`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tool_timeouts_ms: BTreeMap<String, u64>,
    /// Heavy tools (upstream names) that run one at a time on this server: a call to one
    /// waits until no other call to any of them is in flight. Other tools are unaffected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclusive_tools: Vec<String>,
    /// Where the server runs when several instances share Redis: only on the nodes named in
    /// `placement.nodes` or carrying one of `placement.labels` (for stdio servers that need a
    /// machine's local resources). Other instances forward its calls to a live eligible node.
    /// Empty (the default): every instance runs it.
    #[serde(default, skip_serializing_if = "Placement::is_empty")]
    pub placement: Placement,
    /// streamable_http: how callers share upstream sessions (default `per_user`); other
    /// transports accept only `shared`. See [`SessionMode`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_mode: Option<SessionMode>,
}

/// Which nodes may run a server; see [`ServerDef::placement`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// Node ids, in order of preference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// Node labels (`cluster.labels` of an instance); any one of them admits a node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

impl Placement {
    /// No constraint: every node runs the server.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.labels.is_empty()
    }

    /// For messages: `nodes a, b; labels gpu`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.nodes.is_empty() {
            parts.push(format!("nodes {}", self.nodes.join(", ")));
        }
        if !self.labels.is_empty() {
            parts.push(format!("labels {}", self.labels.join(", ")));
        }
        parts.join("; ")
    }
}

fn enabled_default() -> bool {
    true
}

/// One tool of a REST server: an HTTP operation and how arguments map onto it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestTool {
    /// Tool name: 1 to 128 of `A-Z a-z 0-9 _ - .`.
    pub name: String,
    /// Shown to the model (default: "METHOD path").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments (default: any object). Checked at the hub.
    #[serde(default = "any_object", alias = "inputSchema")]
    pub input_schema: Value,
    /// JSON Schema of a JSON object response; when set, results carry `structuredContent`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "outputSchema"
    )]
    pub output_schema: Option<Value>,
    /// HTTP method (default GET).
    #[serde(default)]
    pub method: RestMethod,
    /// Path template appended to `base_url`; `{arg}` placeholders take URL-encoded arguments.
    pub path: String,
    /// Arguments that go to the query string (besides the leftovers of GET and DELETE).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<String>,
    /// Headers of this tool; values may use `${ENV}` secrets and `{arg}` placeholders.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Which arguments form the JSON body (default: the leftovers, for POST, PUT, PATCH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<RestBody>,
    /// How the response becomes the tool result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<RestResponse>,
}

fn any_object() -> Value {
    serde_json::json!({ "type": "object" })
}

/// HTTP methods a REST tool may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RestMethod {
    /// GET (arguments left over go to the query string).
    #[default]
    #[serde(alias = "get")]
    Get,
    /// POST.
    #[serde(alias = "post")]
    Post,
    /// PUT.
    #[serde(alias = "put")]
    Put,
    /// PATCH.
    #[serde(alias = "patch")]
    Patch,
    /// DELETE (arguments left over go to the query string).
    #[serde(alias = "delete")]
    Delete,
}

impl RestMethod {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RestMethod::Get => "GET",
            RestMethod::Post => "POST",
            RestMethod::Put => "PUT",
            RestMethod::Patch => "PATCH",
            RestMethod::Delete => "DELETE",
        }
    }

    /// As awc's type.
    pub fn to_http(self) -> awc::http::Method {
        match self {
            RestMethod::Get => awc::http::Method::GET,
            RestMethod::Post => awc::http::Method::POST,
            RestMethod::Put => awc::http::Method::PUT,
            RestMethod::Patch => awc::http::Method::PATCH,
            RestMethod::Delete => awc::http::Method::DELETE,
        }
    }

    /// Whether leftover arguments form a JSON body (else they go to the query string).
    pub fn has_body(self) -> bool {
        matches!(self, RestMethod::Post | RestMethod::Put | RestMethod::Patch)
    }
}

/// Which arguments form a REST tool's JSON body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RestBody {
    /// These arguments, as the members of a JSON object.
    Fields(Vec<String>),
    /// This one argument's value is the whole body (e.g. an array).
    Whole(String),
}

/// How a REST response becomes the tool result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestResponse {
    /// JSON pointer (RFC 6901, e.g. `/data/items`) to the part of a JSON response to return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

/// A definition that cannot be accepted; `field` names the offending key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid server definition: `{field}`: {message}")]
pub struct DefError {
    /// The key at fault (e.g. `url`, `servers[1].command`).
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl DefError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// Default number of calls in flight per upstream.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 64;

impl ServerDef {
    /// Checks every field; the error names the first bad one and says how to fix it.
    pub fn validate(&self) -> Result<(), DefError> {
        validate_id(&self.id)?;
        match self.transport {
            TransportKind::Stdio => {
                match self.command.as_deref() {
                    Some(c) if !c.trim().is_empty() => {}
                    _ => return Err(DefError::new("command", "required for transport \"stdio\": the program to run, e.g. \"npx\" or \"@self\"")),
                }
                if self.url.is_some() {
                    return Err(DefError::new("url", "not used by transport \"stdio\"; remove it or set transport = \"streamable_http\""));
                }
            }
            TransportKind::StreamableHttp | TransportKind::Sse => {
                let url = self.url.as_deref().unwrap_or("");
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(DefError::new("url", "required for transports \"streamable_http\" and \"sse\": an http:// or https:// URL of the MCP (or SSE) endpoint"));
                }
                if url.parse::<awc::http::Uri>().is_err() {
                    return Err(DefError::new("url", format!("{url:?} is not a valid URL")));
                }
                if self.command.is_some() {
                    return Err(DefError::new("command", "not used by transport \"streamable_http\"; remove it or set transport = \"stdio\""));
                }
            }
            TransportKind::Rest => self.validate_rest()?,
        }
        if self.transport != TransportKind::Rest {
            let rest_only = [
                ("base_url", self.base_url.is_some()),
                ("tools", !self.tools.is_empty()),
                ("openapi", self.openapi.is_some()),
                ("operations", !self.operations.is_empty()),
                ("external_timeout_ms", self.external_timeout_ms.is_some()),
            ];
            if let Some((field, _)) = rest_only.iter().find(|(_, set)| *set) {
                return Err(DefError::new(
                    field,
                    "used only by transport \"rest\"; remove it or set transport = \"rest\"",
                ));
            }
        }
        for (name, value) in &self.headers {
            if awc::http::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(DefError::new(
                    &format!("headers.{name}"),
                    "not a valid HTTP header name",
                ));
            }
            if awc::http::header::HeaderValue::from_str(value).is_err() {
                return Err(DefError::new(
                    &format!("headers.{name}"),
                    "value must be visible ASCII",
                ));
            }
        }
        for (field, names) in [
            ("placement.nodes", &self.placement.nodes),
            ("placement.labels", &self.placement.labels),
        ] {
            if names.iter().any(|n| n.trim().is_empty() || n.len() > 128) {
                return Err(DefError::new(
                    field,
                    "each entry must be a node id (or label) of 1 to 128 characters",
                ));
            }
        }
        if let Some(mode) = self.session_mode {
            if mode != SessionMode::Shared && self.transport != TransportKind::StreamableHttp {
                return Err(DefError::new(
                    "session_mode",
                    format!(
                        "{:?} is supported only by transport \"streamable_http\"; this transport keeps one upstream session (or process) for all callers: use \"shared\" or remove it",
                        mode.as_str()
                    ),
                ));
            }
        }
        if self.timeout_ms == Some(0) {
            return Err(DefError::new(
                "timeout_ms",
                "must be at least 1 (milliseconds)",
            ));
        }
        if self
            .rate_limit_per_second
            .is_some_and(|r| !(r > 0.0 && r.is_finite()))
        {
            return Err(DefError::new(
                "rate_limit_per_second",
                "must be a positive number of calls per second",
            ));
        }
        if self
            .rate_limit_burst
            .is_some_and(|b| !(b >= 1.0 && b.is_finite()))
        {
            return Err(DefError::new("rate_limit_burst", "must be at least 1"));
        }
        if self.max_concurrency == Some(0) {
            return Err(DefError::new("max_concurrency", "must be at least 1"));
        }
        if let Some((tool, _)) = self.tool_timeouts_ms.iter().find(|(_, ms)| **ms == 0) {
            return Err(DefError::new(
                &format!("tool_timeouts_ms.{tool}"),
                "must be at least 1 (milliseconds)",
            ));
        }
        if self.exclusive_tools.iter().any(|t| t.trim().is_empty()) {
            return Err(DefError::new(
                "exclusive_tools",
                "tool names must not be empty (use the upstream's own tool names)",
            ));
        }
        Ok(())
    }

    /// The server-layer timeout of a call to `tool` (the upstream's own name), if this
    /// definition sets one: the tool's override, else the server's `timeout_ms`.
    pub fn timeout_for(&self, tool: Option<&str>) -> Option<u64> {
        tool.and_then(|t| self.tool_timeouts_ms.get(t).copied())
            .or(self.timeout_ms)
    }

    /// Whether `tool` (the upstream's own name) must run one at a time.
    pub fn is_exclusive(&self, tool: Option<&str>) -> bool {
        tool.is_some_and(|t| self.exclusive_tools.iter().any(|e| e == t))
    }

    /// The effective session mode: the definition's, else `per_user` for Streamable HTTP
    /// and `shared` for the others.
    pub fn session_mode(&self) -> SessionMode {
        match (self.session_mode, self.transport) {
            (Some(mode), _) => mode,
            (None, TransportKind::StreamableHttp) => SessionMode::PerUser,
            (None, _) => SessionMode::Shared,
        }
    }

    /// Calls in flight at once.
    pub fn max_concurrency(&self) -> usize {
        self.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY) as usize
    }

    /// A copy safe to show: header (also per REST tool) and env values replaced by `***`.
    pub fn redacted(&self) -> ServerDef {
        let mut d = self.clone();
        d.headers.values_mut().for_each(|v| *v = "***".into());
        d.env.values_mut().for_each(|v| *v = "***".into());
        for t in &mut d.tools {
            t.headers.values_mut().for_each(|v| *v = "***".into());
        }
        d
    }

    fn validate_rest(&self) -> Result<(), DefError> {
        if self.command.is_some() || self.url.is_some() {
            let field = if self.command.is_some() {
                "command"
            } else {
                "url"
            };
            return Err(DefError::new(
                field,
                "not used by transport \"rest\"; the API's address is base_url",
            ));
        }
        match self.base_url.as_deref() {
            Some(u)
                if (u.starts_with("http://") || u.starts_with("https://"))
                    && u.parse::<awc::http::Uri>().is_ok() => {}
            None if self.openapi.is_some() => {}
            Some(u) => {
                return Err(DefError::new(
                    "base_url",
                    format!("{u:?} is not an http:// or https:// URL"),
                ))
            }
            None => {
                return Err(DefError::new(
                    "base_url",
                    "required for transport \"rest\": the API's http:// or https:// base URL",
                ))
            }
        }
        if self.tools.is_empty() && self.openapi.is_none() {
            return Err(DefError::new(
                "tools",
                "transport \"rest\" needs tools, or openapi (a document to generate them from)",
            ));
        }
        if self.openapi.as_deref().is_some_and(|o| o.trim().is_empty()) {
            return Err(DefError::new(
                "openapi",
                "must be a file path or an http(s) URL of an OpenAPI 3 JSON document",
            ));
        }
        if !self.operations.is_empty() && self.openapi.is_none() {
            return Err(DefError::new(
                "operations",
                "filters the operations of openapi; set openapi too",
            ));
        }
        if let Some(ms) = self.external_timeout_ms {
            if ms == 0 || self.timeout_ms.is_some_and(|t| ms >= t) {
                return Err(DefError::new("external_timeout_ms", "must be at least 1 and shorter than timeout_ms: the external API layer gives up before the server layer"));
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, t) in self.tools.iter().enumerate() {
            let at = |f: &str| format!("tools[{i}].{f}");
            let ok_name = !t.name.is_empty()
                && t.name.len() <= 128
                && t.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !ok_name {
                return Err(DefError::new(
                    &at("name"),
                    format!("{:?}: 1 to 128 of A-Z a-z 0-9 _ - .", t.name),
                ));
            }
            if !names.insert(t.name.as_str()) {
                return Err(DefError::new(
                    &at("name"),
                    format!("{:?} is used twice", t.name),
                ));
            }
            if !t.path.starts_with('/')
                || t.path.matches('{').count() != t.path.matches('}').count()
            {
                return Err(DefError::new(
                    &at("path"),
                    format!(
                        "{:?} must start with '/' and close every {{placeholder}}",
                        t.path
                    ),
                ));
            }
            if !t.input_schema.is_object() {
                return Err(DefError::new(
                    &at("input_schema"),
                    "must be a JSON Schema object, e.g. {\"type\":\"object\",\"properties\":{...}}",
                ));
            }
            if t.output_schema
                .as_ref()
                .is_some_and(|o| o.get("type").and_then(Value::as_str) != Some("object"))
            {
                return Err(DefError::new(&at("output_schema"), "must be an object schema ({\"type\":\"object\",...}): MCP structured content is an object"));
            }
            for name in t.headers.keys() {
                if awc::http::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(DefError::new(
                        &at(&format!("headers.{name}")),
                        "not a valid HTTP header name",
                    ));
                }
            }
            if let Some(p) = t.response.as_ref().and_then(|r| r.pointer.as_deref()) {
                if !p.is_empty() && !p.starts_with('/') {
                    return Err(DefError::new(
                        &at("response.pointer"),
                        "a JSON pointer starts with '/', e.g. \"/data/items\"",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Server ids: `[A-Za-z0-9-]{1,64}`.
pub fn validate_id(id: &str) -> Result<(), DefError> {
    if id.is_empty() || id.len() > 64 {
        return Err(DefError::new("id", "must be 1 to 64 characters"));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(DefError::new("id", format!("{id:?} may contain only letters, digits and '-' (tools are exposed as {{id}}__{{tool}}, so '_' is reserved)")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn def(json: serde_json::Value) -> ServerDef {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn validation_names_the_bad_field() {
        let d = def(serde_json::json!({"id":"a","transport":"stdio"}));
        assert_eq!(d.validate().unwrap_err().field, "command");
        let d = def(serde_json::json!({"id":"a","transport":"streamable_http","url":"ftp://x"}));
        assert_eq!(d.validate().unwrap_err().field, "url");
        let d = def(serde_json::json!({"id":"a_b","transport":"stdio","command":"x"}));
        assert_eq!(d.validate().unwrap_err().field, "id");
        let d = def(
            serde_json::json!({"id":"ok-1","transport":"streamable_http","url":"http://127.0.0.1:1/mcp"}),
        );
        assert!(d.validate().is_ok());
        let e = serde_json::from_value::<ServerDef>(
            serde_json::json!({"id":"a","transport":"stdio","comand":"x"}),
        );
        assert!(e.unwrap_err().to_string().contains("comand"));
    }

    #[test]
    fn session_mode_defaults_per_transport_and_only_http_may_split_sessions() {
        let http = def(
            serde_json::json!({"id":"h","transport":"streamable_http","url":"http://127.0.0.1:1/mcp"}),
        );
        assert_eq!(http.session_mode(), SessionMode::PerUser);
        let stdio = def(serde_json::json!({"id":"s","transport":"stdio","command":"x"}));
        assert_eq!(stdio.session_mode(), SessionMode::Shared);
        let per_client = def(
            serde_json::json!({"id":"h","transport":"streamable_http","url":"http://127.0.0.1:1/mcp","session_mode":"per_client"}),
        );
        assert!(per_client.validate().is_ok());
        assert_eq!(per_client.session_mode(), SessionMode::PerClient);
        for mode in ["per_user", "per_client"] {
            let d = def(
                serde_json::json!({"id":"s","transport":"stdio","command":"x","session_mode":mode}),
            );
            let e = d.validate().unwrap_err();
            assert_eq!(e.field, "session_mode", "{e}");
            assert!(e.message.contains("streamable_http"), "{e}");
        }
        let shared = def(
            serde_json::json!({"id":"s","transport":"stdio","command":"x","session_mode":"shared"}),
        );
        assert!(shared.validate().is_ok());
        assert!(serde_json::from_value::<ServerDef>(
            serde_json::json!({"id":"s","transport":"stdio","command":"x","session_mode":"per_call"})
        )
        .is_err());
    }

    #[test]
    fn rest_definitions_are_checked_and_their_secrets_redacted() {
        let ok = def(serde_json::json!({
            "id": "fruits", "transport": "rest", "base_url": "http://127.0.0.1:9000",
            "headers": { "Authorization": "Bearer ${TOKEN}" },
            "tools": [{ "name": "get_fruit", "path": "/fruits/{name}", "headers": { "X-Key": "${KEY}" } }]
        }));
        assert!(ok.validate().is_ok());
        assert_eq!(ok.tools[0].method, RestMethod::Get);
        let shown = ok.redacted();
        assert_eq!(shown.headers["Authorization"], "***");
        assert_eq!(shown.tools[0].headers["X-Key"], "***");
        let bad = |patch: serde_json::Value| {
            let mut v = serde_json::to_value(&ok).unwrap();
            for (k, x) in patch.as_object().unwrap() {
                v[k] = x.clone();
            }
            serde_json::from_value::<ServerDef>(v)
                .unwrap()
                .validate()
                .unwrap_err()
                .field
        };
        assert_eq!(
            bad(serde_json::json!({ "base_url": "ftp://x" })),
            "base_url"
        );
        assert_eq!(bad(serde_json::json!({ "tools": [] })), "tools");
        assert_eq!(
            bad(serde_json::json!({ "tools": [{ "name": "a b", "path": "/" }] })),
            "tools[0].name"
        );
        assert_eq!(
            bad(serde_json::json!({ "tools": [{ "name": "a", "path": "x/{y" }] })),
            "tools[0].path"
        );
        assert_eq!(
            bad(
                serde_json::json!({ "tools": [{ "name": "a", "path": "/", "output_schema": { "type": "array" } }] })
            ),
            "tools[0].output_schema"
        );
        assert_eq!(
            bad(serde_json::json!({ "operations": ["x"] })),
            "operations"
        );
        assert_eq!(
            bad(serde_json::json!({ "timeout_ms": 100, "external_timeout_ms": 100 })),
            "external_timeout_ms"
        );
        let stdio_with_rest_field = def(
            serde_json::json!({"id":"a","transport":"stdio","command":"x","base_url":"http://h"}),
        );
        assert_eq!(
            stdio_with_rest_field.validate().unwrap_err().field,
            "base_url"
        );
        let openapi_only =
            def(serde_json::json!({"id":"p","transport":"rest","openapi":"spec.json"}));
        assert!(openapi_only.validate().is_ok());
    }
}
