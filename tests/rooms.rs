//! Rooms: General, open and private rooms, members, mentions, notification levels, chat
//! requests and blocks, as people use them.

mod common;

use std::time::Duration;

use common::ws::{Socket, send_frame, seq};
use common::{
    Client, Method, StatusCode, TestServer, Value, create_room, json, office, summary_of as summary,
};

async fn put(client: &Client, path: &str, body: Value) -> (StatusCode, Value) {
    common::send(client.request(Method::PUT, path).json(&body)).await
}

async fn put_empty(client: &Client, path: &str) -> (StatusCode, Value) {
    common::send(client.request(Method::PUT, path)).await
}

/// Asserts no `message` frame reaches `tab` for `wait` (presence and the like may).
async fn no_message_within(tab: &mut Socket, wait: Duration) {
    none_of_within(tab, &["message"], wait).await;
}

/// Asserts no frame of these types reaches `tab` for `wait`.
async fn none_of_within(tab: &mut Socket, kinds: &[&str], wait: Duration) {
    let heard = tab.drain(wait).await;
    assert!(
        heard.iter().all(|f| kinds.iter().all(|&k| f["type"] != k)),
        "none of {kinds:?} was to arrive: {heard:?}"
    );
}

fn bodies(history: &[Value]) -> Vec<&str> {
    history
        .iter()
        .map(|m| m["body"].as_str().expect("body"))
        .collect()
}

