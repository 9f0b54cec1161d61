//! One integration test binary: the real hub on loopback, real upstreams (the built-in demo
//! server as a stdio child or over HTTP), real HTTP clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod admin;
mod binary;
mod e2e_clients;
mod eras;
mod faults;
mod hardening;
mod mcp_basics;
mod modern;
mod modern_input;
mod multiplexing;
mod operators;
mod redis;
mod redis_store;
mod rest;
mod resumption;
mod supervision;
mod tasks;
mod tls;
mod traffic;
mod traffic_budget;
mod traffic_time;
mod upstream_sessions;
mod upstreams;
