//! What interrupted backups, verifies and restores left behind, removed by a later run.
//!
//! A run that fails or is stopped (Ctrl-C, SIGTERM) removes its own temporary files; one killed
//! outright (SIGKILL, the OOM killer, a power cut) cannot. Its files are recognised by name (and,
//! in a folder that is not confab's own, by their first bytes) and removed once nothing has
//! touched them for a day. A run in progress touches its files far more often than that, so the
//! rule needs no lock and holds on any filesystem, a NAS share included.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// An unfinished file or folder untouched this long was left by a run that was interrupted.
pub const LEFTOVER_AGE: Duration = Duration::from_secs(24 * 3600);

/// What a backup to FILE writes next to it before FILE is complete: the packed file, the
/// database copy, and the store's file that copy is written through (see `write_backup`).
pub(super) const UNFINISHED: [&str; 3] = [".tmp", ".db.tmp", ".db.tmp.tmp"];

/// Where `confab restore` unpacks a backup, in the data directory (same filesystem, so the
/// database is moved into place by a rename).
pub(super) const RESTORE_PREFIX: &str = ".restore-";
/// Where `confab backup --verify` unpacks a backup, in the system's temporary folder.
pub(super) const VERIFY_PREFIX: &str = "confab-verify-";

/// The first bytes of a backup (format.rs) and of a redb database: a `*.tmp` file in an
/// admin's folder is removed only if it starts with one of them.
const BACKUP_MAGIC: &[u8] = b"CONFABBK";
const REDB_MAGIC: &[u8] = b"redb\x1a\x0a\xa9\x0d\x0a";

/// Removes what interrupted backups left next to `target`, in its folder (any name: an office
/// that dates its backup files never writes the same name twice). Only files named like a
/// backup's temporaries are candidates, and only if they start like a backup or a database,
/// or are the database copy of a partial backup that does (redb may not have written its
/// header yet when the run was killed).
pub fn remove_near_backup(target: &Path) {
    let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return;
    };
    report(
        dir,
        remove_stale(dir, |name, path| {
            let partial_of_copy = [".db.tmp.tmp", ".db.tmp"]
                .iter()
                .find_map(|end| name.strip_suffix(end))
                .map(|stem| dir.join(format!("{stem}.tmp")));
            UNFINISHED.iter().any(|end| name.ends_with(end))
                && (written_by_confab(path)
                    || partial_of_copy.is_some_and(|p| written_by_confab(&p)))
        }),
    );
}

/// Removes the work folders of restores interrupted in `data_dir`.
pub fn remove_restore_work(data_dir: &Path) {
    report(
        data_dir,
        remove_stale(data_dir, |name, path| {
            name.starts_with(RESTORE_PREFIX) && path.is_dir()
        }),
    );
}

/// Removes the work folders of verifies interrupted in the system's temporary folder.
pub fn remove_verify_work() {
    let dir = std::env::temp_dir();
    report(
        &dir,
        remove_stale(&dir, |name, path| {
            name.starts_with(VERIFY_PREFIX) && path.is_dir()
        }),
    );
}

/// Cleaning up is a courtesy: a folder that cannot be read never fails the command itself.
fn report(dir: &Path, removed: std::io::Result<usize>) {
    if let Err(e) = removed {
        tracing::warn!(folder = %dir.display(), error = %e, "cannot look for what interrupted backups left");
    }
}

/// Removes every entry of `dir` that is `ours` (by name and path) and untouched for
/// [`LEFTOVER_AGE`]; returns how many went.
pub(super) fn remove_stale(
    dir: &Path,
    ours: impl Fn(&str, &Path) -> bool,
) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    // All judged before any goes: whether one is ours may depend on another (see above).
    let mut stale = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        // Never followed: a link named like ours points at something that is not.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() || !ours(&name, &path) {
            continue;
        }
        if untouched_for(&path).is_some_and(|age| age > LEFTOVER_AGE) {
            stale.push((path, meta.is_dir()));
        }
    }
    let mut removed = 0;
    for (path, is_dir) in stale {
        let gone = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match gone {
            Ok(()) => {
                tracing::info!(file = %path.display(), "removed what an interrupted run left");
                removed += 1;
            }
            // Another run's cleanup got there first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// How long since anything in `path` changed: for a folder, its newest file (a restore writes
/// into its folder for minutes without the folder's own time changing). `None` if unknown.
fn untouched_for(path: &Path) -> Option<Duration> {
    let newest = newest_change(path)?;
    Some(SystemTime::now().duration_since(newest).unwrap_or_default())
}

fn newest_change(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let mut newest = meta.modified().ok()?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).ok()? {
            let inner = newest_change(&entry.ok()?.path())?;
            newest = newest.max(inner);
        }
    }
    Some(newest)
}

/// Whether the file at `path` starts as a backup or a redb database does.
fn written_by_confab(path: &Path) -> bool {
    let mut start = [0u8; 9];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut start));
    read.is_ok() && (start.starts_with(BACKUP_MAGIC) || start.starts_with(REDB_MAGIC))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, days: u64) {
        let when = SystemTime::now() - Duration::from_secs(days * 86_400);
        std::fs::File::open(path)
            .and_then(|f| f.set_modified(when))
            .expect("set mtime");
    }

    #[test]
    fn only_stale_files_that_are_ours_go() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = |name: &str, bytes: &[u8], days| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).expect("write");
            age(&path, days);
        };
        file("a.backup.tmp", b"CONFABBK\x01\0\0\0", 2);
        file("a.backup.db.tmp", b"redb\x1a\x0a\xa9\x0d\x0a....", 2);
        file("b.backup.db.tmp.tmp", b"redb\x1a\x0a\xa9\x0d\x0a....", 2);
        file("fresh.backup.tmp", b"CONFABBK\x01\0\0\0", 0);
        file("notes.tmp", b"an admin's notes", 2);
        file("short.tmp", b"CON", 2);
        file("old.backup", b"CONFABBK\x01\0\0\0", 2);
        // Killed before redb wrote a byte of its copy; its partial backup says whose it is.
        file("c.backup.tmp", b"CONFABBK\x01\0\0\0", 2);
        file("c.backup.db.tmp.tmp", b"", 2);
        file("d.backup.db.tmp", b"", 2);
        remove_near_backup(&dir.path().join("new.backup"));
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "d.backup.db.tmp",
                "fresh.backup.tmp",
                "notes.tmp",
                "old.backup",
                "short.tmp"
            ]
        );
    }

    #[test]
    fn a_folder_is_as_fresh_as_its_newest_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, inner_days) in [(".restore-old", 2), (".restore-busy", 0)] {
            let work = dir.path().join(name);
            std::fs::create_dir(&work).expect("mkdir");
            std::fs::write(work.join("confab.redb"), "x").expect("write");
            age(&work.join("confab.redb"), inner_days);
            age(&work, 2);
        }
        remove_restore_work(dir.path());
        assert!(!dir.path().join(".restore-old").exists());
        assert!(dir.path().join(".restore-busy").exists());
    }
}
