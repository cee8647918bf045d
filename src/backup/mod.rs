//! Backups: one file holding a consistent copy of the database and every attachment
//! (format.rs), written from a running server without pausing it, verified the way
//! `confab check` checks a database, restored in place, and taken nightly.

mod format;
mod leftovers;
mod schedule;

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tempfile::TempPath;
use tokio_util::sync::CancellationToken;

use crate::background;
use crate::config::{Config, VERSION};
use crate::disk::PacedSync;
use crate::store::{self, Store, StoreError};
pub use format::FORMAT_VERSION;
use format::{BackupReader, BackupWriter, FormatError, Kind, Manifest};
pub use leftovers::{LEFTOVER_AGE, remove_near_backup, remove_restore_work, remove_verify_work};
pub use schedule::{BackupEntry, list_backups, prune, start_nightly};

/// The attachments' folder under the data directory; `tmp/` in it holds unfinished uploads.
const BLOBS: &str = "blobs";
const DATABASE: &str = "confab.redb";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("the backup {path} cannot be used: {source}")]
    Format { path: String, source: FormatError },
    #[error("the backup {0} has no database in it")]
    NoDatabase(String),
    #[error("the backup {path} failed verification: {problems}")]
    Invalid { path: String, problems: String },
    #[error("{0} already exists; choose another name or remove it first")]
    Exists(String),
    #[error("another backup to {0} is being written right now; wait for it to finish")]
    InProgress(String),
    /// The backup's folder takes no new file: named as FILE, not as a temporary file in it.
    #[error("cannot write {path}: {}", why_unwritable(.source))]
    Unwritable {
        path: String,
        source: std::io::Error,
    },
    /// Asked to stop (Ctrl-C, SIGTERM, the server shutting down, the console command that asked
    /// for it gone) before it was finished; its temporary files are removed.
    #[error("stopped before it was finished")]
    Stopped,
    #[error("{0}")]
    Task(String),
}

impl BackupError {
    /// A store error, where the store's "stopped" is the backup's.
    fn from_store(e: StoreError) -> BackupError {
        match e {
            StoreError::Stopped => BackupError::Stopped,
            other => BackupError::Store(other),
        }
    }
}

type Result<T, E = BackupError> = std::result::Result<T, E>;

/// Why a new file cannot be made, in an office IT person's words.
fn why_unwritable(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ReadOnlyFilesystem => "it is on a read-only filesystem".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::NotFound => "there is no such folder".into(),
        _ => e.to_string(),
    }
}

fn file_error(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::File {
        path: path.display().to_string(),
        source,
    }
}

/// What a finished backup holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
    pub files: u64,
    pub seconds: f64,
}

