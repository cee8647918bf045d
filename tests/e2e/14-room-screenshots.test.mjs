// Screenshots of a room, wide, at 360 px and in dark mode, for people to look at (not compared).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Office, ARTIFACTS, typeAndSend, eventually, messageTexts, messageSeqs, sendFramesAs } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('room-screenshots', ['bob', 'carol', 'dan']); });
after(async () => { await office?.close(); });

test('room screenshots (wide, 360 px, dark)', { timeout: 120_000 }, async () => {
  const [bobUser, carolUser, danUser] = ['bob', 'carol', 'dan'].map((n) => office.person(n));
  const room = await office.createRoom('alice', {
    name: 'Office move', topic: 'Boxes, keys and the new coffee machine', members: [bobUser.id, carolUser.id, danUser.id],
  });
  await office.createRoom('carol', { name: 'Design reviews', topic: 'Weekly critique', members: [office.person('alice').id] });
  await office.createRoom('alice', { name: 'Leadership', visibility: 'private', members: [bobUser.id] });
  const hash = `#/room/${room.id.slice(5)}`;
  const bob = await office.signIn('bob', { hash });
  const alice = await office.signIn('alice', { hash, viewport: { width: 1200, height: 760 } });
  await typeAndSend(alice, 'Morning all! The movers arrive at 9 on Friday.');
  await typeAndSend(bob, '@alice do we need to pack our own desks?');
  await typeAndSend(alice, 'Yes please, boxes are in the kitchen. @room labels are at reception.');
  // Wait for the server's ack of the last message: until then it has no seq, and carol would read an older one.
  await eventually(async () => assert.equal((await messageSeqs(alice)).length, 3));
  const seq = (await messageSeqs(alice)).at(-1);
  await sendFramesAs(alice, carolUser, [{ type: 'read', conversation: room.id, seq }]);
  await alice.getByTestId('seen').filter({ hasText: 'Seen by 2' }).waitFor();
  await bob.getByTestId('composer').pressSequentially('On it', { delay: 40 });
  await alice.getByText('Bob is typing…').waitFor();

  await alice.screenshot({ path: path.join(ARTIFACTS, 'room.png') });
  await alice.setViewportSize({ width: 360, height: 740 });
  await alice.screenshot({ path: path.join(ARTIFACTS, 'room-360.png') });
  await alice.getByTestId('members-toggle').click();
  await alice.getByTestId('member-panel').waitFor();
  await alice.screenshot({ path: path.join(ARTIFACTS, 'room-360-members.png') });
  await alice.getByRole('button', { name: 'Close the member list' }).click();
  await alice.getByRole('button', { name: 'Back to conversations' }).click();
  await alice.screenshot({ path: path.join(ARTIFACTS, 'room-360-list.png') });

  const dark = await office.signIn('bob', { hash, colorScheme: 'dark', viewport: { width: 1200, height: 760 } });
  await eventually(async () => assert.equal((await messageTexts(dark)).length, 3));
  await dark.screenshot({ path: path.join(ARTIFACTS, 'room-dark.png') });
  await dark.setViewportSize({ width: 360, height: 740 });
  await dark.screenshot({ path: path.join(ARTIFACTS, 'room-dark-360.png') });
  await dark.getByRole('button', { name: 'Back to conversations' }).click();
  await dark.getByTestId('new-room').click();
  await dark.getByTestId('create-room-dialog').waitFor();
  await dark.screenshot({ path: path.join(ARTIFACTS, 'room-dark-360-create.png') });
});
