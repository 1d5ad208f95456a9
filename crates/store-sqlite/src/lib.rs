//! The embedded SQLite backend of the PumpPilot store: no setup, one file, WAL mode.
//!
//! [`SqliteStore::open`] takes the database URL from the settings, creates the file (and its
//! folder) if needed and brings the schema up to date with the migrations in `migrations/`.
//!
//! Durability and consistency:
//! - WAL mode with `synchronous=FULL`: an acknowledged commit survives a killed process or a power
//!   loss;
//! - one writer connection, behind an async mutex, and a few read-only connections that read
//!   consistent snapshots while the writer works;
//! - a tenant commit is written in a `BEGIN IMMEDIATE` transaction guarded by the tenant's version
//!   (commits made at once share one, each in a savepoint of its own: one sync of the log a batch),
//!   and the schema enforces the interlock itself: a partial unique index allows one RUNNING or
//!   HOLD entry per admin.
//!
//! rusqlite is synchronous, so every operation runs on tokio's blocking thread pool.

mod accounts;
mod alerts;
mod books;
mod cards;
mod devices;
mod error;
mod files;
mod firmware;
mod location;
mod owner;
mod rows;
mod schema;
mod sessions;
mod tenants;
mod transfer;

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use pumppilot_engine::{
    AdminId, DeviceId, LedgerEntry, Notice, ReceiptId, RequestId, Tenant, Timestamp, UsageRow, UserId,
};
use pumppilot_store::{
    Account, AccountChange, Admission, AlertProfile, AuditEntry, AuditQuery, AuditedWrite, Card, Commit, Decision,
    Delivery, Device, FirmwareDownload, FirmwareRelease, FleetTotals, MinuteRequest, Notification, NotificationId,
    OutboxItem, OwnerPage, OwnerQuery, PendingPhone, PushTicket, Receipt, ReceiptQuery, RefreshMatch, RequestQuery,
    Reserved, Role, Rollout, Rotation, SendWindow, Session, SessionId, SessionKind, SessionScope, Snapshot, Store,
    StoreError, StoreResult, Telemetry, Terms, UsageQuery,
};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::{error::Failure, location::Location};

pub use schema::SCHEMA_VERSION;

/// The database file a URL names, or `None` for an in-memory database or a URL that is not
/// SQLite's. Other files that belong with the database (the server's secret) live beside it.
pub fn database_file(url: &str) -> Option<std::path::PathBuf> {
    match Location::parse(url) {
        Ok(Location::File(path)) => Some(path),
        _ => None,
    }
}

