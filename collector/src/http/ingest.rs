//! `POST /v1/events` (browsers and apps) and `POST /v1/server/events` (partner back ends).

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use event_model::{ErrorCode, Violation};
use serde::Serialize;

use super::body::{check_media_type, read_body};
use super::rate_limit::{Limited, Scope};
use super::{client_ip, AppState};
use crate::config::Config;
use crate::error::{response_for_class, ApiError, ErrorDetail};
use crate::ingest::{
    capped_message, judge, open, reject_request, EventResult, IngestPath, RequestMeta,
    RequestRejection,
};
use crate::registry::Snapshot;
use crate::sink::SubmitError;

/// The answer to a batch that was judged event by event.
#[derive(Debug, Serialize)]
struct BatchResponse<'a> {
    accepted: usize,
    rejected: usize,
    results: &'a [EventResult],
    /// Present when nothing was accepted: the first rejection, which also set the status.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail<'a>>,
}

fn header_str(req: &HttpRequest, name: header::HeaderName) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The client's full address (see [`client_ip::resolve`]); `None` only without a TCP peer.
fn client_address(req: &HttpRequest, config: &Config) -> Option<IpAddr> {
    let forwarded: Vec<&str> = req
        .headers()
        .get_all(header::HeaderName::from_static("x-forwarded-for"))
        .filter_map(|v| v.to_str().ok())
        .collect();
    client_ip::resolve(
        req.peer_addr().map(|a| a.ip()),
        &forwarded,
        &config.trusted_proxies.0,
    )
}

