// The live session: owns the WebSocket, turns server frames into store updates and user intents
// (open, send, retry, read, typing) into frames and HTTP calls.
import * as api from './api.js';
import * as store from './store.js';
import { createSocket } from './socket.js';
import { announce, notify } from './attention.js';
import { summaryText } from './format.js';

const PAGE_SIZE = 50;
/** Unacknowledged sends on the wire at once: well under the server's burst of 60 frames. */
const MAX_IN_FLIGHT = 10;
const CATCH_UP_PAGE = 100;
const TYPING_EVERY_MS = 2000;
/** Relative times ("5 min ago") are re-rendered this often. */
const CLOCK_TICK_MS = 30_000;
/** A mention recount that found a room still moving asks again this much later. */
const MENTION_RECOUNT_RETRY_MS = 500;

let socket = null;
let sessionEnded = () => {};
let syncing = false; // between hello and the end of its catch-up: the outbox waits
const catchUps = new Map(); // conversation id → {promise, again}
const readSent = new Map(); // conversation id → seq last sent in a read frame
const typingSent = new Map(); // conversation id → ms of the last typing frame
/** Edits, deletes and reactions on the wire: client_id → conversation id. Not queued offline. */
const changesSent = new Map();
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
  refreshRequestsAndBlocks();
  await refreshDirectory();
}

/** Request frames seen so far: a list fetched while one arrived may predate it. */
let requestFrames = 0;

/** Requests and blocks have no snapshot in `hello`: fetched at start and after every reconnect. */
function refreshRequestsAndBlocks() {
  refreshRequests();
  api.get('/api/blocks').then((res) => store.setBlocked(res.blocked ?? []), () => {});
}

function refreshRequests() {
  const seen = requestFrames;
  api.get('/api/requests').then((res) => {
    if (requestFrames !== seen) refreshRequests();
    else store.setRequests(res);
  }, () => {});
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
  changesSent.clear();
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
      if (changesSent.delete(frame.client_id)) {
        store.setChangeError(frame.message.conversation, '');
        store.applyUpdate(frame.message);
        return;
      }
      if (store.applyAck(frame) === 'gap') catchUp(frame.message.conversation);
      flushOutbox();
      return;
    }
    case 'message': return onMessage(frame.message);
    case 'update': return store.applyUpdate(frame.message, frame.change_seq);
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
    case 'member': return store.applyMember(frame);
    case 'conversation': return onConversation(frame);
    case 'request': return onRequest(frame);
    case 'error': return onError(frame);
    default: return undefined; // frames from a newer server are ignored, not fatal
  }
}

async function onHello(frame) {
  syncing = true;
  readSent.clear(); // the server's read state is authoritative again
  changesSent.clear(); // acks never come on a new connection; catch-up shows what happened
  store.updateMe(frame.user);
  store.setOnline(frame.online ?? []);
  store.setConversations(frame.conversations ?? []);
  refreshDirectory();
  refreshRequestsAndBlocks();
  // Members may have come and gone while we were away.
  for (const id of store.state.members.keys()) loadMembers(id);
  // Fill every gap of the conversations we hold, so nothing is missing and nothing doubles.
  const jobs = [];
  for (const [id, t] of store.state.timelines) {
    const s = store.state.conversations.get(id);
    if (t.loaded && !t.hasNewer && s && s.last_seq > store.newestSeq(t)) jobs.push(catchUp(id));
    // Edits, deletes and reactions made while we were away, to messages we already show.
    t.newer = undefined; // frames of the last connection: older pages are current by now
    if (t.loaded && s && (s.change_seq ?? 0) > (t.changeSeq ?? 0)) jobs.push(catchUpChanges(id));
  }
  await Promise.allSettled(jobs);
  syncing = false;
  settleTwins();
  flushOutbox();
  markReadIfAttending();
}

const summariesAsked = new Set();

