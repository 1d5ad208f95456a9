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
//! commit, `pumppilot_store::Group`): a lone request waits for nothing, a crowd shares its
//! transactions.

use std::sync::Arc;

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
