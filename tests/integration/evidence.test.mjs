// Evidence: a photo or file attached to a mark. Uploaded over HTTP with the
// session, checked by its content (JPEG, PNG, PDF), stored by its SHA-256
// under the data folder with a JPEG's metadata (EXIF, GPS) dropped, named by
// the mark, served only to those who may see that mark, and kept with the
// completion.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OTJD, startRedis, startOtjd, connectAs, login } from './harness.mjs';

const JPEG = readFileSync('tests/fixtures/evidence-photo.jpg');
const PNG = readFileSync('tests/fixtures/evidence-photo.png');
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
const sha256 = (b) => createHash('sha256').update(b).digest('hex');

// The photo as a phone camera saves it: an APP1 "Exif" segment right after
// SOI, carrying a GPS position.
const GPS_TEXT = 'GPSLatitude 60.3913 N GPSLongitude 5.3221 E';
function withExif(jpeg) {
  const payload = Buffer.concat([Buffer.from('Exif\0\0MM\0*\0\0\0\x08', 'latin1'), Buffer.from(GPS_TEXT)]);
  const seg = Buffer.alloc(4);
  seg.writeUInt16BE(0xffe1, 0);
  seg.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), seg, payload, jpeg.subarray(2)]);
}

function sqlOf(srv) {
  return (query) => {
    const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000', `${srv.dataDir}/otj.db`, query]).toString();
    return out.trim() ? JSON.parse(out) : [];
  };
}


async function nextEv(c, type, ms = 5000) {
  for (;;) {
    const m = await c.next(ms);
    if (m.t === 'ev' && m.e.type === type) return m;
  }
}

function upload(srv, token, { room, learner, task }, body, type = 'image/jpeg') {
  return fetch(`${srv.base}/api/evidence?room=${room}&learner=${learner}&task=${task}`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': type }, body,
  });
}

