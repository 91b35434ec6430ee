//! The shapes of SMS, push and Viber content beyond which parts a channel takes
//! ([`crate::definition::Channel::rules`]): SMS is plain text, never HTML, and at most
//! [`SMS_MAX_CHARS`] characters once rendered; a push is a text, an image or both, with an
//! optional title; a Viber message is one of [`VIBER_SHAPES`]. Checked on save by
//! [`crate::validate`] (on the template text) and, for lengths, by the collector after
//! rendering (where `{{ … }}` values may have made a text longer).

use crate::definition::{Channel, Template};
use crate::template::Rendered;

/// Longest SMS, in characters after rendering: 1,600, the longest body the large SMS providers
/// accept for one (concatenated) message (Twilio's limit; 10 segments of 160 GSM-7 characters).
/// A provider bills it as several segments: 153 GSM-7 or 67 UCS-2 characters each.
pub const SMS_MAX_CHARS: usize = 1_600;
/// Longest push title, in characters after rendering (what iOS and Android show in full).
pub const PUSH_TITLE_MAX_CHARS: usize = 100;
/// Longest Viber button caption, in characters (Viber's limit for business messages).
pub const VIBER_BUTTON_MAX_CHARS: usize = 30;

/// The Viber business-message types: the combinations of text, image and button Viber
/// delivers. A button needs a text to stand under; an image and a text go together only with
/// a button.
pub const VIBER_SHAPES: &[&str] = &[
    "`body` (text only)",
    "`image_url` (image only)",
    "`body` + `button` (text and button)",
    "`body` + `image_url` + `button` (text, image and button)",
];

/// The push shapes.
pub const PUSH_SHAPES: &[&str] = &[
    "`body` (text)",
    "`image_url` (image)",
    "`body` + `image_url` (both)",
];

/// The allowed shapes, as a sentence, for a channel with a list of them.
pub fn shapes_sentence(channel: Channel) -> String {
    match channel {
        Channel::Sms => format!(
            "an SMS is `body` only: plain text (no HTML), at most {SMS_MAX_CHARS} characters after rendering"
        ),
        Channel::Push => format!(
            "a push is one of {}, each with an optional `subject` (the title, at most {PUSH_TITLE_MAX_CHARS} characters); it has no `button`",
            PUSH_SHAPES.join(", ")
        ),
        Channel::Viber => format!(
            "a Viber message is one of {}; it has no `subject`",
            VIBER_SHAPES.join(", ")
        ),
        Channel::Email => "an email is `subject` + `body` (HTML)".into(),
        Channel::Webhook => "a webhook is `body` only".into(),
    }
}

/// Why a Viber template's combination of parts is not one of [`VIBER_SHAPES`], if it is not.
pub fn viber_shape_error(t: &Template) -> Option<String> {
    let (text, image, button) = (t.body.is_some(), t.image_url.is_some(), t.button.is_some());
    let ok = matches!(
        (text, image, button),
        (true, false, false) | (false, true, false) | (true, false, true) | (true, true, true)
    );
    (!ok).then(|| {
        let mut given = Vec::new();
        if text {
            given.push("`body`");
        }
        if image {
            given.push("`image_url`");
        }
        if button {
            given.push("`button`");
        }
        let given = if given.is_empty() {
            "nothing".to_string()
        } else {
            given.join(" + ")
        };
        format!(
            "{given} is not a Viber message: {}",
            shapes_sentence(Channel::Viber)
        )
    })
}

/// The first HTML tag in a text (`<b>`, `</p>`, `<br/>`, `<!-- …`), if any: a `<` followed by a
/// letter, `/` or `!`. A `<` before a digit or a space (`x < 5`, `<3`) is text.
pub fn html_tag(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices('<') {
        let next = bytes.get(i + 1).copied().unwrap_or(b' ');
        if next.is_ascii_alphabetic() || next == b'/' || next == b'!' {
            let end = text[i..].find('>').map_or(text.len(), |e| i + e + 1);
            let end = end.min(i + 40);
            let end = (i..=end)
                .rev()
                .find(|&e| text.is_char_boundary(e))
                .unwrap_or(i);
            return Some(&text[i..end]);
        }
    }
    None
}

