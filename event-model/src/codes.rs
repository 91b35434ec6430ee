//! Stable, machine-readable error codes and the one mapping from error class to HTTP status.
//!
//! Codes are part of the public contract: clients branch on them, analysts group
//! `rejected_events` by them. Add new ones; never rename or reuse an existing one.

/// What a client should do about an error; each class has exactly one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// 400: the request or event is wrong; resending it unchanged can never succeed.
    Invalid,
    /// 401: credentials are missing.
    Unauthenticated,
    /// 403: credentials or origin are not allowed for this resource.
    Forbidden,
    /// 404: the addressed resource does not exist.
    NotFound,
    /// 408: the request was not received in time (a slow body); resending it may succeed.
    TimedOut,
    /// 409: the request conflicts with the current state (duplicate code, system source).
    Conflict,
    /// 413: the body is larger than the limit; split it.
    TooLarge,
    /// 415: the body's media type or content encoding is not supported.
    UnsupportedMedia,
    /// 429: too many requests; back off and retry after the advertised delay.
    RateLimited,
    /// 503: the collector could not store all the events right now; some may be stored. Resend
    /// the same request after the advertised delay: events already stored are then answered
    /// `duplicate` and not stored twice.
    Unavailable,
}

impl ErrorClass {
    /// The HTTP status code for this class.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorClass::Invalid => 400,
            ErrorClass::Unauthenticated => 401,
            ErrorClass::Forbidden => 403,
            ErrorClass::NotFound => 404,
            ErrorClass::TimedOut => 408,
            ErrorClass::Conflict => 409,
            ErrorClass::TooLarge => 413,
            ErrorClass::UnsupportedMedia => 415,
            ErrorClass::RateLimited => 429,
            ErrorClass::Unavailable => 503,
        }
    }

    /// Whether a client should resend the same request later (network errors count as retryable too).
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::TimedOut | ErrorClass::RateLimited | ErrorClass::Unavailable
        )
    }

    /// The class a client should assume for an HTTP status it received.
    pub const fn from_http_status(status: u16) -> Option<ErrorClass> {
        Some(match status {
            400 => ErrorClass::Invalid,
            401 => ErrorClass::Unauthenticated,
            403 => ErrorClass::Forbidden,
            404 => ErrorClass::NotFound,
            408 => ErrorClass::TimedOut,
            409 => ErrorClass::Conflict,
            413 => ErrorClass::TooLarge,
            415 => ErrorClass::UnsupportedMedia,
            429 => ErrorClass::RateLimited,
            500..=599 => ErrorClass::Unavailable,
            _ => return None,
        })
    }
}

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal => $class:ident, )*) => {
        /// Every ingest error the tracker or the collector can report.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// All codes, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable snake_case code sent on the wire and stored in `rejected_events.reason_code`.
            pub const fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            /// What the client should do about it.
            pub const fn class(self) -> ErrorClass {
                match self { $( ErrorCode::$variant => ErrorClass::$class, )* }
            }

            /// The code for a wire string, if it is one of ours.
            pub fn from_str_code(code: &str) -> Option<ErrorCode> {
                match code { $( $code => Some(ErrorCode::$variant), )* _ => None }
            }
        }
    };
}

