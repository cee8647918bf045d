//! Monitoring: `/metrics` is off unless configured, guarded by its token or by loopback, and
//! its numbers follow what happened; the admin page's status is for administrators only.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::metrics::{TOKEN, scrape, scrape_with, server_with_token, wait_for_value};
use common::ws::Socket;
use common::{
    Client, TestServer, alice_and_bob, assert_error, create_user, http, http_from, login, send,
    setup_admin,
};

#[tokio::test]
async fn metrics_do_not_exist_unless_configured() {
    let server = TestServer::start();
    let unknown = send(http().get(server.url("/no-such-page"))).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "not_found");
    for request in [
        http().get(server.url("/metrics")),
        http().get(server.url("/metrics")).bearer_auth(TOKEN),
        http().post(server.url("/metrics")),
    ] {
        let got = send(request).await;
        assert_eq!(
            got, unknown,
            "a disabled /metrics looks like any unknown path"
        );
    }
}

#[tokio::test]
async fn the_token_is_required_and_must_be_exact() {
    let server = server_with_token(&[]);
    let wrong_same_length = format!("{}X", &TOKEN[..TOKEN.len() - 1]);
    for request in [
        http().get(server.url("/metrics")),
        http()
            .get(server.url("/metrics"))
            .bearer_auth(&wrong_same_length),
        http().get(server.url("/metrics")).bearer_auth(&TOKEN[1..]),
        http()
            .get(server.url("/metrics"))
            .header("authorization", TOKEN),
    ] {
        let got = send(request).await;
        assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(!got.1.to_string().contains("confab_"), "{}", got.1);
    }
    // A signed-in user's session token is not the metrics token.
    let admin = setup_admin(&server).await;
    let got = send(admin.request(reqwest::Method::GET, "/metrics")).await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized");

    let scraped = scrape(&server, Some(TOKEN)).await;
    assert_eq!(scraped.value("confab_websockets_open"), 0.0);
}

#[test]
fn a_short_token_is_refused_at_start_with_advice() {
    let stderr = common::refused_at_start(&[("CONFAB_METRICS_TOKEN", "too-short")]);
    assert!(
        stderr.contains("--metrics-token") && stderr.contains("at least 16 characters"),
        "{stderr}"
    );
}

