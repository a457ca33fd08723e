//! Precision and recall of identity resolution against the seeder's ground truth
//! (`seed_truth`), counted over pairs of source records: a pair is "predicted" when both
//! records link to one customer and "true" when both belong to one demo person. Every
//! seeded record counts: one the resolver never linked is in no predicted pair, so the
//! true pairs it belongs to are missed (they stay in recall's denominator).

use std::collections::HashMap;

use serde::Serialize;

use crate::names::DbName;
use crate::sources::{Database, SourceName, Sources, SqlTrace};

#[derive(Debug, Clone, Serialize)]
pub struct Quality {
    /// Seeded records (every record with a ground-truth person).
    pub records: u64,
    /// Of those, the records no customer links to.
    pub(crate) unlinked: u64,
    pub(crate) true_pairs: u64,
    pub(crate) predicted_pairs: u64,
    pub(crate) correct_pairs: u64,
    pub precision: f64,
    pub recall: f64,
}

crate::row! {
    struct Row {
        /// Null when the record is linked to no customer.
        customer_id: Option<String>,
        person_id: i64,
    }
}

/// What identity resolution found in the data: counts over the hub store and the
/// sources, for the data-quality report.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Findings {
    pub(crate) customers: i64,
    /// Customers merged into another (their old ids answer as aliases).
    pub(crate) merged: i64,
    /// Conflicts by kind: shared_email, shared_phone, merge_blocked, duplicate_record.
    pub(crate) conflicts: Vec<(String, i64)>,
    /// Keys held by more than one person (never used to match), by kind: email, phone.
    pub(crate) shared_keys: Vec<(String, i64)>,
    /// Per source: its records, and what the resolver found in them.
    pub(crate) sources: Vec<SourceFindings>,
}

/// One source's records and their links.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SourceFindings {
    pub(crate) source: SourceName,
    pub(crate) records: i64,
    /// Records a customer links to.
    pub(crate) linked: i64,
    /// Linked records whose email (phone) the resolver could not read.
    pub(crate) invalid_emails: i64,
    pub(crate) invalid_phones: i64,
}

crate::row! {
    struct LinkCounts {
        source: String,
        linked: i64,
        invalid_emails: i64,
        invalid_phones: i64,
    }
}

crate::row! {
    struct KindCount {
        kind: String,
        n: i64,
    }
}

/// Counts what identity resolution found: three statements on the hub store and one
/// count per source, all at once.
pub(crate) async fn findings(sources: &Sources, trace: &SqlTrace) -> Result<Findings, (DbName, sqlx::Error)> {
    let hub = sources.hub();
    let at_hub = |e| (DbName::Hub, e);
    let kinds = |sql: &'static str| async move {
        let rows: Vec<KindCount> = hub.fetch_all(trace, sql, &[]).await?;
        Ok::<_, sqlx::Error>(rows.into_iter().map(|r| (r.kind, r.n)).collect::<Vec<_>>())
    };
    let per_source = SourceName::ALL.map(|source| async move {
        let table = crate::sources::def(source).identity.0;
        let db = sources.source(source);
        let records = db.fetch_count(trace, &format!("select count(*) as n from {table}"), &[]).await;
        (source, records)
    });
    let (customers, merged, conflicts, shared, linked, records) = tokio::join!(
        super::store::count_customers(hub, trace, None, None),
        hub.fetch_count(trace, "select count(*) as n from customer_aliases", &[]),
        kinds("select kind, count(*) as n from identity_conflicts group by kind order by kind"),
        kinds("select kind, count(*) as n from ambiguous_keys group by kind order by kind"),
        hub.fetch_all::<LinkCounts>(
            trace,
            "select source, count(*) as linked, count(case when email_invalid then 1 end) as invalid_emails,
                    count(case when phone_invalid then 1 end) as invalid_phones
             from identity_links group by source",
            &[],
        ),
        futures::future::join_all(per_source),
    );
    let linked = linked.map_err(at_hub)?;
    let mut out = Findings {
        customers: customers.map_err(at_hub)?,
        merged: merged.map_err(at_hub)?,
        conflicts: conflicts.map_err(at_hub)?,
        shared_keys: shared.map_err(at_hub)?,
        sources: Vec::new(),
    };
    for (source, records) in records {
        let records = records.map_err(|e| (source.db(), e))?;
        let counts = linked.iter().find(|c| c.source == source.to_string());
        out.sources.push(SourceFindings {
            source,
            records,
            linked: counts.map_or(0, |c| c.linked),
            invalid_emails: counts.map_or(0, |c| c.invalid_emails),
            invalid_phones: counts.map_or(0, |c| c.invalid_phones),
        });
    }
    Ok(out)
}

fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// Measures the links in the hub store against `seed_truth`.
pub async fn measure(hub: &Database) -> Result<Quality, sqlx::Error> {
    let rows: Vec<Row> = hub
        .fetch_all(
            &SqlTrace::default(),
            "select l.customer_id, t.person_id
             from seed_truth t
             left join identity_links l on l.source = t.source and l.source_key = t.source_key",
            &[],
        )
        .await?;
    let mut by_customer: HashMap<&str, u64> = HashMap::new();
    let mut by_person: HashMap<i64, u64> = HashMap::new();
    let mut by_both: HashMap<(&str, i64), u64> = HashMap::new();
    let mut unlinked = 0;
    for r in &rows {
        *by_person.entry(r.person_id).or_default() += 1;
        // An unlinked record is a customer of its own: it pairs with nobody.
        let Some(customer) = r.customer_id.as_deref() else {
            unlinked += 1;
            continue;
        };
        *by_customer.entry(customer).or_default() += 1;
        *by_both.entry((customer, r.person_id)).or_default() += 1;
    }
    let predicted_pairs: u64 = by_customer.values().map(|n| pairs(*n)).sum();
    let true_pairs: u64 = by_person.values().map(|n| pairs(*n)).sum();
    let correct_pairs: u64 = by_both.values().map(|n| pairs(*n)).sum();
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    Ok(Quality {
        records: rows.len() as u64,
        unlinked,
        true_pairs,
        predicted_pairs,
        correct_pairs,
        precision: ratio(correct_pairs, predicted_pairs),
        recall: ratio(correct_pairs, true_pairs),
    })
}
