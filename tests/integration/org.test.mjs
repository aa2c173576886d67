// The organisation over HTTP against a real otjd with the demo organisation
// (DESIGN §10): paths and module states (R4, R5), completing modules alone,
// the pending OTJ list (R6), completions as JSON and CSV with their scopes,
// the admin calls with their rules (R1 tree, R2, R3) and audit (R11), and the
// organisation import (all or nothing).
//
// Read-only checks share one server; a test that changes progress starts
// its own, so every test can run alone and in any order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, startOtjd, login } from './harness.mjs';

let redis, srv;
const tokens = {};
// imported people (below) have their own passwords; the demo's is the default
const PASSWORDS = { hanna: 'change-me-soon', hugo: 'change-me-soon', pia: 'change-me-soon' };

before(async () => {
  redis = await startRedis();
  srv = await startOtjd({ redis: redis.addr });
});

after(async () => {
  if (srv) { await srv.stop(); srv.cleanup(); }
  if (redis) await redis.stop();
});

async function tokenOf(s, who) {
  const key = `${s.port}/${who}`;
  if (!tokens[key]) {
    const r = await login(s, who, PASSWORDS[who]);
    assert.equal(r.status, 200, `login ${who}`);
    tokens[key] = r.body.token;
  }
  return tokens[key];
}

// One API call: {status, body (parsed JSON or null), text, headers}.
async function call(s, who, method, path, body, raw) {
  const headers = {};
  if (who) headers.authorization = `Bearer ${await tokenOf(s, who)}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${s.base}${path}`, {
    method, headers,
    body: raw !== undefined ? raw : body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* CSV or empty */ }
  return { status: r.status, body: json, text, headers: r.headers };
}

const get = (s, who, path) => call(s, who, 'GET', path);

function moduleOf(paths, title) {
  for (const p of paths.body.paths) for (const m of p.modules) if (m.title === title) return m;
  return undefined;
}

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

// --- acceptance: pending (R6) -------------------------------------------------

test("rita's pending: lea, leo, lars for Hand hygiene; sam's: omar, ola; mark is refused", async () => {
  const rita = await get(srv, 'rita', '/api/otj/pending');
  assert.equal(rita.status, 200);
  assert.equal(rita.body.count, 3);
  assert.deepEqual(rita.body.items.map((i) => i.learner.login).sort(), ['lars', 'lea', 'leo']);
  for (const item of rita.body.items) {
    assert.equal(item.module.title, 'Hand hygiene');
    assert.equal(item.path.title, 'Kitchen starter');
    assert.equal(typeof item.learner.id, 'number');
    assert.equal(typeof item.learner.name, 'string');
    assert.equal(typeof item.learner.department.name, 'string');
    assert.equal(item.module.tasks.length, 4);
    assert.deepEqual(item.module.tasks[0], { kind: 'question', text: 'How long should you rub your hands with soap?' });
    assert.equal(item.module.tasks[1].kind, 'observe');
    assert.equal(typeof item.waiting_since, 'number');
    assert.ok(item.waiting_since > 1.6e9);
  }
  assert.equal(rita.body.items.find((i) => i.learner.login === 'lars').learner.department.name, 'Cold kitchen');

  const sam = await get(srv, 'sam', '/api/otj/pending');
  assert.equal(sam.status, 200);
  assert.equal(sam.body.count, 2);
  assert.deepEqual(sam.body.items.map((i) => i.learner.login).sort(), ['ola', 'omar']);
  assert.ok(sam.body.items.every((i) => i.module.title === 'Lock-out/tag-out'));

  const mark = await get(srv, 'mark', '/api/otj/pending');
  assert.equal(mark.status, 403);
  assert.equal(mark.body.error, 'forbidden');
  assert.equal((await get(srv, 'lea', '/api/otj/pending')).status, 403);
  assert.equal((await get(srv, null, '/api/otj/pending')).status, 401);
});

// --- acceptance: paths and states (R4, R5) --------------------------------------

