// Learner home: my learning paths, each module with its state. An ordinary
// module can be taken; an OTJ module opens the pop-up naming the
// responsibles who can run it with the learner.
import { h, replace, dialog, initials, fmtDate, fmtDay, fmtTime, toast, announce } from '../ui.js';
import { get, post, ApiError, normalisePaths, normaliseCompletions } from '../api.js';
import { live } from '../live.js';

const STATE = {
  completed: { badge: 'badge-done', label: 'Completed', icon: '✓' },
  available: { badge: 'badge-next', label: 'Available', icon: '' },
  otj: { badge: 'badge-otj', label: 'On-the-Job training', icon: '' },
  locked: { badge: 'badge-locked', label: 'Locked', icon: '' },
};

export async function render({ main, me, go }) {
  const [pathsData, mine] = await Promise.all([get('/api/me/paths'), get('/api/completions').catch(() => null)]);
  const paths = normalisePaths(pathsData);
  // a completed module links to its record (pages/record.js)
  const records = new Map(normaliseCompletions(mine || []).map((c) => [c.module && c.module.id, c.id]));
  main.append(h('div', { class: 'page-head' },
    h('h1', null, 'My learning'),
    h('p', { class: 'muted' }, `Hi ${me.name.split(' ')[0]} — here is where you are.`)));

  if (!paths.length) {
    main.append(h('section', { class: 'card empty' },
      h('p', null, 'No learning paths are shared with you yet.'),
      h('p', null, 'When your organisation shares one with you or your department, it shows here.')));
    return;
  }

  for (const p of paths) {
    const done = p.modules.filter((m) => m.state === 'completed').length;
    const pct = p.modules.length ? Math.round((done / p.modules.length) * 100) : 0;
    const bar = h('span');
    bar.style.width = `${pct}%`; // CSSOM, allowed by the CSP (no style attribute in markup)
    main.append(h('section', { class: 'card path', 'aria-labelledby': `path-${p.id}` },
      h('div', { class: 'path-head' },
        h('h2', { id: `path-${p.id}` }, p.title),
        h('span', { class: 'muted' }, `${done} of ${p.modules.length} done`)),
      h('div', { class: 'progress', role: 'progressbar', 'aria-label': `${p.title} progress`, 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct }, bar),
      h('ol', { class: 'modules' }, p.modules.map((m, i) => moduleItem(p, m, i, go, records)))));
  }
}

function moduleItem(path, m, i, go, records) {
  const st = STATE[m.state];
  let action = null;
  if (m.state === 'available') {
    action = h('a', { class: 'btn btn-primary', href: `/#/module/${m.id}?path=${path.id}`, 'aria-label': `Start ${m.title}` }, 'Start');
  } else if (m.state === 'otj') {
    action = h('button', { type: 'button', class: 'btn btn-secondary', 'aria-haspopup': 'dialog', onclick: () => otjPopup(m) }, 'Open');
  }
  const meta = [h('span', { class: `badge ${st.badge}` }, st.icon ? h('span', { 'aria-hidden': 'true' }, st.icon) : null, st.label)];
  if (m.otj && m.state !== 'otj') meta.push(h('span', null, 'On-the-Job training'));
  if (m.state === 'completed' && m.completedAt) meta.push(h('span', null, fmtDate(m.completedAt)));
  if (m.state === 'completed' && m.validUntil) meta.push(h('span', { class: 'validity' }, `valid until ${fmtDay(m.validUntil)}`));
  if (m.expiredAt) meta.push(h('span', { class: 'validity expired' }, `expired on ${fmtDay(m.expiredAt)} — to be done again`));
  if (m.state === 'completed' && records.has(m.id)) {
    meta.push(h('a', { class: 'record-link', href: `/#/completions/${records.get(m.id)}`, 'aria-label': `Record of ${m.title}` }, 'Record'));
  }
  if (m.state === 'locked') meta.push(h('span', null, 'Finish the modules before it first'));
  return h('li', { class: `module module-${m.state}`, dataset: { module: m.title, state: m.state } },
    h('span', { class: 'module-step', 'aria-hidden': 'true' }, m.state === 'completed' ? '✓' : String(i + 1)),
    h('div', { class: 'module-body' },
      m.state === 'otj'
        ? h('button', { type: 'button', class: 'module-title linklike', onclick: () => otjPopup(m) }, m.title)
        : h('span', { class: 'module-title' }, m.title),
      h('div', { class: 'module-meta' }, meta)),
    action && h('div', { class: 'module-action' }, action));
}

