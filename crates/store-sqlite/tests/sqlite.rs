//! What only the SQLite backend has: files, migrations, the schema's own rules, unreadable rows.

use std::path::{Path, PathBuf};

use pumppilot_engine::{AdminId, Credit, EntryId, Event, LedgerKind, Records, Tenant, Timestamp, UserId};
use pumppilot_store::{Account, Card, Commit, Role, Store, StoreError};
use pumppilot_store_sqlite::{SCHEMA_VERSION, SqliteStore};
use rusqlite::Connection;

const LEASE_MS: i64 = 60_000;
const T0: Timestamp = Timestamp(1_767_225_600_000);

fn at(seconds: i64) -> Timestamp {
    T0 + seconds * 1_000
}

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn database() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("pumppilot.db");
    (dir, path)
}

fn account(username: &str, role: Role, admin: Option<AdminId>) -> Account {
    let id = UserId::new();
    Account {
        id,
        username: username.to_owned(),
        name: username.to_owned(),
        role,
        admin_id: if role == Role::Admin { Some(AdminId(id)) } else { admin },
        password_hash: "$argon2id$test".to_owned(),
        suspended: false,
        created_at: T0,
    }
}

/// An admin with two users who hold 600 s each.
async fn tenant_with_users(store: &SqliteStore) -> (Tenant, UserId, UserId) {
    let admin = account("rahim", Role::Admin, None);
    store.create_account(&admin).await.unwrap();
    let admin = AdminId(admin.id);
    let mut users = Vec::new();
    for name in ["karim", "salma"] {
        let user = account(name, Role::User, Some(admin));
        store.create_account(&user).await.unwrap();
        users.push(user.id);
    }
    let mut tenant = store.load_tenant(admin, LEASE_MS).await.unwrap().unwrap();
    for user in &users {
        let credit = Credit::new(*user, 600, LedgerKind::Recharge, admin.0);
        commit(store, &mut tenant, Event::Credit(credit), at(0)).await.unwrap();
    }
    (tenant, users[0], users[1])
}

/// Applies an event and commits it; the in-memory version follows the stored one.
async fn commit(store: &SqliteStore, tenant: &mut Tenant, event: Event, now: Timestamp) -> Result<Records, StoreError> {
    let records = tenant.apply(event, now).records;
    store
        .commit(Commit { tenant, records: &records, audit: &[], decision: None, suspension: None, receipt: None })
        .await?;
    tenant.version += 1;
    Ok(records)
}

fn user_version(path: &Path) -> i64 {
    Connection::open(path).unwrap().pragma_query_value(None, "user_version", |row| row.get(0)).unwrap()
}

#[tokio::test]
async fn migrations_run_once_and_reopening_is_harmless() {
    let (_dir, path) = database();
    let store = SqliteStore::open(&url(&path)).expect("first open creates the folder and the schema");
    store.create_account(&account("master", Role::Master, None)).await.unwrap();
    drop(store);
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));

    for _ in 0..2 {
        let store = SqliteStore::open(&url(&path)).expect("reopen");
        assert!(store.account_by_username("master").await.unwrap().is_some());
        drop(store);
        assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    }
    // The other spellings of a file URL reach the same database.
    for spelling in [format!("sqlite:{}", path.display()), path.display().to_string()] {
        let store = SqliteStore::open(&spelling).unwrap();
        assert!(store.account_by_username("master").await.unwrap().is_some(), "{spelling}");
    }
}

