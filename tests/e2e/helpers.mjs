// Shared steps for the browser tests, so each test file reads like a user story: start a real
// confab server on a free port, set it up, add people, and sign them in in their own browser.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ARTIFACTS = path.join(REPO, 'target', 'e2e-artifacts');
export const CHROMIUM = '/usr/bin/chromium';
/** Every test account gets this password (at least 12 bytes, as the server requires). */
export const PASSWORD = 'correct horse battery staple';

const STARTUP_TIMEOUT_MS = 30_000;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Retries `check` (which throws, e.g. an assert) until it passes or `timeout` ms have gone. */
export async function eventually(check, { timeout = 10_000, interval = 100 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await sleep(interval);
  }
}

// ---- the server ----

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A confab process on 127.0.0.1; `restart()` brings it back on the same port and data dir. */
export class Server {
  /** `args`: extra flags, e.g. ['--tls', 'auto'] (then the server's links are https). */
  constructor(dataDir, name, args = []) {
    this.dataDir = dataDir;
    this.name = name;
    this.args = args;
    this.scheme = args.includes('--tls') ? 'https' : 'http';
    this.child = null;
    this.addr = null;
    this.setupToken = null;
  }

  static async start(name, { args = [] } = {}) {
    const bin = process.env.CONFAB_BIN;
    if (!bin) throw new Error('CONFAB_BIN is not set: run `cargo build` and set CONFAB_BIN=target/debug/confab');
    const server = new Server(mkdtempSync(path.join(tmpdir(), 'confab-e2e-')), name, args);
    await server.spawn('127.0.0.1:0', { expectSetupToken: true });
    return server;
  }

  async spawn(listen, { expectSetupToken = false } = {}) {
    mkdirSync(ARTIFACTS, { recursive: true });
    const log = createWriteStream(path.join(ARTIFACTS, `server-${this.name}.log`), { flags: 'a' });
    const child = spawn(process.env.CONFAB_BIN, ['--listen', listen, '--data-dir', this.dataDir, ...this.args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      // No display: a server started without a terminal from a desktop session opens a browser.
      env: { ...process.env, NO_COLOR: '1', DISPLAY: '', WAYLAND_DISPLAY: '' },
    });
    running.add(child);
    this.child = child;
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }));
    this.exited = exited;
    exited.then(() => log.end());
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`confab did not start within ${STARTUP_TIMEOUT_MS} ms`)), STARTUP_TIMEOUT_MS);
      let listening = false;
      const done = () => {
        if (listening && (!expectSetupToken || this.setupToken)) {
          clearTimeout(timer);
          resolve();
        }
      };
      createInterface({ input: child.stderr }).on('line', (raw) => {
        const line = raw.replace(/\x1b\[[0-9;]*m/g, ''); // in case the log is coloured
        log.write(`${line}\n`);
        const addr = /listening on ([0-9.]+:\d+)/.exec(line);
        if (addr) {
          this.addr = addr[1];
          listening = true;
        }
        const token = /\/setup#token=([A-Za-z0-9_-]+)/.exec(line);
        if (token) this.setupToken = token[1];
        done();
      });
      exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`confab exited during startup (code ${code}, signal ${signal}); see ${log.path}`));
      });
    });
  }

  url(p = '/') {
    return `${this.scheme}://${this.addr}${p}`;
  }

  get setupUrl() {
    return this.url(`/setup#token=${this.setupToken}`);
  }

  /** Graceful stop (SIGTERM), as an operator restarting the service would do. */
  async stop() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    let timer;
    const timeout = new Promise((resolve) => { timer = setTimeout(resolve, 10_000, 'timeout'); });
    const outcome = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  async restart() {
    await this.stop();
    await this.spawn(this.addr);
  }

  async destroy() {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** JSON API call; a Bearer token needs no Origin header. Returns {status, body}. */
  async api(method, p, { token, body } = {}) {
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(this.url(p), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  async apiOk(method, p, options) {
    const res = await this.api(method, p, options);
    if (res.status >= 300) throw new Error(`${method} ${p} → ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }
}

// ---- browsers ----

/**
 * Records what must never happen in a page: uncaught exceptions and anything the server's strict
 * Content-Security-Policy blocked (an inline style or script slipping into the UI).
 */
export function watchPage(page, label, sink) {
  page.on('pageerror', (error) => sink.push(`${label}: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content.Security.Policy/i.test(message.text())) sink.push(`${label}: ${message.text()}`);
  });
}

/** `args` are added to Chromium's flags; `env` replaces its environment (e.g. a HOME with a trust store). */
export function launchBrowser({ args = [], env } = {}) {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...args],
    env,
  });
}

