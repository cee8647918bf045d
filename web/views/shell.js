// The signed-in layout: sidebar plus one pane (a conversation, the admin page, or an empty state).
// Below 720 px only one of the two shows; `data-view` on the shell says which.
import { h } from '../dom.js';
import * as store from '../store.js';
import { createSidebar } from './sidebar.js';
import { createConversationView } from './conversation.js';
import { createAdminView } from './admin.js';
import { createRoomBrowser } from './rooms.js';
import { createMentionsView, createSettingsView } from './pages.js';
import { createSearchView } from './search.js';

export function createShell({ onSignOut, onUsersChanged }) {
  const sidebar = createSidebar({ onSignOut });
  const pane = h('main', { class: 'pane', id: 'pane' });
  const el = h('div', { class: 'shell', dataset: { view: 'list' } }, sidebar.el, pane);
  let current = null; // {key, view}
  const back = () => { location.hash = '#/'; };

  function show(key, make, view) {
    el.dataset.view = view;
    if (current?.key === key) return current.view;
    current?.view.destroy();
    const next = make();
    pane.replaceChildren(next.el);
    next.mounted();
    current = { key, view: next };
    return next;
  }

  function placeholder(title, text, { testid, action } = {}) {
    return {
      el: h('div', { class: 'placeholder', 'data-testid': testid }, h('img', { src: '/favicon.svg', alt: '', width: 64, height: 64 }),
        h('h1', {}, title), h('p', { class: 'muted' }, text), action),
      mounted() {}, focus() {}, destroy() {},
    };
  }

  return {
    el,
    showEmpty() {
      show('empty', () => placeholder(`Hello, ${store.state.me?.display_name ?? ''}`,
        'Pick a room or a person on the left. Ctrl+K finds one quickly.'), 'list');
    },
    showNotFound(name) {
      show(`missing:${name}`, () => placeholder('Nobody here by that name', `There is no one called “${name}” on this server.`,
        { testid: 'not-found' }), 'pane');
    },
    /** A link to a room the user is not in (private, or open and not joined yet) or that does not exist. */
    showRoomNotFound(id) {
      show(`missing:${id}`, () => placeholder('No room here',
        'You are not in this room, or it does not exist. Open rooms can be joined from the room browser.',
        { testid: 'not-found', action: h('a', { href: '#/rooms', class: 'button' }, 'Browse rooms') }), 'pane');
    },
    showConversation(id) {
      return show(`conv:${id}`, () => createConversationView(id, { onBack: back }), 'pane');
    },
    showRooms() {
      return show('rooms', () => createRoomBrowser({ onBack: back }), 'pane');
    },
    showMentions() {
      show('mentions', () => createMentionsView({ onBack: back }), 'pane');
    },
    showSearch(query) {
      const view = show('search', () => createSearchView({ onBack: back }), 'pane');
      sidebar.setSearch(query);
      view.setQuery(query);
      return view;
    },
    showSettings() {
      show('settings', () => createSettingsView({ onBack: back }), 'pane');
    },
    showAdmin() {
      show('admin', () => createAdminView({ me: store.state.me, onBack: back, onUsersChanged }), 'pane');
    },
    /** The key of what the pane shows (e.g. `conv:room:3`, `missing:room:9`). */
    showing() {
      return current?.key ?? null;
    },
    focusFilter() {
      if (el.dataset.view === 'pane' && matchMedia('(max-width: 720px)').matches) back();
      sidebar.focusFilter();
    },
    /** "/": the search box of the search page when it is open (or the sidebar is hidden), else the sidebar's. */
    focusSearch() {
      if (current?.key === 'search') current.view.focus();
      else if (el.dataset.view === 'pane' && matchMedia('(max-width: 720px)').matches) location.hash = '#/search';
      else sidebar.focusSearch();
    },
    destroy() {
      current?.view.destroy();
      sidebar.destroy();
    },
  };
}
