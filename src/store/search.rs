//! The reads message search needs: where a user may search, names to ids, the current state
//! of hits (so access is checked against committed state at query time, whatever the index
//! holds), and every message in key order for (re)building the index.

use std::collections::HashMap;

use super::chat::{ConversationId, Message, is_member, readable_message, resolve_replies};
use super::people;
use super::{
    BLOCKS, CONVERSATIONS, MEMBERSHIPS, MESSAGES, ROOM_MEMBERS, Result, Store, USERNAMES, USERS,
};

/// A conversation the user is in now, with its room name if it is a room.
#[derive(Debug, Clone)]
pub struct SearchScope {
    pub conversation: ConversationId,
    pub room_name: Option<String>,
}

/// Where a scan of every message stopped: the last key it returned.
pub type ScanCursor = (String, u64);

impl Store {
    /// Every conversation `user` is a member of now.
    pub fn search_scope(&self, user: u64) -> Result<Vec<SearchScope>> {
        let txn = self.read()?;
        let users = txn.open_table(USERS)?;
        let room_members = txn.open_table(ROOM_MEMBERS)?;
        let conversations = txn.open_table(CONVERSATIONS)?;
        let mut out = Vec::new();
        for entry in txn
            .open_table(MEMBERSHIPS)?
            .range((user, "")..(user + 1, ""))?
        {
            let key = entry?.0;
            let Some(id) = ConversationId::parse(key.value().1) else {
                continue;
            };
            if !is_member(&users, &room_members, &id, user)? {
                continue;
            }
            let room_name = match conversations.get(id.as_str())? {
                Some(record) => record
                    .value()
                    .decode()
                    .ok()
                    .and_then(|r| r.room)
                    .map(|r| r.name),
                None => None,
            };
            out.push(SearchScope {
                conversation: id,
                room_name,
            });
        }
        Ok(out)
    }

    /// The account id of a username (case-insensitive).
    pub fn user_id_by_name(&self, username: &str) -> Result<Option<u64>> {
        let txn = self.read()?;
        let id = txn
            .open_table(USERNAMES)?
            .get(username.to_lowercase().as_str())?
            .map(|v| v.value());
        Ok(id)
    }

    /// The messages behind search hits as `user` may see them now, in the given order: left
    /// out are those of conversations `user` is no longer in, deleted ones, DMs withheld from
    /// them, and any that no longer exist; reactions of someone they block are left off DMs.
    pub fn search_hits(&self, user: u64, hits: &[(ConversationId, u64)]) -> Result<Vec<Message>> {
        let txn = self.read()?;
        let users = txn.open_table(USERS)?;
        let room_members = txn.open_table(ROOM_MEMBERS)?;
        let messages = txn.open_table(MESSAGES)?;
        let mut member_of: HashMap<&str, bool> = HashMap::new();
        let mut out = Vec::new();
        for (conversation, seq) in hits {
            let id = conversation.as_str();
            let member = match member_of.get(id) {
                Some(&known) => known,
                None => {
                    let known = is_member(&users, &room_members, conversation, user)?;
                    member_of.insert(id, known);
                    known
                }
            };
            if !member {
                continue;
            }
            let Some(value) = messages.get((id, *seq))? else {
                continue;
            };
            let Some((mut message, withheld)) = readable_message(id, *seq, value.value()) else {
                continue;
            };
            if message.deleted || (withheld && message.from != user) {
                continue;
            }
            resolve_replies(&messages, id, std::slice::from_mut(&mut message))?;
            out.push(message);
        }
        people::hide_blocked_reactions(user, &mut out, |other| {
            Ok(txn.open_table(BLOCKS)?.get((user, other))?.is_some())
        })?;
        Ok(out)
    }

    /// Up to `limit` messages after `cursor` in key order (deleted ones included, so the index
    /// can drop them), and the cursor to continue from; `None` once there are no more.
    pub fn messages_after(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<(Vec<Message>, Option<ScanCursor>)> {
        let txn = self.read()?;
        let messages = txn.open_table(MESSAGES)?;
        let mut out = Vec::with_capacity(limit);
        let mut last = None;
        let range = match cursor {
            Some((id, seq)) => messages.range((id.as_str(), seq.saturating_add(1))..)?,
            None => messages.range::<(&str, u64)>(..)?,
        };
        for entry in range {
            let (key, value) = entry?;
            let (id, seq) = key.value();
            last = Some((id.to_owned(), seq));
            if let Some((message, _)) = readable_message(id, seq, value.value()) {
                out.push(message);
            }
            if out.len() == limit {
                break;
            }
        }
        let more = out.len() == limit;
        Ok((out, last.filter(|_| more)))
    }
}
