//! Integration tests against a real ClickHouse server: one binary, a fresh database per test.
//!
//! The server is the one `scripts/clickhouse.sh start` runs (`make test` starts it), or any
//! server named by `EVENTLINE_TEST_CLICKHOUSE_URL`.

mod abuse;
mod admin;
mod campaigns_api;
mod campaigns_channels;
mod campaigns_engine;
mod campaigns_fanout;
mod campaigns_gateways;
mod campaigns_run;
mod campaigns_steps;
mod catalog;
mod common;
mod customers;
mod erasure;
mod first_party;
mod harness;
mod ingest;
mod keys;
mod outage;
mod retention;
mod security;
mod segments_api;
mod segments_oracle;
mod slow_clickhouse;
