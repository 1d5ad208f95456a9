//! The change feed: one MongoDB change stream on the whole database, turned into [`Change`]s.
//!
//! Each change is built from what its event carries, never from a read of the document: an insert
//! or a replace carries the whole document, an update only the fields it set
//! (`updateDescription.updatedFields`, a sub-document's change possibly as dotted paths such as
//! `presence.server`) and removed (`removedFields`). The stream is opened without
//! `fullDocument: updateLookup`, which made the store read the document again for every update
//! event and every server watching (at 7 servers, 7 reads for each telemetry or presence write;
//! SecantusDB's CPU for a stream of tenant updates: `docs/MEASUREMENTS.md`, "The change feed reads nothing").
//! A field the write left as it was is told as unchanged ([`PresenceNews::Unchanged`],
//! [`KeyNews::Unchanged`], `None`); a device's telemetry written is no change at all.
//!
//! The store sends the feed the changes of the collections servers keep something of
//! ([`WATCHED`]) and no others: a ledger line, an audit line, a notice, an entry of the line or a
//! receipt written costs no event for each server watching (at 7 servers, 7 events a write).
//!
//! The stream waits at most [`FEED_HEARTBEAT`] for a batch, so an empty batch is the heartbeat
//! ([`Change::Live`]). After an error it resumes from the last event's token; when it cannot (the
//! token is gone, or there is none yet) it opens a new stream and sends [`Change::Reset`], because
//! changes may have been missed meanwhile.

use std::time::Duration;

use mongodb::{
    Database,
    bson::{Bson, Document, doc},
    change_stream::{
        ChangeStream,
        event::{ChangeStreamEvent, OperationType, ResumeToken},
    },
};
use pumppilot_engine::{AdminId, DeviceId, Tenant, Timestamp};
use pumppilot_store::{Change, FEED_HEARTBEAT, KeyNews, PresenceNews};
use tokio::sync::mpsc;

/// How long the feed waits before it tries the server again after a failure.
const RETRY_AFTER: Duration = Duration::from_millis(250);
/// How many changes may wait for the server to take them.
const BACKLOG: usize = 4096;

/// Starts the feed of `db` on the current tokio runtime.
pub(crate) fn start(db: Database) -> mpsc::Receiver<Change> {
    let (tx, rx) = mpsc::channel(BACKLOG);
    tokio::spawn(run(db, tx));
    rx
}

/// The collections whose changes [`change_of`] reads; an event of any other is no change.
const WATCHED: [&str; 6] = ["tenants", "servers", "devices", "firmware", "admins", "users"];
/// Sessions, watched but for their inserts: a new session changes nothing held anywhere.
const SESSIONS: [&str; 2] = ["web_sessions", "mobile_sessions"];

/// The stream's one stage: only what [`change_of`] reads, filtered by the store.
fn watched() -> Document {
    doc! { "$match": { "$or": [
        { "ns.coll": { "$in": WATCHED.to_vec() } },
        { "ns.coll": { "$in": SESSIONS.to_vec() }, "operationType": { "$ne": "insert" } },
    ] } }
}

async fn open(
    db: &Database,
    resume: Option<ResumeToken>,
) -> mongodb::error::Result<ChangeStream<ChangeStreamEvent<Document>>> {
    // No `full_document`: an update's event carries what it changed, and nothing is looked up.
    db.watch().pipeline([watched()]).max_await_time(FEED_HEARTBEAT).resume_after(resume).await
}

