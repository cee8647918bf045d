//! Fills a running confab with a small office through the public API and writes what a later
//! release must find in that database to `expected.json`. Run by
//! `tests/fixtures/make-v0.1-fixture.sh`, which starts and stops the server around it and keeps
//! the database file; see tests/fixtures/README.md.
//!
//! ```text
//! cargo run --example make_fixture -- --addr 127.0.0.1:PORT --setup-token TOKEN --out expected.json
//! ```
//!
//! The server must be fresh (no account yet). Every message waits for its `ack`, so seqs and
//! ordering are the same on every run; only ids, times and tokens differ.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;
type Fallible<T> = Result<T, String>;

/// How long any one expected answer or frame may take.
const WAIT: Duration = Duration::from_secs(15);
/// 0.1's `limits::PRESENCE_GRACE`: a user is announced offline (and `last_seen` saved) this
/// long after their last tab closes.
const PRESENCE_GRACE: Duration = Duration::from_secs(3);

const USAGE: &str = "usage: make_fixture --addr HOST:PORT --setup-token TOKEN --out PATH";

/// The office: (username, display name). `admin` is created by setup, the rest by `admin`.
const ADMIN: (&str, &str) = ("admin", "Office Admin");
const MEMBERS: [(&str, &str); 4] = [
    ("alice", "Alice Andersen"),
    ("bob", "Bob"),
    ("carol", "Zoë Müller"),
    ("dave", "Dave"),
];
/// Disabled after changing his password; never connects, so his `last_seen` stays null.
const DISABLED: &str = "dave";

fn password_of(username: &str) -> String {
    format!("{username} fixture password")
}

/// Who says what, in order. A DM's first message opens it with `to`; later ones name the
/// conversation, so both send forms wrote part of the fixture.
const SCRIPT: &[(&str, &str, &str)] = &[
    (
        "admin",
        "alice",
        "Welcome to confab, Alice. Ping me if anything looks odd.",
    ),
    (
        "alice",
        "bob",
        "Morning Bob! Did you see the new coffee machine?",
    ),
    ("bob", "alice", "I did. It makes a decent flat white."),
    (
        "alice",
        "bob",
        "Can you review the Q3 budget draft before lunch?",
    ),
    ("bob", "alice", "Sure, send it over."),
    (
        "alice",
        "bob",
        "It's in the shared drive under Finance/2025.",
    ),
    ("bob", "alice", "Got it, reading now."),
    (
        "bob",
        "alice",
        "Line 42 looks off: travel is counted twice.",
    ),
    ("alice", "bob", "Good catch, fixing."),
    ("alice", "bob", "Fixed. Anything else?"),
    ("bob", "alice", "Looks fine otherwise 👍"),
    ("alice", "bob", "🎉 Budget approved! 👩‍💻🚀"),
    ("bob", "alice", "Nice work!"),
    (
        "alice",
        "bob",
        "Agenda for Thursday:\n1. Hiring plan\n2. Office move\n3. AOB",
    ),
    ("bob", "alice", "Can we add the printer contract to AOB?"),
    ("alice", "bob", "Added."),
    (
        "bob",
        "alice",
        "Thanks. Also, who's bringing cake on Friday?",
    ),
    ("alice", "bob", "Carol volunteered."),
    ("bob", "alice", "Perfect."),
    ("alice", "bob", "The movers need a headcount by Wednesday."),
    ("alice", "carol", "Hi Zoë, welcome to the team!"),
    ("carol", "alice", "Danke, Alice! Happy to be here."),
    ("alice", "carol", "Your badge is at reception."),
    (
        "alice",
        "carol",
        "And the lunch place is Ümit's, around the corner.",
    ),
    (
        "bob",
        "carol",
        "Carol, are you still up for cake on Friday? 🎂",
    ),
    ("alice", "carol", "Let me know if you need anything."),
    ("bob", "alice", "We're 5, plus the intern in September."),
    (
        "bob",
        "alice",
        "Let me know if they need anything else from me.",
    ),
    ("alice", "bob", "Will do."),
    ("alice", "bob", "Quick reminder: timesheets are due today."),
    ("alice", "bob", "Also the \"Friday demo\" moved to 3 pm."),
    ("alice", "bob", "Room B, not Room A."),
    (
        "alice",
        "bob",
        "Bring your laptop charger, the room has few plugs.",
    ),
    ("alice", "bob", "Tabs\tand  double  spaces stay as typed."),
    (
        "alice",
        "bob",
        "The Wi-Fi password changed: ask me in person.",
    ),
    (
        "alice",
        "bob",
        "Café order: 2× espresso, 1× thé vert — 12,50 €",
    ),
    ("alice", "bob", "Ping me when you're back."),
    (
        "admin",
        "alice",
        "The server moves to the new rack on Saturday.",
    ),
    (
        "admin",
        "alice",
        "Expect ten minutes of downtime around 9:00.",
    ),
];

