//! Conversations, messages, read positions, unread counts and idempotent sends.
//!
//! All message writes arrive as a batch of [`ChatOp`]s from the hub's single writer and are
//! applied in one write transaction (group commit): one fsync for many sends.

use std::fmt;

use redb::{ReadableTable, Table, WriteTransaction};
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

use super::codec::{Encoded, Record, Stored};
use super::users::{self, SessionRecord, UserRecord};
use super::{
    CLIENT_IDS, CONVERSATIONS, LAST_SEEN, MEMBERSHIPS, MESSAGES, Result, SESSIONS, Store,
    USER_SESSIONS, USERS,
};

/// A conversation id in canonical form. DMs are `dm:<lower user id>:<higher user id>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConversationId(String);

impl ConversationId {
    pub fn dm(a: u64, b: u64) -> ConversationId {
        ConversationId(format!("dm:{}:{}", a.min(b), a.max(b)))
    }

    /// Accepts only canonical ids, so one conversation never has two spellings.
    pub fn parse(raw: &str) -> Option<ConversationId> {
        let mut parts = raw.strip_prefix("dm:")?.split(':');
        let low: u64 = parts.next()?.parse().ok()?;
        let high: u64 = parts.next()?.parse().ok()?;
        let canonical = parts.next().is_none() && low < high && low > 0;
        (canonical && ConversationId::dm(low, high).0 == raw).then(|| ConversationId::dm(low, high))
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct MemberRead {
    pub user: u64,
    pub seq: u64,
}

/// One conversation from one member's point of view.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationSummary {
    pub id: ConversationId,
    pub kind: &'static str,
    pub members: Vec<u64>,
    pub last_seq: u64,
    pub read_seq: u64,
    pub unread: u64,
    pub last_message: Option<Message>,
    /// How far each other member has read.
    pub reads: Vec<MemberRead>,
    #[serde(skip)]
    last_activity: u64,
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

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
enum Kind {
    Dm,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ConversationRecord {
    kind: Kind,
    pub(super) members: Vec<u64>,
    pub(super) last_seq: u64,
    /// Unix milliseconds of the newest message, for ordering conversation lists.
    last_activity: u64,
}

impl ConversationRecord {
    /// The record history implies, keeping what history cannot tell from `previous`.
    pub(super) fn rebuilt(
        previous: Option<&ConversationRecord>,
        members: Vec<u64>,
        last_seq: u64,
        last_activity: u64,
    ) -> ConversationRecord {
        ConversationRecord {
            kind: previous.map_or(Kind::Dm, |p| p.kind),
            members,
            last_seq,
            last_activity,
        }
    }
}

impl Record for ConversationRecord {
    const TYPE_NAME: &'static str = "confab::Conversation";
    const VERSION: u8 = 1;
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct MessageRecord {
    pub(super) from: u64,
    pub(super) body: String,
    pub(super) sent_at: u64,
}

impl Record for MessageRecord {
    const TYPE_NAME: &'static str = "confab::Message";
    const VERSION: u8 = 1;
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct MembershipRecord {
    pub(super) read_seq: u64,
    pub(super) unread: u64,
}

impl Record for MembershipRecord {
    const TYPE_NAME: &'static str = "confab::Membership";
    const VERSION: u8 = 1;
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ClientIdRecord {
    conversation: String,
    seq: u64,
    body_sha256: [u8; 32],
    /// Unix milliseconds, for expiry.
    at: u64,
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
    },
    Read {
        user: u64,
        conversation: ConversationId,
        seq: u64,
    },
    /// Forget client ids recorded before this time (unix ms).
    PurgeClientIds { before: u64 },
    /// These users were connected at `at` (unix seconds).
    Seen { users: Vec<u64>, at: u64 },
    /// Forget sessions expired at `now` (unix seconds).
    PurgeExpiredSessions { now: u64 },
}

#[derive(Debug)]
pub enum ChatOutcome {
    /// Stored now: acknowledge it and deliver it to `members`.
    Sent {
        message: Message,
        members: Vec<u64>,
    },
    /// A retry of an earlier send: acknowledge it again, deliver nothing.
    Duplicate {
        message: Message,
    },
    /// The reader's position moved.
    Read {
        conversation: ConversationId,
        user: u64,
        read_seq: u64,
        unread: u64,
        members: Vec<u64>,
    },
    /// Nothing to tell anyone.
    Unchanged,
    Rejected(ChatRejection),
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
}

impl Store {
    /// Applies a batch of writes in one transaction and returns one outcome per op, in order.
    /// A rejected op changes nothing; the others still commit.
    pub fn apply_chat_batch(&self, ops: &[ChatOp]) -> Result<Vec<ChatOutcome>> {
        self.write(|txn| {
            let mut tables = BatchTables::open(txn)?;
            ops.iter().map(|op| tables.apply(op)).collect()
        })
    }

    /// The user's conversations, most recent activity first.
    pub fn conversations(&self, user: u64) -> Result<Vec<ConversationSummary>> {
        let txn = self.read()?;
        let memberships = txn.open_table(MEMBERSHIPS)?;
        let conversations = txn.open_table(CONVERSATIONS)?;
        let messages = txn.open_table(MESSAGES)?;
        let mut out = Vec::new();
        for entry in memberships.range((user, "")..(user + 1, ""))? {
            let (key, mine) = entry?;
            let id = key.value().1.to_owned();
            let Some(mine) = decode_or_skip(mine.value(), || format!("membership {user} {id}"))
            else {
                continue;
            };
            let Some(record) = conversations.get(id.as_str())? else {
                continue;
            };
            let Some(record) = decode_or_skip(record.value(), || format!("conversation {id}"))
            else {
                continue;
            };
            let last_message = messages
                .get((id.as_str(), record.last_seq))?
                .and_then(|m| {
                    decode_or_skip(m.value(), || format!("message {id} {}", record.last_seq))
                })
                .map(|m| to_message(&id, record.last_seq, m));
            let mut reads = Vec::new();
            for &other in record.members.iter().filter(|&&m| m != user) {
                let seq = memberships
                    .get((other, id.as_str()))?
                    .and_then(|m| decode_or_skip(m.value(), || format!("membership {other} {id}")))
                    .map_or(0, |m| m.read_seq);
                reads.push(MemberRead { user: other, seq });
            }
            out.push(ConversationSummary {
                id: ConversationId(id),
                kind: "dm",
                members: record.members,
                last_seq: record.last_seq,
                read_seq: mine.read_seq,
                unread: mine.unread,
                last_message,
                reads,
                last_activity: record.last_activity,
            });
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.last_activity));
        Ok(out)
    }

    /// A page of history, or `None` if the user is not a member (or it does not exist).
    pub fn history(
        &self,
        user: u64,
        conversation: &ConversationId,
        query: HistoryQuery,
    ) -> Result<Option<HistoryPage>> {
        let txn = self.read()?;
        let conversations = txn.open_table(CONVERSATIONS)?;
        let Some(_) = members_of(&conversations, &txn.open_table(USERS)?, conversation, user)?
        else {
            return Ok(None);
        };
        let last_seq = match conversations.get(conversation.as_str())? {
            Some(r) => r.value().decode()?.last_seq,
            None => 0,
        };
        let id = conversation.as_str();
        let messages = txn.open_table(MESSAGES)?;
        let mut page = Vec::new();
        let has_more = match query {
            HistoryQuery::Before(before, limit) => {
                let end = before.unwrap_or(u64::MAX);
                for entry in messages
                    .range((id, 1)..(id, end))?
                    .rev()
                    .take(limit as usize)
                {
                    let (key, value) = entry?;
                    page.extend(readable_message(id, key.value().1, value.value()));
                }
                page.reverse();
                // Seqs start at 1 without gaps, so anything above 1 has older messages.
                page.first().is_some_and(|m| m.seq > 1)
            }
            HistoryQuery::After(after, limit) => {
                let start = after.saturating_add(1);
                for entry in messages
                    .range((id, start)..=(id, u64::MAX))?
                    .take(limit as usize)
                {
                    let (key, value) = entry?;
                    page.extend(readable_message(id, key.value().1, value.value()));
                }
                page.last().is_some_and(|m| m.seq < last_seq)
            }
        };
        Ok(Some(HistoryPage {
            messages: page,
            has_more,
        }))
    }

    /// The members of a conversation, if `user` is one of them.
    pub fn members(&self, user: u64, conversation: &ConversationId) -> Result<Option<Vec<u64>>> {
        let txn = self.read()?;
        members_of(
            &txn.open_table(CONVERSATIONS)?,
            &txn.open_table(USERS)?,
            conversation,
            user,
        )
    }
}

/// The tables a batch writes, opened once per transaction rather than once per op.
struct BatchTables<'txn> {
    users: Table<'txn, u64, Stored<UserRecord>>,
    conversations: Table<'txn, &'static str, Stored<ConversationRecord>>,
    messages: Table<'txn, (&'static str, u64), Stored<MessageRecord>>,
    memberships: Table<'txn, (u64, &'static str), Stored<MembershipRecord>>,
    client_ids: Table<'txn, (u64, &'static str), Stored<ClientIdRecord>>,
    last_seen: Table<'txn, u64, u64>,
    sessions: Table<'txn, u128, Stored<SessionRecord>>,
    user_sessions: Table<'txn, (u64, u128), ()>,
}

