//! Sessions: signing out, changing a password, and tokens that were never issued by this server.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

/// `GET /api/me` with this token as a bearer and as a cookie; both must say 401 `unauthorized`.
async fn refused(server: &TestServer, token: &str) {
    let by_bearer = send(http().get(server.url("/api/me")).bearer_auth(token)).await;
    assert_eq!(
        (by_bearer.0, error_code(&by_bearer.1)),
        (StatusCode::UNAUTHORIZED, "unauthorized"),
        "bearer {token:?} got {} {}",
        by_bearer.0,
        by_bearer.1
    );
    let by_cookie = send(cookie_request(server, Method::GET, "/api/me", token)).await;
    assert_eq!(
        (by_cookie.0, error_code(&by_cookie.1)),
        (StatusCode::UNAUTHORIZED, "unauthorized"),
        "cookie {token:?} got {} {}",
        by_cookie.0,
        by_cookie.1
    );
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload"))
        .expect("JSON claims")
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn sign(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("sign JWT")
}

#[tokio::test]
async fn logging_out_kills_that_token_and_only_that_one() {
    let server = TestServer::start();
    setup_admin(&server).await;
    let laptop = login_client(&server, "admin", ADMIN_PASSWORD).await;
    let phone = login_client(&server, "admin", ADMIN_PASSWORD).await;

    laptop.logout().await;

    refused(&server, &laptop.token).await;
    phone.me().await;
    // Logging out twice is just unauthorized, not a crash.
    let again = laptop.post_empty("/api/logout").await;
    assert_error(&again, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn logging_out_with_the_cookie_clears_it_and_kills_the_session() {
    let server = TestServer::start();
    setup_admin(&server).await;
    let (_, body, _) = login(&server, "admin", ADMIN_PASSWORD).await;
    let token = body["token"].as_str().expect("token").to_owned();

    let (status, headers, body) = send_full(
        cookie_request(&server, Method::POST, "/api/logout", &token)
            .header("Origin", server.origin()),
    )
    .await;

    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let cleared = session_set_cookie(&headers).expect("logout clears the cookie");
    let lower = cleared.to_ascii_lowercase();
    assert!(
        cookie_value(&cleared).is_empty()
            || lower.contains("max-age=0")
            || lower.contains("expires=thu, 01 jan 1970"),
        "cookie not cleared: {cleared}"
    );
    assert!(
        lower.contains("max-age=0") || lower.contains("expires="),
        "clearing cookie must expire: {cleared}"
    );
    refused(&server, &token).await;
}

#[tokio::test]
async fn tokens_this_server_did_not_issue_are_refused() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let member = create_user(&admin, "alice").await;
    let real = claims_of(&member.token);
    let now = now_secs();

    // Same claims, but signed with a secret that is not the server's.
    refused(
        &server,
        &sign(&real, b"not the server secret, just a guess"),
    )
    .await;

    // `alg: none`, an empty signature, claiming to be the admin.
    let mut as_admin = real.clone();
    as_admin["sub"] = admin.user["id"].clone();
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&as_admin)
    );
    refused(&server, &unsigned).await;
    let unsigned_real = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&real)
    );
    refused(&server, &unsigned_real).await;

    // Already expired.
    let mut expired = real.clone();
    expired["iat"] = json!(now - 3 * 86_400);
    expired["exp"] = json!(now - 86_400);
    refused(&server, &sign(&expired, b"some random secret")).await;

    // A real token whose payload was edited to claim the admin, keeping the real signature.
    let parts: Vec<&str> = member.token.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(&as_admin), parts[2]);
    refused(&server, &tampered).await;
    // Or edited to live forever.
    let mut forever = real.clone();
    forever["exp"] = json!(now + 100 * 365 * 86_400);
    refused(
        &server,
        &format!("{}.{}.{}", parts[0], b64(&forever), parts[2]),
    )
    .await;
    // HS256 header swapped for HS512 on the real payload and signature.
    let hs512 = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "HS512", "typ": "JWT"})),
        parts[1],
        parts[2]
    );
    refused(&server, &hs512).await;

    for garbage in [
        "garbage",
        "a.b.c",
        "..",
        "Bearer",
        &member.token[..member.token.len() - 2],
        &format!("{}x", member.token),
        "eyJhbGciOiJIUzI1NiJ9.e30.",
    ] {
        refused(&server, garbage).await;
    }

    // The real tokens are untouched, and still say who they belong to.
    assert_eq!(member.me().await["username"], "alice");
    assert_eq!(admin.me().await["username"], "admin");
}

