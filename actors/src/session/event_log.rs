//! [`EventLog`]: the streams of one session and what they carried, so a client that lost a
//! connection can resume with `Last-Event-ID` and receive exactly what it missed.
//!
//! Event ids are `{session}.{stream}.{seq}`: they name the session (so a legacy client can
//! find its session again from the id alone), the stream (a resume replays only that
//! stream, never another's) and the position. Seq 0 is the priming event.
//!
//! Bounded by event count, bytes and age. A stream whose final response went out and whose
//! connection drained cleanly is kept only briefly (`DRAINED_RETENTION`): "written to the
//! socket" is not "read by the client", and a client that drops its connection right after
//! the response arrived must still be able to resume. Past the bounds, the log evicts in
//! order of least harm: drained streams, events of retired standalone streams, old events
//! of the live standalone stream, notifications of calls in flight, and last (with a
//! warning, as a result is lost) completed streams nobody came back for.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use super::messages::Outbound;

/// How long a drained stream stays resumable.
const DRAINED_RETENTION: Duration = Duration::from_secs(30);

/// Bounds of one session's log.
#[derive(Debug, Clone)]
pub struct LogLimits {
    /// Events kept at most.
    pub max_events: usize,
    /// Bytes of JSON kept at most.
    pub max_bytes: usize,
    /// Events older than this are dropped.
    pub max_age: Duration,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            max_events: 2048,
            max_bytes: 8 * 1024 * 1024,
            max_age: Duration::from_secs(600),
        }
    }
}

/// What a stream is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// The SSE answer to one POSTed request; ends with its response.
    Request,
    /// A request answered as plain JSON: not resumable, not logged.
    Json,
    /// The standalone GET stream (server-initiated messages).
    Standalone,
    /// The single stream of a legacy HTTP+SSE session (everything goes there).
    Legacy,
}

struct Logged {
    seq: u64,
    json: Arc<str>,
    is_response: bool,
    is_error: bool,
    at: Instant,
}

struct Stream {
    kind: StreamKind,
    tx: Option<mpsc::Sender<Outbound>>,
    next_seq: u64,
    events: VecDeque<Logged>,
    completed: bool,
    retired: bool,
    completed_at: Option<Instant>,
    drained_at: Option<Instant>,
}

/// Why a resume was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ResumeError {
    /// The id is not of the form `{session}.{stream}.{seq}` or names another session.
    Malformed,
    /// The stream is unknown here (never existed, or evicted).
    UnknownStream,
}

/// Parses an event id into (session, stream, seq).
pub fn parse_event_id(id: &str) -> Option<(&str, u64, u64)> {
    let mut parts = id.rsplitn(3, '.');
    let seq = parts.next()?.parse().ok()?;
    let stream = parts.next()?.parse().ok()?;
    let session = parts.next()?;
    (!session.is_empty()).then_some((session, stream, seq))
}

/// The streams of one session; see the module docs.
pub struct EventLog {
    session: Arc<str>,
    streams: HashMap<u64, Stream>,
    next_stream: u64,
    events: usize,
    bytes: usize,
    limits: LogLimits,
    lost_results: u64,
}

/// A newly opened or resumed stream.
pub struct Attached {
    /// Stream number.
    pub stream: u64,
    /// The events, starting with the replay.
    pub rx: mpsc::Receiver<Outbound>,
    /// How many events were replayed.
    pub replayed: usize,
}

impl EventLog {
    /// An empty log for `session`.
    pub fn new(session: Arc<str>, limits: LogLimits) -> Self {
        Self {
            session,
            streams: HashMap::new(),
            next_stream: 1,
            events: 0,
            bytes: 0,
            limits,
            lost_results: 0,
        }
    }

    /// Events and bytes held now.
    pub fn size(&self) -> (usize, usize) {
        (self.events, self.bytes)
    }

    /// Completed results evicted before anyone fetched them.
    pub fn lost_results(&self) -> u64 {
        self.lost_results
    }

