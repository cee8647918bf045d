//! What a room costs the store, measured where the writer spends it: one transaction and its
//! commit (with fsync), with no sockets, fan-out or load generator in the way.
//!
//! ```text
//! cargo run --release --example roomcost -- [--members N] [--sends N] [--history N] [--dir DIR]
//! ```
//!
//! 1. **Commit cost**: single-send batches, a DM and a send into General (everyone's room, so
//!    `--members` members) alternately, each timed around `apply_chat_batch`: exactly the
//!    writer's transaction and commit for a batch of one. Alternating makes both kinds share the
//!    disk's and the machine's noise.
//! 2. **Joining a long room**: a room with `--history` messages; members join it one at a time,
//!    and each join is followed by what the client then asks for: the conversation list (as in
//!    `hello`) and the newest page of 50. The same is timed for a room with 100 messages, so the
//!    ratio shows whether anything grows with the history.
//! 3. **Scrub**: what erasing deleted text from the file's free pages costs the writer
//!    (`Store::scrub_free_pages`), on the database the first two parts wrote.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use confab::store::{
    ChatOp, ChatOutcome, ConversationId, HistoryQuery, RoomEvent, RoomOp, SendTarget, Store,
    Visibility, now_millis,
};

#[path = "common/accounts.rs"]
mod accounts;

struct Args {
    members: u64,
    sends: usize,
    history: u64,
    dir: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut parsed = Args {
        members: 1000,
        sends: 1000,
        history: 100_000,
        dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--members" => parsed.members = number(&value)?.max(2),
            "--sends" => parsed.sends = number(&value)? as usize,
            "--history" => parsed.history = number(&value)?,
            "--dir" => parsed.dir = Some(PathBuf::from(value)),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roomcost: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let store = Store::open(&dir.join("confab.redb")).map_err(|e| e.to_string())?;
    let users = accounts::create_users(&store, args.members)?;
    println!(
        "confab roomcost: {} members in General, {} sends of each kind, {} messages of history",
        users.len(),
        args.sends,
        args.history
    );
    commit_cost(&store, &users, args.sends)?;
    join_cost(&store, &users, args.history)?;
    scrub_cost(&store, &dir)?;
    Ok(())
}

fn scrub_cost(store: &Store, dir: &std::path::Path) -> Result<(), String> {
    let size = || std::fs::metadata(dir.join("confab.redb")).map_or(0, |m| m.len());
    let before = size();
    let mut times = Vec::new();
    let mut rows = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        rows.push(store.scrub_free_pages().map_err(|e| e.to_string())?);
        times.push(started.elapsed());
    }
    rows.sort();
    println!(
        "\nscrub of free pages ({:.1} MB file → {:.1} MB): {}; filler rows p50 {} max {}",
        before as f64 / 1e6,
        size() as f64 / 1e6,
        Summary::of(times),
        rows[rows.len() / 2],
        rows[rows.len() - 1],
    );
    Ok(())
}

fn send(sender: u64, target: SendTarget, n: usize) -> ChatOp {
    ChatOp::Send {
        sender,
        target,
        body: format!("message {n}: the quarterly report is in the shared folder"),
        client_id: format!("roomcost-{n}"),
        sent_at: now_millis(),
        reply_to: None,
        files: Vec::new(),
    }
}

/// Times one batch; refuses anything the store did not store.
fn timed_apply(store: &Store, ops: &[ChatOp]) -> Result<(Duration, Vec<ChatOutcome>), String> {
    let started = Instant::now();
    let outcomes = store.apply_chat_batch(ops).map_err(|e| e.to_string())?;
    let took = started.elapsed();
    if let Some(bad) = outcomes
        .iter()
        .find(|o| matches!(o, ChatOutcome::Rejected(_)))
    {
        return Err(format!("the store refused an op: {bad:?}"));
    }
    Ok((took, outcomes))
}

