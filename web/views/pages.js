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

  function item(m) {
    const sender = store.userById(m.from);
    const when = dayKey(m.sent_at) === dayKey(Date.now()) ? timeLabel(m.sent_at) : relativeTime(m.sent_at / 1000);
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

  async function load() {
    try {
      const res = await api.get(`/api/mentions?limit=${MENTIONS_LIMIT}`);
      const messages = res.messages ?? [];
      list.replaceChildren(...messages.map(item));
      status.textContent = messages.length ? '' : 'Nobody has mentioned you yet.';
    } catch (e) {
      status.textContent = `Could not load mentions: ${e.message}`;
    }
  }
  load();
  return {
    el: page('Mentions', 'Messages that mention you or @room', onBack, 'mentions-page', status, list),
    mounted() {}, focus() {}, destroy() {},
  };
}

export function createSettingsView({ onBack }) {
  const { state } = store;
  const policyError = h('p', { class: 'form-error', role: 'alert' });
  const saved = h('span', { class: 'muted', role: 'status' });
  let chosen = false; // the user picked a policy: a late answer to the first load must not undo it
  const radio = (value, label, hint) => {
    const input = h('input', { type: 'radio', name: 'dm_policy', value, 'data-testid': `dm-policy-${value}` });
    input.addEventListener('change', async () => {
      chosen = true;
      policyError.textContent = '';
      saved.textContent = '';
      try {
        await chat.setDmPolicy(value);
        saved.textContent = 'Saved.';
      } catch (e) {
        policyError.textContent = e.message;
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
    const policy = state.me?.dm_policy ?? 'anyone';
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

  const el = page('Settings', state.me?.display_name ?? '', onBack, 'settings-page',
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
  return { el, mounted() {}, focus() {}, destroy: unsubscribe };
}
