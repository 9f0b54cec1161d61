//! [`Catalog`]: what one upstream offers (tools, prompts, resources, templates) as loaded at
//! its handshake, with each entry pre-rendered both as-is (for `/mcp/{server}`) and
//! namespaced (for `/mcp`). Built once per (re)load; readers share it through an `Arc`.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::Arc;

use crate::protocol::jsonrpc::raw_from_string;

/// Separator between server id and name on `/mcp`: `{server}__{name}`.
pub const NAMESPACE_SEP: &str = "__";

/// One named entry (tool or prompt).
#[derive(Debug)]
pub struct Entry {
    /// The upstream's own name.
    pub name: String,
    /// The entry as the upstream sent it (tools that declare no `execution.taskSupport` get
    /// `"optional"`, since the hub can run any call as a task).
    pub raw: Box<RawValue>,
    /// The entry with `name` replaced by `{server}__{name}`.
    pub namespaced: Box<RawValue>,
    /// Tools: whether the tool may run as a task (`execution.taskSupport`); the hub runs
    /// tasks itself, so tools that do not forbid it are offered as "optional".
    pub task_support: TaskSupport,
    /// Tools: the compiled `inputSchema`, checked by sessions and the plain call endpoint
    /// before a call goes upstream. `None` for prompts, tools without a schema, and schemas
    /// that do not compile (those calls pass through unchecked, as before).
    pub validator: Option<Arc<jsonschema::Validator>>,
}

/// A tool's `execution.taskSupport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskSupport {
    /// Plain calls only.
    Forbidden,
    /// Either.
    #[default]
    Optional,
    /// Task calls only.
    Required,
}

/// Everything a server offers, plus what its handshake said.
#[derive(Debug, Default)]
pub struct Catalog {
    /// True once the handshake and the lists loaded.
    pub ready: bool,
    /// Protocol revision agreed with the upstream.
    pub protocol_version: String,
    /// The upstream's declared capabilities.
    pub capabilities: Value,
    /// The upstream's `serverInfo`.
    pub server_info: Value,
    /// The upstream's `instructions`.
    pub instructions: Option<String>,
    /// Tools.
    pub tools: Vec<Entry>,
    /// Prompts.
    pub prompts: Vec<Entry>,
    /// Resources, as sent.
    pub resources: Vec<Box<RawValue>>,
    /// Resource templates, as sent.
    pub templates: Vec<Box<RawValue>>,
    resource_uris: HashSet<String>,
    template_prefixes: Vec<String>,
}

/// One page of an upstream list result.
#[derive(Deserialize)]
pub struct Page {
    /// The items, raw.
    #[serde(
        alias = "tools",
        alias = "prompts",
        alias = "resources",
        alias = "resourceTemplates"
    )]
    pub items: Vec<Box<RawValue>>,
    /// Cursor for the next page.
    #[serde(rename = "nextCursor")]
    pub next_cursor: Option<String>,
}

impl Catalog {
    /// Whether the upstream declared a capability (`tools`, `prompts`, `resources`, ...).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.get(name).is_some_and(|v| !v.is_null())
    }

    /// Sets tools from raw entries.
    pub fn set_tools(&mut self, server: &str, items: Vec<Box<RawValue>>) {
        self.tools = named_entries(server, items, true);
    }

    /// Sets prompts from raw entries.
    pub fn set_prompts(&mut self, server: &str, items: Vec<Box<RawValue>>) {
        self.prompts = named_entries(server, items, false);
    }

    /// Sets resources from raw entries.
    pub fn set_resources(&mut self, items: Vec<Box<RawValue>>) {
        self.resource_uris = items.iter().filter_map(|r| field_str(r, "uri")).collect();
        self.resources = items;
    }

    /// Sets resource templates from raw entries.
    pub fn set_templates(&mut self, items: Vec<Box<RawValue>>) {
        self.template_prefixes = items
            .iter()
            .filter_map(|t| field_str(t, "uriTemplate"))
            .map(|t| t.split('{').next().unwrap_or("").to_string())
            .filter(|p| !p.is_empty())
            .collect();
        self.templates = items;
    }

    /// Finds a tool by its upstream name.
    pub fn tool(&self, name: &str) -> Option<&Entry> {
        self.tools.iter().find(|t| t.name == name)
    }

    /// Finds a prompt by its upstream name.
    pub fn prompt(&self, name: &str) -> Option<&Entry> {
        self.prompts.iter().find(|p| p.name == name)
    }

    /// Whether this server serves a resource URI: listed exactly, or matching a template's
    /// literal prefix.
    pub fn serves_uri(&self, uri: &str) -> bool {
        self.resource_uris.contains(uri)
            || self
                .template_prefixes
                .iter()
                .any(|p| uri.starts_with(p.as_str()))
    }
}

