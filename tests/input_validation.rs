//! What the HTTP API accepts as text: bodies with a key given twice or a `null` for a field are
//! refused, names that show nothing or can reorder the text around them are refused, and so
//! are query strings that do not decode to UTF-8.

mod common;

use common::{
    ADMIN_PASSWORD, Method, StatusCode, TestServer, assert_error, create_room, create_user,
    create_user_raw, http, login, send, setup_admin, summary_of,
};
use serde_json::{Value, json};

/// `body` sent as is, so a key can appear twice (a `json!` value cannot hold that).
async fn send_raw(request: reqwest::RequestBuilder, body: String) -> (StatusCode, Value) {
    send(
        request
            .header("Content-Type", "application/json")
            .body(body),
    )
    .await
}

#[tokio::test]
async fn a_body_with_a_key_given_twice_is_refused_and_changes_nothing() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    create_user_raw(&admin, "bob").await;
    let before = admin.admin_users().await;
    let bob_id = before
        .iter()
        .find(|u| u["username"] == "bob")
        .and_then(|u| u["id"].as_i64())
        .expect("bob");

    let login = send_raw(
        http().post(server.url("/api/login")),
        format!(r#"{{"username":"admin","username":"bob","password":"{ADMIN_PASSWORD}"}}"#),
    )
    .await;
    assert_error(&login, StatusCode::BAD_REQUEST, "invalid_body");
    let create = send_raw(
        admin.request(Method::POST, "/api/admin/users"),
        r#"{"username":"eve","display_name":"Eve","display_name":"Admin"}"#.to_owned(),
    )
    .await;
    assert_error(&create, StatusCode::BAD_REQUEST, "invalid_body");
    let path = format!("/api/admin/users/{bob_id}");
    for body in [
        r#"{"disabled":false,"disabled":true}"#,
        r#"{"role":"member","role":"admin"}"#,
        r#"{"display_name":"Bobby","display_name":"Bobby"}"#,
    ] {
        let patch = send_raw(admin.request(Method::PATCH, &path), body.to_owned()).await;
        assert_error(&patch, StatusCode::BAD_REQUEST, "invalid_body");
    }

    assert_eq!(admin.admin_users().await, before);
}

#[tokio::test]
async fn null_is_a_wrong_type_not_a_field_left_out() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    create_user_raw(&admin, "bob").await;
    let users = admin.admin_users().await;
    let bob_id = users
        .iter()
        .find(|u| u["username"] == "bob")
        .and_then(|u| u["id"].as_i64())
        .expect("bob");
    let room = create_room(&admin, "Sales", "open", &[]).await;
    let before = summary_of(&admin, &room).await.expect("Sales");

    for body in [
        json!({"name": "Support", "topic": null, "visibility": "open"}),
        json!({"name": "Support", "visibility": "open", "members": null}),
    ] {
        let create = admin.post("/api/rooms", body).await;
        assert_error(&create, StatusCode::BAD_REQUEST, "invalid_body");
    }
    for field in ["name", "topic", "visibility", "archived"] {
        let patch = admin
            .patch(&format!("/api/rooms/{room}"), json!({ field: null }))
            .await;
        assert_error(&patch, StatusCode::BAD_REQUEST, "invalid_body");
    }
    for field in ["username", "display_name", "role", "disabled"] {
        let patch = admin
            .patch(
                &format!("/api/admin/users/{bob_id}"),
                json!({ field: null }),
            )
            .await;
        assert_error(&patch, StatusCode::BAD_REQUEST, "invalid_body");
    }

    let (_, found) = admin.get("/api/rooms?q=Support").await;
    assert_eq!(found["rooms"], json!([]), "no room was created");
    let after = summary_of(&admin, &room).await.expect("Sales");
    for field in ["name", "topic", "visibility", "archived"] {
        assert_eq!(after[field], before[field], "{field}");
    }
    assert_eq!(admin.admin_users().await, users);
}

