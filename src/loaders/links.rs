//! Identity links of golden customers (the hub store), and the links kept across
//! requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_graphql::dataloader::Loader;
use quick_cache::sync::Cache;

use super::Source;
use crate::error::ApiError;
use crate::identity::store::{self, Link, LookupKey};
use crate::sources::{Database, SqlTrace};

/// How long links kept in memory are served after the hub store last said that no
/// link changed: the longest another process's merge or erasure takes to reach this one.
pub const LINKS_CHECKED_EVERY: Duration = Duration::from_secs(1);

/// Customers' links by golden id and by the keys they were looked up by (emails, phones,
/// source records' keys), kept across requests so that a profile read takes one
/// statement (its source record) instead of two. Kept per viewer (a token's subject):
/// a faster answer tells a viewer only what it read itself, never what another asked
/// for. Only for viewers who see every customer; a partner's lookups always go to the
/// hub store, so that how fast an id answers never says whether it exists.
///
/// Entries are stamped with the epoch they were read in. The epoch moves when the hub
/// store's [`store::link_generation`] is seen to have moved (checked at most every
/// [`LINKS_CHECKED_EVERY`], by the request that finds the check due) and when this
/// process erases a customer; an entry of an earlier epoch is never served. While the
/// check is due and another request runs it, or after it failed, nothing is served from
/// memory.
pub(crate) struct LinkCache {
    /// `None` when turned off (`identity.link_cache_entries = 0`).
    entries: Option<Cache<Viewed, Stamped>>,
    epoch: AtomicU64,
    /// When the generation was last read, and what it was.
    checked: Mutex<Option<(Instant, i64)>>,
    checking: tokio::sync::Mutex<()>,
}

impl LinkCache {
    /// A cache of up to `capacity` customers' links; none at 0.
    pub(crate) fn new(capacity: usize) -> Self {
        LinkCache {
            entries: (capacity > 0).then(|| Cache::new(capacity)),
            epoch: AtomicU64::new(0),
            checked: Mutex::new(None),
            checking: tokio::sync::Mutex::new(()),
        }
    }

    /// The epoch entries may be read and written in now, after reading the hub store's
    /// generation when the last read is [`LINKS_CHECKED_EVERY`] old; `None` when nothing
    /// may be served from memory.
    async fn epoch(&self, hub: &Database) -> Option<u64> {
        self.entries.as_ref()?;
        let fresh =
            |checked: &Option<(Instant, i64)>| checked.is_some_and(|(at, _)| at.elapsed() < LINKS_CHECKED_EVERY);
        if self.checked.lock().is_ok_and(|c| fresh(&c)) {
            return Some(self.epoch.load(Ordering::Acquire));
        }
        let _checking = self.checking.try_lock().ok()?;
        let seen = *self.checked.lock().ok()?;
        if fresh(&seen) {
            return Some(self.epoch.load(Ordering::Acquire));
        }
        // The bound runs from before the read: the generation may be read at its end.
        let reading = Instant::now();
        let read = match store::link_generation(hub, &SqlTrace::default()).await {
            Ok(generation) => generation,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the identity links' generation; not serving links from memory");
                return None;
            }
        };
        if seen.is_some_and(|(_, generation)| generation != read) {
            self.invalidate();
        }
        *self.checked.lock().ok()? = Some((reading, read));
        Some(self.epoch.load(Ordering::Acquire))
    }

    /// Drops every entry: this process changed links.
    pub(crate) fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(entries) = &self.entries {
            entries.clear();
        }
    }

    fn get(&self, epoch: u64, key: &Viewed) -> Option<Arc<Vec<Link>>> {
        let (at, links) = self.entries.as_ref()?.get(key)?;
        (at == epoch).then_some(links)
    }

    fn insert(&self, epoch: u64, key: Viewed, links: Arc<Vec<Link>>) {
        if let Some(entries) = &self.entries {
            entries.insert(key, (epoch, links));
        }
    }
}

/// A lookup by one viewer (its token's subject).
type Viewed = (Arc<str>, Lookup);

