package main

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestQuotaRaceOverHTTP is TESTPLAN C1 end to end: a sender at 90 of 100 sends in the
// window (plus 50 older ones) fires 50 sends to distinct members at once over HTTP,
// released by a barrier; exactly 10 succeed, the rest are WEEKLY_LIMIT_REACHED. 20 rounds,
// each with its own sender.
func TestQuotaRaceOverHTTP(t *testing.T) {
	// The 50 sends of a round queue on their sender's row, each holding a pooled
	// connection; on a loaded machine the last ones can wait for a connection, or for
	// the row, longer than the default DB_POOL_WAIT, lock and statement timeouts (2 s
	// and 5 s: 5 of 50 did once in CI) and answer the retryable busy error, which is
	// F3's subject (TestFaultF3PoolExhaustion), not this test's.
	s := startServer(t, map[string]string{"DB_POOL_WAIT": "30s", "DB_LOCK_TIMEOUT": "30s", "DB_STATEMENT_TIMEOUT": "30s"})
	const rounds, parallel = 20, 50
	s.conn.MustExec(`INSERT INTO members (handle, name) SELECT 'r' || g, 'R' FROM generate_series(1, $1) g`, parallel)
	var recipients []string
	tok := s.member("probe")
	for i := 1; i <= parallel; i++ {
		recipients = append(recipients, s.memberID(tok, fmt.Sprintf("r%d", i)))
	}
	var latencies []time.Duration
	var mu sync.Mutex
	overIssued := 0
	for round := 0; round < rounds; round++ {
		sender := fmt.Sprintf("s%d", round)
		token := s.member(sender)
		// 90 sends in the window and 50 older ones, to members made for the purpose.
		s.conn.MustExec(`
WITH h AS (INSERT INTO members (handle, name) SELECT $1 || '_h' || g, 'H' FROM generate_series(1, 140) g RETURNING id),
     n AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM h)
INSERT INTO invitations (sender_id, recipient_id, status, sent_at, responded_at)
SELECT (SELECT id FROM members WHERE handle = $1), id, 'ACCEPTED', t, t
  FROM n, LATERAL (SELECT CASE WHEN k <= 90 THEN now() - k * interval '1 hour'
                               ELSE now() - interval '8 days' - k * interval '1 hour' END AS t) x`, sender)
		var start, done sync.WaitGroup
		start.Add(1)
		codes, messages := make([]string, parallel), make([]string, parallel)
		for i := 0; i < parallel; i++ {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				began := time.Now()
				r := s.gql(token, sendMutation, map[string]any{"to": recipients[i]})
				elapsed := time.Since(began)
				mu.Lock()
				latencies = append(latencies, elapsed)
				mu.Unlock()
				codes[i] = r.code()
				if len(r.Errors) > 0 {
					messages[i] = r.Errors[0].Message
				}
				if c, _ := get(r.Data, "sendInvitation.userErrors.0.code").(string); c != "" {
					codes[i] = c
				}
			}()
		}
		start.Done()
		done.Wait()
		tally, said := map[string]int{}, map[string]string{}
		for i, c := range codes {
			tally[c]++
			if messages[i] != "" {
				said[c] = messages[i]
			}
		}
		if tally[""] != 10 || tally["WEEKLY_LIMIT_REACHED"] != 40 {
			t.Errorf("round %d: %v (the errors said: %v)", round, tally, said)
		}
		overIssued += max(tally[""]-10, 0)
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	p95 := latencies[len(latencies)*95/100]
	t.Logf("C1 over HTTP: %d rounds of %d parallel sends at 90/100; over-issued %d; p50 %v, p95 %v",
		rounds, parallel, overIssued, latencies[len(latencies)/2].Round(time.Millisecond), p95.Round(time.Millisecond))
}

// TestAbuseMemory is the memory figure of TESTPLAN S5: the abuse probes, repeated, leave
// the server's heap under 50 MB larger than before. The aliased-sends probe must also
// keep the quota: 200 sends in one document give exactly 100 invitations.
func TestAbuseMemory(t *testing.T) {
	s := startServer(t, nil)
	tok := s.member("ada")
	s.conn.MustExec(`INSERT INTO members (handle, name) SELECT 'r' || g, 'R' FROM generate_series(1, 200) g`)
	var sends strings.Builder
	sends.WriteString("mutation {")
	for i := 1; i <= 200; i++ {
		id := s.memberID(tok, fmt.Sprintf("r%d", i))
		fmt.Fprintf(&sends, ` s%d: sendInvitation(input: {recipientId: "%s"}) { userErrors { code } }`, i, id)
	}
	sends.WriteString(" }")
	r := s.gql(tok, sends.String(), nil)
	ok := strings.Count(r.raw, `"userErrors":[]`)
	if ok != 100 || strings.Count(r.raw, "WEEKLY_LIMIT_REACHED") != 100 {
		t.Fatalf("200 aliased sends: %d succeeded (%d refused): %.300s", ok, strings.Count(r.raw, "WEEKLY_LIMIT_REACHED"), r.raw)
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	before := heap()
	probes := []string{
		`{ pendingInvitations(first: 99999999) { nodes { id } } }`,
		"{" + strings.Repeat(" a: viewer { handle }", 1000) + " }",
		"{ viewer { handle " + strings.Repeat("@include(if: true) ", 3000) + "} }",
		"{ __schema { types { " + strings.Repeat("fields { type { ", 10) + "name" + strings.Repeat(" } }", 10) + " } } }",
	}
	for i := 0; i < 25; i++ {
		for _, p := range probes {
			if r := s.gql(tok, p, nil); r.code() == "" {
				t.Fatalf("probe accepted: %.100s", p)
			}
		}
	}
	growth := (int64(heap()) - int64(before)) / (1 << 20)
	if growth > 50 {
		t.Fatalf("heap grew %d MB", growth)
	}
	t.Logf("S5: 100 abuse probes; heap growth %d MB; 200 aliased sends → 100 invitations (the quota held)", growth)
}
