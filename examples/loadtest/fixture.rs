//! Data directories written through confab's own store before the server starts, cached between
//! runs: users with sessions and signed tokens (no argon2 hashes, so 1,000 users cost seconds,
//! not 80 s of sign-ups), and histories of any length (as `examples/bigdb.rs` writes them).
//!
//! A cache entry is `<cache>/<name>/` holding `confab.redb`, the search index the server built
//! over it (`search/`), and `users.json` (ids and tokens), written last: an entry without it is
//! incomplete and is written again. Each run works on a copy, so the cache stays as written.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use confab::store::{ChatOp, NewUser, Role, SendTarget, Store};

use crate::Fallible;
use crate::client::User;
use crate::server::{Launch, Server};

/// Sessions of the fixture users last this long, so a cache stays usable.
const SESSION_TTL_SECS: u64 = 365 * 24 * 3600;

/// What a cached data directory holds.
pub struct Spec {
    /// Accounts, `load00000`… (the first is an administrator).
    pub users: usize,
    /// How many of them get a session and a token.
    pub sessions: usize,
    /// DMs from user `n % users` to user `(n + 1) % users` (with 2 users: one conversation).
    pub messages: u64,
    pub body_bytes: usize,
}

impl Spec {
    fn name(&self) -> String {
        format!(
            "u{}-s{}-m{}-b{}",
            self.users, self.sessions, self.messages, self.body_bytes
        )
    }
}

/// A cached data directory, written (and its search index built by `launch`'s server) when
/// missing. Returns its path and users.
pub fn cached(cache: &Path, spec: &Spec, launch: &Launch) -> Fallible<(PathBuf, Vec<User>)> {
    let dir = cache.join(spec.name());
    let users_file = dir.join("users.json");
    if let Ok(text) = std::fs::read_to_string(&users_file) {
        let users = serde_json::from_str(&text).map_err(|e| format!("{e}"))?;
        return Ok((dir, users));
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let started = Instant::now();
    eprintln!(
        "fixture:  writing {} (cached for later runs)",
        dir.display()
    );
    let users = write(&dir, spec)?;
    if spec.messages > 0 {
        // The server builds its search index over a database it has no index for; do it now so
        // the runs measure a server that restarts, not one that indexes everything.
        let mut server = Server::start(launch, &dir, false)?;
        if !server.wait_for_log("the search index is ready", Duration::from_secs(3600)) {
            return Err("the server did not finish building the search index".to_owned());
        }
        server.stop();
    }
    let text = serde_json::to_string(&users).map_err(|e| e.to_string())?;
    std::fs::write(&users_file, text).map_err(|e| format!("{}: {e}", users_file.display()))?;
    eprintln!(
        "fixture:  written in {:.1} s ({:.0} MB)",
        started.elapsed().as_secs_f64(),
        std::fs::metadata(dir.join("confab.redb")).map_or(0, |m| m.len()) as f64 / 1e6
    );
    Ok((dir, users))
}

/// A copy of a cached directory in `into` (an empty directory), for one run to change.
pub fn copy(from: &Path, into: &Path) -> Fallible<()> {
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let target = into.join(entry.file_name());
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| e.to_string())?;
            copy(&entry.path(), &target)?;
        } else if kind.is_file() && entry.file_name() != "users.json" {
            std::fs::copy(entry.path(), &target)
                .map_err(|e| format!("copy {}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn write(dir: &Path, spec: &Spec) -> Fallible<Vec<User>> {
    let store = Store::open(&dir.join("confab.redb")).map_err(|e| e.to_string())?;
    let key =
        jsonwebtoken::EncodingKey::from_secret(&store.jwt_secret().map_err(|e| e.to_string())?);
    let mut ids = Vec::with_capacity(spec.users);
    for n in 0..spec.users {
        let user = store
            .create_user(NewUser {
                username: format!("load{n:05}"),
                display_name: format!("Load {n}"),
                // Not a usable hash: these accounts sign in only with the tokens below.
                password_hash: "!".into(),
                role: if n == 0 { Role::Admin } else { Role::Member },
                must_change_password: false,
            })
            .map_err(|e| e.to_string())?;
        ids.push(user.id);
    }
    let mut users = Vec::with_capacity(spec.sessions);
    for &id in ids.iter().take(spec.sessions) {
        let session = store
            .create_session(id, SESSION_TTL_SECS)
            .map_err(|e| e.to_string())?;
        let now = confab::store::now_secs();
        // The claims `auth::token` signs and checks (HS256, pinned there).
        let claims = serde_json::json!({"sub": id.to_string(), "sid": format!("{:032x}", session.id),
                                        "iat": now, "exp": session.expires_at});
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        let token = jsonwebtoken::encode(&header, &claims, &key)
            .map_err(|e| format!("could not sign a token: {e}"))?;
        users.push(User {
            id: id as i64,
            token,
        });
    }
    let body = "lorem ipsum dolor sit amet ".repeat(spec.body_bytes / 27 + 1);
    let body = &body[..spec.body_bytes];
    let users_n = spec.users as u64;
    let mut sent = 0u64;
    let started = Instant::now();
    while sent < spec.messages {
        // Batches the size the writer commits, so the file has the layout a busy office gives it.
        let batch: Vec<ChatOp> = (sent..spec.messages.min(sent + 256))
            .map(|n| ChatOp::Send {
                sender: ids[(n % users_n) as usize],
                target: SendTarget::User(ids[((n + 1) % users_n) as usize]),
                body: format!("{n} {body}"),
                client_id: format!("fixture-{n}"),
                sent_at: confab::store::now_millis(),
                reply_to: None,
                files: Vec::new(),
            })
            .collect();
        sent += batch.len() as u64;
        store.apply_chat_batch(&batch).map_err(|e| e.to_string())?;
        if sent % 100_000 < 256 {
            eprintln!(
                "fixture:  {sent} messages, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(users)
}
