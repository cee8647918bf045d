//! Live delivery: who gets which frame, DM ids, gapless seqs and idempotent sends.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::ws::{FRAME_BURST, Socket, dm_id, full_history, seq};
use common::{TestServer, create_user, json, now_millis, setup_admin};
use serde_json::Value;

/// Long enough for a frame that is on its way to arrive on loopback.
const QUIET: Duration = Duration::from_millis(400);

/// Reads past the presence frames that opening tabs causes, so later reads see only what follows.
async fn settle(tabs: &mut [&mut Socket]) {
    for tab in tabs.iter_mut() {
        tab.drain(QUIET).await;
    }
}

fn frames_of_type<'a>(frames: &'a [Value], kind: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["type"] == kind).collect()
}

#[tokio::test]
async fn every_connection_starts_with_a_hello_naming_the_user_who_is_online_and_their_dms() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let mut alice_tab = Socket::online(&server, &alice).await;

    let mut bob_tab = Socket::open(&server, &bob).await;
    let hello = bob_tab.next_frame().await;
    assert_eq!(hello["type"], "hello", "first frame: {hello}");
    assert_eq!(hello["user"]["id"], bob.id(), "{hello}");
    assert_eq!(hello["user"]["username"], "bob", "{hello}");
    assert_eq!(hello["user"]["role"], "member", "{hello}");
    let online = hello["online"]
        .as_array()
        .unwrap_or_else(|| panic!("hello.online is an array: {hello}"));
    assert!(
        online.contains(&json!(alice.id())),
        "alice has a tab open, so she is online: {hello}"
    );
    assert_eq!(
        common::dms_only(&hello["conversations"]),
        json!([]),
        "bob has no conversations yet"
    );

    let sent = alice_tab
        .send_acked(bob.id(), "welcome aboard", "w-1")
        .await;

    // A second tab (or a reconnection) gets a fresh hello with the conversation in it.
    let mut bob_phone = Socket::open(&server, &bob).await;
    let hello = bob_phone.hello().await;
    let (status, listed) = bob.get("/api/conversations").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        hello["conversations"], listed,
        "hello.conversations is the same list as GET /api/conversations"
    );
    let summary = &hello["conversations"][0];
    assert_eq!(summary["id"], dm_id(&alice, &bob), "{summary}");
    assert_eq!(summary["kind"], "dm", "{summary}");
    let mut members: Vec<i64> = summary["members"]
        .as_array()
        .unwrap_or_else(|| panic!("members is an array: {summary}"))
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    members.sort_unstable();
    let mut expected = vec![alice.id(), bob.id()];
    expected.sort_unstable();
    assert_eq!(members, expected, "{summary}");
    assert_eq!(summary["last_seq"], 1, "{summary}");
    assert_eq!(summary["read_seq"], 0, "{summary}");
    assert_eq!(summary["unread"], 1, "{summary}");
    assert_eq!(summary["last_message"], sent, "{summary}");
    assert_eq!(
        summary["reads"],
        json!([{"user": alice.id(), "seq": 1}]),
        "sending marks read for the sender, and reads lists only the other member: {summary}"
    );
}

#[tokio::test]
async fn a_message_reaches_every_other_tab_and_the_sender_gets_only_its_ack() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let conv = dm_id(&alice, &bob);
    let mut alice_desk = Socket::online(&server, &alice).await;
    let mut alice_laptop = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    settle(&mut [&mut alice_desk, &mut alice_laptop, &mut bob_tab]).await;

    let before = now_millis();
    let ack = alice_desk
        .send_acked(bob.id(), "lunch at noon?", "a-1")
        .await;
    let after = now_millis();
    assert_eq!(ack["conversation"], conv, "{ack}");
    assert_eq!(ack["seq"], 1, "{ack}");
    assert_eq!(ack["from"], alice.id(), "{ack}");
    assert_eq!(ack["body"], "lunch at noon?", "{ack}");
    let sent_at = ack["sent_at"].as_i64().unwrap_or_default();
    assert!(
        (before - 1000..=after + 1000).contains(&sent_at),
        "sent_at is Unix milliseconds of the send: {sent_at} not in {before}..{after}"
    );

    for (who, tab) in [("alice's laptop", &mut alice_laptop), ("bob", &mut bob_tab)] {
        let frame = tab.next_frame().await;
        assert_eq!(frame["type"], "message", "{who} got {frame}");
        assert_eq!(frame["message"], ack, "{who} got the acked message");
    }
    let echoed = alice_desk.drain(QUIET).await;
    assert!(
        frames_of_type(&echoed, "message").is_empty(),
        "the sending tab gets the ack, not a message copy: {echoed:?}"
    );

    let reply = bob_tab
        .send_acked(conv.as_str(), "yes, see you there", "b-1")
        .await;
    assert_eq!(reply["seq"], 2, "{reply}");
    assert_eq!(reply["from"], bob.id(), "{reply}");
    for (who, tab) in [
        ("alice's desk", &mut alice_desk),
        ("alice's laptop", &mut alice_laptop),
    ] {
        let frame = tab.next_frame().await;
        assert_eq!(frame["type"], "message", "{who} got {frame}");
        assert_eq!(frame["message"], reply, "{who} got bob's reply");
    }
    let echoed = bob_tab.drain(QUIET).await;
    assert!(
        frames_of_type(&echoed, "message").is_empty(),
        "bob's only tab sent the reply, so it gets nothing but the ack: {echoed:?}"
    );
}

