// Formatting people type anyway (*bold*, _italic_, `code`, ``` blocks ```, line breaks) renders as
// such, together with links and mentions, and markup inside it stays text. Plus a screenshot of
// everything new at 360 px in dark mode.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Office, ARTIFACTS, eventually, messageTexts, typeAndSend, sendFramesAs } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('formatting', ['bob']); });
after(async () => { await office?.close(); });

const body = (page, seq) => page.locator(`[data-testid="message-list"] [data-seq="${seq}"] .message-body`);

/** The message body as a small tree: [tag, text or children] for elements, strings for text. */
function shape(locator) {
  return locator.evaluate((root) => {
    const walk = (node) => {
      if (node.nodeType === Node.TEXT_NODE) return node.textContent;
      const tag = node.tagName.toLowerCase();
      const kids = [...node.childNodes].map(walk).filter((k) => k !== '');
      if (tag === 'a') return ['a', node.getAttribute('href'), ...kids];
      if (tag === 'span' && node.classList.contains('mention')) return ['mention', ...kids];
      return [tag, ...kids];
    };
    return [...root.childNodes].map(walk).filter((k) => k !== '');
  });
}

test('bold, italic, code, code blocks and line breaks render; markup inside them stays text', { timeout: 90_000 }, async () => {
  const room = { id: 'room:1' };
  const alice = await office.signIn('alice', { hash: '#/room/1' });
  const bob = await office.signIn('bob', { hash: '#/room/1' });
  const dialogs = [];
  bob.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  const cases = [
    'This is *important* and _urgent_',
    '*<img src=x onerror=alert(1)>* and `<script>alert(1)</script>`',
    '```\n<b>not bold</b>\n*not bold either*\n```',
    'first line\nsecond line',
    '_@bob see https://example.com/a_b_c_ today_',
    'snake_case_name stays, 2*3*4 too, and `code with *stars*`',
  ];
  await sendFramesAs(alice, office.person('alice'), cases.map((text, i) => ({ type: 'send', conversation: room.id, body: text, client_id: `fmt-${i}` })));
  await eventually(async () => assert.equal((await messageTexts(bob)).length, cases.length));
  const seqs = await bob.locator('[data-testid="message-list"] [data-seq]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));

  assert.deepEqual(await shape(body(bob, seqs[0])), ['This is ', ['strong', 'important'], ' and ', ['em', 'urgent']]);
  assert.deepEqual(await shape(body(bob, seqs[1])),
    [['strong', '<img src=x onerror=alert(1)>'], ' and ', ['code', '<script>alert(1)</script>']]);
  assert.deepEqual(await shape(body(bob, seqs[2])), [['pre', ['code', '<b>not bold</b>\n*not bold either*']]]);
  assert.deepEqual(await shape(body(bob, seqs[3])), ['first line\nsecond line']);
  assert.match(await body(bob, seqs[3]).innerText(), /first line\nsecond line/, 'the line break shows');
  assert.deepEqual(await shape(body(bob, seqs[4])), [['em', ['mention', '@bob'], ' see ',
    ['a', 'https://example.com/a_b_c_', 'https://example.com/a_b_c_'], ' today']]);
  assert.deepEqual(await shape(body(bob, seqs[5])),
    ['snake_case_name stays, 2*3*4 too, and ', ['code', 'code with *stars*']]);

  // Nothing typed became markup: no images, scripts or bold tags in the list.
  assert.equal(await bob.locator('[data-testid="message-list"] img, [data-testid="message-list"] script, [data-testid="message-list"] b').count(), 0);
  assert.deepEqual(dialogs, [], 'no script ran');

  // The composer's own messages format the same way while they are on the way and once sent.
  await typeAndSend(bob, 'on *my* way');
  await eventually(async () => assert.deepEqual(await shape(body(alice, seqs[5] + 1)), ['on ', ['strong', 'my'], ' way']));
  await alice.context().close();
  await bob.context().close();
});

test('screenshot: edits, deletes, reactions, replies and formatting at 360 px in dark mode', { timeout: 90_000 }, async () => {
  const alice = await office.signIn('alice', { hash: '#/dm/bob', viewport: { width: 360, height: 740 }, colorScheme: 'dark' });
  const bob = await office.signIn('bob', { hash: '#/dm/alice' });
  await typeAndSend(bob, 'Did you see the *new* build? It is at https://example.com/builds/42');
  await typeAndSend(bob, 'Run `make test` first:\n```\ncargo build\ncargo test --test browser\n```');
  await typeAndSend(bob, 'Never mind this one');
  await eventually(async () => assert.equal((await messageTexts(alice)).length, 3));
  const seqs = await alice.locator('[data-testid="message-list"] [data-seq]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  const msg = (page, seq) => page.locator(`[data-testid="message-list"] [data-seq="${seq}"]`);

  await msg(bob, seqs[2]).hover();
  await msg(bob, seqs[2]).getByTestId('delete-message').click();
  await bob.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await msg(bob, seqs[0]).hover();
  await msg(bob, seqs[0]).getByTestId('react-message').click();
  await bob.getByRole('button', { name: 'React with 👍' }).click();

  // A tap (here a click on the message's edge, away from its link) shows the actions on a touch screen.
  const tap = (seq) => msg(alice, seq).click({ position: { x: 4, y: 4 } });
  await tap(seqs[0]);
  await msg(alice, seqs[0]).getByTestId('react-message').click();
  await alice.getByRole('button', { name: 'React with 🎉' }).click();
  await tap(seqs[0]);
  await msg(alice, seqs[0]).getByTestId('reply-message').click();
  await typeAndSend(alice, 'Yes! _Much_ faster.');
  await eventually(async () => assert.equal((await messageTexts(alice)).length, 4));
  const mine = seqs[2] + 1;
  await tap(mine);
  await msg(alice, mine).getByTestId('edit-message').click();
  await alice.getByTestId('edit-input').fill('Yes! _Much_ faster, thanks.');
  await alice.getByTestId('edit-input').press('Enter');
  await msg(alice, mine).getByTestId('edited').waitFor();
  await eventually(async () => assert.equal(await msg(alice, seqs[0]).getByTestId('reaction').count(), 2));
  await tap(seqs[1]);
  await msg(alice, seqs[1]).getByTestId('reply-message').click();
  await alice.getByTestId('composer').fill('Will do');
  await tap(seqs[1]);
  await msg(alice, seqs[1]).getByTestId('react-message').click();
  await alice.getByTestId('reaction-picker').waitFor();

  // Nothing sticks out sideways at 360 px.
  const overflow = await alice.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0, 'no horizontal scrolling');
  await alice.screenshot({ path: path.join(ARTIFACTS, 'messages-360-dark.png') });
  await bob.screenshot({ path: path.join(ARTIFACTS, 'messages-wide-light.png') });
});
