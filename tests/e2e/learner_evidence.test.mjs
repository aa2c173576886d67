// In the browser: a learner attaches a photo to her own observe task where
// the module allows it, and the completions page shows a completion's times.
// Without the module switch leo's phone offers no photo button. The
// administrator switches "Learners may attach evidence" on in the module
// maker; lea takes a photo on her phone during task 2, her phone and rita's
// grid show it at once, lars's phone in the same room never does (nor may
// his session fetch it). The completions page (desktop and phone) says when
// an approval was confirmed by the learner and until when it is valid, or
// that it expired. Screenshots: learner-evidence-*, completions-times-*.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { connectAs, login, sleep, startOtjd } from '../integration/harness.mjs';
import { browserWorld, person, logIn, shoot, startHandHygiene, PHONE, DESKTOP, SHOTS } from './browser.mjs';

const PHOTO = readFileSync('tests/fixtures/evidence-photo.jpg');
const T = 20000; // generous waits: the machine may be busy with other tests

const w = browserWorld({ checkErrors: true });
const as = w.as;

async function setSwitch(label, on) {
  const admin = await as('admin', DESKTOP);
  await logIn(admin, '/#/admin/modules');
  await admin.page.getByRole('link', { name: /Hand hygiene/ }).click();
  await admin.page.getByRole('heading', { name: /Module maker: Hand hygiene/ }).waitFor({ timeout: T });
  const flag = admin.page.getByLabel(label);
  assert.equal(await flag.isChecked(), !on);
  await flag.setChecked(on);
  await admin.page.getByRole('button', { name: 'Save changes' }).click();
  await admin.page.locator('#toasts').getByText('Hand hygiene is saved.').waitFor({ timeout: T });
  await admin.context.close();
}

const nextTask = (rita) => rita.page.getByRole('button', { name: 'Next task →' }).click();

test('without the module switch a learner gets no photo button on an observe task', async () => {
  const rita = await as('rita', DESKTOP);
  const leo = await as('leo', PHONE);
  await startHandHygiene(rita, leo, 'Leo Nilsen', T);
  await nextTask(rita);
  await leo.page.locator('#task-text', { hasText: 'Wets hands and applies soap' }).waitFor({ timeout: T });
  assert.equal(await leo.page.locator('.learner-evidence, input[type=file]').count(), 0);
  await rita.context.close();
  await leo.context.close();
});

test('switched on in the module maker: lea attaches a photo on her phone; rita sees it live, lars never', async () => {
  await setSwitch('Learners may attach evidence', true);
  const rita = await as('rita', DESKTOP);
  const lea = await as('lea', PHONE);
  const lars = await as('lars', PHONE);
  const code = await startHandHygiene(rita, lea, 'Lea Johansen', T);
  await logIn(lars, `/#/join/${code}`);
  await rita.page.locator('.roster .presence.on').filter({ hasText: 'Lars' }).waitFor({ timeout: T });
  await nextTask(rita);
  await lea.page.locator('#task-text', { hasText: 'Wets hands and applies soap' }).waitFor({ timeout: T });

  const camera = lea.page.getByLabel('Take a photo for your evidence for task 2');
  await camera.waitFor({ state: 'attached', timeout: T });
  assert.equal(await camera.getAttribute('accept'), 'image/*');
  assert.notEqual(await camera.getAttribute('capture'), null, 'the phone opens its camera');
  await camera.setInputFiles({ name: 'IMG_3001.jpg', mimeType: 'image/jpeg', buffer: PHOTO });

  const leaThumb = lea.page.locator('#task-text ~ .learner-evidence img.evidence-thumb');
  await leaThumb.waitFor({ timeout: T });
  await lea.page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await leaThumb.elementHandle(), { timeout: T });
  const ritaThumb = rita.page.locator('[data-learner-evidence$=":1"] img.evidence-thumb');
  await ritaThumb.waitFor({ timeout: T });
  await rita.page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await ritaThumb.elementHandle(), { timeout: T });
  assert.equal(await rita.page.locator('tbody tr').filter({ hasText: 'Lea Johansen' }).locator('[data-learner-evidence]').count(), 1);

  // lars, in the same room on the same task, sees nothing of it, and may not fetch it
  await lars.page.locator('#task-text', { hasText: 'Wets hands and applies soap' }).waitFor({ timeout: T });
  await lars.page.waitForTimeout(500);
  assert.equal(await lars.page.locator('img.evidence-thumb').count(), 0);
  const href = await lea.page.locator('#task-text ~ .learner-evidence a.evidence').getAttribute('href');
  assert.equal((await lars.page.request.get(w.srv.base + href)).status(), 404);
  assert.equal((await lea.page.request.get(w.srv.base + href)).status(), 200);

  mkdirSync(SHOTS, { recursive: true });
  await lea.page.screenshot({ path: path.join(SHOTS, 'learner-evidence-phone.png') });
  await rita.page.locator('[data-learner-evidence$=":1"]').scrollIntoViewIfNeeded();
  await rita.page.screenshot({ path: path.join(SHOTS, 'learner-evidence-desktop.png') });
  for (const p of [rita, lea, lars]) await p.context.close();
});

