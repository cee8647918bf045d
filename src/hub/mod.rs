//! The live side of chat: who is connected, fan-out of events, presence with a grace period,
//! and the single writer that commits messages in batches.
//!
//! State ownership: the registry (user → connections) sits behind one std `Mutex` that is never
//! held across `.await`; frames are offered to each connection's bounded queue without waiting.
//! All message writes go through the writer thread, which also registers new connections so
//! that a connection's `hello` snapshot and its live events never overlap or leave a gap.

mod connection;
mod protocol;
mod writer;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::{Notify, mpsc, watch};

use crate::config::limits;
use crate::metrics::Metrics;
use crate::search;
use crate::store::{self, ChatOp, ChatOutcome, Store, User};
pub use connection::serve;
use protocol::{Frame, ServerFrame};
pub use writer::WriteFailed;
use writer::{Caller, WriterOp};

/// Close codes the hub uses (see docs/PROTOCOL.md).
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    /// The peer broke the WebSocket framing rules (unmasked frame, reserved opcode or bits,
    /// oversized or fragmented control frame).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text frame (or close reason) that is not UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const SESSION_ENDED: u16 = 4001;
}

/// A moment's view of the hub's load.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub open_websockets: usize,
    /// People shown as online: a connection open, or closed less than the grace period ago.
    pub online_users: usize,
    /// Writes queued for the writer.
    pub writer_queue: usize,
}

/// Handle to the hub; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    /// Live connections by user. A std `Mutex`: held for map updates and queueing frames only,
    /// never across `.await`.
    registry: Mutex<Registry>,
    /// The single writer's queue. Bounded: when it is full, senders wait (backpressure).
    writer: mpsc::Sender<WriterOp>,
    /// Joined at shutdown, so the last batch commits before the database closes.
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    /// For reads on behalf of connections (typing membership checks, housekeeping).
    store: Store,
    /// Committed messages, edits and deletes go to the search indexer; never blocks.
    search: search::Feed,
    next_connection: AtomicU64,
    /// Sockets beyond this are refused with 1013.
    max_connections: usize,
    /// Frames per second each connection may send.
    frame_rate: u32,
    /// Commits, rate-limited frames and slow readers are counted here.
    metrics: Arc<Metrics>,
    /// Set once at shutdown; timers and housekeeping end on it, so nothing outlives the hub
    /// and the database closes cleanly.
    stopping: watch::Sender<bool>,
}

#[derive(Default)]
struct Registry {
    users: HashMap<u64, Presence>,
    /// Users everyone was told are online, in order: every `hello` lists them, and a connect
    /// storm must not sort the office once per socket.
    announced: BTreeSet<u64>,
    /// Open sockets across all users, for the connection limit and for shutdown.
    connections: usize,
    /// Bumped (under this lock) by every session revocation, so a registration that checked
    /// its session before taking the lock can tell whether it must check again.
    revocations: u64,
}

impl Registry {
    /// Whether `user`'s last connection closed at `generation` and none opened since.
    fn is_gone(&self, user: u64, generation: u64) -> bool {
        self.users
            .get(&user)
            .is_some_and(|p| p.connections.is_empty() && p.generation == generation)
    }
}

/// One user's live connections and what the others have been told.
#[derive(Default)]
struct Presence {
    connections: HashMap<u64, Connection>,
    /// Bumped whenever the last connection closes, so a stale grace timer does nothing.
    generation: u64,
}

/// How the hub reaches one open socket.
#[derive(Clone)]
pub(crate) struct Connection {
    /// Which login this socket belongs to, so logging out closes only that login's sockets.
    session_id: u128,
    /// The socket's outgoing queue, and the way to close it (slow reader, session ended,
    /// shutdown).
    control: Arc<Control>,
}

impl Connection {
    /// Queues a frame; a client too slow to drain its queue is closed, to catch up later.
    fn deliver(&self, frame: &Frame) {
        if !self.control.offer(frame.clone()) {
            self.control.close(close::POLICY);
        }
    }
}

/// What the hub and a connection's tasks share: the socket's bounded outgoing queue, and a
/// request to close it with a code (0: open), set from any thread.
///
/// One allocation per socket, holding no buffer while the socket is idle: a tokio channel and
/// a `watch` would be three allocations, one of them the channel's first block of slots.
#[derive(Default)]
pub(crate) struct Control {
    code: AtomicU16,
    closing: Notify,
    queue: Mutex<OutgoingQueue>,
    queued: Notify,
}

#[derive(Default)]
struct OutgoingQueue {
    frames: VecDeque<Frame>,
    /// The bytes of `frames`: the queue is bounded in bytes as well as in frames, so a
    /// reader that stalls pins a few MiB at most.
    bytes: usize,
}

