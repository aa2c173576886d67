// Login. Returns the person to where they were going (?next=, e.g. a join
// link opened from a QR code before logging in).
import { h, field } from '../ui.js';
import { api, ApiError } from '../api.js';
import { loggedIn } from '../app.js';

export function render({ main, query, me, go }) {
  const next = query.get('next') || '';
  if (me) { go(next || '/'); return; }
  const joining = /^\/join\//.test(next);
  const login = h('input', { name: 'login', type: 'text', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Log in');
  const form = h('form', { class: 'stack', novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    error.hidden = true;
    if (!login.value.trim() || !password.value) {
      error.textContent = 'Enter your login and your password.';
      error.hidden = false;
      (login.value.trim() ? password : login).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Logging in…';
    try {
      const r = await api('POST', '/api/login', { login: login.value.trim(), password: password.value });
      await loggedIn(r.user, next);
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 401
        ? 'Wrong login or password. Check both and try again.' : err.message;
      error.hidden = false;
      password.select();
      password.focus();
      submit.disabled = false;
      submit.textContent = 'Log in';
    }
  } },
  field('Login', login), field('Password', password), error, submit);

  main.append(h('section', { class: 'card card-narrow login' },
    h('h1', null, 'Log in'),
    h('p', { class: 'lead' }, joining
      ? 'Log in to join the live training. You will go straight to the room.'
      : 'On-the-Job training, live: join a drill from your phone, or run one for your team.'),
    form));
  login.focus();
}
