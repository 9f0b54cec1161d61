//! Cluster view for placement: which hub instances are alive, where they listen, what labels
//! they carry, and which of them may run a server whose definition has a `placement`.
//!
//! The NodeActor owns the live-node list (it reads it from Redis after every heartbeat) and
//! publishes it through a `watch` channel; ServerActors read snapshots when they pick the
//! node to forward a placed server's calls to. Without Redis there is no cluster and a
//! placement is ignored (every server runs locally).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

use crate::registry::{Placement, ServerDef, TransportKind};

/// Header a forwarding node adds to the calls it sends to a peer (its own node id), for logs.
pub const FORWARDED_BY: &str = "x-mcp-hub-forwarded-by";

/// One live hub instance as its heartbeat describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node id.
    pub id: String,
    /// Base URL other instances reach it at (`http://host:port`); absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Its labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// "ready" or "stopping".
    #[serde(default)]
    pub status: String,
}

/// This node in the cluster, shared by every ServerActor through `ServerEnv`.
#[derive(Clone)]
pub struct Cluster {
    /// This node.
    pub me: NodeInfo,
    /// Bearer token sent to peers (`cluster.token`).
    pub token: Option<String>,
    /// Live nodes (this one included), refreshed by the NodeActor every heartbeat.
    pub nodes: watch::Receiver<Arc<Vec<NodeInfo>>>,
}

impl Placement {
    /// Whether `node` may run a server with this placement.
    pub fn admits(&self, node: &NodeInfo) -> bool {
        self.is_empty()
            || self.nodes.contains(&node.id)
            || self.labels.iter().any(|l| node.labels.contains(l))
    }
}

impl Cluster {
    /// Whether this node runs `def` itself (no placement, or a placement that admits it).
    pub fn runs_locally(&self, def: &ServerDef) -> bool {
        def.placement.admits(&self.me)
    }

    /// The peer to forward `def`'s calls to: a live, ready node that the placement admits
    /// and that has a URL, preferring the order of `placement.nodes`, then node id; nodes in
    /// `avoid` (recent failures) only when no other is left.
    pub fn pick(&self, def: &ServerDef, avoid: &[String]) -> Option<NodeInfo> {
        let nodes = self.nodes.borrow().clone();
        let rank = |n: &NodeInfo| {
            def.placement
                .nodes
                .iter()
                .position(|p| *p == n.id)
                .unwrap_or(usize::MAX)
        };
        let mut eligible: Vec<&NodeInfo> = nodes
            .iter()
            .filter(|n| n.id != self.me.id && n.url.is_some() && n.status != "stopping")
            .filter(|n| def.placement.admits(n))
            .collect();
        eligible.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.id.cmp(&b.id)));
        eligible
            .iter()
            .find(|n| !avoid.contains(&n.id))
            .or_else(|| eligible.first())
            .map(|n| (*n).clone())
    }

    /// The definition a forwarding node connects with: the peer's `/mcp/{id}` as a
    /// Streamable HTTP upstream, authenticated with the cluster token.
    pub fn forward_def(&self, def: &ServerDef, peer: &NodeInfo) -> ServerDef {
        let base = peer
            .url
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches('/');
        let mut headers = BTreeMap::new();
        if let Some(token) = &self.token {
            headers.insert("Authorization".to_string(), format!("Bearer {token}"));
        }
        headers.insert(FORWARDED_BY.to_string(), self.me.id.clone());
        ServerDef {
            transport: TransportKind::StreamableHttp,
            url: Some(format!("{base}/mcp/{}", def.id)),
            headers,
            command: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            // The peer keeps the upstream sessions; calls arrive there as the user `cluster`.
            session_mode: Some(crate::registry::SessionMode::Shared),
            ..def.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, labels: &[&str]) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            url: Some(format!("http://{id}:1")),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            status: "ready".into(),
        }
    }

    fn cluster(me: &str, nodes: Vec<NodeInfo>) -> Cluster {
        let (_tx, rx) = watch::channel(Arc::new(nodes));
        Cluster {
            me: node(me, &[]),
            token: Some("t".into()),
            nodes: rx,
        }
    }

    fn placed(nodes: &[&str], labels: &[&str]) -> ServerDef {
        serde_json::from_value(serde_json::json!({
            "id": "s", "transport": "stdio", "command": "x",
            "placement": { "nodes": nodes, "labels": labels }
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn placement_by_id_or_label_with_failover() {
        let c = cluster(
            "b",
            vec![
                node("a", &[]),
                node("b", &[]),
                node("c", &["gpu"]),
                node("d", &[]),
            ],
        );
        let def = placed(&["c", "a"], &[]);
        assert!(!c.runs_locally(&def));
        assert_eq!(c.pick(&def, &[]).map(|n| n.id), Some("c".into()));
        assert_eq!(c.pick(&def, &["c".into()]).map(|n| n.id), Some("a".into()));
        // Every candidate failed recently: still try the preferred one.
        assert_eq!(
            c.pick(&def, &["c".into(), "a".into()]).map(|n| n.id),
            Some("c".into())
        );
        let by_label = placed(&[], &["gpu"]);
        assert_eq!(c.pick(&by_label, &[]).map(|n| n.id), Some("c".into()));
        assert!(c.pick(&placed(&["zz"], &[]), &[]).is_none());
        assert!(c.runs_locally(&placed(&[], &[])));
        assert!(c.runs_locally(&placed(&["b"], &[])));
        let fwd = c.forward_def(&def, &node("c", &[]));
        assert_eq!(fwd.url.as_deref(), Some("http://c:1/mcp/s"));
        assert_eq!(fwd.transport, TransportKind::StreamableHttp);
        assert_eq!(fwd.headers["Authorization"], "Bearer t");
        assert!(fwd.command.is_none());
    }
}
