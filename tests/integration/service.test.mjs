// Running otjd as a service: TLS on the listener (a certificate made here
// with Debian's openssl, trusted by the client and nothing else), settings
// from a file, the environment and flags, check-config, and /metrics that
// only the monitoring system reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { OTJD, startRedis, startOtjd, freePort, exited, waitFor, encode, decode } from './harness.mjs';

function tmp(prefix) { return mkdtempSync(path.join(os.tmpdir(), prefix)); }

// A self-signed certificate for 127.0.0.1 and localhost.
function makeCert(dir) {
  const cert = path.join(dir, 'cert.pem'), key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=otjd test',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  return { cert, key, pem: readFileSync(cert) };
}

// One HTTPS request that trusts only `ca`. Resolves {status, headers, body}.
function httpsRequest(url, { ca, method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    if (body) headers = { ...headers, 'content-length': Buffer.byteLength(body) };
    const req = https.request(url, { method, headers, ca }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    if (body) req.write(body);
    req.end();
  });
}

// Starts otjd with extra arguments; waits for /healthz over https when
// `ca` is given. Returns the process and a stop function.
async function startTls(redis, args, ca) {
  const port = await freePort();
  const dataDir = tmp('otj-tls-');
  const proc = spawn(OTJD, ['--listen', `127.0.0.1:${port}`, '--data', dataDir, '--redis', redis.addr,
    '--demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const srv = {
    port, proc, get log() { return log; },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) { proc.kill('SIGTERM'); await exited(proc); }
      rmSync(dataDir, { recursive: true, force: true });
      return proc.exitCode;
    },
  };
  try {
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`otjd exited ${proc.exitCode}`);
      return (await httpsRequest(`https://127.0.0.1:${port}/healthz`, { ca })).status === 200;
    }, 'otjd over https', 15000);
  } catch (e) {
    await srv.stop();
    throw new Error(`${e.message}\n--- otjd log ---\n${log}`);
  }
  return srv;
}

