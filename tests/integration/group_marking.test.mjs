// Whole-group marking against real otjd and Redis: one `mark` carrying
// several learners is one event with one seq, each learner sees only their
// own part of it, learners marked already keep their mark, and every listed
// learner must be a learner of the room or nothing is applied. Then
// "approve all who passed" in one `approve`: R9 per learner, the ones with a
// fail or no mark listed back and not approved. Each completion keeps the
// learner's attendance (joined/left intervals from presence), shown by the
// API and as minutes present in the CSV export.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startRedis, startOtjd, connectAs, Client, sleep } from './harness.mjs';
import { sqlOf, adminCall, kitchenLearners } from './group_org.mjs';

let redis, srv, sql;
const clients = [];

before(async () => {
  redis = await startRedis();
  srv = await startOtjd({ redis: redis.addr });
  sql = sqlOf(srv);
});

after(async () => {
  for (const c of clients) c.ws.terminate();
  if (srv) { await srv.stopClean(); srv.cleanup(); }
  if (redis) await redis.stop();
});

async function as(login) {
  const c = await connectAs(srv, login);
  clients.push(c);
  return c;
}

async function withToken(token) {
  const c = new Client(srv);
  await c.opened();
  const w = await c.request({ t: 'hello', v: 1, token });
  assert.equal(w.t, 'welcome', JSON.stringify(w));
  c.user = w.user;
  clients.push(c);
  return c;
}

// The next room event of `c` (replies and other frames skipped).
async function nextEv(c, ms = 5000) {
  for (;;) {
    const m = await c.next(ms);
    if (m.t === 'ev') return m;
  }
}

// Events of c until one with seq `seq`, which is returned.
async function evAt(c, seq) {
  for (;;) {
    const m = await nextEv(c);
    if (m.seq === seq) return m;
    assert.ok(m.seq < seq, `seq ${m.seq} came before ${seq}`);
  }
}

function drain(c) { c.messages.length = 0; }

const marksOf = (snap, task) => Object.fromEntries((snap.marks || []).filter((m) => m.task === task).map((m) => [m.learner, m.result]));

