// Limits and faults: a full room, too many rooms, idle connections, a
// stalled reader, and kill -9 right after an approval was acknowledged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startRedis, startOtjd, connectAs, sleep } from './harness.mjs';

function sqlOf(srv) {
  return (query) => {
    const out = execFileSync('sqlite3', ['-json', `${srv.dataDir}/otj.db`, query]).toString();
    return out.trim() ? JSON.parse(out) : [];
  };
}


async function withServer(env, fn) {
  const redis = await startRedis();
  const srv = await startOtjd({ redis: redis.addr, env });
  try {
    await fn(srv, redis);
  } finally {
    await srv.stop();
    srv.cleanup();
    await redis.stop();
  }
}

test('a full room refuses one learner more; a responsible has a bounded number of open rooms', async () => {
  await withServer({ OTJ_MAX_ROOM_LEARNERS: '1', OTJ_MAX_ROOMS_PER_RESPONSIBLE: '2' }, async (srv) => {
    const sql = sqlOf(srv);
    const HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
    const lea = sql(`SELECT id FROM users WHERE login='lea'`)[0].id;
    const rita = await connectAs(srv, 'rita');
    const snap = await rita.ask({ t: 'open', module: HH, learners: [lea] });
    assert.equal(snap.t, 'snapshot');
    const leo = await connectAs(srv, 'leo');
    const full = await leo.ask({ t: 'join', code: snap.code });
    assert.equal(full.code, 'too_large');
    assert.match(full.msg, /full/);
    assert.equal((await rita.ask({ t: 'open', module: HH, learners: [] })).t, 'snapshot');
    const third = await rita.ask({ t: 'open', module: HH, learners: [] });
    assert.equal(third.code, 'rate_limited');
    // closing one makes room for another
    assert.equal((await rita.ask({ t: 'close', room: snap.room })).t, 'ok');
    assert.equal((await rita.ask({ t: 'open', module: HH, learners: [] })).t, 'snapshot');
    await rita.close();
    await leo.close();
  });
});

test('drill after drill in one tab: closed rooms make way for new ones, the least recently used first; sixteen open rooms are a connection\'s limit', async () => {
  const env = { OTJ_MAX_ROOMS_PER_RESPONSIBLE: '40', OTJ_MAX_MSGS_PER_SEC: '1000', OTJ_MAX_USER_MSGS_PER_SEC: '1000' };
  await withServer(env, async (srv) => {
    const sql = sqlOf(srv);
    const HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
    const lea = sql(`SELECT id FROM users WHERE login='lea'`)[0].id;
    const rita = await connectAs(srv, 'rita');
    const drills = [];
    for (let i = 0; i < 20; i++) {
      const snap = await rita.ask({ t: 'open', module: HH, learners: [lea] });
      assert.equal(snap.t, 'snapshot', `drill ${i + 1} opens: ${snap.msg || ''}`);
      drills.push(snap.room);
      assert.equal((await rita.ask({ t: 'close', room: snap.room })).t, 'ok');
      // she looks back at the first drill now and then: it stays hers
      if (i >= 14) assert.equal((await rita.ask({ t: 'sync', room: drills[0], since: 0 })).t, 'ok');
    }
    // the first drill, used lately, is still joined; the second was let go
    assert.equal((await rita.ask({ t: 'leave', room: drills[0] })).t, 'ok');
    const gone = await rita.ask({ t: 'leave', room: drills[1] });
    assert.equal(gone.code, 'not_found');
    // a room let go can be looked at again
    const back = await rita.ask({ t: 'join', room: drills[1] });
    assert.equal(back.t, 'snapshot');
    assert.equal(back.state, 'closed');
    await rita.close();

    // open rooms are never let go: the 17th on one connection is refused
    const ruth = await connectAs(srv, 'rita');
    const open = [];
    for (let i = 0; i < 16; i++) {
      const snap = await ruth.ask({ t: 'open', module: HH, learners: [] });
      assert.equal(snap.t, 'snapshot');
      open.push(snap.room);
    }
    const openNow = () => sql(`SELECT count(*) AS n FROM otj_rooms WHERE closed_at IS NULL`)[0].n;
    assert.equal(openNow(), 16);
    const refused = await ruth.ask({ t: 'open', module: HH, learners: [] });
    assert.equal(refused.code, 'too_large');
    assert.match(refused.msg, /too many open rooms/);
    assert.equal(openNow(), 16, 'the refused room was not made');
    for (const room of open) assert.equal((await ruth.ask({ t: 'close', room })).t, 'ok');
    await ruth.close();
  });
});