/** A room we hold no summary for (a message overtook its `conversation` frame): ask for it once. */
function fetchRoomSummary(id) {
  if (summariesAsked.has(id)) return;
  summariesAsked.add(id);
  api.get(`/api/rooms/${encodeURIComponent(id)}`).then(store.setSummary, () => {}).finally(() => summariesAsked.delete(id));
}

function onMessage(msg) {
  if (msg.conversation.startsWith('room:') && store.state.conversations.get(msg.conversation)?.name === undefined) {
    fetchRoomSummary(msg.conversation);
  }
  if (store.applyMessage(msg) === 'gap') catchUp(msg.conversation);
  const me = store.state.me;
  if (msg.from !== me?.id) {
    const sender = store.userById(msg.from);
    const name = sender?.display_name ?? 'Someone';
    const s = store.state.conversations.get(msg.conversation);
    const room = s?.kind === 'room';
    const text = summaryText(msg);
    if (msg.conversation === store.state.openId) announce(`${name}: ${text}`);
    // Muted: never. Mentions only: when it names us (or @room). All: always.
    const mentioned = room && !store.state.blocked.has(msg.from) && store.mentionsMe(msg);
    const level = s?.notify ?? 'all';
    if (level === 'all' || (level === 'mentions' && mentioned)) {
      const title = room ? `${name} in ${s.name}${mentioned ? ' (mentioned you)' : ''}` : name;
      notify(title, text, msg.conversation, () => { location.hash = store.hrefFor(msg.conversation); });
    }
  }
  markReadIfAttending();
}

function onConversation(frame) {
  const id = frame.conversation?.id;
  const name = store.conversationName(id);
  if (store.applyConversation(frame) !== 'removed') return;
  // Our other tabs and the person removed: the room is gone from here on.
  catchUps.delete(id);
  readSent.delete(id);
  if (store.state.openId === id) {
    announce(`You are no longer in ${name}.`);
    location.hash = '#/';
  }
}

function onRequest(frame) {
  requestFrames += 1;
  switch (frame.action) {
    case 'received': {
      store.requestReceived(frame);
      const sender = store.userById(frame.from);
      const name = sender?.display_name ?? 'Someone';
      announce(`${name} wants to chat: ${frame.body}`);
      notify(`Chat request from ${name}`, frame.body ?? '', `request:${frame.from}`, () => {
        if (sender) location.hash = `#/dm/${encodeURIComponent(sender.username)}`;
      });
      return;
    }
    case 'sent':
      store.requestSent(frame);
      flushOutbox();
      return;
    case 'dropped':
      store.requestDropped(frame);
      return;
    case 'accepted':
    case 'declined': {
      store.requestAnswered(frame);
      if (frame.action === 'accepted') {
        // The request became the DM's first message: fetch the list and the DM's timeline.
        const id = store.dmWith(frame.user);
        api.get('/api/conversations').then((list) => {
          store.setConversations(list);
          const t = store.state.timelines.get(id);
          if (t?.loaded) catchUp(id);
        }, () => {});
      }
      return;
    }
    default:
  }
}

/** Why a send was refused, in words for the person who wrote it. */
const SEND_REFUSALS = {
  room_archived: 'This room is archived: it is read-only.',
  mention_not_allowed: 'Only administrators and the room creator may use @room here.',
  request_pending: 'Your chat request has not been answered yet.',
  request_declined: 'Your chat request was declined.',
  not_a_member: 'You are not in this conversation.',
  no_such_message: 'The message you replied to is not there any more.',
  no_such_file: 'An attached file is not on the server any more (unsent uploads are kept for a day). Attach it again.',
};

/** Why an edit, delete or reaction was refused, in words. */
const CHANGE_REFUSALS = {
  no_such_message: 'That message no longer exists.',
  not_your_message: 'You can only change your own messages.',
  edit_window_passed: 'Messages can only be edited in the 24 hours after they were sent.',
  message_deleted: 'That message was deleted.',
  invalid_emoji: 'A reaction must be a single emoji.',
  too_many_reactions: 'This message already has the most different reactions allowed.',
  room_archived: 'This room is archived: it is read-only.',
  rate_limited: 'Too much at once: try again in a moment.',
};

