//! Tool definitions (`tools/list`) and implementations (`tools/call`).
//!
//! Two groups: the fixtures the official MCP conformance suite calls
//! (`test_*`, `json_schema_2020_12_tool`) and the hub's own test tools
//! (`echo`, `add`, `sleep`, `fail`, `cancelled_requests`, plus a few helpers
//! for list_changed, resource updates and roots).

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::time::{sleep, Instant};

use crate::core::{at_least, notification, Ctx, RpcError};
use crate::modern::with_input_key;

/// 1×1 red PNG.
pub(crate) const TEST_IMAGE_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// Longest `sleep` accepted (one hour).
const MAX_SLEEP_MS: u64 = 3_600_000;

/// A minimal WAV file: 8 kHz, mono, 16-bit, one silent sample.
pub(crate) fn test_audio_base64() -> &'static str {
    static WAV: OnceLock<String> = OnceLock::new();
    WAV.get_or_init(|| {
        use base64::Engine;
        let data: [u8; 2] = [0, 0];
        let mut w = Vec::with_capacity(46);
        w.extend_from_slice(b"RIFF");
        w.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        w.extend_from_slice(b"WAVEfmt ");
        w.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
        w.extend_from_slice(&1u16.to_le_bytes()); // PCM
        w.extend_from_slice(&1u16.to_le_bytes()); // channels
        w.extend_from_slice(&8000u32.to_le_bytes()); // sample rate
        w.extend_from_slice(&16000u32.to_le_bytes()); // byte rate
        w.extend_from_slice(&2u16.to_le_bytes()); // block align
        w.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
        w.extend_from_slice(b"data");
        w.extend_from_slice(&(data.len() as u32).to_le_bytes());
        w.extend_from_slice(&data);
        base64::engine::general_purpose::STANDARD.encode(w)
    })
}

fn no_args() -> Value {
    json!({"type": "object", "properties": {}})
}

fn tool(name: &str, description: &str, input_schema: Value) -> Value {
    json!({"name": name, "description": description, "inputSchema": input_schema})
}

/// `def` with `execution.taskSupport` set (`forbidden`, `optional` or `required`).
fn with_task_support(mut def: Value, support: &str) -> Value {
    def["execution"] = json!({ "taskSupport": support });
    def
}

