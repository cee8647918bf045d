//! Nightly backups into `--backup-dir`, keeping the newest `--backup-keep`.
//!
//! A backup is due 24 hours after the newest one in the folder, so the first is taken when the
//! server starts, and a server that was off at night catches up as soon as it runs again.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

use super::leftovers::{UNFINISHED, remove_stale};
use super::{Running, Source, utc_stamp, write_backup};
use crate::blobs::Blobs;
use crate::store::{self, Store};

/// Time between automatic backups.
const INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// How often the schedule looks again, so a changed clock or folder is noticed.
const RECHECK: Duration = Duration::from_secs(10 * 60);
/// After a failed backup, the next try waits this long.
const RETRY: Duration = Duration::from_secs(3600);
const PREFIX: &str = "confab-";
const SUFFIX: &str = ".backup";

/// One backup file in the folder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupEntry {
    pub name: String,
    pub size: u64,
    /// Unix seconds when it was written.
    pub created_at: u64,
    #[serde(skip)]
    pub path: PathBuf,
}

/// The automatic backups in `dir`, newest first. Only files named like ours are listed (and
/// ever pruned): the folder may hold other things.
pub fn list_backups(dir: &Path) -> std::io::Result<Vec<BackupEntry>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(PREFIX) && name.ends_with(SUFFIX)) {
            continue;
        }
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        let created_at = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        found.push(BackupEntry {
            name,
            size: meta.len(),
            created_at,
            path: entry.path(),
        });
    }
    found.sort_by(|a, b| (b.created_at, &b.name).cmp(&(a.created_at, &a.name)));
    Ok(found)
}

/// Deletes all but the newest `keep` backups in `dir`; returns how many went.
pub fn prune(dir: &Path, keep: usize) -> std::io::Result<usize> {
    let mut removed = 0;
    for old in list_backups(dir)?.into_iter().skip(keep.max(1)) {
        std::fs::remove_file(&old.path)?;
        tracing::info!(backup = %old.path.display(), "removed an old backup");
        removed += 1;
    }
    remove_leftovers(dir)?;
    Ok(removed)
}

/// Removes what interrupted automatic backups left in `dir` (a whole database copy, perhaps),
/// which would otherwise stay for good. The folder is confab's own: names alone say what is ours.
fn remove_leftovers(dir: &Path) -> std::io::Result<()> {
    remove_stale(dir, |name, path| {
        path.is_file()
            && name.strip_prefix(PREFIX).is_some_and(|rest| {
                UNFINISHED
                    .iter()
                    .any(|end| rest.ends_with(&format!("{SUFFIX}{end}")))
            })
    })?;
    Ok(())
}

/// How long until the next backup is due: none yet, or the newest is 24 hours old.
fn due_in(dir: &Path) -> Duration {
    let newest = list_backups(dir)
        .ok()
        .and_then(|list| list.first().map(|b| b.created_at));
    match newest {
        Some(at) => {
            let due = at + INTERVAL.as_secs();
            Duration::from_secs(due.saturating_sub(store::now_secs()))
        }
        None => Duration::ZERO,
    }
}

/// Takes a backup into `dir` whenever one is due, for as long as the server runs.
pub fn start_nightly(
    running: Running,
    store: Store,
    blobs: Blobs,
    data_dir: PathBuf,
    dir: PathBuf,
    keep: usize,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let wait = due_in(&dir);
            if !wait.is_zero() {
                tokio::time::sleep(wait.min(RECHECK)).await;
                continue;
            }
            if !take_one(&running, &store, &blobs, &data_dir, &dir, keep).await {
                tokio::time::sleep(RETRY).await;
            }
        }
    })
}

/// One automatic backup and the pruning after it; false if it failed (and was logged).
async fn take_one(
    running: &Running,
    store: &Store,
    blobs: &Blobs,
    data_dir: &Path,
    dir: &Path,
    keep: usize,
) -> bool {
    let target = dir.join(format!("{PREFIX}{}{SUFFIX}", utc_stamp(store::now_secs())));
    let (store, data_dir, dir) = (store.clone(), data_dir.to_owned(), dir.to_owned());
    let sweep_paused = blobs.pause_sweep().await;
    let done = running
        .in_background(running.stop_token(), move |stop| {
            let _sweep_paused = sweep_paused;
            super::create_private_dir(&dir).map_err(super::file_error(&dir))?;
            let written = write_backup(Source::Live(&store), &data_dir, &target, stop)?;
            let removed = prune(&dir, keep).map_err(super::file_error(&dir))?;
            Ok::<_, super::BackupError>((written, removed))
        })
        .await;
    match done {
        Ok((written, removed)) => {
            tracing::info!(
                backup = %written.path.display(),
                bytes = written.bytes,
                files = written.files,
                seconds = format!("{:.1}", written.seconds),
                removed,
                "automatic backup written"
            );
            true
        }
        Err(super::BackupError::Stopped) => {
            tracing::info!("automatic backup stopped: the server is shutting down");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "automatic backup failed; trying again in an hour");
            false
        }
    }
}
