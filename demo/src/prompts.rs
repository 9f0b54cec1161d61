//! Prompts (`prompts/list`, `prompts/get`) and argument completion
//! (`completion/complete`).

use serde_json::{json, Value};

use crate::core::{Ctx, RpcError};
use crate::tools::{FIXTURE_ANSWER_TIMEOUT, TEST_IMAGE_BASE64};

/// Prompts, in a fixed order.
pub(crate) fn list() -> Vec<Value> {
    vec![
        json!({
            "name": "test_simple_prompt",
            "title": "Simple Test Prompt",
            "description": "A simple prompt without arguments"
        }),
        json!({
            "name": "test_prompt_with_arguments",
            "title": "Prompt With Arguments",
            "description": "A prompt with required arguments",
            "arguments": [
                {"name": "arg1", "description": "First test argument", "required": true},
                {"name": "arg2", "description": "Second test argument", "required": true}
            ]
        }),
        json!({
            "name": "test_prompt_with_embedded_resource",
            "title": "Prompt With Embedded Resource",
            "description": "A prompt that includes an embedded resource",
            "arguments": [
                {"name": "resourceUri", "description": "URI of the resource to embed", "required": true}
            ]
        }),
        json!({
            "name": "test_prompt_with_image",
            "title": "Prompt With Image",
            "description": "A prompt that includes image content"
        }),
        json!({
            "name": INTERACTIVE_PROMPT,
            "title": "Prompt That Asks For Context",
            "description": "Asks the user for context (elicitation/create) before building the prompt (SEP-2322 fixture)"
        }),
    ]
}

/// The prompt whose `prompts/get` sends `elicitation/create` (see [`get_interactive`]).
pub(crate) const INTERACTIVE_PROMPT: &str = "test_input_required_result_prompt";

/// `prompts/get` of [`INTERACTIVE_PROMPT`]: asks the client for a context, then builds
/// the prompt from the answer.
pub(crate) async fn get_interactive(ctx: &Ctx) -> Result<Value, RpcError> {
    let params = crate::modern::with_input_key(
        json!({
        "message": "What context should the prompt use?",
        "requestedSchema": {
            "type": "object",
            "properties": {"context": {"type": "string"}},
            "required": ["context"]
        }
        }),
        "user_context",
    );
    let answer = ctx
        .request_within("elicitation/create", params, FIXTURE_ANSWER_TIMEOUT)
        .await?;
    let context = match answer.get("content").and_then(|c| c.get("context")) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "(none)".to_string(),
    };
    Ok(interactive_result(&context))
}

fn interactive_result(context: &str) -> Value {
    json!({
        "description": "A prompt built from the context the user gave",
        "messages": [user(json!({"type": "text", "text": format!("Context: {context}")}))]
    })
}

fn user(content: Value) -> Value {
    json!({"role": "user", "content": content})
}

fn arg<'a>(args: Option<&'a Value>, prompt: &str, key: &str) -> Result<&'a str, RpcError> {
    match args.and_then(|a| a.get(key)) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(RpcError::invalid_params(format!(
            "prompt {prompt}: argument {key} must be a string"
        ))),
        None => Err(RpcError::invalid_params(format!(
            "prompt {prompt}: missing required argument {key}"
        ))),
    }
}

