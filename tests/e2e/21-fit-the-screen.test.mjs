// Long names do not break the layout: on a phone the Search and Mentions pages stay as wide as the
// screen (their buttons within reach), and in the sidebar a long room or person name is shortened
// with "…" so the time of the last message stays in sight.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, eventually, sendFramesAs } from './helpers.mjs';

const PHONE = { width: 360, height: 740 };

let office;
let room;
before(async () => {
  office = await Office.open('fit-the-screen');
  await office.addPerson('max', 'Maximilian Fitzgerald-Henderson');
  room = await office.createRoom('max', { name: 'Quarterly planning', members: [office.person('alice').id] });
});
after(async () => { await office?.close(); });

/** How far the page and the given element reach, against the width of the screen. */
function widths(page, locator) {
  return locator.evaluate((el) => ({
    screen: window.innerWidth,
    page: document.documentElement.scrollWidth,
    right: Math.ceil(el.getBoundingClientRect().right),
  }));
}

/** Whether the "who and where" line of a result shows whole, inside its result (long lines wrap). */
function wholeLine(result) {
  return result.evaluate((el) => {
    const line = el.querySelector('.entry-name');
    return line.scrollWidth <= line.clientWidth && line.getBoundingClientRect().right <= el.getBoundingClientRect().right;
  });
}

test('on a phone, the search and mentions pages fit the screen with long names in their results', { timeout: 90_000 }, async () => {
  const [aliceUser, maxUser] = [office.person('alice'), office.person('max')];
  const alice = await office.signIn('alice', { viewport: PHONE });
  // Max asks alice in Quarterly planning; she answers him in a direct message.
  await sendFramesAs(alice, maxUser, [
    { type: 'send', conversation: room.id, body: '@alice can you check the quarterly numbers?', client_id: 'ask' },
  ]);
  await sendFramesAs(alice, aliceUser, [
    { type: 'send', to: maxUser.id, body: 'The quarterly numbers are in the sheet', client_id: 'answer' },
  ]);
  await eventually(async () => {
    const found = await office.server.apiOk('GET', '/api/search?q=quarterly', { token: aliceUser.token });
    assert.equal(found.hits.length, 2);
  });

  // Alice searches on her phone: both results show, and the Search button is still on the screen.
  await alice.evaluate(() => { location.hash = '#/search/quarterly'; });
  const hits = alice.getByTestId('search-hit');
  await eventually(async () => assert.equal(await hits.count(), 2));
  await eventually(async () => assert.match(await hits.first().textContent(),
    /Alice in a direct message with Maximilian Fitzgerald-Henderson/));
  const searchButton = alice.getByTestId('search-page').getByRole('button', { name: 'Search', exact: true });
  let fit = await widths(alice, searchButton);
  assert.ok(fit.page <= fit.screen, `the search page is ${fit.page} px wide on a ${fit.screen} px screen`);
  assert.ok(fit.right <= fit.screen, `the Search button ends at ${fit.right} px, past the ${fit.screen} px screen`);
  fit = await widths(alice, alice.getByTestId('search-sort'));
  assert.ok(fit.right <= fit.screen, `the sort menu ends at ${fit.right} px, past the ${fit.screen} px screen`);
  for (const hit of await hits.all()) {
    fit = await widths(alice, hit);
    assert.ok(fit.right <= fit.screen, `a result ends at ${fit.right} px, past the ${fit.screen} px screen`);
    assert.ok(await wholeLine(hit), 'who wrote it and where is cut off');
  }

  // Her mentions fit too.
  await alice.evaluate(() => { location.hash = '#/mentions'; });
  const mention = alice.getByTestId('mention-item');
  await eventually(async () => assert.match(await mention.textContent(), /Maximilian Fitzgerald-Henderson in # Quarterly planning/));
  fit = await widths(alice, mention);
  assert.ok(fit.page <= fit.screen, `the mentions page is ${fit.page} px wide on a ${fit.screen} px screen`);
  assert.ok(fit.right <= fit.screen, `the mention ends at ${fit.right} px, past the ${fit.screen} px screen`);
  assert.ok(await wholeLine(mention), 'who wrote it and where is cut off');
  await alice.context().close();
});

test('in the sidebar, long room and person names end in "…" and the time of the last message stays in sight', { timeout: 90_000 }, async () => {
  const [aliceUser, maxUser] = [office.person('alice'), office.person('max')];
  const team = await office.createRoom('alice', { name: 'Quarterly planning marketing team' });
  const alice = await office.signIn('alice');
  await sendFramesAs(alice, aliceUser, [
    { type: 'send', conversation: team.id, body: 'Agenda for Monday?', client_id: 'agenda' },
    { type: 'send', to: maxUser.id, body: 'Hi Max', client_id: 'hi' },
  ]);

  const entries = [
    alice.locator(`[data-testid="room"][data-conversation-id="${team.id}"]`),
    alice.locator('[data-testid="conversation"]').filter({ hasText: 'Maximilian Fitzgerald-Henderson' }),
  ];
  for (const entry of entries) {
    await entry.locator('.entry-time').filter({ hasText: /\S/ }).waitFor();
    const look = await entry.evaluate((el) => {
      const box = el.getBoundingClientRect();
      const time = el.querySelector('.entry-time').getBoundingClientRect();
      const name = el.querySelector('.entry-name');
      return {
        name: name.textContent,
        timeInside: time.left >= box.left && time.right <= box.right + 0.5,
        shortened: name.scrollWidth > name.clientWidth,
        ellipsis: getComputedStyle(name).textOverflow,
        nameEnd: name.getBoundingClientRect().right,
        timeStart: time.left,
      };
    });
    assert.ok(look.timeInside, `the time of “${look.name}” is out of its entry`);
    assert.ok(look.shortened, `“${look.name}” fits: pick a longer name for this test`);
    assert.equal(look.ellipsis, 'ellipsis', `“${look.name}” is cut without “…”`);
    assert.ok(look.nameEnd <= look.timeStart, `“${look.name}” runs under its time`);
  }
  await alice.context().close();
});
