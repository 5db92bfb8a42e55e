// A Tumbleweed consumer in Node.js (>= 20) with the `eventsource` package.
//
// Exactly once, by storing the position with the result: processing an event appends one JSON
// line (with the event's SSE id) to OUTPUT in one write; on start the last complete line says
// where to resume (Last-Event-ID). Acks tell the sink the position too, for a restart that has
// lost OUTPUT. See ../README.md for the contract shared by all the examples.
//
//   TUMBLEWEED_URL=http://127.0.0.1:8080 TUMBLEWEED_CONSUMER=billing TUMBLEWEED_TOKEN=twc_… \
//   OUTPUT=events.jsonl node consumer.mjs

import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { EventSource } from 'eventsource';

function env(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback === undefined) {
      console.error(`consumer: error: ${name} is not set`);
      process.exit(2);
    }
    return fallback;
  }
  return v;
}

const base = env('TUMBLEWEED_URL').replace(/\/$/, '');
const consumer = env('TUMBLEWEED_CONSUMER');
const token = env('TUMBLEWEED_TOKEN');
const outputPath = env('OUTPUT', 'events.jsonl');
const ackEvery = Number(env('ACK_EVERY', '100'));
const ackIntervalMs = Number(env('ACK_INTERVAL_SECS', '5')) * 1000;
const log = (msg) => console.error(`consumer: ${msg}`);

// --- the output file: results and position together -----------------------------------------

/**
 * Opens OUTPUT for appending, cuts off a torn last line (a write that a crash interrupted) and
 * returns the fd with the id of the last complete line (null when the file is empty).
 */
function openOutput(path) {
  const fd = openSync(path, 'a+');
  const size = fstatSync(fd).size;
  // Read backwards until the last newline and the one before it (or the file's start).
  let pos = size;
  let tail = Buffer.alloc(0);
  const newlines = () => {
    const last = tail.lastIndexOf(0x0a);
    return [last, last > 0 ? tail.lastIndexOf(0x0a, last - 1) : -1];
  };
  while (pos > 0) {
    const [last, prev] = newlines();
    if (last >= 0 && prev >= 0) break;
    const n = Math.min(65536, pos);
    pos -= n;
    const block = Buffer.alloc(n);
    readSync(fd, block, 0, n, pos);
    tail = Buffer.concat([block, tail]);
  }
  const [last, prev] = newlines();
  const end = last < 0 ? 0 : pos + last + 1; // everything after the last newline is torn
  if (end < size) {
    log(`cutting a torn last line (${size - end} bytes) off ${path}`);
    ftruncateSync(fd, end);
  }
  const lastId = last < 0 ? null : JSON.parse(tail.subarray(prev + 1, last).toString('utf8')).id;
  return { fd, lastId };
}

const out = openOutput(outputPath);
let lastId = out.lastId; // the id of the last event written to OUTPUT
let ackedId = null;
let sinceAck = 0;
let acking = false;

/** "Processes" one change: one line, one write. */
function processChange(id, change) {
  const row = change.op === 'd' ? change.before : change.after;
  const line = JSON.stringify({ id, topic: change.topic, table: change.table, op: change.op, key: change.key, row }) + '\n';
  writeSync(out.fd, line); // O_APPEND: one write, never interleaved, survives a kill -9
  lastId = id;
  sinceAck += 1;
  if (sinceAck >= ackEvery) void ack();
}

/** Tells the sink the position of what OUTPUT holds (after an fsync, so it is never ahead). */
async function ack() {
  if (acking || lastId === null || lastId === ackedId) return;
  acking = true;
  const cursor = lastId;
  sinceAck = 0;
  try {
    fsyncSync(out.fd);
    const res = await fetch(`${base}/v1/consumers/${encodeURIComponent(consumer)}/ack`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ cursor }),
    });
    if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
    ackedId = cursor;
  } catch (e) {
    log(`ack failed (will retry): ${e.message}`);
  } finally {
    acking = false;
  }
}
const ackTimer = setInterval(() => void ack(), ackIntervalMs);

// --- the stream -------------------------------------------------------------------------------

const url = `${base}/v1/consumers/${encodeURIComponent(consumer)}/events`;
log(lastId ? `resuming after ${lastId} (from ${outputPath})` : 'no output yet: the sink starts after the last ack, or at the consumer\'s start');

let es;
let backoffMs = 1000;
function connect() {
  es = new EventSource(url, {
    // The library's own reconnects send *its* last id; ours is the one in OUTPUT, so the
    // header is always set here from what was written (and the token goes in the header).
    fetch: (input, init) =>
      fetch(input, {
        ...init,
        headers: {
          ...init.headers,
          Authorization: `Bearer ${token}`,
          ...(lastId ? { 'Last-Event-ID': lastId } : {}),
        },
      }),
  });
  es.onopen = () => {
    backoffMs = 1000;
    log('connected');
  };
  es.onmessage = (e) => processChange(e.lastEventId, JSON.parse(e.data));
  es.addEventListener('gap', (e) => log(`gap: events lost to retention: ${e.data}`));
  es.addEventListener('reset', (e) => log(`reset: topic recreated, continuing on its new log: ${e.data}`));
  es.onerror = (e) => {
    if (es.readyState === EventSource.CLOSED) {
      // A refusal (401, 429, 503, …) closes an EventSource for good: open a new one later.
      log(`stream refused (${e.code ?? ''} ${e.message ?? ''}); reconnecting in ${backoffMs} ms`);
      setTimeout(connect, backoffMs);
      backoffMs = Math.min(backoffMs * 2, 30000);
    } else {
      log(`connection lost (${e.message ?? 'closed'}); the library reconnects`);
    }
  };
}
connect();

async function shutdown() {
  es?.close();
  clearInterval(ackTimer);
  await ack();
  closeSync(out.fd);
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
