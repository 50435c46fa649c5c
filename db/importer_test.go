package db_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"invitations/db"
	"invitations/db/dbtest"
)

var importNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func newImportStore(t testing.TB) (*sqlx.DB, *db.Store) {
	t.Helper()
	conn := dbtest.Open(t)
	clock := dbtest.NewClock(importNow)
	return conn, db.New(conn, db.DefaultLimits(), clock.Now)
}

// runImport imports lines joined by newlines and fails the test on a returned error or
// on a line error message that leaks driver details.
func runImport(t testing.TB, s *db.Store, lines []string) *db.ImportReport {
	t.Helper()
	rep, err := s.Import(context.Background(), strings.NewReader(strings.Join(lines, "\n")+"\n"), db.ImportOptions{})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	for _, e := range rep.Errors {
		if strings.Contains(e.Message, "pq:") || strings.Contains(e.Message, "SQLSTATE") {
			t.Errorf("line %d: message leaks driver details: %q", e.Line, e.Message)
		}
	}
	return rep
}

func member(handle string) string {
	return fmt.Sprintf(`{"member": {"handle": %q, "name": "Name of %s", "headline": "works"}}`, handle, handle)
}

func invitation(from, to, status, sentAt, extra string) string {
	return fmt.Sprintf(`{"invitation": {"sender": %q, "recipient": %q, "status": %q, "sentAt": %q%s}}`, from, to, status, sentAt, extra)
}

// tableChecksums returns an md5 of each table's rows, ids included.
func tableChecksums(t testing.TB, conn *sqlx.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for table, order := range map[string]string{"members": "id", "connections": "member_a, member_b", "invitations": "id"} {
		var sum *string
		q := fmt.Sprintf(`SELECT md5(string_agg(t::text, ',' ORDER BY %s)) FROM %s t`, order, table)
		if err := conn.Get(&sum, q); err != nil {
			t.Fatal(err)
		}
		out[table] = derefOr(sum)
	}
	return out
}

func derefOr(s *string) string {
	if s == nil {
		return "<empty>"
	}
	return *s
}

