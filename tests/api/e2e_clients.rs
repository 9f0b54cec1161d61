//! The official SDK clients against the real hub: the TypeScript SDK 1.x and the Python SDK
//! run initialize, tools/list, tools/call with progress, a resource read, a prompt, and
//! DELETE, over Streamable HTTP (`/mcp`) and the legacy HTTP+SSE transport (`/sse`). `scripts/test.sh` installs them and sets MCP_HUB_E2E_NODE / MCP_HUB_E2E_PYTHON.
//!
//! The upstream-era matrix: the TypeScript SDK 1.x (legacy) and the Python SDK 2.x
//! (2026-07-28, MCP_HUB_E2E_PYTHON_MODERN) each call every kind of upstream: modern and
//! legacy stdio demos, modern and legacy Streamable HTTP demos, and a legacy HTTP+SSE
//! upstream (another hub's `/sse/demo`).

use std::time::Duration;

use crate::helpers::*;

fn tool(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run the tests with scripts/test.sh, which installs the SDK clients"
        )
    })
}

async fn run(program: String, script: &str, url: String, extra: &[&str]) {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(&program)
            .arg(format!("{root}/tests/e2e/{script}"))
            .arg(&url)
            .args(["--prefix", "demo__"])
            .args(extra)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("client timed out")
    .expect("client did not start");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed against {url}\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.contains("\"ok\":true") || stdout.contains("\"ok\": true"),
        "{stdout}"
    );
}

#[actix_web::test]
async fn typescript_sdk_client_works_through_the_hub() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    run(
        tool("MCP_HUB_E2E_NODE"),
        "ts_client.mjs",
        app.url("/mcp"),
        &[],
    )
    .await;
    run(
        tool("MCP_HUB_E2E_NODE"),
        "ts_client.mjs",
        app.url("/sse"),
        &["--transport", "sse"],
    )
    .await;
}

#[actix_web::test]
async fn python_sdk_client_works_through_the_hub() {
    let app = spawn_app().await;
    app.wait_ready("demo", Duration::from_secs(10)).await;
    run(
        tool("MCP_HUB_E2E_PYTHON"),
        "py_client.py",
        app.url("/mcp"),
        &[],
    )
    .await;
    run(
        tool("MCP_HUB_E2E_PYTHON"),
        "py_client.py",
        app.url("/sse"),
        &["--transport", "sse"],
    )
    .await;
}

/// One hub in front of every kind of upstream; the other values keep the upstreams alive.
async fn every_era() -> (TestApp, TestApp, DemoHttp, DemoHttp) {
    let legacy_hub = spawn_app().await;
    legacy_hub.wait_ready("demo", Duration::from_secs(10)).await;
    let sse_url = legacy_hub.url("/sse/demo");
    let http_modern = demo_http_era("modern");
    let http_legacy = demo_http_era("legacy");
    let (hm, hl) = (http_modern.url.clone(), http_legacy.url.clone());
    let app = spawn_app_with(move |s| {
        s.servers = vec![
            demo_stdio_era("smodern", "modern"),
            demo_stdio("slegacy"),
            http_def("hmodern", &hm),
            http_def("hlegacy", &hl),
            serde_json::from_value(
                serde_json::json!({ "id": "sse", "transport": "sse", "url": sse_url }),
            )
            .unwrap(),
        ];
    })
    .await;
    for id in ERA_UPSTREAMS {
        app.wait_ready(id, Duration::from_secs(15)).await;
    }
    (app, legacy_hub, http_modern, http_legacy)
}

const ERA_UPSTREAMS: [&str; 5] = ["smodern", "slegacy", "hmodern", "hlegacy", "sse"];

/// The TypeScript SDK 1.x also answers each upstream's elicitation: for the modern
/// upstreams that is the hub's legacy-client → modern-upstream bridge.
#[actix_web::test]
async fn typescript_sdk_1_calls_every_kind_of_upstream() {
    let (app, _legacy, _hm, _hl) = every_era().await;
    for id in ERA_UPSTREAMS {
        run(
            tool("MCP_HUB_E2E_NODE"),
            "ts_client.mjs",
            app.url(&format!("/mcp/{id}")),
            &["--prefix", "", "--elicit"],
        )
        .await;
    }
}

#[actix_web::test]
async fn python_sdk_2_calls_every_kind_of_upstream_and_answers_elicitation() {
    let (app, _legacy, _hm, _hl) = every_era().await;
    for id in ERA_UPSTREAMS {
        run(
            tool("MCP_HUB_E2E_PYTHON_MODERN"),
            "modern/py_modern_client.py",
            app.url(&format!("/mcp/{id}")),
            &["--prefix", ""],
        )
        .await;
    }
}
