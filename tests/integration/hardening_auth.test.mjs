// Rights and sessions hold on every path: a responsible whose rights go
// away cannot approve on a socket opened before; a logout, a change of
// rights or a deactivation reaches open websockets (on every instance)
// within a second; a deactivated user cannot log in and keeps their
// records. Login throttling: case-folded, counted before the slow hash,
// per address and global budgets, and a lockout that ends.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { startRedis, startOtjd, connectAs, login, sleep } from './harness.mjs';

const CLOSE_SESSION_ENDED = 4401;
const CLOSE_RIGHTS_CHANGED = 4403;

function sqlOf(srv) {
  return (query) => {
    const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000',
      `${srv.dataDir}/otj.db`, query]).toString();
    return out.trim() ? JSON.parse(out) : [];
  };
}


async function call(srv, token, method, path, body) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${srv.base}${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* CSV or empty */ }
  return { status: r.status, body: json, text };
}

// Resolves with {code, reason, ms} when the socket closes within `ms`
// milliseconds of `t0`, or null when it is still open then.
async function closedWithin(c, t0, ms) {
  const left = Math.max(0, t0 + ms - Date.now());
  const r = await Promise.race([c.closed, sleep(left).then(() => null)]);
  return r && { ...r, ms: Date.now() - t0 };
}

