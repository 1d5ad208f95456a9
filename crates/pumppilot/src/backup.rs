//! `pumppilot backup FILE` and `pumppilot restore FILE`: one file that holds a consistent copy of
//! the installation named by `PUMPPILOT_DATABASE_URL`, with a manifest and checksums.
//!
//! The file is three parts:
//! 1. `PUMPPILOT-BACKUP 1 <sha256 of the manifest line>` and a newline;
//! 2. the manifest, one JSON line: when and from which backend it was taken, the SQLite schema
//!    version, how many records of each kind, the payload's length and SHA-256, and the server's
//!    token secret;
//! 3. the payload: the installation as one SQLite database file, whatever the backend was.
//!
//! A SQLite store is copied with SQLite's online backup (a server may go on writing: the copy is
//! one moment); a MongoDB store is read with `Store::export` (as `migrate` does) and written into
//! the payload with `Store::import`. Restoring reads the payload back with `export` and writes it
//! into the target with `import`, then checks that the target holds as many records of each kind as
//! the manifest says and every wallet equals its ledger (`migrate`'s check).
//!
//! **The secret** travels in the manifest: sessions and device keys are stored as HMACs keyed by
//! it, so without it every device in the field would need a new key. The backup file is therefore
//! written 0600 and must be kept like the secret itself. Restoring writes it to `secret.key` beside
//! a SQLite target that has none; a target whose secret (its `secret.key` or `PUMPPILOT_SECRET`)
//! differs is refused unless `--force`; MongoDB targets need `PUMPPILOT_SECRET` set to it (the
//! manifest's `secret`).

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use pumppilot_server::{Settings, config::Secret};
use pumppilot_store::{Snapshot, Store};
use pumppilot_store_sqlite::SqliteStore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{migrate, redact};

/// The first word of every backup file.
const MAGIC: &str = "PUMPPILOT-BACKUP";
/// The format written; restore reads only this one.
const FORMAT: u32 = 1;

#[derive(clap::Args)]
pub struct BackupArgs {
    /// The backup file to write (refused if it exists).
    file: PathBuf,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The backup file to read.
    file: PathBuf,
    /// Delete whatever the target store holds first, and accept a target with another secret.
    #[arg(long)]
    force: bool,
}

fn bar(len: u64, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what);
    bar
}

/// A file beside `file` for the payload while it is made or read (deleted when dropped).
struct Scratch(PathBuf);

impl Scratch {
    fn beside(file: &Path) -> Scratch {
        let mut name = file.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(format!(".{}.scratch.db", std::process::id()));
        let path = file.with_file_name(name);
        Scratch::clear(&path);
        Scratch(path)
    }

    fn clear(path: &Path) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        Scratch::clear(&self.0);
    }
}

