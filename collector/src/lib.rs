//! Eventline collector: accepts events from trackers and partner back ends, validates them
//! with the shared `event-model` rules, and stores them in ClickHouse in batches without
//! losing or duplicating any.
//!
//! Data path: [`http`] (decode, auth, CORS) → [`ingest`] (pure judging) → [`sink`] (batched,
//! acknowledged commits) → [`store`] (ClickHouse schema and rows). [`registry`] holds partners
//! and sources; [`customers`] and [`segments`] serve the audience.

pub mod admin_token;
pub mod app;
pub mod audit;
pub mod campaigns;
pub mod config;
pub mod customers;
pub mod erasure;
pub mod error;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod registry;
pub mod retention;
pub mod segments;
pub mod sink;
pub mod store;