/// Read marks after the script: (reader, other member, seq).
const READS: &[(&str, &str, u64)] = &[("alice", "admin", 1), ("bob", "alice", 23)];

/// What the story must have left, checked against the server's own answers before anything
/// is written: (member, other member, read_seq, unread).
const STORY: &[(&str, &str, u64, u64)] = &[
    ("bob", "alice", 23, 7),
    ("alice", "bob", 30, 0),
    ("carol", "alice", 2, 3),
    ("alice", "carol", 5, 0),
    ("carol", "bob", 0, 1),
    ("bob", "carol", 1, 0),
    ("alice", "admin", 1, 2),
    ("admin", "alice", 3, 0),
];

struct Args {
    addr: String,
    setup_token: String,
    out: PathBuf,
}

fn parse_args() -> Fallible<Args> {
    let (mut addr, mut setup_token, mut out) = (None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--addr" => addr = Some(value),
            "--setup-token" => setup_token = Some(value),
            "--out" => out = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    match (addr, setup_token, out) {
        (Some(addr), Some(setup_token), Some(out)) => Ok(Args {
            addr,
            setup_token,
            out,
        }),
        _ => Err(USAGE.to_owned()),
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(&self, req: reqwest::RequestBuilder, want: u16, what: &str) -> Fallible<Value> {
        let resp = req.send().await.map_err(|e| format!("{what}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if status != want {
            return Err(format!("{what}: expected {want}, got {status} {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, token: &str, path: &str) -> Fallible<Value> {
        let req = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token);
        self.call(req, 200, &format!("GET {path}")).await
    }

    async fn post(
        &self,
        token: Option<&str>,
        path: &str,
        body: Value,
        want: u16,
    ) -> Fallible<Value> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        self.call(req, want, &format!("POST {path}")).await
    }

    async fn login(&self, username: &str, password: &str) -> Fallible<Value> {
        let body = json!({"username": username, "password": password});
        self.post(None, "/api/login", body, 200).await
    }
}

/// A signed-in user: the token of the session they got when changing their password.
struct Person {
    id: u64,
    token: String,
}

fn id_of(value: &Value, what: &str) -> Fallible<u64> {
    value["id"]
        .as_u64()
        .ok_or_else(|| format!("{what} has no numeric id: {value}"))
}

fn dm(a: u64, b: u64) -> String {
    format!("dm:{}:{}", a.min(b), a.max(b))
}

/// One WebSocket, read only for the frames a step waits for.
struct Tab {
    ws: Ws,
    who: &'static str,
}

impl Tab {
    async fn open(addr: &str, who: &'static str, token: &str) -> Fallible<Tab> {
        let mut request = format!("ws://{addr}/ws")
            .into_client_request()
            .map_err(|e| e.to_string())?;
        let bearer =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?;
        request.headers_mut().insert("authorization", bearer);
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .map_err(|_| format!("{who}: WebSocket upgrade timed out"))?
            .map_err(|e| format!("{who}: WebSocket upgrade: {e}"))?;
        let mut tab = Tab { ws, who };
        tab.until(|f| f["type"] == "hello").await?;
        Ok(tab)
    }

    async fn send(&mut self, frame: Value) -> Fallible<()> {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .map_err(|e| format!("{}: send: {e}", self.who))
    }

    /// Reads until a frame matches, skipping others; an `error` frame fails the run.
    async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> Fallible<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| format!("{}: no expected frame within {WAIT:?}", self.who))?;
            let text = match next {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(frame))) => {
                    return Err(format!("{}: server closed: {frame:?}", self.who));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(format!("{}: WebSocket: {e}", self.who)),
                None => return Err(format!("{}: WebSocket ended", self.who)),
            };
            let frame: Value = serde_json::from_str(text.as_str())
                .map_err(|e| format!("bad frame {e}: {text}"))?;
            if frame["type"] == "error" {
                return Err(format!("{}: server answered {frame}", self.who));
            }
            if wanted(&frame) {
                return Ok(frame);
            }
        }
    }

    /// A clean close, so the server sees the user leave (and later records `last_seen`).
    async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(WAIT, async { while self.ws.next().await.is_some() {} }).await;
    }
}

