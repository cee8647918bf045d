//! Uploaded files and profile pictures as the database sees them: which blob each names, who
//! may fetch it, and how many records name each blob (so the sweep knows what to remove).
//!
//! An upload is *pending* (bound to its uploader and conversation) until a send names it; the
//! send moves it into the message in the writer's transaction. A blob's count is the number of
//! file records (original and thumbnail) and profile pictures naming it: an upload adds, a
//! delete of its message or the expiry of a pending upload takes away, each in the same
//! transaction as the change itself. A blob whose count reaches zero loses its row.

use std::collections::HashSet;

use redb::{ReadableTable, Table};
use serde::{Deserialize, Serialize};

use super::chat::{BatchTables, ChatRejection, ConversationId, MessageRecord, is_member};
use super::codec::{Encoded, Record};
use super::users::UserRecord;
use super::{
    BLOB_REFS, FILES, MESSAGES, PENDING_UPLOADS, ROOM_MEMBERS, Result, Store, StoreError, USERS,
    User,
};

/// A file as clients see it in a message or an upload answer.
#[derive(Debug, Clone, Serialize)]
pub struct FileInfo {
    pub id: String,
    pub name: String,
    pub size: u64,
    #[serde(rename = "type")]
    pub mime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// A thumbnail is served at `…/files/{id}/thumb`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub thumb: bool,
}

/// A finished upload to record.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub id: String,
    pub uploader: u64,
    pub conversation: ConversationId,
    pub blob: String,
    pub thumb: Option<String>,
    pub name: String,
    pub size: u64,
    pub mime: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Unix milliseconds.
    pub created: u64,
}

/// A file someone may fetch: what it is and where its bytes are.
#[derive(Debug, Clone)]
pub struct FetchableFile {
    pub info: FileInfo,
    pub blob: String,
    pub thumb: Option<String>,
}

impl FetchableFile {
    /// Decoded as a picture, so it may be served as the image type it really is.
    pub fn is_picture(&self) -> bool {
        self.info.width.is_some()
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct FileRecord {
    uploader: u64,
    conversation: String,
    blob: String,
    thumb: Option<String>,
    name: String,
    size: u64,
    mime: String,
    width: Option<u32>,
    height: Option<u32>,
    created: u64,
    /// The seq of the message carrying it; `None` while pending.
    attached: Option<u64>,
}

impl Record for FileRecord {
    const TYPE_NAME: &'static str = "confab::File";
    const VERSION: u8 = 1;
}

/// A file as a message record keeps it, so history needs no second lookup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AttachedFile {
    id: String,
    name: String,
    size: u64,
    mime: String,
    width: Option<u32>,
    height: Option<u32>,
    thumb: bool,
}

impl AttachedFile {
    pub(super) fn info(&self) -> FileInfo {
        FileInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            size: self.size,
            mime: self.mime.clone(),
            width: self.width,
            height: self.height,
            thumb: self.thumb,
        }
    }
}

impl FileRecord {
    fn info(&self, id: &str) -> FileInfo {
        FileInfo {
            id: id.to_owned(),
            name: self.name.clone(),
            size: self.size,
            mime: self.mime.clone(),
            width: self.width,
            height: self.height,
            thumb: self.thumb.is_some(),
        }
    }

    fn blobs(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.blob.as_str()).chain(self.thumb.as_deref())
    }
}

impl Store {
    /// Records a finished upload as pending, counting its blobs.
    pub fn record_upload(&self, upload: &NewUpload) -> Result<FileInfo> {
        let record = FileRecord {
            uploader: upload.uploader,
            conversation: upload.conversation.as_str().to_owned(),
            blob: upload.blob.clone(),
            thumb: upload.thumb.clone(),
            name: upload.name.clone(),
            size: upload.size,
            mime: upload.mime.clone(),
            width: upload.width,
            height: upload.height,
            created: upload.created,
            attached: None,
        };
        self.write(|txn| {
            let mut refs = txn.open_table(BLOB_REFS)?;
            for blob in record.blobs() {
                count_blob(&mut refs, blob, 1)?;
            }
            txn.open_table(FILES)?
                .insert(upload.id.as_str(), Encoded::new(&record))?;
            txn.open_table(PENDING_UPLOADS)?
                .insert((upload.created, upload.id.as_str()), ())?;
            Ok(())
        })?;
        Ok(record.info(&upload.id))
    }

