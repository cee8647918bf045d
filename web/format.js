// Formatting of names, times and message text. Pure functions of their inputs (plus the clock).
import { h } from './dom.js';

export function initials(name) {
  const words = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : [words[0] || '?'];
  return letters.map((w) => [...w][0]).join('').toUpperCase();
}

/** A stable colour per user: the golden-angle step keeps neighbouring ids far apart on the wheel. */
export function avatarHue(id) {
  return (Number(id) * 137) % 360;
}

/** Where a user's profile picture is; the version in the URL makes it cacheable for good. */
export function avatarUrl(user) {
  return `/api/users/${encodeURIComponent(user.id)}/avatar?v=${encodeURIComponent(user.avatar)}`;
}

/**
 * The person's picture when they set one, else their initials on a colour of their own. A picture
 * that fails to load falls back to the initials.
 */
export function avatar(user, size = 'md') {
  const el = h('span', { class: `avatar avatar-${size}`, 'aria-hidden': 'true', dataset: { testid: 'avatar', userId: user?.id ?? '' } },
    initials(user?.display_name));
  el.style.backgroundColor = `hsl(${avatarHue(user?.id ?? 0)} 52% 42%)`;
  if (user?.avatar && user.id !== undefined) {
    const img = h('img', { class: 'avatar-img', src: avatarUrl(user), alt: '', decoding: 'async', 'data-testid': 'avatar-img' });
    img.addEventListener('error', () => img.remove());
    el.append(img);
  }
  return el;
}

/** "812 B", "14 KB", "3.2 MB": a file's size as people read it (powers of 1000, as the flag is). */
export function fileSize(bytes) {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/**
 * Text with the given parts in <mark>: `ranges` are UTF-8 byte offsets [start, end) on character
 * boundaries (as the search API gives them). Only `max` characters around the first mark are kept,
 * with "…" where text was cut; line breaks become spaces (one line per hit).
 */
export function highlighted(text, ranges, max = 240) {
  const bytes = new TextEncoder().encode(text);
  const decoder = new TextDecoder();
  const toChar = (byte) => decoder.decode(bytes.subarray(0, Math.min(byte, bytes.length))).length;
  const marks = ranges.map(([a, b]) => [toChar(a), toChar(b)]).filter(([a, b]) => b > a);
  const flat = text.replace(/[\r\n]/g, ' ');
  let from = 0;
  if (flat.length > max && marks.length) from = Math.max(0, Math.min(marks[0][0] - Math.floor(max / 4), flat.length - max));
  const to = Math.min(flat.length, from + max);
  const frag = document.createDocumentFragment();
  if (from > 0) frag.append('…');
  let at = from;
  for (const [a, b] of marks) {
    const start = Math.max(a, at);
    const end = Math.min(b, to);
    if (end <= start) continue;
    frag.append(flat.slice(at, start), h('mark', {}, flat.slice(start, end)));
    at = end;
  }
  frag.append(flat.slice(at, to));
  if (to < flat.length) frag.append('…');
  return frag;
}

/** "just now", "5 min ago", "3 h ago", "yesterday", "4 days ago", or a date; `seconds` is Unix seconds. */
export function relativeTime(seconds, nowMs = Date.now()) {
  if (seconds == null) return 'never';
  const diff = Math.max(0, Math.round(nowMs / 1000 - seconds));
  if (diff < 60) return 'just now';
  if (diff < 3600) return `${Math.floor(diff / 60)} min ago`;
  if (diff < 86400) return `${Math.floor(diff / 3600)} h ago`;
  const days = Math.floor(diff / 86400);
  if (days === 1) return 'yesterday';
  if (days < 7) return `${days} days ago`;
  return new Date(seconds * 1000).toLocaleDateString(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
}

export function dayKey(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function dayLabel(ms, nowMs = Date.now()) {
  const today = new Date(nowMs);
  today.setHours(0, 0, 0, 0);
  const day = new Date(ms);
  day.setHours(0, 0, 0, 0);
  const days = Math.round((today - day) / 86400000);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  const sameYear = day.getFullYear() === today.getFullYear();
  return day.toLocaleDateString(undefined, {
    weekday: 'long', day: 'numeric', month: 'long', year: sameYear ? undefined : 'numeric',
  });
}

export function timeLabel(ms) {
  return new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

export function fullTime(ms) {
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'full', timeStyle: 'short' });
}

// Candidate links: http(s) only. Trailing punctuation is usually the sentence, not the URL.
const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING = /[.,;:!?'")\]*]+$/;

/**
 * Plain text with mentions wrapped in spans. `found` lists them ({name, index, length}, as
 * store.mentionedNames gives); `isMention(name)` says which count; `self` is the reader's username,
 * highlighted more strongly (as is @room).
 */
export function mentionify(text, found, { isMention, self }) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const { name, index, length } of found) {
    if (!isMention(name)) continue;
    frag.append(text.slice(last, index));
    const own = name === 'room' || name === self;
    frag.append(h('span', { class: own ? 'mention mention-me' : 'mention', dataset: { mention: name } }, text.slice(index, index + length)));
    last = index + length;
  }
  frag.append(text.slice(last));
  return frag;
}

/** The http(s) links in `text`: {index, raw, url}, less the sentence's trailing punctuation. */
function findLinks(text) {
  const found = [];
  for (const match of text.matchAll(URL_RE)) {
    let raw = match[0];
    const trail = raw.match(TRAILING);
    // Keep a closing parenthesis that closes one inside the URL (Wikipedia-style links).
    if (trail && !(trail[0] === ')' && raw.includes('('))) raw = raw.slice(0, -trail[0].length);
    let url;
    try { url = new URL(raw); } catch { continue; }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') continue;
    found.push({ index: match.index, raw, url });
  }
  return found;
}

/**
 * Message text as nodes: http/https URLs become links that open in a new tab, the rest is text
 * (passed through `plain` when given, e.g. to mark mentions).
 */
export function linkify(text, plain = (t) => t) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const { index, raw, url } of findLinks(text)) {
    frag.append(plain(text.slice(last, index)));
    frag.append(h('a', { href: url.href, rel: 'noopener noreferrer', target: '_blank' }, raw));
    last = index + raw.length;
  }
  frag.append(plain(text.slice(last)));
  return frag;
}

