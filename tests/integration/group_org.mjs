// A bigger kitchen for the whole-group tests: `n` more learners in Kitchen
// who finished Food safety basics, so Hand hygiene waits for rita for each
// of them, as for lea, leo and lars. They are made through the admin API
// (with a ready argon2id hash: no password to hash) and get their login
// tokens from POST /api/admin/tokens, the way the load generator provisions
// its users; their Food safety basics completion is written with sqlite3.
import { execFileSync } from 'node:child_process';
import { login } from './harness.mjs';

// The format otjd accepts for a user made with a hash (nobody logs in with it).
const HASH = '$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGg';

export function sqlOf(srv) {
  return (query) => {
    const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000',
      `${srv.dataDir}/otj.db`, query]).toString();
    return out.trim() ? JSON.parse(out) : [];
  };
}

export async function adminCall(srv, token, method, path, body) {
  const r = await fetch(`${srv.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* CSV */ }
  return { status: r.status, body: json, text };
}

// Returns [{login, name, id, token}] of `n` new Kitchen learners waiting for
// Hand hygiene.
export async function kitchenLearners(srv, n, prefix = 'cook') {
  const sql = sqlOf(srv);
  const admin = (await login(srv, 'admin')).body.token;
  const kitchen = sql(`SELECT id FROM departments WHERE name='Kitchen'`)[0].id;
  const food = sql(`SELECT id FROM modules WHERE title='Food safety basics'`)[0].id;
  const made = [];
  for (let i = 1; i <= n; i++) {
    const loginName = `${prefix}${String(i).padStart(2, '0')}`;
    const name = `Cook ${String(i).padStart(2, '0')}`;
    const r = await adminCall(srv, admin, 'POST', '/api/admin/users',
      { login: loginName, name, department_id: kitchen, password_hash: HASH });
    if (r.status !== 201 && r.status !== 200) throw new Error(`creating ${loginName}: ${r.status} ${r.text}`);
    made.push({ login: loginName, name });
  }
  const tok = await adminCall(srv, admin, 'POST', '/api/admin/tokens', { logins: made.map((m) => m.login) });
  if (tok.status !== 200) throw new Error(`tokens: ${tok.status} ${tok.text}`);
  const now = Math.floor(Date.now() / 1000);
  for (const m of made) {
    m.token = tok.body.tokens[m.login];
    m.id = tok.body.ids[m.login];
  }
  sql(`INSERT INTO completions(user_id, module_id, completed_at) VALUES ${made.map((m) => `(${m.id}, ${food}, ${now})`).join(', ')}`);
  return made;
}
