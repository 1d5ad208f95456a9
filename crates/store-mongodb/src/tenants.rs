//! Tenants: loading the engine state and committing a transition in one transaction; and the
//! other multi-document writes (deciding a request, revoking a tenant's sessions).

use std::collections::BTreeMap;

use mongodb::{
    ClientSession, Collection, Database,
    bson::{Bson, Document, doc},
};
use pumppilot_engine::{
    AdminId, DeviceLink, MotorHistory, MotorRules, MotorSettings, QueueEntry, Tenant, Timestamp, UserId,
};
use pumppilot_store::{Decision, OwnedCommit, SessionId, SessionKind, SessionScope, StoreError};
use uuid::Uuid;

use crate::{
    codec::{self, Fields, at, key},
    collect,
    error::{Failure, duplicate_key, invariant},
    sessions_collection,
};

pub(crate) const LIVE: [&str; 3] = ["WAITING", "RUNNING", "HOLD"];
const ACTIVE: [&str; 2] = ["RUNNING", "HOLD"];

fn coll(db: &Database, name: &str) -> Collection<Document> {
    db.collection(name)
}

/// A new tenant's document: version 0, nothing seen.
pub(crate) fn new_tenant_doc(admin: AdminId) -> Document {
    doc! {
        "_id": key(admin),
        "version": 0_i64,
        "suspended": false,
        "seq": 0_i64,
        "lastPollAt": Bson::Null,
        "loadShedding": false,
        "ready": false,
        "relay": false,
        "controllerId": Bson::Null,
        "minOffMs": Bson::Null,
        "gridSettleMs": Bson::Null,
        "maxStartsPerHour": Bson::Null,
        "motorOn": false,
        "motorOffSince": Bson::Null,
        "gridUpSince": Bson::Null,
        "motorStarts": [],
        "hasRun": false,
    }
}

/// The fields of a tenant's document that follow the engine's state one to one: the controller,
/// the owner's restart protection, the motor's history, and whether it has a run (`hasRun`, for
/// the change feed: [`pumppilot_store::Change::Tenant`]) (written by commits and imports).
pub(crate) fn motor_fields(tenant: &Tenant) -> Document {
    let settings = tenant.motor_settings;
    doc! {
        "hasRun": tenant.active.is_some(),
        "controllerId": codec::opt_key(tenant.controller),
        "minOffMs": settings.min_off_ms.map_or(Bson::Null, Bson::Int64),
        "gridSettleMs": settings.grid_settle_ms.map_or(Bson::Null, Bson::Int64),
        "maxStartsPerHour": settings.max_starts_per_hour.map_or(Bson::Null, |n| Bson::Int64(i64::from(n))),
        "motorOn": tenant.motor.on,
        "motorOffSince": codec::opt_at(tenant.motor.off_since),
        "gridUpSince": codec::opt_at(tenant.motor.grid_up_since),
        "motorStarts": tenant.motor.starts.iter().map(|t| at(*t)).collect::<Vec<_>>(),
    }
}

