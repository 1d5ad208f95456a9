//! The one mapping between each collection's documents and the store's types.
//!
//! Ids are strings of 32 hex digits (as in the SQLite store), times are BSON dates (milliseconds,
//! exact), token and key hashes are binary, enums are their store names, and a missing value is
//! an explicit `null`. A value that cannot be read becomes [`StoreError::Unavailable`] naming the
//! collection and field, never a panic.

use std::{fmt::Display, str::FromStr};

use mongodb::bson::{Binary, Bson, DateTime, Document, doc, spec::BinarySubtype};
use pumppilot_engine::{AdminId, LedgerEntry, QueueEntry, Timestamp, UsageRow};
use pumppilot_store::{
    Account, AuditEntry, Card, Device, FirmwareRelease, MinuteRequest, Receipt, ReceiptVoid, Rollout, Session,
    SessionId, SessionKind, StoreError, StoreName, Telemetry, Terms,
};
use uuid::Uuid;

use crate::error::{Failure, unreadable};

// --- writing ---

/// A stored integer, whichever width it was stored in.
pub(crate) fn number(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int64(n) => Some(*n),
        Bson::Int32(n) => Some(i64::from(*n)),
        _ => None,
    }
}

/// A time as a BSON date.
pub(crate) fn at(t: Timestamp) -> Bson {
    Bson::DateTime(DateTime::from_millis(t.millis()))
}

/// An optional time, `null` when absent.
pub(crate) fn opt_at(t: Option<Timestamp>) -> Bson {
    t.map_or(Bson::Null, at)
}

/// An id (or anything displayed) as a string.
pub(crate) fn key(id: impl Display) -> Bson {
    Bson::String(id.to_string())
}

/// An optional id, `null` when absent.
pub(crate) fn opt_key(id: Option<impl Display>) -> Bson {
    id.map_or(Bson::Null, key)
}

/// A session id in its stored form (like every id: 32 hex digits).
/// A tenant document's presence (`presence: {server, device}`): the device and the server that
/// vouches for it, if any.
pub(crate) fn presence_of(tenant: &Document) -> Option<(pumppilot_engine::DeviceId, String)> {
    let presence = tenant.get_document("presence").ok()?;
    Some((presence.get_str("device").ok()?.parse().ok()?, presence.get_str("server").ok()?.to_owned()))
}

pub(crate) fn session_key(id: SessionId) -> Bson {
    Bson::String(id.0.as_simple().to_string())
}

/// Bytes as generic binary.
pub(crate) fn bytes(data: &[u8]) -> Bson {
    Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: data.to_vec() })
}

fn opt_bytes(data: Option<&[u8]>) -> Bson {
    data.map_or(Bson::Null, bytes)
}

fn opt_string(text: Option<&str>) -> Bson {
    text.map_or(Bson::Null, |t| Bson::String(t.to_owned()))
}

fn opt_i64(value: Option<i64>) -> Bson {
    value.map_or(Bson::Null, Bson::Int64)
}

// --- reading ---

/// Typed getters on one stored document.
pub(crate) struct Fields<'a> {
    doc: &'a Document,
    collection: &'static str,
}

impl<'a> Fields<'a> {
    pub(crate) fn of(doc: &'a Document, collection: &'static str) -> Self {
        Fields { doc, collection }
    }

    pub(crate) fn bad(&self, field: &str, cause: impl Display) -> Failure {
        let value = self.doc.get(field).map_or_else(|| "nothing".to_owned(), |v| v.to_string());
        unreadable(format!("{}.{field} holds {value}, which cannot be read: {cause}", self.collection))
    }