fn all_definitions() -> &'static [Value] {
    static DEFS: OnceLock<Vec<Value>> = OnceLock::new();
    DEFS.get_or_init(|| {
        let mut add = tool(
            "add",
            "Adds two numbers; returns the sum as text and as structuredContent {sum}.",
            json!({
                "type": "object",
                "properties": {
                    "a": {"type": "number", "description": "First addend"},
                    "b": {"type": "number", "description": "Second addend"}
                },
                "required": ["a", "b"]
            }),
        );
        add["outputSchema"] = json!({
            "type": "object",
            "properties": {"sum": {"type": "number", "description": "a + b"}},
            "required": ["sum"]
        });
        vec![
            // ---- hub test tools ----
            tool(
                "echo",
                "Returns the given text unchanged as text content.",
                json!({
                    "type": "object",
                    "properties": {"text": {"type": "string", "description": "Text to echo back"}},
                    "required": ["text"]
                }),
            ),
            add,
            tool(
                "sleep",
                "Waits ms milliseconds, sending a progress notification about every 100 ms when the request has a progressToken (progress = elapsed ms, total = ms). Cancellable.",
                json!({
                    "type": "object",
                    "properties": {
                        "ms": {"type": "integer", "minimum": 0, "maximum": MAX_SLEEP_MS, "description": "How long to sleep, in milliseconds"},
                        "progress": {"type": "boolean", "description": "Send progress notifications when a progressToken is present (default true)"}
                    },
                    "required": ["ms"]
                }),
            ),
            tool(
                "fail",
                "Always fails: returns an isError result carrying the given message.",
                json!({
                    "type": "object",
                    "properties": {"message": {"type": "string", "description": "Error message to return"}},
                    "required": ["message"]
                }),
            ),
            tool(
                "cancelled_requests",
                "Returns, as a JSON array in text content, the request ids this process received notifications/cancelled for.",
                json!({"type": "object", "properties": {}, "required": []}),
            ),
            tool(
                "emit_list_changed",
                "Sends notifications/<kind>/list_changed on the session's unsolicited channel (GET stream over HTTP, stdout over stdio).",
                json!({
                    "type": "object",
                    "properties": {
                        "kind": {"type": "string", "enum": ["tools", "resources", "prompts"], "description": "Which list changed (default tools)"}
                    },
                    "required": []
                }),
            ),
            tool(
                "touch_resource",
                "Sends notifications/resources/updated for uri if the session subscribed to it; returns whether it did.",
                json!({
                    "type": "object",
                    "properties": {"uri": {"type": "string", "description": "Resource URI"}},
                    "required": ["uri"]
                }),
            ),
            tool(
                "list_roots",
                "Asks the client for its roots (roots/list) and returns the answer as JSON text.",
                json!({"type": "object", "properties": {}, "required": []}),
            ),
            // ---- conformance fixtures ----
            tool("test_simple_text", "Tests simple text content response", no_args()),
            tool("test_image_content", "Tests image content response", no_args()),
            tool("test_audio_content", "Tests audio content response", no_args()),
            tool("test_embedded_resource", "Tests embedded resource content response", no_args()),
            tool(
                "test_multiple_content_types",
                "Tests response with multiple content types (text, image, resource)",
                no_args(),
            ),
            tool(
                "test_tool_with_logging",
                "Tests tool that emits log messages during execution",
                no_args(),
            ),
            tool("test_error_handling", "Tests error response handling", no_args()),
            tool(
                "test_tool_with_progress",
                "Tests tool that reports progress notifications",
                no_args(),
            ),
            tool(
                "test_sampling",
                "Tests server-initiated sampling (LLM completion request)",
                json!({
                    "type": "object",
                    "properties": {"prompt": {"type": "string", "description": "The prompt to send to the LLM"}},
                    "required": ["prompt"]
                }),
            ),
            tool(
                "test_elicitation",
                "Tests server-initiated elicitation (user input request)",
                json!({
                    "type": "object",
                    "properties": {"message": {"type": "string", "description": "The message to show the user"}},
                    "required": ["message"]
                }),
            ),
            tool(
                "test_elicitation_sep1034_defaults",
                "Tests elicitation with default values per SEP-1034",
                no_args(),
            ),
            tool(
                "test_elicitation_sep1330_enums",
                "Tests elicitation with enum schema improvements per SEP-1330",
                no_args(),
            ),
            tool(
                "json_schema_2020_12_tool",
                "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
                // The 0.2.0 suite's fixture: SEP-2106 adds composition (allOf/anyOf),
                // conditionals (if/then/else) and $anchor to what must reach clients intact.
                json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "type": "object",
                    "$defs": {
                        "address": {
                            "$anchor": "addressDef",
                            "type": "object",
                            "properties": {
                                "street": {"type": "string"},
                                "city": {"type": "string"}
                            }
                        }
                    },
                    "properties": {
                        "name": {"type": "string"},
                        "address": {"$ref": "#/$defs/address"},
                        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                        "phone": {"type": "string"},
                        "email": {"type": "string"}
                    },
                    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
                    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
                    "then": {"required": ["phone"]},
                    "else": {"required": ["email"]},
                    "additionalProperties": false
                }),
            ),
            tool(
                "test_reconnection",
                "Tests SSE stream disconnection and client reconnection (SEP-1699): over HTTP the server closes the response stream mid-call and delivers the result after the client reconnects with Last-Event-ID.",
                no_args(),
            ),
            // ---- 2026-07-28 (SEP-2322 / SEP-2575) fixtures: legacy tools whose
            // server-to-client requests a modern gateway turns into input_required ----
            tool(
                "test_input_required_result_elicitation",
                "Asks the user's name (elicitation/create) and greets them.",
                no_args(),
            ),
            tool(
                "test_input_required_result_sampling",
                "Asks the client's LLM for the capital of France (sampling/createMessage).",
                no_args(),
            ),
            tool(
                "test_input_required_result_list_roots",
                "Asks the client for its roots (roots/list) and lists them.",
                no_args(),
            ),
            tool(
                "test_input_required_result_request_state",
                "Asks for a confirmation (elicitation/create); answers with \"state-ok\".",
                no_args(),
            ),
            tool(
                "test_input_required_result_multiple_inputs",
                "Sends elicitation/create, sampling/createMessage and roots/list at once.",
                no_args(),
            ),
            tool(
                "test_input_required_result_multi_round",
                "Two elicitations one after the other (name, then favourite colour).",
                no_args(),
            ),
            tool(
                "test_input_required_result_tampered_state",
                "Asks for a confirmation (elicitation/create).",
                no_args(),
            ),
            tool(
                "test_input_required_result_capabilities",
                "Tries elicitation/create, then sampling/createMessage: only what the client declared gets through.",
                no_args(),
            ),
            tool(
                "test_missing_capability",
                "Needs sampling: fails with -32021 (MissingRequiredClientCapability) if the client refuses sampling/createMessage.",
                no_args(),
            ),
            tool(
                "test_streaming_elicitation",
                "Asks a question (elicitation/create) while its response stream is open.",
                no_args(),
            ),
            tool(
                "test_logging_tool",
                "Emits notifications/message at info level, then answers.",
                no_args(),
            ),
            // The 0.2.0 suite's tasks-extension fixtures (SEP-2663).
            with_task_support(
                tool(
                    "greet",
                    "Says hello; never runs as a task.",
                    json!({
                        "type": "object",
                        "properties": {"name": {"type": "string"}},
                        "required": ["name"]
                    }),
                ),
                "forbidden",
            ),
            tool(
                "slow_compute",
                "Sleeps `seconds` seconds, then answers with its label; cancellable.",
                json!({
                    "type": "object",
                    "properties": {
                        "seconds": {"type": "number", "minimum": 0, "maximum": 120},
                        "label": {"type": "string"}
                    },
                    "required": ["seconds"]
                }),
            ),
            with_task_support(
                tool(
                    "failing_job",
                    "Fails with a tool error (isError) after about a second; runs only as a task.",
                    no_args(),
                ),
                "required",
            ),
            with_task_support(
                tool(
                    "confirm_delete",
                    "Asks to confirm (elicitation/create, key `confirm`) before it pretends to delete `filename`.",
                    json!({
                        "type": "object",
                        "properties": {"filename": {"type": "string"}},
                        "required": ["filename"]
                    }),
                ),
                "optional",
            ),
            with_task_support(
                tool(
                    "multi_input",
                    "Asks two questions at once (elicitation/create, keys `name` and `confirm`).",
                    no_args(),
                ),
                "optional",
            ),
            tool(
                "protocol_error_job",
                "Fails with a JSON-RPC error (a protocol error, not a tool error).",
                no_args(),
            ),
            tool(
                "test_header_param",
                "Echoes its region argument, which 2026-07-28 clients also send as the Mcp-Param-Region header (SEP-2243 x-mcp-header).",
                json!({
                    "type": "object",
                    "properties": {
                        "region": {"type": "string", "x-mcp-header": "Region"}
                    },
                    "required": ["region"]
                }),
            ),
            tool(
                "test_trigger_tool_change",
                "Sends notifications/tools/list_changed.",
                no_args(),
            ),
            tool(
                "test_trigger_prompt_change",
                "Sends notifications/prompts/list_changed.",
                no_args(),
            ),
        ]
    })
}