#[tokio::test]
async fn the_api_does_not_take_tokens_from_the_url() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;

    // Only the WebSocket accepts `?token=`; URLs end up in logs and browser history.
    let answer = send(http().get(server.url(&format!("/api/me?token={}", admin.token)))).await;

    assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn a_malformed_authorization_header_is_unauthorized() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;

    for header in [
        format!("Basic {}", admin.token),
        format!("Bearer{}", admin.token),
        "Bearer ".to_owned(),
        String::new(),
    ] {
        let answer = send(
            http()
                .get(server.url("/api/me"))
                .header("Authorization", header.as_str()),
        )
        .await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
    }
}

#[tokio::test]
async fn changing_the_password_signs_out_every_other_session() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let laptop = create_user(&admin, "alice").await;
    let phone = login_client(&server, "alice", &password_of("alice")).await;

    let (status, body) = laptop
        .change_password(&password_of("alice"), "a brand new passphrase")
        .await;

    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    laptop.me().await;
    refused(&server, &phone.token).await;
    let (status, _, _) = login(&server, "alice", &password_of("alice")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    login_client(&server, "alice", "a brand new passphrase").await;
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_a_different_long_enough_one() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let other_session = login_client(&server, "alice", &password_of("alice")).await;

    let wrong_current = alice
        .change_password("not my password!!", "a brand new passphrase")
        .await;
    assert_error(
        &wrong_current,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    let too_short = alice
        .change_password(&password_of("alice"), "elevenbytes")
        .await;
    assert_error(&too_short, StatusCode::BAD_REQUEST, "invalid_password");
    let too_long = alice
        .change_password(&password_of("alice"), &"x".repeat(1025))
        .await;
    assert_error(&too_long, StatusCode::BAD_REQUEST, "invalid_password");
    let wrong_type = alice
        .post(
            "/api/me/password",
            json!({"current_password": password_of("alice"), "new_password": 123456789012345_u64}),
        )
        .await;
    assert_error(&wrong_type, StatusCode::BAD_REQUEST, "invalid_body");
    let same = alice
        .change_password(&password_of("alice"), &password_of("alice"))
        .await;
    assert_error(&same, StatusCode::BAD_REQUEST, "password_unchanged");
    // Only someone who knows the current password learns that the new one is the same.
    let guessed = alice
        .change_password("not my password!!", "not my password!!")
        .await;
    assert_error(&guessed, StatusCode::UNAUTHORIZED, "invalid_credentials");

    // Nothing changed: the old password works, every session is alive (the refused change to
    // the same password revoked none), and the wrong current password did not sign alice out.
    alice.me().await;
    other_session.me().await;
    login_client(&server, "alice", &password_of("alice")).await;
    let (status, _, _) = login(&server, "alice", "a brand new passphrase").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Lengths are in bytes: 6 characters but 11 bytes is too short, 3 emoji (12 bytes) are fine.
    let short_in_bytes = alice.change_password(&password_of("alice"), "ééééé!").await;
    assert_error(&short_in_bytes, StatusCode::BAD_REQUEST, "invalid_password");
    let (status, body) = alice.change_password(&password_of("alice"), "🔑🔑🔑").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = alice.change_password("🔑🔑🔑", &password_of("alice")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // The limits are inclusive: exactly 12 bytes is a valid password.
    let (status, body) = alice
        .change_password(&password_of("alice"), "twelve bytes")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    login_client(&server, "alice", "twelve bytes").await;
}

#[tokio::test]
async fn users_and_sessions_survive_a_restart() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let alice_id = alice.id();

    let server = server.restart();

    // The old tokens still work against the new process: sessions and the signing key are
    // stored, not kept in memory.
    let admin = Client::new(&server, &admin.token);
    let alice = Client::new(&server, &alice.token);
    assert_eq!(alice.me().await["id"], alice_id);
    assert_eq!(admin.me().await["role"], "admin");
    login_client(&server, "alice", &password_of("alice")).await;
    let users = admin.admin_users().await;
    assert_eq!(users.len(), 2, "{users:?}");
    // And setup stays closed.
    assert!(
        server.setup_token().is_none(),
        "a set-up server printed a setup token"
    );
    let (status, _) = send(http().get(server.url("/setup"))).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_logout_survives_a_restart() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let gone = login_client(&server, "admin", ADMIN_PASSWORD).await;
    gone.logout().await;

    let server = server.restart();

    refused(&server, &gone.token).await;
    Client::new(&server, &admin.token).me().await;
}