    /// The value, or `None` when it is missing or `null`.
    fn get(&self, field: &str) -> Option<&'a Bson> {
        self.doc.get(field).filter(|v| !matches!(v, Bson::Null))
    }

    fn need(&self, field: &str) -> Result<&'a Bson, Failure> {
        self.get(field).ok_or_else(|| self.bad(field, "it is required"))
    }

    pub(crate) fn string(&self, field: &str) -> Result<String, Failure> {
        self.opt_string(field)?.ok_or_else(|| self.bad(field, "it is required"))
    }

    pub(crate) fn opt_string(&self, field: &str) -> Result<Option<String>, Failure> {
        match self.get(field) {
            None => Ok(None),
            Some(Bson::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.bad(field, "not a string")),
        }
    }

    pub(crate) fn parsed<T: FromStr>(&self, field: &str) -> Result<T, Failure>
    where
        T::Err: Display,
    {
        self.opt_parsed(field)?.ok_or_else(|| self.bad(field, "it is required"))
    }

    pub(crate) fn opt_parsed<T: FromStr>(&self, field: &str) -> Result<Option<T>, Failure>
    where
        T::Err: Display,
    {
        self.opt_string(field)?.map(|s| s.parse().map_err(|cause| self.bad(field, cause))).transpose()
    }

    pub(crate) fn named<T: StoreName>(&self, field: &str) -> Result<T, Failure> {
        self.opt_named(field)?.ok_or_else(|| self.bad(field, "it is required"))
    }

    pub(crate) fn opt_named<T: StoreName>(&self, field: &str) -> Result<Option<T>, Failure> {
        self.opt_string(field)?
            .map(|s| T::from_store_name(&s).ok_or_else(|| self.bad(field, "unknown name")))
            .transpose()
    }

    pub(crate) fn at(&self, field: &str) -> Result<Timestamp, Failure> {
        self.opt_at(field)?.ok_or_else(|| self.bad(field, "it is required"))
    }

    pub(crate) fn opt_at(&self, field: &str) -> Result<Option<Timestamp>, Failure> {
        match self.get(field) {
            None => Ok(None),
            Some(Bson::DateTime(t)) => Ok(Some(Timestamp(t.timestamp_millis()))),
            Some(_) => Err(self.bad(field, "not a date")),
        }
    }

    pub(crate) fn i64(&self, field: &str) -> Result<i64, Failure> {
        self.opt_i64(field)?.ok_or_else(|| self.bad(field, "it is required"))
    }

    pub(crate) fn opt_i64(&self, field: &str) -> Result<Option<i64>, Failure> {
        match self.get(field) {
            None => Ok(None),
            Some(Bson::Int64(n)) => Ok(Some(*n)),
            Some(Bson::Int32(n)) => Ok(Some(i64::from(*n))),
            Some(_) => Err(self.bad(field, "not an integer")),
        }
    }

    pub(crate) fn unsigned(&self, field: &str) -> Result<u64, Failure> {
        let n = self.i64(field)?;
        u64::try_from(n).map_err(|cause| self.bad(field, cause))
    }

    pub(crate) fn bool(&self, field: &str) -> Result<bool, Failure> {
        match self.need(field)? {
            Bson::Boolean(b) => Ok(*b),
            _ => Err(self.bad(field, "not a boolean")),
        }
    }

    pub(crate) fn opt_bool(&self, field: &str) -> Result<Option<bool>, Failure> {
        self.get(field).map(|_| self.bool(field)).transpose()
    }

    pub(crate) fn bytes(&self, field: &str) -> Result<Vec<u8>, Failure> {
        self.opt_bytes(field)?.ok_or_else(|| self.bad(field, "it is required"))
    }

    pub(crate) fn opt_bytes(&self, field: &str) -> Result<Option<Vec<u8>>, Failure> {
        match self.get(field) {
            None => Ok(None),
            Some(Bson::Binary(b)) => Ok(Some(b.bytes.clone())),
            Some(_) => Err(self.bad(field, "not binary")),
        }
    }
}

// --- accounts (`admins` holds the master and the admins, `users` the farmers) ---

/// An account's document (without the wallet, which only `users` have).
pub(crate) fn account_doc(account: &Account) -> Document {
    doc! {
        "_id": key(account.id),
        "username": &account.username,
        "name": &account.name,
        "role": account.role.as_str(),
        "adminId": opt_key(account.admin_id),
        "passwordHash": &account.password_hash,
        "suspended": account.suspended,
        "createdAt": at(account.created_at),
    }
}

pub(crate) fn account(doc: &Document, collection: &'static str) -> Result<Account, Failure> {
    let f = Fields::of(doc, collection);
    Ok(Account {
        id: f.parsed("_id")?,
        username: f.string("username")?,
        name: f.string("name")?,
        role: f.named("role")?,
        admin_id: f.opt_parsed("adminId")?,
        password_hash: f.string("passwordHash")?,
        suspended: f.bool("suspended")?,
        created_at: f.at("createdAt")?,
    })
}

// --- queues ---

