// Learner home: my learning paths, each module with its state. An ordinary
// module can be taken; an OTJ module opens the pop-up naming the
// responsibles who can run it with the learner.
import { h, dialog, initials, fmtDate, fmtDay } from '../ui.js';
import { get, normalisePaths } from '../api.js';

const STATE = {
  completed: { badge: 'badge-done', label: 'Completed', icon: '✓' },
  available: { badge: 'badge-next', label: 'Available', icon: '' },
  otj: { badge: 'badge-otj', label: 'On-the-Job training', icon: '' },
  locked: { badge: 'badge-locked', label: 'Locked', icon: '' },
};

export async function render({ main, me, go }) {
  const paths = normalisePaths(await get('/api/me/paths'));
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
      h('ol', { class: 'modules' }, p.modules.map((m, i) => moduleItem(p, m, i, go)))));
  }
}

function moduleItem(path, m, i, go) {
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

export function otjPopup(m) {
  const people = m.responsibles || [];
  const body = [
    h('p', null, `${m.title} is On-the-Job training: you do it in practice while a responsible watches, and they approve it. You cannot complete it alone.`),
    people.length
      ? [h('p', { class: 'label' }, people.length === 1 ? 'Reach out to your responsible:' : 'Reach out to one of your responsibles:'),
        h('ul', { class: 'people', 'aria-label': 'Responsibles' }, people.map((p) => h('li', { class: 'person' },
          h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(p.name)),
          h('span', null, h('strong', null, p.name), p.department ? h('span', { class: 'muted' }, ` · ${p.department}`) : null,
            p.online ? h('span', { class: 'badge badge-done' }, 'online now') : null))))]
      : h('p', { class: 'notice' }, 'Nobody in your department can run this training yet. Ask your manager or an administrator.'),
    h('p', { class: 'muted' }, 'When they start the training, you can join it from this page or with the code they show you.'),
  ];
  return dialog({ title: 'Reach out to a responsible', body, id: 'otj-popup',
    actions: [{ label: 'Join with a code', kind: 'secondary', onClick: () => { location.hash = '/join'; } }, { label: 'OK', kind: 'primary' }] });
}
