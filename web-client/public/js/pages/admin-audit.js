// Admin › Audit: the check of the tamper-evident audit log (every entry
// carries the hash of its content and of the entry before it) and the
// latest entries. GET /api/admin/audit/verify walks the whole chain.
import { h, replace, announce, fmtDate } from '../ui.js';
import { get } from '../api.js';

function describe(e) {
  const d = e.detail || {};
  if (e.action === 'otj.mark') return `${d.result === 'pass' ? '✓ pass' : '✗ fail'} · learner ${d.learner}, task ${d.task + 1}${d.note ? ` · “${d.note}”` : ''}`;
  if (e.action.startsWith('otj.')) return `learner ${d.learner}, module ${d.module}${d.completion ? `, completion ${d.completion}` : ''}`;
  return e.subject || '';
}

export async function audit(body) {
  const verdict = h('div', { id: 'audit-verdict', 'aria-live': 'polite' });
  const btn = h('button', { type: 'button', class: 'btn btn-primary', id: 'audit-check' }, 'Check the audit chain');
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    replace(verdict, h('p', { class: 'muted' }, 'Checking every entry…'));
    try {
      const r = await get('/api/admin/audit/verify');
      replace(verdict, r.ok
        ? h('div', { class: 'audit-verdict ok', dataset: { ok: 'true' } },
          h('p', null, h('strong', null, h('span', { 'aria-hidden': 'true' }, '✓ '), 'Intact.'), ` All ${r.entries} entries match their hashes and the chain is unbroken.`),
          h('p', null, 'Head of the chain (the hash of the newest entry):'),
          h('code', { class: 'hash' }, r.head || '—'))
        : h('div', { class: 'audit-verdict bad', dataset: { ok: 'false' } },
          h('p', null, h('strong', null, h('span', { 'aria-hidden': 'true' }, '✗ '), `Entry no. ${r.first_bad} does not match.`),
            ` It, or the entry before it, was changed or removed outside OTJ live (${r.entries} entries in the log).`)));
      announce(r.ok ? 'The audit chain is intact.' : `The audit chain is broken at entry ${r.first_bad}.`, !r.ok);
    } catch (e) {
      replace(verdict, h('p', { class: 'notice' }, e.message || 'The check did not run.'));
    } finally {
      btn.disabled = false;
    }
  });
  const recent = await get('/api/admin/audit?limit=15');
  body.append(
    h('section', { class: 'card audit-check', 'aria-labelledby': 'audit-h' },
      h('h2', { id: 'audit-h' }, 'Audit log check'),
      h('p', null, 'Every change, room, mark and approval is written to the audit log together with the hash of its content and of the entry before it. The check recomputes every hash: an entry edited or removed outside OTJ live is named.'),
      btn, verdict,
      h('p', { class: 'muted' }, 'The same check on the server: otjd verify-audit --data DIR')),
    h('section', { class: 'card', 'aria-labelledby': 'recent-h' },
      h('h2', { id: 'recent-h' }, 'Latest entries'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'stack-table' },
        h('thead', null, h('tr', null, ['No.', 'When', 'Who', 'What', 'Details'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', null, (recent.items || []).map((e) => h('tr', null,
          h('td', null, String(e.id)), h('td', null, fmtDate(e.at)),
          h('td', null, e.actor ? e.actor.login : 'system'), h('td', null, e.action), h('td', null, describe(e)))))))));
}
