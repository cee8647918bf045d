//! Backups as an office uses them: `confab backup` while people chat, `--verify`, `restore`
//! into a new directory, nightly backups with pruning, and the admin page's list and download.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::files::noise;
use common::mounts::Tmpfs;
use common::ws::{Socket, dm_id, full_history, seq};
use common::{
    Client, StatusCode, TestServer, Value, arg, cli, create_user, json, password_of, setup_admin,
};

fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temp dir")
}

/// A message whose `ack` the sender had.
#[derive(Debug, Clone)]
struct Acked {
    conversation: String,
    seq: u64,
    body: String,
    at: Instant,
}

/// Sends from `socket` to `target`, one message after another as each is acked, until `stop`.
fn keep_sending(
    mut socket: Socket,
    name: &'static str,
    target: Value,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Acked>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let body = format!("{name} says {n}");
            let message = socket
                .send_acked(target.clone(), &body, &format!("{name}-{n}"))
                .await;
            acked.lock().expect("acked").push(Acked {
                conversation: message["conversation"]
                    .as_str()
                    .expect("conversation")
                    .to_owned(),
                seq: seq(&message),
                body,
                at: Instant::now(),
            });
        }
        socket.close().await;
    })
}

/// `confab ARGS` off the async runtime (a backup takes a moment).
async fn cli_blocking(args: Vec<String>) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&args)
    })
    .await
    .expect("cli task")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

async fn login(server: &TestServer, username: &str) -> Client {
    common::login_client(server, username, &password_of(username)).await
}

/// The permission bits of `path`, in octal ("600").
fn mode(path: &Path) -> String {
    let mode = std::fs::metadata(path).expect("stat").permissions().mode();
    format!("{:o}", mode & 0o777)
}

/// A backup holds the whole database (password hashes, the session-signing key): only the
/// server's user may read it, like `confab.redb`.
fn assert_private_file(path: &Path) {
    assert_eq!(mode(path), "600", "{} is owner-only", path.display());
}

/// `confab restore FILE` into a new data directory; returns it.
fn restore_into_new_dir(file: &Path, parent: &Path) -> PathBuf {
    let data = parent.join("restored");
    let (ok, out) = cli(&["restore", arg(file), "--data-dir", arg(&data)]);
    assert!(ok, "restore into a new directory failed:\n{out}");
    assert!(out.contains("restored into"), "{out}");
    data
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_while_everyone_sends_restores_every_acked_message_with_exact_counts() {
    let server = TestServer::start_with(&["--frame-rate", "5000"], None);
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let bob = create_user(&admin, "bob").await;
    let carol = create_user(&admin, "carol").await;
    // Each conversation, and which of alice (0), bob (1), carol (2) reads its history.
    let conversations = [
        (dm_id(&alice, &bob), 0),
        (dm_id(&bob, &carol), 1),
        ("room:1".to_owned(), 0),
    ];

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut senders = Vec::new();
    for (client, name, target) in [
        (&alice, "alice", json!(bob.id())),
        (&bob, "bob", json!(carol.id())),
        (&carol, "carol", json!("room:1")),
    ] {
        let socket = Socket::online(&server, client).await;
        senders.push(keep_sending(
            socket,
            name,
            target,
            stop.clone(),
            acked.clone(),
        ));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;

    let work = temp_dir("confab-backup-");
    let file = work.path().join("office.backup");
    let began = Instant::now();
    let (ok, out) = cli_blocking(args(&[
        "backup",
        arg(&file),
        "--data-dir",
        arg(&server.data_dir()),
    ]))
    .await;
    assert!(ok, "backup of the running server failed:\n{out}");
    assert!(out.contains("backup written to"), "{out}");
    assert_private_file(&file);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.expect("sender");
    }
    let acked = acked.lock().expect("acked").clone();
    let before: Vec<&Acked> = acked.iter().filter(|m| m.at < began).collect();
    assert!(
        before.len() >= 30,
        "the load sent only {} messages before the backup",
        before.len()
    );
    assert!(
        acked.len() > before.len(),
        "nobody sent during or after the backup: the writer was blocked"
    );
    assert!(server.stop().success());

    let (ok, out) = cli(&["backup", "--verify", arg(&file)]);
    assert!(ok, "verify failed:\n{out}");
    assert!(out.contains("4 users"), "{out}");

    let restored = restore_into_new_dir(&file, work.path());
    let copy = TestServer::start_in(&restored);
    let people = [
        login(&copy, "alice").await,
        login(&copy, "bob").await,
        login(&copy, "carol").await,
    ];
    for (conversation, reader) in &conversations {
        let history = full_history(&people[*reader], conversation).await;
        let seqs: Vec<u64> = history.iter().map(seq).collect();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "{conversation}: seqs without gaps");
        let bodies: BTreeMap<u64, &str> = history
            .iter()
            .map(|m| (seq(m), m["body"].as_str().unwrap_or_default()))
            .collect();
        for message in before.iter().filter(|m| &m.conversation == conversation) {
            assert_eq!(
                bodies.get(&message.seq).copied(),
                Some(message.body.as_str()),
                "{conversation}: message {} was acked before the backup began",
                message.seq
            );
        }
        for member in &people {
            let Some(summary) = common::summary_of(member, conversation).await else {
                continue;
            };
            assert_eq!(summary["last_seq"], seqs.len(), "{conversation}: {summary}");
            // Nobody read anything during the load: everything from others is unread.
            let from_others = history.iter().filter(|m| m["from"] != member.id()).count();
            assert_eq!(
                summary["unread"],
                from_others,
                "{}'s unread in {conversation}: {summary}",
                member.username()
            );
        }
    }
    assert!(copy.stop().success());
    let (ok, out) = cli(&["check", "--data-dir", arg(&restored)]);
    assert!(ok && out.contains("no problems found"), "{out}");
}

