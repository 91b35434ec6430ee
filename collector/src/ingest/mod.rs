//! The pure processing step of ingest: a request body plus what the HTTP layer learned about
//! the request, judged against a registry snapshot, becomes rows to store and a result per
//! event. No I/O and no clock here; the handler passes `received_at` in.

use event_model::json::{decode_envelope, decode_event, Envelope};
use event_model::{
    validate_event, BatchTimes, ContextValue, ErrorCode, Event, ValidEvent, Violation,
};
use serde::Serialize;
use uuid::Uuid;

use crate::registry::{origin, PartnerEntry, Snapshot, SourceRow, UndeclaredEvents};
use crate::store::rows::{ms_to_datetime, EventRow, RejectedRow};

/// How much of a rejected event or request body is kept in `rejected_events.payload` (cut on a
/// character boundary); `payload_bytes` records the size as received. 8 KiB shows what was
/// wrong while 500 bad events of one request cannot store more than 4 MiB.
pub const MAX_STORED_PAYLOAD_BYTES: usize = 8 * 1024;

/// How much of the `User-Agent` header is stored with each event and rejected row. Real agents
/// are 100-300 bytes; the cap keeps one huge header from being copied into 500 rows.
pub const MAX_STORED_USER_AGENT_BYTES: usize = 512;

/// How much of a rejection's field name and message is stored and returned. Field names come
/// from the request (an unknown key can be 30 KiB), so they are capped like any echoed input.
pub const MAX_REASON_FIELD_BYTES: usize = 256;
/// See [`MAX_REASON_FIELD_BYTES`].
pub const MAX_REASON_MESSAGE_BYTES: usize = 1024;

/// Which door an event came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestPath {
    /// Browsers and apps: `POST /v1/events`, partner named in the batch, Origin checked.
    Client,
    /// The partner's back end: `POST /v1/server/events`, partner from its API key (and the
    /// profile events of `PUT /v1/server/customers/{id}`).
    Server,
    /// An operator, by hand: `POST /v1/admin/partners/{id}/customers/{customer_id}/events`.
    Manual,
    /// A campaign's `assign_event` step (`campaigns::assign`).
    Campaign,
}

impl IngestPath {
    /// Storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            IngestPath::Client => "client",
            IngestPath::Server => "server",
            IngestPath::Manual => "manual",
            IngestPath::Campaign => "campaign",
        }
    }
}

/// What the HTTP layer knows about a request.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// The door.
    pub path: IngestPath,
    /// The partner proven by an API key (server path only).
    pub authenticated_partner: Option<Uuid>,
    /// The `Origin` header, if any.
    pub origin: Option<String>,
    /// The `User-Agent` header (rows store at most [`MAX_STORED_USER_AGENT_BYTES`] of it).
    pub user_agent: String,
    /// Client IP as stored (truncated, whole or empty, as configured).
    pub client_ip: String,
    /// Server clock at receipt, Unix ms.
    pub received_at_ms: i64,
}

