//! What happens to a message after it is sent: edits, deletes and reactions, and the
//! per-conversation change sequence that lets a client that was away catch up on them.
//!
//! Each change bumps its conversation's `change_seq` and records `(conversation, change_seq) →
//! seq` in `changes`, in the same transaction; `GET …/changes?after=N` answers the current state
//! of every message changed since N.
//!
//! A delete empties the message for good (body, mentions, reactions) and keeps its seq, so seqs
//! stay gapless. Unread counts stay exact: a DM decrements the reader's stored count if the
//! message was unread; a room records the seq in `deleted`, and a room member's unread count is
//! `last_seq - read_seq - (deleted seqs after read_seq)`.

use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::chat::{
    BatchTables, ChatOutcome, ChatRejection, ClientIdRecord, ConversationId, Message,
    MessageRecord, Reaction, readable_message, resolve_replies,
};
use super::codec::Encoded;
use super::people;
use super::{BLOCKS, CHANGES, CONVERSATIONS, MESSAGES, ROOM_MEMBERS, Result, Store, USERS};

/// How long after sending a message its author may still edit it.
pub const EDIT_WINDOW_MS: u64 = 24 * 3600 * 1000;
/// Most different emoji under one message.
pub const MAX_REACTIONS: usize = 20;
/// Most changed messages one catch-up answer carries.
const CHANGES_PAGE: usize = 500;

/// A change to a stored message.
#[derive(Debug, Clone)]
pub enum MessageChange {
    Edit {
        body: String,
    },
    Delete,
    /// Adds the user's reaction, or takes it back if they had it.
    React {
        emoji: String,
    },
}

impl MessageChange {
    /// What identifies this change for a retry with the same client_id.
    fn fingerprint(&self) -> [u8; 32] {
        let text = match self {
            MessageChange::Edit { body } => format!("edit:{body}"),
            MessageChange::Delete => "delete".to_owned(),
            MessageChange::React { emoji } => format!("react:{emoji}"),
        };
        Sha256::digest(text.as_bytes()).into()
    }
}

/// Messages changed since a client last looked.
#[derive(Debug, Serialize)]
pub struct ChangesPage {
    pub messages: Vec<Message>,
    /// Where to continue from next time.
    pub change_seq: u64,
    pub has_more: bool,
}

