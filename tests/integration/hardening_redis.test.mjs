// Hardening of the room store: what one user can make Redis hold (answer
// keys, the event log, a message budget shared by all their connections),
// a Redis that is out of memory, and who may look at a closed room.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startRedis, startOtjd, connectAs, sleep, OTJD } from './harness.mjs';

function sqlOf(srv) {
  return (query) => {
    const out = execFileSync('sqlite3', ['-json', `${srv.dataDir}/otj.db`, query]).toString();
    return out.trim() ? JSON.parse(out) : [];
  };
}

// redis-cli against the test's Redis: `where` is ['-p', port] or ['-s', sock].
function redisCli(where, ...args) {
  return execFileSync('redis-cli', [...where, ...args]).toString().trim();
}

async function withServer(env, fn) {
  const redis = await startRedis();
  const srv = await startOtjd({ redis: redis.addr, env });
  try {
    await fn(srv, ['-p', String(redis.port)]);
    await srv.stopClean(); // under the sanitizers: no leak, no memory error
  } finally {
    await srv.stop();
    srv.cleanup();
    await redis.stop();
  }
}

let ridSeq = 1;
// Sends msg and waits for its reply, skipping events and other replies.
async function ask(c, msg, ms = 5000) {
  const rid = ridSeq++;
  c.send({ ...msg, rid });
  const until = Date.now() + ms;
  for (;;) {
    const m = await c.next(Math.max(1, until - Date.now()));
    if (m.rid === rid && m.t !== 'ev') return m;
  }
}

// Everything a client receives until it has been quiet for `quietMs`.
async function drain(c, quietMs = 700) {
  const out = [];
  for (;;) {
    try {
      out.push(await c.next(quietMs));
    } catch {
      return out;
    }
  }
}

// The demo world: ids and a room rita opened for lea.
async function demoRoom(srv) {
  const sql = sqlOf(srv);
  const HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
  const lea = sql(`SELECT id FROM users WHERE login='lea'`)[0].id;
  const rita = await connectAs(srv, 'rita');
  const snap = await ask(rita, { t: 'open', module: HH, learners: [lea] });
  assert.equal(snap.t, 'snapshot');
  return { HH, lea, rita, room: snap.room };
}

test('a learner flooding fresh answer keys from three connections is rate-limited per user, and the room keeps only the last few keys', async () => {
  await withServer({ OTJ_MAX_MSGS_PER_SEC: '50' }, async (srv, rc) => {
    const { room, rita } = await demoRoom(srv);
    const conns = [];
    for (let i = 0; i < 3; i++) {
      const c = await connectAs(srv, 'lea');
      assert.equal((await ask(c, { t: 'join', room })).t, 'snapshot');
      conns.push(c);
    }
    await sleep(1100); // a full budget for the flood
    // 45 answers per connection: each connection stays under its own
    // limit, the user (135 in a burst) does not
    const PER = 45;
    conns.forEach((c, i) => {
      for (let k = 0; k < PER; k++)
        c.send({ t: 'answer', room, task: 0, value: k % 3, key: `flood-${i}-${k}`, rid: 100000 + i * 1000 + k });
    });
    let acks = 0, limited = 0;
    const lastAck = [];
    for (const c of conns) {
      for (const m of await drain(c)) {
        if (m.t === 'ack') {
          acks++;
          lastAck.push(m);
        }
        if (m.t === 'err' && m.code === 'rate_limited') limited++;
      }
    }
    // the idempotency keys of lea's answers to task 0: the last few only
    const ikeys = `otj:r:{${room}}:ikeys`;
    const n = Number(redisCli(rc, 'HLEN', ikeys));
    assert.ok(n >= 1 && n <= 9, `ikeys hash has ${n} fields (8 keys kept per learner and task)`);
    // one budget per user: the three connections together are held to it
    assert.ok(limited >= 1, `some answers are refused rate_limited (${acks} acks)`);
    assert.ok(acks >= 1, 'the budget lets some through');
    assert.ok(acks < 3 * PER, `not every answer got through (${acks} acks)`);
    // the newest key is still idempotent: the same ack, no new event
    await sleep(1100);
    const newest = lastAck.reduce((a, b) => (b.seq > a.seq ? b : a));
    const again = await ask(conns[0], { t: 'answer', room, task: 0, value: 1, key: newest.key });
    assert.equal(again.t, 'ack');
    assert.equal(again.seq, newest.seq);
    // the budget is back after a second: answers are taken again
    const fresh = await ask(conns[1], { t: 'answer', room, task: 0, value: 2, key: 'after-the-flood' });
    assert.equal(fresh.t, 'ack');
    assert.ok(Number(redisCli(rc, 'HLEN', ikeys)) <= 9);
    for (const c of conns) await c.close();
    await rita.close();
  });
});

