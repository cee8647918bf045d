//! Writing big files (uploads, backups) next to a database that fsyncs every commit.
//!
//! Left to the kernel, tens or hundreds of MB pile up as dirty pages and are flushed at once
//! when the file is finally synced; on ext4 a commit's fsync then waits behind that flush, and
//! every sender's ack with it. Syncing a big file in small steps as it is written keeps the
//! disk's queue short.

use std::fs::File;
use std::io::Write;

/// Writes through to a file, syncing its data every [`PacedSync::EVERY`] bytes.
pub struct PacedSync {
    file: File,
    unsynced: usize,
}

impl PacedSync {
    pub const EVERY: usize = 4 << 20;

    pub fn new(file: File) -> PacedSync {
        PacedSync { file, unsynced: 0 }
    }

    /// Everything written so far, data and metadata, on disk.
    pub fn sync_all(&mut self) -> std::io::Result<()> {
        self.unsynced = 0;
        self.file.sync_all()
    }
}

impl Write for PacedSync {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.file.write(buf)?;
        self.unsynced += written;
        if self.unsynced >= Self::EVERY {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}