impl Store {
    /// The current state of every message in `conversation` changed after `after`, if `user`
    /// is in it.
    pub fn changes(
        &self,
        user: u64,
        conversation: &ConversationId,
        after: u64,
    ) -> Result<Option<ChangesPage>> {
        let txn = self.read()?;
        if !super::chat::is_member(
            &txn.open_table(USERS)?,
            &txn.open_table(ROOM_MEMBERS)?,
            conversation,
            user,
        )? {
            return Ok(None);
        }
        let id = conversation.as_str();
        let current = match txn.open_table(CONVERSATIONS)?.get(id)? {
            Some(r) => r.value().decode()?.change_seq,
            None => 0,
        };
        let messages = txn.open_table(MESSAGES)?;
        let mut seqs = Vec::new();
        let mut change_seq = after;
        let mut has_more = false;
        for entry in txn
            .open_table(CHANGES)?
            .range((id, after.saturating_add(1))..=(id, u64::MAX))?
        {
            let (key, seq) = entry?;
            if seqs.len() == CHANGES_PAGE {
                has_more = true;
                break;
            }
            change_seq = key.value().1;
            let seq = seq.value();
            if !seqs.contains(&seq) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let mut page = Vec::new();
        for seq in seqs {
            if let Some(value) = messages.get((id, seq))?
                && let Some((message, withheld)) = readable_message(id, seq, value.value())
                && (!withheld || message.from == user)
            {
                page.push(message);
            }
        }
        resolve_replies(&messages, id, &mut page)?;
        people::hide_blocked_reactions(user, &mut page, |other| {
            Ok(txn.open_table(BLOCKS)?.get((user, other))?.is_some())
        })?;
        Ok(Some(ChangesPage {
            messages: page,
            change_seq: if has_more {
                change_seq
            } else {
                current.max(after)
            },
            has_more,
        }))
    }
}

impl BatchTables<'_> {
    pub(super) fn change_message(
        &mut self,
        user: u64,
        conversation: &ConversationId,
        seq: u64,
        change: &MessageChange,
        client_id: &str,
        at: u64,
    ) -> Result<ChatOutcome> {
        let id = conversation.as_str();
        let fingerprint = change.fingerprint();
        // Someone no longer in the room is an outsider, retry or not.
        let Some(members) = self.members(conversation)? else {
            return Ok(ChatOutcome::Rejected(ChatRejection::NotAMember));
        };
        if !members.contains(&user) {
            return Ok(ChatOutcome::Rejected(ChatRejection::NotAMember));
        }
        // A retry is answered with the message as it is now, and changes nothing again (a
        // reaction must not toggle twice).
        if let Some(earlier) = self
            .client_ids
            .get((user, client_id))?
            .map(|r| r.value().decode())
            .transpose()?
        {
            if earlier.conversation != id
                || earlier.seq != seq
                || earlier.body_sha256 != fingerprint
            {
                return Ok(ChatOutcome::Rejected(ChatRejection::ClientIdReused));
            }
            return Ok(self
                .retry_answer(user, id, seq)?
                .unwrap_or(ChatOutcome::Rejected(ChatRejection::NoSuchMessage)));
        }

        let Some(mut record) = self
            .conversations
            .get(id)?
            .map(|r| r.value().decode())
            .transpose()?
        else {
            return Ok(ChatOutcome::Rejected(ChatRejection::NoSuchMessage));
        };
        if record.room.as_ref().is_some_and(|r| r.archived) {
            return Ok(ChatOutcome::Rejected(ChatRejection::RoomArchived));
        }
        let Some(mut message) = self
            .messages
            .get((id, seq))?
            .map(|r| r.value().decode())
            .transpose()?
        else {
            return Ok(ChatOutcome::Rejected(ChatRejection::NoSuchMessage));
        };
        // A DM withheld from its recipient does not exist for them.
        if message.withheld && message.from != user {
            return Ok(ChatOutcome::Rejected(ChatRejection::NoSuchMessage));
        }
        if message.deleted {
            return Ok(ChatOutcome::Rejected(ChatRejection::MessageDeleted));
        }
        match change {
            MessageChange::Edit { body } => {
                if message.from != user {
                    return Ok(ChatOutcome::Rejected(ChatRejection::NotYourMessage));
                }
                if at.saturating_sub(message.sent_at) > EDIT_WINDOW_MS {
                    return Ok(ChatOutcome::Rejected(ChatRejection::EditWindowPassed));
                }
                if record.room.is_some() {
                    let (mentions, everyone) = self.parse_mentions(body, id, user)?;
                    if everyone
                        && let Some(room) = &record.room
                        && !self.may_mention_room(conversation, room, user)?
                    {
                        return Ok(ChatOutcome::Rejected(ChatRejection::MentionNotAllowed));
                    }
                    self.forget_mentions(id, seq, &message.mentions, message.mentions_room)?;
                    self.record_mentions(id, seq, user, &mentions, everyone)?;
                    message.mentions = mentions;
                    message.mentions_room = everyone;
                }
                // An edit is something new from its author: once the other person in a DM
                // blocks them, the message is withheld from that person like a new one would be.
                if !message.withheld && self.blocked_in_dm(conversation, &members, user)? {
                    self.uncount(conversation, &members, seq, &message)?;
                    message.withheld = true;
                }
                message.body = body.clone();
                message.edited_at = Some(at);
            }
            MessageChange::Delete => {
                if message.from != user && !self.is_admin(user)? {
                    return Ok(ChatOutcome::Rejected(ChatRejection::NotYourMessage));
                }
                self.forget_mentions(id, seq, &message.mentions, message.mentions_room)?;
                self.uncount(conversation, &members, seq, &message)?;
                self.drop_files(&mut message)?;
                message.body = String::new();
                message.mentions = Vec::new();
                message.mentions_room = false;
                message.reactions = Vec::new();
                message.edited_at = None;
                message.deleted = true;
            }
            MessageChange::React { emoji } => {
                if !toggle_reaction(&mut message.reactions, emoji, user) {
                    return Ok(ChatOutcome::Rejected(ChatRejection::TooManyReactions));
                }
            }
        }
        record.change_seq += 1;
        let change_seq = record.change_seq;
        self.conversations.insert(id, Encoded::new(&record))?;
        self.changes.insert((id, change_seq), seq)?;
        let withheld = message.withheld;
        self.messages.insert((id, seq), Encoded::new(&message))?;
        let remembered = ClientIdRecord {
            conversation: id.to_owned(),
            seq,
            body_sha256: fingerprint,
            at,
        };
        self.client_ids
            .insert((user, client_id), Encoded::new(&remembered))?;

        let message = self.outgoing(id, seq, message)?;
        // The blocker does not hear of a blocked person's reactions either.
        let reaction_of_blocked = matches!(change, MessageChange::React { .. })
            && self.blocked_in_dm(conversation, &members, user)?;
        let members = if withheld || reaction_of_blocked {
            Arc::from([user].as_slice())
        } else {
            members
        };
        // Nor see them on the message when a later change by anyone carries it.
        let blockers = self.blockers_views(&message, &members)?;
        Ok(ChatOutcome::Updated {
            message,
            members,
            change_seq,
            blockers,
        })
    }

