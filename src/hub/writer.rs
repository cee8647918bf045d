//! The single writer: drains the queue into one redb transaction per batch (group commit),
//! then acks and fans out in commit order. It runs on its own thread because redb commits
//! block on fsync.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

use super::protocol::{ConversationPayload, FrameError, RequestFrame, ServerFrame};
use super::{Connection, Hub, close};
use crate::config::limits;
use crate::store::{
    ChatOp, ChatOutcome, ConversationId, Message, PeopleEvent, RoomEvent, Store, StoreError,
};

/// The connection a write came from, so its result goes back there.
#[derive(Debug)]
pub struct Origin {
    pub user: u64,
    pub connection: u64,
    pub client_id: Option<String>,
}

/// Who waits for a write's result: a socket (ack or error frame), an HTTP request (the
/// outcome itself), or nobody (housekeeping).
#[derive(Debug, Default)]
pub enum Caller {
    #[default]
    Nobody,
    Socket(Origin),
    Http(oneshot::Sender<Result<ChatOutcome, WriteFailed>>),
}

/// A write that could not be committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFailed {
    StorageFull,
    Internal,
}

pub enum WriterOp {
    Chat {
        op: ChatOp,
        caller: Caller,
    },
    /// Register a connection and reply with its `hello` frame, consistent with the commits
    /// before it and the live events after it.
    Connect {
        user: u64,
        id: u64,
        connection: Connection,
        /// The `hello` frame, or the close code to refuse with.
        reply: oneshot::Sender<Result<super::Frame, u16>>,
    },
    /// A user's last connection closed `generation` ago, at `last_seen`: if they are still
    /// gone, save `last_seen`, then announce them offline.
    Offline {
        user: u64,
        generation: u64,
        last_seen: u64,
    },
    Stop,
}

pub fn spawn(store: Store, hub: Hub, queue: mpsc::Receiver<WriterOp>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("confab-writer".into())
        .spawn(move || run(store, hub, queue))
        .unwrap_or_else(|e| panic!("cannot start the writer thread: {e}"))
}

