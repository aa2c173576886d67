// The private redis-server dies while a command of otjd's is still unread in
// its socket. The kernel then resets otjd's end of the unix socket (an error
// on the socket, not a plain end of stream), which the command connection
// must take for a lost connection like any other: otjd reconnects to the new
// redis-server, /healthz is 200 again and the room's members are told.
// Stopping the redis-server (SIGSTOP) before otjd writes, then killing it,
// makes the unread command certain; under a drill it happens by chance
// (crashloop.test.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startOtjd, connectAs, childPids, sleep } from './harness.mjs';

async function ask(c, msg, ms = 8000) {
  const rid = Math.floor(Math.random() * 1e9);
  c.send({ ...msg, rid });
  for (;;) {
    const m = await c.next(ms);
    if (m.rid === rid) return m;
  }
}

const redisKids = (srv) => childPids(srv.proc.pid).filter((k) => k.comm.startsWith('redis-server'));

test('the private redis-server killed with a command of otjd still unread: otjd reconnects to the new one and tells the room', { timeout: 60000 }, async () => {
  const srv = await startOtjd(); // embedded redis-server
  try {
    const rita = await connectAs(srv, 'rita');
    const lea = await connectAs(srv, 'lea');
    const snap = await ask(rita, { t: 'open', module: 2, learners: [] });
    assert.equal(snap.t, 'snapshot', JSON.stringify(snap));
    assert.equal((await ask(lea, { t: 'join', code: snap.code })).t, 'snapshot');
    const errs = [];

    const redisPid = redisKids(srv)[0].pid;
    process.kill(redisPid, 'SIGSTOP');
    // otjd writes a PING that the stopped server never reads
    const stalled = await fetch(`${srv.base}/healthz`, { signal: AbortSignal.timeout(5000) });
    assert.equal(stalled.status, 503, 'a stopped redis-server is reported');
    process.kill(redisPid, 'SIGKILL');

    let back = false, last = '';
    const until = Date.now() + 15000;
    while (Date.now() < until) {
      const r = await fetch(`${srv.base}/healthz`, { signal: AbortSignal.timeout(5000) });
      last = `${r.status} ${await r.text()}`;
      if (r.status === 200 && redisKids(srv).some((k) => k.pid !== redisPid)) {
        back = true;
        break;
      }
      await sleep(100);
    }
    assert.ok(back, `otjd connected to a new redis-server within 15 s (/healthz ${last}, ` +
      `children ${JSON.stringify(childPids(srv.proc.pid))})\n${srv.log}`);

    // the room's member heard that the room store was lost
    const until2 = Date.now() + 10000;
    while (!errs.includes('unavailable') && Date.now() < until2) {
      const m = await lea.next(Math.max(1, until2 - Date.now())).catch(() => null);
      if (!m) break;
      if (m.t === 'err') errs.push(m.code);
    }
    assert.ok(errs.includes('unavailable'), `the member was told (${JSON.stringify(errs)})\n${srv.log}`);

    // and a new room works on the new redis-server
    let again;
    for (let i = 0; i < 50; i++) {
      again = await ask(rita, { t: 'open', module: 2, learners: [] });
      if (again.t === 'snapshot') break;
      await sleep(100);
    }
    assert.equal(again.t, 'snapshot', JSON.stringify(again));
    await rita.close();
    await lea.close();
    await srv.stopClean();
  } finally {
    await srv.stop('SIGKILL');
    srv.cleanup();
  }
});
