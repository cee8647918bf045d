//! The WebSocket at the frame level: protocol violations close with the right code, binary
//! frames are refused and rate limited, duplicate keys are refused, floods cost the server
//! nothing it cannot afford, invisible text is empty, and a retry gets its original ack.

mod common;

use std::time::Duration;

use common::ws::{Socket, dm_id, full_history};
use common::{Client, StatusCode, TestServer, create_user, json, setup_admin};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const QUIET: Duration = Duration::from_millis(400);
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Frame opcodes and header bits (RFC 6455 §5.2).
const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;

/// A WebSocket spoken byte by byte over TCP, so a test can send frames no well-behaved
/// client library would build.
struct RawSocket {
    stream: TcpStream,
    /// Bytes read but not yet consumed as a frame.
    buf: Vec<u8>,
}

impl RawSocket {
    /// Upgrades `/ws` as `client` and reads the `hello`.
    async fn online(server: &TestServer, client: &Client) -> RawSocket {
        let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Authorization: Bearer {}\r\n\r\n",
            server.addr(),
            client.token
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send the upgrade");
        let mut socket = RawSocket {
            stream,
            buf: Vec::new(),
        };
        let end = loop {
            if let Some(end) = socket.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            assert!(socket.fill().await, "the server closed during the upgrade");
        };
        let head = String::from_utf8_lossy(&socket.buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        socket.buf.drain(..end);
        let hello = socket.next_json().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        socket
    }

    /// Reads more bytes into `buf`; false at end of stream (or a reset).
    async fn fill(&mut self) -> bool {
        let mut chunk = [0_u8; 16 * 1024];
        let read = tokio::time::timeout(READ_TIMEOUT, self.stream.read(&mut chunk))
            .await
            .expect("the server answered in time");
        match read {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Sends one frame: `first` is the first header byte (FIN, RSV bits, opcode).
    async fn send_frame(&mut self, first: u8, payload: &[u8], masked: bool) {
        let mut frame = vec![first];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => frame.push(mask_bit | n as u8),
            n if n <= usize::from(u16::MAX) => {
                frame.push(mask_bit | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(mask_bit | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            let key = [0x37, 0xfa, 0x21, 0x3d];
            frame.extend_from_slice(&key);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            frame.extend_from_slice(payload);
        }
        // The server may already have closed; what it answered is still readable.
        let _ = self.stream.write_all(&frame).await;
    }

    async fn send_text(&mut self, text: &str) {
        self.send_frame(FIN | TEXT, text.as_bytes(), true).await;
    }

    /// The next frame from the server as (opcode, payload), or `None` once the stream ends.
    async fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some((opcode, payload, used)) = parse_server_frame(&self.buf) {
                self.buf.drain(..used);
                return Some((opcode, payload));
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The next text frame as JSON, skipping pings and pongs.
    async fn next_json(&mut self) -> Value {
        loop {
            match self.next_frame().await {
                Some((TEXT, payload)) => {
                    return serde_json::from_slice(&payload).expect("a JSON text frame");
                }
                Some((opcode, payload)) if opcode == CLOSE => {
                    panic!(
                        "closed while a frame was expected: {:?}",
                        close_of(&payload)
                    )
                }
                Some(_) => continue,
                None => panic!("the connection ended while a frame was expected"),
            }
        }
    }

    /// Reads until the server's close frame and returns its code and reason; `None` if the
    /// connection ended without one.
    async fn close_frame(&mut self) -> Option<(Option<u16>, String)> {
        loop {
            match self.next_frame().await? {
                (CLOSE, payload) => return Some(close_of(&payload)),
                _ => continue,
            }
        }
    }
}

/// One complete unmasked server frame at the start of `buf`: (opcode, payload, bytes used).
fn parse_server_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (&first, &second) = (buf.first()?, buf.get(1)?);
    assert_eq!(second & 0x80, 0, "server frames are not masked");
    let (len, start) = match second & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(bytes) as usize, 10)
        }
        n => (usize::from(n), 2),
    };
    let payload = buf.get(start..start + len)?.to_vec();
    Some((first & 0x0f, payload, start + len))
}

fn close_of(payload: &[u8]) -> (Option<u16>, String) {
    match payload {
        [high, low, reason @ ..] => (
            Some(u16::from_be_bytes([*high, *low])),
            String::from_utf8_lossy(reason).into_owned(),
        ),
        _ => (None, String::new()),
    }
}

#[tokio::test]
async fn protocol_violations_close_with_1002_and_a_reason() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let typing = json!({"type": "typing", "conversation": dm_id(&alice, &bob)}).to_string();
    let cases: Vec<(&str, u8, Vec<u8>, bool)> = vec![
        (
            "an unmasked text frame",
            FIN | TEXT,
            typing.clone().into_bytes(),
            false,
        ),
        (
            "a reserved data opcode (0x3)",
            FIN | 0x3,
            b"x".to_vec(),
            true,
        ),
        (
            "a reserved control opcode (0xB)",
            FIN | 0xB,
            Vec::new(),
            true,
        ),
        (
            "RSV1 set without an extension",
            FIN | RSV1 | TEXT,
            typing.into_bytes(),
            true,
        ),
        (
            "a ping with a 126-byte payload",
            FIN | PING,
            vec![b'p'; 126],
            true,
        ),
        ("a fragmented ping", PING, Vec::new(), true),
        (
            "a continuation of nothing",
            FIN | CONTINUATION,
            b"x".to_vec(),
            true,
        ),
        (
            "a close frame with a one-byte payload",
            FIN | CLOSE,
            vec![0x03],
            true,
        ),
        // tungstenite answers this one by itself, with 1002 too.
        (
            "a close frame with the reserved code 999",
            FIN | CLOSE,
            vec![0x03, 0xe7],
            true,
        ),
    ];

    let mut wrong = Vec::new();
    for (what, first, payload, masked) in cases {
        let mut raw = RawSocket::online(&server, &alice).await;
        raw.send_frame(first, &payload, masked).await;
        match raw.close_frame().await {
            Some((Some(1002), reason)) if !reason.is_empty() => {}
            other => wrong.push(format!(
                "{what}: expected close 1002 with a reason, got {other:?}"
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    let mut fresh = Socket::online(&server, &alice).await;
    fresh.send_acked(bob.id(), "still here", "after-1002").await;
}

#[tokio::test]
async fn text_that_is_not_utf8_closes_with_1007_and_a_reason() {
    let (server, alice, _bob) = common::alice_and_bob().await;
    /// (first header byte, payload) of each frame sent.
    type Frames = Vec<(u8, Vec<u8>)>;
    let cases: Vec<(&str, Frames)> = vec![
        (
            "a text frame of 0xff 0xfe",
            vec![(FIN | TEXT, vec![0xff, 0xfe])],
        ),
        (
            "JSON with a broken character",
            vec![(
                FIN | TEXT,
                b"{\"type\":\"typing\",\"conversation\":\"\xc3\"}".to_vec(),
            )],
        ),
        (
            "a fragmented text message that ends mid-character",
            vec![
                (TEXT, b"{\"a\":\"".to_vec()),
                (FIN | CONTINUATION, b"\xe2\x82\"}".to_vec()),
            ],
        ),
        (
            "a close frame whose reason is not UTF-8",
            vec![(FIN | CLOSE, vec![0x03, 0xe8, 0xff])],
        ),
    ];

    let mut wrong = Vec::new();
    for (what, frames) in cases {
        let mut raw = RawSocket::online(&server, &alice).await;
        for (first, payload) in frames {
            raw.send_frame(first, &payload, true).await;
        }
        match raw.close_frame().await {
            Some((Some(1007), reason)) if !reason.is_empty() => {}
            other => wrong.push(format!(
                "{what}: expected close 1007 with a reason, got {other:?}"
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn a_binary_frame_is_answered_with_binary_not_supported_and_the_socket_stays_open() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let mut raw = RawSocket::online(&server, &alice).await;

    raw.send_frame(FIN | BINARY, b"\x00\x01binary", true).await;

    let error = raw.next_json().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["code"], "binary_not_supported", "{error}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{error}"
    );
    let send = json!({"type": "send", "to": bob.id(), "body": "text works", "client_id": "t-1"});
    raw.send_text(&send.to_string()).await;
    let ack = loop {
        let frame = raw.next_json().await;
        if frame["type"] == "ack" || frame["type"] == "error" {
            break frame;
        }
    };
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["client_id"], "t-1", "{ack}");
}

#[tokio::test]
async fn binary_frames_count_against_the_rate_limit() {
    const FLOOD: usize = 100;
    let (server, alice, bob) = common::alice_and_bob().await;
    let mut raw = RawSocket::online(&server, &alice).await;

    for _ in 0..FLOOD {
        raw.send_frame(FIN | BINARY, b"spam", true).await;
    }
    let send = json!({"type": "send", "to": bob.id(), "body": "me too", "client_id": "after"});
    raw.send_text(&send.to_string()).await;

    let (mut refused, mut limited) = (0, 0);
    for _ in 0..FLOOD {
        let frame = raw.next_json().await;
        match frame["code"].as_str() {
            Some("binary_not_supported") => refused += 1,
            Some("rate_limited") => limited += 1,
            _ => panic!("a binary frame is refused or rate limited, got {frame}"),
        }
    }
    assert!(
        refused <= 65,
        "the burst allowance is 60, {refused} binary frames answered"
    );
    assert!(
        limited >= FLOOD - 65,
        "only {limited} of {FLOOD} binary frames rate limited"
    );
    let after = raw.next_json().await;
    assert_eq!(
        (&after["code"], &after["client_id"]),
        (&json!("rate_limited"), &json!("after")),
        "binary frames spent the budget text frames share: {after}"
    );

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut fresh = Socket::online(&server, &alice).await;
    fresh.send_acked(bob.id(), "calm again", "calm").await;
    assert_eq!(full_history(&alice, &dm_id(&alice, &bob)).await.len(), 1);
}

#[tokio::test]
async fn duplicate_keys_in_a_frame_are_refused_at_any_depth() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let bob = create_user(&admin, "bob").await;
    let carol = create_user(&admin, "carol").await;
    let mut tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    let mut carol_tab = Socket::online(&server, &carol).await;
    tab.drain(QUIET).await;
    bob_tab.drain(QUIET).await;
    carol_tab.drain(QUIET).await;
    let (b, c) = (bob.id(), carol.id());
    let with_bob = dm_id(&alice, &bob);

    let cases: Vec<(&str, String, Option<&str>)> = vec![
        (
            "two recipients",
            format!(r#"{{"type":"send","to":{b},"to":{c},"body":"which one?","client_id":"d-1"}}"#),
            Some("d-1"),
        ),
        (
            "two bodies",
            format!(r#"{{"type":"send","to":{b},"body":"one","body":"two","client_id":"d-2"}}"#),
            Some("d-2"),
        ),
        (
            "two client ids",
            format!(r#"{{"type":"send","to":{b},"body":"x","client_id":"d-3","client_id":"d-4"}}"#),
            None,
        ),
        (
            "two types",
            format!(r#"{{"type":"read","type":"typing","conversation":"{with_bob}","seq":0}}"#),
            None,
        ),
        (
            "a nested object",
            format!(r#"{{"type":"typing","conversation":"{with_bob}","x":{{"k":1,"k":2}}}}"#),
            None,
        ),
        (
            "an object in an array",
            format!(
                r#"{{"type":"send","to":{b},"body":"hi","client_id":"d-5","x":[{{"a":1}},{{"a":1,"a":2}}]}}"#
            ),
            Some("d-5"),
        ),
    ];

    let mut wrong = Vec::new();
    for (what, frame, client_id) in cases {
        tab.send_text(frame).await;
        let error = tab.next_frame().await;
        let id_ok = match client_id {
            Some(id) => error["client_id"] == id,
            None => true,
        };
        if error["type"] != "error" || error["code"] != "invalid_json" || !id_ok {
            wrong.push(format!(
                "{what}: expected invalid_json (client_id {client_id:?}), got {error}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    bob_tab.expect_silence(QUIET).await;
    carol_tab.expect_silence(QUIET).await;
    assert!(full_history(&alice, &with_bob).await.is_empty());
    assert!(
        full_history(&alice, &dm_id(&alice, &carol))
            .await
            .is_empty()
    );

    // The same key in sibling objects is not a duplicate: this frame gets past that check and
    // is refused only for `x`, a field no frame has.
    let siblings = format!(
        r#"{{"type":"send","to":{b},"body":"fine","client_id":"d-6","x":[{{"a":1}},{{"a":2}}]}}"#
    );
    tab.send_text(siblings).await;
    let error = tab.error_with("invalid_frame").await;
    assert!(
        error["message"].as_str().is_some_and(|m| m.contains("`x`")),
        "{error}"
    );
}

#[tokio::test]
async fn a_flood_of_oversized_invalid_frames_is_rate_limited_and_the_server_stays_responsive() {
    const FLOOD: usize = 1000;
    let (server, alice, bob) = common::alice_and_bob().await;
    let conv = dm_id(&alice, &bob);
    let mut tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    tab.drain(QUIET).await;
    bob_tab.drain(QUIET).await;

    // Each frame is 16 KiB and invalid only because its body is given twice.
    let padding = "x".repeat(16 * 1024);
    let started = std::time::Instant::now();
    for i in 0..FLOOD {
        let frame = format!(
            r#"{{"type":"send","to":{},"body":"{padding}","client_id":"fl-{i}","body":"dup"}}"#,
            bob.id()
        );
        tab.send_text(frame).await;
    }

    let (mut invalid, mut limited) = (0, 0);
    for i in 0..FLOOD {
        let frame = tab.next_frame().await;
        assert_eq!(frame["client_id"], format!("fl-{i}"), "{frame}");
        match frame["code"].as_str() {
            Some("invalid_json") => invalid += 1,
            Some("rate_limited") => limited += 1,
            _ => panic!("an invalid frame is refused or rate limited, got {frame}"),
        }
    }
    // The default limit: bursts of 60 frames, then 20 a second for as long as the flood took
    // to arrive (longer on a busy machine).
    let allowed = 60 + (20.0 * started.elapsed().as_secs_f64()).ceil() as usize + 2;
    assert!(
        invalid <= allowed,
        "{invalid} frames were parsed despite the rate limit (at most {allowed} in {:?})",
        started.elapsed()
    );
    assert!(
        limited >= FLOOD - allowed,
        "only {limited} of {FLOOD} rate limited"
    );
    bob_tab.expect_silence(QUIET).await;

    // Everyone else is served meanwhile, and the flooder recovers once it calms down.
    let (status, _) = bob.get("/api/me").await;
    assert_eq!(status, StatusCode::OK);
    bob_tab.send_acked(alice.id(), "are you ok?", "bob-1").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tab.send_acked(bob.id(), "sorry, a stuck key", "calm").await;
    assert_eq!(full_history(&alice, &conv).await.len(), 2);
}

#[tokio::test]
async fn a_body_of_invisible_characters_is_empty() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let mut tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    tab.drain(QUIET).await;
    bob_tab.drain(QUIET).await;

    let invisible = [
        "\u{200B}",
        "\u{200B}\u{200C}\u{200D}",
        "\u{FEFF}",
        " \u{2060} \u{00AD}\n\u{200E}",
        "\u{3164}\u{FE0F}",
        "\u{202E}\u{2066}\u{2069}",
    ];
    let mut wrong = Vec::new();
    for (n, body) in invisible.iter().enumerate() {
        let client_id = format!("inv-{n}");
        tab.send_msg(bob.id(), body, &client_id).await;
        let answer = tab
            .next_matching("an answer", |f| f["client_id"] == client_id.as_str())
            .await;
        if answer["type"] != "error" || answer["code"] != "empty_body" {
            wrong.push(format!("{body:?}: expected empty_body, got {answer}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    bob_tab.expect_silence(QUIET).await;

    // Invisible characters inside visible text are fine: a zero-width joiner makes one emoji.
    let joined = tab.send_acked(bob.id(), "👩\u{200D}💻", "visible").await;
    assert_eq!(joined["body"], "👩\u{200D}💻");
}

#[tokio::test]
async fn a_retry_gets_its_original_ack_even_after_the_recipient_was_disabled() {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let bob = create_user(&admin, "bob").await;
    let conv = dm_id(&alice, &bob);
    let mut tab = Socket::online(&server, &alice).await;
    let original = tab.send_acked(bob.id(), "see you monday", "r-1").await;

    let (status, body) = admin
        .patch(
            &format!("/api/admin/users/{}", bob.id()),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "disable bob: {body}");

    // The ack was lost; the client retries, by user and by conversation.
    let again = tab.send_acked(bob.id(), "see you monday", "r-1").await;
    assert_eq!(again, original);
    let by_conv = tab.send_acked(conv.as_str(), "see you monday", "r-1").await;
    assert_eq!(by_conv, original);
    // The same id with another body is still a reuse, and new sends are refused.
    tab.send_msg(bob.id(), "see you tuesday", "r-1").await;
    tab.error_with("client_id_reused").await;
    tab.send_msg(bob.id(), "hello?", "r-2").await;
    tab.error_with("no_such_user").await;
    assert_eq!(full_history(&alice, &conv).await, [original]);
}

/// As in HTTP bodies, an optional field is left out, never `null`: `null` is a wrong type
/// (`invalid_json`), not "absent", in every frame. And a field the frame does not have is
/// refused (`invalid_frame`, naming it) rather than ignored: `{"type":"delete",…,"body":"x"}`
/// must not look like it did something with "x". Nothing refused reaches anyone.
#[tokio::test]
async fn null_and_unknown_fields_in_a_frame_are_refused() {
    let (server, alice, bob) = common::alice_and_bob().await;
    let conv = dm_id(&alice, &bob);
    let b = bob.id();
    let mut tab = Socket::online(&server, &alice).await;
    let mut bob_tab = Socket::online(&server, &bob).await;
    let first = tab.send_acked(b, "first", "n-0").await;
    tab.drain(QUIET).await;
    bob_tab.drain(QUIET).await;
    let seq = first["seq"].clone();

    let nulls = [
        json!({"type": "send", "to": null, "conversation": conv, "body": "x", "client_id": "null-to"}),
        json!({"type": "send", "to": b, "conversation": null, "body": "x", "client_id": "null-conv"}),
        json!({"type": "send", "to": b, "body": "x", "reply_to": null, "client_id": "null-reply"}),
        json!({"type": "send", "to": b, "body": "x", "files": null, "client_id": "null-files"}),
        json!({"type": "send", "to": b, "body": "x", "client_id": null}),
        json!({"type": "edit", "conversation": conv, "seq": seq, "body": null, "client_id": "null-edit"}),
        json!({"type": "react", "conversation": conv, "seq": seq, "emoji": null, "client_id": "null-emoji"}),
        json!({"type": "delete", "conversation": conv, "seq": null, "client_id": "null-seq"}),
        json!({"type": "read", "conversation": conv, "seq": null}),
        json!({"type": "typing", "conversation": null}),
    ];
    let unknown = [
        (
            json!({"type": "send", "to": b, "body": "x", "client_id": "u-send", "urgent": true}),
            "urgent",
        ),
        (
            json!({"type": "edit", "conversation": conv, "seq": seq, "body": "y", "client_id": "u-edit", "files": []}),
            "files",
        ),
        (
            json!({"type": "delete", "conversation": conv, "seq": seq, "client_id": "u-delete", "body": "x"}),
            "body",
        ),
        (
            json!({"type": "react", "conversation": conv, "seq": seq, "emoji": "👍", "client_id": "u-react", "to": b}),
            "to",
        ),
        (
            json!({"type": "read", "conversation": conv, "seq": 1, "user": b}),
            "user",
        ),
        (
            json!({"type": "typing", "conversation": conv, "body": "x"}),
            "body",
        ),
    ];

    let mut wrong = Vec::new();
    let cases = nulls
        .into_iter()
        .map(|frame| (frame, "invalid_json", None))
        .chain(
            unknown
                .into_iter()
                .map(|(frame, field)| (frame, "invalid_frame", Some(field))),
        );
    for (frame, code, field) in cases {
        tab.send_json(&frame).await;
        let Some(error) = tab.next_frame_within(READ_TIMEOUT).await else {
            wrong.push(format!("{frame}: expected {code}, got no answer"));
            continue;
        };
        let names_field = field.is_none_or(|f| {
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("`{f}`")))
        });
        let names_id = match frame["client_id"].as_str() {
            Some(id) => error["client_id"] == id,
            None => error.get("client_id").is_none(),
        };
        if error["type"] != "error" || error["code"] != code || !names_field || !names_id {
            wrong.push(format!(
                "{frame}: expected {code} naming {field:?}, got {error}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    bob_tab.expect_silence(QUIET).await;
    assert_eq!(full_history(&alice, &conv).await, [first]);

    // Every field a frame has, given, is fine.
    let reply = json!({"type": "send", "conversation": conv, "body": "second", "reply_to": seq,
                       "files": [], "client_id": "all-fields"});
    tab.send_json(&reply).await;
    let acked = tab.ack_for("all-fields").await;
    assert_eq!(acked["message"]["reply_to"]["seq"], seq, "{acked}");
}
