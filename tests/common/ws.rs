//! WebSocket test helpers: a `Socket` is one browser tab, read frame by frame, none skipped unseen.

// Each test binary uses only some of these helpers.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{Client, TestServer};

/// How long a frame the protocol promises may take to arrive before the test fails.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// Server limits from docs/PROTOCOL.md that tests must stay under (or deliberately cross).
pub const FRAME_BURST: usize = 60;
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a connection ended, as the client saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Closed {
    /// The server sent a close frame with this code (`None`: a close frame without a code).
    Code(Option<u16>),
    /// The connection ended without a close frame (reset or EOF); the text says how.
    Dropped(String),
}

impl Closed {
    pub fn code(&self) -> Option<u16> {
        match self {
            Closed::Code(code) => *code,
            Closed::Dropped(_) => None,
        }
    }
}

/// An upgrade the server refused: the HTTP status and the JSON error body, if any.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: Value,
}

impl Refused {
    /// The `error.code` of the body, or "" when there is none.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// One open WebSocket connection.
pub struct Socket {
    ws: WsStream,
    /// Frames that `next_of_type` and friends read past, oldest first, for later assertions.
    pub skipped: Vec<Value>,
    /// The `hello` frame once `hello()` has read it, `Null` before.
    pub hello: Value,
    /// Set once the connection has ended, so later reads report how instead of hanging.
    closed: Option<Closed>,
}

/// `ws://127.0.0.1:PORT/ws` for the server, with an optional query string (`"?token=..."`).
pub fn ws_url(server: &TestServer, query: &str) -> String {
    server.ws_url(&format!("/ws{query}"))
}

/// The canonical DM id between two users: `dm:<lower id>:<higher id>`.
pub fn dm_id(a: &Client, b: &Client) -> String {
    let (a, b) = (a.id(), b.id());
    format!("dm:{}:{}", a.min(b), a.max(b))
}

/// The same signed-in user (same token) talking to `server`, e.g. after a restart on a new port.
pub fn same_session_on(server: &TestServer, client: &Client) -> Client {
    Client::new(server, &client.token).with_user(client.user.clone())
}

/// Builds an upgrade request for `url` with the given extra headers.
fn request(url: &str, headers: &[(&str, &str)]) -> tungstenite::handshake::client::Request {
    let mut request = url.into_client_request().expect("a valid WebSocket URL");
    for (name, value) in headers {
        let name: tungstenite::http::HeaderName = name.parse().expect("a valid header name");
        request.headers_mut().insert(
            name,
            HeaderValue::from_str(value).expect("a valid header value"),
        );
    }
    request
}

fn bearer(client: &Client) -> String {
    format!("Bearer {}", client.token)
}

/// The upgrade outcome, turning an HTTP refusal into `Refused` and panicking on any other failure.
fn upgrade_result(
    result: Result<(WsStream, tungstenite::handshake::client::Response), tungstenite::Error>,
) -> Result<Socket, Refused> {
    match result {
        Ok((ws, _response)) => Ok(Socket::new(ws)),
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .and_then(|bytes| serde_json::from_slice(bytes).ok())
                .unwrap_or(Value::Null);
            Err(Refused { status, body })
        }
        Err(other) => panic!("WebSocket upgrade failed without an HTTP answer: {other}"),
    }
}

/// Tries an upgrade of `url` with exactly these headers; `Err` holds the refusal's status and body.
pub async fn try_connect(url: &str, headers: &[(&str, &str)]) -> Result<Socket, Refused> {
    let result = tokio::time::timeout(
        FRAME_TIMEOUT,
        tokio_tungstenite::connect_async(request(url, headers)),
    )
    .await
    .expect("the WebSocket upgrade answered in time");
    upgrade_result(result)
}

/// Expects the upgrade of `/ws` with these headers to be refused, and returns the refusal.
pub async fn refused_upgrade(server: &TestServer, headers: &[(&str, &str)]) -> Refused {
    match try_connect(&ws_url(server, ""), headers).await {
        Ok(_) => panic!("the server accepted a WebSocket upgrade with headers {headers:?}"),
        Err(refused) => refused,
    }
}

impl Socket {
    fn new(ws: WsStream) -> Socket {
        Socket {
            ws,
            skipped: Vec::new(),
            hello: Value::Null,
            closed: None,
        }
    }

    /// Opens `/ws` as `client` (bearer token), reading nothing yet.
    pub async fn open(server: &TestServer, client: &Client) -> Socket {
        let auth = bearer(client);
        match try_connect(&ws_url(server, ""), &[("authorization", &auth)]).await {
            Ok(socket) => socket,
            Err(refused) => panic!(
                "the server refused {}'s WebSocket: {} {}",
                client.user["username"], refused.status, refused.body
            ),
        }
    }

    /// Opens `/ws` as `client` and reads its `hello` (kept in `socket.hello`): the tab is online.
    pub async fn online(server: &TestServer, client: &Client) -> Socket {
        let mut socket = Socket::open(server, client).await;
        socket.hello().await;
        socket
    }

