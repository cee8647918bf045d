//! The indexer thread: the only writer of the search index.
//!
//! Layout of `<data dir>/search/`: `index/` (tantivy's files), `format` (this build's index
//! format; written only after a full build committed, so a build cut short is redone) and
//! `clean` (written at a clean shutdown, removed at open: without it, updates of the last
//! half second may be missing, so a catch-up pass re-reads redb while searches go on).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tantivy::directory::MmapDirectory;
use tantivy::{
    Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, TantivyDocument, Term,
};

use super::{Op, Shared, analyzer, key_of, schema};
use crate::store::{Message, ScanCursor, Store};

/// Bump when the schema or the analyzer changes: an index of another format is rebuilt.
const FORMAT: &str = "confab-search 2";
/// Updates become searchable within this long…
const COMMIT_EVERY: Duration = Duration::from_millis(500);
/// …or as soon as this many are waiting: a bound on the uncommitted work, not a cadence. Each
/// commit makes a segment, and every segment is merged again later and searched for every
/// delete, so at a burst's rate commits by count cost more than the burst's indexing.
const COMMIT_DOCS: usize = 20_000;
/// How often the index's files are checked for having been removed.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// After a failed build (a full disk, say), wait this long before the next try.
const RETRY_BUILD: Duration = Duration::from_secs(10);
/// Messages read from redb per read transaction while (re)building.
const SCAN_CHUNK: usize = 1000;
/// tantivy's indexing memory; one thread, since the machine is shared with chat.
const WRITER_HEAP: usize = 32 * 1024 * 1024;
/// With no update for this long, the index writer (its memory arena and five threads) is
/// closed; the next update opens it again in a few milliseconds.
const WRITER_IDLE: Duration = Duration::from_secs(60);

pub(super) fn spawn(shared: Arc<Shared>, store: Store, ops: Receiver<Op>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("confab-search".into())
        .spawn(move || {
            // tantivy's own indexing and merge threads, started from this one, inherit it.
            crate::background::lower_this_threads_priority(crate::background::SEARCH_NICENESS);
            Indexer {
                shared,
                store,
                ops,
                open: None,
                pending: 0,
                first_pending: None,
                last_update: Instant::now(),
                last_check: Instant::now(),
                last_build: None,
                stopping: false,
            }
            .run()
        })
        .unwrap_or_else(|e| panic!("cannot start the search indexer thread: {e}"))
}

struct Indexer {
    shared: Arc<Shared>,
    store: Store,
    ops: Receiver<Op>,
    open: Option<Open>,
    /// Updates applied but not committed, and when the first of them was.
    pending: usize,
    first_pending: Option<Instant>,
    last_update: Instant,
    last_check: Instant,
    last_build: Option<Instant>,
    /// A `Stop` arrived (possibly in the middle of a build).
    stopping: bool,
}

struct Open {
    index: Index,
    /// The index's directory, kept to prune its map of opened files (see [`Open::committed`]).
    directory: MmapDirectory,
    /// Opened on the first update, closed after [`WRITER_IDLE`] without one.
    writer: Option<IndexWriter>,
    reader: IndexReader,
}

impl Open {
    /// tantivy's `MmapDirectory` remembers every file it ever opened, by path, and forgets
    /// the dead ones only when asked for its cache info. Every commit makes a segment with
    /// new file names, so without this the map grows for as long as the server runs
    /// (measured: about 5 MB an hour at two commits a second).
    fn committed(&self) {
        let _ = self.directory.get_cache_info();
    }