/// The `tools` array for `tools/list`, adapted to the negotiated revision
/// (`outputSchema` only from 2025-06-18 on).
pub(crate) fn definitions(version: &str) -> Vec<Value> {
    let defs = all_definitions();
    if at_least(version, "2025-06-18") {
        return defs.to_vec();
    }
    defs.iter()
        .map(|t| {
            let mut t = t.clone();
            if let Some(o) = t.as_object_mut() {
                o.remove("outputSchema");
            }
            t
        })
        .collect()
}

/// Why a tool call failed.
enum ToolError {
    /// Arguments do not match the tool's input schema.
    InvalidArgs(String),
    /// The tool ran and failed: an `isError: true` result.
    Failed(String),
    /// The call fails as a whole with this JSON-RPC error.
    Rpc(RpcError),
}

/// 2026-07-28 `MissingRequiredClientCapabilityError`.
const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;

type ToolResult = Result<Value, ToolError>;

fn text(s: impl Into<String>) -> Value {
    json!({"type": "text", "text": s.into()})
}

fn ok_text(s: impl Into<String>) -> ToolResult {
    Ok(json!({"content": [text(s)]}))
}

fn error_result(message: &str) -> Value {
    json!({"content": [text(message)], "isError": true})
}

fn arg_str<'a>(args: &'a Map<String, Value>, key: &str) -> Result<&'a str, ToolError> {
    match args.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ToolError::InvalidArgs(format!(
            "argument {key} must be a string"
        ))),
        None => Err(ToolError::InvalidArgs(format!(
            "missing required argument: {key}"
        ))),
    }
}

fn opt_str<'a>(args: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ToolError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => arg_str(args, key).map(Some),
    }
}

