// Files on their way into a message: picked, dropped or pasted into the composer, each uploaded at
// once with a progress bar and a cancel button. The message (with its optional caption) goes out
// once every upload has finished; the conversation view decides when that is asked for.
import { h } from '../dom.js';
import { fileSize } from '../format.js';
import * as api from '../api.js';

/** The server takes at most this many files in one message. */
export const MAX_FILES = 10;

/** Why an upload was refused, in words for the person who picked the file. */
function uploadError(error, file) {
  switch (error.code) {
    case 'file_too_large': return `${file.name} is too large (${fileSize(file.size)}). ${error.message}`;
    case 'upload_storage_full': return 'The server is low on disk space, so uploads are paused. Tell your administrator.';
    case 'image_too_large': return `${file.name} has too many pixels to be shown as a picture. ${error.message}`;
    case 'length_required':
    case 'network': return `${file.name} could not be uploaded: the connection failed. Try again.`;
    default: return `${file.name} could not be uploaded: ${error.message}`;
  }
}

/** A clipboard picture has a generic name ("image.png"): give it one that says when it was taken. */
function nameFor(file) {
  if (file.name && file.name !== 'image.png') return file.name;
  const stamp = new Date().toISOString().slice(0, 19).replace('T', ' ').replace(/:/g, '.');
  const ext = (file.type.split('/')[1] ?? 'png').replace('jpeg', 'jpg');
  return `Pasted picture ${stamp}.${ext}`;
}

/**
 * The tray above the composer. `onChange()` is called whenever an upload starts, progresses, ends
 * or is removed (the view re-checks whether a waiting send can go).
 */
export function createAttachments(conversationId, { onChange }) {
  /** {key, name, size, loaded, state: 'uploading'|'done'|'failed', error, file?, abort, el…} */
  let items = [];
  let counter = 0;
  const list = h('ul', { class: 'attachments', 'data-testid': 'attachments', hidden: true, 'aria-label': 'Files to send' });

  function itemEl(item) {
    const progress = h('progress', { class: 'attachment-progress', max: 100, value: 0, 'data-testid': 'upload-progress', 'aria-label': `Uploading ${item.name}` });
    const status = h('span', { class: 'attachment-status', 'data-testid': 'upload-status' });
    const remove = h('button', {
      type: 'button', class: 'attachment-remove', 'data-testid': 'upload-cancel', 'aria-label': `Cancel ${item.name}`, title: 'Cancel',
      onclick: () => removeItem(item),
    }, '×');
    item.parts = { progress, status, remove };
    return h('li', { class: 'attachment', 'data-testid': 'attachment', dataset: { state: item.state } },
      h('span', { class: 'attachment-name', title: item.name }, item.name),
      h('span', { class: 'muted attachment-size' }, fileSize(item.size)), progress, status, remove);
  }

  function update(item) {
    const { progress, status, remove } = item.parts;
    item.el.dataset.state = item.state;
    progress.value = item.size ? Math.round((100 * item.loaded) / item.size) : 100;
    progress.hidden = item.state !== 'uploading';
    status.textContent = item.state === 'failed' ? item.error : item.state === 'done' ? 'Ready' : `${progress.value}%`;
    status.classList.toggle('form-error', item.state === 'failed');
    remove.setAttribute('aria-label', `${item.state === 'uploading' ? 'Cancel' : 'Remove'} ${item.name}`);
    remove.title = item.state === 'uploading' ? 'Cancel the upload' : 'Remove';
  }

  function render() {
    list.hidden = items.length === 0;
    list.replaceChildren(...items.map((i) => i.el));
  }

  function removeItem(item) {
    if (item.state === 'uploading') item.abort();
    items = items.filter((i) => i !== item);
    render();
    onChange();
  }

  function start(file) {
    counter += 1;
    const item = { key: counter, name: nameFor(file), size: file.size, loaded: 0, state: 'uploading', error: '' };
    item.el = itemEl(item);
    const path = api.conversationPath(conversationId, `/uploads?name=${encodeURIComponent(item.name)}`);
    const { done, abort } = api.upload(path, file, (loaded) => {
      item.loaded = Math.min(loaded, item.size);
      update(item);
    });
    item.abort = abort;
    done.then((res) => {
      item.state = 'done';
      item.loaded = item.size;
      item.file = res.file;
    }, (error) => {
      if (error.code === 'aborted') return;
      item.state = 'failed';
      item.error = uploadError(error, { name: item.name, size: item.size });
    }).finally(() => {
      if (!items.includes(item)) return;
      update(item);
      onChange();
    });
    update(item);
    return item;
  }

  return {
    el: list,
    /** Starts uploading `files` (a FileList or array). Returns an error text when some were left out. */
    add(files) {
      const room = MAX_FILES - items.length;
      const picked = [...files].slice(0, Math.max(0, room));
      items.push(...picked.map(start));
      render();
      onChange();
      return files.length > picked.length ? `At most ${MAX_FILES} files go in one message.` : '';
    },
    get count() {
      return items.length;
    },
    get uploading() {
      return items.some((i) => i.state === 'uploading');
    },
    get failed() {
      return items.some((i) => i.state === 'failed');
    },
    /** The uploaded files ({id, name, size, type, width, height}) in the order they were added. */
    get files() {
      return items.filter((i) => i.state === 'done').map((i) => i.file);
    },
    /** Sent: the tray empties (the files now belong to the message). */
    clear() {
      items = [];
      render();
    },
    /** Leaving the conversation: uploads still running are cancelled. */
    destroy() {
      for (const i of items) if (i.state === 'uploading') i.abort();
      items = [];
    },
  };
}
