//! Answers one modern call from its upstream events: the related notifications, then the
//! answer, or an `input_required` result when the upstream asks the client something.
//!
//! Gathering: a legacy upstream asks with real requests, possibly several at once (a tool
//! that awaits an elicitation, a sampling and a roots listing together). After the first
//! one the driver waits `modern.input_gather_ms` for more, so they all go to the client in
//! one `input_required` result (at most [`MAX_ROUND_REQUESTS`]); one that arrives later
//! stays in the call's channel and becomes the next round. A request the client's own
//! `inputResponses` already answer (matched by the upstream's input-key hint) is answered
//! at once and never asked.

use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use mcp_hub_actors::protocol::input_key;
use mcp_hub_actors::protocol::jsonrpc::{error_bytes, response_bytes, response_text, to_raw};
use mcp_hub_actors::protocol::modern::{self, CacheHint, StateClaims};
use mcp_hub_actors::protocol::{codes, Id, RpcError};
use mcp_hub_actors::server::{ReplyToUpstream, UpstreamEventKind};
use serde_json::{Map, Value};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::call::{now_ms, Running};
use super::input::{as_ask, fits, to_ask, Ask, Asked, Round, MAX_ROUND_REQUESTS};
use super::pending::Held;
use super::relay::CallEvent;
use super::{as_object, ModernState, Reply};
use crate::state::AppState;

/// One message for the client; `last` ends the response.
struct Frame {
    json: String,
    last: bool,
}

/// How long an SSE answer waits for its first frame before committing to a 200 stream: an
/// error the binding gives a 4xx status (e.g. -32021 for a missing client capability)
/// that arrives first is answered with that status instead.
const FIRST_FRAME_WAIT: Duration = Duration::from_millis(200);

/// The status of an answer that is a JSON-RPC error with a code the modern binding maps to
/// an HTTP error status; `None` for anything else.
fn error_status(json: &str) -> Option<actix_web::http::StatusCode> {
    // A result frame (the common case) is not parsed: it has no top-level "error" member.
    if !json.contains("\"error\"") {
        return None;
    }
    let v: Value = serde_json::from_str(json).ok()?;
    match v.get("error")?.get("code")?.as_i64()? {
        modern::HEADER_MISMATCH
        | modern::MISSING_CLIENT_CAPABILITY
        | modern::UNSUPPORTED_VERSION => Some(actix_web::http::StatusCode::BAD_REQUEST),
        _ => None,
    }
}

/// Drives the call in the background and answers as SSE (related notifications, then the
/// answer) or as one JSON body; with [`Reply::SseOrJson`], an answer that arrives first and
/// alone is one JSON body too.
pub(super) async fn respond(
    req: &HttpRequest,
    state: &AppState,
    id: Id,
    run: Running,
    reply: Reply,
) -> HttpResponse {
    let (out, mut frames) = mpsc::channel::<Frame>(64);
    actix::spawn(drive(run, out, state.modern.clone(), id.clone()));
    if reply != Reply::Json {
        let first = match tokio::time::timeout(FIRST_FRAME_WAIT, frames.recv()).await {
            Ok(Some(f)) if f.last => {
                // One JSON body for an error the binding maps to an HTTP status, and for an
                // answer that came first and alone to a client that accepts JSON.
                let json_status = error_status(&f.json)
                    .or((reply == Reply::SseOrJson).then_some(actix_web::http::StatusCode::OK));
                if let Some(status) = json_status {
                    return HttpResponse::build(status)
                        .content_type("application/json")
                        .body(f.json);
                }
                Some(f)
            }
            Ok(f) => f,
            Err(_) => None,
        };
        let messages = futures_util::stream::iter(first)
            .chain(ReceiverStream::new(frames))
            .map(|f| f.json);
        return super::sse_response(req, state, messages);
    }
    let body = async move {
        while let Some(f) = frames.recv().await {
            if f.last {
                return Some(f.json);
            }
        }
        None
    };
    // Awaited by the handler: if the client goes away, actix drops this future, the channel
    // closes, and the driver cancels the call.
    HttpResponse::Ok()
        .content_type("application/json")
        .streaming(futures_util::stream::once(async move {
            match body.await {
                Some(json) => Ok::<_, Infallible>(actix_web::web::Bytes::from(json)),
                None => Ok(actix_web::web::Bytes::from(ended_without_answer(None))),
            }
        }))
}

fn ended_without_answer(id: Option<&Id>) -> String {
    error_bytes(
        id,
        &RpcError::new(
            codes::INTERNAL_ERROR,
            "Internal error: the call ended without an answer",
        ),
    )
}

/// What gathering ended with.
enum Gathered {
    /// The requests to ask the client.
    Round(Round),
    /// The call ended (or its channel closed) first; the gathered requests were refused.
    Ended(Option<CallEvent>),
    /// The client went away; the call was cancelled.
    Gone,
}

async fn drive(mut run: Running, out: mpsc::Sender<Frame>, modern: ModernState, id: Id) {
    loop {
        let ev = tokio::select! {
            ev = run.rx.recv() => ev,
            _ = out.closed() => return client_gone(&run),
        };
        let ev = match as_ask(ev) {
            Ok(ask) => {
                let Some(first) = triage(&mut run, ask) else {
                    continue;
                };
                match gather(&mut run, &out, &id, first, modern.gather_window).await {
                    Gathered::Round(round) => return hold(run, round, &modern, &id, &out).await,
                    Gathered::Ended(ev) => ev,
                    Gathered::Gone => return,
                }
            }
            Err(ev) => ev,
        };
        let Some(frame) = frame_of(&run, &id, ev) else {
            continue;
        };
        let last = frame.last;
        if out.send(frame).await.is_err() {
            if !last {
                run.cancel("the client closed the response stream");
            }
            return;
        }
        if last {
            return;
        }
    }
}

