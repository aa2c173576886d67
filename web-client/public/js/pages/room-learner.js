// The learner's room, on their phone: the current task, answer buttons for
// questions, their own marks as they arrive, their outcome at the end.
// Answers go through the live outbox, so a tap survives a dropped connection.
import { h, replace, keepFocus, announce, toast } from '../ui.js';
import { live } from '../live.js';
import { evidenceThumb, evidencePickers, uploadEvidence } from '../evidence.js';
import { learnerConfirmCard } from './room-confirm.js';

export function render({ main, room, me }) {
  const head = h('div', { class: 'room-head' });
  const taskCard = h('section', { class: 'card', 'aria-labelledby': 'task-text' });
  const outcomeCard = h('section', { 'aria-live': 'polite' });
  const mine = h('section', { class: 'card', 'aria-labelledby': 'mine-h' });
  const leaveBar = h('p', { class: 'row' });
  main.append(head, outcomeCard, taskCard, mine, leaveBar);

  let lastTask = room.task;
  let removed = false;
  let lastState = room.state;
  const seenMarks = new Set([...room.marks.keys()].filter((k) => k.startsWith(`${me.id}:`)));

  function optionLabel(t, v) {
    if (v === undefined || v === null) return '';
    if (Array.isArray(v)) return v.map((i) => (t.options || [])[i] ?? i).join(', ');
    if (typeof v === 'number' && t.options) return t.options[v] ?? String(v);
    return String(v);
  }

  function draw() {
    const tasks = room.module.tasks;
    const t = tasks[room.task];
    const pending = live.unacked(room.id);

    replace(head,
      h('div', null, h('p', { class: 'task-kicker' }, 'Live training'), h('h1', null, room.module.title)),
      h('span', { class: 'muted' }, `with ${room.host.name || 'your responsible'}`));

    // outcome
    const ap = room.approvals.get(me.id);
    if (removed && !room.learners.has(me.id)) {
      replace(outcomeCard, h('div', { class: 'card closed-note' }, 'The responsible has taken you out of this room. Your training stays waiting on your home page.'));
    } else if (room.state === 'closed' && !ap) {
      replace(outcomeCard, h('div', { class: 'card closed-note' }, 'The responsible has closed this room. If the training is not approved yet, it stays waiting on your home page.'));
    } else if (ap && ap.status === 'pending' && room.state === 'open') {
      if (!outcomeCard.querySelector('[data-outcome="pending"]'))
        replace(outcomeCard, learnerConfirmCard(room, room.host.name || 'your responsible'));
    } else if (ap && ap.status === 'pending') {
      replace(outcomeCard, h('div', { class: 'card closed-note' }, 'The room closed before you confirmed, so the approval lapsed. The training stays waiting on your home page.'));
    } else if (ap && ap.status === 'approved') {
      replace(outcomeCard, h('div', { class: 'card outcome outcome-approved', dataset: { outcome: 'approved' } },
        h('span', { class: 'outcome-icon', 'aria-hidden': 'true' }, '✓'),
        h('h2', null, 'Approved'), h('p', null, `${room.module.title} is completed${ap.confirmedAt ? ` — you confirmed at ${new Date(ap.confirmedAt * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}` : ''}. Your learning path continues.`),
        h('a', { class: 'btn btn-primary', href: '/#/learn' }, 'Go to my learning')));
    } else if (ap && ap.status === 'not_approved') {
      replace(outcomeCard, h('div', { class: 'card outcome outcome-not', dataset: { outcome: 'not_approved' } },
        h('span', { class: 'outcome-icon', 'aria-hidden': 'true' }, '✗'),
        h('h2', null, 'Not approved this time'), h('p', null, 'Talk with your responsible about what to practise. The training stays waiting for you.')));
    } else if (ap && ap.status === 'refused') { // "approve all who passed" left them out: a task not passed
      replace(outcomeCard, h('div', { class: 'card outcome outcome-not', dataset: { outcome: 'refused' } },
        h('span', { class: 'outcome-icon', 'aria-hidden': 'true' }, '!'),
        h('h2', null, 'Not approved yet'), h('p', null, 'A task is not passed yet: see your results below. The training stays waiting for you.')));
    } else replace(outcomeCard);

    // current task
    keepFocus(taskCard, () => {
      if (!t || room.state === 'closed' || (ap && (ap.status === 'approved' || ap.status === 'pending'))) {
        replace(taskCard, h('p', { class: 'task-kicker' }, 'Tasks'), h('p', { id: 'task-text' }, room.state === 'closed' ? 'The training has ended.' : 'All done.'));
        taskCard.hidden = !!ap;
        return;
      }
      taskCard.hidden = false;
      const kicker = h('p', { class: 'task-kicker' }, `Task ${room.task + 1} of ${tasks.length} · ${t.kind === 'observe' ? 'Show it' : 'Question'}`);
      const text = h('p', { class: 'task-text', id: 'task-text' }, t.text);
      if (t.kind === 'question') {
        const a = room.answer(me.id, room.task);
        const waiting = pending.find((p) => p.task === room.task);
        const chosen = waiting ? waiting.value : a && a.hasValue ? a.value : undefined;
        let control;
        if (t.options && t.options.length) {
          control = h('div', { class: 'options', role: 'group', 'aria-labelledby': 'task-text' }, t.options.map((o, j) =>
            h('button', { type: 'button', class: 'option', 'aria-pressed': String(chosen === j), dataset: { focus: `opt-${room.task}-${j}` },
              onclick: () => { live.answer(room.id, room.task, j); draw(); } },
            h('span', { class: 'option-mark', 'aria-hidden': 'true' }, chosen === j ? '✓' : String.fromCharCode(65 + j)), o)));
        } else {
          const ta = h('textarea', { 'aria-labelledby': 'task-text', dataset: { focus: `text-${room.task}` }, value: typeof chosen === 'string' ? chosen : '' });
          control = h('div', { class: 'stack' }, ta, h('button', { type: 'button', class: 'btn btn-primary', dataset: { focus: `send-${room.task}` },
            onclick: () => { if (ta.value.trim()) { live.answer(room.id, room.task, ta.value.trim()); draw(); } } }, 'Send answer'));
        }
        let state = null;
        if (waiting) state = h('p', { class: 'answer-state waiting', dataset: { state: 'sending' } }, h('span', { 'aria-hidden': 'true' }, '↻'), live.status === 'online' ? 'Sending your answer…' : 'Saved on this phone — it is sent when you are back online.');
        else if (a) state = h('p', { class: 'answer-state saved', dataset: { state: 'saved' } }, h('span', { 'aria-hidden': 'true' }, '✓'), 'Answer received. You can change it until the responsible moves on.');
        replace(taskCard, kicker, text, control, state, others());
      } else {
        const mk = room.mark(me.id, room.task);
        replace(taskCard, kicker, text,
          h('p', { class: 'observe-note' }, 'Do this now. Your responsible watches and records the result.'),
          mk && !mk.hidden ? markBadge(mk) : null,
          myEvidence(room.task, pending, true));
      }
    });

    // my results
    replace(mine, h('h2', { id: 'mine-h' }, 'My results'),
      h('ol', { class: 'mylist' }, room.module.tasks.map((task, i) => {
        let res;
        if (task.kind === 'question') {
          const a = room.answer(me.id, i);
          const w = pending.find((p) => p.task === i);
          res = w ? h('span', { class: 'muted' }, `${optionLabel(task, w.value)} (sending)`)
            : a ? h('span', null, optionLabel(task, a.value) || 'Answered') : h('span', { class: 'muted' }, 'Not answered');
        } else {
          const mk = room.mark(me.id, i);
          res = h('span', null, mk && !mk.hidden ? markBadge(mk, true) : h('span', { class: 'muted' }, 'Not marked yet'),
            myEvidence(i, pending, false));
        }
        return h('li', { class: i === room.task ? 'current' : '' },
          h('span', null, h('span', { class: 'sr-only' }, i === room.task ? 'Current task: ' : ''), `${i + 1}. ${task.text}`), res);
      })));

    replace(leaveBar, room.state === 'closed' || (ap && ap.status !== 'refused')
      ? h('a', { class: 'btn btn-secondary', href: '/#/learn' }, 'Back to my learning')
      : h('button', { type: 'button', class: 'btn btn-ghost', onclick: leave }, 'Leave the room'));
  }

  function others() {
    const t = room.task;
    const total = room.learners.size;
    if (total < 2) return null;
    let n = 0;
    for (const l of room.learners.keys()) if (room.answer(l, t)) n++;
    return h('p', { class: 'others' }, `${n} of ${total} in the room have answered.`);
  }

  // The learner's own photo or file on an observe task, where the module
  // lets learners attach evidence: uploaded, then sent as their answer of
  // the task (its hash), which only they and the responsible see. The
  // pickers show on the current task while the room is open.
  function myEvidence(task, pending, pickers) {
    if (!room.module.learner_evidence) return null;
    const a = room.answer(me.id, task);
    const sending = pending.some((p) => p.task === task);
    const label = `your evidence for task ${task + 1}`;
    return h('div', { class: 'learner-evidence', dataset: { evidenceTask: String(task) } },
      a && typeof a.value === 'string' ? evidenceThumb(a.value, `Your photo or file for task ${task + 1}`) : null,
      sending ? h('span', { class: 'muted', dataset: { state: 'sending' } }, live.status === 'online' ? 'Sending…' : 'Saved on this phone — sent when you are back online.') : null,
      pickers && room.state === 'open' ? evidencePickers(label, (file) => attach(task, file), `my-ev-${task}`) : null);
  }

  async function attach(task, file) {
    const what = file.type === 'application/pdf' ? 'file' : 'photo';
    announce(`Sending the ${what}…`);
    let up;
    try {
      up = await uploadEvidence(room.id, me.id, task, file);
    } catch (e) {
      toast(`Not attached: ${e.message}`, 'error');
      return;
    }
    live.answer(room.id, task, up.hash);
    draw();
  }

  function markBadge(mk, small) {
    const pass = mk.result === 'pass';
    return h('div', { class: small ? '' : 'answer-state' },
      h('span', { class: `badge ${pass ? 'badge-pass' : 'badge-fail'}`, dataset: { mark: mk.result } }, pass ? '✓ Passed' : '✗ Not passed'),
      mk.note ? h('span', { class: 'cell-note' }, ` “${mk.note}”`) : null,
      mk.evidence ? evidenceThumb(mk.evidence, `Evidence your responsible attached to task ${mk.task + 1}`) : null);
  }

  async function leave() {
    try { await live.request({ t: 'leave', room: room.id }); } catch { /* leaving anyway */ }
    location.hash = '/learn';
  }

  function onRoom(e) {
    if (e.detail.room !== room) return;
    const ev = e.detail.ev;
    if (room.task !== lastTask) {
      lastTask = room.task;
      const t = room.module.tasks[room.task];
      if (t) announce(`Task ${room.task + 1}: ${t.text}`);
    }
    if (ev && ev.e && ev.e.type === 'joined' && ev.e.added && (ev.e.user === me.id || (Array.isArray(ev.e.added) && ev.e.added.includes(me.id)))) removed = false;
    if (ev && ev.e && ev.e.learner === me.id) {
      if (ev.e.type === 'removed') { removed = true; announce('You were taken out of the room.'); }
      if (ev.e.type === 'added') removed = false;
      if (ev.e.type === 'mark' && ev.e.result) announce(`Task ${ev.e.task + 1}: ${ev.e.result === 'pass' ? 'passed' : 'not passed'}.`);
      if (ev.e.type === 'answer' && typeof ev.e.value === 'string' && (room.module.tasks[ev.e.task] || {}).kind === 'observe') announce(`Task ${ev.e.task + 1}: your evidence is attached.`);
      if (ev.e.type === 'approved' && ev.e.status) announce(ev.e.status === 'approved' ? 'You are approved.' : ev.e.status === 'pending' ? 'You are approved. Confirm it with the code on the screen.' : 'Not approved this time.');
      if (ev.e.type === 'confirmed' && ev.e.completion) announce('Confirmed. You are approved.');
    }
    for (const k of room.marks.keys()) if (k.startsWith(`${me.id}:`)) seenMarks.add(k);
    if (room.state !== lastState) {
      lastState = room.state;
      if (room.state === 'closed') announce('The room is closed.');
    }
    draw();
  }
  const redraw = () => draw();
  live.addEventListener('room', onRoom);
  live.addEventListener('ack', redraw);
  live.addEventListener('outbox', redraw);
  live.addEventListener('status', redraw);
  const failed = (e) => {
    if (e.detail.item.room === room.id) announce(`Your answer could not be recorded: ${e.detail.error.message}`, true);
    draw();
  };
  live.addEventListener('answerfailed', failed);
  draw();
  return () => {
    live.removeEventListener('room', onRoom);
    live.removeEventListener('ack', redraw);
    live.removeEventListener('outbox', redraw);
    live.removeEventListener('status', redraw);
    live.removeEventListener('answerfailed', failed);
  };
}