fn run(store: Store, hub: Hub, mut queue: mpsc::Receiver<WriterOp>) {
    let mut batch = Vec::with_capacity(limits::WRITER_BATCH);
    let mut scrub = Scrub::default();
    loop {
        let first = match scrub.due() {
            None => queue.blocking_recv(),
            Some(due) => match next_op_before(&mut queue, due) {
                Ok(op) => op,
                Err(()) => {
                    scrub.run(&store);
                    continue;
                }
            },
        };
        let Some(first) = first else { break };
        batch.push(first);
        while batch.len() < limits::WRITER_BATCH {
            match queue.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let (keep_running, erased) = process(&store, &hub, &mut batch);
        scrub.wanted |= erased;
        if scrub.due().is_some_and(|due| due <= Instant::now()) {
            scrub.run(&store);
        }
        if !keep_running {
            break;
        }
    }
    tracing::debug!("writer stopped");
}

/// Erasing deleted text from the file's free pages (`Store::scrub_free_pages`) soon after a
/// delete, at most once per [`limits::SCRUB_INTERVAL`] however many deletes come.
#[derive(Default)]
struct Scrub {
    wanted: bool,
    last: Option<Instant>,
}

impl Scrub {
    fn due(&self) -> Option<Instant> {
        let now = Instant::now();
        self.wanted.then(|| {
            self.last
                .map_or(now, |last| (last + limits::SCRUB_INTERVAL).max(now))
        })
    }

    fn run(&mut self, store: &Store) {
        if let Err(error) = store.scrub_free_pages() {
            tracing::warn!(%error, "could not erase deleted text from the database file's free pages");
        }
        self.wanted = false;
        self.last = Some(Instant::now());
    }
}

/// The next op if one comes before `due`; `Ok(None)` if the queue closed, `Err(())` at `due`.
fn next_op_before(
    queue: &mut mpsc::Receiver<WriterOp>,
    due: Instant,
) -> Result<Option<WriterOp>, ()> {
    loop {
        match queue.try_recv() {
            Ok(op) => return Ok(Some(op)),
            Err(TryRecvError::Disconnected) => return Ok(None),
            Err(TryRecvError::Empty) => {
                let now = Instant::now();
                if now >= due {
                    return Err(());
                }
                std::thread::sleep((due - now).min(Duration::from_millis(5)));
            }
        }
    }
}

/// Commits the batch's writes and delivers their results, then registers its new connections
/// and saves when they came online, in one more transaction. Returns whether to keep running
/// (false when asked to stop) and whether a committed write erased text.
fn process(store: &Store, hub: &Hub, batch: &mut Vec<WriterOp>) -> (bool, bool) {
    let mut ops = Vec::new();
    let mut callers = Vec::new();
    let mut connects = Vec::new();
    let mut offline = Vec::new();
    let mut keep_running = true;
    for op in batch.drain(..) {
        match op {
            WriterOp::Chat { op, caller } => {
                ops.push(op);
                callers.push(caller);
            }
            WriterOp::Connect {
                user,
                id,
                connection,
                reply,
            } => connects.push((user, id, connection, reply)),
            WriterOp::Offline {
                user,
                generation,
                last_seen,
            } => {
                if hub.still_gone(user, generation) {
                    ops.push(ChatOp::Seen {
                        users: vec![user],
                        at: last_seen,
                    });
                    callers.push(Caller::Nobody);
                    offline.push((user, generation, last_seen));
                }
            }
            WriterOp::Stop => keep_running = false,
        }
    }
    let erased = commit(store, hub, ops, callers);
    // Presence does not wait for the disk: announced even if saving last_seen failed.
    for (user, generation, last_seen) in offline {
        hub.announce_offline(user, generation, last_seen);
    }
    let mut came_online = Vec::new();
    for (user, id, connection, reply) in connects {
        let hello = hello(store, hub, user, id, connection);
        if let Ok((_, true)) = hello {
            came_online.push(user);
        }
        let _ = reply.send(hello.map(|(frame, _)| frame));
    }
    if !came_online.is_empty() {
        // So last_seen is roughly right even if the server dies while they are online.
        let at = crate::store::now_secs();
        let op = ChatOp::Seen {
            users: came_online,
            at,
        };
        commit(store, hub, vec![op], vec![Caller::Nobody]);
    }
    (keep_running, erased)
}

/// Commits `ops` in one transaction and delivers each outcome. If the batch fails on a damaged
/// record, each op is tried on its own, so one bad op costs only its own sender. Returns
/// whether a committed op erased text.
fn commit(store: &Store, hub: &Hub, ops: Vec<ChatOp>, callers: Vec<Caller>) -> bool {
    if ops.is_empty() {
        return false;
    }
    let started = Instant::now();
    let applied = store.apply_chat_batch(&ops);
    let metrics = &hub.inner.metrics;
    metrics.observe_commit(ops.len(), started.elapsed());
    let error = match applied {
        Ok(outcomes) => {
            let messages = outcomes.iter().filter(|o| o.is_new_message()).count();
            metrics.messages_committed.inc_by(messages as u64);
            let erased = outcomes.iter().any(ChatOutcome::erased_text);
            let fan_out = FanOut { store, hub };
            for (outcome, caller) in outcomes.into_iter().zip(callers) {
                fan_out.deliver(&outcome, &caller);
                if let Caller::Http(answer) = caller {
                    let _ = answer.send(Ok(outcome));
                }
            }
            return erased;
        }
        Err(error) => error,
    };
    let retry_alone = ops.len() > 1 && matches!(error, StoreError::Codec(_));
    if retry_alone {
        tracing::warn!(%error, "a batch of {} writes failed; retrying them one by one", ops.len());
        let mut erased = false;
        for (op, caller) in ops.into_iter().zip(callers) {
            erased |= commit(store, hub, vec![op], vec![caller]);
        }
        return erased;
    }
    let (failed, frame) = match error {
        StoreError::StorageFull => (
            WriteFailed::StorageFull,
            FrameError::new(
                "storage_full",
                "the server's disk is full, so this was not saved; tell your administrator",
            ),
        ),
        error => {
            tracing::error!(%error, "could not commit a write");
            (
                WriteFailed::Internal,
                FrameError::new("internal", "this could not be saved; retry"),
            )
        }
    };
    for caller in callers {
        match caller {
            Caller::Socket(origin) => {
                let error = frame.clone().with_client_id(origin.client_id);
                hub.deliver_to_connection(origin.user, origin.connection, &error.encode());
            }
            Caller::Http(answer) => {
                let _ = answer.send(Err(failed));
            }
            Caller::Nobody => {}
        }
    }
    false
}

/// Tells everyone concerned about a committed write, in commit order.
struct FanOut<'a> {
    store: &'a Store,
    hub: &'a Hub,
}