/// Entry point for `tools/call`.
pub(crate) async fn call(ctx: &Ctx, params: &Value) -> Result<Value, RpcError> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("tools/call: name (string) is required"))?;
    let empty = Map::new();
    let args = match params.get("arguments") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(RpcError::invalid_params(
                "tools/call: arguments must be an object",
            ))
        }
    };
    if !all_definitions().iter().any(|t| t["name"] == name) {
        return Err(RpcError::invalid_params(format!("Unknown tool: {name}")));
    }
    let version = ctx.version();
    let result = run(ctx, name, args).await;
    match result {
        Ok(mut r) => {
            if !at_least(&version, "2025-06-18") {
                if let Some(o) = r.as_object_mut() {
                    o.remove("structuredContent");
                }
            }
            Ok(r)
        }
        Err(ToolError::Failed(m)) => Ok(error_result(&m)),
        Err(ToolError::Rpc(e)) => Err(e),
        // 2025-11-25 reports input validation failures as tool errors so the
        // model can correct itself; earlier revisions list them as -32602.
        Err(ToolError::InvalidArgs(m)) if at_least(&version, "2025-11-25") => Ok(error_result(
            &format!("Invalid arguments for tool {name}: {m}"),
        )),
        Err(ToolError::InvalidArgs(m)) => Err(RpcError::invalid_params(format!(
            "Invalid arguments for tool {name}: {m}"
        ))),
    }
}

