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

	"github.com/jmoiron/sqlx"

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
	store, h := benchHandler(b)
	store.MustExec(`INSERT INTO members (handle, name, headline)
		SELECT 'm' || g, 'Member ' || g, 'Engineer at Example ' || g FROM generate_series(0, 1000) AS g`)
	// Senders other than m0 keep the weekly cap: each sends one invitation.
	store.MustExec(`INSERT INTO invitations (sender_id, recipient_id, message, source, status, sent_at)
		SELECT s.id, r.id, CASE WHEN g % 3 = 0 THEN 'Hello from the benchmark, ' || g END, 'SEARCH', 'PENDING',
		       now() - interval '15 days' - g * interval '3 hours'
		  FROM generate_series(1, $1) AS g
		  JOIN members s ON s.handle = 'm0' JOIN members r ON r.handle = 'm' || g`, pending)
	tok := benchToken(b, "m0")
	body := `{"query":"query Pending($filter: PendingInvitationFilter) { pendingInvitations(first: 20, filter: $filter) { totalCount edges { node { id sentAt message recipient { id name headline } } } pageInfo { hasNextPage endCursor } } }","variables":{"filter":{"olderThanDays":14}}}`
	if out := benchServe(b, h, tok, body); !strings.Contains(out, fmt.Sprintf(`"totalCount":%d`, pending)) || strings.Count(out, `"headline":"Engineer`) != min(pending, 20) {
		b.Fatalf("unexpected page: %s", out)
	}
	benchLoop(b, func(int) { benchServe(b, h, tok, body) })
}

// BenchmarkWithdrawSelected is case (e) in process: each request withdraws 20
// pending invitations of its own sender, in one transaction (locks, the update, the
// rollups' trigger, reminders cancelled), and answers the 20 outcomes.
//
//	go test -run '^$' -bench WithdrawSelected -benchtime 2000x -benchmem .
func BenchmarkWithdrawSelected(b *testing.B) {
	store, h := benchHandler(b)
	// Sender i (0 ≤ i < b.N) has 20 pending invitations, to members N+i·20 ... +19.
	store.MustExec(`INSERT INTO members (handle, name, headline)
		SELECT 'm' || g, 'Member ' || g, 'Engineer at Example ' || g FROM generate_series(0, 21 * $1 - 1) AS g`, b.N)
	store.MustExec(`INSERT INTO invitations (sender_id, recipient_id, source, status, sent_at)
		SELECT g / 20 + 1, $1 + g + 1, 'SEARCH', 'PENDING', now() - interval '15 days' - g * interval '1 minute'
		  FROM generate_series(0, 20 * $1 - 1) AS g`, b.N)
	var ids []int64
	if err := store.Select(&ids, `SELECT id FROM invitations ORDER BY sender_id, id`); err != nil {
		b.Fatal(err)
	}
	toks, bodies := make([]string, b.N), make([]string, b.N)
	for i := range b.N {
		toks[i] = benchToken(b, fmt.Sprintf("m%d", i))
		var gids []string
		for _, id := range ids[20*i : 20*i+20] {
			gids = append(gids, `"`+string(db.AppendNodeID(nil, "Invitation", id))+`"`)
		}
		bodies[i] = `{"query":"mutation Withdraw($input: WithdrawSelectedInput!) { withdrawSelected(input: $input) { userErrors { code message } withdrawnCount results { invitationId outcome } } }","variables":{"input":{"invitationIds":[` + strings.Join(gids, ",") + `]}}}`
	}
	benchLoop(b, func(i int) {
		if out := benchServe(b, h, toks[i], bodies[i]); !strings.Contains(out, `"withdrawnCount":20`) {
			b.Fatalf("unexpected answer: %s", out)
		}
	})
}

// BenchmarkSendInvitation is case (c) in process: each request sends an invitation
// without a note, from its own sender to a member never invited, in one transaction
// (both members locked, the limits' counts, the pair's check, the invitation with its
// reminders and notification, the rollup's row), and answers the invitation.
//
//	go test -run '^$' -bench SendInvitation -benchtime 2000x -benchmem .
func BenchmarkSendInvitation(b *testing.B) {
	store, h := benchHandler(b)
	// Sender i (0 ≤ i < b.N) invites member N+i.
	store.MustExec(`INSERT INTO members (handle, name, headline)
		SELECT 'm' || g, 'Member ' || g, 'Engineer at Example ' || g FROM generate_series(0, 2 * $1 - 1) AS g`, b.N)
	toks, bodies := make([]string, b.N), make([]string, b.N)
	for i := range b.N {
		toks[i] = benchToken(b, fmt.Sprintf("m%d", i))
		bodies[i] = `{"query":"mutation Send($input: SendInvitationInput!) { sendInvitation(input: $input) { userErrors { code message field availableAt } invitation { id status sentAt } } }","variables":{"input":{"recipientId":"` +
			string(db.AppendNodeID(nil, "Member", int64(b.N+i+1))) + `","source":"SEARCH"}}}`
	}
	benchLoop(b, func(i int) {
		if out := benchServe(b, h, toks[i], bodies[i]); !strings.Contains(out, `"status":"PENDING"`) {
			b.Fatalf("unexpected answer: %s", out)
		}
	})
}

// benchHandler is the server's whole handler (request log, rate limits off,
// authentication, loaders, gqlgen) on a fresh test database.
func benchHandler(b *testing.B) (*sqlx.DB, http.Handler) {
	ctx := context.Background()
	store, err := db.Open(ctx, dbtest.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	httpCfg, err := loadHTTPConfig(func(k string) string {
		return map[string]string{"RATE_LIMIT_VIEWER_RPS": "0", "RATE_LIMIT_ADDRESS_RPS": "0"}[k]
	})
	if err != nil {
		b.Fatal(err)
	}
	s := db.New(store, db.DefaultLimits(), time.Now)
	a := &app{store: s, auth: &graph.Authenticator{Secret: []byte(testSecret), Store: s},
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)), http: httpCfg}
	return store, a.handler()
}

func benchToken(b *testing.B, handle string) string {
	tok, err := graph.SignToken([]byte(testSecret), handle, false, time.Hour, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// benchServe posts body to h as the holder of tok and returns the answer.
func benchServe(b *testing.B, h http.Handler, tok, body string) string {
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

// benchLoop runs request i for i < b.N, timed, and reports besides time and
// allocations the process's CPU per request (cpu-µs/op): the server's side of the
// bench's "server µs" without the network.
func benchLoop(b *testing.B, request func(i int)) {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpu()
	for i := range b.N {
		request(i)
	}
	b.ReportMetric(float64((cpu()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}