/// Where the database to back up lives.
pub enum Source<'a> {
    /// A running server's store: copied from one read transaction while it keeps writing.
    Live(&'a Store),
    /// The database file of a stopped server; it is only read.
    Stopped(&'a Path),
}

/// Writes a backup of `source` and the attachments under `data_dir` to `target`, through
/// `target.tmp`, fsync and a move that never replaces a file: `target` must not exist (it may
/// be an admin's file, or the live database itself), and is then the whole backup or absent.
/// Every way out but success, `stop` included, removes the temporary files (`target.tmp`, the
/// database copy `target.db.tmp`). For a running server the caller holds the blob sweep off
/// (`Blobs::pause_sweep`) until this returns, so every file the snapshot names is still there
/// to copy.
pub fn write_backup(
    source: Source<'_>,
    data_dir: &Path,
    target: &Path,
    stop: &CancellationToken,
) -> Result<Written> {
    let started = Instant::now();
    // Checked before any work; the move at the end refuses again if one appeared since.
    if std::fs::symlink_metadata(target).is_ok() {
        return Err(BackupError::Exists(target.display().to_string()));
    }
    // Made first: a folder that takes no file is reported before any work, naming `target`.
    let partial_path = sibling(target, ".tmp");
    let (out, _lock) = create_partial(&partial_path, target)?;
    // From here on every way out but success removes them (while the lock is still held).
    let partial = removed_on_drop(&partial_path)?;
    let snapshot = removed_on_drop(&sibling(target, ".db.tmp"))?;
    // The header is on disk at once: a run killed while the database is copied leaves a
    // FILE.tmp that starts like a backup, which is how a later run knows it for a leftover.
    let packer = BackupWriter::new(BufWriter::new(PacedSync::new(out)))
        .and_then(|mut packer| packer.flush().map(|()| packer))
        .map_err(file_error(&partial))?;
    leftovers::remove_near_backup(target);
    let blobs = data_dir.join(BLOBS);
    let files = snapshot_and_pack(source, &snapshot, &blobs, (packer, &partial), stop)?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "backup: packed");
    if stop.is_cancelled() {
        return Err(BackupError::Stopped);
    }
    move_to_new(&partial, target).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => BackupError::Exists(target.display().to_string()),
        _ => file_error(target)(e),
    })?;
    // It is `target` now, and the name free for another backup's partial file: not ours to remove.
    let _ = partial.keep();
    sync_dir(target.parent());
    drop(snapshot);
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "backup: copy removed"
    );
    let bytes = std::fs::metadata(target).map_or(0, |m| m.len());
    Ok(Written {
        path: target.to_owned(),
        bytes,
        files,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The backups a running server is writing (nightly, or for `confab backup`), so that shutting
/// down stops them and waits until each has removed its temporary files: the process ending
/// under a backup thread would leave them behind, a whole database copy perhaps.
#[derive(Clone, Default)]
pub struct Running {
    /// Cancelled at shutdown; each backup's own token is a child of it.
    stop: CancellationToken,
    /// Each backup thread holds a read guard until it has ended; shutdown takes the write lock.
    threads: Arc<tokio::sync::RwLock<()>>,
}

impl Running {
    /// A token for one backup: cancelled at shutdown, or on its own (its requester gone).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.child_token()
    }

    /// Whether the server is shutting down.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Runs a backup of a live server (`work`) on a thread of its own at the lowest CPU
    /// priority (see [`crate::background`]), until it ends or `stop` is cancelled.
    pub async fn in_background<T: Send + 'static>(
        &self,
        stop: CancellationToken,
        work: impl FnOnce(&CancellationToken) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let running = self.threads.clone().read_owned().await;
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("confab-backup".to_owned())
            .spawn(move || {
                // Released only once `work` has returned and removed what it made.
                let _running = running;
                background::lower_this_threads_priority(background::BACKUP_NICENESS);
                let _ = done.send(work(&stop));
            })
            .map_err(|e| BackupError::Task(format!("cannot start the backup thread: {e}")))?;
        result
            .await
            .map_err(|_| BackupError::Task("the backup thread stopped".to_owned()))?
    }

    /// Stops every backup in progress and waits until each has cleaned up after itself.
    pub async fn stop_all(&self) {
        self.stop.cancel();
        let _all_ended = self.threads.write().await;
    }
}

/// Writes the backup file: its header first, then its sections through [`PacedSync`].
type Packer = BackupWriter<BufWriter<PacedSync>>;

/// Copies the database to `snapshot`, then packs it and the attachments into `partial` (the
/// writer of the new file, its header written, and its path). Returns the number of attachments.
fn snapshot_and_pack(
    source: Source<'_>,
    snapshot: &Path,
    blobs: &Path,
    partial: (Packer, &Path),
    stop: &CancellationToken,
) -> Result<u64> {
    let created_at = store::now_millis();
    let started = Instant::now();
    let stopped = || stop.is_cancelled();
    match source {
        Source::Live(store) => store.snapshot_to(snapshot, &stopped),
        Source::Stopped(path) => store::snapshot_file(path, snapshot, &stopped),
    }
    .map_err(BackupError::from_store)?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "backup: database copied"
    );
    let schema = store::database_format(snapshot)?.map_or(store::SCHEMA, |f| f.schema);
    let manifest = Manifest {
        created_at,
        confab: VERSION.to_owned(),
        schema,
    };
    write_container(partial, &manifest, snapshot, blobs, stop)
}

fn write_container(
    (mut writer, path): (Packer, &Path),
    manifest: &Manifest,
    snapshot: &Path,
    blobs: &Path,
    stop: &CancellationToken,
) -> Result<u64> {
    let manifest = serde_json::to_vec(manifest).map_err(|e| BackupError::Task(e.to_string()))?;
    writer
        .section(
            Kind::Manifest,
            Manifest::NAME,
            manifest.len() as u64,
            &mut manifest.as_slice(),
        )
        .map_err(file_error(path))?;
    append_file(&mut writer, Kind::Database, DATABASE, snapshot, stop)?;
    let mut files = 0;
    for (name, blob) in blob_files(blobs)? {
        append_file(&mut writer, Kind::File, &name, &blob, stop)?;
        files += 1;
    }
    let mut out = writer
        .finish()
        .and_then(|out| out.into_inner().map_err(|e| e.into_error()))
        .map_err(file_error(path))?;
    out.sync_all().map_err(file_error(path))?;
    Ok(files)
}