/// The fields of a queue entry that may change while it is live (everything but its identity).
/// `position` is set exactly while it waits.
pub(crate) fn entry_fields(entry: &QueueEntry, position: Option<i64>) -> Document {
    doc! {
        "status": entry.status.as_str(),
        "position": opt_i64(position),
        "holdReason": opt_string(entry.hold_reason.map(|r| r.as_str())),
        "requestedSeconds": opt_i64(entry.requested_seconds),
        "startedAt": opt_at(entry.started_at),
        "phaseSince": opt_at(entry.phase_since),
        "runningMs": entry.running_ms,
        "heldMs": entry.held_ms,
        "endedAt": opt_at(entry.ended_at),
        "endReason": opt_string(entry.end_reason.map(|r| r.as_str())),
        "chargedSeconds": opt_i64(entry.charged_seconds),
    }
}

/// A whole queue entry's document.
pub(crate) fn entry_doc(entry: &QueueEntry, position: Option<i64>) -> Document {
    let mut doc = doc! {
        "_id": key(entry.id),
        "adminId": key(entry.admin_id),
        "userId": key(entry.user_id),
        "createdAt": at(entry.created_at),
    };
    doc.extend(entry_fields(entry, position));
    doc
}

pub(crate) fn entry(doc: &Document) -> Result<QueueEntry, Failure> {
    let f = Fields::of(doc, "queues");
    Ok(QueueEntry {
        id: f.parsed("_id")?,
        user_id: f.parsed("userId")?,
        admin_id: f.parsed("adminId")?,
        status: f.named("status")?,
        hold_reason: f.opt_named("holdReason")?,
        requested_seconds: f.opt_i64("requestedSeconds")?,
        created_at: f.at("createdAt")?,
        started_at: f.opt_at("startedAt")?,
        phase_since: f.opt_at("phaseSince")?,
        running_ms: f.i64("runningMs")?,
        held_ms: f.i64("heldMs")?,
        ended_at: f.opt_at("endedAt")?,
        end_reason: f.opt_named("endReason")?,
        charged_seconds: f.opt_i64("chargedSeconds")?,
    })
}

// --- books ---

pub(crate) fn ledger_doc(entry: &LedgerEntry) -> Document {
    doc! {
        "userId": key(entry.user_id),
        "adminId": key(entry.admin_id),
        "at": at(entry.at),
        "deltaSeconds": entry.delta_seconds,
        "kind": entry.kind.as_str(),
        "balanceAfter": entry.balance_after,
        "actorId": opt_key(entry.actor_id),
        "note": &entry.note,
        "entryId": opt_key(entry.entry_id),
        "requestId": opt_key(entry.request_id),
        "onceKey": opt_string(entry.once_key.as_deref()),
        "receiptId": opt_key(entry.receipt_id),
    }
}

pub(crate) fn ledger_entry(doc: &Document) -> Result<LedgerEntry, Failure> {
    let f = Fields::of(doc, "ledger");
    Ok(LedgerEntry {
        user_id: f.parsed("userId")?,
        admin_id: f.parsed("adminId")?,
        at: f.at("at")?,
        delta_seconds: f.i64("deltaSeconds")?,
        kind: f.named("kind")?,
        balance_after: f.i64("balanceAfter")?,
        actor_id: f.opt_parsed("actorId")?,
        note: f.string("note")?,
        entry_id: f.opt_parsed("entryId")?,
        request_id: f.opt_parsed("requestId")?,
        once_key: f.opt_string("onceKey")?,
        receipt_id: f.opt_parsed("receiptId")?,
    })
}

pub(crate) fn usage_doc(row: &UsageRow) -> Document {
    doc! {
        "_id": key(row.entry_id),
        "userId": key(row.user_id),
        "adminId": key(row.admin_id),
        "startedAt": at(row.started_at),
        "endedAt": at(row.ended_at),
        "runningSeconds": row.running_seconds,
        "heldSeconds": row.held_seconds,
        "chargedSeconds": row.charged_seconds,
        "endReason": row.end_reason.as_str(),
    }
}

pub(crate) fn usage_row(doc: &Document) -> Result<UsageRow, Failure> {
    let f = Fields::of(doc, "usage_history");
    Ok(UsageRow {
        entry_id: f.parsed("_id")?,
        user_id: f.parsed("userId")?,
        admin_id: f.parsed("adminId")?,
        started_at: f.at("startedAt")?,
        ended_at: f.at("endedAt")?,
        running_seconds: f.i64("runningSeconds")?,
        held_seconds: f.i64("heldSeconds")?,
        charged_seconds: f.i64("chargedSeconds")?,
        end_reason: f.named("endReason")?,
    })
}