function fetchEvidence(srv, token, hash) {
  return fetch(`${srv.base}/api/evidence/${hash}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
}

// Every file under the data folder's evidence/ (temporary ones included).
function storedFiles(srv) {
  const top = path.join(srv.dataDir, 'evidence');
  if (!existsSync(top)) return [];
  return readdirSync(top, { recursive: true }).filter((f) => statSync(path.join(top, f)).isFile());
}

let redis, srv, sql, rita, room, ids, tokens;

before(async () => {
  redis = await startRedis();
  srv = await startOtjd({ redis: redis.addr });
  sql = sqlOf(srv);
  ids = {};
  for (const u of ['lea', 'leo', 'liv', 'rita', 'sam', 'mark', 'admin']) ids[u] = sql(`SELECT id FROM users WHERE login='${u}'`)[0].id;
  tokens = {};
  for (const u of ['lea', 'leo', 'sam', 'mark', 'admin']) tokens[u] = (await login(srv, u)).body.token;
  rita = await connectAs(srv, 'rita');
  tokens.rita = rita.token;
  const HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
  const snap = await rita.ask({ t: 'open', module: HH, learners: [ids.lea, ids.leo] });
  assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
  room = snap.room;
});

after(async () => {
  await rita?.close();
  await srv?.stopClean(); // under the sanitizers: no report, no leak
  srv?.cleanup();
  await redis?.stop();
});

test('a JPEG photo is stored by its hash without its EXIF location, and served with safe headers', async () => {
  const photo = withExif(JPEG);
  assert.ok(photo.includes(GPS_TEXT), 'the test photo carries a location');
  const r = await upload(srv, tokens.rita, { room, learner: ids.lea, task: 1 }, photo);
  assert.equal(r.status, 201, await r.clone().text());
  const up = await r.json();
  assert.equal(up.type, 'image/jpeg');
  assert.match(up.hash, /^[0-9a-f]{64}$/);

  const onDisk = path.join(srv.dataDir, 'evidence', up.hash.slice(0, 2), up.hash);
  const stored = readFileSync(onDisk);
  assert.equal(sha256(stored), up.hash, 'the file is named by the SHA-256 of its bytes');
  assert.equal(stored.length, up.size);
  assert.ok(!stored.includes('GPSLatitude') && !stored.includes('Exif'), 'EXIF and the location are gone');
  assert.ok(!stored.includes('ICC_PROFILE'), 'other APPn segments are gone too');
  assert.deepEqual([...stored.subarray(0, 2)], [0xff, 0xd8], 'still a JPEG');
  // the image data itself is untouched: the scan to the end is byte for byte the original's
  const sos = (b) => b.subarray(b.indexOf(Buffer.from([0xff, 0xda])));
  assert.deepEqual(sos(stored), sos(JPEG));

  const g = await fetchEvidence(srv, tokens.rita, up.hash);
  assert.equal(g.status, 200);
  assert.equal(g.headers.get('content-type'), 'image/jpeg');
  assert.equal(g.headers.get('x-content-type-options'), 'nosniff');
  assert.match(g.headers.get('content-disposition'), /^inline; filename="evidence-[0-9a-f]{12}\.jpg"$/);
  assert.deepEqual(Buffer.from(await g.arrayBuffer()), stored);

  const rows = sql(`SELECT hash, type, size, uploader_id, room_id, learner_id, task FROM evidence WHERE hash='${up.hash}'`);
  assert.deepEqual(rows, [{ hash: up.hash, type: 'image/jpeg', size: up.size, uploader_id: ids.rita, room_id: room, learner_id: ids.lea, task: 1 }]);
});

test('PNG and PDF are taken by their content; a PDF is served as an attachment', async () => {
  const p = await upload(srv, tokens.rita, { room, learner: ids.lea, task: 2 }, PNG, 'application/octet-stream');
  assert.equal(p.status, 201, await p.clone().text());
  const png = await p.json();
  assert.equal(png.type, 'image/png');
  assert.equal(png.hash, sha256(PNG), 'a PNG is stored as it came');

  const d = await upload(srv, tokens.rita, { room, learner: ids.lea, task: 3 }, PDF, 'image/jpeg' /* a wrong label */);
  assert.equal(d.status, 201, await d.clone().text());
  const pdf = await d.json();
  assert.equal(pdf.type, 'application/pdf', 'the content decides, not the label');
  const g = await fetchEvidence(srv, tokens.rita, pdf.hash);
  assert.equal(g.status, 200);
  assert.equal(g.headers.get('content-type'), 'application/pdf');
  assert.match(g.headers.get('content-disposition'), /^attachment; filename="evidence-[0-9a-f]{12}\.pdf"$/);
  assert.equal(g.headers.get('x-content-type-options'), 'nosniff');
  assert.deepEqual(Buffer.from(await g.arrayBuffer()), PDF);
});

test('a ".jpg" that is text, or a JPEG that cannot be read, is refused with 415 and nothing is stored', async () => {
  const before = storedFiles(srv).length;
  const t = await upload(srv, tokens.rita, { room, learner: ids.lea, task: 1 }, Buffer.from('just some text, named photo.jpg'));
  assert.equal(t.status, 415);
  assert.equal((await t.json()).error, 'unsupported_type');
  const broken = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe1, 0x7f, 0xff]), Buffer.from('short')]);
  const b = await upload(srv, tokens.rita, { room, learner: ids.lea, task: 1 }, broken);
  assert.equal(b.status, 415);
  assert.equal(storedFiles(srv).length, before);
});

test('an upload over the limit is refused with 413, nothing is left, and the server keeps serving', async () => {
  const before = storedFiles(srv).length;
  const big = Buffer.alloc(5 * 1024 * 1024 + 1, 0x41);
  JPEG.copy(big, 0, 0, 64);
  const r = await upload(srv, tokens.rita, { room, learner: ids.lea, task: 1 }, big);
  assert.equal(r.status, 413);
  const body = await r.json();
  assert.equal(body.error, 'too_large');
  assert.match(body.message, /5242880 bytes/);
  assert.equal(storedFiles(srv).length, before, 'nothing partial is left');
  assert.equal((await fetch(`${srv.base}/healthz`)).status, 200);
  const ok = await upload(srv, tokens.rita, { room, learner: ids.lea, task: 1 }, JPEG);
  assert.equal(ok.status, 201, 'the next upload goes through');
});

test('only the responsible who runs the room attaches, to an observe task of a learner within reach', async () => {
  const target = { room, learner: ids.lea, task: 1 };
  const refused = [
    [tokens.lea, target, 403, 'a learner'],
    [tokens.sam, target, 403, 'a responsible of another department'],
    [tokens.mark, target, 403, 'a manager without Facilitate OTJ'],
    [tokens.rita, { ...target, task: 0 }, 422, 'a question task'],
    [tokens.rita, { ...target, task: 9 }, 422, 'no such task'],
    [tokens.rita, { ...target, room: 'nosuchroom' }, 404, 'an unknown room'],
    [tokens.rita, { ...target, learner: ids.lea, room: '' }, 400, 'no room'],
  ];
  for (const [tok, where, status, who] of refused) {
    const r = await upload(srv, tok, where, JPEG);
    assert.equal(r.status, status, `${who}: ${await r.text()}`);
  }
  const anon = await fetch(`${srv.base}/api/evidence?room=${room}&learner=${ids.lea}&task=1`, { method: 'POST', body: JPEG, headers: { 'content-type': 'image/jpeg' } });
  assert.equal(anon.status, 401);
});

test('with the session cookie, an upload must come from our pages with a file type a form cannot send', async () => {
  const { cookie } = await login(srv, 'rita');
  const session = cookie.split(';')[0];
  const url = `${srv.base}/api/evidence?room=${room}&learner=${ids.lea}&task=1`;
  const form = await fetch(url, { method: 'POST', body: JPEG, headers: { cookie: session, 'content-type': 'text/plain' } });
  assert.equal(form.status, 403, 'a type any page may post (a form) is refused');
  const foreign = await fetch(url, { method: 'POST', body: JPEG, headers: { cookie: session, 'content-type': 'image/jpeg', origin: 'https://evil.example' } });
  assert.equal(foreign.status, 403, 'another site is refused');
  const own = await fetch(url, { method: 'POST', body: JPEG, headers: { cookie: session, 'content-type': 'image/jpeg', origin: srv.base } });
  assert.equal(own.status, 201, await own.text());
});

test('a mark carries only evidence its sender uploaded for that learner and task; others see it redacted', async () => {
  const lea = await connectAs(srv, 'lea');
  const leo = await connectAs(srv, 'leo');
  assert.equal((await lea.ask({ t: 'join', room })).t, 'snapshot');
  assert.equal((await leo.ask({ t: 'join', room })).t, 'snapshot');
  const up = await (await upload(srv, tokens.rita, { room, learner: ids.lea, task: 1 }, withExif(JPEG))).json();

  const refusals = [
    { learner: ids.leo, task: 1, evidence: up.hash }, // another learner
    { learner: ids.lea, task: 2, evidence: up.hash }, // another task
    { learner: ids.lea, task: 1, evidence: sha256(Buffer.from('never uploaded')) },
  ];
  for (const m of refusals) {
    const r = await rita.ask({ t: 'mark', room, result: 'pass', ...m });
    assert.equal(r.t, 'err', JSON.stringify(r));
    assert.equal(r.code, 'forbidden');
  }
  const bad = await rita.ask({ t: 'mark', room, learner: ids.lea, task: 1, result: 'pass', evidence: 'photo.jpg' });
  assert.equal(bad.code, 'bad_request');
  const snapAfter = await rita.ask({ t: 'join', room });
  assert.equal(snapAfter.marks.filter((m) => m.learner === ids.lea && m.task === 1).length, 0, 'a refused mark changes nothing');

  const ok = await rita.ask({ t: 'mark', room, learner: ids.lea, task: 1, result: 'pass', evidence: up.hash });
  assert.equal(ok.t, 'ok', JSON.stringify(ok));
  const forLea = await nextEv(lea, 'mark');
  assert.equal(forLea.e.evidence, up.hash, 'the learner sees her evidence');
  const forLeo = await nextEv(leo, 'mark');
  assert.equal(forLeo.e.evidence, undefined, 'another learner does not');
  assert.equal(forLeo.e.result, undefined);

  const snapLea = await lea.ask({ t: 'join', room });
  assert.equal(snapLea.marks.find((m) => m.learner === ids.lea && m.task === 1).evidence, up.hash);
  const snapLeo = await leo.ask({ t: 'join', room });
  assert.equal(snapLeo.marks.find((m) => m.learner === ids.lea && m.task === 1).evidence, undefined);
  await lea.close();
  await leo.close();
});

test('the evidence is served to the host, that learner and admins only', async () => {
  const up = await (await upload(srv, tokens.rita, { room, learner: ids.lea, task: 1 }, JPEG)).json();
  for (const who of ['rita', 'lea', 'admin']) {
    const r = await fetchEvidence(srv, tokens[who], up.hash);
    assert.equal(r.status, 200, who);
  }
  for (const who of ['leo', 'sam', 'mark']) {
    const r = await fetchEvidence(srv, tokens[who], up.hash);
    assert.equal(r.status, 404, `${who} may not see lea's evidence`);
    const body = await r.json();
    assert.equal(body.error, 'not_found');
  }
  assert.equal((await fetchEvidence(srv, null, up.hash)).status, 401);
  assert.equal((await fetchEvidence(srv, tokens.admin, '../../otj.db')).status, 404);
  assert.equal((await fetchEvidence(srv, tokens.admin, 'f'.repeat(64))).status, 404);
});

