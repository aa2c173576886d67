// Live OTJ rooms against real processes: one redis-server, two otjd
// instances sharing it and one SQLite file. The demo drill, who may do
// what, order across instances, reconnect + sync, visibility.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startRedis, startOtjd, connectAs, login, sleep } from './harness.mjs';

let redis, A, B;

function sql(query) {
  const out = execFileSync('sqlite3', ['-json', `${A.dataDir}/otj.db`, query]).toString();
  return out.trim() ? JSON.parse(out) : [];
}
const id = (login) => sql(`SELECT id FROM users WHERE login='${login}'`)[0].id;
const moduleId = (title) => sql(`SELECT id FROM modules WHERE title='${title}'`)[0].id;

before(async () => {
  redis = await startRedis();
  A = await startOtjd({ redis: redis.addr });
  B = await startOtjd({ redis: redis.addr, dataDir: A.dataDir, demo: false });
});

after(async () => {
  try {
    if (B) await B.stopClean();
    if (A) await A.stopClean();
  } finally {
    if (A) A.cleanup();
    if (redis) await redis.stop();
  }
});

// Every message a client receives, with helpers to wait for a reply or an event.
function track(c) {
  c.events = [];     // ev frames, in arrival order
  c.others = [];     // everything else not yet consumed
  c.pump = async (pred, ms = 5000) => {
    const i = c.others.findIndex(pred);
    if (i >= 0) return c.others.splice(i, 1)[0];
    const until = Date.now() + ms;
    for (;;) {
      const m = await c.next(Math.max(1, until - Date.now()));
      if (m.t === 'ev') {
        // a sync may repeat events this client has: keep one of each seq,
        // and they must be the same event
        const twin = c.events.find((e) => e.room === m.room && e.seq === m.seq);
        if (twin) assert.deepEqual(twin.e, m.e, `seq ${m.seq} seen twice, different`);
        else c.events.push(m);
      }
      if (pred(m)) return m;
      if (m.t !== 'ev') c.others.push(m);
    }
  };
  let rid = 1000;
  c.ask = async (msg) => {
    const r = ++rid;
    c.send({ ...msg, rid: r });
    return c.pump((m) => m.rid === r && m.t !== 'ev');
  };
  c.untilSeq = (room, seq) => c.events.some((e) => e.room === room && e.seq >= seq)
    ? Promise.resolve() : c.pump((m) => m.t === 'ev' && m.room === room && m.seq >= seq);
  return c;
}

async function as(srv, name) { return track(await connectAs(srv, name)); }

// The seqs a client holds for a room, checked to have no hole.
function gapless(events, room) {
  const seqs = events.filter((e) => e.room === room).map((e) => e.seq).sort((a, b) => a - b);
  for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[0] + i, `gap in ${seqs}`);
  return seqs;
}

async function pendingOf(srv, who) {
  const { body } = await login(srv, who);
  const r = await fetch(`${srv.base}/api/otj/pending`, { headers: { authorization: `Bearer ${body.token}` } });
  return { status: r.status, body: r.status === 200 ? await r.json() : null };
}

