//! Presence: who is online, announced once per user, with a grace period so reloads do not flicker.

mod common;

use std::time::{Duration, Instant};

use common::ws::Socket;
use common::{Client, json, now_secs};
use serde_json::Value;

/// The server waits 3 s after a user's last tab closes before announcing them offline.
const GRACE: Duration = Duration::from_secs(3);
/// Comfortably past the grace period, so a silent wait this long proves nothing was announced.
const PAST_GRACE: Duration = Duration::from_millis(4500);

/// `last_seen` of `user` in the directory (`GET /api/users`).
async fn directory_last_seen(viewer: &Client, user: &Client) -> Value {
    let (status, users) = viewer.get("/api/users").await;
    assert_eq!(status, 200, "{users}");
    users
        .as_array()
        .and_then(|list| list.iter().find(|u| u["id"] == user.id()))
        .unwrap_or_else(|| panic!("{} is in the directory: {users}", user.username()))["last_seen"]
        .clone()
}

fn online_ids(hello: &Value) -> Vec<i64> {
    hello["online"]
        .as_array()
        .unwrap_or_else(|| panic!("hello.online is an array: {hello}"))
        .iter()
        .filter_map(Value::as_i64)
        .collect()
}

#[tokio::test]
async fn coming_online_and_going_offline_are_announced_after_a_grace_period() {
    let (server, alice, bob) = common::alice_and_bob().await;
    assert_eq!(
        directory_last_seen(&alice, &bob).await,
        Value::Null,
        "bob has never connected"
    );
    let mut alice_tab = Socket::online(&server, &alice).await;
    alice_tab.drain(Duration::from_millis(300)).await;

    let bob_tab = Socket::online(&server, &bob).await;
    let arrived = alice_tab.next_frame().await;
    assert_eq!(arrived["type"], "presence", "{arrived}");
    assert_eq!(arrived["user"], bob.id(), "{arrived}");
    assert_eq!(arrived["online"], true, "{arrived}");

    let closed_at_secs = now_secs();
    let closed_at = Instant::now();
    bob_tab.close().await;
    let left = alice_tab
        .next_frame_within(GRACE + Duration::from_secs(3))
        .await
        .unwrap_or_else(|| panic!("no offline presence within {:?}", GRACE * 2));
    let waited = closed_at.elapsed();
    assert_eq!(left["type"], "presence", "{left}");
    assert_eq!(left["user"], bob.id(), "{left}");
    assert_eq!(left["online"], false, "{left}");
    assert!(
        waited >= GRACE - Duration::from_millis(500),
        "offline is announced only after the ~3 s grace period, came after {waited:?}"
    );
    let last_seen = left["last_seen"]
        .as_i64()
        .unwrap_or_else(|| panic!("offline presence carries last_seen in seconds: {left}"));
    assert!(
        (closed_at_secs - 2..=now_secs() + 1).contains(&last_seen),
        "last_seen {last_seen} is about when bob left ({closed_at_secs})"
    );

    let listed = directory_last_seen(&alice, &bob).await;
    let listed = listed
        .as_i64()
        .unwrap_or_else(|| panic!("GET /api/users has bob's last_seen: {listed}"));
    assert!(
        (last_seen - 1..=last_seen + 1).contains(&listed),
        "the directory's last_seen {listed} matches the presence frame's {last_seen}"
    );

    let mut alice_again = Socket::open(&server, &alice).await;
    let hello = alice_again.hello().await;
    assert!(
        !online_ids(&hello).contains(&bob.id()),
        "bob is no longer online: {hello}"
    );
}

#[tokio::test]
async fn a_page_reload_does_not_flicker_offline_and_online() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let mut alice_tab = Socket::online(&server, &alice).await;
    let bob_tab = Socket::online(&server, &bob).await;
    let arrived = alice_tab.next_of_type("presence").await;
    assert_eq!(arrived["online"], true, "{arrived}");
    alice_tab.drain(Duration::from_millis(300)).await;

    bob_tab.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut bob_reloaded = Socket::open(&server, &bob).await;
    let hello = bob_reloaded.hello().await;
    assert!(online_ids(&hello).contains(&alice.id()), "{hello}");

    alice_tab.expect_silence(PAST_GRACE).await;
}