impl Control {
    /// Queues a frame unless the socket is already too far behind, in frames or in bytes.
    fn offer(&self, frame: Frame) -> bool {
        let mut queue = lock(&self.queue);
        if queue.frames.len() >= limits::CONNECTION_QUEUE
            || queue.bytes + frame.len() > limits::CONNECTION_QUEUE_BYTES
        {
            return false;
        }
        queue.bytes += frame.len();
        queue.frames.push_back(frame);
        drop(queue);
        self.queued.notify_one();
        true
    }

    /// Waits for queued frames, then takes up to `most` of them (cancel-safe: nothing is
    /// taken until it resolves).
    async fn next_frames(&self, most: usize) -> Vec<Frame> {
        loop {
            if let Some(frames) = self.take_frames(most) {
                return frames;
            }
            // A frame queued since the check left a permit, so this returns at once.
            self.queued.notified().await;
        }
    }

    fn take_frames(&self, most: usize) -> Option<Vec<Frame>> {
        let mut queue = lock(&self.queue);
        if queue.frames.is_empty() {
            return None;
        }
        let count = most.min(queue.frames.len());
        let frames: Vec<Frame> = queue.frames.drain(..count).collect();
        queue.bytes -= frames.iter().map(|frame| frame.len()).sum::<usize>();
        if queue.frames.is_empty() && queue.frames.capacity() > most {
            // A burst is over: an idle socket keeps no buffer sized for it.
            queue.frames = VecDeque::new();
        }
        Some(frames)
    }

    /// The first reason wins: a session ending is not overwritten by a later shutdown.
    fn close(&self, code: u16) {
        let first = self
            .code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if first {
            self.closing.notify_waiters();
        }
    }

    fn code(&self) -> Option<u16> {
        Some(self.code.load(Ordering::Acquire)).filter(|&code| code != 0)
    }

    /// Resolves once a close was asked for.
    async fn closed(&self) {
        let notified = self.closing.notified();
        tokio::pin!(notified);
        // Registered before the code is checked, so a close in between still wakes us.
        notified.as_mut().enable();
        if self.code().is_none() {
            notified.await;
        }
    }
}