test('the demo drill: open, join by code, answer, mark, approve across two instances', async () => {
  const HH = moduleId('Hand hygiene');
  const [lea, leo, lars] = ['lea', 'leo', 'lars'].map(id);

  const rita = await as(A, 'rita');                   // the responsible on instance A
  const cLea = await as(B, 'lea');                    // learners on instance B
  const cLeo = await as(B, 'leo');
  const cLars = await as(B, 'lars');

  // mark may not open a room (Management without Facilitate OTJ)
  const cMark = await as(A, 'mark');
  const mOpen = await cMark.ask({ t: 'open', module: HH, learners: [lea] });
  assert.equal(mOpen.t, 'err');
  assert.equal(mOpen.code, 'forbidden');

  const snap = await rita.ask({ t: 'open', module: HH, learners: [lea, leo] });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  assert.match(snap.code, /^\d{6}$/);
  assert.equal(snap.module.title, 'Hand hygiene');
  assert.equal(snap.module.tasks.length, 4);
  assert.deepEqual(snap.learners.map((l) => l.id).sort(), [lea, leo].sort());
  const room = snap.room;

  // the added learners are invited on their phones
  const inv = await cLea.pump((m) => m.t === 'invite');
  assert.equal(inv.room, room);
  assert.equal(inv.code, snap.code);
  assert.equal(inv.module.title, 'Hand hygiene');

  for (const c of [cLea, cLeo]) {
    const s = await c.ask({ t: 'join', code: snap.code });
    assert.equal(s.t, 'snapshot', JSON.stringify(s));
    assert.equal(s.room, room);
  }
  // lars was not added: he joins with the code (within reach, waiting)
  const sLars = await cLars.ask({ t: 'join', code: snap.code });
  assert.equal(sLars.t, 'snapshot', JSON.stringify(sLars));
  assert.ok(sLars.learners.some((l) => l.id === lars));

  // omar holds the right code but is not within rita's reach
  const cOmar = await as(B, 'omar');
  const oj = await cOmar.ask({ t: 'join', code: snap.code });
  assert.equal(oj.t, 'err');
  assert.equal(oj.code, 'forbidden');
  // a wrong code is not_found
  const wrong = await cOmar.ask({ t: 'join', code: '000000' === snap.code ? '000001' : '000000' });
  assert.equal(wrong.code, 'not_found');

  // task 0 is the question: lea answers 20 seconds (option 1)
  const ack1 = await cLea.ask({ t: 'answer', room, task: 0, value: 1, key: 'lea-t0' });
  assert.equal(ack1.t, 'ack', JSON.stringify(ack1));
  assert.equal(ack1.key, 'lea-t0');
  const ack2 = await cLea.ask({ t: 'answer', room, task: 0, value: 1, key: 'lea-t0' });
  assert.deepEqual([ack2.t, ack2.seq], ['ack', ack1.seq], 'a re-sent key gets the same ack');
  assert.equal((await cLeo.ask({ t: 'answer', room, task: 0, value: 0, key: 'leo-t0' })).t, 'ack');
  assert.equal((await cLars.ask({ t: 'answer', room, task: 0, value: 1, key: 'lars-t0' })).t, 'ack');

  // an answer to an observe task is refused
  const obs = await cLea.ask({ t: 'answer', room, task: 1, value: 1, key: 'lea-t1' });
  assert.equal(obs.t, 'err');

  // rita walks the tasks and marks
  for (const task of [1, 2, 3]) {
    assert.equal((await rita.ask({ t: 'step', room, task })).t, 'ok');
    for (const [who, result] of [[lea, 'pass'], [lars, 'pass'], [leo, task === 2 ? 'fail' : 'pass']]) {
      const r = await rita.ask({ t: 'mark', room, learner: who, task, result,
        ...(result === 'fail' ? { note: 'stopped after ten seconds' } : {}) });
      assert.equal(r.t, 'ok', JSON.stringify(r));
    }
  }
  // a learner answering an old task after the room moved on is refused
  const late = await cLea.ask({ t: 'answer', room, task: 0, value: 2, key: 'lea-late' });
  assert.equal(late.code, 'conflict');

  const approved = await rita.ask({ t: 'approve', room, decisions: [
    { learner: lea, approved: true }, { learner: leo, approved: true },
    { learner: lars, approved: true, note: 'well done' }] });
  assert.equal(approved.t, 'approved', JSON.stringify(approved));
  const by = Object.fromEntries(approved.results.map((r) => [r.learner, r]));
  assert.equal(by[lea].status, 'approved');
  assert.equal(by[lars].status, 'approved');
  assert.ok(by[lea].completion > 0 && by[lars].completion > 0);
  assert.equal(by[leo].status, 'refused');
  assert.match(by[leo].reason, /fail/);

  // durable: the completion row holds answers, marks, approver and room
  const row = sql(`SELECT * FROM completions WHERE id=${by[lea].completion}`)[0];
  assert.equal(row.user_id, lea);
  assert.equal(row.module_id, HH);
  assert.equal(row.approved_by, id('rita'));
  assert.equal(row.room_id, room);
  assert.deepEqual(JSON.parse(row.answers).map((a) => [a.task, a.value]), [[0, 1]]);
  assert.deepEqual(JSON.parse(row.marks).map((m) => [m.task, m.result]), [[1, 'pass'], [2, 'pass'], [3, 'pass']]);
  assert.equal(sql(`SELECT count(*) AS n FROM audit WHERE action='otj.refused'`)[0].n >= 1, true);

  // approving lea again creates no second completion
  const again = await rita.ask({ t: 'approve', room, decisions: [{ learner: lea, approved: true }] });
  assert.equal(again.results[0].status, 'approved');
  assert.equal(again.results[0].completion, by[lea].completion);
  assert.equal(sql(`SELECT count(*) AS n FROM completions WHERE user_id=${lea} AND module_id=${HH}`)[0].n, 1);

  // the learners hear their own outcome; leo's stays pending
  const seqNow = approved.t && (await rita.ask({ t: 'sync', room, since: 0 })).seq;
  await cLea.untilSeq(room, seqNow);
  const leaOutcome = cLea.events.find((e) => e.e.type === 'approved' && e.e.learner === lea);
  assert.equal(leaOutcome.e.status, 'approved');
  const pending = await pendingOf(A, 'rita');
  assert.equal(pending.status, 200);
  assert.deepEqual(pending.body.items.map((i) => i.learner.id), [leo]);
  assert.equal(pending.body.count, 1);

  // lea's path moves on: Allergen handling is next
  const { body } = await login(A, 'lea');
  const paths = await (await fetch(`${A.base}/api/me/paths`, { headers: { authorization: `Bearer ${body.token}` } })).json();
  const kitchen = paths.paths.find((p) => p.title === 'Kitchen starter');
  const state = Object.fromEntries(kitchen.modules.map((m) => [m.title, m.state]));
  assert.equal(state['Hand hygiene'], 'completed');
  assert.equal(state['Allergen handling'], 'available');

  // every member saw the same events in the same order, gapless
  const finalSeq = (await rita.ask({ t: 'sync', room, since: seqNow })).seq;
  for (const c of [rita, cLea, cLeo, cLars]) await c.untilSeq(room, finalSeq);
  const ref = gapless(rita.events, room);
  for (const c of [cLea, cLeo, cLars]) {
    const seqs = gapless(c.events, room);
    assert.deepEqual(seqs.slice(-5), ref.slice(-5));
    // the same event types at the same seqs
    for (const e of c.events.filter((x) => x.room === room)) {
      const twin = rita.events.find((x) => x.room === room && x.seq === e.seq);
      if (twin) assert.equal(e.e.type, twin.e.type);
    }
  }

  // visibility: lea never gets leo's or lars's answer value, mark result or outcome
  for (const e of cLea.events) {
    if (e.e.learner !== undefined && e.e.learner !== lea) {
      assert.equal(e.e.value, undefined, JSON.stringify(e));
      assert.equal(e.e.result, undefined, JSON.stringify(e));
      assert.equal(e.e.note, undefined, JSON.stringify(e));
      assert.equal(e.e.status, undefined, JSON.stringify(e));
      assert.equal(e.e.completion, undefined, JSON.stringify(e));
    }
  }
  // but she sees her own, and rita sees everyone's
  assert.ok(cLea.events.some((e) => e.e.type === 'mark' && e.e.learner === lea && e.e.result === 'pass'));
  assert.ok(rita.events.some((e) => e.e.type === 'mark' && e.e.learner === leo && e.e.result === 'fail'
    && e.e.note === 'stopped after ten seconds'));
  assert.ok(rita.events.some((e) => e.e.type === 'answer' && e.e.learner === leo && e.e.value === 0));

  for (const c of [rita, cLea, cLeo, cLars, cOmar, cMark]) await c.close();
});

