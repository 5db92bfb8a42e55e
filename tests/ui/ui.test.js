// The operator UI in a real browser against the real local stack (PostgreSQL → Debezium →
// Kafka → sink). The cases run in order and share one source, one consumer and one browser.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { env, psql, adminApi, waitFor, launch, screenshot } from './lib.js';

const rand = randomBytes(4).toString('hex');
const db = `tw_ui_${rand}`;
const source = `ui_${rand}`;
const topic = `${source}.public.items`;
const consumer = `ui-${rand}`;
const filtered = `uif-${rand}`;
const orphanSlot = `tw_local_uiorphan_${rand}`;

describe('operator UI', { concurrency: false }, () => {
  let browser;
  let page;
  const requestUrls = [];
  const pageErrors = [];
  let consumerSseUrl = '';
  let consumerToken = '';
  let lastCursor = '';

  const insert = (marker) => psql(db, `INSERT INTO public.items (name) VALUES ('${marker}') RETURNING id`);
  const go = async (hash) => {
    await page.evaluate((h) => { location.hash = h; }, hash);
    await page.waitForFunction(() => !document.getElementById('main').hasAttribute('aria-busy'));
  };

  before(async () => {
    psql('postgres', `CREATE DATABASE ${db}`);
    psql(db, 'CREATE TABLE public.items (id serial PRIMARY KEY, name text NOT NULL)');
    // A row before the source exists: the snapshot (op "r") creates the topic.
    insert('seed');
    browser = await launch();
    page = await browser.context.newPage();
    browser.context.on('request', (r) => requestUrls.push(r.url()));
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  after(async () => {
    // Whatever a failed case left behind (each step is a no-op when already done).
    await adminApi('DELETE', `/v1/consumers/${consumer}`).catch(() => {});
    await adminApi('DELETE', `/v1/consumers/${filtered}`).catch(() => {});
    await adminApi('DELETE', `/v1/sources/${source}`).catch(() => {});
    try { psql(db, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name IN ('${orphanSlot}', 'tw_local_${source}') AND NOT active`); } catch { /* gone */ }
    try { psql('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`); } catch (e) { console.error(`cleanup: ${e.message}`); }
    if (browser) await browser.dispose();
  });

  test('a wrong admin token on sign-in shows an error next to the field', async () => {
    await page.goto(`${env.base}/#/sources`);
    await page.waitForURL(/#\/sign-in/);
    // Keyboard: the token field has the focus, Enter submits.
    assert.equal(await page.evaluate(() => document.activeElement.id), 'sign-in-token');
    await page.fill('#sign-in-token', 'not-the-admin-token-000');
    await page.press('#sign-in-token', 'Enter');
    const err = page.locator('#sign-in-token-error');
    await err.waitFor({ state: 'visible' });
    assert.match(await err.textContent(), /refused/i);
    assert.equal(await page.getAttribute('#sign-in-token', 'aria-invalid'), 'true');
    assert.match(await page.getAttribute('#sign-in-token', 'aria-describedby'), /sign-in-token-error/);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    await screenshot(page, 'sign-in-error');
  });

  test('a path without a hash (served index.html by the fallback) redirects to its page', async () => {
    await page.goto(`${env.base}/consumers`);
    await page.waitForURL(/\/#\/sign-in\?next=%23%2Fconsumers$/);
    await page.locator('#sign-in-token').waitFor();
  });

  test('signing in keeps the token in sessionStorage and opens the page asked for', async () => {
    await page.fill('#sign-in-token', env.token);
    await page.click('#sign-in button[type=submit]');
    await page.waitForURL(/#\/consumers$/);
    await page.locator('h1', { hasText: 'Consumers' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('tumbleweed.adminToken')), env.token);
    assert.equal(await page.getAttribute('nav a[data-section=consumers]', 'aria-current'), 'page');
    await page.click('nav a[data-section=sources]');
    await page.locator('h1', { hasText: 'Sources' }).waitFor();
    // Focus moves to the new page's heading.
    await page.waitForFunction(() => document.activeElement.tagName === 'H1', null, { timeout: 5000 });
  });

  test('a bad source name is shown next to the name field (checked before any request)', async () => {
    await go('#/sources/new');
    const posts = [];
    const onReq = (r) => { if (r.method() === 'POST') posts.push(r.url()); };
    page.on('request', onReq);
    await page.fill('#source-name', 'Bad-Name!');
    await page.fill('#source-host', env.pgHost);
    await page.fill('#source-port', env.pgPort);
    await page.fill('#source-database', db);
    await page.fill('#source-user', 'postgres');
    await page.fill('#source-tables', 'public.items');
    await page.click('#source-form button[type=submit]');
    const err = page.locator('[data-field=name] .field-error');
    await err.waitFor({ state: 'visible' });
    assert.match(await err.textContent(), /invalid source name/);
    assert.equal(await page.getAttribute('#source-name', 'aria-invalid'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'source-name', 'focus moves to the field to fix');
    page.off('request', onReq);
    assert.deepEqual(posts, []);
    await screenshot(page, 'source-form-error');
  });

  test('an API readiness error is shown next to the field it names', async () => {
    await page.fill('#source-name', source);
    await page.fill('#source-tables', 'public.missing_table');
    await page.click('#source-form button[type=submit]');
    const err = page.locator('[data-field=tables] .field-error');
    await err.waitFor({ state: 'visible', timeout: 20000 });
    assert.match(await err.textContent(), /missing_table/);
    assert.equal(await page.locator('[data-field=name] .field-error').isVisible(), false);
    await screenshot(page, 'source-form-api-error');
  });

  test('a source created through the form runs its connector', async () => {
    await page.fill('#source-tables', 'public.items');
    await page.click('#source-form button[type=submit]');
    await page.waitForURL(new RegExp(`#/sources/${source}\\?created=1`), { timeout: 60000 });
    const detail = page.locator('#source-detail');
    await detail.waitFor();
    assert.match(await detail.textContent(), new RegExp(`tw_local_${source}`));
    await go('#/sources');
    const row = page.locator(`tr[data-source="${source}"]`);
    await row.waitFor();
    await waitFor('the connector and its task to run', async () => {
      await page.click('text=Refresh');
      await page.waitForTimeout(300);
      const text = await page.locator(`tr[data-source="${source}"]`).textContent();
      return /RUNNING[\s\S]*task 0: RUNNING/.test(text);
    });
    await screenshot(page, 'sources');
    await go(`#/sources/${source}`);
    await page.locator('#source-detail').waitFor();
    await screenshot(page, 'source-detail');
  });

  test('a duplicate source name (409 from the API) is shown next to the name field', async () => {
    await go('#/sources/new');
    await page.fill('#source-name', source);
    await page.fill('#source-host', env.pgHost);
    await page.fill('#source-port', env.pgPort);
    await page.fill('#source-database', db);
    await page.fill('#source-user', 'postgres');
    await page.fill('#source-tables', 'public.items');
    await page.click('#source-form button[type=submit]');
    const err = page.locator('[data-field=name] .field-error');
    await err.waitFor({ state: 'visible', timeout: 20000 });
    assert.match(await err.textContent(), /already exists/);
  });

  test('a consumer created through the form shows its token once, with copy buttons', async () => {
    // The snapshot of the seed row creates the topic.
    await waitFor(`topic ${topic}`, async () => {
      const r = await adminApi('GET', '/v1/topics');
      return r.json.topics.some((t) => t.name === topic);
    }, { timeoutMs: 60000 });
    await go('#/consumers/new');
    await page.fill('#consumer-name', consumer);
    await page.fill('#consumer-topic-filter', source);
    await page.check(`#consumer-topic-list input[value="${topic}"]`);
    await page.check('input[name=start][value=earliest]');
    await page.click('#consumer-form button[type=submit]');
    const url = page.locator('#consumer-sse-url');
    await url.waitFor();
    consumerSseUrl = (await url.textContent()).trim();
    assert.match(consumerSseUrl, new RegExp(`/v1/consumers/${consumer}/events$`), 'no token in the URL');
    const token = (await page.locator('#consumer-token').textContent()).trim();
    assert.ok(token.length >= 16);
    consumerToken = token;
    assert.match(await page.locator('#consumer-curl').textContent(), new RegExp(`^curl -N -H 'Authorization: Bearer ${token}'`));
    const js = await page.locator('#consumer-js').textContent();
    assert.match(js, /new EventSource\(/);
    assert.match(js, /\/tickets/, 'the snippet opens the stream with a ticket');
    assert.ok(!/[?&]token=/.test(js), 'the snippet never puts the token in a URL');
    await page.click('button:has-text("Copy SSE URL")');
    await page.locator('.copy-status', { hasText: 'Copied.' }).first().waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), consumerSseUrl);
    await screenshot(page, 'consumer-token');
    await go('#/consumers');
    await page.locator(`tr[data-consumer="${consumer}"]`).waitFor();
    await screenshot(page, 'consumers');
  });

  test('consumer form: a duplicate name (409) shows next to the name field, a missing topic next to the topics', async () => {
    await go('#/consumers/new');
    await page.locator(`#consumer-topic-list input[value="${topic}"]`).waitFor();
    await page.fill('#consumer-name', consumer);
    await page.click('#consumer-form button[type=submit]');
    const topicsErr = page.locator('[data-field=topics] .field-error');
    await topicsErr.waitFor({ state: 'visible' });
    assert.match(await topicsErr.textContent(), /at least one topic/);
    await page.check(`#consumer-topic-list input[value="${topic}"]`);
    await page.click('#consumer-form button[type=submit]');
    const nameErr = page.locator('[data-field=name] .field-error');
    await nameErr.waitFor({ state: 'visible' });
    assert.match(await nameErr.textContent(), /already exists/);
    assert.equal(await topicsErr.isVisible(), false);
    await screenshot(page, 'consumer-form-error');
  });

  test('the live tail shows an inserted row within 2 s, newest on top, and pauses', async () => {
    await go(`#/tail?topic=${encodeURIComponent(topic)}`);
    await page.locator('#tail-status', { hasText: 'Connected' }).waitFor({ timeout: 15000 });
    const marker = `tail-${rand}-1`;
    const t0 = Date.now();
    insert(marker);
    await page.locator('#tail-events li.event', { hasText: marker }).waitFor({ timeout: 10000 });
    const ms = Date.now() - t0;
    console.log(`# live tail latency: ${ms} ms`);
    assert.ok(ms < 2000, `the row reached the live tail in ${ms} ms (limit 2000)`);

    await page.click('#tail-pause');
    assert.equal(await page.getAttribute('#tail-pause', 'aria-pressed'), 'true');
    const held = `tail-${rand}-2`;
    insert(held);
    await page.locator('#tail-status', { hasText: '1 waiting' }).waitFor({ timeout: 10000 });
    assert.equal(await page.locator('#tail-events li.event', { hasText: held }).count(), 0);
    await page.click('#tail-pause');
    const first = page.locator('#tail-events li.event').first();
    assert.match(await first.textContent(), new RegExp(held), 'newest on top');
    await screenshot(page, 'tail');
    await page.click('#tail-stop');
    await page.locator('#tail-status', { hasText: 'Stopped' }).waitFor();
  });

  test('the live tail of a consumer follows its topics', async () => {
    await go('#/tail');
    await page.selectOption('#tail-target', `consumer:${consumer}`);
    await page.click('#tail-start');
    await page.locator('#tail-status', { hasText: `Connected to consumer ${consumer}` }).waitFor({ timeout: 15000 });
    assert.match(page.url(), new RegExp(`#/tail\\?consumer=${consumer}$`));
    const marker = `tail-${rand}-3`;
    insert(marker);
    await page.locator('#tail-events li.event', { hasText: marker }).waitFor({ timeout: 5000 });
    await page.click('#tail-stop');
  });

  test('an EventSource opened with a ticket resumes from ?last_event_id= after a reload without duplicates', async () => {
    const es = await browser.context.newPage();
    es.on('pageerror', (e) => pageErrors.push(e.message));
    // Any page of the sink's origin will do; the UI itself is not used here.
    await es.goto(`${env.base}/#/sign-in`);
    // As the token panel's snippet does: a single-use ticket (token in the header), then the
    // stream with it.
    const open = (lastId) => es.evaluate(async ([name, token, resumeFrom]) => {
      const r = await fetch(`/v1/consumers/${name}/tickets`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
      const { events_path: path } = await r.json();
      window.__events = [];
      window.__es = new EventSource(path + (resumeFrom ? `&last_event_id=${encodeURIComponent(resumeFrom)}` : ''));
      window.__es.onmessage = (e) => {
        const d = JSON.parse(e.data);
        window.__events.push({ id: e.lastEventId, offset: d.offset, name: d.after && d.after.name, op: d.op });
      };
    }, [consumer, consumerToken, lastId]);
    const events = () => es.evaluate(() => window.__events);
    await open(null);
    const m1 = `es-${rand}-1`;
    insert(m1);
    const first = await waitFor('the first row over EventSource', async () => {
      const evs = await events();
      return evs.some((e) => e.name === m1) && evs;
    }, { timeoutMs: 10000 });
    // start=earliest: the snapshot row, the live tail rows, then m1.
    assert.deepEqual(first.map((e) => e.name), ['seed', `tail-${rand}-1`, `tail-${rand}-2`, `tail-${rand}-3`, m1]);
    assert.equal(first[0].op, 'r');
    const last = first[first.length - 1].id;
    assert.ok(last, 'events carry an id');
    lastCursor = last;

    await es.reload();
    await open(last);
    const m2 = `es-${rand}-2`;
    insert(m2);
    const second = await waitFor('the second row after the reload', async () => {
      const evs = await events();
      return evs.some((e) => e.name === m2) && evs;
    }, { timeoutMs: 10000 });
    await es.waitForTimeout(500);
    const all = await events();
    assert.deepEqual(all.map((e) => e.name), [m2], `after the reload only the new row arrives (got ${JSON.stringify(second)})`);
    assert.ok(all[0].offset > first[first.length - 1].offset);
    await es.evaluate(() => window.__es.close());
    await es.close();
  });

  test('the consumer detail shows its lag and last acknowledged position', async () => {
    const token = consumerToken;
    const res = await fetch(`${env.base}/v1/consumers/${consumer}/ack`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ cursor: lastCursor }),
    });
    const body = await res.text();
    assert.equal(res.status, 200, body);
    const acked = JSON.parse(body).acked_offsets[topic][0];
    await go(`#/consumers/${consumer}`);
    await page.locator('#consumer-acks').waitFor();
    assert.equal((await page.locator('#consumer-acks [data-k=acked]').first().textContent()).trim(), String(acked));
    assert.match(await page.locator('#consumer-detail [data-k=lag]').textContent(), /not connected|\d+ event/);
    assert.notEqual((await page.locator('#consumer-detail [data-k=acked-at]').textContent()).trim(), 'never', 'the ack time is shown');
    await screenshot(page, 'consumer-detail');
  });

  test('consumer form: the filter is checked by the sink as it is typed (positioned errors next to the field), previewed on recent events, and shown on the consumer page', async () => {
    const marks = ['a', 'b', 'c'].map((s) => `filt-${rand}-${s}`);
    const ids = marks.map((m) => Number(insert(m)));
    // One event per row (the snapshot's and inserts); the form previews the 10 newest.
    const rows = Number(psql(db, 'SELECT count(*) FROM public.items'));
    const checked = Math.min(10, rows);

    await go('#/consumers/new');
    await page.fill('#consumer-name', filtered);
    await page.fill('#consumer-topic-filter', source);
    await page.check(`#consumer-topic-list input[value="${topic}"]`);
    assert.deepEqual(await page.locator('#consumer-filter-scope option').evaluateAll((os) => os.map((o) => o.value)), ['*', topic],
      '"Applies to" offers all picked topics or one of them');
    assert.match(await page.getAttribute('#consumer-filter-where', 'aria-describedby'), /consumer-filter-where-hint/);
    assert.match(await page.locator('#consumer-filter-where-hint').textContent(), /after\.status == 'paid' && after\.amount_cents > 1000/);

    // A syntax error, typed key by key: one check after typing stops, its position shown.
    const previews = [];
    const onReq = (r) => { if (r.url().endsWith('/v1/filters/preview')) previews.push(r.postDataJSON()); };
    page.on('request', onReq);
    const broken = "after.name == 'x' &&";
    await page.locator('#consumer-filter-where').pressSequentially(broken, { delay: 20 });
    const whereErr = page.locator('[data-field=filter-where] .field-error');
    await whereErr.waitFor({ state: 'visible', timeout: 10000 });
    const message = await whereErr.textContent();
    assert.match(message, /does not parse/);
    assert.match(message, /line 1, column \d+/, `the error gives its position: ${message}`);
    assert.equal(await page.getAttribute('#consumer-filter-where', 'aria-invalid'), 'true');
    assert.match(await page.locator('#consumer-filter-summary').textContent(), /cannot be used yet/);
    await page.waitForTimeout(600);
    page.off('request', onReq);
    assert.ok(previews.length >= 1 && previews.length <= 2, `debounced: ${previews.length} checks for ${broken.length} keys`);
    assert.deepEqual(previews[previews.length - 1], { topic, filter: { where: broken }, limit: 10 });

    // Fixed: the error goes, and the preview counts what would be delivered.
    const predicate = `after.name == '${marks[1]}'`;
    await page.fill('#consumer-filter-where', predicate);
    const summary = page.locator('#consumer-filter-summary');
    const counted = `1 of ${checked} recent events of ${topic} delivered.`;
    // The rows may still be on their way through Debezium: "Preview" asks again.
    await waitFor(`"${counted}"`, async () => {
      if ((await summary.textContent()) === counted) return true;
      await page.click('#consumer-filter-preview-button');
      await page.waitForTimeout(500);
      return (await summary.textContent()) === counted;
    }, { timeoutMs: 20000 });
    assert.equal(await whereErr.isVisible(), false);
    assert.equal(await page.getAttribute('#consumer-filter-where', 'aria-invalid'), null);
    assert.equal(await summary.getAttribute('role'), 'status');
    const table = page.locator('#consumer-filter-preview table');
    assert.equal(await table.locator('tbody tr').count(), checked);
    const delivered = table.locator('tbody tr[data-delivered=true]');
    assert.equal(await delivered.count(), 1);
    assert.match(await delivered.locator('[data-k=json]').textContent(), new RegExp(`"name":"${marks[1]}"`));
    assert.match(await table.locator('tbody tr[data-delivered=false]').first().locator('[data-k=result]').textContent(), /filtered out/);
    // The three new rows are among the newest events shown (the sink orders by timestamp).
    const shown = await table.locator('tbody').textContent();
    for (const m of marks) assert.ok(shown.includes(`"name":"${m}"`), `${m} is previewed`);
    assert.match(await page.locator('#consumer-filter-known-columns').textContent(), /id, name/);

    // A projection with a column the table does not have: refused next to the columns.
    await page.check('input[name=projection][value=keep]');
    await page.fill('#consumer-filter-column-list', 'id, nope');
    const colErr = page.locator('[data-field=filter-columns] .field-error');
    await colErr.waitFor({ state: 'visible', timeout: 10000 });
    assert.match(await colErr.textContent(), /unknown column "nope"/);
    await page.fill('#consumer-filter-column-list', 'id');
    await colErr.waitFor({ state: 'hidden', timeout: 10000 });
    await waitFor('the projected preview', async () =>
      /^\{.*"after":\{"id":\d+\}/.test(await delivered.locator('[data-k=json]').textContent()), { timeoutMs: 10000 });
    const json = await delivered.locator('[data-k=json]').textContent();
    assert.ok(json.includes(`"after":{"id":${ids[1]}}`), json);
    assert.ok(!json.includes(marks[1]), 'the name column is dropped');
    await page.click('#consumer-filter-preview-button');
    await summary.filter({ hasText: `1 of ${checked} recent events` }).waitFor();
    await screenshot(page, 'consumer-filter');

    // Created with the filter (ops stay consumer-wide, so none are sent).
    const posted = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/v1/consumers'));
    await page.click('#consumer-form button[type=submit]');
    const body = (await posted).postDataJSON();
    assert.deepEqual(body.filters, { '*': { where: predicate, columns: ['id'] } });
    assert.equal(body.ops, undefined);
    await page.locator('#consumer-token').waitFor();
    assert.deepEqual((await adminApi('GET', `/v1/consumers/${filtered}`)).json.filters, { '*': { where: predicate, columns: ['id'] } });

    await go(`#/consumers/${filtered}`);
    const rule = page.locator('#consumer-filters li[data-filter-key="*"]');
    await rule.waitFor();
    assert.match(await rule.locator('strong').textContent(), /All its topics/);
    assert.equal(await rule.locator('[data-k=where] code').textContent(), predicate);
    assert.match(await rule.locator('[data-k=columns]').textContent(), /^only id\b/);
    assert.match(await rule.locator('[data-k=ops]').textContent(), /^all/);
    await screenshot(page, 'consumer-filter-detail');
    // The consumer detail of an unfiltered consumer says so.
    await go(`#/consumers/${consumer}`);
    assert.match(await page.locator('#consumer-detail [data-k=filters]').textContent(), /^none/);
    assert.equal((await adminApi('DELETE', `/v1/consumers/${filtered}`)).status, 204);
  });

  // Series are waited for as attached, not visible: a flat line (a constant WAL or a lag of 0)
  // has an empty bounding box, which Playwright calls hidden.
  test('charts draw the live history (events/s, lag, retained WAL) and update; the consumer lists its live stream', async () => {
    // A consumer stream kept open in another tab while rows are written, as a service would.
    const es = await browser.context.newPage();
    es.on('pageerror', (e) => pageErrors.push(e.message));
    await es.goto(`${env.base}/#/sign-in`);
    await es.evaluate(async ([name, token]) => {
      const r = await fetch(`/v1/consumers/${name}/tickets`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
      const { events_path: path } = await r.json();
      window.__seen = 0;
      window.__es = new EventSource(path);
      window.__es.onmessage = () => { window.__seen += 1; };
    }, [consumer, consumerToken]);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing && i < 200; i++) {
        insert(`chart-${rand}-${i}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      // The history (1 s samples in this test's sink) sees the topic being read.
      const stats = await waitFor('a non-zero events/s sample of the topic', async () => {
        const st = (await adminApi('GET', '/v1/stats')).json;
        const rates = (st.events_per_sec_by_topic || {})[topic] || [];
        return rates.some((v) => v > 0) && (st.consumer_lag_events || {})[consumer] && st;
      }, { timeoutMs: 30000 });
      assert.ok(stats.t_ms.length >= 2);

      await go('#/health');
      const topicLine = page.locator(`[data-chart=events-by-topic] g.series[data-series="${topic}"]`);
      await topicLine.waitFor({ state: 'attached', timeout: 10000 });
      assert.match(await topicLine.locator('path').getAttribute('d'), /^M[\d.]+,[\d.]+L/, 'a line of at least two points');
      const slotLine = page.locator(`[data-chart=retained-wal] g.series[data-series="tw_local_${source}"]`);
      await slotLine.waitFor({ state: 'attached', timeout: 10000 });
      assert.match(await page.locator('[data-chart=retained-wal] li[data-series] [data-k=latest]').first().textContent(), /\d+(\.\d)? (B|KiB|MiB|GiB)/);
      const label = await page.locator('[data-chart=events-by-topic] svg').getAttribute('aria-label');
      assert.ok(label.includes(topic), label);
      // It updates without a reload: more samples a few seconds later.
      const before = Number(await page.getAttribute('[data-chart=events-by-topic]', 'data-samples'));
      await waitFor('the chart to redraw with newer samples', async () =>
        Number(await page.getAttribute('[data-chart=events-by-topic]', 'data-samples')) > before, { timeoutMs: 10000 });
      await screenshot(page, 'health-charts');

      await go(`#/consumers/${consumer}`);
      const streams = page.locator('#consumer-streams tbody tr');
      await streams.first().waitFor({ timeout: 10000 });
      assert.equal(await streams.count(), 1);
      assert.match(await streams.first().locator('[data-k=peer]').textContent(), /^127\.0\.0\.1:\d+$/);
      await page.locator(`#consumer-lag-trend g.series[data-series="${consumer}"]`).waitFor({ state: 'attached', timeout: 10000 });
      await screenshot(page, 'consumer-charts');

      await go('#/consumers');
      await page.locator(`#consumers-lag g.series[data-series="${consumer}"]`).waitFor({ state: 'attached', timeout: 10000 });
      await go('#/sources');
      await page.locator(`#sources-wal g.series[data-series="tw_local_${source}"]`).waitFor({ state: 'attached', timeout: 10000 });
      await screenshot(page, 'sources-wal');
      assert.ok(await es.evaluate(() => window.__seen) > 0, 'the stream received the rows');
    } finally {
      writing = false;
      await writer;
      await es.evaluate(() => window.__es.close()).catch(() => {});
      await es.close();
    }
  });

  test('the health page shows the source slot, the broker, the connector, and drops an orphan slot', async () => {
    psql(db, `SELECT pg_create_logical_replication_slot('${orphanSlot}', 'pgoutput')`);
    await go('#/health');
    const slot = page.locator(`tr[data-slot="tw_local_${source}"]`);
    await slot.waitFor();
    assert.match(await slot.locator('[data-k=active]').textContent(), /^active$/);
    assert.equal(await slot.locator('meter').count(), 1);
    assert.match(await page.locator('#broker-state').textContent(), /reachable/);
    assert.match(await page.locator(`tr[data-connector="tumbleweed-${source}"]`).textContent(), /RUNNING/);
    const orphan = page.locator(`tr[data-slot="${orphanSlot}"]`);
    assert.match(await orphan.textContent(), /orphan/);
    await screenshot(page, 'health');
    await orphan.locator('button[data-drop]').click();
    await page.locator('#confirm[open]').waitFor();
    // The drop needs the slot's name typed back: a wrong name leaves the button disabled.
    assert.equal(await page.locator('#confirm-ok').isDisabled(), true);
    await page.fill('#confirm-typed', `${orphanSlot}x`);
    assert.equal(await page.locator('#confirm-ok').isDisabled(), true);
    await page.fill('#confirm-typed', orphanSlot);
    assert.equal(await page.locator('#confirm-ok').isDisabled(), false);
    await page.click('#confirm-ok');
    await orphan.locator('text=slot dropped').waitFor({ timeout: 10000 });
    assert.equal(psql(db, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = '${orphanSlot}'`), '0');
  });

  test('deleting the consumer asks for confirmation', async () => {
    await go(`#/consumers/${consumer}`);
    await page.click('#delete-consumer');
    await page.locator('#confirm[open]').waitFor();
    await page.keyboard.press('Escape'); // cancel: nothing happens
    await page.locator('#confirm[open]').waitFor({ state: 'detached' });
    assert.equal((await adminApi('GET', `/v1/consumers/${consumer}`)).status, 200);
    await page.click('#delete-consumer');
    await page.click('#confirm-ok');
    await page.waitForURL(/#\/consumers$/);
    await page.locator('h1', { hasText: 'Consumers' }).waitFor();
    assert.equal(await page.locator(`tr[data-consumer="${consumer}"]`).count(), 0);
    assert.equal((await adminApi('GET', `/v1/consumers/${consumer}`)).status, 404);
  });

  test('deleting the source shows what was cleaned up, and the slot is gone', async () => {
    await go(`#/sources/${source}`);
    await page.click('#delete-source');
    await page.locator('#confirm[open]').waitFor();
    assert.match(await page.locator('#confirm-body').textContent(), new RegExp(`tw_local_${source}`));
    await page.click('#confirm-ok');
    const result = page.locator('#delete-result');
    await result.waitFor({ timeout: 60000 });
    assert.equal((await result.locator('[data-k=slot]').textContent()).trim(), 'dropped');
    assert.equal((await result.locator('[data-k=publication]').textContent()).trim(), 'dropped');
    assert.equal((await result.locator('[data-k=connector]').textContent()).trim(), 'deleted');
    await screenshot(page, 'source-deleted');
    assert.equal(psql(db, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'tw_local_${source}'`), '0');
  });

  test('the admin token never appeared in a URL, and the pages raised no errors', () => {
    const leaks = requestUrls.filter((u) => u.includes(env.token) || u.includes(encodeURIComponent(env.token)));
    assert.deepEqual(leaks, []);
    assert.deepEqual(pageErrors, []);
  });
});
