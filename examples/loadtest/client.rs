//! The client side every scenario shares: HTTP calls, signing users up through the admin API,
//! WebSockets that wait for their `hello`, and reading the server's frames cheaply.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Fallible;
use crate::server::Server;

pub type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A phase that makes no progress for this long aborts the run.
pub const STALL: Duration = Duration::from_secs(30);
/// Password hashes are the slow part of signing users up; the server hashes 2 at once
/// (`limits::CONCURRENT_HASHES`), and 4 in flight keep both of its hashing threads busy.
const SIGNUP_CONCURRENCY: usize = 4;
pub const ADMIN_PASSWORD: &str = "load test admin password";

pub fn http() -> Fallible<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

pub async fn call(req: reqwest::RequestBuilder, want: u16, what: &str) -> Fallible<Value> {
    let resp = req.send().await.map_err(|e| format!("{what}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    if status != want {
        return Err(format!("{what}: expected {want}, got {status} {text}"));
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The server's version and git revision, as `/healthz` gives them ("0.1.0 (51d6348abc)").
pub async fn server_version(server: &Server) -> Fallible<String> {
    let health = call(http()?.get(server.url("/healthz")), 200, "healthz").await?;
    Ok(health["version"].as_str().unwrap_or("?").to_owned())
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct User {
    pub id: i64,
    pub token: String,
}

/// First-time setup; returns the administrator's token.
pub async fn setup(server: &Server, http: &reqwest::Client) -> Fallible<String> {
    let token = server
        .setup_token
        .as_deref()
        .ok_or("the server printed no setup token (the database is not empty)")?;
    let setup = call(
        http.post(server.url("/api/setup")).json(&json!({
            "token": token, "username": "admin",
            "display_name": "Admin", "password": ADMIN_PASSWORD})),
        201,
        "setup",
    )
    .await?;
    Ok(setup["token"].as_str().unwrap_or_default().to_owned())
}

/// Admin creates the user; the user signs in with the temporary password and changes it
/// (which keeps the current session valid).
async fn sign_up(http: &reqwest::Client, server: &str, admin: &str, n: usize) -> Fallible<User> {
    let username = format!("load{n:05}");
    let created = call(
        http.post(format!("{server}/api/admin/users"))
            .bearer_auth(admin)
            .json(&json!({"username": username, "display_name": format!("Load {n}")})),
        201,
        "create user",
    )
    .await?;
    let temporary = created["temporary_password"].as_str().unwrap_or_default();
    let login = call(
        http.post(format!("{server}/api/login"))
            .json(&json!({"username": username, "password": temporary})),
        200,
        "login",
    )
    .await?;
    let token = login["token"].as_str().unwrap_or_default().to_owned();
    call(
        http.post(format!("{server}/api/me/password"))
            .bearer_auth(&token)
            .json(&json!({"current_password": temporary,
                          "new_password": format!("{username} long password")})),
        204,
        "change password",
    )
    .await?;
    let id = login["user"]["id"]
        .as_i64()
        .ok_or_else(|| format!("login answered no user id: {login}"))?;
    Ok(User { id, token })
}

/// First-time setup, then `count` users signed up through the admin API, 4 at a time: each
/// costs the server 3 argon2 hashes, so 1,000 take 65–90 s (`fixture` makes them in the store
/// instead, for scenarios that do not measure sign-ups).
pub async fn sign_up_all(
    server: &Server,
    http: &reqwest::Client,
    count: usize,
) -> Fallible<Vec<User>> {
    let base = server.url("");
    let admin = setup(server, http).await?;
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(SIGNUP_CONCURRENCY));
    let mut signups = Vec::new();
    for n in 0..count {
        let (http, base, admin, gate) = (http.clone(), base.clone(), admin.clone(), gate.clone());
        signups.push(tokio::spawn(async move {
            let _slot = gate.acquire().await.map_err(|e| e.to_string())?;
            sign_up(&http, &base, &admin, n).await
        }));
    }
    let mut users = Vec::new();
    for signup in signups {
        users.push(signup.await.map_err(|e| e.to_string())??);
    }
    println!(
        "setup:    {} users signed up in {:.1} s",
        users.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(users)
}

/// Opens `/ws` with the token and waits for the `hello`.
pub async fn open_socket(addr: SocketAddr, token: &str) -> Fallible<Ws> {
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?;
    request.headers_mut().insert("authorization", bearer);
    // tungstenite reads into 128 KiB by default: 1.3 GB for 10,000 sockets on the client side.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    // Browsers disable Nagle's algorithm on their sockets; so does this client.
    let connect = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
    let (mut ws, _) = tokio::time::timeout(STALL, connect)
        .await
        .map_err(|_| "WebSocket upgrade timed out".to_owned())?
        .map_err(|e| format!("WebSocket upgrade: {e}"))?;
    loop {
        match tokio::time::timeout(STALL, ws.next()).await {
            Err(_) => return Err("no hello within 30 s".to_owned()),
            Ok(Some(Ok(Message::Text(text)))) => {
                return if text.as_str().starts_with("{\"type\":\"hello\"") {
                    Ok(ws)
                } else {
                    Err(format!("expected hello, got {}", text.as_str()))
                };
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Err(format!("closed before hello: {frame:?}"));
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(format!("WebSocket error before hello: {e}")),
            Ok(None) => return Err("WebSocket ended before hello".to_owned()),
        }
    }
}

/// The next JSON frame, `None` on timeout, an error when the connection ends.
pub async fn next_json(ws: &mut Ws, wait: Duration) -> Fallible<Option<Value>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let next = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Ok(None),
            Ok(next) => next,
        };
        match next {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(text.as_str())
                    .map(Some)
                    .map_err(|e| format!("bad frame {e}: {text}"));
            }
            Some(Ok(Message::Close(frame))) => return Err(format!("server closed: {frame:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("WebSocket error: {e}")),
            None => return Err("WebSocket ended".to_owned()),
        }
    }
}

/// A server frame, recognised without parsing the JSON where the hot path allows: the server
/// writes `type` first, then (for `ack`) `client_id`, and a message's `body` once.
pub enum Frame<'a> {
    Ack {
        client_id: &'a str,
    },
    /// A message whose body starts with `#<number> `: the harness's stamp.
    Message {
        stamp: Option<u64>,
    },
    Error {
        client_id: String,
        code: String,
    },
    Other,
}

pub fn classify(text: &str) -> Frame<'_> {
    if let Some(rest) = text.strip_prefix("{\"type\":\"ack\",\"client_id\":\"") {
        return Frame::Ack {
            client_id: rest.split('"').next().unwrap_or_default(),
        };
    }
    if let Some(rest) = text.strip_prefix("{\"type\":\"message\"") {
        let stamp = rest.find("\"body\":\"#").and_then(|at| {
            let digits = &rest[at + 9..];
            let end = digits.find(|c: char| !c.is_ascii_digit())?;
            digits[..end].parse().ok()
        });
        return Frame::Message { stamp };
    }
    if text.starts_with("{\"type\":\"error\"") {
        let frame: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        return Frame::Error {
            client_id: frame["client_id"].as_str().unwrap_or_default().to_owned(),
            code: frame["code"].as_str().unwrap_or("?").to_owned(),
        };
    }
    Frame::Other
}

/// The client side of the server's per-connection rate limit, a token bucket.
pub struct Pacer {
    pub credit: f64,
    refilled: Instant,
    rate: f64,
    burst: f64,
}

impl Pacer {
    pub fn new(rate: f64, burst: f64) -> Pacer {
        Pacer {
            credit: burst,
            refilled: Instant::now(),
            rate,
            burst,
        }
    }

    pub fn refill(&mut self) {
        let now = Instant::now();
        let gained = now.duration_since(self.refilled).as_secs_f64() * self.rate;
        self.credit = (self.credit + gained).min(self.burst);
        self.refilled = now;
    }

    /// How long until one more frame may go.
    pub fn wait(&self) -> Duration {
        Duration::from_secs_f64(((1.0 - self.credit).max(0.0) / self.rate).max(0.0005))
    }
}
