//! The audit log: who saw whose personal data, when, in which request.
//!
//! Resolvers note what a response reveals unmasked ([`Reveals`]); when the response is
//! ready, the HTTP layer hands its entries to the [`AuditLog`] and the response leaves
//! only once they are committed to the hub store. The writer task commits the entries of
//! concurrent responses together (group commit: whatever queued while the last writes
//! ran goes in the next, without waiting for a timer). Nothing is lost, not even when
//! the process is killed:
//! - the queue is bounded: when it is full, requests wait for room;
//! - a response whose entries are not stored within `audit.write_timeout` is withheld;
//! - a failed write is retried, with the batch kept, until the store answers again;
//! - [`AuditLog::close`] (graceful shutdown) stops taking entries and writes every one
//!   already taken;
//! - while the store is failing, responses that would reveal personal data are refused
//!   (`AUDIT_UNAVAILABLE`): the hub fails closed;
//! - one entry the store refuses while it takes others (a value it cannot hold, a rule of
//!   its own) does not stop the log: it is set apart in the server log and counted
//!   (`c360_audit_dead_letters_total`), and the others are written. An entry whose values
//!   do not fit the table is refused before its response leaves.

pub(crate) mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::auth::{Role, Viewer};
use crate::config::AuditConfig;
use crate::sources::Database;

/// Why an entry is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::EnumString, async_graphql::Enum)]
#[strum(serialize_all = "lowercase")]
pub(crate) enum AuditAction {
    /// A response showed unmasked contact or sensitive data.
    Read,
    /// Everything known about the customer was exported.
    Export,
    /// The customer was erased.
    Erase,
    /// Tokens were revoked (no customer: `target` says whose).
    Revoke,
    /// The customer consented to share with a partner (`target`), for a purpose
    /// (`fields`, `*` for any); written before the consent is.
    ConsentGranted,
    /// The customer's consents for a partner (`target`) were withdrawn, for a purpose
    /// (`fields`, `*` for every one); written before they are.
    ConsentRevoked,
    /// The audit log was read (`fields`: the filters used).
    AuditRead,
    /// A privileged operation (`fields` names it) was refused to the token.
    Refused,
    /// An alert in the inbox (`target`: its number) was acknowledged, assigned or
    /// resolved (`fields`: what it was set to).
    AlertChanged,
}

/// One customer's personal data, seen by one viewer in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditEntry {
    pub(crate) at: DateTime<Utc>,
    pub(crate) request_id: String,
    pub(crate) subject: String,
    pub(crate) role: Role,
    pub(crate) partner: Option<String>,
    pub(crate) action: AuditAction,
    /// The golden customer id.
    pub(crate) customer_id: String,
    /// Field names, never values (for a revocation: the kind, `token_id`, `subject` or
    /// `partner`).
    pub(crate) fields: Vec<String>,
    /// For a revocation: the token id, subject or partner revoked.
    pub(crate) target: Option<String>,
    /// For a read: every customer the response revealed (`customer_id` is then empty and
    /// `fields` the fields shown of most of them). Stored as one row for the response and
    /// one narrow row per customer.
    pub(crate) seen: Vec<Seen>,
}

/// One customer a response revealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The golden customer id.
    pub(crate) customer_id: String,
    /// The fields shown of this customer, comma-separated, when they are not the
    /// response's `fields`.
    pub(crate) fields: Option<String>,
}

impl AuditEntry {
    pub(crate) fn new(
        viewer: &Viewer,
        request_id: &str,
        action: AuditAction,
        customer_id: &str,
        fields: Vec<String>,
    ) -> Self {
        AuditEntry {
            at: Utc::now(),
            request_id: request_id.to_owned(),
            subject: viewer.subject.clone(),
            role: viewer.role,
            partner: viewer.partner.clone(),
            action,
            customer_id: customer_id.to_owned(),
            fields,
            target: None,
            seen: Vec::new(),
        }
    }

    /// How much room the entry takes in the queue: one per customer it names.
    fn weight(&self) -> usize {
        self.seen.len().max(1)
    }

