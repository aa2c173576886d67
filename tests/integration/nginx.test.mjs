// otjd behind nginx, with the example config of packaging/nginx-otjd.conf:
// nginx ends TLS with a certificate made here (trusted by the client and
// nothing else), otjd runs plain http on loopback with an https public URL.
// Runs Debian's nginx in the foreground as a child process, in a folder of
// its own (no root needed), and stops it by pid. Skipped without nginx.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { OTJD, startOtjd, freePort, exited, waitFor, encode, decode, METRICS_TOKEN } from './harness.mjs';

const EXAMPLE = path.resolve('packaging/nginx-otjd.conf');

function which(name, extra = []) {
  const dirs = [...(process.env.PATH || '').split(':'), ...extra];
  for (const d of dirs) if (d && existsSync(path.join(d, name))) return path.join(d, name);
  return null;
}
// Debian puts nginx in /usr/sbin, which a non-root PATH may lack.
const NGINX = process.env.NGINX || which('nginx', ['/usr/sbin', '/usr/local/sbin']);
const QRENCODE = which('qrencode');
const noNginx = NGINX ? false : 'nginx is not installed (scripts/install-deps.sh installs it)';

function tmp(prefix) { return mkdtempSync(path.join(os.tmpdir(), prefix)); }

// A self-signed certificate for 127.0.0.1 and localhost.
function makeCert(dir) {
  const cert = path.join(dir, 'cert.pem'), key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=otj nginx test',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  return { cert, key, pem: readFileSync(cert) };
}

// The example with this test's name, ports, certificate and upstream put in
// for its values; each value must be there (the example must not drift
// away from what is tested).
function renderExample({ httpPort, httpsPort, cert, key, upstream }) {
  let s = readFileSync(EXAMPLE, 'utf8');
  const put = (from, to) => {
    assert.ok(s.includes(from), `the example has no "${from}"`);
    s = s.split(from).join(to);
  };
  put('listen [::]:80;', '');
  put('listen [::]:443 ssl;', '');
  put('listen 80;', `listen 127.0.0.1:${httpPort};`);
  put('listen 443 ssl;', `listen 127.0.0.1:${httpsPort} ssl;`);
  put('server_name otj.example.org;', 'server_name 127.0.0.1;');
  put('/etc/letsencrypt/live/otj.example.org/fullchain.pem', cert);
  put('/etc/letsencrypt/live/otj.example.org/privkey.pem', key);
  put('server 127.0.0.1:8080;', `server ${upstream};`);
  return s;
}

// Starts nginx in the foreground on a site config (http-level directives),
// its prefix, temp folders and pid file in a folder of its own.
async function startNginx(site, { httpsPort, ca }) {
  const prefix = tmp('otj-nginx-');
  // as root nginx runs its workers as nobody: they must reach the temp folders
  chmodSync(prefix, 0o755);
  writeFileSync(path.join(prefix, 'otj.conf'), site);
  const conf = path.join(prefix, 'nginx.conf');
  writeFileSync(conf, [
    'worker_processes 1;',
    'events { worker_connections 512; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) =>
      `  ${t}_temp_path ${path.join(prefix, t)};`),
    `  include ${path.join(prefix, 'otj.conf')};`,
    '}', ''].join('\n'));
  const pidFile = path.join(prefix, 'nginx.pid');
  const proc = spawn(NGINX, ['-p', prefix + '/', '-e', 'stderr', '-c', conf,
    '-g', `daemon off; pid ${pidFile}; error_log stderr notice;`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const ngx = {
    proc, prefix, get log() { return log; },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        process.kill(proc.pid, 'SIGTERM');
        await exited(proc);
      }
      rmSync(prefix, { recursive: true, force: true });
    },
  };
  try {
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`nginx exited ${proc.exitCode}`);
      return existsSync(pidFile) &&
        (await httpsRequest(`https://127.0.0.1:${httpsPort}/healthz`, { ca })).status < 500;
    }, 'nginx', 15000);
    assert.equal(Number(readFileSync(pidFile, 'utf8')), proc.pid, 'the master runs in the foreground');
  } catch (e) {
    await ngx.stop();
    throw new Error(`${e.message}\n--- nginx log ---\n${log}`);
  }
  return ngx;
}

