//! Conversations (DMs and rooms), messages, read positions, unread and mention counts, and
//! idempotent sends.
//!
//! All chat writes arrive as a batch of [`ChatOp`]s from the hub's single writer and are
//! applied in one write transaction (group commit): one fsync for many sends.
//!
//! Unread counts: a DM stores each member's count (two rows per message, and a message the
//! recipient blocked is not counted). A room never writes per member on a send: every message
//! after a member's `read_seq` is from someone else (sending moves your own `read_seq`), so a
//! room member's unread count is `last_seq - read_seq`.

use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

use super::codec::{Encoded, Record, Stored};
use super::edits::MessageChange;
use super::files::{self, AttachedFile, FileInfo};
use super::lazy_table::LazyTable;
use super::people::{self, DmPolicy};
use super::rooms::{self, RoomInfo, RoomView};
use super::users::{self, SessionRecord, UserRecord};
use super::{
    BLOB_REFS, BLOCKS, CHANGES, CLIENT_IDS, CONVERSATIONS, DECLINED, DELETED, FILES, LAST_SEEN,
    MEMBERSHIPS, MENTIONS, MESSAGES, META, PENDING_UPLOADS, REQUESTS, ROOM_MEMBERS, ROOM_MENTIONS,
    ROOM_NAMES, Result, SESSIONS, SETTINGS, Store, USER_SESSIONS, USERNAMES, USERS,
};

/// A conversation id in canonical form: `dm:<lower user id>:<higher user id>` or `room:<n>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConversationId(String);

impl ConversationId {
    pub fn dm(a: u64, b: u64) -> ConversationId {
        ConversationId(format!("dm:{}:{}", a.min(b), a.max(b)))
    }

    pub fn room(n: u64) -> ConversationId {
        ConversationId(format!("room:{n}"))
    }

    /// The office-wide room everyone is in.
    pub fn general() -> ConversationId {
        ConversationId::room(rooms::GENERAL)
    }

