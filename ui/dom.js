// Small DOM helpers. Everything the API returns is inserted as text (never as HTML).

/**
 * Creates an element: h('a', {href: '#/x', class: 'btn'}, 'text', childNode, [more]).
 * Attributes starting with "on" are event listeners; `false`/`null` attributes are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

const announcer = () => document.getElementById('announce');

/** Reads a short message to screen-reader users (polite live region). */
export function announce(text) {
  const el = announcer();
  if (!el) return;
  el.textContent = '';
  // A fresh text node after a tick makes repeated messages announce again.
  setTimeout(() => { el.textContent = text; }, 30);
}

/** 1536 → "1.5 KiB". */
export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(n);
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function when(ms) {
  if (!ms) return '—';
  const d = new Date(ms);
  return h('time', { datetime: d.toISOString(), title: d.toISOString() }, d.toLocaleString());
}

/** A state word as a coloured badge (the word itself carries the meaning, not the colour). */
export function badge(text, kind) {
  const t = String(text ?? 'unknown');
  const k = kind || stateKind(t);
  return h('span', { class: `badge badge-${k}` }, t);
}

export function stateKind(s) {
  switch (String(s).toUpperCase()) {
    case 'RUNNING': case 'OK': case 'REACHABLE': case 'RESERVED': case 'ACTIVE': return 'ok';
    case 'PAUSED': case 'STOPPED': case 'UNASSIGNED': case 'WARN': case 'EXTENDED': case 'UNRESERVED': case 'RESTARTING': return 'warn';
    case 'FAILED': case 'CRITICAL': case 'LOST': case 'UNREACHABLE': return 'bad';
    default: return 'neutral';
  }
}

/** Copies text to the clipboard; falls back to a selection + execCommand on plain http. */
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch { /* fall through */ }
  const ta = h('textarea', { class: 'visually-hidden', readonly: true });
  ta.value = text;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { ok = false; }
  ta.remove();
  return ok;
}

/** A read-only code block with a "Copy" button; `label` names both. */
export function copyBlock(label, text, id) {
  const status = h('span', { class: 'copy-status', role: 'status' });
  const code = h('pre', { class: 'code', id, tabindex: 0, 'aria-label': label }, h('code', {}, text));
  const btn = h('button', {
    type: 'button',
    class: 'secondary',
    'aria-describedby': id,
    onclick: async () => {
      const ok = await copyText(text);
      status.textContent = ok ? 'Copied.' : 'Copy failed: select the text and copy it.';
      setTimeout(() => { status.textContent = ''; }, 4000);
    },
  }, `Copy ${label}`);
  return h('div', { class: 'copy-block' }, h('p', { class: 'copy-label' }, h('strong', {}, label)), code, h('p', {}, btn, ' ', status));
}

/**
 * Asks for confirmation in the page's modal <dialog>; resolves true when confirmed.
 * `body` is a node or text; `ok` the label of the destructive button. With `typed`, the
 * destructive button stays disabled until that exact text is typed back (for what cannot be
 * undone, such as dropping a replication slot).
 */
export function confirmDialog(title, body, ok = 'Delete', { typed } = {}) {
  const dlg = document.getElementById('confirm');
  const okBtn = document.getElementById('confirm-ok');
  document.getElementById('confirm-title').textContent = title;
  let input = null;
  if (typed) {
    input = h('input', { type: 'text', id: 'confirm-typed', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'confirm-typed-hint' });
    const sync = () => { okBtn.disabled = input.value !== typed; };
    input.addEventListener('input', sync);
    replace(document.getElementById('confirm-body'), h('div', {}, body,
      h('label', { for: 'confirm-typed' }, 'Type ', h('code', {}, typed), ' to confirm'),
      input,
      h('p', { class: 'hint', id: 'confirm-typed-hint' }, 'The button is enabled once the name matches.')));
    sync();
  } else {
    replace(document.getElementById('confirm-body'), body);
    okBtn.disabled = false;
  }
  okBtn.textContent = ok;
  const opener = document.activeElement;
  return new Promise((resolve) => {
    dlg.returnValue = '';
    dlg.addEventListener('close', () => {
      if (opener && opener.isConnected) opener.focus();
      resolve(dlg.returnValue === 'ok' && (!typed || (input && input.value === typed)));
      okBtn.disabled = false;
    }, { once: true });
    dlg.showModal();
    if (input) input.focus();
  });
}
