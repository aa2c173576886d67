// Evidence on a mark: a photo from the phone camera or a file (JPEG, PNG,
// PDF), uploaded to POST /api/evidence with the session, then named by the
// mark (its `evidence` hash). The server checks the content, drops a photo's
// location data and serves the file only to the room's responsible, that
// learner and administrators; a thumbnail here is simply that URL.
import { h } from './ui.js';
import { ApiError } from './api.js';

export const evidenceUrl = (hash) => `/api/evidence/${encodeURIComponent(hash)}`;

// Uploads `file` for one learner's task in a room. Resolves with
// {hash, type, size}; throws an ApiError whose message a person can act on.
export async function uploadEvidence(roomId, learner, task, file) {
  const q = new URLSearchParams({ room: roomId, learner: String(learner), task: String(task) });
  let r;
  try {
    // octet-stream: the server decides the type by the content, and a page
    // of another site cannot send this type with our cookie without asking
    r = await fetch(`/api/evidence?${q}`, {
      method: 'POST', credentials: 'same-origin', body: file,
      headers: { accept: 'application/json', 'content-type': 'application/octet-stream' },
    });
  } catch {
    throw new ApiError(0, 'offline', 'The file could not be sent. Check your connection and try again.');
  }
  let data = null;
  try { data = await r.json(); } catch { /* no JSON */ }
  if (!r.ok) {
    const msgs = {
      413: 'That file is too large for the server (at most 5 MB by default). Take the photo again at a lower resolution.',
      415: 'Only photos (JPEG or PNG) and PDF files can be attached.',
      507: 'The server\'s disk is full, so the file was not stored. The mark is unchanged; tell the administrator.',
    };
    throw new ApiError(r.status, (data && data.error) || 'error', msgs[r.status] || (data && data.message) || `The server answered ${r.status}.`);
  }
  return data;
}

// The thumbnail of a mark's evidence, a link to the full file. A PDF (or a
// file the browser cannot draw) shows as a file link instead.
export function evidenceThumb(hash, label) {
  const link = h('a', { class: 'evidence', href: evidenceUrl(hash), target: '_blank', rel: 'noopener', dataset: { evidence: hash } });
  const img = h('img', {
    class: 'evidence-thumb', src: evidenceUrl(hash), alt: label, loading: 'lazy', width: 96, height: 72,
    onerror: () => { img.replaceWith(h('span', { class: 'evidence-file' }, 'Attached file')); },
  });
  link.append(img);
  return link;
}

// The two ways to attach: the camera (a phone opens it directly) and a file.
// onFile(file) runs with the chosen one.
export function evidencePickers(label, onFile, focusKey) {
  const pick = (text, props, key) => {
    const input = h('input', { type: 'file', class: 'sr-only', dataset: { focus: `${focusKey}-${key}` }, ...props, onchange: (e) => {
      const f = e.target.files && e.target.files[0];
      e.target.value = '';
      if (f) onFile(f);
    } });
    return h('label', { class: 'notebtn evidence-pick' }, text, input);
  };
  return h('span', { class: 'evidence-picks' },
    pick('+ Photo', { accept: 'image/*', capture: 'environment', 'aria-label': `Take a photo for ${label}` }, 'photo'),
    pick('+ File', { accept: 'image/jpeg,image/png,application/pdf', 'aria-label': `Attach a file for ${label}` }, 'file'));
}