    /// Whether any stream has a live connection.
    pub fn has_connections(&self) -> bool {
        self.streams.values().any(|s| s.tx.is_some())
    }

    /// Numbers new streams from `base` on (shared sessions: each instance's actor for a
    /// session draws its own base, so stream numbers never collide across instances).
    pub fn set_stream_base(&mut self, base: u64) {
        self.next_stream = base.max(1);
    }

    /// What a stream is for, if it exists.
    pub fn kind_of(&self, stream: u64) -> Option<StreamKind> {
        self.streams.get(&stream).map(|s| s.kind)
    }

    /// Takes in a request stream another instance started (a resume that landed here):
    /// `events` are what it carried after `after`, in order. Returns the connection, with
    /// those events queued; live unless the response is among them.
    pub fn adopt(
        &mut self,
        stream: u64,
        events: Vec<super::shared::SharedEvent>,
        after: u64,
        capacity: usize,
    ) -> Attached {
        let (tx, rx) = mpsc::channel(events.len() + capacity.max(1));
        let mut s = Stream {
            kind: StreamKind::Request,
            tx: None,
            next_seq: after + 1,
            events: VecDeque::new(),
            completed: false,
            retired: false,
            completed_at: None,
            drained_at: None,
        };
        let replayed = events.len();
        for e in events {
            let json: Arc<str> = Arc::from(e.json);
            let _ = tx.try_send(Outbound {
                event_id: format!("{}.{stream}.{}", self.session, e.seq),
                json: json.clone(),
                is_response: e.is_response,
                is_error: e.is_error,
            });
            s.next_seq = e.seq + 1;
            self.events += 1;
            self.bytes += json.len();
            if e.is_response {
                s.completed = true;
                s.completed_at = Some(Instant::now());
            }
            s.events.push_back(Logged {
                seq: e.seq,
                json,
                is_response: e.is_response,
                is_error: e.is_error,
                at: Instant::now(),
            });
        }
        if !s.completed {
            s.tx = Some(tx);
        }
        self.streams.insert(stream, s);
        self.enforce_bounds();
        Attached {
            stream,
            rx,
            replayed,
        }
    }

    /// Appends an event another instance logged for an adopted stream, at its own position
    /// (an event already held is skipped).
    pub fn append_at(
        &mut self,
        stream: u64,
        seq: u64,
        json: String,
        is_response: bool,
        is_error: bool,
    ) {
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        if seq < s.next_seq || s.completed {
            return;
        }
        s.next_seq = seq;
        self.append(stream, json, is_response, is_error);
    }

    /// The event id of position `seq` on `stream`.
    pub fn event_id(&self, stream: u64, seq: u64) -> String {
        format!("{}.{stream}.{seq}", self.session)
    }

    /// Opens a stream with a buffer of `capacity` messages.
    pub fn open(&mut self, kind: StreamKind, capacity: usize) -> Attached {
        let stream = self.next_stream;
        self.next_stream += 1;
        let (tx, rx) = mpsc::channel(capacity.max(1));
        self.streams.insert(
            stream,
            Stream {
                kind,
                tx: Some(tx),
                next_seq: 1,
                events: VecDeque::new(),
                completed: false,
                retired: false,
                completed_at: None,
                drained_at: None,
            },
        );
        Attached {
            stream,
            rx,
            replayed: 0,
        }
    }

    /// Whether a stream exists.
    pub fn contains(&self, stream: u64) -> bool {
        self.streams.contains_key(&stream)
    }

    /// Marks a standalone stream as replaced by a newer one: its connection closes and its
    /// events become the first to evict.
    pub fn retire(&mut self, stream: u64) {
        if let Some(s) = self.streams.get_mut(&stream) {
            s.retired = true;
            s.tx = None;
            if s.events.is_empty() {
                self.streams.remove(&stream);
            }
        }
    }

    /// Appends a message to a stream: logged (unless the stream is plain JSON) and sent live
    /// when a connection is attached. A response completes a request stream and closes its
    /// connection. Returns false when the stream does not exist.
    pub fn append(&mut self, stream: u64, json: String, is_response: bool, is_error: bool) -> bool {
        self.append_seq(stream, json, is_response, is_error)
            .is_some()
    }

