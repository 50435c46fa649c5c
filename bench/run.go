package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"invitations/db"
	"invitations/graph"
)

// targets are the ceilings for (server + PostgreSQL CPU per request) ÷ (raw
// SQL CPU per transaction).
var targets = map[string]float64{"a": 3.4, "b": 2.5, "c": 2.0, "e": 1.6, "f": 3.0}

// caseResult is everything measured for one case.
type caseResult struct {
	c          benchCase
	peak, half *wrkResult
	raw        *pgbenchResult
	prelude    *pgbenchResult
	// rawHalf is the raw SQL at the server's half-peak rate: its latency bounds the
	// server's there.
	rawHalf  *pgbenchResult
	rss      int64
	disk     *diskResult // -disk, write cases
	failures []string    // correctness failures: the run fails
	// replanned are the statements PostgreSQL planned on most of their calls during the
	// server's peak (a prepared statement whose generic plan it keeps rejecting).
	replanned []string
	// trials are the (peak, raw SQL) pairs of a read case measured -repeat times; peak
	// and raw are those of the median ratio.
	trials []trial
}

// trial is one measurement of a read case's peak and of its raw SQL, and of the
// reference server's peak when it runs the case.
type trial struct {
	peak *wrkResult
	raw  *pgbenchResult
	bare *wrkResult
	// bareRaw is the raw SQL of the reference server's statements (the case's
	// bareScript), measured right after its peak.
	bareRaw *pgbenchResult
}

// bareRatio is the reference server's ratio in t.
func (r *caseResult) bareRatio(t trial) float64 { return r.ratioOf(t.bare, t.bareRaw) }

// onBareSQL is our peak's CPU per request over the raw SQL of the reference server's
// statements in t: the ratio against a fixed workload, which the statements we run do
// not change (printed beside the ratio, not judged).
func (r *caseResult) onBareSQL(t trial) float64 { return r.ratioOf(t.peak, t.bareRaw) }

// rawCPU is the pgbench CPU per transaction without the statement that picks the
// transaction's parameters from bench_pg.
func (r *caseResult) rawCPU() float64 { return r.rawCPUOf(r.raw) }

func (r *caseResult) rawCPUOf(raw *pgbenchResult) float64 {
	if raw == nil {
		return 0
	}
	return raw.cpuPerTx() - r.prelude.cpuPerTx()
}

func (r *caseResult) ratio() float64 { return r.ratioOf(r.peak, r.raw) }

// ratioOf is a peak run's CPU per request over the raw SQL's per transaction.
func (r *caseResult) ratioOf(peak *wrkResult, raw *pgbenchResult) float64 {
	rawCPU := r.rawCPUOf(raw)
	if rawCPU <= 0 || peak == nil {
		return 0
	}
	s, p := peak.cpuPerRequest()
	return (s + p) / rawCPU
}

// bareTrial is the trial of median ratio of the reference server; nil when it did not
// run the case.
func (r *caseResult) bareTrial() *trial {
	var ts []trial
	for _, t := range r.trials {
		if t.bare != nil {
			ts = append(ts, t)
		}
	}
	if len(ts) == 0 {
		return nil
	}
	slices.SortFunc(ts, func(a, b trial) int { return cmp.Compare(r.bareRatio(a), r.bareRatio(b)) })
	return &ts[(len(ts)-1)/2]
}

