package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"invitations/graph"
)

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
