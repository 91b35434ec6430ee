//! Admin tokens: where they come from, the start-up rules that keep the admin API closed by
//! default, and the constant-time check of a presented token.
//!
//! Up to two tokens are active at once (current and previous) so an operator can rotate
//! without downtime: add the new one as current, move the old one to previous, then drop it.

use std::net::SocketAddr;
use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::{Config, LOCAL_ADMIN_TOKEN};

/// Fewest bytes an admin token must have when the collector listens beyond loopback.
pub const MIN_ADMIN_TOKEN_BYTES: usize = 32;

/// Why the configured admin tokens cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdminTokenError {
    /// Both the token and a token file were given.
    #[error("both {var} and {var}_FILE are set: set only one of them")]
    Ambiguous {
        /// The variable (without `_FILE`).
        var: &'static str,
    },
    /// The token file could not be read.
    #[error("{var}_FILE: cannot read {path}: {why}")]
    Unreadable {
        /// The variable (without `_FILE`).
        var: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        why: String,
    },
    /// The token is empty.
    #[error("{var} is empty: set it (or {var}_FILE) to a random secret of at least {MIN_ADMIN_TOKEN_BYTES} bytes, e.g. `openssl rand -hex 32`")]
    Empty {
        /// The variable.
        var: &'static str,
    },
    /// The public local default on a non-loopback address.
    #[error("refusing to serve on {listen}, which is not a loopback address, with the public local admin token: set EVENTLINE_ADMIN_TOKEN (or EVENTLINE_ADMIN_TOKEN_FILE) to a random secret of at least {MIN_ADMIN_TOKEN_BYTES} bytes, e.g. `openssl rand -hex 32`")]
    LocalDefault {
        /// The listen address.
        listen: SocketAddr,
    },
    /// A token shorter than [`MIN_ADMIN_TOKEN_BYTES`] on a non-loopback address.
    #[error("refusing to serve on {listen}, which is not a loopback address: {var} is {len} bytes long; set it (or {var}_FILE) to a random secret of at least {MIN_ADMIN_TOKEN_BYTES} bytes, e.g. `openssl rand -hex 32`")]
    TooShort {
        /// The variable.
        var: &'static str,
        /// The listen address.
        listen: SocketAddr,
        /// The token's length in bytes.
        len: usize,
    },
}

/// One accepted token, kept only as its digest.
#[derive(Debug, Clone)]
struct Accepted {
    digest: [u8; 32],
    id: String,
}

/// The active admin tokens, as digests.
#[derive(Debug, Clone)]
pub struct AdminTokens {
    accepted: Vec<Accepted>,
}

/// The id of a token in audit rows: the first 12 hex digits of its SHA-256.
pub fn token_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))[..12].to_string()
}

fn from_value_or_file(
    var: &'static str,
    value: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<String>, AdminTokenError> {
    match (value, file) {
        (Some(_), Some(_)) => Err(AdminTokenError::Ambiguous { var }),
        (Some(v), None) => Ok(Some(v.to_string())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| AdminTokenError::Unreadable {
                var,
                path: path.display().to_string(),
                why: e.to_string(),
            })?;
            // Editors and `echo` end files with a newline; it is not part of the token.
            Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()))
        }
        (None, None) => Ok(None),
    }
}

fn check(var: &'static str, token: &str, listen: SocketAddr) -> Result<(), AdminTokenError> {
    if token.is_empty() {
        return Err(AdminTokenError::Empty { var });
    }
    if listen.ip().is_loopback() {
        return Ok(());
    }
    if token == LOCAL_ADMIN_TOKEN {
        return Err(AdminTokenError::LocalDefault { listen });
    }
    if token.len() < MIN_ADMIN_TOKEN_BYTES {
        return Err(AdminTokenError::TooShort {
            var,
            listen,
            len: token.len(),
        });
    }
    Ok(())
}

impl AdminTokens {
    /// Reads and checks the configured tokens: an empty token is refused everywhere; beyond
    /// loopback the local default and tokens shorter than [`MIN_ADMIN_TOKEN_BYTES`] are refused.
    /// With nothing set, the local default is the one token.
    pub fn from_config(config: &Config) -> Result<AdminTokens, AdminTokenError> {
        let current = from_value_or_file(
            "EVENTLINE_ADMIN_TOKEN",
            config.admin_token.as_deref(),
            config.admin_token_file.as_deref(),
        )?
        .unwrap_or_else(|| LOCAL_ADMIN_TOKEN.to_string());
        check("EVENTLINE_ADMIN_TOKEN", &current, config.listen)?;
        let mut tokens = vec![current];
        if let Some(previous) = from_value_or_file(
            "EVENTLINE_ADMIN_TOKEN_PREVIOUS",
            config.admin_token_previous.as_deref(),
            config.admin_token_previous_file.as_deref(),
        )? {
            check("EVENTLINE_ADMIN_TOKEN_PREVIOUS", &previous, config.listen)?;
            tokens.push(previous);
        }
        Ok(AdminTokens::new(&tokens))
    }