pub async fn backup(settings: Settings, args: BackupArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.file.exists(), "{} exists already; name a new file", args.file.display());
    let url = settings.database_url.clone();
    let backend = pumppilot::store::Backend::of(&url)?;
    let secret = pumppilot::store::existing_secret(&settings)?;
    let scratch = Scratch::beside(&args.file);
    let source_name = match backend {
        pumppilot::store::Backend::Sqlite => {
            let bar = bar(0, "pages");
            let (image, source) = (scratch.0.clone(), url.clone());
            tokio::task::spawn_blocking({
                let bar = bar.clone();
                move || {
                    pumppilot_store_sqlite::backup_to(&source, &image, |done, total| {
                        bar.set_length(total);
                        bar.set_position(done);
                    })
                }
            })
            .await?
            .context("copying the SQLite database")?;
            bar.finish_and_clear();
            "sqlite"
        }
        pumppilot::store::Backend::MongoDb => {
            let source = pumppilot::store::open_store(&settings).await?;
            let snapshot = source.export().await.context("reading the MongoDB store")?;
            let image = SqliteStore::open(&scratch.url())?;
            fill(&image, &snapshot).await?;
            "mongodb"
        }
    };
    // What the payload holds, read back the way restore will read it.
    let image = SqliteStore::open(&scratch.url())?;
    let snapshot = image.export().await.context("reading the copy back")?;
    migrate::verify(&snapshot, &snapshot)?;
    drop(image);
    Scratch::clear_sidecars(&scratch.0);
    let payload = std::fs::read(&scratch.0).context("reading the copy")?;
    let counts: serde_json::Map<String, Value> =
        snapshot.counts().iter().map(|(kind, n)| ((*kind).to_string(), json!(n))).collect();
    let manifest = json!({
        "format": FORMAT,
        "createdAt": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "source": source_name,
        "schemaVersion": pumppilot_store_sqlite::SCHEMA_VERSION,
        "counts": counts,
        "payload": {"bytes": payload.len(), "sha256": hex::encode(Sha256::digest(&payload))},
        "secret": secret.0,
    })
    .to_string();
    let mut file = private_file(&args.file)?;
    let head = format!("{MAGIC} {FORMAT} {}\n{manifest}\n", hex::encode(Sha256::digest(manifest.as_bytes())));
    file.write_all(head.as_bytes())?;
    file.write_all(&payload)?;
    file.sync_all()?;
    println!(
        "Backed up {} ({source_name}) to {}: {}; {} bytes, SHA-256 {}. The file holds the server's secret: keep it private.",
        redact(&url),
        args.file.display(),
        summary(&snapshot),
        payload.len(),
        hex::encode(Sha256::digest(&payload)),
    );
    Ok(())
}

