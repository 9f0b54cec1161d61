//! Per-call cost of validating tool arguments at the hub (target: < 20 µs per call).
//!
//! The schema is a typical tool input: an object with five typed properties, a required
//! list and a nested object. Measured: a valid call (the hot path: `is_valid` only), an
//! invalid one (collecting every violation), the whole hook as a session runs it (parsing
//! `arguments` out of the raw params, then checking), and, for scale, compiling the schema,
//! which happens once per schema version, not per call.

use criterion::{criterion_group, criterion_main, Criterion};
use mcp_hub_actors::validation::{self, ValidatorCache};
use serde_json::{json, value::RawValue, Value};
use std::hint::black_box;

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "query": { "type": "string", "minLength": 1, "maxLength": 256 },
            "limit": { "type": "integer", "minimum": 1, "maximum": 100 },
            "include_archived": { "type": "boolean" },
            "tags": { "type": "array", "items": { "type": "string" }, "maxItems": 10 },
            "filter": {
                "type": "object",
                "properties": {
                    "status": { "type": "string", "enum": ["open", "closed", "all"] },
                    "since": { "type": "string" },
                    "owner": { "type": "string" }
                },
                "required": ["status"],
                "additionalProperties": false
            }
        },
        "required": ["query", "limit"],
        "additionalProperties": false
    })
}

fn bench(c: &mut Criterion) {
    let schema = schema();
    let schema_text = schema.to_string();
    #[allow(clippy::unwrap_used)]
    let validator = ValidatorCache::global()
        .get_or_compile("bench", "search", &schema_text)
        .unwrap();
    let valid = json!({
        "query": "timeout in checkout",
        "limit": 20,
        "include_archived": false,
        "tags": ["payments", "p1"],
        "filter": { "status": "open", "since": "2026-01-01", "owner": "ops" }
    });
    let invalid = json!({
        "query": "",
        "limit": 500,
        "tags": ["ok", 3],
        "filter": { "status": "maybe", "extra": true }
    });
    #[allow(clippy::unwrap_used)]
    let params = RawValue::from_string(
        json!({ "name": "search", "arguments": valid, "_meta": { "progressToken": 1 } })
            .to_string(),
    )
    .unwrap();

    let mut g = c.benchmark_group("validation");
    g.bench_function("valid_call", |b| {
        b.iter(|| validation::check(black_box(&validator), black_box(&valid)))
    });
    g.bench_function("invalid_call_all_violations", |b| {
        b.iter(|| validation::check(black_box(&validator), black_box(&invalid)))
    });
    g.bench_function("hook_parse_and_check", |b| {
        b.iter(|| {
            let args = validation::arguments_of(Some(black_box(&*params)));
            validation::check(&validator, &args)
        })
    });
    g.bench_function("compile_once_per_schema_version", |b| {
        b.iter(|| jsonschema::options().build(black_box(&schema)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
