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

pub use crate::sources::ERASED_TEXT;

/// Everything about one customer, source by source (`crm`, `shop`, …), and how the hub
/// linked their records.
#[derive(Debug, Serialize)]
pub struct Export {
    pub customer_id: String,
    pub exported_at: DateTime<Utc>,
    /// Per source, its tables' rows about the customer.
    #[serde(flatten)]
    pub sources: BTreeMap<String, serde_json::Value>,
    /// How the hub resolved the records into this customer.
    pub identity_links: Vec<Link>,
}

/// A source that failed, and why (logged, never sent).
#[derive(Debug)]
pub struct SourceFailed(pub DbName, pub sqlx::Error);

/// Everything the sources and the hub hold about the customer with these links.
pub async fn export(
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
    Ok(Export {
        customer_id: customer_id.to_owned(),
        exported_at: Utc::now(),
        sources: by_source,
        identity_links: links,
    })
}

/// What erasure did in one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    pub db: DbName,
    /// Rows deleted.
    pub deleted: u64,
    /// Rows kept with what described the person removed.
    pub anonymized: u64,
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
pub async fn erase(sources: &Sources, customer_id: &str, links: &[Link]) -> Result<Vec<Erased>, SourceFailed> {
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
