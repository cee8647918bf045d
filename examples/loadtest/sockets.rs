//! Memory and connections: `idle-start` (a server nobody uses), `idle-sockets` (what an idle
//! authenticated WebSocket costs), `connect-storm` (everyone reconnects at once) and `soak`
//! (an office's day, compressed: DMs, typing, people coming and going).
//!
//! Many sockets share few users (sign-ups are not what these measure): socket k belongs to
//! user k mod users. Every socket keeps a reader, as a browser would, so presence frames are
//! consumed and pings answered.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{
    ADMIN_PASSWORD, Frame, User, Ws, call, classify, http, open_socket, server_version, setup,
};
use crate::report::{CpuMeter, Latency, Report, figure, mb, thousands};
use crate::server::{Server, ensure_fd_limit, proc_memory};
use crate::{Ctx, Fallible, fixture};

/// The server closes its search index writer after this long without an update (60 s), and
/// with it the writer's files: fds are compared with the baseline once it has.
const INDEX_WRITER_IDLE: Duration = Duration::from_secs(65);

fn users_spec(users: usize) -> fixture::Spec {
    fixture::Spec {
        users,
        sessions: users,
        messages: 0,
        body_bytes: 0,
    }
}

/// Keeps a socket open and read until told to stop; returns why it ended otherwise.
async fn hold(
    mut ws: Ws,
    mut stop: watch::Receiver<bool>,
    frames: Arc<AtomicU64>,
) -> Option<String> {
    loop {
        tokio::select! {
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                return None;
            }
            next = ws.next() => match next {
                Some(Ok(Message::Close(frame))) => return Some(format!("server closed: {frame:?}")),
                Some(Ok(_)) => {
                    frames.fetch_add(1, Ordering::Relaxed);
                }
                Some(Err(e)) => return Some(format!("WebSocket error: {e}")),
                None => return Some("WebSocket ended".to_owned()),
            }
        }
    }
}

/// A server that has done its first hashes and now sits idle.
pub struct Idle {
    server: Server,
    version: String,
    at_start: u64,
    after_hashing: u64,
    bin: String,
}

/// RSS of a server nobody uses: at start, after a few password hashes (argon2's working
/// memory), and after a quiet spell with no hashing.
pub async fn idle_start(ctx: &Ctx) -> Fallible<Report> {
    let wait = ctx.cli.idle_wait.unwrap_or(65);
    let idle = idle_prepare(ctx).await?;
    idle_wait(wait).await;
    Ok(idle_finish(idle, wait))
}

/// Both binaries' idle-start, waiting once for the two (they are idle, so they do not disturb
/// each other's memory): the suite's way of not paying the wait twice.
pub async fn idle_start_pair(a: &Ctx, b: &Ctx) -> (Fallible<Report>, Fallible<Report>) {
    let wait = b.cli.idle_wait.unwrap_or(65);
    let first = idle_prepare(a).await;
    let second = idle_prepare(b).await;
    idle_wait(wait).await;
    (
        first.map(|idle| idle_finish(idle, wait)),
        second.map(|idle| idle_finish(idle, wait)),
    )
}

