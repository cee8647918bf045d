// The one client-side store. Server frames and HTTP results are applied here; views read `state`
// and re-render when notified. Nothing in this module talks to the network.
import { dmId } from './format.js';

export const TYPING_TTL_MS = 5000;
/** Updates kept for messages not loaded yet (a page in flight may be older than them). */
const MAX_HELD_UPDATES = 200;

export const state = {
  me: null,
  /** id → directory entry from GET /api/users (kept up to date by presence frames). */
  users: new Map(),
  online: new Set(),
  /** id → conversation summary, plus `reads` as a Map user → seq and `activity` in ms. */
  conversations: new Map(),
  /** Whether the list of conversations came (GET /api/conversations or `hello`): a room missing from it is not ours. */
  conversationsLoaded: false,
  /**
   * id → {messages: Map seq → message, hasMore, hasNewer, loaded, loading}; only for conversations
   * opened. The messages held are contiguous; `hasNewer` means they stop short of the newest (a jump
   * to an old message loaded the history around it), so live messages wait for the newer pages.
   */
  timelines: new Map(),
  /** conversation id → Map user id → expiry (ms). */
  typing: new Map(),
  /** Unacknowledged sends, oldest first: {client_id, conversation, to, body, status, error, at}. */
  outbox: [],
  /** 'connecting' (first attempt), 'online' (hello received), 'offline' (lost, reconnecting). */
  connection: 'connecting',
  /** Conversation on screen (id), and the other person's id when it is a DM. */
  openId: null,
  /** Bumped on any change to what a conversation pane shows, so it re-renders only when needed. */
  revs: new Map(),
  /** room id → Map user id → member entry {user, read_seq, added_by, joined_at}; rooms opened only. */
  members: new Map(),
  /** Chat requests: incoming [{from, body, sent_at}], outgoing [{to, sent_at, body?}]. */
  requests: { incoming: [], outgoing: [] },
  /** user id → 'accepted' | 'declined': answers to our requests (declines also from GET /api/requests). */
  requestOutcomes: new Map(),
  /** People the user blocked. */
  blocked: new Set(),
  /** conversation id → why the last edit, delete or reaction there was refused (shown in the pane). */
  changeErrors: new Map(),
};

const listeners = new Set();
let scheduled = false;

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Batches notifications: a burst of frames renders once. */
export function changed(conversationId) {
  if (conversationId) state.revs.set(conversationId, (state.revs.get(conversationId) ?? 0) + 1);
  if (scheduled) return;
  scheduled = true;
  queueMicrotask(() => {
    scheduled = false;
    for (const fn of listeners) fn();
  });
}

export function rev(conversationId) {
  return state.revs.get(conversationId) ?? 0;
}

export function reset() {
  state.me = null;
  state.users.clear();
  state.online.clear();
  state.conversations.clear();
  state.conversationsLoaded = false;
  state.timelines.clear();
  state.typing.clear();
  state.outbox = [];
  state.connection = 'connecting';
  state.openId = null;
  state.revs.clear();
  state.members.clear();
  state.requests = { incoming: [], outgoing: [] };
  state.requestOutcomes.clear();
  state.blocked.clear();
  state.changeErrors.clear();
  changed();
}

// ---- identity and directory ----

/** Signing in: who we are, and the outbox this browser kept for that account. */
export function setMe(user) {
  state.me = user;
  state.outbox = loadOutbox(user.id);
  changed();
}

/**
 * A user object merged over what we hold. Optional fields the server leaves out when empty (a
 * removed profile picture) are gone from the result too.
 */
function mergeUser(old, user) {
  const next = { ...old, ...user };
  if (!('avatar' in user)) delete next.avatar;
  return next;
}

/** Fresh account details (hello, directory): the outbox in memory is left alone. */
export function updateMe(user) {
  state.me = mergeUser(state.me, user);
  changed();
}

export function setUsers(list) {
  state.users = new Map(list.map((u) => [u.id, u]));
  if (state.me && state.users.has(state.me.id)) {
    const { must_change_password } = state.me;
    state.me = { ...state.me, ...state.users.get(state.me.id), must_change_password };
  }
  for (const id of state.revs.keys()) changed(id); // names in panes may have changed
  changed();
}

export function userById(id) {
  return state.users.get(id) ?? (state.me?.id === id ? state.me : undefined);
}

export function userByName(username) {
  const name = username.toLowerCase();
  for (const u of state.users.values()) if (u.username === name) return u;
  return undefined;
}