    /// [`append`](Self::append), returning the event's position.
    pub fn append_seq(
        &mut self,
        stream: u64,
        json: String,
        is_response: bool,
        is_error: bool,
    ) -> Option<u64> {
        let s = self.streams.get_mut(&stream)?;
        let seq = s.next_seq;
        s.next_seq += 1;
        let json: Arc<str> = Arc::from(json);
        let ends = is_response && matches!(s.kind, StreamKind::Request | StreamKind::Json);
        if s.kind != StreamKind::Json {
            self.events += 1;
            self.bytes += json.len();
            s.events.push_back(Logged {
                seq,
                json: json.clone(),
                is_response,
                is_error,
                at: Instant::now(),
            });
        }
        if let Some(tx) = &s.tx {
            let msg = Outbound {
                // A JSON body carries no event id.
                event_id: if s.kind == StreamKind::Json {
                    String::new()
                } else {
                    format!("{}.{stream}.{seq}", self.session)
                },
                json,
                is_response,
                is_error,
            };
            match tx.try_send(msg) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(msg)) => {
                    // A slow reader: responses wait for room (off the actor); notifications
                    // stay in the log for a resume but are not pushed live.
                    if is_response {
                        let tx = tx.clone();
                        actix::spawn(async move {
                            let _ =
                                tokio::time::timeout(Duration::from_secs(30), tx.send(msg)).await;
                        });
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => s.tx = None,
            }
        }
        if ends {
            s.completed = true;
            s.completed_at = Some(Instant::now());
            s.tx = None;
            if s.kind == StreamKind::Json {
                self.streams.remove(&stream);
            }
        }
        self.enforce_bounds();
        Some(seq)
    }

    /// The connection of a stream read everything to its end: a completed stream's buffer
    /// is no longer needed.
    pub fn drained(&mut self, stream: u64) {
        if let Some(s) = self.streams.get_mut(&stream).filter(|s| s.completed) {
            s.drained_at = Some(Instant::now());
        }
    }

    /// Drops a stream nobody will resume: its request was cancelled, or its answer went out
    /// as plain JSON (the client never saw an event id).
    pub fn end_silently(&mut self, stream: u64) {
        self.remove(stream);
    }

    /// Closes a stream's connection (the stream and its log stay).
    pub fn detach(&mut self, stream: u64) {
        if let Some(s) = self.streams.get_mut(&stream) {
            s.tx = None;
        }
    }

    /// Resumes the stream named by `last_event_id`: replays what came after it, then
    /// continues live (or ends, if the stream already completed).
    pub fn resume(
        &mut self,
        last_event_id: &str,
        capacity: usize,
    ) -> Result<Attached, ResumeError> {
        let (session, stream, after) =
            parse_event_id(last_event_id).ok_or(ResumeError::Malformed)?;
        if session != &*self.session {
            return Err(ResumeError::Malformed);
        }
        let s = self
            .streams
            .get_mut(&stream)
            .ok_or(ResumeError::UnknownStream)?;
        let backlog: Vec<&Logged> = s.events.iter().filter(|e| e.seq > after).collect();
        let (tx, rx) = mpsc::channel(backlog.len() + capacity.max(1));
        for e in &backlog {
            let _ = tx.try_send(Outbound {
                event_id: format!("{}.{stream}.{}", self.session, e.seq),
                json: e.json.clone(),
                is_response: e.is_response,
                is_error: e.is_error,
            });
        }
        let replayed = backlog.len();
        s.tx = if s.completed { None } else { Some(tx) };
        s.retired = false;
        Ok(Attached {
            stream,
            rx,
            replayed,
        })
    }

