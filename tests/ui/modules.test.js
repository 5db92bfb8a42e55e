// The UI's browser-independent modules in node: the SSE frame parser of the live tail, the
// source form's validation checked against the API's own answers (same field, same verdict),
// and the mapping of the API's filter errors onto the consumer form's fields.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseParser } from '../../ui/api.js';
import { readFileSync } from 'node:fs';
import { validateSource, SOURCE_NAME } from '../../ui/pages/sources.js';
import { filterFieldOf, CONSUMER_NAME } from '../../ui/pages/consumers.js';
import { apiMessage } from '../../ui/forms.js';
import { env, adminApi } from './lib.js';

function parse(chunks) {
  const events = [];
  const retries = [];
  const p = new SseParser((e) => events.push(e), (ms) => retries.push(ms));
  for (const c of chunks) p.push(c);
  return { events, retries };
}

test('the name rules are the published contract (api/openapi.json)', () => {
  const doc = JSON.parse(readFileSync(new URL('../../api/openapi.json', import.meta.url), 'utf8'));
  const schemas = doc.components.schemas;
  assert.equal(SOURCE_NAME.source, schemas.CreateSource.properties.name.pattern);
  assert.equal(CONSUMER_NAME.source, schemas.CreateConsumer.properties.name.pattern);
});

test('SSE parser: fields, multi-line data, comments, retry, id persistence', () => {
  const { events, retries } = parse([
    'retry: 2000\n\n',
    ': keepalive\n\n',
    'id: c1\ndata: {"a":1}\n\n',
    'data: line one\ndata: line two\n\n',
    'event: notice\ndata:no-space\n\n',
    'id\ndata: x\n\n',
  ]);
  assert.deepEqual(retries, [2000]);
  assert.deepEqual(events, [
    { id: 'c1', event: 'message', data: '{"a":1}' },
    { id: 'c1', event: 'message', data: 'line one\nline two' },
    { id: 'c1', event: 'notice', data: 'no-space' },
    { id: '', event: 'message', data: 'x' },
  ]);
});

test('SSE parser: frames split anywhere, CRLF and CR line ends', () => {
  const text = 'id: 7\r\ndata: {"k":"v"}\r\n\r\nid: 8\rdata: two\r\r';
  for (let cut = 0; cut <= text.length; cut++) {
    const { events } = parse([text.slice(0, cut), text.slice(cut)]);
    assert.deepEqual(events, [
      { id: '7', event: 'message', data: '{"k":"v"}' },
      { id: '8', event: 'message', data: 'two' },
    ], `cut at ${cut}`);
  }
  // One character at a time.
  assert.equal(parse([...text]).events.length, 2);
  // An incomplete frame is not dispatched.
  assert.deepEqual(parse(['data: half']).events, []);
});

const valid = {
  name: 'orders', host: 'db.internal', port: 5432, database: 'app', user: 'cdc', password: 'pw',
  tables: ['public.orders'], mode: 'tables', heartbeat_interval_s: 60, snapshot_mode: 'initial',
};

const bad = [
  ['name', { name: 'Orders' }],
  ['name', { name: 'a-b' }],
  ['name', { name: 'x'.repeat(41) }],
  ['name', { name: '' }],
  ['host', { host: '' }],
  ['host', { host: 'db host' }],
  ['port', { port: 0 }],
  ['port', { port: 70000 }],
  ['database', { database: '' }],
  ['user', { user: 'a b' }],
  ['tables', { tables: [] }],
  ['tables', { tables: ['orders'] }],
  ['tables', { tables: ['public.1orders'] }],
  ['tables', { tables: ['public.orders', 'public.orders'] }],
  ['tables', { tables: ['public.tumbleweed_heartbeat'] }],
  ['tables', { mode: 'outbox', tables: ['public.a', 'public.b'] }],
  ['heartbeat_interval_s', { heartbeat_interval_s: 86401 }],
  ['snapshot_mode', { snapshot_mode: 'sometimes' }],
  ['password_secret', { password: '', password_secret: 'vault:x' }],
  ['password_secret', { password_secret: 'env:PG_PASSWORD' }],
  ['password_secret', { password: '', password_secret: 'file:relative' }],
  ['password_secret', { password: '', password_secret: 'env:1A' }],
  // Only source secrets may be named: not the sink's or the workers' other variables.
  ['password_secret', { password: '', password_secret: 'env:PG_PASSWORD' }],
  ['password_secret', { password: '', password_secret: 'env:TUMBLEWEED_ADMIN_TOKEN' }],
  ['password_secret', { password: '', password_secret: 'env:TUMBLEWEED_SECRET_' }],
  ['sslmode', { sslmode: 'verify' }],
  ['sslrootcert', { sslmode: 'verify-full' }],
  ['sslrootcert', { sslmode: 'verify-ca', sslrootcert: 'certs/ca.pem' }],
  ['sslrootcert', { sslmode: 'require', sslrootcert: 'rds' }],
];

test('source form validation names the same field as the API', async () => {
  assert.equal(validateSource(valid).size, 0);
  assert.equal(validateSource({ ...valid, mode: 'outbox', tables: [] }).size, 0);
  assert.equal(validateSource({ ...valid, sslmode: 'verify-full', sslrootcert: 'rds' }).size, 0);
  assert.equal(validateSource({ ...valid, sslmode: 'verify-ca', sslrootcert: '/etc/ssl/ca.pem' }).size, 0);
  for (const [fieldName, change] of bad) {
    const req = { ...valid, ...change };
    const local = validateSource(req);
    assert.deepEqual([...local.keys()], [fieldName], `client: ${JSON.stringify(change)}`);
    // Validation fails before the API touches anything, so these requests are harmless.
    const res = await adminApi('POST', '/v1/sources', req);
    assert.equal(res.status, 400, `API: ${JSON.stringify(change)} → ${JSON.stringify(res.json)}`);
    assert.equal(res.json.field, fieldName, `API field for ${JSON.stringify(change)}: ${JSON.stringify(res.json)}`);
  }
  void env;
});

test('filter errors map to the consumer form fields, with their position', () => {
  // The fields the sink names (sink/src/filter.rs); topic names have dots.
  assert.equal(filterFieldOf('filters.*.where'), 'filter-where');
  assert.equal(filterFieldOf('filters.s.public.orders.where'), 'filter-where');
  assert.equal(filterFieldOf('filters.s.public.orders.columns'), 'filter-columns');
  assert.equal(filterFieldOf('filters.*.exclude_columns'), 'filter-columns');
  assert.equal(filterFieldOf('filters.*.ops'), 'ops');
  assert.equal(filterFieldOf('filters.b'), 'filter-scope');
  assert.equal(filterFieldOf('filters.s.public.orders'), 'filter-scope');
  assert.equal(filterFieldOf('name'), null);
  assert.equal(filterFieldOf(null), null);
  const err = (message, position) => ({ message, body: position ? { error: message, position } : { error: message } });
  assert.equal(apiMessage(err('bad', { line: 2, column: 5 })), 'bad (line 2, column 5)');
  assert.equal(apiMessage(err('does not parse at line 2, column 5: x', { line: 2, column: 5 })), 'does not parse at line 2, column 5: x');
  assert.equal(apiMessage(err('unknown column')), 'unknown column');
  assert.equal(apiMessage({ message: 'no body', body: null }), 'no body');
});
