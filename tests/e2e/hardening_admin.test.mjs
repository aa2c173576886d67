// Sessions that change under an open page, in real Chromium against a real
// otjd: the admin deactivates a learner from the Permissions page and the
// learner's open page goes to the login page (which then says the account
// is deactivated); removing a responsible's rights redraws her pages for
// the new rights; logging out in one tab logs the other tab out too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, startOtjd } from '../integration/harness.mjs';
import { launch, person, logIn, DESKTOP } from './browser.mjs';

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
  const errors = people.flatMap((p) => p.errors);
  assert.deepEqual(errors, [], 'no script errors on any page');
});

async function as(login, viewport) {
  const p = await person(browser, srv.base, login, viewport ? { viewport } : {});
  people.push(p);
  return p;
}

test('the admin deactivates leo: his open page goes to the login page, and he cannot log in until reactivated', async () => {
  const leo = await as('leo');
  await logIn(leo, '/#/learn');
  const admin = await as('admin', DESKTOP);
  await logIn(admin, '/#/admin/permissions');
  const row = admin.page.locator('tr[data-login="leo"]');
  await row.locator('.account-toggle').click();
  const dlg = admin.page.getByRole('dialog');
  await dlg.getByRole('button', { name: 'Deactivate' }).click();
  await row.getByText('Deactivated').waitFor();

  // leo's page: logged out at once, back at the login page
  await leo.page.getByRole('heading', { name: 'Log in' }).waitFor({ timeout: 3000 });
  await leo.page.getByLabel('Login', { exact: true }).fill('leo');
  await leo.page.getByLabel('Password').fill('otj-demo');
  await leo.page.getByRole('button', { name: 'Log in' }).click();
  await leo.page.getByRole('alert').filter({ hasText: 'deactivated' }).waitFor();

  await row.getByRole('button', { name: /^Reactivate/ }).click();
  await row.getByText('Deactivated').waitFor({ state: 'detached' });
  await leo.page.getByRole('button', { name: 'Log in' }).click();
  await leo.page.locator('#conn[data-status="online"]').waitFor({ timeout: 15000 });
});

test('removing rita\'s Facilitate OTJ redraws her open page for her new rights', async () => {
  const rita = await as('rita', DESKTOP);
  await logIn(rita, '/#/dashboard');
  await rita.page.locator('#nav').getByRole('link', { name: 'Dashboard' }).waitFor();
  const admin = await as('admin', DESKTOP);
  await logIn(admin, '/#/admin/permissions');
  await admin.page.locator('tr[data-login="rita"]').getByLabel(/^Facilitate On-the-Job training/).uncheck();
  await admin.page.locator('tr[data-login="rita"]').getByText('✓ Responsible').waitFor({ state: 'detached' });
  await rita.page.locator('#nav').getByRole('link', { name: 'Join' }).waitFor({ timeout: 3000 });
  assert.equal(await rita.page.locator('#nav').getByRole('link', { name: 'Dashboard' }).count(), 0);
  await rita.page.locator('#conn[data-status="online"]').waitFor({ timeout: 5000 });
  await admin.page.locator('tr[data-login="rita"]').getByLabel(/^Facilitate On-the-Job training/).check();
  await admin.page.locator('tr[data-login="rita"]').getByText('✓ Responsible').waitFor();
});

test('logging out in one tab logs the other tab of the same session out', async () => {
  const lea = await as('lea');
  await logIn(lea, '/#/learn');
  const other = await lea.context.newPage();
  other.on('pageerror', (e) => lea.errors.push(`lea tab 2: ${e.message}`));
  await other.goto(`${srv.base}/#/learn`);
  await other.locator('#conn[data-status="online"]').waitFor({ timeout: 15000 });
  await lea.page.getByRole('button', { name: /^Log out/ }).click();
  await lea.page.getByRole('heading', { name: 'Log in' }).waitFor();
  await other.getByRole('heading', { name: 'Log in' }).waitFor({ timeout: 3000 });
});