/**
 * A running office: a fresh server whose first account (alice, admin) was created through the API,
 * plus ready accounts for the named people (temporary password already changed), and a browser.
 */
export class Office {
  static async open(name, people = []) {
    const office = new Office();
    office.server = await Server.start(name);
    office.browser = await launchBrowser();
    office.people = new Map();
    office.pageErrors = [];
    const admin = await office.server.apiOk('POST', '/api/setup', {
      body: { token: office.server.setupToken, username: 'alice', display_name: 'Alice', password: PASSWORD },
    });
    office.people.set('alice', { ...admin.user, password: PASSWORD, token: admin.token });
    for (const username of people) await office.addPerson(username);
    return office;
  }

  person(username) {
    const p = this.people.get(username);
    if (!p) throw new Error(`no test account ${username}`);
    return p;
  }

  /** Creates an account as an admin would, then does its first sign-in and password change. */
  async addPerson(username, displayName = username[0].toUpperCase() + username.slice(1)) {
    const { server } = this;
    const created = await server.apiOk('POST', '/api/admin/users', {
      token: this.person('alice').token, body: { username, display_name: displayName, role: 'member' },
    });
    const first = await server.apiOk('POST', '/api/login', { body: { username, password: created.temporary_password } });
    await server.apiOk('POST', '/api/me/password', {
      token: first.token, body: { current_password: created.temporary_password, new_password: PASSWORD },
    });
    const person = { ...created.user, must_change_password: false, password: PASSWORD, token: first.token };
    this.people.set(username, person);
    return person;
  }