#[tokio::test]
async fn a_database_of_an_older_schema_is_upgraded_in_place() {
    let (_dir, path) = database();
    {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../migrations/0001_init.sql")).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }
    let store = SqliteStore::open(&url(&path)).expect("upgrade");
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    let (tenant, user, _) = tenant_with_users(&store).await;
    let card = Card { admin_id: tenant.admin_id, uid: "04A1B2C3".into(), user_id: user, bound_at: at(1) };
    store.bind_card(&card).await.expect("the new table is there");
    assert_eq!(store.card(tenant.admin_id, "04A1B2C3").await.unwrap(), Some(card));
}

/// A database as the migrations up to `version` left it.
fn database_at(path: &Path, version: u32) -> Connection {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = Connection::open(path).unwrap();
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for file in &files[..version as usize] {
        conn.execute_batch(&std::fs::read_to_string(file).unwrap()).unwrap();
    }
    conn.pragma_update(None, "user_version", version).unwrap();
    conn
}

/// Push tokens kept one per line move to a table of their own at the upgrade (migration 0017),
/// in their order; a token two accounts listed is kept by neither: no one can say whose phone it
/// is now.
#[tokio::test]
async fn push_tokens_move_to_their_table_and_one_two_accounts_listed_is_kept_by_neither() {
    let (_dir, path) = database();
    let (karim, jamal) = (UserId::new(), UserId::new());
    {
        let conn = database_at(&path, 16);
        for (id, name) in [(karim, "karim"), (jamal, "jamal")] {
            conn.execute(
                "INSERT INTO accounts (id, username, name, role, password_hash, created_at) \
                 VALUES (?1, ?2, ?2, 'master', 'x', 0)",
                (id.to_string(), name),
            )
            .unwrap();
        }
        let tokens = ["ExponentPushToken[b]\nExponentPushToken[a]\nExponentPushToken[both]", "ExponentPushToken[both]"];
        for (id, tokens) in [(karim, tokens[0]), (jamal, tokens[1])] {
            conn.execute("INSERT INTO alert_profiles (user_id, push_tokens) VALUES (?1, ?2)", (id.to_string(), tokens))
                .unwrap();
        }
    }
    let store = &SqliteStore::open(&url(&path)).expect("upgrade");
    let tokens = |user| async move { store.alert_profile(user).await.unwrap().unwrap().push_tokens };
    assert_eq!(tokens(karim).await, ["ExponentPushToken[b]", "ExponentPushToken[a]"]);
    assert_eq!(tokens(jamal).await, Vec::<String>::new());
}

/// A push token registered before tokens kept the session that registered them (migration 0019)
/// has none after the upgrade: the account's sessions ending, revoked or purged, leave it.
#[tokio::test]
async fn a_push_token_from_before_sessions_were_kept_with_tokens_stays_when_sessions_end() {
    let (_dir, path) = database();
    let karim = UserId::new();
    let token = "ExponentPushToken[karim]";
    {
        let conn = database_at(&path, 17);
        conn.execute(
            "INSERT INTO accounts (id, username, name, role, password_hash, created_at) \
             VALUES (?1, 'karim', 'karim', 'master', 'x', 0)",
            [karim.to_string()],
        )
        .unwrap();
        conn.execute("INSERT INTO alert_profiles (user_id) VALUES (?1)", [karim.to_string()]).unwrap();
        conn.execute(
            "INSERT INTO push_tokens (token, user_id, position) VALUES (?1, ?2, 0)",
            (token, karim.to_string()),
        )
        .unwrap();
    }
    let store = SqliteStore::open(&url(&path)).expect("upgrade");
    let profile = store.alert_profile(karim).await.unwrap().unwrap();
    assert_eq!((profile.push_tokens, profile.push_sessions.len()), (vec![token.to_owned()], 0));
    let phone = pumppilot_store::Session {
        kind: pumppilot_store::SessionKind::Mobile,
        refresh_hash: Some(b"refresh".to_vec()),
        refresh_expires_at: Some(at(60)),
        ..pumppilot_store::Session::web(karim, b"access".to_vec(), at(0), at(60))
    };
    store.create_session(&phone).await.unwrap();
    store.revoke_sessions(pumppilot_store::SessionScope::User(karim), at(1)).await.unwrap();
    assert_eq!(store.purge_sessions(at(120)).await.unwrap(), 1);
    assert_eq!(store.alert_profile(karim).await.unwrap().unwrap().push_tokens, [token]);
}

/// A text the SMS webhook took is still taken after a restart (the file reopened), and a claim
/// over is deleted when the next text is taken.
#[tokio::test]
async fn a_text_taken_is_still_taken_after_a_restart_and_claims_over_are_deleted() {
    let (_dir, path) = database();
    let keep = 601_000;
    let store = SqliteStore::open(&url(&path)).unwrap();
    assert!(store.claim_text("sms:aa", at(0), keep).await.unwrap());
    drop(store);
    let store = SqliteStore::open(&url(&path)).unwrap();
    assert!(!store.claim_text("sms:aa", at(300), keep).await.unwrap(), "remembered across the restart");
    assert!(store.claim_text("sms:bb", at(601), keep).await.unwrap());
    let kept: Vec<String> = Connection::open(&path)
        .unwrap()
        .prepare("SELECT key FROM taken_texts")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kept, ["sms:bb"], "the claim over is gone");
}

