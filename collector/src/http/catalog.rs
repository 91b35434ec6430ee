//! The event catalogue admin API: `/v1/admin/partners/{id}/event-properties` and
//! `/event-types` (list, create, get, patch; DELETE retires). Registry failures map to HTTP in
//! `admin.rs`.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use serde_json::json;

use super::admin::{parse_id, rfc3339, Admin};
use super::AppState;
use crate::audit;
use crate::error::ApiError;
use crate::registry::catalog::{
    Catalog, CatalogType, EventTypePatch, NewEventType, NewProperty, PropertyPatch,
};
use crate::registry::{EventTypeRow, PropertyRow};

/// A property as the API shows it.
#[derive(Debug, Serialize)]
pub struct PropertyView {
    code: String,
    name: String,
    #[serde(rename = "type")]
    ty: String,
    predefined: bool,
    retired: bool,
    created_at: String,
    updated_at: String,
}

impl From<&PropertyRow> for PropertyView {
    fn from(p: &PropertyRow) -> PropertyView {
        PropertyView {
            code: p.code.clone(),
            name: p.name.clone(),
            ty: p.ty.clone(),
            predefined: p.predefined,
            retired: p.retired,
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
        }
    }
}

/// A property as an event type lists it, with the catalogue's name and type.
#[derive(Debug, Serialize)]
struct TypePropertyView {
    code: String,
    required: bool,
    name: Option<String>,
    #[serde(rename = "type")]
    ty: Option<String>,
}

/// An event type as the API shows it.
#[derive(Debug, Serialize)]
pub struct EventTypeView {
    code: String,
    name: String,
    kind: String,
    properties: Vec<TypePropertyView>,
    predefined: bool,
    retired: bool,
    created_at: String,
    updated_at: String,
}

impl EventTypeView {
    fn new(t: &EventTypeRow, catalog: &Catalog) -> EventTypeView {
        EventTypeView {
            code: t.code.clone(),
            name: t.name.clone(),
            kind: t.kind.clone(),
            properties: t
                .property_codes
                .iter()
                .zip(t.property_required.iter())
                .map(|(code, required)| {
                    let p = catalog.property(code);
                    TypePropertyView {
                        code: code.clone(),
                        required: *required,
                        name: p.map(|p| p.name.clone()),
                        ty: p.map(|p| p.ty.clone()),
                    }
                })
                .collect(),
            predefined: t.predefined,
            retired: t.retired,
            created_at: rfc3339(t.created_at),
            updated_at: rfc3339(t.updated_at),
        }
    }
}

async fn list_properties(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let catalog = state.registry.catalog(&parse_id(&path, "partner")?)?;
    let views: Vec<PropertyView> = catalog
        .properties()
        .into_iter()
        .map(PropertyView::from)
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "event_properties": views })))
}

async fn create_property(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NewProperty>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "partner")?;
    let row = state
        .registry
        .create_property(&id, body.into_inner())
        .await?;
    audit::record(
        &state.store,
        &admin.token_id,
        "event_property.create",
        Some(id),
        &row.code,
        json!({ "type": row.ty }),
    )
    .await;
    Ok(HttpResponse::Created().json(PropertyView::from(&row)))
}

async fn get_property(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let catalog = state.registry.catalog(&parse_id(&path.0, "partner")?)?;
    let row = catalog
        .property(&path.1)
        .ok_or(ApiError::NotFound("event property"))?;
    Ok(HttpResponse::Ok().json(PropertyView::from(row)))
}

async fn patch_property(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<PropertyPatch>,
    action: &'static str,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.0, "partner")?;
    let patch = body.into_inner();
    let fields = changed(&[
        ("name", patch.name.is_some()),
        ("type", patch.ty.is_some()),
        ("retired", patch.retired.is_some()),
    ]);
    let row = state.registry.update_property(&id, &path.1, patch).await?;
    audit::record(
        &state.store,
        &admin.token_id,
        action,
        Some(id),
        &row.code,
        json!({ "fields": fields, "retired": row.retired }),
    )
    .await;
    Ok(HttpResponse::Ok().json(PropertyView::from(&row)))
}

