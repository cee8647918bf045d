//! Load harness: starts a release `confab` on a temp dir and an ephemeral loopback port, signs up
//! N users, sends M DMs from all of them at once, and reports throughput, ack latency and memory.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example loadtest -- [--users N] [--messages M] [--idle-connections K]
//!     [--window W] [--body-bytes B] [--bin PATH]
//! ```
//!
//! It builds nothing itself: it runs `target/release/confab` (or `--bin`). All traffic goes to
//! 127.0.0.1, every loop is bounded, and the server is stopped at the end.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;
type Fallible<T> = Result<T, String>;

/// The server allows 20 frames/s per connection with bursts of 60 (docs/PROTOCOL.md); the
/// senders stay just under it, so the offered load is at most users × 19 messages/s.
const CLIENT_RATE: f64 = 19.0;
const CLIENT_BURST: f64 = 55.0;
/// Password hashes are the slow part of signing users up; the server hashes 2 at once
/// (`limits::CONCURRENT_HASHES`), and 4 in flight keep both of its hashing threads busy.
const SIGNUP_CONCURRENCY: usize = 4;
/// A phase that makes no progress for this long aborts the run.
const STALL: Duration = Duration::from_secs(30);
const ADMIN_PASSWORD: &str = "load test admin password";

struct Args {
    users: usize,
    messages: usize,
    idle: usize,
    window: usize,
    body_bytes: usize,
    bin: PathBuf,
}

const USAGE: &str = "usage: loadtest [--users N] [--messages M] [--idle-connections K] \
[--window W] [--body-bytes B] [--bin PATH]";

