package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// postQuery posts a GraphQL query with extra headers ("Authorization" etc.).
func postQuery(t *testing.T, s *server, headers map[string]string, query string, vars map[string]any) (*http.Response, *response) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range headers {
		h[k] = v
	}
	res, raw := httpDo(t, "POST", s.url+"/query", h, strings.NewReader(string(body)))
	out := &response{status: res.StatusCode, raw: string(raw)}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("not JSON (%d): %s", res.StatusCode, raw)
	}
	return res, out
}

// checkRateLimited checks a refusal: 429, Retry-After in whole seconds (at least 1),
// and a RATE_LIMITED error giving the same number, with no data.
func checkRateLimited(t *testing.T, res *http.Response, r *response) {
	t.Helper()
	secs, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if res.StatusCode != http.StatusTooManyRequests || err != nil || secs < 1 || r.code() != "RATE_LIMITED" || r.Data != nil ||
		r.Errors[0].Extensions["retryAfterSeconds"] != float64(secs) {
		t.Fatalf("want a RATE_LIMITED refusal: %d Retry-After %q %s", res.StatusCode, res.Header.Get("Retry-After"), r.raw)
	}
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

func TestRateLimitPerViewer(t *testing.T) {
	// A refill of one token per 1,000 s: nothing refills while the test runs.
	s := startServer(t, map[string]string{"RATE_LIMIT_VIEWER_RPS": "0.001", "RATE_LIMIT_VIEWER_BURST": "3"})
	ada, cy := s.member("ada"), s.member("cy")
	s.member("bob")
	bobID := s.memberID(cy, "bob") // cy: 1 of 3
	for i := 0; i < 3; i++ {
		s.ok(ada, `{ viewer { handle } }`, nil)
	}
	// The fourth request, a mutation, is refused before GraphQL runs: nothing is sent.
	res, r := postQuery(t, s, bearer(ada), sendMutation, map[string]any{"to": bobID})
	checkRateLimited(t, res, r)
	if res.Header.Get("X-Request-ID") == "" {
		t.Error("no request id on a refusal")
	}
	var n int
	s.conn.Get(&n, `SELECT count(*) FROM invitations`)
	if n != 0 {
		t.Fatalf("a refused mutation ran: %d invitations", n)
	}
	// Another viewer from the same address, and tokenless requests, are unaffected.
	s.ok(cy, `{ viewer { handle } }`, nil)
	s.ok("", `{ __typename }`, nil)
	// The refusal is counted.
	metrics := scrape(t, s)
	for _, series := range []string{`rate_limit_refusals_total{scope="viewer"}`, `graphql_errors_total{code="RATE_LIMITED"}`} {
		if v, ok := metricValue(metrics, series); !ok || v != 1 {
			t.Errorf("%s = %v (%v)", series, v, ok)
		}
	}
}

func TestRateLimitPerAddress(t *testing.T) {
	s := startServer(t, map[string]string{"RATE_LIMIT_ADDRESS_RPS": "0.001", "RATE_LIMIT_ADDRESS_BURST": "3"})
	// By default X-Forwarded-For is not trusted: all these come from 127.0.0.1.
	for i := 0; i < 3; i++ {
		res, r := postQuery(t, s, map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", i)}, `{ __typename }`, nil)
		if res.StatusCode != 200 || len(r.Errors) > 0 {
			t.Fatalf("request %d: %d %s", i, res.StatusCode, r.raw)
		}
	}
	res, r := postQuery(t, s, map[string]string{"X-Forwarded-For": "203.0.113.99"}, `{ __typename }`, nil)
	checkRateLimited(t, res, r)
	// Health, readiness and metrics are not limited.
	for i := 0; i < 5; i++ {
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			if res, _ := httpDo(t, "GET", s.url+path, nil, nil); res.StatusCode != 200 {
				t.Fatalf("%s: %d", path, res.StatusCode)
			}
		}
	}
	if v, _ := metricValue(scrape(t, s), `rate_limit_refusals_total{scope="address"}`); v != 1 {
		t.Errorf("address refusals: %v", v)
	}
}

func TestRateLimitPerAddressBehindProxy(t *testing.T) {
	s := startServer(t, map[string]string{"RATE_LIMIT_ADDRESS_RPS": "0.001", "RATE_LIMIT_ADDRESS_BURST": "2", "TRUST_PROXY_HEADERS": "true"})
	from := func(xff string) (*http.Response, *response) {
		return postQuery(t, s, map[string]string{"X-Forwarded-For": xff}, `{ __typename }`, nil)
	}
	for i := 0; i < 2; i++ {
		if res, r := from("203.0.113.7"); res.StatusCode != 200 {
			t.Fatalf("%d %s", res.StatusCode, r.raw)
		}
	}
	res, r := from("203.0.113.7, 10.0.0.1") // the first entry is the client
	checkRateLimited(t, res, r)
	// The same token does not help: the address limit runs before authentication.
	tok := s.member("ada")
	res, r = postQuery(t, s, map[string]string{"X-Forwarded-For": "203.0.113.7", "Authorization": "Bearer " + tok}, `{ viewer { handle } }`, nil)
	checkRateLimited(t, res, r)
	// Another client is unaffected, and one IPv6 /64 is one client.
	if res, r := from("203.0.113.8"); res.StatusCode != 200 {
		t.Fatalf("other address: %d %s", res.StatusCode, r.raw)
	}
	from("2001:db8:1:2::1")
	from("2001:db8:1:2::2")
	res, r = from("2001:db8:1:2:ffff::3")
	checkRateLimited(t, res, r)
}

func TestRateLimitDisabled(t *testing.T) {
	s := startServer(t, map[string]string{"RATE_LIMIT_VIEWER_RPS": "0", "RATE_LIMIT_VIEWER_BURST": "1",
		"RATE_LIMIT_ADDRESS_RPS": "0", "RATE_LIMIT_ADDRESS_BURST": "1"})
	tok := s.member("ada")
	for i := 0; i < 30; i++ {
		s.ok(tok, `{ viewer { handle } }`, nil)
		s.ok("", `{ __typename }`, nil)
	}
}

func TestRateLimitConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	cfg, err := loadConfig(env())
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.HTTP
	if h.ViewerRate != (rateConfig{20, 40}) || h.AddressRate != (rateConfig{50, 100}) || h.TrustProxyHeaders || h.KeepAlive != 10*time.Second {
		t.Fatalf("defaults: %+v", h)
	}
	cfg, err = loadConfig(env("RATE_LIMIT_VIEWER_RPS", "0.5", "RATE_LIMIT_VIEWER_BURST", "5", "RATE_LIMIT_ADDRESS_RPS", "0", "TRUST_PROXY_HEADERS", "true", "KEEPALIVE_INTERVAL", "25s"))
	if err != nil || cfg.HTTP.ViewerRate != (rateConfig{0.5, 5}) || cfg.HTTP.AddressRate.RPS != 0 || !cfg.HTTP.TrustProxyHeaders || cfg.HTTP.KeepAlive != 25*time.Second {
		t.Fatalf("%+v %v", cfg, err)
	}
	for _, bad := range [][2]string{
		{"RATE_LIMIT_VIEWER_RPS", "-1"}, {"RATE_LIMIT_VIEWER_RPS", "fast"}, {"RATE_LIMIT_VIEWER_RPS", "NaN"}, {"RATE_LIMIT_VIEWER_RPS", "Inf"},
		{"RATE_LIMIT_VIEWER_BURST", "0"}, {"RATE_LIMIT_VIEWER_BURST", "1.5"},
		{"RATE_LIMIT_ADDRESS_RPS", "1e9"}, {"RATE_LIMIT_ADDRESS_BURST", "-3"},
		{"TRUST_PROXY_HEADERS", "maybe"},
		{"KEEPALIVE_INTERVAL", "0"}, {"KEEPALIVE_INTERVAL", "10"}, {"KEEPALIVE_INTERVAL", "1h"}, {"KEEPALIVE_INTERVAL", "-5s"},
	} {
		if _, err := loadConfig(env(bad[0], bad[1])); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%s=%s: %v", bad[0], bad[1], err)
		}
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestRateLimiterRefill(t *testing.T) {
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newLimiter(rateConfig{RPS: 2, Burst: 3}, 100, clock.now)
	for i := 0; i < 3; i++ {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("burst request %d refused", i)
		}
	}
	if ok, retry := l.allow("a"); ok || retry != 500*time.Millisecond {
		t.Fatalf("empty bucket: %v %v", ok, retry)
	}
	if ok, _ := l.allow("b"); !ok {
		t.Fatal("another key refused")
	}
	clock.add(300 * time.Millisecond)
	if ok, retry := l.allow("a"); ok || retry != 200*time.Millisecond {
		t.Fatalf("after 300 ms: %v %v", ok, retry)
	}
	clock.add(200 * time.Millisecond)
	if ok, _ := l.allow("a"); !ok {
		t.Fatal("not refilled after 500 ms")
	}
	if ok, _ := l.allow("a"); ok {
		t.Fatal("refilled more than one token")
	}
	if newLimiter(rateConfig{RPS: 0, Burst: 3}, 100, nil) != nil {
		t.Fatal("RPS 0 must turn the limit off")
	}
}

