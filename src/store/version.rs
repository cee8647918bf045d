//! Which confab wrote a database, so an upgrade keeps a way back and an older confab never
//! misreads (or writes to) a newer database.

use std::path::{Path, PathBuf};

use redb::{ReadTransaction, TableError};

use super::{META, Result, SCHEMA, Store, StoreError, file, snapshot};
use crate::config::VERSION;

/// What a database file says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseFormat {
    /// META `schema`; a file without it was written by release 0.1 (format 1).
    pub schema: u64,
    /// META `written_by`; absent in files from before it was recorded.
    pub written_by: Option<String>,
}

impl DatabaseFormat {
    /// The confab that wrote it, for messages: "confab 0.2.0 (abc)".
    pub fn writer(&self) -> String {
        match &self.written_by {
            Some(version) => format!("confab {version}"),
            None => "an earlier confab that did not record its version".into(),
        }
    }

    /// Reads the format from `txn`. A file without a META table is format 1 too.
    pub(super) fn read(txn: &ReadTransaction) -> Result<DatabaseFormat> {
        let meta = match txn.open_table(META) {
            Ok(meta) => meta,
            Err(TableError::TableDoesNotExist(_)) => {
                return Ok(DatabaseFormat {
                    schema: 1,
                    written_by: None,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let schema = match meta.get("schema")? {
            Some(bytes) => <[u8; 8]>::try_from(bytes.value())
                .map(u64::from_le_bytes)
                .map_err(|_| StoreError::Task("META schema is not 8 bytes".into()))?,
            None => 1,
        };
        let written_by = meta
            .get("written_by")?
            .map(|v| String::from_utf8_lossy(v.value()).into_owned());
        Ok(DatabaseFormat { schema, written_by })
    }
}

/// The format of the database at `path` (`None` if there is no file), read without writing to
/// it. [`StoreError::InUse`] while a server has it open.
pub fn database_format(path: &Path) -> Result<Option<DatabaseFormat>> {
    let Some(db) = file::open_read_only(path)? else {
        return Ok(None);
    };
    let format = DatabaseFormat::read(&db.begin_read()?)?;
    Ok(Some(format))
}

/// [`database_format`], refusing a format newer than [`SCHEMA`] with both versions named.
pub(super) fn refuse_newer(path: &Path) -> Result<Option<DatabaseFormat>> {
    let Some(format) = database_format(path)? else {
        return Ok(None);
    };
    if format.schema > SCHEMA {
        return Err(StoreError::Open {
            path: path.display().to_string(),
            problem: file::OpenProblem::Newer {
                found: format.schema,
                written_by: format.writer(),
            },
        });
    }
    Ok(Some(format))
}

/// Where the database at `path`, in format `schema`, is saved before an upgrade:
/// `confab.redb.v1.pre-upgrade-backup` beside it. It is a plain database file; the confab that
/// wrote it opens it once it is renamed back to `confab.redb`.
pub fn pre_upgrade_backup_path(path: &Path, schema: u64) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".v{schema}.pre-upgrade-backup"));
    path.with_file_name(name)
}

impl Store {
    /// Copies the database, as it is before any upgrade writes to it, beside it.
    pub(super) fn save_before_upgrade(&self, found: &DatabaseFormat) -> Result<PathBuf> {
        let target = pre_upgrade_backup_path(self.path(), found.schema);
        // Part of opening the database: nothing to interrupt it but the process ending.
        snapshot::write_atomically(self.read()?, &target, &|| false)?;
        Ok(target)
    }

    /// Records this confab's version as the last to write the database, so a later, older
    /// confab can name it when it refuses.
    pub(super) fn record_writer(&self) -> Result<()> {
        let recorded = DatabaseFormat::read(&self.read()?)?.written_by;
        if recorded.as_deref() == Some(VERSION) {
            return Ok(());
        }
        self.write(|txn| {
            txn.open_table(META)?
                .insert("written_by", VERSION.as_bytes())?;
            Ok(())
        })
    }

    /// The format and writer of this database.
    pub fn format(&self) -> Result<DatabaseFormat> {
        DatabaseFormat::read(&self.read()?)
    }
}
