// Completions: who completed what, when, approved by whom — the audit
// record, with a CSV download of exactly the same list.
import { h, replace, fmtDate, fmtTime } from '../ui.js';
import { get, normaliseCompletions } from '../api.js';

export async function render({ main, me }) {
  const rows = normaliseCompletions(await get('/api/completions'));
  const filter = h('input', { type: 'search', id: 'comp-filter', placeholder: 'Name, module, path…' });
  const tbody = h('tbody');
  const countEl = h('p', { class: 'muted', 'aria-live': 'polite' });
  main.append(
    h('div', { class: 'page-head' }, h('h1', null, 'Completions'),
      h('a', { class: 'btn btn-secondary', href: '/api/completions?format=csv', download: 'completions.csv' }, h('span', { 'aria-hidden': 'true' }, '⤓'), 'Download CSV')),
    h('section', { class: 'card' },
      h('p', { class: 'muted' }, me.admin ? 'Every completion in the organisation.' : me.responsible ? 'Completions of the learners within your reach.' : 'Your completions.'),
      h('div', { class: 'field' }, h('label', { for: 'comp-filter' }, 'Filter'), filter),
      countEl,
      h('div', { class: 'table-wrap' }, h('table', { class: 'stack-table' },
        h('caption', { class: 'sr-only' }, 'Completions'),
        h('thead', null, h('tr', null, ['When', 'Learner', 'Module', 'Path', 'Approved by', 'Valid', 'Present', 'Record'].map((t) => h('th', { scope: 'col' }, t)))),
        tbody))));

  function draw() {
    const q = filter.value.trim().toLowerCase();
    const shown = rows.filter((r) => !q || [r.learner && r.learner.name, r.learner && r.learner.department, r.module.title, r.path.title, r.approvedBy && r.approvedBy.name]
      .some((v) => v && String(v).toLowerCase().includes(q)));
    countEl.textContent = `${shown.length} of ${rows.length} completions`;
    replace(tbody, shown.length ? shown.map((r) => h('tr', null,
      h('td', null, fmtDate(r.at), confirmation(r)),
      h('td', null, r.learner ? r.learner.name : '', r.learner && r.learner.department ? h('div', { class: 'muted' }, r.learner.department) : null),
      h('td', null, r.module.title || ''),
      h('td', null, r.path.title || '—'),
      h('td', null, r.approvedBy ? h('span', null, h('span', { 'aria-hidden': 'true' }, '✓ '), r.approvedBy.name) : h('span', { class: 'muted' }, 'Completed alone')),
      h('td', { dataset: { validity: r.expired ? 'expired' : r.expiresAt ? 'valid' : 'always' } }, validity(r)),
      h('td', { dataset: { attendance: r.attendance ? String(r.attendance.minutes) : '' } }, presence(r.attendance)),
      h('td', null, h('a', { class: 'record-link', href: `/#/completions/${r.id}`, 'aria-label': `Record of ${r.learner ? r.learner.name : ''}: ${r.module.title || ''}` }, 'Open record'))))
      : h('tr', null, h('td', { colspan: 8, class: 'empty' }, 'No completions match.')));
  }

  // Both sides of a sign-off the learner confirmed: the responsible's
  // approval and the learner's confirmation, each with its time.
  function confirmation(r) {
    if (!r.confirmedAt) return null;
    const sameDay = new Date(r.decidedAt * 1000).toDateString() === new Date(r.confirmedAt * 1000).toDateString();
    const at = (s) => (sameDay ? fmtTime(s) : fmtDate(s));
    return h('div', { class: 'muted', dataset: { confirmedAt: String(r.confirmedAt) } },
      `Approved ${at(r.decidedAt)}, confirmed by the learner ${at(r.confirmedAt)}`);
  }

  // How long the approval counts: valid until, expired on (or replaced by a
  // later re-drill's approval, which the list shows too), or for good.
  function validity(r) {
    const day = (s) => new Date(s * 1000).toLocaleDateString(undefined, { dateStyle: 'medium' });
    const renewed = rows.some((o) => o.id !== r.id && o.module.id === r.module.id && o.learner && r.learner
      && o.learner.id === r.learner.id && o.at >= r.at);
    if (r.expired && renewed) return h('span', { class: 'badge badge-next' }, 'Renewed by a later approval');
    if (r.expired) return h('span', { class: 'badge badge-fail' }, r.expiresAt ? `Expired on ${day(r.expiresAt)}` : 'Expired');
    if (r.expiresAt) return h('span', null, `Valid until ${day(r.expiresAt)}`);
    return h('span', { class: 'muted' }, 'No expiry');
  }

  // Attendance: minutes in the room, and when (joined–left, local time).
  function presence(a) {
    if (!a) return h('span', { class: 'muted' }, '—');
    const t = (s) => new Date(s * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const spans = (a.intervals || []).map((i) => `${t(i.from)}–${t(i.to)}`).join(', ');
    return h('span', null, `${a.minutes} min`, spans ? h('div', { class: 'muted' }, spans) : null);
  }
  filter.addEventListener('input', draw);
  draw();
}
