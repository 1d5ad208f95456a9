//! A fleet coming online, written together: the commits that write only a tenant's document (a
//! device coming online, or its inputs changing, while its pump has no run and no line) and the
//! reservations of devices' counter windows, each made at once by many callers, are grouped into
//! one transaction per batch instead of one each. A transaction costs a store several round trips
//! and, on SecantusDB, about 8 ms however little it writes; a batch of a hundred costs one.
//!
//! Each request keeps its own rule and its own exact answer: inside the batch's transaction
//! (snapshot reads), each tenant's write is the same version-guarded update as a commit of its
//! own, and each reservation the same compare-and-set on the device's stored floor. A request
//! that does not land there (a version moved, a floor moved, a tenant with live entries stored, the
//! whole transaction failed) is written again alone, the way it always is, so its answer
//! (`VersionConflict`, `NotFound`, `Invariant`, …) is exactly the one it would have had alone.
//!
//! One batch is written at a time; requests arriving meanwhile wait for the next one (group
//! commit): a lone request waits for nothing, a crowd shares its transactions.

use std::sync::{Arc, Mutex};

use mongodb::{
    ClientSession,
    bson::{Bson, Document, doc},
};
use pumppilot_engine::{AdminId, DeviceId};
use pumppilot_store::{CounterWindow, OwnedCommit, Reserved, StoreError, StoreResult, Telemetry};

use crate::{
    MongoStore,
    codec::{self, key},
    collect,
    error::Failure,
    tenants,
};

/// The most tenant commits one transaction writes (SecantusDB takes about a millisecond for each
/// update: a Start waits behind at most this many; their tenants are read by one `$in`).
pub(crate) const COMMITS_AT_ONCE: usize = crate::IDS_PER_QUERY;
/// The most counter reservations one transaction writes (their devices read by one `$in`).
pub(crate) const RESERVATIONS_AT_ONCE: usize = crate::IDS_PER_QUERY;

