//! The database file in trouble: empty, foreign, damaged, unreadable, on a full disk. The
//! office's data is never replaced, a damaged record never takes a conversation down, and a
//! full disk costs nothing once space is back.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::mounts::Tmpfs;
use common::ws::{Socket, dm_id, full_history, send_frame};
use common::{Client, StatusCode, TestServer, json};
use serde_json::Value;

/// Puts something where the database file belongs.
type MakeFile<'a> = Box<dyn Fn(&Path) + 'a>;

/// Starts `confab` on `dir` expecting it to refuse; returns its output.
fn start_expecting_refusal(dir: &Path) -> Output {
    let dir = dir.to_str().expect("utf-8 path");
    common::run_cli(&["--listen", "127.0.0.1:0", "--data-dir", dir])
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the server refused to start on `dir`, in one line that names the database file and
/// says what to do, without touching the file.
fn assert_refused_naming_the_file(dir: &Path, advice: &str) {
    let path = dir.join("confab.redb");
    let before = std::fs::read(&path).ok();
    let output = start_expecting_refusal(dir);
    let stderr = stderr_of(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "exit status {:?}", output.status);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line of explanation, got:\n{stderr}");
    assert!(
        lines[0].contains(&path.display().to_string()),
        "names the file: {}",
        lines[0]
    );
    assert!(lines[0].contains(advice), "says what to do: {}", lines[0]);
    assert!(
        !stderr.contains("setup") && !stdout.contains("setup"),
        "no setup link"
    );
    assert_eq!(
        std::fs::read(&path).ok(),
        before,
        "the file's bytes are unchanged"
    );
}

/// A data directory with a stopped server's database holding a few messages.
async fn data_dir_with_history() -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_in(dir.path());
    let admin = common::setup_admin(&server).await;
    let alice = common::create_user(&admin, "alice").await;
    let bob = common::create_user(&admin, "bob").await;
    let mut socket = Socket::online(&server, &alice).await;
    let mut bodies = Vec::new();
    for i in 1..=20 {
        let body = format!("needle number {i:02} about the quarterly numbers");
        socket.send_acked(bob.id(), &body, &format!("m{i}")).await;
        bodies.push(body);
    }
    socket.close().await;
    assert!(server.stop().success());
    (dir, bodies)
}

#[test]
fn a_zero_byte_database_is_refused_not_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("confab.redb"), b"").expect("empty file");
    assert_refused_naming_the_file(dir.path(), "restore it from a backup");
    let stderr = stderr_of(&start_expecting_refusal(dir.path()));
    assert!(stderr.contains("empty"), "{stderr}");
    assert_eq!(
        std::fs::metadata(dir.path().join("confab.redb"))
            .expect("still there")
            .len(),
        0
    );
}

#[tokio::test]
async fn every_database_that_will_not_open_is_named_with_its_cause() {
    let (good, _) = data_dir_with_history().await;
    let good = std::fs::read(good.path().join("confab.redb")).expect("read database");

    let cases: Vec<(&str, MakeFile, &str)> = vec![
        (
            "a text file",
            Box::new(|p| std::fs::write(p, "these are my notes\n").expect("write")),
            "not a confab database",
        ),
        (
            "a garbage header",
            Box::new(|p| {
                let mut bytes = good.clone();
                bytes[..16].copy_from_slice(b"GARBAGEGARBAGE!!");
                std::fs::write(p, bytes).expect("write")
            }),
            "not a confab database",
        ),
        (
            "a truncated copy",
            Box::new(|p| std::fs::write(p, &good[..good.len() / 3]).expect("write")),
            "cut off",
        ),
        (
            "a damaged header",
            Box::new(|p| {
                let mut bytes = good.clone();
                bytes[9..200].fill(0xA5);
                std::fs::write(p, bytes).expect("write")
            }),
            "damaged",
        ),
        (
            "a directory in its place",
            Box::new(|p| std::fs::create_dir(p).expect("mkdir")),
            "directory",
        ),
    ];
    for (what, make, cause) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        make(&dir.path().join("confab.redb"));
        assert_refused_naming_the_file(dir.path(), "move it away");
        let stderr = stderr_of(&start_expecting_refusal(dir.path()));
        assert!(
            stderr.contains(cause),
            "{what}: expected '{cause}' in: {stderr}"
        );
    }
}