    /// Accepts only canonical ids, so one conversation never has two spellings.
    pub fn parse(raw: &str) -> Option<ConversationId> {
        if let Some(n) = raw.strip_prefix("room:") {
            let n: u64 = n.parse().ok()?;
            let id = ConversationId::room(n);
            return (n > 0 && id.0 == raw).then_some(id);
        }
        let mut parts = raw.strip_prefix("dm:")?.split(':');
        let low: u64 = parts.next()?.parse().ok()?;
        let high: u64 = parts.next()?.parse().ok()?;
        let canonical = parts.next().is_none() && low < high && low > 0;
        (canonical && ConversationId::dm(low, high).0 == raw).then(|| ConversationId::dm(low, high))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_room(&self) -> bool {
        self.0.starts_with("room:")
    }

    /// The two members a DM id names.
    pub(super) fn dm_members(&self) -> Option<[u64; 2]> {
        let mut parts = self.0.strip_prefix("dm:")?.split(':');
        Some([parts.next()?.parse().ok()?, parts.next()?.parse().ok()?])
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ConversationId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A stored message, as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub conversation: ConversationId,
    pub seq: u64,
    pub from: u64,
    pub body: String,
    /// Unix milliseconds.
    pub sent_at: u64,
    /// Users mentioned with `@username` (rooms only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<u64>,
    /// `@room`: everyone is mentioned.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub mentions_room: bool,
    /// The message this one answers, as it reads now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyPreview>,
    /// Unix milliseconds of the last edit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<u64>,
    /// Deleted: the body is empty and gone from the store.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileInfo>,
}

/// What a reply shows of the message it answers: who wrote it and its first line.
#[derive(Debug, Clone, Serialize)]
pub struct ReplyPreview {
    pub seq: u64,
    pub from: u64,
    pub snippet: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

/// One emoji under a message and who put it there, in the order they did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub emoji: String,
    pub users: Vec<u64>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct MemberRead {
    pub user: u64,
    pub seq: u64,
}

/// How loudly a conversation may claim a member's attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Notify {
    All,
    Mentions,
    Muted,
}

/// One conversation from one member's point of view.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationSummary {
    pub id: ConversationId,
    pub kind: &'static str,
    /// A DM's two members; rooms list theirs through their own endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<u64>>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomView>,
    pub last_seq: u64,
    /// How many edits, deletes and reactions the conversation has seen (for
    /// `GET …/changes?after=`).
    pub change_seq: u64,
    pub read_seq: u64,
    pub unread: u64,
    pub mentions: u64,
    pub notify: Notify,
    pub last_message: Option<Message>,
    /// How far each other member has read (empty for rooms too big for receipts).
    pub reads: Vec<MemberRead>,
    #[serde(skip)]
    pub(super) last_activity: u64,
}

#[derive(Debug, Serialize)]
pub struct HistoryPage {
    pub messages: Vec<Message>,
    pub has_more: bool,
}

#[derive(Debug, Clone, Copy)]
pub enum HistoryQuery {
    /// Newest first by pages: the `limit` messages before `seq` (exclusive; `None` = newest).
    Before(Option<u64>, u32),
    /// Catch-up: the `limit` messages after `seq`, oldest first.
    After(u64, u32),
}

impl HistoryQuery {
    fn limit(self) -> u32 {
        match self {
            HistoryQuery::Before(_, limit) | HistoryQuery::After(_, limit) => limit,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub(super) enum Kind {
    Dm,
    Room,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ConversationRecord {
    pub(super) kind: Kind,
    /// A DM's two members; empty for rooms, whose members are rows of `room_members`.
    pub(super) members: Vec<u64>,
    pub(super) last_seq: u64,
    /// Unix milliseconds of the newest message, for ordering conversation lists.
    pub(super) last_activity: u64,
    pub(super) room: Option<RoomInfo>,
    /// Bumped by every edit, delete and reaction (see `store::edits`).
    pub(super) change_seq: u64,
}

/// Format 1 (release 0.1): DMs only.
#[derive(Deserialize)]
struct ConversationRecordV1 {
    kind: Kind,
    members: Vec<u64>,
    last_seq: u64,
    last_activity: u64,
}

impl Record for ConversationRecord {
    const TYPE_NAME: &'static str = "confab::Conversation";
    const VERSION: u8 = 2;

    fn decode_older(version: u8, body: &[u8]) -> Option<Result<Self, postcard::Error>> {
        (version == 1).then(|| {
            postcard::from_bytes::<ConversationRecordV1>(body).map(|v1| ConversationRecord {
                kind: v1.kind,
                members: v1.members,
                last_seq: v1.last_seq,
                last_activity: v1.last_activity,
                room: None,
                change_seq: 0,
            })
        })
    }
}

impl ConversationRecord {
    /// The record history implies, keeping what history cannot tell from `previous`.
    pub(super) fn rebuilt(
        previous: Option<ConversationRecord>,
        members: Vec<u64>,
        last_seq: u64,
        last_activity: u64,
    ) -> ConversationRecord {
        match previous {
            Some(previous) => ConversationRecord {
                members: if previous.room.is_some() {
                    Vec::new()
                } else {
                    members
                },
                last_seq,
                last_activity,
                ..previous
            },
            None => ConversationRecord {
                kind: Kind::Dm,
                members,
                last_seq,
                last_activity,
                room: None,
                change_seq: 0,
            },
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct MessageRecord {
    pub(super) from: u64,
    pub(super) body: String,
    pub(super) sent_at: u64,
    pub(super) mentions: Vec<u64>,
    pub(super) mentions_room: bool,
    /// A DM the recipient had blocked the sender for: shown to the sender only.
    pub(super) withheld: bool,
    pub(super) reply_to: Option<u64>,
    pub(super) edited_at: Option<u64>,
    pub(super) deleted: bool,
    pub(super) reactions: Vec<Reaction>,
    pub(super) files: Vec<AttachedFile>,
}

impl MessageRecord {
    pub(super) fn new(from: u64, body: String, sent_at: u64) -> MessageRecord {
        MessageRecord {
            from,
            body,
            sent_at,
            mentions: Vec::new(),
            mentions_room: false,
            withheld: false,
            reply_to: None,
            edited_at: None,
            deleted: false,
            reactions: Vec::new(),
            files: Vec::new(),
        }
    }
}

/// Format 1 (release 0.1): text only.
#[derive(Deserialize)]
struct MessageRecordV1 {
    from: u64,
    body: String,
    sent_at: u64,
}

/// Format 2: mentions, replies, edits, deletes and reactions; no files.
#[derive(Deserialize)]
struct MessageRecordV2 {
    from: u64,
    body: String,
    sent_at: u64,
    mentions: Vec<u64>,
    mentions_room: bool,
    withheld: bool,
    reply_to: Option<u64>,
    edited_at: Option<u64>,
    deleted: bool,
    reactions: Vec<Reaction>,
}

impl Record for MessageRecord {
    const TYPE_NAME: &'static str = "confab::Message";
    const VERSION: u8 = 3;

    fn decode_older(version: u8, body: &[u8]) -> Option<Result<Self, postcard::Error>> {
        match version {
            1 => Some(
                postcard::from_bytes::<MessageRecordV1>(body)
                    .map(|v1| MessageRecord::new(v1.from, v1.body, v1.sent_at)),
            ),
            2 => Some(
                postcard::from_bytes::<MessageRecordV2>(body).map(|v2| MessageRecord {
                    mentions: v2.mentions,
                    mentions_room: v2.mentions_room,
                    withheld: v2.withheld,
                    reply_to: v2.reply_to,
                    edited_at: v2.edited_at,
                    deleted: v2.deleted,
                    reactions: v2.reactions,
                    ..MessageRecord::new(v2.from, v2.body, v2.sent_at)
                }),
            ),
            _ => None,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct MembershipRecord {
    pub(super) read_seq: u64,
    /// DMs only; a room's unread count is derived (see the module docs).
    pub(super) unread: u64,
    /// `None` until the member chooses.
    pub(super) notify: Option<Notify>,
}

#[derive(Deserialize)]
struct MembershipRecordV1 {
    read_seq: u64,
    unread: u64,
}

impl Record for MembershipRecord {
    const TYPE_NAME: &'static str = "confab::Membership";
    const VERSION: u8 = 2;

    fn decode_older(version: u8, body: &[u8]) -> Option<Result<Self, postcard::Error>> {
        (version == 1).then(|| {
            postcard::from_bytes::<MembershipRecordV1>(body).map(|v1| MembershipRecord {
                read_seq: v1.read_seq,
                unread: v1.unread,
                notify: None,
            })
        })
    }
}

/// A row of the client id table: the sender and their client id.
pub type ClientIdKey = (u64, String);

/// Client ids read per [`ChatOp::PurgeClientIds`]: about a millisecond of the writer's time.
pub const CLIENT_ID_PURGE_CHUNK: usize = 2_000;

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ClientIdRecord {
    pub(super) conversation: String,
    pub(super) seq: u64,
    pub(super) body_sha256: [u8; 32],
    /// Unix milliseconds, for expiry.
    pub(super) at: u64,
}

impl Record for ClientIdRecord {
    const TYPE_NAME: &'static str = "confab::ClientId";
    const VERSION: u8 = 1;
}

#[derive(Debug, Clone)]
pub enum SendTarget {
    User(u64),
    Conversation(ConversationId),
}

/// A write the hub's writer applies as part of a batch.
#[derive(Debug)]
pub enum ChatOp {
    Send {
        sender: u64,
        target: SendTarget,
        body: String,
        client_id: String,
        sent_at: u64,
        /// The seq of the message this one answers.
        reply_to: Option<u64>,
        /// Pending uploads of the sender's in this conversation to carry.
        files: Vec<String>,
    },
    /// An edit, delete or reaction (see `store::edits`).
    Change {
        user: u64,
        conversation: ConversationId,
        seq: u64,
        change: MessageChange,
        client_id: String,
        at: u64,
    },
    Read {
        user: u64,
        conversation: ConversationId,
        seq: u64,
    },
    /// Forget client ids recorded before `before` (unix ms), reading at most
    /// [`CLIENT_ID_PURGE_CHUNK`] of them, those after `after`: a big table is purged in many
    /// short writes (see [`ChatOutcome::Purged`]), never one long stall of the writer.
    PurgeClientIds {
        before: u64,
        after: Option<ClientIdKey>,
    },
    /// These users were connected at `at` (unix seconds).
    Seen {
        users: Vec<u64>,
        at: u64,
    },
    /// Forget sessions expired at `now` (unix seconds).
    PurgeExpiredSessions {
        now: u64,
    },
    Room(rooms::RoomOp),
    People(people::PeopleOp),
}

#[derive(Debug)]
pub enum ChatOutcome {
    /// Stored now: acknowledge it and deliver it to `members`.
    Sent {
        message: Message,
        members: Arc<[u64]>,
    },
    /// A retry of an earlier send or change: acknowledge it again (the message as the one
    /// retrying may see it now), deliver nothing.
    Duplicate {
        message: Message,
    },
    /// A message was edited, deleted or reacted to: acknowledge it and tell `members`.
    Updated {
        message: Message,
        members: Arc<[u64]>,
        change_seq: u64,
        /// Members who block someone whose reaction the (DM) message carries, each with the
        /// message as they may see it, to be told instead of `message`. Usually empty.
        blockers: Vec<(u64, Message)>,
    },
    /// The reader's position moved; `receipt_to` are told (the other members, unless the
    /// room is too big for receipts).
    Read {
        conversation: ConversationId,
        user: u64,
        read_seq: u64,
        unread: u64,
        mentions: u64,
        receipt_to: Arc<[u64]>,
    },
    Room(rooms::RoomEvent),
    People(people::PeopleEvent),
    /// A chunk of client ids was purged; the purge goes on after `resume`, if any.
    Purged {
        resume: Option<ClientIdKey>,
    },
    /// Nothing to tell anyone.
    Unchanged,
    Rejected(ChatRejection),
}

impl ChatOutcome {
    /// Whether this stored a new message: a send, or an accepted chat request's first message.
    pub fn is_new_message(&self) -> bool {
        matches!(
            self,
            ChatOutcome::Sent { .. } | ChatOutcome::People(people::PeopleEvent::Accepted { .. })
        )
    }

    /// Text someone wrote was just removed (a deleted message, a declined or dropped request):
    /// its old bytes are still in the file's free pages until [`Store::scrub_free_pages`].
    pub fn erased_text(&self) -> bool {
        match self {
            ChatOutcome::Updated { message, .. } => message.deleted,
            ChatOutcome::People(
                people::PeopleEvent::Declined { .. } | people::PeopleEvent::RequestDropped { .. },
            ) => true,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChatRejection {
    #[error("you are not a member of that conversation")]
    NotAMember,
    #[error("there is no active user with that id")]
    NoSuchUser,
    #[error("you cannot send a message to yourself")]
    CannotMessageSelf,
    #[error("that client_id was already used for another message")]
    ClientIdReused,
    #[error("seq is beyond the conversation's last message")]
    InvalidSeq,
    #[error("not found")]
    NotFound,
    #[error("this room is archived: it can be read but not changed")]
    RoomArchived,
    #[error("only the room's creator or an administrator can do that")]
    Forbidden,
    #[error("people join open rooms themselves")]
    OpenRoomsAreJoined,
    #[error("they are already a member")]
    AlreadyMember,
    #[error("everyone is in General; nobody can leave it or be removed")]
    CannotLeaveGeneral,
    #[error("General is always open and never archived; only administrators rename it")]
    GeneralIsFixed,
    #[error("an open room already has that name")]
    RoomNameTaken,
    #[error("only administrators and the room's creator can mention @room here")]
    MentionNotAllowed,
    #[error("your chat request is waiting for their answer")]
    RequestPending,
    #[error("they declined your chat request; you can ask again later")]
    RequestDeclined,
    #[error("you cannot block yourself")]
    CannotBlockSelf,
    #[error("there is no such message")]
    NoSuchMessage,
    #[error("you can only change your own messages")]
    NotYourMessage,
    #[error("messages can be edited for 24 hours after they are sent")]
    EditWindowPassed,
    #[error("that message was deleted")]
    MessageDeleted,
    #[error("a message can carry at most 20 different reactions")]
    TooManyReactions,
    #[error("no such file: upload it to this conversation first")]
    NoSuchFile,
    #[error("a chat request carries text only; send files once they accept")]
    FilesInRequest,
}

impl ChatRejection {
    /// The stable code clients see (docs/PROTOCOL.md). `not_found` is for HTTP; on the socket
    /// an outsider is told `not_a_member` like for any conversation they are not in.
    pub fn code(&self) -> &'static str {
        match self {
            ChatRejection::NotAMember => "not_a_member",
            ChatRejection::NoSuchUser => "no_such_user",
            ChatRejection::CannotMessageSelf => "cannot_message_self",
            ChatRejection::ClientIdReused => "client_id_reused",
            ChatRejection::InvalidSeq => "invalid_seq",
            ChatRejection::NotFound => "not_found",
            ChatRejection::RoomArchived => "room_archived",
            ChatRejection::Forbidden | ChatRejection::OpenRoomsAreJoined => "forbidden",
            ChatRejection::AlreadyMember => "already_member",
            ChatRejection::CannotLeaveGeneral => "cannot_leave_general",
            ChatRejection::GeneralIsFixed => "general_is_fixed",
            ChatRejection::RoomNameTaken => "room_name_taken",
            ChatRejection::MentionNotAllowed => "mention_not_allowed",
            ChatRejection::RequestPending => "request_pending",
            ChatRejection::RequestDeclined => "request_declined",
            ChatRejection::CannotBlockSelf => "cannot_block_self",
            ChatRejection::NoSuchMessage => "no_such_message",
            ChatRejection::NotYourMessage => "not_your_message",
            ChatRejection::EditWindowPassed => "edit_window_passed",
            ChatRejection::MessageDeleted => "message_deleted",
            ChatRejection::TooManyReactions => "too_many_reactions",
            ChatRejection::NoSuchFile => "no_such_file",
            ChatRejection::FilesInRequest => "files_in_request",
        }
    }
}

/// A room's members, shared by every fan-out of its messages.
pub type Members = Arc<[u64]>;

impl Store {
    /// Applies a batch of writes in one transaction and returns one outcome per op, in order.
    /// A rejected op changes nothing; the others still commit.
    pub fn apply_chat_batch(&self, ops: &[ChatOp]) -> Result<Vec<ChatOutcome>> {
        let committed = self.write(|txn| {
            let mut tables = BatchTables::open(txn, self);
            let outcomes = ops
                .iter()
                .map(|op| tables.apply(op))
                .collect::<Result<Vec<_>>>()?;
            Ok((outcomes, std::mem::take(&mut tables.changed_rooms)))
        });
        match committed {
            Ok((outcomes, changed_rooms)) => {
                for room in &changed_rooms {
                    self.members_cache.invalidate(room);
                }
                Ok(outcomes)
            }
            Err(error) => {
                // The cache may hold what the failed transaction would have written.
                self.members_cache.clear();
                Err(error)
            }
        }
    }

    /// The user's conversations, most recent activity first.
    pub fn conversations(&self, user: u64) -> Result<Vec<ConversationSummary>> {
        let txn = self.read()?;
        let view = SummaryView::open(&txn, user)?;
        let mut out = Vec::new();
        for entry in view.memberships.range((user, "")..(user + 1, ""))? {
            let (key, mine) = entry?;
            let id = key.value().1.to_owned();
            let Some(mine) = decode_or_skip(mine.value(), || format!("membership {user} {id}"))
            else {
                continue;
            };
            if let Some(summary) = view.summary(&id, mine)? {
                out.push(summary);
            }
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.last_activity));
        Ok(out)
    }

    /// One conversation from `user`'s point of view, if they are in it.
    pub fn conversation(
        &self,
        user: u64,
        conversation: &ConversationId,
    ) -> Result<Option<ConversationSummary>> {
        let txn = self.read()?;
        let view = SummaryView::open(&txn, user)?;
        let id = conversation.as_str();
        let mine = match view.memberships.get((user, id))? {
            Some(m) => decode_or_skip(m.value(), || format!("membership {user} {id}")),
            None => None,
        };
        match mine {
            Some(mine) => view.summary(id, mine),
            None => Ok(None),
        }
    }

    /// A page of history, or `None` if the user is not a member (or it does not exist).
    pub fn history(
        &self,
        user: u64,
        conversation: &ConversationId,
        query: HistoryQuery,
    ) -> Result<Option<HistoryPage>> {
        let txn = self.read()?;
        let users_table = txn.open_table(USERS)?;
        let room_members = txn.open_table(ROOM_MEMBERS)?;
        if !is_member(&users_table, &room_members, conversation, user)? {
            return Ok(None);
        }
        let id = conversation.as_str();
        let messages = txn.open_table(MESSAGES)?;
        // One message past the page tells whether there is more this user may see (messages
        // withheld from them do not count).
        let wanted = query.limit() as usize + 1;
        let mut page = match query {
            HistoryQuery::Before(before, _) => {
                let end = before.unwrap_or(u64::MAX);
                visible_messages(messages.range((id, 1)..(id, end))?.rev(), id, user, wanted)?
            }
            HistoryQuery::After(after, _) => {
                let start = after.saturating_add(1);
                let entries = messages.range((id, start)..=(id, u64::MAX))?;
                visible_messages(entries, id, user, wanted)?
            }
        };
        let has_more = page.len() == wanted;
        match query {
            HistoryQuery::Before(..) => {
                page.truncate(wanted - 1);
                page.reverse();
            }
            HistoryQuery::After(..) => page.truncate(wanted - 1),
        }
        resolve_replies(&messages, id, &mut page)?;
        people::hide_blocked_reactions(user, &mut page, |other| {
            Ok(txn.open_table(BLOCKS)?.get((user, other))?.is_some())
        })?;
        Ok(Some(HistoryPage {
            messages: page,
            has_more,
        }))
    }

    /// The newest messages that mention `user` (by name, or `@room` from someone they do not
    /// block), in conversations they are still in, newest first.
    pub fn mentions(&self, user: u64, limit: usize) -> Result<Vec<Message>> {
        let txn = self.read()?;
        let messages = txn.open_table(MESSAGES)?;
        let blocked = people::blocked_by(&txn.open_table(BLOCKS)?, user)?;
        let mut found: Vec<(String, u64)> = Vec::new();
        for entry in txn
            .open_table(MENTIONS)?
            .range((user, "", 0)..(user + 1, "", 0))?
        {
            let key = entry?.0;
            let (_, id, seq) = key.value();
            found.push((id.to_owned(), seq));
        }
        let room_mentions = txn.open_table(ROOM_MENTIONS)?;
        for entry in txn
            .open_table(MEMBERSHIPS)?
            .range((user, "room:")..(user, "room;"))?
        {
            let id = entry?.0.value().1.to_owned();
            for mention in room_mentions
                .range((id.as_str(), 0)..=(id.as_str(), u64::MAX))?
                .rev()
                .take(limit)
            {
                let (key, sender) = mention?;
                let sender = sender.value();
                if sender != user && !blocked.contains(&sender) {
                    found.push((id.clone(), key.value().1));
                }
            }
        }
        // A message naming them and `@room` is listed once.
        found.sort_unstable();
        found.dedup();
        let room_members = txn.open_table(ROOM_MEMBERS)?;
        let mut out = Vec::new();
        for (id, seq) in found {
            if room_members.get((id.as_str(), user))?.is_none() {
                continue;
            }
            if let Some(value) = messages.get((id.as_str(), seq))?
                && let Some((message, _)) = readable_message(&id, seq, value.value())
                && !blocked.contains(&message.from)
            {
                out.push(message);
            }
        }
        out.sort_by_key(|m| std::cmp::Reverse((m.sent_at, m.seq)));
        out.truncate(limit);
        // Only the messages listed have their replies looked up.
        for message in &mut out {
            let id = message.conversation.clone();
            resolve_replies(&messages, id.as_str(), std::slice::from_mut(message))?;
        }
        Ok(out)
    }

    /// A room's members changed outside the writer (an account was created into General).
    pub(super) fn members_changed(&self, room: &ConversationId) {
        self.members_cache.invalidate(room);
    }

    /// Everyone in `conversation`, if the cache knows (no database read).
    pub fn cached_members(&self, conversation: &ConversationId) -> Option<Members> {
        self.members_cache.get(conversation)
    }

    /// Everyone `user` shares `conversation` with (themselves included), if they are in it.
    /// Cached: typing indicators ask this for every frame.
    pub fn members(&self, user: u64, conversation: &ConversationId) -> Result<Option<Members>> {
        if let Some(members) = self.members_cache.get(conversation) {
            return Ok(members.contains(&user).then_some(members));
        }
        let seen = self.members_cache.generation();
        let txn = self.read()?;
        let members = members_of(
            &txn.open_table(USERS)?,
            &txn.open_table(ROOM_MEMBERS)?,
            conversation,
        )?;
        let Some(members) = members else {
            return Ok(None);
        };
        self.members_cache
            .insert_if_unchanged(conversation, members.clone(), seen);
        Ok(members.contains(&user).then_some(members))
    }
}

/// The tables a summary reads, opened once for a whole conversation list.
struct SummaryView {
    user: u64,
    memberships: redb::ReadOnlyTable<(u64, &'static str), Stored<MembershipRecord>>,
    conversations: redb::ReadOnlyTable<&'static str, Stored<ConversationRecord>>,
    messages: redb::ReadOnlyTable<(&'static str, u64), Stored<MessageRecord>>,
    room_members: redb::ReadOnlyTable<(&'static str, u64), Stored<rooms::RoomMemberRecord>>,
    mentions: redb::ReadOnlyTable<(u64, &'static str, u64), ()>,
    room_mentions: redb::ReadOnlyTable<(&'static str, u64), u64>,
    deleted: redb::ReadOnlyTable<(&'static str, u64), ()>,
    blocked: Vec<u64>,
}

impl SummaryView {
    fn open(txn: &redb::ReadTransaction, user: u64) -> Result<SummaryView> {
        Ok(SummaryView {
            user,
            memberships: txn.open_table(MEMBERSHIPS)?,
            conversations: txn.open_table(CONVERSATIONS)?,
            messages: txn.open_table(MESSAGES)?,
            room_members: txn.open_table(ROOM_MEMBERS)?,
            mentions: txn.open_table(MENTIONS)?,
            room_mentions: txn.open_table(ROOM_MENTIONS)?,
            deleted: txn.open_table(DELETED)?,
            blocked: people::blocked_by(&txn.open_table(BLOCKS)?, user)?,
        })
    }

    fn summary(&self, id: &str, mine: MembershipRecord) -> Result<Option<ConversationSummary>> {
        let user = self.user;
        let Some(record) = self.conversations.get(id)? else {
            return Ok(None);
        };
        let Some(record) = decode_or_skip(record.value(), || format!("conversation {id}")) else {
            return Ok(None);
        };
        let last_message = self.last_visible_message(id, record.last_seq)?;
        let (room, members, unread, mentions, reads) = match &record.room {
            Some(info) => {
                let unread = record
                    .last_seq
                    .saturating_sub(mine.read_seq)
                    .saturating_sub(deleted_after(&self.deleted, id, mine.read_seq)?);
                let mentions = self.mentions_after(id, mine.read_seq)?;
                let reads = if info.member_count as usize <= rooms::RECEIPTS_MAX_MEMBERS {
                    let mut reads = Vec::new();
                    for entry in self.room_members.range((id, 0)..=(id, u64::MAX))? {
                        let other = entry?.0.value().1;
                        if other != user {
                            reads.push(MemberRead {
                                user: other,
                                seq: self.read_seq_of(other, id)?,
                            });
                        }
                    }
                    reads
                } else {
                    Vec::new()
                };
                let view = RoomView::new(id, info);
                (Some(view), None, unread, mentions, reads)
            }
            None => {
                let mut reads = Vec::new();
                for &other in record.members.iter().filter(|&&m| m != user) {
                    reads.push(MemberRead {
                        user: other,
                        seq: self.read_seq_of(other, id)?,
                    });
                }
                (None, Some(record.members), mine.unread, 0, reads)
            }
        };
        let notify = mine.notify.unwrap_or_else(|| default_notify(room.as_ref()));
        // DM messages withheld from this user (they block the sender) do not move the
        // conversation for them: it ends at the last message they may see.
        let (last_seq, last_activity) = match &last_message {
            _ if room.is_some() => (record.last_seq, record.last_activity),
            Some(last) if last.seq < record.last_seq => (last.seq, last.sent_at),
            Some(_) => (record.last_seq, record.last_activity),
            None => (0, 0),
        };
        Ok(Some(ConversationSummary {
            id: ConversationId(id.to_owned()),
            kind: if room.is_some() { "room" } else { "dm" },
            members,
            room,
            last_seq,
            change_seq: record.change_seq,
            read_seq: mine.read_seq,
            unread,
            mentions,
            notify,
            last_message,
            reads,
            last_activity,
        }))
    }

    fn read_seq_of(&self, member: u64, id: &str) -> Result<u64> {
        Ok(self
            .memberships
            .get((member, id))?
            .and_then(|m| decode_or_skip(m.value(), || format!("membership {member} {id}")))
            .map_or(0, |m| m.read_seq))
    }

    /// Mentions of this user (by name or `@room`) after `read_seq`, not from people they block.
    fn mentions_after(&self, id: &str, read_seq: u64) -> Result<u64> {
        count_mentions(
            &self.mentions,
            &self.room_mentions,
            self.user,
            id,
            read_seq,
            |seq, sender| {
                if self.blocked.is_empty() {
                    return Ok(false);
                }
                let sender = match sender {
                    Some(sender) => Some(sender),
                    None => sender_of(&self.messages, id, seq)?,
                };
                Ok(sender.is_some_and(|s| self.blocked.contains(&s)))
            },
        )
    }

    /// The newest message this user may see (a DM withheld from them is skipped), as they may
    /// see it, its reply resolved like everywhere else: one more lookup, for this one message
    /// only, as a long conversation list builds a summary for every conversation.
    fn last_visible_message(&self, id: &str, last_seq: u64) -> Result<Option<Message>> {
        for entry in self.messages.range((id, 1)..=(id, last_seq))?.rev() {
            let (key, value) = entry?;
            if let Some((mut message, withheld)) =
                readable_message(id, key.value().1, value.value())
                && (!withheld || message.from == self.user)
            {
                let one = std::slice::from_mut(&mut message);
                resolve_replies(&self.messages, id, one)?;
                people::hide_blocked_reactions(self.user, one, |other| {
                    Ok(self.blocked.contains(&other))
                })?;
                return Ok(Some(message));
            }
        }
        Ok(None)
    }
}

/// Rooms with many members default to mentions only, so General is not a constant ping.
fn default_notify(room: Option<&RoomView>) -> Notify {
    match room {
        Some(room) if room.member_count as usize > rooms::LOUD_ROOM_MAX_MEMBERS => Notify::Mentions,
        _ => Notify::All,
    }
}

/// The tables a batch writes, each opened once per transaction, when an op first uses it.
pub(super) struct BatchTables<'txn> {
    pub(super) store: &'txn Store,
    pub(super) meta: LazyTable<'txn, &'static str, &'static [u8]>,
    pub(super) users: LazyTable<'txn, u64, Stored<UserRecord>>,
    pub(super) usernames: LazyTable<'txn, &'static str, u64>,
    pub(super) conversations: LazyTable<'txn, &'static str, Stored<ConversationRecord>>,
    pub(super) messages: LazyTable<'txn, (&'static str, u64), Stored<MessageRecord>>,
    pub(super) memberships: LazyTable<'txn, (u64, &'static str), Stored<MembershipRecord>>,
    pub(super) client_ids: LazyTable<'txn, (u64, &'static str), Stored<ClientIdRecord>>,
    pub(super) last_seen: LazyTable<'txn, u64, u64>,
    pub(super) sessions: LazyTable<'txn, u128, Stored<SessionRecord>>,
    pub(super) user_sessions: LazyTable<'txn, (u64, u128), ()>,
    pub(super) room_members: LazyTable<'txn, (&'static str, u64), Stored<rooms::RoomMemberRecord>>,
    pub(super) room_names: LazyTable<'txn, &'static str, u64>,
    pub(super) mentions: LazyTable<'txn, (u64, &'static str, u64), ()>,
    pub(super) room_mentions: LazyTable<'txn, (&'static str, u64), u64>,
    pub(super) settings: LazyTable<'txn, u64, Stored<people::SettingsRecord>>,
    pub(super) requests: LazyTable<'txn, (u64, u64), Stored<people::RequestRecord>>,
    pub(super) declined: LazyTable<'txn, (u64, u64), u64>,
    pub(super) blocks: LazyTable<'txn, (u64, u64), ()>,
    pub(super) changes: LazyTable<'txn, (&'static str, u64), u64>,
    pub(super) deleted: LazyTable<'txn, (&'static str, u64), ()>,
    pub(super) files: LazyTable<'txn, &'static str, Stored<files::FileRecord>>,
    pub(super) pending_uploads: LazyTable<'txn, (u64, &'static str), ()>,
    pub(super) blob_refs: LazyTable<'txn, &'static str, u64>,
    /// Rooms whose members this batch changed, invalidated again once it commits.
    pub(super) changed_rooms: Vec<ConversationId>,
}

impl<'txn> BatchTables<'txn> {
    pub(super) fn open(txn: &'txn WriteTransaction, store: &'txn Store) -> Self {
        BatchTables {
            store,
            meta: LazyTable::new(txn, META),
            users: LazyTable::new(txn, USERS),
            usernames: LazyTable::new(txn, USERNAMES),
            conversations: LazyTable::new(txn, CONVERSATIONS),
            messages: LazyTable::new(txn, MESSAGES),
            memberships: LazyTable::new(txn, MEMBERSHIPS),
            client_ids: LazyTable::new(txn, CLIENT_IDS),
            last_seen: LazyTable::new(txn, LAST_SEEN),
            sessions: LazyTable::new(txn, SESSIONS),
            user_sessions: LazyTable::new(txn, USER_SESSIONS),
            room_members: LazyTable::new(txn, ROOM_MEMBERS),
            room_names: LazyTable::new(txn, ROOM_NAMES),
            mentions: LazyTable::new(txn, MENTIONS),
            room_mentions: LazyTable::new(txn, ROOM_MENTIONS),
            settings: LazyTable::new(txn, SETTINGS),
            requests: LazyTable::new(txn, REQUESTS),
            declined: LazyTable::new(txn, DECLINED),
            blocks: LazyTable::new(txn, BLOCKS),
            changes: LazyTable::new(txn, CHANGES),
            deleted: LazyTable::new(txn, DELETED),
            files: LazyTable::new(txn, FILES),
            pending_uploads: LazyTable::new(txn, PENDING_UPLOADS),
            blob_refs: LazyTable::new(txn, BLOB_REFS),
            changed_rooms: Vec::new(),
        }
    }

    fn apply(&mut self, op: &ChatOp) -> Result<ChatOutcome> {
        match op {
            ChatOp::Send {
                sender,
                target,
                body,
                client_id,
                sent_at,
                reply_to,
                files,
            } => self.send(
                *sender,
                target,
                Outgoing {
                    body,
                    files,
                    reply_to: *reply_to,
                },
                client_id,
                *sent_at,
            ),
            ChatOp::Change {
                user,
                conversation,
                seq,
                change,
                client_id,
                at,
            } => self.change_message(*user, conversation, *seq, change, client_id, *at),
            ChatOp::Read {
                user,
                conversation,
                seq,
            } => self.mark_read(*user, conversation, *seq),
            ChatOp::PurgeClientIds { before, after } => {
                let resume = self.purge_client_ids(*before, after.as_ref())?;
                Ok(ChatOutcome::Purged { resume })
            }
            ChatOp::Seen { users, at } => {
                for &user in users {
                    self.last_seen.insert(user, at)?;
                }
                Ok(ChatOutcome::Unchanged)
            }
            ChatOp::PurgeExpiredSessions { now } => {
                users::purge_expired_sessions(
                    self.sessions.table_mut()?,
                    self.user_sessions.table_mut()?,
                    *now,
                )?;
                Ok(ChatOutcome::Unchanged)
            }
            ChatOp::Room(op) => self.apply_room(op),
            ChatOp::People(op) => self.apply_people(op),
        }
    }

    /// One chunk of [`ChatOp::PurgeClientIds`]: where the next chunk starts, if the table
    /// goes on.
    fn purge_client_ids(
        &mut self,
        before: u64,
        after: Option<&ClientIdKey>,
    ) -> Result<Option<ClientIdKey>> {
        let start = match after {
            Some((user, id)) => Bound::Excluded((*user, id.as_str())),
            None => Bound::Unbounded,
        };
        let mut expired = Vec::new();
        let mut last = None;
        let mut read = 0;
        for entry in self
            .client_ids
            .range::<(u64, &str)>((start, Bound::Unbounded))?
        {
            let (key, record) = entry?;
            let (user, id) = key.value();
            // A record that cannot be read is kept: it is evidence, and tiny.
            if record.value().decode().is_ok_and(|r| r.at < before) {
                expired.push((user, id.to_owned()));
            }
            read += 1;
            if read == CLIENT_ID_PURGE_CHUNK {
                last = Some((user, id.to_owned()));
                break;
            }
        }
        for (user, id) in &expired {
            self.client_ids.remove((*user, id.as_str()))?;
        }
        Ok(last)
    }

    fn send(
        &mut self,
        sender: u64,
        target: &SendTarget,
        outgoing: Outgoing<'_>,
        client_id: &str,
        sent_at: u64,
    ) -> Result<ChatOutcome> {
        let Outgoing {
            body,
            files,
            reply_to,
        } = outgoing;
        let conversation = match target {
            SendTarget::User(to) if *to == sender => {
                return Ok(ChatOutcome::Rejected(ChatRejection::CannotMessageSelf));
            }
            SendTarget::User(to) => ConversationId::dm(sender, *to),
            SendTarget::Conversation(id) => id.clone(),
        };
        let id = conversation.as_str();

        // Someone no longer in the room is an outsider, retry or not: a retry's ack carries
        // the message as it is now.
        let Some(members) = self.members(&conversation)? else {
            return Ok(ChatOutcome::Rejected(not_found_for(target)));
        };
        if !members.contains(&sender) {
            return Ok(ChatOutcome::Rejected(not_found_for(target)));
        }
        // A retry is answered from the sender's own record before anything about the other
        // members is checked: the message was accepted once, so its ack stands even if the
        // recipient was disabled since. The record is keyed by the sender, so it reveals
        // nothing about anyone else.
        let earlier = self
            .client_ids
            .get((sender, client_id))?
            .map(|r| r.value().decode())
            .transpose()?;
        if let Some(earlier) = earlier {
            if earlier.conversation != id || earlier.body_sha256 != send_fingerprint(body, files) {
                return Ok(ChatOutcome::Rejected(ChatRejection::ClientIdReused));
            }
            if let Some(answer) = self.retry_answer(sender, id, earlier.seq)? {
                return Ok(answer);
            }
        }

        let existing = self
            .conversations
            .get(id)?
            .map(|r| r.value().decode())
            .transpose()?;
        let (mentions, mentions_room, withheld) =
            match existing.as_ref().and_then(|r| r.room.as_ref()) {
                Some(room) => {
                    if room.archived {
                        return Ok(ChatOutcome::Rejected(ChatRejection::RoomArchived));
                    }
                    let (mentions, everyone) = self.parse_mentions(body, id, sender)?;
                    if everyone && !self.may_mention_room(&conversation, room, sender)? {
                        return Ok(ChatOutcome::Rejected(ChatRejection::MentionNotAllowed));
                    }
                    (mentions, everyone, false)
                }
                None => {
                    let other = members
                        .iter()
                        .copied()
                        .find(|&m| m != sender)
                        .unwrap_or(sender);
                    if !is_active(self.users.table()?, other)? {
                        return Ok(ChatOutcome::Rejected(ChatRejection::NoSuchUser));
                    }
                    let blocked = self.blocks.get((other, sender))?.is_some();
                    if existing.is_none() && (blocked || self.dm_policy(other)? == DmPolicy::Ask) {
                        if !files.is_empty() {
                            return Ok(ChatOutcome::Rejected(ChatRejection::FilesInRequest));
                        }
                        return self.request_chat(sender, other, body, client_id, sent_at, blocked);
                    }
                    (Vec::new(), false, blocked)
                }
            };

        if let Some(original) = reply_to {
            // Only a message the sender can see may be answered.
            let visible = self
                .messages
                .get((id, original))?
                .map(|m| m.value().decode())
                .transpose()?
                .is_some_and(|m| !m.withheld || m.from == sender);
            if !visible {
                return Ok(ChatOutcome::Rejected(ChatRejection::NoSuchMessage));
            }
        }
        let next_seq = existing.as_ref().map_or(0, |r| r.last_seq) + 1;
        let attached = match self.attach_files(sender, id, next_seq, files)? {
            Ok(attached) => attached,
            Err(rejection) => return Ok(ChatOutcome::Rejected(rejection)),
        };
        let message = MessageRecord {
            mentions,
            mentions_room,
            withheld,
            reply_to,
            files: attached,
            ..MessageRecord::new(sender, body.to_owned(), sent_at)
        };
        self.append(&conversation, existing, members, message, client_id)
    }

    /// Stores a checked message as the conversation's next seq, with everything that follows
    /// from it (mentions, read positions, unread counts, the client id for retries).
    pub(super) fn append(
        &mut self,
        conversation: &ConversationId,
        existing: Option<ConversationRecord>,
        members: Members,
        stored: MessageRecord,
        client_id: &str,
    ) -> Result<ChatOutcome> {
        let id = conversation.as_str();
        let (sender, sent_at, withheld) = (stored.from, stored.sent_at, stored.withheld);
        let file_ids: Vec<String> = stored.files.iter().map(|f| f.info().id).collect();
        let body_sha256 = send_fingerprint(&stored.body, &file_ids);
        if existing.is_none()
            && let [a, b] = *members
        {
            // A DM's first message: no request between the two is pending any more.
            self.end_requests_between(a, b)?;
        }
        let mut record = existing.unwrap_or_else(|| ConversationRecord {
            kind: Kind::Dm,
            members: members.to_vec(),
            last_seq: 0,
            last_activity: 0,
            room: None,
            change_seq: 0,
        });
        record.last_seq += 1;
        record.last_activity = sent_at;
        let seq = record.last_seq;
        let is_room = record.room.is_some();
        self.conversations.insert(id, Encoded::new(&record))?;
        self.messages.insert((id, seq), Encoded::new(&stored))?;
        self.record_mentions(id, seq, sender, &stored.mentions, stored.mentions_room)?;

        // Writing a message means you have read everything before it.
        self.update_membership(sender, id, |m| {
            m.read_seq = seq;
            m.unread = 0;
        })?;
        if !is_room && !withheld {
            for &member in members.iter().filter(|&&m| m != sender) {
                self.update_membership(member, id, |m| m.unread += 1)?;
            }
        }

        let remembered = ClientIdRecord {
            conversation: id.to_owned(),
            seq,
            body_sha256,
            at: sent_at,
        };
        self.client_ids
            .insert((sender, client_id), Encoded::new(&remembered))?;

        let members = if withheld {
            Arc::from([sender].as_slice())
        } else {
            members
        };
        Ok(ChatOutcome::Sent {
            message: self.outgoing(id, seq, stored)?,
            members,
        })
    }

    /// Message `seq` of `id` as it goes out to clients: its reply resolved.
    pub(super) fn outgoing(&self, id: &str, seq: u64, record: MessageRecord) -> Result<Message> {
        let mut message = to_message(id, seq, record);
        resolve_replies(
            self.messages.table()?,
            id,
            std::slice::from_mut(&mut message),
        )?;
        Ok(message)
    }

    /// The answer to a retry (a `client_id` used before) of a send or change of message `seq`:
    /// the message as `viewer` may see it now, `no_such_message` if it is withheld from them
    /// since (its author edited it after `viewer` blocked them: a retry must not bring the new
    /// words back), and `None` if it is no longer there.
    pub(super) fn retry_answer(
        &self,
        viewer: u64,
        id: &str,
        seq: u64,
    ) -> Result<Option<ChatOutcome>> {
        let Some(stored) = self
            .messages
            .get((id, seq))?
            .map(|r| r.value().decode())
            .transpose()?
        else {
            return Ok(None);
        };
        if stored.withheld && stored.from != viewer {
            return Ok(Some(ChatOutcome::Rejected(ChatRejection::NoSuchMessage)));
        }
        let mut message = self.outgoing(id, seq, stored)?;
        self.as_seen_by(viewer, &mut message)?;
        Ok(Some(ChatOutcome::Duplicate { message }))
    }

    /// Rows that make mentions count: one per mentioned person, one for `@room`. Whether the
    /// person blocks the sender is asked when they are counted, so a block (or its end) holds
    /// for mentions made before it too.
    pub(super) fn record_mentions(
        &mut self,
        id: &str,
        seq: u64,
        sender: u64,
        users: &[u64],
        everyone: bool,
    ) -> Result<()> {
        for &mentioned in users {
            self.mentions.insert((mentioned, id, seq), ())?;
        }
        if everyone {
            self.room_mentions.insert((id, seq), sender)?;
        }
        Ok(())
    }

    /// Reads, changes and writes one member's row (a new row if there is none).
    pub(super) fn update_membership(
        &mut self,
        user: u64,
        id: &str,
        change: impl FnOnce(&mut MembershipRecord),
    ) -> Result<MembershipRecord> {
        let mut position = match self.memberships.get((user, id))? {
            Some(m) => m.value().decode()?,
            None => MembershipRecord::default(),
        };
        change(&mut position);
        self.memberships
            .insert((user, id), Encoded::new(&position))?;
        Ok(position)
    }

    /// `@username`s of members (not the sender) and whether `@room` was used.
    pub(super) fn parse_mentions(
        &self,
        body: &str,
        id: &str,
        sender: u64,
    ) -> Result<(Vec<u64>, bool)> {
        let mut users = Vec::new();
        let mut everyone = false;
        for name in mentioned_names(body) {
            if name == "room" {
                everyone = true;
                continue;
            }
            let Some(user) = self.usernames.get(name.as_str())?.map(|v| v.value()) else {
                continue;
            };
            if user != sender
                && !users.contains(&user)
                && self.room_members.get((id, user))?.is_some()
            {
                users.push(user);
            }
        }
        Ok((users, everyone))
    }

    /// In General only administrators (and its creator) may ping everyone.
    pub(super) fn may_mention_room(
        &self,
        conversation: &ConversationId,
        room: &RoomInfo,
        sender: u64,
    ) -> Result<bool> {
        if *conversation != ConversationId::general() || room.created_by == sender {
            return Ok(true);
        }
        Ok(match self.users.get(sender)? {
            Some(r) => r.value().decode()?.is_admin(),
            None => false,
        })
    }

    fn mark_read(
        &mut self,
        user: u64,
        conversation: &ConversationId,
        seq: u64,
    ) -> Result<ChatOutcome> {
        let Some(members) = self.members(conversation)? else {
            return Ok(ChatOutcome::Rejected(ChatRejection::NotAMember));
        };
        if !members.contains(&user) {
            return Ok(ChatOutcome::Rejected(ChatRejection::NotAMember));
        }
        let id = conversation.as_str();
        let Some(record) = self
            .conversations
            .get(id)?
            .map(|r| r.value().decode())
            .transpose()?
        else {
            return Ok(if seq == 0 {
                ChatOutcome::Unchanged
            } else {
                ChatOutcome::Rejected(ChatRejection::InvalidSeq)
            });
        };
        if seq > record.last_seq {
            return Ok(ChatOutcome::Rejected(ChatRejection::InvalidSeq));
        }
        // For someone who blocks the other person a DM ends at the last message they may
        // see: reading past it would count what is withheld and send a false "Seen".
        if record.room.is_none() && seq > 0 {
            let newest = self.messages.range((id, 1)..=(id, record.last_seq))?.rev();
            let last_visible = visible_messages(newest, id, user, 1)?;
            if seq > last_visible.first().map_or(0, |m| m.seq) {
                return Ok(ChatOutcome::Rejected(ChatRejection::InvalidSeq));
            }
        }
        let mut position = match self.memberships.get((user, id))? {
            Some(m) => m.value().decode()?,
            None => return Ok(ChatOutcome::Unchanged),
        };
        if seq <= position.read_seq {
            return Ok(ChatOutcome::Unchanged);
        }
        let (unread, mentions, receipt_to) = match &record.room {
            Some(room) => {
                let mentions = self.mention_count(user, id, seq)?;
                let receipt_to = if room.member_count as usize <= rooms::RECEIPTS_MAX_MEMBERS {
                    members.iter().copied().filter(|&m| m != user).collect()
                } else {
                    Arc::from([].as_slice())
                };
                let deleted = deleted_after(self.deleted.table()?, id, seq)?;
                (record.last_seq - seq - deleted, mentions, receipt_to)
            }
            None => {
                // Messages from the other member after the new position, unless withheld.
                let mut unread = 0;
                for entry in self.messages.range((id, seq + 1)..=(id, record.last_seq))? {
                    let message = entry?.1.value().decode()?;
                    if message.from != user && !message.withheld {
                        unread += 1;
                    }
                }
                let others = members.iter().copied().filter(|&m| m != user).collect();
                (unread, 0, others)
            }
        };
        position.read_seq = seq;
        position.unread = if record.room.is_some() { 0 } else { unread };
        self.memberships
            .insert((user, id), Encoded::new(&position))?;
        Ok(ChatOutcome::Read {
            conversation: conversation.clone(),
            user,
            read_seq: seq,
            unread,
            mentions,
            receipt_to,
        })
    }

    fn mention_count(&self, user: u64, id: &str, read_seq: u64) -> Result<u64> {
        let blocks = self.blocks.table()?;
        let blocks_anyone = blocks.range((user, 0)..=(user, u64::MAX))?.next().is_some();
        count_mentions(
            self.mentions.table()?,
            self.room_mentions.table()?,
            user,
            id,
            read_seq,
            |seq, sender| {
                if !blocks_anyone {
                    return Ok(false);
                }
                let sender = match sender {
                    Some(sender) => Some(sender),
                    None => sender_of(self.messages.table()?, id, seq)?,
                };
                Ok(match sender {
                    Some(sender) => blocks.get((user, sender))?.is_some(),
                    None => false,
                })
            },
        )
    }

    /// Everyone in the conversation (from the cache when it is warm). `None` if it does not
    /// exist.
    pub(super) fn members(&self, conversation: &ConversationId) -> Result<Option<Members>> {
        if let Some(members) = self.store.members_cache.get(conversation) {
            return Ok(Some(members));
        }
        let members = members_of(
            self.users.table()?,
            self.room_members.table()?,
            conversation,
        )?;
        if let Some(members) = &members {
            self.store
                .members_cache
                .insert(conversation, members.clone());
        }
        Ok(members)
    }

    fn dm_policy(&self, user: u64) -> Result<DmPolicy> {
        Ok(match self.settings.get(user)? {
            Some(r) => r.value().decode()?.dm_policy,
            None => DmPolicy::Anyone,
        })
    }
}

/// What a send carries.
struct Outgoing<'a> {
    body: &'a str,
    files: &'a [String],
    reply_to: Option<u64>,
}

/// What a retry with the same client_id must match: the body, and the files if any (a send
/// without files fingerprints as before files existed).
fn send_fingerprint(body: &str, files: &[String]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(body.as_bytes());
    for file in files {
        hash.update([0]);
        hash.update(file.as_bytes());
    }
    hash.finalize().into()
}

/// `not_a_member` for a conversation, `no_such_user` for a person.
fn not_found_for(target: &SendTarget) -> ChatRejection {
    match target {
        SendTarget::User(_) => ChatRejection::NoSuchUser,
        SendTarget::Conversation(_) => ChatRejection::NotAMember,
    }
}

/// The lower-case names after each `@` that starts a word, in order.
pub fn mentioned_names(body: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut previous: Option<char> = None;
    for (at, c) in body.char_indices() {
        let starts_word = previous.is_none_or(|p| !p.is_alphanumeric() && p != '@');
        previous = Some(c);
        if c != '@' || !starts_word {
            continue;
        }
        let rest = &body[at + 1..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .unwrap_or(rest.len());
        // A trailing dot ends the sentence, not the name.
        let name = rest[..end].trim_end_matches('.');
        if !name.is_empty() {
            names.push(name.to_ascii_lowercase());
        }
    }
    names
}

/// Everyone in `conversation`, or `None` if it does not exist. A DM's members are named by its
/// id, so a DM exists for both of its (existing) users before its first message.
fn members_of(
    users: &impl ReadableTable<u64, Stored<UserRecord>>,
    room_members: &impl ReadableTable<(&'static str, u64), Stored<rooms::RoomMemberRecord>>,
    conversation: &ConversationId,
) -> Result<Option<Members>> {
    if let Some(pair) = conversation.dm_members() {
        for member in pair {
            if users.get(member)?.is_none() {
                return Ok(None);
            }
        }
        return Ok(Some(Arc::from(pair.as_slice())));
    }
    let id = conversation.as_str();
    let mut members = Vec::new();
    for entry in room_members.range((id, 0)..=(id, u64::MAX))? {
        members.push(entry?.0.value().1);
    }
    // Every room has at least its creator until the last member leaves; an empty one is
    // indistinguishable from none.
    Ok((!members.is_empty()).then(|| Arc::from(members)))
}

/// Whether `user` is in `conversation`, without listing everyone.
pub(super) fn is_member(
    users: &impl ReadableTable<u64, Stored<UserRecord>>,
    room_members: &impl ReadableTable<(&'static str, u64), Stored<rooms::RoomMemberRecord>>,
    conversation: &ConversationId,
    user: u64,
) -> Result<bool> {
    match conversation.dm_members() {
        Some(pair) => {
            if !pair.contains(&user) {
                return Ok(false);
            }
            for member in pair {
                if users.get(member)?.is_none() {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        None => Ok(room_members.get((conversation.as_str(), user))?.is_some()),
    }
}

pub(super) fn is_active(
    users: &impl ReadableTable<u64, Stored<UserRecord>>,
    id: u64,
) -> Result<bool> {
    Ok(match users.get(id)? {
        Some(r) => !r.value().decode()?.is_disabled(),
        None => false,
    })
}

/// Decodes a record, or logs which one is damaged and returns `None`: one bad record must never
/// take a whole conversation's history or someone's conversation list down.
pub(super) fn decode_or_skip<T: Record>(
    value: Encoded<'_, T>,
    record: impl FnOnce() -> String,
) -> Option<T> {
    match value.decode() {
        Ok(decoded) => Some(decoded),
        Err(error) => {
            tracing::error!(
                record = %record(),
                %error,
                "skipping a damaged record; stop confab and run `confab check`"
            );
            None
        }
    }
}

/// A stored message and whether it is withheld from its recipient; a damaged one is left out
/// (and logged).
/// Mentions of `user` in room `id` after `read_seq`, by name or `@room` (from someone else),
/// one per message, none from people they block: `blocked(seq, sender)` says, given the
/// sender where the row knows it.
fn count_mentions(
    mentions: &impl ReadableTable<(u64, &'static str, u64), ()>,
    room_mentions: &impl ReadableTable<(&'static str, u64), u64>,
    user: u64,
    id: &str,
    read_seq: u64,
    blocked: impl Fn(u64, Option<u64>) -> Result<bool>,
) -> Result<u64> {
    let mut count = 0;
    for entry in mentions.range((user, id, read_seq + 1)..=(user, id, u64::MAX))? {
        if !blocked(entry?.0.value().2, None)? {
            count += 1;
        }
    }
    for entry in room_mentions.range((id, read_seq + 1)..=(id, u64::MAX))? {
        let (key, sender) = entry?;
        let (seq, sender) = (key.value().1, sender.value());
        // A message naming them and `@room` is still one message that mentions them.
        let named = mentions.get((user, id, seq))?.is_some();
        if sender != user && !named && !blocked(seq, Some(sender))? {
            count += 1;
        }
    }
    Ok(count)
}

/// A row of `messages` as a range yields it.
type MessageEntry<'a> = std::result::Result<
    (
        redb::AccessGuard<'a, (&'static str, u64)>,
        redb::AccessGuard<'a, Stored<MessageRecord>>,
    ),
    redb::StorageError,
>;

/// Up to `wanted` messages of `id` from `entries` that `user` may see, in the range's order.
fn visible_messages<'a>(
    entries: impl Iterator<Item = MessageEntry<'a>>,
    id: &str,
    user: u64,
    wanted: usize,
) -> Result<Vec<Message>> {
    let mut page = Vec::with_capacity(wanted);
    for entry in entries {
        let (key, value) = entry?;
        if let Some((message, withheld)) = readable_message(id, key.value().1, value.value())
            && (!withheld || message.from == user)
        {
            page.push(message);
            if page.len() == wanted {
                break;
            }
        }
    }
    Ok(page)
}

/// Who wrote message `seq` of `id`, if it is there.
fn sender_of(
    messages: &impl ReadableTable<(&'static str, u64), Stored<MessageRecord>>,
    id: &str,
    seq: u64,
) -> Result<Option<u64>> {
    Ok(match messages.get((id, seq))? {
        Some(value) => Some(value.value().decode()?.from),
        None => None,
    })
}

/// Deleted seqs of room `id` after `read_seq`: they are not unread.
pub(super) fn deleted_after(
    deleted: &impl ReadableTable<(&'static str, u64), ()>,
    id: &str,
    read_seq: u64,
) -> Result<u64> {
    Ok(deleted.range((id, read_seq + 1)..=(id, u64::MAX))?.count() as u64)
}

/// Fills in what each reply shows of the message it answers, as that message reads now. The
/// one place this is decided: every message that reaches a client (history, changes, acks and
/// updates, search hits, mentions, summaries) passes here.
pub(super) fn resolve_replies(
    messages: &impl ReadableTable<(&'static str, u64), Stored<MessageRecord>>,
    conversation: &str,
    page: &mut [Message],
) -> Result<()> {
    for message in page.iter_mut() {
        let Some(preview) = message.reply_to.as_mut() else {
            continue;
        };
        if let Some(original) = messages.get((conversation, preview.seq))?
            && let Some(original) = decode_or_skip(original.value(), || {
                format!("message {conversation} {}", preview.seq)
            })
        {
            preview.from = original.from;
            preview.deleted = original.deleted;
            if original.withheld {
                // Quoted to both members, so never the text of a DM one of them may not see.
                continue;
            }
            preview.snippet = original
                .body
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(REPLY_SNIPPET_CHARS)
                .collect();
        }
    }
    Ok(())
}

/// How much of the first line a reply quotes.
const REPLY_SNIPPET_CHARS: usize = 100;

pub(super) fn readable_message(
    conversation: &str,
    seq: u64,
    value: Encoded<'_, MessageRecord>,
) -> Option<(Message, bool)> {
    decode_or_skip(value, || format!("message {conversation} {seq}")).map(|record| {
        let withheld = record.withheld;
        (to_message(conversation, seq, record), withheld)
    })
}

/// The message as stored, its reply only a seq (`from` 0, no snippet): whatever hands it to a
/// client resolves the reply first with [`resolve_replies`].
pub(super) fn to_message(conversation: &str, seq: u64, record: MessageRecord) -> Message {
    Message {
        conversation: ConversationId(conversation.to_owned()),
        seq,
        from: record.from,
        body: record.body,
        sent_at: record.sent_at,
        mentions: record.mentions,
        mentions_room: record.mentions_room,
        reply_to: record.reply_to.map(|seq| ReplyPreview {
            seq,
            from: 0,
            snippet: String::new(),
            deleted: false,
        }),
        edited_at: record.edited_at,
        deleted: record.deleted,
        reactions: record.reactions,
        files: record.files.iter().map(AttachedFile::info).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_ids_are_canonical() {
        assert_eq!(ConversationId::dm(7, 3).as_str(), "dm:3:7");
        assert!(ConversationId::parse("dm:3:7").is_some());
        assert!(ConversationId::parse("room:1").is_some());
        assert!(ConversationId::parse("room:42").is_some());
        for bad in [
            "dm:7:3", "dm:3:3", "dm:03:7", "dm:+3:7", "dm:3:7:9", "dm:0:7", "x", "dm:3", "room:0",
            "room:01", "room:", "room:+4", "room:4:5", "ROOM:4",
        ] {
            assert!(ConversationId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn client_ids_are_purged_chunk_by_chunk_keeping_recent_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("confab.redb")).expect("store");
        let rows = 2 * CLIENT_ID_PURGE_CHUNK + 10;
        store
            .write(|txn| {
                let mut table = txn.open_table(CLIENT_IDS)?;
                for i in 0..rows as u64 {
                    let record = ClientIdRecord {
                        conversation: "dm:1:2".into(),
                        seq: i + 1,
                        body_sha256: [0; 32],
                        // Every third one is recent.
                        at: if i % 3 == 0 { 2_000 } else { 1_000 },
                    };
                    table.insert((1 + i % 2, format!("c{i}").as_str()), Encoded::new(&record))?;
                }
                Ok(())
            })
            .expect("rows written");
        let mut after = None;
        let mut chunks = 0;
        loop {
            chunks += 1;
            let op = ChatOp::PurgeClientIds {
                before: 1_500,
                after,
            };
            match store.apply_chat_batch(&[op]).expect("purged").pop() {
                Some(ChatOutcome::Purged { resume: Some(next) }) => after = Some(next),
                Some(ChatOutcome::Purged { resume: None }) => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(chunks, 3);
        let txn = store.read().expect("read");
        let table = txn.open_table(CLIENT_IDS).expect("table");
        let kept: Vec<u64> = table
            .iter()
            .expect("rows")
            .map(|e| e.expect("row").1.value().decode().expect("record").seq - 1)
            .collect();
        assert_eq!(kept.len(), rows.div_ceil(3));
        assert!(kept.iter().all(|i| i % 3 == 0));
    }

    #[test]
    fn mentions_are_words_that_start_with_at() {
        assert_eq!(
            mentioned_names("@alice and @Bob.Smith, mail me@example.com or @room."),
            vec!["alice", "bob.smith", "room"]
        );
        assert!(mentioned_names("@@alice @ nobody").is_empty());
        assert_eq!(mentioned_names("(@carol)"), vec!["carol"]);
    }

    #[test]
    fn older_records_upgrade_as_they_are_read() {
        let v1 = [1u8, 0, 2, 3, 7, 5, 200, 1];
        let record = <Stored<ConversationRecord> as redb::Value>::from_bytes(&v1)
            .decode()
            .expect("v1 conversation");
        assert_eq!((record.members, record.last_seq), (vec![3, 7], 5));
        assert!(record.room.is_none());
    }
}
