//! Devices at the pumps, their keys and their last telemetry.

use pumppilot_engine::{AdminId, DeviceId};
use pumppilot_store::{
    CounterWindow, Device, Reserved, StoreError, StoreResult, Telemetry, reader_state_name, reset_reason_name,
};
use rusqlite::{Connection, TransactionBehavior, named_params};

use crate::{
    error::{Failure, constraint_message, invariant},
    rows::{self, RowExt, device_columns, query_all, query_opt},
};

/// Registers a device (with its telemetry, if it comes with one).
pub(crate) fn create(conn: &mut Connection, device: &Device) -> Result<(), Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    create_in(&tx, device, None)?;
    tx.commit()?;
    Ok(())
}

/// [`create`] inside the caller's transaction; with the key it was asked with, one device per key
/// in a tenant ([`StoreError::AlreadyMade`] for a second).
pub(crate) fn create_in(tx: &Connection, device: &Device, once_key: Option<&str>) -> Result<(), Failure> {
    if device.telemetry.as_ref().is_some_and(|t| t.device_id != device.id || t.admin_id != device.admin_id) {
        return Err(invariant("a new device's telemetry names another device"));
    }
    insert_once(tx, device, once_key)
}

/// The device a tenant's registration with `once_key` made (the unique `devices_once_key`).
pub(crate) fn with_key(conn: &Connection, admin: AdminId, once_key: &str) -> Result<Option<Device>, Failure> {
    let sql = concat!("SELECT ", device_columns!(), " FROM devices WHERE admin_id = ?1 AND once_key = ?2");
    query_opt(conn, sql, (admin.to_string(), once_key), rows::device)
}

/// Writes a device and its telemetry inside the caller's transaction.
pub(crate) fn insert(tx: &Connection, device: &Device) -> Result<(), Failure> {
    insert_once(tx, device, None)
}

/// [`insert`], with the key the device was registered with.
fn insert_once(tx: &Connection, device: &Device, once_key: Option<&str>) -> Result<(), Failure> {
    tx.prepare_cached(
        "INSERT INTO devices (id, admin_id, name, key_hash, created_at, once_key) \
         VALUES (:id, :admin_id, :name, :key_hash, :created_at, :once_key)",
    )?
    .execute(named_params! {
        ":id": device.id.to_string(),
        ":admin_id": device.admin_id.to_string(),
        ":name": device.name,
        ":key_hash": device.key_hash,
        ":created_at": device.created_at.millis(),
        ":once_key": once_key,
    })
    .map_err(|error| match constraint_message(&error) {
        Some(message) if message.contains("devices.once_key") => Failure::Store(StoreError::AlreadyMade),
        _ => Failure::Sql(error),
    })?;
    if let Some(telemetry) = &device.telemetry {
        write_telemetry(tx, telemetry)?;
    }
    Ok(())
}

/// Every device's key hash, with the device and its tenant.
pub(crate) fn keys(conn: &Connection) -> Result<Vec<pumppilot_store::DeviceKey>, Failure> {
    query_all(conn, "SELECT id, admin_id, key_hash FROM devices", [], |row| {
        Ok(pumppilot_store::DeviceKey {
            device: row.parsed("id")?,
            admin: row.parsed("admin_id")?,
            key_hash: row.get("key_hash")?,
        })
    })
}

/// Devices of one tenant, oldest first.
pub(crate) fn list(conn: &Connection, admin: AdminId) -> Result<Vec<Device>, Failure> {
    let sql = concat!("SELECT ", device_columns!(), " FROM devices WHERE admin_id = ?1 ORDER BY created_at, id");
    query_all(conn, sql, [admin.to_string()], rows::device)
}

/// The firmware each device's stored report names, with its tenant.
pub(crate) fn reported_firmware(conn: &Connection) -> Result<Vec<pumppilot_store::ReportedFirmware>, Failure> {
    query_all(conn, "SELECT id, admin_id, firmware FROM devices", [], |row| {
        Ok(pumppilot_store::ReportedFirmware {
            device: row.parsed("id")?,
            admin: row.parsed("admin_id")?,
            version: row.get("firmware")?,
        })
    })
}

/// Writes a batch of telemetry in one transaction. A report older than the stored one is
/// skipped, and so is a report for a device its tenant does not have.
pub(crate) fn record_telemetry(conn: &mut Connection, batch: &[Telemetry]) -> Result<(), Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for telemetry in batch {
        write_telemetry(&tx, telemetry)?;
    }
    tx.commit()?;
    Ok(())
}

