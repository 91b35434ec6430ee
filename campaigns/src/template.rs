//! Message templates with minijinja: what a template may read, rendering, and the static check
//! the validator runs on save.
//!
//! A template reads `client` (the customer's profile and the triggering event's context) and
//! `campaign`:
//!
//! | variable | value |
//! |---|---|
//! | `client.customer_id` | the customer's id |
//! | `client.first_name`, `last_name`, `email`, `phone` | profile fields (absent when unknown) |
//! | `client.birthday` | `YYYY-MM-DD` (absent when unknown) |
//! | `client.attributes.<code>` | a custom profile attribute |
//! | `client.eventContext.<code>` | a context field of the triggering event |
//! | `campaign.name` | the campaign's name |
//!
//! A value that is unknown is absent, not empty, so `{{ client.first_name | default("friend") }}`
//! takes the default. Looking up through an absent value gives an absent value, never an error:
//! a message is never lost to a missing field. Email bodies are HTML: every value is escaped
//! (`<` becomes `&lt;`) unless marked `| safe`; subjects, SMS, push, Viber and webhook texts are
//! plain text, never escaped.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;
use serde_json::Value;

/// How values are written into the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// HTML-escaped values (email bodies).
    Html,
    /// Values as they are (subjects, SMS, push, Viber, webhooks).
    Plain,
}

impl Escape {
    /// The template name minijinja chooses its auto-escaping by.
    fn template_name(self) -> &'static str {
        match self {
            Escape::Html => "body.html",
            Escape::Plain => "body.txt",
        }
    }
}

/// What a template reads.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Vars {
    /// The customer and the triggering event's context.
    pub client: Client,
    /// The campaign.
    pub campaign: CampaignVars,
}

/// `client`: absent fields are left out, so `default(...)` applies to them.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Client {
    /// The customer's id.
    pub customer_id: String,
    /// First name, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Last name, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Email, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Birthday `YYYY-MM-DD`, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthday: Option<String>,
    /// Custom attributes.
    pub attributes: BTreeMap<String, Value>,
    /// The triggering event's context.
    #[serde(rename = "eventContext")]
    pub event_context: BTreeMap<String, Value>,
}

/// `campaign`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct CampaignVars {
    /// The campaign's name.
    pub name: String,
}

/// A template that does not parse or fails to render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Chainable: `client.attributes.tier.level` on an absent attribute prints nothing instead of
    // failing the message.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env
}

fn error(e: minijinja::Error) -> TemplateError {
    let mut text = e.kind().to_string();
    if let Some(detail) = e.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    if let Some(line) = e.line() {
        text.push_str(&format!(" (line {line})"));
    }
    TemplateError(text)
}

/// The environment every render uses: built once (its builtin filters and settings), not per
/// message, since a fan-out renders thousands of messages a second.
static RENDER: std::sync::LazyLock<Environment<'static>> = std::sync::LazyLock::new(environment);

/// Renders `source` with `vars`.
pub fn render(source: &str, escape: Escape, vars: &Vars) -> Result<String, TemplateError> {
    let template = RENDER
        .template_from_named_str(escape.template_name(), source)
        .map_err(error)?;
    template
        .render(minijinja::value::Serde(vars))
        .map_err(error)
}

/// A message's content, rendered.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Rendered {
    /// Email subject or push title (plain text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The text: HTML for email, plain text elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Image URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Viber button caption and URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub button: Option<(String, String)>,
}

/// Renders every part of a step's template for a channel: the body HTML-escaped where the
/// channel's body is HTML (email), every other part plain.
pub fn render_message(
    template: &crate::definition::Template,
    channel: crate::definition::Channel,
    vars: &Vars,
) -> Result<Rendered, TemplateError> {
    let body_escape = if channel.rules().html {
        Escape::Html
    } else {
        Escape::Plain
    };
    let plain = |t: &Option<String>| -> Result<Option<String>, TemplateError> {
        t.as_deref()
            .map(|t| render(t, Escape::Plain, vars))
            .transpose()
    };
    Ok(Rendered {
        subject: plain(&template.subject)?,
        body: template
            .body
            .as_deref()
            .map(|t| render(t, body_escape, vars))
            .transpose()?,
        image_url: plain(&template.image_url)?,
        button: match &template.button {
            Some(b) => Some((
                render(&b.text, Escape::Plain, vars)?,
                render(&b.url, Escape::Plain, vars)?,
            )),
            None => None,
        },
    })
}

/// The variables a template reads, as dotted paths (`client.eventContext.product`), after
/// checking that it parses. Names the template sets itself (`{% set %}`, loop variables) are
/// not listed.
pub fn variables(source: &str) -> Result<BTreeSet<String>, TemplateError> {
    let env = environment();
    let template = env
        .template_from_named_str("check.txt", source)
        .map_err(error)?;
    Ok(template.undeclared_variables(true).into_iter().collect())
}

/// What the trigger provides to templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFields {
    /// Exactly these context fields (a declared event type, or none for a schedule).
    Known(BTreeSet<String>),
    /// Any field (the trigger's event type is undeclared and the partner accepts such events).
    Any,
}

/// Profile fields under `client`.
pub const PROFILE_FIELDS: &[&str] = &[
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "birthday",
];

/// minijinja's global functions (with the `builtins` feature).
const GLOBAL_FUNCTIONS: &[&str] = &["range", "dict", "namespace"];