#[tokio::test]
async fn a_user_with_two_tabs_comes_online_once_and_leaves_with_the_last_tab() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let mut alice_tab = Socket::online(&server, &alice).await;
    alice_tab.drain(Duration::from_millis(300)).await;

    let bob_desk = Socket::online(&server, &bob).await;
    let arrived = alice_tab.next_frame().await;
    assert_eq!(
        (&arrived["type"], &arrived["user"], &arrived["online"]),
        (&json!("presence"), &json!(bob.id()), &json!(true)),
        "bob comes online: {arrived}"
    );
    let bob_phone = Socket::online(&server, &bob).await;
    alice_tab.expect_silence(Duration::from_millis(500)).await;

    bob_desk.close().await;
    alice_tab.expect_silence(PAST_GRACE).await;
    let mut alice_other = Socket::open(&server, &alice).await;
    let hello = alice_other.hello().await;
    assert!(
        online_ids(&hello).contains(&bob.id()),
        "bob still has a tab open: {hello}"
    );

    bob_phone.close().await;
    let left = alice_tab
        .next_frame_within(GRACE + Duration::from_secs(3))
        .await
        .unwrap_or_else(|| panic!("no offline presence after bob's last tab closed"));
    assert_eq!(left["type"], "presence", "{left}");
    assert_eq!(left["user"], bob.id(), "{left}");
    assert_eq!(left["online"], false, "{left}");
}

/// A laptop lid closed mid-session: the socket stays open at the TCP level but nothing answers
/// the server's pings. The server must notice and announce the user offline within 60 s.
#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_dropped_within_a_minute() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let mut alice_tab = Socket::online(&server, &alice).await;
    // Bob's tab gets its hello, then is never polled again: no pongs, no frames.
    let bob_tab = Socket::online(&server, &bob).await;
    let came_online = alice_tab.next_frame().await;
    assert_eq!(came_online["online"], true, "{came_online}");

    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let gone = loop {
        assert!(
            Instant::now() < deadline,
            "bob was still online 60 s after his tab stopped answering"
        );
        // Reading keeps alice's own socket answering pings.
        if let Some(frame) = alice_tab.next_frame_within(Duration::from_secs(5)).await
            && frame["type"] == "presence"
            && frame["user"] == bob.id()
        {
            break frame;
        }
    };
    assert_eq!(gone["online"], false, "{gone}");
    assert!(
        started.elapsed() > Duration::from_secs(20),
        "dropped after {:?}: a quiet but live tab must survive a ping interval",
        started.elapsed()
    );
    drop(bob_tab);
}

/// The sidebar must not go stale: a colleague added or renamed by the administrator reaches
/// every open tab as a `user` frame, with only what the directory shows.
#[tokio::test]
async fn accounts_created_or_changed_by_the_admin_reach_every_open_tab() {
    let server = common::TestServer::start();
    let admin = common::setup_admin(&server).await;
    let alice = common::create_user(&admin, "alice").await;
    let mut alice_tab = Socket::online(&server, &alice).await;
    alice_tab.drain(Duration::from_millis(300)).await;

    let (status, created) = admin
        .post(
            "/api/admin/users",
            json!({"username": "carol", "display_name": "Carol"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let carol = alice_tab.next_of_type("user").await;
    assert_eq!(carol["user"]["username"], "carol", "{carol}");
    assert_eq!(carol["user"]["display_name"], "Carol", "{carol}");
    assert!(
        carol["user"].get("must_change_password").is_none(),
        "private fields stay private: {carol}"
    );

    let carol_id = created["user"]["id"].as_i64().expect("carol's id");
    let path = format!("/api/admin/users/{carol_id}");
    let (status, _) = admin
        .patch(&path, json!({"display_name": "Carol C.", "disabled": true}))
        .await;
    assert_eq!(status, 200);
    let changed = alice_tab.next_of_type("user").await;
    assert_eq!(changed["user"]["display_name"], "Carol C.", "{changed}");
    assert_eq!(changed["user"]["disabled"], true, "{changed}");
}
