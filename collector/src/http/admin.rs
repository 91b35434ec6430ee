//! The admin API under `/v1/admin/`: partners, their sources and API keys, erasure jobs and
//! the audit log, behind a bearer token. Registry failures become HTTP answers here, in
//! [`From<RegistryError> for ApiError`].

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use event_model::timestamp::format_rfc3339_ms;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::AppState;
use crate::audit;
use crate::error::ApiError;
use crate::registry::{
    ApiKeyRow, NewSource, PartnerEntry, PartnerRow, RegistryError, SettingsPatch, SourcePatch,
    SourceRow, UndeclaredEvents, DEFAULT_TIME_ZONE,
};
use crate::store::rows::{AuditRow, ErasureJobRow};

/// Proof that the request carried an admin token; take it as a handler argument.
pub struct Admin {
    /// Id of the token used (see [`crate::admin_token::token_id`]), for audit rows.
    pub token_id: String,
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req
            .app_data::<web::Data<AppState>>()
            .expect("state is registered");
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        ready(match token {
            None => Err(ApiError::MissingAdminToken),
            Some(t) => match state.admin_tokens.verify(t) {
                Some(id) => Ok(Admin {
                    token_id: id.to_string(),
                }),
                None => Err(ApiError::InvalidAdminToken),
            },
        })
    }
}

