// Every administrator's change is in the tamper-evident audit log: one entry
// per change (departments, users, permissions, deactivation, modules and
// their settings, paths, sharings, the organisation import) naming who made
// it, what it was on and the fields that changed — never a password or its
// hash — written in the transaction of the change, so the chain check stays
// ok. A refused or empty change writes nothing. Someone who edits one of these
// entries with the sqlite3 tool is named by the check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { OTJD, startRedis, startOtjd, login } from './harness.mjs';

const tokens = new Map();
async function call(srv, who, method, p, body) {
  const headers = {};
  if (who) {
    if (!tokens.has(who)) {
      const r = await login(srv, who);
      assert.equal(r.status, 200, `login ${who}`);
      tokens.set(who, r.body.token);
    }
    headers.authorization = `Bearer ${tokens.get(who)}`;
  }
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${srv.base}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, body: json, text };
}

test('each kind of admin change is one audit entry with who, what and the changed fields', async () => {
  const redis = await startRedis();
  const srv = await startOtjd({ redis: redis.addr });
  const db = path.join(srv.dataDir, 'otj.db');
  const sql = (q) => {
    const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000', db, q]).toString();
    return out.trim() ? JSON.parse(out) : [];
  };
  const A = (method, p, body) => call(srv, 'admin', method, p, body);
  const adminId = (await A('GET', '/api/me')).body.id ?? (await A('GET', '/api/me')).body.user.id;
  // the audit listing, newest first; the entries after entry `since`
  const entries = async (since) => {
    const r = await A('GET', '/api/admin/audit?limit=500');
    assert.equal(r.status, 200);
    return r.body.items.filter((e) => e.id > since).reverse();
  };
  const lastId = () => sql('SELECT coalesce(max(id), 0) AS id FROM audit')[0].id;
  // runs one change and returns the entries it wrote
  const change = async (method, p, body, status) => {
    const before = lastId();
    const r = await A(method, p, body);
    assert.equal(r.status, status, `${method} ${p}: ${r.text}`);
    return { r, written: await entries(before) };
  };
  const one = async (method, p, body, status, action, subject) => {
    const { r, written } = await change(method, p, body, status);
    assert.equal(written.length, 1, `${method} ${p} wrote ${JSON.stringify(written)}`);
    const e = written[0];
    assert.equal(e.action, action);
    assert.equal(e.subject, subject(r.body));
    assert.deepEqual(e.actor, { id: adminId, login: 'admin' });
    return { r, e };
  };
  try {
    const depts = (await A('GET', '/api/admin/departments')).body.items;
    const dept = (n) => depts.find((d) => d.name === n).id;

    // departments
    const dc = await one('POST', '/api/admin/departments', { name: 'Bakery', parent_id: dept('Kitchen') }, 201,
      'department.created', (b) => `department:${b.id}`);
    assert.deepEqual(dc.e.detail, { name: 'Bakery', parent_id: dept('Kitchen') });
    const bakery = dc.r.body.id;
    const du = await one('PATCH', `/api/admin/departments/${bakery}`, { name: 'Bakery & pastry', parent_id: dept('Ward 3') }, 200,
      'department.updated', () => `department:${bakery}`);
    assert.deepEqual(du.e.detail, { name: { from: 'Bakery', to: 'Bakery & pastry' },
      parent_id: { from: dept('Kitchen'), to: dept('Ward 3') } });

    // users: created with permissions, never the password in the entry
    const uc = await one('POST', '/api/admin/users', { login: 'bea', name: 'Bea Baker', department_id: bakery,
      password: 'secret-bea-password', management: true, facilitate_otj: true }, 201, 'user.created', (b) => `user:${b.id}`);
    const bea = uc.r.body.id;
    assert.deepEqual(uc.e.detail, { login: 'bea', name: 'Bea Baker', department_id: bakery, admin: false,
      management: true, facilitate_otj: true });
    const raw = sql(`SELECT detail FROM audit WHERE subject='user:${bea}'`).map((x) => x.detail).join('');
    assert.doesNotMatch(raw, /secret-bea-password|argon2|password/);
    assert.equal(uc.r.body.facilitate_otj, true);
    const hashed = await one('POST', '/api/admin/users', { login: 'ben', name: 'Ben Baker', department_id: bakery,
      password_hash: '$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo' }, 201, 'user.created', (b) => `user:${b.id}`);
    assert.doesNotMatch(JSON.stringify(hashed.e.detail), /argon2|hash/);
    const ben = hashed.r.body.id;

    const up = await one('PATCH', `/api/admin/users/${ben}`, { name: 'Ben B. Baker', department_id: dept('Kitchen') }, 200,
      'user.updated', () => `user:${ben}`);
    assert.deepEqual(up.e.detail, { name: { from: 'Ben Baker', to: 'Ben B. Baker' },
      department_id: { from: bakery, to: dept('Kitchen') } });
    const adm = await one('PATCH', `/api/admin/users/${ben}`, { admin: true }, 200, 'user.admin', () => `user:${ben}`);
    assert.deepEqual(adm.e.detail, { admin: true });
    const perm = await one('PUT', `/api/admin/users/${ben}/permissions`, { management: true, facilitate_otj: false }, 200,
      'permission.set', () => `user:${ben}`);
    assert.deepEqual(perm.e.detail, { management: true, facilitate_otj: false });
    await one('PATCH', `/api/admin/users/${ben}`, { active: false }, 200, 'user.deactivated', () => `user:${ben}`);

    // modules: create, patch, the OTJ switch and the general settings
    const mc = await one('POST', '/api/admin/modules', { title: 'Oven safety', type: 'quiz',
      tasks: [{ kind: 'observe', text: 'Uses oven gloves' }] }, 201, 'module.created', (b) => `module:${b.id}`);
    const oven = mc.r.body.id;
    assert.deepEqual(mc.e.detail, { title: 'Oven safety', type: 'quiz', tasks: 1 });
    const mu = await one('PATCH', `/api/admin/modules/${oven}`, { title: 'Oven safety 2' }, 200, 'module.updated', () => `module:${oven}`);
    assert.deepEqual(mu.e.detail, { title: 'Oven safety 2', type: null, tasks: null });
    const otj = await one('PATCH', `/api/admin/modules/${oven}`, { otj: true }, 200, 'module.otj', () => `module:${oven}`);
    assert.deepEqual(otj.e.detail, { otj: true });
    const val = await one('PATCH', `/api/admin/modules/${oven}`, { validity_months: 12 }, 200, 'module.validity', () => `module:${oven}`);
    assert.equal(val.e.detail.validity_months, 12);
    await one('PATCH', `/api/admin/modules/${oven}`, { learner_confirm: true }, 200, 'module.learner_confirm_on', () => `module:${oven}`);

    // paths: created, then its title and modules changed
    const mods = (await A('GET', '/api/admin/modules')).body.items;
    const food = mods.find((m) => m.title === 'Food safety basics').id;
    const pc = await one('POST', '/api/admin/paths', { title: 'Bakery start', modules: [oven] }, 201, 'path.created', (b) => `path:${b.id}`);
    const pathId = pc.r.body.id;
    assert.deepEqual(pc.e.detail, { title: 'Bakery start', modules: [oven] });
    const pu = await one('PATCH', `/api/admin/paths/${pathId}`, { title: 'Bakery basics', modules: [food, oven] }, 200,
      'path.updated', () => `path:${pathId}`);
    assert.deepEqual(pu.e.detail, { title: { from: 'Bakery start', to: 'Bakery basics' }, modules: { from: [oven], to: [food, oven] } });

    // sharings: with a department and with a user, and a removal
    const sd = await one('POST', '/api/admin/sharings', { path_id: pathId, department_id: bakery }, 201,
      'sharing.created', (b) => `sharing:${b.id}`);
    assert.deepEqual(sd.e.detail, { path_id: pathId, department_id: bakery });
    const su = await one('POST', '/api/admin/sharings', { path_id: pathId, user_id: bea }, 201, 'sharing.created', (b) => `sharing:${b.id}`);
    assert.deepEqual(su.e.detail, { path_id: pathId, user_id: bea });
    const del = await one('DELETE', `/api/admin/sharings/${su.r.body.id}`, undefined, 200, 'sharing.deleted', () => `sharing:${su.r.body.id}`);
    assert.deepEqual(del.e.detail, { path_id: pathId, user_id: bea });

    // the organisation import: one entry for the whole document (after the
    // OTJ switch of each module it turns on, which R11 audits on its own)
    const imp = await change('POST', '/api/admin/import', { departments: [{ name: 'Harbour' }],
      users: [{ login: 'hugo', name: 'Hugo Hav', department: 'Harbour', password: 'change-me-soon' }],
      modules: [{ title: 'Rope work', type: 'quiz', otj: true, tasks: [{ kind: 'observe', text: 'Ties a bowline' }] }] }, 200);
    assert.deepEqual(imp.written.map((e) => e.action), ['module.otj', 'org.import']);
    const impEntry = imp.written[1];
    assert.equal(impEntry.subject, 'organisation');
    assert.deepEqual(impEntry.actor, { id: adminId, login: 'admin' });
    assert.deepEqual(impEntry.detail, { departments: 1, users: 1, modules: 1, paths: 0, sharings: 0, completions: 0 });
    assert.equal(imp.written[0].at, impEntry.at);
    assert.doesNotMatch(JSON.stringify(imp.written), /change-me-soon|argon2/);

    // negative: refusals and changes that change nothing write no entry
    const none = async (method, p, body, status, who = 'admin') => {
      const before = lastId();
      const r = await call(srv, who, method, p, body);
      assert.equal(r.status, status, `${method} ${p} as ${who}: ${r.text}`);
      assert.equal(lastId(), before, `${method} ${p} as ${who} wrote an audit entry`);
    };
    await none('POST', '/api/admin/departments', { name: 'Nowhere', parent_id: 99999 }, 422);
    await none('PATCH', `/api/admin/departments/${dept('Ward 3')}`, { parent_id: bakery }, 422); // a cycle
    await none('PATCH', `/api/admin/departments/${bakery}`, { name: 'Bakery & pastry' }, 200); // same name
    await none('PATCH', '/api/admin/departments/99999', { name: 'Ghost' }, 404);
    await none('POST', '/api/admin/users', { login: 'bea', name: 'Bea Again', department_id: bakery, password: 'another-password' }, 409);
    await none('PATCH', `/api/admin/users/${bea}`, { name: 'Bea Baker' }, 200); // same name
    await none('POST', '/api/admin/paths', { title: 'Broken', modules: [99999] }, 422);
    await none('PATCH', `/api/admin/paths/${pathId}`, { title: 'Bakery basics' }, 200); // same title
    await none('POST', '/api/admin/sharings', { path_id: pathId, department_id: bakery }, 409); // shared already
    await none('DELETE', `/api/admin/sharings/${su.r.body.id}`, undefined, 404); // removed already
    await none('POST', '/api/admin/departments', { name: 'Sneaky' }, 403, 'rita');
    await none('POST', '/api/admin/sharings', { path_id: pathId, user_id: bea }, 403, 'lea');

    // the chain stays whole; its count is every entry in the database
    const total = sql('SELECT count(*) AS n FROM audit')[0].n;
    const ok = (await A('GET', '/api/admin/audit/verify')).body;
    assert.equal(ok.ok, true, JSON.stringify(ok));
    assert.equal(ok.entries, total);

    // someone with shell access rewrites who a user was created for
    const victim = uc.e.id;
    execFileSync('sqlite3', ['-cmd', '.timeout 5000', db, 'DROP TRIGGER IF EXISTS audit_no_update; ' +
      `UPDATE audit SET detail=json_set(detail,'$.facilitate_otj',json('false')) WHERE id=${victim}`]);
    const bad = (await A('GET', '/api/admin/audit/verify')).body;
    assert.deepEqual(bad, { ok: false, entries: total, first_bad: victim });
    const cli = spawnSync(OTJD, ['verify-audit', '--data', srv.dataDir], { encoding: 'utf8' });
    assert.equal(cli.status, 1);
    assert.deepEqual(JSON.parse(cli.stdout), bad);

    // the server keeps serving, and keeps auditing
    await one('PATCH', `/api/admin/departments/${bakery}`, { name: 'Bakery' }, 200, 'department.updated', () => `department:${bakery}`);
  } finally {
    await srv.stop();
    srv.cleanup();
    await redis.stop();
  }
});
