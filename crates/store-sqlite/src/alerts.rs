//! Alerts: notifications, the outbox and alert profiles.

use std::collections::{BTreeMap, BTreeSet};

use pumppilot_engine::{Notice, Timestamp, UserId};
use pumppilot_store::{
    Admission, AlertProfile, Channel, Delivery, DueDelivery, KeptNotification, Notification, NotificationId,
    OutboxItem, PendingPhone, PushTicket, QuietHours, SendWindow, SessionId, StoreError, admit_one, facts_from_json,
    facts_to_json, muted_names, parse_muted,
};
use rusqlite::{Connection, Row, TransactionBehavior, named_params};

use crate::{
    error::{Failure, constraint_message},
    rows::{RowExt, bad_value, limit, query_all, query_opt, session_key},
};

/// Writes one notice as a notification and its outbox item; `None` when its key is already stored.
pub(crate) fn insert_notice(conn: &Connection, notice: &Notice) -> Result<Option<Notification>, Failure> {
    let notification = Notification::of(notice);
    let due = DueDelivery { at: notification.at, attempts: 0, delivered: BTreeSet::new() };
    let kept = KeptNotification { notification, key: notice.key.clone(), due: Some(due) };
    Ok(insert_kept(conn, &kept)?.then_some(kept.notification))
}

/// Notices from outside a tenant commit, in one transaction.
pub(crate) fn add(conn: &mut Connection, notices: &[Notice]) -> Result<Vec<Notification>, Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut written = Vec::new();
    for notice in notices {
        written.extend(insert_notice(&tx, notice)?);
    }
    tx.commit()?;
    Ok(written)
}

const NOTIFICATION_COLUMNS: &str = "n.id, n.user_id, n.admin_id, n.kind, n.at, n.facts, n.read";

fn notification(row: &Row<'_>) -> rusqlite::Result<Notification> {
    let facts: String = row.get("facts")?;
    Ok(Notification {
        id: row.parsed("id")?,
        user_id: row.parsed("user_id")?,
        admin_id: row.parsed("admin_id")?,
        kind: row.named("kind")?,
        at: row.at("at")?,
        facts: facts_from_json(&facts).map_err(|cause| bad_value(row, "facts", &facts, cause))?,
        read: row.get("read")?,
    })
}

pub(crate) fn list(conn: &Connection, user: UserId, max: usize) -> Result<Vec<Notification>, Failure> {
    let sql = format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications n WHERE n.user_id = ?1 ORDER BY n.at DESC, n.id DESC LIMIT ?2"
    );
    query_all(conn, &sql, (user.to_string(), limit(max)), notification)
}

pub(crate) fn unread(conn: &Connection, user: UserId) -> Result<u64, Failure> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM notifications WHERE user_id = ?1 AND read = 0")?
        .query_row([user.to_string()], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

pub(crate) fn mark_read(conn: &mut Connection, user: UserId, ids: Option<&[NotificationId]>) -> Result<u64, Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let changed = match ids {
        None => tx
            .prepare_cached("UPDATE notifications SET read = 1 WHERE user_id = ?1 AND read = 0")?
            .execute([user.to_string()])?,
        Some(ids) => {
            let mut statement =
                tx.prepare_cached("UPDATE notifications SET read = 1 WHERE id = ?1 AND user_id = ?2 AND read = 0")?;
            let mut changed = 0;
            for id in ids {
                changed += statement.execute((id.to_string(), user.to_string()))?;
            }
            changed
        }
    };
    tx.commit()?;
    Ok(changed as u64)
}

/// A profile's columns, with its push tokens in their order, one per line, and the session of
/// each token that has one (`token session` lines).
const PROFILE_COLUMNS: &str = "user_id, phone, pending_phone, pending_code, pending_since, pending_wrong_codes, \
                               (SELECT group_concat(t.token, char(10) ORDER BY t.position) FROM push_tokens t \
                               WHERE t.user_id = alert_profiles.user_id) AS push_tokens, \
                               (SELECT group_concat(t.token || ' ' || t.session_id, char(10)) FROM push_tokens t \
                               WHERE t.user_id = alert_profiles.user_id AND t.session_id IS NOT NULL) AS push_sessions, \
                               language, muted, quiet_from, quiet_to, quiet_offset";

