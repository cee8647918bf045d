// Reliable sending when the connection breaks mid-send: a send lost on the way shows "Not sent"
// with Retry (same client_id); a send whose ack was lost is settled without showing it twice.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, eventually, messageTexts, typeAndSend, dmIdOf } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('retry', ['bob']); });
after(async () => { await office?.close(); });

test('a send lost with the connection is retried with the same client_id and never doubled', { timeout: 90_000 }, async () => {
  // alice's WebSocket goes through a proxy in the test that can break the connection on cue.
  let mode = 'pass';
  const sentIds = [];
  const prepare = (page) => page.routeWebSocket(/\/ws$/, (client) => {
    const server = client.connectToServer();
    const cut = () => {
      mode = 'pass';
      client.close();
      server.close();
    };
    let dropAck = false;
    client.onMessage((text) => {
      const frame = JSON.parse(text);
      if (frame.type === 'send') sentIds.push(frame.client_id);
      if (frame.type === 'send' && mode === 'lose-send') return cut();
      if (frame.type === 'send' && mode === 'lose-ack') dropAck = true;
      server.send(text);
    });
    server.onMessage((text) => {
      if (dropAck && JSON.parse(text).type === 'ack') return cut();
      client.send(text);
    });
  });
  const [aliceUser, bobUser] = [office.person('alice'), office.person('bob')];
  const alice = await office.signIn('alice', { hash: '#/dm/bob', prepare });
  const bob = await office.signIn('bob', { hash: '#/dm/alice' });
  const banner = alice.getByTestId('connection-banner');

  await typeAndSend(alice, 'first');
  await eventually(async () => assert.deepEqual(await messageTexts(bob), ['first']));

  // 1. The connection dies with the send: it is shown as failed, with Retry.
  mode = 'lose-send';
  await typeAndSend(alice, 'lost on the way');
  const failed = alice.locator('[data-testid="message-list"] [data-status="failed"]');
  await failed.waitFor();
  assert.match(await failed.textContent(), /lost on the way.*Not sent/s);
  await banner.waitFor({ state: 'hidden', timeout: 15_000 }); // reconnected
  assert.equal(await failed.count(), 1, 'a failed send waits for the user');
  const lostId = sentIds.at(-1);

  await failed.getByRole('button', { name: 'Retry' }).click();
  await eventually(async () => assert.deepEqual(await messageTexts(bob), ['first', 'lost on the way']));
  assert.equal(sentIds.at(-1), lostId, 'the retry reuses the client_id');
  await eventually(async () => assert.equal(await failed.count(), 0));

  // 2. The server stores the message but the ack is lost: after the reconnect the client learns it
  //    was stored (the same client_id answers with the original ack) and shows it once.
  mode = 'lose-ack';
  await typeAndSend(alice, 'ack lost');
  await eventually(async () => assert.deepEqual(await messageTexts(bob), ['first', 'lost on the way', 'ack lost']));
  await banner.waitFor({ state: 'hidden', timeout: 15_000 });
  await eventually(async () => {
    assert.deepEqual(await messageTexts(alice), ['first', 'lost on the way', 'ack lost']);
    assert.equal(await alice.locator('[data-testid="message-list"] [data-client-id]').count(), 0);
  }, { timeout: 15_000 });

  const history = await office.server.apiOk('GET',
    `/api/conversations/${encodeURIComponent(dmIdOf(aliceUser, bobUser))}/messages`, { token: aliceUser.token });
  assert.deepEqual(history.messages.map((m) => m.body), ['first', 'lost on the way', 'ack lost']);
});