    /// Drops events older than the age bound (and completed streams that aged out).
    pub fn sweep(&mut self) {
        let max_age = self.limits.max_age;
        let delivered: Vec<u64> = self
            .streams
            .iter()
            .filter(|(_, s)| {
                s.drained_at
                    .is_some_and(|t| t.elapsed() > DRAINED_RETENTION.min(max_age))
            })
            .map(|(id, _)| *id)
            .collect();
        delivered.into_iter().for_each(|id| self.remove(id));
        let expired: Vec<u64> = self
            .streams
            .iter()
            .filter(|(_, s)| s.completed_at.is_some_and(|t| t.elapsed() > max_age))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.lost_results += 1;
            self.remove(id);
        }
        let mut dropped = (0, 0);
        for s in self.streams.values_mut() {
            while s
                .events
                .front()
                .is_some_and(|e| e.at.elapsed() > max_age && !e.is_response)
            {
                if let Some(e) = s.events.pop_front() {
                    dropped.0 += 1;
                    dropped.1 += e.json.len();
                }
            }
        }
        self.events -= dropped.0;
        self.bytes -= dropped.1;
        self.streams
            .retain(|_, s| !(s.retired && s.events.is_empty()));
    }

    fn remove(&mut self, stream: u64) {
        if let Some(s) = self.streams.remove(&stream) {
            self.events -= s.events.len();
            self.bytes -= s.events.iter().map(|e| e.json.len()).sum::<usize>();
        }
    }

    fn over(&self) -> bool {
        self.events > self.limits.max_events || self.bytes > self.limits.max_bytes
    }

    fn enforce_bounds(&mut self) {
        if !self.over() {
            return;
        }
        // 0. drained streams, 1. retired standalone streams, 2. the live standalone and legacy
        // streams' oldest events, 3. notifications on request streams, 4. completed streams
        // (results lost).
        let mut drained: Vec<(Instant, u64)> = self
            .streams
            .iter()
            .filter_map(|(id, s)| s.drained_at.map(|t| (t, *id)))
            .collect();
        drained.sort();
        let retired = self
            .streams
            .iter()
            .filter(|(_, s)| s.retired)
            .map(|(id, _)| *id);
        let first: Vec<u64> = drained
            .into_iter()
            .map(|(_, id)| id)
            .chain(retired)
            .collect();
        for id in first {
            self.remove(id);
            if !self.over() {
                return;
            }
        }
        for pass in [Pass::Standalone, Pass::Notifications] {
            let ids: Vec<u64> = self
                .streams
                .iter()
                .filter(|(_, s)| pass.applies(s))
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                while self.over() {
                    let Some(s) = self.streams.get_mut(&id) else {
                        break;
                    };
                    let Some(pos) = s.events.iter().position(|e| !e.is_response) else {
                        break;
                    };
                    if let Some(e) = s.events.remove(pos) {
                        self.events -= 1;
                        self.bytes -= e.json.len();
                    }
                }
                if !self.over() {
                    return;
                }
            }
        }
        let mut completed: Vec<(Instant, u64)> = self
            .streams
            .iter()
            .filter_map(|(id, s)| s.completed_at.map(|t| (t, *id)))
            .collect();
        completed.sort();
        for (_, id) in completed {
            if !self.over() {
                return;
            }
            self.lost_results += 1;
            tracing::warn!(event = "session.log.evicted_result", session = %self.session, stream = id, "event log full: dropped a completed result nobody fetched");
            self.remove(id);
        }
    }
}

#[derive(Clone, Copy)]
enum Pass {
    Standalone,
    Notifications,
}

