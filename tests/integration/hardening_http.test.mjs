// Hostile and careless HTTP clients: pipelined requests in one packet,
// websocket upgrades without the otj.v1 subprotocol, websocket-level pings
// as the only sign of life, and cross-site writes riding on the session
// cookie. Raw `net` sockets where a well-behaved client library would hide
// the problem.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import WebSocket from 'ws';
import { startOtjd, login, connectAs, alive, sleep, OTJD } from './harness.mjs';

// Stops otjd even when its loop is stuck (SIGTERM would never be handled):
// a test must fail, never hang the suite.
async function withServer(env, fn) {
  const srv = await startOtjd({ env });
  let passed = false;
  try {
    await fn(srv);
    passed = true;
  } finally {
    const stopped = await Promise.race([srv.stop('SIGTERM'), sleep(5000).then(() => null)]);
    if (!stopped) await srv.stop('SIGKILL');
    srv.cleanup();
    if (passed) {
      // under the sanitizers a memory error or a leak shows in the log
      assert.ok(stopped, 'otjd stops on SIGTERM');
      assert.doesNotMatch(srv.log, /AddressSanitizer|runtime error:|LeakSanitizer/);
    }
  }
}

// Writes `chunks` to a fresh connection (`gap` ms apart) and collects what
// comes back until the server closes or `ms` pass.
function exchange(port, chunks, { gap = 50, ms = 3000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data, closed });
    };
    const timer = setTimeout(() => finish(false), ms);
    sock.on('data', (d) => { data += d.toString('latin1'); });
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('error', () => finish(true));
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (done) return;
        sock.write(c);
        if (gap) await sleep(gap);
      }
    });
  });
}

