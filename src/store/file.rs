//! The database file's life: opening it without ever replacing an office's data, telling an
//! operator in plain words what is wrong with a file that won't open, and getting writes going
//! again after a full disk.
//!
//! After a failed commit redb refuses every later write until the database is reopened. The
//! handle therefore sits behind a lock that only [`DatabaseFile::reopen`] takes for writing;
//! every other user clones the `Arc` out and lets go of the lock at once.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::{
    Database, DatabaseError, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, StorageError,
};

use super::StoreError;

/// The first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];
/// While the disk is full, a write is tried again at most this often; the rest are refused
/// at once, so a full disk costs no reopen per message.
const FULL_DISK_RETRY: Duration = Duration::from_secs(1);
/// Free space below which writes are not even tried while the disk is known to be full.
const MIN_FREE_BYTES: u64 = 1024 * 1024;
/// How long a reopen waits for readers of the old handle to finish.
const REOPEN_WAIT: Duration = Duration::from_secs(5);

/// What is wrong with a database file that will not open, in an office IT person's words.
#[derive(Debug, thiserror::Error)]
pub enum OpenProblem {
    #[error("is a directory, not a database file")]
    NotAFile,
    #[error("is empty (0 bytes), so it holds no confab data")]
    Empty,
    #[error("is not a confab database (it is some other kind of file)")]
    NotADatabase,
    #[error("is shorter than a confab database can be; it was probably cut off while copying")]
    Truncated,
    #[error("is damaged ({0})")]
    Damaged(String),
    #[error("was written by a newer or older storage format ({0}) that this confab cannot read")]
    Format(String),
    #[error(
        "is in database format {found}, written by {written_by}; this confab {} reads formats up to {}, so it has not read or changed the file",
        crate::config::VERSION,
        super::SCHEMA
    )]
    Newer { found: u64, written_by: String },
    #[error("cannot be read or written by this user: permission denied")]
    PermissionDenied,
    #[error("is on a read-only filesystem")]
    ReadOnlyFilesystem,
    #[error("cannot be opened: {0}")]
    Io(std::io::Error),
}

impl OpenProblem {
    /// What the operator should do next.
    pub fn advice(&self) -> &'static str {
        match self {
            OpenProblem::PermissionDenied => {
                "give the user confab runs as read and write access to it (and to its directory)"
            }
            OpenProblem::ReadOnlyFilesystem => {
                "remount the filesystem read-write, or point --data-dir at a writable directory"
            }
            OpenProblem::Io(_) => "check the disk and the file, then start confab again",
            OpenProblem::Newer { .. } => {
                "run the newer confab that wrote it (or a later one), or restore a backup made by this version"
            }
            _ => {
                "restore it from a backup, or move it away (e.g. rename it) to start a new, empty confab"
            }
        }
    }
}

/// Writes are refused for a while after the disk filled up.
#[derive(Default)]
struct Health {
    /// When the last write failed for lack of space; `None` while writes work.
    full_since: Option<Instant>,
    last_try: Option<Instant>,
}

pub(super) struct DatabaseFile {
    path: PathBuf,
    /// redb's page cache, bytes (kept for reopening).
    cache_bytes: usize,
    /// `None` only if a reopen failed; every access then reports [`StoreError::Closed`].
    db: RwLock<Option<Arc<Database>>>,
    health: Mutex<Health>,
}