/// The `token session` lines of [`PROFILE_COLUMNS`]; the session is the last word (a token has
/// no space, but one imported from elsewhere could).
fn push_sessions(row: &Row<'_>) -> rusqlite::Result<BTreeMap<String, SessionId>> {
    let lines: String = row.get::<_, Option<String>>("push_sessions")?.unwrap_or_default();
    let mut sessions = BTreeMap::new();
    for line in lines.lines().filter(|l| !l.is_empty()) {
        let parsed = line.rsplit_once(' ').and_then(|(token, id)| Some((token, uuid::Uuid::try_parse(id).ok()?)));
        let Some((token, id)) = parsed else {
            return Err(bad_value(row, "push_sessions", line, "not `token session`"));
        };
        sessions.insert(token.to_owned(), SessionId(id));
    }
    Ok(sessions)
}

fn profile(row: &Row<'_>) -> rusqlite::Result<AlertProfile> {
    let tokens: String = row.get::<_, Option<String>>("push_tokens")?.unwrap_or_default();
    let muted: String = row.get("muted")?;
    let quiet = match (row.get::<_, Option<u16>>("quiet_from")?, row.get::<_, Option<u16>>("quiet_to")?) {
        (Some(from_minute), Some(to_minute)) => Some(QuietHours {
            from_minute,
            to_minute,
            utc_offset_minutes: row.get::<_, Option<i16>>("quiet_offset")?.unwrap_or(0),
        }),
        _ => None,
    };
    let pending = match (row.get::<_, Option<String>>("pending_phone")?, row.get::<_, Option<String>>("pending_code")?)
    {
        (Some(phone), Some(code)) => Some(PendingPhone {
            phone,
            code,
            since: row.at("pending_since")?,
            wrong_codes: row.get("pending_wrong_codes")?,
        }),
        _ => None,
    };
    Ok(AlertProfile {
        user_id: row.parsed("user_id")?,
        phone: row.get("phone")?,
        pending_phone: pending,
        push_tokens: tokens.lines().filter(|t| !t.is_empty()).map(str::to_owned).collect(),
        push_sessions: push_sessions(row)?,
        language: row.get("language")?,
        muted: parse_muted(muted.split(',')).map_err(|cause| bad_value(row, "muted", &muted, cause))?,
        quiet_hours: quiet,
    })
}

pub(crate) fn profile_of(conn: &Connection, user: UserId) -> Result<Option<AlertProfile>, Failure> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM alert_profiles WHERE user_id = ?1");
    query_opt(conn, &sql, [user.to_string()], profile)
}

pub(crate) fn profile_by_phone(conn: &Connection, phone: &str) -> Result<Option<AlertProfile>, Failure> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM alert_profiles WHERE phone = ?1");
    query_opt(conn, &sql, [phone], profile)
}

pub(crate) fn profiles_pending(conn: &Connection, phone: &str) -> Result<Vec<AlertProfile>, Failure> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM alert_profiles WHERE pending_phone = ?1 ORDER BY user_id");
    query_all(conn, &sql, [phone], profile)
}

/// Writes a profile and its push tokens, each with the session that registered it; a token whose
/// session ended meanwhile (revoked or purged: the profile was read before) is not written. A
/// token another person had moves to this one (its primary key). Several statements: the caller
/// runs it in a transaction, which keeps a session from ending between the check and the write.
pub(crate) fn set_profile(conn: &Connection, profile: &AlertProfile) -> Result<(), Failure> {
    let mut live = BTreeSet::new();
    let mut alive = conn.prepare_cached("SELECT 1 FROM mobile_sessions WHERE id = ?1 AND revoked_at IS NULL")?;
    for session in profile.token_sessions() {
        if alive.exists([session_key(session)])? {
            live.insert(session);
        }
    }
    let mut profile = profile.clone();
    profile.keep_tokens_of(&live);
    write_profile(conn, &profile)
}

