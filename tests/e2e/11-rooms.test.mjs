// Rooms: General for everyone, creating a private room and adding a colleague who sees it appear
// live, the member list, leaving and being removed, the room browser (search and join), and links to
// rooms one is not in.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, eventually, messageTexts, typeAndSend } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('rooms', ['bob', 'carol', 'dan']); });
after(async () => { await office?.close(); });

const roomEntry = (page, id) => page.locator(`[data-testid="room"][data-conversation-id="${id}"]`);
const member = (page, person) => page.locator(`[data-testid="member-panel"] [data-testid="member"][data-user-id="${person.id}"]`);

test('General is there for everyone and cannot be left', { timeout: 60_000 }, async () => {
  const alice = await office.signIn('alice');
  await roomEntry(alice, 'room:1').click();
  await alice.getByTestId('conversation-title').filter({ hasText: 'General' }).waitFor();
  for (const name of ['alice', 'bob', 'carol', 'dan']) await member(alice, office.person(name)).waitFor();
  assert.equal(await alice.getByTestId('leave-room').isVisible(), false, 'nobody is offered to leave General');
  assert.equal(await alice.getByTestId('add-people').isVisible(), false, 'General is open: people are not added');

  const refused = await office.server.api('POST', '/api/rooms/room:1/leave', { token: office.person('bob').token });
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error.code, 'cannot_leave_general');
  await alice.context().close();
});

test('alice creates a private room and adds bob, who sees it appear live', { timeout: 90_000 }, async () => {
  const [bobUser] = [office.person('bob')];
  const alice = await office.signIn('alice');
  const bob = await office.signIn('bob');

  await alice.getByTestId('new-room').click();
  const dialog = alice.getByTestId('create-room-dialog');
  await dialog.getByLabel('Name').fill('Launch plans');
  await dialog.getByLabel('Topic (optional)').fill('Everything for the Q3 launch');
  await dialog.getByLabel(/Private/).check();
  await dialog.getByRole('button', { name: 'Create room' }).click();
  await alice.getByTestId('conversation-title').filter({ hasText: 'Launch plans' }).waitFor();
  assert.match(await alice.getByTestId('conversation-status').textContent(), /Everything for the Q3 launch · 1 member/);
  const id = await alice.locator('.conv-pane').getAttribute('data-conversation-id');
  assert.match(id, /^room:\d+$/);
  assert.equal(await roomEntry(bob, id).count(), 0, 'a private room is invisible to others');

  await alice.getByTestId('add-people').click();
  const add = alice.getByTestId('add-people-dialog');
  await add.locator(`[data-testid="picker-person"][data-user-id="${bobUser.id}"]`).click();
  await add.getByRole('button', { name: 'Add' }).click();
  await member(alice, bobUser).waitFor();
  assert.match(await alice.getByTestId('members-toggle').textContent(), /Members \(2\)/);

  // Bob did nothing: the room shows up in his sidebar by itself.
  await roomEntry(bob, id).waitFor({ timeout: 10_000 });
  await typeAndSend(alice, 'Welcome Bob!');
  await eventually(async () => assert.equal(await roomEntry(bob, id).getByTestId('unread-badge').count(), 1));
  await roomEntry(bob, id).click();
  await eventually(async () => assert.deepEqual(await messageTexts(bob), ['Welcome Bob!']));
  await member(bob, office.person('alice')).waitFor();
  assert.match(await member(bob, office.person('alice')).textContent(), /Online/);
  assert.match(await member(bob, office.person('alice')).textContent(), /creator/);
  // Bob is neither the creator nor an admin: no controls he cannot use.
  assert.equal(await bob.getByTestId('room-settings').isVisible(), false);
  assert.equal(await bob.getByTestId('remove-member').count(), 0);
  assert.equal(await alice.getByTestId('room-settings').isVisible(), true);
  await Promise.all([alice.context().close(), bob.context().close()]);
});