/** The other member of a DM (or undefined for other kinds of conversation). */
export function otherMember(conversationId) {
  const m = /^dm:(\d+):(\d+)$/.exec(conversationId ?? '');
  if (!m || !state.me) return undefined;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a === state.me.id ? b : a;
}

export function dmWith(userId) {
  return dmId(state.me.id, userId);
}

// ---- conversations ----

function summaryFrom(s) {
  return {
    ...s,
    reads: new Map((s.reads ?? []).map((r) => [r.user, r.seq])),
    activity: s.last_message?.sent_at ?? 0,
  };
}

function ensureSummary(id) {
  let s = state.conversations.get(id);
  if (!s) {
    const other = otherMember(id);
    s = summaryFrom({
      id, kind: id.startsWith('dm:') ? 'dm' : 'room',
      members: other ? [state.me.id, other] : [state.me.id],
      last_seq: 0, read_seq: 0, unread: 0, mentions: 0, notify: 'all', last_message: null, reads: [],
    });
    state.conversations.set(id, s);
  }
  return s;
}

export function setConversations(list) {
  const next = new Map();
  for (const s of list) {
    const summary = summaryFrom(s);
    // A read frame may have told us more than this list knows (it can be older than the frame).
    const old = state.conversations.get(s.id);
    if (old) for (const [user, seq] of old.reads) if (seq > (summary.reads.get(user) ?? 0)) summary.reads.set(user, seq);
    next.set(s.id, summary);
    changed(s.id);
  }
  // Keep local-only entries (an opened DM that has no messages yet) so the pane stays put. A room
  // missing from the list is one we are no longer in.
  for (const [id, s] of state.conversations) if (!next.has(id) && s.kind === 'dm' && s.last_seq === 0) next.set(id, s);
  for (const id of state.members.keys()) if (!next.has(id)) state.members.delete(id);
  state.conversations = next;
  state.conversationsLoaded = true;
  changed();
}

/** One summary from the server (a join, a create, an accepted request): added or replaced. */
export function setSummary(s) {
  const summary = summaryFrom(s);
  const old = state.conversations.get(s.id);
  if (old) for (const [user, seq] of old.reads) if (seq > (summary.reads.get(user) ?? 0)) summary.reads.set(user, seq);
  state.conversations.set(s.id, summary);
  changed(s.id);
}

/** Direct messages with at least one message, latest activity first. */
export function conversationList() {
  return [...state.conversations.values()]
    .filter((s) => s.kind !== 'room' && s.last_seq > 0)
    .sort((a, b) => b.activity - a.activity || b.last_seq - a.last_seq);
}

/** Rooms in the sidebar: not archived; General first, then by name. */
export function roomList() {
  return [...state.conversations.values()]
    .filter((s) => s.kind === 'room' && !s.archived && s.name !== undefined)
    .sort((a, b) => (b.general === true) - (a.general === true) || a.name.localeCompare(b.name));
}

/**
 * What counts for the title and the favicon: every unread message where the level is "all", only
 * the mentions where it is "mentions", nothing where it is muted.
 */
export function attentionCount(s) {
  if (s.archived) return 0;
  if (s.notify === 'muted') return 0;
  if (s.notify === 'mentions') return s.mentions ?? 0;
  return s.unread;
}

export function totalUnread() {
  let n = 0;
  for (const s of state.conversations.values()) n += attentionCount(s);
  return n;
}

/** Where a conversation lives in the URL: #/dm/<username> or #/room/<n>. */
export function hrefFor(id) {
  const room = /^room:(\d+)$/.exec(id ?? '');
  if (room) return `#/room/${room[1]}`;
  const other = userById(otherMember(id));
  return other ? `#/dm/${encodeURIComponent(other.username)}` : `#/c/${encodeURIComponent(id)}`;
}

/** "Marketing" for a room, the other person's name for a DM. */
export function conversationName(id) {
  const s = state.conversations.get(id);
  if (s?.kind === 'room' || id?.startsWith('room:')) return s?.name ?? 'Room';
  return userById(otherMember(id))?.display_name ?? id;
}

/** Creator and administrators manage a room (General: administrators only). */
export function canManage(s) {
  if (!s || s.kind !== 'room' || !state.me) return false;
  if (state.me.role === 'admin') return true;
  return !s.general && s.created_by === state.me.id;
}

// ---- mentions ----

