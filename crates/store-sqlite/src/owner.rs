//! What an owner keeps for their pump: its terms, receipts of cash recharges, and changes to
//! their farmers' accounts.

use pumppilot_engine::AdminId;
use pumppilot_store::{AccountChange, AuditEntry, Receipt, ReceiptQuery, ReceiptVoid, SessionId, StoreError, Terms};
use rusqlite::{Connection, Row, TransactionBehavior, named_params};

use crate::{
    books,
    error::Failure,
    rows::{RowExt, limit, query_all, query_opt},
    sessions,
};

/// A tenant's terms, the defaults when it set none.
pub(crate) fn terms(conn: &Connection, admin: AdminId) -> Result<Terms, Failure> {
    let sql = "SELECT max_request_minutes, price_per_hour_taka FROM terms WHERE admin_id = ?1";
    let stored = query_opt(conn, sql, [admin.to_string()], |row| {
        Ok(Terms { max_request_minutes: row.get(0)?, price_per_hour_taka: row.get(1)? })
    })?;
    Ok(stored.unwrap_or_default())
}

/// Writes a tenant's terms as they are (no audit line; also for an import).
pub(crate) fn write_terms(conn: &Connection, admin: AdminId, terms: &Terms) -> Result<(), Failure> {
    let exists = conn.prepare_cached("SELECT 1 FROM tenants WHERE admin_id = ?1")?.exists([admin.to_string()])?;
    if !exists {
        return Err(StoreError::NotFound.into());
    }
    conn.prepare_cached(
        "INSERT INTO terms (admin_id, max_request_minutes, price_per_hour_taka) VALUES (?1, ?2, ?3) \
         ON CONFLICT (admin_id) DO UPDATE SET max_request_minutes = excluded.max_request_minutes, \
         price_per_hour_taka = excluded.price_per_hour_taka",
    )?
    .execute((admin.to_string(), terms.max_request_minutes, terms.price_per_hour_taka))?;
    Ok(())
}

/// Sets a tenant's terms with their audit line, in one transaction.
pub(crate) fn set_terms(
    conn: &mut Connection,
    admin: AdminId,
    terms: &Terms,
    audit: &AuditEntry,
) -> Result<(), Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    write_terms(&tx, admin, terms)?;
    books::insert_audit(&tx, audit)?;
    tx.commit()?;
    Ok(())
}

/// Every tenant's stored terms (for an export).
pub(crate) fn all_terms(conn: &Connection) -> Result<Vec<(AdminId, Terms)>, Failure> {
    let sql = "SELECT admin_id, max_request_minutes, price_per_hour_taka FROM terms ORDER BY admin_id";
    query_all(conn, sql, [], |row| {
        Ok((row.parsed("admin_id")?, Terms { max_request_minutes: row.get(1)?, price_per_hour_taka: row.get(2)? }))
    })
}

/// Stores a receipt as it is, void or not (inside a commit's transaction, or an import).
pub(crate) fn insert_receipt(conn: &Connection, receipt: &Receipt) -> Result<(), Failure> {
    conn.prepare_cached(
        "INSERT INTO receipts (id, admin_id, user_id, at, minutes, cash_taka, recorded_by, priced, voided_at, \
         voided_by) VALUES (:id, :admin_id, :user_id, :at, :minutes, :cash_taka, :recorded_by, :priced, \
         :voided_at, :voided_by)",
    )?
    .execute(named_params! {
        ":id": receipt.id.to_string(),
        ":admin_id": receipt.admin_id.to_string(),
        ":user_id": receipt.user_id.to_string(),
        ":at": receipt.at.millis(),
        ":minutes": receipt.minutes,
        ":cash_taka": receipt.cash_taka,
        ":recorded_by": receipt.recorded_by.to_string(),
        ":priced": receipt.priced,
        ":voided_at": receipt.void.map(|void| void.at.millis()),
        ":voided_by": receipt.void.map(|void| void.by.to_string()),
    })?;
    Ok(())
}

