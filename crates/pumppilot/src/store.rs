//! The one place where the binary chooses its store: the database URL names the backend.
//!
//! `sqlite://…`, `sqlite:…` or `sqlite::memory:` is the embedded SQLite store
//! (`pumppilot-store-sqlite`); `mongodb://…` or `mongodb+srv://…` is MongoDB
//! (`pumppilot-store-mongodb`). The server crate knows only the `Store` trait.

use std::{
    fs::File,
    path::{Path, PathBuf},
    sync::Arc,
};

use pumppilot_server::{Settings, config::Secret, keys::Keyring};
use pumppilot_store::Store;
use pumppilot_store_mongodb::MongoStore;
use pumppilot_store_sqlite::SqliteStore;

/// The variable every store error names.
const VARIABLE: &str = "PUMPPILOT_DATABASE_URL";

/// Which backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MongoDb,
}

impl Backend {
    /// The backend of `url`, or a sentence naming the variable.
    pub fn of(url: &str) -> anyhow::Result<Backend> {
        let url = url.trim();
        if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
            Ok(Backend::MongoDb)
        } else if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else {
            anyhow::bail!("{VARIABLE}: `{url}` must start with sqlite:, mongodb:// or mongodb+srv://")
        }
    }
}

/// The MongoDB stores this process opened, for [`close_opened`].
static OPENED: std::sync::Mutex<Vec<MongoStore>> = std::sync::Mutex::new(Vec::new());

/// Opens the store a URL names (for MongoDB: connects, checks for a replica set, sets up indexes);
/// errors begin with `name`, where the URL came from.
pub async fn open_url(url: &str, name: &str) -> anyhow::Result<Arc<dyn Store>> {
    let backend = Backend::of(url).map_err(|e| anyhow::anyhow!("{}", e.to_string().replacen(VARIABLE, name, 1)))?;
    let store: Arc<dyn Store> = match backend {
        Backend::Sqlite => Arc::new(SqliteStore::open(url).map_err(|e| anyhow::anyhow!("{name}: {e}"))?),
        Backend::MongoDb => Arc::new(open_mongodb(url, name).await?),
    };
    Ok(store)
}

/// Opens the MongoDB store at `url`, to be closed with the others at the end ([`close_opened`]).
pub async fn open_mongodb(url: &str, name: &str) -> anyhow::Result<MongoStore> {
    let store = MongoStore::connect(url).await.map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    OPENED.lock().expect("opened stores lock").push(store.clone());
    Ok(store)
}

/// Stops the driver of every MongoDB store this process opened ([`MongoStore::close`]): the
/// last thing a command does before `main` drops the runtime (a stop by SIGTERM included), since
/// tasks still holding a store (the alerts' watch, a bench's generators) do not end first.
pub async fn close_opened() {
    let opened = std::mem::take(&mut *OPENED.lock().expect("opened stores lock"));
    for store in opened {
        store.close().await;
    }
}

/// Opens the store named by the settings.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    open_url(&settings.database_url, VARIABLE).await
}

/// Held by a serving process for its whole life: a SQLite file is one server's store, and a second
/// `pumppilot serve` on the same file is refused (its cache and timers would act on stale state).
#[derive(Debug)]
pub struct ServingLock {
    _file: Option<File>,
}

/// Takes the serving lock of the settings' store: an exclusive lock on `<database>.lock` beside a
/// SQLite file; nothing for an in-memory database or MongoDB.
pub fn lock_for_serving(settings: &Settings) -> anyhow::Result<ServingLock> {
    let Some(db) = pumppilot_store_sqlite::database_file(&settings.database_url) else {
        return Ok(ServingLock { _file: None });
    };
    let path = lock_path(&db);
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let file =
        File::create(&path).map_err(|e| anyhow::anyhow!("cannot create the lock file {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(ServingLock { _file: Some(file) }),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another PumpPilot is already serving {} (it holds {}); a SQLite file is one server's store, so stop \
             the other server first",
            db.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => anyhow::bail!("cannot lock {}: {e}", path.display()),
    }
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    db.with_file_name(name)
}

/// The token secret: from the settings, or generated once and kept beside the SQLite file.
/// An existing secret file is never replaced: every session and device key depends on it.
/// MongoDB needs it set (every server on one database must use the same one).
pub fn load_secret(settings: &Settings) -> anyhow::Result<Secret> {
    secret(settings, true)
}

/// [`load_secret`] for reading an installation as it is (a backup): never makes a secret, nor a
/// folder.
pub fn existing_secret(settings: &Settings) -> anyhow::Result<Secret> {
    secret(settings, false)
}

/// The secret of `settings`; `new_install`: a SQLite database not made yet gets a new one.
fn secret(settings: &Settings, new_install: bool) -> anyhow::Result<Secret> {
    if let Some(secret) = &settings.secret {
        return Ok(secret.clone());
    }
    if Backend::of(&settings.database_url)? == Backend::MongoDb {
        anyhow::bail!(
            "PUMPPILOT_SECRET: must be set when the store is MongoDB (32+ characters, the same on every server), \
             for example to the output of `openssl rand -hex 32`"
        );
    }
    let Some(db) = pumppilot_store_sqlite::database_file(&settings.database_url) else {
        return Ok(Secret(Keyring::new_token("")));
    };
    let path = db.parent().unwrap_or(Path::new(".")).join("secret.key");
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => return Ok(Secret(text.trim().to_string())),
        Ok(_) => anyhow::bail!("{} is not a valid secret (32+ characters); restore it from a backup", path.display()),
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            anyhow::bail!("cannot read {}: {err}", path.display())
        }
        Err(_) => {}
    }
    // A database without its secret: every session, device key and link secret in it is keyed by
    // the lost one, so a new secret would lock every phone and pump out, without a word why.
    if db.exists() {
        anyhow::bail!(
            "{} has no {} beside it: its sessions, device keys and link secrets are keyed by that secret. Put back \
             the secret.key that belongs to this database (from the box it came from; `pumppilot restore` of a \
             backup writes it), or set PUMPPILOT_SECRET to it",
            db.display(),
            path.display()
        );
    }
    anyhow::ensure!(new_install, "there is no database at {}", db.display());
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let secret = Keyring::new_token("");
    write_private(&path, &secret).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(Secret(secret))
}