function onError(frame) {
  const conversation = frame.client_id ? changesSent.get(frame.client_id) : undefined;
  if (conversation) {
    changesSent.delete(frame.client_id);
    store.setChangeError(conversation, CHANGE_REFUSALS[frame.code] ?? frame.message);
    return;
  }
  const item = frame.client_id ? store.outboxItem(frame.client_id) : undefined;
  if (!item) return;
  if (frame.code in SEND_REFUSALS) {
    store.setOutboxStatus(item.client_id, 'failed', SEND_REFUSALS[frame.code]);
    flushOutbox();
    return;
  }
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
  // A timeline showing older history fills up by its newer pages, as the user scrolls down.
  if (store.timeline(id).hasNewer) return Promise.resolve();
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

const changesRunning = new Map(); // conversation id → promise

/**
 * Brings the messages a timeline holds up to date with the edits, deletes and reactions made since
 * the `change_seq` it was last current at (GET …/changes?after=).
 */
function catchUpChanges(id) {
  if (changesRunning.has(id)) return changesRunning.get(id);
  const promise = (async () => {
    try {
      const t = store.timeline(id);
      let after = t.changeSeq ?? 0;
      for (;;) {
        const page = await api.get(`/api/conversations/${encodeURIComponent(id)}/changes?after=${after}`);
        for (const msg of page.messages) store.applyUpdate(msg, page.change_seq, { catchUp: true });
        if (page.change_seq > (t.changeSeq ?? 0)) t.changeSeq = page.change_seq;
        if (!page.has_more || page.change_seq <= after) break;
        after = page.change_seq;
      }
    } catch {
      // The next hello tries again from the same change_seq.
    } finally {
      changesRunning.delete(id);
    }
  })();
  changesRunning.set(id, promise);
  return promise;
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
    t.errorCode = null;
    // The page shows messages as they are now: current at least up to the change_seq known before.
    t.changeSeq = store.state.conversations.get(id)?.change_seq ?? 0;
    try {
      store.applyHistory(id, await api.get(api.messagesPath(id, { limit: PAGE_SIZE })), 'latest');
    } catch (e) {
      t.error = e.message;
      t.errorCode = e.code;
    } finally {
      t.loading = false;
      store.changed(id);
    }
    const s = store.state.conversations.get(id);
    if (t.loaded && s && s.last_seq > store.newestSeq(t)) await catchUp(id);
  }
  if (id.startsWith('room:') && !store.state.members.has(id)) loadMembers(id);
  markReadIfAttending();
}

const membersLoading = new Set();

/** A room's member list (for the member panel, @-completion and "Seen by"); then kept by frames. */
export async function loadMembers(id) {
  if (membersLoading.has(id)) return;
  membersLoading.add(id);
  try {
    const res = await api.get(`/api/rooms/${encodeURIComponent(id)}/members`);
    if (store.state.conversations.has(id) || store.state.openId === id) store.setMembers(id, res.members ?? []);
  } catch {
    // Not a member (any more): the pane says so through its timeline error.
  } finally {
    membersLoading.delete(id);
  }
}

// ---- rooms, notification levels, requests, blocks (HTTP; frames confirm to the other tabs) ----

const roomPath = (id, rest = '') => `/api/rooms/${encodeURIComponent(id)}${rest}`;

export async function createRoom(body) {
  const summary = await api.post('/api/rooms', body);
  store.setSummary(summary);
  return summary;
}

export async function joinRoom(id) {
  const summary = await api.post(roomPath(id, '/join'));
  store.setSummary(summary);
  return summary;
}

export async function leaveRoom(id) {
  await api.post(roomPath(id, '/leave'));
  onConversation({ action: 'removed', conversation: { id } });
}

