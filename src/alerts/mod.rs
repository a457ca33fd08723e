//! Service alerts: complaints, poor satisfaction and high-value orders as they happen in
//! the sources, for the people who act on them.
//!
//! [`detect`] finds them (the replica holding the `alerts` lease polls the sources'
//! changes); the hub store's `alerts` table is the log they are appended to, once each,
//! with an id that only grows and is every reader's cursor; the bus only says "new
//! alerts" ([`crate::sources::bus::Topic::Alerts`]). This module is the log: its rows and
//! the statements that write and read it.

pub(crate) mod detect;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::sources::{Arg, Database, SqlTrace};

/// What an alert says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumString, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum AlertKind {
    /// A new complaint ticket of a customer in a configured value tier.
    Complaint,
    /// A satisfaction (CSAT) answer at or below the configured score.
    LowSatisfaction,
    /// An order whose total is at or above the configured amount.
    HighValueOrder,
}

/// Where an alert stands in the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum AlertStatus {
    /// Nobody has taken it up yet.
    Open,
    /// Someone has seen it and is on it.
    Acknowledged,
    /// Dealt with.
    Resolved,
}

/// What triggered an alert: the fields of its kind are set, the others absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Facts {
    pub(crate) ticket_id: Option<i64>,
    pub(crate) ticket_category: Option<String>,
    pub(crate) ticket_priority: Option<String>,
    pub(crate) ticket_channel: Option<String>,
    pub(crate) csat: Option<i32>,
    pub(crate) order_id: Option<i64>,
    pub(crate) order_status: Option<String>,
    pub(crate) currency: Option<String>,
    pub(crate) total_cents: Option<i64>,
    /// The customer's value tier when it was detected (none before the first model).
    pub(crate) value_tier: Option<String>,
}

/// An alert to append: [`append`] skips it when its (kind, source, key, variant) is in
/// the log already.
#[derive(Debug, Clone)]
pub(crate) struct NewAlert {
    pub(crate) kind: AlertKind,
    pub(crate) customer_id: String,
    pub(crate) source: &'static str,
    pub(crate) source_key: String,
    /// What makes a later change of the same record a new alert of this kind: empty for
    /// once per record, or the value that changed.
    pub(crate) variant: String,
    pub(crate) occurred_at: DateTime<Utc>,
    pub(crate) facts: Facts,
}

crate::row! {
    /// An alert as the log holds it.
    #[derive(Debug, Clone)]
    pub(crate) struct Alert {
        pub(crate) id: i64,
        pub(crate) kind: String,
        pub(crate) customer_id: String,
        pub(crate) occurred_at: DateTime<Utc>,
        pub(crate) detected_at: DateTime<Utc>,
        pub(crate) facts: String,
        pub(crate) status: String,
        pub(crate) assignee: Option<String>,
        pub(crate) updated_at: DateTime<Utc>,
    }
}

impl Alert {
    /// Its facts; empty (and logged) if the stored JSON is not what this build reads.
    pub(crate) fn facts(&self) -> Facts {
        serde_json::from_str(&self.facts).unwrap_or_else(|e| {
            tracing::warn!(alert = self.id, error = %e, "an alert's facts do not parse");
            Facts::default()
        })
    }
}

const COLUMNS: &str = "id, kind, customer_id, occurred_at, detected_at, facts, status, assignee, updated_at";

/// The statement that appends `alert` detected at `now`, unless it is in the log already.
pub(crate) fn append(hub: &Database, alert: &NewAlert, now: DateTime<Utc>) -> (String, Vec<Arg>) {
    let (head, tail) = hub.engine.insert_ignore();
    let sql = format!(
        "{head} alerts (kind, customer_id, source, source_key, variant, occurred_at, detected_at, facts, status,
                        updated_at)
         values (?, ?, ?, ?, ?, ?, ?, ?, 'OPEN', ?){tail}"
    );
    let kind: &'static str = alert.kind.into();
    let facts = serde_json::to_string(&alert.facts).unwrap_or_else(|_| "{}".to_owned());
    let args = vec![
        kind.into(),
        Arg::Text(alert.customer_id.clone()),
        alert.source.into(),
        Arg::Text(alert.source_key.clone()),
        Arg::Text(alert.variant.clone()),
        alert.occurred_at.into(),
        now.into(),
        Arg::Text(facts),
        now.into(),
    ];
    (sql, args)
}

/// Which alerts a reader asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct AlertFilter {
    /// Only these kinds (all when empty).
    pub(crate) kinds: Vec<AlertKind>,
    /// Only in these states (all when empty).
    pub(crate) statuses: Vec<AlertStatus>,
    /// Only alerts assigned to this subject or to nobody (an agent's inbox).
    pub(crate) mine_or_unassigned: Option<String>,
    /// Only these customers' (a partner's consenting customers); `None`: everyone's.
    pub(crate) customers: Option<Vec<String>>,
}

