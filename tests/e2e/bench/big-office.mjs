// How the web client's lists hold up in a big office: 500 people and 200 rooms, in real Chromium.
// Not a test (the suite never runs it): a measurement, quoted in docs/BENCHMARKS.md.
//
//   cargo build --release --examples
//   target/release/examples/bigdb /tmp/office --users 500 --rooms 200 --messages 20000
//   CONFAB_BIN=target/release/confab node tests/e2e/bench/big-office.mjs /tmp/office
//
// It signs in as user0000 (in every room), then times what a person does with the lists: the
// first sidebar, typing into the sidebar filter, collapsing sections, searching the room browser,
// and the sidebar keeping up while messages arrive. Times are from the input to the end of the
// frame that shows the result (input → DOM update → next animation frame), in the page's clock.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launchBrowser, PASSWORD, Server } from '../helpers.mjs';

const source = process.argv[2];
if (!source || !process.env.CONFAB_BIN) {
  console.error('usage: CONFAB_BIN=target/release/confab node tests/e2e/bench/big-office.mjs DATA_DIR');
  process.exit(2);
}

const dataDir = mkdtempSync(path.join(tmpdir(), 'confab-big-office-'));
cpSync(source, dataDir, { recursive: true });
/** Resets `username`'s password at the console, as an admin would, and does the first sign-in. */
async function signInFresh(username) {
  const reset = execFileSync(process.env.CONFAB_BIN, ['--data-dir', dataDir, '--reset-user', username]).toString();
  const temporary = new RegExp(`Temporary password for ${username}: (\\S+)`).exec(reset)?.[1];
  if (!temporary) throw new Error(`no temporary password in: ${reset}`);
  const first = await server.apiOk('POST', '/api/login', { body: { username, password: temporary } });
  await server.apiOk('POST', '/api/me/password', {
    token: first.token, body: { current_password: temporary, new_password: PASSWORD },
  });
  return (await server.apiOk('POST', '/api/login', { body: { username, password: PASSWORD } })).token;
}

const server = new Server(dataDir, 'big-office');
await server.spawn('127.0.0.1:0');
const token = await signInFresh('user0000');
const users = await server.apiOk('GET', '/api/users', { token });
const conversations = await server.apiOk('GET', '/api/conversations', { token });

