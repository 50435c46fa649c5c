package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Comparing two builds (-against REV). This machine charges the host's other VMs'
// use of our cores to whatever process was running (it reports no steal time), so two
// runs a minute apart can differ by 30% for the same server, and a change of a few per
// cent cannot be seen between runs. Run at the same moment, under the same load, two
// servers share the host's noise instead: each round, this checkout's server and
// REV's serve the same requests side by side, each under its own wrk at a third of
// the checkout's peak rate (random waits), and each server's CPU and that of its own
// PostgreSQL backends (told apart by application_name) are read over the round.
// Rounds pair up; their differences are what the comparison reports.

// buildAgainst compiles the invitations server at git revision rev into dir, from a
// temporary worktree.
func buildAgainst(ctx context.Context, dir, rev string) (string, error) {
	src, err := filepath.Abs(filepath.Join(dir, "against-src"))
	if err != nil {
		return "", err
	}
	bin, err := filepath.Abs(filepath.Join(dir, "invitations-against"))
	if err != nil {
		return "", err
	}
	git := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return cmd.Run()
	}
	if _, err := os.Stat(src); err == nil { // left by an interrupted run
		git("worktree", "remove", "--force", src)
		os.RemoveAll(src)
	}
	if err := git("worktree", "add", "--detach", src, rev); err != nil {
		return "", fmt.Errorf("git worktree add %s: %w", rev, err)
	}
	defer git("worktree", "remove", "--force", src)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir, cmd.Stdout, cmd.Stderr = src, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build at %s: %w", rev, err)
	}
	return bin, nil
}

// comparison is one case's rounds, for this checkout's server (0) and REV's (1).
type comparison struct {
	c      benchCase
	rate   [2][]float64 // requests a second
	server [2][]float64 // server CPU µs a request
	pg     [2][]float64 // its own backends' CPU µs a request
}

// compare measures bc on both servers at once, rounds times.
func (e *runEnv) compare(ctx context.Context, bc benchCase, againstBin string, rounds int) (*comparison, error) {
	o := e.o
	if bc.writes {
		return nil, fmt.Errorf("-against compares the read cases only: two servers writing to one database would change each other's data")
	}
	conn, err := e.prepare(ctx, bc, readRequests)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var reqs []request
	if err := conn.SelectContext(ctx, &reqs, `SELECT n, handle, vars FROM bench_req ORDER BY n`); err != nil {
		return nil, err
	}
	pm, err := e.c.postmasterPID()
	if err != nil {
		return nil, err
	}
	apps := [2]string{"bench_ours", "bench_against"}
	var srvs [2]*server
	var files [2]string
	var meters [2]cpuMeter
	for i, bin := range []string{e.bin, againstBin} {
		srv, err := startServer(ctx, bin, e.c.pg.DSN(runDB)+"&application_name="+apps[i],
			filepath.Join(o.dir, fmt.Sprintf("server-%s-%s.log", bc.name, apps[i])), "", o.gomaxprocs)
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		srvs[i], meters[i] = srv, cpuMeter{serverPID: srv.pid(), postmaster: pm}
		made := newRequests(srv.secret, bc.query)
		lines := make([]string, len(reqs))
		for j, r := range reqs {
			lines[j] = made.line(r)
		}
		files[i] = filepath.Join(o.dir, fmt.Sprintf("requests-%s-%s.txt", bc.name, apps[i]))
		if err := writeLines(files[i], lines); err != nil {
			return nil, err
		}
	}
	// Each server alone, as fast as it goes, for the warm-up; the rounds then run both
	// at a third of this checkout's peak, with random waits.
	warm := o.warmup.Round(time.Second) + time.Second
	var peak *wrkResult
	for i := range srvs {
		r, err := runWrk(ctx, meters[i], srvs[i].url, e.lua, files[i], o.connections, warm, 0, 0, false)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			peak = r
		}
	}
	if peak.rate() == 0 {
		return nil, fmt.Errorf("the server answered nothing in the warm-up")
	}
	wait := time.Duration(float64(o.connections) / (peak.rate() / 3) * float64(time.Second))
	res := &comparison{c: bc}
	for round := range rounds {
		var backends [2][]int
		var pg0 [2]time.Duration
		for i, app := range apps {
			if err := conn.SelectContext(ctx, &backends[i], `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, app); err != nil {
				return nil, err
			}
			pg0[i] = processesCPU(backends[i])
		}
		var runs [2]*wrkResult
		var errs [2]error
		var wg sync.WaitGroup
		for i := range srvs {
			wg.Go(func() {
				runs[i], errs[i] = runWrk(ctx, meters[i], srvs[i].url, e.lua, files[i], o.connections, o.duration, wait, 0, false)
			})
		}
		wg.Wait()
		for i := range srvs {
			if errs[i] != nil {
				return nil, errs[i]
			}
			r := runs[i]
			if r.HTTP+r.GQL+r.Socket > 0 || r.Requests == 0 {
				return nil, fmt.Errorf("%s: %d requests, %d HTTP errors, %d GraphQL errors, %d socket errors; first: %s",
					apps[i], r.Requests, r.HTTP, r.GQL, r.Socket, strings.Join(r.Samples, " | "))
			}
			server, _ := r.cpuPerRequest()
			res.rate[i] = append(res.rate[i], r.rate())
			res.server[i] = append(res.server[i], server)
			res.pg[i] = append(res.pg[i], float64((processesCPU(backends[i])-pg0[i]).Microseconds())/float64(r.Requests))
		}
		fmt.Fprintf(os.Stderr, "  round %d: this checkout %.0f req/s, server %.0f µs + its backends %.0f µs; against %.0f req/s, %.0f + %.0f µs\n",
			round+1, res.rate[0][round], res.server[0][round], res.pg[0][round], res.rate[1][round], res.server[1][round], res.pg[1][round])
	}
	return res, nil
}

// processesCPU is the CPU time of the processes that still run, of pids.
func processesCPU(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		if t, err := processCPU(pid); err == nil {
			total += t
		}
	}
	return total
}

// meanSD is the mean and sample standard deviation of xs.
func meanSD(xs []float64) (mean, sd float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, 0
	}
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)-1))
}

// differences are the rounds' paired differences, this checkout's minus REV's.
func differences(ours, against []float64) []float64 {
	d := make([]float64, len(ours))
	for i := range ours {
		d[i] = ours[i] - against[i]
	}
	return d
}

// printComparisons writes each case's means and paired differences.
func printComparisons(w io.Writer, rev string, results []*comparison) {
	fmt.Fprintf(w, "this checkout against %s, both at once, %d rounds a case (CPU µs a request, mean ± sd of the rounds' paired differences):\n", rev, len(results[0].server[0]))
	for _, r := range results {
		line := func(what string, xs [2][]float64) {
			m0, _ := meanSD(xs[0])
			m1, _ := meanSD(xs[1])
			d, sd := meanSD(differences(xs[0], xs[1]))
			fmt.Fprintf(w, "  %s %-26s %7.1f against %7.1f: %+6.1f ± %.1f (%+.1f%%)\n", r.c.name, what, m0, m1, d, sd, 100*d/m1)
		}
		line("server", r.server)
		line("its PostgreSQL backends", r.pg)
	}
}
