// Modal dialogs on the native <dialog> element: focus trapping and Esc-to-close come for free.
import { h } from '../dom.js';

/**
 * Opens a modal. `build(close)` returns the body nodes; `close(value)` resolves the promise and
 * removes the dialog. Esc resolves with undefined.
 */
export function openDialog(title, build, { testid } = {}) {
  return new Promise((resolve) => {
    const heading = h('h2', { class: 'dialog-title' }, title);
    const dialog = h('dialog', { class: 'dialog', 'data-testid': testid });
    let result;
    const close = (value) => {
      result = value;
      dialog.close();
    };
    dialog.append(heading, ...[build(close)].flat());
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    const labelId = `dialog-${Math.random().toString(36).slice(2)}`;
    heading.id = labelId;
    dialog.setAttribute('aria-labelledby', labelId);
    dialog.showModal();
  });
}

/** Resolves true when the user confirms. */
export function confirmDialog(title, text, action, { danger = false } = {}) {
  return openDialog(title, (close) => [
    h('p', {}, text),
    h('div', { class: 'dialog-actions' },
      h('button', { type: 'button', onclick: () => close(false) }, 'Cancel'),
      h('button', { type: 'button', class: danger ? 'danger' : 'primary', onclick: () => close(true) }, action)),
  ]).then(Boolean);
}

/** Shows a temporary password once, with a copy button. */
export function secretDialog(title, explanation, secret) {
  return openDialog(title, (close) => {
    const status = h('span', { class: 'copy-status', role: 'status' });
    const code = h('code', { class: 'secret', 'data-testid': 'temporary-password' }, secret);
    const copy = h('button', {
      type: 'button',
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(secret);
          status.textContent = 'Copied.';
        } catch {
          // No clipboard on plain http: select it so Ctrl+C works.
          getSelection().selectAllChildren(code);
          status.textContent = 'Press Ctrl+C to copy.';
        }
      },
    }, 'Copy');
    return [
      h('p', {}, explanation),
      h('div', { class: 'secret-row' }, code, copy, status),
      h('p', { class: 'muted' }, 'It is shown only this once.'),
      h('div', { class: 'dialog-actions' }, h('button', { type: 'button', class: 'primary', onclick: () => close() }, 'Done')),
    ];
  }, { testid: 'secret-dialog' });
}
