package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"invitations/db"
	"invitations/db/dbtest"
	"invitations/graph"
)

// BenchmarkHeavyPage serves the bench's case (b) in process: the first page of a
// sender with 1,000 pending invitations older than two weeks, through the whole
// handler (request log, rate limits, authentication, loaders, gqlgen) into a
// recorder. PostgreSQL answers on the test cluster. Besides time and allocations it
// reports the process's CPU per request (cpu-µs/op): the server's side of the bench's
// "server µs" without the network.
//
//	go test -run '^$' -bench HeavyPage -benchtime 2000x -cpuprofile /tmp/cpu.pprof .
func BenchmarkHeavyPage(b *testing.B) { benchmarkPage(b, 1000) }

// BenchmarkLightPage is case (a) in process: a sender with two pending invitations, so
// that what every request costs, whatever its page, stands out.
func BenchmarkLightPage(b *testing.B) { benchmarkPage(b, 2) }

func benchmarkPage(b *testing.B, pending int) {
	ctx := context.Background()
	store, err := db.Open(ctx, dbtest.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	store.MustExec(`INSERT INTO members (handle, name, headline)
		SELECT 'm' || g, 'Member ' || g, 'Engineer at Example ' || g FROM generate_series(0, 1000) AS g`)
	// Senders other than m0 keep the weekly cap: each sends one invitation.
	store.MustExec(`INSERT INTO invitations (sender_id, recipient_id, message, source, status, sent_at)
		SELECT s.id, r.id, CASE WHEN g % 3 = 0 THEN 'Hello from the benchmark, ' || g END, 'SEARCH', 'PENDING',
		       now() - interval '15 days' - g * interval '3 hours'
		  FROM generate_series(1, $1) AS g
		  JOIN members s ON s.handle = 'm0' JOIN members r ON r.handle = 'm' || g`, pending)
	httpCfg, err := loadHTTPConfig(func(k string) string {
		return map[string]string{"RATE_LIMIT_VIEWER_RPS": "0", "RATE_LIMIT_ADDRESS_RPS": "0"}[k]
	})
	if err != nil {
		b.Fatal(err)
	}
	s := db.New(store, db.DefaultLimits(), time.Now)
	a := &app{store: s, auth: &graph.Authenticator{Secret: []byte(testSecret), Store: s},
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)), http: httpCfg}
	h := a.handler()
	tok, err := graph.SignToken([]byte(testSecret), "m0", false, time.Hour, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	body := `{"query":"query Pending($filter: PendingInvitationFilter) { pendingInvitations(first: 20, filter: $filter) { totalCount edges { node { id sentAt message recipient { id name headline } } } pageInfo { hasNextPage endCursor } } }","variables":{"filter":{"olderThanDays":14}}}`
	serve := func() string {
		req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	if out := serve(); !strings.Contains(out, fmt.Sprintf(`"totalCount":%d`, pending)) || strings.Count(out, `"headline":"Engineer`) != min(pending, 20) {
		b.Fatalf("unexpected page: %s", out)
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpu()
	for range b.N {
		serve()
	}
	b.ReportMetric(float64((cpu()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}
