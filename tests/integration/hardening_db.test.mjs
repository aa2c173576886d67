// SQLite under pressure: another process holding the database's write lock
// must not stall the event loop (websocket round trips stay short, a write
// over HTTP answers 503 at once and works again after the lock is gone), a
// live room that cannot be recorded in SQLite is refused and leaves nothing
// in Redis, and /readyz says what keeps the server from serving while
// /healthz stays a liveness check.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { startRedis, startOtjd, connectAs, login, sleep, exited } from './harness.mjs';

const LOCK_MS = 3000;

let redis, srv, admin;

function sql(query) {
  const out = execFileSync('sqlite3', ['-json', `${srv.dataDir}/otj.db`, query]).toString();
  return out.trim() ? JSON.parse(out) : [];
}

function redisKeys(pattern) {
  return execFileSync('redis-cli', ['-p', String(redis.port), '--scan', '--pattern', pattern])
    .toString().split('\n').filter(Boolean).sort();
}

// Another process (Debian's sqlite3 shell) takes the write lock of otjd's
// database and keeps it until release().
async function holdWriteLock(dbPath) {
  const p = spawn('sqlite3', [dbPath], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  const locked = new Promise((resolve, reject) => {
    p.stdout.on('data', (d) => { out += d; if (out.includes('locked')) resolve(); });
    p.on('exit', (code) => reject(new Error(`sqlite3 exited ${code} before locking`)));
  });
  p.stdin.write(".timeout 10000\nBEGIN IMMEDIATE;\nSELECT 'locked';\n");
  await locked;
  return {
    async release() {
      p.stdin.end('COMMIT;\n');
      await exited(p);
    },
  };
}

// Sends an otj.v1 ping every `every` ms until stop() and records each round
// trip (other messages, e.g. dashboard updates, are set aside).
function pinger(c, every = 50) {
  const rtts = [];
  let running = true;
  let rid = 50000;
  const loop = (async () => {
    while (running) {
      const r = ++rid;
      const t0 = performance.now();
      c.send({ t: 'ping', rid: r });
      for (;;) {
        const m = await c.next(10000);
        if (m.t === 'pong' && m.rid === r) break;
      }
      rtts.push(performance.now() - t0);
      await sleep(every);
    }
  })();
  loop.catch(() => {}); // reported by stop()
  return {
    async stop() {
      running = false;
      await loop;
      const s = [...rtts].sort((a, b) => a - b);
      return { n: s.length, p50: s[Math.floor(s.length / 2)], max: s[s.length - 1] };
    },
  };
}

// Sends msg and waits for the answer with its rid (dashboard updates and
// other unasked messages are skipped).
async function ask(c, msg, ms = 10000) {
  c.send(msg);
  const until = Date.now() + ms;
  for (;;) {
    const m = await c.next(Math.max(1, until - Date.now()));
    if (m.rid === msg.rid) return m;
  }
}

async function call(method, path, body, token = admin) {
  const t0 = performance.now();
  const r = await fetch(`${srv.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, body: json, text, ms: performance.now() - t0,
    retryAfter: r.headers.get('retry-after') };
}

before(async () => {
  redis = await startRedis();
  srv = await startOtjd({ redis: redis.addr });
  admin = (await login(srv, 'admin')).body.token;
});

after(async () => {
  try {
    if (srv) await srv.stopClean();
  } finally {
    if (srv) srv.cleanup();
    if (redis) await redis.stop();
  }
});

test('a write lock held by another process: websockets keep their latency, an admin write answers 503 at once, then works', async () => {
  const rita = await connectAs(srv, 'rita');
  const lock = await holdWriteLock(`${srv.dataDir}/otj.db`);
  let busy, during;
  try {
    const lockedAt = performance.now();
    const pings = pinger(rita);
    await sleep(300);
    busy = await call('POST', '/api/admin/departments', { name: 'Made while locked' });
    await sleep(Math.max(0, LOCK_MS - (performance.now() - lockedAt)));
    during = await pings.stop();
  } finally {
    await lock.release();
  }

  assert.equal(busy.status, 503, busy.text);
  assert.equal(busy.body.error, 'unavailable');
  assert.ok(busy.retryAfter, 'a busy answer says when to retry');
  assert.ok(busy.ms < 1000, `the busy answer took ${busy.ms.toFixed(0)} ms`);
  assert.ok(during.n >= 10, `only ${during.n} pings answered while locked`);
  assert.ok(during.max < 500,
    `websocket round trips while locked: p50 ${during.p50.toFixed(1)} ms, max ${during.max.toFixed(1)} ms`);
  assert.equal(sql("SELECT count(*) AS n FROM departments WHERE name='Made while locked'")[0].n, 0);

  const ok = await call('POST', '/api/admin/departments', { name: 'Made after the lock' });
  assert.equal(ok.status, 201, ok.text);
  await rita.close();
});

test('an import waits for a lock off the loop: websockets keep their latency and the import lands after the lock', async () => {
  const rita = await connectAs(srv, 'rita');
  const lock = await holdWriteLock(`${srv.dataDir}/otj.db`);
  let importing, during;
  try {
    const lockedAt = performance.now();
    const pings = pinger(rita);
    await sleep(200);
    importing = call('POST', '/api/admin/import', {
      departments: [{ name: 'Imported during a lock' }],
    });
    await sleep(Math.max(0, LOCK_MS - (performance.now() - lockedAt)));
    during = await pings.stop();
  } finally {
    await lock.release();
  }
  const imported = await importing;

  assert.ok(during.max < 500,
    `websocket round trips while an import waited: p50 ${during.p50.toFixed(1)} ms, max ${during.max.toFixed(1)} ms`);
  assert.equal(imported.status, 200, imported.text);
  assert.equal(sql("SELECT count(*) AS n FROM departments WHERE name='Imported during a lock'")[0].n, 1);
  await rita.close();
});

test('a room that cannot be recorded in SQLite is refused with unavailable and leaves nothing in Redis', async () => {
  const HH = sql("SELECT id FROM modules WHERE title='Hand hygiene'")[0].id;
  const rita = await connectAs(srv, 'rita');
  const roomsBefore = sql('SELECT count(*) AS n FROM otj_rooms')[0].n;
  const roomKeys = redisKeys('otj:r:*');
  const codeKeys = redisKeys('otj:code:*');

  const lock = await holdWriteLock(`${srv.dataDir}/otj.db`);
  const t0 = performance.now();
  let refused;
  try {
    refused = await ask(rita, { t: 'open', module: HH, learners: [], rid: 7 });
  } finally {
    await lock.release();
  }
  const ms = performance.now() - t0;
  assert.equal(refused.t, 'err', JSON.stringify(refused));
  assert.equal(refused.code, 'unavailable');
  assert.equal(refused.rid, 7);
  assert.ok(ms < 1000, `the refusal took ${ms.toFixed(0)} ms`);
  await sleep(200); // anything still in flight lands
  assert.equal(sql('SELECT count(*) AS n FROM otj_rooms')[0].n, roomsBefore);
  assert.deepEqual(redisKeys('otj:r:*'), roomKeys);
  assert.deepEqual(redisKeys('otj:code:*'), codeKeys);

  // the lock gone, the same open works and is recorded
  const snap = await ask(rita, { t: 'open', module: HH, learners: [], rid: 8 });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  assert.equal(sql(`SELECT count(*) AS n FROM otj_rooms WHERE id='${snap.room}' AND closed_at IS NULL`)[0].n, 1);
  await rita.close();
});

test('/readyz says what is wrong while /healthz stays a liveness check', async () => {
  const ready = await call('GET', '/readyz');
  assert.equal(ready.status, 200, ready.text);
  assert.equal(ready.body.status, 'ready');
  assert.equal(ready.body.redis.ok, true);
  assert.equal(ready.body.sqlite.ok, true);
  assert.equal(ready.body.disk.ok, true);
  assert.ok(ready.body.disk.free_mb > 0);

  const lock = await holdWriteLock(`${srv.dataDir}/otj.db`);
  let locked, live;
  try {
    locked = await call('GET', '/readyz');
    live = await call('GET', '/healthz');
  } finally {
    await lock.release();
  }
  assert.equal(locked.status, 503, locked.text);
  assert.equal(locked.body.status, 'not_ready');
  assert.equal(locked.body.sqlite.ok, false);
  assert.equal(locked.body.redis.ok, true);
  assert.match(locked.body.problems.join(' '), /database/i);
  assert.ok(locked.ms < 1000, `/readyz took ${locked.ms.toFixed(0)} ms`);
  assert.equal(live.status, 200, live.text);

  // a disk with less room than the threshold is not ready
  const full = await startOtjd({ redis: redis.addr, demo: false,
    env: { OTJ_MIN_FREE_MB: '1000000000' } });
  try {
    const r = await fetch(`${full.base}/readyz`);
    const body = await r.json();
    assert.equal(r.status, 503, JSON.stringify(body));
    assert.equal(body.disk.ok, false);
    assert.equal(body.disk.min_free_mb, 1000000000);
    assert.match(body.problems.join(' '), /disk/i);
    assert.equal((await fetch(`${full.base}/healthz`)).status, 200);
  } finally {
    await full.stopClean();
    full.cleanup();
  }
});

test('sessions for load provisioning are still made (now off the loop), and an unknown login changes nothing', async () => {
  const made = await call('POST', '/api/admin/tokens', { logins: ['lea', 'leo'] });
  assert.equal(made.status, 200, made.text);
  const me = await fetch(`${srv.base}/api/me`,
    { headers: { authorization: `Bearer ${made.body.tokens.leo}` } });
  assert.equal((await me.json()).login, 'leo');
  assert.equal(made.body.ids.lea, sql("SELECT id FROM users WHERE login='lea'")[0].id);
  const bad = await call('POST', '/api/admin/tokens', { logins: ['lea', 'nobody-here'] });
  assert.equal(bad.status, 404, bad.text);
  assert.match(bad.body.message, /nobody-here/);
});
