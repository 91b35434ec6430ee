//! Deterministic ids of what a run produces: a message, an assigned event.
//!
//! The id is a UUIDv5 of (campaign id, version, customer, triggering event id, pass, step
//! path), so replaying a run from its saved state after a crash produces the same ids: the
//! message log refuses the second copy, and a receiver that saw the first (email `Message-ID`,
//! webhook idempotency key) can drop a resend.

use uuid::Uuid;

/// The namespace of Eventline campaign ids (a fixed random UUID; never change it, or every id
/// changes).
pub const NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_2c1e_8a3b_4c59_9e0f_5b7a_d2c4_e813);

/// The id of what step `step` of pass `round` produces for `customer` in the run that
/// `trigger_event_id` started, in version `version` of campaign `campaign_id`.
pub fn derive(
    campaign_id: &str,
    version: u64,
    customer: &str,
    trigger_event_id: &str,
    round: u32,
    step: &str,
) -> Uuid {
    // Unit separators keep the parts apart: ids and paths never contain control characters
    // (event-model's id rule).
    let name = format!("{campaign_id}\u{1f}{version}\u{1f}{customer}\u{1f}{trigger_event_id}\u{1f}{round}\u{1f}{step}");
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_inputs_give_the_same_id_and_any_part_changes_it() {
        let id = derive("c1", 3, "cust", "ev1", 0, "steps[1]");
        assert_eq!(id, derive("c1", 3, "cust", "ev1", 0, "steps[1]"));
        assert_eq!(id.get_version_num(), 5);
        for other in [
            derive("c2", 3, "cust", "ev1", 0, "steps[1]"),
            derive("c1", 4, "cust", "ev1", 0, "steps[1]"),
            derive("c1", 3, "cust2", "ev1", 0, "steps[1]"),
            derive("c1", 3, "cust", "ev2", 0, "steps[1]"),
            derive("c1", 3, "cust", "ev1", 1, "steps[1]"),
            derive("c1", 3, "cust", "ev1", 0, "steps[2]"),
            // Parts do not run into each other.
            derive("c1", 3, "cus", "tev1", 0, "steps[1]"),
        ] {
            assert_ne!(id, other);
        }
    }
}
