// Admin: the module maker (question and observe tasks, General settings with
// the On-the-Job training switch), learning paths, sharings, permissions
// (Management with Facilitate OTJ) and departments.
import { h, replace, toast, announce, field, dialog } from '../ui.js';
import { get, post, patch, put, del, list } from '../api.js';
import { audit } from './admin-audit.js';

const TABS = [
  ['modules', 'Modules'], ['paths', 'Learning paths'], ['sharings', 'Sharings'],
  ['permissions', 'Permissions'], ['departments', 'Departments'], ['audit', 'Audit'],
];
const TYPES = [['quiz', 'Quiz'], ['content', 'Content'], ['video', 'Video'], ['document', 'Document']];

export async function render(ctx) {
  const { main, me, params } = ctx;
  if (!me.admin) {
    main.append(h('section', { class: 'card' }, h('h1', null, 'Admin'), h('p', null, 'Only administrators can open this page.')));
    return;
  }
  const tab = params[0] || 'modules';
  main.append(h('div', { class: 'page-head' }, h('h1', null, 'Admin'),
    h('a', { href: '/#/completions' }, 'Completions and CSV export')),
  h('nav', { class: 'tabs', 'aria-label': 'Admin sections' }, TABS.map(([id, label]) =>
    h('a', { class: 'tab', href: `/#/admin/${id}`, 'aria-current': id === tab ? 'page' : null }, label))));
  const body = h('div');
  main.append(body);
  const pages = { modules, paths, sharings, permissions, departments, audit };
  await (pages[tab] || modules)(body, ctx);
}

function errorText(e) {
  return e && e.message ? e.message : 'That did not work.';
}

// ---- module maker ------------------------------------------------------------

async function modules(body, { params, go }) {
  const items = list(await get('/api/admin/modules'));
  const sel = params[1];
  const current = sel === 'new' ? { title: '', type: 'quiz', otj: false, tasks: [] }
    : items.find((m) => String(m.id) === sel) || null;
  const editor = h('section', { class: 'card', 'aria-labelledby': 'editor-h' });
  body.append(h('div', { class: 'two-col' },
    h('section', { class: 'card', 'aria-labelledby': 'mods-h' },
      h('div', { class: 'spread' }, h('h2', { id: 'mods-h' }, 'Modules'), h('a', { class: 'btn btn-primary btn-sm', href: '/#/admin/modules/new' }, '+ New module')),
      h('ul', { class: 'pick-list' }, items.map((m) => h('li', null, h('a', { href: `/#/admin/modules/${m.id}`, 'aria-current': String(m.id) === sel ? 'true' : null },
        h('span', null, m.title), h('span', { class: 'row' }, m.otj ? h('span', { class: 'badge badge-otj' }, 'OTJ') : null, m.otj && m.validity_months ? h('span', { class: 'muted' }, `${m.validity_months} mo`) : null, h('span', { class: 'muted' }, m.type))))))),
    editor));
  if (!current) {
    replace(editor, h('h2', { id: 'editor-h' }, 'Module maker'), h('p', { class: 'muted' }, 'Pick a module to change it, or make a new one.'));
    return;
  }
  moduleEditor(editor, current, go);
}

