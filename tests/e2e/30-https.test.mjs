// HTTPS on the LAN: a browser that trusts the server's generated CA (installed in its NSS store,
// as the /trust page tells a Linux user to do) reaches the server by the machine's .local name,
// sets it up, signs in, and gets what plain HTTP on a LAN name cannot give: a secure context with
// desktop notifications. The admin page shows the join link and its QR code.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { Server, launchBrowser, watchPage, PASSWORD } from './helpers.mjs';

let server;
let browser;
let home;
after(async () => {
  await browser?.close();
  await server?.destroy();
  if (home) rmSync(home, { recursive: true, force: true });
});

/** A HOME whose Chromium trust store (an NSS database) holds `caFile` as a website CA. */
function homeTrusting(caFile) {
  const dir = mkdtempSync(path.join(tmpdir(), 'confab-e2e-home-'));
  const nssdb = path.join(dir, '.pki', 'nssdb');
  mkdirSync(nssdb, { recursive: true });
  execFileSync('certutil', ['-d', `sql:${nssdb}`, '-N', '--empty-password']);
  execFileSync('certutil', ['-d', `sql:${nssdb}`, '-A', '-t', 'C,,', '-n', 'confab test CA', '-i', caFile]);
  return dir;
}

test('over HTTPS with the CA trusted: setup, sign in, a secure context with notifications, the join QR code', { timeout: 120_000 }, async () => {
  server = await Server.start('https', { args: ['--tls', 'auto'] });
  // The machine's .local name (in the certificate) is not a loopback name, so only real HTTPS
  // makes it a secure context; the browser resolves it to the test server.
  const name = `${hostname().toLowerCase()}.local`;
  assert.match(name, /^[a-z0-9-]+\.local$/, 'a host name usable in the certificate');
  const port = server.addr.split(':')[1];
  const origin = `https://${name}:${port}`;
  home = homeTrusting(path.join(server.dataDir, 'tls', 'ca.pem'));
  browser = await launchBrowser({
    args: [`--host-resolver-rules=MAP ${name} 127.0.0.1`],
    env: { ...process.env, HOME: home },
  });
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  watchPage(page, 'alice', errors);

  // No certificate error: the navigation would throw ERR_CERT_AUTHORITY_INVALID otherwise.
  const response = await page.goto(`${origin}/setup#token=${server.setupToken}`);
  const security = await response.securityDetails();
  assert.match(security.issuer, /^confab local CA /, 'signed by the generated CA');
  await page.getByLabel('Username', { exact: true }).fill('alice');
  await page.getByLabel('Display name', { exact: true }).fill('Alice Admin');
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Confirm password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Create administrator' }).click();
  await page.getByTestId('people-filter').waitFor();

  // Sign out and in again; the sign-in page links to the trust instructions.
  await page.getByTestId('sign-out').click();
  await page.getByTestId('sign-in-form').waitFor();
  await page.getByTestId('trust-link').waitFor();
  await page.getByLabel('Username', { exact: true }).fill('alice');
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('people-filter').waitFor({ state: 'attached' });

  assert.equal(await page.evaluate(() => window.isSecureContext), true, 'a secure context');
  assert.equal(await page.evaluate(() => typeof Notification.requestPermission), 'function');
  assert.equal(await page.evaluate(() => Notification.permission), 'default', 'not yet asked');
  const toggle = page.getByTestId('notifications-toggle');
  assert.equal(await toggle.isEnabled(), true, 'desktop alerts can be turned on');
  // The person answers the browser's prompt with "Allow".
  await context.grantPermissions(['notifications'], { origin });
  await toggle.click();
  await page.locator('[data-testid="notifications-toggle"][aria-pressed="true"]').waitFor();
  assert.equal(await toggle.textContent(), 'Desktop alerts: on');
  assert.equal(await page.evaluate(() => Notification.requestPermission()), 'granted');

  // The session cookie is Secure.
  const cookie = (await context.cookies(origin)).find((c) => c.name === 'confab_session');
  assert.equal(cookie?.secure, true, 'the session cookie is Secure');

  // The admin page shows the join link and its QR code as an image (no markup from the server).
  await page.getByTestId('admin-link').click();
  const qr = page.getByTestId('join-qr');
  await qr.waitFor();
  assert.match(await page.getByTestId('join-url').textContent(), /^https:\/\//);
  await page.waitForFunction(() => document.querySelector('[data-testid="join-qr"]').naturalWidth > 0);

  // The trust page itself renders under the CSP.
  await page.goto(`${origin}/trust`);
  await page.getByTestId('ca-fingerprint').waitFor();
  assert.deepEqual(errors, []);
});
