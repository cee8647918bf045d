// A long conversation loads page by page as the reader scrolls up, in order, with no gaps.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, eventually, messageSeqs } from './helpers.mjs';

const TOTAL = 500;
let office;
before(async () => { office = await Office.open('history', ['bob']); });
after(async () => { await office?.close(); });

/**
 * Sends `count` messages from the page (its cookie authenticates the sockets) and waits for every
 * ack. The server allows 20 frames/s per connection, so a few sockets each send ~14/s.
 */
function seed(page, to, count) {
  return page.evaluate(async ({ to, count }) => {
    const SOCKETS = 5;
    const INTERVAL_MS = 70;
    const one = (offset) => new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${location.host}/ws`);
      const mine = [];
      for (let i = offset; i <= count; i += SOCKETS) mine.push(i);
      let acks = 0;
      ws.onerror = () => reject(new Error('seeding socket failed'));
      ws.onmessage = (e) => {
        const frame = JSON.parse(e.data);
        if (frame.type === 'hello') {
          mine.forEach((i, k) => setTimeout(() => ws.send(JSON.stringify({
            type: 'send', to, body: `history message ${i}`, client_id: `seed-${i}`,
          })), k * INTERVAL_MS));
        } else if (frame.type === 'ack' && ++acks === mine.length) {
          ws.close();
          resolve();
        } else if (frame.type === 'error') {
          reject(new Error(JSON.stringify(frame)));
        }
      };
    });
    await Promise.all(Array.from({ length: SOCKETS }, (_, k) => one(k + 1)));
  }, { to, count });
}

test('scrolling up loads older pages in order, never the whole history at once', { timeout: 180_000 }, async () => {
  const alice = await office.signIn('alice');
  await seed(alice, office.person('bob').id, TOTAL);

  const bob = await office.signIn('bob', { hash: '#/dm/alice' });
  await eventually(async () => assert.equal((await messageSeqs(bob)).at(-1), TOTAL));
  const first = await messageSeqs(bob);
  assert.ok(first.length < TOTAL, `only the latest pages load at first (${first.length})`);
  assert.deepEqual(first, Array.from({ length: first.length }, (_, i) => TOTAL - first.length + 1 + i));

  const scroller = bob.locator('.messages');
  let seqs = first;
  for (let round = 0; seqs.length < TOTAL && round < 40; round++) {
    const before = seqs.length;
    const topSeqBefore = seqs[0];
    await scroller.evaluate((el) => { el.scrollTop = 0; });
    await eventually(async () => assert.ok((await messageSeqs(bob)).length > before), { timeout: 10_000 });
    seqs = await messageSeqs(bob);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => TOTAL - seqs.length + 1 + i), 'contiguous and ascending');
    // The reader's place is kept: the message that was on top is still in view, not scrolled away.
    const kept = await bob.locator(`[data-seq="${topSeqBefore}"]`).evaluate((el) => {
      const box = el.getBoundingClientRect();
      const view = el.closest('.messages').getBoundingClientRect();
      return box.bottom > view.top && box.top < view.bottom;
    });
    assert.ok(kept, `message ${topSeqBefore} stayed in view after loading older ones`);
  }
  assert.deepEqual(seqs, Array.from({ length: TOTAL }, (_, i) => i + 1));
  await bob.getByTestId('history-edge').filter({ hasText: 'beginning of your conversation' }).waitFor();
});
