//! Subject rights: everything the sources hold about one customer (export), and removing
//! it (erasure). What each source exports and how it erases live with its SQL
//! (`SourceDef::export`, `SourceDef::erasure` in `sources/<source>.rs`); this runs them
//! over every source in the one list.
//!
//! Erasure deletes the person's records and what only describes them, blanks free text
//! that may describe them, and keeps what the company must keep without a person attached
//! (orders for bookkeeping, tickets for service statistics). The identity links go last,
//! so an erasure cut short by a failing source still finds the customer when retried;
//! every statement is safe to run twice.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::identity::store::{self, Link};
use crate::sources::{self, Database, DbName, Erasure, SourceName, Sources, SqlTrace};

/// Everything about one customer, source by source (`crm`, `shop`, …), how the hub
/// linked their records, and what the hub itself holds of them.
#[derive(Debug, Serialize)]
pub(crate) struct Export {
    pub(crate) customer_id: String,
    pub(crate) exported_at: DateTime<Utc>,
    /// Per source, its tables' rows about the customer.
    #[serde(flatten)]
    pub(crate) sources: BTreeMap<String, serde_json::Value>,
    /// How the hub resolved the records into this customer.
    pub(crate) identity_links: Vec<Link>,
    /// What the hub derives and keeps: the normalised keys it matches by, the insight
    /// models' scores, and the audit trail of who saw, exported or changed their data.
    pub(crate) hub: HubRecords,
}

/// What the hub's own store holds of one customer.
#[derive(Debug, Serialize)]
pub(crate) struct HubRecords {
    pub(crate) normalised_keys: Vec<NormalisedKey>,
    pub(crate) insights: Vec<InsightScores>,
    pub(crate) audit_trail: Vec<AuditTrail>,
}

crate::row! {
    /// The keys a source record is matched by, as the hub normalised them.
    #[derive(Debug, Clone, Serialize)]
    pub(crate) struct NormalisedKey {
        pub(crate) source: String,
        pub(crate) source_key: String,
        pub(crate) email_norm: Option<String>,
        pub(crate) phone_norm: Option<String>,
    }
}

crate::row! {
    /// One insight model's scores of the customer.
    #[derive(Debug, Clone, Serialize)]
    pub(crate) struct InsightScores {
        pub(crate) model_id: String,
        pub(crate) frequency: i32,
        pub(crate) recency_days: i32,
        pub(crate) monetary_cents: i64,
        pub(crate) r_score: i16,
        pub(crate) f_score: i16,
        pub(crate) m_score: i16,
        pub(crate) segment: String,
        pub(crate) p_alive: Option<f64>,
        pub(crate) clv_12m: Option<f64>,
        pub(crate) lifecycle: String,
        pub(crate) value_tier: String,
    }
}

crate::row! {
    /// One audit entry about the customer: who, when, what (never values).
    #[derive(Debug, Clone, Serialize)]
    pub(crate) struct AuditTrail {
        pub(crate) at: DateTime<Utc>,
        pub(crate) subject: String,
        pub(crate) role: String,
        pub(crate) partner: Option<String>,
        pub(crate) action: String,
        pub(crate) fields: String,
    }
}

crate::row! {
    struct Sharing {
        customer_id: String,
    }
}

/// The other customers with an email or phone of `customer_id`'s records: the same person,
/// maybe, whom the resolver kept apart (a shared household address, a typo). Erasure names
/// them for the operator to confirm; it does not guess.
pub(crate) async fn sharing_keys(
    hub: &Database,
    trace: &SqlTrace,
    customer_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = "select distinct o.customer_id from identity_links l
               join identity_links o on (o.email_norm = l.email_norm or o.phone_norm = l.phone_norm)
               where l.customer_id = ? and o.customer_id <> l.customer_id order by o.customer_id";
    let rows: Vec<Sharing> = hub.fetch_all(trace, sql, &[sources::Arg::from(customer_id)]).await?;
    Ok(rows.into_iter().map(|r| r.customer_id).collect())
}

