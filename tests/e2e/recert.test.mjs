// Recertification in Chromium: the admin sets a module's validity in the
// module maker; rita's dashboard lists kai and ida as due for a re-drill
// of Hand hygiene and opens one room for both with one tap; kai's phone
// shows "valid until …", and 40 days later (otjd's test clock)
// "expired on …" with Hand hygiene to be done again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, startOtjd, login } from '../integration/harness.mjs';
import { launch, person, logIn, shoot, PHONE, DESKTOP } from './browser.mjs';

let redis, srv, later, browser;
const people = [];
const T = 20000;

before(async () => {
  redis = await startRedis();
  srv = await startOtjd({ redis: redis.addr });
  later = await startOtjd({ redis: redis.addr, env: { OTJ_TEST_NOW_OFFSET: String(40 * 86400) } });
  browser = await launch();
});

after(async () => {
  for (const p of people) await p.context.close().catch(() => {});
  if (browser) await browser.close();
  for (const s of [later, srv]) if (s) { await s.stop(); s.cleanup(); }
  if (redis) await redis.stop();
});

async function as(base, who, viewport) {
  const p = await person(browser, base, who, { viewport });
  people.push(p);
  return p;
}

async function api(s, who, path) {
  const { body } = await login(s, who);
  const r = await fetch(`${s.base}${path}`, { headers: { authorization: `Bearer ${body.token}` } });
  return r.json();
}

test('the module maker sets how long an approval is valid', async () => {
  const mods = await api(srv, 'admin', '/api/admin/modules');
  const hh = mods.items.find((m) => m.title === 'Hand hygiene');
  const admin = await as(srv.base, 'admin', DESKTOP);
  await logIn(admin, `/#/admin/modules/${hh.id}`);
  const field = admin.page.getByLabel('Approval valid for (months)');
  await field.waitFor({ timeout: T });
  assert.equal(await field.inputValue(), '12');
  await field.fill('24');
  await admin.page.getByRole('button', { name: 'Save changes' }).click();
  await admin.page.getByText('Hand hygiene is saved.').first().waitFor({ timeout: T });
  let now = (await api(srv, 'admin', `/api/admin/modules/${hh.id}`));
  assert.equal(now.validity_months, 24);
  // out of range: the server's sentence is shown, nothing changes
  await admin.page.getByLabel('Approval valid for (months)').fill('500');
  await admin.page.getByRole('button', { name: 'Save changes' }).click();
  await admin.page.locator('.form-error', { hasText: '1 to 120' }).waitFor({ timeout: T });
  now = (await api(srv, 'admin', `/api/admin/modules/${hh.id}`));
  assert.equal(now.validity_months, 24);
  // back to 12 (the rest of the demo relies on it)
  await admin.page.getByLabel('Approval valid for (months)').fill('12');
  await admin.page.getByRole('button', { name: 'Save changes' }).click();
  await admin.page.getByText('Hand hygiene is saved.').first().waitFor({ timeout: T });
  assert.equal((await api(srv, 'admin', `/api/admin/modules/${hh.id}`)).validity_months, 12);
  // the field belongs to OTJ modules only
  await admin.page.locator('#otj-toggle').uncheck();
  assert.equal(await admin.page.locator('#validity-field').isVisible(), false);
  assert.deepEqual(admin.errors, []);
});

test('the learner path says "valid until", and "expired on" once the approval has expired', async () => {
  const kai = await as(srv.base, 'kai', PHONE);
  await logIn(kai, '/#/learn');
  const hh = kai.page.locator('li.module[data-module="Hand hygiene"]');
  await hh.locator('.validity', { hasText: 'valid until' }).waitFor({ timeout: T });
  assert.equal(await hh.getAttribute('data-state'), 'completed');

  const kaiLater = await as(later.base, 'kai', PHONE);
  await logIn(kaiLater, '/#/learn');
  const hh2 = kaiLater.page.locator('li.module[data-module="Hand hygiene"]');
  await hh2.locator('.validity.expired', { hasText: 'expired on' }).waitFor({ timeout: T });
  assert.equal(await hh2.getAttribute('data-state'), 'otj', 'Hand hygiene is kai\'s next OTJ again');
  await hh2.scrollIntoViewIfNeeded();
  await shoot(kaiLater.page, 'redrill-path', { both: false });
  assert.deepEqual([...kai.errors, ...kaiLater.errors], []);
});

test('Due for re-drill on the dashboard: one tap opens one room for the group', async () => {
  const rita = await as(srv.base, 'rita', DESKTOP);
  await logIn(rita, '/#/dashboard');
  const card = rita.page.locator('#redrill');
  await card.waitFor({ timeout: T });
  const group = card.locator('.module-group[data-module="Hand hygiene"]');
  await group.locator('[data-learner="kai"]', { hasText: 'expires on' }).waitFor({ timeout: T });
  await group.locator('[data-learner="ida"]').waitFor({ timeout: T });
  await card.scrollIntoViewIfNeeded();
  await shoot(rita.page, 'redrill-dashboard', { both: false });
  await rita.page.setViewportSize(PHONE);
  await card.evaluate((el) => { el.scrollIntoView({ block: 'start' }); window.scrollBy(0, -110); });
  await shoot(rita.page, 'redrill-dashboard', { both: false });
  await rita.page.setViewportSize(DESKTOP);

  // sam (another site) has nobody due: no card
  const sam = await as(srv.base, 'sam', PHONE);
  await logIn(sam, '/#/dashboard');
  await sam.page.locator('#otj-count').waitFor({ timeout: T });
  await sam.page.waitForTimeout(500);
  assert.equal(await sam.page.locator('#redrill').isVisible(), false);

  await group.getByRole('button', { name: 'Start a room for these 2' }).click();
  await rita.page.waitForURL(/#\/room\//, { timeout: T });
  const code = (await rita.page.locator('#join-code').textContent({ timeout: T })).trim();
  assert.match(code, /^\d{6}$/);
  for (const name of ['Kai Solberg', 'Ida Eriksen'])
    await rita.page.locator('tbody tr', { hasText: name }).first().waitFor({ timeout: T });
  assert.deepEqual([...rita.errors, ...sam.errors], []);
});
