package main

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
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

// checkAnswers records what the server answered that it should not have.
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
// the raw SQL's p99 at that rate, server and PostgreSQL µs a request, raw µs a
// transaction, ratio, the reference server's ratio, verdict, RSS.
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
