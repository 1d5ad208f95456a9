//! A tenant transition written in one transaction of two round trips to the store: every write
//! of it in one `bulkWrite` command (MongoDB 8's writes across collections; the transaction
//! starts with it), then the commit. A farmer's Start waits for these before its device hears ON:
//! it took six before (the tenant's update, the entry's, a read of the stored line, the RUN_STARTED
//! notice and its outbox item, the commit).
//!
//! Each write carries what its answer must be ([`Check`]), read in the order written, so a
//! refused transition gives the answer it gave when each write was its own command: the version
//! guard first (`VersionConflict`, or `NotFound` for a tenant that is not there), then the rules
//! of the line (unique indexes, and no stored live entry that the state does not hold), the
//! wallets (each ledger entry follows the stored balance), the request decided once, the account
//! suspended, the receipt voided once. Whatever is refused, the transaction is given up: nothing
//! of it is written. The notices (a Start's RUN_STARTED) are two inserts each, in the same
//! command; only a notice written once for its key (a read first) follows it, and so does the
//! settling of the owner's notice of a request decided (a read of its key first).
//!
//! The stored line is checked by writes that must match nothing (a live entry that is not the
//! state's) rather than by reading it back: the check rides in the same command.
//!
//! A server without `bulkWrite` (MongoDB before 8.0: `maxWireVersion` below 25) is sent the same
//! writes one command each, with the same checks.

use mongodb::{
    ClientSession, Database,
    bson::{Bson, Document, doc},
};
use pumppilot_engine::{EntryId, UserId};
use pumppilot_store::{OwnedCommit, StoreError};

use crate::{
    codec::{self, key},
    error::{Failure, invariant},
    tenants::{self, LIVE},
};

/// The first wire version with `bulkWrite` (MongoDB 8.0).
pub(crate) const BULK_WRITE_WIRE_VERSION: i32 = 25;

/// Code of a write refused by a unique index.
const DUPLICATE_KEY: i32 = 11000;

/// One write of a transition.
struct Write {
    collection: &'static str,
    op: Op,
    check: Check,
}

enum Op {
    Insert(Document),
    Update { filter: Document, update: Document, upsert: bool, multi: bool },
}

