//! Measures search over a big office (docs/BENCHMARKS.md, "Search over 1,000,000 messages"):
//! how fast the index is built from the database, whether live indexing keeps up with a
//! stream of sends, how long searches take, and how big the index is next to the database.
//!
//! ```text
//! cargo build --release --bin confab --example searchbench
//! target/release/examples/searchbench DIR [--bin PATH] [--messages N] [--seed S]
//!     [--queries N] [--live-rate R] [--live-seconds S] [--senders N]
//! ```
//!
//! If DIR holds no generated database (`DIR/generated/confab.redb`), one is written first
//! through the store (500 accounts named like bigdb's, 300 conversations: General, 99 more
//! rooms and 200 DMs; generated office text, see `corpus.rs`). Each run serves a fresh copy of
//! it (`DIR/run/`), so every run starts from the same messages and no index. Then, on a release
//! server started on that copy:
//!
//! 1. **Build**: the search index is removed and the server started; the time until a search
//!    stops answering 503 `search_unavailable` gives messages indexed per second.
//! 2. **Queries**: user0000, who is in every room and in 20 DMs, searches in a closed loop over
//!    HTTP with its bearer token: `<word> <word> from:<user>` (the target), a lone prefix, a
//!    phrase, and a word with `in:<room>`.
//! 3. **Live**: senders send DMs over WebSocket at `--live-rate` messages/s; every 100th carries
//!    a unique word, searched for every 50 ms from its ack until it is found: the indexing lag.
//! 4. **Size**: the search index directory against the database file, after a clean stop.
//!
//! It prints a table and one JSON line.

#[path = "../common/accounts.rs"]
mod accounts;
mod corpus;
mod office;
#[path = "../common/server.rs"]
mod server;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use corpus::Corpus;
use office::{Messages, Office};
use server::{Fallible, Server, reset_passwords, sign_in};

/// The issue's targets.
const TARGET_QUERY_P99: Duration = Duration::from_millis(50);
const TARGET_RATE: f64 = 2000.0;
const TARGET_LAG: Duration = Duration::from_secs(1);
const TARGET_SIZE_RATIO: f64 = 1.5;

/// Every this many live messages carries a unique word whose indexing lag is measured.
const PROBE_EVERY: u64 = 100;
/// How often a probe's word is searched for until found.
const PROBE_POLL: Duration = Duration::from_millis(50);
/// A probe not found within this long counts as lost.
const PROBE_GIVE_UP: Duration = Duration::from_secs(30);
/// Most sends a live sender has waiting for their ack.
const WINDOW: u64 = 256;
/// Messages of the replayed stream that queries (phrases, `from:` users) are drawn from.
const REPLAY: usize = 50_000;
/// Queries run before measuring, so the first measured ones do not pay for cold pages.
const WARM_UP: usize = 30;

struct Args {
    dir: PathBuf,
    bin: PathBuf,
    messages: u64,
    users: usize,
    conversations: usize,
    rooms: usize,
    seed: u64,
    queries: usize,
    live_rate: f64,
    live_seconds: f64,
    senders: usize,
}

const USAGE: &str = "usage: searchbench DIR [--bin PATH] [--messages N] [--seed S] [--queries N] \
[--live-rate R] [--live-seconds S] [--senders N]";