#[tokio::test]
async fn a_dm_has_one_canonical_id_whoever_opens_it_and_both_address_forms_reach_it() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let bob = create_user(&admin, "bob").await;
    let carol = create_user(&admin, "carol").await;
    let (low, high) = if alice.id() < bob.id() {
        (&alice, &bob)
    } else {
        (&bob, &alice)
    };
    let conv = format!("dm:{}:{}", low.id(), high.id());
    let mut low_tab = Socket::online(&server, low).await;
    let mut high_tab = Socket::online(&server, high).await;

    // The higher id opens the DM; the id still puts the lower id first.
    let first = high_tab.send_acked(low.id(), "hi", "h-1").await;
    assert_eq!(first["conversation"], conv, "{first}");
    let by_conversation = low_tab.send_acked(conv.as_str(), "hello", "l-1").await;
    assert_eq!(by_conversation["conversation"], conv, "{by_conversation}");
    assert_eq!(by_conversation["seq"], 2, "{by_conversation}");
    let by_user = low_tab.send_acked(high.id(), "how are you?", "l-2").await;
    assert_eq!(by_user["conversation"], conv, "{by_user}");
    assert_eq!(by_user["seq"], 3, "{by_user}");

    // The lower id opening a DM gets the same shape.
    let (carol_low, carol_high) = (alice.id().min(carol.id()), alice.id().max(carol.id()));
    let mut alice_tab = Socket::online(&server, &alice).await;
    let opened = alice_tab.send_acked(carol.id(), "welcome", "a-1").await;
    assert_eq!(
        opened["conversation"],
        format!("dm:{carol_low}:{carol_high}"),
        "{opened}"
    );

    for client in [low, high] {
        let (status, listed) = client.get("/api/conversations").await;
        assert_eq!(status, 200, "{listed}");
        let ids: Vec<&Value> = listed
            .as_array()
            .unwrap_or_else(|| panic!("a list: {listed}"))
            .iter()
            .map(|c| &c["id"])
            .filter(|id| **id == conv)
            .collect();
        assert_eq!(ids.len(), 1, "exactly one DM between the two: {listed}");
    }
    let history = full_history(&bob, &conv).await;
    let seqs: Vec<u64> = history.iter().map(seq).collect();
    assert_eq!(seqs, [1, 2, 3], "{history:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_from_both_sides_get_gapless_seqs() {
    // Each side pipelines 500 sends without waiting for acks. The server allows bursts of 60
    // frames per connection, so each side spreads its sends over 10 tabs of 50.
    const TABS: usize = 10;
    const PER_TAB: usize = 50;
    const TOTAL: usize = 2 * TABS * PER_TAB;
    const { assert!(PER_TAB < FRAME_BURST) };

    let (server, alice, bob) = common::alice_and_bob().await;
    let conv = dm_id(&alice, &bob);
    let mut tabs = Vec::new();
    for (who, client) in [("alice", &alice), ("bob", &bob)] {
        for tab in 0..TABS {
            tabs.push((who, tab, Socket::online(&server, client).await));
        }
    }

    let mut tasks = Vec::new();
    for (who, tab, mut socket) in tabs {
        let conv = conv.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_TAB {
                let client_id = format!("{who}-{tab}-{i}");
                socket
                    .send_msg(conv.as_str(), &format!("{client_id} says hi"), &client_id)
                    .await;
            }
            // Every tab sees each message exactly once: its own as acks, all others as messages.
            let mut acked = Vec::new();
            let mut seen = Vec::new();
            while seen.len() < TOTAL {
                let frame = socket.next_frame().await;
                match frame["type"].as_str() {
                    Some("ack") => {
                        acked.push(frame["message"].clone());
                        seen.push(frame["message"].clone());
                    }
                    Some("message") => seen.push(frame["message"].clone()),
                    Some("error") => panic!("{who} tab {tab}: {frame}"),
                    _ => {}
                }
            }
            let extra: Vec<Value> = socket
                .drain(QUIET)
                .await
                .into_iter()
                .filter(|f| f["type"] == "ack" || f["type"] == "message")
                .collect();
            assert!(extra.is_empty(), "{who} tab {tab} got more: {extra:?}");
            (who, tab, acked, seen)
        }));
    }

    let mut all_acked = Vec::new();
    for task in tasks {
        let (who, tab, acked, seen) = task.await.expect("tab task");
        assert_eq!(acked.len(), PER_TAB, "{who} tab {tab} acks");
        let seqs: Vec<u64> = seen.iter().map(seq).collect();
        let distinct: BTreeSet<u64> = seqs.iter().copied().collect();
        assert_eq!(
            distinct,
            (1..=TOTAL as u64).collect::<BTreeSet<u64>>(),
            "{who} tab {tab} saw every seq 1..={TOTAL} once"
        );
        assert_eq!(seqs.len(), TOTAL, "{who} tab {tab}: no duplicates");
        all_acked.extend(acked);
    }
    let mut acked_seqs: Vec<u64> = all_acked.iter().map(seq).collect();
    acked_seqs.sort_unstable();
    assert_eq!(
        acked_seqs,
        (1..=TOTAL as u64).collect::<Vec<u64>>(),
        "acks carry exactly the seqs 1..={TOTAL}, no gaps, no duplicates"
    );

    let history = full_history(&alice, &conv).await;
    let seqs: Vec<u64> = history.iter().map(seq).collect();
    assert_eq!(
        seqs,
        (1..=TOTAL as u64).collect::<Vec<u64>>(),
        "history holds all {TOTAL} in order"
    );
    all_acked.sort_by_key(seq);
    assert_eq!(history, all_acked, "history holds exactly what was acked");
}

