// The admin page's "Server" section: the few figures a person running the server needs —
// how long it has run, who is online, today's messages, disk space, the last backup.
import { h } from '../dom.js';
import { relativeTime } from '../format.js';
import * as api from '../api.js';

const REFRESH_MS = 30_000;
/** Below this much free disk space the figure is flagged: redb needs room to commit. */
const LOW_DISK_BYTES = 1024 ** 3;

export function formatBytes(bytes) {
  if (bytes == null) return 'unknown';
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatUptime(seconds) {
  const days = Math.floor(seconds / 86400);
  const hours = Math.floor((seconds % 86400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  if (days > 0) return `${days} ${days === 1 ? 'day' : 'days'}, ${hours} h`;
  if (hours > 0) return `${hours} h ${minutes} min`;
  return minutes > 0 ? `${minutes} min` : 'less than a minute';
}

function backupText(backups) {
  if (!backups.configured) return 'No backups configured';
  if (!backups.last) return 'None yet';
  return `${relativeTime(backups.last.at)} (${formatBytes(backups.last.bytes)})`;
}

function localMidnight() {
  const now = new Date();
  return new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
}

/** One label and its value; `key` names it for tests. */
function item(key, label, value, { warn = false } = {}) {
  return h('div', { class: warn ? 'server-item warn' : 'server-item', dataset: { testid: `server-${key}` } },
    h('dt', {}, label), h('dd', {}, value));
}

export function createServerStatus() {
  const list = h('dl', { class: 'server-status' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const el = h('section', { class: 'panel', 'aria-labelledby': 'server-heading', 'data-testid': 'server-status' },
    h('h2', { id: 'server-heading' }, 'Server'), error, list);

  function render(status) {
    const { disk } = status;
    const low = disk.free_bytes != null && disk.free_bytes < LOW_DISK_BYTES;
    list.replaceChildren(
      item('uptime', 'Running for', formatUptime(status.uptime_seconds)),
      item('online', 'People online', String(status.online_users)),
      item('messages', 'Messages today', String(status.messages_since)),
      item('disk-used', 'Disk used', `${formatBytes(disk.data_dir_bytes)} (database ${formatBytes(disk.database_bytes)})`),
      item('disk-free', 'Disk free', low ? `${formatBytes(disk.free_bytes)} — running low` : formatBytes(disk.free_bytes), { warn: low }),
      item('backup', 'Last backup', backupText(status.backups)),
      item('version', 'Version', status.version));
  }

  async function reload() {
    try {
      render(await api.get(`/api/admin/status?since=${localMidnight()}`));
      error.textContent = '';
    } catch (e) {
      error.textContent = e.message;
    }
  }

  reload();
  const timer = setInterval(reload, REFRESH_MS);
  return { el, destroy() { clearInterval(timer); } };
}