pub(super) fn rfc3339(t: OffsetDateTime) -> String {
    format_rfc3339_ms((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// The one mapping of registry failures to HTTP answers.
impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> ApiError {
        let message = error.to_string();
        match error {
            RegistryError::InvalidName { field } => ApiError::Invalid {
                code: "invalid_name",
                field: field.into(),
                message,
            },
            RegistryError::InvalidTimeZone => invalid("invalid_time_zone", "time_zone", message),
            RegistryError::InvalidUndeclaredEvents => {
                invalid("invalid_undeclared_events", "undeclared_events", message)
            }
            RegistryError::EmptyPatch => invalid("empty_patch", "body", message),
            RegistryError::InvalidPropertyCode(_) => {
                invalid("invalid_property_code", "code", message)
            }
            RegistryError::InvalidEventTypeCode(_) => {
                invalid("invalid_event_type_code", "code", message)
            }
            RegistryError::InvalidPropertyType => invalid("invalid_property_type", "type", message),
            RegistryError::InvalidEventKind => invalid("invalid_kind", "kind", message),
            RegistryError::TooManyTypeProperties => {
                invalid("too_many_properties", "properties", message)
            }
            RegistryError::UnknownProperty { index, .. } => ApiError::Invalid {
                code: "unknown_property",
                field: format!("properties[{index}].code").into(),
                message,
            },
            RegistryError::PropertyRetired { index, .. } => ApiError::Invalid {
                code: "property_retired",
                field: format!("properties[{index}].code").into(),
                message,
            },
            RegistryError::DuplicateProperty { index, .. } => ApiError::Invalid {
                code: "duplicate_property",
                field: format!("properties[{index}].code").into(),
                message,
            },
            RegistryError::PropertyCodeTaken(_) => ApiError::Conflict {
                code: "property_code_taken",
                message,
            },
            RegistryError::EventTypeCodeTaken(_) => ApiError::Conflict {
                code: "event_type_code_taken",
                message,
            },
            RegistryError::PropertyTypeImmutable(_) => ApiError::Conflict {
                code: "property_type_immutable",
                message,
            },
            RegistryError::PropertyNotFound => ApiError::NotFound("event property"),
            RegistryError::EventTypeNotFound => ApiError::NotFound("event type"),
            RegistryError::InvalidCode(violation) => ApiError::Ingest(violation),
            RegistryError::InvalidDomain(_) => ApiError::Invalid {
                code: "invalid_domain",
                field: "domain".into(),
                message,
            },
            RegistryError::InvalidRetention => ApiError::Invalid {
                code: "invalid_retention",
                field: "retention_days".into(),
                message,
            },
            RegistryError::PartnerNotFound => ApiError::NotFound("partner"),
            RegistryError::SourceNotFound => ApiError::NotFound("source"),
            RegistryError::ApiKeyNotFound => ApiError::NotFound("API key"),
            RegistryError::SourceCodeTaken(_) => ApiError::Conflict {
                code: "source_code_taken",
                message,
            },
            RegistryError::SystemSourceUndeletable(_) => ApiError::Conflict {
                code: "system_source_undeletable",
                message,
            },
            RegistryError::Storage(e) => ApiError::Storage(e),
        }
    }
}

fn invalid(code: &'static str, field: &'static str, message: String) -> ApiError {
    ApiError::Invalid {
        code,
        field: field.into(),
        message,
    }
}

pub(super) fn parse_id(text: &str, what: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::NotFound(what))
}

/// A partner as the API shows it.
#[derive(Debug, Serialize)]
pub struct PartnerView {
    id: Uuid,
    name: String,
    created_at: String,
    /// Days events are kept; `null` = kept until erased.
    retention_days: Option<u32>,
    /// IANA time zone of the partner.
    time_zone: String,
    /// `accept` or `reject`.
    undeclared_events: &'static str,
    /// Only in the creation response: the key is not stored and cannot be shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
    /// Only in the creation response: the id of that key.
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sources: Option<Vec<SourceView>>,
}

impl PartnerView {
    fn new(p: &PartnerRow) -> PartnerView {
        PartnerView {
            id: p.partner_id,
            name: p.name.clone(),
            created_at: rfc3339(p.created_at),
            retention_days: None,
            time_zone: DEFAULT_TIME_ZONE.into(),
            undeclared_events: UndeclaredEvents::Accept.as_str(),
            api_key: None,
            key_id: None,
            sources: None,
        }
    }

    fn of(entry: &PartnerEntry) -> PartnerView {
        PartnerView {
            retention_days: entry.retention_days,
            time_zone: entry.time_zone.clone(),
            undeclared_events: entry.undeclared_events.as_str(),
            ..PartnerView::new(&entry.partner)
        }
    }
}

/// A source as the API shows it.
#[derive(Debug, Serialize)]
pub struct SourceView {
    id: Uuid,
    partner_id: Uuid,
    code: String,
    name: String,
    domain: String,
    active: bool,
    system: bool,
    created_at: String,
    updated_at: String,
}

impl From<&SourceRow> for SourceView {
    fn from(s: &SourceRow) -> SourceView {
        SourceView {
            id: s.source_id,
            partner_id: s.partner_id,
            code: s.code.clone(),
            name: s.name.clone(),
            domain: s.domain.clone(),
            active: s.active,
            system: s.is_system,
            created_at: rfc3339(s.created_at),
            updated_at: rfc3339(s.updated_at),
        }
    }
}

/// An API key as the API shows it: never the key or its hash.
#[derive(Debug, Serialize)]
pub struct ApiKeyView {
    key_id: String,
    created_at: String,
    revoked_at: Option<String>,
    active: bool,
    /// Only in the creation response.
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
}

impl From<&ApiKeyRow> for ApiKeyView {
    fn from(k: &ApiKeyRow) -> ApiKeyView {
        ApiKeyView {
            key_id: k.key_id.clone(),
            created_at: rfc3339(k.created_at),
            revoked_at: k.revoked_at.map(rfc3339),
            active: k.revoked_at.is_none(),
            api_key: None,
        }
    }
}

/// An erasure job as the API shows it.
#[derive(Debug, Serialize)]
pub struct ErasureJobView {
    job_id: Uuid,
    partner_id: Uuid,
    scope: String,
    status: String,
    requested_at: String,
    not_before: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    rows_removed: serde_json::Value,
    #[serde(skip_serializing_if = "String::is_empty")]
    error: String,
}

impl From<&ErasureJobRow> for ErasureJobView {
    fn from(j: &ErasureJobRow) -> ErasureJobView {
        ErasureJobView {
            job_id: j.job_id,
            partner_id: j.partner_id,
            scope: j.scope.clone(),
            status: j.status.clone(),
            requested_at: rfc3339(j.requested_at),
            not_before: rfc3339(j.not_before),
            started_at: j.started_at.map(rfc3339),
            finished_at: j.finished_at.map(rfc3339),
            rows_removed: json!({
                "events": j.events_removed,
                "rejected_events": j.rejected_removed,
            }),
            error: j.error.clone(),
        }
    }
}

/// An audit row as the API shows it.
#[derive(Debug, Serialize)]
pub struct AuditView {
    at: String,
    actor: String,
    action: String,
    partner_id: Option<Uuid>,
    target_id: String,
    details: serde_json::Value,
}

impl From<&AuditRow> for AuditView {
    fn from(a: &AuditRow) -> AuditView {
        AuditView {
            at: rfc3339(a.at),
            actor: a.actor.clone(),
            action: a.action.clone(),
            partner_id: (!a.partner_id.is_nil()).then_some(a.partner_id),
            target_id: a.target_id.clone(),
            details: serde_json::from_str(&a.details).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPartner {
    name: String,
}

async fn create_partner(
    admin: Admin,
    state: web::Data<AppState>,
    body: web::Json<NewPartner>,
) -> Result<HttpResponse, ApiError> {
    let created = state.registry.create_partner(&body.name).await?;
    let id = created.partner.partner_id;
    audit::record(
        &state.store,
        &admin.token_id,
        "partner.create",
        Some(id),
        &id.to_string(),
        json!({ "name": created.partner.name, "key_id": created.key.key_id }),
    )
    .await;
    let mut view = PartnerView::new(&created.partner);
    view.api_key = Some(created.api_key);
    view.key_id = Some(created.key.key_id);
    view.sources = Some(created.sources.iter().map(SourceView::from).collect());
    Ok(HttpResponse::Created().json(view))
}

async fn list_partners(_: Admin, state: web::Data<AppState>) -> HttpResponse {
    let snapshot = state.registry.snapshot();
    let mut partners: Vec<&PartnerEntry> = snapshot.partners().collect();
    partners.sort_by_key(|p| (p.partner.created_at, p.partner.partner_id));
    let views: Vec<PartnerView> = partners.into_iter().map(PartnerView::of).collect();
    HttpResponse::Ok().json(json!({ "partners": views }))
}

async fn get_partner(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "partner")?;
    let entry = state.registry.partner(&id)?;
    let mut view = PartnerView::of(&entry);
    view.sources = Some(
        state
            .registry
            .sources(&id)?
            .iter()
            .map(SourceView::from)
            .collect(),
    );
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnerPatch {
    /// Absent: unchanged; `null`: cleared (events kept until erased).
    #[serde(default, deserialize_with = "present_nullable")]
    retention_days: Option<Option<u32>>,
    time_zone: Option<String>,
    undeclared_events: Option<String>,
}

/// A nullable field whose absence differs from `null`: serde leaves a missing field at its
/// default (`None`) and calls this only for a present one, `null` included (`Some(None)`).
fn present_nullable<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

async fn update_partner(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<PartnerPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "partner")?;
    let before = PartnerView::of(&state.registry.partner(&id)?);
    let body = body.into_inner();
    let fields: Vec<&str> = [
        ("retention_days", body.retention_days.is_some()),
        ("time_zone", body.time_zone.is_some()),
        ("undeclared_events", body.undeclared_events.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    let entry = state
        .registry
        .update_settings(
            &id,
            SettingsPatch {
                retention_days: body.retention_days,
                time_zone: body.time_zone,
                undeclared_events: body.undeclared_events,
            },
        )
        .await?;
    let after = PartnerView::of(&entry);
    audit::record(
        &state.store,
        &admin.token_id,
        "partner.settings",
        Some(id),
        &id.to_string(),
        json!({
            "fields": fields,
            "retention_days": after.retention_days,
            "time_zone": after.time_zone,
            "undeclared_events": after.undeclared_events,
            "previous": {
                "retention_days": before.retention_days,
                "time_zone": before.time_zone,
                "undeclared_events": before.undeclared_events,
            },
        }),
    )
    .await;
    Ok(HttpResponse::Ok().json(after))
}

async fn delete_partner(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "partner")?;
    let deleted = state.registry.delete_partner(&id).await?;
    // Other instances accept the partner's events until their next registry refresh, and a
    // commit may be in flight for up to the ClickHouse timeout: the erasure waits for both.
    let delay = std::time::Duration::from_secs(state.config.registry_refresh_secs)
        + state.config.clickhouse_timeout();
    let job = state
        .erasure
        .request_partner(id, &admin.token_id, delay)
        .await?;
    audit::record(
        &state.store,
        &admin.token_id,
        "partner.delete",
        Some(id),
        &id.to_string(),
        json!({
            "job_id": job.job_id,
            "sources": deleted.sources,
            "api_keys_revoked": deleted.api_keys,
        }),
    )
    .await;
    Ok(HttpResponse::Accepted().json(json!({ "job_id": job.job_id, "status": job.status })))
}

async fn list_sources(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "partner")?;
    let sources: Vec<SourceView> = state
        .registry
        .sources(&id)?
        .iter()
        .map(SourceView::from)
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "sources": sources })))
}