fn client_gone(run: &Running) {
    tracing::info!(
        event = "modern.call.cancelled",
        upstream_id = run.upstream_id,
        "client closed the response stream"
    );
    run.cancel("the client closed the response stream");
}

/// Decides what to do with an upstream request: refused at once when the client did not
/// declare its capability (see [`to_ask`]), answered at once when this request's
/// `inputResponses` hold its hinted key, else returned to be asked.
fn triage(run: &mut Running, ask: Ask) -> Option<Asked> {
    let asked = to_ask(&run.meta, ask)?;
    let answer = input_key::hint(Some(&asked.params))
        .and_then(|k| run.prefill.remove(k))
        .filter(|a| fits(&asked.method, a));
    match answer {
        Some(answer) => {
            tracing::info!(event = "modern.input.preanswered", method = %asked.method, "modern.input.preanswered");
            asked.reply(Ok(answer));
            None
        }
        None => Some(asked),
    }
}

/// Collects the requests that arrive within `window` of the first (notifications in
/// between go to the client as usual).
async fn gather(
    run: &mut Running,
    out: &mpsc::Sender<Frame>,
    id: &Id,
    first: Asked,
    window: Duration,
) -> Gathered {
    let mut round = Round::default();
    round.add(first, &mut run.asked);
    let deadline = tokio::time::Instant::now() + window;
    while round.len() < MAX_ROUND_REQUESTS {
        let ev = tokio::select! {
            ev = run.rx.recv() => ev,
            _ = tokio::time::sleep_until(deadline) => break,
            _ = out.closed() => {
                round.refuse_all("the client closed the response stream");
                client_gone(run);
                return Gathered::Gone;
            }
        };
        match as_ask(ev) {
            Ok(ask) => {
                if let Some(asked) = triage(run, ask) {
                    round.add(asked, &mut run.asked);
                }
            }
            Err(Some(ev @ CallEvent::Upstream(_))) => {
                if let Some(frame) = frame_of(run, id, Some(ev)) {
                    if out.send(frame).await.is_err() {
                        round.refuse_all("the client closed the response stream");
                        client_gone(run);
                        return Gathered::Gone;
                    }
                }
            }
            Err(ended) => {
                round.refuse_all("the call ended before the client was asked");
                return Gathered::Ended(ended);
            }
        }
    }
    Gathered::Round(round)
}

/// Holds the round for the client's retry and answers `input_required` with a signed state.
async fn hold(
    run: Running,
    round: Round,
    modern: &ModernState,
    id: &Id,
    out: &mpsc::Sender<Frame>,
) {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let claims = StateClaims {
        nonce: nonce.clone(),
        user: run.user.to_string(),
        method: run.method.clone(),
        target: run.target.clone(),
        expires_ms: now_ms() + modern.state_ttl.as_millis() as u64,
    };
    let token = modern.signer.sign(&claims);
    let mut result = match modern::input_required(round.input_requests(), &token) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    modern::finish_result(&mut result, &super::hub_info());
    let json = response_bytes(id, &to_raw(&Value::Object(result)));
    tracing::info!(event = "modern.input.held", keys = ?round.keys(), "modern.input.held");
    modern
        .pending
        .insert(nonce, Held { run, round, token }, modern.state_ttl);
    let _ = out.send(Frame { json, last: true }).await;
}

/// The client's frame for an event that is not a server-to-client request: a notification
/// (`None` for a log line the request did not ask for), or the call's end.
fn frame_of(run: &Running, id: &Id, ev: Option<CallEvent>) -> Option<Frame> {
    let (json, last) = match ev {
        None => (ended_without_answer(Some(id)), true),
        Some(CallEvent::Done(Ok(raw))) => {
            // A read may need a cache hint merged in: it takes the map path.
            let as_text = (run.method != "resources/read")
                .then(|| modern::finish_result_text(raw.get(), super::hub_info_text()))
                .flatten();
            let json = match as_text {
                Some(result) => response_text(id, &result),
                None => {
                    let mut result = as_object(&raw);
                    if run.method == "resources/read" && !result.contains_key("ttlMs") {
                        // A legacy upstream's read may be per caller: never shared, not reused.
                        CacheHint {
                            ttl_ms: 0,
                            private: true,
                        }
                        .apply(&mut result);
                    }
                    modern::finish_result(&mut result, &super::hub_info());
                    response_bytes(id, &to_raw(&Value::Object(result)))
                }
            };
            (json, true)
        }
        Some(CallEvent::Done(Err(e))) => {
            let mut rpc = e.to_rpc();
            if rpc.code == codes::RESOURCE_NOT_FOUND {
                // 2026-07-28 forbids -32002; a legacy upstream's "not found" is -32602.
                rpc.code = codes::INVALID_PARAMS;
            }
            (error_bytes(Some(id), &rpc), true)
        }
        Some(CallEvent::Upstream(ev)) => match ev.kind {
            UpstreamEventKind::Notification(json) => {
                let is_log = json.contains("\"notifications/message\"");
                if is_log && run.meta.log_level.is_none() {
                    return None;
                }
                (json, false)
            }
            // Requests are triaged before this; one that gets here is refused, not lost.
            UpstreamEventKind::Request {
                upstream_id,
                reply_to,
                ..
            } => {
                let err =
                    RpcError::new(codes::INTERNAL_ERROR, "the hub did not relay this request");
                reply_to.do_send(ReplyToUpstream::refusal(upstream_id, &err));
                return None;
            }
        },
    };
    Some(Frame { json, last })
}
