//! Precision and recall of identity resolution against the seeder's ground truth
//! (`seed_truth`), counted over pairs of source records: a pair is "predicted" when both
//! records link to one customer and "true" when both belong to one demo person. Every
//! seeded record counts: one the resolver never linked is in no predicted pair, so the
//! true pairs it belongs to are missed (they stay in recall's denominator).

use std::collections::HashMap;

use serde::Serialize;

use crate::sources::{Database, SqlTrace};

#[derive(Debug, Clone, Serialize)]
pub struct Quality {
    /// Seeded records (every record with a ground-truth person).
    pub records: u64,
    /// Of those, the records no customer links to.
    pub unlinked: u64,
    pub true_pairs: u64,
    pub predicted_pairs: u64,
    pub correct_pairs: u64,
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
