//! The alert log, for the inbox: pages of it and the changes agents make.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{broadcast, watch};

use super::Source;
use crate::alerts::{self, Alert, AlertFilter, Change};
use crate::error::ApiError;
use crate::identity::store as links;
use crate::names::SourceName;
use crate::policy::ConsentScope;
use crate::sources::bus::Bus;
use crate::sources::crm::{self, Consenting};
use crate::sources::{Database, SqlTrace};

/// The hub store's alert log, over the request's statement trace.
pub(crate) struct AlertLog<'a> {
    pub(super) hub: &'a Source,
}

impl AlertLog<'_> {
    /// Alerts matching `filter`, newest first, with ids below `before`.
    pub(crate) async fn newest(
        &self,
        filter: &AlertFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Alert>, ApiError> {
        let hub = &self.hub;
        let mut found = Vec::new();
        for part in self.parts(filter) {
            found.extend(alerts::newest(&hub.db, &hub.trace, &part, before, limit).await.map_err(|e| hub.fail(e))?);
        }
        found.sort_by_key(|a| std::cmp::Reverse(a.id));
        found.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(found)
    }

    /// How many alerts match `filter`.
    pub(crate) async fn count(&self, filter: &AlertFilter) -> Result<i64, ApiError> {
        let hub = &self.hub;
        let mut total = 0;
        for part in self.parts(filter) {
            total += alerts::count(&hub.db, &hub.trace, &part).await.map_err(|e| hub.fail(e))?;
        }
        Ok(total)
    }

    /// `filter` as statements can bind it: a list of customers longer than one
    /// statement may bind is split into parts (disjoint, so their counts add up).
    fn parts(&self, filter: &AlertFilter) -> Vec<AlertFilter> {
        let room = self.hub.db.engine.max_params() - 64;
        match filter.customers.as_ref().filter(|c| c.len() > room) {
            None => vec![filter.clone()],
            Some(customers) => customers
                .chunks(room)
                .map(|part| AlertFilter { customers: Some(part.to_vec()), ..filter.clone() })
                .collect(),
        }
    }

    /// One alert by id.
    pub(crate) async fn get(&self, id: i64) -> Result<Option<Alert>, ApiError> {
        alerts::get(&self.hub.db, &self.hub.trace, id).await.map_err(|e| self.hub.fail(e))
    }

    /// Applies `change` to alert `id` as `by`; whether it exists.
    pub(crate) async fn change(&self, id: i64, change: &Change, by: &str) -> Result<bool, ApiError> {
        alerts::change(&self.hub.db, &self.hub.trace, id, change, by, Utc::now()).await.map_err(|e| self.hub.fail(e))
    }
}

/// New alerts for every subscription of this process, read from the log once: one task
/// (started with the first subscription) reads what was appended after the last id it saw
/// whenever the bus says there is more, and every 5 s in case a message was lost, and
/// broadcasts each batch. A subscription that falls behind the broadcast's buffer reads
/// the log itself (see [`Feed`]): nothing is buffered without bound, nothing is missed.
pub(crate) struct Fanout {
    hub: Database,
    bus: Bus,
    batches: broadcast::Sender<Arc<[Alert]>>,
    /// The last id broadcast; `None` until the reader has read the log's end once.
    last: watch::Sender<Option<i64>>,
    started: OnceLock<()>,
}

/// Batches the broadcast keeps for subscriptions that are behind.
const BUFFERED: usize = 256;
/// How often the reader reads the log without being told of new alerts.
const CATCH_UP: Duration = Duration::from_secs(5);

impl Fanout {
    pub(crate) fn new(hub: Database, bus: Bus) -> Self {
        Fanout {
            hub,
            bus,
            batches: broadcast::channel(BUFFERED).0,
            last: watch::channel(None).0,
            started: OnceLock::new(),
        }
    }

    /// The batches from now on (the reader started if it was not).
    fn subscribe(self: &Arc<Self>) -> broadcast::Receiver<Arc<[Alert]>> {
        let receiver = self.batches.subscribe();
        self.started.get_or_init(|| {
            let fanout = self.clone();
            tokio::spawn(async move { fanout.read_on().await });
        });
        receiver
    }

