//! Detection, once: the replica holding the `alerts` lease polls each watched source's
//! changes (its `updated_at` and keys; no triggers, no logs), from its position in the hub
//! store less an overlap window (a row stamped before the position can commit after it
//! was read), and appends what crosses a threshold to the log in one transaction fenced
//! by the lease, with the new position. Deduplication on (kind, source, key, variant)
//! keeps what is read twice to one alert, so nothing is missed and nothing reported twice.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;

use super::{AlertKind, Facts, NewAlert};
use crate::config::AlertsConfig;
use crate::identity::store as links;
use crate::insights::stage::ValueTier;
use crate::insights::store as insights;
use crate::names::SourceName;
use crate::sources::bus::{Bus, Topic};
use crate::sources::helpdesk::{self, TicketChange};
use crate::sources::lease::Lease;
use crate::sources::shop::{self, OrderChange};
use crate::sources::{self, Arg, Sources, SqlTrace};

/// The lease only one replica detects under.
const LEASE: &str = "alerts";
/// Rows read per statement, and statements per source per poll at most.
const PAGE: i64 = 1_000;
const PAGES: usize = 50;

/// The thresholds, from [`AlertsConfig`].
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    complaint_tiers: Vec<ValueTier>,
    low_satisfaction: i32,
    high_value_cents: i64,
    overlap: TimeDelta,
    resolve_wait: TimeDelta,
    lease: Duration,
}

impl Rules {
    /// The rules `config` sets; an error names a tier that is not one.
    pub(crate) fn new(config: &AlertsConfig) -> anyhow::Result<Self> {
        let complaint_tiers = config
            .complaint_tiers
            .iter()
            .map(|t| {
                ValueTier::from_str(t)
                    .map_err(|_| anyhow::anyhow!("alerts.complaint_tiers: `{t}` is not TOP, CORE or TAIL"))
            })
            .collect::<anyhow::Result<_>>()?;
        anyhow::ensure!((1..=5).contains(&config.low_satisfaction), "alerts.low_satisfaction must be 1 to 5");
        let delta = |d: Duration| TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
        Ok(Rules {
            complaint_tiers,
            low_satisfaction: config.low_satisfaction,
            high_value_cents: i64::from(config.high_value_order) * 100,
            overlap: delta(config.overlap),
            resolve_wait: delta(config.resolve_wait),
            lease: config.lease,
        })
    }
}

/// A change that may be an alert, once its customer is known.
#[derive(Debug)]
struct Candidate {
    /// The source record's key (requester or account) identity resolution links.
    record: i64,
    updated_at: DateTime<Utc>,
    alert: NewAlert,
}

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Poll {
    /// Whether this replica held the lease (and so detected).
    pub(crate) held: bool,
    /// Changed rows read.
    pub(crate) read: usize,
    /// Alerts appended (new to the log).
    pub(crate) appended: u64,
    /// Changes whose customer is not linked yet, held for later.
    pub(crate) waiting: usize,
}

/// Detects alerts in the sources under the `alerts` lease.
#[derive(Clone)]
pub(crate) struct Detector {
    sources: Sources,
    bus: Bus,
    rules: Rules,
}

impl Detector {
    pub(crate) fn new(sources: Sources, bus: Bus, rules: Rules) -> Self {
        Detector { sources, bus, rules }
    }

