//! Upgrades: a database written by release 0.1 opens in this build with everything in it, stays
//! writable, and survives a restart. The fixture and how it was made: tests/fixtures/README.md.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::ws::{Socket, seq};
use common::{Client, StatusCode, TestServer, Value, json};
use serde::Deserialize;

/// The checked-in fixture. Tests work on a copy: the server rewrites the file it opens.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v0.1");

/// Conversations a release may add to an old database as it upgrades it (the rooms release's
/// General, `room:1`, has every account in it). Any other conversation in a list must be the
/// fixture's.
const ADDED_BY_UPGRADES: &[&str] = &["room:1"];

/// `expected.json`: what release 0.1 itself answered about the database it wrote.
#[derive(Debug, Deserialize)]
struct Fixture {
    release: String,
    users: Vec<User>,
    conversations: Vec<Conversation>,
    alice_session: SavedSession,
}

#[derive(Debug, Deserialize)]
struct User {
    id: i64,
    username: String,
    display_name: String,
    role: String,
    disabled: bool,
    must_change_password: bool,
    last_seen: Option<i64>,
    password: String,
}

#[derive(Debug, Deserialize)]
struct Conversation {
    id: String,
    kind: String,
    members: Vec<i64>,
    messages: Vec<StoredMessage>,
    reads: Vec<ReadState>,
}

#[derive(Debug, Deserialize)]
struct StoredMessage {
    seq: u64,
    from: i64,
    body: String,
    sent_at: i64,
}

/// One member's place in a conversation.
#[derive(Debug, Deserialize)]
struct ReadState {
    user: i64,
    read_seq: u64,
    unread: u64,
}

#[derive(Debug, Deserialize)]
struct SavedSession {
    username: String,
    token: String,
    expires_at: i64,
}

