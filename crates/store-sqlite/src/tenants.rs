//! Tenants: loading the engine state and committing a transition atomically.

use std::collections::BTreeMap;

use pumppilot_engine::{
    AdminId, DeviceLink, MotorHistory, MotorRules, MotorSettings, QueueEntry, Tenant, Timestamp, UserId,
};
use pumppilot_store::{OwnedCommit, StoreError, StoreResult};
use rusqlite::{Connection, TransactionBehavior, named_params};

use crate::{
    accounts, alerts, books,
    error::{Failure, constraint_message, invariant},
    rows::{self, RowExt, entry_columns, opt_ms, query_all, query_opt, to_i64},
};

/// Every tenant's admin id.
pub(crate) fn ids(conn: &Connection) -> Result<Vec<AdminId>, Failure> {
    query_all(conn, "SELECT admin_id FROM tenants ORDER BY admin_id", [], |row| row.parsed("admin_id"))
}

/// Every tenant with a RUNNING or HOLD entry (the index of one active entry per admin holds them).
pub(crate) fn with_runs(conn: &Connection) -> Result<Vec<AdminId>, Failure> {
    query_all(conn, "SELECT admin_id FROM queues WHERE status IN ('RUNNING', 'HOLD')", [], |row| row.parsed("admin_id"))
}

/// What every tenant's row says of its device and grid (or only those `wanted`: a store of one
/// server, whose watch always asks for all, so a few are picked from all).
pub(crate) fn links(
    conn: &Connection,
    wanted: Option<&std::collections::HashSet<AdminId>>,
) -> Result<Vec<pumppilot_store::PumpLink>, Failure> {
    let sql = "SELECT admin_id, version, controller_id, last_poll_at, load_shedding, grid_up_since, \
               without_command_since FROM tenants";
    let mut links = query_all(conn, sql, [], |row| {
        Ok(pumppilot_store::PumpLink {
            admin: row.parsed("admin_id")?,
            version: row.unsigned("version")?,
            controller: row.opt_parsed("controller_id")?,
            last_poll_at: row.opt_at("last_poll_at")?,
            load_shedding: row.get("load_shedding")?,
            grid_up_since: row.opt_at("grid_up_since")?,
            without_command_since: row.opt_at("without_command_since")?,
        })
    })?;
    if let Some(wanted) = wanted {
        links.retain(|link| wanted.contains(&link.admin));
    }
    Ok(links)
}

/// The tenant's engine state, read from one snapshot: its row, its live entries and the wallets of
/// its accounts that hold seconds.
pub(crate) fn load(conn: &mut Connection, admin: AdminId, lease_ms: i64) -> Result<Option<Tenant>, Failure> {
    let tx = conn.transaction()?;
    let key = admin.to_string();
    let sql = "SELECT version, suspended, seq, last_poll_at, load_shedding, ready, relay, controller_id, min_off_ms, \
               grid_settle_ms, max_starts_per_hour, motor_on, motor_off_since, grid_up_since, motor_starts, \
               without_command_since FROM tenants WHERE admin_id = ?1";
    let tenant = query_opt(&tx, sql, [&key], |row| {
        Ok(Tenant {
            admin_id: admin,
            version: row.unsigned("version")?,
            suspended: row.get("suspended")?,
            device: DeviceLink {
                last_poll_at: row.opt_at("last_poll_at")?,
                load_shedding: row.get("load_shedding")?,
                ready: row.get("ready")?,
                relay: row.get("relay")?,
                lease_ms,
                without_command_since: row.opt_at("without_command_since")?,
            },
            active: None,
            waiting: Vec::new(),
            wallets: BTreeMap::new(),
            seq: row.unsigned("seq")?,
            controller: row.opt_parsed("controller_id")?,
            motor_settings: MotorSettings {
                min_off_ms: row.get("min_off_ms")?,
                grid_settle_ms: row.get("grid_settle_ms")?,
                max_starts_per_hour: row.get("max_starts_per_hour")?,
            },
            defaults: MotorRules::NONE,
            motor: MotorHistory {
                on: row.get("motor_on")?,
                off_since: row.opt_at("motor_off_since")?,
                grid_up_since: row.opt_at("grid_up_since")?,
                starts: {
                    let text: String = row.get("motor_starts")?;
                    parse_starts(&text).map_err(|cause| rows::bad_value(row, "motor_starts", &text, cause))?
                },
            },
        })
    })?;
    let Some(mut tenant) = tenant else { return Ok(None) };
    // Both queries read through the partial unique indexes.
    let sql =
        concat!("SELECT ", entry_columns!(), " FROM queues WHERE admin_id = ?1 AND status IN ('RUNNING', 'HOLD')");
    tenant.active = query_opt(&tx, sql, [&key], rows::entry)?.map(Box::new);
    let sql = concat!(
        "SELECT ",
        entry_columns!(),
        " FROM queues WHERE admin_id = ?1 AND status = 'WAITING' ORDER BY position"
    );
    tenant.waiting = query_all(&tx, sql, [&key], rows::entry)?;
    let sql = "SELECT id, balance_seconds FROM accounts WHERE admin_id = ?1 AND balance_seconds != 0";
    let wallets =
        query_all(&tx, sql, [&key], |row| Ok((row.parsed::<UserId>("id")?, row.get::<_, i64>("balance_seconds")?)))?;
    tenant.wallets = wallets.into_iter().collect();
    Ok(Some(tenant))
}