/// Writes a profile made from `read` (`Store::set_alert_profile`) only while the stored one is
/// still `read` but for its wrong-code count ([`AlertProfile::unchanged_since`]), else
/// `VersionConflict` and nothing is written. Several statements: the caller runs it in a
/// `BEGIN IMMEDIATE` transaction, so nothing is written between the comparison and the write.
pub(crate) fn set_profile_read(
    conn: &Connection,
    profile: &AlertProfile,
    read: Option<&AlertProfile>,
) -> Result<(), Failure> {
    let stored = profile_of(conn, profile.user_id)?;
    if !AlertProfile::unchanged_since(stored.as_ref(), read) {
        return Err(StoreError::VersionConflict.into());
    }
    set_profile(conn, profile)
}

/// Writes a profile and its push tokens as they are (an import, whose sessions may come in
/// another part); see [`set_profile`]. The same number waiting as stored (the same number, code
/// and time set) keeps the larger of the stored and the written wrong-code count, in the upsert
/// itself: a profile read before a wrong code was counted cannot take it back, nor bring back a
/// number dropped meanwhile. In `DO UPDATE SET` every column on the right is the stored row's.
pub(crate) fn write_profile(conn: &Connection, profile: &AlertProfile) -> Result<(), Failure> {
    let quiet = profile.quiet_hours;
    let pending = profile.pending_phone.as_ref();
    let result = conn
        .prepare_cached(
            "INSERT INTO alert_profiles (user_id, phone, pending_phone, pending_code, pending_since, \
             pending_wrong_codes, language, muted, quiet_from, quiet_to, quiet_offset) VALUES (:user_id, :phone, \
             :pending_phone, :pending_code, :pending_since, :pending_wrong_codes, :language, :muted, :quiet_from, \
             :quiet_to, :quiet_offset) ON CONFLICT (user_id) DO UPDATE SET phone = excluded.phone, pending_phone = \
             excluded.pending_phone, pending_code = excluded.pending_code, pending_since = excluded.pending_since, \
             pending_wrong_codes = CASE WHEN pending_phone = excluded.pending_phone AND pending_code = \
             excluded.pending_code AND pending_since = excluded.pending_since THEN max(pending_wrong_codes, \
             excluded.pending_wrong_codes) ELSE excluded.pending_wrong_codes END, language = excluded.language, muted = \
             excluded.muted, quiet_from = excluded.quiet_from, quiet_to = excluded.quiet_to, quiet_offset = \
             excluded.quiet_offset",
        )?
        .execute(named_params! {
            ":user_id": profile.user_id.to_string(),
            ":phone": profile.phone,
            ":pending_phone": pending.map(|p| &p.phone),
            ":pending_code": pending.map(|p| &p.code),
            ":pending_since": pending.map(|p| p.since.millis()),
            ":pending_wrong_codes": pending.map_or(0, |p| p.wrong_codes),
            ":language": profile.language,
            ":muted": muted_names(&profile.muted).join(","),
            ":quiet_from": quiet.map(|q| q.from_minute),
            ":quiet_to": quiet.map(|q| q.to_minute),
            ":quiet_offset": quiet.map(|q| q.utc_offset_minutes),
        });
    match result {
        Ok(_) => {}
        Err(err) if constraint_message(&err).is_some_and(|m| m.contains("alert_profiles.phone")) => {
            return Err(StoreError::PhoneTaken.into());
        }
        Err(err) if constraint_message(&err).is_some_and(|m| m.contains("FOREIGN KEY")) => {
            return Err(StoreError::NotFound.into());
        }
        Err(err) => return Err(err.into()),
    }
    write_tokens(conn, profile)
}