pub(crate) fn audit_doc(entry: &AuditEntry) -> Document {
    doc! {
        "adminId": opt_key(entry.admin_id),
        "at": at(entry.at),
        "actorId": opt_key(entry.actor_id),
        "action": &entry.action,
        "targetId": opt_string(entry.target_id.as_deref()),
        "detail": &entry.detail,
    }
}

pub(crate) fn audit_entry(doc: &Document) -> Result<AuditEntry, Failure> {
    let f = Fields::of(doc, "audit_logs");
    Ok(AuditEntry {
        admin_id: f.opt_parsed("adminId")?,
        at: f.at("at")?,
        actor_id: f.opt_parsed("actorId")?,
        action: f.string("action")?,
        target_id: f.opt_string("targetId")?,
        detail: f.string("detail")?,
    })
}

pub(crate) fn request_doc(request: &MinuteRequest) -> Document {
    doc! {
        "_id": key(request.id),
        "userId": key(request.user_id),
        "adminId": key(request.admin_id),
        "minutes": request.minutes,
        "note": &request.note,
        "status": request.status.as_str(),
        "createdAt": at(request.created_at),
        "decidedAt": opt_at(request.decided_at),
        "decidedBy": opt_key(request.decided_by),
        "rejectReason": opt_string(request.reject_reason.map(|reason| reason.as_str())),
    }
}

pub(crate) fn minute_request(doc: &Document) -> Result<MinuteRequest, Failure> {
    let f = Fields::of(doc, "minute_requests");
    Ok(MinuteRequest {
        id: f.parsed("_id")?,
        user_id: f.parsed("userId")?,
        admin_id: f.parsed("adminId")?,
        minutes: f.i64("minutes")?,
        note: f.string("note")?,
        status: f.named("status")?,
        created_at: f.at("createdAt")?,
        decided_at: f.opt_at("decidedAt")?,
        decided_by: f.opt_parsed("decidedBy")?,
        reject_reason: f.opt_named("rejectReason")?,
    })
}

// --- devices and cards ---

/// A device's last report as the fields of its document.
pub(crate) fn telemetry_fields(t: &Telemetry) -> Result<Document, Failure> {
    let uptime = t
        .uptime_ms
        .map(|ms| i64::try_from(ms).map_err(|_| crate::error::invariant(format!("uptime {ms} ms is too large"))))
        .transpose()?;
    Ok(doc! {
        "lastSeenAt": at(t.last_seen_at),
        "loadShedding": t.load_shedding,
        "ready": t.ready,
        "relay": t.relay,
        "firmware": opt_string(t.firmware.as_deref()),
        "uptimeMs": opt_i64(uptime),
        "rssi": t.rssi.map_or(Bson::Null, |r| Bson::Int32(i32::from(r))),
        "reader": opt_string(t.reader.map(pumppilot_store::reader_state_name)),
        "feedback": t.feedback.map_or(Bson::Null, Bson::Boolean),
    })
}

/// Why the board last started and when, when this report says so (a report without a reason
/// keeps the stored one: a board says it once after a boot).
pub(crate) fn reset_fields(t: &Telemetry) -> Option<Document> {
    t.last_reset.map(|reason| {
        doc! { "lastReset": pumppilot_store::reset_reason_name(reason), "lastResetAt": opt_at(t.last_reset_at) }
    })
}

pub(crate) fn device_doc(device: &Device) -> Result<Document, Failure> {
    let mut doc = doc! {
        "_id": key(device.id),
        "adminId": key(device.admin_id),
        "name": &device.name,
        "keyHash": bytes(&device.key_hash),
        "createdAt": at(device.created_at),
        "lastSeenAt": Bson::Null,
    };
    if let Some(t) = &device.telemetry {
        doc.extend(telemetry_fields(t)?);
        doc.extend(reset_fields(t).unwrap_or_default());
    }
    Ok(doc)
}

/// The fields of a device's document [`telemetry`] reads (a projection), with its tenant.
pub(crate) fn telemetry_projection() -> Document {
    let mut projection = doc! { "adminId": 1 };
    for field in TELEMETRY_FIELDS {
        projection.insert(field, 1);
    }
    projection
}