// A login from a chosen local address (127.0.0.x), to stand for another
// machine.
function loginFrom(srv, localAddress, loginName, password) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ login: loginName, password });
    const req = http.request({
      host: '127.0.0.1', port: srv.port, path: '/api/login', method: 'POST', localAddress,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('rights, logout and deactivation reach open websockets', () => {
  let redis, A, B, sql, adminToken;
  const id = (login) => sql(`SELECT id FROM users WHERE login='${login}'`)[0].id;
  const HH = () => sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;

  before(async () => {
    redis = await startRedis();
    A = await startOtjd({ redis: redis.addr });
    B = await startOtjd({ redis: redis.addr, dataDir: A.dataDir, demo: false });
    sql = sqlOf(A);
    adminToken = (await login(A, 'admin')).body.token;
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

  // A room of rita's with `learner` in it, every observe task passed.
  async function readyRoom(rita, learner) {
    const snap = await rita.ask({ t: 'open', module: HH(), learners: [learner] });
    assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
    for (const task of [1, 2, 3])
      assert.equal((await rita.ask({ t: 'mark', room: snap.room, learner, task, result: 'pass' })).t, 'ok');
    return snap.room;
  }
  const completions = (learner) =>
    sql(`SELECT id, approved_by FROM completions WHERE user_id=${learner} AND module_id=${HH()}`);

  test('the approver\'s rights are checked again in the transaction that writes the completion', async () => {
    const leo = id('leo');
    const rita = await connectAs(A, 'rita');
    const room = await readyRoom(rita, leo);
    const audits = () => sql(`SELECT count(*) AS n FROM audit WHERE action='otj.refused'`)[0].n;

    // moved to Ward 3 behind the server's back (another tool, another
    // process): leo is out of her reach now
    sql(`UPDATE users SET department_id=(SELECT id FROM departments WHERE name='Ward 3') WHERE login='rita'`);
    const before = audits();
    let res = await rita.ask({ t: 'approve', room, decisions: [{ learner: leo, approved: true }] });
    assert.equal(res.t, 'err', JSON.stringify(res));
    assert.equal(res.code, 'forbidden');
    assert.equal(completions(leo).length, 0);
    assert.equal(audits(), before + 1, 'the refusal is audited');
    sql(`UPDATE users SET department_id=(SELECT id FROM departments WHERE name='Kitchen') WHERE login='rita'`);

    // Facilitate OTJ taken away behind the server's back
    sql(`UPDATE permissions SET facilitate_otj=0 WHERE user_id=${id('rita')}`);
    res = await rita.ask({ t: 'approve', room, decisions: [{ learner: leo, approved: true }] });
    assert.equal(res.code, 'forbidden', JSON.stringify(res));
    assert.equal(completions(leo).length, 0);
    sql(`UPDATE permissions SET facilitate_otj=1 WHERE user_id=${id('rita')}`);

    // deactivated behind the server's back
    sql(`UPDATE users SET active=0 WHERE login='rita'`);
    res = await rita.ask({ t: 'approve', room, decisions: [{ learner: leo, approved: true }] });
    assert.equal(res.code, 'forbidden', JSON.stringify(res));
    assert.equal(completions(leo).length, 0);
    sql(`UPDATE users SET active=1 WHERE login='rita'`);

    // rights intact: the approval goes through
    res = await rita.ask({ t: 'approve', room, decisions: [{ learner: leo, approved: true }] });
    assert.equal(res.t, 'approved', JSON.stringify(res));
    assert.equal(res.results[0].status, 'approved');
    const rows = completions(leo);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].approved_by, id('rita'));
    assert.equal(rows[0].id, res.results[0].completion);
    await rita.close();
  });

  test('removing rita\'s rights closes her sockets on both instances within a second; she cannot approve', async () => {
    const lars = id('lars');
    const ritaToken = (await login(A, 'rita')).body.token;
    const onB = await connectAs(B, 'rita'); // the room runs on the other instance
    const onA = await connectAs(A, 'rita');
    const room = await readyRoom(onB, lars);
    const lea = await connectAs(A, 'lea'); // someone else: left alone

    const res = await call(A, adminToken, 'PUT', `/api/admin/users/${id('rita')}/permissions`,
      { management: false, facilitate_otj: false });
    assert.equal(res.status, 200, res.text);
    const t0 = Date.now();
    assert.equal((await call(A, ritaToken, 'GET', '/api/otj/pending')).status, 403);
    const [cb, ca] = await Promise.all([closedWithin(onB, t0, 1000), closedWithin(onA, t0, 1000)]);
    if (!cb) {
      // still open: at least the approval must not go through
      const late = await onB.ask({ t: 'approve', room, decisions: [{ learner: lars, approved: true }] });
      assert.notEqual(late.t, 'approved', 'approved after the rights were removed');
    }
    assert.ok(cb, 'rita\'s socket on the other instance is still open after 1 s');
    assert.ok(ca, 'rita\'s socket on the same instance is still open after 1 s');
    assert.equal(cb.code, CLOSE_RIGHTS_CHANGED);
    assert.equal(ca.code, CLOSE_RIGHTS_CHANGED);
    assert.match(cb.reason, /rights/);
    assert.equal(completions(lars).length, 0);
    assert.equal((await lea.ask({ t: 'ping' })).t, 'pong', 'other users keep their sockets');

    // her token still works: a new socket learns her new rights
    const again = await connectAs(A, 'rita');
    assert.equal(again.user.responsible, false);
    const open = await again.ask({ t: 'open', module: HH(), learners: [] });
    assert.equal(open.code, 'forbidden');
    await again.close();

    // rights back: she approves again
    assert.equal((await call(A, adminToken, 'PUT', `/api/admin/users/${id('rita')}/permissions`,
      { management: true, facilitate_otj: true })).status, 200);
    const back = await connectAs(B, 'rita');
    assert.equal(back.user.responsible, true);
    assert.equal((await back.ask({ t: 'join', room })).t, 'snapshot');
    const ok = await back.ask({ t: 'approve', room, decisions: [{ learner: lars, approved: true }] });
    assert.equal(ok.results[0].status, 'approved', JSON.stringify(ok));
    assert.equal(completions(lars).length, 1);
    await back.close();
    await lea.close();
  });

  test('a change of department or of the admin flag closes the user\'s sockets too', async () => {
    const mark = await connectAs(B, 'mark');
    let res = await call(A, adminToken, 'PATCH', `/api/admin/users/${id('mark')}`,
      { department_id: sql(`SELECT id FROM departments WHERE name='Ward 3'`)[0].id });
    assert.equal(res.status, 200, res.text);
    let c = await closedWithin(mark, Date.now(), 1000);
    assert.ok(c, 'still open after a department change');
    assert.equal(c.code, CLOSE_RIGHTS_CHANGED);

    const mark2 = await connectAs(A, 'mark');
    res = await call(A, adminToken, 'PATCH', `/api/admin/users/${id('mark')}`, { admin: true });
    assert.equal(res.status, 200, res.text);
    c = await closedWithin(mark2, Date.now(), 1000);
    assert.ok(c, 'still open after the admin flag changed');
    assert.equal(c.code, CLOSE_RIGHTS_CHANGED);

    // a name change is not a change of rights
    const mark3 = await connectAs(A, 'mark');
    res = await call(A, adminToken, 'PATCH', `/api/admin/users/${id('mark')}`, { name: 'Mark Moe' });
    assert.equal(res.status, 200, res.text);
    assert.equal(await closedWithin(mark3, Date.now(), 300), null);
    await mark3.close();
  });

  test('logout closes the sockets of that token, on every instance, within a second; not the others', async () => {
    const t1 = (await login(A, 'nina')).body.token;
    const t2 = (await login(A, 'nina')).body.token;
    const viaToken = async (srv, token) => {
      const { Client } = await import('./harness.mjs');
      const c = new Client(srv);
      await c.opened();
      const w = await c.request({ t: 'hello', v: 1, token });
      assert.equal(w.t, 'welcome');
      return c;
    };
    const a1 = await viaToken(A, t1);
    const b1 = await viaToken(B, t1);
    const a2 = await viaToken(A, t2);
    const out = await call(A, t1, 'POST', '/api/logout', {});
    assert.equal(out.status, 200);
    const t0 = Date.now();
    const [ca, cb] = await Promise.all([closedWithin(a1, t0, 1000), closedWithin(b1, t0, 1000)]);
    assert.ok(ca, 'the logged-out socket on the same instance still answers after 1 s');
    assert.ok(cb, 'the logged-out socket on the other instance still answers after 1 s');
    assert.equal(ca.code, CLOSE_SESSION_ENDED);
    assert.equal(cb.code, CLOSE_SESSION_ENDED);
    // the other session of the same person stays
    assert.equal((await a2.ask({ t: 'ping' })).t, 'pong');
    assert.equal((await call(A, t1, 'GET', '/api/me')).status, 401);
    assert.equal((await call(A, t2, 'GET', '/api/me')).status, 200);
    await a2.close();
  });

  test('a deactivated user cannot log in, their sockets close, their completions stay', async () => {
    const lea = id('lea');
    const token = (await login(A, 'lea')).body.token;
    const onA = await connectAs(A, 'lea');
    const onB = await connectAs(B, 'lea');
    const before = (await call(A, adminToken, 'GET', '/api/completions')).body.items
      .filter((c) => c.learner.id === lea);
    assert.ok(before.length >= 1);

    const res = await call(A, adminToken, 'PATCH', `/api/admin/users/${lea}`, { active: false });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.active, false);
    const t0 = Date.now();
    const [ca, cb] = await Promise.all([closedWithin(onA, t0, 1000), closedWithin(onB, t0, 1000)]);
    assert.ok(ca && cb, 'a deactivated user\'s sockets are still open after 1 s');
    assert.equal(ca.code, CLOSE_SESSION_ENDED);
    assert.equal(cb.code, CLOSE_SESSION_ENDED);
    assert.match(ca.reason, /deactivated/);

    // no way back in: the old token is dead, the password no longer works
    assert.equal((await call(A, token, 'GET', '/api/me')).status, 401);
    const denied = await login(A, 'lea');
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error, 'forbidden');
    assert.match(denied.body.message, /deactivated/);
    assert.equal(denied.body.token, undefined);
    // a wrong password says nothing about the account
    assert.equal((await login(A, 'lea', 'not-her-password')).status, 401);
    assert.equal(sql(`SELECT count(*) AS n FROM login_sessions WHERE user_id=${lea}`)[0].n, 0);

    // the records stay, in JSON and CSV, and the admin sees the flag
    const after = (await call(A, adminToken, 'GET', '/api/completions')).body.items
      .filter((c) => c.learner.id === lea);
    assert.deepEqual(after.map((c) => c.id), before.map((c) => c.id));
    const csv = (await call(A, adminToken, 'GET', '/api/completions?format=csv')).text;
    assert.match(csv, /,lea,/);
    const listed = (await call(A, adminToken, 'GET', '/api/admin/users')).body.items.find((u) => u.id === lea);
    assert.equal(listed.active, false);
    assert.equal(sql(`SELECT count(*) AS n FROM audit WHERE action='user.deactivated' AND subject='user:${lea}'`)[0].n, 1);

    // an administrator cannot deactivate themselves
    const self = await call(A, adminToken, 'PATCH', `/api/admin/users/${id('admin')}`, { active: false });
    assert.equal(self.status, 409);

    // reactivated: she logs in again
    const re = await call(A, adminToken, 'PATCH', `/api/admin/users/${lea}`, { active: true });
    assert.equal(re.status, 200);
    assert.equal(re.body.active, true);
    assert.equal((await login(A, 'lea')).status, 200);
    assert.equal(sql(`SELECT count(*) AS n FROM audit WHERE action='user.reactivated' AND subject='user:${lea}'`)[0].n, 1);
  });
});