impl Hub {
    pub fn start(
        store: Store,
        search: search::Feed,
        max_connections: usize,
        frame_rate: u32,
        metrics: Arc<Metrics>,
    ) -> Hub {
        let (writer, queue) = mpsc::channel(limits::WRITER_QUEUE);
        let hub = Hub {
            inner: Arc::new(Inner {
                registry: Mutex::new(Registry::default()),
                writer,
                writer_thread: Mutex::new(None),
                store: store.clone(),
                search,
                next_connection: AtomicU64::new(1),
                max_connections,
                frame_rate,
                metrics,
                stopping: watch::channel(false).0,
            }),
        };
        let thread = writer::spawn(store, hub.clone(), queue);
        *lock(&hub.inner.writer_thread) = Some(thread);
        hub.spawn_housekeeping();
        hub
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.inner.registry)
    }

    /// Closes the connections of these sessions with 4001 (logout, reset, disable).
    pub fn end_sessions(&self, user: u64, sessions: &[u128]) {
        if sessions.is_empty() {
            return;
        }
        let mut registry = self.registry();
        registry.revocations += 1;
        if let Some(presence) = registry.users.get(&user) {
            for connection in presence.connections.values() {
                if sessions.contains(&connection.session_id) {
                    connection.control.close(close::SESSION_ENDED);
                }
            }
        }
    }

    /// Tells everyone about a new or changed account, so directories stay current.
    pub fn announce_user(&self, user: &User) {
        let frame = ServerFrame::User {
            user: user.directory_entry(),
        }
        .encode();
        broadcast(&self.registry(), &frame);
    }

    /// Tells General's members that a new account joined it (accounts join General as they
    /// are created, outside the writer).
    pub async fn announce_joined_general(&self, user: &User) {
        let general = store::ConversationId::general();
        let store = self.inner.store.clone();
        let (id, room) = (user.id, general.clone());
        let members = match store::blocking(move || store.members(id, &room)).await {
            Ok(Some(members)) => members,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not list General's members");
                return;
            }
        };
        let frame = ServerFrame::Member {
            conversation: &general,
            action: "added",
            user: user.directory_entry(),
            by: user.id,
        }
        .encode();
        self.deliver_to(&members, &frame, None);
    }

    /// Closes every connection (1001), saves when everyone online was last seen, and waits for
    /// the writer to commit what it has.
    pub async fn shutdown(&self) {
        self.inner.stopping.send_replace(true);
        let online: Vec<u64> = {
            let registry = self.registry();
            for presence in registry.users.values() {
                for connection in presence.connections.values() {
                    connection.control.close(close::GOING_AWAY);
                }
            }
            registry.users.keys().copied().collect()
        };
        // Wait (briefly) until every connection has sent its goodbye and unregistered.
        let deadline = tokio::time::Instant::now() + limits::SOCKET_GOODBYE;
        while self.registry().connections > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if !online.is_empty() {
            let at = store::now_secs();
            let op = ChatOp::Seen { users: online, at };
            let _ = self
                .submit(WriterOp::Chat {
                    op,
                    caller: Caller::Nobody,
                })
                .await;
        }
        let _ = self.inner.writer.send(WriterOp::Stop).await;
        let thread = lock(&self.inner.writer_thread).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// How busy the hub is right now, for /metrics and the admin page.
    pub fn load(&self) -> Load {
        let (open_websockets, online_users) = {
            let registry = self.registry();
            (registry.connections, registry.announced.len())
        };
        Load {
            open_websockets,
            online_users,
            writer_queue: limits::WRITER_QUEUE.saturating_sub(self.inner.writer.capacity()),
        }
    }

    fn next_connection_id(&self) -> u64 {
        self.inner.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// Commits `op` through the writer (after the writes queued before it), tells everyone
    /// concerned, and returns what happened: for requests that change chat state over HTTP.
    pub async fn apply(&self, op: ChatOp) -> Result<ChatOutcome, WriteFailed> {
        let (answer, outcome) = tokio::sync::oneshot::channel();
        let op = WriterOp::Chat {
            op,
            caller: Caller::Http(answer),
        };
        self.submit(op).await.map_err(|()| WriteFailed::Internal)?;
        outcome.await.unwrap_or(Err(WriteFailed::Internal))
    }

    /// Queues a write for the writer; waits (backpressure) while the writer is full.
    async fn submit(&self, op: WriterOp) -> Result<(), ()> {
        self.inner.writer.send(op).await.map_err(|_| ())
    }

    /// Resolves once shutdown has begun.
    async fn stopped(&self) {
        let mut stopping = self.inner.stopping.subscribe();
        let _ = stopping.wait_for(|&stopping| stopping).await;
    }

    /// Adds a connection and announces the user if they were offline. Runs on the writer
    /// thread, between batches. Refuses past the connection limit, and refuses a session
    /// revoked since it was checked: `session_alive` reads the database, so it runs outside the
    /// lock, and again only if a revocation happened meanwhile (revocations bump a counter
    /// under this lock before closing sockets, so none slips between the check and the insert).
    /// Returns the online set and whether this user just came online, or the close code that
    /// refuses the connection.
    fn register(
        &self,
        user: u64,
        id: u64,
        connection: Connection,
        session_alive: impl Fn() -> bool,
    ) -> Result<(Vec<u64>, bool), u16> {
        let mut registry = loop {
            let seen = self.registry().revocations;
            if !session_alive() {
                return Err(close::SESSION_ENDED);
            }
            let registry = self.registry();
            if registry.revocations == seen {
                break registry;
            }
        };
        if registry.connections >= self.inner.max_connections {
            return Err(close::TRY_AGAIN_LATER);
        }
        let announce = !registry.announced.contains(&user);
        if announce {
            let frame = ServerFrame::Presence {
                user,
                online: true,
                last_seen: store::now_secs(),
            }
            .encode();
            broadcast(&registry, &frame);
        }
        registry.announced.insert(user);
        let presence = registry.users.entry(user).or_default();
        presence.connections.insert(id, connection);
        registry.connections += 1;
        let online = registry.announced.iter().copied().collect();
        Ok((online, announce))
    }

    /// Removes a connection. If it was the user's last, they are announced offline after the
    /// grace period unless they reconnect first (a page reload must not flicker).
    fn unregister(&self, user: u64, id: u64) {
        let generation = {
            let mut registry = self.registry();
            let Some(presence) = registry.users.get_mut(&user) else {
                return;
            };
            if presence.connections.remove(&id).is_none() {
                return;
            }
            let now_empty = presence.connections.is_empty();
            if now_empty {
                presence.generation += 1;
            }
            let generation = presence.generation;
            registry.connections -= 1;
            if !now_empty {
                return;
            }
            generation
        };
        let last_seen = store::now_secs();
        let hub = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(limits::PRESENCE_GRACE) => {
                    let op = WriterOp::Offline { user, generation, last_seen };
                    let _ = hub.submit(op).await;
                }
                // Shutdown stamps everyone's last_seen itself.
                _ = hub.stopped() => {}
            }
        });
    }

    /// Whether `user` left (the connection set emptied at `generation`) and has not returned.
    fn still_gone(&self, user: u64, generation: u64) -> bool {
        self.registry().is_gone(user, generation)
    }

    /// After the grace period, and after the writer saved `last_seen` (so whoever reacts to
    /// the frame reads it): tells everyone the user is offline, unless they came back.
    fn announce_offline(&self, user: u64, generation: u64, last_seen: u64) {
        let mut registry = self.registry();
        if !registry.is_gone(user, generation) {
            return;
        }
        registry.users.remove(&user);
        registry.announced.remove(&user);
        let frame = ServerFrame::Presence {
            user,
            online: false,
            last_seen,
        }
        .encode();
        broadcast(&registry, &frame);
    }

    /// Sends a frame to every connection of these users, except `skip`.
    fn deliver_to(&self, users: &[u64], frame: &Frame, skip: Option<u64>) {
        let registry = self.registry();
        for user in users {
            if let Some(presence) = registry.users.get(user) {
                for (&id, connection) in &presence.connections {
                    if Some(id) != skip {
                        connection.deliver(frame);
                    }
                }
            }
        }
    }

    /// Sends a frame to one connection.
    fn deliver_to_connection(&self, user: u64, id: u64, frame: &Frame) {
        let registry = self.registry();
        if let Some(connection) = registry
            .users
            .get(&user)
            .and_then(|p| p.connections.get(&id))
        {
            connection.deliver(frame);
        }
    }

    /// Hourly, the first time a few minutes after start (which has better things to do):
    /// forget old client ids and expired sessions, so tables stay small. Through the writer
    /// like every other chat write.
    fn spawn_housekeeping(&self) {
        let hub = self.clone();
        tokio::spawn(async move {
            let first = tokio::time::Instant::now() + limits::HOUSEKEEPING_DELAY;
            let mut every_hour = tokio::time::interval_at(first, limits::HOUSEKEEPING_INTERVAL);
            loop {
                tokio::select! {
                    _ = every_hour.tick() => {}
                    _ = hub.stopped() => return,
                }
                if let Err(failed) = hub.housekeeping().await {
                    tracing::debug!(?failed, "housekeeping skipped this time");
                }
            }
        });
    }

    async fn housekeeping(&self) -> Result<(), WriteFailed> {
        let before = store::now_millis().saturating_sub(limits::CLIENT_ID_TTL.as_millis() as u64);
        let mut after = None;
        // Chunk by chunk, so chat writes queued meanwhile go between the chunks.
        while let ChatOutcome::Purged {
            resume: Some(resume),
        } = self.apply(ChatOp::PurgeClientIds { before, after }).await?
        {
            after = Some(resume);
        }
        let now = store::now_secs();
        self.apply(ChatOp::PurgeExpiredSessions { now }).await?;
        Ok(())
    }
}

