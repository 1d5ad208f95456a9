//! The books: ledger and wallets, usage history, audit log and minute requests.

use pumppilot_engine::{AdminId, LedgerEntry, RejectReason, RequestId, Timestamp, UsageRow, UserId};
use pumppilot_store::{
    AuditEntry, AuditQuery, Decision, FleetTotals, MinuteRequest, RequestQuery, RequestStatus, StoreError, UsageQuery,
};
use rusqlite::{Connection, named_params};

use crate::{
    error::{Failure, constraint_message, invariant},
    rows::{self, audit_columns, ledger_columns, limit, opt_ms, query_all, query_opt, request_columns, usage_columns},
};

/// Moves a user's wallet by one ledger entry and records the entry.
///
/// The wallet moves only if the entry follows the stored balance (`balance + delta =
/// balance_after`) within the entry's tenant, so the balance stays the sum of the ledger.
pub(crate) fn insert_ledger_entry(conn: &Connection, entry: &LedgerEntry) -> Result<(), Failure> {
    let moved = conn
        .prepare_cached(
            "UPDATE accounts SET balance_seconds = :after \
             WHERE id = :user_id AND admin_id = :admin_id AND balance_seconds + :delta = :after",
        )?
        .execute(named_params! {
            ":user_id": entry.user_id.to_string(),
            ":admin_id": entry.admin_id.to_string(),
            ":delta": entry.delta_seconds,
            ":after": entry.balance_after,
        })?;
    if moved == 0 {
        return Err(invariant(format!(
            "a ledger entry of {} s leaving user {} at {} s does not follow the stored balance (or the user is not \
             in this tenant)",
            entry.delta_seconds, entry.user_id, entry.balance_after
        )));
    }
    record_ledger_entry(conn, entry)
}

/// Records a ledger entry as it is, without moving a wallet (an import brings the balances).
/// [`StoreError::AlreadyMade`] when the tenant has an entry with its `once_key`.
pub(crate) fn record_ledger_entry(conn: &Connection, entry: &LedgerEntry) -> Result<(), Failure> {
    conn.prepare_cached(
        "INSERT INTO ledger (user_id, admin_id, at, delta_seconds, kind, balance_after, actor_id, note, entry_id, \
         request_id, once_key, receipt_id) VALUES (:user_id, :admin_id, :at, :delta_seconds, :kind, :balance_after, \
         :actor_id, :note, :entry_id, :request_id, :once_key, :receipt_id)",
    )?
    .execute(named_params! {
        ":user_id": entry.user_id.to_string(),
        ":admin_id": entry.admin_id.to_string(),
        ":at": entry.at.millis(),
        ":delta_seconds": entry.delta_seconds,
        ":kind": entry.kind.as_str(),
        ":balance_after": entry.balance_after,
        ":actor_id": entry.actor_id.map(|id| id.to_string()),
        ":note": entry.note,
        ":entry_id": entry.entry_id.map(|id| id.to_string()),
        ":request_id": entry.request_id.map(|id| id.to_string()),
        ":once_key": entry.once_key,
        ":receipt_id": entry.receipt_id.map(|id| id.to_string()),
    })
    .map_err(|error| match constraint_message(&error) {
        Some(message) if message.contains("ledger.once_key") => Failure::Store(StoreError::AlreadyMade),
        _ => Failure::Sql(error),
    })?;
    Ok(())
}

/// The ledger entry of a tenant's change made with `once_key` (the unique `ledger_once_key`).
pub(crate) fn entry_with_key(
    conn: &Connection,
    admin: AdminId,
    once_key: &str,
) -> Result<Option<LedgerEntry>, Failure> {
    let sql = concat!("SELECT ", ledger_columns!(), " FROM ledger WHERE admin_id = ?1 AND once_key = ?2");
    query_opt(conn, sql, (admin.to_string(), once_key), rows::ledger_entry)
}

/// A user's ledger, newest first.
pub(crate) fn ledger(conn: &Connection, user: UserId, max: usize) -> Result<Vec<LedgerEntry>, Failure> {
    let sql =
        concat!("SELECT ", ledger_columns!(), " FROM ledger WHERE user_id = ?1 ORDER BY at DESC, id DESC LIMIT ?2");
    query_all(conn, sql, (user.to_string(), limit(max)), rows::ledger_entry)
}

/// Records one finished run (one row per entry).
pub(crate) fn insert_usage_row(conn: &Connection, row: &UsageRow) -> Result<(), Failure> {
    conn.prepare_cached(
        "INSERT INTO usage_history (entry_id, user_id, admin_id, started_at, ended_at, running_seconds, held_seconds, \
         charged_seconds, end_reason) VALUES (:entry_id, :user_id, :admin_id, :started_at, :ended_at, \
         :running_seconds, :held_seconds, :charged_seconds, :end_reason)",
    )?
    .execute(named_params! {
        ":entry_id": row.entry_id.to_string(),
        ":user_id": row.user_id.to_string(),
        ":admin_id": row.admin_id.to_string(),
        ":started_at": row.started_at.millis(),
        ":ended_at": row.ended_at.millis(),
        ":running_seconds": row.running_seconds,
        ":held_seconds": row.held_seconds,
        ":charged_seconds": row.charged_seconds,
        ":end_reason": row.end_reason.as_str(),
    })?;
    Ok(())
}