test("lea's paths: completed, otj_waiting naming rita only, locked; liv's Hand hygiene is locked", async () => {
  const lea = await get(srv, 'lea', '/api/me/paths');
  assert.equal(lea.status, 200);
  assert.equal(lea.body.paths.length, 1);
  assert.equal(lea.body.paths[0].title, 'Kitchen starter');
  assert.deepEqual(lea.body.paths[0].modules.map((m) => [m.title, m.state]), [
    ['Food safety basics', 'completed'],
    ['Hand hygiene', 'otj_waiting'],
    ['Allergen handling', 'locked'],
  ]);
  const hand = moduleOf(lea, 'Hand hygiene');
  assert.deepEqual(hand.responsibles.map((p) => p.login), ['rita']);
  assert.equal(hand.responsibles[0].name, 'Rita Hansen');
  assert.equal(hand.responsibles[0].department.name, 'Kitchen');
  assert.match(hand.message, /Rita Hansen \(Kitchen\)/);
  assert.doesNotMatch(hand.message, /Mark|Sam/);
  assert.equal(moduleOf(lea, 'Allergen handling').responsibles, undefined);

  const liv = await get(srv, 'liv', '/api/me/paths');
  assert.equal(moduleOf(liv, 'Food safety basics').state, 'available');
  assert.equal(moduleOf(liv, 'Hand hygiene').state, 'locked');
  assert.equal(moduleOf(liv, 'Allergen handling').state, 'locked');

  // R4 negative: Ward 3 has nothing shared; the plant has only its own path
  assert.deepEqual((await get(srv, 'nina', '/api/me/paths')).body.paths, []);
  const omar = await get(srv, 'omar', '/api/me/paths');
  assert.deepEqual(omar.body.paths.map((p) => p.title), ['Line safety']);
  assert.equal(moduleOf(omar, 'Lock-out/tag-out').state, 'otj_waiting');
  assert.deepEqual(moduleOf(omar, 'Lock-out/tag-out').responsibles.map((p) => p.login), ['sam']);
});

// --- acceptance: completing ----------------------------------------------------

test('lea completing Hand hygiene through /complete is a 409 telling her to reach out, and nothing changes', async () => {
  const before_ = await get(srv, 'lea', '/api/me/paths');
  const hand = moduleOf(before_, 'Hand hygiene');
  const r = await call(srv, 'lea', 'POST', `/api/modules/${hand.id}/complete`, { answers: [1] });
  assert.equal(r.status, 409);
  assert.equal(r.body.error, 'otj_required');
  assert.match(r.body.message, /reach out/i);
  assert.match(r.body.message, /Rita Hansen/);
  assert.deepEqual(r.body.responsibles.map((p) => p.login), ['rita']);
  const after_ = await get(srv, 'lea', '/api/me/paths');
  assert.deepEqual(after_.body, before_.body);
  assert.equal((await get(srv, 'rita', '/api/otj/pending')).body.count, 3);
  const mine = await get(srv, 'lea', '/api/completions');
  assert.deepEqual(mine.body.items.map((c) => c.module.title), ['Food safety basics']);
});

