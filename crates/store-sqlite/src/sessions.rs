//! Sessions: `web_sessions` (cookies) and `mobile_sessions` (bearer and refresh tokens).
//!
//! Both tables have the same columns; the session's kind picks the table. Lookups return revoked
//! and expired sessions too: the caller decides what a revoked session means.

use pumppilot_engine::{Timestamp, UserId};
use pumppilot_store::{RefreshMatch, Rotation, Session, SessionId, SessionKind, SessionScope, StoreError};
use rusqlite::{Connection, TransactionBehavior, named_params};

use crate::{
    alerts,
    error::Failure,
    rows::{self, RowExt, opt_ms, query_opt, session_columns, session_key},
};

const KINDS: [SessionKind; 2] = [SessionKind::Web, SessionKind::Mobile];

/// The table that holds sessions of `kind`.
fn table(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::Web => "web_sessions",
        SessionKind::Mobile => "mobile_sessions",
    }
}

/// Stores a new session in its kind's table.
pub(crate) fn create(conn: &Connection, session: &Session) -> Result<(), Failure> {
    let sql = format!(
        "INSERT INTO {} ({}) VALUES (:id, :user_id, :access_hash, :access_expires_at, :refresh_hash, \
         :previous_refresh_hash, :refresh_expires_at, :device_name, :created_at, :revoked_at)",
        table(session.kind),
        session_columns!()
    );
    conn.prepare_cached(&sql)?.execute(named_params! {
        ":id": session_key(session.id),
        ":user_id": session.user_id.to_string(),
        ":access_hash": session.access_hash,
        ":access_expires_at": session.access_expires_at.millis(),
        ":refresh_hash": session.refresh_hash,
        ":previous_refresh_hash": session.previous_refresh_hash,
        ":refresh_expires_at": opt_ms(session.refresh_expires_at),
        ":device_name": session.device_name,
        ":created_at": session.created_at.millis(),
        ":revoked_at": opt_ms(session.revoked_at),
    })?;
    Ok(())
}

/// The session of `kind` whose access token hashes to `hash`.
pub(crate) fn by_access_hash(conn: &Connection, kind: SessionKind, hash: &[u8]) -> Result<Option<Session>, Failure> {
    let sql = format!("SELECT {} FROM {} WHERE access_hash = ?1", session_columns!(), table(kind));
    query_opt(conn, &sql, [hash], |row| rows::session(row, kind))
}

/// The mobile session whose current, or else previous, refresh token hashes to `hash`.
pub(crate) fn by_refresh_hash(conn: &Connection, hash: &[u8]) -> Result<Option<(Session, RefreshMatch)>, Failure> {
    let mobile = |row: &rusqlite::Row<'_>| rows::session(row, SessionKind::Mobile);
    let sql = concat!("SELECT ", session_columns!(), " FROM mobile_sessions WHERE refresh_hash = ?1 LIMIT 1");
    if let Some(session) = query_opt(conn, sql, [hash], mobile)? {
        return Ok(Some((session, RefreshMatch::Current)));
    }
    let sql = concat!("SELECT ", session_columns!(), " FROM mobile_sessions WHERE previous_refresh_hash = ?1 LIMIT 1");
    Ok(query_opt(conn, sql, [hash], mobile)?.map(|session| (session, RefreshMatch::Previous)))
}

/// Rotates a live mobile session's tokens if its refresh hash is still the expected one.
pub(crate) fn rotate(conn: &Connection, rotation: &Rotation) -> Result<(), Failure> {
    let id = session_key(rotation.id);
    let rotated = conn
        .prepare_cached(
            "UPDATE mobile_sessions SET previous_refresh_hash = refresh_hash, refresh_hash = :refresh_hash, \
             refresh_expires_at = :refresh_expires_at, access_hash = :access_hash, \
             access_expires_at = :access_expires_at \
             WHERE id = :id AND refresh_hash = :expected AND revoked_at IS NULL",
        )?
        .execute(named_params! {
            ":id": id,
            ":expected": rotation.expected_refresh_hash,
            ":access_hash": rotation.access_hash,
            ":access_expires_at": rotation.access_expires_at.millis(),
            ":refresh_hash": rotation.refresh_hash,
            ":refresh_expires_at": rotation.refresh_expires_at.millis(),
        })?;
    if rotated == 0 {
        let exists = conn.prepare_cached("SELECT 1 FROM mobile_sessions WHERE id = ?1")?.exists([&id])?;
        return Err(if exists { StoreError::VersionConflict } else { StoreError::NotFound }.into());
    }
    Ok(())
}