func run(ctx context.Context, o options) error {
	for _, tool := range []string{"wrk", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (wrk: apt-get install wrk)", tool)
		}
	}
	for _, name := range o.cases {
		if _, ok := caseByName(name); !ok {
			return fmt.Errorf("no case %q (cases: a to f)", name)
		}
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	// The private cluster runs as the postgres user when the bench runs as root; it
	// must be able to read the request files wrk is given (wrk runs as us, though).
	bin, err := buildServer(ctx, o.dir, "invitations", ".")
	if err != nil {
		return err
	}
	bareBin := ""
	if o.bare && o.against == "" {
		if bareBin, err = buildServer(ctx, o.dir, "bare", "./bench/bare"); err != nil {
			return err
		}
	}
	c, err := startCluster(ctx, o.dir)
	if err != nil {
		return err
	}
	defer c.close()
	if _, err := c.admin.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		return err
	}
	tmpl, err := c.template(ctx, o.members, o.invitations, os.Stderr)
	if err != nil {
		return err
	}
	lua, err := writeAsset(o.dir, "wrk.lua")
	if err != nil {
		return err
	}
	env := &runEnv{o: o, c: c, bin: bin, bareBin: bareBin, lua: lua, template: tmpl}
	if o.against != "" {
		return env.runComparisons(ctx)
	}
	var results []*caseResult
	failed := false
	for _, name := range o.cases {
		bc, _ := caseByName(name)
		fmt.Fprintf(os.Stderr, "case %s: %s\n", bc.name, bc.title)
		r, err := env.runCase(ctx, bc)
		if err != nil {
			return fmt.Errorf("case %s: %w", name, err)
		}
		for _, f := range r.failures {
			fmt.Fprintf(os.Stderr, "case %s FAILED: %s\n", name, f)
			failed = true
		}
		results = append(results, r)
	}
	printResults(os.Stdout, o, results)
	if o.markdown {
		printMarkdown(os.Stdout, o, results)
	}
	if failed {
		return fmt.Errorf("some cases failed their correctness checks (above)")
	}
	return nil
}

// runComparisons compares this checkout's server with -against's on each case.
func (e *runEnv) runComparisons(ctx context.Context) error {
	againstBin, err := buildAgainst(ctx, e.o.dir, e.o.against)
	if err != nil {
		return err
	}
	var results []*comparison
	for _, name := range e.o.cases {
		bc, _ := caseByName(name)
		fmt.Fprintf(os.Stderr, "case %s: %s, against %s\n", bc.name, bc.title, e.o.against)
		r, err := e.compare(ctx, bc, againstBin, max(e.o.rounds, 1))
		if err != nil {
			return fmt.Errorf("case %s: %w", name, err)
		}
		results = append(results, r)
	}
	printComparisons(os.Stdout, e.o.against, results)
	return nil
}

type runEnv struct {
	o                 options
	c                 *cluster
	bin, bareBin, lua string
	template          string
}

// request is one row of bench_req.
type request struct {
	N      int64  `db:"n"`
	Handle string `db:"handle"`
	Vars   string `db:"vars"`
}

const runDB = "bench_run"

// readRequests is how many requests a read case cycles through.
const readRequests = 5000

// requests makes the requests of a case for one server: tokens signed with its secret
// (one per member) and JSON bodies of the case's query.
type requests struct {
	secret []byte
	query  string
	tokens map[string]string
}

func newRequests(secret []byte, query string) *requests {
	return &requests{secret: secret, query: query, tokens: map[string]string{}}
}

func (q *requests) token(handle string) string {
	t, ok := q.tokens[handle]
	if !ok {
		var err error
		if t, err = graph.SignToken(q.secret, handle, false, 6*time.Hour, time.Now()); err != nil {
			panic(err) // HS256 with a key cannot fail
		}
		q.tokens[handle] = t
	}
	return t
}

func (q *requests) body(r request) string {
	b, _ := json.Marshal(map[string]any{"query": q.query, "variables": json.RawMessage(r.Vars)})
	return string(b)
}

// line is r's line for wrk.lua: its token, a tab, its body.
func (q *requests) line(r request) string { return q.token(r.Handle) + "\t" + q.body(r) }