/**
 * The lower-case names after each "@" that starts a word, with where each sits in `body`: the
 * server's rule (src/store/chat.rs `mentioned_names`): a name is the run of a–z, 0–9, ".", "_",
 * "-" after the "@", less a trailing dot (it ends the sentence, not the name).
 */
export function mentionedNames(body) {
  const found = [];
  const re = /@([A-Za-z0-9._-]+)/g;
  for (const match of body.matchAll(re)) {
    const before = body[match.index - 1];
    if (before !== undefined && (/[\p{L}\p{N}]/u.test(before) || before === '@')) continue;
    const name = match[1].replace(/\.+$/, '');
    if (name) found.push({ name: name.toLowerCase(), index: match.index, length: name.length + 1 });
  }
  return found;
}

/**
 * Whether a message mentions the signed-in user: the server says so on room messages
 * (`mentions`, `mentions_room`); a message without those fields mentions nobody.
 */
export function mentionsMe(msg) {
  return Boolean(msg.mentions_room) || (msg.mentions ?? []).includes(state.me?.id);
}

export function timeline(id) {
  let t = state.timelines.get(id);
  if (!t) {
    t = { messages: new Map(), hasMore: false, loaded: false, loading: false };
    state.timelines.set(id, t);
  }
  return t;
}

/** Highest seq held for a loaded conversation (0 if none). Timelines are kept contiguous. */
export function newestSeq(t) {
  let max = 0;
  for (const seq of t.messages.keys()) if (seq > max) max = seq;
  return max;
}

export function oldestSeq(t) {
  let min = Infinity;
  for (const seq of t.messages.keys()) if (seq < min) min = seq;
  return min === Infinity ? 0 : min;
}

export function sortedMessages(t) {
  return [...t.messages.values()].sort((a, b) => a.seq - b.seq);
}

/**
 * Applies one message (live frame, ack, or a history page entry). Returns 'gap' when it is newer than
 * newest+1 of a loaded timeline: the caller fetches the gap (?after=) instead of leaving a hole.
 */
export function applyMessage(msg, { live = true } = {}) {
  const s = ensureSummary(msg.conversation);
  const other = otherMember(msg.conversation);
  if (other !== undefined) requestsEndedWith(other);
  const fresh = msg.seq > s.last_seq; // frames arrive in order: anything at or below is a repeat
  if (fresh) {
    s.last_seq = msg.seq;
    s.last_message = msg;
    s.activity = msg.sent_at;
  } else if (s.last_message?.seq === msg.seq) {
    s.last_message = msg; // an edit or delete of the newest message changes the sidebar preview
  }
  if (msg.from === state.me?.id) {
    // Sending marks the conversation read for the sender (PROTOCOL.md, `message`).
    if (msg.seq > s.read_seq) {
      s.read_seq = msg.seq;
      s.unread = 0;
      s.mentions = 0;
    }
  } else {
    if (fresh && live && msg.seq > s.read_seq) {
      s.unread += 1;
      if (s.kind === 'room' && !state.blocked.has(msg.from) && mentionsMe(msg)) {
        s.mentions = (s.mentions ?? 0) + 1;
      }
    }
    // A message from X means X has read up to it.
    if (msg.seq > (s.reads.get(msg.from) ?? 0)) s.reads.set(msg.from, msg.seq);
    state.typing.get(msg.conversation)?.delete(msg.from);
  }
  let result = 'ok';
  // History pages fill the timeline themselves; live messages join it only without a hole.
  const t = state.timelines.get(msg.conversation);
  // A message we hold is replaced: acks and frames carry it "as it is now" (edits, reactions).
  if (live && t?.messages.has(msg.seq)) t.messages.set(msg.seq, msg);
  else if (live && t?.loaded && !t.hasNewer) {
    const newest = newestSeq(t);
    if (msg.seq === newest + 1) t.messages.set(msg.seq, msg);
    else if (msg.seq > newest + 1) result = 'gap';
  }
  changed(msg.conversation);
  return result;
}

/**
 * Replaces what a timeline holds with the history around one message (`older`: the page up to and
 * including it, `newer`: the page after it), for a jump far back in time.
 */
export function applyWindow(id, older, newer) {
  const t = timeline(id);
  t.messages.clear();
  applyHistory(id, older, 'older');
  applyHistory(id, newer, 'newer');
  t.hasNewer = newer.has_more;
}

