//! Resources (`resources/list`, `resources/templates/list`, `resources/read`).

use serde_json::{json, Value};

use crate::core::{codes, RpcError};
use crate::tools::TEST_IMAGE_BASE64;

const TEMPLATE_PREFIX: &str = "test://template/";
const TEMPLATE_SUFFIX: &str = "/data";

/// Direct resources, in a fixed order.
pub(crate) fn list() -> Vec<Value> {
    vec![
        json!({
            "uri": "test://static-text",
            "name": "static-text",
            "title": "Static Text Resource",
            "description": "A static text resource for testing",
            "mimeType": "text/plain"
        }),
        json!({
            "uri": "test://static-binary",
            "name": "static-binary",
            "title": "Static Binary Resource",
            "description": "A static binary resource (image) for testing",
            "mimeType": "image/png"
        }),
        json!({
            "uri": "test://watched-resource",
            "name": "watched-resource",
            "title": "Watched Resource",
            "description": "A resource to subscribe to; the touch_resource tool announces updates",
            "mimeType": "text/plain"
        }),
    ]
}

/// Resource templates.
pub(crate) fn templates() -> Vec<Value> {
    vec![json!({
        "uriTemplate": "test://template/{id}/data",
        "name": "template",
        "title": "Resource Template",
        "description": "A resource template with parameter substitution",
        "mimeType": "application/json"
    })]
}

/// `{id}` of `test://template/{id}/data`, if `uri` matches the template.
fn template_id(uri: &str) -> Option<&str> {
    let id = uri
        .strip_prefix(TEMPLATE_PREFIX)?
        .strip_suffix(TEMPLATE_SUFFIX)?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// `resources/read`.
pub(crate) fn read(uri: &str) -> Result<Value, RpcError> {
    let content = match uri {
        "test://static-text" => json!({
            "uri": uri,
            "mimeType": "text/plain",
            "text": "This is the content of the static text resource."
        }),
        "test://static-binary" => json!({
            "uri": uri,
            "mimeType": "image/png",
            "blob": TEST_IMAGE_BASE64
        }),
        "test://watched-resource" => json!({
            "uri": uri,
            "mimeType": "text/plain",
            "text": "Watched resource content"
        }),
        _ => match template_id(uri) {
            Some(id) => json!({
                "uri": uri,
                "mimeType": "application/json",
                "text": json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")}).to_string()
            }),
            None => {
                return Err(RpcError {
                    code: codes::RESOURCE_NOT_FOUND,
                    message: format!("Resource not found: {uri}"),
                    data: Some(json!({"uri": uri})),
                })
            }
        },
    };
    Ok(json!({"contents": [content]}))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn template_substitution() {
        let r = read("test://template/123/data").unwrap();
        let text = r["contents"][0]["text"].as_str().unwrap();
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            v,
            json!({"id": "123", "templateTest": true, "data": "Data for ID: 123"})
        );
        assert_eq!(r["contents"][0]["uri"], "test://template/123/data");
        assert!(read("test://template//data").is_err());
        assert!(read("test://template/a/b/data").is_err());
        assert_eq!(read("test://nope").unwrap_err().code, -32002);
    }

    #[test]
    fn listed_resources_are_readable() {
        for r in list() {
            let uri = r["uri"].as_str().unwrap();
            let c = read(uri).unwrap();
            assert_eq!(c["contents"][0]["mimeType"], r["mimeType"]);
        }
    }
}