/// Revokes one session, with the push tokens it registered, in one transaction (revoking a
/// revoked session changes nothing).
pub(crate) fn revoke(conn: &mut Connection, kind: SessionKind, id: SessionId, at: Timestamp) -> Result<(), Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let key = session_key(id);
    let sql = format!("UPDATE {} SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL", table(kind));
    if tx.prepare_cached(&sql)?.execute((&key, at.millis()))? == 0 {
        let sql = format!("SELECT 1 FROM {} WHERE id = ?1", table(kind));
        if !tx.prepare_cached(&sql)?.exists([&key])? {
            return Err(StoreError::NotFound.into());
        }
    }
    if kind == SessionKind::Mobile {
        alerts::forget_tokens_of(&tx, &[id])?;
    }
    tx.commit()?;
    Ok(())
}

/// Revokes the live sessions of one user, or of every account of a tenant, in both tables.
pub(crate) fn revoke_scope(
    conn: &mut Connection,
    scope: SessionScope,
    at: Timestamp,
) -> Result<Vec<SessionId>, Failure> {
    let (owners, key) = match scope {
        SessionScope::User(user) => ("user_id = ?1", user.to_string()),
        // The admin's own account has admin_id = its id, so it is one of the tenant's accounts.
        SessionScope::Tenant(admin) => ("user_id IN (SELECT id FROM accounts WHERE admin_id = ?1)", admin.to_string()),
    };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let revoked = revoke_where(&tx, owners, &key, None, at)?;
    tx.commit()?;
    Ok(revoked)
}

/// Revokes the live sessions of one user but `keep` inside a caller's transaction, with the push
/// tokens they registered.
pub(crate) fn revoke_user(
    tx: &Connection,
    user: UserId,
    keep: Option<SessionId>,
    at: Timestamp,
) -> Result<Vec<SessionId>, Failure> {
    revoke_where(tx, "user_id = ?1", &user.to_string(), keep, at)
}

fn revoke_where(
    tx: &Connection,
    owners: &str,
    key: &str,
    keep: Option<SessionId>,
    at: Timestamp,
) -> Result<Vec<SessionId>, Failure> {
    let keep = keep.map(session_key);
    let mut revoked = Vec::new();
    for kind in KINDS {
        let sql = format!(
            "UPDATE {} SET revoked_at = ?2 WHERE {owners} AND revoked_at IS NULL AND id IS NOT ?3 RETURNING id",
            table(kind)
        );
        let mut statement = tx.prepare_cached(&sql)?;
        let ids = statement.query_map((key, at.millis(), &keep), |row| row.parsed("id").map(SessionId))?;
        let ids = ids.collect::<Result<Vec<_>, _>>()?;
        if kind == SessionKind::Mobile {
            alerts::forget_tokens_of(tx, &ids)?;
        }
        revoked.extend(ids);
    }
    Ok(revoked)
}

/// When a session's last token expires (the refresh token for mobile, the access token for web):
/// after that it can never be used again.
pub(crate) const LAST_EXPIRY: &str = "MAX(access_expires_at, COALESCE(refresh_expires_at, 0))";

/// Deletes the sessions that can never be used again (see `Store::purge_sessions`), with the push
/// tokens the mobile ones registered, in one transaction.
pub(crate) fn purge(conn: &mut Connection, before: Timestamp) -> Result<usize, Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let dead = format!("revoked_at < ?1 OR {LAST_EXPIRY} < ?1");
    tx.prepare_cached(&format!(
        "DELETE FROM push_tokens WHERE session_id IN (SELECT id FROM mobile_sessions WHERE {dead})"
    ))?
    .execute([before.millis()])?;
    let mut purged = 0;
    for kind in KINDS {
        let sql = format!("DELETE FROM {} WHERE {dead}", table(kind));
        purged += tx.prepare_cached(&sql)?.execute([before.millis()])?;
    }
    tx.commit()?;
    Ok(purged)
}
