//! `GET /api/events`: Server-Sent Events for the dashboard.
//!
//! Events (each `data` is JSON):
//! - `snapshot` `{"servers": [row, ...]}` first, so a (re)connecting client needs no other call;
//! - `server` `row` when a server's definition or runtime status changed, or it appeared;
//! - `server_removed` `{"id"}` when a server was deleted;
//! - `stats` the `/api/stats` body, when it changed (checked every 2 s).
//!
//! A row has the shape of an item of `GET /api/servers`: the redacted definition plus
//! `runtime`. The stream polls every 500 ms and sends differences: that coalesces the
//! per-call in-flight updates of a busy server into at most two events a second, and it
//! covers registry changes and runtime changes with one mechanism. Polling costs one
//! registry hop and a `watch` borrow per server per tick, per connected dashboard.
//!
//! Authentication is the `/api` bearer token like every admin route. Browsers' EventSource
//! cannot send headers, so the dashboard reads this stream with `fetch` (which can),
//! keeping the token out of URLs, access logs and browser history.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, Responder};
use actix_web_lab::sse;
use futures_util::stream::{self, StreamExt};
use mcp_hub_actors::registry::{self, ServerDef};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{interval, Interval, MissedTickBehavior};

use super::stats;
use crate::state::AppState;

/// How often the stream looks for changes.
const TICK: Duration = Duration::from_millis(500);
/// Stats are recomputed every this many ticks (they render the recorder).
const STATS_EVERY: u64 = 4;
/// Keep-alive comment interval (below common proxy idle timeouts).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A server as the dashboard shows it: what `GET /api/servers` lists.
pub fn row(def: &ServerDef, state: &AppState) -> Value {
    let mut v = serde_json::to_value(def.redacted()).unwrap_or(Value::Null);
    v["runtime"] = match state.servers.get(&def.id) {
        Some(h) => serde_json::to_value(&*h.runtime.borrow()).unwrap_or(Value::Null),
        None => json!({ "status": "stopped" }),
    };
    v
}

struct Poll {
    state: Arc<AppState>,
    tick: Interval,
    ticks: u64,
    rows: Option<BTreeMap<String, Value>>,
    stats: Value,
}

impl Poll {
    /// The events of one tick (none when nothing changed).
    async fn step(&mut self) -> Vec<sse::Event> {
        self.tick.tick().await;
        self.ticks += 1;
        // A registry that does not answer this tick is asked again on the next.
        let Ok(defs) = self.state.registry.send(registry::List).await else {
            return Vec::new();
        };
        let rows: BTreeMap<String, Value> = defs
            .iter()
            .map(|d| (d.id.clone(), row(d, &self.state)))
            .collect();
        let mut out = Vec::new();
        match &self.rows {
            None => out.push(event(
                "snapshot",
                &json!({ "servers": rows.values().collect::<Vec<_>>() }),
            )),
            Some(prev) => {
                for (id, r) in &rows {
                    if prev.get(id) != Some(r) {
                        out.push(event("server", r));
                    }
                }
                for id in prev.keys().filter(|id| !rows.contains_key(*id)) {
                    out.push(event("server_removed", &json!({ "id": id })));
                }
            }
        }
        if self.rows.is_none() || self.ticks % STATS_EVERY == 0 {
            let stats = stats::snapshot(&self.state, defs.len());
            if stats != self.stats {
                out.push(event("stats", &stats));
                self.stats = stats;
            }
        }
        self.rows = Some(rows);
        out
    }
}

fn event(name: &str, data: &Value) -> sse::Event {
    sse::Event::Data(sse::Data::new(data.to_string()).event(name.to_string()))
}

/// `GET /api/events`.
pub async fn events(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let mut tick = interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let poll = Poll {
        state: state.into_inner(),
        tick,
        ticks: 0,
        rows: None,
        stats: Value::Null,
    };
    // The stream lives in the response body: when the client goes away actix drops it,
    // and the polling stops with it (no task to clean up).
    let events = stream::unfold(poll, |mut p| async move {
        let batch = p.step().await;
        Some((stream::iter(batch), p))
    })
    .flatten()
    .map(Ok::<_, Infallible>);
    sse::Sse::from_stream(events)
        .with_keep_alive(KEEP_ALIVE)
        .with_retry_duration(Duration::from_secs(2))
        .customize()
        .insert_header(("X-Accel-Buffering", "no"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .respond_to(&req)
        .map_into_boxed_body()
}
