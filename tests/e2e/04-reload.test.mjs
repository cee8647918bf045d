// Reloading keeps the open conversation (from the URL) and the unsent draft.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, personEntry, typeAndSend, messageTexts, eventually } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('reload', ['bob', 'carol']); });
after(async () => { await office?.close(); });

test('reload keeps the open conversation and an unsent draft', { timeout: 60_000 }, async () => {
  const alice = await office.signIn('alice');
  await personEntry(alice, office.person('bob')).click();
  await alice.getByTestId('conversation-title').filter({ hasText: 'Bob' }).waitFor();
  assert.equal(new URL(alice.url()).hash, '#/dm/bob');
  await typeAndSend(alice, 'sent before the reload');
  await alice.locator('[data-testid="message-list"] [data-seq="1"]').waitFor();
  await alice.getByTestId('composer').fill('half-written thought\nsecond line');

  // A draft in another conversation is its own.
  await personEntry(alice, office.person('carol')).click();
  await alice.getByTestId('conversation-title').filter({ hasText: 'Carol' }).waitFor();
  assert.equal(await alice.getByTestId('composer').inputValue(), '');
  await alice.getByTestId('composer').fill('note for carol');
  await alice.goBack();
  await alice.getByTestId('conversation-title').filter({ hasText: 'Bob' }).waitFor();

  await alice.reload();
  await alice.getByTestId('conversation-title').filter({ hasText: 'Bob' }).waitFor();
  assert.equal(new URL(alice.url()).hash, '#/dm/bob');
  assert.equal(await alice.getByTestId('composer').inputValue(), 'half-written thought\nsecond line');
  await eventually(async () => assert.deepEqual(await messageTexts(alice), ['sent before the reload']));

  await alice.goto(office.server.url('/#/dm/carol'));
  await alice.getByTestId('conversation-title').filter({ hasText: 'Carol' }).waitFor();
  assert.equal(await alice.getByTestId('composer').inputValue(), 'note for carol');
});