function moduleEditor(el, mod, go) {
  const m = { title: mod.title, type: mod.type, otj: !!mod.otj, validity: mod.validity_months ?? null, confirm: !!mod.learner_confirm, learnerEvidence: !!mod.learner_evidence, tasks: (mod.tasks || []).map((t) => ({ ...t, options: t.options ? [...t.options] : [] })) };
  const isNew = mod.id === undefined;
  const title = h('input', { type: 'text', value: m.title, maxlength: 127, required: true, oninput: (e) => { m.title = e.target.value; } });
  const type = h('select', { onchange: (e) => { m.type = e.target.value; drawSettings(); drawTasks(); } },
    TYPES.map(([v, l]) => h('option', { value: v, selected: v === m.type }, l)));
  const otj = h('input', { type: 'checkbox', id: 'otj-toggle', checked: m.otj, onchange: (e) => { m.otj = e.target.checked; drawSettings(); } });
  const otjReason = h('p', { class: 'hint', id: 'otj-reason' });
  // Recertification: months an approval stays valid; empty = forever
  const validity = h('input', { type: 'number', id: 'validity-months', min: 1, max: 120, step: 1, inputmode: 'numeric', placeholder: 'forever',
    value: m.validity ?? '', 'aria-describedby': 'validity-hint', oninput: (e) => { m.validity = e.target.value.trim() === '' ? null : Number(e.target.value); } });
  const validityField = h('div', { class: 'field', id: 'validity-field' },
    h('label', { for: 'validity-months' }, 'Approval valid for (months)'), validity,
    h('p', { class: 'hint', id: 'validity-hint' }, 'Empty: an approval never expires. With 12, an approval expires a year after it was given, the module becomes the learner\'s next OTJ again, and the responsible sees them under “Due for re-drill” 30 days before.'));
  const confirm = h('input', { type: 'checkbox', id: 'confirm-toggle', checked: m.confirm, onchange: (e) => { m.confirm = e.target.checked; } });
  const confirmWrap = h('div', null,
    h('label', { class: 'toggle', for: 'confirm-toggle' }, confirm, h('span', null, h('strong', null, 'Learner confirms the approval'))),
    h('p', { class: 'hint', id: 'confirm-hint' }, 'An approval counts only once the learner types, on their own phone, the code the room screen shows. Use it where you need proof that the learner took part and agrees.'));
  const learnerEvidence = h('input', { type: 'checkbox', id: 'learner-evidence-toggle', checked: m.learnerEvidence, onchange: (e) => { m.learnerEvidence = e.target.checked; } });
  const learnerEvidenceWrap = h('div', null,
    h('label', { class: 'toggle', for: 'learner-evidence-toggle' }, learnerEvidence, h('span', null, h('strong', null, 'Learners may attach evidence'))),
    h('p', { class: 'hint', id: 'learner-evidence-hint' }, 'On an observe task the learner can add a photo or file from their own phone. Only they and the responsible see it.'));
  const typeHint = h('p', { class: 'hint', id: 'type-hint' });
  const tasksEl = h('div', { class: 'stack' });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });

  function drawSettings() {
    const quiz = m.type === 'quiz';
    otj.disabled = !quiz;
    if (!quiz && m.otj) { m.otj = false; otj.checked = false; }
    otjReason.textContent = quiz
      ? 'Learners cannot complete this module alone: a responsible in their department or above runs it with them and approves it.'
      : 'Only quiz modules can be On-the-Job training. Change the type to Quiz to switch it on.';
    for (const o of type.options) o.disabled = m.otj && o.value !== 'quiz';
    typeHint.textContent = m.otj ? 'The type stays Quiz while On-the-Job training is on.' : '';
    validityField.hidden = !m.otj;
    confirmWrap.hidden = !m.otj;
    learnerEvidenceWrap.hidden = !m.otj;
  }

  function drawTasks() {
    if (m.type !== 'quiz') {
      replace(tasksEl, h('p', { class: 'muted' }, 'Tasks belong to quiz modules.'));
      return;
    }
    replace(tasksEl, m.tasks.map((t, i) => {
      const kind = h('select', { 'aria-label': `Task ${i + 1} kind`, onchange: (e) => { t.kind = e.target.value; if (t.kind === 'observe') { t.options = []; delete t.correct; } drawTasks(); } },
        h('option', { value: 'question', selected: t.kind === 'question' }, 'Question (the learner answers)'),
        h('option', { value: 'observe', selected: t.kind === 'observe' }, 'Observe (the responsible marks pass or fail)'));
      const text = h('textarea', { oninput: (e) => { t.text = e.target.value; } });
      text.value = t.text || '';
      const parts = [h('div', { class: 'task-edit-head' }, h('strong', null, `Task ${i + 1}`),
        h('div', { class: 'row' },
          h('button', { type: 'button', class: 'btn btn-ghost btn-sm', disabled: i === 0, 'aria-label': `Move task ${i + 1} up`, onclick: () => { m.tasks.splice(i - 1, 0, m.tasks.splice(i, 1)[0]); drawTasks(); } }, '↑'),
          h('button', { type: 'button', class: 'btn btn-ghost btn-sm', disabled: i === m.tasks.length - 1, 'aria-label': `Move task ${i + 1} down`, onclick: () => { m.tasks.splice(i + 1, 0, m.tasks.splice(i, 1)[0]); drawTasks(); } }, '↓'),
          h('button', { type: 'button', class: 'btn btn-danger btn-sm', 'aria-label': `Delete task ${i + 1}`, onclick: () => { m.tasks.splice(i, 1); drawTasks(); } }, 'Delete'))),
      field('Kind', kind), field(t.kind === 'observe' ? 'What the responsible watches for' : 'Question', text)];
      if (t.kind === 'question') {
        const opts = h('textarea', { oninput: (e) => { t.options = e.target.value.split('\n').map((s) => s.trim()).filter(Boolean); drawCorrect(); } });
        opts.value = (t.options || []).join('\n');
        const correct = h('select', { onchange: (e) => { t.correct = e.target.value === '' ? undefined : Number(e.target.value); } });
        function drawCorrect() {
          replace(correct, h('option', { value: '' }, 'No right answer (any answer counts)'),
            (t.options || []).map((o, j) => h('option', { value: j, selected: t.correct === j }, o)));
          if (t.correct !== undefined && t.correct >= (t.options || []).length) t.correct = undefined;
        }
        drawCorrect();
        parts.push(field('Options, one per line', opts, 'At least two; leave empty for a free-text answer.'), field('Right answer', correct));
      }
      return h('div', { class: 'task-edit', dataset: { task: i } }, parts);
    }),
    h('div', { class: 'row' },
      h('button', { type: 'button', class: 'btn btn-secondary btn-sm', onclick: () => { m.tasks.push({ kind: 'question', text: '', options: [] }); drawTasks(); } }, '+ Question'),
      h('button', { type: 'button', class: 'btn btn-secondary btn-sm', onclick: () => { m.tasks.push({ kind: 'observe', text: '' }); drawTasks(); } }, '+ Observe task')));
  }

  async function save(e) {
    e.preventDefault();
    error.hidden = true;
    const payload = { title: m.title.trim(), type: m.type, otj: m.otj, learner_confirm: m.otj && m.confirm, learner_evidence: m.otj && m.learnerEvidence };
    if (m.otj) payload.validity_months = m.validity;
    if (m.type === 'quiz') {
      payload.tasks = m.tasks.map((t) => {
        const o = { kind: t.kind, text: (t.text || '').trim() };
        if (t.kind === 'question' && t.options && t.options.length) {
          o.options = t.options;
          if (t.correct !== undefined) o.correct = t.correct;
        }
        return o;
      });
    }
    try {
      const saved = isNew ? await post('/api/admin/modules', payload) : await patch(`/api/admin/modules/${mod.id}`, payload);
      toast(`${saved.title || payload.title} is saved.`, 'success');
      go(`/admin/modules/${saved.id ?? mod.id}`);
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    }
  }

  replace(el, h('h2', { id: 'editor-h' }, isNew ? 'New module' : `Module maker: ${mod.title}`),
    h('form', { class: 'stack', onsubmit: save, novalidate: true },
      field('Title', title),
      h('fieldset', { class: 'settings-group' }, h('legend', null, 'General settings'),
        h('div', { class: 'stack' },
          field('Type', type), typeHint,
          h('div', null,
            h('label', { class: 'toggle', for: 'otj-toggle' }, otj, h('span', null, h('strong', null, 'On-the-Job training (OTJ)'))),
            otjReason),
          validityField, confirmWrap, learnerEvidenceWrap)),
      h('fieldset', { class: 'settings-group' }, h('legend', null, 'Tasks'), tasksEl),
      error,
      h('div', { class: 'row' }, h('button', { type: 'submit', class: 'btn btn-primary' }, isNew ? 'Create module' : 'Save changes'))));
  otj.setAttribute('aria-describedby', 'otj-reason');
  confirm.setAttribute('aria-describedby', 'confirm-hint');
  learnerEvidence.setAttribute('aria-describedby', 'learner-evidence-hint');
  type.setAttribute('aria-describedby', 'type-hint');
  drawSettings();
  drawTasks();
}