fn append_file<W: Write>(
    writer: &mut BackupWriter<W>,
    kind: Kind,
    name: &str,
    path: &Path,
    stop: &CancellationToken,
) -> Result<()> {
    let file = File::open(path).map_err(file_error(path))?;
    let len = file.metadata().map_err(file_error(path))?.len();
    let mut data = Stoppable {
        inner: BufReader::new(file),
        stop,
    };
    writer
        .section(kind, name, len, &mut data)
        .map_err(|e| stopped_or(stop, file_error(path)(e)))
}

/// A reader that fails once `stop` is cancelled, so a multi-GB section ends within a read.
struct Stoppable<'a, R> {
    inner: R,
    stop: &'a CancellationToken,
}

impl<R: Read> Read for Stoppable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.is_cancelled() {
            return Err(std::io::Error::other("stopped"));
        }
        self.inner.read(buf)
    }
}

/// [`BackupError::Stopped`] if `stop` is why `e` happened.
fn stopped_or(stop: &CancellationToken, e: BackupError) -> BackupError {
    if stop.is_cancelled() {
        BackupError::Stopped
    } else {
        e
    }
}

/// Every attachment under `blobs/` as ("ab/<hash>", path), sorted; unfinished uploads in
/// `tmp/` and anything not named like an attachment are left out.
fn blob_files(blobs: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    let shards = match std::fs::read_dir(blobs) {
        Ok(shards) => shards,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(file_error(blobs)(e)),
    };
    for shard in shards {
        let shard = shard.map_err(file_error(blobs))?.path();
        if !shard.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&shard).map_err(file_error(&shard))? {
            let path = entry.map_err(file_error(&shard))?.path();
            let name = blob_name(&path);
            if let Some(name) = name.filter(|n| is_blob_name(n)) {
                found.push((name, path));
            }
        }
    }
    found.sort();
    Ok(found)
}

fn blob_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let shard = path.parent()?.file_name()?.to_str()?;
    Some(format!("{shard}/{file}"))
}

/// "ab/ab…" with 64 lower-case hex digits: the only names a backup writes or restores, so a
/// crafted backup can never name a path outside the attachments folder.
fn is_blob_name(name: &str) -> bool {
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    match name.split_once('/') {
        Some((shard, hash)) => {
            shard.len() == 2 && hash.len() == 64 && hex(hash) && hash.starts_with(shard)
        }
        None => false,
    }
}

/// What `confab backup --verify` reports.
#[derive(Debug)]
pub struct Verified {
    pub manifest: Manifest,
    pub bytes: u64,
    pub users: u64,
    pub conversations: u64,
    pub messages: u64,
    pub files: u64,
    /// Everything wrong with it; a usable backup has none.
    pub problems: Vec<String>,
}

impl Verified {
    /// How long ago its snapshot was taken.
    pub fn age(&self) -> Duration {
        Duration::from_millis(store::now_millis().saturating_sub(self.manifest.created_at))
    }
}

