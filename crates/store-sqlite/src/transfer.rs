//! Moving an installation: everything out in one read, records in exactly as they are.

use pumppilot_engine::AdminId;
use pumppilot_store::{SessionKind, Snapshot, StoreError};
use rusqlite::{Connection, TransactionBehavior};

use crate::{
    accounts, alerts, books, devices,
    error::{Failure, invariant},
    rows::{
        self, RowExt, account_columns, audit_columns, device_columns, entry_columns, ledger_columns, query_all,
        request_columns, session_columns, usage_columns,
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
        terms: crate::owner::all_terms(&tx)?,
        receipts: crate::owner::all_receipts(&tx)?,
        device_links: devices::links(&tx)?,
        firmware: crate::firmware::all(&tx)?,
        alert_profiles: alerts::all_profiles(&tx)?,
        notifications: alerts::all_kept(&tx)?,
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
        accounts::insert(&tx, account)?;
    }
    for tenant in &part.tenants {
        tenants::write_state(&tx, tenant, tenants::StateWrite::Import).map_err(|failure| match failure {
            Failure::Store(StoreError::NotFound) => {
                invariant(format!("tenant {} has no admin account", tenant.admin_id))
            }
            other => other,
        })?;
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
        books::record_ledger_entry(&tx, entry)?;
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
        devices::insert(&tx, device)?;
    }
    for (device, floor) in &part.device_links {
        devices::set_link(&tx, *device, *floor)?;
    }
    for (release, bytes) in &part.firmware {
        crate::firmware::put(&tx, release, bytes)?;
    }
    for card in &part.cards {
        tx.prepare_cached("INSERT INTO cards (admin_id, uid, user_id, bound_at) VALUES (?1, ?2, ?3, ?4)")?
            .execute((card.admin_id.to_string(), &card.uid, card.user_id.to_string(), card.bound_at.millis()))?;
    }
    for (admin, terms) in &part.terms {
        crate::owner::write_terms(&tx, *admin, terms)?;
    }
    for receipt in &part.receipts {
        crate::owner::insert_receipt(&tx, receipt)?;
    }
    for profile in &part.alert_profiles {
        alerts::write_profile(&tx, profile)?;
    }
    for kept in &part.notifications {
        if !alerts::insert_kept(&tx, kept)? {
            return Err(invariant(format!(
                "notification {}: its notice's key is stored already",
                kept.notification.id
            )));
        }
    }
    tx.commit()?;
    Ok(())
}

/// Deletes every row of every table, in one transaction.
pub(crate) fn erase(conn: &mut Connection) -> Result<(), Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "PRAGMA defer_foreign_keys = ON; DELETE FROM push_tickets; DELETE FROM firmware_downloads; DELETE FROM send_windows; DELETE FROM outbox; DELETE FROM notifications; DELETE FROM taken_texts; DELETE FROM push_tokens; DELETE FROM alert_profiles; \
         DELETE FROM receipts; DELETE FROM terms; DELETE FROM firmware; DELETE FROM cards; DELETE FROM devices; DELETE FROM web_sessions; \
         DELETE FROM mobile_sessions; DELETE FROM minute_requests; DELETE FROM audit_logs; DELETE FROM ledger; \
         DELETE FROM usage_history; DELETE FROM queues; DELETE FROM accounts; DELETE FROM tenants;",
    )?;
    tx.commit()?;
    Ok(())
}