async fn run(ctx: &Ctx, name: &str, args: &Map<String, Value>) -> ToolResult {
    match name {
        "echo" => ok_text(arg_str(args, "text")?),
        "add" => add(args),
        "sleep" => sleep_tool(ctx, args).await,
        "fail" => Err(ToolError::Failed(arg_str(args, "message")?.to_string())),
        "cancelled_requests" => {
            let ids = ctx.server.shared().cancelled();
            ok_text(Value::Array(ids).to_string())
        }
        "emit_list_changed" => {
            let kind = opt_str(args, "kind")?.unwrap_or("tools");
            if !matches!(kind, "tools" | "resources" | "prompts") {
                return Err(ToolError::InvalidArgs(format!(
                    "kind must be tools, resources or prompts, got {kind:?}"
                )));
            }
            let method = format!("notifications/{kind}/list_changed");
            ctx.send_unsolicited(json!({"jsonrpc": "2.0", "method": method}));
            ok_text(format!("sent {method}"))
        }
        "touch_resource" => {
            let uri = arg_str(args, "uri")?;
            if ctx.is_subscribed(uri) {
                ctx.send_unsolicited(notification(
                    "notifications/resources/updated",
                    json!({"uri": uri}),
                ));
                ok_text(format!("sent notifications/resources/updated for {uri}"))
            } else {
                ok_text(format!("not subscribed to {uri}; nothing sent"))
            }
        }
        "list_roots" => {
            if !ctx.client_supports("roots") {
                return Err(ToolError::Failed("client does not support roots".into()));
            }
            match ctx.request("roots/list", json!({})).await {
                Ok(r) => ok_text(r.to_string()),
                Err(e) => Err(ToolError::Failed(format!(
                    "roots/list failed: {}",
                    e.message
                ))),
            }
        }
        "test_simple_text" => ok_text("This is a simple text response for testing."),
        "test_image_content" => Ok(json!({"content": [
            {"type": "image", "data": TEST_IMAGE_BASE64, "mimeType": "image/png"}
        ]})),
        "test_audio_content" => Ok(json!({"content": [
            {"type": "audio", "data": test_audio_base64(), "mimeType": "audio/wav"}
        ]})),
        "test_embedded_resource" => Ok(json!({"content": [{
            "type": "resource",
            "resource": {
                "uri": "test://embedded-resource",
                "mimeType": "text/plain",
                "text": "This is an embedded resource content."
            }
        }]})),
        "test_multiple_content_types" => Ok(json!({"content": [
            {"type": "text", "text": "Multiple content types test:"},
            {"type": "image", "data": TEST_IMAGE_BASE64, "mimeType": "image/png"},
            {"type": "resource", "resource": {
                "uri": "test://mixed-content-resource",
                "mimeType": "application/json",
                "text": json!({"test": "data", "value": 123}).to_string()
            }}
        ]})),
        "test_tool_with_logging" => {
            ctx.log("info", json!("Tool execution started"));
            sleep(Duration::from_millis(50)).await;
            ctx.log("info", json!("Tool processing data"));
            sleep(Duration::from_millis(50)).await;
            ctx.log("info", json!("Tool execution completed"));
            ok_text("Tool with logging executed successfully")
        }
        "test_error_handling" => Err(ToolError::Failed(
            "This tool intentionally returns an error for testing".into(),
        )),
        "test_tool_with_progress" => {
            for (i, p) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                if i > 0 {
                    sleep(Duration::from_millis(50)).await;
                }
                ctx.progress(p, Some(100.0), Some(&format!("Completed step {p} of 100")));
            }
            ok_text("Tool with progress executed successfully")
        }
        "test_sampling" => sampling(ctx, arg_str(args, "prompt")?).await,
        n if n.starts_with("test_input_required_result_") => input_required_fixture(ctx, n).await,
        "test_missing_capability" => missing_capability(ctx).await,
        "test_streaming_elicitation" => {
            let answer = ask(ctx, "user_name", "What is your name?", name_schema()).await?;
            ok_text(format!("Hello, {}!", content_str(&answer, "name")))
        }
        "greet" => ok_text(format!("Hello, {}!", arg_str(args, "name")?)),
        "slow_compute" => {
            let seconds = args
                .get("seconds")
                .and_then(Value::as_f64)
                .filter(|s| (0.0..=120.0).contains(s))
                .ok_or_else(|| {
                    ToolError::InvalidArgs("seconds must be a number from 0 to 120".into())
                })?;
            tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
            let label = opt_str(args, "label")?.unwrap_or("slow_compute");
            ok_text(format!("{label}: done after {seconds} s"))
        }
        "failing_job" => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Err(ToolError::Failed("failing_job always fails".into()))
        }
        "confirm_delete" => {
            let filename = arg_str(args, "filename")?;
            let answer = ask(
                ctx,
                "confirm",
                &format!("Delete {filename}?"),
                confirm_schema(),
            )
            .await?;
            let accepted = answer.get("action").and_then(Value::as_str) == Some("accept");
            let confirmed = answer.pointer("/content/confirm") == Some(&Value::Bool(true));
            if accepted && confirmed {
                ok_text(format!("Deleted {filename}"))
            } else {
                ok_text(format!("Kept {filename}"))
            }
        }
        "multi_input" => {
            let (who, confirm) = tokio::join!(
                ask(ctx, "name", "What is your name?", name_schema()),
                ask(ctx, "confirm", "Go ahead?", confirm_schema())
            );
            ok_text(format!(
                "name={}, confirm={}",
                content_str(&who?, "name"),
                content_str(&confirm?, "confirm")
            ))
        }
        "protocol_error_job" => Err(ToolError::Rpc(RpcError::new(
            -32603,
            "protocol_error_job: internal error (on purpose)",
        ))),
        "test_header_param" => ok_text(format!("region: {}", arg_str(args, "region")?)),
        "test_logging_tool" => {
            ctx.log("info", json!("test_logging_tool: started"));
            ctx.log("info", json!("test_logging_tool: done"));
            ok_text("Logged two messages at info level")
        }
        "test_trigger_tool_change" | "test_trigger_prompt_change" => {
            let kind = if name == "test_trigger_tool_change" {
                "tools"
            } else {
                "prompts"
            };
            let method = format!("notifications/{kind}/list_changed");
            ctx.send_unsolicited(notification(&method, json!({})));
            ok_text(format!("sent {method}"))
        }
        "test_elicitation" => {
            let message = arg_str(args, "message")?;
            let schema = json!({
                "type": "object",
                "properties": {
                    "username": {"type": "string", "description": "User's response"},
                    "email": {"type": "string", "description": "User's email address"}
                },
                "required": ["username", "email"]
            });
            let r = elicit(ctx, message, schema).await?;
            ok_text(format!("User response: {r}"))
        }
        "test_elicitation_sep1034_defaults" => {
            let schema = json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "User name", "default": "John Doe"},
                    "age": {"type": "integer", "description": "User age", "default": 30},
                    "score": {"type": "number", "description": "User score", "default": 95.5},
                    "status": {
                        "type": "string",
                        "description": "User status",
                        "enum": ["active", "inactive", "pending"],
                        "default": "active"
                    },
                    "verified": {"type": "boolean", "description": "Verification status", "default": true}
                },
                "required": []
            });
            let r = elicit(
                ctx,
                "Please review and update the form fields with defaults",
                schema,
            )
            .await?;
            ok_text(format!("Elicitation completed: {r}"))
        }
        "test_elicitation_sep1330_enums" => {
            let schema = json!({
                "type": "object",
                "properties": {
                    "untitledSingle": {
                        "type": "string",
                        "description": "Select one option",
                        "enum": ["option1", "option2", "option3"]
                    },
                    "titledSingle": {
                        "type": "string",
                        "description": "Select one option with titles",
                        "oneOf": [
                            {"const": "value1", "title": "First Option"},
                            {"const": "value2", "title": "Second Option"},
                            {"const": "value3", "title": "Third Option"}
                        ]
                    },
                    "legacyEnum": {
                        "type": "string",
                        "description": "Select one option (legacy)",
                        "enum": ["opt1", "opt2", "opt3"],
                        "enumNames": ["Option One", "Option Two", "Option Three"]
                    },
                    "untitledMulti": {
                        "type": "array",
                        "description": "Select multiple options",
                        "minItems": 1,
                        "maxItems": 3,
                        "items": {"type": "string", "enum": ["option1", "option2", "option3"]}
                    },
                    "titledMulti": {
                        "type": "array",
                        "description": "Select multiple options with titles",
                        "minItems": 1,
                        "maxItems": 3,
                        "items": {"anyOf": [
                            {"const": "value1", "title": "First Choice"},
                            {"const": "value2", "title": "Second Choice"},
                            {"const": "value3", "title": "Third Choice"}
                        ]}
                    }
                },
                "required": []
            });
            let r = elicit(ctx, "Please select options from the enum fields", schema).await?;
            ok_text(format!("Elicitation completed: {r}"))
        }
        "json_schema_2020_12_tool" => {
            const KNOWN: [&str; 5] = ["name", "address", "contactMethod", "phone", "email"];
            if let Some(k) = args.keys().find(|k| !KNOWN.contains(&k.as_str())) {
                return Err(ToolError::InvalidArgs(format!("unexpected argument {k}")));
            }
            ok_text(format!(
                "JSON Schema 2020-12 tool called with: {}",
                Value::Object(args.clone())
            ))
        }
        "test_reconnection" => {
            ctx.close_stream(500);
            sleep(Duration::from_millis(100)).await;
            ok_text("Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.")
        }
        other => Err(ToolError::Failed(format!(
            "tool {other} is not implemented"
        ))),
    }
}