impl<'txn> BatchTables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<BatchTables<'txn>> {
        Ok(BatchTables {
            users: txn.open_table(USERS)?,
            conversations: txn.open_table(CONVERSATIONS)?,
            messages: txn.open_table(MESSAGES)?,
            memberships: txn.open_table(MEMBERSHIPS)?,
            client_ids: txn.open_table(CLIENT_IDS)?,
            last_seen: txn.open_table(LAST_SEEN)?,
            sessions: txn.open_table(SESSIONS)?,
            user_sessions: txn.open_table(USER_SESSIONS)?,
        })
    }

    fn apply(&mut self, op: &ChatOp) -> Result<ChatOutcome> {
        match op {
            ChatOp::Send {
                sender,
                target,
                body,
                client_id,
                sent_at,
            } => self.send(*sender, target, body, client_id, *sent_at),
            ChatOp::Read {
                user,
                conversation,
                seq,
            } => self.mark_read(*user, conversation, *seq),
            ChatOp::PurgeClientIds { before } => {
                self.client_ids
                    .retain(|_, record| record.decode().map_or(true, |r| r.at >= *before))?;
                Ok(ChatOutcome::Unchanged)
            }
            ChatOp::Seen { users, at } => {
                for &user in users {
                    self.last_seen.insert(user, at)?;
                }
                Ok(ChatOutcome::Unchanged)
            }
            ChatOp::PurgeExpiredSessions { now } => {
                users::purge_expired_sessions(&mut self.sessions, &mut self.user_sessions, *now)?;
                Ok(ChatOutcome::Unchanged)
            }
        }
    }

    fn send(
        &mut self,
        sender: u64,
        target: &SendTarget,
        body: &str,
        client_id: &str,
        sent_at: u64,
    ) -> Result<ChatOutcome> {
        let conversation = match target {
            SendTarget::User(to) if *to == sender => {
                return Ok(ChatOutcome::Rejected(ChatRejection::CannotMessageSelf));
            }
            SendTarget::User(to) => ConversationId::dm(sender, *to),
            SendTarget::Conversation(id) => id.clone(),
        };
        let id = conversation.as_str();
        let body_sha256: [u8; 32] = Sha256::digest(body.as_bytes()).into();

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
            if earlier.conversation != id || earlier.body_sha256 != body_sha256 {
                return Ok(ChatOutcome::Rejected(ChatRejection::ClientIdReused));
            }
            if let Some(stored) = self.messages.get((id, earlier.seq))? {
                let message = to_message(id, earlier.seq, stored.value().decode()?);
                return Ok(ChatOutcome::Duplicate { message });
            }
        }

        let Some(members) = members_of(&self.conversations, &self.users, &conversation, sender)?
        else {
            let rejection = match target {
                SendTarget::User(_) => ChatRejection::NoSuchUser,
                SendTarget::Conversation(_) => ChatRejection::NotAMember,
            };
            return Ok(ChatOutcome::Rejected(rejection));
        };
        for &member in members.iter().filter(|&&m| m != sender) {
            if !is_active(&self.users, member)? {
                return Ok(ChatOutcome::Rejected(ChatRejection::NoSuchUser));
            }
        }

        let mut record = match self.conversations.get(id)? {
            Some(r) => r.value().decode()?,
            None => ConversationRecord {
                kind: Kind::Dm,
                members: members.clone(),
                last_seq: 0,
                last_activity: 0,
            },
        };
        record.last_seq += 1;
        record.last_activity = sent_at;
        let seq = record.last_seq;
        self.conversations.insert(id, Encoded::new(&record))?;

        let stored = MessageRecord {
            from: sender,
            body: body.to_owned(),
            sent_at,
        };
        self.messages.insert((id, seq), Encoded::new(&stored))?;

        for &member in &members {
            let mut position = match self.memberships.get((member, id))? {
                Some(m) => m.value().decode()?,
                None => MembershipRecord::default(),
            };
            if member == sender {
                // Writing a message means you have read everything before it.
                position.read_seq = seq;
                position.unread = 0;
            } else {
                position.unread += 1;
            }
            self.memberships
                .insert((member, id), Encoded::new(&position))?;
        }

        let remembered = ClientIdRecord {
            conversation: id.to_owned(),
            seq,
            body_sha256,
            at: sent_at,
        };
        self.client_ids
            .insert((sender, client_id), Encoded::new(&remembered))?;

        Ok(ChatOutcome::Sent {
            message: to_message(id, seq, stored),
            members,
        })
    }

    fn mark_read(
        &mut self,
        user: u64,
        conversation: &ConversationId,
        seq: u64,
    ) -> Result<ChatOutcome> {
        let Some(members) = members_of(&self.conversations, &self.users, conversation, user)?
        else {
            return Ok(ChatOutcome::Rejected(ChatRejection::NotAMember));
        };
        let id = conversation.as_str();
        let last_seq = match self.conversations.get(id)? {
            Some(r) => r.value().decode()?.last_seq,
            None => 0,
        };
        if seq > last_seq {
            return Ok(ChatOutcome::Rejected(ChatRejection::InvalidSeq));
        }
        let mut position = match self.memberships.get((user, id))? {
            Some(m) => m.value().decode()?,
            None => return Ok(ChatOutcome::Unchanged),
        };
        if seq <= position.read_seq {
            return Ok(ChatOutcome::Unchanged);
        }
        // Unread = messages from others after the new read position; bounded by the old count.
        let mut unread = 0;
        for entry in self.messages.range((id, seq + 1)..=(id, last_seq))? {
            if entry?.1.value().decode()?.from != user {
                unread += 1;
            }
        }
        position.read_seq = seq;
        position.unread = unread;
        self.memberships
            .insert((user, id), Encoded::new(&position))?;
        Ok(ChatOutcome::Read {
            conversation: conversation.clone(),
            user,
            read_seq: seq,
            unread,
            members,
        })
    }
}

