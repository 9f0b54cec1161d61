//! [`ValidatorCache`]: compiled tool-input validators shared by every catalog build.
//!
//! Keyed by (server id, tool name) and tagged with a hash of the schema text, so a catalog
//! reload (list_changed, reconnect) whose schema did not change reuses the compiled
//! validator, and a changed schema replaces the old one instead of piling up beside it.
//! Catalogs hold the `Arc` they got; the cache only saves recompiling.

use dashmap::DashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

/// Entries kept before the cache starts over. Far above any real deployment's tool count;
/// it only bounds memory if servers with ever-changing schemas come and go.
const MAX_ENTRIES: usize = 65_536;

/// Compiled validators by (server, tool), each tagged with its schema's hash.
#[derive(Default)]
pub struct ValidatorCache {
    entries: DashMap<(Arc<str>, String), (u64, Arc<jsonschema::Validator>)>,
}

/// Why a schema got no validator.
#[derive(Debug, thiserror::Error)]
#[error("tool {tool}: inputSchema cannot be compiled: {reason}")]
pub struct SchemaError {
    /// The tool.
    pub tool: String,
    /// What the compiler said.
    pub reason: String,
}

impl ValidatorCache {
    /// The process-wide cache. Catalog builds of every server use it.
    pub fn global() -> &'static ValidatorCache {
        static CACHE: OnceLock<ValidatorCache> = OnceLock::new();
        CACHE.get_or_init(ValidatorCache::default)
    }

    /// The validator for `schema_text` (the tool's `inputSchema` as sent), compiling it only
    /// when this (server, tool) has no validator for this exact schema yet.
    pub fn get_or_compile(
        &self,
        server: &str,
        tool: &str,
        schema_text: &str,
    ) -> Result<Arc<jsonschema::Validator>, SchemaError> {
        let hash = schema_hash(schema_text);
        let key = (Arc::<str>::from(server), tool.to_string());
        if let Some(hit) = self.entries.get(&key) {
            if hit.0 == hash {
                return Ok(hit.1.clone());
            }
        }
        let schema: serde_json::Value =
            serde_json::from_str(schema_text).map_err(|e| SchemaError {
                tool: tool.to_string(),
                reason: e.to_string(),
            })?;
        // No `$schema` means JSON Schema 2020-12 (MCP 2025-11-25), which is also the
        // crate's default; a `$schema` naming another draft is honoured.
        let validator = jsonschema::options()
            .build(&schema)
            .map_err(|e| SchemaError {
                tool: tool.to_string(),
                reason: e.to_string(),
            })?;
        let validator = Arc::new(validator);
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
        self.entries.insert(key, (hash, validator.clone()));
        Ok(validator)
    }

    /// Number of cached validators.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn schema_hash(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn same_schema_is_compiled_once_and_a_new_version_replaces_it() {
        let cache = ValidatorCache::default();
        let a = cache
            .get_or_compile("s", "t", r#"{"type":"object"}"#)
            .unwrap();
        let b = cache
            .get_or_compile("s", "t", r#"{"type":"object"}"#)
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let c = cache
            .get_or_compile("s", "t", r#"{"type":"object","required":["x"]}"#)
            .unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(cache.len(), 1);
        assert!(cache.get_or_compile("s", "bad", r#"{"type":12}"#).is_err());
    }
}