impl AlertFilter {
    /// Whether `alert` is one the filter selects, as [`AlertFilter::conditions`] says
    /// in SQL (for alerts already read).
    pub(crate) fn admits(&self, alert: &Alert) -> bool {
        let named = |name: &str, list: &[&'static str]| list.is_empty() || list.contains(&name);
        let kinds: Vec<&'static str> = self.kinds.iter().map(|k| (*k).into()).collect();
        let statuses: Vec<&'static str> = self.statuses.iter().map(|s| (*s).into()).collect();
        named(&alert.kind, &kinds)
            && named(&alert.status, &statuses)
            && self.mine_or_unassigned.as_ref().is_none_or(|me| alert.assignee.as_ref().is_none_or(|a| a == me))
            && self.customers.as_ref().is_none_or(|c| c.contains(&alert.customer_id))
    }

    fn conditions(&self, sql: &mut String, args: &mut Vec<Arg>) {
        let list = |n| vec!["?"; n].join(", ");
        if !self.kinds.is_empty() {
            sql.push_str(&format!(" and kind in ({})", list(self.kinds.len())));
            args.extend(self.kinds.iter().map(|k| Arg::from(<&'static str>::from(*k))));
        }
        if !self.statuses.is_empty() {
            sql.push_str(&format!(" and status in ({})", list(self.statuses.len())));
            args.extend(self.statuses.iter().map(|s| Arg::from(<&'static str>::from(*s))));
        }
        if let Some(subject) = &self.mine_or_unassigned {
            sql.push_str(" and (assignee = ? or assignee is null)");
            args.push(Arg::Text(subject.clone()));
        }
        if let Some(customers) = &self.customers {
            if customers.is_empty() {
                sql.push_str(" and 1 = 0");
            } else {
                sql.push_str(&format!(" and customer_id in ({})", list(customers.len())));
                args.extend(customers.iter().map(|c| Arg::Text(c.clone())));
            }
        }
    }
}

/// Alerts matching `filter`, newest first, with ids below `before`; at most `limit`.
pub(crate) async fn newest(
    hub: &Database,
    trace: &SqlTrace,
    filter: &AlertFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Alert>, sqlx::Error> {
    let mut sql = format!("select {COLUMNS} from alerts where id < ?");
    let mut args = vec![Arg::Int(before.unwrap_or(i64::MAX))];
    filter.conditions(&mut sql, &mut args);
    sql.push_str(&format!(" order by id desc limit {limit}"));
    hub.synced().fetch_all(trace, &sql, &args).await
}

/// How many alerts match `filter`.
pub(crate) async fn count(hub: &Database, trace: &SqlTrace, filter: &AlertFilter) -> Result<i64, sqlx::Error> {
    let mut sql = "select count(*) as n from alerts where 1 = 1".to_owned();
    let mut args = Vec::new();
    filter.conditions(&mut sql, &mut args);
    hub.synced().fetch_count(trace, &sql, &args).await
}

/// Alerts matching `filter` with ids above `after`, oldest first; at most `limit`: what a
/// subscription replays and then follows.
pub(crate) async fn after(
    hub: &Database,
    trace: &SqlTrace,
    filter: &AlertFilter,
    after: i64,
    limit: i64,
) -> Result<Vec<Alert>, sqlx::Error> {
    let mut sql = format!("select {COLUMNS} from alerts where id > ?");
    let mut args = vec![Arg::Int(after)];
    filter.conditions(&mut sql, &mut args);
    sql.push_str(&format!(" order by id limit {limit}"));
    hub.synced().fetch_all(trace, &sql, &args).await
}

/// The newest alert's id (0 for an empty log): where a subscription without `after`
/// starts.
pub(crate) async fn last_id(hub: &Database, trace: &SqlTrace) -> Result<i64, sqlx::Error> {
    hub.synced().fetch_count(trace, "select coalesce(max(id), 0) as n from alerts", &[]).await
}

/// One alert by id.
pub(crate) async fn get(hub: &Database, trace: &SqlTrace, id: i64) -> Result<Option<Alert>, sqlx::Error> {
    let sql = format!("select {COLUMNS} from alerts where id = ?");
    Ok(hub.synced().fetch_all(trace, &sql, &[id.into()]).await?.pop())
}

/// What a reader changes of an alert in the inbox.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Status(AlertStatus),
    /// Assigned to a subject (acknowledged on the way when open), or to nobody.
    Assignee(Option<String>),
}

/// Applies `change` to alert `id` as `by`, at `now`; whether the alert exists.
pub(crate) async fn change(
    hub: &Database,
    trace: &SqlTrace,
    id: i64,
    change: &Change,
    by: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let (set, value): (&str, Arg) = match change {
        Change::Status(status) => ("status = ?", <&'static str>::from(*status).into()),
        Change::Assignee(assignee) => (
            "assignee = ?, status = case when status = 'OPEN' then 'ACKNOWLEDGED' else status end",
            Arg::OptText(assignee.clone()),
        ),
    };
    let sql = format!("update alerts set {set}, updated_at = ?, updated_by = ? where id = ?");
    let done = hub.execute(trace, &sql, &[value, now.into(), Arg::from(by), id.into()]).await?;
    Ok(done == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_keep_only_what_is_set_and_read_back() {
        let facts = Facts { ticket_id: Some(7), csat: Some(1), ..Facts::default() };
        let json = serde_json::to_string(&facts).expect("json");
        assert_eq!(serde_json::from_str::<Facts>(&json).expect("read"), facts);
        assert_eq!(serde_json::from_str::<Facts>("{}").expect("empty"), Facts::default());
    }

    #[test]
    fn kinds_are_named_as_in_the_schema() {
        assert_eq!(<&'static str>::from(AlertKind::LowSatisfaction), "LOW_SATISFACTION");
        assert_eq!("HIGH_VALUE_ORDER".parse::<AlertKind>(), Ok(AlertKind::HighValueOrder));
        assert!("high_value_order".parse::<AlertKind>().is_err());
    }
}
