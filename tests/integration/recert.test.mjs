// Recertification against real otjd and redis-server: a module's validity
// (validated), approvals that expire (the path, R6 pending, R7 joining and
// the records), the "due for a re-drill" list within reach only, and a
// re-drill approved as a new completion. The test clock OTJ_TEST_NOW_OFFSET
// moves otjd 40 days ahead, past the demo's two approvals that expire soon.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startRedis, startOtjd, connectAs, login } from './harness.mjs';

const DAY = 86400;
let redis, A, L; // A: today's clock; L: 40 days later (its own demo database)

function sql(srv, query) {
  const out = execFileSync('sqlite3', ['-json', `${srv.dataDir}/otj.db`, query]).toString();
  return out.trim() ? JSON.parse(out) : [];
}
const idOf = (srv, login) => sql(srv, `SELECT id FROM users WHERE login='${login}'`)[0].id;
const moduleId = (srv, title) => sql(srv, `SELECT id FROM modules WHERE title='${title}'`)[0].id;

const tokens = {};
async function call(srv, who, method, path, body) {
  const key = `${srv.port}/${who}`;
  if (!tokens[key]) tokens[key] = (await login(srv, who)).body.token;
  const headers = { authorization: `Bearer ${tokens[key]}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${srv.base}${path}`,
    { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* CSV */ }
  return { status: r.status, body: json, text };
}
const get = (srv, who, path) => call(srv, who, 'GET', path);

function step(paths, title) {
  for (const p of paths.body.paths) for (const m of p.modules) if (m.title === title) return m;
  return undefined;
}

// A websocket client that answers requests by rid, skipping room events.
async function as(srv, who) {
  const c = await connectAs(srv, who);
  let rid = 500;
  c.ask = async (msg) => {
    const r = ++rid;
    c.send({ ...msg, rid: r });
    for (;;) {
      const m = await c.next();
      if (m.rid === r && m.t !== 'ev') return m;
    }
  };
  return c;
}

// Runs a whole re-drill: opens a room for `learners`, passes every observe
// task, approves them all; returns the approve reply.
async function drill(srv, learners) {
  const HH = moduleId(srv, 'Hand hygiene');
  const rita = await as(srv, 'rita');
  const snap = await rita.ask({ t: 'open', module: HH, learners });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  for (const learner of learners) {
    for (const task of [1, 2, 3]) {
      const ok = await rita.ask({ t: 'mark', room: snap.room, learner, task, result: 'pass' });
      assert.equal(ok.t, 'ok', JSON.stringify(ok));
    }
  }
  const approved = await rita.ask({ t: 'approve', room: snap.room,
    decisions: learners.map((learner) => ({ learner, approved: true })) });
  assert.equal(approved.t, 'approved', JSON.stringify(approved));
  await rita.ask({ t: 'close', room: snap.room });
  rita.close();
  return approved;
}

before(async () => {
  redis = await startRedis();
  A = await startOtjd({ redis: redis.addr });
  L = await startOtjd({ redis: redis.addr, env: { OTJ_TEST_NOW_OFFSET: String(40 * DAY) } });
});

after(async () => {
  try {
    if (L) await L.stopClean();
    if (A) await A.stopClean();
  } finally {
    if (A) A.cleanup();
    if (L) L.cleanup();
    if (redis) await redis.stop();
  }
});

test('a module validity is 1 to 120 months or null; anything else is a 422 and changes nothing', async () => {
  const HH = moduleId(A, 'Hand hygiene');
  const before = await get(A, 'admin', `/api/admin/modules/${HH}`);
  assert.equal(before.body.validity_months, 12);
  for (const bad of [0, 121, -3, 1.5, '12', true, {}]) {
    const r = await call(A, 'admin', 'PATCH', `/api/admin/modules/${HH}`,
      { title: 'Renamed', validity_months: bad });
    assert.equal(r.status, 422, `${JSON.stringify(bad)}: ${r.text}`);
    assert.equal(r.body.error, 'invalid');
    assert.match(r.body.message, /1 to 120/);
  }
  const still = await get(A, 'admin', `/api/admin/modules/${HH}`);
  assert.equal(still.body.validity_months, 12);
  assert.equal(still.body.title, 'Hand hygiene', 'a refused patch changes nothing');
  // only an admin sets it
  assert.equal((await call(A, 'rita', 'PATCH', `/api/admin/modules/${HH}`,
    { validity_months: 24 })).status, 403);

  // a new module with a validity, then none
  const made = await call(A, 'admin', 'POST', '/api/admin/modules',
    { title: 'Fire drill', type: 'quiz', otj: true, validity_months: 6,
      tasks: [{ kind: 'observe', text: 'Walks to the assembly point' }] });
  assert.equal(made.status, 201, made.text);
  assert.equal(made.body.validity_months, 6);
  const cleared = await call(A, 'admin', 'PATCH', `/api/admin/modules/${made.body.id}`,
    { validity_months: null });
  assert.equal(cleared.status, 200, cleared.text);
  assert.equal(cleared.body.validity_months, null);
  const untouched = await call(A, 'admin', 'PATCH', `/api/admin/modules/${made.body.id}`,
    { title: 'Fire drill (ward)' });
  assert.equal(untouched.body.validity_months, null, 'a patch without the field keeps it');
  const audit = sql(A, "SELECT detail FROM audit WHERE action = 'module.validity'"
    + ` AND subject = 'module:${made.body.id}' ORDER BY id`);
  assert.deepEqual(audit.map((a) => JSON.parse(a.detail).validity_months), [6, null]);

  // the organisation import reads it and refuses a bad one
  const doc = (v) => ({ format: 'otj-org/1', modules: [{ title: `Imported ${v}`, type: 'quiz',
    otj: true, validity_months: v, tasks: [{ kind: 'observe', text: 'Does it' }] }] });
  const refused = await call(A, 'admin', 'POST', '/api/admin/import', doc(500));
  assert.equal(refused.status, 422, refused.text);
  assert.match(refused.body.message, /modules\[0\]\.validity_months/);
  const imported = await call(A, 'admin', 'POST', '/api/admin/import', doc(24));
  assert.equal(imported.status, 200, imported.text);
  assert.equal(sql(A, "SELECT validity_months FROM modules WHERE title = 'Imported 24'")[0]
    .validity_months, 24);
  // the server keeps serving
  assert.equal((await fetch(`${A.base}/healthz`)).status, 200);
});

test('due for a re-drill: the responsible within reach sees them by module; others do not', async () => {
  const due = await get(A, 'rita', '/api/otj/due');
  assert.equal(due.status, 200, due.text);
  assert.equal(due.body.window_days, 30);
  assert.equal(due.body.count, 2);
  assert.equal(due.body.groups.length, 1);
  const [g] = due.body.groups;
  assert.equal(g.module.title, 'Hand hygiene');
  assert.equal(g.module.validity_months, 12);
  assert.deepEqual(g.learners.map((l) => l.login), ['kai', 'ida'], 'soonest expiry first');
  assert.equal(g.may_join, 2);
  for (const l of g.learners) {
    assert.equal(l.expired, false);
    assert.ok(l.expires_at > due.body.now && l.expires_at < due.body.now + 30 * DAY);
  }
  // sam (Plant Bergen) does not reach the kitchen; learners and Management
  // without Facilitate OTJ may not ask
  const sam = await get(A, 'sam', '/api/otj/due');
  assert.equal(sam.status, 200);
  assert.equal(sam.body.count, 0);
  assert.deepEqual(sam.body.groups, []);
  assert.equal((await get(A, 'mark', '/api/otj/due')).status, 403);
  assert.equal((await get(A, 'kai', '/api/otj/due')).status, 403);
  assert.equal((await fetch(`${A.base}/api/otj/due`)).status, 401);
});

test('a valid approval counts; it blocks a re-drill until it is due, then a re-drill renews it', async () => {
  const HH = moduleId(A, 'Hand hygiene');
  const [lea, kai, ida] = ['lea', 'kai', 'ida'].map((l) => idOf(A, l));
  // kai's approval still counts: completed, valid until its expiry; not pending
  const kaiPath = await get(A, 'kai', '/api/me/paths');
  const hh = step(kaiPath, 'Hand hygiene');
  assert.equal(hh.state, 'completed');
  assert.ok(hh.valid_until > Date.now() / 1000, JSON.stringify(hh));
  assert.equal(hh.expired_at, undefined);
  assert.equal(step(kaiPath, 'Allergen handling').state, 'available');
  const pending = await get(A, 'rita', '/api/otj/pending');
  assert.ok(!pending.body.items.some((i) => i.learner.login === 'kai'), 'kai is not pending');

  // lea is approved now: a fresh approval, valid for 12 months
  const first = await drill(A, [lea]);
  assert.equal(first.results[0].status, 'approved');
  const leaPath = await get(A, 'lea', '/api/me/paths');
  const leaHH = step(leaPath, 'Hand hygiene');
  assert.equal(leaHH.state, 'completed');
  assert.ok(leaHH.valid_until - leaHH.completed_at >= 365 * DAY - DAY);
  // a valid approval blocks a re-drill: rita cannot open a room with lea,
  // and lea cannot join one by its code
  const rita = await as(A, 'rita');
  const refused = await rita.ask({ t: 'open', module: HH, learners: [lea] });
  assert.equal(refused.t, 'err');
  assert.equal(refused.code, 'forbidden');
  const room = await rita.ask({ t: 'open', module: HH, learners: [] });
  assert.equal(room.t, 'snapshot');
  const cLea = await as(A, 'lea');
  const join = await cLea.ask({ t: 'join', code: room.code });
  assert.equal(join.t, 'err', JSON.stringify(join));
  cLea.close();
  // kai, whose approval is due within the window, may join the same room
  const cKai = await as(A, 'kai');
  const kaiJoin = await cKai.ask({ t: 'join', code: room.code });
  assert.equal(kaiJoin.t, 'snapshot', JSON.stringify(kaiJoin));
  cKai.close();
  await rita.ask({ t: 'close', room: room.room });
  rita.close();

  // the re-drill of kai and ida: new completions, the old ones kept, marked expired
  const old = sql(A, `SELECT id, user_id FROM completions WHERE module_id = ${HH}`
    + ` AND user_id IN (${kai}, ${ida})`);
  assert.equal(old.length, 2);
  const redrill = await drill(A, [kai, ida]);
  for (const r of redrill.results) {
    assert.equal(r.status, 'approved', JSON.stringify(r));
    assert.ok(!old.some((o) => o.id === r.completion), 'a re-drill is a new completion');
  }
  // approving again gives the same completion (R10)
  const rows = sql(A, `SELECT id, renewal FROM completions WHERE module_id = ${HH}`
    + ` AND user_id = ${kai} ORDER BY renewal`);
  assert.deepEqual(rows.map((r) => r.renewal), [0, 1]);
  const list = await get(A, 'rita', '/api/completions');
  const kaiRows = list.body.items.filter((c) => c.learner.login === 'kai'
    && c.module.title === 'Hand hygiene');
  assert.equal(kaiRows.length, 2);
  assert.deepEqual(kaiRows.map((c) => c.expired), [true, false]);
  assert.ok(kaiRows.every((c) => typeof c.expires_at === 'number'));
  const csv = await get(A, 'rita', '/api/completions?format=csv');
  assert.ok(csv.text.startsWith('id,completed_at,login,name,department,module,path,approved_by,'
    + 'room,minutes_present,expires_at,expired,decided_at,confirmed_at\r\n'));
  assert.match(csv.text, /kai,Kai Solberg,Kitchen,Hand hygiene,Kitchen starter,Rita Hansen,,,[^,]+,yes,[^,]+,\r\n/);
  // nobody is due any more
  assert.equal((await get(A, 'rita', '/api/otj/due')).body.count, 0);
});

test('40 days later: an expired approval no longer counts for the path, R6 or R7', async () => {
  assert.match(L.log, /test clock: OTJ_TEST_NOW_OFFSET/, 'the test clock is logged as a warning');
  const HH = moduleId(L, 'Hand hygiene');
  const kai = idOf(L, 'kai');
  // the path: Hand hygiene is kai's next OTJ again, "expired on"
  const kaiPath = await get(L, 'kai', '/api/me/paths');
  const hh = step(kaiPath, 'Hand hygiene');
  assert.equal(hh.state, 'otj_waiting');
  assert.ok(hh.expired_at > 0 && hh.expired_at < Date.now() / 1000 + 40 * DAY);
  assert.equal(hh.valid_until, undefined);
  assert.equal(kaiPath.body.paths[0].next, HH);
  assert.equal(step(kaiPath, 'Allergen handling').state, 'locked');
  // R6: kai and ida wait for rita again (3 waited already), not for sam
  const pending = await get(L, 'rita', '/api/otj/pending');
  assert.equal(pending.body.count, 5);
  assert.ok(pending.body.items.some((i) => i.learner.login === 'kai'
    && i.module.title === 'Hand hygiene'));
  assert.equal((await get(L, 'sam', '/api/otj/pending')).body.count, 2);
  // the records keep the expired approval, marked expired
  const mine = await get(L, 'kai', '/api/completions');
  const old = mine.body.items.find((c) => c.module.title === 'Hand hygiene');
  assert.equal(old.expired, true);
  assert.equal(old.approved_by.name, 'Rita Hansen');
  // due: both, expired
  const due = await get(L, 'rita', '/api/otj/due');
  assert.deepEqual(due.body.groups[0].learners.map((l) => [l.login, l.expired]),
    [['kai', true], ['ida', true]]);
  // R7: kai joins a room by its code; the re-drill renews the approval
  const rita = await as(L, 'rita');
  const room = await rita.ask({ t: 'open', module: HH, learners: [] });
  const cKai = await as(L, 'kai');
  const join = await cKai.ask({ t: 'join', code: room.code });
  assert.equal(join.t, 'snapshot', JSON.stringify(join));
  cKai.close();
  await rita.ask({ t: 'close', room: room.room });
  rita.close();
  const r = await drill(L, [kai]);
  assert.equal(r.results[0].status, 'approved');
  const after = step(await get(L, 'kai', '/api/me/paths'), 'Hand hygiene');
  assert.equal(after.state, 'completed');
  // "now" is 40 days ahead: the approval's time and expiry follow that clock
  assert.ok(after.completed_at > Date.now() / 1000 + 39 * DAY, JSON.stringify(after));
  assert.equal((await get(L, 'rita', '/api/otj/pending')).body.count, 4);
});

test('a bad test clock is refused at start', async () => {
  await assert.rejects(startOtjd({ redis: redis.addr, env: { OTJ_TEST_NOW_OFFSET: 'soon' },
    startTimeout: 4000 }),
    /OTJ_TEST_NOW_OFFSET must be a number/);
});
