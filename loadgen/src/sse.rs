//! An incremental Server-Sent Events parser (WHATWG "event stream interpretation"), fed
//! with whatever chunks the HTTP body yields. Events split across chunks are reassembled.
//!
//! Differences from a browser, on purpose: an event with an `id` but empty `data` (the MCP
//! 2025-11-25 priming event) is dispatched so callers can see it, and a lone `\r` is not a
//! line break (no MCP server sends one; `\r\n` is handled).

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` field (absent means "message").
    pub event: Option<String>,
    /// `id:` field.
    pub id: Option<String>,
    /// `data:` lines joined with `\n`.
    pub data: String,
    /// `retry:` field in milliseconds.
    pub retry: Option<u64>,
}

/// Parser state between chunks.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    current: SseEvent,
    has_data: bool,
    has_fields: bool,
    comments: u64,
}

impl SseParser {
    /// A fresh parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Comment lines seen so far (keep-alives).
    pub fn comments(&self) -> u64 {
        self.comments
    }

    /// Feeds a chunk; complete events are appended to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            let (head, tail) = rest.split_at(pos);
            rest = &tail[1..];
            if self.line.is_empty() {
                self.process_line(head, out);
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                self.process_line(&line, out);
            }
        }
        self.line.extend_from_slice(rest);
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            self.comments += 1;
            return;
        }
        let (name, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match name {
            b"data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(&value);
                self.has_data = true;
                self.has_fields = true;
            }
            b"event" => {
                self.current.event = Some(value.into_owned());
                self.has_fields = true;
            }
            // An id containing NUL is ignored (WHATWG).
            b"id" if !value.contains('\0') => {
                self.current.id = Some(value.into_owned());
                self.has_fields = true;
            }
            b"retry" => {
                if let Ok(ms) = value.parse::<u64>() {
                    self.current.retry = Some(ms);
                    self.has_fields = true;
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_fields {
            out.push(std::mem::take(&mut self.current));
        }
        self.current = SseEvent::default();
        self.has_data = false;
        self.has_fields = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_chunks(text: &str, size: usize) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for chunk in text.as_bytes().chunks(size) {
            p.feed(chunk, &mut out);
        }
        out
    }

    /// What the hub sends for a POST answered as SSE: retry hint, priming event, a
    /// notification, the response. Every chunking must give the same events.
    #[test]
    fn hub_style_stream_in_any_chunking() {
        let text = "retry: 1500\n\nid: s1:0\ndata:\n\n: keep-alive\n\nevent: message\nid: s1:1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\r\nevent: message\r\nid: s1:2\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\r\ndata: \"result\":{}}\r\n\r\n";
        let whole = parse_in_chunks(text, text.len());
        for size in [1, 2, 3, 7, 64] {
            assert_eq!(parse_in_chunks(text, size), whole, "chunk size {size}");
        }
        assert_eq!(whole.len(), 4, "{whole:?}");
        assert_eq!(whole[0].retry, Some(1500));
        assert_eq!(whole[1].id.as_deref(), Some("s1:0"));
        assert_eq!(whole[1].data, "");
        assert_eq!(whole[2].event.as_deref(), Some("message"));
        assert_eq!(whole[3].id.as_deref(), Some("s1:2"));
        assert_eq!(
            whole[3].data,
            "{\"jsonrpc\":\"2.0\",\"id\":7,\n\"result\":{}}"
        );
        let v: serde_json::Value = serde_json::from_str(&whole[3].data).unwrap_or_default();
        assert_eq!(v["id"], 7);
    }

    #[test]
    fn comments_are_counted_not_dispatched_and_partial_events_wait() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.feed(b": ping\n\n: ping\n\ndata: {\"a\"", &mut out);
        assert!(out.is_empty());
        assert_eq!(p.comments(), 2);
        p.feed(b":1}\n", &mut out);
        assert!(out.is_empty(), "no blank line yet");
        p.feed(b"\n", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, "{\"a\":1}");
        assert_eq!(out[0].event, None);
    }

    #[test]
    fn field_without_colon_and_space_rules() {
        let out = parse_in_chunks("data\ndata:  two spaces\nid:x\n\n", 5);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, "\n two spaces");
        assert_eq!(out[0].id.as_deref(), Some("x"));
    }
}
