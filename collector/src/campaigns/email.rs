//! The email channel: SMTP with `lettre`. The message id travels as the `Message-ID` header
//! (`<id@eventline>`), so a receiver can drop a resend after a crash mid-send.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use uuid::Uuid;

use crate::config::Config;

/// Where the mail goes, parsed from `EVENTLINE_SMTP_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    /// Host name or address.
    pub host: String,
    /// Port (25 when the URL has none).
    pub port: u16,
    /// User and password, when the URL has them.
    pub credentials: Option<(String, String)>,
}

/// Parses `smtp://[user:password@]host[:port]`; anything else is refused with a message that
/// says what is accepted.
pub fn parse_smtp_url(url: &str) -> Result<SmtpUrl, String> {
    let refuse = |why: &str| {
        Err(format!(
            "EVENTLINE_SMTP_URL `{url}`: {why}; expected smtp://[user:password@]host[:port] (plain SMTP: TLS is not supported in this version)"
        ))
    };
    let Some(rest) = url.strip_prefix("smtp://") else {
        return refuse("the scheme must be smtp://");
    };
    let rest = rest.trim_end_matches('/');
    let (credentials, hostport) = match rest.rsplit_once('@') {
        Some((userinfo, hostport)) => match userinfo.split_once(':') {
            Some((user, password)) if !user.is_empty() => {
                (Some((user.to_string(), password.to_string())), hostport)
            }
            _ => return refuse("credentials must be user:password"),
        },
        None => (None, rest),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>() {
            Ok(port) if port > 0 => (host, port),
            _ => return refuse("the port must be a number from 1 to 65535"),
        },
        None => (hostport, 25),
    };
    if host.is_empty() || host.contains('/') {
        return refuse("the host is missing");
    }
    Ok(SmtpUrl {
        host: host.to_string(),
        port,
        credentials,
    })
}

/// Sends campaign email.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// A mailer from the configuration; refuses a bad URL or `From` at start-up.
    pub fn from_config(config: &Config) -> Result<Mailer, String> {
        let url = parse_smtp_url(&config.smtp_url)?;
        let from: Mailbox = config
            .smtp_from
            .parse()
            .map_err(|e| format!("EVENTLINE_SMTP_FROM `{}`: {e}", config.smtp_from))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host)
            .port(url.port)
            .timeout(Some(Duration::from_millis(config.smtp_timeout_ms.max(1))));
        if let Some((user, password)) = url.credentials {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
        })
    }

    /// Sends one HTML email; `Err` carries the reason (for the message log).
    pub async fn send(
        &self,
        message_id: Uuid,
        to: &str,
        subject: &str,
        html: &str,
    ) -> Result<(), String> {
        self.send_as(None, message_id, to, subject, html).await
    }

    /// [`Mailer::send`] from `from` (a partner's `From`, checked when it was set) instead of
    /// `EVENTLINE_SMTP_FROM`.
    pub async fn send_as(
        &self,
        from: Option<&str>,
        message_id: Uuid,
        to: &str,
        subject: &str,
        html: &str,
    ) -> Result<(), String> {
        let from: Mailbox = match from {
            Some(from) => from
                .parse()
                .map_err(|e| format!("invalid From `{from}`: {e}"))?,
            None => self.from.clone(),
        };
        let to: Mailbox = to
            .parse()
            .map_err(|e| format!("invalid recipient `{to}`: {e}"))?;
        let email = Message::builder()
            .message_id(Some(message_id_header(message_id)))
            .from(from)
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_HTML)
            .body(html.to_string())
            .map_err(|e| format!("message not built: {e}"))?;
        self.transport
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }
}

/// The `Message-ID` of a campaign message.
pub fn message_id_header(message_id: Uuid) -> String {
    format!("<{message_id}@eventline>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_parse_with_and_without_port_and_credentials() {
        assert_eq!(
            parse_smtp_url("smtp://127.0.0.1:1025").unwrap(),
            SmtpUrl {
                host: "127.0.0.1".into(),
                port: 1025,
                credentials: None
            }
        );
        assert_eq!(
            parse_smtp_url("smtp://ann:s3:cret@mail.example.com/").unwrap(),
            SmtpUrl {
                host: "mail.example.com".into(),
                port: 25,
                credentials: Some(("ann".into(), "s3:cret".into()))
            }
        );
        for bad in [
            "smtps://mail.example.com",
            "mail.example.com:25",
            "smtp://",
            "smtp://host:0",
            "smtp://host:nope",
            "smtp://:pw@host",
        ] {
            let err = parse_smtp_url(bad).unwrap_err();
            assert!(err.contains("EVENTLINE_SMTP_URL"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_message_id_header_carries_the_deterministic_id() {
        let id = Uuid::from_u128(7);
        assert_eq!(
            message_id_header(id),
            "<00000000-0000-0000-0000-000000000007@eventline>"
        );
    }
}
