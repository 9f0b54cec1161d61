//! The ServerActor's handshake with a fresh connection: era detection (through
//! [`Conn::handshake`]), the list loads, and the spec's client fallback from a Streamable
//! HTTP URL that refuses `initialize` to legacy HTTP+SSE. The detected era is kept on the
//! actor across reconnects and forgotten when a handshake fails. A child module of `actor`
//! so it can reach the actor's state; kept apart to keep that file small.

use actix::prelude::*;

use super::{describe, ServerActor, HANDSHAKE_TIMEOUT};
use crate::error::HubError;
use crate::registry::TransportKind;
use crate::server::transport::modern::UpstreamEra;
use crate::server::transport::{refused_streamable_http, sse::SseConn, Conn};

impl ServerActor {
    /// Handshake and list loading for a fresh connection of generation `generation`.
    pub(super) fn handshake(
        &mut self,
        ctx: &mut Context<Self>,
        generation: u64,
        conn: Conn,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let server = self.id.clone();
        let handshake_conn = conn.clone();
        // A peer hub that runs a placed server is spoken to as before (legacy): the cluster's
        // forwarding relies on its sessions.
        let known = if self.forwarded {
            Some(UpstreamEra::Legacy)
        } else {
            self.era
        };
        // The spec's client fallback: a Streamable HTTP URL that refuses `initialize` with
        // 400/404/405 may be a legacy HTTP+SSE endpoint.
        let fallback = (matches!(conn, Conn::Http(_))
            && self.def.transport == TransportKind::StreamableHttp
            && !self.forwarded)
            .then(|| (self.def.clone(), self.open_args(ctx, generation)));
        let work = async move {
            let _permit = permit;
            match handshake_conn.handshake(&server, known).await {
                Ok(mut catalog) => {
                    handshake_conn.load_lists(&server, &mut catalog).await?;
                    Ok::<_, HubError>((None, catalog))
                }
                Err(e) if fallback.is_some() && refused_streamable_http(&e) => {
                    let Some((def, args)) = fallback else {
                        return Err(e);
                    };
                    tracing::info!(event = "upstream.era.probe", server = %server, outcome = "streamable HTTP refused; trying legacy HTTP+SSE", error = %e, "upstream.era.probe");
                    let sse = SseConn::open(&def, args).map(Conn::Sse)?;
                    let attempt = async {
                        let mut catalog = sse.handshake(&server, None).await?;
                        sse.load_lists(&server, &mut catalog).await?;
                        Ok::<_, HubError>(catalog)
                    };
                    match attempt.await {
                        Ok(catalog) => Ok((Some(sse), catalog)),
                        Err(sse_err) => {
                            sse.close();
                            Err(HubError::UpstreamProtocol {
                                server: server.to_string(),
                                detail: format!(
                                    "{} (legacy HTTP+SSE fallback: {})",
                                    describe(&e),
                                    describe(&sse_err)
                                ),
                            })
                        }
                    }
                }
                Err(e) => Err(e),
            }
        };
        ctx.spawn(
            tokio::time::timeout(HANDSHAKE_TIMEOUT, work)
                .into_actor(self)
                .map(move |res, act, ctx| {
                    if act.generation != generation {
                        if let Ok(Ok((Some(replacement), _))) = &res {
                            replacement.close();
                        }
                        conn.close();
                        return;
                    }
                    match res {
                        Ok(Ok((replacement, catalog))) => {
                            let conn = match replacement {
                                Some(sse) => {
                                    conn.close();
                                    act.sse_fallback = true;
                                    sse
                                }
                                None => conn,
                            };
                            act.era = Some(conn.era());
                            act.on_ready(conn, catalog)
                        }
                        failed => {
                            let reason = match failed {
                                Ok(Err(e)) => format!("handshake failed: {}", describe(&e)),
                                _ => format!(
                                    "handshake timed out after {}s",
                                    HANDSHAKE_TIMEOUT.as_secs()
                                ),
                            };
                            act.era = None;
                            act.sse_fallback = false;
                            conn.close();
                            act.on_failure(ctx, generation, reason);
                        }
                    }
                }),
        );
    }
}