    /// Tokens accepted as given (no checks); tests and [`AdminTokens::from_config`] use this.
    pub fn new(tokens: &[String]) -> AdminTokens {
        AdminTokens {
            accepted: tokens
                .iter()
                .map(|t| Accepted {
                    digest: Sha256::digest(t.as_bytes()).into(),
                    id: token_id(t),
                })
                .collect(),
        }
    }

    /// The id of the token `presented` matches, if any. Digests of equal length are compared
    /// in constant time against every accepted token, so neither the token's length nor which
    /// token matched shows in the timing.
    pub fn verify(&self, presented: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut matched = u8::MAX;
        for (i, accepted) in self.accepted.iter().enumerate() {
            let index = u8::try_from(i).expect("at most two tokens");
            matched.conditional_assign(&index, digest.ct_eq(&accepted.digest));
        }
        self.accepted
            .get(usize::from(matched))
            .map(|a| a.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str) -> Config {
        let mut c = Config::local_defaults();
        c.listen = listen.parse().unwrap();
        c.admin_token = None;
        c.admin_token_file = None;
        c.admin_token_previous = None;
        c.admin_token_previous_file = None;
        c
    }

    const LONG: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn the_local_default_serves_on_loopback_only() {
        let tokens = AdminTokens::from_config(&config("127.0.0.1:8080")).unwrap();
        assert!(tokens.verify(LOCAL_ADMIN_TOKEN).is_some());
        assert_eq!(
            AdminTokens::from_config(&config("0.0.0.0:8080")).unwrap_err(),
            AdminTokenError::LocalDefault {
                listen: "0.0.0.0:8080".parse().unwrap()
            }
        );
    }

    #[test]
    fn short_tokens_are_refused_beyond_loopback_and_empty_ones_everywhere() {
        let mut c = config("0.0.0.0:8080");
        c.admin_token = Some(LONG[..31].into());
        assert!(matches!(
            AdminTokens::from_config(&c),
            Err(AdminTokenError::TooShort { len: 31, .. })
        ));
        c.admin_token = Some(LONG.into());
        assert!(AdminTokens::from_config(&c).is_ok());
        c.admin_token_previous = Some("short".into());
        assert!(matches!(
            AdminTokens::from_config(&c),
            Err(AdminTokenError::TooShort {
                var: "EVENTLINE_ADMIN_TOKEN_PREVIOUS",
                ..
            })
        ));
        let mut local = config("127.0.0.1:8080");
        local.admin_token = Some(String::new());
        assert_eq!(
            AdminTokens::from_config(&local).unwrap_err(),
            AdminTokenError::Empty {
                var: "EVENTLINE_ADMIN_TOKEN"
            }
        );
        local.admin_token = Some("short".into());
        assert!(AdminTokens::from_config(&local).is_ok());
    }

    #[test]
    fn a_token_file_is_read_without_its_trailing_newline_and_not_together_with_the_token() {
        let path = std::env::temp_dir().join(format!("eventline-token-{}", std::process::id()));
        std::fs::write(&path, format!("{LONG}\n")).unwrap();
        let mut c = config("0.0.0.0:8080");
        c.admin_token_file = Some(path.clone());
        let tokens = AdminTokens::from_config(&c).unwrap();
        assert!(tokens.verify(LONG).is_some());
        assert!(tokens.verify(&format!("{LONG}\n")).is_none());
        c.admin_token = Some(LONG.into());
        assert_eq!(
            AdminTokens::from_config(&c).unwrap_err(),
            AdminTokenError::Ambiguous {
                var: "EVENTLINE_ADMIN_TOKEN"
            }
        );
        c.admin_token = None;
        c.admin_token_file = Some(path.with_extension("missing"));
        assert!(matches!(
            AdminTokens::from_config(&c),
            Err(AdminTokenError::Unreadable { .. })
        ));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn both_tokens_verify_to_their_own_id_and_others_do_not() {
        let tokens = AdminTokens::new(&["current".into(), "previous".into()]);
        assert_eq!(tokens.verify("current"), Some(token_id("current").as_str()));
        assert_eq!(
            tokens.verify("previous"),
            Some(token_id("previous").as_str())
        );
        assert_ne!(token_id("current"), token_id("previous"));
        assert_eq!(token_id("current").len(), 12);
        for wrong in ["", "curren", "currentx", "Current"] {
            assert_eq!(tokens.verify(wrong), None, "{wrong}");
        }
    }
}
