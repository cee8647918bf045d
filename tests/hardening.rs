//! What a hostile or clumsy client meets: forged cross-site requests, slow connections, bad and
//! oversized bodies, password guessing, and an operator stopping the server.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A cookie-authenticated `POST /api/logout` with this `Origin` (or none).
async fn cookie_logout(
    server: &TestServer,
    token: &str,
    origin: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = cookie_request(server, Method::POST, "/api/logout", token);
    if let Some(origin) = origin {
        req = req.header("Origin", origin);
    }
    send(req).await
}

/// Signs in as admin and returns the session token (for cookie requests).
async fn admin_token(server: &TestServer) -> String {
    admin_token_with(server, ADMIN_PASSWORD).await
}

async fn admin_token_with(server: &TestServer, password: &str) -> String {
    login_client(server, "admin", password).await.token
}

/// Sends `body` verbatim with the given content type.
async fn post_raw(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    send(
        http()
            .post(server.url(path))
            .header("Content-Type", content_type)
            .body(body),
    )
    .await
}

/// Sends each body as JSON with a request from `request` and expects 400 `invalid_body`, and
/// no session cookie, for every one.
async fn expect_invalid_bodies(
    bodies: Vec<(&'static str, String)>,
    request: impl Fn() -> reqwest::RequestBuilder,
) {
    for (what, body) in bodies {
        let (status, headers, answer) = send_full(
            request()
                .header("Content-Type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(
            (status, error_code(&answer)),
            (StatusCode::BAD_REQUEST, "invalid_body"),
            "{what}: {status} {answer}"
        );
        assert!(
            session_set_cookie(&headers).is_none(),
            "{what} got a cookie"
        );
    }
}

/// The bodies every JSON endpoint must refuse with 400 `invalid_body`, built from a valid one.
fn broken_bodies(valid: &Value) -> Vec<(&'static str, String)> {
    let object = valid.as_object().expect("object");
    let mut unknown_field = valid.clone();
    unknown_field["is_admin"] = json!(true);
    let mut wrong_type = valid.clone();
    let first = object.keys().next().expect("a field").clone();
    wrong_type[&first] = json!(12345);
    let mut missing = valid.clone();
    missing.as_object_mut().expect("object").remove(&first);
    let text = valid.to_string();
    vec![
        ("truncated JSON", text[..text.len() - 1].to_owned()),
        ("not JSON", "username=admin".to_owned()),
        ("empty body", String::new()),
        ("an array", format!("[{text}]")),
        ("null", "null".to_owned()),
        ("unknown field", unknown_field.to_string()),
        ("wrong type", wrong_type.to_string()),
        ("missing field", missing.to_string()),
    ]
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly_even_with_idle_connections() {
    let server = TestServer::start();
    setup_admin(&server).await;
    // A pooled keep-alive connection and a connection that never sends a byte must not hold
    // the shutdown up.
    let client = http();
    let (status, _) = send(client.get(server.url("/healthz"))).await;
    assert_eq!(status, StatusCode::OK);
    let _silent = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");

    let status = server.stop();

    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn sigterm_right_after_the_listening_line_is_still_graceful() {
    // "listening on" tells systemd and scripts the server is up; a stop sent at that moment
    // must already find the signal handler in place instead of killing the process outright.
    for round in 0..25 {
        let server = TestServer::start();

        let status = server.stop();

        assert_eq!(status.code(), Some(0), "round {round}: {status:?}");
    }
}

#[tokio::test]
async fn a_cookie_request_from_another_site_is_refused() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let bob = create_user(&admin, "bob").await;
    let token = admin_token(&server).await;
    let other_port = format!("http://127.0.0.1:{}", server.addr().port() + 1);

    for origin in [
        Some("http://evil.example"),
        Some("null"),
        Some(other_port.as_str()),
        None,
    ] {
        let mut change = cookie_request(&server, Method::POST, "/api/me/password", &token).json(
            &json!({"current_password": ADMIN_PASSWORD, "new_password": "hijacked password"}),
        );
        let mut disable = cookie_request(
            &server,
            Method::PATCH,
            &format!("/api/admin/users/{}", bob.id()),
            &token,
        )
        .json(&json!({"disabled": true}));
        if let Some(origin) = origin {
            change = change.header("Origin", origin);
            disable = disable.header("Origin", origin);
        }
        assert_error(&send(change).await, StatusCode::FORBIDDEN, "bad_origin");
        assert_error(&send(disable).await, StatusCode::FORBIDDEN, "bad_origin");
        let logout = cookie_logout(&server, &token, origin).await;
        assert_error(&logout, StatusCode::FORBIDDEN, "bad_origin");
    }

    // Nothing happened: the password, bob, and the cookie session are as they were.
    login_client(&server, "admin", ADMIN_PASSWORD).await;
    bob.me().await;
    let (status, _) = send(cookie_request(&server, Method::GET, "/api/me", &token)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_cookie_request_from_the_page_itself_is_accepted() {
    let server = TestServer::start();
    setup_admin(&server).await;
    let token = admin_token(&server).await;

    let change = send(
        cookie_request(&server, Method::POST, "/api/me/password", &token)
            .header("Origin", server.origin())
            .json(&json!({"current_password": ADMIN_PASSWORD, "new_password": "a fresh password"})),
    )
    .await;
    assert_eq!(change.0, StatusCode::NO_CONTENT, "{}", change.1);
    let (status, body) = cookie_logout(&server, &token, Some(&server.origin())).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // Behind a TLS-terminating proxy the page's origin is https:// with the same Host.
    let token = admin_token_with(&server, "a fresh password").await;
    let https = format!("https://{}", server.addr());
    let (status, body) = cookie_logout(&server, &token, Some(&https)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{https}: {body}");
    // Reading is not blocked by Origin, but nothing invites another site to read the answer.
    let fresh = login_client(&server, "admin", "a fresh password").await;
    let (status, headers, _) = send_full(
        cookie_request(&server, Method::GET, "/api/me", &fresh.token)
            .header("Origin", "http://evil.example"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers.get("access-control-allow-origin").is_none(),
        "{headers:?}"
    );
    let (_, preflight, _) = send_full(
        http()
            .request(Method::OPTIONS, server.url("/api/me/password"))
            .header("Origin", "http://evil.example")
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type"),
    )
    .await;
    assert!(
        preflight.get("access-control-allow-origin").is_none(),
        "{preflight:?}"
    );
}

#[tokio::test]
async fn bearer_requests_do_not_need_an_origin() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;

    let (status, body) = send(
        admin
            .request(Method::POST, "/api/me/password")
            .header("Origin", "http://evil.example")
            .json(
                &json!({"current_password": ADMIN_PASSWORD, "new_password": "a bearer password"}),
            ),
    )
    .await;

    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    login_client(&server, "admin", "a bearer password").await;
}

#[tokio::test]
async fn an_allowed_origin_from_the_command_line_is_accepted() {
    let server = TestServer::start_with(&["--allowed-origin", "https://chat.example.com"], None);
    setup_admin(&server).await;

    for origin in ["https://chat.example.com", server.origin().as_str()] {
        let token = admin_token(&server).await;
        let (status, body) = cookie_logout(&server, &token, Some(origin)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{origin}: {body}");
    }
    let token = admin_token(&server).await;
    let refused = cookie_logout(&server, &token, Some("https://evil.example.com")).await;
    assert_error(&refused, StatusCode::FORBIDDEN, "bad_origin");
}

#[tokio::test]
async fn allowed_origins_can_come_from_the_environment() {
    let server = TestServer::start_with_env(
        &[],
        &[(
            "CONFAB_ALLOWED_ORIGIN",
            "https://a.example.com,https://b.example.com",
        )],
        None,
    );
    setup_admin(&server).await;

    for origin in ["https://a.example.com", "https://b.example.com"] {
        let token = admin_token(&server).await;
        let (status, body) = cookie_logout(&server, &token, Some(origin)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{origin}: {body}");
    }
    let token = admin_token(&server).await;
    let refused = cookie_logout(&server, &token, Some("https://c.example.com")).await;
    assert_error(&refused, StatusCode::FORBIDDEN, "bad_origin");
}

#[tokio::test]
async fn every_setting_can_come_from_the_environment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_str().expect("utf-8 path");
    let server = TestServer::start_with_env(
        &[],
        &[
            ("CONFAB_LISTEN", "127.0.0.1:0"),
            ("CONFAB_DATA_DIR", data_dir),
            ("CONFAB_MAX_CONNECTIONS", "64"),
            ("CONFAB_HEADER_TIMEOUT", "2"),
        ],
        None,
    );

    setup_admin(&server).await;

    let files = std::fs::read_dir(dir.path()).expect("data dir").count();
    assert!(files > 0, "nothing was stored in CONFAB_DATA_DIR");
    let elapsed = slow_header(&server).await;
    assert!(elapsed < Duration::from_secs(6), "closed after {elapsed:?}");
}

#[test]
fn a_database_cache_under_1mb_is_refused_at_start() {
    let stderr = common::refused_at_start(&[("CONFAB_DB_CACHE", "100KB")]);
    assert!(
        stderr.contains("--db-cache") && stderr.contains("at least 1MB"),
        "{stderr}"
    );
}

/// Opens a connection, starts a request header and then dribbles one byte every 200 ms, never
/// finishing it. Returns how long the server kept the connection open (panics after 10 s).
async fn slow_header(server: &TestServer) -> Duration {
    let started = Instant::now();
    let stream = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    wr.write_all(b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .expect("write the start of a header");
    let closed = async {
        let mut buf = [0_u8; 1024];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let dribble = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if wr.write_all(b"a").await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = closed => {}
        _ = dribble => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            panic!("a header dribbled for 10 s was never cut off");
        }
    }
    started.elapsed()
}

#[tokio::test]
async fn a_header_sent_byte_by_byte_is_cut_off_while_others_sign_in() {
    let server = TestServer::start_with(&["--header-timeout", "2"], None);
    setup_admin(&server).await;

    let slow = futures_util::future::join_all((0..5).map(|_| slow_header(&server)));
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let started = Instant::now();
        let (status, body, _) = login(&server, "admin", ADMIN_PASSWORD).await;
        (status, body, started.elapsed())
    };
    let (held, (status, body, login_took)) = tokio::join!(slow, meanwhile);

    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        login_took < Duration::from_secs(2),
        "login took {login_took:?}"
    );
    for elapsed in held {
        assert!(
            elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_secs(6),
            "slow header held for {elapsed:?}, expected about the 2 s timeout"
        );
    }
}

/// Connects and sends nothing. Returns how long the server kept the connection open, or `None`
/// if it was still open after `limit`.
async fn silent_connection(server: &TestServer, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    let mut buf = [0_u8; 1024];
    let closed = async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::time::timeout(limit, closed)
        .await
        .ok()
        .map(|()| started.elapsed())
}

#[tokio::test]
async fn a_connection_that_never_sends_a_header_is_cut_off_too() {
    let server = TestServer::start_with(&["--header-timeout", "2"], None);

    let held = silent_connection(&server, Duration::from_secs(8)).await;

    let held = held.expect("a connection that sent nothing was still open after 8 s");
    assert!(held >= Duration::from_millis(1500), "closed after {held:?}");
}

#[tokio::test]
async fn silent_connections_cannot_lock_the_office_out() {
    let server = TestServer::start_with(&["--max-connections", "2", "--header-timeout", "2"], None);
    let hogs = futures_util::future::join(
        silent_connection(&server, Duration::from_secs(10)),
        silent_connection(&server, Duration::from_secs(10)),
    );
    let visitor = async {
        // Let both hogs take their slots first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let answer = tokio::time::timeout(
            Duration::from_secs(8),
            send(http().get(server.url("/healthz"))),
        )
        .await;
        (answer, started.elapsed())
    };

    let (_, (answer, waited)) = tokio::join!(hogs, visitor);

    let (status, _) = answer.unwrap_or_else(|_| {
        panic!("two silent connections blocked /healthz for {waited:?} (--max-connections 2)")
    });
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn setup_refuses_malformed_bodies_and_stays_open() {
    let server = TestServer::start();
    let token = server.setup_token().expect("setup token");
    let valid = json!({"username": "admin", "token": token, "display_name": "Admin",
                       "password": ADMIN_PASSWORD});

    expect_invalid_bodies(broken_bodies(&valid), || {
        http().post(server.url("/api/setup"))
    })
    .await;

    let (status, _) = send(http().get(server.url("/setup"))).await;
    assert_eq!(status, StatusCode::OK, "setup no longer open");
    setup_admin(&server).await;
}

#[tokio::test]
async fn login_refuses_malformed_bodies() {
    let server = TestServer::start();
    setup_admin(&server).await;
    let valid = json!({"username": "admin", "password": ADMIN_PASSWORD});

    expect_invalid_bodies(broken_bodies(&valid), || {
        http().post(server.url("/api/login"))
    })
    .await;
    login_client(&server, "admin", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn creating_a_user_refuses_malformed_bodies_and_creates_nobody() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let before = admin.admin_users().await;
    let valid = json!({"username": "bob", "display_name": "Bob", "role": "member"});

    let mut bodies = broken_bodies(&valid);
    bodies.push((
        "a password chosen by the admin",
        json!({"username": "bob", "display_name": "Bob", "password": "chosen password"})
            .to_string(),
    ));
    bodies.push((
        "role of the wrong type",
        json!({"username": "bob", "display_name": "Bob", "role": true}).to_string(),
    ));
    expect_invalid_bodies(bodies, || admin.request(Method::POST, "/api/admin/users")).await;

    assert_eq!(admin.admin_users().await, before);
}

#[tokio::test]
async fn editing_a_user_refuses_malformed_bodies_and_changes_nothing() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    create_user_raw(&admin, "bob").await;
    let before = admin.admin_users().await;
    let bob_id = before
        .iter()
        .find(|u| u["username"] == "bob")
        .and_then(|u| u["id"].as_i64())
        .expect("bob");
    let path = format!("/api/admin/users/{bob_id}");

    let bodies = vec![
        ("truncated JSON", r#"{"display_name": "Bobby""#.to_owned()),
        ("not JSON", "display_name=Bobby".to_owned()),
        ("an array", r#"[{"display_name": "Bobby"}]"#.to_owned()),
        (
            "disabled as a string",
            json!({"disabled": "yes"}).to_string(),
        ),
        ("username as a number", json!({"username": 7}).to_string()),
        (
            "display name as null",
            json!({"display_name": null}).to_string(),
        ),
        (
            "unknown field next to a valid one",
            json!({"display_name": "Bobby", "must_change_password": false}).to_string(),
        ),
        ("an id", json!({"id": 1}).to_string()),
    ];
    expect_invalid_bodies(bodies, || admin.request(Method::PATCH, &path)).await;

    assert_eq!(admin.admin_users().await, before);
}

#[tokio::test]
async fn a_body_over_64_kib_is_refused() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let before = admin.admin_users().await;
    let huge = "x".repeat(100 * 1024);

    let login = post_raw(
        &server,
        "/api/login",
        "application/json",
        json!({"username": "admin", "password": huge}).to_string(),
    )
    .await;
    assert_error(&login, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let create = admin
        .post(
            "/api/admin/users",
            json!({"username": "bob", "display_name": huge}),
        )
        .await;
    assert_error(&create, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // The limit is inclusive: exactly 64 KiB is read (and is just a wrong password), one byte
    // more is refused.
    let exactly = |size: usize| {
        let frame = json!({"username": "admin", "password": ""}).to_string();
        json!({"username": "admin", "password": "p".repeat(size - frame.len())}).to_string()
    };
    let at_limit = post_raw(
        &server,
        "/api/login",
        "application/json",
        exactly(64 * 1024),
    )
    .await;
    assert_error(&at_limit, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let over = post_raw(
        &server,
        "/api/login",
        "application/json",
        exactly(64 * 1024 + 1),
    )
    .await;
    assert_error(&over, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // Without a Content-Length the limit still holds (chunked transfer).
    let chunk = "x".repeat(4096);
    let mut request = format!(
        "POST /api/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        server.addr()
    );
    let open = r#"{"username":"admin","password":""#;
    request.push_str(&format!("{:x}\r\n{open}\r\n", open.len()));
    for _ in 0..25 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("2\r\n\"}\r\n0\r\n\r\n");
    let chunked = raw_http(&server, request.as_bytes()).await;
    assert_eq!(chunked.status, 413, "{}", chunked.text);
    assert!(
        chunked.text.contains("payload_too_large"),
        "{}",
        chunked.text
    );

    assert_eq!(admin.admin_users().await, before);
    login_client(&server, "admin", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let before = admin.admin_users().await;
    let credentials = json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();

    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
    ] {
        let (status, headers, body) = send_full(
            http()
                .post(server.url("/api/login"))
                .header("Content-Type", content_type)
                .body(credentials.clone()),
        )
        .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            "{content_type}: {status} {body}"
        );
        assert!(session_set_cookie(&headers).is_none());
    }
    let untyped = send(
        http()
            .post(server.url("/api/login"))
            .body(credentials.clone()),
    )
    .await;
    assert_error(
        &untyped,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let create = send(
        admin
            .request(Method::POST, "/api/admin/users")
            .header("Content-Type", "text/plain")
            .body(json!({"username": "bob", "display_name": "Bob"}).to_string()),
    )
    .await;
    assert_error(
        &create,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    assert_eq!(admin.admin_users().await, before);

    // A charset parameter is still JSON.
    let (status, body) = post_raw(
        &server,
        "/api/login",
        "application/json; charset=utf-8",
        credentials,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn guessing_a_password_is_rate_limited() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    create_user(&admin, "bob").await;

    let mut limited_at = None;
    for attempt in 1..=15 {
        // Usernames are case-insensitive, so varying the case must not reset the count.
        let name = ["admin", "ADMIN", "Admin"][attempt % 3];
        let (status, body, _) = login(&server, name, &format!("guess number {attempt}")).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(error_code(&body), "rate_limited", "{body}");
            limited_at = Some(attempt);
            break;
        }
        assert_error(
            &(status, body),
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        );
    }
    let limited_at = limited_at.expect("15 wrong passwords in a row were never rate limited");
    assert!(limited_at > 5, "limited already at attempt {limited_at}");

    // While limited, even the right password is refused, with a hint when to retry.
    let (status, headers, body) = send_full(
        http()
            .post(server.url("/api/login"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD})),
    )
    .await;
    assert_error(
        &(status, body),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
    let retry_after: u64 = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After: <seconds>");
    assert!(
        (1..=3600).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    // The existing session is unaffected, and another person in the office can still sign in.
    admin.me().await;
    login_client(&server, "bob", &password_of("bob")).await;
}

#[tokio::test]
async fn guessing_across_many_usernames_is_rate_limited_per_address() {
    let server = TestServer::start();
    setup_admin(&server).await;

    let mut limited = None;
    for attempt in 1..=60 {
        let (status, body, _) =
            login(&server, &format!("guess{attempt}"), "some password guess").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(error_code(&body), "rate_limited", "{body}");
            limited = Some(attempt);
            break;
        }
        assert_error(
            &(status, body),
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        );
    }

    let limited = limited.expect("60 failed logins from one address were never rate limited");
    assert!(
        limited > 10,
        "one address limited already at attempt {limited}"
    );
}

#[tokio::test]
async fn secrets_never_reach_the_log() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let temporary = create_user_raw(&admin, "bob").await;
    let bob = login_client(&server, "bob", &temporary).await;
    let (status, _) = bob
        .change_password(&temporary, "bob's secret passphrase")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, reset) = admin
        .post_empty(&format!("/api/admin/users/{}/reset-password", bob.id()))
        .await;
    assert_eq!(status, StatusCode::OK);
    let reset_password = reset["temporary_password"].as_str().unwrap_or_default();
    login(&server, "admin", "a wrong guess at the password").await;
    post_raw(
        &server,
        "/api/login",
        "application/json",
        r#"{"username":"admin","password":"half-sent secret"#,
    )
    .await;
    // Let asynchronous log lines land.
    tokio::time::sleep(Duration::from_millis(200)).await;

    for secret in [
        ADMIN_PASSWORD,
        &temporary,
        "bob's secret passphrase",
        reset_password,
        "a wrong guess at the password",
        "half-sent secret",
        &admin.token,
        &bob.token,
    ] {
        assert!(
            !server.log_contains(secret),
            "the log contains {secret:?}:\n{}",
            server.logs().join("\n")
        );
    }
}

#[tokio::test]
async fn healthz_answers_without_a_session() {
    let server = TestServer::start();

    let (status, body) = send(http().get(server.url("/healthz"))).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    let version = body["version"].as_str().expect("version");
    assert!(
        version.starts_with(&format!("{} (", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_error_shape() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;

    assert_error(
        &admin.get("/api/no-such-route").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &send(http().get(server.url("/api/login"))).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

#[test]
fn a_port_already_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("temp dir");

    let out = run_cli(&[
        "--listen",
        &addr,
        "--data-dir",
        dir.path().to_str().expect("utf-8 path"),
    ]);

    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&addr),
        "stderr should name {addr}: {stderr}"
    );
}