async fn idle_wait(wait: u64) {
    if wait > 0 {
        println!("  idle-start: waiting {wait} s with no hashing (--idle-wait)");
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
}

async fn idle_prepare(ctx: &Ctx) -> Fallible<Idle> {
    let server = Server::start_fresh(&ctx.launch(64, None), &ctx.work_dir)?;
    let version = server_version(&server).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let at_start = server.rss_kib();
    let http = http()?;
    setup(&server, &http).await?;
    // Two logins at once: one hash on each of the server's two hashing threads.
    let login = || {
        call(
            http.post(server.url("/api/login"))
                .json(&json!({"username": "admin", "password": ADMIN_PASSWORD})),
            200,
            "login",
        )
    };
    let (a, b) = tokio::join!(login(), login());
    a?;
    b?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_hashing = server.rss_kib();
    Ok(Idle {
        server,
        version,
        at_start,
        after_hashing,
        bin: ctx.bin.display().to_string(),
    })
}

fn idle_finish(idle: Idle, wait: u64) -> Report {
    let load = format!(
        "no clients; first-run setup and two logins at once (3 argon2 hashes), then {wait} s \
         without hashing"
    );
    let mut report = Report::new("idle-start", &idle.server, &idle.version, load);
    report.bin = idle.bin;
    let rss = report.rss_kib;
    let (anon, file) = idle.server.rss_by_kind_kib();
    report.detail(
        &format!("RSS after {wait} s, by kind"),
        format!(
            "{:.1} MB anonymous (what the server allocated), {:.1} MB file-backed (the program's \
             code and libraries as mapped)",
            mb(anon),
            mb(file)
        ),
    );
    report
        .figures
        .push(figure("RSS at start", mb(idle.at_start), "MB"));
    report
        .figures
        .push(figure("RSS after hashing", mb(idle.after_hashing), "MB"));
    let after = figure(
        &format!("RSS after {wait} s without hashing"),
        mb(rss),
        "MB",
    );
    report.figures.push(if wait >= 60 {
        after.target("≤ 15 MB once no hash ran for 60 s", mb(rss) <= 15.0)
    } else {
        after
    });
    report
}

/// Opens `count` sockets, `concurrency` at a time, each holding on afterwards; reports each
/// one's connect → hello time. Socket k belongs to `users[k % users.len()]`.
struct Opened {
    latency: Latency,
    failures: u64,
    first_failure: Option<String>,
    /// From the first connect to the last hello.
    took: Duration,
    holders: Vec<tokio::task::JoinHandle<Option<String>>>,
}

async fn open_many(
    server: &Server,
    users: &[User],
    count: usize,
    concurrency: usize,
    stop: &watch::Receiver<bool>,
    frames: &Arc<AtomicU64>,
) -> Opened {
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    let mut holders = Vec::with_capacity(count);
    for k in 0..count {
        let (gate, tx, stop, frames) = (gate.clone(), tx.clone(), stop.clone(), frames.clone());
        let token = users[k % users.len()].token.clone();
        let addr = server.addr;
        holders.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.ok();
            let at = Instant::now();
            let opened = open_socket(addr, &token).await;
            let done = Instant::now();
            drop(permit);
            match opened {
                Ok(ws) => {
                    let _ = tx.send(Ok((done.duration_since(at), done)));
                    hold(ws, stop, frames).await
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    None
                }
            }
        }));
    }
    drop(tx);
    let mut out = Opened {
        latency: Latency::default(),
        failures: 0,
        first_failure: None,
        took: Duration::ZERO,
        holders,
    };
    let mut last = started;
    for _ in 0..count {
        match rx.recv().await {
            Some(Ok((latency, done))) => {
                out.latency.record(latency);
                last = last.max(done);
            }
            Some(Err(e)) => {
                out.failures += 1;
                out.first_failure.get_or_insert(e);
            }
            None => break,
        }
    }
    out.took = last.duration_since(started);
    out
}

async fn close_all(
    stop: watch::Sender<bool>,
    holders: Vec<tokio::task::JoinHandle<Option<String>>>,
) -> Vec<String> {
    let _ = stop.send(true);
    let mut ended = Vec::new();
    for h in holders {
        if let Ok(Some(reason)) = h.await {
            ended.push(reason);
        }
    }
    ended
}

