package embedpg

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// testDataDir returns a not-yet-existing data directory path under
// t.TempDir(). t.TempDir() makes its directories 0700, which the postgres
// user cannot traverse when the tests run as root, so open them up.
func testDataDir(t *testing.T) string {
	t.Helper()
	if _, err := FindBinDir(); err != nil {
		t.Skip(err)
	}
	d := t.TempDir()
	for _, dir := range []string{d, filepath.Dir(d)} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(d, "pg")
}

func start(t *testing.T, dataDir string) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	begin := time.Now()
	s, err := Start(ctx, Options{
		DataDir:  dataDir,
		Logger:   slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Settings: map[string]string{"fsync": "off", "shared_buffers": "16MB"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Start took %v", time.Since(begin))
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	dataDir := testDataDir(t)
	s := start(t, dataDir)
	dsn := s.DSN("postgres")
	t.Log("DSN:", dsn)
	db := open(t, dsn)
	if _, err := db.Exec(`CREATE TABLE kept (v text); INSERT INTO kept VALUES ('hello')`); err != nil {
		t.Fatal(err)
	}
	var listen string
	if err := db.QueryRow(`SHOW listen_addresses`).Scan(&listen); err != nil || listen != "" {
		t.Fatalf("listen_addresses = %q, %v; want empty", listen, err)
	}
	db.Close()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "log", "postmaster.log")); err != nil {
		t.Errorf("server log: %v", err)
	}

	s2 := start(t, dataDir)
	var v string
	if err := open(t, s2.DSN("postgres")).QueryRow(`SELECT v FROM kept`).Scan(&v); err != nil || v != "hello" {
		t.Fatalf("after restart: %q, %v", v, err)
	}
}

func TestTwoClustersAtOnce(t *testing.T) {
	t.Parallel()
	dirs := []string{testDataDir(t), testDataDir(t)}
	servers := make([]*Server, len(dirs))
	var wg sync.WaitGroup
	for i, d := range dirs {
		wg.Go(func() {
			s, err := Start(context.Background(), Options{DataDir: d, Settings: map[string]string{"fsync": "off"}})
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { _ = s.Stop() })
			servers[i] = s
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if servers[0].DSN("x") == servers[1].DSN("x") {
		t.Fatalf("both servers have DSN %s", servers[0].DSN("x"))
	}
	if _, err := open(t, servers[0].DSN("postgres")).Exec(`CREATE TABLE only_first (i int)`); err != nil {
		t.Fatal(err)
	}
	var n int
	err := open(t, servers[1].DSN("postgres")).QueryRow(
		`SELECT count(*) FROM pg_tables WHERE tablename = 'only_first'`).Scan(&n)
	if err != nil || n != 0 {
		t.Fatalf("second cluster sees table: n=%d err=%v", n, err)
	}
}

func TestDataDirInUse(t *testing.T) {
	t.Parallel()
	dataDir := testDataDir(t)
	start(t, dataDir)
	_, err := Start(context.Background(), Options{DataDir: dataDir})
	if err == nil || !strings.Contains(err.Error(), "is in use by another PostgreSQL (pid ") {
		t.Fatalf("second Start on same DataDir: %v", err)
	}
}

func TestUntraversableParent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only relevant as root")
	}
	dataDir := testDataDir(t)
	locked := filepath.Dir(dataDir)
	if err := os.Chmod(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{DataDir: dataDir})
	if err == nil || !strings.Contains(err.Error(), "cannot reach data directory") ||
		!strings.Contains(err.Error(), locked) {
		t.Fatalf("Start below a 0700 root-owned dir: %v", err)
	}
}

func TestFindBinDirPGBinEmpty(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("PG_BIN", empty)
	_, err := FindBinDir()
	if err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") ||
		!strings.Contains(err.Error(), empty) {
		t.Fatalf("FindBinDir with empty PG_BIN: %v", err)
	}
	_, err = Start(context.Background(), Options{DataDir: filepath.Join(empty, "pg")})
	if err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Fatalf("Start with empty PG_BIN: %v", err)
	}
}

