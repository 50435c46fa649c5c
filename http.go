package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"

	"invitations/db"
	"invitations/graph"
	"invitations/playground"
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
	http       httpConfig // CORS origins, rate limits
	metrics    *metrics   // set by handler; nil records nothing
	// streamsCtx is the context of subscriptions over SSE and WebSocket, which
	// endStreams cancels when shutdown begins (see streams). Both are set by handler.
	streamsCtx context.Context
	endStreams context.CancelFunc
}

// httpConfig configures the HTTP side (see loadHTTPConfig for the variables).
type httpConfig struct {
	// CORSOrigins are the exact origins ("https://app.example.com") of the single-page
	// apps that may call /query from a browser, over HTTP and WebSocket. None by default.
	CORSOrigins []string
	ViewerRate  rateConfig // per authenticated member
	AddressRate rateConfig // per client address
	// TrustProxyHeaders takes the client address from the first X-Forwarded-For entry:
	// only behind a proxy that sets that header itself, replacing what clients send.
	TrustProxyHeaders bool
	// KeepAlive is how often an idle subscription hears from the server
	// (KEEPALIVE_INTERVAL): a ping over WebSocket, which a client must answer within
	// twice this, and a comment line over SSE, so that proxies do not cut an idle
	// stream as timed out.
	KeepAlive time.Duration
}

// loadHTTPConfig reads CORS_ALLOWED_ORIGINS, RATE_LIMIT_VIEWER_RPS and _BURST,
// RATE_LIMIT_ADDRESS_RPS and _BURST, TRUST_PROXY_HEADERS and KEEPALIVE_INTERVAL. An
// invalid value is an error naming the variable.
func loadHTTPConfig(getenv func(string) string) (httpConfig, error) {
	c := httpConfig{
		ViewerRate:  rateConfig{RPS: 20, Burst: 40},
		AddressRate: rateConfig{RPS: 50, Burst: 100},
		KeepAlive:   10 * time.Second,
	}
	var err error
	if c.CORSOrigins, err = parseOrigins(getenv("CORS_ALLOWED_ORIGINS")); err != nil {
		return c, err
	}
	if err := envRate(getenv, "RATE_LIMIT_VIEWER", &c.ViewerRate); err != nil {
		return c, err
	}
	if err := envRate(getenv, "RATE_LIMIT_ADDRESS", &c.AddressRate); err != nil {
		return c, err
	}
	if s := getenv("TRUST_PROXY_HEADERS"); s != "" {
		if c.TrustProxyHeaders, err = strconv.ParseBool(s); err != nil {
			return c, fmt.Errorf("TRUST_PROXY_HEADERS must be true or false, got %q", s)
		}
	}
	if s := getenv("KEEPALIVE_INTERVAL"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 10*time.Millisecond || d > 5*time.Minute {
			return c, fmt.Errorf("KEEPALIVE_INTERVAL must be a duration from 10ms to 5m, got %q", s)
		}
		c.KeepAlive = d
	}
	return c, nil
}

// handler routes /, /query, /healthz, /readyz and /metrics.
//
// /query passes, in this order: the request id and log line (logRequests, around
// everything), CORS (a preflight is answered there), the per-address rate limit
// (before the body is read or the token checked, so a flood costs neither), the body
// check, authentication, the per-viewer rate limit, the request's loaders, and gqlgen.
// The other paths are not rate limited.
func (a *app) handler() http.Handler {
	var pool *sql.DB
	if a.store != nil {
		pool = a.store.DB().DB
	}
	a.metrics = newMetrics(pool)
	if a.store != nil {
		a.metrics.countPoolWaitTimeouts(a.store)
	}
	a.streamsCtx, a.endStreams = context.WithCancel(context.Background())
	gql := handler.New(graph.NewExecutableSchema(graph.Config{
		Resolvers:  &graph.Resolver{Store: a.store, Logger: a.logger, Events: a.events, OnUserError: a.metrics.refusal},
		Complexity: graph.Complexity(),
	}))
	// Subscriptions over WebSocket (graphql-transport-ws, and the older graphql-ws, by
	// subprotocol), authenticated by connection_init (see graph.Authenticator.WebsocketInit).
	// Origin check: coder/websocket accepts requests without an Origin (non-browser
	// clients), same-origin ones and those of CORS_ALLOWED_ORIGINS, and refuses other
	// origins with 403.
	// KeepAlivePingInterval serves graphql-ws; PingPongInterval pings graphql-transport-ws
	// clients and closes connections that stop answering.
	gql.AddTransport(transport.Websocket{
		Implementation: transport.CoderWebsocketImplementation{
			AcceptOptions: websocket.AcceptOptions{OriginPatterns: websocketOriginPatterns(a.http.CORSOrigins)},
		},
		KeepAlivePingInterval: a.http.KeepAlive,
		PingPongInterval:      a.http.KeepAlive,
		InitTimeout:           10 * time.Second,
		InitFunc:              a.auth.WebsocketInit,
		CloseFunc:             graph.WebsocketClose,
	})
	// POST for everything, GET for queries only (gqlgen refuses mutations over GET),
	// and POST with Accept: text/event-stream for subscriptions over SSE (before POST,
	// which would take it otherwise), authenticated by the Authorization header.
	// No multipart or form transports: those are CORS "simple" requests that a
	// cross-site form could use to run a mutation.
	// GET and POST write a response of data alone without encoding it again (dataOnly).
	// GET's refusals carry a code, as POST's do (codedGET, checkBody).
	gql.AddTransport(transport.Options{})
	gql.AddTransport(codedGET{dataOnly{transport.GET{}}, a.metrics})
	gql.AddTransport(transport.SSE{KeepAlivePingInterval: a.http.KeepAlive})
	gql.AddTransport(dataOnly{transport.POST{}})
	gql.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	gql.Use(gqlMetrics{a.metrics}) // operations, durations, errors and userErrors by code (metrics.go)
	// Abuse limits, checked before any resolver runs: tokens while parsing, then a
	// complexity in which lists cost their page size. Depth needs no limit of its own:
	// the API's types do not nest cyclically, and gqlparser bounds introspection depth.
	gql.SetParserTokenLimit(maxTokens)
	gql.Use(graph.NewComplexityLimit(graph.MaxComplexity))
	gql.Use(graph.StorableText{}) // text PostgreSQL cannot store: BAD_USER_INPUT, before any resolver
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
		pg := playground.Handler("Invitations", "/query") // GraphiQL, served from the binary
		mux.Handle("/{$}", pg)
		mux.Handle(playground.Prefix, pg)
	}
	limits := newRateLimits(a.http, a.metrics)
	mux.Handle("/query", corsHandler(a.http.CORSOrigins,
		limits.byAddress(
			checkBody(a.metrics,
				a.auth.Middleware(
					limits.byViewer(
						graph.LoaderMiddleware(a.store,
							a.streams(gql))))))))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", a.ready)
	// Same port as the API; a deployment that must not expose it publicly filters the
	// path at its proxy.
	mux.Handle("GET /metrics", a.metrics.handler())
	return a.logRequests(mux)
}

// websocketOriginPatterns turns exact origins into coder/websocket's origin patterns
// (path.Match against scheme://host), escaping the brackets of IPv6 hosts.
func websocketOriginPatterns(origins []string) []string {
	var out []string
	for _, o := range origins {
		out = append(out, strings.NewReplacer("[", `\[`, "]", `\]`).Replace(o))
	}
	return out
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
		a.metrics.httpRequest(r.URL.Path, rec.status)
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
			return
		}
		a.logger.LogAttrs(ctx, slog.LevelInfo, "request", slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
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
