//! Bad input, outsiders, floods, slow readers, refused upgrades: the hub stays correct and usable.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::metrics::wait_for_value;
use common::ws::{
    Closed, MAX_FRAME_BYTES, Socket, TCP_ESTABLISHED, dm_id, full_history, refused_upgrade,
    server_end_state, try_connect, ws_url,
};
use common::{
    StatusCode, TestServer, assert_error, create_room, create_user, create_user_raw, json, login,
    setup_admin,
};
use serde_json::Value;

const QUIET: Duration = Duration::from_millis(400);

/// What an error frame should say about the bad frame's `client_id`.
#[derive(Debug)]
enum Id {
    /// The frame had this (valid) client id, and the error names it.
    Echoed(&'static str),
    /// The frame had none, so neither does the error.
    Absent,
    /// The frame's client id was itself the problem; echoing it or not are both fine.
    Any,
}

#[tokio::test]
async fn every_bad_frame_gets_its_error_code_and_the_connection_stays_usable() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let bob = create_user(&admin, "bob").await;
    let carol = create_user(&admin, "carol").await;
    let (status, body) = admin
        .patch(
            &format!("/api/admin/users/{}", carol.id()),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "disable carol: {body}");
    let conv = dm_id(&alice, &bob);
    let mut tab = Socket::online(&server, &alice).await;
    tab.drain(QUIET).await;

    let long_id = "x".repeat(65);
    let cases: Vec<(&str, String, &str, Id)> = vec![
        ("not JSON", "{\"type\": \"send\",".to_owned(), "invalid_json", Id::Absent),
        ("a JSON string", "\"hello\"".to_owned(), "unknown_type", Id::Absent),
        ("an unknown type", json!({"type": "dance"}).to_string(), "unknown_type", Id::Absent),
        (
            "no type",
            json!({"to": bob.id(), "body": "hi", "client_id": "e-1"}).to_string(),
            "unknown_type",
            Id::Echoed("e-1"),
        ),
        (
            "no client_id",
            json!({"type": "send", "to": bob.id(), "body": "hi"}).to_string(),
            "invalid_frame",
            Id::Absent,
        ),
        (
            "neither to nor conversation",
            json!({"type": "send", "body": "hi", "client_id": "e-2"}).to_string(),
            "invalid_frame",
            Id::Echoed("e-2"),
        ),
        (
            "both to and conversation",
            json!({"type": "send", "to": bob.id(), "conversation": conv, "body": "hi", "client_id": "e-3"})
                .to_string(),
            "invalid_frame",
            Id::Echoed("e-3"),
        ),
        (
            "a number body",
            json!({"type": "send", "to": bob.id(), "body": 42, "client_id": "e-4"}).to_string(),
            "invalid_json",
            Id::Echoed("e-4"),
        ),
        (
            "a string to",
            json!({"type": "send", "to": "bob", "body": "hi", "client_id": "e-5"}).to_string(),
            "invalid_json",
            Id::Echoed("e-5"),
        ),
        (
            "an empty body",
            json!({"type": "send", "to": bob.id(), "body": "", "client_id": "e-6"}).to_string(),
            "empty_body",
            Id::Echoed("e-6"),
        ),
        (
            "a whitespace body",
            json!({"type": "send", "to": bob.id(), "body": " \n\t ", "client_id": "e-7"})
                .to_string(),
            "empty_body",
            Id::Echoed("e-7"),
        ),
        (
            "a 4001-character body",
            json!({"type": "send", "to": bob.id(), "body": "a".repeat(4001), "client_id": "e-8"})
                .to_string(),
            "body_too_long",
            Id::Echoed("e-8"),
        ),
        (
            "an empty client_id",
            json!({"type": "send", "to": bob.id(), "body": "hi", "client_id": ""}).to_string(),
            "invalid_client_id",
            Id::Any,
        ),
        (
            "a 65-character client_id",
            json!({"type": "send", "to": bob.id(), "body": "hi", "client_id": long_id})
                .to_string(),
            "invalid_client_id",
            Id::Any,
        ),
        (
            "a user that does not exist",
            json!({"type": "send", "to": 999_999, "body": "hi", "client_id": "e-9"}).to_string(),
            "no_such_user",
            Id::Echoed("e-9"),
        ),
        (
            "oneself",
            json!({"type": "send", "to": alice.id(), "body": "hi", "client_id": "e-10"})
                .to_string(),
            "cannot_message_self",
            Id::Echoed("e-10"),
        ),
        (
            "a disabled user",
            json!({"type": "send", "to": carol.id(), "body": "hi", "client_id": "e-11"})
                .to_string(),
            "no_such_user",
            Id::Echoed("e-11"),
        ),
    ];

