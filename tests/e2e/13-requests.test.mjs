// Chat requests and blocks: bob asks to be asked first; carol's first message becomes a request he
// accepts, dan's one he declines; blocking and unblocking from the DM header and the settings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, eventually, messageTexts, typeAndSend, personEntry, sendFramesAs, seesOnline, holdPuts } from './helpers.mjs';

let office;
before(async () => {
  office = await Office.open('requests', ['bob', 'carol', 'dan', 'erin']);
  // Bob chooses "Ask me first" in his settings, through the page.
  const bob = await office.signIn('bob', { hash: '#/settings' });
  await bob.getByTestId('dm-policy-ask').check();
  await bob.getByText('Saved.').waitFor();
  await bob.context().close();
});
after(async () => { await office?.close(); });

test('bob asked to be asked first: his setting is saved', async () => {
  const settings = await office.server.apiOk('GET', '/api/me/settings', { token: office.person('bob').token });
  assert.equal(settings.dm_policy, 'ask');
});

test('carol asks bob to chat; bob accepts and the conversation opens for both', { timeout: 90_000 }, async () => {
  const carolUser = office.person('carol');
  const carol = await office.signIn('carol', { hash: '#/dm/bob' });
  const bob = await office.signIn('bob');

  await typeAndSend(carol, 'Hi Bob, do you have a minute for the budget?');
  const sent = carol.getByTestId('request-sent');
  await sent.waitFor();
  assert.match(await sent.textContent(), /Chat request sent/);
  assert.equal(await carol.getByTestId('composer').isDisabled(), true, 'one request at a time');

  const request = bob.locator(`[data-testid="request"][data-from="${carolUser.id}"]`);
  await request.waitFor();
  // The request can come before bob's directory (then it says "Someone" until it does).
  await eventually(async () => assert.match(await request.textContent(), /Carol/));
  assert.match(await request.textContent(), /Hi Bob, do you have a minute for the budget\?/);
  await request.getByRole('button', { name: /^Accept/ }).click();
  await bob.getByTestId('conversation-title').filter({ hasText: 'Carol' }).waitFor();
  await eventually(async () => assert.deepEqual(await messageTexts(bob), ['Hi Bob, do you have a minute for the budget?']));
  assert.equal(await request.count(), 0);

  // Carol's page learns the answer by itself and the DM works normally from then on.
  await eventually(async () => assert.deepEqual(await messageTexts(carol), ['Hi Bob, do you have a minute for the budget?']));
  await carol.getByTestId('request-accepted').waitFor();
  await eventually(async () => assert.equal(await carol.getByTestId('composer').isDisabled(), false));
  await typeAndSend(carol, 'Great, calling you now');
  await eventually(async () => assert.deepEqual(await messageTexts(bob),
    ['Hi Bob, do you have a minute for the budget?', 'Great, calling you now']));
  await Promise.all([bob.context().close(), carol.context().close()]);
});

test('dan asks bob to chat; bob declines and dan is told', { timeout: 90_000 }, async () => {
  const danUser = office.person('dan');
  const dan = await office.signIn('dan', { hash: '#/dm/bob' });
  const bob = await office.signIn('bob');
  await typeAndSend(dan, 'Want to buy a timeshare?');
  await dan.getByTestId('request-sent').waitFor();

  // Bob opens the DM: the request waits there too, with its message.
  await bob.goto(office.server.url('/#/dm/dan'));
  const card = bob.getByTestId('request-card');
  await card.waitFor();
  assert.match(await card.textContent(), /Want to buy a timeshare\?/);
  await card.getByRole('button', { name: 'Decline' }).click();
  await eventually(async () => assert.equal(await card.count(), 0));
  assert.equal(await bob.locator(`[data-testid="request"][data-from="${danUser.id}"]`).count(), 0);
  assert.deepEqual(await messageTexts(bob), []);

  await dan.getByTestId('request-declined').waitFor();
  assert.equal(await dan.getByTestId('composer').isDisabled(), true);
  const requests = await office.server.apiOk('GET', '/api/requests', { token: office.person('bob').token });
  assert.deepEqual(requests.incoming, []);

  // After a reload the decline still stands: told again, nothing to write into.
  await dan.reload();
  await dan.getByTestId('request-declined').waitFor();
  await eventually(async () => assert.equal(await dan.getByTestId('composer').isDisabled(), true));
  await Promise.all([bob.context().close(), dan.context().close()]);
});

test('bob blocks erin from her DM header and unblocks her in the settings', { timeout: 60_000 }, async () => {
  const erinUser = office.person('erin');
  const bob = await office.signIn('bob', { hash: '#/dm/erin' });
  await bob.getByTestId('block-toggle').filter({ hasText: 'Block' }).click();
  await bob.getByRole('dialog').getByRole('button', { name: 'Block' }).click();
  await bob.getByTestId('block-toggle').filter({ hasText: 'Unblock' }).waitFor();
  assert.match(await bob.getByTestId('conversation-notice').textContent(), /You blocked Erin/);
  assert.deepEqual((await office.server.apiOk('GET', '/api/blocks', { token: office.person('bob').token })).blocked, [erinUser.id]);

  await bob.getByTestId('settings-link').click();
  const blocked = bob.locator(`[data-testid="blocked-person"][data-user-id="${erinUser.id}"]`);
  await blocked.waitFor();
  await blocked.getByRole('button', { name: 'Unblock Erin' }).click();
  await eventually(async () => assert.equal(await blocked.count(), 0));
  assert.deepEqual((await office.server.apiOk('GET', '/api/blocks', { token: office.person('bob').token })).blocked, []);
  await bob.context().close();
});

test('a choice being saved stays shown while the page redraws; a refused one puts the saved one back', { timeout: 60_000 }, async () => {
  const carol = await office.signIn('carol', { hash: '#/settings' });
  const anyone = carol.getByTestId('dm-policy-anyone');
  const ask = carol.getByTestId('dm-policy-ask');
  const dan = office.person('dan');
  await eventually(async () => assert.equal(await anyone.isChecked(), true));
  await personEntry(carol, dan).locator('.presence-dot.offline').waitFor({ timeout: 15_000 });

  // The save is held until the page has redrawn for something else: dan coming online.
  const answer = await holdPuts(carol, '**/api/me/settings');
  await ask.check();
  await sendFramesAs(carol, dan, [], { lingerMs: 100 });
  await seesOnline(carol, dan);
  assert.equal(await ask.isChecked(), true, 'the choice being saved is still shown');
  answer();
  await carol.getByText('Saved.').waitFor();
  assert.equal(await ask.isChecked(), true);
  const settings = await office.server.apiOk('GET', '/api/me/settings', { token: office.person('carol').token });
  assert.equal(settings.dm_policy, 'ask');

  // A refused save says why and shows the policy the server still has.
  await carol.unroute('**/api/me/settings');
  await carol.route('**/api/me/settings', (route) => (route.request().method() === 'PUT'
    ? route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: 'The server is busy.' } }) })
    : route.continue()));
  await anyone.check().catch(() => {}); // check() itself may see the radio flip back
  await carol.getByText('The server is busy.').waitFor();
  await eventually(async () => assert.equal(await ask.isChecked(), true));
  assert.equal(await anyone.isChecked(), false);
  await carol.context().close();
});