/// Writes a profile's push tokens alone, in its order, each with its session as it is; a token
/// another person had moves to this one (its primary key). The profile's row must be stored.
fn write_tokens(conn: &Connection, profile: &AlertProfile) -> Result<(), Failure> {
    let user = profile.user_id.to_string();
    conn.prepare_cached("DELETE FROM push_tokens WHERE user_id = ?1")?.execute([&user])?;
    let mut keep = conn.prepare_cached(
        "INSERT INTO push_tokens (token, user_id, position, session_id) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (token) DO UPDATE SET user_id = excluded.user_id, position = excluded.position, \
         session_id = excluded.session_id",
    )?;
    for (position, token) in (0_i64..).zip(&profile.push_tokens) {
        keep.execute((token, &user, position, profile.session_of(token).map(session_key)))?;
    }
    Ok(())
}

/// Registers a push token with a mobile session of `user`'s live at `now` (not revoked, its last
/// token unexpired: `Store::register_push_token`), writing the push tokens alone, so that a number
/// confirmed or a wrong code counted is left as it is; a person without a profile gets the empty
/// one with the token. Several statements: the caller runs it in a transaction, which keeps the
/// session from ending between the check and the write.
pub(crate) fn register_push_token(
    conn: &Connection,
    user: UserId,
    token: &str,
    session: SessionId,
    keep: usize,
    now: Timestamp,
) -> Result<(), Failure> {
    let live = conn
        .prepare_cached(&format!(
            "SELECT 1 FROM mobile_sessions WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL AND {} > ?3",
            crate::sessions::LAST_EXPIRY
        ))?
        .exists((session_key(session), user.to_string(), now.millis()))?;
    if !live {
        return Err(StoreError::NotFound.into());
    }
    let stored = profile_of(conn, user)?;
    let mut profile = stored.clone().unwrap_or_else(|| AlertProfile::empty(user));
    profile.register_token(token, session, keep);
    match stored {
        Some(_) => write_tokens(conn, &profile),
        None => write_profile(conn, &profile),
    }
}

/// Deletes the push tokens these (mobile) sessions registered, in the caller's transaction: the
/// sessions end in it.
pub(crate) fn forget_tokens_of(conn: &Connection, sessions: &[SessionId]) -> Result<(), Failure> {
    let mut forget = conn.prepare_cached("DELETE FROM push_tokens WHERE session_id = ?1")?;
    for session in sessions {
        forget.execute([session_key(*session)])?;
    }
    Ok(())
}

/// Takes one push token out of a person's profile; whether it was theirs.
pub(crate) fn remove_push_token(conn: &Connection, user: UserId, token: &str) -> Result<bool, Failure> {
    let removed = conn
        .prepare_cached("DELETE FROM push_tokens WHERE token = ?1 AND user_id = ?2")?
        .execute((token, user.to_string()))?;
    Ok(removed > 0)
}

/// Moves a pending number to the phone in one UPDATE, only while it is still the one read and not
/// dropped: a number replaced, confirmed or dropped meanwhile matches no row; the phone's UNIQUE
/// index refuses a number another person has.
pub(crate) fn confirm_phone(conn: &Connection, user: UserId, pending: &PendingPhone) -> Result<(), Failure> {
    let result = conn
        .prepare_cached(
            "UPDATE alert_profiles SET phone = pending_phone, pending_phone = NULL, pending_code = NULL, \
             pending_since = NULL, pending_wrong_codes = 0 WHERE user_id = ?1 AND pending_phone = ?2 AND \
             pending_code = ?3 AND pending_since = ?4 AND pending_wrong_codes < ?5",
        )?
        .execute((
            user.to_string(),
            &pending.phone,
            &pending.code,
            pending.since.millis(),
            PendingPhone::MAX_WRONG_CODES,
        ));
    match result {
        Ok(0) => Err(StoreError::VersionConflict.into()),
        Ok(_) => Ok(()),
        Err(err) if constraint_message(&err).is_some_and(|m| m.contains("alert_profiles.phone")) => {
            Err(StoreError::PhoneTaken.into())
        }
        Err(err) => Err(err.into()),
    }
}

