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

export async function request(method, path, body) {
  const init = { method, headers: {}, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the server. Check the connection and try again.');
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (res.ok) return data;
  const err = data?.error ?? {};
  let message = err.message ?? `The server answered ${res.status}.`;
  const retryAfter = res.headers.get('Retry-After');
  if (res.status === 429 && retryAfter) message += ` (try again in ${retryAfter} s)`;
  const error = new ApiError(res.status, err.code ?? `http_${res.status}`, message);
  if (error.code === 'unauthorized' || error.code === 'password_change_required') sessionEnded(error);
  throw error;
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body);
export const patch = (path, body) => request('PATCH', path, body);

export function messagesPath(id, params) {
  const query = new URLSearchParams(params).toString();
  return `/api/conversations/${encodeURIComponent(id)}/messages?${query}`;
}
