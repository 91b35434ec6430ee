//! Per-client-IP and per-partner request limits on the ingest routes: keyed GCRA token buckets
//! from `governor`, checked before any work is done for the request.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use crate::config::Config;

/// How often buckets that have refilled are forgotten, bounding the limiter's memory by the
/// keys seen in this period plus those still draining (at most `burst / rate` seconds).
pub const FORGET_IDLE_EVERY: Duration = Duration::from_secs(10);

/// Which limit a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The client IP's.
    Ip,
    /// The partner's.
    Partner,
}

impl Scope {
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Scope::Ip => "ip",
            Scope::Partner => "partner",
        }
    }
}

/// A refusal: which limit, and whole seconds until a request would pass (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// The limit.
    pub scope: Scope,
    /// `Retry-After`.
    pub retry_after_secs: u64,
}

/// The two limiters; `None` where the setting is 0 (off).
pub struct RateLimits {
    ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    partner: Option<DefaultKeyedRateLimiter<Uuid>>,
    clock: DefaultClock,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    per_sec: u32,
    burst: u32,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_sec)?;
    // A zero burst with the limit on is refused at start-up; the rate is the floor here.
    let burst = NonZeroU32::new(burst).unwrap_or(rate);
    Some(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

/// Whole seconds a client should wait: rounded up, and at least 1 (`Retry-After: 0` would invite
/// an immediate retry that is refused again).
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

impl RateLimits {
    /// Limiters as configured.
    pub fn new(config: &Config) -> RateLimits {
        RateLimits {
            ip: limiter(config.rate_limit_ip_per_sec, config.rate_limit_ip_burst),
            partner: limiter(
                config.rate_limit_partner_per_sec,
                config.rate_limit_partner_burst,
            ),
            clock: DefaultClock::default(),
        }
    }

    fn check<K: std::hash::Hash + Eq + Clone>(
        &self,
        limiter: &Option<DefaultKeyedRateLimiter<K>>,
        key: &K,
        scope: Scope,
    ) -> Result<(), Limited> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| Limited {
            scope,
            retry_after_secs: retry_after_secs(not_until.wait_time_from(self.clock.now())),
        })
    }

    /// Takes a token from the client IP's bucket.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Limited> {
        self.check(&self.ip, &ip, Scope::Ip)
    }

    /// Takes a token from the partner's bucket.
    pub fn check_partner(&self, partner: Uuid) -> Result<(), Limited> {
        self.check(&self.partner, &partner, Scope::Partner)
    }

    /// Forgets buckets that are full again (indistinguishable from a new key), and frees the
    /// memory they held; run every [`FORGET_IDLE_EVERY`].
    pub fn forget_idle(&self) {
        if let Some(l) = &self.ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.partner {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Keys currently remembered (both limiters).
    pub fn remembered(&self) -> usize {
        self.ip.as_ref().map_or(0, |l| l.len()) + self.partner.as_ref().map_or(0, |l| l.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(ip: (u32, u32), partner: (u32, u32)) -> RateLimits {
        let mut c = Config::local_defaults();
        (c.rate_limit_ip_per_sec, c.rate_limit_ip_burst) = ip;
        (c.rate_limit_partner_per_sec, c.rate_limit_partner_burst) = partner;
        RateLimits::new(&c)
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(10)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2_001)), 3);
    }

    #[test]
    fn a_key_gets_its_burst_then_waits_while_other_keys_are_untouched() {
        let l = limits((1, 3), (0, 0));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(l.check_ip(a), Ok(()));
        }
        let refused = l.check_ip(a).unwrap_err();
        assert_eq!(refused.scope, Scope::Ip);
        assert_eq!(refused.retry_after_secs, 1, "one token per second");
        assert_eq!(l.check_ip(b), Ok(()));
        for _ in 0..100 {
            assert_eq!(l.check_partner(Uuid::nil()), Ok(()), "0 turns it off");
        }
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let l = limits((1_000_000, 1), (1, 5));
        l.check_ip("192.0.2.1".parse().unwrap()).unwrap();
        l.check_partner(Uuid::nil()).unwrap();
        assert_eq!(l.remembered(), 2);
        // A microsecond refills the IP bucket; the partner's needs a second, so it stays.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while l.remembered() > 1 && std::time::Instant::now() < deadline {
            l.forget_idle();
        }
        assert_eq!(l.remembered(), 1);
    }
}