const browser = await launchBrowser();
const results = [];
const report = (what, samples) => {
  samples.sort((a, b) => a - b);
  const at = (q) => samples[Math.round((samples.length - 1) * q)];
  results.push({ what, n: samples.length, p50: at(0.5), p95: at(0.95), max: at(1) });
};

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(server.url('/'));
  await page.getByLabel('Username', { exact: true }).fill('user0000');
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  const signInStarted = Date.now();
  await page.getByRole('button', { name: 'Sign in' }).click();
  const rooms = conversations.filter((c) => c.kind === 'room').length;
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="room-list"] li').length >= n, rooms);
  report('sign in → sidebar with every room (ms)', [Date.now() - signInStarted]);

  // Measures fn (run in the page) from its start to the end of the next frame.
  const timed = (fn, arg) => page.evaluate(async ([source, arg]) => {
    const run = new Function('arg', `return (${source})(arg)`);
    const started = performance.now();
    await run(arg);
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    return performance.now() - started;
  }, [fn.toString(), arg]);

  const typeFilter = (text) => {
    const input = document.querySelector('[data-testid="people-filter"]');
    input.value = text;
    input.dispatchEvent(new Event('input', { bubbles: true }));
  };
  const filterTimes = [];
  for (const text of ['u', 'us', 'use', 'user', 'user0', 'user04', 'user042', 'team', 'team 1', 'payroll', 'kitchen', '']) {
    filterTimes.push(await timed(typeFilter, text));
    if (process.env.VERBOSE) console.log(`filter ${JSON.stringify(text)}: ${filterTimes.at(-1).toFixed(1)} ms`);
  }
  report('sidebar filter: one keystroke → list redrawn (ms)', filterTimes);
  await page.evaluate(typeFilter, 'user042');
  const found = await page.locator('[data-testid="people-list"] li').count();
  await page.evaluate(typeFilter, 'payroll');
  const payrollRooms = await page.locator('[data-testid="room-list"] li').count();
  await page.evaluate(typeFilter, '');

  const toggleTimes = [];
  for (const key of ['people', 'rooms', 'dms', 'people', 'rooms', 'dms']) {
    toggleTimes.push(await timed((k) => document.querySelector(`[data-testid="section-${k}"]`).click(), key));
  }
  report('collapse or expand a section (ms)', toggleTimes);

  await page.evaluate(() => { location.hash = '#/rooms'; });
  await page.getByTestId('room-search').waitFor();
  const search = (text) => {
    const input = document.querySelector('[data-testid="room-search"]');
    input.value = text;
    input.dispatchEvent(new Event('input', { bubbles: true }));
  };
  const browseTimes = [];
  for (const text of ['t', 'te', 'team', 'team 0', 'invoices', 'printers', 'cake', '']) {
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/rooms'
      && new URL(r.url()).searchParams.get('q') === text);
    const before = Date.now();
    await page.evaluate(search, text);
    await answered;
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0))));
    browseTimes.push(Date.now() - before);
  }
  report('room browser: query → results (ms, with its 200 ms typing pause and the server)', browseTimes);
  await page.evaluate(search, 'printers');
  await page.waitForTimeout(500);
  const printerRooms = await page.locator('[data-testid="room-browser-list"] li').count();
  await page.evaluate(() => { location.hash = ''; });

  // Messages arriving in rooms while the big sidebar is shown: count long tasks (> 50 ms).
  await page.evaluate(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration)))
      .observe({ type: 'longtask', buffered: false });
  });
  // A colleague's browser tab, sending through its own WebSocket.
  const senderContext = await browser.newContext();
  const senderPage = await senderContext.newPage();
  await senderPage.goto(server.url('/healthz'));
  const senderToken = await signInFresh('user0001');
  const general = conversations.find((c) => c.kind === 'room' && c.general);
  const arrivals = 100;
  const started = Date.now();
  await senderPage.evaluate(async ({ url, conversation, arrivals }) => {
    const socket = new WebSocket(url);
    await new Promise((resolve) => socket.addEventListener('message', resolve, { once: true }));
    for (let i = 0; i < arrivals; i++) {
      socket.send(JSON.stringify({ type: 'send', conversation, body: `cake in the kitchen ${i}`, client_id: `bench-${i}` }));
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
    socket.close();
  }, { url: server.url(`/ws?token=${senderToken}`).replace('http', 'ws'), conversation: general.id, arrivals });
  // The last message has reached the page: General's entry counts it (or shows "99+").
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="unread-badge"]')]
    .some((badge) => /^(99\+|1\d\d)(\s|$)/.test(badge.textContent.trim())), null, { timeout: 10_000 });
  const longTasks = await page.evaluate(() => window.longTasks);
  results.push({
    what: `${arrivals} messages into General at ~16/s: long tasks (> 50 ms) in the page`,
    n: longTasks.length,
    p50: null,
    p95: null,
    max: longTasks.length ? Math.max(...longTasks) : 0,
    seconds: (Date.now() - started) / 1000,
  });

  console.log(`big office: ${users.length} people, ${rooms} rooms in the sidebar, ${conversations.length} conversations`);
  console.log(`filter "user042" → ${found} person; "payroll" → ${payrollRooms} rooms; browser "printers" → ${printerRooms} rooms`);
  for (const r of results) {
    const f = (v) => (v === null ? '—' : v.toFixed(1));
    console.log(`${r.what.padEnd(72)} n=${String(r.n).padStart(3)}  p50 ${f(r.p50)}  p95 ${f(r.p95)}  max ${f(r.max)}`);
  }
  console.log(JSON.stringify({ people: users.length, rooms, results }));
} finally {
  await browser.close();
  await server.destroy();
  rmSync(dataDir, { recursive: true, force: true });
}
