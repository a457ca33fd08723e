//! The incremental identity resolver: reads new and changed source records after each
//! source's watermark and links every record to a golden customer.
//!
//! Rules (the README lists them for users):
//! 1. Records match on a normalised email or E.164 phone, never on a name.
//! 2. Names never make a match, but they can veto one: a record whose name is clearly not
//!    that of the customer's CRM person (another last name, or another first name that is
//!    not an initial) shares the key with someone else. The key is then marked
//!    ambiguous, reported as a conflict, and never used to match again.
//! 3. A record that matches two customers merges them, unless each has CRM records with
//!    different names (then the merge is reported as blocked and the email match wins).
//!    The merged-away id stays an alias of the survivor.
//! 4. A record that matches nobody founds a new customer (rule `anchor`).
//! 5. A link, once made, is kept; when a linked record's keys change, the stored keys
//!    are updated so that later records match on the new ones.
//!
//! Sources are read in the order CRM, shop, helpdesk, marketing, so that conflicts
//! between CRM people are known before other records match on their keys.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Mutex;

use super::normalize::{EmailAddress, PhoneNumber, name_key, names_compatible};
use super::store;
use crate::sources::engine::{in_list, insert_rows};
use crate::sources::lease::Lease;
use crate::sources::{Arg, IdentityRecord, SourceName, Sources, SqlTrace, changed_records};

/// What one resolver run did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct ResolveReport {
    /// Source records read (new or changed).
    pub read: u64,
    /// Records linked for the first time.
    pub linked: u64,
    /// Golden customers created.
    pub new_customers: u64,
    /// Customers merged into another.
    pub merged: u64,
    /// Conflicts reported (shared keys, blocked merges, duplicate CRM records).
    pub conflicts: u64,
    /// Already linked records whose keys changed.
    pub(crate) updated: u64,
}

/// How long a resolver run holds its lease from its take and from each batch it commits
/// (`identity.lease`): a batch takes about a second, so only a replica that died (or
/// stalled that long) lets another take over.
const RESOLVE_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs resolution; one run at a time per process.
pub struct Resolver {
    sources: Sources,
    default_region: String,
    batch_size: usize,
    lease: std::time::Duration,
    running: Mutex<()>,
}

#[derive(Debug, Clone)]
struct Candidate {
    key: String,
    email: Option<EmailAddress>,
    phone: Option<PhoneNumber>,
    /// The record's folded name, where the source keeps one (not marketing).
    name: Option<String>,
    /// CRM names are the authority on who a customer is; only they are indexed.
    crm: bool,
    /// The record holds an email (phone) the resolver could not read.
    email_invalid: bool,
    phone_invalid: bool,
}

crate::row! {
    #[derive(Debug)]
    struct KeyRow {
        customer_id: String,
        source: String,
        source_key: String,
        email_norm: Option<String>,
        phone_norm: Option<String>,
        name_key: Option<String>,
        email_invalid: bool,
        phone_invalid: bool,
    }
}

crate::row! {
    #[derive(Debug)]
    struct AmbiguousRow {
        kind: String,
        value: String,
    }
}

crate::row! {
    #[derive(Debug)]
    struct WatermarkRow {
        updated_at: DateTime<Utc>,
        last_key: i64,
        updated_nanos: Option<i64>,
    }
}

const EMAIL: &str = "email";
const PHONE: &str = "phone";

/// The in-memory picture of the customers a batch can touch.
#[derive(Default)]
struct Index {
    by_email: HashMap<String, BTreeSet<String>>,
    by_phone: HashMap<String, BTreeSet<String>>,
    /// CRM name keys per customer.
    names: HashMap<String, BTreeSet<String>>,
    ambiguous: HashSet<(&'static str, String)>,
    /// Merges made in this batch: old id -> survivor.
    merged: HashMap<String, String>,
}

impl Index {
    fn canon(&self, id: &str) -> String {
        let mut id = id.to_owned();
        while let Some(next) = self.merged.get(&id) {
            id = next.clone();
        }
        id
    }