/// Requests waiting to be written together, and whether a task is writing their batches.
///
/// One task writes a group's batches, one after another, until none is left; a request arriving
/// meanwhile only joins the queue (about a hundred bytes), not a task of its own: a task that
/// holds a batch's write is about 2 KB, and a fleet coming online against a slow store queued
/// thousands of them at once (2,719 tenant reads, 5.8 MB, at 3,000 MQTT devices), memory the
/// allocator then kept.
pub(crate) struct Group<T, R> {
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
    pub(crate) async fn submit<F, Fut>(self: &Arc<Self>, item: T, most: usize, write: F) -> Option<R>
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

/// True when a commit writes nothing but its tenant's document: no records but the change
/// itself, no line, no run, nothing besides (a device coming online, its inputs changing).
pub(crate) fn writes_tenant_only(commit: &OwnedCommit) -> bool {
    let (records, tenant) = (&commit.records, &commit.tenant);
    records.ledger.is_empty()
        && records.usage.is_empty()
        && records.ended.is_empty()
        && records.notices.is_empty()
        && !records.reordered
        && tenant.active.is_none()
        && tenant.waiting.is_empty()
        && commit.audit.is_empty()
        && commit.decision.is_none()
        && commit.suspension.is_none()
        && commit.receipt.is_none()
}

/// Writes commits of [`writes_tenant_only`] in one transaction; those that do not land there are
/// committed alone. The answers are in the order of `batch`.
pub(crate) async fn commit_tenants(store: &MongoStore, batch: Vec<OwnedCommit>) -> Vec<StoreResult<()>> {
    let batch = Arc::new(batch);
    let landed = if batch.len() < 2 {
        vec![false; batch.len()]
    } else {
        store
            .transaction(|session| {
                let (db, batch) = (store.db.clone(), Arc::clone(&batch));
                Box::pin(async move { write_tenants(&db, session, &batch).await })
            })
            .await
            .unwrap_or_else(|failure| {
                tracing::debug!(error = %StoreError::from(failure), "a grouped commit failed; each is written alone");
                vec![false; batch.len()]
            })
    };
    let mut results = Vec::with_capacity(batch.len());
    for (commit, landed) in batch.iter().zip(landed) {
        results.push(if landed { Ok(()) } else { store.commit_alone(commit.clone()).await });
    }
    results
}

/// Inside the batch's transaction, in three round trips: the tenants' versions and live entries
/// as stored (the snapshot), then one command with the version-guarded update of each tenant
/// whose stored version is the one its commit started from and that has no live entry stored
/// (the state says none; one stored is refused, alone). Every update sent must land (the snapshot
/// said so), else the transaction is given up and each commit is written alone.
async fn write_tenants(
    db: &mongodb::Database,
    session: &mut ClientSession,
    batch: &[OwnedCommit],
) -> Result<Vec<bool>, Failure> {
    let admins: Vec<Bson> = batch.iter().map(|c| key(c.tenant.admin_id)).collect();
    let cursor = db
        .collection::<Document>("tenants")
        .find(doc! { "_id": { "$in": admins.clone() } })
        .projection(doc! { "version": 1 })
        .session(&mut *session)
        .await?;
    let versions: std::collections::HashMap<String, i64> = collect(cursor, session)
        .await?
        .iter()
        .filter_map(|d| Some((d.get_str("_id").ok()?.to_owned(), crate::codec::number(d.get("version")?)?)))
        .collect();
    let cursor = db
        .collection::<Document>("queues")
        .find(doc! { "adminId": { "$in": admins }, "status": { "$in": tenants::LIVE.to_vec() } })
        .projection(doc! { "adminId": 1 })
        .session(&mut *session)
        .await?;
    let with_entries: std::collections::HashSet<String> =
        collect(cursor, session).await?.iter().filter_map(|d| d.get_str("adminId").ok().map(str::to_owned)).collect();
    let mut landed = vec![false; batch.len()];
    let mut updates = Vec::new();
    let mut taken = std::collections::HashSet::new();
    for (i, commit) in batch.iter().enumerate() {
        let admin = commit.tenant.admin_id.to_string();
        let version = i64::try_from(commit.tenant.version).ok();
        // A tenant once a batch; a second commit of it (from the same version) goes alone.
        if with_entries.contains(&admin) || versions.get(&admin).copied() != version || !taken.insert(admin) {
            continue;
        }
        let (filter, update) = tenants::tenant_update(&commit.tenant)?;
        updates.push(doc! { "q": filter, "u": update });
        landed[i] = true;
    }
    update_all(db, session, "tenants", updates).await?;
    Ok(landed)
}

/// One `update` command in the transaction; every update in it must match a document.
async fn update_all(
    db: &mongodb::Database,
    session: &mut ClientSession,
    collection: &str,
    updates: Vec<Document>,
) -> Result<(), Failure> {
    if updates.is_empty() {
        return Ok(());
    }
    let sent = updates.len() as i64;
    let command = doc! { "update": collection, "updates": updates, "ordered": true };
    let reply = db.run_command(command).session(&mut *session).await?;
    if let Ok(errors) = reply.get_array("writeErrors")
        && let Some(first) = errors.first()
    {
        return Err(StoreError::Unavailable(format!("{collection}: {first}")).into());
    }
    if reply.get("n").and_then(crate::codec::number) != Some(sent) {
        return Err(StoreError::Unavailable(format!("{collection}: a grouped write did not land whole")).into());
    }
    Ok(())
}

/// One reservation: the tenant, its device, the counter asked for and the block.
pub(crate) type Reservation = (AdminId, DeviceId, u64, u64);

/// Reserves counter windows for several devices in one transaction; those that do not land there
/// (a floor moved meanwhile, the transaction failed) are reserved alone. In the order of `batch`.
pub(crate) async fn reserve_counters(store: &MongoStore, batch: Vec<Reservation>) -> Vec<StoreResult<Reserved>> {
    let alone = |n: usize| (0..n).map(|_| None).collect::<Vec<_>>();
    let reserved: Vec<Option<StoreResult<Reserved>>> = if batch.len() < 2 {
        alone(batch.len())
    } else {
        let shared = Arc::new(batch.clone());
        store
            .transaction(|session| {
                let (db, batch) = (store.db.clone(), Arc::clone(&shared));
                Box::pin(async move { reserve_in(&db, session, &batch).await })
            })
            .await
            .unwrap_or_else(|failure| {
                tracing::debug!(error = %StoreError::from(failure), "grouped reservations failed; each is made alone");
                alone(batch.len())
            })
    };
    let mut results = Vec::with_capacity(batch.len());
    for ((admin, device, at_least, block), reserved) in batch.into_iter().zip(reserved) {
        results.push(match reserved {
            Some(result) => result,
            None => store.reserve_alone(admin, device, at_least, block).await,
        });
    }
    results
}

/// Inside the batch's transaction, in two round trips: each device's floor read, then one command
/// that moves each floor only where it is still the one read (as alone; a second reservation of a
/// device in the batch builds on the first).
async fn reserve_in(
    db: &mongodb::Database,
    session: &mut ClientSession,
    batch: &[Reservation],
) -> Result<Vec<Option<StoreResult<Reserved>>>, Failure> {
    let ids: Vec<Bson> = batch.iter().map(|(_, device, _, _)| key(*device)).collect();
    let cursor = db
        .collection::<Document>("devices")
        .find(doc! { "_id": { "$in": ids } })
        .projection({
            let mut fields = codec::telemetry_projection();
            fields.insert("linkHighest", 1);
            fields
        })
        .session(&mut *session)
        .await?;
    // Each device's tenant, stored floor (as read, then as moved by this batch) and stored report.
    let mut read: std::collections::HashMap<String, (String, Bson, Option<Telemetry>)> =
        std::collections::HashMap::new();
    for doc in collect(cursor, session).await? {
        let (Ok(id), Ok(admin)) = (doc.get_str("_id"), doc.get_str("adminId")) else { continue };
        let floor = doc.get("linkHighest").cloned().unwrap_or(Bson::Null);
        read.insert(id.to_owned(), (admin.to_owned(), floor, codec::stored_report(&doc)));
    }
    let mut out = Vec::with_capacity(batch.len());
    let mut updates = Vec::new();
    for &(admin, device, at_least, block) in batch {
        let id = device.to_string();
        let Some((stored_admin, stored, report)) = read.get_mut(&id).filter(|(a, _, _)| *a == admin.to_string()) else {
            out.push(Some(Err(StoreError::NotFound)));
            continue;
        };
        let floor = match crate::link_floor(stored) {
            Ok(floor) => floor,
            Err(err) => {
                out.push(Some(Err(err)));
                continue;
            }
        };
        let Some(through) = CounterWindow::next_floor(floor, at_least, block) else {
            out.push(Some(Err(StoreError::Invariant(format!("link counter {at_least} is too large to store")))));
            continue;
        };
        updates.push(doc! {
            "q": { "_id": id.as_str(), "adminId": stored_admin.as_str(), "linkHighest": stored.clone() },
            "u": { "$set": { "linkHighest": through as i64 }, "$unset": { "linkBelow": "" } },
        });
        *stored = Bson::Int64(through as i64);
        out.push(Some(Ok(Reserved { window: CounterWindow { after: floor, through }, stored: report.clone() })));
    }
    // Every compare-and-set sent holds (the snapshot said so), else all are made alone.
    update_all(db, session, "devices", updates).await?;
    Ok(out)
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
