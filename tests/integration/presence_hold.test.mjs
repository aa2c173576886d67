// Presence news held back: who came and went waits up to `presence_hold`
// for more news of the room, then goes in one write; anything else the room
// says sends what is held first, in seq order, so answers are never held
// and nobody's seq skips.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, startOtjd, connectAs as as } from './harness.mjs';
import { sqlOf } from './group_org.mjs';

let redis, A, sql;
const id = (login) => sql(`SELECT id FROM users WHERE login='${login}'`)[0].id;
const moduleId = (title) => sql(`SELECT id FROM modules WHERE title='${title}'`)[0].id;

before(async () => {
  redis = await startRedis();
  // long enough that "not yet" below holds on any machine
  A = await startOtjd({ redis: redis.addr, env: { OTJ_PRESENCE_HOLD: '1500' } });
  sql = sqlOf(A);
});

after(async () => {
  try {
    if (A) await A.stopClean();
  } finally {
    if (A) A.cleanup();
    if (redis) await redis.stop();
  }
});

// Resolves with the next `ev`, or null when none comes within ms.
async function nextEv(c, ms) {
  for (;;) {
    let m;
    try {
      m = await c.next(ms);
    } catch {
      return null;
    }
    if (m.t === 'ev') return m;
  }
}

test('a join is told to the room after the hold, or at once ahead of an answer, in seq order', async () => {
  const [lea, leo] = ['lea', 'leo'].map(id);
  const rita = await as(A, 'rita');
  const snap = await rita.ask({ t: 'open', module: moduleId('Hand hygiene'), learners: [lea, leo] });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  const { room, seq: base } = snap;

  // lea joins: the room hears it only after the hold (1.5 s)
  const cLea = await as(A, 'lea');
  assert.equal((await cLea.ask({ t: 'join', room })).seq, base + 1);
  assert.equal(await nextEv(rita, 700), null, 'joined is held');

  // leo joins and lea answers: the answer sends both joins ahead of itself
  const cLeo = await as(A, 'leo');
  assert.equal((await cLeo.ask({ t: 'join', room })).seq, base + 2);
  const ack = await cLea.ask({ t: 'answer', room, task: 0, value: 1, key: 'k1' });
  assert.equal(ack.t, 'ack', JSON.stringify(ack));
  const got = [await nextEv(rita, 5000), await nextEv(rita, 5000), await nextEv(rita, 5000)];
  assert.deepEqual(got.map((e) => e && e.seq), [base + 1, base + 2, base + 3]);
  assert.deepEqual(got.map((e) => e.e.type), ['joined', 'joined', 'answer']);
  assert.deepEqual([got[0].e.user, got[1].e.user], [lea, leo]);
  // leo, in the room since base + 2, got lea's answer too, nothing skipped
  const leoEv = await nextEv(cLeo, 5000);
  assert.equal(leoEv.seq, base + 3);

  // leo leaves, and nothing else happens: `left` still arrives, by itself
  await cLeo.close();
  const left = await nextEv(rita, 10000);
  assert.ok(left, 'left arrives once the hold is over');
  assert.equal(left.seq, base + 4);
  assert.deepEqual(left.e, { type: 'left', user: leo, role: 'learner' });
  // lea heard all of it too, in order (her own answer included)
  const leaSeqs = [];
  for (let e; (e = await nextEv(cLea, 10000)) && leaSeqs.push(e.seq) && e.seq < base + 4;);
  assert.deepEqual(leaSeqs, [base + 2, base + 3, base + 4]);
  await cLea.close();
  await rita.close();
});
