//! Statements of concurrent requests merged into one.
//!
//! Each request's loaders batch the keys of one request ([`super::batch`]). Under load,
//! many requests ask the same loader for their keys at once: a loader's statement that
//! finds another of its kind running waits for it and then runs together with every other
//! that arrived meanwhile, as one statement for all their keys. Nothing waits when nothing
//! runs, so an idle hub answers as fast as before, and a busy one sends a fraction of the
//! statements (BENCHMARKS.md, the ladder: this is what a server with loaders shared by
//! every request, like the `bench/bare` floor, gets from its batching window, without a
//! window).
//!
//! Only what a key alone decides is merged: the loaders of `loader!`, whose statements
//! take source keys and a page and nothing of the viewer. The keys come from the
//! viewer's own identity links (row rules apply there), each request gets back the rows
//! of its own keys only, and what it caches stays in its own loaders.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::Source;
use crate::error::ApiError;
use crate::sources::Page;

/// How many statements of one kind (one loader, one page) run at once before the next
/// waits to be merged: two, so that one statement's round trip overlaps the next.
const IN_FLIGHT: usize = 2;

/// The most keys one merged statement takes; waiters beyond wait for the next.
const MAX_KEYS: usize = 1_000;

/// Every loader's lanes, process-wide.
#[derive(Default)]
pub(crate) struct Merges(Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl Merges {
    /// The lanes of loader `L`, whose rows are `R`.
    pub(crate) fn of<L: 'static, R: Send + 'static>(&self) -> Arc<Lanes<R>> {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let lanes = all.entry(TypeId::of::<L>()).or_insert_with(|| Arc::new(Lanes::<R>::default())).clone();
        // The entry of `TypeId::of::<L>()` was made here, as `Lanes<R>`.
        lanes.downcast::<Lanes<R>>().unwrap_or_else(|_| Arc::new(Lanes::default()))
    }
}

/// A loader's statements, one lane per page (the unpaged ones in `None`'s).
pub(crate) struct Lanes<R> {
    lanes: Mutex<HashMap<Option<Page>, Lane<R>>>,
}

impl<R> Default for Lanes<R> {
    fn default() -> Self {
        Lanes { lanes: Mutex::default() }
    }
}

struct Lane<R> {
    running: usize,
    waiting: Vec<Waiter<R>>,
}

struct Waiter<R> {
    keys: Vec<i64>,
    source: Source,
    answer: oneshot::Sender<Result<Vec<R>, ApiError>>,
}

/// Runs a statement for keys: `(source, keys, page)` to rows.
pub(crate) type Fetch<R> =
    fn(Source, Vec<i64>, Option<Page>) -> futures::future::BoxFuture<'static, Result<Vec<R>, ApiError>>;

impl<R: Clone + Send + 'static> Lanes<R> {
    /// The rows of `keys` (each row's key read by `key`), from a statement of this
    /// request's own or merged with other requests'.
    pub(crate) async fn load(
        self: &Arc<Self>,
        source: &Source,
        keys: Vec<i64>,
        page: Option<Page>,
        fetch: Fetch<R>,
        key: fn(&R) -> i64,
    ) -> Result<Vec<R>, ApiError> {
        let waiting = {
            let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
            let lane = lanes.entry(page).or_insert_with(|| Lane { running: 0, waiting: Vec::new() });
            if lane.running < IN_FLIGHT {
                lane.running += 1;
                None
            } else {
                let (answer, waiting) = oneshot::channel();
                lane.waiting.push(Waiter { keys: keys.clone(), source: source.clone(), answer });
                Some(waiting)
            }
        };
        match waiting {
            Some(waiting) => waiting.await.unwrap_or(Err(ApiError::Internal)),
            None => {
                // Given back when done, also when the request is dropped meanwhile: then
                // whoever arrived meanwhile goes next, without this request waiting.
                let _slot = Slot { lanes: self.clone(), page, fetch, key };
                fetch(source.clone(), keys, page).await
            }
        }
    }

    /// Runs the waiters' statements, merged, until none waits; then gives the slot back.
    async fn run_waiting(self: Arc<Self>, page: Option<Page>, fetch: Fetch<R>, key: fn(&R) -> i64) {
        loop {
            let waiters = {
                let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
                let Some(lane) = lanes.get_mut(&page) else { return };
                if lane.waiting.is_empty() {
                    lane.running -= 1;
                    if lane.running == 0 {
                        lanes.remove(&page);
                    }
                    return;
                }
                let mut taken = 0;
                // At least one waiter, however many keys it has.
                let split = lane
                    .waiting
                    .iter()
                    .position(|w| {
                        taken += w.keys.len();
                        taken > MAX_KEYS
                    })
                    .unwrap_or(lane.waiting.len())
                    .max(1);
                lane.waiting.drain(..split).collect::<Vec<_>>()
            };
            let mut seen = HashSet::new();
            let keys: Vec<i64> =
                waiters.iter().flat_map(|w| w.keys.iter().copied()).filter(|k| seen.insert(*k)).collect();
            let rows = fetch(waiters[0].source.clone(), keys, page).await;
            // Each request counts the statement it took part in.
            for waiter in &waiters[1..] {
                waiter.source.trace.count(waiter.source.db.name);
            }
            hand_out(waiters, rows, key);
        }
    }
}