/// RSS per idle authenticated WebSocket.
pub async fn idle_sockets(ctx: &Ctx) -> Fallible<Report> {
    let sockets = ctx.cli.sockets.unwrap_or(10_000);
    let users = ctx
        .cli
        .users
        .unwrap_or(1000)
        .min(sockets.saturating_sub(1))
        .max(1);
    let concurrency = ctx.cli.concurrency.unwrap_or(64);
    ensure_fd_limit(sockets as u64 + 512)?;
    let launch = ctx.launch(sockets + 64, None);
    let (server, list) = ctx.start_prepared(&users_spec(users), &launch)?;
    let version = server_version(&server).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let empty = server.rss_kib();
    let load = format!(
        "{} idle WebSockets of {} users ({} each), opened {concurrency} at a time, each waits for its hello \
         and keeps reading; per socket: the RSS growth while the sockets after each user's first \
         are opened (the users are online by then, so it is the socket's cost, not presence)",
        thousands(sockets as f64),
        thousands(users as f64),
        sockets.div_ceil(users)
    );
    let mut report = Report::new("idle-sockets", &server, &version, load);
    let (stop, stopped) = watch::channel(false);
    let frames = Arc::new(AtomicU64::new(0));
    let first = open_many(&server, &list, users, concurrency, &stopped, &frames).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = server.rss_kib();
    let cpu = CpuMeter::start(&server);
    let rest = sockets - users;
    let opened = open_many(&server, &list, rest, concurrency, &stopped, &frames).await;
    report.cpu(cpu.read(), rest as u64);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server.rss_kib();
    report.memory(&server);
    report.latency_of = format!("connect → hello ({concurrency} at a time)");
    report.latency = Some(opened.latency.summary());
    report.throughput_per_s = Some(rest as f64 / opened.took.as_secs_f64().max(1e-9));
    let open = (rest as u64).saturating_sub(opened.failures);
    let per = after.saturating_sub(before) as f64 / open.max(1) as f64;
    let all = after.saturating_sub(empty) as f64 / sockets.max(1) as f64;
    report.detail(
        "server RSS",
        format!(
            "{:.1} MB with no socket, {:.1} MB with each user's first ({}), {:.1} MB with all \
             {} open ({all:.1} KiB per socket counting the first ones); fds {}",
            mb(empty),
            mb(before),
            thousands(users as f64),
            mb(after),
            thousands(sockets as f64),
            server.fds()
        ),
    );
    report
        .figures
        .push(figure("RSS per idle socket", per, "KiB").target("≤ 6 KB", per * 1024.0 <= 6000.0));
    let total = figure("RSS with all sockets open", mb(after), "MB");
    report.figures.push(if sockets == 10_000 {
        total.target("≤ 75 MB for 10,000", mb(after) <= 75.0)
    } else {
        total
    });
    let failures = first.failures + opened.failures;
    if failures > 0 {
        report.problems.push(format!(
            "{failures} sockets failed to open; first: {}",
            first
                .first_failure
                .or(opened.first_failure)
                .unwrap_or_default()
        ));
    }
    let mut holders = first.holders;
    holders.extend(opened.holders);
    let ended = close_all(stop, holders).await;
    if !ended.is_empty() {
        report.problems.push(format!(
            "{} sockets were closed early; first: {}",
            ended.len(),
            ended[0]
        ));
    }
    Ok(report)
}

/// Every socket connects, authenticates and gets its hello, `concurrency` at a time.
pub async fn connect_storm(ctx: &Ctx) -> Fallible<Report> {
    let sockets = ctx.cli.sockets.unwrap_or(10_000);
    let users = ctx.cli.users.unwrap_or(1000).min(sockets).max(1);
    let concurrency = ctx.cli.concurrency.unwrap_or(1000);
    ensure_fd_limit(sockets as u64 + 512)?;
    let launch = ctx.launch(sockets + 64, None);
    let (server, list) = ctx.start_prepared(&users_spec(users), &launch)?;
    let version = server_version(&server).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let load = format!(
        "{} WebSockets of {} users ({} each) connect at once, at most {concurrency} in flight; \
         each keeps reading (presence frames) after its hello",
        thousands(sockets as f64),
        thousands(users as f64),
        sockets.div_ceil(users)
    );
    let mut report = Report::new("connect-storm", &server, &version, load);
    let (stop, stopped) = watch::channel(false);
    let frames = Arc::new(AtomicU64::new(0));
    let cpu = CpuMeter::start(&server);
    let opened = open_many(&server, &list, sockets, concurrency, &stopped, &frames).await;
    report.cpu(cpu.read(), sockets as u64);
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.memory(&server);
    report.latency_of = "connect → hello, per socket".into();
    report.latency = Some(opened.latency.summary());
    let took = opened.took.as_secs_f64();
    report.throughput_per_s = Some((sockets as u64 - opened.failures) as f64 / took.max(1e-9));
    report.detail(
        "frames read after hello",
        thousands(frames.load(Ordering::Relaxed) as f64),
    );
    report.figures.push(
        figure("first connect → last hello", took, "s")
            .target("≤ 2 s, zero failures", took <= 2.0 && opened.failures == 0),
    );
    report
        .figures
        .push(figure("failures", opened.failures as f64, ""));
    if let Some(first) = &opened.first_failure {
        report.detail("first failure", first.clone());
    }
    let ended = close_all(stop, opened.holders).await;
    if !ended.is_empty() {
        report.problems.push(format!(
            "{} sockets were closed early; first: {}",
            ended.len(),
            ended[0]
        ));
    }
    Ok(report)
}