// writeLines writes lines to path, one a line.
func writeLines(path string, lines []string) error {
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// prepare makes the case's database, runDB, a fresh clone of the template with the
// case's requests in bench_req (count rows), and returns a connection to it.
func (e *runEnv) prepare(ctx context.Context, bc benchCase, count int64) (*sqlx.DB, error) {
	conn, err := e.c.clone(ctx, e.template, runDB)
	if err != nil {
		return nil, err
	}
	var first, members int64
	if err := conn.QueryRowxContext(ctx, `SELECT min(id), count(*) FROM members`).Scan(&first, &members); err != nil {
		conn.Close()
		return nil, err
	}
	q := strings.NewReplacer("$1", fmt.Sprint(count), "$2", fmt.Sprint(first), "$3", fmt.Sprint(members)).Replace(bc.requests)
	if _, err := conn.ExecContext(ctx, `CREATE TABLE bench_req AS SELECT row_number() OVER () AS n, q.* FROM (`+q+`) q`); err != nil {
		conn.Close()
		return nil, fmt.Errorf("making requests: %w", err)
	}
	return conn, nil
}

func (e *runEnv) runCase(ctx context.Context, bc benchCase) (*caseResult, error) {
	o := e.o
	// Rows: reads cycle through a few thousand viewers; writes use each row once: row 1
	// checks the statements, and the others are dealt to the phases in turn, by slots,
	// with room for 4,000 requests a second. The peak sends the most requests, so it gets
	// three rows in eight, the half-peak run and pgbench two each, the warm-up one: where
	// the seeded data yields few requests (withdrawals of 20), the peak and half-peak
	// runs are the last to run out.
	slots := []string{"peak", "half", "pg", "peak", "warm", "peak", "half", "pg"}
	phases := []string{"warm", "peak", "half", "pg"}
	if bc.hot {
		slots = []string{"peak", "half"}
		phases = slots
	}
	count := int64(readRequests)
	if bc.writes {
		count = 1 + int64(len(phases))*(1000+int64(o.duration.Seconds()*4000))
	}
	conn, err := e.prepare(ctx, bc, count)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	pgRows := "true"
	if bc.writes {
		var in []string
		for i, sl := range slots {
			if sl == "pg" {
				in = append(in, strconv.Itoa(i))
			}
		}
		pgRows = fmt.Sprintf("n > 1 AND (n - 2) %% %d IN (%s)", len(slots), strings.Join(in, ", "))
	}
	// pgbench reads its parameters from bench_pg, one row a transaction, in turn.
	var pgCount int64
	if bc.script != "" {
		if err := conn.GetContext(ctx, &pgCount, `SELECT count(*) FROM bench_req WHERE `+pgRows); err != nil {
			return nil, err
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(`
CREATE TABLE bench_pg AS SELECT row_number() OVER (ORDER BY n) AS i, * FROM bench_req WHERE %s;
ALTER TABLE bench_pg ADD PRIMARY KEY (i);
CREATE SEQUENCE bench_pg_seq MAXVALUE %d CYCLE;
ANALYZE bench_pg`, pgRows, max(pgCount, 2))); err != nil {
			return nil, err
		}
	}
	var reqs []request
	if err := conn.SelectContext(ctx, &reqs, `SELECT n, handle, vars FROM bench_req ORDER BY n`); err != nil {
		return nil, err
	}
	if len(reqs) < 2 {
		return nil, fmt.Errorf("the seeded data yields %d requests for this case; seed more", len(reqs))
	}

	profile := ""
	if o.profile {
		profile, _ = filepath.Abs(filepath.Join(o.dir, "cpu-"+bc.name+".pprof"))
	}
	srv, err := startServer(ctx, e.bin, e.c.pg.DSN(runDB), filepath.Join(o.dir, "server-"+bc.name+".log"), profile, o.gomaxprocs)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	made := newRequests(srv.secret, bc.query)
	token, body := made.token, made.body
	reqFiles := map[string]string{}
	for _, ph := range phases {
		var lines []string
		for _, r := range reqs {
			if !bc.writes || (r.N > 1 && slots[(r.N-2)%int64(len(slots))] == ph) {
				lines = append(lines, made.line(r))
			}
		}
		reqFiles[ph] = filepath.Join(o.dir, fmt.Sprintf("requests-%s-%s.txt", bc.name, ph))
		if err := writeLines(reqFiles[ph], lines); err != nil {
			return nil, err
		}
	}

	res := &caseResult{c: bc}
	pm, err := e.c.postmasterPID()
	if err != nil {
		return nil, err
	}
	meter := cpuMeter{serverPID: srv.pid(), postmaster: pm}
	pgVars := pgbenchVars(time.Now())
	var script, prelude string
	if bc.script != "" {
		b, err := files.ReadFile("sql/" + bc.script)
		if err != nil {
			return nil, err
		}
		prelude = "SELECT * FROM bench_pg WHERE i = (SELECT nextval('bench_pg_seq')) \\gset\n"
		script = prelude + string(b)
	}
	bareScript := ""
	if bc.bareScript != "" {
		b, err := files.ReadFile("sql/" + bc.bareScript)
		if err != nil {
			return nil, err
		}
		bareScript = prelude + string(b)
	}

	// The bound is honest only if pgbench runs what the server runs: compare the
	// statements of one request with those of one pgbench transaction.
	first0 := reqs[0]
	if err := e.checkStatements(ctx, "the server", srv, token(first0.Handle), body(first0), script, pgVars, res); err != nil {
		return nil, err
	}
	// The reference server runs beside the real one, idle while the other is measured.
	var bare *server
	if bc.bareScript != "" && e.bareBin != "" {
		if bare, err = startServer(ctx, e.bareBin, e.c.pg.DSN(runDB), filepath.Join(o.dir, "server-bare-"+bc.name+".log"), "", o.gomaxprocs); err != nil {
			return nil, err
		}
		defer bare.stop()
		// Warmed first: on its very first request the server is slow enough for the
		// recipients' batch to close before all of a page's keys arrive (dataloadgen
		// waits 1 ms, as gqlgen's documentation has it), which would fail the check.
		for range 10 {
			if _, err := bare.post(token(first0.Handle), body(first0)); err != nil {
				return nil, err
			}
		}
		if err := e.checkStatements(ctx, "the reference server", bare, token(first0.Handle), body(first0), bareScript, pgVars, res); err != nil {
			return nil, err
		}
	}
	// barePeak measures the reference server's peak, then the raw SQL of its statements,
	// into t.
	barePeak := func(t *trial, warm bool) (err error) {
		if bare == nil {
			return nil
		}
		m := cpuMeter{serverPID: bare.pid(), postmaster: pm}
		if warm {
			if _, err := runWrk(ctx, m, bare.url, e.lua, reqFiles["peak"], o.connections, o.warmup.Round(time.Second)+time.Second, 0, 0, false); err != nil {
				return err
			}
		}
		if t.bare, err = runWrk(ctx, m, bare.url, e.lua, reqFiles["peak"], o.connections, o.duration, 0, 0, false); err != nil {
			return err
		}
		t.bareRaw, err = runPgbench(ctx, meter, e.c, runDB, bareScript, pgVars, o.connections, o.duration, 0, 0)
		return err
	}
	remaining := 0
	if bc.hot {
		if remaining, err = srv.remainingQuota(token(first0.Handle)); err != nil {
			return nil, err
		}
	}

	if !bc.hot {
		warmFile := reqFiles["peak"]
		if bc.writes {
			warmFile = reqFiles["warm"]
		}
		if _, err := runWrk(ctx, meter, srv.url, e.lua, warmFile, o.connections, o.warmup.Round(time.Second)+time.Second, 0, 0, bc.writes); err != nil {
			return nil, err
		}
	}
	halfFile := reqFiles["half"]
	if !bc.writes {
		halfFile = reqFiles["peak"]
	}
	if err := e.checkpoint(ctx, bc); err != nil {
		return nil, err
	}
	if err := e.resetStatements(ctx); err != nil {
		return nil, err
	}
	if res.peak, err = runWrk(ctx, meter, srv.url, e.lua, reqFiles["peak"], o.connections, o.duration, 0, 0, bc.writes); err != nil {
		return nil, err
	}
	stats, err := e.statementStats(ctx)
	if err != nil {
		return nil, err
	}
	printStatementTimes("the server's peak", stats)
	res.replanned = replanned(stats)
	var probe *diskProbe
	if o.disk && bc.writes {
		probe = startDiskProbe(o.dir)
	}
	res.half, err = e.halfPeak(ctx, meter, srv, halfFile, res.peak.rate(), bc.writes)
	if probe != nil {
		d, perr := probe.finish()
		if err == nil {
			res.disk, err = d, perr
		}
	}
	if err != nil {
		return nil, err
	}
	if res.rss, err = peakRSS(srv.pid()); err != nil {
		return nil, err
	}
	if script != "" {
		// The raw SQL runs twice: flat out, for its CPU per transaction, then at the
		// server's half-peak rate, for its latency: the bound of the server's there (a
		// server adds to it). It has as many clients as the server has pooled connections,
		// so that as many transactions at most run at once. A write case uses each row
		// once: at most the phase's length at the rate, and half the rows for each run.
		perClient, halfPerClient := 0, 0
		if bc.writes {
			halfRows := min(pgCount/2, max(int64(res.half.rate()*o.duration.Seconds()), 100))
			perClient = int(min(pgCount-halfRows, max(int64(res.peak.rate()*o.duration.Seconds()), 100))) / o.connections
			halfPerClient = int(halfRows) / serverPool()
		}
		if err := e.checkpoint(ctx, bc); err != nil {
			return nil, err
		}
		if err := e.resetStatements(ctx); err != nil {
			return nil, err
		}
		if res.raw, err = runPgbench(ctx, meter, e.c, runDB, script, pgVars, o.connections, o.duration, perClient, 0); err != nil {
			return nil, err
		}
		if verbose {
			stats, err := e.statementStats(ctx)
			if err != nil {
				return nil, err
			}
			printStatementTimes("the raw SQL", stats)
		}
		if res.half.rate() > 0 && (!bc.writes || halfPerClient > 0) {
			if res.rawHalf, err = runPgbench(ctx, meter, e.c, runDB, script, pgVars, serverPool(), o.duration, halfPerClient, res.half.rate()); err != nil {
				return nil, err
			}
		}
		if res.prelude, err = runPgbench(ctx, meter, e.c, runDB, prelude, pgVars, o.connections, min(o.duration, 5*time.Second), 0, 0); err != nil {
			return nil, err
		}
		// Reads can be measured again (their requests cycle): the server's and the raw
		// SQL's runs alternate, so that a slow spell of the machine weighs on both.
		t := trial{peak: res.peak, raw: res.raw}
		if err := barePeak(&t, true); err != nil {
			return nil, err
		}
		res.trials = []trial{t}
		for i := 1; i < o.repeat && !bc.writes; i++ {
			var t trial
			if t.peak, err = runWrk(ctx, meter, srv.url, e.lua, reqFiles["peak"], o.connections, o.duration, 0, 0, false); err != nil {
				return nil, err
			}
			if t.raw, err = runPgbench(ctx, meter, e.c, runDB, script, pgVars, o.connections, o.duration, 0, 0); err != nil {
				return nil, err
			}
			if err := barePeak(&t, false); err != nil {
				return nil, err
			}
			res.trials = append(res.trials, t)
		}
		res.pickMedian()
	}
	res.checkAnswers(bc, remaining)
	printCase(os.Stderr, res)
	return res, nil
}

// checkpoint starts a write case's server and raw SQL runs on equal terms. After a
// checkpoint, the first change to each page writes the whole page to the WAL; without
// one before each, the server's peak run would pay for the pages first touched since the
// clone's checkpoint, and the raw SQL, run later on the same pages, would not.
func (e *runEnv) checkpoint(ctx context.Context, bc benchCase) error {
	if !bc.writes {
		return nil
	}
	_, err := e.c.admin.ExecContext(ctx, `CHECKPOINT`)
	return err
}

// halfPeak measures latency at half the peak rate: twice the connections, each
// waiting between requests. Two short calibration runs measure the latency at that load
// to size the wait (a closed loop runs at connections ÷ (latency + wait)).
func (e *runEnv) halfPeak(ctx context.Context, m cpuMeter, srv *server, file string, peak float64, once bool) (*wrkResult, error) {
	conns := 2 * e.o.connections
	target := peak / 2
	if target <= 0 {
		return nil, fmt.Errorf("no requests completed at the peak")
	}
	cycle := time.Duration(float64(conns) / target * float64(time.Second))
	delay, used := cycle, 0
	for range 2 {
		calib, err := runWrk(ctx, m, srv.url, e.lua, file, conns, time.Second, delay.Round(time.Millisecond), used, once)
		if err != nil {
			return nil, err
		}
		used += calib.Requests + conns
		if r := calib.rate(); r > 0 {
			latency := time.Duration(float64(conns)/r*float64(time.Second)) - delay
			delay = max(cycle-latency, time.Millisecond)
		}
	}
	return runWrk(ctx, m, srv.url, e.lua, file, conns, e.o.duration, delay.Round(time.Millisecond), used, once)
}

// checkAnswers records what the server answered that it should not have.
// pickMedian makes the trial of median ratio the case's peak and raw SQL run.
func (r *caseResult) pickMedian() {
	sorted := slices.Clone(r.trials)
	slices.SortFunc(sorted, func(a, b trial) int { return cmp.Compare(r.ratioOf(a.peak, a.raw), r.ratioOf(b.peak, b.raw)) })
	m := sorted[(len(sorted)-1)/2]
	r.peak, r.raw = m.peak, m.raw
}

// ofTrials formats f of each trial, in the order they ran, as " (median of a, b, c)";
// "" for a single trial.
func (r *caseResult) ofTrials(f func(trial) float64) string {
	if len(r.trials) < 2 {
		return ""
	}
	var out []string
	for _, t := range r.trials {
		out = append(out, fmt.Sprintf("%.2f", f(t)))
	}
	return " (median of " + strings.Join(out, ", ") + ")"
}

func (r *caseResult) checkAnswers(bc benchCase, remaining int) {
	type phase struct {
		name string
		w    *wrkResult
	}
	phases := []phase{{"peak", r.peak}, {"half", r.half}}
	for i, t := range r.trials {
		if t.peak != r.peak {
			phases = append(phases, phase{fmt.Sprintf("peak (trial %d)", i+1), t.peak})
		}
		if t.bare != nil {
			phases = append(phases, phase{fmt.Sprintf("reference server's peak (trial %d)", i+1), t.bare})
		}
	}
	for _, ph := range phases {
		w := ph.w
		if w.HTTP+w.GQL+w.Socket > 0 {
			r.failures = append(r.failures, fmt.Sprintf("%s: %d HTTP errors, %d GraphQL errors, %d socket errors; first: %s",
				ph.name, w.HTTP, w.GQL, w.Socket, strings.Join(w.Samples, " | ")))
		}
		if bc.writes && w.Wrapped > 0 {
			r.failures = append(r.failures, fmt.Sprintf("%s: the requests ran out and were reused; raise the row count", ph.name))
		}
		for code, n := range w.Codes {
			if !bc.hot || code != "WEEKLY_LIMIT_REACHED" {
				r.failures = append(r.failures, fmt.Sprintf("%s: %d userErrors %s", ph.name, n, code))
			}
		}
		if bc.name == "e" && w.Withdrawn != 20*w.OK {
			r.failures = append(r.failures, fmt.Sprintf("%s: %d withdrawn by %d calls of 20", ph.name, w.Withdrawn, w.OK))
		}
	}
	if bc.hot && r.peak.OK+r.half.OK != remaining {
		r.failures = append(r.failures, fmt.Sprintf("the hot sender had %d invitations left this week and %d sends succeeded", remaining, r.peak.OK+r.half.OK))
	}
}

// writeAsset copies an embedded file into dir (wrk reads its script from a path).
func writeAsset(dir, name string) (string, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return "", err
	}
	path, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, b, 0o644)
}