fn add(args: &Map<String, Value>) -> ToolResult {
    let get = |k: &str| match args.get(k) {
        Some(Value::Number(n)) => Ok(n.clone()),
        Some(_) => Err(ToolError::InvalidArgs(format!(
            "argument {k} must be a number"
        ))),
        None => Err(ToolError::InvalidArgs(format!(
            "missing required argument: {k}"
        ))),
    };
    let (a, b) = (get("a")?, get("b")?);
    let sum = match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) if x.checked_add(y).is_some() => json!(x + y),
        _ => {
            let s = a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0);
            if !s.is_finite() {
                return Err(ToolError::Failed("sum is not a finite number".into()));
            }
            crate::core::num(s)
        }
    };
    Ok(json!({"content": [text(sum.to_string())], "structuredContent": {"sum": sum}}))
}

async fn sleep_tool(ctx: &Ctx, args: &Map<String, Value>) -> ToolResult {
    let ms = match args.get("ms") {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                    .map(|f| f as u64)
            })
            .ok_or_else(|| ToolError::InvalidArgs("ms must be a non-negative integer".into()))?,
        Some(_) => {
            return Err(ToolError::InvalidArgs(
                "ms must be a non-negative integer".into(),
            ))
        }
        None => {
            return Err(ToolError::InvalidArgs(
                "missing required argument: ms".into(),
            ))
        }
    };
    if ms > MAX_SLEEP_MS {
        return Err(ToolError::InvalidArgs(format!(
            "ms must be at most {MAX_SLEEP_MS}"
        )));
    }
    let want_progress = match args.get("progress") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ToolError::InvalidArgs("progress must be a boolean".into())),
    };
    let start = Instant::now();
    let deadline = start + Duration::from_millis(ms);
    if want_progress && ctx.progress_token.is_some() {
        let total = ms as f64;
        let mut last = 0u64;
        let tick = Duration::from_millis(100);
        let mut next = start + tick;
        while next < deadline {
            tokio::time::sleep_until(next).await;
            let elapsed = (start.elapsed().as_millis() as u64).min(ms);
            if elapsed > last {
                ctx.progress(elapsed as f64, Some(total), None);
                last = elapsed;
            }
            next += tick;
        }
        tokio::time::sleep_until(deadline).await;
        if ms > last {
            ctx.progress(total, Some(total), None);
        }
    } else {
        tokio::time::sleep_until(deadline).await;
    }
    ok_text(format!("slept {ms} ms"))
}

async fn sampling(ctx: &Ctx, prompt: &str) -> ToolResult {
    if !ctx.client_supports("sampling") {
        return Err(ToolError::Failed(
            "client does not support sampling (no sampling capability declared)".into(),
        ));
    }
    let params = json!({
        "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
        "maxTokens": 100
    });
    let r = ctx
        .request("sampling/createMessage", params)
        .await
        .map_err(|e| ToolError::Failed(format!("sampling/createMessage failed: {}", e.message)))?;
    let content = r.get("content");
    // 2025-11-25 allows an array of content blocks.
    let text_of = |c: &Value| c.get("text").and_then(Value::as_str).map(str::to_string);
    let reply = match content {
        Some(Value::Array(items)) => items.iter().find_map(text_of),
        Some(c) => text_of(c),
        None => None,
    }
    .unwrap_or_else(|| "No response".to_string());
    ok_text(format!("LLM response: {reply}"))
}