// ---- formatting people type anyway: *bold*, _italic_, `code`, ``` fenced blocks ```; line breaks
// are kept by the stylesheet (pre-wrap). Everything is built from nodes: the text stays text.

const FENCE_RE = /```([\s\S]*?)```/g;
const CODE_RE = /`([^`\n]+)`/g;
// A delimiter opens only at the start of a word and closes only at the end of one, on the same
// line, so snake_case_names, 2*3*4 and "a * b" stay as they are.
const OPENER_RE = /(?<![\p{L}\p{N}*_])[*_](?=[^\s*_])/gu;
const WORDISH = /[\p{L}\p{N}*_]/u;

/** Where the links are in `text` (as linkify finds them), as [start, end) pairs. */
function linkRanges(text) {
  return findLinks(text).map(({ index, raw }) => [index, index + raw.length]);
}

/** The first emphasis span whose delimiters are outside links: {open, close}, or null. */
function findEmphasis(text) {
  const links = linkRanges(text);
  const inLink = (i) => links.some(([a, b]) => i >= a && i < b);
  for (const match of text.matchAll(OPENER_RE)) {
    const open = match.index;
    if (inLink(open)) continue;
    const mark = text[open];
    for (let close = text.indexOf(mark, open + 2); close !== -1; close = text.indexOf(mark, close + 1)) {
      if (text.slice(open, close).includes('\n')) break;
      const before = text[close - 1];
      const after = text[close + 1];
      if (/\s/.test(before) || before === '*' || before === '_') continue;
      if (after !== undefined && WORDISH.test(after)) continue;
      if (inLink(close)) continue;
      return { open, close };
    }
  }
  return null;
}

/** Bold and italic around text that linkify and `plain` render; never splits a link. */
function emphasize(text, plain) {
  const found = findEmphasis(text);
  if (!found) return linkify(text, plain);
  const { open, close } = found;
  const frag = document.createDocumentFragment();
  frag.append(linkify(text.slice(0, open), plain));
  frag.append(h(text[open] === '*' ? 'strong' : 'em', {}, emphasize(text.slice(open + 1, close), plain)));
  frag.append(emphasize(text.slice(close + 1), plain));
  return frag;
}

function inline(text, plain) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(CODE_RE)) {
    frag.append(emphasize(text.slice(last, match.index), plain));
    frag.append(h('code', { class: 'inline-code' }, match[1]));
    last = match.index + match[0].length;
  }
  frag.append(emphasize(text.slice(last), plain));
  return frag;
}

/**
 * Message text as nodes: fenced code blocks, inline code, bold and italic, links, and the rest
 * through `plain` (e.g. to mark mentions). Code shows exactly what was typed.
 */
export function formatText(text, plain = (t) => t) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(FENCE_RE)) {
    const code = match[1].replace(/^[^\S\n]*\n/, '').replace(/\n[^\S\n]*$/, '');
    if (!code) continue;
    // The line break around a block is the block's own (it is a block already).
    frag.append(inline(text.slice(last, match.index).replace(/\n$/, ''), plain));
    frag.append(h('pre', { class: 'code-block' }, h('code', {}, code)));
    last = match.index + match[0].length;
    if (text[last] === '\n') last += 1;
  }
  frag.append(inline(text.slice(last), plain));
  return frag;
}

/** A message as one line of plain text (previews, notifications): its text, else its files' names. */
export function summaryText(msg) {
  if (msg.deleted) return 'message deleted';
  const text = (msg.body ?? '').replace(/\s+/g, ' ').trim();
  if (text || !msg.files?.length) return text;
  const pictures = msg.files.every((f) => f.thumb);
  return `${pictures ? 'Picture' : 'File'}${msg.files.length > 1 ? 's' : ''}: ${msg.files.map((f) => f.name).join(', ')}`;
}

/** The first line of a message, for quotes and the reply bar. */
export function firstLine(text, max = 120) {
  const line = String(text ?? '').split('\n').find((l) => l.trim()) ?? '';
  const chars = [...line.trim()];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : chars.join('');
}

/** One emoji (a single grapheme that is pictographic), as a reaction must be; at most 32 bytes. */
export function isSingleEmoji(text) {
  if (!text || new TextEncoder().encode(text).length > 32) return false;
  const graphemes = [...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(text)];
  return graphemes.length === 1 && /\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20E3/u.test(text);
}

export function dmId(a, b) {
  const [lo, hi] = a < b ? [a, b] : [b, a];
  return `dm:${lo}:${hi}`;
}