/// `prompts/get`.
pub(crate) fn get(name: &str, args: Option<&Value>) -> Result<Value, RpcError> {
    if !matches!(args, None | Some(Value::Null) | Some(Value::Object(_))) {
        return Err(RpcError::invalid_params(
            "prompts/get: arguments must be an object",
        ));
    }
    let (description, messages) = match name {
        "test_simple_prompt" => (
            "A simple prompt without arguments",
            vec![user(
                json!({"type": "text", "text": "This is a simple prompt for testing."}),
            )],
        ),
        "test_prompt_with_arguments" => {
            let a1 = arg(args, name, "arg1")?;
            let a2 = arg(args, name, "arg2")?;
            (
                "A prompt with required arguments",
                vec![user(json!({
                    "type": "text",
                    "text": format!("Prompt with arguments: arg1='{a1}', arg2='{a2}'")
                }))],
            )
        }
        "test_prompt_with_embedded_resource" => {
            let uri = arg(args, name, "resourceUri")?;
            (
                "A prompt that includes an embedded resource",
                vec![
                    user(json!({
                        "type": "resource",
                        "resource": {
                            "uri": uri,
                            "mimeType": "text/plain",
                            "text": "Embedded resource content for testing."
                        }
                    })),
                    user(
                        json!({"type": "text", "text": "Please process the embedded resource above."}),
                    ),
                ],
            )
        }
        "test_prompt_with_image" => (
            "A prompt that includes image content",
            vec![
                user(json!({"type": "image", "data": TEST_IMAGE_BASE64, "mimeType": "image/png"})),
                user(json!({"type": "text", "text": "Please analyze the image above."})),
            ],
        ),
        // Without a way to ask (a modern request), the prompt is built without context.
        INTERACTIVE_PROMPT => return Ok(interactive_result("(none)")),
        _ => return Err(RpcError::invalid_params(format!("Unknown prompt: {name}"))),
    };
    Ok(json!({"description": description, "messages": messages}))
}

/// `completion/complete` for prompt arguments and the resource template's `{id}`.
pub(crate) fn complete(params: &Value) -> Result<Value, RpcError> {
    let reference = params
        .get("ref")
        .ok_or_else(|| RpcError::invalid_params("completion/complete: ref is required"))?;
    let arg_name = params
        .get("argument")
        .and_then(|a| a.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            RpcError::invalid_params("completion/complete: argument.name is required")
        })?;
    let value = params
        .get("argument")
        .and_then(|a| a.get("value"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let candidates: &[&str] = match reference.get("type").and_then(Value::as_str) {
        Some("ref/prompt") => {
            let name = reference.get("name").and_then(Value::as_str).unwrap_or("");
            match (name, arg_name) {
                ("test_prompt_with_arguments", "arg1") => &["paris", "park", "party", "testValue1"],
                ("test_prompt_with_arguments", "arg2") => &["world", "wonder", "testValue2"],
                ("test_prompt_with_embedded_resource", "resourceUri") => &[
                    "test://static-text",
                    "test://static-binary",
                    "test://example-resource",
                ],
                (n, _) if list().iter().any(|p| p["name"] == n) => &[],
                (n, _) => return Err(RpcError::invalid_params(format!("Unknown prompt: {n}"))),
            }
        }
        Some("ref/resource") => {
            let uri = reference.get("uri").and_then(Value::as_str).unwrap_or("");
            match (uri, arg_name) {
                ("test://template/{id}/data", "id") => &["1", "2", "3", "123"],
                _ => &[],
            }
        }
        _ => {
            return Err(RpcError::invalid_params(
                "completion/complete: unknown ref type",
            ))
        }
    };
    let values: Vec<&str> = candidates
        .iter()
        .copied()
        .filter(|c| c.starts_with(value))
        .collect();
    Ok(json!({"completion": {"values": values, "total": values.len(), "hasMore": false}}))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn args_substituted() {
        let r = get(
            "test_prompt_with_arguments",
            Some(&json!({"arg1": "hello", "arg2": "world"})),
        )
        .unwrap();
        assert_eq!(
            r["messages"][0]["content"]["text"],
            "Prompt with arguments: arg1='hello', arg2='world'"
        );
        assert_eq!(
            get("test_prompt_with_arguments", None).unwrap_err().code,
            -32602
        );
        assert_eq!(get("nope", None).unwrap_err().code, -32602);
    }

    #[test]
    fn completion_filters_by_prefix() {
        let r = complete(&json!({
            "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
            "argument": {"name": "arg1", "value": "par"}
        }))
        .unwrap();
        assert_eq!(r["completion"]["values"], json!(["paris", "park", "party"]));
        let r = complete(&json!({
            "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
            "argument": {"name": "arg1", "value": "test"}
        }))
        .unwrap();
        assert!(r["completion"]["values"].is_array());
    }
}
