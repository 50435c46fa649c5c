// Command bench measures the server's cost per request against the raw SQL it runs.
//
// It starts a private PostgreSQL cluster under .bench/ (kept between runs), seeds a
// network of the requested size once into a template database, and then, for each
// case, on a fresh clone of that template:
//
//  1. builds and starts the real server (authentication, limits, privacy, idempotency,
//     metrics and request logging on; background jobs off) on 127.0.0.1;
//  2. drives it with wrk (Lua request bodies, signed tokens for many members), first
//     as fast as it goes (the peak), then at half the peak rate;
//  3. runs the SQL the repository issues for one such request through
//     `pgbench -M prepared` on the same data;
//
// and prints req/s, p50, p99 and CPU microseconds per request (server process and
// PostgreSQL, read from /proc), the raw SQL's CPU per transaction and their ratio.
// On the page cases it measures the same way a reference server beside it: bench/bare,
// a bare gqlgen + lib/pq server running the page's SQL with none of the service's rules
// (the recipients in a statement of their own, as its dataloader reads them; its raw
// SQL is sql/page-bare.sql), which is what the targets were set on.
// Before measuring, it checks that one server request and one pgbench transaction
// issue the same statements (pg_stat_statements query ids), so the bound cannot drift
// from the repository's SQL.
//
// Usage (see BENCHMARKS.md):
//
//	go run ./bench                                # 100k members, 2M invitations, 10 s a phase
//	go run ./bench -members 1000000 -invitations 10000000 -cases a,f
//	go run ./bench -smoke                         # seconds, tiny data: what CI runs
//	go run ./bench -against HEAD~3 -cases b -duration 6s   # this checkout's server against HEAD~3's
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

var verbose bool

type options struct {
	members, invitations int
	duration, warmup     time.Duration
	connections          int
	gomaxprocs           int
	repeat               int
	cases                []string
	dir                  string
	smoke                bool
	markdown             bool
	statements           bool
	profile              bool
	bare                 bool
	disk                 bool
	against              string
	rounds               int
}

func main() {
	var o options
	var cases string
	flag.IntVar(&o.members, "members", 100_000, "members in the seeded network")
	flag.IntVar(&o.invitations, "invitations", 2_000_000, "invitations in the seeded network")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measured phase")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured load before each case")
	flag.IntVar(&o.connections, "connections", 8, "concurrent connections of wrk and pgbench")
	flag.IntVar(&o.gomaxprocs, "gomaxprocs", max(1, runtime.NumCPU()/2),
		"the server's GOMAXPROCS (PostgreSQL, wrk and pgbench share the machine; see BENCHMARKS.md)")
	flag.IntVar(&o.repeat, "repeat", 1,
		"for the read cases, measure the peak and the raw SQL this many times, alternately, and keep the run of median ratio")
	flag.StringVar(&cases, "cases", "a,b,c,d,e,f", "cases to run (comma-separated; 0 is the floor: an authenticated { __typename })")
	flag.StringVar(&o.dir, "dir", ".bench", "directory for the PostgreSQL cluster, the server binary and logs")
	flag.BoolVar(&o.smoke, "smoke", false, "tiny data and 1 s phases: checks that the harness works, measures nothing")
	flag.BoolVar(&o.statements, "statements", false, "print the statements one request of each case issues")
	flag.BoolVar(&verbose, "v", false, "print where PostgreSQL's CPU went in each wrk run")
	flag.BoolVar(&o.profile, "profile", false, "write the server's CPU profile of each case to DIR/cpu-CASE.pprof")
	flag.BoolVar(&o.markdown, "markdown", false, "print the results as a Markdown table too")
	flag.BoolVar(&o.disk, "disk", false, "during the half-peak run of the write cases, time an 8 kB write and fdatasync every 10 ms on the cluster's disk (what commits wait for)")
	flag.StringVar(&o.against, "against", "", "a git revision: instead of the measurements, run its server and this checkout's at once, side by side under the same load, on the read cases, and print their difference (see bench/compare.go)")
	flag.IntVar(&o.rounds, "rounds", 10, "with -against, the rounds of -duration each")
	flag.BoolVar(&o.bare, "bare", true, "measure the reference server (a bare gqlgen + lib/pq server, bench/bare) on the page cases too")
	flag.Parse()
	if o.smoke {
		o.members, o.invitations = 10_000, 20_000
		o.duration, o.warmup = time.Second, 300*time.Millisecond
		o.connections = 4
	}
	o.cases = strings.Split(cases, ",")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
