// Consumers: named readers of one or more topics over SSE (list, create with an optional
// filter checked and previewed by the sink as it is typed, detail, delete).

import { api, enc } from '../api.js';
import { h, replace, when, announce, confirmDialog, copyBlock, badge } from '../dom.js';
import { lineChart, seriesOf, pollStats } from '../charts.js';
import { field, formErrorBox, clearErrors, clearFieldError, setFieldError, focusFirstError, showApiError, apiMessage, busy } from '../forms.js';

export const CONSUMER_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const OPS = [['c', 'create'], ['u', 'update'], ['d', 'delete'], ['r', 'read (snapshot)']];

function loadError(e) {
  return h('p', { class: 'error', role: 'alert' }, `Could not load: ${e.message}`);
}

function opsText(ops) {
  return ops && ops.length ? ops.join(', ') : 'all';
}

function lagText(lag) {
  return lag === null || lag === undefined ? 'not connected' : `${lag} event${lag === 1 ? '' : 's'}`;
}

export async function consumersPage(main, ctx) {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const lagChart = h('div', { class: 'charts', id: 'consumers-lag' }, h('p', { class: 'muted' }, 'Loading…'));
  replace(main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Consumers'),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => load() }, 'Refresh'),
        h('a', { class: 'button', href: '#/consumers/new' }, 'Add a consumer'))),
    h('p', { class: 'lede' }, 'Applications reading change events over Server-Sent Events, each with its own token and acknowledged position.'),
    body,
    h('section', { 'aria-labelledby': 'h-consumers-lag' }, h('h2', { id: 'h-consumers-lag' }, 'Lag'), lagChart));
  async function load() {
    let data;
    try {
      data = await api('GET', '/v1/consumers', undefined, { signal: ctx.signal });
    } catch (e) {
      if (e.name !== 'AbortError') replace(body, loadError(e));
      return;
    }
    const list = data.consumers || [];
    if (!list.length) {
      replace(body, h('p', {}, 'No consumers yet. ', h('a', { href: '#/consumers/new' }, 'Add the first one'), '.'));
      return;
    }
    replace(body, h('table', { class: 'data', id: 'consumers-table' },
      h('caption', { class: 'visually-hidden' }, 'Consumers'),
      h('thead', {}, h('tr', {}, ['Name', 'Topics', 'Start', 'Operations', 'Live lag', 'Created'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, list.map((c) => h('tr', { 'data-consumer': c.name },
        h('th', { scope: 'row' }, h('a', { href: `#/consumers/${enc(c.name)}` }, c.name)),
        h('td', {}, (c.topics || []).join(', ')),
        h('td', {}, c.start),
        h('td', {}, opsText(c.ops)),
        h('td', {}, lagText(c.live_lag_events)),
        h('td', {}, when(c.created_at_ms)))))));
    announce(`${list.length} consumer${list.length === 1 ? '' : 's'} loaded`);
  }
  await load();
  return pollStats(ctx.signal, (st) => replace(lagChart,
    lineChart({ id: 'consumer-lag', title: 'Events behind the head, by consumer (its most lagging live stream)', t: st.t_ms, windowSecs: st.window_secs, series: seriesOf(st.consumer_lag_events), empty: 'No consumer stream in the window.' })),
  (e) => replace(lagChart, h('p', { class: 'error', role: 'alert' }, `Could not read the history: ${e.message}`)));
}

/**
 * The form field an API error about a filter concerns: `filters.<key>.where` → the predicate,
 * `.columns`/`.exclude_columns` → the projection, `.ops` → the operations, `filters.<key>` →
 * "Applies to". Null for fields that are not about filters.
 */
export function filterFieldOf(apiField) {
  if (!apiField || !apiField.startsWith('filters.')) return null;
  const m = /\.(where|columns|exclude_columns|ops)$/.exec(apiField);
  if (!m) return 'filter-scope';
  return { where: 'filter-where', columns: 'filter-columns', exclude_columns: 'filter-columns', ops: 'ops' }[m[1]];
}

/** Splits "a, b ,c" into ["a", "b", "c"]. */
function columnList(text) {
  return text.split(',').map((c) => c.trim()).filter(Boolean);
}

/** Text cut to `n` characters with an ellipsis. */
function truncate(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

export async function consumerNewPage(main, ctx) {
  const F = 'consumer';
  const name = h('input', { type: 'text', required: true, maxlength: 63, autocomplete: 'off', spellcheck: 'false' });
  const topicFilter = h('input', { type: 'search', id: 'consumer-topic-filter', autocomplete: 'off', 'aria-controls': 'consumer-topic-list' });
  const showInternal = h('input', { type: 'checkbox', id: 'consumer-topic-internal' });
  const topicList = h('ul', { class: 'checks', id: 'consumer-topic-list' }, h('li', { class: 'muted' }, 'Loading topics…'));
  const topics = h('fieldset', { class: 'topics' }, h('legend', {}, 'Topics'),
    h('div', { class: 'inline' },
      h('label', { for: 'consumer-topic-filter' }, 'Filter topics'), topicFilter,
      h('label', { class: 'check' }, showInternal, ' Show internal topics')),
    topicList);
  const start = h('fieldset', {}, h('legend', {}, 'Start from'),
    h('label', { class: 'check' }, h('input', { type: 'radio', name: 'start', value: 'latest', checked: true }), ' latest: only changes from now on'),
    h('label', { class: 'check' }, h('input', { type: 'radio', name: 'start', value: 'earliest' }), ' earliest: everything the topics still hold'));
  const ops = h('fieldset', {}, h('legend', {}, 'Operations'),
    OPS.map(([v, label]) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'ops', value: v, checked: true }), ` ${v}: ${label}`)));
  // The filter: one rule, keyed "*" (every picked topic) or one picked topic.
  const scope = h('select', {}, h('option', { value: '*' }, 'All picked topics (*)'));
  const where = h('textarea', { rows: 3, spellcheck: 'false', autocomplete: 'off', autocapitalize: 'off', placeholder: "after.status == 'paid' && after.amount_cents > 1000" });
  const columns = h('input', { type: 'text', id: `${F}-filter-column-list`, autocomplete: 'off', spellcheck: 'false', placeholder: 'id, status, amount_cents' });
  const knownColumns = h('p', { class: 'hint', id: `${F}-filter-known-columns` });
  const projection = h('fieldset', {}, h('legend', {}, 'Columns'),
    h('label', { class: 'check' }, h('input', { type: 'radio', name: 'projection', value: 'all', checked: true }), ' all columns'),
    h('label', { class: 'check' }, h('input', { type: 'radio', name: 'projection', value: 'keep' }), ' keep only these columns'),
    h('label', { class: 'check' }, h('input', { type: 'radio', name: 'projection', value: 'drop' }), ' drop these columns'),
    h('label', { for: columns.id }, 'Column names (comma-separated)'), columns, knownColumns);
  const previewButton = h('button', { type: 'button', class: 'secondary', id: `${F}-filter-preview-button` }, 'Preview');
  const previewSummary = h('p', { id: `${F}-filter-summary`, class: 'preview-summary', role: 'status', 'aria-live': 'polite' });
  const previewTable = h('div', { id: `${F}-filter-preview`, class: 'scroll' });
  const filterSection = h('fieldset', { class: 'filter', id: `${F}-filter`, 'aria-describedby': `${F}-filter-about` }, h('legend', {}, 'Filter (optional)'),
    h('p', { class: 'hint', id: `${F}-filter-about` }, 'Deliver only the rows that match a predicate, and only some of their columns. Leave empty to receive every change of the operations picked above.'),
    field(F, 'filter-scope', 'Applies to', scope, 'One rule: for every picked topic, or for one of them (the others are then not filtered).'),
    field(F, 'filter-where', 'Row predicate (CEL)', where, h('span', {},
      'A CEL expression giving true for the changes to deliver. It sees op, table, topic, key, before and after (the row); a row that matched before the change (moved out, or deleted) is delivered too. Example: ',
      h('code', {}, "after.status == 'paid' && after.amount_cents > 1000"))),
    field(F, 'filter-columns', 'Columns', projection, 'The key is always delivered whole.'),
    h('div', { class: 'actions' }, previewButton, h('span', { class: 'hint' }, 'The sink checks the filter as you type and shows what it makes of the topic\'s recent events.')),
    previewSummary,
    previewTable);
  // The column names are described by the group's hint and error too.
  columns.setAttribute('aria-describedby', `${knownColumns.id} ${projection.getAttribute('aria-describedby')}`);
  const submit = h('button', { type: 'submit' }, 'Create consumer');
  const form = h('form', { id: 'consumer-form', novalidate: true, 'aria-labelledby': 'consumer-form-title' },
    formErrorBox(),
    field(F, 'name', 'Name', name, 'a-z, 0-9, _ and -, starting with a letter or digit, at most 63 characters.'),
    field(F, 'topics', 'Topics', topics, 'The consumer receives events of every topic picked, with one cursor across them.'),
    field(F, 'start', 'Start', start, 'Where a consumer without an acknowledged position starts.'),
    field(F, 'ops', 'Operations', ops, 'Only these change types are delivered.'),
    filterSection,
    h('div', { class: 'actions' }, submit, h('a', { href: '#/consumers' }, 'Cancel')));
  const out = h('div', {});
  replace(main, h('h1', { id: 'consumer-form-title' }, 'Add a consumer'), form, out);
  name.focus();

  let all = [];
  function drawTopics() {
    const q = topicFilter.value.trim().toLowerCase();
    const picked = new Set([...topicList.querySelectorAll('input:checked')].map((i) => i.value));
    const shown = all.filter((t) => (showInternal.checked || !isInternal(t.name) || picked.has(t.name)) && (!q || t.name.toLowerCase().includes(q) || picked.has(t.name)));
    if (!all.length) { replace(topicList, h('li', { class: 'muted' }, 'No topics yet: a source creates its topics when it captures its first change.')); return; }
    if (!shown.length) { replace(topicList, h('li', { class: 'muted' }, 'No topic matches the filter.')); return; }
    replace(topicList, shown.map((t) => h('li', {}, h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'topics', value: t.name, checked: picked.has(t.name) }),
      ` ${t.name} `, h('span', { class: 'muted' }, `(${t.partitions} partition${t.partitions === 1 ? '' : 's'}, ${sum(t.end_offsets)} events)`)))));
  }
  topicFilter.addEventListener('input', drawTopics);
  showInternal.addEventListener('change', drawTopics);

  const pickedTopics = () => [...form.querySelectorAll('input[name=topics]:checked')].map((i) => i.value);
  const pickedOps = () => [...form.querySelectorAll('input[name=ops]:checked')].map((i) => i.value);
  const projectionMode = () => form.querySelector('input[name=projection]:checked').value;

  /** "Applies to" offers "*" and the picked topics, keeping the choice while it is picked. */
  function drawScope() {
    const was = scope.value;
    const picked = pickedTopics();
    replace(scope, h('option', { value: '*' }, 'All picked topics (*)'), picked.map((t) => h('option', { value: t }, t)));
    scope.value = picked.includes(was) ? was : '*';
  }

  /** The rule as the API takes it; `forPreview` leaves out a projection without columns yet. */
  function currentRule(forPreview) {
    const rule = {};
    if (where.value.trim()) rule.where = where.value;
    const mode = projectionMode();
    const cols = columnList(columns.value);
    if (mode !== 'all' && (cols.length || !forPreview)) rule[mode === 'keep' ? 'columns' : 'exclude_columns'] = cols;
    return rule;
  }

  let previewSeq = 0;
  let previewTimer = null;
  /** Asks the sink to check the rule and show what it makes of the topic's recent events. */
  async function preview() {
    clearTimeout(previewTimer);
    const seq = ++previewSeq;
    const topic = scope.value === '*' ? pickedTopics()[0] : scope.value;
    if (!topic) {
      previewSummary.textContent = 'Pick a topic to check and preview the filter against its recent events.';
      replace(previewTable);
      return;
    }
    const body = { topic, filter: currentRule(true), limit: 10 };
    const opsNow = pickedOps();
    if (opsNow.length && opsNow.length !== OPS.length) body.ops = opsNow;
    previewButton.setAttribute('aria-busy', 'true');
    let res;
    try {
      res = await api('POST', '/v1/filters/preview', body, { signal: ctx.signal });
    } catch (err) {
      if (err.name === 'AbortError' || seq !== previewSeq) return;
      previewButton.removeAttribute('aria-busy');
      clearFilterErrors();
      const name = filterFieldOf(err.field);
      if (name) setFieldError(form, name, apiMessage(err));
      previewSummary.textContent = name
        ? 'The filter cannot be used yet: see the message next to the field.'
        : `Could not preview the filter: ${apiMessage(err)}`;
      previewSummary.classList.add('error');
      replace(previewTable);
      return;
    }
    if (seq !== previewSeq) return;
    previewButton.removeAttribute('aria-busy');
    clearFilterErrors();
    previewSummary.classList.remove('error');
    drawPreview(res);
  }

  function clearFilterErrors() {
    for (const n of ['filter-scope', 'filter-where', 'filter-columns']) clearFieldError(form, n);
  }

  function drawPreview(res) {
    const events = res.events || [];
    knownColumns.textContent = res.columns && res.columns.length
      ? `Columns of ${res.topic}'s recent events: ${res.columns.join(', ')}.`
      : '';
    if (!res.checked) {
      previewSummary.textContent = `The filter parses. ${res.topic} has no recent event to check it against (types and column names are checked against events).`;
      replace(previewTable);
      return;
    }
    previewSummary.textContent = `${res.delivered} of ${res.checked} recent event${res.checked === 1 ? '' : 's'} of ${res.topic} delivered.`;
    replace(previewTable, h('table', { class: 'data preview' },
      h('caption', {}, `Newest events of ${res.topic} through the filter`),
      h('thead', {}, h('tr', {}, ['Partition', 'Offset', 'Op', 'Result', 'Delivered JSON (or the event filtered out)'].map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, events.map((e) => h('tr', { 'data-delivered': String(!!e.delivered), class: e.delivered ? null : 'filtered' },
        h('td', { class: 'num' }, e.partition),
        h('td', { class: 'num' }, e.offset),
        h('td', {}, (e.event && e.event.op) || '—'),
        h('td', { 'data-k': 'result' }, e.delivered ? badge('delivered', 'ok') : badge('filtered out', 'neutral')),
        h('td', { 'data-k': 'json' }, h('code', {}, truncate(JSON.stringify(e.event), 240))))))));
  }

  /** Previews ~400 ms after the last change to the filter (or to what it depends on). */
  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(preview, 400);
  }
  previewButton.addEventListener('click', preview);
  for (const el of [where, columns]) el.addEventListener('input', schedulePreview);
  scope.addEventListener('change', schedulePreview);
  projection.addEventListener('change', schedulePreview);
  ops.addEventListener('change', () => { if (where.value.trim() || projectionMode() !== 'all') schedulePreview(); });
  topicList.addEventListener('change', () => {
    drawScope();
    if (where.value.trim() || projectionMode() !== 'all') schedulePreview();
  });
  ctx.signal.addEventListener('abort', () => clearTimeout(previewTimer));

  try {
    all = ((await api('GET', '/v1/topics', undefined, { signal: ctx.signal })).topics || [])
      .sort((a, b) => a.name.localeCompare(b.name));
    drawTopics();
  } catch (e) {
    if (e.name === 'AbortError') return;
    replace(topicList, h('li', { class: 'error' }, `Could not list topics: ${e.message}`));
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const req = {
      name: name.value.trim(),
      topics: pickedTopics(),
      start: form.querySelector('input[name=start]:checked').value,
    };
    const opsNow = pickedOps();
    if (opsNow.length !== OPS.length) req.ops = opsNow;
    // Filters only when there is a predicate or a projection (ops stay consumer-wide).
    const rule = currentRule(false);
    if (Object.keys(rule).length) req.filters = { [scope.value]: rule };
    let bad = 0;
    if (!CONSUMER_NAME.test(req.name)) { setFieldError(form, 'name', `invalid consumer name ${JSON.stringify(req.name)}: use 1-63 characters [a-z0-9_-], starting with a letter or digit`); bad++; }
    if (!req.topics.length) { setFieldError(form, 'topics', 'Pick at least one topic.'); bad++; }
    if (!opsNow.length) { setFieldError(form, 'ops', 'Pick at least one operation.'); bad++; }
    const projected = rule.columns || rule.exclude_columns;
    if (projected && !projected.length) {
      setFieldError(form, 'filter-columns', `List the columns to ${projectionMode() === 'keep' ? 'keep' : 'drop'}, separated by commas, or pick "all columns".`);
      bad++;
    }
    if (bad) { focusFirstError(form); return; }
    await busy(submit, 'Creating…', async () => {
      let c;
      try {
        c = await api('POST', '/v1/consumers', req, { signal: ctx.signal });
      } catch (err) {
        if (err.name !== 'AbortError') showApiError(form, err, filterFieldOf);
        return;
      }
      form.remove();
      replace(out, tokenPanel(c));
      document.getElementById('consumer-form-title').textContent = `Consumer ${c.name} created`;
      out.querySelector('h2').focus();
      announce(`Consumer ${c.name} created. Copy its token now: it is shown only once.`);
    });
  });
}

