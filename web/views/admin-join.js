// The admin page's "join from a phone" panel: the server's address and its QR code. The SVG comes
// as text and is shown as an image from a data: URL, so it can never run as markup in the page.
import { h } from '../dom.js';
import * as api from '../api.js';

export function joinSection() {
  const body = h('div', { class: 'admin-join' }, h('p', { class: 'muted' }, 'Loading…'));
  api.get('/api/admin/join').then(({ url, qr_svg: svg }) => {
    body.replaceChildren(
      h('img', { src: `data:image/svg+xml;base64,${btoa(svg)}`, alt: `QR code for ${url}`, width: 200, height: 200, 'data-testid': 'join-qr' }),
      h('p', {}, 'Colleagues can scan this with a phone camera, or open ', h('a', { href: url, 'data-testid': 'join-url' }, url), '.'));
  }).catch((e) => body.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, e.message)));
  return h('section', { class: 'panel', 'aria-labelledby': 'join-heading', 'data-testid': 'admin-join' },
    h('h2', { id: 'join-heading' }, 'Join from a phone'), body);
}
