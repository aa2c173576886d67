// Small DOM helpers shared by every page: element building without
// innerHTML (so no markup is ever built from data), announcements for screen
// readers, and a modal dialog built on the native <dialog> element.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected' || k === 'hidden') el[k] = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// Polite announcement (status changes); assertive ones for errors.
let politeTimer;
export function announce(msg, assertive = false) {
  const region = document.getElementById(assertive ? 'announce-alert' : 'announce');
  if (!region) return;
  region.textContent = '';
  clearTimeout(politeTimer);
  // a fresh text node after a tick is what makes screen readers speak again
  politeTimer = setTimeout(() => { region.textContent = msg; }, 30);
}

// A short message at the bottom of the screen that also gets announced.
export function toast(msg, kind = 'info') {
  const host = document.getElementById('toasts');
  if (!host) return;
  const t = h('div', { class: `toast toast-${kind}` }, msg);
  host.appendChild(t);
  announce(msg, kind === 'error');
  setTimeout(() => t.remove(), 5000);
}

// A modal dialog. `body` is a node or list of nodes; `actions` a list of
// {label, kind, onClick} (onClick returning false keeps the dialog open).
// Resolves with the label of the action taken, or null when dismissed.
export function dialog({ title, body, actions = [{ label: 'Close', kind: 'primary' }], id }) {
  return new Promise((resolve) => {
    const titleId = `dlg-title-${Math.random().toString(36).slice(2, 8)}`;
    const buttons = actions.map((a) => h('button', {
      type: 'button', class: `btn btn-${a.kind || 'secondary'}`,
      onclick: async () => {
        if (a.onClick && (await a.onClick()) === false) return;
        close(a.label);
      },
    }, a.label));
    const d = h('dialog', { class: 'dialog', 'aria-labelledby': titleId, id },
      h('h2', { id: titleId, class: 'dialog-title' }, title),
      h('div', { class: 'dialog-body' }, body),
      h('div', { class: 'dialog-actions' }, buttons));
    let done = false;
    function close(result) {
      if (done) return;
      done = true;
      d.close();
      d.remove();
      resolve(result);
    }
    d.addEventListener('cancel', (e) => { e.preventDefault(); close(null); });
    document.body.appendChild(d);
    d.showModal();
    (buttons[buttons.length - 1] || d).focus();
  });
}

// A day without the time ("3 Dec 2026"), for validity dates.
export function fmtDay(v) {
  if (v === undefined || v === null || v === '') return '';
  const d = new Date(typeof v === 'number' && v < 1e12 ? v * 1000 : v);
  if (Number.isNaN(d.getTime())) return String(v);
  return d.toLocaleDateString(undefined, { dateStyle: 'medium' });
}

export function fmtDate(v) {
  if (v === undefined || v === null || v === '') return '';
  const d = typeof v === 'number' ? new Date(v < 1e12 ? v * 1000 : v) : new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

// A clock time, "10:42", from unix seconds.
export function fmtTime(sec) {
  return new Date(sec * 1000).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
}

export function initials(name = '') {
  return name.split(/\s+/).filter(Boolean).slice(0, 2).map((s) => s[0].toUpperCase()).join('');
}

// A labelled form field: <label for> + control + optional hint.
let fieldSeq = 0;
export function field(label, control, hint) {
  const id = control.id || `f${++fieldSeq}`;
  control.id = id;
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

export function spinner(label = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), label);
}

// Re-renders inside `container` with fn(), then puts the focus back on the
// element with the same data-focus key, so live updates never steal the
// place of a keyboard or screen-reader user.
export function keepFocus(container, fn) {
  const active = document.activeElement;
  const k = active && container.contains(active) ? active.dataset.focus : null;
  fn();
  if (k) {
    const again = container.querySelector(`[data-focus="${CSS.escape(k)}"]`);
    if (again) again.focus({ preventScroll: true });
  }
}