func TestFindBinDir(t *testing.T) {
	dir, err := FindBinDir()
	if err != nil {
		t.Skip(err)
	}
	t.Log("bin dir:", dir)
	if !hasServerBins(dir) {
		t.Fatalf("%s lacks initdb/postgres", dir)
	}
}

func TestRestartAfterKilledPostmaster(t *testing.T) {
	t.Parallel()
	dataDir := testDataDir(t)
	s := start(t, dataDir)
	// Freeze one child so the old shared memory stays attached for a while
	// after the postmaster dies; Start must retry until the child is gone.
	child := childOf(t, s.cmd.Process.Pid)
	if err := syscall.Kill(child, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.done
	if err := s.Stop(); err == nil {
		t.Error("Stop after a crash: want error")
	}
	time.AfterFunc(300*time.Millisecond, func() { _ = syscall.Kill(child, syscall.SIGCONT) })
	start(t, dataDir) // stale postmaster.pid, crash recovery
	data, _ := os.ReadFile(filepath.Join(dataDir, "log", "postmaster.log"))
	if !strings.Contains(string(data), "pre-existing shared memory block") {
		t.Error("expected Start to have retried after a shared memory conflict")
	}
}

func childOf(t *testing.T, ppid int) int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		_, rest, _ := strings.Cut(string(data), ") ")
		var state string
		var parent int
		if _, err := fmt.Sscan(rest, &state, &parent); err == nil && parent == ppid {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			return pid
		}
	}
	t.Fatalf("no child of %d", ppid)
	return 0
}

func TestStalePidFileWithReusedPid(t *testing.T) {
	t.Parallel()
	dataDir := testDataDir(t)
	if err := start(t, dataDir).Stop(); err != nil {
		t.Fatal(err)
	}
	other := exec.Command("sleep", "60") // a live process that is not postgres
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Process.Kill(); _ = other.Wait() }()
	pidFile := filepath.Join(dataDir, "postmaster.pid")
	if err := os.WriteFile(pidFile, fmt.Appendf(nil, "%d\n%s\n", other.Process.Pid, dataDir), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, dataDir)
}

// TestParentDeathStopsServer kills (SIGKILL) a process running a server and
// checks that the postmaster goes away too (Pdeathsig).
func TestParentDeathStopsServer(t *testing.T) {
	if dir := os.Getenv("EMBEDPG_TEST_HELPER_DATADIR"); dir != "" {
		s, err := Start(context.Background(), Options{DataDir: dir, Settings: map[string]string{"fsync": "off"}})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Printf("pid %d %s\n", s.cmd.Process.Pid, s.sockDir)
		select {}
	}
	t.Parallel()
	dataDir := testDataDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestParentDeathStopsServer$")
	cmd.Env = append(os.Environ(), "EMBEDPG_TEST_HELPER_DATADIR="+dataDir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	var sockDir string
	if _, err := fmt.Fscanf(out, "pid %d %s\n", &pid, &sockDir); err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("helper: %v", err)
	}
	defer os.RemoveAll(sockDir) // nobody else cleans it up after a crash
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return // gone, or a zombie waiting for init to reap it
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("postmaster %d still running after its parent was killed", pid)
		}
	}
}

func TestEarlyExitReportsLog(t *testing.T) {
	t.Parallel()
	dataDir := testDataDir(t)
	_, err := Start(context.Background(), Options{DataDir: dataDir, Settings: map[string]string{"fsync": "off", "no_such_setting": "1"}})
	if err == nil || !strings.Contains(err.Error(), "exited during startup") ||
		!strings.Contains(err.Error(), `unrecognized configuration parameter "no_such_setting"`) {
		t.Fatalf("Start with a bad setting: %v", err)
	}
	t.Log(err)
}