/// What a write's answer must be, and what it means when it is not.
enum Check {
    /// The tenant's document at the version the transition started from.
    Version,
    /// A live entry of the state, written (a unique index of the line may refuse it).
    Entry { id: EntryId, status: &'static str, position: Option<i64> },
    /// Matches nothing: a stored live entry that is not the state's (active, or in its line).
    NoOtherLive,
    /// The wallet held the balance the ledger entry started from.
    Balance { user: UserId, delta: i64, after: i64 },
    /// The request was still PENDING.
    Pending,
    /// A ledger entry: the tenant's only one with its once key (`ledger_once_key`).
    FirstWithKey,
    /// The account is suspended (or restored) in `admins` or, the write after, in `users`.
    AccountIn { last: bool },
    /// The receipt a commit voids is stored (this tenant's, of that farmer and those minutes).
    ReceiptStored,
    /// It was not void yet: a receipt is voided once.
    ReceiptStanding,
    /// Nothing to check (written, or a refusal of the server).
    Written,
}

/// What the server answered for one write: how many documents it matched (or inserted), or the
/// code and message it refused it with.
struct Answer {
    n: i64,
    refused: Option<(i32, String)>,
}

/// Writes one transition inside the caller's transaction.
///
/// Order matters as in the SQLite store: the version guard first; then ended entries, the active
/// entry and the waiting entries in ascending position, so the unique indexes (one active entry
/// per admin, one entry per position) hold after every write while the line closes up; then the
/// books. A refused version guard answers `VersionConflict` and a refused decision
/// `AlreadyDecided`: the caller tells them from `NotFound` once the transaction is given up.
pub(crate) async fn commit(
    db: &Database,
    session: &mut ClientSession,
    commit: &OwnedCommit,
    bulk_write: bool,
) -> Result<(), Failure> {
    let writes = writes(commit)?;
    let answers = if bulk_write {
        send_together(db, session, &writes).await?
    } else {
        send_one_by_one(db, session, &writes).await?
    };
    check(&writes, &answers)?;
    for notice in commit.records.notices.iter().filter(|n| n.key.is_some()) {
        crate::alerts::insert_notice(db, session, notice).await?;
    }
    // A request decided settles the owner's notice of it (a read first, as a keyed notice's).
    if let Some(decision) = &commit.decision {
        let notice_key = pumppilot_store::request_notice_key(decision.request_id);
        crate::alerts::settle(db, session, &notice_key, decision.at).await?;
    }
    Ok(())
}

/// The writes of a transition, in the order they must land.
fn writes(commit: &OwnedCommit) -> Result<Vec<Write>, Failure> {
    let tenant = &commit.tenant;
    let admin = key(tenant.admin_id);
    let mut writes = Vec::new();
    let update = |collection, filter, update, check| Write {
        collection,
        op: Op::Update { filter, update, upsert: false, multi: false },
        check,
    };
    let insert = |collection, doc| Write { collection, op: Op::Insert(doc), check: Check::Written };
    let (filter, change) = tenants::tenant_update(tenant)?;
    writes.push(update("tenants", filter, change, Check::Version));
    let entry = |entry: &pumppilot_engine::QueueEntry, position: Option<i64>| Write {
        collection: "queues",
        op: Op::Update {
            filter: doc! {
                "_id": key(entry.id),
                "adminId": key(entry.admin_id),
                "userId": key(entry.user_id),
                "status": { "$in": LIVE.to_vec() },
            },
            update: doc! {
                "$set": codec::entry_fields(entry, position),
                "$setOnInsert": { "createdAt": codec::at(entry.created_at) },
            },
            upsert: true,
            multi: false,
        },
        check: Check::Entry { id: entry.id, status: entry.status.as_str(), position },
    };
    for ended in &commit.records.ended {
        writes.push(entry(ended, None));
    }
    if let Some(active) = &tenant.active {
        writes.push(entry(active, None));
    }
    if commit.records.reordered {
        // Entries that pass each other in the line would meet at one place on the way: first they
        // all step aside, then take their places.
        writes.push(Write {
            collection: "queues",
            op: Op::Update {
                filter: doc! { "adminId": admin.clone(), "status": "WAITING" },
                update: doc! { "$inc": { "position": 1_000_000_i64 } },
                upsert: false,
                multi: true,
            },
            check: Check::Written,
        });
    }
    for (position, waiting) in (1_i64..).zip(&tenant.waiting) {
        writes.push(entry(waiting, Some(position)));
    }
    // The stored live entries are exactly the state's: every one of the state's is written above,
    // so none other may be live. A write that matches one is a refusal (nothing is changed: the
    // transaction is given up).
    let live: Vec<Bson> =
        tenant.active.iter().map(|e| key(e.id)).chain(tenant.waiting.iter().map(|e| key(e.id))).collect();
    let other = doc! { "adminId": admin.clone(), "status": { "$in": LIVE.to_vec() }, "_id": { "$nin": live } };
    writes.push(Write {
        collection: "queues",
        op: Op::Update {
            filter: other,
            update: doc! { "$set": { "adminId": admin.clone() } },
            upsert: false,
            multi: true,
        },
        check: Check::NoOtherLive,
    });
    for entry in &commit.records.ledger {
        let filter = doc! {
            "_id": key(entry.user_id),
            "adminId": key(entry.admin_id),
            "balanceSeconds": entry.balance_after - entry.delta_seconds,
        };
        let check = Check::Balance { user: entry.user_id, delta: entry.delta_seconds, after: entry.balance_after };
        writes.push(update("users", filter, doc! { "$set": { "balanceSeconds": entry.balance_after } }, check));
        let check = if entry.once_key.is_some() { Check::FirstWithKey } else { Check::Written };
        writes.push(Write { collection: "ledger", op: Op::Insert(codec::ledger_doc(entry)), check });
    }
    writes.extend(commit.records.usage.iter().map(|row| insert("usage_history", codec::usage_doc(row))));
    writes.extend(commit.audit.iter().map(|entry| insert("audit_logs", codec::audit_doc(entry))));
    if let Some(decision) = &commit.decision {
        let (filter, change) = tenants::decision_update(decision);
        writes.push(update("minute_requests", filter, change, Check::Pending));
    }
    // A notice with a key is written once a key (a read first: after these writes, `commit`).
    for notice in commit.records.notices.iter().filter(|n| n.key.is_none()) {
        let (_, notification, outbox) = crate::alerts::notice_docs(notice);
        writes.push(insert("notifications", notification));
        writes.push(insert("outbox", outbox));
    }
    if let Some(receipt) = &commit.receipt {
        match receipt.void {
            None => writes.push(insert("receipts", codec::receipt_doc(receipt))),
            Some(void) => {
                // The stored receipt as the commit names it (matched by a write that changes
                // nothing), then the same only while it stands (`voidedAt` absent), marked void.
                let stored = doc! {
                    "_id": key(receipt.id),
                    "adminId": admin.clone(),
                    "userId": key(receipt.user_id),
                    "minutes": receipt.minutes,
                };
                let same = doc! { "$set": { "adminId": admin.clone() } };
                writes.push(update("receipts", stored.clone(), same, Check::ReceiptStored));
                let mut standing = stored;
                standing.insert("voidedAt", doc! { "$exists": false });
                let mark = doc! { "$set": { "voidedAt": codec::at(void.at), "voidedBy": key(void.by) } };
                writes.push(update("receipts", standing, mark, Check::ReceiptStanding));
            }
        }
    }
    if let Some((account, suspended)) = commit.suspension {
        let filter = doc! { "_id": key(account), "adminId": admin.clone() };
        for (collection, last) in [("admins", false), ("users", true)] {
            let change = doc! { "$set": { "suspended": suspended } };
            writes.push(update(collection, filter.clone(), change, Check::AccountIn { last }));
        }
    }
    Ok(writes)
}

/// Reads the answers in the order written: the first one that is not what its write needs is
/// the transition's refusal.
fn check(writes: &[Write], answers: &[Answer]) -> Result<(), Failure> {
    for (i, write) in writes.iter().enumerate() {
        let Some(answer) = answers.get(i) else {
            return Err(StoreError::Unavailable(format!(
                "{}: a write of the commit went unanswered",
                write.collection
            ))
            .into());
        };
        if let Some((code, message)) = &answer.refused {
            return Err(match (&write.check, *code) {
                (Check::Entry { id, status, position }, DUPLICATE_KEY) => {
                    invariant(explain_queue_conflict(*id, status, *position, message))
                }
                (Check::FirstWithKey, DUPLICATE_KEY) => StoreError::AlreadyMade.into(),
                // A unique index refused the change; nothing of it is written.
                (_, DUPLICATE_KEY) => invariant(message.clone()),
                _ => StoreError::Unavailable(format!("{}: {message} (code {code})", write.collection)).into(),
            });
        }
        match &write.check {
            Check::Version if answer.n == 0 => return Err(StoreError::VersionConflict.into()),
            Check::NoOtherLive if answer.n > 0 => {
                return Err(invariant(
                    "a stored live entry is not the state's (its active entry or its line), and it was not ended",
                ));
            }
            Check::Balance { user, delta, after } => {
                if answer.n == 0 {
                    return Err(invariant(format!(
                        "a ledger entry of {delta} s leaving user {user} at {after} s does not follow the stored \
                         balance (or the user is not in this tenant)"
                    )));
                }
                if *after < 0 {
                    return Err(invariant(format!("a ledger entry leaves user {user} below zero")));
                }
            }
            Check::Pending if answer.n == 0 => return Err(StoreError::AlreadyDecided.into()),
            Check::ReceiptStored if answer.n == 0 => return Err(StoreError::NotFound.into()),
            Check::ReceiptStanding if answer.n == 0 => return Err(StoreError::AlreadyMade.into()),
            Check::AccountIn { last: true } => {
                let before = i.checked_sub(1).and_then(|j| answers.get(j)).map_or(0, |a| a.n);
                if before + answer.n == 0 {
                    return Err(StoreError::NotFound.into());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Says which rule of the queue an entry broke, in the store's words.
fn explain_queue_conflict(id: EntryId, status: &str, position: Option<i64>, message: &str) -> String {
    let rule = if message.contains(crate::schema::ONE_WAITING_PER_POSITION) {
        format!("another entry already waits at position {}", position.unwrap_or_default())
    } else if message.contains(crate::schema::ONE_ACTIVE_PER_ADMIN) {
        "another entry is already active for this admin (one RUNNING or HOLD entry per admin)".to_owned()
    } else if message.contains("_id_") {
        "it is already ended, or is stored for another tenant or user".to_owned()
    } else {
        message.to_owned()
    };
    format!("queue entry {id} ({status}) refused: {rule}")
}

/// Every write in one `bulkWrite` (ordered: it stops at a refusal), in one round trip.
async fn send_together(db: &Database, session: &mut ClientSession, writes: &[Write]) -> Result<Vec<Answer>, Failure> {
    let mut namespaces: Vec<&str> = Vec::new();
    let mut ops = Vec::with_capacity(writes.len());
    for write in writes {
        let index = match namespaces.iter().position(|c| *c == write.collection) {
            Some(index) => index,
            None => {
                namespaces.push(write.collection);
                namespaces.len() - 1
            }
        };
        let index = i32::try_from(index).unwrap_or(i32::MAX);
        ops.push(match &write.op {
            Op::Insert(document) => doc! { "insert": index, "document": document.clone() },
            Op::Update { filter, update, upsert, multi } => doc! {
                "update": index, "filter": filter.clone(), "updateMods": update.clone(), "upsert": *upsert, "multi": *multi,
            },
        });
    }
    let ns_info: Vec<Document> =
        namespaces.iter().map(|collection| doc! { "ns": format!("{}.{collection}", db.name()) }).collect();
    let command = doc! { "bulkWrite": 1, "ops": ops, "nsInfo": ns_info, "ordered": true };
    let admin = db.client().database("admin");
    let reply = admin.run_command(command).session(&mut *session).await?;
    let cursor = reply.get_document("cursor").map_err(|_| unanswered("the bulkWrite answer has no cursor"))?;
    let mut results: Vec<Document> = batch(cursor, "firstBatch")?;
    let mut id = cursor.get_i64("id").unwrap_or(0);
    // More answers than one reply holds (very large commits only).
    while id != 0 {
        let more = doc! { "getMore": id, "collection": "$cmd.bulkWrite" };
        let reply = admin.run_command(more).session(&mut *session).await?;
        let cursor = reply.get_document("cursor").map_err(|_| unanswered("a getMore answer has no cursor"))?;
        results.extend(batch(cursor, "nextBatch")?);
        id = cursor.get_i64("id").unwrap_or(0);
    }
    let mut answers: Vec<Option<Answer>> = (0..writes.len()).map(|_| None).collect();
    for result in results {
        let index = result.get("idx").and_then(number).and_then(|i| usize::try_from(i).ok());
        let Some(slot) = index.and_then(|i| answers.get_mut(i)) else {
            return Err(unanswered("a bulkWrite answer names no write of the commit"));
        };
        let ok = result.get("ok").and_then(|ok| ok.as_f64().or_else(|| number(ok).map(|n| n as f64))) == Some(1.0);
        let refused = (!ok).then(|| {
            let code = result.get("code").and_then(number).and_then(|c| i32::try_from(c).ok()).unwrap_or(0);
            (code, result.get_str("errmsg").unwrap_or_default().to_owned())
        });
        *slot = Some(Answer { n: result.get("n").and_then(number).unwrap_or(0), refused });
    }
    // Ordered: the answers stop at the first refusal.
    Ok(answers.into_iter().map_while(|a| a).collect())
}

/// Each write its own command (a server without `bulkWrite`), until one is refused.
async fn send_one_by_one(db: &Database, session: &mut ClientSession, writes: &[Write]) -> Result<Vec<Answer>, Failure> {
    let mut answers = Vec::with_capacity(writes.len());
    for write in writes {
        let command = match &write.op {
            Op::Insert(document) => doc! { "insert": write.collection, "documents": [document.clone()] },
            Op::Update { filter, update, upsert, multi } => doc! {
                "update": write.collection,
                "updates": [{ "q": filter.clone(), "u": update.clone(), "upsert": *upsert, "multi": *multi }],
            },
        };
        let reply = db.run_command(command).session(&mut *session).await?;
        let refused = reply.get_array("writeErrors").ok().and_then(|errors| errors.first()).map(|error| {
            let error = error.as_document();
            let code = error.and_then(|e| e.get("code")).and_then(number).and_then(|c| i32::try_from(c).ok());
            let message = error.and_then(|e| e.get_str("errmsg").ok()).unwrap_or_default();
            (code.unwrap_or(0), message.to_owned())
        });
        let stop = refused.is_some();
        answers.push(Answer { n: reply.get("n").and_then(number).unwrap_or(0), refused });
        if stop {
            break;
        }
    }
    Ok(answers)
}

fn batch(cursor: &Document, field: &str) -> Result<Vec<Document>, Failure> {
    let batch = cursor.get_array(field).map_err(|_| unanswered("a bulkWrite answer has no batch"))?;
    Ok(batch.iter().filter_map(|b| b.as_document().cloned()).collect())
}

fn unanswered(what: &str) -> Failure {
    StoreError::Unavailable(what.to_owned()).into()
}

/// A number in the server's reply to a command (an index, an error code), as an integer: either
/// width, or a whole double (a stored integer is read with `codec::number`, which takes no double).
fn number(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int64(n) => Some(*n),
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Double(n) if n.fract() == 0.0 => Some(*n as i64),
        _ => None,
    }
}
