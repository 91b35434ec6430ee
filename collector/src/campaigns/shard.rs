//! Which customers an engine process runs: its share `k/N` of them (`EVENTLINE_CAMPAIGN_SHARD`).
//!
//! A customer belongs to share `xxHash64(customer_id) mod N` ([`eventline_audience::share`]:
//! XXH64 with seed 0, which ClickHouse computes too, so fan-out pages and schedule scans select
//! a share's customers in SQL). The hash is fixed and never seeded, so every process, on every
//! machine and release, puts a customer in the same share. Each customer's run states,
//! wake-ups and messages then have exactly one writer among the N engine processes, as each
//! sink lane is the only writer of its share of event ids. `0/1` (the default) owns every
//! customer.

use std::fmt;
use std::str::FromStr;

use eventline_audience::share::Share;

/// A share `index/count` of the customers (`0 <= index < count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// The most shares (1024): far beyond the engine processes one ClickHouse serves; a larger `N`
/// is refused as a likely typo.
pub const MAX_SHARDS: u32 = 1024;

impl Shard {
    /// Every customer (`0/1`).
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Share `index` of `count`.
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "the number of campaign shares must be 1 to {MAX_SHARDS}, not {count}"
            ));
        }
        if index >= count {
            return Err(format!(
                "share {index}/{count} does not exist: shares of {count} are 0/{count} to {}/{count}",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// `k` of `k/N`.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// `N` of `k/N`.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// This share split in `lanes`: lane `j` is `(k + j·N)/(N·lanes)`, so the lanes hold
    /// exactly this share's customers (`h mod N·lanes ≡ k mod N` exactly when `h mod N = k`).
    pub fn lanes(&self, lanes: u32) -> Result<Vec<Shard>, String> {
        let count = self
            .count
            .checked_mul(lanes)
            .filter(|&c| c <= MAX_SHARDS && lanes > 0);
        let Some(count) = count else {
            return Err(format!(
                "share {self} in {lanes} lanes makes more than {MAX_SHARDS} shares (or none): lower EVENTLINE_CAMPAIGN_LANES"
            ));
        };
        (0..lanes)
            .map(|j| Shard::new(self.index + j * self.count, count))
            .collect()
    }

    /// Whether this share runs `customer_id`'s campaigns.
    pub fn owns(&self, customer_id: &str) -> bool {
        self.share().owns(customer_id)
    }

    /// The share as the audience compiler takes it.
    pub fn share(&self) -> Share {
        Share {
            index: self.index,
            count: self.count,
        }
    }
}

impl Shard {
    /// [`FromStr`] for a command-line value parser.
    pub fn from_str_arg(text: &str) -> Result<Shard, String> {
        text.parse()
    }
}

impl Default for Shard {
    fn default() -> Shard {
        Shard::ALL
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `k/N`, e.g. `0/2`.
    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("`{text}` is not a campaign share: write k/N, e.g. 0/2 and 1/2");
        let (k, n) = text.trim().split_once('/').ok_or_else(bad)?;
        let k = k.trim().parse::<u32>().map_err(|_| bad())?;
        let n = n.trim().parse::<u32>().map_err(|_| bad())?;
        Shard::new(k, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_k_slash_n_with_k_below_n() {
        assert_eq!("0/1".parse::<Shard>(), Ok(Shard::ALL));
        assert_eq!("1/2".parse::<Shard>().unwrap().to_string(), "1/2");
        assert_eq!(" 3 / 4 ".parse::<Shard>(), Shard::new(3, 4));
        for bad in ["", "1", "2/2", "0/0", "-1/2", "a/b", "1/2/3", "0/1025"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let err = "2/2".parse::<Shard>().unwrap_err();
        assert!(err.contains("0/2 to 1/2"), "{err}");
    }

    #[test]
    fn the_lanes_of_a_share_hold_exactly_its_customers_each_in_one_lane() {
        let share = Shard::new(1, 3).unwrap();
        let lanes = share.lanes(4).unwrap();
        assert_eq!(
            lanes.iter().map(Shard::to_string).collect::<Vec<_>>(),
            ["1/12", "4/12", "7/12", "10/12"]
        );
        for i in 0..3000 {
            let customer = format!("customer-{i}");
            let in_lanes = lanes.iter().filter(|l| l.owns(&customer)).count();
            assert_eq!(in_lanes, usize::from(share.owns(&customer)), "{customer}");
        }
        assert_eq!(Shard::ALL.lanes(1).unwrap(), vec![Shard::ALL]);
        assert!(Shard::ALL.lanes(0).is_err());
        assert!(Shard::new(0, 512).unwrap().lanes(4).is_err());
    }

    #[test]
    fn every_customer_is_in_exactly_one_share_and_the_shares_are_about_even() {
        let shares: Vec<Shard> = (0..4).map(|k| Shard::new(k, 4).unwrap()).collect();
        let mut sizes = [0usize; 4];
        for i in 0..4000 {
            let customer = format!("customer-{i}");
            let owners: Vec<usize> = (0..4).filter(|&k| shares[k].owns(&customer)).collect();
            assert_eq!(owners.len(), 1, "{customer}: {owners:?}");
            sizes[owners[0]] += 1;
            assert!(Shard::ALL.owns(&customer));
        }
        assert!(sizes.iter().all(|&n| (800..1200).contains(&n)), "{sizes:?}");
    }
}