    /// A deleted message no longer counts as unread for anyone.
    /// Whether `conversation` is a DM whose other member blocks `user`.
    fn blocked_in_dm(
        &self,
        conversation: &ConversationId,
        members: &[u64],
        user: u64,
    ) -> Result<bool> {
        if conversation.is_room() {
            return Ok(false);
        }
        let Some(&other) = members.iter().find(|&&m| m != user) else {
            return Ok(false);
        };
        Ok(self.blocks.get((other, user))?.is_some())
    }

    fn uncount(
        &mut self,
        conversation: &ConversationId,
        members: &[u64],
        seq: u64,
        message: &MessageRecord,
    ) -> Result<()> {
        let id = conversation.as_str();
        if conversation.is_room() {
            self.deleted.insert((id, seq), ())?;
            return Ok(());
        }
        if message.withheld {
            return Ok(());
        }
        for &member in members.iter().filter(|&&m| m != message.from) {
            let unread = self
                .memberships
                .get((member, id))?
                .map(|m| m.value().decode())
                .transpose()?
                .is_some_and(|m| m.read_seq < seq);
            if unread {
                self.update_membership(member, id, |m| m.unread = m.unread.saturating_sub(1))?;
            }
        }
        Ok(())
    }

    fn forget_mentions(&mut self, id: &str, seq: u64, users: &[u64], everyone: bool) -> Result<()> {
        for &user in users {
            self.mentions.remove((user, id, seq))?;
        }
        if everyone {
            self.room_mentions.remove((id, seq))?;
        }
        Ok(())
    }
}

/// Adds `user`'s `emoji`, or takes it back. False if it would be one emoji too many.
fn toggle_reaction(reactions: &mut Vec<Reaction>, emoji: &str, user: u64) -> bool {
    match reactions.iter().position(|r| r.emoji == emoji) {
        Some(at) => {
            let users = &mut reactions[at].users;
            match users.iter().position(|&u| u == user) {
                Some(mine) => {
                    users.remove(mine);
                    if users.is_empty() {
                        reactions.remove(at);
                    }
                }
                None => users.push(user),
            }
            true
        }
        None if reactions.len() >= MAX_REACTIONS => false,
        None => {
            reactions.push(Reaction {
                emoji: emoji.to_owned(),
                users: vec![user],
            });
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reactions_toggle_and_are_bounded() {
        let mut reactions = Vec::new();
        assert!(toggle_reaction(&mut reactions, "👍", 1));
        assert!(toggle_reaction(&mut reactions, "👍", 2));
        assert_eq!(reactions[0].users, [1, 2]);
        assert!(toggle_reaction(&mut reactions, "👍", 1));
        assert_eq!(reactions[0].users, [2]);
        assert!(toggle_reaction(&mut reactions, "👍", 2));
        assert!(reactions.is_empty());
        for n in 0..MAX_REACTIONS {
            assert!(toggle_reaction(&mut reactions, &format!("e{n}"), 1));
        }
        assert!(!toggle_reaction(&mut reactions, "one more", 1));
    }
}