async fn create_source(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NewSource>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "partner")?;
    let source = state.registry.create_source(&id, body.into_inner()).await?;
    audit::record(
        &state.store,
        &admin.token_id,
        "source.create",
        Some(id),
        &source.source_id.to_string(),
        json!({ "code": source.code, "domain": source.domain, "active": source.active }),
    )
    .await;
    Ok(HttpResponse::Created().json(SourceView::from(&source)))
}

async fn get_source(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (partner, source) = (parse_id(&path.0, "partner")?, parse_id(&path.1, "source")?);
    Ok(HttpResponse::Ok().json(SourceView::from(&state.registry.source(&partner, &source)?)))
}

async fn update_source(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<SourcePatch>,
) -> Result<HttpResponse, ApiError> {
    let (partner, source) = (parse_id(&path.0, "partner")?, parse_id(&path.1, "source")?);
    let patch = body.into_inner();
    let changed: Vec<&str> = [
        ("name", patch.name.is_some()),
        ("code", patch.code.is_some()),
        ("domain", patch.domain.is_some()),
        ("active", patch.active.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    let row = state
        .registry
        .update_source(&partner, &source, patch)
        .await?;
    audit::record(
        &state.store,
        &admin.token_id,
        "source.update",
        Some(partner),
        &source.to_string(),
        json!({ "fields": changed, "code": row.code, "domain": row.domain, "active": row.active }),
    )
    .await;
    Ok(HttpResponse::Ok().json(SourceView::from(&row)))
}

async fn delete_source(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (partner, source) = (parse_id(&path.0, "partner")?, parse_id(&path.1, "source")?);
    let row = state.registry.delete_source(&partner, &source).await?;
    audit::record(
        &state.store,
        &admin.token_id,
        "source.delete",
        Some(partner),
        &source.to_string(),
        json!({ "code": row.code }),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}

async fn list_api_keys(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "partner")?;
    let keys: Vec<ApiKeyView> = state
        .registry
        .api_keys(&id)?
        .iter()
        .map(ApiKeyView::from)
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "api_keys": keys })))
}