/// A stopped server with admin, alice and three messages; returns its data dir's owner.
async fn stopped_office(work: &Path) -> PathBuf {
    let data = work.join("data");
    let server = TestServer::start_in(&data);
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let mut tab = Socket::online(&server, &alice).await;
    for n in 1..=3 {
        tab.send_acked(json!(admin.id()), &format!("note {n}"), &format!("n{n}"))
            .await;
    }
    tab.close().await;
    assert!(server.stop().success());
    data
}

#[tokio::test]
async fn a_stopped_server_is_backed_up_without_a_byte_of_its_database_changing() {
    let work = temp_dir("confab-backup-");
    let data = stopped_office(work.path()).await;
    let database = data.join("confab.redb");
    let before = std::fs::read(&database).expect("database");
    let file = work.path().join("stopped.backup");

    let (ok, out) = cli(&["backup", arg(&file), "--data-dir", arg(&data)]);
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read(&database).expect("database"),
        before,
        "the backup changed the database it copied"
    );
    assert_private_file(&file);
    let (ok, out) = cli(&["backup", "--verify", arg(&file)]);
    assert!(ok, "{out}");
    assert!(
        out.contains("2 users") && out.contains("3 messages") && out.contains("0 files"),
        "{out}"
    );
    assert!(out.contains("less than a minute ago"), "its age: {out}");

    let restored = restore_into_new_dir(&file, work.path());
    // As restore left it, before a server's start would tighten it.
    assert_private_file(&restored.join("confab.redb"));
    let copy = TestServer::start_in(&restored);
    let alice = login(&copy, "alice").await;
    let (_, list) = alice.get("/api/conversations").await;
    let dm = common::dms_only(&list);
    assert_eq!(dm[0]["last_seq"], 3, "{list}");
    assert_eq!(dm[0]["last_message"]["body"], "note 3", "{list}");
}

