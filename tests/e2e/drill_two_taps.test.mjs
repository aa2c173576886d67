// The whole drill in two taps, in real Chromium against real otjd + Redis:
// rita runs Hand hygiene (three observe tasks) for 22 learners — lea and leo
// on real phone pages, 20 kitchen staff as light websocket clients. Before
// the drill, rita's tablet (a second connection of hers) has marked leo fail
// on the last task, and one cook has gone away. Then, on her laptop, exactly
// two taps: "Pass everyone present on all observe tasks" (one group mark per
// observe task; leo's fail stays, the absent cook gets nothing) and "Approve
// all who passed" (20 approved; leo and the absent cook listed back). Each
// learner's phone shows its own outcome.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { startRedis, startOtjd, Client, login } from '../integration/harness.mjs';
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

const T = 30000; // generous waits: the machine may be busy with other tests

async function as(loginName, viewport) {
  const p = await person(browser, srv.base, loginName, { viewport });
  people.push(p);
  return p;
}

// A websocket client that keeps every room event it receives.
async function lightClient(token, join) {
  const c = new Client(srv);
  await c.opened();
  const w = await c.request({ t: 'hello', v: 1, token });
  assert.equal(w.t, 'welcome', JSON.stringify(w));
  c.user = w.user;
  c.events = [];
  c.replies = new Map();
  c.ws.on('message', () => {
    while (c.messages.length) {
      const m = c.messages.shift();
      if (m.t === 'ev') c.events.push(m.e);
      else if (m.t === 'snapshot') c.snapshot = m;
      if (m.rid) c.replies.set(m.rid, m);
    }
  });
  c.send({ ...join, t: 'join', rid: 1 });
  light.push(c);
  return c;
}

