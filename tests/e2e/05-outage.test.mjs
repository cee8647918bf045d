// The server restarts while alice is chatting: she is told, keeps writing, and her message is
// delivered exactly once after the reconnect.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, eventually, messageTexts, typeAndSend, dmIdOf } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('outage', ['bob']); });
after(async () => { await office?.close(); });

test('a message typed while the server is down is delivered exactly once after it comes back', { timeout: 120_000 }, async () => {
  const [aliceUser, bobUser] = [office.person('alice'), office.person('bob')];
  const alice = await office.signIn('alice', { hash: '#/dm/bob' });
  const bob = await office.signIn('bob', { hash: '#/dm/alice' });
  await typeAndSend(alice, 'before the outage');
  await eventually(async () => assert.deepEqual(await messageTexts(bob), ['before the outage']));

  const banner = alice.getByTestId('connection-banner');
  assert.equal(await banner.isVisible(), false);
  await office.server.stop();
  await banner.waitFor({ state: 'visible', timeout: 10_000 });
  assert.match(await banner.textContent(), /Connection lost — reconnecting…/);
  assert.equal(await banner.getAttribute('role'), 'status');

  const body = 'written while the server was down';
  await typeAndSend(alice, body);
  const pending = alice.locator('[data-testid="message-list"] [data-client-id]');
  await pending.waitFor();
  assert.match(await pending.textContent(), /Waiting for connection/);

  await office.server.restart();
  await banner.waitFor({ state: 'hidden', timeout: 20_000 });
  await eventually(async () => assert.equal(await pending.count(), 0), { timeout: 10_000 });
  await eventually(async () => assert.deepEqual(await messageTexts(bob), ['before the outage', body]), { timeout: 15_000 });
  assert.deepEqual(await messageTexts(alice), ['before the outage', body]);

  const history = await office.server.apiOk('GET',
    `/api/conversations/${encodeURIComponent(dmIdOf(aliceUser, bobUser))}/messages?limit=100`, { token: bobUser.token });
  assert.equal(history.messages.filter((m) => m.body === body).length, 1, 'stored exactly once');
  assert.deepEqual(history.messages.map((m) => m.seq), [1, 2]);

  // Still one copy after a reload (the outbox in localStorage is empty).
  await alice.reload();
  await eventually(async () => assert.deepEqual(await messageTexts(alice), ['before the outage', body]));
  assert.equal(await pending.count(), 0);
});