#[tokio::test]
async fn a_display_name_that_shows_nothing_is_refused() {
    let server = TestServer::start();
    let token = server.setup_token().expect("setup token");
    let invisible = [
        "\u{200B}",
        "\u{200B}\u{200C}\u{200D}\u{FEFF}",
        " \u{2060}\u{00AD} ",
        "\u{3164}",
        "\u{034F}\u{FE0F}",
    ];
    for name in invisible {
        let setup = send(http().post(server.url("/api/setup")).json(&serde_json::json!({
            "token": token, "username": "admin", "display_name": name, "password": ADMIN_PASSWORD,
        })))
        .await;
        assert_error(&setup, StatusCode::BAD_REQUEST, "invalid_display_name");
    }
    let admin = setup_admin(&server).await;
    create_user_raw(&admin, "bob").await;
    let before = admin.admin_users().await;
    let bob_id = before
        .iter()
        .find(|u| u["username"] == "bob")
        .and_then(|u| u["id"].as_i64())
        .expect("bob");

    for name in invisible {
        let create = admin
            .post(
                "/api/admin/users",
                serde_json::json!({"username": "ghost", "display_name": name}),
            )
            .await;
        assert_error(&create, StatusCode::BAD_REQUEST, "invalid_display_name");
        let patch = admin
            .patch(
                &format!("/api/admin/users/{bob_id}"),
                serde_json::json!({"display_name": name}),
            )
            .await;
        assert_error(&patch, StatusCode::BAD_REQUEST, "invalid_display_name");
    }
    assert_eq!(admin.admin_users().await, before);

    // Invisible characters inside a visible name are fine (a zero-width joiner in an emoji).
    let (status, body) = admin
        .patch(
            &format!("/api/admin/users/{bob_id}"),
            serde_json::json!({"display_name": "Bob 👩\u{200D}💻"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_display_name_with_bidi_overrides_or_isolates_is_refused() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    create_user_raw(&admin, "bob").await;
    let before = admin.admin_users().await;
    let bob_id = before
        .iter()
        .find(|u| u["username"] == "bob")
        .and_then(|u| u["id"].as_i64())
        .expect("bob");

    let tricks = [
        "Bob\u{202E}nimdA",
        "\u{202A}Bob",
        "\u{202B}Bob",
        "Bob\u{202C}",
        "\u{202D}Bob",
        "\u{2066}Admin\u{2069}",
        "\u{2067}Bob",
        "\u{2068}Bob",
    ];
    for name in tricks {
        let create = admin
            .post(
                "/api/admin/users",
                serde_json::json!({"username": "trick", "display_name": name}),
            )
            .await;
        assert_error(&create, StatusCode::BAD_REQUEST, "invalid_display_name");
        let patch = admin
            .patch(
                &format!("/api/admin/users/{bob_id}"),
                serde_json::json!({"display_name": name}),
            )
            .await;
        assert_error(&patch, StatusCode::BAD_REQUEST, "invalid_display_name");
    }
    assert_eq!(admin.admin_users().await, before);

    // Right-to-left letters are names like any other.
    let (status, body) = admin
        .patch(
            &format!("/api/admin/users/{bob_id}"),
            serde_json::json!({"display_name": "בוב"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Usernames are ASCII `a-z 0-9 . _ -` only, so a bidi control can never be part of one; this
/// pins that down for every way a username comes in.
#[tokio::test]
async fn a_username_cannot_carry_bidi_controls() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    create_user_raw(&admin, "bob").await;
    let before = admin.admin_users().await;
    let bob_id = before
        .iter()
        .find(|u| u["username"] == "bob")
        .and_then(|u| u["id"].as_i64())
        .expect("bob");

    for name in ["bob\u{202E}", "\u{2066}eve\u{2069}", "ev\u{202D}e"] {
        let create = admin
            .post(
                "/api/admin/users",
                serde_json::json!({"username": name, "display_name": "Eve"}),
            )
            .await;
        assert_error(&create, StatusCode::BAD_REQUEST, "invalid_username");
        let patch = admin
            .patch(
                &format!("/api/admin/users/{bob_id}"),
                serde_json::json!({"username": name}),
            )
            .await;
        assert_error(&patch, StatusCode::BAD_REQUEST, "invalid_username");
    }
    assert_eq!(admin.admin_users().await, before);
    let (status, _, _) = login(&server, "bob\u{202E}", "whatever password").await;
    assert_ne!(status, StatusCode::OK);
}

/// A query string decodes to UTF-8 text or is refused: a byte that is no character (`%FF`, an
/// overlong `/` as `%C0%AF`, a lone surrogate) is not quietly turned into U+FFFD, for any route.
/// Each field keeps its own code (an upload's `name`: `invalid_file_name`; the rest:
/// `invalid_query`), and nothing is kept.
#[tokio::test]
async fn a_query_string_that_is_not_utf8_is_refused_and_changes_nothing() {
    let server = TestServer::start_with(&["--upload-min-free", "1MB"], None);
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let bob = create_user(&admin, "bob").await;
    let dm = common::ws::dm_id(&alice, &bob);
    let uploads = format!("/api/conversations/{dm}/uploads");

    for name in ["a%FFb", "a%C0%AFb", "a%ED%A0%80b", "%FF"] {
        let upload = send(
            alice
                .request(Method::POST, &format!("{uploads}?name={name}"))
                .body(b"hello".to_vec()),
        )
        .await;
        assert_error(&upload, StatusCode::BAD_REQUEST, "invalid_file_name");
    }
    assert!(common::files::blob_files(&server.data_dir()).is_empty());

    for path in [
        "/api/search?q=%FF".to_owned(),
        "/api/search?q=invoice%FF".to_owned(),
        "/api/search?q=invoice&%FF=1".to_owned(),
        "/api/search?q=invoice&sort=new%FFest".to_owned(),
        "/api/rooms?q=%FF".to_owned(),
        "/api/mentions?limit=1%FF".to_owned(),
        format!("/api/conversations/{dm}/messages?before=%FF"),
        format!("/api/conversations/{dm}/changes?after=%FF"),
    ] {
        let got = alice.get(&path).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_query");
    }
    let status = admin.get("/api/admin/status?since=%FF").await;
    assert_error(&status, StatusCode::BAD_REQUEST, "invalid_query");

    // Text that is UTF-8 decodes as before: `+` is a space, `%C3%A4` is "ä".
    let (status, body) = send(
        alice
            .request(Method::POST, &format!("{uploads}?name=M%C3%A4rz+1.txt"))
            .body(b"hello".to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["file"]["name"], "März 1.txt");
    let (status, body) = alice.get("/api/rooms?q=Gen%C3%A9ral").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