impl Pass {
    fn applies(self, s: &Stream) -> bool {
        match self {
            Pass::Standalone => matches!(s.kind, StreamKind::Standalone | StreamKind::Legacy),
            Pass::Notifications => s.kind == StreamKind::Request,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn log(limits: LogLimits) -> EventLog {
        EventLog::new(Arc::from("sess"), limits)
    }

    fn drain(rx: &mut mpsc::Receiver<Outbound>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            out.push(format!("{}={}", m.event_id, m.json));
        }
        out
    }

    #[actix_rt::test]
    async fn resume_replays_only_its_own_stream_after_the_id() {
        let mut l = log(LogLimits::default());
        let mut a = l.open(StreamKind::Request, 8);
        let b = l.open(StreamKind::Request, 8);
        drop(b.rx); // b's client went away
        l.append(a.stream, "a1".into(), false, false);
        l.append(b.stream, "b1".into(), false, false);
        l.append(a.stream, "a2".into(), false, false);
        l.append(b.stream, "b2".into(), true, false);
        assert_eq!(drain(&mut a.rx), vec!["sess.1.1=a1", "sess.1.2=a2"]);
        let mut r = l.resume("sess.2.0", 8).unwrap();
        assert_eq!(r.replayed, 2);
        assert_eq!(drain(&mut r.rx), vec!["sess.2.1=b1", "sess.2.2=b2"]);
        // A completed stream's resumed connection ends after the replay.
        assert!(r.rx.recv().await.is_none());
        let mut r = l.resume("sess.2.1", 8).unwrap();
        assert_eq!(drain(&mut r.rx), vec!["sess.2.2=b2"]);
        assert_eq!(
            l.resume("sess.9.0", 8).err(),
            Some(ResumeError::UnknownStream)
        );
        assert_eq!(l.resume("other.1.0", 8).err(), Some(ResumeError::Malformed));
        assert_eq!(l.resume("garbage", 8).err(), Some(ResumeError::Malformed));
    }

    #[actix_rt::test]
    async fn bounds_hold_and_evict_least_valuable_first() {
        let mut l = log(LogLimits {
            max_events: 10,
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(60),
        });
        let standalone = l.open(StreamKind::Standalone, 1);
        let call = l.open(StreamKind::Request, 1);
        for i in 0..100 {
            l.append(standalone.stream, format!("note{i}"), false, false);
            l.append(call.stream, format!("progress{i}"), false, false);
            assert!(l.size().0 <= 10);
        }
        l.append(call.stream, "result".into(), true, false);
        let mut r = l.resume(&format!("sess.{}.0", call.stream), 16).unwrap();
        let got = drain(&mut r.rx);
        assert_eq!(
            got.last().unwrap(),
            &format!("sess.{}.101=result", call.stream),
            "the response survives"
        );
        assert_eq!(l.lost_results(), 0);
    }

    #[actix_rt::test]
    async fn drained_streams_stay_resumable_until_evicted() {
        let mut l = log(LogLimits {
            max_events: 3,
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(60),
        });
        let a = l.open(StreamKind::Request, 4);
        l.append(a.stream, "ra".into(), true, false);
        l.drained(a.stream);
        let mut r = l.resume("sess.1.0", 4).unwrap();
        assert_eq!(
            drain(&mut r.rx),
            vec!["sess.1.1=ra"],
            "drained but still resumable"
        );
        let b = l.open(StreamKind::Request, 4);
        for i in 0..3 {
            l.append(b.stream, format!("p{i}"), false, false);
        }
        assert_eq!(
            l.resume("sess.1.0", 4).err(),
            Some(ResumeError::UnknownStream),
            "evicted first under pressure"
        );
        assert_eq!(
            l.lost_results(),
            0,
            "a drained result is not counted as lost"
        );
    }

    #[actix_rt::test]
    async fn json_streams_are_not_logged() {
        let mut l = log(LogLimits::default());
        let mut j = l.open(StreamKind::Json, 1);
        l.append(j.stream, "r".into(), true, false);
        assert_eq!(l.size(), (0, 0));
        assert_eq!(j.rx.recv().await.unwrap().json.as_ref(), "r");
        assert!(!l.contains(j.stream));
    }

    #[test]
    fn event_ids_parse() {
        assert_eq!(parse_event_id("abc.3.7"), Some(("abc", 3, 7)));
        assert_eq!(parse_event_id("a.b.c.3.7"), Some(("a.b.c", 3, 7)));
        assert_eq!(parse_event_id("3.7"), None);
        assert_eq!(parse_event_id(".3.7"), None);
    }
}
