// Editing and deleting messages: an inline editor on your own messages (for 24 hours), "(edited)"
// and "message deleted" live on the other person's screen, and edits made while someone was
// offline shown once they reconnect (the `changes` catch-up).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, eventually, messageTexts, messageSeqs, typeAndSend, dmIdOf } from './helpers.mjs';

let office;
before(async () => { office = await Office.open('edit-delete', ['bob', 'carol']); });
after(async () => { await office?.close(); });

const message = (page, seq) => page.locator(`[data-testid="message-list"] [data-seq="${seq}"]`);

/**
 * Lets a test cut a page's WebSocket and keep it from reconnecting, as a lost network would
 * (runs in the page before its scripts).
 */
function controllableSocket() {
  const Original = window.WebSocket;
  const sockets = [];
  window.WebSocket = class extends Original {
    constructor(url, protocols) {
      super(window.socketBlocked ? String(url).replace('/ws', '/no-such-socket') : url, protocols);
      sockets.push(this);
    }
  };
  window.goOffline = () => {
    window.socketBlocked = true;
    for (const s of sockets) s.close();
  };
  window.goOnline = () => {
    window.socketBlocked = false;
    window.dispatchEvent(new Event('online'));
  };
}

test('alice edits her message: an inline editor, then the new text and "(edited)" on bob\'s screen', { timeout: 90_000 }, async () => {
  const alice = await office.signIn('alice', { hash: '#/dm/bob' });
  const bob = await office.signIn('bob', { hash: '#/dm/alice' });
  await typeAndSend(alice, 'Lunch at noon?');
  // Stored before bob answers (his socket may be up before hers): it is message 1.
  await message(alice, 1).waitFor();
  await typeAndSend(bob, 'Sounds good');
  // Bob's own message shows at once, before it is sent: wait until alice's page has it.
  await eventually(async () => assert.deepEqual(await messageTexts(alice), ['Lunch at noon?', 'Sounds good']));
  await eventually(async () => assert.deepEqual(await messageTexts(bob), ['Lunch at noon?', 'Sounds good']));

  // Escape cancels without changing anything.
  await message(alice, 1).hover();
  await message(alice, 1).getByTestId('edit-message').click();
  const editor = alice.getByTestId('edit-input');
  assert.equal(await editor.inputValue(), 'Lunch at noon?');
  await editor.fill('Lunch at never');
  await editor.press('Escape');
  assert.equal(await editor.count(), 0);
  assert.deepEqual(await messageTexts(alice), ['Lunch at noon?', 'Sounds good']);
  assert.equal(await alice.getByTestId('edited').count(), 0);

  // Enter saves; both screens show the new text and "(edited)".
  await message(alice, 1).hover();
  await message(alice, 1).getByTestId('edit-message').click();
  await editor.fill('Lunch at 1pm?');
  await editor.press('Enter');
  await eventually(async () => assert.deepEqual(await messageTexts(bob), ['Lunch at 1pm?', 'Sounds good']));
  await message(bob, 1).getByTestId('edited').waitFor();
  assert.equal(await message(bob, 1).getByTestId('edited').textContent(), ' (edited)');
  await message(alice, 1).getByTestId('edited').waitFor();
  assert.deepEqual(await messageTexts(alice), ['Lunch at 1pm?', 'Sounds good']);

  // The keyboard reaches the action: arrows move between messages, Tab into the focused one's
  // actions. The Save button works too.
  await alice.locator('.messages').focus();
  await alice.keyboard.press('ArrowUp');
  await alice.keyboard.press('ArrowUp');
  assert.equal(await alice.evaluate(() => document.activeElement.dataset.seq), '1');
  await message(alice, 1).getByTestId('reply-message').waitFor({ state: 'visible' });
  await alice.keyboard.press('Tab'); // Reply
  await alice.keyboard.press('Tab'); // React
  await alice.keyboard.press('Tab'); // Edit
  assert.equal(await alice.evaluate(() => document.activeElement.dataset.testid), 'edit-message');
  await alice.keyboard.press('Enter');
  await editor.fill('Lunch at 1:30?');
  await alice.getByTestId('edit-save').click();
  await eventually(async () => assert.deepEqual(await messageTexts(bob), ['Lunch at 1:30?', 'Sounds good']));

  // Nobody is offered to edit someone else's message; a member cannot delete it either.
  await message(bob, 1).hover();
  assert.equal(await message(bob, 1).getByTestId('reply-message').isVisible(), true);
  assert.equal(await message(bob, 1).getByTestId('edit-message').count(), 0);
  assert.equal(await message(bob, 1).getByTestId('delete-message').count(), 0);
  await message(alice, 2).hover();
  assert.equal(await message(alice, 2).getByTestId('edit-message').count(), 0);
  assert.equal(await message(alice, 2).getByTestId('delete-message').count(), 1, 'alice is an administrator');

  // Arrow up in an empty composer edits your last message.
  await bob.getByTestId('composer').focus();
  await bob.getByTestId('composer').press('ArrowUp');
  assert.equal(await bob.getByTestId('edit-input').inputValue(), 'Sounds good');
  await bob.getByTestId('edit-input').press('Escape');

  // A day later, the message can no longer be edited (the server would refuse), only deleted.
  const later = await office.signIn('alice', {
    hash: '#/dm/bob', prepare: (page) => page.clock.setFixedTime(Date.now() + 25 * 3600 * 1000),
  });
  await message(later, 1).hover();
  await message(later, 1).getByTestId('delete-message').waitFor();
  assert.equal(await message(later, 1).getByTestId('edit-message').count(), 0);
  await later.context().close();
});