test('a group of learners is marked in one mark, and approved in one approve', async () => {
  const HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
  const id = Object.fromEntries(sql(`SELECT login, id FROM users`).map((u) => [u.login, u.id]));
  const cooks = await kitchenLearners(srv, 3);
  const [c1, c2, c3] = cooks;

  const rita = await as('rita');
  const all = [id.lea, id.leo, id.lars, c1.id, c2.id, c3.id];
  const snap = await rita.ask({ t: 'open', module: HH, learners: all });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  const room = snap.room;

  // everyone but cook 3 joins (cook 3 is not present)
  const lea = await as('lea'), leo = await as('leo'), lars = await as('lars');
  const k1 = await withToken(c1.token), k2 = await withToken(c2.token);
  for (const c of [lea, leo, lars, k1, k2]) assert.equal((await c.ask({ t: 'join', room })).t, 'snapshot');

  // lars steps out and comes back: two intervals of attendance
  await sleep(1100);
  assert.equal((await lars.ask({ t: 'leave', room })).t, 'ok');
  await sleep(1100);
  assert.equal((await lars.ask({ t: 'join', room })).t, 'snapshot');

  // leo was marked fail on task 1 before the group pass
  const failed = await rita.ask({ t: 'mark', room, learner: id.leo, task: 1, result: 'fail', note: 'Skipped the soap.' });
  assert.equal(failed.t, 'ok', JSON.stringify(failed));
  for (const c of [rita, lea, leo, lars, k1, k2]) await evAt(c, failed.seq);

  // "Pass everyone present": the five who are here, in one mark
  const present = [id.lea, id.leo, id.lars, c1.id, c2.id];
  const ok = await rita.ask({ t: 'mark', room, learners: present, task: 1, result: 'pass' });
  assert.equal(ok.t, 'ok', JSON.stringify(ok));
  assert.equal(ok.seq, failed.seq + 1, 'one event, one seq, for the whole group');

  // the host sees the whole event: who was marked (not leo, marked already)
  const hostEv = await evAt(rita, ok.seq);
  assert.equal(hostEv.e.type, 'mark');
  assert.deepEqual([...hostEv.e.learners].sort((a, b) => a - b), [id.lea, id.lars, c1.id, c2.id].sort((a, b) => a - b));
  assert.equal(hostEv.e.result, 'pass');
  assert.equal(hostEv.e.task, 1);

  // a learner of the group sees only their own mark, never the others
  for (const [c, me] of [[lea, id.lea], [lars, id.lars], [k1, c1.id], [k2, c2.id]]) {
    const ev = await evAt(c, ok.seq);
    assert.deepEqual(ev.e, { type: 'mark', learner: me, task: 1, result: 'pass' }, `own part for ${me}: ${JSON.stringify(ev.e)}`);
  }
  // leo, outside the group, sees that others were marked, not how
  const leoEv = await evAt(leo, ok.seq);
  assert.equal(leoEv.e.type, 'mark');
  assert.ok(!('result' in leoEv.e) && !('note' in leoEv.e), JSON.stringify(leoEv.e));

  // already-marked learners are untouched; the absent one is not marked
  const after = await (await as('rita')).ask({ t: 'join', room });
  const t1 = marksOf(after, 1);
  assert.equal(t1[id.leo], 'fail', 'leo keeps his fail');
  assert.equal(t1[id.lea], 'pass');
  assert.equal(t1[c3.id], undefined, 'cook 3 was not in the mark');
  // ... also in what leo himself sees on a fresh join
  const leoSnap = await (await as('leo')).ask({ t: 'join', room });
  const leoOwn = leoSnap.marks.find((m) => m.learner === id.leo && m.task === 1);
  assert.equal(leoOwn.result, 'fail');
  assert.equal(leoOwn.note, 'Skipped the soap.');
  for (const m of leoSnap.marks.filter((x) => x.learner !== id.leo)) assert.ok(!('result' in m), JSON.stringify(m));

  // the same group again: everyone is marked already, nothing happens
  drain(rita);
  const again = await rita.ask({ t: 'mark', room, learners: present, task: 1, result: 'fail' });
  assert.equal(again.t, 'ok');
  assert.equal(again.seq, ok.seq, 'no event when nobody is left to mark');

  // a learner cannot mark, alone or as a group
  const byLearner = await lea.ask({ t: 'mark', room, learners: [id.lea, id.lars], task: 2, result: 'pass' });
  assert.equal(byLearner.t, 'err');
  assert.equal(byLearner.code, 'forbidden');

  // a learner not in the room refuses the whole mark: lars is not marked either
  const outsider = await rita.ask({ t: 'mark', room, learners: [id.lars, id.liv], task: 2, result: 'pass' });
  assert.equal(outsider.t, 'err');
  assert.equal(outsider.code, 'not_found');
  assert.match(outsider.msg, new RegExp(`${id.liv}.*nothing was marked`));
  // the host is not a learner of the room
  const host = await rita.ask({ t: 'mark', room, learners: [id.lars, id.rita], task: 2, result: 'pass' });
  assert.equal(host.code, 'not_found', JSON.stringify(host));
  const still = await (await as('rita')).ask({ t: 'join', room });
  assert.equal(marksOf(still, 2)[id.lars], undefined, 'nothing was applied');

  // bad input: a clear err, the connection stays
  const bad = [
    [{ learners: [] }, 'bad_request', /at least one/],
    [{ learners: [id.lea], learner: id.lea }, 'bad_request', /either 'learner' or 'learners'/],
    [{ learners: [id.lea, id.lea] }, 'bad_request', /listed twice/],
    [{ learners: [id.lea, 'x'] }, 'bad_request', /learners\[1\]/],
    [{ learners: Array.from({ length: 201 }, (_, i) => i + 1) }, 'too_large', /at most 200/],
    [{ learners: [id.lea], task: 0 }, 'conflict', /question/],
  ];
  for (const [extra, code, msg] of bad) {
    const r = await rita.ask({ t: 'mark', room, task: 2, result: 'pass', ...extra });
    assert.equal(r.t, 'err', JSON.stringify(extra));
    assert.equal(r.code, code, `${JSON.stringify(extra).slice(0, 60)}: ${r.msg}`);
    assert.match(r.msg, msg);
  }

  // tasks 2 and 3 for everyone present; a note rides along for each
  for (const task of [2, 3]) {
    const r = await rita.ask({ t: 'mark', room, learners: present, task, result: 'pass', note: 'Good.' });
    assert.equal(r.t, 'ok', JSON.stringify(r));
  }
  const k1Snap = await (await withToken(c1.token)).ask({ t: 'join', room });
  assert.deepEqual(k1Snap.marks.filter((m) => m.learner === c1.id && m.task === 3).map((m) => [m.result, m.note]), [['pass', 'Good.']]);

  // attendance: cook 1 has been here ten minutes (the hash as room.lua keeps it)
  const tenMin = Date.now() - 10 * 60 * 1000;
  execFileSync('redis-cli', ['-p', String(redis.port), 'HSET', `otj:r:{${room}}:attendance`, String(c1.id), `0;${tenMin}-`]);

  // "Approve all who passed": one approve for every undecided learner
  const res = await rita.ask({ t: 'approve', room, decisions: all.map((learner) => ({ learner, approved: true })) });
  assert.equal(res.t, 'approved', JSON.stringify(res));
  const st = Object.fromEntries(res.results.map((r) => [r.learner, r]));
  for (const l of [id.lea, id.lars, c1.id, c2.id]) assert.equal(st[l].status, 'approved', JSON.stringify(st[l]));
  assert.equal(st[id.leo].status, 'refused', 'leo failed task 1');
  assert.match(st[id.leo].reason, /fail/i);
  assert.equal(st[c3.id].status, 'refused', 'cook 3 was never marked');
  assert.match(st[c3.id].reason, /not marked|mark/i);
  const done = sql(`SELECT user_id FROM completions WHERE module_id=${HH} AND room_id='${room}'`).map((r) => r.user_id);
  assert.ok(!done.includes(id.leo) && !done.includes(c3.id), 'no completion for the refused');
  assert.equal(done.length, 4);

  // attendance in the API
  const admin = (await fetch(`${srv.base}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login: 'rita', password: 'otj-demo' }) }).then((r) => r.json())).token;
  const list = await adminCall(srv, admin, 'GET', '/api/completions');
  assert.equal(list.status, 200);
  const byUser = Object.fromEntries(list.body.items.filter((c) => c.module.id === HH).map((c) => [c.learner.id, c]));
  const att = (u) => byUser[u].attendance;
  assert.equal(att(c1.id).minutes, 10);
  assert.ok(att(c1.id).seconds >= 600 && att(c1.id).seconds < 620, JSON.stringify(att(c1.id)));
  assert.equal(att(id.lars).intervals.length, 2, `lars left and came back: ${JSON.stringify(att(id.lars))}`);
  const [i1, i2] = att(id.lars).intervals;
  assert.ok(i1.from <= i1.to && i1.to <= i2.from && i2.from <= i2.to, JSON.stringify(att(id.lars)));
  assert.equal(att(id.lea).intervals.length, 1);
  assert.equal(att(id.lea).minutes, 0, 'seconds, not minutes, in this test');
  assert.ok(att(id.lea).seconds >= 2, JSON.stringify(att(id.lea)));
  // a completion without a room has no attendance
  const alone = list.body.items.find((c) => c.module.title === 'Food safety basics');
  assert.equal(alone.attendance, null);

  // and in the CSV, as a new column of minutes
  const csv = await adminCall(srv, admin, 'GET', '/api/completions?format=csv');
  assert.equal(csv.status, 200);
  const rows = csv.text.trim().split('\r\n').map((l) => l.split(','));
  const head = rows[0];
  assert.ok(head.includes('minutes_present'), head.join(','));
  const col = (n) => head.indexOf(n);
  const row = (login) => rows.find((r) => r[col('login')] === login && r[col('module')] === 'Hand hygiene');
  assert.equal(row(c1.login)[col('minutes_present')], '10');
  assert.equal(row('lea')[col('minutes_present')], '0');
  assert.equal(rows.find((r) => r[col('module')] === 'Food safety basics')[col('minutes_present')], '');

  // the server keeps serving
  assert.equal((await rita.ask({ t: 'ping' })).t, 'pong');
});

test('a learner of another room, or a room the host is not in, cannot be group-marked', async () => {
  const HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
  const LT = sql(`SELECT id FROM modules WHERE title='Lock-out/tag-out'`)[0].id;
  const id = Object.fromEntries(sql(`SELECT login, id FROM users`).map((u) => [u.login, u.id]));
  const sam = await as('sam');
  const line = await sam.ask({ t: 'open', module: LT, learners: [id.omar, id.ola] });
  assert.equal(line.t, 'snapshot', JSON.stringify(line));
  // rita is not in sam's room: she cannot mark its learners
  const rita = await as('rita');
  const r = await rita.ask({ t: 'mark', room: line.room, learners: [id.omar], task: 0, result: 'pass' });
  assert.equal(r.code, 'not_found', JSON.stringify(r));
  // sam's group mark works in his own room, for his learners only
  const ok = await sam.ask({ t: 'mark', room: line.room, learners: [id.omar, id.ola], task: 0, result: 'pass' });
  assert.equal(ok.t, 'ok', JSON.stringify(ok));
  const wrong = await sam.ask({ t: 'mark', room: line.room, learners: [id.omar, id.lea], task: 1, result: 'pass' });
  assert.equal(wrong.code, 'not_found', JSON.stringify(wrong));
  void HH;
});
