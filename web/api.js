// HTTP calls to the confab API. Plain same-origin fetch: the browser attaches the session cookie and
// the Origin header the server's CSRF check wants; we only add the JSON content type.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let sessionEnded = () => {};

/** Called when any call finds the session gone (401) or blocked by a temporary password. */
export function onSessionEnded(fn) {
  sessionEnded = fn;
}

const NETWORK_MESSAGE = 'Cannot reach the server. Check the connection and try again.';

/** The error for a refused call: the server's code and message (one JSON shape for all). */
function refusal(status, data, retryAfter) {
  const err = data?.error ?? {};
  let message = err.message ?? `The server answered ${status}.`;
  if (status === 429 && retryAfter) message += ` (try again in ${retryAfter} s)`;
  const error = new ApiError(status, err.code ?? `http_${status}`, message);
  if (error.code === 'unauthorized' || error.code === 'password_change_required') sessionEnded(error);
  return error;
}

/** `body`: an object (sent as JSON) or a Blob (a picture, sent as its raw bytes). */
export async function request(method, path, body) {
  const init = { method, headers: {}, credentials: 'same-origin', cache: 'no-store' };
  if (body instanceof Blob) {
    init.headers['Content-Type'] = body.type || 'application/octet-stream';
    init.body = body;
  } else if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', NETWORK_MESSAGE);
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (res.ok) return data;
  throw refusal(res.status, data, res.headers.get('Retry-After'));
}

/**
 * Uploads a file as the raw request body with progress (fetch cannot report upload progress).
 * `onProgress(loaded, total)`. Returns {done: Promise of the JSON answer, abort()}; an aborted
 * upload rejects with code 'aborted'.
 */
export function upload(path, file, onProgress) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open('POST', path);
    xhr.responseType = 'json';
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    xhr.upload.addEventListener('progress', (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size));
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
      else reject(refusal(xhr.status, xhr.response, xhr.getResponseHeader('Retry-After')));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network', NETWORK_MESSAGE)));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', 'Cancelled.')));
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body);
export const patch = (path, body) => request('PATCH', path, body);

/**
 * `/api/conversations/<id><rest>`. The id's colons stay as they are (they are fine in a path, and
 * the file routes take the id as written: `dm:3:7`, not `dm%3A3%3A7`).
 */
export function conversationPath(id, rest = '') {
  return `/api/conversations/${encodeURIComponent(id).replace(/%3A/gi, ':')}${rest}`;
}

export function messagesPath(id, params) {
  const query = new URLSearchParams(params).toString();
  return `/api/conversations/${encodeURIComponent(id)}/messages?${query}`;
}