test('a learner completes her next module alone; wrong answers and modules out of order are refused', async () => {
  const own = await startOtjd({ redis: redis.addr });
  try {
    const paths = await get(own, 'liv', '/api/me/paths');
    const food = moduleOf(paths, 'Food safety basics');
    const allergen = moduleOf(paths, 'Allergen handling');

    const early = await call(own, 'liv', 'POST', `/api/modules/${allergen.id}/complete`, { answers: [1, 1] });
    assert.equal(early.status, 409);
    assert.equal(early.body.error, 'not_next');

    const wrong = await call(own, 'liv', 'POST', `/api/modules/${food.id}/complete`, { answers: [0, 0, 1] });
    assert.equal(wrong.status, 422);
    assert.equal(wrong.body.error, 'wrong_answers');
    assert.deepEqual(wrong.body.wrong, [1]);
    const none = await call(own, 'liv', 'POST', `/api/modules/${food.id}/complete`);
    assert.equal(none.status, 422);
    assert.deepEqual(none.body.wrong, [0, 1, 2]);
    assert.equal(moduleOf(await get(own, 'liv', '/api/me/paths'), 'Food safety basics').state, 'available');
    assert.equal((await get(own, 'liv', '/api/completions')).body.count, 0);

    const bad = await call(own, 'liv', 'POST', `/api/modules/${food.id}/complete`, undefined, '{"answers": [');
    assert.equal(bad.status, 400);

    const ok = await call(own, 'liv', 'POST', `/api/modules/${food.id}/complete`, { answers: [0, 1, 1] });
    assert.equal(ok.status, 200);
    assert.equal(typeof ok.body.completion.id, 'number');
    assert.equal(ok.body.completion.module_id, food.id);
    assert.equal(ok.body.next.title, 'Hand hygiene');
    assert.equal(ok.body.next.state, 'otj_waiting');

    const again = await call(own, 'liv', 'POST', `/api/modules/${food.id}/complete`, { answers: [0, 1, 1] });
    assert.equal(again.status, 409);
    const after_ = await get(own, 'liv', '/api/me/paths');
    assert.equal(moduleOf(after_, 'Food safety basics').state, 'completed');
    assert.equal(moduleOf(after_, 'Hand hygiene').state, 'otj_waiting');
    const pending = await get(own, 'rita', '/api/otj/pending');
    assert.equal(pending.body.count, 4);
    assert.ok(pending.body.items.some((i) => i.learner.login === 'liv'));

    // a content module completes without a body once it is next
    const mod = await call(own, 'admin', 'POST', '/api/admin/modules', { title: 'House rules', type: 'content' });
    assert.equal(mod.status, 201);
    const path = await call(own, 'admin', 'POST', '/api/admin/paths', { title: 'Newcomers', modules: [mod.body.id] });
    assert.equal(path.status, 201);
    const nina = (await call(own, 'admin', 'GET', '/api/admin/users')).body.items.find((u) => u.login === 'nina');
    // not shared with nina yet: she cannot see it, so 404 as for GET
    assert.equal((await call(own, 'nina', 'POST', `/api/modules/${mod.body.id}/complete`)).status, 404);
    const share = await call(own, 'admin', 'POST', '/api/admin/sharings', { path_id: path.body.id, department_id: nina.department.id });
    assert.equal(share.status, 201);
    const done = await call(own, 'nina', 'POST', `/api/modules/${mod.body.id}/complete`);
    assert.equal(done.status, 200);
    assert.equal(done.body.next, null);
  } finally {
    await own.stop();
    own.cleanup();
  }
});

// --- acceptance: R3 over HTTP -----------------------------------------------------

test('OTJ on Welcome video and Hand hygiene away from quiz are refused naming R3, unchanged and not audited', async () => {
  const modules = (await get(srv, 'admin', '/api/admin/modules')).body.items;
  const video = modules.find((m) => m.title === 'Welcome video');
  const hand = modules.find((m) => m.title === 'Hand hygiene');
  const auditBefore = (await get(srv, 'admin', '/api/admin/audit?limit=1')).body.items[0];

  const on = await call(srv, 'admin', 'PATCH', `/api/admin/modules/${video.id}`, { otj: true });
  assert.equal(on.status, 422);
  assert.equal(on.body.rule, 'R3');
  assert.match(on.body.message, /R3/);
  assert.match(on.body.message, /quiz/);
  const away = await call(srv, 'admin', 'PATCH', `/api/admin/modules/${hand.id}`, { type: 'content' });
  assert.equal(away.status, 422);
  assert.equal(away.body.rule, 'R3');
  assert.match(away.body.message, /stay a quiz/);

  assert.deepEqual((await get(srv, 'admin', `/api/admin/modules/${video.id}`)).body, video);
  assert.deepEqual((await get(srv, 'admin', `/api/admin/modules/${hand.id}`)).body, hand);
  assert.deepEqual((await get(srv, 'admin', '/api/admin/audit?limit=1')).body.items[0], auditBefore);

  // positive: a new quiz gets OTJ, and the toggle is audited
  const quiz = await call(srv, 'admin', 'POST', '/api/admin/modules', {
    title: 'Fire blanket', type: 'quiz',
    tasks: [{ kind: 'question', text: 'Pull the tapes?', options: ['down', 'up'], correct: 0 },
      { kind: 'observe', text: 'Covers the pan' }],
  });
  assert.equal(quiz.status, 201);
  assert.equal(quiz.body.otj, false);
  const toggled = await call(srv, 'admin', 'PATCH', `/api/admin/modules/${quiz.body.id}`, { otj: true });
  assert.equal(toggled.status, 200);
  assert.equal(toggled.body.otj, true);
  const last = (await get(srv, 'admin', '/api/admin/audit?limit=1')).body.items[0];
  assert.equal(last.action, 'module.otj');
  assert.equal(last.subject, `module:${quiz.body.id}`);
  assert.deepEqual(last.detail, { otj: true });
  assert.equal(last.actor.login, 'admin');
  const badTask = await call(srv, 'admin', 'POST', '/api/admin/modules', {
    title: 'Broken', type: 'quiz', tasks: [{ kind: 'observe', text: 'x', options: ['a', 'b'] }],
  });
  assert.equal(badTask.status, 400);
  assert.match(badTask.body.message, /tasks\[0\]/);
});