/// What the hub's store holds of `customer_id`.
async fn hub_records(hub: &Database, trace: &SqlTrace, customer_id: &str) -> Result<HubRecords, sqlx::Error> {
    let id = [sources::Arg::from(customer_id)];
    let keys = "select source, source_key, email_norm, phone_norm from identity_links where customer_id = ?
                order by source, source_key";
    let insights = "select model_id, frequency, recency_days, monetary_cents, r_score, f_score, m_score, segment,
                           p_alive, clv_12m, lifecycle, value_tier
                    from customer_insights where customer_id = ? order by model_id";
    let trail = crate::audit::store::trail_sql("a.at, a.subject, a.role, a.partner, a.action");
    Ok(HubRecords {
        normalised_keys: hub.fetch_all(trace, keys, &id).await?,
        insights: hub.fetch_all(trace, insights, &id).await?,
        audit_trail: hub.fetch_all(trace, &trail, &[id[0].clone(), id[0].clone()]).await?,
    })
}

/// A source that failed, and why (logged, never sent).
#[derive(Debug)]
pub(crate) struct SourceFailed(pub DbName, pub sqlx::Error);

/// Everything the sources and the hub hold about the customer with these links.
pub(crate) async fn export(
    sources: &Sources,
    trace: &SqlTrace,
    customer_id: &str,
    links: Vec<Link>,
) -> Result<Export, SourceFailed> {
    let mut by_source = BTreeMap::new();
    for source in SourceName::ALL {
        let db = sources.source(source);
        let keys = store::source_keys(&links, source);
        let rows = (sources::def(source).export)(db, trace, &keys).await.map_err(|e| SourceFailed(db.name, e))?;
        by_source.insert(source.to_string(), rows);
    }
    let hub = hub_records(sources.hub(), trace, customer_id).await.map_err(|e| SourceFailed(DbName::Hub, e))?;
    Ok(Export {
        customer_id: customer_id.to_owned(),
        exported_at: Utc::now(),
        sources: by_source,
        identity_links: links,
        hub,
    })
}

/// What erasure did in one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Erased {
    pub(crate) db: DbName,
    /// Rows deleted.
    pub(crate) deleted: u64,
    /// Rows kept with what described the person removed.
    pub(crate) anonymized: u64,
}

/// Runs one source's erasure in a transaction, the statements that keep their rows
/// first; nothing when the customer has no record there (`keys`).
async fn apply(db: &Database, keys: &[i64], erasure: Erasure) -> Result<Erased, SourceFailed> {
    if keys.is_empty() {
        return Ok(Erased { db: db.name, deleted: 0, anonymized: 0 });
    }
    let kept = erasure.anonymize.len();
    let statements = [erasure.anonymize, erasure.delete].concat();
    let counts = db.transaction(&statements).await.map_err(|e| SourceFailed(db.name, e))?;
    Ok(Erased { db: db.name, anonymized: counts[..kept].iter().sum(), deleted: counts[kept..].iter().sum() })
}

/// Erases the customer with these links from every source, then from the hub.
pub(crate) async fn erase(sources: &Sources, customer_id: &str, links: &[Link]) -> Result<Vec<Erased>, SourceFailed> {
    let mut report = Vec::new();
    for source in SourceName::ALL {
        let keys = store::source_keys(links, source);
        let erasure = (sources::def(source).erasure)(&keys);
        report.push(apply(sources.source(source), &keys, erasure).await?);
    }
    let hub = store::forget(sources.hub(), customer_id, links).await.map_err(|e| SourceFailed(DbName::Hub, e))?;
    report.push(Erased { db: DbName::Hub, deleted: hub, anonymized: 0 });
    // What the deletions leave behind them: old pages in SQLite's write-ahead log, and
    // the hub's statistics, which sample the normalised emails and phones.
    for source in SourceName::ALL.into_iter().filter(|s| !store::source_keys(links, *s).is_empty()) {
        let db = sources.source(source);
        db.scrub(&[]).await.map_err(|e| SourceFailed(db.name, e))?;
    }
    let hub = sources.hub();
    hub.scrub(&["identity_links", "customers", "ambiguous_keys"]).await.map_err(|e| SourceFailed(hub.name, e))?;
    Ok(report)
}
