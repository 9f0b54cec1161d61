//! `scenario reconnect_storm`: N sessions each start a slow `tools/call` answered as SSE,
//! all drop their streams at the same moment after the priming event, and all resume at
//! once with `GET` + `Last-Event-ID`. Counts results lost (no response on the resumed
//! stream) and duplicated (more than one), and the time from the drop until every result
//! arrived.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::procs::Hub;
use super::Outcome;
use crate::cli::ScenarioArgs;
use crate::mcp::{http_request, ClientConfig, Endpoint, Session, ToolCall, PROTOCOL_VERSION};
use crate::report::Target;
use crate::sse::{SseEvent, SseParser};

/// How one session's call ended.
#[derive(Debug, Default)]
struct One {
    responses: usize,
    /// From the drop to the response on the resumed stream.
    recovered: Option<Duration>,
    error: Option<String>,
}

fn request(
    ep: &Endpoint,
    method: Method,
    sid: &HeaderValue,
    extra: Option<(&'static str, String)>,
    body: Option<String>,
) -> Result<Request<Full<Bytes>>, String> {
    let mut req = Request::builder()
        .method(method)
        .uri(ep.path.as_str())
        .header(HOST, ep.host.clone())
        .header(ACCEPT, "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL_VERSION)
        .header("mcp-session-id", sid.clone());
    if body.is_some() {
        req = req.header(CONTENT_TYPE, "application/json");
    }
    if let Some((k, v)) = extra {
        req = req.header(k, v);
    }
    req.body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| e.to_string())
}

/// Reads SSE events from `body` until `stop` says so or the body ends.
async fn read_events(
    body: &mut hyper::body::Incoming,
    parser: &mut SseParser,
    mut stop: impl FnMut(&SseEvent) -> bool,
) -> Result<(), String> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(d) = frame.into_data() {
            parser.feed(&d, &mut out);
            for ev in out.drain(..) {
                if stop(&ev) {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

async fn one(
    ep: Arc<Endpoint>,
    sid: HeaderValue,
    sleep_ms: u64,
    dropped: Arc<Barrier>,
    timeout: Duration,
) -> One {
    let mut out = One::default();
    // The call, read until its priming event.
    let started = async {
        let mut sender = ep.connect().await.map_err(|e| e.to_string())?;
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":"storm","method":"tools/call","params":{{"name":"demo__sleep","arguments":{{"ms":{sleep_ms},"progress":false}}}}}}"#
        );
        let req = request(&ep, Method::POST, &sid, None, Some(body))?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("POST: HTTP {}", resp.status()));
        }
        let mut body = resp.into_body();
        let mut parser = SseParser::new();
        let mut last_id = None;
        read_events(&mut body, &mut parser, |ev| {
            last_id = ev.id.clone();
            last_id.is_some()
        })
        .await?;
        last_id.ok_or_else(|| "the stream had no event id".to_string())
        // The connection drops here.
    };
    let started = tokio::time::timeout(timeout, started)
        .await
        .unwrap_or_else(|_| Err("no priming event".into()));
    // Everyone drops at once (a failed start still arrives, so nobody waits forever).
    dropped.wait().await;
    let last_id = match started {
        Ok(id) => id,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    let t0 = Instant::now();
    let resumed = async {
        let mut sender = ep.connect().await.map_err(|e| e.to_string())?;
        let req = request(
            &ep,
            Method::GET,
            &sid,
            Some(("last-event-id", last_id)),
            None,
        )?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("GET resume: HTTP {}", resp.status()));
        }
        let mut body = resp.into_body();
        let mut parser = SseParser::new();
        // Read to the end of the resumed stream (it closes after the response), so a
        // second response would be seen.
        read_events(&mut body, &mut parser, |ev| {
            if ev.data.contains(r#""id":"storm""#) && !ev.data.contains(r#""method""#) {
                out.responses += 1;
                out.recovered.get_or_insert(t0.elapsed());
            }
            false
        })
        .await
    };
    if let Err(e) = tokio::time::timeout(timeout, resumed)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
    {
        out.error = Some(e);
    }
    out
}

