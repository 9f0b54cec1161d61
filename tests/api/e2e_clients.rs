//! The official SDK clients against the real hub: the TypeScript SDK 1.x and the Python SDK
//! run initialize, tools/list, tools/call with progress, a resource read, a prompt, and
//! DELETE, over Streamable HTTP (`/mcp`) and the legacy HTTP+SSE transport (`/sse`). `scripts/test.sh` installs them and sets MCP_HUB_E2E_NODE / MCP_HUB_E2E_PYTHON.

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
