//! The MongoDB backend of the PumpPilot store, on the official driver (tokio).
//!
//! [`MongoStore::connect`] takes a `mongodb://…` or `mongodb+srv://…` URL (the database is the
//! URL's path, `pumppilot` when it has none), checks that the server can run transactions (a
//! replica set, even of one node, or a sharded cluster), and sets up its indexes and schema
//! version, idempotently.
//!
//! Collections: `admins` (the master and the pump owners), `users` (farmers, with their wallet),
//! `usernames` (one document per username, the guard that keeps usernames unique across both),
//! `tenants` (each owner's pump: version, device link), `queues`, `usage_history`, `ledger`,
//! `minute_requests`, `web_sessions`, `mobile_sessions`, `devices`, `cards`, `audit_logs`, and
//! `meta` (the schema version).
//!
//! Consistency:
//! - a tenant commit is one multi-document transaction (snapshot reads, majority writes) that
//!   first moves the tenant's version from the one the transition started from; a transaction
//!   that lost a write conflict to another is retried by the TransientTransactionError label, and
//!   then sees the moved version and answers [`StoreError::VersionConflict`];
//! - unique indexes hold the rules on the server itself: one RUNNING or HOLD entry per admin (a
//!   partial unique index), one waiting entry per position, one username, one card UID per
//!   tenant, one session per token hash, one device per key hash.

mod alerts;
mod codec;
mod commit;
mod error;
mod feed;
mod grouped;
mod schema;
mod tenants;
#[cfg(feature = "testing")]
pub mod testing;
mod transfer;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use mongodb::{
    Client, ClientSession, Collection, Database,
    bson::{Bson, Document, doc},
    error::{TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT},
    options::{ClientOptions, ReadConcern, TransactionOptions, WriteConcern},
};
use pumppilot_engine::{
    AdminId, DeviceId, LedgerEntry, Notice, ReceiptId, RequestId, Tenant, Timestamp, UsageRow, UserId,
};
use pumppilot_store::{
    Account, AccountChange, Admission, AlertProfile, AuditEntry, AuditQuery, AuditedWrite, Card, Commit, CounterWindow,
    Decision, Delivery, Device, FirmwareDownload, FirmwareRelease, FleetTotals, MinuteRequest, Notification,
    NotificationId, OutboxItem, OwnerPage, OwnerQuery, OwnerRow, PendingPhone, PushTicket, Receipt, ReceiptQuery,
    RefreshMatch, RequestQuery, RequestStatus, Reserved, Role, Rollout, Rotation, SendWindow, Session, SessionId,
    SessionKind, SessionScope, SignedIn, Snapshot, Store, StoreError, StoreResult, Telemetry, Terms, UsageQuery,
};

use crate::{
    codec::{at, key, session_key},
    error::{Failure, duplicate_key, invariant},
};

pub use schema::SCHEMA_VERSION;

/// The database used when the URL names none.
pub const DEFAULT_DATABASE: &str = "pumppilot";
/// How long the first contact may take when the URL does not say (`serverSelectionTimeoutMS`).
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a transaction keeps retrying transient errors before giving up (as the driver's own
/// `with_transaction` does, but shorter: a client is waiting).
const TRANSACTION_RETRY_FOR: Duration = Duration::from_secs(20);
/// How many updates one `update` command carries (`MongoStore::update_many_ways`): few, as the
/// server runs them one after another (SecantusDB about 12 ms each) and a Start waits behind them.
const UPDATES_PER_COMMAND: usize = 32;
/// The most ids one query names in an `$in`: `known_devices`, a grouped read or write
/// ([`LOADS_AT_ONCE`], `grouped::COMMITS_AT_ONCE`, `grouped::RESERVATIONS_AT_ONCE`), a read of
/// tenants wanted (`load_tenants`). SecantusDB matches `$in` by walking its list for every
/// document it looks at, so a query of k ids costs about k² comparisons. Measured at 20,000
/// tenants read by `_id` (2,048 ids each way, one run): 929 µs an id asked alone, 51 at 16 a
/// query, 49 at 32, 188 at 64, 478 at 256, 979 at 512. At 100,000 devices, `known_devices` of
/// 1,000 ids a query kept the store's one core busy 1.4 s a query, and the fleet never came online.
pub const IDS_PER_QUERY: usize = 32;

/// A device's stored counter floor (`linkHighest`; none stored is 0).
pub(crate) fn link_floor(stored: &Bson) -> StoreResult<u64> {
    let floor = match stored {
        Bson::Null => 0,
        Bson::Int64(n) => *n,
        Bson::Int32(n) => i64::from(*n),
        other => return Err(StoreError::Invariant(format!("a device's link counter is {other}"))),
    };
    u64::try_from(floor).map_err(|_| StoreError::Invariant("a negative link counter is stored".into()))
}

/// Ends the driver's background work (its monitors and connection pools); an operation still
/// running, or started later, fails. A client merely dropped leaves that work running, and a
/// process that then stops its runtime under it can panic inside the driver (seen once in CI, a
/// trace beside a refusal's sentence: a connection asked of a pool whose worker the runtime's
/// shutdown had already dropped).
async fn stop_driver(client: Client) {
    client.shutdown().immediate(true).await;
}

/// `error`, refusing a store, once its driver is stopped ([`stop_driver`]).
async fn refuse(client: Client, error: StoreError) -> StoreError {
    stop_driver(client).await;
    error
}

// The filters of the per-device writes (`move_tenants`, `record_arrivals`)
// name the document by `_id` and say the rest without `$or` (`controllerId: {$in: [null, id]}`,
// `lastSeenAt: {$not: {$gt: when}}`, the same documents): SecantusDB scans the whole collection
// for an `$or` beside `_id` (690 ms an update at 20,000 tenants, against 0.5 to 7 ms).

/// The collection that holds sessions of `kind`.
pub(crate) fn sessions_collection(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::Web => "web_sessions",
        SessionKind::Mobile => "mobile_sessions",
    }
}

/// The MongoDB store. Cheap to share behind an `Arc`; the driver pools its connections.
#[derive(Debug, Clone)]
pub struct MongoStore {
    client: Client,
    db: Database,
    /// Commits that write only a tenant's document, written together (`grouped`).
    commits: std::sync::Arc<pumppilot_store::Group<pumppilot_store::OwnedCommit, StoreResult<()>>>,
    /// Counter windows reserved together (`grouped`).
    reservations: std::sync::Arc<pumppilot_store::Group<grouped::Reservation, StoreResult<Reserved>>>,
    /// Tenants read together (`Store::load_tenant`: a tenant and its lease).
    loads: std::sync::Arc<TenantReads>,
    /// Whether the server has `bulkWrite` (MongoDB 8.0): a commit's writes in one command, else
    /// one command each (`commit.rs`).
    bulk_write: bool,
}

/// Tenant reads asked for at once (each a tenant and its lease), read together.
type TenantReads = pumppilot_store::Group<(AdminId, i64), StoreResult<Option<Tenant>>>;

/// The most tenants one grouped read asks for ([`MongoStore::load_together`]).
const LOADS_AT_ONCE: usize = IDS_PER_QUERY;

impl MongoStore {
    /// A tenant's state read alone, in a transaction of its own (one snapshot).
    async fn load_alone(&self, admin: AdminId, lease_ms: i64) -> StoreResult<Option<Tenant>> {
        let store = self.clone();
        Ok(self
            .transaction(move |session| {
                let store = store.clone();
                Box::pin(async move { tenants::load(&store.db, session, admin, lease_ms).await })
            })
            .await?)
    }

    /// Tenants asked for at once (each with its lease), answered in the order asked: one alone as
    /// always; several in four reads for all of them (`tenants::load_all`, each answer the state a
    /// read alone gives), and alone those committed to meanwhile, or all of them alone when the
    /// reads together fail. A fleet coming online reads thousands of tenants, each a transaction
    /// of its own before (SecantusDB: about 30 a second).
    async fn load_together(&self, batch: Vec<(AdminId, i64)>) -> Vec<StoreResult<Option<Tenant>>> {
        let mut answers = Vec::with_capacity(batch.len());
        if let [(admin, lease_ms)] = batch[..] {
            answers.push(self.load_alone(admin, lease_ms).await);
            return answers;
        }
        let wanted: std::collections::HashSet<AdminId> = batch.iter().map(|(admin, _)| *admin).collect();
        let (read, moved) = match tenants::load_all(&self.db, 0, Some(&wanted)).await {
            Ok((read, moved)) => (read, moved),
            Err(failure) => {
                tracing::debug!(error = %StoreError::from(failure), "tenants read together failed; each is read alone");
                for (admin, lease_ms) in batch {
                    answers.push(self.load_alone(admin, lease_ms).await);
                }
                return answers;
            }
        };
        let read: std::collections::HashMap<AdminId, Tenant> = read.into_iter().map(|t| (t.admin_id, t)).collect();
        for (admin, lease_ms) in batch {
            let answer = if moved.contains(&admin) {
                self.load_alone(admin, lease_ms).await
            } else {
                // Not read: there is no such tenant (as `find_one` finds none alone).
                Ok(read.get(&admin).cloned().map(|mut tenant| {
                    tenant.device.lease_ms = lease_ms;
                    tenant
                }))
            };
            answers.push(answer);
        }
        answers
    }

    /// One tenant transition in a transaction of its own: its writes in one command, then the
    /// commit (`commit.rs`). A refused version guard is a `VersionConflict`, or `NotFound` when
    /// the tenant is not there; a refused decision `AlreadyDecided`, or `NotFound` when there is
    /// no such request (read once the transaction is given up: on the way of refusals only).
    async fn commit_alone(&self, commit: pumppilot_store::OwnedCommit) -> StoreResult<()> {
        let admin = commit.tenant.admin_id;
        let request = commit.decision.as_ref().map(|d| (d.request_id, d.admin_id));
        let (store, commit) = (self.clone(), std::sync::Arc::new(commit));
        // Its writes come first and carry their own checks: no read concern, not even a causal
        // one (the driver puts a transaction's on its first command, and SecantusDB refuses one
        // on `bulkWrite`).
        let options = TransactionOptions::builder().write_concern(WriteConcern::majority()).build();
        let written = self
            .transaction_with(options, false, move |session| {
                let (store, commit) = (store.clone(), std::sync::Arc::clone(&commit));
                Box::pin(async move { commit::commit(&store.db, session, &commit, store.bulk_write).await })
            })
            .await;
        let (refusal, collection, filter) = match (written, request) {
            (Err(Failure::Store(StoreError::VersionConflict)), _) => {
                (StoreError::VersionConflict, "tenants", doc! { "_id": key(admin) })
            }
            (Err(Failure::Store(StoreError::AlreadyDecided)), Some((id, admin))) => {
                (StoreError::AlreadyDecided, "minute_requests", doc! { "_id": key(id), "adminId": key(admin) })
            }
            (other, _) => return Ok(other?),
        };
        let exists = self
            .collection(collection)
            .find_one(filter)
            .projection(doc! { "_id": 1 })
            .await
            .map_err(Failure::from)?
            .is_some();
        Err(if exists { refusal } else { StoreError::NotFound })
    }

