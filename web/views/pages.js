// Pages beside the conversations: the latest mentions, and the user's settings (who may message
// them, blocked people).
import { h } from '../dom.js';
import { avatar, fullTime, relativeTime, timeLabel, dayKey } from '../format.js';
import * as api from '../api.js';
import * as store from '../store.js';
import * as chat from '../chat.js';
import { messageText } from './conversation.js';

const MENTIONS_LIMIT = 50;

/** A page in the pane: a header with a back button, then its body. */
export function page(title, subtitle, onBack, testid, ...body) {
  return h('section', { class: 'page', 'data-testid': testid },
    h('header', { class: 'pane-header' },
      h('button', { type: 'button', class: 'back', onclick: onBack, 'aria-label': 'Back to conversations' }, '‹'),
      h('div', { class: 'conv-heading' }, h('h1', { class: 'conv-title' }, title), h('p', { class: 'conv-status' }, subtitle))),
    h('div', { class: 'page-body' }, ...body));
}

/** The newest messages that mention the user (or @room); each opens its conversation. */
export function createMentionsView({ onBack }) {
  const list = h('ul', { class: 'mention-list', 'data-testid': 'mention-list' });
  const status = h('p', { class: 'muted', role: 'status' }, 'Loading…');

  const whenText = (m) => (dayKey(m.sent_at) === dayKey(Date.now()) ? timeLabel(m.sent_at) : relativeTime(m.sent_at / 1000));

  function item(m) {
    const sender = store.userById(m.from);
    const when = whenText(m);
    const where = store.conversationName(m.conversation);
    return h('li', {}, h('a', {
      href: store.hrefFor(m.conversation), class: 'mention-item',
      dataset: { testid: 'mention-item', conversationId: m.conversation, seq: m.seq },
    },
    avatar(sender ?? { id: m.from, display_name: '?' }),
    h('span', { class: 'mention-text' },
      h('span', { class: 'entry-top' },
        h('span', { class: 'entry-name' }, sender?.display_name ?? 'Someone',
          h('span', { class: 'muted' }, m.conversation.startsWith('room:') ? ` in # ${where}` : ' in a direct message')),
        h('time', { class: 'entry-time', datetime: new Date(m.sent_at).toISOString(), title: fullTime(m.sent_at) }, when)),
      h('span', { class: 'mention-body' }, messageText(m)))));
  }

  let messages = null; // until /api/mentions answers
  let drawn = null; // what the list shows: redrawn only when it changes

  /**
   * Draws the list, again whenever a sender or a room is known better (after a reload the mentions
   * may arrive before the people directory and the conversation list) or a time reads differently.
   */
  function render() {
    if (!messages) return;
    // The body's @names are marked once the directory knows them.
    const key = [store.state.users.size, ...messages.map((m) => {
      const sender = store.userById(m.from);
      return [m.conversation, m.seq, sender?.display_name, sender?.avatar, store.conversationName(m.conversation), whenText(m),
        ...(m.mentions ?? []).map((id) => store.userById(id)?.username)].join('\u0001');
    })].join('\u0000');
    if (key === drawn) return;
    drawn = key;
    list.replaceChildren(...messages.map(item));
  }

  async function load() {
    try {
      const res = await api.get(`/api/mentions?limit=${MENTIONS_LIMIT}`);
      messages = res.messages ?? [];
      render();
      status.textContent = messages.length ? '' : 'Nobody has mentioned you yet.';
    } catch (e) {
      status.textContent = `Could not load mentions: ${e.message}`;
    }
  }
  const unsubscribe = store.subscribe(render);
  load();
  return {
    el: page('Mentions', 'Messages that mention you or @room', onBack, 'mentions-page', status, list),
    mounted() {}, focus() {},
    destroy() { unsubscribe(); },
  };
}

/** The largest picture the server takes for a profile picture (it keeps a 256 px square of it). */
const MAX_AVATAR_BYTES = 10_000_000;

