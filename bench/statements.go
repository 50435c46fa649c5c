package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"

	"invitations/db"
)

// statement is one row of pg_stat_statements.
type statement struct {
	QueryID int64  `db:"queryid"`
	Calls   int64  `db:"calls"`
	Query   string `db:"query"`
}

// statements are the run database's statements since the last reset, without the
// pgbench prelude's.
func (e *runEnv) statements(ctx context.Context) ([]statement, error) {
	var out []statement
	err := e.c.admin.SelectContext(ctx, &out, `
SELECT queryid, calls, query FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1) AND query NOT LIKE '%bench_pg%'
 ORDER BY queryid`, runDB)
	return out, err
}

// statementStat is what pg_stat_statements recorded of one statement.
type statementStat struct {
	Calls int64   `db:"calls"`
	Exec  float64 `db:"mean_exec_time"` // ms
	Plan  float64 `db:"mean_plan_time"` // ms
	Plans int64   `db:"plans"`
	Hits  int64   `db:"shared_blks_hit"`
	Reads int64   `db:"shared_blks_read"`
	Query string  `db:"query"` // its first 70 characters, on one line
}

// statementStats are the run database's statements since the last reset, most called
// first.
func (e *runEnv) statementStats(ctx context.Context) ([]statementStat, error) {
	var out []statementStat
	err := e.c.admin.SelectContext(ctx, &out, `
SELECT calls, mean_exec_time, mean_plan_time, plans, shared_blks_hit, shared_blks_read, left(regexp_replace(query, '\s+', ' ', 'g'), 70) AS query
  FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1) AND calls > 0
 ORDER BY calls DESC, queryid`, runDB)
	return out, err
}

// printStatementTimes prints, with -v, the ten most called of stats: calls, mean
// execution and planning time, plannings and buffers. The same statements, server and
// raw SQL, with the same buffers and no plannings on either side but a longer execution
// in the server's run, say that PostgreSQL did the same work more slowly (the server's
// process on the other core), not more work.
func printStatementTimes(who string, stats []statementStat) {
	if !verbose {
		return
	}
	fmt.Fprintf(os.Stderr, "  statements in %s (pg_stat_statements): calls, mean execution µs, plannings (mean µs), buffers per call (hit/read)\n", who)
	for _, r := range stats[:min(len(stats), 10)] {
		fmt.Fprintf(os.Stderr, "    %8d  %8.1f µs  %6d plans (%.1f µs)  %6.1f/%.1f  %s\n", r.Calls, r.Exec*1000, r.Plans, r.Plan*1000,
			float64(r.Hits)/float64(r.Calls), float64(r.Reads)/float64(r.Calls), r.Query)
	}
}

// replanned lists the statements of stats that PostgreSQL planned on at least half of
// their calls (of 50 or more). The server prepares every statement once per connection,
// so a statement here is one whose generic plan PostgreSQL keeps rejecting, paying for
// a plan on every call: session 7 found the send's quota statement so, planned for
// longer than it ran.
func replanned(stats []statementStat) []string {
	var out []string
	for _, r := range stats {
		if r.Calls >= 50 && 2*r.Plans >= r.Calls {
			out = append(out, fmt.Sprintf("%d plannings in %d calls of %s", r.Plans, r.Calls, r.Query))
		}
	}
	return out
}

func (e *runEnv) resetStatements(ctx context.Context) error {
	_, err := e.c.admin.ExecContext(ctx, `SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = $1), 0)`, runDB)
	return err
}

