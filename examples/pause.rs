//! Measures what heavy work on the server costs the people chatting: senders keep sending DMs
//! (each waits for its ack before the next) on a big database while
//!
//! - `--during backup` (the default): `confab backup` runs through the control socket, then
//!   its verification; or
//! - `--during upload`: another user uploads `--uploads N` files of `--upload-mb M` MB (25, the
//!   default `--max-file-size`) one after another into a DM;
//!
//! and reports the senders' ack waits (p99, longest, and when it happened) and the longest time
//! without any ack, before and during that work.
//!
//! ```text
//! cargo run --release --example bigdb -- DIR --messages 1000000
//! cargo run --release --example pause -- DIR [--during backup|upload] [--senders N] [--rate R] [--bin PATH]
//! ```
//!
//! DIR must be a stopped confab data directory whose users are named like bigdb's
//! (`user0001`, …): the first N (and one uploader) get new passwords through
//! `confab --reset-user`.

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

/// Time they keep running after it ended.
const AFTER: Duration = Duration::from_secs(2);
/// When the heavy work began, for the server's log lines about it.
static WORK_STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

#[derive(Clone, Copy, PartialEq)]
enum During {
    Backup,
    Upload,
}

struct Args {
    dir: PathBuf,
    during: During,
    senders: usize,
    /// Messages per second per sender, evenly paced; unset: each sends again on its ack.
    rate: Option<f64>,
    uploads: usize,
    upload_mb: usize,
    /// How long the senders run before the heavy work starts: the baseline.
    baseline: Duration,
    bin: PathBuf,
}

const USAGE: &str = "usage: pause DIR [--during backup|upload] [--senders N] [--rate R] [--uploads N] [--upload-mb M] [--baseline-seconds S] [--bin PATH]";