    /// Every device, only the fields of `projection` read, each made into a `T` as it arrives
    /// (unsorted): 100,000 whole documents held at once took tens of megabytes.
    async fn each_device<T>(
        &self,
        projection: Document,
        make: impl Fn(&codec::Fields<'_>) -> Result<T, Failure>,
    ) -> StoreResult<Vec<T>> {
        let mut cursor =
            self.collection("devices").find(doc! {}).projection(projection).await.map_err(Failure::from)?;
        let mut out = Vec::new();
        while cursor.advance().await.map_err(Failure::from)? {
            let doc: Document = cursor.deserialize_current().map_err(Failure::from)?;
            out.push(make(&codec::Fields::of(&doc, "devices"))?);
        }
        Ok(out)
    }

    /// Read the floor, then move it only if it is still the one read (compare and set), so two
    /// servers reserving for one device at once never get overlapping windows.
    pub(crate) async fn reserve_alone(
        &self,
        admin: AdminId,
        device: DeviceId,
        at_least: u64,
        block: u64,
    ) -> StoreResult<Reserved> {
        loop {
            let filter = doc! { "_id": key(device), "adminId": key(admin) };
            let Some(doc) = self.find_one("devices", filter.clone()).await? else {
                return Err(StoreError::NotFound);
            };
            let report = codec::stored_report(&doc);
            let stored = doc.get("linkHighest").cloned().unwrap_or(Bson::Null);
            let floor = link_floor(&stored)?;
            let through = CounterWindow::next_floor(floor, at_least, block)
                .ok_or_else(|| StoreError::Invariant(format!("link counter {at_least} is too large to store")))?;
            let mut guarded = filter;
            guarded.insert("linkHighest", stored);
            let result = self
                .collection("devices")
                .update_one(guarded, doc! { "$set": { "linkHighest": through as i64 }, "$unset": { "linkBelow": "" } })
                .await
                .map_err(Failure::from)?;
            if result.matched_count == 1 {
                return Ok(Reserved { window: CounterWindow { after: floor, through }, stored: report });
            }
            // Another server reserved since the floor was read: reserve above its window.
        }
    }

    /// Moves each tenant's last poll forward to a poll of its controller (or of any device, before
    /// there is one), never backwards, and joins `joins` to `server` (their tenant's presence) with
    /// their last poll: one statement a tenant, in one command (a device of another tenant, or of
    /// none, moves nothing). The last poll of a tenant both polled and joined is the later one.
    async fn move_tenants(
        &self,
        server: &str,
        mut polls: std::collections::BTreeMap<(AdminId, DeviceId), Timestamp>,
        joins: &[(AdminId, DeviceId, Timestamp)],
    ) -> StoreResult<()> {
        let mut joined = std::collections::BTreeMap::new();
        for &(admin, device, when) in joins {
            let polled = polls.remove(&(admin, device)).unwrap_or(when);
            let entry = joined.entry((admin, device)).or_insert(when);
            *entry = (*entry).max(when).max(polled);
        }
        let asked: Vec<_> =
            polls.iter().chain(joined.iter()).map(|((admin, device), when)| (*admin, *device, *when)).collect();
        if asked.is_empty() {
            return Ok(());
        }
        let known = self.known_devices(&asked).await?;
        let updates = (polls.into_iter().map(|(pair, when)| (pair, when, false)))
            .chain(joined.into_iter().map(|(pair, when)| (pair, when, true)))
            .filter(|(pair, _, _)| known.contains(pair))
            .map(|((admin, device), when, joins)| {
                let mut change = doc! { "$max": { "lastPollAt": at(when) } };
                if joins {
                    change.insert("$set", doc! { "presence": { "server": server, "device": key(device) } });
                }
                doc! { "q": { "_id": key(admin), "controllerId": { "$in": [Bson::Null, key(device)] } }, "u": change }
            });
        self.update_many_ways("tenants", updates.collect()).await
    }

    /// Several updates of one collection, each with its own filter and change, in as few `update`
    /// commands of `UPDATES_PER_COMMAND` (one round trip each, not one per update; not atomic together).
    async fn update_many_ways(&self, collection: &str, updates: Vec<Document>) -> StoreResult<()> {
        for chunk in updates.chunks(UPDATES_PER_COMMAND) {
            let command = doc! { "update": collection, "updates": chunk.to_vec(), "ordered": false };
            let reply = self.db.run_command(command).await.map_err(Failure::from)?;
            if let Ok(errors) = reply.get_array("writeErrors")
                && let Some(first) = errors.first()
            {
                return Err(StoreError::Unavailable(format!("{collection}: {first}")));
            }
        }
        Ok(())
    }

    /// Deletes the documents of `collection` that match `filter` (a purge); how many.
    async fn delete_where(&self, collection: &str, filter: Document) -> StoreResult<u64> {
        let result = self.collection(collection).delete_many(filter).await.map_err(Failure::from)?;
        Ok(result.deleted_count)
    }

    /// Which of these devices are devices of the tenant named with them (one query per `IDS_PER_QUERY`).
    async fn known_devices(
        &self,
        polls: &[(AdminId, DeviceId, Timestamp)],
    ) -> StoreResult<std::collections::HashSet<(AdminId, DeviceId)>> {
        let ids: Vec<Bson> = polls.iter().map(|(_, device, _)| key(*device)).collect();
        let mut known = std::collections::HashSet::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let mut cursor = self
                .collection("devices")
                .find(doc! { "_id": { "$in": chunk.to_vec() } })
                .projection(doc! { "adminId": 1 })
                // All in the first answer: no round trip more for each 101 documents.
                .batch_size(IDS_PER_QUERY as u32)
                .await
                .map_err(Failure::from)?;
            while cursor.advance().await.map_err(Failure::from)? {
                let doc: Document = cursor.deserialize_current().map_err(Failure::from)?;
                let device = doc.get_str("_id").ok().and_then(|id| id.parse().ok());
                let admin = doc.get_str("adminId").ok().and_then(|id| id.parse().ok());
                if let (Some(device), Some(admin)) = (device, admin) {
                    known.insert((admin, device));
                }
            }
        }
        Ok(known)
    }

    /// Stops the driver ([`stop_driver`]), at the end of the process, before its runtime goes.
    pub async fn close(&self) {
        stop_driver(self.client.clone()).await;
    }

    /// Connects to `url`, checks the server can run transactions and prepares the database.
    ///
    /// Every failure is [`StoreError::Unavailable`] with a sentence that names the host: a
    /// malformed URL, an unreachable server, a standalone server (with how to make it a replica
    /// set), a database written by a newer PumpPilot.
    pub async fn connect(url: &str) -> StoreResult<MongoStore> {
        let options = ClientOptions::parse(url).await.map_err(|e| {
            StoreError::Unavailable(format!("the MongoDB URL cannot be read: {}", error::first_line(&e)))
        })?;
        Self::connect_with(options).await
    }

    /// [`MongoStore::connect`] with the driver's options read from a URL (and, in tests, a
    /// monitor of the commands sent: `testing::fresh_store_counted`).
    pub(crate) async fn connect_with(mut options: ClientOptions) -> StoreResult<MongoStore> {
        let hosts = options.hosts.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        options.server_selection_timeout.get_or_insert(SERVER_SELECTION_TIMEOUT);
        options.app_name.get_or_insert_with(|| "pumppilot".to_owned());
        let database = options.default_database.clone().unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        let client = Client::with_options(options)
            .map_err(|e| StoreError::Unavailable(format!("MongoDB at {hosts} cannot be used: {e}")))?;
        let hello = match client.database("admin").run_command(doc! { "hello": 1 }).await {
            Ok(hello) => hello,
            Err(e) => {
                let why = format!("MongoDB at {hosts} cannot be reached: {}", error::first_line(&e));
                return Err(refuse(client, StoreError::Unavailable(why)).await);
            }
        };
        let bulk_write = hello
            .get("maxWireVersion")
            .and_then(|v| v.as_i32().or_else(|| v.as_i64().and_then(|v| i32::try_from(v).ok())))
            .is_some_and(|version| version >= commit::BULK_WRITE_WIRE_VERSION);
        let replica_set = hello.get_str("setName").is_ok();
        let router = hello.get_str("msg") == Ok("isdbgrid");
        if !replica_set && !router {
            let why = format!(
                "MongoDB at {hosts} is a standalone server, and PumpPilot needs transactions, which only a replica \
                 set has; a one-node replica set is enough: start it with `mongod --replSet rs0` and run \
                 `rs.initiate()` once in mongosh (Atlas clusters are replica sets already)"
            );
            return Err(refuse(client, StoreError::Unavailable(why)).await);
        }
        let store = MongoStore {
            db: client.database(&database),
            client,
            commits: std::sync::Arc::default(),
            reservations: std::sync::Arc::default(),
            loads: std::sync::Arc::default(),
            bulk_write,
        };
        if let Err(failure) = schema::prepare(&store.db).await {
            let error = match StoreError::from(failure) {
                StoreError::Unavailable(message) => StoreError::Unavailable(format!("MongoDB at {hosts}: {message}")),
                other => other,
            };
            return Err(refuse(store.client, error).await);
        }
        Ok(store)
    }

    /// The database this store uses.
    pub fn database(&self) -> &Database {
        &self.db
    }

    fn collection(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    /// Runs `body` in one transaction, retried while the driver labels its error transient (a
    /// write conflict with another transaction, a failover) and its commit while the outcome is
    /// unknown, as the driver's documentation prescribes. The store's own refusals are never
    /// retried.
    async fn transaction<T, F>(&self, body: F) -> Result<T, Failure>
    where
        F: for<'s> FnMut(&'s mut ClientSession) -> futures_boxed::BoxFuture<'s, Result<T, Failure>>,
    {
        let options = TransactionOptions::builder()
            .read_concern(ReadConcern::snapshot())
            .write_concern(WriteConcern::majority())
            .build();
        self.transaction_with(options, true, body).await
    }

