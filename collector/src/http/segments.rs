//! The segments admin API under `/v1/admin/partners/{id}/segments`: list, create, get, patch,
//! delete; a preview count of a definition without saving it (optionally per source); a
//! segment's members as keyset pages and as CSV. Segment failures map to HTTP here, in
//! [`From<SegmentError> for ApiError`]; the SQL is the audience compiler's (see
//! [`crate::segments`]).

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::admin::{parse_id, rfc3339, Admin};
use super::ingest::now_ms;
use super::AppState;
use crate::audit;
use crate::error::{ApiError, StorageError};
use crate::registry::PartnerEntry;
use crate::segments::{
    self, MemberStream, Members, SegmentError, SegmentPatch, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT,
};
use crate::store::rows::SegmentRow;

/// Member ids per chunk of a CSV export: one chunk is at most this many lines of CSV.
const CSV_CHUNK_ROWS: usize = 1000;

/// The one mapping of segment failures to HTTP answers.
impl From<SegmentError> for ApiError {
    fn from(error: SegmentError) -> ApiError {
        let message = error.to_string();
        match error {
            SegmentError::NotFound => ApiError::NotFound("segment"),
            SegmentError::Invalid(errors) => ApiError::Definition {
                code: "invalid_segment_definition",
                outdated: false,
                message,
                errors: errors.into_iter().map(Into::into).collect(),
            },
            SegmentError::Outdated(errors) => ApiError::Definition {
                code: "segment_definition_outdated",
                outdated: true,
                message,
                errors: errors.into_iter().map(Into::into).collect(),
            },
            SegmentError::TooLong => ApiError::Invalid {
                code: "definition_too_long",
                field: "definition".into(),
                message,
            },
            SegmentError::TooMany => ApiError::Conflict {
                code: "too_many_segments",
                message,
            },
            SegmentError::EmptyPatch => ApiError::Invalid {
                code: "empty_patch",
                field: "body".into(),
                message,
            },
            SegmentError::TimeZone(_) => ApiError::Conflict {
                code: "invalid_time_zone",
                message,
            },
            SegmentError::Registry(e) => e.into(),
            SegmentError::Storage(e) => ApiError::Storage(e),
        }
    }
}

fn view(row: &SegmentRow) -> Value {
    // Stored only after validation, so it parses; `null` would show a damaged row as it is.
    let definition: Value = serde_json::from_str(&row.definition).unwrap_or(Value::Null);
    json!({
        "id": row.segment_id,
        "name": row.name,
        "definition": definition,
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    })
}

fn members(state: &AppState) -> Members {
    Members::new(&state.store, state.config.segment_query_timeout())
}

/// The partner and one of its segments, checked against the catalogue as it is now.
async fn saved(
    state: &AppState,
    partner: &str,
    segment: &str,
) -> Result<(PartnerEntry, SegmentRow, eventline_audience::Segment), ApiError> {
    let entry = state.registry.partner(&parse_id(partner, "partner")?)?;
    let row = segments::get(
        &state.store,
        entry.partner.partner_id,
        parse_id(segment, "segment")?,
    )
    .await?;
    let segment = segments::check_saved(&entry, &row)?;
    Ok((entry, row, segment))
}

async fn list(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path, "partner")?)?;
    let rows = segments::list(&state.store, entry.partner.partner_id).await?;
    let views: Vec<Value> = rows.iter().map(view).collect();
    Ok(HttpResponse::Ok().json(json!({ "segments": views })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSegment {
    name: String,
    definition: Value,
}

async fn create(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NewSegment>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path, "partner")?)?;
    let row = segments::create(&state.store, &entry, &body.name, &body.definition).await?;
    audit::record(
        &state.store,
        &admin.token_id,
        "segment.create",
        Some(row.partner_id),
        &row.segment_id.to_string(),
        json!({ "name": row.name }),
    )
    .await;
    Ok(HttpResponse::Created().json(view(&row)))
}

