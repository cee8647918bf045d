// The live session: owns the WebSocket, turns server frames into store updates and user intents
// (open, send, retry, read, typing) into frames and HTTP calls.
import * as api from './api.js';
import * as store from './store.js';
import { createSocket } from './socket.js';
import { announce, notify } from './attention.js';

const PAGE_SIZE = 50;
/** Unacknowledged sends on the wire at once: well under the server's burst of 60 frames. */
const MAX_IN_FLIGHT = 10;
const CATCH_UP_PAGE = 100;
const TYPING_EVERY_MS = 2000;
/** Relative times ("5 min ago") are re-rendered this often. */
const CLOCK_TICK_MS = 30_000;

let socket = null;
let sessionEnded = () => {};
let syncing = false; // between hello and the end of its catch-up: the outbox waits
const catchUps = new Map(); // conversation id → {promise, again}
const readSent = new Map(); // conversation id → seq last sent in a read frame
const typingSent = new Map(); // conversation id → ms of the last typing frame
let clock = null;

/** Starts the live session. Resolves once the directory is loaded (routes need usernames). */
export async function start(me, { onSessionEnded }) {
  sessionEnded = onSessionEnded;
  store.setMe(me);
  socket = createSocket({
    onFrame,
    onState,
    onSessionEnded: () => sessionEnded(),
    onRefused: checkSession,
  });
  addEventListener('focus', markReadIfAttending);
  addEventListener('online', reconnectNow);
  document.addEventListener('visibilitychange', markReadIfAttending);
  clock = setInterval(() => store.changed(), CLOCK_TICK_MS);
  api.get('/api/conversations').then(store.setConversations, () => {});
  await refreshDirectory();
}

export function stop() {
  socket?.close();
  socket = null;
  clearInterval(clock);
  removeEventListener('focus', markReadIfAttending);
  removeEventListener('online', reconnectNow);
  document.removeEventListener('visibilitychange', markReadIfAttending);
  catchUps.clear();
  readSent.clear();
  typingSent.clear();
  store.reset();
}

export function reconnectNow() {
  socket?.reconnectNow();
}

export async function refreshDirectory() {
  try {
    store.setUsers(await api.get('/api/users'));
  } catch {
    // Shown as a missing list; the next hello tries again.
  }
}

/** A refused (re)connection may mean the session is gone: ask the API, which knows why. */
async function checkSession() {
  try {
    const me = await api.get('/api/me');
    if (me.must_change_password) sessionEnded();
  } catch {
    // 401 is handled by the API module; a network error just means the server is still down.
  }
}

function onState(value) {
  if (value === 'offline') store.failInFlight();
  store.setConnection(value);
}

function onFrame(frame) {
  switch (frame.type) {
    case 'hello': return onHello(frame);
    case 'ack': {
      if (store.applyAck(frame) === 'gap') catchUp(frame.message.conversation);
      flushOutbox();
      return;
    }
    case 'message': return onMessage(frame.message);
    case 'read': return store.applyRead(frame);
    case 'unread': return store.applyUnread(frame);
    case 'typing': {
      store.applyTyping(frame);
      // Re-render when it expires, so the indicator goes away without another frame.
      setTimeout(() => store.changed(), store.TYPING_TTL_MS + 50);
      return;
    }
    case 'presence': {
      store.applyPresence(frame);
      if (!store.state.users.has(frame.user)) refreshDirectory();
      return;
    }
    case 'user': return store.applyUser(frame.user);
    case 'error': return onError(frame);
    default: return undefined; // frames from a newer server are ignored, not fatal
  }
}

async function onHello(frame) {
  syncing = true;
  readSent.clear(); // the server's read state is authoritative again
  store.updateMe(frame.user);
  store.setOnline(frame.online ?? []);
  store.setConversations(frame.conversations ?? []);
  refreshDirectory();
  // Fill every gap of the conversations we hold, so nothing is missing and nothing doubles.
  const jobs = [];
  for (const [id, t] of store.state.timelines) {
    const s = store.state.conversations.get(id);
    if (t.loaded && s && s.last_seq > store.newestSeq(t)) jobs.push(catchUp(id));
  }
  await Promise.allSettled(jobs);
  syncing = false;
  settleTwins();
  flushOutbox();
  markReadIfAttending();
}

function onMessage(msg) {
  if (store.applyMessage(msg) === 'gap') catchUp(msg.conversation);
  const me = store.state.me;
  if (msg.from !== me?.id) {
    const sender = store.userById(msg.from);
    const name = sender?.display_name ?? 'Someone';
    if (msg.conversation === store.state.openId) announce(`${name}: ${msg.body}`);
    notify(name, msg.body, msg.conversation, () => {
      if (sender) location.hash = `#/dm/${encodeURIComponent(sender.username)}`;
    });
  }
  markReadIfAttending();
}

function onError(frame) {
  const item = frame.client_id ? store.outboxItem(frame.client_id) : undefined;
  if (!item) return;
  if (frame.code === 'rate_limited') {
    // Not stored; send it again shortly, keeping its place in the queue.
    store.setOutboxStatus(item.client_id, 'queued');
    setTimeout(flushOutbox, 1000);
    return;
  }
  store.setOutboxStatus(item.client_id, 'failed', frame.message);
  flushOutbox();
}

