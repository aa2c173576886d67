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
  // Every write says JSON, a body or not: the server refuses a change made
  // with the session cookie that does not (a guard against forged requests).
  if (method !== 'GET') init.headers['content-type'] = 'application/json';
  if (body !== undefined) init.body = JSON.stringify(body);
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
// The server's answers (DESIGN §5, server/api_org.c) turned into what the
// pages draw. Each function reads exactly the fields the server sends.

// The array of a list answer: {items: [...]} (admin lists, pending,
// completions) or {paths: [...]}.
function list(data, key = 'items') {
  return data && Array.isArray(data[key]) ? data[key] : [];
}

// A person as the API sends one: {id, login, name, department} where the
// department is {id, name} (paths, pending) or its name (completions).
function person(p) {
  if (!p) return null;
  const dep = p.department;
  return {
    id: p.id, name: p.name, login: p.login,
    department: typeof dep === 'string' ? dep : dep && dep.name,
  };
}

// The server's module states; the pages call the waiting one 'otj'.
const STATES = { completed: 'completed', available: 'available', locked: 'locked', otj_waiting: 'otj' };

export function normalisePaths(data) {
  return list(data, 'paths').map((p) => ({
    id: p.id,
    title: p.title,
    modules: p.modules.map((m) => ({
      id: m.id,
      title: m.title,
      type: m.type,
      otj: m.otj,
      state: STATES[m.state] || 'locked',
      completedAt: m.completed_at,
      validUntil: m.valid_until,
      expiredAt: m.expired_at,
      responsibles: (m.responsibles || []).map(person),
      requestedAt: m.requested_at, // my open ask for OTJ, if any
      askAgainAt: m.ask_again_at,
    })),
  }));
}

export function normalisePending(data) {
  return {
    count: data.count,
    requests: data.requests || 0,
    items: list(data).map((it) => ({
      learner: person(it.learner),
      module: it.module,
      path: it.path,
      since: it.waiting_since,
      requestedAt: it.requested_at,
    })),
  };
}

export function normaliseCompletions(data) {
  return list(data).map((c) => ({
    id: c.id,
    learner: person(c.learner),
    module: c.module,
    path: c.path || {},
    approvedBy: c.approved_by,
    at: c.completed_at,
    room: c.room,
    attendance: c.attendance || null, // {minutes, seconds, intervals} when kept
    expiresAt: c.expires_at ?? null, // unix seconds; null: never expires
    expired: !!c.expired,
    decidedAt: c.decided_at ?? null, // the responsible's approval; null: completed alone
    confirmedAt: c.confirmed_at ?? null, // the learner's confirmation; null: not required
  }));
}

export { list, person };
