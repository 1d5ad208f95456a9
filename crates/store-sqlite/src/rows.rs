//! Reading typed values out of rows, and the one mapping of each table's row to its type.
//!
//! A value that cannot be read (an id that is not a UUID, an unknown status) becomes a
//! conversion error naming the column, never a panic; the store reports it as unavailable.

use std::{fmt::Display, str::FromStr};

use pumppilot_engine::{LedgerEntry, QueueEntry, Timestamp, UsageRow};
use pumppilot_store::{
    Account, AuditEntry, Device, MinuteRequest, Session, SessionId, SessionKind, StoreName, Telemetry,
};
use rusqlite::{Connection, OptionalExtension, Params, Row, types::Type};
use uuid::Uuid;

use crate::error::{Failure, invariant};

/// Typed getters on a row, by column name.
pub(crate) trait RowExt {
    /// A TEXT column parsed with `FromStr` (ids).
    fn parsed<T: FromStr>(&self, column: &str) -> rusqlite::Result<T>
    where
        T::Err: Display;
    /// A nullable TEXT column parsed with `FromStr`.
    fn opt_parsed<T: FromStr>(&self, column: &str) -> rusqlite::Result<Option<T>>
    where
        T::Err: Display;
    /// A TEXT column holding an enum's store name.
    fn named<T: StoreName>(&self, column: &str) -> rusqlite::Result<T>;
    /// A nullable TEXT column holding an enum's store name.
    fn opt_named<T: StoreName>(&self, column: &str) -> rusqlite::Result<Option<T>>;
    /// An INTEGER column of milliseconds.
    fn at(&self, column: &str) -> rusqlite::Result<Timestamp>;
    /// A nullable INTEGER column of milliseconds.
    fn opt_at(&self, column: &str) -> rusqlite::Result<Option<Timestamp>>;
    /// An INTEGER column that must not be negative.
    fn unsigned(&self, column: &str) -> rusqlite::Result<u64>;
}

impl RowExt for Row<'_> {
    fn parsed<T: FromStr>(&self, column: &str) -> rusqlite::Result<T>
    where
        T::Err: Display,
    {
        let text: String = self.get(column)?;
        text.parse().map_err(|cause| bad_value(self, column, &text, cause))
    }

    fn opt_parsed<T: FromStr>(&self, column: &str) -> rusqlite::Result<Option<T>>
    where
        T::Err: Display,
    {
        let text: Option<String> = self.get(column)?;
        text.map(|text| text.parse().map_err(|cause| bad_value(self, column, &text, cause))).transpose()
    }

    fn named<T: StoreName>(&self, column: &str) -> rusqlite::Result<T> {
        let text: String = self.get(column)?;
        T::from_store_name(&text).ok_or_else(|| bad_value(self, column, &text, "unknown name"))
    }

    fn opt_named<T: StoreName>(&self, column: &str) -> rusqlite::Result<Option<T>> {
        let text: Option<String> = self.get(column)?;
        text.map(|text| T::from_store_name(&text).ok_or_else(|| bad_value(self, column, &text, "unknown name")))
            .transpose()
    }

    fn at(&self, column: &str) -> rusqlite::Result<Timestamp> {
        self.get(column).map(Timestamp)
    }

    fn opt_at(&self, column: &str) -> rusqlite::Result<Option<Timestamp>> {
        self.get::<_, Option<i64>>(column).map(|ms| ms.map(Timestamp))
    }

    fn unsigned(&self, column: &str) -> rusqlite::Result<u64> {
        let value: i64 = self.get(column)?;
        u64::try_from(value).map_err(|cause| bad_value(self, column, &value.to_string(), cause))
    }
}

/// The conversion error for a stored value this build cannot read.
pub(crate) fn bad_value(row: &Row<'_>, column: &str, value: &str, cause: impl Display) -> rusqlite::Error {
    let index = row.as_ref().column_index(column).unwrap_or_default();
    let message = format!("column {column} holds {value:?}, which cannot be read: {cause}");
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, message.into())
}

/// Every row `sql` selects, mapped with `map`, through the statement cache.
pub(crate) fn query_all<T, P: Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, Failure> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(params, map)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The first row `sql` selects, if any, mapped with `map`, through the statement cache.
pub(crate) fn query_opt<T, P: Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, Failure> {
    Ok(conn.prepare_cached(sql)?.query_row(params, map).optional()?)
}