    /// The last id broadcast, once the reader has read the log's end (waits for it).
    async fn last(&self) -> i64 {
        let mut last = self.last.subscribe();
        match last.wait_for(Option::is_some).await {
            Ok(last) => last.unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// Reads the log on whenever it may have grown, for as long as the process runs.
    async fn read_on(&self) {
        let mut messages = self.bus.subscribe();
        let trace = SqlTrace::default();
        let mut last = loop {
            match alerts::last_id(&self.hub, &trace).await {
                Ok(last) => break last,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the alert log's end; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        self.last.send_replace(Some(last));
        loop {
            loop {
                match alerts::after(&self.hub, &trace, &AlertFilter::default(), last, FEED_PAGE).await {
                    Ok(rows) if rows.is_empty() => break,
                    Ok(rows) => {
                        last = rows.last().map_or(last, |r| r.id);
                        let full = rows.len() as i64 == FEED_PAGE;
                        // Nobody listening is fine: subscriptions come and go.
                        let _ = self.batches.send(rows.into());
                        self.last.send_replace(Some(last));
                        if !full {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the alert log; trying again");
                        break;
                    }
                }
            }
            use tokio::sync::broadcast::error::RecvError;
            tokio::select! {
                message = messages.recv() => match message {
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
                () = tokio::time::sleep(CATCH_UP) => {}
            }
        }
    }
}

/// Alerts to follow, for a subscription: owned (it outlives the request that opened it),
/// with the viewer's filter and row rule.
pub(crate) struct Feed {
    pub(super) hub: Source,
    pub(super) crm: Source,
    /// A partner's consents; `None`: the viewer sees every customer.
    pub(super) consent: Option<ConsentScope>,
    pub(super) filter: AlertFilter,
    pub(super) fanout: Arc<Fanout>,
}

/// Alerts read at once at most.
const FEED_PAGE: i64 = 100;

/// A subscription's place: replaying the log after a cursor, then following the
/// broadcast.
pub(crate) struct Following {
    feed: Feed,
    batches: broadcast::Receiver<Arc<[Alert]>>,
    /// The last id delivered or passed over.
    cursor: i64,
    /// Read from the log (not the broadcast) until it is caught up.
    replaying: bool,
}

impl Feed {
    /// Follows the log after `after` (replayed from the log, then live), or from now on.
    /// Listens to the broadcast before anything is read: nothing appended meanwhile is
    /// missed.
    pub(crate) async fn follow(self, after: Option<i64>) -> Following {
        let batches = self.fanout.subscribe();
        let (cursor, replaying) = match after {
            Some(after) => (after, true),
            None => (self.fanout.last().await, false),
        };
        Following { feed: self, batches, cursor, replaying }
    }
}

impl Following {
    /// The next alerts the viewer may see, oldest first (waits until there are some).
    /// `None` when the process is shutting its broadcast down.
    pub(crate) async fn next(&mut self) -> Option<Vec<Alert>> {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            if self.replaying {
                // What the reader has broadcast so far, taken before the read: the read
                // sees all of it, and what comes after it the broadcast brings (listened
                // to since before). So alerts the reader passed over (appended before it
                // started, which may be after an earlier read here) are not missed.
                let head = self.feed.fanout.last().await;
                let (hub, filter) = (&self.feed.hub, &self.feed.filter);
                match alerts::after(&hub.db, &hub.trace, filter, self.cursor, FEED_PAGE).await {
                    Ok(rows) => {
                        let full = rows.len() as i64 == FEED_PAGE;
                        self.cursor = rows.last().map_or(self.cursor, |r| r.id);
                        if !full {
                            self.cursor = self.cursor.max(head);
                            self.replaying = false;
                        }
                        let visible = self.visible(rows).await;
                        if !visible.is_empty() {
                            return Some(visible);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "a subscription cannot read the alert log; trying again");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                continue;
            }
            match self.batches.recv().await {
                Ok(batch) => {
                    let fresh: Vec<Alert> =
                        batch.iter().filter(|a| a.id > self.cursor && self.feed.filter.admits(a)).cloned().collect();
                    if let Some(last) = batch.last() {
                        self.cursor = self.cursor.max(last.id);
                    }
                    let visible = self.visible(fresh).await;
                    if !visible.is_empty() {
                        return Some(visible);
                    }
                }
                // Behind the broadcast's buffer: read the log from the cursor instead.
                Err(RecvError::Lagged(_)) => self.replaying = true,
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Of `rows`, those whose customer the viewer may see (a partner's: consenting ones;
    /// none when that cannot be told: fail closed, and logged).
    async fn visible(&self, rows: Vec<Alert>) -> Vec<Alert> {
        let Some(scope) = &self.feed.consent else { return rows };
        match self.feed.consenting(scope, &rows).await {
            Ok(admitted) => rows.into_iter().filter(|a| admitted.contains(&a.customer_id)).collect(),
            Err(e) => {
                tracing::warn!(error = %e.message(), "cannot tell a partner's consents; its alerts are withheld");
                Vec::new()
            }
        }
    }
}

impl Feed {
    /// Which of these alerts' customers consent to the partner (for its purpose): the
    /// same rule as [`super::customers::Customers::admit`], for a feed that has no
    /// request's loaders.
    async fn consenting(&self, scope: &ConsentScope, rows: &[Alert]) -> Result<HashSet<String>, ApiError> {
        let mut ids: Vec<String> = rows.iter().map(|a| a.customer_id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let found =
            links::links_by_customer_ids(&self.hub.db, &self.hub.trace, &ids).await.map_err(|e| self.hub.fail(e))?;
        let crm_source = SourceName::Crm.to_string();
        let mut by_key: HashMap<i64, Vec<String>> = HashMap::new();
        for link in found.iter().filter(|l| l.source == crm_source) {
            if let Ok(key) = link.source_key.parse::<i64>() {
                by_key.entry(key).or_default().push(link.requested_id.clone());
            }
        }
        let keys: Vec<i64> = by_key.keys().copied().collect();
        if keys.is_empty() {
            return Ok(HashSet::new());
        }
        let scope = Consenting { partner: &scope.partner, purpose: scope.purpose.as_deref() };
        let consenting = crm::consenting(&self.crm.db, &self.crm.trace, scope, Utc::now(), &keys)
            .await
            .map_err(|e| self.crm.fail(e))?;
        Ok(consenting.into_iter().flat_map(|k| by_key.remove(&k).unwrap_or_default()).collect())
    }
}