test('bob leaves a room; carol is removed and her open tab drops it', { timeout: 90_000 }, async () => {
  const [aliceUser, bobUser, carolUser] = ['alice', 'bob', 'carol'].map((n) => office.person(n));
  const room = await office.createRoom('alice', { name: 'Book club', visibility: 'private', members: [bobUser.id, carolUser.id] });
  const alice = await office.signIn('alice', { hash: `#/room/${room.id.slice(5)}` });
  const bob = await office.signIn('bob', { hash: `#/room/${room.id.slice(5)}` });
  const carol = await office.signIn('carol', { hash: `#/room/${room.id.slice(5)}` });
  for (const page of [alice, bob, carol]) await page.getByTestId('conversation-title').filter({ hasText: 'Book club' }).waitFor();
  await member(alice, bobUser).waitFor();
  await member(alice, carolUser).waitFor();

  await bob.getByTestId('leave-room').click();
  await bob.getByRole('dialog').getByRole('button', { name: 'Leave' }).click();
  await eventually(async () => assert.equal(await roomEntry(bob, room.id).count(), 0));
  await eventually(async () => assert.equal(await bob.locator('.conv-pane').count(), 0), { timeout: 5_000 });
  await eventually(async () => assert.equal(await member(alice, bobUser).count(), 0), { timeout: 5_000 });

  // The creator removes carol: her tab loses the room at once, and the server agrees.
  await member(alice, carolUser).getByTestId('remove-member').click();
  await alice.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
  await eventually(async () => assert.equal(await roomEntry(carol, room.id).count(), 0));
  await eventually(async () => assert.equal(await carol.locator('.conv-pane').count(), 0), { timeout: 5_000 });
  await eventually(async () => assert.match(await alice.getByTestId('members-toggle').textContent(), /Members \(1\)/));
  const gone = await office.server.api('GET', `/api/conversations/${room.id}/messages`, { token: carolUser.token });
  assert.equal(gone.status, 404);
  assert.ok(await member(alice, aliceUser).isVisible());
  await Promise.all([alice, bob, carol].map((p) => p.context().close()));
});

test('dan finds open rooms by name and topic in the room browser and joins one', { timeout: 90_000 }, async () => {
  const danUser = office.person('dan');
  const design = await office.createRoom('carol', { name: 'Design reviews', topic: 'Weekly critique of mockups' });
  await office.createRoom('carol', { name: 'Lunch', topic: 'Where and when' });
  const secret = await office.createRoom('carol', { name: 'Secret critique', visibility: 'private' });
  const carol = await office.signIn('carol', { hash: `#/room/${design.id.slice(5)}` });
  const dan = await office.signIn('dan');

  await dan.getByTestId('browse-rooms').click();
  const results = dan.getByTestId('room-result');
  await eventually(async () => assert.ok((await results.count()) >= 3)); // General, Design reviews, Lunch…
  await dan.getByTestId('room-search').fill('CRITIQUE');
  await eventually(async () => assert.deepEqual(await results.evaluateAll((els) => els.map((e) => e.dataset.roomId)), [design.id]));
  assert.equal(await dan.locator(`[data-room-id="${secret.id}"]`).count(), 0, 'private rooms are not listed');
  await dan.getByTestId('room-search').fill('lunch');
  await eventually(async () => assert.match(await results.first().textContent(), /Lunch/));
  assert.equal(await results.count(), 1);

  await dan.getByTestId('room-search').fill('design');
  await dan.getByRole('button', { name: 'Join Design reviews' }).click();
  await dan.getByTestId('conversation-title').filter({ hasText: 'Design reviews' }).waitFor();
  await roomEntry(dan, design.id).waitFor();
  // Carol, in the room, sees dan arrive in the member list.
  await eventually(async () => assert.equal(await member(carol, danUser).count(), 1));
  await typeAndSend(dan, 'Hi all, glad to join');
  await eventually(async () => assert.deepEqual(await messageTexts(carol), ['Hi all, glad to join']));

  // The creator renames it and changes its topic; dan's page follows live.
  await carol.getByTestId('room-settings').click();
  const settings = carol.getByTestId('room-settings-dialog');
  await settings.getByLabel('Name').fill('Design critiques');
  await settings.getByLabel('Topic').fill('Mockups on Thursdays');
  await settings.getByRole('button', { name: 'Save' }).click();
  await dan.getByTestId('conversation-title').filter({ hasText: 'Design critiques' }).waitFor();
  await eventually(async () => assert.match(await dan.getByTestId('conversation-status').textContent(), /^Mockups on Thursdays · 2 members$/));
  assert.match(await roomEntry(dan, design.id).textContent(), /Design critiques/);

  // Archived rooms leave the sidebar.
  await carol.getByTestId('room-settings').click();
  await carol.getByTestId('archive-room').click();
  await carol.getByRole('dialog', { name: /Archive/ }).getByRole('button', { name: 'Archive' }).click();
  await eventually(async () => assert.equal(await roomEntry(dan, design.id).count(), 0));
  await eventually(async () => assert.equal(await roomEntry(carol, design.id).count(), 0));
  await Promise.all([carol.context().close(), dan.context().close()]);
});

