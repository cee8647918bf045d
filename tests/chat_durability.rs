//! Durability: an ack means the message is on disk, through crashes, restarts and retries.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ws::{Closed, Socket, dm_id, full_history, same_session_on, send_frame, seq};
use common::{Client, TestServer};
use serde_json::Value;
use tokio::sync::Notify;

/// 300 sends pipelined over 10 tabs of 30: the server's rate limit (bursts of 60 per
/// connection) would drop most of them from a single tab.
const TABS: usize = 10;
const PER_TAB: usize = 30;
const SENDS: usize = TABS * PER_TAB;

fn client_id(tab: usize, i: usize) -> String {
    format!("crash-{tab}-{i}")
}

/// Every third message mentions bob, so room mention counts are tested through crashes too.
fn body_of(client_id: &str) -> String {
    if client_id.ends_with(['0', '3', '6', '9']) {
        format!("@bob message {client_id}")
    } else {
        format!("message {client_id}")
    }
}

/// Sends every one of `SENDS` messages again over fresh tabs and returns the acks by client id.
async fn send_all(server: &TestServer, alice: &Client, to: &Value) -> BTreeMap<String, Value> {
    let mut tasks = Vec::new();
    for tab in 0..TABS {
        let mut socket = Socket::online(server, alice).await;
        let to = to.clone();
        tasks.push(tokio::spawn(async move {
            let ids: Vec<String> = (0..PER_TAB).map(|i| client_id(tab, i)).collect();
            for id in &ids {
                socket
                    .send_json(&send_frame(to.clone(), &body_of(id), id))
                    .await;
            }
            let mut acks = Vec::new();
            for id in ids {
                acks.push((id.clone(), socket.ack_for(&id).await["message"].clone()));
            }
            acks
        }));
    }
    let mut acks = BTreeMap::new();
    for task in tasks {
        acks.extend(task.await.expect("sending tab"));
    }
    acks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acked_message_survives_a_crash_mid_burst_exactly_once() {
    let (mut crashed, alice, bob) = common::alice_and_bob().await;
    let conv = dm_id(&alice, &bob);
    let to = Value::from(bob.id());
    let (server, acked) = crash_mid_burst(&mut crashed, &alice, &to).await;
    let alice = same_session_on(&server, &alice);
    assert_history_holds_the_acked_once(&alice, &conv, &acked).await;

    // The client retries everything it had sent: acked ones come back with their original ack,
    // and the rest are stored once, still gapless.
    let retried = send_all(&server, &alice, &to).await;
    for (id, message) in &acked {
        assert_eq!(
            &retried[id], message,
            "the retry of {id} returns its original ack"
        );
    }
    let history = full_history(&alice, &conv).await;
    let seqs: Vec<u64> = history.iter().map(seq).collect();
    assert_eq!(seqs, (1..=SENDS as u64).collect::<Vec<u64>>());
    let mut retried: Vec<Value> = retried.into_values().collect();
    retried.sort_by_key(seq);
    assert_eq!(history, retried, "history holds each of the {SENDS} once");
}

/// The same crash with the smallest page cache an operator may set (`--db-cache 1MB`): redb
/// then writes pages out before the commit and reads most pages back from the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_smallest_database_cache_loses_nothing_in_a_crash() {
    let server = TestServer::start_with(&["--db-cache", "1MB"], None);
    let (mut crashed, alice, bob) = common::alice_and_bob_on(server).await;
    let conv = dm_id(&alice, &bob);
    let (server, acked) = crash_mid_burst(&mut crashed, &alice, &Value::from(bob.id())).await;
    let alice = same_session_on(&server, &alice);
    assert_history_holds_the_acked_once(&alice, &conv, &acked).await;
}

/// The same crash in a room: nothing acked is lost or doubled, and the other members' unread
/// and mention counts match the history exactly after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_in_a_busy_room_loses_no_acked_message_and_keeps_counts_exact() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let (status, room) = alice
        .post(
            "/api/rooms",
            serde_json::json!({"name": "Busy", "visibility": "open", "members": [bob.id()]}),
        )
        .await;
    assert_eq!(status, 201, "{room}");
    let conv = room["id"].as_str().expect("room id").to_owned();
    let (mut crashed, target) = (server, Value::from(conv.clone()));
    let (server, acked) = crash_mid_burst(&mut crashed, &alice, &target).await;
    let alice = same_session_on(&server, &alice);
    let history = assert_history_holds_the_acked_once(&alice, &conv, &acked).await;

    let bob = same_session_on(&server, &bob);
    let (_, list) = bob.get("/api/conversations").await;
    let summary = list
        .as_array()
        .and_then(|l| l.iter().find(|c| c["id"] == conv.as_str()))
        .expect("bob's room");
    let mentions = history
        .iter()
        .filter(|m| m["body"].as_str().is_some_and(|b| b.starts_with("@bob")))
        .count();
    assert_eq!(
        summary["unread"],
        history.len(),
        "every stored message is unread for bob"
    );
    assert_eq!(
        summary["mentions"], mentions,
        "every stored @bob counts once"
    );
    assert!(mentions > 0);
}

