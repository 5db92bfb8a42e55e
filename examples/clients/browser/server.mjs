// The browser example's backend: a zero-dependency Node.js (>= 20) server that
//   - serves the page (index.html, app.js),
//   - keeps the consumer token: the page asks it for a single-use stream ticket (POST /ticket)
//     and for acks (POST /ack), and it forwards both to the sink with the token in the header,
//   - passes the event stream through (GET /v1/consumers/NAME/events?ticket=…), so the page and
//     its EventSource talk to one origin (the sink sends no CORS headers; in production a
//     reverse proxy in front of both does the same).
//
//   TUMBLEWEED_URL=http://127.0.0.1:8080 TUMBLEWEED_CONSUMER=billing TUMBLEWEED_TOKEN=twc_… \
//   PORT=8090 node server.mjs        # then open http://127.0.0.1:8090/

import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function env(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback === undefined) throw new Error(`${name} is not set`);
    return fallback;
  }
  return v;
}

/** Starts the backend; resolves to the http.Server once it listens. */
export function start({ port = Number(env('PORT', '8090')), host = '127.0.0.1' } = {}) {
  const sink = new URL(env('TUMBLEWEED_URL'));
  const consumer = env('TUMBLEWEED_CONSUMER');
  const token = env('TUMBLEWEED_TOKEN');
  const config = {
    consumer,
    ack_every: Number(env('ACK_EVERY', '100')),
    ack_interval_secs: Number(env('ACK_INTERVAL_SECS', '5')),
  };
  const files = {
    '/': ['index.html', 'text/html; charset=utf-8'],
    '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  };
  const consumerPath = `/v1/consumers/${encodeURIComponent(consumer)}`;

  /** Sends one request to the sink and pipes its answer (streamed) to `res`. */
  function forward(req, res, sinkPath, { method = req.method, headers = {}, body } = {}) {
    const upstream = http.request(
      new URL(sinkPath, sink),
      { method, headers: { ...headers, ...(body ? { 'Content-Type': 'application/json' } : {}) } },
      (answer) => {
        const pass = {};
        for (const h of ['content-type', 'cache-control', 'retry-after']) {
          if (answer.headers[h]) pass[h] = answer.headers[h];
        }
        res.writeHead(answer.statusCode, pass);
        res.flushHeaders();
        answer.pipe(res);
      },
    );
    upstream.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `sink unreachable: ${e.message}` }));
    });
    res.on('close', () => upstream.destroy()); // the page went away: close the stream too
    upstream.end(body);
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://page');
    const file = files[url.pathname];
    if (req.method === 'GET' && file) {
      res.writeHead(200, { 'content-type': file[1], 'cache-control': 'no-store' });
      res.end(readFileSync(path.join(here, file[0])));
    } else if (req.method === 'GET' && url.pathname === '/favicon.ico') {
      res.writeHead(204);
      res.end();
    } else if (req.method === 'GET' && url.pathname === '/config') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(config));
    } else if (req.method === 'POST' && url.pathname === '/ticket') {
      // The token stays here; the page gets a ticket worth one stream within 60 s.
      forward(req, res, `${consumerPath}/tickets`, { headers: { Authorization: `Bearer ${token}` } });
    } else if (req.method === 'POST' && url.pathname === '/ack') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c) => (body += c));
      req.on('end', () =>
        forward(req, res, `${consumerPath}/ack`, { headers: { Authorization: `Bearer ${token}` }, body }),
      );
    } else if (req.method === 'GET' && url.pathname === `${consumerPath}/events`) {
      // The ticket in the query is the credential; the resume position comes as
      // ?last_event_id= (or the browser's own Last-Event-ID header on its reconnects).
      const headers = { Accept: 'text/event-stream' };
      if (req.headers['last-event-id']) headers['Last-Event-ID'] = req.headers['last-event-id'];
      forward(req, res, url.pathname + url.search, { headers });
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'not found' }));
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const server = await start();
  const { address, port } = server.address();
  console.error(`browser example: open http://${address}:${port}/`);
}
