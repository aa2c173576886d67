// otjd's log: one logfmt line per event (ts, level, msg, then ids), the level
// chosen by log_level, connection, room and approval events with their ids,
// and never a password, a token, a cookie, an answer or a note, even at
// debug. Also the two live-room series of /metrics: otj_rooms_open and the
// pub/sub hop (otj_pubsub_latency_seconds).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startRedis, startOtjd, connectAs, login, Client, sleep, waitFor } from './harness.mjs';

// Parses one logfmt line into [key, value] pairs; throws when it is not one.
function parseLogfmt(line) {
  const pairs = [];
  const re = /\s*([A-Za-z_][A-Za-z0-9_.-]*)=("(?:[^"\\]|\\.)*"|[^\s"=]*)/y;
  let i = 0;
  while (i < line.length) {
    re.lastIndex = i;
    const m = re.exec(line);
    if (!m) throw new Error(`not logfmt at column ${i}: ${JSON.stringify(line)}`);
    const v = m[2].startsWith('"') ? JSON.parse(m[2]) : m[2];
    pairs.push([m[1], v]);
    i = re.lastIndex;
  }
  return pairs;
}

// Every line of the log as {ts, level, msg, ...keys}, checked.
function parseLog(log) {
  return log.split('\n').filter((l) => l !== '').map((line) => {
    const pairs = parseLogfmt(line);
    assert.deepEqual(pairs.slice(0, 3).map(([k]) => k), ['ts', 'level', 'msg'], line);
    const o = Object.fromEntries(pairs);
    assert.match(o.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, line);
    assert.ok(Math.abs(Date.parse(o.ts) - Date.now()) < 600000, `ts is now, in UTC: ${line}`);
    assert.ok(['debug', 'info', 'warn', 'error'].includes(o.level), line);
    assert.ok(o.msg.length > 0, line);
    o.line = line;
    return o;
  });
}

function sqlOf(srv) {
  return (query) => JSON.parse(execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000',
    `${srv.dataDir}/otj.db`, query]).toString() || '[]');
}

async function ask(c, msg, ms = 5000) {
  const rid = Math.floor(Math.random() * 1e9);
  c.send({ ...msg, rid });
  for (;;) {
    const m = await c.next(ms);
    if (m.rid === rid) return m;
  }
}

async function metrics(srv) {
  return (await fetch(`${srv.base}/metrics`, srv.metricsAuth)).text();
}
const series = (text, name) => Number((text.match(new RegExp(`^${name} (\\S+)$`, 'm')) || [])[1]);

test('a drill at log_level debug: logfmt lines with the ids, and no password, token, cookie, answer or note', async () => {
  const redis = await startRedis();
  const srv = await startOtjd({ redis: redis.addr, env: { OTJ_LOG_LEVEL: 'debug' } });
  const secrets = {
    password: 'otj-demo',
    wrongPassword: 'Wr0ng-P4ss-7f3a9c',
    note: 'Forgot-the-nail-brush-6d1e',
    approveNote: 'Well-done-on-the-towel-2b8f',
    unknownToken: 'a'.repeat(43),
  };
  try {
    const sql = sqlOf(srv);
    const HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
    const lea = sql(`SELECT id FROM users WHERE login='lea'`)[0].id;
    const ritaId = sql(`SELECT id FROM users WHERE login='rita'`)[0].id;

    assert.equal((await login(srv, 'lea', secrets.wrongPassword)).status, 401);
    const stranger = new Client(srv);
    await stranger.opened();
    assert.equal((await stranger.request({ t: 'hello', v: 1, token: secrets.unknownToken })).t, 'err');
    await stranger.close();

    const rita = await connectAs(srv, 'rita');
    const leaC = await connectAs(srv, 'lea');
    const { cookie } = await login(srv, 'leo');
    secrets.cookie = cookie.split(';')[0].split('=')[1];
    secrets.ritaToken = rita.token;
    secrets.leaToken = leaC.token;

    const snap = await ask(rita, { t: 'open', module: HH, learners: [lea] });
    assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
    assert.equal((await ask(leaC, { t: 'join', room: snap.room })).t, 'snapshot');
    const ack = await ask(leaC, { t: 'answer', room: snap.room, task: 0, value: 1, key: 'lea-k1' });
    assert.equal(ack.t, 'ack', JSON.stringify(ack));
    assert.equal((await ask(rita, { t: 'mark', room: snap.room, learner: lea, task: 1, result: 'pass', note: secrets.note })).t, 'ok');
    for (const task of [2, 3])
      assert.equal((await ask(rita, { t: 'mark', room: snap.room, learner: lea, task, result: 'pass' })).t, 'ok');
    const res = await ask(rita, { t: 'approve', room: snap.room,
      decisions: [{ learner: lea, approved: true, note: secrets.approveNote }] });
    assert.equal(res.t, 'approved', JSON.stringify(res));
    const completion = res.results[0].completion;
    assert.equal((await ask(rita, { t: 'close', room: snap.room })).t, 'ok');
    await leaC.close();
    await rita.close();
    await waitFor(async () => srv.log.split('\n').filter((l) => l.includes('msg="ws closed"')).length >= 3, 'closes logged');
    await srv.stopClean();

    const lines = parseLog(srv.log);
    for (const [what, s] of Object.entries(secrets))
      assert.ok(!srv.log.includes(s), `the log holds no ${what} (${s}):\n${srv.log}`);
    for (const l of lines)
      for (const k of ['token', 'password', 'cookie', 'note', 'value', 'answer'])
        assert.ok(!(k in l), `no key ${k}: ${l.line}`);

    const find = (msg, pred = () => true) => lines.filter((l) => l.msg === msg && pred(l));
    assert.ok(find('serving').length === 1, 'the start is logged');
    assert.equal(find('redis: connected').length, 1);
    // connections: accepted, hello (with the user), closed (with the code)
    const ritaHello = find('ws hello', (l) => l.user === String(ritaId))[0];
    assert.ok(ritaHello && /^\d+$/.test(ritaHello.session), 'hello names the session and the user');
    assert.equal(find('ws accepted', (l) => l.session === ritaHello.session).length, 1);
    const closed = find('ws closed', (l) => l.session === ritaHello.session)[0];
    assert.ok(closed, 'the close of that session is logged');
    assert.equal(closed.user, String(ritaId));
    assert.ok(['1000', '1005'].includes(closed.code), closed.line);
    assert.equal(closed.by, 'client');
    assert.equal(find('ws hello refused', (l) => l.reason === 'unknown_session').length, 1);
    // rooms and approvals
    const opened = find('room opened', (l) => l.room === snap.room);
    assert.equal(opened.length, 1, srv.log);
    assert.equal(opened[0].module, String(HH));
    assert.equal(opened[0].host, String(ritaId));
    assert.equal(find('room joined', (l) => l.room === snap.room && l.user === String(lea)).length, 1);
    assert.equal(find('room closed', (l) => l.room === snap.room && l.host === String(ritaId)).length, 1);
    const approval = find('approval', (l) => l.room === snap.room);
    assert.equal(approval.length, 1, srv.log);
    assert.equal(approval[0].learner, String(lea));
    assert.equal(approval[0].approver, String(ritaId));
    assert.equal(approval[0].outcome, 'approved');
    assert.equal(approval[0].completion, String(completion));
    // per-message lines at debug: the type, never the content
    const answers = find('ws message', (l) => l.type === 'answer');
    assert.equal(answers.length, 1, 'each message is logged at debug');
    assert.equal(answers[0].level, 'debug');
    assert.equal(find('stopped').length, 1);
  } finally {
    await srv.stop();
    srv.cleanup();
    await redis.stop();
  }
});

