//! History: paging back through a conversation, and catching up after time away.

mod common;

use common::ws::{Socket, dm_id, seq};
use common::{Client, TestServer, assert_error, create_user, json, setup_admin};
use reqwest::StatusCode;
use serde_json::Value;

/// `GET` a history page, asserting 200; returns the seqs and `has_more`.
async fn page(client: &Client, conversation: &str, query: &str) -> (Vec<u64>, Value) {
    let path = format!("/api/conversations/{conversation}/messages{query}");
    let (status, body) = client.get(&path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    let seqs = body["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("GET {path}: a messages array, got {body}"))
        .iter()
        .map(seq)
        .collect();
    (seqs, body["has_more"].clone())
}

#[tokio::test]
async fn history_pages_go_back_newest_first_with_each_page_oldest_to_newest() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let conv = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut sent = Vec::new();
    for i in 1..=7 {
        sent.push(
            alice_tab
                .send_acked(bob.id(), &format!("note {i}"), &format!("n-{i}"))
                .await,
        );
    }

    assert_eq!(
        page(&bob, &conv, "?limit=3").await,
        (vec![5, 6, 7], json!(true))
    );
    assert_eq!(
        page(&bob, &conv, "?before=5&limit=3").await,
        (vec![2, 3, 4], json!(true))
    );
    assert_eq!(
        page(&bob, &conv, "?before=2&limit=3").await,
        (vec![1], json!(false))
    );
    assert_eq!(
        page(&bob, &conv, "?before=4&limit=3").await,
        (vec![1, 2, 3], json!(false)),
        "a page that ends exactly at the first message has nothing more"
    );
    assert_eq!(
        page(&bob, &conv, "").await,
        ((1..=7).collect::<Vec<u64>>(), json!(false)),
        "the default page (50) holds all seven"
    );
    assert_eq!(
        page(&bob, &conv, "?limit=100").await,
        ((1..=7).collect::<Vec<u64>>(), json!(false))
    );
    assert_eq!(page(&bob, &conv, "?before=1").await, (vec![], json!(false)));

    let (status, body) = alice
        .get(&format!("/api/conversations/{conv}/messages?limit=2"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["messages"],
        json!([sent[5], sent[6]]),
        "history messages are the acked message objects"
    );
}

#[tokio::test]
async fn history_refuses_a_bad_query_with_invalid_query() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let conv = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    alice_tab.send_acked(bob.id(), "hi", "q-1").await;

    for query in [
        "?limit=0",
        "?limit=101",
        "?limit=ten",
        "?limit=-1",
        "?before=abc",
        "?after=1.5",
        "?before=1&after=0",
    ] {
        let got = bob
            .get(&format!("/api/conversations/{conv}/messages{query}"))
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_query");
    }
}

#[tokio::test]
async fn an_empty_dm_answers_an_empty_page_to_its_members_only() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let bob = create_user(&admin, "bob").await;
    let carol = create_user(&admin, "carol").await;
    let conv = dm_id(&alice, &bob);

    for member in [&alice, &bob] {
        assert_eq!(page(member, &conv, "").await, (vec![], json!(false)));
    }
    let got = carol
        .get(&format!("/api/conversations/{conv}/messages"))
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found");
    let got = alice
        .get("/api/conversations/dm:999998:999999/messages")
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_returning_user_sees_what_they_missed_in_hello_and_fetches_exactly_the_gap() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let conv = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;

    let seen = alice_tab
        .send_acked(bob.id(), "before you left", "m-1")
        .await;
    assert_eq!(bob_tab.next_of_type("message").await["message"], seen);
    bob_tab.mark_read(&conv, 1).await;
    bob_tab.next_of_type("unread").await;
    bob_tab.close().await;

    let mut missed = Vec::new();
    for i in 2..=4 {
        missed.push(
            alice_tab
                .send_acked(conv.as_str(), &format!("missed {i}"), &format!("m-{i}"))
                .await,
        );
    }

    let mut bob_back = Socket::open(&server, &bob).await;
    let hello = bob_back.hello().await;
    let summary = hello["conversations"]
        .as_array()
        .and_then(|convs| convs.iter().find(|c| c["id"] == conv))
        .unwrap_or_else(|| panic!("the DM is in bob's hello: {hello}"));
    assert_eq!(summary["last_seq"], 4, "{summary}");
    assert_eq!(summary["read_seq"], 1, "{summary}");
    assert_eq!(summary["unread"], 3, "{summary}");
    assert_eq!(summary["last_message"], missed[2], "{summary}");

    let (status, gap) = bob
        .get(&format!("/api/conversations/{conv}/messages?after=1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{gap}");
    assert_eq!(
        gap,
        json!({"messages": missed, "has_more": false}),
        "exactly the three missed, oldest first"
    );
    assert_eq!(
        page(&bob, &conv, "?after=1&limit=2").await,
        (vec![2, 3], json!(true)),
        "a partial catch-up says newer ones exist"
    );
    assert_eq!(
        page(&bob, &conv, "?after=3&limit=2").await,
        (vec![4], json!(false))
    );
    // Alice's DM with bob's new colleague sorts right after theirs; it stays out of bob's page.
    let admin = common::login_client(&server, "admin", common::ADMIN_PASSWORD).await;
    let carol = create_user(&admin, "carol").await;
    let next = dm_id(&alice, &carol);
    assert!(next.as_str() > conv.as_str(), "{next} sorts after {conv}");
    alice_tab.send_acked(carol.id(), "hi carol", "m-5").await;
    assert_eq!(
        page(&bob, &conv, "?after=4").await,
        (vec![], json!(false)),
        "nothing after the newest"
    );
    assert_eq!(page(&bob, &conv, "?after=3").await, (vec![4], json!(false)));
}
