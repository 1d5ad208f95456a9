//! The change feed: one MongoDB change stream on the whole database, turned into [`Change`]s.
//!
//! The stream waits at most [`FEED_HEARTBEAT`] for a batch, so an empty batch is the heartbeat
//! ([`Change::Live`]). After an error it resumes from the last event's token; when it cannot (the
//! token is gone, or there is none yet) it opens a new stream and sends [`Change::Reset`], because
//! changes may have been missed meanwhile.

use std::time::Duration;

use mongodb::{
    Database,
    bson::Document,
    change_stream::{
        ChangeStream,
        event::{ChangeStreamEvent, OperationType, ResumeToken},
    },
    options::FullDocumentType,
};
use pumppilot_store::{Change, FEED_HEARTBEAT};
use tokio::sync::mpsc;

/// How long the feed waits before it tries the server again after a failure.
const RETRY_AFTER: Duration = Duration::from_millis(250);
/// How many changes may wait for the server to take them.
const BACKLOG: usize = 4096;

/// Starts the feed of `db` on the current tokio runtime.
pub(crate) fn start(db: Database) -> mpsc::Receiver<Change> {
    let (tx, rx) = mpsc::channel(BACKLOG);
    tokio::spawn(run(db, tx));
    rx
}

async fn open(
    db: &Database,
    resume: Option<ResumeToken>,
) -> mongodb::error::Result<ChangeStream<ChangeStreamEvent<Document>>> {
    db.watch().max_await_time(FEED_HEARTBEAT).full_document(FullDocumentType::UpdateLookup).resume_after(resume).await
}

async fn run(db: Database, tx: mpsc::Sender<Change>) {
    let mut resume: Option<ResumeToken> = None;
    loop {
        let mut stream = match open(&db, resume.clone()).await {
            Ok(stream) => stream,
            Err(err) if resume.is_some() => {
                tracing::warn!(%err, "the change feed cannot resume; starting afresh and forgetting every cache");
                resume = None;
                continue;
            }
            Err(err) => {
                tracing::debug!(%err, "the change feed cannot start yet");
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        if resume.is_none() && tx.send(Change::Reset).await.is_err() {
            return;
        }
        loop {
            match stream.next_if_any().await {
                Ok(Some(event)) => {
                    if let Some(change) = change_of(&event)
                        && tx.send(change).await.is_err()
                    {
                        return;
                    }
                }
                Ok(None) => {
                    if tx.send(Change::Live).await.is_err() {
                        return;
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, "the change feed broke; resuming");
                    break;
                }
            }
            resume = stream.resume_token();
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

/// What one event means to a server, if anything.
fn change_of(event: &ChangeStreamEvent<Document>) -> Option<Change> {
    let collection = event.ns.as_ref()?.coll.as_deref()?;
    let id = event.document_key.as_ref()?.get_str("_id").ok()?;
    let full = event.full_document.as_ref();
    let deleted = matches!(event.operation_type, OperationType::Delete);
    match collection {
        "tenants" => {
            let full = full?;
            let version = u64::try_from(full.get_i64("version").ok()?).ok()?;
            let last_poll_at =
                full.get_datetime("lastPollAt").ok().map(|at| pumppilot_engine::Timestamp(at.timestamp_millis()));
            Some(Change::Tenant {
                admin: id.parse().ok()?,
                version,
                last_poll_at,
                presence: crate::codec::presence_of(full),
                // A document from before the field: it may have a run.
                has_run: full.get_bool("hasRun").unwrap_or(true),
            })
        }
        // A heartbeat replaces its server's document, whole.
        "servers" if !deleted => {
            let full = full?;
            let polled_since = full.get_datetime("polledSince").ok()?;
            Some(Change::Beat {
                server: id.to_owned(),
                polled_since: pumppilot_engine::Timestamp(polled_since.timestamp_millis()),
            })
        }
        "devices" => Some(Change::Device {
            id: id.parse().ok()?,
            admin: full.and_then(|d| d.get_str("adminId").ok()).and_then(|a| a.parse().ok()),
            key_hash: full.filter(|_| !deleted).and_then(|d| d.get_binary_generic("keyHash").ok()).cloned(),
            signs: full.is_some_and(|d| d.contains_key("linkHighest")),
        }),
        "firmware" => Some(Change::Firmware),
        // A new session changes nothing held anywhere (each server reads it at its first use);
        // telling it would make the server that just remembered it forget it again, and a live
        // stream of it would end at its first check.
        "web_sessions" | "mobile_sessions" if !matches!(event.operation_type, OperationType::Insert) => {
            Some(Change::Session { id: pumppilot_store::SessionId(uuid::Uuid::parse_str(id).ok()?) })
        }
        "web_sessions" | "mobile_sessions" => None,
        "admins" | "users" => Some(Change::Account { id: id.parse().ok()? }),
        _ => None,
    }
}
