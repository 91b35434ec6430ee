//! The tracker's files served by the collector (first-party serving): a site loads
//! `<prefix>/tracker/<version>/eventline.js` from the collector, or from its own domain through a
//! reverse proxy, where ad blockers that block third-party analytics hosts do not look.
//!
//! The files are read once at start-up from `EVENTLINE_TRACKER_DIR` (the built `npm/dist`) and
//! kept in memory with a gzip copy. `<version>` is derived from their bytes, so a URL names
//! exactly one build and is cached for a year as `immutable`; `latest` redirects (307, cached
//! for five minutes) to the current version. `eventline.js` loads the `.wasm` and `messages.js`
//! relative to its own URL, which after the redirect is the versioned one.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The files served, by path under the version, with their content types.
const FILES: &[(&str, &str)] = &[
    ("eventline.js", "text/javascript; charset=utf-8"),
    // Imported by eventline.js, relative to itself, the first time an error needs its words.
    ("messages.js", "text/javascript; charset=utf-8"),
    ("snippet.js", "text/javascript; charset=utf-8"),
    ("wasm/eventline_tracker_bg.wasm", "application/wasm"),
];

/// A year: versioned URLs never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `latest` moves with each deploy of a new build.
const LATEST: &str = "public, max-age=300";

struct File {
    content_type: &'static str,
    bytes: Vec<u8>,
    gzip: Vec<u8>,
    etag: String,
}

/// The tracker build the collector serves.
pub struct TrackerFiles {
    version: String,
    files: HashMap<&'static str, File>,
}

impl TrackerFiles {
    /// Reads the build from `dir`; the error names the missing or unreadable file and how to
    /// produce it.
    pub fn load(dir: &Path) -> Result<TrackerFiles, String> {
        let mut files = HashMap::new();
        let mut whole = Sha256::new();
        for (name, content_type) in FILES {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| {
                format!(
                    "EVENTLINE_TRACKER_DIR: cannot read {} ({e}); build the tracker with `make tracker` and point the setting at npm/dist",
                    path.display()
                )
            })?;
            whole.update(name.as_bytes());
            whole.update((bytes.len() as u64).to_le_bytes());
            whole.update(&bytes);
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            encoder
                .write_all(&bytes)
                .and_then(|_| encoder.finish())
                .map(|gzip| {
                    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&bytes))[..32]);
                    files.insert(
                        *name,
                        File {
                            content_type,
                            bytes,
                            gzip,
                            etag,
                        },
                    );
                })
                .map_err(|e| format!("compressing {}: {e}", path.display()))?;
        }
        Ok(TrackerFiles {
            version: hex::encode(whole.finalize())[..16].to_string(),
            files,
        })
    }

    /// The version segment of the URLs: the first 16 hex digits of a SHA-256 over the files.
    pub fn version(&self) -> &str {
        &self.version
    }
}

/// `GET <prefix>/tracker/{version}/{file}`.
pub async fn serve(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    files: web::Data<Option<TrackerFiles>>,
) -> Result<HttpResponse, ApiError> {
    let Some(files) = files.get_ref() else {
        return Err(ApiError::NotFound("route"));
    };
    let (version, name) = path.into_inner();
    let Some(file) = files.files.get(name.as_str()) else {
        return Err(ApiError::NotFound("tracker file"));
    };
    if version == "latest" {
        // Relative to this URL: `latest/x` → `<version>/x`, whatever prefix a proxy added.
        let location = format!("../{}/{name}", files.version);
        return Ok(HttpResponse::TemporaryRedirect()
            .insert_header((header::LOCATION, location))
            .insert_header((header::CACHE_CONTROL, LATEST))
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
            .finish());
    }
    if version != files.version {
        // An old build's URL: its files are gone; the page must be updated (or use `latest`).
        return Err(ApiError::NotFound("tracker version"));
    }
    let mut answer = HttpResponse::Ok();
    answer
        .insert_header((header::CONTENT_TYPE, file.content_type))
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .insert_header((header::ETAG, file.etag.as_str()))
        .insert_header((header::VARY, "Accept-Encoding"))
        // Public files, loadable from any page (the .wasm is fetched with CORS).
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header(("Cross-Origin-Resource-Policy", "cross-origin"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == file.etag));
    if not_modified {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, file.etag.as_str()))
            .insert_header((header::CACHE_CONTROL, IMMUTABLE))
            .finish());
    }
    if accepts_gzip(req.headers().get(header::ACCEPT_ENCODING)) {
        answer.insert_header((header::CONTENT_ENCODING, "gzip"));
        return Ok(answer.body(file.gzip.clone()));
    }
    Ok(answer.body(file.bytes.clone()))
}

/// Whether `Accept-Encoding` admits gzip (not with `q=0`).
fn accepts_gzip(value: Option<&HeaderValue>) -> bool {
    let Some(text) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    text.split(',').any(|part| {
        let mut pieces = part.split(';').map(str::trim);
        let coding = pieces.next().unwrap_or("");
        let refused = pieces.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(v: &str) -> HeaderValue {
        HeaderValue::from_str(v).unwrap()
    }

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        assert!(accepts_gzip(Some(&header("gzip, deflate, br"))));
        assert!(accepts_gzip(Some(&header("br;q=1.0, GZIP;q=0.5"))));
        assert!(accepts_gzip(Some(&header("*"))));
        assert!(!accepts_gzip(Some(&header("gzip;q=0"))));
        assert!(!accepts_gzip(Some(&header("br, deflate"))));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn the_version_changes_with_any_file_and_a_missing_file_is_named() {
        let dir = std::env::temp_dir().join(format!("eventline-tracker-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("wasm")).unwrap();
        for (name, _) in FILES {
            std::fs::write(dir.join(name), format!("// {name}")).unwrap();
        }
        let first = TrackerFiles::load(&dir).unwrap();
        assert_eq!(first.version().len(), 16);
        std::fs::write(dir.join("wasm/eventline_tracker_bg.wasm"), "other").unwrap();
        let second = TrackerFiles::load(&dir).unwrap();
        assert_ne!(first.version(), second.version());
        std::fs::remove_file(dir.join("snippet.js")).unwrap();
        let error = TrackerFiles::load(&dir).err().unwrap();
        assert!(
            error.contains("snippet.js") && error.contains("make tracker"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
