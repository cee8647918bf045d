//! The office the benchmark searches: bigdb's 500 accounts, General plus rooms of many sizes,
//! DMs, who writes where and how much, and the database written from it through the store.
//! All of it follows from the seed, so the benchmark can replay the message stream to pick
//! queries without reading the database.

use std::path::Path;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom, index};
use rand::{Rng, SeedableRng};

use confab::store::{
    ChatOp, ChatOutcome, ConversationId, RoomEvent, RoomOp, SendTarget, Store, Visibility,
};

use super::accounts;
use super::corpus::Corpus;

/// Rooms are named after what an office talks about; the second and third of a subject get a
/// number ("Invoices 2").
const SUBJECTS: [&str; 34] = [
    "Invoices",
    "Payroll",
    "Support rota",
    "Deliveries",
    "Marketing",
    "IT help",
    "Kitchen",
    "Sales leads",
    "Parking",
    "Hiring",
    "Events",
    "Travel",
    "Legal",
    "Facilities",
    "Design",
    "Backend",
    "Frontend",
    "Finance",
    "Procurement",
    "Customer feedback",
    "Training",
    "Security",
    "Quality",
    "Logistics",
    "Warehouse",
    "Reception",
    "Board",
    "Projects",
    "Releases",
    "Partners",
    "Berlin office",
    "Zürich office",
    "Tokyo team",
    "Random",
];
/// How unevenly messages spread over conversations (Zipf exponent over a shuffled order;
/// General is the busiest).
const CONVERSATION_SKEW: f64 = 0.9;
/// One DM in ten is user0000's: the searching user is in every room and in these.
const DMS_OF_THE_SEARCHER: usize = 10;
/// Messages per store transaction, as the writer commits them.
const BATCH: usize = 256;
/// The server forgets client ids after 48 hours, so a real database holds only a couple of
/// days of them; the generator forgets them as it goes, at about that many messages.
const FORGET_CLIENT_IDS_EVERY: u64 = 10_240;
/// The generated history spans this long, ending when it is generated.
const HISTORY_MS: u64 = 365 * 24 * 3600 * 1000;

pub struct Conversation {
    /// The room's name; `None` for a DM.
    pub room: Option<String>,
    /// Indexes of its members' accounts (`user{i:04}`).
    pub members: Vec<usize>,
}

pub struct Office {
    pub users: usize,
    /// General first, then the other rooms, then the DMs.
    pub conversations: Vec<Conversation>,
    /// Cumulative message shares of `conversations`.
    cumulative: Vec<f64>,
}

impl Office {
    /// `conversations` in all: General, `rooms - 1` more rooms, and DMs for the rest.
    pub fn new(seed: u64, users: usize, conversations: usize, rooms: usize) -> Office {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x6f66_6669_6365);
        let mut list = vec![Conversation {
            room: Some("General".into()),
            members: (0..users).collect(),
        }];
        for n in 1..rooms {
            let subject = SUBJECTS[(n - 1) % SUBJECTS.len()];
            let name = match (n - 1) / SUBJECTS.len() {
                0 => subject.to_owned(),
                k => format!("{subject} {}", k + 1),
            };
            // From 3 to about 150 members, most rooms small.
            let size = (3.0 * 50f64.powf(rng.random::<f64>())) as usize;
            let mut members = vec![0];
            members.extend(
                index::sample(&mut rng, users - 1, size.min(users - 1))
                    .into_iter()
                    .map(|i| i + 1),
            );
            list.push(Conversation {
                room: Some(name),
                members,
            });
        }
        let dms = conversations.saturating_sub(rooms);
        let mut pairs = std::collections::HashSet::new();
        while pairs.len() < dms {
            let a = if pairs.len() < dms / DMS_OF_THE_SEARCHER {
                0
            } else {
                rng.random_range(1..users)
            };
            let b = rng.random_range(1..users);
            if a != b && pairs.insert((a.min(b), a.max(b))) {
                list.push(Conversation {
                    room: None,
                    members: vec![a.min(b), a.max(b)],
                });
            }
        }
        let mut order: Vec<usize> = (1..list.len()).collect();
        order.shuffle(&mut rng);
        order.insert(0, 0);
        let mut share = vec![0.0; list.len()];
        for (rank, &conversation) in order.iter().enumerate() {
            share[conversation] = 1.0 / (rank as f64 + 1.0).powf(CONVERSATION_SKEW);
        }
        let mut total = 0.0;
        let cumulative = share
            .iter()
            .map(|s| {
                total += s;
                total
            })
            .collect();
        Office {
            users,
            conversations: list,
            cumulative,
        }
    }

    /// A conversation drawn by its share of the messages.
    pub fn pick(&self, rng: &mut impl Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let at = rng.random::<f64>() * total;
        self.cumulative
            .partition_point(|&c| c < at)
            .min(self.conversations.len() - 1)
    }

    /// The share of all messages that `conversations` hold.
    pub fn share_of(&self, conversations: &[usize]) -> f64 {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let share =
            |c: usize| self.cumulative[c] - if c == 0 { 0.0 } else { self.cumulative[c - 1] };
        conversations.iter().map(|&c| share(c)).sum::<f64>() / total
    }

    /// The conversations `user` is in.
    pub fn of(&self, user: usize) -> Vec<usize> {
        (0..self.conversations.len())
            .filter(|&c| self.conversations[c].members.contains(&user))
            .collect()
    }
}

