// Sources: PostgreSQL databases captured by a Debezium connector (list, create, detail, delete).

import { api, enc } from '../api.js';
import { h, replace, badge, bytes, announce, confirmDialog } from '../dom.js';
import { lineChart, seriesOf, pollStats } from '../charts.js';
import { field, formErrorBox, clearErrors, setFieldError, focusFirstError, showApiError, busy, setFormError } from '../forms.js';

export const SOURCE_NAME = /^[a-z0-9_]{1,40}$/;
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HEARTBEAT_TABLE = 'public.tumbleweed_heartbeat';
const SNAPSHOT_MODES = ['initial', 'no_data', 'initial_only', 'when_needed', 'always'];
const SSLMODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'];

function reconcilerSummary(r) {
  if (!r || !r.last_reconciled_ms) return h('span', { class: 'muted' }, 'no pass yet');
  const when = (ms) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  return h('div', {},
    h('span', {}, `last pass ${when(r.last_reconciled_ms)}`),
    r.actions && r.actions.length
      ? h('ul', { class: 'plain' }, r.actions.map((a) => h('li', {}, `${when(a.at_ms)} `, badge(a.action), ` ${a.detail}`)))
      : h('span', { class: 'muted' }, '; no action needed so far'));
}

function taskSummary(tasks) {
  if (!tasks || !tasks.length) return h('span', { class: 'muted' }, 'no tasks');
  return h('ul', { class: 'plain' }, tasks.map((t) => h('li', {}, `task ${t.id}: `, badge(t.state))));
}

function loadError(e) {
  return h('p', { class: 'error', role: 'alert' }, `Could not load: ${e.message}`);
}

