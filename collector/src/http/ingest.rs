//! `POST /v1/events` (browsers and apps) and `POST /v1/server/events` (partner back ends).

use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use event_model::{ErrorCode, Violation};
use serde::Serialize;

use super::body::{check_media_type, read_body};
use super::AppState;
use crate::error::{response_for_class, ApiError, ErrorDetail};
use crate::ingest::{prepare, reject_request, EventResult, IngestPath, RequestMeta};
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

fn client_ip(req: &HttpRequest, state: &AppState) -> String {
    if !state.config.keep_client_ip {
        return String::new();
    }
    let forwarded = state
        .config
        .trust_forwarded_for
        .then(|| header_str(req, header::HeaderName::from_static("x-forwarded-for")))
        .flatten()
        .and_then(|v| v.split(',').next().map(|ip| ip.trim().to_string()));
    forwarded
        .or_else(|| req.peer_addr().map(|a| a.ip().to_string()))
        .unwrap_or_default()
}

fn now_ms() -> i64 {
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

/// Browsers may read every ingest answer, errors included: a tracker that cannot see a 403
/// would take it for a network failure and retry forever. The answer carries no secrets.
fn with_cors(req: &HttpRequest, mut response: HttpResponse) -> HttpResponse {
    if let Some(origin) = req.headers().get(header::ORIGIN).cloned() {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

fn submit_error(error: SubmitError) -> ApiError {
    match error {
        SubmitError::Overloaded => ApiError::Overloaded,
        SubmitError::Storage(e) => ApiError::Storage(e),
    }
}

async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: IngestPath,
) -> Result<HttpResponse, ApiError> {
    let mut meta = RequestMeta {
        path,
        authenticated_partner: None,
        origin: header_str(&req, header::ORIGIN),
        user_agent: header_str(&req, header::USER_AGENT).unwrap_or_default(),
        client_ip: client_ip(&req, &state),
        received_at_ms: now_ms(),
    };
    let snapshot = state.registry.snapshot();
    if path == IngestPath::Server {
        // Unauthenticated requests are not events of any partner; they are logged and counted,
        // not stored, so nobody can fill rejected_events without a key.
        let key = bearer(&req).ok_or_else(|| {
            ApiError::Ingest(
                Violation::new(ErrorCode::MissingApiKey, "authorization")
                    .with_detail("send the partner API key as `Authorization: Bearer <key>`"),
            )
        })?;
        let partner = snapshot.partner_for_api_key(&key).ok_or_else(|| {
            ApiError::Ingest(Violation::new(ErrorCode::InvalidApiKey, "authorization"))
        })?;
        meta.authenticated_partner = Some(partner);
    }

    let body = match check_media_type(&req) {
        Ok(()) => read_body(&req, payload, state.config.max_body_bytes).await,
        Err(v) => Err(v),
    };
    let prepared = body
        .map_err(|v| reject_request(&meta, v, ""))
        .and_then(|body| prepare(&body, &meta, &snapshot));
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(rejection) => {
            // Best effort and never waited for: the answer is the rejection, whatever storage does.
            state.quarantine.record(vec![*rejection.row]);
            state
                .metrics
                .rejected
                .with_label_values(&[rejection.violation.code.as_str()])
                .inc();
            return Err(ApiError::Ingest(rejection.violation));
        }
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
    let message = error.map(|v| v.message());
    Ok(builder.json(BatchResponse {
        accepted,
        rejected,
        results: &results,
        error: error.map(|v| ErrorDetail {
            code: v.code.as_str(),
            message: message.clone().unwrap_or_default(),
            field: &v.field,
        }),
    }))
}

/// `POST /v1/events`.
pub async fn client_events(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let response = match handle(req.clone(), payload, state, IngestPath::Client).await {
        Ok(r) => r,
        Err(e) => actix_web::ResponseError::error_response(&e),
    };
    with_cors(&req, response)
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
    if !state.registry.snapshot().any_source_allows_origin(&origin) {
        let e = ApiError::Ingest(
            Violation::new(ErrorCode::OriginNotAllowed, "origin")
                .with_detail(format!("no active source accepts origin `{origin}`")),
        );
        return actix_web::ResponseError::error_response(&e);
    }
    with_cors(
        &req,
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
