package main

import (
	"context"
	"database/sql"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vektah/gqlparser/v2/ast"

	"invitations/db"
)

// Label bounds: a client chooses operation names, so only names that look like GraphQL
// names, and at most maxOperationLabels distinct ones, become labels; the rest are
// counted as "other". Error codes are ours, but are bounded the same way.
const (
	maxOperationLabels = 200
	maxCodeLabels      = 50
)

var (
	operationLabel = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	codeLabel      = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)
)

// metrics are the Prometheus metrics of one server, in a registry of its own (several
// servers can run in one process, as in the tests). A nil *metrics records nothing.
type metrics struct {
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec   // graphql_requests_total{operation,type}
	duration    *prometheus.HistogramVec // graphql_request_duration_seconds{operation}
	errors      *prometheus.CounterVec   // graphql_errors_total{code}
	refusals    *prometheus.CounterVec   // invitation_refusals_total{code}
	rateLimited *prometheus.CounterVec   // rate_limit_refusals_total{scope}
	http        *prometheus.CounterVec   // http_requests_total{path,status}

	operations labelSet
	codes      labelSet
}

// newMetrics registers the server's metrics, the connection pool's statistics (pool may
// be nil) and the Go runtime and process collectors.
func newMetrics(pool *sql.DB) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "graphql_requests_total",
			Help: "GraphQL operations received, by operation name (\"anonymous\" when unnamed, \"other\" past the label cap) and type (query, mutation, subscription; \"unknown\" when the request did not parse or validate).",
		}, []string{"operation", "type"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "graphql_request_duration_seconds",
			Help:    "Time from the start of a GraphQL request to its response (queries and mutations; for subscriptions, the refusals only).",
			Buckets: prometheus.DefBuckets,
		}, []string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "graphql_errors_total",
			Help: "Top-level GraphQL errors sent, by extensions.code (including requests refused before GraphQL ran: RATE_LIMITED, BAD_USER_INPUT).",
		}, []string{"code"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invitation_refusals_total",
			Help: "Business-rule refusals: userErrors returned in mutation payloads, by code.",
		}, []string{"code"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rate_limit_refusals_total",
			Help: "Requests refused with 429 RATE_LIMITED, by the limit that refused them (viewer or address).",
		}, []string{"scope"}),
		http: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests, by path (the server's fixed paths, \"other\" for the rest) and status.",
		}, []string{"path", "status"}),
		operations: labelSet{max: maxOperationLabels, valid: operationLabel, other: "other"},
		codes:      labelSet{max: maxCodeLabels, valid: codeLabel, other: "OTHER"},
	}
	m.registry.MustRegister(m.requests, m.duration, m.errors, m.refusals, m.rateLimited, m.http,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if pool != nil {
		m.registry.MustRegister(collectors.NewDBStatsCollector(pool, "invitations"))
	}
	return m
}

// countPoolWaitTimeouts exports the store's count of requests that found no free
// pooled connection within DB_POOL_WAIT, beside the pool's own statistics.
func (m *metrics) countPoolWaitTimeouts(store *db.Store) {
	m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "db_pool_wait_timeouts_total",
		Help: "Requests answered SERVICE_BUSY because no pooled connection freed up within DB_POOL_WAIT.",
	}, func() float64 { return float64(store.PoolWaitTimeouts()) }))
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// httpPaths are the paths counted under their own label.
var httpPaths = map[string]bool{"/": true, "/query": true, "/healthz": true, "/readyz": true, "/metrics": true}

// httpRequest counts one HTTP request.
func (m *metrics) httpRequest(path string, status int) {
	if m == nil {
		return
	}
	if !httpPaths[path] {
		path = "other"
	}
	m.http.WithLabelValues(path, strconv.Itoa(status)).Inc()
}

// errorCode counts one top-level error sent to a client.
func (m *metrics) errorCode(code string) {
	if m == nil {
		return
	}
	m.errors.WithLabelValues(m.codes.label(code)).Inc()
}

