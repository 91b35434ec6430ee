//! Branches on a saved segment (`{"branch": {"in_segment": "<segment id>", …}}`): the segment's
//! definition is read when the step is reached (so an edit of the segment applies to runs that
//! reach the branch later) and checked for the one customer like an inline `if`
//! ([`super::runner`]'s check). A segment deleted since the campaign was saved does not hold.
//! On save, every `in_segment` must be one of the partner's live segments (`unknown_segment`).

use eventline_audience::Condition;
use eventline_campaigns::definition::{Campaign, Step};
use eventline_campaigns::{ErrorCode, FieldError};
use uuid::Uuid;

use crate::error::StorageError;
use crate::segments::{self, SegmentError};
use crate::store::Store;

/// The saved segment's definition, or `None` when the partner has no such live segment (or its
/// saved text no longer parses).
pub async fn saved_condition(
    store: &Store,
    partner_id: Uuid,
    segment_id: &str,
) -> Result<Option<Condition>, StorageError> {
    let Ok(id) = Uuid::parse_str(segment_id) else {
        return Ok(None);
    };
    match segments::get(store, partner_id, id).await {
        Ok(row) => Ok(serde_json::from_str(&row.definition).ok()),
        Err(SegmentError::Storage(e)) => Err(e),
        Err(_) => Ok(None),
    }
}

/// Every branch's `in_segment` with its path, at any depth.
fn segment_refs(campaign: &Campaign) -> Vec<(String, String)> {
    fn walk(steps: &[Step], path: &str, out: &mut Vec<(String, String)>) {
        for (i, step) in steps.iter().enumerate() {
            let here = format!("{path}[{i}]");
            match step {
                Step::Branch(b) => {
                    if let Some(id) = &b.in_segment {
                        out.push((format!("{here}.branch.in_segment"), id.clone()));
                    }
                    walk(&b.then, &format!("{here}.branch.then"), out);
                    walk(&b.otherwise, &format!("{here}.branch.else"), out);
                }
                Step::Wait(w) => walk(
                    w.on_timeout.as_deref().unwrap_or_default(),
                    &format!("{here}.wait.on_timeout"),
                    out,
                ),
                Step::Send(_) | Step::AssignEvent(_) => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(&campaign.steps, "steps", &mut out);
    out
}

/// The `unknown_segment` problems of a campaign: branches on a segment the partner does not have.
pub async fn unknown_segments(
    store: &Store,
    partner_id: Uuid,
    campaign: &Campaign,
) -> Result<Vec<FieldError>, StorageError> {
    let mut errors = Vec::new();
    for (path, id) in segment_refs(campaign) {
        if saved_condition(store, partner_id, &id).await?.is_none() {
            errors.push(FieldError::new(
                ErrorCode::UnknownSegment,
                path,
                format!("the partner has no segment `{id}`: use the id of one of its segments (GET .../segments)"),
            ));
        }
    }
    Ok(errors)
}
