//! HTTP: routes, shared state, and the mapping of extractor failures to our error bodies.

pub mod admin;
mod body;
pub mod campaigns;
pub mod catalog;
pub mod channels;
pub mod client_ip;
pub mod customers;
pub mod ingest;
pub mod ops;
pub mod rate_limit;
pub mod segments;
pub mod tracker_files;

use std::sync::Arc;

use actix_web::{web, HttpResponse};

use crate::admin_token::AdminTokens;
use crate::config::Config;
use crate::erasure::Erasure;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::sink::{Quarantine, Sink};
use crate::store::Store;
use rate_limit::RateLimits;

/// What every handler can reach.
pub struct AppState {
    /// Configuration.
    pub config: Arc<Config>,
    /// Accepted admin tokens.
    pub admin_tokens: AdminTokens,
    /// Erasure jobs.
    pub erasure: Arc<Erasure>,
    /// Partners and sources.
    pub registry: Arc<Registry>,
    /// The batching writer of events.
    pub sink: Sink,
    /// The best-effort writer of rejected rows.
    pub quarantine: Quarantine,
    /// ClickHouse (readiness).
    pub store: Store,
    /// Metrics.
    pub metrics: Metrics,
    /// Per-client-IP and per-partner request limits of the ingest routes.
    pub limits: Arc<RateLimits>,
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("route"))
}

/// Registers every route and the JSON/path error handlers; the public routes also under
/// `prefix` (`EVENTLINE_PUBLIC_PATH_PREFIX`) when it is not empty.
pub fn configure(cfg: &mut web::ServiceConfig, prefix: &str) {
    public_routes(cfg, "");
    if !prefix.is_empty() {
        public_routes(cfg, prefix);
    }
    routes(cfg);
}

/// What a browser or app reaches: client ingest and the tracker files. Admin and server routes
/// never sit under the public prefix: a site's reverse proxy should expose only these.
fn public_routes(cfg: &mut web::ServiceConfig, prefix: &str) {
    cfg.route(
        &format!("{prefix}/v1/events"),
        web::post().to(ingest::client_events),
    )
    .route(
        &format!("{prefix}/v1/events"),
        web::method(actix_web::http::Method::OPTIONS).to(ingest::preflight),
    )
    .route(
        &format!("{prefix}/tracker/{{version}}/{{file:.+}}"),
        web::get().to(tracker_files::serve),
    );
}

/// Largest JSON body of the admin and server routes, unless a route sets its own.
pub const ADMIN_JSON_LIMIT: usize = 64 * 1024;

/// JSON bodies of at most `limit` bytes; a body that is too long or not the endpoint's shape is
/// `400 invalid_request_body`.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _| {
            ApiError::Invalid {
                code: "invalid_request_body",
                field: "body".into(),
                message: format!("the request body is not what this endpoint expects: {err}"),
            }
            .into()
        })
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config(ADMIN_JSON_LIMIT))
        .route("/healthz", web::get().to(ops::healthz))
        .route("/readyz", web::get().to(ops::readyz))
        .route("/metrics", web::get().to(ops::metrics))
        .route("/v1/server/events", web::post().to(ingest::server_events))
        .route(
            "/v1/server/customers/{customer_id}",
            web::put().to(customers::upsert_profile),
        )
        .configure(admin::routes)
        .default_service(web::to(not_found));
}
