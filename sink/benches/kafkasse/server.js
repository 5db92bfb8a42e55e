#!/usr/bin/env node
// The benchmark's peer: Wikimedia's KafkaSSE (npm kafka-sse 0.4.2), the library a team would
// otherwise put between Kafka and its SSE clients, served the way its own example server does
// it, on the same broker the sink reads.
//
//   GET /<topic>   one KafkaSSE stream (one node-rdkafka consumer) of that topic; from the
//                  end, or from the offsets in `Last-Event-ID` (KafkaSSE's own JSON form,
//                  e.g. [{"topic":"t","partition":0,"offset":0}] for the start).
//
// Settings (environment): KAFKASSE_PORT (the port to listen on, required), KAFKA_BOOTSTRAP
// (required), KAFKASSE_FETCH_WAIT_MS (fetch.wait.max.ms, the same value the sink gets, so both
// wait as long for a fetch), KAFKASSE_IDLE_DELAY_MS (KafkaSSE's pause when a poll finds
// nothing; its default is 100, which would add up to 100 ms to every live event: the benchmark
// sets 1 so the comparison is of the designs, not of a default).
'use strict';

const http = require('http');
const kafkaSse = require('kafka-sse');

function required(name) {
    const v = process.env[name];
    if (!v) {
        console.error(`kafkasse server: set ${name}`);
        process.exit(2);
    }
    return v;
}

const port = Number(required('KAFKASSE_PORT'));
const bootstrap = required('KAFKA_BOOTSTRAP');
const fetchWait = process.env.KAFKASSE_FETCH_WAIT_MS || '100';
const idleDelayMs = Number(process.env.KAFKASSE_IDLE_DELAY_MS || '1');

// Errors of one stream are the stream's business; the benchmark sees them as a short count.
// A client that hangs up at the end of a run is not an error worth a stack trace.
function oneLine(args) {
    const e = args.find((a) => a && (a.err || a instanceof Error));
    const msg = e ? String((e.err || e).message || e.err || e) : args.map(String).join(' ');
    return msg.split('\n')[0];
}
const quiet = {
    child() { return quiet; },
    trace() {}, debug() {}, info() {}, warn() {},
    error(...args) {
        const line = oneLine(args);
        if (!/already finished|ECONNRESET|EPIPE/.test(line)) console.error('kafkasse:', line);
    },
    fatal(...args) { console.error('kafkasse:', oneLine(args)); },
};

const server = http.createServer((req, res) => {
    const topic = decodeURIComponent(req.url.replace(/^\//, '').split('?')[0]);
    if (!topic) {
        res.statusCode = 404;
        res.end();
        return;
    }
    kafkaSse(req, res, [topic], {
        kafkaConfig: {
            'metadata.broker.list': bootstrap,
            'fetch.wait.max.ms': fetchWait,
        },
        idleDelayMs,
        logger: quiet,
    }).catch((e) => console.error('kafkasse stream ended:', e && e.message));
});
server.keepAliveTimeout = 0;
server.listen(port, '127.0.0.1', () => console.log(`kafkasse listening on 127.0.0.1:${port}`));
for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => process.exit(0));
}
