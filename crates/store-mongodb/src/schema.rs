//! Indexes and the schema version, set up at every start (creating an index that exists with the
//! same definition changes nothing).

use mongodb::{
    Database, IndexModel,
    bson::{Document, doc},
    options::IndexOptions,
};
use pumppilot_store::StoreError;

use crate::error::Failure;

/// The schema version this build writes (kept in `meta`, document `schema`).
pub const SCHEMA_VERSION: i64 = 1;

/// The partial unique index that allows one RUNNING or HOLD entry per admin.
pub(crate) const ONE_ACTIVE_PER_ADMIN: &str = "one_active_per_admin";
/// The seed's `queues {adminId, position}`, unique among WAITING entries.
pub(crate) const ONE_WAITING_PER_POSITION: &str = "one_waiting_per_position";
/// One device per registration key in a tenant (`AuditedWrite::CreateDevice`).
pub(crate) const DEVICES_ONCE_KEY: &str = "devices_once_key";

fn index(keys: Document, name: &str, unique: bool, partial: Option<Document>) -> IndexModel {
    let options = IndexOptions::builder()
        .name(name.to_owned())
        .unique(unique.then_some(true))
        .partial_filter_expression(partial)
        .build();
    IndexModel::builder().keys(keys).options(options).build()
}

/// A TTL index: MongoDB deletes a document once its `expiresAt` has passed.
fn expires() -> IndexModel {
    let options = IndexOptions::builder().name("expires".to_owned()).expire_after(std::time::Duration::ZERO).build();
    IndexModel::builder().keys(doc! { "expiresAt": 1 }).options(options).build()
}

/// Every collection's indexes.
fn indexes() -> Vec<(&'static str, Vec<IndexModel>)> {
    vec![
        ("usernames", vec![]),
        (
            "admins",
            vec![
                index(doc! { "username": 1 }, "username", true, None),
                index(doc! { "role": 1, "createdAt": 1 }, "role_created", false, None),
                // The master's list of owners a page at a time (`Store::owner_page`).
                index(doc! { "role": 1, "username": 1 }, "role_username", false, None),
            ],
        ),
        (
            "users",
            vec![
                index(doc! { "username": 1 }, "username", true, None),
                index(doc! { "adminId": 1, "createdAt": 1 }, "admin_created", false, None),
            ],
        ),
        ("tenants", vec![]),
        (
            "queues",
            vec![
                index(
                    doc! { "adminId": 1 },
                    ONE_ACTIVE_PER_ADMIN,
                    true,
                    Some(doc! { "status": { "$in": ["RUNNING", "HOLD"] } }),
                ),
                index(
                    doc! { "adminId": 1, "position": 1 },
                    ONE_WAITING_PER_POSITION,
                    true,
                    Some(doc! { "status": "WAITING" }),
                ),
                index(doc! { "adminId": 1, "status": 1 }, "admin_status", false, None),
                // The tenants with a run (`Store::tenants_with_runs`), without a look at ended entries.
                index(
                    doc! { "status": 1, "adminId": 1 },
                    "active_status_admin",
                    false,
                    Some(doc! { "status": { "$in": ["RUNNING", "HOLD"] } }),
                ),
                index(doc! { "userId": 1 }, "user", false, None),
            ],
        ),
        (
            "usage_history",
            vec![
                index(doc! { "adminId": 1, "endedAt": -1 }, "admin_ended", false, None),
                index(doc! { "userId": 1, "endedAt": -1 }, "user_ended", false, None),
                // The master's totals of every pump (`Store::fleet_totals`): the seconds charged
                // since a moment, summed from the index alone.
                index(doc! { "endedAt": 1, "chargedSeconds": 1 }, "ended_charged", false, None),
            ],
        ),
        (
            "ledger",
            vec![
                index(doc! { "userId": 1, "at": -1 }, "user_at", false, None),
                // One change per key in a tenant (`LedgerEntry::once_key`), among entries with one.
                index(
                    doc! { "adminId": 1, "onceKey": 1 },
                    "ledger_once_key",
                    true,
                    Some(doc! { "onceKey": { "$type": "string" } }),
                ),
            ],
        ),
        (
            "minute_requests",
            vec![
                index(doc! { "adminId": 1, "status": 1, "createdAt": -1 }, "admin_status_created", false, None),
                index(doc! { "userId": 1, "createdAt": -1 }, "user_created", false, None),
            ],
        ),
        ("web_sessions", session_indexes()),
        ("mobile_sessions", session_indexes()),
        (
            "devices",
            vec![
                index(doc! { "keyHash": 1 }, "key_hash", true, None),
                index(doc! { "adminId": 1, "createdAt": 1 }, "admin_created", false, None),
                // One device per registration key in a tenant, among devices with one.
                index(
                    doc! { "adminId": 1, "onceKey": 1 },
                    DEVICES_ONCE_KEY,
                    true,
                    Some(doc! { "onceKey": { "$type": "string" } }),
                ),
            ],
        ),
        (
            "cards",
            vec![
                index(doc! { "adminId": 1, "uid": 1 }, "one_card_per_tenant", true, None),
                index(doc! { "userId": 1 }, "user", false, None),
            ],
        ),
        (
            "audit_logs",
            vec![
                index(doc! { "adminId": 1, "at": -1 }, "admin_at", false, None),
                index(doc! { "at": -1 }, "at", false, None),
            ],
        ),
        ("terms", vec![]),
        (
            "receipts",
            vec![
                index(doc! { "adminId": 1, "at": -1 }, "admin_at", false, None),
                // The master's totals of every pump: the cash taken since a moment, from the index alone.
                index(doc! { "at": 1, "cashTaka": 1 }, "at_cash", false, None),
                // And the cash of the void receipts, taken off it: only they are in this one (its
                // own key pattern, not `at_cash`'s: MongoDB before 5.0 refuses two indexes of one
                // pattern that differ only by a filter).
                index(
                    doc! { "at": 1, "cashTaka": 1, "voidedAt": 1 },
                    "void_at_cash",
                    false,
                    Some(doc! { "voidedAt": { "$exists": true } }),
                ),
            ],
        ),
        // Failed sign-ins counted by every server alike; MongoDB deletes a key's window once over.
        ("login_failures", vec![expires()]),
        // Card taps claimed by one server; MongoDB deletes them once their window is over.
        ("card_taps", vec![expires()]),
        // Texts the SMS webhook took, claimed by one server; MongoDB deletes them once over.
        ("taken_texts", vec![expires()]),
        // The servers alive on this database (heartbeats); MongoDB deletes one that stopped.
        ("servers", vec![expires()]),
        (
            "notifications",
            vec![
                index(doc! { "userId": 1, "at": -1, "_id": -1 }, "user_at", false, None),
                // The purge of old notifications.
                index(doc! { "at": 1 }, "at", false, None),
            ],
        ),
        ("notice_keys", vec![index(doc! { "notification": 1 }, "notification", false, None)]),
        // Rate limits counted by every server alike; MongoDB deletes a window once over.
        ("send_windows", vec![expires()]),
        ("outbox", vec![index(doc! { "dueAt": 1, "_id": 1 }, "due", false, None)]),
        // A text from a number finds the people waiting for it to be confirmed; a text to obey
        // finds the one whose phone it is.
        (
            "alert_profiles",
            vec![
                index(doc! { "pending.phone": 1 }, "pending_phone", false, None),
                index(doc! { "phone": 1 }, "phone", false, None),
                // A token set for one person is taken from whoever had it.
                index(doc! { "pushTokens": 1 }, "push_tokens", false, None),
            ],
        ),
        // Pushes whose receipts are still to be read: by when each is due; MongoDB also deletes
        // one once it expires (`Store::purge_push_tickets` does the same on every backend).
        ("push_tickets", vec![index(doc! { "askAt": 1, "_id": 1 }, "ask", false, None), expires()]),
        // How far each device has downloaded firmware: by tenant (the owner's list), and by
        // when last written (the purge).
        (
            "firmware_downloads",
            vec![index(doc! { "adminId": 1 }, "admin", false, None), index(doc! { "at": 1 }, "at", false, None)],
        ),
        ("phones", vec![index(doc! { "userId": 1 }, "user", false, None)]),
        // One document per Expo push token (`_id`), naming the person whose phone has it and the
        // session that registered it (found when that session ends).
        (
            "push_tokens",
            vec![
                index(doc! { "userId": 1 }, "user", false, None),
                index(doc! { "sessionId": 1 }, "session", false, None),
            ],
        ),
        ("meta", vec![]),
    ]
}

