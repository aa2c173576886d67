// "Ask for OTJ": the count of open requests on a responsible's dashboard is
// rechecked whenever what waits may have changed, and the `dashboard` push
// (live, on either of two otjd instances) says the same number as
// GET /api/otj/pending (a reload):
// * one per learner and module asked for, even when the module waits in two
//   paths;
// * a request ends when the learner completes the module (approved in a room);
// * a request of a module that no longer waits (OTJ switched off) does not
//   count, and counts again when it waits again;
// * a learner moved out of reach no longer counts, pushed at once;
// * a responsible moved to another department, or whose Facilitate OTJ is
//   taken away, gets the count of their new reach (or none) on reconnect.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startRedis, startOtjd, connectAs, login } from './harness.mjs';

let redis, A, B;
const clients = [];

function sql(query) {
  const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000', `${A.dataDir}/otj.db`, query]).toString();
  return out.trim() ? JSON.parse(out) : [];
}
const id = (l) => sql(`SELECT id FROM users WHERE login='${l}'`)[0].id;
const dept = (n) => sql(`SELECT id FROM departments WHERE name='${n}'`)[0].id;

const tokens = {};
async function call(srv, who, method, path, body) {
  const k = `${srv.port}:${who}`;
  if (!tokens[k]) tokens[k] = (await login(srv, who)).body.token;
  const r = await fetch(`${srv.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${tokens[k]}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null, text };
}
const admin = (method, path, body) => call(A, 'admin', method, path, body);

async function as(srv, who) {
  const c = await connectAs(srv, who);
  clients.push(c);
  // the next `dashboard` push that satisfies pred (others are skipped)
  c.dash = async (pred, ms = 5000) => {
    const until = Date.now() + ms;
    let last = null;
    for (;;) {
      const left = until - Date.now();
      if (left <= 0) throw new Error(`${who}: no dashboard push as expected within ${ms} ms (last: ${JSON.stringify(last)})`);
      let m;
      try { m = await c.next(left); } catch { continue; }
      if (m.t !== 'dashboard') continue;
      last = m;
      if (pred(m)) return m;
    }
  };
  let rid = 100;
  c.ask = async (msg) => {
    const r = ++rid;
    c.send({ ...msg, rid: r });
    const skipped = [];
    try {
      for (;;) {
        const m = await c.next(5000);
        if (m.rid === r && m.t !== 'ev') return m;
        skipped.push(m);
      }
    } finally {
      c.messages.unshift(...skipped.filter((m) => m.t === 'dashboard'));
    }
  };
  return c;
}

// What a reload shows: the count and the requests of GET /api/otj/pending.
async function reload(srv, who) {
  const r = await call(srv, who, 'GET', '/api/otj/pending');
  assert.equal(r.status, 200, r.text);
  return { count: r.body.count, requests: r.body.requests };
}

before(async () => {
  redis = await startRedis();
  A = await startOtjd({ redis: redis.addr, env: { OTJ_ASK_COOLDOWN: '1' } });
  B = await startOtjd({ redis: redis.addr, dataDir: A.dataDir, demo: false });
});

after(async () => {
  for (const c of clients) c.ws.terminate();
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

test('the pushed request count matches the reload after every change that may end or hide a request', async () => {
  const hygiene = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
  // rita's dashboard lives on B; everything else happens on A
  const rita = await as(B, 'rita');
  const first = await rita.dash(() => true);
  const start = await reload(A, 'rita');
  assert.deepEqual({ count: first.count, requests: first.requests }, start);
  assert.equal(start.requests, 0);

  // lea and leo ask: each ask is pushed with the new count
  assert.equal((await call(A, 'lea', 'POST', '/api/otj/requests', { module: hygiene })).status, 201);
  await rita.dash((m) => m.request && m.request.learner.id === id('lea') && m.requests === 1);
  assert.equal((await call(A, 'leo', 'POST', '/api/otj/requests', { module: hygiene })).status, 201);
  await rita.dash((m) => m.request && m.request.learner.id === id('leo') && m.requests === 2);
  assert.equal((await reload(A, 'rita')).requests, 2);

  // Hand hygiene waits for lea in a second path too: still one request
  const second = await admin('POST', '/api/admin/paths', { title: 'Hygiene refresher', modules: [hygiene] });
  assert.equal(second.status, 201, second.text);
  assert.equal((await admin('POST', '/api/admin/sharings', { path_id: second.body.id, user_id: id('lea') })).status, 201);
  const twoPaths = await rita.dash((m) => m.count === start.count + 1);
  assert.equal(twoPaths.requests, 2, 'one request per learner and module, not per path');
  assert.deepEqual(await reload(A, 'rita'), { count: start.count + 1, requests: 2 });

  // the request ends when lea completes the module (approved in a room)
  const host = await as(A, 'rita');
  const snap = await host.ask({ t: 'open', module: hygiene, learners: [id('lea')] });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  for (const [i, t] of snap.module.tasks.entries()) {
    if (t.kind !== 'observe') continue;
    const ok = await host.ask({ t: 'mark', room: snap.room, learner: id('lea'), task: i, result: 'pass' });
    assert.equal(ok.t, 'ok', JSON.stringify(ok));
  }
  const ap = await host.ask({ t: 'approve', room: snap.room, decisions: [{ learner: id('lea'), approved: true }] });
  assert.equal(ap.results[0].status, 'approved', JSON.stringify(ap));
  const ended = await rita.dash((m) => m.requests === 1);
  assert.equal(ended.count, start.count - 1, 'lea waits in neither path');
  assert.deepEqual(await reload(A, 'rita'), { count: start.count - 1, requests: 1 });
  assert.ok(sql(`SELECT ended_at FROM otj_requests WHERE learner_id=${id('lea')}`).every((r) => r.ended_at), 'lea\'s request ended');
  assert.equal((await host.ask({ t: 'close', room: snap.room })).t, 'ok');

  // a module that no longer waits (OTJ off): its open requests do not count;
  // they count again when it waits again (nobody completed it)
  assert.equal((await admin('PATCH', `/api/admin/modules/${hygiene}`, { otj: false })).status, 200);
  await rita.dash((m) => m.count === 0 && m.requests === 0);
  assert.deepEqual(await reload(A, 'rita'), { count: 0, requests: 0 });
  assert.equal(sql(`SELECT count(*) AS n FROM otj_requests WHERE learner_id=${id('leo')} AND ended_at IS NULL`)[0].n, 1);
  assert.equal((await admin('PATCH', `/api/admin/modules/${hygiene}`, { otj: true })).status, 200);
  await rita.dash((m) => m.requests === 1);
  assert.deepEqual(await reload(A, 'rita'), { count: start.count - 1, requests: 1 });

  // leo moves out of rita's reach: pushed at once, no reconnect
  const kitchen = dept('Kitchen'), ward = dept('Ward 3');
  assert.equal((await admin('PATCH', `/api/admin/users/${id('leo')}`, { department_id: ward })).status, 200);
  await rita.dash((m) => m.requests === 0 && m.count === start.count - 2);
  assert.deepEqual(await reload(A, 'rita'), { count: start.count - 2, requests: 0 });
  assert.equal((await admin('PATCH', `/api/admin/users/${id('leo')}`, { department_id: kitchen })).status, 200);
  await rita.dash((m) => m.requests === 1);

  // rita herself moves to Ward 3: her sockets reconnect and get Ward 3's
  // count (leo's request is not hers any more); moved back, it is again
  assert.equal((await admin('PATCH', `/api/admin/users/${id('rita')}`, { department_id: ward })).status, 200);
  await rita.closed;
  const moved = await as(B, 'rita');
  const there = await moved.dash(() => true);
  const wardReload = await reload(A, 'rita');
  assert.deepEqual({ count: there.count, requests: there.requests }, wardReload);
  assert.equal(there.requests, 0);
  assert.equal((await admin('PATCH', `/api/admin/users/${id('rita')}`, { department_id: kitchen })).status, 200);
  await moved.closed;
  const back = await as(B, 'rita');
  const home = await back.dash(() => true);
  assert.deepEqual({ count: home.count, requests: home.requests }, { count: start.count - 1, requests: 1 });

  // Facilitate OTJ taken away: no more pushes, and the reload is refused
  assert.equal((await admin('PUT', `/api/admin/users/${id('rita')}/permissions`, { management: true, facilitate_otj: false })).status, 200);
  await back.closed;
  const plain = await as(B, 'rita');
  await assert.rejects(plain.dash(() => true, 1500), /no dashboard push/);
  assert.equal((await call(A, 'rita', 'GET', '/api/otj/pending')).status, 403);
  // sam (Plant Bergen) never counted these requests
  const sam = await as(A, 'sam');
  const samDash = await sam.dash(() => true);
  assert.equal(samDash.requests, 0);
  assert.deepEqual(await reload(A, 'sam'), { count: samDash.count, requests: 0 });
});