// --- completions: JSON, CSV and scope ---------------------------------------------

test('completions as CSV: header row, RFC 4180 quoting, scoped for admin, rita and lea', async () => {
  const imported = await call(srv, 'admin', 'POST', '/api/admin/import', {
    departments: [{ name: 'Sales, North "HQ"' }],
    users: [{ login: 'quinn', name: 'Quinn "Q" Olsen, Jr.', department: 'Sales, North "HQ"',
      password_hash: '$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo' }],
    modules: [{ title: 'Line\r\nbreaks, and "quotes"', type: 'content' }],
    completions: [{ login: 'quinn', module: 'Line\r\nbreaks, and "quotes"', completed_at: 1717000000 }],
  });
  assert.equal(imported.status, 200, imported.text);

  const all = await get(srv, 'admin', '/api/completions?format=csv');
  assert.equal(all.status, 200);
  assert.match(all.headers.get('content-type'), /^text\/csv/);
  assert.ok(all.text.startsWith('id,completed_at,login,name,department,module,path,approved_by,room,minutes_present,expires_at,expired,decided_at,confirmed_at\r\n'));
  assert.ok(all.text.includes('"Quinn ""Q"" Olsen, Jr.","Sales, North ""HQ""","Line\r\nbreaks, and ""quotes"""'));
  const rows = parseCsv(all.text);
  assert.deepEqual(rows[0], ['id', 'completed_at', 'login', 'name', 'department', 'module', 'path', 'approved_by', 'room', 'minutes_present', 'expires_at', 'expired', 'decided_at', 'confirmed_at']);
  const quinn = rows.find((r) => r[2] === 'quinn');
  assert.deepEqual(quinn.slice(1, 7), ['2024-05-29T16:26:40Z', 'quinn', 'Quinn "Q" Olsen, Jr.', 'Sales, North "HQ"', 'Line\r\nbreaks, and "quotes"', '']);
  assert.ok(rows.every((r) => r.length === 14));
  assert.deepEqual(rows.slice(1).map((r) => r[2]).sort(), ['ida', 'ida', 'kai', 'kai', 'lars', 'lea', 'leo', 'quinn']);

  const rita = parseCsv((await get(srv, 'rita', '/api/completions?format=csv')).text);
  assert.deepEqual(rita.slice(1).map((r) => r[2]).sort(), ['ida', 'ida', 'kai', 'kai', 'lars', 'lea', 'leo']);
  const lea = parseCsv((await get(srv, 'lea', '/api/completions?format=csv')).text);
  assert.deepEqual(lea.slice(1).map((r) => r[2]), ['lea']);
  const sam = parseCsv((await get(srv, 'sam', '/api/completions?format=csv')).text);
  assert.equal(sam.length, 1); // the header only: nobody in reach has completed anything

  const json = await get(srv, 'rita', '/api/completions');
  assert.equal(json.body.scope, 'reach');
  assert.equal(json.body.count, 7); // with kai's and ida's Food safety and Hand hygiene
  assert.equal(json.body.items[0].module.title, 'Food safety basics');
  assert.equal(json.body.items[0].path.title, 'Kitchen starter');
  assert.equal(json.body.items[0].approved_by, null);
  assert.equal((await get(srv, 'admin', '/api/completions')).body.scope, 'all');
  assert.equal((await get(srv, 'lea', '/api/completions')).body.scope, 'own');
  assert.equal((await get(srv, null, '/api/completions?format=csv')).status, 401);
});

// --- admin: access, errors, tree, permissions ----------------------------------