/// Counts a wrong code in one UPDATE, only while the pending number is still the one read.
pub(crate) fn count_wrong_code(conn: &Connection, user: UserId, pending: &PendingPhone) -> Result<u32, Failure> {
    let counted = query_opt(
        conn,
        "UPDATE alert_profiles SET pending_wrong_codes = pending_wrong_codes + 1 WHERE user_id = ?1 AND \
         pending_phone = ?2 AND pending_code = ?3 AND pending_since = ?4 RETURNING pending_wrong_codes",
        (user.to_string(), &pending.phone, &pending.code, pending.since.millis()),
        |row| row.get::<_, u32>(0),
    )?;
    counted.ok_or_else(|| StoreError::VersionConflict.into())
}

/// Takes a text unless a claim of its key still holds, deleting the claims over first, in one
/// `BEGIN IMMEDIATE` transaction.
pub(crate) fn claim_text(conn: &mut Connection, key: &str, now: Timestamp, keep_ms: i64) -> Result<bool, Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.prepare_cached("DELETE FROM taken_texts WHERE until <= ?1")?.execute([now.millis()])?;
    let taken = tx
        .prepare_cached("INSERT INTO taken_texts (key, until) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING")?
        .execute((key, (now + keep_ms).millis()))?;
    tx.commit()?;
    Ok(taken > 0)
}

pub(crate) fn release_text(conn: &Connection, key: &str) -> Result<(), Failure> {
    conn.prepare_cached("DELETE FROM taken_texts WHERE key = ?1")?.execute([key])?;
    Ok(())
}

/// Claims due items in one `BEGIN IMMEDIATE` transaction: only one writer (of any process) runs it
/// at a time, so an item is claimed by one sender.
pub(crate) fn claim(
    conn: &mut Connection,
    sender: &str,
    now: Timestamp,
    until: Timestamp,
    max: usize,
) -> Result<Vec<OutboxItem>, Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let sql = format!(
        "SELECT {NOTIFICATION_COLUMNS}, o.attempts, o.delivered FROM outbox o JOIN notifications n ON n.id = o.id \
         WHERE o.done_at IS NULL AND o.failed_at IS NULL AND o.due_at <= ?1 \
         AND (o.claimed_until IS NULL OR o.claimed_until <= ?1) ORDER BY o.due_at, o.id LIMIT ?2"
    );
    let items = query_all(&tx, &sql, (now.millis(), limit(max)), outbox_item)?;
    {
        let mut claim = tx.prepare_cached("UPDATE outbox SET claimed_by = ?1, claimed_until = ?2 WHERE id = ?3")?;
        for item in &items {
            claim.execute((sender, until.millis(), item.notification.id.to_string()))?;
        }
    }
    tx.commit()?;
    Ok(items)
}

/// An outbox row read with its notification's columns.
fn outbox_item(row: &Row<'_>) -> rusqlite::Result<OutboxItem> {
    let delivered: String = row.get("delivered")?;
    Ok(OutboxItem {
        notification: notification(row)?,
        attempts: row.get("attempts")?,
        delivered: parse_channels(&delivered).map_err(|cause| bad_value(row, "delivered", &delivered, cause))?,
    })
}

/// A person's items still to deliver, of notifications from `since` on (`Store::outbox_of`).
pub(crate) fn outbox_of(conn: &Connection, user: UserId, since: Timestamp) -> Result<Vec<OutboxItem>, Failure> {
    let sql = format!(
        "SELECT {NOTIFICATION_COLUMNS}, o.attempts, o.delivered FROM notifications n JOIN outbox o ON o.id = n.id \
         WHERE n.user_id = ?1 AND n.at >= ?2 AND o.done_at IS NULL AND o.failed_at IS NULL ORDER BY n.at, n.id"
    );
    query_all(conn, &sql, (user.to_string(), since.millis()), outbox_item)
}

