//! Versioned migrations, embedded in the binary and tracked with `PRAGMA user_version`.

use pumppilot_store::StoreError;
use rusqlite::{Connection, TransactionBehavior};

use crate::error::Failure;

/// The migrations in order; the database's `user_version` is how many of them it has applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_cards.sql"),
    include_str!("../migrations/0003_field_safety.sql"),
    include_str!("../migrations/0004_owner_day.sql"),
    include_str!("../migrations/0005_device_link.sql"),
    include_str!("../migrations/0006_firmware.sql"),
    include_str!("../migrations/0007_alerts.sql"),
    include_str!("../migrations/0008_owner_alerts.sql"),
    include_str!("../migrations/0009_link_windows.sql"),
    include_str!("../migrations/0010_presence.sql"),
    include_str!("../migrations/0011_downloads_and_tickets.sql"),
    include_str!("../migrations/0012_owner_pages.sql"),
    include_str!("../migrations/0013_fleet_totals.sql"),
    include_str!("../migrations/0014_once_keys.sql"),
    include_str!("../migrations/0015_pending_phones.sql"),
    include_str!("../migrations/0016_asked_once.sql"),
    include_str!("../migrations/0017_codes_tokens_texts.sql"),
    include_str!("../migrations/0018_reject_reasons.sql"),
    include_str!("../migrations/0019_push_token_sessions.sql"),
    include_str!("../migrations/0020_receipt_voids.sql"),
    include_str!("../migrations/0021_without_command.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Applies every migration the database has not seen yet, all in one transaction.
///
/// A database written by a newer PumpPilot (a higher `user_version`) is refused rather than
/// guessed at.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let Ok(applied) = usize::try_from(current) else {
        return Err(StoreError::Unavailable(format!("the database has an invalid schema version {current}")).into());
    };
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Unavailable(format!(
            "the database has schema version {applied}, newer than the {SCHEMA_VERSION} this PumpPilot knows; \
             run a newer PumpPilot or restore a backup"
        ))
        .into());
    }
    for (version, sql) in (1_u32..).zip(MIGRATIONS).skip(applied) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
    }
    tx.commit()?;
    // An upgrade says so (a new database is made at the newest version without a word).
    if applied > 0 && applied < MIGRATIONS.len() {
        tracing::info!(from = applied, to = SCHEMA_VERSION, "the database's schema was upgraded");
    }
    Ok(())
}
