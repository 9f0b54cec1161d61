//! A bound on what one upstream SSE event may cost: [`bounded`] passes an upstream's SSE
//! body on in whole lines, and ends it with [`SseReadError::TooLarge`] once one event grows
//! past the limit, so a hostile upstream cannot make the hub buffer without end (and the
//! event parser after it only ever sees complete lines, so its work stays linear).

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// Largest SSE event accepted from an upstream (all its lines together).
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Why an upstream SSE body stopped.
#[derive(Debug, thiserror::Error)]
pub enum SseReadError<E> {
    /// The connection failed.
    #[error("{0}")]
    Transport(E),
    /// One event was larger than the limit.
    #[error("an SSE event over {0} bytes (the hub's limit per event)")]
    TooLarge(usize),
}

/// See [`bounded`].
pub struct Bounded<S> {
    inner: S,
    pending: BytesMut,
    /// Bytes (line endings excluded) of the event being read.
    event_bytes: usize,
    /// Bytes of the line being read.
    line_bytes: usize,
    prev: u8,
    max: usize,
    done: bool,
}

/// Wraps an SSE body so no event may exceed `max` bytes; see the module docs.
pub fn bounded<S>(inner: S, max: usize) -> Bounded<S> {
    Bounded {
        inner,
        pending: BytesMut::new(),
        event_bytes: 0,
        line_bytes: 0,
        prev: 0,
        max,
        done: false,
    }
}

impl<S, E> Stream for Bounded<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, SseReadError<E>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let chunk = match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(SseReadError::Transport(e))));
                }
                None => {
                    this.done = true;
                    if this.pending.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(this.pending.split().freeze())));
                }
            };
            let start = this.pending.len();
            this.pending.extend_from_slice(&chunk);
            let mut cut = None;
            for (i, &b) in chunk.iter().enumerate() {
                if b == b'\n' || b == b'\r' {
                    let crlf = b == b'\n' && this.prev == b'\r';
                    if !crlf {
                        if this.line_bytes == 0 {
                            this.event_bytes = 0; // a blank line ends the event
                        }
                        this.line_bytes = 0;
                    }
                    cut = Some(start + i + 1);
                } else {
                    this.line_bytes += 1;
                    this.event_bytes += 1;
                }
                this.prev = b;
            }
            if this.event_bytes > this.max {
                this.done = true;
                this.pending = BytesMut::new();
                return Poll::Ready(Some(Err(SseReadError::TooLarge(this.max))));
            }
            if let Some(cut) = cut {
                return Poll::Ready(Some(Ok(this.pending.split_to(cut).freeze())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use eventsource_stream::Eventsource;
    use futures_util::StreamExt;

    fn body(chunks: &[&str]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        let owned: Vec<Result<Bytes, std::io::Error>> = chunks
            .iter()
            .map(|c| Ok(Bytes::copy_from_slice(c.as_bytes())))
            .collect();
        futures_util::stream::iter(owned)
    }

    #[actix_rt::test]
    async fn events_under_the_limit_pass_whatever_the_chunking() {
        let chunks = [
            "data: ab",
            "cd\r",
            "\n\r\ndata: x\n",
            "\ndata: 12345678\n\n",
        ];
        // The longest line, "data: 12345678", is 14 bytes.
        let events: Vec<String> = bounded(body(&chunks), 16)
            .eventsource()
            .map(|e| e.unwrap().data)
            .collect()
            .await;
        assert_eq!(events, ["abcd", "x", "12345678"]);
    }

    #[actix_rt::test]
    async fn one_event_past_the_limit_ends_the_stream() {
        // One long line, and many short lines of one event: both count.
        for chunks in [
            vec!["data: ok\n\n", "data: 0123456789", "0123456789", "never"],
            vec![
                "data: ok\n\n",
                "data: 1\ndata: 2\n",
                "data: 3\ndata: 4\n",
                "\n",
            ],
        ] {
            let mut s = bounded(body(&chunks), 24).eventsource();
            assert_eq!(s.next().await.unwrap().unwrap().data, "ok");
            let err = s.next().await.unwrap().unwrap_err().to_string();
            assert!(err.contains("over 24 bytes"), "{err}");
            assert!(s.next().await.is_none());
        }
    }
}