fn field_str(raw: &RawValue, field: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        uri: Option<String>,
        #[serde(rename = "uriTemplate")]
        uri_template: Option<String>,
        name: Option<String>,
    }
    let p: Probe = serde_json::from_str(raw.get()).ok()?;
    match field {
        "uri" => p.uri,
        "uriTemplate" => p.uri_template,
        _ => p.name,
    }
}

fn named_entries(server: &str, items: Vec<Box<RawValue>>, tools: bool) -> Vec<Entry> {
    items
        .into_iter()
        .filter_map(|raw| {
            let mut obj: Map<String, Value> = serde_json::from_str(raw.get()).ok()?;
            let name = obj.get("name")?.as_str()?.to_string();
            let mut raw = raw;
            let mut task_support = TaskSupport::Forbidden;
            let mut validator = None;
            if tools {
                validator = compile_input_schema(server, &name, obj.get("inputSchema"));
                let declared = obj
                    .get("execution")
                    .and_then(|e| e.get("taskSupport"))
                    .and_then(Value::as_str);
                task_support = match declared {
                    Some("forbidden") => TaskSupport::Forbidden,
                    Some("required") => TaskSupport::Required,
                    _ => TaskSupport::Optional,
                };
                if declared.is_none() {
                    let execution = obj
                        .entry("execution")
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(e) = execution {
                        e.insert("taskSupport".into(), Value::String("optional".into()));
                    }
                    raw = raw_from_string(serde_json::to_string(&obj).ok()?);
                }
            }
            obj.insert(
                "name".into(),
                Value::String(format!("{server}{NAMESPACE_SEP}{name}")),
            );
            let namespaced = raw_from_string(serde_json::to_string(&obj).ok()?);
            Some(Entry {
                name,
                raw,
                namespaced,
                task_support,
                validator,
            })
        })
        .collect()
}

/// Compiles (or takes from the cache) a tool's input schema; a schema that does not compile
/// is logged and left unchecked rather than making the tool uncallable.
fn compile_input_schema(
    server: &str,
    tool: &str,
    schema: Option<&Value>,
) -> Option<Arc<jsonschema::Validator>> {
    let text = serde_json::to_string(schema?).ok()?;
    match crate::validation::ValidatorCache::global().get_or_compile(server, tool, &text) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(event = "tool.schema.invalid", server = %server, tool = %tool, error = %e, "tool.schema.invalid");
            None
        }
    }
}

impl Catalog {
    /// Whether `other` lists the same tools, prompts, resources and templates (as sent).
    pub fn same_lists(&self, other: &Catalog) -> bool {
        fn raws<'a>(e: impl Iterator<Item = &'a RawValue>) -> Vec<&'a str> {
            e.map(RawValue::get).collect()
        }
        raws(self.tools.iter().map(|e| &*e.raw)) == raws(other.tools.iter().map(|e| &*e.raw))
            && raws(self.prompts.iter().map(|e| &*e.raw))
                == raws(other.prompts.iter().map(|e| &*e.raw))
            && raws(self.resources.iter().map(|r| &**r))
                == raws(other.resources.iter().map(|r| &**r))
            && raws(self.templates.iter().map(|r| &**r))
                == raws(other.templates.iter().map(|r| &**r))
    }

    /// A catalog with this one's handshake fields and empty lists, to reload lists into.
    pub fn handshake_copy(&self) -> Catalog {
        Catalog {
            protocol_version: self.protocol_version.clone(),
            capabilities: self.capabilities.clone(),
            server_info: self.server_info.clone(),
            instructions: self.instructions.clone(),
            ..Catalog::default()
        }
    }
}