    // Every case is tried, and all mismatches are reported together.
    let mut wrong = Vec::new();
    let mut stored = Vec::new();
    for (n, (what, frame, code, client_id)) in cases.into_iter().enumerate() {
        tab.send_text(frame).await;
        let error = tab.next_frame().await;
        let id_ok = match client_id {
            Id::Echoed(id) => error["client_id"] == id,
            Id::Absent => error.get("client_id").is_none(),
            Id::Any => true,
        };
        let has_message = error["message"].as_str().is_some_and(|m| !m.is_empty());
        if error["type"] != "error" || error["code"] != code || !id_ok || !has_message {
            wrong.push(format!(
                "{what}: expected error {code} (client_id {client_id:?}) with a message, got {error}"
            ));
        }
        let ok_id = format!("ok-{n}");
        stored.push(
            tab.send_acked(bob.id(), &format!("still here after {what}"), &ok_id)
                .await,
        );
    }

    let longest = tab.send_acked(bob.id(), &"é".repeat(4000), "ok-4000").await;
    assert_eq!(
        longest["body"].as_str().map(|b| b.chars().count()),
        Some(4000),
        "4,000 characters (8,000 bytes here) is allowed"
    );
    stored.push(longest);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        full_history(&alice, &conv).await,
        stored,
        "the bad frames stored nothing"
    );
    let (_, convs) = alice.get("/api/conversations").await;
    assert_eq!(
        common::dms_only(&convs).as_array().map(Vec::len),
        Some(1),
        "no DM opened with carol, a stranger, or oneself: {convs}"
    );
}

#[tokio::test]
async fn an_outsider_cannot_send_read_type_or_even_see_a_dm() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let bob = create_user(&admin, "bob").await;
    let mallory = create_user(&admin, "mallory").await;
    let conv = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    let private = alice_tab
        .send_acked(bob.id(), "the secret plan", "p-1")
        .await;

    let mut intruder = Socket::online(&server, &mallory).await;
    let hello = intruder.hello.clone();
    assert!(
        hello["conversations"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["id"] != conv)),
        "the DM is not in mallory's hello: {hello}"
    );
    alice_tab.drain(QUIET).await;
    bob_tab.drain(QUIET).await;
    intruder.drain(QUIET).await;

    intruder.send_msg(conv.as_str(), "let me in", "x-1").await;
    let error = intruder.error_with("not_a_member").await;
    assert_eq!(error["client_id"], "x-1", "{error}");
    intruder.mark_read(&conv, 1).await;
    intruder.error_with("not_a_member").await;
    intruder.typing(&conv).await;
    intruder.error_with("not_a_member").await;
    for made_up in ["dm:999998:999999", "room:lobby"] {
        intruder.send_msg(made_up, "anyone?", "x-2").await;
        intruder.error_with("not_a_member").await;
    }
    alice_tab.expect_silence(QUIET).await;
    bob_tab.expect_silence(QUIET).await;

    let got = mallory
        .get(&format!("/api/conversations/{conv}/messages"))
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found");
    let got = mallory
        .get(&format!("/api/conversations/{conv}/messages?after=0"))
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found");
    let (status, listed) = mallory.get("/api/conversations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(common::dms_only(&listed), json!([]), "mallory has no DMs");

    // Still usable: mallory can talk to alice in their own DM.
    let own = intruder.send_acked(alice.id(), "hi alice", "x-3").await;
    assert_eq!(own["conversation"], dm_id(&alice, &mallory), "{own}");
    assert_eq!(full_history(&bob, &conv).await, [private]);
}

