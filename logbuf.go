package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logBuffer batches the server's log lines into few writes. Written one by one, each
// request's line costs a write system call: about 2% of a page request's CPU. Lines
// wait at most its interval, or until 32 kB are waiting; warnings and errors go out at
// once (logBuffer.handler), and so does everything at Close. A crash of the process
// loses at most the last interval's informational lines.
type logBuffer struct {
	w        io.Writer
	interval time.Duration

	mu  sync.Mutex
	buf []byte

	stop chan struct{}
	done chan struct{}
}

const logBufferSize = 32 << 10

// newLogBuffer returns a logBuffer on w that flushes every interval until Close.
func newLogBuffer(w io.Writer, interval time.Duration) *logBuffer {
	b := &logBuffer{w: w, interval: interval, buf: make([]byte, 0, logBufferSize),
		stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushEvery()
	return b
}

func (b *logBuffer) flushEvery() {
	defer close(b.done)
	t := time.NewTicker(b.interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.Flush()
		}
	}
}

// Write keeps p (one log line) for the next flush. It never fails: a log line that
// cannot be written is dropped when it is flushed.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) >= logBufferSize {
		b.flushLocked()
	}
	return len(p), nil
}

// Flush writes what is waiting.
func (b *logBuffer) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

func (b *logBuffer) flushLocked() {
	if len(b.buf) > 0 {
		b.w.Write(b.buf)
		b.buf = b.buf[:0]
	}
}

// Close stops the periodic flushes and writes what is waiting.
func (b *logBuffer) Close() {
	close(b.stop)
	<-b.done
	b.Flush()
}

// handler wraps h, which writes to b, so that records at level Warn and above are
// written at once.
func (b *logBuffer) handler(h slog.Handler) slog.Handler { return flushingHandler{h, b} }

type flushingHandler struct {
	slog.Handler
	b *logBuffer
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.b.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.b}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.b}
}
