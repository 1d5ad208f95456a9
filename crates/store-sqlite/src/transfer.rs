//! Moving an installation: everything out in one read, records in exactly as they are.

use pumppilot_engine::AdminId;
use pumppilot_store::{SessionKind, Snapshot, StoreError};
use rusqlite::{Connection, TransactionBehavior, named_params};

use crate::{
    books, devices,
    error::Failure,
    rows::{
        self, RowExt, account_columns, audit_columns, device_columns, entry_columns, ledger_columns, query_all,
        request_columns, session_columns, to_i64, usage_columns,
    },
    sessions, tenants,
};

/// Everything, from one snapshot of the database.
pub(crate) fn export(conn: &mut Connection) -> Result<Snapshot, Failure> {
    let tx = conn.transaction()?;
    let mut snapshot = Snapshot {
        accounts: query_all(
            &tx,
            concat!("SELECT ", account_columns!(), " FROM accounts ORDER BY role = 'user', created_at, id"),
            [],
            rows::account,
        )?,
        ended_entries: query_all(
            &tx,
            concat!(
                "SELECT ",
                entry_columns!(),
                " FROM queues WHERE status IN ('COMPLETED', 'CANCELLED') ORDER BY created_at, id"
            ),
            [],
            rows::entry,
        )?,
        ledger: query_all(
            &tx,
            concat!("SELECT ", ledger_columns!(), " FROM ledger ORDER BY id"),
            [],
            rows::ledger_entry,
        )?,
        usage: query_all(
            &tx,
            concat!("SELECT ", usage_columns!(), " FROM usage_history ORDER BY ended_at, entry_id"),
            [],
            rows::usage_row,
        )?,
        audit: query_all(
            &tx,
            concat!("SELECT ", audit_columns!(), " FROM audit_logs ORDER BY id"),
            [],
            rows::audit_entry,
        )?,
        minute_requests: query_all(
            &tx,
            concat!("SELECT ", request_columns!(), " FROM minute_requests ORDER BY created_at, id"),
            [],
            rows::minute_request,
        )?,
        devices: query_all(
            &tx,
            concat!("SELECT ", device_columns!(), " FROM devices ORDER BY created_at, id"),
            [],
            rows::device,
        )?,
        cards: query_all(
            &tx,
            "SELECT admin_id, uid, user_id, bound_at FROM cards ORDER BY bound_at, uid",
            [],
            |row| {
                Ok(pumppilot_store::Card {
                    admin_id: row.parsed("admin_id")?,
                    uid: row.get("uid")?,
                    user_id: row.parsed("user_id")?,
                    bound_at: row.at("bound_at")?,
                })
            },
        )?,
        ..Snapshot::default()
    };
    for (kind, table) in [(SessionKind::Web, "web_sessions"), (SessionKind::Mobile, "mobile_sessions")] {
        let sql = format!("SELECT {} FROM {table} ORDER BY created_at, id", session_columns!());
        snapshot.sessions.extend(query_all(&tx, &sql, [], |row| rows::session(row, kind))?);
    }
    let ids: Vec<AdminId> = tenants::ids(&tx)?;
    drop(tx);
    for admin in ids {
        // Each load is its own snapshot; a migration reads a store nothing else writes.
        if let Some(tenant) = tenants::load(conn, admin, 0)? {
            snapshot.tenants.push(tenant);
        }
    }
    Ok(snapshot)
}

