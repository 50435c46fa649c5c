package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"invitations/db/embedpg"
)

// wrkResult is what wrk.lua's done() prints, plus the CPU the run cost.
type wrkResult struct {
	Requests   int            `json:"requests"`
	DurationUS int64          `json:"duration_us"`
	MeanUS     int64          `json:"mean_us"`
	P50US      int64          `json:"p50_us"`
	P99US      int64          `json:"p99_us"`
	Socket     int            `json:"socket_errors"`
	OK         int            `json:"ok"`
	HTTP       int            `json:"http"`
	GQL        int            `json:"gql"`
	Withdrawn  int            `json:"withdrawn"`
	Wrapped    int            `json:"wrapped"`
	Ended      int            `json:"ended"` // the requests ran out before the time did
	Codes      map[string]int `json:"codes"`
	Samples    []string       `json:"-"`

	serverCPU, pgCPU time.Duration
}

func (r *wrkResult) rate() float64 {
	if r.DurationUS == 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

// cpuPerRequest is server plus PostgreSQL CPU per request, in microseconds.
func (r *wrkResult) cpuPerRequest() (server, pg float64) {
	if r.Requests == 0 {
		return 0, 0
	}
	n := float64(r.Requests)
	return float64(r.serverCPU.Microseconds()) / n, float64(r.pgCPU.Microseconds()) / n
}

// cpuMeter reads the CPU time of the server and of the PostgreSQL cluster.
type cpuMeter struct {
	serverPID, postmaster int
}

func (m cpuMeter) read() (server, pg time.Duration, err error) {
	if m.serverPID != 0 {
		if server, err = processCPU(m.serverPID); err != nil {
			return
		}
	}
	pg, err = clusterCPU(m.postmaster)
	return
}

// runWrk drives the server with the requests in file for d over conns connections
// (one wrk thread), waiting delay before each request when delay > 0, starting at the
// file's request skip. With once, the run ends early rather than send a request twice.
func runWrk(ctx context.Context, m cpuMeter, url, luaPath, file string, conns int, d time.Duration, delay time.Duration, skip int, once bool) (*wrkResult, error) {
	cmd := exec.CommandContext(ctx, "wrk", "-t1", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(int(d.Seconds()))+"s",
		"--timeout", "10s", "-s", luaPath, url+"/query")
	cmd.Env = append(os.Environ(), "BENCH_REQUESTS="+file, "BENCH_DELAY_MS="+strconv.FormatInt(delay.Milliseconds(), 10),
		"BENCH_START="+strconv.Itoa(skip))
	if once {
		cmd.Env = append(cmd.Env, "BENCH_ONCE=1")
	}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := settle(m.postmaster); err != nil {
		return nil, err
	}
	s0, p0, err := m.read()
	if err != nil {
		return nil, err
	}
	var before map[int]procTicks
	if verbose {
		before = processTicks(m.postmaster)
	}
	if err := cmd.Run(); err != nil {
		if _, e := exec.LookPath("wrk"); e != nil {
			return nil, fmt.Errorf("wrk is not installed (apt-get install wrk): %w", e)
		}
		return nil, fmt.Errorf("wrk: %w\n%s%s", err, out.String(), stderr.String())
	}
	s1, p1, err := m.read()
	if err != nil {
		return nil, err
	}
	res := &wrkResult{serverCPU: s1 - s0, pgCPU: p1 - p0}
	if verbose {
		for pid, t := range processTicks(m.postmaster) {
			if d := t.ticks - before[pid].ticks; d > 0 {
				fmt.Fprintf(os.Stderr, "    %6s %s\n", ticks(d), t.cmd)
			}
		}
	}
	found := false
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if js, ok := strings.CutPrefix(line, "BENCH "); ok {
			if err := json.Unmarshal([]byte(js), res); err != nil {
				return nil, fmt.Errorf("wrk output %q: %w", js, err)
			}
			found = true
		} else if s, ok := strings.CutPrefix(line, "BENCH_SAMPLE "); ok {
			res.Samples = append(res.Samples, s)
		}
	}
	if !found {
		return nil, fmt.Errorf("wrk printed no result:\n%s%s", out.String(), stderr.String())
	}
	if res.Ended > 0 && res.Requests > 0 {
		// wrk reports its configured duration even when the script stopped early. Each
		// connection sends its next request when the previous answer (and the delay)
		// is done, so the run took requests × (mean latency + delay) ÷ connections.
		res.DurationUS = min(res.DurationUS, int64(res.Requests)*(res.MeanUS+delay.Microseconds())/int64(conns))
	}
	return res, nil
}

// pgbenchResult is one pgbench run and the PostgreSQL CPU it cost.
type pgbenchResult struct {
	Transactions int
	TPS          float64
	pgCPU        time.Duration
	// P50US and P99US are the latencies of a rate-limited run's transactions, from
	// their start (without the wait behind a schedule pgbench fell behind), as wrk
	// measures a request from its sending.
	P50US, P99US int64
}