    /// The file `id` in `conversation`, if `user` may fetch it: they are a member, and a
    /// message they can see carries it (or it is their own pending upload there).
    pub fn fetchable_file(
        &self,
        user: u64,
        conversation: &ConversationId,
        id: &str,
    ) -> Result<Option<FetchableFile>> {
        let txn = self.read()?;
        let Some(record) = txn.open_table(FILES)?.get(id)? else {
            return Ok(None);
        };
        let record = record.value().decode()?;
        if record.conversation != conversation.as_str()
            || !is_member(
                &txn.open_table(USERS)?,
                &txn.open_table(ROOM_MEMBERS)?,
                conversation,
                user,
            )?
        {
            return Ok(None);
        }
        let visible = match record.attached {
            None => record.uploader == user,
            Some(seq) => match txn
                .open_table(MESSAGES)?
                .get((conversation.as_str(), seq))?
            {
                Some(message) => {
                    let message = message.value().decode()?;
                    !message.deleted && (!message.withheld || message.from == user)
                }
                None => false,
            },
        };
        Ok(visible.then(|| FetchableFile {
            info: record.info(id),
            blob: record.blob,
            thumb: record.thumb,
        }))
    }

    /// Forgets uploads still pending since before `before` (unix ms); their blobs lose a
    /// reference. Returns how many.
    pub fn expire_uploads(&self, before: u64) -> Result<usize> {
        self.write(|txn| {
            let mut pending = txn.open_table(PENDING_UPLOADS)?;
            let mut expired = Vec::new();
            for entry in pending.range((0, "")..(before, ""))? {
                let key = entry?.0;
                let (created, id) = key.value();
                expired.push((created, id.to_owned()));
            }
            let mut files = txn.open_table(FILES)?;
            let mut refs = txn.open_table(BLOB_REFS)?;
            for (created, id) in &expired {
                pending.remove((*created, id.as_str()))?;
                let removed = files.remove(id.as_str())?.map(|r| r.value().decode());
                if let Some(record) = removed.transpose()? {
                    for blob in record.blobs() {
                        count_blob(&mut refs, blob, -1)?;
                    }
                }
            }
            Ok(expired.len())
        })
    }

    /// Every blob some record names: what the sweep keeps.
    pub fn referenced_blobs(&self) -> Result<HashSet<String>> {
        let txn = self.read()?;
        let mut out = HashSet::new();
        for entry in txn.open_table(BLOB_REFS)?.iter()? {
            out.insert(entry?.0.value().to_owned());
        }
        Ok(out)
    }

    /// Sets (or with `None` clears) a user's profile picture, moving the blob reference.
    pub fn set_avatar(&self, id: u64, blob: Option<String>) -> Result<User> {
        self.write(|txn| {
            let mut users = txn.open_table(USERS)?;
            let mut record: UserRecord = match users.get(id)? {
                Some(r) => r.value().decode()?,
                None => return Err(StoreError::NoSuchUser),
            };
            let mut refs = txn.open_table(BLOB_REFS)?;
            if let Some(old) = &record.avatar {
                count_blob(&mut refs, old, -1)?;
            }
            if let Some(new) = &blob {
                count_blob(&mut refs, new, 1)?;
            }
            record.avatar = blob;
            users.insert(id, Encoded::new(&record))?;
            drop((users, refs));
            Ok(())
        })?;
        self.user(id)?.ok_or(StoreError::NoSuchUser)
    }

    /// The blob of `user`'s profile picture, if they have one.
    pub fn avatar_blob(&self, user: u64) -> Result<Option<String>> {
        let txn = self.read()?;
        Ok(match txn.open_table(USERS)?.get(user)? {
            Some(record) => record.value().decode()?.avatar,
            None => None,
        })
    }
}

