// Redis stops answering for a few seconds in the middle of a drill (SIGSTOP,
// as a frozen VM would): lea's answer, sent meanwhile, is refused
// `unavailable` once otjd gives up on that Redis (OTJ_REDIS_REPLY_TIMEOUT);
// when Redis answers again, her phone sends it again by itself, without a
// reload and without reconnecting, and rita's grid shows it once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, startOtjd } from '../integration/harness.mjs';
import { launch, person, startHandHygiene, DESKTOP } from './browser.mjs';

let redis, srv, browser, stopped = false;
const people = [];

before(async () => {
  redis = await startRedis();
  srv = await startOtjd({ redis: redis.addr, env: { OTJ_REDIS_REPLY_TIMEOUT: '1000' } });
  browser = await launch();
});

after(async () => {
  if (stopped) redis.proc.kill('SIGCONT');
  for (const p of people) await p.context.close().catch(() => {});
  if (browser) await browser.close();
  if (srv) { await srv.stop(); srv.cleanup(); }
  if (redis) await redis.stop();
});

const T = 30000;

test('an answer given while Redis is stalled is saved once Redis is back, with no reload and no reconnect', async () => {
  const rita = await person(browser, srv.base, 'rita', { viewport: DESKTOP });
  const lea = await person(browser, srv.base, 'lea');
  people.push(rita, lea);
  await startHandHygiene(rita, lea, 'Lea Johansen', T);
  let sockets = 0;
  lea.page.on('websocket', () => { sockets++; });

  redis.proc.kill('SIGSTOP');
  stopped = true;
  await lea.page.getByRole('button', { name: /20 seconds/ }).click();
  await lea.page.locator('[data-state="sending"]').waitFor({ timeout: T });
  // otjd gives up on the silent Redis after a second; the answer is refused
  // and waits on the phone
  await lea.page.waitForTimeout(3000);
  assert.equal(await lea.page.locator('[data-state="saved"]').count(), 0);
  redis.proc.kill('SIGCONT');
  stopped = false;

  await lea.page.locator('[data-state="saved"]').waitFor({ timeout: T });
  await rita.page.locator('tbody tr').filter({ hasText: 'Lea Johansen' })
    .locator('[data-cell$=":0"]').getByText('20 seconds').waitFor({ timeout: T });
  assert.equal(await lea.page.locator('#conn').getAttribute('data-status'), 'online');
  assert.equal(sockets, 0, 'the phone kept its connection');
  assert.equal(await lea.page.evaluate(() => JSON.parse(localStorage.getItem(Object.keys(localStorage).find((k) => k.startsWith('otj.outbox.'))) || '[]').length), 0,
    'the outbox is empty once acknowledged');
  assert.deepEqual([...rita.errors, ...lea.errors], []);
});
