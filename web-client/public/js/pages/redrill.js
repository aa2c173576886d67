// The dashboard's "Due for re-drill" card: learners within the
// responsible's reach whose approval of an OTJ module expires within the
// re-drill window (or has expired), grouped by module, with one button that
// opens one room for the whole group (the ordinary `open`, so R7 applies).
import { h, replace, fmtDay } from '../ui.js';
import { get } from '../api.js';

const DAY = 86400;

function when(l, now) {
  const days = Math.round((l.expires_at - now) / DAY);
  if (l.expired) return `expired on ${fmtDay(l.expires_at)}`;
  if (days <= 0) return `expires today (${fmtDay(l.expires_at)})`;
  return `expires on ${fmtDay(l.expires_at)} · in ${days} day${days === 1 ? '' : 's'}`;
}

// Returns {el, refresh}. openRoom(moduleId, learnerIds) opens the room.
export function redrillCard(openRoom) {
  const el = h('section', { class: 'card redrill', id: 'redrill', 'aria-labelledby': 'redrill-h', hidden: true });
  async function refresh() {
    let data;
    try {
      data = await get('/api/otj/due');
    } catch {
      return; // keep what is shown
    }
    el.hidden = !data.count;
    if (!data.count) return;
    replace(el, h('h2', { id: 'redrill-h' }, 'Due for re-drill'),
      h('p', { class: 'muted' }, `Approvals that expire within ${data.window_days} days, or have expired.`),
      data.groups.map((g) => {
        const ready = g.learners.filter((l) => l.may_join);
        const gid = `redrill-${g.module.id}`;
        return h('section', { class: 'module-group', 'aria-labelledby': gid, dataset: { module: g.module.title } },
          h('h3', { id: gid }, g.module.title, ' ',
            h('span', { class: 'badge badge-otj' }, `${g.learners.length} due`), ' ',
            h('span', { class: 'muted small' }, `· valid ${g.module.validity_months} months`)),
          h('ul', { class: 'pending-list' }, g.learners.map((l) => h('li', { class: 'pending', dataset: { learner: l.login } },
            h('div', { class: 'pending-body' },
              h('div', { class: 'pending-name' }, l.name),
              h('div', { class: `pending-meta${l.expired ? ' expired' : ''}` }, [l.department && l.department.name, when(l, data.now)].filter(Boolean).join(' · ')))))),
          ready.length ? h('div', { class: 'group-bar' },
            h('span', null, `${ready.length} ready for a re-drill`),
            h('button', { type: 'button', class: 'btn btn-primary redrill-start', dataset: { focus: `redrill-${g.module.id}` },
              onclick: () => openRoom(g.module.id, ready.map((l) => l.id)) },
            h('span', { 'aria-hidden': 'true' }, '▶'), `Start a room for these ${ready.length}`)) : null);
      }));
  }
  return { el, refresh };
}
