// The sink's HTTP API: the admin token, JSON requests with errors as exceptions, and the
// admin live tail read with fetch() (EventSource cannot send an Authorization header, and the
// admin token must never appear in a URL).

const TOKEN_KEY = 'tumbleweed.adminToken';

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}
export function setToken(t) {
  sessionStorage.setItem(TOKEN_KEY, t);
}
export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An API error: HTTP status, the server's message and, when given, the field it concerns. */
export class ApiError extends Error {
  constructor(status, message, field, body) {
    super(message);
    this.status = status;
    this.field = field || null;
    this.body = body || null;
  }
}

let onUnauthorized = () => {};
/** Called when an admin request answers 401 (token wrong or rotated). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/**
 * Sends a request to the sink. `token` overrides the stored admin token (sign-in check);
 * resolves to the parsed JSON body (null for 204) or throws ApiError.
 */
export async function api(method, path, body, { token, signal } = {}) {
  const headers = { Accept: 'application/json' };
  const t = token ?? getToken();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, `The sink cannot be reached (${e.message}).`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { error: text.slice(0, 500) }; }
  }
  if (!res.ok) {
    const message = (data && data.error) || `${res.status} ${res.statusText}`;
    const err = new ApiError(res.status, message, data && data.field, data);
    if (res.status === 401 && token === undefined) onUnauthorized(err);
    throw err;
  }
  return data;
}

export const enc = encodeURIComponent;

/**
 * Parses a text/event-stream body incrementally (the WHATWG rules: `field: value` lines,
 * `:` comments, a blank line dispatches, `data` lines join with "\n", `id` persists).
 * Feed chunks of text with push(); each complete event calls onEvent({id, event, data}).
 */
export class SseParser {
  constructor(onEvent, onRetry) {
    this.onEvent = onEvent;
    this.onRetry = onRetry || (() => {});
    this.buf = '';
    this.data = [];
    this.event = '';
    this.lastId = '';
    this.sawCR = false;
  }

  push(chunk) {
    let text = chunk;
    // A CRLF split across chunks: the LF right after a CR we already used is skipped.
    if (this.sawCR && text.startsWith('\n')) text = text.slice(1);
    this.sawCR = false;
    this.buf += text;
    let start = 0;
    for (let i = 0; i < this.buf.length; i++) {
      const c = this.buf[i];
      if (c !== '\n' && c !== '\r') continue;
      this.line(this.buf.slice(start, i));
      if (c === '\r') {
        if (i + 1 < this.buf.length) {
          if (this.buf[i + 1] === '\n') i++;
        } else {
          this.sawCR = true;
        }
      }
      start = i + 1;
    }
    this.buf = this.buf.slice(start);
  }

  line(line) {
    if (line === '') {
      if (this.data.length) {
        this.onEvent({ id: this.lastId, event: this.event || 'message', data: this.data.join('\n') });
      }
      this.data = [];
      this.event = '';
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data': this.data.push(value); break;
      case 'event': this.event = value; break;
      case 'id': if (!value.includes('\0')) this.lastId = value; break;
      case 'retry': if (/^\d+$/.test(value)) this.onRetry(Number(value)); break;
      default: break;
    }
  }
}

/**
 * Follows an SSE endpoint with fetch() and the admin bearer header, reconnecting with the last
 * event id (as `?last_event_id=`, a position, not a secret) after a drop.
 * Returns { stop() }. Callbacks: onEvent(ev), onState(state, detail) with state in
 * connecting | open | retrying | error | closed.
 */
export function followStream(path, { onEvent, onState, params = {} }) {
  const ctrl = new AbortController();
  let retryMs = 2000;
  let lastId = '';
  let stopped = false;

  async function once() {
    const q = new URLSearchParams(params);
    if (lastId) q.set('last_event_id', lastId);
    const qs = q.toString();
    onState('connecting');
    const res = await fetch(qs ? `${path}?${qs}` : path, {
      headers: { Authorization: `Bearer ${getToken()}`, Accept: 'text/event-stream' },
      signal: ctrl.signal,
      cache: 'no-store',
      credentials: 'omit',
    });
    if (!res.ok) {
      let msg = `${res.status} ${res.statusText}`;
      try { const b = await res.json(); if (b.error) msg = b.error; } catch { /* keep status */ }
      const err = new ApiError(res.status, msg);
      if (res.status === 401) onUnauthorized(err);
      throw err;
    }
    onState('open');
    const parser = new SseParser((ev) => {
      lastId = ev.id || lastId;
      onEvent(ev);
    }, (ms) => { retryMs = ms; });
    const reader = res.body.getReader();
    const decoder = new TextDecoder('utf-8');
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(decoder.decode(value, { stream: true }));
    }
    parser.push(decoder.decode());
  }

  (async () => {
    while (!stopped) {
      try {
        await once();
        if (stopped) break;
        onState('retrying', 'The stream ended; reconnecting…');
      } catch (e) {
        if (stopped || e.name === 'AbortError') break;
        // Client errors (unknown topic, bad token, bad cursor) do not heal by retrying.
        if (e instanceof ApiError && e.status >= 400 && e.status < 500) {
          onState('error', e.message);
          stopped = true;
          break;
        }
        onState('retrying', `${e.message}; reconnecting in ${Math.round(retryMs / 1000)} s…`);
      }
      await new Promise((r) => setTimeout(r, retryMs));
    }
    onState('closed');
  })();

  return {
    stop() {
      stopped = true;
      ctrl.abort();
    },
  };
}
