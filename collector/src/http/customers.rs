//! Customers: `PUT /v1/server/customers/{customer_id}` (the partner's back end upserts a
//! profile with its API key) and the admin customer card, history and manual events under
//! `/v1/admin/partners/{id}/customers/{customer_id}`.

use actix_web::{web, HttpRequest, HttpResponse};
use event_model::json::decode_event;
use event_model::timestamp::{format_rfc3339_ms, parse_rfc3339_ms};
use event_model::{validate_event, BatchTimes, ErrorCode, Violation};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::admin::{parse_id, rfc3339, Admin};
use super::ingest::{authenticate, limited, now_ms, submit_error};
use super::AppState;
use crate::audit;
use crate::customers::queries::{self, HistoryQuery, DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT};
use crate::customers::{self, ProfileError, ProfileInput};
use crate::error::ApiError;
use crate::ingest::{
    check_declared, check_source, event_row, rejected_row, IngestPath, RequestMeta,
};
use crate::registry::{PartnerEntry, SourceRow};
use crate::store::rows::{ms_to_datetime, CustomerProfileRow};

/// Profile upserts read, merge and write one after another, so two concurrent upserts of a
/// customer cannot both merge into the same old version (within this collector).
static PROFILE_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl From<ProfileError> for ApiError {
    fn from(e: ProfileError) -> ApiError {
        ApiError::Invalid {
            code: e.code,
            field: e.field.into(),
            message: e.message,
        }
    }
}

pub(super) fn customer_id(text: &str) -> Result<String, ApiError> {
    event_model::rules::check_id(text)
        .map_err(|code| ApiError::Ingest(Violation::new(code, "customer_id")))?;
    Ok(text.to_string())
}

fn system_source(entry: &PartnerEntry) -> Result<&SourceRow, ApiError> {
    entry
        .sources
        .values()
        .find(|s| s.is_system)
        .ok_or(ApiError::NotFound("system source"))
}

fn profile_view(p: &CustomerProfileRow) -> Value {
    let mut attributes = Map::new();
    for (k, v) in &p.attributes_strings {
        attributes.insert(k.clone(), json!(v));
    }
    for (k, v) in &p.attributes_numbers {
        attributes.insert(k.clone(), json!(v));
    }
    for (k, v) in &p.attributes_booleans {
        attributes.insert(k.clone(), json!(v));
    }
    for (k, v) in &p.attributes_datetimes {
        attributes.insert(k.clone(), json!({ "datetime": rfc3339(*v) }));
    }
    let consents: Map<String, Value> = p
        .consents
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
    json!({
        "customer_id": p.customer_id,
        "first_name": text(&p.first_name),
        "last_name": text(&p.last_name),
        "email": text(&p.email),
        "phone": text(&p.phone),
        "birthday": p.birthday.map(|d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())),
        "consents": consents,
        "attributes": attributes,
        "updated_at": rfc3339(p.updated_at),
    })
}

/// `PUT /v1/server/customers/{customer_id}` (partner API key; the partner's rate limit applies):
/// merges the body into the profile; a change is
/// recorded as a `customer_profile_updated` event (stored first, with an id derived from the
/// change, so a retry after a failure stores it once), then the profile row is written.
pub async fn upsert_profile(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<ProfileInput>,
) -> Result<HttpResponse, ApiError> {
    let snapshot = state.registry.snapshot();
    let partner_id = authenticate(&req, &snapshot).map_err(ApiError::Ingest)?;
    // The partner's ingest rate limit covers its profile upserts too.
    state
        .limits
        .check_partner(partner_id)
        .map_err(|l| limited(&state, l))?;
    let customer_id = customer_id(&path)?;
    let entry = snapshot
        .partner(&partner_id)
        .ok_or(ApiError::NotFound("partner"))?;
    let source = system_source(entry)?.clone();
    let now = now_ms();
    let _one_at_a_time = PROFILE_WRITES.lock().await;
    let current = queries::profile(&state.store, partner_id, &customer_id)
        .await?
        .unwrap_or_else(|| customers::empty_profile(partner_id, &customer_id));
    let today = ms_to_datetime(now).date();
    let merged = customers::merge(&current, &body, today)?;
    if merged.changes.is_empty() {
        return Ok(HttpResponse::Ok().json(json!({
            "profile": profile_view(&current),
            "changed_fields": [],
            "event_id": null,
        })));
    }
    let context = customers::profile_event_context(&merged.changes);
    let event_id = customers::profile_event_id(partner_id, &customer_id, current.version, &context);
    let event = customers::profile_event(event_id, &customer_id, &source.code, now, context);
    let meta = RequestMeta {
        path: IngestPath::Server,
        authenticated_partner: Some(partner_id),
        origin: None,
        user_agent: String::new(),
        client_ip: String::new(),
        received_at_ms: now,
    };
    let times = BatchTimes {
        sent_at_ms: now,
        received_at_ms: now,
    };
    // Generated from validated fields, so it passes; checked anyway so it is stored like any event.
    let valid = validate_event(event, times).map_err(ApiError::Ingest)?;
    let row = event_row(valid, &source, partner_id, now, &meta);
    state.sink.submit(vec![row]).await.map_err(submit_error)?;
    let mut profile = merged.row;
    let now_us = (now as u64).saturating_mul(1000);
    profile.version = now_us.max(current.version + 1);
    profile.updated_at = ms_to_datetime(now);
    state
        .store
        .insert_rows("customer_profiles", std::slice::from_ref(&profile))
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "profile": profile_view(&profile),
        "changed_fields": customers::changed_fields(&merged.changes),
        "event_id": event_id,
    })))
}

