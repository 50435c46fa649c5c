package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzGraphQLHandler is TESTPLAN S7 for the whole handler: any document with any
// variables, sent by a signed-in member against a seeded database, gets a well-formed
// answer that is never a 5xx and never leaks internals.
func FuzzGraphQLHandler(f *testing.F) {
	s := startServer(f, nil)
	tok := s.member("ada")
	s.member("bob")
	bob := s.memberID(tok, "bob")
	s.ok(tok, sendMutation, map[string]any{"to": bob, "msg": "hi"})
	for _, seed := range []struct{ query, vars string }{
		{`{ viewer { handle connectionStatus } }`, `{}`},
		{`query($f: PendingInvitationFilter, $a: String) { pendingInvitations(filter: $f, after: $a, first: 5) { totalCount edges { cursor node { id ageDays } } } }`,
			`{"f": {"olderThanDays": 14, "newerThanDays": 30}, "a": "MTc5MjUzMDEwNjAwMDAwMDo2"}`},
		{`query($id: ID!) { node(id: $id) { id ... on Invitation { status sender { handle } } } }`, `{"id": "SW52aXRhdGlvbjox"}`},
		{`mutation($ids: [ID!]!) { withdrawSelected(input: {invitationIds: $ids}) { withdrawnCount results { outcome } userErrors { code } } }`, `{"ids": ["SW52aXRhdGlvbjox", "x"]}`},
		{`mutation($to: ID!, $m: String) { sendInvitation(input: {recipientId: $to, message: $m}) { connected userErrors { code } } }`,
			`{"to": "` + bob + `", "m": "hello\u0000"}`},
		{`{ sentInvitations(filter: {sentAfter: "2026-01-01T00:00:00Z"}, last: 3) { pageInfo { hasPreviousPage } } }`, `null`},
		{`{ invitationQuota { used remaining } notifications { totalCount } }`, `{}`},
	} {
		f.Add(seed.query, seed.vars)
	}
	f.Fuzz(func(t *testing.T, query, vars string) {
		req := map[string]any{"query": query}
		if json.Valid([]byte(vars)) {
			req["variables"] = json.RawMessage(vars)
		}
		body, err := json.Marshal(req)
		if err != nil {
			return
		}
		r, _ := http.NewRequest("POST", s.url+"/query", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 500 {
			t.Fatalf("%d for %q %q: %s", res.StatusCode, query, vars, raw)
		}
		for _, leak := range []string{"pq:", "SQLSTATE", "goroutine ", ".go:", "panic"} {
			if strings.Contains(string(raw), leak) && !strings.Contains(query, leak) && !strings.Contains(vars, leak) {
				t.Fatalf("response leaks %q for %q %q: %s", leak, query, vars, raw)
			}
		}
		if !json.Valid(raw) {
			t.Fatalf("not JSON for %q: %s", query, raw)
		}
	})
}