#[tokio::test]
async fn a_damaged_or_cut_backup_fails_verify_and_restore_changes_nothing() {
    let work = temp_dir("confab-backup-");
    let data = stopped_office(work.path()).await;
    let file = work.path().join("good.backup");
    let (ok, out) = cli(&["backup", arg(&file), "--data-dir", arg(&data)]);
    assert!(ok, "{out}");
    let good = std::fs::read(&file).expect("backup");

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let damaged = work.path().join("damaged.backup");
    std::fs::write(&damaged, &flipped).expect("write");
    let verify = common::run_cli(&["backup", "--verify", arg(&damaged)]);
    let out = String::from_utf8_lossy(&verify.stderr);
    assert_eq!(verify.status.code(), Some(1), "{out}");
    assert!(out.contains("checksum does not match"), "{out}");

    let cut = work.path().join("cut.backup");
    std::fs::write(&cut, &good[..good.len() - 100]).expect("write");
    let (ok, out) = cli(&["backup", "--verify", arg(&cut)]);
    assert!(!ok && out.contains("cut off"), "{out}");

    let (ok, out) = cli(&["backup", "--verify", arg(&data.join("confab.redb"))]);
    assert!(!ok && out.contains("not a confab backup"), "{out}");

    let database = std::fs::read(data.join("confab.redb")).expect("database");
    let (ok, out) = cli(&["restore", arg(&damaged), "--data-dir", arg(&data)]);
    assert!(!ok && out.contains("nothing was changed"), "{out}");
    assert_eq!(
        std::fs::read(data.join("confab.redb")).expect("database"),
        database
    );
    assert_eq!(
        std::fs::read_dir(&data)
            .expect("data dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("restore"))
            .count(),
        0,
        "a refused restore left files behind"
    );
}

#[tokio::test]
async fn restore_refuses_while_the_server_runs_and_keeps_the_old_database_after() {
    let work = temp_dir("confab-backup-");
    let data = work.path().join("data");
    let server = TestServer::start_in(&data);
    let admin = setup_admin(&server).await;
    create_user(&admin, "alice").await;
    let file = work.path().join("running.backup");
    let (ok, out) = cli(&["backup", arg(&file), "--data-dir", arg(&data)]);
    assert!(ok, "{out}");

    let (ok, out) = cli(&["restore", arg(&file), "--data-dir", arg(&data)]);
    assert!(!ok, "restore ran under a live server:\n{out}");
    assert!(
        out.contains("the server is running") && out.contains("stop it first"),
        "{out}"
    );

    assert!(server.stop().success());
    let (ok, out) = cli(&["restore", arg(&file), "--data-dir", arg(&data)]);
    assert!(ok, "{out}");
    let kept = kept_before_restore(&data);
    assert_eq!(kept.len(), 1, "the replaced database is kept: {kept:?}");
    assert!(
        !data.join("search").exists(),
        "the search index is removed so it rebuilds"
    );
    let copy = TestServer::start_in(&data);
    login(&copy, "alice").await;
}

/// The `confab.redb.<time>.before-restore` files in `data`, sorted.
fn kept_before_restore(data: &Path) -> Vec<PathBuf> {
    let mut kept: Vec<PathBuf> = std::fs::read_dir(data)
        .expect("data dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("confab.redb.") && name.ends_with(".before-restore")
        })
        .collect();
    kept.sort();
    kept
}

#[tokio::test]
async fn two_restores_in_one_second_keep_both_replaced_databases() {
    let work = temp_dir("confab-backup-");
    let data = stopped_office(work.path()).await;
    let file = work.path().join("good.backup");
    let (ok, out) = cli(&["backup", arg(&file), "--data-dir", arg(&data)]);
    assert!(ok, "{out}");
    let original = std::fs::read(data.join("confab.redb")).expect("database");

    // Start early in a second: a restore takes a few tens of milliseconds, so both are kept
    // under the same time stamp.
    let into_second = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .subsec_millis();
    if into_second > 300 {
        std::thread::sleep(Duration::from_millis(u64::from(1010 - into_second)));
    }
    let mut said = Vec::new();
    for _ in 0..2 {
        let (ok, out) = cli(&["restore", arg(&file), "--data-dir", arg(&data)]);
        assert!(ok, "{out}");
        said.push(out);
    }

    let kept = kept_before_restore(&data);
    assert_eq!(
        kept.len(),
        2,
        "each restore kept the database it replaced: {kept:?}"
    );
    for path in &kept {
        let named = format!("kept as {}", path.display());
        assert!(
            said.iter().filter(|out| out.contains(&named)).count() == 1,
            "one restore names {}: {said:?}",
            path.display()
        );
    }
    let first = said[0]
        .lines()
        .find_map(|line| line.strip_prefix("the database that was there is kept as "))
        .expect("the first restore names what it kept");
    assert_eq!(
        std::fs::read(first).expect("first kept"),
        original,
        "the office's original database survives the second restore"
    );
    let server = TestServer::start_in(&data);
    login(&server, "alice").await;
}

/// Something done to the database file behind confab's back.
type Spoil = fn(&Path);

/// `truncate -s` to half its size: a database cut off while copying.
fn cut_in_half(database: &Path) {
    let len = std::fs::metadata(database).expect("database").len();
    std::fs::File::options()
        .write(true)
        .open(database)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
}

fn random_over(database: &Path) {
    std::fs::write(database, noise(200_000)).expect("random bytes");
}