async function until(fn, what, ms = T) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out: ${what}`);
}

async function shootAt(page, selector, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.evaluate((sel) => {
    const el = document.querySelector(sel).closest('section') || document.querySelector(sel);
    window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - (window.innerWidth < 600 ? 110 : 64));
  }, selector);
  await page.waitForTimeout(200);
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

test('rita does the whole drill for 22 learners with exactly two taps', async () => {
  const sql = (q) => {
    const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000', `${srv.dataDir}/otj.db`, q]).toString();
    return out.trim() ? JSON.parse(out) : [];
  };
  const cooks = await kitchenLearners(srv, 20);
  const rita = await as('rita', DESKTOP);
  const lea = await as('lea', PHONE);
  const leo = await as('leo', PHONE);
  await logIn(lea, '/#/learn');
  await logIn(leo, '/#/learn');

  // setting up: rita opens a room for lea and leo; the kitchen joins by code
  await logIn(rita, '/#/dashboard');
  await rita.page.getByLabel('Select Lea Johansen for a group room').check({ timeout: T });
  await rita.page.getByLabel('Select Leo Nilsen for a group room').check();
  await rita.page.getByRole('button', { name: /Start group room \(2\)/ }).click();
  const code = (await rita.page.locator('#join-code').textContent({ timeout: T })).trim();
  const roomId = decodeURIComponent(new URL(rita.page.url()).hash.replace('#/room/', ''));
  await lea.page.goto(`${srv.base}/join/${code}`);
  await leo.page.goto(`${srv.base}/join/${code}`);
  for (const p of [lea, leo]) await p.page.locator('#task-text').waitFor({ timeout: T });
  const kitchen = [];
  for (const who of cooks) kitchen.push(await lightClient(who.token, { code }));
  await until(() => kitchen.every((c) => c.snapshot), 'every kitchen learner joined');
  await rita.page.getByText('22 of 22 online').waitFor({ timeout: T });

  // the last cook goes away before the drill: not present, so not passed
  const gone = kitchen.pop();
  await gone.close();
  await rita.page.getByText('21 of 22 online').waitFor({ timeout: T });

  // rita's tablet marks leo fail on the last observe task (task 4)
  const tablet = await lightClient((await login(srv, 'rita')).body.token, { room: roomId });
  await until(() => tablet.snapshot, 'rita\'s tablet joined');
  tablet.send({ t: 'mark', room: roomId, learner: await idOf('leo'), task: 3, result: 'fail', note: 'no single-use towel', rid: 7 });
  await until(() => tablet.replies.get(7), 'the tablet\'s mark was taken');
  assert.equal(tablet.replies.get(7).t, 'ok', JSON.stringify(tablet.replies.get(7)));
  const leoRow = rita.page.locator('tbody tr').filter({ hasText: 'Leo Nilsen' });
  await leoRow.locator('[data-cell$=":3"][data-mark="fail"]').waitFor({ timeout: T });

  // the button, before the drill, on a phone and on the laptop
  const passAll = rita.page.getByRole('button', { name: 'Pass everyone present on all observe tasks (21 learners)' });
  await passAll.waitFor({ timeout: T });
  await rita.page.setViewportSize(PHONE);
  await shootAt(rita.page, '#grid-h', 'two-taps-phone');
  await rita.page.setViewportSize(DESKTOP);
  await shootAt(rita.page, '#grid-h', 'two-taps-desktop');

  // count every tap on a button from here on
  await rita.page.evaluate(() => {
    window.taps = 0;
    document.addEventListener('click', (e) => { if (e.target.closest('button')) window.taps++; }, true);
  });

  // tap 1: everyone present passes every observe task; leo's fail stays
  await passAll.click();
  await until(async () => (await rita.page.locator('tbody td[data-mark="pass"]').count()) === 21 * 3 - 1, '62 passes in the grid');
  assert.equal(await leoRow.locator('[data-cell$=":3"]').getAttribute('data-mark'), 'fail', 'a fail is never overwritten');
  const goneRow = rita.page.locator('tbody tr').filter({ hasText: 'Cook 20' });
  assert.equal(await goneRow.locator('td[data-mark="pass"], td[data-mark="fail"]').count(), 0, 'the absent cook is not marked');
  assert.equal(await passAll.count(), 0, 'nothing left to pass: the button goes');

  // tap 2: approve all who passed
  await rita.page.getByRole('button', { name: 'Approve all who passed (20)' }).click();
  await until(async () => (await rita.page.locator('tbody [data-outcome="approved"]').count()) === 20, '20 approved in the grid');
  const notPassed = rita.page.locator('.not-passed');
  await notPassed.getByText(/Leo Nilsen — .*fail/i).waitFor({ timeout: T });
  await notPassed.getByText(/Cook 20 — /).waitFor({ timeout: T });
  assert.equal(await notPassed.locator('li').count(), 2);
  assert.equal(await rita.page.evaluate(() => window.taps), 2, 'exactly two taps');
  await shootAt(rita.page, '#grid-h', 'two-taps-approved-desktop');

  // each learner's own outcome: the phones ...
  await lea.page.locator('[data-outcome="approved"]').waitFor({ timeout: T });
  await leo.page.locator('[data-outcome="refused"]').waitFor({ timeout: T });
  await leo.page.locator('.mylist [data-mark="fail"]').waitFor({ timeout: T });
  // ... and the kitchen: three passes and an approval each, never another's
  await until(() => kitchen.every((c) => c.events.some((e) => e.type === 'approved' && e.learner === c.user.id && e.status === 'approved' && e.completion > 0)),
    'each present cook got its own approval');
  for (const c of kitchen) {
    assert.equal(c.events.filter((e) => e.type === 'mark' && e.learner === c.user.id && e.result === 'pass').length, 3, c.user.name);
    for (const e of c.events) {
      if (e.type === 'mark' && 'result' in e) assert.equal(e.learner, c.user.id, `${c.user.name} saw ${JSON.stringify(e)}`);
      if (e.type === 'approved' && 'status' in e) assert.equal(e.learner, c.user.id, `${c.user.name} saw ${JSON.stringify(e)}`);
    }
  }
  assert.equal(gone.events.filter((e) => e.type === 'mark' && e.learner === gone.user.id && 'result' in e).length, 0);

  // and durably: 20 completions of this room; none for leo or the absent cook
  const done = sql(`SELECT u.login FROM completions c JOIN users u ON u.id = c.user_id WHERE c.room_id = '${roomId}'`).map((r) => r.login).sort();
  assert.deepEqual(done, ['lea', ...cooks.slice(0, 19).map((c) => c.login)].sort());

  const errors = people.flatMap((p) => p.errors);
  assert.deepEqual(errors, [], 'no script errors on any page');

  async function idOf(loginName) {
    return sql(`SELECT id FROM users WHERE login='${loginName}'`)[0].id;
  }
});