fn session_indexes() -> Vec<IndexModel> {
    vec![
        index(doc! { "accessHash": 1 }, "access_hash", true, None),
        index(doc! { "refreshHash": 1 }, "refresh_hash", false, None),
        index(doc! { "previousRefreshHash": 1 }, "previous_refresh_hash", false, None),
        index(doc! { "userId": 1 }, "user", false, None),
    ]
}

/// Creates the collections (a transaction cannot create one on every server version) and their
/// indexes, and records the schema version; refuses a database written by a newer PumpPilot.
pub(crate) async fn prepare(db: &Database) -> Result<(), Failure> {
    let meta = db.collection::<Document>("meta");
    if let Some(doc) = meta.find_one(doc! { "_id": "schema" }).await? {
        let stored = doc.get_i64("version").or_else(|_| doc.get_i32("version").map(i64::from)).unwrap_or(-1);
        if stored > SCHEMA_VERSION {
            return Err(StoreError::Unavailable(format!(
                "the database has schema version {stored}, newer than the {SCHEMA_VERSION} this PumpPilot knows; run \
                 a newer PumpPilot or restore a backup"
            ))
            .into());
        }
    }
    let existing = db.list_collection_names().await?;
    let tokens_unguarded =
        existing.iter().any(|e| e == "alert_profiles") && !existing.iter().any(|e| e == "push_tokens");
    for (name, models) in indexes() {
        if !existing.iter().any(|e| e == name) {
            // Another server starting at the same moment may have created it: that is fine.
            if let Err(e) = db.create_collection(name).await
                && !db.list_collection_names().await?.iter().any(|e| e == name)
            {
                return Err(e.into());
            }
        }
        if !models.is_empty() {
            db.collection::<Document>(name).create_indexes(models).await?;
        }
    }
    if tokens_unguarded {
        crate::alerts::adopt_push_tokens(db).await?;
    }
    meta.update_one(doc! { "_id": "schema" }, doc! { "$max": { "version": SCHEMA_VERSION } }).upsert(true).await?;
    Ok(())
}
