//! The campaigns admin API under `/v1/admin/partners/{id}/campaigns`: list, create, get,
//! edit (a new definition version), delete, the versions, validation without saving, and
//! activate / pause. Campaign failures map to HTTP here, in [`From<CampaignError> for
//! ApiError`]; storage and the lifecycle rules are in [`crate::campaigns`].

use actix_web::{web, HttpResponse};
use eventline_campaigns::definition::Status;
use serde::Deserialize;
use serde_json::{json, Value};

use super::admin::{parse_id, rfc3339, Admin};
use super::{json_config, AppState};
use crate::audit;
use crate::campaigns::dry_run::{self, DryRunError};
use crate::campaigns::{
    self, status_str, CampaignError, CampaignPatch, CampaignSummary, Transition,
    MAX_DEFINITION_BYTES,
};
use crate::error::{ApiError, FieldProblem};
use crate::store::rows::CampaignRow;

/// Largest request body of these routes: the longest definition and its wrapping.
const JSON_LIMIT: usize = MAX_DEFINITION_BYTES + 16 * 1024;

fn problems(errors: Vec<eventline_campaigns::FieldError>) -> Vec<FieldProblem> {
    errors.into_iter().map(Into::into).collect()
}

/// The one mapping of campaign failures to HTTP answers.
impl From<CampaignError> for ApiError {
    fn from(error: CampaignError) -> ApiError {
        let message = error.to_string();
        match error {
            CampaignError::NotFound => ApiError::NotFound("campaign"),
            CampaignError::VersionNotFound => ApiError::NotFound("campaign version"),
            CampaignError::Invalid(errors) => ApiError::Definition {
                code: "invalid_campaign_definition",
                outdated: false,
                message,
                errors: problems(errors),
            },
            CampaignError::Outdated(errors) => ApiError::Definition {
                code: "campaign_definition_outdated",
                outdated: true,
                message,
                errors: problems(errors),
            },
            CampaignError::TooLong => ApiError::Invalid {
                code: "definition_too_long",
                field: "definition".into(),
                message,
            },
            CampaignError::TooMany => ApiError::Conflict {
                code: "too_many_campaigns",
                message,
            },
            CampaignError::TooManyVersions => ApiError::Conflict {
                code: "too_many_campaign_versions",
                message,
            },
            CampaignError::EmptyPatch => ApiError::Invalid {
                code: "empty_patch",
                field: "body".into(),
                message,
            },
            CampaignError::StatusNotEditable { .. } => ApiError::Invalid {
                code: "status_not_editable",
                field: "definition.status".into(),
                message,
            },
            CampaignError::NotActive => ApiError::Conflict {
                code: "campaign_not_active",
                message,
            },
            CampaignError::Channel(e) => e.into(),
            CampaignError::Registry(e) => e.into(),
            CampaignError::Storage(e) => ApiError::Storage(e),
        }
    }
}

/// The trigger's kind (`event`, `system_event`, `turn_on`, `schedule`): the one key of
/// `trigger`.
fn trigger_kind(definition: &Value) -> Option<&str> {
    definition["trigger"]
        .as_object()
        .and_then(|t| t.keys().next())
        .map(String::as_str)
}

/// A campaign in a listing: no definition (one may be 512 KiB).
fn summary(row: &CampaignSummary) -> Value {
    json!({
        "id": row.campaign_id,
        "name": row.name,
        "status": row.status,
        "version": row.version,
        "trigger": row.trigger,
        "created_at": rfc3339(row.created_at),
        "saved_at": rfc3339(row.saved_at),
        "updated_at": rfc3339(row.updated_at),
    })
}

/// A campaign with its definition.
fn view(row: &CampaignRow) -> Value {
    // Stored only after validation, so it parses; `null` would show a damaged row as it is.
    let definition: Value = serde_json::from_str(&row.definition).unwrap_or(Value::Null);
    json!({
        "id": row.campaign_id,
        "name": row.name,
        "status": row.status,
        "version": row.version,
        "trigger": trigger_kind(&definition),
        "created_at": rfc3339(row.created_at),
        "saved_at": rfc3339(row.saved_at),
        "updated_at": rfc3339(row.updated_at),
        "definition": definition,
    })
}

/// What every audit row of a campaign says: never the definition.
fn audit_details(row: &CampaignRow) -> Value {
    json!({ "name": row.name, "version": row.version, "status": row.status })
}