func ms(us int64) string { return fmt.Sprintf("%.2f", float64(us)/1000) }

func printCase(w io.Writer, r *caseResult) {
	s, p := r.peak.cpuPerRequest()
	fmt.Fprintf(w, "  peak %.0f req/s p50 %s ms p99 %s ms, CPU/request server %.0f µs + PostgreSQL %.0f µs; half %.0f req/s p50 %s ms p99 %s ms",
		r.peak.rate(), ms(r.peak.P50US), ms(r.peak.P99US), s, p, r.half.rate(), ms(r.half.P50US), ms(r.half.P99US))
	if r.raw != nil {
		fmt.Fprintf(w, "; raw SQL %.0f µs/tx (%.0f µs/tx at %.0f tx/s, less the parameter lookup's %.0f µs/tx at %.0f tx/s), ratio %.2f",
			r.rawCPU(), r.raw.cpuPerTx(), r.raw.TPS, r.prelude.cpuPerTx(), r.prelude.TPS, r.ratio())
	}
	fmt.Fprint(w, r.ofTrials(func(t trial) float64 { return r.ratioOf(t.peak, t.raw) }))
	if h := r.rawHalf; h != nil {
		fmt.Fprintf(w, "; raw SQL at the half-peak rate %.0f tx/s p50 %s ms p99 %s ms", h.TPS, ms(h.P50US), ms(h.P99US))
	}
	if bt := r.bareTrial(); bt != nil {
		s, p := bt.bare.cpuPerRequest()
		fmt.Fprintf(w, "; reference server (bench/bare) %.0f req/s, CPU/request %.0f µs + PostgreSQL %.0f µs, its raw SQL (sql/%s) %.0f µs/tx, ratio %.2f",
			bt.bare.rate(), s, p, r.c.bareScript, r.rawCPUOf(bt.bareRaw), r.bareRatio(*bt))
		fmt.Fprint(w, r.ofTrials(r.bareRatio))
		var on []float64
		for _, t := range r.trials {
			if t.bareRaw != nil {
				on = append(on, r.onBareSQL(t))
			}
		}
		fmt.Fprintf(w, "; ours against the reference server's raw SQL %s", medianOf(on))
	}
	if r.peak.Ended > 0 {
		fmt.Fprintf(w, "; the peak run used all its %d requests in %.1f s", r.peak.Requests, float64(r.peak.DurationUS)/1e6)
	}
	if r.half.Ended > 0 {
		fmt.Fprintf(w, "; the half-peak run used all its %d requests in %.1f s", r.half.Requests, float64(r.half.DurationUS)/1e6)
	}
	// The half-peak run's waits are sized by two short calibration runs; on a machine
	// whose speed changes from second to second they can miss, and a p99 measured at a
	// lower rate says less.
	if half := r.peak.rate() / 2; r.half.rate() < 0.8*half {
		fmt.Fprintf(w, "; the half-peak run reached only %.0f%% of half the peak", 100*r.half.rate()/half)
	}
	if r.disk != nil {
		fmt.Fprintf(w, "; %s", r.disk)
	}
	for _, p := range r.replanned {
		fmt.Fprintf(w, "; planned on most calls: %s", p)
	}
	fmt.Fprintf(w, "; RSS %.0f MB\n", float64(r.rss)/(1<<20))
}

