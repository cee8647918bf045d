// Entry point: decides which screen shows (setup, sign in, password change, chat), routes the URL
// hash (#/dm/<username>, #/room/<n>, either with /<seq> to show one message, #/rooms, #/mentions,
// #/search/<query>, #/settings, #/admin) and keeps the connection banner, title and favicon in step.
//
// Module map: api.js (HTTP), socket.js (the WebSocket and its backoff), store.js (all client state,
// applied from frames and HTTP results), chat.js (the live session: frames in, intents out),
// attention.js (title, favicon, notifications), views/* (DOM built from the store: shell, sidebar,
// conversation with the member panel, attachments (the composer's uploads), files (files in
// messages, the picture viewer), rooms (dialogs, browser), pages (mentions, settings), search, admin,
// auth, dialog), dom.js, format.js.
import * as api from './api.js';
import * as store from './store.js';
import * as chat from './chat.js';
import { showUnread } from './attention.js';
import { h } from './dom.js';
import { setupScreen, signInScreen, changePasswordScreen } from './views/auth.js';
import { createShell } from './views/shell.js';
import { confirmDialog } from './views/dialog.js';

const root = document.getElementById('app');
const banner = document.getElementById('banner');
let shell = null; // present while signed in to the chat

function render(node) {
  root.replaceChildren(node);
  root.querySelector('[autofocus]')?.focus();
}

// ---- screens ----

async function boot() {
  if (location.pathname === '/setup') {
    render(setupScreen({ onSignedIn: enter }));
    return;
  }
  try {
    enter(await api.get('/api/me'));
  } catch (e) {
    if (e.status === 401) showSignIn();
    else render(h('main', { class: 'auth' }, h('div', { class: 'card' }, h('h1', {}, 'confab is not reachable'),
      h('p', { class: 'form-error', role: 'alert' }, e.message),
      h('button', { type: 'button', class: 'primary', onclick: boot }, 'Try again'))));
  }
}

function showSignIn(notice) {
  render(signInScreen({ notice, onSignedIn: enter }));
}

function enter(me) {
  if (me.must_change_password) {
    render(changePasswordScreen({ me, onDone: () => enter({ ...me, must_change_password: false }), onSignOut: signOut }));
    return;
  }
  shell = createShell({ onSignOut: signOut, onUsersChanged: chat.refreshDirectory });
  render(shell.el);
  chat.start(me, { onSessionEnded: () => endSession('Your session has ended. Please sign in again.') }).then(route);
  route();
}

function endSession(notice) {
  if (!shell) return;
  shell.destroy();
  shell = null;
  chat.stop();
  showSignIn(notice);
}

async function signOut() {
  const unsent = store.state.outbox.length;
  if (unsent && !(await confirmDialog('Sign out?',
    `${unsent} message${unsent === 1 ? ' has' : 's have'} not been sent yet and will be lost.`, 'Sign out', { danger: true }))) return;
  store.clearLocalData();
  try {
    await api.post('/api/logout');
  } catch {
    // Signed out locally either way; the session also expires on its own.
  }
  if (shell) endSession();
  else showSignIn();
}

// A 401 from any call while signed in means the session is gone (revoked, expired).
api.onSessionEnded((error) => {
  if (!shell) return;
  if (error.code === 'password_change_required') {
    shell.destroy();
    shell = null;
    chat.stop();
    boot();
  } else {
    endSession('Your session has ended. Please sign in again.');
  }
});

// ---- routing ----

/** The room a link asked for that is not in the conversation list (yet): shown when it comes. */
let missingRoom = null;

function route() {
  missingRoom = null;
  if (!shell) return;
  const { state } = store;
  let hash;
  try {
    hash = decodeURIComponent(location.hash);
  } catch {
    hash = '#/'; // a mangled bookmark: fall back to the empty pane
  }
  let match;
  if (hash === '#/admin' && state.me?.role === 'admin') {
    chat.openConversation(null);
    shell.showAdmin();
  } else if ((match = /^#\/dm\/([^/]+)(?:\/([1-9]\d*))?$/.exec(hash))) {
    if (state.users.size === 0) return; // directory still loading: route() runs again when it is
    const user = store.userByName(match[1]);
    if (!user || user.id === state.me.id) {
      chat.openConversation(null);
      shell.showNotFound(match[1]);
      return;
    }
    openConversation(store.dmWith(user.id), match[2]);
  } else if ((match = /^#\/room\/([1-9]\d*)(?:\/([1-9]\d*))?$/.exec(hash))) {
    const id = `room:${match[1]}`;
    if (!state.conversations.has(id)) {
      // Not one of ours (yet): the server shows outsiders nothing of it, so neither does the page.
      missingRoom = id;
      if (!state.conversationsLoaded) return; // the list is still loading: route() runs again when it is
      chat.openConversation(null);
      shell.showRoomNotFound(id);
      return;
    }
    openConversation(id, match[2]);
  } else if (hash === '#/rooms') {
    chat.openConversation(null);
    shell.showRooms().focus();
  } else if ((match = /^#\/search(?:\/(.*))?$/s.exec(hash))) {
    chat.openConversation(null);
    shell.showSearch(match[1] ?? '');
  } else if (hash === '#/mentions') {
    chat.openConversation(null);
    shell.showMentions();
  } else if (hash === '#/settings') {
    chat.openConversation(null);
    shell.showSettings();
  } else if ((match = /^#\/c\/(.+)$/.exec(hash))) {
    shell.showConversation(match[1]);
    chat.openConversation(match[1]);
  } else {
    chat.openConversation(null);
    shell.showEmpty();
  }
}

/** A conversation on screen; `seq` (a search hit, a link to a message) is shown with its context. */
function openConversation(id, seq) {
  const view = shell.showConversation(id);
  chat.openConversation(id);
  if (seq) view.jumpTo(Number(seq));
  else if (!matchMedia('(pointer: coarse)').matches) view.focus();
}

addEventListener('hashchange', route);

// ---- things that follow the store everywhere ----

store.subscribe(() => {
  const signedIn = Boolean(shell);
  // A room link waiting for the conversation list, or shown as not found until the room comes
  // (someone adds the user, or they join it in another tab).
  if (signedIn && missingRoom && (store.state.conversations.has(missingRoom)
    || (store.state.conversationsLoaded && shell.showing() !== `missing:${missingRoom}`))) route();
  showUnread(signedIn ? store.totalUnread() : 0);
  const offline = signedIn && store.state.connection === 'offline';
  if (offline && banner.hidden) {
    banner.replaceChildren(h('span', {}, 'Connection lost — reconnecting…'),
      h('button', { type: 'button', class: 'link', onclick: chat.reconnectNow }, 'Retry now'));
  }
  banner.hidden = !offline;
});

/** Whether a key press goes into something the user is typing in. */
function typingTarget(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

addEventListener('keydown', (event) => {
  if (!shell) return;
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === 'k') {
    event.preventDefault();
    shell.focusFilter();
  } else if (event.key === '/' && !event.ctrlKey && !event.metaKey && !event.altKey && !typingTarget(event.target)) {
    event.preventDefault();
    shell.focusSearch();
  }
});

boot();