/// Claims one item whatever its due time, in one `BEGIN IMMEDIATE` transaction
/// (`Store::claim_outbox_item`).
pub(crate) fn claim_one(
    conn: &mut Connection,
    id: NotificationId,
    sender: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<Option<OutboxItem>, Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let sql = format!(
        "SELECT {NOTIFICATION_COLUMNS}, o.attempts, o.delivered, o.claimed_by, o.claimed_until FROM outbox o \
         JOIN notifications n ON n.id = o.id WHERE o.id = ?1 AND o.done_at IS NULL AND o.failed_at IS NULL"
    );
    let found = query_opt(&tx, &sql, [id.to_string()], |row| {
        let claimed_by: Option<String> = row.get("claimed_by")?;
        let claimed_until: Option<i64> = row.get("claimed_until")?;
        let taken =
            claimed_by.is_some_and(|by| by != sender) && claimed_until.is_some_and(|until| until > now.millis());
        Ok((outbox_item(row)?, taken))
    })?;
    let Some((item, taken)) = found else { return Ok(None) };
    if taken {
        return Err(StoreError::ClaimLost.into());
    }
    tx.prepare_cached("UPDATE outbox SET claimed_by = ?1, claimed_until = ?2 WHERE id = ?3")?.execute((
        sender,
        until.millis(),
        id.to_string(),
    ))?;
    tx.commit()?;
    Ok(Some(item))
}

fn parse_channels(text: &str) -> Result<BTreeSet<Channel>, String> {
    text.split(',')
        .filter(|c| !c.is_empty())
        .map(|c| Channel::parse(c).ok_or_else(|| format!("unknown channel {c}")))
        .collect()
}

fn channel_names(channels: &BTreeSet<Channel>) -> String {
    channels.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")
}

pub(crate) fn finish(conn: &Connection, id: NotificationId, sender: &str, delivery: &Delivery) -> Result<(), Failure> {
    let key = id.to_string();
    let changed = match delivery {
        Delivery::Done { at } => conn
            .prepare_cached(
                "UPDATE outbox SET done_at = ?3, claimed_by = NULL, claimed_until = NULL \
                 WHERE id = ?1 AND claimed_by = ?2 AND done_at IS NULL AND failed_at IS NULL",
            )?
            .execute((&key, sender, at.millis()))?,
        Delivery::Retry { at, delivered, error } => conn
            .prepare_cached(
                "UPDATE outbox SET due_at = ?3, delivered = ?4, last_error = ?5, attempts = attempts + 1, \
                 claimed_by = NULL, claimed_until = NULL \
                 WHERE id = ?1 AND claimed_by = ?2 AND done_at IS NULL AND failed_at IS NULL",
            )?
            .execute((&key, sender, at.millis(), channel_names(delivered), error))?,
        Delivery::Defer { at, delivered } => conn
            .prepare_cached(
                "UPDATE outbox SET due_at = ?3, delivered = ?4, claimed_by = NULL, claimed_until = NULL \
                 WHERE id = ?1 AND claimed_by = ?2 AND done_at IS NULL AND failed_at IS NULL",
            )?
            .execute((&key, sender, at.millis(), channel_names(delivered)))?,
        Delivery::Failed { at, error } => conn
            .prepare_cached(
                "UPDATE outbox SET failed_at = ?3, last_error = ?4, attempts = attempts + 1, claimed_by = NULL, \
                 claimed_until = NULL WHERE id = ?1 AND claimed_by = ?2 AND done_at IS NULL AND failed_at IS NULL",
            )?
            .execute((&key, sender, at.millis(), error))?,
    };
    if changed == 0 {
        return Err(StoreError::ClaimLost.into());
    }
    Ok(())
}