test('who may not: every room message from the wrong person is refused and changes nothing', async () => {
  const LT = moduleId('Lock-out/tag-out');
  const [omar, ola] = ['omar', 'ola'].map(id);
  const sam = await as(A, 'sam');
  const snap = await sam.ask({ t: 'open', module: LT, learners: [omar] });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  const room = snap.room;
  const cOmar = await as(B, 'omar');
  assert.equal((await cOmar.ask({ t: 'join', room })).t, 'snapshot');
  const before = (await sam.ask({ t: 'sync', room, since: 0 })).seq;

  const learnerOnly = [
    { t: 'open', module: LT, learners: [] },
    { t: 'add', room, learner: ola },
    { t: 'remove', room, learner: omar },
    { t: 'step', room, task: 1 },
    { t: 'mark', room, learner: omar, task: 0, result: 'pass' },
    { t: 'approve', room, decisions: [{ learner: omar, approved: true }] },
    { t: 'close', room },
    { t: 'answer', room, task: 0, value: 1, key: 'x', learner: ola },
  ];
  for (const msg of learnerOnly) {
    const r = await cOmar.ask(msg);
    assert.equal(r.t, 'err', `${msg.t}: ${JSON.stringify(r)}`);
    assert.ok(['forbidden', 'conflict'].includes(r.code), `${msg.t}: ${r.code}`);
  }
  // rita is a responsible, but not of this room and not within reach
  const rita = await as(A, 'rita');
  assert.equal((await rita.ask({ t: 'join', room })).code, 'forbidden');
  for (const msg of learnerOnly.slice(1)) {
    const r = await rita.ask(msg);
    assert.equal(r.t, 'err', `${msg.t}: ${JSON.stringify(r)}`);
    assert.ok(['not_found', 'forbidden'].includes(r.code), `${msg.t}: ${r.code}`);
  }
  // sam may not add someone outside his reach, nor open for them
  assert.equal((await sam.ask({ t: 'add', room, learner: id('lea') })).code, 'forbidden');
  assert.equal((await sam.ask({ t: 'open', module: LT, learners: [id('lea')] })).code, 'forbidden');
  // an unknown room is not_found
  assert.equal((await cOmar.ask({ t: 'join', room: 'nosuchroom' })).code, 'not_found');

  const after = (await sam.ask({ t: 'sync', room, since: 0 })).seq;
  assert.equal(after, before, 'the room did not change');
  for (const c of [sam, cOmar, rita]) await c.close();
});

