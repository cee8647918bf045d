//! The first harness's scenarios, kept as they were (docs/BENCHMARKS.md quotes them): they sign
//! users up through the admin API (argon2 hashes: 1,000 users take 65–90 s) and print their own
//! lines instead of a `Report`.
//!
//! - `dm`: N users send M DMs at once; throughput, ack latency and memory.
//! - `room-fanout`: every user is in one room and connected; a few senders post at a modest
//!   rate; the latency until the *last* member has each message, and the ack latency.
//! - `room-throughput`: many senders post into one busy room; acknowledged messages per second.
//! - `commit-cost`: DMs and sends into the big room, one at a time, alternately; the ack latency
//!   of each and their ratio.
//! - `rooms`: the three room scenarios in one run, sharing the users (sign-ups are the slow part).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{STALL, User, Ws, call, http, next_json, open_socket, sign_up_all};
use crate::server::{Launch, Server, cpu_time};
use crate::{Cli, Fallible};

/// The server allows 20 frames/s per connection with bursts of 60 (docs/PROTOCOL.md); the
/// senders stay just under it, so the offered load is at most users × 19 messages/s.
/// `--frame-rate N` raises both sides: the server's limit (its `--frame-rate`) and the
/// senders' pace, which stays just under it (N − 5 %, bursts of 2.75 N).
static FRAME_RATE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

fn client_rate() -> f64 {
    FRAME_RATE.get().map_or(19.0, |n| n * 0.95)
}

fn client_burst() -> f64 {
    FRAME_RATE.get().map_or(55.0, |n| n * 2.75)
}

use crate::Scenario;

/// Whether a run of `scenario` includes `part` (`rooms` is all three room scenarios).
fn includes(scenario: Scenario, part: Scenario) -> bool {
    scenario == part || (scenario == Scenario::Rooms && part != Scenario::Dm)
}

pub struct Args {
    scenario: Scenario,
    users: usize,
    messages: usize,
    idle: usize,
    window: usize,
    body_bytes: usize,
    bin: PathBuf,
    /// Room scenarios: users signed up, all members of the fan-out room.
    room_members: usize,
    fanout_senders: usize,
    /// Messages per second from all fan-out senders together.
    fanout_rate: usize,
    fanout_messages: usize,
    /// The busy room's members, every one of them sending.
    throughput_senders: usize,
    throughput_messages: usize,
    /// DMs, and as many room sends, in the commit-cost scenario.
    commit_messages: usize,
}

impl Args {
    /// This scenario's settings from the flags, with the first harness's defaults.
    pub fn from(cli: &Cli, scenario: Scenario) -> Args {
        if let Some(rate) = cli.frame_rate {
            let _ = FRAME_RATE.set(f64::from(rate.max(1)));
        }
        Args {
            scenario,
            users: cli.users.unwrap_or(100).max(2),
            messages: cli.messages.unwrap_or(20_000),
            idle: cli.idle_connections,
            window: cli.window.unwrap_or(8).max(1),
            body_bytes: cli.body_bytes.unwrap_or(100).clamp(1, 4000),
            bin: cli.bin.clone(),
            room_members: cli.room_members.max(2),
            fanout_senders: cli.fanout_senders.max(1),
            fanout_rate: cli.fanout_rate.max(1),
            fanout_messages: cli.fanout_messages,
            throughput_senders: cli.throughput_senders.max(2),
            throughput_messages: cli.throughput_messages,
            commit_messages: cli.commit_messages,
        }
    }

    fn launch(&self, max_connections: usize) -> Launch {
        Launch {
            bin: self.bin.clone(),
            max_connections,
            frame_rate: FRAME_RATE.get().map(|&r| r as u32),
        }
    }
}