    /// Opens `/ws` as `client` over a TCP socket with a tiny receive buffer, for a client that
    /// never reads: the server's writes back up after a few kilobytes instead of megabytes.
    /// Also returns the client's end of the TCP connection (see `server_end_state`).
    pub async fn open_with_tiny_window(
        server: &TestServer,
        client: &Client,
    ) -> (Socket, SocketAddr) {
        let tcp = TcpSocket::new_v4().expect("a TCP socket");
        tcp.set_recv_buffer_size(4096)
            .expect("a small receive buffer");
        let stream = tcp
            .connect(server.addr())
            .await
            .expect("TCP connect to the server");
        let local = stream.local_addr().expect("the client's address");
        let auth = bearer(client);
        let result = tokio_tungstenite::client_async(
            request(&ws_url(server, ""), &[("authorization", &auth)]),
            MaybeTlsStream::Plain(stream),
        )
        .await;
        match upgrade_result(result) {
            Ok(socket) => (socket, local),
            Err(refused) => panic!("the server refused the WebSocket: {refused:?}"),
        }
    }

    /// Reads the first frame and checks it is the `hello`.
    pub async fn hello(&mut self) -> Value {
        let frame = self.next_frame().await;
        assert_eq!(
            frame["type"], "hello",
            "the first frame of a connection must be hello, got {frame}"
        );
        self.hello = frame.clone();
        frame
    }

    pub async fn send_json(&mut self, frame: &Value) {
        self.send_text(frame.to_string()).await;
    }

    /// Sends a frame, reporting failure instead of panicking (for sends racing a crash).
    pub async fn try_send_json(&mut self, frame: &Value) -> Result<(), String> {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .map_err(|e| e.to_string())
    }

    /// Sends a text frame exactly as given (for malformed JSON and oversized frames).
    pub async fn send_text(&mut self, text: String) {
        self.ws
            .send(Message::text(text))
            .await
            .expect("the WebSocket accepts a frame");
    }

    /// Sends a message: a number `to` names a user (opens the DM), a string is a conversation id.
    pub async fn send_msg(&mut self, to_or_conv: impl Into<Value>, body: &str, client_id: &str) {
        self.send_json(&send_frame(to_or_conv, body, client_id))
            .await;
    }

    /// Sends a message and waits for its `ack`; returns the acked message object.
    pub async fn send_acked(
        &mut self,
        to_or_conv: impl Into<Value>,
        body: &str,
        client_id: &str,
    ) -> Value {
        self.send_msg(to_or_conv, body, client_id).await;
        self.ack_for(client_id).await["message"].clone()
    }

    pub async fn mark_read(&mut self, conversation: &str, seq: u64) {
        self.send_json(&json!({"type": "read", "conversation": conversation, "seq": seq}))
            .await;
    }

    pub async fn typing(&mut self, conversation: &str) {
        self.send_json(&json!({"type": "typing", "conversation": conversation}))
            .await;
    }

    /// The next frame from the server, whatever it is; fails after `FRAME_TIMEOUT`.
    pub async fn next_frame(&mut self) -> Value {
        match self.next_frame_within(FRAME_TIMEOUT).await {
            Some(frame) => frame,
            None => panic!(
                "no frame within {FRAME_TIMEOUT:?} (frames read past so far: {:?})",
                self.skipped
            ),
        }
    }

    /// The next frame, or `None` if nothing arrives within `wait`. Panics if the connection ends.
    pub async fn next_frame_within(&mut self, wait: Duration) -> Option<Value> {
        match self.next_event(wait).await {
            Event::Frame(frame) => Some(frame),
            Event::Timeout => None,
            Event::Closed(closed) => panic!(
                "the connection ended ({closed:?}) while a frame was expected (frames read past: {:?})",
                self.skipped
            ),
        }
    }

    /// The next frame within `wait` (`Ok(None)` if none came), or how the connection ended.
    pub async fn try_next_frame(&mut self, wait: Duration) -> Result<Option<Value>, Closed> {
        match self.next_event(wait).await {
            Event::Frame(frame) => Ok(Some(frame)),
            Event::Timeout => Ok(None),
            Event::Closed(closed) => Err(closed),
        }
    }

    /// The first frame of type `kind`; frames of other types are kept in `skipped`.
    pub async fn next_of_type(&mut self, kind: &str) -> Value {
        self.next_matching(&format!("a {kind} frame"), |frame| frame["type"] == kind)
            .await
    }

