"""A Tumbleweed consumer in Python (>= 3.9) with httpx and httpx-sse.

Exactly once, by storing the position with the result: processing an event appends one JSON
line (with the event's SSE id) to OUTPUT in one write; on start the last complete line says
where to resume (Last-Event-ID). Acks tell the sink the position too, for a restart that has
lost OUTPUT. See ../README.md for the contract shared by all the examples.

    TUMBLEWEED_URL=http://127.0.0.1:8080 TUMBLEWEED_CONSUMER=billing TUMBLEWEED_TOKEN=twc_... \\
    OUTPUT=events.jsonl python consumer.py
"""

import json
import os
import signal
import sys
import threading
import time

import httpx
from httpx_sse import SSEError, connect_sse


def env(name, default=None):
    value = os.environ.get(name) or default
    if value is None:
        sys.exit(f"consumer: error: {name} is not set")
    return value


BASE = env("TUMBLEWEED_URL").rstrip("/")
CONSUMER = env("TUMBLEWEED_CONSUMER")
TOKEN = env("TUMBLEWEED_TOKEN")
OUTPUT = env("OUTPUT", "events.jsonl")
ACK_EVERY = int(env("ACK_EVERY", "100"))
ACK_INTERVAL_SECS = float(env("ACK_INTERVAL_SECS", "5"))
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def log(msg):
    print(f"consumer: {msg}", file=sys.stderr, flush=True)


def open_output(path):
    """Opens OUTPUT for appending, cuts off a torn last line (a write that a crash interrupted)
    and returns the fd with the id of the last complete line (None when there is none)."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    size = os.fstat(fd).st_size
    pos, tail = size, b""
    # Read backwards until the last newline and the one before it (or the file's start).
    while pos > 0:
        last = tail.rfind(b"\n")
        if last >= 0 and tail.rfind(b"\n", 0, last) >= 0:
            break
        n = min(65536, pos)
        pos -= n
        tail = os.pread(fd, n, pos) + tail
    last = tail.rfind(b"\n")
    end = 0 if last < 0 else pos + last + 1  # everything after the last newline is torn
    if end < size:
        log(f"cutting a torn last line ({size - end} bytes) off {path}")
        os.ftruncate(fd, end)
    if last < 0:
        return fd, None
    prev = tail.rfind(b"\n", 0, last)
    return fd, json.loads(tail[prev + 1 : last])["id"]


class Consumer:
    def __init__(self):
        self.fd, self.last_id = open_output(OUTPUT)
        self.acked_id = None
        self.since_ack = 0
        self.lock = threading.RLock()  # the stream thread writes, the ack timer reads (re-entrant: SIGTERM runs on the stream thread)
        self.ack_http = httpx.Client(timeout=10)
        self.stopping = threading.Event()

    def process(self, event_id, change):
        """'Processes' one change: one line, one write (O_APPEND; survives a kill -9)."""
        row = change["before"] if change["op"] == "d" else change["after"]
        line = json.dumps(
            {"id": event_id, "topic": change["topic"], "table": change["table"],
             "op": change["op"], "key": change["key"], "row": row},
            separators=(",", ":"),
        ) + "\n"
        with self.lock:
            os.write(self.fd, line.encode())
            self.last_id = event_id
            self.since_ack += 1
            due = self.since_ack >= ACK_EVERY
        if due:
            self.ack()

    def ack(self):
        """Tells the sink the position of what OUTPUT holds (after an fsync: never ahead)."""
        with self.lock:
            cursor = self.last_id
            if cursor is None or cursor == self.acked_id:
                return
            self.since_ack = 0
            os.fsync(self.fd)
        try:
            r = self.ack_http.post(f"{BASE}/v1/consumers/{CONSUMER}/ack", headers=AUTH,
                                   json={"cursor": cursor})
            r.raise_for_status()
            with self.lock:
                self.acked_id = cursor
        except httpx.HTTPError as e:
            log(f"ack failed (will retry): {e}")

    def ack_timer(self):
        while not self.stopping.wait(ACK_INTERVAL_SECS):
            self.ack()

    def run(self):
        threading.Thread(target=self.ack_timer, daemon=True).start()
        url = f"{BASE}/v1/consumers/{CONSUMER}/events"
        if self.last_id:
            log(f"resuming after {self.last_id} (from {OUTPUT})")
        else:
            log("no output yet: the sink starts after the last ack, or at the consumer's start")
        # The read timeout is longer than the sink's 15 s keepalive: a silent, dead connection
        # is noticed and reopened.
        http = httpx.Client(timeout=httpx.Timeout(10, read=45))
        backoff = 1.0
        while not self.stopping.is_set():
            headers = dict(AUTH)
            if self.last_id:
                headers["Last-Event-ID"] = self.last_id  # the position OUTPUT holds
            try:
                with connect_sse(http, "GET", url, headers=headers) as source:
                    source.response.raise_for_status()
                    log("connected")
                    backoff = 1.0
                    for sse in source.iter_sse():
                        if sse.event == "message" and sse.data:  # (not a bare `retry:`)
                            self.process(sse.id, json.loads(sse.data))
                        elif sse.event == "gap":
                            log(f"gap: events lost to retention: {sse.data}")
                        elif sse.event == "reset":
                            log(f"reset: topic recreated, continuing on its new log: {sse.data}")
                        if sse.retry:
                            backoff = sse.retry / 1000
                log("the stream ended")
            except (httpx.HTTPError, SSEError) as e:
                if self.stopping.is_set():
                    break
                log(f"stream failed ({e}); reconnecting in {backoff:.1f} s")
            time.sleep(backoff)
            backoff = min(backoff * 2, 30)

    def stop(self, *_):
        self.stopping.set()
        self.ack()
        os.close(self.fd)
        sys.exit(0)


if __name__ == "__main__":
    consumer = Consumer()
    signal.signal(signal.SIGTERM, consumer.stop)
    signal.signal(signal.SIGINT, consumer.stop)
    consumer.run()
