//! Files, pictures and profile pictures: what a member sends reaches the others byte for byte,
//! nobody else can fetch it, nothing uploaded can run script in confab's origin, pictures get
//! thumbnails while bombs are refused with memory bounded, and a deleted message takes its
//! file with it, from the database at once and from the disk at the next sweep.

mod common;

use std::time::{Duration, Instant};

use common::files::{blob_files, bomb_png, file_path, memory_kib, noise, png, reset_peak_memory};
use common::ws::{Socket, dm_id};
use common::{
    Client, Method, StatusCode, TestServer, Value, assert_error, create_user, json, raw_http, send,
    setup_admin,
};

/// Uploads need free disk space; a test machine may have less than the default 1 GB.
const ROOMY: [&str; 2] = ["--upload-min-free", "1MB"];

/// A server (with `args` and `env`) and alice, bob and carol signed in.
async fn office_with(
    args: &[&str],
    env: &[(&str, &str)],
) -> (TestServer, Client, Client, Client, Client) {
    let mut all = ROOMY.to_vec();
    all.extend_from_slice(args);
    let server = TestServer::start_with_env(&all, env, None);
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let bob = create_user(&admin, "bob").await;
    let carol = create_user(&admin, "carol").await;
    (server, admin, alice, bob, carol)
}

