// A completion's times in GET /api/completions and its CSV: decided_at (the
// responsible's approval), confirmed_at (the learner's confirmation; null
// where the module does not ask for it), expires_at and expired. A sign-off
// both sides confirmed shows both; an ordinary approval only its decision;
// a module completed alone neither.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startRedis, startOtjd, connectAs, login, sleep } from './harness.mjs';

let redis, srv, ids, HH, LOTO;
const clients = [];

function sql(query) {
  const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000', `${srv.dataDir}/otj.db`, query]).toString();
  return out.trim() ? JSON.parse(out) : [];
}

async function get(who, path) {
  const { body } = await login(srv, who);
  const r = await fetch(`${srv.base}${path}`, { headers: { authorization: `Bearer ${body.token}` } });
  return { status: r.status, text: await r.text() };
}

async function as(login) {
  const c = await connectAs(srv, login);
  clients.push(c);
  return c;
}

// host opens a room of `module` for `learner` and passes every observe task.
async function passed(host, module, learner, tasks) {
  const snap = await host.ask({ t: 'open', module, learners: [learner] });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  for (const task of tasks)
    assert.equal((await host.ask({ t: 'mark', room: snap.room, learner, task, result: 'pass' })).t, 'ok');
  return snap.room;
}

before(async () => {
  redis = await startRedis();
  srv = await startOtjd({ redis: redis.addr });
  ids = {};
  for (const u of ['lea', 'omar', 'kai']) ids[u] = sql(`SELECT id FROM users WHERE login='${u}'`)[0].id;
  HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
  LOTO = sql(`SELECT id FROM modules WHERE title='Lock-out/tag-out'`)[0].id;
  const { body } = await login(srv, 'admin');
  const r = await fetch(`${srv.base}/api/admin/modules/${HH}`, {
    method: 'PATCH', headers: { 'content-type': 'application/json', authorization: `Bearer ${body.token}` },
    body: JSON.stringify({ learner_confirm: true }),
  });
  assert.equal(r.status, 200);

  // lea: Hand hygiene, approved by rita, confirmed by lea a moment later
  const rita = await as('rita');
  const room = await passed(rita, HH, ids.lea, [1, 2, 3]);
  const lea = await as('lea');
  assert.equal((await lea.ask({ t: 'join', room })).t, 'snapshot');
  const ap = await rita.ask({ t: 'approve', room, decisions: [{ learner: ids.lea, approved: true }] });
  assert.equal(ap.results[0].status, 'pending', JSON.stringify(ap));
  await sleep(1100); // the confirmation comes at least a second after the decision
  let code = await rita.ask({ t: 'confirm_code', room });
  if (code.ms < 1500) { await sleep(code.ms + 100); code = await rita.ask({ t: 'confirm_code', room }); }
  assert.equal((await lea.ask({ t: 'confirm', room, code: code.code })).t, 'ok');

  // omar: Lock-out/tag-out, approved by sam, no confirmation asked
  const sam = await as('sam');
  const room2 = await passed(sam, LOTO, ids.omar, [0, 1, 2]);
  const ap2 = await sam.ask({ t: 'approve', room: room2, decisions: [{ learner: ids.omar, approved: true }] });
  assert.equal(ap2.results[0].status, 'approved', JSON.stringify(ap2));
});

after(async () => {
  for (const c of clients) c.ws.terminate();
  await srv?.stopClean();
  srv?.cleanup();
  await redis?.stop();
});

const itemsOf = async (who) => JSON.parse((await get(who, '/api/completions')).text).items;

test('a confirmed sign-off carries both times; an ordinary approval its decision; a module done alone neither', async () => {
  const items = await itemsOf('admin');
  const one = (login, title) => items.find((c) => c.learner.login === login && c.module.title === title);

  const lea = one('lea', 'Hand hygiene');
  const row = sql(`SELECT decided_at, confirmed_at, completed_at FROM completions WHERE id=${lea.id}`)[0];
  assert.equal(lea.decided_at, row.decided_at);
  assert.equal(lea.confirmed_at, row.confirmed_at);
  assert.ok(lea.confirmed_at > lea.decided_at, JSON.stringify(lea));
  assert.equal(lea.completed_at, lea.confirmed_at, 'completed when confirmed');
  assert.equal(typeof lea.expires_at, 'number', 'Hand hygiene is valid for 12 months');
  assert.equal(lea.expired, false);

  const omar = one('omar', 'Lock-out/tag-out');
  assert.equal(omar.decided_at, omar.completed_at, 'an approval without confirmation: decided when completed');
  assert.equal(omar.confirmed_at, null);
  assert.equal(omar.expires_at, null);
  assert.equal(omar.expired, false);

  const alone = one('lea', 'Food safety basics');
  assert.equal(alone.approved_by, null);
  assert.equal(alone.decided_at, null, 'nobody approved it');
  assert.equal(alone.confirmed_at, null);

  const kai = one('kai', 'Hand hygiene'); // the demo's: approved almost a year ago
  assert.equal(typeof kai.decided_at, 'number');
  assert.equal(kai.confirmed_at, null, 'approved before the module asked for confirmation');
});

test('the CSV ends with decided_at and confirmed_at (ISO 8601, empty where none)', async () => {
  const csv = await get('admin', '/api/completions?format=csv');
  assert.equal(csv.status, 200);
  const lines = csv.text.trim().split('\r\n').map((l) => l.split(','));
  const head = lines[0];
  assert.deepEqual(head.slice(-4), ['expires_at', 'expired', 'decided_at', 'confirmed_at']);
  const col = (n) => head.indexOf(n);
  const row = (login, module) => lines.find((r) => r[col('login')] === login && r[col('module')] === module);
  const iso = (s) => new Date(s * 1000).toISOString().replace('.000Z', 'Z');
  const lea = (await itemsOf('admin')).find((c) => c.learner.login === 'lea' && c.module.title === 'Hand hygiene');
  assert.equal(row('lea', 'Hand hygiene')[col('decided_at')], iso(lea.decided_at));
  assert.equal(row('lea', 'Hand hygiene')[col('confirmed_at')], iso(lea.confirmed_at));
  assert.equal(row('lea', 'Hand hygiene')[col('expired')], 'no');
  assert.match(row('omar', 'Lock-out/tag-out')[col('decided_at')], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(row('omar', 'Lock-out/tag-out')[col('confirmed_at')], '');
  assert.equal(row('lea', 'Food safety basics')[col('decided_at')], '');
  assert.ok(lines.every((r) => r.length === head.length), 'every row has every column');
});

test('the times follow the scope: a learner sees her own only, a responsible those within reach', async () => {
  const mine = await itemsOf('lea');
  assert.ok(mine.every((c) => c.learner.login === 'lea'));
  assert.equal(typeof mine.find((c) => c.module.title === 'Hand hygiene').confirmed_at, 'number');
  const sams = await itemsOf('sam');
  assert.deepEqual(sams.map((c) => c.learner.login), ['omar'], 'sam reaches the Assembly line only');
  assert.equal((await get('omar', '/api/completions?format=xml')).status, 400, 'an unknown format is refused');
  assert.equal((await fetch(`${srv.base}/api/completions`)).status, 401, 'no session, no list');
});
