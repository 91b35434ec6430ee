//! Eventline segments: "customers for whom event N occurred X times during period Y".
//!
//! Pure, no I/O: a definition is parsed ([`definition`]), validated against the partner's
//! catalogue into a typed [`segment::Segment`] ([`validate`]), and then either compiled to one
//! ClickHouse query with server-side parameters ([`compile`]) or evaluated in memory by the
//! reference evaluator ([`evaluate`]) that the correctness oracle runs beside ClickHouse.
//! Calendar periods are the partner's, with `now` injected ([`period`]).

pub mod compile;
pub mod definition;
pub mod error;
pub mod evaluate;
pub mod period;
pub mod segment;
pub mod share;
pub mod validate;

pub use definition::Condition;
pub use error::{ErrorCode, FieldError, UnknownTimeZone};
pub use period::Clock;
pub use segment::Segment;
pub use validate::{validate, validate_json, Catalogue};
