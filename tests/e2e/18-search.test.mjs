// Search: "/" reaches the box, filters typed in it narrow the hits, the matched words are marked,
// and a hit opens its conversation at that message with the history around it (far back: without
// loading every page in between), from where the newest messages are one click away.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, eventually, inView, sendFramesAs, dmIdOf, messageSeqs } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('search', ['bob']); });
after(async () => { await office?.close(); });

const message = (page, seq) => page.locator(`[data-testid="message-list"] [data-seq="${seq}"]`);
const FILLER = 200;

/** [sender line, marked words] of each hit on the search page. */
function hitStates(page) {
  return page.getByTestId('search-hit').evaluateAll((els) => els.map((e) => [
    e.querySelector('.entry-name').textContent, [...e.querySelectorAll('mark')].map((m) => m.textContent),
  ]));
}

test('alice finds bob’s old invoice with from: and opens it in its conversation', { timeout: 120_000 }, async () => {
  const [aliceUser, bobUser] = [office.person('alice'), office.person('bob')];
  const dm = dmIdOf(aliceUser, bobUser);
  const alice = await office.signIn('alice');

  // Bob's invoice message, then enough chatter that it is far off the first page.
  await sendFramesAs(alice, bobUser, [
    { type: 'send', to: aliceUser.id, body: 'Here is the Invoice for März, see the second line.', client_id: 'invoice' },
    { type: 'send', conversation: 'room:1', body: 'Lunch at noon?', client_id: 'lunch' },
  ]);
  for (let batch = 0; batch < FILLER / 50; batch += 1) {
    const frames = Array.from({ length: 50 }, (_, i) => ({
      type: 'send', conversation: dm, body: `chatter ${batch * 50 + i + 1}`, client_id: `chatter-${batch}-${i}`,
    }));
    await sendFramesAs(alice, bobUser, frames, { lingerMs: 1000 });
  }
  await sendFramesAs(alice, aliceUser, [{ type: 'send', conversation: 'room:1', body: 'The invoices are in the shared drive', client_id: 'mine' }]);
  const list = await office.server.apiOk('GET', '/api/conversations', { token: aliceUser.token });
  assert.equal(list.find((s) => s.id === dm).last_seq, FILLER + 1);
  // Indexing follows a commit within about a second.
  await eventually(async () => {
    const found = await office.server.apiOk('GET', '/api/search?q=inv', { token: aliceUser.token });
    assert.equal(found.hits.length, 2);
  });

  // "/" focuses the box; the search page lists both invoice messages, the words marked.
  await alice.getByTestId('people-filter').waitFor();
  await alice.locator('body').click();
  await alice.keyboard.press('/');
  assert.equal(await alice.evaluate(() => document.activeElement?.dataset.testid), 'search-input');
  await alice.keyboard.type('inv');
  await alice.keyboard.press('Enter');
  await eventually(async () => assert.deepEqual(await hitStates(alice), [
    ['Alice in # General', ['invoices']],
    ['Bob in a direct message', ['Invoice']],
  ]));
  assert.equal(await alice.getByTestId('search-status').textContent(), '2 messages');

  // A filter typed in the box narrows it; an unknown name says what is wrong.
  const box = alice.getByTestId('search-page-input');
  await box.fill('inv from:nobody');
  await box.press('Enter');
  await eventually(async () => assert.match(await alice.getByTestId('search-status').textContent(), /nobody/));
  assert.equal(await alice.getByTestId('search-hit').count(), 0);
  await box.fill('inv from:bob');
  await box.press('Enter');
  await eventually(async () => assert.deepEqual(await hitStates(alice), [['Bob in a direct message', ['Invoice']]]));
  assert.equal(await alice.getByTestId('search-snippet').textContent(), 'Here is the Invoice for März, see the second line.');
  await alice.getByTestId('search-sort').selectOption('best');
  await eventually(async () => assert.equal(await alice.getByTestId('search-hit').count(), 1));

  // Opening the hit: the DM at that message, highlighted and in view, with what came after it,
  // but not the newest messages (nothing in between was loaded).
  await alice.getByTestId('search-hit').click();
  await eventually(async () => assert.equal(await alice.getByTestId('conversation-title').textContent(), 'Bob'));
  await message(alice, 1).waitFor();
  await eventually(async () => assert.match(await message(alice, 1).getAttribute('class'), /highlight/));
  assert.ok(await inView(message(alice, 1)), 'the hit is scrolled into view');
  const seqs = await messageSeqs(alice);
  assert.ok(seqs.includes(2) && seqs.includes(10), `the history after it is there: ${seqs.slice(0, 5)}…`);
  assert.ok(!seqs.includes(FILLER + 1), 'the newest message is not loaded yet');
  assert.ok(seqs.length < FILLER / 2, `only a window of history was loaded (${seqs.length})`);

  // A live message does not drop into the middle of old history; the pill goes to the newest.
  await sendFramesAs(alice, bobUser, [{ type: 'send', conversation: dm, body: 'Did you get it?', client_id: 'late' }]);
  const pill = alice.getByTestId('new-messages-pill');
  await pill.waitFor();
  assert.equal(await pill.textContent(), 'Jump to the latest messages ↓');
  assert.ok(!(await messageSeqs(alice)).includes(FILLER + 2));
  await pill.click();
  await message(alice, FILLER + 2).waitFor();
  await eventually(async () => assert.ok(!(await messageSeqs(alice)).includes(1), 'the window made way for the latest page'));
  assert.equal(await pill.isVisible(), false);
  await alice.context().close();
});

test('the window pages on towards the newest as alice scrolls down', { timeout: 60_000 }, async () => {
  const alice = await office.signIn('alice', { hash: '#/dm/bob/3' });
  await message(alice, 3).waitFor();
  const before = (await messageSeqs(alice)).at(-1);
  assert.ok(before < FILLER, `a window around message 3 (to ${before})`);
  for (let i = 0; i < 8; i += 1) {
    await alice.locator('.messages').evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await alice.waitForTimeout(300);
  }
  await eventually(async () => assert.ok((await messageSeqs(alice)).at(-1) > before, 'newer pages were loaded'));
  await alice.context().close();
});