test('the sidebar filter finds rooms by name and topic, and sections fold', { timeout: 60_000 }, async () => {
  const rooms = [];
  for (const name of ['Alpha team', 'Beta testers', 'Gamma rays']) rooms.push(await office.createRoom('bob', { name, topic: `${name} topic` }));
  await office.createRoom('bob', { name: 'Delta', topic: 'about the rays of the sun' });
  const bob = await office.signIn('bob');
  await roomEntry(bob, rooms[0].id).waitFor();
  await bob.getByTestId('people-filter').fill('rays');
  await eventually(async () => assert.deepEqual(
    await bob.locator('[data-testid="room"] .entry-name').allTextContents(), ['Delta', 'Gamma rays']));
  await bob.getByTestId('people-filter').fill('');

  await bob.getByTestId('section-rooms').click();
  assert.equal(await bob.getByTestId('section-rooms').getAttribute('aria-expanded'), 'false');
  assert.equal(await roomEntry(bob, rooms[0].id).isVisible(), false);
  await bob.reload();
  await bob.getByTestId('people-filter').waitFor();
  assert.equal(await bob.getByTestId('section-rooms').getAttribute('aria-expanded'), 'false', 'remembered');
  await bob.getByTestId('section-rooms').click();
  assert.equal(await roomEntry(bob, rooms[0].id).isVisible(), true);
  await bob.context().close();
});

test('a link to a room that does not exist, or that dan is not in, shows that it is not there', { timeout: 90_000 }, async () => {
  const danUser = office.person('dan');
  const board = await office.createRoom('carol', { name: 'Board', visibility: 'private' });
  const garden = await office.createRoom('carol', { name: 'Garden club', topic: 'Tomatoes' });
  const dan = await office.signIn('dan', { hash: '#/room/999' });
  const notFound = dan.getByTestId('not-found');
  /** Follows a link in the page: the pane has changed when this returns. */
  const open = (hash) => dan.evaluate((h) => new Promise((resolve) => {
    addEventListener('hashchange', () => setTimeout(resolve), { once: true });
    location.hash = h;
  }), hash);
  const nothingToDo = async () => {
    assert.equal(await dan.locator('.conv-pane').count(), 0, 'no room page');
    assert.equal(await dan.getByTestId('leave-room').count(), 0, 'no "Leave room"');
    assert.equal(await dan.getByTestId('add-people').count(), 0, 'no "Add people"');
    assert.equal(await dan.getByTestId('composer').count(), 0, 'no message box');
  };

  // A room that never existed.
  await notFound.waitFor();
  assert.match(await notFound.textContent(), /No room here.*You are not in this room, or it does not exist/);
  await nothingToDo();

  // Someone else's private room, opened from a link they shared.
  await open(`#/room/${board.id.slice(5)}`);
  await notFound.waitFor();
  await nothingToDo();
  assert.doesNotMatch(await dan.locator('#pane').textContent(), /Board/, 'the room’s name stays private');

  // An open room he is not in: the page points him to the room browser, where he can join it.
  await open(`#/room/${garden.id.slice(5)}`);
  await notFound.waitFor();
  await nothingToDo();
  await notFound.getByRole('link', { name: 'Browse rooms' }).click();
  await dan.getByRole('button', { name: 'Join Garden club' }).click();
  await dan.getByTestId('conversation-title').filter({ hasText: 'Garden club' }).waitFor();
  await dan.getByTestId('composer').waitFor();

  // Back on the private room's link: once carol adds him, the room opens where the notice was.
  await open(`#/room/${board.id.slice(5)}`);
  await notFound.waitFor();
  await office.server.apiOk('POST', `/api/rooms/${board.id}/members`, { token: office.person('carol').token, body: { user: danUser.id } });
  await dan.getByTestId('conversation-title').filter({ hasText: 'Board' }).waitFor();
  assert.equal(await notFound.count(), 0);
  await dan.context().close();
});
