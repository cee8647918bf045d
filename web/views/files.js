// Files in a message: pictures as thumbnails (sized from their width and height before they load,
// so the list does not jump) that open full size in a viewer; other files as a card with name, size
// and type that downloads under the original name.
import { h } from '../dom.js';
import { fileSize } from '../format.js';
import * as api from '../api.js';

/** The largest box a thumbnail takes in the message list. */
const THUMB_BOX = { width: 320, height: 240 };

export function fileUrl(conversation, file) {
  return api.conversationPath(conversation, `/files/${encodeURIComponent(file.id)}`);
}

function isPicture(file) {
  return Boolean(file.thumb && file.width && file.height);
}

/** Width and height that fit the thumbnail box, keeping the picture's proportions. */
export function thumbSize(width, height, box = THUMB_BOX) {
  const scale = Math.min(1, box.width / width, box.height / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** "PDF document", "ZIP archive", or the type as the server guessed it. */
function typeLabel(file) {
  const ext = /\.([a-z0-9]{1,8})$/i.exec(file.name)?.[1];
  if (ext) return `${ext.toUpperCase()} file`;
  return file.type || 'File';
}

function pictureEl(conversation, file) {
  const { width, height } = thumbSize(file.width, file.height);
  const img = h('img', {
    class: 'attachment-thumb', src: `${fileUrl(conversation, file)}/thumb`, width, height, loading: 'lazy', decoding: 'async',
    alt: file.name, 'data-testid': 'attachment-thumb',
  });
  const link = h('a', {
    href: fileUrl(conversation, file), class: 'attachment-picture', title: `${file.name} (${file.width} × ${file.height}, ${fileSize(file.size)})`,
    'aria-label': `Picture ${file.name}: show it full size`, 'data-testid': 'attachment-picture',
  }, img);
  link.addEventListener('click', (event) => {
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return; // a new tab, as links do
    event.preventDefault();
    openViewer(conversation, file, link);
  });
  return link;
}

function fileCardEl(conversation, file) {
  return h('a', {
    href: fileUrl(conversation, file), download: file.name, class: 'attachment-file', 'data-testid': 'attachment-file',
    'aria-label': `Download ${file.name}, ${fileSize(file.size)}`,
  },
  h('span', { class: 'attachment-icon', 'aria-hidden': 'true' }, (/\.([a-z0-9]{1,4})$/i.exec(file.name)?.[1] ?? 'file').toUpperCase()),
  h('span', { class: 'attachment-text' },
    h('span', { class: 'attachment-name' }, file.name),
    h('span', { class: 'muted attachment-meta' }, `${fileSize(file.size)} · ${typeLabel(file)}`)));
}

/** The files of a message, pictures first (as a row of thumbnails), then the other files. */
export function filesEl(conversation, files) {
  if (!files?.length) return null;
  const pictures = files.filter(isPicture);
  const others = files.filter((f) => !isPicture(f));
  return h('div', { class: 'attachments-shown', 'data-testid': 'message-files' },
    pictures.length ? h('div', { class: 'attachment-pictures' }, ...pictures.map((f) => pictureEl(conversation, f))) : null,
    ...others.map((f) => fileCardEl(conversation, f)));
}

/** Files of a message still being sent: names only (they are not part of a message yet). */
export function pendingFilesEl(files) {
  if (!files?.length) return null;
  return h('div', { class: 'attachments-shown' }, ...files.map((f) => h('span', { class: 'attachment-file pending-file' },
    h('span', { class: 'attachment-text' }, h('span', { class: 'attachment-name' }, f.name),
      h('span', { class: 'muted attachment-meta' }, fileSize(f.size))))));
}

/** The full-size picture over everything; Esc, the close button or a click outside it closes it. */
function openViewer(conversation, file, returnTo) {
  const url = fileUrl(conversation, file);
  const close = h('button', { type: 'button', class: 'viewer-close', 'aria-label': 'Close', 'data-testid': 'viewer-close' }, '×');
  const img = h('img', { class: 'viewer-image', src: url, alt: file.name, width: file.width, height: file.height, 'data-testid': 'viewer-image' });
  const dialog = h('dialog', { class: 'viewer', 'aria-label': file.name, 'data-testid': 'viewer' },
    h('div', { class: 'viewer-bar' },
      h('span', { class: 'viewer-name' }, file.name),
      h('span', { class: 'muted' }, `${file.width} × ${file.height} · ${fileSize(file.size)}`),
      h('a', { href: url, download: file.name, class: 'icon-button' }, 'Download'), close),
    img);
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('click', (event) => { if (event.target === dialog) dialog.close(); });
  dialog.addEventListener('close', () => {
    dialog.remove();
    returnTo?.focus({ preventScroll: true });
  });
  document.body.append(dialog);
  dialog.showModal();
  close.focus();
}