fn parse_args() -> Fallible<Args> {
    let mut args = Args {
        users: 100,
        messages: 20_000,
        idle: 500,
        window: 8,
        body_bytes: 100,
        bin: PathBuf::from("target/release/confab"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{flag} takes a number, got {value:?}"))
        };
        match flag.as_str() {
            "--users" => args.users = number()?,
            "--messages" => args.messages = number()?,
            "--idle-connections" => args.idle = number()?,
            "--window" => args.window = number()?.max(1),
            "--body-bytes" => args.body_bytes = number()?.clamp(1, 4000),
            "--bin" => args.bin = PathBuf::from(&value),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    if args.users < 2 {
        return Err("--users must be at least 2 (each sends to a partner)".to_owned());
    }
    Ok(args)
}

/// The server process; killed on drop so a failed run never leaves it behind.
struct Server {
    child: Child,
    addr: SocketAddr,
    setup_token: String,
    _data_dir: tempfile::TempDir,
}

impl Server {
    fn start(bin: &PathBuf, max_connections: usize) -> Fallible<Server> {
        if !bin.exists() {
            return Err(format!(
                "{} not found: run `cargo build --release` first, or pass --bin",
                bin.display()
            ));
        }
        let data_dir = tempfile::Builder::new()
            .prefix("confab-load-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--max-connections"])
            .arg(max_connections.to_string())
            .arg("--data-dir")
            .arg(data_dir.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("start {}: {e}", bin.display()))?;
        let (tx, rx) = mpsc::channel();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            // Keep draining after start-up so a chatty server never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let (mut addr, mut token) = (None, None);
        while addr.is_none() || token.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).map_err(|_| {
                let _ = child.kill();
                "the server printed no `listening on` and `/setup#token=` lines within 20 s"
                    .to_owned()
            })?;
            addr = addr.or_else(|| after(&line, "listening on ").and_then(|w| w.parse().ok()));
            token = token.or_else(|| after(&line, "/setup#token=").map(str::to_owned));
        }
        std::thread::spawn(move || for _line in rx {});
        match (addr, token) {
            (Some(addr), Some(setup_token)) => Ok(Server {
                child,
                addr,
                setup_token,
                _data_dir: data_dir,
            }),
            _ => Err("the server's start-up lines were incomplete".to_owned()),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// (VmRSS, VmHWM) in KiB, from /proc/<pid>/status.
    fn memory(&self) -> Fallible<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|e| format!("read /proc/{}/status: {e}", self.child.id()))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<u64>().ok())
                .ok_or_else(|| format!("no {name} in /proc status"))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// SIGTERM (through kill(1): `unsafe` is forbidden here), then up to 10 s for a clean exit.
    fn stop(&mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return format!("{status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        "did not exit within 10 s of SIGTERM; killed".to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The word after `marker` in `line`, without trailing punctuation.
fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let word = rest.split_whitespace().next()?;
    Some(word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
}

fn http() -> Fallible<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

async fn call(req: reqwest::RequestBuilder, want: u16, what: &str) -> Fallible<Value> {
    let resp = req.send().await.map_err(|e| format!("{what}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    if status != want {
        return Err(format!("{what}: expected {want}, got {status} {text}"));
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

struct User {
    id: i64,
    token: String,
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

/// Opens `/ws` with the token and waits for the `hello`.
async fn open_socket(addr: SocketAddr, token: &str) -> Fallible<Ws> {
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?;
    request.headers_mut().insert("authorization", bearer);
    // Browsers disable Nagle's algorithm on their sockets; so does this client.
    let connect = tokio_tungstenite::connect_async_with_config(request, None, true);
    let (mut ws, _) = tokio::time::timeout(STALL, connect)
        .await
        .map_err(|_| "WebSocket upgrade timed out".to_owned())?
        .map_err(|e| format!("WebSocket upgrade: {e}"))?;
    match next_json(&mut ws, STALL).await? {
        Some(frame) if frame["type"] == "hello" => Ok(ws),
        other => Err(format!("expected hello, got {other:?}")),
    }
}

/// The next JSON frame, `None` on timeout, an error when the connection ends.
async fn next_json(ws: &mut Ws, wait: Duration) -> Fallible<Option<Value>> {
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

/// What one connection measured while sending its share.
#[derive(Default)]
struct Sent {
    latencies: Vec<Duration>,
    rate_limited: usize,
    received: usize,
    last_ack: Option<Instant>,
}

/// Sends `quota` messages to `partner` with at most `window` unacked, paced under the server's
/// rate limit, and keeps reading until every one is acked.
async fn send_share(
    mut ws: Ws,
    me: usize,
    partner: i64,
    quota: usize,
    window: usize,
    body: Arc<String>,
) -> Fallible<(Ws, Sent)> {
    let mut out = Sent::default();
    let mut pending: HashMap<String, Instant> = HashMap::new();
    let mut retry: Vec<String> = Vec::new();
    let (mut next, mut acked) = (0, 0);
    let mut credit = CLIENT_BURST;
    let mut refilled = Instant::now();
    let mut progress = Instant::now();
    while acked < quota {
        credit = (credit + refilled.elapsed().as_secs_f64() * CLIENT_RATE).min(CLIENT_BURST);
        refilled = Instant::now();
        let mut fed = false;
        while pending.len() < window && credit >= 1.0 && (next < quota || !retry.is_empty()) {
            let client_id = retry.pop().unwrap_or_else(|| {
                next += 1;
                format!("u{me}-{next}")
            });
            let frame =
                json!({"type": "send", "to": partner, "body": *body, "client_id": client_id});
            ws.feed(Message::text(frame.to_string()))
                .await
                .map_err(|e| format!("send: {e}"))?;
            pending.insert(client_id, Instant::now());
            credit -= 1.0;
            fed = true;
        }
        if fed {
            ws.flush().await.map_err(|e| format!("send: {e}"))?;
        }
        let can_send_more = pending.len() < window && (next < quota || !retry.is_empty());
        let wait = if can_send_more {
            Duration::from_secs_f64(((1.0 - credit).max(0.0) / CLIENT_RATE).max(0.001))
        } else {
            Duration::from_millis(200)
        };
        let Some(frame) = next_json(&mut ws, wait).await? else {
            if progress.elapsed() > STALL {
                return Err(format!("user {me}: no ack for {STALL:?}"));
            }
            continue;
        };
        match frame["type"].as_str() {
            Some("ack") => {
                let client_id = frame["client_id"].as_str().unwrap_or_default();
                if let Some(sent_at) = pending.remove(client_id) {
                    out.latencies.push(sent_at.elapsed());
                    acked += 1;
                    progress = Instant::now();
                    out.last_ack = Some(Instant::now());
                }
            }
            Some("message") => out.received += 1,
            Some("error") if frame["code"] == "rate_limited" => {
                let client_id = frame["client_id"].as_str().unwrap_or_default().to_owned();
                if pending.remove(&client_id).is_some() {
                    out.rate_limited += 1;
                    retry.push(client_id);
                    credit = 0.0;
                }
            }
            Some("error") => return Err(format!("user {me}: {frame}")),
            _ => {}
        }
    }
    Ok((ws, out))
}

/// Reads whatever partners are still delivering, for up to `quiet` of silence.
async fn drain(ws: &mut Ws, quiet: Duration) -> usize {
    let mut received = 0;
    while let Ok(Some(frame)) = next_json(ws, quiet).await {
        if frame["type"] == "message" {
            received += 1;
        }
    }
    received
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

async fn run(args: Args) -> Fallible<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut server = Server::start(&args.bin, args.users + args.idle + 64)?;
    let base = server.url("");
    let http = http()?;
    let health = call(http.get(server.url("/healthz")), 200, "healthz").await?;
    println!("confab load test");
    println!(
        "server:   {} ({}) on {}, {cores} cores",
        args.bin.display(),
        health["version"].as_str().unwrap_or("?"),
        server.addr
    );
    println!(
        "workload: {} users, {} messages of {} bytes into DMs (fixed partner each), \
         window {} per connection, {} idle connections",
        args.users, args.messages, args.body_bytes, args.window, args.idle
    );

    let setup = call(
        http.post(server.url("/api/setup")).json(&json!({
            "token": server.setup_token, "username": "admin",
            "display_name": "Admin", "password": ADMIN_PASSWORD})),
        201,
        "setup",
    )
    .await?;
    let admin = setup["token"].as_str().unwrap_or_default().to_owned();

    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(SIGNUP_CONCURRENCY));
    let mut signups = Vec::new();
    for n in 0..args.users {
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

    let mut sockets = Vec::new();
    for user in &users {
        sockets.push(open_socket(server.addr, &user.token).await?);
    }
    let (rss_before, hwm_before) = server.memory()?;

    // Pairs (0,1), (2,3), ...; with an odd count the last user writes to user 0.
    let partner = |i: usize| match i ^ 1 {
        p if p < users.len() => users[p].id,
        _ => users[0].id,
    };
    let body = Arc::new("x".repeat(args.body_bytes));
    let per_user = args.messages / args.users;
    let extra = args.messages % args.users;
    let load_started = Instant::now();
    let mut tasks = Vec::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        let quota = per_user + usize::from(i < extra);
        tasks.push(tokio::spawn(send_share(
            ws,
            i,
            partner(i),
            quota,
            args.window,
            body.clone(),
        )));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.map_err(|e| e.to_string())??);
    }
    let mut latencies = Vec::new();
    let (mut rate_limited, mut received) = (0, 0);
    let mut last_ack = load_started;
    let mut sockets = Vec::new();
    for (ws, sent) in results {
        latencies.extend(sent.latencies);
        rate_limited += sent.rate_limited;
        received += sent.received;
        last_ack = last_ack.max(sent.last_ack.unwrap_or(load_started));
        sockets.push(ws);
    }
    let elapsed = last_ack.duration_since(load_started);
    for ws in &mut sockets {
        received += drain(ws, Duration::from_millis(50)).await;
    }
    latencies.sort_unstable();
    let acked = latencies.len();
    let ceiling = args.users as f64 * CLIENT_RATE;
    let (rss_after, hwm_after) = server.memory()?;

    println!(
        "send:     {acked} acked in {:.2} s = {:.0} msg/s",
        elapsed.as_secs_f64(),
        acked as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
    );
    println!(
        "          (offered load is paced under the server's per-connection rate limit: a burst \
         of {CLIENT_BURST}, then {CLIENT_RATE}/s per connection = {ceiling:.0} msg/s sustained)"
    );
    println!("          {received} delivered to partners, {rate_limited} rate_limited (retried)");
    println!(
        "ack latency: p50 {}, p95 {}, p99 {}, max {}",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 95.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    println!(
        "server memory: before load RSS {} (peak {}), after load RSS {} (peak {})",
        mib(rss_before),
        mib(hwm_before),
        mib(rss_after),
        mib(hwm_after)
    );

    if args.idle > 0 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (idle_before, _) = server.memory()?;
        let opened = Instant::now();
        let mut idle = Vec::with_capacity(args.idle);
        for k in 0..args.idle {
            idle.push(open_socket(server.addr, &users[k % users.len()].token).await?);
        }
        let open_time = opened.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (idle_after, hwm) = server.memory()?;
        let per_conn = idle_after.saturating_sub(idle_before) as f64 / args.idle as f64;
        println!(
            "idle:     {} WebSockets (each got its hello) opened in {:.2} s; RSS {} -> {} \
             (peak {}) = {:.1} KiB per connection",
            args.idle,
            open_time.as_secs_f64(),
            mib(idle_before),
            mib(idle_after),
            mib(hwm),
            per_conn
        );
        drop(idle);
    }
    drop(sockets);
    println!("stop:     {}", server.stop());
    if acked != args.messages || received != args.messages {
        return Err(format!(
            "expected {} acked and delivered, got {acked} acked and {received} delivered",
            args.messages
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("loadtest failed: {message}");
            ExitCode::FAILURE
        }
    }
}