#[tokio::test]
async fn everyone_is_in_general_and_nobody_can_leave_it() {
    let (_server, admin, alice, bob, _carol) = office().await;
    for client in [&admin, &alice, &bob] {
        let general = summary(client, "room:1").await.expect("General is listed");
        assert_eq!(general["kind"], "room");
        assert_eq!(general["name"], "General");
        assert_eq!(general["general"], true);
        assert_eq!(general["member_count"], 4);
        assert!(general.get("members").is_none(), "members are not inlined");
    }
    let (status, body) = alice.post_empty("/api/rooms/room:1/leave").await;
    common::assert_error(
        &(status, body),
        StatusCode::CONFLICT,
        "cannot_leave_general",
    );
    let (status, body) = admin
        .delete(&format!("/api/rooms/room:1/members/{}", bob.id()))
        .await;
    common::assert_error(
        &(status, body),
        StatusCode::CONFLICT,
        "cannot_leave_general",
    );
    let (status, body) = alice
        .patch("/api/rooms/room:1", json!({"name": "Alice's"}))
        .await;
    common::assert_error(&(status, body), StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = admin
        .patch("/api/rooms/room:1", json!({"archived": true}))
        .await;
    common::assert_error(&(status, body), StatusCode::CONFLICT, "general_is_fixed");
    let (status, renamed) = admin
        .patch(
            "/api/rooms/room:1",
            json!({"name": "Everyone", "topic": "cake in the kitchen"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Everyone");

    // A new colleague is in it from the start.
    let dave = common::create_user(&admin, "dave").await;
    let general = summary(&dave, "room:1").await.expect("dave is in General");
    assert_eq!(general["topic"], "cake in the kitchen");
    assert_eq!(general["member_count"], 5);
}

#[tokio::test]
async fn room_names_are_checked_and_open_names_are_unique() {
    let (_server, _admin, alice, bob, _carol) = office().await;
    create_room(&alice, "Marketing", "open", &[]).await;
    let taken = bob
        .post(
            "/api/rooms",
            json!({"name": "  MARKETING ", "visibility": "open"}),
        )
        .await;
    common::assert_error(&taken, StatusCode::CONFLICT, "room_name_taken");
    // Private rooms are nobody else's business, so their names may repeat.
    create_room(&bob, "Marketing", "private", &[]).await;
    for (body, code) in [
        (
            json!({"name": "", "visibility": "open"}),
            "invalid_room_name",
        ),
        (
            json!({"name": "\u{200B}", "visibility": "open"}),
            "invalid_room_name",
        ),
        (
            json!({"name": "x".repeat(65), "visibility": "open"}),
            "invalid_room_name",
        ),
        // Line and paragraph separators break the line though they are not controls.
        (
            json!({"name": "Sales\u{2028}Team", "visibility": "open"}),
            "invalid_room_name",
        ),
        (
            json!({"name": "Sales\u{2029}Team", "visibility": "open"}),
            "invalid_room_name",
        ),
        (
            json!({"name": "ok", "topic": "one\u{2028}two", "visibility": "open"}),
            "invalid_topic",
        ),
        (
            json!({"name": "ok", "topic": "one\u{2029}two", "visibility": "open"}),
            "invalid_topic",
        ),
        (
            json!({"name": "ok", "topic": "t".repeat(251), "visibility": "open"}),
            "invalid_topic",
        ),
        (
            json!({"name": "ok", "visibility": "secret"}),
            "invalid_visibility",
        ),
        (
            json!({"name": "ok", "visibility": "open", "members": [999]}),
            "no_such_user",
        ),
        (json!({"name": "ok"}), "invalid_body"),
    ] {
        let answer = alice.post("/api/rooms", body.clone()).await;
        common::assert_error(&answer, StatusCode::BAD_REQUEST, code);
    }
    let sales = create_room(&bob, "Sales", "open", &[]).await;
    let renamed = bob
        .patch(&format!("/api/rooms/{sales}"), json!({"name": "marketing"}))
        .await;
    common::assert_error(&renamed, StatusCode::CONFLICT, "room_name_taken");
    for (patch, code) in [
        (json!({"name": "Sales\u{2028}Team"}), "invalid_room_name"),
        (json!({"topic": "one\u{2029}two"}), "invalid_topic"),
    ] {
        let refused = bob.patch(&format!("/api/rooms/{sales}"), patch).await;
        common::assert_error(&refused, StatusCode::BAD_REQUEST, code);
    }
    let unchanged = summary(&bob, &sales).await.expect("Sales");
    assert_eq!(
        (&unchanged["name"], &unchanged["topic"]),
        (&json!("Sales"), &json!(""))
    );
}

#[tokio::test]
async fn an_added_colleague_sees_the_room_appear_with_its_history() {
    let (server, _admin, alice, bob, _carol) = office().await;
    let room = create_room(&alice, "Launch", "private", &[]).await;
    let mut alice_tab = Socket::online(&server, &alice).await;
    for i in 1..=3 {
        alice_tab
            .send_acked(room.as_str(), &format!("plan {i}"), &format!("p{i}"))
            .await;
    }
    let mut bob_tab = Socket::online(&server, &bob).await;

    let (status, entry) = alice
        .post(
            &format!("/api/rooms/{room}/members"),
            json!({"user": bob.id()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    assert_eq!(entry["user"], bob.id());

    let appeared = bob_tab
        .next_matching("the room appearing", |f| {
            f["type"] == "conversation" && f["action"] == "created"
        })
        .await;
    assert_eq!(appeared["conversation"]["id"], room.as_str());
    assert_eq!(appeared["conversation"]["name"], "Launch");
    assert_eq!(appeared["conversation"]["last_seq"], 3);
    assert_eq!(appeared["conversation"]["unread"], 0);
    let added = alice_tab.next_of_type("member").await;
    assert_eq!(added["action"], "added");
    assert_eq!(added["user"]["username"], "bob");
    assert_eq!(added["by"], alice.id());

    let history = common::ws::full_history(&bob, &room).await;
    assert_eq!(bodies(&history), ["plan 1", "plan 2", "plan 3"]);
    let (_, members) = bob.get(&format!("/api/rooms/{room}/members")).await;
    let ids: Vec<i64> = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["user"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, [alice.id(), bob.id()]);
    let again = alice
        .post(
            &format!("/api/rooms/{room}/members"),
            json!({"user": bob.id()}),
        )
        .await;
    common::assert_error(&again, StatusCode::CONFLICT, "already_member");
}

#[tokio::test]
async fn a_removed_member_loses_the_room_at_once() {
    let (server, _admin, alice, bob, carol) = office().await;
    let room = create_room(&alice, "Secret plans", "private", &[&bob, &carol]).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    let mut carol_tab = Socket::online(&server, &carol).await;
    // Before he goes, bob writes a message and reacts to one of carol's.
    bob_tab.send_acked(room.as_str(), "my plan", "b0").await;
    let carols = carol_tab.send_acked(room.as_str(), "the plan", "c0").await;
    let react = json!({"type": "react", "conversation": room, "seq": seq(&carols),
                       "emoji": "👍", "client_id": "b-react"});
    bob_tab.send_json(&react).await;
    bob_tab.next_of_type("ack").await;

    // Only the creator (or an admin) removes people.
    let refused = carol
        .delete(&format!("/api/rooms/{room}/members/{}", bob.id()))
        .await;
    common::assert_error(&refused, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = alice
        .delete(&format!("/api/rooms/{room}/members/{}", bob.id()))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let gone = bob_tab
        .next_matching("the room going away", |f| {
            f["type"] == "conversation" && f["action"] == "removed"
        })
        .await;
    assert_eq!(gone["conversation"]["id"], room.as_str());
    let removed = carol_tab.next_of_type("member").await;
    assert_eq!(
        (removed["action"].as_str(), removed["user"]["id"].as_i64()),
        (Some("removed"), Some(bob.id()))
    );

    // Bob's token still works, but the room is gone for him in every way.
    let history = bob
        .get(&format!("/api/conversations/{room}/messages"))
        .await;
    common::assert_error(&history, StatusCode::NOT_FOUND, "not_found");
    assert!(summary(&bob, &room).await.is_none());
    bob_tab
        .send_json(&send_frame(room.as_str(), "still here?", "b1"))
        .await;
    bob_tab.error_with("not_a_member").await;
    bob_tab.typing(&room).await;
    bob_tab.error_with("not_a_member").await;
    bob_tab.mark_read(&room, 0).await;
    bob_tab.error_with("not_a_member").await;
    // Retrying what he sent while still a member shows him nothing of the room as it is now.
    carol_tab
        .send_json(
            &json!({"type": "edit", "conversation": room, "seq": seq(&carols),
                           "body": "the real plan", "client_id": "c-edit"}),
        )
        .await;
    carol_tab.next_of_type("ack").await;
    bob_tab.send_json(&react).await;
    bob_tab.error_with("not_a_member").await;
    bob_tab
        .send_json(&send_frame(room.as_str(), "my plan", "b0"))
        .await;
    bob_tab.error_with("not_a_member").await;
    // And nothing said in it reaches him any more.
    let mut alice_tab = Socket::online(&server, &alice).await;
    alice_tab
        .send_acked(room.as_str(), "now that bob is gone", "a1")
        .await;
    carol_tab.next_of_type("message").await;
    no_message_within(&mut bob_tab, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn an_outsider_learns_nothing_about_a_private_room() {
    let (server, _admin, alice, bob, carol) = office().await;
    let room = create_room(&alice, "Payroll", "private", &[&bob]).await;
    let missing = "room:9999";
    // Every probe gets exactly the answer a room that does not exist gets.
    let probes: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/api/rooms/{}", None),
        (
            Method::PATCH,
            "/api/rooms/{}",
            Some(json!({"name": "mine"})),
        ),
        (Method::POST, "/api/rooms/{}/join", None),
        (Method::POST, "/api/rooms/{}/leave", None),
        (Method::GET, "/api/rooms/{}/members", None),
        (
            Method::POST,
            "/api/rooms/{}/members",
            Some(json!({"user": carol.id()})),
        ),
        (Method::GET, "/api/conversations/{}/messages", None),
        (
            Method::PUT,
            "/api/conversations/{}/notify",
            Some(json!({"level": "muted"})),
        ),
    ];
    for (method, path, body) in probes {
        let mut answers = Vec::new();
        for id in [room.as_str(), missing] {
            let mut request = carol.request(method.clone(), &path.replace("{}", id));
            if let Some(body) = &body {
                request = request.json(body);
            }
            answers.push(common::send(request).await);
        }
        assert_eq!(answers[0], answers[1], "{method} {path}");
        assert_eq!(
            answers[0].0,
            StatusCode::NOT_FOUND,
            "{method} {path}: {:?}",
            answers[0]
        );
    }
    let (_, browsed) = carol.get("/api/rooms?q=pay").await;
    assert_eq!(browsed["rooms"], json!([]));

    let mut tab = Socket::online(&server, &carol).await;
    for id in [room.as_str(), missing] {
        tab.send_json(&send_frame(id, "hello?", &format!("c-{id}")))
            .await;
        let send = tab.error_with("not_a_member").await;
        tab.typing(id).await;
        let typing = tab.error_with("not_a_member").await;
        tab.mark_read(id, 1).await;
        let read = tab.error_with("not_a_member").await;
        assert_eq!(
            (
                send["message"].clone(),
                typing["message"].clone(),
                read["message"].clone()
            ),
            (
                json!("you are not a member of that conversation"),
                json!("you are not a member of that conversation"),
                json!("you are not a member of that conversation")
            )
        );
    }
}

#[tokio::test]
async fn open_rooms_are_browsed_joined_left_and_archived() {
    let (server, _admin, alice, bob, carol) = office().await;
    let cafe = create_room(&alice, "Café talk", "open", &[]).await;
    let (_, room) = alice
        .patch(
            &format!("/api/rooms/{cafe}"),
            json!({"topic": "Espresso machine news"}),
        )
        .await;
    assert_eq!(room["topic"], "Espresso machine news");
    create_room(&alice, "Hidden", "private", &[]).await;

    for query in ["cafe", "CAFÉ", "espresso", ""] {
        let (_, found) = bob.get(&format!("/api/rooms?q={query}")).await;
        let names: Vec<&str> = found["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .map(|r| r["name"].as_str().expect("name"))
            .collect();
        assert!(names.contains(&"Café talk"), "{query}: {names:?}");
        assert!(!names.contains(&"Hidden"), "{query}: {names:?}");
    }

    let mut alice_tab = Socket::online(&server, &alice).await;
    let (status, joined) = bob.post_empty(&format!("/api/rooms/{cafe}/join")).await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(joined["member_count"], 2);
    let added = alice_tab.next_of_type("member").await;
    assert_eq!(
        (added["action"].as_str(), added["by"].as_i64()),
        (Some("added"), Some(bob.id()))
    );
    let twice = bob.post_empty(&format!("/api/rooms/{cafe}/join")).await;
    common::assert_error(&twice, StatusCode::CONFLICT, "already_member");
    // In an open room people join themselves.
    let add = bob
        .post(
            &format!("/api/rooms/{cafe}/members"),
            json!({"user": carol.id()}),
        )
        .await;
    common::assert_error(&add, StatusCode::FORBIDDEN, "forbidden");

    let (status, _) = bob.post_empty(&format!("/api/rooms/{cafe}/leave")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let left = alice_tab.next_of_type("member").await;
    assert_eq!(left["action"], "removed");

    // Archived: read-only, out of the browser, history kept.
    alice_tab
        .send_acked(cafe.as_str(), "last orders", "l1")
        .await;
    let (status, archived) = alice
        .patch(&format!("/api/rooms/{cafe}"), json!({"archived": true}))
        .await;
    assert_eq!(
        (status, archived["archived"].clone()),
        (StatusCode::OK, json!(true))
    );
    alice_tab
        .send_json(&send_frame(cafe.as_str(), "one more", "l2"))
        .await;
    alice_tab.error_with("room_archived").await;
    let join = carol.post_empty(&format!("/api/rooms/{cafe}/join")).await;
    common::assert_error(&join, StatusCode::CONFLICT, "room_archived");
    let (_, found) = carol.get("/api/rooms?q=cafe").await;
    assert_eq!(found["rooms"], json!([]));
    assert_eq!(common::ws::full_history(&alice, &cafe).await.len(), 1);
}

/// Archived means read-only for everyone: no uploads (a file there could never be sent, yet it
/// would take disk for a day) and no typing (nobody can write there); what stays allowed is
/// leaving, removing members, and un-archiving (with other changes in the same call).
#[tokio::test]
async fn an_archived_room_takes_no_uploads_and_relays_no_typing() {
    let server = TestServer::start_with(&["--upload-min-free", "1MB"], None);
    let admin = common::setup_admin(&server).await;
    let alice = common::create_user(&admin, "alice").await;
    let bob = common::create_user(&admin, "bob").await;
    let carol = common::create_user(&admin, "carol").await;
    let room = create_room(&alice, "Launch", "private", &[&bob, &carol]).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    let mut carol_tab = Socket::online(&server, &carol).await;
    // Before: typing reaches the others, an upload is taken.
    bob_tab.typing(&room).await;
    let typing = carol_tab.next_of_type("typing").await;
    assert_eq!(typing["user"], bob.id());
    bob.uploaded(&room, "before.txt", b"before".to_vec()).await;
    let (status, _) = alice
        .patch(&format!("/api/rooms/{room}"), json!({"archived": true}))
        .await;
    assert_eq!(status, StatusCode::OK);
    bob_tab.drain(Duration::from_millis(300)).await;
    carol_tab.drain(Duration::from_millis(300)).await;

    let upload = bob.upload(&room, "z.txt", b"too late".to_vec()).await;
    common::assert_error(&upload, StatusCode::CONFLICT, "room_archived");
    bob_tab.typing(&room).await;
    bob_tab.error_with("room_archived").await;
    none_of_within(&mut carol_tab, &["typing"], Duration::from_millis(400)).await;

    // Leaving and removing members stay allowed; so does un-archiving with a rename.
    let (status, _) = carol.post_empty(&format!("/api/rooms/{room}/leave")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Someone no longer in it learns nothing more: not found, as for any room.
    let outsider = carol.upload(&room, "x.txt", b"x".to_vec()).await;
    common::assert_error(&outsider, StatusCode::NOT_FOUND, "not_found");
    carol_tab.typing(&room).await;
    carol_tab.error_with("not_a_member").await;
    let (status, _) = alice
        .delete(&format!("/api/rooms/{room}/members/{}", bob.id()))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let renamed = alice
        .patch(&format!("/api/rooms/{room}"), json!({"name": "Renamed"}))
        .await;
    common::assert_error(&renamed, StatusCode::CONFLICT, "room_archived");
    let (status, back) = alice
        .patch(
            &format!("/api/rooms/{room}"),
            json!({"archived": false, "name": "Launch again"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(
        (back["archived"].clone(), back["name"].clone()),
        (json!(false), json!("Launch again"))
    );
    alice.uploaded(&room, "after.txt", b"after".to_vec()).await;
}

#[tokio::test]
async fn rooms_have_everything_dms_have() {
    let (server, _admin, alice, bob, carol) = office().await;
    let room = create_room(&alice, "Team", "private", &[&bob, &carol]).await;
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    let mut carol_tab = Socket::online(&server, &carol).await;

    let first = alice_tab
        .send_acked(room.as_str(), "hello team", "t1")
        .await;
    let retry = {
        alice_tab
            .send_json(&send_frame(room.as_str(), "hello team", "t1"))
            .await;
        alice_tab.ack_for("t1").await["message"].clone()
    };
    assert_eq!(first, retry, "a retry is acked with the original");
    let second = bob_tab.send_acked(room.as_str(), "hi alice", "b1").await;
    assert_eq!((seq(&first), seq(&second)), (1, 2));
    for tab in [&mut carol_tab] {
        let message = tab.next_of_type("message").await;
        assert_eq!(message["message"]["body"], "hello team");
    }

    // Carol has two unread, Bob one (his own send read everything before it).
    let carol_view = summary(&carol, &room).await.expect("carol's summary");
    assert_eq!(
        (carol_view["unread"].clone(), carol_view["read_seq"].clone()),
        (json!(2), json!(0))
    );
    let bob_view = summary(&bob, &room).await.expect("bob's summary");
    assert_eq!(bob_view["unread"], 0);

    // Carol reads: her tabs hear the count, the others hear the receipt.
    carol_tab.mark_read(&room, 2).await;
    let unread = carol_tab.next_of_type("unread").await;
    assert_eq!(
        (unread["unread"].clone(), unread["read_seq"].clone()),
        (json!(0), json!(2))
    );
    let receipt = alice_tab
        .next_matching("carol's receipt", |f| {
            f["type"] == "read" && f["user"] == carol.id()
        })
        .await;
    assert_eq!(receipt["seq"], 2);
    let alice_view = summary(&alice, &room).await.expect("alice's summary");
    let reads = alice_view["reads"].as_array().expect("reads");
    assert!(
        reads.contains(&json!({"user": carol.id(), "seq": 2})),
        "{reads:?}"
    );

    // Several people typing reach the others, not themselves.
    bob_tab.typing(&room).await;
    carol_tab.typing(&room).await;
    let mut typers = Vec::new();
    for _ in 0..2 {
        typers.push(
            alice_tab.next_of_type("typing").await["user"]
                .as_i64()
                .expect("user"),
        );
    }
    typers.sort_unstable();
    assert_eq!(typers, [bob.id(), carol.id()]);

    // Catch-up after a gap.
    let (_, page) = carol
        .get(&format!("/api/conversations/{room}/messages?after=1"))
        .await;
    assert_eq!(
        bodies(page["messages"].as_array().expect("page")),
        ["hi alice"]
    );
}

#[tokio::test]
async fn mentions_are_counted_for_the_person_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_in(dir.path());
    let admin = common::setup_admin(&server).await;
    let alice = common::create_user(&admin, "alice").await;
    let bob = common::create_user(&admin, "bob").await;
    let room = create_room(&alice, "Ops", "open", &[&bob]).await;
    let mut alice_tab = Socket::online(&server, &alice).await;

    let message = alice_tab
        .send_acked(
            room.as_str(),
            "@bob can you look? cc @nobody, mail x@bob.com",
            "m1",
        )
        .await;
    assert_eq!(message["mentions"], json!([bob.id()]));
    alice_tab
        .send_acked(room.as_str(), "no mention here", "m2")
        .await;
    alice_tab
        .send_acked(room.as_str(), "@room standup in 5", "m3")
        .await;
    alice_tab
        .send_acked(room.as_str(), "@bob and @room: one message", "m4")
        .await;

    let bob_view = summary(&bob, &room).await.expect("summary");
    assert_eq!(
        (bob_view["unread"].clone(), bob_view["mentions"].clone()),
        (json!(4), json!(3))
    );
    let alice_view = summary(&alice, &room).await.expect("summary");
    assert_eq!(
        alice_view["mentions"], 0,
        "your own @room is not a mention of you"
    );
    let (_, listed) = bob.get("/api/mentions").await;
    assert_eq!(
        bodies(listed["messages"].as_array().expect("mentions")),
        [
            "@bob and @room: one message",
            "@room standup in 5",
            "@bob can you look? cc @nobody, mail x@bob.com"
        ]
    );

    drop(alice_tab);
    let server = server.restart();
    let bob = common::login_client(&server, "bob", &common::password_of("bob")).await;
    let bob_view = summary(&bob, &room).await.expect("summary after restart");
    assert_eq!(
        (bob_view["unread"].clone(), bob_view["mentions"].clone()),
        (json!(4), json!(3))
    );

    let mut bob_tab = Socket::online(&server, &bob).await;
    bob_tab.mark_read(&room, 1).await;
    let unread = bob_tab.next_of_type("unread").await;
    assert_eq!(
        (unread["unread"].clone(), unread["mentions"].clone()),
        (json!(3), json!(2))
    );

    // @room in General is for administrators.
    let alice = common::login_client(&server, "alice", &common::password_of("alice")).await;
    let mut alice_tab = Socket::online(&server, &alice).await;
    alice_tab
        .send_json(&send_frame("room:1", "@room free cake", "g1"))
        .await;
    alice_tab.error_with("mention_not_allowed").await;
    let admin = common::login_client(&server, "admin", common::ADMIN_PASSWORD).await;
    let mut admin_tab = Socket::online(&server, &admin).await;
    admin_tab
        .send_acked("room:1", "@room free cake", "g2")
        .await;
    let general = summary(&bob, "room:1").await.expect("General");
    assert_eq!(general["mentions"], 1);
}

#[tokio::test]
async fn notification_levels_are_kept_and_reach_every_tab() {
    let (server, _admin, alice, bob, _carol) = office().await;
    let room = create_room(&alice, "Chatter", "open", &[&bob]).await;
    assert_eq!(
        summary(&bob, &room).await.expect("summary")["notify"],
        "all"
    );
    let mut bob_tab = Socket::online(&server, &bob).await;
    let (status, _) = put(
        &bob,
        &format!("/api/conversations/{room}/notify"),
        json!({"level": "muted"}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let frame = bob_tab.next_of_type("conversation").await;
    assert_eq!(frame["action"], "notify");
    assert_eq!(
        frame["conversation"],
        json!({"id": room, "notify": "muted"})
    );
    assert_eq!(
        summary(&bob, &room).await.expect("summary")["notify"],
        "muted"
    );
    let bad = put(
        &bob,
        &format!("/api/conversations/{room}/notify"),
        json!({"level": "loud"}),
    )
    .await;
    common::assert_error(&bad, StatusCode::BAD_REQUEST, "invalid_level");
    // DMs have a level too.
    let dm = common::ws::dm_id(&alice, &bob);
    let (status, _) = put(
        &bob,
        &format!("/api/conversations/{dm}/notify"),
        json!({"level": "mentions"}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn ask_me_first_turns_a_first_dm_into_a_request() {
    let (server, _admin, alice, bob, carol) = office().await;
    let (_, settings) = bob.get("/api/me/settings").await;
    assert_eq!(settings, json!({"dm_policy": "anyone"}));
    let (status, settings) = put(&bob, "/api/me/settings", json!({"dm_policy": "ask"})).await;
    assert_eq!(
        (status, settings),
        (StatusCode::OK, json!({"dm_policy": "ask"}))
    );
    let mut bob_tab = Socket::online(&server, &bob).await;
    let mut alice_tab = Socket::online(&server, &alice).await;

    // Typing does not announce a stranger before their request is even sent.
    alice_tab.typing(&common::ws::dm_id(&alice, &bob)).await;
    none_of_within(&mut bob_tab, &["typing"], Duration::from_millis(300)).await;
    alice_tab
        .send_json(&send_frame(bob.id(), "lunch sometime?", "r1"))
        .await;
    let sent = alice_tab.next_of_type("request").await;
    assert_eq!(
        (sent["action"].as_str(), sent["client_id"].as_str()),
        (Some("sent"), Some("r1"))
    );
    let received = bob_tab.next_of_type("request").await;
    assert_eq!(received["action"], "received");
    assert_eq!(
        (received["from"].as_i64(), received["body"].as_str()),
        (Some(alice.id()), Some("lunch sometime?"))
    );
    let (_, requests) = bob.get("/api/requests").await;
    assert_eq!(requests["incoming"][0]["from"], alice.id());
    let (_, theirs) = alice.get("/api/requests").await;
    assert_eq!(theirs["outgoing"][0]["to"], bob.id());
    alice_tab
        .send_json(&send_frame(bob.id(), "hello??", "r2"))
        .await;
    alice_tab.error_with("request_pending").await;

    let (status, dm) = bob
        .post_empty(&format!("/api/requests/{}/accept", alice.id()))
        .await;
    assert_eq!(status, StatusCode::OK, "{dm}");
    assert_eq!(dm["last_message"]["body"], "lunch sometime?");
    let accepted = alice_tab.next_of_type("request").await;
    assert_eq!(
        (accepted["action"].as_str(), accepted["user"].as_i64()),
        (Some("accepted"), Some(bob.id()))
    );
    let delivered = alice_tab.next_of_type("message").await;
    assert_eq!(delivered["message"]["seq"], 1);
    // From now on it is an ordinary DM.
    alice_tab.send_acked(bob.id(), "great, noon?", "r3").await;

    // Carol asks too and is declined: she is told, the message is not kept, and she waits.
    let mut carol_tab = Socket::online(&server, &carol).await;
    carol_tab
        .send_json(&send_frame(bob.id(), "can I ask you something", "c1"))
        .await;
    carol_tab.next_of_type("request").await;
    let declined_at_least = common::now_millis();
    let (status, _) = bob
        .post_empty(&format!("/api/requests/{}/decline", carol.id()))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let declined = carol_tab.next_of_type("request").await;
    assert_eq!(
        (declined["action"].as_str(), declined["user"].as_i64()),
        (Some("declined"), Some(bob.id()))
    );
    carol_tab
        .send_json(&send_frame(bob.id(), "please?", "c2"))
        .await;
    carol_tab.error_with("request_declined").await;
    // Her request list still says so later (a reload, another device): asking again waits.
    let (_, hers) = carol.get("/api/requests").await;
    assert_eq!(hers["outgoing"], json!([]));
    assert_eq!(hers["declined"][0]["to"], bob.id(), "{hers}");
    let until = hers["declined"][0]["until"].as_i64().expect("until");
    let week_ms = 7 * 24 * 3600 * 1000;
    assert!(until > declined_at_least && until <= declined_at_least + week_ms + 60_000);
    let dm = common::ws::dm_id(&carol, &bob);
    assert!(common::ws::full_history(&carol, &dm).await.is_empty());
    let again = bob
        .post_empty(&format!("/api/requests/{}/decline", carol.id()))
        .await;
    common::assert_error(&again, StatusCode::NOT_FOUND, "not_found");

    // Once bob writes to her after all, the decline no longer stands between them.
    let mut bob_tab = Socket::online(&server, &bob).await;
    bob_tab
        .send_acked(carol.id(), "sorry, ask away", "b1")
        .await;
    let (_, hers) = carol.get("/api/requests").await;
    assert_eq!(hers["declined"], json!([]));
    carol_tab.send_acked(bob.id(), "thanks!", "c3").await;
}

#[tokio::test]
async fn a_blocked_person_reaches_nobody_and_is_never_told() {
    let (server, _admin, alice, bob, carol) = office().await;
    let dm = common::ws::dm_id(&carol, &bob);
    let mut carol_tab = Socket::online(&server, &carol).await;
    carol_tab
        .send_acked(bob.id(), "before the block", "k1")
        .await;
    let (status, _) = put_empty(&bob, &format!("/api/blocks/{}", carol.id())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, blocked) = bob.get("/api/blocks").await;
    assert_eq!(blocked["blocked"], json!([carol.id()]));
    let selfish = put_empty(&bob, &format!("/api/blocks/{}", bob.id())).await;
    common::assert_error(&selfish, StatusCode::BAD_REQUEST, "cannot_block_self");

    let mut bob_tab = Socket::online(&server, &bob).await;
    // Carol sees her message acked as always; Bob gets nothing and counts nothing, not even
    // her typing.
    carol_tab.typing(&dm).await;
    let withheld = carol_tab
        .send_acked(bob.id(), "are you ignoring me", "k2")
        .await;
    assert_eq!(seq(&withheld), 2);
    none_of_within(
        &mut bob_tab,
        &["message", "typing"],
        Duration::from_millis(400),
    )
    .await;
    let bob_view = summary(&bob, &dm).await.expect("bob's DM");
    assert_eq!(
        bob_view["unread"], 1,
        "only the message from before the block"
    );
    assert_eq!(bob_view["last_message"]["body"], "before the block");
    assert_eq!(
        bob_view["last_seq"], 1,
        "what he cannot see does not move the conversation for him"
    );
    let (_, page) = bob
        .get(&format!("/api/conversations/{dm}/messages?after=0&limit=1"))
        .await;
    assert_eq!(page["has_more"], false, "{page}");
    assert_eq!(
        bodies(&common::ws::full_history(&bob, &dm).await),
        ["before the block"]
    );
    assert_eq!(
        bodies(&common::ws::full_history(&carol, &dm).await),
        ["before the block", "are you ignoring me"]
    );
    // What was withheld cannot be quoted either.
    let mut quoting = send_frame(dm.as_str(), "what did you say?", "k5");
    quoting["reply_to"] = json!(2);
    bob_tab.send_json(&quoting).await;
    bob_tab.error_with("no_such_message").await;

    // Her mentions of him in a room do not count for him.
    let room = create_room(&alice, "Floor 2", "open", &[&bob, &carol]).await;
    carol_tab
        .send_acked(room.as_str(), "@bob hello", "k3")
        .await;
    assert_eq!(summary(&bob, &room).await.expect("room")["mentions"], 0);

    // Neither do her reactions, nor an edit that would put new words in an old message: the
    // edited message is withheld from him from then on.
    carol_tab
        .send_json(&json!({"type": "react", "conversation": dm, "seq": 1,
                           "emoji": "👀", "client_id": "k6"}))
        .await;
    carol_tab.next_of_type("ack").await;
    carol_tab
        .send_json(&json!({"type": "edit", "conversation": dm, "seq": 1,
                           "body": "something new for you", "client_id": "k7"}))
        .await;
    carol_tab.next_of_type("ack").await;
    none_of_within(&mut bob_tab, &["update"], Duration::from_millis(400)).await;
    assert!(common::ws::full_history(&bob, &dm).await.is_empty());
    let bob_view = summary(&bob, &dm).await.expect("bob's DM");
    assert_eq!(bob_view["unread"], 0, "nothing left for him to read");
    assert_eq!(
        bodies(&common::ws::full_history(&carol, &dm).await),
        ["something new for you", "are you ignoring me"]
    );

    let (status, _) = bob.delete(&format!("/api/blocks/{}", carol.id())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    carol_tab.typing(&dm).await;
    let typing = bob_tab.next_of_type("typing").await;
    assert_eq!(typing["user"], carol.id());
    carol_tab.send_acked(bob.id(), "hi again", "k4").await;
    bob_tab
        .next_matching("carol's DM after the unblock", |f| {
            f["type"] == "message" && f["message"]["body"] == "hi again"
        })
        .await;
}

#[tokio::test]
async fn what_a_block_withholds_cannot_be_brought_back_by_a_retry_or_a_read() {
    let (server, _admin, _alice, bob, carol) = office().await;
    let dm = common::ws::dm_id(&carol, &bob);
    let mut carol_tab = Socket::online(&server, &carol).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    bob_tab.send_acked(carol.id(), "hello", "b1").await;
    let greeting = carol_tab.send_acked(bob.id(), "hi there", "c1").await;
    assert_eq!(seq(&greeting), 2);
    let reaction = react_frame(&dm, 2, "👍", "b2");
    bob_tab.send_json(&reaction).await;
    bob_tab.ack_for("b2").await;

    let (status, _) = put_empty(&bob, &format!("/api/blocks/{}", carol.id())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    carol_tab
        .send_json(&json!({"type": "edit", "conversation": dm, "seq": 2,
                           "body": "words he must not see", "client_id": "c2"}))
        .await;
    carol_tab.ack_for("c2").await;
    let withheld = carol_tab.send_acked(bob.id(), "still there?", "c3").await;
    assert_eq!(seq(&withheld), 3);
    assert_eq!(summary(&bob, &dm).await.expect("bob's DM")["last_seq"], 1);

    // Repeating his reaction's frame answers no message, not the message as it now reads.
    bob_tab.send_json(&reaction).await;
    let refused = bob_tab.error_with("no_such_message").await;
    assert!(!refused.to_string().contains("must not see"), "{refused}");

    // His DM ends at the last message he may see: reading past it is refused, so it neither
    // reveals how many are withheld nor tells her "Seen".
    for past in [2, 3] {
        bob_tab.mark_read(&dm, past).await;
        bob_tab.error_with("invalid_seq").await;
    }
    none_of_within(&mut carol_tab, &["read"], Duration::from_millis(400)).await;
    let carol_view = summary(&carol, &dm).await.expect("carol's DM");
    assert_eq!(
        carol_view["reads"],
        json!([{"user": bob.id(), "seq": 1}]),
        "{carol_view}"
    );
}

/// The reactions on `message` as `[(emoji, [user ids])]`, none when it carries none.
fn reactions_of(message: &Value) -> Vec<(String, Vec<i64>)> {
    let Some(reactions) = message["reactions"].as_array() else {
        return Vec::new();
    };
    reactions
        .iter()
        .map(|r| {
            let users = r["users"].as_array().expect("users");
            let users = users.iter().map(|u| u.as_i64().expect("id")).collect();
            (r["emoji"].as_str().expect("emoji").to_owned(), users)
        })
        .collect()
}

fn react_frame(conversation: &str, seq: u64, emoji: &str, client_id: &str) -> Value {
    json!({"type": "react", "conversation": conversation, "seq": seq, "emoji": emoji,
           "client_id": client_id})
}

/// The message with `seq` in `messages`.
fn numbered(messages: &[Value], wanted: u64) -> &Value {
    messages
        .iter()
        .find(|m| seq(m) == wanted)
        .unwrap_or_else(|| panic!("message {wanted} in {messages:?}"))
}

#[tokio::test]
async fn a_blocked_persons_dm_reactions_are_not_shown_to_the_blocker_until_unblocked() {
    let (server, _admin, alice, bob, carol) = office().await;
    let dm = common::ws::dm_id(&carol, &bob);
    let mut carol_tab = Socket::online(&server, &carol).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    carol_tab.send_acked(bob.id(), "lunch at noon?", "r1").await;
    bob_tab
        .send_acked(carol.id(), "sure, the usual", "r2")
        .await;
    carol_tab.send_json(&react_frame(&dm, 1, "👀", "r3")).await;
    carol_tab.ack_for("r3").await;
    carol_tab.send_json(&react_frame(&dm, 2, "👍", "r4")).await;
    carol_tab.ack_for("r4").await;
    bob_tab.send_json(&react_frame(&dm, 2, "👍", "r5")).await;
    bob_tab.ack_for("r5").await;
    let room = create_room(&alice, "Floor 4", "open", &[&bob, &carol]).await;
    carol_tab
        .send_acked(room.as_str(), "cake in the kitchen", "r6")
        .await;
    carol_tab
        .send_json(&react_frame(&room, 1, "🎂", "r7"))
        .await;
    carol_tab.ack_for("r7").await;

    let (status, _) = put_empty(&bob, &format!("/api/blocks/{}", carol.id())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // What she put on the DM before the block, and what she puts there after it.
    carol_tab.send_json(&react_frame(&dm, 2, "🙂", "r8")).await;
    carol_tab.ack_for("r8").await;
    let (b, c) = (bob.id(), carol.id());
    let hers = |emoji: &str| (emoji.to_owned(), vec![c]);
    let his = |emoji: &str| (emoji.to_owned(), vec![b]);

    // Whatever serves Bob the DM's messages leaves her reactions out.
    let history = common::ws::full_history(&bob, &dm).await;
    assert_eq!(reactions_of(numbered(&history, 1)), []);
    assert_eq!(reactions_of(numbered(&history, 2)), [his("👍")]);
    let (status, changes) = bob
        .get(&format!("/api/conversations/{dm}/changes?after=0"))
        .await;
    assert_eq!(status, StatusCode::OK, "{changes}");
    let changed = changes["messages"].as_array().expect("messages");
    assert_eq!(reactions_of(numbered(changed, 1)), []);
    assert_eq!(reactions_of(numbered(changed, 2)), [his("👍")]);
    let listed = summary(&bob, &dm).await.expect("bob's DM");
    assert_eq!(reactions_of(&listed["last_message"]), [his("👍")]);
    let mut bob_tab = Socket::online(&server, &bob).await;
    let greeted = bob_tab.hello["conversations"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["id"] == dm.as_str()))
        .expect("the DM in hello")
        .clone();
    assert_eq!(reactions_of(&greeted["last_message"]), [his("👍")]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let found = loop {
        let (status, found) = common::send(
            bob.request(Method::GET, "/api/search")
                .query(&[("q", "lunch")]),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{found}");
        if let Some(hit) = found["hits"].as_array().and_then(|h| h.first()) {
            break hit["message"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "never found: {found}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((seq(&found), reactions_of(&found)), (1, vec![]));

    // So do the ack and update of his own reaction and his edit, in every tab of his, and
    // the ack of a retry; Carol's tabs show everything as before.
    let mut bob_other_tab = Socket::online(&server, &bob).await;
    bob_tab.send_json(&react_frame(&dm, 1, "❤️", "r9")).await;
    let acked = bob_tab.ack_for("r9").await["message"].clone();
    assert_eq!(reactions_of(&acked), [his("❤️")]);
    let update = bob_other_tab.next_of_type("update").await;
    assert_eq!(reactions_of(&update["message"]), [his("❤️")]);
    let update = carol_tab.next_of_type("update").await;
    assert_eq!(reactions_of(&update["message"]), [hers("👀"), his("❤️")]);
    bob_tab.send_json(&react_frame(&dm, 1, "❤️", "r9")).await;
    let retried = bob_tab.ack_for("r9").await["message"].clone();
    assert_eq!(reactions_of(&retried), [his("❤️")]);
    bob_tab
        .send_json(&json!({"type": "edit", "conversation": dm, "seq": 2,
                           "body": "sure, the usual place", "client_id": "r10"}))
        .await;
    let acked = bob_tab.ack_for("r10").await["message"].clone();
    assert_eq!(reactions_of(&acked), [his("👍")]);
    let update = bob_other_tab.next_of_type("update").await;
    assert_eq!(reactions_of(&update["message"]), [his("👍")]);
    let update = carol_tab.next_of_type("update").await;
    assert_eq!(
        reactions_of(&update["message"]),
        [("👍".to_owned(), vec![c, b]), hers("🙂")]
    );
    let sent = bob_tab.send_acked(carol.id(), "see you there", "r11").await;
    carol_tab
        .send_json(&react_frame(&dm, seq(&sent), "👌", "r12"))
        .await;
    carol_tab.ack_for("r12").await;
    let retried = bob_tab.send_acked(carol.id(), "see you there", "r11").await;
    assert_eq!(
        (seq(&retried), reactions_of(&retried)),
        (seq(&sent), vec![])
    );

    // Room messages are still shown, her reactions with them.
    let in_room = common::ws::full_history(&bob, &room).await;
    assert_eq!(reactions_of(numbered(&in_room, 1)), [hers("🎂")]);

    // Unblocking shows what she put there, before the block and during it.
    let (status, _) = bob.delete(&format!("/api/blocks/{}", carol.id())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let history = common::ws::full_history(&bob, &dm).await;
    assert_eq!(reactions_of(numbered(&history, 1)), [hers("👀"), his("❤️")]);
    assert_eq!(
        reactions_of(numbered(&history, 2)),
        [("👍".to_owned(), vec![c, b]), hers("🙂")]
    );
}

#[tokio::test]
async fn only_active_people_can_be_blocked_and_a_block_outlives_the_account() {
    let (_server, admin, alice, bob, carol) = office().await;
    let (status, _) = put_empty(&bob, &format!("/api/blocks/{}", carol.id())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for user in [&alice, &carol] {
        let (status, body) = admin
            .patch(
                &format!("/api/admin/users/{}", user.id()),
                json!({"disabled": true}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    let disabled = put_empty(&bob, &format!("/api/blocks/{}", alice.id())).await;
    common::assert_error(&disabled, StatusCode::BAD_REQUEST, "no_such_user");
    for refused in [
        put_empty(&bob, "/api/blocks/999").await,
        bob.delete("/api/blocks/999").await,
    ] {
        common::assert_error(&refused, StatusCode::BAD_REQUEST, "no_such_user");
    }
    let (_, blocked) = bob.get("/api/blocks").await;
    assert_eq!(blocked["blocked"], json!([carol.id()]));

    // Carol's account is disabled, but Bob's block on her is still his to lift.
    let (status, body) = bob.delete(&format!("/api/blocks/{}", carol.id())).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, blocked) = bob.get("/api/blocks").await;
    assert_eq!(blocked["blocked"], json!([]));
}

#[tokio::test]
async fn a_block_holds_for_mentions_made_before_it_and_ends_with_it() {
    let (server, _admin, alice, bob, carol) = office().await;
    let room = create_room(&alice, "Floor 3", "open", &[&bob, &carol]).await;
    let mut carol_tab = Socket::online(&server, &carol).await;
    carol_tab
        .send_acked(room.as_str(), "@bob have a look", "m1")
        .await;
    carol_tab
        .send_acked(room.as_str(), "@room and all of you", "m2")
        .await;
    let mentions_of_bob = || async {
        let count = summary(&bob, &room).await.expect("room")["mentions"].clone();
        let (_, listed) = bob.get("/api/mentions").await;
        (count, listed["messages"].as_array().expect("list").len())
    };
    assert_eq!(mentions_of_bob().await, (json!(2), 2));

    let (status, _) = put_empty(&bob, &format!("/api/blocks/{}", carol.id())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        mentions_of_bob().await,
        (json!(0), 0),
        "by name or @room alike"
    );

    let (status, _) = bob.delete(&format!("/api/blocks/{}", carol.id())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(mentions_of_bob().await, (json!(2), 2));
}

#[tokio::test]
async fn a_new_colleague_joins_general_live_and_hears_it_at_once() {
    let (server, admin, alice, _bob, _carol) = office().await;
    let mut alice_tab = Socket::online(&server, &alice).await;
    // General is in use (its member list is warm) before the newcomer arrives.
    alice_tab.send_acked("room:1", "morning all", "g1").await;
    let dave = common::create_user(&admin, "dave").await;
    let joined = alice_tab
        .next_matching("dave joining General", |f| {
            f["type"] == "member" && f["conversation"] == "room:1"
        })
        .await;
    assert_eq!(
        (
            joined["action"].as_str(),
            joined["user"]["username"].as_str()
        ),
        (Some("added"), Some("dave"))
    );
    let mut dave_tab = Socket::online(&server, &dave).await;
    alice_tab.send_acked("room:1", "welcome dave", "g2").await;
    let message = dave_tab.next_of_type("message").await;
    assert_eq!(message["message"]["body"], "welcome dave");
}

/// `client`'s chat requests: who asks them (by id) and whom they ask.
async fn requests_of(client: &Client) -> (Vec<i64>, Vec<i64>) {
    let (status, requests) = client.get("/api/requests").await;
    assert_eq!(status, StatusCode::OK, "{requests}");
    let ids = |list: &str, key: &str| -> Vec<i64> {
        requests[list]
            .as_array()
            .expect("a request list")
            .iter()
            .map(|r| r[key].as_i64().expect("a user id"))
            .collect()
    };
    (ids("incoming", "from"), ids("outgoing", "to"))
}

#[tokio::test]
async fn a_request_waiting_when_the_block_is_made_goes_out_of_sight() {
    let (server, _admin, alice, _bob, carol) = office().await;
    put(&carol, "/api/me/settings", json!({"dm_policy": "ask"})).await;
    let mut carol_tab = Socket::online(&server, &carol).await;
    let mut alice_tab = Socket::online(&server, &alice).await;
    alice_tab
        .send_json(&send_frame(carol.id(), "a question for you", "w1"))
        .await;
    assert_eq!(alice_tab.next_of_type("request").await["action"], "sent");
    assert_eq!(
        carol_tab.next_of_type("request").await["action"],
        "received"
    );
    assert_eq!(requests_of(&carol).await, (vec![alice.id()], vec![]));

    // Carol blocks her: the request leaves carol's list and can no longer be answered; alice
    // is not told, and to her it is still pending.
    let (status, _) = put_empty(&carol, &format!("/api/blocks/{}", alice.id())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(requests_of(&carol).await, (vec![], vec![]));
    for answer in ["accept", "decline"] {
        let refused = carol
            .post_empty(&format!("/api/requests/{}/{answer}", alice.id()))
            .await;
        common::assert_error(&refused, StatusCode::NOT_FOUND, "not_found");
    }
    assert_eq!(requests_of(&alice).await, (vec![], vec![carol.id()]));
    alice_tab
        .send_json(&send_frame(carol.id(), "did you see it?", "w2"))
        .await;
    alice_tab.error_with("request_pending").await;
    none_of_within(
        &mut carol_tab,
        &["request", "message"],
        Duration::from_millis(300),
    )
    .await;

    // Lifting the block ends it, as for a request the block hid from the start.
    let (status, _) = carol.delete(&format!("/api/blocks/{}", alice.id())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(alice_tab.next_of_type("request").await["action"], "dropped");
    assert_eq!(requests_of(&alice).await, (vec![], vec![]));
    assert_eq!(requests_of(&carol).await, (vec![], vec![]));
}

#[tokio::test]
async fn a_request_hidden_by_a_block_is_dropped_when_the_block_ends() {
    let (server, _admin, alice, _bob, carol) = office().await;
    put(&carol, "/api/me/settings", json!({"dm_policy": "ask"})).await;
    let (status, _) = put_empty(&carol, &format!("/api/blocks/{}", alice.id())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut carol_tab = Socket::online(&server, &carol).await;
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut alice_other_tab = Socket::online(&server, &alice).await;

    // Blocked, she sees her request sent as always; carol hears nothing of it.
    alice_tab
        .send_json(&send_frame(carol.id(), "while you block me", "h1"))
        .await;
    assert_eq!(alice_tab.next_of_type("request").await["action"], "sent");
    alice_other_tab.next_of_type("request").await;
    none_of_within(&mut carol_tab, &["request"], Duration::from_millis(300)).await;
    assert_eq!(requests_of(&alice).await, (vec![], vec![carol.id()]));
    assert_eq!(requests_of(&carol).await, (vec![], vec![]));

    // The unblock does not bring the request back to carol; it ends, and every tab of
    // alice's hears so (she is no longer waiting for an answer that cannot come).
    let (status, _) = carol.delete(&format!("/api/blocks/{}", alice.id())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for tab in [&mut alice_tab, &mut alice_other_tab] {
        let dropped = tab.next_of_type("request").await;
        assert_eq!(
            (dropped["action"].as_str(), dropped["user"].as_i64()),
            (Some("dropped"), Some(carol.id())),
            "{dropped}"
        );
    }
    none_of_within(&mut carol_tab, &["request"], Duration::from_millis(300)).await;
    assert_eq!(requests_of(&alice).await, (vec![], vec![]));
    assert_eq!(requests_of(&carol).await, (vec![], vec![]));
    let stale = carol
        .post_empty(&format!("/api/requests/{}/accept", alice.id()))
        .await;
    common::assert_error(&stale, StatusCode::NOT_FOUND, "not_found");

    // Her next message is a fresh request, and this one reaches carol.
    alice_tab
        .send_json(&send_frame(carol.id(), "can we talk now?", "h2"))
        .await;
    assert_eq!(alice_tab.next_of_type("request").await["action"], "sent");
    let received = carol_tab.next_of_type("request").await;
    assert_eq!(
        (received["action"].as_str(), received["body"].as_str()),
        (Some("received"), Some("can we talk now?"))
    );
    assert_eq!(requests_of(&carol).await, (vec![alice.id()], vec![]));
    let (status, dm) = carol
        .post_empty(&format!("/api/requests/{}/accept", alice.id()))
        .await;
    assert_eq!(status, StatusCode::OK, "{dm}");
    assert_eq!(dm["last_message"]["body"], "can we talk now?");
    assert_eq!(
        bodies(&common::ws::full_history(&carol, dm["id"].as_str().expect("id")).await),
        ["can we talk now?"],
        "what the block withheld stays withheld"
    );
    assert_eq!(requests_of(&alice).await, (vec![], vec![]));
}

#[tokio::test]
async fn a_request_ends_when_the_dm_starts_another_way() {
    let (server, _admin, alice, bob, carol) = office().await;
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    let mut carol_tab = Socket::online(&server, &carol).await;

    // Carol asked first, then takes DMs from anyone: alice's next message starts the DM, and
    // her request is over for both of them.
    put(&carol, "/api/me/settings", json!({"dm_policy": "ask"})).await;
    alice_tab
        .send_json(&send_frame(carol.id(), "may I?", "a1"))
        .await;
    alice_tab.next_of_type("request").await;
    carol_tab.next_of_type("request").await;
    put(&carol, "/api/me/settings", json!({"dm_policy": "anyone"})).await;
    let first = alice_tab
        .send_acked(carol.id(), "never mind, hello", "a2")
        .await;
    assert_eq!(seq(&first), 1);
    assert_eq!(requests_of(&alice).await, (vec![], vec![]));
    assert_eq!(requests_of(&carol).await, (vec![], vec![]));

    // Bob's request is hidden by carol's block; carol writes to him herself. The DM has
    // begun, so he is not left waiting for an answer to it, block or not.
    let (status, _) = put_empty(&carol, &format!("/api/blocks/{}", bob.id())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    bob_tab
        .send_json(&send_frame(carol.id(), "hello carol", "b1"))
        .await;
    bob_tab.next_of_type("request").await;
    carol_tab
        .send_acked(bob.id(), "about that report", "c1")
        .await;
    bob_tab
        .next_matching("carol's first message", |f| {
            f["type"] == "message" && f["message"]["body"] == "about that report"
        })
        .await;
    assert_eq!(requests_of(&bob).await, (vec![], vec![]));
    let (status, _) = carol.delete(&format!("/api/blocks/{}", bob.id())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    none_of_within(&mut bob_tab, &["request"], Duration::from_millis(300)).await;

    // Two people who both ask first, each asking the other: accepting one request starts the
    // DM, and the other one is over too.
    put(&alice, "/api/me/settings", json!({"dm_policy": "ask"})).await;
    put(&bob, "/api/me/settings", json!({"dm_policy": "ask"})).await;
    bob_tab
        .send_json(&send_frame(alice.id(), "lunch?", "b2"))
        .await;
    bob_tab.next_of_type("request").await;
    alice_tab
        .send_json(&send_frame(bob.id(), "coffee?", "a3"))
        .await;
    alice_tab
        .next_matching("alice's request sent", |f| {
            f["type"] == "request" && f["action"] == "sent"
        })
        .await;
    let (status, dm) = alice
        .post_empty(&format!("/api/requests/{}/accept", bob.id()))
        .await;
    assert_eq!(status, StatusCode::OK, "{dm}");
    assert_eq!(requests_of(&alice).await, (vec![], vec![]));
    assert_eq!(requests_of(&bob).await, (vec![], vec![]));
    let refused = bob
        .post_empty(&format!("/api/requests/{}/accept", alice.id()))
        .await;
    common::assert_error(&refused, StatusCode::NOT_FOUND, "not_found");
}