/// A commit's receipt: written when new; when it carries its void, the stored receipt (this
/// tenant's, of that farmer and those minutes) is marked void, once: `AlreadyMade` when it is
/// void already, `NotFound` when there is no such receipt.
pub(crate) fn write_receipt(conn: &Connection, receipt: &Receipt) -> Result<(), Failure> {
    let Some(void) = receipt.void else {
        return insert_receipt(conn, receipt);
    };
    let params = named_params! {
        ":id": receipt.id.to_string(),
        ":admin_id": receipt.admin_id.to_string(),
        ":user_id": receipt.user_id.to_string(),
        ":minutes": receipt.minutes,
        ":voided_at": void.at.millis(),
        ":voided_by": void.by.to_string(),
    };
    let voided = conn
        .prepare_cached(
            "UPDATE receipts SET voided_at = :voided_at, voided_by = :voided_by WHERE id = :id \
             AND admin_id = :admin_id AND user_id = :user_id AND minutes = :minutes AND voided_at IS NULL",
        )?
        .execute(params)?;
    if voided == 1 {
        return Ok(());
    }
    let stored = conn
        .prepare_cached("SELECT 1 FROM receipts WHERE id = ?1 AND admin_id = ?2 AND user_id = ?3 AND minutes = ?4")?
        .exists((receipt.id.to_string(), receipt.admin_id.to_string(), receipt.user_id.to_string(), receipt.minutes))?;
    Err(if stored { StoreError::AlreadyMade } else { StoreError::NotFound }.into())
}

const RECEIPT_COLUMNS: &str =
    "id, admin_id, user_id, at, minutes, cash_taka, recorded_by, priced, voided_at, voided_by";

fn receipt_row(row: &Row<'_>) -> rusqlite::Result<Receipt> {
    Ok(Receipt {
        id: row.parsed("id")?,
        admin_id: row.parsed("admin_id")?,
        user_id: row.parsed("user_id")?,
        at: row.at("at")?,
        minutes: row.get("minutes")?,
        cash_taka: row.get("cash_taka")?,
        recorded_by: row.parsed("recorded_by")?,
        priced: row.get("priced")?,
        void: match row.opt_at("voided_at")? {
            Some(at) => Some(ReceiptVoid { at, by: row.parsed("voided_by")? }),
            None => None,
        },
    })
}

/// A receipt of a tenant.
pub(crate) fn receipt(
    conn: &Connection,
    admin: AdminId,
    id: pumppilot_engine::ReceiptId,
) -> Result<Option<Receipt>, Failure> {
    let sql = format!("SELECT {RECEIPT_COLUMNS} FROM receipts WHERE id = ?1 AND admin_id = ?2");
    query_opt(conn, &sql, (id.to_string(), admin.to_string()), receipt_row)
}

/// Receipts of a tenant (or one user of it) in `[from, to)`, newest first.
pub(crate) fn receipts(conn: &Connection, query: &ReceiptQuery) -> Result<Vec<Receipt>, Failure> {
    let sql = format!(
        "SELECT {RECEIPT_COLUMNS} FROM receipts WHERE admin_id = ?1 AND at >= ?2 AND at < ?3 \
         AND (?4 IS NULL OR user_id = ?4) ORDER BY at DESC, id DESC LIMIT ?5"
    );
    let from = query.from.map_or(i64::MIN, |at| at.millis());
    let to = query.to.map_or(i64::MAX, |at| at.millis());
    let user = query.user.map(|user| user.to_string());
    query_all(conn, &sql, (query.admin.to_string(), from, to, user, limit(query.limit)), receipt_row)
}

/// Every receipt, oldest first (for an export).
pub(crate) fn all_receipts(conn: &Connection) -> Result<Vec<Receipt>, Failure> {
    let sql = format!("SELECT {RECEIPT_COLUMNS} FROM receipts ORDER BY at, id");
    query_all(conn, &sql, [], receipt_row)
}

/// Renames an account of a role in a tenant and/or sets a new password (revoking its sessions but
/// the one to keep), with the audit line, in one transaction.
pub(crate) fn change_account(
    conn: &mut Connection,
    change: &AccountChange,
    audit: &AuditEntry,
) -> Result<Vec<SessionId>, Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let changed = tx
        .prepare_cached(
            "UPDATE accounts SET name = coalesce(:name, name), password_hash = coalesce(:hash, password_hash) \
             WHERE id = :id AND admin_id IS :admin_id AND role = :role",
        )?
        .execute(named_params! {
            ":name": change.name,
            ":hash": change.password_hash,
            ":id": change.id.to_string(),
            ":admin_id": change.admin_id.map(|admin| admin.to_string()),
            ":role": change.role.as_str(),
        })?;
    if changed == 0 {
        return Err(StoreError::NotFound.into());
    }
    let revoked = if change.password_hash.is_some() {
        sessions::revoke_user(&tx, change.id, change.keep_session, change.at)?
    } else {
        Vec::new()
    };
    books::insert_audit(&tx, audit)?;
    tx.commit()?;
    Ok(revoked)
}
