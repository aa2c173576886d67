// Whole-group marking in real Chromium against real otjd + Redis: rita, on a
// desktop, runs Hand hygiene for 22 learners — lea and leo on real phone
// pages, 20 more kitchen staff as light websocket clients from node. For
// each observe task one tap on "Pass everyone present" marks everyone who
// is here; one tap on Fail makes leo the exception; one tap on "Approve all
// who passed" approves the 21 others in one approve and lists leo back.
// Each learner's phone shows its own outcome, and no learner ever receives
// another learner's result.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { startRedis, startOtjd, Client } from '../integration/harness.mjs';
import { kitchenLearners } from '../integration/group_org.mjs';
import { launch, person, logIn, PHONE, DESKTOP, SHOTS } from './browser.mjs';

let redis, srv, browser;
const people = [];
const light = [];

before(async () => {
  redis = await startRedis();
  srv = await startOtjd({ redis: redis.addr });
  browser = await launch();
});

after(async () => {
  for (const c of light) c.ws.terminate();
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

const T = 30000; // generous waits: the machine may be busy with other tests

// A kitchen learner's phone without a browser: joins by code and keeps
// every event it receives.
async function lightLearner(who, code) {
  const c = new Client(srv);
  await c.opened();
  const w = await c.request({ t: 'hello', v: 1, token: who.token });
  assert.equal(w.t, 'welcome', JSON.stringify(w));
  c.who = who;
  c.events = [];
  c.ws.on('message', () => {
    while (c.messages.length) {
      const m = c.messages.shift();
      if (m.t === 'ev') c.events.push(m.e);
      else if (m.t === 'snapshot') c.snapshot = m;
    }
  });
  c.send({ t: 'join', code, rid: 1 });
  light.push(c);
  return c;
}

// A screenshot of the page scrolled so that `selector` is near the top.
async function shootAt(page, selector, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.evaluate((sel) => {
    const el = document.querySelector(sel).closest('section') || document.querySelector(sel);
    window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - (window.innerWidth < 600 ? 110 : 64));
  }, selector);
  await page.waitForTimeout(200);
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

async function until(fn, what, ms = T) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (fn()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out: ${what}`);
}

test('rita passes a group of 22 with one tap per task and approves all who passed at once', async () => {
  const cooks = await kitchenLearners(srv, 20);
  const rita = await as('rita', DESKTOP);
  const lea = await as('lea', PHONE);
  const leo = await as('leo', PHONE);
  await logIn(lea, '/#/learn');
  await logIn(leo, '/#/learn');

  // rita opens a room for lea and leo; the kitchen joins with the code
  await logIn(rita, '/#/dashboard');
  await rita.page.getByLabel('Select Lea Johansen for a group room').check({ timeout: T });
  await rita.page.getByLabel('Select Leo Nilsen for a group room').check();
  await rita.page.getByRole('button', { name: /Start group room \(2\)/ }).click();
  const code = (await rita.page.locator('#join-code').textContent({ timeout: T })).trim();

  await lea.page.goto(`${srv.base}/join/${code}`);
  await leo.page.goto(`${srv.base}/join/${code}`);
  for (const p of [lea, leo]) await p.page.locator('#task-text', { hasText: 'How long should you rub your hands with soap?' }).waitFor({ timeout: T });
  for (const who of cooks) await lightLearner(who, code);
  await until(() => light.every((c) => c.snapshot), 'every kitchen learner joined');
  await rita.page.locator('.roster').getByText('Cook 20').waitFor({ timeout: T });
  await rita.page.getByText('22 of 22 online').waitFor({ timeout: T });

  // one tap per observe task: everyone present passes. The first from the
  // task bar (the current task), the others from their column in the grid
  await rita.page.getByRole('button', { name: 'Next task →' }).click();
  await lea.page.locator('.task-kicker').filter({ hasText: 'Task 2 of 4' }).waitFor({ timeout: T });
  const big = rita.page.locator('button.pass-present');
  assert.equal(await big.getAttribute('aria-label', { timeout: T }), 'Pass everyone present on task 2 (22)');
  await rita.page.setViewportSize(PHONE);
  await shootAt(rita.page, '#tasknav-h', 'group-marking-phone');
  await rita.page.setViewportSize(DESKTOP);
  await big.click();
  await rita.page.locator('.pass-present').filter({ hasText: 'Everyone present is marked' }).waitFor({ timeout: T });
  await lea.page.locator('#task-text ~ .answer-state [data-mark="pass"]').waitFor({ timeout: T });
  await shootAt(rita.page, '#tasknav-h', 'group-marking-desktop');
  for (const task of [2, 3]) {
    await rita.page.locator('.grid thead').getByRole('button', { name: `Pass everyone present on task ${task + 1} (22)` }).click();
    await rita.page.locator(`.grid thead [data-pass-present="${task}"]`).filter({ hasText: 'All marked' }).waitFor({ timeout: T });
  }
  // the exception: leo did not dry his hands with a single-use towel
  await rita.page.getByRole('button', { name: 'Fail: Leo Nilsen, task 4' }).click();
  await rita.page.locator('tbody tr').filter({ hasText: 'Leo Nilsen' }).locator('[data-cell$=":3"][data-mark="fail"]').waitFor({ timeout: T });
  assert.equal(await rita.page.locator('tbody td[data-mark="pass"]').count(), 22 * 3 - 1);

  // the phones show their own marks
  await leo.page.locator('.mylist [data-mark="fail"]').waitFor({ timeout: T });
  assert.equal(await lea.page.locator('.mylist [data-mark="pass"]').count(), 3);
  await until(() => light.every((c) => c.events.filter((e) => e.type === 'mark' && e.learner === c.who.id && e.result === 'pass').length === 3),
    'each kitchen learner got its three passes');

  // one tap: approve all who passed; leo is listed back, not approved
  await rita.page.getByRole('button', { name: 'Approve all who passed (21)' }).click();
  const notPassed = rita.page.locator('.not-passed');
  await notPassed.getByText(/Leo Nilsen — .*fail/i).waitFor({ timeout: T });
  assert.equal(await notPassed.locator('li').count(), 1);
  await rita.page.locator('tbody [data-outcome="approved"]').nth(20).waitFor({ timeout: T });
  assert.equal(await rita.page.locator('tbody [data-outcome="approved"]').count(), 21);
  await shootAt(rita.page, '#grid-h', 'group-approved-desktop');
  await lea.page.evaluate(() => window.scrollTo(0, 0));

  // each phone shows its own outcome
  await lea.page.locator('[data-outcome="approved"]').waitFor({ timeout: T });
  await leo.page.locator('[data-outcome="refused"]').getByText('Not approved yet').waitFor({ timeout: T });
  await until(() => light.every((c) => c.events.some((e) => e.type === 'approved' && e.learner === c.who.id && e.status === 'approved' && e.completion > 0)),
    'each kitchen learner got its own approval');

  // and never another learner's result, mark or outcome
  for (const c of light) {
    for (const e of c.events) {
      if (e.type === 'mark') {
        if ('result' in e) assert.equal(e.learner, c.who.id, `${c.who.login} saw ${JSON.stringify(e)}`);
        else assert.ok(!('note' in e));
        if (e.learners) assert.ok(!e.learners.includes(c.who.id), `${c.who.login} got the group list it is in`);
      }
      if (e.type === 'approved' && 'status' in e) assert.equal(e.learner, c.who.id, `${c.who.login} saw ${JSON.stringify(e)}`);
    }
  }

  const errors = people.flatMap((p) => p.errors);
  assert.deepEqual(errors, [], 'no script errors on any page');
});