async fn card(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let partner_id = parse_id(&path.0, "partner")?;
    let customer_id = customer_id(&path.1)?;
    state.registry.partner(&partner_id)?;
    let profile = queries::profile(&state.store, partner_id, &customer_id).await?;
    let anonymous = queries::anonymous_ids(&state.store, partner_id, &customer_id).await?;
    let counts = queries::counts(&state.store, partner_id, &customer_id).await?;
    let total: u64 = counts.iter().map(|c| c.events).sum();
    let first = counts.iter().map(|c| c.first).min();
    let last = counts.iter().map(|c| c.last).max();
    let by_name: Vec<Value> = counts
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "events": c.events,
                "first_event_at": rfc3339(c.first),
                "last_event_at": rfc3339(c.last),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "customer_id": customer_id,
        "profile": profile.as_ref().map(profile_view),
        "anonymous_ids": anonymous,
        "events": total,
        "first_event_at": first.map(rfc3339),
        "last_event_at": last.map(rfc3339),
        "event_counts": by_name,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    name: Option<String>,
    source: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// A `from`/`to` bound: an RFC 3339 instant, or a `YYYY-MM-DD` day in the partner's time zone
/// (`from` = its start, `to` = its end, inclusive).
fn bound(text: &str, time_zone: &str, field: &'static str, end: bool) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::Invalid {
        code: "invalid_date",
        field: field.into(),
        message: format!("`{field}` must be a date YYYY-MM-DD (in the partner's time zone) or an RFC 3339 timestamp"),
    }
    };
    if let Some(ms) = parse_rfc3339_ms(text) {
        return Ok(if end { ms + 1 } else { ms });
    }
    let date = customers::parse_date(text).ok_or_else(bad)?;
    let tz = jiff::tz::TimeZone::get(time_zone).map_err(|_| bad())?;
    let day = jiff::civil::date(
        date.year() as i16,
        u8::from(date.month()) as i8,
        date.day() as i8,
    );
    let day = if end {
        day.tomorrow().map_err(|_| bad())?
    } else {
        day
    };
    let start = day.to_zoned_datetime(tz).map_err(|_| bad())?;
    Ok(start.timestamp().as_millisecond())
}

fn cursor_of(ms: i64, id: Uuid) -> String {
    format!("{ms}_{id}")
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

async fn history(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    params: web::Query<HistoryParams>,
) -> Result<HttpResponse, ApiError> {
    let partner_id = parse_id(&path.0, "partner")?;
    let customer_id = customer_id(&path.1)?;
    let entry = state.registry.partner(&partner_id)?;
    let limit = params.limit.unwrap_or(DEFAULT_HISTORY_LIMIT);
    if limit == 0 || limit > MAX_HISTORY_LIMIT {
        return Err(ApiError::Invalid {
            code: "invalid_limit",
            field: "limit".into(),
            message: format!("`limit` must be 1-{MAX_HISTORY_LIMIT}"),
        });
    }
    let q = HistoryQuery {
        name: params.name.clone().unwrap_or_default(),
        source: params.source.clone().unwrap_or_default(),
        from_ms: params
            .from
            .as_deref()
            .map(|t| bound(t, &entry.time_zone, "from", false))
            .transpose()?,
        until_ms: params
            .to
            .as_deref()
            .map(|t| bound(t, &entry.time_zone, "to", true))
            .transpose()?,
        before: params.cursor.as_deref().map(parse_cursor).transpose()?,
        limit: limit + 1,
    };
    let mut rows = queries::history(&state.store, partner_id, &customer_id, &q).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = more.then(|| rows.last()).flatten().map(|r| {
        cursor_of(
            (r.event_time.unix_timestamp_nanos() / 1_000_000) as i64,
            r.event_id,
        )
    });
    let events: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut context = Map::new();
            for (k, v) in &r.context_strings {
                context.insert(k.clone(), json!(v));
            }
            for (k, v) in &r.context_numbers {
                context.insert(k.clone(), json!(v));
            }
            for (k, v) in &r.context_booleans {
                context.insert(k.clone(), json!(v));
            }
            let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
            json!({
                "event_id": r.event_id,
                "event_time": rfc3339(r.event_time),
                "name": r.name,
                "source": r.source,
                "kind": r.kind,
                "customer_id": text(&r.customer_id),
                "anonymous_id": text(&r.anonymous_id),
                "session_id": text(&r.session_id),
                "ingest_path": r.ingest_path,
                "context": context,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "events": events, "next_cursor": next })))
}

