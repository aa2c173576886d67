// "Ask for OTJ" and "online now" against real processes: one redis-server,
// two otjd on it sharing one data folder (A asks again after 3 s, B after the
// default 10 minutes).
//
// * `watch` tells a learner which responsibles within reach are online, and
//   pushes `online` when one connects or disconnects, on either instance;
// * POST /api/otj/requests stores the ask (and who it was shown to), pushes a
//   `dashboard` frame with it to the responsibles within reach on every
//   instance and to nobody else, and is refused with a clear code when the
//   learner does not wait for the module, completed it, has nobody to ask or
//   asked a moment ago;
// * GET /api/otj/pending carries `requested_at`, asked items first; the ask
//   ends when the learner completes the module.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startRedis, startOtjd, connectAs, login, sleep } from './harness.mjs';

let redis, A, B;
const tokens = {};

function sql(query) {
  const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000', `${A.dataDir}/otj.db`, query]).toString();
  return out.trim() ? JSON.parse(out) : [];
}
const id = (login) => sql(`SELECT id FROM users WHERE login='${login}'`)[0].id;
const moduleId = (title) => sql(`SELECT id FROM modules WHERE title='${title}'`)[0].id;

async function token(srv, who) {
  const k = `${srv.port}:${who}`;
  if (!tokens[k]) tokens[k] = (await login(srv, who)).body.token;
  return tokens[k];
}

