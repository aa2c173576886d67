// Upgrades: otjd migrates the database at start. A database of schema v1,
// as otjd of commit 3c3112e (the last with v1) left it after real use
// (tests/fixtures/v1.sql, made by tests/fixtures/make-v1.mjs), is brought to
// the current schema: the demo users log in, their completions are there,
// and what v2 added (users.active) works. A database written by a newer
// otjd is refused with a clear message and exit code 73, and left as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OTJD, startRedis, startOtjd, login, exited, freePort } from './harness.mjs';

const V1_SQL = readFileSync(new URL('../fixtures/v1.sql', import.meta.url), 'utf8');

function sqlAt(dbPath) {
  return (query) => {
    const out = execFileSync('sqlite3', ['-json', dbPath, query]).toString();
    return out.trim() ? JSON.parse(out) : [];
  };
}

function dataDirWithV1() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'otj-up-'));
  execFileSync('sqlite3', [path.join(dir, 'otj.db')], { input: V1_SQL });
  return dir;
}

async function completionsOf(srv, loginName) {
  const { status, body } = await login(srv, loginName);
  assert.equal(status, 200, `${loginName} logs in: ${JSON.stringify(body)}`);
  const r = await fetch(`${srv.base}/api/completions`, {
    headers: { authorization: `Bearer ${body.token}` },
  });
  assert.equal(r.status, 200);
  return (await r.json()).items;
}

test('a v1 database made by otjd of 3c3112e is migrated at start and keeps its users and completions', async () => {
  const dir = dataDirWithV1();
  const sql = sqlAt(path.join(dir, 'otj.db'));
  assert.deepEqual(sql('SELECT max(version) AS v FROM schema_version'), [{ v: 1 }]);
  assert.ok(!sql('PRAGMA table_info(users)').some((c) => c.name === 'active'));
  const redis = await startRedis();
  let srv;
  try {
    srv = await startOtjd({ redis: redis.addr, dataDir: dir, demo: false });
    const versions = sql('SELECT version FROM schema_version ORDER BY version').map((r) => r.version);
    assert.deepEqual(versions.slice(0, 2), [1, 2], 'the step to v2 ran and was recorded');
    assert.deepEqual(versions, versions.map((_, i) => i + 1), 'every later step too, once each');
    const active = sql('PRAGMA table_info(users)').find((c) => c.name === 'active');
    assert.ok(active, 'users.active exists');
    assert.deepEqual(sql('SELECT DISTINCT active FROM users'), [{ active: 1 }]);

    // the demo users log in with their password; completions are theirs
    const lea = await completionsOf(srv, 'lea');
    assert.deepEqual(lea.map((c) => c.module.title), ['Food safety basics']);
    const omar = await completionsOf(srv, 'omar');
    assert.equal(omar.length, 1);
    assert.equal(omar[0].module.title, 'Lock-out/tag-out');
    assert.equal(omar[0].approved_by.name, 'Sam Berg');
    assert.ok(omar[0].room, 'the approval keeps its room');
    const all = await completionsOf(srv, 'admin');
    assert.deepEqual(all.map((c) => c.learner.login).sort(), ['lars', 'lea', 'leo', 'omar']);

    // what v2 brought works on the upgraded data: deactivate a learner
    const admin = (await login(srv, 'admin')).body.token;
    const liv = sql(`SELECT id FROM users WHERE login='liv'`)[0].id;
    const r = await fetch(`${srv.base}/api/admin/users/${liv}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: JSON.stringify({ active: false }),
    });
    assert.equal(r.status, 200, await r.text());
    assert.notEqual((await login(srv, 'liv')).status, 200, 'a deactivated user cannot log in');
    await srv.stopClean();

    // a second start has nothing left to do
    srv = await startOtjd({ redis: redis.addr, dataDir: dir, demo: false });
    assert.equal(sql('SELECT count(*) AS n FROM schema_version')[0].n, versions.length);
    assert.equal((await login(srv, 'lea')).status, 200);
    await srv.stopClean();
  } finally {
    if (srv) await srv.stop();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a database from a newer schema version is refused with exit code 73 and left as it was', async () => {
  const dir = dataDirWithV1();
  const db = path.join(dir, 'otj.db');
  const sql = sqlAt(db);
  // what a later otjd would have recorded after a step this build does not know
  execFileSync('sqlite3', [db, `INSERT INTO schema_version VALUES (99, unixepoch(), 'from the future')`]);
  const dump = () => execFileSync('sqlite3', [db, '.dump']).toString();
  const before = dump();
  const port = await freePort();
  const p = spawn(OTJD, ['--listen', `127.0.0.1:${port}`, '--data', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  p.stdout.on('data', (d) => { log += d; });
  p.stderr.on('data', (d) => { log += d; });
  try {
    const { code } = await exited(p);
    assert.equal(code, 73, log);
    assert.match(log, /schema version 99/);
    assert.match(log, /knows versions up to \d+ only; run a newer otjd/);
    assert.match(log, /not changed/);
    assert.equal(dump(), before, 'not one row changed');
    assert.equal(sql('SELECT max(version) AS v FROM schema_version')[0].v, 99);
  } finally {
    if (p.exitCode === null) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
