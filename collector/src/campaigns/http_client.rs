//! The one HTTP client of the webhook channel and the SMS, push and Viber gateways: `http://`
//! for local receivers, `https://` through rustls.
//!
//! Trust: Mozilla's root CAs as compiled in by `webpki-roots` (not the host's CA store), so the
//! same gateways verify on every host, the `debian:bookworm-slim` image and a `scratch` one
//! alike; plus every certificate of the PEM file `EVENTLINE_GATEWAY_CA_FILE`, for gateways
//! behind a corporate or private CA. The crypto is rustls's `ring` provider. Redirects are not
//! followed (a signed body or a bearer token goes only where it was configured to).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

/// Makes rustls's `ring` provider the process's default, once (later calls do nothing).
/// reqwest is built with `rustls-no-provider` (to spare the aws-lc-rs build), so building ANY
/// `reqwest::Client` in a process panics until a provider is installed: [`client`] calls this,
/// and so must a test or benchmark before its own `reqwest::Client::new()`.
pub fn install_crypto_provider() {
    // Err: a provider is installed already (ours, or the embedding program's); either serves.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The trust store: Mozilla's roots and the certificates of `extra_ca_file`, if given. `Err`
/// says what is wrong with the file (unreadable, not PEM, no certificate in it).
pub fn roots(extra_ca_file: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_ca_file {
        let shown = path.display();
        let mut added = 0;
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("EVENTLINE_GATEWAY_CA_FILE `{shown}`: {e}"))?;
        for cert in certs {
            let cert = cert.map_err(|e| {
                format!("EVENTLINE_GATEWAY_CA_FILE `{shown}`: not a PEM certificate file: {e}")
            })?;
            roots.add(cert).map_err(|e| {
                format!(
                    "EVENTLINE_GATEWAY_CA_FILE `{shown}`: a certificate is not a usable CA: {e}"
                )
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "EVENTLINE_GATEWAY_CA_FILE `{shown}`: no `-----BEGIN CERTIFICATE-----` block in it"
            ));
        }
    }
    Ok(roots)
}

/// A client whose every request ends within `timeout` (connect, TLS, send, answer).
pub fn client(timeout: Duration, extra_ca_file: Option<&Path>) -> Result<reqwest::Client, String> {
    install_crypto_provider();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_root_certificates(roots(extra_ca_file)?)
        .with_no_client_auth();
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("eventline/", env!("CARGO_PKG_VERSION")))
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| format!("the HTTP client of webhooks and gateways could not be built: {e}"))
}

/// How much of a refusing answer's body goes into the message log's `error`.
const ERROR_BODY_CHARS: usize = 200;

/// Sends one message's `request`: a `2xx` answer is delivery. `Err` is the reason for the
/// message log, prefixed with `label` (`webhook`, `sms gateway`): the transport error with its
/// causes, or the status and the start of the answer's body.
pub async fn deliver(request: reqwest::RequestBuilder, label: &str) -> Result<(), String> {
    let answer = request
        .send()
        .await
        .map_err(|e| format!("{label}: {}", chain(&e)))?;
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    let text = answer.text().await.unwrap_or_default();
    let text: String = text.chars().take(ERROR_BODY_CHARS).collect();
    Err(format!("{label}: HTTP {status}: {text}")
        .trim_end()
        .to_string())
}

/// An error and its causes, `a: b: c` (reqwest's own message hides "connection refused" or the
/// certificate problem).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, text: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("eventline-ca-{}-{name}", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_trust_store_is_mozillas_roots_plus_the_ca_file() {
        let base = roots(None).unwrap().len();
        assert!(base > 100, "Mozilla's roots: {base}");
        let ca = rcgen::generate_simple_self_signed(vec!["ca.example".into()]).unwrap();
        let path = temp("ca.pem", &ca.cert.pem());
        assert_eq!(roots(Some(&path)).unwrap().len(), base + 1);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_ca_file_that_is_missing_or_holds_no_certificate_is_refused_naming_the_variable() {
        let missing = std::env::temp_dir().join("eventline-no-such-ca.pem");
        let empty = temp("empty.pem", "not a certificate\n");
        for path in [missing, empty] {
            let err = roots(Some(&path)).unwrap_err();
            assert!(err.starts_with("EVENTLINE_GATEWAY_CA_FILE"), "{err}");
        }
    }

    #[tokio::test]
    async fn an_https_url_is_attempted_over_tls() {
        // A plain-HTTP listener: a TLS client's hello is not HTTP, so the attempt fails in the
        // TLS handshake (not "scheme not supported").
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut first = [0u8; 1];
            socket.read_exact(&mut first).await.unwrap();
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            first[0]
        });
        let client = client(Duration::from_secs(5), None).unwrap();
        let err = client
            .post(format!("https://127.0.0.1:{port}/x"))
            .send()
            .await
            .unwrap_err();
        // 0x16: a TLS handshake record, the ClientHello.
        assert_eq!(served.await.unwrap(), 0x16);
        assert!(err.is_connect(), "{}", chain(&err));
    }
}
