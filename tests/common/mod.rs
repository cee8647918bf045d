//! The shared test harness: a real `confab` process per test, and a small HTTP client that speaks
//! docs/PROTOCOL.md, so every test file reads like a user story instead of plumbing.
#![allow(dead_code)]

/// Uploads, downloads, generated pictures and memory readings, used by the file stories.
pub mod files;
/// HTTPS helpers: clients that trust a given CA, certificates made for a test.
pub mod tls;
/// WebSocket helpers (one `Socket` per browser tab), used by the chat tests.
pub mod ws;

/// Scraping and parsing `/metrics`.
pub mod metrics;

/// Filesystems mounted for one test: full, or read-only.
pub mod mounts;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue};
pub use reqwest::{Method, StatusCode};
pub use serde_json::{Value, json};

/// Path of the binary under test; cargo builds it before any integration test runs.
pub const BIN: &str = env!("CARGO_BIN_EXE_confab");
/// The password `setup_admin` gives the first administrator.
pub const ADMIN_PASSWORD: &str = "correct horse battery";
/// The session cookie name from docs/PROTOCOL.md.
pub const COOKIE: &str = "confab_session";
/// Thirty days, the session lifetime promised by the protocol.
pub const SESSION_SECS: i64 = 30 * 24 * 60 * 60;

/// How long a server may take to print its listening line. Generous: a cold debug binary on a
/// busy CI machine, while other test binaries hash passwords in parallel.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// SIGTERM must end the server within this (the brief's graceful-shutdown promise).
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything the stdout/stderr reader threads learned from the child.
#[derive(Default)]
struct Captured {
    /// Every line, ANSI colours stripped, stdout and stderr interleaved in arrival order.
    lines: Vec<String>,
    addr: Option<SocketAddr>,
    setup_token: Option<String>,
    /// Number of output streams that reached EOF (2 means the child closed both).
    closed: u8,
}

/// Shared between the reader threads and the test: a condvar lets `start` wait for the
/// listening line without polling.
type Shared = Arc<(Mutex<Captured>, Condvar)>;

/// A real `confab` process listening on an ephemeral port with its own data directory.
/// Killed in `Drop`, so a failing test never leaks a server.
pub struct TestServer {
    child: Child,
    addr: SocketAddr,
    data_dir: PathBuf,
    /// The temp dir is owned here (and deleted on drop) unless the test passed its own dir.
    _temp: Option<tempfile::TempDir>,
    shared: Shared,
    /// Set once the child has been reaped, so `Drop` does not signal a recycled pid.
    exited: bool,
}

impl TestServer {
    /// A fresh server on a fresh, empty data directory.
    pub fn start() -> TestServer {
        TestServer::start_with(&[], None)
    }

    /// A server on an existing data directory (restart tests). The caller owns the directory.
    pub fn start_in(dir: &Path) -> TestServer {
        TestServer::start_with(&[], Some(dir))
    }

    /// A server with extra command-line flags, e.g. `&["--header-timeout", "2"]`.
    pub fn start_with(args: &[&str], dir: Option<&Path>) -> TestServer {
        TestServer::start_with_env(args, &[], dir)
    }

