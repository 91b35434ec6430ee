//! Eventline campaigns: "the right message to the right customer at the right moment".
//!
//! Pure, no I/O: a definition is parsed ([`definition`]), validated on save against the
//! partner's catalogue ([`validate`]), its messages rendered ([`template`]), and its runs
//! advanced by a pure engine with an explicit clock ([`engine`]). The collector stores
//! definitions and states, answers the engine's segment checks with ClickHouse and sends.
//! The language is described in `docs/campaigns.md`.

pub mod content;
pub mod counters;
pub mod definition;
pub mod engine;
pub mod error;
pub mod field_ref;
pub mod message_id;
pub mod schedule;
pub mod template;
#[cfg(test)]
pub(crate) mod testing;
pub mod validate;

pub use definition::Campaign;
pub use error::{ErrorCode, FieldError};
pub use validate::{validate, validate_json, Valid};
