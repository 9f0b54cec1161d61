//! [`CallCtx`]: the request context that travels inside every message, so a log line
//! anywhere can be joined to its call.

use std::sync::Arc;

/// Who made a call and under which request id. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CallCtx {
    /// `X-Request-Id` of the client request, or one the hub generated.
    pub request_id: Arc<str>,
    /// The client session, if the call came through one.
    pub session: Option<Arc<str>>,
    /// The caller's user id ("anonymous" without authentication).
    pub user: Arc<str>,
}

impl CallCtx {
    /// A context for work the hub starts itself (handshakes, health checks).
    pub fn internal(what: &str) -> Self {
        Self {
            request_id: Arc::from(format!("hub-{what}-{}", uuid::Uuid::new_v4().simple())),
            session: None,
            user: Arc::from("hub"),
        }
    }
}