async fn record(state: &AppState, admin: &Admin, action: &str, row: &CampaignRow, details: Value) {
    audit::record(
        &state.store,
        &admin.token_id,
        action,
        Some(row.partner_id),
        &row.campaign_id.to_string(),
        details,
    )
    .await;
}

async fn list(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path, "partner")?)?;
    let rows = campaigns::list(&state.store, entry.partner.partner_id).await?;
    let views: Vec<Value> = rows.iter().map(summary).collect();
    Ok(HttpResponse::Ok().json(json!({ "campaigns": views })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefinitionBody {
    definition: Value,
}

async fn create(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<DefinitionBody>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path, "partner")?)?;
    let row = campaigns::create(&state.store, &entry, body.into_inner().definition).await?;
    record(&state, &admin, "campaign.create", &row, audit_details(&row)).await;
    Ok(HttpResponse::Created().json(view(&row)))
}

/// `POST .../campaigns/validate`: the definition's problems against the catalogue as it is
/// now, nothing saved. `200 {"valid", "errors"}`; a missing `status` counts as `draft`.
async fn validate(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<DefinitionBody>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path, "partner")?)?;
    let checked = campaigns::check(
        &state.store,
        &entry,
        body.into_inner().definition,
        Status::Draft,
    )
    .await;
    let errors = match checked {
        Ok(_) => Vec::new(),
        Err(CampaignError::Invalid(errors)) => problems(errors),
        Err(other) => return Err(other.into()),
    };
    Ok(HttpResponse::Ok().json(json!({ "valid": errors.is_empty(), "errors": errors })))
}

async fn get(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path.0, "partner")?)?;
    let row = campaigns::get(
        &state.store,
        entry.partner.partner_id,
        parse_id(&path.1, "campaign")?,
    )
    .await?;
    Ok(HttpResponse::Ok().json(view(&row)))
}

async fn update(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<CampaignPatch>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path.0, "partner")?)?;
    let campaign_id = parse_id(&path.1, "campaign")?;
    let row = campaigns::update(&state.store, &entry, campaign_id, body.into_inner()).await?;
    record(&state, &admin, "campaign.update", &row, audit_details(&row)).await;
    Ok(HttpResponse::Ok().json(view(&row)))
}