/** Why a profile picture was refused, in words. */
function avatarError(error) {
  switch (error.code) {
    case 'file_too_large': return 'That picture is too large: pick one under 10 MB.';
    case 'image_too_large': return 'That picture has too many pixels: pick a smaller one.';
    case 'not_an_image': return 'That file is not a picture confab can read (JPEG, PNG, GIF or WebP).';
    default: return error.message;
  }
}

/**
 * Profile picture: pick one (shown as it will look, cropped to a circle) and save it, or remove it
 * to go back to the initials. The server crops it square and keeps only a small copy.
 */
function avatarPanel() {
  const { state } = store;
  const current = h('span', { class: 'avatar-preview', 'data-testid': 'avatar-current' });
  const preview = h('img', { class: 'avatar-preview-img', alt: 'The new picture', hidden: true, 'data-testid': 'avatar-preview' });
  const fileInput = h('input', { type: 'file', accept: 'image/jpeg,image/png,image/gif,image/webp', hidden: true, 'data-testid': 'avatar-input' });
  const choose = h('button', { type: 'button', 'data-testid': 'avatar-choose', onclick: () => fileInput.click() }, 'Choose a picture…');
  const save = h('button', { type: 'button', class: 'primary', hidden: true, 'data-testid': 'avatar-save' }, 'Save picture');
  const cancel = h('button', { type: 'button', hidden: true }, 'Cancel');
  const remove = h('button', { type: 'button', class: 'danger-text', 'data-testid': 'avatar-remove' }, 'Remove picture');
  const error = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'avatar-error' });
  const status = h('span', { class: 'muted', role: 'status' });
  let chosen = null;

  function pick(file) {
    if (preview.src) URL.revokeObjectURL(preview.src);
    chosen = file;
    error.textContent = '';
    status.textContent = '';
    preview.hidden = !file;
    if (file) preview.src = URL.createObjectURL(file);
    else preview.removeAttribute('src');
    save.hidden = !file;
    cancel.hidden = !file;
    current.hidden = Boolean(file);
  }

  async function change(method, body, done) {
    error.textContent = '';
    status.textContent = '';
    save.disabled = true;
    remove.disabled = true;
    try {
      const res = await api.request(method, '/api/me/avatar', body);
      if (res?.user) store.applyUser(res.user);
      pick(null);
      status.textContent = done;
    } catch (e) {
      error.textContent = avatarError(e);
    } finally {
      save.disabled = false;
      remove.disabled = false;
    }
  }

  fileInput.addEventListener('change', () => {
    const file = fileInput.files[0];
    fileInput.value = '';
    if (!file) return;
    if (file.size > MAX_AVATAR_BYTES) {
      pick(null);
      error.textContent = avatarError({ code: 'file_too_large' });
      return;
    }
    pick(file);
  });
  save.addEventListener('click', () => { if (chosen) change('PUT', chosen, 'Saved. Everyone sees the new picture.'); });
  cancel.addEventListener('click', () => pick(null));
  remove.addEventListener('click', () => change('DELETE', undefined, 'Removed: your initials show again.'));

  let shown = null;
  function render() {
    const me = state.me;
    if (!me) return;
    const key = `${me.id}:${me.display_name}:${me.avatar ?? ''}`;
    remove.hidden = !me.avatar;
    if (key === shown) return;
    shown = key;
    current.replaceChildren(avatar(me, 'lg'));
  }

  const el = h('section', { class: 'panel', 'aria-labelledby': 'avatar-heading', 'data-testid': 'avatar-panel' },
    h('h2', { id: 'avatar-heading' }, 'Profile picture'),
    h('div', { class: 'avatar-row' }, current, preview,
      h('div', { class: 'avatar-actions' },
        h('p', { class: 'muted' }, 'Shown next to your name everywhere. It is cropped to a square; without one, your initials show.'),
        h('div', { class: 'dialog-actions avatar-buttons' }, choose, save, cancel, remove, fileInput), status)),
    error);
  return { el, render, destroy: () => pick(null) };
}