/// `POST .../customers/{customer_id}/events`: an operator assigns an event by hand. The body is
/// an event of wire format v1 without `kind`, `customer_id` and `anonymous_id` (the customer is
/// the path's); `event_id` (default: a new one), `source` (default: the system source) and
/// `occurred_at` (default: now) are optional.
async fn manual_event(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<Map<String, Value>>,
) -> Result<HttpResponse, ApiError> {
    let partner_id = parse_id(&path.0, "partner")?;
    let customer_id = customer_id(&path.1)?;
    let snapshot = state.registry.snapshot();
    let entry = snapshot
        .partner(&partner_id)
        .ok_or(ApiError::NotFound("partner"))?;
    let now = now_ms();
    let mut event = body.into_inner();
    for taken in ["kind", "customer_id", "anonymous_id"] {
        if event.contains_key(taken) {
            return Err(ApiError::Ingest(
                Violation::new(ErrorCode::UnknownField, taken)
                    .with_detail("a manual event is a customer event of the customer in the path"),
            ));
        }
    }
    event.insert("kind".into(), json!("customer"));
    event.insert("customer_id".into(), json!(customer_id));
    event
        .entry("event_id")
        .or_insert_with(|| json!(Uuid::now_v7().to_string()));
    event.entry("source").or_insert_with(|| {
        json!(system_source(entry)
            .map(|s| s.code.clone())
            .unwrap_or_default())
    });
    event
        .entry("occurred_at")
        .or_insert_with(|| json!(format_rfc3339_ms(now)));
    let raw = Value::Object(event).to_string();
    let meta = RequestMeta {
        path: IngestPath::Manual,
        authenticated_partner: Some(partner_id),
        origin: None,
        user_agent: String::new(),
        client_ip: String::new(),
        received_at_ms: now,
    };
    let times = BatchTimes {
        sent_at_ms: now,
        received_at_ms: now,
    };
    let judged = decode_event(&raw)
        .and_then(|e| validate_event(e, times))
        .and_then(|valid| {
            let source = check_source(&snapshot, &partner_id, &valid.source, &meta)?;
            check_declared(entry, &valid)?;
            Ok(event_row(valid, source, partner_id, now, &meta))
        });
    let row = match judged {
        Ok(row) => row,
        Err(violation) => {
            // Quarantined like every rejection.
            let id = serde_json::from_str::<Value>(&raw)
                .ok()
                .and_then(|v| v["event_id"].as_str().map(str::to_string))
                .unwrap_or_default();
            let rejected = rejected_row(&meta, partner_id, 0, &violation, &raw, "", &id);
            state.quarantine.record(vec![rejected]);
            state
                .metrics
                .rejected
                .with_label_values(&[violation.code.as_str()])
                .inc();
            return Err(ApiError::Ingest(violation));
        }
    };
    let event_id = row.event_id;
    let (name, source) = (row.name.clone(), row.source.clone());
    let already = state.sink.submit(vec![row]).await.map_err(submit_error)?;
    let duplicate = already.contains(&(partner_id, event_id));
    // The audit log names the event, not the customer (erasure cannot reach the audit log).
    audit::record(
        &state.store,
        &admin.token_id,
        "customer.event",
        Some(partner_id),
        &event_id.to_string(),
        json!({ "name": name, "source": source, "duplicate": duplicate }),
    )
    .await;
    let status = if duplicate {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::CREATED
    };
    Ok(HttpResponse::build(status).json(json!({
        "event_id": event_id,
        "duplicate": duplicate,
        "ingest_path": IngestPath::Manual.as_str(),
    })))
}

/// Registers the customer routes inside the `/v1/admin` scope.
pub fn admin_routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .route(
            "/partners/{id}/customers/{customer_id}",
            web::get().to(card),
        )
        .route(
            "/partners/{id}/customers/{customer_id}/events",
            web::get().to(history),
        )
        .route(
            "/partners/{id}/customers/{customer_id}/events",
            web::post().to(manual_event),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        parse_rfc3339_ms(text).unwrap()
    }

    #[test]
    fn day_bounds_are_partner_local_and_follow_daylight_saving() {
        // Prague moves to summer time on 2026-03-29: that day has 23 hours.
        let tz = "Europe/Prague";
        assert_eq!(
            bound("2026-03-29", tz, "from", false).unwrap(),
            ms("2026-03-28T23:00:00Z")
        );
        assert_eq!(
            bound("2026-03-29", tz, "to", true).unwrap(),
            ms("2026-03-29T22:00:00Z")
        );
        assert_eq!(
            bound("2026-01-10", "UTC", "from", false).unwrap(),
            ms("2026-01-10T00:00:00Z")
        );
        assert_eq!(
            bound("2026-01-10T05:00:00Z", tz, "to", true).unwrap(),
            ms("2026-01-10T05:00:00Z") + 1
        );
        assert!(bound("yesterday", tz, "from", false).is_err());
        assert!(bound("2026-02-30", tz, "from", false).is_err());
    }

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let id = Uuid::now_v7();
        assert_eq!(parse_cursor(&cursor_of(-5, id)).unwrap(), (-5, id));
        for bad in ["", "12", "x_y", "12_not-a-uuid"] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }
}