    fn writer(&mut self) -> tantivy::Result<&mut IndexWriter> {
        match self.writer {
            Some(ref mut writer) => Ok(writer),
            None => Ok(self
                .writer
                .insert(self.index.writer_with_num_threads(1, WRITER_HEAP)?)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum Failed {
    #[error(transparent)]
    Index(#[from] tantivy::TantivyError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Indexer {
    fn index_dir(&self) -> PathBuf {
        self.shared.dir.join("index")
    }

    fn run(mut self) {
        match self.open_existing() {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(
                    "the search index was not closed cleanly; catching up from the database"
                );
                self.catch_up();
            }
            Err(reason) => {
                tracing::info!("building the search index ({reason})");
                self.build();
            }
        }
        while !self.stopping {
            self.step();
        }
        self.finish();
        tracing::debug!("search indexer stopped");
    }

    /// One turn of the loop: wait for an update or a deadline, then commit, check, catch up.
    fn step(&mut self) {
        if self.open.is_none() && self.last_build.is_none_or(|t| t.elapsed() >= RETRY_BUILD) {
            self.build();
            return;
        }
        let wait = match self.first_pending {
            Some(first) => COMMIT_EVERY.saturating_sub(first.elapsed()),
            None => CHECK_EVERY,
        };
        match self.ops.recv_timeout(wait) {
            Ok(op) => self.apply(op),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => self.stopping = true,
        }
        self.commit_if_due();
        self.close_writer_if_idle();
        if self.last_check.elapsed() >= CHECK_EVERY {
            self.last_check = Instant::now();
            if self.open.is_some() && !self.files_present() {
                tracing::warn!(
                    dir = %self.shared.dir.display(),
                    "the search index was removed while confab ran; rebuilding it"
                );
                self.build();
                return;
            }
        }
        if self.shared.rebuild.swap(false, Ordering::SeqCst) {
            self.build();
            return;
        }
        if self.open.is_some() && self.shared.stale.load(Ordering::SeqCst) {
            tracing::warn!("search updates came faster than they were indexed; catching up");
            self.catch_up();
        }
    }

    fn files_present(&self) -> bool {
        self.shared.dir.join("format").is_file() && self.index_dir().join("meta.json").is_file()
    }

    /// Opens the index if it is there, whole and of this format; says whether it was closed
    /// cleanly, or why it cannot be used.
    fn open_existing(&mut self) -> Result<bool, String> {
        let format = std::fs::read_to_string(self.shared.dir.join("format"))
            .map_err(|_| "there is none yet".to_owned())?;
        if format.trim() != FORMAT {
            return Err(format!(
                "the index has format {:?}, this build writes {FORMAT:?}",
                format.trim()
            ));
        }
        let directory = MmapDirectory::open(self.index_dir())
            .map_err(|e| format!("the index cannot be opened: {e}"))?;
        let index = Index::open(directory.clone())
            .map_err(|e| format!("the index cannot be opened: {e}"))?;
        let open = open(index, directory).map_err(|e| format!("the index cannot be used: {e}"))?;
        self.publish(&open.reader);
        self.open = Some(open);
        Ok(std::fs::remove_file(self.shared.dir.join("clean")).is_ok())
    }

    fn publish(&self, reader: &IndexReader) {
        *self
            .shared
            .reader
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(reader.clone());
    }

    fn unpublish(&self) {
        *self
            .shared
            .reader
            .write()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// A new index from everything in redb. Searches answer "not ready" until it is done;
    /// updates that arrive meanwhile are applied between chunks.
    fn build(&mut self) {
        self.last_build = Some(Instant::now());
        self.unpublish();
        self.open = None;
        self.pending = 0;
        self.first_pending = None;
        let started = Instant::now();
        match self.try_build() {
            Ok(Some(count)) => tracing::info!(
                messages = count,
                seconds = started.elapsed().as_secs_f32(),
                "the search index is ready"
            ),
            Ok(None) => {}
            Err(error) => {
                tracing::error!(%error, "could not build the search index; retrying in {}s", RETRY_BUILD.as_secs());
                self.unpublish();
                self.open = None;
            }
        }
    }

    /// The number of messages indexed, or `None` if asked to stop first.
    fn try_build(&mut self) -> Result<Option<usize>, Failed> {
        match std::fs::remove_dir_all(&self.shared.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        create_private_dir(&self.index_dir())?;
        let directory =
            MmapDirectory::open(self.index_dir()).map_err(tantivy::TantivyError::from)?;
        let index = Index::create(directory.clone(), schema().0, IndexSettings::default())?;
        self.open = Some(open(index, directory)?);
        // The stale mark is about the old index; this build reads everything anyway.
        self.shared.stale.store(false, Ordering::SeqCst);
        let Some(count) = self.scan(false)? else {
            return Ok(None);
        };
        self.commit()?;
        std::fs::write(self.shared.dir.join("format"), format!("{FORMAT}\n"))?;
        if let Some(open) = &self.open {
            self.publish(&open.reader);
        }
        Ok(Some(count))
    }

    /// Re-reads every message into the open index (searches go on, marked incomplete).
    fn catch_up(&mut self) {
        self.shared.catching_up.store(true, Ordering::SeqCst);
        // Whatever is queued was committed before this pass reads redb; apply it first, so
        // the pass's newer reads come after it.
        self.drain();
        self.shared.stale.store(false, Ordering::SeqCst);
        let result = self.scan(true).and_then(|done| {
            if done.is_none() {
                // Stopped part way: no `clean` mark, so the next start catches up again.
                self.shared.stale.store(true, Ordering::SeqCst);
            }
            self.commit()
        });
        self.shared.catching_up.store(false, Ordering::SeqCst);
        if let Err(error) = result {
            tracing::error!(%error, "could not catch the search index up; rebuilding it");
            self.shared.rebuild.store(true, Ordering::SeqCst);
        }
    }

    /// Puts every message of redb into the index, chunk by chunk, applying queued updates
    /// between chunks (a queued update is older than the chunks read after it, and any newer
    /// change is queued after it, so the index ends with each message's latest state).
    /// Commits as it goes when `serving`. `None` if asked to stop.
    fn scan(&mut self, serving: bool) -> Result<Option<usize>, Failed> {
        let mut cursor: Option<ScanCursor> = None;
        let mut count = 0;
        loop {
            let (messages, next) = self.store.messages_after(cursor.as_ref(), SCAN_CHUNK)?;
            for message in &messages {
                self.put(message)?;
            }
            count += messages.len();
            self.drain();
            if self.stopping {
                return Ok(None);
            }
            if serving {
                self.commit_if_due();
            }
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(Some(count)),
            }
        }
    }

    /// Applies every update queued right now.
    fn drain(&mut self) {
        loop {
            match self.ops.try_recv() {
                Ok(op) => self.apply(op),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.stopping = true;
                    return;
                }
            }
        }
    }

    fn apply(&mut self, op: Op) {
        let result = match op {
            Op::Put(message) => self.put(&message),
            Op::Remove(conversation, seq) => self.remove(&key_of(&conversation, seq)),
            Op::Stop => {
                self.stopping = true;
                Ok(())
            }
        };
        if let Err(error) = result {
            tracing::error!(%error, "could not update the search index; rebuilding it");
            self.shared.rebuild.store(true, Ordering::SeqCst);
        }
    }

    /// Indexes the message's current state (a deleted one is removed).
    fn put(&mut self, message: &Message) -> Result<(), Failed> {
        let key = key_of(&message.conversation, message.seq);
        self.remove(&key)?;
        if message.deleted {
            return Ok(());
        }
        let Some(open) = &mut self.open else {
            return Ok(());
        };
        let fields = self.shared.fields;
        let mut doc = TantivyDocument::new();
        doc.add_text(fields.key, &key);
        doc.add_text(fields.conversation, message.conversation.as_str());
        doc.add_u64(fields.seq, message.seq);
        doc.add_u64(fields.from, message.from);
        doc.add_u64(fields.sent_at, message.sent_at);
        doc.add_text(fields.body, &message.body);
        for file in &message.files {
            doc.add_text(fields.body, &file.name);
        }
        doc.add_u64(fields.has_file, u64::from(!message.files.is_empty()));
        open.writer()?.add_document(doc)?;
        Ok(())
    }

    fn remove(&mut self, key: &str) -> Result<(), Failed> {
        let Some(open) = &mut self.open else {
            // No index: the next build reads the current state from redb.
            return Ok(());
        };
        open.writer()?
            .delete_term(Term::from_field_text(self.shared.fields.key, key));
        self.last_update = Instant::now();
        self.pending += 1;
        self.first_pending.get_or_insert_with(Instant::now);
        Ok(())
    }

    fn commit_if_due(&mut self) {
        let due = self
            .first_pending
            .is_some_and(|first| self.pending >= COMMIT_DOCS || first.elapsed() >= COMMIT_EVERY);
        if due && let Err(error) = self.commit() {
            tracing::error!(%error, "could not commit to the search index; rebuilding it");
            self.shared.rebuild.store(true, Ordering::SeqCst);
        }
    }

    fn commit(&mut self) -> Result<(), Failed> {
        self.pending = 0;
        self.first_pending = None;
        if let Some(open) = &mut self.open
            && let Some(writer) = &mut open.writer
        {
            writer.commit()?;
            open.reader.reload()?;
            open.committed();
        }
        Ok(())
    }

    fn close_writer_if_idle(&mut self) {
        if self.pending == 0
            && self.last_update.elapsed() >= WRITER_IDLE
            && let Some(open) = &mut self.open
            && open.writer.take().is_some()
        {
            tracing::debug!("search index writer closed while idle");
        }
    }

    /// At a clean stop: commit, and leave the `clean` mark unless something is missing.
    fn finish(&mut self) {
        if self.open.is_none() {
            return;
        }
        let complete = !self.shared.stale.load(Ordering::SeqCst)
            && !self.shared.catching_up.load(Ordering::SeqCst)
            && self.files_present();
        match self.commit() {
            Ok(()) if complete => {
                let _ = std::fs::write(self.shared.dir.join("clean"), b"");
            }
            Ok(()) => {}
            Err(error) => tracing::error!(%error, "could not commit the search index at shutdown"),
        }
    }
}

/// The index with this build's analyzer and a reader; the writer waits for the first update.
fn open(index: Index, directory: MmapDirectory) -> tantivy::Result<Open> {
    index
        .tokenizers()
        .register(analyzer::NAME, analyzer::analyzer());
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    Ok(Open {
        index,
        directory,
        writer: None,
        reader,
    })
}

/// The index holds message text: owner-only, like the data directory.
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}
