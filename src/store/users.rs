//! Accounts and sessions.

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, Table, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::codec::{Encoded, Record, Stored};
use super::{
    LAST_SEEN, Result, SESSIONS, Store, StoreError, USER_SESSIONS, USERNAMES, USERS, now_secs,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
}

/// An account as the rest of the server sees it (never the password hash).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: u64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    pub must_change_password: bool,
    /// Unix seconds of the last time the user was connected, if ever.
    pub last_seen: Option<u64>,
    /// The profile picture's version (changes with the picture); none: initials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// What every member may know about this account.
    pub fn directory_entry(&self) -> DirectoryEntry<'_> {
        DirectoryEntry {
            id: self.id,
            username: &self.username,
            display_name: &self.display_name,
            role: self.role,
            disabled: self.disabled,
            last_seen: self.last_seen,
            avatar: self.avatar.as_deref(),
        }
    }
}

/// An entry of the office directory (`GET /api/users`, `user` frames).
#[derive(Debug, Serialize)]
pub struct DirectoryEntry<'a> {
    pub id: u64,
    pub username: &'a str,
    pub display_name: &'a str,
    pub role: Role,
    pub disabled: bool,
    pub last_seen: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar: Option<&'a str>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct UserRecord {
    username: String,
    display_name: String,
    password_hash: String,
    role: Role,
    disabled: bool,
    must_change_password: bool,
    created_at: u64,
    /// The profile picture's blob (sha256 hex), if any.
    pub(super) avatar: Option<String>,
}

/// Format 1 (release 0.1): no profile pictures.
#[derive(Deserialize)]
struct UserRecordV1 {
    username: String,
    display_name: String,
    password_hash: String,
    role: Role,
    disabled: bool,
    must_change_password: bool,
    created_at: u64,
}

impl Record for UserRecord {
    const TYPE_NAME: &'static str = "confab::User";
    const VERSION: u8 = 2;

