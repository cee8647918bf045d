//! Durable DMs: `dm-cpu` (server CPU per delivered DM at a moderate load), `dm-throughput`
//! (as fast as server and load generator together manage), `sustained` (the same for minutes,
//! while the database grows) and `latency` (send → deliver at a fixed rate).
//!
//! Every user has one WebSocket and writes to a fixed partner (user i to user i xor 1). Each
//! body starts with `#<ns since the run began>`, so the partner's reader knows when it was sent
//! without a shared table.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Frame, Pacer, STALL, User, Ws, classify, open_socket, server_version};
use crate::report::{CpuMeter, Latency, Report, figure, number, thousands};
use crate::server::Server;
use crate::{Ctx, Fallible, fixture};

/// Acknowledged sends per 100 ms since `start`.
pub struct Timeline {
    start: Instant,
    buckets: Vec<AtomicU64>,
}

impl Timeline {
    fn new(start: Instant, span: Duration) -> Timeline {
        let n = (span.as_millis() / 100) as usize + 1;
        Timeline {
            start,
            buckets: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn add(&self, at: Instant) {
        let i = (at.saturating_duration_since(self.start).as_millis() / 100) as usize;
        if let Some(b) = self.buckets.get(i.min(self.buckets.len() - 1)) {
            b.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Acks in [from, to) after `start`.
    fn count(&self, from: Duration, to: Duration) -> u64 {
        let (a, b) = (
            (from.as_millis() / 100) as usize,
            (to.as_millis() / 100) as usize,
        );
        self.buckets
            .iter()
            .take(b.min(self.buckets.len()))
            .skip(a)
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    fn rate(&self, from: Duration, to: Duration) -> f64 {
        self.count(from, to) as f64 / (to - from).as_secs_f64().max(1e-9)
    }
}

/// How every connection sends.
#[derive(Clone)]
struct Plan {
    /// Messages per second per connection, and the burst its pacer allows.
    rate: f64,
    burst: f64,
    window: usize,
    /// Messages per connection; `None`: until `until`.
    quota: Option<usize>,
    until: Option<Instant>,
    padding: Arc<str>,
    epoch: Instant,
}

impl Plan {
    /// `rate` messages per second per connection, evenly spread, for `seconds` (plus half a
    /// second for every connection to get going).
    fn steady(ctx: &Ctx, rate: f64, window: usize, seconds: u64) -> Plan {
        let epoch = Instant::now();
        Plan {
            rate,
            burst: 1.0,
            window,
            quota: None,
            until: Some(epoch + Duration::from_millis(500) + Duration::from_secs(seconds)),
            padding: padding(ctx),
            epoch,
        }
    }
}

/// What one connection measured.
#[derive(Default)]
struct Out {
    acks: Latency,
    deliveries: Latency,
    acked: u64,
    received: u64,
    rate_limited: u64,
    first_send: Option<Instant>,
    last_ack: Option<Instant>,
}

/// Sends with at most `window` unacknowledged, paced, and reads everything the server sends
/// meanwhile (acks, and the partner's messages).
async fn converse(
    mut ws: Ws,
    me: usize,
    partner: i64,
    plan: Plan,
    mut pacer: Pacer,
    timeline: Arc<Timeline>,
) -> Fallible<(Ws, Out)> {
    let mut out = Out::default();
    let mut pending: HashMap<u64, Instant> = HashMap::new();
    let mut retry: Vec<u64> = Vec::new();
    let mut next = 0u64;
    let mut progress = Instant::now();
    let more = |next: u64, retry: &Vec<u64>| {
        plan.until.is_none_or(|t| Instant::now() < t)
            && (!retry.is_empty() || plan.quota.is_none_or(|q| (next as usize) < q))
    };
    loop {
        pacer.refill();
        let mut fed = false;
        while pending.len() < plan.window && pacer.credit >= 1.0 && more(next, &retry) {
            let k = retry.pop().unwrap_or_else(|| {
                next += 1;
                next - 1
            });
            let now = Instant::now();
            let stamp = now.duration_since(plan.epoch).as_nanos();
            let frame = format!(
                r##"{{"type":"send","to":{partner},"body":"#{stamp} {}","client_id":"{me}-{k}"}}"##,
                plan.padding
            );
            ws.feed(Message::text(frame))
                .await
                .map_err(|e| format!("user {me}: send: {e}"))?;
            out.first_send.get_or_insert(now);
            pending.insert(k, now);
            pacer.credit -= 1.0;
            fed = true;
        }
        if fed {
            ws.flush()
                .await
                .map_err(|e| format!("user {me}: send: {e}"))?;
        }
        if pending.is_empty() && !more(next, &retry) {
            return Ok((ws, out));
        }
        let wait = if pending.len() < plan.window && more(next, &retry) {
            pacer.wait()
        } else {
            Duration::from_millis(200)
        };
        let text = match tokio::time::timeout(wait, futures_util::StreamExt::next(&mut ws)).await {
            Err(_) => {
                if progress.elapsed() > STALL && !pending.is_empty() {
                    return Err(format!("user {me}: no ack for {STALL:?}"));
                }
                continue;
            }
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Err(format!("user {me}: server closed: {frame:?}"));
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(format!("user {me}: WebSocket error: {e}")),
            Ok(None) => return Err(format!("user {me}: WebSocket ended")),
        };
        let now = Instant::now();
        match classify(text.as_str()) {
            Frame::Ack { client_id } => {
                let k = client_id
                    .rsplit_once('-')
                    .and_then(|(_, k)| k.parse::<u64>().ok());
                if let Some(sent) = k.and_then(|k| pending.remove(&k)) {
                    out.acks.record(now.duration_since(sent));
                    out.acked += 1;
                    out.last_ack = Some(now);
                    timeline.add(now);
                    progress = now;
                }
            }
            Frame::Message { stamp } => {
                out.received += 1;
                if let Some(stamp) = stamp {
                    let sent = Duration::from_nanos(stamp);
                    out.deliveries
                        .record(now.duration_since(plan.epoch).saturating_sub(sent));
                }
            }
            Frame::Error { client_id, code } if code == "rate_limited" => {
                let k = client_id
                    .rsplit_once('-')
                    .and_then(|(_, k)| k.parse::<u64>().ok());
                if let Some(k) = k.filter(|k| pending.remove(k).is_some()) {
                    out.rate_limited += 1;
                    retry.push(k);
                    pacer.credit = 0.0;
                }
            }
            Frame::Error { client_id, code } => {
                return Err(format!("user {me}: error {code} for {client_id}"));
            }
            Frame::Other => {}
        }
    }
}

/// Reads what partners are still delivering, until `quiet` passes without a message.
async fn drain(ws: &mut Ws, quiet: Duration, epoch: Instant, out: &mut Out) {
    while let Ok(Some(Ok(msg))) =
        tokio::time::timeout(quiet, futures_util::StreamExt::next(ws)).await
    {
        if let Message::Text(text) = msg
            && let Frame::Message { stamp } = classify(text.as_str())
        {
            out.received += 1;
            if let Some(stamp) = stamp {
                out.deliveries
                    .record(epoch.elapsed().saturating_sub(Duration::from_nanos(stamp)));
            }
        }
    }
}

/// One run of the load: returns the merged measurements.
struct Run {
    acks: Latency,
    deliveries: Latency,
    acked: u64,
    received: u64,
    rate_limited: u64,
    first_send: Instant,
    last_ack: Instant,
    timeline: Arc<Timeline>,
}

/// One socket per user, each with its hello; then a moment for the connect-time presence
/// frames and last-seen commits to settle, so they are not counted as the load's.
async fn open_all(server: &Server, users: &[User]) -> Fallible<Vec<Ws>> {
    let mut sockets = Vec::with_capacity(users.len());
    for user in users {
        sockets.push(open_socket(server.addr, &user.token).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(sockets)
}

async fn run_load(
    sockets: Vec<Ws>,
    users: &[User],
    plan: Plan,
    stagger: bool,
    timeline: Arc<Timeline>,
) -> Fallible<Run> {
    let partner = |i: usize| match i ^ 1 {
        p if p < users.len() => users[p].id,
        _ => users[0].id,
    };
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(users.len());
    let n = users.len();
    for (i, ws) in sockets.into_iter().enumerate() {
        let mut pacer = Pacer::new(plan.rate, plan.burst);
        if stagger {
            // Spread the first sends over one interval, so a fixed rate is a steady one.
            pacer.credit = i as f64 / n as f64;
        }
        tasks.push(tokio::spawn(converse(
            ws,
            i,
            partner(i),
            plan.clone(),
            pacer,
            timeline.clone(),
        )));
    }
    let mut outs = Vec::with_capacity(n);
    let mut failed = None;
    for task in tasks {
        match task.await.map_err(|e| e.to_string())? {
            Ok(done) => outs.push(done),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let mut run = Run {
        acks: Latency::default(),
        deliveries: Latency::default(),
        acked: 0,
        received: 0,
        rate_limited: 0,
        first_send: started,
        last_ack: started,
        timeline,
    };
    let mut first = None::<Instant>;
    let drains: Vec<_> = outs
        .into_iter()
        .map(|(mut ws, mut out)| {
            tokio::spawn(async move {
                drain(&mut ws, Duration::from_millis(200), plan.epoch, &mut out).await;
                out
            })
        })
        .collect();
    for drained in drains {
        let out = drained.await.map_err(|e| e.to_string())?;
        run.acks.merge(&out.acks);
        run.deliveries.merge(&out.deliveries);
        run.acked += out.acked;
        run.received += out.received;
        run.rate_limited += out.rate_limited;
        first = match (first, out.first_send) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        run.last_ack = run.last_ack.max(out.last_ack.unwrap_or(started));
    }
    run.first_send = first.unwrap_or(started);
    Ok(run)
}

/// A server over a cached directory of `users` users, and those users.
fn start(ctx: &Ctx, users: usize, frame_rate: Option<u32>) -> Fallible<(Server, Vec<User>)> {
    let spec = fixture::Spec {
        users,
        sessions: users,
        messages: 0,
        body_bytes: 0,
    };
    ctx.start_prepared(&spec, &ctx.launch(users + 64, frame_rate))
}

fn padding(ctx: &Ctx) -> Arc<str> {
    "x".repeat(ctx.cli.body_bytes.unwrap_or(100).saturating_sub(22))
        .into()
}

fn check(report: &mut Report, run: &Run) {
    if run.received != run.acked {
        report.problems.push(format!(
            "{} acked but {} delivered to partners",
            run.acked, run.received
        ));
    }
}

/// Server CPU per delivered DM at a steady, moderate load: what a message costs when the
/// server is not saturated (batches are smaller than at saturation, so this is the honest
/// figure for an office).
pub async fn dm_cpu(ctx: &Ctx) -> Fallible<Report> {
    let users = ctx.cli.users.unwrap_or(1000);
    let rate = ctx.cli.rate.unwrap_or(5000.0);
    let seconds = ctx.cli.seconds.unwrap_or(10);
    let per_conn = rate / users as f64;
    let (server, list) = start(ctx, users, ctx.cli.frame_rate)?;
    let version = server_version(&server).await?;
    let sockets = open_all(&server, &list).await?;
    let plan = Plan::steady(ctx, per_conn, ctx.cli.window.unwrap_or(8), seconds);
    let load = format!(
        "{} users, one WebSocket each, DMs to a fixed partner at {} msg/s in all ({:.1}/s \
         each, steady) for {seconds} s",
        thousands(users as f64),
        thousands(rate),
        per_conn
    );
    let mut report = Report::new("dm-cpu", &server, &version, load);
    let cpu = CpuMeter::start(&server);
    let timeline = Arc::new(Timeline::new(
        Instant::now(),
        Duration::from_secs(seconds + 60),
    ));
    let run = run_load(sockets, &list, plan, true, timeline).await?;
    let used = cpu.read();
    report.cpu(used, run.acked);
    report.memory(&server);
    report.latency_of = "ack (send → durable ack)".into();
    report.latency = Some(run.acks.summary());
    let elapsed = run.last_ack.duration_since(run.first_send).as_secs_f64();
    report.throughput_per_s = Some(run.acked as f64 / elapsed.max(1e-9));
    report.detail("delivery (send → partner)", run.deliveries.summary().line());
    let us = used.server_s * 1e6 / run.acked.max(1) as f64;
    report
        .figures
        .push(figure("server CPU per delivered DM", us, "µs").target("≤ 40 µs", us <= 40.0));
    report.figures.push(figure(
        "load generator CPU per DM",
        used.generator_s * 1e6 / run.acked.max(1) as f64,
        "µs",
    ));
    check(&mut report, &run);
    Ok(report)
}

/// As many durable DMs as server and load generator manage together, 1,000 users, the
/// server's frame rate raised so no one client is the cap.
pub async fn dm_throughput(ctx: &Ctx) -> Fallible<Report> {
    let users = ctx.cli.users.unwrap_or(1000);
    let messages = ctx
        .cli
        .messages
        .unwrap_or(if ctx.suite { 100_000 } else { 150_000 });
    let frame_rate = ctx.cli.frame_rate.unwrap_or(200);
    let window = ctx.cli.window.unwrap_or(16);
    let (server, list) = start(ctx, users, Some(frame_rate))?;
    let version = server_version(&server).await?;
    let sockets = open_all(&server, &list).await?;
    let epoch = Instant::now();
    let plan = Plan {
        rate: f64::from(frame_rate) * 0.95,
        burst: f64::from(frame_rate),
        window,
        quota: Some(messages.div_ceil(users)),
        until: None,
        padding: padding(ctx),
        epoch,
    };
    let load = format!(
        "{} users, one WebSocket each, {} DMs in all to a fixed partner, window {window} \
         per socket, server --frame-rate {frame_rate} (offered ≤ {} msg/s)",
        thousands(users as f64),
        thousands((messages.div_ceil(users) * users) as f64),
        thousands(plan.rate * users as f64)
    );
    let mut report = Report::new("dm-throughput", &server, &version, load);
    let cpu = CpuMeter::start(&server);
    let timeline = Arc::new(Timeline::new(Instant::now(), Duration::from_secs(3600)));
    let run = run_load(sockets, &list, plan, false, timeline).await?;
    report.cpu(cpu.read(), run.acked);
    report.memory(&server);
    report.latency_of = "ack (send → durable ack)".into();
    report.latency = Some(run.acks.summary());
    let offset = run.first_send.duration_since(run.timeline.start);
    let elapsed = run.last_ack.duration_since(run.first_send);
    let whole = run.acked as f64 / elapsed.as_secs_f64().max(1e-9);
    let first3 = run
        .timeline
        .rate(offset, offset + Duration::from_secs(3).min(elapsed));
    report.throughput_per_s = Some(whole);
    report.detail("delivery (send → partner)", run.deliveries.summary().line());
    report.detail(
        "acked",
        format!(
            "{} in {:.2} s; {} rate_limited (retried)",
            thousands(run.acked as f64),
            elapsed.as_secs_f64(),
            run.rate_limited
        ),
    );
    report.figures.push(
        figure("throughput, first 3 s", first3, "msg/s")
            .target("≥ 30,000 msg/s", first3 >= 30_000.0),
    );
    report
        .figures
        .push(figure("throughput, whole run", whole, "msg/s"));
    check(&mut report, &run);
    Ok(report)
}

/// dm-throughput for minutes: throughput and the database's size every 10 s.
pub async fn sustained(ctx: &Ctx) -> Fallible<Report> {
    let users = ctx.cli.users.unwrap_or(1000);
    let seconds = ctx.cli.seconds.unwrap_or_else(|| ctx.long(600));
    let frame_rate = ctx.cli.frame_rate.unwrap_or(200);
    let window = ctx.cli.window.unwrap_or(16);
    let (server, list) = start(ctx, users, Some(frame_rate))?;
    let version = server_version(&server).await?;
    let sockets = open_all(&server, &list).await?;
    let epoch = Instant::now();
    let span = Duration::from_secs(seconds);
    let plan = Plan {
        rate: f64::from(frame_rate) * 0.95,
        burst: f64::from(frame_rate),
        window,
        quota: None,
        until: Some(epoch + Duration::from_millis(500) + span),
        padding: padding(ctx),
        epoch,
    };
    let load = format!(
        "{} users, one WebSocket each, DMs to a fixed partner for {seconds} s, window \
         {window} per socket, server --frame-rate {frame_rate} (offered ≤ {} msg/s)",
        thousands(users as f64),
        thousands(plan.rate * users as f64)
    );
    let mut report = Report::new("sustained", &server, &version, load);
    let cpu = CpuMeter::start(&server);
    // The load runs in this task's select; the other branch samples every 10 s.
    let timeline = Arc::new(Timeline::new(
        Instant::now(),
        span + Duration::from_secs(120),
    ));
    let db = server.data_dir.join("confab.redb");
    let pid = server.pid();
    let load = run_load(sockets, &list, plan, false, timeline.clone());
    tokio::pin!(load);
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(10),
        Duration::from_secs(10),
    );
    let mut last_acks = 0u64;
    let run = loop {
        tokio::select! {
            run = &mut load => break run?,
            _ = tick.tick() => {
                let t = epoch.elapsed().as_secs();
                let acks = timeline.count(Duration::ZERO, Duration::from_secs(1 << 30));
                let rate = (acks - last_acks) as f64 / 10.0;
                last_acks = acks;
                let size = std::fs::metadata(&db).map_or(0, |m| m.len());
                let rss = crate::server::proc_memory(&pid).map_or(0, |m| m.0);
                println!(
                    "  t={t:>4} s  {:>7} msg/s  database {:>7.1} MB  RSS {:>6.1} MB  total {}",
                    thousands(rate),
                    size as f64 / 1e6,
                    crate::report::mb(rss),
                    thousands(acks as f64)
                );
                samples.push(serde_json::json!({"t_s": t, "msg_per_s": rate,
                    "db_bytes": size, "rss_kib": rss, "acked": acks}));
            }
        }
    };
    report.cpu(cpu.read(), run.acked);
    report.memory(&server);
    report.latency_of = "ack (send → durable ack)".into();
    report.latency = Some(run.acks.summary());
    let offset = run.first_send.duration_since(run.timeline.start);
    let elapsed = run.last_ack.duration_since(run.first_send);
    let minute = Duration::from_secs(60).min(span / 2);
    let first = run.timeline.rate(offset, offset + minute);
    let last = run
        .timeline
        .rate(offset + span.saturating_sub(minute), offset + span);
    report.throughput_per_s = Some(run.acked as f64 / elapsed.as_secs_f64().max(1e-9));
    report.detail(
        "every 10 s",
        samples
            .iter()
            .map(|s| number(s["msg_per_s"].as_f64().unwrap_or(0.0)))
            .collect::<Vec<_>>()
            .join(" "),
    );
    report.detail(
        "database",
        format!(
            "{:.1} MB after {} messages",
            server.db_bytes() as f64 / 1e6,
            thousands(run.acked as f64)
        ),
    );
    report.detail("samples", serde_json::Value::from(samples).to_string());
    let window_name = if minute == Duration::from_secs(60) {
        "minute".to_owned()
    } else {
        format!("{} s", minute.as_secs())
    };
    report.figures.push(figure(
        &format!("throughput, first {window_name}"),
        first,
        "msg/s",
    ));
    let ratio = last / first.max(1e-9);
    report.figures.push(figure(
        &format!("throughput, last {window_name}"),
        last,
        "msg/s",
    ));
    report
        .figures
        .push(figure("last / first", ratio * 100.0, "%").target("≥ 80 %", ratio >= 0.8));
    report
        .figures
        .push(figure("messages stored", run.acked as f64, ""));
    check(&mut report, &run);
    Ok(report)
}

/// Send → deliver latency at a fixed, modest rate, next to the disk's fsync p99.
pub async fn latency(ctx: &Ctx) -> Fallible<Report> {
    let users = ctx.cli.users.unwrap_or(200);
    let rate = ctx.cli.rate.unwrap_or(1000.0);
    let seconds = ctx.cli.seconds.unwrap_or(20);
    let per_conn = rate / users as f64;
    let (server, list) = start(ctx, users, ctx.cli.frame_rate)?;
    let version = server_version(&server).await?;
    let sockets = open_all(&server, &list).await?;
    let plan = Plan::steady(ctx, per_conn, 64, seconds);
    let load = format!(
        "{} users, one WebSocket each, DMs to a fixed partner at {} msg/s in all \
         ({per_conn:.1}/s each, evenly spread) for {seconds} s",
        thousands(users as f64),
        thousands(rate)
    );
    let mut report = Report::new("latency", &server, &version, load);
    let cpu = CpuMeter::start(&server);
    let timeline = Arc::new(Timeline::new(
        Instant::now(),
        Duration::from_secs(seconds + 60),
    ));
    let run = run_load(sockets, &list, plan, true, timeline).await?;
    report.cpu(cpu.read(), run.acked);
    report.memory(&server);
    report.latency_of = "send → delivered to the partner".into();
    let delivered = run.deliveries.summary();
    report.latency = Some(delivered);
    report.detail("ack (send → durable ack)", run.acks.summary().line());
    let elapsed = run.last_ack.duration_since(run.first_send).as_secs_f64();
    report.throughput_per_s = Some(run.acked as f64 / elapsed.max(1e-9));
    let fsync = ctx.fsync.p99_ms;
    report.detail(
        "fsync probe (this run)",
        format!("p50 {:.2} ms, p99 {fsync:.2} ms", ctx.fsync.p50_ms),
    );
    report.detail(
        "a small commit's flush (this run)",
        format!(
            "p50 {:.2} ms, p99 {:.2} ms (see the fsync probe)",
            ctx.fsync.commit.p50_ms, ctx.fsync.commit.p99_ms
        ),
    );
    report
        .figures
        .push(figure("send → deliver p50", delivered.p50_ms, "ms"));
    report
        .figures
        .push(figure("send → deliver p99", delivered.p99_ms, "ms").target(
            &format!("≤ fsync p99 + 2 ms = {:.1} ms", fsync + 2.0),
            delivered.p99_ms <= fsync + 2.0,
        ));
    report.figures.push(figure("fsync p99", fsync, "ms"));
    report.figures.push(figure(
        "small commit's flush p99",
        ctx.fsync.commit.p99_ms,
        "ms",
    ));
    check(&mut report, &run);
    Ok(report)
}
