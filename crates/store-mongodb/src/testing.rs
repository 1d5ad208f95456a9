//! A real MongoDB-wire server for tests: SecantusDB (PyPI), started once per test binary.
//!
//! On first use, a Python virtual environment is created under `target/secantusdb/` and
//! `secantusdb` is installed into it with pip (a lock file keeps concurrent test binaries from
//! installing at the same time); later runs reuse it. It is started through a launcher of ours
//! (`secantusd.py`, written beside the environment), which tunes Python's garbage collector for
//! this deployment (no automatic full collection; `PUMPPILOT_SECANTUSDB_GC=default` leaves it as
//! Python has it) and reports its pauses in the log ([`TestServer::collector`]). The server
//! listens on a free port with its data in memory, speaks the MongoDB wire protocol and reports
//! itself as a one-node replica set, so transactions work. It stops when the test binary exits (a shell beside it waits for the
//! binary's end of a pipe to close). Each test takes a fresh database name.
//!
//! Needs `python3` (with the `venv` module) and access to PyPI on the first run.
//!
//! The fleet bench runs on SecantusDB's Rust server instead ([`start_rust`]), built on its first
//! use: that needs `rustup`, crates.io, and `cmake` and `libclang` (installed from Debian when
//! missing, as root).

use std::{
    fs::{self, File},
    io::Write,
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::MongoStore;

/// The SecantusDB release the tests are checked with.
pub const SECANTUSDB_VERSION: &str = "0.7.0b3";
/// The release of SecantusDB's Rust server (`secantusd-rs`, the crate `secantus-mdb` on crates.io)
/// the fleet bench runs on ([`start_rust`]): the same wire protocol and storage engine as the
/// Python server the tests run on, many times faster (the Python one, a single process holding
/// Python's lock, answered about 130 arriving devices a second on this machine).
pub const SECANTUSD_RS_VERSION: &str = "0.5.3-beta.196";
/// The Rust toolchain `secantusd-rs` is built with: it needs Rust 1.98 or later, newer than this
/// workspace needs, so `rustup` fetches this one for its build alone.
const SECANTUSD_RS_TOOLCHAIN: &str = "1.99.1";
/// How long the server may take to accept connections after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The server of this test binary.
pub struct TestServer {
    port: u16,
    log: PathBuf,
    /// The shell that stops the server when this process's end of its stdin closes.
    _watch: Child,
}

impl TestServer {
    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("mongodb://127.0.0.1:{}/{database}?directConnection=true", self.port)
    }

    /// The URL of a database no other test uses.
    pub fn fresh_url(&self) -> String {
        self.url(&fresh_database_name())
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The server process's id (the child of the shell that watches it), on Linux: for the fleet
    /// bench's count of the store's CPU time.
    pub fn pid(&self) -> Option<u32> {
        let shell = self._watch.id();
        let children = fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }

    /// What the server's garbage collector did since it started, from the last line the launcher
    /// wrote to the log (`secantusd.py`; a second old at most); `None` before the first.
    pub fn collector(&self) -> Option<Collector> {
        let log = fs::read_to_string(&self.log).ok()?;
        let line = log.lines().rev().find_map(|line| line.strip_prefix("pumppilot-gc "))?;
        let n: Vec<f64> = line.split_whitespace().filter_map(|n| n.parse().ok()).collect();
        let &[c0, c1, c2, m0, m1, m2, longest, o10, o50, o100, o250] = n.as_slice() else { return None };
        let count = |x: f64| x as u64;
        Some(Collector {
            collections: [count(c0), count(c1), count(c2)],
            millis: [m0, m1, m2],
            longest_ms: longest,
            pauses_over: [count(o10), count(o50), count(o100), count(o250)],
        })
    }

    /// How the launcher set the collector up (`pumppilot-gc-tuned …` in the log), or `None` when
    /// it was left as Python has it.
    pub fn collector_tuning(&self) -> Option<String> {
        let log = fs::read_to_string(&self.log).ok()?;
        log.lines().find_map(|line| line.strip_prefix("pumppilot-gc-tuned ")).map(str::to_owned)
    }

    /// What the launcher's pacing of change streams did since the server started (the last
    /// `pumppilot-feed` line, a second old at most; `secantusd.py`, `pace_feeds`), or `None` before
    /// the first or when the streams are not paced.
    pub fn feed_reads(&self) -> Option<FeedReads> {
        let log = fs::read_to_string(&self.log).ok()?;
        let line = log.lines().rev().find_map(|line| line.strip_prefix("pumppilot-feed "))?;
        let mut parts = line.split_whitespace();
        let mut count = || parts.next()?.parse::<u64>().ok();
        let (reads, delivered, paced) = (count()?, count()?, count()?);
        let shortest_gap_ms = parts.next()?.parse().ok();
        Some(FeedReads { reads, delivered, paced, shortest_gap_ms })
    }

    /// Stops the server and waits until it has exited (its port is free again).
    pub fn stop(mut self) {
        drop(self._watch.stdin.take());
        let _ = self._watch.wait();
    }
}

/// What the change streams' reads of the oplog were (`TestServer::feed_reads`): totals since the
/// server started.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FeedReads {
    /// Reads of the oplog by change streams.
    pub reads: u64,
    /// Reads that returned events.
    pub delivered: u64,
    /// Reads that first waited for the pause (their stream had just delivered events).
    pub paced: u64,
    /// The shortest time from a read that returned events to its stream's next read, in ms;
    /// `None` before a stream read again after delivering.
    pub shortest_gap_ms: Option<f64>,
}

