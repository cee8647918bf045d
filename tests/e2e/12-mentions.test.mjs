// Mentions and attention in rooms: @-completion in the composer, highlighted mentions, the mention
// badge and the Mentions page, notification levels (muted, mentions only), several typers, and
// "Seen by N" with the names.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, eventually, messageTexts, typeAndSend, personEntry, sendFramesAs, sleep, seesOnline, holdPuts } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('mentions', ['bob', 'carol', 'dan', 'erin']); });
after(async () => { await office?.close(); });

const roomEntry = (page, id) => page.locator(`[data-testid="room"][data-conversation-id="${id}"]`);
const hashOf = (room) => `#/room/${room.id.slice(5)}`;

/** Records desktop notifications instead of showing them, and makes the tab look hidden. */
function fakeNotifications() {
  window.shownNotifications = [];
  window.Notification = class {
    static permission = 'granted';
    static requestPermission() { return Promise.resolve('granted'); }
    constructor(title, options) { window.shownNotifications.push({ title, body: options?.body }); }
    close() {}
  };
  localStorage.setItem('confab.notifications', 'on');
  Object.defineProperty(document, 'hidden', { get: () => true });
}

test('alice mentions bob with @-completion; bob sees the badge, the highlight and the Mentions entry', { timeout: 90_000 }, async () => {
  const [bobUser, carolUser] = [office.person('bob'), office.person('carol')];
  const room = await office.createRoom('alice', { name: 'Marketing', members: [bobUser.id, carolUser.id] });
  const alice = await office.signIn('alice', { hash: hashOf(room) });
  const bob = await office.signIn('bob', { init: fakeNotifications });
  await alice.locator(`[data-testid="member"][data-user-id="${carolUser.id}"]`).waitFor();
  // Only a live message notifies (one fetched when bob's socket connects does not): his must be up.
  await seesOnline(bob, office.person('alice'));

  const composer = alice.getByTestId('composer');
  const options = alice.getByTestId('mention-option');
  await composer.pressSequentially('Thanks @');
  await eventually(async () => assert.deepEqual(
    await options.evaluateAll((els) => els.map((e) => e.dataset.username)), ['bob', 'carol', 'room']));
  assert.equal(await composer.getAttribute('aria-expanded'), 'true');
  await composer.press('ArrowDown');
  assert.equal(await options.nth(1).getAttribute('aria-selected'), 'true');
  await composer.press('Enter'); // picks, does not send
  assert.equal(await composer.inputValue(), 'Thanks @carol ');
  await composer.pressSequentially('and @');
  await options.first().waitFor();
  await composer.press('Escape');
  assert.equal(await alice.getByTestId('mention-menu').isVisible(), false);
  assert.equal(await composer.inputValue(), 'Thanks @carol and @');
  await composer.pressSequentially('bo');
  await eventually(async () => assert.deepEqual(await options.evaluateAll((els) => els.map((e) => e.dataset.username)), ['bob']));
  await composer.press('Tab');
  await composer.pressSequentially('for the draft');
  assert.equal(await composer.inputValue(), 'Thanks @carol and @bob for the draft');
  await composer.press('Enter');
  await eventually(async () => assert.deepEqual(await messageTexts(alice), ['Thanks @carol and @bob for the draft']));
  assert.deepEqual(await alice.locator('[data-testid="message-list"] .mention').allTextContents(), ['@carol', '@bob']);

  // Bob is elsewhere: a mention badge beside the unread count, the title counts it, a notification.
  const entry = roomEntry(bob, room.id);
  await eventually(async () => assert.equal(await entry.getByTestId('mention-badge').textContent(), '@1 mention'));
  assert.match(await entry.getByTestId('unread-badge').textContent(), /^1/);
  // Rooms of up to 20 start at "all": the title counts every unread message.
  await eventually(async () => assert.equal(await bob.title(), '(1) confab'));
  await eventually(async () => assert.equal(await bob.evaluate(() => window.shownNotifications.length), 1));
  assert.match(await bob.evaluate(() => window.shownNotifications[0].title), /Alice in Marketing/);

  await bob.getByTestId('mentions-link').click();
  const item = bob.getByTestId('mention-item');
  await eventually(async () => assert.equal(await item.count(), 1));
  assert.match(await item.textContent(), /Thanks @carol and @bob for the draft/);
  assert.equal(await item.locator('.mention-me').textContent(), '@bob');
  await item.click();
  await bob.getByTestId('conversation-title').filter({ hasText: 'Marketing' }).waitFor();
  await eventually(async () => assert.deepEqual(await messageTexts(bob), ['Thanks @carol and @bob for the draft']));
  assert.equal(await bob.locator('[data-testid="message-list"] .mention-me').textContent(), '@bob');
  await eventually(async () => assert.equal(await entry.getByTestId('mention-badge').count(), 0));
  await eventually(async () => assert.equal(await bob.title(), 'confab'));
  await Promise.all([alice.context().close(), bob.context().close()]);
});