/// Reads the backup at `path` once: checks its checksum, unpacks the database (and, with
/// `keep_files`, the attachments) into `work_dir`, checks every attachment against its hash
/// and the database as `confab check` does. The caller removes `work_dir`, whatever the outcome.
pub fn verify(
    path: &Path,
    work_dir: &Path,
    keep_files: bool,
    stop: &CancellationToken,
) -> Result<Verified> {
    let format_error = |source| BackupError::Format {
        path: path.display().to_string(),
        source,
    };
    let input = File::open(path).map_err(file_error(path))?;
    let bytes = input.metadata().map_err(file_error(path))?.len();
    let mut reader = BackupReader::new(BufReader::new(input)).map_err(format_error)?;
    let mut manifest = None;
    let mut database = false;
    let mut files = 0;
    let mut problems = Vec::new();
    while let Some(section) = reader.next_section().map_err(format_error)? {
        match section.kind {
            Kind::Manifest => {
                let data = reader.data_to_vec(section.len).map_err(format_error)?;
                manifest = Some(Manifest::parse(&data).map_err(format_error)?);
            }
            Kind::Database if !database && section.name == DATABASE => {
                let target = work_dir.join(DATABASE);
                unpack(&mut reader.data(section.len), section.len, &target, stop)?;
                database = true;
            }
            Kind::File if is_blob_name(&section.name) => {
                let target = keep_files.then(|| work_dir.join(BLOBS).join(&section.name));
                let hash = unpack_file(&mut reader.data(section.len), section.len, target, stop)?;
                if !section.name.ends_with(&hash) {
                    problems.push(format!(
                        "attachment {} does not match its hash (it is {hash})",
                        section.name
                    ));
                }
                files += 1;
            }
            _ => {
                return Err(format_error(FormatError::Bad(format!(
                    "an unexpected section {:?} named {:?}",
                    section.kind, section.name
                ))));
            }
        }
    }
    reader.finish().map_err(format_error)?;
    let manifest = manifest.ok_or_else(|| format_error(FormatError::Bad("no manifest".into())))?;
    if !database {
        return Err(BackupError::NoDatabase(path.display().to_string()));
    }
    if manifest.schema > store::SCHEMA {
        problems.push(format!(
            "it holds database format {}, made by confab {}; this confab {VERSION} reads formats up to {}",
            manifest.schema,
            manifest.confab,
            store::SCHEMA
        ));
    }
    if stop.is_cancelled() {
        return Err(BackupError::Stopped);
    }
    let report = store::check(&work_dir.join(DATABASE), false)?;
    problems.extend(report.problems);
    Ok(Verified {
        manifest,
        bytes,
        users: report.users,
        conversations: report.conversations,
        messages: report.messages,
        files,
        problems,
    })
}

/// A folder to verify a backup in, in the system's temporary folder; removed when dropped. What
/// verifies killed outright left there is removed first, once a day old.
pub fn verify_work_dir() -> Result<tempfile::TempDir> {
    remove_verify_work();
    tempfile::Builder::new()
        .prefix(leftovers::VERIFY_PREFIX)
        .tempdir()
        .map_err(|e| BackupError::Task(format!("cannot make a temporary folder: {e}")))
}

/// Writes exactly `len` bytes of `data` to a new file at `target`, synced.
fn unpack(data: &mut impl Read, len: u64, target: &Path, stop: &CancellationToken) -> Result<()> {
    unpack_file(data, len, Some(target.to_owned()), stop).map(|_| ())
}

