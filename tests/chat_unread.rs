//! Unread counts and read marks ("Seen"), live and across a restart.

mod common;

use std::time::Duration;

use common::ws::{Socket, dm_id, same_session_on};
use common::{Client, json};
use serde_json::Value;

const QUIET: Duration = Duration::from_millis(400);

/// The caller's summary of `conversation` from `GET /api/conversations`.
async fn summary(client: &Client, conversation: &str) -> Value {
    let (status, listed) = client.get("/api/conversations").await;
    assert_eq!(status, 200, "{listed}");
    listed
        .as_array()
        .and_then(|convs| convs.iter().find(|c| c["id"] == conversation))
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{conversation} is listed for {}: {listed}",
                client.username()
            )
        })
}

/// `(last_seq, read_seq, unread)` of a summary.
fn counts(summary: &Value) -> (Value, Value, Value) {
    (
        summary["last_seq"].clone(),
        summary["read_seq"].clone(),
        summary["unread"].clone(),
    )
}

#[tokio::test]
async fn unread_rises_with_each_message_from_the_other_member_and_clears_when_read() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let conv = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut bob_desk = Socket::online(&server, &bob).await;
    let mut bob_phone = Socket::online(&server, &bob).await;

    for n in 1..=3 {
        alice_tab
            .send_acked(bob.id(), &format!("ping {n}"), &format!("p-{n}"))
            .await;
        assert_eq!(
            counts(&summary(&bob, &conv).await),
            (json!(n), json!(0), json!(n)),
            "bob after alice's message {n}"
        );
        assert_eq!(
            counts(&summary(&alice, &conv).await),
            (json!(n), json!(n), json!(0)),
            "sending marks the conversation read for the sender"
        );
    }
    bob_desk.drain(QUIET).await;
    bob_phone.drain(QUIET).await;
    alice_tab.drain(QUIET).await;

    bob_desk.mark_read(&conv, 2).await;
    let unread = json!({"type": "unread", "conversation": conv, "unread": 1, "read_seq": 2});
    assert_eq!(bob_desk.next_frame().await, unread, "the reading tab");
    assert_eq!(bob_phone.next_frame().await, unread, "bob's other tab");
    assert_eq!(
        alice_tab.next_frame().await,
        json!({"type": "read", "conversation": conv, "user": bob.id(), "seq": 2}),
        "the sender learns bob has seen up to 2"
    );
    assert_eq!(
        counts(&summary(&bob, &conv).await),
        (json!(3), json!(2), json!(1))
    );
    assert_eq!(
        summary(&alice, &conv).await["reads"],
        json!([{"user": bob.id(), "seq": 2}])
    );

    // Marking read below the current mark changes nothing.
    bob_desk.mark_read(&conv, 1).await;
    bob_desk.drain(QUIET).await;
    assert_eq!(
        counts(&summary(&bob, &conv).await),
        (json!(3), json!(2), json!(1))
    );
    assert_eq!(
        summary(&alice, &conv).await["reads"],
        json!([{"user": bob.id(), "seq": 2}])
    );

    bob_phone.mark_read(&conv, 3).await;
    assert_eq!(
        bob_phone.next_of_type("unread").await,
        json!({"type": "unread", "conversation": conv, "unread": 0, "read_seq": 3})
    );
    assert_eq!(
        bob_desk.next_of_type("unread").await,
        json!({"type": "unread", "conversation": conv, "unread": 0, "read_seq": 3})
    );
    assert_eq!(alice_tab.next_of_type("read").await["seq"], 3);
    assert_eq!(
        counts(&summary(&bob, &conv).await),
        (json!(3), json!(3), json!(0))
    );

    // Bob's own message never counts as unread for him, and is unread for alice.
    bob_desk
        .send_acked(conv.as_str(), "all caught up", "b-1")
        .await;
    assert_eq!(
        counts(&summary(&bob, &conv).await),
        (json!(4), json!(4), json!(0))
    );
    assert_eq!(
        counts(&summary(&alice, &conv).await),
        (json!(4), json!(3), json!(1))
    );
}

#[tokio::test]
async fn reading_past_the_end_or_below_zero_is_invalid_seq() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let conv = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    alice_tab.send_acked(bob.id(), "one", "s-1").await;
    bob_tab.drain(QUIET).await;

    bob_tab.mark_read(&conv, 2).await;
    bob_tab.error_with("invalid_seq").await;
    bob_tab
        .send_json(&json!({"type": "read", "conversation": conv, "seq": -1}))
        .await;
    bob_tab.error_with("invalid_seq").await;
    assert_eq!(
        counts(&summary(&bob, &conv).await),
        (json!(1), json!(0), json!(1))
    );

    bob_tab.mark_read(&conv, 1).await;
    assert_eq!(bob_tab.next_of_type("unread").await["unread"], 0);
}

#[tokio::test]
async fn unread_counts_and_read_marks_survive_a_restart() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let conv = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    for n in 1..=3 {
        alice_tab
            .send_acked(bob.id(), &format!("note {n}"), &format!("r-{n}"))
            .await;
    }
    bob_tab.mark_read(&conv, 2).await;
    bob_tab.next_of_type("unread").await;
    alice_tab.next_of_type("read").await;
    drop((alice_tab, bob_tab));

    let server = server.restart();
    let alice = same_session_on(&server, &alice);
    let bob = same_session_on(&server, &bob);

    assert_eq!(
        counts(&summary(&bob, &conv).await),
        (json!(3), json!(2), json!(1))
    );
    assert_eq!(
        counts(&summary(&alice, &conv).await),
        (json!(3), json!(3), json!(0))
    );
    assert_eq!(
        summary(&alice, &conv).await["reads"],
        json!([{"user": bob.id(), "seq": 2}])
    );
    let mut bob_back = Socket::open(&server, &bob).await;
    let hello = bob_back.hello().await;
    assert_eq!(
        counts(&hello["conversations"][0]),
        (json!(3), json!(2), json!(1)),
        "{hello}"
    );
}