/// Reads what [`motor_fields`] wrote; a document from before them reads as no controller, the
/// server's defaults and a motor that is OFF.
fn read_motor(
    f: &Fields<'_>,
    doc: &Document,
) -> Result<(Option<pumppilot_engine::DeviceId>, MotorSettings, MotorHistory), Failure> {
    let max_starts = f
        .opt_i64("maxStartsPerHour")?
        .map(|n| u32::try_from(n).map_err(|_| crate::error::invariant(format!("tenants.maxStartsPerHour holds {n}"))))
        .transpose()?;
    let starts = match doc.get("motorStarts") {
        None | Some(Bson::Null) => Vec::new(),
        Some(Bson::Array(items)) => items
            .iter()
            .map(|item| match item {
                Bson::DateTime(t) => Ok(Timestamp(t.timestamp_millis())),
                other => Err(crate::error::invariant(format!("tenants.motorStarts holds {other}, not a date"))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(crate::error::invariant(format!("tenants.motorStarts holds {other}, not a list"))),
    };
    Ok((
        f.opt_parsed("controllerId")?,
        MotorSettings {
            min_off_ms: f.opt_i64("minOffMs")?,
            grid_settle_ms: f.opt_i64("gridSettleMs")?,
            max_starts_per_hour: max_starts,
        },
        MotorHistory {
            on: f.opt_bool("motorOn")?.unwrap_or(false),
            off_since: f.opt_at("motorOffSince")?,
            grid_up_since: f.opt_at("gridUpSince")?,
            starts,
        },
    ))
}

/// A tenant's engine state as its own document holds it (no entries, no wallets yet).
fn tenant_of(doc: &Document, admin: AdminId, lease_ms: i64) -> Result<Tenant, Failure> {
    let f = Fields::of(doc, "tenants");
    let (controller, motor_settings, motor) = read_motor(&f, doc)?;
    Ok(Tenant {
        admin_id: admin,
        version: f.unsigned("version")?,
        suspended: f.bool("suspended")?,
        device: DeviceLink {
            last_poll_at: f.opt_at("lastPollAt")?,
            load_shedding: f.bool("loadShedding")?,
            ready: f.bool("ready")?,
            relay: f.bool("relay")?,
            lease_ms,
        },
        active: None,
        waiting: Vec::new(),
        wallets: BTreeMap::new(),
        seq: f.unsigned("seq")?,
        controller,
        motor_settings,
        defaults: MotorRules::NONE,
        motor,
    })
}

/// The tenant's engine state, read in one snapshot (the caller's transaction).
pub(crate) async fn load(
    db: &Database,
    session: &mut ClientSession,
    admin: AdminId,
    lease_ms: i64,
) -> Result<Option<Tenant>, Failure> {
    let Some(doc) = coll(db, "tenants").find_one(doc! { "_id": key(admin) }).session(&mut *session).await? else {
        return Ok(None);
    };
    let mut tenant = tenant_of(&doc, admin, lease_ms)?;
    // The live entries in one read (the active one and the line, in the line's order): a tenant
    // read again when another server changed it is on the way of that change to a device here.
    let cursor = coll(db, "queues")
        .find(doc! { "adminId": key(admin), "status": { "$in": LIVE.to_vec() } })
        .sort(doc! { "position": 1 })
        .session(&mut *session)
        .await?;
    for doc in collect(cursor, session).await? {
        let entry = codec::entry(&doc)?;
        if ACTIVE.contains(&entry.status.as_str()) {
            tenant.active = Some(Box::new(entry));
        } else {
            tenant.waiting.push(entry);
        }
    }
    let cursor = coll(db, "users")
        .find(doc! { "adminId": key(admin), "balanceSeconds": { "$ne": 0_i64 } })
        .projection(doc! { "balanceSeconds": 1 })
        .session(&mut *session)
        .await?;
    for doc in collect(cursor, session).await? {
        let f = Fields::of(&doc, "users");
        tenant.wallets.insert(f.parsed::<UserId>("_id")?, f.i64("balanceSeconds")?);
    }
    Ok(Some(tenant))
}

/// Every tenant with a RUNNING or HOLD entry (a partial index holds those entries alone).
pub(crate) async fn with_runs(db: &Database) -> Result<Vec<AdminId>, Failure> {
    let mut cursor = coll(db, "queues")
        .find(doc! { "status": { "$in": ACTIVE.to_vec() } })
        .projection(doc! { "_id": 0, "adminId": 1 })
        .await?;
    let mut admins = Vec::new();
    while cursor.advance().await? {
        let doc: Document = cursor.deserialize_current()?;
        admins.push(Fields::of(&doc, "queues").parsed("adminId")?);
    }
    Ok(admins)
}

/// What every tenant's document says of its device and grid, each converted as it arrives.
pub(crate) async fn links(db: &Database) -> Result<Vec<pumppilot_store::PumpLink>, Failure> {
    let mut cursor = coll(db, "tenants")
        .find(doc! {})
        .projection(doc! { "controllerId": 1, "lastPollAt": 1, "loadShedding": 1, "gridUpSince": 1 })
        .await?;
    let mut links = Vec::new();
    while cursor.advance().await? {
        let doc: Document = cursor.deserialize_current()?;
        let f = Fields::of(&doc, "tenants");
        links.push(pumppilot_store::PumpLink {
            admin: f.parsed("_id")?,
            controller: f.opt_parsed("controllerId")?,
            last_poll_at: f.opt_at("lastPollAt")?,
            load_shedding: f.opt_bool("loadShedding")?.unwrap_or(false),
            grid_up_since: f.opt_at("gridUpSince")?,
        });
    }
    Ok(links)
}

/// Every tenant's engine state (or only those `wanted`: each read asks for those alone) in a few
/// reads (the tenants, their live entries, their wallets that are not empty), not one transaction
/// per tenant. A tenant committed to while they ran (its version differs when read again at the
/// end) may be read half before and half after: those are left out, for the caller to read alone.
pub(crate) async fn load_all(
    db: &Database,
    lease_ms: i64,
    wanted: Option<&std::collections::HashSet<AdminId>>,
) -> Result<(Vec<Tenant>, Vec<AdminId>), Failure> {
    /// Every document of the query, each handed to `each` as it arrives: 10,000 tenants'
    /// documents held at once took about 40 MB, which the allocator kept after the load.
    async fn all(
        db: &Database,
        name: &str,
        filter: Document,
        projection: Option<Document>,
        mut each: impl FnMut(Document) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let collection = coll(db, name);
        let mut find = collection.find(filter);
        if let Some(projection) = projection {
            find = find.projection(projection);
        }
        let mut cursor = find.await?;
        while cursor.advance().await? {
            each(cursor.deserialize_current()?)?;
        }
        Ok(())
    }
    // Only the tenants wanted, by their ids (a few tenants read together must not cost a scan of
    // every tenant of the store).
    let ids: Option<Vec<Bson>> = wanted.map(|wanted| wanted.iter().map(|admin| key(*admin)).collect());
    let by_id = || ids.as_ref().map_or_else(Document::new, |ids| doc! { "_id": { "$in": ids.clone() } });
    let of_wanted = |mut filter: Document| {
        if let Some(ids) = &ids {
            filter.insert("adminId", doc! { "$in": ids.clone() });
        }
        filter
    };
    let live_entries = of_wanted(doc! { "status": { "$in": LIVE.to_vec() } });
    let wallets = of_wanted(doc! { "adminId": { "$ne": Bson::Null }, "balanceSeconds": { "$ne": 0_i64 } });
    let mut tenants = BTreeMap::new();
    all(db, "tenants", by_id(), None, |doc| {
        let admin: AdminId = Fields::of(&doc, "tenants").parsed("_id")?;
        if wanted.is_none_or(|wanted| wanted.contains(&admin)) {
            tenants.insert(admin, tenant_of(&doc, admin, lease_ms)?);
        }
        Ok(())
    })
    .await?;
    let mut waiting: BTreeMap<AdminId, Vec<(i64, QueueEntry)>> = BTreeMap::new();
    all(db, "queues", live_entries, None, |doc| {
        let entry = codec::entry(&doc)?;
        let Some(tenant) = tenants.get_mut(&entry.admin_id) else { return Ok(()) };
        if ACTIVE.contains(&doc.get_str("status").unwrap_or_default()) {
            tenant.active = Some(Box::new(entry));
        } else {
            let position = doc.get_i64("position").unwrap_or(i64::MAX);
            waiting.entry(entry.admin_id).or_default().push((position, entry));
        }
        Ok(())
    })
    .await?;
    for (admin, mut entries) in waiting {
        entries.sort_by_key(|(position, _)| *position);
        if let Some(tenant) = tenants.get_mut(&admin) {
            tenant.waiting = entries.into_iter().map(|(_, entry)| entry).collect();
        }
    }
    all(db, "users", wallets, Some(doc! { "adminId": 1, "balanceSeconds": 1 }), |doc| {
        let f = Fields::of(&doc, "users");
        let admin: AdminId = f.parsed("adminId")?;
        if let Some(tenant) = tenants.get_mut(&admin) {
            tenant.wallets.insert(f.parsed::<UserId>("_id")?, f.i64("balanceSeconds")?);
        }
        Ok(())
    })
    .await?;
    let mut moved = Vec::new();
    all(db, "tenants", by_id(), Some(doc! { "version": 1 }), |doc| {
        let f = Fields::of(&doc, "tenants");
        let admin: AdminId = f.parsed("_id")?;
        let version = f.unsigned("version")?;
        if tenants.get(&admin).is_some_and(|t| t.version != version) {
            tenants.remove(&admin);
            moved.push(admin);
        }
        Ok(())
    })
    .await?;
    Ok((tenants.into_values().collect(), moved))
}

/// Writes one transition inside the caller's transaction.
///
/// Order matters as in the SQLite store: the version guard first; then ended entries, the active
/// entry and the waiting entries in ascending position, so the unique indexes (one active entry
/// per admin, one entry per position) hold after every write while the line closes up; then the
/// books.
pub(crate) async fn commit(db: &Database, session: &mut ClientSession, commit: &OwnedCommit) -> Result<(), Failure> {
    let tenant = &commit.tenant;
    write_tenant(db, session, tenant).await?;
    for entry in &commit.records.ended {
        write_entry(db, session, entry, None).await?;
    }
    if let Some(active) = &tenant.active {
        write_entry(db, session, active, None).await?;
    }
    if commit.records.reordered {
        // Entries that pass each other in the line would meet at one place on the way: first they
        // all step aside, then take their places.
        coll(db, "queues")
            .update_many(
                doc! { "adminId": key(tenant.admin_id), "status": "WAITING" },
                doc! { "$inc": { "position": 1_000_000_i64 } },
            )
            .session(&mut *session)
            .await?;
    }
    for (position, entry) in (1_i64..).zip(&tenant.waiting) {
        write_entry(db, session, entry, Some(position)).await?;
    }
    check_live_entries(db, session, tenant).await?;
    for entry in &commit.records.ledger {
        let moved = coll(db, "users")
            .update_one(
                doc! {
                    "_id": key(entry.user_id),
                    "adminId": key(entry.admin_id),
                    "balanceSeconds": entry.balance_after - entry.delta_seconds,
                },
                doc! { "$set": { "balanceSeconds": entry.balance_after } },
            )
            .session(&mut *session)
            .await?;
        if moved.matched_count == 0 {
            return Err(invariant(format!(
                "a ledger entry of {} s leaving user {} at {} s does not follow the stored balance (or the user is \
                 not in this tenant)",
                entry.delta_seconds, entry.user_id, entry.balance_after
            )));
        }
        if entry.balance_after < 0 {
            return Err(invariant(format!("a ledger entry leaves user {} below zero", entry.user_id)));
        }
        coll(db, "ledger").insert_one(codec::ledger_doc(entry)).session(&mut *session).await?;
    }
    if !commit.records.usage.is_empty() {
        let rows = commit.records.usage.iter().map(codec::usage_doc);
        coll(db, "usage_history").insert_many(rows).session(&mut *session).await?;
    }
    if !commit.audit.is_empty() {
        coll(db, "audit_logs").insert_many(commit.audit.iter().map(codec::audit_doc)).session(&mut *session).await?;
    }
    if let Some(decision) = &commit.decision {
        let (filter, update) = decision_update(decision);
        if coll(db, "minute_requests").update_one(filter, update).session(&mut *session).await?.matched_count == 0 {
            let exists = coll(db, "minute_requests")
                .find_one(doc! { "_id": key(decision.request_id), "adminId": key(decision.admin_id) })
                .session(&mut *session)
                .await?
                .is_some();
            return Err(if exists { StoreError::AlreadyDecided } else { StoreError::NotFound }.into());
        }
    }
    for notice in &commit.records.notices {
        crate::alerts::insert_notice(db, session, notice).await?;
    }
    if let Some(receipt) = &commit.receipt {
        coll(db, "receipts").insert_one(codec::receipt_doc(receipt)).session(&mut *session).await?;
    }
    if let Some((account, suspended)) = commit.suspension {
        let filter = doc! { "_id": key(account), "adminId": key(tenant.admin_id) };
        let mut found = false;
        for collection in ["admins", "users"] {
            let result = coll(db, collection)
                .update_one(filter.clone(), doc! { "$set": { "suspended": suspended } })
                .session(&mut *session)
                .await?;
            if result.matched_count > 0 {
                found = true;
                break;
            }
        }
        if !found {
            return Err(StoreError::NotFound.into());
        }
    }
    Ok(())
}

/// Moves the version on if it is still the one the transition started from.
async fn write_tenant(db: &Database, session: &mut ClientSession, tenant: &Tenant) -> Result<(), Failure> {
    let (filter, update) = tenant_update(tenant)?;
    let result = coll(db, "tenants").update_one(filter, update).session(&mut *session).await?;
    if result.matched_count == 0 {
        let exists =
            coll(db, "tenants").find_one(doc! { "_id": key(tenant.admin_id) }).session(&mut *session).await?.is_some();
        return Err(if exists { StoreError::VersionConflict } else { StoreError::NotFound }.into());
    }
    Ok(())
}

/// The filter and update that write a tenant's document at the version it was read at (it
/// matches nothing once the stored version moved).
pub(crate) fn tenant_update(tenant: &Tenant) -> Result<(Document, Document), Failure> {
    let version = i64::try_from(tenant.version).map_err(|_| invariant("the version is too large to store"))?;
    let seq = i64::try_from(tenant.seq).map_err(|_| invariant("the seq is too large to store"))?;
    let mut set = doc! {
        "suspended": tenant.suspended,
        "seq": seq,
        "loadShedding": tenant.device.load_shedding,
        "ready": tenant.device.ready,
        "relay": tenant.device.relay,
    };
    set.extend(motor_fields(tenant));
    let mut update = doc! { "$set": set, "$inc": { "version": 1_i64 } };
    // The last poll only moves forward: batched telemetry may have recorded a later one.
    if let Some(last_poll) = tenant.device.last_poll_at {
        update.insert("$max", doc! { "lastPollAt": at(last_poll) });
    }
    Ok((doc! { "_id": key(tenant.admin_id), "version": version }, update))
}

/// Inserts an entry or updates its stored document. A stored entry changes only while it is
/// live and only for the same tenant and user: an ended entry is final.
async fn write_entry(
    db: &Database,
    session: &mut ClientSession,
    entry: &QueueEntry,
    position: Option<i64>,
) -> Result<(), Failure> {
    let filter = doc! {
        "_id": key(entry.id),
        "adminId": key(entry.admin_id),
        "userId": key(entry.user_id),
        "status": { "$in": LIVE.to_vec() },
    };
    let update = doc! {
        "$set": codec::entry_fields(entry, position),
        "$setOnInsert": { "createdAt": at(entry.created_at) },
    };
    coll(db, "queues").update_one(filter, update).upsert(true).session(&mut *session).await.map_err(|error| {
        match duplicate_key(&error) {
            Some(message) => invariant(explain_queue_conflict(entry, position, &message)),
            None => Failure::Mongo(error),
        }
    })?;
    Ok(())
}

/// Says which rule of the queue an entry broke, in the store's words.
fn explain_queue_conflict(entry: &QueueEntry, position: Option<i64>, message: &str) -> String {
    let rule = if message.contains(crate::schema::ONE_WAITING_PER_POSITION) {
        format!("another entry already waits at position {}", position.unwrap_or_default())
    } else if message.contains(crate::schema::ONE_ACTIVE_PER_ADMIN) {
        "another entry is already active for this admin (one RUNNING or HOLD entry per admin)".to_owned()
    } else if message.contains("_id_") {
        "it is already ended, or is stored for another tenant or user".to_owned()
    } else {
        message.to_owned()
    };
    format!("queue entry {} ({}) refused: {rule}", entry.id, entry.status.as_str())
}

/// The stored live entries must be exactly the state's.
///
/// One read of the tenant's live entries (ids and statuses), not one per rule: each round trip
/// inside a Start's transaction is on the way from the Start to the relay.
async fn check_live_entries(db: &Database, session: &mut ClientSession, tenant: &Tenant) -> Result<(), Failure> {
    let cursor = coll(db, "queues")
        .find(doc! { "adminId": key(tenant.admin_id), "status": { "$in": LIVE.to_vec() } })
        .projection(doc! { "_id": 1, "status": 1 })
        .session(&mut *session)
        .await?;
    let live = collect(cursor, session).await?;
    let status = |doc: &Document| doc.get_str("status").unwrap_or_default().to_owned();
    let expected = tenant.active.as_ref().map(|entry| entry.id.to_string());
    let stored: Vec<_> = live
        .iter()
        .filter(|doc| ACTIVE.contains(&status(doc).as_str()))
        .filter_map(|doc| doc.get_str("_id").ok())
        .collect();
    if stored != expected.iter().map(String::as_str).collect::<Vec<_>>() {
        return Err(invariant("the stored active entry is not the state's, and it was not ended"));
    }
    let waiting = live.iter().filter(|doc| status(doc) == "WAITING").count();
    if waiting != tenant.waiting.len() {
        return Err(invariant("a stored waiting entry is not in the state's line, and it was not ended"));
    }
    Ok(())
}

/// The filter and update that decide a PENDING request once.
pub(crate) fn decision_update(decision: &Decision) -> (Document, Document) {
    (
        doc! { "_id": key(decision.request_id), "adminId": key(decision.admin_id), "status": "PENDING" },
        doc! { "$set": {
            "status": decision.status.as_str(),
            "decidedAt": at(decision.at),
            "decidedBy": key(decision.decided_by),
        } },
    )
}

/// Revokes the live sessions of one user, or of every account of a tenant, in both collections.
pub(crate) async fn revoke_sessions(
    db: &Database,
    session: &mut ClientSession,
    scope: SessionScope,
    when: Timestamp,
) -> Result<Vec<SessionId>, Failure> {
    let owners: Vec<Bson> = match scope {
        SessionScope::User(user) => vec![key(user)],
        SessionScope::Tenant(admin) => {
            // The admin's own account has adminId = its id, so it is one of the tenant's accounts.
            let mut owners = Vec::new();
            for collection in ["admins", "users"] {
                let cursor = coll(db, collection)
                    .find(doc! { "adminId": key(admin) })
                    .projection(doc! { "_id": 1 })
                    .session(&mut *session)
                    .await?;
                owners.extend(collect(cursor, session).await?.into_iter().filter_map(|doc| doc.get("_id").cloned()));
            }
            owners
        }
    };
    let mut revoked = Vec::new();
    for kind in [SessionKind::Web, SessionKind::Mobile] {
        let sessions = coll(db, sessions_collection(kind));
        let filter = doc! { "userId": { "$in": owners.clone() }, "revokedAt": Bson::Null };
        let cursor = sessions.find(filter.clone()).projection(doc! { "_id": 1 }).session(&mut *session).await?;
        for doc in collect(cursor, session).await? {
            revoked.push(SessionId(Fields::of(&doc, sessions_collection(kind)).parsed::<Uuid>("_id")?));
        }
        sessions.update_many(filter, doc! { "$set": { "revokedAt": at(when) } }).session(&mut *session).await?;
    }
    Ok(revoked)
}