#[tokio::test]
async fn a_retried_send_returns_the_original_ack_and_is_stored_once() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let conv = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    settle(&mut [&mut alice_tab, &mut bob_tab]).await;

    let first = alice_tab
        .send_acked(bob.id(), "are you in today?", "retry-1")
        .await;
    assert_eq!(bob_tab.next_of_type("message").await["message"], first);

    // The ack got lost on the way; the client sends the same frame again, and again from a new tab.
    let again = alice_tab
        .send_acked(bob.id(), "are you in today?", "retry-1")
        .await;
    assert_eq!(again, first, "same seq and sent_at as the original");
    let mut alice_reloaded = Socket::online(&server, &alice).await;
    let from_new_tab = alice_reloaded
        .send_acked(bob.id(), "are you in today?", "retry-1")
        .await;
    assert_eq!(
        from_new_tab, first,
        "the client id is per user, not per connection"
    );

    let history = full_history(&alice, &conv).await;
    assert_eq!(history, std::slice::from_ref(&first), "stored once");
    let next = alice_tab.send_acked(bob.id(), "hello?", "retry-2").await;
    assert_eq!(next["seq"], 2, "the retries used no seq: {next}");
    let delivered = bob_tab.next_of_type("message").await;
    assert_eq!(
        delivered["message"], next,
        "bob never saw the retries as new messages"
    );
}

#[tokio::test]
async fn a_client_id_reused_for_another_message_is_refused_but_ids_belong_to_each_user() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let bob = create_user(&admin, "bob").await;
    let carol = create_user(&admin, "carol").await;
    let conv = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;

    let original = alice_tab.send_acked(bob.id(), "first draft", "c-1").await;

    alice_tab.send_msg(bob.id(), "second draft", "c-1").await;
    let error = alice_tab.error_with("client_id_reused").await;
    assert_eq!(error["client_id"], "c-1", "{error}");
    alice_tab.send_msg(carol.id(), "first draft", "c-1").await;
    let error = alice_tab.error_with("client_id_reused").await;
    assert_eq!(
        error["client_id"], "c-1",
        "same body, other conversation: {error}"
    );

    // Bob picking the same client id is no conflict: ids are unique per sending user.
    let bobs = bob_tab.send_acked(conv.as_str(), "got it", "c-1").await;
    assert_eq!(bobs["seq"], 2, "{bobs}");
    assert_eq!(bobs["from"], bob.id(), "{bobs}");

    let history = full_history(&alice, &conv).await;
    assert_eq!(
        history,
        [original, bobs],
        "the refused sends stored nothing"
    );
    let (status, carol_convs) = carol.get("/api/conversations").await;
    assert_eq!(status, 200);
    assert_eq!(
        common::dms_only(&carol_convs),
        json!([]),
        "the refused send did not open a DM with carol"
    );
}

#[tokio::test]
async fn typing_reaches_the_other_member_only_and_is_never_stored() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let conv = dm_id(&alice, &bob);
    let mut alice_desk = Socket::online(&server, &alice).await;
    let mut alice_laptop = Socket::online(&server, &alice).await;
    let mut bob_desk = Socket::online(&server, &bob).await;
    let mut bob_phone = Socket::online(&server, &bob).await;
    let first = alice_desk
        .send_acked(bob.id(), "quick question", "t-1")
        .await;
    settle(&mut [
        &mut alice_desk,
        &mut alice_laptop,
        &mut bob_desk,
        &mut bob_phone,
    ])
    .await;

    alice_desk.typing(&conv).await;
    for (who, tab) in [
        ("bob's desk", &mut bob_desk),
        ("bob's phone", &mut bob_phone),
    ] {
        let frame = tab.next_frame().await;
        assert_eq!(
            frame,
            json!({"type": "typing", "conversation": conv, "user": alice.id()}),
            "{who}"
        );
    }
    alice_laptop.expect_silence(QUIET).await;
    alice_desk.expect_silence(QUIET).await;

    let history = full_history(&bob, &conv).await;
    assert_eq!(history, [first], "typing is not a message");
    let (_, listed) = bob.get("/api/conversations").await;
    assert_eq!(listed[0]["last_seq"], 1, "{listed}");
    assert_eq!(listed[0]["unread"], 1, "{listed}");
}
