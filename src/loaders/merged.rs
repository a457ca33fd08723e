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
pub struct Merges(Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl Merges {
    /// The lanes of loader `L`, whose rows are `R`.
    pub fn of<L: 'static, R: Send + 'static>(&self) -> Arc<Lanes<R>> {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let lanes = all.entry(TypeId::of::<L>()).or_insert_with(|| Arc::new(Lanes::<R>::default())).clone();
        // The entry of `TypeId::of::<L>()` was made here, as `Lanes<R>`.
        lanes.downcast::<Lanes<R>>().unwrap_or_else(|_| Arc::new(Lanes::default()))
    }
}

/// A loader's statements, one lane per page (the unpaged ones in `None`'s).
pub struct Lanes<R> {
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
pub type Fetch<R> =
    fn(Source, Vec<i64>, Option<Page>) -> futures::future::BoxFuture<'static, Result<Vec<R>, ApiError>>;

impl<R: Clone + Send + 'static> Lanes<R> {
    /// The rows of `keys` (each row's key read by `key`), from a statement of this
    /// request's own or merged with other requests'.
    pub async fn load(
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
            let keys: Vec<i64> = waiters.iter().flat_map(|w| w.keys.iter().copied()).filter(|k| seen.insert(*k)).collect();
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
    for waiter in waiters {
        let mine = waiter.keys.iter().filter_map(|k| by_key.get(k)).flatten().cloned().collect();
        let _ = waiter.answer.send(Ok(mine));
    }
}