#[tokio::test]
async fn counters_and_gauges_follow_what_happened() {
    const SENT: usize = 7;
    let server = server_with_token(&[]);
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let bob = create_user(&admin, "bob").await;
    let before = scrape(&server, Some(TOKEN)).await;
    assert_eq!(before.value("confab_websockets_open"), 0.0);

    let mut alice_tab = Socket::online(&server, &alice).await;
    let alice_phone = Socket::online(&server, &alice).await;
    let bob_tab = Socket::online(&server, &bob).await;
    for i in 0..SENT {
        alice_tab
            .send_acked(bob.id(), &format!("hello {i}"), &format!("m-{i}"))
            .await;
    }
    // A retry of an acked send is not a new message.
    alice_tab.send_acked(bob.id(), "hello 0", "m-0").await;
    for _ in 0..3 {
        let (status, _, _) = login(&server, "bob", "not bob's password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    let after = scrape(&server, Some(TOKEN)).await;
    let grew = |name: &str| after.value(name) - before.value(name);
    assert_eq!(grew("confab_messages_committed_total"), SENT as f64);
    assert_eq!(grew("confab_logins_failed_total"), 3.0);
    assert_eq!(grew("confab_logins_rate_limited_total"), 0.0);
    assert_eq!(after.value("confab_websockets_open"), 3.0);
    assert_eq!(after.value("confab_users_online"), 2.0);
    assert_eq!(after.value("confab_writer_queue_depth"), 0.0);

    // Every committed transaction is in both histograms; sends are among them.
    let commits = after.value("confab_commit_seconds_count");
    assert!(commits >= SENT as f64, "{commits} commits for {SENT} sends");
    assert_eq!(after.value("confab_commit_batch_size_count"), commits);
    let buckets = after.histogram("confab_commit_seconds");
    assert_eq!(buckets.last().map(|b| b.less_than), Some(f64::INFINITY));
    assert_eq!(buckets.last().map(|b| b.count), Some(commits));

    let database = std::fs::metadata(server.data_dir().join("confab.redb")).expect("db file");
    assert_eq!(
        after.value("confab_database_size_bytes"),
        database.len() as f64
    );
    assert!(after.value("confab_disk_free_bytes") > 0.0);

    alice_phone.close().await;
    bob_tab.close().await;
    wait_for_value(&server, "confab_websockets_open", 1.0).await;
    alice_tab.close().await;
}

#[tokio::test]
async fn rate_limited_frames_and_logins_are_counted() {
    let server = server_with_token(&["--frame-rate", "1"]);
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let before = scrape(&server, Some(TOKEN)).await;

    let mut tab = Socket::online(&server, &alice).await;
    const FLOOD: usize = 12;
    for i in 0..FLOOD {
        tab.send_json(&json!({"type": "typing", "conversation": format!("nowhere-{i}")}))
            .await;
    }
    let frames = tab.drain(Duration::from_millis(500)).await;
    let refused = frames
        .iter()
        .filter(|f| f["type"] == "error" && f["code"] == "rate_limited")
        .count();
    assert!(refused >= FLOOD - 4, "a burst of 3 at 1/s: {frames:?}");

    // Past 10 failures from one address for one name, the pair is refused outright.
    for _ in 0..11 {
        let _ = login(&server, "alice", "wrong password!").await;
    }
    let (status, _, _) = login(&server, "alice", "wrong password!").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    let after = scrape(&server, Some(TOKEN)).await;
    let grew = |name: &str| after.value(name) - before.value(name);
    assert_eq!(grew("confab_frames_rate_limited_total"), refused as f64);
    assert_eq!(grew("confab_logins_failed_total"), 10.0);
    assert_eq!(grew("confab_logins_rate_limited_total"), 2.0);
    tab.close().await;
}

#[tokio::test]
async fn loopback_mode_serves_localhost_only_without_a_token() {
    let server = TestServer::start_with_env(&[], &[("CONFAB_METRICS_LOOPBACK", "1")], None);
    let scraped = scrape(&server, None).await;
    assert_eq!(scraped.value("confab_messages_committed_total"), 0.0);

    // 127.0.0.2 reaches the server too, but is not 127.0.0.1: treated like the LAN.
    let elsewhere = http_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    let got = send(elsewhere.get(server.url("/metrics"))).await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn loopback_and_token_together_admit_either() {
    let server = TestServer::start_with(&["--metrics-loopback", "--metrics-token", TOKEN], None);
    scrape(&server, None).await;
    let elsewhere = http_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    let got = send(elsewhere.get(server.url("/metrics"))).await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized");
    scrape_with(&elsewhere, &server, Some(TOKEN)).await;
}

async fn admin_status(client: &Client, since: Option<i64>) -> Value {
    let path = match since {
        Some(since) => format!("/api/admin/status?since={since}"),
        None => "/api/admin/status".to_owned(),
    };
    let (status, body) = client.get(&path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

#[tokio::test]
async fn admin_status_shows_the_server_to_administrators_only() {
    let (server, alice, bob) = alice_and_bob().await;
    let admin = common::login_client(&server, "admin", common::ADMIN_PASSWORD).await;
    let started = common::now_millis();

    let member = alice.get("/api/admin/status").await;
    assert_error(&member, StatusCode::FORBIDDEN, "forbidden");
    let nobody = send(http().get(server.url("/api/admin/status"))).await;
    assert_error(&nobody, StatusCode::UNAUTHORIZED, "unauthorized");
    let bad = admin.get("/api/admin/status?since=yesterday").await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "invalid_query");

    let mut tab = Socket::online(&server, &alice).await;
    for i in 0..4 {
        tab.send_acked(bob.id(), &format!("today {i}"), &format!("t-{i}"))
            .await;
    }
    let status = admin_status(&admin, Some(started - 1000)).await;
    assert_eq!(status["messages_since"], 4, "{status}");
    assert_eq!(status["since"], started - 1000);
    assert_eq!(status["online_users"], 1, "{status}");
    assert_eq!(status["open_websockets"], 1, "{status}");
    assert!(status["uptime_seconds"].as_u64().is_some(), "{status}");
    assert!(
        status["version"]
            .as_str()
            .is_some_and(|v| v.starts_with(env!("CARGO_PKG_VERSION"))),
        "{status}"
    );
    let database = std::fs::metadata(server.data_dir().join("confab.redb")).expect("db file");
    let disk = &status["disk"];
    assert_eq!(disk["database_bytes"], database.len(), "{status}");
    assert!(
        disk["data_dir_bytes"].as_u64() >= Some(database.len()),
        "{status}"
    );
    assert!(disk["free_bytes"].as_u64() > Some(0), "{status}");
    assert_eq!(
        status["backups"],
        json!({"configured": false, "last": null})
    );

    // From a moment after the sends: none of them.
    let later = admin_status(&admin, Some(common::now_millis() + 1000)).await;
    assert_eq!(later["messages_since"], 0, "{later}");
    // Without `since`: the last 24 hours.
    let day = admin_status(&admin, None).await;
    assert_eq!(day["messages_since"], 4, "{day}");
    tab.close().await;
}
