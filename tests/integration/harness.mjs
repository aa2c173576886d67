// Test harness: starts a real redis-server and real otjd processes on free
// loopback ports, each in its own temporary folder, and stops them by pid.
// Talks to otjd the way any client does: HTTP for login, a websocket with
// subprotocol otj.v1 carrying one msgpack map per binary frame.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { encode, decode } from '@msgpack/msgpack';

export const OTJD = process.env.OTJD || path.resolve('build/server/otjd');
export const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';
// /metrics is not public: test servers open it with this bearer token
// (srv.metricsAuth is the fetch() option that sends it).
export const METRICS_TOKEN = 'harness-metrics-token-0123456789';

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function tmpdir(prefix) {
  // short paths: unix sockets live in here (108-byte limit)
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

async function waitFor(fn, what, ms = 10000) {
  const until = Date.now() + ms;
  let last;
  while (Date.now() < until) {
    try {
      if (await fn()) return;
    } catch (e) {
      last = e;
    }
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

export function exited(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null)
    return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  return new Promise((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })));
}

export async function startRedis() {
  const port = await freePort();
  const dir = tmpdir('otj-redis-');
  const proc = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1',
    '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  await waitFor(() => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.end(); resolve(true); });
    s.on('error', () => resolve(false));
  }), 'redis-server');
  return {
    port, proc, addr: `127.0.0.1:${port}`,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await exited(proc);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Starts otjd. opts.redis: "HOST:PORT" (omit for the embedded redis-server);
// opts.demo (default true); opts.env: extra environment; opts.dataDir.
export async function startOtjd(opts = {}) {
  const port = opts.port || await freePort();
  const dataDir = opts.dataDir || tmpdir('otj-d-');
  const args = ['--listen', `127.0.0.1:${port}`, '--data', dataDir];
  if (opts.redis) args.push('--redis', opts.redis);
  if (opts.demo !== false) args.push('--demo');
  const proc = spawn(OTJD, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { OTJ_METRICS_TOKEN: METRICS_TOKEN, ...process.env, ...(opts.env || {}) },
  });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const base = `http://127.0.0.1:${port}`;
  const srv = {
    port, proc, base, dataDir, get log() { return log; },
    metricsAuth: { headers: { authorization: `Bearer ${METRICS_TOKEN}` } },
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal);
        return exited(proc);
      }
      return { code: proc.exitCode, signal: proc.signalCode };
    },
    cleanup() { if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true }); },
    // Stops with SIGTERM and throws unless otjd exited cleanly: under the
    // sanitizers a leak or a memory error turns into a non-zero exit.
    async stopClean() {
      const r = await srv.stop('SIGTERM');
      if (r.code !== 0 || /AddressSanitizer|runtime error:|LeakSanitizer/.test(log))
        throw new Error(`otjd did not stop cleanly (${JSON.stringify(r)}):\n${log}`);
    },
  };
  try {
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`otjd exited ${proc.exitCode}: ${log}`);
      const r = await fetch(`${base}/healthz`);
      return r.status === 200;
    }, 'otjd /healthz', opts.startTimeout || 15000);
  } catch (e) {
    await srv.stop('SIGKILL');
    throw new Error(`${e.message}\n--- otjd log ---\n${log}`);
  }
  return srv;
}

export async function login(srv, loginName, password = 'otj-demo') {
  const r = await fetch(`${srv.base}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login: loginName, password }),
  });
  const body = await r.json();
  return { status: r.status, body, cookie: r.headers.get('set-cookie') };
}

// A websocket client that queues every decoded message for next().
export class Client {
  constructor(srv, { protocol = 'otj.v1', headers } = {}) {
    this.messages = [];
    this.waiters = [];
    this.ws = new WebSocket(`ws://127.0.0.1:${srv.port}/ws`, protocol, { headers });
    this.ws.binaryType = 'nodebuffer';
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.ws.on('message', (data, isBinary) => {
      const msg = isBinary ? decode(data) : { t: '__text__', data: data.toString() };
      const w = this.waiters.shift();
      if (w) w.resolve(msg); else this.messages.push(msg);
    });
    this.ws.on('error', () => {});
  }
  opened() {
    return new Promise((resolve, reject) => {
      if (this.ws.readyState === WebSocket.OPEN) return resolve();
      this.ws.once('open', resolve);
      this.ws.once('unexpected-response', (req, res) =>
        reject(new Error(`upgrade refused: ${res.statusCode}`)));
      this.ws.once('error', reject);
    });
  }
  send(obj) { this.ws.send(encode(obj)); }
  sendRaw(bytes, binary = true) { this.ws.send(bytes, { binary }); }
  next(ms = 5000) {
    const m = this.messages.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const w = { resolve: (v) => { clearTimeout(timer); resolve(v); } };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error('no message within ' + ms + ' ms'));
      }, ms);
      this.waiters.push(w);
    });
  }
  async request(obj, ms) { this.send(obj); return this.next(ms); }
  // Sends msg with a fresh rid and resolves with the reply to it. What
  // arrives before the reply (a room event may overtake the sender's ok)
  // stays queued, in order, for next().
  async ask(msg, ms = 5000) {
    const rid = Math.floor(Math.random() * 1e9);
    this.send({ ...msg, rid });
    const skipped = [];
    try {
      for (;;) {
        const m = await this.next(ms);
        if (m.rid === rid) return m;
        skipped.push(m);
      }
    } finally {
      this.messages.unshift(...skipped);
    }
  }
  close() { this.ws.close(); return this.closed; }
}

export async function connectAs(srv, loginName) {
  const { body } = await login(srv, loginName);
  const c = new Client(srv);
  await c.opened();
  const welcome = await c.request({ t: 'hello', v: 1, token: body.token });
  if (welcome.t !== 'welcome') throw new Error(`hello refused: ${JSON.stringify(welcome)}`);
  c.user = welcome.user;
  c.token = body.token;
  return c;
}

// pids of the processes whose parent is `pid` (from /proc).
import { readdirSync, readFileSync } from 'node:fs';
export function childPids(pid) {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) out.push({ pid: Number(d), state: fields[0],
        comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) });
    } catch { /* gone */ }
  }
  return out;
}

export function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch { return false; }
}

export { sleep, encode, decode, waitFor };
