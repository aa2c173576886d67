// Learners may attach evidence, where the module allows it: a module switch
// (admin API and import, audited), then a learner in the room uploads a
// photo for their own observe task and names it in their answer of that
// task. The responsible and that learner see the hash; other learners get
// the answer without it, and cannot fetch the file. With the switch off the
// upload and the answer are refused and the snapshot says nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startRedis, startOtjd, connectAs, login } from './harness.mjs';

const JPEG = readFileSync('tests/fixtures/evidence-photo.jpg');
const PNG = readFileSync('tests/fixtures/evidence-photo.png');

let redis, srv, ids, tokens, HH;
const clients = [];

function sql(query) {
  const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000', `${srv.dataDir}/otj.db`, query]).toString();
  return out.trim() ? JSON.parse(out) : [];
}

function upload(token, { room, learner, task }, body) {
  return fetch(`${srv.base}/api/evidence?room=${room}&learner=${learner}&task=${task}`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'image/jpeg' }, body,
  });
}

const fetchEvidence = (token, hash) => fetch(`${srv.base}/api/evidence/${hash}`, { headers: { authorization: `Bearer ${token}` } });

async function admin(method, path, body) {
  const r = await fetch(`${srv.base}${path}`, {
    method, headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.admin}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

async function as(login) {
  const c = await connectAs(srv, login);
  clients.push(c);
  return c;
}

// The next room event of `type` on c, skipping others.
async function nextEv(c, type, ms = 5000) {
  for (;;) {
    const m = await c.next(ms);
    if (m.t === 'ev' && m.e.type === type) return m;
  }
}

// rita opens a Hand hygiene room for two learners (lea and leo unless
// named), both join, and the room moves to observe task 1. The first
// learner's connection is `lea`, the second's `leo`.
async function drill(learners = ['lea', 'leo']) {
  const rita = await as('rita');
  const snap = await rita.ask({ t: 'open', module: HH, learners: learners.map((l) => ids[l]) });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  const lea = await as(learners[0]);
  const leo = await as(learners[1]);
  const leaSnap = await lea.ask({ t: 'join', room: snap.room });
  assert.equal(leaSnap.t, 'snapshot');
  assert.equal((await leo.ask({ t: 'join', room: snap.room })).t, 'snapshot');
  assert.equal((await rita.ask({ t: 'step', room: snap.room, task: 1 })).t, 'ok');
  return { rita, lea, leo, room: snap.room, snap: leaSnap };
}

before(async () => {
  redis = await startRedis();
  srv = await startOtjd({ redis: redis.addr });
  ids = {};
  for (const u of ['lea', 'leo', 'lars', 'rita']) ids[u] = sql(`SELECT id FROM users WHERE login='${u}'`)[0].id;
  tokens = {};
  for (const u of ['lea', 'leo', 'lars', 'admin']) tokens[u] = (await login(srv, u)).body.token;
  HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
});

after(async () => {
  for (const c of clients) c.ws.terminate();
  await srv?.stopClean();
  srv?.cleanup();
  await redis?.stop();
});

test('the switch is off by default: a learner can neither upload nor answer an observe task', async () => {
  const { rita, lea, room, snap } = await drill();
  assert.equal(snap.module.learner_evidence, undefined, 'the snapshot does not offer it');
  const up = await upload(tokens.lea, { room, learner: ids.lea, task: 1 }, JPEG);
  assert.equal(up.status, 403);
  assert.match((await up.json()).message, /does not let learners attach evidence/);
  // a hash the responsible uploaded is no way round it
  const ritaUp = await (await upload(rita.token, { room, learner: ids.lea, task: 1 }, JPEG)).json();
  const ans = await lea.ask({ t: 'answer', room, task: 1, value: ritaUp.hash, key: 'off-1' });
  assert.equal(ans.t, 'err');
  assert.equal(ans.code, 'conflict', JSON.stringify(ans));
  assert.equal(sql(`SELECT count(*) n FROM evidence WHERE uploader_id=${ids.lea}`)[0].n, 0, 'nothing of hers is stored');
  assert.equal((await rita.ask({ t: 'ping' })).t, 'pong', 'the server keeps serving');
});

test('the module switch: admin API (validated, audited, kept by a PATCH without it) and the import', async () => {
  const bad = await admin('PATCH', `/api/admin/modules/${HH}`, { learner_evidence: 'yes' });
  assert.equal(bad.status, 400, JSON.stringify(bad));
  assert.equal(bad.body.field, 'learner_evidence');
  assert.equal(sql(`SELECT learner_evidence FROM modules WHERE id=${HH}`)[0].learner_evidence, 0, 'nothing changed');
  const on = await admin('PATCH', `/api/admin/modules/${HH}`, { learner_evidence: true });
  assert.equal(on.status, 200, JSON.stringify(on));
  assert.equal(on.body.learner_evidence, true);
  assert.equal(on.body.learner_confirm, false, 'the other switch is its own');
  const kept = await admin('PATCH', `/api/admin/modules/${HH}`, { title: 'Hand hygiene' });
  assert.equal(kept.body.learner_evidence, true, 'a PATCH without the field leaves it');
  assert.equal(sql(`SELECT count(*) n FROM audit WHERE action='module.learner_evidence_on'`)[0].n, 1);
  const listed = await admin('GET', '/api/admin/modules');
  assert.equal(listed.body.items.find((m) => m.id === HH).learner_evidence, true);

  const made = await admin('POST', '/api/admin/modules', { title: 'Ladder check', type: 'quiz', otj: true, learner_evidence: true,
    tasks: [{ kind: 'observe', text: 'Checks the feet' }] });
  assert.equal(made.status, 201, JSON.stringify(made));
  assert.equal(made.body.learner_evidence, true);

  const imp = (doc) => admin('POST', '/api/admin/import', doc);
  const refused = await imp({ modules: [{ title: 'Mop safety', type: 'quiz', otj: true, learner_evidence: 1 }] });
  assert.equal(refused.status, 422, JSON.stringify(refused));
  assert.equal(refused.body.where, 'modules[0].learner_evidence');
  const taken = await imp({ modules: [{ title: 'Mop safety', type: 'quiz', otj: true, learner_evidence: true,
    tasks: [{ kind: 'observe', text: 'Puts up the sign' }] }, { title: 'Bucket safety', type: 'quiz', otj: true }] });
  assert.equal(taken.status, 200, JSON.stringify(taken));
  assert.deepEqual(sql(`SELECT title, learner_evidence FROM modules WHERE title IN ('Mop safety', 'Bucket safety') ORDER BY title`),
    [{ title: 'Bucket safety', learner_evidence: 0 }, { title: 'Mop safety', learner_evidence: 1 }]);
});

test('switched on: the learner attaches a photo to her observe task; the host and she see it, another learner does not', async () => {
  const { rita, lea, leo, room, snap } = await drill();
  assert.equal(snap.module.learner_evidence, true, 'the snapshot offers it');

  // refusals first: none of them stores or changes anything
  const refusedUploads = [
    [tokens.lea, { room, learner: ids.leo, task: 1 }, 403, 'for another learner'],
    [tokens.lea, { room, learner: ids.lea, task: 0 }, 422, 'to a question'],
    [tokens.lea, { room: 'nosuchroom', learner: ids.lea, task: 1 }, 404, 'an unknown room'],
  ];
  for (const [tok, where, status, what] of refusedUploads) {
    const r = await upload(tok, where, JPEG);
    assert.equal(r.status, status, `${what}: ${await r.text()}`);
  }
  const r = await upload(tokens.lea, { room, learner: ids.lea, task: 1 }, JPEG);
  assert.equal(r.status, 201, await r.clone().text());
  const up = await r.json();
  const leoUp = await (await upload(tokens.leo, { room, learner: ids.leo, task: 1 }, PNG)).json();

  const refusedAnswers = [
    [leo, { task: 1, value: up.hash }, 'forbidden', "another learner's upload"],
    [lea, { task: 1, value: leoUp.hash }, 'forbidden', "someone else's upload"],
    [lea, { task: 1, value: 'my photo' }, 'bad_request', 'not a hash'],
    [lea, { task: 1, value: 3 }, 'bad_request', 'a number'],
    [lea, { task: 2, value: up.hash }, 'forbidden', 'uploaded for another task'],
    [rita, { task: 1, value: up.hash, learner: ids.lea }, 'conflict', 'the host answers an observe task'],
  ];
  for (const [c, m, code, what] of refusedAnswers) {
    const a = await c.ask({ t: 'answer', room, key: `bad-${Math.random()}`, ...m });
    assert.equal(a.code, code, `${what}: ${JSON.stringify(a)}`);
  }

  const ack = await lea.ask({ t: 'answer', room, task: 1, value: up.hash, key: 'lea-photo-1' });
  assert.equal(ack.t, 'ack', JSON.stringify(ack));
  const forRita = await nextEv(rita, 'answer');
  assert.deepEqual([forRita.seq, forRita.e.learner, forRita.e.task, forRita.e.value], [ack.seq, ids.lea, 1, up.hash]);
  assert.equal((await nextEv(lea, 'answer')).e.value, up.hash, 'the learner sees her own');
  const forLeo = await nextEv(leo, 'answer');
  assert.equal(forLeo.seq, ack.seq, 'the other learner gets the event, gapless');
  assert.equal('value' in forLeo.e, false, 'without the hash');
  // the same key again: recorded once
  const again = await lea.ask({ t: 'answer', room, task: 1, value: up.hash, key: 'lea-photo-1' });
  assert.equal(again.seq, ack.seq);

  const inSnap = async (c) => (await c.ask({ t: 'join', room })).answers.find((a) => a.learner === ids.lea && a.task === 1);
  assert.equal((await inSnap(rita)).value, up.hash);
  assert.equal((await inSnap(lea)).value, up.hash);
  assert.equal('value' in (await inSnap(leo)), false);

  assert.equal((await fetchEvidence(tokens.lea, up.hash)).status, 200);
  assert.equal((await fetchEvidence(rita.token, up.hash)).status, 200);
  assert.equal((await fetchEvidence(tokens.admin, up.hash)).status, 200);
  assert.equal((await fetchEvidence(tokens.leo, up.hash)).status, 404, 'never to another learner');

  // the completion keeps it with her answers
  for (const task of [1, 2, 3])
    assert.equal((await rita.ask({ t: 'mark', room, learner: ids.lea, task, result: 'pass' })).t, 'ok');
  const ap = await rita.ask({ t: 'approve', room, decisions: [{ learner: ids.lea, approved: true }] });
  assert.equal(ap.results[0].status, 'approved', JSON.stringify(ap));
  const kept = JSON.parse(sql(`SELECT answers FROM completions WHERE id=${ap.results[0].completion}`)[0].answers);
  assert.ok(JSON.stringify(kept).includes(up.hash), JSON.stringify(kept));
});

test('a room that is not on the current task refuses the evidence answer as any answer', async () => {
  const { rita, leo: lars, room } = await drill(['leo', 'lars']);
  const up = await (await upload(tokens.lars, { room, learner: ids.lars, task: 3 }, JPEG)).json();
  const a = await lars.ask({ t: 'answer', room, task: 3, value: up.hash, key: 'late-1' });
  assert.equal(a.code, 'conflict', JSON.stringify(a));
  assert.equal((await rita.ask({ t: 'step', room, task: 3 })).t, 'ok');
  assert.equal((await lars.ask({ t: 'answer', room, task: 3, value: up.hash, key: 'late-2' })).t, 'ack');
});