impl Scratch {
    /// After the image is closed, nothing of it is left but the one file.
    fn clear_sidecars(path: &Path) {
        for suffix in ["-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}

fn private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).with_context(|| format!("cannot create {}", path.display()))
}

fn summary(snapshot: &Snapshot) -> String {
    snapshot.counts().iter().map(|(kind, n)| format!("{n} {kind}")).collect::<Vec<_>>().join(", ")
}

/// Writes a snapshot into a store in parts, with a progress bar.
async fn fill(store: &dyn Store, snapshot: &Snapshot) -> anyhow::Result<()> {
    let bar = bar(snapshot.len() as u64, "records");
    for (kind, part) in migrate::parts(snapshot) {
        bar.set_message(kind);
        store.import(&part).await.with_context(|| format!("writing {kind}"))?;
        bar.inc(part.len() as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

/// A backup file read and checked: its manifest and its payload.
struct Backup {
    manifest: Value,
    payload: Vec<u8>,
}

fn read_backup(path: &Path) -> anyhow::Result<Backup> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut head = String::new();
    reader.read_line(&mut head)?;
    let mut words = head.split_whitespace();
    anyhow::ensure!(words.next() == Some(MAGIC), "{} is not a PumpPilot backup", path.display());
    anyhow::ensure!(
        words.next() == Some(&FORMAT.to_string()),
        "{} is a backup in another format than {FORMAT}; restore it with the PumpPilot that wrote it",
        path.display()
    );
    let manifest_sum = words.next().unwrap_or_default().to_string();
    let mut manifest_line = String::new();
    reader.read_line(&mut manifest_line)?;
    let manifest_line = manifest_line.trim_end_matches('\n');
    anyhow::ensure!(
        hex::encode(Sha256::digest(manifest_line.as_bytes())) == manifest_sum,
        "{}: the manifest does not match its checksum; the file is damaged",
        path.display()
    );
    let manifest: Value = serde_json::from_str(manifest_line).context("reading the manifest")?;
    let mut payload = Vec::new();
    reader.read_to_end(&mut payload)?;
    let expected = manifest["payload"]["sha256"].as_str().unwrap_or_default();
    anyhow::ensure!(
        payload.len() as u64 == manifest["payload"]["bytes"].as_u64().unwrap_or(u64::MAX)
            && hex::encode(Sha256::digest(&payload)) == expected,
        "{}: the data does not match the manifest's checksum; the file is damaged or cut short",
        path.display()
    );
    Ok(Backup { manifest, payload })
}

pub async fn restore(settings: Settings, args: RestoreArgs) -> anyhow::Result<()> {
    let backup = read_backup(&args.file)?;
    let secret = backup.manifest["secret"].as_str().unwrap_or_default().to_string();
    anyhow::ensure!(secret.len() >= 32, "{}: the manifest carries no secret", args.file.display());
    // No server may be serving the target meanwhile.
    let _serving = pumppilot::store::lock_for_serving(&settings)?;
    let secret_file = keep_secret(&settings, &secret, args.force)?;

    let scratch = Scratch::beside(&args.file);
    {
        let mut file = private_file(&scratch.0)?;
        file.write_all(&backup.payload)?;
        file.sync_all()?;
    }
    let image = SqliteStore::open(&scratch.url()).context("opening the backup's data")?;
    let snapshot = image.export().await.context("reading the backup's data")?;
    drop(image);
    for (kind, n) in snapshot.counts() {
        // A kind the manifest does not count is one an older PumpPilot did not count (the alerts):
        // its data comes as the payload holds it, vouched for by the payload's checksum.
        let Some(expected) = backup.manifest["counts"].get(kind) else { continue };
        let expected = expected.as_u64();
        anyhow::ensure!(
            expected == Some(n as u64),
            "the backup's data holds {n} {kind}, its manifest says {expected:?}; the file is damaged"
        );
    }

    let url = redact(&settings.database_url);
    let target = pumppilot::store::open_store(&settings).await?;
    let held = migrate::accounts(target.as_ref()).await.context("reading the target")?;
    if held > 0 {
        anyhow::ensure!(
            args.force,
            "{url} already holds {held} accounts; restore fills an empty store (pass --force to delete what it holds \
             first)"
        );
        target.erase().await.context("emptying the target")?;
        println!("Deleted what {url} held (--force).");
    }
    fill(target.as_ref(), &snapshot).await?;
    let restored = target.export().await.context("reading the target back")?;
    let wallets = migrate::verify(&snapshot, &restored)?;
    if let Some(path) = secret_file {
        write_secret(&path, &secret)?;
    }
    println!(
        "Restored {} (taken {} from {}) into {url} and verified: {}; every one of {wallets} wallets equals its ledger.",
        args.file.display(),
        backup.manifest["createdAt"].as_str().unwrap_or("?"),
        backup.manifest["source"].as_str().unwrap_or("?"),
        summary(&restored)
    );
    Ok(())
}

/// Checks the target's secret against the backup's. Returns where to write the backup's secret
/// (beside a SQLite target that has none), once the data is in.
fn keep_secret(settings: &Settings, secret: &str, force: bool) -> anyhow::Result<Option<PathBuf>> {
    let differs = |held: &str| {
        anyhow::ensure!(
            force || held.trim() == secret,
            "the target's secret ({}) is not the backup's: its sessions and device keys would stop working. Use the \
             backup's secret (the manifest's `secret`), or pass --force",
            if settings.secret.is_some() { "PUMPPILOT_SECRET" } else { "secret.key" }
        );
        Ok(None)
    };
    if let Some(Secret(held)) = &settings.secret {
        return differs(held);
    }
    match pumppilot::store::Backend::of(&settings.database_url)? {
        pumppilot::store::Backend::MongoDb => {
            anyhow::bail!("PUMPPILOT_SECRET: must be set when the store is MongoDB; set it to the backup's secret")
        }
        pumppilot::store::Backend::Sqlite => {
            let Some(db) = pumppilot_store_sqlite::database_file(&settings.database_url) else {
                return Ok(None);
            };
            let path = db.parent().unwrap_or(Path::new(".")).join("secret.key");
            match std::fs::read_to_string(&path) {
                Ok(held) => differs(&held),
                Err(_) => Ok(Some(path)),
            }
        }
    }
}

fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    let mut file = private_file(path)?;
    file.write_all(secret.as_bytes())?;
    Ok(())
}