/// Counts a send in every window, or in none when one is full, in one `BEGIN IMMEDIATE`
/// transaction (one writer at a time).
pub(crate) fn admit(conn: &mut Connection, windows: &[SendWindow], now: Timestamp) -> Result<Admission, Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut counted = Vec::with_capacity(windows.len());
    let mut full_until: Option<Timestamp> = None;
    for window in windows {
        let stored = query_opt(&tx, "SELECT start, count FROM send_windows WHERE key = ?1", [&window.key], |row| {
            Ok((row.at("start")?, row.get::<_, u32>("count")?))
        })?;
        match admit_one(window, stored, now) {
            Ok(next) => counted.push((window, next)),
            Err(until) => full_until = Some(full_until.map_or(until, |u| u.max(until))),
        }
    }
    if let Some(until) = full_until {
        return Ok(Admission::Full { until });
    }
    {
        let mut write = tx.prepare_cached(
            "INSERT INTO send_windows (key, start, count) VALUES (?1, ?2, ?3) \
             ON CONFLICT (key) DO UPDATE SET start = excluded.start, count = excluded.count",
        )?;
        for (window, (start, count)) in counted {
            write.execute((&window.key, start.millis(), count))?;
        }
    }
    tx.commit()?;
    Ok(Admission::Admitted)
}

/// Deletes notifications read before `read_before` and all from before `all_before`, with their
/// outbox rows.
pub(crate) fn purge(conn: &mut Connection, read_before: Timestamp, all_before: Timestamp) -> Result<u64, Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    const OLD: &str = "(at < ?2 OR (read = 1 AND at < ?1))";
    tx.prepare_cached(&format!("DELETE FROM outbox WHERE id IN (SELECT id FROM notifications WHERE {OLD})"))?
        .execute((read_before.millis(), all_before.millis()))?;
    let deleted = tx
        .prepare_cached(&format!("DELETE FROM notifications WHERE {OLD}"))?
        .execute((read_before.millis(), all_before.millis()))?;
    tx.commit()?;
    Ok(deleted as u64)
}

/// Tickets kept until their receipts are read; one already stored is left as it is.
pub(crate) fn add_tickets(conn: &mut Connection, tickets: &[PushTicket]) -> Result<(), Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO push_tickets (id, user_id, token, sent_at, ask_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
        )?;
        for t in tickets {
            insert.execute((
                &t.id,
                t.user.to_string(),
                &t.token,
                t.sent_at.millis(),
                t.ask_at.millis(),
                t.expires_at.millis(),
            ))?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn ticket(row: &Row<'_>) -> rusqlite::Result<PushTicket> {
    Ok(PushTicket {
        id: row.get("id")?,
        user: row.parsed("user_id")?,
        token: row.get("token")?,
        sent_at: row.at("sent_at")?,
        ask_at: row.at("ask_at")?,
        expires_at: row.at("expires_at")?,
    })
}

/// The tickets due at `now`, their `ask_at` moved to `until` in the same transaction (the
/// answer carries the `ask_at` they had).
pub(crate) fn claim_tickets(
    conn: &mut Connection,
    now: Timestamp,
    until: Timestamp,
    max: usize,
) -> Result<Vec<PushTicket>, Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let due = query_all(
        &tx,
        "SELECT id, user_id, token, sent_at, ask_at, expires_at FROM push_tickets \
         WHERE ask_at <= ?1 AND expires_at > ?1 ORDER BY ask_at, id LIMIT ?2",
        (now.millis(), limit(max)),
        ticket,
    )?;
    {
        let mut claim = tx.prepare_cached("UPDATE push_tickets SET ask_at = ?2 WHERE id = ?1")?;
        for t in &due {
            claim.execute((&t.id, until.millis()))?;
        }
    }
    tx.commit()?;
    Ok(due)
}