    /// The first of its values the table cannot hold, by column name (the sizes of the
    /// `audit_log` migration). Cheap where every value is short: a string of at most `max`
    /// bytes holds at most `max` characters.
    fn too_long(&self) -> Option<&'static str> {
        let over = |v: &str, max: usize| v.len() > max && v.chars().count() > max;
        // The fields are stored joined with commas.
        let commas = self.fields.len().saturating_sub(1);
        let fields = self.fields.iter().map(String::len).sum::<usize>() + commas > 1000
            && self.fields.iter().map(|f| f.chars().count()).sum::<usize>() + commas > 1000;
        let seen = |column: &'static str| match column {
            "customer_id" => self.seen.iter().any(|s| over(&s.customer_id, 36)),
            _ => self.seen.iter().any(|s| s.fields.as_deref().is_some_and(|f| over(f, 1000))),
        };
        [
            ("request_id", over(&self.request_id, 36)),
            ("audit_reads.customer_id", seen("customer_id")),
            ("audit_reads.fields", seen("fields")),
            ("subject", over(&self.subject, 200)),
            ("partner", self.partner.as_deref().is_some_and(|p| over(p, 64))),
            ("customer_id", over(&self.customer_id, 36)),
            ("fields", fields),
            ("target", self.target.as_deref().is_some_and(|t| over(t, 320))),
        ]
        .into_iter()
        .find_map(|(column, long)| long.then_some(column))
    }

    /// The entry of a revocation by `viewer`: `kind` (`token_id`, `subject` or `partner`)
    /// and what was revoked.
    pub(crate) fn revocation(viewer: &Viewer, request_id: &str, kind: &str, target: &str) -> Self {
        AuditEntry {
            target: Some(target.to_owned()),
            ..AuditEntry::new(viewer, request_id, AuditAction::Revoke, "", vec![kind.to_owned()])
        }
    }
}

/// What one response revealed unmasked (customer → fields), filled by resolvers, and
/// what else it is to leave in the audit log (a refused attempt, a read of the log).
#[derive(Debug, Default)]
pub(crate) struct Reveals {
    /// Customer → the fields shown of them.
    reads: Mutex<BTreeMap<String, BTreeSet<&'static str>>>,
    /// Other entries: action, customer (empty: none), fields.
    noted: Mutex<Vec<(AuditAction, String, Vec<String>)>>,
}

impl Reveals {
    pub(crate) fn record(&self, customer_id: &str, field: &'static str) {
        let mut map = self.reads.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(customer_id.to_owned()).or_default().insert(field);
    }

    /// What was noted so far, leaving this empty: a subscription audits each event's
    /// reads on their own.
    pub(crate) fn take(&self) -> Reveals {
        let reads = std::mem::take(&mut *self.reads.lock().unwrap_or_else(|e| e.into_inner()));
        let noted = std::mem::take(&mut *self.noted.lock().unwrap_or_else(|e| e.into_inner()));
        Reveals { reads: Mutex::new(reads), noted: Mutex::new(noted) }
    }

    /// Notes an entry of `action` about `customer_id` (empty: none), with `fields`.
    pub(crate) fn note(&self, action: AuditAction, customer_id: &str, fields: Vec<String>) {
        self.noted.lock().unwrap_or_else(|e| e.into_inner()).push((action, customer_id.to_owned(), fields));
    }

    /// The audit entry of what this response revealed (none when it revealed nothing):
    /// one for the response, naming every customer, the fields most of them were shown
    /// as its own, and each other customer's fields with that customer.
    pub(crate) fn entries(&self, viewer: &Viewer, request_id: &str) -> Vec<AuditEntry> {
        let map = self.reads.lock().unwrap_or_else(|e| e.into_inner());
        let mut counts: BTreeMap<&BTreeSet<&'static str>, usize> = BTreeMap::new();
        for fields in map.values() {
            *counts.entry(fields).or_default() += 1;
        }
        // The most common set, the first of them on a tie.
        let Some(common) = counts.iter().rev().max_by_key(|(_, n)| **n).map(|(fields, _)| *fields) else {
            return Vec::new();
        };
        let joined = |fields: &BTreeSet<&'static str>| fields.iter().copied().collect::<Vec<_>>().join(",");
        let seen = map
            .iter()
            .map(|(customer, fields)| Seen {
                customer_id: customer.clone(),
                fields: (fields != common).then(|| joined(fields)),
            })
            .collect();
        let fields = common.iter().map(|f| (*f).to_owned()).collect();
        vec![AuditEntry { seen, ..AuditEntry::new(viewer, request_id, AuditAction::Read, "", fields) }]
    }

    /// The other entries noted in this response (a refused attempt, a read of the log).
    pub(crate) fn noted(&self, viewer: &Viewer, request_id: &str) -> Vec<AuditEntry> {
        let noted = self.noted.lock().unwrap_or_else(|e| e.into_inner());
        noted
            .iter()
            .map(|(action, customer, fields)| AuditEntry::new(viewer, request_id, *action, customer, fields.clone()))
            .collect()
    }
}

/// The audit log could not take the entries: the response must not be sent.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the audit log is unavailable")]
pub(crate) struct AuditUnavailable;