/// What SecantusDB's garbage collector did (`TestServer::collector`): totals since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Collector {
    /// Collections of generation 0, 1 and 2.
    pub collections: [u64; 3],
    /// Milliseconds spent in each generation's collections (every thread of the server stopped).
    pub millis: [f64; 3],
    /// The longest pause since the server started.
    pub longest_ms: f64,
    /// Pauses of at least 10, 50, 100 and 250 ms.
    pub pauses_over: [u64; 4],
}

impl Collector {
    /// Pause bounds of [`Collector::pauses_over`], in milliseconds.
    pub const BOUNDS_MS: [u64; 4] = [10, 50, 100, 250];

    /// What happened between `before` and this (the longest pause stays the one since start).
    pub fn since(&self, before: &Collector) -> Collector {
        let mut out = *self;
        for g in 0..3 {
            out.collections[g] = self.collections[g].saturating_sub(before.collections[g]);
            out.millis[g] = (self.millis[g] - before.millis[g]).max(0.0);
        }
        for (i, over) in out.pauses_over.iter_mut().enumerate() {
            *over = self.pauses_over[i].saturating_sub(before.pauses_over[i]);
        }
        out
    }
}

/// The server of this test binary, started (and installed) on first use.
pub fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| start(&[]).unwrap_or_else(|e| panic!("cannot start SecantusDB for the tests: {e}")))
}

/// Another server, of the caller's own, that presents itself as a standalone server (no replica
/// set, so no transactions). It stops when the returned value is dropped.
pub fn start_standalone() -> TestServer {
    start(&["--standalone"]).unwrap_or_else(|e| panic!("cannot start a standalone SecantusDB: {e}"))
}

/// Another server, of the caller's own, whose WiredTiger session cap (`--session-max`: each
/// client connection and change-stream tailer takes one; its default is 1,000) is `sessions`:
/// for the fleet bench's many server processes. It stops when the returned value is dropped.
pub fn start_with_session_max(sessions: u32) -> TestServer {
    let sessions = sessions.to_string();
    start(&["--session-max", &sessions]).unwrap_or_else(|e| panic!("cannot start SecantusDB: {e}"))
}

/// Another server, of the caller's own, whose change streams, having delivered events, read the
/// oplog again no sooner than `pause_ms` later (`PUMPPILOT_SECANTUSDB_FEED`; 10 ms on the others).
/// It stops when the returned value is dropped.
pub fn start_with_feed_pause(pause_ms: u32) -> TestServer {
    let pause = pause_ms.to_string();
    start_with_env(":memory:", None, &[], &[("PUMPPILOT_SECANTUSDB_FEED", &pause)])
        .unwrap_or_else(|e| panic!("cannot start SecantusDB: {e}"))
}

