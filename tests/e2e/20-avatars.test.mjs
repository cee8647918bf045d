// Profile pictures: chosen and previewed in Settings, saved, and shown at once wherever the person
// appears on everyone's screens (sidebar, messages, member list, their own other tabs); removed,
// the initials come back everywhere.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, eventually, personEntry, pngBytes, typeAndSend } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('avatars', ['bob']); });
after(async () => { await office?.close(); });

/** The picture shown in an avatar, or null when it shows initials. */
function pictureIn(avatarLocator) {
  return avatarLocator.evaluate((el) => {
    const img = el.querySelector('img');
    return img ? { src: img.getAttribute('src'), width: img.complete ? img.naturalWidth : 0 } : null;
  });
}

test('alice sets a profile picture; bob and her other tab see it live, then the initials again', { timeout: 90_000 }, async () => {
  const aliceUser = office.person('alice');
  const settings = await office.signIn('alice', { hash: '#/settings' });
  const otherTab = await office.signIn('alice', { hash: '#/dm/bob' });
  const bob = await office.signIn('bob', { hash: '#/dm/alice' });
  await typeAndSend(otherTab, 'Hello Bob');
  const bobSidebar = personEntry(bob, aliceUser).getByTestId('avatar');
  const bobMessage = bob.locator('[data-testid="message-list"] .group').first().locator(':scope > [data-testid="avatar"]');
  await bobMessage.waitFor();
  assert.equal(await pictureIn(bobSidebar), null, 'initials to begin with');
  assert.equal(await bobSidebar.textContent(), 'A');

  // Not a picture: refused with a reason, nothing changes.
  await settings.getByTestId('avatar-input').setInputFiles({ name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not a picture at all') });
  await settings.getByTestId('avatar-save').click();
  await eventually(async () => assert.match(await settings.getByTestId('avatar-error').textContent(), /not a picture/));

  // A wide photo: previewed before saving, then cropped square by the server.
  const photo = await pngBytes(settings, 900, 600);
  await settings.getByTestId('avatar-input').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: photo });
  await eventually(async () => assert.equal(await settings.getByTestId('avatar-preview').evaluate((img) => img.complete && img.naturalWidth), 900));
  assert.equal(await settings.getByTestId('avatar-error').textContent(), '');
  await settings.getByTestId('avatar-save').click();

  const url = new RegExp(`^/api/users/${aliceUser.id}/avatar\\?v=\\w+$`);
  for (const where of [bobSidebar, bobMessage, otherTab.locator('.me [data-testid="avatar"]'), settings.getByTestId('avatar-current').getByTestId('avatar')]) {
    await eventually(async () => {
      const pic = await pictureIn(where);
      assert.match(pic?.src ?? '', url);
      assert.equal(pic.width, 256, 'the server’s 256 px square');
    });
  }
  // The conversation header and the room's member list show it too.
  const header = bob.locator('.pane-header [data-testid="avatar"]');
  await eventually(async () => assert.match((await pictureIn(header))?.src ?? '', url));
  await bob.goto(office.server.url('/#/room/1'));
  const member = bob.locator(`[data-testid="member"][data-user-id="${aliceUser.id}"] [data-testid="avatar"]`);
  await eventually(async () => assert.match((await pictureIn(member))?.src ?? '', url));

  // Removed: initials everywhere again.
  await settings.getByTestId('avatar-remove').click();
  await eventually(async () => assert.equal(await pictureIn(member), null));
  await eventually(async () => assert.equal(await pictureIn(otherTab.locator('.me [data-testid="avatar"]')), null));
  // The other tab's frame does not mean this page has the answer to its own request yet.
  await eventually(async () => assert.equal(await settings.getByTestId('avatar-remove').isVisible(), false));
  for (const page of [settings, otherTab, bob]) await page.context().close();
});