test('a learner drops mid-drill, reconnects to the other instance and syncs exactly what it missed', async () => {
  const LT = moduleId('Lock-out/tag-out');
  const ola = id('ola');
  const sam = await as(A, 'sam');
  const snap = await sam.ask({ t: 'open', module: LT, learners: [ola] });
  const room = snap.room;
  let cOla = await as(A, 'ola');
  const js = await cOla.ask({ t: 'join', room });
  let last = js.seq;
  assert.equal((await sam.ask({ t: 'mark', room, learner: ola, task: 0, result: 'pass' })).t, 'ok');
  const s1 = (await sam.ask({ t: 'sync', room, since: 0 })).seq;
  await cOla.untilSeq(room, s1);
  last = cOla.events.filter((e) => e.room === room).at(-1).seq;
  await cOla.close();

  // while ola is away: two marks and a step
  assert.equal((await sam.ask({ t: 'mark', room, learner: ola, task: 1, result: 'pass' })).t, 'ok');
  assert.equal((await sam.ask({ t: 'step', room, task: 2 })).t, 'ok');
  assert.equal((await sam.ask({ t: 'mark', room, learner: ola, task: 2, result: 'fail', note: 'no tag' })).t, 'ok');
  const now = (await sam.ask({ t: 'sync', room, since: 0 })).seq;

  cOla = await as(B, 'ola');                       // the other instance
  const ok = await cOla.ask({ t: 'sync', room, since: last });
  assert.equal(ok.t, 'ok', JSON.stringify(ok));
  const got = cOla.events.filter((e) => e.room === room);
  // exactly the missed events, in order: the ones after `last` (her own left/joined included)
  assert.deepEqual(got.map((e) => e.seq), Array.from({ length: ok.seq - last }, (_, i) => last + 1 + i));
  assert.ok(ok.seq >= now);
  const types = got.map((e) => e.e.type);
  assert.ok(types.includes('mark') && types.includes('step'), types.join());
  const fail = got.find((e) => e.e.type === 'mark' && e.e.task === 2);
  assert.equal(fail.e.result, 'fail');

  // an answer whose ack was lost is re-sent with the same key and recorded once
  const HH = moduleId('Hand hygiene');
  const rita = await as(A, 'rita');
  const leo = id('leo');
  const s2 = await rita.ask({ t: 'open', module: HH, learners: [leo] });
  let cLeo = await as(A, 'leo');
  await cLeo.ask({ t: 'join', room: s2.room });
  cLeo.send({ t: 'answer', room: s2.room, task: 0, value: 2, key: 'leo-k1', rid: 1 });
  cLeo.ws.terminate();                             // gone before the ack
  await sleep(200);
  cLeo = await as(B, 'leo');
  const re = await cLeo.ask({ t: 'sync', room: s2.room, since: 0 });
  assert.equal(re.t, 'ok');
  const ack = await cLeo.ask({ t: 'answer', room: s2.room, task: 0, value: 2, key: 'leo-k1' });
  assert.equal(ack.t, 'ack');
  const all = await rita.ask({ t: 'sync', room: s2.room, since: 0 });
  await rita.untilSeq(s2.room, all.seq);
  const answers = rita.events.filter((e) => e.room === s2.room && e.e.type === 'answer' && e.e.learner === leo);
  assert.equal(answers.length, 1, 'recorded once');
  assert.equal(ack.seq, answers[0].seq);
  for (const c of [sam, cOla, rita, cLeo]) await c.close();
});

