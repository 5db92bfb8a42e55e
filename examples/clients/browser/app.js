// The browser example: the page's native EventSource, with its output and position in
// localStorage.
//
// Exactly once, by storing the position with the result: processing an event stores one
// record (with the event's SSE id) under `tw.out.<n>` and then `tw.count = n + 1`: the count is
// the commit point, so a record written without its count is overwritten next time. On load,
// the last counted record says where to resume. EventSource cannot send headers, so the stream
// is opened with a single-use ticket from the backend (which keeps the token) and the position
// goes in `?last_event_id=`. A ticket opens one stream: after any error the page closes the
// EventSource (its own reconnect would present the used ticket again) and opens a new one with
// a new ticket and its stored position. Acks go through the backend too.

const store = window.localStorage;
const $ = (id) => document.getElementById(id);
const config = await (await fetch('/config')).json();

let count = Number(store.getItem('tw.count') || 0);
let lastId = count > 0 ? JSON.parse(store.getItem(`tw.out.${count - 1}`)).id : null;
let ackedId = null;
let sinceAck = 0;
let acking = false;
let source = null;
let backoffMs = 1000;

function notice(text) {
  console.warn(text);
  const el = $('notices');
  el.textContent = `${new Date().toISOString()} ${text}\n${el.textContent}`.slice(0, 20000);
}

function show() {
  $('count').textContent = String(count);
  $('last-id').textContent = lastId ?? '–';
  $('acked').textContent = ackedId ?? '–';
}

/** "Processes" one change: a record and the count that commits it. */
function processChange(id, change) {
  const row = change.op === 'd' ? change.before : change.after;
  const record = JSON.stringify({ id, topic: change.topic, table: change.table, op: change.op, key: change.key, row });
  store.setItem(`tw.out.${count}`, record);
  store.setItem('tw.count', String(count + 1));
  count += 1;
  lastId = id;
  sinceAck += 1;
  const latest = $('latest');
  latest.textContent = `${record}\n${latest.textContent}`.slice(0, 4000);
  if (sinceAck >= config.ack_every) void ack();
}

/** Tells the sink the position (through the backend, which has the token). */
async function ack() {
  if (acking || lastId === null || lastId === ackedId) return;
  acking = true;
  const cursor = lastId;
  sinceAck = 0;
  try {
    const r = await fetch('/ack', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ cursor }) });
    if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
    ackedId = cursor;
    show();
  } catch (e) {
    notice(`ack failed (will retry): ${e.message}`);
  } finally {
    acking = false;
  }
}
setInterval(() => void ack(), config.ack_interval_secs * 1000);
setInterval(show, 250);

function reconnectLater(why) {
  $('status').textContent = `reconnecting in ${backoffMs} ms (${why})`;
  setTimeout(connect, backoffMs);
  backoffMs = Math.min(backoffMs * 2, 30000);
}

async function connect() {
  let eventsPath;
  try {
    const r = await fetch('/ticket', { method: 'POST' });
    if (!r.ok) throw new Error(`ticket: ${r.status} ${await r.text()}`);
    eventsPath = (await r.json()).events_path; // "/v1/consumers/NAME/events?ticket=twt_…"
  } catch (e) {
    reconnectLater(e.message);
    return;
  }
  const url = eventsPath + (lastId ? `&last_event_id=${encodeURIComponent(lastId)}` : '');
  source = new EventSource(url);
  source.onopen = () => {
    backoffMs = 1000;
    $('status').textContent = lastId ? `streaming (resumed after ${lastId})` : 'streaming (no position yet: after the last ack)';
    console.info($('status').textContent);
  };
  source.onmessage = (e) => processChange(e.lastEventId, JSON.parse(e.data));
  source.addEventListener('gap', (e) => notice(`gap: events lost to retention: ${e.data}`));
  source.addEventListener('reset', (e) => notice(`reset: topic recreated, continuing on its new log: ${e.data}`));
  source.onerror = () => {
    source.close();
    reconnectLater('stream closed');
  };
}

show();
connect();