test('the room log in Redis is capped; a sync from before the log answers with a snapshot', async () => {
  await withServer({ OTJ_ROOM_LOG_KEEP: '16' }, async (srv, rc) => {
    const { room, rita } = await demoRoom(srv);
    const lea = await connectAs(srv, 'lea');
    assert.equal((await ask(lea, { t: 'join', room })).t, 'snapshot');
    for (let i = 0; i < 40; i++) {
      assert.equal((await ask(rita, { t: 'step', room, task: (i + 1) % 4 })).t, 'ok');
      if (i % 20 === 19) await sleep(1000); // within the message budget
    }
    const log = `otj:r:{${room}}:log`;
    const len = Number(redisCli(rc, 'LLEN', log));
    assert.ok(len >= 1 && len <= 16, `the log holds ${len} events (cap 16)`);
    // a phone that reconnects with a seq older than the log gets the room anew
    const phone = await connectAs(srv, 'lea');
    const snap = await ask(phone, { t: 'sync', room, since: 0 });
    assert.equal(snap.t, 'snapshot');
    assert.ok(snap.seq >= 40);
    // a recent seq is still answered with the events themselves
    const since = snap.seq - 3;
    const evs = [];
    const rid = ridSeq++;
    phone.send({ t: 'sync', room, since, rid });
    let done;
    while (!done) {
      const m = await phone.next();
      if (m.t === 'ev') evs.push(m.seq);
      else if (m.rid === rid) done = m;
    }
    assert.equal(done.t, 'ok');
    assert.deepEqual(evs.filter((s) => s <= snap.seq), [since + 1, since + 2, since + 3]);
    await phone.close();
    await lea.close();
    await rita.close();
  });
});