error_codes! {
    // Request level.
    /// The body is not valid JSON.
    InvalidJson = "invalid_json" => Invalid,
    /// The body is JSON but not a batch object (`sent_at`, `events`).
    InvalidBatch = "invalid_batch" => Invalid,
    /// The batch has no events.
    EmptyBatch = "empty_batch" => Invalid,
    /// The batch holds more events than allowed.
    TooManyEvents = "too_many_events" => TooLarge,
    /// The (decompressed) body is larger than allowed.
    BodyTooLarge = "body_too_large" => TooLarge,
    /// The Content-Type is not JSON or text/plain.
    UnsupportedMediaType = "unsupported_media_type" => UnsupportedMedia,
    /// The Content-Encoding is neither identity nor gzip.
    UnsupportedEncoding = "unsupported_encoding" => UnsupportedMedia,
    /// The body claims gzip but does not decompress.
    InvalidGzip = "invalid_gzip" => Invalid,
    /// `partner_id` is missing, malformed or names no partner.
    UnknownPartner = "unknown_partner" => Invalid,
    /// A server-to-server request without a partner API key.
    MissingApiKey = "missing_api_key" => Unauthenticated,
    /// A partner API key that matches no partner, or another partner than the batch names.
    InvalidApiKey = "invalid_api_key" => Forbidden,
    /// The collector could not commit all the events of the request (some may be stored);
    /// resending the same batch with the same `event_id`s stores each event once.
    StorageUnavailable = "storage_unavailable" => Unavailable,
    /// Too many requests are waiting to be stored.
    Overloaded = "overloaded" => RateLimited,
    /// The client address or the partner sent more requests than its rate limit allows.
    RateLimited = "rate_limited" => RateLimited,
    /// The body did not arrive within the body read timeout.
    BodyTimeout = "body_timeout" => TimedOut,

    // Event level.
    /// The event is larger than allowed.
    EventTooLarge = "event_too_large" => TooLarge,
    /// The event is not a JSON object.
    InvalidEvent = "invalid_event" => Invalid,
    /// The event has a field the wire format does not define.
    UnknownField = "unknown_field" => Invalid,
    /// A required field is absent.
    MissingField = "missing_field" => Invalid,
    /// A field has the wrong JSON type.
    InvalidFieldType = "invalid_field_type" => Invalid,
    /// `event_id` is not a non-nil UUID.
    InvalidEventId = "invalid_event_id" => Invalid,
    /// `kind` is neither `customer` nor `system`.
    InvalidKind = "invalid_kind" => Invalid,
    /// The event name is empty, has control characters or surrounding whitespace.
    InvalidName = "invalid_name" => Invalid,
    /// The event name is longer than allowed.
    NameTooLong = "name_too_long" => Invalid,
    /// The source code has characters other than letters, digits, `_`, `.` and `-`, or is too long.
    InvalidSourceCode = "invalid_source_code" => Invalid,
    /// The source code is not registered for the partner.
    UnknownSource = "unknown_source" => Invalid,
    /// The source exists but is switched off.
    SourceDisabled = "source_disabled" => Forbidden,
    /// The request's Origin does not match the source's domain.
    OriginNotAllowed = "origin_not_allowed" => Forbidden,
    /// A source with a domain takes browser requests only, and this one had no Origin.
    OriginRequired = "origin_required" => Forbidden,
    /// A customer event without `customer_id` and `anonymous_id`.
    MissingIdentity = "missing_identity" => Invalid,
    /// A system event with `customer_id` or `anonymous_id`.
    IdentityNotAllowed = "identity_not_allowed" => Invalid,
    /// An id (customer, anonymous, session) is empty, too long or has control characters.
    InvalidId = "invalid_id" => Invalid,
    /// A timestamp is not RFC 3339.
    InvalidTimestamp = "invalid_timestamp" => Invalid,
    /// `occurred_at` is later than the batch's `sent_at` by more than the tolerance.
    OccurredInFuture = "occurred_in_future" => Invalid,
    /// The event happened longer ago than the collector accepts.
    OccurredTooLongAgo = "occurred_too_long_ago" => Invalid,
    /// `context` is not a flat JSON object.
    InvalidContext = "invalid_context" => Invalid,
    /// A context key contains a hyphen.
    ContextKeyHyphen = "context_key_hyphen" => Invalid,
    /// A context key is not an identifier (letter or `_` first, then letters, digits, `_`).
    InvalidContextKey = "invalid_context_key" => Invalid,
    /// A context key is longer than allowed.
    ContextKeyTooLong = "context_key_too_long" => Invalid,
    /// The context has more keys than allowed.
    TooManyContextKeys = "too_many_context_keys" => Invalid,
    /// A context value is null, an array or an object.
    InvalidContextValue = "invalid_context_value" => Invalid,
    /// A context string is longer than allowed.
    ContextValueTooLong = "context_value_too_long" => Invalid,
    /// A context number cannot be stored exactly (an integer beyond ±2^53).
    ContextNumberOutOfRange = "context_number_out_of_range" => Invalid,

    // Event catalogue (the partner's declared event types).
    /// A context value of a declared event type's property has the wrong type.
    PropertyTypeMismatch = "property_type_mismatch" => Invalid,
    /// A property the event type requires is absent from the context.
    MissingProperty = "missing_property" => Invalid,
    /// No live event type declares this name, and the partner rejects undeclared events.
    UndeclaredEvent = "undeclared_event" => Invalid,
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert_eq!(ErrorCode::from_str_code(s), Some(*code));
        }
        assert_eq!(ErrorCode::from_str_code("nope"), None);
    }

    #[test]
    fn only_timeout_backoff_and_unavailable_are_retryable() {
        for code in ErrorCode::ALL {
            let class = code.class();
            assert_eq!(
                class.is_retryable(),
                matches!(class.http_status(), 408 | 429 | 503)
            );
            assert_eq!(
                ErrorClass::from_http_status(class.http_status()),
                Some(class)
            );
        }
        assert_eq!(
            ErrorClass::from_http_status(502),
            Some(ErrorClass::Unavailable)
        );
        assert_eq!(ErrorClass::from_http_status(302), None);
    }
}

#[cfg(test)]
mod readme_tests {
    use super::ErrorCode;

    #[test]
    fn the_readme_documents_every_code_with_its_status() {
        let readme = include_str!("../../README.md");
        for code in ErrorCode::ALL {
            let row = format!("| `{}` | {} |", code.as_str(), code.class().http_status());
            assert!(readme.contains(&row), "README lacks the row {row}");
        }
    }
}