#[tokio::test]
async fn committed_state_survives_reopening_the_file() {
    let (_dir, path) = database();
    let store = SqliteStore::open(&url(&path)).unwrap();
    let (mut tenant, u1, u2) = tenant_with_users(&store).await;
    let report = Event::DeviceReport { load_shedding: false, ready: true, relay: false };
    commit(&store, &mut tenant, report, at(1)).await.unwrap();
    commit(&store, &mut tenant, Event::Start { user: u1, requested_minutes: None, entry_id: EntryId::new() }, at(2))
        .await
        .unwrap();
    commit(&store, &mut tenant, Event::Start { user: u2, requested_minutes: Some(3), entry_id: EntryId::new() }, at(3))
        .await
        .unwrap();
    let ledger = store.ledger(u1, 10).await.unwrap();
    drop(store);

    let store = SqliteStore::open(&url(&path)).unwrap();
    assert_eq!(store.load_tenant(tenant.admin_id, LEASE_MS).await.unwrap(), Some(tenant.clone()));
    assert_eq!(store.ledger(u1, 10).await.unwrap(), ledger);
    commit(&store, &mut tenant, Event::Stop { user: u1 }, at(30)).await.expect("carry on after reopening");
    assert_eq!(store.load_tenant(tenant.admin_id, LEASE_MS).await.unwrap(), Some(tenant));
}