/// Writes transitions made at once in one `BEGIN IMMEDIATE` transaction (one sync of the log),
/// each in a savepoint of its own: a transition refused (its tenant's version moved, a rule of
/// the schema broken) writes nothing and gets its own answer, and the others are written as if
/// alone, in order (a second transition of one tenant builds on the first). A failure of the
/// database itself fails the whole batch, and nothing of it is written.
pub(crate) fn commit(conn: &mut Connection, batch: &[OwnedCommit]) -> Result<Vec<StoreResult<()>>, Failure> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut answers = Vec::with_capacity(batch.len());
    for commit in batch {
        let savepoint = tx.savepoint()?;
        answers.push(match write(&savepoint, commit) {
            Ok(()) => Ok(savepoint.commit()?),
            // Dropped unreleased, the savepoint is rolled back: the refused transition wrote nothing.
            Err(failure) => Err(refusal(failure)?),
        });
    }
    tx.commit()?;
    Ok(answers)
}

/// A transition's own refusal (its answer), or a failure of the database (the batch's).
fn refusal(failure: Failure) -> Result<StoreError, Failure> {
    match failure {
        Failure::Store(refusal) => Ok(refusal),
        Failure::Sql(error) => match constraint_message(&error) {
            Some(message) => Ok(StoreError::Invariant(message)),
            None => Err(Failure::Sql(error)),
        },
    }
}

/// Writes one transition inside `tx`.
///
/// Order matters: the version guard first; then ended entries, the active entry and the waiting
/// entries in ascending position, so that the unique indexes (one active entry per admin, one
/// entry per position) hold after every statement while the line closes up; then the books.
fn write(tx: &Connection, commit: &OwnedCommit) -> Result<(), Failure> {
    let tenant = &commit.tenant;
    write_state(tx, tenant, StateWrite::Transition)?;
    for entry in &commit.records.ended {
        write_entry(tx, entry, None)?;
    }
    if let Some(active) = &tenant.active {
        write_entry(tx, active, None)?;
    }
    if commit.records.reordered {
        // Entries that pass each other in the line would meet at one place on the way (the unique
        // index is checked per statement): first they all step aside, then take their places.
        tx.prepare_cached(
            "UPDATE queues SET position = position + 1000000 WHERE admin_id = ?1 AND status = 'WAITING'",
        )?
        .execute([tenant.admin_id.to_string()])?;
    }
    for (position, entry) in (1_i64..).zip(&tenant.waiting) {
        write_entry(tx, entry, Some(position))?;
    }
    check_live_entries(tx, tenant)?;
    for entry in &commit.records.ledger {
        books::insert_ledger_entry(tx, entry)?;
    }
    for row in &commit.records.usage {
        books::insert_usage_row(tx, row)?;
    }
    for entry in &commit.audit {
        books::insert_audit(tx, entry)?;
    }
    if let Some(decision) = &commit.decision {
        books::decide(tx, decision)?;
    }
    for notice in &commit.records.notices {
        alerts::insert_notice(tx, notice)?;
    }
    if let Some((account, suspended)) = commit.suspension {
        accounts::set_suspended_in_tenant(tx, tenant.admin_id, account, suspended)?;
    }
    if let Some(receipt) = &commit.receipt {
        crate::owner::write_receipt(tx, receipt)?;
    }
    Ok(())
}

