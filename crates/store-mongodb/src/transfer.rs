//! Moving an installation: everything out, records in exactly as they are.
//!
//! A migration fills a store nothing else uses, so the writes are plain bulk inserts; the
//! migration verifies what landed afterwards.

use std::collections::HashMap;

use mongodb::bson::{Bson, Document, doc};
use pumppilot_engine::AdminId;
use pumppilot_store::{KeptNotification, Role, SessionKind, Snapshot, Store, StoreError};

use crate::{
    MongoStore, alerts, codec,
    codec::key,
    error::{Failure, invariant},
    sessions_collection, tenants,
};

/// Every collection that holds PumpPilot's data (not `meta`), the short-lived counts and the
/// servers' heartbeats too.
const DATA: [&str; 29] = [
    "firmware_downloads",
    "push_tickets",
    "push_tokens",
    "taken_texts",
    "outbox",
    "notifications",
    "notice_keys",
    "alert_profiles",
    "phones",
    "usernames",
    "admins",
    "users",
    "tenants",
    "queues",
    "usage_history",
    "ledger",
    "minute_requests",
    "web_sessions",
    "mobile_sessions",
    "devices",
    "cards",
    "audit_logs",
    "terms",
    "receipts",
    "firmware",
    "send_windows",
    "login_failures",
    "card_taps",
    "servers",
];

impl MongoStore {
    pub(crate) async fn export_all(&self) -> Result<Snapshot, Failure> {
        let by_age = doc! { "createdAt": 1, "_id": 1 };
        let mut snapshot = Snapshot::default();
        for collection in ["admins", "users"] {
            for doc in self.find_all(collection, doc! {}, by_age.clone(), None).await? {
                snapshot.accounts.push(codec::account(&doc, collection)?);
            }
        }
        let ended = doc! { "status": { "$in": ["COMPLETED", "CANCELLED"] } };
        for doc in self.find_all("queues", ended, by_age.clone(), None).await? {
            snapshot.ended_entries.push(codec::entry(&doc)?);
        }
        for doc in self.find_all("ledger", doc! {}, doc! { "at": 1, "_id": 1 }, None).await? {
            snapshot.ledger.push(codec::ledger_entry(&doc)?);
        }
        for doc in self.find_all("usage_history", doc! {}, doc! { "endedAt": 1, "_id": 1 }, None).await? {
            snapshot.usage.push(codec::usage_row(&doc)?);
        }
        for doc in self.find_all("audit_logs", doc! {}, doc! { "at": 1, "_id": 1 }, None).await? {
            snapshot.audit.push(codec::audit_entry(&doc)?);
        }
        for doc in self.find_all("minute_requests", doc! {}, by_age.clone(), None).await? {
            snapshot.minute_requests.push(codec::minute_request(&doc)?);
        }
        for kind in [SessionKind::Web, SessionKind::Mobile] {
            for doc in self.find_all(sessions_collection(kind), doc! {}, by_age.clone(), None).await? {
                snapshot.sessions.push(codec::session(&doc, kind)?);
            }
        }
        for doc in self.find_all("devices", doc! {}, by_age, None).await? {
            snapshot.devices.push(codec::device(&doc)?);
            let number = |field: &str| match doc.get(field) {
                Some(Bson::Int64(n)) => *n,
                Some(Bson::Int32(n)) => i64::from(*n),
                _ => 0,
            };
            let highest = u64::try_from(number("linkHighest")).unwrap_or(0);
            if highest > 0 {
                let id = snapshot.devices.last().map(|d| d.id).ok_or_else(|| invariant("a device vanished"))?;
                snapshot.device_links.push((id, highest));
            }
        }
        for doc in self.find_all("firmware", doc! {}, doc! { "publishedAt": 1, "_id": 1 }, None).await? {
            let data = codec::Fields::of(&doc, "firmware").bytes("bytes")?;
            snapshot.firmware.push((codec::firmware_release(&doc)?, data));
        }
        for doc in self.find_all("cards", doc! {}, doc! { "boundAt": 1, "uid": 1 }, None).await? {
            snapshot.cards.push(codec::card(&doc)?);
        }
        for doc in self.find_all("terms", doc! {}, doc! { "_id": 1 }, None).await? {
            snapshot.terms.push(codec::terms(&doc)?);
        }
        for doc in self.find_all("receipts", doc! {}, doc! { "at": 1, "_id": 1 }, None).await? {
            snapshot.receipts.push(codec::receipt(&doc)?);
        }
        for doc in self.find_all("alert_profiles", doc! {}, doc! { "_id": 1 }, None).await? {
            snapshot.alert_profiles.push(alerts::profile(&doc)?);
        }
        snapshot.notifications = self.export_notifications().await?;
        let ids: Vec<AdminId> = self.tenant_ids().await?;
        for admin in ids {
            if let Some(tenant) = self.load_tenant(admin, 0).await? {
                snapshot.tenants.push(tenant);
            }
        }
        Ok(snapshot)
    }