async function call(srv, who, method, path, body, headers = {}) {
  const r = await fetch(`${srv.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${await token(srv, who)}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text ? JSON.parse(text) : null };
}
const askFor = (srv, who, module) => call(srv, who, 'POST', '/api/otj/requests', { module });

// A websocket client with pump(pred) (skips frames until one matches) and
// ask(msg) (a request and its reply by rid).
async function as(srv, who) {
  const c = await connectAs(srv, who);
  c.pump = async (pred, ms = 5000) => {
    const until = Date.now() + ms;
    for (;;) {
      const left = until - Date.now();
      if (left <= 0) throw new Error(`${who}: no matching frame within ${ms} ms`);
      const m = await c.next(left);
      if (pred(m)) return m;
    }
  };
  let rid = 1000;
  c.ask = (msg, ms) => {
    const r = ++rid;
    c.send({ ...msg, rid: r });
    return c.pump((m) => m.rid === r && m.t !== 'ev', ms);
  };
  // every frame that arrives within ms, without waiting for a match
  c.drain = async (ms) => {
    const got = [];
    const until = Date.now() + ms;
    for (;;) {
      const left = until - Date.now();
      if (left <= 0) return got;
      try { got.push(await c.next(left)); } catch { return got; }
    }
  };
  return c;
}

const ritaIn = (m) => m.responsibles.find((p) => p.id === id('rita'));

before(async () => {
  redis = await startRedis();
  A = await startOtjd({ redis: redis.addr, env: { OTJ_ASK_COOLDOWN: '3', OTJ_PRESENCE_STALE: '3' } });
  B = await startOtjd({ redis: redis.addr, dataDir: A.dataDir, demo: false, env: { OTJ_PRESENCE_STALE: '3' } });
});

after(async () => {
  try {
    await A.stopClean();
    await B.stopClean();
  } finally {
    await A.stop();
    await B.stop();
    A.cleanup();
    await redis.stop();
  }
});

test('the pop-up\'s responsibles are marked online while connected to either instance, live', async () => {
  const lea = await as(A, 'lea');
  const first = await lea.ask({ t: 'watch' });
  assert.equal(first.t, 'online', JSON.stringify(first));
  assert.deepEqual(first.responsibles.map((p) => p.name), ['Rita Hansen'], 'the responsibles within lea\'s reach');
  assert.equal(ritaIn(first).online, false, 'rita is not connected yet');

  // rita connects to the other instance: lea hears it without asking
  const ritaB = await as(B, 'rita');
  const on = await lea.pump((m) => m.t === 'online');
  assert.equal(on.rid, undefined, 'a push, not a reply');
  assert.equal(ritaIn(on).online, true);

  // a second connection of hers changes nothing; closing one of two neither
  const ritaA = await as(A, 'rita');
  await ritaA.close();
  assert.deepEqual((await lea.drain(700)).filter((m) => m.t === 'online'), [], 'no change while she stays connected');

  await ritaB.close();
  const off = await lea.pump((m) => m.t === 'online');
  assert.equal(ritaIn(off).online, false, 'offline once her last connection is gone');

  // sam is not lea's responsible: his connecting is nothing to her
  const sam = await as(B, 'sam');
  assert.deepEqual((await lea.drain(700)).filter((m) => m.t === 'online'), []);
  await sam.close();

  // after unwatch, nothing more
  assert.equal((await lea.ask({ t: 'unwatch' })).t, 'ok');
  const ritaAgain = await as(A, 'rita');
  assert.deepEqual((await lea.drain(700)).filter((m) => m.t === 'online'), [], 'unwatched: no pushes');
  await ritaAgain.close();
  await lea.close();
});

test('a responsible whose instance dies is offline for the watcher within the staleness', async () => {
  const C = await startOtjd({ redis: redis.addr, dataDir: A.dataDir, demo: false, env: { OTJ_PRESENCE_STALE: '3' } });
  const leo = await as(A, 'leo');
  try {
    await leo.ask({ t: 'watch' });
    const ritaC = await as(C, 'rita');
    assert.equal(ritaIn(await leo.pump((m) => m.t === 'online')).online, true);
    await C.stop('SIGKILL'); // no goodbye: the entry just stops beating
    const off = await leo.pump((m) => m.t === 'online', 8000);
    assert.equal(ritaIn(off).online, false);
    ritaC.ws.terminate();
  } finally {
    await leo.close();
    await C.stop();
  }
});

test('Ask for OTJ is stored, pushed to the responsibles within reach on every instance, and to nobody else', async () => {
  const HH = moduleId('Hand hygiene');
  const ritaB = await as(B, 'rita');
  const sam = await as(A, 'sam');
  const mark = await as(A, 'mark'); // Management without Facilitate OTJ
  // each responsible's first count after hello (folded: it can take a
  // moment on a slow machine) comes before the ask, so it is not taken for
  // a push below
  for (const c of [ritaB, sam]) await c.pump((m) => m.t === 'dashboard' && m.request === undefined);

  const r = await askFor(A, 'leo', HH);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.request.module.id, HH);
  assert.deepEqual(r.body.online, ['Rita Hansen'], 'the answer names who is online now');
  assert.equal(r.body.request.responsibles.find((p) => p.name === 'Rita Hansen').online, true);
  const at = r.body.request.requested_at;
  assert.ok(Math.abs(at - Date.now() / 1000) < 5);

  const push = await ritaB.pump((m) => m.t === 'dashboard' && m.request);
  assert.deepEqual(push.request, { learner: { id: id('leo'), name: 'Leo Nilsen' }, module: { id: HH, title: 'Hand hygiene' }, requested_at: at });
  assert.ok(push.requests >= 1, 'the count of open asks comes along');
  assert.equal(typeof push.count, 'number');

  // the other department's responsible and a manager without the flag hear nothing
  for (const c of [sam, mark])
    assert.deepEqual((await c.drain(1000)).filter((m) => m.t === 'dashboard'), [], `${c.user.name} gets no push`);

  // stored, with whom it was shown to
  const row = sql(`SELECT r.id, r.module_id, r.requested_at, r.ended_at, group_concat(u.login) AS shown, sum(t.online) AS online
    FROM otj_requests r JOIN otj_request_recipients t ON t.request_id = r.id JOIN users u ON u.id = t.responsible_id
    WHERE r.learner_id = ${id('leo')} GROUP BY r.id`);
  assert.equal(row.length, 1);
  assert.deepEqual([row[0].module_id, row[0].requested_at, row[0].ended_at, row[0].shown, row[0].online], [HH, at, null, 'rita', 1]);

  // rita's list has it, asked first; sam's does not
  const pend = await call(B, 'rita', 'GET', '/api/otj/pending');
  assert.equal(pend.status, 200);
  assert.equal(pend.body.items[0].learner.login, 'leo', 'asked items come first');
  assert.equal(pend.body.items[0].requested_at, at);
  assert.equal(pend.body.requests, pend.body.items.filter((it) => it.requested_at).length);
  assert.ok(pend.body.items.filter((it) => it.learner.login !== 'leo').every((it) => !('requested_at' in it)));
  const samPend = await call(A, 'sam', 'GET', '/api/otj/pending');
  assert.ok(samPend.body.items.every((it) => it.learner.login !== 'leo' && !('requested_at' in it)));

  // and leo's own path says so
  const paths = await call(A, 'leo', 'GET', '/api/me/paths');
  const hh = paths.body.paths.flatMap((p) => p.modules).find((m) => m.id === HH);
  assert.equal(hh.requested_at, at);
  assert.equal(hh.ask_again_at, at + 3);

  for (const c of [ritaB, sam, mark]) await c.close();
});

test('asking again within the cool-down is refused; after it, it is a new ask', async () => {
  const HH = moduleId('Hand hygiene');
  const first = await askFor(A, 'lars', HH);
  assert.equal(first.status, 201, JSON.stringify(first.body));
  const again = await askFor(A, 'lars', HH);
  assert.equal(again.status, 429);
  assert.equal(again.body.error, 'cooldown');
  assert.equal(again.body.requested_at, first.body.request.requested_at);
  assert.ok(Number(again.headers.get('retry-after')) >= 1);
  assert.match(again.body.message, /ask again in 1 minute/);
  // instance B keeps the default ten minutes
  const onB = await askFor(B, 'lars', HH);
  assert.equal(onB.status, 429, 'B\'s cool-down is 10 minutes');
  assert.ok(Number(onB.headers.get('retry-after')) > 500);
  await sleep(3200);
  const later = await askFor(A, 'lars', HH);
  assert.equal(later.status, 201, JSON.stringify(later.body));
  assert.equal(sql(`SELECT count(*) AS n FROM otj_requests WHERE learner_id = ${id('lars')}`)[0].n, 2);
  // pending shows since when lars asks: his first ask, still open
  const pend = await call(A, 'rita', 'GET', '/api/otj/pending');
  assert.equal(pend.body.items.find((it) => it.learner.login === 'lars').requested_at, first.body.request.requested_at);
});

test('asks that make no sense are refused with a clear code, and the server goes on', async () => {
  const HH = moduleId('Hand hygiene');
  const LT = moduleId('Lock-out/tag-out');
  const FS = moduleId('Food safety basics');
  let r = await askFor(A, 'liv', HH); // Food safety basics comes first for liv
  assert.deepEqual([r.status, r.body.error], [403, 'not_waiting']);
  r = await askFor(A, 'nina', HH); // not on any path of hers
  assert.deepEqual([r.status, r.body.error], [403, 'not_waiting']);
  r = await askFor(A, 'lea', FS); // completed
  assert.deepEqual([r.status, r.body.error], [409, 'already_completed']);
  r = await askFor(A, 'liv', FS); // not OTJ
  assert.deepEqual([r.status, r.body.error], [403, 'not_waiting']);
  r = await askFor(A, 'lea', 999999);
  assert.deepEqual([r.status, r.body.error], [404, 'not_found']);
  for (const bad of [{}, { module: 'x' }, { module: -1 }, { module: 1.5 }]) {
    r = await call(A, 'lea', 'POST', '/api/otj/requests', bad);
    assert.deepEqual([r.status, r.body.error], [400, 'bad_request'], JSON.stringify(bad));
  }
  r = await call(A, 'lea', 'POST', '/api/otj/requests', '{"module":');
  assert.equal(r.status, 400);
  r = await call(A, 'lea', 'GET', '/api/otj/requests');
  assert.equal(r.status, 405);
  const anon = await fetch(`${A.base}/api/otj/requests`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ module: HH }) });
  assert.equal(anon.status, 401);

  // the cookie rules of other writes: our own Origin and JSON, or 403
  const { cookie } = await login(A, 'lea');
  const sess = cookie.split(';')[0];
  const cross = await fetch(`${A.base}/api/otj/requests`, { method: 'POST', headers: { cookie: sess, origin: 'https://evil.example', 'content-type': 'application/json' }, body: JSON.stringify({ module: HH }) });
  assert.equal(cross.status, 403);
  const form = await fetch(`${A.base}/api/otj/requests`, { method: 'POST', headers: { cookie: sess, 'content-type': 'text/plain' }, body: JSON.stringify({ module: HH }) });
  assert.equal(form.status, 403);
  assert.equal(sql(`SELECT count(*) AS n FROM otj_requests WHERE learner_id = ${id('lea')}`)[0].n, 0, 'nothing stored by a refusal');
  const own = await fetch(`${A.base}/api/otj/requests`, { method: 'POST', headers: { cookie: sess, origin: A.base, 'content-type': 'application/json' }, body: JSON.stringify({ module: HH }) });
  assert.equal(own.status, 201, 'from our own page, with the cookie');

  // nobody to ask: sam is the only responsible for the Assembly line
  const admin = await token(A, 'admin');
  const setSam = (on) => fetch(`${A.base}/api/admin/users/${id('sam')}/permissions`, { method: 'PUT',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ management: true, facilitate_otj: on }) });
  assert.equal((await setSam(false)).status, 200);
  r = await askFor(A, 'omar', LT);
  assert.deepEqual([r.status, r.body.error], [409, 'no_responsible']);
  assert.equal((await setSam(true)).status, 200);
  r = await askFor(A, 'omar', LT);
  assert.equal(r.status, 201, JSON.stringify(r.body));

  assert.equal((await fetch(`${A.base}/healthz`)).status, 200);
  assert.equal((await fetch(`${B.base}/healthz`)).status, 200);
});

test('an ask ends when the learner completes the module', async () => {
  const HH = moduleId('Hand hygiene');
  const leo = id('leo');
  assert.equal(sql(`SELECT count(*) AS n FROM otj_requests WHERE learner_id = ${leo} AND ended_at IS NULL`)[0].n, 1, 'leo asked above');
  const rita = await as(A, 'rita');
  await rita.drain(800); // the count after hello
  const snap = await rita.ask({ t: 'open', module: HH, learners: [leo] });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  // not approved: still pending, the ask stays open
  for (const task of [1, 2, 3])
    assert.equal((await rita.ask({ t: 'mark', room: snap.room, learner: leo, task, result: 'pass' })).t, 'ok');
  let res = await rita.ask({ t: 'approve', room: snap.room, decisions: [{ learner: leo, approved: false }] });
  assert.equal(res.results[0].status, 'not_approved');
  assert.equal(sql(`SELECT count(*) AS n FROM otj_requests WHERE learner_id = ${leo} AND ended_at IS NULL`)[0].n, 1);
  res = await rita.ask({ t: 'approve', room: snap.room, decisions: [{ learner: leo, approved: true }] });
  assert.equal(res.results[0].status, 'approved', JSON.stringify(res));
  const row = sql(`SELECT r.ended_at, c.completed_at FROM otj_requests r JOIN completions c ON c.user_id = r.learner_id AND c.module_id = r.module_id WHERE r.learner_id = ${leo}`);
  assert.equal(row.length, 1);
  assert.equal(row[0].ended_at, row[0].completed_at, 'ended by the completion, in its transaction');
  // it left the list and the counts
  const dash = await rita.pump((m) => m.t === 'dashboard' && !m.request);
  const pend = await call(A, 'rita', 'GET', '/api/otj/pending');
  assert.ok(pend.body.items.every((it) => it.learner.id !== leo));
  assert.equal(dash.requests, pend.body.requests, 'the pushed count of asks matches the list');
  // and asking for it again is refused as completed
  const again = await askFor(A, 'leo', HH);
  assert.deepEqual([again.status, again.body.error], [409, 'already_completed']);
  await rita.close();
});
