//! Channel and gateway settings under `/v1/admin/partners/{id}/channels` (secrets write-only),
//! and the message log per campaign and per customer. Channel failures map to HTTP here, in
//! [`From<ChannelError> for ApiError`]; storage and rules are in
//! [`crate::campaigns::channels`] and [`crate::campaigns::messages`].

use actix_web::{web, HttpResponse};
use eventline_campaigns::definition::Channel;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::admin::{parse_id, rfc3339, Admin};
use super::AppState;
use crate::audit;
use crate::campaigns::channels::{
    self, ChannelError, ChannelRow, EmailPut, GatewayPut, WebhookPut,
};
use crate::campaigns::messages::{self, LogOf, MessageRow, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
use crate::error::ApiError;

/// The one mapping of channel failures to HTTP answers.
impl From<ChannelError> for ApiError {
    fn from(error: ChannelError) -> ApiError {
        let message = error.to_string();
        match error {
            ChannelError::UnknownChannel(_) => ApiError::NotFound("channel"),
            ChannelError::InvalidUrl(_) => ApiError::Invalid {
                code: "invalid_webhook_url",
                field: "url".into(),
                message,
            },
            ChannelError::InvalidGatewayUrl(_) => ApiError::Invalid {
                code: "invalid_gateway_url",
                field: "url".into(),
                message,
            },
            ChannelError::InvalidToken(_) => ApiError::Invalid {
                code: "invalid_gateway_token",
                field: "token".into(),
                message,
            },
            ChannelError::InvalidSecret(_) => ApiError::Invalid {
                code: "invalid_webhook_secret",
                field: "secret".into(),
                message,
            },
            ChannelError::InvalidFrom(_) => ApiError::Invalid {
                code: "invalid_from_address",
                field: "from".into(),
                message,
            },
            ChannelError::NotConfigured { .. } => ApiError::Conflict {
                code: "channel_not_configured",
                message,
            },
            ChannelError::Storage(e) => ApiError::Storage(e),
        }
    }
}

/// A channel's settings as the API shows them: never the secret, only whether one is set.
fn view(channel: Channel, row: Option<&ChannelRow>) -> Value {
    let updated_at = row.map(|r| rfc3339(r.updated_at));
    match channel {
        Channel::Webhook => json!({
            "channel": "webhook",
            "configured": row.is_some(),
            "url": row.map(|r| channels::setting(r, "url")),
            "secret_set": row.is_some_and(|r| !r.secret.is_empty()),
            "updated_at": updated_at,
        }),
        Channel::Email => json!({
            "channel": "email",
            // The gateway is the collector's SMTP server; `from` only replaces its From.
            "configured": true,
            "from": row.map(|r| channels::setting(r, "from")),
            "updated_at": updated_at,
        }),
        // SMS, push, Viber: an HTTP gateway; never the token, only whether one is set.
        other => json!({
            "channel": other.as_str(),
            "configured": row.is_some(),
            "url": row.map(|r| channels::setting(r, "url")),
            "token_set": row.is_some_and(|r| !r.secret.is_empty()),
            "updated_at": updated_at,
        }),
    }
}

/// What an audit row of a settings change says: never the secret.
fn audit_details(channel: Channel, row: Option<&ChannelRow>) -> Value {
    let mut details = view(channel, row);
    if let Some(object) = details.as_object_mut() {
        object.remove("updated_at");
    }
    details
}

/// `GET .../channels`: every channel, configured or not.
async fn list(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path, "partner")?)?;
    let mut views = Vec::new();
    for &channel in Channel::ALL {
        let row = channels::get(&state.store, entry.partner.partner_id, channel).await?;
        views.push(view(channel, row.as_ref()));
    }
    Ok(HttpResponse::Ok().json(json!({ "channels": views })))
}

async fn get(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path.0, "partner")?)?;
    let channel = channels::configurable(&path.1)?;
    let row = channels::get(&state.store, entry.partner.partner_id, channel).await?;
    Ok(HttpResponse::Ok().json(view(channel, row.as_ref())))
}

fn body<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::Invalid {
        code: "invalid_request_body",
        field: "body".into(),
        message: format!("the request body is not what this endpoint expects: {e}"),
    })
}

