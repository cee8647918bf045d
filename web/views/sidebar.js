// The sidebar: who is here (people, online first) and the conversations, latest activity first.
import { h, replaceKeepingFocus } from '../dom.js';
import { avatar, relativeTime, timeLabel, dayKey } from '../format.js';
import * as store from '../store.js';
import * as attention from '../attention.js';

export function createSidebar({ onSignOut }) {
  const { state } = store;
  const filter = h('input', {
    type: 'search', id: 'people-filter', class: 'filter-input', placeholder: 'Find a person  (Ctrl+K)',
    autocomplete: 'off', spellcheck: 'false', 'data-testid': 'people-filter',
  });
  const conversations = h('ul', { class: 'entries', 'data-testid': 'conversation-list' });
  const people = h('ul', { class: 'entries', 'data-testid': 'people-list' });
  const conversationsSection = h('section', { class: 'sidebar-section', 'aria-labelledby': 'conversations-heading' },
    h('h2', { id: 'conversations-heading' }, 'Conversations'), conversations);
  const notifyButton = h('button', { type: 'button', class: 'icon-button', 'data-testid': 'notifications-toggle' });
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
      const first = el.querySelector('.entry');
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

  const el = h('aside', { class: 'sidebar', 'aria-label': 'People and conversations' },
    h('header', { class: 'sidebar-header' }, meBox,
      h('button', { type: 'button', class: 'icon-button', onclick: onSignOut, 'data-testid': 'sign-out' }, 'Sign out')),
    h('div', { class: 'filter' }, h('label', { for: 'people-filter', class: 'visually-hidden' }, 'Find a person or conversation'), filter),
    h('div', { class: 'sidebar-scroll' }, conversationsSection,
      h('section', { class: 'sidebar-section', 'aria-labelledby': 'people-heading' }, h('h2', { id: 'people-heading' }, 'People'), people)),
    h('footer', { class: 'sidebar-footer' }, notifyButton, adminLink));

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

  function unreadBadge(count) {
    if (!count) return null;
    return h('span', { class: 'badge', 'data-testid': 'unread-badge' },
      count > 99 ? '99+' : String(count), h('span', { class: 'visually-hidden' }, count === 1 ? ' unread message' : ' unread messages'));
  }

  function personEntry(user) {
    const online = state.online.has(user.id);
    const id = store.dmWith(user.id);
    const unread = state.conversations.get(id)?.unread ?? 0;
    return h('li', {},
      h('a', {
        href: `#/dm/${encodeURIComponent(user.username)}`, class: 'entry person',
        'aria-current': state.openId === id ? 'page' : null,
        dataset: { userId: user.id, key: `p${user.id}`, testid: 'person' },
      },
      h('span', { class: 'avatar-wrap' }, avatar(user),
        h('span', { class: `presence-dot ${online ? 'online' : 'offline'}`, 'data-testid': 'presence-dot' })),
      h('span', { class: 'entry-text' },
        h('span', { class: 'entry-name' }, user.display_name),
        h('span', { class: 'entry-sub', 'data-testid': 'presence-text' },
          online ? 'Online' : user.last_seen ? `Last seen ${relativeTime(user.last_seen)}` : 'Not signed in yet')),
      unreadBadge(unread)));
  }

  function conversationEntry(s) {
    const otherId = store.otherMember(s.id);
    const other = otherId ? store.userById(otherId) : undefined;
    const name = other?.display_name ?? s.id;
    const last = s.last_message;
    const preview = last ? `${last.from === state.me.id ? 'You: ' : ''}${last.body.replace(/\s+/g, ' ')}` : '';
    const when = last ? (dayKey(last.sent_at) === dayKey(Date.now()) ? timeLabel(last.sent_at)
      : new Date(last.sent_at).toLocaleDateString(undefined, { day: 'numeric', month: 'short' })) : '';
    const href = other ? `#/dm/${encodeURIComponent(other.username)}` : `#/c/${encodeURIComponent(s.id)}`;
    return h('li', {},
      h('a', {
        href, class: `entry conversation${s.unread ? ' has-unread' : ''}`,
        'aria-current': state.openId === s.id ? 'page' : null,
        dataset: { conversationId: s.id, key: `c${s.id}`, testid: 'conversation' },
      },
      h('span', { class: 'avatar-wrap' }, avatar(other ?? { id: 0, display_name: '#' })),
      h('span', { class: 'entry-text' },
        h('span', { class: 'entry-top' }, h('span', { class: 'entry-name' }, name), h('span', { class: 'entry-time' }, when)),
        h('span', { class: 'entry-sub' }, preview)),
      unreadBadge(s.unread)));
  }

  function render() {
    const me = state.me;
    if (!me) return;
    meBox.replaceChildren(avatar(me, 'sm'), h('span', { class: 'me-name' }, me.display_name));
    adminLink.hidden = me.role !== 'admin';
    const query = filter.value.trim().toLowerCase();

    const list = store.conversationList().filter((s) => {
      const other = store.userById(store.otherMember(s.id));
      return !query || (other ? matches(other, query) : s.id.includes(query));
    });
    replaceKeepingFocus(conversations, list.length ? list.map(conversationEntry)
      : [h('li', { class: 'empty-note' }, query ? 'No matching conversations.' : 'No conversations yet. Pick a person below.')]);
    conversationsSection.hidden = Boolean(query) && list.length === 0;

    const everyone = [...state.users.values()]
      .filter((u) => !u.disabled && u.id !== me.id && matches(u, query))
      .sort((a, b) => (state.online.has(b.id) - state.online.has(a.id)) || a.display_name.localeCompare(b.display_name));
    replaceKeepingFocus(people, everyone.length ? everyone.map(personEntry)
      : [h('li', { class: 'empty-note' }, query ? 'Nobody matches.' : 'Nobody else here yet.')]);
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
    destroy: unsubscribe,
  };
}
