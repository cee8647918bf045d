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

export function avatar(user, size = 'md') {
  const el = h('span', { class: `avatar avatar-${size}`, 'aria-hidden': 'true' }, initials(user?.display_name));
  el.style.backgroundColor = `hsl(${avatarHue(user?.id ?? 0)} 52% 42%)`;
  return el;
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
const TRAILING = /[.,;:!?'")\]]+$/;

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

/**
 * Message text as nodes: http/https URLs become links that open in a new tab, the rest is text
 * (passed through `plain` when given, e.g. to mark mentions).
 */
export function linkify(text, plain = (t) => t) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let raw = match[0];
    const trail = raw.match(TRAILING);
    // Keep a closing parenthesis that closes one inside the URL (Wikipedia-style links).
    if (trail && !(trail[0] === ')' && raw.includes('('))) raw = raw.slice(0, -trail[0].length);
    let url;
    try { url = new URL(raw); } catch { continue; }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') continue;
    frag.append(plain(text.slice(last, match.index)));
    frag.append(h('a', { href: url.href, rel: 'noopener noreferrer', target: '_blank' }, raw));
    last = match.index + raw.length;
  }
  frag.append(plain(text.slice(last)));
  return frag;
}

export function dmId(a, b) {
  const [lo, hi] = a < b ? [a, b] : [b, a];
  return `dm:${lo}:${hi}`;
}
