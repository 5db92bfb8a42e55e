// Health: trends of the last minutes (events/s by topic, streams, consumer lag, retained WAL
// by slot; from /v1/stats, redrawn every sample), broker reachability, replication slots
// (retained WAL against the thresholds, orphans with a drop button) and connector states.
// The tables refresh every 15 s while open.

import { api, enc } from '../api.js';
import { h, replace, badge, bytes, announce, confirmDialog } from '../dom.js';
import { lineChart, seriesOf, pollStats } from '../charts.js';

const REFRESH_MS = 15000;

export async function healthPage(main, ctx) {
  const broker = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const slots = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const connectors = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const updated = h('p', { class: 'muted', id: 'health-updated' });
  const trends = h('div', { class: 'charts', id: 'health-trends' }, h('p', { class: 'muted' }, 'Loading…'));
  replace(main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Health'),
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => load(true) }, 'Refresh'))),
    updated,
    h('section', { 'aria-labelledby': 'h-trends' }, h('h2', { id: 'h-trends' }, 'Trends'), trends),
    h('section', { 'aria-labelledby': 'h-broker' }, h('h2', { id: 'h-broker' }, 'Broker'), broker),
    h('section', { 'aria-labelledby': 'h-slots' }, h('h2', { id: 'h-slots' }, 'Replication slots'), slots),
    h('section', { 'aria-labelledby': 'h-connectors' }, h('h2', { id: 'h-connectors' }, 'Connectors'), connectors));

  async function loadBroker() {
    // /readyz needs no token and answers 503 with a reason when the broker is unreachable.
    try {
      const res = await fetch('/readyz', { cache: 'no-store', signal: ctx.signal, credentials: 'omit' });
      const b = await res.json().catch(() => ({}));
      replace(broker, h('p', { id: 'broker-state' },
        res.ok ? badge('reachable', 'ok') : badge('unreachable', 'bad'),
        ' ', res.ok ? 'The sink reaches the Kafka broker.' : `The sink cannot reach the broker: ${b.broker || res.statusText}`));
    } catch (e) {
      if (e.name !== 'AbortError') replace(broker, h('p', { class: 'error' }, badge('unknown', 'bad'), ` The sink did not answer: ${e.message}`));
    }
  }

  async function loadSlots() {
    let d;
    try {
      d = await api('GET', '/v1/slots', undefined, { signal: ctx.signal });
    } catch (e) {
      if (e.name !== 'AbortError') replace(slots, h('p', { class: 'error', role: 'alert' }, `Could not read the slots: ${e.message}`));
      return;
    }
    const th = d.thresholds || {};
    const warn = Number(th.warn_bytes) || 0;
    const crit = Number(th.critical_bytes) || 0;
    const list = d.slots || [];
    replace(slots,
      h('p', { class: 'hint' }, `Retained WAL: warning at ${bytes(warn)}, critical at ${bytes(crit)}. A slot that is not read keeps WAL on the source server until its disk fills.`),
      (d.errors || []).map((e) => h('p', { class: 'error', role: 'alert' }, `${e.server} (sources ${(e.sources || []).join(', ')}): ${e.error}`)),
      list.length
        ? h('div', { class: 'scroll' }, h('table', { class: 'data', id: 'slots-table' },
          h('caption', { class: 'visually-hidden' }, 'Replication slots on the source servers'),
          h('thead', {}, h('tr', {}, ['Slot', 'Source', 'Server / database', 'Active', 'wal_status', 'Retained WAL', 'Status', ''].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, list.map((s) => slotRow(s, warn, crit)))))
        : h('p', {}, 'No replication slots on the source servers (or no sources yet).'));
  }

  function slotRow(s, warn, crit) {
    const max = Math.max(crit, Number(s.retained_bytes) || 0, 1);
    const retained = s.retained_bytes === null || s.retained_bytes === undefined
      ? h('span', { class: 'muted' }, 'unknown')
      : h('div', { class: 'wal' },
        h('meter', {
          min: 0, max, low: warn || undefined, high: crit || undefined, optimum: 0, value: s.retained_bytes,
          'aria-label': `Retained WAL of ${s.slot}`,
        }),
        h('span', {}, bytes(s.retained_bytes)));
    const drop = s.orphan
      ? h('button', { type: 'button', class: 'danger small', 'data-drop': s.slot, 'aria-label': `Drop orphan slot ${s.slot}`, onclick: (e) => dropOrphan(s, e.currentTarget) }, 'Drop…')
      : null;
    return h('tr', { 'data-slot': s.slot, class: s.orphan ? 'orphan' : '' },
      h('th', { scope: 'row' }, h('code', {}, s.slot), s.orphan ? [' ', badge('orphan', 'bad')] : null, !s.owned ? [' ', h('span', { class: 'muted' }, '(not Tumbleweed\'s)')] : null),
      h('td', {}, s.source ? h('a', { href: `#/sources/${enc(s.source)}` }, s.source) : '—'),
      h('td', {}, `${s.server || ''}${s.database ? ` / ${s.database}` : ''}`),
      h('td', { 'data-k': 'active' }, s.active ? badge('active', 'ok') : badge('inactive', 'warn')),
      h('td', {}, s.wal_status ? badge(s.wal_status) : '—'),
      h('td', {}, retained),
      h('td', {}, badge(s.status)),
      h('td', {}, drop));
  }

  async function dropOrphan(s, btn) {
    const ok = await confirmDialog(`Drop slot ${s.slot}?`, h('div', {},
      h('p', {}, `No declared source and no Kafka Connect connector names this slot, and its name carries this deployment's prefix. Dropping it releases the WAL it retains (${bytes(s.retained_bytes)}) on ${s.server}, and drops its publication when it is in ${s.via}'s database.`),
      h('p', {}, 'This cannot be undone: a connector that still needs the slot would have to snapshot again.')), 'Drop slot', { typed: s.slot });
    if (!ok) return;
    btn.disabled = true;
    try {
      const r = await api('DELETE', `/v1/slots/${enc(s.via)}/${enc(s.slot)}?confirm=${enc(s.slot)}`);
      announce(`Slot ${s.slot} ${r.slot}, publication ${r.publication}`);
      const row = btn.closest('tr');
      replace(btn.parentElement, h('span', { role: 'status' }, `slot ${r.slot}, publication ${r.publication}`));
      row.classList.add('dropped');
    } catch (e) {
      btn.disabled = false;
      replace(btn.parentElement, btn, h('p', { class: 'error', role: 'alert' }, e.message));
    }
  }

  async function loadConnectors() {
    let d;
    try {
      d = await api('GET', '/v1/sources', undefined, { signal: ctx.signal });
    } catch (e) {
      if (e.name !== 'AbortError') replace(connectors, h('p', { class: 'error', role: 'alert' }, `Could not read the connectors: ${e.message}`));
      return;
    }
    const list = d.sources || [];
    replace(connectors, list.length
      ? h('table', { class: 'data', id: 'connectors-table' },
        h('caption', { class: 'visually-hidden' }, 'Connector and task states'),
        h('thead', {}, h('tr', {}, ['Connector', 'Source', 'State', 'Tasks'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, list.map((s) => h('tr', { 'data-connector': s.connector },
          h('th', { scope: 'row' }, h('code', {}, s.connector)),
          h('td', {}, h('a', { href: `#/sources/${enc(s.name)}` }, s.name)),
          h('td', {}, badge(s.connector_state)),
          h('td', {}, (s.tasks || []).length ? s.tasks.map((t) => [`task ${t.id} `, badge(t.state), ' ']) : h('span', { class: 'muted' }, 'none'))))))
      : h('p', {}, 'No connectors (no sources).'));
  }

  async function load(announceIt) {
    await Promise.all([loadBroker(), loadSlots(), loadConnectors()]);
    if (ctx.signal.aborted) return;
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every ${REFRESH_MS / 1000} s.`;
    if (announceIt) announce('Health refreshed');
  }
  await load(false);
  const stopStats = pollStats(ctx.signal, (st) => replace(trends,
    h('p', { class: 'hint' }, `The last ${Math.round(st.window_secs / 60)} minutes, one sample every ${st.interval_secs} s, from every sink replica (${st.replicas} reporting).`),
    lineChart({ id: 'events-by-topic', title: 'Events read per second, by topic', t: st.t_ms, windowSecs: st.window_secs, series: seriesOf(st.events_per_sec_by_topic), empty: 'No topic is being read (no consumer stream open).' }),
    lineChart({ id: 'delivery', title: 'Delivery: events sent per second and connected streams', t: st.t_ms, windowSecs: st.window_secs, series: [{ name: 'events sent/s', values: st.events_sent_per_sec }, { name: 'streams', values: st.connected_streams }] }),
    lineChart({ id: 'consumer-lag', title: 'Consumer lag (events behind the head)', t: st.t_ms, windowSecs: st.window_secs, series: seriesOf(st.consumer_lag_events), empty: 'No consumer stream in the window.' }),
    lineChart({ id: 'retained-wal', title: 'Retained WAL by replication slot', t: st.t_ms, windowSecs: st.window_secs, series: seriesOf(st.retained_wal_bytes), format: bytes, empty: 'No replication slot measured yet.' })),
  (e) => replace(trends, h('p', { class: 'error', role: 'alert' }, `Could not read the history: ${e.message}`)));
  const timer = setInterval(() => { if (!document.hidden && !document.getElementById('confirm').open && !(document.activeElement && document.activeElement.closest('table'))) load(false); }, REFRESH_MS);
  return () => { clearInterval(timer); stopStats(); };
}
