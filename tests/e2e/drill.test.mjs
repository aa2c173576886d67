// The demo drill in real Chromium against real otjd + Redis: rita, on a
// desktop, opens a group room for Hand hygiene; lea joins from the banner on
// her phone, leo from the join link, lars by typing the code. They answer,
// rita marks the observe tasks, approves lea and lars and does not approve
// leo. In the middle, lea's phone loses its network for a few seconds while
// her answer is in flight: it reconnects by itself, resyncs, re-sends the
// answer with the same key, and nothing is lost or counted twice.
// Afterwards: lea's path moved on, liv's is unchanged, and leo's pop-up still
// names rita.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, startOtjd } from '../integration/harness.mjs';
import { decode } from '@msgpack/msgpack';
import { launch, person, logIn, shoot, netProxy, PHONE, DESKTOP } from './browser.mjs';

let redis, srv, browser, proxy, leoNet;
const people = [];

before(async () => {
  redis = await startRedis();
  srv = await startOtjd({ redis: redis.addr });
  proxy = await netProxy(srv.port);
  leoNet = await netProxy(srv.port);
  browser = await launch();
});

after(async () => {
  for (const p of people) await p.context.close().catch(() => {});
  if (browser) await browser.close();
  if (proxy) await proxy.close();
  if (leoNet) await leoNet.close();
  if (srv) { await srv.stop(); srv.cleanup(); }
  if (redis) await redis.stop();
});

async function as(login, viewport, base = srv.base) {
  const p = await person(browser, base, login, { viewport });
  people.push(p);
  return p;
}

const T = 20000; // generous waits: the machine may be busy with other tests

