//! Firmware images and their rollout.

use pumppilot_engine::{AdminId, Timestamp};
use pumppilot_store::{FirmwareDownload, FirmwareRelease, Rollout, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, named_params};

use crate::{
    error::{Failure, invariant},
    rows::{RowExt, query_all},
};

pub(crate) fn put(conn: &Connection, release: &FirmwareRelease, bytes: &[u8]) -> Result<(), Failure> {
    if bytes.len() != release.size as usize {
        return Err(invariant("a firmware image is not the size of its release"));
    }
    let result = conn
        .prepare_cached(
            "INSERT INTO firmware (version, size, sha256, signature, published_at, rollout_percent, rollout_tenant, bytes) \
             VALUES (:version, :size, :sha256, :signature, :at, :percent, :tenant, :bytes)",
        )?
        .execute(named_params! {
            ":version": release.version,
            ":size": release.size,
            ":sha256": release.sha256.as_slice(),
            ":signature": release.signature.as_slice(),
            ":at": release.published_at.millis(),
            ":percent": release.rollout.percent,
            ":tenant": release.rollout.tenant.map(|t| t.to_string()),
            ":bytes": bytes,
        });
    match result {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            Err(invariant(format!("firmware {} is published already", release.version)))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn releases(conn: &Connection) -> Result<Vec<FirmwareRelease>, Failure> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, size, sha256, signature, published_at, rollout_percent, rollout_tenant FROM firmware \
         ORDER BY published_at DESC, version DESC",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, u32>(1)?,
            row.get::<_, Vec<u8>>(2)?,
            row.get::<_, Vec<u8>>(3)?,
            row.get::<_, i64>(4)?,
            row.get::<_, u8>(5)?,
            row.get::<_, Option<String>>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (version, size, sha256, signature, at, percent, tenant) = row?;
        let tenant = tenant
            .map(|t| t.parse::<AdminId>().map_err(|_| invariant(format!("firmware rollout names tenant {t}"))))
            .transpose()?;
        out.push(FirmwareRelease {
            sha256: sha256.try_into().map_err(|_| invariant("a stored SHA-256 is not 32 bytes"))?,
            signature: signature.try_into().map_err(|_| invariant("a stored signature is not 64 bytes"))?,
            version,
            size,
            published_at: Timestamp(at),
            rollout: Rollout { percent, tenant },
        });
    }
    Ok(out)
}

pub(crate) fn bytes(conn: &Connection, version: &str) -> Result<Option<Vec<u8>>, Failure> {
    Ok(conn
        .prepare_cached("SELECT bytes FROM firmware WHERE version = ?1")?
        .query_row([version], |row| row.get(0))
        .optional()?)
}

pub(crate) fn set_rollout(conn: &Connection, version: &str, rollout: Rollout) -> Result<(), Failure> {
    let changed = conn
        .prepare_cached("UPDATE firmware SET rollout_percent = ?2, rollout_tenant = ?3 WHERE version = ?1")?
        .execute((version, rollout.percent.min(100), rollout.tenant.map(|t| t.to_string())))?;
    if changed == 0 {
        return Err(StoreError::NotFound.into());
    }
    Ok(())
}

/// Every release with its bytes (for an export), oldest first.
pub(crate) fn all(conn: &Connection) -> Result<Vec<(FirmwareRelease, Vec<u8>)>, Failure> {
    let mut out = Vec::new();
    for release in releases(conn)?.into_iter().rev() {
        let data = bytes(conn, &release.version)?.ok_or_else(|| invariant("a release without its bytes"))?;
        out.push((release, data));
    }
    Ok(out)
}

/// One device's download record: for the version it holds, `received` and `at` move forward
/// only; another version replaces it unless the stored record is newer.
pub(crate) fn record_download(conn: &Connection, download: &FirmwareDownload) -> Result<(), Failure> {
    conn.prepare_cached(
        "INSERT INTO firmware_downloads (device_id, admin_id, version, received, size, at) \
         VALUES (:device, :admin, :version, :received, :size, :at) \
         ON CONFLICT (device_id) DO UPDATE SET \
           received = CASE WHEN version = excluded.version THEN max(received, excluded.received) ELSE excluded.received END, \
           at = CASE WHEN version = excluded.version THEN max(at, excluded.at) ELSE excluded.at END, \
           admin_id = excluded.admin_id, size = excluded.size, version = excluded.version \
         WHERE version = excluded.version OR at <= excluded.at",
    )?
    .execute(named_params! {
        ":device": download.device.to_string(),
        ":admin": download.admin.to_string(),
        ":version": download.version,
        ":received": download.received,
        ":size": download.size,
        ":at": download.at.millis(),
    })?;
    Ok(())
}

fn download(row: &Row<'_>) -> rusqlite::Result<FirmwareDownload> {
    Ok(FirmwareDownload {
        device: row.parsed("device_id")?,
        admin: row.parsed("admin_id")?,
        version: row.get("version")?,
        received: row.get("received")?,
        size: row.get("size")?,
        at: row.at("at")?,
    })
}

pub(crate) fn downloads(conn: &Connection, admin: AdminId) -> Result<Vec<FirmwareDownload>, Failure> {
    query_all(
        conn,
        "SELECT device_id, admin_id, version, received, size, at FROM firmware_downloads WHERE admin_id = ?1",
        [admin.to_string()],
        download,
    )
}

pub(crate) fn purge_downloads(conn: &Connection, before: Timestamp) -> Result<u64, Failure> {
    let deleted = conn.prepare_cached("DELETE FROM firmware_downloads WHERE at < ?1")?.execute([before.millis()])?;
    Ok(deleted as u64)
}