test('the completion keeps the hash of each mark\'s evidence', async () => {
  const hashes = {};
  for (const task of [1, 2, 3]) {
    const up = await (await upload(srv, tokens.rita, { room, learner: ids.lea, task }, task === 3 ? PDF : JPEG)).json();
    hashes[task] = up.hash;
    const ok = await rita.ask({ t: 'mark', room, learner: ids.lea, task, result: 'pass', evidence: up.hash });
    assert.equal(ok.t, 'ok', JSON.stringify(ok));
  }
  const res = await rita.ask({ t: 'approve', room, decisions: [{ learner: ids.lea, approved: true }] });
  assert.equal(res.t, 'approved', JSON.stringify(res));
  const completion = res.results[0].completion;
  const marks = JSON.parse(sql(`SELECT marks FROM completions WHERE id=${completion}`)[0].marks);
  for (const task of [1, 2, 3]) assert.equal(marks.find((m) => m.task === task).evidence, hashes[task]);
  // the printable record names each mark's evidence by its hash, for the
  // learner and for the responsible
  for (const token of [tokens.lea, tokens.rita]) {
    const rec = await (await fetch(`${srv.base}/api/completions/${completion}`, { headers: { authorization: `Bearer ${token}` } })).json();
    for (const task of [1, 2, 3]) assert.equal(rec.tasks[task].mark.evidence, hashes[task], JSON.stringify(rec.tasks[task]));
    assert.equal(rec.tasks[0].mark, null, 'the question has no mark');
    assert.ok('attendance' in rec);
    assert.equal(rec.confirmed, null, 'nothing to confirm in this module');
    assert.ok(rec.decided && rec.decided.at > 0);
  }
  // after the room, the learner still reaches her evidence
  assert.equal((await fetchEvidence(srv, tokens.lea, hashes[3])).status, 200);
});

