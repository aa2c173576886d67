// Records an inspector trusts, in the browser:
//  * drop-proof sign-off: rita approves lea and her connection is cut after
//    the server has the decision but before its acknowledgement reaches the
//    page. The decision shows "Saving…" meanwhile; after the reconnect it is
//    re-sent and shows Approved, and there is exactly one completion;
//  * the completion record page, opened by lea from her home and by rita from
//    the completions list, printed on one A4 page; another learner is refused;
//  * the audit check on the admin page: intact, then naming an entry edited
//    with the sqlite3 tool.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startRedis, startOtjd, decode } from '../integration/harness.mjs';
import { launch, person, logIn, shoot, PHONE, DESKTOP } from './browser.mjs';

let redis, srv, browser;
const people = [];

before(async () => {
  redis = await startRedis();
  srv = await startOtjd({ redis: redis.addr });
  browser = await launch();
});

after(async () => {
  for (const p of people) await p.context.close().catch(() => {});
  if (browser) await browser.close();
  if (srv) { await srv.stop(); srv.cleanup(); }
  if (redis) await redis.stop();
});

async function as(login, viewport) {
  const p = await person(browser, srv.base, login, { viewport });
  people.push(p);
  return p;
}

function sql(query) {
  const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000', `${srv.dataDir}/otj.db`, query]).toString();
  return out.trim() ? JSON.parse(out) : [];
}

const T = 20000;
const frame = (m) => { try { return decode(typeof m === 'string' ? Buffer.from(m) : m); } catch { return {}; } };