export async function updateRoom(id, change) {
  const summary = await api.patch(roomPath(id), change);
  store.setSummary(summary);
  return summary;
}

export async function addMember(id, userId) {
  const entry = await api.post(roomPath(id, '/members'), { user: userId });
  const members = store.state.members.get(id);
  if (members && !members.has(userId)) store.applyMember({ conversation: id, action: 'added', user: store.userById(userId) ?? { id: userId }, by: store.state.me.id });
  return entry;
}

export async function removeMember(id, userId) {
  await api.request('DELETE', roomPath(id, `/members/${userId}`));
  if (store.state.members.get(id)?.has(userId)) store.applyMember({ conversation: id, action: 'removed', user: store.userById(userId) ?? { id: userId }, by: store.state.me.id });
}

export async function setNotify(id, level) {
  await api.request('PUT', `/api/conversations/${encodeURIComponent(id)}/notify`, { level });
  store.applyConversation({ action: 'notify', conversation: { id, notify: level } });
}

export async function setDmPolicy(policy) {
  const settings = await api.request('PUT', '/api/me/settings', { dm_policy: policy });
  store.updateMe({ dm_policy: settings.dm_policy });
}

export async function answerRequest(userId, action) {
  const result = await api.post(`/api/requests/${userId}/${action}`);
  store.requestAnswered({ action, user: userId });
  store.state.requestOutcomes.delete(userId); // our own answer is not news to us
  if (action === 'accept' && result) {
    store.setSummary(result);
    // The request is now the DM's first message; a pane already open on the DM fetches it.
    const t = store.state.timelines.get(result.id);
    if (t?.loaded && result.last_seq > store.newestSeq(t)) catchUp(result.id);
  }
  return result;
}

export async function setBlock(userId, blocked) {
  await api.request(blocked ? 'PUT' : 'DELETE', `/api/blocks/${userId}`);
  const next = new Set(store.state.blocked);
  if (blocked) next.add(userId);
  else next.delete(userId);
  store.setBlocked([...next]);
  refreshMentionCounts();
  // A request from someone blocked goes out of sight (and one a block hid ends with it).
  refreshRequests();
}

/**
 * A block (or its end) changes which mentions count, those already counted too (PROTOCOL.md,
 * blocks). Only the server can recount them (this page holds only the messages it loaded), so
 * the list is fetched again; while frames are still moving a room on, it is asked once more.
 */
function refreshMentionCounts(tries = 3) {
  api.get('/api/conversations').then((list) => {
    if (!store.applyMentionCounts(list) && tries > 1) {
      setTimeout(() => refreshMentionCounts(tries - 1), MENTION_RECOUNT_RETRY_MS);
    }
  }, () => {});
}

/**
 * Runs `load` (which fetches and applies pages) with the timeline marked loading, so one load
 * runs at a time and the pane can say so; a failure is shown at the edge of the history.
 */
async function loading(id, load) {
  const t = store.timeline(id);
  t.loading = true;
  store.changed(id);
  try {
    await load();
  } catch (e) {
    t.error = e.message;
  } finally {
    t.loading = false;
    store.changed(id);
  }
}

/** The page before the oldest message held. Never the whole history at once. */
export async function loadOlder(id) {
  const t = store.timeline(id);
  if (!t.loaded || t.loading || !t.hasMore) return;
  await loading(id, async () => {
    const before = store.oldestSeq(t);
    store.applyHistory(id, await api.get(api.messagesPath(id, { before, limit: PAGE_SIZE })), 'older');
  });
}

