// Hostile-input drivers against a real otjd (and Redis), where libFuzzer
// cannot reach: libwebsockets owns HTTP parsing and the room handlers need
// Redis. Both are random but reproducible: OTJ_HOSTILE_SEED replays a run
// (the seed is printed). OTJ_HOSTILE_ROUNDS scales them.
// (1) HTTP over raw TCP: mutated byte streams built from real requests:
//     pipelined requests with and without bodies, bodies split across
//     writes and across the next request's headers, bad / duplicate /
//     huge Content-Length, chunked bodies, garbage, truncation. After every
//     few streams /healthz must answer within a second.
// (2) Websocket: random valid-looking otj.v1 messages (every type, real and
//     made-up rooms, ids, tasks, values) and mutated frames from a
//     responsible and a learner in a real room; the server must keep
//     answering a clean connection's ping and /healthz, and stop cleanly
//     (no sanitizer report) at the end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startRedis, startOtjd, connectAs, encode, sleep } from './harness.mjs';

const SEED = Number(process.env.OTJ_HOSTILE_SEED || (Date.now() % 1e9));
const ROUNDS = Number(process.env.OTJ_HOSTILE_ROUNDS || 1);

function rng(seed) { // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function healthy(srv, ms = 1000) {
  const t = Date.now();
  let r;
  try {
    r = await fetch(`${srv.base}/healthz`, { signal: AbortSignal.timeout(5000) });
  } catch (e) {
    throw new Error(`/healthz gave no answer within 5 s (${e.name}): the server is stuck`);
  }
  const took = Date.now() - t;
  assert.equal(r.status, 200, '/healthz is 200');
  assert.ok(took < ms, `/healthz answered in ${took} ms`);
  return took;
}

// ---- (1) HTTP --------------------------------------------------------------

function httpCase(R, token) {
  const pick = (a) => a[Math.floor(R() * a.length)];
  const body = pick(['{}', '{"login":"rita","password":"wrong"}', '{"name":"x"}', '', 'x'.repeat(5000), '[1,2']);
  const path = pick(['/healthz', '/api/login', '/api/me', '/api/admin/departments', '/metrics', '/', '/api/completions?format=csv', '/join/ABC', '/api/../../etc/passwd']);
  const method = pick(['GET', 'POST', 'PATCH', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'BREW']);
  const auth = R() < 0.5 ? `Authorization: Bearer ${token}\r\n` : '';
  const cl = pick([String(Buffer.byteLength(body)), String(Buffer.byteLength(body)), '0', '-1', '99999999999', 'abc', `${Buffer.byteLength(body)}\r\nContent-Length: 3`, '1048577']);
  const one = () => {
    const kind = R();
    if (kind < 0.15)
      return `${method} ${path} HTTP/1.1\r\nHost: x\r\n${auth}Transfer-Encoding: chunked\r\n\r\n` +
        `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    if (kind < 0.7)
      return `${method} ${path} HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: ${cl}\r\n\r\n${body}`;
    return `${method} ${path} HTTP/1.1\r\nHost: x\r\n${auth}\r\n`;
  };
  let s = '';
  const n = 1 + Math.floor(R() * 4); // pipelined requests
  for (let i = 0; i < n; i++) s += one();
  let buf = Buffer.from(s);
  // mutations: flip bytes, cut, insert garbage, repeat a header
  const m = Math.floor(R() * 4);
  for (let i = 0; i < m; i++) {
    const at = Math.floor(R() * buf.length);
    const op = R();
    if (op < 0.4) buf[at] = Math.floor(R() * 256);
    else if (op < 0.6) buf = buf.subarray(0, at);
    else if (op < 0.8) buf = Buffer.concat([buf.subarray(0, at), Buffer.from(pick(['\r\n', '\0', ':', ' ', 'A'.repeat(9000), '\r\n\r\n'])), buf.subarray(at)]);
    else buf = Buffer.concat([buf, Buffer.from(`X-Dup: ${'y'.repeat(Math.floor(R() * 3000))}\r\n`)]);
  }
  // written in pieces, so bodies arrive split (also across the next headers)
  const pieces = [];
  let off = 0;
  while (off < buf.length) {
    const len = R() < 0.5 ? buf.length - off : 1 + Math.floor(R() * Math.min(64, buf.length - off));
    pieces.push(buf.subarray(off, off + len));
    off += len;
  }
  return pieces;
}

function sendRaw(port, pieces, R) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = 0;
    const done = () => { sock.destroy(); resolve(got); };
    sock.on('data', (d) => { got += d.length; });
    sock.on('error', done);
    sock.on('close', done);
    sock.on('connect', async () => {
      for (const p of pieces) {
        if (sock.destroyed) break;
        sock.write(p);
        if (R() < 0.3) await sleep(Math.floor(R() * 20));
      }
      setTimeout(done, 300);
    });
  });
}

test('random and mutated HTTP byte streams over raw TCP (pipelining, split bodies, bad lengths, chunked): /healthz keeps answering', { timeout: 300000 }, async () => {
  const R = rng(SEED);
  console.log(`hostile http: seed ${SEED}`);
  const redis = await startRedis();
  const srv = await startOtjd({ redis: redis.addr });
  try {
    const token = (await (await fetch(`${srv.base}/api/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login: 'admin', password: 'otj-demo' }),
    })).json()).token;
    const total = 400 * ROUNDS;
    let worst = 0;
    for (let i = 0; i < total; i += 8) {
      await Promise.all(Array.from({ length: 8 }, () => sendRaw(srv.port, httpCase(R, token), R)));
      worst = Math.max(worst, await healthy(srv));
    }
    const metrics = await (await fetch(`${srv.base}/metrics`, srv.metricsAuth)).text();
    console.log(`hostile http: ${total} streams, /healthz worst ${worst} ms; ` +
      `${(metrics.match(/^otj_http_requests_total .*/m) || [''])[0]}`);
    await srv.stopClean();
  } finally {
    await srv.stop('SIGKILL');
    srv.cleanup();
    await redis.stop();
  }
});

