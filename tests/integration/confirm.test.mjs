// Sign-off that both sides confirm: a module that requires the learner's
// confirmation turns an approval into `pending` until the learner types the
// six-digit code the responsible's room screen shows (it changes every 30 s).
// Only then is there a completion, keeping both times. Wrong, stale and
// foreign codes are refused with `bad_code`, tries are rate limited, and a
// module without the flag behaves as before.
//
// Stale codes are tested without waiting: a second otjd shares Redis and the
// database but runs with OTJ_TEST_NOW_OFFSET (test only), which shifts the
// clock its codes are computed from.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startRedis, startOtjd, connectAs, login, sleep } from './harness.mjs';

function sqlOf(srv) {
  return (query) => {
    const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000',
      `${srv.dataDir}/otj.db`, query]).toString();
    return out.trim() ? JSON.parse(out) : [];
  };
}

// The next room event of `type` (about `learner`, when given) that c receives.
async function eventOf(c, type, learner, ms = 5000) {
  for (;;) {
    const m = await c.next(ms);
    if (m.t === 'ev' && m.e.type === type && (learner === undefined || m.e.learner === learner))
      return m;
  }
}

async function adminPatchModule(srv, id, body) {
  const { body: auth } = await login(srv, 'admin');
  const r = await fetch(`${srv.base}/api/admin/modules/${id}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${auth.token}` },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

async function pendingFor(srv, who) {
  const { body: auth } = await login(srv, who);
  const r = await fetch(`${srv.base}/api/otj/pending`,
    { headers: { authorization: `Bearer ${auth.token}` } });
  return JSON.stringify(await r.json());
}

// The code rita's screen shows now, with at least `atLeast` ms left.
async function codeOf(host, room, atLeast = 1500) {
  let c = await host.ask({ t: 'confirm_code', room });
  assert.equal(c.t, 'confirm_code', JSON.stringify(c));
  if (c.ms < atLeast) {
    await sleep(c.ms + 100);
    c = await host.ask({ t: 'confirm_code', room });
  }
  assert.match(c.code, /^\d{6}$/);
  assert.ok(c.ms > 0 && c.ms <= 30000, `ms ${c.ms}`);
  return c;
}

const other = (code) => String((Number(code) + 1) % 1000000).padStart(6, '0');

// A room of Hand hygiene with every observe task marked pass for learners.
async function drill(rita, HH, learners) {
  const snap = await rita.ask({ t: 'open', module: HH, learners });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  for (const learner of learners)
    for (const task of [1, 2, 3])
      assert.equal((await rita.ask({ t: 'mark', room: snap.room, learner, task, result: 'pass' })).t, 'ok');
  return snap;
}

async function setup() {
  const redis = await startRedis();
  const srv = await startOtjd({ redis: redis.addr });
  const sql = sqlOf(srv);
  const id = (login) => sql(`SELECT id FROM users WHERE login='${login}'`)[0].id;
  const HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
  const started = [srv];
  return {
    redis, srv, sql, HH, lea: id('lea'), leo: id('leo'), lars: id('lars'),
    // another otjd on the same Redis and database, its code clock shifted
    async shifted(seconds) {
      const b = await startOtjd({ redis: redis.addr, dataDir: srv.dataDir, demo: false,
        env: { OTJ_TEST_NOW_OFFSET: String(seconds) } });
      started.push(b);
      return b;
    },
    async stop() {
      for (const s of started.reverse()) { await s.stop(); }
      srv.cleanup();
      await redis.stop();
    },
  };
}

test('the module flag: set by an administrator, shown in the module, refused when not a boolean', async () => {
  const t = await setup();
  try {
    assert.equal(t.sql(`SELECT learner_confirm FROM modules WHERE id=${t.HH}`)[0].learner_confirm, 0);
    const bad = await adminPatchModule(t.srv, t.HH, { learner_confirm: 'yes' });
    assert.equal(bad.status, 400, JSON.stringify(bad));
    assert.equal(t.sql(`SELECT learner_confirm FROM modules WHERE id=${t.HH}`)[0].learner_confirm, 0);
    const ok = await adminPatchModule(t.srv, t.HH, { learner_confirm: true });
    assert.equal(ok.status, 200, JSON.stringify(ok));
    assert.equal(ok.body.learner_confirm, true);
    assert.equal(ok.body.otj, true, 'the rest of the module is unchanged');
    assert.equal(t.sql(`SELECT count(*) n FROM audit WHERE action='module.learner_confirm_on'`)[0].n, 1);
    // a learner cannot change it
    const { body: auth } = await login(t.srv, 'lea');
    const r = await fetch(`${t.srv.base}/api/admin/modules/${t.HH}`, {
      method: 'PATCH', body: JSON.stringify({ learner_confirm: false }),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${auth.token}` } });
    assert.equal(r.status, 403);
    const off = await adminPatchModule(t.srv, t.HH, { title: 'Hand hygiene' });
    assert.equal(off.body.learner_confirm, true, 'a PATCH without the field leaves it');
  } finally {
    await t.stop();
  }
});

test('right code: pending until the learner confirms, then one completion with both times', async () => {
  const t = await setup();
  try {
    assert.equal((await adminPatchModule(t.srv, t.HH, { learner_confirm: true })).status, 200);
    const rita = await connectAs(t.srv, 'rita');
    const snap = await drill(rita, t.HH, [t.lea, t.leo]);
    assert.equal(snap.module.confirm, true, 'the snapshot says approvals wait for the learner');
    const lea = await connectAs(t.srv, 'lea');
    const leo = await connectAs(t.srv, 'leo');
    assert.equal((await lea.ask({ t: 'join', room: snap.room })).t, 'snapshot');
    assert.equal((await leo.ask({ t: 'join', room: snap.room })).t, 'snapshot');

    const before = Math.floor(Date.now() / 1000);
    const res = await rita.ask({ t: 'approve', room: snap.room, decisions: [{ learner: t.lea, approved: true }] });
    assert.equal(res.t, 'approved', JSON.stringify(res));
    assert.deepEqual(res.results, [{ learner: t.lea, status: 'pending' }]);
    const evp = await eventOf(lea, 'approved', t.lea);
    assert.equal(evp.e.status, 'pending');
    // nothing is a completion yet: lea still waits, on every dashboard
    assert.equal(t.sql(`SELECT count(*) n FROM completions WHERE user_id=${t.lea} AND module_id=${t.HH}`)[0].n, 0);
    assert.equal(t.sql(`SELECT state FROM otj_confirmations WHERE user_id=${t.lea}`)[0].state, 'pending');
    assert.match(await pendingFor(t.srv, 'rita'), new RegExp(`"id":\\s*${t.lea}\\b|Lea`));
    const forLea = await lea.ask({ t: 'join', room: snap.room });
    assert.deepEqual(forLea.outcomes.find((o) => o.learner === t.lea), { learner: t.lea, status: 'pending' });

    // a wrong code is refused, and changes nothing
    const shown = await codeOf(rita, snap.room);
    const wrong = await lea.ask({ t: 'confirm', room: snap.room, code: other(shown.code) });
    assert.equal(wrong.t, 'err');
    assert.equal(wrong.code, 'bad_code', JSON.stringify(wrong));
    const notDigits = await lea.ask({ t: 'confirm', room: snap.room, code: 'abc' });
    assert.equal(notDigits.code, 'bad_code');
    assert.equal((await lea.ask({ t: 'confirm', room: snap.room })).code, 'bad_request', 'code is required');
    assert.equal(t.sql(`SELECT count(*) n FROM completions WHERE user_id=${t.lea} AND module_id=${t.HH}`)[0].n, 0);

    // the host cannot confirm for the learner, a learner cannot ask the code
    assert.equal((await rita.ask({ t: 'confirm', room: snap.room, code: shown.code })).code, 'forbidden');
    assert.equal((await lea.ask({ t: 'confirm_code', room: snap.room })).code, 'forbidden');

    // the right code: ok only after the completion is on disk
    const right = await codeOf(rita, snap.room);
    const ok = await lea.ask({ t: 'confirm', room: snap.room, code: right.code });
    assert.equal(ok.t, 'ok', JSON.stringify(ok));
    const row = t.sql(`SELECT id, decided_at, confirmed_at, completed_at, approved_by, room_id
      FROM completions WHERE user_id=${t.lea} AND module_id=${t.HH}`);
    assert.equal(row.length, 1);
    assert.ok(row[0].decided_at >= before && row[0].confirmed_at >= row[0].decided_at, JSON.stringify(row));
    assert.equal(row[0].completed_at, row[0].confirmed_at);
    assert.equal(row[0].approved_by, rita.user.id);
    assert.equal(row[0].room_id, snap.room);
    assert.equal(t.sql(`SELECT state FROM otj_confirmations WHERE user_id=${t.lea}`)[0].state, 'confirmed');
    assert.equal(t.sql(`SELECT count(*) n FROM audit WHERE action='otj.confirmed' AND actor_id=${t.lea}`)[0].n, 1);
    // the printable record shows both sides of the sign-off, and her time in the room
    const rec = await (await fetch(`${t.srv.base}/api/completions/${row[0].id}`,
      { headers: { authorization: `Bearer ${lea.token}` } })).json();
    assert.equal(rec.decided.at, row[0].decided_at);
    assert.equal(rec.confirmed.at, row[0].confirmed_at);
    assert.equal(typeof rec.attendance.minutes, 'number', JSON.stringify(rec.attendance));

    // the responsible sees it arrive, whole; the other learner only that it came
    const forRita = await eventOf(rita, 'confirmed', t.lea);
    assert.deepEqual(forRita.e, { type: 'confirmed', learner: t.lea, completion: row[0].id,
      decided_at: row[0].decided_at, confirmed_at: row[0].confirmed_at });
    assert.deepEqual((await eventOf(leo, 'confirmed', t.lea)).e, { type: 'confirmed', learner: t.lea });
    assert.equal((await eventOf(lea, 'confirmed', t.lea)).e.completion, row[0].id);
    // and a fresh snapshot says approved, with the completion
    const after = await rita.ask({ t: 'join', room: snap.room });
    assert.deepEqual(after.outcomes.find((o) => o.learner === t.lea),
      { learner: t.lea, status: 'approved', completion: row[0].id });

    // confirming again: nothing waits any more; approving again: the same completion (R10)
    const again = await lea.ask({ t: 'confirm', room: snap.room, code: (await codeOf(rita, snap.room)).code });
    assert.equal(again.code, 'conflict', JSON.stringify(again));
    const re = await rita.ask({ t: 'approve', room: snap.room, decisions: [{ learner: t.lea, approved: true }] });
    assert.deepEqual(re.results, [{ learner: t.lea, status: 'approved', completion: row[0].id }]);
    assert.equal(t.sql(`SELECT count(*) n FROM completions WHERE user_id=${t.lea} AND module_id=${t.HH}`)[0].n, 1);
    assert.equal((await lea.ask({ t: 'ping' })).t, 'pong', 'the server keeps serving');
    await t.srv.stopClean();
  } finally {
    await t.stop();
  }
});

test('a stale code is refused; the code of a moment ago is still taken for a few seconds', async () => {
  const t = await setup();
  try {
    assert.equal((await adminPatchModule(t.srv, t.HH, { learner_confirm: true })).status, 200);
    const rita = await connectAs(t.srv, 'rita');
    const snap = await drill(rita, t.HH, [t.leo]);
    assert.deepEqual((await rita.ask({ t: 'approve', room: snap.room,
      decisions: [{ learner: t.leo, approved: true }] })).results, [{ learner: t.leo, status: 'pending' }]);

    // an instance whose clock is 45 s ahead: rita's code is at least 15 s
    // past its change there, beyond the grace
    const late = await t.shifted(45);
    const leoLate = await connectAs(late, 'leo');
    assert.equal((await leoLate.ask({ t: 'join', room: snap.room })).t, 'snapshot');
    const stale = await leoLate.ask({ t: 'confirm', room: snap.room, code: (await codeOf(rita, snap.room, 5000)).code });
    assert.equal(stale.code, 'bad_code', JSON.stringify(stale));
    assert.equal(t.sql(`SELECT count(*) n FROM completions WHERE user_id=${t.leo} AND module_id=${t.HH}`)[0].n, 0);

    // an instance whose clock is just past the change of rita's code: 1 s
    // into the next period, within the grace, so it is taken
    const shown = await codeOf(rita, snap.room, 0);
    const since = Date.now();
    const justAfter = await t.shifted((shown.ms + 1000) / 1000);
    const leoJust = await connectAs(justAfter, 'leo');
    assert.equal((await leoJust.ask({ t: 'join', room: snap.room })).t, 'snapshot');
    const ok = await leoJust.ask({ t: 'confirm', room: snap.room, code: shown.code });
    assert.ok(Date.now() - since < 8000, 'the test itself stayed within the grace');
    assert.equal(ok.t, 'ok', JSON.stringify(ok));
    assert.equal(t.sql(`SELECT count(*) n FROM completions WHERE user_id=${t.leo} AND module_id=${t.HH}`)[0].n, 1);
  } finally {
    await t.stop();
  }
});

test('another room\'s code, a room not joined and too many tries are refused', async () => {
  const t = await setup();
  try {
    assert.equal((await adminPatchModule(t.srv, t.HH, { learner_confirm: true })).status, 200);
    const rita = await connectAs(t.srv, 'rita');
    const one = await drill(rita, t.HH, [t.lea, t.leo]);
    const two = await drill(rita, t.HH, [t.lars]);
    assert.notEqual(one.room, two.room);
    for (const [room, learners] of [[one.room, [t.lea, t.leo]], [two.room, [t.lars]]]) {
      const r = await rita.ask({ t: 'approve', room, decisions: learners.map((learner) => ({ learner, approved: true })) });
      assert.ok(r.results.every((x) => x.status === 'pending'), JSON.stringify(r));
    }
    const lea = await connectAs(t.srv, 'lea');
    const leo = await connectAs(t.srv, 'leo');
    assert.equal((await lea.ask({ t: 'join', room: one.room })).t, 'snapshot');
    assert.equal((await leo.ask({ t: 'join', room: one.room })).t, 'snapshot');

    // the code of room two, typed in room one
    const codeOne = await codeOf(rita, one.room);
    const codeTwo = await codeOf(rita, two.room);
    if (codeTwo.code !== codeOne.code) {
      const foreign = await lea.ask({ t: 'confirm', room: one.room, code: codeTwo.code });
      assert.equal(foreign.code, 'bad_code', JSON.stringify(foreign));
    }
    // confirming in a room one is not in
    const notIn = await lea.ask({ t: 'confirm', room: two.room, code: codeTwo.code });
    assert.equal(notIn.code, 'not_found', JSON.stringify(notIn));
    assert.equal(t.sql(`SELECT count(*) n FROM completions WHERE user_id IN (${t.lea}, ${t.lars}) AND module_id=${t.HH}`)[0].n, 0);

    // five tries a minute per learner per room (the foreign code was one)
    for (let i = 0; i < 4; i++) {
      const w = await lea.ask({ t: 'confirm', room: one.room, code: other((await codeOf(rita, one.room)).code) });
      assert.equal(w.code, 'bad_code', `try ${i + 2}: ${JSON.stringify(w)}`);
    }
    const limited = await lea.ask({ t: 'confirm', room: one.room, code: (await codeOf(rita, one.room)).code });
    assert.equal(limited.code, 'rate_limited', 'even the right code waits: ' + JSON.stringify(limited));
    assert.equal(t.sql(`SELECT count(*) n FROM completions WHERE user_id=${t.lea} AND module_id=${t.HH}`)[0].n, 0);
    // another learner of the same room is not held up by lea's tries
    const leoOk = await leo.ask({ t: 'confirm', room: one.room, code: (await codeOf(rita, one.room)).code });
    assert.equal(leoOk.t, 'ok', JSON.stringify(leoOk));
    assert.equal((await lea.ask({ t: 'ping' })).t, 'pong');

    // the room closes before lars confirms: his approval lapses, he still waits
    assert.equal((await rita.ask({ t: 'close', room: two.room })).t, 'ok');
    await sleep(300);
    assert.equal(t.sql(`SELECT state FROM otj_confirmations WHERE user_id=${t.lars}`)[0].state, 'lapsed');
    const lars = await connectAs(t.srv, 'lars');
    assert.equal((await lars.ask({ t: 'join', room: two.room })).state, 'closed');
    const late = await lars.ask({ t: 'confirm', room: two.room, code: codeTwo.code });
    assert.equal(late.code, 'conflict', JSON.stringify(late));
    assert.equal(t.sql(`SELECT count(*) n FROM completions WHERE user_id=${t.lars} AND module_id=${t.HH}`)[0].n, 0);
    assert.match(await pendingFor(t.srv, 'rita'), /Lars/);
  } finally {
    await t.stop();
  }
});

test('a module without the flag is approved at once, and has nothing to confirm', async () => {
  const t = await setup();
  try {
    const rita = await connectAs(t.srv, 'rita');
    const snap = await drill(rita, t.HH, [t.lea]);
    assert.equal(snap.module.confirm, undefined);
    const res = await rita.ask({ t: 'approve', room: snap.room, decisions: [{ learner: t.lea, approved: true }] });
    assert.equal(res.results[0].status, 'approved');
    const row = t.sql(`SELECT id, decided_at, confirmed_at FROM completions WHERE user_id=${t.lea} AND module_id=${t.HH}`);
    assert.deepEqual(row, [{ id: res.results[0].completion, decided_at: null, confirmed_at: null }]);
    const lea = await connectAs(t.srv, 'lea');
    assert.equal((await lea.ask({ t: 'join', room: snap.room })).t, 'snapshot');
    const c = await lea.ask({ t: 'confirm', room: snap.room, code: (await codeOf(rita, snap.room)).code });
    assert.equal(c.code, 'conflict', JSON.stringify(c));
    assert.equal(t.sql(`SELECT count(*) n FROM otj_confirmations`)[0].n, 0);
  } finally {
    await t.stop();
  }
});

test('the import takes learner_confirm, and refuses it when it is not a boolean', async () => {
  const t = await setup();
  try {
    const { body: auth } = await login(t.srv, 'admin');
    const imp = (doc) => fetch(`${t.srv.base}/api/admin/import`, {
      method: 'POST', body: JSON.stringify(doc),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${auth.token}` } });
    const bad = await imp({ modules: [{ title: 'Ladder check', type: 'quiz', otj: true, learner_confirm: 'yes' }] });
    assert.equal(bad.status, 422, await bad.text());
    assert.equal(t.sql(`SELECT count(*) n FROM modules WHERE title='Ladder check'`)[0].n, 0);
    const ok = await imp({ modules: [
      { title: 'Ladder check', type: 'quiz', otj: true, learner_confirm: true, tasks: [{ kind: 'observe', text: 'Checks the feet' }] },
      { title: 'Mop safety', type: 'quiz', otj: true, tasks: [{ kind: 'observe', text: 'Puts up the sign' }] }] });
    assert.equal(ok.status, 200, await ok.text());
    assert.deepEqual(t.sql(`SELECT title, learner_confirm FROM modules WHERE title IN ('Ladder check', 'Mop safety') ORDER BY title`),
      [{ title: 'Ladder check', learner_confirm: 1 }, { title: 'Mop safety', learner_confirm: 0 }]);
  } finally {
    await t.stop();
  }
});
