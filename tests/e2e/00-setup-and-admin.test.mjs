// First run: the administrator is created through the setup page, signs in again, adds a
// colleague on the admin page (whose temporary password is shown once), and signs out.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launchBrowser, watchPage, PASSWORD } from './helpers.mjs';

let server;
let browser;
after(async () => {
  await browser?.close();
  await server?.destroy();
});

test('first-run setup, sign in, create a user on the admin page, sign out', { timeout: 90_000 }, async () => {
  server = await Server.start('setup');
  browser = await launchBrowser();
  const page = await browser.newPage();
  const errors = [];
  watchPage(page, 'alice', errors);

  await page.goto(server.setupUrl);
  await page.getByLabel('Username', { exact: true }).fill('alice');
  await page.getByLabel('Display name', { exact: true }).fill('Alice Admin');
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Confirm password', { exact: true }).fill('something else entirely');
  await page.getByRole('button', { name: 'Create administrator' }).click();
  await page.getByText('The two passwords do not match.').waitFor();

  await page.getByLabel('Confirm password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Create administrator' }).click();
  await page.getByTestId('people-filter').waitFor();
  assert.equal(new URL(page.url()).pathname, '/', 'the spent setup token left the address bar');
  assert.equal(await page.locator('.me-name').textContent(), 'Alice Admin');

  // Sign out, then back in with the new password.
  await page.getByTestId('sign-out').click();
  await page.getByTestId('sign-in-form').waitFor();
  await page.getByLabel('Username', { exact: true }).fill('alice');
  await page.getByLabel('Password', { exact: true }).fill('not the password at all');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('form-error').filter({ hasText: /./ }).waitFor();
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('people-filter').waitFor();

  // The admin page adds bob and shows his temporary password once.
  await page.getByTestId('admin-link').click();
  await page.getByTestId('admin-page').waitFor();
  const form = page.getByTestId('create-user-form');
  await form.getByLabel('Username', { exact: true }).fill('bob');
  await form.getByLabel('Display name', { exact: true }).fill('Bob Builder');
  await form.getByRole('button', { name: 'Add person' }).click();
  const secret = page.getByTestId('temporary-password');
  await secret.waitFor();
  const temporary = (await secret.textContent()).trim();
  assert.ok(temporary.length >= 12, `temporary password shown: ${temporary}`);
  await page.getByRole('button', { name: 'Copy' }).waitFor();

  // The password shown is the real one: bob can sign in with it and must change it.
  const login = await server.api('POST', '/api/login', { body: { username: 'bob', password: temporary } });
  assert.equal(login.status, 200);
  assert.equal(login.body.user.must_change_password, true);

  await page.getByRole('button', { name: 'Done' }).click();
  await secret.waitFor({ state: 'detached' });
  assert.equal(await secret.count(), 0, 'the temporary password is shown only once');
  const bobRow = page.locator(`[data-testid="admin-user-row"][data-user-id="${login.body.user.id}"]`);
  await bobRow.getByText('Bob Builder').waitFor();

  // bob now shows up in the people list.
  await page.locator(`[data-testid="person"][data-user-id="${login.body.user.id}"]`).waitFor();

  await page.getByTestId('sign-out').click();
  await page.getByTestId('sign-in-form').waitFor();
  const me = await page.evaluate(() => fetch('/api/me').then((r) => r.status));
  assert.equal(me, 401, 'the session is gone after signing out');
  assert.deepEqual(errors, []);
});