/// A database name no other test (of any binary running now) uses.
pub fn fresh_database_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("t{}_{}_{}", std::process::id(), nanos, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A store on a fresh database of this binary's server.
pub async fn fresh_store() -> MongoStore {
    let url = server().fresh_url();
    MongoStore::connect(&url).await.unwrap_or_else(|e| panic!("cannot connect to the test server at {url}: {e}"))
}

/// The commands a store sent, in the order sent (a command monitor on its driver): each its name
/// and the collection it names, if it names one (`find tenants`, `bulkWrite`).
#[derive(Debug, Clone, Default)]
pub struct Commands(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Commands {
    /// The commands sent since the last call (each one a round trip to the store).
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("commands lock"))
    }
}

/// A store on a fresh database of this binary's server whose every command is written down: how
/// many round trips an operation costs.
pub async fn fresh_store_counted() -> (MongoStore, Commands) {
    let url = server().fresh_url();
    let mut options = mongodb::options::ClientOptions::parse(&url).await.expect("the test server's URL");
    let commands = Commands::default();
    let log = std::sync::Arc::clone(&commands.0);
    options.command_event_handler = Some(mongodb::event::EventHandler::callback(move |event| {
        if let mongodb::event::command::CommandEvent::Started(started) = event {
            // The command's name, and the collection it names (when its first field does).
            let named = started.command.iter().next().and_then(|(_, value)| value.as_str().map(str::to_owned));
            let entry = match named {
                Some(collection) => format!("{} {collection}", started.command_name),
                None => started.command_name,
            };
            log.lock().expect("commands lock").push(entry);
        }
    }));
    let store = MongoStore::connect_with(options).await.unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    commands.take();
    (store, commands)
}

/// Runs `work` with the profiler of `store`'s database on, and counts the write statements the
/// database took for each collection meanwhile (each of an `update` command's statements; an
/// `insert` or `delete` counts once): what a flush or a fleet coming online writes where.
pub async fn statements_during<F: std::future::Future>(
    store: &MongoStore,
    work: F,
) -> (F::Output, std::collections::BTreeMap<String, usize>) {
    use mongodb::bson::{Document, doc};
    let db = &store.db;
    db.run_command(doc! { "profile": 2 }).await.expect("the profiler on");
    let output = work.await;
    db.run_command(doc! { "profile": 0 }).await.expect("the profiler off");
    let mut counted = std::collections::BTreeMap::<String, usize>::new();
    let writes = doc! { "op": { "$in": ["update", "insert", "remove"] } };
    let mut profile = db.collection::<Document>("system.profile").find(writes).await.expect("the profile");
    while profile.advance().await.expect("the profile") {
        let entry: Document = profile.deserialize_current().expect("a profile entry");
        let collection = entry.get_str("ns").unwrap_or_default().rsplit('.').next().unwrap_or_default().to_owned();
        let statements =
            entry.get_document("command").ok().and_then(|c| c.get_array("updates").ok()).map_or(1, Vec::len);
        *counted.entry(collection).or_default() += statements;
    }
    db.collection::<Document>("system.profile").drop().await.expect("the profile dropped");
    (output, counted)
}

/// A store that sends a commit's writes one command each, as to a server without `bulkWrite`
/// (MongoDB before 8.0).
pub fn without_bulk_write(mut store: MongoStore) -> MongoStore {
    store.bulk_write = false;
    store
}

/// What [`writes_between`] counted.
#[derive(Debug, Default)]
pub struct Writes {
    /// Where the count begins: the moment asked for, or the oplog's oldest entry when it no
    /// longer holds the writes before it.
    pub from_ms: i64,
    /// Per collection: (documents written outside transactions, inside them).
    pub collections: std::collections::BTreeMap<String, (u64, u64)>,
}