async fn create_api_key(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "partner")?;
    let (row, key) = state.registry.create_api_key(&id).await?;
    audit::record(
        &state.store,
        &admin.token_id,
        "api_key.create",
        Some(id),
        &row.key_id,
        json!({}),
    )
    .await;
    let mut view = ApiKeyView::from(&row);
    view.api_key = Some(key);
    Ok(HttpResponse::Created().json(view))
}

async fn revoke_api_key(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.0, "partner")?;
    let row = state.registry.revoke_api_key(&id, &path.1).await?;
    audit::record(
        &state.store,
        &admin.token_id,
        "api_key.revoke",
        Some(id),
        &row.key_id,
        json!({}),
    )
    .await;
    Ok(HttpResponse::Ok().json(ApiKeyView::from(&row)))
}

async fn erase_customer(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.0, "partner")?;
    let customer_id = &path.1;
    event_model::rules::check_id(customer_id)
        .map_err(|code| ApiError::Ingest(event_model::Violation::new(code, "customer_id")))?;
    state.registry.partner(&id)?;
    let job = state
        .erasure
        .request_customer(id, customer_id, &admin.token_id)
        .await?;
    // The job id names the request; the customer id is not written to the audit log.
    audit::record(
        &state.store,
        &admin.token_id,
        "customer.erase",
        Some(id),
        &job.job_id.to_string(),
        json!({ "job_id": job.job_id }),
    )
    .await;
    Ok(HttpResponse::Accepted().json(json!({ "job_id": job.job_id, "status": job.status })))
}