impl BatchTables<'_> {
    /// Moves the sender's pending uploads `ids` in `conversation` into message `seq`.
    pub(super) fn attach_files(
        &mut self,
        sender: u64,
        conversation: &str,
        seq: u64,
        ids: &[String],
    ) -> Result<Result<Vec<AttachedFile>, ChatRejection>> {
        let mut records = Vec::with_capacity(ids.len());
        for (at, id) in ids.iter().enumerate() {
            let record = match self.files.get(id.as_str())? {
                Some(r) => r.value().decode()?,
                None => return Ok(Err(ChatRejection::NoSuchFile)),
            };
            let usable = record.uploader == sender
                && record.conversation == conversation
                && record.attached.is_none()
                && !ids[..at].contains(id);
            if !usable {
                return Ok(Err(ChatRejection::NoSuchFile));
            }
            records.push(record);
        }
        let mut attached = Vec::with_capacity(ids.len());
        for (id, mut record) in ids.iter().zip(records) {
            self.pending_uploads.remove((record.created, id.as_str()))?;
            record.attached = Some(seq);
            self.files.insert(id.as_str(), Encoded::new(&record))?;
            attached.push(AttachedFile {
                id: id.clone(),
                name: record.name,
                size: record.size,
                mime: record.mime,
                width: record.width,
                height: record.height,
                thumb: record.thumb.is_some(),
            });
        }
        Ok(Ok(attached))
    }

    /// A deleted message's files are gone: their records, and a reference to each blob.
    pub(super) fn drop_files(&mut self, message: &mut MessageRecord) -> Result<()> {
        for file in std::mem::take(&mut message.files) {
            let removed = self
                .files
                .remove(file.id.as_str())?
                .map(|r| r.value().decode());
            if let Some(record) = removed.transpose()? {
                for blob in record.blobs() {
                    count_blob(self.blob_refs.table_mut()?, blob, -1)?;
                }
            }
        }
        Ok(())
    }
}

/// Adds `delta` to a blob's reference count; a count of zero removes the row.
fn count_blob(refs: &mut Table<&'static str, u64>, blob: &str, delta: i64) -> Result<()> {
    let current = refs.get(blob)?.map_or(0, |v| v.value());
    let next = current.saturating_add_signed(delta);
    if next == 0 {
        refs.remove(blob)?;
    } else {
        refs.insert(blob, next)?;
    }
    Ok(())
}

/// `confab check`: every blob's stored count matches the records naming it (repaired by
/// recounting), and the report lists the blobs that must be on disk.
pub(super) fn check_blob_refs(
    txn: &redb::WriteTransaction,
    report: &mut super::CheckReport,
    repair: bool,
) -> Result<()> {
    let mut expected = std::collections::BTreeMap::<String, u64>::new();
    for entry in txn.open_table(FILES)?.iter()? {
        if let Ok(record) = entry?.1.value().decode() {
            for blob in record.blobs() {
                *expected.entry(blob.to_owned()).or_default() += 1;
            }
        }
    }
    for entry in txn.open_table(USERS)?.iter()? {
        if let Ok(record) = entry?.1.value().decode()
            && let Some(avatar) = record.avatar
        {
            *expected.entry(avatar).or_default() += 1;
        }
    }
    let mut refs = txn.open_table(BLOB_REFS)?;
    let mut stored = std::collections::BTreeMap::new();
    for entry in refs.iter()? {
        let (blob, count) = entry?;
        stored.insert(blob.value().to_owned(), count.value());
    }
    if stored != expected {
        report.problems.push(format!(
            "the reference counts of {} blobs disagree with the files and profile pictures naming them",
            expected
                .keys()
                .chain(stored.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter(|b| expected.get(*b) != stored.get(*b))
                .count()
        ));
        if repair {
            refs.retain(|_, _| false)?;
            for (blob, count) in &expected {
                refs.insert(blob.as_str(), *count)?;
            }
            report.repaired += 1;
        }
    }
    report.blobs = expected.into_keys().collect();
    Ok(())
}
