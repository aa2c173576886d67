// A learner's outcome survives a fresh connection: the snapshot a member gets
// on `join` lists the room's decisions under `outcomes`, by the visibility
// rule (the learner sees their own whole, another learner only that there is
// one, the room's responsible every one whole).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startRedis, startOtjd, connectAs } from './harness.mjs';

function sqlOf(srv) {
  return (query) => {
    const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000',
      `${srv.dataDir}/otj.db`, query]).toString();
    return out.trim() ? JSON.parse(out) : [];
  };
}


// The snapshot a new connection of `login` gets when it joins `room`.
async function freshSnapshot(srv, login, room) {
  const c = await connectAs(srv, login);
  try {
    const snap = await c.ask({ t: 'join', room });
    assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
    return snap;
  } finally {
    await c.close();
  }
}

const outcomeOf = (snap, learner) => (snap.outcomes || []).find((o) => o.learner === learner);

test('after a decision, a fresh join shows the learner their outcome, and others only what they may see', async () => {
  const redis = await startRedis();
  const srv = await startOtjd({ redis: redis.addr });
  try {
    const sql = sqlOf(srv);
    const HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
    const lea = sql(`SELECT id FROM users WHERE login='lea'`)[0].id;
    const leo = sql(`SELECT id FROM users WHERE login='leo'`)[0].id;

    const rita = await connectAs(srv, 'rita');
    const snap = await rita.ask({ t: 'open', module: HH, learners: [lea, leo] });
    assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
    assert.deepEqual(snap.outcomes, [], 'a new room has no outcomes');
    for (const learner of [lea, leo])
      for (const task of [1, 2, 3])
        assert.equal((await rita.ask({ t: 'mark', room: snap.room, learner, task, result: 'pass' })).t, 'ok');
    const res = await rita.ask({ t: 'approve', room: snap.room, decisions: [
      { learner: lea, approved: true }, { learner: leo, approved: false }] });
    assert.equal(res.t, 'approved', JSON.stringify(res));
    const completion = res.results.find((r) => r.learner === lea).completion;
    assert.ok(completion > 0);
    await rita.close();

    // lea reloads her page: a new connection, a new join
    const forLea = await freshSnapshot(srv, 'lea', snap.room);
    assert.deepEqual(outcomeOf(forLea, lea), { learner: lea, status: 'approved', completion });
    assert.deepEqual(outcomeOf(forLea, leo), { learner: leo }, 'leo\'s decision is not lea\'s to see');

    const forLeo = await freshSnapshot(srv, 'leo', snap.room);
    assert.deepEqual(outcomeOf(forLeo, leo), { learner: leo, status: 'not_approved' });
    assert.deepEqual(outcomeOf(forLeo, lea), { learner: lea }, 'lea\'s approval is not leo\'s to see');

    const forRita = await freshSnapshot(srv, 'rita', snap.room);
    assert.deepEqual(outcomeOf(forRita, lea), { learner: lea, status: 'approved', completion });
    assert.deepEqual(outcomeOf(forRita, leo), { learner: leo, status: 'not_approved' });
    await srv.stopClean(); // under the sanitizers: no report, no leak
  } finally {
    await srv.stop();
    srv.cleanup();
    await redis.stop();
  }
});
