//! RFID cards bound to users, unique by UID within a tenant.

use pumppilot_engine::AdminId;
use pumppilot_store::{Card, StoreError};
use rusqlite::{Connection, Row, TransactionBehavior, named_params};

use crate::{
    error::Failure,
    rows::{RowExt, query_all, query_opt},
};

/// Binds a card to a user of its tenant, moving it when the tenant already has it.
pub(crate) fn bind(conn: &mut Connection, card: &Card) -> Result<(), Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    bind_in(&tx, card)?;
    tx.commit()?;
    Ok(())
}

/// [`bind`] inside the caller's transaction.
pub(crate) fn bind_in(tx: &Connection, card: &Card) -> Result<(), Failure> {
    let member: Option<i64> = query_opt(
        tx,
        "SELECT 1 FROM accounts WHERE id = ?1 AND admin_id = ?2 AND role = 'user'",
        (card.user_id.to_string(), card.admin_id.to_string()),
        |row| row.get(0),
    )?;
    if member.is_none() {
        return Err(StoreError::NotFound.into());
    }
    tx.prepare_cached(
        "INSERT INTO cards (admin_id, uid, user_id, bound_at) VALUES (:admin_id, :uid, :user_id, :bound_at) \
         ON CONFLICT (admin_id, uid) DO UPDATE SET user_id = excluded.user_id, bound_at = excluded.bound_at",
    )?
    .execute(named_params! {
        ":admin_id": card.admin_id.to_string(),
        ":uid": card.uid,
        ":user_id": card.user_id.to_string(),
        ":bound_at": card.bound_at.millis(),
    })?;
    Ok(())
}

/// Unbinds a card of a tenant.
pub(crate) fn unbind(conn: &Connection, admin: AdminId, uid: &str) -> Result<(), Failure> {
    let removed =
        conn.prepare_cached("DELETE FROM cards WHERE admin_id = ?1 AND uid = ?2")?.execute((admin.to_string(), uid))?;
    if removed == 0 {
        return Err(StoreError::NotFound.into());
    }
    Ok(())
}

/// The card of a tenant with this UID.
pub(crate) fn find(conn: &Connection, admin: AdminId, uid: &str) -> Result<Option<Card>, Failure> {
    query_opt(
        conn,
        "SELECT admin_id, uid, user_id, bound_at FROM cards WHERE admin_id = ?1 AND uid = ?2",
        (admin.to_string(), uid),
        card,
    )
}

/// The cards of a tenant, oldest binding first.
pub(crate) fn list(conn: &Connection, admin: AdminId) -> Result<Vec<Card>, Failure> {
    query_all(
        conn,
        "SELECT admin_id, uid, user_id, bound_at FROM cards WHERE admin_id = ?1 ORDER BY bound_at, uid",
        [admin.to_string()],
        card,
    )
}

fn card(row: &Row<'_>) -> rusqlite::Result<Card> {
    Ok(Card {
        admin_id: row.parsed("admin_id")?,
        uid: row.get("uid")?,
        user_id: row.parsed("user_id")?,
        bound_at: row.at("bound_at")?,
    })
}