/// `PUT .../channels/webhook` `{"url", "secret"?}`, `PUT .../channels/email` `{"from"}`,
/// `PUT .../channels/{sms|push|viber}` `{"url", "token"?}`.
async fn put(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path.0, "partner")?)?;
    let partner_id = entry.partner.partner_id;
    let channel = channels::configurable(&path.1)?;
    let row = match channel {
        Channel::Webhook => {
            let put: WebhookPut = body(payload.into_inner())?;
            channels::put_webhook(&state.store, partner_id, put).await?
        }
        Channel::Email => {
            let put: EmailPut = body(payload.into_inner())?;
            channels::put_email(&state.store, partner_id, put).await?
        }
        Channel::Sms | Channel::Push | Channel::Viber => {
            let put: GatewayPut = body(payload.into_inner())?;
            channels::put_gateway(&state.store, partner_id, channel, put).await?
        }
    };
    audit::record(
        &state.store,
        &admin.token_id,
        "channel.update",
        Some(partner_id),
        channel.as_str(),
        audit_details(channel, Some(&row)),
    )
    .await;
    Ok(HttpResponse::Ok().json(view(channel, Some(&row))))
}

/// `DELETE .../channels/{channel}`: the settings go (a webhook campaign's messages then wait,
/// failed and retried, until a gateway is set again).
async fn delete(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path.0, "partner")?)?;
    let partner_id = entry.partner.partner_id;
    let channel = channels::configurable(&path.1)?;
    if !channels::delete(&state.store, partner_id, channel).await? {
        return Err(ApiError::NotFound("channel settings"));
    }
    audit::record(
        &state.store,
        &admin.token_id,
        "channel.delete",
        Some(partner_id),
        channel.as_str(),
        json!({ "channel": channel.as_str() }),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}

/// The query of a message-log page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Page size, 1 to [`MAX_PAGE_LIMIT`] (default [`DEFAULT_PAGE_LIMIT`]).
    limit: Option<u32>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

fn cursor_of(row: &MessageRow) -> String {
    format!(
        "{}_{}",
        (row.created_at.unix_timestamp_nanos() / 1_000_000) as i64,
        row.message_id
    )
}

fn parse_cursor(text: &str) -> Result<(i64, Uuid), ApiError> {
    let bad = || ApiError::Invalid {
        code: "invalid_cursor",
        field: "cursor".into(),
        message: "`cursor` must be the `next_cursor` of a previous page".into(),
    };
    let (ms, id) = text.split_once('_').ok_or_else(bad)?;
    Ok((
        ms.parse().map_err(|_| bad())?,
        Uuid::parse_str(id).map_err(|_| bad())?,
    ))
}

/// A logged message as the API shows it (without the body: an email body may be 100,000
/// characters; nor the image or button of a push or Viber message).
fn message_view(row: &MessageRow) -> Value {
    let pending = row.status == messages::QUEUED || row.status == messages::FAILED;
    json!({
        "message_id": row.message_id,
        "campaign_id": row.campaign_id,
        "version": row.version,
        "step": row.step,
        "customer_id": row.customer_id,
        "channel": row.channel,
        "recipient": row.recipient,
        "subject": row.subject,
        "status": row.status,
        "attempts": row.attempts,
        "last_error": (!row.error.is_empty()).then_some(&row.error),
        "queued_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
        "next_attempt_at": pending.then(|| rfc3339(row.next_attempt_at)),
    })
}

async fn log_page(
    state: &AppState,
    partner_id: Uuid,
    of: LogOf<'_>,
    params: &PageParams,
) -> Result<HttpResponse, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if limit == 0 || limit > MAX_PAGE_LIMIT {
        return Err(ApiError::Invalid {
            code: "invalid_limit",
            field: "limit".into(),
            message: format!("`limit` must be 1-{MAX_PAGE_LIMIT}"),
        });
    }
    let before = params.cursor.as_deref().map(parse_cursor).transpose()?;
    let mut rows = messages::page(&state.store, partner_id, of, before, limit + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = more.then(|| rows.last().map(cursor_of)).flatten();
    let views: Vec<Value> = rows.iter().map(message_view).collect();
    Ok(HttpResponse::Ok().json(json!({ "messages": views, "next_cursor": next })))
}

