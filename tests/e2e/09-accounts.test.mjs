// A new colleague signs in with the temporary password and must choose their own first; when an
// administrator resets it, their open page is signed out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, PASSWORD } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('accounts'); });
after(async () => { await office?.close(); });

test('first sign-in forces a password change; a reset signs the open page out', { timeout: 60_000 }, async () => {
  const admin = office.person('alice');
  const created = await office.server.apiOk('POST', '/api/admin/users', {
    token: admin.token, body: { username: 'erin', display_name: 'Erin' },
  });

  const page = await (await office.browser.newContext()).newPage();
  await page.goto(office.server.url('/'));
  await page.getByLabel('Username', { exact: true }).fill('erin');
  await page.getByLabel('Password', { exact: true }).fill(created.temporary_password);
  await page.getByRole('button', { name: 'Sign in' }).click();

  const form = page.getByTestId('change-password-form');
  await form.waitFor();
  assert.equal(await page.getByTestId('people-filter').count(), 0, 'nothing else before the password is changed');
  await form.getByLabel('Temporary password', { exact: true }).fill(created.temporary_password);
  await form.getByLabel('New password', { exact: true }).fill(PASSWORD);
  await form.getByLabel('Confirm new password', { exact: true }).fill(PASSWORD);
  await form.getByRole('button', { name: 'Save password' }).click();
  await page.getByTestId('people-filter').waitFor();
  await page.locator(`[data-testid="person"][data-user-id="${admin.id}"]`).waitFor();

  // The admin resets erin's password: her session ends and the page asks her to sign in again.
  await office.server.apiOk('POST', `/api/admin/users/${created.user.id}/reset-password`, { token: admin.token });
  await page.getByTestId('sign-in-form').waitFor({ timeout: 10_000 });
  await page.getByText('Your session has ended').waitFor();
});