fn parse_args() -> Fallible<Args> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or(USAGE)?;
    let mut parsed = Args {
        dir: PathBuf::from(dir),
        bin: PathBuf::from("target/release/confab"),
        messages: 1_000_000,
        users: 500,
        conversations: 300,
        rooms: 100,
        seed: 1,
        queries: 1000,
        live_rate: 2200.0,
        live_seconds: 20.0,
        senders: 4,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or(format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag}: {e}");
        match flag.as_str() {
            "--bin" => parsed.bin = PathBuf::from(value),
            "--messages" => parsed.messages = value.parse().map_err(|e| bad(&e))?,
            "--seed" => parsed.seed = value.parse().map_err(|e| bad(&e))?,
            "--queries" => parsed.queries = value.parse().map_err(|e| bad(&e))?,
            "--live-rate" => parsed.live_rate = value.parse().map_err(|e| bad(&e))?,
            "--live-seconds" => parsed.live_seconds = value.parse().map_err(|e| bad(&e))?,
            "--senders" => parsed.senders = value.parse().map_err(|e| bad(&e))?,
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("searchbench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What one run measured, for the table and the JSON line.
#[derive(Default)]
struct Report {
    rows: Vec<(String, String, String)>,
    json: serde_json::Map<String, Value>,
}

impl Report {
    fn row(&mut self, what: &str, figure: String, verdict: &str) {
        println!("{what:<48} {figure:<58} {verdict}");
        self.rows.push((what.into(), figure, verdict.into()));
    }

    fn set(&mut self, key: &str, value: Value) {
        self.json.insert(key.into(), value);
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Bytes of the files under `path`.
fn tree_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_bytes(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

fn git_revision() -> String {
    Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=10"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn binary_version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

async fn run() -> Fallible<()> {
    let args = parse_args()?;
    if !args.bin.exists() {
        return Err(format!(
            "{} not found: run `cargo build --release --bin confab` first, or pass --bin",
            args.bin.display()
        ));
    }
    let office = Office::new(args.seed, args.users, args.conversations, args.rooms);
    let corpus = Corpus::new(args.seed);
    let mut report = Report::default();
    report.set("harness", json!(git_revision()));
    report.set("server", json!(binary_version(&args.bin)));
    report.set("messages", json!(args.messages));
    println!(
        "searchbench: {} on {} (harness {})",
        binary_version(&args.bin),
        args.dir.display(),
        git_revision()
    );

    let generated = args.dir.join("generated");
    if !generated.join("confab.redb").exists() {
        eprintln!(
            "writing {} messages, {} users, {} conversations into {}",
            args.messages,
            args.users,
            args.conversations,
            args.dir.display()
        );
        let seconds = office::generate(&generated, &office, &corpus, args.seed, args.messages)?;
        eprintln!(
            "wrote them in {seconds:.1} s: {:.0} MB",
            tree_bytes(&generated.join("confab.redb")) as f64 / 1e6
        );
    }
    let dir = args.dir.join("run");
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.to_string()),
        _ => {}
    }
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let db = dir.join("confab.redb");
    std::fs::copy(generated.join("confab.redb"), &db).map_err(|e| e.to_string())?;

    // The live senders write DMs of the office that user0000 is not in, one side each.
    let live_dms: Vec<(usize, usize)> = office
        .conversations
        .iter()
        .filter(|c| c.room.is_none() && !c.members.contains(&0))
        .take(args.senders)
        .map(|c| (c.members[0], c.members[1]))
        .collect();
    let mut usernames = vec!["user0000".to_owned()];
    usernames.extend(live_dms.iter().map(|(a, _)| format!("user{a:04}")));
    let passwords = reset_passwords(&args.bin, &dir, &usernames)?;
    let started = Instant::now();
    let server = Server::start(&args.bin, &dir, &["--frame-rate", "100000"])?;
    let addr = server.addr;
    let mut tokens = Vec::new();
    for (username, password) in &passwords {
        tokens.push(sign_in(addr, username, password).await?.1);
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;

    // 1. Build.
    let searcher = tokens[0].clone();
    loop {
        let (status, _) = search_body(&http, addr, &searcher, "the").await?;
        match status {
            200 => break,
            503 => tokio::time::sleep(Duration::from_millis(100)).await,
            other => return Err(format!("search answered {other} while building")),
        }
        if started.elapsed() > Duration::from_secs(3600) {
            return Err("the index was not built within an hour".into());
        }
    }
    let build = started.elapsed();
    let logged = server
        .log
        .try_iter()
        .find_map(|line| line.contains("the search index is ready").then_some(line));
    let built_messages = logged
        .as_deref()
        .and_then(|l| field(l, "messages="))
        .unwrap_or(args.messages as f64);
    let logged_seconds = logged.as_deref().and_then(|l| field(l, "seconds="));
    let rate = built_messages / build.as_secs_f64();
    report.row(
        "build: index from the database (fresh start)",
        format!(
            "{built_messages:.0} messages in {:.1} s (indexer: {:.1} s): {rate:.0} msg/s",
            build.as_secs_f64(),
            logged_seconds.unwrap_or(f64::NAN)
        ),
        verdict(rate >= TARGET_RATE),
    );
    report.set("build_seconds", json!(build.as_secs_f64()));
    report.set("build_rate", json!(rate.round()));
    let size_built = tree_bytes(&dir.join("search"));

    // 2. Queries.
    let queries = Queries::new(&office, &corpus, args.seed);
    let scope = office.of(0);
    report.row(
        "searching user: user0000",
        format!(
            "in {} conversations ({} rooms), {:.0} % of the messages",
            scope.len(),
            queries.rooms.len(),
            100.0 * office.share_of(&scope)
        ),
        "",
    );
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x71_7565_7279);
    for _ in 0..WARM_UP {
        let q = queries.make(Shape::TwoWords, &corpus, &mut rng, 0);
        search_timed(&http, addr, &searcher, &q).await?;
    }
    for shape in Shape::ALL {
        let count = match shape {
            Shape::TwoWords => args.queries,
            _ => args.queries / 5,
        };
        let mut timed = Timed::default();
        let began = Instant::now();
        for i in 0..count {
            let q = queries.make(shape, &corpus, &mut rng, i);
            timed.add(i % 3, search_timed(&http, addr, &searcher, &q).await?);
        }
        timed.report(&mut report, shape, "", began.elapsed());
    }

    // 3. Live indexing.
    let ids = user_ids(&http, addr, &searcher).await?;
    let mut senders = Vec::new();
    for (k, (_, partner)) in live_dms.iter().enumerate() {
        let partner = *ids
            .get(&format!("user{partner:04}"))
            .ok_or("a live partner is not in the directory")?;
        senders.push((tokens[k + 1].clone(), partner));
    }
    // The searcher goes on searching meanwhile.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut during = Timed::default();
    let began = Instant::now();
    let (live, searched) = tokio::join!(
        async {
            let live = live(&http, addr, &senders, &corpus, &args).await;
            stop.store(true, Ordering::SeqCst);
            live
        },
        async {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let q = queries.make(Shape::TwoWords, &corpus, &mut rng, i);
                during.add(i % 3, search_timed(&http, addr, &searcher, &q).await?);
                i += 1;
            }
            Ok::<(), String>(())
        }
    );
    let live = live?;
    searched?;
    during.report(
        &mut report,
        Shape::TwoWords,
        " while indexing live",
        began.elapsed(),
    );
    let lag_p99 = percentile(&live.lags, 99.0);
    let rate_ok = live.acked_rate >= TARGET_RATE;
    report.row(
        "live: sends acked",
        format!(
            "{} in {:.1} s: {:.0} msg/s (offered {:.0}), ack p50 {} / p99 {} ms",
            live.acked,
            live.seconds,
            live.acked_rate,
            args.live_rate,
            ms(percentile(&live.acks, 50.0)),
            ms(percentile(&live.acks, 99.0))
        ),
        verdict(rate_ok),
    );
    let half = live.lags_by_time.len() / 2;
    let mut first: Vec<Duration> = live.lags_by_time[..half].to_vec();
    let mut second: Vec<Duration> = live.lags_by_time[half..].to_vec();
    first.sort();
    second.sort();
    let lost = live.probes - live.lags.len();
    report.row(
        "live: ack → findable (every 100th message)",
        format!(
            "{} probes, p50 {} / p99 {} / max {} ms; p99 1st half {} 2nd half {}; {} lost",
            live.probes,
            ms(percentile(&live.lags, 50.0)),
            ms(lag_p99),
            ms(live.lags.last().copied().unwrap_or_default()),
            ms(percentile(&first, 99.0)),
            ms(percentile(&second, 99.0)),
            lost
        ),
        verdict(rate_ok && lost == 0 && lag_p99 <= TARGET_LAG),
    );
    report.set(
        "live",
        json!({"acked_rate": live.acked_rate.round(), "offered_rate": args.live_rate,
               "ack_p99_ms": ms(percentile(&live.acks, 99.0)),
               "lag_p50_ms": ms(percentile(&live.lags, 50.0)), "lag_p99_ms": ms(lag_p99),
               "lag_max_ms": ms(live.lags.last().copied().unwrap_or_default()),
               "probes": live.probes, "lost": lost, "incomplete_answers": live.incomplete}),
    );
    let warnings: Vec<String> = server
        .log
        .try_iter()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    for warning in &warnings {
        println!("  server: {warning}");
    }

    // 4. Size, after a clean stop.
    drop(server);
    let index = tree_bytes(&dir.join("search"));
    let database = tree_bytes(&db);
    let ratio = index as f64 / database as f64;
    report.row(
        "size: search index / database file",
        format!(
            "{:.0} MB / {:.0} MB = {ratio:.2}× (right after the build: {:.0} MB)",
            index as f64 / 1e6,
            database as f64 / 1e6,
            size_built as f64 / 1e6
        ),
        verdict(ratio <= TARGET_SIZE_RATIO),
    );
    report.set("index_bytes", json!(index));
    report.set("index_bytes_after_build", json!(size_built));
    report.set("database_bytes", json!(database));
    report.set("ratio", json!((ratio * 100.0).round() / 100.0));
    println!("{}", Value::Object(report.json));
    Ok(())
}

/// The number after `key` in a log line (`seconds=12.5`).
fn field(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number.parse().ok()
}

/// One search as the web client asks it: the status and the answer.
async fn search_body(
    http: &reqwest::Client,
    addr: SocketAddr,
    token: &str,
    q: &str,
) -> Fallible<(u16, Value)> {
    let response = http
        .get(format!("http://{addr}/api/search"))
        .query(&[("q", q)])
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("search {q:?}: {e}"))?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// One search, timed; an error unless it answered 200.
async fn search_timed(
    http: &reqwest::Client,
    addr: SocketAddr,
    token: &str,
    q: &str,
) -> Fallible<(Duration, usize)> {
    let sent = Instant::now();
    let (status, body) = search_body(http, addr, token, q).await?;
    let took = sent.elapsed();
    if status != 200 {
        return Err(format!("search {q:?} answered {status}: {body}"));
    }
    Ok((took, body["hits"].as_array().map_or(0, Vec::len)))
}

/// The kinds of query measured; the first is the issue's target.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    TwoWords,
    Prefix,
    Phrase,
    InRoom,
}

impl Shape {
    const ALL: [Shape; 4] = [Shape::TwoWords, Shape::Prefix, Shape::Phrase, Shape::InRoom];

    fn name(self) -> &'static str {
        match self {
            Shape::TwoWords => "two words + from:",
            Shape::Prefix => "one word prefix (3 letters)",
            Shape::Phrase => "phrase of two words",
            Shape::InRoom => "word + in:room",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Shape::TwoWords => "two_words_from",
            Shape::Prefix => "prefix",
            Shape::Phrase => "phrase",
            Shape::InRoom => "in_room",
        }
    }
}

/// Latencies of one shape of query, also by kind of word pair (frequent, mixed, rare).
#[derive(Default)]
struct Timed {
    all: Vec<Duration>,
    by_kind: [Vec<Duration>; 3],
    hits: usize,
}

impl Timed {
    fn add(&mut self, kind: usize, (took, hits): (Duration, usize)) {
        self.all.push(took);
        self.by_kind[kind % 3].push(took);
        self.hits += hits;
    }

    fn report(mut self, report: &mut Report, shape: Shape, when: &str, elapsed: Duration) {
        let count = self.all.len().max(1);
        self.all.sort();
        let at = |p| ms(percentile(&self.all, p));
        let max = ms(self.all.last().copied().unwrap_or_default());
        let per_second = count as f64 / elapsed.as_secs_f64();
        let hits = self.hits as f64 / count as f64;
        let p99 = percentile(&self.all, 99.0);
        report.row(
            &format!("query: {}{when}", shape.name()),
            format!(
                "{count} queries: p50 {} / p95 {} / p99 {} / max {max} ms, {per_second:.0} q/s, {hits:.1} hits",
                at(50.0),
                at(95.0),
                at(99.0)
            ),
            if shape == Shape::TwoWords {
                verdict(p99 <= TARGET_QUERY_P99)
            } else {
                ""
            },
        );
        report.set(
            &format!("{}{}", shape.key(), when.replace(' ', "_")),
            json!({"count": count, "p50_ms": at(50.0), "p95_ms": at(95.0), "p99_ms": at(99.0),
                   "max_ms": max, "qps": per_second.round(), "hits": hits}),
        );
        if shape == Shape::TwoWords {
            for (kind, mut list) in self.by_kind.into_iter().enumerate() {
                list.sort();
                let name = ["both frequent", "frequent + any", "both any"][kind];
                report.row(
                    &format!("  of which {name}"),
                    format!(
                        "p50 {} / p99 {} ms",
                        ms(percentile(&list, 50.0)),
                        ms(percentile(&list, 99.0))
                    ),
                    "",
                );
            }
        }
    }
}

/// username → account id, from the directory.
async fn user_ids(
    http: &reqwest::Client,
    addr: SocketAddr,
    token: &str,
) -> Fallible<HashMap<String, i64>> {
    let list: Value = http
        .get(format!("http://{addr}/api/users"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    Ok(list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| Some((u["username"].as_str()?.to_owned(), u["id"].as_i64()?)))
        .collect())
}

/// What queries are made of: the searcher's rooms, and from the replayed message stream, who
/// writes in the searcher's conversations (as often as they write) and two-word phrases.
struct Queries {
    rooms: Vec<String>,
    authors: Vec<usize>,
    phrases: Vec<String>,
}

impl Queries {
    fn new(office: &Office, corpus: &Corpus, seed: u64) -> Queries {
        let scope = office.of(0);
        let mut authors = Vec::new();
        let mut phrases = Vec::new();
        for message in Messages::new(office, corpus, seed).take(REPLAY) {
            if !scope.contains(&message.conversation) {
                continue;
            }
            authors.push(message.sender);
            let words: Vec<&str> = message
                .body
                .split([' ', ',', '.', '?', '!'])
                .filter(|w| !w.is_empty())
                .collect();
            if let Some(pair) = words.windows(2).find(|w| {
                w.iter()
                    .all(|x| x.chars().all(|c| c.is_ascii_alphabetic()) && x.len() > 2)
            }) {
                phrases.push(format!("\"{} {}\"", pair[0], pair[1]));
            }
        }
        let rooms = scope
            .iter()
            .filter_map(|&c| office.conversations[c].room.clone())
            .collect();
        Queries {
            rooms,
            authors,
            phrases,
        }
    }

    /// Query `i` of `shape`.
    fn make(&self, shape: Shape, corpus: &Corpus, rng: &mut StdRng, i: usize) -> String {
        match shape {
            Shape::TwoWords => self.two_words(corpus, rng, i % 3),
            Shape::Prefix => self.prefix(corpus, rng),
            Shape::Phrase => self.phrase(rng),
            Shape::InRoom => self.in_room(corpus, rng),
        }
    }

    /// `kind` 0: both words drawn by frequency; 1: one so, one from the whole vocabulary;
    /// 2: both from the whole vocabulary.
    fn two_words(&self, corpus: &Corpus, rng: &mut StdRng, kind: usize) -> String {
        let first = if kind == 2 {
            corpus.any_word(rng)
        } else {
            corpus.frequent_word(rng)
        };
        let second = if kind == 0 {
            corpus.frequent_word(rng)
        } else {
            corpus.any_word(rng)
        };
        let author = self.authors.choose(rng).copied().unwrap_or(0);
        format!("{first} {second} from:user{author:04}")
    }

    fn prefix(&self, corpus: &Corpus, rng: &mut StdRng) -> String {
        corpus.frequent_word(rng).chars().take(3).collect()
    }

    fn phrase(&self, rng: &mut StdRng) -> String {
        self.phrases.choose(rng).cloned().unwrap_or_default()
    }

    fn in_room(&self, corpus: &Corpus, rng: &mut StdRng) -> String {
        let room = self.rooms.choose(rng).cloned().unwrap_or_default();
        format!("{} in:\"{room}\"", corpus.frequent_word(rng))
    }
}

/// What the live phase measured.
struct Live {
    acked: u64,
    seconds: f64,
    acked_rate: f64,
    acks: Vec<Duration>,
    probes: usize,
    /// Ack → found, sorted; and in the order the probes were sent.
    lags: Vec<Duration>,
    lags_by_time: Vec<Duration>,
    /// Probe searches answered `complete: false` (the index was catching up).
    incomplete: usize,
}

/// Shared by a sender's writing and reading halves.
#[derive(Default)]
struct Tally {
    acked: AtomicU64,
    incomplete: AtomicUsize,
    /// client id → when it was sent.
    pending: Mutex<HashMap<String, Instant>>,
    acks: Mutex<Vec<Duration>>,
    last_ack: Mutex<Option<Instant>>,
    /// (probe number, lag), `None` if never found.
    lags: Mutex<Vec<(u64, Option<Duration>)>>,
}

async fn live(
    http: &reqwest::Client,
    addr: SocketAddr,
    senders: &[(String, i64)],
    corpus: &Corpus,
    args: &Args,
) -> Fallible<Live> {
    let per_sender = args.live_rate / senders.len() as f64;
    let total = (args.live_rate * args.live_seconds) as u64;
    let quota = total / senders.len() as u64;
    let tally = Arc::new(Tally::default());
    let began = Instant::now();
    let mut tasks = Vec::new();
    for (k, (token, partner)) in senders.iter().enumerate() {
        let bodies: Vec<String> = {
            let mut rng = StdRng::seed_from_u64(args.seed ^ (k as u64 + 1) << 32);
            (0..quota).map(|_| corpus.message(&mut rng)).collect()
        };
        tasks.push(tokio::spawn(send_dms(
            SendPlan {
                http: http.clone(),
                addr,
                token: token.clone(),
                partner: *partner,
                sender: k,
                rate: per_sender,
                bodies,
            },
            tally.clone(),
        )));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    // Until the last ack: the probes' searches may go on a little after it.
    let seconds = tally
        .last_ack
        .lock()
        .await
        .map_or(0.0, |at| (at - began).as_secs_f64());
    let acked = tally.acked.load(Ordering::SeqCst);
    let mut acks = tally.acks.lock().await.clone();
    acks.sort();
    let mut probes = tally.lags.lock().await.clone();
    probes.sort_by_key(|(n, _)| *n);
    let lags_by_time: Vec<Duration> = probes.iter().filter_map(|(_, lag)| *lag).collect();
    let mut lags = lags_by_time.clone();
    lags.sort();
    Ok(Live {
        acked,
        seconds,
        acked_rate: acked as f64 / seconds,
        acks,
        probes: probes.len(),
        lags,
        lags_by_time,
        incomplete: tally.incomplete.load(Ordering::SeqCst),
    })
}

struct SendPlan {
    http: reqwest::Client,
    addr: SocketAddr,
    token: String,
    partner: i64,
    sender: usize,
    /// Messages per second.
    rate: f64,
    bodies: Vec<String>,
}

/// Sends `plan.bodies` as DMs at `plan.rate`, at most `WINDOW` unacked; every
/// `PROBE_EVERY`th carries a unique word that is then searched for until found. Returns when
/// every send is acked and every probe found or given up.
async fn send_dms(plan: SendPlan, tally: Arc<Tally>) -> Fallible<()> {
    let mut request = format!("ws://{}/ws", plan.addr)
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let bearer =
        HeaderValue::from_str(&format!("Bearer {}", plan.token)).map_err(|e| e.to_string())?;
    request.headers_mut().insert("authorization", bearer);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .map_err(|e| format!("WebSocket: {e}"))?;
    let (mut sink, stream) = ws.split();
    let plan = Arc::new(plan);
    // This sender's acks, for its window.
    let acked = Arc::new(AtomicU64::new(0));
    let reader = tokio::spawn(read_acks(
        stream,
        plan.clone(),
        tally.clone(),
        acked.clone(),
    ));
    let began = Instant::now();
    for (n, body) in plan.bodies.iter().enumerate() {
        let n = n as u64;
        let due = began + Duration::from_secs_f64(n as f64 / plan.rate);
        tokio::time::sleep_until(due.into()).await;
        while n.saturating_sub(acked.load(Ordering::SeqCst)) >= WINDOW {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let client_id = format!("live-{}-{n}", plan.sender);
        let body = if n.is_multiple_of(PROBE_EVERY) {
            format!("{body} {}", probe_word(plan.sender, n))
        } else {
            body.clone()
        };
        let frame =
            json!({"type": "send", "to": plan.partner, "body": body, "client_id": client_id});
        tally.pending.lock().await.insert(client_id, Instant::now());
        sink.send(Message::text(frame.to_string()))
            .await
            .map_err(|e| format!("send: {e}"))?;
    }
    reader.await.map_err(|e| e.to_string())??;
    let _ = sink.close().await;
    Ok(())
}

/// Reads a sender's socket until every send is acked, starting a probe search for each
/// probe's ack; then waits for the probes.
async fn read_acks(
    mut stream: futures_util::stream::SplitStream<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    >,
    plan: Arc<SendPlan>,
    tally: Arc<Tally>,
    acked: Arc<AtomicU64>,
) -> Fallible<()> {
    let quota = plan.bodies.len() as u64;
    let mut probes = Vec::new();
    while acked.load(Ordering::SeqCst) < quota {
        let next = tokio::time::timeout(Duration::from_secs(60), stream.next())
            .await
            .map_err(|_| "no frame within 60 s".to_owned())?;
        let text = match next {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            other => return Err(format!("the socket ended: {other:?}")),
        };
        let frame: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
        match frame["type"].as_str() {
            Some("ack") => {}
            Some("error") => return Err(format!("sender {}: {frame}", plan.sender)),
            _ => continue,
        }
        let client_id = frame["client_id"].as_str().unwrap_or_default();
        let Some(sent) = tally.pending.lock().await.remove(client_id) else {
            continue;
        };
        let at = Instant::now();
        tally.acks.lock().await.push(at - sent);
        *tally.last_ack.lock().await = Some(at);
        tally.acked.fetch_add(1, Ordering::SeqCst);
        acked.fetch_add(1, Ordering::SeqCst);
        let n: u64 = client_id
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if n.is_multiple_of(PROBE_EVERY) {
            probes.push(tokio::spawn(find_probe(plan.clone(), tally.clone(), n, at)));
        }
    }
    for probe in probes {
        probe.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// A word no generated text contains, and that no other probe's word starts with (prefix
/// matching: all are as long), so only its own message is found by it.
fn probe_word(sender: usize, n: u64) -> String {
    format!("zq{sender:02}x{n:08}")
}

/// Searches for probe `n`'s word from its ack until it is found: the lag.
async fn find_probe(
    plan: Arc<SendPlan>,
    tally: Arc<Tally>,
    n: u64,
    acked: Instant,
) -> Fallible<()> {
    let word = probe_word(plan.sender, n);
    let lag = loop {
        let (status, body) = search_body(&plan.http, plan.addr, &plan.token, &word).await?;
        if status != 200 {
            return Err(format!("probe search answered {status}: {body}"));
        }
        if body["complete"] == false {
            tally.incomplete.fetch_add(1, Ordering::SeqCst);
        }
        if body["hits"].as_array().is_some_and(|h| !h.is_empty()) {
            break Some(acked.elapsed());
        }
        if acked.elapsed() > PROBE_GIVE_UP {
            break None;
        }
        tokio::time::sleep(PROBE_POLL).await;
    };
    tally.lags.lock().await.push((n, lag));
    Ok(())
}
