//! Rooms: General (everyone, always), open rooms anyone joins, private rooms only their members
//! see; their members, names, topics, archiving; and each member's notification level.
//!
//! A room is a conversation like a DM (same messages, seqs, read positions); what is its own
//! lives here: the `room` part of its conversation record and its `room_members` rows.

use std::sync::Arc;

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::chat::{
    BatchTables, ChatOutcome, ChatRejection, ConversationId, ConversationRecord, Kind, Members,
    MembershipRecord, Notify, is_active,
};
use super::codec::{Encoded, Record};
use super::{CONVERSATIONS, MEMBERSHIPS, META, ROOM_MEMBERS, ROOM_NAMES, Result, Store, USERS};

/// `room:1` is General.
pub const GENERAL: u64 = 1;
/// Rooms up to this size get read receipts; beyond it a receipt per member per message costs
/// more than "Seen by 312" is worth.
pub const RECEIPTS_MAX_MEMBERS: usize = 200;
/// Rooms bigger than this notify only on mentions until a member chooses otherwise.
pub const LOUD_ROOM_MAX_MEMBERS: usize = 20;
/// Most rooms the browser lists at once.
const BROWSE_MAX: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Open,
    Private,
}

/// The room part of a conversation record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RoomInfo {
    pub(super) name: String,
    pub(super) topic: String,
    pub(super) visibility: Visibility,
    pub(super) archived: bool,
    /// 0 for General, which the system created.
    pub(super) created_by: u64,
    pub(super) member_count: u32,
}

/// One member of a room.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RoomMemberRecord {
    added_by: u64,
    /// Unix seconds.
    joined_at: u64,
}

impl Record for RoomMemberRecord {
    const TYPE_NAME: &'static str = "confab::RoomMember";
    const VERSION: u8 = 1;
}

/// What a member sees of a room, in summaries and `conversation` frames.
#[derive(Debug, Clone, Serialize)]
pub struct RoomView {
    pub name: String,
    pub topic: String,
    pub visibility: Visibility,
    pub archived: bool,
    pub general: bool,
    pub created_by: u64,
    pub member_count: u32,
}

impl RoomView {
    pub(super) fn new(id: &str, info: &RoomInfo) -> RoomView {
        RoomView {
            name: info.name.clone(),
            topic: info.topic.clone(),
            visibility: info.visibility,
            archived: info.archived,
            general: id == ConversationId::general().as_str(),
            created_by: info.created_by,
            member_count: info.member_count,
        }
    }
}

/// A room in the browser.
#[derive(Debug, Serialize)]
pub struct BrowsedRoom {
    pub id: ConversationId,
    pub name: String,
    pub topic: String,
    pub member_count: u32,
    pub joined: bool,
    pub last_activity: u64,
}

/// A member in `GET /api/rooms/{id}/members`.
#[derive(Debug, Serialize)]
pub struct RoomMember {
    pub user: u64,
    pub read_seq: u64,
    pub added_by: u64,
    pub joined_at: u64,
}

/// Changes to a room; `None` leaves a field alone.
#[derive(Debug, Default)]
pub struct RoomPatch {
    pub name: Option<String>,
    pub topic: Option<String>,
    pub visibility: Option<Visibility>,
    pub archived: Option<bool>,
}

/// Room writes, applied by the writer like sends.
#[derive(Debug)]
pub enum RoomOp {
    Create {
        creator: u64,
        name: String,
        topic: String,
        visibility: Visibility,
        members: Vec<u64>,
        at: u64,
    },
    Update {
        by: u64,
        room: ConversationId,
        patch: RoomPatch,
    },
    Join {
        user: u64,
        room: ConversationId,
        at: u64,
    },
    Leave {
        user: u64,
        room: ConversationId,
    },
    Add {
        by: u64,
        room: ConversationId,
        user: u64,
        at: u64,
    },
    Remove {
        by: u64,
        room: ConversationId,
        user: u64,
    },
    SetNotify {
        user: u64,
        conversation: ConversationId,
        level: Notify,
    },
}

/// What a room write changed, for the writer to tell the right people.
#[derive(Debug)]
pub enum RoomEvent {
    /// A new room; `members` see it appear.
    Created {
        room: ConversationId,
        members: Members,
    },
    /// Name, topic, visibility or archived changed (`actions` says which, in that order).
    Updated {
        room: ConversationId,
        view: RoomView,
        actions: Vec<&'static str>,
        by: u64,
        members: Members,
    },
    /// `user` joined or was added; `members` includes them.
    MemberAdded {
        room: ConversationId,
        user: u64,
        by: u64,
        members: Members,
    },
    /// `user` left or was removed; `members` are the ones still in it.
    MemberRemoved {
        room: ConversationId,
        user: u64,
        by: u64,
        members: Members,
    },
    Notify {
        user: u64,
        conversation: ConversationId,
        level: Notify,
    },
}