test('alice deletes a message after confirming; everyone sees "message deleted"', { timeout: 90_000 }, async () => {
  const alice = await office.signIn('alice', { hash: '#/dm/carol' });
  const carol = await office.signIn('carol', { hash: '#/dm/alice' });
  await typeAndSend(alice, 'The wifi password is hunter2');
  await typeAndSend(alice, 'Oops, wrong chat');
  await eventually(async () => assert.equal((await messageTexts(carol)).length, 2));

  // Cancel first: nothing happens.
  await message(alice, 1).hover();
  await message(alice, 1).getByTestId('delete-message').click();
  const dialog = alice.getByRole('dialog');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  assert.deepEqual(await messageTexts(alice), ['The wifi password is hunter2', 'Oops, wrong chat']);

  await message(alice, 1).hover();
  await message(alice, 1).getByTestId('delete-message').click();
  await dialog.getByRole('button', { name: 'Delete' }).click();
  await eventually(async () => assert.deepEqual(await messageTexts(carol), ['message deleted', 'Oops, wrong chat']));
  assert.equal(await message(carol, 1).locator('em').textContent(), 'message deleted');
  assert.equal(await message(carol, 1).getByTestId('reply-message').count(), 0, 'no actions on a deleted message');
  await eventually(async () => assert.deepEqual(await messageTexts(alice), ['message deleted', 'Oops, wrong chat']));

  // The server has forgotten the text.
  const dm = dmIdOf(office.person('alice'), office.person('carol'));
  const page = await office.server.apiOk('GET', `/api/conversations/${encodeURIComponent(dm)}/messages`, { token: office.person('carol').token });
  assert.equal(page.messages[0].deleted, true);
  assert.equal(page.messages[0].body, '');
  await alice.context().close();
  await carol.context().close();
});

test('an edit and a delete made while bob was offline show once he reconnects', { timeout: 90_000 }, async () => {
  const alice = await office.signIn('alice', { hash: '#/room/1' });
  const bob = await office.signIn('bob', { hash: '#/room/1', init: controllableSocket });
  await typeAndSend(alice, 'Meeting in room 4');
  await typeAndSend(alice, 'Bring the slides');
  await eventually(async () => assert.deepEqual(await messageTexts(bob), ['Meeting in room 4', 'Bring the slides']));
  // Bob having both does not mean alice's page has both acks (and so both seqs) yet.
  await eventually(async () => assert.equal((await messageSeqs(alice)).length, 2));
  const seqs = await messageSeqs(alice);

  await bob.evaluate(() => window.goOffline());
  await bob.getByTestId('connection-banner').waitFor({ state: 'visible' });

  await message(alice, seqs[0]).hover();
  await message(alice, seqs[0]).getByTestId('edit-message').click();
  await alice.getByTestId('edit-input').fill('Meeting in room 5');
  await alice.getByTestId('edit-input').press('Enter');
  await message(alice, seqs[0]).getByTestId('edited').waitFor();
  await message(alice, seqs[1]).hover();
  await message(alice, seqs[1]).getByTestId('delete-message').click();
  await alice.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await eventually(async () => assert.deepEqual(await messageTexts(alice), ['Meeting in room 5', 'message deleted']));
  // Still the old state on bob's screen while he is away.
  assert.deepEqual(await messageTexts(bob), ['Meeting in room 4', 'Bring the slides']);

  const changes = [];
  bob.on('request', (r) => { if (r.url().includes('/changes?after=')) changes.push(r.url()); });
  await bob.evaluate(() => window.goOnline());
  await bob.getByTestId('connection-banner').waitFor({ state: 'hidden' });
  await eventually(async () => assert.deepEqual(await messageTexts(bob), ['Meeting in room 5', 'message deleted']));
  await message(bob, seqs[0]).getByTestId('edited').waitFor();
  assert.equal(changes.length, 1, `one catch-up request: ${changes.join(', ')}`);
});