    fn lookup(&self, kind: &'static str, value: &str) -> Vec<String> {
        let map = if kind == EMAIL { &self.by_email } else { &self.by_phone };
        let mut out: Vec<String> = Vec::new();
        for id in map.get(value).into_iter().flatten() {
            let id = self.canon(id);
            if !out.contains(&id) {
                out.push(id);
            }
        }
        out
    }

    /// Two customers may merge unless both have CRM people and none of them can be the
    /// same person.
    fn compatible(&self, a: &str, b: &str) -> bool {
        match (self.names.get(a), self.names.get(b)) {
            (Some(x), Some(y)) if !x.is_empty() && !y.is_empty() => {
                x.iter().any(|n| y.iter().any(|m| names_compatible(n, m)))
            }
            _ => true,
        }
    }

    /// Whether `name` clearly is not the CRM person of customer `id`.
    fn vetoes(&self, id: &str, name: &str) -> bool {
        self.names.get(id).is_some_and(|ns| !ns.is_empty() && !ns.iter().any(|n| names_compatible(n, name)))
    }
}

/// Everything a batch writes, applied in one transaction.
#[derive(Default)]
struct Changes {
    new_customers: Vec<String>,
    links: Vec<(Candidate, String, &'static str)>,
    key_updates: Vec<Candidate>,
    merges: Vec<(String, String)>,
    ambiguous: Vec<(&'static str, String)>,
    conflicts: Vec<(&'static str, String, Option<String>)>,
}

impl Resolver {
    pub fn new(sources: Sources, default_region: String, batch_size: usize) -> Self {
        Resolver {
            sources,
            default_region,
            batch_size: batch_size.max(1),
            lease: RESOLVE_LEASE,
            running: Mutex::new(()),
        }
    }

    /// This resolver with its runs' lease lasting `ttl` (from the take and each batch).
    pub fn with_lease(self, ttl: std::time::Duration) -> Self {
        Resolver { lease: ttl.max(std::time::Duration::from_secs(1)), ..self }
    }

    /// Resolves everything new or changed since the last run.
    /// One run at a time over all replicas too: a replica that finds another holding
    /// the lease reports nothing done (the other resolves the same records).
    pub async fn run(&self) -> Result<ResolveReport, sqlx::Error> {
        let _guard = self.running.lock().await;
        let Some(lease) = Lease::take(self.sources.hub(), "resolve", self.lease).await? else {
            tracing::debug!("another replica is resolving");
            return Ok(ResolveReport::default());
        };
        let done = self.run_held(&lease).await;
        if matches!(done, Err(sqlx::Error::RowNotFound)) {
            tracing::warn!("lost the resolution's lease to another replica: this one's last batch was not committed");
        }
        lease.release().await;
        done
    }

    async fn run_held(&self, lease: &Lease<'_>) -> Result<ResolveReport, sqlx::Error> {
        let mut report = ResolveReport::default();
        // The hub store's statistics are refreshed as the links double (1,000 records
        // read, 2,000, 4,000, ...): a few times per large run, never for a small one.
        let mut analyze_at = 1_000;
        for source in SourceName::ALL {
            // Read once; then each committed batch's position, as it was (a position
            // read back could lie before it, and the same batch be read again).
            let mut watermark = self.watermark(source).await?;
            loop {
                let records = changed_records(&self.sources, source, watermark, self.batch_size as i64).await?;
                let Some(last) = records.last() else { break };
                let next = (last.updated_at, last.id);
                let full = records.len() == self.batch_size;
                self.resolve_batch(source, records, next, lease, &mut report).await?;
                watermark = Some(next);
                if report.read >= analyze_at {
                    self.sources.hub().analyze(&["identity_links", "customers", "ambiguous_keys"]).await?;
                    analyze_at = report.read * 2;
                }
                if !full {
                    break;
                }
            }
        }
        Ok(report)
    }

    async fn watermark(&self, source: SourceName) -> Result<Option<(DateTime<Utc>, i64)>, sqlx::Error> {
        // Synced: the previous holder of the lease may have written through another node.
        let rows: Vec<WatermarkRow> = self
            .sources
            .hub()
            .synced()
            .fetch_all(
                &SqlTrace::default(),
                "select updated_at, last_key, updated_nanos from resolve_watermarks where source = ?",
                &[Arg::Text(source.to_string())],
            )
            .await?;
        // The exact instant where written (MySQL's `updated_at` holds whole seconds).
        Ok(rows.first().map(|w| (w.updated_nanos.map_or(w.updated_at, DateTime::from_timestamp_nanos), w.last_key)))
    }

    fn candidate(&self, source: SourceName, r: IdentityRecord) -> Candidate {
        let region = r.country.as_deref().unwrap_or(&self.default_region);
        let email = r.email.as_deref().and_then(EmailAddress::parse);
        let phone = r.phone.as_deref().and_then(|p| PhoneNumber::parse(p, Some(region)));
        // Blank is missing, not invalid.
        let written = |raw: &Option<String>| raw.as_deref().is_some_and(|v| !v.trim().is_empty());
        Candidate {
            key: r.id.to_string(),
            email_invalid: email.is_none() && written(&r.email),
            phone_invalid: phone.is_none() && written(&r.phone),
            email,
            phone,
            name: match (&r.first_name, &r.last_name) {
                (None, None) => None,
                (f, l) => {
                    Some(name_key(f.as_deref().unwrap_or(""), l.as_deref().unwrap_or(""))).filter(|n| !n.is_empty())
                }
            },
            crm: source == SourceName::Crm,
        }
    }

    async fn resolve_batch(
        &self,
        source: SourceName,
        records: Vec<IdentityRecord>,
        watermark: (DateTime<Utc>, i64),
        lease: &Lease<'_>,
        report: &mut ResolveReport,
    ) -> Result<(), sqlx::Error> {
        let hub = self.sources.hub();
        report.read += records.len() as u64;
        let candidates: Vec<Candidate> = records.into_iter().map(|r| self.candidate(source, r)).collect();
        let index_rows = self.load_index(source, &candidates).await?;
        let mut index = Index::default();
        let mut existing: HashMap<String, (Option<String>, Option<String>, bool, bool)> = HashMap::new();
        for row in &index_rows.keys {
            if row.source == source.to_string() {
                let stored = (row.email_norm.clone(), row.phone_norm.clone(), row.email_invalid, row.phone_invalid);
                existing.insert(row.source_key.clone(), stored);
            }
            if let Some(e) = &row.email_norm {
                index.by_email.entry(e.clone()).or_default().insert(row.customer_id.clone());
            }
            if let Some(p) = &row.phone_norm {
                index.by_phone.entry(p.clone()).or_default().insert(row.customer_id.clone());
            }
            if let Some(n) = &row.name_key {
                index.names.entry(row.customer_id.clone()).or_default().insert(n.clone());
            }
        }
        for a in index_rows.ambiguous {
            let kind = if a.kind == EMAIL { EMAIL } else { PHONE };
            index.ambiguous.insert((kind, a.value));
        }

        let mut changes = Changes::default();
        for c in candidates {
            if let Some((email, phone, email_invalid, phone_invalid)) = existing.get(&c.key) {
                if email.as_deref() != c.email.as_ref().map(EmailAddress::as_str)
                    || phone.as_deref() != c.phone.as_ref().map(PhoneNumber::as_str)
                    || (*email_invalid, *phone_invalid) != (c.email_invalid, c.phone_invalid)
                {
                    changes.key_updates.push(c);
                }
                continue;
            }
            Self::link(c, &mut index, &mut changes);
        }

        report.linked += changes.links.len() as u64;
        report.new_customers += changes.new_customers.iter().filter(|id| index.canon(id) == **id).count() as u64;
        report.merged += changes.merges.iter().filter(|(old, _)| !changes.new_customers.contains(old)).count() as u64;
        report.conflicts += changes.conflicts.len() as u64;
        report.updated += changes.key_updates.len() as u64;
        // Committed only while this replica still holds the lease: one that stalled past
        // it cannot write links another replica is writing too.
        hub.fenced(&lease.fence(), &self.statements(source, &index, changes, watermark)).await.map(|_| ())
    }

    /// Decides where one new record belongs, updating the index and the change set.
    fn link(c: Candidate, index: &mut Index, changes: &mut Changes) {
        let mut matches: Vec<(String, &'static str)> = Vec::new();
        let keys = [
            (EMAIL, c.email.as_ref().map(|e| e.as_str().to_owned())),
            (PHONE, c.phone.as_ref().map(|p| p.as_str().to_owned())),
        ];
        for (kind, value) in &keys {
            let Some(value) = value else { continue };
            if index.ambiguous.contains(&(*kind, value.clone())) {
                continue;
            }
            let found = index.lookup(kind, value);
            // A key that already belongs to a differently named CRM person: it is shared by
            // two people and may never match again.
            let clash = c.name.as_ref().is_some_and(|name| found.iter().any(|id| index.vetoes(id, name)));
            if clash || found.len() > 1 {
                let conflict = if *kind == EMAIL { "shared_email" } else { "shared_phone" };
                let other = found.first().cloned();
                index.ambiguous.insert((kind, value.clone()));
                changes.ambiguous.push((kind, value.clone()));
                changes.conflicts.push((conflict, c.key.clone(), other));
                continue;
            }
            for id in found {
                if !matches.iter().any(|(m, _)| *m == id) {
                    matches.push((id, kind));
                }
            }
        }

        let (target, rule) = match matches.first() {
            Some((id, kind)) => (id.clone(), *kind),
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                changes.new_customers.push(id.clone());
                (id, "anchor")
            }
        };
        for (other, _) in matches.iter().skip(1) {
            if index.compatible(&target, other) {
                index.merged.insert(other.clone(), target.clone());
                let names = index.names.remove(other).unwrap_or_default();
                index.names.entry(target.clone()).or_default().extend(names);
                changes.merges.push((other.clone(), target.clone()));
            } else {
                changes.conflicts.push(("merge_blocked", c.key.clone(), Some(other.clone())));
            }
        }
        if let Some(name) = c.name.as_ref().filter(|_| c.crm) {
            let names = index.names.entry(target.clone()).or_default();
            if names.contains(name) {
                // The same person twice in the CRM: merged, and flagged for clean-up there.
                changes.conflicts.push(("duplicate_record", c.key.clone(), None));
            }
            names.insert(name.clone());
        }
        if let Some(e) = &c.email {
            index.by_email.entry(e.as_str().to_owned()).or_default().insert(target.clone());
        }
        if let Some(p) = &c.phone {
            index.by_phone.entry(p.as_str().to_owned()).or_default().insert(target.clone());
        }
        changes.links.push((c, target, rule));
    }

    /// Reads the links and ambiguous keys that share a key with any candidate, plus the
    /// CRM names of those customers and the batch's own existing links.
    async fn load_index(&self, source: SourceName, candidates: &[Candidate]) -> Result<IndexRows, sqlx::Error> {
        // Synced: links another replica's run wrote through another node must be seen,
        // or a record would be linked twice.
        let hub = &self.sources.hub().synced();
        let trace = SqlTrace::default();
        let emails: Vec<String> =
            unique(candidates.iter().filter_map(|c| c.email.as_ref().map(|e| e.as_str().to_owned())));
        let phones: Vec<String> =
            unique(candidates.iter().filter_map(|c| c.phone.as_ref().map(|p| p.as_str().to_owned())));
        let keys: Vec<String> = candidates.iter().map(|c| c.key.clone()).collect();
        const COLUMNS: &str =
            "customer_id, source, source_key, email_norm, phone_norm, name_key, email_invalid, phone_invalid";

        let mut rows: Vec<KeyRow> = Vec::new();
        for chunk in keys.chunks(1000) {
            let sql = format!(
                "select {COLUMNS} from identity_links where source = ? and source_key in ({})",
                in_list(chunk.len())
            );
            let args: Vec<Arg> = std::iter::once(Arg::Text(source.to_string()))
                .chain(chunk.iter().map(|k| Arg::Text(k.clone())))
                .collect();
            rows.extend(hub.fetch_all::<KeyRow>(&trace, &sql, &args).await?);
        }
        for (column, values) in [("email_norm", &emails), ("phone_norm", &phones)] {
            for chunk in values.chunks(1000) {
                let sql = format!("select {COLUMNS} from identity_links where {column} in ({})", in_list(chunk.len()));
                let args: Vec<Arg> = chunk.iter().map(|v| Arg::Text(v.clone())).collect();
                rows.extend(hub.fetch_all::<KeyRow>(&trace, &sql, &args).await?);
            }
        }
        let customers: Vec<String> = unique(rows.iter().map(|r| r.customer_id.clone()));
        for chunk in customers.chunks(1000) {
            // No `source = 'crm'` in SQL: SQLite would then pick the primary key
            // (source, source_key) and scan every CRM link per batch. Filter here instead.
            let sql = format!("select {COLUMNS} from identity_links where customer_id in ({})", in_list(chunk.len()));
            let args: Vec<Arg> = chunk.iter().map(|v| Arg::Text(v.clone())).collect();
            let links = hub.fetch_all::<KeyRow>(&trace, &sql, &args).await?;
            rows.extend(links.into_iter().filter(|r| r.source == "crm"));
        }
        let mut ambiguous = Vec::new();
        let values: Vec<String> = emails.into_iter().chain(phones).collect();
        for chunk in values.chunks(1000) {
            let sql = format!("select kind, value from ambiguous_keys where value in ({})", in_list(chunk.len()));
            let args: Vec<Arg> = chunk.iter().map(|v| Arg::Text(v.clone())).collect();
            ambiguous.extend(hub.fetch_all::<AmbiguousRow>(&trace, &sql, &args).await?);
        }
        Ok(IndexRows { keys: rows, ambiguous })
    }

    fn statements(
        &self,
        source: SourceName,
        index: &Index,
        changes: Changes,
        watermark: (DateTime<Utc>, i64),
    ) -> Vec<(String, Vec<Arg>)> {
        let hub = self.sources.hub();
        let now = Utc::now();
        let src = source.to_string();
        let mut out = Vec::new();
        // Whether a lookup by id or by key could find other links after this batch.
        let moves_links = !(changes.links.is_empty() && changes.key_updates.is_empty() && changes.merges.is_empty());

        let customers: Vec<Vec<Arg>> = changes
            .new_customers
            .iter()
            .filter(|id| index.canon(id) == **id)
            .map(|id| vec![Arg::Text(id.clone()), Arg::Time(now)])
            .collect();
        out.extend(insert_rows(hub, "customers", &["id", "created_at"], customers));

        let links: Vec<Vec<Arg>> = changes
            .links
            .iter()
            .map(|(c, customer, rule)| {
                vec![
                    Arg::Text(src.clone()),
                    Arg::Text(c.key.clone()),
                    Arg::Text(index.canon(customer)),
                    Arg::Text((*rule).to_owned()),
                    Arg::OptText(c.email.as_ref().map(|e| e.as_str().to_owned())),
                    Arg::OptText(c.phone.as_ref().map(|p| p.as_str().to_owned())),
                    Arg::OptText(c.name.clone().filter(|_| c.crm)),
                    Arg::Bool(c.email_invalid),
                    Arg::Bool(c.phone_invalid),
                    Arg::Time(now),
                ]
            })
            .collect();
        let columns = [
            "source",
            "source_key",
            "customer_id",
            "rule",
            "email_norm",
            "phone_norm",
            "name_key",
            "email_invalid",
            "phone_invalid",
            "linked_at",
        ];
        out.extend(insert_rows(hub, "identity_links", &columns, links));

        for c in changes.key_updates {
            out.push((
                "update identity_links set email_norm = ?, phone_norm = ?, name_key = ?, email_invalid = ?, phone_invalid = ? \
                 where source = ? and source_key = ?"
                    .into(),
                vec![
                    Arg::OptText(c.email.map(|e| e.as_str().to_owned())),
                    Arg::OptText(c.phone.map(|p| p.as_str().to_owned())),
                    Arg::OptText(c.name.filter(|_| c.crm)),
                    Arg::Bool(c.email_invalid),
                    Arg::Bool(c.phone_invalid),
                    Arg::Text(src.clone()),
                    Arg::Text(c.key),
                ],
            ));
        }

        for (old, survivor) in &changes.merges {
            if changes.new_customers.contains(old) {
                continue; // never written, so nothing to move
            }
            let survivor = index.canon(survivor);
            let pair = || vec![Arg::Text(survivor.clone()), Arg::Text(old.clone())];
            out.push(("update identity_links set customer_id = ? where customer_id = ?".into(), pair()));
            out.push(("update customer_aliases set customer_id = ? where customer_id = ?".into(), pair()));
            out.push(("update identity_conflicts set customer_id = ? where customer_id = ?".into(), pair()));
            out.push((
                "insert into customer_aliases (old_id, customer_id, merged_at) values (?, ?, ?)".into(),
                vec![Arg::Text(old.clone()), Arg::Text(survivor.clone()), Arg::Time(now)],
            ));
            out.push(("delete from customers where id = ?".into(), vec![Arg::Text(old.clone())]));
        }

        let ambiguous: Vec<Vec<Arg>> = unique(changes.ambiguous.into_iter())
            .into_iter()
            .map(|(kind, value)| vec![Arg::Text(kind.to_owned()), Arg::Text(value)])
            .collect();
        // Idempotent: on MySQL two keys that differ only in accents compare equal.
        let (head, tail) = hub.engine.insert_ignore();
        out.extend(
            insert_rows(hub, "ambiguous_keys", &["kind", "value"], ambiguous)
                .into_iter()
                .map(|(sql, args)| (format!("{head}{}{tail}", sql.trim_start_matches("insert into")), args)),
        );

        // The customer a conflicting record ended up in is known only now.
        let linked: HashMap<&str, &str> =
            changes.links.iter().map(|(c, id, _)| (c.key.as_str(), id.as_str())).collect();
        let conflicts: Vec<Vec<Arg>> = changes
            .conflicts
            .iter()
            .map(|(kind, key, other)| {
                vec![
                    Arg::Text(uuid::Uuid::now_v7().to_string()),
                    Arg::Text((*kind).to_owned()),
                    Arg::Text(src.clone()),
                    Arg::Text(key.clone()),
                    Arg::Text(index.canon(linked.get(key.as_str()).copied().unwrap_or_default())),
                    Arg::OptText(other.as_ref().map(|o| index.canon(o))),
                    Arg::Time(now),
                ]
            })
            .collect();
        let columns = ["id", "kind", "source", "source_key", "customer_id", "other_customer_id", "detected_at"];
        out.extend(insert_rows(hub, "identity_conflicts", &columns, conflicts));

        let upsert = hub.engine.upsert("source", &["updated_at", "last_key", "updated_nanos"]);
        let nanos = watermark.0.timestamp_nanos_opt();
        out.push((
            format!(
                "insert into resolve_watermarks (source, updated_at, last_key, updated_nanos) values (?, ?, ?, ?){upsert}"
            ),
            vec![Arg::Text(src), Arg::Time(watermark.0), Arg::Int(watermark.1), Arg::OptInt(nanos)],
        ));
        if moves_links {
            out.push((store::BUMP_LINK_GENERATION.to_owned(), vec![]));
        }
        out
    }
}

struct IndexRows {
    keys: Vec<KeyRow>,
    ambiguous: Vec<AmbiguousRow>,
}

fn unique<T: Eq + std::hash::Hash + Clone>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    items.filter(|i| seen.insert(i.clone())).collect()
}