async fn delete(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path.0, "partner")?)?;
    let row = campaigns::delete(
        &state.store,
        entry.partner.partner_id,
        parse_id(&path.1, "campaign")?,
    )
    .await?;
    record(&state, &admin, "campaign.delete", &row, audit_details(&row)).await;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET .../campaigns/{cid}/versions`: `{"versions": [{version, name, saved_at}]}`, newest
/// first.
async fn versions(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path.0, "partner")?)?;
    let rows = campaigns::versions(
        &state.store,
        entry.partner.partner_id,
        parse_id(&path.1, "campaign")?,
    )
    .await?;
    let views: Vec<Value> = rows
        .iter()
        .map(|v| json!({"version": v.version, "name": v.name, "saved_at": rfc3339(v.saved_at)}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "versions": views })))
}

/// `GET .../campaigns/{cid}/versions/{n}`: one version's name and definition as saved.
async fn version(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path.0, "partner")?)?;
    let n: u32 = path
        .2
        .parse()
        .map_err(|_| ApiError::NotFound("campaign version"))?;
    let row = campaigns::version(
        &state.store,
        entry.partner.partner_id,
        parse_id(&path.1, "campaign")?,
        n,
    )
    .await?;
    let definition: Value = serde_json::from_str(&row.definition).unwrap_or(Value::Null);
    Ok(HttpResponse::Ok().json(json!({
        "version": row.version,
        "name": row.name,
        "saved_at": rfc3339(row.saved_at),
        "definition": definition,
    })))
}

/// Audits a status change that happened (a repeated activate or pause writes nothing).
async fn transition_answer(
    state: &AppState,
    admin: &Admin,
    action: &str,
    t: Transition,
) -> HttpResponse {
    if t.changed() {
        let mut details = audit_details(&t.row);
        details["from"] = json!(status_str(t.from));
        record(state, admin, action, &t.row, details).await;
    }
    HttpResponse::Ok().json(view(&t.row))
}

async fn activate(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path.0, "partner")?)?;
    let campaign_id = parse_id(&path.1, "campaign")?;
    let t = campaigns::activate(&state.store, &entry, campaign_id).await?;
    Ok(transition_answer(&state, &admin, "campaign.activate", t).await)
}

async fn pause(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path.0, "partner")?)?;
    let campaign_id = parse_id(&path.1, "campaign")?;
    let t = campaigns::pause(&state.store, entry.partner.partner_id, campaign_id).await?;
    Ok(transition_answer(&state, &admin, "campaign.pause", t).await)
}

/// The body of a dry run.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRunBody {
    customer_id: String,
    #[serde(default)]
    event_id: Option<String>,
}

impl From<DryRunError> for ApiError {
    fn from(error: DryRunError) -> ApiError {
        let message = error.to_string();
        match error {
            DryRunError::Campaign(e) => e.into(),
            DryRunError::Storage(e) => ApiError::Storage(e),
            DryRunError::EventNotFound(_) => ApiError::NotFound("event"),
            DryRunError::NoTriggerEvent(_) => ApiError::Conflict {
                code: "no_trigger_event",
                message,
            },
            DryRunError::Schedule => ApiError::Conflict {
                code: "dry_run_unsupported",
                message,
            },
            DryRunError::Outdated => ApiError::Conflict {
                code: "campaign_definition_outdated",
                message,
            },
        }
    }
}

/// What the campaign would send one customer now, for a real stored event, writing nothing
/// ([`crate::campaigns::dry_run`]).
async fn dry_run_one(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<DryRunBody>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path.0, "partner")?)?;
    let campaign_id = parse_id(&path.1, "campaign")?;
    let DryRunBody {
        customer_id,
        event_id,
    } = body.into_inner();
    if customer_id.is_empty() || customer_id.chars().count() > event_model::limits::MAX_ID_CHARS {
        return Err(ApiError::Invalid {
            code: "invalid_customer_id",
            field: "customer_id".into(),
            message: format!(
                "`customer_id` must be 1 to {} characters",
                event_model::limits::MAX_ID_CHARS
            ),
        });
    }
    let event_id = match event_id {
        Some(id) => Some(uuid::Uuid::parse_str(&id).map_err(|_| ApiError::Invalid {
            code: "invalid_event_id",
            field: "event_id".into(),
            message: format!("`event_id` `{id}` is not a UUID"),
        })?),
        None => None,
    };
    let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let run = dry_run::dry_run(
        &state.store,
        &entry,
        campaign_id,
        &customer_id,
        event_id,
        now,
    )
    .await?;
    Ok(HttpResponse::Ok().json(run))
}

/// Registers the campaign routes inside the `/v1/admin` scope, with a JSON body limit of their
/// own (a definition may be far longer than other admin bodies).
pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope.service(
        web::scope("/partners/{id}/campaigns")
            .app_data(json_config(JSON_LIMIT))
            .route("", web::get().to(list))
            .route("", web::post().to(create))
            .route("/validate", web::post().to(validate))
            .route("/{cid}", web::get().to(get))
            .route("/{cid}", web::patch().to(update))
            .route("/{cid}", web::delete().to(delete))
            .route("/{cid}/versions", web::get().to(versions))
            .route("/{cid}/versions/{n}", web::get().to(version))
            .route("/{cid}/activate", web::post().to(activate))
            .route("/{cid}/pause", web::post().to(pause))
            .route("/{cid}/dry-run", web::post().to(dry_run_one))
            .route(
                "/{cid}/messages",
                web::get().to(super::channels::campaign_messages),
            ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;
    use eventline_campaigns::{ErrorCode, FieldError};

    #[test]
    fn a_campaign_error_list_becomes_a_400_and_a_stale_one_a_409_with_every_problem() {
        let errors = vec![FieldError::new(
            ErrorCode::UnknownEventType,
            "trigger.event.name",
            "no customer event type `x`; the customer event types are `a`, `b`",
        )];
        let api: ApiError = CampaignError::Invalid(errors.clone()).into();
        assert_eq!(api.status_code().as_u16(), 400);
        assert_eq!(api.code(), "invalid_campaign_definition");
        let outdated: ApiError = CampaignError::Outdated(errors).into();
        assert_eq!(outdated.status_code().as_u16(), 409);
        assert_eq!(outdated.code(), "campaign_definition_outdated");
    }

    #[test]
    fn the_trigger_kind_is_the_one_key_of_trigger() {
        let d = json!({"trigger": {"turn_on": {"on": ["a"], "off": ["b"]}}});
        assert_eq!(trigger_kind(&d), Some("turn_on"));
        assert_eq!(trigger_kind(&json!({})), None);
    }
}
