// A Tumbleweed consumer in Go with github.com/tmaxmax/go-sse.
//
// Exactly once, by storing the position with the result: processing an event appends one JSON
// line (with the event's SSE id) to OUTPUT in one write; on start the last complete line says
// where to resume (Last-Event-ID). Acks tell the sink the position too, for a restart that has
// lost OUTPUT. See ../README.md for the contract shared by all the examples.
//
//	TUMBLEWEED_URL=http://127.0.0.1:8080 TUMBLEWEED_CONSUMER=billing TUMBLEWEED_TOKEN=twc_… \
//	OUTPUT=events.jsonl go run .
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	if fallback == "" {
		log.Fatalf("error: %s is not set", name)
	}
	return fallback
}

// openOutput opens OUTPUT for appending, cuts off a torn last line (a write that a crash
// interrupted) and returns the file with the id of the last complete line ("" when none).
func openOutput(path string) (*os.File, string, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, "", err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, "", err
	}
	size := st.Size()
	pos := size
	var tail []byte
	// Read backwards until the last newline and the one before it (or the file's start).
	for pos > 0 {
		if last := bytes.LastIndexByte(tail, '\n'); last >= 0 && bytes.LastIndexByte(tail[:last], '\n') >= 0 {
			break
		}
		n := min(int64(65536), pos)
		pos -= n
		block := make([]byte, n)
		if _, err := f.ReadAt(block, pos); err != nil && !errors.Is(err, io.EOF) {
			return nil, "", err
		}
		tail = append(block, tail...)
	}
	last := bytes.LastIndexByte(tail, '\n')
	end := int64(0) // everything after the last newline is torn
	if last >= 0 {
		end = pos + int64(last) + 1
	}
	if end < size {
		log.Printf("cutting a torn last line (%d bytes) off %s", size-end, path)
		if err := f.Truncate(end); err != nil {
			return nil, "", err
		}
	}
	if last < 0 {
		return f, "", nil
	}
	prev := bytes.LastIndexByte(tail[:last], '\n')
	var line struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(tail[prev+1:last], &line); err != nil {
		return nil, "", fmt.Errorf("the last line of %s: %w", path, err)
	}
	return f, line.ID, nil
}