/// Usage rows of a tenant (or of one of its users) that ended in `[from, to)`, newest first.
pub(crate) fn usage(conn: &Connection, query: &UsageQuery) -> Result<Vec<UsageRow>, Failure> {
    // Open bounds become the extreme integers, so the range stays usable by the index.
    let params = (
        query.admin.to_string(),
        query.from.map_or(i64::MIN, |from| from.millis()),
        query.to.map_or(i64::MAX, |to| to.millis()),
        limit(query.limit),
    );
    match query.user {
        None => {
            let sql = concat!(
                "SELECT ",
                usage_columns!(),
                " FROM usage_history WHERE admin_id = ?1 AND ended_at >= ?2 AND ended_at < ?3 \
                 ORDER BY ended_at DESC, entry_id DESC LIMIT ?4"
            );
            query_all(conn, sql, params, rows::usage_row)
        }
        Some(user) => {
            let sql = concat!(
                "SELECT ",
                usage_columns!(),
                " FROM usage_history WHERE user_id = ?5 AND admin_id = ?1 AND ended_at >= ?2 AND ended_at < ?3 \
                 ORDER BY ended_at DESC, entry_id DESC LIMIT ?4"
            );
            let (admin, from, to, max) = params;
            query_all(conn, sql, (admin, from, to, max, user.to_string()), rows::usage_row)
        }
    }
}

/// Every pump's figures in one statement (one snapshot): owners and farmers counted through
/// `accounts_role_username`, the seconds charged and the cash taken from `?1` summed through
/// `usage_history_ended` and `receipts_at` (each index holds the figure it sums; `receipts_at`
/// holds the receipts that are not void).
pub(crate) const FLEET_TOTALS: &str = "SELECT \
     (SELECT COUNT(*) FROM accounts WHERE role = 'admin'), \
     (SELECT COUNT(*) FROM accounts WHERE role = 'user'), \
     (SELECT COALESCE(SUM(charged_seconds), 0) FROM usage_history WHERE ended_at >= ?1), \
     (SELECT COALESCE(SUM(cash_taka), 0) FROM receipts WHERE at >= ?1 AND voided_at IS NULL)";

/// Every pump's owners and farmers, and the seconds charged and the cash taken since `since`
/// (the rows [`usage`] and `owner::receipts` read from `since`, of every tenant).
pub(crate) fn fleet_totals(conn: &Connection, since: Timestamp) -> Result<FleetTotals, Failure> {
    let (owners, farmers, charged_seconds, cash_taka): (i64, i64, i64, i64) = conn
        .prepare_cached(FLEET_TOTALS)?
        .query_row([since.millis()], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?;
    Ok(FleetTotals {
        owners: u64::try_from(owners).unwrap_or(0),
        farmers: u64::try_from(farmers).unwrap_or(0),
        charged_seconds,
        cash_taka,
    })
}

/// Appends one audit log line.
pub(crate) fn insert_audit(conn: &Connection, entry: &AuditEntry) -> Result<(), Failure> {
    conn.prepare_cached(
        "INSERT INTO audit_logs (admin_id, at, actor_id, action, target_id, detail) \
         VALUES (:admin_id, :at, :actor_id, :action, :target_id, :detail)",
    )?
    .execute(named_params! {
        ":admin_id": entry.admin_id.map(|id| id.to_string()),
        ":at": entry.at.millis(),
        ":actor_id": entry.actor_id.map(|id| id.to_string()),
        ":action": entry.action,
        ":target_id": entry.target_id,
        ":detail": entry.detail,
    })?;
    Ok(())
}

/// Audit lines of a tenant, or of everything, newest first.
pub(crate) fn audit(conn: &Connection, admin: Option<AdminId>, max: usize) -> Result<Vec<AuditEntry>, Failure> {
    match admin {
        Some(admin) => {
            let sql = concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit_logs WHERE admin_id = ?1 ORDER BY at DESC, id DESC LIMIT ?2"
            );
            query_all(conn, sql, (admin.to_string(), limit(max)), rows::audit_entry)
        }
        None => {
            let sql = concat!("SELECT ", audit_columns!(), " FROM audit_logs ORDER BY at DESC, id DESC LIMIT ?1");
            query_all(conn, sql, [limit(max)], rows::audit_entry)
        }
    }
}

