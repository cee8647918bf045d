//! The blob store: uploaded files, thumbnails and profile pictures as content-addressed files
//! in `<data dir>/blobs/<first 2 hex>/<sha256 hex>`, next to the database.
//!
//! A blob is written to `blobs/tmp/`, fsynced, renamed into place and its directory fsynced,
//! so a blob the database names is always whole. The same content is one file. Which blobs are
//! still wanted is the database's business (reference counts); [`Blobs::sweep`] unlinks the
//! rest. Uploads and backups hold a [`SweepPause`] while they work, so the sweep never removes
//! a blob between it being written and the database naming it, or while a backup copies.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

use crate::disk::PacedSync;

/// Temp files older than this belong to uploads that died with the server.
const STALE_TEMP: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the disk is full")]
    StorageFull,
    #[error("blob storage failed: {0}")]
    Io(#[from] std::io::Error),
}

impl BlobError {
    fn from_io(e: std::io::Error) -> BlobError {
        match e.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                BlobError::StorageFull
            }
            _ => BlobError::Io(e),
        }
    }
}

/// A blob's name: the lower-case hex SHA-256 of its content.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobId(String);

impl BlobId {
    /// Accepts only 64 lower-case hex digits, so a stored name can never point outside the
    /// store.
    pub fn parse(hex: &str) -> Option<BlobId> {
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| BlobId(hex.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Handle to the blob directory; cheap to clone.
#[derive(Clone)]
pub struct Blobs {
    root: PathBuf,
    /// Readers: uploads between writing and recording, and backups. The writer: the sweep,
    /// which only runs while nobody reads.
    pause: Arc<RwLock<()>>,
}

/// While held, the sweep removes nothing.
pub struct SweepPause(#[allow(dead_code)] OwnedRwLockReadGuard<()>);

/// What one sweep did.
#[derive(Debug, Default)]
pub struct Swept {
    pub removed: usize,
    /// The sweep was skipped because an upload or a backup held it off.
    pub paused: bool,
}

impl Blobs {
    /// Opens (creating) `<dir>` and its `tmp/`.
    pub fn open(dir: &Path) -> std::io::Result<Blobs> {
        create_private_dir(&dir.join("tmp"))?;
        Ok(Blobs {
            root: dir.to_owned(),
            pause: Arc::new(RwLock::new(())),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, id: &BlobId) -> PathBuf {
        self.root.join(&id.0[..2]).join(&id.0)
    }

    /// Holds the sweep off until the guard is dropped (an upload in flight, a backup).
    pub async fn pause_sweep(&self) -> SweepPause {
        SweepPause(self.pause.clone().read_owned().await)
    }

    /// A new blob being written.
    pub async fn writer(&self) -> Result<BlobWriter, BlobError> {
        let name: [u8; 16] = rand::random();
        let temp = self
            .root
            .join("tmp")
            .join(name.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let open = temp.clone();
        let file = blocking(move || std::fs::File::create_new(open)).await?;
        Ok(BlobWriter {
            temp: Some(temp),
            sink: Some(Sink {
                file: PacedSync::new(file),
                hasher: Sha256::new(),
            }),
            buffer: Vec::new(),
            size: 0,
            root: self.root.clone(),
        })
    }

    /// Stores a small blob held in memory (a thumbnail, a profile picture). Blocking.
    pub fn put(&self, bytes: &[u8]) -> Result<BlobId, BlobError> {
        let name: [u8; 16] = rand::random();
        let temp = self
            .root
            .join("tmp")
            .join(name.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let written = (|| {
            let mut file = std::fs::File::create_new(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(BlobError::from_io(e));
        }
        let id = BlobId(hex(&Sha256::digest(bytes)));
        publish(&self.root, &temp, &id)?;
        Ok(id)
    }

    /// Unlinks every blob older than `min_age` that is not in `wanted` (and temp files left by
    /// uploads that died with the server). Skipped while an upload or a backup holds the
    /// sweep off. Blocking.
    pub fn sweep(
        &self,
        min_age: Duration,
        wanted: impl FnOnce() -> std::io::Result<HashSet<String>>,
    ) -> std::io::Result<Swept> {
        let Ok(_exclusive) = self.pause.try_write() else {
            return Ok(Swept {
                paused: true,
                ..Swept::default()
            });
        };
        let wanted = wanted()?;
        let mut removed = 0;
        for (id, modified) in self.list()? {
            if !wanted.contains(id.as_str()) && age(modified) >= min_age {
                match std::fs::remove_file(self.path(&id)) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        for entry in std::fs::read_dir(self.root.join("tmp"))? {
            let entry = entry?;
            if age(entry.metadata()?.modified()?) >= STALE_TEMP {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Swept {
            removed,
            paused: false,
        })
    }

    /// Every blob on disk, with when it was last written.
    pub fn list(&self) -> std::io::Result<Vec<(BlobId, SystemTime)>> {
        let mut out = Vec::new();
        let shards = match std::fs::read_dir(&self.root) {
            Ok(shards) => shards,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for shard in shards {
            let shard = shard?;
            if shard.file_name().len() != 2 || !shard.file_type()?.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(shard.path())? {
                let entry = entry?;
                let Some(id) = entry.file_name().to_str().and_then(BlobId::parse) else {
                    continue;
                };
                out.push((id, entry.metadata()?.modified()?));
            }
        }
        Ok(out)
    }

    /// Whether the blob is on disk.
    pub fn exists(&self, id: &BlobId) -> bool {
        self.path(id).is_file()
    }
}

/// A blob being streamed to disk; dropped without [`BlobWriter::publish`] it leaves nothing.
///
/// The bytes are gathered into pieces of [`BlobWriter::PIECE`] and each piece is hashed and
/// written on a blocking thread, so the async workers that serve the chat only copy bytes.
pub struct BlobWriter {
    /// `None` once published.
    temp: Option<PathBuf>,
    /// `None` only while a piece is being written.
    sink: Option<Sink>,
    buffer: Vec<u8>,
    size: u64,
    root: PathBuf,
}

struct Sink {
    file: PacedSync,
    hasher: Sha256,
}

impl BlobWriter {
    const PIECE: usize = 256 << 10;

    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.size += chunk.len() as u64;
        self.buffer.extend_from_slice(chunk);
        if self.buffer.len() >= Self::PIECE {
            self.write_piece().await?;
        }
        Ok(())
    }

    async fn write_piece(&mut self) -> Result<(), BlobError> {
        let mut sink = self.sink.take().ok_or_else(broken)?;
        let piece = std::mem::take(&mut self.buffer);
        let (sink, mut piece) = blocking(move || {
            sink.hasher.update(&piece);
            sink.file.write_all(&piece)?;
            Ok((sink, piece))
        })
        .await?;
        piece.clear();
        self.buffer = piece;
        self.sink = Some(sink);
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes what is left and syncs it; returns the temp file to look at before publishing.
    pub async fn sync(&mut self) -> Result<&Path, BlobError> {
        self.write_piece().await?;
        let mut sink = self.sink.take().ok_or_else(broken)?;
        self.sink = Some(
            blocking(move || {
                sink.file.sync_all()?;
                Ok(sink)
            })
            .await?,
        );
        self.temp.as_deref().ok_or_else(broken)
    }

    /// Moves the (synced) content into place under its hash. Blocking.
    pub fn publish(mut self) -> Result<BlobId, BlobError> {
        let sink = self.sink.take().ok_or_else(broken)?;
        let id = BlobId(hex(&sink.hasher.finalize()));
        let temp = self.temp.take().ok_or_else(broken)?;
        let published = publish(&self.root, &temp, &id);
        if published.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        published.map(|()| id)
    }
}

fn broken() -> BlobError {
    BlobError::Io(std::io::Error::other("the blob writer was already used up"))
}

/// File work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BlobError::Io(std::io::Error::other(e)))?
        .map_err(BlobError::from_io)
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// Renames a synced temp file to its final name and syncs the directory. If the content is
/// already stored, the temp file goes and the existing one is touched, so a sweep that runs
/// later sees it as new.
fn publish(root: &Path, temp: &Path, id: &BlobId) -> Result<(), BlobError> {
    let shard = root.join(&id.0[..2]);
    let target = shard.join(&id.0);
    if target.is_file() {
        std::fs::remove_file(temp).map_err(BlobError::from_io)?;
        let file = std::fs::File::options()
            .append(true)
            .open(&target)
            .map_err(BlobError::from_io)?;
        file.set_modified(SystemTime::now())
            .map_err(BlobError::from_io)?;
        return Ok(());
    }
    create_private_dir(&shard).map_err(BlobError::from_io)?;
    std::fs::rename(temp, &target).map_err(BlobError::from_io)?;
    std::fs::File::open(&shard)
        .and_then(|dir| dir.sync_all())
        .map_err(BlobError::from_io)
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

fn age(modified: SystemTime) -> Duration {
    SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_content_is_one_blob_and_unwanted_ones_are_swept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let blobs = Blobs::open(&dir.path().join("blobs")).expect("open");
        let a = blobs.put(b"hello").expect("put");
        let b = blobs.put(b"hello").expect("put again");
        assert_eq!(a, b);
        assert_eq!(blobs.list().expect("list").len(), 1);
        let c = blobs.put(b"other").expect("put other");
        let keep: HashSet<String> = [a.as_str().to_owned()].into();
        let swept = blobs.sweep(Duration::ZERO, || Ok(keep)).expect("sweep");
        assert_eq!(swept.removed, 1);
        assert!(blobs.exists(&a) && !blobs.exists(&c));
    }

    #[test]
    fn ids_are_plain_hex() {
        assert!(BlobId::parse(&"a".repeat(64)).is_some());
        assert!(BlobId::parse("../../etc/passwd").is_none());
        assert!(BlobId::parse(&"A".repeat(64)).is_none());
    }
}