#[tokio::test]
async fn restore_replaces_a_damaged_or_foreign_database_and_keeps_it_aside() {
    for (damage, spoil) in [("cut", cut_in_half as Spoil), ("random bytes", random_over)] {
        let work = temp_dir("confab-backup-");
        let data = stopped_office(work.path()).await;
        let file = work.path().join("good.backup");
        let (ok, out) = cli(&["backup", arg(&file), "--data-dir", arg(&data)]);
        assert!(ok, "{out}");
        let database = data.join("confab.redb");
        spoil(&database);
        let spoiled = std::fs::read(&database).expect("database");
        let (ok, out) = cli(&["check", "--data-dir", arg(&data)]);
        assert!(!ok, "{damage}: the damage is real:\n{out}");

        let (ok, out) = cli(&["restore", arg(&file), "--data-dir", arg(&data)]);
        assert!(ok, "{damage}: restore refused:\n{out}");
        assert!(out.contains("restored into"), "{damage}: {out}");
        let kept = kept_before_restore(&data);
        assert_eq!(kept.len(), 1, "{damage}: {kept:?}");
        assert!(
            out.contains("the database that was there is damaged")
                && out.contains(&format!("it is kept as {}", kept[0].display())),
            "{damage}: {out}"
        );
        assert_eq!(
            std::fs::read(&kept[0]).expect("kept"),
            spoiled,
            "{damage}: the old file is kept as it was"
        );

        let server = TestServer::start_in(&data);
        let alice = login(&server, "alice").await;
        let (_, list) = alice.get("/api/conversations").await;
        let dm = common::dms_only(&list);
        assert_eq!(dm[0]["last_message"]["body"], "note 3", "{damage}: {list}");
        assert!(server.stop().success());
        let (ok, out) = cli(&["check", "--data-dir", arg(&data)]);
        assert!(ok && out.contains("no problems found"), "{damage}: {out}");
    }
}

/// `confab backup FILE` onto an existing FILE: exit 1 with a message naming it, FILE byte for
/// byte as it was, and no partial file beside it.
fn assert_backup_refused_over(file: &Path, data: &Path) {
    let before = std::fs::read(file).expect("existing file");
    let siblings = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let dir = file.parent().expect("parent");
    let listed = siblings(dir);
    let out = common::run_cli(&["backup", arg(file), "--data-dir", arg(data)]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "{} already exists; choose another name or remove it first",
            file.display()
        )),
        "{text}"
    );
    assert!(!text.contains("backup written"), "{text}");
    assert_eq!(
        std::fs::read(file).expect("file"),
        before,
        "FILE was changed"
    );
    assert_eq!(siblings(dir), listed, "a refused backup left files behind");
}

#[tokio::test]
async fn a_backup_never_replaces_an_existing_file_whether_the_server_runs_or_not() {
    let work = temp_dir("confab-backup-");
    let data = stopped_office(work.path()).await;
    let precious = work.path().join("p.txt");
    std::fs::write(&precious, "precious\n").expect("write");

    assert_backup_refused_over(&precious, &data);

    let server = TestServer::start_in(&data);
    assert_backup_refused_over(&precious, &data);
    let file = work.path().join("fresh.backup");
    let (ok, out) = cli(&["backup", arg(&file), "--data-dir", arg(&data)]);
    assert!(ok && out.contains("backup written to"), "{out}");
    // A second backup to the same name is refused too; the first stays as written.
    assert_backup_refused_over(&file, &data);
    assert!(server.stop().success());
    let (ok, out) = cli(&["backup", "--verify", arg(&file)]);
    assert!(ok, "{out}");
}

#[tokio::test]
async fn the_live_database_named_as_the_backup_file_is_refused_and_the_server_carries_on() {
    let work = temp_dir("confab-backup-");
    let data = stopped_office(work.path()).await;
    let server = TestServer::start_in(&data);
    let alice = login(&server, "alice").await;

    assert_backup_refused_over(&data.join("confab.redb"), &data);

    let (_, list) = alice.get("/api/conversations").await;
    let dm = common::dms_only(&list);
    assert_eq!(dm[0]["last_message"]["body"], "note 3", "{list}");
    let admin = common::login_client(&server, "admin", common::ADMIN_PASSWORD).await;
    create_user(&admin, "bob").await;
    assert!(server.stop().success());

    let server = TestServer::start_in(&data);
    login(&server, "bob").await;
    assert!(server.stop().success());
    let (ok, out) = cli(&["check", "--data-dir", arg(&data)]);
    assert!(ok && out.contains("no problems found"), "{out}");
}