fn parse_args() -> Fallible<Args> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or(USAGE)?;
    let mut parsed = Args {
        dir: PathBuf::from(dir),
        during: During::Backup,
        senders: 4,
        rate: None,
        uploads: 40,
        upload_mb: 25,
        baseline: Duration::from_secs(5),
        bin: PathBuf::from("target/release/confab"),
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--during" => {
                parsed.during = match value.as_str() {
                    "backup" => During::Backup,
                    "upload" => During::Upload,
                    _ => return Err(USAGE.to_owned()),
                }
            }
            "--senders" => parsed.senders = number()?,
            "--rate" => parsed.rate = Some(value.parse().map_err(|e| format!("{flag}: {e}"))?),
            "--uploads" => parsed.uploads = number()?,
            "--upload-mb" => parsed.upload_mb = number()?,
            "--baseline-seconds" => parsed.baseline = Duration::from_secs(number()? as u64),
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
            eprintln!("pause: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the server's log lines about the work (`SERVER_LOG=confab=debug` shows a backup's
/// phases) with the time since it began, next to the ack waits.
fn show_work_log(log: std::sync::mpsc::Receiver<String>) {
    std::thread::spawn(move || {
        for line in log {
            let about_work = line.contains("backup") || line.contains("upload");
            if let Some(from) = WORK_STARTED.get().filter(|_| about_work) {
                println!("  server at +{:.2} s: {line}", from.elapsed().as_secs_f64());
            }
        }
    });
}

/// (when the ack came, how long it took) for every message.
type Acks = Arc<Mutex<Vec<(Instant, Duration)>>>;

/// Sends DMs to `to` one after another, each after the previous one's ack (and, with a
/// `rate`, no sooner than its turn), until `stop`.
async fn send_until(
    addr: SocketAddr,
    token: String,
    to: i64,
    rate: Option<f64>,
    stop: Arc<AtomicBool>,
    acks: Acks,
) -> Fallible<()> {
    let mut turns = rate.map(|r| tokio::time::interval(Duration::from_secs_f64(1.0 / r)));
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
        if let Some(turns) = turns.as_mut() {
            turns.tick().await;
        }
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

/// What the senders saw among acks in `from..to`.
struct Window {
    acks: usize,
    p99_wait: Duration,
    longest_wait: Duration,
    /// When the longest wait ended, from `from`: which phase of the backup caused it.
    longest_at: Duration,
    longest_gap: Duration,
}

fn worst(acks: &[(Instant, Duration)], from: Instant, to: Instant) -> Window {
    let mut window: Vec<&(Instant, Duration)> = acks
        .iter()
        .filter(|(at, _)| *at >= from && *at < to)
        .collect();
    window.sort_by_key(|(at, _)| *at);
    let (longest_at, longest_wait) = window
        .iter()
        .max_by_key(|(_, d)| *d)
        .map_or((Duration::ZERO, Duration::ZERO), |(at, d)| (*at - from, *d));
    let mut waits: Vec<Duration> = window.iter().map(|(_, d)| *d).collect();
    waits.sort();
    let p99_wait = waits
        .get((waits.len() * 99 / 100).min(waits.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default();
    let longest_gap = window
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .max()
        .unwrap_or_default();
    Window {
        acks: window.len(),
        p99_wait,
        longest_wait,
        longest_at,
        longest_gap,
    }
}

fn report(label: &str, seconds: f64, w: &Window) {
    println!(
        "{label}: {} acks in {seconds:.1} s, ack wait p99 {} longest {} (at +{:.2} s), longest time without an ack {}",
        w.acks,
        ms(w.p99_wait),
        ms(w.longest_wait),
        w.longest_at.as_secs_f64(),
        ms(w.longest_gap)
    );
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
    let uploading = args.during == During::Upload;
    let count = args.senders + usize::from(uploading);
    let usernames: Vec<String> = (1..=count).map(|i| format!("user{i:04}")).collect();
    let passwords = reset_passwords(&args.bin, &args.dir, &usernames)?;
    let mut server = Server::start(&args.bin, &args.dir, &["--frame-rate", "100000"])?;
    let addr = server.addr;
    show_work_log(std::mem::replace(
        &mut server.log,
        std::sync::mpsc::channel().1,
    ));
    let mut users = Vec::new();
    for (username, password) in &passwords {
        users.push(sign_in(addr, username, password).await?);
    }
    let uploader = if uploading { users.pop() } else { None };
    let stop = Arc::new(AtomicBool::new(false));
    let acks: Acks = Arc::default();
    let mut senders = Vec::new();
    for (i, (_, token)) in users.iter().enumerate() {
        let to = users[(i + 1) % users.len()].0;
        senders.push(tokio::spawn(send_until(
            addr,
            token.clone(),
            to,
            args.rate,
            stop.clone(),
            acks.clone(),
        )));
    }
    let baseline_from = Instant::now();
    tokio::time::sleep(args.baseline).await;

    let body = upload_body(if uploading { args.upload_mb } else { 0 });
    let work_from = Instant::now();
    let _ = WORK_STARTED.set(work_from);
    let work = match uploader {
        Some(uploader) => upload(&args, addr, uploader, users[0].0, &body).await?,
        None => backup(&args).await?,
    };
    let work_to = Instant::now();
    tokio::time::sleep(AFTER).await;
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.map_err(|e| e.to_string())??;
    }
    drop(server);

    let acks = acks.lock().map_err(|_| "lock")?.clone();
    let before = worst(&acks, baseline_from, work_from);
    let during = worst(&acks, work_from, work_to);
    report("before", args.baseline.as_secs_f64(), &before);
    report(work.what, work.took.as_secs_f64(), &during);
    print!("{}", work.output);
    if uploading {
        let ratio = during.p99_wait.as_secs_f64() / before.p99_wait.as_secs_f64().max(1e-9);
        println!(
            "ack wait p99 during the uploads / before: {ratio:.2}x (target at most 2x): {}",
            if ratio <= 2.0 { "PASS" } else { "FAIL" }
        );
    } else {
        verify_backup(&args)?;
    }
    Ok(())
}

/// What the heavy work was, how long it took and what it printed.
struct Work {
    what: &'static str,
    took: Duration,
    output: String,
}

fn backup_file(args: &Args) -> PathBuf {
    args.dir.with_extension("pause-benchmark.backup")
}

async fn backup(args: &Args) -> Fallible<Work> {
    let (bin, dir) = (args.bin.clone(), args.dir.clone());
    let file = backup_file(args).to_string_lossy().into_owned();
    let (took, output) =
        tokio::task::spawn_blocking(move || timed_cli(&bin, &["backup", &file], &dir))
            .await
            .map_err(|e| e.to_string())??;
    Ok(Work {
        what: "during the backup",
        took,
        output,
    })
}

fn verify_backup(args: &Args) -> Fallible<()> {
    let file = backup_file(args);
    let file_arg = file.to_string_lossy();
    let (took, output) = timed_cli(&args.bin, &["backup", "--verify", &file_arg], &args.dir)?;
    print!("{output}");
    println!("verify {:.1} s", took.as_secs_f64());
    let _ = std::fs::remove_file(&file);
    Ok(())
}

/// `mb` MB of noise: not a picture, so the server streams it to disk without decoding.
fn upload_body(mb: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..mb * 1_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Uploads `--uploads` files of `body` into the uploader's DM with `to`, one after another,
/// as a browser does (raw body, bearer token). Each differs in its first bytes, so every one
/// is a new blob to write (blobs are content-addressed).
async fn upload(
    args: &Args,
    addr: SocketAddr,
    uploader: (i64, String),
    to: i64,
    body: &[u8],
) -> Fallible<Work> {
    let (me, token) = uploader;
    let conversation = format!("dm:{}:{}", me.min(to), me.max(to));
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/api/conversations/{conversation}/uploads?name=big.bin");
    let started = Instant::now();
    let mut each = Vec::new();
    for n in 0..args.uploads {
        let mut unique = body.to_vec();
        unique[..8].copy_from_slice(&(n as u64).to_le_bytes());
        let one = Instant::now();
        let response = client
            .post(&url)
            .bearer_auth(&token)
            .body(unique)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status().as_u16();
        if status != 201 {
            let text = response.text().await.unwrap_or_default();
            return Err(format!("upload: {status} {text}"));
        }
        each.push(one.elapsed());
    }
    let took = started.elapsed();
    let slowest = each.iter().max().copied().unwrap_or_default();
    Ok(Work {
        what: "during the uploads",
        took,
        output: format!(
            "{} uploads of {} MB in {:.1} s (slowest {}), {:.0} MB/s\n",
            args.uploads,
            args.upload_mb,
            took.as_secs_f64(),
            ms(slowest),
            (args.uploads * args.upload_mb) as f64 / took.as_secs_f64()
        ),
    })
}