impl Store {
    /// Open, unarchived rooms whose name or topic contains `query` (ignoring case and accents),
    /// biggest first.
    pub fn browse_rooms(&self, user: u64, query: &str) -> Result<Vec<BrowsedRoom>> {
        let txn = self.read()?;
        let room_members = txn.open_table(ROOM_MEMBERS)?;
        let needle = crate::text::fold(query.trim());
        let mut rooms = Vec::new();
        for entry in txn.open_table(ROOM_NAMES)?.iter()? {
            let number = entry?.1.value();
            let id = ConversationId::room(number);
            let Some(record) = txn.open_table(CONVERSATIONS)?.get(id.as_str())? else {
                continue;
            };
            let record = record.value().decode()?;
            let Some(info) = record.room else { continue };
            let matches = needle.is_empty()
                || crate::text::fold(&info.name).contains(&needle)
                || crate::text::fold(&info.topic).contains(&needle);
            if info.archived || info.visibility != Visibility::Open || !matches {
                continue;
            }
            rooms.push(BrowsedRoom {
                joined: room_members.get((id.as_str(), user))?.is_some(),
                id,
                name: info.name,
                topic: info.topic,
                member_count: info.member_count,
                last_activity: record.last_activity,
            });
        }
        rooms.sort_by(|a, b| {
            b.member_count
                .cmp(&a.member_count)
                .then(a.name.cmp(&b.name))
        });
        rooms.truncate(BROWSE_MAX);
        Ok(rooms)
    }

    /// Whether `conversation` is an archived room (false for DMs and for rooms that do not
    /// exist). Archived rooms are read-only: besides the writes the writer refuses (sends,
    /// edits, reactions), nobody may upload to one or type in one.
    pub fn is_archived(&self, conversation: &ConversationId) -> Result<bool> {
        if !conversation.is_room() {
            return Ok(false);
        }
        let txn = self.read()?;
        let record = txn
            .open_table(CONVERSATIONS)?
            .get(conversation.as_str())?
            .map(|r| r.value().decode())
            .transpose()?;
        Ok(record
            .and_then(|r| r.room)
            .is_some_and(|room| room.archived))
    }

    /// The room's members, if `user` is one of them.
    pub fn room_members(
        &self,
        user: u64,
        room: &ConversationId,
    ) -> Result<Option<Vec<RoomMember>>> {
        let txn = self.read()?;
        let room_members = txn.open_table(ROOM_MEMBERS)?;
        let memberships = txn.open_table(MEMBERSHIPS)?;
        let id = room.as_str();
        if room_members.get((id, user))?.is_none() {
            return Ok(None);
        }
        let mut members = Vec::new();
        for entry in room_members.range((id, 0)..=(id, u64::MAX))? {
            let (key, record) = entry?;
            let member = key.value().1;
            let record = record.value().decode()?;
            let read_seq = match memberships.get((member, id))? {
                Some(m) => m.value().decode()?.read_seq,
                None => 0,
            };
            members.push(RoomMember {
                user: member,
                read_seq,
                added_by: record.added_by,
                joined_at: record.joined_at,
            });
        }
        Ok(Some(members))
    }
}

/// Creates General if this database has none, with every account in it.
pub(super) fn ensure_general(txn: &WriteTransaction) -> Result<()> {
    let general = ConversationId::general();
    let mut conversations = txn.open_table(CONVERSATIONS)?;
    if conversations.get(general.as_str())?.is_some() {
        return Ok(());
    }
    let mut users = Vec::new();
    for entry in txn.open_table(USERS)?.iter()? {
        users.push(entry?.0.value());
    }
    let record = ConversationRecord {
        kind: Kind::Room,
        members: Vec::new(),
        last_seq: 0,
        last_activity: 0,
        change_seq: 0,
        room: Some(RoomInfo {
            name: "General".into(),
            topic: String::new(),
            visibility: Visibility::Open,
            archived: false,
            created_by: 0,
            member_count: users.len() as u32,
        }),
    };
    conversations.insert(general.as_str(), Encoded::new(&record))?;
    txn.open_table(ROOM_NAMES)?.insert("general", GENERAL)?;
    let mut meta = txn.open_table(META)?;
    if meta.get("next_room")?.is_none() {
        meta.insert("next_room", (GENERAL + 1).to_le_bytes().as_slice())?;
    }
    let now = super::now_secs();
    let mut room_members = txn.open_table(ROOM_MEMBERS)?;
    let mut memberships = txn.open_table(MEMBERSHIPS)?;
    for user in users {
        let member = RoomMemberRecord {
            added_by: 0,
            joined_at: now,
        };
        room_members.insert((general.as_str(), user), Encoded::new(&member))?;
        memberships.insert(
            (user, general.as_str()),
            Encoded::new(&MembershipRecord::default()),
        )?;
    }
    Ok(())
}