async fn get(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let partner_id = state.registry.partner(&parse_id(&path.0, "partner")?)?;
    let row = segments::get(
        &state.store,
        partner_id.partner.partner_id,
        parse_id(&path.1, "segment")?,
    )
    .await?;
    Ok(HttpResponse::Ok().json(view(&row)))
}

async fn update(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<SegmentPatch>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path.0, "partner")?)?;
    let segment_id = parse_id(&path.1, "segment")?;
    let patch = body.into_inner();
    let fields: Vec<&str> = [
        ("name", patch.name.is_some()),
        ("definition", patch.definition.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    let row = segments::update(&state.store, &entry, segment_id, patch).await?;
    audit::record(
        &state.store,
        &admin.token_id,
        "segment.update",
        Some(row.partner_id),
        &row.segment_id.to_string(),
        json!({ "name": row.name, "fields": fields }),
    )
    .await;
    Ok(HttpResponse::Ok().json(view(&row)))
}

async fn delete(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path.0, "partner")?)?;
    let row = segments::delete(
        &state.store,
        entry.partner.partner_id,
        parse_id(&path.1, "segment")?,
    )
    .await?;
    audit::record(
        &state.store,
        &admin.token_id,
        "segment.delete",
        Some(row.partner_id),
        &row.segment_id.to_string(),
        json!({ "name": row.name }),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Preview {
    definition: Value,
    #[serde(default)]
    by_source: bool,
}

/// `POST .../segments/preview`: the member count of a definition, not saved; with
/// `"by_source": true` also the members per source (see `compile::member_count_by_source`).
async fn preview(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<Preview>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.registry.partner(&parse_id(&path, "partner")?)?;
    let segment = segments::check(&entry, &body.definition)?;
    let now = now_ms();
    let clock = segments::clock(&entry, now)?;
    let members = members(&state);
    let partner_id = entry.partner.partner_id;
    let count = members.count(partner_id, &segment, &clock).await?;
    let mut answer = json!({
        "members": count,
        "now": event_model::timestamp::format_rfc3339_ms(now),
        "time_zone": entry.time_zone,
    });
    if body.by_source {
        let rows = members
            .count_by_source(partner_id, &segment, &clock)
            .await?;
        answer["by_source"] = json!(rows);
    }
    Ok(HttpResponse::Ok().json(answer))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageParams {
    after: Option<String>,
    limit: Option<u32>,
}

/// `GET .../segments/{sid}/customers?after=&limit=`: members in `customer_id` (byte) order,
/// `limit` (1-1000, default 100) after the id `after` (the previous page's `next_cursor`);
/// `next_cursor` is `null` on the last page.
async fn page(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if limit == 0 || limit > MAX_PAGE_LIMIT {
        return Err(ApiError::Invalid {
            code: "invalid_limit",
            field: "limit".into(),
            message: format!("`limit` must be 1-{MAX_PAGE_LIMIT}"),
        });
    }
    let (entry, _, segment) = saved(&state, &path.0, &path.1).await?;
    let clock = segments::clock(&entry, now_ms())?;
    // One more than asked: whether there is a next page, without an empty last page.
    let mut ids = members(&state)
        .page(
            entry.partner.partner_id,
            &segment,
            &clock,
            params.after.as_deref(),
            limit + 1,
        )
        .await?;
    let more = ids.len() > limit as usize;
    ids.truncate(limit as usize);
    let next = more.then(|| ids.last().cloned()).flatten();
    let customers: Vec<Value> = ids
        .into_iter()
        .map(|id| json!({ "customer_id": id }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "customers": customers, "next_cursor": next })))
}

