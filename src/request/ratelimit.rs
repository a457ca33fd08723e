//! Per-token rate limits: operations per second and cost per second (the cost of
//! `graphql::document::limits`), each with a burst, configured per role and per partner (a
//! partner's own limits take the place of its role's). Each token subject has its own
//! allowance, in this process: with several replicas behind a balancer, each allows it.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::{RateLimit, RateLimitsConfig};

/// The allowances of one role or partner: a limiter per measure, keyed by token subject.
struct Allowance {
    operations: Option<DefaultKeyedRateLimiter<String>>,
    /// With its burst: a request costing more is charged the burst.
    cost: Option<(DefaultKeyedRateLimiter<String>, NonZeroU32)>,
}

impl Allowance {
    fn new(limit: &RateLimit) -> Allowance {
        let limiter = |per_second: u32, burst: u32| {
            let per_second = NonZeroU32::new(per_second)?;
            let burst = NonZeroU32::new(burst).unwrap_or(per_second);
            Some((DefaultKeyedRateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)), burst))
        };
        Allowance {
            operations: limiter(limit.operations_per_second, limit.burst).map(|(l, _)| l),
            cost: limiter(limit.cost_per_second, limit.cost_burst),
        }
    }
}

/// The configured limits, ready to check.
pub(crate) struct RateLimits {
    by_role: HashMap<String, Allowance>,
    by_partner: HashMap<String, Allowance>,
    clock: DefaultClock,
    /// Charges so far: every [`PRUNE_EVERY`], idle subjects are forgotten.
    charges: AtomicU64,
}

/// How often (in charges) subjects whose allowance is full again are forgotten, so that
/// memory follows the active tokens, not every token ever seen.
const PRUNE_EVERY: u64 = 10_000;

impl RateLimits {
    pub(crate) fn new(config: &RateLimitsConfig) -> RateLimits {
        let allowances = |limits: &std::collections::BTreeMap<String, RateLimit>| {
            limits.iter().map(|(name, limit)| (name.clone(), Allowance::new(limit))).collect()
        };
        RateLimits {
            by_role: allowances(&config.roles),
            by_partner: allowances(&config.partners),
            clock: DefaultClock::default(),
            charges: AtomicU64::new(0),
        }
    }

    /// Charges one operation of `cost` to `subject` (of `role`, for `partner`): `Err`
    /// with how long to wait when its allowance is spent. Unlimited roles pass.
    pub(crate) fn charge(&self, role: &str, partner: Option<&str>, subject: &str, cost: u64) -> Result<(), Duration> {
        let allowance = partner.and_then(|p| self.by_partner.get(p)).or_else(|| self.by_role.get(role));
        let Some(allowance) = allowance else { return Ok(()) };
        if self.charges.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune();
        }
        let key = subject.to_owned();
        let now = || self.clock.now();
        if let Some(operations) = &allowance.operations {
            operations.check_key(&key).map_err(|until| until.wait_time_from(now()))?;
        }
        if let Some((limiter, burst)) = &allowance.cost {
            let cells =
                NonZeroU32::new(u32::try_from(cost).unwrap_or(u32::MAX).clamp(1, burst.get())).unwrap_or(*burst);
            match limiter.check_key_n(&key, cells) {
                Ok(Ok(())) => {}
                Ok(Err(until)) => return Err(until.wait_time_from(now())),
                // Never more than the burst is asked for.
                Err(_) => return Err(Duration::from_secs(1)),
            }
        }
        Ok(())
    }

    fn prune(&self) {
        for allowance in self.by_role.values().chain(self.by_partner.values()) {
            if let Some(l) = &allowance.operations {
                l.retain_recent();
            }
            if let Some((l, _)) = &allowance.cost {
                l.retain_recent();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RateLimits {
        let mut config = RateLimitsConfig::default();
        config.roles.insert(
            "partner".into(),
            RateLimit { operations_per_second: 1, burst: 3, cost_per_second: 100, cost_burst: 500 },
        );
        config
            .partners
            .insert("acme".into(), RateLimit { operations_per_second: 1, burst: 5, cost_per_second: 0, cost_burst: 0 });
        RateLimits::new(&config)
    }

    #[test]
    fn each_subject_has_its_burst_then_waits() {
        let limits = limits();
        for _ in 0..3 {
            assert_eq!(limits.charge("partner", Some("other"), "a", 1), Ok(()));
        }
        let wait = limits.charge("partner", Some("other"), "a", 1).expect_err("spent");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        // Another token, another allowance; unlimited roles are not counted.
        assert_eq!(limits.charge("partner", Some("other"), "b", 1), Ok(()));
        for _ in 0..100 {
            assert_eq!(limits.charge("admin", None, "a", 1_000_000), Ok(()));
        }
        // A partner's own limits replace its role's: a burst of five, cost not limited.
        for _ in 0..5 {
            assert_eq!(limits.charge("partner", Some("acme"), "c", 1_000_000), Ok(()));
        }
        assert!(limits.charge("partner", Some("acme"), "c", 1).is_err());
    }

    #[test]
    fn cost_is_charged_up_to_the_burst() {
        let limits = limits();
        // 500 of cost at once, then nothing is left for even one more.
        assert_eq!(limits.charge("partner", None, "d", 10_000), Ok(()));
        assert!(limits.charge("partner", None, "d", 1).is_err());
    }
}
