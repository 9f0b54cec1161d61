//! The fault suite (issue #10): steady load from MCP clients while one fault is injected at a
//! time. Every accepted call must end in exactly one final answer (a result or a clear
//! JSON-RPC error): `lost` counts calls that got no answer (a hang past the client's own
//! deadline, or a connection cut without a response), `duplicated` counts responses seen
//! twice for one id. Each test writes its row for RELIABILITY.md
//! (`scripts/reliability.py` collects them).

mod hostile_upstreams;
mod instances;
mod sessions;
mod stdio;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::helpers::*;

/// How long a client waits for one answer before it counts the call as lost.
const ANSWER_DEADLINE: Duration = Duration::from_secs(20);

/// One call as a client saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub started: Instant,
    pub ended: Instant,
    pub outcome: Outcome,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok,
    /// A JSON-RPC error: `code message`.
    Error(String),
    /// HTTP refused the request before it was accepted (e.g. 503 while draining): not an
    /// accepted call, so not counted as lost.
    Refused(u16),
    /// No answer within the deadline, or the stream ended without a response.
    Lost(String),
    /// More than one response for the id.
    Duplicated,
}

/// Everything the load saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub calls: Vec<Call>,
}

impl Tally {
    pub fn accepted(&self) -> usize {
        self.calls
            .iter()
            .filter(|c| !matches!(c.outcome, Outcome::Refused(_)))
            .count()
    }
    pub fn ok(&self) -> usize {
        self.count(|o| *o == Outcome::Ok)
    }
    pub fn lost(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Lost(_)))
    }
    pub fn duplicated(&self) -> usize {
        self.count(|o| *o == Outcome::Duplicated)
    }
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.calls.iter().filter(|c| f(&c.outcome)).count()
    }
    /// Error answers grouped by `code message`.
    pub fn errors(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for c in &self.calls {
            if let Outcome::Error(e) | Outcome::Lost(e) = &c.outcome {
                *m.entry(e.clone()).or_insert(0) += 1;
            }
        }
        m
    }
    /// Time from `since` to the end of the first successful call that started after it.
    pub fn recovery_after(&self, since: Instant) -> Option<Duration> {
        self.calls
            .iter()
            .filter(|c| c.outcome == Outcome::Ok && c.started >= since)
            .map(|c| c.ended - since)
            .min()
    }
    /// Panics with the error breakdown unless every accepted call got exactly one answer.
    pub fn assert_exactly_once(&self) {
        assert!(self.accepted() > 0, "the load made no calls");
        assert_eq!(self.lost(), 0, "lost calls: {:?}", self.errors());
        assert_eq!(self.duplicated(), 0, "duplicated answers");
    }
}

/// Steady closed-loop load: `clients` sessions, each calling `tool` back to back.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<actix_rt::task::JoinHandle<Vec<Call>>>,
}

impl Load {
    /// Starts `clients` sessions on `endpoint` (a `/mcp` URL), each calling `tool` with
    /// `args` (its `{i}` text placeholder replaced by a sequence number) until stopped.
    pub async fn start(endpoint: &str, clients: usize, tool: &str, args: Value) -> Load {
        Self::start_on(&[endpoint.to_string()], clients, tool, args).await
    }

    /// Like [`Load::start`], spreading clients over several hub instances (round robin).
    pub async fn start_on(endpoints: &[String], clients: usize, tool: &str, args: Value) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for n in 0..clients {
            let url = endpoints[n % endpoints.len()].clone();
            let mut client = McpClient::connect(url).await;
            let (stop, tool, args) = (stop.clone(), tool.to_string(), args.clone());
            tasks.push(actix_rt::spawn(async move {
                let mut calls = Vec::new();
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    seq += 1;
                    let started = Instant::now();
                    let outcome = call_once(&mut client, &tool, &args, n, seq).await;
                    calls.push(Call {
                        started,
                        ended: Instant::now(),
                        outcome,
                    });
                    if !matches!(calls.last().map(|c| &c.outcome), Some(Outcome::Ok)) {
                        // Don't spin on a server that is down; real clients back off too.
                        actix_rt::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                calls
            }));
        }
        Load { stop, tasks }
    }