/// Copies a section to `target` (or nowhere) and returns its SHA-256 in hex.
fn unpack_file(
    data: &mut impl Read,
    len: u64,
    target: Option<PathBuf>,
    stop: &CancellationToken,
) -> Result<String> {
    let mut out = match &target {
        Some(path) => {
            if let Some(dir) = path.parent() {
                create_private_dir(dir).map_err(file_error(dir))?;
            }
            Some(BufWriter::new(
                create_private_file(path).map_err(file_error(path))?,
            ))
        }
        None => None,
    };
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut copied = 0u64;
    loop {
        if stop.is_cancelled() {
            return Err(BackupError::Stopped);
        }
        let n = data.read(&mut buf).map_err(|source| BackupError::File {
            path: "the backup".into(),
            source,
        })?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        if let (Some(out), Some(path)) = (&mut out, &target) {
            out.write_all(&buf[..n]).map_err(file_error(path))?;
        }
        copied += n as u64;
    }
    if copied != len {
        return Err(BackupError::Format {
            path: "the backup".into(),
            source: FormatError::Truncated,
        });
    }
    if let (Some(out), Some(path)) = (out, &target) {
        let file = out
            .into_inner()
            .map_err(|e| file_error(path)(e.into_error()))?;
        file.sync_all().map_err(file_error(path))?;
    }
    Ok(hex(&hash.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What `confab restore` did.
#[derive(Debug)]
pub struct Restored {
    pub verified: Verified,
    /// Where the database that was in place went, if there was one.
    pub previous: Option<PathBuf>,
    /// What was wrong with it, if it could not be opened: "/…/confab.redb is damaged (…)".
    pub damaged: Option<String>,
}

/// Replaces the data in `config.data_dir` with the backup at `path`. The server must be
/// stopped (the caller checks its control socket; the database lock is checked here). The
/// backup is verified in full before anything is touched; the current database is kept as
/// `confab.redb.<UTC time>.before-restore`, and the search index is removed so it rebuilds.
/// A damaged or foreign current file is kept aside the same way: that is when a restore is
/// needed most. The backup is unpacked into a `.restore-*` folder in the data directory,
/// removed on every way out; `stop` is heeded until the current database is touched, after
/// which the few renames left are finished.
pub fn restore(config: &Config, path: &Path, stop: &CancellationToken) -> Result<Restored> {
    let database = config.database_path();
    let damaged = match store::database_format(&database) {
        Ok(_) => None,
        Err(StoreError::InUse) => return Err(StoreError::InUse.into()),
        // A file that cannot be read may still be a running server's.
        Err(_) if store::held_open(&database) => return Err(StoreError::InUse.into()),
        Err(StoreError::Open { path, problem }) => Some(format!("{path} {problem}")),
        Err(e) => Some(e.to_string()),
    };
    leftovers::remove_restore_work(&config.data_dir);
    let work = tempfile::Builder::new()
        .prefix(leftovers::RESTORE_PREFIX)
        .tempdir_in(&config.data_dir)
        .map_err(file_error(&config.data_dir))?;
    let verified = verify(path, work.path(), true, stop)?;
    if !verified.problems.is_empty() {
        return Err(BackupError::Invalid {
            path: path.display().to_string(),
            problems: verified.problems.join("; "),
        });
    }
    if stop.is_cancelled() {
        return Err(BackupError::Stopped);
    }
    let previous = if database.exists() {
        Some(keep_aside(&database)?)
    } else {
        None
    };
    std::fs::rename(work.path().join(DATABASE), &database).map_err(file_error(&database))?;
    move_blobs(&work.path().join(BLOBS), &config.data_dir.join(BLOBS))?;
    match std::fs::remove_dir_all(config.search_dir()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(file_error(&config.search_dir())(e)),
    }
    sync_dir(Some(&config.data_dir));
    Ok(Restored {
        verified,
        previous,
        damaged,
    })
}

/// Moves the database aside as `confab.redb.<UTC time>.before-restore`, or as
/// `…<time>-2.before-restore` (and so on) if a restore in the same second already kept one
/// there: that one may be the office's only copy of its data, so it is never replaced.
fn keep_aside(database: &Path) -> Result<PathBuf> {
    let stamp = utc_stamp(store::now_secs());
    let mut n = 1;
    loop {
        let kept = match n {
            1 => sibling(database, &format!(".{stamp}.before-restore")),
            _ => sibling(database, &format!(".{stamp}-{n}.before-restore")),
        };
        match move_to_new(database, &kept) {
            Ok(()) => return Ok(kept),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(file_error(database)(e)),
        }
    }
}

/// Moves unpacked attachments into place. Names are content hashes, so one already there is
/// the same file and stays.
fn move_blobs(from: &Path, to: &Path) -> Result<()> {
    for (name, path) in blob_files(from)? {
        let target = to.join(&name);
        if target.exists() {
            continue;
        }
        if let Some(dir) = target.parent() {
            create_private_dir(dir).map_err(file_error(dir))?;
        }
        std::fs::rename(&path, &target).map_err(file_error(&target))?;
    }
    Ok(())
}

/// Creates `target`'s partial file (`path`) and locks it (flock) for as long as the returned
/// lock lives: a second backup to the same FILE finds it locked and is refused, instead of
/// replacing a file being written, while one left by a killed run is unlocked and replaced.
/// Where the filesystem has no such locks (some network shares) it is replaced, as before.
fn create_partial(path: &Path, target: &Path) -> Result<(File, Option<File>)> {
    if let Ok(existing) = File::open(path)
        && !try_lock(&existing)
    {
        return Err(BackupError::InProgress(target.display().to_string()));
    }
    let out = create_private_file(path).map_err(|source| BackupError::Unwritable {
        path: target.display().to_string(),
        source,
    })?;
    try_lock(&out);
    // A copy of the descriptor holds the lock on after `out` is closed, until the move.
    let lock = out.try_clone().ok();
    Ok((out, lock))
}

/// Takes `file`'s lock without waiting; false only if another process holds it.
fn try_lock(file: &File) -> bool {
    use rustix::fs::{FlockOperation, flock};
    !matches!(
        flock(file, FlockOperation::NonBlockingLockExclusive),
        Err(rustix::io::Errno::WOULDBLOCK)
    )
}

/// A guard that removes the file at `path` when dropped, unless it is kept.
fn removed_on_drop(path: &Path) -> Result<TempPath> {
    TempPath::try_from_path(path).map_err(|e| {
        let _ = std::fs::remove_file(path);
        file_error(path)(e)
    })
}

/// A new, empty file at `path` that only its owner can read: a backup holds the whole database,
/// password hashes and the session-signing key with it, like `confab.redb` (0600). One left
/// behind by an interrupted run is replaced, since an existing file would keep its mode.
fn create_private_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Folders a backup creates are owner-only (0700), like the data directory; one that already
/// exists keeps the mode its owner gave it.
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Moves the file `from` to `to` only if nothing is at `to` (AlreadyExists otherwise), in one
/// atomic step: a rename that refuses to replace (Linux's RENAME_NOREPLACE, which ext4, XFS,
/// btrfs and FAT sticks have), else a hard link (NFS), which refuses just the same.
fn move_to_new(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        use rustix::io::Errno;
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            // This filesystem (or kernel) has no such rename: link instead.
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
            Err(e) => return Err(e.into()),
        }
    }
    link_to_new(from, to)
}

/// [`move_to_new`] by a hard link and removing `from`.
fn link_to_new(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::hard_link(from, to)?;
    // `to` is complete now; a leftover `from` is replaced by the next backup to this name.
    let _ = std::fs::remove_file(from);
    Ok(())
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Makes renames in `dir` durable. Best effort: the files themselves are already synced.
fn sync_dir(dir: Option<&Path>) {
    if let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
}

/// "20261123-190512": a UTC time for file names, sorting in time order.
pub fn utc_stamp(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// H. Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_calendar_times() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(1_795_460_712), "20261123-190512");
    }

    #[test]
    fn only_attachment_names_are_accepted() {
        let hash = "ab".repeat(32);
        assert!(is_blob_name(&format!("ab/{hash}")));
        assert!(!is_blob_name(&format!("cd/{hash}")));
        assert!(!is_blob_name(&format!("../{hash}")));
        assert!(!is_blob_name("ab/../../etc/passwd"));
        assert!(!is_blob_name(&format!("tmp/{hash}")));
        assert!(!is_blob_name(&format!("ab/{}", hash.to_uppercase())));
    }

    #[test]
    fn a_backup_to_an_existing_file_is_refused_before_any_work() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("p.txt");
        std::fs::write(&target, "precious").expect("write");
        // No database at all: the refusal comes before anything is read.
        let database = dir.path().join(DATABASE);
        let stop = CancellationToken::new();
        let refused = write_backup(Source::Stopped(&database), dir.path(), &target, &stop);
        match refused {
            Err(e @ BackupError::Exists(_)) => assert_eq!(
                e.to_string(),
                format!(
                    "{} already exists; choose another name or remove it first",
                    target.display()
                )
            ),
            other => panic!("not refused: {other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "precious");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["p.txt"], "nothing is left behind");
    }

    /// A second backup to the same FILE leaves the first one's partial file alone; a partial
    /// file nobody holds (its run was killed) is replaced.
    #[test]
    fn a_backup_to_a_file_being_written_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("office.backup");
        let partial = sibling(&target, ".tmp");
        let (_first, _lock) = create_partial(&partial, &target).expect("first");
        std::fs::write(&partial, "being written").expect("write");
        let database = dir.path().join(DATABASE);
        let stop = CancellationToken::new();
        let refused = write_backup(Source::Stopped(&database), dir.path(), &target, &stop);
        assert!(
            matches!(refused, Err(BackupError::InProgress(_))),
            "{refused:?}"
        );
        assert_eq!(
            std::fs::read_to_string(&partial).expect("read"),
            "being written"
        );
        drop((_first, _lock));
        let (_second, _lock) = create_partial(&partial, &target).expect("replaced");
        assert_eq!(std::fs::read_to_string(&partial).expect("read"), "");
    }

    /// Both ways of moving a finished backup into place leave a file already there alone.
    #[test]
    fn a_finished_backup_never_replaces_a_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (from, to) = (dir.path().join("new.tmp"), dir.path().join("taken"));
        std::fs::write(&to, "precious").expect("write");
        std::fs::write(&from, "backup").expect("write");
        let e = move_to_new(&from, &to).expect_err("replaced by rename");
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        let e = link_to_new(&from, &to).expect_err("replaced by link");
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&to).expect("read"), "precious");

        let fresh = dir.path().join("fresh");
        link_to_new(&from, &fresh).expect("link to a new name");
        assert_eq!(std::fs::read_to_string(&fresh).expect("read"), "backup");
        assert!(!from.exists(), "the partial file is gone");
        std::fs::write(&from, "second").expect("write");
        let other = dir.path().join("other");
        move_to_new(&from, &other).expect("rename to a new name");
        assert_eq!(std::fs::read_to_string(&other).expect("read"), "second");
        assert!(!from.exists());
    }
}
