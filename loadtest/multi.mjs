// Several otj-load generator processes against the otjd instances run.mjs
// started: one process cannot hold more than its descriptor limit (20,000
// here), so 100,000 connections need several, each binding its own
// 127.B.C.x source addresses (ports are per source address).
//
// The generators provision their own users (names carry each one's run id),
// then wait; this file measures otjd and Redis with nothing connected, lets
// them all connect (SIGUSR1), measures again once every one said "ready",
// holds, measures a last time, ends their hold (SIGUSR1) and adds up their
// reports. Memory per connection = growth from "nothing connected" to "all
// held", divided by the connections each process holds.
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

// ---- a minimal Redis client (RESP2), for INFO, DBSIZE, SCAN, MEMORY USAGE ----

function redisClient(port) {
  const sock = net.connect(port, '127.0.0.1');
  let buf = Buffer.alloc(0);
  const waiting = [];
  // parses one reply at buf[i]; returns [value, next] or null when incomplete
  function parse(i) {
    const nl = buf.indexOf('\r\n', i);
    if (nl < 0) return null;
    const type = String.fromCharCode(buf[i]);
    const line = buf.toString('utf8', i + 1, nl);
    if (type === '+') return [line, nl + 2];
    if (type === '-') return [new Error(line), nl + 2];
    if (type === ':') return [Number(line), nl + 2];
    if (type === '$') {
      const n = Number(line);
      if (n < 0) return [null, nl + 2];
      if (buf.length < nl + 2 + n + 2) return null;
      return [buf.toString('utf8', nl + 2, nl + 2 + n), nl + 2 + n + 2];
    }
    if (type === '*') {
      const n = Number(line);
      const out = [];
      let at = nl + 2;
      for (let k = 0; k < n; k++) {
        const r = parse(at);
        if (!r) return null;
        out.push(r[0]);
        at = r[1];
      }
      return [out, at];
    }
    throw new Error(`redis: cannot parse a reply starting with ${type}`);
  }
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const r = parse(0);
      if (!r) break;
      buf = buf.subarray(r[1]);
      const w = waiting.shift();
      if (w) w(r[0]);
    }
  });
  const ready = new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  return {
    async cmd(...args) {
      await ready;
      let s = `*${args.length}\r\n`;
      for (const a of args) s += `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`;
      return new Promise((resolve) => {
        waiting.push(resolve);
        sock.write(s);
      });
    },
    close() { sock.end(); },
  };
}

function infoFields(text) {
  const o = {};
  for (const l of String(text).split('\r\n')) {
    const k = l.indexOf(':');
    if (k > 0) o[l.slice(0, k)] = l.slice(k + 1);
  }
  return o;
}

async function redisSample(rc) {
  const mem = infoFields(await rc.cmd('INFO', 'memory'));
  const cl = infoFields(await rc.cmd('INFO', 'clients'));
  return {
    used_memory: Number(mem.used_memory),
    used_memory_rss: Number(mem.used_memory_rss),
    mem_clients_normal: Number(mem.mem_clients_normal),
    connected_clients: Number(cl.connected_clients),
    keys: await rc.cmd('DBSIZE'),
  };
}

// Keys by prefix (the text before the last ':'-part, digits folded), with
// MEMORY USAGE of every key: what Redis holds, and what for.
async function redisKeys(rc) {
  const by = {};
  let cursor = '0';
  do {
    const [next, keys] = await rc.cmd('SCAN', cursor, 'COUNT', '1000');
    cursor = next;
    for (const k of keys) {
      const kind = k.replace(/\{[^}]*\}/, '{#}').replace(/[0-9a-f]{8,}|\d+/g, '#');
      const b = (by[kind] ||= { keys: 0, bytes: 0, type: await rc.cmd('TYPE', k) });
      b.keys++;
      b.bytes += Number(await rc.cmd('MEMORY', 'USAGE', k, 'SAMPLES', '0')) || 0;
    }
  } while (cursor !== '0');
  return by;
}

// ---- otjd ----------------------------------------------------------------------