function isInternal(t) {
  return t.startsWith('_') || t.startsWith('__') || /^(connect|tumbleweed)[-_](configs|offsets|status)/.test(t);
}

function sum(xs) {
  return (xs || []).reduce((a, b) => a + (Number(b) || 0), 0);
}

/** The one-time token with ready-to-paste ways to connect. */
function tokenPanel(c) {
  const url = new URL(c.events_path, location.origin);
  const tickets = new URL(c.events_path.replace(/\/events$/, '/tickets'), location.origin);
  const curl = `curl -N -H 'Authorization: Bearer ${c.token}' '${url.href}'`;
  const js = [
    `// Browsers' EventSource cannot send headers, and a token in a URL ends up in access logs.`,
    `// Ask for a single-use ticket with the token in the header (best from your backend, which`,
    `// keeps the token), then open the stream with it. A ticket opens one stream: on an error,`,
    `// get a new one and resume from the last id.`,
    `let lastId = localStorage.getItem('lastId');`,
    `async function connect() {`,
    `  const r = await fetch(${JSON.stringify(tickets.href)}, { method: 'POST', headers: { Authorization: 'Bearer ${c.token}' } });`,
    `  const { events_path } = await r.json();`,
    `  const resume = lastId ? '&last_event_id=' + encodeURIComponent(lastId) : '';`,
    `  const es = new EventSource(new URL(events_path + resume, ${JSON.stringify(location.origin)}));`,
    `  es.onmessage = (e) => {`,
    `    const change = JSON.parse(e.data); // {topic, partition, offset, key, op, table, before, after, source}`,
    `    console.log(change.op, change.table, change.after);`,
    `    lastId = e.lastEventId; localStorage.setItem('lastId', lastId);`,
    `    // Acknowledge now and then: POST ${c.events_path.replace(/\/events$/, '/ack')} {"cursor": lastId}`,
    `  };`,
    `  es.onerror = () => { es.close(); setTimeout(connect, 2000); };`,
    `}`,
    `connect();`,
  ].join('\n');
  return h('section', { class: 'token-panel', 'aria-labelledby': 'token-title' },
    h('h2', { id: 'token-title', tabindex: -1 }, 'Token (shown once)'),
    h('p', { class: 'warn-box' }, 'Copy the token now: the sink stores only its hash and cannot show it again. Deleting and recreating the consumer issues a new one.'),
    copyBlock('token', c.token, 'consumer-token'),
    copyBlock('SSE URL (send the token in the Authorization header)', url.href, 'consumer-sse-url'),
    copyBlock('curl command', curl, 'consumer-curl'),
    copyBlock('JavaScript EventSource snippet', js, 'consumer-js'),
    h('p', {}, 'Resume after a restart with the ', h('code', {}, 'Last-Event-ID'), ' header or ', h('code', {}, '?last_event_id='), '.'),
    h('p', {}, h('a', { href: `#/consumers/${enc(c.name)}` }, `Open consumer ${c.name}`), ' · ', h('a', { href: '#/consumers' }, 'All consumers')));
}

