// The JSON HTTP API. Every call rides on the HttpOnly session cookie that
// POST /api/login sets; nothing secret is kept in script-readable storage.
// The normalise* functions turn the server's answers into the shapes the
// pages use, so a renamed field is fixed here and nowhere else.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'offline', 'The server cannot be reached. Check your connection and try again.');
  }
  const text = await r.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!r.ok) {
    const msg = (data && data.message) || `The server answered ${r.status}.`;
    const err = new ApiError(r.status, (data && data.error) || 'error', msg);
    err.data = data;
    throw err;
  }
  return data;
}

export const get = (p) => api('GET', p);
export const post = (p, b) => api('POST', p, b === undefined ? {} : b);
export const put = (p, b) => api('PUT', p, b);
export const patch = (p, b) => api('PATCH', p, b);
export const del = (p) => api('DELETE', p);

// ---- shapes ----------------------------------------------------------------

function list(data, ...keys) {
  if (Array.isArray(data)) return data;
  for (const k of keys) if (data && Array.isArray(data[k])) return data[k];
  return [];
}

function person(p) {
  if (!p) return null;
  if (typeof p === 'number') return { id: p, name: `#${p}` };
  const dep = p.department;
  return {
    id: p.id, name: p.name || p.login || `#${p.id}`, login: p.login,
    department: typeof dep === 'string' ? dep : dep && dep.name,
    online: p.online === true,
  };
}

// Module states the pages know: completed, available, otj (waiting for a
// responsible), locked (an earlier module is not done yet).
function moduleState(m) {
  const s = String(m.state || m.status || '').toLowerCase();
  if (['completed', 'done', 'approved', 'complete'].includes(s)) return 'completed';
  if (['locked', 'blocked_by_order', 'later', 'pending_order'].includes(s)) return 'locked';
  if (['otj', 'otj_waiting', 'waiting', 'otj_pending', 'waiting_otj', 'pending_otj', 'blocked', 'otj_blocked'].includes(s)) return 'otj';
  if (['available', 'next', 'open', 'current', 'todo', 'ready'].includes(s)) return m.otj ? 'otj' : 'available';
  if (m.completed) return 'completed';
  if (m.locked) return 'locked';
  return m.otj ? 'otj' : 'available';
}

export function normalisePaths(data) {
  return list(data, 'paths').map((p) => ({
    id: p.id,
    title: p.title || p.name,
    modules: list(p.modules || p.items, 'modules').map((m) => {
      const mod = m.module && typeof m.module === 'object' ? { ...m.module, ...m } : m;
      return {
        id: mod.module_id ?? mod.id,
        title: mod.title || mod.name,
        type: mod.type || 'quiz',
        otj: !!mod.otj,
        state: moduleState(mod),
        completedAt: mod.completed_at ?? mod.completedAt,
        tasks: Array.isArray(mod.tasks) ? mod.tasks : null,
        responsibles: list(mod.responsibles || p.responsibles, 'responsibles').map(person),
        room: mod.room || null,
      };
    }),
  }));
}

export function normalisePending(data) {
  const items = list(data, 'items', 'pending').map((it) => ({
    learner: person(it.learner || it.user || { id: it.learner_id ?? it.user_id, name: it.learner_name ?? it.user_name, department: it.department }),
    module: it.module && typeof it.module === 'object' ? it.module : { id: it.module_id ?? it.module, title: it.module_title },
    path: it.path && typeof it.path === 'object' ? it.path : { id: it.path_id ?? it.path, title: it.path_title },
    since: it.since ?? it.waiting_since ?? it.reached_at,
  }));
  const count = data && typeof data.count === 'number' ? data.count : items.length;
  return { count, items };
}

export function normaliseCompletions(data) {
  return list(data, 'completions', 'items').map((c) => ({
    id: c.id,
    learner: person(c.learner || c.user || { id: c.user_id, name: c.user_name || c.learner_name }),
    module: c.module && typeof c.module === 'object' ? c.module : { id: c.module_id, title: c.module_title },
    path: c.path && typeof c.path === 'object' ? c.path : { id: c.path_id, title: c.path_title },
    approvedBy: person(c.approved_by_user || (typeof c.approved_by === 'object' ? c.approved_by : null)) ||
      (c.approved_by_name ? { name: c.approved_by_name } : null),
    at: c.completed_at ?? c.at,
    room: c.room_id ?? c.room,
  }));
}

export { list, person };