/// Milliseconds of an optional time, for binding.
pub(crate) fn opt_ms(at: Option<Timestamp>) -> Option<i64> {
    at.map(Timestamp::millis)
}

/// The stored form of a session id (like the other ids: 32 hex digits).
pub(crate) fn session_key(id: SessionId) -> String {
    id.0.as_simple().to_string()
}

/// A non-negative count as SQLite's integer.
pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, Failure> {
    i64::try_from(value).map_err(|_| invariant(format!("{what} {value} is too large to store")))
}

/// A limit as SQLite's integer (anything above `i64::MAX` is no limit at all).
pub(crate) fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Columns of `queues` read by [`entry`].
macro_rules! entry_columns {
    () => {
        "id, user_id, admin_id, status, hold_reason, requested_seconds, created_at, started_at, phase_since, \
         running_ms, held_ms, ended_at, end_reason, charged_seconds"
    };
}
pub(crate) use entry_columns;

/// A queue entry.
pub(crate) fn entry(row: &Row<'_>) -> rusqlite::Result<QueueEntry> {
    Ok(QueueEntry {
        id: row.parsed("id")?,
        user_id: row.parsed("user_id")?,
        admin_id: row.parsed("admin_id")?,
        status: row.named("status")?,
        hold_reason: row.opt_named("hold_reason")?,
        requested_seconds: row.get("requested_seconds")?,
        created_at: row.at("created_at")?,
        started_at: row.opt_at("started_at")?,
        phase_since: row.opt_at("phase_since")?,
        running_ms: row.get("running_ms")?,
        held_ms: row.get("held_ms")?,
        ended_at: row.opt_at("ended_at")?,
        end_reason: row.opt_named("end_reason")?,
        charged_seconds: row.get("charged_seconds")?,
    })
}

/// Columns of `accounts` read by [`account`].
macro_rules! account_columns {
    () => {
        "id, username, name, role, admin_id, password_hash, suspended, created_at"
    };
}
pub(crate) use account_columns;

/// An account.
pub(crate) fn account(row: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: row.parsed("id")?,
        username: row.get("username")?,
        name: row.get("name")?,
        role: row.named("role")?,
        admin_id: row.opt_parsed("admin_id")?,
        password_hash: row.get("password_hash")?,
        suspended: row.get("suspended")?,
        created_at: row.at("created_at")?,
    })
}

/// Columns of `devices` read by [`device`].
macro_rules! device_columns {
    () => {
        "id, admin_id, name, key_hash, created_at, last_seen_at, load_shedding, ready, relay, firmware, uptime_ms, \
         rssi, last_reset, last_reset_at, reader, feedback"
    };
}
pub(crate) use device_columns;

/// A device, with its telemetry once it has polled.
pub(crate) fn device(row: &Row<'_>) -> rusqlite::Result<Device> {
    let id = row.parsed("id")?;
    let admin_id = row.parsed("admin_id")?;
    let telemetry = match row.opt_at("last_seen_at")? {
        None => None,
        Some(last_seen_at) => Some(Telemetry {
            device_id: id,
            admin_id,
            last_seen_at,
            load_shedding: row.get("load_shedding")?,
            ready: row.get("ready")?,
            relay: row.get("relay")?,
            firmware: row.get("firmware")?,
            uptime_ms: row
                .get::<_, Option<i64>>("uptime_ms")?
                .map(|ms| u64::try_from(ms).map_err(|cause| bad_value(row, "uptime_ms", &ms.to_string(), cause)))
                .transpose()?,
            rssi: row.get("rssi")?,
            last_reset: row
                .get::<_, Option<String>>("last_reset")?
                .map(|name| {
                    pumppilot_store::parse_reset_reason(&name)
                        .ok_or_else(|| bad_value(row, "last_reset", &name, "not a reset reason"))
                })
                .transpose()?,
            last_reset_at: row.opt_at("last_reset_at")?,
            reader: row
                .get::<_, Option<String>>("reader")?
                .map(|name| {
                    pumppilot_store::parse_reader_state(&name)
                        .ok_or_else(|| bad_value(row, "reader", &name, "not a reader state"))
                })
                .transpose()?,
            feedback: row.get("feedback")?,
        }),
    };
    Ok(Device {
        id,
        admin_id,
        name: row.get("name")?,
        key_hash: row.get("key_hash")?,
        created_at: row.at("created_at")?,
        telemetry,
    })
}