/// The documents written to each collection of `store`'s database between two moments (Unix
/// milliseconds), from the store's oplog: one entry a document inserted, updated or deleted, which
/// is also one change event for every server following the feed, however the writes were grouped
/// into commands. For the fleet bench: what a device coming online costs the store, as a count.
/// Other databases' entries are left out, and those the oplog no longer holds (it keeps the last
/// 100,000 in SecantusDB): the count then begins later (`Writes::from_ms`). SecantusDB logs each write
/// of a transaction as an entry of its own; MongoDB packs a transaction's writes into one
/// `applyOps` entry, which this does not open (its transactions count none).
pub async fn writes_between(store: &MongoStore, from_ms: i64, to_ms: i64) -> Result<Writes, String> {
    use futures_util::TryStreamExt;
    use mongodb::bson::{Bson, DateTime, doc};
    let oplog = store.client.database("local").collection::<mongodb::bson::Document>("oplog.rs");
    let oldest = oplog
        .find_one(doc! {})
        .sort(doc! { "$natural": 1 })
        .projection(doc! { "wall": 1 })
        .await
        .map_err(|e| e.to_string())?
        .and_then(|entry| entry.get_datetime("wall").ok().map(|wall| wall.timestamp_millis()));
    let from_ms = from_ms.max(oldest.unwrap_or(from_ms));
    let prefix = format!("{}.", store.db.name());
    let pipeline = [
        doc! { "$match": {
            "op": { "$in": ["i", "u", "d"] },
            "wall": { "$gte": DateTime::from_millis(from_ms), "$lt": DateTime::from_millis(to_ms) },
        } },
        doc! { "$group": {
            "_id": { "ns": "$ns", "txn": { "$cond": [{ "$gt": ["$txnNumber", Bson::Null] }, 1, 0] } },
            "n": { "$sum": 1 },
        } },
    ];
    let groups: Vec<mongodb::bson::Document> =
        oplog.aggregate(pipeline).await.map_err(|e| e.to_string())?.try_collect().await.map_err(|e| e.to_string())?;
    let mut out = Writes { from_ms, collections: std::collections::BTreeMap::new() };
    for group in groups {
        let id = group.get_document("_id").map_err(|e| e.to_string())?;
        let Some(collection) = id.get_str("ns").ok().and_then(|ns| ns.strip_prefix(&prefix)) else { continue };
        let count = |value: Option<&Bson>| value.and_then(crate::codec::number).unwrap_or(0);
        let n = u64::try_from(count(group.get("n"))).unwrap_or(0);
        let entry = out.collections.entry(collection.to_owned()).or_default();
        if count(id.get("txn")) == 1 {
            entry.1 += n;
        } else {
            entry.0 += n;
        }
    }
    Ok(out)
}

/// What the server ran on each collection of `store`'s database since it started, from its `top`
/// command: per collection, per kind of operation (`queries`, `getmore`, `insert`, `update`,
/// `remove`, `commands`), how many and for how many microseconds. For the fleet bench: what the
/// servers ask of the store.
pub async fn operations(
    store: &MongoStore,
) -> Result<std::collections::BTreeMap<String, std::collections::BTreeMap<String, (u64, u64)>>, String> {
    use mongodb::bson::doc;
    let top = store.client.database("admin").run_command(doc! { "top": 1 }).await.map_err(|e| e.to_string())?;
    let totals = top.get_document("totals").map_err(|e| e.to_string())?;
    let prefix = format!("{}.", store.db.name());
    let mut out = std::collections::BTreeMap::new();
    for (namespace, sections) in totals {
        let (Some(collection), Some(sections)) = (namespace.strip_prefix(&prefix), sections.as_document()) else {
            continue;
        };
        let mut kinds = std::collections::BTreeMap::new();
        for kind in ["queries", "getmore", "insert", "update", "remove", "commands"] {
            let Ok(section) = sections.get_document(kind) else { continue };
            let number = |field: &str| section.get(field).and_then(crate::codec::number).unwrap_or(0);
            let (count, micros) = (number("count"), number("time"));
            if count > 0 {
                kinds.insert(kind.to_owned(), (u64::try_from(count).unwrap_or(0), u64::try_from(micros).unwrap_or(0)));
            }
        }
        out.insert(collection.to_owned(), kinds);
    }
    Ok(out)
}

/// `target/secantusdb`, beside this test binary's profile folder.
fn home() -> std::io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PUMPPILOT_TEST_SECANTUSDB_HOME") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test binary>
    let target = exe.ancestors().nth(3).ok_or_else(|| std::io::Error::other("the test binary is not in target/"))?;
    Ok(target.join("secantusdb"))
}

/// PumpPilot's launcher of SecantusDB: its garbage collector tuned for this deployment, and what
/// the collector did reported in the log (`secantusd.py` says what and why).
const LAUNCHER: &str = include_str!("secantusd.py");