/// How a tenant's state row is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateWrite {
    /// A transition: the version moves on, only from the one the transition started from, and the
    /// last poll only moves forward (batched telemetry may have recorded a later one).
    Transition,
    /// A copy of another store's tenant: the version and the last poll as they are.
    Import,
}

/// The columns of a tenant's state that every write sets, as SQL assignments.
macro_rules! state_columns {
    () => {
        "suspended = :suspended, seq = :seq, load_shedding = :load_shedding, ready = :ready, relay = :relay, \
         controller_id = :controller_id, min_off_ms = :min_off_ms, grid_settle_ms = :grid_settle_ms, \
         max_starts_per_hour = :max_starts_per_hour, motor_on = :motor_on, motor_off_since = :motor_off_since, \
         grid_up_since = :grid_up_since, motor_starts = :motor_starts, \
         without_command_since = :without_command_since"
    };
}

/// Writes a tenant's state row; [`StateWrite::Transition`] fails with `VersionConflict` when the
/// stored version moved, and both with `NotFound` when there is no such tenant.
pub(crate) fn write_state(tx: &Connection, tenant: &Tenant, how: StateWrite) -> Result<(), Failure> {
    let sql = match how {
        StateWrite::Transition => concat!(
            "UPDATE tenants SET version = version + 1, ",
            "last_poll_at = max(coalesce(last_poll_at, :last_poll_at), coalesce(:last_poll_at, last_poll_at)), ",
            state_columns!(),
            " WHERE admin_id = :admin_id AND version = :version"
        ),
        StateWrite::Import => concat!(
            "UPDATE tenants SET version = :version, last_poll_at = :last_poll_at, ",
            state_columns!(),
            " WHERE admin_id = :admin_id"
        ),
    };
    let changed = tx.prepare_cached(sql)?.execute(named_params! {
        ":admin_id": tenant.admin_id.to_string(),
        ":version": to_i64(tenant.version, "version")?,
        ":suspended": tenant.suspended,
        ":seq": to_i64(tenant.seq, "seq")?,
        ":last_poll_at": opt_ms(tenant.device.last_poll_at),
        ":load_shedding": tenant.device.load_shedding,
        ":ready": tenant.device.ready,
        ":relay": tenant.device.relay,
        ":controller_id": tenant.controller.map(|device| device.to_string()),
        ":min_off_ms": tenant.motor_settings.min_off_ms,
        ":grid_settle_ms": tenant.motor_settings.grid_settle_ms,
        ":max_starts_per_hour": tenant.motor_settings.max_starts_per_hour,
        ":motor_on": tenant.motor.on,
        ":motor_off_since": opt_ms(tenant.motor.off_since),
        ":grid_up_since": opt_ms(tenant.motor.grid_up_since),
        ":motor_starts": tenant.motor.starts.iter().map(|at| at.millis().to_string()).collect::<Vec<_>>().join(","),
        ":without_command_since": opt_ms(tenant.device.without_command_since),
    })?;
    if changed == 0 {
        let exists =
            tx.prepare_cached("SELECT 1 FROM tenants WHERE admin_id = ?1")?.exists([tenant.admin_id.to_string()])?;
        return Err(if exists { StoreError::VersionConflict } else { StoreError::NotFound }.into());
    }
    Ok(())
}