    /// Every notification, oldest first, with its notice's key and its delivery still to come.
    async fn export_notifications(&self) -> Result<Vec<KeptNotification>, Failure> {
        let id = |doc: &Document, field: &str| doc.get_str(field).map(str::to_owned).unwrap_or_default();
        let mut keys = HashMap::new();
        for doc in self.find_all("notice_keys", doc! {}, doc! { "_id": 1 }, None).await? {
            keys.insert(id(&doc, "notification"), id(&doc, "_id"));
        }
        let mut due = HashMap::new();
        for doc in self.find_all("outbox", alerts::still_due(), doc! { "_id": 1 }, None).await? {
            due.insert(id(&doc, "_id"), doc);
        }
        let mut kept = Vec::new();
        for doc in self.find_all("notifications", doc! {}, doc! { "at": 1, "_id": 1 }, None).await? {
            let this = id(&doc, "_id");
            kept.push(alerts::kept(&doc, keys.remove(&this), due.get(&this))?);
        }
        Ok(kept)
    }

    async fn insert(&self, collection: &str, docs: Vec<Document>) -> Result<(), Failure> {
        if !docs.is_empty() {
            self.collection(collection).insert_many(docs).await?;
        }
        Ok(())
    }

    pub(crate) async fn import_part(&self, part: &Snapshot) -> Result<(), Failure> {
        let mut names = Vec::new();
        let (mut admins, mut users, mut new_tenants) = (Vec::new(), Vec::new(), Vec::new());
        // A tenant whose admin comes in the same part is written whole with the admin's new
        // tenant document (one insert for all of them, not an update each: a fleet of 100,000
        // imported in chunks); the others update the document their admin's import made.
        let mut states = std::collections::HashMap::new();
        for tenant in &part.tenants {
            states.insert(tenant.admin_id, tenant_fields(tenant)?);
        }
        for account in &part.accounts {
            names.push(doc! { "_id": &account.username, "accountId": key(account.id) });
            let mut doc = codec::account_doc(account);
            match account.role {
                Role::User => {
                    doc.insert("balanceSeconds", 0_i64);
                    users.push(doc);
                }
                Role::Admin => {
                    let admin = AdminId(account.id);
                    let mut tenant = tenants::new_tenant_doc(admin);
                    if let Some(fields) = states.remove(&admin) {
                        tenant.extend(fields);
                    }
                    new_tenants.push(tenant);
                    admins.push(doc);
                }
                Role::Master => admins.push(doc),
            }
        }
        self.insert("usernames", names).await?;
        self.insert("admins", admins).await?;
        self.insert("users", users).await?;
        self.insert("tenants", new_tenants).await?;
        for tenant in &part.tenants {
            if let Some(fields) = states.remove(&tenant.admin_id) {
                let set = doc! { "$set": fields };
                let result = self.collection("tenants").update_one(doc! { "_id": key(tenant.admin_id) }, set).await?;
                if result.matched_count == 0 {
                    return Err(
                        StoreError::Invariant(format!("tenant {} has no admin account", tenant.admin_id)).into()
                    );
                }
            }
            let mut live: Vec<Document> = tenant.active.iter().map(|entry| codec::entry_doc(entry, None)).collect();
            live.extend(
                (1_i64..).zip(&tenant.waiting).map(|(position, entry)| codec::entry_doc(entry, Some(position))),
            );
            self.insert("queues", live).await?;
            for (user, balance) in &tenant.wallets {
                self.collection("users")
                    .update_one(
                        doc! { "_id": key(*user), "adminId": key(tenant.admin_id) },
                        doc! { "$set": { "balanceSeconds": *balance } },
                    )
                    .await?;
            }
        }
        if let Some(entry) = part.ended_entries.iter().find(|entry| entry.status.is_live()) {
            return Err(invariant(format!("queue entry {} has not ended", entry.id)));
        }
        self.insert("queues", part.ended_entries.iter().map(|entry| codec::entry_doc(entry, None)).collect()).await?;
        self.insert("ledger", part.ledger.iter().map(codec::ledger_doc).collect()).await?;
        self.insert("usage_history", part.usage.iter().map(codec::usage_doc).collect()).await?;
        self.insert("audit_logs", part.audit.iter().map(codec::audit_doc).collect()).await?;
        self.insert("minute_requests", part.minute_requests.iter().map(codec::request_doc).collect()).await?;
        for kind in [SessionKind::Web, SessionKind::Mobile] {
            let docs = part.sessions.iter().filter(|s| s.kind == kind).map(codec::session_doc).collect();
            self.insert(sessions_collection(kind), docs).await?;
        }
        let devices = part.devices.iter().map(codec::device_doc).collect::<Result<Vec<_>, _>>()?;
        self.insert("devices", devices).await?;
        self.insert("cards", part.cards.iter().map(codec::card_doc).collect()).await?;
        self.insert("terms", part.terms.iter().map(|(admin, terms)| codec::terms_doc(*admin, terms)).collect()).await?;
        self.insert("receipts", part.receipts.iter().map(codec::receipt_doc).collect()).await?;
        for (device, floor) in &part.device_links {
            let highest = i64::try_from(*floor).map_err(|_| invariant("a link counter is too large to store"))?;
            let set = doc! { "linkHighest": highest };
            let result =
                self.collection("devices").update_one(doc! { "_id": key(*device) }, doc! { "$set": set }).await?;
            if result.matched_count == 0 {
                return Err(invariant(format!("link counters of device {device}, which is not there")));
            }
        }
        self.insert(
            "firmware",
            part.firmware.iter().map(|(release, data)| codec::firmware_doc(release, data)).collect(),
        )
        .await?;
        let mut profiles = part.alert_profiles.clone();
        let token_guards = alerts::token_guards(&mut profiles);
        self.insert("phones", profiles.iter().filter_map(alerts::phone_doc).collect()).await?;
        self.insert("push_tokens", token_guards).await?;
        self.insert("alert_profiles", profiles.iter().map(alerts::profile_doc).collect()).await?;
        let (mut notifications, mut guards, mut outbox) = (Vec::new(), Vec::new(), Vec::new());
        for kept in &part.notifications {
            let (notification, guard, due) = alerts::kept_docs(kept);
            notifications.push(notification);
            guards.extend(guard);
            outbox.extend(due);
        }
        self.insert("notice_keys", guards).await?;
        self.insert("notifications", notifications).await?;
        self.insert("outbox", outbox).await?;
        Ok(())
    }

    pub(crate) async fn erase_all(&self) -> Result<(), Failure> {
        for collection in DATA {
            self.collection(collection).delete_many(doc! {}).await?;
        }
        Ok(())
    }
}

/// A tenant's own fields as imported (over its admin's new tenant document).
fn tenant_fields(tenant: &pumppilot_engine::Tenant) -> Result<Document, Failure> {
    let mut fields = doc! {
        "version": i64::try_from(tenant.version).map_err(|_| invariant("version too large"))?,
        "suspended": tenant.suspended,
        "seq": i64::try_from(tenant.seq).map_err(|_| invariant("seq too large"))?,
        "lastPollAt": codec::opt_at(tenant.device.last_poll_at),
        "loadShedding": tenant.device.load_shedding,
        "ready": tenant.device.ready,
        "relay": tenant.device.relay,
    };
    fields.extend(tenants::motor_fields(tenant));
    Ok(fields)
}