/// The virtual environment's Python and PumpPilot's launcher script beside it, installing
/// SecantusDB into the environment when needed.
fn install(home: &Path) -> Result<(PathBuf, PathBuf), String> {
    fs::create_dir_all(home).map_err(|e| format!("cannot create {}: {e}", home.display()))?;
    let venv = home.join("venv");
    let python = venv.join("bin").join("python3");
    let launcher = home.join("pumppilot-secantusd.py");
    let marker = venv.join(format!("installed-secantusdb-{SECANTUSDB_VERSION}"));
    let lock_path = home.join("install.lock");
    let lock = File::create(&lock_path).map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock().map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    if fs::read_to_string(&launcher).ok().as_deref() != Some(LAUNCHER) {
        fs::write(&launcher, LAUNCHER).map_err(|e| format!("cannot write {}: {e}", launcher.display()))?;
    }
    if marker.exists() && python.exists() {
        return Ok((python, launcher));
    }
    eprintln!("Installing SecantusDB {SECANTUSDB_VERSION} into {} (once) …", venv.display());
    let _ = fs::remove_dir_all(&venv);
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    run(Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "--pre"])
        .arg(format!("secantusdb=={SECANTUSDB_VERSION}")))?;
    File::create(&marker).map_err(|e| format!("cannot create {}: {e}", marker.display()))?;
    Ok((python, launcher))
}

/// `secantusd-rs`, installed under `home` when it is not there yet: its toolchain fetched with
/// `rustup`, the build's own needs (`cmake`, `libclang`) installed from Debian when missing and
/// this is root, then `cargo install` of the pinned release with its own lock file, which shows
/// its progress.
fn install_rust(home: &Path) -> Result<PathBuf, String> {
    fs::create_dir_all(home).map_err(|e| format!("cannot create {}: {e}", home.display()))?;
    let root = home.join(format!("rust-{SECANTUSD_RS_VERSION}"));
    let server = root.join("bin").join("secantusd-rs");
    let lock_path = home.join("install-rust.lock");
    let lock = File::create(&lock_path).map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock().map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    if server.exists() {
        return Ok(server);
    }
    eprintln!(
        "Installing SecantusDB's Rust server {SECANTUSD_RS_VERSION} into {} (once; it builds WiredTiger, \
         some minutes on two cores) …",
        root.display()
    );
    let missing = |program: &str, arg: &str| Command::new(program).arg(arg).output().is_err();
    let libclang = ["/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"]
        .iter()
        .filter_map(|dir| fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten())
        .any(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            (name.starts_with("libclang") && !name.starts_with("libclang-cpp") && name.contains(".so"))
                || (name.starts_with("llvm-") && entry.path().join("lib").join("libclang.so").exists())
        });
    if missing("cmake", "--version") || !libclang {
        let root_user = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if !root_user || missing("apt-get", "--version") {
            return Err("building it needs cmake and libclang: install them (Debian: apt-get install cmake \
                        libclang-dev)"
                .into());
        }
        eprintln!("  installing cmake and libclang from Debian …");
        run(Command::new("apt-get").arg("update").arg("-qq"))?;
        run(Command::new("apt-get").args(["install", "-y", "-qq", "cmake", "libclang-dev"]))?;
    }
    eprintln!("  the Rust toolchain {SECANTUSD_RS_TOOLCHAIN} (rustup) …");
    run(Command::new("rustup").args(["toolchain", "install", SECANTUSD_RS_TOOLCHAIN, "--profile", "minimal"]))?;
    let build = home.join("rust-build");
    let status = Command::new("rustup")
        .args(["run", SECANTUSD_RS_TOOLCHAIN, "cargo", "install", "secantus-mdb", "--locked", "--version"])
        .arg(format!("={SECANTUSD_RS_VERSION}"))
        .arg("--root")
        .arg(&root)
        .env("CARGO_TARGET_DIR", &build)
        // Started from `cargo run`, the build must not take this workspace's cargo or rustc.
        .env_remove("RUSTC")
        .env_remove("CARGO")
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() || !server.exists() {
        return Err(format!("cargo install secantus-mdb {SECANTUSD_RS_VERSION} failed ({status})"));
    }
    // The build's intermediate files (more than half a gigabyte) are not needed again.
    let _ = fs::remove_dir_all(&build);
    Ok(server)
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// Another server, of the caller's own, that keeps its data in `dir` and listens on `port` (a free
/// one when `None`): stopped ([`TestServer::stop`]) and started again on the same port and folder,
/// it is the same database back after an outage.
pub fn start_on_disk(dir: &Path, port: Option<u16>) -> TestServer {
    let storage = dir.to_str().expect("a UTF-8 path");
    start_with(storage, port, &[]).unwrap_or_else(|e| panic!("cannot start SecantusDB on {storage}: {e}"))
}