// ---- (2) websocket ---------------------------------------------------------

function wsMessage(R, ctx) {
  const pick = (a) => a[Math.floor(R() * a.length)];
  const id = () => pick([...ctx.users, 0, -1, 2 ** 53, 999999, 'x', null, 1.5]);
  const room = () => pick([ctx.room, ctx.room, 'r-nope', '', 'x'.repeat(70), 7, null]);
  const task = () => pick([0, 1, 2, 3, 4, 255, 256, 2 ** 32, -1, 'a']);
  const value = () => pick([0, 1, [0, 1], [], 'text', 'x'.repeat(4001), { a: 1 }, null, -5, Array(65).fill(1)]);
  const t = pick(['hello', 'open', 'join', 'add', 'remove', 'step', 'answer', 'mark', 'approve', 'sync', 'leave', 'ping', 'nope']);
  const m = { t, rid: Math.floor(R() * 1e6) };
  if (t === 'open') { m.module = pick([ctx.module, 1, 2, 999, -1]); m.learners = Array.from({ length: Math.floor(R() * 4) }, id); }
  if (t === 'join') R() < 0.5 ? (m.code = pick([ctx.code, 'ZZZZZZ', ''])) : (m.room = room());
  if (['add', 'remove'].includes(t)) { m.room = room(); m.learner = id(); }
  if (t === 'step') { m.room = room(); m.task = task(); }
  if (t === 'answer') { m.room = room(); m.task = task(); m.value = value(); m.key = pick(['k', '', 'k'.repeat(65), String(R())]); if (R() < 0.3) m.learner = id(); }
  if (t === 'mark') { m.room = room(); m.learner = id(); m.task = task(); m.result = pick(['pass', 'fail', 'maybe']); if (R() < 0.5) m.note = pick(['ok', 'n'.repeat(2001)]); }
  if (t === 'approve') { m.room = room(); m.decisions = Array.from({ length: Math.floor(R() * 3) }, () => ({ learner: id(), approved: R() < 0.5 })); }
  if (t === 'sync') { m.room = room(); m.since = pick([0, 1, 2 ** 60, -1]); }
  if (t === 'leave') m.room = room();
  if (t === 'hello') { m.v = pick([1, 2]); m.token = pick(['x', '']); }
  if (R() < 0.1) m.extra = pick([[[[[[[[[[1]]]]]]]]], 'x', 5]);
  let bytes = Buffer.from(encode(m));
  if (R() < 0.15) { // a mutated frame
    bytes = Buffer.from(bytes);
    for (let k = 0; k < 1 + Math.floor(R() * 3); k++) bytes[Math.floor(R() * bytes.length)] = Math.floor(R() * 256);
  }
  return bytes;
}

test('random valid-looking and mutated otj.v1 messages in a real room: the server keeps answering and stops cleanly', { timeout: 300000 }, async () => {
  const R = rng(SEED + 1);
  console.log(`hostile ws: seed ${SEED + 1}`);
  const redis = await startRedis();
  const srv = await startOtjd({ redis: redis.addr, env: { OTJ_MAX_MSGS_PER_SEC: '100000' } });
  try {
    const rita = await connectAs(srv, 'rita');
    const lea = await connectAs(srv, 'lea');
    const probe = await connectAs(srv, 'leo');
    rita.send({ t: 'open', module: 2, learners: [lea.user.id], rid: 1 });
    let snap;
    for (;;) { const m = await rita.next(); if (m.rid === 1) { snap = m; break; } }
    assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
    lea.send({ t: 'join', code: snap.code });
    const ctx = { room: snap.room, code: snap.code, module: 2, users: [rita.user.id, lea.user.id, probe.user.id] };
    const total = 3000 * ROUNDS;
    let sent = 0, worst = 0;
    while (sent < total) {
      for (let i = 0; i < 50; i++, sent++) (R() < 0.6 ? rita : lea).sendRaw(wsMessage(R, ctx));
      await sleep(5);
      if (sent % 500 === 0) {
        const t = Date.now();
        probe.send({ t: 'ping', rid: sent });
        for (;;) {
          const m = await probe.next(3000).catch((e) => {
            // say what otjd was doing: exited (and why) or stalled
            const st = srv.proc.exitCode ?? srv.proc.signalCode ?? 'running';
            throw new Error(`${e.message} after ${sent} messages (otjd: ${st}); otjd log tail:\n${srv.log.slice(-4000)}`);
          });
          if (m.rid === sent) { assert.equal(m.t, 'pong'); break; }
        }
        worst = Math.max(worst, Date.now() - t, await healthy(srv));
      }
    }
    rita.messages.length = lea.messages.length = 0;
    console.log(`hostile ws: ${sent} messages, ping/healthz worst ${worst} ms`);
    for (const c of [rita, lea, probe]) c.ws.terminate();
    await sleep(200);
    await srv.stopClean();
  } finally {
    await srv.stop('SIGKILL');
    srv.cleanup();
    await redis.stop();
  }
});