/// Why a rendered message cannot be sent on its channel, if it cannot (`<code>: <sentence>`,
/// for the message log): `{{ … }}` values made an SMS longer than [`SMS_MAX_CHARS`] or empty,
/// a push title or a Viber caption too long, an image or button link that is not a web URL.
pub fn rendered_error(channel: Channel, rendered: &Rendered) -> Option<String> {
    let chars = |t: &Option<String>| t.as_deref().map_or(0, |t| t.chars().count());
    match channel {
        Channel::Sms if chars(&rendered.body) > SMS_MAX_CHARS => {
            return Some(format!(
                "too_long: the rendered SMS has {} characters; at most {SMS_MAX_CHARS}",
                chars(&rendered.body)
            ))
        }
        Channel::Sms if rendered.body.as_deref().is_none_or(|b| b.trim().is_empty()) => {
            return Some("empty: the rendered SMS is empty".into())
        }
        Channel::Push if chars(&rendered.subject) > PUSH_TITLE_MAX_CHARS => {
            return Some(format!(
            "too_long: the rendered push title has {} characters; at most {PUSH_TITLE_MAX_CHARS}",
            chars(&rendered.subject)
        ))
        }
        _ => {}
    }
    if let Some(image) = rendered.image_url.as_deref() {
        if !is_web_url(image) {
            return Some(format!(
                "invalid_image_url: the rendered image URL `{image}` is not an absolute http(s) URL"
            ));
        }
    }
    if let Some((text, url)) = &rendered.button {
        if text.chars().count() > VIBER_BUTTON_MAX_CHARS {
            return Some(format!(
                "too_long: the rendered button caption is over {VIBER_BUTTON_MAX_CHARS} characters"
            ));
        }
        if !is_web_url(url) {
            return Some(format!(
                "invalid_button_url: the rendered button link `{url}` is not an absolute http(s) URL"
            ));
        }
    }
    None
}

/// Whether a text is an absolute `http(s)` URL (an image or button link).
pub fn is_web_url(text: &str) -> bool {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::Button;

    fn viber(body: bool, image: bool, button: bool) -> Template {
        Template {
            body: body.then(|| "Hi".to_string()),
            image_url: image.then(|| "https://cdn.example.com/a.png".to_string()),
            button: button.then(|| Button {
                text: "Open".into(),
                url: "https://shop.example.com".into(),
            }),
            ..Template::default()
        }
    }

    #[test]
    fn viber_takes_text_image_text_and_button_or_all_three_and_nothing_else() {
        for (body, image, button, ok) in [
            (true, false, false, true),
            (false, true, false, true),
            (true, false, true, true),
            (true, true, true, true),
            (true, true, false, false),
            (false, true, true, false),
            (false, false, true, false),
            (false, false, false, false),
        ] {
            let err = viber_shape_error(&viber(body, image, button));
            assert_eq!(err.is_none(), ok, "{body} {image} {button}: {err:?}");
            if let Some(err) = err {
                for shape in VIBER_SHAPES {
                    assert!(err.contains(shape), "{err}");
                }
            }
        }
        assert!(viber_shape_error(&viber(true, true, false))
            .unwrap()
            .starts_with("`body` + `image_url` is not a Viber message"));
    }

    #[test]
    fn html_tags_are_found_and_angle_brackets_in_text_are_not() {
        assert_eq!(html_tag("Hi <b>Ann</b>"), Some("<b>"));
        assert_eq!(html_tag("line</p>"), Some("</p>"));
        assert_eq!(html_tag("a<br/>b"), Some("<br/>"));
        assert_eq!(html_tag("<!-- x -->"), Some("<!-- x -->"));
        assert_eq!(html_tag("x < 5 and y <3"), None);
        assert_eq!(html_tag("<"), None);
        assert_eq!(html_tag("no tags {{ client.first_name }}"), None);
        let long = format!("<a href=\"{}\">", "x".repeat(100));
        assert_eq!(html_tag(&long).unwrap().chars().count(), 40);
        assert!(html_tag("<ä").is_none());
    }

    #[test]
    fn a_rendered_message_too_long_or_with_a_bad_link_is_named_with_a_code() {
        let sms = |body: &str| Rendered {
            body: Some(body.into()),
            ..Rendered::default()
        };
        assert_eq!(rendered_error(Channel::Sms, &sms(&"x".repeat(1600))), None);
        assert!(rendered_error(Channel::Sms, &sms(&"x".repeat(1601)))
            .unwrap()
            .starts_with("too_long: the rendered SMS has 1601 characters"));
        assert!(rendered_error(Channel::Sms, &sms("  "))
            .unwrap()
            .starts_with("empty: "));
        let viber = Rendered {
            body: Some("Hi".into()),
            image_url: Some("https://cdn.example.com/a.png".into()),
            button: Some(("Open".into(), "shop".into())),
            ..Rendered::default()
        };
        assert!(rendered_error(Channel::Viber, &viber)
            .unwrap()
            .starts_with("invalid_button_url: "));
        let push = Rendered {
            image_url: Some("/a.png".into()),
            ..Rendered::default()
        };
        assert!(rendered_error(Channel::Push, &push)
            .unwrap()
            .starts_with("invalid_image_url: "));
    }

    #[test]
    fn web_urls_are_absolute_http_or_https() {
        assert!(is_web_url("https://cdn.example.com/a.png"));
        assert!(is_web_url("http://127.0.0.1:8080/x"));
        for bad in [
            "cdn.example.com/a.png",
            "https://",
            "ftp://x",
            "https:///x",
            "https://a b",
        ] {
            assert!(!is_web_url(bad), "{bad}");
        }
    }
}