async fn get_erasure_job(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "erasure job")?;
    let job = state
        .erasure
        .job(id)
        .await?
        .ok_or(ApiError::NotFound("erasure job"))?;
    Ok(HttpResponse::Ok().json(ErasureJobView::from(&job)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    partner_id: Option<Uuid>,
    limit: Option<u32>,
}

async fn list_audit(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(audit::DEFAULT_AUDIT_LIMIT);
    if limit == 0 || limit > audit::MAX_AUDIT_LIMIT {
        return Err(ApiError::Invalid {
            code: "invalid_limit",
            field: "limit".into(),
            message: format!("`limit` must be 1-{}", audit::MAX_AUDIT_LIMIT),
        });
    }
    let rows = audit::list(&state.store, query.partner_id, limit).await?;
    let entries: Vec<AuditView> = rows.iter().map(AuditView::from).collect();
    Ok(HttpResponse::Ok().json(json!({ "entries": entries })))
}

/// Registers the admin routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let scope = super::catalog::routes(web::scope("/v1/admin"));
    let scope = super::customers::admin_routes(scope);
    let scope = super::segments::routes(scope);
    let scope = super::campaigns::routes(scope);
    let scope = super::channels::routes(scope);
    cfg.service(
        scope
            .route("/partners", web::post().to(create_partner))
            .route("/partners", web::get().to(list_partners))
            .route("/partners/{id}", web::get().to(get_partner))
            .route("/partners/{id}", web::patch().to(update_partner))
            .route("/partners/{id}", web::delete().to(delete_partner))
            .route("/partners/{id}/sources", web::get().to(list_sources))
            .route("/partners/{id}/sources", web::post().to(create_source))
            .route("/partners/{id}/sources/{source}", web::get().to(get_source))
            .route(
                "/partners/{id}/sources/{source}",
                web::patch().to(update_source),
            )
            .route(
                "/partners/{id}/sources/{source}",
                web::delete().to(delete_source),
            )
            .route("/partners/{id}/api-keys", web::get().to(list_api_keys))
            .route("/partners/{id}/api-keys", web::post().to(create_api_key))
            .route(
                "/partners/{id}/api-keys/{key_id}",
                web::delete().to(revoke_api_key),
            )
            .route(
                "/partners/{id}/customers/{customer_id}",
                web::delete().to(erase_customer),
            )
            .route("/erasure-jobs/{job}", web::get().to(get_erasure_job))
            .route("/audit", web::get().to(list_audit)),
    );
}