export async function sourcesPage(main, ctx) {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const wal = h('div', { class: 'charts', id: 'sources-wal' }, h('p', { class: 'muted' }, 'Loading…'));
  const refresh = h('button', { type: 'button', class: 'secondary', onclick: () => load() }, 'Refresh');
  replace(main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Sources'),
      h('div', { class: 'actions' }, refresh, h('a', { class: 'button', href: '#/sources/new' }, 'Add a source'))),
    h('p', { class: 'lede' }, 'PostgreSQL databases captured by a Debezium connector in Kafka Connect. Each has a replication slot and a publication named tw_<deployment>_<name>.'),
    body,
    h('section', { 'aria-labelledby': 'h-source-wal' }, h('h2', { id: 'h-source-wal' }, 'Retained WAL'), wal));

  async function load() {
    let data;
    try {
      data = await api('GET', '/v1/sources', undefined, { signal: ctx.signal });
    } catch (e) {
      if (e.name !== 'AbortError') replace(body, loadError(e));
      return;
    }
    const sources = data.sources || [];
    if (!sources.length) {
      replace(body, h('p', {}, 'No sources yet. ', h('a', { href: '#/sources/new' }, 'Add the first one'), '.'));
      return;
    }
    replace(body, h('table', { class: 'data', id: 'sources-table' },
      h('caption', { class: 'visually-hidden' }, 'Sources with their connector and task states'),
      h('thead', {}, h('tr', {}, ['Name', 'Database', 'Mode', 'Tables', 'Connector', 'Tasks'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, sources.map((s) => h('tr', { 'data-source': s.name },
        h('th', { scope: 'row' }, h('a', { href: `#/sources/${enc(s.name)}` }, s.name)),
        h('td', {}, `${s.host}:${s.port}/${s.database}`),
        h('td', {}, s.mode),
        h('td', {}, (s.tables || []).join(', ')),
        h('td', {}, badge(s.connector_state)),
        h('td', {}, taskSummary(s.tasks)))))));
    announce(`${sources.length} source${sources.length === 1 ? '' : 's'} loaded`);
  }
  await load();
  // WAL a slot keeps on its server grows while its connector is down: the trend says whether
  // it is draining or still growing.
  return pollStats(ctx.signal, (st) => replace(wal,
    lineChart({ id: 'retained-wal', title: 'Retained WAL by replication slot, last minutes', t: st.t_ms, windowSecs: st.window_secs, series: seriesOf(st.retained_wal_bytes), format: bytes, empty: 'No replication slot measured yet.' })),
  (e) => replace(wal, h('p', { class: 'error', role: 'alert' }, `Could not read the history: ${e.message}`)));
}

/** Splits the tables text box: one per line or separated by commas. */
function parseTables(text) {
  return text.split(/[\n,]/).map((t) => t.trim()).filter(Boolean);
}

/** The API's validation (sink/src/sources/model.rs), so most mistakes never leave the page. */
export function validateSource(req) {
  const errs = [];
  const text = (f, v, max) => {
    if (!v.trim()) errs.push([f, `${f} is required`]);
    else if (v.length > max || /[\s\p{Cc}]/u.test(v)) errs.push([f, `${f} must be at most ${max} characters without spaces or control characters`]);
  };
  if (!SOURCE_NAME.test(req.name)) {
    errs.push(['name', `invalid source name ${JSON.stringify(req.name)}: use 1 to 40 characters among a-z, 0-9 and _`]);
  }
  text('host', req.host, 253);
  if (!Number.isInteger(req.port) || req.port < 1 || req.port > 65535) errs.push(['port', 'port must be between 1 and 65535']);
  text('database', req.database, 63);
  text('user', req.user, 63);
  if (req.password.length > 1024 || /\p{Cc}/u.test(req.password)) errs.push(['password', 'password must be at most 1024 characters without control characters']);
  if (req.password_secret !== undefined) {
    if (req.password) errs.push(['password_secret', 'give either password or password_secret, not both']);
    else if (!/^(env:(TUMBLEWEED_SECRET_[A-Za-z0-9_]{1,110}|TUMBLEWEED_SOURCE_DB_PASSWORD)|file:\/[^:$}]{1,1023})$/.test(req.password_secret) || req.password_secret.includes('..')) {
      errs.push(['password_secret', 'password_secret must be env:TUMBLEWEED_SECRET_<KEY> or file:/absolute/path (in the sink\'s secrets directory)']);
    }
  }
  const tables = req.tables.length === 0 && req.mode === 'outbox' ? ['public.outbox'] : req.tables;
  if (!tables.length) errs.push(['tables', 'tables: list at least one schema.table']);
  else if (req.mode === 'outbox' && tables.length !== 1) errs.push(['tables', 'tables: outbox mode takes exactly one outbox table']);
  else {
    const seen = new Set();
    for (const t of tables) {
      const parts = t.split('.');
      if (parts.length < 2) { errs.push(['tables', `table '${t}' must be written schema.table`]); break; }
      const [schema, ...rest] = parts;
      const table = rest.join('.');
      const bad = [schema, table].find((p) => !IDENT.test(p) || new TextEncoder().encode(p).length > 63);
      if (bad !== undefined) { errs.push(['tables', `table '${t}': '${bad}' is not a plain identifier (letters, digits and _, not starting with a digit, at most 63 bytes)`]); break; }
      if (t === HEARTBEAT_TABLE) { errs.push(['tables', `tables: ${HEARTBEAT_TABLE} is Tumbleweed's heartbeat table and is captured automatically`]); break; }
      if (seen.has(t)) { errs.push(['tables', `tables: ${t} is listed twice`]); break; }
      seen.add(t);
    }
  }
  if (!Number.isInteger(req.heartbeat_interval_s) || req.heartbeat_interval_s < 0 || req.heartbeat_interval_s > 86400) {
    errs.push(['heartbeat_interval_s', 'heartbeat_interval_s must be between 0 (off) and 86400']);
  }
  if (!SNAPSHOT_MODES.includes(req.snapshot_mode)) errs.push(['snapshot_mode', `snapshot_mode must be one of ${SNAPSHOT_MODES.join(', ')}`]);
  // TLS (pgtls/src/lib.rs). Without sslmode the sink's defaults apply, which the page does not
  // know, so only an explicit mode is checked against sslrootcert. Whether the file exists and
  // parses is for the sink to say.
  if (req.sslmode !== undefined && !SSLMODES.includes(req.sslmode)) {
    errs.push(['sslmode', `sslmode ${JSON.stringify(req.sslmode)} must be one of ${SSLMODES.join(', ')}`]);
  } else if (req.sslmode !== undefined) {
    const verifies = req.sslmode === 'verify-ca' || req.sslmode === 'verify-full';
    if (req.sslrootcert === undefined) {
      if (verifies) errs.push(['sslrootcert', `sslmode ${req.sslmode} verifies the server certificate and needs sslrootcert: \`rds\` (the Amazon RDS CA bundle) or an absolute path to a PEM CA bundle`]);
    } else if (req.sslrootcert !== 'rds' && (!req.sslrootcert.startsWith('/') || /\p{Cc}/u.test(req.sslrootcert) || req.sslrootcert.length > 4096)) {
      errs.push(['sslrootcert', `sslrootcert ${JSON.stringify(req.sslrootcert)} must be \`rds\` (the Amazon RDS CA bundle) or an absolute path to a PEM CA bundle`]);
    } else if (!verifies) {
      errs.push(['sslrootcert', `sslrootcert is only used with sslmode verify-ca or verify-full (sslmode is ${req.sslmode}): drop it or use a verifying mode`]);
    }
  }
  // One message per field: the first.
  const byField = new Map();
  for (const [f, m] of errs) if (!byField.has(f)) byField.set(f, m);
  return byField;
}