/// The outcome for one event of the batch.
#[derive(Debug, Clone, Serialize)]
pub struct EventResult {
    /// Position in the batch.
    pub index: usize,
    /// The `event_id` as sent (empty if unreadable).
    pub event_id: String,
    /// `accepted` or `rejected`.
    pub status: &'static str,
    /// Set on an accepted event that had already been stored (a retry); it was not stored again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// Reason code when rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// Offending field when rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Human message when rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A batch judged event by event.
#[derive(Debug)]
pub struct Prepared {
    /// The partner every event of the batch belongs to.
    pub partner_id: Uuid,
    /// Rows for `events`.
    pub events: Vec<EventRow>,
    /// Rows for `rejected_events`.
    pub rejected: Vec<RejectedRow>,
    /// One result per event, in batch order.
    pub results: Vec<EventResult>,
    /// The first rejection, which decides the status when nothing was accepted.
    pub first_rejection: Option<Violation>,
}

/// A request refused as a whole.
#[derive(Debug)]
pub struct RequestRejection {
    /// Why.
    pub violation: Violation,
    /// The partner the request was established to come from (API key, or a known `partner_id`).
    pub partner_id: Option<Uuid>,
    /// The row that records it in `rejected_events`, only when `partner_id` is known: a request
    /// of nobody in particular is counted, not stored, so it cannot fill the table (boxed: it is
    /// large and travels in `Err`).
    pub row: Option<Box<RejectedRow>>,
}

/// `text` cut to at most `max` bytes on a character boundary.
pub fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A violation's message, cut to [`MAX_REASON_MESSAGE_BYTES`].
pub fn capped_message(violation: &Violation) -> String {
    let mut message = violation.message();
    let keep = truncate_utf8(&message, MAX_REASON_MESSAGE_BYTES).len();
    message.truncate(keep);
    message
}

/// The `rejected_events` row of one refused event (`index` −1: the whole request).
pub fn rejected_row(
    meta: &RequestMeta,
    partner_id: Uuid,
    index: i32,
    violation: &Violation,
    payload: &str,
    source: &str,
    event_id: &str,
) -> RejectedRow {
    RejectedRow {
        received_at: ms_to_datetime(meta.received_at_ms),
        partner_id,
        source: source.into(),
        event_id: event_id.into(),
        event_index: index,
        reason_code: violation.code.as_str().into(),
        reason_field: truncate_utf8(&violation.field, MAX_REASON_FIELD_BYTES).into(),
        reason_message: capped_message(violation),
        payload: truncate_utf8(payload, MAX_STORED_PAYLOAD_BYTES).into(),
        payload_bytes: u32::try_from(payload.len()).unwrap_or(u32::MAX),
        ingest_path: meta.path.as_str().into(),
        user_agent: truncate_utf8(&meta.user_agent, MAX_STORED_USER_AGENT_BYTES).into(),
        client_ip: meta.client_ip.clone(),
    }
}

/// A request refused before its events could be judged (too large, bad encoding, bad
/// envelope), as coming from `partner_id` if that is established.
pub fn reject_request(
    meta: &RequestMeta,
    violation: Violation,
    payload: &str,
    partner_id: Option<Uuid>,
) -> RequestRejection {
    let row = partner_id
        .map(|partner| Box::new(rejected_row(meta, partner, -1, &violation, payload, "", "")));
    RequestRejection {
        violation,
        partner_id,
        row,
    }
}

/// The known partner a body that failed envelope decoding names, if its JSON is readable that
/// far (an empty batch or a bad `sent_at` of a real partner is still that partner's mistake).
fn partner_named_in(body: &str, snapshot: &Snapshot) -> Option<Uuid> {
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        partner_id: Option<&'a str>,
    }
    let named: Named<'_> = serde_json::from_str(body).ok()?;
    let id = Uuid::parse_str(named.partner_id?).ok()?;
    snapshot.partner(&id).map(|_| id)
}

fn resolve_partner(
    declared: Option<&str>,
    meta: &RequestMeta,
    snapshot: &Snapshot,
) -> Result<Uuid, Violation> {
    let declared = match declared {
        Some(text) => Some(Uuid::parse_str(text).map_err(|_| {
            Violation::new(ErrorCode::UnknownPartner, "partner_id").with_detail("not a UUID")
        })?),
        None => None,
    };
    match (meta.authenticated_partner, declared) {
        (Some(authed), Some(declared)) if authed != declared => {
            Err(Violation::new(ErrorCode::InvalidApiKey, "partner_id")
                .with_detail("the API key belongs to another partner"))
        }
        (Some(authed), _) => Ok(authed),
        (None, None) => Err(Violation::new(ErrorCode::UnknownPartner, "partner_id")
            .with_detail("`partner_id` is required")),
        (None, Some(id)) if snapshot.partner(&id).is_some() => Ok(id),
        (None, Some(_)) => Err(Violation::new(ErrorCode::UnknownPartner, "partner_id")
            .with_detail("no partner has this id; copy it from the admin API")),
    }
}

/// The event's source: a live source of the partner, active, and (on the client path) admitting
/// the request's Origin.
pub fn check_source<'a>(
    snapshot: &'a Snapshot,
    partner_id: &Uuid,
    code: &str,
    meta: &RequestMeta,
) -> Result<&'a SourceRow, Violation> {
    let source = snapshot
        .partner(partner_id)
        .and_then(|p| p.sources.get(code))
        .ok_or_else(|| {
            Violation::new(ErrorCode::UnknownSource, "source")
                .with_detail(format!("`{code}` is not a source of this partner"))
        })?;
    if !source.active {
        return Err(Violation::new(ErrorCode::SourceDisabled, "source")
            .with_detail(format!("source `{code}` is disabled")));
    }
    // Messages name neither the Origin (attacker-controlled) nor the domain (configuration):
    // they say what to do, and the partner can read the domain in its admin API.
    if meta.path == IngestPath::Client {
        match &meta.origin {
            Some(origin) if !origin::origin_allowed(origin, &source.domain) => {
                let why = if source.domain.is_empty() {
                    "the source has no domain, so it takes no browser requests; give it the site's"
                } else {
                    "send from the source's domain or one of its subdomains"
                };
                return Err(Violation::new(ErrorCode::OriginNotAllowed, "source").with_detail(why));
            }
            None if !source.domain.is_empty() => {
                return Err(
                    Violation::new(ErrorCode::OriginRequired, "source").with_detail(
                        "apps use a source without a domain, back ends /v1/server/events",
                    ),
                );
            }
            _ => {}
        }
    }
    Ok(source)
}

