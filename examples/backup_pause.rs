//! Measures what an online backup costs the people chatting: senders keep sending DMs (each
//! waits for its ack before the next) on a big database while `confab backup` runs through the
//! control socket; reports the longest wait for an ack and the longest time without any ack,
//! before and during the backup, then how long the backup and its verification took.
//!
//! ```text
//! cargo run --release --example bigdb -- DIR --messages 1000000
//! cargo run --release --example backup_pause -- DIR [--senders N] [--bin PATH]
//! ```
//!
//! DIR must be a stopped confab data directory whose users are named like bigdb's
//! (`user0001`, …): the first N get new passwords through `confab --reset-user`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

#[path = "common/server.rs"]
mod server;
use server::{Fallible, Server, reset_passwords, sign_in};

/// Time the senders run before the backup starts: the baseline.
const BASELINE: Duration = Duration::from_secs(5);
/// Time they keep running after it ended.
const AFTER: Duration = Duration::from_secs(2);

struct Args {
    dir: PathBuf,
    senders: usize,
    bin: PathBuf,
}

fn parse_args() -> Fallible<Args> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: backup_pause DIR [--senders N] [--bin PATH]")?;
    let mut parsed = Args {
        dir: PathBuf::from(dir),
        senders: 4,
        bin: PathBuf::from("target/release/confab"),
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--senders" => parsed.senders = value.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--bin" => parsed.bin = PathBuf::from(value),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(parse_args()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("backup_pause: {e}");
            ExitCode::FAILURE
        }
    }
}

/// (when the ack came, how long it took) for every message.
type Acks = Arc<Mutex<Vec<(Instant, Duration)>>>;

/// Sends DMs to `to` one after another, each after the previous one's ack, until `stop`.
async fn send_until(
    addr: SocketAddr,
    token: String,
    to: i64,
    stop: Arc<AtomicBool>,
    acks: Acks,
) -> Fallible<()> {
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?;
    request.headers_mut().insert("authorization", bearer);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .map_err(|e| e.to_string())?;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let client_id = format!("pause-{to}-{n}");
        let frame = json!({"type": "send", "to": to, "body": format!("during backup {n}"), "client_id": client_id});
        let sent = Instant::now();
        ws.send(Message::text(frame.to_string()))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let message = tokio::time::timeout(Duration::from_secs(60), ws.next())
                .await
                .map_err(|_| "no ack within 60 s")?
                .ok_or("socket closed")?
                .map_err(|e| e.to_string())?;
            let Message::Text(text) = message else {
                continue;
            };
            let frame: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
            if frame["client_id"] == client_id.as_str() {
                if frame["type"] != "ack" {
                    return Err(format!("not acked: {frame}"));
                }
                break;
            }
        }
        let now = Instant::now();
        acks.lock().map_err(|_| "lock")?.push((now, now - sent));
    }
    Ok(())
}

/// Longest ack wait and longest time without any ack, among acks in `from..to`.
fn worst(acks: &[(Instant, Duration)], from: Instant, to: Instant) -> (usize, Duration, Duration) {
    let mut window: Vec<&(Instant, Duration)> = acks
        .iter()
        .filter(|(at, _)| *at >= from && *at < to)
        .collect();
    window.sort_by_key(|(at, _)| *at);
    let longest_wait = window.iter().map(|(_, d)| *d).max().unwrap_or_default();
    let longest_gap = window
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .max()
        .unwrap_or_default();
    (window.len(), longest_wait, longest_gap)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn timed_cli(bin: &Path, args: &[&str], dir: &Path) -> Fallible<(Duration, String)> {
    let started = Instant::now();
    let out = Command::new(bin)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .map_err(|e| e.to_string())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!("confab {}: {text}", args.join(" ")));
    }
    Ok((started.elapsed(), text))
}

async fn run(args: Fallible<Args>) -> Fallible<()> {
    let args = args?;
    let usernames: Vec<String> = (1..=args.senders).map(|i| format!("user{i:04}")).collect();
    let passwords = reset_passwords(&args.bin, &args.dir, &usernames)?;
    let server = Server::start(&args.bin, &args.dir, &["--frame-rate", "100000"])?;
    let addr = server.addr;
    let mut users = Vec::new();
    for (username, password) in &passwords {
        users.push(sign_in(addr, username, password).await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let acks: Acks = Arc::default();
    let mut senders = Vec::new();
    for (i, (_, token)) in users.iter().enumerate() {
        let to = users[(i + 1) % users.len()].0;
        senders.push(tokio::spawn(send_until(
            addr,
            token.clone(),
            to,
            stop.clone(),
            acks.clone(),
        )));
    }
    let baseline_from = Instant::now();
    tokio::time::sleep(BASELINE).await;

    let file = args.dir.with_extension("pause-benchmark.backup");
    let file_arg = file.to_string_lossy().into_owned();
    let backup_from = Instant::now();
    let (bin, dir) = (args.bin.clone(), args.dir.clone());
    let backup_args = ["backup".to_owned(), file_arg.clone()];
    let (backup_time, backup_out) = tokio::task::spawn_blocking(move || {
        let backup_args: Vec<&str> = backup_args.iter().map(String::as_str).collect();
        timed_cli(&bin, &backup_args, &dir)
    })
    .await
    .map_err(|e| e.to_string())??;
    let backup_to = Instant::now();
    tokio::time::sleep(AFTER).await;
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.map_err(|e| e.to_string())??;
    }
    drop(server);

    let acks = acks.lock().map_err(|_| "lock")?.clone();
    let (n, wait, gap) = worst(&acks, baseline_from, backup_from);
    println!(
        "before the backup: {n} acks in {:.1} s, longest ack wait {}, longest time without an ack {}",
        BASELINE.as_secs_f64(),
        ms(wait),
        ms(gap)
    );
    let (n, wait, gap) = worst(&acks, backup_from, backup_to);
    println!(
        "during the backup: {n} acks in {:.1} s, longest ack wait {}, longest time without an ack {}",
        backup_time.as_secs_f64(),
        ms(wait),
        ms(gap)
    );
    print!("{backup_out}");
    let (verify_time, verify_out) =
        timed_cli(&args.bin, &["backup", "--verify", &file_arg], &args.dir)?;
    print!("{verify_out}");
    println!(
        "backup {:.1} s, verify {:.1} s",
        backup_time.as_secs_f64(),
        verify_time.as_secs_f64()
    );
    let _ = std::fs::remove_file(&file);
    Ok(())
}
