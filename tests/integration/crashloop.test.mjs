// Crash tests. (1) otjd is killed with SIGKILL at random moments while a
// responsible streams approvals, at least 100 times, restarting on the same
// data folder and the same Redis each time; afterwards every approval that
// was acknowledged to the client is in SQLite exactly once, with the id the
// client was told, no (learner, module) has two completions, and SQLite's
// integrity check says ok. (2) The private redis-server is killed with
// SIGKILL in the middle of a drill: the clients are told (unavailable, then
// the room is reported lost), otjd keeps answering HTTP throughout, a new
// room works once otjd has started a new redis-server, and nothing
// acknowledged is lost. (lifecycle.test.mjs covers a Redis death in a quiet
// room; this one is under a stream of writes.)
// OTJ_CRASHLOOP_KILLS sets the number of kills (default 100).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decode } from '@msgpack/msgpack';
import {
  startRedis, startOtjd, login, Client, childPids, waitFor, sleep, alive,
} from './harness.mjs';

const KILLS = Number(process.env.OTJ_CRASHLOOP_KILLS || 100);
const LEARNERS = 12000; // a fresh learner per approval, never reused
const ENV = {
  // the drill is one busy responsible: lift the per-connection limits that
  // a real person never reaches, so what is measured is the crash, not 429s
  OTJ_MAX_ROOMS_PER_RESPONSIBLE: '1000000',
  OTJ_MAX_MSGS_PER_SEC: '1000000',
};

function sqlAt(dataDir) {
  return (query) => {
    const out = execFileSync('sqlite3', ['-json', `${dataDir}/otj.db`, query]).toString();
    return out.trim() ? JSON.parse(out) : [];
  };
}

class Gone extends Error {}

// A request that fails fast (Gone) when the connection closes meanwhile.
async function ask(c, msg, ms = 5000) {
  const rid = Math.floor(Math.random() * 1e9);
  const reply = (async () => {
    c.send({ ...msg, rid });
    for (;;) {
      const m = await c.next(ms);
      if (m.rid === rid) return m;
    }
  })();
  reply.catch(() => {});
  return Promise.race([reply, c.closed.then(() => { throw new Gone('closed'); })]);
}

// Sends many requests at once; resolves with the replies in order.
async function askAll(c, msgs, ms = 5000) {
  const rids = msgs.map(() => Math.floor(Math.random() * 1e9));
  const replies = (async () => {
    msgs.forEach((m, i) => c.send({ ...m, rid: rids[i] }));
    const got = new Map();
    while (got.size < rids.length) {
      const m = await c.next(ms);
      if (rids.includes(m.rid)) got.set(m.rid, m);
    }
    return rids.map((r) => got.get(r));
  })();
  replies.catch(() => {});
  return Promise.race([replies, c.closed.then(() => { throw new Gone('closed'); })]);
}

async function helloWith(srv, token) {
  const c = new Client(srv);
  await Promise.race([c.opened(), c.closed.then(() => { throw new Gone('closed'); })]);
  const w = await ask(c, { t: 'hello', v: 1, token });
  if (w.t !== 'welcome') throw new Error(`hello refused: ${JSON.stringify(w)}`);
  return c;
}

// The drill: rooms of `batch` learners, every task marked, then approved.
// Records acknowledged approvals in `acked` (learner -> completion id) and
// every learner an approval was sent for in `tried`. Returns when the pool
// is empty or the connection is gone.
async function drill(c, LT, pool, acked, tried, { batch = 5, onError } = {}) {
  try {
    while (pool.length) {
      const learners = pool.splice(0, batch);
      learners.forEach((l) => tried.add(l));
      const snap = await ask(c, { t: 'open', module: LT, learners });
      if (snap.t !== 'snapshot') { onError?.(snap); continue; }
      const marks = [];
      for (const learner of learners)
        for (const task of [0, 1, 2])
          marks.push({ t: 'mark', room: snap.room, learner, task, result: 'pass' });
      const mr = await askAll(c, marks);
      const bad = mr.find((m) => m.t !== 'ok');
      const res = bad ? bad : await ask(c, {
        t: 'approve', room: snap.room,
        decisions: learners.map((learner) => ({ learner, approved: true })),
      });
      if (res.t === 'approved') {
        for (const r of res.results)
          if (r.status === 'approved') acked.set(r.learner, r.completion);
      } else {
        onError?.(res);
      }
      // done with the room: close it, and leave it too, as a closed room
      // stays attached to the connection (to be looked at) and one
      // connection may be in at most 16 rooms; a leave needs no Redis
      c.send({ t: 'close', room: snap.room });
      c.send({ t: 'leave', room: snap.room });
    }
  } catch (e) {
    if (!(e instanceof Gone) && !/no message within/.test(e.message)) throw e;
  }
}