#[tokio::test]
async fn a_frame_over_64_kib_closes_the_connection_with_1009() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let mut tab = Socket::online(&server, &alice).await;

    let padding = "a".repeat(MAX_FRAME_BYTES + 1024);
    tab.send_json(&json!({"type": "send", "to": bob.id(), "body": padding, "client_id": "big"}))
        .await;
    assert_eq!(tab.expect_close().await, Closed::Code(Some(1009)));

    let mut fresh = Socket::online(&server, &alice).await;
    fresh
        .send_acked(bob.id(), "sorry about that", "small")
        .await;
}

#[tokio::test]
async fn a_flood_of_frames_is_answered_with_rate_limited_and_nothing_is_lost_silently() {
    const FLOOD: usize = 150;
    let (server, alice, bob) = common::alice_and_bob().await;
    let conv = dm_id(&alice, &bob);
    let mut tab = Socket::online(&server, &alice).await;
    tab.drain(QUIET).await;

    for i in 0..FLOOD {
        tab.send_msg(bob.id(), &format!("spam {i}"), &format!("f-{i}"))
            .await;
    }
    let mut acked: HashMap<String, Value> = HashMap::new();
    let mut limited: Vec<Value> = Vec::new();
    while acked.len() + limited.len() < FLOOD {
        let frame = tab.next_frame().await;
        match (frame["type"].as_str(), frame["code"].as_str()) {
            (Some("ack"), _) => {
                let id = frame["client_id"].as_str().unwrap_or_default().to_owned();
                assert!(
                    acked.insert(id, frame.clone()).is_none(),
                    "acked twice: {frame}"
                );
            }
            (Some("error"), Some("rate_limited")) => limited.push(frame),
            (Some("presence"), _) => {}
            _ => panic!("a send is either acked or rate_limited, got {frame}"),
        }
    }
    assert!(
        limited.len() >= FLOOD - 80,
        "a burst of {FLOOD} frames mostly exceeds 60 + 20/s: only {} rate_limited",
        limited.len()
    );
    assert!(
        acked.len() >= 50,
        "the burst allowance is 60, acked {}",
        acked.len()
    );
    assert_eq!(
        full_history(&alice, &conv).await.len(),
        acked.len(),
        "rate-limited sends are dropped, acked ones stored"
    );
    let unnamed: Vec<&Value> = limited
        .iter()
        .filter(|f| {
            f["client_id"]
                .as_str()
                .is_none_or(|id| acked.contains_key(id))
        })
        .collect();
    assert!(
        unnamed.is_empty(),
        "each rate_limited answer names the send it dropped ({} of {} do not), e.g. {}",
        unnamed.len(),
        limited.len(),
        unnamed[0]
    );

    tokio::time::sleep(Duration::from_millis(1500)).await;
    tab.send_acked(bob.id(), "sorry, my cat sat on the keyboard", "calm")
        .await;
}

