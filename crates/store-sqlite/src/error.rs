//! How SQLite's errors become [`StoreError`]s.

use pumppilot_store::StoreError;
use rusqlite::ErrorCode;

/// An error inside one store operation: either SQLite's own or a decision of the store.
///
/// It exists so that `?` works on both inside an operation; it becomes a [`StoreError`] at the
/// edge of the operation.
#[derive(Debug)]
pub(crate) enum Failure {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(error: rusqlite::Error) -> Self {
        Failure::Sql(error)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::Store(error)
    }
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Store(error) => error,
            Failure::Sql(error) => match constraint_message(&error) {
                // A rule of the schema (a unique or check constraint, a reference) was broken:
                // the change was invalid, and nothing of it was written.
                Some(message) => StoreError::Invariant(message),
                // IO errors, a busy or locked database, corruption, unreadable values.
                None => StoreError::Unavailable(error.to_string()),
            },
        }
    }
}

/// The message of a constraint violation (for example `UNIQUE constraint failed: accounts.username`).
pub(crate) fn constraint_message(error: &rusqlite::Error) -> Option<String> {
    match error {
        rusqlite::Error::SqliteFailure(cause, message) if cause.code == ErrorCode::ConstraintViolation => {
            Some(message.clone().unwrap_or_else(|| cause.to_string()))
        }
        _ => None,
    }
}

/// An invalid change refused before it reached SQLite.
pub(crate) fn invariant(message: impl Into<String>) -> Failure {
    Failure::Store(StoreError::Invariant(message.into()))
}

/// The database cannot be used as it is; nothing was changed.
pub(crate) fn unavailable(message: impl Into<String>) -> Failure {
    Failure::Store(StoreError::Unavailable(message.into()))
}