/// One generated message: which conversation, which member wrote it, and its text.
pub struct Generated {
    pub conversation: usize,
    pub sender: usize,
    pub body: String,
}

/// The message stream the database is written from, in order.
pub struct Messages<'a> {
    office: &'a Office,
    corpus: &'a Corpus,
    rng: StdRng,
}

impl<'a> Messages<'a> {
    pub fn new(office: &'a Office, corpus: &'a Corpus, seed: u64) -> Messages<'a> {
        Messages {
            office,
            corpus,
            rng: StdRng::seed_from_u64(seed ^ 0x6d65_7373_6167_6573),
        }
    }
}

impl Iterator for Messages<'_> {
    type Item = Generated;

    fn next(&mut self) -> Option<Generated> {
        let conversation = self.office.pick(&mut self.rng);
        let sender = *self.office.conversations[conversation]
            .members
            .choose(&mut self.rng)?;
        Some(Generated {
            conversation,
            sender,
            body: self.corpus.message(&mut self.rng),
        })
    }
}

/// Writes the office into `dir` through the store: accounts, rooms, then `count` messages in
/// the writer's batches. Returns the seconds it took.
pub fn generate(
    dir: &Path,
    office: &Office,
    corpus: &Corpus,
    seed: u64,
    count: u64,
) -> Result<f64, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let store = Store::open(&dir.join("confab.redb")).map_err(|e| e.to_string())?;
    let ids = accounts::create_users(&store, office.users as u64)?;
    let started = Instant::now();
    let now = confab::store::now_millis();
    let creates: Vec<ChatOp> = office.conversations[1..]
        .iter()
        .enumerate()
        .filter_map(|(n, c)| {
            Some(ChatOp::Room(RoomOp::Create {
                creator: ids[0],
                name: c.room.clone()?,
                topic: String::new(),
                visibility: if n % 4 == 3 {
                    Visibility::Private
                } else {
                    Visibility::Open
                },
                members: c.members.iter().map(|&m| ids[m]).collect(),
                at: (now - HISTORY_MS) / 1000,
            }))
        })
        .collect();
    let mut rooms = vec![ConversationId::room(1)];
    for outcome in store
        .apply_chat_batch(&creates)
        .map_err(|e| e.to_string())?
    {
        match outcome {
            ChatOutcome::Room(RoomEvent::Created { room, .. }) => rooms.push(room),
            other => return Err(format!("creating a room: {other:?}")),
        }
    }
    let target = |g: &Generated| match rooms.get(g.conversation) {
        Some(room) => SendTarget::Conversation(room.clone()),
        None => {
            let members = &office.conversations[g.conversation].members;
            let other = if members[0] == g.sender {
                members[1]
            } else {
                members[0]
            };
            SendTarget::User(ids[other])
        }
    };
    let mut messages = Messages::new(office, corpus, seed);
    let mut sent = 0u64;
    while sent < count {
        let batch: Vec<ChatOp> = (&mut messages)
            .take(BATCH.min((count - sent) as usize))
            .enumerate()
            .map(|(i, g)| ChatOp::Send {
                sender: ids[g.sender],
                target: target(&g),
                client_id: format!("searchbench-{}", sent + i as u64),
                sent_at: now - HISTORY_MS + (sent + i as u64) * HISTORY_MS / count,
                body: g.body,
                reply_to: None,
                files: Vec::new(),
            })
            .collect();
        let sends = batch.len() as u64;
        for outcome in store.apply_chat_batch(&batch).map_err(|e| e.to_string())? {
            if let ChatOutcome::Rejected(why) = outcome {
                return Err(format!("a generated message was refused: {why:?}"));
            }
        }
        if (sent + sends) % FORGET_CLIENT_IDS_EVERY < sends {
            forget_client_ids(&store)?;
        }
        sent += sends;
        if sent % 100_000 < sends {
            eprintln!("{sent} messages, {:.0} s", started.elapsed().as_secs_f64());
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Empties the client id table, chunk by chunk as the server does.
fn forget_client_ids(store: &Store) -> Result<(), String> {
    let mut after = None;
    loop {
        let op = ChatOp::PurgeClientIds {
            before: u64::MAX,
            after,
        };
        match store
            .apply_chat_batch(&[op])
            .map_err(|e| e.to_string())?
            .pop()
        {
            Some(ChatOutcome::Purged { resume: Some(next) }) => after = Some(next),
            _ => return Ok(()),
        }
    }
}