// TestRateLimiterEviction: buckets are bounded in number, and refilled ones are dropped.
func TestRateLimiterEviction(t *testing.T) {
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	const maxBuckets = 1000
	l := newLimiter(rateConfig{RPS: 50, Burst: 100}, maxBuckets, clock.now)
	peak := 0
	for i := 0; i < 100_000; i++ {
		l.allow(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		peak = max(peak, l.size())
		if i%1000 == 0 {
			clock.add(time.Millisecond)
		}
	}
	t.Logf("100000 distinct addresses: at most %d buckets held (cap %d)", peak, maxBuckets)
	if peak > maxBuckets {
		t.Fatalf("%d buckets for a cap of %d", peak, maxBuckets)
	}

	// An idle bucket (refilled) is dropped by the next sweep; a drained one is kept.
	l = newLimiter(rateConfig{RPS: 1, Burst: 5}, defaultMaxBuckets, clock.now)
	for i := 0; i < 5000; i++ {
		l.allow(fmt.Sprintf("idle-%d", i))
	}
	l.allow("busy")
	clock.add(sweepInterval)
	for i := 0; i < 20; i++ {
		l.allow("busy") // an existing key: no sweep
	}
	if l.size() != 5001 {
		t.Fatalf("before the sweep: %d", l.size())
	}
	l.allow("new") // a new key, sweepInterval after the last sweep: sweep
	if got := l.size(); got != 2 {
		t.Fatalf("after the sweep: %d buckets, want 2 (busy, new)", got)
	}
	if ok, _ := l.allow("busy"); ok {
		t.Fatal("the drained bucket was reset")
	}
}

func TestClientAddress(t *testing.T) {
	for _, c := range []struct {
		remote, xff string
		trust       bool
		want        string
	}{
		{"192.0.2.1:5555", "203.0.113.9", false, "192.0.2.1"},
		{"192.0.2.1:5555", "203.0.113.9, 10.0.0.1", true, "203.0.113.9"},
		{"192.0.2.1:5555", " 203.0.113.9 ", true, "203.0.113.9"},
		{"192.0.2.1:5555", "garbage", true, "192.0.2.1"},
		{"192.0.2.1:5555", "", true, "192.0.2.1"},
		{"192.0.2.1:5555", "[2001:db8::1]:443", true, "2001:db8::/64"},
		{"[2001:db8:a:b:c:d:e:f]:5555", "", false, "2001:db8:a:b::/64"},
		{"[::ffff:192.0.2.7]:5555", "", false, "192.0.2.7"},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := clientAddress(r, c.trust); got != c.want {
			t.Errorf("%q %q %v: %q, want %q", c.remote, c.xff, c.trust, got, c.want)
		}
	}
}

// BenchmarkRateLimiter is the limiter's cost per request, with 10,000 clients.
func BenchmarkRateLimiter(b *testing.B) {
	l := newLimiter(rateConfig{RPS: 1e6, Burst: 1e6}, defaultMaxBuckets, nil)
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = fmt.Sprintf("10.0.%d.%d", i>>8, i&255)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.allow(keys[i%len(keys)])
			i++
		}
	})
}