    /// Polls every `every` until `stop` turns true; a failed poll is logged and tried
    /// again at the next tick (the position has not moved).
    pub(crate) async fn run(self, every: Duration, mut stop: watch::Receiver<bool>) {
        if every.is_zero() {
            return;
        }
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            if let Err(e) = self.poll().await {
                tracing::warn!(error = %e, "alert detection failed; trying again at the next poll");
            }
        }
    }

    /// Reads each watched source's changes once, if this replica holds the lease.
    pub(crate) async fn poll(&self) -> Result<Poll, sqlx::Error> {
        let hub = self.sources.hub();
        let Some(lease) = Lease::take(hub, LEASE, self.rules.lease).await? else {
            return Ok(Poll::default());
        };
        let mut poll = Poll { held: true, ..Poll::default() };
        for source in [SourceName::Helpdesk, SourceName::Shop] {
            match self.source(&lease, source).await? {
                Some(done) => {
                    poll.read += done.read;
                    poll.appended += done.appended;
                    poll.waiting += done.waiting;
                }
                // The lease is another replica's now: it goes on from the positions.
                None => break,
            }
        }
        if poll.appended > 0 {
            tracing::info!(appended = poll.appended, "service alerts detected");
            self.bus.publish(Topic::Alerts).await;
        }
        Ok(poll)
    }

    /// One source's changes since its position; `None` when the lease was lost.
    async fn source(&self, lease: &Lease<'_>, source: SourceName) -> Result<Option<Poll>, sqlx::Error> {
        let hub = self.sources.hub();
        let now = Utc::now();
        let Some(position) = position(hub, source).await? else {
            // The first poll ever: alerts start now, not with the sources' history.
            let fenced = hub.fenced(&lease.fence(), &[set_position(hub, source, now, now)]).await;
            return lost_or(fenced.map(|_| Poll::default()));
        };
        let (candidates, read, last) = self.read(source, position - self.rules.overlap).await?;
        let keys: Vec<String> = candidates.iter().map(|c| c.record.to_string()).collect();
        let found = links::links_by_source_keys(hub, &SqlTrace::default(), source, &keys).await?;
        let customers: HashMap<&str, &str> = found
            .iter()
            .filter(|l| l.source == source.to_string())
            .map(|l| (l.source_key.as_str(), l.customer_id.as_str()))
            .collect();
        let mut linked = Vec::new();
        let mut hold: Option<DateTime<Utc>> = None;
        let mut waiting = 0;
        for mut candidate in candidates {
            match customers.get(candidate.record.to_string().as_str()) {
                Some(customer) => {
                    candidate.alert.customer_id = (*customer).to_owned();
                    linked.push(candidate.alert);
                }
                None if now - candidate.updated_at < self.rules.resolve_wait => {
                    waiting += 1;
                    hold = Some(hold.map_or(candidate.updated_at, |h| h.min(candidate.updated_at)));
                }
                None => tracing::warn!(
                    %source,
                    record = candidate.record,
                    kind = <&'static str>::from(candidate.alert.kind),
                    "a change stayed unlinked to any customer past alerts.resolve_wait; no alert for it"
                ),
            }
        }
        let alerts = self.tiered(linked).await?;
        // The position moves to the newest change read, but not past a change still
        // waiting for its customer (read again, with the overlap, until it is linked).
        let mut next = last.map_or(position, |l| l.max(position));
        if let Some(hold) = hold {
            next = next.min(hold - TimeDelta::nanoseconds(1)).max(position);
        }
        let mut statements: Vec<(String, Vec<Arg>)> = alerts.iter().map(|a| super::append(hub, a, now)).collect();
        statements.push(set_position(hub, source, next, now));
        let fenced = hub.fenced(&lease.fence(), &statements).await;
        lost_or(fenced.map(|affected| {
            let appended = affected[..alerts.len()].iter().sum();
            Poll { held: true, read, appended, waiting }
        }))
    }

    /// The changes of `source` from `since`: the candidates among them, how many rows
    /// were read and the newest `updated_at` read.
    async fn read(
        &self,
        source: SourceName,
        since: DateTime<Utc>,
    ) -> Result<(Vec<Candidate>, usize, Option<DateTime<Utc>>), sqlx::Error> {
        let db = self.sources.source(source);
        let (mut candidates, mut read, mut at) = (Vec::new(), 0, (since, i64::MIN));
        for _ in 0..PAGES {
            let rows = match source {
                SourceName::Helpdesk => {
                    let rows: Vec<TicketChange> =
                        sources::changes(db, "tickets", helpdesk::TICKET_CHANGE_COLUMNS, at, PAGE).await?;
                    let last = rows.last().map(|r| (r.updated_at, r.id));
                    candidates.extend(rows.iter().flat_map(|r| self.ticket(r)));
                    (rows.len(), last)
                }
                SourceName::Shop => {
                    let rows: Vec<OrderChange> =
                        sources::changes(db, "orders", shop::ORDER_CHANGE_COLUMNS, at, PAGE).await?;
                    let last = rows.last().map(|r| (r.updated_at, r.id));
                    candidates.extend(rows.iter().flat_map(|r| self.order(r)));
                    (rows.len(), last)
                }
                _ => (0, None),
            };
            read += rows.0;
            if let Some(last) = rows.1 {
                at = last;
            }
            if rows.0 < PAGE as usize {
                break;
            }
        }
        Ok((candidates, read, (read > 0).then_some(at.0)))
    }

    /// The alerts a changed ticket may raise.
    fn ticket(&self, t: &TicketChange) -> Vec<Candidate> {
        let facts = Facts {
            ticket_id: Some(t.id),
            ticket_category: Some(t.category.clone()),
            ticket_priority: Some(t.priority.clone()),
            ticket_channel: Some(t.channel.clone()),
            csat: t.csat,
            ..Facts::default()
        };
        let mut found = Vec::new();
        let mut candidate = |kind, variant: String, occurred_at| {
            let alert = NewAlert {
                kind,
                customer_id: String::new(),
                source: "helpdesk",
                source_key: t.id.to_string(),
                variant,
                occurred_at,
                facts: facts.clone(),
            };
            found.push(Candidate { record: t.requester_id, updated_at: t.updated_at, alert });
        };
        if t.category == "complaint" {
            candidate(AlertKind::Complaint, String::new(), t.opened_at);
        }
        if let Some(csat) = t.csat.filter(|c| (1..=self.rules.low_satisfaction).contains(c)) {
            // Each poor score once: a changed answer that is still poor is a new alert.
            candidate(AlertKind::LowSatisfaction, csat.to_string(), t.updated_at);
        }
        found
    }

    /// The alert a changed order may raise.
    fn order(&self, o: &OrderChange) -> Option<Candidate> {
        if o.total_cents < self.rules.high_value_cents || o.status == "cancelled" {
            return None;
        }
        let facts = Facts {
            order_id: Some(o.id),
            order_status: Some(o.status.clone()),
            currency: Some(o.currency.clone()),
            total_cents: Some(o.total_cents),
            ..Facts::default()
        };
        let alert = NewAlert {
            kind: AlertKind::HighValueOrder,
            customer_id: String::new(),
            source: "shop",
            source_key: o.id.to_string(),
            variant: String::new(),
            occurred_at: o.ordered_at,
            facts,
        };
        Some(Candidate { record: o.account_id, updated_at: o.updated_at, alert })
    }

    /// Each alert with its customer's value tier, less the complaints of customers outside
    /// the configured tiers. Before the first model no tier is known and every complaint
    /// alerts.
    async fn tiered(&self, mut alerts: Vec<NewAlert>) -> Result<Vec<NewAlert>, sqlx::Error> {
        if alerts.is_empty() {
            return Ok(alerts);
        }
        let hub = self.sources.hub();
        let trace = SqlTrace::default();
        let Some(model) = insights::current_model(hub, &trace).await? else {
            return Ok(alerts);
        };
        let mut customers: Vec<String> = alerts.iter().map(|a| a.customer_id.clone()).collect();
        customers.sort_unstable();
        customers.dedup();
        let tiers: HashMap<String, ValueTier> = insights::insights(hub, &trace, &model.id, &customers)
            .await?
            .into_iter()
            .map(|(customer, scored)| (customer, scored.value_tier))
            .collect();
        for alert in &mut alerts {
            // Without a row: no purchase up to the model's date, the tail.
            let tier = tiers.get(&alert.customer_id).copied().unwrap_or(ValueTier::Tail);
            alert.facts.value_tier = Some(<&'static str>::from(tier).to_owned());
        }
        alerts.retain(|a| {
            a.kind != AlertKind::Complaint
                || a.facts.value_tier.as_deref().is_some_and(|t| {
                    ValueTier::from_str(t).is_ok_and(|tier| self.rules.complaint_tiers.contains(&tier))
                })
        });
        Ok(alerts)
    }
}