/// Where a made-up first password of the master is kept when nobody is at a terminal to read it
/// (a service, whose output its journal keeps for months): `master-password` in the data folder,
/// beside a SQLite database and its `secret.key`; with MongoDB or an in-memory database, in the
/// working directory (`deploy/pumppilot.service` makes it the service's own state directory).
pub fn master_password_file(settings: &Settings) -> PathBuf {
    let folder = pumppilot_store_sqlite::database_file(&settings.database_url)
        .and_then(|db| db.parent().map(Path::to_path_buf))
        .filter(|folder| !folder.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let file = folder.join("master-password");
    std::path::absolute(&file).unwrap_or(file)
}

/// Keeps the master's first password in `path`: a new file readable by its owner alone (0600),
/// in place of one an earlier first start left.
pub fn keep_master_password(path: &Path, password: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let cannot = |e: std::io::Error| anyhow::anyhow!("cannot write the master's password to {}: {e}", path.display());
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(cannot(e)),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).and_then(|mut file| file.write_all(format!("{password}\n").as_bytes())).map_err(cannot)
}

/// Makes `dir` (and its parents) for the data, readable by the server's user alone.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_in(dir: &Path) -> Settings {
        Settings { database_url: format!("sqlite://{}", dir.join("pumppilot.db").display()), ..Settings::default() }
    }

    #[test]
    fn the_url_names_the_backend() {
        assert_eq!(Backend::of("sqlite://./data/pumppilot.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of("sqlite::memory:").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of("mongodb://db:27017/pp?replicaSet=rs0").unwrap(), Backend::MongoDb);
        assert_eq!(Backend::of("mongodb+srv://app:pw@cluster0.example.net/pp").unwrap(), Backend::MongoDb);
        let error = Backend::of("postgres://db/pp").unwrap_err().to_string();
        assert!(error.starts_with("PUMPPILOT_DATABASE_URL:"), "{error}");
    }

    #[test]
    fn one_serving_lock_per_sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings_in(dir.path());
        let first = lock_for_serving(&settings).unwrap();
        let error = lock_for_serving(&settings).unwrap_err().to_string();
        assert!(error.contains("another PumpPilot is already serving"), "{error}");
        drop(first);
        lock_for_serving(&settings).expect("free again once the first server is gone");
        let memory = Settings { database_url: "sqlite::memory:".into(), ..Settings::default() };
        let _a = lock_for_serving(&memory).unwrap();
        let _b = lock_for_serving(&memory).expect("in-memory databases are never shared");
    }

    #[test]
    fn the_secret_is_made_once_kept_private_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings_in(dir.path());
        let first = load_secret(&settings).unwrap();
        assert_eq!(load_secret(&settings).unwrap(), first, "the same secret on the next start");
        let file = dir.path().join("secret.key");
        #[cfg(unix)]
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions()) & 0o777,
            0o600
        );
        std::fs::write(&file, "short").unwrap();
        assert!(load_secret(&settings).unwrap_err().to_string().contains("restore it from a backup"));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "short", "a damaged secret is left for the operator");
    }

    /// A database moved without its `secret.key` (or migrated from MongoDB) is refused with a
    /// sentence naming the file, never given a new secret that would lock every device and phone
    /// out; a backup never makes a secret, nor the data folder.
    #[test]
    fn a_database_without_its_secret_is_refused_and_a_backup_makes_none() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings_in(&dir.path().join("data"));
        let error = existing_secret(&settings).unwrap_err().to_string();
        assert!(error.starts_with("there is no database at"), "{error}");
        assert!(!dir.path().join("data").exists(), "a backup makes no folder");
        load_secret(&settings).expect("a new installation gets its secret");
        #[cfg(unix)]
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.path().join("data")).unwrap().permissions())
                & 0o777,
            0o700,
            "the data folder is the server's alone"
        );
        std::fs::write(dir.path().join("data/pumppilot.db"), b"").unwrap();
        std::fs::remove_file(dir.path().join("data/secret.key")).unwrap();
        for error in [load_secret(&settings).unwrap_err(), existing_secret(&settings).unwrap_err()] {
            assert!(error.to_string().contains("secret.key beside it"), "{error}");
        }
        assert!(!dir.path().join("data/secret.key").exists(), "no new secret made");
    }

    #[test]
    fn in_memory_stores_get_a_fresh_secret_and_mongodb_needs_one_set() {
        let memory = Settings { database_url: "sqlite://:memory:".into(), ..Settings::default() };
        assert_ne!(load_secret(&memory).unwrap(), load_secret(&memory).unwrap());
        let mongo = Settings { database_url: "mongodb://db/pp".into(), ..Settings::default() };
        assert!(load_secret(&mongo).unwrap_err().to_string().starts_with("PUMPPILOT_SECRET"));
    }
}
