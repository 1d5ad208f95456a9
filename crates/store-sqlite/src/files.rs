//! The database's files on disk: created private, and checked to still be the ones opened.
//!
//! An open SQLite connection keeps writing to the files it opened even when they were deleted or
//! replaced under it: every acknowledged write would then vanish at the next start. And SQLite
//! maps the `-shm` file into memory: one truncated by someone else turns the next access into
//! SIGBUS. So before every operation the store checks, with a few `stat` calls, that the
//! database, its `-wal` and its `-shm` are still the files (device and inode) it opened and that
//! the `-shm` did not shrink; if not, the operation is refused as unavailable (503) and nothing is
//! touched.
//!
//! A `-shm` made immutable (`chattr +i`) is as deadly: the kernel answers SQLite's next write to
//! the mapping with SIGBUS. Its inode flags are read (`FS_IOC_GETFLAGS`, on a descriptor held
//! since opening) before every operation too; while it is immutable every operation is refused
//! as unavailable, logged once, and the store works again once the flag is cleared.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

use crate::error::{Failure, unavailable};

/// What was opened: each file with its device and inode, and the largest `-shm` size seen.
#[derive(Debug)]
pub(crate) struct Files {
    files: Vec<(PathBuf, (u64, u64))>,
    shm: PathBuf,
    shm_size: AtomicU64,
    /// Set once a check failed (it stays failed: the files opened are gone for good).
    lost: AtomicBool,
    /// The `-shm` as opened, for reading its inode flags.
    #[cfg(target_os = "linux")]
    shm_file: std::fs::File,
    /// Set while the `-shm` is immutable (logged once per such spell).
    frozen: AtomicBool,
}

/// A sibling of the database file: `pp.db` → `pp.db-wal`.
pub(crate) fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    db.with_file_name(name)
}

#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn identity(_: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

/// Creates the database's folder (0700, only what is missing) and the empty database file
/// (0600) before SQLite opens it, so hashes and balances are never readable by other local
/// users; SQLite gives its `-wal` and `-shm` files the database file's mode. An existing
/// database file readable by others is made private.
pub(crate) fn prepare(db: &Path) -> Result<(), Failure> {
    if let Some(folder) = db.parent().filter(|folder| !folder.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(folder)
            .map_err(|e| unavailable(format!("cannot create the folder {}: {e}", folder.display())))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(db).map_err(|e| {
        // An existing database that cannot be written (read-only, another owner's) is not one to
        // create: the sentence says which.
        let what = if db.exists() { "cannot write to the database" } else { "cannot create the database" };
        unavailable(format!("{what} {}: {e}", db.display()))
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for path in [db.to_path_buf(), sibling(db, "-wal"), sibling(db, "-shm")] {
            let meta = if path == db { file.metadata() } else { std::fs::metadata(&path) };
            if let Ok(meta) = meta
                && meta.permissions().mode() & 0o077 != 0
            {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(meta.permissions().mode() & 0o700))
                    .map_err(|e| unavailable(format!("cannot make {} private: {e}", path.display())))?;
            }
        }
    }
    Ok(())
}

impl Files {
    /// Records the files of `db` as they are now (after the writer opened it in WAL mode).
    pub(crate) fn opened(db: &Path) -> Result<Files, Failure> {
        let shm = sibling(db, "-shm");
        let mut files = Vec::new();
        for path in [db.to_path_buf(), sibling(db, "-wal"), shm.clone()] {
            let meta = std::fs::metadata(&path).map_err(|e| {
                unavailable(format!("the database file {} is missing after opening: {e}", path.display()))
            })?;
            files.push((path, identity(&meta)));
        }
        let shm_size = std::fs::metadata(&shm).map(|m| m.len()).unwrap_or(0);
        #[cfg(target_os = "linux")]
        let shm_file = std::fs::File::open(&shm)
            .map_err(|e| unavailable(format!("cannot open {} to watch it: {e}", shm.display())))?;
        Ok(Files {
            files,
            shm,
            shm_size: AtomicU64::new(shm_size),
            lost: AtomicBool::new(false),
            #[cfg(target_os = "linux")]
            shm_file,
            frozen: AtomicBool::new(false),
        })
    }

    /// Refuses when a file opened was deleted or replaced, or the `-shm` shrank.
    pub(crate) fn check(&self) -> Result<(), Failure> {
        if self.lost.load(Ordering::Relaxed) {
            return Err(unavailable(self.lost_message()));
        }
        for (path, opened) in &self.files {
            match std::fs::metadata(path) {
                Ok(meta) if identity(&meta) == *opened => {
                    if *path == self.shm {
                        let seen = self.shm_size.fetch_max(meta.len(), Ordering::Relaxed);
                        if meta.len() < seen {
                            return Err(self.lose(format!(
                                "{} shrank from {seen} to {} bytes under the server",
                                path.display(),
                                meta.len()
                            )));
                        }
                    }
                }
                Ok(_) => return Err(self.lose(format!("{} was replaced by another file", path.display()))),
                Err(e) => return Err(self.lose(format!("{} is gone ({e})", path.display()))),
            }
        }
        self.check_writable()
    }

    /// Refuses while the `-shm` is immutable: SQLite writes to it through its mapping, and the
    /// kernel answers such a write with SIGBUS. Not for good: once the flag is cleared, the store
    /// works again.
    fn check_writable(&self) -> Result<(), Failure> {
        if self.shm_is_immutable() {
            if !self.frozen.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    "{} was made immutable under the running server; every operation answers 503 until the flag \
                     is cleared (chattr -i)",
                    self.shm.display()
                );
            }
            return Err(unavailable(format!(
                "{} is immutable: the database cannot be used until the flag is cleared (chattr -i)",
                self.shm.display()
            )));
        }
        if self.frozen.swap(false, Ordering::Relaxed) {
            tracing::warn!("{} is writable again; the database is used again", self.shm.display());
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn shm_is_immutable(&self) -> bool {
        // A file system without inode flags (ENOTTY, EOPNOTSUPP) has no immutable files either.
        rustix::fs::ioctl_getflags(&self.shm_file).is_ok_and(|flags| flags.contains(rustix::fs::IFlags::IMMUTABLE))
    }

    #[cfg(not(target_os = "linux"))]
    fn shm_is_immutable(&self) -> bool {
        false
    }

    /// True once a check found the files lost.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    fn lose(&self, what: String) -> Failure {
        if !self.lost.swap(true, Ordering::Relaxed) {
            tracing::error!(
                "{what}: the database was lost under the running server; every write answers 503 until a restart"
            );
        }
        unavailable(format!("{what}; {}", self.lost_message()))
    }

    fn lost_message(&self) -> String {
        format!(
            "the database files the server opened ({}) were deleted, replaced or damaged while it runs; nothing is \
             written until it is restarted on the right file (restore from a backup if it is lost)",
            self.files.first().map_or_else(String::new, |(p, _)| p.display().to_string())
        )
    }
}