/// Runs the scenario.
pub async fn run(
    args: &ScenarioArgs,
    hub_bin: &Path,
    sessions: usize,
    sleep_ms: u64,
) -> Result<Outcome, String> {
    let hub = Hub::start(
        hub_bin,
        &[],
        &[
            (
                "MCP_HUB_SESSIONS__MAX_SESSIONS",
                (sessions + 100).to_string(),
            ),
            (
                "MCP_HUB_SESSIONS__MAX_SESSIONS_PER_USER",
                (sessions + 100).to_string(),
            ),
        ],
    )
    .await?;
    let result = async {
        let admin = Endpoint::parse(&hub.base)?;
        let def = serde_json::json!({
            "transport": "stdio", "command": "@self", "args": ["demo-server"],
            "max_concurrency": sessions + 10,
        });
        let (status, text) = http_request(
            &admin,
            Method::POST,
            "/api/servers/demo",
            Some(def.to_string()),
            Duration::from_secs(10),
        )
        .await
        .map_err(|e| format!("registering demo: {e}"))?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "registering demo: HTTP {status}: {}",
                String::from_utf8_lossy(&text)
            ));
        }
        let ep = Arc::new(Endpoint::parse(&hub.mcp_url())?);
        let cfg = ClientConfig {
            endpoint: ep.clone(),
            accept: args.load.accept,
            protocol: args.load.protocol,
            timeout: args.load.timeout,
        };
        // Wait until the demo answers.
        let mut probe = Session::open(cfg.clone())
            .await
            .map_err(|e| format!("initialize: {e}"))?;
        let ready = Instant::now();
        let up = ToolCall::new(probe.protocol(), "demo__echo", r#"{"text":"up"}"#)?;
        while probe.call_tool(&up).await.is_err() {
            if ready.elapsed() > Duration::from_secs(20) {
                return Err("the demo server never answered".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Open the sessions (bounded concurrency).
        let mut ids = Vec::with_capacity(sessions);
        let mut set = JoinSet::new();
        for _ in 0..sessions {
            if set.len() >= 64 {
                if let Some(r) = set.join_next().await {
                    ids.push(r.map_err(|e| e.to_string())??);
                }
            }
            let cfg = cfg.clone();
            set.spawn(async move {
                let s = Session::open(cfg)
                    .await
                    .map_err(|e| format!("initialize: {e}"))?;
                s.session_id()
                    .cloned()
                    .ok_or_else(|| "no Mcp-Session-Id".to_string())
            });
        }
        while let Some(r) = set.join_next().await {
            ids.push(r.map_err(|e| e.to_string())??);
        }
        let dropped = Arc::new(Barrier::new(ids.len()));
        let timeout = Duration::from_millis(sleep_ms) + Duration::from_secs(30);
        let mut set = JoinSet::new();
        for sid in ids {
            set.spawn(one(ep.clone(), sid, sleep_ms, dropped.clone(), timeout));
        }
        let mut all = Vec::new();
        while let Some(r) = set.join_next().await {
            all.push(r.map_err(|e| e.to_string())?);
        }
        Ok::<_, String>(all)
    }
    .await;
    let hub_log_lines = hub.log_lines();
    hub.stop().await;
    let all = result?;
    let lost = all.iter().filter(|o| o.responses == 0).count();
    let duplicated = all.iter().filter(|o| o.responses > 1).count();
    let mut times: Vec<f64> = all
        .iter()
        .filter_map(|o| o.recovered)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        times
            .get(((times.len() as f64 * p) as usize).min(times.len().saturating_sub(1)))
            .copied()
    };
    let full = times.last().copied();
    let errors: Vec<&String> = all.iter().filter_map(|o| o.error.as_ref()).collect();
    println!(
        "{} sessions, calls of {sleep_ms} ms dropped at once after their priming event and resumed at once",
        all.len()
    );
    println!(
        "results: {} delivered, {lost} lost, {duplicated} duplicated; drop -> result p50 {:.0} ms, p99 {:.0} ms, all {:.0} ms; hub log lines (warn+) {hub_log_lines}",
        times.len(),
        pct(0.5).unwrap_or(f64::NAN),
        pct(0.99).unwrap_or(f64::NAN),
        full.unwrap_or(f64::NAN),
    );
    if let Some(e) = errors.first() {
        println!("first error ({} in all): {e}", errors.len());
    }
    let recovery_s = full.map(|ms| ms / 1000.0);
    Ok(Outcome {
        details: serde_json::json!({
            "sessions": all.len(),
            "sleep_ms": sleep_ms,
            "delivered": times.len(),
            "lost": lost,
            "duplicated": duplicated,
            "errors": errors.len(),
            "drop_to_result_ms": { "p50": pct(0.5), "p99": pct(0.99), "max": full },
            "hub_log_lines": hub_log_lines,
        }),
        targets: vec![
            Target::new("reconnect_storm: lost", "0", lost.to_string(), lost == 0),
            Target::new(
                "reconnect_storm: duplicated",
                "0",
                duplicated.to_string(),
                duplicated == 0,
            ),
            Target::new(
                "reconnect_storm: time to full recovery",
                "< 5 s",
                recovery_s
                    .map(|s| format!("{s:.2} s (includes the {sleep_ms} ms call)"))
                    .unwrap_or_else(|| "never".into()),
                lost == 0 && recovery_s.is_some_and(|s| s < 5.0),
            ),
        ],
    })
}
