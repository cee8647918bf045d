// Typing: bob sees "Alice is typing…" while she types, and it goes away soon after she stops.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, eventually, seesOnline } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('typing', ['bob']); });
after(async () => { await office?.close(); });

test('the typing indicator appears while alice types and disappears after she stops', { timeout: 60_000 }, async () => {
  const alice = await office.signIn('alice', { hash: '#/dm/bob' });
  const bob = await office.signIn('bob', { hash: '#/dm/alice' });
  // Signed in is not yet connected: alice's typing frames (one every 2 s, and she types for about
  // that long) are relayed only to sockets that are up. Wait until both pages have their hello.
  await seesOnline(alice, office.person('bob'));
  await seesOnline(bob, office.person('alice'));
  const indicator = bob.getByTestId('typing-indicator');
  assert.equal(await indicator.textContent(), '');

  await alice.getByTestId('composer').pressSequentially('I am writing something long', { delay: 60 });
  await eventually(async () => assert.equal(await indicator.textContent(), 'Alice is typing…'), { timeout: 5_000 });

  const stopped = Date.now();
  await eventually(async () => assert.equal(await indicator.textContent(), ''), { timeout: 8_000 });
  const gone = Date.now() - stopped;
  assert.ok(gone <= 6_500, `the indicator stayed ${gone} ms after the last keystroke`);
  assert.equal(await alice.getByTestId('typing-indicator').textContent(), '', 'nobody sees their own typing');
});