fn send_files(conversation: &str, body: &str, files: &[&Value], client_id: &str) -> Value {
    let ids: Vec<&Value> = files.iter().map(|f| &f["id"]).collect();
    json!({"type": "send", "conversation": conversation, "body": body, "files": ids, "client_id": client_id})
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_sent_file_reaches_the_other_member_byte_for_byte_and_nobody_else() {
    let (_server, _admin, alice, bob, carol) = office_with(&[], &[]).await;
    let conversation = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&_server, &alice).await;
    let mut bob_tab = Socket::online(&_server, &bob).await;

    let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = alice
        .uploaded(&conversation, "Quarterly report.pdf", content.clone())
        .await;
    assert_eq!(file["name"], "Quarterly report.pdf");
    assert_eq!(file["size"], 300_000);
    assert_eq!(file["type"], "application/pdf");
    assert!(
        file["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("f_") && id.len() == 24)
    );
    assert!(file.get("width").is_none(), "not a picture: {file}");
    let path = file_path(&conversation, &file);

    // Pending: only the uploader can fetch it, and nobody else can send it.
    assert_eq!(alice.get_bytes(&path).await.0, StatusCode::OK);
    let encoded = path.replace(':', "%3A");
    assert_eq!(
        alice.get_bytes(&encoded).await.0,
        StatusCode::OK,
        "the id with its colons percent-encoded names the same file"
    );
    assert_eq!(bob.get_bytes(&path).await.0, StatusCode::NOT_FOUND);
    bob_tab
        .send_json(&send_files(&conversation, "", &[&file], "bob-steals"))
        .await;
    bob_tab.error_with("no_such_file").await;

    alice_tab
        .send_json(&send_files(&conversation, "", &[&file], "with-file"))
        .await;
    let acked = alice_tab.ack_for("with-file").await;
    assert_eq!(acked["message"]["files"][0]["id"], file["id"], "{acked}");
    let received = bob_tab.next_of_type("message").await;
    let listed = &received["message"]["files"][0];
    assert_eq!(
        (&listed["id"], &listed["name"], &listed["size"]),
        (&file["id"], &file["name"], &file["size"])
    );
    assert!(listed.get("thumb").is_none(), "{listed}");

    let (status, headers, bytes) = bob.get_bytes(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == content, "bob gets exactly what alice uploaded");
    assert_eq!(header(&headers, "content-type"), "application/octet-stream");
    assert_eq!(
        header(&headers, "content-disposition"),
        "attachment; filename*=UTF-8''Quarterly%20report.pdf"
    );
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    assert!(header(&headers, "cache-control").contains("immutable"));

    // The file is in history too.
    let (_, history) = bob
        .get(&format!("/api/conversations/{conversation}/messages"))
        .await;
    assert_eq!(history["messages"][0]["files"][0]["id"], file["id"]);

    // Carol is not in the conversation: the same 404 as for a file that does not exist.
    let missing = format!("/api/conversations/{conversation}/files/f_AAAAAAAAAAAAAAAAAAAAAA");
    for path in [path.clone(), format!("{path}/thumb"), missing] {
        let (status, _, body) = carol.get_bytes(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        let body: Value = serde_json::from_slice(&body).expect("JSON error");
        assert_eq!(body["error"]["code"], "not_found");
    }
    // Nor can she upload there.
    assert_error(
        &carol.upload(&conversation, "x.txt", b"x".to_vec()).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // A used upload cannot be sent again.
    alice_tab
        .send_json(&send_files(&conversation, "again", &[&file], "again"))
        .await;
    alice_tab.error_with("no_such_file").await;
}

#[tokio::test]
async fn uploaded_html_and_svg_are_inert_attachments() {
    let (_server, _admin, alice, bob, _carol) = office_with(&[], &[]).await;
    let conversation = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&_server, &alice).await;
    let html = b"<html><script>alert(document.cookie)</script></html>".to_vec();
    let svg =
        br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec();
    for (name, content) in [("page.html", html), ("logo.svg", svg)] {
        let file = alice.uploaded(&conversation, name, content.clone()).await;
        alice_tab
            .send_json(&send_files(&conversation, "look", &[&file], name))
            .await;
        alice_tab.ack_for(name).await;
        let (status, headers, bytes) = bob.get_bytes(&file_path(&conversation, &file)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(bytes, content);
        assert_eq!(
            header(&headers, "content-type"),
            "application/octet-stream",
            "{name}"
        );
        assert!(
            header(&headers, "content-disposition").starts_with("attachment;"),
            "{name}"
        );
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        assert_eq!(
            header(&headers, "content-security-policy"),
            "sandbox; default-src 'none'"
        );
        // Not a picture: no thumbnail.
        let thumb = bob
            .get_bytes(&format!("{}/thumb", file_path(&conversation, &file)))
            .await;
        assert_eq!(thumb.0, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn a_picture_gets_a_smaller_thumbnail_and_is_served_as_what_it_is() {
    let (_server, _admin, alice, bob, _carol) = office_with(&[], &[]).await;
    let conversation = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&_server, &alice).await;
    let picture = png(2000, 1000);
    // The name says JPEG; the content decides.
    let file = alice
        .uploaded(&conversation, "photo.jpg", picture.clone())
        .await;
    assert_eq!(
        (&file["type"], &file["width"], &file["height"]),
        (&json!("image/png"), &json!(2000), &json!(1000))
    );
    alice_tab
        .send_json(&send_files(&conversation, "", &[&file], "pic"))
        .await;
    let acked = alice_tab.ack_for("pic").await;
    assert_eq!(acked["message"]["files"][0]["thumb"], true, "{acked}");

    let path = file_path(&conversation, &file);
    let (status, headers, bytes) = bob.get_bytes(&format!("{path}/thumb")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), "image/jpeg");
    let thumb = image::load_from_memory(&bytes).expect("the thumbnail is a valid image");
    assert_eq!((thumb.width(), thumb.height()), (480, 240));
    assert!(bytes.len() < picture.len());

    let (status, headers, bytes) = bob.get_bytes(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, picture);
    assert_eq!(header(&headers, "content-type"), "image/png");
    assert!(header(&headers, "content-disposition").starts_with("inline;"));
    // Cached for good, revalidated by ETag.
    let etag = header(&headers, "etag").to_owned();
    let again = bob
        .request(Method::GET, &path)
        .header("if-none-match", etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_with_memory_bounded() {
    let (server, _admin, alice, bob, _carol) = office_with(&[], &[]).await;
    let conversation = dm_id(&alice, &bob);
    // 30,000 × 30,000 grey: 900 MB of pixels. 12,000 × 12,000 RGB: within the side limit,
    // but 432 MB to decode.
    for (width, height, channels) in [(30_000, 30_000, 1), (12_000, 12_000, 3)] {
        let bomb = bomb_png(width, height, channels);
        assert!(bomb.len() < 6_000_000, "{} bytes", bomb.len());
        let before = memory_kib(server.pid(), "VmRSS");
        reset_peak_memory(server.pid());
        let refused = alice.upload(&conversation, "bomb.png", bomb).await;
        assert_error(
            &refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "image_too_large",
        );
        let peak = memory_kib(server.pid(), "VmHWM");
        assert!(
            peak.saturating_sub(before) < 100 * 1024,
            "{width}×{height}: RSS went from {before} KiB to a peak of {peak} KiB"
        );
    }
    assert!(
        blob_files(&server.data_dir()).is_empty(),
        "nothing is kept of a refused picture"
    );
}

#[tokio::test]
async fn oversized_and_malformed_uploads_are_refused_and_keep_nothing() {
    let (server, _admin, alice, bob, _carol) = office_with(&["--max-file-size", "1000"], &[]).await;
    let conversation = dm_id(&alice, &bob);
    assert_error(
        &alice.upload(&conversation, "big.bin", vec![1; 1001]).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "file_too_large",
    );
    // A name must show something and keep its reading order ("invoice\u{202E}fdp.exe" would show
    // as "invoiceexe.pdf").
    for name in [
        "a/b.txt",
        "\u{200B}",
        " \u{2060}\u{FEFF} ",
        "invoice\u{202E}fdp.exe",
        "notes\u{2066}.txt",
    ] {
        assert_error(
            &alice.upload(&conversation, name, vec![1; 10]).await,
            StatusCode::BAD_REQUEST,
            "invalid_file_name",
        );
    }
    let path = format!("/api/conversations/{conversation}/uploads");
    assert_error(
        &send(alice.request(Method::POST, &path).body(vec![1u8; 10])).await,
        StatusCode::BAD_REQUEST,
        "invalid_file_name",
    );

    // A stream longer than its Content-Length says: hyper drops a Content-Length sent beside
    // chunked encoding, so it is refused as having none (the server also counts the bytes it
    // streams, should a length ever be wrong).
    let body = "7d0\r\n".to_owned() + &"x".repeat(2000) + "\r\n0\r\n\r\n";
    let lying = format!(
        "POST {path}?name=lie.txt HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Length: 10\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{body}",
        server.addr(),
        alice.token
    );
    let answer = raw_http(&server, lying.as_bytes()).await;
    assert!(
        [411, 413].contains(&answer.status),
        "a lying upload is refused: {}",
        answer.text
    );
    // No Content-Length at all.
    let chunked = format!(
        "POST {path}?name=chunked.txt HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        server.addr(),
        alice.token
    );
    let answer = raw_http(&server, chunked.as_bytes()).await;
    assert_eq!(answer.status, 411, "{}", answer.text);
    assert!(answer.text.contains("length_required"), "{}", answer.text);

    assert!(blob_files(&server.data_dir()).is_empty());
    // Within the limit it works.
    alice
        .uploaded(&conversation, "small.txt", vec![1; 1000])
        .await;
}

#[tokio::test]
async fn a_deleted_message_takes_its_file_and_the_sweep_its_blob_once_nothing_names_it() {
    let (server, _admin, alice, bob, _carol) =
        office_with(&[], &[("CONFAB_SWEEP_SECONDS", "1")]).await;
    let conversation = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    let content = b"the same content twice".to_vec();
    let first = alice
        .uploaded(&conversation, "a.txt", content.clone())
        .await;
    let second = alice
        .uploaded(&conversation, "b.txt", content.clone())
        .await;
    assert_ne!(first["id"], second["id"]);
    assert_eq!(
        blob_files(&server.data_dir()).len(),
        1,
        "identical content is stored once"
    );

    let mut seqs = Vec::new();
    for (file, client_id) in [(&first, "one"), (&second, "two")] {
        alice_tab
            .send_json(&send_files(&conversation, "", &[file], client_id))
            .await;
        let acked = alice_tab.ack_for(client_id).await;
        seqs.push(acked["message"]["seq"].as_u64().expect("seq"));
    }

    let delete = |seq: u64, client_id: &str| json!({"type": "delete", "conversation": conversation, "seq": seq, "client_id": client_id});
    alice_tab.send_json(&delete(seqs[0], "del-one")).await;
    let deleted = alice_tab.ack_for("del-one").await;
    assert!(deleted["message"].get("files").is_none(), "{deleted}");
    assert_eq!(
        bob.get_bytes(&file_path(&conversation, &first)).await.0,
        StatusCode::NOT_FOUND
    );
    // The other message still names the blob: the sweep keeps it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(blob_files(&server.data_dir()).len(), 1);
    assert_eq!(
        bob.get_bytes(&file_path(&conversation, &second)).await.2,
        content
    );

    alice_tab.send_json(&delete(seqs[1], "del-two")).await;
    alice_tab.ack_for("del-two").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !blob_files(&server.data_dir()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the sweep removes the unused blob"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_profile_picture_is_set_seen_live_by_others_and_cleared() {
    let (server, _admin, alice, bob, _carol) = office_with(&[], &[]).await;
    let mut bob_tab = Socket::online(&server, &bob).await;

    assert_error(
        &alice.put_avatar(b"not a picture at all".to_vec()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "not_an_image",
    );
    assert_error(
        &alice.put_avatar(bomb_png(30_000, 30_000, 1)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "image_too_large",
    );

    let (status, body) = alice.put_avatar(png(800, 600)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let version = body["user"]["avatar"]
        .as_str()
        .expect("avatar version")
        .to_owned();

    let frame = bob_tab
        .next_matching("alice's user frame", |f| {
            f["type"] == "user" && f["user"]["id"] == alice.id()
        })
        .await;
    assert_eq!(frame["user"]["avatar"], version.as_str());
    let (_, users) = bob.get("/api/users").await;
    let listed = users
        .as_array()
        .expect("directory")
        .iter()
        .find(|u| u["id"] == alice.id())
        .cloned()
        .expect("alice listed");
    assert_eq!(listed["avatar"], version.as_str());
    assert_eq!(alice.me().await["avatar"], version.as_str());

    let path = format!("/api/users/{}/avatar?v={version}", alice.id());
    let (status, headers, bytes) = bob.get_bytes(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), "image/png");
    assert!(header(&headers, "cache-control").contains("immutable"));
    let picture = image::load_from_memory(&bytes).expect("a valid picture");
    assert_eq!((picture.width(), picture.height()), (256, 256));

    let (status, body) = send(alice.request(Method::DELETE, "/api/me/avatar")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["user"].get("avatar").is_none(), "{body}");
    let frame = bob_tab
        .next_matching("alice's picture cleared", |f| {
            f["type"] == "user" && f["user"]["id"] == alice.id()
        })
        .await;
    assert!(frame["user"].get("avatar").is_none(), "{frame}");
    assert_eq!(bob.get_bytes(&path).await.0, StatusCode::NOT_FOUND);
}

/// The issue's budget: a 25 MB upload raises the server's memory by at most 8 MB.
#[tokio::test]
async fn a_25_mb_upload_is_streamed_to_disk() {
    let (server, _admin, alice, bob, _carol) = office_with(&[], &[]).await;
    let conversation = dm_id(&alice, &bob);
    // Warm up the upload path, so one-off allocations are not counted.
    alice
        .uploaded(&conversation, "warm.bin", vec![7; 100_000])
        .await;
    let content = noise(25_000_000);
    let before = memory_kib(server.pid(), "VmRSS");
    reset_peak_memory(server.pid());
    let file = alice.uploaded(&conversation, "big.bin", content).await;
    let peak = memory_kib(server.pid(), "VmHWM");
    assert_eq!(file["size"], 25_000_000);
    let grew = peak.saturating_sub(before);
    println!("25 MB upload: RSS {before} KiB before, peak {peak} KiB (+{grew} KiB)");
    assert!(
        grew <= 8 * 1024,
        "RSS grew by {grew} KiB during a 25 MB upload"
    );
}

#[tokio::test]
async fn confab_check_reports_a_file_missing_from_disk() {
    let (mut server, _admin, alice, bob, _carol) = office_with(&[], &[]).await;
    let conversation = dm_id(&alice, &bob);
    let mut alice_tab = Socket::online(&server, &alice).await;
    let file = alice
        .uploaded(&conversation, "notes.txt", b"keep me".to_vec())
        .await;
    alice_tab
        .send_json(&send_files(&conversation, "", &[&file], "notes"))
        .await;
    alice_tab.ack_for("notes").await;
    alice_tab.close().await;
    server.signal_term();
    assert!(server.wait_exit(Duration::from_secs(5)).is_some());

    let dir = server.data_dir();
    let dir_arg = dir.to_str().expect("utf-8 path");
    let clean = common::run_cli(&["check", "--data-dir", dir_arg]);
    let out = String::from_utf8_lossy(&clean.stdout);
    assert!(clean.status.success(), "{out}");
    assert!(out.contains("1 files (0 unreferenced"), "{out}");

    let blob = blob_files(&dir).pop().expect("the blob");
    std::fs::remove_file(dir.join("blobs").join(&blob[..2]).join(&blob)).expect("remove blob");
    let found = common::run_cli(&["check", "--data-dir", dir_arg]);
    let out = String::from_utf8_lossy(&found.stdout);
    assert!(!found.status.success(), "{out}");
    assert!(out.contains(&blob) && out.contains("missing"), "{out}");
}