/** A history page. `direction`: 'latest' (first load), 'older' (before=) or 'newer' (after=). */
export function applyHistory(id, page, direction) {
  const t = timeline(id);
  for (const msg of page.messages) {
    if (!t.messages.has(msg.seq)) t.messages.set(msg.seq, t.newer?.get(msg.seq) ?? msg);
    t.newer?.delete(msg.seq);
    applyMessage(msg, { live: false });
  }
  if (direction !== 'newer') t.hasMore = page.has_more;
  else if (t.hasNewer) t.hasNewer = page.has_more;
  t.loaded = true;
  changed(id);
}

/**
 * An `update` frame, an ack of our own edit/delete/react, or a catch-up from `…/changes`: the
 * message as it is now. Only a message already held changes; one not loaded yet arrives in its
 * current state when its page is fetched. `change_seq` (frames, catch-up) is how far this
 * timeline is known to be current.
 */
export function applyUpdate(msg, changeSeq, { catchUp = false } = {}) {
  const t = state.timelines.get(msg.conversation);
  // A catch-up page may have been computed before a live update that overtook it: keep the newer.
  if (catchUp && (t?.liveChanges?.get(msg.seq) ?? 0) > changeSeq) return;
  if (!catchUp && t && changeSeq !== undefined) (t.liveChanges ??= new Map()).set(msg.seq, changeSeq);
  const s = state.conversations.get(msg.conversation);
  if (s?.last_message?.seq === msg.seq) s.last_message = msg;
  if (t?.messages.has(msg.seq)) {
    t.messages.set(msg.seq, msg);
  } else if (t && !catchUp) {
    // A page in flight may predate this frame: it gives way to it when it lands (applyHistory).
    // Frames come in order, so the entry is the newest state; a reconnect empties it (catch-up).
    t.newer ??= new Map();
    t.newer.set(msg.seq, msg);
    if (t.newer.size > MAX_HELD_UPDATES) t.newer.delete(t.newer.keys().next().value);
  }
  if (t && changeSeq !== undefined && changeSeq > (t.changeSeq ?? 0)) t.changeSeq = changeSeq;
  if (s && changeSeq !== undefined && changeSeq > (s.change_seq ?? 0)) s.change_seq = changeSeq;
  changed(msg.conversation);
}

export function setChangeError(conversation, text) {
  if (text) state.changeErrors.set(conversation, text);
  else if (!state.changeErrors.delete(conversation)) return;
  changed(conversation);
}

export function applyRead({ conversation, user, seq }) {
  const s = ensureSummary(conversation);
  if (seq > (s.reads.get(user) ?? 0)) s.reads.set(user, seq);
  changed(conversation);
}

export function applyUnread({ conversation, unread, read_seq, mentions }) {
  const s = ensureSummary(conversation);
  s.unread = unread;
  s.read_seq = Math.max(s.read_seq, read_seq);
  // Rooms say how many mentions are left; otherwise none once everything is read.
  s.mentions = mentions ?? (unread === 0 ? 0 : Math.min(s.mentions ?? 0, unread));
  changed(conversation);
}

/** Optimistic local read: the server confirms with an `unread` frame. */
export function markedRead(conversation, seq) {
  const s = ensureSummary(conversation);
  if (seq > s.read_seq) s.read_seq = seq;
  s.unread = 0;
  s.mentions = 0;
  changed(conversation);
}

// ---- rooms: membership and changes (member and conversation frames) ----

export function setMembers(roomId, list) {
  state.members.set(roomId, new Map(list.map((m) => [m.user, m])));
  const s = state.conversations.get(roomId);
  if (s) s.member_count = list.length;
  changed(roomId);
}

/** Member ids of a room whose list was loaded, or undefined. */
export function memberIds(roomId) {
  const m = state.members.get(roomId);
  return m ? [...m.keys()] : undefined;
}

export function applyMember({ conversation, action, user, by }) {
  if (user?.id !== undefined && user.id !== state.me?.id) {
    state.users.set(user.id, { ...state.users.get(user.id), ...user });
  }
  const members = state.members.get(conversation);
  const s = state.conversations.get(conversation);
  if (members) {
    if (action === 'added') members.set(user.id, { user: user.id, read_seq: 0, added_by: by, joined_at: Math.floor(Date.now() / 1000) });
    else members.delete(user.id);
    if (s) s.member_count = members.size;
  } else if (s && user.id !== state.me?.id) {
    // Our own arrival comes with a full summary (`conversation` `created`) that already counts us.
    s.member_count = Math.max(0, (s.member_count ?? 0) + (action === 'added' ? 1 : -1));
  }
  if (s && action === 'removed') s.reads.delete(user.id);
  changed(conversation);
}