// checkStatements sends one request and runs one pgbench transaction, and records a
// failure unless both issued the same statements the same number of times.
func (e *runEnv) checkStatements(ctx context.Context, who string, srv *server, token, body, script string, vars map[string]string, res *caseResult) error {
	if err := e.resetStatements(ctx); err != nil {
		return err
	}
	answer, err := srv.post(token, body)
	if err != nil {
		return err
	}
	if strings.Contains(string(answer), `"errors":`) || strings.Contains(string(answer), `"userErrors":[{`) {
		res.failures = append(res.failures, who+": the first request was refused: "+string(answer))
	}
	got, err := e.statements(ctx)
	if err != nil {
		return err
	}
	if e.o.statements {
		fmt.Fprintf(os.Stderr, "  statements of one request:\n%s", formatStatements(got))
	}
	if script == "" {
		return nil
	}
	if err := e.resetStatements(ctx); err != nil {
		return err
	}
	if _, err := runPgbench(ctx, cpuMeter{postmaster: mustPID(e.c)}, e.c, runDB, script, vars, 1, 0, 1, 0); err != nil { // one transaction
		return err
	}
	want, err := e.statements(ctx)
	if err != nil {
		return err
	}
	// Compared by normalized text, not query id: a constant in the repository's SQL
	// may be a parameter in pgbench's (which cannot pass NULL), and both cost the same.
	calls := func(ss []statement) map[string]int64 {
		m := map[string]int64{}
		for _, s := range ss {
			m[normalize(s.Query)] += s.Calls
		}
		return m
	}
	if g, w := calls(got), calls(want); !maps.Equal(g, w) {
		res.failures = append(res.failures, fmt.Sprintf("pgbench's script (sql/%s) does not run what %s runs.\nserver:\n%spgbench:\n%s",
			res.c.script, who, formatStatements(got), formatStatements(want)))
	}
	return nil
}

// placeholder matches a parameter, a string constant or a number.
var placeholder = regexp.MustCompile(`\$\d+|'[^']*'|\b\d+\b`)

// normalize spells a statement with every constant and parameter as ? and single
// spaces. pg_stat_statements shows the constants of a statement as parameters, unless
// the statement was prepared before its entry was made (a server warmed before the
// check): then as written.
func normalize(q string) string {
	return strings.Join(strings.Fields(placeholder.ReplaceAllString(q, "?")), " ")
}

func formatStatements(ss []statement) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "    %d× %s\n", s.Calls, normalize(s.Query))
	}
	return b.String()
}

func mustPID(c *cluster) int {
	pid, _ := c.postmasterPID()
	return pid
}

// pgbenchVars are the scripts' parameters that do not vary between transactions,
// derived from now as the repository derives them (with the default limits the bench
// runs the server with).
func pgbenchVars(now time.Time) map[string]string {
	now = now.UTC().Truncate(time.Microsecond)
	ts := func(t time.Time) string { return t.Format("2006-01-02 15:04:05.999999+00") }
	limits := db.DefaultLimits()
	y, m, _ := now.Date()
	payload, _ := json.Marshal(db.Event{Kind: db.KindInvitationReceived, MemberID: 123456, InvitationID: 2345678})
	payloads, _ := pq.StringArray{string(payload)}.Value()
	return map[string]string{
		"now":      ts(now),
		"older":    ts(now.Add(-14 * db.Day)),
		"expiry":   ts(now.Add(-limits.TTL)),
		"week":     ts(now.Add(-db.Window)),
		"month":    ts(time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)),
		"refund":   fmt.Sprint(!limits.RefundOnWithdraw),
		"due1":     ts(now.AddDate(0, 0, db.ReminderDelays[0])),
		"due2":     ts(now.AddDate(0, 0, db.ReminderDelays[1])),
		"channel":  db.EventsChannel,
		"kind":     db.KindInvitationReceived,
		"payloads": payloads.(string),
		"source":   "SEARCH",
		"after":    "-infinity",
		"before":   "infinity",
	}
}

// medianOf formats the median of xs, followed by all of them in order when there are
// several.
func medianOf(xs []float64) string {
	if len(xs) == 0 {
		return "—"
	}
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	out := fmt.Sprintf("%.2f", sorted[(len(sorted)-1)/2])
	if len(xs) > 1 {
		var all []string
		for _, x := range xs {
			all = append(all, fmt.Sprintf("%.2f", x))
		}
		out += " (median of " + strings.Join(all, ", ") + ")"
	}
	return out
}
