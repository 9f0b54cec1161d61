//! Event ids and `Last-Event-ID` (`parse_event_id`, `EventLog::resume`).
//!
//! Beyond "no panic": a parsed id re-formatted as `{session}.{stream}.{seq}` parses back to
//! the same triple, an id the log itself issued parses back to what it encodes, and a
//! resume from an arbitrary `Last-Event-ID` replays exactly the events after it, each with
//! an id of the same session and stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_hub_actors::session::event_log::{parse_event_id, EventLog, ResumeError, StreamKind};
use mcp_hub_actors::session::LogLimits;
use std::sync::Arc;

/// Events appended to the log before the resume.
const EVENTS: u64 = 4;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_event_id(text);
    if let Some((session, stream, seq)) = parsed {
        assert!(!session.is_empty());
        let again = format!("{session}.{stream}.{seq}");
        assert_eq!(
            parse_event_id(&again),
            Some((session, stream, seq)),
            "{again:?}"
        );
    }

    // The log of the session the input names (half the time) or of session "s".
    let name = parsed
        .filter(|_| data.len() % 2 == 0)
        .map_or("s", |(s, _, _)| s);
    let mut log = EventLog::new(Arc::from(name), LogLimits::default());
    let attached = log.open(StreamKind::Standalone, 16);
    for i in 0..EVENTS {
        assert!(log.append(attached.stream, format!("{{\"n\":{i}}}"), false, false));
    }
    let issued = log.event_id(attached.stream, 2);
    assert_eq!(parse_event_id(&issued), Some((name, attached.stream, 2)));

    match log.resume(text, 8) {
        Ok(mut resumed) => {
            let (_, stream, after) = parsed.unwrap_or_else(|| panic!("resumed from {text:?}"));
            assert_eq!(resumed.stream, stream);
            let mut replayed = 0;
            while let Ok(ev) = resumed.rx.try_recv() {
                let (s, st, seq) = parse_event_id(&ev.event_id)
                    .unwrap_or_else(|| panic!("replayed id {:?} does not parse", ev.event_id));
                assert_eq!((s, st), (name, stream));
                assert!(seq > after, "replayed {seq} after {after}");
                replayed += 1;
            }
            assert_eq!(replayed, resumed.replayed);
        }
        Err(ResumeError::Malformed) => {
            assert!(parsed.is_none_or(|(s, _, _)| s != name));
        }
        Err(ResumeError::UnknownStream) => {
            let (_, stream, _) = parsed.unwrap_or_else(|| panic!("unknown stream for {text:?}"));
            assert_ne!(stream, attached.stream);
        }
    }
});
