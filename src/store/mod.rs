//! The only code that touches redb: typed tables, one codec, and domain verbs that each run in
//! one transaction (`create_user`, `apply_chat_batch`, `mark_read`, …).

mod chat;
mod check;
pub mod codec;
mod edits;
mod file;
mod files;
mod lazy_table;
mod people;
mod rooms;
mod scrub;
mod search;
mod snapshot;
mod stats;
mod users;
mod version;

use std::path::Path;
use std::sync::Arc;

use redb::{ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

pub use chat::{
    ChatOp, ChatOutcome, ChatRejection, ClientIdKey, ConversationId, ConversationSummary,
    HistoryPage, HistoryQuery, MemberRead, Members, Message, Notify, SendTarget, mentioned_names,
};
pub use check::{CheckReport, check};
pub use edits::{ChangesPage, EDIT_WINDOW_MS, MAX_REACTIONS, MessageChange};
pub use file::{OpenProblem, free_bytes, held_open};
pub use files::{FetchableFile, FileInfo, NewUpload};
pub use people::{DmPolicy, PeopleEvent, PeopleOp, Requests};
pub use rooms::{BrowsedRoom, RoomEvent, RoomMember, RoomOp, RoomPatch, RoomView, Visibility};
pub use search::{ScanCursor, SearchScope};
pub use snapshot::{Stop, snapshot_file};
pub use users::{DirectoryEntry, NewUser, Role, Session, User, UserPatch};
pub use version::{DatabaseFormat, database_format, pre_upgrade_backup_path};

use codec::Stored;

// The catalog. Every table in one place, with its key layout.

/// name → raw bytes. `jwt_secret` (32 bytes), `schema` (u64 LE: the database format, see
/// [`SCHEMA`]), `written_by` (UTF-8: the confab version that last opened it for writing),
/// `next_room` (u64 LE: the next room number).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// user id → user record.
const USERS: TableDefinition<u64, Stored<users::UserRecord>> = TableDefinition::new("users");
/// lower-case username → user id. Enforces case-insensitive uniqueness.
const USERNAMES: TableDefinition<&str, u64> = TableDefinition::new("usernames");
/// session id → session record. A JWT is valid only while its session is here.
const SESSIONS: TableDefinition<u128, Stored<users::SessionRecord>> =
    TableDefinition::new("sessions");
/// (user id, session id) → (). Finds every session of a user, to revoke them all at once.
const USER_SESSIONS: TableDefinition<(u64, u128), ()> = TableDefinition::new("user_sessions");
/// user id → last time seen online, unix seconds.
const LAST_SEEN: TableDefinition<u64, u64> = TableDefinition::new("last_seen");
/// conversation id → conversation record (kind, members, last_seq, last activity).
const CONVERSATIONS: TableDefinition<&str, Stored<chat::ConversationRecord>> =
    TableDefinition::new("conversations");
/// (conversation id, seq) → message. Seqs are 1, 2, 3, … without gaps.
const MESSAGES: TableDefinition<(&str, u64), Stored<chat::MessageRecord>> =
    TableDefinition::new("messages");
/// (user id, conversation id) → that member's read_seq and unread count.
const MEMBERSHIPS: TableDefinition<(u64, &str), Stored<chat::MembershipRecord>> =
    TableDefinition::new("memberships");
/// (sender id, client_id) → where that send landed, so retries are idempotent.
const CLIENT_IDS: TableDefinition<(u64, &str), Stored<chat::ClientIdRecord>> =
    TableDefinition::new("client_ids");
/// (room id, user id) → who added them and when. A room's members; DMs have none here.
const ROOM_MEMBERS: TableDefinition<(&str, u64), Stored<rooms::RoomMemberRecord>> =
    TableDefinition::new("room_members");
/// lower-case name → room number, for open rooms only: their names are unique.
const ROOM_NAMES: TableDefinition<&str, u64> = TableDefinition::new("room_names");
/// (mentioned user id, room id, seq) → (). `@username` mentions, counted after read_seq.
const MENTIONS: TableDefinition<(u64, &str, u64), ()> = TableDefinition::new("mentions");
/// (room id, seq) → sender id. `@room` mentions, which count for every member but the sender.
const ROOM_MENTIONS: TableDefinition<(&str, u64), u64> = TableDefinition::new("room_mentions");
/// user id → settings (DM policy).
const SETTINGS: TableDefinition<u64, Stored<people::SettingsRecord>> =
    TableDefinition::new("settings");
/// (recipient id, sender id) → a pending chat request.
const REQUESTS: TableDefinition<(u64, u64), Stored<people::RequestRecord>> =
    TableDefinition::new("requests");
/// (sender id, recipient id) → unix ms until which the sender may not ask again.
const DECLINED: TableDefinition<(u64, u64), u64> = TableDefinition::new("declined");
/// (blocker id, blocked id) → ().
const BLOCKS: TableDefinition<(u64, u64), ()> = TableDefinition::new("blocks");
/// (conversation id, change_seq) → seq of the message an edit, delete or reaction changed.
const CHANGES: TableDefinition<(&str, u64), u64> = TableDefinition::new("changes");
/// (room id, seq) → (). Deleted room messages, which are not unread for anyone.
const DELETED: TableDefinition<(&str, u64), ()> = TableDefinition::new("deleted");
/// file id (`f_…`) → upload record: its blobs, name, uploader, conversation, and the message
/// carrying it (none while pending). Removed with its message.
const FILES: TableDefinition<&str, Stored<files::FileRecord>> = TableDefinition::new("files");
/// (created unix ms, file id) → (). Uploads no message names yet, oldest first, for expiry.
const PENDING_UPLOADS: TableDefinition<(u64, &str), ()> = TableDefinition::new("pending_uploads");
/// blob sha256 hex → how many file records and profile pictures name it (no row: none, the
/// sweep may remove it).
const BLOB_REFS: TableDefinition<&str, u64> = TableDefinition::new("blob_refs");

/// Every table above. Creating them all at start and copying them all into a backup both go
/// through this list, so a table added here is never left out of a backup (and a backup
/// refuses a database holding a table missing here).
static TABLES: &[&(dyn snapshot::CatalogTable + Sync)] = &[
    &META,
    &USERS,
    &USERNAMES,
    &SESSIONS,
    &USER_SESSIONS,
    &LAST_SEEN,
    &CONVERSATIONS,
    &MESSAGES,
    &MEMBERSHIPS,
    &CLIENT_IDS,
    &ROOM_MEMBERS,
    &ROOM_NAMES,
    &MENTIONS,
    &ROOM_MENTIONS,
    &SETTINGS,
    &REQUESTS,
    &DECLINED,
    &BLOCKS,
    &CHANGES,
    &DELETED,
    &FILES,
    &PENDING_UPLOADS,
    &BLOB_REFS,
];

/// The database format this build writes. 1: release 0.1 (DMs). 2: rooms. 3: files and
/// profile pictures (message and user records of a newer version an older build cannot read).
pub const SCHEMA: u64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] redb::Error),
    #[error(transparent)]
    Codec(#[from] codec::CodecError),
    #[error("the database is in use by another confab process")]
    InUse,
    #[error("the database file {path} {problem}; {}", problem.advice())]
    Open { path: String, problem: OpenProblem },
    #[error("the disk is full; nothing more can be saved until space is freed")]
    StorageFull,
    #[error("the database is closed after a failed reopen; restart confab")]
    Closed,
    #[error("username already taken")]
    UsernameTaken,
    #[error("no such user")]
    NoSuchUser,
    #[error("an account already exists")]
    AlreadySetUp,
    #[error("the change would leave no enabled administrator")]
    LastAdmin,
    #[error("database task failed: {0}")]
    Task(String),
    /// A copy was asked to stop midway (see `snapshot::Stop`).
    #[error("the copy was stopped before it was finished")]
    Stopped,
}