/// Links with the epoch they were read in.
type Stamped = (u64, Arc<Vec<Link>>);

/// What links are kept under: the golden id or the key a customer was looked up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Lookup {
    Id(String),
    Key(LookupKey),
}

/// Where a request's loaders read links: the hub store, and with a `viewer` the
/// process's [`LinkCache`] under that viewer's key.
pub(crate) struct LinkSource {
    pub(super) source: Source,
    pub(super) cache: Arc<LinkCache>,
    pub(super) viewer: Option<Arc<str>>,
}

impl LinkSource {
    /// The links of `keys`, as `loader`'s batch: those kept from memory, the others read
    /// with `read` in one batch (rows of a key and one of its links), keeping what it
    /// found. Nothing found is kept: a customer linked later would stay unknown until the
    /// next change of links.
    async fn load<K: Clone + Eq + std::hash::Hash>(
        &self,
        loader: &'static str,
        keys: &[K],
        lookup: impl Fn(&K) -> Lookup,
        read: impl AsyncFnOnce(&[K]) -> Result<Vec<(K, Link)>, sqlx::Error>,
    ) -> Result<HashMap<K, Arc<Vec<Link>>>, ApiError> {
        let s = &self.source;
        let kept = match &self.viewer {
            Some(viewer) => self.cache.epoch(&s.db).await.map(|epoch| (viewer, epoch)),
            None => None,
        };
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        if let Some((viewer, epoch)) = kept {
            for key in keys {
                match self.cache.get(epoch, &(viewer.clone(), lookup(key))) {
                    Some(links) => drop(out.insert(key.clone(), links)),
                    None => missing.push(key.clone()),
                }
            }
            s.trace.link_lookups(out.len(), missing.len());
            if missing.is_empty() {
                return Ok(out);
            }
        }
        let asked = if kept.is_some() { &missing[..] } else { keys };
        let rows =
            tracing::Instrument::instrument(read(asked), s.batch(loader, asked.len())).await.map_err(|e| s.fail(e))?;
        let mut read: HashMap<K, Vec<Link>> = HashMap::new();
        for (key, link) in rows {
            read.entry(key).or_default().push(link);
        }
        for (key, links) in read {
            let links = Arc::new(links);
            if let Some((viewer, epoch)) = kept {
                self.cache.insert(epoch, (viewer.clone(), lookup(&key)), links.clone());
            }
            out.insert(key, links);
        }
        Ok(out)
    }
}

/// Links by golden id. An id merged into another customer loads the survivor's links
/// (whose `customer_id` is the survivor's); an unknown id loads nothing.
pub(crate) struct LinksLoader(pub LinkSource);

impl Loader<String> for LinksLoader {
    type Value = Arc<Vec<Link>>;
    type Error = ApiError;

    async fn load(&self, ids: &[String]) -> Result<HashMap<String, Self::Value>, ApiError> {
        let s = &self.0.source;
        let read = async |ids: &[String]| {
            let rows = store::links_by_customer_ids(&s.db, &s.trace, ids).await?;
            Ok(rows.into_iter().map(|row| (row.requested_id.clone(), row.into_link())).collect())
        };
        self.0.load("LinksLoader", ids, |id| Lookup::Id(id.clone()), read).await
    }
}

/// The links of the customers found by each key (an email, a phone, a source record's
/// key): every lookup of a request's level in one statement per kind of key.
pub(crate) struct KeyLinksLoader(pub LinkSource);

impl Loader<LookupKey> for KeyLinksLoader {
    type Value = Arc<Vec<Link>>;
    type Error = ApiError;

    async fn load(&self, keys: &[LookupKey]) -> Result<HashMap<LookupKey, Self::Value>, ApiError> {
        let s = &self.0.source;
        let read = async |keys: &[LookupKey]| store::links_by_keys(&s.db, &s.trace, keys).await;
        self.0.load("KeyLinksLoader", keys, |key| Lookup::Key(key.clone()), read).await
    }
}