fn commit_cost(store: &Store, users: &[u64], sends: usize) -> Result<(), String> {
    let mut dm = Vec::with_capacity(sends);
    let mut room = Vec::with_capacity(sends);
    for n in 0..sends {
        let a = users[n % users.len()];
        let b = users[(n + 1) % users.len()];
        let general = SendTarget::Conversation(ConversationId::general());
        dm.push(timed_apply(store, &[send(a, SendTarget::User(b), 2 * n)])?.0);
        room.push(timed_apply(store, &[send(a, general, 2 * n + 1)])?.0);
    }
    let (dm, room) = (Summary::of(dm), Summary::of(room));
    println!("\ncommit of a one-send batch (transaction + fsync), alternating:");
    println!("  DM                 {dm}");
    println!("  room ({:>4} members) {room}", users.len());
    println!(
        "  room / DM: p50 {:.2}×, p90 {:.2}×, p99 {:.2}×, mean {:.2}×",
        ratio(room.p50, dm.p50),
        ratio(room.p90, dm.p90),
        ratio(room.p99, dm.p99),
        ratio(room.mean, dm.mean),
    );
    Ok(())
}

fn join_cost(store: &Store, users: &[u64], history: u64) -> Result<(), String> {
    let owner = users[0];
    let joiners = &users[users.len() / 2..];
    let short = fill_room(store, owner, "short room", 100)?;
    let long = fill_room(store, owner, "long room", history)?;
    println!("\njoining a room, then the conversation list and the newest page of 50:");
    let mut rows = Vec::new();
    for (room, label) in [(&short, "100 messages"), (&long, "long room")] {
        let mut join = Vec::new();
        let mut list = Vec::new();
        let mut page = Vec::new();
        for &user in joiners.iter().take(200) {
            let op = ChatOp::Room(RoomOp::Join {
                user,
                room: room.clone(),
                at: now_millis() / 1000,
            });
            join.push(timed_apply(store, &[op])?.0);
            let started = Instant::now();
            let listed = store.conversations(user).map_err(|e| e.to_string())?;
            list.push(started.elapsed());
            if !listed.iter().any(|c| c.id == *room) {
                return Err("a joined room is missing from the conversation list".into());
            }
            let started = Instant::now();
            let newest = store
                .history(user, room, HistoryQuery::Before(None, 50))
                .map_err(|e| e.to_string())?
                .ok_or("a member was refused the history")?;
            page.push(started.elapsed());
            if newest.messages.len() != 50 {
                return Err(format!(
                    "newest page had {} messages",
                    newest.messages.len()
                ));
            }
        }
        let (join, list, page) = (Summary::of(join), Summary::of(list), Summary::of(page));
        println!("  {label:<13} join     {join}");
        println!("  {label:<13} list     {list}");
        println!("  {label:<13} page     {page}");
        rows.push((join, page));
    }
    println!(
        "  long / short: join p50 {:.2}×, newest page p50 {:.2}×",
        ratio(rows[1].0.p50, rows[0].0.p50),
        ratio(rows[1].1.p50, rows[0].1.p50),
    );
    Ok(())
}

/// An open room with `messages` messages from its first ten members, written in the writer's
/// batch size.
fn fill_room(
    store: &Store,
    owner: u64,
    name: &str,
    messages: u64,
) -> Result<ConversationId, String> {
    let create = ChatOp::Room(RoomOp::Create {
        creator: owner,
        name: name.into(),
        topic: String::new(),
        visibility: Visibility::Open,
        members: Vec::new(),
        at: now_millis() / 1000,
    });
    let (_, outcomes) = timed_apply(store, &[create])?;
    let Some(ChatOutcome::Room(RoomEvent::Created { room, .. })) = outcomes.into_iter().next()
    else {
        return Err("room creation answered something else".into());
    };
    let started = Instant::now();
    let mut sent = 0;
    while sent < messages {
        let batch: Vec<ChatOp> = (sent..messages.min(sent + 256))
            .map(|n| {
                let target = SendTarget::Conversation(room.clone());
                send(owner, target, (n as usize) + 1_000_000 * name.len())
            })
            .collect();
        sent += batch.len() as u64;
        timed_apply(store, &batch)?;
    }
    eprintln!(
        "{name}: {messages} messages written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(room)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

struct Summary {
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
    mean: Duration,
}

impl Summary {
    fn of(mut samples: Vec<Duration>) -> Summary {
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        let total: Duration = samples.iter().sum();
        Summary {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: at(1.0),
            mean: total / samples.len() as u32,
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "p50 {:.2} ms  p90 {:.2}  p99 {:.2}  max {:.2}  mean {:.2}",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max),
            ms(self.mean)
        )
    }
}