/// `Ok(None)` for a fenced write refused because the lease is another take's.
fn lost_or(result: Result<Poll, sqlx::Error>) -> Result<Option<Poll>, sqlx::Error> {
    match result {
        Ok(poll) => Ok(Some(poll)),
        Err(sqlx::Error::RowNotFound) => {
            tracing::info!("the alerts lease went to another replica; it detects from here");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

crate::row! {
    struct Position {
        watermark_nanos: i64,
    }
}

/// Where detection stands in `source`; `None` before its first poll.
async fn position(hub: &sources::Database, source: SourceName) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let sql = "select watermark_nanos from alert_positions where source = ?";
    let rows: Vec<Position> = hub.synced().fetch_all(&SqlTrace::default(), sql, &[source.to_string().into()]).await?;
    Ok(rows.first().map(|p| DateTime::from_timestamp_nanos(p.watermark_nanos)))
}

/// The statement that moves `source`'s position to `at`, read at `read`.
fn set_position(
    hub: &sources::Database,
    source: SourceName,
    at: DateTime<Utc>,
    read: DateTime<Utc>,
) -> (String, Vec<Arg>) {
    let upsert = hub.engine.upsert("source", &["watermark_nanos", "read_nanos"]);
    let nanos = |t: DateTime<Utc>| t.timestamp_nanos_opt().unwrap_or(i64::MAX);
    (
        format!("insert into alert_positions (source, watermark_nanos, read_nanos) values (?, ?, ?){upsert}"),
        vec![source.to_string().into(), nanos(at).into(), nanos(read).into()],
    )
}