test('a connection that says nothing past the idle timeout is closed; a pinging one stays', async () => {
  await withServer({ OTJ_IDLE_TIMEOUT: '2' }, async (srv) => {
    const quiet = await connectAs(srv, 'lea');
    const busy = await connectAs(srv, 'leo');
    const t0 = Date.now();
    const pinger = setInterval(() => busy.send({ t: 'ping' }), 300);
    const closed = await quiet.closed;
    clearInterval(pinger);
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /idle/);
    assert.ok(Date.now() - t0 < 6000);
    assert.equal((await busy.ask({ t: 'ping' })).t, 'pong');
    await busy.close();
  });
});

test('a stalled reader is dropped when its queue is full; the room and the others go on', async () => {
  await withServer({ OTJ_MAX_SEND_QUEUE: '64', OTJ_MAX_SEND_BYTES: '262144',
                     OTJ_MAX_MSGS_PER_SEC: '100000' }, async (srv) => {
    const sql = sqlOf(srv);
    const HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
    const lea = sql(`SELECT id FROM users WHERE login='lea'`)[0].id;
    const rita = await connectAs(srv, 'rita');
    const snap = await rita.ask({ t: 'open', module: HH, learners: [lea] });
    const stalled = await connectAs(srv, 'lea');
    assert.equal((await stalled.ask({ t: 'join', room: snap.room })).t, 'snapshot');
    stalled.ws._socket.pause();                       // stops reading
    let isClosed = false;
    stalled.ws._socket.once('close', () => { isClosed = true; });
    const stalledClosed = () => isClosed;
    const note = 'n'.repeat(1900);
    let lastSeq = 0, rid = 0;
    // the responsible sends in small batches and reads every reply (her own
    // queue stays short); the stalled learner's queue is what grows
    for (let batch = 0; batch < 300 && !stalledClosed(); batch++) {
      for (let i = 0; i < 20; i++)
        rita.send({ t: 'mark', room: snap.room, learner: lea, task: 1 + (i % 3), result: 'pass', note, rid: ++rid });
      for (;;) { const m = await rita.next(); if (m.rid === rid) { lastSeq = m.seq; break; } }
    }
    assert.ok(lastSeq > 100, `marks went through (${lastSeq})`);
    stalled.ws._socket.resume();
    // closed by the server: with a 1008 "too slow" close frame when it
    // could still be written, else without one (1006) once the bytes the
    // kernel held were flushed; /metrics below counts the drop either way
    const closed = await stalled.closed;
    assert.ok([1006, 1008].includes(closed.code), `close code ${closed.code}`);
    if (closed.code === 1008) assert.match(closed.reason, /slow/);
    // the responsible's connection is fine, and the room too
    assert.equal((await rita.ask({ t: 'ping' })).t, 'pong');
    assert.equal((await rita.ask({ t: 'step', room: snap.room, task: 2 })).t, 'ok');
    const metrics = await (await fetch(`${srv.base}/metrics`, srv.metricsAuth)).text();
    assert.match(metrics, /^otj_dropped_slow_total [1-9]/m);
    await rita.close();
  });
});

