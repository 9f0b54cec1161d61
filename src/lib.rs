//! # mcp-hub
//!
//! The HTTP surface and the binary of mcp-hub. Requests are parsed and framed here and
//! handed to the actors of [`mcp_hub_actors`], which make every decision.
//!
//! - [`config`]: settings from file and environment, validated.
//! - [`startup`]: builds the actors and the HTTP server; ordered shutdown.
//! - [`routes`]: `/mcp` (Streamable HTTP), `/api` (admin), `/healthz`, `/readyz`.
//! - [`error`]: the one mapping from errors to HTTP and JSON-RPC bodies.
//! - [`metrics`]: the Prometheus recorder and `/metrics`.
//! - [`security`]: Origin/Host checks, admin authentication.
//! - [`telemetry`]: JSON logs through a non-blocking writer; request ids.

pub mod auth;
pub mod cli;
pub mod config;
pub mod config_modern;
pub mod error;
pub mod metrics;
pub mod migrate;
pub mod routes;
pub mod sampling;
pub mod security;
pub mod startup;
pub mod state;
pub mod telemetry;