/// Handle to the audit writer. Cheap to clone.
#[derive(Clone)]
pub(crate) struct AuditLog {
    queue: mpsc::Sender<Queued>,
    /// Entries that may wait in memory: taken by each response's entries when queued,
    /// given back when they are written. (Bounded by entries, not responses: a page of
    /// 50 customers is 50 entries, and 4096 queued pages held 50 MiB.)
    room: Arc<tokio::sync::Semaphore>,
    /// The room in all.
    capacity: usize,
    healthy: Arc<AtomicBool>,
    /// How long a response waits for its entries to be stored.
    write_timeout: Duration,
    writer: Arc<Mutex<Option<Writer>>>,
    /// Set when the log closes: a write that keeps failing then gives up at a deadline.
    closing: Arc<AtomicBool>,
    /// Entries the store refused while it took others.
    dead_letters: Arc<AtomicU64>,
}

/// The writer task and the signal that closes it.
struct Writer {
    close: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl AuditLog {
    /// Starts the writer over the hub store.
    pub(crate) fn start(hub: Database, config: &AuditConfig) -> Self {
        let capacity = config.queue.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        // Never full before the room is: every message holds at least one entry's room.
        let (queue, entries) = mpsc::channel(capacity);
        let (close, closing) = oneshot::channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let (shutting, dead_letters) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let store =
            Store { hub, healthy: healthy.clone(), closing: shutting.clone(), dead_letters: dead_letters.clone() };
        let task = tokio::spawn(write_loop(store, entries, closing));
        AuditLog {
            queue,
            room: Arc::new(tokio::sync::Semaphore::new(capacity)),
            capacity,
            healthy,
            write_timeout: config.write_timeout,
            writer: Arc::new(Mutex::new(Some(Writer { close, task }))),
            closing: shutting,
            dead_letters,
        }
    }

    /// Entries the store refused while it took others, since the start.
    pub(crate) fn dead_letters(&self) -> u64 {
        self.dead_letters.load(Ordering::Relaxed)
    }

    /// Entries waiting to be written.
    pub(crate) fn queued(&self) -> usize {
        self.capacity - self.room.available_permits()
    }

    /// Room for `entries` entries (all the room for more than that).
    fn room_for(&self, entries: usize) -> u32 {
        u32::try_from(entries.clamp(1, self.capacity)).unwrap_or(u32::MAX)
    }

    /// Whether the last write succeeded; while not, revealing responses are refused.
    pub(crate) fn available(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Stores one response's entries: returns once they are committed. Fails while the
    /// store is failing, when they are not stored within `audit.write_timeout` (the
    /// queue full, the store slow or down: they may still be stored later), when the
    /// store refuses one of them, and after [`close`](Self::close).
    pub(crate) async fn submit(&self, entries: Vec<AuditEntry>) -> Result<(), AuditUnavailable> {
        if entries.is_empty() {
            return Ok(());
        }
        if !self.available() {
            return Err(AuditUnavailable);
        }
        // Refused now, with its response, rather than by the store later.
        if let Some(column) = entries.iter().find_map(AuditEntry::too_long) {
            tracing::error!(column, "an audit entry's value is longer than its column; the response is withheld");
            return Err(AuditUnavailable);
        }
        let wanted = self.room_for(entries.iter().map(AuditEntry::weight).sum());
        let stored = async {
            let room = self.room.clone().acquire_many_owned(wanted).await.map_err(|_| AuditUnavailable)?;
            let (told, stored) = oneshot::channel();
            self.queue.send(Queued { entries, room, told: Some(told) }).await.map_err(|_| AuditUnavailable)?;
            match stored.await {
                Ok(true) => Ok(()),
                _ => Err(AuditUnavailable),
            }
        };
        tokio::time::timeout(self.write_timeout, stored).await.map_err(|_| AuditUnavailable)?
    }

    /// Queues entries of a response that revealed nothing (a refused attempt, a read of the
    /// log), which is not withheld for them: they wait for the store like the others, and
    /// only a full queue drops them (in the server log).
    pub(crate) fn keep(&self, entries: Vec<AuditEntry>) {
        if entries.is_empty() {
            return;
        }
        if entries.iter().any(|e| e.too_long().is_some()) {
            tracing::error!(?entries, "audit entries longer than their columns, not stored");
            return;
        }
        let room = self.room_for(entries.iter().map(AuditEntry::weight).sum());
        let sent = match self.room.clone().try_acquire_many_owned(room) {
            Ok(room) => self.queue.try_send(Queued { entries, room, told: None }).is_ok(),
            Err(_) => false,
        };
        if !sent {
            tracing::error!("audit queue full or closed: entries not stored");
        }
    }

    /// Stops taking entries and returns once every entry taken is written.
    pub(crate) async fn close(&self) {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.closing.store(true, Ordering::Release);
        if let Some(Writer { close, task }) = writer {
            let _ = close.send(());
            if let Err(e) = task.await {
                tracing::error!(error = %e, "the audit writer failed");
            }
        }
    }
}

/// The most customers written at once (entries weigh one per customer they name).
const BATCH: usize = 1_000;

/// How long shutdown waits for a failing store before the entries go to the server log.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The writer's side: the hub store, and what it reports.
struct Store {
    hub: Database,
    healthy: Arc<AtomicBool>,
    closing: Arc<AtomicBool>,
    dead_letters: Arc<AtomicU64>,
}

/// A response's entries in the queue, with the room they take until they are written,
/// and whom to tell whether they were stored (`None`: no response waits for them).
struct Queued {
    entries: Vec<AuditEntry>,
    room: tokio::sync::OwnedSemaphorePermit,
    told: Option<oneshot::Sender<bool>>,
}

/// Group commit: takes the first entries queued, with everything queued meanwhile (up to
/// [`BATCH`]), and writes them at once; what queues while that write runs goes in the
/// next. No timer: a lone response waits for one commit, and under load the writes grow
/// instead of multiplying. One write at a time: as each revealing response waits for its
/// commit, the writes decide its latency, and on PostgreSQL one writer's growing batches
/// beat three and eight concurrent writers' smaller ones (q1: 0.74, 0.63 and 0.52 of the
/// build that did not wait; BENCHMARKS.md, the durable audit). Once closed, it writes
/// every batch taken (or, past the grace, logs it) before returning.
async fn write_loop(store: Store, mut queue: mpsc::Receiver<Queued>, mut closing: oneshot::Receiver<()>) {
    let mut closed = false;
    loop {
        let mut batch = tokio::select! {
            got = queue.recv() => match got {
                Some(queued) => vec![queued],
                None => return,
            },
            _ = &mut closing, if !closed => {
                closed = true;
                queue.close();
                continue;
            }
        };
        let mut weight = batch[0].room.num_permits();
        while weight < BATCH
            && let Ok(queued) = queue.try_recv()
        {
            weight += queued.room.num_permits();
            batch.push(queued);
        }
        store.commit(batch).await;
    }
}

impl Store {
    /// Writes the entries of `batch` and tells each response waiting for them whether
    /// all of its own were stored; then gives their room back.
    async fn commit(&self, batch: Vec<Queued>) {
        let mut entries = Vec::with_capacity(batch.iter().map(|q| q.entries.len()).sum());
        let mut waiting = Vec::with_capacity(batch.len());
        for Queued { entries: theirs, room, told } in batch {
            waiting.push((theirs.len(), told, room));
            entries.extend(theirs);
        }
        let refused = self.write(&entries, &mut None).await;
        let mut first = 0;
        for (count, told, room) in waiting {
            let stored = !refused.iter().any(|i| (first..first + count).contains(i));
            if let Some(told) = told {
                // A response that stopped waiting (its timeout) is told nothing.
                let _ = told.send(stored);
            }
            first += count;
            drop(room);
        }
    }

    /// Writes a batch, retrying with backoff while the store is down (marking the log
    /// unavailable meanwhile): entries already taken are never dropped. When the store is
    /// up and refuses the batch, each entry is written on its own, and one it refuses is
    /// set apart. Once the log closes, what cannot be stored within [`SHUTDOWN_GRACE`]
    /// (counted from `give_up`, set at the first failure after closing) goes to the
    /// server log instead. Returns the positions of the entries not stored.
    async fn write(&self, batch: &[AuditEntry], give_up: &mut Option<tokio::time::Instant>) -> Vec<usize> {
        let mut refused = Vec::new();
        let mut start = 0;
        let mut backoff = Duration::from_millis(50);
        loop {
            let pending = &batch[start..];
            let Err(e) = store::insert(&self.hub, pending).await else {
                self.available();
                return refused;
            };
            if refuses_entry(&e) {
                // Up, and refusing an entry it cannot take: each on its own, then.
                start = self.one_by_one(batch, start, &mut refused).await;
                if start == batch.len() {
                    self.available();
                    return refused;
                }
                // Down after all, from the entry at `start`.
            }
            let pending = &batch[start..];
            if self.healthy.swap(false, Ordering::AcqRel) {
                tracing::error!(error = %e, pending = pending.len(), "cannot write the audit log; refusing revealing requests");
            }
            if self.closing.load(Ordering::Acquire) {
                let deadline = *give_up.get_or_insert_with(|| tokio::time::Instant::now() + SHUTDOWN_GRACE);
                if tokio::time::Instant::now() + backoff > deadline {
                    for entry in pending {
                        tracing::error!(?entry, "audit entry not stored: the store is down at shutdown");
                    }
                    refused.extend(start..batch.len());
                    return refused;
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Writes `entries` from `start` one at a time, setting apart (into `refused`) each
    /// one the store refuses while it answers. Returns where it stopped: the first entry
    /// not written when the store stops answering, the end when done.
    async fn one_by_one(&self, entries: &[AuditEntry], start: usize, refused: &mut Vec<usize>) -> usize {
        for (i, entry) in entries.iter().enumerate().skip(start) {
            if let Err(e) = store::insert(&self.hub, std::slice::from_ref(entry)).await {
                if !refuses_entry(&e) {
                    return i;
                }
                self.dead_letters.fetch_add(1, Ordering::Relaxed);
                refused.push(i);
                tracing::error!(error = %e, ?entry, "audit entry refused by the store: set apart, the log goes on");
            }
        }
        entries.len()
    }

    fn available(&self) {
        if !self.healthy.swap(true, Ordering::AcqRel) {
            tracing::warn!("the audit log is available again");
        }
    }
}

/// Whether the store refused what it was given rather than failed: a value it cannot hold
/// (SQLSTATE class 22), a rule of its own (class 23, a check, a trigger's abort; SQLite's
/// constraint, size and type codes; MySQL's check constraint 3819). A missing table, a
/// lost connection or a full disk are failures: the log then fails closed.
fn refuses_entry(error: &sqlx::Error) -> bool {
    use sqlx::error::ErrorKind;
    let sqlx::Error::Database(db) = error else { return false };
    if !matches!(db.kind(), ErrorKind::Other) {
        return true;
    }
    let code = db.code().unwrap_or_default();
    let sqlite = || code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 18..=20));
    let mysql = || db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().is_some_and(|m| m.number() == 3819);
    code.starts_with("22") || code.starts_with("23") || sqlite() || mysql()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_one_entry_naming_each_customer_with_fields_of_its_own_only_where_they_differ() {
        let viewer = Viewer::with_role(Role::Admin, None);
        let reveals = Reveals::default();
        assert!(reveals.entries(&viewer, "r-1").is_empty(), "nothing revealed, nothing recorded");
        for customer in ["c-1", "c-2", "c-3"] {
            reveals.record(customer, "phone");
        }
        reveals.record("c-2", "email");
        reveals.record("c-1", "phone");
        let entries = reveals.entries(&viewer, "r-1");
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert_eq!((entry.action, entry.customer_id.as_str(), entry.weight()), (AuditAction::Read, "", 3));
        assert_eq!(entry.fields, ["phone"], "the fields most customers were shown");
        let seen: Vec<(&str, Option<&str>)> =
            entry.seen.iter().map(|s| (s.customer_id.as_str(), s.fields.as_deref())).collect();
        assert_eq!(seen, [("c-1", None), ("c-2", Some("email,phone")), ("c-3", None)]);
        // Its customers' ids are measured against their own column.
        let long = Seen { customer_id: "c".repeat(37), fields: None };
        let wide = AuditEntry { seen: vec![long], ..entry.clone() };
        assert_eq!(wide.too_long(), Some("audit_reads.customer_id"));
    }

    #[test]
    fn an_entry_is_measured_against_its_columns_in_characters() {
        let viewer = Viewer::with_role(Role::Admin, None);
        let entry = |fields: Vec<String>| AuditEntry::new(&viewer, "r-1", AuditAction::Read, "c-1", fields);
        assert_eq!(entry(vec!["email".into(), "phone".into()]).too_long(), None);
        // 200 characters of two bytes each fit a column of 200 characters.
        let wide = AuditEntry { subject: "é".repeat(200), ..entry(vec![]) };
        assert_eq!(wide.too_long(), None);
        assert_eq!(AuditEntry { subject: "s".repeat(201), ..entry(vec![]) }.too_long(), Some("subject"));
        assert_eq!(AuditEntry { partner: Some("p".repeat(65)), ..entry(vec![]) }.too_long(), Some("partner"));
        // Fields are stored joined with commas: 500 of one letter need 999 characters.
        assert_eq!(entry(vec!["f".into(); 500]).too_long(), None);
        assert_eq!(entry(vec!["f".into(); 501]).too_long(), Some("fields"));
        assert_eq!(AuditEntry { target: Some("t".repeat(321)), ..entry(vec![]) }.too_long(), Some("target"));
    }
}