// Adds LEARNERS learners to the demo's Assembly line (sam's reach; the
// "Line safety" path with Lock-out/tag-out is shared with it).
async function provision(srv, n = LEARNERS) {
  const admin = (await login(srv, 'admin')).body.token;
  for (let from = 0; from < n; from += 2000) {
    const users = [];
    for (let i = from; i < Math.min(n, from + 2000); i++)
      users.push({ login: `crash${i}`, name: `Crash Learner ${i}`, department: 'Assembly line',
        password_hash: '$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$never-logs-in' });
    const r = await fetch(`${srv.base}/api/admin/import`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: JSON.stringify({ users }),
    });
    assert.equal(r.status, 200, await r.text());
  }
}

function checkDatabase(sql, LT, acked, tried) {
  assert.deepEqual(sql('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
  const dup = sql(`SELECT user_id, module_id, count(*) AS n FROM completions
                   GROUP BY user_id, module_id HAVING n > 1`);
  assert.deepEqual(dup, [], 'no learner has two completions of one module');
  const rows = new Map(sql(`SELECT user_id, id FROM completions WHERE module_id=${LT}`)
    .map((r) => [r.user_id, r.id]));
  for (const [learner, completion] of acked)
    assert.equal(rows.get(learner), completion, `acknowledged approval of ${learner} is stored`);
  // what was stored without an acknowledgement is a learner an approval was
  // sent for (the kill came between commit and answer), never anyone else
  for (const learner of rows.keys())
    if (!acked.has(learner)) assert.ok(tried.has(learner), `stray completion ${learner}`);
  return rows.size;
}

test(`otjd killed with SIGKILL ${KILLS} times during a stream of approvals: every acknowledged approval is stored exactly once`, { timeout: 300000 }, async () => {
  const redis = await startRedis();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'otj-crash-'));
  const sql = sqlAt(dataDir);
  let srv = await startOtjd({ redis: redis.addr, dataDir, env: ENV });
  const t0 = Date.now();
  try {
    await provision(srv);
    const LT = sql(`SELECT id FROM modules WHERE title='Lock-out/tag-out'`)[0].id;
    const pool = sql(`SELECT id FROM users WHERE login LIKE 'crash%' ORDER BY id`).map((r) => r.id);
    assert.equal(pool.length, LEARNERS);
    // a session survives restarts (it is in SQLite): one login, no argon2 per round
    const token = (await login(srv, 'sam')).body.token;
    const acked = new Map();
    const tried = new Set();
    let kills = 0, duringDrill = 0;
    for (let round = 0; round < KILLS; round++) {
      if (round > 0) srv = await startOtjd({ redis: redis.addr, dataDir, env: ENV, demo: false });
      const before = acked.size;
      const delay = Math.floor(Math.random() * 300);
      const killer = sleep(delay).then(() => srv.proc.kill('SIGKILL'));
      try {
        const c = await helloWith(srv, token);
        // at most 110 learners a round, so the pool lasts every round
        const mine = pool.splice(0, 110);
        try {
          await drill(c, LT, mine, acked, tried);
        } finally {
          pool.unshift(...mine);
        }
      } catch (e) {
        if (!(e instanceof Gone) && !/ECONNREFUSED|ECONNRESET|socket hang up|upgrade refused|no message within/.test(e.message))
          throw e;
      }
      await killer;
      const r = await srv.stop();
      assert.equal(r.signal, 'SIGKILL', `round ${round}: otjd died by the kill, not before (${JSON.stringify(r)})\n${srv.log}`);
      kills++;
      if (acked.size > before) duringDrill++;
      assert.ok(pool.length > 0, 'the pool of fresh learners lasts');
    }
    // one more start: the data is whole and the server works
    srv = await startOtjd({ redis: redis.addr, dataDir, env: ENV, demo: false });
    const c = await helloWith(srv, token);
    const last = pool.splice(0, 1);
    await drill(c, LT, last, acked, tried);
    assert.equal(last.length, 0);
    await c.close();
    await srv.stopClean();
    const stored = checkDatabase(sql, LT, acked, tried);
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    console.log(`crashloop: ${kills} SIGKILLs (${duringDrill} after approvals were acknowledged in that run), ` +
      `${acked.size} acknowledged approvals, ${stored} stored, ${tried.size} sent, ${secs} s`);
    assert.ok(duringDrill >= KILLS / 4, `most kills hit a running drill (${duringDrill}/${KILLS})`);
  } finally {
    await srv.stop('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    await redis.stop();
  }
});

test('the private redis-server killed with SIGKILL mid-drill: clients are told, HTTP keeps answering, a new room works, nothing acknowledged is lost', { timeout: 120000 }, async () => {
  const srv = await startOtjd({ env: ENV }); // embedded redis-server
  const sql = sqlAt(srv.dataDir);
  try {
    await provision(srv, 3000);
    const LT = sql(`SELECT id FROM modules WHERE title='Lock-out/tag-out'`)[0].id;
    const pool = sql(`SELECT id FROM users WHERE login LIKE 'crash%' ORDER BY id`).map((r) => r.id);
    const token = (await login(srv, 'sam')).body.token;
    const c = await helloWith(srv, token);
    const acked = new Map(), tried = new Set(), errors = [];
    // A second connection of sam's holds a room open through the kill: it
    // must be told, whatever the drill happens to be doing at that moment
    // (between two rooms, the drill's own connection is in none).
    const watcher = await helloWith(srv, token);
    const held = await ask(watcher, { t: 'open', module: LT, learners: pool.splice(0, 1) });
    assert.equal(held.t, 'snapshot', JSON.stringify(held));
    const toldWatcher = [];
    watcher.ws.on('message', (data) => {
      const m = decode(data);
      if (m.t === 'err') toldWatcher.push(m.code);
    });
    const stream = drill(c, LT, pool.splice(0, 1000), acked, tried, {
      batch: 2, onError: (m) => errors.push(m.code || m.t),
    });
    await waitFor(() => acked.size >= 10, 'approvals flowing');
    const redisPid = childPids(srv.proc.pid).find((k) => k.comm.startsWith('redis-server')).pid;
    const ackedBefore = acked.size;
    process.kill(redisPid, 'SIGKILL');
    // HTTP answers all along (503 from /healthz while Redis is away is fine,
    // silence is not), until otjd has a new redis-server
    let worst = 0, probes = 0;
    const until = Date.now() + 15000;
    let back = false, lastHealth = '';
    while (Date.now() < until) {
      const t = Date.now();
      const r = await fetch(`${srv.base}/healthz`, { signal: AbortSignal.timeout(2000) }).catch((e) => {
        throw new Error(`/healthz: ${e.cause?.code || e.message}; otjd alive: ${alive(srv.proc.pid)}\n${srv.log}`);
      });
      worst = Math.max(worst, Date.now() - t);
      lastHealth = `${r.status} ${await r.text()}`;
      probes++;
      const me = await fetch(`${srv.base}/api/me`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(me.status, 200, 'the HTTP API works without Redis');
      if (r.status === 200 && childPids(srv.proc.pid).some((k) => k.comm.startsWith('redis-server') && k.pid !== redisPid)) {
        back = true;
        if (toldWatcher.length) break;
      }
      await sleep(50);
    }
    assert.ok(back, `otjd started a new redis-server and /healthz is 200 again (errors ${JSON.stringify(errors.slice(-3))}, /healthz ${lastHealth}, children ${JSON.stringify(childPids(srv.proc.pid))})\n${srv.log}`);
    assert.ok(worst < 2000, `/healthz answered within ${worst} ms`);
    assert.ok(toldWatcher.includes('unavailable'),
      `a client in a room was told (${JSON.stringify(toldWatcher.slice(0, 5))})`);
    await watcher.close();
    assert.ok(alive(srv.proc.pid));
    await Promise.race([stream, sleep(10000)]);
    pool.length = 0;
    // a new room, marks and approval work on the new redis-server
    const fresh = sql(`SELECT id FROM users WHERE login='crash2999'`).map((r) => r.id);
    const ackedAfter = new Map(), later = [];
    for (let i = 0; i < 50 && !ackedAfter.size; i++) {
      await drill(c, LT, [...fresh], ackedAfter, tried, { onError: (m) => later.push(m) });
      if (!ackedAfter.size) await sleep(100);
    }
    assert.equal(ackedAfter.size, 1, `an approval after the Redis loss is acknowledged ${JSON.stringify(later.slice(-3))}`);
    for (const [k, v] of ackedAfter) acked.set(k, v);
    await c.close();
    await srv.stopClean();
    checkDatabase(sql, LT, acked, tried);
    console.log(`redis kill: ${ackedBefore} approvals acknowledged before the kill, ${acked.size} in all; ` +
      `errors told: ${[...new Set([...errors, ...toldWatcher])].join(', ')}; /healthz worst ${worst} ms over ${probes} probes`);
  } finally {
    await srv.stop('SIGKILL');
    srv.cleanup();
  }
});

test('an approval while another process holds the database write lock is never acknowledged unless it is stored', { timeout: 60000 }, async () => {
  const redis = await startRedis();
  const srv = await startOtjd({ redis: redis.addr, env: ENV });
  const sql = sqlAt(srv.dataDir);
  let locker;
  try {
    const LT = sql(`SELECT id FROM modules WHERE title='Lock-out/tag-out'`)[0].id;
    const omar = sql(`SELECT id FROM users WHERE login='omar'`)[0].id;
    const c = await helloWith(srv, (await login(srv, 'sam')).body.token);
    const snap = await ask(c, { t: 'open', module: LT, learners: [omar] });
    assert.equal(snap.t, 'snapshot');
    for (const task of [0, 1, 2])
      assert.equal((await ask(c, { t: 'mark', room: snap.room, learner: omar, task, result: 'pass' })).t, 'ok');
    // another process takes the write lock and keeps it past the busy timeout
    locker = spawn('sqlite3', [`${srv.dataDir}/otj.db`], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    locker.stdout.on('data', (d) => { out += d; });
    locker.stdin.write(".timeout 10000\nBEGIN IMMEDIATE;\nSELECT 'locked';\n");
    await waitFor(() => out.includes('locked'), 'the write lock');
    const res = await ask(c, { t: 'approve', room: snap.room, decisions: [{ learner: omar, approved: true }] }, 20000);
    locker.stdin.write('COMMIT;\n.quit\n');
    await new Promise((resolve) => locker.once('exit', resolve));
    const rows = sql(`SELECT id FROM completions WHERE user_id=${omar} AND module_id=${LT}`);
    const r = res.results?.[0];
    if (r?.status === 'approved') {
      assert.equal(rows.length, 1, `acknowledged as completion ${r.completion}, but nothing is stored`);
      assert.equal(rows[0].id, r.completion);
    } else {
      assert.equal(rows.length, 0);
    }
    console.log(`approval under a held write lock: ${JSON.stringify(res.results ?? res)}`);
    await c.close();
  } finally {
    if (locker && locker.exitCode === null) locker.kill('SIGKILL');
    await srv.stop();
    srv.cleanup();
    await redis.stop();
  }
});