/** Fetches `?after=<newest held>` until caught up. One run per conversation; repeats if asked. */
function catchUp(id) {
  const running = catchUps.get(id);
  if (running) {
    running.again = true;
    return running.promise;
  }
  const job = { again: true };
  job.promise = (async () => {
    try {
      while (job.again) {
        job.again = false;
        let after = store.newestSeq(store.timeline(id));
        for (;;) {
          const page = await api.get(api.messagesPath(id, { after, limit: CATCH_UP_PAGE }));
          store.applyHistory(id, page, 'newer');
          if (!page.has_more || page.messages.length === 0) break;
          after = page.messages[page.messages.length - 1].seq;
        }
      }
    } catch {
      // The next hello (or the next live message) tries again.
    } finally {
      catchUps.delete(id);
    }
    markReadIfAttending();
  })();
  catchUps.set(id, job);
  return job.promise;
}

// ---- conversations ----

/** Shows a conversation (null for none): loads its latest page once, then keeps it live. */
export async function openConversation(id) {
  store.state.openId = id;
  store.changed(id);
  if (!id) return;
  const t = store.timeline(id);
  if (!t.loaded && !t.loading) {
    t.loading = true;
    t.error = null;
    try {
      store.applyHistory(id, await api.get(api.messagesPath(id, { limit: PAGE_SIZE })), 'latest');
    } catch (e) {
      t.error = e.message;
    } finally {
      t.loading = false;
      store.changed(id);
    }
    const s = store.state.conversations.get(id);
    if (t.loaded && s && s.last_seq > store.newestSeq(t)) await catchUp(id);
  }
  markReadIfAttending();
}

/** The page before the oldest message held. Never the whole history at once. */
export async function loadOlder(id) {
  const t = store.timeline(id);
  if (!t.loaded || t.loading || !t.hasMore) return;
  t.loading = true;
  store.changed(id);
  try {
    const before = store.oldestSeq(t);
    store.applyHistory(id, await api.get(api.messagesPath(id, { before, limit: PAGE_SIZE })), 'older');
  } catch (e) {
    t.error = e.message;
  } finally {
    t.loading = false;
    store.changed(id);
  }
}

/**
 * Read only counts when someone can actually see it: conversation open, tab visible, window focused.
 */
export function markReadIfAttending() {
  const id = store.state.openId;
  if (!id || document.visibilityState !== 'visible' || !document.hasFocus()) return;
  const s = store.state.conversations.get(id);
  if (!s || s.last_seq === 0 || (s.read_seq >= s.last_seq && s.unread === 0)) return;
  if ((readSent.get(id) ?? -1) >= s.last_seq) return;
  if (socket?.send({ type: 'read', conversation: id, seq: s.last_seq })) {
    readSent.set(id, s.last_seq);
    store.markedRead(id, s.last_seq);
  }
}

export function typing(id) {
  const now = Date.now();
  if (now - (typingSent.get(id) ?? 0) < TYPING_EVERY_MS) return;
  if (socket?.send({ type: 'typing', conversation: id })) typingSent.set(id, now);
}

// ---- sending ----

/** crypto.randomUUID needs a secure context; an office server on plain http is not one. */
function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function send(id, body) {
  const s = store.state.conversations.get(id);
  const item = {
    client_id: newClientId(),
    conversation: id,
    body,
    status: 'queued',
    at: Date.now(),
    // Own messages after this seq with the same body may be this one (see settleTwins).
    after: s?.last_seq ?? 0,
  };
  // A DM that has never had a message is opened by addressing the person.
  const other = store.otherMember(id);
  if (other && !(s?.last_seq > 0)) item.to = other;
  typingSent.delete(id);
  store.enqueue(item);
  flushOutbox();
}

/** Same client_id, same body, same conversation: the server stores it at most once. */
export function retry(clientId) {
  if (!store.outboxItem(clientId)) return;
  store.setOutboxStatus(clientId, 'queued');
  flushOutbox();
}

export function discard(clientId) {
  store.removeOutbox(clientId);
}

function transmit(item) {
  const frame = { type: 'send', body: item.body, client_id: item.client_id };
  if (item.to) frame.to = item.to;
  else frame.conversation = item.conversation;
  if (socket?.send(frame)) store.setOutboxStatus(item.client_id, 'sending');
}

/**
 * Queued messages go out in the order they were written, once the connection is caught up, a few at
 * a time (each ack lets the next one go) so a long offline queue does not trip the rate limit.
 */
function flushOutbox() {
  if (syncing || !socket?.ready) return;
  let inFlight = store.state.outbox.filter((i) => i.status === 'sending').length;
  for (const item of [...store.state.outbox]) {
    if (inFlight >= MAX_IN_FLIGHT) break;
    if (item.status !== 'queued') continue;
    transmit(item);
    inFlight += 1;
  }
}

/**
 * A failed send whose fate is unknown may have been stored after all (the ack was lost). If catch-up
 * brought an own message with the same body, retry it now: the server answers with the original ack
 * when it is the same message, so the user never sees it twice.
 */
function settleTwins() {
  for (const item of store.state.outbox) {
    if (item.status !== 'failed') continue;
    const t = store.state.timelines.get(item.conversation);
    if (!t) continue;
    for (const msg of t.messages.values()) {
      if (msg.seq > item.after && msg.from === store.state.me.id && msg.body === item.body) {
        store.setOutboxStatus(item.client_id, 'queued');
        break;
      }
    }
  }
}