export async function consumerDetailPage(main, ctx) {
  const [name] = ctx.params;
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  replace(main, h('p', { class: 'crumbs' }, h('a', { href: '#/consumers' }, 'Consumers'), ' / '), h('h1', {}, `Consumer ${name}`), body);
  let c; let topics = [];
  try {
    [c, topics] = await Promise.all([
      api('GET', `/v1/consumers/${enc(name)}`, undefined, { signal: ctx.signal }),
      api('GET', '/v1/topics', undefined, { signal: ctx.signal }).then((d) => d.topics || []).catch(() => []),
    ]);
  } catch (e) {
    if (e.name !== 'AbortError') replace(body, loadError(e));
    return;
  }
  const ends = new Map(topics.map((t) => [t.name, t.end_offsets || []]));
  const acked = c.acked_offsets || {};
  const rows = [];
  for (const t of c.topics) {
    const parts = acked[t] || [];
    const end = ends.get(t) || [];
    const n = Math.max(parts.length, end.length);
    for (let p = 0; p < n; p++) {
      const a = parts[p] ?? null;
      const e = end[p] ?? null;
      rows.push(h('tr', {},
        h('th', { scope: 'row' }, t), h('td', { class: 'num' }, p),
        h('td', { class: 'num', 'data-k': 'acked' }, a === null ? 'none' : a),
        h('td', { class: 'num' }, e === null ? '—' : e),
        h('td', { class: 'num' }, a === null || e === null ? '—' : Math.max(0, e - a))));
    }
  }
  const lagTrend = h('div', { class: 'charts', id: 'consumer-lag-trend' }, h('p', { class: 'muted' }, 'Loading…'));
  const del = h('button', { type: 'button', class: 'danger', id: 'delete-consumer' }, 'Delete consumer…');
  del.addEventListener('click', async () => {
    const ok = await confirmDialog(`Delete consumer ${name}?`, h('p', {}, 'Its token stops working at once, open streams are closed and its acknowledged position is forgotten. The topics are not touched.'), 'Delete consumer');
    if (!ok) return;
    await busy(del, 'Deleting…', async () => {
      try {
        await api('DELETE', `/v1/consumers/${enc(name)}`);
      } catch (err) {
        replace(body.querySelector('.del-status'), h('p', { class: 'error', role: 'alert' }, err.message));
        return;
      }
      announce(`Consumer ${name} deleted`);
      ctx.go('#/consumers');
    });
  });
  replace(body,
    h('dl', { class: 'kv', id: 'consumer-detail' },
      h('dt', {}, 'Topics'), h('dd', {}, c.topics.join(', ')),
      h('dt', {}, 'Start'), h('dd', {}, c.start),
      h('dt', {}, 'Operations'), h('dd', {}, opsText(c.ops)),
      h('dt', {}, 'Filters'), h('dd', { 'data-k': 'filters' }, filtersView(c.filters, c.ops)),
      h('dt', {}, 'Live lag'), h('dd', { 'data-k': 'lag' }, lagText(c.live_lag_events)),
      h('dt', {}, 'Created'), h('dd', {}, when(c.created_at_ms)),
      h('dt', {}, 'Last ack'), h('dd', { 'data-k': 'acked-at' }, c.acked_at_ms ? when(c.acked_at_ms) : 'never'),
      h('dt', {}, 'Events endpoint'), h('dd', {}, h('code', {}, c.events_path))),
    h('h2', {}, 'Lag'),
    lagTrend,
    h('h2', {}, 'Live streams'),
    streamsTable(c.streams || []),
    h('p', { class: 'hint' }, 'Streams served by the replica that answered this page; another replica may serve more. The client is the TCP peer, and the X-Forwarded-For header when a load balancer sent one.'),
    h('h2', {}, 'Last acknowledged position'),
    rows.length
      ? h('table', { class: 'data', id: 'consumer-acks' },
        h('thead', {}, h('tr', {}, ['Topic', 'Partition', 'Acknowledged offset', 'End offset', 'Behind'].map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', {}, rows))
      : h('p', {}, 'No partitions.'),
    h('p', { class: 'hint' }, '"Acknowledged offset" is the next offset the consumer reads after a reconnect without Last-Event-ID; "none" means it starts from ', c.start, '.'),
    h('p', {}, h('a', { href: `#/tail?consumer=${enc(name)}` }, 'Live tail of its topics')),
    h('div', { class: 'actions' }, del),
    h('div', { class: 'del-status' }));
  return pollStats(ctx.signal, (st) => replace(lagTrend,
    lineChart({ id: 'consumer-lag', title: `Events ${name} is behind the head (most lagging live stream)`, t: st.t_ms, windowSecs: st.window_secs, series: seriesOf(st.consumer_lag_events, (n) => n === name), empty: 'No live stream of this consumer in the window.' })),
  (e) => replace(lagTrend, h('p', { class: 'error', role: 'alert' }, `Could not read the history: ${e.message}`)));
}

/** A consumer's filters, one item per key: what it applies to, its ops, predicate and columns. */
function filtersView(filters, consumerOps) {
  const keys = Object.keys(filters || {});
  if (!keys.length) return 'none: every change of its operations is delivered whole';
  return h('ul', { class: 'plain filters', id: 'consumer-filters' }, keys.map((key) => {
    const r = filters[key] || {};
    return h('li', { 'data-filter-key': key },
      h('strong', {}, key === '*' ? 'All its topics (*)' : key),
      h('dl', { class: 'kv compact' },
        h('dt', {}, 'Operations'), h('dd', { 'data-k': 'ops' }, r.ops ? r.ops.join(', ') : `${opsText(consumerOps)} (the consumer's)`),
        h('dt', {}, 'Where'), h('dd', { 'data-k': 'where' }, r.where ? h('code', {}, r.where) : 'every row'),
        h('dt', {}, 'Columns'), h('dd', { 'data-k': 'columns' },
          r.columns ? `only ${r.columns.join(', ')} (and the key)`
            : r.exclude_columns ? `all but ${r.exclude_columns.join(', ')}` : 'all')));
  }));
}

function streamsTable(streams) {
  if (!streams.length) return h('p', { id: 'consumer-streams' }, 'No live stream on this replica.');
  return h('table', { class: 'data', id: 'consumer-streams' },
    h('caption', { class: 'visually-hidden' }, 'Live streams of this consumer'),
    h('thead', {}, h('tr', {}, ['Connected since', 'Client', 'Forwarded for', 'Lag'].map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, streams.map((s) => h('tr', {},
      h('td', {}, when(s.since_ms)),
      h('td', { 'data-k': 'peer' }, s.client && s.client.peer ? h('code', {}, s.client.peer) : '—'),
      h('td', { 'data-k': 'forwarded' }, s.client && s.client.forwarded_for ? h('code', {}, s.client.forwarded_for) : '—'),
      h('td', { class: 'num', 'data-k': 'lag' }, lagText(s.lag_events))))));
}