/// `GET .../campaigns/{cid}/messages?limit=&cursor=`: the campaign's messages (every version),
/// newest first.
pub async fn campaign_messages(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path.0, "partner")?)?;
    let partner_id = entry.partner.partner_id;
    let campaign_id = parse_id(&path.1, "campaign")?;
    crate::campaigns::get(&state.store, partner_id, campaign_id).await?;
    log_page(&state, partner_id, LogOf::Campaign(campaign_id), &params).await
}

/// `GET .../customers/{customer_id}/messages?limit=&cursor=`: the customer's messages from
/// every campaign, newest first.
async fn customer_messages(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path.0, "partner")?)?;
    let customer = super::customers::customer_id(&path.1)?;
    log_page(
        &state,
        entry.partner.partner_id,
        LogOf::Customer(&customer),
        &params,
    )
    .await
}

/// Registers the channel and customer message-log routes inside the `/v1/admin` scope (the
/// campaign message log is in the campaigns scope, `http/campaigns.rs`).
pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .route("/partners/{id}/channels", web::get().to(list))
        .route("/partners/{id}/channels/{channel}", web::get().to(get))
        .route("/partners/{id}/channels/{channel}", web::put().to(put))
        .route(
            "/partners/{id}/channels/{channel}",
            web::delete().to(delete),
        )
        .route(
            "/partners/{id}/customers/{customer_id}/messages",
            web::get().to(customer_messages),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;
    use time::OffsetDateTime;

    #[test]
    fn a_view_says_whether_a_secret_is_set_and_never_shows_it() {
        let row = ChannelRow {
            partner_id: Uuid::nil(),
            channel: "webhook".into(),
            settings: json!({"url": "http://h/x"}).to_string(),
            secret: "s3cret-s3cret-s3cret".into(),
            updated_at: OffsetDateTime::UNIX_EPOCH,
            revision: 1,
            is_deleted: 0,
        };
        for v in [
            view(Channel::Webhook, Some(&row)),
            audit_details(Channel::Webhook, Some(&row)),
        ] {
            assert_eq!(v["secret_set"], true);
            assert_eq!(v["url"], "http://h/x");
            assert!(!v.to_string().contains("s3cret"), "{v}");
        }
        assert_eq!(view(Channel::Webhook, None)["configured"], false);
        assert_eq!(view(Channel::Email, None)["configured"], true);
        assert_eq!(view(Channel::Sms, None)["configured"], false);
        let sms = ChannelRow {
            channel: "sms".into(),
            settings: json!({"url": "https://sms.example.com/send"}).to_string(),
            secret: "tok3n-tok3n-tok3n".into(),
            ..row
        };
        for v in [
            view(Channel::Sms, Some(&sms)),
            audit_details(Channel::Sms, Some(&sms)),
        ] {
            assert_eq!(v["token_set"], true);
            assert_eq!(v["configured"], true);
            assert_eq!(v["url"], "https://sms.example.com/send");
            assert!(!v.to_string().contains("tok3n"), "{v}");
        }
    }

    #[test]
    fn a_campaign_with_a_channel_without_gateway_is_a_409_naming_the_channel() {
        let api: ApiError = ChannelError::NotConfigured {
            channel: "webhook",
            message: "the campaign sends by `webhook`, which has no gateway".into(),
        }
        .into();
        assert_eq!(api.status_code().as_u16(), 409);
        assert_eq!(api.code(), "channel_not_configured");
        assert!(api.to_string().contains("`webhook`"));
        let url: ApiError = ChannelError::InvalidUrl("has no host".into()).into();
        assert_eq!(
            (url.status_code().as_u16(), url.code()),
            (400, "invalid_webhook_url")
        );
    }

    #[test]
    fn message_cursors_round_trip_and_junk_is_refused() {
        let id = Uuid::from_u128(9);
        assert_eq!(parse_cursor(&format!("-5_{id}")).unwrap(), (-5, id));
        for bad in ["", "5", "x_y", "5_nope"] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }
}