async fn run(db: Database, tx: mpsc::Sender<Change>) {
    let mut resume: Option<ResumeToken> = None;
    loop {
        let mut stream = match open(&db, resume.clone()).await {
            Ok(stream) => stream,
            Err(err) if resume.is_some() => {
                tracing::warn!(%err, "the change feed cannot resume; starting afresh and forgetting every cache");
                resume = None;
                continue;
            }
            Err(err) => {
                tracing::debug!(%err, "the change feed cannot start yet");
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        if resume.is_none() && tx.send(Change::Reset).await.is_err() {
            return;
        }
        loop {
            match stream.next_if_any().await {
                Ok(Some(event)) => {
                    if let Some(change) = change_of(&event)
                        && tx.send(change).await.is_err()
                    {
                        return;
                    }
                }
                Ok(None) => {
                    if tx.send(Change::Live).await.is_err() {
                        return;
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, "the change feed broke; resuming");
                    break;
                }
            }
            resume = stream.resume_token();
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

/// What an event says of its document.
enum Written<'a> {
    /// The whole document (an insert or a replace).
    Whole(&'a Document),
    /// An update: the fields it set (top-level names, or dotted paths into a sub-document) and
    /// those it removed.
    Fields {
        set: &'a Document,
        removed: &'a [String],
    },
    Deleted,
    /// Anything else (an update without its description, a drop, an invalidate).
    Other,
}

impl<'a> Written<'a> {
    fn of(event: &'a ChangeStreamEvent<Document>) -> Written<'a> {
        match (&event.operation_type, event.full_document.as_ref(), event.update_description.as_ref()) {
            (OperationType::Insert | OperationType::Replace, Some(whole), _) => Written::Whole(whole),
            (OperationType::Update, _, Some(update)) => {
                Written::Fields { set: &update.updated_fields, removed: &update.removed_fields }
            }
            (OperationType::Delete, _, _) => Written::Deleted,
            _ => Written::Other,
        }
    }
}

/// What one event means to a server, if anything.
fn change_of(event: &ChangeStreamEvent<Document>) -> Option<Change> {
    let collection = event.ns.as_ref()?.coll.as_deref()?;
    let id = event.document_key.as_ref()?.get_str("_id").ok()?;
    let written = Written::of(event);
    match collection {
        "tenants" => tenant_change(id, &written),
        // A heartbeat replaces its server's document, whole (the first one inserts it).
        "servers" => match written {
            Written::Whole(doc) => {
                Some(Change::Beat { server: id.to_owned(), polled_since: at_of(doc.get("polledSince")?)? })
            }
            _ => None,
        },
        "devices" => device_change(id, &written),
        "firmware" => Some(Change::Firmware),
        // A new session changes nothing held anywhere (each server reads it at its first use);
        // telling it would make the server that just remembered it forget it again, and a live
        // stream of it would end at its first check.
        "web_sessions" | "mobile_sessions" if !matches!(event.operation_type, OperationType::Insert) => {
            Some(Change::Session { id: pumppilot_store::SessionId(uuid::Uuid::parse_str(id).ok()?) })
        }
        "web_sessions" | "mobile_sessions" => None,
        "admins" | "users" => Some(Change::Account { id: id.parse().ok()? }),
        _ => None,
    }
}

/// A tenant's document written: what moved of what servers keep (version, last poll, presence,
/// whether it has a run); nothing when none of that moved.
fn tenant_change(id: &str, written: &Written<'_>) -> Option<Change> {
    let admin = id.parse().ok()?;
    let change = match *written {
        Written::Whole(doc) => Change::Tenant {
            admin,
            version: Some(unsigned(doc.get("version")?)?),
            last_poll_at: doc.get("lastPollAt").and_then(at_of),
            presence: presence_in(doc),
            // A document from before the field: it may have a run.
            has_run: Some(doc.get_bool("hasRun").unwrap_or(true)),
            // Written whole by an import or a new tenant, never by a commit.
            state: None,
        },
        Written::Fields { set, removed } => {
            let version = set.get("version").and_then(unsigned);
            let change = Change::Tenant {
                admin,
                version,
                last_poll_at: set.get("lastPollAt").and_then(at_of),
                presence: presence_news(set, removed),
                has_run: set.get_bool("hasRun").ok(),
                state: committed_state(set, admin, version),
            };
            let nothing = Change::Tenant {
                admin,
                version: None,
                last_poll_at: None,
                presence: PresenceNews::Unchanged,
                has_run: None,
                state: None,
            };
            if change == nothing {
                return None;
            }
            change
        }
        Written::Deleted | Written::Other => return None,
    };
    Some(change)
}

/// The state a commit wrote (`tenants::ENGINE_STATE`), when the update carried it for the tenant
/// and the version it set; `None` otherwise (a write from before the field, or one that cannot be
/// read: the server then reads the tenant, as it always could).
fn committed_state(set: &Document, admin: AdminId, version: Option<u64>) -> Option<Box<Tenant>> {
    use crate::tenants::{CommittedState, ENGINE_STATE, STATE_FORM};
    let json = set.get_str(ENGINE_STATE).ok()?;
    let state: CommittedState<Tenant> = serde_json::from_str(json).ok()?;
    let tenant = state.tenant;
    (state.form == STATE_FORM && tenant.admin_id == admin && Some(tenant.version) == version).then(|| Box::new(tenant))
}

/// What an update of a tenant did to its `presence: {server, device}`: set whole (the field
/// was added or replaced), set in part (`presence.server`, `presence.device`: MongoDB's diff of
/// a sub-document names only the fields that changed), removed (a leave), or nothing.
fn presence_news(set: &Document, removed: &[String]) -> PresenceNews {
    if removed.iter().any(|field| field == "presence" || field.starts_with("presence.")) {
        return PresenceNews::Gone;
    }
    // Whole: as a read of the document finds it.
    if set.contains_key("presence") {
        return presence_in(set);
    }
    let (device, server) = (set.get("presence.device"), set.get("presence.server"));
    if device.is_none() && server.is_none() {
        return PresenceNews::Unchanged;
    }
    let parsed_device = device.and_then(|d| d.as_str()?.parse::<DeviceId>().ok());
    let parsed_server = server.and_then(|s| s.as_str().map(str::to_owned));
    // A part set to something that names nobody: the presence names nobody.
    if parsed_device.is_none() != device.is_none() || parsed_server.is_none() != server.is_none() {
        return PresenceNews::Gone;
    }
    PresenceNews::Present { device: parsed_device, server: parsed_server }
}

/// The presence a document holding a whole `presence` field names (`codec::presence_of`: both
/// parts, or nobody).
fn presence_in(doc: &Document) -> PresenceNews {
    match crate::codec::presence_of(doc) {
        Some((device, server)) => PresenceNews::Present { device: Some(device), server: Some(server) },
        None => PresenceNews::Gone,
    }
}

/// A device's document written: its key added, rotated or retired, or its link counter reserved
/// (it signs); nothing for its telemetry.
fn device_change(id: &str, written: &Written<'_>) -> Option<Change> {
    let id = id.parse().ok()?;
    let (key, signs) = match *written {
        Written::Whole(doc) => {
            let key = match (doc.get_str("adminId").ok().and_then(|a| a.parse().ok()), key_hash(doc.get("keyHash"))) {
                (Some(admin), Some(key_hash)) => KeyNews::Added { admin, key_hash },
                _ => KeyNews::Retired,
            };
            (key, doc.contains_key("linkHighest"))
        }
        Written::Fields { set, removed } => {
            let key = if removed.iter().any(|field| field == "keyHash") {
                KeyNews::Retired
            } else {
                match (set.get("keyHash"), set.get_str("adminId").ok().and_then(|a| a.parse().ok())) {
                    (None, _) => KeyNews::Unchanged,
                    (Some(hash), admin) => match (key_hash(Some(hash)), admin) {
                        (Some(key_hash), Some(admin)) => KeyNews::Added { admin, key_hash },
                        (Some(key_hash), None) => KeyNews::Rotated { key_hash },
                        (None, _) => KeyNews::Retired,
                    },
                }
            };
            let signs = set.contains_key("linkHighest");
            if key == KeyNews::Unchanged && !signs {
                return None;
            }
            (key, signs)
        }
        Written::Deleted => (KeyNews::Retired, false),
        Written::Other => return None,
    };
    Some(Change::Device { id, key, signs })
}

fn key_hash(value: Option<&Bson>) -> Option<Vec<u8>> {
    match value? {
        Bson::Binary(binary) => Some(binary.bytes.clone()),
        _ => None,
    }
}

fn at_of(value: &Bson) -> Option<Timestamp> {
    value.as_datetime().map(|at| Timestamp(at.timestamp_millis()))
}

fn unsigned(value: &Bson) -> Option<u64> {
    u64::try_from(crate::codec::number(value)?).ok()
}

#[cfg(test)]
mod tests {
    //! Events shaped as the server sends them on a stream opened without `updateLookup` (as
    //! SecantusDB and MongoDB send them: an update carries `updateDescription` alone, with
    //! dotted paths when MongoDB diffs a sub-document), each read through the driver's own type.

    use mongodb::bson::{Binary, DateTime, Timestamp as BsonTimestamp, doc, spec::BinarySubtype};
    use pumppilot_engine::{AdminId, UserId};

    use super::*;

    const AT: i64 = 1_767_225_600_000;

    /// An event of `operation` on `collection`'s document `id`, with `rest` (its
    /// `updateDescription` or `fullDocument`), as the driver hands it over.
    fn event(operation: &str, collection: &str, id: &str, rest: Document) -> ChangeStreamEvent<Document> {
        let mut event = doc! {
            "_id": { "_data": "8267A1B2C3000000012B042C0100296E5A1004" },
            "operationType": operation,
            "clusterTime": BsonTimestamp { time: 1_767_225_600, increment: 1 },
            "wallTime": DateTime::from_millis(AT),
            "ns": { "db": "pumppilot", "coll": collection },
            "documentKey": { "_id": id },
        };
        event.extend(rest);
        mongodb::bson::from_document(event).expect("an event the driver reads")
    }

    fn update(collection: &str, id: &str, set: Document, removed: &[&str]) -> ChangeStreamEvent<Document> {
        let description = doc! { "updatedFields": set, "removedFields": removed, "truncatedArrays": [] };
        event("update", collection, id, doc! { "updateDescription": description })
    }

    fn whole(operation: &str, collection: &str, id: &str, document: Document) -> ChangeStreamEvent<Document> {
        event(operation, collection, id, doc! { "fullDocument": document })
    }

    fn binary(bytes: &[u8]) -> Binary {
        Binary { subtype: BinarySubtype::Generic, bytes: bytes.to_vec() }
    }

    fn tenant(
        admin: AdminId,
        version: Option<u64>,
        last_poll_at: Option<i64>,
        presence: PresenceNews,
        has_run: Option<bool>,
    ) -> Option<Change> {
        Some(Change::Tenant {
            admin,
            version,
            last_poll_at: last_poll_at.map(Timestamp),
            presence,
            has_run,
            state: None,
        })
    }

    /// The store filters the stream to [`WATCHED`] and the sessions' changes but their inserts; no
    /// event it keeps back means anything: every other collection the store writes is read as no
    /// change, whatever its operation, and so is a session's insert. (A collection added to
    /// `change_of` and not to the filter fails here.)
    #[test]
    fn the_events_the_store_keeps_back_are_none_that_mean_a_change() {
        // Every collection the store writes, named here apart from the filter's lists.
        let every = [
            "tenants",
            "servers",
            "devices",
            "firmware",
            "admins",
            "users",
            "web_sessions",
            "mobile_sessions",
            "queues",
            "ledger",
            "usage_history",
            "audit_logs",
            "notifications",
            "outbox",
            "notice_keys",
            "receipts",
            "minute_requests",
            "terms",
            "cards",
            "card_taps",
            "usernames",
            "taken_texts",
            "alert_profiles",
            "push_tokens",
            "phones",
            "login_failures",
            "firmware_downloads",
            "meta",
        ];
        let id = AdminId(UserId::new()).to_string();
        let kept_back = |operation: &str, collection: &str| {
            let filter = watched();
            let or = filter.get_document("$match").unwrap().get_array("$or").unwrap();
            !or.iter().any(|clause| {
                let clause = clause.as_document().unwrap();
                let names = clause.get_document("ns.coll").unwrap().get_array("$in").unwrap();
                names.iter().any(|n| n.as_str() == Some(collection))
                    && clause.get_document("operationType").map_or(true, |op| op.get_str("$ne") != Ok(operation))
            })
        };
        for collection in every {
            for operation in ["insert", "replace", "update", "delete"] {
                let written = match operation {
                    "update" => update(collection, &id, doc! { "version": 2_i64, "x": 1 }, &[]),
                    "delete" => event("delete", collection, &id, doc! {}),
                    _ => whole(operation, collection, &id, doc! { "_id": &id, "version": 2_i64, "x": 1 }),
                };
                if kept_back(operation, collection) {
                    assert_eq!(change_of(&written), None, "{operation} on {collection} is kept back by the store");
                }
            }
        }
        assert!(kept_back("insert", "web_sessions") && !kept_back("update", "web_sessions"));
        assert!(!kept_back("update", "tenants") && kept_back("update", "queues"));
    }

    /// A commit's event carries the state it wrote, whole, when it is the tenant's at the version
    /// the event sets, in the form this release writes; any other (another tenant's, another
    /// version's, another form's, one that does not read as a state) is no state, and the server
    /// reads the tenant.
    #[test]
    fn a_commit_carries_the_state_it_wrote_for_its_own_version_only() {
        let admin = AdminId(UserId::new());
        let id = admin.to_string();
        let mut state = Tenant::new(admin, 30_000);
        state.version = 8;
        state.seq = 3;
        state.wallets.insert(UserId::new(), 600);
        let written =
            |form: u32| serde_json::to_string(&crate::tenants::CommittedState { form, tenant: &state }).unwrap();
        let json = written(crate::tenants::STATE_FORM);
        let start = doc! { "version": 8_i64, "seq": 3_i64, "hasRun": true, "engineState": &json };
        let Some(Change::Tenant { state: carried, .. }) = change_of(&update("tenants", &id, start, &[])) else {
            panic!("a commit is a tenant's change")
        };
        assert_eq!(carried.as_deref(), Some(&state), "the state as written");

        let carried = |version: i64, json: &str, of: &str| match change_of(&update(
            "tenants",
            of,
            doc! { "version": version, "engineState": json },
            &[],
        )) {
            Some(Change::Tenant { state, .. }) => state,
            other => panic!("a tenant's change, not {other:?}"),
        };
        assert_eq!(carried(9, &json, &id), None, "written for version 8, the event sets 9");
        let other = AdminId(UserId::new());
        assert_eq!(carried(8, &json, &other.to_string()), None, "another tenant's state");
        assert_eq!(carried(8, "{\"form\": 1, \"tenant\": {\"version\": 8}}", &id), None, "not a whole state");
        assert_eq!(carried(8, &written(2), &id), None, "a form this release does not know");
    }

    #[test]
    fn a_commit_tells_its_version_and_a_run_only_when_its_write_moved_them() {
        let admin = AdminId(UserId::new());
        let id = admin.to_string();
        // A Start: the version moves, the run begins (hasRun changed), the relay closes.
        let start = doc! {
            "version": 8_i64, "seq": 3_i64, "relay": true, "motorOn": true, "hasRun": true,
            "motorStarts": [DateTime::from_millis(AT)],
        };
        assert_eq!(
            change_of(&update("tenants", &id, start, &[])),
            tenant(admin, Some(8), None, PresenceNews::Unchanged, Some(true))
        );
        // A commit of a tenant whose run goes on: `hasRun` was set to what it was, so the update
        // does not carry it; the last poll moved with it.
        let tick = doc! { "version": 9_i64, "seq": 4_i64, "lastPollAt": DateTime::from_millis(AT + 5_000) };
        assert_eq!(
            change_of(&update("tenants", &id, tick, &[])),
            tenant(admin, Some(9), Some(AT + 5_000), PresenceNews::Unchanged, None)
        );
        // The run ended.
        assert_eq!(
            change_of(&update("tenants", &id, doc! { "version": 10_i64, "hasRun": false }, &[])),
            tenant(admin, Some(10), None, PresenceNews::Unchanged, Some(false))
        );
    }

    #[test]
    fn a_presence_and_a_last_poll_moved_without_a_commit_tell_no_version() {
        let admin = AdminId(UserId::new());
        let id = admin.to_string();
        let device = DeviceId::new();
        // A join: the presence set whole (it was absent), the last poll moved forward.
        let join = doc! {
            "lastPollAt": DateTime::from_millis(AT),
            "presence": { "server": "a", "device": device.to_string() },
        };
        let present = PresenceNews::Present { device: Some(device), server: Some("a".into()) };
        assert_eq!(change_of(&update("tenants", &id, join, &[])), tenant(admin, None, Some(AT), present, None));
        // The same device joins at another server: MongoDB's diff names only the field that changed.
        let moved = doc! { "lastPollAt": DateTime::from_millis(AT + 1_000), "presence.server": "b" };
        let present = PresenceNews::Present { device: None, server: Some("b".into()) };
        assert_eq!(
            change_of(&update("tenants", &id, moved, &[])),
            tenant(admin, None, Some(AT + 1_000), present, None)
        );
        // Another device of the tenant, at the same server.
        let other = DeviceId::new();
        let swapped = doc! { "presence.device": other.to_string() };
        let present = PresenceNews::Present { device: Some(other), server: None };
        assert_eq!(change_of(&update("tenants", &id, swapped, &[])), tenant(admin, None, None, present, None));
        // A leave.
        assert_eq!(
            change_of(&update("tenants", &id, doc! {}, &["presence"])),
            tenant(admin, None, None, PresenceNews::Gone, None)
        );
        // A last poll alone (telemetry flushed by a server).
        assert_eq!(
            change_of(&update("tenants", &id, doc! { "lastPollAt": DateTime::from_millis(AT + 9_000) }, &[])),
            tenant(admin, None, Some(AT + 9_000), PresenceNews::Unchanged, None)
        );
        // A presence that names nobody reads as none, as a read of the document finds it.
        assert_eq!(
            change_of(&update("tenants", &id, doc! { "presence.device": "not a device" }, &[])),
            tenant(admin, None, None, PresenceNews::Gone, None)
        );
        assert_eq!(
            change_of(&update("tenants", &id, doc! { "presence": { "server": "a" } }, &[])),
            tenant(admin, None, None, PresenceNews::Gone, None)
        );
    }

    #[test]
    fn an_update_of_nothing_servers_keep_is_no_change() {
        let admin = AdminId(UserId::new());
        let set = doc! { "loadShedding": true, "gridUpSince": Bson::Null };
        assert_eq!(change_of(&update("tenants", &admin.to_string(), set, &[])), None);
        assert_eq!(change_of(&update("tenants", &admin.to_string(), doc! {}, &["motorOffSince"])), None);
    }

    #[test]
    fn a_whole_tenant_document_tells_everything() {
        let admin = AdminId(UserId::new());
        let id = admin.to_string();
        let device = DeviceId::new();
        let mut document = crate::tenants::new_tenant_doc(admin);
        assert_eq!(
            change_of(&whole("insert", "tenants", &id, document.clone())),
            tenant(admin, Some(0), None, PresenceNews::Gone, Some(false))
        );
        document.insert("lastPollAt", DateTime::from_millis(AT));
        document.insert("presence", doc! { "server": "a", "device": device.to_string() });
        document.remove("hasRun");
        let present = PresenceNews::Present { device: Some(device), server: Some("a".into()) };
        assert_eq!(
            change_of(&whole("replace", "tenants", &id, document)),
            tenant(admin, Some(0), Some(AT), present, Some(true)),
            "a document from before hasRun may have a run"
        );
        let deleted = event("delete", "tenants", &id, doc! {});
        assert_eq!(change_of(&deleted), None);
    }

    #[test]
    fn a_device_tells_its_key_and_its_first_signature_and_never_its_telemetry() {
        let (admin, device) = (AdminId(UserId::new()), DeviceId::new());
        let id = device.to_string();
        let added = doc! {
            "_id": &id, "adminId": admin.to_string(), "name": "well", "keyHash": binary(&[7; 32]),
            "createdAt": DateTime::from_millis(AT), "lastSeenAt": Bson::Null,
        };
        assert_eq!(
            change_of(&whole("insert", "devices", &id, added)),
            Some(Change::Device { id: device, key: KeyNews::Added { admin, key_hash: vec![7; 32] }, signs: false })
        );
        // Telemetry: nobody keeps it, so nothing is told.
        let telemetry = doc! {
            "lastSeenAt": DateTime::from_millis(AT), "relay": true, "ready": true, "resetReason": "POWER_ON",
        };
        assert_eq!(change_of(&update("devices", &id, telemetry, &[])), None);
        // A key rotated: the update carries the key alone (the device stays with its tenant).
        assert_eq!(
            change_of(&update("devices", &id, doc! { "keyHash": binary(&[9; 32]) }, &[])),
            Some(Change::Device { id: device, key: KeyNews::Rotated { key_hash: vec![9; 32] }, signs: false })
        );
        // Its link counter reserved: it signs (from its first window on).
        let reserved = doc! { "linkHighest": 1_024_i64 };
        assert_eq!(
            change_of(&update("devices", &id, reserved, &["linkBelow"])),
            Some(Change::Device { id: device, key: KeyNews::Unchanged, signs: true })
        );
        // Retired.
        assert_eq!(
            change_of(&event("delete", "devices", &id, doc! {})),
            Some(Change::Device { id: device, key: KeyNews::Retired, signs: false })
        );
    }

    #[test]
    fn a_heartbeat_is_a_whole_document_and_nothing_else_of_servers_is_a_beat() {
        let beat = doc! {
            "_id": "a", "seenAt": DateTime::from_millis(AT), "expiresAt": DateTime::from_millis(AT + 3_000),
            "polledSince": DateTime::from_millis(AT - 15_000),
        };
        let expected = Some(Change::Beat { server: "a".into(), polled_since: Timestamp(AT - 15_000) });
        // The first beat inserts its document (an upsert), every later one replaces it.
        assert_eq!(change_of(&whole("insert", "servers", "a", beat.clone())), expected);
        assert_eq!(change_of(&whole("replace", "servers", "a", beat)), expected);
        let set = doc! { "polledSince": DateTime::from_millis(AT) };
        assert_eq!(change_of(&update("servers", "a", set, &[])), None);
        assert_eq!(change_of(&event("delete", "servers", "a", doc! {})), None);
    }
}