test('the completions page says when the learner confirmed and until when an approval is valid, or that it expired', async () => {
  await setSwitch('Learner confirms the approval', true);
  // leo's sign-off, both sides confirmed, over the websocket
  const { body: auth } = await login(w.srv, 'admin');
  const mods = await (await fetch(`${w.srv.base}/api/admin/modules`, { headers: { authorization: `Bearer ${auth.token}` } })).json();
  const HH = mods.items.find((m) => m.title === 'Hand hygiene').id;
  const rita = await connectAs(w.srv, 'rita');
  const leo = await connectAs(w.srv, 'leo');
  const snap = await rita.ask({ t: 'open', module: HH, learners: [leo.user.id] });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  assert.equal((await leo.ask({ t: 'join', room: snap.room })).t, 'snapshot');
  for (const task of [1, 2, 3])
    assert.equal((await rita.ask({ t: 'mark', room: snap.room, learner: leo.user.id, task, result: 'pass' })).t, 'ok');
  const ap = await rita.ask({ t: 'approve', room: snap.room, decisions: [{ learner: leo.user.id, approved: true }] });
  assert.equal(ap.results[0].status, 'pending', JSON.stringify(ap));
  let code = await rita.ask({ t: 'confirm_code', room: snap.room });
  if (code.ms < 1500) { await sleep(code.ms + 100); code = await rita.ask({ t: 'confirm_code', room: snap.room }); }
  assert.equal((await leo.ask({ t: 'confirm', room: snap.room, code: code.code })).t, 'ok');
  rita.ws.terminate();
  leo.ws.terminate();

  const page = await as('rita', DESKTOP);
  await logIn(page, '/#/completions');
  const row = (name, module) => page.page.locator('tbody tr').filter({ hasText: name }).filter({ hasText: module });
  const leoRow = row('Leo Nilsen', 'Hand hygiene');
  await leoRow.waitFor({ timeout: T });
  await leoRow.locator('[data-confirmed-at]', { hasText: /^Approved \d\d:\d\d, confirmed by the learner \d\d:\d\d$/ }).waitFor({ timeout: T });
  await leoRow.locator('[data-validity="valid"]', { hasText: /^Valid until / }).waitFor({ timeout: T });
  const kai = row('Kai Solberg', 'Hand hygiene');
  await kai.locator('[data-validity="valid"]', { hasText: /^Valid until / }).waitFor({ timeout: T });
  assert.equal(await kai.locator('[data-confirmed-at]').count(), 0, 'not asked to confirm back then');
  assert.match(await row('Lea Johansen', 'Food safety basics').locator('[data-validity]').textContent(), /No expiry/);
  await page.context.close();

  // 40 days later (another otjd on the same data, its test clock ahead): kai's approval has expired
  const later = await startOtjd({ redis: w.redis.addr, dataDir: w.srv.dataDir, demo: false,
    env: { OTJ_TEST_NOW_OFFSET: String(40 * 86400) } });
  try {
    const p = await person(w.browser, later.base, 'rita', { viewport: DESKTOP });
    w.people.push(p);
    await logIn(p, '/#/completions');
    const kaiLater = p.page.locator('tbody tr').filter({ hasText: 'Kai Solberg' }).filter({ hasText: 'Hand hygiene' });
    await kaiLater.locator('[data-validity="expired"]', { hasText: /^Expired on / }).waitFor({ timeout: T });
    await p.page.locator('tbody tr').filter({ hasText: 'Leo Nilsen' }).filter({ hasText: 'Hand hygiene' })
      .locator('[data-validity="valid"]').waitFor({ timeout: T });
    await p.page.getByLabel('Filter').fill('Hand hygiene');
    await shoot(p.page, 'completions-times', { both: false });
    await p.page.setViewportSize(PHONE);
    await p.page.getByLabel('Filter').fill('Leo Nilsen');
    await p.page.locator('tbody tr').filter({ hasText: 'Hand hygiene' }).scrollIntoViewIfNeeded();
    await shoot(p.page, 'completions-times', { both: false });
    await p.context.close();
  } finally {
    await later.stop();
  }
});
