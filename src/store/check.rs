//! `confab check`: verifies the whole file offline, decodes every record, and recomputes what
//! is derived from history (each conversation's last seq, who is in it, each member's unread
//! count), reporting every difference and, when asked, fixing it.
//!
//! What can be rebuilt from history is repaired; what cannot (a damaged message or account)
//! is reported, since only a backup has it. The server skips damaged messages when it serves
//! history, so they never take a conversation down.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::chat::{ConversationId, ConversationRecord, MembershipRecord, MessageRecord};
use super::codec::Encoded;
use super::users::SessionRecord;
use super::{
    CONVERSATIONS, MEMBERSHIPS, MESSAGES, ROOM_MEMBERS, Result, SESSIONS, USER_SESSIONS, USERNAMES,
    USERS,
};

/// What `confab check` found, and what it fixed.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// How long redb's page checksum verification of the whole file took.
    pub integrity_time: Duration,
    /// redb found damaged pages and rolled back to the last good commit.
    pub rolled_back: bool,
    pub users: u64,
    pub conversations: u64,
    pub messages: u64,
    /// Blobs the database names (uploads, thumbnails, profile pictures): each must be on disk.
    pub blobs: Vec<String>,
    /// Differences, each one line; fixed ones are also in `repaired`.
    pub problems: Vec<String>,
    /// Problems that `--repair` fixed.
    pub repaired: usize,
}

impl CheckReport {
    /// Problems left after this run.
    pub fn unresolved(&self) -> usize {
        self.problems.len() - self.repaired
    }
}

/// What history says a conversation should look like.
#[derive(Default)]
struct Derived {
    last_seq: u64,
    last_activity: u64,
    /// (seq, sender, withheld from the recipient) of every readable message, for unread
    /// counts.
    senders: Vec<(u64, u64, bool)>,
}

/// Checks the database at `path` (which no server may have open) and, with `repair`, fixes
/// what history can rebuild.
pub fn check(path: &Path, repair: bool) -> Result<CheckReport> {
    let mut db = super::file::open_database(path, crate::config::limits::DB_CACHE_BYTES)?;
    let mut report = CheckReport::default();

    let started = Instant::now();
    let integrity = db.check_integrity();
    report.integrity_time = started.elapsed();
    match integrity {
        Ok(true) => {}
        Ok(false) => {
            report.rolled_back = true;
            report.problems.push(
                "damaged pages were found; the file was rolled back to its last intact commit"
                    .into(),
            );
            report.repaired += 1;
        }
        Err(e) => {
            report.problems.push(format!(
                "some pages are damaged ({e}); the records that can still be read are checked below, restore a backup for the rest"
            ));
            // A failed check leaves the handle unusable for writes; start afresh.
            close(db);
            db = super::file::open_database(path, crate::config::limits::DB_CACHE_BYTES)?;
        }
    }

    let txn = db.begin_read()?;
    let users = check_users(&txn, &mut report)?;
    let derived = derive_conversations(&txn, &mut report)?;
    drop(txn);

    let txn = db.begin_write()?;
    check_sessions(&txn, &users, &mut report, repair)?;
    check_conversations(&txn, &derived, &mut report, repair)?;
    super::files::check_blob_refs(&txn, &mut report, repair)?;
    if repair {
        txn.commit()?;
    } else {
        txn.abort()?;
    }
    close(db);
    Ok(report)
}

fn close(db: Database) {
    if let Err(e) = db.close() {
        tracing::warn!(error = %e, "closing the database after the check");
    }
}

/// Every account decodes, and the username index agrees with the accounts.
fn check_users(txn: &redb::ReadTransaction, report: &mut CheckReport) -> Result<BTreeSet<u64>> {
    let mut ids = BTreeSet::new();
    for entry in txn.open_table(USERS)?.iter()? {
        let (id, record) = entry?;
        let id = id.value();
        ids.insert(id);
        if let Err(e) = record.value().decode() {
            report.problems.push(format!(
                "account {id} is damaged and cannot be rebuilt ({e}); restore a backup"
            ));
        }
    }
    report.users = ids.len() as u64;
    for entry in txn.open_table(USERNAMES)?.iter()? {
        let (name, id) = entry?;
        if !ids.contains(&id.value()) {
            report.problems.push(format!(
                "username '{}' points to account {}, which does not exist",
                name.value(),
                id.value()
            ));
        }
    }
    Ok(ids)
}

/// Reads every message once, and what each conversation should say about itself.
fn derive_conversations(
    txn: &redb::ReadTransaction,
    report: &mut CheckReport,
) -> Result<BTreeMap<String, Derived>> {
    let mut derived: BTreeMap<String, Derived> = BTreeMap::new();
    let messages = txn.open_table(MESSAGES)?;
    report.messages = messages.len()?;
    for entry in messages.iter()? {
        let (key, value) = entry?;
        let (id, seq) = key.value();
        let conversation = derived.entry(id.to_owned()).or_default();
        conversation.last_seq = conversation.last_seq.max(seq);
        match value.value().decode() {
            Ok(MessageRecord {
                from,
                sent_at,
                withheld,
                deleted,
                ..
            }) => {
                // A deleted or withheld message is unread for nobody.
                conversation.senders.push((seq, from, withheld || deleted));
                conversation.last_activity = conversation.last_activity.max(sent_at);
            }
            Err(e) => report.problems.push(format!(
                "message {seq} of {id} is damaged and cannot be rebuilt ({e}); confab skips it"
            )),
        }
    }
    // Conversations with no readable message still have a record to check.
    for entry in txn.open_table(CONVERSATIONS)?.iter()? {
        derived.entry(entry?.0.value().to_owned()).or_default();
    }
    report.conversations = derived.len() as u64;
    Ok(derived)
}

