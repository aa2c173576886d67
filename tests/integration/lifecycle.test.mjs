// otjd's life: the embedded redis-server, graceful stop, missing Redis.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startOtjd, connectAs, childPids, alive, exited, freePort, OTJD, sleep, waitFor } from './harness.mjs';
import { execFileSync, spawn } from 'node:child_process';

test('without --redis otjd runs its own redis-server and stops it on SIGTERM', async () => {
  const srv = await startOtjd(); // no redis: embedded
  try {
    const kids = childPids(srv.proc.pid).filter((k) => k.comm.startsWith('redis-server'));
    assert.equal(kids.length, 1, `children: ${JSON.stringify(childPids(srv.proc.pid))}`);
    const redisPid = kids[0].pid;
    assert.ok(existsSync(`${srv.dataDir}/redis.sock`));
    const health = await (await fetch(`${srv.base}/healthz`)).json();
    assert.equal(health.redis.ok, true);

    const c = await connectAs(srv, 'lea');
    const { code, signal } = await srv.stop('SIGTERM');
    assert.equal(signal, null);
    assert.equal(code, 0);
    const closed = await c.closed;
    assert.equal(closed.code, 1001, 'clients get "going away"');
    assert.equal(alive(redisPid), false, 'the private redis-server is gone');
  } finally {
    await srv.stop('SIGKILL');
    srv.cleanup();
  }
});

test('SIGINT stops it gracefully too', async () => {
  const srv = await startOtjd();
  try {
    const redisPid = childPids(srv.proc.pid).find((k) => k.comm.startsWith('redis-server')).pid;
    const { code } = await srv.stop('SIGINT');
    assert.equal(code, 0);
    assert.equal(alive(redisPid), false);
  } finally {
    srv.cleanup();
  }
});

test('kill -9 of otjd leaves no running redis-server behind', async () => {
  const srv = await startOtjd();
  try {
    const redisPid = childPids(srv.proc.pid).find((k) => k.comm.startsWith('redis-server')).pid;
    await srv.stop('SIGKILL');
    await waitFor(() => !alive(redisPid), 'the orphaned redis-server to exit', 5000);
  } finally {
    srv.cleanup();
  }
});

test('a missing redis-server is a clear message and exit code 69', async () => {
  const port = await freePort();
  const p = spawn(OTJD, ['--listen', `127.0.0.1:${port}`, '--data', `/tmp/otj-missing-${port}`],
    { env: { ...process.env, OTJ_REDIS_SERVER: '/nonexistent/redis-server' } });
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  const { code } = await exited(p);
  assert.equal(code, 69);
  assert.match(err, /not found/);
  assert.match(err, /--redis/);
});

test('a bad flag is exit code 64 with the usage; --help is 0', async () => {
  const bad = spawn(OTJD, ['--listen', 'nonsense']);
  let err = '';
  bad.stderr.on('data', (d) => { err += d; });
  assert.equal((await exited(bad)).code, 64);
  assert.match(err, /ADDR:PORT/);
  const help = spawn(OTJD, ['--help']);
  let out = '';
  help.stdout.on('data', (d) => { out += d; });
  assert.equal((await exited(help)).code, 0);
  assert.match(out, /--redis/);
  assert.match(out, /--demo/);
});

test('the database survives a restart and --demo does not load twice', async () => {
  const first = await startOtjd();
  const dataDir = first.dataDir;
  await first.stop();
  const second = await startOtjd({ dataDir });
  try {
    assert.match(second.log, /already has users/);
    const c = await connectAs(second, 'rita');
    assert.equal(c.user.responsible, true);
    await c.close();
  } finally {
    await second.stop();
    first.cleanup();
  }
});

test('the private redis-server dies: otjd starts a new one, rooms tell their members they ended, new rooms work', async () => {
  const srv = await startOtjd();
  try {
    const ask = async (c, msg) => {
      const rid = Math.floor(Math.random() * 1e9);
      c.send({ ...msg, rid });
      for (;;) { const m = await c.next(8000); if (m.rid === rid) return m; }
    };
    const rita = await connectAs(srv, 'rita');
    const lea = await connectAs(srv, 'lea');
    const snap = await ask(rita, { t: 'open', module: 2, learners: [] });
    assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
    assert.equal((await ask(lea, { t: 'join', code: snap.code })).t, 'snapshot');
    const redisPid = childPids(srv.proc.pid).find((k) => k.comm.startsWith('redis-server')).pid;
    process.kill(redisPid, 'SIGKILL');
    const seen = [];
    for (;;) {
      const m = await lea.next(10000);
      if (m.t === 'err') seen.push(m.code);
      if (m.code === 'not_found') break;
    }
    assert.deepEqual(seen, ['unavailable', 'not_found']);
    await waitFor(() => childPids(srv.proc.pid).some((k) => k.comm.startsWith('redis-server') && k.pid !== redisPid),
      'a new redis-server');
    let again;
    for (let i = 0; i < 50; i++) {
      again = await ask(rita, { t: 'open', module: 2, learners: [] });
      if (again.t === 'snapshot') break;
      await sleep(100);
    }
    assert.equal(again.t, 'snapshot', JSON.stringify(again));
    await rita.close();
    await lea.close();
  } finally {
    await srv.stop();
    srv.cleanup();
  }
});

test('a new private redis-server that fails to start is tried again until one runs', async () => {
  // a redis-server that runs the first time, fails the next two, then runs
  const dir = mkdtempSync(path.join(os.tmpdir(), 'otj-flaky-redis-'));
  const bin = path.join(dir, 'redis-server');
  const real = execFileSync('sh', ['-c', 'command -v redis-server']).toString().trim();
  writeFileSync(bin, `#!/bin/sh
n=$(cat "${dir}/starts" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "${dir}/starts"
[ $n -eq 2 ] || [ $n -eq 3 ] && exit 1
exec "${real}" "$@"
`, { mode: 0o755 });
  const srv = await startOtjd({ env: { OTJ_REDIS_SERVER: bin } });
  try {
    const health = async () => (await fetch(`${srv.base}/healthz`)).status;
    assert.equal(await health(), 200);
    const first = childPids(srv.proc.pid).find((k) => k.comm.startsWith('redis-server')).pid;
    process.kill(first, 'SIGKILL');
    await waitFor(async () => readFileSync(path.join(dir, 'starts'), 'utf8').trim() === '4' && await health() === 200,
      'the fourth start to run and Redis to answer', 15000);
    const rita = await connectAs(srv, 'rita');
    let snap;
    for (let i = 0; i < 50; i++) {
      rita.send({ t: 'open', module: 2, learners: [], rid: i + 1 });
      snap = await rita.next(5000);
      if (snap.t === 'snapshot') break;
      await sleep(100);
    }
    assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
    assert.equal((srv.log.match(/did not start; trying again/g) || []).length, 2, srv.log);
    await srv.stopClean();
    await rita.close();
  } finally {
    await srv.stop();
    srv.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
