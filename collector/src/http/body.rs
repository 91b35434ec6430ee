//! Reading a request body: media type, time limit, size limit before and after gzip, UTF-8.
//! Messages say what to send without repeating the request's header values.

use std::io::Read;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use event_model::{ErrorCode, Violation};
use futures_util::StreamExt;

/// Media types the ingest routes accept: JSON, and `text/plain` because that is what
/// `navigator.sendBeacon` sends for a string (it avoids a CORS preflight).
pub fn check_media_type(req: &HttpRequest) -> Result<(), Violation> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let mime = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    if mime.eq_ignore_ascii_case("application/json") || mime.eq_ignore_ascii_case("text/plain") {
        Ok(())
    } else {
        Err(
            Violation::new(ErrorCode::UnsupportedMediaType, "content-type")
                .with_detail("send application/json (or text/plain from sendBeacon)"),
        )
    }
}

fn too_large(max: usize) -> Violation {
    Violation::new(ErrorCode::BodyTooLarge, "body").with_detail(format!("the limit is {max} bytes"))
}

/// Reads the body within `timeout` (the whole body, so a sender trickling bytes cannot hold the
/// connection longer), gunzipping it if `Content-Encoding: gzip`; `max` bounds both the bytes
/// on the wire and the decompressed text, so a small gzip bomb is refused like a large body.
pub async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    max: usize,
    timeout: Duration,
) -> Result<String, Violation> {
    tokio::time::timeout(timeout, read_body_untimed(req, payload, max))
        .await
        .unwrap_or_else(|_| {
            Err(
                Violation::new(ErrorCode::BodyTimeout, "body").with_detail(format!(
                    "the whole body must arrive within {} ms",
                    timeout.as_millis()
                )),
            )
        })
}

async fn read_body_untimed(
    req: &HttpRequest,
    mut payload: web::Payload,
    max: usize,
) -> Result<String, Violation> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > max) {
        return Err(too_large(max));
    }
    let encoding = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !matches!(encoding.as_str(), "" | "identity" | "gzip") {
        return Err(
            Violation::new(ErrorCode::UnsupportedEncoding, "content-encoding")
                .with_detail("use gzip or none"),
        );
    }
    let mut raw = Vec::with_capacity(declared.unwrap_or(4096).min(max));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            Violation::new(ErrorCode::InvalidBatch, "body").with_detail(e.to_string())
        })?;
        if raw.len() + chunk.len() > max {
            return Err(too_large(max));
        }
        raw.extend_from_slice(&chunk);
    }
    let bytes = if encoding == "gzip" {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(raw.as_slice())
            .take(max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| {
                Violation::new(ErrorCode::InvalidGzip, "body").with_detail(e.to_string())
            })?;
        if out.len() > max {
            return Err(too_large(max));
        }
        out
    } else {
        raw
    };
    String::from_utf8(bytes).map_err(|_| {
        Violation::new(ErrorCode::InvalidJson, "body").with_detail("the body is not UTF-8")
    })
}
