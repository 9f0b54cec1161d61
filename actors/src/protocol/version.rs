//! Protocol revisions the hub speaks and how a client's requested version is negotiated.

/// Session-based revisions the hub serves downstream, newest first.
pub const SUPPORTED: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The revision the hub offers upstream and answers with when a client asks for one it
/// does not know.
pub const LATEST: &str = "2025-11-25";

/// Assumed when a request carries no `MCP-Protocol-Version` header and nothing else says.
pub const DEFAULT_WITHOUT_HEADER: &str = "2025-03-26";

/// Picks the version to answer an `initialize` with: the client's if supported, else ours.
pub fn negotiate(requested: Option<&str>) -> &'static str {
    requested
        .and_then(|r| SUPPORTED.iter().find(|v| **v == r).copied())
        .unwrap_or(LATEST)
}

/// Whether a version string names a revision the hub serves.
pub fn is_supported(v: &str) -> bool {
    SUPPORTED.contains(&v)
}

/// Whether this revision supports JSON-RPC batches on receive (only 2025-03-26 does).
pub fn accepts_batches(v: &str) -> bool {
    v == "2025-03-26"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_echoes_known_and_falls_back_to_latest() {
        assert_eq!(negotiate(Some("2024-11-05")), "2024-11-05");
        assert_eq!(negotiate(Some("1999-01-01")), LATEST);
        assert_eq!(negotiate(None), LATEST);
    }
}