// The status codes of the HTTP answers in a byte stream, in order.
function statuses(data) {
  return [...data.matchAll(/(?:^|\r\n)HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

// The best of a few GET /healthz round trips, in ms; Infinity when none
// answers within a second (a stuck loop answers nothing).
async function bestHealthz(srv, tries = 5) {
  let best = Infinity;
  for (let i = 0; i < tries; i++) {
    const t0 = performance.now();
    try {
      const r = await fetch(`${srv.base}/healthz`, { signal: AbortSignal.timeout(1000) });
      await r.arrayBuffer();
      if (r.status === 200) best = Math.min(best, performance.now() - t0);
    } catch { /* counted as no answer */ }
    await sleep(20);
  }
  return best;
}

// Share of one core otjd used over `ms` (from /proc/PID/stat).
async function cpuShare(pid, ms = 1000) {
  const ticks = () => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  };
  const a = ticks();
  await sleep(ms);
  return (ticks() - a) / 100 / (ms / 1000); // USER_HZ is 100 on Linux
}

async function assertStillServing(srv) {
  assert.ok(alive(srv.proc.pid), 'otjd is still running');
  const best = await bestHealthz(srv);
  assert.ok(best < 100, `GET /healthz answers within 100 ms afterwards (best of 5: ${best} ms)`);
  const cpu = await cpuShare(srv.proc.pid);
  assert.ok(cpu < 0.5, `otjd is idle again, not spinning (${Math.round(cpu * 100)}% of a core)`);
}

// The later answers come in order, or the connection is closed after the
// answers it did give.
function assertAnsweredInOrderOrClosed(r, expected, what) {
  const got = statuses(r.data);
  assert.ok(got.length >= 1, `${what}: the first request is answered (got ${JSON.stringify(r.data.slice(0, 200))})`);
  assert.deepEqual(got, expected.slice(0, got.length), `${what}: answers in order`);
  assert.ok(got.length === expected.length || r.closed,
    `${what}: ${got.length} of ${expected.length} answered and the connection was not closed`);
}

const loginReq = (body) =>
  `POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
  `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

// ---- pipelining -----------------------------------------------------------

test('two POST /api/login with bodies in one packet: answered, and the server keeps serving', async () => {
  await withServer({}, async (srv) => {
    const r = await exchange(srv.port, [loginReq('{}') + loginReq('{}')]);
    assertAnsweredInOrderOrClosed(r, [400, 400], 'pipelined logins');
    await assertStillServing(srv);
  });
});

test('pipelined GETs in one packet: answered in order or closed after the first', async () => {
  await withServer({}, async (srv) => {
    const get = (p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`;
    const two = await exchange(srv.port, [get('/healthz') + get('/healthz')]);
    assertAnsweredInOrderOrClosed(two, [200, 200], 'two GETs');
    const three = await exchange(srv.port, [get('/healthz') + get('/api/me') + get('/healthz')]);
    assertAnsweredInOrderOrClosed(three, [200, 401, 200], 'three GETs');
    // a file of the web client, then a login with a body
    const file = await exchange(srv.port, [get('/') + loginReq('{}')]);
    assertAnsweredInOrderOrClosed(file, [200, 400], 'a file, then a POST');
    await assertStillServing(srv);
  });
});

test('a POST whose body arrives in pieces, with the next request behind it', async () => {
  await withServer({}, async (srv) => {
    const body = JSON.stringify({ login: 'nobody', password: 'x' });
    const whole = loginReq(body);
    const cut = whole.length - body.length + 5; // headers and 5 bytes of body
    const next = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
    // the rest of the body and the next request's headers in one piece
    const a = await exchange(srv.port, [whole.slice(0, cut), whole.slice(cut) + next.slice(0, 10), next.slice(10)],
      { gap: 100 });
    assertAnsweredInOrderOrClosed(a, [401, 200], 'body in pieces');
    // headers in one write, body and a second POST in the next
    const b = await exchange(srv.port, [whole.slice(0, cut - 5), whole.slice(cut - 5) + loginReq('{}')],
      { gap: 100 });
    assertAnsweredInOrderOrClosed(b, [401, 400], 'body with the next POST');
    await assertStillServing(srv);
  });
});

// ---- websocket upgrades -----------------------------------------------------

// Resolves 'open' or 'refused' for a websocket to /ws with `protocols`.
function tryUpgrade(srv, protocols) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/ws`, protocols);
    ws.on('open', () => { ws.terminate(); resolve('open'); });
    ws.on('unexpected-response', () => resolve('refused'));
    ws.on('error', () => resolve('refused'));
  });
}

async function metric(srv, name) {
  const text = await (await fetch(`${srv.base}/metrics`, srv.metricsAuth)).text();
  return Number(text.match(new RegExp(`^${name} (\\d+)$`, 'm'))[1]);
}

test('a websocket upgrade without the otj.v1 subprotocol is refused', async () => {
  await withServer({}, async (srv) => {
    assert.equal(await tryUpgrade(srv, undefined), 'refused', 'no subprotocol');
    assert.equal(await tryUpgrade(srv, ['chat']), 'refused', 'an unknown subprotocol');
    assert.equal(await tryUpgrade(srv, ['otj.v1']), 'open', 'otj.v1 still opens');
    // none of them is left open outside the count
    const held = [];
    for (let i = 0; i < 5; i++) held.push(new WebSocket(`ws://127.0.0.1:${srv.port}/ws`));
    const outcomes = await Promise.all(held.map((ws) => new Promise((resolve) => {
      ws.on('open', () => resolve('open'));
      ws.on('unexpected-response', () => resolve('refused'));
      ws.on('error', () => resolve('refused'));
    })));
    for (const ws of held) ws.terminate();
    assert.deepEqual(outcomes, Array(5).fill('refused'));
    assert.equal(await metric(srv, 'otj_ws_connections'), 0);
  });
});

test('websocket ping frames count as activity for the idle timeout', async () => {
  await withServer({ OTJ_IDLE_TIMEOUT: '2' }, async (srv) => {
    const quiet = await connectAs(srv, 'lea');
    const pinging = await connectAs(srv, 'leo');
    let closedEarly = null;
    pinging.closed.then((c) => { closedEarly = c; });
    const timer = setInterval(() => pinging.ws.ping(), 300);
    const q = await quiet.closed; // the quiet one still goes
    assert.equal(q.code, 1008);
    await sleep(3000); // well past the idle timeout
    clearInterval(timer);
    assert.equal(closedEarly, null, `closed as idle: ${JSON.stringify(closedEarly)}`);
    assert.equal((await pinging.request({ t: 'ping', rid: 7 })).t, 'pong');
    await pinging.close();
  });
});

// ---- cross-site writes with the session cookie --------------------------------

test('a write riding on the session cookie needs an allowed Origin and a JSON body', async () => {
  await withServer({ OTJ_ORIGINS: 'https://otj.example' }, async (srv) => {
    const { cookie, body: session } = await login(srv, 'admin');
    const jar = cookie.split(';')[0];
    let n = 0;
    const create = (headers, body = JSON.stringify({ name: `Ward X${++n}` })) =>
      fetch(`${srv.base}/api/admin/departments`, { method: 'POST', headers: { cookie: jar, ...headers }, body });
    const refused = async (r, what, pattern) => {
      assert.equal(r.status, 403, what);
      const b = await r.json();
      assert.equal(b.error, 'forbidden', what);
      assert.match(b.message, pattern, what);
    };
    const departments = async () => (await (await fetch(`${srv.base}/api/admin/departments`,
      { headers: { cookie: jar } })).json()).items.length;
    const before = await departments();

    // the attack of the report: a foreign page, a form-like body
    await refused(await create({ origin: 'http://evil.example', 'content-type': 'text/plain' }),
      'foreign Origin, text/plain', /Origin|site/);
    await refused(await create({ origin: 'http://evil.example', 'content-type': 'application/json' }),
      'foreign Origin', /Origin|site/);
    await refused(await create({ origin: 'null', 'content-type': 'application/json' }), 'Origin null', /Origin|site/);
    await refused(await create({ 'content-type': 'text/plain' }), 'text/plain without Origin', /application\/json/);
    await refused(await create({ 'content-type': 'application/x-www-form-urlencoded' }), 'a form body', /application\/json/);
    await refused(await create({}), 'no Content-Type', /application\/json/);
    await refused(await create({ 'sec-fetch-site': 'cross-site', 'content-type': 'application/json' }),
      'Sec-Fetch-Site cross-site', /Origin|site/);
    await refused(await create({ referer: 'http://evil.example/page', 'content-type': 'application/json' }),
      'foreign Referer', /Origin|site/);
    // a DELETE and a logout by cookie are writes too
    const del = await fetch(`${srv.base}/api/admin/departments/1`,
      { method: 'DELETE', headers: { cookie: jar, origin: 'http://evil.example' } });
    await refused(del, 'DELETE from a foreign Origin', /Origin|site/);
    const out = await fetch(`${srv.base}/api/logout`,
      { method: 'POST', headers: { cookie: jar, origin: 'http://evil.example', 'content-type': 'text/plain' } });
    await refused(out, 'logout from a foreign Origin', /Origin|site/);
    assert.equal(await departments(), before, 'nothing was created');

    // what the web client sends: its own origin (or a configured one), JSON
    const own = `http://127.0.0.1:${srv.port}`;
    assert.equal((await create({ origin: own, 'content-type': 'application/json; charset=utf-8',
      'sec-fetch-site': 'same-origin' })).status, 201);
    assert.equal((await create({ origin: 'https://otj.example', 'content-type': 'application/json' })).status, 201);
    assert.equal((await create({ referer: `${own}/#/admin`, 'content-type': 'application/json' })).status, 201);
    assert.equal((await create({ 'content-type': 'application/json' })).status, 201, 'no Origin: not a browser page');
    // a bearer token is not sent by browsers on their own: no such rule
    const bearer = await fetch(`${srv.base}/api/admin/departments`, { method: 'POST',
      headers: { authorization: `Bearer ${session.token}`, origin: 'http://evil.example', 'content-type': 'text/plain' },
      body: JSON.stringify({ name: 'Ward by bearer' }) });
    assert.equal(bearer.status, 201);
    // reading is not a write
    const read = await fetch(`${srv.base}/api/me`, { headers: { cookie: jar, origin: 'http://evil.example' } });
    assert.equal(read.status, 200);
    assert.equal(await departments(), before + 5);
  });
});

// An answer larger than the socket takes at once (lws keeps the tail and
// sends it on POLLOUT) must arrive whole before the connection closes, even
// to a client that does not read for a while.
test('a large answer reaches a slow reader whole before the connection closes', async () => {
  await withServer({}, async (srv) => {
    const { body } = await login(srv, 'admin');
    const auth = { authorization: `Bearer ${body.token}`, 'content-type': 'application/json' };
    const tasks = Array.from({ length: 256 }, (_, i) => ({
      kind: 'observe', text: `Step ${i}: ${'x'.repeat(1900)}`,
    }));
    const created = await fetch(`${srv.base}/api/admin/modules`, {
      method: 'POST', headers: auth,
      body: JSON.stringify({ title: 'Long drill', type: 'quiz', otj: true, tasks }),
    });
    const mod = await created.json();
    assert.equal(created.status, 201, JSON.stringify(mod).slice(0, 200));

    const got = await new Promise((resolve) => {
      const sock = net.connect(srv.port, '127.0.0.1');
      const parts = [];
      sock.on('connect', () => {
        sock.write(`GET /api/admin/modules/${mod.id} HTTP/1.1\r\nHost: x\r\n` +
                   `Authorization: Bearer ${body.token}\r\n\r\n`);
        sock.pause(); // read nothing for a while: the server's socket buffer fills
        setTimeout(() => sock.resume(), 1500);
      });
      sock.on('data', (d) => parts.push(d));
      sock.on('close', () => resolve(Buffer.concat(parts)));
      setTimeout(() => { sock.destroy(); }, 10000);
    });
    const head = got.subarray(0, got.indexOf('\r\n\r\n')).toString('latin1');
    assert.match(head, /^HTTP\/1\.1 200 /, head);
    const length = Number(/content-length: (\d+)/i.exec(head)[1]);
    assert.ok(length > 400000, `a large answer (${length} bytes)`);
    const payload = got.subarray(got.indexOf('\r\n\r\n') + 4);
    assert.equal(payload.length, length, 'the whole body arrived before the close');
    assert.equal(JSON.parse(payload.toString('utf8')).tasks.length, 256);
    assert.ok(await bestHealthz(srv) < 100, '/healthz answers within 100 ms afterwards');
  });
});

// ---- memory held by request bodies ----------------------------------------

// A connection that declares a 1 MiB body and sends only its first bytes:
// the server holds the whole body's buffer until the rest arrives.
function holdBody(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('error', () => {});
    sock.on('connect', () => {
      sock.write('POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
                 'Content-Length: 1048576\r\n\r\n{"login":"');
      setTimeout(() => resolve(sock), 200);
    });
    setTimeout(() => reject(new Error('no connection')), 3000);
  });
}

test('bodies held at once are bounded: the request over the bound is answered 503 and the server keeps serving', async () => {
  // room for two 1 MiB bodies, not three
  await withServer({ OTJ_MAX_HTTP_BODIES: String(3 * 1024 * 1024 - 1), OTJ_EVIDENCE_MAX_BYTES: '1048576' }, async (srv) => {
    const full = loginReq(JSON.stringify({ login: 'x'.repeat(1048576 - 27), password: 'p' }));
    assert.equal(Buffer.byteLength(full.slice(full.indexOf('\r\n\r\n') + 4)), 1048576);
    const a = await holdBody(srv.port);
    const b = await holdBody(srv.port);
    assert.ok(await metric(srv, 'otj_http_body_bytes') >= 2 * 1048576, 'two bodies are held');

    const refused = await exchange(srv.port, [full], { gap: 0, ms: 5000 });
    assert.deepEqual(statuses(refused.data), [503], refused.data.slice(0, 300));
    assert.match(refused.data, /\r\nretry-after: 1\r\n/i);
    assert.match(refused.data, /"unavailable"/);
    assert.equal(await metric(srv, 'otj_http_busy_total'), 1);

    // one held body let go: a request of the same size is read again
    a.destroy();
    await sleep(200);
    const served = await exchange(srv.port, [full], { gap: 0, ms: 5000 });
    const [status] = statuses(served.data);
    assert.ok(status && status !== 503, `served once there is room (got ${status})`);
    b.destroy();
    await sleep(200);
    assert.equal(await metric(srv, 'otj_http_body_bytes'), 0, 'nothing is held once they are gone');
    await assertStillServing(srv);
  });
});

test('max_http_bodies must leave room for one largest request', () => {
  const r = spawnSync(OTJD, ['check-config', '--max-http-bodies', '1048576'], { encoding: 'utf8' });
  assert.equal(r.status, 64, r.stdout + r.stderr);
  assert.match(r.stderr, /max_http_bodies \(1048576\) must be more than max_http_body/);
  const ok = spawnSync(OTJD, ['check-config', '--max-http-bodies', '67108864'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
});