impl DatabaseFile {
    /// Opens the file, or creates it (owner-only) if there is none. An existing file is never
    /// initialized afresh: an empty or foreign file is an error, not a new install.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<DatabaseFile, StoreError> {
        let db = open_database(path, cache_bytes)?;
        Ok(DatabaseFile {
            path: path.to_owned(),
            cache_bytes,
            db: RwLock::new(Some(Arc::new(db))),
            health: Mutex::new(Health::default()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn handle(&self) -> Result<Arc<Database>, StoreError> {
        self.db
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(StoreError::Closed)
    }

    /// `Err(StorageFull)` while the disk is known to be full, except for an occasional try.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        let mut health = lock(&self.health);
        if health.full_since.is_none() {
            return Ok(());
        }
        let too_soon = health
            .last_try
            .is_some_and(|t| t.elapsed() < FULL_DISK_RETRY);
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if too_soon || free_bytes(dir).is_some_and(|free| free < MIN_FREE_BYTES) {
            return Err(StoreError::StorageFull);
        }
        health.last_try = Some(Instant::now());
        Ok(())
    }

    /// A write committed: if the disk had been full, it no longer is.
    pub fn write_succeeded(&self) {
        let mut health = lock(&self.health);
        if let Some(since) = health.full_since.take() {
            tracing::warn!(
                "disk space is back after {} s: saving messages again",
                since.elapsed().as_secs()
            );
        }
    }

    /// A write failed. An I/O failure makes redb refuse all later writes on this handle, so
    /// reopen it. Returns the error to report (`StorageFull` when the disk is full).
    pub fn write_failed(&self, error: StoreError) -> StoreError {
        if !error.is_io() {
            return error;
        }
        let full = error.is_out_of_space();
        {
            let mut health = lock(&self.health);
            if full && health.full_since.is_none() {
                tracing::error!(
                    path = %self.path.display(),
                    "the disk is full: new messages and sign-ins are refused until space is freed"
                );
                health.full_since = Some(Instant::now());
            }
            health.last_try = Some(Instant::now());
        }
        if !full {
            tracing::error!(error = %error, "a write to the database failed; reopening it");
        }
        if let Err(e) = self.reopen() {
            tracing::error!(error = %e, "could not reopen the database after a failed write");
        }
        if full { StoreError::StorageFull } else { error }
    }

    /// Closes the handle and opens the file again, once readers of the old handle are done.
    fn reopen(&self) -> Result<(), StoreError> {
        let mut slot = self.db.write().unwrap_or_else(|p| p.into_inner());
        let deadline = Instant::now() + REOPEN_WAIT;
        while slot.as_ref().is_some_and(|db| Arc::strong_count(db) > 1) {
            if Instant::now() > deadline {
                return Err(StoreError::Task(
                    "the database is still in use; will retry at the next write".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // Dropping the old handle releases the file lock that the new one takes.
        *slot = None;
        let mut last_error = None;
        while Instant::now() < deadline {
            match open_database(&self.path, self.cache_bytes) {
                Ok(db) => {
                    *slot = Some(Arc::new(db));
                    return Ok(());
                }
                // A read transaction of the old handle can keep the lock a moment longer.
                Err(StoreError::InUse) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    last_error = Some(e);
                    break;
                }
            }
        }
        Err(last_error.unwrap_or(StoreError::InUse))
    }
}

fn open_problem(path: &Path) -> impl Fn(OpenProblem) -> StoreError + '_ {
    |problem| StoreError::Open {
        path: path.display().to_string(),
        problem,
    }
}

/// Whether there is a database at `path`, after refusing what is plainly not one.
fn existing_file(path: &Path) -> Result<bool, StoreError> {
    let problem = open_problem(path);
    let exists = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => return Err(problem(OpenProblem::NotAFile)),
        Ok(meta) if meta.len() == 0 => return Err(problem(OpenProblem::Empty)),
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(problem(io_problem(e))),
    };
    if exists {
        check_header(path).map_err(problem)?;
    }
    Ok(exists)
}

/// A database opened only to read it: without writing a byte when it was closed cleanly;
/// after a crash redb must repair it first, which writes.
pub(super) enum ReadOnly {
    Untouched(ReadOnlyDatabase),
    Repaired(Database),
}

impl ReadOnly {
    pub fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(match self {
            ReadOnly::Untouched(db) => db.begin_read()?,
            ReadOnly::Repaired(db) => db.begin_read()?,
        })
    }
}

/// Opens an existing database for reading; `Ok(None)` if there is no file at `path`.
pub(super) fn open_read_only(path: &Path) -> Result<Option<ReadOnly>, StoreError> {
    if !existing_file(path)? {
        return Ok(None);
    }
    match quietly_catch_panic(|| ReadOnlyDatabase::open(path)) {
        Ok(Ok(db)) => Ok(Some(ReadOnly::Untouched(db))),
        Ok(Err(DatabaseError::DatabaseAlreadyOpen)) => Err(StoreError::InUse),
        Ok(Err(DatabaseError::RepairAborted)) => Ok(Some(ReadOnly::Repaired(open_database(
            path,
            crate::config::limits::DB_CACHE_BYTES,
        )?))),
        Ok(Err(e)) => Err(open_problem(path)(database_problem(e))),
        Err(panic) => Err(open_problem(path)(OpenProblem::Damaged(panic))),
    }
}

/// Whether a process (a running server) has the file at `path` open as its database, whatever
/// the file holds now: redb takes its lock before it reads a byte, so a file damaged under a
/// running server still says so. `confab restore` leaves only such a file alone.
pub fn held_open(path: &Path) -> bool {
    matches!(
        quietly_catch_panic(|| ReadOnlyDatabase::open(path)),
        Ok(Err(DatabaseError::DatabaseAlreadyOpen))
    )
}

/// Opens (or creates) the file with a page cache of at most `cache_bytes`.
pub(super) fn open_database(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    let problem = open_problem(path);
    let exists = existing_file(path)?;
    if exists {
        restrict_permissions(path).map_err(|e| problem(io_problem(e)))?;
    } else {
        // Created owner-only: it holds password hashes and the token signing key.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| problem(io_problem(e)))?;
    }
    let mut builder = Database::builder();
    builder.set_cache_size(cache_bytes);
    builder.set_repair_callback(|session| {
        if session.progress() == 0.0 {
            tracing::warn!(
                "the database was not closed cleanly (power cut or crash); checking it, this can take a while"
            );
        }
    });
    // redb may panic on a file altered outside it instead of returning an error; such a file
    // is damaged, and the operator must hear that rather than see a backtrace.
    let opened = quietly_catch_panic(|| {
        if exists {
            builder.open(path)
        } else {
            builder.create(path)
        }
    });
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(DatabaseError::DatabaseAlreadyOpen)) => Err(StoreError::InUse),
        Ok(Err(e)) => Err(problem(database_problem(e))),
        Err(panic) => Err(problem(OpenProblem::Damaged(panic))),
    }
}

