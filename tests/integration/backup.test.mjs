// Backups: `otjd backup --data DIR FILE` copies the database of a running
// otjd while a responsible streams approvals; a fresh otjd on a data folder
// that holds nothing but the restored copy has every approval that was
// acknowledged before the backup began, and SQLite's integrity check says ok.
// Also the command's refusals (usage, a missing database, the database
// itself as FILE) and their exit codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync, copyFileSync, existsSync, mkdtempSync, openSync, rmSync, statSync, writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OTJD, startRedis, startOtjd, login, connectAs, exited } from './harness.mjs';

const LEARNERS = 3000; // a fresh learner per approval (one completion per learner and module)
const ENV = { OTJ_MAX_ROOMS_PER_RESPONSIBLE: '1000000', OTJ_MAX_MSGS_PER_SEC: '1000000' };

function sqlAt(dbPath) {
  return (query) => {
    const out = execFileSync('sqlite3', ['-json', dbPath, query]).toString();
    return out.trim() ? JSON.parse(out) : [];
  };
}

async function ask(c, msg, ms = 5000) {
  const rid = Math.floor(Math.random() * 1e9);
  c.send({ ...msg, rid });
  for (;;) {
    const m = await c.next(ms);
    if (m.rid === rid) return m;
  }
}

// Runs `otjd backup ARGS...`; resolves with its exit code and output.
function backup(args) {
  const p = spawn(OTJD, ['backup', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { out += d; });
  return exited(p).then(({ code }) => ({ code, out }));
}

async function provision(srv, n) {
  const admin = (await login(srv, 'admin')).body.token;
  const users = [];
  for (let i = 0; i < n; i++)
    users.push({ login: `bk${i}`, name: `Backup Learner ${i}`, department: 'Assembly line',
      password_hash: '$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$never-logs-in' });
  const r = await fetch(`${srv.base}/api/admin/import`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
    body: JSON.stringify({ users }),
  });
  assert.equal(r.status, 200, await r.text());
}

// Approves the pool five learners a room at a time until stop() says so or
// the pool is empty; acked: learner id -> completion id, filled as each
// approval is acknowledged.
async function stream(c, LT, pool, acked, stop) {
  while (pool.length && !stop()) {
    const learners = pool.splice(0, 5);
    const snap = await ask(c, { t: 'open', module: LT, learners });
    assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
    const rids = new Set();
    for (const learner of learners)
      for (const task of [0, 1, 2]) {
        const rid = Math.floor(Math.random() * 1e9);
        rids.add(rid);
        c.send({ t: 'mark', room: snap.room, learner, task, result: 'pass', rid });
      }
    while (rids.size) {
      const m = await c.next();
      if (rids.delete(m.rid)) assert.equal(m.t, 'ok', JSON.stringify(m));
    }
    const res = await ask(c, {
      t: 'approve', room: snap.room,
      decisions: learners.map((learner) => ({ learner, approved: true })),
    });
    assert.equal(res.t, 'approved', JSON.stringify(res));
    for (const r of res.results) {
      assert.equal(r.status, 'approved', JSON.stringify(r));
      acked.set(r.learner, r.completion);
    }
    c.send({ t: 'close', room: snap.room });
    c.send({ t: 'leave', room: snap.room });
  }
}