func verdict(r *caseResult) string {
	t, ok := targets[r.c.name]
	switch {
	case r.c.hot:
		if len(r.failures) == 0 {
			return "exact quota, only quota errors"
		}
		return "FAILED"
	case !ok || r.raw == nil:
		return ""
	case r.ratio() <= t:
		return fmt.Sprintf("≤ %.1f ✓", t)
	default:
		return fmt.Sprintf("≤ %.1f ✗", t)
	}
}

// cells are a result's columns: case, peak req/s, p50, p99, half-peak req/s and p99,
// the raw SQL's p99 at that rate, server and PostgreSQL µs a request, raw µs a transaction, ratio, the reference
// server's ratio, verdict, RSS.
func cells(r *caseResult) []string {
	s, p := r.peak.cpuPerRequest()
	raw, ratio, bare, rawHalf := "—", "—", "—", "—"
	if r.raw != nil {
		raw, ratio = fmt.Sprintf("%.0f", r.rawCPU()), fmt.Sprintf("%.2f", r.ratio())
	}
	if r.rawHalf != nil {
		rawHalf = ms(r.rawHalf.P99US)
	}
	if bt := r.bareTrial(); bt != nil {
		bare = fmt.Sprintf("%.2f", r.bareRatio(*bt))
	}
	return []string{r.c.name, fmt.Sprintf("%.0f", r.peak.rate()), ms(r.peak.P50US), ms(r.peak.P99US),
		fmt.Sprintf("%.0f", r.half.rate()), ms(r.half.P99US), rawHalf, fmt.Sprintf("%.0f", s), fmt.Sprintf("%.0f", p),
		raw, ratio, bare, verdict(r), fmt.Sprintf("%.0f", float64(r.rss)/(1<<20))}
}

