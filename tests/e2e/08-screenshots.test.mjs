// Screenshots of the main chat screen, wide and at 360 px, for people to look at (not compared).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Office, ARTIFACTS, typeAndSend, eventually, messageTexts } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('screenshots', ['bob', 'carol', 'dan']); });
after(async () => { await office?.close(); });

test('main chat screen screenshots (wide and 360 px)', { timeout: 90_000 }, async () => {
  const bob = await office.signIn('bob', { hash: '#/dm/alice' });
  const alice = await office.signIn('alice', { hash: '#/dm/bob', viewport: { width: 1200, height: 760 } });
  await office.signIn('carol');
  await typeAndSend(alice, 'Morning Bob! Did the printer get fixed?');
  await typeAndSend(bob, 'Yes, finally. The manual is at https://example.com/printer-manual.pdf');
  await typeAndSend(bob, 'Coffee later?');
  await typeAndSend(alice, 'Sure, 3pm works.\nI will bring the biscuits.');
  await eventually(async () => assert.equal((await messageTexts(alice)).length, 4));
  await eventually(async () => assert.equal(await alice.getByTestId('seen').count(), 1));
  await bob.getByTestId('composer').pressSequentially('See you', { delay: 50 });
  await alice.getByText('Bob is typing…').waitFor();

  await alice.screenshot({ path: path.join(ARTIFACTS, 'main.png') });
  await alice.setViewportSize({ width: 360, height: 740 });
  await alice.screenshot({ path: path.join(ARTIFACTS, 'main-360.png') });
  await alice.getByRole('button', { name: 'Back to conversations' }).click();
  await alice.screenshot({ path: path.join(ARTIFACTS, 'main-360-list.png') });
});