test('a backup taken during a stream of approvals restores with every approval acknowledged before it began', async (t) => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'otj-bk-'));
  const file = path.join(work, 'otj-backup.db');
  const restoreDir = path.join(work, 'restored');
  let redis = await startRedis();
  let srv = await startOtjd({ redis: redis.addr, env: ENV });
  let restored;
  try {
    await provision(srv, LEARNERS);
    const sql = sqlAt(`${srv.dataDir}/otj.db`);
    const LT = sql(`SELECT id FROM modules WHERE title='Lock-out/tag-out'`)[0].id;
    const pool = sql(`SELECT id FROM users WHERE login LIKE 'bk%' ORDER BY id`).map((r) => r.id);
    assert.equal(pool.length, LEARNERS);

    const sam = await connectAs(srv, 'sam');
    const acked = new Map();
    let done = false;
    const streaming = stream(sam, LT, pool, acked, () => done);
    while (acked.size < 50) await new Promise((r) => setTimeout(r, 20));

    // what was acknowledged before the backup began: it must all be there
    const before = new Map(acked);
    // one page a step with a pause: the copy takes long enough for many
    // approvals to commit while it runs
    const t0 = Date.now();
    const b = await backup(['--data', srv.dataDir, '--pages-per-step', '1', '--pause-ms', '5', file]);
    const during = acked.size - before.size;
    const left = pool.length;
    done = true;
    await streaming;
    await sam.close();
    assert.equal(b.code, 0, b.out);
    assert.match(b.out, /integrity_check ok/);
    assert.ok(!existsSync(`${file}.tmp`), 'no FILE.tmp is left');
    assert.equal(statSync(file).mode & 0o777, 0o600, 'the copy is for its owner only');
    t.diagnostic(`${before.size} approvals before the backup, ${during} during it (${Date.now() - t0} ms): ${b.out.trim()}`);
    assert.ok(during > 0, `approvals went on during the ${Date.now() - t0} ms backup (${during})`);
    // a copy that restarts whenever otjd commits would finish only once the
    // stream stops: this one finishes while approvals still stream
    assert.ok(left > 0, 'the backup finished while approvals still streamed');

    await srv.stop();
    srv.cleanup();
    await redis.stop();

    // restore: a data folder with only the copy in it, a fresh Redis
    execFileSync('mkdir', ['-p', restoreDir]);
    copyFileSync(file, path.join(restoreDir, 'otj.db'));
    redis = await startRedis();
    restored = await startOtjd({ redis: redis.addr, dataDir: restoreDir, demo: false });
    const rsql = sqlAt(path.join(restoreDir, 'otj.db'));
    assert.deepEqual(rsql('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);

    // the responsible sees every one of them, with the id she was told
    const token = (await login(restored, 'sam')).body.token;
    assert.ok(token, 'sam logs in on the restored database');
    const r = await fetch(`${restored.base}/api/completions`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(r.status, 200);
    const items = (await r.json()).items.filter((i) => i.module.id === LT);
    const got = new Map(items.map((i) => [i.learner.id, i.id]));
    const missing = [...before].filter(([learner, id]) => got.get(learner) !== id);
    assert.deepEqual(missing, [], `all ${before.size} approvals acknowledged before the backup are restored`);
    // nothing half-written: whatever else is in the copy was acknowledged too
    for (const [learner, id] of got)
      if (acked.has(learner)) assert.equal(acked.get(learner), id);
    await restored.stopClean();
  } finally {
    if (restored) await restored.stop();
    await srv.stop();
    srv.cleanup();
    await redis.stop();
    rmSync(work, { recursive: true, force: true });
  }
});

test('otjd backup refuses bad usage (64), a missing database (73) and the database itself as FILE (64)', async () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'otj-bk-'));
  try {
    let b = await backup([]);
    assert.equal(b.code, 64, b.out);
    assert.match(b.out, /FILE/);
    b = await backup(['--data', work, path.join(work, 'copy.db')]);
    assert.equal(b.code, 73, b.out);
    assert.match(b.out, /otj\.db/);
    assert.ok(!existsSync(path.join(work, 'otj.db')), 'a missing database is not created');
    execFileSync('sqlite3', [path.join(work, 'otj.db'), 'CREATE TABLE t(x)']);
    b = await backup(['--data', work, path.join(work, 'copy.db')]);
    assert.equal(b.code, 73, b.out);
    assert.match(b.out, /not an OTJ database/);
    b = await backup(['--data', work, path.join(work, 'otj.db')]);
    assert.equal(b.code, 64, b.out);
    assert.match(b.out, /is the database itself/);
    b = await backup(['--data', work, path.join(work, 'otj.db-wal')]);
    assert.equal(b.code, 64, b.out);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('a damaged database gives no backup: the copy fails integrity_check, FILE is left as it was', async () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'otj-bk-'));
  try {
    const db = path.join(work, 'otj.db');
    execFileSync('sqlite3', [db, `CREATE TABLE schema_version(version INTEGER PRIMARY KEY,
      applied_at INTEGER, description TEXT); INSERT INTO schema_version VALUES (2, 0, 'x');
      CREATE TABLE t(x TEXT); CREATE INDEX tx ON t(x);
      WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000)
      INSERT INTO t SELECT printf('row %08d', i) FROM c;`]);
    // scribble over the b-tree headers of the pages of t and its index
    // (pages 1 and 2, the schema and schema_version, stay readable)
    const pages = statSync(db).size / 4096;
    const fd = openSync(db, 'r+');
    for (let p = 6; p < pages; p++) writeSync(fd, Buffer.alloc(40, 0x7f), 0, 40, p * 4096 + 8);
    closeSync(fd);
    const file = path.join(work, 'copy.db');
    execFileSync('sqlite3', [file, 'CREATE TABLE previous(x)']);
    const b = await backup(['--data', work, file]);
    assert.equal(b.code, 73, b.out);
    assert.match(b.out, /the copy is damaged: integrity_check says/);
    assert.ok(!existsSync(`${file}.tmp`), 'no FILE.tmp is left');
    assert.deepEqual(sqlAt(file)('SELECT name FROM sqlite_schema'), [{ name: 'previous' }]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