test('a sign-off cut between click and acknowledgement is saved once; its record and the audit check', async () => {
  const rita = await as('rita', DESKTOP);
  const lea = await as('lea', PHONE);

  // rita's websocket goes through a relay the test can cut: once armed, the
  // relay forwards her approve to the server but holds back everything the
  // server says from then on, and tells the test when the server answered
  // `approved` (the decision is on disk); the test then closes the socket.
  let armed = false;
  let cutSocket = null;
  let serverApproved;
  const approvedSeen = new Promise((resolve) => { serverApproved = resolve; });
  await rita.page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    let holding = false;
    ws.onMessage((m) => {
      if (armed && frame(m).t === 'approve') {
        armed = false;
        holding = true;
        cutSocket = () => { ws.close({ code: 1006 }); server.close(); };
      }
      server.send(m);
    });
    server.onMessage((m) => {
      if (!holding) { ws.send(m); return; }
      if (frame(m).t === 'approved') serverApproved(frame(m));
    });
    ws.onClose(() => server.close());
    server.onClose(() => ws.close());
  });

  await logIn(lea, '/#/learn');
  await logIn(rita, '/#/dashboard');
  await rita.page.getByRole('button', { name: 'Start Hand hygiene with Lea Johansen' }).click({ timeout: T });
  const code = (await rita.page.locator('#join-code').textContent({ timeout: T })).trim();
  await lea.page.goto(`${srv.base}/#/join/${code}`);
  await lea.page.locator('#task-text', { hasText: 'How long should you rub your hands with soap?' }).waitFor({ timeout: T });
  await lea.page.getByRole('button', { name: /20 s/ }).click();
  await rita.page.locator('.roster .presence.on').filter({ hasText: 'Lea Johansen' }).waitFor({ timeout: T });
  for (let task = 2; task <= 4; task++)
    await rita.page.getByRole('button', { name: `Pass: Lea Johansen, task ${task}` }).click();
  const leaRow = rita.page.locator('tbody tr').filter({ hasText: 'Lea Johansen' });
  await leaRow.locator('[data-cell$=":3"][data-mark="pass"]').waitFor({ timeout: T });

  // the click; the server commits and answers, the page hears nothing
  armed = true;
  await rita.page.getByRole('button', { name: 'Approve Lea Johansen', exact: true }).click();
  const first = await approvedSeen;
  assert.equal(first.results[0].status, 'approved', JSON.stringify(first));
  const completion = first.results[0].completion;
  const saving = leaRow.locator('[data-outcome="saving"]');
  await saving.waitFor({ timeout: T });
  assert.match(await saving.textContent(), /Saving/);
  assert.equal(await leaRow.locator('[data-outcome="approved"]').count(), 0, 'not shown as approved before the acknowledgement');
  assert.equal(await rita.page.getByRole('button', { name: 'Approve Lea Johansen', exact: true }).count(), 0,
    'no second click while it is saving');

  // the connection drops; the page reconnects, rejoins and re-sends
  cutSocket();
  await leaRow.locator('[data-outcome="approved"]').waitFor({ timeout: T });
  await rita.page.locator('#conn[data-status="online"]').waitFor({ timeout: T });
  assert.equal(await leaRow.locator('[data-outcome="saving"]').count(), 0);
  // the row may show the outcome from the rejoin's snapshot before the
  // re-sent decision is answered: the audit is read once it has been
  await rita.page.waitForFunction(() => {
    const k = Object.keys(localStorage).find((key) => key.startsWith('otj.decisions.'));
    return k && localStorage.getItem(k) === '[]';
  }, null, { timeout: T });
  const lid = sql(`SELECT id FROM users WHERE login='lea'`)[0].id;
  const HH = sql(`SELECT id FROM modules WHERE title='Hand hygiene'`)[0].id;
  assert.deepEqual(sql(`SELECT id FROM completions WHERE user_id=${lid} AND module_id=${HH}`), [{ id: completion }],
    'exactly one completion');
  const decisions = sql(`SELECT json_extract(detail,'$.completion') AS c, json_extract(detail,'$.created') AS created
    FROM audit WHERE action='otj.approved' AND json_extract(detail,'$.learner')=${lid} ORDER BY id`);
  assert.deepEqual(decisions, [{ c: completion, created: 1 }, { c: completion, created: 0 }],
    'the decision was re-sent after the reconnect and found the same completion');
  assert.equal(await rita.page.evaluate(() => localStorage.getItem(Object.keys(localStorage).find((k) => k.startsWith('otj.decisions.')))), '[]',
    'nothing is left waiting');
  await lea.page.locator('[data-outcome="approved"]').waitFor({ timeout: T });

  // lea opens her record from her home
  await lea.page.goto(`${srv.base}/#/learn`);
  await lea.page.getByRole('link', { name: 'Record of Hand hygiene' }).click({ timeout: T });
  await lea.page.locator('#record-title', { hasText: 'Hand hygiene' }).waitFor({ timeout: T });
  assert.equal(new URL(lea.page.url()).hash, `#/completions/${completion}`);
  const hash = sql(`SELECT lower(hex(hash)) AS h FROM audit WHERE action='otj.approved'
    AND json_extract(detail,'$.completion')=${completion} ORDER BY id LIMIT 1`)[0].h;
  assert.equal((await lea.page.locator('#record-hash').textContent()).trim(), hash);
  const facts = await lea.page.locator('.record-facts').textContent();
  for (const want of ['Lea Johansen', 'Kitchen', 'Kitchen starter', 'Rita', code])
    assert.ok(facts.includes(want), `the record names ${want}: ${facts}`);
  const tasks = lea.page.locator('.record-tasks tbody tr');
  assert.equal(await tasks.count(), 4);
  assert.match(await tasks.nth(0).textContent(), /20 s/);
  for (let i = 1; i < 4; i++) assert.match(await tasks.nth(i).textContent(), /Pass/);
  await shoot(lea.page, 'record-page');

  // printed: no navigation, one A4 page
  await lea.page.emulateMedia({ media: 'print' });
  assert.equal(await lea.page.locator('.topbar').isVisible(), false);
  assert.equal(await lea.page.getByRole('button', { name: /Print/ }).isVisible(), false);
  await lea.page.emulateMedia({ media: null });
  const pdf = await lea.page.pdf({ format: 'A4' }); // with the print stylesheet
  assert.equal((pdf.toString('latin1').match(/\/Type\s*\/Page[^s]/g) || []).length, 1, 'the record prints on one A4 page');

  // rita opens it from the completions list
  await rita.page.goto(`${srv.base}/#/completions`);
  await rita.page.getByRole('link', { name: 'Record of Lea Johansen: Hand hygiene' }).click({ timeout: T });
  await rita.page.locator('#record-hash', { hasText: hash }).waitFor({ timeout: T });

  // another learner gets no record
  const leo = await as('leo', PHONE);
  await logIn(leo, `/#/completions/${completion}`);
  await leo.page.getByRole('heading', { name: 'No such record' }).waitFor({ timeout: T });
  assert.equal(await leo.page.locator('#record-hash').count(), 0);

  // the admin checks the audit chain
  const admin = await as('admin', DESKTOP);
  await logIn(admin, '/#/admin/audit');
  await admin.page.getByRole('button', { name: 'Check the audit chain' }).click({ timeout: T });
  const ok = admin.page.locator('.audit-verdict[data-ok="true"]');
  await ok.waitFor({ timeout: T });
  const head = sql(`SELECT lower(hex(hash)) AS h FROM audit ORDER BY id DESC LIMIT 1`)[0].h;
  assert.match(await ok.textContent(), new RegExp(`Intact.*${head}`));
  await shoot(admin.page, 'audit-check', { both: false });

  // an entry edited behind OTJ live's back is named
  const victim = sql(`SELECT id FROM audit WHERE action='otj.mark' ORDER BY id LIMIT 1`)[0].id;
  execFileSync('sqlite3', ['-cmd', '.timeout 5000', `${srv.dataDir}/otj.db`,
    `DROP TRIGGER audit_no_update; UPDATE audit SET detail=json_set(detail,'$.result','fail') WHERE id=${victim}`]);
  await admin.page.getByRole('button', { name: 'Check the audit chain' }).click();
  const bad = admin.page.locator('.audit-verdict[data-ok="false"]');
  await bad.waitFor({ timeout: T });
  assert.match(await bad.textContent(), new RegExp(`Entry no. ${victim} does not match`));

  const errors = people.flatMap((p) => p.errors);
  assert.deepEqual(errors, [], 'the pages ran without errors');
});