/// Checks an event against the partner's catalogue: an event whose name is a live (not retired)
/// event type must match it ([`event_model::catalog::check_event_type`]); any other name is
/// accepted or refused with `undeclared_event` as the partner's setting says. In-memory
/// look-ups only.
pub fn check_declared(entry: &PartnerEntry, valid: &ValidEvent) -> Result<(), Violation> {
    let catalog = &entry.catalog;
    match catalog.live_type(&valid.name) {
        Some(event_type) => {
            event_model::catalog::check_event_type(&valid.context, event_type, |code| {
                catalog.property_type(code)
            })
        }
        None if entry.undeclared_events == UndeclaredEvents::Reject => {
            Err(Violation::new(ErrorCode::UndeclaredEvent, "name"))
        }
        None => Ok(()),
    }
}

/// Turns a valid event into its `events` row.
pub fn event_row(
    valid: ValidEvent,
    source: &SourceRow,
    partner_id: Uuid,
    sent_at_ms: i64,
    meta: &RequestMeta,
) -> EventRow {
    let mut strings = Vec::new();
    let mut numbers = Vec::new();
    let mut booleans = Vec::new();
    for (key, value) in valid.context {
        match value {
            ContextValue::String(s) => strings.push((key, s)),
            ContextValue::Number(n) => numbers.push((key, n)),
            ContextValue::Bool(b) => booleans.push((key, b)),
        }
    }
    EventRow {
        partner_id,
        event_id: Uuid::from_bytes(valid.event_id),
        kind: valid.kind.as_str().into(),
        name: valid.name,
        source: valid.source,
        source_id: source.source_id,
        customer_id: valid.customer_id.unwrap_or_default(),
        anonymous_id: valid.anonymous_id.unwrap_or_default(),
        session_id: valid.session_id.unwrap_or_default(),
        occurred_at: ms_to_datetime(valid.occurred_at_ms),
        sent_at: ms_to_datetime(sent_at_ms),
        received_at: ms_to_datetime(meta.received_at_ms),
        event_time: ms_to_datetime(valid.event_time_ms),
        context_strings: strings,
        context_numbers: numbers,
        context_booleans: booleans,
        ingest_path: meta.path.as_str().into(),
        user_agent: truncate_utf8(&meta.user_agent, MAX_STORED_USER_AGENT_BYTES).into(),
        client_ip: meta.client_ip.clone(),
    }
}

/// Best-effort `source` and `event_id` of an event that failed to decode, for the rejected row.
fn readable_ids(raw: &str) -> (String, String) {
    let value: serde_json::Value = serde_json::from_str(raw).unwrap_or_default();
    let get = |k: &str| {
        value
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    (get("source"), get("event_id"))
}

fn judge_event(
    raw: &str,
    times: BatchTimes,
    partner_id: Uuid,
    meta: &RequestMeta,
    snapshot: &Snapshot,
) -> Result<EventRow, (Violation, String, String)> {
    let event: Event = decode_event(raw).map_err(|v| {
        let (source, id) = readable_ids(raw);
        (v, source, id)
    })?;
    let (source_code, event_id) = (event.source.clone(), event.event_id.clone());
    let fail = |v: Violation| (v, source_code.clone(), event_id.clone());
    let valid = validate_event(event, times).map_err(fail)?;
    let source = check_source(snapshot, &partner_id, &valid.source, meta).map_err(fail)?;
    if let Some(entry) = snapshot.partner(&partner_id) {
        check_declared(entry, &valid).map_err(fail)?;
    }
    Ok(event_row(valid, source, partner_id, times.sent_at_ms, meta))
}

/// A body whose envelope decoded and whose partner is established; its events are not judged yet.
#[derive(Debug)]
pub struct Opened<'a> {
    /// The partner every event of the batch belongs to.
    pub partner_id: Uuid,
    envelope: Envelope<'a>,
}

