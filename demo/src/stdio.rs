//! Stdio transport: newline-delimited JSON-RPC on stdin/stdout.
//!
//! One reader loop feeds [`Server::handle`]; one writer task owns stdout and
//! writes one compact JSON object per line, so concurrent handlers never
//! interleave output. Diagnostics go to stderr only.

use std::io;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, oneshot};

use crate::core::{codes, error_response, Outbound, RpcError, Server, Shared};

/// How long in-flight requests may still finish after stdin closes.
const EOF_GRACE: Duration = Duration::from_millis(250);

/// Runs the stdio server on a current-thread runtime until stdin closes.
pub(crate) fn run(era: crate::Era) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(serve_with(
        tokio::io::stdin(),
        tokio::io::stdout(),
        Shared::with_era(era),
    ));
    // Abandon handlers still running (e.g. a long sleep) instead of waiting.
    rt.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Serves one session on the given byte streams until `input` reaches EOF.
pub async fn serve<R, W>(input: R, output: W) -> io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    serve_with(input, output, Shared::new()).await
}

/// Like [`serve`], with the given process-wide state (e.g. [`Shared::with_era`]).
pub async fn serve_with<R, W>(input: R, output: W, shared: std::sync::Arc<Shared>) -> io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel::<Outbound>();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let writer = tokio::spawn(write_loop(output, rx, stop_rx));
    let server = Server::new(shared, tx.clone());

    let mut reader = BufReader::new(input);
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            break;
        }
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Value>(trimmed) {
            Ok(msg) => server.handle(msg, tx.clone()),
            Err(e) => {
                let err = RpcError::new(codes::PARSE_ERROR, format!("Parse error: {e}"));
                let _ = tx.send(Outbound::Message(error_response(&Value::Null, &err)));
            }
        }
    }
    // stdin closed: give handlers that are about to finish a short grace
    // period (so `printf … | demo` gets its answers), then flush and stop.
    let grace = tokio::time::Instant::now() + EOF_GRACE;
    while server.in_flight() > 0 && tokio::time::Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let _ = stop_tx.send(());
    match writer.await {
        Ok(r) => r,
        Err(e) => Err(io::Error::other(e)),
    }
}

async fn write_loop<W>(
    output: W,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    mut stop: oneshot::Receiver<()>,
) -> io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut out = BufWriter::new(output);
    let mut buf = Vec::with_capacity(4096);
    loop {
        let first = tokio::select! {
            biased;
            m = rx.recv() => m,
            _ = &mut stop => None,
        };
        let Some(first) = first else {
            // Stop requested: drain whatever is already queued.
            while let Ok(m) = rx.try_recv() {
                write_one(&mut out, &mut buf, m).await?;
            }
            out.flush().await?;
            return Ok(());
        };
        write_one(&mut out, &mut buf, first).await?;
        while let Ok(m) = rx.try_recv() {
            write_one(&mut out, &mut buf, m).await?;
        }
        out.flush().await?;
    }
}

async fn write_one<W>(out: &mut BufWriter<W>, buf: &mut Vec<u8>, item: Outbound) -> io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    let Outbound::Message(v) = item else {
        return Ok(()); // stream control has no meaning on stdio
    };
    buf.clear();
    serde_json::to_writer(&mut *buf, &v).map_err(io::Error::other)?;
    buf.push(b'\n');
    out.write_all(buf).await
}