func printResults(w io.Writer, o options, results []*caseResult) {
	fmt.Fprintf(w, "\n%d members, %d invitations; %d connections, %s a phase; server GOMAXPROCS %d of %d cores\n",
		o.members, o.invitations, o.connections, o.duration, o.gomaxprocs, runtime.NumCPU())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\treq/s\tp50 ms\tp99 ms\thalf req/s\thalf p99 ms\traw half p99\tserver µs\tPG µs\traw µs/tx\tratio\tbare ratio\ttarget\tRSS MB\t")
	for _, r := range results {
		fmt.Fprintln(tw, strings.Join(cells(r), "\t")+"\t")
	}
	tw.Flush()
}

func printMarkdown(w io.Writer, o options, results []*caseResult) {
	fmt.Fprintf(w, "\n| case | req/s | p50 ms | p99 ms | at half peak: req/s | p99 ms | raw SQL's p99 ms | server µs/req | PostgreSQL µs/req | raw SQL µs/tx | ratio | bare gqlgen's ratio | target | server RSS MB |\n")
	fmt.Fprintf(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|\n")
	for _, r := range results {
		c := cells(r)
		c[0] = fmt.Sprintf("(%s) %s", r.c.name, r.c.title)
		fmt.Fprintf(w, "| %s |\n", strings.Join(c, " | "))
	}
}

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
