//! Alerts: notifications, the outbox and alert profiles.
//!
//! Collections: `notifications` (one per person and notice), `notice_keys` (one document per
//! keyed notice: the guard that tells a lasting condition once), `outbox` (one per notification
//! until delivered or given up), `alert_profiles` (one per person, `_id` = their id, with the
//! number waiting to be confirmed in `pending`) and `phones`
//! (one document per phone number: the guard that gives a number to one person), `push_tokens`
//! (one document per Expo push token: the guard that gives a phone's token to one person, with
//! the mobile session that registered it, `sessionId`, when one did),
//! `push_tickets` (one per push Expo accepted, `_id` = Expo's ticket id, until its receipt is
//! read or it expires) and `taken_texts` (one per text the SMS webhook took, until its claim is
//! over).

use std::collections::{BTreeMap, BTreeSet};

use mongodb::{
    ClientSession, Collection, Database,
    bson::{Bson, Document, doc},
};
use pumppilot_engine::{Notice, Timestamp, UserId};
use pumppilot_store::{
    Admission, AlertProfile, Channel, Delivery, DueDelivery, KeptNotification, Notification, NotificationId,
    OutboxItem, PendingPhone, PushTicket, QuietHours, SendWindow, SessionId, StoreError, admit_one, facts_from_json,
    facts_to_json, muted_names, parse_muted,
};

use crate::{
    codec::{Fields, at, key, session_key},
    error::{Failure, duplicate_key, unreadable},
};

fn coll(db: &Database, name: &str) -> Collection<Document> {
    db.collection(name)
}

/// Writes one notice (a notification and its outbox item) in the caller's transaction; `None`
/// when its key is already stored.
pub(crate) async fn insert_notice(
    db: &Database,
    session: &mut ClientSession,
    notice: &Notice,
) -> Result<Option<Notification>, Failure> {
    let (notification, notification_doc, outbox_doc) = notice_docs(notice);
    if let Some(notice_key) = &notice.key {
        let keys = coll(db, "notice_keys");
        if keys.find_one(doc! { "_id": notice_key }).session(&mut *session).await?.is_some() {
            return Ok(None);
        }
        // Two writers of one key conflict on this document; the one retried sees the other's.
        keys.insert_one(doc! { "_id": notice_key, "notification": key(notification.id) })
            .session(&mut *session)
            .await?;
    }
    coll(db, "notifications").insert_one(notification_doc).session(&mut *session).await?;
    coll(db, "outbox").insert_one(outbox_doc).session(&mut *session).await?;
    Ok(Some(notification))
}

/// A notice's notification, and its documents in `notifications` and `outbox` (a notice without
/// a key is these two inserts and nothing else: a commit sends them with its other writes).
pub(crate) fn notice_docs(notice: &Notice) -> (Notification, Document, Document) {
    let notification = Notification::of(notice);
    let due = DueDelivery { at: notification.at, attempts: 0, delivered: BTreeSet::new() };
    let outbox = outbox_doc(notification.id, &due);
    let doc = notification_doc(&notification);
    (notification, doc, outbox)
}

/// The outbox document of a delivery still to come, claimed by no one.
fn outbox_doc(id: NotificationId, due: &DueDelivery) -> Document {
    doc! {
        "_id": key(id),
        "dueAt": at(due.at),
        "attempts": i64::from(due.attempts),
        "delivered": due.delivered.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "claimedBy": Bson::Null,
        "claimedUntil": Bson::Null,
        "doneAt": Bson::Null,
        "failedAt": Bson::Null,
        "lastError": Bson::Null,
    }
}

fn notification_doc(n: &Notification) -> Document {
    doc! {
        "_id": key(n.id),
        "userId": key(n.user_id),
        "adminId": key(n.admin_id),
        "kind": n.kind.as_str(),
        "at": at(n.at),
        "facts": facts_to_json(&n.facts),
        "read": n.read,
    }
}

pub(crate) fn notification(doc: &Document) -> Result<Notification, Failure> {
    let f = Fields::of(doc, "notifications");
    let facts = f.string("facts")?;
    Ok(Notification {
        id: f.parsed("_id")?,
        user_id: f.parsed("userId")?,
        admin_id: f.parsed("adminId")?,
        kind: f.named("kind")?,
        at: f.at("at")?,
        facts: facts_from_json(&facts).map_err(|e| unreadable(format!("notifications.facts cannot be read: {e}")))?,
        read: f.bool("read")?,
    })
}

fn strings(doc: &Document, collection: &str, field: &str) -> Result<Vec<String>, Failure> {
    let bad = || unreadable(format!("{collection}.{field} is not a list of strings"));
    match doc.get(field) {
        None | Some(Bson::Null) => Ok(Vec::new()),
        Some(Bson::Array(items)) => items.iter().map(|item| item.as_str().map(str::to_owned).ok_or_else(bad)).collect(),
        Some(_) => Err(bad()),
    }
}