export function sourceNewPage(main, ctx) {
  const F = 'source';
  const inp = {
    name: h('input', { type: 'text', required: true, maxlength: 40, pattern: '[a-z0-9_]{1,40}', autocomplete: 'off', spellcheck: 'false' }),
    host: h('input', { type: 'text', required: true, autocomplete: 'off', spellcheck: 'false' }),
    port: h('input', { type: 'number', required: true, min: 1, max: 65535, value: '5432', inputmode: 'numeric' }),
    database: h('input', { type: 'text', required: true, autocomplete: 'off', spellcheck: 'false' }),
    user: h('input', { type: 'text', required: true, autocomplete: 'off', spellcheck: 'false' }),
    password: h('input', { type: 'password', autocomplete: 'new-password' }),
    password_secret: h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'env:TUMBLEWEED_SECRET_<KEY> or file:/path' }),
    tables: h('textarea', { rows: 3, spellcheck: 'false' }),
    mode: h('select', {}, h('option', { value: 'tables' }, 'tables: one topic per table'), h('option', { value: 'outbox' }, 'outbox: one topic per aggregate type')),
    heartbeat_interval_s: h('input', { type: 'number', min: 0, max: 86400, value: '60', inputmode: 'numeric' }),
    snapshot_mode: h('select', {}, SNAPSHOT_MODES.map((m) => h('option', { value: m }, m))),
    sslmode: h('select', {}, h('option', { value: '' }, 'the sink\'s default'), SSLMODES.map((m) => h('option', { value: m }, m))),
    sslrootcert: h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'rds or /path/to/ca-bundle.pem' }),
  };
  const submit = h('button', { type: 'submit' }, 'Create source');
  const form = h('form', { id: 'source-form', novalidate: true, 'aria-labelledby': 'source-form-title' },
    formErrorBox(),
    field(F, 'name', 'Name', inp.name, 'a-z, 0-9 and _, at most 40 characters. Used in the slot, publication, connector and topic names.'),
    h('fieldset', {}, h('legend', {}, 'Database'),
      field(F, 'host', 'Host', inp.host, 'As Kafka Connect reaches it.'),
      field(F, 'port', 'Port', inp.port),
      field(F, 'database', 'Database', inp.database),
      field(F, 'user', 'User', inp.user, 'Needs the REPLICATION attribute (rds_replication on RDS) and SELECT on the tables.'),
      field(F, 'password', 'Password', inp.password, 'Stored in Kafka Connect\'s connector config (not in Tumbleweed\'s registry); never shown again.'),
      field(F, 'password_secret', 'Or: password secret', inp.password_secret, 'env:TUMBLEWEED_SECRET_<KEY> or file:/path in the sink\'s secrets directory, read by the sink and the Connect workers: no one stores the password, and a lost connector can be re-created.'),
      field(F, 'sslmode', 'TLS (sslmode)', inp.sslmode, 'As libpq: prefer and require encrypt without checking the server; verify-ca checks its certificate against the CA bundle; verify-full also checks that it names the host.'),
      field(F, 'sslrootcert', 'CA bundle (sslrootcert)', inp.sslrootcert, 'For verify-ca and verify-full: rds (the Amazon RDS CA bundle, built into the sink) or an absolute path to a PEM file that the sink and the Connect workers can read.')),
    field(F, 'tables', 'Tables', inp.tables, 'schema.table, one per line (each needs a primary key). In outbox mode: the outbox table, public.outbox when empty.'),
    field(F, 'mode', 'Mode', inp.mode),
    field(F, 'heartbeat_interval_s', 'Heartbeat interval (seconds)', inp.heartbeat_interval_s, '0 turns it off. The heartbeat keeps the slot moving when the captured tables are quiet.'),
    field(F, 'snapshot_mode', 'Snapshot mode', inp.snapshot_mode, 'initial: existing rows first (op "r"), then changes.'),
    h('div', { class: 'actions' }, submit, h('a', { href: '#/sources' }, 'Cancel')));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const req = {
      name: inp.name.value.trim(),
      host: inp.host.value.trim(),
      port: inp.port.value === '' ? NaN : Number(inp.port.value),
      database: inp.database.value.trim(),
      user: inp.user.value.trim(),
      password: inp.password.value,
      ...(inp.password_secret.value.trim() ? { password_secret: inp.password_secret.value.trim() } : {}),
      tables: parseTables(inp.tables.value),
      mode: inp.mode.value,
      heartbeat_interval_s: inp.heartbeat_interval_s.value === '' ? NaN : Number(inp.heartbeat_interval_s.value),
      snapshot_mode: inp.snapshot_mode.value,
      ...(inp.sslmode.value ? { sslmode: inp.sslmode.value } : {}),
      ...(inp.sslrootcert.value.trim() ? { sslrootcert: inp.sslrootcert.value.trim() } : {}),
    };
    const errs = validateSource(req);
    if (errs.size) {
      for (const [f, m] of errs) setFieldError(form, f, m);
      focusFirstError(form);
      announce(`${errs.size} field${errs.size === 1 ? '' : 's'} to fix`);
      return;
    }
    await busy(submit, 'Creating… (checking the database, starting the connector)', async () => {
      let created;
      try {
        created = await api('POST', '/v1/sources', req, { signal: ctx.signal });
      } catch (err) {
        if (err.name === 'AbortError') return;
        if (err.body && err.body.cleanup) {
          setFormError(form, `${err.message} — cleaned up: ${describeCleanup(err.body.cleanup)}`);
          focusFirstError(form);
        } else {
          showApiError(form, err);
        }
        return;
      }
      announce(`Source ${created.name} created`);
      ctx.go(`#/sources/${enc(created.name)}?created=1`);
    });
  });

  replace(main, h('h1', { id: 'source-form-title' }, 'Add a source'),
    h('p', { class: 'lede' }, 'The sink checks that the database is ready for logical decoding (wal_level, privileges, primary keys) before it creates anything.'),
    form);
  inp.name.focus();
}

