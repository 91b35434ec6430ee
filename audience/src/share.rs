//! Shares of the customers: which engine process (and lane) runs a customer's campaigns.
//!
//! A customer belongs to share `xxHash64(customer_id) mod N`: XXH64 with seed 0 over the
//! customer id's UTF-8 bytes, which is exactly ClickHouse's `xxHash64(customer_id)` for a
//! `String`. So the engine decides in Rust ([`Share::owns`]) for the events it is handed, and
//! in SQL ([`Share::sql_predicate`]) when it selects customers (a fan-out's pages, a
//! schedule's customers), and both agree. The hash is fixed and never seeded: every process,
//! on every machine and release, puts a customer in the same share. `0/1` owns everyone.

use twox_hash::XxHash64;

/// A share `index/count` of the customers (`0 <= index < count`, `count >= 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Share {
    /// `k` of `k/N`.
    pub index: u32,
    /// `N` of `k/N`.
    pub count: u32,
}

/// The hash of a customer id that shares are taken of (ClickHouse: `xxHash64(customer_id)`).
pub fn customer_hash(customer_id: &str) -> u64 {
    XxHash64::oneshot(0, customer_id.as_bytes())
}

impl Share {
    /// Every customer.
    pub const ALL: Share = Share { index: 0, count: 1 };

    /// Whether `customer_id` is in this share.
    pub fn owns(&self, customer_id: &str) -> bool {
        self.count <= 1
            || customer_hash(customer_id) % u64::from(self.count) == u64::from(self.index)
    }

    /// The SQL predicate on `column` (a trusted column name, never input) that holds exactly
    /// for the customers of this share, with the names of the two `UInt32` parameters it binds
    /// (`{prefix}_count`, `{prefix}_index`); `None` for `0/1`, which needs no predicate.
    pub fn sql_predicate(&self, column: &str, prefix: &str) -> Option<String> {
        (self.count > 1).then(|| {
            format!("xxHash64({column}) % {{{prefix}_count:UInt32}} = {{{prefix}_index:UInt32}}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_xxh64_with_seed_zero_as_clickhouse_computes_it() {
        // ClickHouse 26.9: SELECT xxHash64(''), xxHash64('abc'), xxHash64('customer-1').
        assert_eq!(customer_hash(""), 17_241_709_254_077_376_921);
        assert_eq!(customer_hash("abc"), 4_952_883_123_889_572_249);
        assert_eq!(customer_hash("customer-1"), 8_946_844_379_742_351_256);
    }

    #[test]
    fn every_customer_is_in_one_share_of_n() {
        for i in 0..2000 {
            let id = format!("customer-{i}");
            let owners = (0..5)
                .filter(|&k| Share { index: k, count: 5 }.owns(&id))
                .count();
            assert_eq!(owners, 1, "{id}");
            assert!(Share::ALL.owns(&id));
        }
        assert_eq!(Share::ALL.sql_predicate("customer_id", "share"), None);
        assert_eq!(
            Share { index: 1, count: 4 }
                .sql_predicate("customer_id", "share")
                .unwrap(),
            "xxHash64(customer_id) % {share_count:UInt32} = {share_index:UInt32}"
        );
    }
}