test('notification levels: muted counts nothing, mentions-only counts and notifies mentions', { timeout: 90_000 }, async () => {
  const bobUser = office.person('bob');
  const room = await office.createRoom('alice', { name: 'Random', members: [bobUser.id] });
  const bob = await office.signIn('bob', { hash: hashOf(room), init: fakeNotifications });
  const alice = await office.signIn('alice', { hash: hashOf(room) });
  await bob.getByTestId('conversation-title').filter({ hasText: 'Random' }).waitFor();
  await bob.getByTestId('notify-level').selectOption('muted');
  await eventually(async () => {
    const list = await office.server.apiOk('GET', '/api/conversations', { token: bobUser.token });
    assert.equal(list.find((s) => s.id === room.id).notify, 'muted');
  });
  await bob.getByTestId('browse-rooms').click(); // look elsewhere

  const entry = roomEntry(bob, room.id);
  await typeAndSend(alice, 'Anyone for coffee?');
  await eventually(async () => assert.match(await entry.getAttribute('class'), /has-unread/));
  await sleep(300);
  assert.equal(await bob.title(), 'confab', 'a muted room adds nothing to the title');
  assert.equal(await bob.evaluate(() => window.shownNotifications.length), 0);

  await bob.goto(office.server.url(hashOf(room)));
  // While the new level is being saved, a redraw (carol coming online) still shows it.
  const carolUser = office.person('carol');
  await personEntry(bob, carolUser).locator('.presence-dot.offline').waitFor({ timeout: 15_000 });
  const answer = await holdPuts(bob, '**/notify');
  await bob.getByTestId('notify-level').selectOption('mentions');
  await sendFramesAs(bob, carolUser, [], { lingerMs: 100 });
  await seesOnline(bob, carolUser);
  assert.equal(await bob.getByTestId('notify-level').inputValue(), 'mentions', 'the level being saved is still shown');
  answer();
  // Bob's page applies the level once the server has it: a mention arriving before that is judged muted.
  await eventually(async () => {
    const list = await office.server.apiOk('GET', '/api/conversations', { token: bobUser.token });
    assert.equal(list.find((s) => s.id === room.id).notify, 'mentions');
  });
  await bob.getByTestId('browse-rooms').click();
  await typeAndSend(alice, 'The coffee machine is fixed');
  await eventually(async () => assert.match(await entry.getByTestId('unread-badge').textContent(), /^1/));
  await sleep(300);
  assert.equal(await bob.title(), 'confab');
  assert.equal(await bob.evaluate(() => window.shownNotifications.length), 0);
  await typeAndSend(alice, '@bob you asked about it');
  await eventually(async () => assert.equal(await bob.title(), '(1) confab'));
  await eventually(async () => assert.equal(await bob.evaluate(() => window.shownNotifications.length), 1));
  assert.match(await bob.evaluate(() => window.shownNotifications[0].title), /mentioned you/);
  await Promise.all([alice.context().close(), bob.context().close()]);
});