fn broadcast(registry: &Registry, frame: &Frame) {
    for presence in registry.users.values() {
        for connection in presence.connections.values() {
            connection.deliver(frame);
        }
    }
}

/// A poisoned lock only means another task panicked mid-update of plain maps; keep serving.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Frame {
        Frame::from(text.to_owned())
    }

    #[tokio::test]
    async fn a_connection_queue_hands_out_frames_in_order_in_batches_and_wakes_its_pump() {
        let control = Arc::new(Control::default());
        for n in 0..5 {
            assert!(control.offer(frame(&format!("f{n}"))));
        }
        let first = control.next_frames(3).await;
        assert_eq!(
            first.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
            ["f0", "f1", "f2"]
        );
        assert_eq!(control.next_frames(3).await.len(), 2);

        // A pump waiting on an empty queue is woken by the next frame.
        let waiting = tokio::spawn({
            let control = control.clone();
            async move { control.next_frames(8).await }
        });
        tokio::task::yield_now().await;
        assert!(control.offer(frame("late")));
        let late = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the waiting pump was woken")
            .expect("pump task");
        assert_eq!(
            late.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
            ["late"]
        );
        assert_eq!(lock(&control.queue).bytes, 0);
    }

    #[test]
    fn a_connection_queue_is_bounded_in_bytes_as_well_as_frames() {
        let control = Control::default();
        let big = frame(&"x".repeat(limits::CONNECTION_QUEUE_BYTES / 4));
        for _ in 0..4 {
            assert!(control.offer(big.clone()));
        }
        assert!(!control.offer(frame("one byte too many")));

        let control = Control::default();
        for _ in 0..limits::CONNECTION_QUEUE {
            assert!(control.offer(frame("")));
        }
        assert!(!control.offer(frame("")), "one frame too many");
    }
}
