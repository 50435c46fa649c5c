package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"invitations/db"
	"invitations/db/embedpg"
)

// cluster is the bench's private PostgreSQL server.
type cluster struct {
	pg      *embedpg.Server
	dataDir string
	admin   *sqlx.DB
}

// startCluster starts (creating on first use) the cluster under dir/pg, with
// pg_stat_statements loaded for the statement check and autovacuum off.
func startCluster(ctx context.Context, dir string) (*cluster, error) {
	dataDir := filepath.Join(dir, "pg")
	pg, err := embedpg.Start(ctx, embedpg.Options{DataDir: dataDir, Settings: map[string]string{
		"shared_buffers":           "1GB",
		"max_connections":          "100",
		"shared_preload_libraries": "pg_stat_statements",
		"pg_stat_statements.max":   "1000",
		// Planning time and count beside execution time (-v): a prepared statement that
		// is planned again on every call would show here.
		"pg_stat_statements.track_planning": "on",
		// Autovacuum starts when a table crosses a threshold of changed rows, and its
		// work (an ANALYZE of invitations costs about 0.6 s) would land in whichever
		// phase crosses it, server or pgbench. The template is vacuumed and analysed
		// once, after seeding; each case starts from a fresh copy.
		"autovacuum": "off",
		// Likewise checkpoints: one in a phase would charge it with flushing pages that
		// earlier phases dirtied. The clone starts with one (CREATE DATABASE), and none
		// comes until the next case's.
		"checkpoint_timeout": "1h",
		"max_wal_size":       "50GB",
	}})
	if err != nil {
		return nil, err
	}
	admin, err := db.Open(ctx, pg.DSN("postgres"))
	if err != nil {
		pg.Stop()
		return nil, err
	}
	abs, _ := filepath.Abs(dataDir)
	return &cluster{pg: pg, dataDir: abs, admin: admin}, nil
}

func (c *cluster) close() {
	c.admin.Close()
	c.pg.Stop()
}

// template returns the name of a database holding a seeded network of this size,
// seeding it first if no earlier run did. A database gets its final name only once
// seeding has finished, so an interrupted seed is redone.
func (c *cluster) template(ctx context.Context, members, invitations int, logw io.Writer) (string, error) {
	name := fmt.Sprintf("seed_%d_%d", members, invitations)
	var exists bool
	if err := c.admin.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name); err != nil {
		return "", err
	}
	if exists {
		return name, c.migrate(ctx, name)
	}
	tmp := name + "_partial"
	if _, err := c.admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+tmp+` WITH (FORCE)`); err != nil {
		return "", err
	}
	if _, err := c.admin.ExecContext(ctx, `CREATE DATABASE `+tmp); err != nil {
		return "", err
	}
	conn, err := db.Open(ctx, c.pg.DSN(tmp))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := db.Migrate(ctx, conn); err != nil {
		return "", err
	}
	fmt.Fprintf(logw, "seeding %d members and about %d invitations (once; kept in %s)\n", members, invitations, c.dataDir)
	started := time.Now()
	store := db.New(conn, db.DefaultLimits(), nil)
	err = store.Seed(ctx, db.SeedOptions{Members: members, Invitations: invitations, Progress: func(done, total int) {
		fmt.Fprintf(logw, "\rseed: %d of ~%d invitations, %s", done, total, time.Since(started).Round(time.Second))
	}})
	fmt.Fprintln(logw)
	if err != nil {
		return "", err
	}
	// The visibility map lets the hot statements use index-only scans, as on a
	// long-running database that autovacuum keeps.
	if _, err := conn.ExecContext(ctx, `VACUUM (ANALYZE)`); err != nil {
		return "", err
	}
	conn.Close()
	if _, err := c.admin.ExecContext(ctx, `ALTER DATABASE `+tmp+` RENAME TO `+name); err != nil {
		return "", err
	}
	fmt.Fprintf(logw, "seeded in %s\n", time.Since(started).Round(time.Second))
	return name, nil
}

// migrate applies to a template seeded by an earlier run the migrations added since,
// then vacuums and analyses it again (a migration may rewrite rows).
func (c *cluster) migrate(ctx context.Context, name string) error {
	conn, err := db.Open(ctx, c.pg.DSN(name))
	if err != nil {
		return err
	}
	defer conn.Close()
	var before uint
	if err := conn.GetContext(ctx, &before, `SELECT version FROM schema_migrations`); err != nil {
		return err
	}
	after, err := db.Migrate(ctx, conn)
	if err != nil || after == before {
		return err
	}
	_, err = conn.ExecContext(ctx, `VACUUM (ANALYZE)`)
	return err
}

