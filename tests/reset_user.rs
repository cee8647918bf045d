//! The operator's way back in: `confab --reset-user NAME` on the server machine, whether the
//! server is running (through its control socket) or stopped (directly on the database).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

/// Runs `confab --data-dir DIR --reset-user NAME`, asserts success, and returns the temporary
/// password from the first stdout line.
fn reset_user(dir: &Path, name: &str) -> String {
    let out = run_cli(&[
        "--data-dir",
        dir.to_str().expect("utf-8 path"),
        "--reset-user",
        name,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "--reset-user {name} failed: {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let first = stdout.lines().next().unwrap_or_default();
    let prefix = format!("Temporary password for {name}: ");
    let password = first
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("first stdout line {first:?} does not start with {prefix:?}"))
        .trim();
    assert!(
        password.len() >= 12,
        "temporary password too short: {password:?}"
    );
    password.to_owned()
}

/// What every successful reset promises: old password and sessions dead, the temporary
/// password signs in but must be changed first.
async fn assert_was_reset(server: &TestServer, old_session: &Client, temporary: &str) {
    let old = Client::new(server, &old_session.token);
    assert_error(
        &old.get("/api/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (status, body, _) = login(server, "alice", &password_of("alice")).await;
    assert_error(
        &(status, body),
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    let alice = login_client(server, "alice", temporary).await;
    assert_eq!(alice.user["must_change_password"], true);
    assert_error(
        &alice.get("/api/users").await,
        StatusCode::FORBIDDEN,
        "password_change_required",
    );
    let (status, body) = alice
        .change_password(temporary, "alice is back in business")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = alice.get("/api/users").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn resetting_a_user_while_the_server_runs() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let socket = server.data_dir().join("control.sock");
    let mode = std::fs::metadata(&socket)
        .unwrap_or_else(|e| panic!("{} missing while running: {e}", socket.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "control socket mode {mode:o}");

    let temporary = reset_user(&server.data_dir(), "alice");

    assert_was_reset(&server, &alice, &temporary).await;
    // The admin was not touched.
    admin.me().await;
    login_client(&server, "admin", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn resetting_a_user_while_the_server_is_stopped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_in(dir.path());
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let status = server.stop();
    assert!(status.success(), "{status:?}");

    let temporary = reset_user(dir.path(), "alice");

    let server = TestServer::start_in(dir.path());
    assert_was_reset(&server, &alice, &temporary).await;
    Client::new(&server, &admin.token).me().await;
}

#[tokio::test]
async fn resetting_the_only_administrator_gets_the_office_back_in() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;

    let temporary = reset_user(&server.data_dir(), "admin");

    assert_error(
        &admin.get("/api/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let admin = login_client(&server, "admin", &temporary).await;
    assert_eq!(admin.user["must_change_password"], true);
    assert_eq!(admin.user["role"], "admin");
    assert_error(
        &admin.get("/api/admin/users").await,
        StatusCode::FORBIDDEN,
        "password_change_required",
    );
    let (status, body) = admin
        .change_password(&temporary, "the admin's new passphrase")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(admin.admin_users().await.len(), 1);
}

/// `--reset-user alice` on her disabled account: reset as usual, with a warning that she cannot
/// sign in until an admin enables the account again.
fn assert_reset_warns_of_a_disabled_account(dir: &Path) {
    let out = run_cli(&[
        "--data-dir",
        dir.to_str().expect("utf-8 path"),
        "--reset-user",
        "alice",
    ]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("Temporary password for alice: "), "{said}");
    assert!(
        said.contains(
            "warning: alice's account is disabled: they cannot sign in until it is re-enabled on the admin page"
        ),
        "{said}"
    );
}

#[tokio::test]
async fn resetting_a_disabled_account_warns_that_it_must_be_enabled_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_in(dir.path());
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let (status, body) = admin
        .patch(
            &format!("/api/admin/users/{}", alice.id()),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    assert_reset_warns_of_a_disabled_account(dir.path());
    assert!(server.stop().success());
    assert_reset_warns_of_a_disabled_account(dir.path());

    // An enabled account's reset carries no such warning.
    let server = TestServer::start_in(dir.path());
    let admin = login_client(&server, "admin", ADMIN_PASSWORD).await;
    let (status, body) = admin
        .patch(
            &format!("/api/admin/users/{}", alice.id()),
            json!({"disabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (ok, said) = cli(&[
        "--data-dir",
        dir.path().to_str().expect("utf-8 path"),
        "--reset-user",
        "alice",
    ]);
    assert!(ok && !said.contains("disabled"), "{said}");
}

fn assert_unknown_user_fails(dir: &Path) {
    let out = run_cli(&[
        "--data-dir",
        dir.to_str().expect("utf-8 path"),
        "--reset-user",
        "nobody",
    ]);

    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("nobody"),
        "stderr should name the user: {stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("Temporary password"), "{stdout}");
}

#[tokio::test]
async fn an_unknown_user_is_an_error_whether_running_or_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_in(dir.path());
    let admin = setup_admin(&server).await;

    assert_unknown_user_fails(dir.path());

    admin.me().await;
    let status = server.stop();
    assert!(status.success(), "{status:?}");

    assert_unknown_user_fails(dir.path());

    let server = TestServer::start_in(dir.path());
    Client::new(&server, &admin.token).me().await;
    login_client(&server, "admin", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn a_crashed_server_does_not_block_an_offline_reset() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = TestServer::start_in(dir.path());
    setup_admin(&server).await;

    // SIGKILL leaves a stale control.sock behind; the reset must notice nobody answers it.
    server.kill();
    let temporary = reset_user(dir.path(), "admin");

    let server = TestServer::start_in(dir.path());
    login_client(&server, "admin", &temporary).await;
}

#[test]
fn a_wrong_data_dir_is_reported_and_not_created() {
    let parent = tempfile::tempdir().expect("temp dir");
    let wrong = parent.path().join("not-the-server-dir");
    let out = run_cli(&[
        "--data-dir",
        wrong.to_str().expect("utf-8 path"),
        "--reset-user",
        "alice",
    ]);

    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no confab database"),
        "stderr says what is wrong: {stderr}"
    );
    assert!(!wrong.exists(), "nothing was created at the wrong path");
}