/// A running statement's place in its lane.
struct Slot<R: Clone + Send + 'static> {
    lanes: Arc<Lanes<R>>,
    page: Option<Page>,
    fetch: Fetch<R>,
    key: fn(&R) -> i64,
}

impl<R: Clone + Send + 'static> Drop for Slot<R> {
    fn drop(&mut self) {
        let mut lanes = self.lanes.lanes.lock().unwrap_or_else(|e| e.into_inner());
        let Some(lane) = lanes.get_mut(&self.page) else { return };
        if lane.waiting.is_empty() {
            lane.running -= 1;
            if lane.running == 0 {
                lanes.remove(&self.page);
            }
            return;
        }
        drop(lanes);
        let (lanes, page, fetch, key) = (self.lanes.clone(), self.page, self.fetch, self.key);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(lanes.run_waiting(page, fetch, key))),
            // No runtime (the process is ending): the waiters are answered `INTERNAL`.
            Err(_) => {
                let mut all = lanes.lanes.lock().unwrap_or_else(|e| e.into_inner());
                all.remove(&page);
            }
        }
    }
}

/// Each waiter gets the rows of its own keys.
fn hand_out<R: Clone>(waiters: Vec<Waiter<R>>, rows: Result<Vec<R>, ApiError>, key: fn(&R) -> i64) {
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            for waiter in waiters {
                let _ = waiter.answer.send(Err(e.clone()));
            }
            return;
        }
    };
    let mut by_key: HashMap<i64, Vec<R>> = HashMap::new();
    for row in rows {
        by_key.entry(key(&row)).or_default().push(row);
    }
    // How many waiters still ask for each key: the last one takes the rows, the others
    // get copies (requests rarely ask for the same key at the same moment).
    let mut asked: HashMap<i64, usize> = HashMap::new();
    for waiter in &waiters {
        for k in &waiter.keys {
            *asked.entry(*k).or_default() += 1;
        }
    }
    for waiter in waiters {
        let mut mine = Vec::new();
        for k in &waiter.keys {
            let left = asked.entry(*k).or_default();
            *left = left.saturating_sub(1);
            if *left == 0 {
                mine.extend(by_key.remove(k).unwrap_or_default());
            } else if let Some(rows) = by_key.get(k) {
                mine.extend(rows.iter().cloned());
            }
        }
        let _ = waiter.answer.send(Ok(mine));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::names::DbName;
    use crate::sources::engine::{Database, PoolSettings, SqlTrace};

    /// Statements run by [`counted_fetch`], and the keys of each.
    static STATEMENTS: Mutex<Vec<Vec<i64>>> = Mutex::new(Vec::new());

    struct Merging;
    struct Dropping;

    /// A statement that takes 30 ms and returns rows `(key, key * 10)`; it fails for keys
    /// from 10,000 on.
    fn slow_fetch(
        _: Source,
        keys: Vec<i64>,
        _: Option<Page>,
    ) -> futures::future::BoxFuture<'static, Result<Vec<(i64, i64)>, ApiError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            if keys.iter().any(|k| *k >= 10_000) {
                return Err(ApiError::Internal);
            }
            Ok(keys.iter().map(|k| (*k, k * 10)).collect())
        })
    }

    /// [`slow_fetch`], its keys recorded in [`STATEMENTS`].
    fn counted_fetch(
        source: Source,
        keys: Vec<i64>,
        page: Option<Page>,
    ) -> futures::future::BoxFuture<'static, Result<Vec<(i64, i64)>, ApiError>> {
        STATEMENTS.lock().unwrap_or_else(|e| e.into_inner()).push(keys.clone());
        slow_fetch(source, keys, page)
    }

    async fn source() -> Source {
        let settings = PoolSettings {
            max_connections: 1,
            ..PoolSettings::of(&crate::config::DatabaseConfig::default(), DbName::Shop)
        };
        let db = Database::connect(DbName::Shop, "sqlite::memory:", &settings).await.expect("connect");
        Source { db, trace: SqlTrace::enabled(), merges: Some(Arc::default()) }
    }

    #[tokio::test]
    async fn concurrent_requests_share_statements_and_each_gets_only_its_own_rows() {
        let source = source().await;
        let lanes = source.merges.as_ref().expect("merges").of::<Merging, (i64, i64)>();
        // Arrange: 12 requests at once, each with two keys of its own and one shared key.
        let requests: Vec<Vec<i64>> = (0..12).map(|i| vec![i, 100 + i, 999]).collect();
        let loads = requests.iter().map(|keys| {
            let (lanes, source, keys) = (lanes.clone(), source.clone(), keys.clone());
            tokio::spawn(async move { lanes.load(&source, keys, None, counted_fetch, |r| r.0).await })
        });
        // Act
        let answers = futures::future::join_all(loads).await;
        // Assert: fewer statements than requests, none over its keys; every request got
        // exactly the rows of its keys, the shared key's included.
        let statements = std::mem::take(&mut *STATEMENTS.lock().unwrap_or_else(|e| e.into_inner()));
        assert!(statements.len() < requests.len(), "{} statements for 12 requests", statements.len());
        assert!(statements.iter().all(|keys| keys.iter().filter(|k| **k == 999).count() == 1), "keys deduplicated");
        for (keys, answer) in requests.iter().zip(answers) {
            let mut rows = answer.expect("joined").expect("rows");
            rows.sort_unstable();
            let mut expected: Vec<(i64, i64)> = keys.iter().map(|k| (*k, k * 10)).collect();
            expected.sort_unstable();
            assert_eq!(rows, expected);
        }
        // Every slot was given back.
        assert!(lanes.lanes.lock().unwrap_or_else(|e| e.into_inner()).is_empty());
    }

    #[tokio::test]
    async fn a_request_dropped_mid_statement_and_a_failing_statement_leave_no_one_waiting() {
        let source = source().await;
        let lanes = source.merges.as_ref().expect("merges").of::<Dropping, (i64, i64)>();
        let spawn = |keys: Vec<i64>| {
            let (lanes, source) = (lanes.clone(), source.clone());
            tokio::spawn(async move {
                lanes.load(&source, keys, Some(Page { limit: 1, before: None }), slow_fetch, |r| r.0).await
            })
        };
        // Arrange: two running statements, then waiters; the runners are dropped midway.
        let (first, second) = (spawn(vec![1]), spawn(vec![2]));
        tokio::time::sleep(Duration::from_millis(5)).await;
        let waiters: Vec<_> = (3..8).map(|k| spawn(vec![k])).collect();
        tokio::time::sleep(Duration::from_millis(5)).await;
        first.abort();
        second.abort();
        // Act and assert: the waiters are served all the same.
        for (k, waiter) in (3..8).zip(waiters) {
            assert_eq!(waiter.await.expect("joined").expect("rows"), vec![(k, k * 10)]);
        }
        // A failing statement fails every request merged into it, and frees its lane.
        let failing: Vec<_> = (10_000..10_005).map(|k| spawn(vec![k])).collect();
        for waiter in failing {
            assert!(waiter.await.expect("joined").is_err());
        }
        assert!(lanes.lanes.lock().unwrap_or_else(|e| e.into_inner()).is_empty());
    }
}
