//! How the server is doing: the values `/metrics` reads at scrape time, and the few figures
//! the admin page shows a person (uptime, people online, messages today, disk, last backup).

use std::path::Path;

use serde::Serialize;

use crate::app::App;
use crate::backup;
use crate::config::{Config, VERSION};
use crate::metrics::Live;
use crate::store::{self, StoreError};

/// The admin page's "Server" section (`GET /api/admin/status`).
#[derive(Debug, Serialize)]
pub struct ServerStatus {
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub online_users: usize,
    pub open_websockets: usize,
    /// Messages sent since `since` (unix ms): the page asks from its local midnight.
    pub messages_since: u64,
    pub since: u64,
    pub disk: DiskUsage,
    pub backups: BackupStatus,
}

#[derive(Debug, Serialize)]
pub struct DiskUsage {
    pub database_bytes: u64,
    /// Everything in the data directory: database, search index, keys.
    pub data_dir_bytes: u64,
    /// Free for the server on the data directory's filesystem; `None` if it cannot be read.
    pub free_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct BackupStatus {
    /// Whether the server takes backups by itself.
    pub configured: bool,
    /// The newest backup, if any.
    pub last: Option<LastBackup>,
}

#[derive(Debug, Serialize)]
pub struct LastBackup {
    pub file: String,
    pub bytes: u64,
    /// Unix seconds.
    pub at: u64,
}

/// Values for `/metrics` that belong to the hub and the disk, read now. The filesystem
/// calls are two `stat`s: cheap enough for a scrape, but still blocking.
pub fn live(app: &App) -> Live {
    let load = app.hub.load();
    Live {
        open_websockets: load.open_websockets as u64,
        online_users: load.online_users as u64,
        writer_queue: load.writer_queue as u64,
        database_bytes: std::fs::metadata(app.config.database_path())
            .ok()
            .map(|m| m.len()),
        disk_free_bytes: store::free_bytes(&app.config.data_dir),
    }
}

/// Blocking (reads the database and walks the data directory): call from a blocking task.
pub fn server_status(app: &App, since: u64) -> Result<ServerStatus, StoreError> {
    let load = app.hub.load();
    let config = &app.config;
    Ok(ServerStatus {
        version: VERSION,
        uptime_seconds: app.metrics.uptime().as_secs(),
        online_users: load.online_users,
        open_websockets: load.open_websockets,
        messages_since: app.store.messages_since(since)?,
        since,
        disk: DiskUsage {
            database_bytes: std::fs::metadata(config.database_path()).map_or(0, |m| m.len()),
            data_dir_bytes: directory_bytes(&config.data_dir),
            free_bytes: store::free_bytes(&config.data_dir),
        },
        backups: last_backup(config),
    })
}

/// The newest automatic backup in `--backup-dir`, when the server takes them.
fn last_backup(config: &Config) -> BackupStatus {
    let Some(dir) = &config.backup_dir else {
        return BackupStatus {
            configured: false,
            last: None,
        };
    };
    let newest = backup::list_backups(dir)
        .ok()
        .and_then(|found| found.into_iter().next());
    BackupStatus {
        configured: true,
        last: newest.map(|entry| LastBackup {
            file: entry.name,
            bytes: entry.size,
            at: entry.created_at,
        }),
    }
}

/// Bytes in the files under `dir`, without following links; unreadable entries count 0.
fn directory_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => directory_bytes(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}