function describeCleanup(c) {
  if (!c || typeof c !== 'object') return String(c);
  const r = c;
  const parts = ['connector', 'slot', 'publication'].filter((k) => r[k]).map((k) => `${k} ${r[k]}`);
  return parts.join(', ') + (c.error ? ` (${c.error})` : '');
}

/** The outcome of a deletion, as a list a person can read. */
function deleteReport(name, report, error) {
  return h('section', { class: error ? 'result error-box' : 'result ok-box', id: 'delete-result', 'aria-labelledby': 'delete-result-title', tabindex: -1 },
    h('h2', { id: 'delete-result-title' }, error ? `Source ${name} was not fully removed` : `Source ${name} deleted`),
    error ? h('p', { role: 'alert' }, error) : null,
    h('dl', { class: 'kv' },
      h('dt', {}, 'Connector'), h('dd', { 'data-k': 'connector' }, report.connector ?? 'unknown'),
      h('dt', {}, 'Replication slot'), h('dd', { 'data-k': 'slot' }, report.slot ?? 'unknown'),
      h('dt', {}, 'Publication'), h('dd', { 'data-k': 'publication' }, report.publication ?? 'unknown')),
    error ? h('p', {}, 'Deleting again finishes the job once the cause is fixed.') : null,
    h('p', {}, h('a', { href: '#/sources' }, 'Back to sources')));
}