/** A `conversation` frame. Returns 'removed' when this user left or lost the conversation. */
export function applyConversation({ action, conversation }) {
  const id = conversation?.id;
  if (!id) return undefined;
  if (action === 'created') {
    setSummary(conversation);
    return undefined;
  }
  if (action === 'removed') {
    state.conversations.delete(id);
    state.timelines.delete(id);
    state.members.delete(id);
    state.typing.delete(id);
    changed(id);
    return 'removed';
  }
  const s = state.conversations.get(id);
  if (!s) return undefined;
  const { id: _, ...fields } = conversation;
  Object.assign(s, fields);
  changed(id);
  return undefined;
}

// ---- chat requests and blocks ----

export function setRequests({ incoming = [], outgoing = [], declined = [] }) {
  // Keep the body we wrote for a request still pending: the server's list does not repeat it.
  const bodies = new Map(state.requests.outgoing.map((r) => [r.to, r.body]));
  state.requests = { incoming, outgoing: outgoing.map((r) => ({ ...r, body: r.body ?? bodies.get(r.to) })) };
  // A decline from before this page loaded (or while we were away) still stands.
  for (const { to } of declined) state.requestOutcomes.set(to, 'declined');
  changed();
}

export function requestReceived({ from, body, sent_at }) {
  state.requests.incoming = [...state.requests.incoming.filter((r) => r.from !== from), { from, body, sent_at }];
  changed(dmWith(from));
}

/** Our first message to `to` became a request: it leaves the outbox and waits for an answer. */
export function requestSent({ to, client_id }) {
  const item = outboxItem(client_id);
  if (item) removeOutbox(client_id);
  state.requestOutcomes.delete(to);
  state.requests.outgoing = [...state.requests.outgoing.filter((r) => r.to !== to),
    { to, sent_at: Math.floor(Date.now() / 1000), body: item?.body }];
  changed(dmWith(to));
}

/**
 * A request was answered. `user` is the other person either way: the one who answered ours, or
 * (on our other tabs) the one whose request we answered.
 */
export function requestAnswered({ action, user }) {
  const wasIncoming = state.requests.incoming.some((r) => r.from === user);
  state.requests.incoming = state.requests.incoming.filter((r) => r.from !== user);
  const wasOutgoing = state.requests.outgoing.some((r) => r.to === user);
  state.requests.outgoing = state.requests.outgoing.filter((r) => r.to !== user);
  if (wasOutgoing || !wasIncoming) state.requestOutcomes.set(user, action);
  changed(dmWith(user));
}

/**
 * Our request to `user` ended unanswered (they had blocked us and lifted the block; they never
 * saw it): we may write to them again, and nothing was decided.
 */
export function requestDropped({ user }) {
  state.requests.outgoing = state.requests.outgoing.filter((r) => r.to !== user);
  changed(dmWith(user));
}

/**
 * The DM with `user` has messages: no request between us is pending, and a decline no longer
 * stands (PROTOCOL.md, chat requests).
 */
function requestsEndedWith(user) {
  const { incoming, outgoing } = state.requests;
  if (!incoming.some((r) => r.from === user) && !outgoing.some((r) => r.to === user)
    && state.requestOutcomes.get(user) !== 'declined') return;
  state.requests.incoming = incoming.filter((r) => r.from !== user);
  state.requests.outgoing = outgoing.filter((r) => r.to !== user);
  if (state.requestOutcomes.get(user) === 'declined') state.requestOutcomes.delete(user);
}

export function incomingRequest(userId) {
  return state.requests.incoming.find((r) => r.from === userId);
}

export function outgoingRequest(userId) {
  return state.requests.outgoing.find((r) => r.to === userId);
}

/**
 * Room mention counts from a fresh conversation list (after a block or unblock the server
 * recounts them). A room whose last or read seq differs from what this page knows is left as
 * it is: a frame about it is on its way, or came after the list was made, and taking the list's
 * count would count a mention twice or lose one. Returns whether every room was taken.
 */
export function applyMentionCounts(list) {
  let all = true;
  for (const fetched of list) {
    const s = state.conversations.get(fetched.id);
    if (fetched.kind !== 'room' || !s) continue;
    if (fetched.last_seq !== s.last_seq || fetched.read_seq !== s.read_seq) {
      all = false;
      continue;
    }
    if ((s.mentions ?? 0) !== (fetched.mentions ?? 0)) {
      s.mentions = fetched.mentions ?? 0;
      changed(fetched.id);
    }
  }
  changed();
  return all;
}