test('otjd backup copies the evidence files beside the database copy, each once', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'otj-evb-'));
  try {
    const run = (file) => spawnSync(OTJD, ['backup', '--data', srv.dataDir, path.join(dir, file)], { encoding: 'utf8' });
    const first = run('one.db');
    assert.equal(first.status, 0, first.stderr);
    const hashes = sql('SELECT DISTINCT hash FROM evidence').map((r) => r.hash);
    assert.ok(hashes.length >= 3);
    const copy = JSON.parse(execFileSync('sqlite3', ['-json', path.join(dir, 'one.db'), 'SELECT DISTINCT hash FROM evidence']).toString());
    assert.deepEqual(copy.map((r) => r.hash).sort(), [...hashes].sort(), 'the copy has the rows');
    for (const h of hashes) {
      const f = path.join(dir, 'evidence', h.slice(0, 2), h);
      assert.equal(sha256(readFileSync(f)), h, `${h} is in the backup, intact`);
    }
    assert.match(first.stderr, new RegExp(`${hashes.length} new evidence files`));
    const second = run('two.db');
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stderr, /0 new evidence files/, 'files already there are not copied again');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a full disk refuses the upload with 507, leaves nothing, and the mark stays as it was', async () => {
  const r2 = await startRedis();
  const full = await startOtjd({ redis: r2.addr, env: { OTJ_MIN_FREE_MB: '4000000000' } });
  try {
    const q = sqlOf(full);
    const HH = q(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
    const lea = q(`SELECT id FROM users WHERE login='lea'`)[0].id;
    const host = await connectAs(full, 'rita');
    const snap = await host.ask({ t: 'open', module: HH, learners: [lea] });
    assert.equal((await host.ask({ t: 'mark', room: snap.room, learner: lea, task: 1, result: 'fail', note: 'no soap' })).t, 'ok');
    const r = await upload(full, host.token, { room: snap.room, learner: lea, task: 1 }, JPEG);
    assert.equal(r.status, 507);
    const body = await r.json();
    assert.equal(body.error, 'insufficient_storage');
    assert.match(body.message, /disk is full/);
    assert.deepEqual(storedFiles(full), [], 'nothing partial is left');
    assert.equal(q('SELECT count(*) AS n FROM evidence')[0].n, 0);
    const again = await host.ask({ t: 'join', room: snap.room });
    assert.deepEqual(again.marks, [{ learner: lea, task: 1, result: 'fail', note: 'no soap' }], 'the mark is unchanged');
    assert.equal((await fetch(`${full.base}/healthz`)).status, 200);
    await host.close();
  } finally {
    await full.stop();
    full.cleanup();
    await r2.stop();
  }
});