#[tokio::test]
async fn a_read_only_database_or_filesystem_is_explained() {
    let (dir, _) = data_dir_with_history().await;
    let path = dir.path().join("confab.redb");
    // We run as root, which ignores permission bits; the immutable attribute binds root too.
    let immutable = Command::new("chattr").arg("+i").arg(&path).status();
    if immutable.is_ok_and(|s| s.success()) {
        let output = start_expecting_refusal(dir.path());
        let _ = Command::new("chattr").arg("-i").arg(&path).status();
        let stderr = stderr_of(&output);
        assert!(!output.status.success());
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
        assert!(stderr.contains("permission denied"), "{stderr}");
    } else {
        eprintln!("skipping the read-only file case: chattr +i is not possible here");
    }

    let Some(tmpfs) = Tmpfs::mount("4m") else {
        return;
    };
    std::fs::copy(&path, tmpfs.path().join("confab.redb")).expect("copy database");
    tmpfs.remount_read_only();
    let output = start_expecting_refusal(tmpfs.path());
    let stderr = stderr_of(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("read-only filesystem"), "{stderr}");
    assert!(stderr.contains("confab.redb"), "{stderr}");
}

#[tokio::test]
async fn a_damaged_message_hides_only_itself_and_check_finds_it() {
    let (dir, bodies) = data_dir_with_history().await;
    let path = dir.path().join("confab.redb");
    // Message records are [format version][sender][body length][body][sent_at]: put a wrong
    // version in front of message 7, as random bytes over it would.
    let mut bytes = std::fs::read(&path).expect("read database");
    let at = find(&bytes, bodies[6].as_bytes()).expect("message 7 is in the file");
    assert!(
        (1..=9).contains(&bytes[at - 3]),
        "message 7's format version byte, got {}",
        bytes[at - 3]
    );
    bytes[at - 3] = 82;
    std::fs::write(&path, &bytes).expect("write database");

    let server = TestServer::start_in(dir.path());
    let alice = common::login_client(&server, "alice", &common::password_of("alice")).await;
    let (status, users) = alice.get("/api/users").await;
    assert_eq!(status, StatusCode::OK);
    let bob = user_id(&users, "bob");
    let conversation = format!("dm:{}:{}", alice.id().min(bob), alice.id().max(bob));
    let history = full_history(&alice, &conversation).await;
    let seen: Vec<&str> = history
        .iter()
        .map(|m| m["body"].as_str().expect("body"))
        .collect();
    let mut expected: Vec<&str> = bodies.iter().map(String::as_str).collect();
    expected.remove(6);
    assert_eq!(seen, expected, "every other message is served");
    assert!(
        server.wait_for_log(&format!("message {conversation} 7"), Duration::from_secs(5)),
        "the log names the damaged record"
    );
    assert!(server.stop().success());

    let dir_arg = dir.path().to_str().expect("utf-8 path");
    let check = common::run_cli(&["check", "--data-dir", dir_arg]);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        !check.status.success(),
        "problems found → exit 1:\n{report}{}",
        stderr_of(&check)
    );
    assert!(
        report.contains(&format!("message 7 of {conversation} is damaged")),
        "{report}{}",
        stderr_of(&check)
    );
}