// clone makes a fresh copy of the template for one case, so that cases which write
// (sends, withdrawals) start from the same data on every run. FILE_COPY copies the
// files instead of writing the whole database to the WAL, whose flushing would
// otherwise still cost PostgreSQL CPU while the case is measured.
func (c *cluster) clone(ctx context.Context, template, name string) (*sqlx.DB, error) {
	if _, err := c.admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
		return nil, err
	}
	if _, err := c.admin.ExecContext(ctx, `CREATE DATABASE `+name+` TEMPLATE `+template+` STRATEGY FILE_COPY`); err != nil {
		return nil, err
	}
	conn, err := db.Open(ctx, c.pg.DSN(name))
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// postmasterPID reads the first line of postmaster.pid.
func (c *cluster) postmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(c.dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

// procStat is what /proc/<pid>/stat says of a process's parent and CPU time.
type procStat struct {
	state                        byte
	ppid                         int
	utime, stime, cutime, cstime int64 // clock ticks
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name, in parentheses, may hold spaces: fields start after the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	num := func(i int) int64 { n, _ := strconv.ParseInt(f[i], 10, 64); return n }
	// f[0] is field 3 (state): field k is f[k-3].
	return procStat{state: f[0][0], ppid: int(num(1)), utime: num(11), stime: num(12), cutime: num(13), cstime: num(14)}, nil
}

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / clockTicks }

// processCPU is the user and system time of one process.
func processCPU(pid int) (time.Duration, error) {
	st, err := readProcStat(pid)
	return ticks(st.utime + st.stime), err
}

// clusterCPU is the CPU time of the whole PostgreSQL server: the postmaster, its live
// children (backends, checkpointer, WAL writer, autovacuum), and the children that
// have exited (their time is in the postmaster's cutime and cstime).
func clusterCPU(postmaster int) (time.Duration, error) {
	pm, err := readProcStat(postmaster)
	if err != nil {
		return 0, err
	}
	total := pm.utime + pm.stime + pm.cutime + pm.cstime
	for _, st := range children(postmaster) {
		total += st.utime + st.stime
	}
	return ticks(total), nil
}

// children are the postmaster's child processes, by pid.
func children(postmaster int) map[int]procStat {
	out := map[int]procStat{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readProcStat(pid); err == nil && st.ppid == postmaster {
			out[pid] = st
		}
	}
	return out
}

// awaitReaped waits until every child of the postmaster that is not in before has
// exited and been reaped (a zombie still shows in /proc), so that its CPU time has
// moved into the postmaster's cutime and cstime: a backend that exits between the
// reading of the postmaster and the scan of its children would count in neither.
func awaitReaped(postmaster int, before map[int]procStat) error {
	return awaitChildren(postmaster, "PostgreSQL backends of the run did not exit", func(pid int, _ procStat) bool {
		_, ok := before[pid]
		return !ok
	})
}

// settle waits until no child of the postmaster is a zombie: the CPU time of a
// backend or parallel worker that exited before a measurement began must not move
// into the postmaster's cutime during it.
func settle(postmaster int) error {
	return awaitChildren(postmaster, "exited PostgreSQL processes were not reaped", func(_ int, st procStat) bool {
		return st.state == 'Z'
	})
}

// awaitChildren polls the postmaster's children until none is waited for, for at
// most 10 s; failing says how many were still there.
func awaitChildren(postmaster int, failure string, waitedFor func(pid int, st procStat) bool) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := 0
		for pid, st := range children(postmaster) {
			if waitedFor(pid, st) {
				n++
			}
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d %s within 10 s", n, failure)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// peakRSS is the server's resident-memory high-water mark (VmHWM), in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}

var discard = slog.New(slog.DiscardHandler)

// processTicks maps each PostgreSQL process to its CPU ticks and command line, for
// -v's breakdown of where the cluster's CPU went.
func processTicks(postmaster int) map[int]procTicks {
	out := map[int]procTicks{}
	procs := children(postmaster)
	if pm, err := readProcStat(postmaster); err == nil {
		procs[postmaster] = pm
	}
	for pid, st := range procs {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out[pid] = procTicks{ticks: st.utime + st.stime, cmd: strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))}
	}
	return out
}

type procTicks struct {
	ticks int64
	cmd   string
}