/// What the soak's controller asks one connection to do.
enum Cmd {
    Dm { to: i64, k: u64 },
    Typing { conversation: String },
    Close,
}

#[derive(Default)]
struct SoakStats {
    acks: Mutex<Latency>,
    acked: AtomicU64,
    /// Sends still unacknowledged when their socket was closed on purpose (churn, the end).
    abandoned: AtomicU64,
    errors: AtomicU64,
    dropped: AtomicU64,
    first_problem: Mutex<Option<String>>,
}

impl SoakStats {
    fn problem(&self, counter: &AtomicU64, what: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.first_problem
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(what);
    }
}

async fn soak_conn(mut ws: Ws, me: usize, mut rx: mpsc::Receiver<Cmd>, stats: Arc<SoakStats>) {
    let mut pending = std::collections::HashMap::new();
    loop {
        tokio::select! {
            cmd = rx.recv() => {
                let frame = match cmd {
                    Some(Cmd::Dm { to, k }) => {
                        pending.insert(k, Instant::now());
                        json!({"type": "send", "to": to, "body": format!("soak {k}"),
                               "client_id": format!("s{me}-{k}")})
                    }
                    Some(Cmd::Typing { conversation }) => {
                        json!({"type": "typing", "conversation": conversation})
                    }
                    Some(Cmd::Close) | None => {
                        stats.abandoned.fetch_add(pending.len() as u64, Ordering::Relaxed);
                        let _ = ws.close(None).await;
                        return;
                    }
                };
                if let Err(e) = ws.send(Message::text(frame.to_string())).await {
                    stats.problem(&stats.dropped, format!("user {me}: send: {e}"));
                    return;
                }
            }
            next = ws.next() => {
                let text = match next {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(frame))) => {
                        stats.problem(&stats.dropped, format!("user {me}: server closed: {frame:?}"));
                        return;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        stats.problem(&stats.dropped, format!("user {me}: {e}"));
                        return;
                    }
                    None => {
                        stats.problem(&stats.dropped, format!("user {me}: WebSocket ended"));
                        return;
                    }
                };
                match classify(text.as_str()) {
                    Frame::Ack { client_id } => {
                        let k = client_id.rsplit_once('-').and_then(|(_, k)| k.parse().ok());
                        if let Some(sent) = k.and_then(|k: u64| pending.remove(&k)) {
                            stats.acks.lock().unwrap_or_else(|p| p.into_inner()).record(sent.elapsed());
                            stats.acked.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Frame::Error { client_id, code } => {
                        stats.problem(&stats.errors, format!("user {me}: {code} for {client_id}"));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Spreads `per_second` events over 10 ms ticks.
struct Rate {
    per_tick: f64,
    credit: f64,
}

impl Rate {
    fn new(per_second: f64) -> Rate {
        Rate {
            per_tick: per_second / 100.0,
            credit: 0.0,
        }
    }

    fn due(&mut self) -> usize {
        self.credit += self.per_tick;
        let n = self.credit.floor();
        self.credit -= n;
        n as usize
    }
}

/// Sockets, DMs, typing and presence churn for a long time: does memory creep, do file
/// descriptors leak?
pub async fn soak(ctx: &Ctx) -> Fallible<Report> {
    let sockets = ctx.cli.sockets.unwrap_or(1000).max(2);
    let rate = ctx.cli.rate.unwrap_or(50.0);
    let seconds = ctx.cli.seconds.unwrap_or_else(|| ctx.long(1800));
    let warmup = ctx.cli.warmup.unwrap_or(seconds / 4).min(seconds / 2);
    let churn = ctx.cli.churn.unwrap_or(2.0);
    let typing = ctx.cli.typing.unwrap_or(10.0);
    ensure_fd_limit(sockets as u64 + 512)?;
    let launch = ctx.launch(sockets + 64, None);
    let (server, list) = ctx.start_prepared(&users_spec(sockets), &launch)?;
    let version = server_version(&server).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let fds_before = server.fds();
    let load = format!(
        "{} users, one WebSocket each; {rate} DMs/s, {typing} typing frames/s, {churn} \
         disconnects/s (each back 5 s later, after presence went offline); {seconds} s, the \
         first {warmup} s warm-up",
        thousands(sockets as f64)
    );
    let mut report = Report::new("soak", &server, &version, load);
    let stats = Arc::new(SoakStats::default());
    let mut slots: Vec<Option<mpsc::Sender<Cmd>>> = Vec::with_capacity(sockets);
    let mut tasks = Vec::new();
    let connect = |i: usize| {
        let (tx, rx) = mpsc::channel(64);
        let token = list[i].token.clone();
        let (addr, stats) = (server.addr, stats.clone());
        let task = tokio::spawn(async move {
            match open_socket(addr, &token).await {
                Ok(ws) => soak_conn(ws, i, rx, stats).await,
                Err(e) => stats.problem(&stats.dropped, format!("user {i}: connect: {e}")),
            }
        });
        (tx, task)
    };
    for i in 0..sockets {
        let (tx, task) = connect(i);
        slots.push(Some(tx));
        tasks.push(task);
        if i % 64 == 63 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let partner = |i: usize| list[(i ^ 1).min(sockets - 1)].id;
    let dm_id = |i: usize| {
        let (a, b) = (list[i].id, partner(i));
        format!("dm:{}:{}", a.min(b), a.max(b))
    };
    let cpu = CpuMeter::start(&server);
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let (mut dms, mut types, mut churns) = (Rate::new(rate), Rate::new(typing), Rate::new(churn));
    let mut back: VecDeque<(Instant, usize)> = VecDeque::new();
    let mut next_sample = started + Duration::from_secs(10);
    let mut samples = Vec::new();
    let (mut rss_warm, mut k) = (None, 0u64);
    let (mut sent, mut reconnects) = (0u64, 0u64);
    let pid = server.pid();
    while started.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        let pick = |slots: &Vec<Option<mpsc::Sender<Cmd>>>| {
            (0..8)
                .map(|_| rand::random_range(0..sockets))
                .find(|&i| slots[i].is_some())
        };
        for _ in 0..dms.due() {
            if let Some(i) = pick(&slots)
                && let Some(tx) = &slots[i]
            {
                k += 1;
                if tx.try_send(Cmd::Dm { to: partner(i), k }).is_ok() {
                    sent += 1;
                }
            }
        }
        for _ in 0..types.due() {
            if let Some(i) = pick(&slots)
                && let Some(tx) = &slots[i]
            {
                let _ = tx.try_send(Cmd::Typing {
                    conversation: dm_id(i),
                });
            }
        }
        for _ in 0..churns.due() {
            if let Some(i) = pick(&slots)
                && let Some(tx) = slots[i].take()
            {
                let _ = tx.try_send(Cmd::Close);
                back.push_back((Instant::now() + Duration::from_secs(5), i));
            }
        }
        while back.front().is_some_and(|(at, _)| *at <= Instant::now()) {
            if let Some((_, i)) = back.pop_front() {
                let (tx, task) = connect(i);
                slots[i] = Some(tx);
                tasks.push(task);
                reconnects += 1;
            }
        }
        tasks.retain(|t| !t.is_finished());
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(10);
            let t = started.elapsed().as_secs();
            let rss = proc_memory(&pid).map_or(0, |m| m.0);
            let fds = server.fds();
            if t >= warmup && rss_warm.is_none() {
                rss_warm = Some(rss);
            }
            println!(
                "  t={t:>5} s  RSS {:>6.1} MB  fds {fds:>5}  acked {}  problems {}",
                mb(rss),
                thousands(stats.acked.load(Ordering::Relaxed) as f64),
                stats.errors.load(Ordering::Relaxed) + stats.dropped.load(Ordering::Relaxed)
            );
            samples.push(json!({"t_s": t, "rss_kib": rss, "fds": fds}));
        }
    }
    let used = cpu.read();
    let rss_end = server.rss_kib();
    let fds_end_open = server.fds();
    // Everyone leaves; then the presence grace period (3 s) and the connection tasks end.
    for tx in slots.iter_mut().filter_map(Option::take) {
        let _ = tx.send(Cmd::Close).await;
    }
    for task in tasks {
        let _ = task.await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let fds_after_5s = server.fds();
    // The search index writer (a file or two) stays open until a minute without updates.
    let quiet_since = Instant::now();
    let mut fds_after = fds_after_5s;
    while fds_after > fds_before && quiet_since.elapsed() < INDEX_WRITER_IDLE {
        tokio::time::sleep(Duration::from_secs(1)).await;
        fds_after = server.fds();
    }
    let quiet_for = 5.0 + quiet_since.elapsed().as_secs_f64();
    report.memory(&server);
    let acked = stats.acked.load(Ordering::Relaxed);
    report.cpu(used, acked);
    report.latency_of = "DM ack".into();
    report.latency = Some(
        stats
            .acks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .summary(),
    );
    report.throughput_per_s = Some(acked as f64 / used.wall_s.max(1e-9));
    let warm = rss_warm.unwrap_or(rss_end);
    let drift = (rss_end as f64 - warm as f64) / warm.max(1) as f64 * 100.0;
    report.detail(
        "RSS",
        format!(
            "{:.1} MB after the {warmup} s warm-up, {:.1} MB at the end",
            mb(warm),
            mb(rss_end)
        ),
    );
    report.detail(
        "file descriptors",
        format!(
            "{fds_before} before any socket, {fds_end_open} at the end with the sockets open, \
             {fds_after_5s} 5 s after all closed, {fds_after} {quiet_for:.0} s after"
        ),
    );
    report.detail(
        "traffic",
        format!(
            "{sent} DMs sent, {acked} acked ({} in flight when their socket closed), \
             {reconnects} reconnects",
            stats.abandoned.load(Ordering::Relaxed)
        ),
    );
    report.detail("samples", serde_json::Value::from(samples).to_string());
    report
        .figures
        .push(figure("RSS drift after warm-up", drift, "%").target("≤ 10 %", drift <= 10.0));
    report.figures.push(
        figure(
            "fds once quiet − before",
            fds_after as f64 - fds_before as f64,
            "",
        )
        .target("back to baseline", fds_after <= fds_before),
    );
    let errors = stats.errors.load(Ordering::Relaxed);
    let dropped = stats.dropped.load(Ordering::Relaxed);
    let abandoned = stats.abandoned.load(Ordering::Relaxed);
    if errors + dropped > 0 || acked + abandoned < sent {
        report.problems.push(format!(
            "{errors} error frames, {dropped} connections lost, {} of {sent} DMs not acked; \
             first: {}",
            sent - (acked + abandoned).min(sent),
            stats
                .first_problem
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default()
        ));
    }
    Ok(report)
}