// user + system CPU seconds from /proc/PID/stat (fields 14 and 15, in ticks)
function cpuSeconds(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

function procMem(pid) {
  const o = {};
  try {
    for (const l of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
      const m = /^(VmRSS|RssAnon|RssFile):\s+(\d+) kB/.exec(l);
      if (m) o[m[1]] = Number(m[2]);
    }
  } catch { /* gone */ }
  return { rss_kib: o.VmRSS ?? 0, anon_kib: o.RssAnon ?? 0, cpu_s: cpuSeconds(pid) };
}

async function wsConnections(srv) {
  try {
    const r = await fetch(`${srv.base}/metrics`, srv.metricsAuth);
    const m = /^otj_ws_connections\s+(\d+)/m.exec(await r.text());
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}

async function sampleAll(servers, redis, rc) {
  const otjd = [];
  for (const s of servers)
    otjd.push({ ...procMem(s.proc.pid), ws_connections: await wsConnections(s) });
  return { at_ms: Date.now(), otjd, redis: { ...await redisSample(rc), cpu_s: cpuSeconds(redis.proc.pid) } };
}

// ---- the generators -----------------------------------------------------------------

function takeOpt(args, name) {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
}

export async function runGenerators({ load, generators, rest, servers, redis }) {
  const args = [...rest];
  const scenario = args[0];
  const total = Number(takeOpt(args, '--connections') ?? 10000);
  const hold = Number(takeOpt(args, '--hold') ?? 5);
  const jsonPath = takeOpt(args, '--json');
  const timeout = Number(takeOpt(args, '--timeout') ?? 900);
  takeOpt(args, '--source-net');
  if (scenario !== 'connections') throw new Error('--generators: only the connections scenario');
  const G = generators;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'otj-gen-'));
  // one B for the run, one C per generator: a fresh 127.B.C.0/24 each
  const b = 1 + (Math.floor(Date.now() / 1000) % 250);
  const c0 = Math.floor(Math.random() * 256);
  const rc = redisClient(redis.port);
  const gens = [];
  const lines = [];
  let wake = null;
  const changed = () => { if (wake) { wake(); wake = null; } };
  const waitChange = (ms) => new Promise((r) => { wake = r; setTimeout(r, ms); });
  const t0 = Date.now();
  const stop = () => { for (const x of gens) if (x.state !== 'exited') x.child.kill('SIGTERM'); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    for (let g = 0; g < G; g++) {
      const n = Math.floor(total / G) + (g < total % G ? 1 : 0);
      const a = [...args, '--connections', String(n), '--json', path.join(tmp, `g${g}.json`),
        '--sync-fd', '3', '--source-net', `${b}.${(c0 + g) % 256}`, '--quiet',
        '--label', `generator ${g + 1}/${G}`, '--timeout', String(timeout)];
      for (const s of servers) a.push('--server', `ws://127.0.0.1:${s.port}`);
      for (const s of servers) a.push('--otjd-pid', String(s.proc.pid));
      a.push('--redis-pid', String(redis.proc.pid));
      const child = spawn(load, a, { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
      const gen = { g, n, child, out: '', state: 'provisioning', code: null };
      child.stdout.on('data', (d) => { gen.out += d; });
      let part = '';
      child.stdio[3].on('data', (d) => {
        part += d;
        let k;
        while ((k = part.indexOf('\n')) >= 0) {
          const l = part.slice(0, k);
          part = part.slice(k + 1);
          lines.push(`${g}: ${l}`);
          if (l.startsWith('provisioned')) gen.state = 'provisioned';
          if (l.startsWith('ready')) { gen.state = 'ready'; gen.ready = Number(l.split(' ')[1]); }
          changed();
        }
      });
      child.on('exit', (code, sig) => { gen.code = code ?? (sig ? 1 : 0); gen.state = 'exited'; changed(); });
      gens.push(gen);
    }
    const until = async (state, what) => {
      const end = t0 + timeout * 1000;
      while (!gens.every((x) => x.state === state)) {
        if (gens.some((x) => x.state === 'exited'))
          throw new Error(`a generator stopped while the others were ${what}`);
        if (Date.now() > end) throw new Error(`generators still ${what} after ${timeout} s`);
        await waitChange(1000);
      }
    };
    await until('provisioned', 'provisioning');
    const tProv = Date.now();
    console.error(`run.mjs: ${G} generators provisioned in ${((tProv - t0) / 1000).toFixed(1)} s; connecting ${total}`);
    const idle = await sampleAll(servers, redis, rc);
    for (const x of gens) x.child.kill('SIGUSR1');
    await until('ready', 'connecting');
    const tReady = Date.now();
    await sleep(1000); // replies and frees of the last connects settle
    const held = await sampleAll(servers, redis, rc);
    console.error(`run.mjs: ${gens.reduce((s, x) => s + x.ready, 0)} connections set up in ${((tReady - tProv) / 1000).toFixed(1)} s; holding ${hold} s`);
    const keys = await redisKeys(rc);
    await sleep(hold * 1000);
    const end = await sampleAll(servers, redis, rc);
    for (const x of gens) x.child.kill('SIGUSR1');
    while (!gens.every((x) => x.state === 'exited')) await waitChange(1000);
    return report({ gens, tmp, jsonPath, total, hold, idle, held, end, keys, servers, G,
      setup_s: (tReady - tProv) / 1000, provision_s: (tProv - t0) / 1000 });
  } catch (e) {
    console.error(`run.mjs: ${e.message}`);
    for (const x of gens) if (x.state !== 'exited') x.child.kill('SIGTERM');
    while (!gens.every((x) => x.state === 'exited')) await waitChange(1000);
    for (const x of gens) process.stdout.write(x.out);
    return 1;
  } finally {
    rc.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

const cpuSum = (xs) => xs.reduce((s, x) => s + x.cpu_s, 0);

function report({ gens, tmp, jsonPath, total, hold, idle, held, end, keys, servers, G, setup_s, provision_s }) {
  const reps = gens.map((x) => {
    try { return JSON.parse(readFileSync(path.join(tmp, `g${x.g}.json`), 'utf8')); } catch { return null; }
  });
  const sum = (f) => reps.reduce((s, r) => s + (r ? f(r) : 0), 0);
  const heldTotal = sum((r) => r.achieved.connections_held);
  const perServer = servers.map((_, i) => sum((r) => r.achieved.held_per_server?.[i] ?? 0));
  const corr = {};
  for (const k of ['errors', 'conn_failed', 'conn_closed', 'lost', 'duplicated'])
    corr[k] = sum((r) => r.correctness[k]);
  const otjd = servers.map((s, i) => {
    const grow = held.otjd[i].anon_kib - idle.otjd[i].anon_kib;
    const n = held.otjd[i].ws_connections;
    return {
      pid: s.proc.pid,
      held_by_generators: perServer[i],
      ws_connections_held: n,
      ws_connections_end: end.otjd[i].ws_connections,
      anon_idle_kib: idle.otjd[i].anon_kib,
      anon_held_kib: held.otjd[i].anon_kib,
      anon_end_kib: end.otjd[i].anon_kib,
      rss_held_kib: held.otjd[i].rss_kib,
      anon_bytes_per_connection: n > 0 ? (grow * 1024) / n : 0,
    };
  });
  // The first instance served the provisioning (imports of thousands of
  // users): the heap it freed is reused by its connections, which hides
  // their cost. With several instances, the others tell it.
  const clean = otjd.length > 1 ? otjd.slice(1) : otjd;
  const otjdGrow = clean.reduce((s, o) => s + (o.anon_held_kib - o.anon_idle_kib), 0) * 1024;
  const cleanHeld = clean.reduce((s, o) => s + o.ws_connections_held, 0);
  const wsHeld = otjd.reduce((s, o) => s + o.ws_connections_held, 0);
  const wsEnd = otjd.reduce((s, o) => s + o.ws_connections_end, 0);
  const rUsed = held.redis.used_memory - idle.redis.used_memory;
  const rRss = held.redis.used_memory_rss - idle.redis.used_memory_rss;
  const ok = gens.every((x) => x.code === 0) && heldTotal === total && wsEnd === total &&
    Object.values(corr).every((v) => v === 0);
  const rep = {
    scenario: 'connections',
    label: `${G} generators, ${servers.length} otjd, one Redis`,
    machine: reps.find(Boolean)?.machine,
    params: { connections: total, generators: G, instances: servers.length, hold_s: hold,
      ping_s: reps.find(Boolean)?.params?.ping_s },
    achieved: {
      connections_held: heldTotal, held_per_otjd: perServer, ws_connections_held: wsHeld,
      ws_connections_end_of_hold: wsEnd, provision_s, setup_s,
      pings: sum((r) => r.achieved.pings ?? 0), pongs: sum((r) => r.achieved.pongs ?? 0),
    },
    correctness: { ...corr, generators_failed: gens.filter((x) => x.code !== 0).length, ok },
    memory: {
      otjd_anon_bytes_per_connection: cleanHeld > 0 ? otjdGrow / cleanHeld : 0,
      otjd_measured_on: otjd.length > 1 ? 'instances 2..N (not the one that provisioned)' : 'the one instance (it also provisioned: an underestimate)',
      redis_used_memory_bytes_per_connection: heldTotal > 0 ? rUsed / heldTotal : 0,
      redis_rss_bytes_per_connection: heldTotal > 0 ? rRss / heldTotal : 0,
    },
    otjd,
    redis: { idle: idle.redis, held: held.redis, end: end.redis, keys_when_held: keys },
    cpu: {
      otjd_setup_s: cpuSum(held.otjd) - cpuSum(idle.otjd),
      redis_setup_s: held.redis.cpu_s - idle.redis.cpu_s,
      otjd_hold_s: cpuSum(end.otjd) - cpuSum(held.otjd),
      redis_hold_s: end.redis.cpu_s - held.redis.cpu_s,
      otj_load_hold_s: sum((r) => r.cpu.otj_load_s),
    },
    generators: reps,
  };
  const o = process.stdout;
  o.write(`\n== otj-load connections / ${rep.label}: ${ok ? 'OK' : 'FAILED'} ==\n`);
  o.write(`  connections held ${heldTotal} of ${total} (otjd counts ${wsHeld} when all were set up, ${wsEnd} at the end of the ${hold} s hold)\n`);
  o.write(`  per otjd: ${perServer.join(', ')}; set up in ${setup_s.toFixed(1)} s after ${provision_s.toFixed(1)} s of provisioning\n`);
  o.write(`  otjd anon memory per connection: ${rep.memory.otjd_anon_bytes_per_connection.toFixed(0)} bytes on instances 2..N (each: ${otjd.map((x) => x.anon_bytes_per_connection.toFixed(0)).join(', ')})\n`);
  o.write(`  Redis per connection: used_memory ${rep.memory.redis_used_memory_bytes_per_connection.toFixed(1)} bytes, RSS ${rep.memory.redis_rss_bytes_per_connection.toFixed(1)} bytes; keys ${idle.redis.keys} -> ${held.redis.keys}\n`);
  for (const [k, v] of Object.entries(keys).sort((a, b2) => b2[1].bytes - a[1].bytes).slice(0, 8))
    o.write(`    ${k} (${v.type}): ${v.keys} keys, ${v.bytes} bytes\n`);
  o.write(`  CPU: setup otjd ${rep.cpu.otjd_setup_s.toFixed(2)} s, redis ${rep.cpu.redis_setup_s.toFixed(2)} s; hold otjd ${rep.cpu.otjd_hold_s.toFixed(2)} s, redis ${rep.cpu.redis_hold_s.toFixed(2)} s, generators ${rep.cpu.otj_load_hold_s.toFixed(2)} s\n`);
  o.write(`  pings ${rep.achieved.pings}, pongs ${rep.achieved.pongs}; correctness: ${JSON.stringify(corr)}\n`);
  if (jsonPath) writeFileSync(jsonPath, JSON.stringify(rep, null, 2) + '\n');
  return ok ? 0 : 1;
}
