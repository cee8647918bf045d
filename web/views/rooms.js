// Rooms outside the conversation pane: the create dialog, the people picker, the settings dialog,
// adding people, and the room browser (open rooms, searched by name and topic).
import { h, field } from '../dom.js';
import { avatar } from '../format.js';
import * as api from '../api.js';
import * as store from '../store.js';
import * as chat from '../chat.js';
import { openDialog, confirmDialog } from './dialog.js';

const MAX_NAME_CHARS = 64;
const MAX_TOPIC_CHARS = 250;
const SEARCH_DELAY_MS = 200;

/**
 * A filterable list of people with checkboxes. `exclude` are ids not offered (already members).
 * Returns {el, selected()}.
 */
export function peoplePicker({ exclude = new Set(), label = 'People' } = {}) {
  const chosen = new Set();
  const search = h('input', {
    type: 'search', placeholder: 'Find a person', autocomplete: 'off', spellcheck: 'false', 'data-testid': 'picker-filter',
  });
  const list = h('ul', { class: 'picker-list', 'data-testid': 'people-picker', 'aria-label': label });
  const count = h('p', { class: 'muted picker-count', 'aria-live': 'polite' });

  function render() {
    const query = search.value.trim().toLowerCase();
    const me = store.state.me;
    const people = [...store.state.users.values()]
      .filter((u) => !u.disabled && u.id !== me.id && !exclude.has(u.id))
      .filter((u) => !query || u.display_name.toLowerCase().includes(query) || u.username.includes(query))
      .sort((a, b) => a.display_name.localeCompare(b.display_name));
    list.replaceChildren(...(people.length ? people.map((u) => {
      const box = h('input', { type: 'checkbox', checked: chosen.has(u.id), dataset: { userId: u.id } });
      box.addEventListener('change', () => {
        if (box.checked) chosen.add(u.id);
        else chosen.delete(u.id);
        renderCount();
      });
      return h('li', {}, h('label', { class: 'picker-item', dataset: { testid: 'picker-person', userId: u.id } }, box, avatar(u, 'sm'),
        h('span', { class: 'entry-name' }, u.display_name), h('span', { class: 'muted' }, `@${u.username}`)));
    }) : [h('li', { class: 'empty-note' }, query ? 'Nobody matches.' : 'Everyone is already here.')]));
  }
  function renderCount() {
    count.textContent = chosen.size ? `${chosen.size} selected` : '';
  }
  search.addEventListener('input', render);
  search.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') event.preventDefault(); // not the dialog's submit
  });
  render();
  return {
    el: h('div', { class: 'picker' }, field(label, search), list, count),
    selected: () => [...chosen],
  };
}

