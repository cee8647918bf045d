//! After a message is sent: edits, deletes, reactions and replies, live for every tab and
//! caught up by a client that was away, with unread and mention counts kept exact.

mod common;

use common::ws::{Socket, dm_id, full_history, send_frame};
use common::{Client, StatusCode, TestServer, Value, json, office};

fn edit(conversation: &str, seq: u64, body: &str, client_id: &str) -> Value {
    json!({"type": "edit", "conversation": conversation, "seq": seq, "body": body, "client_id": client_id})
}

fn delete(conversation: &str, seq: u64, client_id: &str) -> Value {
    json!({"type": "delete", "conversation": conversation, "seq": seq, "client_id": client_id})
}

fn react(conversation: &str, seq: u64, emoji: &str, client_id: &str) -> Value {
    json!({"type": "react", "conversation": conversation, "seq": seq, "emoji": emoji, "client_id": client_id})
}

async fn summary(client: &Client, id: &str) -> Value {
    common::summary_of(client, id)
        .await
        .unwrap_or_else(|| panic!("{id} is listed"))
}

#[tokio::test]
async fn an_edit_reaches_every_tab_and_history_and_only_the_author_may_edit() {
    let (server, admin, alice, bob, _carol) = office().await;
    let conv = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    alice_tab.send_acked(bob.id(), "lunch at 12?", "m1").await;
    bob_tab.next_of_type("message").await;

    alice_tab
        .send_json(&edit(&conv, 1, "lunch at 1?", "e1"))
        .await;
    let acked = alice_tab.ack_for("e1").await["message"].clone();
    assert_eq!(acked["body"], "lunch at 1?");
    assert!(acked["edited_at"].as_u64().is_some(), "{acked}");
    let update = bob_tab.next_of_type("update").await;
    assert_eq!(update["message"], acked);
    assert_eq!(update["change_seq"], 1);

    // A retry answers the same and changes nothing more.
    alice_tab
        .send_json(&edit(&conv, 1, "lunch at 1?", "e1"))
        .await;
    assert_eq!(alice_tab.ack_for("e1").await["message"], acked);
    assert_eq!(summary(&bob, &conv).await["change_seq"], 1);
    assert_eq!(
        full_history(&bob, &conv).await,
        std::slice::from_ref(&acked)
    );

    bob_tab
        .send_json(&edit(&conv, 1, "bob was here", "e2"))
        .await;
    bob_tab.error_with("not_your_message").await;
    let mut admin_tab = Socket::online(&server, &admin).await;
    admin_tab
        .send_json(&edit(&conv, 1, "moderated", "e3"))
        .await;
    admin_tab.error_with("not_a_member").await;
    alice_tab
        .send_json(&edit(&conv, 9, "nothing there", "e4"))
        .await;
    alice_tab.error_with("no_such_message").await;
    alice_tab.send_json(&edit(&conv, 1, "\u{200B}", "e5")).await;
    alice_tab.error_with("empty_body").await;
}

#[tokio::test]
async fn a_deleted_message_is_gone_for_everyone_and_no_longer_unread() {
    let (server, admin, alice, bob, carol) = office().await;
    let conv = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    for i in 1..=3 {
        alice_tab
            .send_acked(bob.id(), &format!("note {i}"), &format!("n{i}"))
            .await;
    }
    assert_eq!(summary(&bob, &conv).await["unread"], 3);
    let mut bob_tab = Socket::online(&server, &bob).await;

    alice_tab.send_json(&delete(&conv, 2, "d1")).await;
    let gone = alice_tab.ack_for("d1").await["message"].clone();
    assert_eq!(
        (gone["deleted"].clone(), gone["body"].clone()),
        (json!(true), json!(""))
    );
    let update = bob_tab.next_of_type("update").await;
    assert_eq!(update["message"]["deleted"], true);
    assert_eq!(
        summary(&bob, &conv).await["unread"],
        2,
        "a deleted message is not unread"
    );
    let history = full_history(&bob, &conv).await;
    let seqs: Vec<u64> = history.iter().map(common::ws::seq).collect();
    assert_eq!(seqs, [1, 2, 3], "seqs stay gapless");
    assert_eq!(history[1]["body"], "");

    // It cannot be edited or reacted to any more; only its author or an admin deletes.
    alice_tab.send_json(&edit(&conv, 2, "undo", "d2")).await;
    alice_tab.error_with("message_deleted").await;
    bob_tab.send_json(&delete(&conv, 3, "d3")).await;
    bob_tab.error_with("not_your_message").await;

    // In a room, an admin moderates and everyone's counts follow.
    let (_, room) = alice
        .post(
            "/api/rooms",
            json!({"name": "Team", "visibility": "open", "members": [bob.id(), carol.id(), admin.id()]}),
        )
        .await;
    let room = room["id"].as_str().expect("room id").to_owned();
    alice_tab
        .send_acked(room.as_str(), "@carol see this", "r1")
        .await;
    alice_tab.send_acked(room.as_str(), "second", "r2").await;
    let carol_view = summary(&carol, &room).await;
    assert_eq!(
        (carol_view["unread"].clone(), carol_view["mentions"].clone()),
        (json!(2), json!(1))
    );
    let mut admin_tab = Socket::online(&server, &admin).await;
    admin_tab.send_json(&delete(&room, 1, "mod1")).await;
    admin_tab.ack_for("mod1").await;
    let carol_view = summary(&carol, &room).await;
    assert_eq!(
        (carol_view["unread"].clone(), carol_view["mentions"].clone()),
        (json!(1), json!(0))
    );
    let mut carol_tab = Socket::online(&server, &carol).await;
    carol_tab.mark_read(&room, 2).await;
    let unread = carol_tab.next_of_type("unread").await;
    assert_eq!(unread["unread"], 0);
}

