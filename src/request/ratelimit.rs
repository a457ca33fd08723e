//! Per-token rate limits: operations per second and cost per second (the cost of
//! `graphql::document::limits`), each with a burst, configured per role and per partner (a
//! partner's own limits take the place of its role's). Each token subject has its own
//! allowance. With `rate_limits.redis`, the replicas share it there (GCRA, one script
//! call per limited request, on Redis's clock); when Redis does not answer within
//! `rate_limits.redis_timeout`, each replica's own allowance decides, as it does without
//! Redis.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use secrecy::ExposeSecret as _;

use crate::config::{RateLimit, RateLimitsConfig};

/// The allowances of one role or partner: a limiter per measure, keyed by token subject.
struct Allowance {
    /// `role:<name>` or `partner:<id>`: whose limits these are, in the shared keys.
    name: String,
    limit: RateLimit,
    operations: Option<DefaultKeyedRateLimiter<String>>,
    /// With its burst: a request costing more is charged the burst.
    cost: Option<(DefaultKeyedRateLimiter<String>, NonZeroU32)>,
}

/// GCRA over both measures of one allowance, atomically: `KEYS` the operations' and the
/// cost's theoretical arrival times (µs on Redis's clock), `ARGV` per measure its
/// interval in µs (0: not limited), burst and cells. Returns 0 when charged, else the
/// microseconds to wait (nothing charged).
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait, tats = 0, {}
for i = 1, 2 do
  local interval = tonumber(ARGV[3 * i - 2])
  if interval > 0 then
    local burst, cells = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
    local tat = math.max(tonumber(redis.call('GET', KEYS[i]) or now), now)
    local next = tat + cells * interval
    local at = next - burst * interval
    if at > now then wait = math.max(wait, at - now) end
    tats[i] = next
  end
end
if wait > 0 then return wait end
for i = 1, 2 do
  if tats[i] then
    redis.call('SET', KEYS[i], string.format('%d', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1)
  end
end
return 0
";

/// The allowances shared through Redis.
struct Shared {
    redis: redis::aio::ConnectionManager,
    script: redis::Script,
    timeout: Duration,
    /// When the last call failed, while Redis is down (logged once per outage): for
    /// [`REDIS_RETRY`] after it no request waits for Redis.
    down_since: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How long after a failed call requests go to the replica's own allowance without
/// trying Redis (one request a second pays the timeout while Redis is down, not each).
const REDIS_RETRY: Duration = Duration::from_secs(1);

impl Allowance {
    fn new(name: String, limit: &RateLimit) -> Allowance {
        let limiter = |per_second: u32, burst: u32| {
            let per_second = NonZeroU32::new(per_second)?;
            let burst = NonZeroU32::new(burst).unwrap_or(per_second);
            Some((DefaultKeyedRateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)), burst))
        };
        Allowance {
            name,
            limit: *limit,
            operations: limiter(limit.operations_per_second, limit.burst).map(|(l, _)| l),
            cost: limiter(limit.cost_per_second, limit.cost_burst),
        }
    }

    /// The script's arguments for a request of `cost`: per measure its interval in µs,
    /// its burst and the cells charged (as the local limiters count them).
    fn gcra_args(&self, cost: u64) -> [u64; 6] {
        let measure = |per_second: u32, burst: u32, cells: u64| match per_second {
            0 => [0, 0, 0],
            n => {
                let burst = u64::from(if burst == 0 { n } else { burst });
                [1_000_000 / u64::from(n), burst, cells.clamp(1, burst)]
            }
        };
        let [a, b, c] = measure(self.limit.operations_per_second, self.limit.burst, 1);
        let [d, e, f] = measure(self.limit.cost_per_second, self.limit.cost_burst, cost);
        [a, b, c, d, e, f]
    }
}

/// The configured limits, ready to check.
pub(crate) struct RateLimits {
    by_role: HashMap<String, Allowance>,
    by_partner: HashMap<String, Allowance>,
    shared: Option<Shared>,
    clock: DefaultClock,
    /// Charges so far: every [`PRUNE_EVERY`], idle subjects are forgotten.
    charges: AtomicU64,
}

/// How often (in charges) subjects whose allowance is full again are forgotten, so that
/// memory follows the active tokens, not every token ever seen.
const PRUNE_EVERY: u64 = 10_000;

