// An outcome outlives a reload: rita, on a desktop, runs Hand hygiene with
// lea and approves her; lea's phone shows "Approved". Then lea reloads the
// page (a new connection, a new join, a new snapshot) and still sees the
// outcome, not the tasks again; rita's reloaded room still shows lea as
// approved, with no Approve button.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, startOtjd } from '../integration/harness.mjs';
import { launch, person, logIn, shoot, PHONE, DESKTOP } from './browser.mjs';

let redis, srv, browser;
const people = [];

before(async () => {
  redis = await startRedis();
  srv = await startOtjd({ redis: redis.addr });
  browser = await launch();
});

after(async () => {
  for (const p of people) await p.context.close().catch(() => {});
  if (browser) await browser.close();
  if (srv) { await srv.stop(); srv.cleanup(); }
  if (redis) await redis.stop();
});

async function as(login, viewport) {
  const p = await person(browser, srv.base, login, { viewport });
  people.push(p);
  return p;
}

const T = 20000; // generous waits: the machine may be busy with other tests
// once the reloaded room is drawn, its snapshot has arrived: the outcome
// is there at once or not at all
const DRAWN = 5000;

test('lea reloads her phone after rita approved her: the outcome is still shown', async () => {
  const rita = await as('rita', DESKTOP);
  const lea = await as('lea', PHONE);
  await logIn(lea, '/#/learn');
  await logIn(rita, '/#/dashboard');

  // rita starts Hand hygiene with lea; lea joins with the code
  await rita.page.getByRole('button', { name: 'Start Hand hygiene with Lea Johansen' }).click({ timeout: T });
  const code = (await rita.page.locator('#join-code').textContent({ timeout: T })).trim();
  await lea.page.goto(`${srv.base}/#/join/${code}`);
  await lea.page.locator('#task-text', { hasText: 'How long should you rub your hands with soap?' }).waitFor({ timeout: T });
  await rita.page.locator('.roster .presence.on').filter({ hasText: 'Lea Johansen' }).waitFor({ timeout: T });

  // every observe task passed, then approved
  for (let task = 2; task <= 4; task++)
    await rita.page.getByRole('button', { name: `Pass: Lea Johansen, task ${task}` }).click();
  const leaRow = rita.page.locator('tbody tr').filter({ hasText: 'Lea Johansen' });
  await leaRow.locator('[data-cell$=":3"][data-mark="pass"]').waitFor({ timeout: T });
  await rita.page.getByRole('button', { name: 'Approve Lea Johansen', exact: true }).click();
  await leaRow.locator('[data-outcome="approved"]').waitFor({ timeout: T });
  await lea.page.locator('[data-outcome="approved"]').waitFor({ timeout: T });
  const roomUrl = lea.page.url();
  assert.match(roomUrl, /#\/room\//);

  // lea reloads her phone: the room is joined again from scratch
  await lea.page.reload();
  await lea.page.locator('#conn[data-status="online"]').waitFor({ timeout: T });
  await lea.page.locator('.room-head h1', { hasText: 'Hand hygiene' }).waitFor({ timeout: T });
  assert.equal(lea.page.url(), roomUrl);
  const outcome = lea.page.locator('[data-outcome="approved"]');
  await outcome.waitFor({ timeout: DRAWN });
  assert.match(await outcome.textContent(), /Approved/);
  assert.equal(await lea.page.locator('#task-text').isVisible(), false,
    'an approved learner is not shown the tasks again');
  await shoot(lea.page, 'learner-outcome-after-reload', { both: false });

  // rita reloads her room: lea is still approved, no Approve button
  await rita.page.reload();
  await leaRow.locator('[data-cell$=":3"][data-mark="pass"]').waitFor({ timeout: T });
  await leaRow.locator('[data-outcome="approved"]').waitFor({ timeout: DRAWN });
  assert.equal(await rita.page.getByRole('button', { name: 'Approve Lea Johansen', exact: true }).count(), 0);

  const errors = people.flatMap((p) => p.errors);
  assert.deepEqual(errors, [], 'no script errors on any page');
});
