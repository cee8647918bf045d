// Files and pictures: a pasted picture travels as a server-made thumbnail (sized before it loads)
// and opens full size; files picked together each show their progress and can be cancelled; other
// files show name, size and type and download under their name; refusals say why. (A picture bomb
// is refused by the server: tests/files.rs.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, eventually, pngBytes, pasteFiles, throttleUploads, typeAndSend } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('files', ['bob', 'carol']); });
after(async () => { await office?.close(); });

const message = (page, seq) => page.locator(`[data-testid="message-list"] [data-seq="${seq}"]`);

test('alice pastes a picture with a caption; bob sees the thumbnail and opens it full size', { timeout: 90_000 }, async () => {
  const alice = await office.signIn('alice', { hash: '#/dm/bob' });
  const bob = await office.signIn('bob', { hash: '#/dm/alice' });
  const picture = await pngBytes(alice, 1600, 1200);
  const composer = alice.getByTestId('composer');

  // A DM begins with words: files are offered once it has a message.
  await pasteFiles(composer, [{ name: 'image.png', type: 'image/png', bytes: picture }]);
  assert.match(await alice.getByTestId('composer-error').textContent(), /^Send Bob a message first/);
  assert.equal(await alice.getByTestId('attachment').count(), 0);
  await typeAndSend(alice, 'Morning!');
  await message(bob, 1).waitFor();
  // Alice's page counts the DM as begun (files allowed) only once it has the ack.
  await message(alice, 1).waitFor();

  await composer.fill('Floor plan for Monday');
  await pasteFiles(composer, [{ name: 'image.png', type: 'image/png', bytes: picture }]);
  const attachment = alice.getByTestId('attachment');
  assert.match(await attachment.locator('.attachment-name').textContent(), /^Pasted picture .*\.png$/);
  assert.equal(await composer.inputValue(), 'Floor plan for Monday', 'pasting a file leaves the text alone');
  await eventually(async () => assert.equal(await attachment.getByTestId('upload-status').textContent(), 'Ready'));
  await composer.press('Enter');
  await eventually(async () => assert.equal(await alice.getByTestId('attachment').count(), 0, 'the tray empties on send'));

  // Bob: the caption and a thumbnail whose box is known before it loads (4:3 in 320 × 240).
  const thumb = message(bob, 2).getByTestId('attachment-thumb');
  await thumb.waitFor();
  assert.equal(await message(bob, 2).locator('.message-body').textContent(), 'Floor plan for Monday');
  assert.deepEqual([await thumb.getAttribute('width'), await thumb.getAttribute('height')], ['320', '240']);
  assert.match(await thumb.getAttribute('src'), /\/files\/f_[A-Za-z0-9_-]{22}\/thumb$/);
  // The thumbnail is the server's small copy (longest side 480), not the 1600 px original.
  await eventually(async () => assert.equal(await thumb.evaluate((img) => img.complete && img.naturalWidth), 480));

  await thumb.click();
  const viewer = bob.getByTestId('viewer');
  await viewer.waitFor();
  const full = viewer.getByTestId('viewer-image');
  await eventually(async () => assert.equal(await full.evaluate((img) => img.complete && img.naturalWidth), 1600));
  await bob.keyboard.press('Escape');
  await eventually(async () => assert.equal(await bob.getByTestId('viewer').count(), 0, 'Esc closes the viewer'));
  await alice.context().close();
  await bob.context().close();
});

test('carol picks two files: each shows its progress, she cancels the big one and sends the other', { timeout: 120_000 }, async () => {
  const carol = await office.signIn('carol', { hash: '#/dm/alice' });
  const alice = await office.signIn('alice', { hash: '#/dm/carol' });
  await typeAndSend(carol, 'Hi Alice');
  await message(carol, 1).waitFor();
  await throttleUploads(carol, 1_000_000);
  const big = Buffer.alloc(12_000_000, 7);
  await carol.getByTestId('file-input').setInputFiles([
    { name: 'minutes.txt', mimeType: 'text/plain', buffer: Buffer.from('Minutes of the meeting\n') },
    { name: 'site-video.bin', mimeType: 'application/octet-stream', buffer: big },
  ]);
  const items = carol.getByTestId('attachment');
  assert.equal(await items.count(), 2);
  const bigItem = items.filter({ hasText: 'site-video.bin' });
  const smallItem = items.filter({ hasText: 'minutes.txt' });
  assert.equal(await bigItem.locator('.attachment-size').textContent(), '12 MB');

  // The big one moves forward while it uploads.
  const progress = bigItem.getByTestId('upload-progress');
  await eventually(async () => assert.ok((await progress.evaluate((p) => p.value)) > 0));
  const first = await progress.evaluate((p) => p.value);
  await eventually(async () => assert.ok((await progress.evaluate((p) => p.value)) > first), { timeout: 15_000 });
  assert.ok((await progress.evaluate((p) => p.value)) < 100, 'still uploading');
  assert.match(await bigItem.getByTestId('upload-status').textContent(), /^\d+%$/);
  await eventually(async () => assert.equal(await smallItem.getByTestId('upload-status').textContent(), 'Ready'));

  // Send while it is still going: the message waits for it; cancelling it lets the message go.
  await carol.getByTestId('composer').fill('Minutes attached');
  await carol.getByTestId('composer').press('Enter');
  assert.equal(await carol.getByTestId('send').textContent(), 'Sending when uploaded…');
  assert.equal(await alice.locator('[data-testid="message-list"] [data-seq]').count(), 1, 'nothing sent yet');
  await bigItem.getByTestId('upload-cancel').click();

  const card = message(alice, 2).getByTestId('attachment-file');
  await card.waitFor();
  assert.equal(await message(alice, 2).getByTestId('attachment-file').count(), 1, 'only the file that was not cancelled');
  assert.equal(await card.locator('.attachment-name').textContent(), 'minutes.txt');
  assert.equal(await card.locator('.attachment-meta').textContent(), '23 B · TXT file');
  assert.equal(await card.getAttribute('download'), 'minutes.txt');
  const download = await alice.evaluate(async (href) => {
    const res = await fetch(href);
    return [res.status, res.headers.get('content-disposition'), await res.text()];
  }, await card.getAttribute('href'));
  assert.equal(download[0], 200);
  assert.match(download[1], /^attachment;.*minutes\.txt/);
  assert.equal(download[2], 'Minutes of the meeting\n');
  await carol.context().close();
  await alice.context().close();
});

test('a file over the size limit is refused with a clear reason and must be removed before sending', { timeout: 60_000 }, async () => {
  const bob = await office.signIn('bob', { hash: '#/dm/carol' });
  await typeAndSend(bob, 'The backup follows');
  await message(bob, 1).waitFor();
  await bob.getByTestId('file-input').setInputFiles([
    { name: 'backup.zip', mimeType: 'application/zip', buffer: Buffer.alloc(25_000_001) },
  ]);
  const status = bob.getByTestId('attachment').getByTestId('upload-status');
  await eventually(async () => assert.match(await status.textContent(), /^backup\.zip is too large \(25 MB\)/), { timeout: 20_000 });
  await bob.getByTestId('composer').fill('here');
  await bob.getByTestId('composer').press('Enter');
  assert.match(await bob.getByTestId('composer-error').textContent(), /remove them/);
  await bob.getByTestId('upload-cancel').click();
  assert.equal(await bob.getByTestId('attachment').count(), 0);
  await bob.context().close();
});
