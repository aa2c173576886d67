// One completion's record, printable on one A4 page (css/record.css):
// who was trained in what, every task with its answer or mark and note, who
// approved it in which room and when, and the audit hash of the approval,
// which /api/admin/audit/verify vouches for. The learner opens their own,
// responsibles and admins those they may see (GET /api/completions/{id}).
import { h, fmtDate } from '../ui.js';
import { get, ApiError } from '../api.js';
import { evidenceThumb } from '../evidence.js';

const isHash = (v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);

const when = (t) => (t && t.at ? fmtDate(t.at) : '—');

function answerText(task) {
  const a = task.answer;
  if (!a) return h('span', { class: 'muted' }, 'No answer');
  const opts = task.options || [];
  const pick = (i) => (typeof i === 'number' && opts[i] !== undefined ? opts[i] : String(i));
  const v = a.value;
  return h('span', null, Array.isArray(v) ? v.map(pick).join(', ') : pick(v));
}

// The learner's own photo or file on an observe task (where the module
// allows it), kept with the completion's answers.
function learnerEvidence(task) {
  const v = task.answer && task.answer.value;
  return isHash(v) ? h('div', { class: 'record-evidence' }, 'From the learner: ',
    evidenceThumb(v, `The learner's evidence for task ${task.index + 1}`), h('code', { class: 'hash' }, v)) : null;
}

function markText(task) {
  const m = task.mark;
  if (!m) return h('span', null, h('span', { class: 'muted' }, 'Not marked'), learnerEvidence(task));
  const pass = m.result === 'pass';
  return h('span', null,
    h('span', { class: `badge ${pass ? 'badge-done' : 'badge-fail'}` }, h('span', { 'aria-hidden': 'true' }, pass ? '✓ ' : '✗ '), pass ? 'Pass' : 'Fail'),
    m.note ? h('span', { class: 'record-note' }, ` “${m.note}”`) : null,
    m.evidence ? h('div', { class: 'record-evidence' }, evidenceThumb(m.evidence, `Evidence for task ${task.index + 1}`),
      h('code', { class: 'hash', title: 'SHA-256 of the file' }, m.evidence)) : null,
    learnerEvidence(task));
}

// The attendance line: what is recorded. A completion that carries its
// learner's presence shows it; otherwise the room's opening hours.
function attendance(rec) {
  const at = rec.attendance;
  if (at && typeof at.minutes === 'number') return `${at.minutes} min present`;
  if (rec.room && rec.room.opened) return `Room open ${when(rec.room.opened)} – ${rec.room.closed ? when(rec.room.closed) : 'still open'}`;
  return '—';
}

export async function render({ main, params }) {
  let rec;
  try {
    rec = await get(`/api/completions/${params[0]}`);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
    main.append(h('section', { class: 'card empty' }, h('h1', null, 'No such record'),
      h('p', null, 'There is no completion with that number that you may see.'),
      h('a', { href: '/#/' }, 'Go to the start page')));
    return;
  }
  const row = (label, value) => [h('dt', null, label), h('dd', null, value)];
  main.append(h('article', { class: 'card record', 'aria-labelledby': 'record-title', dataset: { completion: rec.id } },
    h('div', { class: 'record-head' },
      h('div', null,
        h('p', { class: 'record-kicker' }, 'OTJ live · Training record'),
        h('h1', { id: 'record-title' }, rec.module.title),
        h('p', { class: 'muted' }, `Completion no. ${rec.id}`)),
      h('button', { type: 'button', class: 'btn btn-secondary no-print', onclick: () => window.print() }, 'Print')),
    h('dl', { class: 'record-facts' },
      row('Learner', `${rec.learner.name} (${rec.learner.login})`),
      row('Department', rec.department.name),
      row('Learning path', rec.path ? rec.path.title : '—'),
      row('Approved by', rec.approved_by ? rec.approved_by.name : 'Completed alone'),
      row('Approved at', when(rec.decided || rec.completed)),
      rec.confirmed ? row('Confirmed by the learner', when(rec.confirmed)) : null,
      row('Room', rec.room ? `${rec.room.code || ''} · ${rec.room.id}` : '—'),
      row('Attendance', attendance(rec)),
      rec.note ? row('Note', rec.note) : null),
    h('h2', null, 'Tasks'),
    h('table', { class: 'record-tasks' },
      h('thead', null, h('tr', null, ['#', 'Task', 'Result'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, rec.tasks.map((t) => h('tr', { dataset: { kind: t.kind } },
        h('td', null, String(t.index + 1)),
        h('td', null, t.text, h('div', { class: 'muted' }, t.kind === 'observe' ? 'Observed' : 'Question')),
        h('td', null, t.kind === 'observe' ? markText(t) : answerText(t)))))),
    h('section', { class: 'record-audit', 'aria-label': 'Audit' },
      h('h2', null, 'Audit'),
      rec.audit
        ? [h('p', null, `Approval entry no. ${rec.audit.entry} of the audit log. Its hash:`),
          h('code', { class: 'hash', id: 'record-hash' }, rec.audit.hash),
          h('p', { class: 'muted' }, 'Each audit entry carries the hash of its content and of the entry before it; an administrator can check the whole chain (Admin › Audit, or otjd verify-audit).')]
        : h('p', { class: 'muted' }, 'Completed without a responsible: no approval entry.'))));
}