/// What a finished `confab` run printed, stdout then stderr.
fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn a_backup_the_running_server_wrote_where_the_admin_cannot_see_it_is_a_failure() {
    let work = temp_dir("confab-backup-");
    let data = stopped_office(work.path()).await;
    // /proc/self/cwd is another folder to each process: the server's /tmp under a systemd
    // unit with PrivateTmp=yes is another folder than the admin's just the same.
    let (service_view, admin_view) = (work.path().join("service"), work.path().join("admin"));
    std::fs::create_dir(&service_view).expect("mkdir");
    std::fs::create_dir(&admin_view).expect("mkdir");
    let server = TestServer::start_in_working_dir(&data, &service_view);
    let file = "/proc/self/cwd/office.backup";

    let out = common::run_cli_in(&admin_view, &["backup", file, "--data-dir", arg(&data)]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!text.contains("backup written to"), "{text}");
    for words in [
        "there is no /proc/self/cwd/office.backup here",
        "in its own view of the filesystem",
        "PrivateTmp/ProtectSystem",
        "write it to a folder the service may write to (see packaging/INSTALL.md)",
        "or stop the server and run the backup directly",
    ] {
        assert!(text.contains(words), "says {words:?}: {text}");
    }
    assert!(
        service_view.join("office.backup").exists(),
        "the server wrote it"
    );
    assert!(!admin_view.join("office.backup").exists());

    // Stopped, the same command writes it where the admin sees it.
    assert!(server.stop().success());
    let out = common::run_cli_in(&admin_view, &["backup", file, "--data-dir", arg(&data)]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(admin_view.join("office.backup").exists());
}

#[tokio::test]
async fn a_backup_to_a_read_only_filesystem_is_refused_naming_the_file() {
    let Some(tmpfs) = Tmpfs::mount("1m") else {
        return;
    };
    tmpfs.remount_read_only();
    let file = tmpfs.path().join("office.backup");
    let work = temp_dir("confab-backup-");
    let data = stopped_office(work.path()).await;
    for running in [false, true] {
        let server = running.then(|| TestServer::start_in(&data));
        let out = common::run_cli(&["backup", arg(&file), "--data-dir", arg(&data)]);
        let text = said(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            text.contains(&format!(
                "cannot write {}: it is on a read-only filesystem",
                file.display()
            )),
            "running: {running}: {text}"
        );
        assert!(
            !text.contains("office.backup.") && !text.contains("--data-dir"),
            "no temporary file's name, no advice about the data directory: {text}"
        );
        assert_eq!(
            text.contains("stop the server and run the backup directly"),
            running,
            "the service's view is explained when the server wrote it: {text}"
        );
        if let Some(server) = server {
            assert!(server.stop().success());
        }
    }
}

/// An old automatic backup, `days` old.
fn old_backup(dir: &Path, name: &str, days: u64) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, b"an old backup").expect("write");
    let when = SystemTime::now() - Duration::from_secs(days * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(when))
        .expect("set mtime");
    path
}

#[tokio::test]
async fn nightly_backups_keep_the_newest_and_admins_list_and_download_them() {
    let work = temp_dir("confab-backup-");
    let dir = work.path().join("backups");
    std::fs::create_dir(&dir).expect("backup dir");
    old_backup(&dir, "confab-20200103-030000.backup", 3);
    old_backup(&dir, "confab-20200102-030000.backup", 4);
    old_backup(&dir, "confab-20200101-030000.backup", 5);
    std::fs::write(dir.join("notes.txt"), "not a backup").expect("write");
    // What a backup interrupted two days ago left, and one being written right now.
    old_backup(&dir, "confab-20200105-030000.backup.tmp", 2);
    old_backup(&dir, "confab-20200105-030000.backup.db.tmp", 2);
    old_backup(&dir, "confab-20200106-030000.backup.db.tmp.tmp", 2);
    std::fs::write(dir.join("confab-20991231-000000.backup.tmp"), "in progress").expect("write");

    // The folder set through the environment, as systemd's drop-in would.
    let server = TestServer::start_with_env(
        &["--backup-keep", "2"],
        &[("CONFAB_BACKUP_DIR", arg(&dir))],
        None,
    );
    assert!(
        server.wait_for_log("automatic backup written", Duration::from_secs(20)),
        "the last backup is 3 days old, so one is taken at start"
    );
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("backup dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(names[0], "confab-20200103-030000.backup", "{names:?}");
    assert!(
        names[1].starts_with("confab-20") && names[1] != names[0],
        "{names:?}"
    );
    assert_eq!(
        names[2], "confab-20991231-000000.backup.tmp",
        "what an interrupted backup left is removed, one still fresh is not"
    );
    assert_eq!(names[3], "notes.txt", "other files are never pruned");
    let newest = names[1].clone();

    let admin = setup_admin(&server).await;
    let (status, list) = admin.get("/api/admin/backups").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(
        (list["enabled"].clone(), list["keep"].clone()),
        (json!(true), json!(2))
    );
    let backups = list["backups"].as_array().expect("backups");
    assert_eq!(backups.len(), 2, "{list}");
    assert_eq!(backups[0]["name"], newest.as_str());
    let size = std::fs::metadata(dir.join(&newest)).expect("newest").len();
    assert_eq!(backups[0]["size"], size);
    assert!(backups[0]["created_at"].as_i64() > backups[1]["created_at"].as_i64());
    // The admin page's Server section names the same newest backup.
    let (status, server_status) = admin.get("/api/admin/status").await;
    assert_eq!(status, StatusCode::OK, "{server_status}");
    assert_eq!(server_status["backups"]["configured"], true);
    assert_eq!(server_status["backups"]["last"]["file"], newest.as_str());
    assert_eq!(server_status["backups"]["last"]["bytes"], size);

    let response = admin
        .request(reqwest::Method::GET, "/api/admin/backups/latest")
        .send()
        .await
        .expect("download");
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .expect("header")
        .to_owned();
    assert!(disposition.contains(&newest), "{disposition}");
    let bytes = response.bytes().await.expect("body");
    assert_eq!(bytes.len() as u64, size);
    let downloaded = work.path().join("downloaded.backup");
    std::fs::write(&downloaded, &bytes).expect("write");
    let (ok, out) = cli(&["backup", "--verify", arg(&downloaded)]);
    assert!(ok, "the downloaded backup verifies:\n{out}");

    let member = create_user(&admin, "alice").await;
    for path in ["/api/admin/backups", "/api/admin/backups/latest"] {
        let (status, body) = member.get(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} as a member: {body}");
    }
}

#[tokio::test]
async fn nightly_backups_are_private_and_so_is_the_folder_confab_creates_for_them() {
    let work = temp_dir("confab-backup-");
    let dir = work.path().join("backups").join("confab");
    let server = TestServer::start_with(&["--backup-dir", arg(&dir)], None);
    assert!(
        server.wait_for_log("automatic backup written", Duration::from_secs(20)),
        "the first backup is taken at start"
    );
    let backups: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("backup dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_private_file(&backups[0]);
    for created in [&dir, &work.path().join("backups")] {
        assert_eq!(mode(created), "700", "{} is owner-only", created.display());
    }
}

#[tokio::test]
async fn without_a_backup_dir_the_admin_page_says_backups_are_off() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let (status, list) = admin.get("/api/admin/backups").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!({"enabled": false, "keep": 7, "backups": []}));
    let (status, body) = admin.get("/api/admin/backups/latest").await;
    common::assert_error(&(status, body), StatusCode::NOT_FOUND, "not_found");
}

