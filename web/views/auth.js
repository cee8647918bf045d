// The screens before the chat: first-run setup, sign in, and the forced password change.
import { h, field } from '../dom.js';
import * as api from '../api.js';

const MIN_PASSWORD_BYTES = 12;

function brand() {
  return h('div', { class: 'brand' }, h('img', { src: '/favicon.svg', alt: '', width: 40, height: 40 }), h('span', {}, 'confab'));
}

/**
 * A centred card with a form. `submit(values)` does the work; a thrown error's message is shown in
 * the form's alert. The submit button is disabled while a request is running.
 */
function authCard({ title, intro, inputs, action, submit, footer, testid }) {
  const error = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'form-error' });
  const button = h('button', { type: 'submit', class: 'primary wide' }, action);
  const form = h('form', { class: 'auth-form', novalidate: true, 'data-testid': testid },
    ...Object.values(inputs).map((i) => i.field), error, button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    const values = Object.fromEntries(Object.entries(inputs).map(([k, i]) => [k, i.input.value]));
    button.disabled = true;
    try {
      await submit(values);
    } catch (e) {
      error.textContent = e.message;
      error.append(...(e.extra ?? []));
    } finally {
      button.disabled = false;
    }
  });
  return h('main', { class: 'auth' },
    h('div', { class: 'card' }, brand(), h('h1', {}, title), intro ? h('p', { class: 'muted' }, intro) : null, form, footer));
}

function input(label, props, hint) {
  const el = h('input', { required: true, ...props });
  return { input: el, field: field(label, el, hint) };
}

function checkNewPassword(password, confirm) {
  if (new TextEncoder().encode(password).length < MIN_PASSWORD_BYTES) {
    throw new Error(`The password must be at least ${MIN_PASSWORD_BYTES} characters.`);
  }
  if (password !== confirm) throw new Error('The two passwords do not match.');
}

export function setupScreen({ onSignedIn }) {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (!token) {
    return h('main', { class: 'auth' }, h('div', { class: 'card' }, brand(), h('h1', {}, 'Set up confab'),
      h('p', { class: 'form-error', role: 'alert' },
        'This link has no setup token. Open the setup link that the server printed when it first started.'),
      h('p', {}, h('a', { href: '/' }, 'Go to sign in'))));
  }
  return authCard({
    title: 'Set up confab',
    intro: 'Create the first account. It will be the administrator of this server.',
    testid: 'setup-form',
    inputs: {
      username: input('Username', { name: 'username', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false' }, '2–32 characters: a–z, 0–9, dot, dash, underscore'),
      display_name: input('Display name', { name: 'display_name', autocomplete: 'name' }),
      password: input('Password', { name: 'password', type: 'password', autocomplete: 'new-password' }, `At least ${MIN_PASSWORD_BYTES} characters`),
      confirm: input('Confirm password', { name: 'confirm', type: 'password', autocomplete: 'new-password' }),
    },
    action: 'Create administrator',
    async submit({ username, display_name, password, confirm }) {
      checkNewPassword(password, confirm);
      try {
        const res = await api.post('/api/setup', { token, username: username.trim(), display_name: display_name.trim(), password });
        // The token is spent: drop it from the address bar and history.
        history.replaceState(null, '', '/');
        onSignedIn(res.user);
      } catch (e) {
        if (e.code === 'already_set_up') e.extra = [' ', h('a', { href: '/' }, 'Sign in')];
        throw e;
      }
    },
  });
}

/** Over HTTPS with the server's own CA, a link to the steps for trusting it on other devices. */
function trustLink() {
  const link = h('p', { class: 'card-footer', hidden: true },
    h('a', { href: '/trust', 'data-testid': 'trust-link' }, 'Trust this server on your other devices'));
  if (location.protocol === 'https:') {
    fetch('/trust', { method: 'HEAD' }).then((res) => { link.hidden = !res.ok; }).catch(() => {});
  }
  return link;
}

export function signInScreen({ notice, onSignedIn }) {
  return authCard({
    footer: trustLink(),
    title: 'Sign in',
    intro: notice,
    testid: 'sign-in-form',
    inputs: {
      username: input('Username', { name: 'username', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', autofocus: true }),
      password: input('Password', { name: 'password', type: 'password', autocomplete: 'current-password' }),
    },
    action: 'Sign in',
    async submit({ username, password }) {
      const res = await api.post('/api/login', { username: username.trim(), password });
      onSignedIn(res.user);
    },
  });
}

export function changePasswordScreen({ me, onDone, onSignOut }) {
  return authCard({
    title: 'Choose your password',
    intro: `Welcome, ${me.display_name}. You signed in with a temporary password; choose your own to continue.`,
    testid: 'change-password-form',
    inputs: {
      current: input('Temporary password', { name: 'current', type: 'password', autocomplete: 'current-password' }),
      password: input('New password', { name: 'password', type: 'password', autocomplete: 'new-password' }, `At least ${MIN_PASSWORD_BYTES} characters`),
      confirm: input('Confirm new password', { name: 'confirm', type: 'password', autocomplete: 'new-password' }),
    },
    action: 'Save password',
    async submit({ current, password, confirm }) {
      checkNewPassword(password, confirm);
      await api.post('/api/me/password', { current_password: current, new_password: password });
      onDone();
    },
    footer: h('p', { class: 'card-footer' }, h('button', { type: 'button', class: 'link', onclick: onSignOut }, 'Sign out')),
  });
}