async fn update_property(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<PropertyPatch>,
) -> Result<HttpResponse, ApiError> {
    patch_property(admin, state, path, body, "event_property.update").await
}

async fn retire_property(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let retire = PropertyPatch {
        retired: Some(true),
        ..PropertyPatch::default()
    };
    patch_property(
        admin,
        state,
        path,
        web::Json(retire),
        "event_property.retire",
    )
    .await
}

fn changed(fields: &[(&'static str, bool)]) -> Vec<&'static str> {
    fields
        .iter()
        .filter_map(|(field, set)| set.then_some(*field))
        .collect()
}

async fn list_types(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let catalog = state.registry.catalog(&parse_id(&path, "partner")?)?;
    let views: Vec<EventTypeView> = catalog
        .types()
        .into_iter()
        .map(|t: &CatalogType| EventTypeView::new(&t.row, &catalog))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "event_types": views })))
}

async fn create_type(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NewEventType>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "partner")?;
    let row = state
        .registry
        .create_event_type(&id, body.into_inner())
        .await?;
    audit::record(
        &state.store,
        &admin.token_id,
        "event_type.create",
        Some(id),
        &row.code,
        json!({ "kind": row.kind, "properties": row.property_codes }),
    )
    .await;
    let catalog = state.registry.catalog(&id)?;
    Ok(HttpResponse::Created().json(EventTypeView::new(&row, &catalog)))
}

async fn get_type(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let catalog = state.registry.catalog(&parse_id(&path.0, "partner")?)?;
    let t = catalog
        .event_type(&path.1)
        .ok_or(ApiError::NotFound("event type"))?;
    Ok(HttpResponse::Ok().json(EventTypeView::new(&t.row, &catalog)))
}

async fn patch_type(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    patch: EventTypePatch,
    action: &'static str,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.0, "partner")?;
    let fields = changed(&[
        ("name", patch.name.is_some()),
        ("kind", patch.kind.is_some()),
        ("properties", patch.properties.is_some()),
        ("retired", patch.retired.is_some()),
    ]);
    let row = state
        .registry
        .update_event_type(&id, &path.1, patch)
        .await?;
    audit::record(
        &state.store,
        &admin.token_id,
        action,
        Some(id),
        &row.code,
        json!({ "fields": fields, "retired": row.retired, "properties": row.property_codes }),
    )
    .await;
    let catalog = state.registry.catalog(&id)?;
    Ok(HttpResponse::Ok().json(EventTypeView::new(&row, &catalog)))
}

async fn update_type(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<EventTypePatch>,
) -> Result<HttpResponse, ApiError> {
    patch_type(admin, state, path, body.into_inner(), "event_type.update").await
}

async fn retire_type(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let retire = EventTypePatch {
        retired: Some(true),
        ..EventTypePatch::default()
    };
    patch_type(admin, state, path, retire, "event_type.retire").await
}

/// Registers the catalogue routes inside the `/v1/admin` scope.
pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .route(
            "/partners/{id}/event-properties",
            web::get().to(list_properties),
        )
        .route(
            "/partners/{id}/event-properties",
            web::post().to(create_property),
        )
        .route(
            "/partners/{id}/event-properties/{code}",
            web::get().to(get_property),
        )
        .route(
            "/partners/{id}/event-properties/{code}",
            web::patch().to(update_property),
        )
        .route(
            "/partners/{id}/event-properties/{code}",
            web::delete().to(retire_property),
        )
        .route("/partners/{id}/event-types", web::get().to(list_types))
        .route("/partners/{id}/event-types", web::post().to(create_type))
        .route("/partners/{id}/event-types/{code}", web::get().to(get_type))
        .route(
            "/partners/{id}/event-types/{code}",
            web::patch().to(update_type),
        )
        .route(
            "/partners/{id}/event-types/{code}",
            web::delete().to(retire_type),
        )
}
