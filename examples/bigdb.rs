//! Writes a large database through confab's own store, for measuring what scales with the
//! file: opening it, `confab check`, backups.
//!
//! ```text
//! cargo run --release --example bigdb -- DIR [--messages N] [--users U] [--body-bytes B] [--rooms R]
//! time target/release/confab check --data-dir DIR
//! ```
//!
//! Users get DMs with their neighbours (user i writes to i+1), in batches the size the writer
//! commits, so the file has the layout a busy office gives it. `--rooms R` also creates R rooms
//! (every fourth private), all with user 0 and a slice of the others, for measuring how the web
//! client's lists behave in a big office (`tests/e2e/bench/big-office.mjs`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use confab::store::{ChatOp, RoomOp, SendTarget, Store, Visibility};

#[path = "common/accounts.rs"]
mod accounts;

struct Args {
    dir: PathBuf,
    messages: u64,
    users: u64,
    body_bytes: usize,
    rooms: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: bigdb DIR [--messages N] [--users U] [--body-bytes B] [--rooms R]")?;
    let mut parsed = Args {
        dir: PathBuf::from(dir),
        messages: 1_000_000,
        users: 500,
        body_bytes: 120,
        rooms: 0,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--messages" => parsed.messages = number(&value)?,
            "--users" => parsed.users = number(&value)?.max(2),
            "--body-bytes" => parsed.body_bytes = number(&value)? as usize,
            "--rooms" => parsed.rooms = number(&value)?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bigdb: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    std::fs::create_dir_all(&args.dir).map_err(|e| e.to_string())?;
    let store = Store::open(&args.dir.join("confab.redb")).map_err(|e| e.to_string())?;
    let ids = accounts::create_users(&store, args.users)?;
    create_rooms(&store, &ids, args.rooms)?;
    let started = Instant::now();
    let body = "lorem ipsum dolor sit amet ".repeat(args.body_bytes / 27 + 1);
    let body = &body[..args.body_bytes];
    let mut sent = 0u64;
    while sent < args.messages {
        let batch: Vec<ChatOp> = (sent..args.messages.min(sent + 256))
            .map(|n| {
                let from = ids[(n % args.users) as usize];
                let to = ids[((n + 1) % args.users) as usize];
                ChatOp::Send {
                    sender: from,
                    target: SendTarget::User(to),
                    body: format!("{n} {body}"),
                    client_id: format!("bigdb-{n}"),
                    sent_at: confab::store::now_millis(),
                    reply_to: None,
                    files: Vec::new(),
                }
            })
            .collect();
        sent += batch.len() as u64;
        store.apply_chat_batch(&batch).map_err(|e| e.to_string())?;
        if sent % 100_000 < 256 {
            eprintln!("{sent} messages, {:.0} s", started.elapsed().as_secs_f64());
        }
    }
    drop(store);
    let size = std::fs::metadata(args.dir.join("confab.redb"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "wrote {} messages from {} users in {:.1} s: {:.0} MB",
        args.messages,
        args.users,
        started.elapsed().as_secs_f64(),
        size as f64 / 1e6
    );
    Ok(())
}

/// Rooms named and described like an office's ("Team 12 · Invoices and payroll"), in one batch.
fn create_rooms(store: &Store, users: &[u64], count: u64) -> Result<(), String> {
    const SUBJECTS: [&str; 8] = [
        "Invoices and payroll",
        "Customer support rota",
        "Warehouse deliveries",
        "Marketing launch plans",
        "IT help and printers",
        "Kitchen and cake",
        "Sales leads this quarter",
        "Building and parking",
    ];
    let ops: Vec<ChatOp> = (0..count)
        .map(|n| {
            let members = users
                .iter()
                .skip(1 + (n as usize * 7) % users.len().max(1))
                .take(20)
                .copied()
                .collect();
            ChatOp::Room(RoomOp::Create {
                creator: users[0],
                name: format!("Team {n:03}"),
                topic: SUBJECTS[n as usize % SUBJECTS.len()].into(),
                visibility: if n % 4 == 3 {
                    Visibility::Private
                } else {
                    Visibility::Open
                },
                members,
                at: confab::store::now_millis() / 1000,
            })
        })
        .collect();
    store.apply_chat_batch(&ops).map_err(|e| e.to_string())?;
    Ok(())
}
