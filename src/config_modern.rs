//! `[modern]`: settings of the MCP 2026-07-28 (stateless) downstream path.

use serde::{Deserialize, Serialize};

/// Modern-client settings (env: `MCP_HUB_MODERN__<KEY>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModernSettings {
    /// Secret that signs `requestState` (HMAC-SHA256). Unset: a random one per process,
    /// which is fine for one instance; instances behind one load balancer need the same.
    pub state_secret: Option<String>,
    /// How long a held upstream request (an `input_required` answer) waits for the
    /// client's retry, in seconds. Afterwards the state is refused as expired and the
    /// upstream call is cancelled.
    pub state_ttl_secs: u64,
    /// `ttlMs` the hub puts on list results of upstreams that give no cache hint.
    pub list_ttl_ms: u64,
    /// How long the bridge waits, after a legacy upstream's first server-to-client request
    /// during a modern call, for more to arrive, so requests the upstream sends together
    /// reach the client in one `input_required` result (milliseconds; 0 = one per round).
    pub input_gather_ms: u64,
}

impl Default for ModernSettings {
    fn default() -> Self {
        Self {
            state_secret: None,
            state_ttl_secs: 60,
            list_ttl_ms: 60_000,
            input_gather_ms: 50,
        }
    }
}
