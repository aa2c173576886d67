// Records an inspector trusts (DESIGN §8): every audit entry carries the hash
// of its own content and of the entry before it, written in the transaction
// of the change; GET /api/admin/audit/verify and `otjd verify-audit` check the
// chain and name the first entry that was changed (edited with the sqlite3
// tool here), or that follows a removed one. Two otjd instances writing to one
// data folder at once extend one chain. A database of an older schema gets its
// entries chained by the migration. GET /api/completions/{id} gives the
// printable record of one completion, to the learner, the responsibles who
// reach them and admins only, with the hash of its approval entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OTJD, startRedis, startOtjd, connectAs, login, waitFor } from './harness.mjs';

const V1_SQL = readFileSync(new URL('../fixtures/v1.sql', import.meta.url), 'utf8');

function sqlAt(dbPath) {
  return (query) => {
    const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000', dbPath, query]).toString();
    return out.trim() ? JSON.parse(out) : [];
  };
}

const tokens = new Map();
async function call(srv, who, method, p, body) {
  const headers = {};
  if (who) {
    const key = `${srv.port}/${who}`;
    if (!tokens.has(key)) {
      const r = await login(srv, who);
      assert.equal(r.status, 200, `login ${who}`);
      tokens.set(key, r.body.token);
    }
    headers.authorization = `Bearer ${tokens.get(key)}`;
  }
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${srv.base}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, body: json };
}
const get = (srv, who, p) => call(srv, who, 'GET', p);

// Sends msg and resolves with the reply carrying its rid. Several may be in
// flight on one client: one reader hands each reply to its asker.
let nextRid = 1;
function ask(c, msg, ms = 5000) {
  const rid = nextRid++;
  if (!c.asks) {
    c.asks = new Map();
    c.ws.on('message', () => setImmediate(() => {
      for (let i = 0; i < c.messages.length; i++) {
        const w = c.asks.get(c.messages[i].rid);
        if (w) { c.asks.delete(c.messages[i].rid); w(c.messages.splice(i--, 1)[0]); }
      }
    }));
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { c.asks.delete(rid); reject(new Error(`no reply to ${msg.t} within ${ms} ms`)); }, ms);
    c.asks.set(rid, (m) => { clearTimeout(timer); resolve(m); });
    c.send({ ...msg, rid });
  });
}

function verifyCli(dataDir) {
  const r = spawnSync(OTJD, ['verify-audit', '--data', dataDir], { encoding: 'utf8' });
  return { code: r.status, json: r.stdout.trim() ? JSON.parse(r.stdout) : null, stderr: r.stderr };
}

// Edits one audit row the way someone with shell access could: the
// append-only trigger is dropped first.
function tamper(dbPath, sql) {
  execFileSync('sqlite3', ['-cmd', '.timeout 5000', dbPath,
    `DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete; ${sql}`]);
}

