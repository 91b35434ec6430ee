//! The sink: requests hand over their events and wait; each lane task groups them into
//! ClickHouse inserts bounded by rows, bytes and a linger period, and answers each request only
//! after every insert holding its events is committed.
//!
//! An event's lane is fixed by its `event_id`, and each lane performs every commit of its share
//! of ids in this process. A lane has at most `EVENTLINE_SINK_INSERTS_IN_FLIGHT` inserts in
//! flight (default 1, so commits end in order), and looks up the next batch's duplicates while
//! they run: a key of the batch that the running insert holds is
//! decided by that insert's outcome (stored: a duplicate; in doubt: settled, then looked up
//! again), since the look-up may not see it yet. An insert whose answer was lost is settled
//! (killed or seen finished) before the lane's next look-up is trusted. That is what makes
//! retried events land exactly once.
//!
//! Rejected rows take their own best-effort path ([`quarantine`]): no request waits for them.

mod batcher;
mod clickhouse_writer;
pub mod quarantine;

pub use batcher::{
    spawn, spawn_with_listener, BatchLimits, CommitListener, Sink, SubmitError, WeakSink,
};
pub use clickhouse_writer::ClickHouseWriter;
pub use quarantine::{dropped as quarantine_dropped, Quarantine, QuarantineLimits, QuarantineTask};

use std::collections::HashSet;
use std::future::Future;

use uuid::Uuid;

use crate::error::StorageError;
use crate::store::rows::EventRow;

/// `(partner_id, event_id)`: the identity of a stored event.
pub type EventKey = (Uuid, Uuid);

/// `(partner_id, name, customer_id, event_id)`: the `events` sort key, which is also what makes
/// two rows the same event (what ReplacingMergeTree would collapse). A retry repeats all four
/// fields, since it resends the stored event unchanged.
pub type SortKey = (Uuid, String, String, Uuid);

/// The sort key of a row.
pub fn sort_key(row: &EventRow) -> SortKey {
    (
        row.partner_id,
        row.name.clone(),
        row.customer_id.clone(),
        row.event_id,
    )
}

/// Looks up and stores events; the ClickHouse implementation is [`ClickHouseWriter`].
pub trait BatchWriter: Send + Sync + 'static {
    /// Which of `keys` are already in `events`. Exact for every insert that has ended (and
    /// been settled, if its answer was lost); an insert still running may or may not be seen.
    fn stored(
        &self,
        keys: &HashSet<SortKey>,
    ) -> impl Future<Output = Result<HashSet<SortKey>, StorageError>> + Send;

    /// Inserts `rows` (no two with the same sort key) into `events` as one insert whose
    /// ClickHouse `query_id` is `insert_id`. On `Err` the outcome is open: the rows may have
    /// been stored, or may still be, until [`BatchWriter::settle`] says the insert has ended.
    fn insert(
        &self,
        rows: &[EventRow],
        insert_id: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Makes sure the insert `insert_id` is no longer running (killed, or finished on its
    /// own). `Ok` only once that is confirmed; until then its rows may still appear.
    fn settle(&self, insert_id: &str) -> impl Future<Output = Result<(), StorageError>> + Send;
}
