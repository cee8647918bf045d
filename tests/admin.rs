//! The administrator manages accounts: creates people, renames, disables, promotes and resets
//! them, and the server keeps at least one administrator able to do so.

mod common;

use common::*;

fn user_path(id: i64) -> String {
    format!("/api/admin/users/{id}")
}

fn keys(object: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = object
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {object}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn a_member_cannot_use_the_admin_routes() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let admin_id = admin.id();
    let before = admin.admin_users().await;

    let list = alice.get("/api/admin/users").await;
    assert_error(&list, StatusCode::FORBIDDEN, "forbidden");
    let create = alice
        .post(
            "/api/admin/users",
            json!({"username": "sneaky", "display_name": "Sneaky"}),
        )
        .await;
    assert_error(&create, StatusCode::FORBIDDEN, "forbidden");
    let promote_self = alice
        .patch(&user_path(alice.id()), json!({"role": "admin"}))
        .await;
    assert_error(&promote_self, StatusCode::FORBIDDEN, "forbidden");
    let disable_admin = alice
        .patch(&user_path(admin_id), json!({"disabled": true}))
        .await;
    assert_error(&disable_admin, StatusCode::FORBIDDEN, "forbidden");
    let reset_admin = alice
        .post_empty(&format!("/api/admin/users/{admin_id}/reset-password"))
        .await;
    assert_error(&reset_admin, StatusCode::FORBIDDEN, "forbidden");

    // Nothing changed.
    assert_eq!(admin.admin_users().await, before);
    assert_eq!(alice.me().await["role"], "member");
    admin.me().await;
    login_client(&server, "admin", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn a_new_user_gets_a_temporary_password_they_must_change() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;

    let (status, body) = admin
        .post(
            "/api/admin/users",
            json!({"username": "alice", "display_name": "Alice Liddell"}),
        )
        .await;

    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(keys(&body), ["temporary_password", "user"], "{body}");
    let user = &body["user"];
    assert_eq!(
        keys(user),
        [
            "disabled",
            "display_name",
            "id",
            "last_seen",
            "must_change_password",
            "role",
            "username"
        ]
    );
    assert!(user["id"].as_i64().is_some_and(|id| id > 0), "{user}");
    assert_eq!(user["username"], "alice");
    assert_eq!(user["display_name"], "Alice Liddell");
    assert_eq!(user["role"], "member");
    assert_eq!(user["disabled"], false);
    assert_eq!(user["must_change_password"], true);
    assert_eq!(user["last_seen"], Value::Null);
    let temporary = body["temporary_password"]
        .as_str()
        .expect("temporary password");
    assert!(
        temporary.len() >= 12,
        "temporary password too short: {temporary:?}"
    );

    // First sign-in: only /api/me, the password change and logout work.
    let alice = login_client(&server, "alice", temporary).await;
    assert_eq!(alice.user["must_change_password"], true);
    assert_eq!(alice.me().await["must_change_password"], true);
    let blocked = alice.get("/api/users").await;
    assert_error(&blocked, StatusCode::FORBIDDEN, "password_change_required");
    let blocked = alice.get("/api/conversations").await;
    assert_error(&blocked, StatusCode::FORBIDDEN, "password_change_required");
    // "Changing" it to itself would leave a password the admin knows: refused, nothing changes.
    let kept = alice.change_password(temporary, temporary).await;
    assert_error(&kept, StatusCode::BAD_REQUEST, "password_unchanged");
    assert_eq!(alice.me().await["must_change_password"], true);
    let blocked = alice.get("/api/users").await;
    assert_error(&blocked, StatusCode::FORBIDDEN, "password_change_required");

    let (status, body) = alice
        .change_password(temporary, "alice's own passphrase")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(alice.me().await["must_change_password"], false);
    let (status, body) = alice.get("/api/users").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = login(&server, "alice", temporary).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the temporary password is spent"
    );
}

