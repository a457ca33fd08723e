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
pub(crate) struct BatchQueue(Arc<Mutex<Vec<BoxFuture<'static, ()>>>>);

impl BatchQueue {
    /// The `DataLoader` spawner that queues instead of spawning.
    pub(crate) fn spawner(&self) -> impl Fn(BoxFuture<'static, ()>) + Send + Sync + 'static {
        let queue = self.0.clone();
        move |batch| queue.lock().unwrap_or_else(|e| e.into_inner()).push(batch)
    }

    fn take(&self) -> Vec<BoxFuture<'static, ()>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn is_empty(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
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

/// How often `work` may yield and be polled again at once, inside one poll of
/// [`drive`], before the task gives the thread back to the scheduler (it has woken
/// itself, so it is polled again soon). Small, like tokio's own cooperative budget: a
/// request that yields a lot must not hold its worker thread.
const INLINE_YIELDS: u32 = 16;

/// How many times in a row `work` may yield before queued batches run anyway, so that
/// something that always wakes itself cannot starve the loads it waits for. Far above
/// what resolving one level of a query takes (`FuturesUnordered` yields every 32 items).
const MAX_YIELDS: u32 = 4_096;

/// Runs `work` (one request's execution), running the loaders' queued batches whenever
/// `work` is waiting. The loaders built on `queue` must only be used inside `work`.
///
/// A batch may queue further batches while it runs (a loader that uses a loader); they
/// run in the same round, so the request is never left waiting on a batch nobody runs.
pub(crate) async fn drive<F: Future>(queue: BatchQueue, work: F) -> F::Output {
    let mut work = pin!(work);
    let mut running: FuturesUnordered<BoxFuture<'static, ()>> = FuturesUnordered::new();
    // Yields in a row, across polls: reset whenever `work` waits on something else.
    let mut yields: u32 = 0;
    std::future::poll_fn(move |cx| {
        let mut inline = 0;
        loop {
            let flag = Arc::new(Flag { woken: AtomicBool::new(false), task: cx.waker().clone() });
            let waker = Waker::from(flag.clone());
            if let Poll::Ready(out) = work.as_mut().poll(&mut Context::from_waker(&waker)) {
                return Poll::Ready(out);
            }
            // Pending but woken already: `work` only yielded (async-graphql resolves long
            // lists through `FuturesUnordered`, which yields every 32 items). Go on, but
            // give the thread back now and then: the flag has woken the task already.
            if flag.woken.load(Ordering::SeqCst) && yields < MAX_YIELDS {
                yields += 1;
                inline += 1;
                if inline < INLINE_YIELDS {
                    continue;
                }
                return Poll::Pending;
            }
            yields = 0;
            // `work` is stuck: everything it will ask for at this level has been asked.
            // Run the queued batches, and those they queue in turn, until none is left
            // and none of the running ones can make progress.
            let mut progressed = false;
            loop {
                let queued = queue.take();
                if queued.is_empty() {
                    break;
                }
                progressed = true;
                running.extend(queued);
                while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {}
            }
            if !progressed {
                // Nothing new was queued; only finished batches can move `work` on.
                let mut finished = false;
                while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {
                    finished = true;
                }
                if !finished && queue.is_empty() {
                    return Poll::Pending;
                }
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

    /// Loads through another loader on the same queue: its batch is queued while the
    /// outer batch runs.
    struct Outer {
        inner: DataLoader<Counting, NoCache>,
    }

    impl Loader<u32> for Outer {
        type Value = u32;
        type Error = String;

        async fn load(&self, keys: &[u32]) -> Result<HashMap<u32, u32>, String> {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            let inner = self.inner.load_many(keys.iter().map(|k| k + 1)).await?;
            Ok(keys.iter().map(|k| (*k, inner[&(k + 1)] + 1)).collect())
        }
    }

    #[tokio::test]
    async fn a_batch_that_queues_a_batch_is_driven_to_the_end() {
        let batches = Arc::new(AtomicUsize::new(0));
        let queue = BatchQueue::default();
        let inner = DataLoader::with_cache(Counting(batches.clone()), queue.spawner(), NoCache);
        let outer = DataLoader::with_cache(Outer { inner }, queue.spawner(), NoCache);
        let work = async { futures::future::join_all((0..10u32).map(|k| outer.load_one(k))).await };
        let results = tokio::time::timeout(std::time::Duration::from_secs(10), drive(queue, work))
            .await
            .expect("the request must not wait forever on a batch nobody runs");
        assert_eq!(results[3], Ok(Some(9)), "(3 + 1) * 2 + 1");
        assert_eq!(batches.load(Ordering::SeqCst), 1, "the inner keys of one outer batch are one batch");
    }

    /// Counts how often the request's task is woken.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_batch_queued_by_a_running_batch_after_it_waited_still_runs() {
        // Polled by hand, so every wake-up is the test's own. The first batch waits for a
        // message, then (like a loader that uses another loader) queues a second batch and
        // waits for its answer; the request waits for the first batch.
        use futures::channel::oneshot;
        let queue = BatchQueue::default();
        let (go, gone) = oneshot::channel::<()>();
        let (done, finished) = oneshot::channel::<u32>();
        let again = queue.spawner();
        (queue.spawner())(Box::pin(async move {
            let _ = gone.await;
            let (inner_done, inner) = oneshot::channel::<u32>();
            again(Box::pin(async move {
                let _ = inner_done.send(41);
            }));
            let _ = done.send(inner.await.unwrap_or_default() + 1);
        }));
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let queued = queue.clone();
        let mut request = Box::pin(drive(queue, async { finished.await.unwrap_or_default() }));
        assert!(request.as_mut().poll(&mut cx).is_pending(), "the first batch waits for its message");
        let _ = go.send(());
        assert!(wakes.0.load(Ordering::SeqCst) >= 1, "the message wakes the request");
        // The request never waits while a batch is queued: nothing would run it.
        match request.as_mut().poll(&mut cx) {
            Poll::Ready(answer) => assert_eq!(answer, 42),
            Poll::Pending => assert!(queued.is_empty(), "pending with a batch still queued"),
        }
    }

    /// A future that wakes itself `until` is set, counting its polls.
    struct Spin<'a> {
        until: &'a AtomicBool,
        polls: u32,
    }

    impl Future for Spin<'_> {
        type Output = u32;

        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
            self.polls += 1;
            if self.until.load(Ordering::SeqCst) {
                return Poll::Ready(self.polls);
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_yielding_request_gives_the_thread_back_to_the_scheduler() {
        // One thread: the other task runs only when the request returns to the scheduler.
        static OTHER_RAN: AtomicBool = AtomicBool::new(false);
        tokio::spawn(async { OTHER_RAN.store(true, Ordering::SeqCst) });
        let polls = drive(BatchQueue::default(), Spin { until: &OTHER_RAN, polls: 0 }).await;
        assert!(polls <= 2 * INLINE_YIELDS, "polled {polls} times before another task could run");
    }
}