test('kill -9 right after an acknowledged approval loses nothing and duplicates nothing', async () => {
  const redis = await startRedis();
  let srv = await startOtjd({ redis: redis.addr });
  const dataDir = srv.dataDir;
  try {
    const sql = sqlOf(srv);
    const LT = sql(`SELECT id FROM modules WHERE title='Lock-out/tag-out'`)[0].id;
    const omar = sql(`SELECT id FROM users WHERE login='omar'`)[0].id;
    const sam = await connectAs(srv, 'sam');
    const snap = await sam.ask({ t: 'open', module: LT, learners: [omar] });
    for (const task of [0, 1, 2])
      assert.equal((await sam.ask({ t: 'mark', room: snap.room, learner: omar, task, result: 'pass' })).t, 'ok');
    const res = await sam.ask({ t: 'approve', room: snap.room, decisions: [{ learner: omar, approved: true }] });
    assert.equal(res.results[0].status, 'approved');
    srv.proc.kill('SIGKILL');                          // at once, no goodbye
    await srv.stop();
    const rows = sql(`SELECT id, approved_by, room_id FROM completions WHERE user_id=${omar} AND module_id=${LT}`);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].id, res.results[0].completion);
    assert.equal(rows[0].room_id, snap.room);

    // a new otjd on the same data: the room is still in Redis, and approving
    // again gives the same completion
    srv = await startOtjd({ redis: redis.addr, dataDir, demo: false });
    const sam2 = await connectAs(srv, 'sam');
    assert.equal((await sam2.ask({ t: 'join', room: snap.room })).t, 'snapshot');
    const again = await sam2.ask({ t: 'approve', room: snap.room, decisions: [{ learner: omar, approved: true }] });
    assert.equal(again.results[0].status, 'approved');
    assert.equal(again.results[0].completion, res.results[0].completion);
    assert.equal(sql(`SELECT count(*) AS n FROM completions WHERE user_id=${omar} AND module_id=${LT}`)[0].n, 1);
    await sam2.close();
  } finally {
    await srv.stop();
    execFileSync('rm', ['-rf', dataDir]);
    await redis.stop();
  }
});

test('an otjd instance dies: its learners show as gone on the other instance', async () => {
  const redis = await startRedis();
  const env = { OTJ_PRESENCE_STALE: '2' };
  const A = await startOtjd({ redis: redis.addr, env });
  const B = await startOtjd({ redis: redis.addr, env, dataDir: A.dataDir, demo: false });
  try {
    const sql = sqlOf(A);
    const HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
    const lea = sql(`SELECT id FROM users WHERE login='lea'`)[0].id;
    const rita = await connectAs(A, 'rita');
    const snap = await rita.ask({ t: 'open', module: HH, learners: [lea] });
    const cLea = await connectAs(B, 'lea');
    assert.equal((await cLea.ask({ t: 'join', room: snap.room })).t, 'snapshot');
    for (;;) { const m = await rita.next(); if (m.t === 'ev' && m.e.type === 'joined' && m.e.user === lea) break; }
    B.proc.kill('SIGKILL');                          // no leave is ever sent
    const t0 = Date.now();
    for (;;) {
      const m = await rita.next(8000);
      if (m.t === 'ev' && m.e.type === 'left' && m.e.user === lea) {
        assert.equal(m.e.role, 'learner');
        break;
      }
    }
    assert.ok(Date.now() - t0 < 8000);
    // and a fresh snapshot shows her offline
    const again = await rita.ask({ t: 'join', room: snap.room });
    assert.equal(again.learners.find((l) => l.id === lea).online, false);
    await rita.close();
  } finally {
    await B.stop();
    await A.stop();
    A.cleanup();
    await redis.stop();
  }
});

test('presence that Redis lost is rebuilt by the next beat of the instance holding the connection', async () => {
  const redis = await startRedis();
  const srv = await startOtjd({ redis: redis.addr, env: { OTJ_PRESENCE_STALE: '2' } });
  try {
    const sql = sqlOf(srv);
    const HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
    const lea = sql(`SELECT id FROM users WHERE login='lea'`)[0].id;
    const rita = await connectAs(srv, 'rita');
    const snap = await rita.ask({ t: 'open', module: HH, learners: [lea] });
    const cLea = await connectAs(srv, 'lea');
    const joined = (await cLea.ask({ t: 'join', room: snap.room })).seq;
    let first;
    for (;;) {   // rita hears lea join
      const m = await rita.next(8000);
      if (m.t === 'ev' && m.e.type === 'joined' && m.e.user === lea) { first = m.seq; break; }
    }
    assert.equal(first, joined);
    execFileSync('redis-cli', ['-p', String(redis.port), 'DEL', `otj:r:{${snap.room}}:presence`]);
    for (;;) {   // ... and again once the beat has made her entry anew
      const m = await rita.next(8000);
      if (m.t === 'ev' && m.e.type === 'joined' && m.e.user === lea && m.seq > first) break;
    }
    const again = await rita.ask({ t: 'join', room: snap.room });
    assert.equal(again.learners.find((l) => l.id === lea).online, true);
    await rita.close();
    await cLea.close();
  } finally {
    await srv.stop();
    srv.cleanup();
    await redis.stop();
  }
});