#[tokio::test]
async fn the_directory_lists_everyone_by_username_without_private_fields() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    create_user_raw(&admin, "zoe").await;
    let bob = create_user(&admin, "bob").await;
    // Disabled accounts are still listed: the directory names every account.
    let zoe_id = admin
        .admin_users()
        .await
        .iter()
        .find(|u| u["username"] == "zoe")
        .and_then(|u| u["id"].as_i64())
        .expect("zoe");
    let (status, body) = admin
        .patch(&user_path(zoe_id), json!({"disabled": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = bob.get("/api/users").await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let users = body.as_array().expect("an array");
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["admin", "bob", "zoe"]);
    for user in users {
        assert_eq!(
            keys(user),
            [
                "disabled",
                "display_name",
                "id",
                "last_seen",
                "role",
                "username"
            ],
            "{user}"
        );
    }
    assert_eq!(users[0]["role"], "admin");
    assert_eq!(users[1]["id"], bob.user["id"]);
    assert_eq!(users[2]["display_name"], "Zoe");
    assert_eq!(users[2]["disabled"], true);

    // The admin list has the same people, ordered the same way, with full user objects.
    let full = admin.admin_users().await;
    let full_names: Vec<&str> = full
        .iter()
        .map(|u| u["username"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(full_names, names);
    assert_eq!(full[2]["must_change_password"], true);
}

#[tokio::test]
async fn usernames_are_validated_and_stored_in_lower_case() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let before = admin.admin_users().await;

    let too_long = "a".repeat(33);
    for bad in [
        "a",
        "",
        too_long.as_str(),
        "bob smith",
        "bob!",
        "böb",
        "bob/x",
        "bob@office",
        " bob",
    ] {
        let answer = admin
            .post(
                "/api/admin/users",
                json!({"username": bad, "display_name": "Bob"}),
            )
            .await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_username");
    }
    assert_eq!(
        admin.admin_users().await,
        before,
        "a bad username created someone"
    );

    // The edges are allowed; upper case is folded.
    let longest = "b".repeat(32);
    for (given, stored) in [
        ("Jo", "jo"),
        ("Dave.Smith_2-x", "dave.smith_2-x"),
        (longest.as_str(), longest.as_str()),
    ] {
        let (status, body) = admin
            .post(
                "/api/admin/users",
                json!({"username": given, "display_name": "Someone"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{given}: {body}");
        assert_eq!(body["user"]["username"], stored);
    }
}

#[tokio::test]
async fn a_username_is_taken_whatever_its_case() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    create_user_raw(&admin, "carol").await;
    let before = admin.admin_users().await;

    let dup = admin
        .post(
            "/api/admin/users",
            json!({"username": "CAROL", "display_name": "Other Carol"}),
        )
        .await;
    assert_error(&dup, StatusCode::CONFLICT, "username_taken");
    let dup_admin = admin
        .post(
            "/api/admin/users",
            json!({"username": "Admin", "display_name": "Fake Admin"}),
        )
        .await;
    assert_error(&dup_admin, StatusCode::CONFLICT, "username_taken");

    assert_eq!(admin.admin_users().await, before);
}

#[tokio::test]
async fn display_names_must_have_one_to_sixty_four_characters() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let before = admin.admin_users().await;

    let too_long = "x".repeat(65);
    for (username, bad) in [("empty", ""), ("blank", "   "), ("long", too_long.as_str())] {
        let answer = admin
            .post(
                "/api/admin/users",
                json!({"username": username, "display_name": bad}),
            )
            .await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_display_name");
    }
    assert_eq!(admin.admin_users().await, before);

    // 64 characters (not bytes) is fine, and so is padding that trimming removes.
    let longest = "é".repeat(64);
    let (status, body) = admin
        .post(
            "/api/admin/users",
            json!({"username": "longest", "display_name": longest}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["display_name"], longest);
    let padded = format!("  {}  ", "x".repeat(64));
    let (status, body) = admin
        .post(
            "/api/admin/users",
            json!({"username": "padded", "display_name": padded}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn an_admin_renames_a_user_and_changes_their_display_name() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let bob = create_user(&admin, "bob").await;

    let (status, body) = admin
        .patch(
            &user_path(bob.id()),
            json!({"username": "Robert", "display_name": "Robert Paulson"}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], bob.user["id"]);
    assert_eq!(body["username"], "robert");
    assert_eq!(body["display_name"], "Robert Paulson");
    assert_eq!(body["role"], "member");
    assert_eq!(
        bob.me().await["username"],
        "robert",
        "the session follows the rename"
    );
    let (status, _, _) = login(&server, "bob", &password_of("bob")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    login_client(&server, "robert", &password_of("bob")).await;
    // A user's own name is not "taken" by themselves.
    let (status, body) = admin
        .patch(&user_path(bob.id()), json!({"username": "ROBERT"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], "robert");
    let (_, directory) = bob.get("/api/users").await;
    assert!(
        directory
            .as_array()
            .expect("directory")
            .iter()
            .any(|u| u["username"] == "robert" && u["display_name"] == "Robert Paulson"),
        "{directory}"
    );
}

#[tokio::test]
async fn bad_edits_are_refused_and_change_nothing() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let bob = create_user(&admin, "bob").await;
    create_user_raw(&admin, "carol").await;
    let before = admin.admin_user(bob.id()).await;
    let path = user_path(bob.id());

    let taken = admin.patch(&path, json!({"username": "CAROL"})).await;
    assert_error(&taken, StatusCode::CONFLICT, "username_taken");
    let invalid = admin.patch(&path, json!({"username": "b"})).await;
    assert_error(&invalid, StatusCode::BAD_REQUEST, "invalid_username");
    let empty_name = admin.patch(&path, json!({"display_name": " "})).await;
    assert_error(&empty_name, StatusCode::BAD_REQUEST, "invalid_display_name");
    let long_name = admin
        .patch(&path, json!({"display_name": "y".repeat(65)}))
        .await;
    assert_error(&long_name, StatusCode::BAD_REQUEST, "invalid_display_name");
    // A valid field next to an invalid one must not be half-applied.
    let half = admin
        .patch(&path, json!({"display_name": "Bobby", "username": "b!"}))
        .await;
    assert_error(&half, StatusCode::BAD_REQUEST, "invalid_username");
    let no_role = admin.patch(&path, json!({"role": "owner"})).await;
    assert_error(&no_role, StatusCode::BAD_REQUEST, "invalid_body");

    assert_eq!(admin.admin_user(bob.id()).await, before);
    bob.me().await;

    let not_an_id = admin
        .patch("/api/admin/users/bob", json!({"display_name": "Ghost"}))
        .await;
    assert_error(&not_an_id, StatusCode::NOT_FOUND, "not_found");
    let missing = admin
        .patch(&user_path(9999), json!({"display_name": "Ghost"}))
        .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "not_found");
    let reset_missing = admin
        .post_empty("/api/admin/users/9999/reset-password")
        .await;
    assert_error(&reset_missing, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_disabled_user_is_signed_out_and_cannot_sign_in() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let bob = create_user(&admin, "bob").await;

    let (status, body) = admin
        .patch(&user_path(bob.id()), json!({"disabled": true}))
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["disabled"], true);
    let old_session = bob.get("/api/me").await;
    assert_error(&old_session, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body, cookie) = login(&server, "bob", &password_of("bob")).await;
    assert_error(&(status, body), StatusCode::FORBIDDEN, "account_disabled");
    assert!(cookie.is_none(), "a disabled user got a session cookie");
    // Only the right password learns that the account is disabled.
    let (status, body, _) = login(&server, "bob", "a wrong password!").await;
    assert_error(
        &(status, body),
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    let listed = admin.admin_user(bob.id()).await;
    assert_eq!(listed["disabled"], true);

    // Enabling again lets bob back in, but the old session stays dead.
    let (status, body) = admin
        .patch(&user_path(bob.id()), json!({"disabled": false}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let old_session = bob.get("/api/me").await;
    assert_error(&old_session, StatusCode::UNAUTHORIZED, "unauthorized");
    login_client(&server, "bob", &password_of("bob")).await;
}

#[tokio::test]
async fn promoting_a_member_opens_the_admin_routes_to_their_current_session() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let bob = create_user(&admin, "bob").await;
    assert_error(
        &bob.get("/api/admin/users").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    let (status, body) = admin
        .patch(&user_path(bob.id()), json!({"role": "admin"}))
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "admin");
    assert_eq!(bob.me().await["role"], "admin");
    assert_eq!(bob.admin_users().await.len(), 2);

    // And demoting takes it away again at once.
    let (status, body) = admin
        .patch(&user_path(bob.id()), json!({"role": "member"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_error(
        &bob.get("/api/admin/users").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
}

#[tokio::test]
async fn an_admin_can_be_created_directly() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;

    let (status, body) = admin
        .post(
            "/api/admin/users",
            json!({"username": "second", "display_name": "Second", "role": "admin"}),
        )
        .await;

    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["role"], "admin");
}

#[tokio::test]
async fn the_last_administrator_cannot_be_demoted_or_disabled() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let me = user_path(admin.id());

    let demote = admin.patch(&me, json!({"role": "member"})).await;
    assert_error(&demote, StatusCode::CONFLICT, "last_admin");
    let disable = admin.patch(&me, json!({"disabled": true})).await;
    assert_error(&disable, StatusCode::CONFLICT, "last_admin");
    let both = admin
        .patch(&me, json!({"role": "admin", "disabled": true}))
        .await;
    assert_error(&both, StatusCode::CONFLICT, "last_admin");

    let still = admin.me().await;
    assert_eq!(
        (still["role"].clone(), still["disabled"].clone()),
        (json!("admin"), json!(false))
    );
    admin.admin_users().await;

    // With a second administrator the first may step down; then the second is the last one.
    let bob = create_user(&admin, "bob").await;
    let (status, body) = admin
        .patch(&user_path(bob.id()), json!({"role": "admin"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = admin.patch(&me, json!({"role": "member"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let demote_bob = bob
        .patch(&user_path(bob.id()), json!({"role": "member"}))
        .await;
    assert_error(&demote_bob, StatusCode::CONFLICT, "last_admin");
    let disable_bob = bob
        .patch(&user_path(bob.id()), json!({"disabled": true}))
        .await;
    assert_error(&disable_bob, StatusCode::CONFLICT, "last_admin");
    assert_eq!(bob.me().await["role"], "admin");
}

#[tokio::test]
async fn a_disabled_administrator_does_not_count_as_the_remaining_one() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let (status, body) = admin
        .post(
            "/api/admin/users",
            json!({"username": "backup", "display_name": "Backup", "role": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let backup_id = body["user"]["id"].as_i64().expect("id");
    let (status, body) = admin
        .patch(&user_path(backup_id), json!({"disabled": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let demote = admin
        .patch(&user_path(admin.id()), json!({"role": "member"}))
        .await;

    assert_error(&demote, StatusCode::CONFLICT, "last_admin");
    assert_eq!(admin.me().await["role"], "admin");
}

#[tokio::test]
async fn resetting_a_password_signs_the_user_out_and_forces_a_new_one() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let bob = create_user(&admin, "bob").await;
    let bob_phone = login_client(&server, "bob", &password_of("bob")).await;

    let (status, body) = admin
        .post_empty(&format!("/api/admin/users/{}/reset-password", bob.id()))
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let temporary = body["temporary_password"]
        .as_str()
        .expect("temporary_password");
    assert!(temporary.len() >= 12);
    for session in [&bob, &bob_phone] {
        let answer = session.get("/api/me").await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let (status, body, _) = login(&server, "bob", &password_of("bob")).await;
    assert_error(
        &(status, body),
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    let bob = login_client(&server, "bob", temporary).await;
    assert_eq!(bob.user["must_change_password"], true);
    assert_error(
        &bob.get("/api/users").await,
        StatusCode::FORBIDDEN,
        "password_change_required",
    );
    assert_eq!(
        admin.admin_user(bob.id()).await["must_change_password"],
        true
    );
    let (status, body) = bob.change_password(temporary, "bob's new passphrase").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = bob.get("/api/users").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_user_with_a_temporary_password_may_still_sign_out() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let temporary = create_user_raw(&admin, "bob").await;
    let bob = login_client(&server, "bob", &temporary).await;

    bob.logout().await;

    assert_error(
        &bob.get("/api/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[tokio::test]
async fn racing_creations_of_one_username_create_one_account() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;

    let attempts = ["dora", "Dora", "DORA", "dora", "doRa"].map(|name| {
        admin.post(
            "/api/admin/users",
            json!({"username": name, "display_name": "Dora"}),
        )
    });
    let answers = futures_util::future::join_all(attempts).await;

    let created = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{answers:?}");
    for answer in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_error(answer, StatusCode::CONFLICT, "username_taken");
    }
    let doras = admin
        .admin_users()
        .await
        .into_iter()
        .filter(|u| u["username"] == "dora")
        .count();
    assert_eq!(doras, 1);
}

/// Enabled administrators according to the admin list.
async fn enabled_admins(admin: &Client) -> usize {
    admin
        .admin_users()
        .await
        .into_iter()
        .filter(|u| u["role"] == "admin" && u["disabled"] == false)
        .count()
}

#[tokio::test]
async fn two_admins_removing_each_other_at_once_leave_one_admin() {
    let server = TestServer::start();
    let first = setup_admin(&server).await;
    let second = create_user(&first, "second").await;
    let (first_path, second_path) = (user_path(first.id()), user_path(second.id()));
    let (status, body) = first.patch(&second_path, json!({"role": "admin"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Each demotes the other in the same instant; checking "another admin remains" and
    // writing must be one transaction, or both succeed and nobody is left.
    let (a, b) = tokio::join!(
        first.patch(&second_path, json!({"role": "member"})),
        second.patch(&first_path, json!({"role": "member"})),
    );

    let succeeded = [&a, &b]
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    assert_eq!(succeeded, 1, "{a:?} {b:?}");
    for answer in [&a, &b].into_iter().filter(|(s, _)| *s != StatusCode::OK) {
        // The loser meets the last_admin rule, or was already demoted by the winner.
        assert!(
            matches!(
                (answer.0, error_code(&answer.1)),
                (StatusCode::CONFLICT, "last_admin") | (StatusCode::FORBIDDEN, "forbidden")
            ),
            "{answer:?}"
        );
    }
    let survivor = if a.0 == StatusCode::OK {
        &first
    } else {
        &second
    };
    assert_eq!(enabled_admins(survivor).await, 1);
}
