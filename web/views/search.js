// Message search (#/search/<query>): one box over every conversation the user is in, filters typed
// in the box, newest or best first. Each hit shows where and who with the matched words marked, and
// opens its conversation at that message (#/room/<n>/<seq>, #/dm/<username>/<seq>).
import { h } from '../dom.js';
import { avatar, fullTime, highlighted, relativeTime, timeLabel, dayKey } from '../format.js';
import * as api from '../api.js';
import * as store from '../store.js';
import { page } from './pages.js';

const LIMIT = 50;
const SORT_KEY = 'confab.search.sort';
const FILTERS = [
  ['from:alice', 'sent by alice'],
  ['in:general', 'in that room (in:@bob: your direct messages with bob)'],
  ['has:file', 'with a file or picture'],
  ['after:2026-01-31', 'sent after that day (before: for the days before)'],
  ['"two words"', 'these words together'],
];

/** The hash that shows search results for `query`. */
export function searchHref(query) {
  return `#/search/${encodeURIComponent(query)}`;
}

/** Where a hit opens: its conversation, scrolled to it. */
function hitHref(msg) {
  const href = store.hrefFor(msg.conversation);
  return href.startsWith('#/c/') ? href : `${href}/${msg.seq}`;
}

function whereText(msg) {
  if (msg.conversation.startsWith('room:')) return ` in # ${store.conversationName(msg.conversation)}`;
  const other = store.otherMember(msg.conversation);
  return other === msg.from ? ' in a direct message' : ` in a direct message with ${store.conversationName(msg.conversation)}`;
}

function hitEl(hit) {
  const m = hit.message;
  const sender = store.userById(m.from);
  const when = dayKey(m.sent_at) === dayKey(Date.now()) ? timeLabel(m.sent_at) : relativeTime(m.sent_at / 1000);
  const files = (m.files ?? []).map((f) => f.name).join(', ');
  const link = h('a', {
    href: hitHref(m), class: 'mention-item search-hit',
    dataset: { testid: 'search-hit', conversationId: m.conversation, seq: m.seq },
  },
  avatar(sender ?? { id: m.from, display_name: '?' }),
  h('span', { class: 'mention-text' },
    h('span', { class: 'entry-top' },
      h('span', { class: 'entry-name' }, sender?.display_name ?? 'Someone', h('span', { class: 'muted' }, whereText(m))),
      h('time', { class: 'entry-time', datetime: new Date(m.sent_at).toISOString(), title: fullTime(m.sent_at) }, when)),
    h('span', { class: 'mention-body search-snippet', 'data-testid': 'search-snippet' }, highlighted(m.body, hit.highlights ?? [])),
    files ? h('span', { class: 'muted search-files' }, `Files: ${files}`) : null));
  // The same hit clicked again (after scrolling away) shows the message again.
  link.addEventListener('click', (event) => {
    if (link.getAttribute('href') !== location.hash) return;
    event.preventDefault();
    dispatchEvent(new HashChangeEvent('hashchange'));
  });
  return h('li', {}, link);
}

export function createSearchView({ onBack }) {
  const input = h('input', {
    type: 'search', class: 'filter-input', id: 'search-page-input', autocomplete: 'off', spellcheck: 'false',
    'aria-label': 'Search messages', placeholder: 'Words, "a phrase", from:name, in:room, has:file, after:2026-01-31',
    'data-testid': 'search-page-input',
  });
  const sort = h('select', { class: 'level-select', 'aria-label': 'Order', 'data-testid': 'search-sort' },
    h('option', { value: 'newest' }, 'Newest first'), h('option', { value: 'best' }, 'Best match first'));
  try { sort.value = localStorage.getItem(SORT_KEY) === 'best' ? 'best' : 'newest'; } catch { /* newest */ }
  const status = h('p', { class: 'muted search-status', role: 'status', 'data-testid': 'search-status' });
  const list = h('ul', { class: 'mention-list', 'data-testid': 'search-results' });
  const form = h('form', { class: 'search-form', role: 'search' }, input, sort,
    h('button', { type: 'submit', class: 'primary' }, 'Search'));
  const help = h('details', { class: 'search-help' }, h('summary', {}, 'Filters'),
    h('ul', {}, ...FILTERS.map(([example, meaning]) => h('li', {}, h('code', { class: 'inline-code' }, example), ` ${meaning}`))),
    h('p', { class: 'muted' }, 'Words match the start of words ("inv" finds "invoice"); case and accents do not matter.'));

  let query = '';
  let asked = 0; // answers to an older query are dropped
  let retry = null;

  async function run() {
    clearTimeout(retry);
    asked += 1;
    const mine = asked;
    status.classList.remove('form-error');
    if (!query.trim()) {
      list.replaceChildren();
      status.textContent = 'Type words to find, or a filter such as from:name.';
      return;
    }
    status.textContent = 'Searching…';
    const params = new URLSearchParams({ q: query, sort: sort.value, limit: String(LIMIT) });
    try {
      const res = await api.get(`/api/search?${params}`);
      if (mine !== asked) return;
      const hits = res.hits ?? [];
      list.replaceChildren(...hits.map(hitEl));
      const count = hits.length === 1 ? '1 message' : `${hits.length >= LIMIT ? 'The first ' : ''}${hits.length} messages`;
      status.textContent = hits.length ? count : 'No messages found.';
      if (!res.complete) status.textContent += ' Some may be missing while the server catches up.';
    } catch (e) {
      if (mine !== asked) return;
      list.replaceChildren();
      if (e.code === 'search_unavailable') {
        status.textContent = 'Search is getting ready (the index is being built). Trying again…';
        retry = setTimeout(run, 2000);
        return;
      }
      status.classList.add('form-error');
      status.textContent = e.message;
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = input.value.trim();
    if (searchHref(next) === location.hash) run();
    else location.hash = searchHref(next);
  });
  sort.addEventListener('change', () => {
    try { localStorage.setItem(SORT_KEY, sort.value); } catch { /* not remembered */ }
    run();
  });

  const el = page('Search', 'Messages in your rooms and conversations', onBack, 'search-page', form, help, status, list);
  return {
    el,
    mounted() {},
    focus() {
      input.focus();
      input.select();
    },
    /** Shows the results for `text` (the part of the hash after #/search/). */
    setQuery(text) {
      query = text;
      input.value = text;
      run();
    },
    destroy() {
      clearTimeout(retry);
      asked += 1;
    },
  };
}