func (r *pgbenchResult) cpuPerTx() float64 {
	if r.Transactions == 0 {
		return 0
	}
	return float64(r.pgCPU.Microseconds()) / float64(r.Transactions)
}

var (
	pgbenchTx  = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	pgbenchTPS = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
)

// runPgbench runs script in prepared mode with conns clients for d, or for perClient
// transactions of each client when perClient > 0 (a write script must not run a row of
// bench_pg twice: the sequence would wrap around to rows already changed). With rate >
// 0, the clients start rate transactions a second in all, and the result has their
// latencies.
func runPgbench(ctx context.Context, m cpuMeter, c *cluster, dbname, script string, vars map[string]string, conns int, d time.Duration, perClient int, rate float64) (*pgbenchResult, error) {
	dir, err := os.MkdirTemp("", "bench-pgbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	scriptFile := filepath.Join(dir, "script.sql")
	if err := os.WriteFile(scriptFile, []byte(script), 0o644); err != nil {
		return nil, err
	}
	host, port := c.pg.SocketDir(), c.pg.Port()
	args := []string{"-n", "-M", "prepared", "-h", host, "-p", strconv.Itoa(port), "-U", "postgres", "-f", scriptFile}
	args = append(args, "-c"+strconv.Itoa(conns), "-j1")
	if perClient > 0 {
		args = append(args, "-t"+strconv.Itoa(perClient))
	} else {
		args = append(args, "-T"+strconv.Itoa(int(d.Seconds())))
	}
	if rate > 0 {
		args = append(args, "--rate="+strconv.FormatFloat(rate, 'f', 1, 64), "--log", "--log-prefix="+filepath.Join(dir, "log"))
	}
	for k, v := range vars {
		args = append(args, "-D", k+"="+v)
	}
	args = append(args, dbname)
	cmd := exec.CommandContext(ctx, pgbenchPath(), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := settle(m.postmaster); err != nil {
		return nil, err
	}
	before := children(m.postmaster)
	_, p0, err := m.read()
	if err != nil {
		return nil, err
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("pgbench: %w\n%s", err, out.String())
	}
	// pgbench's backends exit as it does: count their CPU once it is the postmaster's.
	if err := awaitReaped(m.postmaster, before); err != nil {
		return nil, err
	}
	_, p1, err := m.read()
	if err != nil {
		return nil, err
	}
	res := &pgbenchResult{pgCPU: p1 - p0}
	if mm := pgbenchTx.FindStringSubmatch(out.String()); mm != nil {
		res.Transactions, _ = strconv.Atoi(mm[1])
	} else {
		return nil, fmt.Errorf("pgbench printed no transaction count:\n%s", out.String())
	}
	if mm := pgbenchTPS.FindStringSubmatch(out.String()); mm != nil {
		res.TPS, _ = strconv.ParseFloat(mm[1], 64)
	}
	if strings.Contains(out.String(), "failed") && !strings.Contains(out.String(), "number of failed transactions: 0") {
		return nil, fmt.Errorf("pgbench transactions failed:\n%s", out.String())
	}
	if rate > 0 {
		logs, err := filepath.Glob(filepath.Join(dir, "log.*"))
		if err != nil {
			return nil, err
		}
		if res.P50US, res.P99US, err = pgbenchLatencies(logs); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// pgbenchLatencies reads the transaction logs of a rate-limited pgbench run and
// returns the median and 99th percentile of the transactions' latencies, in µs. A
// line is "client transaction time script epoch µs lag": time counts from the moment
// the schedule set, so the lag (how late the transaction started) is taken off. Each
// client's first transaction is left out: it prepares the statements, which the
// server's pooled connections have done before the half-peak run.
func pgbenchLatencies(files []string) (p50, p99 int64, err error) {
	var lat []int64
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			return 0, 0, err
		}
		for line := range strings.Lines(string(b)) {
			f := strings.Fields(line)
			if len(f) < 7 {
				return 0, 0, fmt.Errorf("%s: not a rate-limited transaction line: %q", name, line)
			}
			if f[1] == "0" {
				continue
			}
			t, err1 := strconv.ParseInt(f[2], 10, 64)
			lag, err2 := strconv.ParseInt(f[6], 10, 64)
			if err := cmp.Or(err1, err2); err != nil {
				return 0, 0, fmt.Errorf("%s: %q: %w", name, line, err)
			}
			lat = append(lat, t-lag)
		}
	}
	if len(lat) == 0 {
		return 0, 0, fmt.Errorf("pgbench logged no transaction")
	}
	slices.Sort(lat)
	at := func(q float64) int64 { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	return at(0.50), at(0.99), nil
}

// pgbenchPath is pgbench from the PostgreSQL installation (Debian keeps it beside
// postgres; /usr/bin/pgbench is a wrapper that needs a configured cluster).
func pgbenchPath() string {
	if bin, err := embedpg.FindBinDir(); err == nil {
		if _, err := os.Stat(bin + "/pgbench"); err == nil {
			return bin + "/pgbench"
		}
	}
	return "pgbench"
}
