// The app shell: who is logged in, the hash router, the navigation, the
// connection indicator and the "you were added to a live room" banner.
// Routes live in the hash (/#/join/123456) so that any static file server
// can serve the app; /join/CODE is turned into /#/join/CODE on load.
import { h, replace, announce, spinner } from './ui.js';
import { get, post, ApiError } from './api.js';
import { live } from './live.js';

const routes = [
  [/^\/login$/, () => import('./pages/login.js'), { open: true }],
  [/^\/$/, null],
  [/^\/learn$/, () => import('./pages/home.js')],
  [/^\/module\/(\d+)$/, () => import('./pages/module.js')],
  [/^\/join(?:\/([A-Za-z0-9-]+))?$/, () => import('./pages/join.js')],
  [/^\/room\/([^/]+)$/, () => import('./pages/room.js')],
  [/^\/dashboard$/, () => import('./pages/dashboard.js')],
  [/^\/completions$/, () => import('./pages/completions.js')],
  [/^\/completions\/(\d+)$/, () => import('./pages/record.js')],
  [/^\/admin(?:\/([a-z]+))?(?:\/(\d+|new))?$/, () => import('./pages/admin.js')],
];

export const app = { me: null };
let cleanup = null;
let renderSeq = 0;

// /join/CODE (a QR code or a shared link) becomes the hash route.
{
  const m = location.pathname.match(/^\/join(?:\/([A-Za-z0-9-]+))?\/?$/);
  if (m) history.replaceState(null, '', m[1] ? `/#/join/${m[1]}` : '/#/join');
}

function currentRoute() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = raw.split('?');
  return { path: path || '/', query: new URLSearchParams(qs || ''), raw };
}

export function go(route) {
  if (location.hash === `#${route}`) render();
  else location.hash = route;
}

function homeFor(me) {
  if (me.responsible) return '/dashboard';
  if (me.admin) return '/admin';
  return '/learn';
}

async function loadMe() {
  try {
    app.me = await get('/api/me');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) app.me = null;
    else throw e;
  }
  return app.me;
}

export async function logout() {
  try { await post('/api/logout'); } catch { /* the cookie goes either way */ }
  live.stop();
  app.me = null;
  renderNav();
  go('/login');
}

export async function loggedIn(me, next) {
  app.me = me;
  startLive();
  renderNav();
  go(next && next !== '/login' ? next : homeFor(me));
}

function renderNav() {
  const nav = document.getElementById('nav');
  const me = app.me;
  const account = document.getElementById('account');
  if (!me) {
    replace(nav);
    replace(account);
    document.getElementById('conn').hidden = true;
    return;
  }
  const { path } = currentRoute();
  const link = (href, label, match) => h('a', {
    href: `/#${href}`, class: 'nav-link', 'aria-current': match.test(path) ? 'page' : null,
  }, label);
  replace(nav,
    me.responsible && link('/dashboard', 'Dashboard', /^\/dashboard|^\/room/),
    link('/learn', 'My learning', /^\/learn|^\/module/),
    !me.responsible && link('/join', 'Join', /^\/join|^\/room/),
    (me.admin || me.responsible) && link('/completions', 'Completions', /^\/completions/),
    me.admin && link('/admin', 'Admin', /^\/admin/));
  replace(account, h('span', { class: 'nav-who' }, me.name),
    h('button', { type: 'button', class: 'nav-link nav-logout', onclick: logout, 'aria-label': `Log out ${me.name}` }, 'Log out'));
}

// ---- connection indicator -------------------------------------------------

const connLabels = {
  online: 'Connected', connecting: 'Connecting…', offline: 'Offline — reconnecting…',
};
function renderConn(status) {
  const el = document.getElementById('conn');
  el.hidden = !app.me;
  el.className = `conn conn-${status}`;
  el.dataset.status = status;
  replace(el, h('span', { class: 'conn-dot', 'aria-hidden': 'true' }), h('span', { class: 'conn-text' }, connLabels[status]));
}

let lastAnnounced = 'online';
live.addEventListener('status', (e) => {
  renderConn(e.detail);
  if (e.detail === 'offline' && lastAnnounced !== 'offline') {
    announce('Connection lost. Reconnecting; your answers are kept.');
    lastAnnounced = 'offline';
  } else if (e.detail === 'online' && lastAnnounced === 'offline') {
    announce('Connected again.');
    lastAnnounced = 'online';
  }
});
live.addEventListener('unauthorized', () => {
  app.me = null;
  renderNav();
  go(`/login?next=${encodeURIComponent(currentRoute().raw)}`);
});
// An administrator changed this person's rights or department: the socket
// reconnects by itself; the pages are drawn again for the new rights.
live.addEventListener('rights', async () => {
  try { await loadMe(); } catch { return; }
  if (!app.me) {
    live.stop();
    renderNav();
    go(`/login?next=${encodeURIComponent(currentRoute().raw)}`);
    return;
  }
  announce('Your rights have changed.');
  render();
});