/// The claim of one outbox document read with its notification.
pub(crate) fn outbox_item(outbox: &Document, notification_doc: &Document) -> Result<OutboxItem, Failure> {
    let due = due_delivery(outbox)?;
    Ok(OutboxItem { notification: notification(notification_doc)?, attempts: due.attempts, delivered: due.delivered })
}

/// Where the delivery of one outbox document stands.
fn due_delivery(outbox: &Document) -> Result<DueDelivery, Failure> {
    let f = Fields::of(outbox, "outbox");
    let delivered = strings(outbox, "outbox", "delivered")?
        .iter()
        .map(|c| Channel::parse(c).ok_or_else(|| unreadable(format!("outbox.delivered holds {c}"))))
        .collect::<Result<BTreeSet<_>, _>>()?;
    let attempts = u32::try_from(f.unsigned("attempts")?).unwrap_or(u32::MAX);
    Ok(DueDelivery { at: f.at("dueAt")?, attempts, delivered })
}

/// A notification as kept, from its document, its notice's key and its outbox document if its
/// delivery is still to come (for an export).
pub(crate) fn kept(
    doc: &Document,
    key: Option<String>,
    outbox: Option<&Document>,
) -> Result<KeptNotification, Failure> {
    Ok(KeptNotification { notification: notification(doc)?, key, due: outbox.map(due_delivery).transpose()? })
}

/// The filter of outbox documents whose delivery is still to come (neither done nor given up).
pub(crate) fn still_due() -> Document {
    doc! { "doneAt": Bson::Null, "failedAt": Bson::Null }
}

/// A kept notification's documents: in `notifications`, in `notice_keys` when it has a key, and in
/// `outbox` when its delivery is still to come (for an import).
pub(crate) fn kept_docs(kept: &KeptNotification) -> (Document, Option<Document>, Option<Document>) {
    let id = kept.notification.id;
    let guard = kept.key.as_ref().map(|notice_key| doc! { "_id": notice_key, "notification": key(id) });
    (notification_doc(&kept.notification), guard, kept.due.as_ref().map(|due| outbox_doc(id, due)))
}

/// The guard document that gives a profile's phone to its person (for an import).
pub(crate) fn phone_doc(profile: &AlertProfile) -> Option<Document> {
    profile.phone.as_ref().map(|phone| doc! { "_id": phone, "userId": key(profile.user_id) })
}

/// The filter of items due at `now` and free to claim.
pub(crate) fn claimable(now: Timestamp) -> Document {
    let mut filter = still_due();
    filter.insert("dueAt", doc! { "$lte": at(now) });
    filter.insert("$or", vec![doc! { "claimedUntil": Bson::Null }, doc! { "claimedUntil": { "$lte": at(now) } }]);
    filter
}

/// Claims due items in the caller's transaction: each is updated only if still claimable, so two
/// senders claiming at once conflict on it and the one retried no longer finds it.
pub(crate) async fn claim(
    db: &Database,
    session: &mut ClientSession,
    sender: &str,
    now: Timestamp,
    until: Timestamp,
    max: usize,
) -> Result<Vec<OutboxItem>, Failure> {
    let outbox = coll(db, "outbox");
    let due = outbox
        .find(claimable(now))
        .sort(doc! { "dueAt": 1, "_id": 1 })
        .limit(i64::try_from(max).unwrap_or(i64::MAX))
        .session(&mut *session)
        .await?;
    let due = crate::collect(due, session).await?;
    let mut items = Vec::new();
    for item in due {
        let id = item.get("_id").cloned().unwrap_or(Bson::Null);
        let mut filter = claimable(now);
        filter.insert("_id", id.clone());
        let claimed = outbox
            .update_one(filter, doc! { "$set": { "claimedBy": sender, "claimedUntil": at(until) } })
            .session(&mut *session)
            .await?;
        if claimed.modified_count == 0 {
            continue;
        }
        let Some(notification) =
            coll(db, "notifications").find_one(doc! { "_id": id.clone() }).session(&mut *session).await?
        else {
            return Err(unreadable(format!("outbox item {id} has no notification")));
        };
        items.push(outbox_item(&item, &notification)?);
    }
    Ok(items)
}

