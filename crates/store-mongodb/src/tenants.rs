//! Tenants: loading the engine state, the tenant's versioned update (a transition's writes are
//! `commit.rs`); and the other multi-document writes (deciding a request, revoking a tenant's
//! sessions).

use std::collections::BTreeMap;

use mongodb::{
    ClientSession, Collection, Database,
    bson::{Bson, Document, doc},
};
use pumppilot_engine::{
    AdminId, DeviceLink, MotorHistory, MotorRules, MotorSettings, QueueEntry, Tenant, Timestamp, UserId,
};
use pumppilot_store::{Decision, SessionId, SessionKind, SessionScope};
use uuid::Uuid;

use crate::{
    codec::{self, Fields, at, key},
    collect,
    error::{Failure, invariant},
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
        "withoutCommandSince": Bson::Null,
        "hasRun": false,
    }
}

/// The fields of a tenant's document that follow the engine's state one to one: the controller,
/// the owner's restart protection, the motor's history, since when the controller has had no
/// command although told ON, and whether it has a run (`hasRun`, for the change feed:
/// [`pumppilot_store::Change::Tenant`]) (written by commits and imports).
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
        "withoutCommandSince": codec::opt_at(tenant.device.without_command_since),
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
            // A document from before the field: no board marked.
            without_command_since: f.opt_at("withoutCommandSince")?,
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
    let tenants = coll(db, "tenants");
    // Without the state the last commit wrote for the change feed (`ENGINE_STATE`): this read is it.
    let read = tenants.find_one(doc! { "_id": key(admin) }).projection(doc! { ENGINE_STATE: 0 });
    let Some(doc) = read.session(&mut *session).await? else {
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

/// How many tenants' links one answer of the store carries ([`links`]): the alerts watch reads
/// every pump's every 30 s, and left to the driver, the store's second answer held all the rest.
/// At 100,000 pumps on SecantusDB's Rust server that read took 0.9 s of the store at once (0.4 s in
/// answers of a thousand), and the farmers' Starts that came meanwhile waited for it.
const LINKS_AT_ONCE: u32 = 1_000;

/// What every tenant's document says of its device and grid (or only those `wanted`, by their
/// ids, [`crate::IDS_PER_QUERY`] to a read: SecantusDB walks an `$in` list for every document),
/// each converted as it arrives.
pub(crate) async fn links(
    db: &Database,
    wanted: Option<&std::collections::HashSet<AdminId>>,
) -> Result<Vec<pumppilot_store::PumpLink>, Failure> {
    let filters: Vec<Document> = match wanted {
        None => vec![doc! {}],
        Some(wanted) => {
            let ids: Vec<Bson> = wanted.iter().map(|admin| key(*admin)).collect();
            ids.chunks(crate::IDS_PER_QUERY).map(|ids| doc! { "_id": { "$in": ids } }).collect()
        }
    };
    let mut links = Vec::new();
    for filter in filters {
        let mut cursor = coll(db, "tenants")
            .find(filter)
            .projection(doc! {
                "version": 1, "controllerId": 1, "lastPollAt": 1, "loadShedding": 1, "gridUpSince": 1,
                "withoutCommandSince": 1,
            })
            .batch_size(LINKS_AT_ONCE)
            .await?;
        while cursor.advance().await? {
            let doc: Document = cursor.deserialize_current()?;
            links.push(link_of(&doc)?);
        }
    }
    Ok(links)
}

/// What one tenant's document (of [`links`]' projection) says of its device and grid.
fn link_of(doc: &Document) -> Result<pumppilot_store::PumpLink, Failure> {
    let f = Fields::of(doc, "tenants");
    Ok(pumppilot_store::PumpLink {
        admin: f.parsed("_id")?,
        version: f.unsigned("version")?,
        controller: f.opt_parsed("controllerId")?,
        last_poll_at: f.opt_at("lastPollAt")?,
        load_shedding: f.opt_bool("loadShedding")?.unwrap_or(false),
        grid_up_since: f.opt_at("gridUpSince")?,
        without_command_since: f.opt_at("withoutCommandSince")?,
    })
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
    all(db, "tenants", by_id(), Some(doc! { ENGINE_STATE: 0 }), |doc| {
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
    set.insert(ENGINE_STATE, committed_state(tenant)?);
    let mut update = doc! { "$set": set, "$inc": { "version": 1_i64 } };
    // The last poll only moves forward: batched telemetry may have recorded a later one.
    if let Some(last_poll) = tenant.device.last_poll_at {
        update.insert("$max", doc! { "lastPollAt": at(last_poll) });
    }
    Ok((doc! { "_id": key(tenant.admin_id), "version": version }, update))
}

/// The field of a tenant's document that holds the engine's state as the last commit wrote it,
/// whole (JSON, its version the one the commit stored), for the change feed alone: the commit's
/// event carries it, and a server that keeps the tenant takes it from there instead of reading the
/// tenant again (`feed.rs`). Nothing reads it from the document: the tenant's own fields, its live
/// entries and its farmers' wallets stay the record.
pub(crate) const ENGINE_STATE: &str = "engineState";

/// What [`ENGINE_STATE`] holds: the state, and the form it is written in. A server that finds a
/// form it does not know (a later release's, whose fields may mean something else) reads the
/// tenant instead of taking it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct CommittedState<T> {
    pub(crate) form: u32,
    pub(crate) tenant: T,
}

/// The form of [`CommittedState`] this release writes and takes: the engine's `Tenant` as serde
/// writes it.
pub(crate) const STATE_FORM: u32 = 1;

/// `tenant` as its commit stores it (the version one up), in JSON: a string, which a change
/// event carries whole, where a sub-document may come as dotted paths of what changed in it.
fn committed_state(tenant: &Tenant) -> Result<String, Failure> {
    let mut committed = tenant.clone();
    committed.version += 1;
    serde_json::to_string(&CommittedState { form: STATE_FORM, tenant: &committed })
        .map_err(|e| invariant(format!("the state cannot be written as JSON: {e}")))
}

/// Whether the tenant `admin` is stored, read in the caller's transaction (its id alone, not the
/// document).
pub(crate) async fn exists(db: &Database, session: &mut ClientSession, admin: AdminId) -> Result<bool, Failure> {
    let found = coll(db, "tenants")
        .find_one(doc! { "_id": key(admin) })
        .projection(doc! { "_id": 1 })
        .session(&mut *session)
        .await?;
    Ok(found.is_some())
}

/// The filter and update that decide a PENDING request once.
pub(crate) fn decision_update(decision: &Decision) -> (Document, Document) {
    (
        doc! { "_id": key(decision.request_id), "adminId": key(decision.admin_id), "status": "PENDING" },
        doc! { "$set": {
            "status": decision.status.as_str(),
            "decidedAt": at(decision.at),
            "decidedBy": key(decision.decided_by),
            "rejectReason": decision.reason.map(|reason| reason.as_str()),
        } },
    )
}

/// Revokes the live sessions of one user, or of every account of a tenant, in both collections,
/// with the push tokens the mobile ones registered, in the caller's transaction.
pub(crate) async fn revoke_sessions(
    db: &Database,
    session: &mut ClientSession,
    scope: SessionScope,
    keep: Option<SessionId>,
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
        let mut filter = doc! { "userId": { "$in": owners.clone() }, "revokedAt": Bson::Null };
        if let Some(keep) = keep {
            filter.insert("_id", doc! { "$ne": crate::codec::session_key(keep) });
        }
        let cursor = sessions.find(filter.clone()).projection(doc! { "_id": 1 }).session(&mut *session).await?;
        let mut ids = Vec::new();
        for doc in collect(cursor, session).await? {
            ids.push(SessionId(Fields::of(&doc, sessions_collection(kind)).parsed::<Uuid>("_id")?));
        }
        sessions
            .update_many(filter, doc! { "$set": { "revokedAt": at(when) } })
            .session(&mut *session)
            .await
            .map_err(crate::error::conflict_if_duplicate)?;
        // Their phones' push tokens go in the same transaction.
        if kind == SessionKind::Mobile {
            crate::alerts::forget_tokens_of(db, session, &ids).await?;
        }
        revoked.extend(ids);
    }
    Ok(revoked)
}
