package main

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
)

// streams serves the long-lived requests, subscriptions over SSE and WebSocket.
//
// It lifts the server's read and write timeouts from SSE subscriptions, which would
// otherwise be cut after WriteTimeout. Their body has been read by then (checkBody
// reads every POST's), while the read timeout still applied. (WebSocket connections
// are hijacked, which clears the deadlines.)
//
// And it ends both when shutdown begins (endStreams, which run registers with
// http.Server.RegisterOnShutdown). Their subscriptions end when the events listener
// stops, which ends an SSE response; but a WebSocket's connection is hijacked, unseen
// by Shutdown, and stayed open, silent, until the process exited. When the request's
// context ends, gqlgen closes the socket with a close frame, so that clients reconnect
// at once, to another replica.
func (a *app) streams(next http.Handler) http.Handler {
	sse, ws := transport.SSE{}, transport.Websocket{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isSSE := sse.Supports(r)
		if !isSSE && !ws.Supports(r) {
			next.ServeHTTP(w, r)
			return
		}
		if isSSE {
			rc := http.NewResponseController(w)
			rc.SetReadDeadline(time.Time{})
			rc.SetWriteDeadline(time.Time{})
			sw := &streamWriter{ResponseWriter: w}
			defer sw.end()
			w = sw
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(a.streamsCtx, cancel)()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// streamWriter drops what is written to an SSE response once its handler has returned.
// gqlgen's keepalive ticks on a goroutine of its own, which can write the moment after
// the stream ends (it stops at the context's end, which comes after), and net/http
// must not be written to then: the response's buffer is back in a pool.
type streamWriter struct {
	http.ResponseWriter
	mu    sync.Mutex
	ended bool
}

func (w *streamWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return 0, http.ErrHandlerTimeout
	}
	return w.ResponseWriter.Write(b)
}

func (w *streamWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ended {
		http.NewResponseController(w.ResponseWriter).Flush()
	}
}

func (w *streamWriter) end() {
	w.mu.Lock()
	w.ended = true
	w.mu.Unlock()
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *streamWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