/// Member ids as CSV lines (quoted where an id holds a comma, quote or line break).
fn csv_lines(header: bool, ids: &[String]) -> Bytes {
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Into memory, one field per record: neither an I/O error nor unequal lengths can happen.
    if header {
        writer
            .write_record(["customer_id"])
            .expect("CSV into memory");
    }
    for id in ids {
        writer.write_record([id]).expect("CSV into memory");
    }
    Bytes::from(writer.into_inner().expect("CSV into memory"))
}

/// The next chunk of CSV: up to [`CSV_CHUNK_ROWS`] ids, `None` after the last.
async fn csv_chunk(
    stream: &mut MemberStream,
    first: &mut Option<String>,
) -> Result<Option<Bytes>, StorageError> {
    let mut ids: Vec<String> = first.take().into_iter().collect();
    while ids.len() < CSV_CHUNK_ROWS {
        match stream.next().await? {
            Some(id) => ids.push(id),
            None => break,
        }
    }
    if ids.is_empty() {
        return Ok(None);
    }
    Ok(Some(csv_lines(false, &ids)))
}

/// `GET .../segments/{sid}/customers.csv`: every member, one `customer_id` column with a header
/// line, in the pages' order, streamed in chunks as ClickHouse sends rows (one query). A
/// failure before the first row is an error answer; a failure later cuts the response short
/// (the chunked body never ends properly), so a truncated file cannot pass for a whole one.
async fn csv_export(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (entry, row, segment) = saved(&state, &path.0, &path.1).await?;
    let clock = segments::clock(&entry, now_ms())?;
    let mut stream = members(&state).all(entry.partner.partner_id, &segment, &clock)?;
    // The first row (or the end) before answering: a query that fails at once is a 503.
    let first = stream.next().await?;
    let head = csv_lines(true, &[]);
    // State: the rows, the first id, the header still to send, whether the export is over.
    let body = futures_util::stream::unfold(
        (stream, first, Some(head), false),
        |(mut stream, mut first, head, over)| async move {
            if over {
                return None;
            }
            if let Some(head) = head {
                return Some((Ok(head), (stream, first, None, false)));
            }
            match csv_chunk(&mut stream, &mut first).await {
                Ok(Some(chunk)) => Some((Ok(chunk), (stream, first, None, false))),
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(error = %e, "segment CSV export cut short");
                    Some((Err::<Bytes, StorageError>(e), (stream, None, None, true)))
                }
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"segment-{}.csv\"", row.segment_id),
        ))
        .streaming(body))
}

/// Registers the segment routes inside the `/v1/admin` scope.
pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .route("/partners/{id}/segments", web::get().to(list))
        .route("/partners/{id}/segments", web::post().to(create))
        .route("/partners/{id}/segments/preview", web::post().to(preview))
        .route("/partners/{id}/segments/{sid}", web::get().to(get))
        .route("/partners/{id}/segments/{sid}", web::patch().to(update))
        .route("/partners/{id}/segments/{sid}", web::delete().to(delete))
        .route(
            "/partners/{id}/segments/{sid}/customers",
            web::get().to(page),
        )
        .route(
            "/partners/{id}/segments/{sid}/customers.csv",
            web::get().to(csv_export),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_quote_ids_with_commas_quotes_and_newlines() {
        let ids = ["c-1".to_string(), "a,b".into(), "say \"hi\"".into()];
        let text = csv_lines(true, &ids);
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            "customer_id\nc-1\n\"a,b\"\n\"say \"\"hi\"\"\"\n"
        );
    }

    #[test]
    fn a_segment_error_list_becomes_a_400_with_every_problem() {
        use actix_web::ResponseError;
        let errors = vec![eventline_audience::FieldError::new(
            eventline_audience::ErrorCode::EmptyGroup,
            "all",
            "`all` needs at least one condition",
        )];
        let api: ApiError = SegmentError::Invalid(errors.clone()).into();
        assert_eq!(api.status_code().as_u16(), 400);
        let outdated: ApiError = SegmentError::Outdated(errors).into();
        assert_eq!(outdated.status_code().as_u16(), 409);
    }
}