/// `confab ARGS` (with `env`) started and not waited for, to be signalled midway.
fn start_cli(args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = common::base_command();
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().expect("spawn confab")
}

/// Waits up to 20 s for `child` to exit; returns its status and what it printed.
fn finish(mut child: std::process::Child) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("confab did not exit within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut text = String::new();
    for pipe in [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn Read>),
    ]
    .into_iter()
    .flatten()
    {
        let mut pipe = pipe;
        let _ = pipe.read_to_string(&mut text);
    }
    (status, text)
}

/// Polls until `ready` holds, up to 20 s.
fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `ready` holds, then sends `signal` ("INT", "TERM") to `child`, which must still
/// be at work: the fixture is too small if it is not.
fn signal_when(child: &mut std::process::Child, signal: &str, ready: impl Fn() -> bool) {
    wait_until("the work", ready);
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "it finished before it could be interrupted: make the fixture bigger"
    );
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .expect("run kill(1)");
    assert!(status.success(), "kill -{signal}");
}

/// Attachments of `each_mb` MB in `data`, sparse, so they are made at once: a backup still
/// writes every byte of them (and a verify hashes them), which takes long enough to interrupt.
fn plant_big_attachments(data: &Path, count: u64, each_mb: u64) {
    for n in 0..count {
        let hash = format!("{n:064x}");
        let shard = data.join("blobs").join(&hash[..2]);
        std::fs::create_dir_all(&shard).expect("shard");
        let file = std::fs::File::create(shard.join(&hash)).expect("attachment");
        file.set_len(each_mb << 20).expect("set_len");
    }
}

/// Names in `dir` (none if it is gone), sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn exists_named(dir: &Path, prefix: &str) -> bool {
    names_in(dir).iter().any(|n| n.starts_with(prefix))
}