// ---- learning paths ----------------------------------------------------------

async function paths(body, { params, go }) {
  const [pl, ml] = await Promise.all([get('/api/admin/paths'), get('/api/admin/modules')]);
  const items = list(pl);
  const mods = list(ml);
  const title = (id) => (mods.find((x) => x.id === id) || {}).title || `Module ${id}`;
  const sel = params[1];
  const current = sel === 'new' ? { title: '', modules: [] } : items.find((p) => String(p.id) === sel);
  const editor = h('section', { class: 'card', 'aria-labelledby': 'path-h' });
  body.append(h('div', { class: 'two-col' },
    h('section', { class: 'card', 'aria-labelledby': 'paths-h' },
      h('div', { class: 'spread' }, h('h2', { id: 'paths-h' }, 'Learning paths'), h('a', { class: 'btn btn-primary btn-sm', href: '/#/admin/paths/new' }, '+ New path')),
      h('ul', { class: 'pick-list' }, items.map((p) => h('li', null, h('a', { href: `/#/admin/paths/${p.id}`, 'aria-current': String(p.id) === sel ? 'true' : null },
        h('span', null, p.title), h('span', { class: 'muted' }, `${(p.modules || []).length} modules`)))))),
    editor));
  if (!current) {
    replace(editor, h('h2', { id: 'path-h' }, 'Path'), h('p', { class: 'muted' }, 'Pick a path, or make a new one. A path is an ordered list of modules; learners take them in order.'));
    return;
  }
  const order = (current.modules || []).map((x) => (typeof x === 'object' ? x.id : x));
  const t = h('input', { type: 'text', value: current.title, maxlength: 127 });
  const ol = h('ol', { class: 'ordered', 'aria-label': 'Modules in order' });
  const add = h('select');
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  function draw() {
    replace(ol, order.map((id, i) => h('li', null, h('strong', null, `${i + 1}.`), h('span', null, title(id)),
      h('button', { type: 'button', class: 'btn btn-ghost btn-sm', disabled: i === 0, 'aria-label': `Move ${title(id)} up`, onclick: () => { order.splice(i - 1, 0, order.splice(i, 1)[0]); draw(); } }, '↑'),
      h('button', { type: 'button', class: 'btn btn-ghost btn-sm', disabled: i === order.length - 1, 'aria-label': `Move ${title(id)} down`, onclick: () => { order.splice(i + 1, 0, order.splice(i, 1)[0]); draw(); } }, '↓'),
      h('button', { type: 'button', class: 'btn btn-danger btn-sm', 'aria-label': `Remove ${title(id)} from the path`, onclick: () => { order.splice(i, 1); draw(); } }, 'Remove'))));
    if (!order.length) ol.append(h('li', { class: 'muted' }, 'No modules yet.'));
    replace(add, mods.filter((x) => !order.includes(x.id)).map((x) => h('option', { value: x.id }, `${x.title}${x.otj ? ' (OTJ)' : ''}`)));
  }
  draw();
  replace(editor, h('h2', { id: 'path-h' }, sel === 'new' ? 'New learning path' : current.title),
    h('form', { class: 'stack', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      error.hidden = true;
      try {
        const payload = { title: t.value.trim(), modules: order };
        const saved = sel === 'new' ? await post('/api/admin/paths', payload) : await patch(`/api/admin/paths/${current.id}`, payload);
        toast(`${payload.title} is saved.`, 'success');
        go(`/admin/paths/${saved.id ?? current.id}`);
      } catch (err) {
        error.textContent = errorText(err);
        error.hidden = false;
      }
    } },
    field('Title', t), h('div', null, h('p', { class: 'label' }, 'Modules, in order'), ol),
    h('div', { class: 'row' }, h('div', { class: 'field' }, h('label', { for: 'add-mod' }, 'Add a module'), add),
      h('button', { type: 'button', class: 'btn btn-secondary', onclick: () => { if (add.value) { order.push(Number(add.value)); draw(); } } }, 'Add')),
    error, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save path')));
  add.id = 'add-mod';
}

// ---- sharings ----------------------------------------------------------------

async function sharings(body) {
  const [sl, pl, ul, dl] = await Promise.all([get('/api/admin/sharings'), get('/api/admin/paths'), get('/api/admin/users'), get('/api/admin/departments')]);
  let items = list(sl);
  const ps = list(pl);
  const us = list(ul);
  const ds = list(dl);
  const nameOf = (arr, id, key = 'name') => (arr.find((x) => x.id === id) || {})[key] || `#${id}`;
  const tbody = h('tbody');
  function draw() {
    replace(tbody, items.map((s) => h('tr', null,
      h('td', null, nameOf(ps, s.path_id, 'title')),
      h('td', null, s.department_id ? ['Department ', h('strong', null, nameOf(ds, s.department_id)), h('span', { class: 'muted' }, ' and below')] : ['Person ', h('strong', null, nameOf(us, s.user_id))]),
      h('td', null, h('button', { type: 'button', class: 'btn btn-danger btn-sm', 'aria-label': `Stop sharing ${nameOf(ps, s.path_id, 'title')}`, onclick: async () => {
        try {
          await del(`/api/admin/sharings/${s.id}`);
          items = items.filter((x) => x.id !== s.id);
          draw();
          announce('The sharing is removed.');
        } catch (e) { toast(errorText(e), 'error'); }
      } }, 'Remove')))));
    if (!items.length) tbody.append(h('tr', null, h('td', { colspan: 3, class: 'empty' }, 'Nothing is shared yet.')));
  }
  const path = h('select', null, ps.map((p) => h('option', { value: p.id }, p.title)));
  const kind = h('select', { onchange: () => drawTarget() }, h('option', { value: 'department' }, 'A department (and everyone below it)'), h('option', { value: 'user' }, 'One person'));
  const target = h('select');
  function drawTarget() {
    replace(target, kind.value === 'user'
      ? us.map((u) => h('option', { value: u.id }, `${u.name} (${u.login})`))
      : ds.map((d) => h('option', { value: d.id }, d.name)));
  }
  drawTarget();
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  body.append(h('section', { class: 'card', 'aria-labelledby': 'share-h' }, h('h2', { id: 'share-h' }, 'Share a learning path'),
    h('form', { class: 'stack', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      error.hidden = true;
      const payload = { path_id: Number(path.value) };
      payload[kind.value === 'user' ? 'user_id' : 'department_id'] = Number(target.value);
      try {
        const s = await post('/api/admin/sharings', payload);
        items = [...items, { ...payload, user_id: payload.user_id || null, department_id: payload.department_id || null, ...s }];
        draw();
        toast('The path is shared.', 'success');
      } catch (err) {
        error.textContent = errorText(err);
        error.hidden = false;
      }
    } }, field('Path', path), field('Share with', kind), field(kind.value === 'user' ? 'Person' : 'Who', target), error,
    h('button', { type: 'submit', class: 'btn btn-primary' }, 'Share'))),
  h('section', { class: 'card', 'aria-labelledby': 'shares-h' }, h('h2', { id: 'shares-h' }, 'Sharings'),
    h('div', { class: 'table-wrap' }, h('table', null, h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Path'), h('th', { scope: 'col' }, 'Shared with'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))), tbody))));
  draw();
}

// ---- permissions -------------------------------------------------------------

async function permissions(body, { me }) {
  const users = list(await get('/api/admin/users'));
  const tbody = h('tbody');
  // Deactivating logs the person out everywhere at once and keeps them out;
  // their completions stay. Reactivating lets them log in again.
  async function setActive(u, active) {
    if (!active) {
      const r = await dialog({
        title: `Deactivate ${u.name}?`,
        body: h('p', null, `${u.name} is logged out on every device at once and can no longer log in. Their completions and the audit log stay. You can reactivate them later.`),
        actions: [{ label: 'Cancel', kind: 'ghost' }, { label: 'Deactivate', kind: 'danger' }],
      });
      if (r !== 'Deactivate') return;
    }
    try {
      const nu = await patch(`/api/admin/users/${u.id}`, { active });
      Object.assign(u, nu);
      announce(`${u.name} is ${u.active ? 'active again' : 'deactivated'}.`);
    } catch (e) { toast(errorText(e), 'error'); }
    const r = row(u);
    tbody.querySelector(`tr[data-login="${CSS.escape(u.login)}"]`).replaceWith(r);
    r.querySelector('.account-toggle')?.focus();
  }
  function row(u) {
    const mg = h('input', { type: 'checkbox', checked: !!u.management, 'aria-label': `Management for ${u.name}` });
    const fac = h('input', { type: 'checkbox', checked: !!u.facilitate_otj, disabled: !u.management, 'aria-label': `Facilitate On-the-Job training for ${u.name}` });
    async function saveP(management, facilitate, which) {
      mg.disabled = fac.disabled = true;
      try {
        const nu = await put(`/api/admin/users/${u.id}/permissions`, { management, facilitate_otj: facilitate });
        Object.assign(u, nu);
        announce(`${u.name}: Management ${u.management ? 'on' : 'off'}, Facilitate OTJ ${u.facilitate_otj ? 'on' : 'off'}.`);
      } catch (e) { toast(errorText(e), 'error'); }
      const r = row(u);
      tr.replaceWith(r);
      r.querySelectorAll('input[type=checkbox]')[which].focus();
    }
    mg.addEventListener('change', () => saveP(mg.checked, mg.checked ? fac.checked : false, 0));
    fac.addEventListener('change', () => saveP(true, fac.checked, 1));
    const tr = h('tr', { dataset: { login: u.login } },
      h('th', { scope: 'row' }, u.name, h('div', { class: 'muted' }, u.login)),
      h('td', null, u.department && (u.department.name || u.department)),
      h('td', null, h('label', { class: 'check' }, mg, 'Management')),
      h('td', null, h('label', { class: 'check' }, fac, 'Facilitate OTJ')),
      h('td', null, u.responsible || (u.management && u.facilitate_otj) ? h('span', { class: 'badge badge-done' }, '✓ Responsible') : u.admin ? h('span', { class: 'badge badge-next' }, 'Admin') : null),
      h('td', null, u.active === false && h('span', { class: 'badge badge-locked' }, 'Deactivated'),
        me && u.id !== me.id && h('button', {
          type: 'button', class: `btn btn-sm account-toggle ${u.active === false ? 'btn-secondary' : 'btn-ghost'}`,
          'aria-label': `${u.active === false ? 'Reactivate' : 'Deactivate'} ${u.name}`,
          onclick: () => setActive(u, u.active === false),
        }, u.active === false ? 'Reactivate' : 'Deactivate')));
    return tr;
  }
  replace(tbody, users.map(row));
  body.append(h('section', { class: 'card', 'aria-labelledby': 'perm-h' }, h('h2', { id: 'perm-h' }, 'Permissions'),
    h('p', { class: 'muted' }, 'A responsible has Management with “Facilitate On-the-Job training (OTJ)” ticked. They see waiting OTJ on their dashboard and can approve learners in their department and below. Changes reach open sessions at once; a deactivated person is logged out everywhere and cannot log in, and their completions stay.'),
    h('div', { class: 'table-wrap' }, h('table', { class: 'stack-table' }, h('thead', null, h('tr', null, ['Person', 'Department', 'Management', 'Facilitate OTJ', 'Role', 'Account'].map((x) => h('th', { scope: 'col' }, x)))), tbody))));
}

// ---- departments -------------------------------------------------------------

async function departments(body, { go }) {
  const ds = list(await get('/api/admin/departments'));
  const kids = (pid) => ds.filter((d) => (d.parent_id || null) === pid);
  function tree(pid) {
    const k = kids(pid);
    if (!k.length) return null;
    return h('ul', { class: 'tree' }, k.map((d) => h('li', null,
      h('span', { class: 'row' }, h('strong', null, d.name),
        h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'aria-label': `Rename ${d.name}`, onclick: () => rename(d) }, 'Rename')),
      tree(d.id))));
  }
  async function rename(d) {
    const input = h('input', { type: 'text', value: d.name, maxlength: 127 });
    const r = await dialog({ title: `Rename ${d.name}`, body: field('Name', input), actions: [{ label: 'Cancel', kind: 'ghost' }, { label: 'Save', kind: 'primary' }] });
    if (r !== 'Save') return;
    try {
      await patch(`/api/admin/departments/${d.id}`, { name: input.value.trim() });
      toast('Renamed.', 'success');
      go('/admin/departments');
    } catch (e) { toast(errorText(e), 'error'); }
  }
  const name = h('input', { type: 'text', maxlength: 127 });
  const parent = h('select', null, h('option', { value: '' }, '— top level —'), ds.map((d) => h('option', { value: d.id }, d.name)));
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  body.append(h('div', { class: 'two-col' },
    h('section', { class: 'card', 'aria-labelledby': 'newdep-h' }, h('h2', { id: 'newdep-h' }, 'New department'),
      h('form', { class: 'stack', novalidate: true, onsubmit: async (e) => {
        e.preventDefault();
        error.hidden = true;
        try {
          await post('/api/admin/departments', { name: name.value.trim(), parent_id: parent.value ? Number(parent.value) : null });
          toast(`${name.value.trim()} is added.`, 'success');
          go('/admin/departments');
        } catch (err) {
          error.textContent = errorText(err);
          error.hidden = false;
        }
      } }, field('Name', name), field('Inside', parent), error, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Add department'))),
    h('section', { class: 'card', 'aria-labelledby': 'deps-h' }, h('h2', { id: 'deps-h' }, 'Departments'),
      h('p', { class: 'muted' }, 'A responsible reaches their own department and every department below it.'), tree(null))));
}
