// What a join tells the room, and who a snapshot shows online: one `joined`
// event per join (with `added` when the join made the learner a member),
// joins that come together recorded as one event, presence decided from
// Redis' raw entries by otjd, across two instances.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, startOtjd, connectAs as as, sleep, login, Client } from './harness.mjs';
import { sqlOf } from './group_org.mjs';

let redis, A, B, sql;
const id = (login) => sql(`SELECT id FROM users WHERE login='${login}'`)[0].id;
const moduleId = (title) => sql(`SELECT id FROM modules WHERE title='${title}'`)[0].id;

before(async () => {
  redis = await startRedis();
  // a wide batch window, so that joins a test sends together are gathered
  // however slow the machine is (the default is 20 ms)
  const env = { OTJ_JOIN_BATCH: '1000' };
  A = await startOtjd({ redis: redis.addr, env });
  B = await startOtjd({ redis: redis.addr, dataDir: A.dataDir, demo: false, env });
  sql = sqlOf(A);
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

// The `ev` frames of `room` a client received up to `seq`, in order, waiting
// for them (Client.ask leaves what overtook its reply queued for next()).
async function eventsUpTo(c, room, seq) {
  c.seen ??= [];
  while (!c.seen.some((e) => e.room === room && e.seq >= seq)) {
    const m = await c.next();
    if (m.t === 'ev') c.seen.push(m);
  }
  return c.seen.filter((e) => e.room === room && e.seq <= seq);
}

test('a join by code that adds the learner is one event, joined with added; a member\'s join is joined alone', async () => {
  const HH = moduleId('Hand hygiene');
  const [lea, lars] = ['lea', 'lars'].map(id);
  const rita = await as(A, 'rita');
  const snap = await rita.ask({ t: 'open', module: HH, learners: [lea] });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  const room = snap.room;
  const base = snap.seq;

  // lars is not a member: he comes in with the code (within reach, waiting)
  const cLars = await as(B, 'lars');
  const sLars = await cLars.ask({ t: 'join', code: snap.code });
  assert.equal(sLars.t, 'snapshot', JSON.stringify(sLars));
  assert.equal(sLars.seq, base + 1, 'his join took exactly one seq');
  const [ev1] = await eventsUpTo(rita, room, base + 1).then((l) => l.filter((e) => e.seq > base));
  assert.deepEqual(ev1.e, { type: 'joined', user: lars, role: 'learner', added: true });
  assert.ok(sLars.learners.some((l) => l.id === lars && l.online), 'he is a learner, online, in his own snapshot');

  // lea was listed when the room opened: her join is a plain `joined`
  const cLea = await as(A, 'lea');
  const sLea = await cLea.ask({ t: 'join', room });
  assert.equal(sLea.seq, base + 2);
  const evs = await eventsUpTo(rita, room, base + 2);
  assert.deepEqual(evs.filter((e) => e.seq > base).map((e) => e.e), [
    { type: 'joined', user: lars, role: 'learner', added: true },
    { type: 'joined', user: lea, role: 'learner' },
  ]);
  // lars, on the other instance, got the same two events in the same order
  const larsEvs = await eventsUpTo(cLars, room, base + 2);
  assert.deepEqual(larsEvs.map((e) => [e.seq, e.e.type, e.e.user]), [[base + 2, 'joined', lea]]);

  // a second connection of lars changes nothing: no event
  const cLars2 = await as(A, 'lars');
  const s2 = await cLars2.ask({ t: 'join', room });
  assert.equal(s2.seq, base + 2, 'a second tab takes no seq');
  for (const c of [rita, cLars, cLea, cLars2]) c.close();
});

test('a snapshot shows online exactly those with a live connection on any instance', async () => {
  const HH = moduleId('Hand hygiene');
  const [lea, leo, lars] = ['lea', 'leo', 'lars'].map(id);
  const rita = await as(A, 'rita');
  const snap = await rita.ask({ t: 'open', module: HH, learners: [lea, leo, lars] });
  const room = snap.room;
  assert.ok(snap.learners.every((l) => !l.online), 'nobody but the host is here yet');

  const cLea = await as(A, 'lea');   // on A
  const cLeo = await as(B, 'leo');   // on B
  assert.equal((await cLea.ask({ t: 'join', room })).t, 'snapshot');
  assert.equal((await cLeo.ask({ t: 'join', room })).t, 'snapshot');
  // leo leaves again
  assert.equal((await cLeo.ask({ t: 'leave', room })).t, 'ok');

  // a late joiner on either instance sees lea online, leo and lars not
  for (const srv of [A, B]) {
    const cLars = await as(srv, 'lars');
    const s = await cLars.ask({ t: 'join', room });
    assert.equal(s.t, 'snapshot');
    const online = Object.fromEntries(s.learners.map((l) => [l.id, l.online]));
    assert.equal(online[lea], true, `lea online, seen from ${srv === A ? 'A' : 'B'}`);
    assert.equal(online[leo], false, 'leo left');
    assert.equal(online[lars], true, 'the joiner himself');
    await cLars.ask({ t: 'leave', room });
    cLars.close();
  }

  // lea's phone drops: a fresh snapshot shows her offline
  cLea.ws.terminate();
  let s;
  for (let i = 0; i < 50; i++) {
    const c = await as(B, 'leo');
    s = await c.ask({ t: 'join', room });
    c.close();
    if (!s.learners.find((l) => l.id === lea).online) break;
    await sleep(100);
  }
  assert.equal(s.learners.find((l) => l.id === lea).online, false, 'lea is offline once her connection is gone');
  rita.close();
  cLeo.close();
});

test('joins that arrive together are one event naming them all; each joiner gets its own answer', async () => {
  const HH = moduleId('Hand hygiene');
  const [lea, leo, lars] = ['lea', 'leo', 'lars'].map(id);
  const rita = await as(A, 'rita');
  const snap = await rita.ask({ t: 'open', module: HH, learners: [lea, leo] });
  const room = snap.room;
  // omar holds the code but is not within rita's reach (R7)
  const [cLea, cLeo, cLars, cOmar] = await Promise.all([as(A, 'lea'), as(A, 'leo'), as(A, 'lars'), as(A, 'omar')]);
  // the first join after a quiet spell goes at once; the four that follow
  // it within the batch window are gathered
  const first = await cLea.ask({ t: 'join', room });
  assert.equal(first.t, 'snapshot');
  const replies = await Promise.all([
    cLeo.ask({ t: 'join', room }),
    cLars.ask({ t: 'join', code: snap.code }),
    cOmar.ask({ t: 'join', code: snap.code }),
  ]);
  assert.equal(replies[0].t, 'snapshot', JSON.stringify(replies[0]));
  assert.equal(replies[1].t, 'snapshot', JSON.stringify(replies[1]));
  assert.deepEqual([replies[2].t, replies[2].code], ['err', 'forbidden'], 'omar alone is refused');
  assert.equal(replies[0].seq, replies[1].seq, 'leo and lars came in with one event');
  assert.ok(replies[1].learners.some((l) => l.id === lars && l.online));
  assert.ok(!replies[1].learners.some((l) => l.id === id('omar')), 'the refused joiner is not in the room');

  const evs = (await eventsUpTo(rita, room, replies[0].seq)).filter((e) => e.seq > snap.seq);
  assert.deepEqual(evs.map((e) => e.e), [
    { type: 'joined', user: lea, role: 'learner' },
    { type: 'joined', role: 'learner', users: [leo, lars], added: [lars] },
  ]);
  // the seq stays gapless for a member who was there before
  const leaEvs = await eventsUpTo(cLea, room, replies[0].seq);
  assert.deepEqual(leaEvs.map((e) => e.seq), [replies[0].seq]);
  for (const c of [rita, cLea, cLeo, cLars, cOmar]) c.close();
});

test('a learner taken out of the room is decided by R7 when she comes back, whatever the instance remembers of her', async () => {
  const HH = moduleId('Hand hygiene');
  const [lea, leo] = ['lea', 'leo'].map(id);
  const rita = await as(A, 'rita');
  const snap = await rita.ask({ t: 'open', module: HH, learners: [lea, leo] });
  const room = snap.room;
  const cLea = await as(A, 'lea');
  const cLeo = await as(A, 'leo');
  assert.equal((await cLea.ask({ t: 'join', room })).t, 'snapshot');
  assert.equal((await cLeo.ask({ t: 'join', room })).t, 'snapshot');
  // A now knows both as learners of the room; rita takes both out
  for (const who of [lea, leo]) assert.equal((await rita.ask({ t: 'remove', room, learner: who })).t, 'ok');

  // lea still waits for the module within rita's reach: R7 lets her back in
  const back = await cLea.ask({ t: 'join', room });
  assert.equal(back.t, 'snapshot', JSON.stringify(back));
  assert.ok(back.learners.some((l) => l.id === lea));
  const ev = (await eventsUpTo(rita, room, back.seq)).filter((m) => m.e.type === 'joined' && m.e.user === lea).pop();
  assert.equal(ev.e.added, true, 'coming back made her a learner again');

  // leo moved to a ward outside rita's reach: R7 refuses him
  const home = sql(`SELECT department_id AS d FROM users WHERE id=${leo}`)[0].d;
  sql(`UPDATE users SET department_id=(SELECT id FROM departments WHERE name='Ward 3') WHERE id=${leo}`);
  try {
    const refused = await cLeo.ask({ t: 'join', room });
    assert.deepEqual([refused.t, refused.code], ['err', 'forbidden'], JSON.stringify(refused));
  } finally {
    sql(`UPDATE users SET department_id=${home} WHERE id=${leo}`);
  }
  for (const c of [rita, cLea, cLeo]) c.close();
});

// A phone that scanned a QR code sends its join right behind its hello,
// without waiting a round trip for the welcome: the server reads them in
// order. Behind a hello it refused, the join is refused too.
test('a join sent right behind hello is answered after the welcome; behind a refused hello it is unauthorized', async () => {
  const rita = await as(A, 'rita');
  const snap = await rita.ask({ t: 'open', module: moduleId('Hand hygiene'), learners: [id('lea')] });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));

  const { body } = await login(A, 'lea');
  const lea = new Client(A);
  await lea.opened();
  lea.send({ t: 'hello', v: 1, token: body.token, rid: 1 });
  lea.send({ t: 'join', code: snap.code, rid: 2 });
  const first = await lea.next();
  assert.equal(first.t, 'welcome', JSON.stringify(first));
  let reply = await lea.next();
  while (reply.rid !== 2) reply = await lea.next(); // an `ev` may come first
  assert.equal(reply.t, 'snapshot', JSON.stringify(reply));
  assert.equal(reply.room, snap.room);
  lea.close();

  const stranger = new Client(A);
  await stranger.opened();
  stranger.send({ t: 'hello', v: 1, token: 'not-a-token', rid: 1 });
  stranger.send({ t: 'join', code: snap.code, rid: 2 });
  const refused = await stranger.next();
  assert.equal(refused.t, 'err', JSON.stringify(refused));
  assert.equal(refused.code, 'unauthorized');
  const join = await stranger.next();
  assert.equal(join.rid, 2, JSON.stringify(join));
  assert.deepEqual([join.t, join.code], ['err', 'unauthorized'], 'the join is not let through');
  stranger.close();
  rita.close();
});
