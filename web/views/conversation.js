// The conversation pane (a DM or a room): header with the notification level, message history
// (grouped by sender and day), typing, "Seen" / "Seen by N", the composer with @-completion, and for
// rooms the member panel. The message list re-renders only when the conversation's revision changes.
import { h, replaceKeepingFocus } from '../dom.js';
import {
  avatar, dayKey, dayLabel, firstLine, formatText, fullTime, isSingleEmoji, mentionify, relativeTime, summaryText, timeLabel,
} from '../format.js';
import * as store from '../store.js';
import * as chat from '../chat.js';
import { confirmDialog } from './dialog.js';
import { addPeopleDialog, roomSettingsDialog } from './rooms.js';
import { roomIcon } from './sidebar.js';
import { createAttachments } from './attachments.js';
import { filesEl, pendingFilesEl } from './files.js';

const MAX_BODY_CHARS = 4000;
/** Messages further apart than this start a new group even from the same sender. */
const GROUP_GAP_MS = 10 * 60 * 1000;
/** Start loading the previous page this close to the top, before the user hits it. */
const LOAD_OLDER_PX = 300;
const PINNED_PX = 48;
/** Beyond this many typers the line stops naming them. */
const MAX_TYPING_NAMES = 3;
const MAX_SUGGESTIONS = 8;
/** The server refuses edits after this (edit_window_passed), so the action is not offered. */
const EDIT_WINDOW_MS = 24 * 60 * 60 * 1000;
const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '😢', '🙏', '✅'];
/** How long a message jumped to from a reply stays highlighted. */
const HIGHLIGHT_MS = 2500;

const LEVELS = [['all', 'All messages'], ['mentions', 'Mentions only'], ['muted', 'Muted']];

/** "Alice", "Alice and Bob", "Alice, Bob and Carol". */
export function nameList(names) {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

export function typingText(names) {
  if (names.length === 0) return '';
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length > MAX_TYPING_NAMES) return 'Several people are typing…';
  return `${nameList(names)} are typing…`;
}

/**
 * Message text with formatting, links and highlighted mentions. A room message names its mentions (the
 * server's `mentions` and `mentions_room`), so exactly those are highlighted; elsewhere (a DM, a
 * message still being sent) any @username of someone on the server is.
 */
export function messageText(msg) {
  const self = store.state.me?.username;
  let isMention = (name) => Boolean(store.userByName(name));
  if (msg.seq && msg.conversation?.startsWith('room:')) {
    const names = new Set((msg.mentions ?? []).map((id) => store.userById(id)?.username));
    if (msg.mentions_room) names.add('room');
    isMention = (name) => names.has(name);
  }
  return formatText(msg.body, (text) => {
    if (!text.includes('@')) return text;
    return mentionify(text, store.mentionedNames(text), { isMention, self });
  });
}

