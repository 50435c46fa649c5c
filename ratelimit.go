package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"invitations/graph"
)

// Request rate limiting, separate from the product's invitation quota (which the
// repository enforces exactly, per sender, in the database): token buckets per client
// address and per authenticated viewer that keep one client from flooding the server.
// A refused request is answered 429 with Retry-After and a RATE_LIMITED error before
// GraphQL runs, so nothing executes.

const codeRateLimited = "RATE_LIMITED"

// Bucket bookkeeping. A bucket that has refilled to its burst is indistinguishable from
// a new one, so a sweep (at most once per sweepInterval, on the arrival of a new key)
// drops those; maxBuckets caps the map between sweeps, evicting an arbitrary bucket
// when full (which can only give that client a fresh burst).
const (
	sweepInterval     = time.Minute
	defaultMaxBuckets = 100_000
)

// rateConfig is one limit: RPS tokens per second, up to Burst at once. RPS 0 turns the
// limit off.
type rateConfig struct {
	RPS   float64
	Burst int
}

// envRate reads PREFIX_RPS and PREFIX_BURST into dst; an invalid value names its variable.
func envRate(getenv func(string) string, prefix string, dst *rateConfig) error {
	name := prefix + "_RPS"
	if s := strings.TrimSpace(getenv(name)); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || v < 0 || v > 1_000_000 {
			return fmt.Errorf("%s must be a number of requests per second from 0 (no limit) to 1000000, got %q", name, s)
		}
		dst.RPS = v
	}
	return envInt(getenv, prefix+"_BURST", &dst.Burst, 1, 1_000_000)
}

// limiter is a set of token buckets by key, safe for concurrent use.
type limiter struct {
	limit      rate.Limit
	burst      int
	maxBuckets int
	now        func() time.Time

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

// newLimiter returns a limiter for c, or nil when c is off. now is its clock (nil:
// time.Now).
func newLimiter(c rateConfig, maxBuckets int, now func() time.Time) *limiter {
	if c.RPS <= 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &limiter{
		limit: rate.Limit(c.RPS), burst: c.Burst, maxBuckets: maxBuckets, now: now,
		buckets: make(map[string]*rate.Limiter), lastSweep: now(),
	}
}

// allow takes a token from key's bucket. When the bucket is empty it takes nothing and
// returns how long until a token is there.
func (l *limiter) allow(key string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if now.Sub(l.lastSweep) >= sweepInterval {
			l.sweep(now)
		}
		for k := range l.buckets {
			if len(l.buckets) < l.maxBuckets {
				break
			}
			delete(l.buckets, k)
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[key] = b
	}
	if b.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - b.TokensAt(now)
	return false, time.Duration(math.Ceil(missing / float64(l.limit) * float64(time.Second)))
}

// sweep drops the buckets that have refilled completely. Called with l.mu held.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
	l.lastSweep = now
}

// size is the number of buckets held.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// rateLimits are the two limits of /query. A nil limiter is off.
type rateLimits struct {
	viewer, address *limiter
	trustProxy      bool // the client address is the first X-Forwarded-For entry
	metrics         *metrics
}

func newRateLimits(c httpConfig, m *metrics) *rateLimits {
	return &rateLimits{
		viewer:     newLimiter(c.ViewerRate, defaultMaxBuckets, nil),
		address:    newLimiter(c.AddressRate, defaultMaxBuckets, nil),
		trustProxy: c.TrustProxyHeaders,
		metrics:    m,
	}
}

// byAddress refuses requests over the per-address limit. It runs before the body is
// read and the token checked, so a flood costs neither.
func (rl *rateLimits) byAddress(next http.Handler) http.Handler {
	if rl.address == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, retry := rl.address.allow(clientAddress(r, rl.trustProxy)); !ok {
			rl.metrics.rateLimit("address")
			refuseRateLimited(w, retry)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// byViewer refuses an authenticated viewer's requests over the per-viewer limit. It runs
// after the authentication middleware; requests without a viewer pass (the address
// limit covers them). WebSocket subscriptions authenticate in connection_init, after
// the upgrade: their upgrade request counts toward the address limit only.
func (rl *rateLimits) byViewer(next http.Handler) http.Handler {
	if rl.viewer == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := graph.ViewerID(r.Context()); ok {
			if ok, retry := rl.viewer.allow(strconv.FormatInt(id, 10)); !ok {
				rl.metrics.rateLimit("viewer")
				refuseRateLimited(w, retry)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// clientAddress is the key of the request's client: its IP address (an IPv6 address's
// /64 network, which one client usually holds whole). With trustProxy, the first
// X-Forwarded-For entry when it is an address; otherwise, or when it is not, the peer.
func clientAddress(r *http.Request, trustProxy bool) string {
	if trustProxy {
		first, _, _ := strings.Cut(r.Header.Get("X-Forwarded-For"), ",")
		if a, ok := parseAddress(strings.TrimSpace(first)); ok {
			return addressKey(a)
		}
	}
	if a, ok := parseAddress(r.RemoteAddr); ok {
		return addressKey(a)
	}
	return r.RemoteAddr
}

// parseAddress reads an IP address, with or without a port.
func parseAddress(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return a, err == nil
}

func addressKey(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// refuseRateLimited answers 429 with Retry-After (whole seconds, at least 1) and a
// GraphQL-shaped RATE_LIMITED error.
func refuseRateLimited(w http.ResponseWriter, retry time.Duration) {
	secs := max(int64(math.Ceil(retry.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{
			"message":    fmt.Sprintf("too many requests: try again in %d seconds", secs),
			"extensions": map[string]any{"code": codeRateLimited, "retryAfterSeconds": secs},
		}},
	})
}