export async function sourceDetailPage(main, ctx) {
  const [name] = ctx.params;
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  replace(main, h('p', { class: 'crumbs' }, h('a', { href: '#/sources' }, 'Sources'), ' / '), h('h1', {}, `Source ${name}`), body);
  let s;
  try {
    s = await api('GET', `/v1/sources/${enc(name)}`, undefined, { signal: ctx.signal });
  } catch (e) {
    if (e.name !== 'AbortError') replace(body, loadError(e));
    return;
  }
  const del = h('button', { type: 'button', class: 'danger', id: 'delete-source' }, 'Delete source…');
  const result = h('div', {});
  del.addEventListener('click', async () => {
    const ok = await confirmDialog(`Delete source ${name}?`, h('div', {},
      h('p', {}, 'This stops the connector, then drops:'),
      h('ul', {}, h('li', {}, 'replication slot ', h('code', {}, s.slot)), h('li', {}, 'publication ', h('code', {}, s.publication)), h('li', {}, 'connector ', h('code', {}, s.connector))),
      h('p', {}, 'Its topics and the consumers reading them stay. Creating the source again starts from a new snapshot.')), 'Delete source');
    if (!ok) return;
    await busy(del, 'Deleting… (stopping the connector, dropping the slot)', async () => {
      let report; let error = null;
      try {
        report = await api('DELETE', `/v1/sources/${enc(name)}`);
      } catch (err) {
        report = err.body || {};
        error = err.message;
      }
      // Once deleted, the definition above is history: only the report stays.
      replace(error ? result : body, deleteReport(name, report || {}, error));
      const box = main.querySelector('#delete-result');
      if (box) box.focus();
    });
  });
  const created = ctx.query.get('created')
    ? h('p', { class: 'ok-box', role: 'status' }, `Source ${name} created. Its topics appear once the first change (or snapshot row) is captured.`)
    : null;
  replace(body,
    created,
    h('dl', { class: 'kv', id: 'source-detail' },
      h('dt', {}, 'Connector'), h('dd', {}, h('code', {}, s.connector), ' ', badge(s.connector_state)),
      h('dt', {}, 'Tasks'), h('dd', {}, taskSummary(s.tasks)),
      h('dt', {}, 'Declared'), h('dd', {}, s.declared === false
        ? 'no: a deletion did not finish; delete the source again'
        : 'yes: the reconciler keeps Kafka Connect in line with it'),
      h('dt', {}, 'Reconciler'), h('dd', { id: 'reconciler' }, reconcilerSummary(s.reconciler)),
      h('dt', {}, 'Database'), h('dd', {}, `${s.host}:${s.port}/${s.database} as ${s.user}${s.password_secret ? ` (password from ${s.password_secret})` : ''}`),
      h('dt', {}, 'TLS'), h('dd', { id: 'source-tls' }, `sslmode ${s.sslmode}${s.sslrootcert ? `, CAs from ${s.sslrootcert}` : ''}`),
      h('dt', {}, 'Mode'), h('dd', {}, s.mode),
      h('dt', {}, 'Tables'), h('dd', {}, (s.tables || []).join(', ')),
      h('dt', {}, 'Replication slot'), h('dd', {}, h('code', {}, s.slot)),
      h('dt', {}, 'Publication'), h('dd', {}, h('code', {}, s.publication)),
      h('dt', {}, 'Topics'), h('dd', {}, s.topics && s.topics.length
        ? h('ul', { class: 'plain' }, s.topics.map((t) => h('li', {}, h('code', {}, t), ' ', h('a', { href: `#/tail?topic=${enc(t)}` }, 'live tail'))))
        : h('span', {}, `${s.topic_prefix}.outbox.<aggregatetype>`)),
      h('dt', {}, 'Heartbeat'), h('dd', {}, s.heartbeat_interval_s ? `every ${s.heartbeat_interval_s} s on ${s.heartbeat_topic}` : 'off'),
      h('dt', {}, 'Snapshot mode'), h('dd', {}, s.snapshot_mode)),
    (s.tasks || []).filter((t) => t.trace).map((t) => h('details', { class: 'trace' }, h('summary', {}, `Task ${t.id} failure trace`), h('pre', { class: 'code' }, t.trace))),
    h('div', { class: 'actions' }, del),
    result);
}