#[tokio::test]
async fn check_recomputes_unread_counts_and_repair_fixes_them() {
    let (dir, _) = data_dir_with_history().await;
    let dir_arg = dir.path().to_str().expect("utf-8 path");

    let clean = common::run_cli(&["check", "--data-dir", dir_arg]);
    let report = String::from_utf8_lossy(&clean.stdout);
    assert!(clean.status.success(), "{report}{}", stderr_of(&clean));
    assert!(report.contains("no problems found"), "{report}");
    assert!(report.contains("20 messages"), "{report}");

    // Bob has 20 unread; make the stored count say 5, as a bug in the write path would.
    // Membership record: [format version 1][read_seq][unread], keyed (user id, conversation).
    let db = redb::Database::open(dir.path().join("confab.redb")).expect("open database");
    let txn = db.begin_write().expect("write");
    {
        const MEMBERSHIPS: redb::TableDefinition<(u64, &str), MembershipBytes> =
            redb::TableDefinition::new("memberships");
        let mut memberships = txn.open_table(MEMBERSHIPS).expect("memberships");
        memberships
            .insert((3, "dm:2:3"), [1u8, 0, 5].as_slice())
            .expect("insert");
    }
    txn.commit().expect("commit");
    drop(db);

    let found = common::run_cli(&["check", "--data-dir", dir_arg]);
    let report = String::from_utf8_lossy(&found.stdout);
    assert!(!found.status.success(), "{report}");
    assert!(report.contains("stored unread 5"), "{report}");
    assert!(report.contains("history says 20"), "{report}");

    let repaired = common::run_cli(&["check", "--repair", "--data-dir", dir_arg]);
    let report = String::from_utf8_lossy(&repaired.stdout);
    assert!(
        repaired.status.success(),
        "{report}{}",
        stderr_of(&repaired)
    );
    assert!(report.contains("repaired"), "{report}");

    let again = common::run_cli(&["check", "--data-dir", dir_arg]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    let server = TestServer::start_in(dir.path());
    let bob = common::login_client(&server, "bob", &common::password_of("bob")).await;
    let (_, conversations) = bob.get("/api/conversations").await;
    assert_eq!(conversations[0]["unread"], 20, "{conversations}");
}

#[tokio::test]
async fn check_refuses_while_the_server_runs() {
    let server = TestServer::start();
    common::setup_admin(&server).await;
    let dir = server.data_dir();
    let output = common::run_cli(&["check", "--data-dir", dir.to_str().expect("utf-8")]);
    assert!(!output.status.success());
    assert!(
        stderr_of(&output).contains("stop it first"),
        "{}",
        stderr_of(&output)
    );
}

#[tokio::test]
async fn the_database_is_private_to_its_owner() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_in(dir.path());
    common::setup_admin(&server).await;
    let path = server.data_dir().join("confab.redb");
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a new database is owner-only");
    assert!(server.stop().success());

    // A database an earlier release created world-readable is tightened at start.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let server = TestServer::start_in(path.parent().expect("dir"));
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    drop(server);
}

#[tokio::test]
async fn last_seen_is_the_time_of_shutdown_for_whoever_was_online() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_in(dir.path());
    let admin = common::setup_admin(&server).await;
    let alice = common::create_user(&admin, "alice").await;
    let _socket = Socket::online(&server, &alice).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let before_stop = common::now_secs();
    assert!(server.stop().success());

    let server = TestServer::start_in(dir.path());
    let admin = common::login_client(&server, "admin", common::ADMIN_PASSWORD).await;
    let (_, users) = admin.get("/api/users").await;
    let alice = users
        .as_array()
        .and_then(|u| u.iter().find(|u| u["username"] == "alice"))
        .expect("alice in the directory");
    let last_seen = alice["last_seen"].as_i64().expect("last_seen");
    assert!(
        last_seen >= before_stop,
        "last_seen {last_seen} is the shutdown time (≥ {before_stop}), not the connect time"
    );
}