describe('login throttling', () => {
  async function withServer(env, fn) {
    const srv = await startOtjd({ env });
    try {
      await fn(srv);
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  }

  test('40 parallel wrong logins: the attempts are counted before the password check', async () => {
    await withServer({}, async (srv) => {
      const codes = await Promise.all(Array.from({ length: 40 }, () =>
        login(srv, 'mark', 'wrong-password').then((r) => r.status)));
      const n429 = codes.filter((c) => c === 429).length;
      const n401 = codes.filter((c) => c === 401).length;
      assert.ok(n429 >= 20, `only ${n429} of 40 refused: ${codes.join(',')}`);
      assert.ok(n401 <= 10, `${n401} passwords checked`);
      const r = await fetch(`${srv.base}/api/login`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ login: 'mark', password: 'wrong' }),
      });
      assert.equal(r.status, 429);
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
      assert.ok(Number(r.headers.get('retry-after')) <= 60);
    });
  });

  test('"MARK" and "mark" share one counter', async () => {
    await withServer({}, async (srv) => {
      for (let i = 0; i < 10; i++)
        assert.equal((await login(srv, i % 2 ? 'mark' : 'Mark', 'wrong-password')).status, 401);
      const r = await login(srv, 'MARK', 'otj-demo');
      assert.equal(r.status, 429, 'MARK logged in past the limit of mark');
    });
  });

  test('after the lockout window the right password works', async () => {
    // The window runs from the first count; the ten wrong passwords go out
    // together, so the slow password checks (on a loaded machine, seconds)
    // cannot use it up before the refusal is checked.
    const windowS = 8;
    await withServer({ OTJ_LOGIN_WINDOW: String(windowS) }, async (srv) => {
      const t0 = Date.now();
      const codes = await Promise.all(Array.from({ length: 10 }, () =>
        login(srv, 'mark', 'wrong-password').then((r) => r.status)));
      assert.deepEqual(codes, Array(10).fill(401));
      const refused = await login(srv, 'mark', 'otj-demo');
      assert.ok(Date.now() - t0 < windowS * 1000, 'still inside the window');
      assert.equal(refused.status, 429);
      await sleep(t0 + windowS * 1000 + 200 - Date.now());
      assert.equal((await login(srv, 'mark', 'otj-demo')).status, 200);
    });
  });

  test('guesses from another address do not lock the real user out; one address has a budget over all logins', async () => {
    await withServer({ OTJ_LOGIN_PER_ADDRESS: '15' }, async (srv) => {
      for (let i = 0; i < 12; i++) await loginFrom(srv, '127.0.0.2', 'rita', 'wrong-password');
      assert.equal(await loginFrom(srv, '127.0.0.2', 'rita', 'otj-demo'), 429);
      // rita, from her own machine
      assert.equal(await loginFrom(srv, '127.0.0.1', 'rita', 'otj-demo'), 200);
      // the guesser moves on to other names from the same address
      const codes = [];
      for (const who of ['lea', 'leo', 'liv', 'lars', 'nina', 'omar'])
        codes.push(await loginFrom(srv, '127.0.0.2', who, 'wrong-password'));
      assert.ok(codes.includes(429), `no per-address budget: ${codes.join(',')}`);
      // other addresses are not concerned
      assert.equal(await loginFrom(srv, '127.0.0.3', 'leo', 'otj-demo'), 200);
    });
  });

  test('a global budget of failed logins', async () => {
    await withServer({ OTJ_LOGIN_GLOBAL: '12' }, async (srv) => {
      const codes = [];
      let i = 0;
      for (const who of ['lea', 'leo', 'liv', 'lars', 'nina', 'omar', 'ola'])
        for (let k = 0; k < 2; k++)
          codes.push(await loginFrom(srv, `127.0.1.${++i}`, who, 'wrong-password'));
      assert.ok(codes.includes(429), `no global budget: ${codes.join(',')}`);
    });
  });
});