test('Redis out of memory: an answer gets unavailable, nothing is evicted, the server keeps serving', async () => {
  await withServer({}, async (srv, rc) => {
    const { room, rita } = await demoRoom(srv);
    const lea = await connectAs(srv, 'lea');
    assert.equal((await ask(lea, { t: 'join', room })).t, 'snapshot');
    assert.equal((await ask(lea, { t: 'answer', room, task: 0, value: 1, key: 'before' })).t, 'ack');
    redisCli(rc, 'CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    redisCli(rc, 'CONFIG', 'SET', 'maxmemory', '1');
    try {
      const full = await ask(lea, { t: 'answer', room, task: 0, value: 2, key: 'while-full' });
      assert.equal(full.t, 'err');
      assert.equal(full.code, 'unavailable');
      // the server goes on: pings, HTTP, reading the room
      assert.equal((await ask(lea, { t: 'ping' })).t, 'pong');
      assert.equal((await fetch(`${srv.base}/healthz`)).status, 200);
      const phone = await connectAs(srv, 'rita');
      const synced = await ask(phone, { t: 'sync', room, since: 0 });
      assert.ok(['ok', 'snapshot', 'err'].includes(synced.t));
      if (synced.t === 'err') assert.equal(synced.code, 'unavailable');
      await phone.close();
    } finally {
      redisCli(rc, 'CONFIG', 'SET', 'maxmemory', '0');
    }
    // nothing was lost, and answers are taken again
    assert.equal(redisCli(rc, 'EXISTS', `otj:r:{${room}}:meta`), '1');
    const again = await ask(lea, { t: 'answer', room, task: 0, value: 2, key: 'while-full' });
    assert.equal(again.t, 'ack');
    const before = await ask(lea, { t: 'answer', room, task: 0, value: 1, key: 'before' });
    assert.equal(before.t, 'ack');
    await lea.close();
    await rita.close();
  });
});

test('a Redis that stops answering (SIGSTOP) is dropped after the reply timeout: requests get unavailable instead of waiting for ever; once it answers again nothing acknowledged is lost', async () => {
  const redis = await startRedis();
  const srv = await startOtjd({ redis: redis.addr, env: { OTJ_REDIS_REPLY_TIMEOUT: '1000' } });
  let stopped = false;
  try {
    const { room, rita } = await demoRoom(srv);
    const lea = await connectAs(srv, 'lea');
    assert.equal((await ask(lea, { t: 'join', room })).t, 'snapshot');
    const before = await ask(lea, { t: 'answer', room, task: 0, value: 1, key: 'before' });
    assert.equal(before.t, 'ack');
    redis.proc.kill('SIGSTOP');
    stopped = true;
    // the TCP connection stays up; without the watchdog this waits for ever
    const stuck = await ask(lea, { t: 'answer', room, task: 0, value: 2, key: 'while-stopped' }, 6000);
    assert.equal(stuck.t, 'err');
    assert.equal(stuck.code, 'unavailable');
    // the server goes on serving, and says what is wrong
    assert.equal((await ask(lea, { t: 'ping' })).t, 'pong');
    const health = await fetch(`${srv.base}/healthz`);
    assert.equal(health.status, 503);
    assert.equal((await health.json()).redis.ok, false);
    const metrics = await (await fetch(`${srv.base}/metrics`, srv.metricsAuth)).text();
    assert.match(metrics, /^otj_redis_stalls_total [1-9]/m);
    redis.proc.kill('SIGCONT');
    stopped = false;
    // Redis answers again: otjd reconnects, and the answer goes through
    let again;
    for (let i = 0; i < 40; i++) {
      again = await ask(lea, { t: 'answer', room, task: 0, value: 2, key: 'while-stopped' });
      if (again.t === 'ack') break;
      assert.equal(again.code, 'unavailable');
      await sleep(250);
    }
    assert.equal(again.t, 'ack');
    // what was acknowledged before the stall is still there, under its seq
    const resent = await ask(lea, { t: 'answer', room, task: 0, value: 1, key: 'before' });
    assert.equal(resent.t, 'ack');
    assert.equal(resent.seq, before.seq);
    assert.equal((await fetch(`${srv.base}/healthz`)).status, 200);
    await lea.close();
    await rita.close();
    await srv.stopClean();
  } finally {
    if (stopped) redis.proc.kill('SIGCONT');
    await srv.stop();
    srv.cleanup();
    await redis.stop();
  }
});

test('Redis forgets the room script (SCRIPT FLUSH): a join and a snapshot read in one MULTI are refused for a moment, then work again', async () => {
  await withServer({}, async (srv, rc) => {
    const { room, rita } = await demoRoom(srv);
    redisCli(rc, 'SCRIPT', 'FLUSH');
    const lea = await connectAs(srv, 'lea');
    // the first call after the flush meets NOSCRIPT inside the MULTI: the
    // client hears "unavailable" and otjd loads the script again
    let joined = await ask(lea, { t: 'join', room });
    for (let i = 0; i < 20 && joined.t === 'err'; i++) {
      assert.equal(joined.code, 'unavailable', JSON.stringify(joined));
      await sleep(100);
      joined = await ask(lea, { t: 'join', room });
    }
    assert.equal(joined.t, 'snapshot', JSON.stringify(joined));
    assert.equal(joined.room, room);
    assert.ok(joined.learners.some((l) => l.online), 'she is online in her own snapshot');
    // and the host, who was there all along, still gets the room's news
    assert.equal((await ask(lea, { t: 'answer', room, task: 0, value: 1, key: 'after-flush' })).t, 'ack');
    const seen = await drain(rita, 1500);
    assert.ok(seen.some((m) => m.t === 'ev' && m.e.type === 'answer'), JSON.stringify(seen));
    await lea.close();
    await rita.close();
  });
});

test('the private redis-server runs with a maxmemory and the noeviction policy', async () => {
  const srv = await startOtjd({ env: { OTJ_REDIS_MAXMEMORY_MB: '64' } });
  try {
    const sock = ['-s', `${srv.dataDir}/redis.sock`];
    assert.equal(redisCli(sock, 'CONFIG', 'GET', 'maxmemory').split('\n')[1], String(64 * 1024 * 1024));
    assert.equal(redisCli(sock, 'CONFIG', 'GET', 'maxmemory-policy').split('\n')[1], 'noeviction');
    await srv.stopClean();
  } finally {
    await srv.stop();
    srv.cleanup();
  }
  // and a default when nothing is set
  const dflt = await startOtjd({});
  try {
    const sock = ['-s', `${dflt.dataDir}/redis.sock`];
    assert.ok(Number(redisCli(sock, 'CONFIG', 'GET', 'maxmemory').split('\n')[1]) > 0);
  } finally {
    await dflt.stop();
    dflt.cleanup();
  }
  // the setting is documented
  assert.match(execFileSync(OTJD, ['--help']).toString(), /OTJ_REDIS_MAXMEMORY_MB/);
});

test('a closed room is seen by its host and members only; others cannot tell it from an unknown room', async () => {
  await withServer({}, async (srv) => {
    const { room, rita } = await demoRoom(srv);
    const lea = await connectAs(srv, 'lea');
    assert.equal((await ask(lea, { t: 'join', room })).t, 'snapshot');
    assert.equal((await ask(lea, { t: 'answer', room, task: 0, value: 1, key: 'k1' })).t, 'ack');
    assert.equal((await ask(rita, { t: 'close', room })).t, 'ok');

    const nina = await connectAs(srv, 'nina');
    const unknown = await ask(nina, { t: 'join', room: 'nosuchroom12' });
    assert.equal(unknown.t, 'err');
    const refused = await ask(nina, { t: 'join', room });
    assert.equal(refused.t, 'err');
    assert.deepEqual({ code: refused.code, msg: refused.msg }, { code: unknown.code, msg: unknown.msg });
    assert.equal(refused.code, 'not_found');
    const refusedSync = await ask(nina, { t: 'sync', room, since: 0 });
    assert.equal(refusedSync.t, 'err');
    assert.equal(refusedSync.code, 'not_found');

    // sam replays nothing of the log
    const sam = await connectAs(srv, 'sam');
    const rid = ridSeq++;
    sam.send({ t: 'sync', room, since: 0, rid });
    const got = await drain(sam);
    assert.deepEqual(got.filter((m) => m.t === 'ev' || m.t === 'snapshot'), []);
    const reply = got.find((m) => m.rid === rid);
    assert.equal(reply?.code, 'not_found');

    // leo is within rita's reach and waits for the module, but was never in
    // the room: a closed room takes nobody new
    const leo = await connectAs(srv, 'leo');
    assert.equal((await ask(leo, { t: 'join', room })).code, 'not_found');

    // the members still look at it: lea sees her own answer, and syncs
    const lea2 = await connectAs(srv, 'lea');
    const mine = await ask(lea2, { t: 'join', room });
    assert.equal(mine.t, 'snapshot');
    assert.equal(mine.state, 'closed');
    assert.equal(mine.answers.length, 1);
    assert.equal(mine.answers[0].value, 1);
    const lea3 = await connectAs(srv, 'lea');
    const evs = [];
    const r3 = ridSeq++;
    lea3.send({ t: 'sync', room, since: 0, rid: r3 });
    let end;
    while (!end) {
      const m = await lea3.next();
      if (m.t === 'ev') evs.push(m.e.type);
      else if (m.rid === r3) end = m;
    }
    assert.equal(end.t, 'ok');
    assert.ok(evs.includes('answer') && evs.includes('closed'));
    // and the host
    const host = await connectAs(srv, 'rita');
    const hs = await ask(host, { t: 'join', room });
    assert.equal(hs.t, 'snapshot');
    assert.equal(hs.state, 'closed');
    // the closed room still refuses what changes it
    assert.equal((await ask(lea2, { t: 'answer', room, task: 0, value: 2, key: 'k2' })).code, 'conflict');

    for (const c of [lea, lea2, lea3, nina, sam, leo, host]) await c.close();
    await rita.close();
  });
});
