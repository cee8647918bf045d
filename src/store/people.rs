//! Who may reach whom: each person's DM policy ("anyone" or "ask me first"), chat requests
//! with their accept and decline, and blocks, including what a block hides from the blocker
//! when messages are served (a blocked person's reactions on DM messages).

use std::sync::Arc;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::chat::{
    BatchTables, ChatOutcome, ChatRejection, ConversationId, Message, MessageRecord, is_active,
};
use super::codec::{Encoded, Record};
use super::{BLOCKS, CONVERSATIONS, DECLINED, REQUESTS, Result, SETTINGS, Store};

/// After a decline, the sender may not ask again for this long.
pub const DECLINE_COOLDOWN_MS: u64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmPolicy {
    #[default]
    Anyone,
    Ask,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct SettingsRecord {
    pub(super) dm_policy: DmPolicy,
}

impl Record for SettingsRecord {
    const TYPE_NAME: &'static str = "confab::Settings";
    const VERSION: u8 = 1;
}

/// A first DM waiting for its recipient's answer.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RequestRecord {
    body: String,
    client_id: String,
    /// Unix milliseconds.
    sent_at: u64,
    /// The recipient blocks the sender (since before the request, or since it came): it is
    /// kept for the sender's sake and never shown. It lasts only as long as the block:
    /// lifting it drops the request (see `apply_people`).
    hidden: bool,
}

impl Record for RequestRecord {
    const TYPE_NAME: &'static str = "confab::Request";
    const VERSION: u8 = 1;
}

#[derive(Debug, Serialize)]
pub struct IncomingRequest {
    pub from: u64,
    pub body: String,
    pub sent_at: u64,
}

#[derive(Debug, Serialize)]
pub struct OutgoingRequest {
    pub to: u64,
    pub sent_at: u64,
}

/// A request of ours that was declined: we may not ask `to` again before `until`.
#[derive(Debug, Serialize)]
pub struct DeclinedRequest {
    pub to: u64,
    /// Unix milliseconds.
    pub until: u64,
}

#[derive(Debug, Serialize)]
pub struct Requests {
    pub incoming: Vec<IncomingRequest>,
    pub outgoing: Vec<OutgoingRequest>,
    pub declined: Vec<DeclinedRequest>,
}

/// Writes about who may reach whom, applied by the writer.
#[derive(Debug)]
pub enum PeopleOp {
    SetDmPolicy { user: u64, policy: DmPolicy },
    Accept { user: u64, from: u64 },
    Decline { user: u64, from: u64, at: u64 },
    Block { user: u64, target: u64 },
    Unblock { user: u64, target: u64 },
}

#[derive(Debug)]
pub enum PeopleEvent {
    /// A request was stored. The recipient is told unless they block the sender, or this is
    /// a retry they were told about already.
    RequestSent {
        from: u64,
        to: u64,
        client_id: String,
        body: String,
        sent_at: u64,
        tell_recipient: bool,
    },
    /// The request became the DM's first message.
    Accepted {
        user: u64,
        from: u64,
        message: Message,
        members: Arc<[u64]>,
    },
    Declined {
        user: u64,
        from: u64,
    },
    /// `to` lifted their block on `from`, and with it went the request of `from`'s that the
    /// block had hidden: only `from`'s tabs hear of it (`to` never saw it).
    RequestDropped {
        from: u64,
        to: u64,
    },
    /// Nothing for anyone else to hear (settings, blocks).
    Saved,
}

impl Store {
    pub fn dm_policy(&self, user: u64) -> Result<DmPolicy> {
        let txn = self.read()?;
        Ok(match txn.open_table(SETTINGS)?.get(user)? {
            Some(r) => r.value().decode()?.dm_policy,
            None => DmPolicy::Anyone,
        })
    }

    /// Whether `typist`'s typing in their DM with `other` may be shown to `other`: never once
    /// `other` blocks them, and before the DM exists only if `other` takes DMs from anyone (a
    /// first message to someone who asks first is a request, and typing must not announce it).
    pub fn dm_typing_reaches(
        &self,
        typist: u64,
        other: u64,
        conversation: &ConversationId,
    ) -> Result<bool> {
        let txn = self.read()?;
        if txn.open_table(BLOCKS)?.get((other, typist))?.is_some() {
            return Ok(false);
        }
        if txn
            .open_table(CONVERSATIONS)?
            .get(conversation.as_str())?
            .is_some()
        {
            return Ok(true);
        }
        Ok(self.dm_policy(other)? == DmPolicy::Anyone)
    }

