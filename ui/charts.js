// Small time-series charts drawn as inline SVG from the sink's health history (GET /v1/stats):
// no chart library, no CDN, nothing the CSP would have to allow. Colours come from the
// stylesheet (.series-N), so light and dark themes both work. Each chart carries its numbers
// in text too (the legend shows each series' latest value; the SVG has an aria-label), so
// nothing depends on seeing colour.

import { api } from './api.js';
import { h, replace } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const W = 420;
const H = 150;
const PAD = { left: 52, right: 8, top: 10, bottom: 20 };
const MAX_SERIES = 8;

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  }
  for (const c of children) if (c) el.append(c);
  return el;
}

/** 1234 → "1.2k", 0.5 → "0.5". */
export function count(n) {
  if (n === null || n === undefined) return '—';
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${Math.round(n / 1e3)}k`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

/** A round number at or above `v` (1, 2, 5 × 10^k), for the top of the y axis. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function last(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null && values[i] !== undefined) return values[i];
  return null;
}

/**
 * A chart of `series` ([{name, values}]) over `t` (ms), for a window of `windowSecs` ending
 * at the last sample. `format` turns a value into text; `id` names the chart for tests.
 */
export function lineChart({ id, title, t, windowSecs, series, format = count, empty = 'No data yet.' }) {
  const ranked = series
    .map((s) => ({ ...s, latest: last(s.values) }))
    .sort((a, b) => (b.latest ?? -1) - (a.latest ?? -1) || a.name.localeCompare(b.name));
  const shown = ranked.slice(0, MAX_SERIES);
  const fig = h('figure', { class: 'chart', 'data-chart': id, 'data-samples': t.length });
  const caption = h('figcaption', {}, title);
  if (!t.length || !shown.length) {
    replace(fig, caption, h('p', { class: 'muted chart-empty' }, empty));
    return fig;
  }
  const end = t[t.length - 1];
  const start = Math.min(t[0], end - windowSecs * 1000);
  const span = Math.max(end - start, 1);
  const max = niceMax(Math.max(0, ...shown.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined))));
  const x = (ms) => PAD.left + ((ms - start) / span) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  const grid = [0, 0.5, 1].map((f) => svg('g', { class: 'chart-grid' },
    svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(max * f), y2: y(max * f) }),
    svg('text', { x: PAD.left - 6, y: y(max * f) + 4, 'text-anchor': 'end' }, document.createTextNode(format(max * f)))));
  const minutes = Math.round(span / 60000);
  const axis = svg('g', { class: 'chart-axis' },
    svg('text', { x: PAD.left, y: H - 4, 'text-anchor': 'start' }, document.createTextNode(minutes >= 1 ? `−${minutes} min` : `−${Math.round(span / 1000)} s`)),
    svg('text', { x: W - PAD.right, y: H - 4, 'text-anchor': 'end' }, document.createTextNode('now')));
  const lines = shown.map((s, i) => {
    let d = '';
    let pen = false;
    let points = 0;
    s.values.forEach((v, k) => {
      if (v === null || v === undefined) { pen = false; return; }
      d += `${pen ? 'L' : 'M'}${x(t[k]).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
      points++;
    });
    // A lone point between gaps is drawn as a dot, so it is not lost.
    const dots = s.values.map((v, k) => {
      const before = s.values[k - 1];
      const after = s.values[k + 1];
      return v !== null && v !== undefined && (before === null || before === undefined) && (after === null || after === undefined)
        ? svg('circle', { cx: x(t[k]).toFixed(1), cy: y(v).toFixed(1), r: 2 })
        : null;
    }).filter(Boolean);
    return svg('g', { class: `series series-${i}`, 'data-series': s.name, 'data-points': points },
      d ? svg('path', { d }) : null, ...dots);
  });
  const label = `${title}: ${shown.map((s) => `${s.name} ${format(s.latest)}`).join(', ')}`;
  const plot = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, class: 'chart-svg' },
    ...grid, axis, ...lines);
  const legend = h('ul', { class: 'chart-legend' }, shown.map((s, i) => h('li', { 'data-series': s.name },
    h('span', { class: `swatch series-${i}`, 'aria-hidden': 'true' }), ` ${s.name} `, h('strong', { 'data-k': 'latest' }, format(s.latest)))),
  ranked.length > shown.length ? h('li', { class: 'muted' }, `and ${ranked.length - shown.length} more`) : null);
  replace(fig, caption, plot, legend);
  return fig;
}

/** The series of one map in the stats answer ({name: values}) as [{name, values}]. */
export function seriesOf(map, only) {
  return Object.entries(map || {})
    .filter(([name]) => !only || only(name))
    .map(([name, values]) => ({ name, values }));
}

/**
 * Fetches /v1/stats now and every interval until `signal` aborts; calls `draw(stats)` each
 * time, or `fail(error)`. Returns a function that stops it.
 */
export function pollStats(signal, draw, fail) {
  let timer = null;
  let stopped = false;
  async function tick() {
    let every = 5000;
    try {
      const s = await api('GET', '/v1/stats', undefined, { signal });
      every = Math.max(1000, (s.interval_secs || 5) * 1000);
      if (!stopped) draw(s);
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (!stopped && fail) fail(e);
    }
    if (!stopped && !signal.aborted) timer = setTimeout(tick, every);
  }
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

