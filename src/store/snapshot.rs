//! Consistent copies of the database: every table as one read transaction sees it, written
//! into a fresh database file. A read transaction never blocks the writer, so a server keeps
//! committing messages while its copy is made; they are simply not in it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, Key, ReadTransaction, ReadableTable, TableDefinition, TableError,
    TableHandle, Value, WriteTransaction,
};

use super::{Result, Store, StoreError, TABLES, file};

/// Rows copied per write transaction of the copy: bounds its memory, and each commit's fsync
/// keeps the disk's write-back queue short, so the server's own commits never wait behind a
/// huge flush.
const ROWS_PER_COMMIT: usize = 5_000;

/// A table of the catalog, whatever its key and value types.
pub(super) trait CatalogTable {
    fn name(&self) -> &str;
    /// Creates the table if the file has none.
    fn create(&self, txn: &WriteTransaction) -> Result<()>;
    /// Copies every row of the table as `from` sees it into `to`; a table `from` does not
    /// have (a file from an older release) is created empty. Returns the rows copied, or
    /// [`StoreError::Stopped`] as soon as `stop` says so.
    fn copy(&self, from: &ReadTransaction, to: &Database, stop: Stop<'_>) -> Result<u64>;
}

impl<K: Key + 'static, V: Value + 'static> CatalogTable for TableDefinition<'static, K, V> {
    fn name(&self) -> &str {
        TableHandle::name(self)
    }

    fn create(&self, txn: &WriteTransaction) -> Result<()> {
        txn.open_table(*self)?;
        Ok(())
    }

    fn copy(&self, from: &ReadTransaction, to: &Database, stop: Stop<'_>) -> Result<u64> {
        let source = match from.open_table(*self) {
            Ok(table) => Some(table),
            Err(TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let mut rows = match &source {
            Some(table) => Some(table.iter()?),
            None => None,
        };
        let mut copied = 0;
        loop {
            let txn = begin_copy(to)?;
            let mut in_commit = 0;
            {
                let mut target = txn.open_table(*self)?;
                for _ in 0..ROWS_PER_COMMIT {
                    if stop() {
                        return Err(StoreError::Stopped);
                    }
                    let Some(entry) = rows.as_mut().and_then(|r| r.next()) else {
                        break;
                    };
                    let (key, value) = entry?;
                    target.insert(key.value(), value.value())?;
                    in_commit += 1;
                }
            }
            txn.commit()?;
            copied += in_commit as u64;
            if in_commit < ROWS_PER_COMMIT {
                return Ok(copied);
            }
        }
    }
}

/// Whether a copy in progress should stop (Ctrl-C, shutdown): checked for every row.
pub type Stop<'a> = &'a dyn Fn() -> bool;

fn begin_copy(to: &Database) -> Result<WriteTransaction> {
    let mut txn = to.begin_write()?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| StoreError::Task(e.to_string()))?;
    Ok(txn)
}

/// Writes every table as `txn` sees it to a new database at `target`, through `target.tmp`
/// and a rename, so `target` is either the whole copy or absent: `target.tmp` is removed on
/// every way out, `stop` included. Refuses a database with a table the catalog does not list:
/// such a copy would silently miss data.
pub(super) fn write_atomically(txn: ReadTransaction, target: &Path, stop: Stop<'_>) -> Result<()> {
    // The scrub's filler is zeros that exist only while a scrub runs: nothing to keep.
    let filler = TableHandle::name(&super::scrub::SCRUB);
    let known: BTreeSet<&str> = TABLES.iter().map(|t| t.name()).chain([filler]).collect();
    for handle in txn.list_tables()? {
        if !known.contains(handle.name()) {
            return Err(StoreError::Task(format!(
                "the database has a table this confab does not know ({}); a copy would miss it",
                handle.name()
            )));
        }
    }
    let temporary = with_suffix(target, ".tmp");
    let _ = std::fs::remove_file(&temporary);
    let temporary =
        tempfile::TempPath::try_from_path(temporary).map_err(|e| StoreError::Database(e.into()))?;
    let written = write_copy(&txn, &temporary, stop);
    drop(txn);
    written?;
    std::fs::rename(&temporary, target).map_err(|e| StoreError::Database(e.into()))?;
    // Renamed: nothing left at `temporary` to remove, and the name is free again.
    let _ = temporary.keep();
    sync_parent(target);
    Ok(())
}

fn write_copy(txn: &ReadTransaction, path: &Path, stop: Stop<'_>) -> Result<()> {
    let copy = file::open_database(path, crate::config::limits::DB_CACHE_BYTES)?;
    for table in TABLES {
        let started = std::time::Instant::now();
        let rows = table.copy(txn, &copy, stop)?;
        tracing::debug!(
            table = table.name(),
            rows,
            seconds = started.elapsed().as_secs_f64(),
            "backup: table copied"
        );
    }
    copy.close().map_err(|e| StoreError::Database(e.into()))?;
    Ok(())
}

impl Store {
    /// Writes a consistent copy of the whole database to a new file at `target`, unless
    /// `stop` says to stop first.
    pub fn snapshot_to(&self, target: &Path, stop: Stop<'_>) -> Result<()> {
        write_atomically(self.read()?, target, stop)
    }
}

/// Copies the database at `path`, which no server has open, to a new file at `target`,
/// without writing to `path` (unless redb must first repair it after a crash).
pub fn snapshot_file(path: &Path, target: &Path, stop: Stop<'_>) -> Result<()> {
    let db = file::open_read_only(path)?.ok_or_else(|| StoreError::Open {
        path: path.display().to_string(),
        problem: file::OpenProblem::Io(std::io::ErrorKind::NotFound.into()),
    })?;
    write_atomically(db.begin_read()?, target, stop)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Makes a rename durable. Best effort: the file itself was already synced by its commits.
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
}
