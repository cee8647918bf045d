// The administration page's backups section: the automatic backups in --backup-dir (name, size,
// time) and a link that downloads the newest.
import { h } from '../dom.js';
import { relativeTime } from '../format.js';
import * as api from '../api.js';

function size(bytes) {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1e3))} kB`;
}

function row(backup) {
  const when = new Date(backup.created_at * 1000);
  return h('tr', { dataset: { testid: 'backup-row' } },
    h('td', {}, backup.name),
    h('td', {}, size(backup.size)),
    h('td', { title: when.toLocaleString() }, relativeTime(backup.created_at)));
}

/** The section element; it loads its list once it is created. */
export function createBackupsSection() {
  const status = h('p', { class: 'muted', 'data-testid': 'backups-status' }, 'Loading…');
  const rows = h('tbody');
  const table = h('div', { class: 'table-wrap', hidden: true }, h('table', { class: 'admin-table' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Backup'), h('th', { scope: 'col' }, 'Size'),
      h('th', { scope: 'col' }, 'Made'))),
    rows));
  const download = h('a', { class: 'button', href: '/api/admin/backups/latest', download: '', hidden: true,
    'data-testid': 'download-latest-backup' }, 'Download the latest backup');

  async function load() {
    try {
      const res = await api.get('/api/admin/backups');
      if (!res.enabled) {
        status.textContent = 'Automatic backups are off. Start confab with --backup-dir to take one every night; '
          + '`confab backup FILE` makes one at any time.';
        return;
      }
      rows.replaceChildren(...res.backups.map(row));
      table.hidden = res.backups.length === 0;
      download.hidden = res.backups.length === 0;
      status.textContent = res.backups.length === 0
        ? 'No backup yet: the first is taken shortly after the server starts.'
        : `A backup is taken every 24 hours; the newest ${res.keep} are kept.`;
    } catch (e) {
      status.textContent = e.message;
    }
  }

  load();
  return h('section', { class: 'panel', 'aria-labelledby': 'backups-heading', 'data-testid': 'admin-backups' },
    h('h2', { id: 'backups-heading' }, 'Backups'), status, table, download);
}
