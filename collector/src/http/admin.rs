//! The admin API under `/v1/admin/`: partners and their event sources, behind a bearer token.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use event_model::timestamp::format_rfc3339_ms;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::AppState;
use crate::error::ApiError;
use crate::registry::{NewSource, PartnerRow, SourcePatch, SourceRow};

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

fn rfc3339(t: OffsetDateTime) -> String {
    format_rfc3339_ms((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn parse_id(text: &str, what: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::NotFound(what))
}

/// A partner as the API shows it.
#[derive(Debug, Serialize)]
pub struct PartnerView {
    id: Uuid,
    name: String,
    created_at: String,
    /// Only in the creation response: the key is not stored and cannot be shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sources: Option<Vec<SourceView>>,
}

impl PartnerView {
    fn new(p: &PartnerRow) -> PartnerView {
        PartnerView {
            id: p.partner_id,
            name: p.name.clone(),
            created_at: rfc3339(p.created_at),
            api_key: None,
            sources: None,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPartner {
    name: String,
}

async fn create_partner(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<NewPartner>,
) -> Result<HttpResponse, ApiError> {
    let (partner, api_key, sources) = state.registry.create_partner(&body.name).await?;
    let mut view = PartnerView::new(&partner);
    view.api_key = Some(api_key);
    view.sources = Some(sources.iter().map(SourceView::from).collect());
    Ok(HttpResponse::Created().json(view))
}

async fn list_partners(_: Admin, state: web::Data<AppState>) -> HttpResponse {
    let snapshot = state.registry.snapshot();
    let mut partners: Vec<&PartnerRow> = snapshot.partners().map(|e| &e.partner).collect();
    partners.sort_by_key(|p| (p.created_at, p.partner_id));
    let views: Vec<PartnerView> = partners.into_iter().map(PartnerView::new).collect();
    HttpResponse::Ok().json(serde_json::json!({ "partners": views }))
}

async fn get_partner(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "partner")?;
    let snapshot = state.registry.snapshot();
    let entry = snapshot.partner(&id).ok_or(ApiError::NotFound("partner"))?;
    let mut view = PartnerView::new(&entry.partner);
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
    Ok(HttpResponse::Ok().json(serde_json::json!({ "sources": sources })))
}

async fn create_source(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NewSource>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "partner")?;
    let source = state.registry.create_source(&id, body.into_inner()).await?;
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
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<SourcePatch>,
) -> Result<HttpResponse, ApiError> {
    let (partner, source) = (parse_id(&path.0, "partner")?, parse_id(&path.1, "source")?);
    let row = state
        .registry
        .update_source(&partner, &source, body.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(SourceView::from(&row)))
}

async fn delete_source(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (partner, source) = (parse_id(&path.0, "partner")?, parse_id(&path.1, "source")?);
    state.registry.delete_source(&partner, &source).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers the admin routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1/admin")
            .route("/partners", web::post().to(create_partner))
            .route("/partners", web::get().to(list_partners))
            .route("/partners/{id}", web::get().to(get_partner))
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
            ),
    );
}