export function createConversationView(id, { onBack }) {
  const { state } = store;
  const otherId = store.otherMember(id);
  const other = () => store.userById(otherId);
  const isRoom = id.startsWith('room:');
  const summary = () => state.conversations.get(id);
  const otherName = () => (isRoom ? summary()?.name ?? 'this room' : other()?.display_name ?? 'this conversation');

  const title = h('h1', { class: 'conv-title', 'data-testid': 'conversation-title' });
  const status = h('p', { class: 'conv-status', 'data-testid': 'conversation-status' });
  const headerAvatar = h('span', { class: 'avatar-wrap' });
  const headerError = h('p', { class: 'form-error header-error', role: 'alert' });

  // Notification level: all, mentions only, muted (DMs and rooms alike).
  const level = h('select', { class: 'level-select', 'data-testid': 'notify-level', 'aria-label': 'Notifications' },
    ...LEVELS.map(([value, label]) => h('option', { value }, label)));
  // While a choice is being saved, redraws show it, not the level stored until then.
  let savingLevel = null;
  const shownLevel = () => savingLevel ?? summary()?.notify ?? 'all';
  level.addEventListener('change', async () => {
    headerError.textContent = '';
    const chosen = level.value;
    savingLevel = chosen;
    try {
      await chat.setNotify(id, chosen);
    } catch (e) {
      headerError.textContent = e.message;
    } finally {
      if (savingLevel === chosen) savingLevel = null;
      level.value = shownLevel();
    }
  });
  const membersToggle = h('button', {
    type: 'button', class: 'icon-button', 'aria-expanded': 'false', 'aria-controls': `members-${id}`, 'data-testid': 'members-toggle',
  });
  const settingsButton = h('button', {
    type: 'button', class: 'icon-button', 'data-testid': 'room-settings', 'aria-label': 'Room settings', onclick: () => roomSettingsDialog(id),
  }, 'Settings');
  const blockButton = h('button', { type: 'button', class: 'icon-button', 'data-testid': 'block-toggle' });
  blockButton.addEventListener('click', async () => {
    const user = other();
    if (!user) return;
    const blocked = state.blocked.has(user.id);
    if (!blocked && !(await confirmDialog(`Block ${user.display_name}?`,
      `You will not receive ${user.display_name}’s direct messages or chat requests, and their mentions will not notify you. They are not told.`,
      'Block', { danger: true }))) return;
    headerError.textContent = '';
    try {
      await chat.setBlock(user.id, !blocked);
    } catch (e) {
      headerError.textContent = e.message;
    }
  });
  const actions = h('div', { class: 'header-actions' }, level, isRoom ? settingsButton : blockButton, isRoom ? membersToggle : null);
  const header = h('header', { class: 'pane-header' },
    h('button', { type: 'button', class: 'back', onclick: onBack, 'aria-label': 'Back to conversations' }, '‹'),
    headerAvatar, h('div', { class: 'conv-heading' }, title, status), actions);

  const edge = h('div', { class: 'history-edge', 'data-testid': 'history-edge' });
  const list = h('div', { class: 'message-list', 'data-testid': 'message-list' });
  const listHint = h('span', { id: `messages-hint-${id}`, class: 'visually-hidden' },
    'Arrow keys move between messages; Tab then reaches the actions of the message: reply, react, edit, delete.');
  const scroller = h('div', {
    class: 'messages', tabindex: '0', role: 'log', 'aria-live': 'off', 'aria-describedby': listHint.id,
  }, listHint, edge, list);
  const pill = h('button', { type: 'button', class: 'new-pill', hidden: true, 'data-testid': 'new-messages-pill' }, 'New messages ↓');
  const typingLine = h('div', { class: 'typing', 'data-testid': 'typing-indicator', 'aria-live': 'polite' });
  const notice = h('div', { class: 'conv-notice', 'data-testid': 'conversation-notice', role: 'status' });

  const input = h('textarea', {
    id: 'composer-input', rows: 1, class: 'composer-input', 'data-testid': 'composer',
    placeholder: 'Write a message…', 'aria-describedby': 'composer-hint',
    role: isRoom ? 'combobox' : null, 'aria-autocomplete': isRoom ? 'list' : null,
    'aria-expanded': isRoom ? 'false' : null, 'aria-controls': isRoom ? 'mention-menu' : null,
  });
  const composerError = h('p', { class: 'composer-error', role: 'alert', 'data-testid': 'composer-error' });
  const changeError = h('p', { class: 'composer-error', role: 'alert', 'data-testid': 'change-error' });
  const replyBar = h('div', { class: 'reply-bar', hidden: true, 'data-testid': 'reply-bar' });
  const inputLabel = h('label', { for: 'composer-input', class: 'visually-hidden' });
  const sendButton = h('button', { type: 'submit', class: 'primary send', 'data-testid': 'send' }, 'Send');
  const fileInput = h('input', { type: 'file', multiple: true, hidden: true, 'data-testid': 'file-input', tabindex: '-1' });
  const attachButton = h('button', {
    type: 'button', class: 'attach', 'aria-label': 'Attach files', title: 'Attach files (or drop them here, or paste a picture)',
    'data-testid': 'attach', onclick: () => fileInput.click(),
  }, '+');
  const attachments = createAttachments(id, { onChange: () => { renderComposerState(); sendWhenReady(); } });
  const menu = h('ul', { id: 'mention-menu', class: 'mention-menu', role: 'listbox', 'aria-label': 'People to mention', hidden: true, 'data-testid': 'mention-menu' });
  const composer = h('form', { class: 'composer', 'data-testid': 'composer-form' },
    inputLabel, menu, attachButton, fileInput, input, sendButton,
    h('span', { id: 'composer-hint', class: 'visually-hidden' },
      isRoom ? 'Enter sends, Shift+Enter starts a new line. Type @ to mention someone.' : 'Enter sends, Shift+Enter starts a new line.'));

  // ---- member panel (rooms) ----
  const memberList = h('ul', { class: 'entries member-list', 'data-testid': 'member-list' });
  const memberHeading = h('h2', { id: `members-heading-${id}` });
  const addPeople = h('button', { type: 'button', class: 'icon-button', 'data-testid': 'add-people', onclick: () => addPeopleDialog(id) }, 'Add people');
  const leaveButton = h('button', { type: 'button', class: 'danger-text', 'data-testid': 'leave-room' }, 'Leave room');
  const panelError = h('p', { class: 'form-error', role: 'alert' });
  const panel = h('aside', {
    id: `members-${id}`, class: 'member-panel', hidden: true, 'aria-labelledby': `members-heading-${id}`, 'data-testid': 'member-panel',
  },
  h('div', { class: 'member-panel-header' }, memberHeading,
    h('button', { type: 'button', class: 'icon-button', onclick: () => togglePanel(false), 'aria-label': 'Close the member list' }, 'Close')),
  h('div', { class: 'member-panel-actions' }, addPeople), panelError, memberList,
  h('div', { class: 'member-panel-footer' }, leaveButton));

  const column = h('div', { class: 'conv-column' },
    h('div', { class: 'messages-wrap' }, scroller, pill), typingLine, notice, composerError, changeError, replyBar, attachments.el, composer);
  const el = h('section', { class: 'conv-pane', 'data-conversation-id': id },
    header, h('div', { class: 'conv-body' }, column, isRoom ? panel : null));

  // The member panel: a column beside the chat on wide screens (open or closed as last chosen), a
  // sheet over the chat on narrow ones (closed until asked for, every time).
  const PANEL_KEY = 'confab.members-panel';
  const narrow = matchMedia('(max-width: 720px)');
  let wideOpen = true;
  try { wideOpen = localStorage.getItem(PANEL_KEY) !== 'closed'; } catch { /* default: open */ }
  let narrowOpen = false;
  let panelOpen = false;
  function applyPanel() {
    const open = isRoom && (narrow.matches ? narrowOpen : wideOpen);
    const opening = open && !panelOpen;
    panelOpen = open;
    panel.hidden = !open;
    membersToggle.setAttribute('aria-expanded', String(open));
    if (opening) chat.loadMembers(id);
    renderPanel();
  }
  function togglePanel(open = !panelOpen) {
    if (narrow.matches) {
      narrowOpen = open;
    } else {
      wideOpen = open;
      try { localStorage.setItem(PANEL_KEY, open ? 'open' : 'closed'); } catch { /* not remembered */ }
    }
    applyPanel();
    if (!open && narrow.matches) membersToggle.focus();
  }
  narrow.addEventListener('change', applyPanel);
  panel.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && narrow.matches && !event.defaultPrevented) togglePanel(false);
  });
  membersToggle.addEventListener('click', () => togglePanel());
  leaveButton.addEventListener('click', async () => {
    if (!(await confirmDialog(`Leave ${otherName()}?`,
      summary()?.visibility === 'private' ? 'It is private: you can only come back if a member adds you again.' : 'You can join again from the room browser.',
      'Leave', { danger: true }))) return;
    panelError.textContent = '';
    try {
      await chat.leaveRoom(id);
    } catch (e) {
      panelError.textContent = e.message;
    }
  });

  function memberEntry(userId, room, manage) {
    const user = store.userById(userId) ?? { id: userId, display_name: 'Unknown', username: '' };
    const online = state.online.has(userId);
    const self = userId === state.me.id;
    const remove = async () => {
      if (!(await confirmDialog(`Remove ${user.display_name} from ${room.name}?`,
        `${user.display_name} will no longer see this room${room.visibility === 'private' ? '' : ' until they join again'}.`,
        'Remove', { danger: true }))) return;
      panelError.textContent = '';
      try {
        await chat.removeMember(id, userId);
      } catch (e) {
        panelError.textContent = e.message;
      }
    };
    const tags = [self ? 'you' : null, room.created_by === userId ? 'creator' : null, user.role === 'admin' ? 'admin' : null].filter(Boolean);
    return h('li', { class: 'member', dataset: { testid: 'member', userId, key: `m${userId}` } },
      h('span', { class: 'avatar-wrap' }, avatar(user, 'sm'),
        h('span', { class: `presence-dot ${online ? 'online' : 'offline'}`, 'data-testid': 'presence-dot' })),
      h('span', { class: 'entry-text' },
        h('span', { class: 'entry-name' }, user.display_name, tags.length ? h('span', { class: 'muted member-tags' }, ` (${tags.join(', ')})`) : null),
        h('span', { class: 'entry-sub' }, online ? 'Online' : user.last_seen ? `Last seen ${relativeTime(user.last_seen)}` : 'Not signed in yet')),
      manage && !self && !room.general
        ? h('button', { type: 'button', class: 'icon-button danger-text', onclick: remove, 'aria-label': `Remove ${user.display_name}`, 'data-testid': 'remove-member' }, 'Remove')
        : null);
  }

  function renderPanel() {
    if (!isRoom) return;
    const room = summary();
    const ids = store.memberIds(id);
    const count = ids?.length ?? room?.member_count ?? 0;
    setText(membersToggle, `Members (${count})`);
    membersToggle.setAttribute('aria-label', `Members: ${count}. Show who is in this room`);
    if (!panelOpen || !room) return;
    memberHeading.textContent = `Members (${count})`;
    addPeople.hidden = room.visibility !== 'private' || room.archived;
    leaveButton.hidden = Boolean(room.general);
    if (!ids) {
      memberList.replaceChildren(h('li', { class: 'empty-note' }, 'Loading members…'));
      memberList.dataset.key = '';
      return;
    }
    const manage = store.canManage(room);
    const online = (u) => (state.online.has(u) ? 1 : 0);
    const name = (u) => store.userById(u)?.display_name ?? '';
    const sorted = ids.sort((a, b) => online(b) - online(a) || name(a).localeCompare(name(b)));
    // Presence and typing re-render the pane often: rebuild the list only when it would change.
    const pic = (u) => store.userById(u)?.avatar ?? '';
    const key = [manage, room.general, room.created_by, ...sorted.map((u) => `${u}${online(u) ? '+' : '-'}${name(u)}:${pic(u)}`)].join('\u0000');
    if (memberList.dataset.key === key) return;
    memberList.dataset.key = key;
    replaceKeepingFocus(memberList, sorted.map((u) => memberEntry(u, room, manage)));
  }

  // ---- @-completion (rooms): candidates are the room's members ----
  let suggestions = [];
  let active = 0;
  let mentionStart = -1;

  function mentionQuery() {
    const caret = input.selectionStart;
    if (caret !== input.selectionEnd) return null;
    const match = /(^|[^a-z0-9._-])@([a-z0-9._-]*)$/i.exec(input.value.slice(0, caret));
    if (!match) return null;
    return { start: caret - match[2].length - 1, query: match[2].toLowerCase() };
  }

  function updateSuggestions() {
    const found = isRoom ? mentionQuery() : null;
    const ids = store.memberIds(id);
    if (!found || !ids) return closeMenu();
    const { query } = found;
    const people = ids.filter((u) => u !== state.me.id).map((u) => store.userById(u)).filter(Boolean)
      .filter((u) => u.username.startsWith(query) || u.display_name.toLowerCase().split(/\s+/).some((w) => w.startsWith(query)))
      .sort((a, b) => (b.username.startsWith(query) - a.username.startsWith(query)) || a.username.localeCompare(b.username))
      .slice(0, MAX_SUGGESTIONS)
      .map((u) => ({ username: u.username, label: u.display_name, user: u }));
    const room = summary();
    if ('room'.startsWith(query) && (!room?.general || store.canManage(room) || room?.created_by === state.me.id)) {
      people.push({ username: 'room', label: 'Everyone in this room' });
    }
    if (people.length === 0) return closeMenu();
    suggestions = people;
    mentionStart = found.start;
    active = Math.min(active, people.length - 1);
    renderMenu();
    return undefined;
  }

  function renderMenu() {
    menu.replaceChildren(...suggestions.map((sug, i) => {
      const option = h('li', {
        id: `mention-option-${i}`, role: 'option', class: 'mention-option', 'aria-selected': String(i === active),
        dataset: { testid: 'mention-option', username: sug.username },
      }, sug.user ? avatar(sug.user, 'sm') : h('span', { class: 'room-icon', 'aria-hidden': 'true' }, '@'),
      h('span', { class: 'entry-name' }, sug.label), h('span', { class: 'muted' }, `@${sug.username}`));
      // mousedown, not click: the textarea keeps focus (and its caret).
      option.addEventListener('mousedown', (event) => {
        event.preventDefault();
        active = i;
        pick();
      });
      return option;
    }));
    menu.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    input.setAttribute('aria-activedescendant', `mention-option-${active}`);
  }

  function closeMenu() {
    suggestions = [];
    active = 0;
    mentionStart = -1;
    menu.hidden = true;
    menu.replaceChildren();
    if (isRoom) input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
  }

  function pick() {
    const sug = suggestions[active];
    if (!sug) return;
    const caret = input.selectionStart;
    const before = input.value.slice(0, mentionStart);
    const after = input.value.slice(caret);
    const insert = `@${sug.username} `;
    input.value = before + insert + after.replace(/^ /, '');
    const pos = before.length + insert.length;
    input.setSelectionRange(pos, pos);
    store.saveDraft(id, input.value);
    closeMenu();
  }

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
    updateSuggestions();
  });
  input.addEventListener('click', () => { if (!menu.hidden) updateSuggestions(); });
  input.addEventListener('blur', closeMenu);
  input.addEventListener('keydown', (event) => {
    if (!menu.hidden && suggestions.length && !event.isComposing) {
      if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        event.preventDefault();
        const step = event.key === 'ArrowDown' ? 1 : -1;
        active = (active + step + suggestions.length) % suggestions.length;
        renderMenu();
        return;
      }
      if ((event.key === 'Enter' && !event.shiftKey) || event.key === 'Tab') {
        event.preventDefault();
        pick();
        return;
      }
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        closeMenu();
        return;
      }
    }
    if (event.key === 'Escape' && replyTo) {
      event.preventDefault();
      cancelReply();
      return;
    }
    if (event.key === 'ArrowUp' && !input.value) {
      // As in most chat apps: the arrow up in an empty composer edits your last message.
      const last = store.sortedMessages(store.timeline(id)).reverse().find(canEdit);
      if (last) {
        event.preventDefault();
        startEdit(last);
      }
      return;
    }
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  composer.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = input.value.trim();
    if ((!body && attachments.count === 0) || input.disabled || waiting) return;
    closeMenu();
    if ([...body].length > MAX_BODY_CHARS) {
      composerError.textContent = `Messages can be at most ${MAX_BODY_CHARS} characters (this one has ${[...body].length}).`;
      return;
    }
    if (attachments.failed) {
      composerError.textContent = 'Some files could not be uploaded: remove them (×) before sending.';
      return;
    }
    // Files still uploading: the message goes out when they are done (or cancelled).
    waiting = true;
    renderComposerState();
    sendWhenReady();
  });

  // ---- files: picked, dropped onto the conversation, or pasted ----
  let waiting = false; // the user pressed Send while files were still uploading

  function addFiles(files) {
    if (!files.length || input.disabled) return;
    if (!isRoom && !(summary()?.last_seq > 0)) {
      // Uploads go into a conversation, and a DM starts with its first message.
      composerError.textContent = `Send ${otherName()} a message first; files can follow once you are talking.`;
      return;
    }
    composerError.textContent = attachments.add(files);
    input.focus();
  }

  function sendWhenReady() {
    if (!waiting || attachments.uploading) return;
    waiting = false;
    const body = input.value.trim();
    const files = attachments.files;
    if (attachments.failed || (!body && !files.length)) {
      renderComposerState();
      return;
    }
    // Showing older history (a search hit): the new message goes where the newest ones are.
    if (store.timeline(id).hasNewer) chat.showLatest(id);
    chat.send(id, body, replyTo?.seq, files);
    attachments.clear();
    replyTo = null;
    renderReplyBar();
    input.value = '';
    store.saveDraft(id, '');
    autosize();
    stickToBottom = true;
    renderComposerState();
    input.focus();
  }

  function renderComposerState() {
    input.readOnly = waiting;
    setText(sendButton, waiting ? 'Sending when uploaded…' : 'Send');
    sendButton.classList.toggle('waiting', waiting);
  }

  fileInput.addEventListener('change', () => {
    addFiles([...fileInput.files]);
    fileInput.value = '';
  });
  input.addEventListener('paste', (event) => {
    const files = [...(event.clipboardData?.files ?? [])];
    if (!files.length) return;
    // A copied picture often comes with its file name or markup as text too: keep only the file.
    event.preventDefault();
    addFiles(files);
  });
  const dragHasFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes('Files');
  let dragDepth = 0;
  el.addEventListener('dragenter', (event) => {
    if (!dragHasFiles(event)) return;
    dragDepth += 1;
    el.classList.add('dropping');
  });
  el.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) el.classList.remove('dropping');
  });
  el.addEventListener('dragover', (event) => {
    if (!dragHasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = input.disabled ? 'none' : 'copy';
  });
  el.addEventListener('drop', (event) => {
    dragDepth = 0;
    el.classList.remove('dropping');
    if (!dragHasFiles(event)) return;
    event.preventDefault();
    addFiles([...event.dataTransfer.files]);
  });

  // ---- scrolling ----
  let stickToBottom = true; // set by the user's scrolling; decides where new messages leave the view
  const distanceFromBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight;
  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
    stickToBottom = true;
    pill.hidden = true;
  }
  // Keyboard: arrows move from message to message; a focused message shows its actions, which Tab
  // reaches next. Escape goes back to the composer.
  scroller.addEventListener('keydown', (event) => {
    const onMessage = event.target.matches?.('.message[data-seq]');
    if (event.key === 'Escape' && onMessage) {
      event.preventDefault();
      input.focus();
      return;
    }
    if ((event.key !== 'ArrowUp' && event.key !== 'ArrowDown') || (!onMessage && event.target !== scroller)) return;
    const messages = [...list.querySelectorAll('.message[data-seq]')];
    let next;
    if (onMessage) {
      next = messages[messages.indexOf(event.target) + (event.key === 'ArrowUp' ? -1 : 1)];
    } else {
      const view = scroller.getBoundingClientRect();
      const visible = messages.filter((m) => {
        const box = m.getBoundingClientRect();
        return box.bottom > view.top && box.top < view.bottom;
      });
      next = event.key === 'ArrowUp' ? visible.at(-1) : visible[0];
    }
    if (!next) return;
    event.preventDefault();
    next.focus({ preventScroll: true });
    next.scrollIntoView({ block: 'nearest' });
  });
  scroller.addEventListener('scroll', () => {
    const detached = store.timeline(id).hasNewer;
    stickToBottom = !detached && distanceFromBottom() < PINNED_PX;
    if (stickToBottom) pill.hidden = true;
    if (scroller.scrollTop < LOAD_OLDER_PX) chat.loadOlder(id);
    if (detached && distanceFromBottom() < LOAD_OLDER_PX) chat.loadNewer(id);
  });
  pill.addEventListener('click', async () => {
    await chat.showLatest(id);
    scrollToBottom();
    input.focus();
  });

  // ---- rendering ----
  let renderedRev = -1;
  let renderedOldest = 0;
  let renderedNewest = 0;

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  let headerKey = '';
  function renderHeader() {
    const s = summary();
    level.value = shownLevel();
    level.disabled = !s || (!isRoom && s.last_seq === 0); // a DM exists once it has a message
    if (isRoom) {
      setText(title, otherName());
      inputLabel.textContent = `Message ${otherName()}`;
      const key = `${s?.visibility}`;
      if (key !== headerKey) {
        headerKey = key;
        headerAvatar.replaceChildren(roomIcon(s ?? {}));
      }
      const count = store.memberIds(id)?.length ?? s?.member_count ?? 0;
      const members = count === 1 ? '1 member' : `${count} members`;
      setText(status, s?.topic ? `${s.topic} · ${members}` : members);
      status.title = s?.topic ?? '';
      settingsButton.hidden = !store.canManage(s);
      renderPanel();
      return;
    }
    const user = other();
    setText(title, otherName());
    inputLabel.textContent = `Message ${otherName()}`;
    const key = user ? `${user.id}:${user.display_name}:${user.avatar ?? ''}:${state.online.has(user.id)}` : '';
    if (key !== headerKey) {
      headerKey = key;
      headerAvatar.replaceChildren(...(user ? [avatar(user),
        h('span', { class: `presence-dot ${state.online.has(user.id) ? 'online' : 'offline'}` })] : []));
    }
    if (!user) status.textContent = '';
    else if (user.disabled) status.textContent = 'Account disabled';
    else if (state.online.has(user.id)) status.textContent = 'Online';
    else status.textContent = user.last_seen ? `Last seen ${relativeTime(user.last_seen)}` : 'Not signed in yet';
    const blocked = user && state.blocked.has(user.id);
    setText(blockButton, blocked ? 'Unblock' : 'Block');
    blockButton.setAttribute('aria-label', `${blocked ? 'Unblock' : 'Block'} ${user?.display_name ?? ''}`);
    blockButton.hidden = !user;
  }

  function renderTyping() {
    const names = store.typingIn(id).map((u) => store.userById(u)?.display_name ?? 'Someone')
      .sort((a, b) => a.localeCompare(b));
    const text = typingText(names);
    if (typingLine.textContent !== text) typingLine.textContent = text;
    typingLine.classList.toggle('active', Boolean(text));
  }

  /** Archived rooms, blocked people and chat requests change what the composer may do. */
  function renderNotice() {
    const s = summary();
    let lines = [];
    let writable = true;
    const user = other();
    if (isRoom && s?.archived) {
      lines = ['This room is archived. Its history stays readable; nobody can write in it.'];
      writable = false;
    } else if (isRoom && !s && store.timeline(id).errorCode === 'not_found') {
      lines = ['You are not in this room, or it does not exist. Open rooms can be joined from the room browser.'];
      writable = false;
    } else if (!isRoom && user) {
      const incoming = store.incomingRequest(user.id);
      const outgoing = store.outgoingRequest(user.id);
      const outcome = state.requestOutcomes.get(user.id);
      if (state.blocked.has(user.id)) {
        lines = [`You blocked ${user.display_name}. You do not receive their messages.`,
          h('button', { type: 'button', class: 'link', onclick: () => chat.setBlock(user.id, false) }, 'Unblock')];
      } else if (incoming) {
        lines = [h('div', { class: 'request-card', 'data-testid': 'request-card' },
          h('p', {}, h('strong', {}, user.display_name), ' wants to chat with you:'),
          h('p', { class: 'request-body' }, incoming.body ?? ''),
          h('div', { class: 'request-actions' },
            h('button', { type: 'button', class: 'primary', onclick: () => answer('accept') }, 'Accept'),
            h('button', { type: 'button', onclick: () => answer('decline') }, 'Decline')))];
        writable = false;
      } else if (outgoing) {
        lines = [h('div', { 'data-testid': 'request-sent' },
          h('p', {}, `Chat request sent. ${user.display_name} will see your message once they accept.`),
          outgoing.body ? h('p', { class: 'request-body' }, outgoing.body) : null)];
        writable = false;
      } else if (outcome === 'declined') {
        lines = [h('span', { 'data-testid': 'request-declined' }, `${user.display_name} declined your chat request.`)];
        writable = false;
      } else if (outcome === 'accepted') {
        lines = [h('span', { 'data-testid': 'request-accepted' }, `${user.display_name} accepted your chat request.`)];
      }
    }
    const key = JSON.stringify(lines.map((l) => (typeof l === 'string' ? l : l.textContent)));
    if (notice.dataset.key !== key) {
      notice.dataset.key = key;
      notice.replaceChildren(...lines.map((l) => (typeof l === 'string' ? h('p', {}, l) : l)));
    }
    notice.hidden = lines.length === 0;
    input.disabled = !writable;
    sendButton.disabled = !writable;
    attachButton.disabled = !writable;
  }

  async function answer(action) {
    const user = other();
    composerError.textContent = '';
    try {
      await chat.answerRequest(user.id, action);
    } catch (e) {
      composerError.textContent = e.message;
    }
  }

  /**
   * Rooms: "Seen by N" under the newest message, N the members other than its sender (and us) who
   * read up to it; the names are in the title and the accessible label.
   */
  function seenBy(newest) {
    const reads = summary()?.reads;
    if (!newest || !reads) return null;
    const names = [];
    for (const [user, seq] of reads) {
      if (seq >= newest.seq && user !== newest.from && user !== state.me.id) names.push(store.userById(user)?.display_name ?? 'Someone');
    }
    if (names.length === 0) return null;
    names.sort((a, b) => a.localeCompare(b));
    const list = nameList(names);
    return h('div', {
      class: 'seen seen-by', 'data-testid': 'seen', tabindex: '0', title: names.join(', '),
      'aria-label': `Seen by ${list}`, dataset: { names: list },
    }, `Seen by ${names.length}`);
  }

  /** The last own message the other member has read up to, for "Seen". */
  function seenSeq(messages) {
    if (!otherId) return 0;
    const read = state.conversations.get(id)?.reads.get(otherId) ?? 0;
    let seen = 0;
    for (const m of messages) if (m.from === state.me.id && m.seq <= read) seen = m.seq;
    return seen;
  }

  // ---- message actions: reply, react, edit, delete ----
  let editing = null; // {seq, form, textarea, error} while an own message is being edited
  let picker = null; // {seq, el} while the reaction picker is open under a message
  let replyTo = null; // {seq} while the composer answers a message
  let highlightSeq = null;
  let highlightTimer = null;

  const held = (seq) => store.timeline(id).messages.get(seq);
  /** A message's first line, or what files it carries when it has no text. */
  const snippetOf = (m) => (m.body?.trim() ? firstLine(m.body) : firstLine(summaryText(m)));
  const readOnly = () => isRoom && Boolean(summary()?.archived);
  const nameOf = (userId) => store.userById(userId)?.display_name ?? 'Someone';
  const canEdit = (m) => m.from === state.me.id && !m.deleted && !readOnly() && Date.now() - m.sent_at < EDIT_WINDOW_MS;
  const canDelete = (m) => !m.deleted && !readOnly() && (m.from === state.me.id || state.me.role === 'admin');

  function rerenderList() {
    renderedRev = -1;
    render();
  }

  function startEdit(m) {
    closePicker(false);
    const textarea = h('textarea', {
      class: 'edit-input', rows: 1, 'aria-label': 'Edit message', 'data-testid': 'edit-input', dataset: { key: 'edit-input' },
    });
    textarea.value = m.body;
    const error = h('p', { class: 'form-error', role: 'alert' });
    const form = h('form', { class: 'edit-form', 'data-testid': 'edit-form' }, textarea,
      h('div', { class: 'edit-actions' },
        h('span', { class: 'muted edit-hint' }, 'Enter to save · Esc to cancel'),
        h('button', { type: 'button', 'data-testid': 'edit-cancel', dataset: { key: 'edit-cancel' }, onclick: () => stopEdit() }, 'Cancel'),
        h('button', { type: 'submit', class: 'primary', 'data-testid': 'edit-save', dataset: { key: 'edit-save' } }, 'Save')),
      error);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      saveEdit();
    });
    textarea.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        saveEdit();
      } else if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        stopEdit();
      }
    });
    textarea.addEventListener('input', sizeEditor);
    editing = { seq: m.seq, form, textarea, error };
    rerenderList();
    textarea.focus();
    textarea.setSelectionRange(textarea.value.length, textarea.value.length);
    sizeEditor();
  }

  function sizeEditor() {
    const t = editing?.textarea;
    if (!t) return;
    t.style.height = 'auto';
    t.style.height = `${Math.min(t.scrollHeight + (t.offsetHeight - t.clientHeight), 240)}px`;
  }

  function saveEdit() {
    const m = editing && held(editing.seq);
    if (!m || m.deleted) return stopEdit();
    const body = editing.textarea.value.trim();
    if (!body) {
      editing.error.textContent = 'A message cannot be empty: delete it instead.';
      return undefined;
    }
    if ([...body].length > MAX_BODY_CHARS) {
      editing.error.textContent = `Messages can be at most ${MAX_BODY_CHARS} characters (this one has ${[...body].length}).`;
      return undefined;
    }
    if (body !== m.body && !chat.editMessage(id, m.seq, body)) return undefined;
    return stopEdit();
  }

  function stopEdit() {
    if (!editing) return;
    editing = null;
    rerenderList();
    input.focus();
  }

  async function confirmDelete(m) {
    const own = m.from === state.me.id;
    const ok = await confirmDialog('Delete this message?',
      own ? 'Everyone will see “message deleted” in its place. This cannot be undone.'
        : `${nameOf(m.from)}’s message will show as “message deleted” for everyone. This cannot be undone.`,
      'Delete', { danger: true });
    if (ok) chat.deleteMessage(id, m.seq);
    list.querySelector(`[data-seq="${m.seq}"]`)?.focus({ preventScroll: true });
  }

  function togglePicker(m) {
    if (picker?.seq === m.seq) {
      closePicker(true);
      return;
    }
    const other = h('input', {
      type: 'text', class: 'emoji-input', 'aria-label': 'Any emoji', placeholder: 'Any emoji', autocomplete: 'off',
      'data-testid': 'emoji-input', dataset: { key: 'emoji-input' },
    });
    const error = h('span', { class: 'form-error', role: 'alert' });
    const form = h('form', { class: 'emoji-other' }, other,
      h('button', { type: 'submit', dataset: { key: 'emoji-add' }, 'data-testid': 'emoji-add' }, 'Add'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const emoji = other.value.trim();
      if (!isSingleEmoji(emoji)) {
        error.textContent = 'Type one emoji.';
        return;
      }
      pickReaction(m.seq, emoji);
    });
    const el = h('div', { class: 'reaction-picker', role: 'group', 'aria-label': 'Add a reaction', 'data-testid': 'reaction-picker' },
      h('div', { class: 'quick-reactions' }, ...QUICK_REACTIONS.map((emoji) => h('button', {
        type: 'button', class: 'emoji-button', 'aria-label': `React with ${emoji}`, title: `React with ${emoji}`,
        dataset: { key: `pick${emoji}`, emoji, testid: 'quick-reaction' }, onclick: () => pickReaction(m.seq, emoji),
      }, emoji))),
      form, error);
    el.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        closePicker(true);
      }
    });
    picker = { seq: m.seq, el };
    rerenderList();
    el.querySelector('button')?.focus({ preventScroll: true });
  }

  function pickReaction(seq, emoji) {
    chat.react(id, seq, emoji);
    closePicker(true);
  }

  function closePicker(returnFocus) {
    if (!picker) return;
    const { seq } = picker;
    picker = null;
    rerenderList();
    if (returnFocus) list.querySelector(`[data-key="react${seq}"]`)?.focus({ preventScroll: true });
  }

  /** A click anywhere else closes the picker, as menus do. */
  function onPointerDown(event) {
    if (picker && !picker.el.contains(event.target) && !event.target.closest?.('[data-action="react"]')) closePicker(false);
  }
  document.addEventListener('pointerdown', onPointerDown);

  function startReply(m) {
    replyTo = { seq: m.seq };
    renderReplyBar();
    input.focus();
  }

  function cancelReply() {
    replyTo = null;
    renderReplyBar();
    input.focus();
  }

  function renderReplyBar() {
    const m = replyTo && held(replyTo.seq);
    const text = m ? (m.deleted ? 'message deleted' : snippetOf(m)) : '';
    const key = m ? `${m.seq}\u0000${nameOf(m.from)}\u0000${text}` : '';
    if (replyBar.dataset.key === key) return;
    replyBar.dataset.key = key;
    replyBar.hidden = !m;
    if (!m) {
      replyBar.replaceChildren();
      return;
    }
    replyBar.replaceChildren(
      h('span', { class: 'reply-bar-text', 'data-testid': 'reply-bar-text' },
        'Replying to ', h('strong', {}, nameOf(m.from)), ': ', m.deleted ? h('em', {}, text) : text),
      h('button', {
        type: 'button', class: 'reply-cancel', 'aria-label': 'Cancel reply', 'data-testid': 'reply-cancel', onclick: cancelReply,
      }, '×'));
  }

  /** Scrolls to a reply's original, fetching older pages until it is there, and flashes it. */
  async function jumpTo(seq, missing = 'The original message is not available.') {
    const found = await chat.loadAround(id, seq);
    render();
    const target = list.querySelector(`[data-seq="${seq}"]`);
    if (!found || !target) {
      store.setChangeError(id, missing);
      return;
    }
    clearTimeout(highlightTimer);
    for (const el of list.querySelectorAll('.message.highlight')) el.classList.remove('highlight');
    highlightSeq = seq;
    target.classList.add('highlight');
    target.scrollIntoView({ block: 'center' });
    target.focus({ preventScroll: true });
    highlightTimer = setTimeout(() => {
      highlightSeq = null;
      list.querySelector(`[data-seq="${seq}"]`)?.classList.remove('highlight');
    }, HIGHLIGHT_MS);
  }

  /** The quoted original above a reply: as it reads now when we hold it, else the server's snippet. */
  function quoteEl(ref, key) {
    const original = held(ref.seq);
    const from = original?.from ?? ref.from;
    const deleted = original ? Boolean(original.deleted) : Boolean(ref.deleted);
    const snippet = original ? snippetOf(original) : firstLine(ref.snippet ?? '');
    const name = from === undefined ? 'a message' : nameOf(from);
    return h('button', {
      type: 'button', class: 'reply-quote', 'data-testid': 'reply-quote', dataset: { key, replySeq: ref.seq },
      'aria-label': `In reply to ${name}: ${deleted ? 'message deleted' : snippet}. Show the original.`,
      onclick: () => jumpTo(ref.seq),
    },
    h('span', { class: 'reply-quote-name' }, name),
    deleted ? h('em', { class: 'reply-quote-text deleted-text' }, 'message deleted') : h('span', { class: 'reply-quote-text' }, snippet));
  }

  function actionsEl(m) {
    if (m.deleted || readOnly()) return null;
    const button = (action, label, onclick) => h('button', {
      type: 'button', class: 'message-action', 'aria-label': label, title: label,
      dataset: { key: `${action}${m.seq}`, action, testid: `${action}-message` }, onclick,
    }, label);
    const react = button('react', 'React', () => togglePicker(m));
    react.setAttribute('aria-expanded', String(picker?.seq === m.seq));
    return h('div', { class: 'message-actions', role: 'group', 'aria-label': 'Message actions' },
      button('reply', 'Reply', () => startReply(m)), react,
      canEdit(m) ? button('edit', 'Edit', () => startEdit(m)) : null,
      canDelete(m) ? button('delete', 'Delete', () => confirmDelete(m)) : null);
  }

  /** Chips under a message: the emoji and a count; who reacted in the title and the accessible name. */
  function reactionsEl(m) {
    if (m.deleted || !m.reactions?.length) return null;
    return h('div', { class: 'reactions', 'data-testid': 'reactions' }, ...m.reactions.map((r) => {
      const mine = r.users.includes(state.me.id);
      const names = nameList(r.users.map((u) => (u === state.me.id ? 'You' : nameOf(u))));
      const count = r.users.length;
      return h('button', {
        type: 'button', class: `reaction${mine ? ' mine' : ''}`, 'aria-pressed': String(mine), disabled: readOnly(),
        title: `${names} reacted with ${r.emoji}`,
        'aria-label': `${r.emoji} ${count}: ${names}`,
        dataset: { key: `r${m.seq}:${r.emoji}`, emoji: r.emoji, names, testid: 'reaction' },
        onclick: () => chat.react(id, m.seq, r.emoji),
      }, h('span', { class: 'reaction-emoji', 'aria-hidden': 'true' }, r.emoji),
      h('span', { class: 'reaction-count', 'aria-hidden': 'true' }, String(count)));
    }));
  }

  function messageEl(m, pending) {
    const isEditing = !pending && editing?.seq === m.seq;
    const classes = ['message'];
    if (pending) classes.push('pending', pending.status);
    if (m.deleted) classes.push('deleted');
    if (isEditing) classes.push('editing');
    if (!pending && m.seq === highlightSeq) classes.push('highlight');
    const node = h('div', {
      class: classes.join(' '),
      'data-testid': 'message',
      // Focusable so a tap (touch screens have no hover) or the keyboard can reach its actions.
      tabindex: pending ? null : '-1',
      dataset: pending ? { clientId: pending.client_id, status: pending.status } : { seq: m.seq, key: `m${m.seq}` },
    });
    if (m.reply_to) node.append(quoteEl(m.reply_to, pending ? `q${pending.client_id}` : `q${m.seq}`));
    if (isEditing) {
      node.append(editing.form);
    } else {
      node.append(h('div', { class: 'message-body' }, m.deleted ? h('em', { class: 'deleted-text' }, 'message deleted') : messageText(m)));
      if (!m.deleted) node.append((pending ? pendingFilesEl(pending.fileInfo) : filesEl(id, m.files)) ?? '');
      if (m.edited_at && !m.deleted) {
        node.append(h('span', { class: 'message-edited', 'data-testid': 'edited', title: `Edited ${fullTime(m.edited_at)}` }, ' (edited)'));
      }
    }
    node.append(h('time', { class: 'message-time', datetime: new Date(m.sent_at).toISOString(), title: fullTime(m.sent_at) }, timeLabel(m.sent_at)));
    if (pending) {
      node.append(pendingStatus(pending));
      return node;
    }
    if (!isEditing) node.append(actionsEl(m) ?? '');
    node.append(reactionsEl(m) ?? '');
    if (picker?.seq === m.seq) node.append(picker.el);
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
      ...pending.map((p) => ({
        m: { from: state.me.id, body: p.body, sent_at: p.at, reply_to: p.reply_to ? { seq: p.reply_to } : undefined }, pending: p,
      })),
    ];
    // The message being edited (or reacted to) may have been deleted meanwhile.
    const gone = (seq) => !t.messages.has(seq) || Boolean(t.messages.get(seq).deleted);
    if (editing && gone(editing.seq)) editing = null;
    if (picker && gone(picker.seq)) picker = null;
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
      if (isRoom && !p && m === messages.at(-1)) {
        const node = seenBy(m);
        if (node) group.body.append(node);
      }
      prev = m;
    }
    return { nodes, messages };
  }

  function renderEdge(t, count) {
    let text = '';
    if (t.error) text = `Could not load messages: ${t.error}`;
    else if (t.loading) text = 'Loading messages…';
    else if (t.loaded && !t.hasMore) {
      if (isRoom) text = count ? `This is the beginning of ${otherName()}.` : `No messages in ${otherName()} yet.`;
      else text = count ? `This is the beginning of your conversation with ${otherName()}.` : `No messages yet. Say hello to ${otherName()}!`;
    }
    edge.textContent = text;
    edge.classList.toggle('error', Boolean(t.error));
  }

  function renderList() {
    const t = store.timeline(id);
    const pinned = stickToBottom && !t.hasNewer;
    const prevHeight = scroller.scrollHeight;
    const prevTop = scroller.scrollTop;
    const { nodes, messages } = buildList(t);
    replaceKeepingFocus(list, nodes, { preventScroll: true });
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
    if (t.hasNewer) pill.hidden = false;
    setText(pill, t.hasNewer ? 'Jump to the latest messages ↓' : 'New messages ↓');
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
    renderNotice();
    renderReplyBar();
    setText(changeError, state.changeErrors.get(id) ?? '');
    const rev = store.rev(id);
    if (rev !== renderedRev) {
      renderedRev = rev;
      renderList();
    }
  }

  const unsubscribe = store.subscribe(render);
  render();
  applyPanel();

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
    /** Shows message `seq` (a search hit, a link to it), loading the history around it. */
    jumpTo(seq) {
      return jumpTo(seq, 'That message is not available any more.');
    },
    destroy() {
      unsubscribe();
      clearTimeout(highlightTimer);
      document.removeEventListener('pointerdown', onPointerDown);
      attachments.destroy();
      narrow.removeEventListener('change', applyPanel);
      store.saveDraft(id, input.value);
    },
  };
}