test('admin calls: 401 without a token, 403 for everyone but admins', async () => {
  const calls = [
    ['GET', '/api/admin/departments'], ['POST', '/api/admin/departments', { name: 'X' }],
    ['GET', '/api/admin/users'], ['PUT', '/api/admin/users/5/permissions', { management: true, facilitate_otj: true }],
    ['GET', '/api/admin/modules'], ['PATCH', '/api/admin/modules/5', { otj: false }],
    ['GET', '/api/admin/paths'], ['POST', '/api/admin/sharings', { path_id: 1, user_id: 9 }],
    ['POST', '/api/admin/import', { departments: [{ name: 'Sneaky' }] }], ['GET', '/api/admin/audit'],
  ];
  for (const [method, path, body] of calls) {
    const anon = await call(srv, null, method, path, body);
    assert.equal(anon.status, 401, `${method} ${path} without a token`);
    for (const who of ['rita', 'mark', 'lea']) {
      const r = await call(srv, who, method, path, body);
      assert.equal(r.status, 403, `${method} ${path} as ${who}`);
      assert.equal(r.body.error, 'forbidden');
    }
  }
  const depts = (await get(srv, 'admin', '/api/admin/departments')).body.items;
  assert.ok(!depts.some((d) => d.name === 'X' || d.name === 'Sneaky'));
  const lea = (await get(srv, 'admin', '/api/admin/users')).body.items.find((u) => u.login === 'lea');
  assert.equal(lea.responsible, false);
});

test('errors: malformed JSON 400, unknown route 404, wrong method 405, 401 without a token', async () => {
  const bad = await call(srv, 'admin', 'POST', '/api/admin/departments', undefined, '{"name": ');
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error, 'bad_request');
  assert.equal(typeof bad.body.message, 'string');
  const notObject = await call(srv, 'admin', 'POST', '/api/admin/departments', undefined, '[1,2]');
  assert.equal(notObject.status, 400);
  const unknown = await get(srv, 'admin', '/api/admin/nothing-here');
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error, 'not_found');
  assert.equal((await get(srv, 'admin', '/api/modules/abc/complete')).status, 404);
  const method = await call(srv, 'lea', 'DELETE', '/api/me/paths');
  assert.equal(method.status, 405);
  assert.match(method.headers.get('allow'), /GET/);
  assert.equal((await get(srv, null, '/api/me/paths')).status, 401);
  assert.equal((await get(srv, null, '/api/me')).status, 401);
  const missing = await call(srv, 'lea', 'POST', '/api/modules/999999/complete');
  assert.equal(missing.status, 404);
  const huge = await call(srv, 'admin', 'POST', '/api/admin/import', undefined, JSON.stringify({ departments: [{ name: 'x'.repeat(2 * 1024 * 1024) }] }));
  assert.equal(huge.status, 413);
  assert.equal(huge.body.error, 'too_large');
});

test('departments form a tree: a cycle is refused over HTTP and nothing moves', async () => {
  const depts = (await get(srv, 'admin', '/api/admin/departments')).body.items;
  const root = depts.find((d) => d.name === 'Northwind Care');
  const cold = depts.find((d) => d.name === 'Cold kitchen');
  const r = await call(srv, 'admin', 'PATCH', `/api/admin/departments/${root.id}`, { parent_id: cold.id });
  assert.equal(r.status, 422);
  assert.match(r.body.message, /cycle/);
  const self = await call(srv, 'admin', 'PATCH', `/api/admin/departments/${cold.id}`, { parent_id: cold.id });
  assert.equal(self.status, 422);
  assert.deepEqual((await get(srv, 'admin', '/api/admin/departments')).body.items, depts);

  // positive: a new department under Cold kitchen, then moved to Ward 3
  const made = await call(srv, 'admin', 'POST', '/api/admin/departments', { name: 'Cold store', parent_id: cold.id });
  assert.equal(made.status, 201);
  assert.equal(made.body.parent_id, cold.id);
  const ward = depts.find((d) => d.name === 'Ward 3');
  const moved = await call(srv, 'admin', 'PATCH', `/api/admin/departments/${made.body.id}`, { parent_id: ward.id });
  assert.equal(moved.status, 200);
  assert.equal(moved.body.parent_id, ward.id);
});