#[tokio::test]
async fn ctrl_c_or_sigterm_midway_leaves_no_temporary_files() {
    let work = temp_dir("confab-backup-");
    let data = stopped_office(work.path()).await;
    plant_big_attachments(&data, 8, 4);
    let out_dir = work.path().join("out");
    std::fs::create_dir(&out_dir).expect("out");

    // A backup of the stopped server, Ctrl-C'd while it writes.
    let file = out_dir.join("office.backup");
    let partial = out_dir.join("office.backup.tmp");
    let mut backup = start_cli(&["backup", arg(&file), "--data-dir", arg(&data)], &[]);
    signal_when(&mut backup, "INT", || partial.exists());
    let (status, out) = finish(backup);
    assert_eq!(status.code(), Some(130), "{out}");
    assert!(
        out.contains("interrupted by SIGINT") && out.contains("nothing was written"),
        "{out}"
    );
    assert_eq!(names_in(&out_dir), Vec::<String>::new(), "{out}");

    // The same, SIGTERM'd while the running server writes it for the command.
    let server = TestServer::start_in(&data);
    let mut backup = start_cli(&["backup", arg(&file), "--data-dir", arg(&data)], &[]);
    signal_when(&mut backup, "TERM", || partial.exists());
    let (status, out) = finish(backup);
    assert_eq!(status.code(), Some(143), "{out}");
    assert!(
        out.contains("the running server stopped the backup and removed its temporary files"),
        "{out}"
    );
    assert_eq!(names_in(&out_dir), Vec::<String>::new(), "{out}");

    // The server itself stopped while it writes one for the command: it cleans up first.
    let backup = start_cli(&["backup", arg(&file), "--data-dir", arg(&data)], &[]);
    wait_until("the server's backup", || partial.exists());
    assert!(server.stop().success());
    let (status, out) = finish(backup);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.contains("the server is shutting down") || out.contains("did not answer"),
        "{out}"
    );
    assert_eq!(names_in(&out_dir), Vec::<String>::new(), "{out}");

    // A whole backup, then its verify and its restore interrupted.
    let (ok, out) = cli(&["backup", arg(&file), "--data-dir", arg(&data)]);
    assert!(ok, "{out}");
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).expect("tmp");
    let mut verify = start_cli(
        &["backup", "--verify", arg(&file)],
        &[("TMPDIR", arg(&tmp))],
    );
    signal_when(&mut verify, "TERM", || exists_named(&tmp, "confab-verify-"));
    let (status, out) = finish(verify);
    assert_eq!(status.code(), Some(143), "{out}");
    assert!(out.contains("interrupted by SIGTERM"), "{out}");
    assert_eq!(names_in(&tmp), Vec::<String>::new(), "{out}");

    let restored = work.path().join("restored");
    let mut restore = start_cli(&["restore", arg(&file), "--data-dir", arg(&restored)], &[]);
    signal_when(&mut restore, "INT", || exists_named(&restored, ".restore-"));
    let (status, out) = finish(restore);
    assert_eq!(status.code(), Some(130), "{out}");
    assert!(out.contains("nothing was changed"), "{out}");
    assert_eq!(names_in(&restored), Vec::<String>::new(), "{out}");
}

#[tokio::test]
async fn a_backup_or_restore_that_fills_its_disk_midway_leaves_nothing_behind() {
    let Some(small) = Tmpfs::mount("16m") else {
        return;
    };
    let work = temp_dir("confab-backup-");
    let data = stopped_office(work.path()).await;
    plant_big_attachments(&data, 4, 8);
    let file = small.path().join("office.backup");
    for running in [false, true] {
        let server = running.then(|| TestServer::start_in(&data));
        let (ok, out) = cli(&["backup", arg(&file), "--data-dir", arg(&data)]);
        assert!(!ok, "{out}");
        assert_eq!(names_in(small.path()), Vec::<String>::new(), "{out}");
        if let Some(server) = server {
            assert!(server.stop().success());
        }
    }

    // A restore into a data directory with no room for the backup's attachments.
    let big = work.path().join("big.backup");
    let (ok, out) = cli(&["backup", arg(&big), "--data-dir", arg(&data)]);
    assert!(ok, "{out}");
    let restored = small.path().join("data");
    let (ok, out) = cli(&["restore", arg(&big), "--data-dir", arg(&restored)]);
    assert!(!ok && out.contains("nothing was changed"), "{out}");
    assert_eq!(names_in(&restored), Vec::<String>::new(), "{out}");

    // A verify whose temporary folder is full.
    let tmp = small.path().join("tmp");
    std::fs::create_dir(&tmp).expect("tmp");
    let full = std::fs::write(small.path().join("filler"), vec![0u8; 20 << 20]);
    assert!(full.is_err(), "the small filesystem is full");
    let verify = common::run_cli_env(&["backup", "--verify", arg(&big)], &[("TMPDIR", arg(&tmp))]);
    assert!(!verify.status.success());
    assert_eq!(names_in(&tmp), Vec::<String>::new());
}