#[tokio::test]
async fn a_graceful_stop_closes_the_database_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_in(dir.path());
    let (_, alice, _) = office_in(&server).await;
    let _socket = Socket::online(&server, &alice).await;
    assert!(server.stop().success());
    let server = TestServer::start_in(dir.path());
    assert!(
        !server.log_contains("not closed cleanly"),
        "{:?}",
        server.logs()
    );
    let mut server = server;
    server.kill();
    let server = TestServer::start_in(dir.path());
    assert!(
        server.wait_for_log("not closed cleanly", Duration::from_secs(5)),
        "a crash is noticed, so the test above can fail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_storm_costs_a_few_fsyncs_not_one_per_user() {
    const USERS: usize = 30;
    let server = TestServer::start();
    let admin = common::setup_admin(&server).await;
    let mut clients = Vec::new();
    for i in 0..USERS {
        clients.push(common::create_user(&admin, &format!("user{i:02}")).await);
    }
    let Some(trace) = Strace::attach(server.pid(), "fdatasync,fsync") else {
        return;
    };
    let sockets = futures_util::future::join_all(
        clients.iter().map(|client| Socket::online(&server, client)),
    )
    .await;
    // Let the writer commit whatever the storm queued.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fsyncs = trace.finish();
    // A redb commit syncs twice (data, then header). One commit per connection, as before,
    // costs 2 × USERS; batches cost a handful however the connections happen to arrive.
    assert!(
        fsyncs < USERS,
        "{USERS} users connecting at once cost {fsyncs} fsyncs"
    );
    drop(sockets);
}

