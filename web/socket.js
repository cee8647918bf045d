// The one WebSocket to /ws. It reconnects by itself with exponential backoff and jitter (so a whole
// office does not reconnect in the same millisecond after a server restart); `hello` resets the backoff.

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;
/** Close code the server uses when the session ended (logout, reset, disabled): never reconnect. */
const SESSION_ENDED = 4001;

/**
 * handlers: onFrame(frame), onState('connecting'|'online'|'offline'), onSessionEnded(),
 * onRefused() (closed before any hello: maybe the session is gone, the owner checks).
 */
export function createSocket(handlers) {
  let ws = null;
  let ready = false; // hello received on the current connection: only then do we send
  let attempt = 0;
  let timer = null;
  let stopped = false;
  let everOnline = false;

  function url() {
    return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
  }

  function connect() {
    clearTimeout(timer);
    timer = null;
    if (stopped || ws) return;
    if (!everOnline) handlers.onState('connecting');
    const sock = new WebSocket(url());
    ws = sock;
    ready = false;
    sock.onmessage = (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (frame.type === 'hello') {
        ready = true;
        attempt = 0;
        everOnline = true;
        handlers.onState('online');
      }
      handlers.onFrame(frame);
    };
    sock.onclose = (event) => {
      if (sock !== ws) return;
      const gotHello = ready;
      ws = null;
      ready = false;
      if (stopped) return;
      if (event.code === SESSION_ENDED) {
        stopped = true;
        handlers.onSessionEnded();
        return;
      }
      handlers.onState('offline');
      if (!gotHello) handlers.onRefused();
      schedule();
    };
  }

  function schedule() {
    const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** attempt);
    attempt += 1;
    timer = setTimeout(connect, ceiling / 2 + Math.random() * (ceiling / 2));
  }

  connect();

  return {
    /** Sends a frame if the connection is up and greeted; false means "not sent, keep it". */
    send(frame) {
      if (!ws || !ready || ws.readyState !== WebSocket.OPEN) return false;
      ws.send(JSON.stringify(frame));
      return true;
    },
    get ready() {
      return ready && ws?.readyState === WebSocket.OPEN;
    },
    /** Skip the backoff wait (the browser came back online, or the user asked). */
    reconnectNow() {
      if (stopped || ws) return;
      attempt = 0;
      connect();
    },
    close() {
      stopped = true;
      clearTimeout(timer);
      const sock = ws;
      ws = null;
      sock?.close(1000);
    },
  };
}
