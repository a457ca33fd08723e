//! Deterministic batching for one request.
//!
//! async-graphql's `DataLoader` hands each batch to a "spawner" after a delay; with
//! `tokio::spawn` the batch fires on a timer on another thread, so how many keys it
//! catches depends on timing. Here the spawner queues the batch instead, and [`drive`]
//! runs queued batches only when the request cannot make progress without them: every
//! key registered while resolving one level of the query lands in one batch, whatever
//! the page size or the machine's load. No fixed delay is added to any request.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};

/// The batches a request's loaders have queued, waiting for [`drive`] to run them.
#[derive(Clone, Default)]
pub struct BatchQueue(Arc<Mutex<Vec<BoxFuture<'static, ()>>>>);

impl BatchQueue {
    /// The `DataLoader` spawner that queues instead of spawning.
    pub fn spawner(&self) -> impl Fn(BoxFuture<'static, ()>) + Send + Sync + 'static {
        let queue = self.0.clone();
        move |batch| queue.lock().unwrap_or_else(|e| e.into_inner()).push(batch)
    }

    fn take(&self) -> Vec<BoxFuture<'static, ()>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Wakes the request's task and remembers that it was woken.
struct Flag {
    woken: AtomicBool,
    task: Waker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.task.wake_by_ref();
    }
}

/// How often `work` may yield and be polled again at once before batches run anyway
/// (a bound, so that something that always wakes itself cannot starve the loads).
const MAX_YIELDS: u32 = 10_000;

/// Runs `work` (one request's execution), running the loaders' queued batches whenever
/// `work` is waiting. The loaders built on `queue` must only be used inside `work`.
pub async fn drive<F: Future>(queue: BatchQueue, work: F) -> F::Output {
    let mut work = pin!(work);
    let mut running: FuturesUnordered<BoxFuture<'static, ()>> = FuturesUnordered::new();
    std::future::poll_fn(move |cx| {
        let mut yields = 0;
        loop {
            let flag = Arc::new(Flag { woken: AtomicBool::new(false), task: cx.waker().clone() });
            let waker = Waker::from(flag.clone());
            if let Poll::Ready(out) = work.as_mut().poll(&mut Context::from_waker(&waker)) {
                return Poll::Ready(out);
            }
            // Pending but woken already: `work` only yielded (async-graphql resolves long
            // lists through `FuturesUnordered`, which yields every 32 items). Go on.
            if flag.woken.load(Ordering::SeqCst) && yields < MAX_YIELDS {
                yields += 1;
                continue;
            }
            // `work` is stuck: everything it will ask for at this level has been asked.
            let queued = queue.take();
            let dispatched = !queued.is_empty();
            running.extend(queued);
            let mut finished = false;
            while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {
                finished = true;
            }
            if !dispatched && !finished {
                return Poll::Pending;
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_graphql::dataloader::{DataLoader, Loader, NoCache};

    use super::*;

    struct Counting(Arc<AtomicUsize>);

    impl Loader<u32> for Counting {
        type Value = u32;
        type Error = String;

        async fn load(&self, keys: &[u32]) -> Result<HashMap<u32, u32>, String> {
            self.0.fetch_add(1, Ordering::SeqCst);
            // Real I/O: the batch must survive being pending.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            Ok(keys.iter().map(|k| (*k, k * 2)).collect())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_key_of_one_level_lands_in_one_batch() {
        let batches = Arc::new(AtomicUsize::new(0));
        let queue = BatchQueue::default();
        let loader = DataLoader::with_cache(Counting(batches.clone()), queue.spawner(), NoCache);
        let work = async {
            // 500 concurrent loads with CPU work between them, as resolvers do, through
            // `FuturesUnordered` (which yields every 32 futures) like async-graphql's lists.
            let loads = (0..500u32).map(|k| {
                let loader = &loader;
                async move {
                    let spin: u64 = (0..20_000u64).map(|i| i ^ u64::from(k)).sum();
                    std::hint::black_box(spin);
                    let first = loader.load_one(k).await;
                    // A second level, depending on the first.
                    let second = loader.load_one(k + 1000).await;
                    (first, second)
                }
            });
            loads.collect::<FuturesUnordered<_>>().collect::<Vec<_>>().await
        };
        let results = drive(queue, work).await;
        assert_eq!(results.len(), 500);
        assert!(results.contains(&(Ok(Some(14)), Ok(Some(2014)))));
        assert_eq!(batches.load(Ordering::SeqCst), 2, "one batch per level");
    }
}