/// The full-disk story: writes fail with `storage_full` and are never acked, reads keep
/// working, and once space is freed writes work again without a restart. A crash right after
/// the recovery loses nothing that was acked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_refuses_writes_clearly_and_recovers_when_space_is_freed() {
    let Some(tmpfs) = Tmpfs::mount("12m") else {
        return;
    };
    let mut server = TestServer::start_in(tmpfs.path());
    let (admin, alice, bob) = office_in(&server).await;
    let conversation = dm_id(&alice, &bob);
    let mut tabs = Vec::new();
    for _ in 0..5 {
        tabs.push(Socket::online(&server, &alice).await);
    }

    let filler = tmpfs.path().join("filler");
    fill_disk(&filler);
    let body = "x".repeat(3900);
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut refused = Vec::new();
    // Sends until the disk refuses them: the database first uses up its own free pages.
    'fill: for round in 0..40 {
        for (tab, socket) in tabs.iter_mut().enumerate() {
            for i in 0..10 {
                let id = format!("r{round}-t{tab}-{i}");
                socket.send_json(&send_frame(bob.id(), &body, &id)).await;
            }
        }
        for socket in tabs.iter_mut() {
            for _ in 0..10 {
                let frame = socket
                    .next_matching("an ack or an error", |f| {
                        f["type"] == "ack" || f["type"] == "error"
                    })
                    .await;
                let id = frame["client_id"].as_str().expect("client_id").to_owned();
                if frame["type"] == "ack" {
                    acked.insert(id, frame["message"]["seq"].as_u64().expect("seq"));
                } else {
                    assert_eq!(frame["code"], "storage_full", "{frame}");
                    refused.push(id);
                }
            }
        }
        if !refused.is_empty() {
            break 'fill;
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert!(!refused.is_empty(), "the disk never filled up");

    // Reads keep working while the disk is full; other writes fail with the same clear error.
    let history = full_history(&alice, &conversation).await;
    assert_eq!(history.len(), acked.len());
    let (status, body_json) = common::send(
        common::http()
            .post(server.url("/api/login"))
            .json(&json!({"username": "bob", "password": common::password_of("bob")})),
    )
    .await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body_json}");
    assert_eq!(common::error_code(&body_json), "storage_full");

    // Space is back: the same sends go through, without restarting anything.
    std::fs::remove_file(&filler).expect("free space");
    let retry = refused[0].clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    let recovered = loop {
        tabs[0]
            .send_json(&send_frame(bob.id(), &body, &retry))
            .await;
        let frame = tabs[0]
            .next_matching("the retry's answer", |f| f["client_id"] == retry.as_str())
            .await;
        if frame["type"] == "ack" {
            break frame;
        }
        assert_eq!(frame["code"], "storage_full", "{frame}");
        assert!(Instant::now() < deadline, "writes never resumed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    acked.insert(retry, recovered["message"]["seq"].as_u64().expect("seq"));
    for i in 0..5 {
        let id = format!("after-{i}");
        let message = tabs[1].send_acked(bob.id(), "back in business", &id).await;
        acked.insert(id, message["seq"].as_u64().expect("seq"));
    }
    let (status, _) = common::send(
        common::http()
            .post(server.url("/api/login"))
            .json(&json!({"username": "bob", "password": common::password_of("bob")})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // A crash right after recovering loses nothing acked and keeps nothing refused.
    server.kill();
    drop(tabs);
    let server = TestServer::start_in(tmpfs.path());
    let alice = common::login_client(&server, "alice", &common::password_of("alice")).await;
    let history = full_history(&alice, &conversation).await;
    let seqs: Vec<u64> = history.iter().map(common::ws::seq).collect();
    let expected: Vec<u64> = (1..=acked.len() as u64).collect();
    assert_eq!(seqs, expected, "every acked message once, gapless");
    let mut acked_seqs: Vec<u64> = acked.values().copied().collect();
    acked_seqs.sort_unstable();
    assert_eq!(acked_seqs, expected, "exactly the acked messages");
    drop(admin);
}

async fn office_in(server: &TestServer) -> (Client, Client, Client) {
    let admin = common::setup_admin(server).await;
    let alice = common::create_user(&admin, "alice").await;
    let bob = common::create_user(&admin, "bob").await;
    (admin, alice, bob)
}

fn user_id(users: &Value, username: &str) -> i64 {
    users
        .as_array()
        .and_then(|u| u.iter().find(|u| u["username"] == username))
        .and_then(|u| u["id"].as_i64())
        .unwrap_or_else(|| panic!("{username} in {users}"))
}

/// A membership record as raw bytes, under the type name confab stores it with.
#[derive(Debug)]
struct MembershipBytes;

impl redb::Value for MembershipBytes {
    type SelfType<'a> = &'a [u8];
    type AsBytes<'a> = &'a [u8];

    fn fixed_width() -> Option<usize> {
        None
    }

    fn from_bytes<'a>(data: &'a [u8]) -> &'a [u8]
    where
        Self: 'a,
    {
        data
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a &'b [u8]) -> &'a [u8]
    where
        Self: 'b,
    {
        value
    }

    fn type_name() -> redb::TypeName {
        redb::TypeName::new("confab::Membership")
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Writes `path` until the filesystem has no space left.
fn fill_disk(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let small = [0u8; 512];
    while file.write_all(&small).is_ok() {}
    let _ = file.sync_all();
}

/// strace attached to a process, counting some system calls. `None` (with a message) where
/// strace is missing.
struct Strace {
    child: std::process::Child,
    log: tempfile::NamedTempFile,
}

impl Strace {
    fn attach(pid: u32, calls: &str) -> Option<Strace> {
        let log = tempfile::NamedTempFile::new().expect("strace log");
        let child = Command::new("strace")
            .args(["-f", "-qq", "-e", &format!("trace={calls}"), "-o"])
            .arg(log.path())
            .args(["-p", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .spawn();
        match child {
            Ok(child) => {
                // strace attaches to every thread before it starts tracing.
                std::thread::sleep(Duration::from_millis(500));
                Some(Strace { child, log })
            }
            Err(e) => {
                eprintln!("skipping: strace is not available ({e}); .ci/run installs it");
                None
            }
        }
    }

    /// Detaches and returns how many traced calls were made.
    fn finish(mut self) -> usize {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let log = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        log.lines().filter(|l| l.contains("sync(")).count()
    }
}