test('rita runs Hand hygiene with lea, leo and lars through approval', async () => {
  const rita = await as('rita', DESKTOP);
  const lea = await as('lea', PHONE, proxy.base); // lea's phone network goes through the proxy
  const leo = await as('leo', PHONE, leoNet.base); // leo's phone is 150 ms away when he scans
  const lars = await as('lars', PHONE);

  // the learners wait on their home pages
  await logIn(lea, '/#/learn');
  await logIn(leo, '/#/learn');
  await logIn(lars, '/#/join');

  // rita's dashboard: three waiting, with module and learner data
  await logIn(rita, '/#/dashboard');
  const count = rita.page.locator('#otj-count');
  await count.filter({ hasText: '3' }).waitFor({ timeout: T });
  const group = rita.page.locator('.module-group[data-module="Hand hygiene"]');
  for (const n of ['Lea Johansen', 'Leo Nilsen', 'Lars Andersen']) await group.getByText(n).waitFor();
  await group.locator('li[data-learner="lars"]').getByText('Cold kitchen').waitFor();
  await shoot(rita.page, 'dashboard');

  // rita's second screen (a tablet on the wall) keeps the dashboard open:
  // its count must follow the approvals live (the server's `dashboard`
  // push), without a reload
  const wall = await as('rita', DESKTOP);
  await logIn(wall, '/#/dashboard');
  const dash = wall.page;
  await dash.locator('#otj-count').filter({ hasText: /^3$/ }).waitFor({ timeout: T });

  // multi-select lea and leo, open a group room
  await rita.page.getByLabel('Select Lea Johansen for a group room').check();
  await rita.page.getByLabel('Select Leo Nilsen for a group room').check();
  await rita.page.getByRole('button', { name: /Start group room \(2\)/ }).click();
  const code = (await rita.page.locator('#join-code').textContent({ timeout: T })).trim();
  assert.match(code, /^[A-Za-z0-9]{4,16}$/);

  // lea: the banner on her home invites her
  const banner = lea.page.getByRole('region', { name: 'Live room invitation' });
  await banner.getByText('Hand hygiene').waitFor({ timeout: T });
  await shoot(lea.page, 'learner-invite-banner');
  await banner.getByRole('link', { name: 'Join now' }).click();
  await lea.page.locator('#task-text', { hasText: 'How long should you rub your hands with soap?' }).waitFor({ timeout: T });

  // leo: the join link, the address the QR code holds, on a phone network
  // 150 ms away: his join goes right behind his hello, without waiting a
  // round trip for the welcome
  const leoFrames = [];
  const t = (f) => (typeof f.payload === 'string' ? '?' : decode(f.payload).t);
  leo.page.on('websocket', (ws) => {
    ws.on('framesent', (f) => leoFrames.push(`sent ${t(f)}`));
    ws.on('framereceived', (f) => leoFrames.push(`got ${t(f)}`));
  });
  leoNet.latency(150);
  await leo.page.goto(`${leoNet.base}/join/${code}`);
  await leo.page.locator('#task-text', { hasText: 'How long should you rub your hands with soap?' }).waitFor({ timeout: T });
  leoNet.latency(0);
  const order = leoFrames.filter((f) => /hello|welcome|join|snapshot/.test(f));
  assert.deepEqual(order.slice(0, 4), ['sent hello', 'sent join', 'got welcome', 'got snapshot'],
    `the scanned code is joined one round trip sooner: ${leoFrames.join(', ')}`);

  // lars: types the code
  await lars.page.getByLabel('Room code').fill(code);
  await shoot(lars.page, 'join');
  await lars.page.getByRole('button', { name: 'Join' }).click();
  await lars.page.locator('#task-text', { hasText: 'How long should you rub your hands with soap?' }).waitFor({ timeout: T });

  // rita sees all three, online
  for (const id of ['Lea Johansen', 'Leo Nilsen', 'Lars Andersen'])
    await rita.page.locator('.roster .presence.on').filter({ hasText: id }).waitFor({ timeout: T });
  await shoot(rita.page, 'responsible-room');
  // the code and QR code, big enough to read from across the room
  await rita.page.getByRole('button', { name: 'Show big for the room' }).click();
  const big = rita.page.getByRole('dialog', { name: `Join code ${code}` });
  await big.locator('.present-qr').waitFor();
  assert.ok((await big.locator('.present-qr').boundingBox()).width >= 380, 'the QR code fills the screen');
  assert.ok((await big.locator('.present-code').boundingBox()).height >= 100, 'the join code is huge');
  await shoot(rita.page, 'responsible-room-present', { both: false });
  await rita.page.keyboard.press('Escape');
  await big.waitFor({ state: 'detached' });
  await shoot(leo.page, 'learner-room');

  // answers: leo and lars normally
  await leo.page.getByRole('button', { name: /20 seconds/ }).click();
  await lars.page.getByRole('button', { name: /60 seconds/ }).click();
  await lars.page.getByRole('button', { name: /20 seconds/ }).click(); // changes his mind
  await leo.page.locator('[data-state="saved"]').waitFor({ timeout: T });

  // lea: her answer leaves, the network swallows it (no ack), then the
  // network is gone for a few seconds
  proxy.set('blackhole');
  await lea.page.getByRole('button', { name: /20 seconds/ }).click();
  await lea.page.locator('[data-state="sending"]').waitFor();
  await lea.page.waitForTimeout(800);
  proxy.set('down');
  await lea.page.locator('#conn[data-status="offline"], #conn[data-status="connecting"]').first().waitFor({ timeout: T });
  assert.equal(await lea.page.evaluate(() => JSON.parse(localStorage.getItem(Object.keys(localStorage).find((k) => k.startsWith('otj.outbox.'))) || '[]').length), 1,
    'the unacknowledged answer waits on the phone');
  await shoot(lea.page, 'learner-offline', { both: false });
  await lea.page.waitForTimeout(3000);
  // what the phone asks for once it is back (frames it sends on the new socket)
  const resent = [];
  lea.page.on('websocket', (ws) => ws.on('framesent', (f) => {
    if (typeof f.payload !== 'string') resent.push(decode(f.payload));
  }));
  proxy.set('pass');
  await lea.page.locator('#conn[data-status="online"]').waitFor({ timeout: T });
  await lea.page.locator('[data-state="saved"]').waitFor({ timeout: T });
  const asked = resent.filter((m) => m.t === 'join' || m.t === 'sync');
  assert.equal(asked.length, 1, `one request brings the room back: ${JSON.stringify(asked)}`);
  assert.equal(asked[0].t, 'sync', 'the reconnect asks only for what it missed, not the whole room');
  assert.ok(asked[0].since > 0, 'from the last event the phone saw');
  assert.equal(await lea.page.evaluate(() => JSON.parse(localStorage.getItem(Object.keys(localStorage).find((k) => k.startsWith('otj.outbox.'))) || '[]').length), 0,
    'the outbox is empty once acknowledged');

  // the grid shows each learner's answer exactly once, lea's included
  const row = (login, name) => rita.page.locator('tbody tr').filter({ hasText: name });
  for (const n of ['Lea Johansen', 'Leo Nilsen', 'Lars Andersen'])
    await row(null, n).locator('[data-cell$=":0"]').getByText('20 seconds').waitFor({ timeout: T });

  // observe tasks: rita moves on, marks; learners see their own marks arrive
  for (let task = 1; task <= 3; task++) {
    await rita.page.getByRole('button', { name: 'Next task →' }).click();
    await lea.page.locator('.task-kicker').filter({ hasText: `Task ${task + 1} of 4` }).waitFor({ timeout: T });
    for (const n of ['Lea Johansen', 'Lars Andersen']) await rita.page.getByRole('button', { name: `Pass: ${n}, task ${task + 1}` }).click();
    const leoResult = task === 3 ? 'Fail' : 'Pass';
    await rita.page.getByRole('button', { name: `${leoResult}: Leo Nilsen, task ${task + 1}` }).click();
    await lea.page.locator('#task-text ~ .answer-state [data-mark="pass"]').waitFor({ timeout: T });
  }
  await rita.page.locator('tbody tr').filter({ hasText: 'Leo Nilsen' }).locator('[data-cell$=":3"][data-mark="fail"]').waitFor({ timeout: T });
  await rita.page.getByRole('button', { name: 'Note for Leo Nilsen, task 4' }).click();
  await rita.page.getByRole('dialog').getByLabel('Note').fill('Dried hands on the apron.');
  await rita.page.getByRole('dialog').getByRole('button', { name: 'Save note' }).click();
  await leo.page.getByText('Dried hands on the apron.').first().waitFor({ timeout: T });
  await leo.page.locator('.mylist [data-mark="fail"]').getByText('Not passed').waitFor();
  await shoot(rita.page, 'responsible-room-marked');
  await shoot(lea.page, 'learner-marks');

  // leo cannot be approved with a failed task: the button says why
  assert.equal(await rita.page.getByRole('button', { name: 'Approve Leo Nilsen', exact: true }).isDisabled(), true);

  // decisions
  await rita.page.getByRole('button', { name: 'Approve Lea Johansen', exact: true }).click();
  await rita.page.locator('tbody tr').filter({ hasText: 'Lea Johansen' }).locator('[data-outcome="approved"]').waitFor({ timeout: T });
  await rita.page.getByRole('button', { name: 'Approve Lars Andersen', exact: true }).click();
  await rita.page.getByRole('button', { name: 'Not approve Leo Nilsen' }).click();
  await rita.page.getByRole('dialog').getByLabel('Note (optional)').fill('Repeat the drying step next week.');
  await rita.page.getByRole('dialog').getByRole('button', { name: 'Not approve' }).click();
  await rita.page.locator('tbody tr').filter({ hasText: 'Lars Andersen' }).locator('[data-outcome="approved"]').waitFor({ timeout: T });
  await rita.page.locator('tbody tr').filter({ hasText: 'Leo Nilsen' }).locator('[data-outcome="not_approved"]').waitFor({ timeout: T });

  // the other tab's count went from 3 to 1 by itself (well before its
  // 30-second fallback poll)
  await dash.locator('#otj-count').filter({ hasText: /^1$/ }).waitFor({ timeout: 10000 });
  await wall.context.close();

  // outcomes on the phones
  await lea.page.locator('[data-outcome="approved"]').waitFor({ timeout: T });
  await lars.page.locator('[data-outcome="approved"]').waitFor({ timeout: T });
  await leo.page.locator('[data-outcome="not_approved"]').waitFor({ timeout: T });
  await shoot(lea.page, 'learner-approved');
  await shoot(leo.page, 'learner-not-approved', { both: false });
  await shoot(rita.page, 'responsible-room-decided');

  // close the room; the dashboard now shows only leo
  await rita.page.getByRole('button', { name: 'Close the room' }).click();
  await rita.page.getByRole('dialog').getByRole('button', { name: 'Close the room' }).click();
  await rita.page.waitForURL(/#\/dashboard$/);
  await count.filter({ hasText: /^1$/ }).waitFor({ timeout: T });
  await rita.page.locator('.module-group[data-module="Hand hygiene"]').getByText('Leo Nilsen').waitFor();
  assert.equal(await rita.page.locator('.pending[data-learner="lea"]').count(), 0);

  // lea's path moved on
  await lea.page.goto(`${proxy.base}/#/learn`);
  await lea.page.locator('.module[data-module="Hand hygiene"][data-state="completed"]').waitFor({ timeout: T });
  await lea.page.locator('.module[data-module="Allergen handling"][data-state="available"]').waitFor();
  await shoot(lea.page, 'learner-home-after');

  // liv (not in the drill) still has Hand hygiene locked
  const liv = await as('liv', PHONE);
  await logIn(liv, '/#/learn');
  await liv.page.locator('.module[data-module="Hand hygiene"][data-state="locked"]').waitFor({ timeout: T });

  // leo still waits: his pop-up names rita
  await leo.page.goto(`${srv.base}/#/learn`);
  await leo.page.locator('.module[data-module="Hand hygiene"][data-state="otj"]').getByRole('button', { name: 'Open' }).click();
  await leo.page.getByRole('dialog', { name: 'Reach out to a responsible' }).getByText('Rita Hansen').waitFor();

  // the completions show who approved
  await rita.page.goto(`${srv.base}/#/completions`);
  await rita.page.locator('tbody tr').filter({ hasText: 'Lea Johansen' }).filter({ hasText: 'Hand hygiene' }).getByText('Rita Hansen').waitFor({ timeout: T });

  const errors = people.flatMap((p) => p.errors);
  assert.deepEqual(errors, [], 'no script errors on any page');
});