function startLive() {
  renderConn(live.status);
  live.start();
}

// ---- "you were added to a room" banner -----------------------------------

const invites = new Map(); // room id -> {room, title, host}
function showInvite(roomId, info = {}) {
  if (live.rooms.has(roomId)) return;
  invites.set(roomId, { ...invites.get(roomId), ...info, room: roomId });
  renderBanner();
  announce('A responsible has added you to a live training room.');
}

function renderBanner() {
  const host = document.getElementById('banner');
  const items = [...invites.values()];
  replace(host, items.map((it) => h('section', { class: 'banner', 'aria-label': 'Live room invitation' },
    h('div', { class: 'banner-text' },
      h('strong', null, 'You are invited to a live training'),
      h('span', null, it.title ? `${it.title}${it.host ? ` with ${it.host}` : ''}` : 'Your responsible is waiting for you.')),
    h('div', { class: 'banner-actions' },
      h('a', { class: 'btn btn-primary', href: it.code ? `/#/join/${encodeURIComponent(it.code)}` : `/#/room/${encodeURIComponent(it.room)}`, onclick: () => { invites.delete(it.room); renderBanner(); } }, 'Join now'),
      h('button', { type: 'button', class: 'btn btn-ghost', onclick: () => { invites.delete(it.room); renderBanner(); } }, 'Later')))));
}

live.addEventListener('ev', (e) => {
  const msg = e.detail;
  const ev = msg.e || {};
  if (!app.me) return;
  if (ev.type === 'added' && ev.learner === app.me.id) showInvite(msg.room, { title: ev.title || ev.module_title, host: ev.host_name });
  if ((ev.type === 'removed' && ev.learner === app.me.id) || ev.type === 'closed') {
    if (invites.delete(msg.room)) renderBanner();
  }
});
live.addEventListener('invite', (e) => {
  const s = e.detail;
  if (app.me && !app.me.responsible && s.state !== 'closed')
    showInvite(s.room, { title: s.module && s.module.title, host: s.host && s.host.name, code: s.code });
});

// ---- router ---------------------------------------------------------------

async function render() {
  const seq = ++renderSeq;
  const { path, query, raw } = currentRoute();
  const main = document.getElementById('main');
  if (cleanup) {
    try { cleanup(); } catch { /* a page's cleanup must not stop the next */ }
    cleanup = null;
  }
  let found = null;
  let params = [];
  for (const [re, loader, opts] of routes) {
    const m = path.match(re);
    if (m) { found = { loader, opts: opts || {} }; params = m.slice(1); break; }
  }
  if (!found) {
    replace(main, h('section', { class: 'card' }, h('h1', null, 'Page not found'),
      h('p', null, 'There is nothing at this address. '), h('a', { href: '/#/' }, 'Go to the start page')));
    return;
  }
  if (!found.opts.open && !app.me) {
    go(`/login?next=${encodeURIComponent(raw)}`);
    return;
  }
  if (!found.loader) { go(homeFor(app.me)); return; }
  renderNav();
  replace(main, spinner());
  try {
    const page = await found.loader();
    if (seq !== renderSeq) return;
    replace(main);
    cleanup = (await page.render({ main, params, query, me: app.me, go })) || null;
    if (seq !== renderSeq && cleanup) { cleanup(); cleanup = null; }
    const h1 = main.querySelector('h1');
    document.title = h1 ? `${h1.textContent} · OTJ live` : 'OTJ live';
    if (document.activeElement === document.body || !main.contains(document.activeElement)) main.focus({ preventScroll: true });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      app.me = null;
      go(`/login?next=${encodeURIComponent(raw)}`);
      return;
    }
    replace(main, h('section', { class: 'card error-card', role: 'alert' },
      h('h1', null, 'Something went wrong'), h('p', null, e.message || String(e)),
      h('button', { type: 'button', class: 'btn btn-primary', onclick: () => render() }, 'Try again')));
  }
}

async function boot() {
  try {
    await loadMe();
  } catch (e) {
    replace(document.getElementById('main'), h('section', { class: 'card', role: 'alert' },
      h('h1', null, 'The server cannot be reached'), h('p', null, e.message)));
    return;
  }
  if (app.me) startLive();
  window.addEventListener('hashchange', render);
  await render();
}

boot();

live.addEventListener('room', (e) => {
  if (invites.delete(e.detail.room.id)) renderBanner();
});