/// Copies the live database at `url` into a new SQLite file `image` with SQLite's online backup,
/// while a server may be writing it: the copy is one consistent moment (a write by another
/// process during the copy makes SQLite start it again). `progress(done, total)` counts pages.
/// The image is a single file (rollback journal, not WAL), created 0600.
pub fn backup_to(url: &str, image: &Path, mut progress: impl FnMut(u64, u64)) -> StoreResult<()> {
    let Location::File(path) = Location::parse(url)? else {
        return Err(StoreError::Unavailable("an in-memory database has nothing to back up".into()));
    };
    if !path.exists() {
        return Err(StoreError::Unavailable(format!("there is no database at {}", path.display())));
    }
    let source = open_file(&path, OpenFlags::empty())?;
    files::prepare(image)?;
    let mut target = Connection::open(image).map_err(Failure::from)?;
    {
        let backup = rusqlite::backup::Backup::new(&source, &mut target).map_err(Failure::from)?;
        loop {
            use rusqlite::backup::StepResult;
            let step = backup.step(1024).map_err(Failure::from)?;
            let p = backup.progress();
            let total = u64::try_from(p.pagecount).unwrap_or(0);
            progress(total.saturating_sub(u64::try_from(p.remaining).unwrap_or(0)), total);
            match step {
                StepResult::Done => break,
                StepResult::More => {}
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    let _: String =
        target.pragma_update_and_check(None, "journal_mode", "DELETE", |row| row.get(0)).map_err(Failure::from)?;
    Ok(())
}

/// How long a connection waits for a lock held by another process (a backup, a second server).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The most counter reservations one transaction writes.
const RESERVATIONS_AT_ONCE: usize = 256;
/// The most tenant transitions one transaction writes.
const COMMITS_AT_ONCE: usize = 256;
/// Read connections of a file database.
const READERS: usize = 2;
/// Prepared statements kept per connection (the store uses a few dozen).
const STATEMENT_CACHE: usize = 128;

/// The SQLite store. Cheap to share behind an `Arc`; every method is one atomic operation.
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    /// Read-only connections; for an in-memory database, the writer itself.
    readers: Vec<Arc<Mutex<Connection>>>,
    next_reader: AtomicUsize,
    /// A file database's files as opened, checked before every operation.
    files: Option<Arc<files::Files>>,
    /// Counter reservations made at once, written a batch a transaction.
    reservations: Arc<pumppilot_store::Group<devices::Reservation, StoreResult<Reserved>>>,
    /// Tenant transitions made at once, written a batch a transaction.
    commits: Arc<pumppilot_store::Group<pumppilot_store::OwnedCommit, StoreResult<()>>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("readers", &self.readers.len()).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the database at `url` and applies any pending migrations.
    ///
    /// `url` is `sqlite::memory:` for a database that lives as long as the store, or a file:
    /// `sqlite:///absolute/path.db`, `sqlite://relative/path.db`, `sqlite:path.db` or a bare path.
    /// The file's folder is created if missing. A database written by a newer PumpPilot is
    /// refused with [`StoreError::Unavailable`] saying so.
    pub fn open(url: &str) -> StoreResult<SqliteStore> {
        match Location::parse(url)? {
            Location::Memory => {
                let mut conn = tune(Connection::open_in_memory().map_err(Failure::from)?)?;
                configure_writer(&conn, false)?;
                schema::migrate(&mut conn)?;
                let writer = Arc::new(Mutex::new(conn));
                Ok(SqliteStore::from_connections(writer.clone(), vec![writer], None))
            }
            Location::File(path) => {
                files::prepare(&path)?;
                let mut conn = open_file(&path, OpenFlags::SQLITE_OPEN_CREATE)?;
                configure_writer(&conn, true)?;
                schema::migrate(&mut conn)?;
                let readers = (0..READERS)
                    .map(|_| {
                        let reader = open_file(&path, OpenFlags::empty())?;
                        reader.pragma_update(None, "query_only", true).map_err(Failure::from)?;
                        Ok(Arc::new(Mutex::new(reader)))
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                let files = files::Files::opened(&path)?;
                Ok(SqliteStore::from_connections(Arc::new(Mutex::new(conn)), readers, Some(Arc::new(files))))
            }
        }
    }

    fn from_connections(
        writer: Arc<Mutex<Connection>>,
        readers: Vec<Arc<Mutex<Connection>>>,
        files: Option<Arc<files::Files>>,
    ) -> SqliteStore {
        SqliteStore {
            writer,
            readers,
            next_reader: AtomicUsize::new(0),
            files,
            reservations: Arc::default(),
            commits: Arc::default(),
        }
    }

    /// Writes `item` with the others of `group` made at once, at most `most` a transaction
    /// ([`batch_or_alone`]), and answers it.
    async fn grouped<T, R>(
        &self,
        group: &Arc<pumppilot_store::Group<T, StoreResult<R>>>,
        item: T,
        most: usize,
        write: BatchWrite<T, R>,
    ) -> StoreResult<R>
    where
        T: Send + Sync + 'static,
        R: Send + 'static,
    {
        let (writer, files) = (Arc::clone(&self.writer), self.files.clone());
        let batch = move |items| batch_or_alone(Arc::clone(&writer), files.clone(), items, write);
        group
            .submit(item, most, batch)
            .await
            .unwrap_or_else(|| Err(StoreError::Unavailable("a grouped write ended without an answer".into())))
    }

    /// Runs `op` on the writer connection, on the blocking pool.
    async fn write<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Failure> + Send + 'static,
    {
        let conn = self.writer.clone().lock_owned().await;
        run(conn, self.files.clone(), op).await
    }

    /// Runs `op` on a free read connection (or the next one in turn), on the blocking pool.
    async fn read<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Failure> + Send + 'static,
    {
        let free = self.readers.iter().find_map(|reader| reader.clone().try_lock_owned().ok());
        let conn = match free {
            Some(conn) => conn,
            None => {
                let turn = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
                self.readers[turn].clone().lock_owned().await
            }
        };
        run(conn, self.files.clone(), op).await
    }
}

impl Drop for SqliteStore {
    /// Closing a connection checkpoints and reads the `-shm` mapping: with the files lost under
    /// the server (a truncated `-shm`), that would be SIGBUS. Such connections are left open for
    /// the process's end instead.
    fn drop(&mut self) {
        if self.files.as_ref().is_some_and(|files| files.is_lost() || files.check().is_err()) {
            std::mem::forget(Arc::clone(&self.writer));
            for reader in &self.readers {
                std::mem::forget(Arc::clone(reader));
            }
        }
    }
}

/// Runs `op` with the locked connection on the blocking pool, once `files` are checked to be the
/// ones opened; the lock is released when it ends, even if the caller stopped waiting.
async fn run<T, F>(mut conn: OwnedMutexGuard<Connection>, files: Option<Arc<files::Files>>, op: F) -> StoreResult<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T, Failure> + Send + 'static,
{
    let guarded = move || {
        if let Some(files) = &files {
            files.check()?;
        }
        op(&mut conn)
    };
    match tokio::task::spawn_blocking(guarded).await {
        Ok(result) => result.map_err(StoreError::from),
        Err(join) => Err(StoreError::Unavailable(format!("a store operation failed: {join}"))),
    }
}

/// Writes a batch in one transaction on the writer, answering each of its items.
type BatchWrite<T, R> = fn(&mut Connection, &[T]) -> Result<Vec<StoreResult<R>>, Failure>;

/// Writes a batch made at once in one transaction on the writer (`write`, which answers each
/// item); a batch that fails whole is written one by one, so each gets the answer it would have
/// had alone.
async fn batch_or_alone<T, R>(
    writer: Arc<Mutex<Connection>>,
    files: Option<Arc<files::Files>>,
    batch: Vec<T>,
    write: BatchWrite<T, R>,
) -> Vec<StoreResult<R>>
where
    T: Send + Sync + 'static,
    R: Send + 'static,
{
    let batch = Arc::new(batch);
    let together = Arc::clone(&batch);
    let grouped = run(Arc::clone(&writer).lock_owned().await, files.clone(), move |conn| write(conn, &together));
    match grouped.await {
        Ok(answers) => return answers,
        Err(failure) if batch.len() == 1 => return vec![Err(failure)],
        Err(_) => {}
    }
    let mut answers = Vec::with_capacity(batch.len());
    for i in 0..batch.len() {
        let batch = Arc::clone(&batch);
        let alone = run(Arc::clone(&writer).lock_owned().await, files.clone(), move |conn| {
            write(conn, std::slice::from_ref(&batch[i]))
        });
        answers.push(alone.await.and_then(|mut one| one.pop().expect("one answer an item")));
    }
    answers
}

fn open_file(path: &Path, extra: OpenFlags) -> Result<Connection, Failure> {
    // No SQLITE_OPEN_URI: the path is a path, even if it starts with `file:`.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | extra;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| error::unavailable(format!("cannot open the database {}: {e}", path.display())))?;
    tune(conn)
}

/// Settings of every connection.
fn tune(conn: Connection) -> Result<Connection, Failure> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Settings of the writer connection. `synchronous=FULL`, not `NORMAL`: in WAL mode `NORMAL` may
/// lose the last commits on power loss, and an acknowledged recharge must not vanish.
fn configure_writer(conn: &Connection, file: bool) -> Result<(), Failure> {
    if file {
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(error::unavailable(format!(
                "the database could not switch to WAL mode (it is in {mode} mode); is it on a network drive?"
            )));
        }
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }

    async fn probe_write(&self) -> StoreResult<()> {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute("INSERT INTO write_probe (id, at) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET at = ?1", [at])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        let account = account.clone();
        self.write(move |conn| accounts::create(conn, &account)).await
    }

    async fn account(&self, id: UserId) -> StoreResult<Option<Account>> {
        self.read(move |conn| accounts::by_id(conn, id)).await
    }

    async fn account_by_username(&self, username: &str) -> StoreResult<Option<Account>> {
        let username = username.to_owned();
        self.read(move |conn| accounts::by_username(conn, &username)).await
    }

    async fn accounts(&self, role: Role, admin: Option<AdminId>) -> StoreResult<Vec<Account>> {
        self.read(move |conn| accounts::list(conn, role, admin)).await
    }

    async fn owner_page(&self, query: &OwnerQuery) -> StoreResult<OwnerPage> {
        let query = query.clone();
        self.read(move |conn| accounts::owner_page(conn, &query)).await
    }

    async fn farmer_counts(&self, admins: &[AdminId]) -> StoreResult<Vec<u64>> {
        let admins = admins.to_vec();
        self.read(move |conn| accounts::farmer_counts(conn, &admins)).await
    }

    async fn fleet_totals(&self, since: Timestamp) -> StoreResult<FleetTotals> {
        self.read(move |conn| books::fleet_totals(conn, since)).await
    }

    async fn set_suspended(&self, id: UserId, suspended: bool) -> StoreResult<()> {
        self.write(move |conn| accounts::set_suspended(conn, id, suspended)).await
    }

    async fn change_account(&self, change: &AccountChange, audit: &AuditEntry) -> StoreResult<Vec<SessionId>> {
        let (change, audit) = (change.clone(), audit.clone());
        self.write(move |conn| owner::change_account(conn, &change, &audit)).await
    }

    async fn tenant_ids(&self) -> StoreResult<Vec<AdminId>> {
        self.read(|conn| tenants::ids(conn)).await
    }

    async fn load_tenant(&self, admin: AdminId, lease_ms: i64) -> StoreResult<Option<Tenant>> {
        self.read(move |conn| tenants::load(conn, admin, lease_ms)).await
    }

    async fn tenants_with_runs(&self) -> StoreResult<Vec<AdminId>> {
        self.read(|conn| tenants::with_runs(conn)).await
    }

    async fn pump_links(
        &self,
        wanted: Option<&std::collections::HashSet<AdminId>>,
    ) -> StoreResult<Vec<pumppilot_store::PumpLink>> {
        let wanted = wanted.cloned();
        self.read(move |conn| tenants::links(conn, wanted.as_ref())).await
    }

    async fn load_tenants(
        &self,
        lease_ms: i64,
        wanted: Option<&std::collections::HashSet<AdminId>>,
    ) -> StoreResult<Vec<Tenant>> {
        let wanted = wanted.cloned();
        self.read(move |conn| {
            let mut tenants = Vec::new();
            for admin in tenants::ids(conn)? {
                if wanted.as_ref().is_some_and(|wanted| !wanted.contains(&admin)) {
                    continue;
                }
                tenants.extend(tenants::load(conn, admin, lease_ms)?);
            }
            Ok(tenants)
        })
        .await
    }

    async fn commit(&self, commit: Commit<'_>) -> StoreResult<()> {
        commit.check()?;
        let commit = pumppilot_store::OwnedCommit::from(commit);
        // Transitions made at once (a village's pumps after a power cut, a grid going down under
        // many runs) share one transaction: one sync of the log a batch, not one each.
        self.grouped(&self.commits, commit, COMMITS_AT_ONCE, tenants::commit).await
    }

    async fn terms(&self, admin: AdminId) -> StoreResult<Terms> {
        self.read(move |conn| owner::terms(conn, admin)).await
    }

    async fn set_terms(&self, admin: AdminId, terms: &Terms, audit: &AuditEntry) -> StoreResult<()> {
        let (terms, audit) = (*terms, audit.clone());
        self.write(move |conn| owner::set_terms(conn, admin, &terms, &audit)).await
    }

    async fn create_device(&self, device: &Device) -> StoreResult<()> {
        let device = device.clone();
        self.write(move |conn| devices::create(conn, &device)).await
    }

    async fn devices(&self, admin: AdminId) -> StoreResult<Vec<Device>> {
        self.read(move |conn| devices::list(conn, admin)).await
    }

    async fn device_with_key(&self, admin: AdminId, once_key: &str) -> StoreResult<Option<Device>> {
        let once_key = once_key.to_owned();
        self.read(move |conn| devices::with_key(conn, admin, &once_key)).await
    }

    async fn reported_firmware(&self) -> StoreResult<Vec<pumppilot_store::ReportedFirmware>> {
        self.read(|conn| devices::reported_firmware(conn)).await
    }

    async fn record_last_polls(&self, polls: &[(AdminId, DeviceId, Timestamp)]) -> StoreResult<()> {
        if polls.is_empty() {
            return Ok(());
        }
        let polls = polls.to_vec();
        self.write(move |conn| devices::record_last_polls(conn, &polls)).await
    }

    async fn record_presence(
        &self,
        server: &str,
        joined: &[(AdminId, DeviceId, Timestamp)],
        left: &[(AdminId, DeviceId, Timestamp)],
    ) -> StoreResult<()> {
        if joined.is_empty() && left.is_empty() {
            return Ok(());
        }
        let (server, joined, left) = (server.to_owned(), joined.to_vec(), left.to_vec());
        self.write(move |conn| devices::record_presence(conn, &server, &joined, &left)).await
    }

    async fn presences(&self) -> StoreResult<Vec<pumppilot_store::Presence>> {
        self.read(|conn| devices::presences(conn)).await
    }

    async fn device_keys(&self) -> StoreResult<Vec<pumppilot_store::DeviceKey>> {
        self.read(|conn| devices::keys(conn)).await
    }

    async fn record_telemetry(&self, batch: &[Telemetry]) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let batch = batch.to_vec();
        self.write(move |conn| devices::record_telemetry(conn, &batch)).await
    }

    async fn delete_device(&self, admin: AdminId, device: DeviceId) -> StoreResult<()> {
        self.write(move |conn| devices::delete(conn, admin, device)).await
    }

    async fn set_device_key(&self, admin: AdminId, device: DeviceId, key_hash: &[u8]) -> StoreResult<()> {
        let key_hash = key_hash.to_vec();
        self.write(move |conn| devices::set_key(conn, admin, device, &key_hash)).await
    }

    async fn reserve_device_counters(
        &self,
        admin: AdminId,
        device: DeviceId,
        at_least: u64,
        block: u64,
    ) -> StoreResult<Reserved> {
        // A fleet coming online reserves at once: one transaction (one sync of the log) a batch.
        let reservation = (admin, device, at_least, block);
        self.grouped(&self.reservations, reservation, RESERVATIONS_AT_ONCE, devices::reserve_counters).await
    }

    async fn device_counters(&self, admin: Option<AdminId>) -> StoreResult<Vec<(DeviceId, u64)>> {
        self.read(move |conn| devices::counters(conn, admin)).await
    }

    async fn put_firmware(&self, release: &FirmwareRelease, bytes: &[u8]) -> StoreResult<()> {
        let (release, bytes) = (release.clone(), bytes.to_vec());
        self.write(move |conn| firmware::put(conn, &release, &bytes)).await
    }

    async fn firmware_releases(&self) -> StoreResult<Vec<FirmwareRelease>> {
        self.read(|conn| firmware::releases(conn)).await
    }

    async fn firmware_bytes(&self, version: &str) -> StoreResult<Option<Vec<u8>>> {
        let version = version.to_owned();
        self.read(move |conn| firmware::bytes(conn, &version)).await
    }

    async fn set_firmware_rollout(&self, version: &str, rollout: Rollout) -> StoreResult<()> {
        let version = version.to_owned();
        self.write(move |conn| firmware::set_rollout(conn, &version, rollout)).await
    }

    async fn record_firmware_download(&self, download: &FirmwareDownload) -> StoreResult<()> {
        let download = download.clone();
        self.write(move |conn| firmware::record_download(conn, &download)).await
    }

    async fn firmware_downloads(&self, admin: AdminId) -> StoreResult<Vec<FirmwareDownload>> {
        self.read(move |conn| firmware::downloads(conn, admin)).await
    }

    async fn purge_firmware_downloads(&self, before: Timestamp) -> StoreResult<u64> {
        self.write(move |conn| firmware::purge_downloads(conn, before)).await
    }

    async fn bind_card(&self, card: &Card) -> StoreResult<()> {
        let card = card.clone();
        self.write(move |conn| cards::bind(conn, &card)).await
    }

    async fn unbind_card(&self, admin: AdminId, uid: &str) -> StoreResult<()> {
        let uid = uid.to_owned();
        self.write(move |conn| cards::unbind(conn, admin, &uid)).await
    }

    async fn card(&self, admin: AdminId, uid: &str) -> StoreResult<Option<Card>> {
        let uid = uid.to_owned();
        self.read(move |conn| cards::find(conn, admin, &uid)).await
    }

    async fn cards(&self, admin: AdminId) -> StoreResult<Vec<Card>> {
        self.read(move |conn| cards::list(conn, admin)).await
    }

    async fn ledger(&self, user: UserId, limit: usize) -> StoreResult<Vec<LedgerEntry>> {
        self.read(move |conn| books::ledger(conn, user, limit)).await
    }

    async fn ledger_entry_with_key(&self, admin: AdminId, once_key: &str) -> StoreResult<Option<LedgerEntry>> {
        let once_key = once_key.to_owned();
        self.read(move |conn| books::entry_with_key(conn, admin, &once_key)).await
    }

    async fn usage(&self, query: &UsageQuery) -> StoreResult<Vec<UsageRow>> {
        let query = query.clone();
        self.read(move |conn| books::usage(conn, &query)).await
    }

    async fn write_audited(&self, write: &AuditedWrite, entry: &AuditEntry) -> StoreResult<()> {
        let (write, entry) = (write.clone(), entry.clone());
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            match &write {
                AuditedWrite::CreateAccount(account) => accounts::create_in(&tx, account)?,
                AuditedWrite::CreateDevice { device, once_key } => {
                    devices::create_in(&tx, device, once_key.as_deref())?
                }
                AuditedWrite::Decide { decision, notices } => {
                    books::decide(&tx, decision)?;
                    for notice in notices {
                        alerts::insert_notice(&tx, notice)?;
                    }
                }
                AuditedWrite::SetDeviceKey { admin, device, key_hash } => {
                    devices::set_key(&tx, *admin, *device, key_hash)?
                }
                AuditedWrite::BindCard(card) => cards::bind_in(&tx, card)?,
                AuditedWrite::UnbindCard { admin, uid } => cards::unbind(&tx, *admin, uid)?,
                AuditedWrite::SetAlertProfile { profile, read } => {
                    alerts::set_profile_read(&tx, profile, read.as_ref())?
                }
            }
            books::insert_audit(&tx, &entry)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let entry = entry.clone();
        self.write(move |conn| books::insert_audit(conn, &entry)).await
    }

    async fn receipt(&self, admin: AdminId, id: ReceiptId) -> StoreResult<Option<Receipt>> {
        self.read(move |conn| owner::receipt(conn, admin, id)).await
    }

    async fn receipts(&self, query: &ReceiptQuery) -> StoreResult<Vec<Receipt>> {
        let query = query.clone();
        self.read(move |conn| owner::receipts(conn, &query)).await
    }

    async fn audit(&self, admin: Option<AdminId>, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        self.read(move |conn| books::audit(conn, admin, limit)).await
    }

    async fn audit_lines(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let query = query.clone();
        self.read(move |conn| books::audit_lines(conn, &query)).await
    }

    async fn create_minute_request(&self, request: &MinuteRequest, notices: &[Notice]) -> StoreResult<()> {
        let (request, notices) = (request.clone(), notices.to_vec());
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            books::ask(&tx, &request)?;
            for notice in &notices {
                alerts::insert_notice(&tx, notice)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn minute_request(&self, id: RequestId) -> StoreResult<Option<MinuteRequest>> {
        self.read(move |conn| books::request(conn, id)).await
    }

    async fn minute_requests(&self, query: &RequestQuery) -> StoreResult<Vec<MinuteRequest>> {
        let query = query.clone();
        self.read(move |conn| books::requests(conn, &query)).await
    }

    async fn decide_minute_request(&self, decision: &Decision) -> StoreResult<()> {
        let decision = decision.clone();
        self.write(move |conn| {
            // The decision and the owner's notice it settles: both or neither.
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            books::decide(&tx, &decision)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn add_notices(&self, notices: &[Notice]) -> StoreResult<Vec<Notification>> {
        let notices = notices.to_vec();
        self.write(move |conn| alerts::add(conn, &notices)).await
    }

    async fn notifications(&self, user: UserId, limit: usize) -> StoreResult<Vec<Notification>> {
        self.read(move |conn| alerts::list(conn, user, limit)).await
    }

    async fn unread_notifications(&self, user: UserId) -> StoreResult<u64> {
        self.read(move |conn| alerts::unread(conn, user)).await
    }

    async fn mark_notifications_read(&self, user: UserId, ids: Option<&[NotificationId]>) -> StoreResult<u64> {
        let ids = ids.map(<[NotificationId]>::to_vec);
        self.write(move |conn| alerts::mark_read(conn, user, ids.as_deref())).await
    }

    async fn alert_profile(&self, user: UserId) -> StoreResult<Option<AlertProfile>> {
        self.read(move |conn| alerts::profile_of(conn, user)).await
    }

    async fn alert_profile_by_phone(&self, phone: &str) -> StoreResult<Option<AlertProfile>> {
        let phone = phone.to_owned();
        self.read(move |conn| alerts::profile_by_phone(conn, &phone)).await
    }

    async fn alert_profiles_pending_phone(&self, phone: &str) -> StoreResult<Vec<AlertProfile>> {
        let phone = phone.to_owned();
        self.read(move |conn| alerts::profiles_pending(conn, &phone)).await
    }

    async fn set_alert_profile(&self, profile: &AlertProfile, read: Option<&AlertProfile>) -> StoreResult<()> {
        let (profile, read) = (profile.clone(), read.cloned());
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            alerts::set_profile_read(&tx, &profile, read.as_ref())?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn register_push_token(
        &self,
        user: UserId,
        token: &str,
        session: SessionId,
        keep: usize,
        now: Timestamp,
    ) -> StoreResult<()> {
        let token = token.to_owned();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            alerts::register_push_token(&tx, user, &token, session, keep, now)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn confirm_phone(&self, user: UserId, pending: &PendingPhone) -> StoreResult<()> {
        let pending = pending.clone();
        self.write(move |conn| alerts::confirm_phone(conn, user, &pending)).await
    }

    async fn count_wrong_code(&self, user: UserId, pending: &PendingPhone) -> StoreResult<u32> {
        let pending = pending.clone();
        self.write(move |conn| alerts::count_wrong_code(conn, user, &pending)).await
    }

    async fn remove_push_token(&self, user: UserId, token: &str) -> StoreResult<bool> {
        let token = token.to_owned();
        self.write(move |conn| alerts::remove_push_token(conn, user, &token)).await
    }

    async fn claim_text(&self, key: &str, now: Timestamp, keep_ms: i64) -> StoreResult<bool> {
        let key = key.to_owned();
        self.write(move |conn| alerts::claim_text(conn, &key, now, keep_ms)).await
    }

    async fn release_text(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |conn| alerts::release_text(conn, &key)).await
    }

    async fn claim_outbox(
        &self,
        sender: &str,
        now: Timestamp,
        until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<OutboxItem>> {
        let sender = sender.to_owned();
        self.write(move |conn| alerts::claim(conn, &sender, now, until, limit)).await
    }

    async fn finish_outbox(&self, id: NotificationId, sender: &str, delivery: &Delivery) -> StoreResult<()> {
        let (sender, delivery) = (sender.to_owned(), delivery.clone());
        self.write(move |conn| alerts::finish(conn, id, &sender, &delivery)).await
    }

    async fn outbox_of(&self, user: UserId, since: Timestamp) -> StoreResult<Vec<OutboxItem>> {
        self.read(move |conn| alerts::outbox_of(conn, user, since)).await
    }

    async fn claim_outbox_item(
        &self,
        id: NotificationId,
        sender: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<Option<OutboxItem>> {
        let sender = sender.to_owned();
        self.write(move |conn| alerts::claim_one(conn, id, &sender, now, until)).await
    }

    async fn admit_send(&self, windows: &[SendWindow], now: Timestamp) -> StoreResult<Admission> {
        let windows = windows.to_vec();
        self.write(move |conn| alerts::admit(conn, &windows, now)).await
    }

    async fn purge_notifications(&self, read_before: Timestamp, all_before: Timestamp) -> StoreResult<u64> {
        self.write(move |conn| alerts::purge(conn, read_before, all_before)).await
    }

    async fn add_push_tickets(&self, tickets: &[PushTicket]) -> StoreResult<()> {
        let tickets = tickets.to_vec();
        self.write(move |conn| alerts::add_tickets(conn, &tickets)).await
    }

    async fn claim_push_tickets(&self, now: Timestamp, until: Timestamp, limit: usize) -> StoreResult<Vec<PushTicket>> {
        self.write(move |conn| alerts::claim_tickets(conn, now, until, limit)).await
    }

    async fn settle_push_tickets(&self, read: &[String], again: &[String], ask_at: Timestamp) -> StoreResult<()> {
        let (read, again) = (read.to_vec(), again.to_vec());
        self.write(move |conn| alerts::settle_tickets(conn, &read, &again, ask_at)).await
    }

    async fn purge_push_tickets(&self, now: Timestamp) -> StoreResult<u64> {
        self.write(move |conn| alerts::purge_tickets(conn, now)).await
    }

    async fn create_session(&self, session: &Session) -> StoreResult<()> {
        let session = session.clone();
        self.write(move |conn| sessions::create(conn, &session)).await
    }

    async fn session_by_access_hash(&self, kind: SessionKind, hash: &[u8]) -> StoreResult<Option<Session>> {
        let hash = hash.to_vec();
        self.read(move |conn| sessions::by_access_hash(conn, kind, &hash)).await
    }

    async fn session_by_refresh_hash(&self, hash: &[u8]) -> StoreResult<Option<(Session, RefreshMatch)>> {
        let hash = hash.to_vec();
        self.read(move |conn| sessions::by_refresh_hash(conn, &hash)).await
    }

    async fn rotate_session(&self, rotation: &Rotation) -> StoreResult<()> {
        let rotation = rotation.clone();
        self.write(move |conn| sessions::rotate(conn, &rotation)).await
    }

    async fn revoke_session(&self, kind: SessionKind, id: SessionId, at: Timestamp) -> StoreResult<()> {
        self.write(move |conn| sessions::revoke(conn, kind, id, at)).await
    }

    async fn revoke_sessions(&self, scope: SessionScope, at: Timestamp) -> StoreResult<Vec<SessionId>> {
        self.write(move |conn| sessions::revoke_scope(conn, scope, at)).await
    }

    async fn purge_sessions(&self, before: Timestamp) -> StoreResult<usize> {
        self.write(move |conn| sessions::purge(conn, before)).await
    }

    async fn export(&self) -> StoreResult<Snapshot> {
        // The writer: one connection sees its own snapshot for the whole export.
        self.write(transfer::export).await
    }

    async fn import(&self, part: &Snapshot) -> StoreResult<()> {
        let part = part.clone();
        self.write(move |conn| transfer::import(conn, &part)).await
    }

    async fn erase(&self) -> StoreResult<()> {
        self.write(transfer::erase).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_connections_are_durable_wal_with_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("nested/pp.db").to_str().unwrap()).unwrap();
        let (mode, synchronous, foreign_keys) = store
            .write(|conn| {
                let mode: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
                let synchronous: i64 = conn.pragma_query_value(None, "synchronous", |row| row.get(0))?;
                let foreign_keys: bool = conn.pragma_query_value(None, "foreign_keys", |row| row.get(0))?;
                Ok((mode, synchronous, foreign_keys))
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(synchronous, 2, "synchronous=FULL");
        assert!(foreign_keys);
        let reader_refuses_writes = store.read(|conn| Ok(conn.execute("DELETE FROM accounts", [])?)).await;
        assert!(reader_refuses_writes.is_err(), "read connections are query-only");
    }

    /// The master's totals read indexes alone: no row of a table, and no index of one tenant's.
    #[tokio::test]
    async fn the_fleet_totals_are_counted_and_summed_from_indexes() {
        let store = SqliteStore::open("sqlite::memory:").unwrap();
        let plan = store
            .read(|conn| {
                let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", books::FLEET_TOTALS))?;
                let steps = statement.query_map([0_i64], |row| row.get::<_, String>("detail"))?;
                Ok(steps.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap();
        // Each read of a table (the outer query's constant row is none).
        let reads: Vec<&String> = plan
            .iter()
            .filter(|step| (step.starts_with("SEARCH") || step.starts_with("SCAN")) && !step.contains("CONSTANT ROW"))
            .collect();
        assert_eq!(reads.len(), 4, "{plan:?}");
        for (read, index) in reads.iter().zip(["accounts_role", "accounts_role", "usage_history_ended", "receipts_at"])
        {
            assert!(read.starts_with("SEARCH") && read.contains("USING COVERING INDEX"), "{plan:?}");
            assert!(read.contains(index), "{read} in {plan:?}");
        }
    }
}
