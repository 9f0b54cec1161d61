//! End to end: the fast upstream in-process, a 1-second closed loop against it (and, for
//! the legacy HTTP+SSE clients, through the hub binary too when it is built).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use loadgen::load::{run, LoadSpec, Op};
use loadgen::mcp::{AcceptMode, Protocol};
use loadgen::scenario::client_url;
use loadgen::upstream::{spawn, UpstreamOptions};
use std::time::Duration;

async fn closed_loop(
    opts: UpstreamOptions,
    accept: AcceptMode,
    op: Op,
) -> loadgen::load::RunReport {
    closed_loop_in(opts, accept, Protocol::Session, op).await
}

async fn closed_loop_in(
    opts: UpstreamOptions,
    accept: AcceptMode,
    protocol: Protocol,
    op: Op,
) -> loadgen::load::RunReport {
    let (addr, server) = spawn("127.0.0.1:0".parse().unwrap(), opts).await.unwrap();
    let spec = LoadSpec {
        label: "e2e".into(),
        url: client_url(&format!("http://{addr}/mcp"), protocol),
        op,
        sessions: 8,
        rate: None,
        warmup: Duration::from_millis(100),
        duration: Duration::from_secs(1),
        accept,
        protocol,
        timeout: Duration::from_secs(5),
        processes: Vec::new(),
    };
    let report = run(&spec).await.unwrap();
    server.abort();
    report
}

/// No failed call and no failed initialize, with the failures shown when there are some.
fn assert_no_failures(r: &loadgen::load::RunReport) {
    assert_eq!(
        r.failures, 0,
        "{:?} {:?}",
        r.failures_by_kind, r.error_samples
    );
    assert_eq!(r.init_failures, 0);
}

fn echo() -> Op {
    Op::CallTool {
        tools: vec!["echo".into()],
        arguments: r#"{"text":"hi"}"#.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_second_closed_loop_has_no_failures() {
    let r = closed_loop(UpstreamOptions::default(), AcceptMode::Both, echo()).await;
    assert_no_failures(&r);
    assert_eq!(r.sessions, 8);
    assert!(r.successes > 100, "only {} calls in a second", r.successes);
    assert!(r.latency.p50_ms > 0.0 && r.latency.p50_ms <= r.latency.p99_ms);
    assert!(r.elapsed_s >= 0.99 && r.elapsed_s < 2.0, "{}", r.elapsed_s);
    assert!(r.process("loadgen").is_some());
}

/// The same through SSE answers (the upstream frames them as `text/event-stream`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_answers_are_parsed() {
    let opts = UpstreamOptions {
        tools: 1,
        sse: true,
    };
    let r = closed_loop(opts, AcceptMode::Both, echo()).await;
    assert_eq!(
        r.failures, 0,
        "{:?} {:?}",
        r.failures_by_kind, r.error_samples
    );
    assert!(r.successes > 100);
}

/// Failures are counted by kind: an unknown tool is a JSON-RPC -32602 on every call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_counted_by_kind() {
    let op = Op::CallTool {
        tools: vec!["nope".into()],
        arguments: "{}".into(),
    };
    let r = closed_loop(UpstreamOptions::default(), AcceptMode::Json, op).await;
    assert_eq!(r.successes, 0);
    assert!(r.failures > 100);
    assert_eq!(r.failures_by_kind.get("jsonrpc -32602"), Some(&r.failures));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_counts_tools() {
    let opts = UpstreamOptions {
        tools: 50,
        sse: false,
    };
    let r = closed_loop(opts, AcceptMode::Both, Op::ListTools).await;
    assert_eq!(r.failures, 0);
    assert_eq!(r.items_per_call, Some(50));
}

/// Open loop at 500/s for 1 s: about 500 calls, all fine, latency measured from schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_sends_the_scheduled_calls() {
    let (addr, server) = spawn("127.0.0.1:0".parse().unwrap(), UpstreamOptions::default())
        .await
        .unwrap();
    let spec = LoadSpec {
        label: "open".into(),
        url: format!("http://{addr}/mcp"),
        op: echo(),
        sessions: 4,
        rate: Some(500.0),
        warmup: Duration::ZERO,
        duration: Duration::from_secs(1),
        accept: AcceptMode::Both,
        protocol: Protocol::Session,
        timeout: Duration::from_secs(5),
        processes: Vec::new(),
    };
    let r = run(&spec).await.unwrap();
    server.abort();
    assert_eq!(r.failures, 0, "{:?}", r.error_samples);
    assert_eq!(r.requests, 500);
    assert_eq!(r.mode, "open");
}