const TELEMETRY_FIELDS: [&str; 11] = [
    "lastSeenAt",
    "loadShedding",
    "ready",
    "relay",
    "firmware",
    "uptimeMs",
    "rssi",
    "lastReset",
    "lastResetAt",
    "reader",
    "feedback",
];

/// What a reservation reads of a device's last report (`Reserved::stored`): `None` before its
/// first report, and `None` when the report cannot be read (said in the log), so an unreadable
/// report never keeps a device from signing; its next report is written over it.
pub(crate) fn stored_report(doc: &Document) -> Option<Telemetry> {
    telemetry(doc).unwrap_or_else(|failure| {
        tracing::warn!(error = %StoreError::from(failure), "a device's stored report cannot be read; its next one is written");
        None
    })
}

/// What a device's document says it last reported (`None` before its first report).
pub(crate) fn telemetry(doc: &Document) -> Result<Option<Telemetry>, Failure> {
    let f = Fields::of(doc, "devices");
    let (id, admin_id) = (f.parsed("_id")?, f.parsed("adminId")?);
    Ok(match f.opt_at("lastSeenAt")? {
        None => None,
        Some(last_seen_at) => Some(Telemetry {
            device_id: id,
            admin_id,
            last_seen_at,
            load_shedding: f.opt_bool("loadShedding")?.unwrap_or_default(),
            ready: f.opt_bool("ready")?.unwrap_or_default(),
            relay: f.opt_bool("relay")?.unwrap_or_default(),
            firmware: f.opt_string("firmware")?,
            uptime_ms: f
                .opt_i64("uptimeMs")?
                .map(|ms| u64::try_from(ms).map_err(|cause| f.bad("uptimeMs", cause)))
                .transpose()?,
            rssi: f.opt_i64("rssi")?.map(|r| i16::try_from(r).map_err(|cause| f.bad("rssi", cause))).transpose()?,
            last_reset: f
                .opt_string("lastReset")?
                .map(|name| {
                    pumppilot_store::parse_reset_reason(&name).ok_or_else(|| f.bad("lastReset", "not a reset reason"))
                })
                .transpose()?,
            last_reset_at: f.opt_at("lastResetAt")?,
            reader: f
                .opt_string("reader")?
                .map(|name| {
                    pumppilot_store::parse_reader_state(&name).ok_or_else(|| f.bad("reader", "not a reader state"))
                })
                .transpose()?,
            feedback: f.opt_bool("feedback")?,
        }),
    })
}

pub(crate) fn device(doc: &Document) -> Result<Device, Failure> {
    let f = Fields::of(doc, "devices");
    let telemetry = telemetry(doc)?;
    let (id, admin_id) = (f.parsed("_id")?, f.parsed("adminId")?);
    Ok(Device {
        id,
        admin_id,
        name: f.string("name")?,
        key_hash: f.bytes("keyHash")?,
        created_at: f.at("createdAt")?,
        telemetry,
    })
}

pub(crate) fn card_doc(card: &Card) -> Document {
    doc! { "adminId": key(card.admin_id), "uid": &card.uid, "userId": key(card.user_id), "boundAt": at(card.bound_at) }
}

pub(crate) fn card(doc: &Document) -> Result<Card, Failure> {
    let f = Fields::of(doc, "cards");
    Ok(Card {
        admin_id: f.parsed("adminId")?,
        uid: f.string("uid")?,
        user_id: f.parsed("userId")?,
        bound_at: f.at("boundAt")?,
    })
}

// --- sessions ---

pub(crate) fn session_doc(session: &Session) -> Document {
    doc! {
        "_id": session_key(session.id),
        "userId": key(session.user_id),
        "accessHash": bytes(&session.access_hash),
        "accessExpiresAt": at(session.access_expires_at),
        "refreshHash": opt_bytes(session.refresh_hash.as_deref()),
        "previousRefreshHash": opt_bytes(session.previous_refresh_hash.as_deref()),
        "refreshExpiresAt": opt_at(session.refresh_expires_at),
        "deviceName": opt_string(session.device_name.as_deref()),
        "createdAt": at(session.created_at),
        "revokedAt": opt_at(session.revoked_at),
    }
}