/// Sends `SENDS` messages from 10 tabs of alice to `to` and SIGKILLs the server mid-burst;
/// returns a server restarted on the same data (which `server` keeps owning) and what was
/// acked before the crash.
async fn crash_mid_burst(
    server: &mut TestServer,
    alice: &Client,
    to: &Value,
) -> (TestServer, BTreeMap<String, Value>) {
    const KILL_AFTER: usize = 100;
    // Each tab sends a few at once, then one every 60 ms (under the 20/s limit): the burst lasts
    // about 1.5 s, so the crash at 100 acks lands while sends are still arriving.
    const HEAD_START: usize = 5;
    const PACE: Duration = Duration::from_millis(60);

    let mut tabs = Vec::new();
    for _ in 0..TABS {
        tabs.push(Socket::online(server, alice).await);
    }
    let acked: Arc<Mutex<BTreeMap<String, Value>>> = Arc::default();
    let hundred_acked = Arc::new(Notify::new());
    let mut tasks = Vec::new();
    for (tab, mut socket) in tabs.into_iter().enumerate() {
        let acked = acked.clone();
        let hundred_acked = hundred_acked.clone();
        let to = to.clone();
        tasks.push(tokio::spawn(async move {
            let mut sent = 0;
            let mut next_send = Instant::now();
            // Send on schedule and read acks in between, until the crash ends the connection.
            loop {
                if sent < PER_TAB && Instant::now() >= next_send {
                    let id = client_id(tab, sent);
                    if socket
                        .try_send_json(&send_frame(to.clone(), &body_of(&id), &id))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    sent += 1;
                    if sent >= HEAD_START {
                        next_send = Instant::now() + PACE;
                    }
                    continue;
                }
                let wait = if sent < PER_TAB {
                    next_send.saturating_duration_since(Instant::now())
                } else {
                    Duration::from_secs(10)
                };
                match socket.try_next_frame(wait).await {
                    Err(_crashed) => return,
                    Ok(Some(frame)) if frame["type"] == "ack" => {
                        let id = frame["client_id"].as_str().unwrap_or_default().to_owned();
                        let mut acked = acked.lock().expect("acks lock");
                        acked.insert(id, frame["message"].clone());
                        if acked.len() >= KILL_AFTER {
                            hundred_acked.notify_one();
                        }
                    }
                    Ok(Some(frame)) => assert_ne!(frame["type"], "error", "{frame}"),
                    Ok(None) if sent < PER_TAB => {}
                    Ok(None) => panic!("tab {tab}: neither acks nor a crash within 10 s"),
                }
            }
        }));
    }
    tokio::time::timeout(Duration::from_secs(30), hundred_acked.notified())
        .await
        .expect("100 acks within 30 s");
    server.kill();
    for task in tasks {
        task.await.expect("tab task");
    }
    let acked = std::mem::take(&mut *acked.lock().expect("acks lock"));
    assert!(
        (KILL_AFTER..SENDS).contains(&acked.len()),
        "the crash came mid-burst: {} of {SENDS} acked",
        acked.len()
    );

    (TestServer::start_in(&server.data_dir()), acked)
}

/// After the crash: seqs gapless, nothing twice, every acked message exactly as acked.
async fn assert_history_holds_the_acked_once(
    alice: &Client,
    conv: &str,
    acked: &BTreeMap<String, Value>,
) -> Vec<Value> {
    let history = full_history(alice, conv).await;
    let seqs: Vec<u64> = history.iter().map(seq).collect();
    assert_eq!(
        seqs,
        (1..=history.len() as u64).collect::<Vec<u64>>(),
        "seqs stay gapless through a crash"
    );
    let bodies: HashSet<&str> = history.iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(bodies.len(), history.len(), "no message stored twice");
    for (id, message) in acked {
        let stored: Vec<&Value> = history
            .iter()
            .filter(|m| m["body"] == body_of(id))
            .collect();
        assert_eq!(
            stored,
            [message],
            "acked {id} is in history exactly once, as acked"
        );
    }
    history
}

#[tokio::test]
async fn a_graceful_stop_says_1001_and_loses_nothing() {
    let (mut server, alice, bob) = common::alice_and_bob().await;
    let conv = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    let mut sent = Vec::new();
    for n in 1..=5 {
        sent.push(
            alice_tab
                .send_acked(
                    bob.id(),
                    &format!("before the update {n}"),
                    &format!("g-{n}"),
                )
                .await,
        );
    }

    server.signal_term();
    for tab in [&mut alice_tab, &mut bob_tab] {
        assert_eq!(
            tab.expect_close().await,
            Closed::Code(Some(1001)),
            "shutting down is announced with 1001 so clients reconnect"
        );
    }
    let exit = server.wait_exit(Duration::from_secs(5));
    assert!(
        exit.is_some_and(|status| status.success()),
        "SIGTERM ends the server cleanly: {exit:?}"
    );

    let server = TestServer::start_in(&server.data_dir());
    let bob = same_session_on(&server, &bob);
    assert_eq!(full_history(&bob, &conv).await, sent);
    let mut bob_back = Socket::online(&server, &bob).await;
    let summary = &bob_back.hello["conversations"][0];
    assert_eq!(summary["last_seq"], 5, "{summary}");
    bob_back
        .send_acked(conv.as_str(), "back online", "g-6")
        .await;
}
