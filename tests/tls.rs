//! HTTPS on the LAN: the generated CA is all a client needs to trust, plain HTTP on the same
//! port redirects, an operator's certificate is picked up when renewed, and the trust page
//! and join link are there for people setting up their devices.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::tls::{
    https_client, https_client_trusting_nothing, issue_test_certificate, open_wss, trusted_by,
};
use common::*;

#[tokio::test]
async fn a_client_trusting_only_the_generated_ca_gets_https_and_others_are_refused() {
    let server = TestServer::start_with(&["--tls", "auto"], None);
    let ca = server.ca_pem();

    let (status, body) = send(https_client(&ca).get(server.https_url("/healthz"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ok");

    let untrusted = https_client_trusting_nothing()
        .get(server.https_url("/healthz"))
        .send()
        .await;
    let error = untrusted.expect_err("a device without the CA must not trust the server");
    assert!(
        error.is_connect(),
        "a TLS verification failure, got {error:?}"
    );

    let key = server.data_dir().join("tls").join("ca-key.pem");
    let mode = std::fs::metadata(&key)
        .expect("ca-key.pem")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the CA key is private");
}

#[tokio::test]
async fn the_ca_survives_a_restart_so_devices_trust_once() {
    let dir = tempfile::tempdir().expect("data dir");
    let server = TestServer::start_with(&["--tls", "auto"], Some(dir.path()));
    let ca = server.ca_pem();
    assert!(server.stop().success());
    let again = TestServer::start_with(&["--tls", "auto"], Some(dir.path()));
    assert!(again.ca_pem() == ca, "the same CA after a restart");
    assert!(
        trusted_by(&again, &ca).await,
        "the new server certificate chains to it"
    );
}

#[tokio::test]
async fn plain_http_on_the_same_port_redirects_to_https() {
    let server = TestServer::start_with(&["--tls", "auto"], None);
    let (status, headers, _) = send_full(http().get(server.url("/some/path?q=1"))).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        headers["location"],
        format!("https://{}/some/path?q=1", server.addr()).as_str()
    );
    assert_eq!(
        headers["cache-control"], "no-store",
        "not remembered by browsers"
    );

    let missing_host = raw_http(&server, b"GET / HTTP/1.0\r\n\r\n").await;
    assert_eq!(missing_host.status, 400, "{}", missing_host.text);
}

#[tokio::test]
async fn the_trust_page_and_ca_download_work_before_the_device_trusts_the_server() {
    let server = TestServer::start_with(&["--tls", "auto"], None);
    let ca = server.ca_pem();

    // Over plain HTTP: the page a new device opens first.
    let (status, headers, page) = send_full(http().get(server.url("/trust"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html")
    );
    let page = page.as_str().expect("an HTML page").to_owned();
    for platform in ["Windows", "macOS", "Linux", "Android", "iPhone"] {
        assert!(page.contains(platform), "steps for {platform}");
    }
    assert!(
        !page.contains("<script") && !page.contains("style="),
        "no inline code under the CSP"
    );
    assert!(
        server.wait_for_log("(fingerprint ", Duration::from_secs(5)),
        "the start-up log shows the CA fingerprint"
    );
    let fingerprint = server
        .logs()
        .iter()
        .find_map(|l| {
            l.split("fingerprint ")
                .nth(1)
                .map(|f| f.trim_end_matches(')').to_owned())
        })
        .expect("the start-up log shows the CA fingerprint");
    assert!(
        page.contains(&fingerprint),
        "the page shows the same fingerprint"
    );

    let response = http()
        .get(server.url("/trust/ca.pem"))
        .send()
        .await
        .expect("download");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-x509-ca-cert"
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap_or("")
            .contains(".crt"),
        "saved as a .crt file"
    );
    assert_eq!(
        response.bytes().await.expect("body").as_ref(),
        ca.as_slice()
    );

    // And over HTTPS, for the sign-in page's link.
    let (status, _) = send(https_client(&ca).get(server.https_url("/trust"))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn without_tls_there_is_no_trust_page_and_no_secure_cookie() {
    let server = TestServer::start();
    let (status, _) = send(http().get(server.url("/trust/ca.pem"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let admin = setup_admin(&server).await;
    let (_, _, cookie) = login(&server, "admin", ADMIN_PASSWORD).await;
    assert!(!cookie.expect("cookie").contains("Secure"));
    let (status, join) = admin.get("/api/admin/join").await;
    assert_eq!(status, StatusCode::OK, "{join}");
    assert_eq!(join["url"], format!("http://{}/", server.addr()).as_str());
}

#[tokio::test]
async fn signing_in_over_https_sets_a_secure_cookie_and_websockets_work_over_wss() {
    let server = TestServer::start_with(&["--tls", "auto"], None);
    let ca = server.ca_pem();
    let client = https_client(&ca);
    let admin = setup_admin_at(&client, &server.https_url(""), &server).await;

    let (status, headers, _) = send_full(
        client
            .post(server.https_url("/api/login"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let cookie = session_set_cookie(&headers).expect("session cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");

    let (_ws, hello) = open_wss(&server, &ca, &admin.token).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    assert_eq!(hello["user"]["username"], "admin", "{hello}");
}

#[tokio::test]
async fn the_join_link_and_qr_code_are_for_admins_only() {
    let server = TestServer::start_with(&["--tls", "auto"], None);
    let client = https_client(&server.ca_pem());
    let admin = setup_admin_at(&client, &server.https_url(""), &server).await;
    let member = create_user(&admin, "member").await;

    let (status, join) = admin.get("/api/admin/join").await;
    assert_eq!(status, StatusCode::OK, "{join}");
    assert_eq!(join["url"], server.https_url("/").as_str());
    let svg = join["qr_svg"].as_str().expect("qr_svg");
    assert!(
        svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );

    let refused = member.get("/api/admin/join").await;
    assert_error(&refused, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn an_operator_certificate_is_reloaded_when_renewed_and_a_bad_file_keeps_the_old_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let first = issue_test_certificate("Office CA one");
    std::fs::write(&cert, &first.cert_pem).expect("write cert");
    std::fs::write(&key, &first.key_pem).expect("write key");
    let data = tempfile::tempdir().expect("data dir");
    let server = TestServer::start_with_env(
        &[],
        &[
            ("CONFAB_TLS_CERT", cert.to_str().expect("path")),
            ("CONFAB_TLS_KEY", key.to_str().expect("path")),
        ],
        Some(data.path()),
    );
    assert!(trusted_by(&server, first.ca_pem.as_bytes()).await);

    // A renewal writes the key, then the certificate.
    let second = issue_test_certificate("Office CA two");
    std::fs::write(&key, &second.key_pem).expect("write key");
    std::fs::write(&cert, &second.cert_pem).expect("write cert");
    let presented = wait_until(Duration::from_secs(15), || {
        trusted_by(&server, second.ca_pem.as_bytes())
    })
    .await;
    assert!(
        presented,
        "the renewed certificate is presented without a restart"
    );
    assert!(
        !trusted_by(&server, first.ca_pem.as_bytes()).await,
        "the old one is gone"
    );

    std::fs::write(&cert, "not a certificate").expect("write garbage");
    assert!(
        server.wait_for_log("kept the previous TLS certificate", Duration::from_secs(15)),
        "the bad file is reported"
    );
    assert!(
        trusted_by(&server, second.ca_pem.as_bytes()).await,
        "still serving the last good one"
    );
}

#[test]
fn tls_flags_are_checked_at_start() {
    let both = run_cli(&[
        "--tls",
        "auto",
        "--tls-cert",
        "a.pem",
        "--tls-key",
        "b.pem",
        "check",
    ]);
    assert!(!both.status.success());
    assert!(String::from_utf8_lossy(&both.stderr).contains("choose one"));

    let lonely = run_cli(&["--tls-cert", "a.pem"]);
    assert!(!lonely.status.success(), "--tls-cert needs --tls-key");

    let dir = tempfile::tempdir().expect("temp dir");
    let missing = run_cli(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().expect("path"),
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("/nonexistent/cert.pem"),
        "names the file: {stderr}"
    );
}

async fn wait_until<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}
