//! The single writer: drains the queue into one redb transaction per batch (group commit),
//! then acks and fans out in commit order. It runs on its own thread because redb commits
//! block on fsync.

use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::protocol::{FrameError, ServerFrame};
use super::{Connection, Hub, close};
use crate::config::limits;
use crate::store::{ChatOp, ChatOutcome, Message, Store, StoreError};

/// The connection a write came from, so its result goes back there.
#[derive(Debug)]
pub struct Origin {
    pub user: u64,
    pub connection: u64,
    pub client_id: Option<String>,
}

pub enum WriterOp {
    Chat {
        op: ChatOp,
        origin: Option<Origin>,
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
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < limits::WRITER_BATCH {
            match queue.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if !process(&store, &hub, &mut batch) {
            break;
        }
    }
    tracing::debug!("writer stopped");
}

/// Commits the batch's writes and delivers their results, then registers its new connections
/// and saves when they came online, in one more transaction. Returns false when asked to stop.
fn process(store: &Store, hub: &Hub, batch: &mut Vec<WriterOp>) -> bool {
    let mut ops = Vec::new();
    let mut origins = Vec::new();
    let mut connects = Vec::new();
    let mut offline = Vec::new();
    let mut keep_running = true;
    for op in batch.drain(..) {
        match op {
            WriterOp::Chat { op, origin } => {
                ops.push(op);
                origins.push(origin);
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
                    origins.push(None);
                    offline.push((user, generation, last_seen));
                }
            }
            WriterOp::Stop => keep_running = false,
        }
    }
    commit(store, hub, ops, origins);
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
        commit(store, hub, vec![op], vec![None]);
    }
    keep_running
}

/// Commits `ops` in one transaction and delivers each outcome. If the batch fails on a damaged
/// record, each op is tried on its own, so one bad op costs only its own sender.
fn commit(store: &Store, hub: &Hub, ops: Vec<ChatOp>, origins: Vec<Option<Origin>>) {
    if ops.is_empty() {
        return;
    }
    let error = match store.apply_chat_batch(&ops) {
        Ok(outcomes) => {
            for (outcome, origin) in outcomes.into_iter().zip(origins) {
                deliver(hub, outcome, origin);
            }
            return;
        }
        Err(error) => error,
    };
    let retry_alone = ops.len() > 1 && matches!(error, StoreError::Codec(_));
    if retry_alone {
        tracing::warn!(%error, "a batch of {} writes failed; retrying them one by one", ops.len());
        for (op, origin) in ops.into_iter().zip(origins) {
            commit(store, hub, vec![op], vec![origin]);
        }
        return;
    }
    let frame = match error {
        StoreError::StorageFull => FrameError::new(
            "storage_full",
            "the server's disk is full, so this was not saved; tell your administrator",
        ),
        error => {
            tracing::error!(%error, "could not commit a write");
            FrameError::new("internal", "this could not be saved; retry")
        }
    };
    for origin in origins.into_iter().flatten() {
        let error = frame.clone().with_client_id(origin.client_id);
        hub.deliver_to_connection(origin.user, origin.connection, &error.encode());
    }
}

fn deliver(hub: &Hub, outcome: ChatOutcome, origin: Option<Origin>) {
    match outcome {
        ChatOutcome::Sent { message, members } => {
            let skip = origin.as_ref().map(|o| o.connection);
            if let Some(origin) = &origin {
                ack(hub, origin, &message);
            }
            let frame = ServerFrame::Message { message: &message }.encode();
            hub.deliver_to(&members, &frame, skip);
        }
        ChatOutcome::Duplicate { message } => {
            if let Some(origin) = &origin {
                ack(hub, origin, &message);
            }
        }
        ChatOutcome::Read {
            conversation,
            user,
            read_seq,
            unread,
            members,
        } => {
            let own = ServerFrame::Unread {
                conversation: &conversation,
                unread,
                read_seq,
            }
            .encode();
            hub.deliver_to(&[user], &own, None);
            let others: Vec<u64> = members.into_iter().filter(|&m| m != user).collect();
            let receipt = ServerFrame::Read {
                conversation: &conversation,
                user,
                seq: read_seq,
            }
            .encode();
            hub.deliver_to(&others, &receipt, None);
        }
        ChatOutcome::Unchanged => {}
        ChatOutcome::Rejected(rejection) => {
            if let Some(origin) = origin {
                let error = FrameError::from(rejection).with_client_id(origin.client_id);
                hub.deliver_to_connection(origin.user, origin.connection, &error.encode());
            }
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
