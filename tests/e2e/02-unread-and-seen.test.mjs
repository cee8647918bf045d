// Messages arrive live; unread counts show on badges, the title and the favicon until read;
// the sender sees "Seen" once the reader has looked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, eventually, personEntry, messageTexts, typeAndSend, dmIdOf } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('unread', ['bob', 'carol']); });
after(async () => { await office?.close(); });

/** The seq of the message that "Seen" sits under, or null when there is none. */
function seenUnder(page) {
  return page.evaluate(() => {
    const seen = document.querySelectorAll('[data-testid="seen"]');
    if (seen.length > 1) return 'more than one';
    return seen[0]?.previousElementSibling?.dataset.seq ?? null;
  });
}

test('a message arrives live, is counted as unread until opened, and shows Seen', { timeout: 90_000 }, async () => {
  const [aliceUser, bobUser] = [office.person('alice'), office.person('bob')];
  const alice = await office.signIn('alice', { hash: '#/dm/bob' });
  const bob = await office.signIn('bob', { hash: '#/dm/alice' });

  await typeAndSend(alice, 'Hello Bob, lunch at noon?');
  await eventually(async () => assert.deepEqual(await messageTexts(bob), ['Hello Bob, lunch at noon?']));
  // Bob had it open and focused: it counts as read at once.
  assert.equal(await bob.title(), 'confab');
  await eventually(async () => assert.equal(await seenUnder(alice), '1'));

  // Bob looks at another conversation; alice writes again.
  await personEntry(bob, office.person('carol')).click();
  await bob.getByTestId('conversation-title').filter({ hasText: 'Carol' }).waitFor();
  await typeAndSend(alice, 'Are you there?');
  await alice.locator('[data-testid="message-list"] [data-seq="2"]').waitFor();

  const badge = personEntry(bob, aliceUser).getByTestId('unread-badge');
  await eventually(async () => assert.match(await badge.textContent(), /^1/));
  const convBadge = bob.locator(`[data-testid="conversation"][data-conversation-id="${dmIdOf(aliceUser, bobUser)}"] [data-testid="unread-badge"]`);
  assert.match(await convBadge.textContent(), /^1/);
  await eventually(async () => assert.equal(await bob.title(), '(1) confab'));
  const icon = await bob.locator('#favicon').getAttribute('href');
  assert.ok(icon.startsWith('data:image/png'), `favicon shows the count: ${icon.slice(0, 30)}`);
  assert.equal(await seenUnder(alice), '1', 'not seen while bob looks elsewhere');

  // Opening the conversation reads it: badges, title and favicon clear; alice sees Seen.
  await personEntry(bob, aliceUser).click();
  await eventually(async () => assert.deepEqual(await messageTexts(bob), ['Hello Bob, lunch at noon?', 'Are you there?']));
  await eventually(async () => assert.equal(await bob.title(), 'confab'));
  assert.equal(await badge.count(), 0);
  assert.equal(await convBadge.count(), 0);
  assert.equal(await bob.locator('#favicon').getAttribute('href'), '/favicon.svg');
  await eventually(async () => assert.equal(await seenUnder(alice), '2'));

  // The server agrees that bob has read everything.
  const list = await office.server.apiOk('GET', '/api/conversations', { token: bobUser.token });
  assert.equal(list[0].unread, 0);
  assert.equal(list[0].read_seq, 2);
});
