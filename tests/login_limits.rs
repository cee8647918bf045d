//! The login limits as docs/PROTOCOL.md states them: nobody at another address can lock a
//! colleague out, a noisy neighbour behind the same address cannot lock everyone out, and
//! logins that hang up or send junk still count (or cost nothing).

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::AsyncWriteExt;

/// A client address of its own on the loopback network: 127.0.0.`n`.
fn at(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// `POST /api/login` from `from`: status, body and the `Retry-After` seconds if any.
async fn login_from(
    server: &TestServer,
    from: IpAddr,
    username: &str,
    password: &str,
) -> (StatusCode, Value, Option<u64>) {
    let req = http_from(from)
        .post(server.url("/api/login"))
        .json(&json!({"username": username, "password": password}));
    let (status, headers, body) = send_full(req).await;
    let retry_after = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, body, retry_after)
}

/// Sends a whole login request from 127.0.0.1 and hangs up without waiting for the answer.
async fn login_and_hang_up(server: &TestServer, username: &str, password: String) {
    let body = json!({"username": username, "password": password}).to_string();
    let request = format!(
        "POST /api/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        server.addr(),
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    tokio::time::sleep(Duration::from_millis(5)).await;
}

#[tokio::test]
async fn logins_that_hang_up_still_count_and_leave_no_backlog() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    create_user(&admin, "carol").await;

    let hang_ups =
        (0..200).map(|n| login_and_hang_up(&server, "carol", format!("abandoned guess {n}")));
    futures_util::future::join_all(hang_ups).await;

    // Someone else, elsewhere, signs in without waiting behind the abandoned checks.
    let started = Instant::now();
    let (status, body, _) = login_from(&server, at(2), "admin", ADMIN_PASSWORD).await;
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        waited < Duration::from_millis(1500),
        "a login waited {waited:?} behind abandoned ones"
    );
    // The abandoned guesses counted: the next guess from there is refused.
    let (status, body, retry_after) =
        login_from(&server, at(1), "carol", "one more guess at it").await;
    assert_error(
        &(status, body),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
    assert!(retry_after.is_some(), "429 without Retry-After");
}

#[tokio::test]
async fn a_guesser_elsewhere_cannot_lock_carol_out() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    create_user(&admin, "carol").await;
    let (attacker, carol) = (at(2), at(3));

    let mut answers = Vec::new();
    for n in 0..12 {
        let (status, body, retry_after) =
            login_from(&server, attacker, "carol", &format!("guess number {n}")).await;
        answers.push((status, error_code(&body).to_owned(), retry_after));
    }

    let refused = (
        StatusCode::UNAUTHORIZED,
        "invalid_credentials".to_owned(),
        None,
    );
    assert!(answers[..10].iter().all(|a| *a == refused), "{answers:?}");
    for (status, code, retry_after) in &answers[10..] {
        assert_eq!(
            (*status, code.as_str()),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
        );
        assert!(
            retry_after.is_some_and(|s| (1..=300).contains(&s)),
            "Retry-After {retry_after:?}"
        );
    }
    let (status, body, _) = login_from(&server, carol, "carol", &password_of("carol")).await;
    assert_eq!(status, StatusCode::OK, "carol at her own desk: {body}");
    // The guesser's address stays locked out of carol's account, right password or not.
    let (status, body, _) = login_from(&server, attacker, "carol", &password_of("carol")).await;
    assert_error(
        &(status, body),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
}

#[tokio::test]
async fn a_username_guessed_from_many_addresses_is_slowed_not_locked() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    create_user(&admin, "carol").await;

    let mut last = Duration::ZERO;
    for n in 10..22 {
        let started = Instant::now();
        let answer = login_from(&server, at(n), "carol", "a guess from a botnet").await;
        last = started.elapsed();
        assert_error(
            &(answer.0, answer.1),
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        );
    }

    // The 12th failure in the window is answered 200 ms late (100 ms per failure past 10).
    assert!(last >= Duration::from_millis(200), "answered in {last:?}");
    let (status, body, _) = login_from(&server, at(3), "carol", &password_of("carol")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_noisy_neighbour_does_not_lock_out_everyone_behind_the_same_address() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    create_user(&admin, "dave").await;
    create_user(&admin, "erin").await;
    let office = at(2);

    for n in 0..30 {
        let answer = login_from(&server, office, &format!("guess{n}"), "some password").await;
        assert_error(
            &(answer.0, answer.1),
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        );
    }
    let (status, body, _) = login_from(&server, office, "guess99", "some password").await;
    assert_error(
        &(status, body),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );

    // Over its limit, the address still gets one try per username that has not failed from
    // it: a right password gets in, anything else is refused.
    let (status, body, _) = login_from(&server, office, "dave", &password_of("dave")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "dave behind the same address: {body}"
    );
    let (status, body, _) = login_from(&server, office, "erin", "a wrong password").await;
    assert_error(
        &(status, body),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
    let (status, body, _) = login_from(&server, office, "erin", &password_of("erin")).await;
    assert_error(
        &(status, body),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
    // Elsewhere, erin is unaffected.
    let (status, body, _) = login_from(&server, at(3), "erin", &password_of("erin")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn concurrent_guesses_cannot_overshoot_the_limit() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    create_user(&admin, "carol").await;

    let guesses = (0..60).map(|n| {
        let server = &server;
        async move {
            let (status, body, _) =
                login_from(server, at(2), "carol", &format!("concurrent guess {n}")).await;
            (status, error_code(&body).to_owned())
        }
    });
    let answers = futures_util::future::join_all(guesses).await;

    let count = |status, code: &str| {
        answers
            .iter()
            .filter(|(s, c)| *s == status && c == code)
            .count()
    };
    assert_eq!(
        count(StatusCode::UNAUTHORIZED, "invalid_credentials"),
        10,
        "{answers:?}"
    );
    assert_eq!(
        count(StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        50,
        "{answers:?}"
    );
}

#[tokio::test]
async fn usernames_no_account_can_have_are_refused_at_once_and_not_counted() {
    let server = TestServer::start();
    setup_admin(&server).await;
    let long = "c".repeat(60 * 1024);

    let started = Instant::now();
    for n in 0..150 {
        let answer = login_from(&server, at(2), &format!("{long}{n}"), "a password guess").await;
        assert_error(
            &(answer.0, answer.1),
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        );
    }
    let took = started.elapsed();

    // No argon2 check ran (150 would take seconds), and none of them counted against the
    // address: its first ordinary wrong guess is still just a wrong guess.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let (status, body, _) = login_from(&server, at(2), "admin", "an ordinary guess").await;
    assert_error(
        &(status, body),
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
}

#[tokio::test]
async fn a_stolen_session_cannot_guess_the_password_faster_than_a_login() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let carol = create_user(&admin, "carol").await;
    let guess = |n: usize| {
        json!({"current_password": format!("guess number {n}"),
                                  "new_password": "a brand new password"})
    };
    for n in 0..10 {
        let refused = carol.post("/api/me/password", guess(n)).await;
        assert_error(&refused, StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let req = carol
        .request(Method::POST, "/api/me/password")
        .json(&guess(10));
    let (status, headers, body) = send_full(req).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(
        headers.contains_key("retry-after"),
        "429 without Retry-After"
    );
    // They count as the failed logins they are: from here, a login as carol waits too.
    let (status, body, _) = login_from(&server, at(1), "carol", &password_of("carol")).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    // From elsewhere she is not locked out, and her password never changed.
    let (status, _, _) = login_from(&server, at(2), "carol", &password_of("carol")).await;
    assert_eq!(status, StatusCode::OK);
}
