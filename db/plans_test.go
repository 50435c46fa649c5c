package db_test

// Query plans of the hot statements on a realistically sized network: no sequential
// scan of invitations, and the intended (partial) indexes. The statements are not
// copied here: the repository runs its real operations on a connection that records
// every statement with its arguments, and each recorded statement is then explained
// (PREPARE, EXPLAIN EXECUTE) both as a custom plan, planned for its parameter values
// as the first five executions of a prepared statement are, and as a generic plan, which PostgreSQL may
// switch a prepared statement to after five executions. Neither may scan invitations
// sequentially; the expected indexes are asserted of the custom plans, and of the
// generic plans the repository forces (the quota statements); where another generic
// plan picks others it is logged.

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jmoiron/sqlx"

	"invitations/db"
	"invitations/db/dbtest"
)

// recorder keeps the statements sent through its connections while it is on.
type recorder struct {
	mu    sync.Mutex
	on    bool
	stmts []recordedStmt
}

type recordedStmt struct {
	query string
	args  []any
}

// TraceQueryStart records a statement the store's pgx connections send.
func (r *recorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.on {
		return ctx
	}
	var args []any
	for _, a := range data.Args {
		if _, ok := a.(pgx.QueryResultFormatsByOID); !ok { // database/sql's, not the statement's
			args = append(args, a)
		}
	}
	r.stmts = append(r.stmts, recordedStmt{data.SQL, args})
	return ctx
}