test('several people typing, and "Seen by 3" with the names', { timeout: 90_000 }, async () => {
  const people = ['bob', 'carol', 'dan', 'erin'].map((n) => office.person(n));
  const room = await office.createRoom('alice', { name: 'Stand-up', members: people.map((p) => p.id) });
  const alice = await office.signIn('alice', { hash: hashOf(room) });
  const bob = await office.signIn('bob', { hash: hashOf(room) });
  await bob.getByTestId('conversation-title').filter({ hasText: 'Stand-up' }).waitFor();
  const indicator = alice.getByTestId('typing-indicator');
  const typing = { type: 'typing', conversation: room.id };
  // Bob's typing goes out only once his socket is up, and reaches alice only once hers is.
  await seesOnline(alice, office.person('bob'));
  await seesOnline(bob, office.person('alice'));

  // Bob types in his browser; the others' typing frames come over their own sockets. Each step
  // repeats everyone's frame, so nobody's 5 s expiry runs out on a slow machine.
  await bob.getByTestId('composer').pressSequentially('Just a sec', { delay: 40 });
  await eventually(async () => assert.equal(await indicator.textContent(), 'Bob is typing…'));
  const typers = (...names) => Promise.all(names.map((n) => sendFramesAs(alice, office.person(n), [typing], { lingerMs: 100 })));
  await typers('bob', 'carol');
  await eventually(async () => assert.equal(await indicator.textContent(), 'Bob and Carol are typing…'));
  await typers('bob', 'carol', 'dan');
  await eventually(async () => assert.equal(await indicator.textContent(), 'Bob, Carol and Dan are typing…'));
  await typers('bob', 'carol', 'dan', 'erin');
  await eventually(async () => assert.equal(await indicator.textContent(), 'Several people are typing…'));
  await bob.getByTestId('composer').fill('');

  // Alice writes; bob reads in his browser, carol and dan mark read over their sockets.
  await typeAndSend(alice, 'Stand-up starts in 5 minutes');
  const list = alice.getByTestId('message-list');
  const seq = Number(await list.locator('[data-seq]').last().getAttribute('data-seq'));
  assert.ok(seq > 0);
  await eventually(async () => assert.deepEqual(await messageTexts(bob), ['Stand-up starts in 5 minutes']));
  for (const name of ['carol', 'dan']) await sendFramesAs(alice, office.person(name), [{ type: 'read', conversation: room.id, seq }]);
  const seen = alice.getByTestId('seen');
  await eventually(async () => assert.equal(await seen.textContent(), 'Seen by 3'));
  assert.equal(await seen.count(), 1);
  assert.equal(await seen.getAttribute('title'), 'Bob, Carol, Dan');
  assert.equal(await seen.getAttribute('aria-label'), 'Seen by Bob, Carol and Dan');
  await seen.focus();
  assert.equal(await alice.evaluate(() => document.activeElement.dataset.testid), 'seen', 'keyboard users reach the names');
  await Promise.all([alice.context().close(), bob.context().close()]);
});

test('after a reload on the Mentions page, each mention still says who wrote it', { timeout: 90_000 }, async () => {
  const [aliceUser, danUser] = [office.person('alice'), office.person('dan')];
  const room = await office.createRoom('alice', { name: 'Budget', members: [danUser.id] });
  const dan = await office.signIn('dan');
  await sendFramesAs(dan, aliceUser, [{ type: 'send', conversation: room.id, body: '@dan can you check the budget?', client_id: 'ask' }]);

  // Dan keeps #/mentions open and reloads it, as after a restart of his browser.
  await dan.evaluate(() => { location.hash = '#/mentions'; });
  const item = dan.getByTestId('mention-item').filter({ hasText: 'can you check the budget?' });
  await eventually(async () => assert.equal(await item.locator('.entry-name').textContent(), 'Alice in # Budget'));
  for (let reload = 0; reload < 3; reload += 1) {
    await dan.reload();
    await eventually(async () => assert.equal(await item.locator('.entry-name').textContent(), 'Alice in # Budget'));
    assert.equal(await item.getByTestId('avatar').textContent(), 'A', 'her initials, not a "?"');
  }
  await dan.context().close();
});

test('blocking the person who mentioned you takes the mention off the badges at once; unblocking puts it back', { timeout: 90_000 }, async () => {
  const [carolUser, erinUser] = [office.person('carol'), office.person('erin')];
  const room = await office.createRoom('alice', { name: 'Design', members: [carolUser.id, erinUser.id] });
  const erin = await office.signIn('erin', { hash: '#/dm/carol' });
  const entry = roomEntry(erin, room.id);
  const total = erin.getByTestId('mentions-count');
  await sendFramesAs(erin, carolUser, [{ type: 'send', conversation: room.id, body: '@erin could you review the mockups?', client_id: 'review' }]);
  await eventually(async () => assert.equal(await entry.getByTestId('mention-badge').textContent(), '@1 mention'));
  assert.equal((await total.textContent()).trim(), '1');

  // As a reload would show: the server no longer counts her mentions of erin.
  await erin.getByTestId('block-toggle').filter({ hasText: 'Block' }).click();
  await erin.getByRole('dialog').getByRole('button', { name: 'Block' }).click();
  await erin.getByTestId('block-toggle').filter({ hasText: 'Unblock' }).waitFor();
  await eventually(async () => assert.equal(await entry.getByTestId('mention-badge').count(), 0));
  assert.equal((await total.textContent()).trim(), '');
  const listed = await office.server.apiOk('GET', '/api/conversations', { token: erinUser.token });
  assert.equal(listed.find((s) => s.id === room.id).mentions, 0);

  await erin.getByTestId('block-toggle').filter({ hasText: 'Unblock' }).click();
  await erin.getByTestId('block-toggle').filter({ hasText: 'Block' }).waitFor();
  await eventually(async () => assert.equal(await entry.getByTestId('mention-badge').textContent(), '@1 mention'));
  assert.equal((await total.textContent()).trim(), '1');
  await erin.context().close();
});