/// How long the 2026-07-28 fixtures wait for an answer to their server-to-client requests:
/// well under the hub's per-call timeout, so a question a modern client never answers
/// (its `input_required` not retried) ends the call with a tool error, not a timeout.
pub(crate) const FIXTURE_ANSWER_TIMEOUT: Duration = Duration::from_secs(8);

/// `{name: string}` (required): the schema the name-asking fixtures send.
fn name_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"]
    })
}

fn confirm_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"confirm": {"type": "boolean"}},
        "required": ["confirm"]
    })
}

/// Sends `elicitation/create` (form mode from 2025-11-25 on) and returns the answer. `key`
/// is the `inputRequests` key the suite expects (sent as the input-key hint).
async fn ask(ctx: &Ctx, key: &str, message: &str, schema: Value) -> Result<Value, ToolError> {
    let mut params = json!({"message": message, "requestedSchema": schema});
    if at_least(&ctx.version(), "2025-11-25") {
        params["mode"] = json!("form");
    }
    let params = with_input_key(params, key);
    ctx.request_within("elicitation/create", params, FIXTURE_ANSWER_TIMEOUT)
        .await
        .map_err(|e| ToolError::Failed(format!("elicitation/create failed: {}", e.message)))
}

/// Sends `sampling/createMessage` with one user message and returns the answer's text
/// (`key`: as for [`ask`]).
async fn sample(ctx: &Ctx, key: &str, prompt: &str, max_tokens: u32) -> Result<String, ToolError> {
    let params = json!({
        "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
        "maxTokens": max_tokens
    });
    let params = with_input_key(params, key);
    let r = ctx
        .request_within("sampling/createMessage", params, FIXTURE_ANSWER_TIMEOUT)
        .await
        .map_err(|e| ToolError::Failed(format!("sampling/createMessage failed: {}", e.message)))?;
    Ok(sampled_text(&r))
}

/// The text of a `CreateMessageResult` (one content block or, from 2025-11-25, an array).
fn sampled_text(r: &Value) -> String {
    let text_of = |c: &Value| c.get("text").and_then(Value::as_str).map(str::to_string);
    match r.get("content") {
        Some(Value::Array(items)) => items.iter().find_map(text_of),
        Some(c) => text_of(c),
        None => None,
    }
    .unwrap_or_else(|| "No response".to_string())
}

/// Sends `roots/list` and returns the root URIs (`key`: as for [`ask`]).
async fn roots(ctx: &Ctx, key: &str) -> Result<Vec<String>, ToolError> {
    let params = with_input_key(json!({}), key);
    let r = ctx
        .request_within("roots/list", params, FIXTURE_ANSWER_TIMEOUT)
        .await
        .map_err(|e| ToolError::Failed(format!("roots/list failed: {}", e.message)))?;
    Ok(r.get("roots")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|root| root.get("uri").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default())
}

/// `content[key]` of an elicitation answer as text (`"?"` if absent).
fn content_str(answer: &Value, key: &str) -> String {
    match answer.get("content").and_then(|c| c.get(key)) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "?".to_string(),
    }
}

