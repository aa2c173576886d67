// Join a live room: /join/CODE from a QR code or link, or by typing the code.
import { h, field, replace, spinner } from '../ui.js';
import { live } from '../live.js';

export async function render({ main, params, go }) {
  const code = params[0] ? params[0].toUpperCase() : '';
  const input = h('input', { type: 'text', class: 'code-input', inputmode: 'numeric', autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false', maxlength: 16, value: code, name: 'code' });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-lg btn-block' }, 'Join');
  const card = h('section', { class: 'card card-narrow' });
  main.append(card);

  let active = true;
  async function join(c) {
    error.hidden = true;
    submit.disabled = true;
    submit.textContent = 'Joining…';
    try {
      const room = await live.join({ code: c });
      if (active) go(`/room/${encodeURIComponent(room.id)}`);
    } catch (e) {
      if (!active) return;
      showForm();
      error.textContent = e.code === 'not_found'
        ? 'No open room has this code. Check the code on the responsible\'s screen.'
        : e.code === 'forbidden'
          ? (e.message || 'You cannot join this room: it is for learners who have this training waiting.')
          : e.message;
      error.hidden = false;
      input.focus();
      input.select();
    }
  }

  function showForm() {
    submit.disabled = false;
    submit.textContent = 'Join';
    replace(card,
      h('h1', null, 'Join a live training'),
      h('p', { class: 'lead' }, 'Type the code on your responsible\'s screen, or scan their QR code with your camera.'),
      h('form', { class: 'stack', novalidate: true, onsubmit: (e) => {
        e.preventDefault();
        const c = input.value.trim().toUpperCase();
        if (!c) {
          error.textContent = 'Type the code first.';
          error.hidden = false;
          input.focus();
          return;
        }
        join(c);
      } }, field('Room code', input), error, submit));
  }

  if (code) {
    replace(card, h('h1', null, 'Joining the room…'), spinner(`Joining with code ${code}…`));
    join(code);
  } else {
    showForm();
    input.focus();
  }
  return () => { active = false; };
}