/// redb has one error type per operation; they all become [`StoreError::Database`].
macro_rules! from_redb_errors {
    ($($error:ty),*) => {$(
        impl From<$error> for StoreError {
            fn from(e: $error) -> Self {
                StoreError::Database(e.into())
            }
        }
    )*};
}
from_redb_errors!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// An I/O failure, after which redb refuses writes until the database is reopened.
    fn is_io(&self) -> bool {
        matches!(
            self,
            StoreError::Database(redb::Error::Io(_) | redb::Error::PreviousIo)
        )
    }

    fn is_out_of_space(&self) -> bool {
        match self {
            StoreError::Database(redb::Error::Io(e)) => {
                e.kind() == std::io::ErrorKind::StorageFull
                    || e.kind() == std::io::ErrorKind::QuotaExceeded
            }
            _ => false,
        }
    }
}

/// Handle to the database. Cheap to clone; every clone is the same database.
#[derive(Clone)]
pub struct Store {
    file: Arc<file::DatabaseFile>,
    /// Who is in each recently used conversation, so fan-out and typing read no table. Filled
    /// from committed state and invalidated by every membership change.
    members_cache: Arc<MembersCache>,
}

/// conversation id → everyone in it. Bounded: cleared when full (it refills as used).
///
/// The writer fills it from its own transaction and invalidates a room both inside the
/// transaction that changes its members (so the rest of the batch sees the change) and after
/// the commit. A reader may fill it only if no invalidation happened since before its read
/// transaction began (`generation`): otherwise it could put back a member list the writer had
/// just replaced, and a removed member would go on hearing the room.
#[derive(Default)]
struct MembersCache {
    entries: std::sync::Mutex<CacheEntries>,
}

#[derive(Default)]
struct CacheEntries {
    map: std::collections::HashMap<String, chat::Members>,
    /// Bumped by every invalidation.
    generation: u64,
}