/// Inserts an entry or updates its stored row. A stored row changes only while it is live and
/// only for the same tenant and user: an ended entry is final.
pub(crate) fn write_entry(tx: &Connection, entry: &QueueEntry, position: Option<i64>) -> Result<(), Failure> {
    let changed = tx
        .prepare_cached(
            "INSERT INTO queues (id, admin_id, user_id, status, position, hold_reason, requested_seconds, created_at, \
             started_at, phase_since, running_ms, held_ms, ended_at, end_reason, charged_seconds) \
             VALUES (:id, :admin_id, :user_id, :status, :position, :hold_reason, :requested_seconds, :created_at, \
             :started_at, :phase_since, :running_ms, :held_ms, :ended_at, :end_reason, :charged_seconds) \
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, position = excluded.position, \
             hold_reason = excluded.hold_reason, requested_seconds = excluded.requested_seconds, \
             started_at = excluded.started_at, phase_since = excluded.phase_since, running_ms = excluded.running_ms, \
             held_ms = excluded.held_ms, ended_at = excluded.ended_at, end_reason = excluded.end_reason, \
             charged_seconds = excluded.charged_seconds \
             WHERE queues.admin_id = excluded.admin_id AND queues.user_id = excluded.user_id \
             AND queues.status IN ('WAITING', 'RUNNING', 'HOLD')",
        )?
        .execute(named_params! {
            ":id": entry.id.to_string(),
            ":admin_id": entry.admin_id.to_string(),
            ":user_id": entry.user_id.to_string(),
            ":status": entry.status.as_str(),
            ":position": position,
            ":hold_reason": entry.hold_reason.map(|reason| reason.as_str()),
            ":requested_seconds": entry.requested_seconds,
            ":created_at": entry.created_at.millis(),
            ":started_at": opt_ms(entry.started_at),
            ":phase_since": opt_ms(entry.phase_since),
            ":running_ms": entry.running_ms,
            ":held_ms": entry.held_ms,
            ":ended_at": opt_ms(entry.ended_at),
            ":end_reason": entry.end_reason.map(|reason| reason.as_str()),
            ":charged_seconds": entry.charged_seconds,
        })
        .map_err(|error| match constraint_message(&error) {
            Some(message) => invariant(explain_queue_constraint(entry, position, &message)),
            None => Failure::Sql(error),
        })?;
    if changed == 0 {
        return Err(invariant(format!(
            "queue entry {} is already ended, or is stored for another tenant or user",
            entry.id
        )));
    }
    Ok(())
}

/// Says which rule of the queue an entry broke, in the store's words.
fn explain_queue_constraint(entry: &QueueEntry, position: Option<i64>, message: &str) -> String {
    let rule = if message.contains("queues.admin_id, queues.position") {
        format!("another entry already waits at position {}", position.unwrap_or_default())
    } else if message.contains("queues.admin_id") {
        "another entry is already active for this admin (one RUNNING or HOLD entry per admin)".to_owned()
    } else {
        message.to_owned()
    };
    format!("queue entry {} ({}) refused: {rule}", entry.id, entry.status.as_str())
}

/// The stored live entries must be exactly the state's: an entry that left the state without
/// being ended would otherwise stay live in the store.
fn check_live_entries(tx: &Connection, tenant: &Tenant) -> Result<(), Failure> {
    let key = tenant.admin_id.to_string();
    let sql = "SELECT id FROM queues WHERE admin_id = ?1 AND status IN ('RUNNING', 'HOLD')";
    let stored_active = query_opt(tx, sql, [&key], |row| row.parsed("id"))?;
    if stored_active != tenant.active.as_ref().map(|entry| entry.id) {
        return Err(invariant("the stored active entry is not the state's, and it was not ended"));
    }
    let sql = "SELECT count(*) FROM queues WHERE admin_id = ?1 AND status = 'WAITING'";
    let stored_waiting: i64 = tx.prepare_cached(sql)?.query_row([&key], |row| row.get(0))?;
    if usize::try_from(stored_waiting).ok() != Some(tenant.waiting.len()) {
        return Err(invariant("a stored waiting entry is not in the state's line, and it was not ended"));
    }
    Ok(())
}

/// The starts of the last hour from their stored form (milliseconds, comma-separated).
fn parse_starts(text: &str) -> Result<Vec<Timestamp>, std::num::ParseIntError> {
    text.split(',').filter(|part| !part.is_empty()).map(|part| part.parse().map(Timestamp)).collect()
}