/// The members of `conversation` if `user` is one of them. A DM's members are named by its id,
/// so a DM exists for both of its (existing) users before its first message.
fn members_of(
    conversations: &impl ReadableTable<&'static str, Stored<ConversationRecord>>,
    users: &impl ReadableTable<u64, Stored<UserRecord>>,
    conversation: &ConversationId,
    user: u64,
) -> Result<Option<Vec<u64>>> {
    let members = match conversation.dm_members() {
        Some(pair) => {
            for member in pair {
                if users.get(member)?.is_none() {
                    return Ok(None);
                }
            }
            pair.to_vec()
        }
        None => match conversations.get(conversation.as_str())? {
            Some(r) => r.value().decode()?.members,
            None => return Ok(None),
        },
    };
    Ok(members.contains(&user).then_some(members))
}

fn is_active(users: &impl ReadableTable<u64, Stored<UserRecord>>, id: u64) -> Result<bool> {
    Ok(match users.get(id)? {
        Some(r) => !r.value().decode()?.is_disabled(),
        None => false,
    })
}

/// Decodes a record, or logs which one is damaged and returns `None`: one bad record must never
/// take a whole conversation's history or someone's conversation list down.
fn decode_or_skip<T: Record>(value: Encoded<'_, T>, record: impl FnOnce() -> String) -> Option<T> {
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

/// A stored message for a history page; a damaged one is left out (and logged).
fn readable_message(
    conversation: &str,
    seq: u64,
    value: Encoded<'_, MessageRecord>,
) -> Option<Message> {
    decode_or_skip(value, || format!("message {conversation} {seq}"))
        .map(|record| to_message(conversation, seq, record))
}

fn to_message(conversation: &str, seq: u64, record: MessageRecord) -> Message {
    Message {
        conversation: ConversationId(conversation.to_owned()),
        seq,
        from: record.from,
        body: record.body,
        sent_at: record.sent_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dm_ids_are_canonical() {
        assert_eq!(ConversationId::dm(7, 3).as_str(), "dm:3:7");
        assert!(ConversationId::parse("dm:3:7").is_some());
        for bad in [
            "dm:7:3", "dm:3:3", "dm:03:7", "dm:+3:7", "dm:3:7:9", "dm:0:7", "x", "dm:3",
        ] {
            assert!(ConversationId::parse(bad).is_none(), "{bad}");
        }
    }
}
