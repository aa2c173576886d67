// The walking skeleton against real processes: otjd with its own
// redis-server (started here on a free port), login over HTTP, hello /
// welcome, ping / pong, and bad input that must not hurt anyone else.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, startOtjd, login, Client, connectAs, encode, sleep } from './harness.mjs';

let redis, srv;

before(async () => {
  redis = await startRedis();
  srv = await startOtjd({ redis: redis.addr });
});

after(async () => {
  try {
    if (srv) await srv.stopClean();
  } finally {
    if (srv) srv.cleanup();
    if (redis) await redis.stop();
  }
});

test('healthz says Redis and SQLite answer', async () => {
  const r = await fetch(`${srv.base}/healthz`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { status: 'ok', redis: { ok: true }, sqlite: { ok: true }, problems: [] });
});

test('login with the right password returns a token and a session cookie', async () => {
  const { status, body, cookie } = await login(srv, 'rita');
  assert.equal(status, 200);
  assert.match(body.token, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(body.user.name.startsWith('Rita'), true);
  assert.equal(body.user.responsible, true);
  assert.match(cookie, /otj_session=/);
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Lax/);
  const me = await fetch(`${srv.base}/api/me`, { headers: { authorization: `Bearer ${body.token}` } });
  assert.equal(me.status, 200);
  assert.equal((await me.json()).login, 'rita');
});

test('a wrong password, an unknown login and bad bodies are refused', async () => {
  const wrong = await login(srv, 'rita', 'not-it');
  assert.equal(wrong.status, 401);
  assert.equal(wrong.body.error, 'unauthorized');
  assert.equal(wrong.body.token, undefined);
  assert.equal((await login(srv, 'nobody')).status, 401);
  const malformed = await fetch(`${srv.base}/api/login`, { method: 'POST', body: '{"login":' });
  assert.equal(malformed.status, 400);
  assert.equal((await malformed.json()).error, 'bad_request');
  const huge = await fetch(`${srv.base}/api/login`, { method: 'POST', body: 'x'.repeat(2 * 1024 * 1024) });
  assert.equal(huge.status, 413);
  const noAuth = await fetch(`${srv.base}/api/me`);
  assert.equal(noAuth.status, 401);
});

test('hello with a token: rita is a responsible, lea is not', async () => {
  const rita = await connectAs(srv, 'rita');
  assert.equal(rita.user.responsible, true);
  assert.equal(typeof rita.user.id, 'number');
  assert.match(rita.user.name, /^Rita/);
  const lea = await connectAs(srv, 'lea');
  assert.equal(lea.user.responsible, false);
  assert.match(lea.user.name, /^Lea/);
  const mark = await connectAs(srv, 'mark'); // Management without the flag
  assert.equal(mark.user.responsible, false);
  await Promise.all([rita.close(), lea.close(), mark.close()]);
});

test('hello with the session cookie instead of a token', async () => {
  const { cookie } = await login(srv, 'lea');
  const c = new Client(srv, { headers: { cookie: cookie.split(';')[0] } });
  await c.opened();
  const m = await c.request({ t: 'hello', v: 1, rid: 7 });
  assert.equal(m.t, 'welcome');
  assert.equal(m.rid, 7);
  await c.close();
});

test('a cookie from a foreign Origin cannot open a websocket', async () => {
  const { cookie } = await login(srv, 'lea');
  const c = new Client(srv, { headers: { cookie: cookie.split(';')[0], origin: 'http://evil.example' } });
  await assert.rejects(c.opened());
});

test('ping gets pong with the same rid', async () => {
  const c = await connectAs(srv, 'lea');
  const m = await c.request({ t: 'ping', rid: 42 });
  assert.deepEqual(m, { t: 'pong', rid: 42 });
  await c.close();
});

test('a wrong token is refused and the connection stays usable', async () => {
  const c = new Client(srv);
  await c.opened();
  const m = await c.request({ t: 'hello', v: 1, token: 'A'.repeat(43), rid: 1 });
  assert.equal(m.t, 'err');
  assert.equal(m.code, 'unauthorized');
  assert.equal(m.rid, 1);
  assert.ok(m.msg.length > 10);
  const { body } = await login(srv, 'leo');
  const ok = await c.request({ t: 'hello', v: 1, token: body.token });
  assert.equal(ok.t, 'welcome');
  await c.close();
});

