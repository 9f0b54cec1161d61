//! # mcp-hub-actors
//!
//! Every actor of mcp-hub and the pure logic they use. No HTTP server here: the `mcp-hub`
//! crate parses and frames requests and hands them to these actors.
//!
//! ```text
//! client ──HTTP/SSE──▶ (mcp-hub http layer) ──▶ SessionActor ──▶ router ──▶ ServerActor
//!                                                   ▲                          │ bounded queue
//!                                                   └──── UpstreamEvent ◀──────┤ transport
//!                                                                              ▼
//!                                                     upstream (stdio child | streamable HTTP)
//! RegistryActor ◀──▶ Store (file | redis)      Supervisor: registry changes → ServerActors
//! ```
//!
//! - [`registry`]: server definitions and their single writer.
//! - [`supervisor`]: starts, replaces and stops one [`server::ServerActor`] per server.
//! - [`server`]: one upstream: queue, connection, catalog, transports.
//! - [`session`]: one client session: streams, calls in flight, server-to-client requests.
//! - [`router`]: pure mapping of requests to servers (namespacing, cursors, id rewriting).
//! - [`directory`]: the running servers, readable without an actor hop.
//! - [`cluster`]: live hub instances and where a placed server runs.
//! - [`protocol`]: JSON-RPC envelope, versions, error codes.
//! - [`validation`]: tool arguments checked against compiled `inputSchema`s at the hub.

pub mod cluster;
pub mod context;
pub mod directory;
pub mod error;
pub mod nodes;
pub mod protocol;
pub mod ratelimit;
pub mod registry;
pub mod router;
pub mod server;
pub mod session;
pub mod supervisor;
pub mod tasks;
pub mod validation;

pub use context::CallCtx;
pub use error::HubError;