    /// Requests waiting for `user`'s answer (not from people they block), theirs waiting for
    /// others, and theirs declined that still keep them from asking again at `now` (unless
    /// the other person has started the DM since).
    pub fn requests(&self, user: u64, now: u64) -> Result<Requests> {
        let txn = self.read()?;
        let requests = txn.open_table(REQUESTS)?;
        let mut incoming = Vec::new();
        for entry in requests.range((user, 0)..=(user, u64::MAX))? {
            let (key, record) = entry?;
            let record = record.value().decode()?;
            if !record.hidden {
                incoming.push(IncomingRequest {
                    from: key.value().1,
                    body: record.body,
                    sent_at: record.sent_at,
                });
            }
        }
        // Outgoing requests are keyed by recipient first; a full scan is fine for an office.
        let blocks = txn.open_table(BLOCKS)?;
        let mut outgoing = Vec::new();
        for entry in requests.iter()? {
            let (key, record) = entry?;
            let (to, from) = key.value();
            if from == user {
                let record = record.value().decode()?;
                // A hidden request outlives its block only in a database written before
                // unblocking dropped it; it is no longer pending, so it is not listed.
                if record.hidden && blocks.get((to, from))?.is_none() {
                    continue;
                }
                outgoing.push(OutgoingRequest {
                    to,
                    sent_at: record.sent_at,
                });
            }
        }
        let conversations = txn.open_table(CONVERSATIONS)?;
        let mut declined = Vec::new();
        for entry in txn
            .open_table(DECLINED)?
            .range((user, 0)..=(user, u64::MAX))?
        {
            let (key, until) = entry?;
            let (to, until) = (key.value().1, until.value());
            let dm = ConversationId::dm(user, to);
            if until > now && conversations.get(dm.as_str())?.is_none() {
                declined.push(DeclinedRequest { to, until });
            }
        }
        Ok(Requests {
            incoming,
            outgoing,
            declined,
        })
    }

    /// The people `user` blocks.
    pub fn blocks(&self, user: u64) -> Result<Vec<u64>> {
        let txn = self.read()?;
        blocked_by(&txn.open_table(BLOCKS)?, user)
    }
}

/// The other member of the DM `message` is in, if they reacted to it: the one person whose
/// reactions `viewer` may not see (if `viewer` blocks them). `None` for room messages, whose
/// reactions stay for everyone as room messages do, and for a message without their reaction.
fn reactor_to_hide(viewer: u64, message: &Message) -> Option<u64> {
    if message.reactions.is_empty() {
        return None;
    }
    let pair = message.conversation.dm_members()?;
    if !pair.contains(&viewer) {
        return None;
    }
    let other = pair.into_iter().find(|&m| m != viewer)?;
    message
        .reactions
        .iter()
        .any(|r| r.users.contains(&other))
        .then_some(other)
}

/// Takes `user`'s reactions off this copy of a message (an emoji nobody else put there goes).
fn remove_reactions_of(message: &mut Message, user: u64) {
    for reaction in &mut message.reactions {
        reaction.users.retain(|&u| u != user);
    }
    message.reactions.retain(|r| !r.users.is_empty());
}

/// `messages` as `viewer` may see them: a DM message carries no reaction of the other member
/// if `viewer` blocks them (the blocker receives nothing from the blocked person). Applied
/// where messages are served, never stored, so unblocking shows the reactions again.
/// `blocks(other)` says whether `viewer` blocks `other`; it is asked only for a message that
/// carries the other member's reaction, once per person, so a page without such reactions
/// costs no read.
pub(super) fn hide_blocked_reactions(
    viewer: u64,
    messages: &mut [Message],
    mut blocks: impl FnMut(u64) -> Result<bool>,
) -> Result<()> {
    let mut known: Vec<(u64, bool)> = Vec::new();
    for message in messages {
        let Some(other) = reactor_to_hide(viewer, message) else {
            continue;
        };
        let blocked = match known.iter().find(|(who, _)| *who == other) {
            Some(&(_, blocked)) => blocked,
            None => {
                let blocked = blocks(other)?;
                known.push((other, blocked));
                blocked
            }
        };
        if blocked {
            remove_reactions_of(message, other);
        }
    }
    Ok(())
}

/// The people `user` blocks.
pub(super) fn blocked_by(
    blocks: &impl ReadableTable<(u64, u64), ()>,
    user: u64,
) -> Result<Vec<u64>> {
    let mut blocked = Vec::new();
    for entry in blocks.range((user, 0)..=(user, u64::MAX))? {
        blocked.push(entry?.0.value().1);
    }
    Ok(blocked)
}