#[tokio::test]
async fn a_database_from_a_newer_pumppilot_is_refused() {
    let (_dir, path) = database();
    drop(SqliteStore::open(&url(&path)).unwrap());
    Connection::open(&path).unwrap().pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    match SqliteStore::open(&url(&path)) {
        Err(StoreError::Unavailable(message)) => assert!(message.contains("newer"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn other_urls_are_refused_with_a_sentence() {
    match SqliteStore::open("mongodb://localhost:27017/pumppilot") {
        Err(StoreError::Unavailable(message)) => assert!(message.contains("mongodb://"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_schema_itself_allows_one_active_entry_per_admin() {
    let (_dir, path) = database();
    let store = SqliteStore::open(&url(&path)).unwrap();
    let (tenant, u1, u2) = tenant_with_users(&store).await;
    let raw = Connection::open(&path).unwrap();
    let insert = "INSERT INTO queues (id, admin_id, user_id, status, created_at, running_ms, held_ms) \
                  VALUES (?1, ?2, ?3, ?4, 0, 0, 0)";
    let admin = tenant.admin_id.to_string();
    raw.execute(insert, (EntryId::new().to_string(), &admin, u1.to_string(), "RUNNING")).unwrap();
    let second = raw.execute(insert, (EntryId::new().to_string(), &admin, u2.to_string(), "HOLD"));
    assert!(second.is_err(), "a second active entry must be refused by the index");
    // An ended entry does not count.
    raw.execute(insert, (EntryId::new().to_string(), &admin, u2.to_string(), "COMPLETED")).unwrap();
}

#[tokio::test]
async fn unreadable_rows_are_reported_not_panicked_on() {
    let (_dir, path) = database();
    let store = SqliteStore::open(&url(&path)).unwrap();
    let (mut tenant, u1, _) = tenant_with_users(&store).await;
    let started = Event::Start { user: u1, requested_minutes: None, entry_id: EntryId::new() };
    commit(&store, &mut tenant, started, at(2)).await.unwrap();

    let raw = Connection::open(&path).unwrap();
    // Someone edits the file by hand, with no regard for the references.
    raw.pragma_update(None, "foreign_keys", false).unwrap();
    raw.execute("UPDATE accounts SET admin_id = 'not-an-id' WHERE id = ?1", [u1.to_string()]).unwrap();
    match store.account(u1).await {
        Err(StoreError::Unavailable(message)) => assert!(message.contains("admin_id"), "{message}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    raw.execute("UPDATE queues SET hold_reason = 'SOLAR_ECLIPSE'", []).unwrap();
    match store.load_tenant(tenant.admin_id, LEASE_MS).await {
        Err(StoreError::Unavailable(message)) => assert!(message.contains("hold_reason"), "{message}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    // A device's stored report that cannot be read: the device list says so, but the device still
    // signs (its reservation reads no report, and its next report is written over it).
    let device = pumppilot_store::Device {
        id: pumppilot_engine::DeviceId::new(),
        admin_id: tenant.admin_id,
        name: "well".into(),
        key_hash: vec![1; 32],
        created_at: at(0),
        telemetry: None,
    };
    store.create_device(&device).await.unwrap();
    store.record_telemetry(&[pumppilot_store::Telemetry::ready(device.admin_id, device.id, at(3))]).await.unwrap();
    raw.execute("UPDATE devices SET reader = 'HUMMING'", []).unwrap();
    match store.devices(device.admin_id).await {
        Err(StoreError::Unavailable(message)) => assert!(message.contains("reader"), "{message}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    let reserved = store.reserve_device_counters(device.admin_id, device.id, 1, 10).await.unwrap();
    assert_eq!((reserved.window.after, reserved.stored), (0, None));
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

fn expect_lost(result: Result<(), StoreError>, what: &str) {
    match result {
        Err(StoreError::Unavailable(message)) => assert!(message.contains(what), "{message}"),
        other => panic!("expected the store to refuse ({what}), got {other:?}"),
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_folder_and_the_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = database();
    let store = SqliteStore::open(&url(&path)).unwrap();
    store.probe_write().await.unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(path.parent().unwrap()), 0o700, "the data folder");
    for file in [path.clone(), with_suffix(&path, "-wal"), with_suffix(&path, "-shm")] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    // A database left readable by others by an older version is made private on the next start.
    drop(store);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _store = SqliteStore::open(&url(&path)).unwrap();
    assert_eq!(mode(&path), 0o600);
}

#[tokio::test]
async fn a_deleted_database_refuses_every_write_instead_of_losing_it() {
    let (_dir, path) = database();
    let store = SqliteStore::open(&url(&path)).unwrap();
    store.probe_write().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(with_suffix(&path, suffix)).unwrap();
    }
    expect_lost(store.probe_write().await, "is gone");
    expect_lost(store.create_account(&account("late-farmer", Role::Master, None)).await, "deleted, replaced");
    expect_lost(store.ping().await, "deleted, replaced");
}

#[tokio::test]
async fn a_replaced_database_file_refuses_every_write() {
    let (dir, path) = database();
    let store = SqliteStore::open(&url(&path)).unwrap();
    store.probe_write().await.unwrap();
    let other = dir.path().join("other.db");
    std::fs::copy(&path, &other).unwrap();
    std::fs::rename(&other, &path).unwrap();
    expect_lost(store.probe_write().await, "replaced");
}

#[tokio::test]
async fn a_truncated_shared_memory_file_is_refused_before_it_is_touched() {
    let (_dir, path) = database();
    let store = SqliteStore::open(&url(&path)).unwrap();
    store.probe_write().await.unwrap();
    // SQLite maps this file: touching a page past its end would kill the process with SIGBUS.
    std::fs::OpenOptions::new().write(true).open(with_suffix(&path, "-shm")).unwrap().set_len(0).unwrap();
    expect_lost(store.probe_write().await, "shrank");
    expect_lost(store.ping().await, "deleted, replaced or damaged");
}

#[tokio::test]
async fn closing_a_store_whose_shared_memory_was_truncated_does_not_crash() {
    let (_dir, path) = database();
    let store = SqliteStore::open(&url(&path)).unwrap();
    store.probe_write().await.unwrap();
    std::fs::OpenOptions::new().write(true).open(with_suffix(&path, "-shm")).unwrap().set_len(0).unwrap();
    // Closing would checkpoint through the mapping (SIGBUS, killing this test process).
    drop(store);
}

/// Sets or clears the immutable flag of `path`; `false` when this process may not (it needs
/// CAP_LINUX_IMMUTABLE, which root has).
#[cfg(target_os = "linux")]
fn set_immutable(path: &Path, on: bool) -> bool {
    use rustix::fs::{IFlags, ioctl_getflags, ioctl_setflags};
    let file = std::fs::File::open(path).unwrap();
    let flags = ioctl_getflags(&file).unwrap();
    let flags = if on { flags | IFlags::IMMUTABLE } else { flags - IFlags::IMMUTABLE };
    match ioctl_setflags(&file, flags) {
        Ok(()) => true,
        Err(rustix::io::Errno::PERM) => false,
        Err(err) => panic!("setting the inode flags of {}: {err}", path.display()),
    }
}

/// Clears the flag again even when the test fails (else the folder could not be deleted).
#[cfg(target_os = "linux")]
struct Immutable(PathBuf);

#[cfg(target_os = "linux")]
impl Drop for Immutable {
    fn drop(&mut self) {
        set_immutable(&self.0, false);
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn an_immutable_shared_memory_file_is_refused_before_it_is_touched_and_used_again_once_cleared() {
    let (_dir, path) = database();
    let store = SqliteStore::open(&url(&path)).unwrap();
    store.probe_write().await.unwrap();
    let shm = with_suffix(&path, "-shm");
    if !set_immutable(&shm, true) {
        eprintln!("SKIPPED: setting the immutable flag needs root (CAP_LINUX_IMMUTABLE)");
        return;
    }
    let guard = Immutable(shm.clone());
    // SQLite writes to this file through its mapping: with the flag set, the kernel answers that
    // write with SIGBUS, which would kill this test process.
    expect_lost(store.probe_write().await, "immutable");
    expect_lost(store.create_account(&account("late-farmer", Role::Master, None)).await, "immutable");
    expect_lost(store.ping().await, "immutable");
    // Not lost for good: once the flag is cleared the same store works again.
    drop(guard);
    store.probe_write().await.unwrap();
    store.create_account(&account("late-farmer", Role::Master, None)).await.unwrap();
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_database_that_cannot_be_written_is_named_as_such_not_as_one_to_create() {
    let (_dir, path) = database();
    drop(SqliteStore::open(&url(&path)).unwrap());
    if !set_immutable(&path, true) {
        eprintln!("SKIPPED: setting the immutable flag needs root (CAP_LINUX_IMMUTABLE)");
        return;
    }
    let _guard = Immutable(path.clone());
    match SqliteStore::open(&url(&path)) {
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains("cannot write to the database"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Frames in a database's write-ahead log: a frame is a page and its 24-byte header, after the
/// log's 32-byte header. A transaction appends at least one.
fn log_frames(raw: &Connection, path: &Path) -> u64 {
    let page: i64 = raw.query_row("PRAGMA page_size", [], |row| row.get(0)).unwrap();
    let page = u64::try_from(page).unwrap();
    std::fs::metadata(with_suffix(path, "-wal")).unwrap().len().saturating_sub(32) / (page + 24)
}

/// An empty write-ahead log, everything in it copied to the database.
fn empty_log(path: &Path) -> Connection {
    let raw = Connection::open(path).unwrap();
    raw.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    assert_eq!(log_frames(&raw, path), 0, "the log starts empty");
    raw
}

/// Transitions made at once (a village's pumps coming back after a power cut, the grid going
/// down under many runs) are written a batch a transaction, one sync of the log for the crowd;
/// each keeps the answer it would have had alone: a transition from a version that moved is
/// refused and writes nothing, and the others land.
#[tokio::test]
async fn transitions_made_at_once_share_one_transaction_and_each_keeps_its_answer() {
    let (_dir, path) = database();
    let store = SqliteStore::open(&url(&path)).unwrap();
    let mut tenants = Vec::new();
    for n in 0..50 {
        let owner = account(&format!("owner-{n}"), Role::Admin, None);
        store.create_account(&owner).await.unwrap();
        let farmer = account(&format!("farmer-{n}"), Role::User, Some(AdminId(owner.id)));
        store.create_account(&farmer).await.unwrap();
        tenants.push((store.load_tenant(AdminId(owner.id), LEASE_MS).await.unwrap().unwrap(), farmer.id));
    }
    let raw = empty_log(&path);

    let credit = |tenant: &mut Tenant, user: UserId, seconds: i64| {
        let credit = Credit::new(user, seconds, LedgerKind::Recharge, tenant.admin_id.0);
        let records = tenant.apply(Event::Credit(credit), at(1)).records;
        (tenant.clone(), records)
    };
    let mut made: Vec<(Tenant, Records)> =
        tenants.iter_mut().map(|(tenant, farmer)| credit(tenant, *farmer, 60)).collect();
    // A second transition of the first tenant, from the version the first one started from.
    let (first, farmer) = &tenants[0];
    let mut stale = store.load_tenant(first.admin_id, LEASE_MS).await.unwrap().unwrap();
    made.push(credit(&mut stale, *farmer, 600));
    // The second tenant's is refused half-way, after its state was written: its ledger line does
    // not follow the stored balance (the state agrees with the line, so it passes every check
    // before the store's own). The state's write is undone with it.
    let (tenant, records) = &mut made[1];
    records.ledger[0].balance_after = 90;
    tenant.wallets.insert(tenants[1].1, 90);

    let asked = made.iter().map(|(tenant, records)| {
        store.commit(Commit { tenant, records, audit: &[], decision: None, suspension: None, receipt: None })
    });
    let mut answers = futures_util::future::join_all(asked).await;
    let stale_answer = answers.pop().unwrap();
    assert!(matches!(stale_answer, Err(StoreError::VersionConflict)), "{stale_answer:?}");
    assert!(matches!(answers[1], Err(StoreError::Invariant(_))), "{:?}", answers[1]);
    assert!(answers.iter().enumerate().all(|(n, answer)| n == 1 || answer.is_ok()), "{answers:?}");
    let frames = log_frames(&raw, &path);
    assert!(frames < 51, "{frames} frames for 51 transitions made at once (one transaction each appends 51 or more)");
    for (n, (tenant, farmer)) in tenants.iter().enumerate() {
        let stored = store.load_tenant(tenant.admin_id, LEASE_MS).await.unwrap().unwrap();
        if n == 1 {
            assert_eq!(stored.version, tenant.version, "the refused transition wrote nothing");
            assert_eq!(stored.wallets.get(farmer), None);
        } else {
            assert_eq!(stored.version, tenant.version + 1);
            assert_eq!(stored.wallets.get(farmer), Some(&60), "each credit written once, the stale one not at all");
        }
    }
}

/// A fleet coming online reserves its devices' counter windows at once (after a restart, every
/// signing device's first request): they are written a batch a transaction, so the log is synced
/// once for the crowd instead of once a device (on a village box's SD card a sync takes
/// milliseconds). Counted in the write-ahead log's frames: a transaction appends at least one.
#[tokio::test]
async fn reservations_made_at_once_share_one_transaction() {
    let (_dir, path) = database();
    let store = SqliteStore::open(&url(&path)).unwrap();
    let (tenant, _, _) = tenant_with_users(&store).await;
    let devices: Vec<_> = (0..100)
        .map(|n| pumppilot_store::Device {
            id: pumppilot_engine::DeviceId::new(),
            admin_id: tenant.admin_id,
            name: format!("well {n}"),
            key_hash: vec![n; 32],
            created_at: at(0),
            telemetry: None,
        })
        .collect();
    for device in &devices {
        store.create_device(device).await.unwrap();
    }
    let raw = empty_log(&path);

    let asked = devices.iter().map(|d| store.reserve_device_counters(d.admin_id, d.id, 1, 1000));
    for reserved in futures_util::future::join_all(asked).await {
        assert_eq!(reserved.unwrap().window.after, 0);
    }
    // 100 transactions would append 100 frames or more.
    let frames = log_frames(&raw, &path);
    assert!((1..=10).contains(&frames), "{frames} frames for 100 reservations made at once");
    let counters = store.device_counters(Some(tenant.admin_id)).await.unwrap();
    assert_eq!(counters.len(), 100);
    assert!(counters.iter().all(|&(_, floor)| floor == 1000), "each device's window is stored");
}