/// A session initializes (keeping the server's session id) and ends with DELETE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_lifecycle() {
    use loadgen::mcp::{ClientConfig, Endpoint, Session, ToolCall};
    use std::sync::Arc;
    let (addr, server) = spawn("127.0.0.1:0".parse().unwrap(), UpstreamOptions::default())
        .await
        .unwrap();
    let cfg = ClientConfig {
        endpoint: Arc::new(Endpoint::parse(&format!("http://{addr}/mcp")).unwrap()),
        accept: AcceptMode::Both,
        timeout: Duration::from_secs(5),
        protocol: Protocol::Session,
    };
    let mut s = Session::open(cfg).await.unwrap();
    assert!(s.session_id().is_some());
    let call = |args: &str| ToolCall::new(Protocol::Session, "echo", args).unwrap();
    s.call_tool(&call(r#"{"text":"x"}"#)).await.unwrap();
    assert_eq!(
        s.call_tool(&call("{}")).await,
        Err(loadgen::mcp::CallError::ToolError)
    );
    assert_eq!(s.close().await, Ok(200));
    server.abort();
}

/// Modern (2026-07-28) clients: no session, `_meta` and `Mcp-Method`/`Mcp-Name` on every
/// request; the fast upstream answers them without a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_clients_call_without_a_session() {
    let r = closed_loop_in(
        UpstreamOptions::default(),
        AcceptMode::Both,
        Protocol::Modern,
        echo(),
    )
    .await;
    assert_no_failures(&r);
    assert!(r.successes > 100, "only {} calls in a second", r.successes);
}

/// Legacy (2024-11-05) HTTP+SSE clients against the fast upstream: `GET /sse`, POSTs to the
/// `endpoint` event's URL answered 202, responses on the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_sse_clients_call_the_upstream() {
    let r = closed_loop_in(
        UpstreamOptions::default(),
        AcceptMode::Both,
        Protocol::LegacySse,
        echo(),
    )
    .await;
    assert!(r.url.ends_with("/sse"), "{}", r.url);
    assert_no_failures(&r);
    assert_eq!(r.sessions, 8);
    assert!(r.successes > 100, "only {} calls in a second", r.successes);
}

/// The hub binary: `$MCP_HUB_BIN`, else the workspace's debug one (built by the workspace's
/// `cargo test`, so it is the code under test), else its release one.
fn hub_binary() -> std::path::PathBuf {
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    std::env::var_os("MCP_HUB_BIN")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain(["debug", "release"].map(|profile| target.join(profile).join("mcp-hub")))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("no hub binary: run the workspace's tests (scripts/test.sh), or cargo build -p mcp-hub, or set MCP_HUB_BIN")
        })
}

/// The same clients through the hub's `/sse` (all servers, `fast__echo`), the hub forwarding
/// to the in-process upstream over Streamable HTTP. Needs the hub binary (see `hub_binary`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_sse_clients_call_through_the_hub() {
    use loadgen::scenario::procs::{Hub, ServerEntry};
    let bin = hub_binary();
    let (addr, server) = spawn("127.0.0.1:0".parse().unwrap(), UpstreamOptions::default())
        .await
        .unwrap();
    let servers = [ServerEntry::Http {
        id: "fast".into(),
        url: format!("http://{addr}/mcp"),
    }];
    let hub = Hub::start(&bin, &servers, &[]).await.unwrap();
    let spec = LoadSpec {
        label: "hub".into(),
        url: client_url(&hub.mcp_url(), Protocol::LegacySse),
        op: Op::CallTool {
            tools: vec!["fast__echo".into()],
            arguments: r#"{"text":"hi"}"#.into(),
        },
        sessions: 8,
        rate: None,
        warmup: Duration::from_millis(100),
        duration: Duration::from_secs(1),
        accept: AcceptMode::Both,
        protocol: Protocol::LegacySse,
        timeout: Duration::from_secs(5),
        processes: vec![("hub".into(), hub.proc.pid)],
    };
    let r = run(&spec).await;
    let log = hub.log_tail();
    hub.stop().await;
    server.abort();
    let r = r.unwrap_or_else(|e| panic!("{e}\nhub log:\n{log}"));
    assert!(r.url.ends_with("/sse"), "{}", r.url);
    assert_eq!(
        r.failures, 0,
        "{:?} {:?}\nhub log:\n{log}",
        r.failures_by_kind, r.error_samples
    );
    assert_eq!(r.init_failures, 0);
    assert!(r.successes > 0, "no call through the hub succeeded");
}

/// The floor proxy (`src/bin/floor_proxy.rs`: actix-web in, awc out, no
/// actors or checks) forwards session clients' calls to the upstream: the third phase of
/// `scenario concurrency70 --floor`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_proxy_forwards_session_calls() {
    use loadgen::scenario::procs::start_floor;
    // Cargo builds the crate's binaries for its integration tests.
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_floor_proxy"));
    let (addr, server) = spawn("127.0.0.1:0".parse().unwrap(), UpstreamOptions::default())
        .await
        .unwrap();
    let (proc, url) = start_floor(&bin, &format!("http://{addr}/mcp"))
        .await
        .unwrap();
    let spec = LoadSpec {
        label: "floor".into(),
        url,
        op: echo(),
        sessions: 8,
        rate: None,
        warmup: Duration::from_millis(100),
        duration: Duration::from_secs(1),
        accept: AcceptMode::Both,
        protocol: Protocol::Session,
        timeout: Duration::from_secs(5),
        processes: vec![("floor".into(), proc.pid)],
    };
    let r = run(&spec).await;
    proc.stop().await;
    server.abort();
    let r = r.unwrap();
    assert_no_failures(&r);
    assert!(r.successes > 100, "only {} calls in a second", r.successes);
    assert!(r
        .process("floor")
        .is_some_and(|p| p.cpu_us_per_call.is_some()));
}