/// The `test_input_required_result_*` fixtures of the 2026-07-28 suite (SEP-2322).
async fn input_required_fixture(ctx: &Ctx, name: &str) -> ToolResult {
    match name {
        "test_input_required_result_elicitation" => {
            let answer = ask(ctx, "user_name", "What is your name?", name_schema()).await?;
            ok_text(format!("Hello, {}!", content_str(&answer, "name")))
        }
        "test_input_required_result_sampling" => {
            let reply = sample(
                ctx,
                "capital_question",
                "What is the capital of France?",
                100,
            )
            .await?;
            ok_text(format!("LLM response: {reply}"))
        }
        "test_input_required_result_list_roots" => {
            let uris = roots(ctx, "client_roots").await?;
            ok_text(format!("Client roots: {}", uris.join(", ")))
        }
        "test_input_required_result_request_state"
        | "test_input_required_result_tampered_state" => {
            let schema = json!({
                "type": "object",
                "properties": {"ok": {"type": "boolean"}},
                "required": ["ok"]
            });
            let answer = ask(ctx, "confirm", "Please confirm", schema).await?;
            ok_text(format!("state-ok: ok={}", content_str(&answer, "ok")))
        }
        "test_input_required_result_multiple_inputs" => {
            let (who, greeting, uris) = tokio::join!(
                ask(ctx, "user_name", "What is your name?", name_schema()),
                sample(ctx, "greeting", "Generate a greeting", 50),
                roots(ctx, "client_roots")
            );
            ok_text(format!(
                "name={}, greeting={}, roots={}",
                content_str(&who?, "name"),
                greeting?,
                uris?.join(", ")
            ))
        }
        "test_input_required_result_multi_round" => {
            let first = ask(ctx, "step1", "Step 1: What is your name?", name_schema()).await?;
            let schema = json!({
                "type": "object",
                "properties": {"color": {"type": "string"}},
                "required": ["color"]
            });
            let second = ask(ctx, "step2", "Step 2: What is your favorite color?", schema).await?;
            ok_text(format!(
                "{} likes {}",
                content_str(&first, "name"),
                content_str(&second, "color")
            ))
        }
        "test_input_required_result_capabilities" => {
            // A gateway refuses what its client did not declare; the tool carries on.
            let name = match ask(ctx, "user_name", "What is your name?", name_schema()).await {
                Ok(answer) => content_str(&answer, "name"),
                Err(_) => "(no elicitation)".to_string(),
            };
            let reply = match sample(ctx, "greeting", "Say hello", 50).await {
                Ok(r) => r,
                Err(_) => "(no sampling)".to_string(),
            };
            ok_text(format!("name={name}, sampled={reply}"))
        }
        _ => Err(ToolError::InvalidArgs(format!("unknown fixture {name}"))),
    }
}

/// `test_missing_capability`: needs sampling; a refused `sampling/createMessage`
/// becomes a -32021 error naming `{sampling: {}}`.
async fn missing_capability(ctx: &Ctx) -> ToolResult {
    match sample(ctx, "greeting", "Say hello", 20).await {
        Ok(reply) => ok_text(format!("LLM response: {reply}")),
        Err(_) => Err(ToolError::Rpc(RpcError {
            code: MISSING_REQUIRED_CLIENT_CAPABILITY,
            message: "Missing required client capability: sampling".to_string(),
            data: Some(json!({"requiredCapabilities": {"sampling": {}}})),
        })),
    }
}

/// Sends `elicitation/create` and renders `action=…, content={…}`.
async fn elicit(ctx: &Ctx, message: &str, schema: Value) -> Result<String, ToolError> {
    if !ctx.client_supports("elicitation") {
        return Err(ToolError::Failed(
            "client does not support elicitation (no elicitation capability declared)".into(),
        ));
    }
    let mut params = json!({"message": message, "requestedSchema": schema});
    if at_least(&ctx.version(), "2025-11-25") {
        params["mode"] = json!("form");
    }
    let r = ctx
        .request("elicitation/create", params)
        .await
        .map_err(|e| ToolError::Failed(format!("elicitation/create failed: {}", e.message)))?;
    let action = r.get("action").and_then(Value::as_str).unwrap_or("unknown");
    let content = r.get("content").cloned().unwrap_or_else(|| json!({}));
    Ok(format!("action={action}, content={content}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn definitions_are_well_formed() {
        let defs = definitions("2025-11-25");
        let mut names: Vec<&str> = defs.iter().map(|t| t["name"].as_str().unwrap()).collect();
        for t in &defs {
            assert!(t["description"].as_str().is_some_and(|d| !d.is_empty()));
            assert_eq!(t["inputSchema"]["type"], "object");
        }
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate tool names");
        assert!(definitions("2025-03-26")
            .iter()
            .all(|t| t.get("outputSchema").is_none()));
        assert!(defs.iter().any(|t| t.get("outputSchema").is_some()));
    }

    #[test]
    fn wav_is_valid_riff() {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(test_audio_base64())
            .unwrap();
        assert_eq!(&raw[..4], b"RIFF");
        assert_eq!(&raw[8..12], b"WAVE");
        assert_eq!(
            u32::from_le_bytes(raw[4..8].try_into().unwrap()) as usize,
            raw.len() - 8
        );
    }

    #[test]
    fn add_sums() {
        let m = json!({"a": 2, "b": 3}).as_object().unwrap().clone();
        let Ok(r) = add(&m) else { panic!() };
        assert_eq!(r["structuredContent"]["sum"], 5);
        assert_eq!(r["content"][0]["text"], "5");
        let m = json!({"a": 0.5, "b": 0.25}).as_object().unwrap().clone();
        let Ok(r) = add(&m) else { panic!() };
        assert_eq!(r["structuredContent"]["sum"], 0.75);
    }
}