test('anything before hello is unauthorized', async () => {
  const c = new Client(srv);
  await c.opened();
  const m = await c.request({ t: 'ping', rid: 3 });
  assert.equal(m.t, 'err');
  assert.equal(m.code, 'unauthorized');
  assert.equal(m.rid, 3);
  await c.close();
});

test('text frames, garbage and wrong shapes are bad_request; others keep being served', async () => {
  const bad = await connectAs(srv, 'lea');
  const other = await connectAs(srv, 'leo');

  bad.sendRaw('{"t":"ping"}', false);
  let m = await bad.next();
  assert.equal(m.t, 'err');
  assert.equal(m.code, 'bad_request');

  const garbage = [
    Buffer.from([0xc1]),                          // never used
    Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]),  // array of 4 billion
    Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff]),  // map of 4 billion
    Buffer.from([0xdb, 0xff, 0xff, 0xff, 0xff]),  // string of 4 GiB
    encode([1, 2, 3]),                            // not a map
    encode({ t: 'ping' }).subarray(0, 3),         // truncated
    encode({ t: 42 }),                            // wrong type
    encode({ t: 'dance' }),                       // unknown type
    encode({ x: 1 }),                             // no t
  ];
  for (const g of garbage) {
    bad.sendRaw(g);
    m = await bad.next();
    assert.equal(m.t, 'err', `for ${g.toString('hex')}`);
    assert.equal(m.code, 'bad_request', `for ${g.toString('hex')}: ${JSON.stringify(m)}`);
    // the other client's connection keeps answering
    const pong = await other.request({ t: 'ping', rid: 9 });
    assert.deepEqual(pong, { t: 'pong', rid: 9 });
  }
  // and so does the one that sent the garbage
  assert.deepEqual(await bad.request({ t: 'ping', rid: 10 }), { t: 'pong', rid: 10 });
  await Promise.all([bad.close(), other.close()]);
});

test('a message over the frame limit is too_large; the connection goes on', async () => {
  const c = await connectAs(srv, 'lea');
  c.send({ t: 'ping', pad: 'x'.repeat(70 * 1024) });
  const m = await c.next();
  assert.equal(m.t, 'err');
  assert.equal(m.code, 'too_large');
  assert.deepEqual(await c.request({ t: 'ping', rid: 1 }), { t: 'pong', rid: 1 });
  await c.close();
});

test('a websocket at another path or with another subprotocol is refused', async () => {
  const { default: WebSocket } = await import('ws');
  for (const [url, proto] of [[`ws://127.0.0.1:${srv.port}/elsewhere`, 'otj.v1'],
                              [`ws://127.0.0.1:${srv.port}/ws`, 'chat']]) {
    const ws = new WebSocket(url, proto);
    const outcome = await new Promise((resolve) => {
      ws.on('open', () => resolve('open'));
      ws.on('error', () => resolve('refused'));
      ws.on('unexpected-response', () => resolve('refused'));
    });
    assert.equal(outcome, 'refused', `${url} ${proto}`);
    ws.terminate();
  }
});

test('metrics are Prometheus text', async () => {
  const r = await fetch(`${srv.base}/metrics`, srv.metricsAuth);
  assert.equal(r.status, 200);
  const text = await r.text();
  assert.match(text, /^# TYPE otj_ws_connections gauge$/m);
  assert.match(text, /^otj_redis_up 1$/m);
  assert.match(text, /^otj_bad_frames_total [1-9]\d*$/m);
});

test('healthz is 503 when Redis stops answering, and recovers', async () => {
  const r2 = await startRedis();
  const s2 = await startOtjd({ redis: r2.addr });
  try {
    r2.proc.kill('SIGSTOP'); // Redis hangs without closing the socket
    const bad = await fetch(`${s2.base}/healthz`);
    assert.equal(bad.status, 503);
    assert.equal((await bad.json()).redis.ok, false);
    r2.proc.kill('SIGCONT');
    await sleep(100);
    const good = await fetch(`${s2.base}/healthz`);
    assert.equal(good.status, 200);
  } finally {
    r2.proc.kill('SIGCONT');
    await s2.stop();
    s2.cleanup();
    await r2.stop();
  }
});
