// Redis CPU per join of room.lua alone, without otjd or sockets: a private
// redis-server, R rooms of 1 + M opened, then every learner joins once (as
// in a join storm: each join makes the room hear `joined`), sent through
// `redis-cli --pipe`. Prints Redis' CPU per join (INFO cpu around the joins)
// and the script's time per call (INFO commandstats).
//
//   node loadtest/join_script_bench.mjs [--lua FILE] [--rooms R] [--members M] [--lua-snapshot]
//                                      [--storm-order]
//
// --storm-order joins as a join storm does: the learners are not listed when
// the room opens (each join adds one, as a join by code does), and the joins
// go one learner of each room in turn, so each call meets a room other
// calls have not just warmed in the CPU's caches (room by room, every call
// finds its room's data hot, and costs a third of what it does in a storm).
//
// --lua-snapshot is for a room.lua whose join op returns the snapshot itself
// (before the snapshot reads moved into a MULTI); otherwise each join goes
// in a MULTI with the six snapshot reads, as otjd sends it
// (storage/rstore.c, rstore_snapshot_read).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const here = path.dirname(new URL(import.meta.url).pathname);
const lua = fs.readFileSync(arg('--lua', path.join(here, '../storage/room.lua')), 'utf8');
const rooms = Number(arg('--rooms', 200));
const members = Number(arg('--members', 29));
const luaSnapshot = process.argv.includes('--lua-snapshot');
const stormOrder = process.argv.includes('--storm-order');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otj-jsb-'));
const sock = path.join(dir, 'redis.sock');
const redis = spawn('redis-server', ['--port', '0', '--unixsocket', sock, '--save', '',
  '--appendonly', 'no'], { stdio: 'ignore' });
const cli = (args, input) => {
  const r = spawnSync('redis-cli', ['-s', sock, ...args], { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const resp = (args) =>
  `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('');
const info = (section) => Object.fromEntries(cli(['INFO', section]).split('\r\n')
  .filter((l) => l.includes(':')).map((l) => l.split(':')));

try {
  for (let i = 0; i < 100 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  const sha = cli(['SCRIPT', 'LOAD', lua]).trim();
  const parts = ['meta', 'members', 'log', 'answers', 'marks', 'ikeys', 'presence', 'outcomes',
    'attendance'];
  const now = 1764000000000;
  const call = (room, op, rest) => {
    const keys = parts.map((p) => `otj:r:{${room}}:${p}`);
    return ['EVALSHA', sha, keys.length, ...keys, op, now, 3600, `otj:r:{${room}}`, '0', 200,
      'bench', 30000, ...rest];
  };
  const reads = (room) => [['HGETALL', 'meta'], ['HGETALL', 'members'], ['HGETALL', 'presence'],
    ['HVALS', 'answers'], ['HVALS', 'marks'], ['HGETALL', 'outcomes']]
    .map(([c, p]) => [c, `otj:r:{${room}}:${p}`]);
  let open = '';
  const perRoom = [];
  for (let r = 0; r < rooms; r++) {
    const room = `bench${r}`;
    const learners = [];
    for (let m = 0; m < members; m++) learners.push(100000 + r * 1000 + m, `Learner ${m}`);
    open += resp(call(room, 'open', [1000 + r, 7, `C${r}`, 5, 12345,
      ...(stormOrder ? [] : learners)]));
    open += resp(call(room, 'join', [1, 1000 + r, 'host', '0', 'Host', 200]));
    perRoom.push([]);
    for (let m = 0; m < members; m++) {
      const j = call(room, 'join', [1, 100000 + r * 1000 + m, 'learner', stormOrder ? '1' : '0',
        `Learner ${m}`, 200]);
      perRoom[r].push(luaSnapshot ? resp(j)
        : resp(['MULTI']) + resp(j) + reads(room).map(resp).join('') + resp(['EXEC']));
    }
  }
  // room by room, or (--storm-order) one learner of each room in turn
  const order = [];
  if (stormOrder) {
    for (let m = 0; m < members; m++) for (let r = 0; r < rooms; r++) order.push(perRoom[r][m]);
  } else {
    for (const r of perRoom) order.push(...r);
  }
  const joins = order.join('');
  cli(['--pipe'], open);
  cli(['CONFIG', 'RESETSTAT']);
  const cpu = () => { const c = info('cpu'); return Number(c.used_cpu_user) + Number(c.used_cpu_sys); };
  const c0 = cpu();
  cli(['--pipe'], joins);
  const c1 = cpu();
  const stats = info('commandstats');
  const per = (name) => (stats[`cmdstat_${name}`] || '').match(/usec_per_call=([0-9.]+)/)?.[1];
  const n = rooms * members;
  console.log(`${n} joins (rooms of 1 + ${members}): Redis CPU ${((c1 - c0) * 1e6 / n).toFixed(1)} us per join;` +
    ` script ${per('evalsha')} us per call` + (luaSnapshot ? '' : `, MULTI..EXEC ${per('exec')} us`));
} finally {
  redis.kill();
  fs.rmSync(dir, { recursive: true, force: true });
}
