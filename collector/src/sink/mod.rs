//! The sink: requests hand over their events and wait; each lane task groups them into
//! ClickHouse inserts bounded by rows, bytes and a linger period, and answers each request only
//! after every insert holding its events is committed.
//!
//! An event's lane is fixed by its `event_id`, and each lane performs every commit of its share
//! of ids in this process, one at a time. So the duplicate check (which `event_id`s are already
//! stored) and the insert that follows it cannot interleave with another commit of the same
//! event; and an insert whose answer was lost is settled (killed or seen finished) before the
//! lane's next check. That is what makes retried events land exactly once.
//!
//! Rejected rows take their own best-effort path ([`quarantine`]): no request waits for them.

mod batcher;
mod clickhouse_writer;
pub mod quarantine;

pub use batcher::{
    spawn, spawn_with_listener, BatchLimits, CommitError, CommitListener, Sink, SubmitError,
    WeakSink,
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

/// Events of one or more requests, committed together.
#[derive(Debug, Default)]
pub struct Batch {
    /// Rows for `events`, possibly holding the same event twice (a retry racing the original).
    pub events: Vec<EventRow>,
}

/// Writes batches; the ClickHouse implementation is [`ClickHouseWriter`].
pub trait BatchWriter: Send + Sync + 'static {
    /// Stores the batch, skipping events already stored (and repeats within the batch), and
    /// returns the keys that were already stored before this commit. The insert of events
    /// carries `insert_id` as its ClickHouse `query_id`. On `Err` the events were not all
    /// stored; some may be, and a later look-up finds them once the insert is settled.
    fn commit(
        &self,
        batch: Batch,
        insert_id: &str,
    ) -> impl Future<Output = Result<HashSet<EventKey>, CommitError>> + Send;

    /// Makes sure the insert `insert_id` is no longer running (killed, or finished on its
    /// own). `Ok` only once that is confirmed; until then its rows may still appear.
    fn settle(&self, insert_id: &str) -> impl Future<Output = Result<(), StorageError>> + Send;
}
