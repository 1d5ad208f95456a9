//! Group commit for a store's backends: requests that many callers make at once (a fleet
//! coming online) are written together, a batch at a time, by one task; a lone request waits for
//! nothing, a crowd shares its batches. Each backend says how a batch is written (one MongoDB
//! transaction, one SQLite transaction) and keeps each request's own answer.

use std::sync::{Arc, Mutex};

/// Requests waiting to be written together, and whether a task is writing their batches.
///
/// One task writes a group's batches, one after another, until none is left; a request arriving
/// meanwhile only joins the queue (about a hundred bytes), not a task of its own: a task that
/// holds a batch's write is about 2 KB, and a fleet coming online against a slow store queued
/// thousands of them at once (2,719 tenant reads, 5.8 MB, at 3,000 MQTT devices), memory the
/// allocator then kept.
pub struct Group<T, R> {
    waiting: Mutex<Waiting<T, R>>,
}

struct Waiting<T, R> {
    queue: Vec<(T, tokio::sync::oneshot::Sender<R>)>,
    /// Whether a task is writing batches (it takes every request queued before it stops).
    writing: bool,
}

impl<T, R> Default for Group<T, R> {
    fn default() -> Self {
        Group { waiting: Mutex::new(Waiting { queue: Vec::new(), writing: false }) }
    }
}

impl<T, R> std::fmt::Debug for Group<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.waiting.lock().map_or(0, |w| w.queue.len());
        f.debug_struct("Group").field("waiting", &waiting).finish()
    }
}

/// The writing task's mark on its group, cleared however the task ends: by itself when no request
/// is left (in the same lock as it finds none, so a request queued just after starts a task), or
/// on a panic (or the runtime's shutdown): then the requests still queued are dropped (their
/// callers hear `None`) rather than left waiting for a task that will not come.
struct Writer<'a, T, R> {
    waiting: &'a Mutex<Waiting<T, R>>,
    done: bool,
}

impl<T, R> Drop for Writer<'_, T, R> {
    fn drop(&mut self) {
        if !self.done {
            let mut waiting = self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            waiting.writing = false;
            waiting.queue.clear();
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Group<T, R> {
    /// Queues `item` and answers its result once a batch wrote it. The batches are written by a
    /// task of their own, so a caller that goes away (a device that disconnected) neither stops a
    /// batch nor leaves other callers without an answer. `None` when the batch's task failed.
    pub async fn submit<F, Fut>(self: &Arc<Self>, item: T, most: usize, write: F) -> Option<R>
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let start = {
            let mut waiting = self.waiting.lock().expect("group lock");
            waiting.queue.push((item, answer));
            !std::mem::replace(&mut waiting.writing, true)
        };
        if start {
            let group = Arc::clone(self);
            tokio::spawn(async move {
                let mut writer = Writer { waiting: &group.waiting, done: false };
                loop {
                    let batch: Vec<_> = {
                        let mut waiting = group.waiting.lock().expect("group lock");
                        // The last batch is written: the next request starts a task again.
                        if waiting.queue.is_empty() {
                            waiting.writing = false;
                            writer.done = true;
                            return;
                        }
                        let n = waiting.queue.len().min(most);
                        waiting.queue.drain(..n).collect()
                    };
                    let (items, answers): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
                    let results = write(items).await;
                    for (answer, result) in answers.into_iter().zip(results) {
                        let _ = answer.send(result);
                    }
                }
            });
        }
        answered.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::sync::Semaphore;

    use super::Group;

    /// What the test's batches saw: the size of each, as it started.
    type Batches = Arc<Mutex<Vec<usize>>>;

    /// Submits `i` to `group`, its batch held at `gate` and answered `i * 2`.
    async fn doubled(group: Arc<Group<u32, u32>>, i: u32, gate: Arc<Semaphore>, batches: Batches) -> Option<u32> {
        let write = move |items: Vec<u32>| {
            let (gate, batches) = (Arc::clone(&gate), Arc::clone(&batches));
            async move {
                batches.lock().unwrap().push(items.len());
                gate.acquire().await.unwrap().forget();
                items.iter().map(|i| i * 2).collect()
            }
        };
        group.submit(i, 128, write).await
    }

    #[tokio::test]
    async fn a_crowd_waits_in_the_queue_not_in_a_task_each() {
        let group: Arc<Group<u32, u32>> = Arc::default();
        let (gate, batches): (_, Batches) = (Arc::new(Semaphore::new(0)), Arc::default());
        let mut callers = tokio::task::JoinSet::new();
        for i in 0..1000 {
            callers.spawn(doubled(Arc::clone(&group), i, Arc::clone(&gate), Arc::clone(&batches)));
        }
        // Until every request is queued or in the batch held at the gate.
        loop {
            let taken: usize = batches.lock().unwrap().iter().sum();
            if group.waiting.lock().unwrap().queue.len() + taken == 1000 {
                break;
            }
            tokio::task::yield_now().await;
        }
        // The 1,000 callers and one writing task, not one more for each request.
        let alive = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        assert_eq!(alive, 1001, "tasks alive while 1,000 requests wait");

        gate.add_permits(1000);
        let mut answers = callers.join_all().await;
        answers.sort();
        assert_eq!(answers, (0..1000).map(|i| Some(i * 2)).collect::<Vec<_>>());
        let sizes = batches.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 1000);
        assert!(sizes.len() >= 8 && sizes.iter().all(|&n| n <= 128), "batches of at most 128: {sizes:?}");

        // The writer stops once none is left, and a request after it starts another.
        let answer = doubled(Arc::clone(&group), 7, Arc::clone(&gate), Arc::clone(&batches)).await;
        assert_eq!(answer, Some(14));
    }

    #[tokio::test]
    async fn a_writer_that_panics_answers_none_and_the_next_request_is_written() {
        let group: Arc<Group<u32, u32>> = Arc::default();
        let failing = group.submit(1, 128, |_: Vec<u32>| async { panic!("the store's driver failed") });
        assert_eq!(failing.await, None);
        let (gate, batches): (_, Batches) = (Arc::new(Semaphore::new(1)), Arc::default());
        assert_eq!(doubled(Arc::clone(&group), 3, gate, batches).await, Some(6));
    }
}