    fn decode_older(version: u8, body: &[u8]) -> Option<Result<Self, postcard::Error>> {
        (version == 1).then(|| {
            postcard::from_bytes::<UserRecordV1>(body).map(|v1| UserRecord {
                username: v1.username,
                display_name: v1.display_name,
                password_hash: v1.password_hash,
                role: v1.role,
                disabled: v1.disabled,
                must_change_password: v1.must_change_password,
                created_at: v1.created_at,
                avatar: None,
            })
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SessionRecord {
    pub(super) user_id: u64,
    created_at: u64,
    expires_at: u64,
}

impl Record for SessionRecord {
    const TYPE_NAME: &'static str = "confab::Session";
    const VERSION: u8 = 1;
}

/// A server-side login session; a JWT is honoured only while its session exists.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    pub id: u128,
    pub user_id: u64,
    pub expires_at: u64,
}

/// A validated account to create. `username` must already be lower case and valid.
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: Role,
    pub must_change_password: bool,
}

/// Changes an administrator makes to an account; `None` leaves a field alone.
#[derive(Debug, Default)]
pub struct UserPatch {
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

impl Store {
    pub fn user_count(&self) -> Result<u64> {
        let txn = self.read()?;
        Ok(txn.open_table(USERS)?.len()?)
    }

    /// Creates the first administrator, refusing if any account exists (checked in the same
    /// transaction, so two setup requests cannot both win).
    pub fn create_first_admin(&self, new: NewUser) -> Result<User> {
        let user = self.write(|txn| {
            if !txn.open_table(USERS)?.is_empty()? {
                return Err(StoreError::AlreadySetUp);
            }
            insert_user(txn, new)
        })?;
        self.members_changed(&super::ConversationId::general());
        Ok(user)
    }

    /// A new account, already in General.
    pub fn create_user(&self, new: NewUser) -> Result<User> {
        let user = self.write(|txn| insert_user(txn, new))?;
        self.members_changed(&super::ConversationId::general());
        Ok(user)
    }

    pub fn user(&self, id: u64) -> Result<Option<User>> {
        user_in(&self.read()?, id)
    }

    /// The account and its password hash, for checking a login.
    pub fn credentials(&self, username: &str) -> Result<Option<(User, String)>> {
        let txn = self.read()?;
        let Some(id) = txn
            .open_table(USERNAMES)?
            .get(username.to_ascii_lowercase().as_str())?
            .map(|v| v.value())
        else {
            return Ok(None);
        };
        let Some(record) = txn.open_table(USERS)?.get(id)? else {
            return Ok(None);
        };
        let record = record.value().decode()?;
        let seen = txn.open_table(LAST_SEEN)?.get(id)?.map(|v| v.value());
        Ok(Some((to_user(id, &record, seen), record.password_hash)))
    }

    pub fn password_hash(&self, id: u64) -> Result<Option<String>> {
        let txn = self.read()?;
        let users = txn.open_table(USERS)?;
        let record = users.get(id)?;
        Ok(match record {
            Some(r) => Some(r.value().decode()?.password_hash),
            None => None,
        })
    }

    /// Every account, ordered by username.
    pub fn list_users(&self) -> Result<Vec<User>> {
        let txn = self.read()?;
        let users = txn.open_table(USERS)?;
        let last_seen = txn.open_table(LAST_SEEN)?;
        let mut out = Vec::new();
        for entry in txn.open_table(USERNAMES)?.iter()? {
            let id = entry?.1.value();
            if let Some(record) = users.get(id)? {
                let seen = last_seen.get(id)?.map(|v| v.value());
                out.push(to_user(id, &record.value().decode()?, seen));
            }
        }
        Ok(out)
    }

    /// Applies an administrator's change. Disabling also revokes every session; the revoked
    /// session ids are returned so live connections can be closed.
    pub fn update_user(&self, id: u64, patch: UserPatch) -> Result<(User, Vec<u128>)> {
        self.write(|txn| {
            let mut users = txn.open_table(USERS)?;
            let mut record = match users.get(id)? {
                Some(r) => r.value().decode()?,
                None => return Err(StoreError::NoSuchUser),
            };
            if let Some(username) = patch.username
                && username != record.username
            {
                let mut names = txn.open_table(USERNAMES)?;
                if names.get(username.as_str())?.is_some() {
                    return Err(StoreError::UsernameTaken);
                }
                names.remove(record.username.as_str())?;
                names.insert(username.as_str(), id)?;
                record.username = username;
            }
            if let Some(display_name) = patch.display_name {
                record.display_name = display_name;
            }
            if let Some(role) = patch.role {
                record.role = role;
            }
            if let Some(disabled) = patch.disabled {
                record.disabled = disabled;
            }
            users.insert(id, Encoded::new(&record))?;
            drop(users);
            if !has_enabled_admin(txn)? {
                return Err(StoreError::LastAdmin);
            }
            let revoked = if record.disabled {
                revoke_sessions(txn, id, None)?
            } else {
                Vec::new()
            };
            let seen = txn.open_table(LAST_SEEN)?.get(id)?.map(|v| v.value());
            Ok((to_user(id, &record, seen), revoked))
        })
    }

    /// Replaces a password and revokes every session but `keep`. Returns the revoked ids.
    pub fn set_password(
        &self,
        id: u64,
        password_hash: String,
        must_change_password: bool,
        keep: Option<u128>,
    ) -> Result<Vec<u128>> {
        self.write(|txn| {
            let mut users = txn.open_table(USERS)?;
            let mut record = match users.get(id)? {
                Some(r) => r.value().decode()?,
                None => return Err(StoreError::NoSuchUser),
            };
            record.password_hash = password_hash;
            record.must_change_password = must_change_password;
            users.insert(id, Encoded::new(&record))?;
            drop(users);
            revoke_sessions(txn, id, keep)
        })
    }

    pub fn create_session(&self, user_id: u64, ttl_secs: u64) -> Result<Session> {
        let now = now_secs();
        let session = Session {
            id: rand::random(),
            user_id,
            expires_at: now + ttl_secs,
        };
        let record = SessionRecord {
            user_id,
            created_at: now,
            expires_at: session.expires_at,
        };
        self.write(|txn| {
            txn.open_table(SESSIONS)?
                .insert(session.id, Encoded::new(&record))?;
            txn.open_table(USER_SESSIONS)?
                .insert((user_id, session.id), ())?;
            Ok(session)
        })
    }

    /// The session if it exists and has not expired.
    pub fn session(&self, id: u128) -> Result<Option<Session>> {
        session_in(&self.read()?, id)
    }

    /// The account behind a live session `id` of `user_id`, in one read: what every signed-in
    /// request checks. `None` if the session ended, expired or belongs to someone else.
    pub fn session_user(&self, id: u128, user_id: u64) -> Result<Option<User>> {
        let txn = self.read()?;
        match session_in(&txn, id)? {
            Some(session) if session.user_id == user_id => user_in(&txn, user_id),
            _ => Ok(None),
        }
    }

    pub fn delete_session(&self, id: u128) -> Result<()> {
        self.write(|txn| {
            let mut sessions = txn.open_table(SESSIONS)?;
            let removed = sessions.remove(id)?.map(|r| r.value().decode());
            if let Some(record) = removed {
                txn.open_table(USER_SESSIONS)?
                    .remove((record?.user_id, id))?;
            }
            Ok(())
        })
    }
}

/// The session `id` as `txn` sees it, if it exists and has not expired.
fn session_in(txn: &ReadTransaction, id: u128) -> Result<Option<Session>> {
    let Some(record) = txn.open_table(SESSIONS)?.get(id)? else {
        return Ok(None);
    };
    let record = record.value().decode()?;
    Ok((record.expires_at > now_secs()).then_some(Session {
        id,
        user_id: record.user_id,
        expires_at: record.expires_at,
    }))
}

/// The account `id` as `txn` sees it, with when it was last seen.
fn user_in(txn: &ReadTransaction, id: u64) -> Result<Option<User>> {
    let Some(record) = txn.open_table(USERS)?.get(id)? else {
        return Ok(None);
    };
    let seen = txn.open_table(LAST_SEEN)?.get(id)?.map(|v| v.value());
    Ok(Some(to_user(id, &record.value().decode()?, seen)))
}

/// Drops sessions expired at `now`, so the table does not grow forever. Part of a writer batch.
pub(super) fn purge_expired_sessions(
    sessions: &mut Table<u128, Stored<SessionRecord>>,
    by_user: &mut Table<(u64, u128), ()>,
    now: u64,
) -> Result<usize> {
    let mut expired = Vec::new();
    for entry in sessions.iter()? {
        let (id, record) = entry?;
        // A session that cannot be decoded cannot be used either; drop it too.
        match record.value().decode() {
            Ok(record) if record.expires_at > now => {}
            Ok(record) => expired.push((Some(record.user_id), id.value())),
            Err(_) => expired.push((None, id.value())),
        }
    }
    for (user_id, id) in &expired {
        sessions.remove(*id)?;
        if let Some(user_id) = user_id {
            by_user.remove((*user_id, *id))?;
        }
    }
    Ok(expired.len())
}

fn insert_user(txn: &WriteTransaction, new: NewUser) -> Result<User> {
    let mut names = txn.open_table(USERNAMES)?;
    if names.get(new.username.as_str())?.is_some() {
        return Err(StoreError::UsernameTaken);
    }
    let mut users = txn.open_table(USERS)?;
    let id = match users.last()? {
        Some((id, _)) => id.value() + 1,
        None => 1,
    };
    let record = UserRecord {
        username: new.username,
        display_name: new.display_name,
        password_hash: new.password_hash,
        role: new.role,
        disabled: false,
        must_change_password: new.must_change_password,
        created_at: now_secs(),
        avatar: None,
    };
    names.insert(record.username.as_str(), id)?;
    users.insert(id, Encoded::new(&record))?;
    drop((names, users));
    super::rooms::join_general(txn, id)?;
    Ok(to_user(id, &record, None))
}

fn has_enabled_admin(txn: &WriteTransaction) -> Result<bool> {
    for entry in txn.open_table(USERS)?.iter()? {
        let record = entry?.1.value().decode()?;
        if record.role == Role::Admin && !record.disabled {
            return Ok(true);
        }
    }
    Ok(false)
}

fn revoke_sessions(txn: &WriteTransaction, user_id: u64, keep: Option<u128>) -> Result<Vec<u128>> {
    let mut by_user = txn.open_table(USER_SESSIONS)?;
    let mut ids = Vec::new();
    for entry in by_user.range((user_id, 0u128)..=(user_id, u128::MAX))? {
        let id = entry?.0.value().1;
        if Some(id) != keep {
            ids.push(id);
        }
    }
    let mut sessions = txn.open_table(SESSIONS)?;
    for id in &ids {
        sessions.remove(*id)?;
        by_user.remove((user_id, *id))?;
    }
    Ok(ids)
}

fn to_user(id: u64, record: &UserRecord, last_seen: Option<u64>) -> User {
    User {
        id,
        username: record.username.clone(),
        display_name: record.display_name.clone(),
        role: record.role,
        disabled: record.disabled,
        must_change_password: record.must_change_password,
        last_seen,
        avatar: record.avatar.as_deref().map(avatar_version),
    }
}

/// What clients put in the picture's URL: changes whenever the picture does.
pub(super) fn avatar_version(blob: &str) -> String {
    blob.chars().take(12).collect()
}

impl UserRecord {
    pub(super) fn is_disabled(&self) -> bool {
        self.disabled
    }

    pub(super) fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}