/// Decodes the envelope and establishes the partner. `Err` means the whole request is refused.
pub fn open<'a>(
    body: &'a str,
    meta: &RequestMeta,
    snapshot: &Snapshot,
) -> Result<Opened<'a>, RequestRejection> {
    let envelope = decode_envelope(body).map_err(|v| {
        let partner = meta
            .authenticated_partner
            .or_else(|| partner_named_in(body, snapshot));
        reject_request(meta, v, body, partner)
    })?;
    let partner_id = resolve_partner(envelope.partner_id.as_deref(), meta, snapshot)
        .map_err(|v| reject_request(meta, v, body, meta.authenticated_partner))?;
    Ok(Opened {
        partner_id,
        envelope,
    })
}

/// Judges each event of an opened body.
pub fn judge(opened: Opened<'_>, meta: &RequestMeta, snapshot: &Snapshot) -> Prepared {
    let Opened {
        partner_id,
        envelope,
    } = opened;
    let times = BatchTimes {
        sent_at_ms: envelope.sent_at_ms,
        received_at_ms: meta.received_at_ms,
    };
    let mut prepared = Prepared {
        partner_id,
        events: Vec::with_capacity(envelope.events.len()),
        rejected: Vec::new(),
        results: Vec::with_capacity(envelope.events.len()),
        first_rejection: None,
    };
    for (index, raw) in envelope.events.iter().enumerate() {
        match judge_event(raw.get(), times, partner_id, meta, snapshot) {
            Ok(row) => {
                prepared.results.push(EventResult {
                    index,
                    event_id: row.event_id.to_string(),
                    status: "accepted",
                    duplicate: false,
                    code: None,
                    field: None,
                    message: None,
                });
                prepared.events.push(row);
            }
            Err((violation, source, event_id)) => {
                let row = rejected_row(
                    meta,
                    partner_id,
                    index as i32,
                    &violation,
                    raw.get(),
                    &source,
                    &event_id,
                );
                prepared.results.push(EventResult {
                    index,
                    event_id,
                    status: "rejected",
                    duplicate: false,
                    code: Some(violation.code.as_str()),
                    field: Some(row.reason_field.clone()),
                    message: Some(row.reason_message.clone()),
                });
                prepared.rejected.push(row);
                prepared.first_rejection.get_or_insert(violation);
            }
        }
    }
    prepared
}

