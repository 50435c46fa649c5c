package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/vektah/gqlparser/v2/ast"

	"invitations/db"
	"invitations/graph"
)

// Request limits. GraphQL documents of this API are far smaller than maxBodyBytes;
// GraphiQL's introspection query has about 300 tokens.
const (
	maxBodyBytes = 1 << 20
	maxTokens    = 5000
)

// app is the HTTP side of the server.
type app struct {
	store    *db.Store
	events   *db.Events // invitation events for subscriptions
	auth     *graph.Authenticator
	logger   *slog.Logger
	draining atomic.Bool // set at shutdown: /readyz answers 503
	// production turns off introspection, field suggestions and the playground.
	production bool
}

// handler routes /, /query, /healthz and /readyz.
func (a *app) handler() http.Handler {
	gql := handler.New(graph.NewExecutableSchema(graph.Config{
		Resolvers:  &graph.Resolver{Store: a.store, Logger: a.logger, Events: a.events},
		Complexity: graph.Complexity(),
	}))
	// Subscriptions over WebSocket (graphql-transport-ws, and the older graphql-ws, by
	// subprotocol), authenticated by connection_init (see graph.Authenticator.WebsocketInit).
	// Origin check: coder/websocket's default accepts requests without an Origin
	// (non-browser clients) and same-origin ones, and refuses other origins with 403;
	// a configurable allow-list would go in Implementation's AcceptOptions.OriginPatterns.
	// KeepAlivePingInterval serves graphql-ws; PingPongInterval pings graphql-transport-ws
	// clients and closes connections that stop answering.
	gql.AddTransport(transport.Websocket{
		Implementation:        transport.CoderWebsocketImplementation{},
		KeepAlivePingInterval: 10 * time.Second,
		PingPongInterval:      10 * time.Second,
		InitTimeout:           10 * time.Second,
		InitFunc:              a.auth.WebsocketInit,
		CloseFunc:             graph.WebsocketClose,
	})
	// POST for everything, GET for queries only (gqlgen refuses mutations over GET),
	// and POST with Accept: text/event-stream for subscriptions over SSE (before POST,
	// which would take it otherwise), authenticated by the Authorization header.
	// No multipart or form transports: those are CORS "simple" requests that a
	// cross-site form could use to run a mutation.
	gql.AddTransport(transport.Options{})
	gql.AddTransport(transport.GET{})
	gql.AddTransport(transport.SSE{})
	gql.AddTransport(transport.POST{})
	gql.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	// Abuse limits, checked before any resolver runs: tokens while parsing, then a
	// complexity in which lists cost their page size. Depth needs no limit of its own:
	// the API's types do not nest cyclically, and gqlparser bounds introspection depth.
	gql.SetParserTokenLimit(maxTokens)
	gql.Use(extension.FixedComplexityLimit(graph.MaxComplexity))
	if a.production {
		gql.SetDisableSuggestion(true) // no "Did you mean" field hints
		gql.Use(graph.NoIntrospection{})
	} else {
		gql.Use(extension.Introspection{})
	}
	gql.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](100)})
	gql.Use(graph.SubscriptionLoaders{Store: a.store})
	gql.SetErrorPresenter(graph.ErrorPresenter(a.logger))
	gql.SetRecoverFunc(graph.Recover(a.logger))

	mux := http.NewServeMux()
	if !a.production {
		mux.Handle("/{$}", playground.Handler("Invitations", "/query"))
	}
	mux.Handle("/query", checkBody(a.auth.Middleware(graph.LoaderMiddleware(a.store, streamWithoutDeadlines(gql)))))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", a.ready)
	return a.logRequests(mux)
}

// ready answers 200 when the database answers and carries every migration, 503
// otherwise and from the moment shutdown begins.
func (a *app) ready(w http.ResponseWriter, r *http.Request) {
	if a.draining.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.store.Ready(ctx); err != nil {
		a.logger.WarnContext(ctx, "not ready", "err", err)
		http.Error(w, "database not ready", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ready\n"))
}

type requestIDKey struct{}

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// logRequests gives each request an id (the client's X-Request-ID when sane), echoes
// it in the response, caps the body and logs one line per request.
func (a *app) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if !validRequestID.MatchString(id) {
			b := make([]byte, 8)
			rand.Read(b)
			id = hex.EncodeToString(b)
		}
		w.Header().Set("X-Request-ID", id)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		next.ServeHTTP(rec, r.WithContext(ctx))
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			return
		}
		a.logger.InfoContext(ctx, "request", "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "duration_ms", float64(time.Since(start).Microseconds())/1000)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Flush lets the SSE transport stream (it asserts http.Flusher).
func (s *statusRecorder) Flush() { http.NewResponseController(s.ResponseWriter).Flush() }

// Unwrap gives http.ResponseController and the WebSocket upgrade (Hijack) the
// underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// streamWithoutDeadlines lifts the server's read and write timeouts from SSE
// subscriptions, which would otherwise be cut after WriteTimeout. The body is read
// first, while the read timeout still applies. (WebSocket connections are hijacked,
// which clears the deadlines.)
func streamWithoutDeadlines(next http.Handler) http.Handler {
	sse := transport.SSE{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sse.Supports(r) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				status := http.StatusBadRequest
				if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
					status = http.StatusRequestEntityTooLarge
				}
				http.Error(w, "could not read the request body", status)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			rc := http.NewResponseController(w)
			rc.SetReadDeadline(time.Time{})
			rc.SetWriteDeadline(time.Time{})
		}
		next.ServeHTTP(w, r)
	})
}

// requestIDHandler adds the request id of the context to every log record.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// checkBody reads a POST body up to maxBodyBytes and refuses, with a GraphQL-shaped
// error and without echoing it, a body that is larger (413), not JSON, or a batch
// (an array of operations, which this server does not run) (400).
func checkBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			refuseRequest(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", maxBodyBytes))
			return
		case err != nil:
			refuseRequest(w, http.StatusBadRequest, "the request body could not be read")
			return
		case !json.Valid(body):
			refuseRequest(w, http.StatusBadRequest, "the request body is not valid JSON")
			return
		case len(bytes.TrimSpace(body)) > 0 && bytes.TrimSpace(body)[0] == '[':
			refuseRequest(w, http.StatusBadRequest, "batched requests are not supported: send one operation per request")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// refuseRequest answers a request that never reached GraphQL.
func refuseRequest(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": message, "extensions": map[string]any{"code": "BAD_USER_INPUT"}}},
	})
}