pub(crate) fn settle_tickets(
    conn: &mut Connection,
    read: &[String],
    again: &[String],
    ask_at: Timestamp,
) -> Result<(), Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut delete = tx.prepare_cached("DELETE FROM push_tickets WHERE id = ?1")?;
        for id in read {
            delete.execute([id])?;
        }
        let mut later = tx.prepare_cached("UPDATE push_tickets SET ask_at = ?2 WHERE id = ?1")?;
        for id in again {
            later.execute((id, ask_at.millis()))?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(crate) fn purge_tickets(conn: &Connection, now: Timestamp) -> Result<u64, Failure> {
    let deleted = conn.prepare_cached("DELETE FROM push_tickets WHERE expires_at <= ?1")?.execute([now.millis()])?;
    Ok(deleted as u64)
}

/// Every alert profile, by person (for an export).
pub(crate) fn all_profiles(conn: &Connection) -> Result<Vec<AlertProfile>, Failure> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM alert_profiles ORDER BY user_id");
    query_all(conn, &sql, [], profile)
}

/// Every notification, oldest first, with its key and its delivery still to come (for an export).
pub(crate) fn all_kept(conn: &Connection) -> Result<Vec<KeptNotification>, Failure> {
    let sql = format!(
        "SELECT {NOTIFICATION_COLUMNS}, n.key, o.id AS due, o.due_at, o.attempts, o.delivered FROM notifications n \
         LEFT JOIN outbox o ON o.id = n.id AND o.done_at IS NULL AND o.failed_at IS NULL ORDER BY n.at, n.id"
    );
    query_all(conn, &sql, [], |row| {
        let due = match row.get::<_, Option<String>>("due")? {
            None => None,
            Some(_) => {
                let delivered: String = row.get("delivered")?;
                Some(DueDelivery {
                    at: row.at("due_at")?,
                    attempts: row.get("attempts")?,
                    delivered: parse_channels(&delivered)
                        .map_err(|cause| bad_value(row, "delivered", &delivered, cause))?,
                })
            }
        };
        Ok(KeptNotification { notification: notification(row)?, key: row.get("key")?, due })
    })
}

/// Writes a notification as it was kept (a new notice's, or one an export carried), with its outbox
/// item when its delivery is still to come (unclaimed); false, writing nothing, when its key is
/// already stored.
pub(crate) fn insert_kept(conn: &Connection, kept: &KeptNotification) -> Result<bool, Failure> {
    let n = &kept.notification;
    let written = conn
        .prepare_cached(
            "INSERT INTO notifications (id, user_id, admin_id, kind, at, facts, read, key) \
             VALUES (:id, :user_id, :admin_id, :kind, :at, :facts, :read, :key) ON CONFLICT (key) DO NOTHING",
        )?
        .execute(named_params! {
            ":id": n.id.to_string(),
            ":user_id": n.user_id.to_string(),
            ":admin_id": n.admin_id.to_string(),
            ":kind": n.kind.as_str(),
            ":at": n.at.millis(),
            ":facts": facts_to_json(&n.facts),
            ":read": n.read,
            ":key": kept.key,
        })?;
    if written == 0 {
        return Ok(false);
    }
    if let Some(due) = &kept.due {
        conn.prepare_cached("INSERT INTO outbox (id, due_at, attempts, delivered) VALUES (?1, ?2, ?3, ?4)")?
            .execute((n.id.to_string(), due.at.millis(), due.attempts, channel_names(&due.delivered)))?;
    }
    Ok(true)
}

/// Settles the notification with `key`, if there is one: read, and its delivery done at `at` if
/// it had not gone yet (also one a sender holds: its finish then finds the item done, and sends
/// nothing more of it). In the caller's transaction.
pub(crate) fn settle(conn: &Connection, key: &str, at: Timestamp) -> Result<(), Failure> {
    conn.prepare_cached("UPDATE notifications SET read = 1 WHERE key = ?1 AND read = 0")?.execute([key])?;
    conn.prepare_cached(
        "UPDATE outbox SET done_at = ?2, claimed_by = NULL, claimed_until = NULL \
         WHERE id = (SELECT id FROM notifications WHERE key = ?1) AND done_at IS NULL AND failed_at IS NULL",
    )?
    .execute((key, at.millis()))?;
    Ok(())
}