/// Whether the database file's bytes contain `text` anywhere (free pages included).
fn file_holds(server: &TestServer, text: &str) -> bool {
    let bytes = std::fs::read(server.data_dir().join("confab.redb")).expect("read the database");
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

#[tokio::test]
async fn a_deleted_message_leaves_no_trace_in_the_database_file() {
    let (server, _admin, alice, bob, _carol) = office().await;
    let conv = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    // Enough traffic around it that its page is copied several times (redb never writes a
    // page in place), leaving old copies of the secret in free pages.
    let secret = "the door code is 4711-SECRET";
    let kept = "lunch is at noon-KEPT";
    alice_tab.send_acked(bob.id(), kept, "k").await;
    alice_tab.send_acked(bob.id(), secret, "s").await;
    for i in 0..40 {
        alice_tab
            .send_acked(bob.id(), &format!("chatter {i}"), &format!("c{i}"))
            .await;
    }
    assert!(
        file_holds(&server, secret),
        "the test must see the text before the delete"
    );

    alice_tab.send_json(&delete(&conv, 2, "d")).await;
    alice_tab.ack_for("d").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while file_holds(&server, secret) {
        assert!(
            std::time::Instant::now() < deadline,
            "the deleted text is still in the database file 10 s after the delete"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(file_holds(&server, kept), "other messages are untouched");
    assert_eq!(full_history(&bob, &conv).await.len(), 42);

    // The file stays usable: more sends and a restart keep everything.
    alice_tab.send_acked(bob.id(), "after", "a").await;
    drop(alice_tab);
    let server = server.restart();
    let bob = common::ws::same_session_on(&server, &bob);
    let history = full_history(&bob, &conv).await;
    assert_eq!(history.len(), 43);
    assert_eq!(history[0]["body"], kept);
    assert_eq!(history[1]["deleted"], true);
}

#[tokio::test]
async fn reactions_toggle_live_and_a_retry_does_not_toggle_twice() {
    let (server, _admin, alice, bob, _carol) = office().await;
    let conv = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    alice_tab.send_acked(bob.id(), "shipped!", "s1").await;

    bob_tab.send_json(&react(&conv, 1, "🎉", "x1")).await;
    let after = bob_tab.ack_for("x1").await["message"].clone();
    assert_eq!(
        after["reactions"],
        json!([{"emoji": "🎉", "users": [bob.id()]}])
    );
    let update = alice_tab.next_of_type("update").await;
    assert_eq!(update["message"]["reactions"], after["reactions"]);
    bob_tab.send_json(&react(&conv, 1, "🎉", "x1")).await;
    assert_eq!(
        bob_tab.ack_for("x1").await["message"]["reactions"],
        after["reactions"]
    );

    alice_tab.send_json(&react(&conv, 1, "🎉", "x2")).await;
    let both = alice_tab.ack_for("x2").await["message"].clone();
    assert_eq!(
        both["reactions"],
        json!([{"emoji": "🎉", "users": [bob.id(), alice.id()]}])
    );
    bob_tab.send_json(&react(&conv, 1, "🎉", "x3")).await;
    let taken_back = bob_tab.ack_for("x3").await["message"].clone();
    assert_eq!(
        taken_back["reactions"],
        json!([{"emoji": "🎉", "users": [alice.id()]}])
    );

    bob_tab.send_json(&react(&conv, 1, "thumbs up", "x4")).await;
    bob_tab.error_with("invalid_emoji").await;
}

#[tokio::test]
async fn a_reply_quotes_its_original_as_it_reads_now() {
    let (server, _admin, alice, bob, _carol) = office().await;
    let conv = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    alice_tab
        .send_acked(
            bob.id(),
            "Can you send the invoice?\nThe one from March.",
            "q1",
        )
        .await;
    let mut reply = send_frame(conv.as_str(), "Sent it this morning", "q2");
    reply["reply_to"] = json!(1);
    bob_tab.send_json(&reply).await;
    let acked = bob_tab.ack_for("q2").await["message"].clone();
    assert_eq!(
        acked["reply_to"],
        json!({"seq": 1, "from": alice.id(), "snippet": "Can you send the invoice?"})
    );
    let mut bad = send_frame(conv.as_str(), "to nothing", "q3");
    bad["reply_to"] = json!(7);
    bob_tab.send_json(&bad).await;
    bob_tab.error_with("no_such_message").await;

    alice_tab
        .send_json(&edit(&conv, 1, "Can you send the April invoice?", "q4"))
        .await;
    alice_tab.ack_for("q4").await;
    let history = full_history(&bob, &conv).await;
    assert_eq!(
        history[1]["reply_to"]["snippet"],
        "Can you send the April invoice?"
    );
    alice_tab.send_json(&delete(&conv, 1, "q5")).await;
    alice_tab.ack_for("q5").await;
    let history = full_history(&bob, &conv).await;
    assert_eq!(
        history[1]["reply_to"],
        json!({"seq": 1, "from": alice.id(), "snippet": "", "deleted": true})
    );
}

#[tokio::test]
async fn a_client_that_was_away_catches_up_on_changes() {
    let (server, _admin, alice, bob, _carol) = office().await;
    let conv = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    for i in 1..=3 {
        alice_tab
            .send_acked(bob.id(), &format!("item {i}"), &format!("c{i}"))
            .await;
    }
    // Bob saw all three, then went away; meanwhile alice changes two of them.
    let seen = summary(&bob, &conv).await["change_seq"]
        .as_u64()
        .expect("change_seq");
    assert_eq!(seen, 0);
    alice_tab
        .send_json(&edit(&conv, 1, "item 1 (fixed)", "c4"))
        .await;
    alice_tab.ack_for("c4").await;
    alice_tab.send_json(&delete(&conv, 3, "c5")).await;
    alice_tab.ack_for("c5").await;
    alice_tab
        .send_json(&edit(&conv, 1, "item 1 (fixed again)", "c6"))
        .await;
    alice_tab.ack_for("c6").await;

    let bob_tab = Socket::online(&server, &bob).await;
    let now = bob_tab.hello["conversations"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["id"] == conv.as_str()))
        .expect("the DM in hello")["change_seq"]
        .clone();
    assert_eq!(now, 3);
    let (status, changes) = bob
        .get(&format!("/api/conversations/{conv}/changes?after={seen}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{changes}");
    let messages = changes["messages"].as_array().expect("messages");
    assert_eq!(
        messages.len(),
        2,
        "each changed message once, as it is now: {changes}"
    );
    assert_eq!(messages[0]["body"], "item 1 (fixed again)");
    assert_eq!(messages[1]["deleted"], true);
    assert_eq!(changes["change_seq"], 3);
    let (_, none) = bob
        .get(&format!("/api/conversations/{conv}/changes?after=3"))
        .await;
    assert_eq!(none["messages"], json!([]));
    let outsider = common::create_user(
        &common::login_client(&server, "admin", common::ADMIN_PASSWORD).await,
        "mallory",
    )
    .await;
    let probe = outsider
        .get(&format!("/api/conversations/{conv}/changes"))
        .await;
    common::assert_error(&probe, StatusCode::NOT_FOUND, "not_found");
}

/// The `reply_to` of message `seq` of `conversation` in `client`'s history: what every other
/// place showing that message must say too.
async fn reply_in_history(client: &Client, conversation: &str, seq: u64) -> Value {
    full_history(client, conversation)
        .await
        .into_iter()
        .find(|m| m["seq"] == seq)
        .unwrap_or_else(|| panic!("message {seq} of {conversation} in history"))["reply_to"]
        .clone()
}

#[tokio::test]
async fn a_reply_reads_the_same_wherever_it_reaches_you() {
    let (server, _admin, alice, bob, carol) = office().await;
    let room = common::create_room(&alice, "Questions", "open", &[&bob]).await;
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    let original = bob_tab
        .send_acked(room.as_str(), "original question\nwith details", "q1")
        .await;
    let mut reply = send_frame(room.as_str(), "@bob see above", "q2");
    reply["reply_to"] = original["seq"].clone();
    alice_tab.send_json(&reply).await;
    let seq = alice_tab.ack_for("q2").await["message"]["seq"]
        .as_u64()
        .expect("seq");
    let quoted = json!({"seq": original["seq"], "from": bob.id(), "snippet": "original question"});
    assert_eq!(reply_in_history(&bob, &room, seq).await, quoted);

    // Every place the reply reaches bob: his mentions, his conversation list, the room's
    // summary, hello, and the summary a newcomer gets when the room appears for them.
    let everywhere = |expected: Value| {
        let (server, room, bob) = (&server, room.clone(), &bob);
        async move {
            let (_, mentions) = bob.get("/api/mentions").await;
            assert_eq!(mentions["messages"][0]["reply_to"], expected, "mentions");
            let listed = common::summary_of(bob, &room).await.expect("listed");
            assert_eq!(listed["last_message"]["reply_to"], expected, "list");
            let (_, summary) = bob.get(&format!("/api/rooms/{room}")).await;
            assert_eq!(summary["last_message"]["reply_to"], expected, "room");
            let hello = Socket::online(server, bob).await.hello;
            let in_hello = hello["conversations"]
                .as_array()
                .and_then(|l| l.iter().find(|c| c["id"] == room.as_str()))
                .expect("the room in hello");
            assert_eq!(in_hello["last_message"]["reply_to"], expected, "hello");
        }
    };
    everywhere(quoted).await;
    let mut carol_tab = Socket::online(&server, &carol).await;
    let (status, joined) = carol.post_empty(&format!("/api/rooms/{room}/join")).await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(
        joined["last_message"]["reply_to"],
        reply_in_history(&carol, &room, seq).await
    );
    let appeared = carol_tab.next_of_type("conversation").await;
    assert_eq!(appeared["action"], "created");
    assert_eq!(
        appeared["conversation"]["last_message"]["reply_to"],
        reply_in_history(&carol, &room, seq).await,
        "the room appearing for a newcomer"
    );

    // Once the original is deleted, it reads as deleted everywhere.
    let original_seq = original["seq"].as_u64().expect("seq");
    bob_tab.send_json(&delete(&room, original_seq, "q3")).await;
    bob_tab.ack_for("q3").await;
    let gone = reply_in_history(&bob, &room, seq).await;
    assert_eq!(
        gone,
        json!({"seq": original["seq"], "from": bob.id(), "snippet": "", "deleted": true})
    );
    everywhere(gone).await;

    // A DM: carol's words that bob answered are withheld from him once he blocks her and she
    // edits them. His answer, the newest message he sees, quotes nothing of them.
    let dm = dm_id(&bob, &carol);
    carol_tab
        .send_acked(bob.id(), "the secret plan", "d1")
        .await;
    let mut answer = send_frame(dm.as_str(), "noted", "d2");
    answer["reply_to"] = json!(1);
    bob_tab.send_json(&answer).await;
    bob_tab.ack_for("d2").await;
    let status =
        common::send(bob.request(common::Method::PUT, &format!("/api/blocks/{}", carol.id())))
            .await
            .0;
    assert_eq!(status, StatusCode::NO_CONTENT);
    carol_tab
        .send_json(&edit(&dm, 1, "the new secret plan", "d3"))
        .await;
    carol_tab.ack_for("d3").await;
    let withheld = reply_in_history(&bob, &dm, 2).await;
    assert_eq!(
        withheld,
        json!({"seq": 1, "from": carol.id(), "snippet": ""})
    );
    let listed = common::summary_of(&bob, &dm).await.expect("the DM");
    assert_eq!(listed["last_message"]["reply_to"], withheld);
}
