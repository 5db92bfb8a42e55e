// Live tail: the events of a topic (or of a consumer's topics, with its operations filter) as
// they arrive, newest on top, pausable. Read with fetch() and the admin bearer header.

import { api, enc, followStream } from '../api.js';
import { h, replace, badge, announce } from '../dom.js';

const MAX_SHOWN = 500;
const MAX_PENDING = 5000;
const OP_NAMES = { c: 'create', u: 'update', d: 'delete', r: 'read', t: 'truncate', m: 'message' };

export async function tailPage(main, ctx) {
  const select = h('select', { id: 'tail-target', required: true }, h('option', { value: '' }, 'Loading…'));
  const earliest = h('input', { type: 'checkbox', id: 'tail-earliest' });
  const startBtn = h('button', { type: 'submit', id: 'tail-start' }, 'Start');
  const pauseBtn = h('button', { type: 'button', id: 'tail-pause', class: 'secondary', disabled: true, 'aria-pressed': 'false' }, 'Pause');
  const stopBtn = h('button', { type: 'button', id: 'tail-stop', class: 'secondary', disabled: true }, 'Stop');
  const clearBtn = h('button', { type: 'button', id: 'tail-clear', class: 'secondary' }, 'Clear');
  const status = h('p', { id: 'tail-status', class: 'status-line', role: 'status' }, 'Not connected.');
  const list = h('ol', { id: 'tail-events', class: 'events', 'aria-label': 'Events, newest first' });
  const form = h('form', { id: 'tail-form', class: 'toolbar' },
    h('div', { class: 'field' }, h('label', { for: 'tail-target' }, 'Topic or consumer'), select),
    h('label', { class: 'check' }, earliest, ' From the earliest retained event (topics only; default: from now)'),
    h('div', { class: 'actions' }, startBtn, pauseBtn, stopBtn, clearBtn));
  replace(main,
    h('h1', {}, 'Live tail'),
    h('p', { class: 'lede' }, 'Events appear as the sink reads them from Kafka, newest on top. Pausing keeps reading in the background; resuming shows what arrived meanwhile.'),
    form, status, list);

  let streams = [];
  let paused = false;
  let pending = [];
  let dropped = 0;
  let received = 0;
  let state = 'Not connected.';
  let opsFilter = null;
  let label = '';

  function drawStatus() {
    const parts = [state];
    if (streams.length) parts.push(`${received} event${received === 1 ? '' : 's'} received`);
    if (paused) parts.push(`paused, ${pending.length} waiting${dropped ? ` (${dropped} older ones dropped)` : ''}`);
    status.textContent = parts.join(' · ');
  }

  function show(ev) {
    list.prepend(eventItem(ev));
    while (list.childElementCount > MAX_SHOWN) list.lastElementChild.remove();
  }

  function onEvent(ev) {
    let data;
    try { data = JSON.parse(ev.data); } catch { data = { raw: ev.data }; }
    if (opsFilter && data.op && !opsFilter.includes(data.op)) return;
    received++;
    const item = { id: ev.id, data };
    if (paused) {
      pending.push(item);
      if (pending.length > MAX_PENDING) { pending.shift(); dropped++; }
    } else {
      show(item);
    }
    drawStatus();
  }

  function stopAll() {
    for (const s of streams) s.stop();
    streams = [];
    paused = false;
    pending = [];
    dropped = 0;
    pauseBtn.disabled = true;
    pauseBtn.textContent = 'Pause';
    pauseBtn.setAttribute('aria-pressed', 'false');
    stopBtn.disabled = true;
  }

  async function start() {
    stopAll();
    received = 0;
    const [kind, ...rest] = select.value.split(':');
    const name = rest.join(':');
    if (!name) return;
    let topics = [name];
    opsFilter = null;
    if (kind === 'consumer') {
      try {
        const c = await api('GET', `/v1/consumers/${enc(name)}`, undefined, { signal: ctx.signal });
        topics = c.topics;
        opsFilter = c.ops && c.ops.length ? c.ops : null;
      } catch (e) {
        if (e.name !== 'AbortError') { state = `Could not load consumer ${name}: ${e.message}`; drawStatus(); }
        return;
      }
    }
    label = kind === 'consumer'
      ? `consumer ${name} (${topics.join(', ')}${opsFilter ? `; ops ${opsFilter.join(', ')}` : ''})`
      : `topic ${name}`;
    const q = new URLSearchParams({ [kind]: name });
    if (kind === 'topic' && earliest.checked) q.set('start', 'earliest');
    history.replaceState(null, '', `#/tail?${q}`);
    const open = new Set();
    const params = kind === 'topic' && earliest.checked ? { start: 'earliest' } : {};
    streams = topics.map((t) => followStream(`/v1/topics/${enc(t)}/events`, {
      params,
      onEvent,
      onState: (s, detail) => {
        if (s === 'open') open.add(t); else open.delete(t);
        if (s === 'open' && open.size === topics.length) { state = `Connected to ${label}.`; announce(state); }
        else if (s === 'connecting') state = `Connecting to ${label}…`;
        else if (s === 'retrying') state = `Reconnecting to ${label}: ${detail}`;
        else if (s === 'error') { state = `Stopped: ${detail}`; announce(state); }
        drawStatus();
      },
    }));
    pauseBtn.disabled = false;
    stopBtn.disabled = false;
    drawStatus();
  }

  form.addEventListener('submit', (e) => { e.preventDefault(); start(); });
  pauseBtn.addEventListener('click', () => {
    paused = !paused;
    pauseBtn.textContent = paused ? 'Resume' : 'Pause';
    pauseBtn.setAttribute('aria-pressed', String(paused));
    if (!paused) {
      for (const item of pending) show(item);
      pending = [];
      dropped = 0;
    }
    drawStatus();
  });
  stopBtn.addEventListener('click', () => { stopAll(); state = 'Stopped.'; drawStatus(); });
  clearBtn.addEventListener('click', () => { list.replaceChildren(); received = 0; pending = []; drawStatus(); });

  // Targets: every topic and every consumer.
  try {
    const [t, c] = await Promise.all([
      api('GET', '/v1/topics', undefined, { signal: ctx.signal }),
      api('GET', '/v1/consumers', undefined, { signal: ctx.signal }),
    ]);
    const topics = (t.topics || []).map((x) => x.name).sort();
    const consumers = (c.consumers || []).map((x) => x.name).sort();
    replace(select,
      h('option', { value: '' }, 'Choose…'),
      h('optgroup', { label: 'Topics' }, topics.map((n) => h('option', { value: `topic:${n}` }, n))),
      consumers.length ? h('optgroup', { label: 'Consumers (their topics and operations)' }, consumers.map((n) => h('option', { value: `consumer:${n}` }, n))) : null);
  } catch (e) {
    if (e.name === 'AbortError') return stopAll;
    replace(select, h('option', { value: '' }, 'Could not load topics'));
    state = `Could not load topics: ${e.message}`;
    drawStatus();
    return stopAll;
  }
  const wantTopic = ctx.query.get('topic');
  const wantConsumer = ctx.query.get('consumer');
  if (ctx.query.get('start') === 'earliest') earliest.checked = true;
  const want = wantTopic ? `topic:${wantTopic}` : wantConsumer ? `consumer:${wantConsumer}` : '';
  if (want && [...select.options].some((o) => o.value === want)) {
    select.value = want;
    start();
  }
  return stopAll;
}