test('room actions, marks with notes and decisions from two instances form one chain; an edited entry is named', async () => {
  const redis = await startRedis();
  const A = await startOtjd({ redis: redis.addr });
  let B;
  try {
    B = await startOtjd({ redis: redis.addr, dataDir: A.dataDir, demo: false });
    const db = `${A.dataDir}/otj.db`;
    const sql = sqlAt(db);
    const id = (login) => sql(`SELECT id FROM users WHERE login='${login}'`)[0].id;
    const HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
    const LOTO = sql(`SELECT id FROM modules WHERE title='Lock-out/tag-out'`)[0].id;
    const [lea, leo, omar] = [id('lea'), id('leo'), id('omar')];

    // rita runs a room on A, sam one on B, at the same time
    const rita = await connectAs(A, 'rita');
    const sam = await connectAs(B, 'sam');
    const r1 = await ask(rita, { t: 'open', module: HH, learners: [lea, leo] });
    const r2 = await ask(sam, { t: 'open', module: LOTO, learners: [omar] });
    assert.equal(r1.t, 'snapshot', JSON.stringify(r1));
    assert.equal(r2.t, 'snapshot', JSON.stringify(r2));
    const marks = [];
    for (const learner of [lea, leo])
      for (const task of [1, 2, 3])
        marks.push(ask(rita, { t: 'mark', room: r1.room, learner, task, result: 'pass',
          ...(task === 2 ? { note: `rubbed 25 s (${learner})` } : {}) }));
    for (const task of [0, 1, 2])
      marks.push(ask(sam, { t: 'mark', room: r2.room, learner: omar, task, result: 'pass' }));
    // admin changes through both instances meanwhile
    const nina = id('nina');
    const perms = [];
    for (let i = 0; i < 6; i++)
      perms.push(call(i % 2 ? B : A, 'admin', 'PUT', `/api/admin/users/${nina}/permissions`,
        { management: i % 2 === 0, facilitate_otj: false }));
    const made = call(A, 'admin', 'POST', '/api/admin/modules', { title: 'Knife safety', type: 'content' });
    for (const m of await Promise.all(marks)) assert.equal(m.t, 'ok', JSON.stringify(m));
    const mod = await made;
    assert.equal(mod.status, 201, JSON.stringify(mod.body));
    assert.equal((await call(B, 'admin', 'PATCH', `/api/admin/modules/${mod.body.id}`, { title: 'Knife safety 2' })).status, 200);
    // a PATCH that names nothing to change is not audited
    assert.equal((await call(B, 'admin', 'PATCH', `/api/admin/modules/${mod.body.id}`, {})).status, 200);
    for (const p of await Promise.all(perms)) assert.equal(p.status, 200, JSON.stringify(p.body));

    const [ap1, ap2] = await Promise.all([
      ask(rita, { t: 'approve', room: r1.room, decisions: [{ learner: lea, approved: true, note: 'well done' },
        { learner: leo, approved: false }] }),
      ask(sam, { t: 'approve', room: r2.room, decisions: [{ learner: omar, approved: true }] }),
    ]);
    assert.equal(ap1.t, 'approved', JSON.stringify(ap1));
    assert.equal(ap2.t, 'approved', JSON.stringify(ap2));
    assert.equal((await ask(rita, { t: 'close', room: r1.room })).t, 'ok');
    assert.equal((await ask(sam, { t: 'close', room: r2.room })).t, 'ok');

    // every action is in the log; a mark's entry follows the mark shortly
    await waitFor(() => sql(`SELECT count(*) AS n FROM audit WHERE action='otj.mark'`)[0].n === 9,
      'nine mark entries', 5000);
    const count = (action, subject) => sql(`SELECT count(*) AS n FROM audit WHERE action='${action}'` +
      (subject ? ` AND subject='${subject}'` : ''))[0].n;
    assert.equal(count('room.opened', `room:${r1.room}`), 1);
    assert.equal(count('room.opened', `room:${r2.room}`), 1);
    await waitFor(() => count('room.closed', `room:${r1.room}`) === 1 && count('room.closed', `room:${r2.room}`) === 1,
      'both closes audited', 5000);
    assert.equal(count('otj.approved'), 2);
    assert.equal(count('otj.not_approved'), 1);
    assert.equal(count('permission.set', `user:${nina}`), 6);
    assert.equal(count('module.created', `module:${mod.body.id}`), 1);
    assert.deepEqual(sql(`SELECT detail FROM audit WHERE action='module.updated' AND subject='module:${mod.body.id}'`)
      .map((r) => JSON.parse(r.detail)), [{ title: 'Knife safety 2', type: null, tasks: null }]);
    const note = sql(`SELECT id, actor_id, detail FROM audit WHERE action='otj.mark'
      AND json_extract(detail,'$.learner')=${lea} AND json_extract(detail,'$.task')=2`);
    assert.equal(note.length, 1);
    assert.equal(note[0].actor_id, id('rita'));
    assert.deepEqual(JSON.parse(note[0].detail), { room: r1.room, learner: lea, task: 2, result: 'pass', note: `rubbed 25 s (${lea})` });

    // one chain, no fork: each row's prev_hash is the hash of the row before
    const rows = sql(`SELECT id, hex(prev_hash) AS prev, hex(hash) AS hash FROM audit ORDER BY id`);
    assert.equal(rows[0].prev, '');
    for (let i = 1; i < rows.length; i++) {
      assert.equal(rows[i].prev, rows[i - 1].hash, `entry ${rows[i].id} links to ${rows[i - 1].id}`);
      assert.equal(rows[i].hash.length, 64);
    }

    // the check, over HTTP on either instance and on the command line
    const head = rows[rows.length - 1].hash.toLowerCase();
    const good = { ok: true, entries: rows.length, head };
    assert.deepEqual((await get(A, 'admin', '/api/admin/audit/verify')).body, good);
    assert.deepEqual((await get(B, 'admin', '/api/admin/audit/verify')).body, good);
    const cli = verifyCli(A.dataDir);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(cli.json, good);

    // only admins may run it
    assert.equal((await get(A, 'rita', '/api/admin/audit/verify')).status, 403);
    assert.equal((await get(A, 'lea', '/api/admin/audit/verify')).status, 403);
    assert.equal((await get(A, null, '/api/admin/audit/verify')).status, 401);
    assert.equal((await call(A, 'admin', 'POST', '/api/admin/audit/verify', {})).status, 405);

    // the API never edits an entry: the database refuses it
    assert.throws(() => execFileSync('sqlite3', [db, `UPDATE audit SET detail='{}' WHERE id=${note[0].id}`],
      { stdio: 'pipe' }), /append-only/);

    // someone with shell access rewrites the note of one mark
    tamper(db, `UPDATE audit SET detail=json_set(detail,'$.note','rubbed 5 s') WHERE id=${note[0].id}`);
    const bad = { ok: false, entries: rows.length, first_bad: note[0].id };
    assert.deepEqual((await get(A, 'admin', '/api/admin/audit/verify')).body, bad);
    const cliBad = verifyCli(A.dataDir);
    assert.equal(cliBad.code, 1);
    assert.deepEqual(cliBad.json, bad);
    assert.match(cliBad.stderr, new RegExp(`entry ${note[0].id}`));

    // the servers keep serving and keep appending
    assert.equal((await fetch(`${A.base}/healthz`)).status, 200);
    assert.equal((await call(B, 'admin', 'PUT', `/api/admin/users/${nina}/permissions`,
      { management: false, facilitate_otj: false })).status, 200);
    assert.equal((await get(B, 'admin', '/api/admin/audit/verify')).body.first_bad, note[0].id);
    await rita.close();
    await sam.close();
  } finally {
    if (B) await B.stop();
    await A.stop();
    A.cleanup();
    await redis.stop();
  }
});