/// Checks one variable path against what a template may read; `Err` says why, listing the
/// valid names.
pub fn check_variable(path: &str, fields: &EventFields) -> Result<(), String> {
    let parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        ["campaign"] | ["campaign", "name"] | ["client"] => Ok(()),
        // minijinja lists the global functions a template calls among its variables.
        [f] if GLOBAL_FUNCTIONS.contains(f) => Ok(()),
        ["campaign", other, ..] => Err(format!(
            "`campaign.{other}` is not a template variable: `campaign` has `name`"
        )),
        ["client", "attributes", ..] => Ok(()),
        ["client", "eventContext"] => Ok(()),
        ["client", "eventContext", code, ..] => match fields {
            EventFields::Any => Ok(()),
            EventFields::Known(known) if known.contains(*code) => Ok(()),
            EventFields::Known(known) => Err(format!(
                "the trigger's event has no field `{code}`; its fields are {}",
                crate::error::list_names(known.iter().map(String::as_str))
            )),
        },
        ["client", field] if PROFILE_FIELDS.contains(field) => Ok(()),
        ["client", field, ..] => Err(format!(
            "`client.{field}` is not a template variable; `client` has {}, `attributes.<code>` and `eventContext.<code>`",
            crate::error::list_names(PROFILE_FIELDS.iter().copied())
        )),
        [root, ..] => Err(format!(
            "`{root}` is not a template variable; use `client` or `campaign`"
        )),
        [] => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Vars {
        Vars {
            client: Client {
                customer_id: "c1".into(),
                first_name: Some("Ann <b>".into()),
                event_context: BTreeMap::from([
                    ("product".to_string(), json!("Boots & \"Co\"")),
                    ("total_price".to_string(), json!(1500)),
                ]),
                attributes: BTreeMap::from([("tier".to_string(), json!("gold"))]),
                ..Client::default()
            },
            campaign: CampaignVars {
                name: "Back in stock".into(),
            },
        }
    }

    #[test]
    fn event_context_and_profile_fields_render_and_email_bodies_are_html_escaped() {
        let source = "Hi {{ client.first_name }}, {{ client.eventContext.product }} is back ({{ client.eventContext.total_price }}, {{ client.attributes.tier }})";
        assert_eq!(
            render(source, Escape::Html, &vars()).unwrap(),
            "Hi Ann &lt;b&gt;, Boots &amp; &quot;Co&quot; is back (1500, gold)"
        );
        assert_eq!(
            render(source, Escape::Plain, &vars()).unwrap(),
            "Hi Ann <b>, Boots & \"Co\" is back (1500, gold)"
        );
    }

    #[test]
    fn an_email_escapes_its_body_but_not_its_subject_and_an_sms_escapes_nothing() {
        use crate::definition::{Channel, Template};
        let t = Template {
            subject: Some("{{ client.eventContext.product }}".into()),
            body: Some("{{ client.eventContext.product }}".into()),
            ..Template::default()
        };
        let email = render_message(&t, Channel::Email, &vars()).unwrap();
        assert_eq!(email.subject.as_deref(), Some("Boots & \"Co\""));
        assert_eq!(email.body.as_deref(), Some("Boots &amp; &quot;Co&quot;"));
        let sms = render_message(&t, Channel::Sms, &vars()).unwrap();
        assert_eq!(sms.body.as_deref(), Some("Boots & \"Co\""));
    }

    #[test]
    fn a_missing_value_takes_its_default_and_never_fails_the_message() {
        let mut v = vars();
        v.client.first_name = None;
        let source = "Hi {{ client.first_name | default(\"friend\") }}{{ client.last_name }}{{ client.eventContext.size }}{{ client.attributes.x.y }}!";
        assert_eq!(render(source, Escape::Plain, &v).unwrap(), "Hi friend!");
        assert_eq!(
            render(
                "{{ client.first_name | default(\"friend\") }}",
                Escape::Plain,
                &vars()
            )
            .unwrap(),
            "Ann <b>"
        );
    }

    #[test]
    fn a_template_that_does_not_parse_is_an_error_with_its_line() {
        let err = render("Hi\n{{ client.first_name ", Escape::Plain, &vars()).unwrap_err();
        assert!(err.0.contains("line 2"), "{err}");
        assert!(variables("{% if %}").is_err());
    }

    #[test]
    fn variables_lists_what_a_template_reads_but_not_what_it_sets() {
        let used = variables(
            "{% set greeting = 'Hi' %}{{ greeting }} {{ client.first_name | default('x') }} {{ client.eventContext.product }}{% for i in client.eventContext.items %}{{ i }}{% endfor %}",
        )
        .unwrap();
        let used: Vec<&str> = used.iter().map(String::as_str).collect();
        assert_eq!(
            used,
            [
                "client.eventContext.items",
                "client.eventContext.product",
                "client.first_name"
            ]
        );
    }

    #[test]
    fn a_variable_the_trigger_cannot_provide_is_named_with_the_valid_ones() {
        let fields =
            EventFields::Known(BTreeSet::from(["product".to_string(), "price".to_string()]));
        assert_eq!(
            check_variable("client.eventContext.product", &fields),
            Ok(())
        );
        assert_eq!(check_variable("client.first_name", &fields), Ok(()));
        assert_eq!(check_variable("client.attributes.tier", &fields), Ok(()));
        let err = check_variable("client.eventContext.colour", &fields).unwrap_err();
        assert!(
            err.contains("`colour`") && err.contains("`price`, `product`"),
            "{err}"
        );
        let err = check_variable("client.firstname", &fields).unwrap_err();
        assert!(err.contains("`first_name`"), "{err}");
        assert!(check_variable("user.name", &fields)
            .unwrap_err()
            .contains("`client`"));
        assert_eq!(check_variable("range", &fields), Ok(()));
        assert_eq!(
            check_variable("client.eventContext.colour", &EventFields::Any),
            Ok(())
        );
    }
}