export function createSettingsView({ onBack }) {
  const { state } = store;
  const picture = avatarPanel();
  const policyError = h('p', { class: 'form-error', role: 'alert' });
  const saved = h('span', { class: 'muted', role: 'status' });
  let chosen = false; // the user picked a policy: a late answer to the first load must not undo it
  let saving = null; // the policy being saved: redraws meanwhile show it, not the one stored until then
  const radio = (value, label, hint) => {
    const input = h('input', { type: 'radio', name: 'dm_policy', value, 'data-testid': `dm-policy-${value}` });
    input.addEventListener('change', async () => {
      chosen = true;
      saving = value;
      policyError.textContent = '';
      saved.textContent = '';
      try {
        await chat.setDmPolicy(value);
        saved.textContent = 'Saved.';
      } catch (e) {
        policyError.textContent = e.message;
      } finally {
        if (saving === value) saving = null;
        render();
      }
    });
    return { input, el: h('label', {}, input, h('span', {}, h('strong', {}, label), h('span', { class: 'muted' }, ` — ${hint}`))) };
  };
  const anyone = radio('anyone', 'Anyone can message me', 'a first message arrives like any other');
  const ask = radio('ask', 'Ask me first', 'a first message from someone new waits for you to accept it');

  const blockedList = h('ul', { class: 'entries blocked-list', 'data-testid': 'blocked-list' });
  const blockError = h('p', { class: 'form-error', role: 'alert' });

  function render() {
    picture.render();
    const policy = saving ?? state.me?.dm_policy ?? 'anyone';
    anyone.input.checked = policy === 'anyone';
    ask.input.checked = policy === 'ask';
    const blocked = [...state.blocked].map((id) => store.userById(id) ?? { id, display_name: `User ${id}`, username: '' })
      .sort((a, b) => a.display_name.localeCompare(b.display_name));
    const key = blocked.map((u) => `${u.id}:${u.display_name}:${u.avatar ?? ''}`).join(',');
    if (blockedList.dataset.key === key) return;
    blockedList.dataset.key = key;
    blockedList.replaceChildren(...(blocked.length ? blocked.map((u) => h('li', { class: 'member', dataset: { testid: 'blocked-person', userId: u.id } },
      avatar(u, 'sm'), h('span', { class: 'entry-text' }, h('span', { class: 'entry-name' }, u.display_name)),
      h('button', {
        type: 'button', class: 'icon-button', 'aria-label': `Unblock ${u.display_name}`,
        onclick: async () => {
          blockError.textContent = '';
          try {
            await chat.setBlock(u.id, false);
          } catch (e) {
            blockError.textContent = e.message;
          }
        },
      }, 'Unblock'))) : [h('li', { class: 'empty-note' }, 'You have not blocked anyone.')]));
  }

  const el = page('Settings', state.me?.display_name ?? '', onBack, 'settings-page', picture.el,
    h('section', { class: 'panel', 'aria-labelledby': 'dm-policy-heading' },
      h('h2', { id: 'dm-policy-heading' }, 'Direct messages'),
      h('fieldset', { class: 'choice' }, h('legend', {}, 'Who can message you'), anyone.el, ask.el),
      policyError, saved),
    h('section', { class: 'panel', 'aria-labelledby': 'blocked-heading' },
      h('h2', { id: 'blocked-heading' }, 'Blocked people'),
      h('p', { class: 'muted' }, 'You receive nothing from people you block. Block someone from the header of your conversation with them.'),
      blockError, blockedList));

  const unsubscribe = store.subscribe(render);
  render();
  // The policy is not part of the user object: ask for it.
  api.get('/api/me/settings').then((res) => { if (!chosen) store.updateMe({ dm_policy: res.dm_policy }); }, (e) => {
    policyError.textContent = `Could not load your settings: ${e.message}`;
  });
  return {
    el,
    mounted() {},
    focus() {},
    destroy() {
      unsubscribe();
      picture.destroy();
    },
  };
}
