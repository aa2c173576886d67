// Sign-off that both sides confirm. When a module requires it, an approval
// waits (`pending`) until the learner types, on their own phone, the
// six-digit code the responsible's room screen shows; the code changes every
// 30 seconds. The host side shows the code and who has confirmed; the
// learner side is the code entry.
import { h, replace, announce } from '../ui.js';
import { live } from '../live.js';

const time = (s) => new Date(s * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

// The responsible's card: the current code (asked from the server when it
// changes), the learners still to confirm and those who have. status(l) is
// the learner's decision as the room page knows it.
export function hostConfirmCard(room, name, status) {
  const el = h('section', { class: 'card confirmcard', 'aria-labelledby': 'confirm-h', hidden: true });
  let shown = null; // {code, until}
  let timer = null;
  let asking = false;
  const confirmedNow = new Set();

  async function fetchCode() {
    if (asking) return;
    asking = true;
    try {
      const r = await live.request({ t: 'confirm_code', room: room.id });
      shown = { code: r.code, until: Date.now() + r.ms };
      clearTimeout(timer);
      timer = setTimeout(() => { shown = null; draw(); }, r.ms + 50);
    } catch {
      shown = null;
      clearTimeout(timer);
      timer = setTimeout(draw, 3000);
    } finally {
      asking = false;
    }
    paint();
  }

  function people() {
    const waiting = [];
    const done = [];
    for (const l of room.learners.values()) {
      const s = status(l);
      const ap = room.approvals.get(l.id);
      if (s === 'pending') waiting.push(l);
      else if (s === 'approved' && ap && ap.confirmedAt) done.push({ l, at: ap.confirmedAt });
    }
    return { waiting, done };
  }

  function paint() {
    const { waiting, done } = people();
    const open = room.state === 'open';
    el.hidden = !(room.module.confirm || waiting.length) || (!waiting.length && !done.length);
    if (el.hidden) return;
    const left = shown ? Math.max(0, Math.round((shown.until - Date.now()) / 1000)) : 0;
    replace(el,
      h('div', { class: 'spread' }, h('h2', { id: 'confirm-h' }, 'Learner confirmation'),
        h('span', { class: 'muted' }, `${done.length} of ${waiting.length + done.length} confirmed`)),
      waiting.length && open
        ? h('div', { class: 'confirm-show' },
          h('p', { class: 'label' }, 'Code to type on their phone'),
          h('p', { class: 'confirm-code', id: 'confirm-code', 'aria-live': 'off', 'aria-label': shown ? `Code ${shown.code.split('').join(' ')}` : 'Code loading' },
            shown ? `${shown.code.slice(0, 3)} ${shown.code.slice(3)}` : '··· ···'),
          h('p', { class: 'muted confirm-left' }, shown ? `A new code in ${left} s` : 'Getting the code…'))
        : null,
      waiting.length && !open ? h('p', { class: 'closed-note' }, 'The room is closed: approvals nobody confirmed have lapsed, and those learners stay waiting.') : null,
      h('ul', { class: 'confirm-list' },
        waiting.map((l) => h('li', { dataset: { confirm: 'waiting', learner: l.id } }, h('span', { class: 'confirm-dot', 'aria-hidden': 'true' }, '…'), name(l.id), h('span', { class: 'muted' }, ' · waiting'))),
        done.map(({ l, at }) => h('li', { class: confirmedNow.has(l.id) ? 'just' : '', dataset: { confirm: 'done', learner: l.id } },
          h('span', { class: 'confirm-dot done', 'aria-hidden': 'true' }, '✓'), name(l.id), h('span', { class: 'muted' }, ` · confirmed ${time(at)}`)))));
  }

  function draw() {
    const { waiting } = people();
    if (waiting.length && room.state === 'open') {
      if (!shown || shown.until <= Date.now()) fetchCode();
    } else {
      shown = null;
      clearTimeout(timer);
    }
    paint();
  }

  const tick = setInterval(() => { if (shown && !el.hidden) paint(); }, 1000);

  return {
    el,
    draw,
    confirmed(learner) {
      confirmedNow.add(learner);
      announce(`${name(learner)} confirmed.`);
    },
    stop() { clearTimeout(timer); clearInterval(tick); },
  };
}

// The learner's card while their approval waits for them: a six-digit code
// entry, the refusal in words, and nothing to do once it is confirmed (the
// room's `confirmed` event turns the page into the approved outcome).
export function learnerConfirmCard(room, hostName) {
  const input = h('input', {
    type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]*', maxlength: 6,
    id: 'confirm-input', class: 'confirm-input', 'aria-describedby': 'confirm-help confirm-error', placeholder: '••••••',
    oninput: () => { input.value = input.value.replace(/\D/g, '').slice(0, 6); error.hidden = true; },
  });
  const error = h('p', { class: 'form-error', id: 'confirm-error', role: 'alert', hidden: true });
  const button = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Confirm');
  async function submit(e) {
    e.preventDefault();
    const code = input.value.trim();
    if (code.length !== 6) {
      error.textContent = 'Type all six digits shown on the screen.';
      error.hidden = false;
      input.focus();
      return;
    }
    button.disabled = true;
    try {
      await live.request({ t: 'confirm', room: room.id, code });
      announce('Confirmed.');
    } catch (err) {
      error.textContent = err.code === 'bad_code'
        ? 'That is not the code on the screen now. Look again and type the six digits shown.'
        : err.code === 'rate_limited' ? 'Too many tries. Wait a minute, then type the code the screen shows.'
          : err.message;
      error.hidden = false;
      input.select();
    } finally {
      button.disabled = false;
    }
  }
  return h('form', { class: 'card outcome outcome-pending', dataset: { outcome: 'pending' }, onsubmit: submit, novalidate: true },
    h('span', { class: 'outcome-icon', 'aria-hidden': 'true' }, '✎'),
    h('h2', null, 'Confirm your approval'),
    h('p', { id: 'confirm-help' }, `${hostName} approved you. Type the six-digit code shown on ${hostName}'s screen to confirm you took part and agree. It counts only once you confirm.`),
    h('label', { class: 'label', for: 'confirm-input' }, 'Code from the screen'),
    h('div', { class: 'confirm-entry' }, input, button),
    error);
}
