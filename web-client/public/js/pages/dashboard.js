// The responsible's dashboard: how many learners wait for On-the-Job
// training (live, through the `dashboard` push), who they are, a play button
// per learner and a multi-select to run one module with a group.
import { h, replace, keepFocus, toast, announce, fmtDate, fmtTime } from '../ui.js';
import { get, normalisePending } from '../api.js';
import { live } from '../live.js';
import { hostRooms, forgetRoom } from '../hostrooms.js';
import { redrillCard } from './redrill.js';

export async function render({ main, me, go }) {
  if (!me.responsible) {
    main.append(h('section', { class: 'card' }, h('h1', null, 'Dashboard'),
      h('p', null, 'The OTJ dashboard is for responsibles: people with the Management permission and “Facilitate On-the-Job training”.')));
    return undefined;
  }
  let data = normalisePending(await get('/api/otj/pending'));
  const selected = new Set(); // `${learner}:${module}`
  const countCard = h('section', { class: 'card count-card', 'aria-labelledby': 'count-label' });
  const roomsCard = h('section', { class: 'card', 'aria-labelledby': 'rooms-h' });
  const listCard = h('section', { class: 'card', 'aria-labelledby': 'list-h' });
  const redrill = redrillCard((module, learners) => openRoom(module, learners));
  main.append(h('div', { class: 'page-head' }, h('h1', null, 'OTJ dashboard'),
    h('span', { class: 'muted' }, `${me.name} · ${me.department ? me.department.name || me.department : ''}`)), countCard, roomsCard, listCard, redrill.el);

  function drawCount() {
    replace(countCard,
      h('span', { class: 'count-big', id: 'otj-count', 'aria-hidden': 'true' }, String(data.count)),
      h('div', null,
        h('p', { class: 'label', id: 'count-label' }, h('span', { class: 'sr-only' }, `${data.count} `),
          data.count === 1 ? 'On-the-Job training waits for you' : 'On-the-Job trainings wait for you'),
        h('p', { class: 'muted' }, 'Learners in your department and below whose next module is On-the-Job training.'),
        data.requests ? h('p', { class: 'asks', id: 'otj-asks' }, h('span', { class: 'badge badge-ask' }, `${data.requests} asked`),
          ' for On-the-Job training — shown first below, the oldest ask first.') : null));
  }

  function drawRooms() {
    const list = hostRooms();
    roomsCard.hidden = !list.length;
    replace(roomsCard, h('h2', { id: 'rooms-h' }, 'Your open rooms'),
      h('ul', { class: 'pending-list' }, list.map((r) => h('li', { class: 'pending' },
        h('div', { class: 'pending-body' }, h('span', { class: 'pending-name' }, r.title), h('div', { class: 'pending-meta' }, `Code ${r.code} · opened ${fmtDate(r.at)}`)),
        h('a', { class: 'btn btn-secondary btn-sm', href: `/#/room/${encodeURIComponent(r.room)}` }, 'Back to the room'),
        h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'aria-label': `Forget ${r.title} room ${r.code}`, onclick: () => { forgetRoom(r.room); drawRooms(); } }, 'Forget')))));
  }

  function drawList() {
    keepFocus(listCard, () => {
      const byModule = new Map();
      for (const it of data.items) {
        if (!byModule.has(it.module.id)) byModule.set(it.module.id, { module: it.module, items: [] });
        byModule.get(it.module.id).items.push(it);
      }
      if (!data.items.length) {
        replace(listCard, h('h2', { id: 'list-h' }, 'Waiting learners'),
          h('p', { class: 'empty' }, 'Nobody is waiting for On-the-Job training right now.'));
        return;
      }
      replace(listCard, h('h2', { id: 'list-h' }, 'Waiting learners'),
        [...byModule.values()].map((g) => {
          const sel = g.items.filter((it) => selected.has(`${it.learner.id}:${g.module.id}`));
          const gid = `mod-${g.module.id}`;
          return h('section', { class: 'module-group', 'aria-labelledby': gid, dataset: { module: g.module.title } },
            h('div', { class: 'spread' },
              h('h3', { id: gid }, g.module.title, ' ', h('span', { class: 'badge badge-otj' }, `${g.items.length} waiting`)),
              h('label', { class: 'check' }, h('input', { type: 'checkbox', checked: sel.length === g.items.length, dataset: { focus: `all-${g.module.id}` },
                onchange: (e) => {
                  for (const it of g.items) {
                    const k = `${it.learner.id}:${g.module.id}`;
                    if (e.target.checked) selected.add(k); else selected.delete(k);
                  }
                  drawList();
                } }), 'Select all')),
            h('ul', { class: 'pending-list' }, g.items.map((it) => {
              const k = `${it.learner.id}:${g.module.id}`;
              const cb = h('input', { type: 'checkbox', checked: selected.has(k), 'aria-label': `Select ${it.learner.name} for a group room`, dataset: { focus: `sel-${k}` },
                onchange: (e) => { if (e.target.checked) selected.add(k); else selected.delete(k); drawList(); } });
              return h('li', { class: `pending${selected.has(k) ? ' selected' : ''}`, dataset: { learner: it.learner.login || it.learner.name } },
                h('label', { class: 'check' }, cb),
                h('div', { class: 'pending-body' },
                  h('div', { class: 'pending-name' }, it.learner.name,
                    it.requestedAt ? [' ', h('span', { class: 'badge badge-ask', title: `Asked for On-the-Job training at ${fmtDate(it.requestedAt)}` }, `asked ${fmtTime(it.requestedAt)}`)] : null),
                  h('div', { class: 'pending-meta' }, [it.learner.department, it.path.title && `path ${it.path.title}`, it.since && `waiting since ${fmtDate(it.since)}`].filter(Boolean).join(' · '))),
                h('button', { type: 'button', class: 'btn btn-primary btn-sm play', 'aria-label': `Start ${g.module.title} with ${it.learner.name}`, dataset: { focus: `play-${k}` },
                  onclick: () => openRoom(g.module.id, [it.learner.id]) }, h('span', { 'aria-hidden': 'true' }, '▶'), 'Start'));
            })),
            sel.length ? h('div', { class: 'group-bar' },
              h('span', null, `${sel.length} selected`),
              h('button', { type: 'button', class: 'btn btn-primary', dataset: { focus: `group-${g.module.id}` }, onclick: () => openRoom(g.module.id, sel.map((it) => it.learner.id)) },
                h('span', { 'aria-hidden': 'true' }, '▶'), `Start group room (${sel.length})`)) : null);
        }));
    });
  }

  let opening = false;
  async function openRoom(moduleId, learners) {
    if (opening) return;
    opening = true;
    try {
      const room = await live.openRoom(moduleId, learners);
      go(`/room/${encodeURIComponent(room.id)}`);
    } catch (e) {
      toast(e.message || 'The room could not be opened.', 'error');
    } finally {
      opening = false;
    }
  }

  let refreshing = false;
  async function refresh() {
    if (refreshing) return;
    refreshing = true;
    try {
      const before = data.count;
      const asksBefore = data.requests;
      data = normalisePending(await get('/api/otj/pending'));
      const keys = new Set(data.items.map((it) => `${it.learner.id}:${it.module.id}`));
      for (const k of selected) if (!keys.has(k)) selected.delete(k);
      drawCount();
      drawList();
      redrill.refresh();
      if (before !== data.count) announce(`${data.count} waiting for On-the-Job training.`);
      else if (asksBefore !== data.requests) announce(`${data.requests} asked for On-the-Job training.`);
    } catch { /* keep what is shown */ } finally {
      refreshing = false;
    }
  }

  const onDash = (e) => {
    const d = e.detail;
    if (d.request) {
      toast(`${d.request.learner.name} asks for ${d.request.module.title} (${fmtTime(d.request.requested_at)}).`);
      refresh();
    } else if ((typeof d.count === 'number' && d.count !== data.count) ||
      (typeof d.requests === 'number' && d.requests !== data.requests)) refresh();
  };
  const onStatus = (e) => { if (e.detail === 'online') refresh(); };
  live.addEventListener('dashboard', onDash);
  live.addEventListener('status', onStatus);
  const poll = setInterval(refresh, 30000); // a fallback when no push arrives
  drawCount();
  drawRooms();
  drawList();
  await redrill.refresh();
  return () => {
    live.removeEventListener('dashboard', onDash);
    live.removeEventListener('status', onStatus);
    clearInterval(poll);
  };
}
