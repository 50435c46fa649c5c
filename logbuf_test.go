package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the logBuffer's flushing goroutine.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestLogBufferBatchesInfoAndWritesWarningsAtOnce(t *testing.T) {
	var out lockedBuffer
	// An interval the test never waits for: only Warn and Close may write.
	logs := newLogBuffer(&out, time.Hour)
	logger := newLogger(logs, slog.LevelInfo).With("component", "test")
	for i := range 3 {
		logger.InfoContext(context.Background(), "request", "n", i)
	}
	if got := out.String(); got != "" {
		t.Fatalf("informational lines written before a flush: %q", got)
	}
	logger.Warn("trouble")
	got := out.String()
	if !strings.Contains(got, "msg=trouble") || strings.Count(got, "msg=request") != 3 || out.writes != 1 {
		t.Fatalf("after a warning, %d writes of %q; want the three requests and the warning in one write", out.writes, got)
	}
	logger.Info("last")
	logs.Close()
	if got := out.String(); !strings.HasSuffix(got, "msg=last component=test\n") || out.writes != 2 {
		t.Fatalf("after Close, %d writes of %q; want the last line flushed", out.writes, got)
	}
}

func TestLogBufferFlushesOnItsInterval(t *testing.T) {
	var out lockedBuffer
	logs := newLogBuffer(&out, time.Millisecond)
	defer logs.Close()
	newLogger(logs, slog.LevelInfo).Info("request")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "msg=request") {
		if time.Now().After(deadline) {
			t.Fatal("the line was not flushed by the interval")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLogBufferWritesWhenFull(t *testing.T) {
	var out lockedBuffer
	logs := newLogBuffer(&out, time.Hour)
	defer logs.Close()
	line := strings.Repeat("x", 1000) + "\n"
	for range logBufferSize / len(line) {
		logs.Write([]byte(line))
	}
	if out.String() != "" {
		t.Fatal("written before the buffer was full")
	}
	logs.Write([]byte(line))
	if got := len(out.String()); got != (logBufferSize/len(line)+1)*len(line) {
		t.Fatalf("wrote %d bytes once full, want every line", got)
	}
}