/// Sessions decode and are indexed by their user; a damaged one is removed (its owner signs
/// in again).
fn check_sessions(
    txn: &WriteTransaction,
    users: &BTreeSet<u64>,
    report: &mut CheckReport,
    repair: bool,
) -> Result<()> {
    let mut sessions = txn.open_table(SESSIONS)?;
    let mut by_user = txn.open_table(USER_SESSIONS)?;
    let mut remove = Vec::new();
    for entry in sessions.iter()? {
        let (id, record) = entry?;
        let id = id.value();
        match record.value().decode() {
            Ok(SessionRecord { user_id, .. }) if users.contains(&user_id) => {
                if by_user.get((user_id, id))?.is_none() {
                    report.problems.push(format!(
                        "a session of account {user_id} is missing from its index"
                    ));
                    if repair {
                        by_user.insert((user_id, id), ())?;
                        report.repaired += 1;
                    }
                }
            }
            Ok(SessionRecord { user_id, .. }) => {
                report.problems.push(format!(
                    "a session belongs to account {user_id}, which does not exist"
                ));
                remove.push(id);
            }
            Err(e) => {
                report.problems.push(format!(
                    "a session record is damaged ({e}); it will sign out"
                ));
                remove.push(id);
            }
        }
    }
    if repair {
        for id in remove {
            sessions.remove(id)?;
            report.repaired += 1;
        }
    }
    Ok(())
}

/// Each conversation's record and each member's position agree with its history.
fn check_conversations(
    txn: &WriteTransaction,
    derived: &BTreeMap<String, Derived>,
    report: &mut CheckReport,
    repair: bool,
) -> Result<()> {
    let mut conversations = txn.open_table(CONVERSATIONS)?;
    let mut memberships = txn.open_table(MEMBERSHIPS)?;
    let room_members = txn.open_table(ROOM_MEMBERS)?;
    for (id, history) in derived {
        let stored = conversations.get(id.as_str())?.map(|r| r.value().decode());
        let is_room = id.starts_with("room:");
        let members = match ConversationId::parse(id).and_then(|c| c.dm_members()) {
            Some(pair) => pair.to_vec(),
            None => {
                let mut members = Vec::new();
                for entry in room_members.range((id.as_str(), 0)..=(id.as_str(), u64::MAX))? {
                    members.push(entry?.0.value().1);
                }
                members
            }
        };
        let problem = match &stored {
            None if is_room => {
                report.problems.push(format!(
                    "room {id} has messages but no record; its name and settings are lost, restore a backup"
                ));
                continue;
            }
            Some(Err(e)) if is_room => {
                report.problems.push(format!(
                    "room {id}'s record is damaged ({e}) and cannot be rebuilt; restore a backup"
                ));
                continue;
            }
            None => Some(format!("conversation {id} has messages but no record")),
            Some(Err(e)) => Some(format!("conversation {id}'s record is damaged ({e})")),
            Some(Ok(record)) if record.last_seq != history.last_seq => Some(format!(
                "conversation {id} says its last message is {} but history ends at {}",
                record.last_seq, history.last_seq
            )),
            Some(Ok(record)) if !is_room && record.members != members => Some(format!(
                "conversation {id} lists members {:?} but its id names {members:?}",
                record.members
            )),
            Some(Ok(record))
                if record
                    .room
                    .as_ref()
                    .is_some_and(|r| r.member_count as usize != members.len()) =>
            {
                Some(format!(
                    "room {id} counts a different number of members than it has ({})",
                    members.len()
                ))
            }
            Some(Ok(_)) => None,
        };
        if let Some(problem) = problem {
            report.problems.push(problem);
            if repair {
                let previous = stored.and_then(|r| r.ok());
                let expected = ConversationRecord::rebuilt(
                    previous,
                    members.clone(),
                    history.last_seq,
                    history.last_activity,
                );
                conversations.insert(id.as_str(), Encoded::new(&expected))?;
                report.repaired += 1;
            }
        }

        for &member in &members {
            let stored = memberships
                .get((member, id.as_str()))?
                .map(|m| m.value().decode());
            let (read_seq, notify) = match &stored {
                Some(Ok(m)) => (m.read_seq.min(history.last_seq), m.notify),
                _ => (0, None),
            };
            // Rooms derive unread from read_seq and store 0 (see store::chat).
            let unread = if is_room {
                0
            } else {
                history
                    .senders
                    .iter()
                    .filter(|&&(seq, from, withheld)| seq > read_seq && from != member && !withheld)
                    .count() as u64
            };
            let expected = MembershipRecord {
                read_seq,
                unread,
                notify,
            };
            let problem = match &stored {
                None if history.last_seq == 0 && !is_room => None,
                None => Some(format!("user {member} is missing from conversation {id}")),
                Some(Err(e)) => Some(format!(
                    "user {member}'s place in conversation {id} is damaged ({e})"
                )),
                Some(Ok(m)) if m.read_seq != read_seq || m.unread != unread => Some(format!(
                    "user {member} in conversation {id}: stored unread {} (read up to {}), history says {unread} (read up to {read_seq})",
                    m.unread, m.read_seq
                )),
                Some(Ok(_)) => None,
            };
            if let Some(problem) = problem {
                report.problems.push(problem);
                if repair {
                    memberships.insert((member, id.as_str()), Encoded::new(&expected))?;
                    report.repaired += 1;
                }
            }
        }
    }
    Ok(())
}
