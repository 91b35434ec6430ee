//! Who can receive a message on which channel, and at which address, from the customer's
//! profile (`customer_profiles`) as it is when the message is queued. A customer who cannot is
//! logged `skipped` with [`Skip::reason`] (`<code>: <sentence>`), and nothing is sent.
//!
//! | channel | needs | address | skipped as |
//! |---|---|---|---|
//! | email | a profile `email`; consent `email` not `false` (absent is fine) | the email | `no_email`, `no_consent` |
//! | sms | a profile `phone` and consent `sms` `true` (explicit opt-in) | the phone | `no_phone`, `no_consent` |
//! | push | the app installed: the string attribute `push_token` (the device token the app registers); consent `push` not `false` | the token | `no_app`, `no_consent` |
//! | viber | a registered Viber member: the string attribute `viber_id`; consent `viber` not `false` | the Viber id | `not_registered`, `no_consent` |
//! | webhook | nothing: the partner's endpoint gets every message | the URL (set at send) | – |
//!
//! Push needs an address to push to, so the signal is the token attribute, not the
//! `mobile_app_installed` event (which says the app was installed once, not where it is now).

use eventline_campaigns::definition::Channel;

use crate::store::rows::CustomerProfileRow;

/// The profile attribute holding a customer's push token.
pub const PUSH_TOKEN_ATTRIBUTE: &str = "push_token";
/// The profile attribute holding a customer's Viber member id.
pub const VIBER_ID_ATTRIBUTE: &str = "viber_id";

/// Why a customer is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// No email in the profile.
    NoEmail,
    /// No phone in the profile.
    NoPhone,
    /// No `push_token` attribute.
    NoApp,
    /// No `viber_id` attribute.
    NotRegistered,
    /// The channel's consent is withdrawn (or, for SMS, not given).
    NoConsent(Channel),
}

impl Skip {
    /// The stable code (`no_phone`, ...).
    pub fn code(self) -> &'static str {
        match self {
            Skip::NoEmail => "no_email",
            Skip::NoPhone => "no_phone",
            Skip::NoApp => "no_app",
            Skip::NotRegistered => "not_registered",
            Skip::NoConsent(_) => "no_consent",
        }
    }

    /// What the message log says: `<code>: <sentence>`.
    pub fn reason(self) -> String {
        let why = match self {
            Skip::NoEmail => "the customer's profile has no email".to_string(),
            Skip::NoPhone => "the customer's profile has no phone".to_string(),
            Skip::NoApp => format!(
                "the customer has no app to push to (no `{PUSH_TOKEN_ATTRIBUTE}` attribute)"
            ),
            Skip::NotRegistered => format!(
                "the customer is not a registered Viber member (no `{VIBER_ID_ATTRIBUTE}` attribute)"
            ),
            Skip::NoConsent(Channel::Sms) => {
                "the customer's consent `sms` is not `true` (SMS needs an opt-in)".to_string()
            }
            Skip::NoConsent(channel) => {
                format!("the customer's consent `{}` is false", channel.as_str())
            }
        };
        format!("{}: {why}", self.code())
    }
}

fn consent(profile: &CustomerProfileRow, channel: Channel) -> Option<bool> {
    profile
        .consents
        .iter()
        .find(|(c, _)| c == channel.as_str())
        .map(|(_, given)| *given)
}

fn string_attribute<'a>(profile: &'a CustomerProfileRow, code: &str) -> Option<&'a str> {
    profile
        .attributes_strings
        .iter()
        .find(|(k, v)| k == code && !v.trim().is_empty())
        .map(|(_, v)| v.as_str())
}