impl BatchTables<'_> {
    /// `message` as `viewer` may see it (see [`hide_blocked_reactions`]).
    pub(super) fn as_seen_by(&self, viewer: u64, message: &mut Message) -> Result<()> {
        hide_blocked_reactions(viewer, std::slice::from_mut(message), |other| {
            Ok(self.blocks.get((viewer, other))?.is_some())
        })
    }

    /// Those of `members` who may not see every reaction on `message` (they block the other
    /// member of its DM, who reacted to it), each with the message as they may see it. Empty,
    /// with no read, for a message without reactions and for room messages.
    pub(super) fn blockers_views(
        &self,
        message: &Message,
        members: &[u64],
    ) -> Result<Vec<(u64, Message)>> {
        let mut views = Vec::new();
        for &member in members {
            if let Some(other) = reactor_to_hide(member, message)
                && self.blocks.get((member, other))?.is_some()
            {
                let mut seen = message.clone();
                remove_reactions_of(&mut seen, other);
                views.push((member, seen));
            }
        }
        Ok(views)
    }

    /// A first DM to someone who asks first (or blocks the sender) is stored as a request.
    pub(super) fn request_chat(
        &mut self,
        from: u64,
        to: u64,
        body: &str,
        client_id: &str,
        sent_at: u64,
        hidden: bool,
    ) -> Result<ChatOutcome> {
        // A hidden request whose block is gone (left by a version that did not drop it on
        // unblocking) is not pending: this send replaces it with one the recipient sees.
        let pending = self
            .requests
            .get((to, from))?
            .map(|r| r.value().decode())
            .transpose()?
            .filter(|pending: &RequestRecord| !pending.hidden || hidden);
        if let Some(pending) = pending {
            // A retry of the same request is answered as it was the first time.
            if pending.client_id == client_id && pending.body == body {
                return Ok(ChatOutcome::People(PeopleEvent::RequestSent {
                    from,
                    to,
                    client_id: client_id.to_owned(),
                    body: pending.body,
                    sent_at: pending.sent_at,
                    tell_recipient: false,
                }));
            }
            return Ok(ChatOutcome::Rejected(ChatRejection::RequestPending));
        }
        if self
            .declined
            .get((from, to))?
            .is_some_and(|until| until.value() > sent_at)
        {
            return Ok(ChatOutcome::Rejected(ChatRejection::RequestDeclined));
        }
        let record = RequestRecord {
            body: body.to_owned(),
            client_id: client_id.to_owned(),
            sent_at,
            hidden,
        };
        self.requests.insert((to, from), Encoded::new(&record))?;
        Ok(ChatOutcome::People(PeopleEvent::RequestSent {
            from,
            to,
            client_id: client_id.to_owned(),
            body: body.to_owned(),
            sent_at,
            tell_recipient: !hidden,
        }))
    }

    pub(super) fn apply_people(&mut self, op: &PeopleOp) -> Result<ChatOutcome> {
        let event = match op {
            PeopleOp::SetDmPolicy { user, policy } => {
                let record = SettingsRecord { dm_policy: *policy };
                self.settings.insert(*user, Encoded::new(&record))?;
                PeopleEvent::Saved
            }
            PeopleOp::Accept { user, from } => return self.accept(*user, *from),
            PeopleOp::Decline { user, from, at } => {
                let Some(request) = self.take_request(*user, *from)? else {
                    return Ok(ChatOutcome::Rejected(ChatRejection::NotFound));
                };
                drop(request);
                self.declined
                    .insert((*from, *user), at + DECLINE_COOLDOWN_MS)?;
                PeopleEvent::Declined {
                    user: *user,
                    from: *from,
                }
            }
            PeopleOp::Block { user, target } => {
                if user == target {
                    return Ok(ChatOutcome::Rejected(ChatRejection::CannotBlockSelf));
                }
                if !is_active(self.users.table()?, *target)? {
                    return Ok(ChatOutcome::Rejected(ChatRejection::NoSuchUser));
                }
                self.blocks.insert((*user, *target), ())?;
                // Their request waiting for an answer goes out of sight with them: it is
                // hidden like one sent after the block (the sender is not told), and dropped
                // if the block is lifted.
                self.hide_request(*user, *target)?;
                PeopleEvent::Saved
            }
            PeopleOp::Unblock { user, target } => {
                // A disabled account may still be unblocked: the block outlives the account
                // and is the blocker's to lift. Only an id that never was a user is refused.
                if self.users.get(*target)?.is_none() {
                    return Ok(ChatOutcome::Rejected(ChatRejection::NoSuchUser));
                }
                self.blocks.remove((*user, *target))?;
                // What the block withheld stays withheld, and a request it hid cannot be
                // answered (its recipient never saw it): it is dropped, not shown. The sender
                // is no longer kept waiting, and their next message makes a fresh request
                // that the recipient does see.
                if self.drop_hidden_request(*user, *target)? {
                    PeopleEvent::RequestDropped {
                        from: *target,
                        to: *user,
                    }
                } else {
                    PeopleEvent::Saved
                }
            }
        };
        Ok(ChatOutcome::People(event))
    }

    /// The request's message becomes the DM's first message, sent when it was asked.
    fn accept(&mut self, user: u64, from: u64) -> Result<ChatOutcome> {
        let Some(request) = self.take_request(user, from)? else {
            return Ok(ChatOutcome::Rejected(ChatRejection::NotFound));
        };
        let conversation = ConversationId::dm(user, from);
        let Some(members) = self.members(&conversation)? else {
            return Ok(ChatOutcome::Rejected(ChatRejection::NotFound));
        };
        let existing = self
            .conversations
            .get(conversation.as_str())?
            .map(|r| r.value().decode())
            .transpose()?;
        let message = MessageRecord::new(from, request.body, request.sent_at);
        match self.append(
            &conversation,
            existing,
            members,
            message,
            &request.client_id,
        )? {
            ChatOutcome::Sent { message, members } => {
                Ok(ChatOutcome::People(PeopleEvent::Accepted {
                    user,
                    from,
                    message,
                    members,
                }))
            }
            other => Ok(other),
        }
    }

    /// Hides a visible request from `from` to `user`, if there is one.
    fn hide_request(&mut self, user: u64, from: u64) -> Result<()> {
        let visible = self
            .requests
            .get((user, from))?
            .map(|r| r.value().decode())
            .transpose()?
            .filter(|request: &RequestRecord| !request.hidden);
        if let Some(mut request) = visible {
            request.hidden = true;
            self.requests.insert((user, from), Encoded::new(&request))?;
        }
        Ok(())
    }

    /// Removes a hidden request from `from` to `user`, saying whether there was one.
    fn drop_hidden_request(&mut self, user: u64, from: u64) -> Result<bool> {
        let hidden = self
            .requests
            .get((user, from))?
            .map(|r| r.value().decode())
            .transpose()?
            .is_some_and(|request: RequestRecord| request.hidden);
        if hidden {
            self.requests.remove((user, from))?;
        }
        Ok(hidden)
    }

    /// A DM between `a` and `b` has its first message: a request between them in either
    /// direction is no longer pending. Accepting took the accepted one already; this ends one
    /// made the other way, or one that the DM overtook (the recipient wrote first, or started
    /// taking DMs from anyone and the sender wrote again). Its members hear of it through the
    /// DM's first message.
    pub(super) fn end_requests_between(&mut self, a: u64, b: u64) -> Result<()> {
        self.requests.remove((a, b))?;
        self.requests.remove((b, a))?;
        Ok(())
    }

    /// Removes and returns a request from `from` to `user` that `user` can see. A hidden one
    /// is left alone: its recipient never saw it, so there is nothing of theirs to answer.
    fn take_request(&mut self, user: u64, from: u64) -> Result<Option<RequestRecord>> {
        let request = self
            .requests
            .get((user, from))?
            .map(|r| r.value().decode())
            .transpose()?;
        match request {
            Some(request) if !request.hidden => {
                self.requests.remove((user, from))?;
                Ok(Some(request))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::chat::Reaction;

    fn message(conversation: ConversationId, reactions: &[(&str, &[u64])]) -> Message {
        Message {
            conversation,
            seq: 1,
            from: 1,
            body: "hi".into(),
            sent_at: 0,
            mentions: Vec::new(),
            mentions_room: false,
            reply_to: None,
            edited_at: None,
            deleted: false,
            reactions: reactions
                .iter()
                .map(|(emoji, users)| Reaction {
                    emoji: (*emoji).into(),
                    users: users.to_vec(),
                })
                .collect(),
            files: Vec::new(),
        }
    }

    #[test]
    fn a_blocked_persons_reactions_are_hidden_on_dms_only_and_asked_about_once() {
        let mut page = vec![
            message(ConversationId::dm(1, 2), &[("👍", &[2, 1]), ("👀", &[2])]),
            message(ConversationId::dm(1, 2), &[("🎉", &[1])]),
            message(ConversationId::dm(1, 2), &[("👀", &[2])]),
            message(ConversationId::room(4), &[("👀", &[2])]),
        ];
        let mut asked = 0;
        hide_blocked_reactions(1, &mut page, |other| {
            asked += 1;
            Ok(other == 2)
        })
        .expect("filtered");
        assert_eq!(
            asked, 1,
            "once for the person, never for a message without them"
        );
        let users = |m: &Message| -> Vec<(String, Vec<u64>)> {
            m.reactions
                .iter()
                .map(|r| (r.emoji.clone(), r.users.clone()))
                .collect()
        };
        assert_eq!(users(&page[0]), [("👍".to_owned(), vec![1])]);
        assert_eq!(users(&page[1]), [("🎉".to_owned(), vec![1])]);
        assert!(page[2].reactions.is_empty());
        assert_eq!(
            users(&page[3]),
            [("👀".to_owned(), vec![2])],
            "rooms keep theirs"
        );

        let mut plain = vec![message(ConversationId::dm(1, 2), &[])];
        hide_blocked_reactions(1, &mut plain, |_| panic!("no reaction, no read")).expect("ok");
    }
}