async fn run(args: Args) -> Fallible<()> {
    let api = Api {
        http: reqwest::Client::builder()
            .no_proxy()
            .timeout(WAIT)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?,
        base: format!("http://{}", args.addr),
    };
    let health = api
        .call(
            api.http.get(format!("{}/healthz", api.base)),
            200,
            "GET /healthz",
        )
        .await?;
    let release = health["version"].as_str().unwrap_or("?").to_owned();

    let mut people: BTreeMap<&'static str, Person> = BTreeMap::new();
    let setup = api
        .post(
            None,
            "/api/setup",
            json!({"token": args.setup_token, "username": ADMIN.0,
                   "display_name": ADMIN.1, "password": password_of(ADMIN.0)}),
            201,
        )
        .await?;
    let admin_token = setup["token"].as_str().unwrap_or_default().to_owned();
    people.insert(
        ADMIN.0,
        Person {
            id: id_of(&setup["user"], "setup's user")?,
            token: admin_token.clone(),
        },
    );

    for (username, display_name) in MEMBERS {
        let created = api
            .post(
                Some(&admin_token),
                "/api/admin/users",
                json!({"username": username, "display_name": display_name}),
                201,
            )
            .await?;
        let temporary = created["temporary_password"]
            .as_str()
            .ok_or_else(|| format!("no temporary password: {created}"))?;
        let first = api.login(username, temporary).await?;
        let token = first["token"].as_str().unwrap_or_default().to_owned();
        api.post(
            Some(&token),
            "/api/me/password",
            json!({"current_password": temporary, "new_password": password_of(username)}),
            204,
        )
        .await?;
        let id = id_of(&created["user"], "a created user")?;
        people.insert(username, Person { id, token });
    }
    let dave = &people[DISABLED];
    let patch = api
        .http
        .patch(format!("{}/api/admin/users/{}", api.base, dave.id))
        .bearer_auth(&admin_token)
        .json(&json!({"disabled": true}));
    api.call(patch, 200, "disable dave").await?;

    // Everyone but dave keeps a tab open while the office talks.
    let mut tabs: BTreeMap<&'static str, Tab> = BTreeMap::new();
    for (name, person) in &people {
        if *name != DISABLED {
            tabs.insert(*name, Tab::open(&args.addr, name, &person.token).await?);
        }
    }

    let mut opened: Vec<String> = Vec::new();
    for (n, (from, to, body)) in SCRIPT.iter().enumerate() {
        let conversation = dm(people[from].id, people[to].id);
        let client_id = format!("fixture-{n}");
        let mut frame = json!({"type": "send", "body": body, "client_id": client_id});
        if opened.contains(&conversation) {
            frame["conversation"] = json!(conversation);
        } else {
            frame["to"] = json!(people[to].id);
            opened.push(conversation.clone());
        }
        let tab = tabs.get_mut(from).ok_or("sender without a tab")?;
        tab.send(frame).await?;
        tab.until(|f| f["type"] == "ack" && f["client_id"] == client_id.as_str())
            .await?;
        // Distinct milliseconds, so "most recent activity first" has no ties to break.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }

    for (reader, other, seq) in READS {
        let conversation = dm(people[reader].id, people[other].id);
        let tab = tabs.get_mut(reader).ok_or("reader without a tab")?;
        tab.send(json!({"type": "read", "conversation": conversation, "seq": seq}))
            .await?;
        tab.until(|f| f["type"] == "unread" && f["conversation"] == conversation.as_str())
            .await?;
    }

    let users = leave(tabs, &people, &api, &admin_token).await?;

    // The live session a later release must still accept (until it expires).
    let alice = api.login("alice", &password_of("alice")).await?;
    let alice_token = alice["token"].as_str().unwrap_or_default().to_owned();
    let me = api.get(&alice_token, "/api/me").await?;
    if me["username"] != "alice" {
        return Err(format!("alice's new token is someone else's: {me}"));
    }

    let conversations = conversations(&api, &people).await?;
    check_story(&conversations, &people)?;

    let users: Vec<Value> = users
        .into_iter()
        .map(|mut user| {
            let name = user["username"].as_str().unwrap_or_default().to_owned();
            user["password"] = json!(password_of(&name));
            user
        })
        .collect();
    let expected = json!({
        "about": "confab database written by release 0.1 (f2d4eef) through its public API; \
                  see tests/fixtures/README.md",
        "release": release,
        "generated_at": unix_secs(),
        "users": users,
        "conversations": conversations,
        "alice_session": {
            "username": "alice",
            "token": alice_token,
            "expires_at": alice["expires_at"],
        },
    });
    let text = serde_json::to_string_pretty(&expected).map_err(|e| e.to_string())? + "\n";
    std::fs::write(&args.out, text).map_err(|e| format!("write {}: {e}", args.out.display()))?;
    println!(
        "wrote {} ({} users, {} conversations, {} messages)",
        args.out.display(),
        expected["users"].as_array().map_or(0, Vec::len),
        expected["conversations"].as_array().map_or(0, Vec::len),
        SCRIPT.len()
    );
    Ok(())
}

/// Everyone closes their tab, and the admin's user list is read once every `last_seen` is the
/// one 0.1 keeps: it writes `last_seen` when a user comes online, and again 3 s after their last
/// tab closes (`PRESENCE_GRACE`), a timer that a SIGTERM cancels. Waiting for that second write
/// makes the file and `expected.json` agree however long the rest of the run takes.
async fn leave(
    mut tabs: BTreeMap<&'static str, Tab>,
    people: &BTreeMap<&str, Person>,
    api: &Api,
    admin_token: &str,
) -> Fallible<Vec<Value>> {
    // 0.1 saves `last_seen` before it sends `presence` offline, so the admin's tab seeing the
    // frame means the row is written.
    let mut watcher = tabs.remove(ADMIN.0).ok_or("the admin has no tab")?;
    let mut gone: Vec<u64> = Vec::new();
    for (name, tab) in tabs {
        tab.close().await;
        gone.push(people[name].id);
    }
    while !gone.is_empty() {
        let frame = watcher
            .until(|f| f["type"] == "presence" && f["online"] == false)
            .await?;
        gone.retain(|&id| frame["user"] != id);
    }
    // Nobody is left to see the admin's own frame: wait out the grace period instead.
    watcher.close().await;
    tokio::time::sleep(PRESENCE_GRACE + Duration::from_secs(2)).await;

    let users = api.get(admin_token, "/api/admin/users").await?;
    let users = users.as_array().cloned().unwrap_or_default();
    let missing = users
        .iter()
        .any(|u| u["username"] != DISABLED && u["last_seen"].is_null());
    if missing || users.len() != MEMBERS.len() + 1 {
        return Err(format!(
            "expected a last_seen for everyone but {DISABLED}: {users:?}"
        ));
    }
    Ok(users)
}

/// Every conversation as its members see it: the full history (paged with `after`) and each
/// member's `read_seq` and `unread` from their own `GET /api/conversations`.
async fn conversations(api: &Api, people: &BTreeMap<&str, Person>) -> Fallible<Vec<Value>> {
    let mut found: BTreeMap<String, Value> = BTreeMap::new();
    for (name, person) in people.iter().filter(|(name, _)| **name != DISABLED) {
        let list = api.get(&person.token, "/api/conversations").await?;
        for summary in list.as_array().into_iter().flatten() {
            let id = summary["id"].as_str().unwrap_or_default().to_owned();
            let entry = found.entry(id.clone()).or_insert_with(|| {
                json!({"id": id, "kind": summary["kind"], "members": summary["members"],
                       "messages": [], "reads": []})
            });
            entry["reads"]
                .as_array_mut()
                .ok_or("reads")?
                .push(json!({"user": person.id, "read_seq": summary["read_seq"],
                             "unread": summary["unread"]}));
            if entry["messages"].as_array().is_some_and(Vec::is_empty) {
                entry["messages"] = json!(history(api, &person.token, &id).await?);
            }
            let last_seq = summary["last_seq"].as_u64().unwrap_or_default();
            if entry["messages"].as_array().map(Vec::len) != Some(last_seq as usize) {
                return Err(format!(
                    "{name} sees last_seq {last_seq} in {id}: {summary}"
                ));
            }
        }
    }
    Ok(found.into_values().collect())
}

async fn history(api: &Api, token: &str, id: &str) -> Fallible<Vec<Value>> {
    let mut messages: Vec<Value> = Vec::new();
    loop {
        let after = messages
            .last()
            .map_or(0, |m| m["seq"].as_u64().unwrap_or(0));
        let page = api
            .get(
                token,
                &format!("/api/conversations/{id}/messages?after={after}&limit=100"),
            )
            .await?;
        for m in page["messages"].as_array().into_iter().flatten() {
            messages.push(
                json!({"seq": m["seq"], "from": m["from"], "body": m["body"],
                                 "sent_at": m["sent_at"]}),
            );
        }
        if page["has_more"] != true {
            return Ok(messages);
        }
    }
}

fn check_story(conversations: &[Value], people: &BTreeMap<&str, Person>) -> Fallible<()> {
    for (member, other, read_seq, unread) in STORY {
        let (me, id) = (people[member].id, dm(people[member].id, people[other].id));
        let reads = conversations
            .iter()
            .find(|c| c["id"] == id.as_str())
            .and_then(|c| c["reads"].as_array())
            .and_then(|reads| reads.iter().find(|r| r["user"] == me))
            .ok_or_else(|| format!("{member} has no place in {id}"))?;
        if reads["read_seq"] != *read_seq || reads["unread"] != *unread {
            return Err(format!(
                "{member} in {id}: expected read_seq {read_seq} and unread {unread}, got {reads}"
            ));
        }
    }
    Ok(())
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("make_fixture: {message}");
            ExitCode::FAILURE
        }
    }
}
