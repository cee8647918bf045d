// The administration page: list, create, rename, disable/enable, promote/demote, reset password.
import { h, field } from '../dom.js';
import { avatar, relativeTime } from '../format.js';
import * as api from '../api.js';
import { confirmDialog, openDialog, secretDialog } from './dialog.js';
import { createServerStatus } from './admin-status.js';
import { createBackupsSection } from './admin-backups.js';
import { joinSection } from './admin-join.js';

export function createAdminView({ me, onBack, onUsersChanged }) {
  const error = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'admin-error' });
  const rows = h('tbody');
  let users = [];

  // ---- create ----
  const username = h('input', { name: 'username', required: true, autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' });
  const displayName = h('input', { name: 'display_name', required: true, autocomplete: 'off' });
  const role = h('select', { name: 'role' }, h('option', { value: 'member' }, 'Member'), h('option', { value: 'admin' }, 'Administrator'));
  const createError = h('p', { class: 'form-error', role: 'alert' });
  const createButton = h('button', { type: 'submit', class: 'primary' }, 'Add person');
  const createForm = h('form', { class: 'admin-create', 'data-testid': 'create-user-form' },
    field('Username', username, 'a–z, 0–9, dot, dash, underscore'), field('Display name', displayName), field('Role', role),
    h('div', { class: 'admin-create-actions' }, createButton), createError);
  createForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    createError.textContent = '';
    createButton.disabled = true;
    try {
      const res = await api.post('/api/admin/users', {
        username: username.value.trim(), display_name: displayName.value.trim(), role: role.value,
      });
      createForm.reset();
      await reload();
      await secretDialog(`${res.user.display_name} can now sign in`,
        `Give ${res.user.display_name} their username "${res.user.username}" and this temporary password. They will choose their own password when they first sign in.`,
        res.temporary_password);
      username.focus();
    } catch (e) {
      createError.textContent = e.message;
    } finally {
      createButton.disabled = false;
    }
  });

  // ---- actions on a user ----
  async function run(action) {
    error.textContent = '';
    try {
      await action();
      await reload();
    } catch (e) {
      error.textContent = e.message;
    }
  }

  const update = (user, change) => run(() => api.patch(`/api/admin/users/${user.id}`, change));

  async function edit(user) {
    const name = h('input', { name: 'username', value: user.username, required: true, autocapitalize: 'none', spellcheck: 'false' });
    const display = h('input', { name: 'display_name', value: user.display_name, required: true });
    const dialogError = h('p', { class: 'form-error', role: 'alert' });
    await openDialog(`Rename ${user.display_name}`, (close) => {
      const form = h('form', { class: 'dialog-form' }, field('Display name', display), field('Username', name), dialogError,
        h('div', { class: 'dialog-actions' },
          h('button', { type: 'button', onclick: () => close() }, 'Cancel'),
          h('button', { type: 'submit', class: 'primary' }, 'Save')));
      form.addEventListener('submit', async (event) => {
        event.preventDefault();
        const change = {};
        if (name.value.trim() !== user.username) change.username = name.value.trim();
        if (display.value.trim() !== user.display_name) change.display_name = display.value.trim();
        if (Object.keys(change).length === 0) return close();
        try {
          await api.patch(`/api/admin/users/${user.id}`, change);
          close(true);
        } catch (e) {
          dialogError.textContent = e.message;
        }
      });
      return form;
    });
    await reload();
  }

  async function toggleDisabled(user) {
    if (!user.disabled) {
      const ok = await confirmDialog(`Disable ${user.display_name}?`,
        `${user.display_name} is signed out everywhere and cannot sign in until you enable the account again.`, 'Disable', { danger: true });
      if (!ok) return;
    }
    await update(user, { disabled: !user.disabled });
  }

  async function resetPassword(user) {
    const ok = await confirmDialog(`Reset ${user.display_name}'s password?`,
      `${user.display_name} is signed out everywhere and must sign in with a new temporary password.`, 'Reset password', { danger: true });
    if (!ok) return;
    await run(async () => {
      const res = await api.post(`/api/admin/users/${user.id}/reset-password`);
      await secretDialog(`New temporary password for ${user.display_name}`,
        `Give this to ${user.display_name}. They will choose their own password when they sign in.`, res.temporary_password);
    });
  }

  function statusText(user) {
    if (user.disabled) return 'Disabled';
    if (user.must_change_password) return 'Has a temporary password';
    return user.last_seen ? `Last seen ${relativeTime(user.last_seen)}` : 'Never signed in';
  }

  function row(user) {
    const self = user.id === me.id;
    const label = (text) => `${text} ${user.display_name}`;
    return h('tr', { dataset: { userId: user.id, testid: 'admin-user-row' }, class: user.disabled ? 'disabled' : null },
      h('td', {}, h('div', { class: 'admin-person' }, avatar(user, 'sm'),
        h('span', {}, h('span', { class: 'entry-name' }, user.display_name, self ? ' (you)' : ''), h('span', { class: 'muted' }, `@${user.username}`)))),
      h('td', {}, user.role === 'admin' ? 'Administrator' : 'Member'),
      h('td', {}, statusText(user)),
      h('td', {}, h('div', { class: 'admin-actions' },
        h('button', { type: 'button', onclick: () => edit(user), 'aria-label': label('Rename') }, 'Rename'),
        h('button', {
          type: 'button', onclick: () => update(user, { role: user.role === 'admin' ? 'member' : 'admin' }),
          'aria-label': label(user.role === 'admin' ? 'Make member:' : 'Make administrator:'),
        }, user.role === 'admin' ? 'Make member' : 'Make admin'),
        h('button', { type: 'button', onclick: () => resetPassword(user), 'aria-label': label('Reset password of') }, 'Reset password'),
        h('button', {
          type: 'button', class: user.disabled ? null : 'danger-text', onclick: () => toggleDisabled(user),
          'aria-label': label(user.disabled ? 'Enable' : 'Disable'),
        }, user.disabled ? 'Enable' : 'Disable'))));
  }

  async function reload() {
    try {
      users = await api.get('/api/admin/users');
      rows.replaceChildren(...users.map(row));
      onUsersChanged();
    } catch (e) {
      error.textContent = e.message;
    }
  }

  const server = createServerStatus();
  const el = h('section', { class: 'admin', 'data-testid': 'admin-page' },
    h('header', { class: 'pane-header' },
      h('button', { type: 'button', class: 'back', onclick: onBack, 'aria-label': 'Back to conversations' }, '‹'),
      h('div', { class: 'conv-heading' }, h('h1', { class: 'conv-title' }, 'Administration'),
        h('p', { class: 'conv-status' }, 'People who can use this server'))),
    h('div', { class: 'admin-body' },
      server.el,
      h('section', { class: 'panel', 'aria-labelledby': 'add-person-heading' }, h('h2', { id: 'add-person-heading' }, 'Add a person'), createForm),
      h('section', { class: 'panel', 'aria-labelledby': 'people-admin-heading' }, h('h2', { id: 'people-admin-heading' }, 'People'), error,
        h('div', { class: 'table-wrap' }, h('table', { class: 'admin-table' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Person'), h('th', { scope: 'col' }, 'Role'),
            h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
          rows))),
      createBackupsSection(),
      joinSection()));

  reload();
  return { el, mounted() {}, focus() { username.focus(); }, destroy() { server.destroy(); } };
}
