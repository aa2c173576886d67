// Sign-off that both sides confirm, in the browser. The administrator makes
// Hand hygiene require the learner's confirmation in the module maker. Rita,
// on a desktop, runs it with lea and leo and approves both: her room shows a
// six-digit code and who still has to confirm. Lea's phone asks for the
// code; a wrong one is refused in words; the code from rita's screen
// confirms her, and both screens show it (rita's at once, while leo still
// waits).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { browserWorld, logIn, shoot, PHONE, DESKTOP } from './browser.mjs';

const w = browserWorld();
const as = w.as;

const T = 20000; // generous waits: the machine may be busy with other tests

// The code rita's screen shows, with a few seconds left to type it.
async function codeOnScreen(page) {
  for (;;) {
    const code = page.locator('#confirm-code');
    await code.filter({ hasText: /\d{3} \d{3}/ }).waitFor({ timeout: T });
    const left = Number(((await page.locator('.confirm-left').textContent()).match(/(\d+) s/) || [])[1]);
    if (left >= 4) return (await code.textContent()).replace(/\D/g, '');
    await page.waitForTimeout((left + 1) * 1000);
  }
}

test('rita approves, her screen shows the code, lea types it on her phone, both see it confirmed', async () => {
  const admin = await as('admin', DESKTOP);
  await logIn(admin, '/#/admin/modules');
  await admin.page.getByRole('link', { name: /Hand hygiene/ }).click();
  await admin.page.getByRole('heading', { name: /Module maker: Hand hygiene/ }).waitFor({ timeout: T });
  const flag = admin.page.getByLabel('Learner confirms the approval');
  assert.equal(await flag.isChecked(), false);
  await flag.check();
  await admin.page.getByRole('button', { name: 'Save changes' }).click();
  await admin.page.locator('#toasts').getByText('Hand hygiene is saved.').waitFor({ timeout: T });
  const mods = await admin.page.evaluate(async () => (await (await fetch('/api/admin/modules')).json()));
  assert.equal((mods.items || mods).find((m) => m.title === 'Hand hygiene').learner_confirm, true);

  const rita = await as('rita', DESKTOP);
  const lea = await as('lea', PHONE);
  const leo = await as('leo', PHONE);
  await logIn(lea, '/#/learn');
  await logIn(leo, '/#/learn');
  await logIn(rita, '/#/dashboard');
  await rita.page.getByRole('button', { name: 'Start Hand hygiene with Lea Johansen' }).click({ timeout: T });
  const code = (await rita.page.locator('#join-code').textContent({ timeout: T })).trim();
  for (const p of [lea, leo]) {
    await p.page.goto(`${w.srv.base}/#/join/${code}`);
    await p.page.locator('#task-text', { hasText: 'How long should you rub your hands with soap?' }).waitFor({ timeout: T });
  }
  for (const who of ['Lea Johansen', 'Leo Nilsen']) {
    await rita.page.locator('.roster .presence.on').filter({ hasText: who }).waitFor({ timeout: T });
    for (let task = 2; task <= 4; task++)
      await rita.page.getByRole('button', { name: `Pass: ${who}, task ${task}` }).click();
    await rita.page.locator('tbody tr').filter({ hasText: who }).locator('[data-cell$=":3"][data-mark="pass"]').waitFor({ timeout: T });
  }
  await rita.page.getByRole('button', { name: /Approve all who passed \(2\)/ }).click();

  // pending on both sides: rita's room shows the code, lea's phone asks for it
  const leaRow = rita.page.locator('tbody tr').filter({ hasText: 'Lea Johansen' });
  await leaRow.locator('[data-outcome="pending"]').waitFor({ timeout: T });
  await rita.page.locator('.confirmcard li[data-confirm="waiting"]').filter({ hasText: 'Lea Johansen' }).waitFor({ timeout: T });
  const entry = lea.page.locator('form[data-outcome="pending"]');
  await entry.waitFor({ timeout: T });
  assert.equal(await lea.page.locator('#task-text').isVisible(), false, 'the tasks give way to the confirmation');

  // a wrong code is refused in words, and nothing is confirmed
  const shown = await codeOnScreen(rita.page);
  const wrong = String((Number(shown) + 1) % 1000000).padStart(6, '0');
  await lea.page.getByLabel('Code from the screen').fill(wrong);
  await lea.page.getByRole('button', { name: 'Confirm' }).click();
  await lea.page.getByText('That is not the code on the screen now').waitFor({ timeout: T });
  assert.equal(await leaRow.locator('[data-outcome="pending"]').count(), 1);

  // the code from rita's screen
  const right = await codeOnScreen(rita.page);
  await lea.page.getByLabel('Code from the screen').fill(right);
  await shoot(lea.page, 'confirm-code', { both: false });
  await lea.page.getByRole('button', { name: 'Confirm' }).click();
  await lea.page.locator('[data-outcome="approved"]').waitFor({ timeout: T });
  assert.match(await lea.page.locator('[data-outcome="approved"]').textContent(), /you confirmed at/);

  // rita sees it arrive; leo still waits, so the code stays up
  await rita.page.locator('.confirmcard li[data-confirm="done"]').filter({ hasText: 'Lea Johansen' }).waitFor({ timeout: T });
  await leaRow.getByText('Approved and confirmed').waitFor({ timeout: T });
  await rita.page.locator('.confirmcard li[data-confirm="waiting"]').filter({ hasText: 'Leo Nilsen' }).waitFor({ timeout: T });
  await rita.page.locator('#confirm-code').filter({ hasText: /\d{3} \d{3}/ }).waitFor({ timeout: T });
  await rita.page.locator('.confirmcard').scrollIntoViewIfNeeded();
  await shoot(rita.page, 'confirm-room', { both: false });
  assert.equal(await leo.page.locator('form[data-outcome="pending"]').count(), 1, 'leo still has his code entry');

  const errors = w.people.flatMap((p) => p.errors);
  assert.deepEqual(errors, [], 'no script errors on any page');
});