/// Puts a new account in General, caught up (nothing from before they existed is unread).
pub(super) fn join_general(txn: &WriteTransaction, user: u64) -> Result<()> {
    let general = ConversationId::general();
    let mut conversations = txn.open_table(CONVERSATIONS)?;
    let record = conversations
        .get(general.as_str())?
        .map(|r| r.value().decode())
        .transpose()?;
    let Some(mut record) = record else {
        return Ok(());
    };
    let Some(info) = record.room.as_mut() else {
        return Ok(());
    };
    info.member_count += 1;
    let last_seq = record.last_seq;
    conversations.insert(general.as_str(), Encoded::new(&record))?;
    let member = RoomMemberRecord {
        added_by: user,
        joined_at: super::now_secs(),
    };
    txn.open_table(ROOM_MEMBERS)?
        .insert((general.as_str(), user), Encoded::new(&member))?;
    let position = MembershipRecord {
        read_seq: last_seq,
        ..MembershipRecord::default()
    };
    txn.open_table(MEMBERSHIPS)?
        .insert((user, general.as_str()), Encoded::new(&position))?;
    Ok(())
}

impl BatchTables<'_> {
    pub(super) fn apply_room(&mut self, op: &RoomOp) -> Result<ChatOutcome> {
        let outcome = match op {
            RoomOp::Create {
                creator,
                name,
                topic,
                visibility,
                members,
                at,
            } => self.create_room(*creator, name, topic, *visibility, members, *at),
            RoomOp::Update { by, room, patch } => self.update_room(*by, room, patch),
            RoomOp::Join { user, room, at } => self.join(*user, room, *at),
            RoomOp::Leave { user, room } => self.remove_member(*user, room, *user),
            RoomOp::Add { by, room, user, at } => self.add_member(*by, room, *user, *at),
            RoomOp::Remove { by, room, user } => self.remove_member(*by, room, *user),
            RoomOp::SetNotify {
                user,
                conversation,
                level,
            } => self.set_notify(*user, conversation, *level),
        };
        Ok(match outcome? {
            Ok(event) => ChatOutcome::Room(event),
            Err(rejection) => ChatOutcome::Rejected(rejection),
        })
    }

    fn create_room(
        &mut self,
        creator: u64,
        name: &str,
        topic: &str,
        visibility: Visibility,
        invited: &[u64],
        at: u64,
    ) -> Result<Result<RoomEvent, ChatRejection>> {
        let mut members = vec![creator];
        for &user in invited {
            if !is_active(self.users.table()?, user)? {
                return Ok(Err(ChatRejection::NoSuchUser));
            }
            if !members.contains(&user) {
                members.push(user);
            }
        }
        if visibility == Visibility::Open && self.name_taken(name, None)? {
            return Ok(Err(ChatRejection::RoomNameTaken));
        }
        let number = match self.meta.get("next_room")? {
            Some(bytes) => u64::from_le_bytes(bytes.value().try_into().unwrap_or([0; 8])),
            None => GENERAL + 1,
        }
        .max(GENERAL + 1);
        self.meta
            .insert("next_room", (number + 1).to_le_bytes().as_slice())?;
        let room = ConversationId::room(number);
        let id = room.as_str();
        members.sort_unstable();
        let record = ConversationRecord {
            kind: Kind::Room,
            members: Vec::new(),
            last_seq: 0,
            last_activity: at * 1000,
            change_seq: 0,
            room: Some(RoomInfo {
                name: name.to_owned(),
                topic: topic.to_owned(),
                visibility,
                archived: false,
                created_by: creator,
                member_count: members.len() as u32,
            }),
        };
        self.conversations.insert(id, Encoded::new(&record))?;
        if visibility == Visibility::Open {
            self.room_names
                .insert(name.to_lowercase().as_str(), number)?;
        }
        for &member in &members {
            let record = RoomMemberRecord {
                added_by: creator,
                joined_at: at,
            };
            self.room_members
                .insert((id, member), Encoded::new(&record))?;
            self.update_membership(member, id, |_| {})?;
        }
        let members: Members = Arc::from(members);
        self.store.members_cache.insert(&room, members.clone());
        self.changed_rooms.push(room.clone());
        Ok(Ok(RoomEvent::Created { room, members }))
    }

    fn update_room(
        &mut self,
        by: u64,
        room: &ConversationId,
        patch: &RoomPatch,
    ) -> Result<Result<RoomEvent, ChatRejection>> {
        let Some((mut record, members)) = self.room_for_member(room, by)? else {
            return Ok(Err(ChatRejection::NotFound));
        };
        let general = *room == ConversationId::general();
        let is_admin = self.is_admin(by)?;
        let Some(info) = record.room.as_mut() else {
            return Ok(Err(ChatRejection::NotFound));
        };
        if general && (patch.visibility.is_some() || patch.archived.is_some()) {
            return Ok(Err(ChatRejection::GeneralIsFixed));
        }
        if !(is_admin || (!general && info.created_by == by)) {
            return Ok(Err(ChatRejection::Forbidden));
        }
        if info.archived && patch.archived != Some(false) {
            return Ok(Err(ChatRejection::RoomArchived));
        }
        let was_listed = info.visibility == Visibility::Open;
        let old_name = info.name.clone();
        let mut actions = Vec::new();
        if let Some(name) = &patch.name
            && *name != info.name
        {
            info.name = name.clone();
            actions.push("renamed");
        }
        if let Some(topic) = &patch.topic
            && *topic != info.topic
        {
            info.topic = topic.clone();
            actions.push("topic");
        }
        if let Some(visibility) = patch.visibility
            && visibility != info.visibility
        {
            info.visibility = visibility;
            actions.push("visibility");
        }
        if let Some(archived) = patch.archived
            && archived != info.archived
        {
            info.archived = archived;
            actions.push("archived");
        }
        let listed = info.visibility == Visibility::Open;
        let number = room_number(room);
        // Checked before anything is written: a refused change changes nothing.
        if listed && self.name_taken(&info.name, Some(number))? {
            return Ok(Err(ChatRejection::RoomNameTaken));
        }
        if was_listed {
            self.room_names.remove(old_name.to_lowercase().as_str())?;
        }
        if listed {
            self.room_names
                .insert(info.name.to_lowercase().as_str(), number)?;
        }
        let view = RoomView::new(room.as_str(), info);
        self.conversations
            .insert(room.as_str(), Encoded::new(&record))?;
        Ok(Ok(RoomEvent::Updated {
            room: room.clone(),
            view,
            actions,
            by,
            members,
        }))
    }

    fn join(
        &mut self,
        user: u64,
        room: &ConversationId,
        at: u64,
    ) -> Result<Result<RoomEvent, ChatRejection>> {
        let Some(record) = self.room_record(room)? else {
            return Ok(Err(ChatRejection::NotFound));
        };
        let Some(info) = &record.room else {
            return Ok(Err(ChatRejection::NotFound));
        };
        let is_member = self.room_members.get((room.as_str(), user))?.is_some();
        // A private room is not there for anyone outside it.
        if info.visibility == Visibility::Private && !is_member {
            return Ok(Err(ChatRejection::NotFound));
        }
        if is_member {
            return Ok(Err(ChatRejection::AlreadyMember));
        }
        if info.archived {
            return Ok(Err(ChatRejection::RoomArchived));
        }
        self.enter(record, room, user, user, at).map(Ok)
    }

    fn add_member(
        &mut self,
        by: u64,
        room: &ConversationId,
        user: u64,
        at: u64,
    ) -> Result<Result<RoomEvent, ChatRejection>> {
        let Some((record, members)) = self.room_for_member(room, by)? else {
            return Ok(Err(ChatRejection::NotFound));
        };
        let Some(info) = &record.room else {
            return Ok(Err(ChatRejection::NotFound));
        };
        if info.visibility == Visibility::Open {
            return Ok(Err(ChatRejection::OpenRoomsAreJoined));
        }
        if info.archived {
            return Ok(Err(ChatRejection::RoomArchived));
        }
        if !is_active(self.users.table()?, user)? {
            return Ok(Err(ChatRejection::NoSuchUser));
        }
        if members.contains(&user) {
            return Ok(Err(ChatRejection::AlreadyMember));
        }
        self.enter(record, room, user, by, at).map(Ok)
    }

    /// Adds `user` (caught up to the newest message) and counts them.
    fn enter(
        &mut self,
        mut record: ConversationRecord,
        room: &ConversationId,
        user: u64,
        by: u64,
        at: u64,
    ) -> Result<RoomEvent> {
        let id = room.as_str();
        if let Some(info) = record.room.as_mut() {
            info.member_count += 1;
        }
        let last_seq = record.last_seq;
        self.conversations.insert(id, Encoded::new(&record))?;
        let member = RoomMemberRecord {
            added_by: by,
            joined_at: at,
        };
        self.room_members
            .insert((id, user), Encoded::new(&member))?;
        self.memberships.remove((user, id))?;
        self.update_membership(user, id, |m| m.read_seq = last_seq)?;
        self.store.members_cache.invalidate(room);
        self.changed_rooms.push(room.clone());
        let members = self
            .members(room)?
            .unwrap_or_else(|| Arc::from([user].as_slice()));
        Ok(RoomEvent::MemberAdded {
            room: room.clone(),
            user,
            by,
            members,
        })
    }

    /// `by` removes `user` (`by == user`: leaving).
    fn remove_member(
        &mut self,
        by: u64,
        room: &ConversationId,
        user: u64,
    ) -> Result<Result<RoomEvent, ChatRejection>> {
        let Some((mut record, members)) = self.room_for_member(room, by)? else {
            return Ok(Err(ChatRejection::NotFound));
        };
        if *room == ConversationId::general() {
            return Ok(Err(ChatRejection::CannotLeaveGeneral));
        }
        let Some(info) = record.room.as_mut() else {
            return Ok(Err(ChatRejection::NotFound));
        };
        if by != user && !(info.created_by == by || self.is_admin(by)?) {
            return Ok(Err(ChatRejection::Forbidden));
        }
        if !members.contains(&user) {
            return Ok(Err(ChatRejection::NotFound));
        }
        info.member_count = info.member_count.saturating_sub(1);
        let id = room.as_str();
        self.conversations.insert(id, Encoded::new(&record))?;
        self.room_members.remove((id, user))?;
        self.memberships.remove((user, id))?;
        let mut mentioned = Vec::new();
        for entry in self.mentions.range((user, id, 0)..=(user, id, u64::MAX))? {
            mentioned.push(entry?.0.value().2);
        }
        for seq in mentioned {
            self.mentions.remove((user, id, seq))?;
        }
        self.store.members_cache.invalidate(room);
        self.changed_rooms.push(room.clone());
        let remaining: Members = members.iter().copied().filter(|&m| m != user).collect();
        Ok(Ok(RoomEvent::MemberRemoved {
            room: room.clone(),
            user,
            by,
            members: remaining,
        }))
    }

    fn set_notify(
        &mut self,
        user: u64,
        conversation: &ConversationId,
        level: Notify,
    ) -> Result<Result<RoomEvent, ChatRejection>> {
        match self.members(conversation)? {
            Some(members) if members.contains(&user) => {}
            _ => return Ok(Err(ChatRejection::NotFound)),
        }
        self.update_membership(user, conversation.as_str(), |m| m.notify = Some(level))?;
        Ok(Ok(RoomEvent::Notify {
            user,
            conversation: conversation.clone(),
            level,
        }))
    }

    fn room_record(&self, room: &ConversationId) -> Result<Option<ConversationRecord>> {
        let record = self
            .conversations
            .get(room.as_str())?
            .map(|r| r.value().decode())
            .transpose()?;
        Ok(record.filter(|r| r.room.is_some()))
    }

    /// The room and its members, if `user` is one of them: anyone else learns nothing.
    fn room_for_member(
        &self,
        room: &ConversationId,
        user: u64,
    ) -> Result<Option<(ConversationRecord, Members)>> {
        let Some(record) = self.room_record(room)? else {
            return Ok(None);
        };
        match self.members(room)? {
            Some(members) if members.contains(&user) => Ok(Some((record, members))),
            _ => Ok(None),
        }
    }

    /// Whether an open room other than `except` already has this name (ignoring case).
    fn name_taken(&self, name: &str, except: Option<u64>) -> Result<bool> {
        Ok(self
            .room_names
            .get(name.to_lowercase().as_str())?
            .is_some_and(|n| Some(n.value()) != except))
    }

    pub(super) fn is_admin(&self, user: u64) -> Result<bool> {
        Ok(match self.users.get(user)? {
            Some(r) => r.value().decode()?.is_admin(),
            None => false,
        })
    }
}

fn room_number(room: &ConversationId) -> u64 {
    room.as_str()
        .strip_prefix("room:")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