    /// Stops the load and waits for every call in flight to end.
    pub async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut tally = Tally::default();
        for t in self.tasks {
            tally.calls.extend(t.await.expect("load task"));
        }
        tally
    }
}

/// One tools/call: POSTed, read to the end of its response (JSON or the whole SSE stream,
/// so a second response for the same id would be seen).
async fn call_once(
    client: &mut McpClient,
    tool: &str,
    args: &Value,
    n: usize,
    seq: u64,
) -> Outcome {
    let id = json!(format!("c{n}-{seq}"));
    let text = format!("{n}-{seq}");
    let args: Value = serde_json::from_str(&args.to_string().replace("{i}", &text)).unwrap();
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": { "name": tool, "arguments": args } });
    let mut req = client
        .client
        .post(&client.url)
        .timeout(ANSWER_DEADLINE)
        .insert_header(("Accept", "application/json, text/event-stream"))
        .insert_header(("Content-Type", "application/json"));
    if let Some(s) = &client.session {
        req = req
            .insert_header(("Mcp-Session-Id", s.as_str()))
            .insert_header(("MCP-Protocol-Version", "2025-11-25"));
    }
    let read = async {
        let mut resp = match req.send_body(body.to_string()).await {
            Ok(r) => r,
            Err(e) => return Outcome::Lost(format!("send: {e}")),
        };
        let status = resp.status().as_u16();
        let sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut answers = Vec::new();
        if sse {
            let mut events = eventsource_stream::Eventsource::eventsource(resp);
            while let Some(ev) = events.next().await {
                match ev {
                    Ok(ev) if ev.data.is_empty() => {}
                    Ok(ev) => {
                        let v: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
                        if v.get("method").is_none() && v.get("id") == Some(&id) {
                            answers.push(v);
                        }
                    }
                    Err(e) => return Outcome::Lost(format!("sse: {e}")),
                }
            }
        } else {
            let body = match resp.body().limit(16 << 20).await {
                Ok(b) => b,
                Err(e) => return Outcome::Lost(format!("body: {e}")),
            };
            match serde_json::from_slice::<Value>(&body) {
                Ok(v) if v.get("id") == Some(&id) => answers.push(v),
                _ if status >= 400 => return Outcome::Refused(status),
                _ => return Outcome::Lost(format!("HTTP {status} without a response")),
            }
        }
        match answers.as_slice() {
            [] => Outcome::Lost(format!("HTTP {status}: stream ended without a response")),
            [one] if one.get("result").is_some() => {
                if one["result"]["isError"] == json!(true) {
                    Outcome::Error(format!("isError {}", text_of(&one["result"])))
                } else {
                    Outcome::Ok
                }
            }
            [one] => Outcome::Error(format!(
                "{} {}",
                one["error"]["code"], one["error"]["message"]
            )),
            _ => Outcome::Duplicated,
        }
    };
    match tokio::time::timeout(ANSWER_DEADLINE + Duration::from_secs(1), read).await {
        Ok(o) => o,
        Err(_) => Outcome::Lost("no answer within the deadline".into()),
    }
}

/// One row of RELIABILITY.md.
pub struct Row<'a> {
    pub fault: &'a str,
    pub load: String,
    pub tally: &'a Tally,
    pub recovery: Option<Duration>,
    pub notes: String,
}

/// Writes the row where `scripts/reliability.py` finds it
/// (`$CARGO_TARGET_TMPDIR/reliability/{slug}.json`) and prints it.
pub fn report(slug: &str, row: Row<'_>) {
    let errors: Vec<String> = row
        .tally
        .errors()
        .into_iter()
        .map(|(e, n)| format!("{n}× {e}"))
        .collect();
    let v = json!({
        "slug": slug,
        "fault": row.fault,
        "load": row.load,
        "accepted": row.tally.accepted(),
        "ok": row.tally.ok(),
        "errors": errors,
        "lost": row.tally.lost(),
        "duplicated": row.tally.duplicated(),
        "recovery_ms": row.recovery.map(|d| d.as_millis() as u64),
        "notes": row.notes,
    });
    println!("reliability: {v}");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{slug}.json")), v.to_string()).unwrap();
}

/// Sends a signal to a process.
pub fn signal(sig: &str, pid: u32) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Polls `cond` every 20 ms until it holds (panics after `within`).
pub async fn eventually(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}
