// Install: what `cmake --install` lays out (otjd, otj-load, the web client
// under share/otj/web, the man page, the systemd unit and its sysusers.d
// user), that the installed otjd looks for the web client there without
// --web, that systemd-analyze accepts the unit, and the .deb CPack makes of
// the same build (its Depends: and its files). Uses the build folder otjd
// comes from ($OTJD's grandparent).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  accessSync, constants, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OTJD, startRedis, freePort, exited, waitFor } from './harness.mjs';

const BUILD = path.resolve(path.dirname(OTJD), '..');
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

function cacheVar(name) {
  const m = readFileSync(path.join(BUILD, 'CMakeCache.txt'), 'utf8')
    .match(new RegExp(`^${name}:[A-Z]+=(.*)$`, 'm'));
  return m && m[1];
}

// Installs the build into a fresh DESTDIR once for the tests of this file.
let staged;
function install() {
  if (staged) return staged;
  const dest = mkdtempSync(path.join(os.tmpdir(), 'otj-inst-'));
  execFileSync('cmake', ['--install', BUILD], { env: { ...process.env, DESTDIR: dest }, stdio: 'pipe' });
  const prefix = cacheVar('CMAKE_INSTALL_PREFIX');
  staged = { dest, prefix, root: path.join(dest, prefix) };
  return staged;
}

test.after(() => { if (staged) rmSync(staged.dest, { recursive: true, force: true }); });

test('cmake --install lays out the programs, the web client, the man page and the service', () => {
  const { root, prefix } = install();
  for (const exe of ['bin/otjd', 'bin/otj-load'])
    accessSync(path.join(root, exe), constants.X_OK);
  for (const f of ['share/otj/web/index.html', 'share/otj/web/vendor/msgpack.min.js',
    'share/man/man8/otjd.8', 'share/doc/otj/OPERATIONS.md',
    'lib/systemd/system/otjd.service', 'lib/sysusers.d/otj.conf'])
    assert.ok(existsSync(path.join(root, f)), `${f} is installed`);
  // the whole web client, as the source tree has it
  const web = (d) => readdirSync(d, { recursive: true }).sort();
  assert.deepEqual(web(path.join(root, 'share/otj/web')),
    web(path.resolve(BUILD, cacheVar('CMAKE_HOME_DIRECTORY'), 'web-client/public')));

  const unit = readFileSync(path.join(root, 'lib/systemd/system/otjd.service'), 'utf8');
  assert.match(unit, new RegExp(`^ExecStart=${prefix}/bin/otjd --data /var/lib/otj$`, 'm'));
  for (const line of ['User=otj', 'StateDirectory=otj', 'ProtectSystem=strict', 'ProtectHome=yes',
    'NoNewPrivileges=yes', 'PrivateTmp=yes', 'WantedBy=multi-user.target'])
    assert.match(unit, new RegExp(`^${line}$`, 'm'));
  assert.ok(Number(unit.match(/^LimitNOFILE=(\d+)$/m)?.[1]) >= 200000, 'LimitNOFILE is raised');
  assert.match(readFileSync(path.join(root, 'lib/sysusers.d/otj.conf'), 'utf8'), /^u otj - .* \/var\/lib\/otj$/m);

  const help = execFileSync(path.join(root, 'bin/otjd'), ['backup', '--help']).toString();
  assert.match(help, /otjd backup/);
});

test('systemd-analyze verify accepts the unit', { skip: !has('systemd-analyze') && 'no systemd-analyze' }, () => {
  const { root, prefix } = install();
  // verify checks that ExecStart exists and that `man otjd(8)` answers: point
  // both at the staged install (the only line changed is ExecStart's path)
  const unit = readFileSync(path.join(root, 'lib/systemd/system/otjd.service'), 'utf8')
    .replace(`ExecStart=${prefix}/bin/otjd`, `ExecStart=${root}/bin/otjd`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'otj-unit-'));
  try {
    writeFileSync(path.join(dir, 'otjd.service'), unit);
    const r = spawnSync('systemd-analyze', ['verify', path.join(dir, 'otjd.service')], {
      env: { ...process.env, MANPATH: `${root}/share/man:` }, encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /otjd\.service/, 'no warning about the unit');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the installed otjd takes the web client from share/otj/web without --web', async () => {
  const { root, prefix } = install();
  const redis = await startRedis();
  const data = mkdtempSync(path.join(os.tmpdir(), 'otj-inst-d-'));
  const port = await freePort();
  const p = spawn(path.join(root, 'bin/otjd'), ['--listen', `127.0.0.1:${port}`, '--data', data,
    '--redis', redis.addr], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OTJ_WEB: '' } });
  let log = '';
  p.stdout.on('data', (d) => { log += d; });
  p.stderr.on('data', (d) => { log += d; });
  try {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200, 'otjd');
    assert.ok(log.includes(`${prefix}/share/otj/web`), `the default web folder is the installed one:\n${log}`);
    assert.ok(!log.includes('web-client/public'), log);
  } finally {
    p.kill('SIGTERM');
    await exited(p);
    await redis.stop();
    rmSync(data, { recursive: true, force: true });
  }
});

test('cpack makes a .deb with the runtime Depends: and the installed files',
  { skip: !(has('cpack') && has('dpkg-deb') && has('dpkg-shlibdeps')) && 'no cpack/dpkg-dev' }, () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'otj-deb-'));
    try {
      execFileSync('cpack', ['-G', 'DEB', '--config', path.join(BUILD, 'CPackConfig.cmake'), '-B', out],
        { cwd: BUILD, stdio: 'pipe' });
      const deb = readdirSync(out).find((f) => /^otj_.*\.deb$/.test(f));
      assert.ok(deb, `a .deb in ${readdirSync(out)}`);
      const info = execFileSync('dpkg-deb', ['-I', path.join(out, deb)]).toString();
      const depends = info.match(/^ Depends: (.*)$/m)[1].split(/,\s*/).map((d) => d.split(' ')[0]);
      for (const pkg of ['libwebsockets17', 'libwebsockets-evlib-uv', 'libuv1', 'libhiredis0.14',
        'libsqlite3-0', 'libmsgpackc2', 'libsodium23', 'libqrencode4', 'libjansson4', 'redis-server'])
        assert.ok(depends.includes(pkg), `Depends: has ${pkg} (${depends})`);
      for (const script of ['postinst', 'prerm', 'postrm']) assert.match(info, new RegExp(` ${script} `));
      const prefix = cacheVar('CMAKE_INSTALL_PREFIX');
      const files = execFileSync('dpkg-deb', ['-c', path.join(out, deb)]).toString();
      for (const f of ['bin/otjd', 'bin/otj-load', 'share/otj/web/index.html', 'share/man/man8/otjd.8',
        'lib/systemd/system/otjd.service', 'lib/sysusers.d/otj.conf'])
        assert.ok(files.includes(`.${prefix}/${f}\n`), `the .deb holds ${prefix}/${f}`);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