/** Resolves the new room's summary, or undefined when cancelled. */
export function createRoomDialog() {
  const name = h('input', { name: 'name', required: true, maxlength: MAX_NAME_CHARS, autocomplete: 'off' });
  const topic = h('input', { name: 'topic', maxlength: MAX_TOPIC_CHARS, autocomplete: 'off' });
  const open = h('input', { type: 'radio', name: 'visibility', value: 'open', checked: true });
  const priv = h('input', { type: 'radio', name: 'visibility', value: 'private' });
  const picker = peoplePicker({ label: 'Add people (optional)' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  return openDialog('Create a room', (close) => {
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Create room');
    const form = h('form', { class: 'dialog-form', 'data-testid': 'create-room-form' },
      field('Name', name), field('Topic (optional)', topic),
      h('fieldset', { class: 'choice' }, h('legend', {}, 'Who can join'),
        h('label', {}, open, h('span', {}, h('strong', {}, 'Open'), ' — anyone can find it and join')),
        h('label', {}, priv, h('span', {}, h('strong', {}, 'Private'), ' — only people added by a member'))),
      picker.el, error,
      h('div', { class: 'dialog-actions' }, h('button', { type: 'button', onclick: () => close() }, 'Cancel'), submit));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.textContent = '';
      const body = { name: name.value.trim(), visibility: priv.checked ? 'private' : 'open' };
      if (topic.value.trim()) body.topic = topic.value.trim();
      const members = picker.selected();
      if (members.length) body.members = members;
      if (!body.name) {
        error.textContent = 'Give the room a name.';
        return;
      }
      submit.disabled = true;
      try {
        close(await chat.createRoom(body));
      } catch (e) {
        error.textContent = e.message;
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }, { testid: 'create-room-dialog' });
}

/** Adds the chosen people to a room one by one; stops at the first refusal and says why. */
export function addPeopleDialog(id) {
  const members = store.state.members.get(id);
  const picker = peoplePicker({ exclude: new Set(members?.keys() ?? []), label: 'People to add' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  return openDialog(`Add people to ${store.conversationName(id)}`, (close) => {
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Add');
    const form = h('form', { class: 'dialog-form', 'data-testid': 'add-people-form' }, picker.el, error,
      h('div', { class: 'dialog-actions' }, h('button', { type: 'button', onclick: () => close() }, 'Cancel'), submit));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.textContent = '';
      submit.disabled = true;
      try {
        for (const user of picker.selected()) await chat.addMember(id, user);
        close(true);
      } catch (e) {
        error.textContent = e.message;
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }, { testid: 'add-people-dialog' });
}

/** Name, topic, visibility and archiving, for the room's creator and administrators. */
export function roomSettingsDialog(id) {
  const s = store.state.conversations.get(id);
  const name = h('input', { name: 'name', required: true, maxlength: MAX_NAME_CHARS, value: s.name, autocomplete: 'off' });
  const topic = h('input', { name: 'topic', maxlength: MAX_TOPIC_CHARS, value: s.topic ?? '', autocomplete: 'off' });
  const open = h('input', { type: 'radio', name: 'visibility', value: 'open', checked: s.visibility !== 'private' });
  const priv = h('input', { type: 'radio', name: 'visibility', value: 'private', checked: s.visibility === 'private' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  return openDialog(`Room settings: ${s.name}`, (close) => {
    const archive = async () => {
      error.textContent = '';
      const archiving = !s.archived;
      if (archiving && !(await confirmDialog(`Archive ${s.name}?`,
        'The room becomes read-only and leaves everyone’s sidebar. Its history is kept.', 'Archive', { danger: true }))) return;
      try {
        await chat.updateRoom(id, { archived: archiving });
        close(true);
        if (archiving) location.hash = '#/';
      } catch (e) {
        error.textContent = e.message;
      }
    };
    const form = h('form', { class: 'dialog-form', 'data-testid': 'room-settings-form' },
      field('Name', name), field('Topic', topic),
      s.general ? null : h('fieldset', { class: 'choice' }, h('legend', {}, 'Who can join'),
        h('label', {}, open, h('span', {}, h('strong', {}, 'Open'), ' — anyone can find it and join')),
        h('label', {}, priv, h('span', {}, h('strong', {}, 'Private'), ' — only people added by a member'))),
      error,
      h('div', { class: 'dialog-actions spread' },
        s.general ? h('span') : h('button', { type: 'button', class: 'danger-text', onclick: archive, 'data-testid': 'archive-room' },
          s.archived ? 'Unarchive room' : 'Archive room'),
        h('span', { class: 'dialog-actions' },
          h('button', { type: 'button', onclick: () => close() }, 'Cancel'),
          h('button', { type: 'submit', class: 'primary' }, 'Save'))));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.textContent = '';
      const change = {};
      if (name.value.trim() !== s.name) change.name = name.value.trim();
      if (topic.value.trim() !== (s.topic ?? '')) change.topic = topic.value.trim();
      const visibility = priv.checked ? 'private' : 'open';
      if (!s.general && visibility !== s.visibility) change.visibility = visibility;
      if (Object.keys(change).length === 0) return close();
      try {
        await chat.updateRoom(id, change);
        close(true);
      } catch (e) {
        error.textContent = e.message;
      }
      return undefined;
    });
    return form;
  }, { testid: 'room-settings-dialog' });
}

/** The room browser: open rooms matching a search, with Join (or Open when already in). */
export function createRoomBrowser({ onBack }) {
  const search = h('input', {
    type: 'search', id: 'room-search', placeholder: 'Search rooms by name or topic', autocomplete: 'off',
    spellcheck: 'false', 'data-testid': 'room-search',
  });
  const list = h('ul', { class: 'browser-list', 'data-testid': 'room-browser-list', 'aria-live': 'polite' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  let timer = null;
  let asked = 0;

  async function load() {
    const ticket = ++asked;
    error.textContent = '';
    try {
      const res = await api.get(`/api/rooms?${new URLSearchParams({ q: search.value.trim() })}`);
      if (ticket !== asked) return; // a newer search is on its way
      const rooms = res.rooms ?? [];
      list.replaceChildren(...(rooms.length ? rooms.map(item)
        : [h('li', { class: 'empty-note' }, search.value.trim() ? 'No open room matches.' : 'There are no open rooms yet.')]));
    } catch (e) {
      if (ticket === asked) error.textContent = e.message;
    }
  }

  function item(room) {
    const joined = room.joined || store.state.conversations.has(room.id);
    const rowError = h('span', { class: 'form-error', role: 'alert' });
    const join = async () => {
      rowError.textContent = '';
      try {
        const summary = await chat.joinRoom(room.id);
        location.hash = store.hrefFor(summary.id);
      } catch (e) {
        if (e.code === 'already_member') location.hash = store.hrefFor(room.id);
        else rowError.textContent = e.message;
      }
    };
    return h('li', { class: 'browser-item', dataset: { testid: 'room-result', roomId: room.id } },
      h('div', { class: 'browser-text' },
        h('span', { class: 'entry-name' }, `# ${room.name}`),
        room.topic ? h('span', { class: 'muted browser-topic' }, room.topic) : null,
        h('span', { class: 'muted browser-count' }, room.member_count === 1 ? '1 member' : `${room.member_count} members`),
        rowError),
      joined
        ? h('a', { href: store.hrefFor(room.id), class: 'icon-button', 'aria-label': `Open ${room.name}` }, 'Open')
        : h('button', { type: 'button', class: 'primary', onclick: join, 'aria-label': `Join ${room.name}` }, 'Join'));
  }

  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(load, SEARCH_DELAY_MS);
  });

  const create = async () => {
    const room = await createRoomDialog();
    if (room) location.hash = store.hrefFor(room.id);
  };
  const el = h('section', { class: 'page', 'data-testid': 'room-browser' },
    h('header', { class: 'pane-header' },
      h('button', { type: 'button', class: 'back', onclick: onBack, 'aria-label': 'Back to conversations' }, '‹'),
      h('div', { class: 'conv-heading' }, h('h1', { class: 'conv-title' }, 'Browse rooms'),
        h('p', { class: 'conv-status' }, 'Open rooms anyone can join')),
      h('button', { type: 'button', class: 'primary header-action', onclick: create }, 'Create room')),
    h('div', { class: 'page-body' },
      h('label', { for: 'room-search', class: 'visually-hidden' }, 'Search rooms'), search, error, list));

  load();
  return {
    el,
    mounted() {},
    focus() { search.focus(); },
    destroy() { clearTimeout(timer); },
  };
}