test('log_level warn: no info or debug lines; a bad level is refused at start', async () => {
  const redis = await startRedis();
  const srv = await startOtjd({ redis: redis.addr, env: { OTJ_LOG_LEVEL: 'warn' } });
  try {
    const c = await connectAs(srv, 'rita');
    await c.close();
    await srv.stopClean();
    const lines = parseLog(srv.log);
    assert.deepEqual(lines.filter((l) => l.level === 'info' || l.level === 'debug'), [], srv.log);
  } finally {
    await srv.stop();
    srv.cleanup();
    await redis.stop();
  }
  let out;
  try {
    execFileSync(process.env.OTJD || 'build/server/otjd', ['check-config', '--log-level', 'loud'],
      { stdio: 'pipe' });
    assert.fail('a bad log_level is refused');
  } catch (e) {
    assert.equal(e.status, 64);
    out = e.stderr.toString();
  }
  const [line] = parseLog(out);
  assert.equal(line.level, 'error');
  assert.match(line.msg, /log-level wants debug, info, warn or error, got 'loud'/);
});

test('/metrics: otj_rooms_open counts the rooms held here, and room events measure the pub/sub hop', async () => {
  const redis = await startRedis();
  const a = await startOtjd({ redis: redis.addr });
  const b = await startOtjd({ redis: redis.addr, demo: false, dataDir: a.dataDir });
  try {
    const sql = sqlOf(a);
    const HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
    const lea = sql(`SELECT id FROM users WHERE login='lea'`)[0].id;
    assert.equal(series(await metrics(a), 'otj_rooms_open'), 0);
    const rita = await connectAs(a, 'rita');
    const snap = await ask(rita, { t: 'open', module: HH, learners: [lea] });
    assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
    // lea is on the other instance: the events reach her through Redis
    const leaC = await connectAs(b, 'lea');
    assert.equal((await ask(leaC, { t: 'join', room: snap.room })).t, 'snapshot');
    assert.equal(series(await metrics(a), 'otj_rooms_open'), 1);
    assert.equal(series(await metrics(b), 'otj_rooms_open'), 1);
    const before = series(await metrics(b), 'otj_pubsub_latency_seconds_count');
    for (const task of [1, 2, 3])
      assert.equal((await ask(rita, { t: 'step', room: snap.room, task })).t, 'ok');
    await waitFor(async () => series(await metrics(b), 'otj_pubsub_latency_seconds_count') >= before + 3,
      'the other instance measured the hop of the three steps');
    const text = await metrics(b);
    assert.match(text, /^# TYPE otj_pubsub_latency_seconds histogram$/m);
    assert.ok(series(text, 'otj_pubsub_latency_seconds_sum') < 5, 'a hop on one machine takes well under a second each');
    await leaC.close();
    await waitFor(async () => series(await metrics(b), 'otj_rooms_open') === 0, 'b lets the room go');
    assert.equal((await ask(rita, { t: 'close', room: snap.room })).t, 'ok');
    await rita.close();
    await waitFor(async () => series(await metrics(a), 'otj_rooms_open') === 0, 'a lets the room go');
    await sleep(10);
  } finally {
    await b.stop();
    await a.stop();
    a.cleanup();
    await redis.stop();
  }
});