test('an older database gets its entries chained by the migration; a removed entry is found', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'otj-audit-'));
  const db = path.join(dir, 'otj.db');
  try {
    execFileSync('sqlite3', [db], { input: V1_SQL });
    const sql = sqlAt(db);
    const before = sql(`SELECT id, action, detail FROM audit ORDER BY id`);
    assert.ok(before.length >= 5, 'the v1 database has audit entries');
    assert.equal(sql(`SELECT count(*) AS n FROM audit WHERE hash IS NOT NULL`)[0].n, 0);

    const srv = await startOtjd({ dataDir: dir, demo: false });
    let rows;
    try {
      rows = sql(`SELECT id, action, detail, hex(prev_hash) AS prev, hex(hash) AS hash FROM audit ORDER BY id`);
      assert.deepEqual(rows.slice(0, before.length).map(({ id, action, detail }) => ({ id, action, detail })), before,
        'the old entries are unchanged');
      assert.ok(rows.every((r) => r.hash.length === 64), 'every entry has its hash');
      const v = await get(srv, 'admin', '/api/admin/audit/verify');
      assert.deepEqual(v.body, { ok: true, entries: rows.length, head: rows[rows.length - 1].hash.toLowerCase() });
    } finally {
      await srv.stop();
    }

    // an entry removed from the middle: the one after it no longer links
    const victim = rows[2].id;
    tamper(db, `DELETE FROM audit WHERE id=${victim}`);
    const cli = verifyCli(dir);
    assert.equal(cli.code, 1);
    assert.deepEqual(cli.json, { ok: false, entries: rows.length - 1, first_bad: rows[3].id });

    // not a database at all: a clear message, exit 73
    const none = verifyCli(path.join(dir, 'missing'));
    assert.equal(none.code, 73);
    assert.match(none.stderr, /unable to open/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a completion record: the learner, their responsibles and admins see it, with the hash of its approval', async () => {
  const redis = await startRedis();
  const srv = await startOtjd({ redis: redis.addr });
  try {
    const sql = sqlAt(`${srv.dataDir}/otj.db`);
    const id = (login) => sql(`SELECT id FROM users WHERE login='${login}'`)[0].id;
    const HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
    const lea = id('lea');
    const rita = await connectAs(srv, 'rita');
    const snap = await ask(rita, { t: 'open', module: HH, learners: [lea] });
    const learner = await connectAs(srv, 'lea');
    assert.equal((await ask(learner, { t: 'join', room: snap.room })).t, 'snapshot');
    assert.equal((await ask(learner, { t: 'answer', room: snap.room, task: 0, value: 1, key: 'k-0' })).t, 'ack');
    for (const task of [1, 2, 3])
      assert.equal((await ask(rita, { t: 'mark', room: snap.room, learner: lea, task, result: 'pass',
        ...(task === 3 ? { note: 'single-use towel' } : {}) })).t, 'ok');
    const ap = await ask(rita, { t: 'approve', room: snap.room, decisions: [{ learner: lea, approved: true, note: 'confident' }] });
    const completion = ap.results[0].completion;
    assert.ok(completion > 0, JSON.stringify(ap));

    const mine = await get(srv, 'lea', `/api/completions/${completion}`);
    assert.equal(mine.status, 200, JSON.stringify(mine.body));
    const rec = mine.body;
    assert.equal(rec.id, completion);
    assert.equal(rec.learner.login, 'lea');
    assert.equal(rec.department.name, 'Kitchen');
    assert.equal(rec.module.title, 'Hand hygiene');
    assert.equal(rec.path.title, 'Kitchen starter');
    assert.equal(rec.approved_by.name, sql(`SELECT name FROM users WHERE login='rita'`)[0].name);
    assert.equal(rec.room.id, snap.room);
    assert.equal(rec.room.code, snap.code);
    assert.ok(rec.room.opened.at > 0);
    assert.equal(rec.note, 'confident');
    assert.ok(rec.completed.iso.endsWith('Z'));
    assert.equal(rec.tasks.length, 4);
    assert.equal(rec.tasks[0].kind, 'question');
    assert.equal(rec.tasks[0].answer.value, 1);
    assert.equal(rec.tasks[0].mark, null);
    assert.deepEqual(rec.tasks[3].mark, { result: 'pass', note: 'single-use towel' });
    assert.deepEqual(rec.tasks[1].mark, { result: 'pass', note: null });
    const entry = sql(`SELECT id, lower(hex(hash)) AS h FROM audit WHERE action='otj.approved'
      AND json_extract(detail,'$.completion')=${completion}`)[0];
    assert.deepEqual(rec.audit, { entry: entry.id, hash: entry.h });

    // the responsible who approved and an admin see it too
    assert.equal((await get(srv, 'rita', `/api/completions/${completion}`)).status, 200);
    assert.equal((await get(srv, 'admin', `/api/completions/${completion}`)).status, 200);
    // another learner, a responsible of another department, a manager without
    // Facilitate OTJ: the same 404 as for a completion that does not exist
    for (const who of ['leo', 'nina', 'sam', 'mark']) {
      const r = await get(srv, who, `/api/completions/${completion}`);
      assert.equal(r.status, 404, `${who}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error, 'not_found');
    }
    assert.equal((await get(srv, 'admin', '/api/completions/999999')).status, 404);
    assert.equal((await get(srv, null, `/api/completions/${completion}`)).status, 401);
    assert.equal((await get(srv, 'lea', '/api/completions/abc')).status, 404);
    // the list still answers as before
    assert.equal((await get(srv, 'lea', '/api/completions')).body.items.at(-1).id, completion);
    await rita.close();
    await learner.close();
  } finally {
    await srv.stop();
    srv.cleanup();
    await redis.stop();
  }
});
