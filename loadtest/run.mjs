// Starts a redis-server and N otjd instances sharing it (and one SQLite
// file), each on a free loopback port, runs otj-load against all of them,
// then stops everything by pid. Exit code: otj-load's.
//
// The otjd instances get the limits a load run needs (see BENCHMARKS.md):
// no per-connection message cap that a simulated responsible could hit,
// room for 200,000 connections, and the demo organisation (its admin
// provisions the load users).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

const args = process.argv.slice(2);
let instances = 1;
let generators = 0;
let otjd = path.join(root, 'build/server/otjd');
let load = path.join(root, 'build/loadtest/otj-load');
const env = {
  OTJ_MAX_MSGS_PER_SEC: '1000000',
  OTJ_MAX_CONNECTIONS: '200000',
  OTJ_IDLE_TIMEOUT: '600',
};
let rest = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--') { rest = args.slice(i + 1); break; }
  if (a === '--instances') instances = Number(args[++i]);
  else if (a === '--generators') generators = Number(args[++i]);
  else if (a === '--otjd') otjd = path.resolve(args[++i]);
  else if (a === '--otj-load') load = path.resolve(args[++i]);
  else if (a === '--env') {
    const [k, ...v] = args[++i].split('=');
    env[k] = v.join('=');
  } else {
    console.error(`run.mjs: unknown option ${a}`);
    process.exit(2);
  }
}
if (!rest.length) {
  console.error('usage: run.sh [--instances N] [--generators G] [--otjd PATH] [--otj-load PATH] [--env K=V] -- SCENARIO [options]');
  process.exit(2);
}
process.env.OTJD = otjd;
const { startRedis, startOtjd } = await import('../tests/integration/harness.mjs');

const redis = await startRedis();
const servers = [];
let code = 1;
try {
  const first = await startOtjd({ redis: redis.addr, env });
  servers.push(first);
  for (let i = 1; i < instances; i++)
    servers.push(await startOtjd({ redis: redis.addr, env, dataDir: first.dataDir, demo: false }));
  if (generators > 0) {
    const { runGenerators } = await import('./multi.mjs');
    code = await runGenerators({ load, generators, rest, servers, redis });
  } else {
    const loadArgs = [...rest];
    for (const s of servers) loadArgs.push('--server', `ws://127.0.0.1:${s.port}`);
    for (const s of servers) loadArgs.push('--otjd-pid', String(s.proc.pid));
    loadArgs.push('--redis-pid', String(redis.proc.pid));
    const child = spawn(load, loadArgs, { stdio: 'inherit' });
    const stop = () => child.kill('SIGTERM');
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
  }
} catch (e) {
  console.error(`run.mjs: ${e.message}`);
} finally {
  for (const s of servers.reverse()) {
    await s.stop('SIGTERM');
  }
  if (servers.length) servers[servers.length - 1].cleanup();
  await redis.stop();
}
process.exit(code);
