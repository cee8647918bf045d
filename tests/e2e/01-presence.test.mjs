// Presence: alice watches bob's dot turn on when he signs in and off after he leaves.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, eventually, personEntry } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('presence', ['bob']); });
after(async () => { await office?.close(); });

test("bob's presence dot turns on when he signs in and off after he closes his page", { timeout: 90_000 }, async () => {
  const bob = office.person('bob');
  const alice = await office.signIn('alice');
  const dot = personEntry(alice, bob).locator('.presence-dot');
  await eventually(async () => assert.match(await dot.getAttribute('class'), /\boffline\b/));
  assert.match(await personEntry(alice, bob).textContent(), /Not signed in yet|Last seen/);

  const bobPage = await office.signIn('bob');
  await eventually(async () => assert.match(await dot.getAttribute('class'), /\bonline\b/), { timeout: 10_000 });
  assert.match(await personEntry(alice, bob).textContent(), /Online/);
  // Online people come first.
  assert.equal(await alice.locator('[data-testid="person"]').first().getAttribute('data-user-id'), String(bob.id));

  await bobPage.context().close();
  await eventually(async () => assert.match(await dot.getAttribute('class'), /\boffline\b/), { timeout: 10_000 });
  assert.match(await personEntry(alice, bob).textContent(), /Last seen just now/);
});