  /**
   * A browser context of its own (own cookies) with a signed-in page at `hash`. `colorScheme`
   * ('light' or 'dark') emulates the system setting; `init` runs in the page before its scripts.
   */
  async signIn(username, { hash = '', viewport = { width: 1100, height: 760 }, colorScheme = 'light', prepare, init } = {}) {
    const person = this.person(username);
    const context = await this.browser.newContext({ viewport, colorScheme });
    if (init) await context.addInitScript(init);
    const page = await context.newPage();
    watchPage(page, username, this.pageErrors);
    await prepare?.(page); // e.g. routes that must exist before the page opens its WebSocket
    await page.goto(this.server.url(`/${hash}`));
    await page.getByLabel('Username', { exact: true }).fill(person.username);
    await page.getByLabel('Password', { exact: true }).fill(person.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // Signed in: the sidebar exists. At phone width it is hidden while a conversation is open,
    // so wait for it to be there, not to be visible.
    await page.getByTestId('people-filter').waitFor({ state: 'attached' });
    return page;
  }

  /** A room created through the API by `username`; `body` as for POST /api/rooms. */
  async createRoom(username, body) {
    return this.server.apiOk('POST', '/api/rooms', { token: this.person(username).token, body: { visibility: 'open', ...body } });
  }

  async close() {
    await this.browser?.close();
    await this.server?.destroy();
    if (this.pageErrors.length) throw new Error(`errors in the page:\n${this.pageErrors.join('\n')}`);
  }
}

// ---- what a user sees ----

/** The sidebar entry for a person, by account. */
export function personEntry(page, person) {
  return page.locator(`[data-testid="person"][data-user-id="${person.id}"]`);
}

/**
 * Waits until `page` shows `person` online, which it can only once its own WebSocket has its hello
 * (the online list comes with it). `signIn` returns before that: until then the page gets no live
 * frames, and frames the server only relays (typing) never reach it.
 */
export function seesOnline(page, person) {
  return personEntry(page, person).locator('.presence-dot.online').waitFor({ state: 'attached' });
}

/** Texts of the sent messages in the open conversation, in screen order. */
export function messageTexts(page) {
  return page.locator('[data-testid="message-list"] [data-testid="message"] .message-body').allTextContents();
}

/** The seq of every sent message in the open conversation, in screen order. */
export function messageSeqs(page) {
  return page.locator('[data-testid="message-list"] [data-seq]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
}

/** Whether a message is wholly inside the visible part of its scrolling list. */
export function inView(locator) {
  return locator.evaluate((el) => {
    const box = el.getBoundingClientRect();
    const view = el.closest('.messages').getBoundingClientRect();
    return box.top >= view.top - 1 && box.bottom <= view.bottom + 1;
  });
}

export async function typeAndSend(page, text) {
  const composer = page.getByTestId('composer');
  await composer.fill(text);
  await composer.press('Enter');
}

/**
 * Sends frames as another account, over a WebSocket opened inside `page` with `?token=` (the page's
 * origin is the server's, as the socket's Origin check wants), so a test can play extra people
 * without a browser each. Waits for `hello` first, then for the answer (ack, error, request) to
 * every frame with a `client_id` (at most 15 s), then `lingerMs` more; resolves with every frame
 * it received.
 */
export function sendFramesAs(page, person, frames, { lingerMs = 300 } = {}) {
  return page.evaluate(({ token, frames: list, lingerMs: linger }) => new Promise((resolve, reject) => {
    const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws?token=${encodeURIComponent(token)}`;
    const ws = new WebSocket(url);
    const received = [];
    const unanswered = new Set(list.map((f) => f.client_id).filter(Boolean));
    let deadline = null;
    let closing = false;
    const lingerThenClose = () => {
      if (closing) return;
      closing = true;
      clearTimeout(deadline);
      setTimeout(() => { ws.close(1000); resolve(received); }, linger);
    };
    ws.onerror = () => reject(new Error('socket failed'));
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      received.push(frame);
      if (frame.type === 'hello') {
        for (const f of list) ws.send(JSON.stringify(f));
        deadline = setTimeout(lingerThenClose, 15_000);
        if (unanswered.size === 0) lingerThenClose();
      } else if (unanswered.delete(frame.client_id) && unanswered.size === 0) {
        lingerThenClose();
      }
    };
  }), { token: person.token, frames, lingerMs });
}

/**
 * Holds the page's PUT requests to URLs matching `pattern` until the returned function is called
 * (then they go on to the server), so a test can look at the page while a save is in flight.
 */
export async function holdPuts(page, pattern) {
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  await page.route(pattern, async (route) => {
    if (route.request().method() === 'PUT') await held;
    await route.continue();
  });
  return release;
}

export function dmIdOf(a, b) {
  return `dm:${Math.min(a.id, b.id)}:${Math.max(a.id, b.id)}`;
}

// ---- files and pictures ----

/** A PNG of `width` × `height` drawn in the page (two colours, so it is not a blank), as bytes. */
export async function pngBytes(page, width, height) {
  const base64 = await page.evaluate(([w, h]) => {
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#2a6f97';
    ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = '#f4a261';
    ctx.fillRect(w / 4, h / 4, w / 2, h / 2);
    return canvas.toDataURL('image/png').split(',')[1];
  }, [width, height]);
  return Buffer.from(base64, 'base64');
}

/**
 * Pastes files into the element `locator` names, as Ctrl+V with a copied picture does: a `paste`
 * event whose clipboard holds them. `files`: [{name, type, bytes}].
 */
export async function pasteFiles(locator, files) {
  await locator.evaluate((el, list) => {
    const data = new DataTransfer();
    for (const f of list) data.items.add(new File([new Uint8Array(f.bytes)], f.name, { type: f.type }));
    el.focus();
    el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  }, files.map((f) => ({ ...f, bytes: [...f.bytes] })));
}

/** Uploads through the page run at most `bytesPerSecond`, so their progress can be watched. */
export async function throttleUploads(page, bytesPerSecond) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond,
  });
  return cdp;
}
