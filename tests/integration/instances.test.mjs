// Two otjd on one host as the packaged template unit otjd@PORT.service runs
// them: the same data folder and Redis, each on 127.0.0.1:PORT. A login made
// on one instance works on the other (no sticky sessions), and a room opened
// on one is joined from the other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OTJD, startRedis, freePort, exited, waitFor, login, Client } from './harness.mjs';

// made by packaging/CMakeLists.txt in the build folder, next to otjd.service
const TEMPLATE = path.resolve(path.dirname(OTJD), '..', 'packaging', 'otjd@.service');
const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

function tmp(prefix) { return mkdtempSync(path.join(os.tmpdir(), prefix)); }

test('systemd-analyze verify accepts an instance of otjd@.service', { skip: !hasAnalyze && 'no systemd-analyze' }, () => {
  assert.ok(existsSync(TEMPLATE), `the build makes ${TEMPLATE}`);
  const dir = tmp('otj-tmpl-');
  try {
    // verify checks that ExecStart's program exists and that `man otjd(8)` answers
    const unit = readFileSync(TEMPLATE, 'utf8').replace(/^ExecStart=\S+\/otjd /m, `ExecStart=${path.resolve(OTJD)} `);
    writeFileSync(path.join(dir, 'otjd@.service'), unit);
    mkdirSync(path.join(dir, 'man', 'man8'), { recursive: true });
    copyFileSync('docs/otjd.8', path.join(dir, 'man', 'man8', 'otjd.8'));
    const r = spawnSync('systemd-analyze', ['verify', path.join(dir, 'otjd@8081.service')],
      { env: { ...process.env, MANPATH: `${dir}/man:` }, encoding: 'utf8', cwd: dir });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /otjd@/, 'no warning about the unit');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The template's command line and environment for instance `port`, with
// this test's otjd, data folder and Redis put in.
function instanceCommand(unit, port, dataDir, redisAddr) {
  const exec = unit.match(/^ExecStart=(.*)$/m)[1].replaceAll('%i', String(port)).split(/\s+/);
  assert.match(exec[0], /\/otjd$/);
  assert.deepEqual(exec.slice(1), ['--data', '/var/lib/otj', '--listen', `127.0.0.1:${port}`]);
  const env = unit.match(/^Environment=(.*)$/m)[1];
  assert.equal(env, 'OTJ_REDIS=127.0.0.1:6379', 'by default the instances share the system redis-server');
  assert.match(unit, /^EnvironmentFile=-\/etc\/default\/otjd$/m);
  assert.match(unit, /^EnvironmentFile=-\/etc\/default\/otjd-%i$/m);
  assert.match(unit, /^StateDirectory=otj$/m);
  return { args: exec.slice(1).map((a) => (a === '/var/lib/otj' ? dataDir : a)), env: { OTJ_REDIS: redisAddr } };
}

async function startInstance(unit, dataDir, redisAddr, extra = []) {
  const port = await freePort();
  const { args, env } = instanceCommand(unit, port, dataDir, redisAddr);
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTJ_')));
  const proc = spawn(OTJD, [...args, ...extra], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...clean, ...env } });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const base = `http://127.0.0.1:${port}`;
  const srv = {
    port, base, proc, get log() { return log; },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) { proc.kill('SIGTERM'); await exited(proc); }
      return proc.exitCode;
    },
  };
  try {
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`otjd exited ${proc.exitCode}`);
      return (await fetch(`${base}/readyz`)).status === 200;
    }, 'otjd /readyz', 15000);
  } catch (e) {
    await srv.stop();
    throw new Error(`${e.message}\n--- otjd log ---\n${log}`);
  }
  return srv;
}

async function hello(srv, token) {
  const c = new Client(srv);
  await c.opened();
  const w = await c.request({ t: 'hello', v: 1, token });
  assert.equal(w.t, 'welcome', JSON.stringify(w));
  return c;
}

async function reply(c, msg) {
  const rid = Math.floor(Math.random() * 1e9);
  c.send({ ...msg, rid });
  for (;;) { const m = await c.next(); if (m.rid === rid) return m; }
}

test('two instances of otjd@.service share one data folder and Redis: no sticky sessions needed', async () => {
  assert.ok(existsSync(TEMPLATE), `the build makes ${TEMPLATE}`);
  const unit = readFileSync(TEMPLATE, 'utf8');
  const dataDir = tmp('otj-inst-');
  const redis = await startRedis();
  const a = await startInstance(unit, dataDir, redis.addr, ['--demo']);
  const b = await startInstance(unit, dataDir, redis.addr);
  try {
    // one login, used on both instances
    const rita = await login(a, 'rita');
    assert.equal(rita.status, 200);
    const me = await fetch(`${b.base}/api/me`, { headers: { authorization: `Bearer ${rita.body.token}` } });
    assert.equal(me.status, 200, 'a session made on one instance is known to the other');
    const lea = await login(b, 'lea');
    assert.equal(lea.status, 200);

    const r = await hello(a, rita.body.token);
    const l = await hello(b, lea.body.token);
    const HH = JSON.parse(execFileSync('sqlite3', ['-json', `${dataDir}/otj.db`,
      `SELECT id FROM modules WHERE title='Hand hygiene'`]).toString())[0].id;
    const snap = await reply(r, { t: 'open', module: HH, learners: [] });
    assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
    const joined = await reply(l, { t: 'join', code: snap.code });
    assert.equal(joined.t, 'snapshot', JSON.stringify(joined));
    assert.equal(joined.room, snap.room);
    // rita, on the other instance, hears lea join (through Redis)
    for (;;) {
      const m = await r.next();
      if (m.t === 'ev' && m.room === snap.room && m.e.type === 'joined' && m.e.user === lea.body.user.id) break;
    }
    await l.close();
    await r.close();
  } finally {
    assert.equal(await b.stop(), 0, b.log);
    assert.equal(await a.stop(), 0, a.log);
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
