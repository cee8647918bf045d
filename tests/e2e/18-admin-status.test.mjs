// The admin page's "Server" section shows what a person running the server needs: who is
// online, today's messages, disk, backups. A member never sees it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ARTIFACTS, Office, eventually, personEntry, sendFramesAs } from './helpers.mjs';

test('the admin page shows the server at a glance', { timeout: 90_000 }, async () => {
  const office = await Office.open('admin-status', ['bob']);
  try {
    const bob = office.person('bob');
    const alice = office.person('alice');
    const bobPage = await office.signIn('bob');
    const frames = [1, 2, 3].map((n) => ({
      type: 'send', to: alice.id, body: `status ${n}`, client_id: `status-${n}`,
    }));
    const received = await sendFramesAs(bobPage, bob, frames);
    assert.equal(received.filter((f) => f.type === 'ack').length, 3, JSON.stringify(received));

    // Once alice's own tab is online (it shows bob online), she opens the admin page.
    const page = await office.signIn('alice');
    await personEntry(page, bob).getByText('Online').waitFor();
    await page.evaluate(() => { location.hash = '#/admin'; });
    const server = page.getByTestId('server-status');
    await server.waitFor();
    const value = (key) => server.getByTestId(`server-${key}`).locator('dd').textContent();
    await eventually(async () => assert.equal(await value('messages'), '3'));
    // bob's tab and alice's own.
    assert.equal(await value('online'), '2');
    assert.match(await value('disk-used'), /\d.* \(database \d/);
    assert.match(await value('disk-free'), /\d+(\.\d)? (KB|MB|GB|TB)/);
    assert.equal(await value('backup'), 'No backups configured');
    assert.match(await value('uptime'), /min|less than a minute|h|day/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'admin-status.png') });

    // A member's page has no Server section, and the endpoint refuses them.
    const status = await office.server.api('GET', '/api/admin/status', { token: bob.token });
    assert.equal(status.status, 403);
  } finally {
    await office.close();
  }
});
