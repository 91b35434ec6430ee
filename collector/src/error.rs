//! The collector's error type and its one mapping to HTTP responses.
//!
//! The status comes from [`event_model::ErrorClass`], the same table the tracker reads to decide
//! whether to retry, so server and client cannot drift apart.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use event_model::{ErrorClass, ErrorCode, Violation};
use serde::Serialize;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A wire-format or ingest rule was broken.
    #[error("{0}")]
    Ingest(Violation),
    /// The admin token is missing.
    #[error("the admin API needs `Authorization: Bearer <token>`")]
    MissingAdminToken,
    /// The admin token is wrong.
    #[error("the admin token is not valid")]
    InvalidAdminToken,
    /// An admin request body broke a rule.
    #[error("{message}")]
    Invalid {
        /// Machine-readable code.
        code: &'static str,
        /// The offending field (`properties[2].code` for an element of a list).
        field: std::borrow::Cow<'static, str>,
        /// What is wrong.
        message: String,
    },
    /// A segment or campaign definition broke its language's rules (400), or a saved one no
    /// longer fits the partner's catalogue (409): every field-level problem, in the body's
    /// `errors`.
    #[error("{message}")]
    Definition {
        /// Machine-readable code of the whole answer.
        code: &'static str,
        /// 409 (a saved definition gone stale) rather than 400.
        outdated: bool,
        /// What is wrong.
        message: String,
        /// Each problem: `{code, path, message}`, the path inside the definition.
        errors: Vec<FieldProblem>,
    },
    /// The addressed resource does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with current state.
    #[error("{message}")]
    Conflict {
        /// Machine-readable code.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// ClickHouse could not be reached or refused the statement.
    #[error("storage is unavailable: {0}")]
    Storage(#[from] StorageError),
    /// An ingest request's events could not all be committed (some lanes may have committed).
    #[error("events not all stored: {0}")]
    EventsNotStored(StorageError),
    /// Too many requests are waiting for storage.
    #[error("the collector is overloaded; retry later")]
    Overloaded,
    /// The client address or the partner is over its rate limit.
    #[error("too many requests from this {whose}; retry after the Retry-After delay")]
    RateLimited {
        /// `address` or `partner`.
        whose: &'static str,
        /// Whole seconds until a request would pass, sent as `Retry-After`.
        retry_after_secs: u64,
    },
}

/// A failure talking to ClickHouse.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// From the ClickHouse client.
    #[error(transparent)]
    ClickHouse(#[from] clickhouse::error::Error),
    /// A request took longer than the configured timeout.
    #[error("ClickHouse did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// A commit failed; the message is the underlying error, shared by every waiting request.
    #[error("commit failed: {0}")]
    Commit(String),
    /// An earlier insert's outcome is unknown and it could not yet be confirmed ended.
    #[error("insert {0} may still be running; not inserting until it has ended")]
    Unsettled(String),
    /// The sink task is gone (shutting down).
    #[error("the sink is shut down")]
    SinkClosed,
}

/// One field-level problem of a definition, as clients see it: the same shape for segments
/// (`eventline_audience::FieldError`) and campaigns (`eventline_campaigns::FieldError`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// The rule's stable code.
    pub code: &'static str,
    /// Where inside the definition; empty for the whole of it.
    pub path: String,
    /// What is wrong; where a name is wrong, the valid names.
    pub message: String,
}

impl From<eventline_audience::FieldError> for FieldProblem {
    fn from(e: eventline_audience::FieldError) -> FieldProblem {
        FieldProblem {
            code: e.code.as_str(),
            path: e.path,
            message: e.message,
        }
    }
}

impl From<eventline_campaigns::FieldError> for FieldProblem {
    fn from(e: eventline_campaigns::FieldError) -> FieldProblem {
        FieldProblem {
            code: e.code.as_str(),
            path: e.path,
            message: e.message,
        }
    }
}

/// JSON error body: `{"error": {"code", "message", "field", "errors"?}}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// The error.
    pub error: ErrorDetail<'a>,
}

