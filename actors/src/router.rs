//! Router: pure functions that map a client request onto servers. Reads catalog snapshots
//! from the [`ServerDirectory`]; owns no state.
//!
//! Multiplexing rules (on `/mcp`, scope [`Scope::All`]):
//! - tools and prompts are exposed as `{server}__{name}`; server ids never contain `_`, so
//!   the first `__` splits a name unambiguously. Upstream calls use the original name.
//! - resources keep their URIs; a URI is routed to the server that lists it, else to the
//!   first server (by id) whose template's literal prefix it matches.
//! - lists are merged in server-id order and paginated with the hub's own opaque cursors.
//! - request ids and progress tokens are replaced by hub-unique numbers going upstream and
//!   restored coming back (see `rewrite_params` and the transports).

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::sync::Arc;

use crate::directory::{ServerDirectory, ServerHandle};
use crate::error::HubError;
use crate::protocol::jsonrpc::raw_from_string;
use crate::protocol::Id;
use crate::server::catalog::NAMESPACE_SEP;

/// Which servers a client session sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `/mcp`: every server, names namespaced.
    All,
    /// `/mcp/{server}`: one server, names unchanged.
    Server(Arc<str>),
}

/// The four list methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// tools/list
    Tools,
    /// prompts/list
    Prompts,
    /// resources/list
    Resources,
    /// resources/templates/list
    Templates,
}

impl ListKind {
    /// The list method for a method name.
    pub fn from_method(method: &str) -> Option<ListKind> {
        Some(match method {
            "tools/list" => ListKind::Tools,
            "prompts/list" => ListKind::Prompts,
            "resources/list" => ListKind::Resources,
            "resources/templates/list" => ListKind::Templates,
            _ => return None,
        })
    }

    fn key(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::Templates => "resourceTemplates",
        }
    }
}

fn servers_in(dir: &ServerDirectory, scope: &Scope) -> Result<Vec<Arc<ServerHandle>>, HubError> {
    match scope {
        Scope::All => Ok(dir.snapshot()),
        Scope::Server(id) => dir.get(id).map(|h| vec![h]).ok_or_else(|| gone(id)),
    }
}

fn gone(id: &str) -> HubError {
    HubError::ServerUnavailable {
        server: id.to_string(),
        reason: "server is not registered or not enabled".into(),
        retry_after_seconds: 5,
    }
}

/// Renders one page of a merged list, e.g. `{"tools":[…],"nextCursor":"…"}`.
pub fn list(
    dir: &ServerDirectory,
    scope: &Scope,
    kind: ListKind,
    cursor: Option<&str>,
    page_size: usize,
) -> Result<Box<RawValue>, HubError> {
    let offset = match cursor {
        None => 0,
        Some(c) => decode_cursor(c)?,
    };
    let namespaced = *scope == Scope::All;
    let servers = servers_in(dir, scope)?;
    let catalogs: Vec<_> = servers.iter().map(|h| h.catalog()).collect();
    let items = catalogs
        .iter()
        .flat_map(|c| -> Box<dyn Iterator<Item = &RawValue>> {
            match kind {
                ListKind::Tools => {
                    Box::new(
                        c.tools
                            .iter()
                            .map(move |e| if namespaced { &*e.namespaced } else { &*e.raw }),
                    )
                }
                ListKind::Prompts => Box::new(c.prompts.iter().map(move |e| {
                    if namespaced {
                        &*e.namespaced
                    } else {
                        &*e.raw
                    }
                })),
                ListKind::Resources => Box::new(c.resources.iter().map(|r| &**r)),
                ListKind::Templates => Box::new(c.templates.iter().map(|r| &**r)),
            }
        });
    let mut out = String::with_capacity(4096);
    out.push_str("{\"");
    out.push_str(kind.key());
    out.push_str("\":[");
    let mut count = 0usize;
    let mut more = false;
    for (i, item) in items.skip(offset).enumerate() {
        if i == page_size {
            more = true;
            break;
        }
        if i > 0 {
            out.push(',');
        }
        out.push_str(item.get());
        count += 1;
    }
    out.push(']');
    if more {
        out.push_str(",\"nextCursor\":\"");
        out.push_str(&encode_cursor(offset + count));
        out.push('"');
    }
    out.push('}');
    Ok(raw_from_string(out))
}

fn encode_cursor(offset: usize) -> String {
    format!("hub1-{offset:x}")
}

fn decode_cursor(c: &str) -> Result<usize, HubError> {
    c.strip_prefix("hub1-")
        .and_then(|hex| usize::from_str_radix(hex, 16).ok())
        .ok_or_else(|| HubError::invalid_params("Invalid cursor", "pass back the nextCursor of the previous page unchanged, or omit cursor to start over"))
}

/// Which kind of named entry to resolve.
#[derive(Debug, Clone, Copy)]
pub enum NameKind {
    /// A tool.
    Tool,
    /// A prompt.
    Prompt,
}

/// Finds the server for a tool or prompt name; returns it with the upstream's own name.
pub fn resolve_name(
    dir: &ServerDirectory,
    scope: &Scope,
    kind: NameKind,
    name: &str,
) -> Result<(Arc<ServerHandle>, String), HubError> {
    let kind_str = match kind {
        NameKind::Tool => "tool",
        NameKind::Prompt => "prompt",
    };
    let unknown = || HubError::UnknownName {
        kind: kind_str,
        name: name.to_string(),
    };
    let (handle, upstream_name) = match scope {
        Scope::All => {
            let (server, rest) = name.split_once(NAMESPACE_SEP).ok_or_else(unknown)?;
            (dir.get(server).ok_or_else(unknown)?, rest)
        }
        Scope::Server(id) => (dir.get(id).ok_or_else(|| gone(id))?, name),
    };
    let catalog = handle.catalog();
    // While a server restarts its catalog is kept; before its first handshake it is empty
    // and the call waits in the server's queue instead of failing.
    let known = match kind {
        NameKind::Tool => catalog.tool(upstream_name).is_some(),
        NameKind::Prompt => catalog.prompt(upstream_name).is_some(),
    };
    if !known && catalog.ready {
        return Err(unknown());
    }
    Ok((handle, upstream_name.to_string()))
}

