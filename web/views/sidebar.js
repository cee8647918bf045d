// The sidebar: chat requests, rooms, direct messages (latest activity first) and people (online
// first), each section collapsible. One filter finds rooms (name, topic), conversations and people.
import { h, replaceKeepingFocus } from '../dom.js';
import { avatar, relativeTime, summaryText, timeLabel, dayKey } from '../format.js';
import * as store from '../store.js';
import * as chat from '../chat.js';
import * as attention from '../attention.js';
import { createRoomDialog } from './rooms.js';
import { searchHref } from './search.js';

const COLLAPSED_KEY = 'confab.sidebar.collapsed';

function loadCollapsed() {
  try {
    return new Set(JSON.parse(localStorage.getItem(COLLAPSED_KEY) ?? '[]'));
  } catch {
    return new Set();
  }
}


export function createSidebar({ onSignOut }) {
  const { state } = store;
  const collapsed = loadCollapsed();
  const filter = h('input', {
    type: 'search', id: 'people-filter', class: 'filter-input', placeholder: 'Find a room or person  (Ctrl+K)',
    autocomplete: 'off', spellcheck: 'false', 'data-testid': 'people-filter',
  });
  const search = h('input', {
    type: 'search', id: 'message-search', class: 'filter-input', placeholder: 'Search messages  (/)',
    autocomplete: 'off', spellcheck: 'false', 'data-testid': 'search-input',
  });
  const searchForm = h('form', { class: 'filter', role: 'search' },
    h('label', { for: 'message-search', class: 'visually-hidden' }, 'Search messages'), search);
  searchForm.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = searchHref(search.value.trim());
  });
  search.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') search.value = '';
  });
  const requests = h('ul', { class: 'entries', 'data-testid': 'request-list' });
  const rooms = h('ul', { class: 'entries', 'data-testid': 'room-list' });
  const conversations = h('ul', { class: 'entries', 'data-testid': 'conversation-list' });
  const people = h('ul', { class: 'entries', 'data-testid': 'people-list' });

  /** A section whose heading is a button that shows or hides its list (remembered per browser). */
  function section(key, title, list, actions = []) {
    const toggle = h('button', {
      type: 'button', class: 'section-toggle', 'aria-controls': `section-${key}`, 'data-testid': `section-${key}`,
    }, h('span', { class: 'section-chevron', 'aria-hidden': 'true' }), title);
    list.id = `section-${key}`;
    const el = h('section', { class: 'sidebar-section', dataset: { section: key } },
      h('div', { class: 'section-header' }, h('h2', {}, toggle), ...actions), list);
    toggle.addEventListener('click', () => {
      if (collapsed.has(key)) collapsed.delete(key);
      else collapsed.add(key);
      try {
        localStorage.setItem(COLLAPSED_KEY, JSON.stringify([...collapsed]));
      } catch {
        // Not remembered, still toggled.
      }
      render();
    });
    return { el, toggle, list, key };
  }

  const newRoom = h('button', {
    type: 'button', class: 'section-action', 'data-testid': 'new-room', 'aria-label': 'Create a room', title: 'Create a room',
    onclick: async () => {
      const room = await createRoomDialog();
      if (room) location.hash = store.hrefFor(room.id);
    },
  }, '+');
  const browse = h('a', { href: '#/rooms', class: 'section-action', 'data-testid': 'browse-rooms', title: 'Browse rooms' }, 'Browse');
  const sections = [
    section('requests', 'Chat requests', requests),
    section('rooms', 'Rooms', rooms, [browse, newRoom]),
    section('dms', 'Direct messages', conversations),
    section('people', 'People', people),
  ];
  const [requestsSection, roomsSection, dmsSection, peopleSection] = sections;

  const notifyButton = h('button', { type: 'button', class: 'icon-button', 'data-testid': 'notifications-toggle' });
  const mentionsCount = h('span', { class: 'link-count', 'data-testid': 'mentions-count' });
  const mentionsLink = h('a', { href: '#/mentions', class: 'icon-button', 'data-testid': 'mentions-link' }, 'Mentions', mentionsCount);
  const settingsLink = h('a', { href: '#/settings', class: 'icon-button', 'data-testid': 'settings-link' }, 'Settings');
  const adminLink = h('a', { href: '#/admin', class: 'icon-button', 'data-testid': 'admin-link' }, 'Administration');
  const meBox = h('div', { class: 'me' });

  filter.addEventListener('input', render);
  filter.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      filter.value = '';
      render();
    } else if (event.key === 'Enter') {
      // Quick switcher: Enter opens the first match.
      event.preventDefault();
      const first = el.querySelector('a.entry');
      if (first) location.hash = first.getAttribute('href');
    } else if (event.key === 'ArrowDown') {
      event.preventDefault();
      el.querySelector('.entry')?.focus();
    }
  });
  notifyButton.addEventListener('click', async () => {
    const result = await attention.toggleNotifications();
    if (result === 'denied') notifyButton.title = 'Notifications are blocked in the browser settings for this site.';
    renderNotifyButton();
  });

  const el = h('aside', { class: 'sidebar', 'aria-label': 'Rooms, people and conversations' },
    h('header', { class: 'sidebar-header' }, meBox,
      h('button', { type: 'button', class: 'icon-button', onclick: onSignOut, 'data-testid': 'sign-out' }, 'Sign out')),
    searchForm,
    h('div', { class: 'filter' }, h('label', { for: 'people-filter', class: 'visually-hidden' }, 'Find a room, person or conversation'), filter),
    h('div', { class: 'sidebar-scroll' }, ...sections.map((s) => s.el)),
    h('footer', { class: 'sidebar-footer' }, mentionsLink, settingsLink, notifyButton, adminLink));

  function renderNotifyButton() {
    const supported = attention.notificationsSupported();
    const on = attention.notificationsEnabled();
    notifyButton.textContent = on ? 'Desktop alerts: on' : 'Desktop alerts: off';
    notifyButton.setAttribute('aria-pressed', String(on));
    notifyButton.setAttribute('aria-label', 'Desktop notifications');
    notifyButton.disabled = !supported;
    if (!supported) notifyButton.title = 'Desktop notifications need the server to be reached over HTTPS.';
  }

  function matches(user, query) {
    return !query || user.display_name.toLowerCase().includes(query) || user.username.includes(query);
  }

  function roomMatches(s, query) {
    return !query || s.name.toLowerCase().includes(query) || (s.topic ?? '').toLowerCase().includes(query);
  }

  function unreadBadge(count, muted) {
    if (!count) return null;
    return h('span', { class: muted ? 'badge badge-quiet' : 'badge', 'data-testid': 'unread-badge' },
      count > 99 ? '99+' : String(count), h('span', { class: 'visually-hidden' }, count === 1 ? ' unread message' : ' unread messages'));
  }

  function mentionBadge(count) {
    if (!count) return null;
    return h('span', { class: 'badge badge-mention', 'data-testid': 'mention-badge' },
      `@${count > 99 ? '99+' : count}`, h('span', { class: 'visually-hidden' }, count === 1 ? ' mention' : ' mentions'));
  }

  // Entries are rebuilt only when what they show changed: 500 people and 200 rooms stay cheap to
  // render on every frame (typing, presence).
  let cache = new Map();
  let nextCache = new Map();
  function cached(key, signature, build) {
    const hit = cache.get(key);
    const node = hit && hit.signature === signature ? hit.node : build();
    nextCache.set(key, { signature, node });
    return node;
  }

  function whenLabel(last) {
    if (!last) return '';
    return dayKey(last.sent_at) === dayKey(Date.now()) ? timeLabel(last.sent_at)
      : new Date(last.sent_at).toLocaleDateString(undefined, { day: 'numeric', month: 'short' });
  }

  function personEntry(user) {
    const online = state.online.has(user.id);
    const id = store.dmWith(user.id);
    const dm = state.conversations.get(id);
    const unread = dm?.unread ?? 0;
    const muted = dm?.notify === 'muted';
    const sub = online ? 'Online' : user.last_seen ? `Last seen ${relativeTime(user.last_seen)}` : 'Not signed in yet';
    const current = state.openId === id;
    return cached(`p${user.id}`, [user.display_name, user.username, user.avatar, sub, unread, current, online, muted].join('\u0000'), () => h('li', {},
      h('a', {
        href: `#/dm/${encodeURIComponent(user.username)}`, class: 'entry person',
        'aria-current': current ? 'page' : null,
        dataset: { userId: user.id, key: `p${user.id}`, testid: 'person' },
      },
      h('span', { class: 'avatar-wrap' }, avatar(user),
        h('span', { class: `presence-dot ${online ? 'online' : 'offline'}`, 'data-testid': 'presence-dot' })),
      h('span', { class: 'entry-text' },
        h('span', { class: 'entry-name' }, user.display_name),
        h('span', { class: 'entry-sub', 'data-testid': 'presence-text' }, sub)),
      unreadBadge(unread, muted))));
  }

  function dmEntry(s) {
    const other = store.userById(store.otherMember(s.id));
    const name = other?.display_name ?? s.id;
    const last = s.last_message;
    const preview = last ? `${last.from === state.me.id ? 'You: ' : ''}${summaryText(last)}` : '';
    const when = whenLabel(last);
    const current = state.openId === s.id;
    const muted = s.notify === 'muted';
    return cached(`c${s.id}`, [name, other?.id, other?.avatar, preview, when, s.unread, current, muted].join('\u0000'), () => h('li', {},
      h('a', {
        href: store.hrefFor(s.id), class: `entry conversation${s.unread ? ' has-unread' : ''}${muted ? ' is-muted' : ''}`,
        'aria-current': current ? 'page' : null,
        dataset: { conversationId: s.id, key: `c${s.id}`, testid: 'conversation' },
      },
      h('span', { class: 'avatar-wrap' }, avatar(other ?? { id: 0, display_name: '#' })),
      h('span', { class: 'entry-text' },
        h('span', { class: 'entry-top' }, h('span', { class: 'entry-name' }, name), h('span', { class: 'entry-time' }, when)),
        h('span', { class: 'entry-sub' }, preview)),
      unreadBadge(s.unread, muted))));
  }

  function roomEntry(s) {
    const last = s.last_message;
    const sender = last ? (last.from === state.me.id ? 'You' : store.userById(last.from)?.display_name ?? 'Someone') : '';
    const preview = last ? `${sender}: ${summaryText(last)}` : (s.topic || 'No messages yet');
    const when = whenLabel(last);
    const current = state.openId === s.id;
    const muted = s.notify === 'muted';
    const mentionCount = s.mentions ?? 0;
    const sig = [s.name, s.visibility, preview, when, s.unread, mentionCount, current, muted].join('\u0000');
    return cached(`c${s.id}`, sig, () => h('li', {},
      h('a', {
        href: store.hrefFor(s.id),
        class: `entry conversation room${s.unread ? ' has-unread' : ''}${muted ? ' is-muted' : ''}`,
        'aria-current': current ? 'page' : null,
        dataset: { conversationId: s.id, key: `c${s.id}`, testid: 'room' },
      },
      roomIcon(s),
      h('span', { class: 'entry-text' },
        h('span', { class: 'entry-top' }, h('span', { class: 'entry-name' }, s.name), h('span', { class: 'entry-time' }, when)),
        h('span', { class: 'entry-sub' }, preview)),
      mentionBadge(mentionCount),
      unreadBadge(s.unread, muted || s.notify === 'mentions'))));
  }

  function requestEntry(r) {
    const user = store.userById(r.from);
    const name = user?.display_name ?? 'Someone';
    const error = h('span', { class: 'form-error', role: 'alert' });
    const act = (action) => async () => {
      try {
        await chat.answerRequest(r.from, action);
        if (action === 'accept' && user) location.hash = `#/dm/${encodeURIComponent(user.username)}`;
      } catch (e) {
        error.textContent = e.message;
      }
    };
    return cached(`r${r.from}`, [name, user?.avatar, r.body, r.sent_at].join('\u0000'), () => h('li', { class: 'request', dataset: { testid: 'request', from: r.from } },
      h('div', { class: 'request-top' }, avatar(user ?? { id: r.from, display_name: name }, 'sm'),
        h('span', { class: 'entry-name' }, name), h('span', { class: 'muted' }, 'wants to chat')),
      h('p', { class: 'request-body' }, r.body ?? ''),
      h('div', { class: 'request-actions' },
        h('button', { type: 'button', class: 'primary', onclick: act('accept'), 'aria-label': `Accept the chat request from ${name}` }, 'Accept'),
        h('button', { type: 'button', onclick: act('decline'), 'aria-label': `Decline the chat request from ${name}` }, 'Decline')),
      error));
  }

  function fill(sectionParts, entries, emptyText) {
    const { el: sectionEl, toggle, list, key } = sectionParts;
    const query = filter.value.trim();
    // While filtering every section shows its matches, collapsed or not.
    const open = Boolean(query) || !collapsed.has(key);
    toggle.setAttribute('aria-expanded', String(open));
    list.hidden = !open;
    const nodes = entries.length ? entries : emptyText ? [cached(`e${key}${emptyText}`, '', () => h('li', { class: 'empty-note' }, emptyText))] : [];
    const same = nodes.length === list.children.length && nodes.every((n, i) => list.children[i] === n);
    if (!same) replaceKeepingFocus(list, nodes);
    sectionEl.hidden = Boolean(query) && entries.length === 0;
  }

  function render() {
    const me = state.me;
    if (!me) return;
    nextCache = new Map();
    meBox.replaceChildren(avatar(me, 'sm'), h('span', { class: 'me-name' }, me.display_name));
    adminLink.hidden = me.role !== 'admin';
    for (const link of [mentionsLink, settingsLink, adminLink]) {
      if (location.hash === link.getAttribute('href')) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    const query = filter.value.trim().toLowerCase();
    let unseenMentions = 0;
    for (const s of state.conversations.values()) if (s.kind === 'room' && !s.archived) unseenMentions += s.mentions ?? 0;
    const countText = unseenMentions ? ` ${unseenMentions > 99 ? '99+' : unseenMentions}` : '';
    if (mentionsCount.textContent !== countText) mentionsCount.textContent = countText;
    mentionsLink.setAttribute('aria-label', unseenMentions ? `Mentions: ${unseenMentions} unread` : 'Mentions');

    const incoming = state.requests.incoming.filter((r) => !state.blocked.has(r.from));
    fill(requestsSection, incoming.map(requestEntry));
    requestsSection.el.hidden = incoming.length === 0;

    const roomItems = store.roomList().filter((s) => roomMatches(s, query));
    fill(roomsSection, roomItems.map(roomEntry), query ? 'No matching rooms.' : 'No rooms yet.');

    const list = store.conversationList().filter((s) => {
      const other = store.userById(store.otherMember(s.id));
      return !query || (other ? matches(other, query) : s.id.includes(query));
    });
    fill(dmsSection, list.map(dmEntry), query ? 'No matching conversations.' : 'No conversations yet. Pick a person below.');

    const everyone = [...state.users.values()]
      .filter((u) => !u.disabled && u.id !== me.id && matches(u, query))
      .sort((a, b) => (state.online.has(b.id) - state.online.has(a.id)) || a.display_name.localeCompare(b.display_name));
    fill(peopleSection, everyone.map(personEntry), query ? 'Nobody matches.' : 'Nobody else here yet.');
    cache = nextCache;
  }

  renderNotifyButton();
  const unsubscribe = store.subscribe(render);
  render();

  return {
    el,
    focusFilter() {
      filter.focus();
      filter.select();
    },
    focusSearch() {
      search.focus();
      search.select();
    },
    /** The query the search page shows, so the box says what was searched. */
    setSearch(query) {
      if (document.activeElement !== search) search.value = query;
    },
    destroy: unsubscribe,
  };
}

/** The room's mark in lists: "#" for open rooms, a lock (drawn in CSS, no emoji font needed) for private ones. */
export function roomIcon(s) {
  const priv = s.visibility === 'private';
  return h('span', { class: `room-icon${priv ? ' private' : ''}`, 'aria-hidden': 'true' }, priv ? h('span', { class: 'lock' }) : '#');
}