    /// The first frame for which `wanted` holds; others are kept in `skipped`.
    pub async fn next_matching(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + FRAME_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_frame_within(left).await {
                Some(frame) if wanted(&frame) => return frame,
                Some(frame) => self.skipped.push(frame),
                None => panic!(
                    "no {what} within {FRAME_TIMEOUT:?}; frames read past: {:?}",
                    self.skipped
                ),
            }
        }
    }

    /// The `ack` for `client_id`; an `error` frame for it fails the test with that error.
    pub async fn ack_for(&mut self, client_id: &str) -> Value {
        let frame = self
            .next_matching(&format!("ack or error for {client_id:?}"), |frame| {
                frame["client_id"] == client_id
                    && (frame["type"] == "ack" || frame["type"] == "error")
            })
            .await;
        assert_eq!(
            frame["type"], "ack",
            "expected an ack for {client_id:?}, got {frame}"
        );
        frame
    }

    /// The next `error` frame, checked to carry `code`.
    pub async fn error_with(&mut self, code: &str) -> Value {
        let frame = self.next_of_type("error").await;
        assert_eq!(frame["code"], code, "expected error {code}, got {frame}");
        frame
    }

    /// Every frame that arrives until the connection has been quiet for `quiet`, in order.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut frames = Vec::new();
        while let Some(frame) = self.next_frame_within(quiet).await {
            frames.push(frame);
        }
        frames
    }

    /// Asserts that no frame at all arrives for `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Some(frame) = self.next_frame_within(wait).await {
            panic!("expected no frame for {wait:?}, got {frame}");
        }
    }

    /// Waits (up to `wait`) for the connection to end; frames before the end go to `skipped`.
    pub async fn closed_within(&mut self, wait: Duration) -> Closed {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left).await {
                Event::Frame(frame) => self.skipped.push(frame),
                Event::Closed(closed) => return closed,
                Event::Timeout => panic!(
                    "the connection was still open after {wait:?} ({} frames read)",
                    self.skipped.len()
                ),
            }
        }
    }

    /// Waits for the server to close the connection, and returns the close code it sent.
    pub async fn expect_close(&mut self) -> Closed {
        self.closed_within(FRAME_TIMEOUT).await
    }

    /// Closes the tab the way a browser does (close frame 1000), waiting briefly for the server.
    pub async fn close(mut self) {
        if self.closed.is_some() {
            return;
        }
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    /// Reads one event; a timeout leaves the stream intact (reading a WebSocket is cancel-safe).
    async fn next_event(&mut self, wait: Duration) -> Event {
        if let Some(closed) = &self.closed {
            return Event::Closed(closed.clone());
        }
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => return Event::Timeout,
                Ok(message) => message,
            };
            let closed = match message {
                Some(Ok(Message::Text(text))) => {
                    let frame = serde_json::from_str(text.as_str()).unwrap_or_else(|e| {
                        panic!("the server sent a text frame that is not JSON ({e}): {text}")
                    });
                    return Event::Frame(frame);
                }
                Some(Ok(Message::Binary(bytes))) => {
                    panic!("the server sent a binary frame ({} bytes)", bytes.len())
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(frame))) => Closed::Code(frame.map(|f| u16::from(f.code))),
                Some(Err(e)) => Closed::Dropped(e.to_string()),
                None => Closed::Dropped("end of stream".to_owned()),
            };
            self.closed = Some(closed.clone());
            return Event::Closed(closed);
        }
    }
}

enum Event {
    Frame(Value),
    Timeout,
    Closed(Closed),
}

/// A `send` frame: a number `to_or_conv` names a user, a string names a conversation.
pub fn send_frame(to_or_conv: impl Into<Value>, body: &str, client_id: &str) -> Value {
    let target = to_or_conv.into();
    let mut frame = json!({"type": "send", "body": body, "client_id": client_id});
    if target.is_string() {
        frame["conversation"] = target;
    } else {
        frame["to"] = target;
    }
    frame
}

/// The `seq` of a message object (from an `ack`, a `message` frame or history).
pub fn seq(message: &Value) -> u64 {
    message["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("a message with a numeric seq, got {message}"))
}

/// Every message of a conversation, oldest first, fetched page by page (newest page first).
pub async fn full_history(client: &Client, conversation: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let path = match before {
            None => format!("/api/conversations/{conversation}/messages?limit=100"),
            Some(b) => format!("/api/conversations/{conversation}/messages?limit=100&before={b}"),
        };
        let (status, page) = client.get(&path).await;
        assert_eq!(status, 200, "GET {path}: {page}");
        let messages = page["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("a messages array, got {page}"))
            .clone();
        let has_more = page["has_more"] == true;
        before = messages.first().map(seq);
        pages.push(messages);
        if !has_more || before.is_none() {
            break;
        }
    }
    pages.into_iter().rev().flatten().collect()
}

/// TCP states as /proc/net/tcp numbers them.
pub const TCP_ESTABLISHED: u8 = 0x01;

/// The kernel's TCP state of the *server's* end of the connection from `client` (Linux
/// /proc/net/tcp), or `None` once that socket is gone. Lets a test see that the server dropped a
/// client that never reads, without reading from it (which would relieve the pressure).
pub fn server_end_state(server: SocketAddr, client: SocketAddr) -> Option<u8> {
    fn hex(addr: SocketAddr) -> String {
        match addr.ip() {
            IpAddr::V4(ip) => {
                let [a, b, c, d] = ip.octets();
                format!("{d:02X}{c:02X}{b:02X}{a:02X}:{:04X}", addr.port())
            }
            IpAddr::V6(_) => panic!("IPv4 loopback expected, got {addr}"),
        }
    }
    let (local, remote) = (hex(server), hex(client));
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str()) && fields.get(2) == Some(&remote.as_str()))
            .then(|| u8::from_str_radix(fields.get(3).unwrap_or(&"00"), 16).unwrap_or(0))
    })
}