/** The page after the newest message held, when the timeline stops short of the newest. */
export async function loadNewer(id) {
  const t = store.timeline(id);
  if (!t.loaded || t.loading || !t.hasNewer) return;
  await loading(id, async () => {
    const after = store.newestSeq(t);
    store.applyHistory(id, await api.get(api.messagesPath(id, { after, limit: PAGE_SIZE })), 'newer');
  });
  // Live messages that came while the last page was on its way were not kept: fetch them.
  const s = store.state.conversations.get(id);
  if (!t.hasNewer && s && s.last_seq > store.newestSeq(t)) catchUp(id);
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** Waits until no page is loading into a timeline (and no catch-up is filling it). */
async function settled(id) {
  const t = store.timeline(id);
  while (t.loading || catchUps.has(id)) {
    if (catchUps.has(id)) await catchUps.get(id).promise;
    else await sleep(50);
  }
}

/** Further back than this from the oldest message held, a jump loads the history around the
 * message instead of every page in between. */
const NEAR_JUMP = 2 * PAGE_SIZE;

/**
 * Makes message `seq` held (a reply's original, a search hit) with history around it: older pages
 * when it is near, else a window around it that pages on in both directions. Resolves whether it is.
 */
export async function loadAround(id, seq) {
  const t = store.timeline(id);
  await settled(id);
  if (t.messages.has(seq) || !t.loaded || t.error) return t.messages.has(seq);
  if (store.oldestSeq(t) - seq <= NEAR_JUMP && seq < store.oldestSeq(t)) {
    while (!t.messages.has(seq) && t.hasMore && !t.error && store.oldestSeq(t) > seq) {
      await loadOlder(id);
      await settled(id);
    }
    return t.messages.has(seq);
  }
  await loading(id, async () => {
    const half = PAGE_SIZE / 2;
    const [older, newer] = await Promise.all([
      api.get(api.messagesPath(id, { before: seq + 1, limit: half })),
      api.get(api.messagesPath(id, { after: seq, limit: half })),
    ]);
    store.applyWindow(id, older, newer);
  });
  return t.messages.has(seq);
}

/** Back to the newest messages from a window of older history (the "latest" button, a send). */
export async function showLatest(id) {
  const t = store.timeline(id);
  if (!t.hasNewer) return;
  await settled(id);
  await loading(id, async () => {
    const page = await api.get(api.messagesPath(id, { limit: PAGE_SIZE }));
    t.messages.clear();
    t.hasNewer = false;
    store.applyHistory(id, page, 'latest');
  });
  const s = store.state.conversations.get(id);
  if (!t.hasNewer && s && s.last_seq > store.newestSeq(t)) catchUp(id);
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

/**
 * `replyTo`: the seq of the message this one answers, if any; `files`: uploaded files
 * ({id, name, size, …}) the message carries.
 */
export function send(id, body, replyTo, files = []) {
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
  if (replyTo) item.reply_to = replyTo;
  if (files.length) {
    item.files = files.map((f) => f.id);
    item.fileInfo = files.map(({ name, size }) => ({ name, size }));
  }
  // A DM that has never had a message is opened by addressing the person.
  const other = store.otherMember(id);
  if (other && !(s?.last_seq > 0)) item.to = other;
  typingSent.delete(id);
  store.enqueue(item);
  flushOutbox();
}

// ---- edits, deletes, reactions: answered by an ack with the message as it is now ----

function sendChange(frame) {
  const clientId = newClientId();
  store.setChangeError(frame.conversation, '');
  if (!socket?.send({ ...frame, client_id: clientId })) {
    store.setChangeError(frame.conversation, 'Not connected: try again once the connection is back.');
    return false;
  }
  changesSent.set(clientId, frame.conversation);
  return true;
}

export function editMessage(id, seq, body) {
  return sendChange({ type: 'edit', conversation: id, seq, body });
}

export function deleteMessage(id, seq) {
  return sendChange({ type: 'delete', conversation: id, seq });
}

/** Toggles the user's own reaction. */
export function react(id, seq, emoji) {
  return sendChange({ type: 'react', conversation: id, seq, emoji });
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
  if (item.reply_to) frame.reply_to = item.reply_to;
  if (item.files) frame.files = item.files;
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
