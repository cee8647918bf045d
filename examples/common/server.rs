//! What the benchmark examples that drive a real server share: a release `confab` started on a
//! data directory (stopped with SIGTERM when dropped), new passwords for bigdb's accounts from
//! the console, and signing in with them.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use serde_json::{Value, json};

pub type Fallible<T> = Result<T, String>;

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// The server's log lines after `listening on`, drained by a thread so the pipe never
    /// fills.
    pub log: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `bin` on `dir` with an ephemeral loopback port and `extra` flags; returns once it
    /// is listening.
    /// The server logs as `RUST_LOG` says only if `SERVER_LOG` gives it (say
    /// `SERVER_LOG=confab=debug`): a developer's own `RUST_LOG` is for the example.
    pub fn start(bin: &Path, dir: &Path, extra: &[&str]) -> Fallible<Server> {
        let mut command = Command::new(bin);
        match std::env::var_os("SERVER_LOG") {
            Some(filter) => command.env("RUST_LOG", filter),
            None => command.env_remove("RUST_LOG"),
        };
        let mut child = command
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .arg("--data-dir")
            .arg(dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("start {}: {e}", bin.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // From here on, dropping `server` stops the child.
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        server.addr = loop {
            let line = server
                .log
                .recv()
                .map_err(|_| "the server exited before listening")?;
            if let Some(rest) = line.split("listening on ").nth(1) {
                let addr = rest.split(':').take(2).collect::<Vec<_>>().join(":");
                break addr.parse().map_err(|e| format!("{addr}: {e}"))?;
            }
        };
        Ok(server)
    }
}

impl Drop for Server {
    /// SIGTERM (through kill(1): `unsafe` is forbidden), then wait for the clean exit.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// New temporary passwords for `usernames` through `confab --reset-user` (server stopped).
pub fn reset_passwords(
    bin: &Path,
    dir: &Path,
    usernames: &[String],
) -> Fallible<Vec<(String, String)>> {
    usernames
        .iter()
        .map(|username| {
            let out = Command::new(bin)
                .args(["--reset-user", username, "--data-dir"])
                .arg(dir)
                .output()
                .map_err(|e| format!("run {}: {e}", bin.display()))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let password = text
                .lines()
                .find_map(|l| l.split_once(": ").map(|(_, p)| p.trim().to_owned()))
                .ok_or_else(|| format!("--reset-user {username}: {text}"))?;
            Ok((username.clone(), password))
        })
        .collect()
}

pub async fn post(url: String, token: Option<&str>, body: Value, want: u16) -> Fallible<Value> {
    let mut request = reqwest::Client::new().post(&url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    if status != want {
        return Err(format!("{url}: {status} {text}"));
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Signs in with the temporary password, sets a real one, signs in again: (id, token).
pub async fn sign_in(addr: SocketAddr, username: &str, temporary: &str) -> Fallible<(i64, String)> {
    let login = |password: String| {
        post(
            format!("http://{addr}/api/login"),
            None,
            json!({"username": username, "password": password}),
            200,
        )
    };
    let first = login(temporary.to_owned()).await?;
    let token = first["token"].as_str().unwrap_or_default().to_owned();
    let password = format!("{username} benchmark password");
    post(
        format!("http://{addr}/api/me/password"),
        Some(&token),
        json!({"current_password": temporary, "new_password": password}),
        204,
    )
    .await?;
    let again = login(password).await?;
    let id = again["user"]["id"].as_i64().ok_or("no user id")?;
    Ok((id, again["token"].as_str().unwrap_or_default().to_owned()))
}