/// Tells apart a foreign file from a redb one before redb sees it.
fn check_header(path: &Path) -> Result<(), OpenProblem> {
    let mut header = [0u8; REDB_MAGIC.len()];
    let mut file = std::fs::File::open(path).map_err(io_problem)?;
    match file.read_exact(&mut header) {
        Ok(()) if header == REDB_MAGIC => Ok(()),
        Ok(()) => Err(OpenProblem::NotADatabase),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(OpenProblem::NotADatabase),
        Err(e) => Err(io_problem(e)),
    }
}

/// Databases created by earlier releases were 0644.
fn restrict_permissions(path: &Path) -> std::io::Result<()> {
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

fn io_problem(e: std::io::Error) -> OpenProblem {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => OpenProblem::PermissionDenied,
        std::io::ErrorKind::ReadOnlyFilesystem => OpenProblem::ReadOnlyFilesystem,
        std::io::ErrorKind::IsADirectory => OpenProblem::NotAFile,
        _ => OpenProblem::Io(e),
    }
}

pub(super) fn database_problem(e: DatabaseError) -> OpenProblem {
    match e {
        DatabaseError::Storage(StorageError::Io(io)) => match io.kind() {
            std::io::ErrorKind::UnexpectedEof => OpenProblem::Truncated,
            _ => io_problem(io),
        },
        // redb says so in words; this is the one case an operator can act on differently.
        DatabaseError::Storage(StorageError::Corrupted(what)) if what.contains("truncated") => {
            OpenProblem::Truncated
        }
        DatabaseError::Storage(StorageError::Corrupted(what)) => OpenProblem::Damaged(what),
        DatabaseError::UpgradeRequired(version) => {
            OpenProblem::Format(format!("redb file format {version}"))
        }
        DatabaseError::RepairAborted => OpenProblem::Damaged("repair was aborted".into()),
        other => OpenProblem::Damaged(other.to_string()),
    }
}

/// Runs `f`, turning a panic into its message without printing a backtrace. The panic hook is
/// process-wide, so this is only for opening the file: at start, and on the writer thread
/// after a failed write, where a panic elsewhere in those few milliseconds would go unprinted
/// (it still takes its thread down as usual).
fn quietly_catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "the file's structure is inconsistent".into())
    })
}

/// Free bytes for unprivileged users on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lock tells a running server's file apart, even one overwritten under it.
    #[test]
    fn a_file_held_open_is_seen_whatever_it_holds() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("confab.redb");
        let db = open_database(&path, 1 << 20).expect("create");
        assert!(held_open(&path));
        std::fs::write(&path, b"not a database any more").expect("overwrite in place");
        assert!(held_open(&path), "overwritten under its server");
        drop(db);
        assert!(!held_open(&path), "closed");
        assert!(!held_open(&dir.path().join("absent.redb")));
    }
}