fn start(extra: &[&str]) -> Result<TestServer, String> {
    start_with(":memory:", None, extra)
}

/// SecantusDB's Rust server ([`SECANTUSD_RS_VERSION`]) of the caller's own, for the fleet bench:
/// built and installed under `target/secantusdb/` on first use (its toolchain and WiredTiger are
/// built here, some minutes; later runs reuse it), its data in a fresh folder beside it that goes
/// with it, its WiredTiger session cap `sessions` (as [`start_with_session_max`]). It stops when
/// the returned value is dropped.
pub fn start_rust(sessions: u32) -> Result<TestServer, String> {
    let home = home().map_err(|e| e.to_string())?;
    let server = install_rust(&home)?;
    let port = free_port()?;
    // Each server's folder is named by the process that started it and its port; a folder left by a
    // process that is gone (killed before its server stopped) is removed here.
    let folders = home.join("rust-data");
    for entry in fs::read_dir(&folders).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let owner = name.split('-').next().and_then(|pid| pid.parse::<u32>().ok());
        if owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    let data = folders.join(format!("{}-{port}", std::process::id()));
    let _ = fs::remove_dir_all(&data);
    fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let storage = data.to_str().ok_or("the data folder's path is not UTF-8")?.to_owned();
    let sessions = sessions.to_string();
    // A 1 GB cache (its default is 4 GB): the store shares the machine with the fleet.
    let args = ["--storage-path", &storage, "--session-max", &sessions, "--cache-size", "1G"];
    launch(&home, &server, &[], port, &args, &[], Some(&data))
}

fn start_with(storage: &str, port: Option<u16>, extra: &[&str]) -> Result<TestServer, String> {
    start_with_env(storage, port, extra, &[])
}

fn start_with_env(
    storage: &str,
    port: Option<u16>,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Result<TestServer, String> {
    let home = home().map_err(|e| e.to_string())?;
    let (python, launcher) = install(&home)?;
    let port = match port {
        Some(port) => port,
        None => free_port()?,
    };
    let mut args = vec!["--storage-path", storage];
    args.extend_from_slice(extra);
    launch(&home, &python, &[launcher.as_path()], port, &args, env, None)
}

/// A port free now on 127.0.0.1.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Starts `program` (with `before` its first arguments, then the address, then `args`) on `port`
/// and waits until it accepts connections; `scratch`, a folder of its own, is removed once it
/// stopped.
fn launch(
    home: &Path,
    program: &Path,
    before: &[&Path],
    port: u16,
    args: &[&str],
    env: &[(&str, &str)],
    scratch: Option<&Path>,
) -> Result<TestServer, String> {
    let logs = home.join("logs");
    fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let log = logs.join(format!("{port}.log"));
    let log_file = File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    // The shell starts the server, then reads its stdin until this process exits (the pipe closes,
    // also on a panic or a kill), then stops the server and removes its scratch folder, if any.
    let script = r#"scratch="$1"; server="$2"; shift 2; "$server" "$@" </dev/null & pid=$!; cat >/dev/null; kill "$pid" 2>/dev/null; wait "$pid"; [ -z "$scratch" ] || rm -rf "$scratch""#;
    let mut watch = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(scratch.unwrap_or(Path::new("")))
        .arg(program)
        .args(before)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--log-level", "WARNING"])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let started = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        let exited = watch.try_wait().map_err(|e| e.to_string())?;
        if exited.is_some() || started.elapsed() > START_TIMEOUT {
            let _ = watch.kill();
            let tail = fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("the server did not accept connections on port {port}; its log:\n{tail}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(stdin) = watch.stdin.as_mut() {
        // Nothing is ever written; the pipe only has to stay open.
        let _ = stdin.flush();
    }
    Ok(TestServer { port, log, _watch: watch })
}
