//! First contact: the operator runs the binary, creates the first administrator through the
//! setup page, and people sign in.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;

/// The keys of a full user object (docs/PROTOCOL.md, "User object").
const USER_KEYS: [&str; 7] = [
    "id",
    "username",
    "display_name",
    "role",
    "disabled",
    "must_change_password",
    "last_seen",
];

fn keys(object: &Value) -> Vec<String> {
    let mut keys: Vec<String> = object
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {object}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    keys.sort();
    keys
}

async fn get_setup_page(server: &TestServer) -> (StatusCode, String, String) {
    let resp = http()
        .get(server.url("/setup"))
        .send()
        .await
        .expect("GET /setup");
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = resp.text().await.expect("setup page body");
    (status, content_type, body)
}

async fn post_setup(server: &TestServer, body: Value) -> (StatusCode, Value) {
    send(http().post(server.url("/api/setup")).json(&body)).await
}

#[tokio::test]
async fn the_first_start_prints_a_setup_link_and_serves_the_setup_page() {
    let server = TestServer::start();

    let token = server
        .setup_token()
        .expect("a /setup#token=… line in the log");
    assert!(token.len() >= 16, "setup token too guessable: {token:?}");
    let (status, content_type, body) = get_setup_page(&server).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(body.to_ascii_lowercase().contains("<html"), "{body}");
    // The token lives in the URL fragment only, never in the page itself.
    assert!(!body.contains(&token), "setup page leaks the token");
}

