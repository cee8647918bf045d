// The conversation pane: header, message history (grouped by sender and day), typing and "Seen",
// and the composer. The message list re-renders only when the conversation's revision changes.
import { h } from '../dom.js';
import { avatar, dayKey, dayLabel, fullTime, linkify, relativeTime, timeLabel } from '../format.js';
import * as store from '../store.js';
import * as chat from '../chat.js';

const MAX_BODY_CHARS = 4000;
/** Messages further apart than this start a new group even from the same sender. */
const GROUP_GAP_MS = 10 * 60 * 1000;
/** Start loading the previous page this close to the top, before the user hits it. */
const LOAD_OLDER_PX = 300;
const PINNED_PX = 48;

export function createConversationView(id, { onBack }) {
  const { state } = store;
  const otherId = store.otherMember(id);
  const other = () => store.userById(otherId);
  const otherName = () => other()?.display_name ?? 'this conversation';

  const title = h('h1', { class: 'conv-title', 'data-testid': 'conversation-title' });
  const status = h('p', { class: 'conv-status' });
  const headerAvatar = h('span', { class: 'avatar-wrap' });
  const header = h('header', { class: 'pane-header' },
    h('button', { type: 'button', class: 'back', onclick: onBack, 'aria-label': 'Back to conversations' }, '‹'),
    headerAvatar, h('div', { class: 'conv-heading' }, title, status));

  const edge = h('div', { class: 'history-edge', 'data-testid': 'history-edge' });
  const list = h('div', { class: 'message-list', 'data-testid': 'message-list' });
  const scroller = h('div', { class: 'messages', tabindex: '0', role: 'log', 'aria-live': 'off' }, edge, list);
  const pill = h('button', { type: 'button', class: 'new-pill', hidden: true, 'data-testid': 'new-messages-pill' }, 'New messages ↓');
  const typingLine = h('div', { class: 'typing', 'data-testid': 'typing-indicator', 'aria-live': 'polite' });

  const input = h('textarea', {
    id: 'composer-input', rows: 1, class: 'composer-input', 'data-testid': 'composer',
    placeholder: 'Write a message…', 'aria-describedby': 'composer-hint',
  });
  const composerError = h('p', { class: 'composer-error', role: 'alert' });
  const inputLabel = h('label', { for: 'composer-input', class: 'visually-hidden' });
  const composer = h('form', { class: 'composer', 'data-testid': 'composer-form' },
    inputLabel, input,
    h('button', { type: 'submit', class: 'primary send' }, 'Send'),
    h('span', { id: 'composer-hint', class: 'visually-hidden' }, 'Enter sends, Shift+Enter starts a new line.'));

  const el = h('section', { class: 'conv-pane', 'data-conversation-id': id },
    header, h('div', { class: 'messages-wrap' }, scroller, pill), typingLine, composerError, composer);

  // ---- composer ----
  input.value = store.loadDraft(id);
  function autosize() {
    input.style.height = 'auto';
    // scrollHeight excludes the border, which border-box sizing counts.
    const border = input.offsetHeight - input.clientHeight;
    input.style.height = `${Math.min(input.scrollHeight + border, 200)}px`;
  }
  input.addEventListener('input', () => {
    store.saveDraft(id, input.value);
    composerError.textContent = '';
    autosize();
    if (input.value.trim()) chat.typing(id);
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  composer.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = input.value.trim();
    if (!body) return;
    if ([...body].length > MAX_BODY_CHARS) {
      composerError.textContent = `Messages can be at most ${MAX_BODY_CHARS} characters (this one has ${[...body].length}).`;
      return;
    }
    chat.send(id, body);
    input.value = '';
    store.saveDraft(id, '');
    autosize();
    stickToBottom = true;
    input.focus();
  });

  // ---- scrolling ----
  let stickToBottom = true; // set by the user's scrolling; decides where new messages leave the view
  const distanceFromBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight;
  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
    stickToBottom = true;
    pill.hidden = true;
  }
  scroller.addEventListener('scroll', () => {
    stickToBottom = distanceFromBottom() < PINNED_PX;
    if (stickToBottom) pill.hidden = true;
    if (scroller.scrollTop < LOAD_OLDER_PX) chat.loadOlder(id);
  });
  pill.addEventListener('click', () => {
    scrollToBottom();
    input.focus();
  });

  // ---- rendering ----
  let renderedRev = -1;
  let renderedOldest = 0;
  let renderedNewest = 0;

  function renderHeader() {
    const user = other();
    title.textContent = otherName();
    inputLabel.textContent = `Message ${otherName()}`;
    headerAvatar.replaceChildren(...(user ? [avatar(user),
      h('span', { class: `presence-dot ${state.online.has(user.id) ? 'online' : 'offline'}` })] : []));
    if (!user) status.textContent = '';
    else if (user.disabled) status.textContent = 'Account disabled';
    else if (state.online.has(user.id)) status.textContent = 'Online';
    else status.textContent = user.last_seen ? `Last seen ${relativeTime(user.last_seen)}` : 'Not signed in yet';
  }

  function renderTyping() {
    const names = store.typingIn(id).map((u) => store.userById(u)?.display_name ?? 'Someone');
    const text = names.length === 0 ? '' : names.length === 1 ? `${names[0]} is typing…` : `${names.join(', ')} are typing…`;
    if (typingLine.textContent !== text) typingLine.textContent = text;
    typingLine.classList.toggle('active', Boolean(text));
  }

  /** The last own message the other member has read up to, for "Seen". */
  function seenSeq(messages) {
    if (!otherId) return 0;
    const read = state.conversations.get(id)?.reads.get(otherId) ?? 0;
    let seen = 0;
    for (const m of messages) if (m.from === state.me.id && m.seq <= read) seen = m.seq;
    return seen;
  }

  function messageEl(m, pending) {
    const node = h('div', {
      class: `message${pending ? ` pending ${pending.status}` : ''}`,
      'data-testid': 'message',
      dataset: pending ? { clientId: pending.client_id, status: pending.status } : { seq: m.seq },
    },
    h('div', { class: 'message-body' }, linkify(m.body)),
    h('time', { class: 'message-time', datetime: new Date(m.sent_at).toISOString(), title: fullTime(m.sent_at) }, timeLabel(m.sent_at)));
    if (pending) node.append(pendingStatus(pending));
    return node;
  }

  function pendingStatus(item) {
    if (item.status === 'failed') {
      return h('div', { class: 'message-status failed', 'data-testid': 'message-failed' },
        h('span', {}, item.error ? `Not sent. ${item.error}` : 'Not sent.'),
        h('button', { type: 'button', class: 'link', onclick: () => chat.retry(item.client_id), 'data-testid': 'retry' }, 'Retry'),
        h('button', { type: 'button', class: 'link', onclick: () => chat.discard(item.client_id) }, 'Discard'));
    }
    const text = item.status === 'sending' ? 'Sending…' : 'Waiting for connection…';
    return h('div', { class: 'message-status', 'data-testid': 'message-pending' }, text);
  }

  function groupHeader(user, at) {
    return h('div', { class: 'group-header' },
      h('span', { class: 'group-name' }, user?.display_name ?? 'Unknown'),
      h('time', { class: 'group-time', datetime: new Date(at).toISOString(), title: fullTime(at) }, timeLabel(at)));
  }

  function buildList(t) {
    const messages = store.sortedMessages(t);
    const pending = state.outbox.filter((i) => i.conversation === id);
    const seen = seenSeq(messages);
    const entries = [
      ...messages.map((m) => ({ m, pending: null })),
      ...pending.map((p) => ({ m: { from: state.me.id, body: p.body, sent_at: p.at }, pending: p })),
    ];
    const nodes = [];
    let day = null;
    let group = null;
    let prev = null;
    for (const { m, pending: p } of entries) {
      const key = dayKey(m.sent_at);
      if (key !== day) {
        day = key;
        group = null;
        nodes.push(h('div', { class: 'day-separator', role: 'separator' }, h('span', {}, dayLabel(m.sent_at))));
      }
      if (!group || prev.from !== m.from || m.sent_at - prev.sent_at > GROUP_GAP_MS) {
        const user = store.userById(m.from);
        const own = m.from === state.me.id;
        group = h('div', { class: `group${own ? ' own' : ''}`, dataset: { from: m.from } });
        const body = h('div', { class: 'group-body' }, groupHeader(user, m.sent_at));
        group.append(avatar(user ?? { id: m.from, display_name: '?' }), body);
        group.body = body;
        nodes.push(group);
      }
      group.body.append(messageEl(m, p));
      if (!p && m.seq === seen) group.body.append(h('div', { class: 'seen', 'data-testid': 'seen' }, 'Seen'));
      prev = m;
    }
    return { nodes, messages };
  }

  function renderEdge(t, count) {
    let text = '';
    if (t.error) text = `Could not load messages: ${t.error}`;
    else if (t.loading) text = 'Loading messages…';
    else if (t.loaded && !t.hasMore) {
      text = count ? `This is the beginning of your conversation with ${otherName()}.` : `No messages yet. Say hello to ${otherName()}!`;
    }
    edge.textContent = text;
    edge.classList.toggle('error', Boolean(t.error));
  }

  function renderList() {
    const t = store.timeline(id);
    const pinned = stickToBottom;
    const prevHeight = scroller.scrollHeight;
    const prevTop = scroller.scrollTop;
    const { nodes, messages } = buildList(t);
    list.replaceChildren(...nodes);
    renderEdge(t, messages.length);

    const oldest = messages[0]?.seq ?? 0;
    const newest = messages.at(-1)?.seq ?? 0;
    if (pinned) {
      scrollToBottom();
    } else if (renderedOldest && oldest < renderedOldest) {
      // An older page went on top: keep what the user was looking at where it was.
      scroller.scrollTop = prevTop + (scroller.scrollHeight - prevHeight);
    }
    if (!pinned && renderedNewest && newest > renderedNewest) pill.hidden = false;
    renderedOldest = oldest;
    renderedNewest = newest;
    // Not enough history to scroll? Fetch more so scrolling up is possible at all.
    if (t.loaded && t.hasMore && !t.loading && scroller.scrollHeight <= scroller.clientHeight + LOAD_OLDER_PX) {
      chat.loadOlder(id);
    }
  }

  function render() {
    if (!state.me) return;
    renderHeader();
    renderTyping();
    const rev = store.rev(id);
    if (rev !== renderedRev) {
      renderedRev = rev;
      renderList();
    }
  }

  const unsubscribe = store.subscribe(render);
  render();

  return {
    el,
    /** Called once the pane is in the document: only then do heights (and scrolling) exist. */
    mounted() {
      autosize();
      scrollToBottom();
      renderList();
    },
    focus() {
      input.focus();
    },
    destroy() {
      unsubscribe();
      store.saveDraft(id, input.value);
    },
  };
}
