//! The embedded web UI: served with headers that keep injected scripts out, cached by ETag,
//! and never a way to read other files from the server's disk.

mod common;

use common::*;
use reqwest::header::HeaderMap;

async fn get(server: &TestServer, path: &str) -> (StatusCode, HeaderMap, String) {
    let resp = http()
        .get(server.url(path))
        .send()
        .await
        .expect("GET asset");
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.expect("asset body"))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("missing header {name}: {headers:?}"))
}

/// The sources a CSP allows for scripts: `script-src`, or `default-src` when that is absent.
fn script_sources(csp: &str) -> Option<String> {
    let directive = |name: &str| {
        csp.split(';')
            .map(str::trim)
            .find(|d| d.split_whitespace().next() == Some(name))
            .map(str::to_owned)
    };
    directive("script-src").or_else(|| directive("default-src"))
}

/// The headers every HTML page carries: a CSP without inline scripts, nosniff, a referrer
/// policy.
#[track_caller]
fn assert_page_headers(headers: &HeaderMap) {
    let csp = header(headers, "content-security-policy");
    assert!(csp.contains("script-src 'self'"), "CSP: {csp}");
    let scripts = script_sources(csp).expect("a script-src directive");
    assert!(
        !scripts.contains("'unsafe-inline'") && !scripts.contains("'unsafe-eval'"),
        "scripts may run inline: {csp}"
    );
    assert_eq!(header(headers, "x-content-type-options"), "nosniff");
    assert!(!header(headers, "referrer-policy").is_empty());
}

#[tokio::test]
async fn the_web_ui_is_served_with_headers_that_block_injected_scripts() {
    let server = TestServer::start();

    let (status, headers, body) = get(&server, "/").await;

    assert_eq!(status, StatusCode::OK);
    assert!(header(&headers, "content-type").starts_with("text/html"));
    assert!(body.to_ascii_lowercase().contains("<html"), "{body}");
    assert_page_headers(&headers);
    assert!(!header(&headers, "etag").is_empty());
}

#[tokio::test]
async fn the_ui_script_is_javascript() {
    let server = TestServer::start();

    let (status, headers, body) = get(&server, "/app.js").await;

    assert_eq!(status, StatusCode::OK);
    let content_type = header(&headers, "content-type");
    assert!(
        content_type.starts_with("text/javascript")
            || content_type.starts_with("application/javascript"),
        "{content_type}"
    );
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    assert!(!header(&headers, "etag").is_empty());
    assert!(!body.is_empty());
}

#[tokio::test]
async fn an_unchanged_asset_is_answered_with_304() {
    let server = TestServer::start();
    let (_, headers, _) = get(&server, "/").await;
    let etag = header(&headers, "etag").to_owned();

    for path in ["/", "/app.js"] {
        let (_, headers, _) = get(&server, path).await;
        let etag = header(&headers, "etag").to_owned();
        let resp = http()
            .get(server.url(path))
            .header("If-None-Match", &etag)
            .send()
            .await
            .expect("revalidate");
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(
            resp.headers().get("etag").and_then(|v| v.to_str().ok()),
            Some(etag.as_str())
        );
        assert!(resp.bytes().await.expect("body").is_empty());
    }

    // A stale ETag gets the full page again.
    let resp = http()
        .get(server.url("/"))
        .header("If-None-Match", "\"not-the-current-etag\"")
        .send()
        .await
        .expect("revalidate");
    assert_eq!(resp.status(), StatusCode::OK);
    // The page and the script are different files with different tags.
    let (_, script_headers, _) = get(&server, "/app.js").await;
    assert_ne!(header(&script_headers, "etag"), etag);
}

#[tokio::test]
async fn paths_outside_the_web_ui_are_not_found() {
    let server = TestServer::start();

    for path in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/..%2fCargo.toml",
        "/..%2f..%2fetc/passwd",
        "/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/web/../Cargo.toml",
        "/assets/..%2f..%2fCargo.toml",
        "/Cargo.toml",
        "/src/main.rs",
        "/.git/HEAD",
        "//etc/passwd",
    ] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server.addr()
        );
        let response = raw_http(&server, request.as_bytes()).await;
        assert_eq!(response.status, 404, "{path}: {}", response.text);
        for secret in ["[package]", "root:", "fn main", "ref: refs/"] {
            assert!(
                !response.text.contains(secret),
                "{path} leaked a file: {}",
                response.text
            );
        }
    }
}

#[tokio::test]
async fn the_setup_page_closes_once_an_account_exists() {
    let server = TestServer::start();
    let (status, headers, _) = get(&server, "/setup").await;
    assert_eq!(status, StatusCode::OK);
    assert!(header(&headers, "content-type").starts_with("text/html"));
    assert_page_headers(&headers);
    let cached = headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);

    setup_admin(&server).await;

    let (status, headers, body) = get(&server, "/setup").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(header(&headers, "content-type").starts_with("text/html"));
    assert!(body.contains("href"), "no link to sign in: {body}");
    assert_page_headers(&headers);
    // A browser revalidating its cached setup page must learn that setup is over.
    if let Some(etag) = cached {
        let resp = http()
            .get(server.url("/setup"))
            .header("If-None-Match", &etag)
            .send()
            .await
            .expect("revalidate /setup");
        assert_eq!(resp.status(), StatusCode::CONFLICT);
    }
}
