//! `/api/servers`: register, inspect and remove upstream servers.

use actix_web::{web, HttpResponse};
use mcp_hub_actors::registry::{self, RegistryError, ServerDef};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

fn view(def: &ServerDef, state: &AppState) -> Value {
    let mut v = serde_json::to_value(def.redacted()).unwrap_or(Value::Null);
    let runtime = match state.servers.get(&def.id) {
        Some(h) => serde_json::to_value(&*h.runtime.borrow()).unwrap_or(Value::Null),
        None => json!({ "status": "stopped" }),
    };
    v["runtime"] = runtime;
    v
}

/// `GET /api/servers`.
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let defs = state.registry.send(registry::List).await?;
    let servers: Vec<Value> = defs.iter().map(|d| view(d, &state)).collect();
    Ok(HttpResponse::Ok().json(json!({ "servers": servers })))
}

/// `GET /api/servers/{id}`.
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let Some(def) = state.registry.send(registry::Get(id.clone())).await? else {
        return Err(ApiError::NotFound(format!("no server {id:?}")));
    };
    let mut v = view(&def, &state);
    // With Redis, every live node's view of this server (`{prefix}server_runtime:{id}`).
    if let Some(nodes) = &state.nodes {
        v["nodes"] = match nodes.send(mcp_hub_actors::nodes::ServerRuntimes(id)).await {
            Ok(Ok(map)) => Value::Object(map),
            Ok(Err(e)) => json!({ "error": format!("redis: {e}") }),
            Err(e) => json!({ "error": e.to_string() }),
        };
    }
    Ok(HttpResponse::Ok().json(v))
}

/// `POST /api/servers/{id}`: create or replace. 201 when created, 200 when replaced.
pub async fn upsert(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut de = serde_json::Deserializer::from_slice(&body);
    let mut def: ServerDef = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        let syntax = inner.is_syntax() || inner.is_eof();
        let field = if syntax {
            None
        } else if path != "." && !path.is_empty() {
            Some(path)
        } else {
            msg.split('`').nth(1).map(str::to_string)
        };
        let message = if syntax {
            format!("body is not valid JSON: {msg}")
        } else {
            msg
        };
        ApiError::BadRequest { field, message }
    })?;
    if def.id.is_empty() {
        def.id = id.clone();
    } else if def.id != id {
        return Err(ApiError::BadRequest {
            field: Some("id".into()),
            message: format!(
                "body id {:?} differs from the path id {id:?}; omit it or make them equal",
                def.id
            ),
        });
    }
    if let Some(ms) = def
        .timeout_ms
        .filter(|ms| *ms >= state.settings.timeouts.hub_ms)
    {
        return Err(ApiError::BadRequest {
            field: Some("timeout_ms".into()),
            message: format!(
                "{ms} ms must be shorter than the hub timeout (timeouts.hub_ms = {} ms)",
                state.settings.timeouts.hub_ms
            ),
        });
    }
    // Structure first (its messages are more useful), then where the URLs point.
    def.validate()
        .and_then(|()| state.upstream_policy.check_def(&def))
        .map_err(|e| ApiError::BadRequest {
            field: Some(e.field.clone()),
            message: e.message,
        })?;
    match state.registry.send(registry::Upsert(def.clone())).await? {
        Ok(created) => {
            let body = view(&def, &state);
            Ok(if created {
                HttpResponse::Created().json(body)
            } else {
                HttpResponse::Ok().json(body)
            })
        }
        Err(RegistryError::Invalid(e)) => Err(ApiError::BadRequest {
            field: Some(e.field.clone()),
            message: e.message,
        }),
        Err(RegistryError::Store(e)) => Err(ApiError::Unavailable(e.to_string())),
    }
}

/// `DELETE /api/servers/{id}`: 204, or 404 when unknown.
pub async fn delete(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    match state.registry.send(registry::Delete(id.clone())).await? {
        Ok(true) => Ok(HttpResponse::NoContent().finish()),
        Ok(false) => Err(ApiError::NotFound(format!("no server {id:?}"))),
        Err(RegistryError::Store(e)) => Err(ApiError::Unavailable(e.to_string())),
        Err(RegistryError::Invalid(e)) => Err(ApiError::BadRequest {
            field: Some(e.field.clone()),
            message: e.message,
        }),
    }
}

/// `GET /api/servers/{id}/tools`: the tools the server offers, as it names them.
pub async fn tools(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let handle = state
        .servers
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no running server {id:?}")))?;
    let catalog = handle.catalog();
    let tools: Vec<&serde_json::value::RawValue> = catalog.tools.iter().map(|t| &*t.raw).collect();
    Ok(HttpResponse::Ok().json(json!({ "server": id, "ready": catalog.ready, "tools": tools })))
}