function json(v) {
  return JSON.stringify(v, null, 2);
}

function eventItem({ id, data }) {
  if (data.raw !== undefined) return h('li', { class: 'event' }, h('pre', { class: 'code' }, data.raw));
  const ts = data.source && data.source.ts_ms ? new Date(data.source.ts_ms) : null;
  const op = data.op || '?';
  return h('li', { class: 'event', 'data-offset': data.offset, 'data-op': op },
    h('div', { class: 'event-head' },
      badge(`${op} ${OP_NAMES[op] || ''}`.trim(), op === 'd' ? 'bad' : op === 'c' ? 'ok' : op === 'u' ? 'warn' : 'neutral'),
      ' ', h('strong', {}, data.table || data.topic || ''),
      ' ', h('span', { class: 'muted' }, `${data.topic}[${data.partition}] @ ${data.offset}`),
      ts ? [' ', h('time', { datetime: ts.toISOString() }, ts.toLocaleTimeString())] : null,
      data.key !== undefined && data.key !== null ? [' ', h('span', { class: 'muted' }, 'key '), h('code', {}, typeof data.key === 'string' ? data.key : JSON.stringify(data.key))] : null),
    data.after ? h('pre', { class: 'code after', 'aria-label': 'after' }, json(data.after)) : null,
    h('details', {}, h('summary', {}, 'Details'),
      data.before ? [h('p', {}, 'before'), h('pre', { class: 'code' }, json(data.before))] : null,
      h('p', {}, 'source'), h('pre', { class: 'code' }, json(data.source)),
      h('p', {}, 'cursor (Last-Event-ID)'), h('pre', { class: 'code' }, id || '—')));
}