pub(crate) fn session(doc: &Document, kind: SessionKind) -> Result<Session, Failure> {
    let f = Fields::of(doc, crate::sessions_collection(kind));
    Ok(Session {
        id: SessionId(f.parsed::<Uuid>("_id")?),
        kind,
        user_id: f.parsed("userId")?,
        access_hash: f.bytes("accessHash")?,
        access_expires_at: f.at("accessExpiresAt")?,
        refresh_hash: f.opt_bytes("refreshHash")?,
        previous_refresh_hash: f.opt_bytes("previousRefreshHash")?,
        refresh_expires_at: f.opt_at("refreshExpiresAt")?,
        device_name: f.opt_string("deviceName")?,
        created_at: f.at("createdAt")?,
        revoked_at: f.opt_at("revokedAt")?,
    })
}

// --- the owner's terms and receipts ---

pub(crate) fn terms_doc(admin: AdminId, terms: &Terms) -> Document {
    doc! {
        "_id": key(admin),
        "maxRequestMinutes": terms.max_request_minutes,
        "pricePerHourTaka": terms.price_per_hour_taka.map_or(Bson::Null, Bson::Int64),
    }
}

pub(crate) fn terms(doc: &Document) -> Result<(AdminId, Terms), Failure> {
    let f = Fields::of(doc, "terms");
    Ok((
        f.parsed("_id")?,
        Terms { max_request_minutes: f.i64("maxRequestMinutes")?, price_per_hour_taka: f.opt_i64("pricePerHourTaka")? },
    ))
}

/// A receipt as stored, void or not (`voidedAt` and `voidedBy` only on a void one).
pub(crate) fn receipt_doc(receipt: &Receipt) -> Document {
    let mut doc = doc! {
        "_id": key(receipt.id),
        "adminId": key(receipt.admin_id),
        "userId": key(receipt.user_id),
        "at": at(receipt.at),
        "minutes": receipt.minutes,
        "cashTaka": receipt.cash_taka,
        "recordedBy": key(receipt.recorded_by),
        "priced": receipt.priced,
    };
    if let Some(void) = receipt.void {
        doc.insert("voidedAt", at(void.at));
        doc.insert("voidedBy", key(void.by));
    }
    doc
}

pub(crate) fn receipt(doc: &Document) -> Result<Receipt, Failure> {
    let f = Fields::of(doc, "receipts");
    Ok(Receipt {
        id: f.parsed("_id")?,
        admin_id: f.parsed("adminId")?,
        user_id: f.parsed("userId")?,
        at: f.at("at")?,
        minutes: f.i64("minutes")?,
        cash_taka: f.i64("cashTaka")?,
        recorded_by: f.parsed("recordedBy")?,
        // Receipts written before it was kept said typed cash.
        priced: f.opt_bool("priced")?.unwrap_or(false),
        void: match f.opt_at("voidedAt")? {
            Some(at) => Some(ReceiptVoid { at, by: f.parsed("voidedBy")? }),
            None => None,
        },
    })
}

/// A firmware release as stored in `firmware` (`_id` is the version; the bytes are beside it).
pub(crate) fn firmware_doc(release: &FirmwareRelease, data: &[u8]) -> Document {
    doc! {
        "_id": release.version.as_str(),
        "size": i64::from(release.size),
        "sha256": bytes(&release.sha256),
        "signature": bytes(&release.signature),
        "publishedAt": at(release.published_at),
        "rolloutPercent": i32::from(release.rollout.percent),
        "rolloutTenant": opt_key(release.rollout.tenant),
        "bytes": bytes(data),
    }
}

pub(crate) fn firmware_release(doc: &Document) -> Result<FirmwareRelease, Failure> {
    let f = Fields::of(doc, "firmware");
    let size = u32::try_from(f.i64("size")?).map_err(|_| f.bad("size", "it is out of range"))?;
    let percent = u8::try_from(f.i64("rolloutPercent")?).map_err(|_| f.bad("rolloutPercent", "it is out of range"))?;
    Ok(FirmwareRelease {
        version: f.string("_id")?,
        size,
        sha256: f.bytes("sha256")?.try_into().map_err(|_| f.bad("sha256", "it is not 32 bytes"))?,
        signature: f.bytes("signature")?.try_into().map_err(|_| f.bad("signature", "it is not 64 bytes"))?,
        published_at: f.at("publishedAt")?,
        rollout: Rollout { percent, tenant: f.opt_parsed("rolloutTenant")? },
    })
}
