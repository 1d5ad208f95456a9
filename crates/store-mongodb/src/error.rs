//! How the driver's errors become [`StoreError`]s.

use mongodb::error::{Error, ErrorKind, WriteFailure};
use pumppilot_store::StoreError;

/// An error inside one store operation: the driver's own or a decision of the store.
///
/// It exists so that `?` works on both inside an operation (and so a transaction can tell the
/// driver's transient errors, which it retries, from the store's decisions, which it does not).
#[derive(Debug)]
pub(crate) enum Failure {
    Mongo(Error),
    Store(StoreError),
    /// A write another transaction's write of the same document refused, which the store
    /// reported otherwise: retried as the driver's transient errors are (see [`conflict_if_duplicate`]).
    Conflict(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Mongo(error)
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
            // Still refused when the transaction's retries ran out.
            Failure::Conflict(error) => StoreError::Unavailable(error.to_string()),
            Failure::Mongo(error) => match duplicate_key(&error) {
                // A unique index refused the change; nothing of it was written.
                Some(message) => StoreError::Invariant(message),
                // Server selection, connections, timeouts, a lost primary, anything else.
                None => StoreError::Unavailable(error.to_string()),
            },
        }
    }
}

/// The server's message when a unique index refused a write (code 11000), else `None`.
pub(crate) fn duplicate_key(error: &Error) -> Option<String> {
    const DUPLICATE_KEY: i32 = 11000;
    match &*error.kind {
        ErrorKind::Write(WriteFailure::WriteError(e)) if e.code == DUPLICATE_KEY => Some(e.message.clone()),
        ErrorKind::Command(e) if e.code == DUPLICATE_KEY => Some(e.message.clone()),
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .and_then(|errors| errors.iter().find(|e| e.code == DUPLICATE_KEY))
            .map(|e| e.message.clone()),
        _ => None,
    }
}

/// `error` as a [`Failure::Conflict`] when it is a duplicate key, else as it is: for a write that
/// changes no field of a unique index, so a duplicate key cannot be what refused it. SecantusDB
/// reports two transactions updating one document of a collection with a unique index (both
/// giving its index key back and taking it again) as E11000 on that key, where MongoDB reports a
/// write conflict.
pub(crate) fn conflict_if_duplicate(error: Error) -> Failure {
    match duplicate_key(&error) {
        Some(_) => Failure::Conflict(error),
        None => Failure::Mongo(error),
    }
}

/// An invalid change refused before it reached the server.
pub(crate) fn invariant(message: impl Into<String>) -> Failure {
    Failure::Store(StoreError::Invariant(message.into()))
}

/// A stored value this build cannot read.
pub(crate) fn unreadable(message: impl Into<String>) -> Failure {
    Failure::Store(StoreError::Unavailable(message.into()))
}

/// The first line of a driver error (its messages can run to a topology description).
pub(crate) fn first_line(error: &Error) -> String {
    let text = error.kind.to_string();
    let line = text.lines().next().unwrap_or_default();
    // Server-selection errors end with a description of every server seen; keep the reason.
    line.split(". Topology:").next().unwrap_or(line).trim_end_matches(',').to_owned()
}