// The OTJ pop-up: the responsibles within reach, marked "online now" live
// (the `watch` of live.js while it is open), and "Ask for OTJ": one tap
// tells every one of them on their dashboard.
export function otjPopup(m) {
  const people = m.responsibles || [];
  const online = new Map(); // responsible id -> online now
  const list = h('ul', { class: 'people', 'aria-label': 'Responsibles' });
  const askState = h('p', { class: 'ask-state', role: 'status', 'aria-live': 'polite' });
  const askBtn = h('button', { type: 'button', class: 'btn btn-primary btn-block ask-btn', onclick: ask }, 'Ask for OTJ');
  let asked = m.requestedAt ? { at: m.requestedAt, again: m.askAgainAt, names: null } : null;
  let againTimer = null;

  function drawPeople() {
    replace(list, people.map((p) => {
      const on = online.get(p.id);
      return h('li', { class: `person${on ? ' person-online' : ''}`, dataset: { person: p.name } },
        h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(p.name), on ? h('span', { class: 'dot' }) : null),
        h('span', null, h('strong', null, p.name), p.department ? h('span', { class: 'muted' }, ` · ${p.department}`) : null,
          ' ', on ? h('span', { class: 'badge badge-done badge-online' }, 'online now') : null));
    }));
  }

  // "Asked at 10:42 — Rita Hansen is online", and the button until the cool-down ends
  function drawAsk() {
    clearTimeout(againTimer);
    const now = Date.now() / 1000;
    const waiting = asked && asked.again && now < asked.again;
    askBtn.disabled = !!waiting;
    if (!asked) {
      askState.textContent = 'Ask, and they see it on their dashboard at once.';
      return;
    }
    const names = asked.names || people.filter((p) => online.get(p.id)).map((p) => p.name);
    const who = names.length
      ? ` — ${names.length > 2 ? `${names.slice(0, 2).join(', ')} and ${names.length - 2} more are` : `${names.join(' and ')} ${names.length === 1 ? 'is' : 'are'}`} online`
      : ' — they see it on their dashboard';
    askState.textContent = `Asked at ${fmtTime(asked.at)}${who}.${waiting ? ` You can ask again at ${fmtTime(asked.again)}.` : ''}`;
    if (waiting) againTimer = setTimeout(drawAsk, Math.min((asked.again - now) * 1000 + 200, 2 ** 31 - 1));
  }

  async function ask() {
    askBtn.disabled = true;
    try {
      const r = await post('/api/otj/requests', { module: m.id });
      asked = { at: r.request.requested_at, again: r.request.ask_again_at, names: r.online };
      for (const p of r.request.responsibles) online.set(p.id, !!p.online);
      m.requestedAt = asked.at;
      m.askAgainAt = asked.again;
      drawPeople();
      drawAsk();
      announce(askState.textContent);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'cooldown' && e.data) {
        asked = { at: e.data.requested_at, again: e.data.ask_again_at, names: null };
        drawAsk();
      } else {
        askBtn.disabled = false;
      }
      toast(e.message || 'The ask could not be sent.', 'error');
    }
  }

  const onOnline = (e) => {
    for (const p of e.detail.responsibles || []) online.set(p.id, !!p.online);
    drawPeople();
    if (asked && !asked.names) drawAsk();
  };

  const body = [
    h('p', null, `${m.title} is On-the-Job training: you do it in practice while a responsible watches, and they approve it. You cannot complete it alone.`),
    people.length
      ? [h('p', { class: 'label' }, people.length === 1 ? 'Reach out to your responsible:' : 'Reach out to one of your responsibles:'),
        list, h('div', { class: 'ask' }, askBtn, askState)]
      : h('p', { class: 'notice' }, 'Nobody in your department can run this training yet. Ask your manager or an administrator.'),
    h('p', { class: 'muted' }, 'When they start the training, you can join it from this page or with the code they show you.'),
  ];
  drawPeople();
  drawAsk();
  if (people.length) {
    live.addEventListener('online', onOnline);
    live.watchOnline().catch(() => {}); // without it the list still names them
  }
  return dialog({ title: 'Reach out to a responsible', body, id: 'otj-popup',
    actions: [{ label: 'Join with a code', kind: 'secondary', onClick: () => { location.hash = '/join'; } }, { label: 'Close', kind: 'ghost' }] })
    .finally(() => {
      clearTimeout(againTimer);
      live.removeEventListener('online', onOnline);
      live.unwatchOnline();
    });
}
