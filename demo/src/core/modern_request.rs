//! The 2026-07-28 request path of [`Server`]: a request carrying modern `_meta` runs on a
//! throwaway session built from that `_meta`; `tools/call` gets MRTR bookkeeping so that
//! server-to-client requests become an `input_required` result (see [`crate::modern`]).
//! A child module of `core` so it can reach the session's state.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use super::{
    codes, error_response, id_key, lock, progress_token, response, Ctx, Outbound, RpcError, Server,
};
use crate::{modern, tools};

impl Server {
    /// A 2026-07-28 request: runs on a throwaway session built from its `_meta`.
    pub(super) fn on_modern_request(
        &self,
        id: Value,
        method: String,
        params: Value,
        out: mpsc::UnboundedSender<Outbound>,
    ) {
        let reply = |r: Result<Value, RpcError>| {
            let msg = match r {
                Ok(v) => response(&id, v),
                Err(e) => error_response(&id, &e),
            };
            let _ = out.send(Outbound::Message(msg));
        };
        let meta = match modern::request_meta(&params).map(modern::read_meta) {
            Some(Ok(m)) => m,
            Some(Err(e)) => return reply(Err(e)),
            None => return reply(Err(RpcError::invalid_params("missing _meta"))),
        };
        if modern::is_removed(&method) {
            return reply(Err(RpcError::new(
                codes::METHOD_NOT_FOUND,
                format!(
                    "Method not found: {method} (removed in {})",
                    modern::MODERN_VERSION
                ),
            )));
        }
        let shared = self.inner.shared.clone();
        let eph = Server::new(shared.clone(), self.inner.unsolicited.clone());
        {
            let mut st = lock(&eph.inner.state);
            st.protocol_version = modern::MODERN_VERSION.to_string();
            st.client_capabilities = meta.capabilities;
            st.log_level = meta.log_level;
        }
        match method.as_str() {
            "server/discover" => reply(Ok(modern::finish(&method, modern::discover(shared.era)))),
            "tools/call" => {
                let mrtr = match shared.states.begin(&params) {
                    Ok(m) => Arc::new(m),
                    Err(e) => return reply(Err(e)),
                };
                let ctx = Ctx {
                    server: eph,
                    id: id.clone(),
                    out,
                    progress_token: progress_token(&params),
                    mrtr: Some(mrtr.clone()),
                };
                let key = id_key(&id);
                let task_key = key.clone();
                let owner = self.clone();
                let mut running = lock(&self.inner.running);
                let handle = tokio::spawn(async move {
                    let result = tools::call(&ctx, &params).await;
                    lock(&owner.inner.running).remove(&task_key);
                    let asked = mrtr.asked();
                    let msg = if !asked.is_empty() {
                        let state = shared.states.issue(&params, &mrtr);
                        response(&ctx.id, modern::input_required(asked, &state))
                    } else {
                        match result {
                            Ok(r) => response(&ctx.id, modern::finish("tools/call", r)),
                            Err(e) => error_response(&ctx.id, &e),
                        }
                    };
                    let _ = ctx.out.send(Outbound::Message(msg));
                });
                running.insert(key, handle.abort_handle());
            }
            _ => reply(
                eph.dispatch(&method, &params)
                    .map(|r| modern::finish(&method, r)),
            ),
        }
    }
}