/// One of bob's tabs: sends big messages to carol as fast as the rate limit allows until `stop`,
/// reading everything that arrives meanwhile; returns the socket and how many it sent.
async fn keep_sending(
    mut tab: Socket,
    tab_no: usize,
    to: i64,
    body: Arc<String>,
    stop: Arc<AtomicBool>,
    sent_total: Arc<AtomicUsize>,
) -> (Socket, usize) {
    // Stay under the server's 20 frames/s, burst 60.
    const BURST: f64 = 50.0;
    const PER_SECOND: f64 = 18.0;
    let mut credit = BURST;
    let mut last = Instant::now();
    let (mut sent, mut acked) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        credit = (credit + last.elapsed().as_secs_f64() * PER_SECOND).min(BURST);
        last = Instant::now();
        if credit >= 1.0 {
            credit -= 1.0;
            tab.send_msg(to, &body, &format!("big-{tab_no}-{sent}"))
                .await;
            sent += 1;
            sent_total.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if let Some(frame) = tab.next_frame_within(Duration::from_millis(5)).await {
            if frame["type"] == "ack" {
                acked += 1;
            }
            assert_ne!(frame["type"], "error", "bob's tab {tab_no}: {frame}");
        }
    }
    while acked < sent {
        let frame = tab.next_frame().await;
        assert_ne!(frame["type"], "error", "bob's tab {tab_no}: {frame}");
        if frame["type"] == "ack" {
            acked += 1;
        }
    }
    (tab, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_never_reads_is_cut_off_while_other_connections_keep_up() {
    const SENDER_TABS: usize = 6;
    const MAX_MESSAGES: usize = 4000;
    let server = common::metrics::server_with_token(&[]);
    let admin = setup_admin(&server).await;
    let bob = create_user(&admin, "bob").await;
    let carol = create_user(&admin, "carol").await;

    // Carol's stalled tab: its hello and everything after stay unread until the end.
    let (mut stalled, stalled_addr) = Socket::open_with_tiny_window(&server, &carol).await;
    let mut carol_reader = Socket::online(&server, &carol).await;
    let mut bob_tabs = Vec::new();
    for _ in 0..SENDER_TABS {
        bob_tabs.push(Socket::online(&server, &bob).await);
    }

    let marker = "that was the last one";
    let reader = tokio::spawn(async move {
        let mut received = 0;
        loop {
            let frame = carol_reader
                .next_frame_within(Duration::from_secs(60))
                .await
                .expect("carol's reading tab keeps receiving");
            if frame["type"] != "message" {
                continue;
            }
            if frame["message"]["body"] == marker {
                return (received, Instant::now());
            }
            received += 1;
        }
    });

    // 4,000 four-byte characters: the longest body, about 16 KB per frame.
    let body = Arc::new("\u{1F600}".repeat(4000));
    let stop = Arc::new(AtomicBool::new(false));
    let sent_total = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = bob_tabs
        .into_iter()
        .enumerate()
        .map(|(n, tab)| {
            tokio::spawn(keep_sending(
                tab,
                n,
                carol.id(),
                body.clone(),
                stop.clone(),
                sent_total.clone(),
            ))
        })
        .collect();

    let started = Instant::now();
    while server_end_state(server.addr(), stalled_addr) == Some(TCP_ESTABLISHED) {
        let sent = sent_total.load(Ordering::Relaxed);
        if sent >= MAX_MESSAGES {
            stop.store(true, Ordering::Relaxed);
            let metrics = common::metrics::scrape(&server, Some(common::metrics::TOKEN)).await;
            panic!(
                "the server still holds the connection of a client that read nothing, after \
                 {sent} messages of 16 KB in {:?} (the server counts {} slow readers closed and \
                 {} sockets open)",
                started.elapsed(),
                metrics.value("confab_slow_consumers_closed_total"),
                metrics.value("confab_websockets_open"),
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    let mut tabs = Vec::new();
    for sender in senders {
        let (tab, sent) = sender.await.expect("sender task");
        total += sent;
        tabs.push(tab);
    }

    // Carol's other tab got every message, and still gets the next one at once.
    let last = tabs[0].send_acked(carol.id(), marker, "marker").await;
    let acked_at = Instant::now();
    let (received, marker_at) = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("carol's reading tab got the marker")
        .expect("reader task");
    assert_eq!(
        received, total,
        "carol's reading tab got all {total} messages"
    );
    assert!(
        marker_at.saturating_duration_since(acked_at) < Duration::from_secs(1),
        "carol's reading tab got {last} promptly"
    );

    let closed = stalled.closed_within(Duration::from_secs(20)).await;
    let delivered = stalled
        .skipped
        .iter()
        .filter(|f| f["type"] == "message")
        .count();
    assert!(
        matches!(closed, Closed::Code(Some(1008)) | Closed::Dropped(_)),
        "a client that stops reading is closed with 1008 (or dropped), got {closed:?}"
    );
    assert!(
        delivered < total,
        "the stalled tab was cut off before all {total} messages ({delivered} delivered)"
    );
    let metrics = common::metrics::scrape(&server, Some(common::metrics::TOKEN)).await;
    assert_eq!(
        metrics.value("confab_slow_consumers_closed_total"),
        1.0,
        "the cut-off is counted, once"
    );
}

/// A client that does not read even its `hello` (a large one here: the last message of each of
/// its rooms) is not held forever: ending its session lets the connection go.
#[tokio::test]
async fn a_client_stuck_before_its_hello_is_let_go_when_its_session_ends() {
    const ROOMS: usize = 320;
    let server = common::metrics::server_with_token(&["--frame-rate", "1000"]);
    let admin = setup_admin(&server).await;
    let bob = create_user(&admin, "bob").await;
    let carol = create_user(&admin, "carol").await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    // Rooms whose last message is about 16 KB: carol's hello (about 5 MB) is more than the
    // sockets between her and the server buffer (Linux allows a socket at most 4 MB by default).
    let names: Vec<String> = (0..ROOMS).map(|n| format!("Room {n}")).collect();
    let members = [&carol];
    let rooms = futures_util::future::join_all(
        names
            .iter()
            .map(|name| create_room(&bob, name, "private", &members)),
    )
    .await;
    let body = "\u{1F600}".repeat(4000);
    for (n, room) in rooms.iter().enumerate() {
        bob_tab
            .send_msg(room.as_str(), &body, &format!("long-{n}"))
            .await;
    }
    for n in 0..ROOMS {
        bob_tab.ack_for(&format!("long-{n}")).await;
    }

    let (_stalled, stalled_addr) = Socket::open_with_tiny_window(&server, &carol).await;
    let open = "confab_websockets_open";
    wait_for_value(&server, open, 2.0).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        server_end_state(server.addr(), stalled_addr),
        Some(TCP_ESTABLISHED),
        "the hello is still being written"
    );

    carol.logout().await;
    wait_for_value(&server, open, 1.0).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while server_end_state(server.addr(), stalled_addr) == Some(TCP_ESTABLISHED) {
        assert!(
            Instant::now() < deadline,
            "the server still holds the connection of a signed-out client stuck in its hello"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Bob, meanwhile, was not held up.
    bob_tab.send_acked(carol.id(), "still here", "after").await;
}

#[tokio::test]
async fn upgrades_from_a_foreign_origin_or_without_a_session_are_refused() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let bearer = format!("Bearer {}", alice.token);
    let cookie = format!("confab_session={}", alice.token);
    let own_origin = server.origin();
    let evil = "http://evil.example";

    let refused = refused_upgrade(&server, &[]).await;
    assert_eq!(
        (refused.status, refused.code()),
        (401, "unauthorized"),
        "{refused:?}"
    );
    let refused = refused_upgrade(&server, &[("authorization", "Bearer not.a.jwt")]).await;
    assert_eq!(
        (refused.status, refused.code()),
        (401, "unauthorized"),
        "{refused:?}"
    );
    let refused = refused_upgrade(&server, &[("authorization", &bearer), ("origin", evil)]).await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "bad_origin"),
        "{refused:?}"
    );
    let refused = refused_upgrade(&server, &[("cookie", &cookie), ("origin", evil)]).await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "bad_origin"),
        "{refused:?}"
    );
    let refused = refused_upgrade(&server, &[("cookie", &cookie)]).await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "bad_origin"),
        "with the cookie, the Origin is required: {refused:?}"
    );
    match try_connect(&ws_url(&server, "?token=garbage"), &[]).await {
        Ok(_) => panic!("a forged ?token= was accepted"),
        Err(refused) => assert_eq!(refused.status, 401, "{refused:?}"),
    }

    type Headers<'a> = Vec<(&'a str, &'a str)>;
    let allowed: [(&str, Headers, String); 4] = [
        (
            "bearer",
            vec![("authorization", &bearer)],
            ws_url(&server, ""),
        ),
        (
            "bearer from the own origin",
            vec![("authorization", &bearer), ("origin", &own_origin)],
            ws_url(&server, ""),
        ),
        (
            "cookie from the own origin",
            vec![("cookie", &cookie), ("origin", &own_origin)],
            ws_url(&server, ""),
        ),
        (
            "?token=",
            vec![],
            ws_url(&server, &format!("?token={}", alice.token)),
        ),
    ];
    for (how, headers, url) in allowed {
        match try_connect(&url, &headers).await {
            Ok(mut socket) => {
                let hello = socket.hello().await;
                assert_eq!(hello["user"]["id"], alice.id(), "{how}: {hello}");
            }
            Err(refused) => panic!("{how} was refused: {refused:?}"),
        }
    }

    // A user still on a temporary password must change it before chatting.
    let temporary = create_user_raw(&admin, "dave").await;
    let (status, body, _) = login(&server, "dave", &temporary).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let dave_bearer = format!("Bearer {}", body["token"].as_str().unwrap_or_default());
    let refused = refused_upgrade(&server, &[("authorization", &dave_bearer)]).await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "password_change_required"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn ending_a_session_closes_its_sockets_with_4001_and_a_disabled_user_cannot_reconnect() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let bob = create_user(&admin, "bob").await;
    let carol = create_user(&admin, "carol").await;
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut bob_desk = Socket::online(&server, &bob).await;
    let mut bob_phone = Socket::online(&server, &bob).await;
    let mut carol_tab = Socket::online(&server, &carol).await;

    let (status, body) = admin
        .patch(
            &format!("/api/admin/users/{}", bob.id()),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for tab in [&mut bob_desk, &mut bob_phone] {
        assert_eq!(tab.expect_close().await, Closed::Code(Some(4001)));
    }
    let refused = refused_upgrade(
        &server,
        &[("authorization", &format!("Bearer {}", bob.token))],
    )
    .await;
    assert!(
        matches!(
            (refused.status, refused.code()),
            (401, "unauthorized") | (403, "account_disabled")
        ),
        "a disabled user's revoked session cannot open a socket: {refused:?}"
    );
    alice_tab.send_msg(bob.id(), "bob?", "a-1").await;
    alice_tab.error_with("no_such_user").await;

    carol.logout().await;
    assert_eq!(carol_tab.expect_close().await, Closed::Code(Some(4001)));

    let (status, body) = admin
        .post_empty(&format!("/api/admin/users/{}/reset-password", alice.id()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(alice_tab.expect_close().await, Closed::Code(Some(4001)));
}

/// `--frame-rate` raises the per-connection limit for integrations and load tests.
#[tokio::test]
async fn the_frame_rate_is_a_setting() {
    const BURST: usize = 150;
    let server = TestServer::start_with(&["--frame-rate", "100"], None);
    let admin = common::setup_admin(&server).await;
    let alice = common::create_user(&admin, "alice").await;
    let bob = common::create_user(&admin, "bob").await;
    let mut tab = Socket::online(&server, &alice).await;
    for i in 0..BURST {
        tab.send_msg(bob.id(), &format!("fast {i}"), &format!("r-{i}"))
            .await;
    }
    // 100/s with bursts of 300: all 150 go through.
    for i in 0..BURST {
        tab.ack_for(&format!("r-{i}")).await;
    }
    let invalid = common::run_cli(&["--frame-rate", "0", "--data-dir", "/nonexistent"]);
    assert!(!invalid.status.success());
}