impl FanOut<'_> {
    fn deliver(&self, outcome: &ChatOutcome, caller: &Caller) {
        let hub = self.hub;
        let origin = match caller {
            Caller::Socket(origin) => Some(origin),
            _ => None,
        };
        match outcome {
            ChatOutcome::Sent { message, members } => self.message(message, members, origin),
            ChatOutcome::Duplicate { message } => {
                if let Some(origin) = origin {
                    ack(hub, origin, message);
                }
            }
            ChatOutcome::Read {
                conversation,
                user,
                read_seq,
                unread,
                mentions,
                receipt_to,
            } => {
                let own = ServerFrame::Unread {
                    conversation,
                    unread: *unread,
                    read_seq: *read_seq,
                    mentions: conversation.is_room().then_some(*mentions),
                }
                .encode();
                hub.deliver_to(&[*user], &own, None);
                let receipt = ServerFrame::Read {
                    conversation,
                    user: *user,
                    seq: *read_seq,
                }
                .encode();
                hub.deliver_to(receipt_to, &receipt, None);
            }
            ChatOutcome::Updated {
                message,
                members,
                change_seq,
                blockers,
            } => {
                hub.inner.search.message(message);
                let skip = origin.map(|o| o.connection);
                let update = |message| {
                    ServerFrame::Update {
                        message,
                        change_seq: *change_seq,
                    }
                    .encode()
                };
                if let Some(origin) = origin {
                    let seen = blockers.iter().find(|(b, _)| *b == origin.user);
                    ack(hub, origin, seen.map_or(message, |(_, m)| m));
                }
                if blockers.is_empty() {
                    hub.deliver_to(members, &update(message), skip);
                } else {
                    // Someone here blocks a person who reacted: they get their own copy.
                    let others: Vec<u64> = members
                        .iter()
                        .copied()
                        .filter(|m| blockers.iter().all(|(b, _)| b != m))
                        .collect();
                    hub.deliver_to(&others, &update(message), skip);
                    for (blocker, seen) in blockers {
                        hub.deliver_to(&[*blocker], &update(seen), skip);
                    }
                }
            }
            ChatOutcome::Room(event) => self.room(event),
            ChatOutcome::People(event) => self.people(event, origin),
            ChatOutcome::Unchanged | ChatOutcome::Purged { .. } => {}
            ChatOutcome::Rejected(rejection) => {
                if let Some(origin) = origin {
                    let error =
                        FrameError::from(*rejection).with_client_id(origin.client_id.clone());
                    hub.deliver_to_connection(origin.user, origin.connection, &error.encode());
                }
            }
        }
    }

    /// The ack to the sending tab, the message to every other tab of every member.
    fn message(&self, message: &Message, members: &[u64], origin: Option<&Origin>) {
        self.hub.inner.search.message(message);
        if let Some(origin) = origin {
            ack(self.hub, origin, message);
        }
        let frame = ServerFrame::Message { message }.encode();
        self.hub
            .deliver_to(members, &frame, origin.map(|o| o.connection));
    }

    fn room(&self, event: &RoomEvent) {
        match event {
            RoomEvent::Created { room, members } => {
                for &member in members.iter() {
                    self.appear(room, member, None);
                }
            }
            RoomEvent::Updated {
                room: id,
                view,
                actions,
                by,
                members,
            } => {
                for &action in actions {
                    let frame = ServerFrame::Conversation {
                        action,
                        conversation: ConversationPayload::Room { id, room: view },
                        by: Some(*by),
                    }
                    .encode();
                    self.hub.deliver_to(members, &frame, None);
                }
            }
            RoomEvent::MemberAdded {
                room,
                user,
                by,
                members,
            } => {
                self.member(room, "added", *user, *by, members);
                self.appear(room, *user, Some(*by));
            }
            RoomEvent::MemberRemoved {
                room,
                user,
                by,
                members,
            } => {
                self.member(room, "removed", *user, *by, members);
                self.member(room, "removed", *user, *by, &[*user]);
                let frame = ServerFrame::Conversation {
                    action: "removed",
                    conversation: ConversationPayload::Id { id: room },
                    by: Some(*by),
                }
                .encode();
                self.hub.deliver_to(&[*user], &frame, None);
            }
            RoomEvent::Notify {
                user,
                conversation,
                level,
            } => {
                let frame = ServerFrame::Conversation {
                    action: "notify",
                    conversation: ConversationPayload::Notify {
                        id: conversation,
                        notify: *level,
                    },
                    by: None,
                }
                .encode();
                self.hub.deliver_to(&[*user], &frame, None);
            }
        }
    }

    /// `conversation` `created` with `user`'s own summary: the room appears in their list.
    fn appear(&self, room: &ConversationId, user: u64, by: Option<u64>) {
        match self.store.conversation(user, room) {
            Ok(Some(summary)) => {
                let frame = ServerFrame::Conversation {
                    action: "created",
                    conversation: ConversationPayload::Summary(&summary),
                    by,
                }
                .encode();
                self.hub.deliver_to(&[user], &frame, None);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, user, %room, "could not load a room summary"),
        }
    }

    fn member(&self, room: &ConversationId, action: &'static str, user: u64, by: u64, to: &[u64]) {
        let account = match self.store.user(user) {
            Ok(Some(account)) => account,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, user, "could not load a member's directory entry");
                return;
            }
        };
        let frame = ServerFrame::Member {
            conversation: room,
            action,
            user: account.directory_entry(),
            by,
        }
        .encode();
        self.hub.deliver_to(to, &frame, None);
    }

    fn people(&self, event: &PeopleEvent, origin: Option<&Origin>) {
        let decided = |action, user| {
            ServerFrame::Request(RequestFrame {
                action,
                user: Some(user),
                ..RequestFrame::default()
            })
            .encode()
        };
        match event {
            PeopleEvent::RequestSent {
                from,
                to,
                client_id,
                body,
                sent_at,
                tell_recipient,
            } => {
                let sent = ServerFrame::Request(RequestFrame {
                    action: "sent",
                    to: Some(*to),
                    client_id: Some(client_id),
                    ..RequestFrame::default()
                })
                .encode();
                self.hub.deliver_to(&[*from], &sent, None);
                if *tell_recipient {
                    let received = ServerFrame::Request(RequestFrame {
                        action: "received",
                        from: Some(*from),
                        body: Some(body),
                        sent_at: Some(*sent_at),
                        ..RequestFrame::default()
                    })
                    .encode();
                    self.hub.deliver_to(&[*to], &received, None);
                }
            }
            PeopleEvent::Accepted {
                user,
                from,
                message,
                members,
            } => {
                self.hub
                    .deliver_to(&[*from], &decided("accepted", *user), None);
                self.hub
                    .deliver_to(&[*user], &decided("accepted", *from), None);
                self.message(message, members, origin);
            }
            PeopleEvent::Declined { user, from } => {
                self.hub
                    .deliver_to(&[*from], &decided("declined", *user), None);
                self.hub
                    .deliver_to(&[*user], &decided("declined", *from), None);
            }
            // The recipient never saw it, so only the sender's tabs are told.
            PeopleEvent::RequestDropped { from, to } => {
                self.hub
                    .deliver_to(&[*from], &decided("dropped", *to), None);
            }
            PeopleEvent::Saved => {}
        }
    }
}