test('a permission change is applied and audited; Facilitate OTJ without Management is refused', async () => {
  const users = (await get(srv, 'admin', '/api/admin/users')).body.items;
  const nina = users.find((u) => u.login === 'nina');
  const refused = await call(srv, 'admin', 'PUT', `/api/admin/users/${nina.id}/permissions`, { management: false, facilitate_otj: true });
  assert.equal(refused.status, 422);
  assert.match(refused.body.message, /Management/);

  const r = await call(srv, 'admin', 'PUT', `/api/admin/users/${nina.id}/permissions`, { management: true, facilitate_otj: true });
  assert.equal(r.status, 200);
  assert.equal(r.body.responsible, true);
  const audit = await get(srv, 'admin', '/api/admin/audit?limit=5');
  assert.equal(audit.status, 200);
  const entry = audit.body.items[0];
  assert.equal(entry.action, 'permission.set');
  assert.equal(entry.subject, `user:${nina.id}`);
  assert.deepEqual(entry.detail, { management: true, facilitate_otj: true });
  assert.equal(entry.actor.login, 'admin');
  // newest first, and paging continues below
  const ids = audit.body.items.map((e) => e.id);
  assert.deepEqual([...ids].sort((a, b) => b - a), ids);
  const page2 = await get(srv, 'admin', `/api/admin/audit?limit=500&before=${audit.body.next_before}`);
  assert.ok(page2.body.items.every((e) => e.id < ids[ids.length - 1]));
  assert.ok(page2.body.items.length > 0);
  // the two pages together reach back to the demo's own entries, without overlap
  const both = [...audit.body.items, ...page2.body.items];
  assert.ok(both.some((e) => e.action === 'demo.load'));
  assert.equal(new Set(both.map((e) => e.id)).size, both.length);
  // nina, now responsible for Ward 3, sees an empty list (nothing shared there)
  const pend = await get(srv, 'nina', '/api/otj/pending');
  assert.equal(pend.status, 200);
  assert.equal(pend.body.count, 0);
  // put it back
  const back = await call(srv, 'admin', 'PUT', `/api/admin/users/${nina.id}/permissions`, { management: false, facilitate_otj: false });
  assert.equal(back.status, 200);
  assert.equal((await get(srv, 'nina', '/api/otj/pending')).status, 403);
});

// --- import ------------------------------------------------------------------------

const harbour = () => ({
  format: 'otj-org/1',
  departments: [{ name: 'Harbour Foods' }, { name: 'Kitchen', parent: 'Harbour Foods' }, { name: 'Pastry', parent: 'Kitchen' }],
  users: [
    { login: 'hanna', name: 'Hanna Holm', department: 'Kitchen', password: 'change-me-soon', management: true, facilitate_otj: true },
    { login: 'hugo', name: 'Hugo Hagen', department: 'Kitchen', password: 'change-me-soon' },
    { login: 'pia', name: 'Pia Pettersen', department: 'Pastry', password: 'change-me-soon' },
  ],
  modules: [
    { title: 'Knife safety', type: 'quiz', otj: true, tasks: [
      { kind: 'question', text: 'Where do you put a knife down?', options: ['On the edge', 'Flat, blade away'], correct: 1 },
      { kind: 'observe', text: 'Carries the knife point down' }] },
    { title: 'Welcome', type: 'content' },
  ],
  paths: [{ title: 'Harbour kitchen start', modules: ['Welcome', 'Knife safety'] }],
  sharings: [{ path: 'Harbour kitchen start', departments: ['Kitchen'] }],
  completions: [{ login: 'hugo', module: 'Welcome', path: 'Harbour kitchen start', completed_at: 1717000000 }],
});

async function snapshot(s) {
  const [d, u, m, p, a] = await Promise.all(['departments', 'users', 'modules', 'paths', 'audit?limit=500']
    .map((x) => get(s, 'admin', `/api/admin/${x}`)));
  return { d: d.body, u: u.body, m: m.body, p: p.body, a: a.body };
}

