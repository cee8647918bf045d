//! Figures about the stored chat for the admin page.

use redb::ReadableTable;

use super::chat::decode_or_skip;
use super::{CONVERSATIONS, MESSAGES, Result, Store};

impl Store {
    /// Messages sent at or after `since` (unix ms), deleted ones included. Reads only the
    /// conversations active since then, each from its newest message back, so the cost is
    /// the day's messages, not the history's.
    pub fn messages_since(&self, since: u64) -> Result<u64> {
        let txn = self.read()?;
        let conversations = txn.open_table(CONVERSATIONS)?;
        let messages = txn.open_table(MESSAGES)?;
        let mut count = 0;
        for entry in conversations.iter()? {
            let (id, record) = entry?;
            let id = id.value();
            let Some(record) = decode_or_skip(record.value(), || format!("conversation {id}"))
            else {
                continue;
            };
            if record.last_activity < since {
                continue;
            }
            for entry in messages.range((id, 1)..=(id, record.last_seq))?.rev() {
                let (key, value) = entry?;
                let seq = key.value().1;
                let Some(message) = decode_or_skip(value.value(), || format!("message {id} {seq}"))
                else {
                    continue;
                };
                if message.sent_at < since {
                    break;
                }
                count += 1;
            }
        }
        Ok(count)
    }
}