func (r *recorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// record runs fn and returns the statements it sent.
func (r *recorder) record(fn func()) []recordedStmt {
	r.mu.Lock()
	r.on, r.stmts = true, nil
	r.mu.Unlock()
	fn()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = false
	return r.stmts
}

// planNode is a node of EXPLAIN (FORMAT JSON)'s tree.
type planNode struct {
	NodeType string     `json:"Node Type"`
	Relation string     `json:"Relation Name"`
	Index    string     `json:"Index Name"`
	Plans    []planNode `json:"Plans"`
}

// scans lists the plan's scans as "Node Type on relation [using index]".
func (p planNode) scans() []string {
	var out []string
	var walk func(n planNode)
	walk = func(n planNode) {
		switch {
		case n.Index != "":
			out = append(out, n.NodeType+" using "+n.Index)
		case n.Relation != "":
			out = append(out, n.NodeType+" on "+n.Relation)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(p)
	return out
}

// explainer plans statements on a connection of its own.
type explainer struct {
	t    *testing.T
	conn *sql.Conn
	n    int
}

// explain returns the custom and the generic plan of a recorded statement.
func (e *explainer) explain(s recordedStmt) (custom, generic planNode) {
	e.t.Helper()
	ctx := context.Background()
	e.n++
	name := fmt.Sprintf("plan_%d", e.n)
	if _, err := e.conn.ExecContext(ctx, `PREPARE `+name+` AS `+s.query); err != nil {
		e.t.Fatalf("prepare %s: %v", oneLine(s.query), err)
	}
	defer e.conn.ExecContext(ctx, `DEALLOCATE `+name)
	execute := `EXECUTE ` + name
	if len(s.args) > 0 {
		lits := make([]string, len(s.args))
		for i, a := range s.args {
			lits[i] = literal(a)
		}
		execute += `(` + strings.Join(lits, ", ") + `)`
	}
	plan := func(mode string) planNode {
		if _, err := e.conn.ExecContext(ctx, `SET plan_cache_mode = `+mode); err != nil {
			e.t.Fatal(err)
		}
		var raw string
		if err := e.conn.QueryRowContext(ctx, `EXPLAIN (FORMAT JSON) `+execute).Scan(&raw); err != nil {
			e.t.Fatalf("explain %s: %v", oneLine(s.query), err)
		}
		var out []struct{ Plan planNode }
		if err := json.Unmarshal([]byte(raw), &out); err != nil || len(out) != 1 {
			e.t.Fatalf("explain %s: %v %s", oneLine(s.query), err, raw)
		}
		return out[0].Plan
	}
	return plan("force_custom_plan"), plan("force_generic_plan")
}

// literal spells an argument as an SQL literal of unknown type, which EXECUTE
// converts to the parameter's type.
func literal(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case *string:
		if v == nil {
			return "NULL"
		}
		return quote(*v)
	case *time.Time:
		if v == nil {
			return "NULL"
		}
		return quote(v.Format(time.RFC3339Nano))
	case time.Time:
		return quote(v.Format(time.RFC3339Nano))
	case []byte:
		if utf8.Valid(v) {
			return quote(string(v))
		}
		return `'\x` + hex.EncodeToString(v) + `'`
	case string:
		return quote(v)
	case []int64:
		if v == nil {
			return "NULL"
		}
		elems := make([]string, len(v))
		for i, id := range v {
			elems[i] = strconv.FormatInt(id, 10)
		}
		return quote("{" + strings.Join(elems, ",") + "}")
	default:
		return quote(fmt.Sprint(v))
	}
}

// quote is s as a string literal (standard_conforming_strings is on).
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestPlansOfHotStatements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := dbtest.DSN(t)
	rec := &recorder{}
	conn, err := db.Open(ctx, dsn, db.Options{Tracer: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	clock := dbtest.NewClock(t0)
	store := db.New(conn, db.DefaultLimits(), clock.Now)
	// The test's own queries, and EXPLAIN, go through a connection that records nothing.
	plain, err := sqlx.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })

	// A network the planner sees as it would in production, only smaller: 3,000
	// members, 60,000 invitations with a heavy tail (Seed analyzes the tables).
	begin := time.Now()
	if err := store.Seed(ctx, db.SeedOptions{Members: 3000, Invitations: 60000}); err != nil {
		t.Fatal(err)
	}
	seeded := time.Since(begin)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	one := func(query string, args ...any) int64 {
		t.Helper()
		var id int64
		if err := plain.Get(&id, query, args...); err != nil {
			t.Fatalf("%s: %v", oneLine(query), err)
		}
		return id
	}
	cut := t0.Add(-db.DefaultLimits().TTL)
	// Senders by their pending invitations: a light one (a few, some older than two
	// weeks) and the heaviest; the member who received the most.
	light := one(`SELECT sender_id FROM invitations WHERE status IN ('PENDING', 'IGNORED') AND sent_at > $1
		GROUP BY sender_id HAVING count(*) BETWEEN 3 AND 10 AND min(sent_at) < $2 ORDER BY sender_id LIMIT 1`, cut, t0.Add(-14*db.Day))
	heavy := one(`SELECT sender_id FROM invitations WHERE status IN ('PENDING', 'IGNORED') AND sent_at > $1
		GROUP BY sender_id ORDER BY count(*) DESC, sender_id LIMIT 1`, cut)
	inbox := one(`SELECT recipient_id FROM invitations WHERE status = 'PENDING' AND sent_at > $1
		GROUP BY recipient_id ORDER BY count(*) DESC, recipient_id LIMIT 1`, cut)
	// A member the sender has no history with, in either direction.
	stranger := func(sender int64) int64 {
		return one(`SELECT m.id FROM members m WHERE m.id <> $1
			AND NOT EXISTS (SELECT 1 FROM invitations i WHERE (i.sender_id, i.recipient_id) IN (($1, m.id), (m.id, $1)))
			AND NOT EXISTS (SELECT 1 FROM connections c WHERE (c.member_a, c.member_b) IN ((LEAST($1, m.id), GREATEST($1, m.id))))
			ORDER BY m.id DESC LIMIT 1`, sender)
	}
	pendingOf := func(sender int64) []int64 {
		var ids []int64
		if err := plain.Select(&ids, `SELECT id FROM invitations WHERE sender_id = $1 AND status IN ('PENDING', 'IGNORED')
			AND sent_at > $2 ORDER BY id LIMIT 3`, sender, cut); err != nil || len(ids) != 3 {
			t.Fatalf("pending invitations of %d: %v %v", sender, ids, err)
		}
		return ids
	}
	lightPending, heavyPending := pendingOf(light), pendingOf(heavy)
	var counts struct {
		Light int64 `db:"light"`
		Heavy int64 `db:"heavy"`
		Inbox int64 `db:"inbox"`
	}
	err = plain.Get(&counts, `SELECT
		(SELECT count(*) FROM invitations WHERE sender_id = $1 AND status IN ('PENDING', 'IGNORED') AND sent_at > $4) AS light,
		(SELECT count(*) FROM invitations WHERE sender_id = $2 AND status IN ('PENDING', 'IGNORED') AND sent_at > $4) AS heavy,
		(SELECT count(*) FROM invitations WHERE recipient_id = $3 AND status = 'PENDING' AND sent_at > $4) AS inbox`, light, heavy, inbox, cut)
	must(err)
	t.Logf("seeded in %v; light sender %d (%d pending), heavy sender %d (%d pending), inbox %d (%d received)",
		seeded.Round(time.Millisecond), light, counts.Light, heavy, counts.Heavy, inbox, counts.Inbox)

	days, first := 14, 20
	older := db.PendingFilter{OlderThanDays: &days}
	page := db.Page{First: &first}
	newest := db.Order{Desc: true}
	pending := func(sender int64) func() {
		return func() {
			c, err := store.PendingInvitations(ctx, sender, older, newest, page)
			must(err)
			_, err = c.TotalCount(ctx)
			must(err)
		}
	}
	// As the server reads the "Sent" tab: the count and the recipients in the page's
	// statement.
	pendingPage := func(sender int64) func() {
		return func() {
			p := db.Page{First: &first, Count: true, Recipients: true}
			c, err := store.PendingInvitations(ctx, sender, older, newest, p)
			must(err)
			if len(c.Members) != len(c.Invitations) {
				t.Fatalf("%d members for %d invitations", len(c.Members), len(c.Invitations))
			}
		}
	}
	// Three of the sender's pending invitations and an id of nothing.
	withdraw := func(sender int64, ids []int64) func() {
		return func() {
			_, err := store.WithdrawSelected(ctx, sender, db.WithdrawInput{IDs: append(slices.Clone(ids), 1<<40),
				Found: []bool{true, true, true, true}})
			must(err)
		}
	}
	// Refusals reach the statements that say when a limit frees up.
	withLimits := func(adjust func(*db.Limits)) *db.Store {
		l := db.DefaultLimits()
		adjust(&l)
		return db.New(conn, l, clock.Now)
	}
	send := func(s *db.Store, sender int64, want db.Code) func() {
		return func() {
			_, err := s.SendInvitation(ctx, sender, db.SendInput{RecipientID: stranger(sender), RecipientFound: true})
			if want == "" {
				must(err)
			} else if codeOf(t, err) != want {
				t.Fatalf("send: %v, want %s", err, want)
			}
		}
	}

	const (
		liveIdx     = "invitations_sender_live_idx"
		receivedIdx = "invitations_recipient_pending_idx"
		sentIdx     = "invitations_sender_sent_idx"
		pairKey     = "invitations_pair_sent_key"
		livePairKey = "invitations_live_pair_key"
		pkey        = "invitations_pkey"
	)
	// Each operation, and for its main statements (found by fragments of their text,
	// whitespace-normalized) the indexes their plans must use.
	cases := []struct {
		name string
		run  func()
		want map[string][]string
	}{
		{"pending page, olderThanDays, light sender", pending(light), map[string][]string{
			"ORDER BY i.sent_at DESC":            {liveIdx},
			"SELECT count(*) FROM invitations i": {liveIdx},
		}},
		{"pending page, olderThanDays, heavy sender", pending(heavy), map[string][]string{
			"ORDER BY i.sent_at DESC":            {liveIdx},
			"SELECT count(*) FROM invitations i": {liveIdx},
		}},
		{"pending page with its count and recipients, heavy sender", pendingPage(heavy), map[string][]string{
			"JOIN members r": {liveIdx, "members_pkey"},
		}},
		{"pending page with its count and recipients, light sender", pendingPage(light), map[string][]string{
			"JOIN members r": {liveIdx, "members_pkey"},
		}},
		{"pending page 2, heavy sender", func() {
			c, err := store.PendingInvitations(ctx, heavy, db.PendingFilter{}, newest, page)
			must(err)
			after := c.Cursor(len(c.Invitations) - 1)
			_, err = store.PendingInvitations(ctx, heavy, db.PendingFilter{}, newest, db.Page{First: &first, After: &after})
			must(err)
		}, map[string][]string{
			"ORDER BY i.sent_at DESC": {liveIdx},
			"SELECT EXISTS":           {liveIdx},
		}},
		{"received page", func() {
			c, err := store.ReceivedInvitations(ctx, inbox, newest, page)
			must(err)
			_, err = c.TotalCount(ctx)
			must(err)
		}, map[string][]string{
			"ORDER BY i.sent_at DESC":            {receivedIdx},
			"SELECT count(*) FROM invitations i": {receivedIdx},
		}},
		{"sent history, heavy sender", func() {
			_, err := store.SentInvitations(ctx, heavy, db.SentFilter{}, newest, page)
			must(err)
		}, map[string][]string{
			"ORDER BY i.sent_at DESC": {sentIdx},
		}},
		{"sent history, pending only, heavy sender", func() {
			_, err := store.SentInvitations(ctx, heavy, db.SentFilter{Statuses: []string{db.StatusPending}}, newest, page)
			must(err)
		}, map[string][]string{
			"ORDER BY i.sent_at DESC": {liveIdx},
		}},
		{"send", send(store, light, ""), map[string][]string{
			// One statement reads the quota, the connection and the cooldown; another
			// expires the pair's stale invitations and locks its live one.
			"SELECT max(withdrawn_at) FROM invitations":                        {pairKey},
			"UPDATE invitations SET status = 'EXPIRED'":                        {livePairKey},
			"AND status IN ('PENDING', 'IGNORED') AND sent_at > $3 FOR UPDATE": {livePairKey},
			// The weekly window and the pending count (the month's notes are counted
			// with either invitations_sender_note_idx or invitations_sender_sent_idx,
			// as the sampled statistics make one or the other slightly cheaper).
			"SELECT w.used, w.oldest": {sentIdx, liveIdx},
		}},
		{"send refused: pending cap", send(withLimits(func(l *db.Limits) { l.PendingMax = 1 }), light, db.CodePendingLimit), map[string][]string{
			"SELECT min(sent_at) FROM invitations": {liveIdx},
		}},
		{"send refused: weekly cap, heavy sender", send(withLimits(func(l *db.Limits) { l.WeeklyStandard, l.WeeklyPremium = 1, 1 }), heavy, db.CodeWeeklyLimit), map[string][]string{
			"SELECT w.used, w.oldest":                {sentIdx, liveIdx},
			"ORDER BY sent_at, id OFFSET $4 LIMIT 1": {sentIdx},
		}},
		{"quota, heavy sender", func() {
			_, err := store.Quota(ctx, heavy)
			must(err)
		}, map[string][]string{
			"SELECT w.used, w.oldest": {sentIdx, liveIdx},
		}},
		// A light sender's few rows are as well found by any index on sender_id
		// (invitations_sender_sent_idx, invitations_pair_sent_key...); a heavy
		// sender's by id.
		{"withdraw selected, light sender", withdraw(light, lightPending), map[string][]string{
			"UPDATE invitations SET status = 'WITHDRAWN'": {pkey},
		}},
		{"withdraw selected, heavy sender", withdraw(heavy, heavyPending), map[string][]string{
			"ORDER BY id FOR UPDATE":                      {pkey},
			"UPDATE invitations SET status = 'WITHDRAWN'": {pkey},
		}},
		{"withdraw older than 30 days, dry run, heavy sender", func() {
			limit := 5
			_, err := store.WithdrawOlderThan(ctx, heavy, 30, true, &limit)
			must(err)
		}, map[string][]string{
			"SELECT id FROM invitations": {liveIdx},
		}},
		{"member stats, heavy sender", func() {
			_, err := store.InvitationStats(ctx, &heavy, nil, nil)
			must(err)
		}, map[string][]string{
			"GROUPING(week, source, note)": {"invitations_sender_plain_idx", "invitations_sender_note_idx"},
		}},
		{"member stats, 30 days, heavy sender", func() {
			after := t0.Add(-30 * db.Day)
			_, err := store.InvitationStats(ctx, &heavy, &after, nil)
			must(err)
		}, map[string][]string{
			"GROUPING(week, source, note)": {"invitations_sender_plain_idx", "invitations_sender_note_idx"},
		}},
		// The rest of a month-old range is read from the rollups.
		{"network stats, 30 days", func() {
			after := t0.Add(-30*db.Day - 3*time.Hour)
			_, err := store.InvitationStats(ctx, nil, &after, nil)
			must(err)
		}, map[string][]string{
			"UNION ALL SELECT true": {"invitations_sent_plain_idx", "invitations_sent_note_idx"},
			"OFFSET $4 LIMIT 1":     {"invitations_accepted_tta_idx"},
		}},
		{"connection statuses", func() {
			_, err := store.ConnectionStatuses(ctx, heavy, []int64{light, inbox, heavy + 1, heavy + 2})
			must(err)
		}, nil},
		{"invitations by id", func() {
			_, err := store.InvitationsByID(ctx, light, lightPending)
			must(err)
		}, map[string][]string{
			"WHERE id = ANY($1)": {pkey},
		}},
	}

	ec, err := plain.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	ex := &explainer{t: t, conn: ec}

	for _, c := range cases {
		stmts := rec.record(c.run)
		matched := map[string]bool{}
		for _, s := range stmts {
			q := oneLine(s.query)
			if !strings.Contains(q, "invitations") || !isPlannable(q) {
				continue
			}
			custom, generic := ex.explain(s)
			cs, gs := custom.scans(), generic.scans()
			t.Logf("%s: %s\n    custom:  %s\n    generic: %s", c.name, q, strings.Join(cs, ", "), strings.Join(gs, ", "))
			for kind, scans := range map[string][]string{"custom": cs, "generic": gs} {
				if slices.Contains(scans, "Seq Scan on invitations") {
					t.Errorf("%s: %s plan scans invitations sequentially: %s\n    %s", c.name, kind, strings.Join(scans, ", "), q)
				}
			}
			// The indexes are asserted of the custom plan, and of the generic plan where
			// the repository forces it (the quota statements: forceGenericPlans). Where
			// PostgreSQL chooses, it takes the generic plan only if it is estimated no
			// dearer; one that picks other indexes is only reported.
			forced := strings.HasPrefix(q, "SELECT w.used, w.oldest")
			for frag, indexes := range c.want {
				if !strings.Contains(q, frag) {
					continue
				}
				matched[frag] = true
				for _, idx := range indexes { // "a|b": either
					if !uses(cs, idx) {
						t.Errorf("%s: the plan does not use %s: %s\n    %s", c.name, idx, strings.Join(cs, ", "), q)
					} else if !uses(gs, idx) && forced {
						t.Errorf("%s: the forced generic plan does not use %s: %s\n    %s", c.name, idx, strings.Join(gs, ", "), q)
					} else if !uses(gs, idx) {
						t.Logf("%s: the generic plan uses %s instead of %s", c.name, strings.Join(gs, ", "), idx)
					}
				}
			}
		}
		for frag := range c.want {
			if !matched[frag] {
				t.Errorf("%s: no statement containing %q was sent (the repository's statements changed?)", c.name, frag)
			}
		}
	}
	t.Logf("whole test: %v", time.Since(begin).Round(time.Millisecond))
}

// uses reports whether a plan's scans use the index (or one of "a|b").
func uses(scans []string, index string) bool {
	return slices.ContainsFunc(scans, func(s string) bool {
		_, name, _ := strings.Cut(s, " using ")
		return slices.Contains(strings.Split(index, "|"), name)
	})
}

// isPlannable reports whether EXPLAIN takes the statement (one SELECT, INSERT,
// UPDATE, DELETE or WITH).
func isPlannable(q string) bool {
	head := strings.ToUpper(strings.Fields(q)[0])
	return slices.Contains([]string{"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}, head) &&
		!strings.Contains(strings.TrimSuffix(strings.TrimSpace(q), ";"), ";")
}