type change struct {
	Topic  string          `json:"topic"`
	Table  string          `json:"table"`
	Op     string          `json:"op"`
	Key    json.RawMessage `json:"key"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
}

type consumer struct {
	base, name, token string
	ackEvery          int

	mu       sync.Mutex // the stream's goroutine writes, the ack ticker reads
	out      *os.File
	lastID   string // the id of the last event written to OUTPUT
	ackedID  string
	sinceAck int
}

// process "processes" one change: one line, one write (O_APPEND; survives a kill -9).
func (c *consumer) process(id string, data string) error {
	var ch change
	if err := json.Unmarshal([]byte(data), &ch); err != nil {
		return err
	}
	row := ch.After
	if ch.Op == "d" {
		row = ch.Before
	}
	line, err := json.Marshal(map[string]any{
		"id": id, "topic": ch.Topic, "table": ch.Table, "op": ch.Op, "key": ch.Key, "row": row,
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	_, err = c.out.Write(append(line, '\n'))
	if err == nil {
		c.lastID = id
		c.sinceAck++
	}
	due := c.sinceAck >= c.ackEvery
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if due {
		c.ack()
	}
	return nil
}

// ack tells the sink the position of what OUTPUT holds (after an fsync: never ahead of it).
func (c *consumer) ack() {
	c.mu.Lock()
	cursor := c.lastID
	if cursor == "" || cursor == c.ackedID {
		c.mu.Unlock()
		return
	}
	c.sinceAck = 0
	err := c.out.Sync()
	c.mu.Unlock()
	if err != nil {
		log.Printf("fsync failed: %v", err)
		return
	}
	body, _ := json.Marshal(map[string]string{"cursor": cursor})
	req, _ := http.NewRequest(http.MethodPost, c.base+"/v1/consumers/"+url.PathEscape(c.name)+"/ack", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	client := http.Client{Timeout: 10 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		log.Printf("ack failed (will retry): %v", err)
		return
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		text, _ := io.ReadAll(res.Body)
		log.Printf("ack failed (will retry): %s %s", res.Status, text)
		return
	}
	c.mu.Lock()
	c.ackedID = cursor
	c.mu.Unlock()
}

// resumeTransport sets the token and, on every (re)connection, Last-Event-ID from OUTPUT:
// go-sse's own reconnects send the last id *it* saw, and none before its first event.
type resumeTransport struct{ c *consumer }

func (t resumeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.c.token)
	t.c.mu.Lock()
	last := t.c.lastID
	t.c.mu.Unlock()
	if last != "" {
		log.Printf("connecting (Last-Event-ID %s)", last)
		r.Header.Set("Last-Event-ID", last)
	} else {
		log.Printf("connecting (no Last-Event-ID)")
		r.Header.Del("Last-Event-ID")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("consumer: ")
	ackEvery, err := strconv.Atoi(env("ACK_EVERY", "100"))
	if err != nil {
		log.Fatalf("error: ACK_EVERY: %v", err)
	}
	ackInterval, err := strconv.ParseFloat(env("ACK_INTERVAL_SECS", "5"), 64)
	if err != nil {
		log.Fatalf("error: ACK_INTERVAL_SECS: %v", err)
	}
	output := env("OUTPUT", "events.jsonl")
	out, lastID, err := openOutput(output)
	if err != nil {
		log.Fatalf("error: opening %s: %v", output, err)
	}
	c := &consumer{
		base: env("TUMBLEWEED_URL", ""), name: env("TUMBLEWEED_CONSUMER", ""),
		token: env("TUMBLEWEED_TOKEN", ""), ackEvery: ackEvery, out: out, lastID: lastID,
	}
	for len(c.base) > 0 && c.base[len(c.base)-1] == '/' {
		c.base = c.base[:len(c.base)-1]
	}
	if lastID != "" {
		log.Printf("resuming after %s (from %s)", lastID, output)
	} else {
		log.Printf("no output yet: the sink starts after the last ack, or at the consumer's start")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		t := time.NewTicker(time.Duration(ackInterval * float64(time.Second)))
		defer t.Stop()
		for {
			select {
			case <-t.C:
				c.ack()
			case <-ctx.Done():
				return
			}
		}
	}()

	client := &sse.Client{
		HTTPClient: &http.Client{Transport: resumeTransport{c}},
		OnRetry: func(err error, d time.Duration) {
			log.Printf("connection lost (%v); reconnecting in %v", err, d.Round(time.Millisecond))
		},
		Backoff: sse.Backoff{InitialInterval: time.Second, Multiplier: 2, Jitter: 0.2, MaxInterval: 30 * time.Second},
	}
	backoff := time.Second
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/consumers/"+url.PathEscape(c.name)+"/events", http.NoBody)
		conn := client.NewConnection(req)
		conn.Buffer(nil, 1<<20) // events up to 1 MiB (go-sse's default limit is 64 KiB)
		conn.SubscribeMessages(func(e sse.Event) {
			if e.Data == "" {
				return // a bare `retry:` field, which go-sse passes on as an empty event
			}
			if err := c.process(e.LastEventID, e.Data); err != nil {
				log.Fatalf("error: processing event %s: %v", e.LastEventID, err)
			}
		})
		conn.SubscribeEvent("gap", func(e sse.Event) { log.Printf("gap: events lost to retention: %s", e.Data) })
		conn.SubscribeEvent("reset", func(e sse.Event) { log.Printf("reset: topic recreated, continuing on its new log: %s", e.Data) })
		// Connect reconnects by itself after a dropped connection; it returns on a refusal
		// (401, 429, 503, …: go-sse treats any answer but a 200 event stream as final).
		err := conn.Connect()
		if ctx.Err() != nil {
			break
		}
		log.Printf("stream refused (%v); reconnecting in %v", err, backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(backoff*2, 30*time.Second)
	}
	c.ack()
	_ = c.out.Close()
}