/// What a killed backup, verify or restore left: the first bytes of a backup or a database,
/// untouched for `days`.
fn leftover(path: &Path, days: u64) {
    let start: &[u8] = if path.to_string_lossy().contains(".db.") || path.ends_with("confab.redb") {
        b"redb\x1a\x0a\xa9\x0d\x0a and the rest of a database"
    } else {
        b"CONFABBK\x01\0\0\0 and the rest of a backup"
    };
    std::fs::write(path, start).expect("write");
    untouched_for(path, days);
}

fn untouched_for(path: &Path, days: u64) {
    let when = SystemTime::now() - Duration::from_secs(days * 86_400);
    std::fs::File::open(path)
        .and_then(|f| f.set_modified(when))
        .expect("set mtime");
}

/// A killed run's work folder `dir/name` holding a database, `days` old.
fn leftover_folder(dir: &Path, name: &str, days: u64) {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).expect("mkdir");
    leftover(&folder.join("confab.redb"), days);
    untouched_for(&folder, days);
}

#[tokio::test]
async fn what_killed_runs_left_is_removed_by_the_next_run_once_a_day_old() {
    let work = temp_dir("confab-backup-");
    let data = stopped_office(work.path()).await;
    let out_dir = work.path().join("out");
    std::fs::create_dir(&out_dir).expect("out");
    let plant = || {
        for name in [
            "monday.backup.tmp",
            "monday.backup.db.tmp",
            "tuesday.backup.db.tmp.tmp",
        ] {
            leftover(&out_dir.join(name), 2);
        }
        leftover(&out_dir.join("today.backup.tmp"), 0);
        std::fs::write(out_dir.join("notes.tmp"), "an admin's own file").expect("write");
        untouched_for(&out_dir.join("notes.tmp"), 2);
    };
    let kept = |made: &str| {
        let mut kept = vec![
            made.to_owned(),
            "notes.tmp".into(),
            "today.backup.tmp".into(),
        ];
        kept.sort();
        kept
    };

    // A real one first: killed outright while it writes (a reboot, the OOM killer), then two
    // days pass. What it left starts like a backup or a database, whenever it was killed.
    plant_big_attachments(&data, 4, 4);
    let mut killed = start_cli(
        &[
            "backup",
            arg(&out_dir.join("killed.backup")),
            "--data-dir",
            arg(&data),
        ],
        &[],
    );
    let partial = out_dir.join("killed.backup.tmp");
    signal_when(&mut killed, "KILL", || partial.exists());
    finish(killed);
    std::fs::remove_dir_all(data.join("blobs").join("00")).expect("rm attachments");
    let left = names_in(&out_dir);
    assert!(left.contains(&"killed.backup.tmp".to_owned()), "{left:?}");
    for name in left {
        untouched_for(&out_dir.join(name), 2);
    }

    plant();
    let file = out_dir.join("wednesday.backup");
    let (ok, out) = cli(&["backup", arg(&file), "--data-dir", arg(&data)]);
    assert!(ok, "{out}");
    assert_eq!(
        names_in(&out_dir),
        kept("wednesday.backup"),
        "stopped server"
    );

    // Through the running server, which also removes a killed restore's work at start.
    leftover_folder(&data, ".restore-killed", 2);
    leftover_folder(&data, ".restore-running", 0);
    std::fs::remove_file(&file).expect("rm");
    plant();
    let server = TestServer::start_in(&data);
    let (ok, out) = cli(&["backup", arg(&file), "--data-dir", arg(&data)]);
    assert!(ok, "{out}");
    assert_eq!(
        names_in(&out_dir),
        kept("wednesday.backup"),
        "running server"
    );
    wait_until("removing the killed restore's folder", || {
        !exists_named(&data, ".restore-killed")
    });
    assert!(exists_named(&data, ".restore-running"), "a fresh one stays");
    assert!(server.stop().success());

    // The next restore, and the next verify in its temporary folder.
    leftover_folder(&data, ".restore-killed", 2);
    leftover_folder(&data, ".restore-running", 0);
    let (ok, out) = cli(&["restore", arg(&file), "--data-dir", arg(&data)]);
    assert!(ok, "{out}");
    assert!(!exists_named(&data, ".restore-killed"), "{out}");
    assert!(exists_named(&data, ".restore-running"), "{out}");

    let tmp = work.path().join("tmp");
    leftover_folder(&tmp, "confab-verify-killed", 2);
    leftover_folder(&tmp, "confab-verify-running", 0);
    let verify = common::run_cli_env(
        &["backup", "--verify", arg(&file)],
        &[("TMPDIR", arg(&tmp))],
    );
    assert!(verify.status.success(), "{}", said(&verify));
    assert_eq!(names_in(&tmp), ["confab-verify-running"]);
}