/// Finds the server for a resource URI.
pub fn resolve_uri(
    dir: &ServerDirectory,
    scope: &Scope,
    uri: &str,
) -> Result<Arc<ServerHandle>, HubError> {
    match scope {
        Scope::Server(id) => dir.get(id).ok_or_else(|| gone(id)),
        Scope::All => dir
            .snapshot()
            .into_iter()
            .find(|h| h.catalog().serves_uri(uri))
            .ok_or_else(|| HubError::UnknownName {
                kind: "resource",
                name: uri.to_string(),
            }),
    }
}

/// Rewrites request params for the upstream: `name` (when given) replaces `params.name`, and
/// a `_meta.progressToken` is replaced by `token`. Returns the new params and the client's
/// original token. Params without either change pass through untouched.
pub fn rewrite_params(
    params: Option<Box<RawValue>>,
    name: Option<&str>,
    token: u64,
) -> Result<(Option<Box<RawValue>>, Option<Id>), HubError> {
    let Some(raw) = params else {
        return Ok((None, None));
    };
    let has_token = raw.get().contains("\"progressToken\"");
    if name.is_none() && !has_token {
        return Ok((Some(raw), None));
    }
    if let (Some(name), false) = (name, has_token) {
        // The common case, a rename only: the other members are copied as raw text, not
        // parsed into values and printed again. Keys with escapes take the general path.
        if let Ok(mut map) =
            serde_json::from_str::<std::collections::BTreeMap<&str, &RawValue>>(raw.get())
        {
            // to_raw_value prints without parsing the text again (from_string would).
            let internal = |e: serde_json::Error| HubError::Internal(e.to_string());
            let name = serde_json::value::to_raw_value(name).map_err(internal)?;
            map.insert("name", &name);
            let out = serde_json::value::to_raw_value(&map).map_err(internal)?;
            return Ok((Some(out), None));
        }
    }
    let mut map: Map<String, Value> = serde_json::from_str(raw.get()).map_err(|_| {
        HubError::invalid_params("params must be an object", "send params as a JSON object")
    })?;
    if let Some(name) = name {
        map.insert("name".into(), Value::String(name.to_string()));
    }
    let mut original = None;
    if let Some(Value::Object(meta)) = map.get_mut("_meta") {
        if let Some(t) = meta.get("progressToken") {
            original = serde_json::from_value::<Id>(t.clone()).ok();
            if original.is_some() {
                meta.insert("progressToken".into(), Value::from(token));
            }
        }
    }
    let out =
        serde_json::value::to_raw_value(&map).map_err(|e| HubError::Internal(e.to_string()))?;
    Ok((Some(out), original))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rewrites_name_and_progress_token_and_keeps_the_rest() {
        let params = RawValue::from_string(r#"{"name":"demo__echo","arguments":{"text":"hi"},"_meta":{"progressToken":"abc","traceparent":"t"}}"#.into()).unwrap();
        let (out, orig) = rewrite_params(Some(params), Some("echo"), 42).unwrap();
        let v: Value = serde_json::from_str(out.unwrap().get()).unwrap();
        assert_eq!(v["name"], "echo");
        assert_eq!(v["arguments"]["text"], "hi");
        assert_eq!(v["_meta"]["progressToken"], 42);
        assert_eq!(v["_meta"]["traceparent"], "t");
        assert_eq!(orig, Some(Id::Str("abc".into())));
    }

    #[test]
    fn renames_without_a_progress_token_keeping_raw_members() {
        let params = RawValue::from_string(
            r#"{"name":"demo__echo","arguments":{"text":"h\u00e9 \"x\"","n":1.50}}"#.into(),
        )
        .unwrap();
        let (out, orig) = rewrite_params(Some(params), Some("echo"), 7).unwrap();
        assert_eq!(
            out.unwrap().get(),
            r#"{"arguments":{"text":"h\u00e9 \"x\"","n":1.50},"name":"echo"}"#
        );
        assert!(orig.is_none());
        // A key with an escape cannot be borrowed: the general path still renames.
        let params = RawValue::from_string(r#"{"name":"demo__echo","a\"b":1}"#.into()).unwrap();
        let (out, _) = rewrite_params(Some(params), Some("echo"), 7).unwrap();
        let v: Value = serde_json::from_str(out.unwrap().get()).unwrap();
        assert_eq!(v["name"], "echo");
        assert_eq!(v["a\"b"], 1);
    }

    #[test]
    fn passes_params_through_when_nothing_changes() {
        let params = RawValue::from_string(r#"{"uri":"test://x"}"#.into()).unwrap();
        let (out, orig) = rewrite_params(Some(params), None, 1).unwrap();
        assert_eq!(out.unwrap().get(), r#"{"uri":"test://x"}"#);
        assert!(orig.is_none());
    }

    #[test]
    fn cursors_round_trip_and_bad_ones_are_invalid_params() {
        assert_eq!(decode_cursor(&encode_cursor(1234)).unwrap(), 1234);
        let e = decode_cursor("nope").unwrap_err();
        assert_eq!(e.to_rpc().code, -32602);
    }
}