// contentDump lists every row by handles instead of ids, so that two databases loaded
// from different files can be compared.
func contentDump(t testing.TB, conn *sqlx.DB) string {
	t.Helper()
	var rows []string
	err := conn.Select(&rows, `
SELECT 'm ' || m::text FROM (SELECT handle, name, headline, plan, connection_count, created_at FROM members) m
UNION ALL
SELECT 'c ' || a.handle || ' ' || b.handle || ' ' || c.since FROM connections c
  JOIN members a ON a.id = c.member_a JOIN members b ON b.id = c.member_b
UNION ALL
SELECT 'i ' || s.handle || ' ' || r.handle || ' ' || x::text FROM invitations i
  JOIN members s ON s.id = i.sender_id JOIN members r ON r.id = i.recipient_id
  CROSS JOIN LATERAL (SELECT i.message, i.source, i.status, i.sent_at, i.responded_at, i.withdrawn_at) x
ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(rows, "\n")
}

func TestImportLoadsMembersConnectionsAndInvitations(t *testing.T) {
	conn, s := newImportStore(t)
	lines := []string{
		member("Alice"), // stored lowercased
		member("bob"),
		`{"member": {"handle": "carol", "name": "Carol", "plan": "PREMIUM"}}`,
		member("dave"),
		"",
		`{"connection": {"a": "alice", "b": "bob", "since": "2025-01-02T03:04:05Z"}}`,
		`{"connection": {"a": "bob", "b": "alice"}}`, // the same pair: unchanged
		`{"connection": {"a": "carol", "b": "alice"}}`,
		invitation("alice", "bob", "ACCEPTED", "2024-12-30T10:00:00Z", `, "respondedAt": "2025-01-02T03:04:05Z", "message": "  hello  ", "source": "SEARCH"`),
		invitation("alice", "dave", "PENDING", "2026-11-01T10:00:00Z", `, "message": "   "`),
		invitation("dave", "carol", "IGNORED", "2026-10-01T10:00:00Z", `, "respondedAt": "2026-10-02T10:00:00Z"`),
		invitation("bob", "carol", "WITHDRAWN", "2026-09-01T10:00:00Z", `, "withdrawnAt": "2026-09-05T10:00:00Z"`),
		invitation("bob", "dave", "EXPIRED", "2025-09-01T10:00:00Z", ""),
	}
	rep := runImport(t, s, lines)
	if rep.ErrorCount != 0 {
		t.Fatalf("errors: %+v", rep.Errors)
	}
	if wantRep := (db.ImportReport{Lines: 13, Members: 4, Connections: 2, Invitations: 5, Unchanged: 1}); fmt.Sprint(*rep) != fmt.Sprint(wantRep) {
		t.Fatalf("report = %+v, want %+v", *rep, wantRep)
	}

	var mismatched int
	err := conn.Get(&mismatched, `
SELECT count(*) FROM members m
 WHERE m.connection_count <> (SELECT count(*) FROM connections c WHERE m.id IN (c.member_a, c.member_b))`)
	if err != nil || mismatched != 0 {
		t.Fatalf("members whose connection_count does not match connections: %d (%v)", mismatched, err)
	}
	alice, err := s.MemberByHandle(context.Background(), "alice")
	if err != nil || alice == nil || alice.ConnectionCount != 2 || alice.Plan != db.PlanStandard || !alice.CreatedAt.Equal(importNow) {
		t.Fatalf("alice = %+v, %v", alice, err)
	}
	var since time.Time
	if err := conn.Get(&since, `SELECT since FROM connections c JOIN members b ON b.id = c.member_b WHERE b.handle = 'bob'`); err != nil ||
		!since.Equal(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("alice–bob since = %v, %v", since, err)
	}
	var got []string
	err = conn.Select(&got, `
SELECT concat_ws(' ', s.handle, i.status, i.source, coalesce(i.message, '<null>'))
  FROM invitations i JOIN members s ON s.id = i.sender_id ORDER BY i.id`)
	if err != nil {
		t.Fatal(err)
	}
	want := "[alice ACCEPTED SEARCH hello alice PENDING OTHER <null> dave IGNORED OTHER <null> " +
		"bob WITHDRAWN OTHER <null> bob EXPIRED OTHER <null>]"
	if fmt.Sprint(got) != want {
		t.Fatalf("invitations = %v, want %v", got, want)
	}
}

func TestImportReportsBadLineWithItsNumberAndLoadsTheRest(t *testing.T) {
	before := []string{
		member("alice"),
		member("bob"),
		member("carol"),
		invitation("alice", "bob", "PENDING", "2026-11-01T10:00:00Z", ""),
	}
	after := []string{
		`{"connection": {"a": "bob", "b": "carol"}}`,
		invitation("carol", "alice", "ACCEPTED", "2026-10-01T10:00:00Z", `, "respondedAt": "2026-10-03T10:00:00Z"`),
		member("dave"),
	}
	cases := []struct {
		name, line, want string
	}{
		{"malformed JSON", `{"member": {"handle": "erin", "name": "Erin"`, "malformed JSON"},
		{"not an object", `["member"]`, "malformed JSON: a record must be a JSON object"},
		{"sentAt not a string", `{"invitation": {"sender": "carol", "recipient": "bob", "status": "PENDING", "sentAt": 5}}`,
			"invitation.sentAt must be a string, not a JSON number"},
		{"text after the record", member("erin") + ` x`, "malformed JSON"},
		{"unknown member", invitation("alice", "zed", "PENDING", "2026-11-02T10:00:00Z", ""), `unknown member "zed"`},
		{"unknown member in connection", `{"connection": {"a": "zed", "b": "alice"}}`, `unknown member "zed"`},
		{"self invitation", invitation("bob", "BOB", "PENDING", "2026-11-02T10:00:00Z", ""), "cannot invite themselves"},
		{"self connection", `{"connection": {"a": "bob", "b": "bob"}}`, "themselves"},
		{"second live invitation, same direction", invitation("alice", "bob", "PENDING", "2026-11-02T10:00:00Z", ""),
			"a live invitation between alice and bob already exists"},
		{"second live invitation, reverse direction", invitation("bob", "alice", "IGNORED", "2026-11-02T10:00:00Z", `, "respondedAt": "2026-11-03T10:00:00Z"`),
			"a live invitation between bob and alice already exists"},
		{"bad status", invitation("carol", "bob", "MAYBE", "2026-11-02T10:00:00Z", ""), `invitation.status "MAYBE"`},
		{"missing status", `{"invitation": {"sender": "carol", "recipient": "bob", "sentAt": "2026-11-02T10:00:00Z"}}`, "invitation.status"},
		{"respondedAt missing for ACCEPTED", invitation("carol", "bob", "ACCEPTED", "2026-11-02T10:00:00Z", ""),
			"invitation.respondedAt is required for status ACCEPTED"},
		{"respondedAt for PENDING", invitation("carol", "bob", "PENDING", "2026-11-02T10:00:00Z", `, "respondedAt": "2026-11-03T10:00:00Z"`),
			"invitation.respondedAt is not allowed for status PENDING"},
		{"withdrawnAt before sentAt", invitation("carol", "bob", "WITHDRAWN", "2026-11-02T10:00:00Z", `, "withdrawnAt": "2026-11-01T10:00:00Z"`),
			"invitation.withdrawnAt 2026-11-01T10:00:00Z is before sentAt"},
		{"withdrawnAt missing", invitation("carol", "bob", "WITHDRAWN", "2026-11-02T10:00:00Z", ""), "invitation.withdrawnAt is required"},
		{"sentAt in the future", invitation("carol", "bob", "PENDING", "2026-11-21T12:00:01Z", ""), "invitation.sentAt 2026-11-21T12:00:01Z is in the future"},
		{"sentAt not RFC 3339", invitation("carol", "bob", "PENDING", "2026-11-02 10:00", ""), "is not an RFC 3339 time"},
		{"sentAt missing", `{"invitation": {"sender": "carol", "recipient": "bob", "status": "PENDING"}}`, "invitation.sentAt is required"},
		{"bad source", invitation("carol", "bob", "PENDING", "2026-11-02T10:00:00Z", `, "source": "EMAIL"`), `invitation.source "EMAIL"`},
		{"message too long", invitation("carol", "bob", "PENDING", "2026-11-02T10:00:00Z", `, "message": "`+strings.Repeat("é", 301)+`"`),
			"invitation.message has 301 characters"},
		{"unknown field", invitation("carol", "bob", "PENDING", "2026-11-02T10:00:00Z", `, "note": "hi"`), `invitation has an unknown field "note"`},
		{"wrong type", `{"member": {"handle": "erin", "name": 7}}`, "member.name must be a string"},
		{"two keys in one record", `{"member": {"handle": "erin", "name": "Erin"}, "connection": {"a": "bob", "b": "alice"}}`, "exactly one key"},
		{"unknown kind", `{"group": {"name": "x"}}`, `unknown record kind "group"`},
		{"record not an object", `{"member": null}`, "member must be a JSON object"},
		{"invalid handle", `{"member": {"handle": "-erin", "name": "Erin"}}`, `member.handle "-erin" is invalid`},
		{"empty name", `{"member": {"handle": "erin", "name": "  "}}`, "member.name must have 1 to 200 characters"},
		{"bad plan", `{"member": {"handle": "erin", "name": "Erin", "plan": "GOLD"}}`, `member.plan "GOLD"`},
		{"overlong line", `{"member": {"handle": "erin", "name": "` + strings.Repeat("x", 1<<20) + `"}}`, "longer than 1 MiB"},
	}
	// The database must hold exactly what the file without the bad line gives.
	refConn, ref := newImportStore(t)
	runImport(t, ref, append(append([]string{}, before...), after...))
	want := contentDump(t, refConn)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conn, s := newImportStore(t)
			lines := append(append(append([]string{}, before...), tc.line), after...)
			rep := runImport(t, s, lines)
			if rep.ErrorCount != 1 || len(rep.Errors) != 1 {
				t.Fatalf("errors = %d %+v, want exactly one", rep.ErrorCount, rep.Errors)
			}
			if e := rep.Errors[0]; e.Line != 5 || !strings.Contains(e.Message, tc.want) {
				t.Fatalf("error = line %d %q, want line 5 containing %q", e.Line, e.Message, tc.want)
			}
			if rep.Lines != 8 || rep.Members != 4 || rep.Connections != 1 || rep.Invitations != 2 || rep.Unchanged != 0 {
				t.Fatalf("report = %+v", *rep)
			}
			if got := contentDump(t, conn); got != want {
				t.Fatalf("loaded:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestImportRedoesBatchAfterConflictAndKeepsEveryGoodLine(t *testing.T) {
	conn, s := newImportStore(t)
	var lines []string
	var wantErrs []int
	for i := range 1200 {
		lines = append(lines, member(fmt.Sprintf("m%04d", i)))
	}
	sent := importNow.Add(-db.Day).Format(time.RFC3339)
	for i := range 1000 {
		from, to := fmt.Sprintf("m%04d", i), fmt.Sprintf("m%04d", i+1)
		lines = append(lines, invitation(from, to, "PENDING", sent, ""))
		if i%300 == 150 { // an unknown member, then a conflict, in the same batch
			lines = append(lines, invitation(from, "nobody", "PENDING", sent, ""), invitation(to, from, "PENDING", sent, ""))
			wantErrs = append(wantErrs, len(lines)-1, len(lines))
		}
	}
	rep := runImport(t, s, lines)
	var gotErrs []int
	for _, e := range rep.Errors {
		gotErrs = append(gotErrs, e.Line)
	}
	if fmt.Sprint(gotErrs) != fmt.Sprint(wantErrs) || rep.ErrorCount != len(wantErrs) {
		t.Fatalf("error lines = %v (%d), want %v", gotErrs, rep.ErrorCount, wantErrs)
	}
	if rep.Lines != len(lines) || rep.Members != 1200 || rep.Invitations != 1000 || rep.Unchanged != 0 {
		t.Fatalf("report = %+v", *rep)
	}
	var members, invitations int
	if err := conn.Get(&members, `SELECT count(*) FROM members`); err != nil || members != 1200 {
		t.Fatalf("members = %d, %v", members, err)
	}
	if err := conn.Get(&invitations, `SELECT count(*) FROM invitations`); err != nil || invitations != 1000 {
		t.Fatalf("invitations = %d, %v", invitations, err)
	}
}

func TestImportRerunChangesNothing(t *testing.T) {
	conn, s := newImportStore(t)
	lines := []string{
		member("alice"), member("bob"), member("carol"),
		`{"member": {"handle": "dave", "name": "Dave", "headline": "", "plan": "PREMIUM"}}`,
		`{"connection": {"a": "alice", "b": "bob", "since": "2025-01-02T03:04:05.123456789Z"}}`,
		`{"connection": {"a": "carol", "b": "dave"}}`,
		invitation("alice", "bob", "ACCEPTED", "2024-12-30T10:00:00.5Z", `, "respondedAt": "2025-01-02T03:04:05Z", "message": "hi"`),
		invitation("alice", "carol", "PENDING", "2026-11-01T10:00:00+02:00", ""),
		invitation("bob", "carol", "PENDING", "2026-01-01T10:00:00Z", ""), // stored EXPIRED
		invitation("bob", "carol", "IGNORED", "2026-11-01T10:00:00Z", `, "respondedAt": "2026-11-02T10:00:00Z"`),
		invitation("dave", "alice", "WITHDRAWN", "2026-09-01T10:00:00Z", `, "withdrawnAt": "2026-09-05T10:00:00Z"`),
		invitation("dave", "bob", "nope", "2026-09-01T10:00:00Z", ""), // a bad line stays bad
	}
	first := runImport(t, s, lines)
	if first.ErrorCount != 1 || first.Members != 4 || first.Connections != 2 || first.Invitations != 5 || first.Unchanged != 0 {
		t.Fatalf("first run = %+v", *first)
	}
	sums := tableChecksums(t, conn)
	second := runImport(t, s, lines)
	if second.Members != 0 || second.Connections != 0 || second.Invitations != 0 || second.Unchanged != 11 ||
		second.ErrorCount != 1 || second.Errors[0].Line != 12 {
		t.Fatalf("second run = %+v, want all 11 valid records unchanged", *second)
	}
	if again := tableChecksums(t, conn); fmt.Sprint(again) != fmt.Sprint(sums) {
		t.Fatalf("tables changed on re-run:\n%v\n%v", sums, again)
	}
}

func TestImportUpdatesChangedMemberOnRerun(t *testing.T) {
	_, s := newImportStore(t)
	runImport(t, s, []string{member("alice")})
	rep := runImport(t, s, []string{`{"member": {"handle": "alice", "name": "Alice Smith", "plan": "PREMIUM"}}`})
	if rep.Members != 1 || rep.Unchanged != 0 {
		t.Fatalf("report = %+v", *rep)
	}
	m, err := s.MemberByHandle(context.Background(), "alice")
	if err != nil || m.Name != "Alice Smith" || m.Headline != "" || m.Plan != db.PlanPremium {
		t.Fatalf("alice = %+v, %v", m, err)
	}
}

func TestImportStoresStalePendingAsExpiredAndFreesThePair(t *testing.T) {
	conn, s := newImportStore(t)
	ttl := db.DefaultLimits().TTL
	lines := []string{
		member("alice"), member("bob"),
		invitation("alice", "bob", "PENDING", importNow.Add(-181*db.Day).Format(time.RFC3339), ""),
		invitation("bob", "alice", "IGNORED", importNow.Add(-ttl).Format(time.RFC3339), `, "respondedAt": "`+importNow.Add(-ttl+db.Day).Format(time.RFC3339)+`"`),
		invitation("alice", "bob", "PENDING", importNow.Add(-ttl+time.Second).Format(time.RFC3339), ""),
	}
	rep := runImport(t, s, lines)
	if rep.ErrorCount != 0 || rep.Invitations != 3 {
		t.Fatalf("report = %+v", *rep)
	}
	var statuses []string
	if err := conn.Select(&statuses, `SELECT status FROM invitations ORDER BY sent_at`); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(statuses) != "[EXPIRED EXPIRED PENDING]" {
		t.Fatalf("statuses = %v", statuses)
	}
}

func TestImportExpiresStaleLiveInvitationAlreadyInTheDatabase(t *testing.T) {
	conn, s := newImportStore(t)
	clock := dbtest.NewClock(importNow.Add(-100 * db.Day))
	early := db.New(conn, db.DefaultLimits(), clock.Now)
	runImport(t, early, []string{member("alice"), member("bob"),
		invitation("alice", "bob", "PENDING", importNow.Add(-190*db.Day).Format(time.RFC3339), "")})
	rep := runImport(t, s, []string{invitation("bob", "alice", "PENDING", importNow.Add(-db.Day).Format(time.RFC3339), "")})
	if rep.ErrorCount != 0 || rep.Invitations != 1 {
		t.Fatalf("report = %+v", *rep)
	}
	var statuses []string
	if err := conn.Select(&statuses, `SELECT status FROM invitations ORDER BY sent_at`); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(statuses) != "[EXPIRED PENDING]" {
		t.Fatalf("statuses = %v", statuses)
	}
}

func TestImportCallsProgressWithFinalLineCount(t *testing.T) {
	_, s := newImportStore(t)
	var b strings.Builder
	for i := range 2500 {
		if i%100 == 99 {
			b.WriteString("\r\n") // blank lines count too
			continue
		}
		fmt.Fprintf(&b, "%s\r\n", member(fmt.Sprintf("m%04d", i)))
	}
	b.WriteString(member("last")) // no final newline
	var calls, lastLines int
	var lastBytes int64
	rep, err := s.Import(context.Background(), strings.NewReader(b.String()), db.ImportOptions{
		Progress: func(lines int, bytes int64) { calls, lastLines, lastBytes = calls+1, lines, bytes },
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 || lastLines != 2501 || rep.Lines != 2501 || lastBytes != int64(b.Len()) {
		t.Fatalf("progress: %d calls, last (%d, %d); report lines %d; want final (2501, %d)", calls, lastLines, lastBytes, rep.Lines, b.Len())
	}
	if rep.Members != 2476 || rep.ErrorCount != 0 {
		t.Fatalf("report = %+v", *rep)
	}
}

func TestImportReturnsErrorWhenContextIsCancelled(t *testing.T) {
	_, s := newImportStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := s.Import(ctx, strings.NewReader(member("alice")+"\n"), db.ImportOptions{})
	if err == nil || rep == nil || rep.Members != 0 {
		t.Fatalf("Import = %+v, %v; want a context error", rep, err)
	}
	if m, _ := s.MemberByHandle(context.Background(), "alice"); m != nil {
		t.Fatalf("alice was loaded")
	}
}

// BenchmarkImport imports a generated file of 100,000 lines: 10,000 members, 30,000
// connections and 60,000 invitations of every status.
func BenchmarkImport(b *testing.B) {
	var sb strings.Builder
	const members = 10000
	for i := range members {
		fmt.Fprintf(&sb, "%s\n", member(fmt.Sprintf("m%05d", i)))
	}
	for i := range 3 * members {
		fmt.Fprintf(&sb, `{"connection": {"a": "m%05d", "b": "m%05d", "since": "2025-06-01T00:00:00Z"}}`+"\n", i%members, (i%members+100+i/members)%members)
	}
	statuses := []string{"PENDING", "ACCEPTED", "IGNORED", "WITHDRAWN", "EXPIRED", "PENDING"}
	for j := range 6 * members {
		s, r := j%members, (j%members+1+j/members)%members
		sent := importNow.Add(-time.Duration(j%150)*db.Day - time.Duration(j)*time.Second)
		extra := ""
		switch st := statuses[j%6]; st {
		case "ACCEPTED", "IGNORED":
			extra = fmt.Sprintf(`, "respondedAt": %q`, sent.Add(time.Hour).Format(time.RFC3339))
		case "WITHDRAWN":
			extra = fmt.Sprintf(`, "withdrawnAt": %q, "message": "hi there"`, sent.Add(time.Hour).Format(time.RFC3339))
		}
		fmt.Fprintf(&sb, "%s\n", invitation(fmt.Sprintf("m%05d", s), fmt.Sprintf("m%05d", r), statuses[j%6], sent.Format(time.RFC3339), extra))
	}
	input := sb.String()
	for b.Loop() {
		b.StopTimer()
		_, s := newImportStore(b)
		b.StartTimer()
		start := time.Now()
		rep, err := s.Import(context.Background(), strings.NewReader(input), db.ImportOptions{})
		if err != nil || rep.ErrorCount != 0 || rep.Lines != 100000 || rep.Unchanged != 0 {
			b.Fatalf("Import = %+v, %v", rep, err)
		}
		b.Logf("100,000 lines in %v", time.Since(start))
		b.StopTimer()
		start = time.Now()
		rep, err = s.Import(context.Background(), strings.NewReader(input), db.ImportOptions{})
		if err != nil || rep.Unchanged != 100000 {
			b.Fatalf("re-run = %+v, %v", rep, err)
		}
		b.Logf("re-run in %v", time.Since(start))
		b.StartTimer()
	}
}