/// Writes one device's telemetry and moves its tenant's last poll forward.
pub(crate) fn write_telemetry(conn: &Connection, telemetry: &Telemetry) -> Result<(), Failure> {
    let uptime_ms = telemetry
        .uptime_ms
        .map(|ms| i64::try_from(ms).map_err(|_| invariant(format!("uptime {ms} ms is too large to store"))))
        .transpose()?;
    let device_id = telemetry.device_id.to_string();
    let admin_id = telemetry.admin_id.to_string();
    let at = telemetry.last_seen_at.millis();
    // A report without a reset reason keeps the stored one (a board says it once after a boot).
    conn.prepare_cached(
        "UPDATE devices SET last_seen_at = :at, load_shedding = :load_shedding, ready = :ready, relay = :relay, \
         firmware = :firmware, uptime_ms = :uptime_ms, rssi = :rssi, \
         last_reset = coalesce(:last_reset, last_reset), \
         last_reset_at = CASE WHEN :last_reset IS NULL THEN last_reset_at ELSE :last_reset_at END, \
         reader = :reader, feedback = :feedback \
         WHERE id = :device_id AND admin_id = :admin_id AND (last_seen_at IS NULL OR last_seen_at <= :at)",
    )?
    .execute(named_params! {
        ":device_id": device_id,
        ":admin_id": admin_id,
        ":at": at,
        ":load_shedding": telemetry.load_shedding,
        ":ready": telemetry.ready,
        ":relay": telemetry.relay,
        ":firmware": telemetry.firmware,
        ":uptime_ms": uptime_ms,
        ":rssi": telemetry.rssi,
        ":last_reset": telemetry.last_reset.map(reset_reason_name),
        ":last_reset_at": telemetry.last_reset_at.map(|at| at.millis()),
        ":reader": telemetry.reader.map(reader_state_name),
        ":feedback": telemetry.feedback,
    })?;
    move_last_poll(conn, telemetry.admin_id, telemetry.device_id, telemetry.last_seen_at)
}

/// Moves the tenant's last poll forward for a poll of one of its devices, in one transaction.
pub(crate) fn record_last_polls(
    conn: &mut Connection,
    polls: &[(AdminId, DeviceId, pumppilot_engine::Timestamp)],
) -> Result<(), Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (admin, device, at) in polls {
        move_last_poll(&tx, *admin, *device, *at)?;
    }
    tx.commit()?;
    Ok(())
}

/// Devices that joined or left `server` (see `Store::record_presence`), in one transaction.
pub(crate) fn record_presence(
    conn: &mut Connection,
    server: &str,
    joined: &[(AdminId, DeviceId, pumppilot_engine::Timestamp)],
    left: &[(AdminId, DeviceId, pumppilot_engine::Timestamp)],
) -> Result<(), Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (admin, device, at) in joined {
        move_last_poll(&tx, *admin, *device, *at)?;
        tx.prepare_cached(
            "UPDATE tenants SET presence_server = :server, presence_device = :device_id \
             WHERE admin_id = :admin_id AND (controller_id IS NULL OR controller_id = :device_id) \
             AND EXISTS (SELECT 1 FROM devices WHERE id = :device_id AND admin_id = :admin_id)",
        )?
        .execute(
            named_params! { ":server": server, ":device_id": device.to_string(), ":admin_id": admin.to_string() },
        )?;
    }
    for (admin, device, at) in left {
        move_last_poll(&tx, *admin, *device, *at)?;
        tx.prepare_cached(
            "UPDATE tenants SET presence_server = NULL, presence_device = NULL \
             WHERE admin_id = :admin_id AND presence_server = :server AND presence_device = :device_id",
        )?
        .execute(
            named_params! { ":server": server, ":device_id": device.to_string(), ":admin_id": admin.to_string() },
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Every tenant's presence.
pub(crate) fn presences(conn: &Connection) -> Result<Vec<pumppilot_store::Presence>, Failure> {
    let mut statement = conn.prepare_cached(
        "SELECT admin_id, presence_device, presence_server FROM tenants WHERE presence_server IS NOT NULL",
    )?;
    let rows = statement
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (admin, device, server) = row?;
        let admin = admin.parse().map_err(|_| invariant("a tenant id is not a UUID"))?;
        let device = device.parse().map_err(|_| invariant("a present device id is not a UUID"))?;
        out.push(pumppilot_store::Presence { admin, device, server });
    }
    Ok(out)
}

/// Moves a tenant's last poll forward for a poll of `device`.
fn move_last_poll(
    conn: &Connection,
    admin: AdminId,
    device: DeviceId,
    at: pumppilot_engine::Timestamp,
) -> Result<(), Failure> {
    let (device_id, admin_id, at) = (device.to_string(), admin.to_string(), at.millis());
    // Only the tenant's controller (or a first device, before there is one) keeps its lease.
    conn.prepare_cached(
        "UPDATE tenants SET last_poll_at = max(coalesce(last_poll_at, :at), :at) \
         WHERE admin_id = :admin_id AND (controller_id IS NULL OR controller_id = :device_id) \
         AND EXISTS (SELECT 1 FROM devices WHERE id = :device_id AND admin_id = :admin_id)",
    )?
    .execute(named_params! { ":device_id": device_id, ":admin_id": admin_id, ":at": at })?;
    Ok(())
}

/// Replaces a device's key hash.
pub(crate) fn set_key(conn: &Connection, admin: AdminId, device: DeviceId, key_hash: &[u8]) -> Result<(), Failure> {
    let changed = conn
        .prepare_cached("UPDATE devices SET key_hash = ?3 WHERE id = ?1 AND admin_id = ?2")?
        .execute((device.to_string(), admin.to_string(), key_hash))?;
    if changed == 0 {
        return Err(StoreError::NotFound.into());
    }
    Ok(())
}

/// Deletes a device of a tenant.
pub(crate) fn delete(conn: &Connection, admin: AdminId, device: DeviceId) -> Result<(), Failure> {
    let changed = conn
        .prepare_cached("DELETE FROM devices WHERE id = ?1 AND admin_id = ?2")?
        .execute((device.to_string(), admin.to_string()))?;
    if changed == 0 {
        return Err(StoreError::NotFound.into());
    }
    Ok(())
}

/// One reservation: the tenant, its device, the counter asked for and the block.
pub(crate) type Reservation = (AdminId, DeviceId, u64, u64);

/// Reserves windows of devices' link counters: each floor read and moved in one immediate
/// transaction (SQLite's one writer), so two reservations never share a counter. All of `batch`
/// in that one transaction (one sync of the log for a fleet coming online, not one a device), in
/// order, so a second reservation of a device builds on the first. A reservation refused
/// (`NotFound`, `Invariant`) writes nothing and is answered as such; any other failure gives the
/// whole transaction up.
pub(crate) fn reserve_counters(
    conn: &mut Connection,
    batch: &[Reservation],
) -> Result<Vec<StoreResult<Reserved>>, Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut answers = Vec::with_capacity(batch.len());
    for &(admin, device, at_least, block) in batch {
        answers.push(match reserve_in(&tx, admin, device, at_least, block) {
            Ok(reserved) => Ok(reserved),
            Err(Failure::Store(refused)) => Err(refused),
            Err(failure) => return Err(failure),
        });
    }
    tx.commit()?;
    Ok(answers)
}