pub(super) fn limited(state: &AppState, limited: Limited) -> ApiError {
    state
        .metrics
        .rate_limited
        .with_label_values(&[limited.scope.label()])
        .inc();
    ApiError::RateLimited {
        whose: match limited.scope {
            Scope::Ip => "address",
            Scope::Partner => "partner",
        },
        retry_after_secs: limited.retry_after_secs,
    }
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = header_str(req, header::AUTHORIZATION)?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// A page on an origin some active source admits may read every ingest answer, errors
/// included: a tracker that cannot see a 403 would take it for a network failure and retry.
/// Other origins get no CORS headers at all. The answer varies by Origin either way.
fn with_cors(req: &HttpRequest, snapshot: &Snapshot, mut response: HttpResponse) -> HttpResponse {
    let admitted = req
        .headers()
        .get(header::ORIGIN)
        .filter(|o| {
            o.to_str()
                .is_ok_and(|o| snapshot.any_source_allows_origin(o))
        })
        .cloned();
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = admitted {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    response
}

pub(super) fn submit_error(error: SubmitError) -> ApiError {
    match error {
        SubmitError::Overloaded => ApiError::Overloaded,
        SubmitError::Storage(e) => ApiError::EventsNotStored(e),
    }
}

/// The partner of a server request's API key.
pub(super) fn authenticate(
    req: &HttpRequest,
    snapshot: &Snapshot,
) -> Result<uuid::Uuid, Violation> {
    let key = bearer(req).ok_or_else(|| {
        Violation::new(ErrorCode::MissingApiKey, "authorization")
            .with_detail("send the partner API key as `Authorization: Bearer <key>`")
    })?;
    snapshot
        .partner_for_api_key(&key)
        .ok_or_else(|| Violation::new(ErrorCode::InvalidApiKey, "authorization"))
}

/// Answers a request refused as a whole. It is stored in `rejected_events` when its partner is
/// established; a request of nobody in particular is only counted, so it cannot fill the table.
async fn refuse(state: &AppState, rejection: RequestRejection) -> Result<HttpResponse, ApiError> {
    let code = rejection.violation.code.as_str();
    match rejection.row {
        // Best effort and never waited for: the answer is the rejection, whatever storage does.
        Some(row) => state.quarantine.record(vec![*row]),
        None => state
            .metrics
            .requests_not_stored
            .with_label_values(&[code])
            .inc(),
    }
    state.metrics.rejected.with_label_values(&[code]).inc();
    Err(ApiError::Ingest(rejection.violation))
}

async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: IngestPath,
) -> Result<HttpResponse, ApiError> {
    // Limits first, before anything is read: the address's now, the partner's once it is known.
    let address = client_address(&req, &state.config);
    if let Some(ip) = address {
        state.limits.check_ip(ip).map_err(|l| limited(&state, l))?;
    }
    let mut meta = RequestMeta {
        path,
        authenticated_partner: None,
        origin: header_str(&req, header::ORIGIN),
        user_agent: header_str(&req, header::USER_AGENT).unwrap_or_default(),
        client_ip: client_ip::stored(address, state.config.client_ip),
        received_at_ms: now_ms(),
    };
    let snapshot = state.registry.snapshot();
    if path == IngestPath::Server {
        let partner = match authenticate(&req, &snapshot) {
            Ok(partner) => partner,
            Err(v) => return refuse(&state, reject_request(&meta, v, "", None)).await,
        };
        meta.authenticated_partner = Some(partner);
        state
            .limits
            .check_partner(partner)
            .map_err(|l| limited(&state, l))?;
    }

    let config = &state.config;
    let body = match check_media_type(&req) {
        Ok(()) => read_body(&req, payload, config.max_body_bytes, config.body_timeout()).await,
        Err(v) => Err(v),
    };
    let body = match body {
        Ok(body) => body,
        Err(v) => {
            let rejection = reject_request(&meta, v, "", meta.authenticated_partner);
            return refuse(&state, rejection).await;
        }
    };
    let opened = open(&body, &meta, &snapshot);
    if meta.authenticated_partner.is_none() {
        let partner = match &opened {
            Ok(opened) => Some(opened.partner_id),
            Err(rejection) => rejection.partner_id,
        };
        if let Some(partner) = partner {
            state
                .limits
                .check_partner(partner)
                .map_err(|l| limited(&state, l))?;
        }
    }
    let prepared = match opened {
        Ok(opened) => judge(opened, &meta, &snapshot),
        Err(rejection) => return refuse(&state, rejection).await,
    };

    let mut results = prepared.results;
    let accepted = prepared.events.len();
    let rejected = prepared.rejected.len();
    let rejected_codes: Vec<&'static str> = results.iter().filter_map(|r| r.code).collect();
    let already = state
        .sink
        .submit(prepared.events)
        .await
        .map_err(submit_error)?;
    // Recorded only with a final answer: a batch answered 503 or 429 comes back unchanged, and
    // its rejections are recorded then, once.
    state.quarantine.record(prepared.rejected);
    for code in rejected_codes {
        state.metrics.rejected.with_label_values(&[code]).inc();
    }
    if !already.is_empty() {
        for result in results.iter_mut().filter(|r| r.status == "accepted") {
            if let Ok(id) = uuid::Uuid::parse_str(&result.event_id) {
                result.duplicate = already.contains(&(prepared.partner_id, id));
            }
        }
    }

    let first = prepared.first_rejection;
    let (mut builder, error) = match (&first, accepted) {
        (Some(v), 0) => (response_for_class(v.code.class()), Some(v)),
        _ => (HttpResponse::build(StatusCode::OK), None),
    };
    let message = error.map(capped_message);
    Ok(builder.json(BatchResponse {
        accepted,
        rejected,
        results: &results,
        error: error.map(|v| ErrorDetail {
            code: v.code.as_str(),
            message: message.clone().unwrap_or_default(),
            field: &v.field,
            errors: None,
        }),
    }))
}

/// `POST /v1/events`.
pub async fn client_events(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let snapshot = state.registry.snapshot();
    let response = match handle(req.clone(), payload, state, IngestPath::Client).await {
        Ok(r) => r,
        Err(e) => actix_web::ResponseError::error_response(&e),
    };
    with_cors(&req, &snapshot, response)
}

/// `POST /v1/server/events`.
pub async fn server_events(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    handle(req, payload, state, IngestPath::Server).await
}

/// `OPTIONS /v1/events`: a preflight names no source, so it is allowed when the origin matches
/// the domain of any active source; the POST itself then checks the event's own source.
pub async fn preflight(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let origin = header_str(&req, header::ORIGIN).unwrap_or_default();
    let snapshot = state.registry.snapshot();
    if !snapshot.any_source_allows_origin(&origin) {
        let e = ApiError::Ingest(
            Violation::new(ErrorCode::OriginNotAllowed, "origin").with_detail(
                "no active source admits this origin; set the site's domain on its source",
            ),
        );
        let mut response = actix_web::ResponseError::error_response(&e);
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Origin"));
        return response;
    }
    with_cors(
        &req,
        &snapshot,
        HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS"))
            .insert_header((
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "Content-Type, Content-Encoding",
            ))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
            .finish(),
    )
}