/// Columns of `web_sessions` and `mobile_sessions` read by [`session`].
macro_rules! session_columns {
    () => {
        "id, user_id, access_hash, access_expires_at, refresh_hash, previous_refresh_hash, refresh_expires_at, \
         device_name, created_at, revoked_at"
    };
}
pub(crate) use session_columns;

/// A session of the given kind (the kind is the table it came from).
pub(crate) fn session(row: &Row<'_>, kind: SessionKind) -> rusqlite::Result<Session> {
    Ok(Session {
        id: SessionId(row.parsed::<Uuid>("id")?),
        kind,
        user_id: row.parsed("user_id")?,
        access_hash: row.get("access_hash")?,
        access_expires_at: row.at("access_expires_at")?,
        refresh_hash: row.get("refresh_hash")?,
        previous_refresh_hash: row.get("previous_refresh_hash")?,
        refresh_expires_at: row.opt_at("refresh_expires_at")?,
        device_name: row.get("device_name")?,
        created_at: row.at("created_at")?,
        revoked_at: row.opt_at("revoked_at")?,
    })
}

/// Columns of `ledger` read by [`ledger_entry`].
macro_rules! ledger_columns {
    () => {
        "user_id, admin_id, at, delta_seconds, kind, balance_after, actor_id, note, entry_id, request_id, once_key, \
         receipt_id"
    };
}
pub(crate) use ledger_columns;

/// A ledger entry.
pub(crate) fn ledger_entry(row: &Row<'_>) -> rusqlite::Result<LedgerEntry> {
    Ok(LedgerEntry {
        user_id: row.parsed("user_id")?,
        admin_id: row.parsed("admin_id")?,
        at: row.at("at")?,
        delta_seconds: row.get("delta_seconds")?,
        kind: row.named("kind")?,
        balance_after: row.get("balance_after")?,
        actor_id: row.opt_parsed("actor_id")?,
        note: row.get("note")?,
        entry_id: row.opt_parsed("entry_id")?,
        request_id: row.opt_parsed("request_id")?,
        once_key: row.get("once_key")?,
        receipt_id: row.opt_parsed("receipt_id")?,
    })
}

/// Columns of `usage_history` read by [`usage_row`].
macro_rules! usage_columns {
    () => {
        "entry_id, user_id, admin_id, started_at, ended_at, running_seconds, held_seconds, charged_seconds, \
         end_reason"
    };
}
pub(crate) use usage_columns;

/// A usage row.
pub(crate) fn usage_row(row: &Row<'_>) -> rusqlite::Result<UsageRow> {
    Ok(UsageRow {
        entry_id: row.parsed("entry_id")?,
        user_id: row.parsed("user_id")?,
        admin_id: row.parsed("admin_id")?,
        started_at: row.at("started_at")?,
        ended_at: row.at("ended_at")?,
        running_seconds: row.get("running_seconds")?,
        held_seconds: row.get("held_seconds")?,
        charged_seconds: row.get("charged_seconds")?,
        end_reason: row.named("end_reason")?,
    })
}

/// Columns of `audit_logs` read by [`audit_entry`].
macro_rules! audit_columns {
    () => {
        "admin_id, at, actor_id, action, target_id, detail"
    };
}
pub(crate) use audit_columns;

/// An audit log line.
pub(crate) fn audit_entry(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        admin_id: row.opt_parsed("admin_id")?,
        at: row.at("at")?,
        actor_id: row.opt_parsed("actor_id")?,
        action: row.get("action")?,
        target_id: row.get("target_id")?,
        detail: row.get("detail")?,
    })
}

/// Columns of `minute_requests` read by [`minute_request`].
macro_rules! request_columns {
    () => {
        "id, user_id, admin_id, minutes, note, status, created_at, decided_at, decided_by, reject_reason"
    };
}
pub(crate) use request_columns;

/// A minute request.
pub(crate) fn minute_request(row: &Row<'_>) -> rusqlite::Result<MinuteRequest> {
    Ok(MinuteRequest {
        id: row.parsed("id")?,
        user_id: row.parsed("user_id")?,
        admin_id: row.parsed("admin_id")?,
        minutes: row.get("minutes")?,
        note: row.get("note")?,
        status: row.named("status")?,
        created_at: row.at("created_at")?,
        decided_at: row.opt_at("decided_at")?,
        decided_by: row.opt_parsed("decided_by")?,
        reject_reason: row.opt_named("reject_reason")?,
    })
}