fn work_dir() -> PathBuf {
    std::env::temp_dir()
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
    let mut credit = client_burst();
    let mut refilled = Instant::now();
    let mut progress = Instant::now();
    while acked < quota {
        credit = (credit + refilled.elapsed().as_secs_f64() * client_rate()).min(client_burst());
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
            Duration::from_secs_f64(((1.0 - credit).max(0.0) / client_rate()).max(0.001))
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

pub async fn run_dm(args: Args) -> Fallible<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut server = Server::start_fresh(&args.launch(args.users + args.idle + 64), &work_dir())?;
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

    let users = sign_up_all(&server, &http, args.users).await?;

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
    let ceiling = args.users as f64 * client_rate();
    let (rss_after, hwm_after) = server.memory()?;

    println!(
        "send:     {acked} acked in {:.2} s = {:.0} msg/s",
        elapsed.as_secs_f64(),
        acked as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
    );
    println!(
        "          (offered load is paced under the server's per-connection rate limit: a burst \
         of {:.0}, then {:.0}/s per connection = {ceiling:.0} msg/s sustained)",
        client_burst(),
        client_rate()
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

// Room scenarios. Every user keeps one connection whose reader task runs from connect to the
// end, so fan-out is consumed as fast as the harness can; the drivers write through the
// connections' sending halves and learn of acks from their readers.

/// Senders in the commit-cost scenario (even: user i's DM partner is user i xor 1), so each
/// sends well under its rate budget.
const COMMIT_SENDERS: usize = 10;
/// Seconds between scenarios, so every sender's rate budget is full again.
const REFILL: Duration = Duration::from_secs(3);

/// A tagged message frame's tag. Room scenario bodies start with `#<tag> `, so a reader knows
/// which send a frame carries without parsing it (a thousand readers share two cores with the
/// server). The server writes `type` first and the body once.
fn message_tag(text: &str) -> Option<u32> {
    let rest = text.strip_prefix("{\"type\":\"message\"")?;
    let rest = &rest[rest.find("\"body\":\"")? + 8..];
    let digits = rest.strip_prefix('#')?;
    let end = digits.find(|c: char| !c.is_ascii_digit())?;
    digits[..end].parse().ok()
}

/// An `ack` or an `error` for one of a connection's sends, stamped when its reader saw it.
struct Reply {
    client_id: String,
    at: Instant,
    /// `None` for an ack, else the error code.
    error: Option<String>,
}

/// Tagged message frames seen by all readers.
#[derive(Default)]
struct Arrivals {
    seen: StdMutex<Vec<(u32, Instant)>>,
    count: AtomicUsize,
    /// Off while only the count matters.
    record: AtomicBool,
}

impl Arrivals {
    fn take(&self) -> Vec<(u32, Instant)> {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The client side of the server's per-connection rate limit, a token bucket.
struct Pacer {
    credit: f64,
    refilled: Instant,
}

impl Pacer {
    fn new() -> Pacer {
        Pacer {
            credit: client_burst(),
            refilled: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let gained = now.duration_since(self.refilled).as_secs_f64() * client_rate();
        self.credit = (self.credit + gained).min(client_burst());
        self.refilled = now;
    }

    async fn take(&mut self) {
        self.refill();
        if self.credit < 1.0 {
            let wait = (1.0 - self.credit) / client_rate();
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            self.refill();
        }
        self.credit -= 1.0;
    }
}

/// One user's connection: its writing half, and the acks and errors its reader passes on.
struct Member {
    id: i64,
    sink: SplitSink<Ws, Message>,
    replies: tokio::sync::mpsc::UnboundedReceiver<Reply>,
    /// Ends with why the connection ended, or `None` when told to stop.
    reader: tokio::task::JoinHandle<Option<String>>,
    pacer: Pacer,
}

impl Member {
    /// Sends a frame within the rate budget; returns when it was written.
    async fn send(&mut self, frame: Value) -> Fallible<Instant> {
        let text = frame.to_string();
        self.pacer.take().await;
        let at = Instant::now();
        self.sink
            .send(Message::text(text))
            .await
            .map_err(|e| format!("send: {e}"))?;
        Ok(at)
    }

    /// The next ack or error; an error if the connection ended or nothing came.
    async fn reply(&mut self) -> Fallible<Reply> {
        match tokio::time::timeout(STALL, self.replies.recv()).await {
            Ok(Some(reply)) if reply.client_id.is_empty() => Err(format!(
                "user {}: connection ended: {}",
                self.id,
                reply.error.unwrap_or_default()
            )),
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => Err(format!("user {}: connection ended", self.id)),
            Err(_) => Err(format!("user {}: no ack within {STALL:?}", self.id)),
        }
    }
}

/// Reads one connection until told to stop; returns why it ended otherwise, and tells the
/// driver too (a reply without a client id).
async fn read_frames(
    stream: SplitStream<Ws>,
    replies: tokio::sync::mpsc::UnboundedSender<Reply>,
    arrivals: Arc<Arrivals>,
    stop: watch::Receiver<bool>,
) -> Option<String> {
    let ended = read_until_stopped(stream, &replies, arrivals, stop).await;
    if let Some(reason) = &ended {
        let _ = replies.send(Reply {
            client_id: String::new(),
            at: Instant::now(),
            error: Some(reason.clone()),
        });
    }
    ended
}

async fn read_until_stopped(
    mut stream: SplitStream<Ws>,
    replies: &tokio::sync::mpsc::UnboundedSender<Reply>,
    arrivals: Arc<Arrivals>,
    mut stop: watch::Receiver<bool>,
) -> Option<String> {
    loop {
        let next = tokio::select! {
            _ = stop.changed() => return None,
            next = stream.next() => next,
        };
        let text = match next {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => return Some(format!("server closed: {frame:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Some(format!("WebSocket error: {e}")),
            None => return Some("WebSocket ended".to_owned()),
        };
        let at = Instant::now();
        if let Some(tag) = message_tag(text.as_str()) {
            if arrivals.record.load(Ordering::Relaxed) {
                arrivals
                    .seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((tag, at));
            }
            arrivals.count.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
            return Some(format!("bad frame: {text}"));
        };
        let error = match frame["type"].as_str() {
            Some("ack") => None,
            Some("error") => Some(frame["code"].as_str().unwrap_or("?").to_owned()),
            _ => continue,
        };
        let client_id = frame["client_id"].as_str().unwrap_or_default().to_owned();
        let _ = replies.send(Reply {
            client_id,
            at,
            error,
        });
    }
}

fn tag_of(client_id: &str) -> Option<u32> {
    client_id.strip_prefix('t')?.parse().ok()
}

/// Waits until the readers have seen `expected` tagged messages since the start, or nothing
/// new arrived for `STALL`; returns how many they saw.
async fn await_deliveries(arrivals: &Arrivals, expected: usize) -> usize {
    let mut last = arrivals.count.load(Ordering::Relaxed);
    let mut progress = Instant::now();
    loop {
        let now = arrivals.count.load(Ordering::Relaxed);
        if now >= expected {
            return now;
        }
        if now != last {
            last = now;
            progress = Instant::now();
        } else if progress.elapsed() > STALL {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn latency_line(sorted: &[Duration]) -> String {
    format!(
        "p50 {}, p95 {}, p99 {}, max {} (n = {})",
        ms(percentile(sorted, 50.0)),
        ms(percentile(sorted, 95.0)),
        ms(percentile(sorted, 99.0)),
        ms(sorted.last().copied().unwrap_or_default()),
        sorted.len()
    )
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

/// What the room scenarios share: the server, every user's connection, the readers' log.
struct Rooms {
    server: Server,
    http: reqwest::Client,
    users: Vec<User>,
    members: Vec<Member>,
    arrivals: Arc<Arrivals>,
    next_tag: u32,
    body: String,
    /// Broken expectations (missing acks or deliveries); reported at the end, fail the run.
    problems: Vec<String>,
}

impl Rooms {
    fn tags(&mut self, n: usize) -> u32 {
        let first = self.next_tag;
        self.next_tag += n as u32;
        first
    }

    fn room_send(&self, room: &str, tag: u32) -> Value {
        json!({"type": "send", "conversation": room, "body": format!("#{tag} {}", self.body),
               "client_id": format!("t{tag}")})
    }

    fn dm_send(&self, to: i64, tag: u32) -> Value {
        json!({"type": "send", "to": to, "body": format!("#{tag} {}", self.body),
               "client_id": format!("t{tag}")})
    }

    /// A private room created by user 0 with users 1..n: n members.
    async fn create_room(&self, name: &str, n: usize) -> Fallible<String> {
        let others: Vec<i64> = self.users[1..n].iter().map(|u| u.id).collect();
        let room = call(
            self.http
                .post(self.server.url("/api/rooms"))
                .bearer_auth(&self.users[0].token)
                .json(&json!({"name": name, "visibility": "private", "members": others})),
            201,
            "create room",
        )
        .await?;
        if room["member_count"].as_u64() != Some(n as u64) {
            return Err(format!("room {name} has {} members", room["member_count"]));
        }
        room["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("create room answered no id: {room}"))
    }

    fn rss(&self) -> String {
        self.server.memory().map_or_else(
            |e| e,
            |(rss, hwm)| format!("RSS {} (peak {})", mib(rss), mib(hwm)),
        )
    }

    /// CPU used so far by the server and by this load generator.
    fn cpu(&self) -> (Duration, Duration) {
        (
            cpu_time(&self.server.child.id().to_string()),
            cpu_time("self"),
        )
    }

    /// CPU used since `before`, in all and per message: the figure the shared cores cannot
    /// blur, unlike latency.
    fn cpu_since(&self, before: (Duration, Duration), messages: usize) -> String {
        let (server, harness) = self.cpu();
        let server = server.saturating_sub(before.0);
        let harness = harness.saturating_sub(before.1);
        let per = |d: Duration| d.as_secs_f64() * 1000.0 / messages.max(1) as f64;
        format!(
            "CPU: server {:.2} s ({:.2} ms per message), load generator {:.2} s ({:.2} ms per \
             message)",
            server.as_secs_f64(),
            per(server),
            harness.as_secs_f64(),
            per(harness)
        )
    }

    fn check_connections(&mut self, scenario: &str) {
        let closed = self
            .members
            .iter()
            .filter(|m| m.reader.is_finished())
            .count();
        if closed > 0 {
            self.problems.push(format!(
                "{scenario}: {closed} connections ended (reasons at the end)"
            ));
        }
    }
}

/// A few senders post at a modest rate into the room everyone is in; for each message, the
/// time from its send to its arrival at the last member, and the time to its ack.
async fn room_fanout(ctx: &mut Rooms, args: &Args, room: &str) -> Fallible<()> {
    let n = args.fanout_messages;
    let senders = args.fanout_senders;
    let recipients = ctx.members.len() - 1;
    println!(
        "\nroom-fanout: {n} messages at {}/s from {senders} senders into {room} ({} members, \
         one connection each); every other member gets each one",
        args.fanout_rate,
        ctx.members.len()
    );
    let first = ctx.tags(n);
    let expected = ctx.arrivals.count.load(Ordering::Relaxed) + n * recipients;
    ctx.arrivals.record.store(true, Ordering::Relaxed);
    let cpu = ctx.cpu();
    let mut sent_at = vec![None; n];
    let mut acks = Vec::with_capacity(n);
    let mut errors = Vec::new();
    let mut record = |reply: Reply, sent_at: &[Option<Instant>]| {
        let sent = tag_of(&reply.client_id).and_then(|t| {
            sent_at
                .get(t.checked_sub(first)? as usize)
                .copied()
                .flatten()
        });
        match (reply.error, sent) {
            (None, Some(sent)) => acks.push(reply.at.duration_since(sent)),
            (error, _) => errors.push(format!("{}: {error:?}", reply.client_id)),
        }
    };
    let interval = Duration::from_secs_f64(1.0 / args.fanout_rate as f64);
    let start = tokio::time::Instant::now();
    let mut answered = vec![0; senders];
    for k in 0..n {
        tokio::time::sleep_until(start + interval * k as u32).await;
        let frame = ctx.room_send(room, first + k as u32);
        sent_at[k] = Some(ctx.members[k % senders].send(frame).await?);
        for (s, member) in ctx.members[..senders].iter_mut().enumerate() {
            while let Ok(reply) = member.replies.try_recv() {
                answered[s] += 1;
                record(reply, &sent_at);
            }
        }
    }
    for (s, member) in ctx.members[..senders].iter_mut().enumerate() {
        let sent = (0..n).filter(|k| k % senders == s).count();
        while answered[s] < sent {
            answered[s] += 1;
            record(member.reply().await?, &sent_at);
        }
    }
    let seen = await_deliveries(&ctx.arrivals, expected).await;
    ctx.arrivals.record.store(false, Ordering::Relaxed);
    let mut last = vec![(0usize, None::<Instant>); n];
    for (tag, at) in ctx.arrivals.take() {
        if let Some(slot) = tag
            .checked_sub(first)
            .and_then(|i| last.get_mut(i as usize))
        {
            slot.0 += 1;
            slot.1 = slot.1.max(Some(at));
        }
    }
    let mut last_member = Vec::with_capacity(n);
    let mut incomplete = 0;
    for (k, &(count, at)) in last.iter().enumerate() {
        match (count == recipients, at, sent_at[k]) {
            (true, Some(at), Some(sent)) => last_member.push(at.duration_since(sent)),
            _ => incomplete += 1,
        }
    }
    last_member.sort_unstable();
    acks.sort_unstable();
    let delivered: usize = last.iter().map(|l| l.0).sum();
    println!(
        "  acked {} of {n}; delivered {delivered} of {} ({recipients} per message); \
         server {}",
        acks.len(),
        n * recipients,
        ctx.rss()
    );
    let p99 = percentile(&last_member, 99.0);
    println!("  last member: {}", latency_line(&last_member));
    println!("  ack:         {}", latency_line(&acks));
    println!("  {}", ctx.cpu_since(cpu, n));
    println!(
        "  target: last-member p99 <= 50 ms: {} ({})",
        verdict(p99 <= Duration::from_millis(50) && incomplete == 0),
        ms(p99)
    );
    if !errors.is_empty() || incomplete > 0 || seen < expected {
        ctx.problems.push(format!(
            "room-fanout: {} errors (first: {:?}), {incomplete} messages not delivered to \
             every member",
            errors.len(),
            errors.first()
        ));
    }
    ctx.check_connections("room-fanout");
    Ok(())
}

/// DMs and sends into the big room, alternately, one at a time: each waits for the previous
/// one's ack and for its delivery to every recipient, so the two see the same light load.
async fn commit_cost(ctx: &mut Rooms, args: &Args, room: &str) -> Fallible<()> {
    let n = args.commit_messages;
    let recipients = ctx.members.len() - 1;
    println!(
        "\ncommit-cost: {n} DMs and {n} sends into {room} ({} members), alternately, one at a \
         time (closed loop, each after the previous one reached everyone), from {COMMIT_SENDERS} \
         senders",
        ctx.members.len()
    );
    let first = ctx.tags(2 * n);
    let mut expected = ctx.arrivals.count.load(Ordering::Relaxed);
    let cpu = ctx.cpu();
    let (mut dm, mut in_room) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for k in 0..2 * n {
        let seen = await_deliveries(&ctx.arrivals, expected).await;
        if seen < expected {
            return Err(format!(
                "commit-cost: {} deliveries missing",
                expected - seen
            ));
        }
        let sender = (k / 2) % COMMIT_SENDERS;
        let tag = first + k as u32;
        let is_dm = k % 2 == 0;
        let frame = if is_dm {
            ctx.dm_send(ctx.members[sender ^ 1].id, tag)
        } else {
            ctx.room_send(room, tag)
        };
        let member = &mut ctx.members[sender];
        let sent = member.send(frame).await?;
        let reply = member.reply().await?;
        if reply.error.is_some() || tag_of(&reply.client_id) != Some(tag) {
            return Err(format!(
                "commit-cost: expected the ack of t{tag}, got {} {:?}",
                reply.client_id, reply.error
            ));
        }
        let latency = reply.at.duration_since(sent);
        if is_dm {
            dm.push(latency);
            expected += 1;
        } else {
            in_room.push(latency);
            expected += recipients;
        }
    }
    await_deliveries(&ctx.arrivals, expected).await;
    let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len().max(1) as u32;
    let (dm_mean, room_mean) = (mean(&dm), mean(&in_room));
    dm.sort_unstable();
    in_room.sort_unstable();
    let ratio =
        |p: f64| percentile(&in_room, p).as_secs_f64() / percentile(&dm, p).as_secs_f64().max(1e-9);
    println!(
        "  {} (DMs and room sends together)",
        ctx.cpu_since(cpu, 2 * n)
    );
    println!("  DM ack:   {}, mean {}", latency_line(&dm), ms(dm_mean));
    println!(
        "  room ack: {}, mean {}",
        latency_line(&in_room),
        ms(room_mean)
    );
    let mean_ratio = room_mean.as_secs_f64() / dm_mean.as_secs_f64().max(1e-9);
    println!(
        "  room / DM: p50 {:.2}x, p95 {:.2}x, p99 {:.2}x, mean {mean_ratio:.2}x; server {}",
        ratio(50.0),
        ratio(95.0),
        ratio(99.0),
        ctx.rss()
    );
    println!(
        "  target: room <= 2x DM (p50 and mean): {}",
        verdict(ratio(50.0) <= 2.0 && mean_ratio <= 2.0)
    );
    ctx.check_connections("commit-cost");
    Ok(())
}

/// What one sender of the busy room measured.
struct Posted {
    latencies: Vec<Duration>,
    /// Why the connection ended before every send was acked.
    ended: Option<String>,
    rate_limited: usize,
    first_send: Option<Instant>,
    last_ack: Option<Instant>,
}

/// Posts `quota` messages into `room` with at most `window` unacked, paced under the rate limit.
async fn post_share(
    mut member: Member,
    room: Arc<str>,
    first: u32,
    quota: usize,
    window: usize,
    body: Arc<str>,
) -> Fallible<(Member, Posted)> {
    let mut out = Posted {
        latencies: Vec::with_capacity(quota),
        ended: None,
        rate_limited: 0,
        first_send: None,
        last_ack: None,
    };
    let mut pending: HashMap<u32, Instant> = HashMap::new();
    let mut retry = Vec::new();
    let mut next = first;
    let end = first + quota as u32;
    loop {
        while pending.len() < window && (next < end || !retry.is_empty()) {
            let tag = retry.pop().unwrap_or_else(|| {
                next += 1;
                next - 1
            });
            let frame = json!({"type": "send", "conversation": &*room,
                               "body": format!("#{tag} {body}"), "client_id": format!("t{tag}")});
            let at = match member.send(frame).await {
                Ok(at) => at,
                Err(e) => {
                    out.ended = Some(e);
                    return Ok((member, out));
                }
            };
            out.first_send.get_or_insert(at);
            pending.insert(tag, at);
        }
        if pending.is_empty() {
            return Ok((member, out));
        }
        let reply = match member.reply().await {
            Ok(reply) => reply,
            Err(e) => {
                out.ended = Some(e);
                return Ok((member, out));
            }
        };
        let Some(sent) = tag_of(&reply.client_id).and_then(|t| pending.remove(&t)) else {
            return Err(format!(
                "unexpected reply {} {:?}",
                reply.client_id, reply.error
            ));
        };
        match reply.error.as_deref() {
            None => {
                out.latencies.push(reply.at.duration_since(sent));
                out.last_ack = Some(reply.at);
            }
            Some("rate_limited") => {
                out.rate_limited += 1;
                retry.extend(tag_of(&reply.client_id));
                member.pacer.credit = 0.0;
            }
            Some(code) => return Err(format!("send {}: {code}", reply.client_id)),
        }
    }
}

/// Every member of one room sends at once; acknowledged messages per second.
async fn room_throughput(ctx: &mut Rooms, args: &Args) -> Fallible<()> {
    let senders = args.throughput_senders;
    let n = args.throughput_messages;
    let room: Arc<str> = ctx.create_room("busy", senders).await?.into();
    let recipients = senders - 1;
    println!(
        "\nroom-throughput: {n} messages into {room} from all of its {senders} members at once, \
         window {} per connection (offered at most a burst of {:.0} then {:.0}/s \
         per sender = {:.0} msg/s sustained)",
        args.window,
        client_burst(),
        client_rate(),
        senders as f64 * client_rate()
    );
    let first = ctx.tags(n);
    let expected = ctx.arrivals.count.load(Ordering::Relaxed) + n * recipients;
    let body: Arc<str> = ctx.body.clone().into();
    let cpu = ctx.cpu();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(senders);
    let mut tag = first;
    for (i, member) in ctx.members.drain(..senders).enumerate() {
        let quota = n / senders + usize::from(i < n % senders);
        tasks.push(tokio::spawn(post_share(
            member,
            room.clone(),
            tag,
            quota,
            args.window,
            body.clone(),
        )));
        tag += quota as u32;
    }
    let mut returned = Vec::with_capacity(senders);
    let mut latencies = Vec::with_capacity(n);
    let (mut rate_limited, mut first_send, mut last_ack) = (0, None::<Instant>, started);
    let mut failed = None;
    let mut ended = Vec::new();
    for task in tasks {
        match task.await.map_err(|e| e.to_string())? {
            Ok((member, posted)) => {
                returned.push(member);
                ended.extend(posted.ended);
                latencies.extend(posted.latencies);
                rate_limited += posted.rate_limited;
                first_send = match (first_send, posted.first_send) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                last_ack = last_ack.max(posted.last_ack.unwrap_or(started));
            }
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    if let Some(e) = failed {
        return Err(format!("room-throughput: {e}"));
    }
    ctx.members.splice(0..0, returned);
    let acked = latencies.len();
    let elapsed = last_ack.duration_since(first_send.unwrap_or(started));
    let seen = await_deliveries(&ctx.arrivals, expected).await;
    let delivered_in = started.elapsed();
    let delivered = seen + n * recipients - expected;
    latencies.sort_unstable();
    let rate = acked as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
    println!(
        "  acked {acked} in {:.2} s = {rate:.0} msg/s; {rate_limited} rate_limited (retried)",
        elapsed.as_secs_f64()
    );
    println!(
        "  delivered {delivered} of {} ({recipients} per message), the last {:.2} s after the \
         first send; server {}",
        n * recipients,
        delivered_in.as_secs_f64(),
        ctx.rss()
    );
    println!("  ack: {}", latency_line(&latencies));
    println!("  {}", ctx.cpu_since(cpu, acked));
    if !ended.is_empty() {
        println!(
            "  {} of {senders} senders' connections ended; first: {}",
            ended.len(),
            ended[0]
        );
    }
    println!(
        "  target: >= 5,000 msg/s acked: {} ({rate:.0} msg/s)",
        verdict(rate >= 5000.0)
    );
    if acked != n || delivered != n * recipients {
        ctx.problems.push(format!(
            "room-throughput: {acked} of {n} acked, {delivered} of {} delivered",
            n * recipients
        ));
    }
    ctx.check_connections("room-throughput");
    Ok(())
}

pub async fn run_rooms(args: Args) -> Fallible<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let needed = args.fanout_senders.max(args.throughput_senders);
    if args.room_members < needed {
        return Err(format!(
            "--room-members must be at least {needed} (the senders are members)"
        ));
    }
    let server = Server::start_fresh(&args.launch(args.room_members + 64), &work_dir())?;
    let http = http()?;
    let health = call(http.get(server.url("/healthz")), 200, "healthz").await?;
    println!("confab load test: room scenarios");
    println!(
        "server:   {} ({}) on {}, {cores} cores",
        args.bin.display(),
        health["version"].as_str().unwrap_or("?"),
        server.addr
    );
    let users = sign_up_all(&server, &http, args.room_members).await?;
    let arrivals = Arc::new(Arrivals::default());
    let (stop, stopped) = watch::channel(false);
    let opened = Instant::now();
    let mut members = Vec::with_capacity(users.len());
    for user in &users {
        let (sink, stream) = open_socket(server.addr, &user.token).await?.split();
        let (tx, replies) = tokio::sync::mpsc::unbounded_channel();
        let reader = tokio::spawn(read_frames(stream, tx, arrivals.clone(), stopped.clone()));
        members.push(Member {
            id: user.id,
            sink,
            replies,
            reader,
            pacer: Pacer::new(),
        });
    }
    println!(
        "connect:  {} WebSockets open (each got its hello) in {:.1} s",
        members.len(),
        opened.elapsed().as_secs_f64()
    );
    let mut ctx = Rooms {
        server,
        http,
        users,
        members,
        arrivals,
        next_tag: 1,
        body: "x".repeat(args.body_bytes),
        problems: Vec::new(),
    };
    println!("server:   {}", ctx.rss());

    let big = if includes(args.scenario, Scenario::RoomFanout)
        || includes(args.scenario, Scenario::CommitCost)
    {
        Some(ctx.create_room("everyone", args.room_members).await?)
    } else {
        None
    };
    if let (true, Some(room)) = (includes(args.scenario, Scenario::RoomFanout), &big) {
        tokio::time::sleep(REFILL).await;
        room_fanout(&mut ctx, &args, room).await?;
    }
    if let (true, Some(room)) = (includes(args.scenario, Scenario::CommitCost), &big) {
        tokio::time::sleep(REFILL).await;
        commit_cost(&mut ctx, &args, room).await?;
    }
    if includes(args.scenario, Scenario::RoomThroughput) {
        tokio::time::sleep(REFILL).await;
        room_throughput(&mut ctx, &args).await?;
    }

    let _ = stop.send(true);
    let mut ended = Vec::new();
    for member in ctx.members.drain(..) {
        if let Ok(Some(reason)) = member.reader.await {
            ended.push(reason);
        }
    }
    println!("\nstop:     {}", ctx.server.stop());
    if !ended.is_empty() {
        ctx.problems.push(format!(
            "{} connections ended early; first: {}",
            ended.len(),
            ended[0]
        ));
    }
    if ctx.problems.is_empty() {
        Ok(())
    } else {
        Err(ctx.problems.join("; "))
    }
}