/// Writes a part of a snapshot in one transaction.
pub(crate) fn import(conn: &mut Connection, part: &Snapshot) -> Result<(), Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for account in &part.accounts {
        tx.prepare_cached(
            "INSERT INTO accounts (id, username, name, role, admin_id, password_hash, suspended, created_at) \
             VALUES (:id, :username, :name, :role, :admin_id, :password_hash, :suspended, :created_at)",
        )?
        .execute(named_params! {
            ":id": account.id.to_string(),
            ":username": account.username,
            ":name": account.name,
            ":role": account.role.as_str(),
            ":admin_id": account.admin_id.map(|admin| admin.to_string()),
            ":password_hash": account.password_hash,
            ":suspended": account.suspended,
            ":created_at": account.created_at.millis(),
        })?;
        if account.role == pumppilot_store::Role::Admin {
            tx.prepare_cached("INSERT INTO tenants (admin_id) VALUES (?1)")?.execute([account.id.to_string()])?;
        }
    }
    for tenant in &part.tenants {
        let changed = tx
            .prepare_cached(
                "UPDATE tenants SET version = :version, suspended = :suspended, seq = :seq, last_poll_at = :last_poll_at, \
                 load_shedding = :load_shedding, ready = :ready, relay = :relay, controller_id = :controller_id, \
                 min_off_ms = :min_off_ms, grid_settle_ms = :grid_settle_ms, max_starts_per_hour = :max_starts_per_hour, \
                 motor_on = :motor_on, motor_off_since = :motor_off_since, grid_up_since = :grid_up_since, \
                 motor_starts = :motor_starts WHERE admin_id = :admin_id",
            )?
            .execute(named_params! {
                ":admin_id": tenant.admin_id.to_string(),
                ":version": to_i64(tenant.version, "version")?,
                ":suspended": tenant.suspended,
                ":seq": to_i64(tenant.seq, "seq")?,
                ":last_poll_at": tenant.device.last_poll_at.map(|t| t.millis()),
                ":load_shedding": tenant.device.load_shedding,
                ":ready": tenant.device.ready,
                ":relay": tenant.device.relay,
                ":controller_id": tenant.controller.map(|device| device.to_string()),
                ":min_off_ms": tenant.motor_settings.min_off_ms,
                ":grid_settle_ms": tenant.motor_settings.grid_settle_ms,
                ":max_starts_per_hour": tenant.motor_settings.max_starts_per_hour,
                ":motor_on": tenant.motor.on,
                ":motor_off_since": tenant.motor.off_since.map(|t| t.millis()),
                ":grid_up_since": tenant.motor.grid_up_since.map(|t| t.millis()),
                ":motor_starts": tenants::starts_text(&tenant.motor.starts),
            })?;
        if changed == 0 {
            return Err(StoreError::Invariant(format!("tenant {} has no admin account", tenant.admin_id)).into());
        }
        if let Some(active) = &tenant.active {
            tenants::write_entry(&tx, active, None)?;
        }
        for (position, entry) in (1_i64..).zip(&tenant.waiting) {
            tenants::write_entry(&tx, entry, Some(position))?;
        }
        for (user, balance) in &tenant.wallets {
            tx.prepare_cached("UPDATE accounts SET balance_seconds = ?2 WHERE id = ?1 AND admin_id = ?3")?
                .execute((user.to_string(), balance, tenant.admin_id.to_string()))?;
        }
    }
    for entry in &part.ended_entries {
        if entry.status.is_live() {
            return Err(StoreError::Invariant(format!("queue entry {} has not ended", entry.id)).into());
        }
        tenants::write_entry(&tx, entry, None)?;
    }
    for entry in &part.ledger {
        tx.prepare_cached(
            "INSERT INTO ledger (user_id, admin_id, at, delta_seconds, kind, balance_after, actor_id, note, entry_id, \
             request_id) VALUES (:user_id, :admin_id, :at, :delta_seconds, :kind, :balance_after, :actor_id, :note, \
             :entry_id, :request_id)",
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
        })?;
    }
    for row in &part.usage {
        books::insert_usage_row(&tx, row)?;
    }
    for entry in &part.audit {
        books::insert_audit(&tx, entry)?;
    }
    for request in &part.minute_requests {
        books::create_request(&tx, request)?;
    }
    for session in &part.sessions {
        sessions::create(&tx, session)?;
    }
    for device in &part.devices {
        tx.prepare_cached(
            "INSERT INTO devices (id, admin_id, name, key_hash, created_at) \
             VALUES (:id, :admin_id, :name, :key_hash, :created_at)",
        )?
        .execute(named_params! {
            ":id": device.id.to_string(),
            ":admin_id": device.admin_id.to_string(),
            ":name": device.name,
            ":key_hash": device.key_hash,
            ":created_at": device.created_at.millis(),
        })?;
        if let Some(telemetry) = &device.telemetry {
            devices::write_telemetry(&tx, telemetry)?;
        }
    }
    for card in &part.cards {
        tx.prepare_cached("INSERT INTO cards (admin_id, uid, user_id, bound_at) VALUES (?1, ?2, ?3, ?4)")?
            .execute((card.admin_id.to_string(), &card.uid, card.user_id.to_string(), card.bound_at.millis()))?;
    }
    tx.commit()?;
    Ok(())
}

/// Deletes every row of every table, in one transaction.
pub(crate) fn erase(conn: &mut Connection) -> Result<(), Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "PRAGMA defer_foreign_keys = ON; DELETE FROM cards; DELETE FROM devices; DELETE FROM web_sessions; \
         DELETE FROM mobile_sessions; DELETE FROM minute_requests; DELETE FROM audit_logs; DELETE FROM ledger; \
         DELETE FROM usage_history; DELETE FROM queues; DELETE FROM accounts; DELETE FROM tenants;",
    )?;
    tx.commit()?;
    Ok(())
}