/// Moves one device's floor above `at_least` (by `block`) inside `tx`: the window reserved, and
/// the device's stored report.
fn reserve_in(
    tx: &rusqlite::Transaction<'_>,
    admin: AdminId,
    device: DeviceId,
    at_least: u64,
    block: u64,
) -> Result<Reserved, Failure> {
    let (id, admin_id) = (device.to_string(), admin.to_string());
    // The floor and the device's last report in one read: an unreadable report (said in the log)
    // never keeps a device from signing; its next report is written over it.
    let sql = concat!("SELECT link_highest, ", device_columns!(), " FROM devices WHERE id = ?1 AND admin_id = ?2");
    let found = query_all(tx, sql, (&id, &admin_id), |row| {
        let stored = rows::device(row).map(|device| device.telemetry).unwrap_or_else(|err| {
            tracing::warn!(error = %err, "a device's stored report cannot be read; its next one is written");
            None
        });
        Ok((row.get::<_, i64>("link_highest")?, stored))
    })?;
    let Some((floor, stored)) = found.into_iter().next() else {
        return Err(StoreError::NotFound.into());
    };
    let floor = u64::try_from(floor).map_err(|_| invariant("a negative link counter is stored"))?;
    let through = CounterWindow::next_floor(floor, at_least, block)
        .ok_or_else(|| invariant(format!("link counter {at_least} is too large to store")))?;
    tx.prepare_cached("UPDATE devices SET link_highest = ?3 WHERE id = ?1 AND admin_id = ?2")?.execute((
        &id,
        &admin_id,
        through as i64,
    ))?;
    Ok(Reserved { window: CounterWindow { after: floor, through }, stored })
}

/// The reserved floor of each device that has signed a request.
pub(crate) fn counters(conn: &Connection, admin: Option<AdminId>) -> Result<Vec<(DeviceId, u64)>, Failure> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, link_highest FROM devices WHERE link_highest > 0 AND (?1 IS NULL OR admin_id = ?1) ORDER BY id",
    )?;
    let rows =
        stmt.query_map([admin.map(|a| a.to_string())], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, highest) = row?;
        let id = id.parse().map_err(|_| invariant(format!("device id {id} is not an id")))?;
        out.push((id, u64::try_from(highest).map_err(|_| invariant("a negative link counter is stored"))?));
    }
    Ok(out)
}

/// Every device's reserved floor that is not the initial one (for an export).
pub(crate) fn links(conn: &Connection) -> Result<Vec<(DeviceId, u64)>, Failure> {
    counters(conn, None)
}

/// Sets a device's link counters (an import; the device must be there).
pub(crate) fn set_link(conn: &Connection, device: DeviceId, floor: u64) -> Result<(), Failure> {
    let highest = i64::try_from(floor).map_err(|_| invariant("a link counter is too large to store"))?;
    let changed = conn
        .prepare_cached("UPDATE devices SET link_highest = ?2 WHERE id = ?1")?
        .execute((device.to_string(), highest))?;
    if changed == 0 {
        return Err(invariant(format!("link counters of device {device}, which is not there")));
    }
    Ok(())
}
