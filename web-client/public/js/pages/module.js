// Taking an ordinary (non-OTJ) module alone: its questions, then
// "Complete module" (POST /api/modules/{id}/complete).
import { h, replace, toast, announce } from '../ui.js';
import { get, post, ApiError, normalisePaths } from '../api.js';
import { otjPopup } from './home.js';

export async function render({ main, params, query, go }) {
  const id = Number(params[0]);
  const pathId = Number(query.get('path')) || undefined;
  const paths = normalisePaths(await get('/api/me/paths'));
  let m = null;
  for (const p of paths) for (const x of p.modules) if (x.id === id && (!pathId || p.id === pathId || !m)) m = { ...x, path: p };
  if (!m) {
    main.append(h('section', { class: 'card' }, h('h1', null, 'Module not found'),
      h('p', null, 'This module is not in any of your learning paths.'), h('a', { href: '/#/learn' }, 'Back to my learning')));
    return;
  }
  let tasks = m.tasks;
  if (!tasks) {
    try {
      const full = await get(`/api/modules/${id}`);
      tasks = (full && (full.tasks || (full.module && full.module.tasks))) || [];
    } catch { tasks = []; }
  }
  const head = h('div', { class: 'page-head' }, h('div', null,
    h('p', { class: 'task-kicker' }, m.path.title),
    h('h1', null, m.title)), h('a', { href: '/#/learn' }, 'Back to my learning'));
  main.append(head);

  if (m.state === 'completed') {
    main.append(h('section', { class: 'card outcome outcome-approved' }, h('span', { class: 'outcome-icon', 'aria-hidden': 'true' }, '✓'), h('p', null, 'You have completed this module.')));
    return;
  }
  if (m.state === 'otj') {
    main.append(h('section', { class: 'card' }, h('p', null, 'This module is On-the-Job training and is completed together with a responsible.')));
    otjPopup(m);
    return;
  }
  if (m.state === 'locked') {
    main.append(h('section', { class: 'card' }, h('p', null, 'Finish the modules before this one first.')));
    return;
  }

  const answers = {};
  const questions = tasks.filter((t) => (t.kind || 'question') === 'question');
  const list = h('ol', { class: 'stack quiz' });
  tasks.forEach((t, i) => {
    if ((t.kind || 'question') !== 'question') return;
    const opts = t.options || [];
    const qid = `q${i}`;
    const control = opts.length
      ? h('div', { class: 'options', role: 'group', 'aria-labelledby': qid }, opts.map((o, j) => {
        const b = h('button', { type: 'button', class: 'option', 'aria-pressed': 'false', onclick: () => {
          answers[i] = j;
          const li = b.closest('li');
          li.classList.remove('wrong');
          li.querySelectorAll('.wrong-flag').forEach((x) => x.remove());
          for (const el of b.parentNode.children) el.setAttribute('aria-pressed', String(el === b));
          update();
        } }, h('span', { class: 'option-mark', 'aria-hidden': 'true' }, String.fromCharCode(65 + j)), o);
        return b;
      }))
      : h('textarea', { 'aria-labelledby': qid, oninput: (e) => { answers[i] = e.target.value; update(); } });
    list.append(h('li', { class: 'card', dataset: { task: i } }, h('p', { class: 'task-text', id: qid }, t.text), control));
  });
  const status = h('p', { class: 'muted', 'aria-live': 'polite' });
  const complete = h('button', { type: 'button', class: 'btn btn-primary btn-lg btn-block', onclick: submit }, 'Complete module');
  function update() {
    const n = Object.keys(answers).length;
    status.textContent = questions.length ? `${n} of ${questions.length} answered` : '';
    complete.disabled = n < questions.length;
  }
  async function submit() {
    complete.disabled = true;
    try {
      const arr = tasks.map((_, i) => (i in answers ? answers[i] : null));
      await post(`/api/modules/${id}/complete`, { answers: arr });
      replace(main, head, h('section', { class: 'card outcome outcome-approved', role: 'status' },
        h('span', { class: 'outcome-icon', 'aria-hidden': 'true' }, '✓'),
        h('h2', null, 'Module completed'), h('p', null, `Well done. ${m.title} is done; the next module in ${m.path.title} is open.`),
        h('a', { class: 'btn btn-primary', href: '/#/learn' }, 'Continue')));
      announce(`${m.title} completed.`);
    } catch (e) {
      for (const li of list.children) li.classList.remove('wrong');
      if (e instanceof ApiError && e.code === 'wrong_answers' && e.data && Array.isArray(e.data.wrong)) {
        for (const i of e.data.wrong) {
          const li = list.querySelector(`[data-task="${i}"]`);
          if (li) {
            li.classList.add('wrong');
            li.querySelector('.task-text').append(h('span', { class: 'badge badge-fail wrong-flag' }, '✗ Not right yet'));
          }
        }
      }
      status.textContent = e instanceof ApiError ? e.message : 'Could not complete the module.';
      toast(status.textContent, 'error');
      complete.disabled = false;
    }
  }
  main.append(questions.length ? list : h('section', { class: 'card' }, h('p', null, 'Read through the module, then mark it as completed.')),
    h('section', { class: 'card' }, status, complete));
  update();
}