impl RateLimits {
    /// The configured limits; connects to Redis lazily (a bad URL is an error now).
    pub(crate) fn new(config: &RateLimitsConfig) -> anyhow::Result<RateLimits> {
        let allowances = |kind: &str, limits: &std::collections::BTreeMap<String, RateLimit>| {
            limits.iter().map(|(name, limit)| (name.clone(), Allowance::new(format!("{kind}:{name}"), limit))).collect()
        };
        let shared = match &config.redis {
            Some(url) => {
                let client =
                    redis::Client::open(url.expose_secret()).map_err(|e| anyhow::anyhow!("rate_limits.redis: {e}"))?;
                let settings = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(config.redis_timeout))
                    .set_response_timeout(Some(config.redis_timeout))
                    .set_number_of_retries(1);
                let redis = client
                    .get_connection_manager_lazy(settings)
                    .map_err(|e| anyhow::anyhow!("rate_limits.redis: {e}"))?;
                let script = redis::Script::new(GCRA);
                Some(Shared { redis, script, timeout: config.redis_timeout, down_since: Default::default() })
            }
            None => None,
        };
        Ok(RateLimits {
            by_role: allowances("role", &config.roles),
            by_partner: allowances("partner", &config.partners),
            shared,
            clock: DefaultClock::default(),
            charges: AtomicU64::new(0),
        })
    }

    /// Charges one operation of `cost` to `subject` (of `role`, for `partner`): `Err`
    /// with how long to wait when its allowance is spent. Unlimited roles pass. Shared
    /// through Redis when configured and answering; else this replica's allowance.
    pub(crate) async fn charge(
        &self,
        role: &str,
        partner: Option<&str>,
        subject: &str,
        cost: u64,
    ) -> Result<(), Duration> {
        let allowance = partner.and_then(|p| self.by_partner.get(p)).or_else(|| self.by_role.get(role));
        let Some(allowance) = allowance else { return Ok(()) };
        if let Some(shared) = &self.shared
            && let Some(decided) = shared.charge(allowance, subject, cost).await
        {
            return decided;
        }
        self.charge_here(allowance, subject, cost)
    }

    /// Charges this replica's own allowance.
    fn charge_here(&self, allowance: &Allowance, subject: &str, cost: u64) -> Result<(), Duration> {
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

impl Shared {
    /// Charges the shared allowance; `None` when Redis does not answer in time.
    async fn charge(&self, allowance: &Allowance, subject: &str, cost: u64) -> Option<Result<(), Duration>> {
        let down = || self.down_since.lock().unwrap_or_else(|e| e.into_inner());
        if down().is_some_and(|since| since.elapsed() < REDIS_RETRY) {
            return None;
        }
        let mut invocation = self.script.prepare_invoke();
        invocation.key(format!("c360:rate:{}:operations:{subject}", allowance.name));
        invocation.key(format!("c360:rate:{}:cost:{subject}", allowance.name));
        for arg in allowance.gcra_args(cost) {
            invocation.arg(arg);
        }
        let mut redis = self.redis.clone();
        let answer = tokio::time::timeout(self.timeout, invocation.invoke_async::<u64>(&mut redis)).await;
        match answer {
            Ok(Ok(wait)) => {
                if down().take().is_some() {
                    tracing::info!("rate limits are shared through Redis again");
                }
                Some(if wait == 0 { Ok(()) } else { Err(Duration::from_micros(wait)) })
            }
            failed => {
                if down().replace(std::time::Instant::now()).is_none() {
                    let error = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".to_owned(),
                    };
                    tracing::warn!(%error, "Redis does not answer: each replica limits rates on its own meanwhile");
                }
                None
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
        RateLimits::new(&config).expect("limits")
    }

    #[tokio::test]
    async fn each_subject_has_its_burst_then_waits() {
        let limits = limits();
        for _ in 0..3 {
            assert_eq!(limits.charge("partner", Some("other"), "a", 1).await, Ok(()));
        }
        let wait = limits.charge("partner", Some("other"), "a", 1).await.expect_err("spent");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        // Another token, another allowance; unlimited roles are not counted.
        assert_eq!(limits.charge("partner", Some("other"), "b", 1).await, Ok(()));
        for _ in 0..100 {
            assert_eq!(limits.charge("admin", None, "a", 1_000_000).await, Ok(()));
        }
        // A partner's own limits replace its role's: a burst of five, cost not limited.
        for _ in 0..5 {
            assert_eq!(limits.charge("partner", Some("acme"), "c", 1_000_000).await, Ok(()));
        }
        assert!(limits.charge("partner", Some("acme"), "c", 1).await.is_err());
    }

    #[tokio::test]
    async fn cost_is_charged_up_to_the_burst() {
        let limits = limits();
        // 500 of cost at once, then nothing is left for even one more.
        assert_eq!(limits.charge("partner", None, "d", 10_000).await, Ok(()));
        assert!(limits.charge("partner", None, "d", 1).await.is_err());
    }
}