test('TLS: https login sets a Secure cookie, otj.v1 runs over wss, plain http and untrusting clients fail', async () => {
  const dir = tmp('otj-cert-');
  const { cert, key, pem } = makeCert(dir);
  const redis = await startRedis();
  const srv = await startTls(redis, ['--tls-cert', cert, '--tls-key', key], pem);
  try {
    const base = `https://127.0.0.1:${srv.port}`;
    const r = await httpsRequest(`${base}/api/login`, {
      ca: pem, method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login: 'lea', password: 'otj-demo' }),
    });
    assert.equal(r.status, 200, r.body);
    const cookie = r.headers['set-cookie'][0];
    assert.match(cookie, /^otj_session=[^;]+;/);
    assert.match(cookie, /;\s*Secure(;|$)/i, cookie);
    const { token } = JSON.parse(r.body);

    // otj.v1 over wss, trusting only our certificate
    const ws = new WebSocket(`wss://127.0.0.1:${srv.port}/ws`, 'otj.v1', { ca: pem });
    ws.binaryType = 'nodebuffer';
    const inbox = [];
    let wake = null;
    ws.on('message', (data) => { inbox.push(decode(data)); if (wake) wake(); });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    const next = async () => {
      const until = Date.now() + 5000;
      while (!inbox.length) {
        if (Date.now() > until) throw new Error('no message over wss');
        await new Promise((res) => { wake = res; setTimeout(res, 100); });
      }
      return inbox.shift();
    };
    ws.send(encode({ t: 'hello', v: 1, token }));
    const welcome = await next();
    assert.equal(welcome.t, 'welcome', JSON.stringify(welcome));
    // several pings at once: the answers are coalesced into one TLS write
    for (let i = 1; i <= 20; i++) ws.send(encode({ t: 'ping', rid: i }));
    const rids = [];
    for (let i = 1; i <= 20; i++) {
      const m = await next();
      assert.equal(m.t, 'pong');
      rids.push(m.rid);
    }
    assert.deepEqual(rids, Array.from({ length: 20 }, (_, i) => i + 1));
    ws.close();
    assert.match(srv.log, /msg=serving url=https:\/\/127\.0\.0\.1:/);

    // plain http on the TLS port: no answer
    const plain = await fetch(`http://127.0.0.1:${srv.port}/healthz`,
      { signal: AbortSignal.timeout(5000) }).then((x) => x.status, () => 'failed');
    assert.equal(plain, 'failed');
    // a client that does not trust this certificate refuses it
    await assert.rejects(httpsRequest(`${base}/healthz`, {}), /self[- ]signed|certificate/i);
  } finally {
    assert.equal(await srv.stop(), 0, srv.log);
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- configuration ------------------------------------------------------------

function checkConfig(args, env = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTJ_')));
  return spawnSync(OTJD, ['check-config', ...args], { encoding: 'utf8', env: { ...clean, ...env } });
}

function printedValue(out, key) {
  const m = out.match(new RegExp(`^${key}\\s+=\\s+(\\S*)\\s+# (.*)$`, 'm'));
  return m ? { value: m[1], from: m[2] } : null;
}

test('settings: a flag wins over the environment, the environment over the file, the file over the default', () => {
  const dir = tmp('otj-conf-');
  try {
    const file = path.join(dir, 'otjd.conf');
    writeFileSync(file, [
      '# otjd settings',
      'max_room_learners = 11',
      'idle_timeout = 12   # a comment after the value',
      'login_window = 13',
      'origins = "https://a.example,https://b.example"',
      '',
    ].join('\n'));
    const r = checkConfig(['--print', '--config', file, '--max-room-learners', '31'],
      { OTJ_MAX_ROOM_LEARNERS: '21', OTJ_IDLE_TIMEOUT: '22' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(printedValue(r.stdout, 'max_room_learners'), { value: '31', from: 'flag --max-room-learners' });
    assert.deepEqual(printedValue(r.stdout, 'idle_timeout'), { value: '22', from: 'env OTJ_IDLE_TIMEOUT' });
    assert.deepEqual(printedValue(r.stdout, 'login_window'), { value: '13', from: `file ${file}:4` });
    assert.deepEqual(printedValue(r.stdout, 'hello_timeout'), { value: '10', from: 'default' });
    assert.equal(printedValue(r.stdout, 'origins').value, 'https://a.example,https://b.example');
    // the config file may also come from OTJ_CONFIG
    const viaEnv = checkConfig(['--print'], { OTJ_CONFIG: file });
    assert.equal(printedValue(viaEnv.stdout, 'max_room_learners').value, '11');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('settings: a value from the config file drives the server (rooms per responsible)', async () => {
  const dir = tmp('otj-conf-');
  const redis = await startRedis();
  try {
    const file = path.join(dir, 'otjd.conf');
    writeFileSync(file, 'max_rooms_per_responsible = 2\n');
    // the file says 2 rooms (the default is 20): two open, the third is refused
    const srv = await startOtjd({ redis: redis.addr, env: { OTJ_CONFIG: file } });
    try {
      const sql = (q) => JSON.parse(execFileSync('sqlite3', ['-json', `${srv.dataDir}/otj.db`, q]).toString() || '[]');
      const HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
      const { connectAs } = await import('./harness.mjs');
      const rita = await connectAs(srv, 'rita');
      const ask = async (msg) => {
        const rid = Math.floor(Math.random() * 1e9);
        rita.send({ ...msg, rid });
        for (;;) { const m = await rita.next(); if (m.rid === rid) return m; }
      };
      assert.equal((await ask({ t: 'open', module: HH, learners: [] })).t, 'snapshot');
      assert.equal((await ask({ t: 'open', module: HH, learners: [] })).t, 'snapshot');
      assert.equal((await ask({ t: 'open', module: HH, learners: [] })).code, 'rate_limited');
      await rita.close();
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('check-config: a bad key or value in the file exits 64 naming the line; a good file exits 0', () => {
  const dir = tmp('otj-conf-');
  try {
    const file = path.join(dir, 'otjd.conf');
    writeFileSync(file, '# ok so far\nmax_frame = 4096\nmax_fram = 10\n');
    let r = checkConfig(['--config', file]);
    assert.equal(r.status, 64);
    assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3: unknown setting 'max_fram'`));

    writeFileSync(file, 'max_frame = 4096\n\nidle_timeout = soon\n');
    r = checkConfig(['--config', file]);
    assert.equal(r.status, 64);
    assert.match(r.stderr, /otjd\.conf:3: idle_timeout wants a whole number/);

    writeFileSync(file, 'listen = 127.0.0.1\n');
    r = checkConfig(['--config', file]);
    assert.equal(r.status, 64);
    assert.match(r.stderr, /otjd\.conf:1: listen wants ADDR:PORT/);

    writeFileSync(file, 'this line has no equals sign\n');
    r = checkConfig(['--config', file]);
    assert.equal(r.status, 64);
    assert.match(r.stderr, /otjd\.conf:1: expected 'key = value'/);

    r = checkConfig([], { OTJ_MAX_FRAME: 'big' });
    assert.equal(r.status, 64);
    assert.match(r.stderr, /OTJ_MAX_FRAME wants a whole number/);

    r = checkConfig(['--tls-cert', file]);
    assert.equal(r.status, 64);
    assert.match(r.stderr, /tls_cert and tls_key go together/);

    writeFileSync(file, 'max_frame = 4096\nmetrics_token = "short"\n');
    r = checkConfig(['--config', file]);
    assert.equal(r.status, 64);
    assert.match(r.stderr, /metrics_token must be at least 16 characters/);

    writeFileSync(file, 'max_frame = 4096\n');
    r = checkConfig(['--config', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /settings are good/);
    // the server itself refuses the same bad file before it starts
    writeFileSync(file, 'max_frame = 0\n');
    const s = spawnSync(OTJD, ['--config', file, '--data', path.join(dir, 'data')], { encoding: 'utf8' });
    assert.equal(s.status, 64);
    assert.match(s.stderr, /otjd\.conf:1: max_frame/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--help lists every setting with its default and variable; --version prints the version', () => {
  const help = spawnSync(OTJD, ['--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  const printed = checkConfig(['--print']);
  assert.equal(printed.status, 0, printed.stderr);
  const keys = [...printed.stdout.matchAll(/^([a-z_]+)\s+=/gm)].map((m) => m[1]);
  assert.ok(keys.length >= 35, `${keys.length} settings`);
  for (const key of keys) {
    const flag = `--${key.replaceAll('_', '-')}`, env = `OTJ_${key.toUpperCase()}`;
    const re = new RegExp(`^  ${flag}[ \\[].*\\n\\s+default [^;]+; ${env}; file key ${key}$`, 'm');
    assert.match(help.stdout, re, `--help describes ${key}`);
  }
  for (const limit of ['max_frame', 'login_inflight', 'min_free_mb', 'max_send_bytes'])
    assert.ok(keys.includes(limit), limit);
  assert.match(help.stdout, /check-config/);
  const v = spawnSync(OTJD, ['--version'], { encoding: 'utf8' });
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^otjd \d+\.\d+\.\d+\n$/);
});

// ---- metrics and health ------------------------------------------------------------

const SERIES = ['otj_ws_connections', 'otj_rooms_followed', 'otj_frames_in_total', 'otj_frames_out_total',
  'otj_ws_errors_total{code="bad_request"}', 'otj_http_errors_total{status="404"}',
  'otj_dropped_slow_total', 'otj_approvals_total{outcome="approved"}',
  'otj_logins_refused_total{reason="credentials"}', 'otj_logins_refused_total{reason="throttled"}',
  'otj_redis_roundtrip_seconds_bucket{le="+Inf"}', 'otj_redis_roundtrip_seconds_count',
  'otj_sqlite_commit_seconds_count', 'otj_fanout_latency_seconds_count'];

function assertSeries(text) {
  for (const name of SERIES) {
    const esc = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(text, new RegExp(`^${esc} \\d`, 'm'), name);
  }
  assert.match(text, /^# TYPE otj_redis_roundtrip_seconds histogram$/m);
}

test('metrics: not public without a token or a metrics listener', async () => {
  const redis = await startRedis();
  // no token: the harness's default is taken away
  const srv = await startOtjd({ redis: redis.addr, env: { OTJ_METRICS_TOKEN: '' } });
  try {
    const r = await fetch(`${srv.base}/metrics`);
    assert.equal(r.status, 404);
    assert.doesNotMatch(await r.text(), /otj_/);
    const bearer = await fetch(`${srv.base}/metrics`, { headers: { authorization: 'Bearer anything-at-all-0123456' } });
    assert.equal(bearer.status, 404);
  } finally {
    await srv.stop();
    srv.cleanup();
    await redis.stop();
  }
});

test('metrics: with a token, only the right bearer reads them', async () => {
  const redis = await startRedis();
  const token = 'metrics-secret-abcdefghijklmnop';
  const srv = await startOtjd({ redis: redis.addr, env: { OTJ_METRICS_TOKEN: token } });
  try {
    const none = await fetch(`${srv.base}/metrics`);
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') || '', /^Bearer/);
    assert.doesNotMatch(await none.text(), /otj_/);
    const wrong = await fetch(`${srv.base}/metrics`, { headers: { authorization: `Bearer ${token}x` } });
    assert.equal(wrong.status, 401);
    // a wrong login and a bad frame show up in the series
    await fetch(`${srv.base}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login: 'lea', password: 'wrong' }) });
    const ok = await fetch(`${srv.base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    const text = await ok.text();
    assertSeries(text);
    assert.match(text, /^otj_logins_refused_total\{reason="credentials"\} 1$/m);
    assert.match(text, /^otj_redis_roundtrip_seconds_count [1-9]/m);
  } finally {
    await srv.stop();
    srv.cleanup();
    await redis.stop();
  }
});

test('metrics: the metrics listener serves /metrics, /healthz and /readyz, and nothing else', async () => {
  const redis = await startRedis();
  const mport = await freePort();
  const srv = await startOtjd({ redis: redis.addr, env: { OTJ_METRICS_TOKEN: '', OTJ_METRICS_LISTEN: `127.0.0.1:${mport}` } });
  try {
    const mbase = `http://127.0.0.1:${mport}`;
    const r = await fetch(`${mbase}/metrics`);
    assert.equal(r.status, 200);
    assertSeries(await r.text());
    assert.equal((await fetch(`${srv.base}/metrics`)).status, 404, 'still not on the public port');
    const h = await fetch(`${mbase}/healthz`);
    assert.equal(h.status, 200);
    assert.deepEqual((await h.json()).problems, []);
    const ready = await fetch(`${mbase}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal((await ready.json()).status, 'ready');
    for (const p of ['/api/me', '/', '/ws', '/join/123456'])
      assert.equal((await fetch(`${mbase}${p}`)).status, 404, p);
  } finally {
    await srv.stop();
    srv.cleanup();
    await redis.stop();
  }
});

test('health: /healthz says what is wrong when Redis does not answer', async () => {
  const redis = await startRedis();
  const srv = await startOtjd({ redis: redis.addr });
  try {
    redis.proc.kill('SIGSTOP');
    const bad = await fetch(`${srv.base}/healthz`);
    assert.equal(bad.status, 503);
    const body = await bad.json();
    assert.equal(body.redis.ok, false);
    assert.ok(body.problems.some((p) => /Redis/.test(p)), JSON.stringify(body));
    redis.proc.kill('SIGCONT');
  } finally {
    redis.proc.kill('SIGCONT');
    await srv.stop();
    srv.cleanup();
    await redis.stop();
  }
});