// rateLimit counts a request refused by the named limit.
func (m *metrics) rateLimit(scope string) {
	if m == nil {
		return
	}
	m.rateLimited.WithLabelValues(scope).Inc()
	m.errorCode(codeRateLimited)
}

// labelSet admits label values up to a cap; past it, or when a value does not look
// like a label, it answers other.
type labelSet struct {
	max   int
	valid *regexp.Regexp
	other string

	mu   sync.Mutex
	seen map[string]bool
}

func (s *labelSet) label(v string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[v] {
		return v
	}
	if len(s.seen) >= s.max || !s.valid.MatchString(v) {
		return s.other
	}
	if s.seen == nil {
		s.seen = make(map[string]bool)
	}
	s.seen[v] = true
	return v
}

// gqlMetrics is the gqlgen extension that records the GraphQL metrics:
//   - operations (graphql_requests_total) and their duration, around each operation;
//   - top-level errors by code, from every response, including the ones of requests
//     refused before execution (parse, validation, complexity), which carry no
//     executed operation and are counted here as requests too;
//   - userErrors by code are counted by the mutations (metrics.refusal).
type gqlMetrics struct{ m *metrics }

var (
	_ graphql.HandlerExtension     = gqlMetrics{}
	_ graphql.OperationInterceptor = gqlMetrics{}
	_ graphql.ResponseInterceptor  = gqlMetrics{}
)

func (gqlMetrics) ExtensionName() string                   { return "Metrics" }
func (gqlMetrics) Validate(graphql.ExecutableSchema) error { return nil }

// operationLabel is the label of an operation name ("" is an anonymous operation).
func (g gqlMetrics) operationLabel(name string) string {
	if name == "" {
		return "anonymous"
	}
	return g.m.operations.label(name)
}

func withDispatched(ctx context.Context) context.Context {
	return context.WithValue(ctx, dispatchedKey{}, true)
}

func dispatched(ctx context.Context) bool {
	v, _ := ctx.Value(dispatchedKey{}).(bool)
	return v
}

// dispatchedKey marks the responses of an operation that was dispatched (as opposed to
// one refused while it was being parsed, validated or checked).
type dispatchedKey struct{}

// InterceptOperation counts an operation that is about to run and times its response.
func (g gqlMetrics) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	name, typ := g.operationLabel(oc.Operation.Name), string(oc.Operation.Operation)
	g.m.requests.WithLabelValues(name, typ).Inc()
	start := oc.Stats.OperationStart
	if start.IsZero() {
		start = time.Now()
	}
	responses := next(ctx)
	first := true
	return func(ctx context.Context) *graphql.Response {
		resp := responses(withDispatched(ctx))
		if first && oc.Operation.Operation != ast.Subscription {
			g.m.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
		}
		first = false
		return resp
	}
}

// InterceptResponse counts the response's top-level errors by code, and counts (and
// times) requests refused before any operation was dispatched.
func (g gqlMetrics) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp != nil {
		for _, e := range resp.Errors {
			code, _ := e.Extensions["code"].(string)
			if code == "" {
				code = "NONE"
			}
			g.m.errorCode(code)
		}
	}
	if !dispatched(ctx) {
		name, typ := "anonymous", "unknown"
		var start time.Time
		if graphql.HasOperationContext(ctx) {
			oc := graphql.GetOperationContext(ctx)
			name, start = oc.OperationName, oc.Stats.OperationStart
			if oc.Operation != nil {
				name, typ = oc.Operation.Name, string(oc.Operation.Operation)
			}
		}
		name = g.operationLabel(name)
		g.m.requests.WithLabelValues(name, typ).Inc()
		if !start.IsZero() {
			g.m.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
		}
	}
	return resp
}

// refusal counts one userError by code (graph.Resolver.OnUserError). Mutations
// report their refusals themselves rather than through a field interceptor, which
// gqlgen would call for every field of every response.
func (m *metrics) refusal(code string) {
	if m == nil {
		return
	}
	m.refusals.WithLabelValues(m.codes.label(code)).Inc()
}
