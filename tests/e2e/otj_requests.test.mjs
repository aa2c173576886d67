// "Ask for OTJ" in Chromium: lea's pop-up marks Rita online the moment she
// connects and unmarks her when she goes; one tap on "Ask for OTJ" and Rita's
// dashboard, open on her laptop, shows "asked 10:42" beside Lea without a
// reload, with the count of asks. Screenshots: ask-popup-online-*,
// ask-dashboard-request-*.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { browserWorld, logIn, shoot, PHONE, DESKTOP } from './browser.mjs';

const w = browserWorld({ checkErrors: true });
const as = w.as;

test('lea sees Rita come online in the pop-up, asks, and Rita\'s dashboard shows the ask live', async () => {
  const lea = await as('lea');
  await logIn(lea, '/#/learn');
  await lea.page.locator('.module[data-module="Hand hygiene"]').getByRole('button', { name: 'Open' }).click();
  const dlg = lea.page.getByRole('dialog', { name: 'Reach out to a responsible' });
  await dlg.waitFor();
  const ritaRow = dlg.locator('.person[data-person="Rita Hansen"]');
  await ritaRow.waitFor();
  await lea.page.waitForTimeout(500);
  assert.equal(await ritaRow.getByText('online now').count(), 0, 'Rita is not connected yet');

  // Rita opens her dashboard on a laptop: the pop-up marks her, live
  const rita = await as('rita', DESKTOP);
  await logIn(rita, '/#/dashboard');
  await rita.page.locator('#otj-count').waitFor();
  await ritaRow.getByText('online now').waitFor({ timeout: 10000 });
  assert.equal(await rita.page.locator('#otj-asks').count(), 0, 'nobody has asked yet');
  assert.equal(await rita.page.getByText(/^asked /).count(), 0);

  // one tap
  const askBtn = dlg.getByRole('button', { name: 'Ask for OTJ' });
  await askBtn.click();
  await dlg.getByText(/^Asked at \d\d:\d\d — Rita Hansen is online\. You can ask again at \d\d:\d\d\.$/).waitFor();
  assert.equal(await askBtn.isDisabled(), true, 'no second ask within the cool-down');
  await shoot(lea.page, 'ask-popup-online');

  // Rita's dashboard, without a reload
  const leaRow = rita.page.locator('.pending[data-learner="lea"]');
  await leaRow.locator('.badge-ask').filter({ hasText: /^asked \d\d:\d\d$/ }).waitFor({ timeout: 10000 });
  await rita.page.locator('#otj-asks').filter({ hasText: '1 asked' }).waitFor();
  const names = await rita.page.locator('.module-group[data-module="Hand hygiene"] .pending').evaluateAll((els) => els.map((e) => e.dataset.learner));
  assert.equal(names[0], 'lea', 'the learner who asked comes first');
  assert.equal(await rita.page.locator('.badge-ask').filter({ hasText: /^asked / }).count(), 1, 'only lea asked');
  // the toast names the ask; the screenshots show the list once it is gone
  await rita.page.locator('.toast').filter({ hasText: 'Lea Johansen asks for Hand hygiene' }).waitFor();
  await rita.page.locator('.toast').waitFor({ state: 'detached', timeout: 8000 });
  await shoot(rita.page, 'ask-dashboard-request', { both: false });
  await rita.page.setViewportSize(PHONE);
  // the count card's line of asks just below the sticky top bar, lea's row under it
  await rita.page.evaluate(() => {
    document.getElementById('otj-asks').scrollIntoView({ block: 'start' });
    window.scrollBy(0, -120);
  });
  await shoot(rita.page, 'ask-dashboard-request', { both: false });
  await rita.page.setViewportSize(DESKTOP);

  // Rita goes: lea's pop-up, still open, unmarks her
  await rita.context.close();
  await ritaRow.getByText('online now').waitFor({ state: 'detached', timeout: 10000 });
  await lea.page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });

  // opened again later: the ask is remembered, the button still waits
  await lea.page.locator('.module[data-module="Hand hygiene"]').getByRole('button', { name: 'Open' }).click();
  await dlg.getByText(/^Asked at \d\d:\d\d/).waitFor();
  assert.equal(await dlg.getByRole('button', { name: 'Ask for OTJ' }).isDisabled(), true);
});
