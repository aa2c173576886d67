// An idle room expires from Redis `room_idle_ttl` after its last change,
// and no key of a room ever lives without an expiry: room.lua pushes the
// expiry of all the room's keys out at most once per TTL/16 (at least 1 s),
// and gives a key a change made in between (a first answer, presence made
// again after everyone left) the same deadline at once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startRedis, startOtjd, connectAs as as, sleep, waitFor } from './harness.mjs';
import { sqlOf } from './group_org.mjs';

const started = [];
after(async () => {
  for (const { srv, redis } of started) {
    try {
      await srv.stopClean();
    } finally {
      srv.cleanup();
      await redis.stop();
    }
  }
});

async function setup(ttl, env = {}) {
  const redis = await startRedis();
  const srv = await startOtjd({ redis: redis.addr,
    env: { OTJ_ROOM_IDLE_TTL: String(ttl), ...env } });
  started.push({ srv, redis });
  const sql = sqlOf(srv);
  const cli = (...args) =>
    execFileSync('redis-cli', ['-p', String(redis.port), ...args]).toString().trim();
  return {
    srv, cli,
    id: (login) => sql(`SELECT id FROM users WHERE login='${login}'`)[0].id,
    moduleId: (title) => sql(`SELECT id FROM modules WHERE title='${title}'`)[0].id,
    // every key of the room with its remaining time (ms; -1: no expiry)
    keys: (room) => Object.fromEntries(cli('--scan', '--pattern', `otj:r:{${room}}:*`)
      .split('\n').filter(Boolean).map((k) => [k.split(':').pop(), Number(cli('PTTL', k))])),
  };
}

// Every key the room has expires, and not sooner than `atLeast` ms from now.
function allExpire(keys, atLeast, when) {
  assert.ok(Object.keys(keys).length > 0, `${when}: the room has keys`);
  for (const [k, ms] of Object.entries(keys)) {
    assert.ok(ms >= atLeast, `${when}: ${k} expires in ${ms} ms (want >= ${atLeast}): ${JSON.stringify(keys)}`);
  }
}

test('every key a drill makes expires, including presence made again after everyone left', async () => {
  // TTL 64 s: the expiry is pushed out at most every 4 s, so nearly every
  // change below is one that does not push it, and must date new keys itself
  const w = await setup(64);
  const lea = w.id('lea');
  const rita = await as(w.srv, 'rita');
  const snap = await rita.ask({ t: 'open', module: w.moduleId('Hand hygiene'), learners: [lea] });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  const { room } = snap;
  const mustLast = 60000; // a change just made leaves at least TTL minus this test's slack
  allExpire(w.keys(room), mustLast, 'opened');

  const cLea = await as(w.srv, 'lea');
  assert.equal((await cLea.ask({ t: 'join', room })).t, 'snapshot');
  let k = w.keys(room);
  for (const made of ['presence', 'attendance', 'log']) assert.ok(made in k, `${made} after a join`);
  allExpire(k, mustLast, 'lea joined');

  assert.equal((await cLea.ask({ t: 'answer', room, task: 0, value: 1, key: 'k0' })).t, 'ack');
  k = w.keys(room);
  for (const made of ['answers', 'ikeys']) assert.ok(made in k, `${made} after an answer`);
  allExpire(k, mustLast, 'lea answered');

  assert.equal((await rita.ask({ t: 'step', room, task: 1 })).t, 'ok');
  assert.equal((await rita.ask({ t: 'mark', room, learner: lea, task: 1, result: 'pass' })).t, 'ok');
  k = w.keys(room);
  assert.ok('marks' in k, 'marks after a mark');
  allExpire(k, mustLast, 'rita marked');

  // everyone leaves: the presence hash empties, and Redis deletes it
  await cLea.close();
  await rita.close();
  await waitFor(() => !('presence' in w.keys(room)), 'presence emptied', 5000);
  // ... and a join makes it again, dated like the rest
  const back = await as(w.srv, 'lea');
  assert.equal((await back.ask({ t: 'join', room })).t, 'snapshot');
  k = w.keys(room);
  assert.ok('presence' in k, 'presence made again');
  allExpire(k, mustLast, 'lea back');
  await back.close();
});

test('an idle room expires after the TTL; a change pushes that out', async () => {
  const w = await setup(3); // expiry pushed out at most every 1 s: gone 3-4 s after the last change
  const lea = w.id('lea');
  const rita = await as(w.srv, 'rita');
  const open = async () => {
    const s = await rita.ask({ t: 'open', module: w.moduleId('Hand hygiene'), learners: [lea] });
    assert.equal(s.t, 'snapshot', JSON.stringify(s));
    return s.room;
  };
  const idle = await open();
  const busy = await open();
  const t0 = Date.now();
  // the busy room changes 2.5 s in, the idle one never
  await sleep(2500 - (Date.now() - t0));
  assert.equal((await rita.ask({ t: 'step', room: busy, task: 1 })).t, 'ok');
  const changed = Date.now();
  // 4.5 s after opening, past the idle room's last deadline (open + 3 + 1 s)
  await sleep(4500 - (Date.now() - t0));
  assert.deepEqual(w.keys(idle), {}, 'the idle room is gone');
  allExpire(w.keys(busy), 1, 'the busy room is still there');
  // and it goes too, within TTL + 1 s of its change
  await sleep(Math.max(0, changed + 4200 - Date.now()));
  assert.deepEqual(w.keys(busy), {}, 'the busy room is gone once idle');
  const gone = await rita.ask({ t: 'step', room: busy, task: 2 });
  assert.equal(gone.t, 'err');
  assert.equal(gone.code, 'not_found');
});

test('a drill busy for longer than the TTL keeps its join code', async () => {
  // TTL 3 s; the beat (which keeps the code) every second
  const w = await setup(3, { OTJ_PRESENCE_STALE: '3' });
  const lea = w.id('lea');
  const rita = await as(w.srv, 'rita');
  const snap = await rita.ask({ t: 'open', module: w.moduleId('Hand hygiene'), learners: [lea] });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  const { room, code } = snap;
  // the drill goes on for 5 s: a step every second
  const t0 = Date.now();
  for (let task = 1; Date.now() - t0 < 5000; task = task % 3 + 1) {
    assert.equal((await rita.ask({ t: 'step', room, task })).t, 'ok');
    await sleep(1000);
  }
  // lars (within rita's reach, waiting) scans the code now
  const lars = await as(w.srv, 'lars');
  const s = await lars.ask({ t: 'join', code });
  assert.equal(s.t, 'snapshot', `join by code after 5 s: ${JSON.stringify(s)}`);
  assert.equal(s.room, room);
  const pttl = Number(w.cli('PTTL', `otj:code:${code}`));
  assert.ok(pttl > 0 && pttl <= 3000, `the code expires within the TTL: ${pttl} ms`);
  // once the room is closed, its code is let go (the beat does not make it again)
  assert.equal((await rita.ask({ t: 'close', room })).t, 'ok');
  await sleep(1500);
  assert.equal(w.cli('EXISTS', `otj:code:${code}`), '0');
  const late = await (await as(w.srv, 'liv')).ask({ t: 'join', code });
  assert.equal(late.code, 'not_found');
});