    /// A server with extra flags and environment variables. `--listen 127.0.0.1:0` and
    /// `--data-dir` are added unless `args` or `env` already set them.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)], dir: Option<&Path>) -> TestServer {
        TestServer::spawn(args, env, dir, None)
    }

    /// A server on `dir` whose working directory is `cwd`: a path like `/proc/self/cwd/x`
    /// then means another file to it than to a console command, as paths do for a systemd
    /// service with a private /tmp.
    pub fn start_in_working_dir(dir: &Path, cwd: &Path) -> TestServer {
        TestServer::spawn(&[], &[], Some(dir), Some(cwd))
    }

    fn spawn(
        args: &[&str],
        env: &[(&str, &str)],
        dir: Option<&Path>,
        cwd: Option<&Path>,
    ) -> TestServer {
        let (temp, data_dir) = match dir {
            Some(dir) => (None, dir.to_path_buf()),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("confab-test-")
                    .tempdir()
                    .expect("create temp data dir");
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };

        let mut cmd = base_command();
        let given =
            |flag: &str, var: &str| args.contains(&flag) || env.iter().any(|(k, _)| *k == var);
        if !given("--listen", "CONFAB_LISTEN") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        if !given("--data-dir", "CONFAB_DATA_DIR") {
            cmd.arg("--data-dir").arg(&data_dir);
        }
        cmd.args(args);
        for (key, value) in env {
            cmd.env(key, value);
        }
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn confab binary");

        let shared: Shared = Arc::default();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        spawn_reader(stdout, shared.clone());
        spawn_reader(stderr, shared.clone());

        let deadline = Instant::now() + START_TIMEOUT;
        let (lock, cvar) = &*shared;
        let mut state = lock.lock().expect("log lock");
        let addr = loop {
            if let Some(addr) = state.addr {
                break addr;
            }
            let now = Instant::now();
            if state.closed == 2 || now >= deadline {
                let log = state.lines.join("\n");
                drop(state);
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "confab did not print `listening on 127.0.0.1:<port>` within {START_TIMEOUT:?} \
                     (exit status {status:?}); output:\n{log}"
                );
            }
            state = cvar
                .wait_timeout(state, deadline - now)
                .expect("log lock")
                .0;
        };
        drop(state);

        TestServer {
            child,
            addr,
            data_dir,
            _temp: temp,
            shared,
            exited: false,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the server's own origin for CSRF checks.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone()
    }

    /// The first-run setup token, if the server printed one. A fresh server may print it just
    /// after the listening line, so this waits briefly before answering `None`.
    pub fn setup_token(&self) -> Option<String> {
        self.wait_for(Duration::from_secs(1), |c| c.setup_token.clone())
    }

    /// Every line the server wrote so far (stdout and stderr).
    pub fn logs(&self) -> Vec<String> {
        self.shared.0.lock().expect("log lock").lines.clone()
    }

    pub fn log_contains(&self, s: &str) -> bool {
        self.shared
            .0
            .lock()
            .expect("log lock")
            .lines
            .iter()
            .any(|line| line.contains(s))
    }

    /// Waits up to `timeout` for a log line containing `s` (logs are written asynchronously).
    pub fn wait_for_log(&self, s: &str, timeout: Duration) -> bool {
        self.wait_for(timeout, |c| {
            c.lines.iter().any(|l| l.contains(s)).then_some(())
        })
        .is_some()
    }

    fn wait_for<T>(
        &self,
        timeout: Duration,
        mut found: impl FnMut(&Captured) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.shared;
        let mut state = lock.lock().expect("log lock");
        loop {
            if let Some(value) = found(&state) {
                return Some(value);
            }
            let now = Instant::now();
            if now >= deadline || state.closed == 2 {
                return None;
            }
            state = cvar
                .wait_timeout(state, deadline - now)
                .expect("log lock")
                .0;
        }
    }

    /// SIGTERM, then asserts the server exits within 5 s and returns how it exited.
    pub fn stop(mut self) -> ExitStatus {
        self.terminate()
    }

    /// Stops the server gracefully and starts a new one on the same data directory, keeping
    /// ownership of a temp dir so it is not deleted in between.
    pub fn restart(mut self) -> TestServer {
        let status = self.terminate();
        assert!(status.success(), "server exited with {status:?} on SIGTERM");
        let temp = self._temp.take();
        let mut next = TestServer::start_in(&self.data_dir);
        next._temp = temp;
        next
    }

    /// SIGKILL: a crash, for durability tests.
    pub fn kill(&mut self) {
        if !self.exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.exited = true;
        }
    }

    /// Sends SIGTERM without waiting.
    pub fn signal_term(&self) {
        // `unsafe_code` is forbidden crate-wide (tests included), so `libc::kill` is out of
        // reach; the `kill` utility sends the same signal.
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill -TERM failed: {status:?}");
    }

    /// Waits for the child to exit on its own, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = true;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn terminate(&mut self) -> ExitStatus {
        assert!(!self.exited, "server already exited");
        let started = Instant::now();
        self.signal_term();
        match self.wait_exit(STOP_TIMEOUT) {
            Some(status) => status,
            None => {
                self.kill();
                panic!(
                    "server did not exit within {STOP_TIMEOUT:?} of SIGTERM (waited {:?}); output:\n{}",
                    started.elapsed(),
                    self.logs().join("\n")
                );
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The binary with a clean environment: no `RUST_LOG` and no inherited `CONFAB_*` settings, so a
/// developer's shell cannot change what the tests see; no display either, or a test server
/// started from a desktop session (no terminal attached) would open a browser.
pub fn base_command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("RUST_LOG")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CONFAB_") {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// Runs the binary as a one-shot command (`--help`, `--reset-user`, ...) and returns its output.
/// Fails the test if it runs longer than 20 s.
pub fn run_cli(args: &[&str]) -> Output {
    run_cli_env(args, &[])
}

/// Starts a server on a fresh data directory with `env`, expecting it to refuse to start:
/// returns what it printed on stderr, after checking it created nothing.
pub fn refused_at_start(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_str().expect("utf-8 path");
    let out = run_cli_env(&["--listen", "127.0.0.1:0", "--data-dir", data_dir], env);
    assert!(!out.status.success(), "started with {env:?}");
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("data dir").count(),
        0,
        "nothing is created before the settings are valid"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn run_cli_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = base_command();
    cmd.args(args);
    run_to_end(cmd, args, env)
}

/// [`run_cli`] from the working directory `cwd`.
pub fn run_cli_in(cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = base_command();
    cmd.args(args).current_dir(cwd);
    run_to_end(cmd, args, &[])
}

fn run_to_end(mut cmd: Command, args: &[&str], env: &[(&str, &str)]) -> Output {
    for (key, value) in env {
        cmd.env(key, value);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn confab binary");
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`confab {}` did not exit within {START_TIMEOUT:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

fn spawn_reader(stream: impl Read + Send + 'static, shared: Shared) {
    std::thread::spawn(move || {
        let reader = BufReader::new(stream);
        for line in reader.split(b'\n') {
            let Ok(line) = line else { break };
            let line = strip_ansi(&String::from_utf8_lossy(&line));
            let (lock, cvar) = &*shared;
            let mut state = lock.lock().expect("log lock");
            if state.addr.is_none() {
                state.addr = parse_listening(&line);
            }
            if state.setup_token.is_none() {
                state.setup_token = parse_setup_token(&line);
            }
            state.lines.push(line);
            cvar.notify_all();
        }
        let (lock, cvar) = &*shared;
        lock.lock().expect("log lock").closed += 1;
        cvar.notify_all();
    });
}

/// `... listening on 127.0.0.1:PORT ...` → the address. Tolerates trailing punctuation.
fn parse_listening(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let word = rest.split_whitespace().next()?;
    let word = word.trim_end_matches(|c: char| !c.is_ascii_digit());
    word.parse().ok()
}

/// `... /setup#token=TOKEN ...` → `TOKEN` (characters `[A-Za-z0-9_-]`).
fn parse_setup_token(line: &str) -> Option<String> {
    let rest = &line[line.find("/setup#token=")? + "/setup#token=".len()..];
    let token: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    (!token.is_empty()).then_some(token)
}

/// Removes ANSI escape sequences (`ESC [ ... letter`), in case the server colours its logs.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// A name no other test in this process uses, valid as a username (lower case, ≤ 32 chars).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let salt = std::process::id() as u64 % 1_000;
    let prefix: String = prefix.to_ascii_lowercase().chars().take(20).collect();
    format!("{prefix}{salt}x{n}")
}

/// A plain HTTP client: no cookie store, no proxy (a proxy from the environment would break
/// 127.0.0.1), and a timeout so a hung server fails the test instead of the CI job.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("build reqwest client")
}

/// Sends a request and returns status, headers and the body as JSON (`Null` when empty, a JSON
/// string when the body is not JSON, e.g. HTML).
pub async fn send_full(req: reqwest::RequestBuilder) -> (StatusCode, HeaderMap, Value) {
    let resp = req.send().await.expect("send HTTP request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("read response body");
    (status, headers, body_value(&bytes))
}

pub async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let (status, _, body) = send_full(req).await;
    (status, body)
}

fn body_value(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// The `error.code` of an error body, or `""` when the body is not the error shape.
pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// Asserts a response is the protocol's error shape with this status and code.
#[track_caller]
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(
        (got.0, error_code(&got.1)),
        (status, code),
        "expected {status} `{code}`, got {} {}",
        got.0,
        got.1
    );
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error without a message: {}",
        got.1
    );
}

/// A user of the API, authenticated with `Authorization: Bearer` (no cookies).
#[derive(Clone)]
pub struct Client {
    pub token: String,
    pub user: Value,
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client for `server` that presents `token` as a bearer token.
    pub fn new(server: &TestServer, token: &str) -> Client {
        Client::at(&http(), &server.url(""), token, Value::Null)
    }

    fn at(http: &reqwest::Client, base: &str, token: &str, user: Value) -> Client {
        Client {
            token: token.to_owned(),
            user,
            http: http.clone(),
            base: base.to_owned(),
        }
    }

    /// The user id from the login response.
    pub fn id(&self) -> i64 {
        self.user["id"].as_i64().expect("client.user has an id")
    }

    pub fn username(&self) -> String {
        self.user["username"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with the bearer token set, for anything the helpers below do not cover.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, json: Value) -> (StatusCode, Value) {
        send(self.request(Method::POST, path).json(&json)).await
    }

    /// A POST without a body (logout, reset-password).
    pub async fn post_empty(&self, path: &str) -> (StatusCode, Value) {
        send(self.request(Method::POST, path)).await
    }

    pub async fn patch(&self, path: &str, json: Value) -> (StatusCode, Value) {
        send(self.request(Method::PATCH, path).json(&json)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        send(self.request(Method::DELETE, path)).await
    }

    /// `GET /api/me`, asserting 200.
    pub async fn me(&self) -> Value {
        let (status, body) = self.get("/api/me").await;
        assert_eq!(status, StatusCode::OK, "GET /api/me: {body}");
        body
    }

    /// `POST /api/logout`, asserting 204.
    pub async fn logout(&self) {
        let (status, body) = self.post_empty("/api/logout").await;
        assert_eq!(status, StatusCode::NO_CONTENT, "logout: {body}");
    }

    /// `POST /api/me/password`, returning the raw answer.
    pub async fn change_password(&self, current: &str, new: &str) -> (StatusCode, Value) {
        self.post(
            "/api/me/password",
            json!({"current_password": current, "new_password": new}),
        )
        .await
    }

    /// Admin: the full user object with this id from `GET /api/admin/users`.
    pub async fn admin_user(&self, id: i64) -> Value {
        let (status, body) = self.get("/api/admin/users").await;
        assert_eq!(status, StatusCode::OK, "GET /api/admin/users: {body}");
        body.as_array()
            .expect("user list")
            .iter()
            .find(|u| u["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("user {id} not in {body}"))
    }

    /// Admin: `GET /api/admin/users`, asserting 200.
    pub async fn admin_users(&self) -> Vec<Value> {
        let (status, body) = self.get("/api/admin/users").await;
        assert_eq!(status, StatusCode::OK, "GET /api/admin/users: {body}");
        body.as_array().expect("user list").clone()
    }
}

/// `POST /api/login` → status, body and the raw `Set-Cookie` header for the session cookie.
pub async fn login(
    server: &TestServer,
    username: &str,
    password: &str,
) -> (StatusCode, Value, Option<String>) {
    login_at(&http(), &server.url(""), username, password).await
}

async fn login_at(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> (StatusCode, Value, Option<String>) {
    let req = http
        .post(format!("{base}/api/login"))
        .json(&json!({"username": username, "password": password}));
    let (status, headers, body) = send_full(req).await;
    (status, body, session_set_cookie(&headers))
}

/// Logs in and asserts success, returning a bearer client.
pub async fn login_client(server: &TestServer, username: &str, password: &str) -> Client {
    login_client_at(&http(), &server.url(""), username, password).await
}

async fn login_client_at(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> Client {
    let (status, body, _) = login_at(http, base, username, password).await;
    assert_eq!(status, StatusCode::OK, "login as {username}: {body}");
    let token = body["token"].as_str().expect("login token");
    Client::at(http, base, token, body["user"].clone())
}

/// The `Set-Cookie` header that sets `confab_session`, if any.
pub fn session_set_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.trim_start().starts_with(&format!("{COOKIE}=")))
        .map(str::to_owned)
}

/// `confab_session=VALUE; HttpOnly; ...` → `VALUE`.
pub fn cookie_value(set_cookie: &str) -> String {
    let first = set_cookie.split(';').next().unwrap_or_default().trim();
    first
        .strip_prefix(&format!("{COOKIE}="))
        .unwrap_or_default()
        .to_owned()
}

/// A `Cookie` request header carrying this session token.
pub fn cookie_header(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{COOKIE}={token}")).expect("cookie header")
}

/// The smallest office for a chat story: a fresh server with alice and bob signed in.
pub async fn alice_and_bob() -> (TestServer, Client, Client) {
    alice_and_bob_on(TestServer::start()).await
}

/// [`alice_and_bob`] on a server started as the caller chose.
pub async fn alice_and_bob_on(server: TestServer) -> (TestServer, Client, Client) {
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let bob = create_user(&admin, "bob").await;
    (server, alice, bob)
}

/// Performs first-run setup as `admin` / `correct horse battery` and returns the admin client.
pub async fn setup_admin(server: &TestServer) -> Client {
    setup_admin_at(&http(), &server.url(""), server).await
}

/// `setup_admin` through `http` at `base` (e.g. an HTTPS client and address).
pub async fn setup_admin_at(http: &reqwest::Client, base: &str, server: &TestServer) -> Client {
    let token = server
        .wait_for(START_TIMEOUT, |c| c.setup_token.clone())
        .expect("server printed a /setup#token=... line");
    let req = http.post(format!("{base}/api/setup")).json(&json!({
        "token": token,
        "username": "admin",
        "display_name": "Admin",
        "password": ADMIN_PASSWORD,
    }));
    let (status, body) = send(req).await;
    assert_eq!(status, StatusCode::CREATED, "POST /api/setup: {body}");
    let token = body["token"].as_str().expect("setup returns a token");
    Client::at(http, base, token, body["user"].clone())
}

impl Client {
    /// The same client, knowing which user it is (for `id()` and `username()`).
    pub fn with_user(mut self, user: Value) -> Client {
        self.user = user;
        self
    }
}

/// The password `create_user` leaves a user with.
pub fn password_of(username: &str) -> String {
    format!("{username} password 123")
}

/// `client` creates a room (`visibility` "open" or "private") with `members`; returns its id.
pub async fn create_room(
    client: &Client,
    name: &str,
    visibility: &str,
    members: &[&Client],
) -> String {
    let ids: Vec<i64> = members.iter().map(|m| m.id()).collect();
    let (status, room) = client
        .post(
            "/api/rooms",
            json!({"name": name, "visibility": visibility, "members": ids}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "create {name}: {room}");
    room["id"].as_str().expect("room id").to_owned()
}

/// Admin creates `username`; the user signs in with the temporary password, changes it to
/// `password_of(username)`, and signs in again. Returns that ready-to-use client.
pub async fn create_user(admin: &Client, username: &str) -> Client {
    let temporary = create_user_raw(admin, username).await;
    let first = login_client_at(&admin.http, &admin.base, username, &temporary).await;
    assert_eq!(first.user["must_change_password"], true, "{}", first.user);
    let (status, body) = first
        .change_password(&temporary, &password_of(username))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "change password: {body}");
    login_client_at(&admin.http, &admin.base, username, &password_of(username)).await
}

/// Admin creates `username` (a member) and returns the temporary password.
pub async fn create_user_raw(admin: &Client, username: &str) -> String {
    let (status, body) = admin
        .post(
            "/api/admin/users",
            json!({"username": username, "display_name": display_name_for(username)}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "create user {username}: {body}"
    );
    body["temporary_password"]
        .as_str()
        .expect("temporary_password")
        .to_owned()
}

fn display_name_for(username: &str) -> String {
    let mut chars = username.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Current Unix time in seconds.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Current Unix time in milliseconds.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// A cookie-authenticated request (no bearer header), as a browser would send it. Add
/// `.header("Origin", ...)` to pass the CSRF check.
pub fn cookie_request(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    http()
        .request(method, server.url(path))
        .header(reqwest::header::COOKIE, cookie_header(token))
}

/// What `raw_http` read back: the status code and the whole response text.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub text: String,
}

/// Sends `request` byte for byte over a new TCP connection and reads until the server closes
/// it. For what reqwest would normalise away (`/../x` paths, odd headers, chunked bodies).
/// Add `Connection: close` to the request, or the read waits for the keep-alive to end.
pub async fn raw_http(server: &TestServer, request: &[u8]) -> RawResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect to server");
    // The server may answer (413, 408) and close before reading everything; what it answered
    // is still in the read below.
    let _ = stream.write_all(request).await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    // A reset after the response (the server closing with unread input) still leaves a usable
    // answer in `buf`; only a timeout is a failure.
    assert!(
        read.is_ok(),
        "server did not close the raw connection within 10 s"
    );
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status line in {text:?}"));
    RawResponse { status, text }
}

/// Like [`http`], but connecting from `local` (any 127.x.y.z reaches the server on Linux), so
/// a test can play clients at different addresses.
pub fn http_from(local: std::net::IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(local)
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("build reqwest client")
}

/// The DMs of a conversation list (`GET /api/conversations` or `hello`), leaving out rooms such
/// as General, which everyone is in.
pub fn dms_only(conversations: &Value) -> Value {
    Value::Array(
        conversations
            .as_array()
            .unwrap_or_else(|| panic!("a conversation list, got {conversations}"))
            .iter()
            .filter(|c| c["kind"] == "dm")
            .cloned()
            .collect(),
    )
}

/// A small office for room and message stories: a fresh server, its administrator, and alice,
/// bob and carol signed in.
pub async fn office() -> (TestServer, Client, Client, Client, Client) {
    let server = TestServer::start();
    let admin = setup_admin(&server).await;
    let alice = create_user(&admin, "alice").await;
    let bob = create_user(&admin, "bob").await;
    let carol = create_user(&admin, "carol").await;
    (server, admin, alice, bob, carol)
}

/// `client`'s summary of conversation `id` from `GET /api/conversations`, if it is listed.
pub async fn summary_of(client: &Client, id: &str) -> Option<Value> {
    let (status, list) = client.get("/api/conversations").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array()
        .expect("conversation list")
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
}

/// Runs `confab ARGS` and returns whether it succeeded, with stdout and stderr together (for
/// assertions on what an operator reads).
pub fn cli(args: &[&str]) -> (bool, String) {
    let out = run_cli(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A path as a `&str` argument for the CLI.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 test path")
}