/// Acknowledges a stored send to the connection it came from (again, for a retry).
fn ack(hub: &Hub, origin: &Origin, message: &Message) {
    let frame = ServerFrame::Ack {
        client_id: origin.client_id.as_deref().unwrap_or_default(),
        message,
    };
    hub.deliver_to_connection(origin.user, origin.connection, &frame.encode());
}

/// Registers the connection and builds its `hello` (and says whether the user just came
/// online), or says which close code refuses it.
fn hello(
    store: &Store,
    hub: &Hub,
    user: u64,
    id: u64,
    connection: Connection,
) -> Result<(super::Frame, bool), u16> {
    let snapshot = store
        .user(user)
        .and_then(|u| Ok((u.filter(|u| !u.disabled), store.conversations(user)?)));
    let (account, conversations) = match snapshot {
        Ok((Some(account), conversations)) => (account, conversations),
        Ok((None, _)) => return Err(close::SESSION_ENDED),
        Err(e) => {
            tracing::error!(error = %e, "could not load a connecting user's conversations");
            return Err(close::TRY_AGAIN_LATER);
        }
    };
    // The session is checked again at registration: a session ended after the upgrade was
    // authorized never gets a live socket.
    let session_id = connection.session_id;
    let session_alive = || matches!(store.session(session_id), Ok(Some(_)));
    let (online, came_online) = hub.register(user, id, connection, session_alive)?;
    let frame = ServerFrame::Hello {
        user: &account,
        online: &online,
        conversations: &conversations,
    }
    .encode();
    Ok((frame, came_online))
}
