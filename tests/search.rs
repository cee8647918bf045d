//! Message search: people find what they remember of a message (a word's start, an accent
//! left out, a phrase, Chinese without spaces), narrowed by who, where and when, and only in
//! conversations they are in now; edits and deletes show at once, and a lost index comes back.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::ws::{Socket, dm_id};
use common::{Client, Method, StatusCode, TestServer, Value, create_room, json};

/// How long an update may take to become searchable (the index commits every 500 ms).
const FRESH: Duration = Duration::from_secs(5);

async fn search_raw(client: &Client, params: &[(&str, &str)]) -> (StatusCode, Value) {
    common::send(client.request(Method::GET, "/api/search").query(params)).await
}

/// The bodies found for `q`, in the order given.
async fn search(client: &Client, q: &str) -> Vec<String> {
    let (status, body) = search_raw(client, &[("q", q)]).await;
    assert_eq!(status, StatusCode::OK, "search {q}: {body}");
    bodies(&body)
}

fn bodies(found: &Value) -> Vec<String> {
    found["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("hits in {found}"))
        .iter()
        .map(|h| h["message"]["body"].as_str().expect("body").to_owned())
        .collect()
}

/// Polls until `q` finds exactly `want` (newest first), or fails after [`FRESH`].
async fn eventually(client: &Client, q: &str, want: &[&str]) {
    let deadline = Instant::now() + FRESH;
    loop {
        let (status, body) = search_raw(client, &[("q", q)]).await;
        if status == StatusCode::OK && bodies(&body) == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "search {q:?} as {} should find {want:?}, got {status} {body}",
            client.username()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn office() -> (TestServer, Client, Client, Client) {
    office_on(TestServer::start()).await
}

async fn office_on(server: TestServer) -> (TestServer, Client, Client, Client) {
    let admin = common::setup_admin(&server).await;
    let alice = common::create_user(&admin, "alice").await;
    let bob = common::create_user(&admin, "bob").await;
    let carol = common::create_user(&admin, "carol").await;
    (server, alice, bob, carol)
}

#[tokio::test]
async fn words_prefixes_phrases_accents_compounds_and_chinese_are_found() {
    let (server, alice, bob, _carol) = office().await;
    let mut tab = Socket::online(&server, &alice).await;
    let general = "room:1";
    for (i, body) in [
        "Please send the invoice by Friday",
        "Lunch at the café downstairs?",
        "Die Rechnungsadresse hat sich geändert",
        "明天的会议取消了",
        "the next week looks busy",
        "week after next is the offsite",
    ]
    .iter()
    .enumerate()
    {
        tab.send_acked(general, body, &format!("m{i}")).await;
    }

    eventually(&bob, "inv", &["Please send the invoice by Friday"]).await;
    assert_eq!(
        search(&bob, "invoice friday").await,
        ["Please send the invoice by Friday"]
    );
    assert_eq!(search(&bob, "invoice monday").await, Vec::<String>::new());
    assert_eq!(
        search(&bob, "cafe").await,
        ["Lunch at the café downstairs?"]
    );
    assert_eq!(
        search(&bob, "CAFÉ").await,
        ["Lunch at the café downstairs?"]
    );
    assert_eq!(
        search(&bob, "Rechnungs").await,
        ["Die Rechnungsadresse hat sich geändert"]
    );
    assert_eq!(
        search(&bob, "geandert").await,
        ["Die Rechnungsadresse hat sich geändert"]
    );
    assert_eq!(search(&bob, "会议").await, ["明天的会议取消了"]);
    assert_eq!(search(&bob, "会议取消").await, ["明天的会议取消了"]);
    assert_eq!(search(&bob, "议会").await, Vec::<String>::new());
    // A phrase wants its words together and in order; loose words match both.
    assert_eq!(
        search(&bob, "\"next week\"").await,
        ["the next week looks busy"]
    );
    assert_eq!(
        search(&bob, "next week").await,
        ["week after next is the offsite", "the next week looks busy"]
    );

    // Highlights are byte ranges of the body.
    let (_, found) = search_raw(&bob, &[("q", "inv fri")]).await;
    let hit = &found["hits"][0];
    let body = hit["message"]["body"].as_str().expect("body");
    let marked: Vec<&str> = hit["highlights"]
        .as_array()
        .expect("highlights")
        .iter()
        .map(|r| {
            &body[r[0].as_u64().expect("offset") as usize..r[1].as_u64().expect("offset") as usize]
        })
        .collect();
    assert_eq!(marked, ["invoice", "Friday"]);
    assert_eq!(found["complete"], true);
    assert_eq!(hit["message"]["conversation"], general);
    let (_, found) = search_raw(&bob, &[("q", "会议")]).await;
    let range = &found["hits"][0]["highlights"][0];
    assert_eq!(range, &json!([9, 15]), "{found}");

    // Relevance order on request.
    let (status, found) =
        search_raw(&bob, &[("q", "week"), ("sort", "best"), ("limit", "1")]).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(bodies(&found).len(), 1);
}

/// Today's date and its neighbours as `YYYY-MM-DD` (UTC).
fn days_around_today() -> [String; 3] {
    let today = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        / 86_400;
    [today - 1, today, today + 1].map(|d| civil(d as i64))
}

/// H. Hinnant's `civil_from_days`.
fn civil(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[tokio::test]
async fn filters_narrow_by_sender_conversation_and_date_and_others_dms_stay_private() {
    let (server, alice, bob, carol) = office().await;
    let mut alice_tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    let mut carol_tab = Socket::online(&server, &carol).await;
    let budget = create_room(&alice, "Budget 2027", "private", &[&bob]).await;
    alice_tab
        .send_acked("room:1", "report from alice in general", "a1")
        .await;
    bob_tab
        .send_acked("room:1", "report from bob in general", "b1")
        .await;
    alice_tab
        .send_acked(budget.as_str(), "report from alice in budget", "a2")
        .await;
    alice_tab
        .send_acked(bob.id(), "report from alice to bob", "a3")
        .await;
    carol_tab
        .send_acked(bob.id(), "report from carol to bob", "c1")
        .await;

    eventually(
        &bob,
        "report",
        &[
            "report from carol to bob",
            "report from alice to bob",
            "report from alice in budget",
            "report from bob in general",
            "report from alice in general",
        ],
    )
    .await;
    assert_eq!(
        search(&bob, "report from:alice").await,
        [
            "report from alice to bob",
            "report from alice in budget",
            "report from alice in general",
        ]
    );
    assert_eq!(
        search(&bob, "from:@Carol").await,
        ["report from carol to bob"]
    );
    assert_eq!(
        search(&bob, "report in:general").await,
        ["report from bob in general", "report from alice in general",]
    );
    assert_eq!(
        search(&bob, "in:\"budget 2027\"").await,
        ["report from alice in budget"]
    );
    assert_eq!(
        search(&bob, "in:@alice").await,
        ["report from alice to bob"]
    );
    assert_eq!(
        search(&bob, "report in:@alice from:bob").await,
        Vec::<String>::new()
    );

    // Nobody finds a DM they are not in, nor a room they are not in.
    assert_eq!(
        search(&carol, "report").await,
        [
            "report from carol to bob",
            "report from bob in general",
            "report from alice in general",
        ]
    );
    let refused = search_raw(&carol, &[("q", "report in:\"budget 2027\"")]).await;
    common::assert_error(&refused, StatusCode::BAD_REQUEST, "invalid_query");

    let [yesterday, today, tomorrow] = days_around_today();
    let all = search(&bob, "report").await;
    assert_eq!(
        search(&bob, &format!("report after:{yesterday}")).await,
        all
    );
    assert_eq!(
        search(&bob, &format!("report before:{tomorrow}")).await,
        all
    );
    assert_eq!(
        search(&bob, &format!("report before:{today}")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        search(&bob, &format!("report after:{today}")).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn has_file_finds_messages_with_files_and_a_file_is_found_by_its_name() {
    let (server, alice, bob, _carol) = office().await;
    let conv = dm_id(&alice, &bob);
    let mut tab = Socket::online(&server, &alice).await;
    tab.send_acked(bob.id(), "the report is late", "plain")
        .await;
    let file = alice
        .uploaded(
            &conv,
            "Quarterly-Invoices.pdf",
            b"%PDF-1.4 not really".to_vec(),
        )
        .await;
    tab.send_json(
        &json!({"type": "send", "conversation": conv, "body": "the report, attached",
        "files": [file["id"]], "client_id": "with-file"}),
    )
    .await;
    tab.ack_for("with-file").await;

    eventually(&bob, "report has:file", &["the report, attached"]).await;
    assert_eq!(
        search(&bob, "report").await,
        ["the report, attached", "the report is late"]
    );
    // The file's name is searchable, by the start of its words too.
    assert_eq!(search(&bob, "invoic").await, ["the report, attached"]);
    assert_eq!(search(&bob, "has:file").await, ["the report, attached"]);
}

#[tokio::test]
async fn bad_queries_are_refused_with_a_reason() {
    let (_server, alice, _bob, _carol) = office().await;
    for (params, says) in [
        (vec![("q", "before:2026-13-01")], "not a date"),
        (vec![("q", "after:soon")], "after:2026-11-01"),
        (vec![("q", "from:nobody")], "no user named nobody"),
        (vec![("q", "in:@nobody")], "no user named nobody"),
        (vec![("q", "in:nowhere")], "no room named nowhere"),
        (vec![("q", "has:image")], "only has:file"),
        (vec![("q", "from:alice from:bob")], "only once"),
        (vec![("q", "in:general in:@bob")], "only once"),
        (vec![("q", "has:file has:file")], "only once"),
        (vec![("q", "report has:file HAS:File")], "only once"),
        (
            vec![("q", "before:2026-01-01 before:2026-02-01")],
            "only once",
        ),
        (vec![("q", "")], "type something"),
        (vec![("q", "x"), ("limit", "0")], "limit"),
        (vec![("q", "x"), ("limit", "101")], "limit"),
        (vec![("q", "x"), ("sort", "oldest")], "sort"),
    ] {
        let got = search_raw(&alice, &params).await;
        common::assert_error(&got, StatusCode::BAD_REQUEST, "invalid_query");
        let message = got.1["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{params:?}: {message}");
    }
    let (status, _) = common::send(common::http().get(_server.url("/api/search?q=x"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_removed_member_no_longer_finds_the_room() {
    let (server, alice, bob, _carol) = office().await;
    let mut tab = Socket::online(&server, &alice).await;
    let room = create_room(&alice, "Secret plans", "private", &[&bob]).await;
    tab.send_acked(room.as_str(), "the surprise party is on friday", "s1")
        .await;
    eventually(&bob, "surprise", &["the surprise party is on friday"]).await;

    let (status, _) = alice
        .delete(&format!("/api/rooms/{room}/members/{}", bob.id()))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(search(&bob, "surprise").await, Vec::<String>::new());
    assert_eq!(
        search(&alice, "surprise").await,
        ["the surprise party is on friday"]
    );
}

#[tokio::test]
async fn edits_and_deletes_reach_the_index() {
    let (server, alice, bob, _carol) = office().await;
    let mut tab = Socket::online(&server, &alice).await;
    let conv = dm_id(&alice, &bob);
    tab.send_acked(bob.id(), "meet at the harbour", "m1").await;
    tab.send_acked(bob.id(), "bring the blueprints", "m2").await;
    eventually(&bob, "harbour", &["meet at the harbour"]).await;

    tab.send_json(&json!({"type": "edit", "conversation": conv, "seq": 1, "body": "meet at the station", "client_id": "e1"}))
        .await;
    tab.ack_for("e1").await;
    eventually(&bob, "station", &["meet at the station"]).await;
    assert_eq!(search(&bob, "harbour").await, Vec::<String>::new());

    tab.send_json(&json!({"type": "delete", "conversation": conv, "seq": 2, "client_id": "d1"}))
        .await;
    tab.ack_for("d1").await;
    eventually(&bob, "blueprints", &[]).await;
    assert_eq!(search(&alice, "blue").await, Vec::<String>::new());
    // Still gone after a restart, which reopens the same index.
    let server = server.restart();
    let alice = common::login_client(&server, "alice", &common::password_of("alice")).await;
    eventually(&alice, "meet", &["meet at the station"]).await;
    assert_eq!(search(&alice, "blueprints").await, Vec::<String>::new());
}

#[tokio::test]
async fn an_index_removed_while_the_server_runs_is_rebuilt() {
    let (server, alice, bob, _carol) = office().await;
    let mut tab = Socket::online(&server, &alice).await;
    tab.send_acked(bob.id(), "quarterly numbers attached", "q1")
        .await;
    eventually(&bob, "quarterly", &["quarterly numbers attached"]).await;

    let index = server.data_dir().join("search");
    assert!(index.join("index").join("meta.json").is_file());
    std::fs::remove_dir_all(&index).expect("remove the index");
    assert!(
        server.wait_for_log("removed while confab ran", FRESH),
        "the removal was noticed"
    );
    // Rebuilt from the database within a few seconds; meanwhile search says it is not ready.
    let deadline = Instant::now() + FRESH;
    loop {
        let (status, body) = search_raw(&bob, &[("q", "quarterly")]).await;
        let rebuilt = index.join("format").is_file();
        if rebuilt && status == StatusCode::OK && bodies(&body) == ["quarterly numbers attached"] {
            break;
        }
        if status != StatusCode::OK {
            common::assert_error(
                &(status, body.clone()),
                StatusCode::SERVICE_UNAVAILABLE,
                "search_unavailable",
            );
        }
        assert!(Instant::now() < deadline, "not rebuilt: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(index.join("index").join("meta.json").is_file());
    // And it keeps up with new messages.
    tab.send_acked(bob.id(), "quarterly review moved", "q2")
        .await;
    eventually(
        &bob,
        "quarterly",
        &["quarterly review moved", "quarterly numbers attached"],
    )
    .await;
}

#[tokio::test]
async fn an_index_of_an_older_format_is_rebuilt_at_start() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path();
    let (server, alice, bob, _carol) = office_on(TestServer::start_in(dir)).await;
    let mut tab = Socket::online(&server, &alice).await;
    tab.send_acked(bob.id(), "archive this thread", "a1").await;
    eventually(&bob, "archive", &["archive this thread"]).await;
    tab.close().await;
    assert!(server.stop().success());
    std::fs::write(dir.join("search").join("format"), "confab-search 0\n").expect("format");
    let server = TestServer::start_in(dir);
    let bob = common::login_client(&server, "bob", &common::password_of("bob")).await;
    eventually(&bob, "archive", &["archive this thread"]).await;
    assert!(server.wait_for_log("building the search index", Duration::from_secs(1)));
    let format = std::fs::read_to_string(dir.join("search").join("format")).expect("format");
    assert_eq!(format.trim(), "confab-search 2");
}

#[tokio::test]
async fn a_crash_loses_nothing_from_search() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path();
    let (mut server, alice, bob, _carol) = office_on(TestServer::start_in(dir)).await;
    let mut tab = Socket::online(&server, &alice).await;
    tab.send_acked(bob.id(), "the vault code is 1234", "v1")
        .await;
    eventually(&bob, "vault", &["the vault code is 1234"]).await;
    // Acked (committed to redb) but killed before the index's next commit.
    tab.send_acked(bob.id(), "the vault moved upstairs", "v2")
        .await;
    let conv = dm_id(&alice, &bob);
    tab.send_json(&json!({"type": "delete", "conversation": conv, "seq": 1, "client_id": "d1"}))
        .await;
    tab.ack_for("d1").await;
    server.kill();

    let server = TestServer::start_in(dir);
    let bob = common::login_client(&server, "bob", &common::password_of("bob")).await;
    eventually(&bob, "vault", &["the vault moved upstairs"]).await;
    assert!(server.wait_for_log("not closed cleanly", Duration::from_secs(1)));
}