test('importing a second organisation works: its people log in, its responsible sees its learners', async () => {
  const own = await startOtjd({ redis: redis.addr });
  try {
    const r = await call(own, 'admin', 'POST', '/api/admin/import', harbour());
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.imported, { departments: 3, users: 3, modules: 2, paths: 1, sharings: 1, completions: 1 });

    assert.equal((await login(own, 'hugo', 'change-me-soon')).status, 200);
    const pend = await get(own, 'hanna', '/api/otj/pending');
    assert.equal(pend.status, 200);
    assert.deepEqual(pend.body.items.map((i) => [i.learner.login, i.module.title]), [['hugo', 'Knife safety']]);
    assert.equal(pend.body.items[0].waiting_since, 1717000000);
    const pia = await get(own, 'pia', '/api/me/paths');
    assert.equal(moduleOf(pia, 'Welcome').state, 'available');
    // the two organisations stay apart: rita's list is unchanged, hugo's pop-up names hanna
    assert.equal((await get(own, 'rita', '/api/otj/pending')).body.count, 3);
    const hugo = await get(own, 'hugo', '/api/me/paths');
    assert.deepEqual(moduleOf(hugo, 'Knife safety').responsibles.map((p) => p.login), ['hanna']);
    const audit = (await get(own, 'admin', '/api/admin/audit?limit=1')).body.items[0];
    assert.equal(audit.action, 'org.import');
    // importing the same document again: the logins are taken, nothing changes
    const before_ = await snapshot(own);
    const again = await call(own, 'admin', 'POST', '/api/admin/import', harbour());
    assert.equal(again.status, 409);
    assert.equal(again.body.where, 'users[0].login');
    assert.deepEqual(await snapshot(own), before_);
  } finally {
    await own.stop();
    own.cleanup();
  }
});

test('an import with one bad row changes nothing and names the place', async () => {
  const before_ = await snapshot(srv);
  const doc = harbour();
  doc.users.push({ login: 'hilde', name: 'Hilde Hauge', department: 'Kitchn', password: 'change-me-soon' });
  const r = await call(srv, 'admin', 'POST', '/api/admin/import', doc);
  assert.equal(r.status, 422);
  assert.equal(r.body.error, 'invalid');
  assert.equal(r.body.where, 'users[3].department');
  assert.match(r.body.message, /users\[3\]\.department: no department named "Kitchn"/);
  assert.match(r.body.message, /changed nothing/);
  assert.deepEqual(await snapshot(srv), before_);
  assert.equal((await login(srv, 'hanna', 'change-me-soon')).status, 401);

  // shape errors are named too, before anything is hashed or written
  const shape = harbour();
  shape.modules[1].otj = true;
  const r3 = await call(srv, 'admin', 'POST', '/api/admin/import', shape);
  assert.equal(r3.status, 422);
  assert.equal(r3.body.where, 'modules[1].otj');
  assert.match(r3.body.message, /R3/);
  const typo = harbour();
  typo.users[1].departmnet = 'Kitchen';
  const r4 = await call(srv, 'admin', 'POST', '/api/admin/import', typo);
  assert.equal(r4.status, 422);
  assert.equal(r4.body.where, 'users[1].departmnet');
  const path = harbour();
  path.paths[0].modules.push('Knife safty');
  const r5 = await call(srv, 'admin', 'POST', '/api/admin/import', path);
  assert.equal(r5.status, 422);
  assert.equal(r5.body.where, 'paths[0].modules[2]');
  assert.deepEqual(await snapshot(srv), before_);
});

test('a learner reads a module of her path without its correct answers; others are not shown', async () => {
  const paths = await get(srv, 'liv', '/api/me/paths');
  const fs = moduleOf(paths, 'Food safety basics');
  const r = await get(srv, 'liv', `/api/modules/${fs.id}`);
  assert.equal(r.status, 200);
  assert.equal(r.body.title, 'Food safety basics');
  assert.equal(r.body.state, 'available');
  assert.ok(r.body.tasks.length >= 1);
  for (const t of r.body.tasks) {
    assert.equal(t.correct, undefined, 'no correct answers for learners');
    assert.ok(t.text);
  }
  // omar's paths do not hold Food safety basics
  const other = await get(srv, 'omar', `/api/modules/${fs.id}`);
  assert.equal(other.status, 404);
  assert.equal((await get(srv, null, `/api/modules/${fs.id}`)).status, 401);
  // an administrator may look at any module
  assert.equal((await get(srv, 'admin', `/api/modules/${fs.id}`)).status, 200);
});