/// [`open`] then [`judge`]: a decoded-to-text body judged whole. `Err` means the whole request
/// is refused.
pub fn prepare(
    body: &str,
    meta: &RequestMeta,
    snapshot: &Snapshot,
) -> Result<Prepared, RequestRejection> {
    open(body, meta, snapshot).map(|opened| judge(opened, meta, snapshot))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{PartnerRow, SourceRow};
    use event_model::timestamp::format_rfc3339_ms;

    const NOW: i64 = 1_795_600_800_000;

    fn snapshot(partner: Uuid, domain: &str, active: bool) -> Snapshot {
        let t = ms_to_datetime(NOW);
        let p = PartnerRow {
            partner_id: partner,
            name: "Acme".into(),
            api_key_sha256: crate::registry::hash_api_key("key"),
            created_at: t,
            version: 1,
            is_deleted: 0,
        };
        let s = SourceRow {
            partner_id: partner,
            source_id: Uuid::from_u128(7),
            code: "online_store".into(),
            name: "Online Store".into(),
            domain: domain.into(),
            active,
            is_system: true,
            created_at: t,
            updated_at: t,
            version: 1,
            is_deleted: 0,
        };
        Snapshot::build(vec![p], vec![s])
    }

    fn meta(path: IngestPath, origin: Option<&str>) -> RequestMeta {
        RequestMeta {
            path,
            authenticated_partner: None,
            origin: origin.map(str::to_string),
            user_agent: "ua".into(),
            client_ip: "127.0.0.1".into(),
            received_at_ms: NOW,
        }
    }

    fn body(partner: Option<Uuid>, events: &[&str]) -> String {
        let partner = partner
            .map(|p| format!(r#""partner_id":"{p}","#))
            .unwrap_or_default();
        format!(
            r#"{{{partner}"sent_at":"{}","events":[{}]}}"#,
            format_rfc3339_ms(NOW - 1_000),
            events.join(",")
        )
    }

    fn event(extra: &str) -> String {
        format!(
            r#"{{"event_id":"0192f0c6-3b7a-7cde-8f00-0123456789ab","kind":"customer","name":"view","source":"online_store","customer_id":"c","occurred_at":"{}"{extra}}}"#,
            format_rfc3339_ms(NOW - 3_000)
        )
    }

    #[test]
    fn a_good_event_becomes_a_row_with_corrected_time_and_split_context() {
        let p = Uuid::from_u128(1);
        let snap = snapshot(p, "shop.example", true);
        let e = event(r#","context":{"category":"Jacket","points":150,"vip":true}"#);
        let prepared = prepare(
            &body(Some(p), &[&e]),
            &meta(IngestPath::Client, Some("https://shop.example")),
            &snap,
        )
        .unwrap();
        assert_eq!(prepared.results[0].status, "accepted");
        let row = &prepared.events[0];
        assert_eq!(row.source_id, Uuid::from_u128(7));
        assert_eq!(
            row.event_time,
            ms_to_datetime(NOW - 2_000),
            "2 s old when sent"
        );
        assert_eq!(
            row.context_strings,
            vec![("category".into(), "Jacket".into())]
        );
        assert_eq!(row.context_numbers, vec![("points".into(), 150.0)]);
        assert_eq!(row.context_booleans, vec![("vip".into(), true)]);
    }

    #[test]
    fn origin_rules_apply_to_browsers_only() {
        let p = Uuid::from_u128(1);
        let snap = snapshot(p, "shop.example", true);
        let b = body(Some(p), &[&event("")]);
        let wrong = prepare(
            &b,
            &meta(IngestPath::Client, Some("https://evil.example")),
            &snap,
        )
        .unwrap();
        assert_eq!(wrong.results[0].code, Some("origin_not_allowed"));
        assert_eq!(wrong.rejected[0].reason_code, "origin_not_allowed");
        let no_origin = prepare(&b, &meta(IngestPath::Client, None), &snap).unwrap();
        assert_eq!(
            no_origin.results[0].code,
            Some("origin_required"),
            "a source with a domain is for browsers"
        );
        let app_source = snapshot(p, "", true);
        let app = prepare(&b, &meta(IngestPath::Client, None), &app_source).unwrap();
        assert_eq!(app.results[0].status, "accepted", "apps send no Origin");
        let browser_to_app = prepare(
            &b,
            &meta(IngestPath::Client, Some("https://shop.example")),
            &app_source,
        )
        .unwrap();
        assert_eq!(browser_to_app.results[0].code, Some("origin_not_allowed"));
        let mut server = meta(IngestPath::Server, Some("https://evil.example"));
        server.authenticated_partner = Some(p);
        assert_eq!(
            prepare(&b, &server, &snap).unwrap().results[0].status,
            "accepted"
        );
    }

    #[test]
    fn a_disabled_source_and_an_unknown_partner_are_refused() {
        let p = Uuid::from_u128(1);
        let snap = snapshot(p, "", false);
        let disabled = prepare(
            &body(Some(p), &[&event("")]),
            &meta(IngestPath::Client, None),
            &snap,
        )
        .unwrap();
        assert_eq!(
            disabled.first_rejection.unwrap().code,
            ErrorCode::SourceDisabled
        );
        let unknown = prepare(
            &body(Some(Uuid::from_u128(2)), &[&event("")]),
            &meta(IngestPath::Client, None),
            &snap,
        )
        .unwrap_err();
        assert_eq!(unknown.violation.code, ErrorCode::UnknownPartner);
        assert!(
            unknown.row.is_none(),
            "nobody's request is counted, not stored"
        );
        let missing = prepare(
            &body(None, &[&event("")]),
            &meta(IngestPath::Client, None),
            &snap,
        )
        .unwrap_err();
        assert_eq!(missing.violation.code, ErrorCode::UnknownPartner);
        assert!(missing.row.is_none());
    }

    #[test]
    fn a_bad_envelope_of_a_known_partner_is_stored_under_that_partner() {
        let p = Uuid::from_u128(1);
        let snap = snapshot(p, "", true);
        let client = meta(IngestPath::Client, None);
        let empty = body(Some(p), &[]);
        let known = prepare(&empty, &client, &snap).unwrap_err();
        assert_eq!(known.violation.code, ErrorCode::EmptyBatch);
        let row = known.row.expect("stored");
        assert_eq!((row.partner_id, row.event_index), (p, -1));
        let stranger = prepare(&body(Some(Uuid::from_u128(2)), &[]), &client, &snap).unwrap_err();
        assert_eq!(stranger.violation.code, ErrorCode::EmptyBatch);
        assert!(stranger.row.is_none());
        let junk = prepare("{", &client, &snap).unwrap_err();
        assert!(junk.row.is_none());
        let mut server = meta(IngestPath::Server, None);
        server.authenticated_partner = Some(p);
        let row = prepare("{", &server, &snap)
            .unwrap_err()
            .row
            .expect("stored");
        assert_eq!(row.partner_id, p, "the API key establishes the partner");
    }

    #[test]
    fn stored_header_values_payloads_and_messages_are_capped_and_never_name_origin_or_domain() {
        let p = Uuid::from_u128(1);
        let snap = snapshot(p, "secret-shop.example", true);
        let mut m = meta(IngestPath::Client, Some("https://evil-origin.example"));
        m.user_agent = "я".repeat(50_000);
        let big = event(&format!(r#","context":{{"k":"{}"}}"#, "x".repeat(20_000)));
        let long_key = event(&format!(r#","{}":1"#, "z".repeat(20_000)));
        let b = body(Some(p), &[&event(""), &big, &long_key]);
        let prepared = prepare(&b, &m, &snap).unwrap();
        assert_eq!(prepared.rejected.len(), 3);
        for row in &prepared.rejected {
            assert!(row.user_agent.len() <= MAX_STORED_USER_AGENT_BYTES);
            assert!(row.user_agent.len() > MAX_STORED_USER_AGENT_BYTES - 2);
            assert!(row.payload.len() <= MAX_STORED_PAYLOAD_BYTES);
            assert!(row.reason_field.len() <= MAX_REASON_FIELD_BYTES);
            assert!(row.reason_message.len() <= MAX_REASON_MESSAGE_BYTES);
            for text in [&row.reason_message, &row.payload] {
                assert!(!text.contains("evil-origin"), "{text}");
                assert!(!text.contains("secret-shop"), "{text}");
            }
        }
        assert_eq!(prepared.rejected[1].payload_bytes as usize, big.len());
        assert_eq!(prepared.rejected[0].payload_bytes as usize, event("").len());
        for result in &prepared.results {
            let message = result.message.as_deref().unwrap_or_default();
            assert!(message.len() <= MAX_REASON_MESSAGE_BYTES);
            assert!(!message.contains("evil-origin") && !message.contains("secret-shop"));
        }
        let mut app = m.clone();
        app.origin = None;
        let accepted =
            prepare(&body(Some(p), &[&event("")]), &app, &snapshot(p, "", true)).unwrap();
        assert_eq!(
            accepted.events[0].user_agent.len(),
            MAX_STORED_USER_AGENT_BYTES
        );
    }

    #[test]
    fn an_api_key_cannot_write_for_another_partner() {
        let p = Uuid::from_u128(1);
        let snap = snapshot(p, "", true);
        let mut server = meta(IngestPath::Server, None);
        server.authenticated_partner = Some(p);
        let err = prepare(
            &body(Some(Uuid::from_u128(2)), &[&event("")]),
            &server,
            &snap,
        )
        .unwrap_err();
        assert_eq!(err.violation.code, ErrorCode::InvalidApiKey);
    }

    #[test]
    fn an_undecodable_event_keeps_its_raw_text_and_readable_ids() {
        let p = Uuid::from_u128(1);
        let snap = snapshot(p, "", true);
        let bad = event(r#","contxt":{}"#);
        let prepared = prepare(
            &body(Some(p), &[&event(""), &bad]),
            &meta(IngestPath::Client, None),
            &snap,
        )
        .unwrap();
        assert_eq!(prepared.events.len(), 1);
        let r = &prepared.rejected[0];
        assert_eq!(
            (
                r.reason_code.as_str(),
                r.reason_field.as_str(),
                r.event_index
            ),
            ("unknown_field", "contxt", 1)
        );
        assert_eq!(r.event_id, "0192f0c6-3b7a-7cde-8f00-0123456789ab");
        assert_eq!(r.source, "online_store");
        assert_eq!(r.payload, bad);
    }

    #[test]
    fn stored_payloads_are_cut_on_a_character_boundary() {
        let text = "я".repeat(MAX_STORED_PAYLOAD_BYTES);
        let cut = truncate_utf8(&text, MAX_STORED_PAYLOAD_BYTES + 1);
        assert_eq!(cut.len(), MAX_STORED_PAYLOAD_BYTES);
    }
}
