// Reactions (a picker of common emoji or any emoji typed; chips with counts and names, toggled by
// a click) and replies (a "Replying to" bar, a quote that jumps to the original, fetching older
// pages when it is not loaded yet).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, eventually, inView, messageTexts, typeAndSend, sendFramesAs, dmIdOf } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('reactions-replies', ['bob', 'carol']); });
after(async () => { await office?.close(); });

const message = (page, seq) => page.locator(`[data-testid="message-list"] [data-seq="${seq}"]`);
const chips = (page, seq) => message(page, seq).getByTestId('reaction');

/** [emoji, count, accessible name] of each chip under a message. */
function chipStates(page, seq) {
  return chips(page, seq).evaluateAll((els) => els.map((e) => [
    e.dataset.emoji, e.querySelector('.reaction-count').textContent, e.getAttribute('aria-label'), e.getAttribute('aria-pressed'),
  ]));
}

test('alice reacts from the picker; bob sees who, adds his own and takes it back', { timeout: 90_000 }, async () => {
  const alice = await office.signIn('alice', { hash: '#/dm/bob' });
  const bob = await office.signIn('bob', { hash: '#/dm/alice' });
  await typeAndSend(bob, 'The release is out!');
  await message(alice, 1).waitFor();

  await message(alice, 1).hover();
  await message(alice, 1).getByTestId('react-message').click();
  const picker = alice.getByTestId('reaction-picker');
  assert.deepEqual(await picker.getByTestId('quick-reaction').allTextContents(), ['👍', '❤️', '😂', '🎉', '😮', '😢', '🙏', '✅']);
  await picker.getByRole('button', { name: 'React with 🎉' }).click();
  assert.equal(await picker.count(), 0, 'the picker closes');

  await eventually(async () => assert.deepEqual(await chipStates(bob, 1), [['🎉', '1', '🎉 1: Alice', 'false']]));
  assert.equal(await chips(bob, 1).getAttribute('title'), 'Alice reacted with 🎉');
  await eventually(async () => assert.deepEqual(await chipStates(alice, 1), [['🎉', '1', '🎉 1: You', 'true']]));

  // Bob clicks the chip: his reaction joins; clicking again takes it back.
  await chips(bob, 1).click();
  await eventually(async () => assert.deepEqual(await chipStates(alice, 1), [['🎉', '2', '🎉 2: You and Bob', 'true']]));
  // Alice's update does not mean bob's page has the ack of his own reaction yet.
  await eventually(async () => assert.deepEqual(await chipStates(bob, 1), [['🎉', '2', '🎉 2: Alice and You', 'true']]));
  await chips(bob, 1).click();
  await eventually(async () => assert.deepEqual(await chipStates(alice, 1), [['🎉', '1', '🎉 1: You', 'true']]));

  // Any emoji can be typed; text that is not one emoji is refused before it is sent.
  await message(bob, 1).hover();
  await message(bob, 1).getByTestId('react-message').click();
  const input = bob.getByTestId('emoji-input');
  await input.fill('ok');
  await input.press('Enter');
  await bob.getByTestId('reaction-picker').getByText('Type one emoji.').waitFor();
  await input.fill('🦄');
  await input.press('Enter');
  await eventually(async () => assert.deepEqual((await chipStates(alice, 1)).map((c) => c.slice(0, 2)), [['🎉', '1'], ['🦄', '1']]));

  // Alice takes hers back: the chip goes away on both screens. Escape closes a picker.
  await chips(alice, 1).first().click();
  await eventually(async () => assert.deepEqual((await chipStates(bob, 1)).map((c) => c.slice(0, 2)), [['🦄', '1']]));
  await message(alice, 1).hover();
  await message(alice, 1).getByTestId('react-message').click();
  await alice.getByTestId('reaction-picker').waitFor();
  await alice.keyboard.press('Escape');
  assert.equal(await alice.getByTestId('reaction-picker').count(), 0);
  await alice.context().close();
  await bob.context().close();
});

test('carol replies to a message; alice jumps to it from the quote, loading older history', { timeout: 120_000 }, async () => {
  const [aliceUser, carolUser] = [office.person('alice'), office.person('carol')];
  const dm = dmIdOf(aliceUser, carolUser);
  const alice = await office.signIn('alice', { hash: '#/dm/carol' });
  const carol = await office.signIn('carol', { hash: '#/dm/alice' });
  await typeAndSend(alice, 'Where is the budget file?\nThe one for Q3.');
  await message(carol, 1).waitFor();

  // The Reply action puts a bar above the composer; × cancels it.
  await message(carol, 1).hover();
  await message(carol, 1).getByTestId('reply-message').click();
  assert.equal(await carol.getByTestId('reply-bar-text').textContent(), 'Replying to Alice: Where is the budget file?');
  await carol.getByTestId('reply-cancel').click();
  assert.equal(await carol.getByTestId('reply-bar').isVisible(), false);
  await message(carol, 1).hover();
  await message(carol, 1).getByTestId('reply-message').click();
  await typeAndSend(carol, 'In the shared drive');
  assert.equal(await carol.getByTestId('reply-bar').isVisible(), false, 'sending ends the reply');
  const quote = message(alice, 2).getByTestId('reply-quote');
  await quote.waitFor();
  assert.equal(await quote.textContent(), 'AliceWhere is the budget file?');

  // Seventy more messages, then a reply to the first one: it is far off the first page.
  const filler = Array.from({ length: 70 }, (_, i) => ({ type: 'send', conversation: dm, body: `filler ${i + 1}`, client_id: `filler-${i}` }));
  await sendFramesAs(carol, carolUser, filler.slice(0, 35), { lingerMs: 1000 });
  await sendFramesAs(carol, carolUser, filler.slice(35), { lingerMs: 1000 });
  await sendFramesAs(carol, carolUser, [{ type: 'send', conversation: dm, body: 'Also, the numbers are final', client_id: 'late-reply', reply_to: 1 }]);
  const list = await office.server.apiOk('GET', '/api/conversations', { token: aliceUser.token });
  assert.equal(list.find((s) => s.id === dm).last_seq, 73);

  const fresh = await office.signIn('alice', { hash: '#/dm/carol' });
  await message(fresh, 73).waitFor();
  assert.equal(await message(fresh, 1).count(), 0, 'the original is not loaded yet');
  await message(fresh, 73).getByTestId('reply-quote').click();
  await message(fresh, 1).waitFor();
  await eventually(async () => assert.match(await message(fresh, 1).getAttribute('class'), /highlight/));
  assert.ok(await inView(message(fresh, 1)), 'the original is scrolled into view');
  await eventually(async () => assert.doesNotMatch(await message(fresh, 1).getAttribute('class'), /highlight/), { timeout: 5000 });

  // The original is deleted: the quotes say so.
  await message(fresh, 1).hover();
  await message(fresh, 1).getByTestId('delete-message').click();
  await fresh.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await eventually(async () => assert.equal(await message(fresh, 73).getByTestId('reply-quote').textContent(), 'Alicemessage deleted'));
  await eventually(async () => assert.equal(await message(alice, 2).getByTestId('reply-quote').textContent(), 'Alicemessage deleted'));
  assert.ok((await messageTexts(fresh)).length >= 73);
});
