//! The audit log: who saw whose personal data, when, in which request.
//!
//! Resolvers note what a response reveals unmasked ([`Reveals`]); when the response is
//! ready, the HTTP layer hands its entries to the [`AuditLog`], whose writer task stores
//! them in the hub store in batches, off the request path. Nothing is lost:
//! - the queue is bounded: when it is full, requests wait for room (and fail after a while);
//! - a failed write is retried, with the batch kept, until the store answers again;
//! - [`AuditLog::close`] (graceful shutdown) stops taking entries and writes every one
//!   already taken;
//! - while the store is failing, responses that would reveal personal data are refused
//!   (`AUDIT_UNAVAILABLE`): the hub fails closed.

pub mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
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
pub enum AuditAction {
    /// A response showed unmasked contact or sensitive data.
    Read,
    /// Everything known about the customer was exported.
    Export,
    /// The customer was erased.
    Erase,
    /// Tokens were revoked (no customer: `target` says whose).
    Revoke,
}

/// One customer's personal data, seen by one viewer in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub request_id: String,
    pub subject: String,
    pub role: Role,
    pub partner: Option<String>,
    pub action: AuditAction,
    /// The golden customer id.
    pub customer_id: String,
    /// Field names, never values (for a revocation: the kind, `token_id`, `subject` or
    /// `partner`).
    pub fields: Vec<String>,
    /// For a revocation: the token id, subject or partner revoked.
    pub target: Option<String>,
}

impl AuditEntry {
    pub fn new(viewer: &Viewer, request_id: &str, action: AuditAction, customer_id: &str, fields: Vec<String>) -> Self {
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
        }
    }

    /// The entry of a revocation by `viewer`: `kind` (`token_id`, `subject` or `partner`)
    /// and what was revoked.
    pub fn revocation(viewer: &Viewer, request_id: &str, kind: &str, target: &str) -> Self {
        AuditEntry {
            target: Some(target.to_owned()),
            ..AuditEntry::new(viewer, request_id, AuditAction::Revoke, "", vec![kind.to_owned()])
        }
    }
}

/// What one response revealed unmasked: customer → fields. Filled by resolvers.
#[derive(Debug, Default)]
pub struct Reveals(Mutex<BTreeMap<String, BTreeSet<&'static str>>>);

impl Reveals {
    pub fn record(&self, customer_id: &str, field: &'static str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(customer_id.to_owned()).or_default().insert(field);
    }

    /// The audit entries of this response, one per customer.
    pub fn entries(&self, viewer: &Viewer, request_id: &str) -> Vec<AuditEntry> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .map(|(customer, fields)| {
                let fields = fields.iter().map(|f| (*f).to_owned()).collect();
                AuditEntry::new(viewer, request_id, AuditAction::Read, customer, fields)
            })
            .collect()
    }
}

/// The audit log could not take the entries: the response must not be sent.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the audit log is unavailable")]
pub struct AuditUnavailable;

/// Handle to the audit writer. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Vec<AuditEntry>>,
    healthy: Arc<AtomicBool>,
    enqueue_timeout: Duration,
    writer: Arc<Mutex<Option<Writer>>>,
}

/// The writer task and the signal that closes it.
struct Writer {
    close: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl AuditLog {
    /// Starts the writer over the hub store.
    pub fn start(hub: Database, config: &AuditConfig) -> Self {
        let (queue, entries) = mpsc::channel(config.queue.max(1));
        let (close, closing) = oneshot::channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let task = tokio::spawn(write_loop(hub, entries, closing, healthy.clone(), config.flush_interval));
        AuditLog {
            queue,
            healthy,
            enqueue_timeout: config.enqueue_timeout,
            writer: Arc::new(Mutex::new(Some(Writer { close, task }))),
        }
    }

    /// Responses whose entries wait in the queue.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Whether the last write succeeded; while not, revealing responses are refused.
    pub fn available(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Queues one response's entries. Fails while the store is failing, when the queue
    /// stays full, and after [`close`](Self::close).
    pub async fn submit(&self, entries: Vec<AuditEntry>) -> Result<(), AuditUnavailable> {
        if entries.is_empty() {
            return Ok(());
        }
        if !self.available() {
            return Err(AuditUnavailable);
        }
        self.queue.send_timeout(entries, self.enqueue_timeout).await.map_err(|_| AuditUnavailable)
    }

    /// Stops taking entries and returns once every entry taken is written.
    pub async fn close(&self) {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(Writer { close, task }) = writer {
            let _ = close.send(());
            if let Err(e) = task.await {
                tracing::error!(error = %e, "the audit writer failed");
            }
        }
    }
}

/// The most entries written at once.
const BATCH: usize = 500;

/// How long shutdown waits for a failing store before the entries go to the server log.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

async fn write_loop(
    hub: Database,
    mut queue: mpsc::Receiver<Vec<AuditEntry>>,
    mut closing: oneshot::Receiver<()>,
    healthy: Arc<AtomicBool>,
    flush_interval: Duration,
) {
    let mut closed = false;
    let mut give_up = None;
    let mut batch: Vec<AuditEntry> = Vec::new();
    loop {
        // Wait for the first entries, then gather more for up to `flush_interval`.
        if batch.is_empty() {
            tokio::select! {
                got = queue.recv() => match got {
                    Some(entries) => batch.extend(entries),
                    None => return,
                },
                _ = &mut closing, if !closed => {
                    closed = true;
                    queue.close();
                    continue;
                }
            }
        }
        if !closed {
            let deadline = tokio::time::Instant::now() + flush_interval;
            while batch.len() < BATCH {
                tokio::select! {
                    got = queue.recv() => match got {
                        Some(entries) => batch.extend(entries),
                        None => break,
                    },
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = &mut closing => {
                        closed = true;
                        queue.close();
                        break;
                    }
                }
            }
        }
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(entries) => batch.extend(entries),
                Err(_) => break,
            }
        }
        let deadline = closed.then(|| *give_up.get_or_insert_with(|| tokio::time::Instant::now() + SHUTDOWN_GRACE));
        write_until_stored(&hub, &batch, &healthy, deadline).await;
        batch.clear();
    }
}

/// Writes a batch, retrying with backoff while the store fails (marking the log
/// unavailable meanwhile): entries already taken are never dropped. Past `deadline`
/// (shutting down), what cannot be stored is written to the server log instead.
async fn write_until_stored(
    hub: &Database,
    batch: &[AuditEntry],
    healthy: &AtomicBool,
    deadline: Option<tokio::time::Instant>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match store::insert(hub, batch).await {
            Ok(()) => {
                if !healthy.swap(true, Ordering::AcqRel) {
                    tracing::warn!("the audit log is available again");
                }
                return;
            }
            Err(e) => {
                if healthy.swap(false, Ordering::AcqRel) {
                    tracing::error!(error = %e, pending = batch.len(), "cannot write the audit log; refusing revealing requests");
                }
                if deadline.is_some_and(|d| tokio::time::Instant::now() + backoff > d) {
                    for entry in batch {
                        tracing::error!(?entry, "audit entry not stored: the store is down at shutdown");
                    }
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