impl Fixture {
    fn load() -> Fixture {
        let path = Path::new(FIXTURE).join("expected.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
    }

    fn user(&self, username: &str) -> &User {
        self.users
            .iter()
            .find(|u| u.username == username)
            .unwrap_or_else(|| panic!("no {username} in the fixture"))
    }

    fn has_conversation(&self, id: &str) -> bool {
        self.conversations.iter().any(|c| c.id == id)
    }

    /// The fixture's entries of a conversation list, in the server's order; anything else must
    /// be a conversation an upgrade adds.
    #[track_caller]
    fn own_entries(&self, list: &Value, what: &str) -> Value {
        let list = list
            .as_array()
            .unwrap_or_else(|| panic!("{what}: a list, got {list}"));
        let (own, added): (Vec<&Value>, Vec<&Value>) = list
            .iter()
            .partition(|c| self.has_conversation(c["id"].as_str().unwrap_or_default()));
        for extra in added {
            assert!(
                ADDED_BY_UPGRADES.iter().any(|id| extra["id"] == *id),
                "{what}: {} is neither in the fixture nor in ADDED_BY_UPGRADES",
                extra["id"]
            );
        }
        own.into_iter().cloned().collect()
    }

    fn message_count(&self) -> usize {
        self.conversations.iter().map(|c| c.messages.len()).sum()
    }

    /// What the protocol says a send changes: the sender has read up to it, every other
    /// member has one more unread.
    fn record_send(&mut self, message: &Value) {
        let conversation = self
            .conversations
            .iter_mut()
            .find(|c| c.id == message["conversation"])
            .unwrap_or_else(|| panic!("a message in a fixture conversation, got {message}"));
        let stored = StoredMessage {
            seq: seq(message),
            from: message["from"].as_i64().expect("from"),
            body: message["body"].as_str().expect("body").to_owned(),
            sent_at: message["sent_at"].as_i64().expect("sent_at"),
        };
        for member in &mut conversation.reads {
            if member.user == stored.from {
                (member.read_seq, member.unread) = (stored.seq, 0);
            } else {
                member.unread += 1;
            }
        }
        conversation.messages.push(stored);
    }
}

impl User {
    /// The user object as `GET /api/admin/users` and `POST /api/login` show it. `last_seen` is
    /// left out: it changes whenever someone connects (see `assert_users`).
    fn object(&self) -> Value {
        json!({"id": self.id, "username": self.username, "display_name": self.display_name,
               "role": self.role, "disabled": self.disabled,
               "must_change_password": self.must_change_password})
    }
}

impl StoredMessage {
    fn object(&self, conversation: &str) -> Value {
        json!({"conversation": conversation, "seq": self.seq, "from": self.from,
               "body": self.body, "sent_at": self.sent_at})
    }
}

/// `value` with only the keys `like` has, so a later release may add fields to its answers.
fn project(value: &Value, like: &Value) -> Value {
    match (value, like) {
        (Value::Object(got), Value::Object(want)) => want
            .iter()
            .map(|(key, want)| {
                let got = got.get(key).unwrap_or(&Value::Null);
                (key.clone(), project(got, want))
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
        (Value::Array(got), Value::Array(want)) if got.len() == want.len() => got
            .iter()
            .zip(want)
            .map(|(got, want)| project(got, want))
            .collect(),
        _ => value.clone(),
    }
}

#[track_caller]
fn assert_shows(got: &Value, want: &Value, what: &str) {
    assert_eq!(&project(got, want), want, "{what}");
}

/// Lists of messages or conversations: first the keys in order, then item by item, so a
/// failure names the one item that differs instead of printing both lists whole.
#[track_caller]
fn assert_shows_each(got: &Value, want: &Value, key: &str, what: &str) {
    let keys = |list: &Value| -> Vec<Value> {
        let list = list
            .as_array()
            .unwrap_or_else(|| panic!("{what}: a list, got {list}"));
        list.iter().map(|item| item[key].clone()).collect()
    };
    assert_eq!(keys(got), keys(want), "{what}: the {key}s in order");
    for (got, want) in got
        .as_array()
        .into_iter()
        .flatten()
        .zip(want.as_array().into_iter().flatten())
    {
        assert_shows(got, want, &format!("{what}, {key} {}", want[key]));
    }
}

/// A copy of the fixture database in a fresh directory the test owns.
fn copy_of_fixture() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("confab-upgrade-")
        .tempdir()
        .expect("temp dir");
    std::fs::copy(
        Path::new(FIXTURE).join("confab.redb"),
        dir.path().join("confab.redb"),
    )
    .expect("copy the fixture database");
    dir
}

/// `confab check` on the data directory: exit 0, no problems, and the fixture's counts.
fn assert_check_passes(dir: &Path, users: usize, conversations: usize, messages: usize) {
    let dir = dir.to_str().expect("utf-8 temp path");
    let check = common::run_cli(&["check", "--data-dir", dir]);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(check.status.success(), "confab check failed:\n{report}");
    assert!(report.contains("no problems found"), "{report}");
    let counts = format!("{users} users, {conversations} conversations, {messages} messages");
    assert!(report.contains(&counts), "expected {counts}:\n{report}");
}

/// Everyone signs in with their password, except the disabled account, which is refused as
/// disabled (so its password still checks out). Returns a client per active user.
async fn everyone_logs_in(server: &TestServer, fixture: &Fixture) -> BTreeMap<String, Client> {
    let mut clients = BTreeMap::new();
    for user in &fixture.users {
        let (status, body, _) = common::login(server, &user.username, &user.password).await;
        if user.disabled {
            common::assert_error(&(status, body), StatusCode::FORBIDDEN, "account_disabled");
            continue;
        }
        assert_eq!(status, StatusCode::OK, "login as {}: {body}", user.username);
        assert_shows(&body["user"], &user.object(), "the user a login answers");
        let token = body["token"].as_str().expect("login token");
        let client = Client::new(server, token).with_user(body["user"].clone());
        clients.insert(user.username.clone(), client);
    }
    clients
}

#[derive(Clone, Copy)]
enum LastSeen {
    /// Nobody has connected since the fixture was written: exactly what it recorded.
    AsStored,
    /// Test sockets came and went: never older than recorded, and never set for a user who
    /// has not connected.
    NotBefore,
}

async fn assert_users(admin: &Client, fixture: &Fixture, last_seen: LastSeen) {
    let got = admin.admin_users().await;
    let want: Vec<Value> = fixture.users.iter().map(User::object).collect();
    assert_shows_each(
        &Value::from(got.clone()),
        &Value::from(want),
        "id",
        "the users",
    );
    for (got, user) in got.iter().zip(&fixture.users) {
        let seen = got["last_seen"].as_i64();
        match (last_seen, user.last_seen) {
            (LastSeen::AsStored, stored) | (LastSeen::NotBefore, stored @ None) => {
                assert_eq!(seen, stored, "{}'s last_seen", user.username);
            }
            (LastSeen::NotBefore, Some(stored)) => assert!(
                seen.is_some_and(|seen| seen >= stored),
                "{}'s last_seen went from {stored} to {seen:?}",
                user.username
            ),
        }
    }
}

/// The session alice had when release 0.1 stopped still works, unless it has simply expired.
async fn assert_saved_session(server: &TestServer, fixture: &Fixture) {
    let saved = &fixture.alice_session;
    if saved.expires_at <= common::now_secs() + 60 {
        println!(
            "SKIPPED: the fixture's saved session for {} expired at {} (sessions last 30 days), \
             so only fresh logins are checked",
            saved.username, saved.expires_at
        );
        return;
    }
    let me = Client::new(server, &saved.token).me().await;
    assert_shows(
        &me,
        &fixture.user(&saved.username).object(),
        "GET /api/me with the saved token",
    );
}

/// Every message of `conversation`, oldest first, read in small pages both ways: backwards
/// with `before` and forwards with `after`.
async fn history_both_ways(client: &Client, conversation: &str) -> (Vec<Value>, Vec<Value>) {
    const PAGE: usize = 7;
    let page = |query: String| async move {
        let path = format!("/api/conversations/{conversation}/messages?limit={PAGE}&{query}");
        let (status, page) = client.get(&path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {page}");
        let messages = page["messages"].as_array().expect("messages").clone();
        (messages, page["has_more"] == true)
    };

    let mut backwards: Vec<Vec<Value>> = Vec::new();
    let mut before = String::new();
    loop {
        let (messages, has_more) = page(before.clone()).await;
        let Some(first) = messages.first() else { break };
        before = format!("before={}", seq(first));
        backwards.push(messages);
        if !has_more {
            break;
        }
    }
    let backwards = backwards.into_iter().rev().flatten().collect();

    let mut forwards: Vec<Value> = Vec::new();
    loop {
        let after = forwards.last().map_or(0, seq);
        let (messages, has_more) = page(format!("after={after}")).await;
        forwards.extend(messages);
        if !has_more {
            break;
        }
    }
    (backwards, forwards)
}

/// The conversation summaries `user` must see, most recent activity first.
fn summaries_for(fixture: &Fixture, user: i64) -> Value {
    let mut mine: Vec<&Conversation> = fixture
        .conversations
        .iter()
        .filter(|c| c.members.contains(&user))
        .collect();
    mine.sort_by_key(|c| std::cmp::Reverse(c.messages.last().map(|m| m.sent_at)));
    mine.into_iter()
        .map(|c| {
            let me = c
                .reads
                .iter()
                .find(|r| r.user == user)
                .expect("own read state");
            let reads: Vec<Value> = c
                .members
                .iter()
                .filter(|&&m| m != user)
                .map(|&other| {
                    let seq = c
                        .reads
                        .iter()
                        .find(|r| r.user == other)
                        .map_or(0, |r| r.read_seq);
                    json!({"user": other, "seq": seq})
                })
                .collect();
            json!({"id": c.id, "kind": c.kind, "members": c.members,
                   "last_seq": c.messages.len(), "read_seq": me.read_seq, "unread": me.unread,
                   "last_message": c.messages.last().map(|m| m.object(&c.id)),
                   "reads": reads})
        })
        .collect()
}

/// Histories, conversation lists and `hello` frames all agree with the fixture.
async fn assert_conversations(
    server: &TestServer,
    clients: &BTreeMap<String, Client>,
    fixture: &Fixture,
) {
    for conversation in &fixture.conversations {
        let reader = clients
            .values()
            .find(|c| conversation.members.contains(&c.id()))
            .unwrap_or_else(|| panic!("an active member of {}", conversation.id));
        let want: Value = conversation
            .messages
            .iter()
            .map(|m| m.object(&conversation.id))
            .collect();
        let (backwards, forwards) = history_both_ways(reader, &conversation.id).await;
        let what = format!("the history of {}", conversation.id);
        let (backwards, forwards) = (Value::from(backwards), Value::from(forwards));
        assert_shows_each(
            &backwards,
            &want,
            "seq",
            &format!("{what}, paged backwards"),
        );
        assert_shows_each(&forwards, &want, "seq", &format!("{what}, paged forwards"));
    }

    for (username, client) in clients {
        let want = summaries_for(fixture, client.id());
        let (status, list) = client.get("/api/conversations").await;
        assert_eq!(status, StatusCode::OK, "{username}'s conversations: {list}");
        let what = format!("{username}'s GET /api/conversations");
        assert_shows_each(&fixture.own_entries(&list, &what), &want, "id", &what);

        let tab = Socket::online(server, client).await;
        let what = format!("{username}'s hello");
        let hello = fixture.own_entries(&tab.hello["conversations"], &what);
        assert_shows_each(&hello, &want, "id", &what);
        assert_shows(
            &tab.hello["user"],
            &fixture.user(username).object(),
            &format!("{username}'s hello user"),
        );
        tab.close().await;
    }
}

#[test]
fn confab_check_finds_nothing_wrong_with_a_0_1_database() {
    let fixture = Fixture::load();
    let dir = copy_of_fixture();
    // `check` reads the file as it is; only a server start upgrades it.
    assert_check_passes(
        dir.path(),
        fixture.users.len(),
        fixture.conversations.len(),
        fixture.message_count(),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_0_1_database_opens_with_every_account_message_and_read_position() {
    let mut fixture = Fixture::load();
    println!("fixture written by confab {}", fixture.release);
    let dir = copy_of_fixture();
    let server = TestServer::start_in(dir.path());
    assert_eq!(
        server.setup_token(),
        None,
        "the server offered first-run setup on a database with accounts"
    );

    let clients = everyone_logs_in(&server, &fixture).await;
    assert_users(&clients["admin"], &fixture, LastSeen::AsStored).await;
    assert_saved_session(&server, &fixture).await;
    assert_conversations(&server, &clients, &fixture).await;

    // Still writable: the next message continues the old sequence.
    let (alice, bob) = (&clients["alice"], &clients["bob"]);
    let conversation = fixture
        .conversations
        .iter()
        .find(|c| c.members.contains(&alice.id()) && c.members.contains(&bob.id()))
        .expect("alice and bob's DM");
    let (id, last_seq) = (conversation.id.clone(), conversation.messages.len() as u64);
    let mut tab = Socket::online(&server, alice).await;
    let message = tab
        .send_acked(
            id.as_str(),
            "Back after the upgrade: all still here?",
            "upgrade-1",
        )
        .await;
    assert_eq!(seq(&message), last_seq + 1, "the new message: {message}");
    tab.close().await;
    fixture.record_send(&message);

    let server = server.restart();
    let clients = everyone_logs_in(&server, &fixture).await;
    assert_users(&clients["admin"], &fixture, LastSeen::NotBefore).await;
    assert_saved_session(&server, &fixture).await;
    assert_conversations(&server, &clients, &fixture).await;
    assert!(server.stop().success(), "clean exit on SIGTERM");

    assert_check_passes(
        dir.path(),
        fixture.users.len(),
        fixture.conversations.len() + ADDED_BY_UPGRADES.len(),
        fixture.message_count(),
    );
}

#[tokio::test]
async fn the_upgrade_puts_every_account_in_general_caught_up() {
    let fixture = Fixture::load();
    let dir = copy_of_fixture();
    let server = TestServer::start_in(dir.path());
    assert!(
        server.wait_for_log(
            "upgraded the database from format 1 to 3",
            Duration::from_secs(5)
        ),
        "the upgrade says so in one log line"
    );
    for user in fixture.users.iter().filter(|u| !u.disabled) {
        let (status, body, _) = common::login(&server, &user.username, &user.password).await;
        assert_eq!(status, StatusCode::OK, "{}: {body}", user.username);
        let client = Client::new(&server, body["token"].as_str().expect("token"));
        let (_, list) = client.get("/api/conversations").await;
        let general = list
            .as_array()
            .and_then(|l| l.iter().find(|c| c["id"] == "room:1"))
            .unwrap_or_else(|| panic!("{} is in General: {list}", user.username));
        assert_eq!(general["member_count"], fixture.users.len());
        assert_eq!(
            (general["unread"].clone(), general["mentions"].clone()),
            (json!(0), json!(0))
        );
    }
}

#[tokio::test]
async fn the_upgrade_keeps_the_0_1_database_beside_it_and_says_where() {
    let fixture = Fixture::load();
    let dir = copy_of_fixture();
    let server = TestServer::start_in(dir.path());
    let saved = dir.path().join("confab.redb.v1.pre-upgrade-backup");
    assert!(
        server.wait_for_log(
            &format!("the database as it was is kept as {}", saved.display()),
            Duration::from_secs(5)
        ),
        "the upgrade names its backup in its log line"
    );
    assert!(server.stop().success());

    // The kept copy is the 0.1 database: nothing of the upgrade (no General) is in it.
    let old = tempfile::Builder::new()
        .prefix("confab-pre-upgrade-")
        .tempdir()
        .expect("temp dir");
    std::fs::copy(&saved, old.path().join("confab.redb")).expect("copy the kept database");
    assert_check_passes(
        old.path(),
        fixture.users.len(),
        fixture.conversations.len(),
        fixture.message_count(),
    );
}

/// META as every release declares it.
const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");

#[test]
fn a_database_from_a_newer_confab_is_refused_naming_both_versions_and_left_unchanged() {
    let dir = copy_of_fixture();
    let path = dir.path().join("confab.redb");
    {
        let db = redb::Database::open(&path).expect("open the copy");
        let txn = db.begin_write().expect("write");
        {
            let mut meta = txn.open_table(META).expect("meta");
            meta.insert("schema", 99u64.to_le_bytes().as_slice())
                .expect("schema");
            meta.insert("written_by", b"9.9.9 (future)".as_slice())
                .expect("writer");
        }
        txn.commit().expect("commit");
    }
    let before = std::fs::read(&path).expect("database");

    let dir_arg = dir.path().to_str().expect("utf-8 temp path");
    let out = common::run_cli(&["--data-dir", dir_arg, "--listen", "127.0.0.1:0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a newer database was served:\n{stderr}"
    );
    assert!(
        stderr.contains("database format 99")
            && stderr.contains("written by confab 9.9.9 (future)")
            && stderr.contains(&format!("this confab {}", env!("CARGO_PKG_VERSION")))
            && stderr.contains("reads formats up to 3"),
        "the refusal names both versions:\n{stderr}"
    );
    assert_eq!(
        std::fs::read(&path).expect("database"),
        before,
        "the refused database was written to"
    );
    assert!(
        !dir.path()
            .join("confab.redb.v99.pre-upgrade-backup")
            .exists()
            && !dir.path().join("search").exists(),
        "nothing was created beside it"
    );
}
