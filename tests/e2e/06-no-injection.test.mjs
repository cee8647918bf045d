// Message text is text: markup is shown literally and runs nothing; only http(s) URLs become links.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, eventually, messageTexts, typeAndSend, sleep } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('injection', ['bob']); });
after(async () => { await office?.close(); });

test('markup in a message is shown as literal text and runs nothing', { timeout: 60_000 }, async () => {
  const alice = await office.signIn('alice', { hash: '#/dm/bob' });
  const bob = await office.signIn('bob', { hash: '#/dm/alice' });
  const dialogs = [];
  for (const page of [alice, bob]) {
    page.on('dialog', async (dialog) => {
      dialogs.push(dialog.message());
      await dialog.dismiss();
    });
  }

  const attacks = [
    '<img src=x onerror=alert(1)>',
    '<script>alert(2)</script>',
    'javascript:alert(3) and <a href="javascript:alert(4)">click</a>',
    '<b>bold</b> see https://example.com/path?q=1&r=2.',
  ];
  for (const text of attacks) await typeAndSend(alice, text);
  await eventually(async () => assert.deepEqual(await messageTexts(bob), attacks));
  await sleep(500); // an onerror handler would have fired by now

  for (const page of [alice, bob]) {
    const list = page.getByTestId('message-list');
    assert.equal(await list.locator('img, script, b').count(), 0, 'no element came from message text');
    const links = await list.locator('a').evaluateAll((as) => as.map((a) => ({
      href: a.getAttribute('href'), rel: a.rel, target: a.target, text: a.textContent,
    })));
    assert.deepEqual(links, [{
      href: 'https://example.com/path?q=1&r=2', rel: 'noopener noreferrer', target: '_blank',
      text: 'https://example.com/path?q=1&r=2',
    }]);
  }
  assert.deepEqual(dialogs, []);
});
