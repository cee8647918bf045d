//! Erasing deleted text from the database file itself.
//!
//! redb never overwrites a page in place: a write copies the page, and the old copy, with
//! whatever it held, stays in the file as a free page until the allocator happens to reuse
//! it. So "deleted" would otherwise mean "hidden, still on disk". A scrub takes the free pages
//! for zero-filled filler rows (the allocator zero-fills each page it hands out and writes it
//! whole), commits, and drops the filler again: afterwards no free page holds anything that
//! was written before the scrub. The writer asks for one after a batch that deleted a message
//! or a declined request.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use redb::TableDefinition;

use super::{Result, Store, StoreError};

/// Filler rows, dropped by the scrub's last commit (one left behind by a crash mid-scrub is
/// overwritten and dropped by the next scrub). Never copied into a backup.
pub(super) const SCRUB: TableDefinition<u64, &[u8]> = TableDefinition::new("scrub");
/// One filler row per page: small enough to fit a page with its key, large enough that each
/// row takes a page of its own.
const FILLER: [u8; 3072] = [0; 3072];
/// Filler rows per commit, about 1 MiB of pages.
const ROWS_PER_COMMIT: u64 = 256;
/// A scrub stops here even if free pages remain; the next scrub carries on.
const MAX_FILLER_BYTES: u64 = 256 << 20;

impl Store {
    /// Overwrites the database file's free pages; returns how many filler rows it took.
    ///
    /// Free space comes in two kinds: pages that held data (old copies, the thing to erase)
    /// and room redb reserved by growing the file, which was never written and is a hole in
    /// the file (it takes no disk). The allocator hands out the smallest free blocks first,
    /// and the never-written room is the file's one big block at its end, so the filler is
    /// committed a chunk at a time until a chunk lands in a hole, seen as the file taking
    /// more disk: then every written free page has been overwritten, and filling the rest
    /// would only turn the reserved room into real zeros on disk.
    pub fn scrub_free_pages(&self) -> Result<u64> {
        // Pages the deleting commit freed go back to the allocator only once later commits
        // have made them unreachable from any root redb may still recover to.
        for _ in 0..2 {
            self.write(|_| Ok(()))?;
        }
        let path = self.path().to_owned();
        let chunk_bytes = ROWS_PER_COMMIT * FILLER.len() as u64;
        let mut rows = 0u64;
        while rows * (FILLER.len() as u64) < MAX_FILLER_BYTES {
            let on_disk = disk_usage(&path)?;
            self.write(|txn| {
                let mut filler = txn.open_table(SCRUB)?;
                for row in rows..rows + ROWS_PER_COMMIT {
                    filler.insert(row, FILLER.as_slice())?;
                }
                Ok(())
            })?;
            rows += ROWS_PER_COMMIT;
            if disk_usage(&path)?.saturating_sub(on_disk) >= chunk_bytes / 2 {
                break;
            }
        }
        self.write(|txn| {
            txn.delete_table(SCRUB)?;
            Ok(())
        })?;
        tracing::debug!(rows, "scrubbed the database file's free pages");
        Ok(rows)
    }
}

/// Bytes of disk the file takes (holes excluded).
fn disk_usage(path: &Path) -> Result<u64> {
    std::fs::metadata(path)
        .map(|m| m.blocks() * 512)
        .map_err(|e| StoreError::Task(format!("cannot read the database file's size: {e}")))
}