test('presence is per person: two tabs are one learner, left only when the last goes', async () => {
  const LT = moduleId('Lock-out/tag-out');
  const omar = id('omar');
  const sam = await as(A, 'sam');
  const { room } = await sam.ask({ t: 'open', module: LT, learners: [omar] });
  const tab1 = await as(A, 'omar');
  const tab2 = await as(B, 'omar');
  await tab1.ask({ t: 'join', room });
  await tab2.ask({ t: 'join', room });
  await tab1.close();
  await sleep(300);
  let seq = (await sam.ask({ t: 'sync', room, since: 0 })).seq;
  await sam.untilSeq(room, seq);
  const evOf = (type) => sam.events.filter((e) => e.room === room && e.e.type === type && e.e.user === omar);
  assert.equal(evOf('joined').length, 1);
  assert.equal(evOf('left').length, 0);
  await tab2.close();
  await sam.pump((m) => m.t === 'ev' && m.e.type === 'left' && m.e.user === omar);
  assert.equal(evOf('left').length, 1);
  await sam.close();
});

test('the QR code of the join link is for the room\'s responsible only; /join/CODE is the web page', async () => {
  const HH = moduleId('Hand hygiene');
  const rita = await as(A, 'rita');
  const { room, code } = await rita.ask({ t: 'open', module: HH, learners: [] });
  const qr = await fetch(`${A.base}/api/rooms/${room}/qr.svg`, { headers: { authorization: `Bearer ${rita.token}` } });
  assert.equal(qr.status, 200);
  assert.match(qr.headers.get('content-type'), /image\/svg\+xml/);
  const svg = await qr.text();
  assert.match(svg, /^<svg [^>]*viewBox="0 0 (\d+) \1"/);
  assert.match(svg, /<path fill="#000" d="M/);
  const lea = await as(A, 'lea');
  const other = await fetch(`${A.base}/api/rooms/${room}/qr.svg`, { headers: { authorization: `Bearer ${lea.token}` } });
  assert.equal(other.status, 403);
  assert.equal((await fetch(`${A.base}/api/rooms/${room}/qr.svg`)).status, 401);
  assert.equal((await fetch(`${A.base}/api/rooms/nosuch/qr.svg`, { headers: { authorization: `Bearer ${rita.token}` } })).status, 404);
  for (const path of [`/join/${code}`, '/join']) {
    const page = await fetch(`${A.base}${path}`);
    assert.equal(page.status, 200, path);
    assert.match(await page.text(), /<html/i);
  }
  // a closed room has no QR code any more, and its code is dead
  assert.equal((await rita.ask({ t: 'close', room })).t, 'ok');
  assert.equal((await fetch(`${A.base}/api/rooms/${room}/qr.svg`, { headers: { authorization: `Bearer ${rita.token}` } })).status, 404);
  assert.equal((await lea.ask({ t: 'join', code })).code, 'not_found');
  await rita.close();
  await lea.close();
});

test('wrong join codes are rate-limited per user', async () => {
  const nina = await as(B, 'nina');
  let last;
  for (let i = 0; i < 12; i++) last = await nina.ask({ t: 'join', code: String(900000 + i) });
  assert.equal(last.code, 'rate_limited');
  await nina.close();
});

test('a responsible\'s dashboard count is pushed when it changes', async () => {
  // sam waits for omar and ola (unless an earlier test approved them)
  const sam = await as(A, 'sam');
  const first = await sam.pump((m) => m.t === 'dashboard');
  assert.equal(typeof first.count, 'number');
  const LT = moduleId('Lock-out/tag-out');
  const omar = id('omar');
  const { room } = await sam.ask({ t: 'open', module: LT, learners: [omar] });
  for (const task of [0, 1, 2])
    assert.equal((await sam.ask({ t: 'mark', room, learner: omar, task, result: 'pass' })).t, 'ok');
  const res = await sam.ask({ t: 'approve', room, decisions: [{ learner: omar, approved: true }] });
  assert.equal(res.results[0].status, 'approved', JSON.stringify(res));
  const next = await sam.pump((m) => m.t === 'dashboard');
  assert.equal(next.count, first.count - 1);
  await sam.close();
});

test('Redis connections lost: clients hear unavailable, rooms resume and catch up', async () => {
  const HH = moduleId('Hand hygiene');
  const rita = await as(A, 'rita');
  const leoId = id('leo');
  const { room } = await rita.ask({ t: 'open', module: HH, learners: [leoId] });
  const leo = await as(B, 'leo');
  await leo.ask({ t: 'join', room });
  // drop every client connection Redis has (the data stays)
  execFileSync('redis-cli', ['-p', String(redis.port), 'CLIENT', 'KILL', 'TYPE', 'normal']);
  execFileSync('redis-cli', ['-p', String(redis.port), 'CLIENT', 'KILL', 'TYPE', 'pubsub']);
  const told = await leo.pump((m) => m.t === 'err' && m.code === 'unavailable');
  assert.match(told.msg, /room/);
  // back within the backoff: a step by rita reaches leo, gapless
  let stepped;
  for (let i = 0; i < 50 && !(stepped && stepped.t === 'ok'); i++) {
    await sleep(100);
    stepped = await rita.ask({ t: 'step', room, task: 1 });
  }
  assert.equal(stepped.t, 'ok', JSON.stringify(stepped));
  await leo.untilSeq(room, stepped.seq);
  gapless(leo.events, room);
  assert.equal(leo.events.at(-1).e.type, 'step');
  await rita.close();
  await leo.close();
});

test('a learner who completes the module before an OTJ one appears on the dashboard at once', async () => {
  const rita = await as(A, 'rita');
  const first = await rita.pump((m) => m.t === 'dashboard');
  // liv (Cold kitchen) completes Food safety basics on her own
  const FS = moduleId('Food safety basics');
  const correct = sql(`SELECT correct FROM tasks WHERE module_id=${FS} ORDER BY position`).map((t) => JSON.parse(t.correct));
  const { body } = await login(B, 'liv');
  const r = await fetch(`${B.base}/api/modules/${FS}/complete`, {
    method: 'POST', headers: { authorization: `Bearer ${body.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ answers: correct }) });
  assert.equal(r.status, 200, await r.text());
  const next = await rita.pump((m) => m.t === 'dashboard');
  assert.equal(next.count, first.count + 1, 'liv now waits for rita on Hand hygiene');
  await rita.close();
});

test('a learner added while offline finds the invitation when she connects', async () => {
  // liv waits for rita on Hand hygiene once Food safety basics is done
  const FS = moduleId('Food safety basics');
  const HH = moduleId('Hand hygiene');
  const correct = sql(`SELECT correct FROM tasks WHERE module_id=${FS} ORDER BY position`).map((t) => JSON.parse(t.correct));
  const { body } = await login(A, 'liv');
  await fetch(`${A.base}/api/modules/${FS}/complete`, {
    method: 'POST', headers: { authorization: `Bearer ${body.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ answers: correct }) });   // 200, or 409 when already done
  const rita = await as(A, 'rita');
  const snap = await rita.ask({ t: 'open', module: HH, learners: [id('liv')] });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  const liv = await as(B, 'liv');                   // connects after the open
  const inv = await liv.pump((m) => m.t === 'invite' && m.room === snap.room);
  assert.equal(inv.code, snap.code);
  assert.equal(inv.host.id, id('rita'));
  // once the room is closed, a new connection is not invited to it
  assert.equal((await rita.ask({ t: 'close', room: snap.room })).t, 'ok');
  const later = await as(A, 'liv');
  await assert.rejects(later.pump((m) => m.t === 'invite' && m.room === snap.room, 700));
  for (const c of [rita, liv, later]) await c.close();
});
