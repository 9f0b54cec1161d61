//! `scenario register_to_call`: the time from the admin `POST /api/servers/{id}` to the
//! first successful `tools/call` of that server's `echo` on an already open `/mcp` session,
//! for a Streamable HTTP upstream and a stdio one (`@self demo-server`); median of reps.

use hyper::Method;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use super::procs::{start_upstream, Hub};
use super::Outcome;
use crate::cli::ScenarioArgs;
use crate::mcp::{http_request, ClientConfig, Endpoint, Session, ToolCall};
use crate::report::Target;

/// Give up on one registration after this long.
const GIVE_UP: Duration = Duration::from_secs(15);
/// Pause between call attempts.
const RETRY_EVERY: Duration = Duration::from_millis(2);

#[derive(Debug, Clone, Serialize)]
struct Rep {
    id: String,
    /// Admin POST answered (ms).
    post_ms: f64,
    /// First successful call answered (ms after the POST was sent).
    first_call_ms: Option<f64>,
    /// Calls tried.
    attempts: u32,
    /// Last error before success (or the error that made it give up).
    last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Summary {
    transport: String,
    reps: Vec<Rep>,
    median_ms: Option<f64>,
    /// Median time for the admin POST itself to answer.
    post_median_ms: f64,
    min_ms: Option<f64>,
    max_ms: Option<f64>,
    failed: usize,
}

fn median(sorted: &[f64]) -> Option<f64> {
    let m = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[m]),
        _ => Some((sorted[m - 1] + sorted[m]) / 2.0),
    }
}

fn summarize(transport: &str, reps: Vec<Rep>) -> Summary {
    let mut ok: Vec<f64> = reps.iter().filter_map(|r| r.first_call_ms).collect();
    ok.sort_by(f64::total_cmp);
    let mut posts: Vec<f64> = reps.iter().map(|r| r.post_ms).collect();
    posts.sort_by(f64::total_cmp);
    Summary {
        transport: transport.into(),
        failed: reps.len() - ok.len(),
        median_ms: median(&ok),
        post_median_ms: median(&posts).unwrap_or(0.0),
        min_ms: ok.first().copied(),
        max_ms: ok.last().copied(),
        reps,
    }
}

async fn one(
    admin: &Endpoint,
    session: &mut Session,
    id: &str,
    body: String,
) -> Result<Rep, String> {
    let call = ToolCall::new(
        session.protocol(),
        &format!("{id}__echo"),
        r#"{"text":"hi"}"#,
    )?;
    let t0 = Instant::now();
    let (status, text) = http_request(
        admin,
        Method::POST,
        &format!("/api/servers/{id}"),
        Some(body),
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| format!("POST /api/servers/{id}: {e}"))?;
    let post_ms = t0.elapsed().as_secs_f64() * 1000.0;
    if !(200..300).contains(&status) {
        return Err(format!(
            "POST /api/servers/{id}: HTTP {status}: {}",
            String::from_utf8_lossy(&text)
        ));
    }
    let mut attempts = 0;
    let mut last_error = None;
    let mut first_call_ms = None;
    while t0.elapsed() < GIVE_UP {
        attempts += 1;
        match session.call_tool(&call).await {
            Ok(()) => {
                first_call_ms = Some(t0.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            Err(e) => last_error = Some(e.to_string()),
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
    let _ = http_request(
        admin,
        Method::DELETE,
        &format!("/api/servers/{id}"),
        None,
        Duration::from_secs(10),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(Rep {
        id: id.into(),
        post_ms,
        first_call_ms,
        attempts,
        last_error,
    })
}

/// Runs the scenario.
pub async fn run(args: &ScenarioArgs, hub_bin: &Path, reps: usize) -> Result<Outcome, String> {
    let up = start_upstream(1, false).await?;
    let hub = match Hub::start(hub_bin, &[], &[]).await {
        Ok(h) => h,
        Err(e) => {
            up.proc.stop().await;
            return Err(e);
        }
    };
    let result = async {
        let admin = Endpoint::parse(&hub.base)?;
        let cfg = ClientConfig {
            endpoint: Arc::new(Endpoint::parse(&hub.mcp_url())?),
            accept: args.load.accept,
            protocol: args.load.protocol,
            timeout: args.load.timeout,
        };
        let mut session = Session::open(cfg).await.map_err(|e| format!("initialize on the hub: {e}"))?;
        let mut http = Vec::new();
        let mut stdio = Vec::new();
        for rep in 0..reps.max(1) {
            let body = serde_json::json!({ "transport": "streamable_http", "url": up.url }).to_string();
            http.push(one(&admin, &mut session, &format!("rtc-http-{rep}"), body).await?);
            let body = serde_json::json!({ "transport": "stdio", "command": "@self", "args": ["demo-server"] }).to_string();
            stdio.push(one(&admin, &mut session, &format!("rtc-stdio-{rep}"), body).await?);
        }
        Ok::<_, String>((summarize("streamable_http", http), summarize("stdio", stdio)))
    }
    .await;
    let hub_log_lines = hub.log_lines();
    hub.stop().await;
    up.proc.stop().await;
    let (http, stdio) = result?;
    println!(
        "{:<16} {:>5} {:>10} {:>10} {:>10} {:>7}   per rep (ms, attempts)",
        "transport", "reps", "median ms", "min ms", "max ms", "failed"
    );
    for s in [&http, &stdio] {
        let f = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into());
        let each: Vec<String> = s
            .reps
            .iter()
            .map(|r| format!("{}({})", f(r.first_call_ms), r.attempts))
            .collect();
        println!(
            "{:<16} {:>5} {:>10} {:>10} {:>10} {:>7} {:>13.1}   {}",
            s.transport,
            s.reps.len(),
            f(s.median_ms),
            f(s.min_ms),
            f(s.max_ms),
            s.failed,
            s.post_median_ms,
            each.join(" ")
        );
        if let Some(e) = s.reps.iter().find_map(|r| r.last_error.as_ref()) {
            println!(
                "  {}: an error seen before the first success: {e}",
                s.transport
            );
        }
    }
    let target = |s: &Summary, limit: f64, text: &str| {
        Target::new(
            &format!("register -> first call, {}", s.transport),
            text,
            s.median_ms
                .map(|m| format!("{m:.1} ms median"))
                .unwrap_or_else(|| "never".into()),
            s.failed == 0 && s.median_ms.is_some_and(|m| m < limit),
        )
    };
    let targets = vec![
        target(&http, 200.0, "< 200 ms"),
        target(&stdio, 1000.0, "< 1 s"),
    ];
    Ok(Outcome {
        details: serde_json::json!({ "http": http, "stdio": stdio, "hub_log_lines_at_warn": hub_log_lines }),
        targets,
    })
}