/// Claims one item whatever its due time (`Store::claim_outbox_item`): one conditional update,
/// so two senders never both hold it.
pub(crate) async fn claim_one(
    db: &Database,
    id: NotificationId,
    sender: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<Option<OutboxItem>, Failure> {
    let outbox = coll(db, "outbox");
    let mut open = still_due();
    open.insert("_id", key(id));
    let mut free = open.clone();
    free.insert(
        "$or",
        vec![
            doc! { "claimedBy": sender },
            doc! { "claimedUntil": Bson::Null },
            doc! { "claimedUntil": { "$lte": at(now) } },
        ],
    );
    let claim = doc! { "$set": { "claimedBy": sender, "claimedUntil": at(until) } };
    if outbox.update_one(free, claim).await?.matched_count == 0 {
        return match outbox.find_one(open).await? {
            Some(_) => Err(StoreError::ClaimLost.into()),
            None => Ok(None),
        };
    }
    let (Some(item), Some(notification)) = (
        outbox.find_one(doc! { "_id": key(id) }).await?,
        coll(db, "notifications").find_one(doc! { "_id": key(id) }).await?,
    ) else {
        return Err(unreadable(format!("outbox item {id} has no notification")));
    };
    outbox_item(&item, &notification).map(Some)
}

pub(crate) async fn finish(
    db: &Database,
    id: NotificationId,
    sender: &str,
    delivery: &Delivery,
) -> Result<(), Failure> {
    let filter = doc! { "_id": key(id), "claimedBy": sender, "doneAt": Bson::Null, "failedAt": Bson::Null };
    let release = doc! { "claimedBy": Bson::Null, "claimedUntil": Bson::Null };
    let update = match delivery {
        Delivery::Done { at: done } => {
            let mut set = release;
            set.insert("doneAt", at(*done));
            doc! { "$set": set }
        }
        Delivery::Retry { at: due, delivered, error } => {
            let mut set = release;
            set.insert("dueAt", at(*due));
            set.insert("delivered", delivered.iter().map(|c| c.as_str()).collect::<Vec<_>>());
            set.insert("lastError", error);
            doc! { "$set": set, "$inc": { "attempts": 1_i64 } }
        }
        Delivery::Defer { at: due, delivered } => {
            let mut set = release;
            set.insert("dueAt", at(*due));
            set.insert("delivered", delivered.iter().map(|c| c.as_str()).collect::<Vec<_>>());
            doc! { "$set": set }
        }
        Delivery::Failed { at: failed, error } => {
            let mut set = release;
            set.insert("failedAt", at(*failed));
            set.insert("lastError", error);
            doc! { "$set": set, "$inc": { "attempts": 1_i64 } }
        }
    };
    if coll(db, "outbox").update_one(filter, update).await?.matched_count == 0 {
        return Err(StoreError::ClaimLost.into());
    }
    Ok(())
}

pub(crate) fn profile_doc(profile: &AlertProfile) -> Document {
    doc! {
        "_id": key(profile.user_id),
        "phone": profile.phone.clone().map_or(Bson::Null, Bson::String),
        "pending": profile.pending_phone.as_ref().map_or(Bson::Null, |p| Bson::Document(doc! {
            "phone": &p.phone,
            "code": &p.code,
            "since": at(p.since),
            "wrongCodes": i64::from(p.wrong_codes),
        })),
        "pushTokens": profile.push_tokens.clone(),
        "pushSessions": push_sessions_doc(profile),
        "language": &profile.language,
        "muted": muted_names(&profile.muted),
        "quiet": profile.quiet_hours.map_or(Bson::Null, |q| Bson::Document(doc! {
            "from": i32::from(q.from_minute),
            "to": i32::from(q.to_minute),
            "utcOffset": i32::from(q.utc_offset_minutes),
        })),
    }
}

/// The session of each listed token that has one, as `{token, session}` documents (a token is no
/// field name: it is the user's to choose).
fn push_sessions_doc(profile: &AlertProfile) -> Vec<Document> {
    profile
        .push_tokens
        .iter()
        .filter_map(|token| profile.session_of(token).map(|id| doc! { "token": token, "session": session_key(id) }))
        .collect()
}

/// The sessions of a profile's listed tokens; none in a document written before they were kept.
fn push_sessions(doc: &Document, tokens: &[String]) -> Result<BTreeMap<String, SessionId>, Failure> {
    let items = match doc.get("pushSessions") {
        None | Some(Bson::Null) => return Ok(BTreeMap::new()),
        Some(Bson::Array(items)) => items,
        Some(_) => return Err(unreadable("alert_profiles.pushSessions is not a list")),
    };
    let mut sessions = BTreeMap::new();
    for item in items {
        let item = item.as_document().ok_or_else(|| unreadable("alert_profiles.pushSessions holds a non-document"))?;
        let f = Fields::of(item, "alert_profiles.pushSessions");
        let token = f.string("token")?;
        // A token taken out since (signed out, or gone from Expo) leaves its session behind.
        if tokens.contains(&token) {
            sessions.insert(token, SessionId(f.parsed("session")?));
        }
    }
    Ok(sessions)
}

pub(crate) fn profile(doc: &Document) -> Result<AlertProfile, Failure> {
    let f = Fields::of(doc, "alert_profiles");
    let muted = strings(doc, "alert_profiles", "muted")?;
    let muted = parse_muted(muted.iter().map(String::as_str))
        .map_err(|e| unreadable(format!("alert_profiles.muted cannot be read: {e}")))?;
    let quiet = match doc.get("quiet") {
        None | Some(Bson::Null) => None,
        Some(Bson::Document(q)) => {
            let q = Fields::of(q, "alert_profiles");
            let minute = |field| {
                u16::try_from(q.i64(field)?).map_err(|_| unreadable(format!("alert_profiles.quiet.{field} is off")))
            };
            Some(QuietHours {
                from_minute: minute("from")?,
                to_minute: minute("to")?,
                utc_offset_minutes: i16::try_from(q.i64("utcOffset")?)
                    .map_err(|_| unreadable("alert_profiles.quiet.utcOffset is off"))?,
            })
        }
        Some(_) => return Err(unreadable("alert_profiles.quiet is not a document")),
    };
    // Written before numbers were confirmed: no `pending`.
    let pending = match doc.get("pending") {
        None | Some(Bson::Null) => None,
        Some(Bson::Document(p)) => {
            let p = Fields::of(p, "alert_profiles.pending");
            // Written before wrong codes were counted: none.
            let wrong_codes = u32::try_from(p.opt_i64("wrongCodes")?.unwrap_or(0))
                .map_err(|_| unreadable("alert_profiles.pending.wrongCodes is off"))?;
            Some(PendingPhone {
                phone: p.string("phone")?,
                code: p.string("code")?,
                since: p.at("since")?,
                wrong_codes,
            })
        }
        Some(_) => return Err(unreadable("alert_profiles.pending is not a document")),
    };
    let push_tokens = strings(doc, "alert_profiles", "pushTokens")?;
    Ok(AlertProfile {
        user_id: f.parsed("_id")?,
        phone: f.opt_string("phone")?,
        pending_phone: pending,
        push_sessions: push_sessions(doc, &push_tokens)?,
        push_tokens,
        language: f.string("language")?,
        muted,
        quiet_hours: quiet,
    })
}

/// The guard document of a person's token, naming the session that registered it when one did.
fn token_guard(profile: &AlertProfile, token: &str) -> Document {
    let mut guard = doc! { "_id": token, "userId": key(profile.user_id) };
    if let Some(id) = profile.session_of(token) {
        guard.insert("sessionId", session_key(id));
    }
    guard
}

/// Writes a profile in the caller's transaction, moving its phone's guard document and its
/// tokens' guards; a token whose session ended meanwhile (the profile was read before) is not
/// written.
pub(crate) async fn set_profile(
    db: &Database,
    session: &mut ClientSession,
    profile: &AlertProfile,
) -> Result<(), Failure> {
    // Each session named must be live ([`touch_live_session`]).
    let mut live = BTreeSet::new();
    for id in profile.token_sessions() {
        if touch_live_session(db, session, id, None, None).await? {
            live.insert(id);
        }
    }
    let mut profile = profile.clone();
    profile.keep_tokens_of(&live);
    let profile = &profile;
    let user = key(profile.user_id);
    if !account_exists(db, session, profile.user_id).await? {
        return Err(StoreError::NotFound.into());
    }
    let phones = coll(db, "phones");
    if let Some(phone) = &profile.phone {
        let holder = phones.find_one(doc! { "_id": phone }).session(&mut *session).await?;
        match holder.as_ref().map(|h| h.get("userId")) {
            Some(Some(holder)) if *holder != user => return Err(StoreError::PhoneTaken.into()),
            Some(_) => {}
            None => {
                phones.insert_one(doc! { "_id": phone, "userId": user.clone() }).session(&mut *session).await?;
            }
        }
    }
    let mut stale = doc! { "userId": user.clone() };
    if let Some(phone) = &profile.phone {
        stale.insert("_id", doc! { "$ne": phone });
    }
    phones.delete_many(stale).session(&mut *session).await?;
    place_tokens(db, session, profile, &profile.push_tokens).await?;
    coll(db, "alert_profiles")
        .update_one(doc! { "_id": user }, vec![doc! { "$replaceWith": stored_doc(profile) }])
        .upsert(true)
        .session(&mut *session)
        .await?;
    Ok(())
}

/// Writes a profile made from `read` (`Store::set_alert_profile`) in the caller's transaction,
/// only while the stored one is still `read` but for its wrong-code count
/// ([`AlertProfile::unchanged_since`]), else `VersionConflict` and nothing is written. The
/// comparison reads the transaction's snapshot, and [`set_profile`] writes the profile's
/// document: a write of it committed since conflicts, and the transaction, retried, compares
/// afresh.
pub(crate) async fn set_profile_read(
    db: &Database,
    session: &mut ClientSession,
    profile: &AlertProfile,
    read: Option<&AlertProfile>,
) -> Result<(), Failure> {
    let stored =
        coll(db, "alert_profiles").find_one(doc! { "_id": key(profile.user_id) }).session(&mut *session).await?;
    let stored = stored.as_ref().map(self::profile).transpose()?;
    if !AlertProfile::unchanged_since(stored.as_ref(), read) {
        return Err(StoreError::VersionConflict.into());
    }
    set_profile(db, session, profile).await
}

/// Whether mobile session `id` (of `owner`, when named) is live (not revoked; at `now`, when
/// given, its last token unexpired too), touching its document in the caller's transaction when it
/// is: a revocation or a purge of it running at the same time writes that document too, so one of
/// the two transactions is retried and sees the other. A check alone would not do: under snapshot
/// isolation both could commit, the revocation never seeing the token this transaction gives the
/// session, which would then outlive it.
async fn touch_live_session(
    db: &Database,
    session: &mut ClientSession,
    id: SessionId,
    owner: Option<UserId>,
    now: Option<Timestamp>,
) -> Result<bool, Failure> {
    let mut filter = doc! { "_id": session_key(id), "revokedAt": Bson::Null };
    if let Some(owner) = owner {
        filter.insert("userId", key(owner));
    }
    if let Some(now) = now {
        // A mobile session lives until its refresh token expires (its access token expires first,
        // and every mobile session has one). A plain field, not an `$or`: a filter of `_id` and
        // fields is one document's look-up, where a top-level operator sent SecantusDB through
        // every index.
        filter.insert("refreshExpiresAt", doc! { "$gt": at(now) });
    }
    // Two phones registering at once can touch one session; the later write is a conflict, which
    // SecantusDB reports as a duplicate of the session's own access hash.
    let touched = coll(db, crate::sessions_collection(pumppilot_store::SessionKind::Mobile))
        .update_one(filter, doc! { "$inc": { "tokenWrites": 1_i64 } })
        .session(&mut *session)
        .await
        .map_err(crate::error::conflict_if_duplicate)?;
    Ok(touched.matched_count > 0)
}

/// Puts `placed`, push tokens of the profile's, in place, in the caller's transaction: a phone's
/// token is one person's, so each leaves whoever else had it (from their `pushTokens` and
/// `pushSessions`) and its guard document names this person (and the session that registered
/// it); this person's guards of tokens the profile no longer lists go. Two people taking the same
/// token at once write its guard document, so one of them is retried and sees the other.
async fn place_tokens(
    db: &Database,
    session: &mut ClientSession,
    profile: &AlertProfile,
    placed: &[String],
) -> Result<(), Failure> {
    let (user, tokens) = (key(profile.user_id), placed);
    let guards = coll(db, "push_tokens");
    if !tokens.is_empty() {
        coll(db, "alert_profiles")
            .update_many(
                doc! { "_id": { "$ne": user.clone() }, "pushTokens": { "$in": tokens } },
                doc! { "$pull": { "pushTokens": { "$in": tokens }, "pushSessions": { "token": { "$in": tokens } } } },
            )
            .session(&mut *session)
            .await?;
        for token in tokens {
            guards
                .replace_one(doc! { "_id": token }, token_guard(profile, token))
                .upsert(true)
                .session(&mut *session)
                .await?;
        }
    }
    guards.delete_many(doc! { "userId": user, "_id": { "$nin": &profile.push_tokens } }).session(&mut *session).await?;
    Ok(())
}

/// Whether `user` has an account (an admin's or a user's), read in the caller's transaction.
async fn account_exists(db: &Database, session: &mut ClientSession, user: UserId) -> Result<bool, Failure> {
    for collection in ["admins", "users"] {
        if coll(db, collection).find_one(doc! { "_id": key(user) }).session(&mut *session).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Registers a push token with a mobile session of `user`'s live at `now` (not revoked, its last
/// token unexpired: `Store::register_push_token`) in the caller's transaction, writing the profile's `pushTokens` and `pushSessions` alone (a number
/// confirmed or a wrong code counted is left as it is; a profile written meanwhile conflicts with
/// this write, and the one retried reads the other's), and the tokens' guard documents. A person
/// without a profile gets the empty one with the token.
pub(crate) async fn register_push_token(
    db: &Database,
    session: &mut ClientSession,
    user: UserId,
    token: &str,
    registered_by: SessionId,
    keep: usize,
    now: Timestamp,
) -> Result<(), Failure> {
    if !touch_live_session(db, session, registered_by, Some(user), Some(now)).await? {
        return Err(StoreError::NotFound.into());
    }
    let profiles = coll(db, "alert_profiles");
    let mut profile = match profiles.find_one(doc! { "_id": key(user) }).session(&mut *session).await? {
        Some(stored) => profile(&stored)?,
        None if account_exists(db, session, user).await? => AlertProfile::empty(user),
        None => return Err(StoreError::NotFound.into()),
    };
    profile.register_token(token, registered_by, keep);
    place_tokens(db, session, &profile, &[token.to_owned()]).await?;
    let mut rest = profile_doc(&profile);
    let mut tokens = Document::new();
    for field in ["pushTokens", "pushSessions"] {
        tokens.insert(field, rest.remove(field).unwrap_or(Bson::Null));
    }
    rest.remove("_id");
    // The rest of the document is written only when it is made here (the empty profile's).
    profiles
        .update_one(doc! { "_id": key(user) }, doc! { "$set": tokens, "$setOnInsert": rest })
        .upsert(true)
        .session(&mut *session)
        .await?;
    Ok(())
}

/// The document [`set_profile`] stores, as an update pipeline's expression over the stored one:
/// `profile` as it is, except that the same number waiting as stored (the same number, code and
/// time set) keeps the larger of the stored and the written wrong-code count, in this one
/// document write. A profile read before a wrong code was counted cannot take it back, nor bring
/// back a number dropped meanwhile. Written values are `$literal`: a string of the person's that
/// starts with `$` stays a string.
fn stored_doc(profile: &AlertProfile) -> Document {
    let written = profile_doc(profile);
    let Some(pending) = &profile.pending_phone else { return doc! { "$literal": written } };
    let written_pending = doc! { "$literal": written.get("pending").cloned().unwrap_or(Bson::Null) };
    let same_wait = doc! { "$and": [
        { "$eq": ["$pending.phone", { "$literal": &pending.phone }] },
        { "$eq": ["$pending.code", { "$literal": &pending.code }] },
        { "$eq": ["$pending.since", at(pending.since)] },
    ] };
    // `$max` passes over a count missing from a profile written before wrong codes were counted.
    let kept = doc! { "wrongCodes": { "$max": ["$pending.wrongCodes", i64::from(pending.wrong_codes)] } };
    doc! { "$mergeObjects": [
        { "$literal": written },
        { "pending": { "$cond": {
            "if": same_wait,
            "then": { "$mergeObjects": [written_pending.clone(), kept] },
            "else": written_pending,
        } } },
    ] }
}

/// Takes the push tokens these (mobile) sessions registered out of their profiles, with their
/// guard documents, in the caller's transaction: the one that ends the sessions. Its reads are of
/// its snapshot; a profile write giving one of them a token at the same time conflicts with it
/// on the session's document ([`set_profile`]).
pub(crate) async fn forget_tokens_of(
    db: &Database,
    session: &mut ClientSession,
    sessions: &[SessionId],
) -> Result<(), Failure> {
    let guards = coll(db, "push_tokens");
    for batch in sessions.chunks(crate::IDS_PER_QUERY) {
        let ids: Vec<Bson> = batch.iter().map(|id| session_key(*id)).collect();
        let cursor = guards.find(doc! { "sessionId": { "$in": ids.clone() } }).session(&mut *session).await?;
        let mut held: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for doc in crate::collect(cursor, session).await? {
            let f = Fields::of(&doc, "push_tokens");
            held.entry(f.string("userId")?).or_default().push(f.string("_id")?);
        }
        for (user, tokens) in held {
            let pull = doc! {
                "pushTokens": { "$in": tokens.clone() },
                "pushSessions": { "token": { "$in": tokens } },
            };
            coll(db, "alert_profiles")
                .update_one(doc! { "_id": user }, doc! { "$pull": pull })
                .session(&mut *session)
                .await?;
        }
        guards.delete_many(doc! { "sessionId": { "$in": ids } }).session(&mut *session).await?;
    }
    Ok(())
}

/// Takes one push token out of a person's profile, with its guard document, in the caller's
/// transaction; whether it was theirs.
pub(crate) async fn remove_push_token(
    db: &Database,
    session: &mut ClientSession,
    user: UserId,
    token: &str,
) -> Result<bool, Failure> {
    let removed = coll(db, "alert_profiles")
        .update_one(
            doc! { "_id": key(user), "pushTokens": token },
            doc! { "$pull": { "pushTokens": token, "pushSessions": { "token": token } } },
        )
        .session(&mut *session)
        .await?;
    coll(db, "push_tokens").delete_one(doc! { "_id": token, "userId": key(user) }).session(&mut *session).await?;
    Ok(removed.modified_count > 0)
}

/// Gives the push tokens profiles listed before tokens were one person's their guard documents,
/// once, when `push_tokens` is made: a token several profiles list cannot say whose phone it is
/// now, so none keeps it (that phone's holder turns notifications on again), as SQLite's
/// migration 0017 does. Servers starting at once may both do it: each step may be done twice.
pub(crate) async fn adopt_push_tokens(db: &Database) -> Result<(), Failure> {
    let profiles = coll(db, "alert_profiles");
    let mut cursor = profiles.find(doc! {}).projection(doc! { "_id": 1, "pushTokens": 1 }).await?;
    let mut holders: std::collections::HashMap<String, Vec<Bson>> = std::collections::HashMap::new();
    while cursor.advance().await? {
        let doc: Document = cursor.deserialize_current()?;
        let user = doc.get("_id").cloned().unwrap_or(Bson::Null);
        for token in strings(&doc, "alert_profiles", "pushTokens")? {
            let listed = holders.entry(token).or_default();
            if !listed.contains(&user) {
                listed.push(user.clone());
            }
        }
    }
    for (token, users) in holders {
        if users.len() > 1 {
            profiles.update_many(doc! { "pushTokens": &token }, doc! { "$pull": { "pushTokens": &token } }).await?;
            continue;
        }
        let guard = doc! { "_id": &token, "userId": users[0].clone() };
        match coll(db, "push_tokens").insert_one(guard).await {
            Ok(_) => {}
            Err(e) if duplicate_key(&e).is_some() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The guard documents of the tokens each profile of an import lists, one per token. A token
/// several profiles list (a backup made before tokens were one person's) stays with the last,
/// as writing the profiles one after another would leave it: the others are written without it.
pub(crate) fn token_guards(profiles: &mut [AlertProfile]) -> Vec<Document> {
    let mut holder = std::collections::HashMap::new();
    for (index, profile) in profiles.iter().enumerate() {
        for token in &profile.push_tokens {
            holder.insert(token.clone(), index);
        }
    }
    for (index, profile) in profiles.iter_mut().enumerate() {
        profile.push_tokens.retain(|token| holder.get(token) == Some(&index));
    }
    // One token listed twice by the same profile: one guard.
    let mut seen = std::collections::HashSet::new();
    profiles
        .iter()
        .flat_map(|p| p.push_tokens.iter().map(move |token| (token, p)))
        .filter(|(token, _)| seen.insert(token.as_str()))
        .map(|(token, profile)| token_guard(profile, token))
        .collect()
}

/// Moves a person's pending number to their phone in the caller's transaction, only while it is
/// still the one read (a number replaced or confirmed meanwhile is a conflict); the phone's guard
/// document moves as [`set_profile`] moves it, refusing a number another person has.
pub(crate) async fn confirm_phone(
    db: &Database,
    session: &mut ClientSession,
    user: UserId,
    pending: &PendingPhone,
) -> Result<(), Failure> {
    let stored = coll(db, "alert_profiles").find_one(doc! { "_id": key(user) }).session(&mut *session).await?;
    let mut profile = match stored.as_ref().map(profile).transpose()? {
        Some(profile) if profile.pending_phone.as_ref().is_some_and(|p| p.is_same_wait(pending) && !p.dropped()) => {
            profile
        }
        _ => return Err(StoreError::VersionConflict.into()),
    };
    profile.phone = profile.pending_phone.take().map(|p| p.phone);
    set_profile(db, session, &profile).await
}

/// A person's notifications filter.
pub(crate) fn of_user(user: UserId) -> Document {
    doc! { "userId": key(user) }
}

/// Counts a send in every window, or in none, in the caller's transaction: two servers counting
/// at once write the same window document, so one of them is retried and sees the other's count.
pub(crate) async fn admit(
    db: &Database,
    session: &mut ClientSession,
    windows: &[SendWindow],
    now: Timestamp,
) -> Result<Admission, Failure> {
    let collection = coll(db, "send_windows");
    let mut counted = Vec::with_capacity(windows.len());
    let mut full_until: Option<Timestamp> = None;
    for window in windows {
        let stored = collection.find_one(doc! { "_id": &window.key }).session(&mut *session).await?;
        let stored = match stored {
            None => None,
            Some(doc) => {
                let f = Fields::of(&doc, "send_windows");
                let count = u32::try_from(f.unsigned("count")?).unwrap_or(u32::MAX);
                Some((f.at("start")?, count))
            }
        };
        match admit_one(window, stored, now) {
            Ok(next) => counted.push((window, next)),
            Err(until) => full_until = Some(full_until.map_or(until, |u| u.max(until))),
        }
    }
    if let Some(until) = full_until {
        return Ok(Admission::Full { until });
    }
    for (window, (start, count)) in counted {
        collection
            .replace_one(
                doc! { "_id": &window.key },
                doc! {
                    "_id": &window.key,
                    "start": at(start),
                    "count": i64::from(count),
                    "expiresAt": at(start + window.span_ms),
                },
            )
            .upsert(true)
            .session(&mut *session)
            .await?;
    }
    Ok(Admission::Admitted)
}

/// Deletes notifications read before `read_before` and all from before `all_before`, with their
/// outbox items and keys, in the caller's transaction.
pub(crate) async fn purge(
    db: &Database,
    session: &mut ClientSession,
    read_before: Timestamp,
    all_before: Timestamp,
) -> Result<u64, Failure> {
    let old = doc! { "$or": [
        { "at": { "$lt": at(all_before) } },
        { "read": true, "at": { "$lt": at(read_before) } },
    ] };
    let notifications = coll(db, "notifications");
    let cursor = notifications.find(old).projection(doc! { "_id": 1 }).session(&mut *session).await?;
    let ids: Vec<Bson> =
        crate::collect(cursor, session).await?.into_iter().filter_map(|doc| doc.get("_id").cloned()).collect();
    let mut deleted = 0;
    for chunk in ids.chunks(crate::IDS_PER_QUERY) {
        let chunk = chunk.to_vec();
        coll(db, "outbox").delete_many(doc! { "_id": { "$in": chunk.clone() } }).session(&mut *session).await?;
        coll(db, "notice_keys")
            .delete_many(doc! { "notification": { "$in": chunk.clone() } })
            .session(&mut *session)
            .await?;
        deleted +=
            notifications.delete_many(doc! { "_id": { "$in": chunk } }).session(&mut *session).await?.deleted_count;
    }
    Ok(deleted)
}

fn ticket_doc(t: &PushTicket) -> Document {
    doc! {
        "_id": &t.id,
        "userId": key(t.user),
        "token": &t.token,
        "sentAt": at(t.sent_at),
        "askAt": at(t.ask_at),
        "expiresAt": at(t.expires_at),
    }
}

fn ticket(doc: &Document) -> Result<PushTicket, Failure> {
    let f = Fields::of(doc, "push_tickets");
    Ok(PushTicket {
        id: f.string("_id")?,
        user: f.parsed("userId")?,
        token: f.string("token")?,
        sent_at: f.at("sentAt")?,
        ask_at: f.at("askAt")?,
        expires_at: f.at("expiresAt")?,
    })
}

/// Each ticket inserted once (a push carries one per phone of one person: a few).
pub(crate) async fn add_tickets(db: &Database, tickets: &[PushTicket]) -> Result<(), Failure> {
    for t in tickets {
        match coll(db, "push_tickets").insert_one(ticket_doc(t)).await {
            Ok(_) => {}
            Err(e) if duplicate_key(&e).is_some() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The filter of tickets whose receipts are due at `now`.
pub(crate) fn tickets_due(now: Timestamp) -> Document {
    doc! { "askAt": { "$lte": at(now) }, "expiresAt": { "$gt": at(now) } }
}

/// Claims due tickets in the caller's transaction: their `askAt` moves to `until` only where it
/// is still due, so two senders claiming at once conflict and the one retried finds others.
pub(crate) async fn claim_tickets(
    db: &Database,
    session: &mut ClientSession,
    now: Timestamp,
    until: Timestamp,
    max: usize,
) -> Result<Vec<PushTicket>, Failure> {
    let tickets = coll(db, "push_tickets");
    let due = tickets
        .find(tickets_due(now))
        .sort(doc! { "askAt": 1, "_id": 1 })
        .limit(i64::try_from(max).unwrap_or(i64::MAX))
        .session(&mut *session)
        .await?;
    let due = crate::collect(due, session).await?.iter().map(ticket).collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<&str> = due.iter().map(|t| t.id.as_str()).collect();
    for chunk in ids.chunks(crate::IDS_PER_QUERY) {
        tickets
            .update_many(
                doc! { "_id": { "$in": chunk }, "askAt": { "$lte": at(now) } },
                doc! { "$set": { "askAt": at(until) } },
            )
            .session(&mut *session)
            .await?;
    }
    Ok(due)
}

/// Deletes the tickets read and moves those asked for again, `IDS_PER_QUERY` at a time.
pub(crate) async fn settle_tickets(
    db: &Database,
    read: &[String],
    again: &[String],
    ask_at: Timestamp,
) -> Result<(), Failure> {
    let tickets = coll(db, "push_tickets");
    for chunk in read.chunks(crate::IDS_PER_QUERY) {
        tickets.delete_many(doc! { "_id": { "$in": chunk } }).await?;
    }
    for chunk in again.chunks(crate::IDS_PER_QUERY) {
        tickets.update_many(doc! { "_id": { "$in": chunk } }, doc! { "$set": { "askAt": at(ask_at) } }).await?;
    }
    Ok(())
}

/// Settles the notification with `notice_key`, if there is one, in the caller's transaction:
/// read, and its delivery done at `done` if it had not gone yet (also one a sender holds: its
/// finish then finds the item done, and sends nothing more of it).
pub(crate) async fn settle(
    db: &Database,
    session: &mut ClientSession,
    notice_key: &str,
    done: Timestamp,
) -> Result<(), Failure> {
    let Some(guard) = coll(db, "notice_keys").find_one(doc! { "_id": notice_key }).session(&mut *session).await? else {
        return Ok(());
    };
    let Some(id) = guard.get("notification").cloned() else {
        return Err(unreadable(format!("notice_keys.{notice_key} names no notification")));
    };
    coll(db, "notifications")
        .update_one(doc! { "_id": id.clone(), "read": false }, doc! { "$set": { "read": true } })
        .session(&mut *session)
        .await?;
    let mut unsent = still_due();
    unsent.insert("_id", id);
    let done = doc! { "$set": { "doneAt": at(done), "claimedBy": Bson::Null, "claimedUntil": Bson::Null } };
    coll(db, "outbox").update_one(unsent, done).session(&mut *session).await?;
    Ok(())
}