    /// [`MongoStore::transaction`] with its own options, in a causally consistent session or not
    /// (one that is puts a read concern on each transaction's first command once it has seen the
    /// server's time).
    async fn transaction_with<T, F>(&self, options: TransactionOptions, causal: bool, mut body: F) -> Result<T, Failure>
    where
        F: for<'s> FnMut(&'s mut ClientSession) -> futures_boxed::BoxFuture<'s, Result<T, Failure>>,
    {
        let mut session = self.client.start_session().causal_consistency(causal).await?;
        let started = Instant::now();
        loop {
            session.start_transaction().with_options(options.clone()).await?;
            let value = match body(&mut session).await {
                Ok(value) => value,
                Err(failure) => {
                    // An abort can fail when the connection is gone; the transaction then times out.
                    let _ = session.abort_transaction().await;
                    let transient = match &failure {
                        Failure::Mongo(e) => e.contains_label(TRANSIENT_TRANSACTION_ERROR),
                        Failure::Conflict(_) => true,
                        Failure::Store(_) => false,
                    };
                    if transient && started.elapsed() < TRANSACTION_RETRY_FOR {
                        continue;
                    }
                    return Err(failure);
                }
            };
            loop {
                match session.commit_transaction().await {
                    Ok(()) => return Ok(value),
                    Err(e)
                        if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                            && started.elapsed() < TRANSACTION_RETRY_FOR => {}
                    // A duplicate key at the commit is SecantusDB's misreported write conflict
                    // (`conflict_if_duplicate`), surfacing there rather than at the statement: a
                    // unique index refuses a statement when it runs, never at the commit.
                    Err(e)
                        if (e.contains_label(TRANSIENT_TRANSACTION_ERROR) || duplicate_key(&e).is_some())
                            && started.elapsed() < TRANSACTION_RETRY_FOR =>
                    {
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }

    async fn find_all(
        &self,
        collection: &str,
        filter: Document,
        sort: Document,
        limit: Option<usize>,
    ) -> Result<Vec<Document>, Failure> {
        let collection = self.collection(collection);
        let mut find = collection.find(filter).sort(sort);
        if let Some(limit) = limit {
            find = find.limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        let mut cursor = find.await?;
        let mut docs = Vec::new();
        while cursor.advance().await? {
            docs.push(cursor.deserialize_current()?);
        }
        Ok(docs)
    }

    /// The sum of `figure` over the documents of `collection` whose `field` is at or after
    /// `since` (0 when none is).
    /// The sum of `figure` over the documents of `collection` whose `field` is `since` or later
    /// (and that match `also`).
    async fn sum_since(
        &self,
        collection: &str,
        field: &str,
        figure: &str,
        since: Timestamp,
        also: Document,
    ) -> Result<i64, Failure> {
        let mut filter = doc! { field: { "$gte": at(since) } };
        filter.extend(also);
        let pipeline = [
            doc! { "$match": filter },
            doc! { "$group": { "_id": Bson::Null, "sum": { "$sum": format!("${figure}") } } },
        ];
        let mut cursor = self.collection(collection).aggregate(pipeline).await?;
        if !cursor.advance().await? {
            return Ok(0);
        }
        let group: Document = cursor.deserialize_current()?;
        let sum = group.get("sum").unwrap_or(&Bson::Int64(0));
        Ok(whole(sum, &format!("the sum of {collection}'s {figure}"))?)
    }

    async fn find_one(&self, collection: &str, filter: Document) -> Result<Option<Document>, Failure> {
        Ok(self.collection(collection).find_one(filter).await?)
    }

    /// The account with this id, from `admins` or `users`.
    ///
    /// Both collections are asked at once: a farmer's account (in `users`) is one round trip to
    /// the store, not two, on the way of a signed-in request whose account is not in memory yet
    /// (a farmer's first Start on this server).
    async fn account_where(&self, filter: Document) -> Result<Option<Account>, Failure> {
        let (admin, user) = tokio::join!(self.find_one("admins", filter.clone()), self.find_one("users", filter));
        if let Some(doc) = admin? {
            return Ok(Some(codec::account(&doc, "admins")?));
        }
        match user? {
            Some(doc) => Ok(Some(codec::account(&doc, "users")?)),
            None => Ok(None),
        }
    }
}

/// Every document of a session cursor.
pub(crate) async fn collect(
    mut cursor: mongodb::SessionCursor<Document>,
    session: &mut ClientSession,
) -> Result<Vec<Document>, Failure> {
    let mut docs = Vec::new();
    while cursor.advance(session).await? {
        docs.push(cursor.deserialize_current()?);
    }
    Ok(docs)
}

/// A boxed future borrowing the session, as [`MongoStore::transaction`] takes (no extra crate).
pub(crate) mod futures_boxed {
    pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}

/// The account's collection.
fn accounts_collection(role: Role) -> &'static str {
    match role {
        Role::Master | Role::Admin => "admins",
        Role::User => "users",
    }
}

/// A count or a sum as a store's server answers it (a whole number of either width, or a double
/// where a server sums that way), or [`StoreError::Invariant`] naming `what`.
fn whole(value: &Bson, what: &str) -> StoreResult<i64> {
    match value {
        Bson::Int64(n) => Ok(*n),
        Bson::Int32(n) => Ok(i64::from(*n)),
        Bson::Double(n) => Ok(*n as i64),
        other => Err(StoreError::Invariant(format!("{what} is {other}"))),
    }
}

/// A limit as the server's integer.
/// A tenant's documents (or one user's of it) whose `field` is in `[from, to)`.
fn of_tenant_between(
    admin: AdminId,
    user: Option<UserId>,
    field: &str,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> Document {
    let mut filter = doc! { "adminId": key(admin) };
    if let Some(user) = user {
        filter.insert("userId", key(user));
    }
    let mut range = Document::new();
    if let Some(from) = from {
        range.insert("$gte", at(from));
    }
    if let Some(to) = to {
        range.insert("$lt", at(to));
    }
    if !range.is_empty() {
        filter.insert(field, range);
    }
    filter
}

fn limit(limit: usize) -> Option<usize> {
    Some(limit)
}

/// An account's tenant fits its role (as SQLite's `create` checks it).
fn check_tenant_of(account: &Account) -> StoreResult<()> {
    let tenant_ok = match account.role {
        Role::Master => account.admin_id.is_none(),
        Role::Admin => account.admin_id == Some(AdminId(account.id)),
        Role::User => account.admin_id.is_some(),
    };
    if !tenant_ok {
        return Err(StoreError::Invariant(format!(
            "a {} account cannot have admin_id {:?}",
            account.role.as_str(),
            account.admin_id.map(|admin| admin.to_string())
        )));
    }
    Ok(())
}

impl MongoStore {
    /// Creates an account (its username's claim, its document, an admin's tenant) in `session`'s
    /// transaction.
    async fn create_account_in(&self, session: &mut ClientSession, account: &Account) -> Result<(), Failure> {
        let claim = doc! { "_id": &account.username, "accountId": key(account.id) };
        self.collection("usernames").insert_one(claim).session(&mut *session).await.map_err(
            |e| match duplicate_key(&e) {
                Some(_) => Failure::Store(StoreError::UsernameTaken),
                None => Failure::Mongo(e),
            },
        )?;
        let mut doc = codec::account_doc(account);
        if account.role == Role::User {
            let Some(admin) = account.admin_id else {
                return Err(invariant(format!("user {} names no tenant", account.id)));
            };
            if !tenants::exists(&self.db, session, admin).await? {
                return Err(invariant(format!("user {} names no tenant {admin}", account.id)));
            }
            doc.insert("balanceSeconds", 0_i64);
        }
        self.collection(accounts_collection(account.role)).insert_one(doc).session(&mut *session).await?;
        if account.role == Role::Admin {
            self.collection("tenants")
                .insert_one(tenants::new_tenant_doc(AdminId(account.id)))
                .session(&mut *session)
                .await?;
        }
        Ok(())
    }

    /// Decides a PENDING request in `session`'s transaction, and settles the owner's notice of it
    /// ([`pumppilot_store::request_notice_key`]).
    async fn decide_in(&self, session: &mut ClientSession, decision: &Decision) -> Result<(), Failure> {
        if decision.status == RequestStatus::Pending {
            return Err(invariant("a decision must approve or reject"));
        }
        let (filter, update) = tenants::decision_update(decision);
        let result = self.collection("minute_requests").update_one(filter, update).session(&mut *session).await?;
        if result.matched_count == 0 {
            let exists = self
                .collection("minute_requests")
                .find_one(doc! { "_id": key(decision.request_id), "adminId": key(decision.admin_id) })
                .session(&mut *session)
                .await?
                .is_some();
            return Err(Failure::Store(if exists { StoreError::AlreadyDecided } else { StoreError::NotFound }));
        }
        let notice_key = pumppilot_store::request_notice_key(decision.request_id);
        alerts::settle(&self.db, session, &notice_key, decision.at).await
    }
}

#[async_trait]
impl Store for MongoStore {
    async fn ping(&self) -> StoreResult<()> {
        self.db.run_command(doc! { "ping": 1 }).await.map_err(Failure::from)?;
        Ok(())
    }

    async fn probe_write(&self) -> StoreResult<()> {
        // One document in `meta`, acknowledged by a majority: proves the store can commit.
        let now = mongodb::bson::DateTime::now();
        self.collection("meta")
            .update_one(doc! { "_id": "write_probe" }, doc! { "$set": { "at": now } })
            .upsert(true)
            .write_concern(WriteConcern::majority())
            .await
            .map_err(Failure::from)?;
        Ok(())
    }

    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        check_tenant_of(account)?;
        let account = account.clone();
        let store = self.clone();
        self.transaction(move |session| {
            let account = account.clone();
            let store = store.clone();
            Box::pin(async move { store.create_account_in(session, &account).await })
        })
        .await?;
        Ok(())
    }

    async fn account(&self, id: UserId) -> StoreResult<Option<Account>> {
        Ok(self.account_where(doc! { "_id": key(id) }).await?)
    }

    async fn account_by_username(&self, username: &str) -> StoreResult<Option<Account>> {
        Ok(self.account_where(doc! { "username": username }).await?)
    }

    async fn accounts(&self, role: Role, admin: Option<AdminId>) -> StoreResult<Vec<Account>> {
        let mut filter = doc! { "role": role.as_str() };
        if let Some(admin) = admin {
            filter.insert("adminId", key(admin));
        }
        let collection = accounts_collection(role);
        let docs = self.find_all(collection, filter, doc! { "createdAt": 1, "_id": 1 }, None).await?;
        Ok(docs.iter().map(|doc| codec::account(doc, collection)).collect::<Result<_, _>>()?)
    }

    async fn owner_page(&self, query: &OwnerQuery) -> StoreResult<OwnerPage> {
        // The owners by `role_username`; the count beside the page, at the same time.
        let mut range = Document::new();
        if let Some((low, high)) = query.prefix_range() {
            range.insert("$gte", low);
            range.insert("$lt", high);
        }
        let mut filter = doc! { "role": Role::Admin.as_str() };
        if !range.is_empty() {
            filter.insert("username", range.clone());
        }
        let mut page_filter = filter.clone();
        if let Some(after) = &query.after {
            range.insert("$gt", after);
            page_filter.insert("username", range);
        }
        let admins = self.collection("admins");
        let (docs, total) = tokio::join!(
            self.find_all("admins", page_filter, doc! { "username": 1 }, Some(query.limit.saturating_add(1))),
            admins.count_documents(filter),
        );
        let (docs, total) = (docs?, total.map_err(Failure::from)?);
        let more = docs.len() > query.limit;
        let accounts =
            docs.iter().take(query.limit).map(|doc| codec::account(doc, "admins")).collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<AdminId> = accounts.iter().map(|a| AdminId(a.id)).collect();
        let counts = self.farmer_counts(&ids).await?;
        let owners = accounts.into_iter().zip(counts).map(|(account, farmers)| OwnerRow { account, farmers }).collect();
        Ok(OwnerPage { owners, more, total })
    }

    async fn farmer_counts(&self, admins: &[AdminId]) -> StoreResult<Vec<u64>> {
        // One `$group` per `IDS_PER_QUERY` tenants over `users {adminId}` (only farmers live there).
        let mut counts = std::collections::HashMap::new();
        for chunk in admins.chunks(IDS_PER_QUERY) {
            let ids: Vec<Bson> = chunk.iter().map(key).collect();
            let pipeline = [
                doc! { "$match": { "adminId": { "$in": ids } } },
                doc! { "$group": { "_id": "$adminId", "farmers": { "$sum": 1_i64 } } },
            ];
            let mut cursor = self.collection("users").aggregate(pipeline).await.map_err(Failure::from)?;
            while cursor.advance().await.map_err(Failure::from)? {
                let group: Document = cursor.deserialize_current().map_err(Failure::from)?;
                let (Ok(admin), Some(farmers)) = (group.get_str("_id"), group.get("farmers")) else { continue };
                counts.insert(admin.to_owned(), u64::try_from(whole(farmers, "a farmer count")?).unwrap_or(0));
            }
        }
        Ok(admins.iter().map(|admin| counts.get(&admin.to_string()).copied().unwrap_or(0)).collect())
    }

    async fn fleet_totals(&self, since: Timestamp) -> StoreResult<FleetTotals> {
        // Each a count or a sum over one index: owners by role; farmers (only they live
        // in `users`, each naming its tenant by an id, a string) as the range of every string in
        // `admin_created`; the sums by time in `ended_charged` and `at_cash`, which hold the figures.
        // The cash of the void receipts (few: `void_at_cash` holds them alone) is taken off.
        let (admins, users) = (self.collection("admins"), self.collection("users"));
        let (owners, farmers, charged_seconds, cash_taka, void_taka) = tokio::join!(
            admins.count_documents(doc! { "role": Role::Admin.as_str() }),
            users.count_documents(doc! { "adminId": { "$gte": "" } }),
            self.sum_since("usage_history", "endedAt", "chargedSeconds", since, doc! {}),
            self.sum_since("receipts", "at", "cashTaka", since, doc! {}),
            self.sum_since("receipts", "at", "cashTaka", since, doc! { "voidedAt": { "$exists": true } }),
        );
        Ok(FleetTotals {
            owners: owners.map_err(Failure::from)?,
            farmers: farmers.map_err(Failure::from)?,
            charged_seconds: charged_seconds?,
            cash_taka: cash_taka? - void_taka?,
        })
    }

    async fn set_suspended(&self, id: UserId, suspended: bool) -> StoreResult<()> {
        for collection in ["admins", "users"] {
            let result = self
                .collection(collection)
                .update_one(doc! { "_id": key(id) }, doc! { "$set": { "suspended": suspended } })
                .await
                .map_err(Failure::from)?;
            if result.matched_count > 0 {
                return Ok(());
            }
        }
        Err(StoreError::NotFound)
    }

    async fn change_account(&self, change: &AccountChange, audit: &AuditEntry) -> StoreResult<Vec<SessionId>> {
        let store = self.clone();
        let (change, audit) = (change.clone(), audit.clone());
        Ok(self
            .transaction(move |session| {
                let (store, change, audit) = (store.clone(), change.clone(), audit.clone());
                Box::pin(async move {
                    let mut set = Document::new();
                    if let Some(name) = &change.name {
                        set.insert("name", name);
                    }
                    if let Some(hash) = &change.password_hash {
                        set.insert("passwordHash", hash);
                    }
                    let filter = doc! {
                        "_id": key(change.id),
                        "adminId": codec::opt_key(change.admin_id),
                        "role": change.role.as_str(),
                    };
                    // An empty change still has to find its account.
                    let update = if set.is_empty() {
                        doc! { "$inc": { "changes": 0_i64 } }
                    } else {
                        doc! { "$set": set }
                    };
                    let found = store
                        .collection(accounts_collection(change.role))
                        .update_one(filter, update)
                        .session(&mut *session)
                        .await?;
                    if found.matched_count == 0 {
                        return Err(Failure::Store(StoreError::NotFound));
                    }
                    let revoked = if change.password_hash.is_some() {
                        let scope = SessionScope::User(change.id);
                        tenants::revoke_sessions(&store.db, session, scope, change.keep_session, change.at).await?
                    } else {
                        Vec::new()
                    };
                    store.collection("audit_logs").insert_one(codec::audit_doc(&audit)).session(&mut *session).await?;
                    Ok(revoked)
                })
            })
            .await?)
    }

    /// The ids alone (a projection), each parsed as it arrives: the alerts watch lists every
    /// tenant every round, and whole tenant documents held at once took about 4 KB a tenant
    /// (40 MB at 10,000) that the allocator then kept.
    async fn tenant_ids(&self) -> StoreResult<Vec<AdminId>> {
        let mut cursor = self
            .collection("tenants")
            .find(doc! {})
            .projection(doc! { "_id": 1 })
            .sort(doc! { "_id": 1 })
            .await
            .map_err(Failure::from)?;
        let mut ids = Vec::new();
        while cursor.advance().await.map_err(Failure::from)? {
            let doc: Document = cursor.deserialize_current().map_err(Failure::from)?;
            ids.push(codec::Fields::of(&doc, "tenants").parsed("_id")?);
        }
        Ok(ids)
    }

    async fn tenants_with_runs(&self) -> StoreResult<Vec<AdminId>> {
        Ok(tenants::with_runs(&self.db).await?)
    }

    async fn pump_links(
        &self,
        wanted: Option<&std::collections::HashSet<AdminId>>,
    ) -> StoreResult<Vec<pumppilot_store::PumpLink>> {
        Ok(tenants::links(&self.db, wanted).await?)
    }

    /// Read with the others asked for at the same time (`load_together`): a lone read waits for
    /// nothing, a crowd (a fleet coming online) shares its reads.
    async fn load_tenant(&self, admin: AdminId, lease_ms: i64) -> StoreResult<Option<Tenant>> {
        let store = self.clone();
        let read = move |batch| {
            let store = store.clone();
            async move { store.load_together(batch).await }
        };
        self.loads
            .submit((admin, lease_ms), LOADS_AT_ONCE, read)
            .await
            .unwrap_or_else(|| Err(StoreError::Unavailable("a grouped read ended without an answer".into())))
    }

    /// A few reads for all of them (`tenants::load_all`; those wanted `IDS_PER_QUERY` at a time),
    /// and alone those committed to meanwhile.
    async fn load_tenants(
        &self,
        lease_ms: i64,
        wanted: Option<&std::collections::HashSet<AdminId>>,
    ) -> StoreResult<Vec<Tenant>> {
        // Every tenant in one pass, or those wanted `IDS_PER_QUERY` at a time.
        let parts: Vec<Option<std::collections::HashSet<AdminId>>> = match wanted {
            None => vec![None],
            Some(wanted) => {
                let wanted: Vec<AdminId> = wanted.iter().copied().collect();
                wanted.chunks(IDS_PER_QUERY).map(|chunk| Some(chunk.iter().copied().collect())).collect()
            }
        };
        let mut tenants = Vec::new();
        for part in parts {
            let (read, moved) = tenants::load_all(&self.db, lease_ms, part.as_ref()).await?;
            tenants.extend(read);
            for admin in moved {
                tenants.extend(self.load_alone(admin, lease_ms).await?);
            }
        }
        Ok(tenants)
    }

    /// A commit that writes only its tenant's document (a device coming online) is written with
    /// the others made at the same time, in one transaction (`grouped`); any other alone.
    async fn commit(&self, commit: Commit<'_>) -> StoreResult<()> {
        commit.check()?;
        let commit = pumppilot_store::OwnedCommit::from(commit);
        if !grouped::writes_tenant_only(&commit) {
            return self.commit_alone(commit).await;
        }
        let store = self.clone();
        let write = move |batch| {
            let store = store.clone();
            async move { grouped::commit_tenants(&store, batch).await }
        };
        self.commits
            .submit(commit, grouped::COMMITS_AT_ONCE, write)
            .await
            .unwrap_or_else(|| Err(StoreError::Unavailable("a grouped commit ended without an answer".into())))
    }

    async fn terms(&self, admin: AdminId) -> StoreResult<Terms> {
        let doc = self.find_one("terms", doc! { "_id": key(admin) }).await?;
        Ok(doc.as_ref().map(codec::terms).transpose()?.map(|(_, terms)| terms).unwrap_or_default())
    }

    async fn set_terms(&self, admin: AdminId, terms: &Terms, audit: &AuditEntry) -> StoreResult<()> {
        let store = self.clone();
        let (terms, audit) = (*terms, audit.clone());
        self.transaction(move |session| {
            let (store, audit) = (store.clone(), audit.clone());
            Box::pin(async move {
                if !tenants::exists(&store.db, session, admin).await? {
                    return Err(Failure::Store(StoreError::NotFound));
                }
                store
                    .collection("terms")
                    .replace_one(doc! { "_id": key(admin) }, codec::terms_doc(admin, &terms))
                    .upsert(true)
                    .session(&mut *session)
                    .await?;
                store.collection("audit_logs").insert_one(codec::audit_doc(&audit)).session(&mut *session).await?;
                Ok(())
            })
        })
        .await?;
        Ok(())
    }

    async fn create_device(&self, device: &Device) -> StoreResult<()> {
        if device.telemetry.as_ref().is_some_and(|t| t.device_id != device.id || t.admin_id != device.admin_id) {
            return Err(StoreError::Invariant("a new device's telemetry names another device".into()));
        }
        let doc = codec::device_doc(device)?;
        self.collection("devices").insert_one(doc).await.map_err(Failure::from)?;
        if let Some(telemetry) = &device.telemetry {
            self.record_telemetry(std::slice::from_ref(telemetry)).await?;
        }
        Ok(())
    }

    async fn devices(&self, admin: AdminId) -> StoreResult<Vec<Device>> {
        let filter = doc! { "adminId": key(admin) };
        let docs = self.find_all("devices", filter, doc! { "createdAt": 1, "_id": 1 }, None).await?;
        Ok(docs.iter().map(codec::device).collect::<Result<_, _>>()?)
    }

    async fn device_with_key(&self, admin: AdminId, once_key: &str) -> StoreResult<Option<Device>> {
        let doc = self.find_one("devices", doc! { "adminId": key(admin), "onceKey": once_key }).await?;
        Ok(doc.as_ref().map(codec::device).transpose()?)
    }

    async fn reported_firmware(&self) -> StoreResult<Vec<pumppilot_store::ReportedFirmware>> {
        self.each_device(doc! { "adminId": 1, "firmware": 1 }, |f| {
            Ok(pumppilot_store::ReportedFirmware {
                device: f.parsed("_id")?,
                admin: f.parsed("adminId")?,
                version: f.opt_string("firmware")?,
            })
        })
        .await
    }

    async fn device_keys(&self) -> StoreResult<Vec<pumppilot_store::DeviceKey>> {
        self.each_device(doc! { "adminId": 1, "keyHash": 1 }, |f| {
            Ok(pumppilot_store::DeviceKey {
                device: f.parsed("_id")?,
                admin: f.parsed("adminId")?,
                key_hash: f.bytes("keyHash")?,
            })
        })
        .await
    }

    /// Each report is its own atomic write (a report older than the stored one changes nothing),
    /// then each tenant's last poll moves forward to the latest report of a device of its own
    /// (`record_arrivals` with nobody joining); a batch needs no transaction, never holds a
    /// tenant's document for long, and takes a command for the devices, one for the tenants and a
    /// query per `IDS_PER_QUERY` devices however many it has (`update_many_ways`).
    async fn record_telemetry(&self, batch: &[Telemetry]) -> StoreResult<()> {
        self.record_arrivals("", batch, &[]).await
    }

    /// The devices' reports first (one command), then one command for the tenants: a joining
    /// device's tenant gets its last poll and its presence in one update, any other its last poll
    /// alone; each tenant is written once, as SecantusDB writes one statement of a collection at a
    /// time (a fleet of 100,000 coming online wrote each tenant twice before).
    async fn record_arrivals(
        &self,
        server: &str,
        batch: &[Telemetry],
        joining: &[(AdminId, DeviceId, Timestamp)],
    ) -> StoreResult<()> {
        let mut latest: std::collections::BTreeMap<(AdminId, DeviceId), Timestamp> = std::collections::BTreeMap::new();
        if !batch.is_empty() {
            let mut reports = Vec::with_capacity(batch.len());
            for telemetry in batch {
                let when = at(telemetry.last_seen_at);
                let mut fields = codec::telemetry_fields(telemetry)?;
                fields.extend(codec::reset_fields(telemetry).unwrap_or_default());
                reports.push(doc! {
                    "q": {
                        "_id": key(telemetry.device_id),
                        "adminId": key(telemetry.admin_id),
                        "lastSeenAt": { "$not": { "$gt": when } },
                    },
                    "u": { "$set": fields },
                });
                let entry = latest.entry((telemetry.admin_id, telemetry.device_id)).or_insert(telemetry.last_seen_at);
                *entry = (*entry).max(telemetry.last_seen_at);
            }
            self.update_many_ways("devices", reports).await?;
        }
        // A report that did not land (a later one is stored) moves nothing the later one did not
        // move further already.
        self.move_tenants(server, latest, joining).await
    }

    async fn record_last_polls(&self, polls: &[(AdminId, DeviceId, Timestamp)]) -> StoreResult<()> {
        let mut latest = std::collections::BTreeMap::new();
        for &(admin, device, when) in polls {
            let entry = latest.entry((admin, device)).or_insert(when);
            *entry = (*entry).max(when);
        }
        self.move_tenants("", latest, &[]).await
    }

    /// The presence is a field of the tenant's document (`presence: {server, device}`), so the
    /// feed's event for the tenant carries it; a join is one conditional update, a leave clears it
    /// only where it names this server and device.
    async fn record_presence(
        &self,
        server: &str,
        joined: &[(AdminId, DeviceId, Timestamp)],
        left: &[(AdminId, DeviceId, Timestamp)],
    ) -> StoreResult<()> {
        if !joined.is_empty() {
            self.move_tenants(server, std::collections::BTreeMap::new(), joined).await?;
        }
        if left.is_empty() {
            return Ok(());
        }
        self.record_last_polls(left).await?;
        let updates = left.iter().map(|(admin, device, _)| {
            doc! {
                "q": { "_id": key(*admin), "presence.server": server, "presence.device": key(*device) },
                "u": { "$unset": { "presence": "" } },
            }
        });
        self.update_many_ways("tenants", updates.collect()).await
    }

    async fn presences(&self) -> StoreResult<Vec<pumppilot_store::Presence>> {
        let mut cursor = self
            .collection("tenants")
            .find(doc! { "presence": { "$ne": Bson::Null } })
            .projection(doc! { "presence": 1 })
            .await
            .map_err(Failure::from)?;
        let mut out = Vec::new();
        while cursor.advance().await.map_err(Failure::from)? {
            let doc: Document = cursor.deserialize_current().map_err(Failure::from)?;
            let admin = doc.get_str("_id").ok().and_then(|id| id.parse().ok());
            if let (Some(admin), Some((device, server))) = (admin, codec::presence_of(&doc)) {
                out.push(pumppilot_store::Presence { admin, device, server });
            }
        }
        Ok(out)
    }

    async fn delete_device(&self, admin: AdminId, device: DeviceId) -> StoreResult<()> {
        let result = self
            .collection("devices")
            .delete_one(doc! { "_id": key(device), "adminId": key(admin) })
            .await
            .map_err(Failure::from)?;
        if result.deleted_count == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn set_device_key(&self, admin: AdminId, device: DeviceId, key_hash: &[u8]) -> StoreResult<()> {
        let result = self
            .collection("devices")
            .update_one(
                doc! { "_id": key(device), "adminId": key(admin) },
                doc! { "$set": { "keyHash": codec::bytes(key_hash) } },
            )
            .await
            .map_err(Failure::from)?;
        if result.matched_count == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Reservations made at the same time (a fleet coming online) are made together, in one
    /// transaction (`grouped`); each as [`MongoStore::reserve_alone`] makes it.
    async fn reserve_device_counters(
        &self,
        admin: AdminId,
        device: DeviceId,
        at_least: u64,
        block: u64,
    ) -> StoreResult<Reserved> {
        let store = self.clone();
        let write = move |batch| {
            let store = store.clone();
            async move { grouped::reserve_counters(&store, batch).await }
        };
        self.reservations
            .submit((admin, device, at_least, block), grouped::RESERVATIONS_AT_ONCE, write)
            .await
            .unwrap_or_else(|| Err(StoreError::Unavailable("a grouped reservation ended without an answer".into())))
    }

    async fn device_counters(&self, admin: Option<AdminId>) -> StoreResult<Vec<(DeviceId, u64)>> {
        let mut filter = doc! { "linkHighest": { "$gt": 0_i64 } };
        if let Some(admin) = admin {
            filter.insert("adminId", key(admin));
        }
        // The counter alone (a projection), each converted as it arrives: once a fleet signs,
        // every device has one, and 100,000 whole documents held at once took tens of megabytes.
        let mut cursor = self
            .collection("devices")
            .find(filter)
            .projection(doc! { "linkHighest": 1 })
            .sort(doc! { "_id": 1 })
            .await
            .map_err(Failure::from)?;
        let mut out = Vec::new();
        while cursor.advance().await.map_err(Failure::from)? {
            let doc: Document = cursor.deserialize_current().map_err(Failure::from)?;
            let id = doc
                .get_str("_id")
                .ok()
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| StoreError::Invariant("a device without an id".into()))?;
            let highest = doc.get_i64("linkHighest").ok().and_then(|n| u64::try_from(n).ok());
            out.push((
                id,
                highest.ok_or_else(|| StoreError::Invariant("a device's link counter is not a number".into()))?,
            ));
        }
        Ok(out)
    }

    async fn put_firmware(&self, release: &FirmwareRelease, bytes: &[u8]) -> StoreResult<()> {
        if bytes.len() != release.size as usize {
            return Err(StoreError::Invariant("a firmware image is not the size of its release".into()));
        }
        // `_id` is the version: a second release of it is refused by the index (Invariant).
        self.collection("firmware").insert_one(codec::firmware_doc(release, bytes)).await.map_err(Failure::from)?;
        Ok(())
    }

    async fn firmware_releases(&self) -> StoreResult<Vec<FirmwareRelease>> {
        let projection = doc! { "bytes": 0 };
        let mut cursor = self
            .collection("firmware")
            .find(Document::new())
            .projection(projection)
            .sort(doc! { "publishedAt": -1, "_id": -1 })
            .await
            .map_err(Failure::from)?;
        let mut out = Vec::new();
        while cursor.advance().await.map_err(Failure::from)? {
            let doc = cursor.deserialize_current().map_err(Failure::from)?;
            out.push(codec::firmware_release(&doc)?);
        }
        Ok(out)
    }

    async fn firmware_bytes(&self, version: &str) -> StoreResult<Option<Vec<u8>>> {
        let Some(doc) = self.find_one("firmware", doc! { "_id": version }).await? else { return Ok(None) };
        Ok(Some(codec::Fields::of(&doc, "firmware").bytes("bytes")?))
    }

    async fn set_firmware_rollout(&self, version: &str, rollout: Rollout) -> StoreResult<()> {
        let set = doc! { "rolloutPercent": i32::from(rollout.percent.min(100)), "rolloutTenant": codec::opt_key(rollout.tenant) };
        let result = self
            .collection("firmware")
            .update_one(doc! { "_id": version }, doc! { "$set": set })
            .await
            .map_err(Failure::from)?;
        if result.matched_count == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// One document per device in `firmware_downloads` (`_id` = the device): a `$max` where it
    /// holds this version, else a replacement guarded by `at`; two servers inserting at once meet
    /// the `_id`, and the one refused moves the other's record forward instead.
    async fn record_firmware_download(&self, download: &FirmwareDownload) -> StoreResult<()> {
        let collection = self.collection("firmware_downloads");
        let id = key(download.device);
        let (received, size) = (i64::from(download.received), i64::from(download.size));
        let forward = doc! {
            "$max": { "received": received, "at": at(download.at) },
            "$set": { "adminId": key(download.admin), "size": size },
        };
        let whole = doc! {
            "_id": id.clone(),
            "adminId": key(download.admin),
            "version": &download.version,
            "received": received,
            "size": size,
            "at": at(download.at),
        };
        for _ in 0..2 {
            let same = doc! { "_id": id.clone(), "version": &download.version };
            if collection.update_one(same, forward.clone()).await.map_err(Failure::from)?.matched_count > 0 {
                return Ok(());
            }
            let other =
                doc! { "_id": id.clone(), "version": { "$ne": &download.version }, "at": { "$lte": at(download.at) } };
            match collection.replace_one(other, whole.clone()).upsert(true).await {
                Ok(_) => return Ok(()),
                // It exists: this version written by another server meanwhile (moved forward on
                // the next turn), or a newer record of another version (left as it is).
                Err(e) if duplicate_key(&e).is_some() => {}
                Err(e) => return Err(Failure::from(e).into()),
            }
        }
        Ok(())
    }

    async fn firmware_downloads(&self, admin: AdminId) -> StoreResult<Vec<FirmwareDownload>> {
        let docs = self.find_all("firmware_downloads", doc! { "adminId": key(admin) }, doc! { "_id": 1 }, None).await?;
        let read = |doc: &Document| -> Result<FirmwareDownload, Failure> {
            let f = codec::Fields::of(doc, "firmware_downloads");
            let size = |field| {
                u32::try_from(f.unsigned(field)?)
                    .map_err(|_| error::unreadable(format!("firmware_downloads.{field} is too large")))
            };
            Ok(FirmwareDownload {
                device: f.parsed("_id")?,
                admin: f.parsed("adminId")?,
                version: f.string("version")?,
                received: size("received")?,
                size: size("size")?,
                at: f.at("at")?,
            })
        };
        Ok(docs.iter().map(read).collect::<Result<_, _>>()?)
    }

    async fn purge_firmware_downloads(&self, before: Timestamp) -> StoreResult<u64> {
        self.delete_where("firmware_downloads", doc! { "at": { "$lt": at(before) } }).await
    }

    async fn bind_card(&self, card: &Card) -> StoreResult<()> {
        let member = self
            .find_one("users", doc! { "_id": key(card.user_id), "adminId": key(card.admin_id), "role": "user" })
            .await?;
        if member.is_none() {
            return Err(StoreError::NotFound);
        }
        self.collection("cards")
            .update_one(
                doc! { "adminId": key(card.admin_id), "uid": &card.uid },
                doc! { "$set": { "userId": key(card.user_id), "boundAt": at(card.bound_at) } },
            )
            .upsert(true)
            .await
            .map_err(Failure::from)?;
        Ok(())
    }

    async fn unbind_card(&self, admin: AdminId, uid: &str) -> StoreResult<()> {
        let result = self
            .collection("cards")
            .delete_one(doc! { "adminId": key(admin), "uid": uid })
            .await
            .map_err(Failure::from)?;
        if result.deleted_count == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn card(&self, admin: AdminId, uid: &str) -> StoreResult<Option<Card>> {
        let doc = self.find_one("cards", doc! { "adminId": key(admin), "uid": uid }).await?;
        Ok(doc.as_ref().map(codec::card).transpose()?)
    }

    async fn cards(&self, admin: AdminId) -> StoreResult<Vec<Card>> {
        let docs =
            self.find_all("cards", doc! { "adminId": key(admin) }, doc! { "boundAt": 1, "uid": 1 }, None).await?;
        Ok(docs.iter().map(codec::card).collect::<Result<_, _>>()?)
    }

    async fn ledger(&self, user: UserId, max: usize) -> StoreResult<Vec<LedgerEntry>> {
        let docs =
            self.find_all("ledger", doc! { "userId": key(user) }, doc! { "at": -1, "_id": -1 }, limit(max)).await?;
        Ok(docs.iter().map(codec::ledger_entry).collect::<Result<_, _>>()?)
    }

    async fn ledger_entry_with_key(&self, admin: AdminId, once_key: &str) -> StoreResult<Option<LedgerEntry>> {
        let doc = self.find_one("ledger", doc! { "adminId": key(admin), "onceKey": once_key }).await?;
        Ok(doc.as_ref().map(codec::ledger_entry).transpose()?)
    }

    async fn usage(&self, query: &UsageQuery) -> StoreResult<Vec<UsageRow>> {
        let filter = of_tenant_between(query.admin, query.user, "endedAt", query.from, query.to);
        let docs =
            self.find_all("usage_history", filter, doc! { "endedAt": -1, "_id": -1 }, limit(query.limit)).await?;
        Ok(docs.iter().map(codec::usage_row).collect::<Result<_, _>>()?)
    }

    async fn write_audited(&self, write: &AuditedWrite, entry: &AuditEntry) -> StoreResult<()> {
        match write {
            AuditedWrite::CreateAccount(account) => check_tenant_of(account)?,
            AuditedWrite::CreateDevice { device, .. } if device.telemetry.is_some() => {
                return Err(StoreError::Invariant("an audited new device comes without telemetry".into()));
            }
            _ => {}
        }
        let (write, entry) = (write.clone(), entry.clone());
        let store = self.clone();
        self.transaction(move |session| {
            let (write, entry, store) = (write.clone(), entry.clone(), store.clone());
            Box::pin(async move {
                match &write {
                    AuditedWrite::CreateAccount(account) => store.create_account_in(session, account).await?,
                    AuditedWrite::CreateDevice { device, once_key } => {
                        let mut doc = codec::device_doc(device)?;
                        if let Some(once_key) = once_key {
                            doc.insert("onceKey", once_key);
                        }
                        store.collection("devices").insert_one(doc).session(&mut *session).await.map_err(|e| {
                            match duplicate_key(&e) {
                                Some(message) if message.contains(schema::DEVICES_ONCE_KEY) => {
                                    Failure::Store(StoreError::AlreadyMade)
                                }
                                _ => Failure::Mongo(e),
                            }
                        })?;
                    }
                    AuditedWrite::Decide { decision, notices } => {
                        store.decide_in(session, decision).await?;
                        for notice in notices {
                            alerts::insert_notice(&store.db, session, notice).await?;
                        }
                    }
                    AuditedWrite::SetDeviceKey { admin, device, key_hash } => {
                        let result = store
                            .collection("devices")
                            .update_one(
                                doc! { "_id": key(*device), "adminId": key(*admin) },
                                doc! { "$set": { "keyHash": codec::bytes(key_hash) } },
                            )
                            .session(&mut *session)
                            .await?;
                        if result.matched_count == 0 {
                            return Err(Failure::Store(StoreError::NotFound));
                        }
                    }
                    AuditedWrite::BindCard(card) => {
                        let member = store
                            .collection("users")
                            .find_one(doc! { "_id": key(card.user_id), "adminId": key(card.admin_id), "role": "user" })
                            .session(&mut *session)
                            .await?;
                        if member.is_none() {
                            return Err(Failure::Store(StoreError::NotFound));
                        }
                        store
                            .collection("cards")
                            .update_one(
                                doc! { "adminId": key(card.admin_id), "uid": &card.uid },
                                doc! { "$set": { "userId": key(card.user_id), "boundAt": at(card.bound_at) } },
                            )
                            .upsert(true)
                            .session(&mut *session)
                            .await?;
                    }
                    AuditedWrite::UnbindCard { admin, uid } => {
                        let result = store
                            .collection("cards")
                            .delete_one(doc! { "adminId": key(*admin), "uid": uid })
                            .session(&mut *session)
                            .await?;
                        if result.deleted_count == 0 {
                            return Err(Failure::Store(StoreError::NotFound));
                        }
                    }
                    AuditedWrite::SetAlertProfile { profile, read } => {
                        alerts::set_profile_read(&store.db, session, profile, read.as_ref()).await?
                    }
                }
                store.collection("audit_logs").insert_one(codec::audit_doc(&entry)).session(&mut *session).await?;
                Ok(())
            })
        })
        .await?;
        Ok(())
    }

    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        self.collection("audit_logs").insert_one(codec::audit_doc(entry)).await.map_err(Failure::from)?;
        Ok(())
    }

    async fn receipt(&self, admin: AdminId, id: ReceiptId) -> StoreResult<Option<Receipt>> {
        let doc = self.find_one("receipts", doc! { "_id": key(id), "adminId": key(admin) }).await?;
        Ok(doc.as_ref().map(codec::receipt).transpose()?)
    }

    async fn receipts(&self, query: &ReceiptQuery) -> StoreResult<Vec<Receipt>> {
        let filter = of_tenant_between(query.admin, query.user, "at", query.from, query.to);
        let docs = self.find_all("receipts", filter, doc! { "at": -1, "_id": -1 }, limit(query.limit)).await?;
        Ok(docs.iter().map(codec::receipt).collect::<Result<_, _>>()?)
    }

    async fn audit(&self, admin: Option<AdminId>, max: usize) -> StoreResult<Vec<AuditEntry>> {
        let filter = admin.map_or_else(Document::new, |admin| doc! { "adminId": key(admin) });
        let docs = self.find_all("audit_logs", filter, doc! { "at": -1, "_id": -1 }, limit(max)).await?;
        Ok(docs.iter().map(codec::audit_entry).collect::<Result<_, _>>()?)
    }

    async fn audit_lines(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let mut filter = doc! { "adminId": key(query.admin) };
        if let Some(action) = &query.action {
            filter.insert("action", action);
        }
        if let Some(about) = &query.about {
            filter.insert("$or", vec![doc! { "actorId": about }, doc! { "targetId": about }]);
        }
        let mut at_filter = Document::new();
        if let Some(from) = query.from {
            at_filter.insert("$gte", at(from));
        }
        if let Some(to) = query.to {
            at_filter.insert("$lt", at(to));
        }
        if !at_filter.is_empty() {
            filter.insert("at", at_filter);
        }
        let mut cursor = self
            .collection("audit_logs")
            .find(filter)
            .sort(doc! { "at": -1, "_id": -1 })
            .skip(u64::try_from(query.offset).unwrap_or(u64::MAX))
            .limit(i64::try_from(query.limit).unwrap_or(i64::MAX))
            .await
            .map_err(Failure::from)?;
        let mut docs = Vec::new();
        while cursor.advance().await.map_err(Failure::from)? {
            docs.push(cursor.deserialize_current().map_err(Failure::from)?);
        }
        Ok(docs.iter().map(codec::audit_entry).collect::<Result<_, _>>()?)
    }

    async fn create_minute_request(&self, request: &MinuteRequest, notices: &[Notice]) -> StoreResult<()> {
        let store = self.clone();
        let (request, notices) = (request.clone(), notices.to_vec());
        self.transaction(move |session| {
            let (store, request, notices) = (store.clone(), request.clone(), notices.clone());
            Box::pin(async move {
                // Counting the user's requests writes their document: two requests of one user at
                // once conflict, and the one retried sees the other's.
                store
                    .collection("users")
                    .update_one(doc! { "_id": key(request.user_id) }, doc! { "$inc": { "requestsAsked": 1_i64 } })
                    .session(&mut *session)
                    .await?;
                let pending = store
                    .collection("minute_requests")
                    .find_one(doc! { "userId": key(request.user_id), "status": "PENDING" })
                    .session(&mut *session)
                    .await?;
                if pending.is_some() && request.status == RequestStatus::Pending {
                    return Err(Failure::Store(StoreError::RequestPending));
                }
                store
                    .collection("minute_requests")
                    .insert_one(codec::request_doc(&request))
                    .session(&mut *session)
                    .await?;
                for notice in &notices {
                    alerts::insert_notice(&store.db, session, notice).await?;
                }
                Ok(())
            })
        })
        .await?;
        Ok(())
    }

    async fn minute_request(&self, id: RequestId) -> StoreResult<Option<MinuteRequest>> {
        let doc = self.find_one("minute_requests", doc! { "_id": key(id) }).await?;
        Ok(doc.as_ref().map(codec::minute_request).transpose()?)
    }

    async fn minute_requests(&self, query: &RequestQuery) -> StoreResult<Vec<MinuteRequest>> {
        let mut filter = doc! { "adminId": key(query.admin) };
        if let Some(user) = query.user {
            filter.insert("userId", key(user));
        }
        if let Some(status) = query.status {
            filter.insert("status", status.as_str());
        }
        let docs = self.find_all("minute_requests", filter, doc! { "createdAt": -1, "_id": -1 }, None).await?;
        Ok(docs.iter().map(codec::minute_request).collect::<Result<_, _>>()?)
    }

    async fn decide_minute_request(&self, decision: &Decision) -> StoreResult<()> {
        // The decision and the owner's notice it settles: both or neither.
        let store = self.clone();
        let decision = decision.clone();
        Ok(self
            .transaction(move |session| {
                let (store, decision) = (store.clone(), decision.clone());
                Box::pin(async move { store.decide_in(session, &decision).await })
            })
            .await?)
    }

    async fn add_notices(&self, notices: &[Notice]) -> StoreResult<Vec<Notification>> {
        let store = self.clone();
        let notices = notices.to_vec();
        Ok(self
            .transaction(move |session| {
                let (store, notices) = (store.clone(), notices.clone());
                Box::pin(async move {
                    let mut written = Vec::new();
                    for notice in &notices {
                        written.extend(alerts::insert_notice(&store.db, session, notice).await?);
                    }
                    Ok(written)
                })
            })
            .await?)
    }

    async fn notifications(&self, user: UserId, max: usize) -> StoreResult<Vec<Notification>> {
        let docs =
            self.find_all("notifications", alerts::of_user(user), doc! { "at": -1, "_id": -1 }, limit(max)).await?;
        Ok(docs.iter().map(alerts::notification).collect::<Result<_, _>>()?)
    }

    async fn unread_notifications(&self, user: UserId) -> StoreResult<u64> {
        let mut filter = alerts::of_user(user);
        filter.insert("read", false);
        Ok(self.collection("notifications").count_documents(filter).await.map_err(Failure::from)?)
    }

    async fn mark_notifications_read(&self, user: UserId, ids: Option<&[NotificationId]>) -> StoreResult<u64> {
        let mut filter = alerts::of_user(user);
        filter.insert("read", false);
        if let Some(ids) = ids {
            filter.insert("_id", doc! { "$in": ids.iter().map(key).collect::<Vec<_>>() });
        }
        let result = self
            .collection("notifications")
            .update_many(filter, doc! { "$set": { "read": true } })
            .await
            .map_err(Failure::from)?;
        Ok(result.modified_count)
    }

    async fn alert_profile(&self, user: UserId) -> StoreResult<Option<AlertProfile>> {
        let doc = self.find_one("alert_profiles", doc! { "_id": key(user) }).await?;
        Ok(doc.as_ref().map(alerts::profile).transpose()?)
    }

    async fn alert_profile_by_phone(&self, phone: &str) -> StoreResult<Option<AlertProfile>> {
        let doc = self.find_one("alert_profiles", doc! { "phone": phone }).await?;
        Ok(doc.as_ref().map(alerts::profile).transpose()?)
    }

    async fn alert_profiles_pending_phone(&self, phone: &str) -> StoreResult<Vec<AlertProfile>> {
        let docs = self.find_all("alert_profiles", doc! { "pending.phone": phone }, doc! { "_id": 1 }, None).await?;
        Ok(docs.iter().map(alerts::profile).collect::<Result<_, _>>()?)
    }

    async fn confirm_phone(&self, user: UserId, pending: &PendingPhone) -> StoreResult<()> {
        let store = self.clone();
        let pending = pending.clone();
        self.transaction(move |session| {
            let (store, pending) = (store.clone(), pending.clone());
            Box::pin(async move { alerts::confirm_phone(&store.db, session, user, &pending).await })
        })
        .await?;
        Ok(())
    }

    async fn set_alert_profile(&self, profile: &AlertProfile, read: Option<&AlertProfile>) -> StoreResult<()> {
        let store = self.clone();
        let (profile, read) = (profile.clone(), read.cloned());
        self.transaction(move |session| {
            let (store, profile, read) = (store.clone(), profile.clone(), read.clone());
            Box::pin(async move { alerts::set_profile_read(&store.db, session, &profile, read.as_ref()).await })
        })
        .await?;
        Ok(())
    }

    async fn register_push_token(
        &self,
        user: UserId,
        token: &str,
        session: SessionId,
        keep: usize,
        now: Timestamp,
    ) -> StoreResult<()> {
        let store = self.clone();
        let token = token.to_owned();
        self.transaction(move |client| {
            let (store, token) = (store.clone(), token.clone());
            Box::pin(
                async move { alerts::register_push_token(&store.db, client, user, &token, session, keep, now).await },
            )
        })
        .await?;
        Ok(())
    }

    /// One atomic `$inc` on the profile whose pending number is still the one read.
    async fn count_wrong_code(&self, user: UserId, pending: &PendingPhone) -> StoreResult<u32> {
        let filter = doc! {
            "_id": key(user),
            "pending.phone": &pending.phone,
            "pending.code": &pending.code,
            "pending.since": at(pending.since),
        };
        let counted = self
            .collection("alert_profiles")
            .find_one_and_update(filter, doc! { "$inc": { "pending.wrongCodes": 1_i64 } })
            .return_document(mongodb::options::ReturnDocument::After)
            .await
            .map_err(Failure::from)?;
        let Some(counted) = counted else { return Err(StoreError::VersionConflict) };
        let profile = alerts::profile(&counted)?;
        Ok(profile.pending_phone.map_or(0, |p| p.wrong_codes))
    }

    async fn remove_push_token(&self, user: UserId, token: &str) -> StoreResult<bool> {
        let store = self.clone();
        let token = token.to_owned();
        Ok(self
            .transaction(move |session| {
                let (store, token) = (store.clone(), token.clone());
                Box::pin(async move { alerts::remove_push_token(&store.db, session, user, &token).await })
            })
            .await?)
    }

    /// One document per text in `taken_texts`, until its claim is over (MongoDB deletes it then,
    /// by a TTL index). A claim over is taken over; two servers claiming at once meet the `_id`
    /// and one of them is refused.
    async fn claim_text(&self, text: &str, now: Timestamp, keep_ms: i64) -> StoreResult<bool> {
        let collection = self.collection("taken_texts");
        let fresh = doc! { "_id": text, "expiresAt": at(now + keep_ms) };
        let taken_over = collection
            .replace_one(doc! { "_id": text, "expiresAt": { "$lte": at(now) } }, fresh.clone())
            .await
            .map_err(Failure::from)?;
        if taken_over.matched_count > 0 {
            return Ok(true);
        }
        match collection.insert_one(fresh).await {
            Ok(_) => Ok(true),
            Err(e) if duplicate_key(&e).is_some() => Ok(false),
            Err(e) => Err(Failure::from(e).into()),
        }
    }

    async fn release_text(&self, text: &str) -> StoreResult<()> {
        self.collection("taken_texts").delete_one(doc! { "_id": text }).await.map_err(Failure::from)?;
        Ok(())
    }

    async fn claim_outbox(
        &self,
        sender: &str,
        now: Timestamp,
        until: Timestamp,
        max: usize,
    ) -> StoreResult<Vec<OutboxItem>> {
        let store = self.clone();
        let sender = sender.to_owned();
        Ok(self
            .transaction(move |session| {
                let (store, sender) = (store.clone(), sender.clone());
                Box::pin(async move { alerts::claim(&store.db, session, &sender, now, until, max).await })
            })
            .await?)
    }

    async fn finish_outbox(&self, id: NotificationId, sender: &str, delivery: &Delivery) -> StoreResult<()> {
        Ok(alerts::finish(&self.db, id, sender, delivery).await?)
    }

    async fn outbox_of(&self, user: UserId, since: Timestamp) -> StoreResult<Vec<OutboxItem>> {
        let mut filter = alerts::of_user(user);
        // At or after `since`, said as after the millisecond before (the same, on whole
        // milliseconds): SecantusDB, which the tests run on, leaves out a notification at exactly
        // the bound of a `$gte` here.
        filter.insert("at", doc! { "$gt": at(since - 1) });
        let notifications = self.find_all("notifications", filter, doc! { "at": 1, "_id": 1 }, None).await?;
        let ids: Vec<Bson> = notifications.iter().filter_map(|n| n.get("_id").cloned()).collect();
        let mut waiting = std::collections::HashMap::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let mut filter = alerts::still_due();
            filter.insert("_id", doc! { "$in": chunk.to_vec() });
            for outbox in self.find_all("outbox", filter, doc! { "_id": 1 }, None).await? {
                waiting.insert(outbox.get("_id").map(Bson::to_string), outbox);
            }
        }
        let mut items = Vec::new();
        for notification in &notifications {
            if let Some(outbox) = waiting.get(&notification.get("_id").map(Bson::to_string)) {
                items.push(alerts::outbox_item(outbox, notification)?);
            }
        }
        Ok(items)
    }

    async fn claim_outbox_item(
        &self,
        id: NotificationId,
        sender: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<Option<OutboxItem>> {
        Ok(alerts::claim_one(&self.db, id, sender, now, until).await?)
    }

    async fn admit_send(&self, windows: &[SendWindow], now: Timestamp) -> StoreResult<Admission> {
        let store = self.clone();
        let windows = windows.to_vec();
        Ok(self
            .transaction(move |session| {
                let (store, windows) = (store.clone(), windows.clone());
                Box::pin(async move { alerts::admit(&store.db, session, &windows, now).await })
            })
            .await?)
    }

    async fn purge_notifications(&self, read_before: Timestamp, all_before: Timestamp) -> StoreResult<u64> {
        let store = self.clone();
        Ok(self
            .transaction(move |session| {
                let store = store.clone();
                Box::pin(async move { alerts::purge(&store.db, session, read_before, all_before).await })
            })
            .await?)
    }

    async fn add_push_tickets(&self, tickets: &[PushTicket]) -> StoreResult<()> {
        Ok(alerts::add_tickets(&self.db, tickets).await?)
    }

    /// Every server looks every few seconds, and mostly nothing is due: one plain read says so,
    /// and only tickets that are due are claimed in a transaction.
    async fn claim_push_tickets(&self, now: Timestamp, until: Timestamp, limit: usize) -> StoreResult<Vec<PushTicket>> {
        if self.find_one("push_tickets", alerts::tickets_due(now)).await?.is_none() {
            return Ok(Vec::new());
        }
        let store = self.clone();
        Ok(self
            .transaction(move |session| {
                let store = store.clone();
                Box::pin(async move { alerts::claim_tickets(&store.db, session, now, until, limit).await })
            })
            .await?)
    }

    async fn settle_push_tickets(&self, read: &[String], again: &[String], ask_at: Timestamp) -> StoreResult<()> {
        Ok(alerts::settle_tickets(&self.db, read, again, ask_at).await?)
    }

    async fn purge_push_tickets(&self, now: Timestamp) -> StoreResult<u64> {
        self.delete_where("push_tickets", doc! { "expiresAt": { "$lte": at(now) } }).await
    }

    async fn create_session(&self, session: &Session) -> StoreResult<()> {
        self.collection(sessions_collection(session.kind))
            .insert_one(codec::session_doc(session))
            .await
            .map_err(Failure::from)?;
        Ok(())
    }

    async fn session_by_access_hash(&self, kind: SessionKind, hash: &[u8]) -> StoreResult<Option<Session>> {
        let doc = self.find_one(sessions_collection(kind), doc! { "accessHash": codec::bytes(hash) }).await?;
        Ok(doc.map(|doc| codec::session(&doc, kind)).transpose()?)
    }

    /// One aggregation, one round trip: the session, joined to its account (in `admins` or
    /// `users`, both by `_id`) and to a farmer's pump owner (in `admins`), each by its index.
    async fn signed_in(&self, kind: SessionKind, hash: &[u8]) -> StoreResult<Option<SignedIn>> {
        let join = |from: &str, local: &str, output: &str| {
            doc! { "$lookup": { "from": from, "localField": local, "foreignField": "_id", "as": output } }
        };
        let pipeline = [
            doc! { "$match": { "accessHash": codec::bytes(hash) } },
            doc! { "$limit": 1 },
            join("admins", "userId", "pp_admin"),
            join("users", "userId", "pp_user"),
            // The farmer's account, as a document (a path through a list is read differently
            // by different servers).
            doc! { "$set": { "pp_farmer": { "$arrayElemAt": ["$pp_user", 0] } } },
            join("admins", "pp_farmer.adminId", "pp_owner"),
        ];
        let mut cursor = self.collection(sessions_collection(kind)).aggregate(pipeline).await.map_err(Failure::from)?;
        if !cursor.advance().await.map_err(Failure::from)? {
            return Ok(None);
        }
        let mut doc: Document = cursor.deserialize_current().map_err(Failure::from)?;
        // The first document of a join (each is by `_id`: at most one).
        let mut first = |field: &str| match doc.remove(field) {
            Some(Bson::Array(docs)) => docs.into_iter().find_map(|d| match d {
                Bson::Document(d) => Some(d),
                _ => None,
            }),
            _ => None,
        };
        let (admin, user, owner) = (first("pp_admin"), first("pp_user"), first("pp_owner"));
        let account = match (admin, user) {
            (Some(admin), _) => Some(codec::account(&admin, "admins")?),
            (None, Some(user)) => Some(codec::account(&user, "users")?),
            (None, None) => None,
        };
        let owner = match &account {
            Some(account) if account.role == Role::User => owner.map(|o| codec::account(&o, "admins")).transpose()?,
            _ => None,
        };
        Ok(Some(SignedIn { session: codec::session(&doc, kind)?, account, owner }))
    }

    async fn session_by_refresh_hash(&self, hash: &[u8]) -> StoreResult<Option<(Session, RefreshMatch)>> {
        let mobile = sessions_collection(SessionKind::Mobile);
        if let Some(doc) = self.find_one(mobile, doc! { "refreshHash": codec::bytes(hash) }).await? {
            return Ok(Some((codec::session(&doc, SessionKind::Mobile)?, RefreshMatch::Current)));
        }
        let doc = self.find_one(mobile, doc! { "previousRefreshHash": codec::bytes(hash) }).await?;
        Ok(doc.map(|doc| codec::session(&doc, SessionKind::Mobile).map(|s| (s, RefreshMatch::Previous))).transpose()?)
    }

    async fn rotate_session(&self, rotation: &Rotation) -> StoreResult<()> {
        let mobile = sessions_collection(SessionKind::Mobile);
        // One atomic document update: the stored refresh hash moves to `previousRefreshHash`.
        let update = vec![doc! { "$set": {
            "previousRefreshHash": "$refreshHash",
            "refreshHash": codec::bytes(&rotation.refresh_hash),
            "refreshExpiresAt": at(rotation.refresh_expires_at),
            "accessHash": codec::bytes(&rotation.access_hash),
            "accessExpiresAt": at(rotation.access_expires_at),
        } }];
        let filter = doc! {
            "_id": session_key(rotation.id),
            "refreshHash": codec::bytes(&rotation.expected_refresh_hash),
            "revokedAt": Bson::Null,
        };
        let result = self.collection(mobile).update_one(filter, update).await.map_err(Failure::from)?;
        if result.matched_count == 0 {
            let exists = self.find_one(mobile, doc! { "_id": session_key(rotation.id) }).await?.is_some();
            return Err(if exists { StoreError::VersionConflict } else { StoreError::NotFound });
        }
        Ok(())
    }

    /// The session and its phone's push tokens in one transaction, so that no token outlives
    /// its session once this returns (a profile write giving it a token at the same time
    /// conflicts with this one on the session's document: see `alerts::set_profile`).
    async fn revoke_session(&self, kind: SessionKind, id: SessionId, when: Timestamp) -> StoreResult<()> {
        let store = self.clone();
        self.transaction(move |session| {
            let store = store.clone();
            Box::pin(async move {
                let sessions = store.collection(sessions_collection(kind));
                let result = sessions
                    .update_one(
                        doc! { "_id": session_key(id), "revokedAt": Bson::Null },
                        doc! { "$set": { "revokedAt": at(when) } },
                    )
                    .session(&mut *session)
                    .await
                    .map_err(error::conflict_if_duplicate)?;
                if result.matched_count == 0
                    && sessions.find_one(doc! { "_id": session_key(id) }).session(&mut *session).await?.is_none()
                {
                    return Err(Failure::Store(StoreError::NotFound));
                }
                if kind == SessionKind::Mobile {
                    alerts::forget_tokens_of(&store.db, session, &[id]).await?;
                }
                Ok(())
            })
        })
        .await?;
        Ok(())
    }

    async fn revoke_sessions(&self, scope: SessionScope, when: Timestamp) -> StoreResult<Vec<SessionId>> {
        let store = self.clone();
        Ok(self
            .transaction(move |session| {
                let store = store.clone();
                Box::pin(async move { tenants::revoke_sessions(&store.db, session, scope, None, when).await })
            })
            .await?)
    }

    async fn purge_sessions(&self, before: Timestamp) -> StoreResult<usize> {
        let before = at(before);
        let filter = doc! { "$or": [
            { "revokedAt": { "$lt": before.clone() } },
            { "$and": [
                { "accessExpiresAt": { "$lt": before.clone() } },
                { "$or": [ { "refreshExpiresAt": Bson::Null }, { "refreshExpiresAt": { "$lt": before } } ] },
            ] },
        ] };
        let mut purged = self.delete_where(sessions_collection(SessionKind::Web), filter.clone()).await?;
        let mobile = sessions_collection(SessionKind::Mobile);
        let mut cursor =
            self.collection(mobile).find(filter.clone()).projection(doc! { "_id": 1 }).await.map_err(Failure::from)?;
        let mut dead = Vec::new();
        while cursor.advance().await.map_err(Failure::from)? {
            let doc = cursor.deserialize_current().map_err(Failure::from)?;
            dead.push(SessionId(codec::Fields::of(&doc, mobile).parsed::<uuid::Uuid>("_id")?));
        }
        // Each batch goes with its phones' push tokens in one transaction, which reads again which
        // of them are still dead (a session renewed since the read above, by a server whose clock
        // is behind, stays, with its tokens); a profile write giving one of them a token at the
        // same time conflicts with it on the session's document (see `alerts::set_profile`).
        for batch in dead.chunks(IDS_PER_QUERY) {
            let (store, batch, filter) = (self.clone(), batch.to_vec(), filter.clone());
            purged += self
                .transaction(move |session| {
                    let (store, batch, filter) = (store.clone(), batch.clone(), filter.clone());
                    Box::pin(async move {
                        let keys: Vec<Bson> = batch.iter().map(|id| session_key(*id)).collect();
                        let still_dead = doc! { "$and": [filter, { "_id": { "$in": keys } }] };
                        let sessions = store.collection(sessions_collection(SessionKind::Mobile));
                        let cursor = sessions
                            .find(still_dead.clone())
                            .projection(doc! { "_id": 1 })
                            .session(&mut *session)
                            .await?;
                        let mut dead = Vec::new();
                        for doc in collect(cursor, session).await? {
                            dead.push(SessionId(codec::Fields::of(&doc, mobile).parsed::<uuid::Uuid>("_id")?));
                        }
                        alerts::forget_tokens_of(&store.db, session, &dead).await?;
                        let deleted = sessions.delete_many(still_dead).session(&mut *session).await?;
                        Ok(deleted.deleted_count)
                    })
                })
                .await?;
        }
        Ok(usize::try_from(purged).unwrap_or(usize::MAX))
    }

    /// One document per server in `servers`, moved on at every heartbeat (its replacement is the
    /// feed's [`pumppilot_store::Change::Beat`]).
    async fn heartbeat(
        &self,
        server: &str,
        now: Timestamp,
        ttl_ms: i64,
        polled_since: Timestamp,
    ) -> StoreResult<Vec<String>> {
        let collection = self.collection("servers");
        collection
            .replace_one(
                doc! { "_id": server },
                doc! {
                    "_id": server,
                    "seenAt": at(now),
                    "expiresAt": at(now + ttl_ms),
                    "polledSince": at(polled_since),
                },
            )
            .upsert(true)
            .await
            .map_err(Failure::from)?;
        let docs = self.find_all("servers", doc! { "expiresAt": { "$gt": at(now) } }, doc! { "_id": 1 }, None).await?;
        Ok(docs.iter().filter_map(|d| d.get_str("_id").ok().map(str::to_owned)).collect())
    }

    /// One document per key in `login_failures`: its window's start, its count, and when MongoDB
    /// may delete it (a TTL index). A window that is over starts again (a race between two servers
    /// there loses at most one count).
    async fn add_login_failure(&self, keys: &[String], now: Timestamp, window_ms: i64) -> StoreResult<()> {
        let collection = self.collection("login_failures");
        for key in keys {
            let counted = collection
                .update_one(
                    doc! { "_id": key, "since": { "$gt": at(now - window_ms) } },
                    doc! { "$inc": { "count": 1_i64 } },
                )
                .await
                .map_err(Failure::from)?;
            if counted.matched_count == 0 {
                collection
                    .replace_one(
                        doc! { "_id": key },
                        doc! { "_id": key, "since": at(now), "count": 1_i64, "expiresAt": at(now + window_ms) },
                    )
                    .upsert(true)
                    .await
                    .map_err(Failure::from)?;
            }
        }
        Ok(())
    }

    async fn login_failures(
        &self,
        keys: &[String],
        now: Timestamp,
        window_ms: i64,
    ) -> StoreResult<Vec<(String, Timestamp, u32)>> {
        let filter = doc! { "_id": { "$in": keys }, "since": { "$gt": at(now - window_ms) } };
        let docs = self.find_all("login_failures", filter, doc! { "_id": 1 }, None).await?;
        Ok(docs
            .iter()
            .filter_map(|d| {
                let since = Timestamp(d.get_datetime("since").ok()?.timestamp_millis());
                let count = d.get_i64("count").or_else(|_| d.get_i32("count").map(i64::from)).ok()?;
                Some((d.get_str("_id").ok()?.to_owned(), since, u32::try_from(count).unwrap_or(u32::MAX)))
            })
            .collect())
    }

    /// One document per card and pump in `card_taps`: the claim's time and, once recorded, its
    /// answer. A claim older than the window is taken over; two servers claiming at once meet the
    /// `_id` and one of them repeats.
    async fn claim_tap(
        &self,
        admin: AdminId,
        uid: &str,
        now: Timestamp,
        window_ms: i64,
    ) -> StoreResult<pumppilot_store::TapClaim> {
        use pumppilot_store::TapClaim;
        let collection = self.collection("card_taps");
        let id = format!("{admin}|{uid}");
        let fresh = doc! { "_id": &id, "at": at(now), "answer": Bson::Null, "expiresAt": at(now + window_ms) };
        let taken_over = collection
            .replace_one(doc! { "_id": &id, "at": { "$lte": at(now - window_ms) } }, fresh.clone())
            .await
            .map_err(Failure::from)?;
        if taken_over.matched_count > 0 {
            return Ok(TapClaim::Act);
        }
        match collection.insert_one(fresh).await {
            Ok(_) => Ok(TapClaim::Act),
            Err(e) if duplicate_key(&e).is_some() => {
                let doc = self.find_one("card_taps", doc! { "_id": &id }).await?;
                Ok(TapClaim::Repeat(doc.and_then(|d| d.get_str("answer").ok().map(str::to_owned))))
            }
            Err(e) => Err(Failure::from(e).into()),
        }
    }

    async fn answer_tap(&self, admin: AdminId, uid: &str, answer: &str) -> StoreResult<()> {
        self.collection("card_taps")
            .update_one(doc! { "_id": format!("{admin}|{uid}") }, doc! { "$set": { "answer": answer } })
            .await
            .map_err(Failure::from)?;
        Ok(())
    }

    async fn release_tap(&self, admin: AdminId, uid: &str) -> StoreResult<()> {
        self.collection("card_taps")
            .delete_one(doc! { "_id": format!("{admin}|{uid}") })
            .await
            .map_err(Failure::from)?;
        Ok(())
    }

    /// One change stream on the database (see `feed.rs`): several servers may share MongoDB.
    fn changes(&self) -> Option<tokio::sync::mpsc::Receiver<pumppilot_store::Change>> {
        Some(feed::start(self.db.clone()))
    }

    async fn export(&self) -> StoreResult<Snapshot> {
        Ok(self.export_all().await?)
    }

    async fn import(&self, part: &Snapshot) -> StoreResult<()> {
        Ok(self.import_part(part).await?)
    }

    async fn erase(&self) -> StoreResult<()> {
        Ok(self.erase_all().await?)
    }
}