export function setBlocked(ids) {
  state.blocked = new Set(ids);
  for (const id of ids) changed(dmWith(id));
  changed();
}

// ---- presence and typing ----

export function setOnline(ids) {
  state.online = new Set(ids);
  changed();
}

export function applyPresence({ user, online, last_seen }) {
  if (online) state.online.add(user);
  else state.online.delete(user);
  const u = state.users.get(user);
  if (u && last_seen !== undefined) state.users.set(user, { ...u, last_seen });
  changed();
}

/** An account created or changed by an administrator (a `user` frame). */
export function applyUser(user) {
  state.users.set(user.id, mergeUser(state.users.get(user.id), user));
  if (state.me?.id === user.id) state.me = mergeUser(state.me, user);
  for (const id of state.revs.keys()) changed(id); // names in panes may have changed
  changed();
}

export function applyTyping({ conversation, user }) {
  if (user === state.me?.id) return;
  let m = state.typing.get(conversation);
  if (!m) state.typing.set(conversation, (m = new Map()));
  m.set(user, Date.now() + TYPING_TTL_MS);
  changed();
}

/** User ids typing in a conversation right now (expired entries are dropped). */
export function typingIn(conversation, now = Date.now()) {
  const m = state.typing.get(conversation);
  if (!m) return [];
  for (const [user, until] of m) if (until <= now) m.delete(user);
  return [...m.keys()];
}

export function setConnection(value) {
  if (state.connection === value) return;
  state.connection = value;
  changed();
}

// ---- outbox: persisted so a reload (or a crash) keeps what the user wrote ----

function outboxKey(userId) {
  return `confab.outbox.${userId}`;
}

function loadOutbox(userId) {
  try {
    const items = JSON.parse(localStorage.getItem(outboxKey(userId)) ?? '[]');
    // A send that was on the wire when the page went away may or may not have arrived: that is
    // "failed" (Retry is safe, the client_id makes it idempotent). Queued ones never left.
    return items.map((i) => (i.status === 'sending' ? { ...i, status: 'failed' } : i));
  } catch {
    return [];
  }
}

function saveOutbox() {
  if (!state.me) return;
  try {
    if (state.outbox.length) localStorage.setItem(outboxKey(state.me.id), JSON.stringify(state.outbox));
    else localStorage.removeItem(outboxKey(state.me.id));
  } catch {
    // Storage full or disabled: the outbox still works for this page's lifetime.
  }
}

export function enqueue(item) {
  state.outbox.push(item);
  saveOutbox();
  changed(item.conversation);
}

export function outboxItem(clientId) {
  return state.outbox.find((i) => i.client_id === clientId);
}

export function setOutboxStatus(clientId, status, error) {
  const item = outboxItem(clientId);
  if (!item) return;
  item.status = status;
  item.error = error;
  saveOutbox();
  changed(item.conversation);
}

export function removeOutbox(clientId) {
  const item = outboxItem(clientId);
  if (!item) return;
  state.outbox = state.outbox.filter((i) => i !== item);
  saveOutbox();
  changed(item.conversation);
}

/** Sends on the wire when the connection dropped have an unknown fate: show them as failed. */
export function failInFlight() {
  for (const item of state.outbox) {
    if (item.status === 'sending') {
      item.status = 'failed';
      item.error = 'Connection lost before the server confirmed.';
      changed(item.conversation);
    }
  }
  saveOutbox();
}

export function applyAck({ client_id, message }) {
  removeOutbox(client_id);
  return applyMessage(message);
}

export function clearLocalData() {
  if (!state.me) return;
  try {
    localStorage.removeItem(outboxKey(state.me.id));
    const prefix = `confab.draft.${state.me.id}.`;
    for (const key of Object.keys(localStorage)) if (key.startsWith(prefix)) localStorage.removeItem(key);
  } catch {
    // Nothing to clear if storage is unavailable.
  }
}

// ---- drafts ----

function draftKey(conversation) {
  return `confab.draft.${state.me?.id}.${conversation}`;
}

export function loadDraft(conversation) {
  try { return localStorage.getItem(draftKey(conversation)) ?? ''; } catch { return ''; }
}

export function saveDraft(conversation, text) {
  try {
    if (text) localStorage.setItem(draftKey(conversation), text);
    else localStorage.removeItem(draftKey(conversation));
  } catch {
    // A lost draft is an inconvenience, not an error worth interrupting the user for.
  }
}
