// Tumbleweed operator UI: hash routing, sign-in gate, page lifecycle.
// No framework and no build step: plain ES modules served by the sink.

import { getToken, clearToken, setUnauthorizedHandler } from './api.js';
import { h, replace } from './dom.js';
import { signInPage } from './pages/signin.js';
import { sourcesPage, sourceNewPage, sourceDetailPage } from './pages/sources.js';
import { consumersPage, consumerNewPage, consumerDetailPage } from './pages/consumers.js';
import { tailPage } from './pages/tail.js';
import { healthPage } from './pages/health.js';

const routes = [
  [/^\/sign-in$/, 'sign-in', signInPage],
  [/^\/sources$/, 'sources', sourcesPage],
  [/^\/sources\/new$/, 'sources', sourceNewPage],
  [/^\/sources\/([^/]+)$/, 'sources', sourceDetailPage],
  [/^\/consumers$/, 'consumers', consumersPage],
  [/^\/consumers\/new$/, 'consumers', consumerNewPage],
  [/^\/consumers\/([^/]+)$/, 'consumers', consumerDetailPage],
  [/^\/tail$/, 'tail', tailPage],
  [/^\/health$/, 'health', healthPage],
];

let current = null; // { ctrl: AbortController, cleanup }
let signInNotice = '';

/** Parses "#/path?x=1" into { path, query }. */
function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/sources';
  const [path, qs] = raw.split('?');
  return { path: path || '/sources', query: new URLSearchParams(qs || '') };
}

export function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function setNav(section) {
  const nav = document.getElementById('nav');
  nav.hidden = !getToken();
  for (const a of nav.querySelectorAll('a[data-section]')) {
    if (a.dataset.section === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function render() {
  if (current) {
    current.ctrl.abort();
    if (typeof current.cleanup === 'function') current.cleanup();
    current = null;
  }
  const { path, query } = parseHash();
  const main = document.getElementById('main');
  if (!getToken() && path !== '/sign-in') {
    const next = location.hash && !location.hash.startsWith('#/sign-in') ? location.hash : '';
    location.replace(`#/sign-in${next ? `?next=${encodeURIComponent(next)}` : ''}`);
    return;
  }
  let match = null;
  for (const [re, section, page] of routes) {
    const m = path.match(re);
    if (m) { match = { section, page, params: m.slice(1).map(decodeURIComponent) }; break; }
  }
  const ctrl = new AbortController();
  current = { ctrl, cleanup: null };
  if (!match) {
    setNav('');
    replace(main, h('h1', { tabindex: -1 }, 'Not found'), h('p', {}, 'No page at ', h('code', {}, path), '. ', h('a', { href: '#/sources' }, 'Go to sources')));
    focusHeading(main);
    return;
  }
  setNav(match.section);
  const ctx = { signal: ctrl.signal, query, params: match.params, go, notice: signInNotice };
  signInNotice = '';
  main.setAttribute('aria-busy', 'true');
  try {
    const cleanup = await match.page(main, ctx);
    if (current && current.ctrl === ctrl) current.cleanup = cleanup;
    else if (typeof cleanup === 'function') cleanup();
  } catch (e) {
    if (e.name !== 'AbortError') {
      replace(main, h('h1', { tabindex: -1 }, 'Something went wrong'), h('p', { class: 'error', role: 'alert' }, e.message));
    }
  } finally {
    main.removeAttribute('aria-busy');
  }
  const title = main.querySelector('h1');
  document.title = title ? `${title.textContent} · Tumbleweed` : 'Tumbleweed';
  focusHeading(main);
}

let firstRender = true;
function focusHeading(main) {
  // Move focus to the new page's heading so keyboard and screen-reader users start there
  // (not on the very first load, where the browser's own focus handling is expected).
  if (firstRender) { firstRender = false; return; }
  const h1 = main.querySelector('h1');
  if (h1 && !main.contains(document.activeElement)) {
    h1.setAttribute('tabindex', '-1');
    h1.focus({ preventScroll: false });
  }
}

setUnauthorizedHandler(() => {
  if (!getToken()) return;
  clearToken();
  signInNotice = 'The admin token was refused (it may have been rotated). Sign in again.';
  go('#/sign-in');
});

document.getElementById('sign-out').addEventListener('click', () => {
  clearToken();
  go('#/sign-in');
});

// The sink answers unknown paths with index.html: /consumers becomes #/consumers.
if (location.pathname !== '/' && location.pathname !== '/index.html') {
  location.replace(`/#${location.pathname}${location.search}`);
} else {
  window.addEventListener('hashchange', render);
  render();
}