/// A page of a tenant's audit lines matching the query, newest first. Every filter is a
/// parameter (`?n IS NULL OR …`), so the statement is one for every query.
pub(crate) fn audit_lines(conn: &Connection, query: &AuditQuery) -> Result<Vec<AuditEntry>, Failure> {
    let sql = concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit_logs WHERE admin_id = :admin AND (:action IS NULL OR action = :action) \
         AND (:about IS NULL OR actor_id = :about OR target_id = :about) \
         AND (:from IS NULL OR at >= :from) AND (:to IS NULL OR at < :to) \
         ORDER BY at DESC, id DESC LIMIT :limit OFFSET :offset"
    );
    query_all(
        conn,
        sql,
        named_params! {
            ":admin": query.admin.to_string(),
            ":action": query.action,
            ":about": query.about,
            ":from": query.from.map(|t| t.millis()),
            ":to": query.to.map(|t| t.millis()),
            ":limit": limit(query.limit),
            ":offset": i64::try_from(query.offset).unwrap_or(i64::MAX),
        },
        rows::audit_entry,
    )
}

/// Stores a new minute request.
pub(crate) fn create_request(conn: &Connection, request: &MinuteRequest) -> Result<(), Failure> {
    conn.prepare_cached(
        "INSERT INTO minute_requests (id, user_id, admin_id, minutes, note, status, created_at, decided_at, \
         decided_by, reject_reason) VALUES (:id, :user_id, :admin_id, :minutes, :note, :status, :created_at, \
         :decided_at, :decided_by, :reject_reason)",
    )?
    .execute(named_params! {
        ":id": request.id.to_string(),
        ":user_id": request.user_id.to_string(),
        ":admin_id": request.admin_id.to_string(),
        ":minutes": request.minutes,
        ":note": request.note,
        ":status": request.status.as_str(),
        ":created_at": request.created_at.millis(),
        ":decided_at": opt_ms(request.decided_at),
        ":decided_by": request.decided_by.map(|id| id.to_string()),
        ":reject_reason": request.reject_reason.map(RejectReason::as_str),
    })?;
    Ok(())
}

/// A new request from a user, refused while another of theirs is PENDING (writes go through one
/// connection, so the check and the insert cannot interleave with another request's).
pub(crate) fn ask(conn: &Connection, request: &MinuteRequest) -> Result<(), Failure> {
    let pending = conn
        .prepare_cached("SELECT 1 FROM minute_requests WHERE user_id = ?1 AND status = 'PENDING'")?
        .exists([request.user_id.to_string()])?;
    if pending && request.status == RequestStatus::Pending {
        return Err(StoreError::RequestPending.into());
    }
    create_request(conn, request)
}

/// One minute request.
pub(crate) fn request(conn: &Connection, id: RequestId) -> Result<Option<MinuteRequest>, Failure> {
    let sql = concat!("SELECT ", request_columns!(), " FROM minute_requests WHERE id = ?1");
    query_opt(conn, sql, [id.to_string()], rows::minute_request)
}

/// Requests of a tenant, optionally of one user and one status, newest first.
pub(crate) fn requests(conn: &Connection, query: &RequestQuery) -> Result<Vec<MinuteRequest>, Failure> {
    // `?2 IS NULL OR …` keeps one statement; the admin_id index does the narrowing.
    let sql = concat!(
        "SELECT ",
        request_columns!(),
        " FROM minute_requests WHERE admin_id = ?1 AND (?2 IS NULL OR user_id = ?2) AND (?3 IS NULL OR status = ?3) \
         ORDER BY created_at DESC, id DESC"
    );
    let params =
        (query.admin.to_string(), query.user.map(|user| user.to_string()), query.status.map(RequestStatus::as_str));
    query_all(conn, sql, params, rows::minute_request)
}

/// Decides a PENDING request once: [`StoreError::AlreadyDecided`] if it was decided before,
/// [`StoreError::NotFound`] if the tenant has no such request. The owner's notice of the request
/// is settled with it ([`pumppilot_store::request_notice_key`]). In the caller's transaction.
pub(crate) fn decide(conn: &Connection, decision: &Decision) -> Result<(), Failure> {
    if decision.status == RequestStatus::Pending {
        return Err(invariant("a decision must approve or reject"));
    }
    let key = (decision.request_id.to_string(), decision.admin_id.to_string());
    let decided = conn
        .prepare_cached(
            "UPDATE minute_requests SET status = :status, decided_at = :at, decided_by = :by, reject_reason = :reason \
             WHERE id = :id AND admin_id = :admin_id AND status = 'PENDING'",
        )?
        .execute(named_params! {
            ":id": key.0,
            ":admin_id": key.1,
            ":status": decision.status.as_str(),
            ":at": decision.at.millis(),
            ":by": decision.decided_by.to_string(),
            ":reason": decision.reason.map(RejectReason::as_str),
        })?;
    if decided == 0 {
        let exists =
            conn.prepare_cached("SELECT 1 FROM minute_requests WHERE id = ?1 AND admin_id = ?2")?.exists(key)?;
        return Err(if exists { StoreError::AlreadyDecided } else { StoreError::NotFound }.into());
    }
    crate::alerts::settle(conn, &pumppilot_store::request_notice_key(decision.request_id), decision.at)
}
