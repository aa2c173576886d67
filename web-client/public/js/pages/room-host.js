// The responsible's room: the join code and QR code (readable from across
// the room), the roster with presence, task navigation, the learners × tasks
// grid filling live with pass/fail and notes, approval per learner, close.
import { h, replace, keepFocus, toast, announce, dialog, field } from '../ui.js';
import { get, normalisePending } from '../api.js';
import { live } from '../live.js';
import { rememberRoom, forgetRoom } from '../hostrooms.js';
import { uploadEvidence, evidenceThumb, evidencePickers } from '../evidence.js';
import { hostConfirmCard } from './room-confirm.js';

export function render({ main, room, go }) {
  rememberRoom(room);
  const joinUrl = `${location.origin}/join/${room.code}`;
  const head = h('div', { class: 'page-head' });
  const joinCard = h('section', { class: 'card joincard', 'aria-label': 'How to join' });
  const rosterCard = h('section', { class: 'card', 'aria-labelledby': 'roster-h' });
  const navCard = h('section', { class: 'card', 'aria-labelledby': 'tasknav-h' });
  const gridCard = h('section', { class: 'card', 'aria-labelledby': 'grid-h' });
  const footer = h('div', { class: 'row' });
  const results = new Map(); // learner -> {status, reason} from our own approve replies
  let notPassed = null; // the learners "Approve all who passed" listed back: [{learner, reason}]
  const statusOf = (l) => ((room.approvals.get(l.id) || {}).status) || ((results.get(l.id) || {}).status);
  const confirmCard = hostConfirmCard(room, (id) => name(id), statusOf);
  main.append(head, h('div', { class: 'host-top' }, joinCard, rosterCard), confirmCard.el, navCard, gridCard, footer);
  let refreshTimer = null;

  const name = (id) => {
    const l = room.learners.get(id);
    return (l && l.name) || `Learner ${id}`;
  };

  function drawStatic() {
    replace(head, h('div', null, h('p', { class: 'task-kicker' }, 'Live room'), h('h1', null, room.module.title)),
      h('span', { class: 'muted' }, room.state === 'closed' ? 'Closed' : `${room.learners.size} ${room.learners.size === 1 ? 'learner' : 'learners'}`));
    const qr = h('figure', { class: 'qr-fig', hidden: true },
      h('img', { class: 'qr', src: `/api/rooms/${encodeURIComponent(room.id)}/qr.svg`, alt: `QR code that opens ${joinUrl}`, width: 220, height: 220,
        onload: () => { qr.hidden = false; }, onerror: () => { qr.hidden = true; } }),
      h('figcaption', { class: 'muted' }, 'Scan with the phone camera'));
    replace(joinCard,
      h('div', null,
        h('p', { class: 'label' }, 'Join code'),
        h('p', { class: 'joincode', id: 'join-code', 'aria-label': `Join code ${room.code.split('').join(' ')}` }, room.code),
        h('p', { class: 'joinurl' }, 'Learners open ', h('strong', { class: 'url' }, `${location.host}/join`), ' and type the code'),
        h('button', { type: 'button', class: 'btn btn-secondary btn-sm', onclick: present }, 'Show big for the room')),
      qr);
  }

  // The code and QR code filling the screen, to be read from across the room.
  function present() {
    const d = h('dialog', { class: 'present', 'aria-label': `Join code ${room.code}` },
      h('p', { class: 'present-label' }, `Join ${room.module.title}`),
      h('p', { class: 'present-code' }, room.code),
      h('img', { class: 'present-qr', src: `/api/rooms/${encodeURIComponent(room.id)}/qr.svg`, alt: `QR code that opens ${joinUrl}`, onerror: (e) => { e.target.hidden = true; } }),
      h('p', { class: 'present-url' }, `${location.host}/join`),
      h('button', { type: 'button', class: 'btn btn-primary', onclick: () => d.close() }, 'Back to the room'));
    d.addEventListener('close', () => d.remove());
    document.body.append(d);
    d.showModal();
  }

  function drawRoster() {
    const ls = [...room.learners.values()];
    const on = ls.filter((l) => l.online).length;
    replace(rosterCard, h('div', { class: 'spread' }, h('h2', { id: 'roster-h' }, 'Who is here'), h('span', { class: 'muted' }, `${on} of ${ls.length} online`)),
      ls.length ? h('ul', { class: 'roster' }, ls.map((l) => h('li', { class: `presence${l.online ? ' on' : ''}`, dataset: { learner: l.id, online: String(l.online) } },
        h('span', { class: 'presence-dot', 'aria-hidden': 'true' }), name(l.id), h('span', { class: 'sr-only' }, l.online ? ', online' : ', offline'))))
        : h('p', { class: 'muted' }, 'Nobody yet. Learners who have this training waiting can join with the code.'),
      room.state === 'open' ? h('p', null, h('button', { type: 'button', class: 'btn btn-secondary btn-sm', onclick: addLearners }, '+ Add learners')) : null);
  }

  function drawNav() {
    const tasks = room.module.tasks;
    const t = tasks[room.task] || {};
    keepFocus(navCard, () => replace(navCard,
      h('h2', { id: 'tasknav-h', class: 'sr-only' }, 'Task navigation'),
      h('div', { class: 'tasknav' },
        h('button', { type: 'button', class: 'btn btn-secondary', disabled: room.task <= 0 || room.state !== 'open', dataset: { focus: 'prev' }, onclick: () => step(room.task - 1) }, '← Previous'),
        h('div', { class: 'tasknav-text', 'aria-live': 'polite' },
          h('p', { class: 'task-kicker' }, `Task ${room.task + 1} of ${tasks.length} · ${t.kind === 'observe' ? 'observe' : 'question'}`),
          h('p', { class: 'task-text', id: 'current-task' }, t.text || '')),
        h('button', { type: 'button', class: 'btn btn-primary', disabled: room.task >= tasks.length - 1 || room.state !== 'open', dataset: { focus: 'next' }, onclick: () => step(room.task + 1) }, 'Next task →')),
      t.kind === 'observe' && room.state === 'open' ? passPresentButton(room.task, 'btn') : null));
  }

  // Present learners with no mark yet for an observe task.
  function unmarkedPresent(task) {
    return [...room.learners.values()].filter((l) => l.online && !room.mark(l.id, task) && !isApproved(l));
  }

  function passPresentButton(task, size) {
    const n = unmarkedPresent(task).length;
    return h('button', {
      type: 'button', class: `btn btn-pass ${size === 'sm' ? 'btn-sm pass-present-sm' : 'pass-present'}`, disabled: n === 0,
      dataset: { focus: `pass-present-${task}`, passPresent: String(task) },
      'aria-label': n ? `Pass everyone present on task ${task + 1} (${n})` : `Everyone present is marked on task ${task + 1}`,
      onclick: () => passPresent(task),
    }, n ? (size === 'sm' ? `✓ Pass present (${n})` : `✓ Pass everyone present (${n})`) : (size === 'sm' ? 'All marked' : 'Everyone present is marked'));
  }

  // Every observe task with the present learners who have no mark on it.
  function unmarkedByTask() {
    return room.module.tasks.map((t, i) => [i, t.kind === 'observe' ? unmarkedPresent(i) : []]).filter(([, who]) => who.length);
  }

  // "Pass everyone present on all observe tasks": shown while some present
  // learner has an observe task without a mark.
  function passAllButton() {
    const observe = room.module.tasks.filter((t) => t.kind === 'observe').length;
    if (!observe) return null;
    const unmarked = unmarkedByTask();
    const people = new Set(unmarked.flatMap(([, who]) => who.map((l) => l.id))).size;
    if (!people) return null;
    return h('button', {
      type: 'button', class: 'btn btn-pass pass-all', dataset: { focus: 'pass-all' },
      'aria-label': `Pass everyone present on all observe tasks (${people} ${people === 1 ? 'learner' : 'learners'})`,
      onclick: passAllPresent,
    }, `✓ Pass everyone present on all observe tasks (${people})`);
  }

  function answerText(t, a) {
    if (!a) return null;
    const v = a.value;
    if (Array.isArray(v)) return v.map((i) => (t.options || [])[i] ?? i).join(', ');
    if (typeof v === 'number' && t.options) return t.options[v] ?? String(v);
    return v === undefined ? 'Answered' : String(v);
  }

  function cell(l, t, i) {
    const cur = i === room.task;
    if (t.kind === 'question') {
      const a = room.answer(l.id, i);
      return h('td', { class: cur ? 'current' : '', dataset: { cell: `${l.id}:${i}` } }, a
        ? h('div', { class: 'cell' }, h('span', { class: 'badge badge-next', dataset: { answer: String(a.value) } }, answerText(t, a)), a.by !== l.id ? h('span', { class: 'cell-note' }, 'entered by you') : null)
        : h('div', { class: 'cell' }, h('span', { class: 'cell-empty' }, cur ? 'waiting…' : '—'),
          cur && room.state === 'open' ? h('button', { type: 'button', class: 'notebtn', dataset: { focus: `for-${l.id}-${i}` },
            'aria-label': `Answer for ${name(l.id)} (shared device)`, onclick: () => answerFor(l.id, i) }, 'Answer for them') : null));
    }
    const mk = room.mark(l.id, i);
    const closed = room.state !== 'open';
    const mkBtn = (result, label) => h('button', {
      type: 'button', class: `markbtn markbtn-${result}`, 'aria-pressed': String(!!mk && mk.result === result), disabled: closed,
      'aria-label': `${label}: ${name(l.id)}, task ${i + 1}`, dataset: { focus: `${result}-${l.id}-${i}` },
      onclick: () => mark(l.id, i, result, mk && mk.note, mk && mk.evidence),
    }, result === 'pass' ? '✓ Pass' : '✗ Fail');
    return h('td', { class: cur ? 'current' : '', dataset: { cell: `${l.id}:${i}`, mark: mk ? mk.result : '' } }, h('div', { class: 'cell' },
      h('div', { class: 'cell-actions' }, mkBtn('pass', 'Pass'), mkBtn('fail', 'Fail')),
      mk && mk.note ? h('span', { class: 'cell-note' }, `“${mk.note}”`) : null,
      mk && mk.evidence ? evidenceThumb(mk.evidence, `Evidence for ${name(l.id)}, task ${i + 1}`) : null,
      learnerEvidence(l, i),
      mk && !closed ? h('button', { type: 'button', class: 'notebtn', 'aria-label': `Note for ${name(l.id)}, task ${i + 1}`, dataset: { focus: `note-${l.id}-${i}` },
        onclick: () => noteFor(l.id, i, mk) }, mk.note ? '✎ Edit note' : '✎ Add note') : null,
      mk && !closed ? evidencePickers(`${name(l.id)}, task ${i + 1}`, (file) => attach(l.id, i, file), `ev-${l.id}-${i}`) : null));
  }

  // A learner's own photo or file for an observe task (their answer of it,
  // where the module lets learners attach evidence).
  function learnerEvidence(l, i) {
    const a = room.answer(l.id, i);
    if (!a || typeof a.value !== 'string') return null;
    return h('span', { class: 'learner-evidence', dataset: { learnerEvidence: `${l.id}:${i}` } },
      h('span', { class: 'cell-note' }, 'from the learner:'), evidenceThumb(a.value, `Photo or file ${name(l.id)} attached to task ${i + 1}`));
  }

  function ready(l) {
    return room.module.tasks.every((t, i) => t.kind !== 'observe' || (room.mark(l.id, i) || {}).result === 'pass');
  }

  function outcome(l) {
    const saving = live.savingDecisions(room.id);
    if (saving.has(l.id) && !isDecided(l)) {
      return h('span', { class: 'result-saving', role: 'status', dataset: { outcome: 'saving' } },
        h('span', { class: 'spinner-dot', 'aria-hidden': 'true' }), saving.get(l.id) ? 'Saving approval…' : 'Saving…');
    }
    const ap = room.approvals.get(l.id);
    const r = results.get(l.id);
    const status = (ap && ap.status) || (r && r.status);
    if (status === 'approved') return h('span', { class: 'result-approved', dataset: { outcome: 'approved' } }, ap && ap.confirmedAt ? '✓ Approved and confirmed' : '✓ Approved');
    if (status === 'pending') return h('span', { class: 'result-pending', dataset: { outcome: 'pending' } }, '… Approved, waiting for the learner to confirm');
    if (status === 'not_approved') return h('span', { class: 'result-not', dataset: { outcome: 'not_approved' } }, '✗ Not approved');
    if (r && r.status === 'refused') return h('span', { class: 'result-refused', dataset: { outcome: 'refused' } }, `Refused: ${r.reason || ''}`);
    return null;
  }

  function drawGrid() {
    const tasks = room.module.tasks;
    const ls = [...room.learners.values()];
    keepFocus(gridCard, () => {
      const passing = ls.filter((l) => ready(l) && !isDecided(l));
      const undecided = ls.filter((l) => !isDecided(l));
      replace(gridCard,
        h('div', { class: 'spread' }, h('h2', { id: 'grid-h' }, 'Results'),
          h('div', { class: 'drill-actions' },
            room.state === 'open' ? passAllButton() : null,
            passing.length > 0 && ls.length > 1 && room.state === 'open'
              ? h('button', { type: 'button', class: 'btn btn-pass', dataset: { focus: 'approve-all' }, onclick: () => approveAll(undecided) }, `✓ Approve all who passed (${passing.length})`)
              : null)),
        notPassed && notPassed.length ? h('div', { class: 'notice not-passed', role: 'status' },
          h('strong', null, `Not approved (${notPassed.length}): `),
          h('ul', { class: 'not-passed-list' }, notPassed.map((r) => h('li', { dataset: { learner: r.learner } }, `${name(r.learner)} — ${r.reason || 'not approved'}`)))) : null,
        ls.length ? h('div', { class: 'grid-wrap' }, h('table', { class: 'grid' },
          h('caption', { class: 'sr-only' }, 'Learners by task. Each observe task has Pass and Fail buttons.'),
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Learner'),
            tasks.map((t, i) => h('th', { scope: 'col', class: i === room.task ? 'current' : '' }, h('span', { class: 'muted' }, `${i + 1}. `), t.text, i === room.task ? h('span', { class: 'sr-only' }, ' (current)') : null,
              t.kind === 'observe' && room.state === 'open' && ls.length > 1 ? h('div', null, passPresentButton(i, 'sm')) : null)),
            h('th', { scope: 'col' }, 'Decision'))),
          h('tbody', null, ls.map((l) => h('tr', { dataset: { learner: l.id } },
            h('th', { scope: 'row' }, h('span', { class: `presence${l.online ? ' on' : ''}` }, h('span', { class: 'presence-dot', 'aria-hidden': 'true' }), name(l.id), h('span', { class: 'sr-only' }, l.online ? ', online' : ', offline'))),
            tasks.map((t, i) => cell(l, t, i)),
            h('td', null, h('div', { class: 'cell' }, outcome(l),
              room.state === 'open' && !isApproved(l) && !live.savingDecisions(room.id).has(l.id) ? h('div', { class: 'approve-row' },
                h('button', { type: 'button', class: 'btn btn-pass btn-sm', dataset: { focus: `approve-${l.id}` }, 'aria-label': `Approve ${name(l.id)}`, disabled: !ready(l),
                  title: ready(l) ? '' : 'Every observe task must be marked pass first', onclick: () => approve([{ learner: l.id, approved: true }]) }, '✓ Approve'),
                h('button', { type: 'button', class: 'btn btn-danger btn-sm', dataset: { focus: `reject-${l.id}` }, 'aria-label': `Not approve ${name(l.id)}`, onclick: () => notApprove(l.id) }, '✗ Not approve'),
                h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'aria-label': `Remove ${name(l.id)} from the room`, dataset: { focus: `remove-${l.id}` }, onclick: () => remove(l.id) }, 'Remove')) : null,
              room.state === 'open' && !isApproved(l) && !ready(l) ? h('span', { class: 'cell-note' }, 'Approve when every observe task is marked pass.') : null)))))))
          : h('p', { class: 'empty' }, 'When learners join, their answers and your marks fill in here.'));
    });
    replace(footer, room.state === 'open'
      ? h('button', { type: 'button', class: 'btn btn-danger', onclick: closeRoom }, 'Close the room')
      : [h('p', { class: 'closed-note' }, 'This room is closed.'), h('a', { class: 'btn btn-primary', href: '/#/dashboard' }, 'Back to the dashboard')]);
  }

  function isApproved(l) {
    const ap = room.approvals.get(l.id);
    const r = results.get(l.id);
    return (ap && (ap.status === 'approved' || ap.status === 'pending')) || (r && (r.status === 'approved' || r.status === 'pending'));
  }
  function isDecided(l) {
    const ap = room.approvals.get(l.id);
    return !!(ap && ap.status) || isApproved(l);
  }

  function drawAll() {
    drawStatic();
    drawRoster();
    drawNav();
    drawGrid();
    confirmCard.draw();
  }

  // ---- actions -------------------------------------------------------------

  async function act(msg, failText) {
    try {
      return await live.request(msg);
    } catch (e) {
      toast(`${failText}: ${e.message}`, 'error');
      return null;
    }
  }

  async function step(i) {
    if (i < 0 || i >= room.module.tasks.length) return;
    await act({ t: 'step', room: room.id, task: i }, 'Could not move to that task');
  }

  async function mark(learner, task, result, note, evidence) {
    const msg = { t: 'mark', room: room.id, learner, task, result };
    if (note) msg.note = note;
    if (evidence) msg.evidence = evidence;
    if (await act(msg, 'The mark was not saved')) announce(`${name(learner)}, task ${task + 1}: ${result === 'pass' ? 'pass' : 'fail'}.`);
  }

  // A photo or file for a mark: uploaded first, then the mark names it. A
  // failed upload leaves the mark as it was.
  async function attach(learner, task, file) {
    const what = file.type === 'application/pdf' ? 'file' : 'photo';
    announce(`Sending the ${what}…`);
    let up;
    try {
      up = await uploadEvidence(room.id, learner, task, file);
    } catch (e) {
      toast(`Not attached: ${e.message}`, 'error');
      return;
    }
    const mk = room.mark(learner, task);
    if (!mk) return;
    const msg = { t: 'mark', room: room.id, learner, task, result: mk.result, evidence: up.hash };
    if (mk.note) msg.note = mk.note;
    if (await act(msg, 'The mark was not saved')) announce(`${name(learner)}, task ${task + 1}: ${what} attached.`);
  }

  async function noteFor(learner, task, mk) {
    const ta = h('textarea', { maxlength: 2000, value: (mk && mk.note) || '' });
    const r = await dialog({ title: `Note for ${name(learner)}`, body: [h('p', { class: 'muted' }, room.module.tasks[task].text), field('Note', ta, 'What you saw; the learner sees it with their result.')],
      actions: [{ label: 'Cancel', kind: 'ghost' }, { label: 'Save note', kind: 'primary' }] });
    if (r === 'Save note' && mk) await mark(learner, task, mk.result, ta.value.trim(), mk.evidence);
  }

  // R8: on one shared device the responsible enters the learner's answer.
  async function answerFor(learner, task) {
    const t = room.module.tasks[task];
    let value;
    const body = t.options && t.options.length
      ? h('div', { class: 'options', role: 'group', 'aria-label': t.text }, t.options.map((o, j) => h('button', {
        type: 'button', class: 'option', 'aria-pressed': 'false',
        onclick: (e) => { value = j; for (const b of e.currentTarget.parentNode.children) b.setAttribute('aria-pressed', String(b === e.currentTarget)); },
      }, h('span', { class: 'option-mark', 'aria-hidden': 'true' }, String.fromCharCode(65 + j)), o)))
      : field('Their answer', h('textarea', { oninput: (e) => { value = e.target.value.trim() || undefined; } }));
    const r = await dialog({ title: `Answer for ${name(learner)}`, body: [h('p', { class: 'muted' }, t.text), body],
      actions: [{ label: 'Cancel', kind: 'ghost' }, { label: 'Save answer', kind: 'primary', onClick: () => value !== undefined }] });
    if (r === 'Save answer' && value !== undefined) live.answer(room.id, task, value, learner);
  }

  // A decision shows "Saving…" until the server's durable acknowledgement;
  // live.decide re-sends it after a reconnect (the same completion, R10).
  async function approve(decisions) {
    let reply = null;
    const shown = live.decide(room.id, decisions);
    drawGrid();
    try {
      reply = await shown;
    } catch (e) {
      toast(`The decision was not saved: ${e.message}`, 'error');
    }
    drawGrid();
    if (!reply) return;
    const said = [];
    for (const r of reply.results || []) {
      results.set(r.learner, r);
      said.push(`${name(r.learner)}: ${r.status === 'approved' ? 'approved' : r.status === 'pending' ? 'approved, waiting for them to confirm with the code' : r.status === 'not_approved' ? 'not approved' : `refused, ${r.reason || ''}`}`);
    }
    announce(said.join('. '));
    drawGrid();
    return reply;
  }

  // "Pass everyone present": one mark for every present learner who has no
  // mark yet for the task; exceptions are then set to fail one by one.
  async function passPresent(task) {
    const who = unmarkedPresent(task);
    if (!who.length) return;
    const reply = await act({ t: 'mark', room: room.id, learners: who.map((l) => l.id), task, result: 'pass' }, 'The marks were not saved');
    if (reply) announce(`Task ${task + 1}: ${who.length} present ${who.length === 1 ? 'learner' : 'learners'} passed.`);
  }

  // "Pass everyone present on all observe tasks": one group mark per observe
  // task, each for the present learners without a mark on it; the server
  // keeps any mark already there (a fail is never overwritten).
  async function passAllPresent() {
    const unmarked = unmarkedByTask();
    if (!unmarked.length) return;
    const replies = await Promise.all(unmarked.map(([task, who]) =>
      act({ t: 'mark', room: room.id, learners: who.map((l) => l.id), task, result: 'pass' }, `Task ${task + 1}: the marks were not saved`)));
    const done = unmarked.filter((_, k) => replies[k]);
    const people = new Set(done.flatMap(([, who]) => who.map((l) => l.id))).size;
    if (done.length) announce(`${people} present ${people === 1 ? 'learner' : 'learners'} passed on ${done.length} observe ${done.length === 1 ? 'task' : 'tasks'}.`);
  }

  // "Approve all who passed": one approve for every undecided learner; the
  // server applies R9 to each, and those with a fail or a missing mark come
  // back refused: they are listed, not approved.
  async function approveAll(undecided) {
    const reply = await approve(undecided.map((l) => ({ learner: l.id, approved: true })));
    if (!reply) return;
    notPassed = (reply.results || []).filter((r) => r.status !== 'approved');
    drawGrid();
  }

  async function notApprove(learner) {
    const ta = h('textarea', { maxlength: 2000 });
    const r = await dialog({ title: `Not approve ${name(learner)}?`, body: [h('p', null, 'The training stays waiting for them, and you can run it again later.'), field('Note (optional)', ta)],
      actions: [{ label: 'Cancel', kind: 'ghost' }, { label: 'Not approve', kind: 'danger' }] });
    if (r !== 'Not approve') return;
    const d = { learner, approved: false };
    if (ta.value.trim()) d.note = ta.value.trim();
    await approve([d]);
  }

  async function remove(learner) {
    const r = await dialog({ title: `Remove ${name(learner)}?`, body: h('p', null, 'They leave the room. What was recorded for them is not approved.'),
      actions: [{ label: 'Cancel', kind: 'ghost' }, { label: 'Remove', kind: 'danger' }] });
    if (r === 'Remove') await act({ t: 'remove', room: room.id, learner }, 'Could not remove them');
  }

  async function addLearners() {
    let pend;
    try { pend = normalisePending(await get('/api/otj/pending')).items.filter((it) => it.module.id === room.module.id && !room.learners.has(it.learner.id)); } catch (e) {
      toast(e.message, 'error');
      return;
    }
    const chosen = new Set();
    const body = pend.length
      ? h('ul', { class: 'people' }, pend.map((it) => h('li', null, h('label', { class: 'check' },
        h('input', { type: 'checkbox', onchange: (e) => { if (e.target.checked) chosen.add(it.learner.id); else chosen.delete(it.learner.id); } }),
        h('span', null, h('strong', null, it.learner.name), it.learner.department ? h('span', { class: 'muted' }, ` · ${it.learner.department}`) : null)))))
      : h('p', null, `Nobody else is waiting for ${room.module.title}.`);
    const r = await dialog({ title: 'Add learners', body, actions: pend.length ? [{ label: 'Cancel', kind: 'ghost' }, { label: 'Add', kind: 'primary' }] : undefined });
    if (r !== 'Add') return;
    for (const it of pend) {
      if (!chosen.has(it.learner.id)) continue;
      if (!room.learners.has(it.learner.id)) room.learners.set(it.learner.id, { id: it.learner.id, name: it.learner.name, online: false });
      await act({ t: 'add', room: room.id, learner: it.learner.id }, `Could not add ${it.learner.name}`);
    }
    drawAll();
  }

  async function closeRoom() {
    const undecided = [...room.learners.values()].filter((l) => !isDecided(l));
    const r = await dialog({ title: 'Close the room?', body: h('p', null, undecided.length
      ? `${undecided.length} ${undecided.length === 1 ? 'learner has' : 'learners have'} no decision yet and will stay waiting.`
      : 'Everyone has a decision. Learners see that the room is closed.'),
    actions: [{ label: 'Cancel', kind: 'ghost' }, { label: 'Close the room', kind: 'danger' }] });
    if (r !== 'Close the room') return;
    if (await act({ t: 'close', room: room.id }, 'Could not close the room')) {
      forgetRoom(room.id);
      toast('The room is closed.', 'success');
      go('/dashboard');
    }
  }

  // ---- live updates --------------------------------------------------------

  function refreshNames() { // a learner joined that we do not know by name yet
    if (refreshTimer) return;
    refreshTimer = setTimeout(async () => {
      refreshTimer = null;
      try { await live.join({ room: room.id }); } catch { /* names stay as ids */ }
    }, 300);
  }

  function onRoom(e) {
    if (e.detail.room !== room) return;
    const ev = e.detail.ev;
    if (ev && ev.e) {
      const x = ev.e;
      if (x.type === 'joined' && x.role !== 'host') {
        const who = x.users || [x.user];
        announce(who.length === 1 ? `${name(who[0])} joined.` : `${who.length} learners joined.`);
      }
      if (x.type === 'left' && x.role !== 'host') announce(`${name(x.user)} left.`);
      if (x.type === 'answer' && x.by === x.learner) announce(`${name(x.learner)} answered task ${x.task + 1}.`);
      if (x.type === 'confirmed') confirmCard.confirmed(x.learner);
    }
    if ([...room.learners.values()].some((l) => !l.name)) refreshNames();
    if (room.state === 'closed') forgetRoom(room.id);
    drawAll();
  }
  live.addEventListener('room', onRoom);
  live.addEventListener('decisions', drawGrid);
  drawAll();
  return () => {
    live.removeEventListener('room', onRoom);
    live.removeEventListener('decisions', drawGrid);
    clearTimeout(refreshTimer);
    confirmCard.stop();
  };
}
