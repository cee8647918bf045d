//! Scenarios over stored history, written once through the store and cached (`fixture`):
//! `history` (pages of 50 from a long conversation) and `cold-start` (exec → first `hello` on
//! a big database, after a clean stop and after SIGKILL).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::client::{http, open_socket, server_version};
use crate::rawhttp::KeepAlive;
use crate::report::{CpuMeter, Latency, Report, figure, thousands};
use crate::server::{Server, temp_dir};
use crate::{Ctx, Fallible, fixture};

/// A page of 50 messages ending before a seq spread over the whole history (a cheap LCG, so
/// runs ask for the same pages).
fn page_url(base: &str, n: u64, messages: u64) -> String {
    let x = n
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let before = 51 + (x >> 33) % messages.saturating_sub(50).max(1);
    format!("{base}?before={before}&limit=50")
}

async fn get_page(client: &reqwest::Client, url: &str, token: &str) -> Fallible<usize> {
    let resp = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("history page: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("history page: {e}"))?;
    if status != 200 {
        return Err(format!(
            "history page: {status} {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(body.len())
}

/// Pages of 50 from one conversation of `--history-messages` (100,000): p99 at a fixed rate
/// (open loop), then pages per second with `--concurrency` clients asking back to back.
pub async fn history(ctx: &Ctx) -> Fallible<Report> {
    let messages = ctx.cli.history_messages.unwrap_or(100_000);
    let rate = ctx.cli.rate.unwrap_or(1000.0);
    let seconds = ctx.cli.seconds.unwrap_or(10);
    let clients = ctx.cli.concurrency.unwrap_or(8);
    let spec = fixture::Spec {
        users: 2,
        sessions: 2,
        messages,
        body_bytes: 100,
    };
    let launch = ctx.launch(512, None);
    let (server, users) = ctx.start_prepared(&spec, &launch)?;
    let version = server_version(&server).await?;
    let (a, b) = (users[0].id, users[1].id);
    let path: Arc<str> = format!("/api/conversations/dm:{}:{}/messages", a.min(b), a.max(b)).into();
    let base: Arc<str> = server.url(&path).into();
    let token: Arc<str> = users[0].token.clone().into();
    let load = format!(
        "pages of 50 (random `before`) from a DM of {} messages: {} pages/s for {seconds} s \
         (open loop, latency from the scheduled time), then {clients} clients back to back for \
         {seconds} s (each on one keep-alive connection, a minimal HTTP/1.1 client)",
        thousands(messages as f64),
        thousands(rate)
    );
    let mut report = Report::new("history", &server, &version, load);
    let client = http()?;
    let first = get_page(&client, &page_url(&base, 0, messages), &token).await?;
    report.detail("page size", format!("{first} bytes of JSON"));

    // Open loop: requests start on schedule whatever the previous ones do.
    let open = Arc::new(std::sync::Mutex::new(Latency::default()));
    let failures = Arc::new(AtomicU64::new(0));
    let inflight = Arc::new(Semaphore::new(1024));
    let total = (rate * seconds as f64) as u64;
    let cpu = CpuMeter::start(&server);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        let at = start + Duration::from_secs_f64(n as f64 / rate);
        tokio::time::sleep_until(at).await;
        let Ok(permit) = inflight.clone().acquire_owned().await else {
            break;
        };
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        let (open, failures) = (open.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            let got = get_page(&client, &page_url(&base, n, messages), &token).await;
            let took = at.elapsed();
            drop(permit);
            match got {
                Ok(_) => open.lock().unwrap_or_else(|p| p.into_inner()).record(took),
                Err(_) => {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let open_cpu = cpu.read();
    let open = open.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let open_summary = open.summary();

    // Closed loop: each client asks for the next page as soon as it has one, on its own
    // keep-alive connection.
    let done = Arc::new(AtomicU64::new(0));
    let cpu = CpuMeter::start(&server);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (path, token, done, failures) =
            (path.clone(), token.clone(), done.clone(), failures.clone());
        let mut client = KeepAlive::connect(server.addr).await?;
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let mut latency = Latency::default();
            let mut n = (c as u64) << 40;
            while Instant::now() < deadline {
                n += 1;
                let at = Instant::now();
                match client.get(&page_url(&path, n, messages), &token).await {
                    Ok(_) => {
                        latency.record(at.elapsed());
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        // The connection may be gone with the answer; start a fresh one.
                        match KeepAlive::connect(addr).await {
                            Ok(fresh) => client = fresh,
                            Err(_) => break,
                        }
                    }
                }
            }
            latency
        }));
    }
    let mut closed = Latency::default();
    for t in tasks {
        closed.merge(&t.await.map_err(|e| e.to_string())?);
    }
    let used = cpu.read();
    let pages = done.load(Ordering::Relaxed);
    let per_s = pages as f64 / used.wall_s.max(1e-9);
    report.cpu(used, pages);
    report.memory(&server);
    report.latency_of = format!("page at {} pages/s (open loop)", thousands(rate));
    report.latency = Some(open_summary);
    report.throughput_per_s = Some(per_s);
    report.detail(
        &format!("closed loop, {clients} clients"),
        closed.summary().line(),
    );
    report.detail(
        "open loop CPU",
        format!(
            "server {:.3} s, load generator {:.3} s per 1,000 pages",
            open_cpu.server_s * 1000.0 / open.len().max(1) as f64,
            open_cpu.generator_s * 1000.0 / open.len().max(1) as f64
        ),
    );
    report.figures.push(
        figure(
            &format!("page p99 at {} pages/s", thousands(rate)),
            open_summary.p99_ms,
            "ms",
        )
        .target("≤ 3 ms", open_summary.p99_ms <= 3.0),
    );
    report.figures.push(
        figure("pages/s, closed loop", per_s, "pages/s")
            .target("≥ 20,000 pages/s", per_s >= 20_000.0),
    );
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        report
            .problems
            .push(format!("{failed} page requests failed"));
    }
    Ok(report)
}

/// Exec → first `hello` on a database of `--cold-messages` (1,000,000) messages: `--runs`
/// clean starts, then as many starts after SIGKILL (redb checks the whole file then).
pub async fn cold_start(ctx: &Ctx) -> Fallible<Report> {
    let messages = ctx.cli.cold_messages.unwrap_or(1_000_000);
    let runs = ctx.cli.runs.unwrap_or(3).max(1);
    let spec = fixture::Spec {
        users: 500,
        sessions: 1,
        messages,
        body_bytes: 120,
    };
    let launch = ctx.launch(64, None);
    let (cached, users) = fixture::cached(&ctx.cache_dir, &spec, &launch)?;
    let temp = temp_dir(&ctx.work_dir, "confab-cold-")?;
    fixture::copy(&cached, temp.path())?;
    let dir = temp.path();
    let token = users[0].token.clone();

    // One untimed start and stop: the copy's first open is not what is measured.
    let mut server = Server::start(&launch, dir, false)?;
    let version = server_version(&server).await?;
    open_socket(server.addr, &token).await?;
    let db_mb = server.db_bytes() as f64 / 1e6;
    let load = format!(
        "a database of {} messages ({db_mb:.0} MB, 500 users), the page cache warm: {runs} \
         clean starts, {runs} starts after SIGKILL",
        thousands(messages as f64)
    );
    let mut report = Report::new("cold-start", &server, &version, load);
    server.stop();

    let mut clean = Latency::default();
    let mut clean_listen = Vec::new();
    for _ in 0..runs {
        let mut server = Server::start(&launch, dir, false)?;
        let ws = open_socket(server.addr, &token).await?;
        clean.record(server.spawned.elapsed());
        clean_listen.push(server.to_listening);
        drop(ws);
        let status = server.stop();
        if !status.contains("exit status: 0") {
            return Err(format!("the server's clean stop ended with {status}"));
        }
    }
    let mut killed = Latency::default();
    let mut killed_listen = Vec::new();
    let mut checked = 0;
    for _ in 0..runs {
        let mut server = Server::start(&launch, dir, false)?;
        let ws = open_socket(server.addr, &token).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(ws);
        server.kill();
        let mut server = Server::start(&launch, dir, false)?;
        let ws = open_socket(server.addr, &token).await?;
        killed.record(server.spawned.elapsed());
        killed_listen.push(server.to_listening);
        if server.wait_for_log("not closed cleanly", Duration::ZERO) {
            checked += 1;
        }
        drop(ws);
        server.stop();
    }
    let (c, k) = (clean.summary(), killed.summary());
    let ms = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    report.latency_of = "exec → hello, clean".into();
    report.latency = Some(c);
    report.detail("exec → hello after SIGKILL", k.line());
    report.detail(
        "exec → `listening on`",
        format!(
            "clean {} ms; after SIGKILL {} ms ({checked} of {runs} logged the redb check)",
            ms(&clean_listen),
            ms(&killed_listen)
        ),
    );
    report.figures.push(
        figure("exec → hello, clean (worst)", c.max_ms, "ms").target("≤ 150 ms", c.max_ms <= 150.0),
    );
    report.figures.push(
        figure("exec → hello after SIGKILL (worst)", k.max_ms, "ms")
            .target("≤ 2 s", k.max_ms <= 2000.0),
    );
    Ok(report)
}