/// One error, as clients see it.
#[derive(Debug, Serialize)]
pub struct ErrorDetail<'a> {
    /// Stable machine-readable code.
    pub code: &'a str,
    /// A sentence for people.
    pub message: String,
    /// The offending field, if any.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub field: &'a str,
    /// Field-level problems of a definition, each `{code, path, message}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<&'a [FieldProblem]>,
}

/// Seconds clients are told to wait (`Retry-After`) after a 503 or 429 built by
/// [`response_for_class`]; a constant, not a setting: long enough for a ClickHouse restart or a
/// full sink queue to clear, short enough that a tracker's buffer does not fill.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 5;

impl ApiError {
    /// The class that decides the status.
    pub fn class(&self) -> ErrorClass {
        match self {
            ApiError::Ingest(v) => v.code.class(),
            ApiError::MissingAdminToken => ErrorClass::Unauthenticated,
            ApiError::InvalidAdminToken => ErrorClass::Forbidden,
            ApiError::Invalid { .. } => ErrorClass::Invalid,
            ApiError::Definition { outdated, .. } => {
                if *outdated {
                    ErrorClass::Conflict
                } else {
                    ErrorClass::Invalid
                }
            }
            ApiError::NotFound(_) => ErrorClass::NotFound,
            ApiError::Conflict { .. } => ErrorClass::Conflict,
            ApiError::Storage(_) | ApiError::EventsNotStored(_) => ErrorClass::Unavailable,
            ApiError::Overloaded | ApiError::RateLimited { .. } => ErrorClass::RateLimited,
        }
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Ingest(v) => v.code.as_str(),
            ApiError::MissingAdminToken => "missing_admin_token",
            ApiError::InvalidAdminToken => "invalid_admin_token",
            ApiError::Invalid { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Definition { code, .. } => code,
            ApiError::NotFound(_) => "not_found",
            ApiError::Storage(_) | ApiError::EventsNotStored(_) => {
                ErrorCode::StorageUnavailable.as_str()
            }
            ApiError::Overloaded => ErrorCode::Overloaded.as_str(),
            ApiError::RateLimited { .. } => ErrorCode::RateLimited.as_str(),
        }
    }

    fn field(&self) -> &str {
        match self {
            ApiError::Ingest(v) => &v.field,
            ApiError::Invalid { field, .. } => field,
            ApiError::Definition { .. } => "definition",
            _ => "",
        }
    }

    fn client_message(&self) -> String {
        match self {
            // Internal details stay in the logs; clients learn what to do.
            ApiError::EventsNotStored(_) => {
                "the events were not all stored; resend the same batch with the same event_ids after Retry-After: events already stored are answered `duplicate` and not stored twice".into()
            }
            ApiError::Storage(_) => {
                "storage is unavailable right now; retry after the Retry-After delay".into()
            }
            other => other.to_string(),
        }
    }
}

/// Builds a response with the status of `class`, adding `Retry-After` where clients should wait.
pub fn response_for_class(class: ErrorClass) -> actix_web::HttpResponseBuilder {
    let status = StatusCode::from_u16(class.http_status()).expect("valid status");
    let mut builder = HttpResponse::build(status);
    if class.is_retryable() {
        builder.insert_header((
            header::RETRY_AFTER,
            HeaderValue::from(DEFAULT_RETRY_AFTER_SECS),
        ));
    }
    builder
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.class().http_status()).expect("valid status")
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Storage(e) | ApiError::EventsNotStored(e) = self {
            tracing::error!(error = %e, "storage failure");
        }
        let mut builder = response_for_class(self.class());
        if let ApiError::RateLimited {
            retry_after_secs, ..
        } = self
        {
            builder.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after_secs)));
        }
        builder.json(ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.client_message(),
                field: self.field(),
                errors: match self {
                    ApiError::Definition { errors, .. } => Some(errors),
                    _ => None,
                },
            },
        })
    }
}