impl MembersCache {
    const MAX: usize = 4096;

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheEntries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, conversation: &ConversationId) -> Option<chat::Members> {
        self.lock().map.get(conversation.as_str()).cloned()
    }

    fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The writer's insert: its view is the newest there is.
    fn insert(&self, conversation: &ConversationId, members: chat::Members) {
        let mut entries = self.lock();
        if entries.map.len() >= Self::MAX {
            entries.map.clear();
        }
        entries
            .map
            .insert(conversation.as_str().to_owned(), members);
    }

    /// A reader's insert, dropped if anything was invalidated since `seen`.
    fn insert_if_unchanged(
        &self,
        conversation: &ConversationId,
        members: chat::Members,
        seen: u64,
    ) {
        if self.lock().generation == seen {
            self.insert(conversation, members);
        }
    }

    fn invalidate(&self, conversation: &ConversationId) {
        let mut entries = self.lock();
        entries.generation += 1;
        entries.map.remove(conversation.as_str());
    }

    fn clear(&self) {
        let mut entries = self.lock();
        entries.generation += 1;
        entries.map.clear();
    }
}

impl Store {
    /// Opens the database file, or creates it if there is none, and its tables. A database
    /// written by a newer confab is refused before anything is written to it; one written by
    /// an older confab is copied aside (see [`pre_upgrade_backup_path`]) and then upgraded.
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_with_cache(path, crate::config::limits::DB_CACHE_BYTES)
    }

    /// [`Store::open`] with a page cache of at most `cache_bytes` (the server's `--db-cache`).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Store> {
        let found = version::refuse_newer(path)?;
        let store = Store {
            file: Arc::new(file::DatabaseFile::open(path, cache_bytes)?),
            members_cache: Arc::default(),
        };
        let saved = match &found {
            Some(format) if format.schema < SCHEMA => Some(store.save_before_upgrade(format)?),
            _ => None,
        };
        store.create_tables()?;
        store.migrate(found.as_ref(), saved.as_deref())?;
        store.record_writer()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    fn read(&self) -> Result<ReadTransaction> {
        Ok(self.file.handle()?.begin_read()?)
    }

    /// Runs `work` in one write transaction and commits it. A write that fails for lack of
    /// disk space reports [`StoreError::StorageFull`] and leaves the store able to write again
    /// once space is freed; while the disk is known to be full, writes are refused at once.
    fn write<T>(&self, work: impl FnOnce(&WriteTransaction) -> Result<T>) -> Result<T> {
        self.file.check_writable()?;
        let attempt = || {
            let txn = self.file.handle()?.begin_write()?;
            let value = work(&txn)?;
            txn.commit()?;
            Ok(value)
        };
        match attempt() {
            Ok(value) => {
                self.file.write_succeeded();
                Ok(value)
            }
            Err(e) => Err(self.file.write_failed(e)),
        }
    }

    /// Creating every table up front lets read transactions open them without special cases.
    fn create_tables(&self) -> Result<()> {
        self.write(|txn| {
            for table in TABLES {
                table.create(txn)?;
            }
            Ok(())
        })
    }

    /// Brings a database written by an earlier release up to [`SCHEMA`], in one transaction.
    /// `found` is what the file said before it was opened (`None`: a new file); `saved` is
    /// where its pre-upgrade copy went.
    fn migrate(&self, found: Option<&DatabaseFormat>, saved: Option<&Path>) -> Result<()> {
        if found.is_some_and(|f| f.schema == SCHEMA) {
            return Ok(());
        }
        self.write(|txn| {
            rooms::ensure_general(txn)?;
            txn.open_table(META)?
                .insert("schema", SCHEMA.to_le_bytes().as_slice())?;
            Ok(())
        })?;
        if let (Some(found), Some(saved)) = (found, saved) {
            tracing::info!(
                "upgraded the database from format {} to {SCHEMA}; the database as it was is kept as {} (written by {})",
                found.schema,
                saved.display(),
                found.writer()
            );
        }
        Ok(())
    }

    /// The HS256 key for session tokens, created at first start.
    pub fn jwt_secret(&self) -> Result<Vec<u8>> {
        self.write(|txn| {
            let mut meta = txn.open_table(META)?;
            let existing = meta.get("jwt_secret")?.map(|v| v.value().to_vec());
            Ok(match existing {
                Some(secret) if secret.len() == 32 => secret,
                _ => {
                    let secret: [u8; 32] = rand::random();
                    meta.insert("jwt_secret", secret.as_slice())?;
                    secret.to_vec()
                }
            })
        })
    }
}

/// Runs blocking store work off the async runtime.
pub async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

/// Unix time now, in seconds.
pub fn now_secs() -> u64 {
    now_millis() / 1000
}

/// Unix time now, in milliseconds.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_never_puts_back_members_the_writer_replaced() {
        let cache = MembersCache::default();
        let room = ConversationId::room(7);
        // A reader starts reading, the writer removes someone and invalidates, then the
        // reader finishes with the old list: it must not be cached.
        let seen = cache.generation();
        cache.invalidate(&room);
        cache.insert_if_unchanged(&room, Arc::from([1, 2, 3].as_slice()), seen);
        assert!(cache.get(&room).is_none());
        // With nothing in between, the reader's list is kept.
        let seen = cache.generation();
        cache.insert_if_unchanged(&room, Arc::from([1, 2].as_slice()), seen);
        assert_eq!(cache.get(&room).as_deref(), Some([1, 2].as_slice()));
    }
}