/// The address a message of `channel` goes to, or why the customer cannot get it. A webhook's
/// address is the partner's URL, set at send time: `Ok("")` here.
pub fn recipient(channel: Channel, profile: Option<&CustomerProfileRow>) -> Result<String, Skip> {
    if channel == Channel::Webhook {
        return Ok(String::new());
    }
    let (address, missing) = match (channel, profile) {
        (Channel::Email, p) => (p.map(|p| p.email.as_str()), Skip::NoEmail),
        (Channel::Sms, p) => (p.map(|p| p.phone.as_str()), Skip::NoPhone),
        (Channel::Push, p) => (
            p.and_then(|p| string_attribute(p, PUSH_TOKEN_ATTRIBUTE)),
            Skip::NoApp,
        ),
        (Channel::Viber, p) => (
            p.and_then(|p| string_attribute(p, VIBER_ID_ATTRIBUTE)),
            Skip::NotRegistered,
        ),
        (Channel::Webhook, _) => unreachable!("returned above"),
    };
    let (Some(profile), Some(address)) = (profile, address.filter(|a| !a.is_empty())) else {
        return Err(missing);
    };
    let consented = match (channel, consent(profile, channel)) {
        // SMS is opt-in: an absent consent stops it.
        (Channel::Sms, given) => given == Some(true),
        (_, given) => given != Some(false),
    };
    if !consented {
        return Err(Skip::NoConsent(channel));
    }
    Ok(address.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;
    use uuid::Uuid;

    fn profile(
        email: &str,
        phone: &str,
        consents: &[(&str, bool)],
        attributes: &[(&str, &str)],
    ) -> CustomerProfileRow {
        CustomerProfileRow {
            partner_id: Uuid::nil(),
            customer_id: "c".into(),
            first_name: String::new(),
            last_name: String::new(),
            email: email.into(),
            phone: phone.into(),
            birthday: None,
            consents: consents.iter().map(|(c, g)| (c.to_string(), *g)).collect(),
            attributes_strings: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            attributes_numbers: vec![],
            attributes_booleans: vec![],
            attributes_datetimes: vec![],
            updated_at: OffsetDateTime::UNIX_EPOCH,
            version: 1,
            is_deleted: 0,
        }
    }

    #[test]
    fn email_needs_an_address_and_no_withdrawn_email_consent() {
        let r = |p: Option<&CustomerProfileRow>| recipient(Channel::Email, p);
        assert_eq!(r(None), Err(Skip::NoEmail));
        assert_eq!(r(Some(&profile("", "", &[], &[]))), Err(Skip::NoEmail));
        assert_eq!(
            r(Some(&profile("a@example.com", "", &[], &[]))).as_deref(),
            Ok("a@example.com")
        );
        let p = profile("a@example.com", "", &[("email", true), ("sms", false)], &[]);
        assert!(r(Some(&p)).is_ok());
        let p = profile("a@example.com", "", &[("email", false)], &[]);
        assert_eq!(r(Some(&p)), Err(Skip::NoConsent(Channel::Email)));
    }

    #[test]
    fn sms_needs_a_phone_and_an_explicit_sms_consent() {
        let r = |p: &CustomerProfileRow| recipient(Channel::Sms, Some(p));
        assert_eq!(recipient(Channel::Sms, None), Err(Skip::NoPhone));
        assert_eq!(
            r(&profile("", "", &[("sms", true)], &[])),
            Err(Skip::NoPhone)
        );
        assert_eq!(
            r(&profile("", "+1 555 0100", &[], &[])),
            Err(Skip::NoConsent(Channel::Sms))
        );
        assert_eq!(
            r(&profile("", "+1 555 0100", &[("sms", false)], &[])),
            Err(Skip::NoConsent(Channel::Sms))
        );
        assert_eq!(
            r(&profile("", "+1 555 0100", &[("sms", true)], &[])).as_deref(),
            Ok("+1 555 0100")
        );
    }

    #[test]
    fn push_needs_a_push_token_and_viber_a_viber_id() {
        let token = profile("", "", &[], &[("push_token", "fcm:abc")]);
        assert_eq!(
            recipient(Channel::Push, Some(&token)).as_deref(),
            Ok("fcm:abc")
        );
        assert_eq!(
            recipient(Channel::Viber, Some(&token)),
            Err(Skip::NotRegistered)
        );
        assert_eq!(recipient(Channel::Push, None), Err(Skip::NoApp));
        let blank = profile("", "", &[], &[("push_token", " ")]);
        assert_eq!(recipient(Channel::Push, Some(&blank)), Err(Skip::NoApp));
        let withdrawn = profile("", "", &[("push", false)], &[("push_token", "t")]);
        assert_eq!(
            recipient(Channel::Push, Some(&withdrawn)),
            Err(Skip::NoConsent(Channel::Push))
        );
        let member = profile("", "", &[], &[("viber_id", "vb-1")]);
        assert_eq!(
            recipient(Channel::Viber, Some(&member)).as_deref(),
            Ok("vb-1")
        );
        assert_eq!(recipient(Channel::Push, Some(&member)), Err(Skip::NoApp));
    }

    #[test]
    fn a_webhook_goes_to_every_customer_and_reasons_start_with_their_code() {
        assert_eq!(recipient(Channel::Webhook, None).as_deref(), Ok(""));
        assert_eq!(
            Skip::NoPhone.reason(),
            "no_phone: the customer's profile has no phone"
        );
        assert!(Skip::NoConsent(Channel::Sms)
            .reason()
            .starts_with("no_consent: "));
        assert!(Skip::NotRegistered.reason().starts_with("not_registered: "));
    }
}