// One HTTPS request that trusts only `ca`. Resolves {status, headers, body}.
// `from`: the local address to connect from (127.0.0.0/8 has them all).
function httpsRequest(url, { ca, method = 'GET', headers = {}, body, from } = {}) {
  return new Promise((resolve, reject) => {
    if (body) headers = { ...headers, 'content-length': Buffer.byteLength(body) };
    const lib = url.startsWith('https:') ? https : http;
    const req = lib.request(url, { method, headers, ca, agent: false, localAddress: from }, (res) => {
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

// A websocket client over wss (the harness's Client speaks ws:// to otjd
// directly): otj.v1, one msgpack map per binary frame.
class WssClient {
  constructor(url, { ca, headers } = {}) {
    this.inbox = [];
    this.waiters = [];
    this.ws = new WebSocket(url, 'otj.v1', { ca, headers });
    this.ws.binaryType = 'nodebuffer';
    this.ws.on('message', (data, isBinary) => {
      const m = isBinary ? decode(data) : { t: '__text__', data: data.toString() };
      const w = this.waiters.shift();
      if (w) w(m); else this.inbox.push(m);
    });
    this.closed = new Promise((resolve) => this.ws.on('close', (code) => resolve(code)));
    this.ws.on('error', () => {});
  }
  opened() {
    return new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('unexpected-response', (req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      this.ws.once('error', reject);
    });
  }
  next(ms = 5000) {
    if (this.inbox.length) return Promise.resolve(this.inbox.shift());
    return new Promise((resolve, reject) => {
      const w = (m) => { clearTimeout(timer); resolve(m); };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no message over wss within ${ms} ms`));
      }, ms);
      this.waiters.push(w);
    });
  }
  // sends msg with a rid and returns the reply with that rid (events skipped)
  async ask(msg) {
    const rid = Math.floor(Math.random() * 1e9);
    this.ws.send(encode({ ...msg, rid }));
    for (;;) {
      const m = await this.next();
      if (m.rid === rid) return m;
    }
  }
  close() { this.ws.close(); return this.closed; }
}

// The dark modules of otjd's QR SVG ("M{x} {y}h{run}v1h-{run}z" bars,
// 4 modules of quiet zone) as rows of '#' and ' '.
function svgModules(svg) {
  const size = Number(svg.match(/viewBox="0 0 (\d+) \1"/)[1]) - 8;
  const rows = Array.from({ length: size }, () => Array(size).fill(' '));
  for (const [, x, y, run] of svg.matchAll(/M(\d+) (\d+)h(\d+)v1h-\3z/g))
    for (let i = 0; i < Number(run); i++) rows[Number(y) - 4][Number(x) - 4 + i] = '#';
  return rows.map((r) => r.join(''));
}

// The modules of `text` as libqrencode draws it with otjd's settings (level
// M, 8-bit hint, case-sensitive), from Debian's qrencode program.
function qrModules(text) {
  const out = execFileSync(QRENCODE, ['-l', 'M', '-m', '0', '-t', 'ASCII', text]).toString();
  return out.split('\n').filter((l) => l.length).map((l) => l.replace(/(.)\1/g, (_, c) => (c === '#' ? '#' : ' ')));
}

test('the example config passes otjd HTTP/1.1, the Host, X-Forwarded-Proto and the websocket upgrade; http is redirected', { skip: noNginx }, async () => {
  const dir = tmp('otj-ngx-cert-');
  const { cert, key, pem } = makeCert(dir);
  // an upstream that records what reaches it
  const seen = [];
  const upstream = http.createServer((req, res) => {
    seen.push({ url: req.url, version: req.httpVersion, headers: req.headers });
    res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
    res.end('ok');
  });
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (p) => (p.has('otj.v1') ? 'otj.v1' : false) });
  upstream.on('upgrade', (req, socket, head) => {
    seen.push({ url: req.url, version: req.httpVersion, headers: req.headers, upgrade: true });
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m) => ws.send(m)));
  });
  await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const httpPort = await freePort(), httpsPort = await freePort();
  const ngx = await startNginx(renderExample({ httpPort, httpsPort, cert, key,
    upstream: `127.0.0.1:${upstream.address().port}` }), { httpsPort, ca: pem });
  try {
    seen.length = 0;
    const r = await httpsRequest(`https://127.0.0.1:${httpsPort}/api/me?x=1`, { ca: pem });
    assert.equal(r.status, 200);
    const get = seen.find((s) => s.url === '/api/me?x=1');
    assert.ok(get, JSON.stringify(seen));
    assert.equal(get.version, '1.1');
    assert.equal(get.headers.host, `127.0.0.1:${httpsPort}`, 'the Host the client sent, with its port');
    assert.equal(get.headers['x-forwarded-proto'], 'https');
    assert.equal(get.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(get.headers.connection, 'close', 'no upstream keepalive: otjd closes after each answer anyway');

    const ws = new WebSocket(`wss://127.0.0.1:${httpsPort}/ws`, 'otj.v1', { ca: pem });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    assert.equal(ws.protocol, 'otj.v1');
    ws.send(Buffer.from([1, 2, 3]));
    const echo = await new Promise((resolve) => ws.once('message', resolve));
    assert.deepEqual([...echo], [1, 2, 3]);
    ws.close();
    const up = seen.find((s) => s.upgrade);
    assert.ok(up, 'the upgrade reached the upstream');
    assert.equal(up.url, '/ws');
    assert.equal(up.version, '1.1');
    assert.equal(up.headers.upgrade, 'websocket');
    assert.equal(up.headers.connection, 'upgrade');
    assert.equal(up.headers['sec-websocket-protocol'], 'otj.v1');
    assert.equal(up.headers.host, `127.0.0.1:${httpsPort}`, 'the /ws location sets the Host too');
    assert.equal(up.headers['x-forwarded-proto'], 'https');

    // plain http answers only with a redirect to the same path on https
    const red = await fetch(`http://127.0.0.1:${httpPort}/join/K7Q2?a=b`, { redirect: 'manual' });
    assert.equal(red.status, 301);
    assert.equal(red.headers.get('location'), 'https://127.0.0.1/join/K7Q2?a=b');
    assert.ok(!seen.some((s) => s.url.startsWith('/join/')), 'nothing went to otjd over plain http');
  } finally {
    await ngx.stop();
    await new Promise((resolve) => upstream.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the example\'s websocket read timeout is longer than otjd\'s idle timeout', () => {
  const s = readFileSync(EXAMPLE, 'utf8');
  const ws = s.match(/location = \/ws \{([^}]*)\}/);
  assert.ok(ws, 'the example has a location = /ws');
  const read = Number(ws[1].match(/proxy_read_timeout (\d+)s;/)[1]);
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTJ_')));
  const r = spawnSync(OTJD, ['check-config', '--print'], { encoding: 'utf8', env: clean });
  assert.equal(r.status, 0, r.stderr);
  const idle = Number(r.stdout.match(/^idle_timeout\s+=\s+(\d+)/m)[1]);
  assert.ok(read > idle, `proxy_read_timeout ${read}s must exceed idle_timeout ${idle}s`);
  assert.doesNotMatch(s, /^\s*keepalive\s/m, 'no upstream keepalive pool (otjd closes after each answer)');
});

test('through nginx: https login with a Secure cookie, otj.v1 over wss, a room joined by its code, an https join link', { skip: noNginx }, async () => {
  const dir = tmp('otj-ngx-cert-');
  const { cert, key, pem } = makeCert(dir);
  const httpPort = await freePort(), httpsPort = await freePort();
  const pub = `https://127.0.0.1:${httpsPort}`;
  const srv = await startOtjd({ env: { OTJ_PUBLIC_URL: pub } });
  let ngx;
  try {
    ngx = await startNginx(renderExample({ httpPort, httpsPort, cert, key, upstream: `127.0.0.1:${srv.port}` }),
      { httpsPort, ca: pem });
    const loginAs = async (who) => {
      const r = await httpsRequest(`${pub}/api/login`, {
        ca: pem, method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ login: who, password: 'otj-demo' }),
      });
      assert.equal(r.status, 200, r.body);
      const cookie = r.headers['set-cookie'][0];
      assert.match(cookie, /^otj_session=[^;]+;/);
      assert.match(cookie, /;\s*Secure(;|$)/i, `the cookie is Secure behind the proxy: ${cookie}`);
      return { token: JSON.parse(r.body).token, cookie: cookie.split(';')[0] };
    };
    const rita = await loginAs('rita');
    const lea = await loginAs('lea');

    // rita as a script would: the token in hello
    const r = new WssClient(`wss://127.0.0.1:${httpsPort}/ws`, { ca: pem });
    await r.opened();
    r.ws.send(encode({ t: 'hello', v: 1, token: rita.token }));
    const welcome = await r.next();
    assert.equal(welcome.t, 'welcome', JSON.stringify(welcome));
    for (let i = 1; i <= 5; i++) assert.deepEqual(await r.ask({ t: 'ping' }).then((m) => m.t), 'pong');
    const HH = JSON.parse(execFileSync('sqlite3', ['-json', `${srv.dataDir}/otj.db`,
      `SELECT id FROM modules WHERE title='Hand hygiene'`]).toString())[0].id;
    const snap = await r.ask({ t: 'open', module: HH, learners: [] });
    assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
    const { room, code } = snap;

    // lea as the browser does: the session cookie rides on the upgrade from
    // the site's own page (otjd checks its Origin against the Host nginx passes)
    const l = new WssClient(`wss://127.0.0.1:${httpsPort}/ws`,
      { ca: pem, headers: { cookie: lea.cookie, origin: pub } });
    await l.opened();
    l.ws.send(encode({ t: 'hello', v: 1 }));
    assert.equal((await l.next()).t, 'welcome');
    const joined = await l.ask({ t: 'join', code });
    assert.equal(joined.t, 'snapshot', JSON.stringify(joined));
    assert.equal(joined.room, room);
    // ... and a page elsewhere cannot ride on her cookie. (otjd refuses such
    // an upgrade by closing the connection, which nginx answers with 502 and
    // logs as "upstream prematurely closed connection".)
    const evil = new WssClient(`wss://127.0.0.1:${httpsPort}/ws`,
      { ca: pem, headers: { cookie: lea.cookie, origin: 'https://evil.example' } });
    await assert.rejects(evil.opened(), /upgrade refused: 502/);

    // the join link in the QR code is https, on the public URL
    const qr = await httpsRequest(`${pub}/api/rooms/${room}/qr.svg`,
      { ca: pem, headers: { authorization: `Bearer ${rita.token}` } });
    assert.equal(qr.status, 200, qr.body);
    assert.match(qr.headers['content-type'], /image\/svg\+xml/);
    if (QRENCODE) {
      assert.deepEqual(svgModules(qr.body), qrModules(`${pub}/join/${code}`),
        `the QR code encodes ${pub}/join/${code}`);
      assert.notDeepEqual(svgModules(qr.body), qrModules(`http://127.0.0.1:${httpsPort}/join/${code}`));
    } else {
      console.log('# qrencode is not installed: the QR code is not decoded');
    }
    const page = await httpsRequest(`${pub}/join/${code}`, { ca: pem });
    assert.equal(page.status, 200);
    assert.match(page.body, /<html/i);

    // one request per upstream connection: many in a row all answer
    for (let i = 0; i < 10; i++)
      assert.equal((await httpsRequest(`${pub}/healthz`, { ca: pem })).status, 200);
    // /metrics is not public through the site, token or not
    assert.equal((await httpsRequest(`${pub}/metrics`,
      { ca: pem, headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).status, 404);
    // a change made with the cookie from the site's own page passes the Origin check
    const out = await httpsRequest(`${pub}/api/logout`, {
      ca: pem, method: 'POST', body: '{}',
      headers: { cookie: rita.cookie, origin: pub, 'content-type': 'application/json' },
    });
    assert.ok(out.status < 300, `logout through nginx: ${out.status} ${out.body}`);

    await l.close();
    await r.closed; // the logout closes rita's websocket
    // a client that does not trust the certificate refuses nginx
    await assert.rejects(httpsRequest(`${pub}/healthz`, {}), /self[- ]signed|certificate/i);
    const errors = ngx.log.split('\n').filter((x) => /\[(error|crit|alert|emerg)\]/.test(x));
    assert.equal(errors.length, 1, ngx.log);
    assert.match(errors[0], /upstream prematurely closed connection .*"GET \/ws HTTP\/1\.1"/);
  } finally {
    if (ngx) await ngx.stop();
    await srv.stopClean();
    srv.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});

// otjd (with `env`) behind nginx on the example (`edit` may change the
// site first); fn({pub, pem, srv, ngx}); both stopped after, and nginx must
// have logged no error.
async function behindNginx({ env = {}, edit = (site) => site }, fn) {
  const dir = tmp('otj-ngx-cert-');
  const { cert, key, pem } = makeCert(dir);
  const httpPort = await freePort(), httpsPort = await freePort();
  const pub = `https://127.0.0.1:${httpsPort}`;
  const srv = await startOtjd({ env: { OTJ_PUBLIC_URL: pub, ...env } });
  let ngx;
  try {
    const site = edit(renderExample({ httpPort, httpsPort, cert, key, upstream: `127.0.0.1:${srv.port}` }));
    ngx = await startNginx(site, { httpsPort, ca: pem });
    await fn({ pub, pem, srv, ngx });
    assert.doesNotMatch(ngx.log, /\[(error|crit|alert|emerg)\]/, ngx.log);
  } finally {
    if (ngx) await ngx.stop();
    await srv.stopClean();
    srv.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a keepalive pool added to the example\'s upstream does no harm: otjd closes after each answer and nginx opens a new connection', { skip: noNginx }, async () => {
  const edit = (site) => {
    site = site.replace(/(server 127\.0\.0\.1:\d+;)/, '$1\n    keepalive 8;')
      .replace(/(location \/ \{\n\s*proxy_pass http:\/\/otjd;)/, '$1\n        proxy_set_header Connection "";');
    assert.match(site, /keepalive 8;/);
    assert.match(site, /proxy_set_header Connection "";/);
    return site;
  };
  await behindNginx({ edit }, async ({ pub, pem }) => {
    for (let i = 0; i < 10; i++) {
      const r = await httpsRequest(`${pub}/api/login`, {
        ca: pem, method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ login: 'lea', password: 'otj-demo' }),
      });
      assert.equal(r.status, 200, r.body);
      const me = await httpsRequest(`${pub}/api/me`,
        { ca: pem, headers: { authorization: `Bearer ${JSON.parse(r.body).token}` } });
      assert.equal(me.status, 200, me.body);
      assert.equal(JSON.parse(me.body).login, 'lea');
    }
  });
});

test('with trusted_proxies, failed logins count for each client nginx saw, not for nginx; a forged X-Forwarded-For changes nothing', { skip: noNginx }, async () => {
  const env = { OTJ_TRUSTED_PROXIES: '127.0.0.1, ::1', OTJ_LOGIN_PER_ADDRESS: '3' };
  await behindNginx({ env }, async ({ pub, pem, srv }) => {
    const login = (base, from, name, password, headers = {}) => httpsRequest(`${base}/api/login`, {
      ca: pem, method: 'POST', from, headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ login: name, password }),
    });
    // three wrong passwords from one client, at three names, through nginx;
    // each names another client in X-Forwarded-For, which nginx keeps in front
    for (let i = 1; i <= 3; i++) {
      const r = await login(pub, '127.0.0.2', `nobody${i}`, 'wrong', { 'x-forwarded-for': `10.0.0.${i}` });
      assert.equal(r.status, 401, r.body);
    }
    // that client is out of tries, even with the right password
    const spent = await login(pub, '127.0.0.2', 'rita', 'otj-demo');
    assert.equal(spent.status, 429, spent.body);
    // everyone else behind the same nginx logs in
    assert.equal((await login(pub, '127.0.0.3', 'rita', 'otj-demo')).status, 200);
    assert.equal((await login(pub, '127.0.0.4', 'lea', 'otj-demo')).status, 200);
    // straight to otjd from an address that is not a trusted proxy, the
    // header is not believed: the failures count for that address
    const direct = `http://127.0.0.1:${srv.port}`;
    for (let i = 1; i <= 3; i++)
      assert.equal((await login(direct, '127.0.0.5', `nobody${i}`, 'wrong', { 'x-forwarded-for': `10.1.0.${i}` })).status, 401);
    assert.equal((await login(direct, '127.0.0.5', 'rita', 'otj-demo', { 'x-forwarded-for': '10.1.0.9' })).status, 429);
  });
});

test('trusted_proxies must list IP addresses', () => {
  const r = spawnSync(OTJD, ['check-config', '--trusted-proxies', '127.0.0.1,nginx.local'], { encoding: 'utf8' });
  assert.equal(r.status, 64, r.stdout + r.stderr);
  assert.match(r.stderr, /trusted_proxies: 'nginx\.local' is not an IP address/);
  const ok = spawnSync(OTJD, ['check-config', '--trusted-proxies', '127.0.0.1, ::ffff:10.0.0.1,::1'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
});