#[tokio::test]
async fn setup_creates_the_administrator_and_then_closes_for_good() {
    let server = TestServer::start();
    let token = server.setup_token().expect("setup token");

    let (status, headers, body) = send_full(http().post(server.url("/api/setup")).json(&json!({
        "token": token,
        "username": "admin",
        "display_name": "Admin",
        "password": ADMIN_PASSWORD,
    })))
    .await;

    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        body["token"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    let user = &body["user"];
    assert_eq!(keys(user), sorted(&USER_KEYS), "{user}");
    assert_eq!(user["username"], "admin");
    assert_eq!(user["display_name"], "Admin");
    assert_eq!(user["role"], "admin");
    assert_eq!(user["disabled"], false);
    assert_eq!(user["must_change_password"], false);
    let cookie = session_set_cookie(&headers).expect("setup sets the session cookie");
    assert_session_cookie(&cookie, body["token"].as_str().unwrap_or_default());
    let admin = Client::new(&server, body["token"].as_str().unwrap_or_default());
    assert_eq!(admin.me().await["username"], "admin");

    // The same token, or any other attempt, no longer works.
    let again = post_setup(
        &server,
        json!({"token": token, "username": "mallory", "display_name": "Mallory",
               "password": "mallory password 123"}),
    )
    .await;
    assert_error(&again, StatusCode::CONFLICT, "already_set_up");
    let (status, content_type, page) = get_setup_page(&server).await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(content_type.starts_with("text/html"), "{content_type}");

    // Nothing changed: still exactly one account, and mallory cannot sign in.
    let users = admin.admin_users().await;
    assert_eq!(users.len(), 1, "{users:?}");
    let (status, _, _) = login(&server, "mallory", "mallory password 123").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn setup_with_a_wrong_token_is_refused_and_leaves_setup_open() {
    let server = TestServer::start();
    let token = server.setup_token().expect("setup token");

    let wrong = post_setup(
        &server,
        json!({"token": format!("{token}x"), "username": "admin", "display_name": "Admin",
               "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_error(&wrong, StatusCode::FORBIDDEN, "invalid_setup_token");
    let empty = post_setup(
        &server,
        json!({"token": "", "username": "admin", "display_name": "Admin",
               "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_error(&empty, StatusCode::FORBIDDEN, "invalid_setup_token");

    // Nobody was created: nobody can sign in, the page is still open, the real token works.
    let (status, _, _) = login(&server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(get_setup_page(&server).await.0, StatusCode::OK);
    setup_admin(&server).await;
}

#[tokio::test]
async fn setup_validates_the_new_account_before_using_the_token() {
    let server = TestServer::start();
    let token = server.setup_token().expect("setup token");
    let attempt = |username: &str, display_name: &str, password: &str| {
        json!({"token": token, "username": username, "display_name": display_name,
               "password": password})
    };

    let short_password = post_setup(&server, attempt("admin", "Admin", "short pass!")).await;
    assert_error(&short_password, StatusCode::BAD_REQUEST, "invalid_password");
    let bad_username = post_setup(&server, attempt("a", "Admin", ADMIN_PASSWORD)).await;
    assert_error(&bad_username, StatusCode::BAD_REQUEST, "invalid_username");
    let no_display_name = post_setup(&server, attempt("admin", "   ", ADMIN_PASSWORD)).await;
    assert_error(
        &no_display_name,
        StatusCode::BAD_REQUEST,
        "invalid_display_name",
    );

    // The token was not spent by the failed attempts.
    assert_eq!(get_setup_page(&server).await.0, StatusCode::OK);
    setup_admin(&server).await;
}

#[tokio::test]
async fn login_returns_a_token_an_expiry_the_user_and_a_strict_cookie() {
    let server = TestServer::start();
    setup_admin(&server).await;

    let (status, body, cookie) = login(&server, "admin", ADMIN_PASSWORD).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        keys(&body),
        sorted(&["token", "expires_at", "user"]),
        "{body}"
    );
    let token = body["token"].as_str().expect("token");
    let expires_at = body["expires_at"].as_i64().expect("expires_at in seconds");
    let expected = now_secs() + SESSION_SECS;
    assert!(
        (expires_at - expected).abs() <= 60,
        "expires_at {expires_at} is not now + 30 days ({expected})"
    );
    assert_eq!(keys(&body["user"]), sorted(&USER_KEYS));
    assert_eq!(body["user"]["username"], "admin");

    // An HS256 JWT carrying sub, sid, iat and exp, expiring when the body says.
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {token}");
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("base64 header"))
            .expect("JSON header");
    assert_eq!(header["alg"], "HS256");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64 claims"))
            .expect("JSON claims");
    for claim in ["sub", "sid", "iat", "exp"] {
        assert!(!claims[claim].is_null(), "claim {claim} missing: {claims}");
    }
    assert_eq!(claims["exp"].as_i64(), Some(expires_at), "{claims}");

    assert_session_cookie(&cookie.expect("login sets confab_session"), token);
}

/// `confab_session=<token>; HttpOnly; SameSite=Strict; Path=/; Max-Age=2592000`.
#[track_caller]
fn assert_session_cookie(cookie: &str, token: &str) {
    assert_eq!(cookie_value(cookie), token);
    let attributes: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for wanted in ["httponly", "samesite=strict", "path=/", "max-age=2592000"] {
        assert!(
            attributes.iter().any(|a| a == wanted),
            "cookie lacks {wanted}: {cookie}"
        );
    }
}

#[tokio::test]
async fn each_login_is_a_separate_session() {
    let server = TestServer::start();
    setup_admin(&server).await;

    let first = login_client(&server, "admin", ADMIN_PASSWORD).await;
    let second = login_client(&server, "admin", ADMIN_PASSWORD).await;

    assert_ne!(first.token, second.token);
    first.me().await;
    second.me().await;
}

#[tokio::test]
async fn usernames_are_matched_case_insensitively_at_login() {
    let server = TestServer::start();
    setup_admin(&server).await;

    let (status, body, _) = login(&server, "ADMIN", ADMIN_PASSWORD).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["username"], "admin");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let server = TestServer::start();
    setup_admin(&server).await;

    let (wrong_status, wrong_body, wrong_cookie) =
        login(&server, "admin", "not the password at all").await;
    let (unknown_status, unknown_body, unknown_cookie) =
        login(&server, "nobody", ADMIN_PASSWORD).await;

    assert_error(
        &(wrong_status, wrong_body.clone()),
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    assert_error(
        &(unknown_status, unknown_body.clone()),
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    assert_eq!(
        wrong_body, unknown_body,
        "answers must not reveal who exists"
    );
    assert!(wrong_cookie.is_none() && unknown_cookie.is_none());

    let (empty_status, empty_body, _) = login(&server, "admin", "").await;
    assert_error(
        &(empty_status, empty_body),
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    // The right password still works afterwards.
    login_client(&server, "admin", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn the_cookie_and_the_bearer_token_both_identify_the_user() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;

    let by_bearer = admin.me().await;
    let (status, by_cookie) = send(cookie_request(
        &server,
        Method::GET,
        "/api/me",
        &admin.token,
    ))
    .await;

    assert_eq!(status, StatusCode::OK, "{by_cookie}");
    assert_eq!(by_cookie, by_bearer);
    assert_eq!(by_bearer["id"], admin.user["id"]);
    assert_eq!(keys(&by_bearer), sorted(&USER_KEYS));
}

#[tokio::test]
async fn api_routes_need_a_session() {
    let server = TestServer::start();
    setup_admin(&server).await;

    for path in [
        "/api/me",
        "/api/users",
        "/api/admin/users",
        "/api/conversations",
    ] {
        let answer = send(http().get(server.url(path))).await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let logout = send(http().post(server.url("/api/logout"))).await;
    assert_error(&logout, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[test]
fn help_lists_every_option() {
    let out = run_cli(&["--help"]);

    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--data-dir",
        "--allowed-origin",
        "--max-connections",
        "--header-timeout",
        "--reset-user",
        "--version",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
}

#[tokio::test]
async fn version_names_the_release_and_the_revision_like_healthz() {
    let out = run_cli(&["--version"]);

    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.trim();
    let prefix = format!("confab {} (", env!("CARGO_PKG_VERSION"));
    assert!(
        line.starts_with(&prefix) && line.ends_with(')') && line.len() > prefix.len() + 1,
        "--version printed {line:?}"
    );

    let server = TestServer::start();
    let (status, health) = send(http().get(server.url("/healthz"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        health,
        json!({"status": "ok", "version": line.trim_start_matches("confab ")})
    );
}

#[test]
fn an_unknown_flag_is_an_error_not_a_server() {
    let out = run_cli(&["--no-such-flag"]);

    assert!(!out.status.success(), "{out:?}");
    assert!(!out.stderr.is_empty());
}

#[tokio::test]
async fn a_restart_before_setup_still_offers_a_way_to_set_up() {
    let server = TestServer::start();
    assert!(server.setup_token().is_some());

    let server = server.restart();

    assert_eq!(get_setup_page(&server).await.0, StatusCode::OK);
    setup_admin(&server).await;
}

#[tokio::test]
async fn racing_setup_requests_create_exactly_one_administrator() {
    let server = TestServer::start();
    let token = server.setup_token().expect("setup token");

    let attempts = (0..6).map(|i| {
        post_setup(
            &server,
            json!({"token": token, "username": format!("admin{i}"), "display_name": "Admin",
                   "password": ADMIN_PASSWORD}),
        )
    });
    let answers = futures_util::future::join_all(attempts).await;

    let created: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    for answer in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        // A loser either saw the account (409) or the spent token (403).
        assert!(
            matches!(
                (answer.0, error_code(&answer.1)),
                (StatusCode::CONFLICT, "already_set_up")
                    | (StatusCode::FORBIDDEN, "invalid_setup_token")
            ),
            "{answer:?}"
        );
    }
    let admin = Client::new(&server, created[0].1["token"].as_str().unwrap_or_default());
    assert_eq!(admin.admin_users().await.len(), 1);
}
